// JSON string contents for the schema front end (see json_string.h): patterns re-encoded with JSON
// escapes by walking their parsed AST, the format regexes, and keys outside a set of names.
#include "json_string.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>

#include "code_points.h"
#include "regex.h"
#include "sable/cpp/error.h"

namespace sable::grammar {

namespace {

// The code points a JSON string holds raw: everything but `"`, `\` and the controls.
CodePointSet escaped_set() {
  CodePointSet s = CodePointSet::range(0, 0x1F);
  s.add('"', '"');
  s.add('\\', '\\');
  return s;
}

// The JSON text of the code points in `set`, as a regex atom.
std::string set_regex(const CodePointSet& set) {
  std::vector<std::string> alts;
  CodePointSet raw = escaped_set();
  raw.add(set.complement());
  raw = raw.complement();  // set minus the escaped characters
  if (!raw.empty()) alts.push_back(regex_class_for(raw));
  if (set.contains('"')) alts.push_back(R"(\\")");
  if (set.contains('\\')) alts.push_back(R"(\\\\)");
  for (uint32_t c = 0; c < 0x20; ++c) {
    if (!set.contains(c)) continue;
    const char* short_escape = c == '\b'   ? "b"
                               : c == '\f' ? "f"
                               : c == '\n' ? "n"
                               : c == '\r' ? "r"
                               : c == '\t' ? "t"
                                           : nullptr;
    char buf[16];
    std::snprintf(buf, sizeof buf, "u00%02x", c);
    alts.push_back(std::string(R"(\\)") + (short_escape ? short_escape : buf));
  }
  if (alts.empty()) return "[^\\s\\S]";
  if (alts.size() == 1) return alts[0];
  std::string out = "(?:";
  for (size_t i = 0; i < alts.size(); ++i) out += (i ? "|" : "") + alts[i];
  return out + ")";
}

std::string escaped_node(const RegexAst& ast, int32_t id) {
  const RegexNode& n = ast.nodes[id];
  switch (n.op) {
    case RegexOp::kEmpty:
      return "(?:)";
    case RegexOp::kSet:
      return set_regex(n.set);
    case RegexOp::kConcat: {
      std::string out = "(?:";
      for (int32_t c : n.children) out += escaped_node(ast, c);
      return out + ")";
    }
    case RegexOp::kAlternate: {
      std::string out = "(?:";
      for (size_t i = 0; i < n.children.size(); ++i)
        out += (i ? "|" : "") + escaped_node(ast, n.children[i]);
      return out + ")";
    }
    case RegexOp::kRepeat:
      return "(?:" + escaped_node(ast, n.children[0]) + "{" + std::to_string(n.min) + "," +
             (n.max < 0 ? "" : std::to_string(n.max)) + "})";
    case RegexOp::kProduct:  // internal dialect only, never in a client's pattern
      break;
  }
  return "";
}

const std::string kYear = "(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])";
const std::string kLeapYear =
    "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)";
// Days per month, February 29 only in leap years (datetime.date.fromisoformat agrees).
const std::string kDate = "(?:" + kYear +
                          "-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|"
                          "[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|" +
                          kLeapYear + "-02-29)";
// RFC 3339 full-time: the offset is required.
const std::string kTime =
    "(?:(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?(?:Z|[+-](?:[01][0-9]|2[0-3]):"
    "[0-5][0-9]))";
const std::string kOctet = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
const std::string kHex4 = "[0-9a-fA-F]{1,4}";
const std::string kPct = "%[0-9a-fA-F]{2}";
const std::string kPchar = "(?:[a-zA-Z0-9._~!$&'()*+,;=:@\\-]|" + kPct + ")";

std::string ipv6_regex() {
  const std::string h = kHex4;
  const std::vector<std::string> forms = {
      "(?:" + h + ":){7}" + h,
      "(?:" + h + ":){1,7}:",
      "(?:" + h + ":){1,6}:" + h,
      "(?:" + h + ":){1,5}(?::" + h + "){1,2}",
      "(?:" + h + ":){1,4}(?::" + h + "){1,3}",
      "(?:" + h + ":){1,3}(?::" + h + "){1,4}",
      "(?:" + h + ":){1,2}(?::" + h + "){1,5}",
      h + ":(?::" + h + "){1,6}",
      ":(?:(?::" + h + "){1,7}|:)",
  };
  std::string out = "(?:";
  for (size_t i = 0; i < forms.size(); ++i) out += (i ? "|" : "") + forms[i];
  return out + ")";
}

// RFC 3986 URI (reference: URI-reference, also a relative reference: no scheme, and a first path
// segment without ':' so that it does not read as one).
std::string uri_regex(bool reference) {
  const std::string reg_name = "(?:[a-zA-Z0-9._~!$&'()*+,;=\\-]|" + kPct + ")*";
  const std::string userinfo = "(?:[a-zA-Z0-9._~!$&'()*+,;=:\\-]|" + kPct + ")*";
  const std::string segments = "(?:/" + kPchar + "*)*";
  const std::string authority = "//(?:" + userinfo + "@)?" + reg_name + "(?::[0-9]*)?" + segments;
  const std::string absolute = "/(?:" + kPchar + "+" + segments + ")?";
  const std::string tail = "(?:" + kPchar + "|[/?])*";
  const std::string rest = "(?:\\?" + tail + ")?(?:#" + tail + ")?";
  const std::string uri = "[a-zA-Z][a-zA-Z0-9+.\\-]*:(?:" + authority + "|" + absolute + "|" +
                          kPchar + "+" + segments + ")?" + rest;
  if (!reference) return "(?:" + uri + ")";
  const std::string no_colon = "(?:[a-zA-Z0-9._~!$&'()*+,;=@\\-]|" + kPct + ")";
  return "(?:" + uri + "|(?:" + authority + "|" + absolute + "|" + no_colon + "+" + segments +
         ")?" + rest + ")";
}

// RFC 1123 host names as the `fqdn` package checks them (what jsonschema's format checker uses):
// dot-separated labels of 1-63 letters, digits and inner hyphens, an optional final dot, at most
// 253 characters. The length cap is a subset here: up to 3 labels of any length (191 at most) or
// up to 12 labels of at most 20 characters (251 at most).
std::string hostname_regex() {
  auto labels = [](int max_len, int count) {
    const std::string label =
        "[a-zA-Z0-9](?:[a-zA-Z0-9\\-]{0," + std::to_string(max_len - 2) + "}[a-zA-Z0-9])?";
    return "(?:" + label + "(?:\\." + label + "){0," + std::to_string(count - 1) + "})";
  };
  return "(?:(?:" + labels(63, 3) + "|" + labels(20, 12) + ")\\.?)";
}

const char* const kFormats[] = {"date-time", "date", "time",          "email",   "uuid",
                                "ipv4",      "ipv6", "uri", "uri-reference", "hostname"};

// Every format a JSON Schema draft (3 to 2020-12) defines; other names are annotations.
const char* const kSpecFormats[] = {
    "date-time", "date",          "time",  "duration",     "email",        "idn-email",
    "hostname",  "idn-hostname",  "ipv4",  "ipv6",         "uri",          "uri-reference",
    "iri",       "iri-reference", "uuid",  "uri-template", "json-pointer", "relative-json-pointer",
    "regex",     "utc-millisec",  "color", "style",        "phone",        "host-name",
    "ip-address"};

// Keys over `chars` that differ from every name in names[first, last) past `depth` code points
// (the names there share their first `depth` code points).
std::string other_than(const std::vector<std::vector<uint32_t>>& names, size_t first, size_t last,
                       size_t depth) {
  static const CodePointSet chars = escaped_set().complement();
  std::vector<std::string> alts;
  bool ends_here = false;
  std::map<uint32_t, std::pair<size_t, size_t>> next;  // code point -> range of names
  for (size_t i = first; i < last; ++i) {
    if (names[i].size() == depth) {
      ends_here = true;
      continue;
    }
    auto [it, fresh] = next.try_emplace(names[i][depth], i, i + 1);
    if (!fresh) it->second.second = i + 1;
  }
  if (!ends_here) alts.push_back("");
  CodePointSet taken = escaped_set();
  for (const auto& [cp, range] : next) {
    if (!chars.contains(cp)) continue;  // never written raw: no key here can equal the name
    taken.add(cp, cp);
    std::string cp_text;
    append_utf8(cp, &cp_text);
    alts.push_back(escape_regex_literal(cp_text) +
                   other_than(names, range.first, range.second, depth + 1));
  }
  const CodePointSet rest = taken.complement();
  if (!rest.empty()) alts.push_back(regex_class_for(rest) + regex_class_for(chars) + "*");
  std::string out = "(?:";
  for (size_t i = 0; i < alts.size(); ++i) out += (i ? "|" : "") + alts[i];
  return out + ")";
}

LengthRange node_length(const RegexAst& ast, int32_t id, std::vector<LengthRange>& memo,
                        std::vector<uint8_t>& done) {
  if (done[id]) return memo[id];
  const RegexNode& n = ast.nodes[id];
  LengthRange r{0, 0};
  auto add = [](int64_t a, int64_t b) { return a < 0 || b < 0 ? -1 : a + b; };
  switch (n.op) {
    case RegexOp::kEmpty:
      break;
    case RegexOp::kSet:
      r = {1, 1};
      break;
    case RegexOp::kConcat:
      for (int32_t c : n.children) {
        const LengthRange x = node_length(ast, c, memo, done);
        r = {r.min + x.min, add(r.max, x.max)};
      }
      break;
    case RegexOp::kAlternate:
      for (size_t i = 0; i < n.children.size(); ++i) {
        const LengthRange x = node_length(ast, n.children[i], memo, done);
        r.min = i ? std::min(r.min, x.min) : x.min;
        r.max = i && (r.max < 0 || x.max < 0) ? -1 : std::max(r.max, x.max);
      }
      break;
    case RegexOp::kRepeat: {
      const LengthRange x = node_length(ast, n.children[0], memo, done);
      r.min = x.min * n.min;
      r.max = x.max == 0 ? 0 : (n.max < 0 || x.max < 0) ? -1 : x.max * n.max;
      break;
    }
    case RegexOp::kProduct:  // bounds: of the intersection, else of the first operand (or any)
      for (size_t i = 0; i < n.children.size(); ++i) {
        const LengthRange x = node_length(ast, n.children[i], memo, done);
        if (i == 0) {
          r = x;
        } else if (n.min == static_cast<int32_t>(ProductRule::kAll) ||
                   n.min == static_cast<int32_t>(ProductRule::kAllInStep)) {
          r.min = std::max(r.min, x.min);
          r.max = r.max < 0 ? x.max : x.max < 0 ? r.max : std::min(r.max, x.max);
        } else if (n.min == static_cast<int32_t>(ProductRule::kExactlyOne)) {
          r.min = std::min(r.min, x.min);
          r.max = r.max < 0 || x.max < 0 ? -1 : std::max(r.max, x.max);
        }
      }
      break;
  }
  done[id] = 1;
  return memo[id] = r;
}

}  // namespace

std::string json_string_pattern_regex(std::string_view pattern) {
  const RegexAst ast = parse_regex(pattern);
  return escaped_node(ast, ast.root);
}

std::optional<std::string> json_string_pattern_regex_within(std::string_view pattern, int64_t lo,
                                                            int64_t hi) {
  const RegexAst ast = parse_regex(pattern);
  const RegexNode& root = ast.nodes[ast.root];
  const std::vector<int32_t> parts =
      root.op == RegexOp::kConcat ? root.children : std::vector<int32_t>{ast.root};
  std::vector<LengthRange> memo(ast.nodes.size());
  std::vector<uint8_t> done(ast.nodes.size(), 0);
  int64_t fixed = 0;
  int32_t run = -1;  // the one part of variable length: a repeated single code point set
  for (int32_t id : parts) {
    const LengthRange r = node_length(ast, id, memo, done);
    if (r.min == r.max) {
      fixed += r.min;
      continue;
    }
    const RegexNode& n = ast.nodes[id];
    if (run >= 0 || n.op != RegexOp::kRepeat || ast.nodes[n.children[0]].op != RegexOp::kSet)
      return std::nullopt;
    run = id;
  }
  if (run < 0) return std::nullopt;  // fixed length: the caller's own check decides
  const RegexNode& n = ast.nodes[run];
  const int64_t at_least = std::max<int64_t>(n.min, lo - fixed);
  int64_t at_most = hi < 0 ? n.max : hi - fixed;
  if (n.max >= 0 && at_most > n.max) at_most = n.max;
  if (at_most >= 0 && (at_most < at_least || at_most > kMaxRepeatCount)) return std::nullopt;
  if (at_least > kMaxRepeatCount) return std::nullopt;
  std::string out = "(?:";
  for (int32_t id : parts)
    out += id != run ? escaped_node(ast, id)
                     : "(?:" + escaped_node(ast, n.children[0]) + "){" + std::to_string(at_least) +
                           "," + (at_most < 0 ? "" : std::to_string(at_most)) + "}";
  return out + ")";
}

std::string json_string_format_regex(std::string_view format) {
  if (format == "date") return kDate;
  if (format == "time") return kTime;
  if (format == "date-time") return "(?:" + kDate + "T" + kTime + ")";
  if (format == "uuid")
    return "(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})";
  if (format == "email")
    return R"((?:[a-zA-Z0-9_%+\-]+(?:\.[a-zA-Z0-9_%+\-]+)*@[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?)*\.[a-zA-Z]{2,}))";
  if (format == "ipv4") return "(?:(?:" + kOctet + "\\.){3}" + kOctet + ")";
  if (format == "ipv6") return ipv6_regex();
  if (format == "uri") return uri_regex(false);
  if (format == "uri-reference") return uri_regex(true);
  if (format == "hostname" || format == "host-name") return hostname_regex();
  if (format == "ip-address") return json_string_format_regex("ipv4");
  return "";
}

bool is_json_schema_format(std::string_view format) {
  return std::find(std::begin(kSpecFormats), std::end(kSpecFormats), format) !=
         std::end(kSpecFormats);
}

std::string supported_formats() {
  std::string out;
  for (const char* f : kFormats) out += (out.empty() ? "" : ", ") + std::string(f);
  return out;
}

std::string json_key_other_than(const std::vector<std::string>& names) {
  std::vector<std::vector<uint32_t>> cps;
  for (const std::string& name : names) {
    std::vector<uint32_t> v;
    size_t pos = 0;
    uint32_t cp = 0;
    while (pos < name.size() && decode_utf8(name, &pos, &cp)) v.push_back(cp);
    if (pos == name.size()) cps.push_back(std::move(v));  // invalid UTF-8 can't be written anyway
  }
  std::sort(cps.begin(), cps.end());
  cps.erase(std::unique(cps.begin(), cps.end()), cps.end());
  return other_than(cps, 0, cps.size(), 0);
}

LengthRange regex_length_range(std::string_view pattern) {
  const RegexAst ast = parse_regex(pattern);
  std::vector<LengthRange> memo(ast.nodes.size());
  std::vector<uint8_t> done(ast.nodes.size(), 0);
  return node_length(ast, ast.root, memo, done);
}

}  // namespace sable::grammar
