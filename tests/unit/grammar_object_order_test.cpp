// JSON schema objects in any property order (the default where it fits): every order of the
// declared properties, each at most once, with every required one present, further members
// anywhere when additionalProperties allows them (after the declared ones when it is absent);
// objects too large for it are generated in declared order, or refused by name under
// "x-sable": {"property_order": "any"}; "declared" opts into declared order everywhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <regex>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "plugins/grammar/automaton/dfa.h"
#include "plugins/grammar/automaton/json_schema.h"
#include "plugins/grammar/automaton/nfa.h"
#include "plugins/grammar/automaton/regex.h"
#include "sable/cpp/error.h"
#include "tests/unit/grammar_schema_check.h"
#include "tests/unit/time_budget.h"

namespace sable::grammar {
namespace {

using testing::error_of;
using testing::schema_dfa;

const std::vector<std::string> kNames = {"a", "b", "c", "d"};
const std::vector<std::string> kValues = {"1", "\"s\"", "true", "null"};

std::string object_of(const std::vector<int>& order) {
  std::string out = "{";
  for (size_t i = 0; i < order.size(); ++i)
    out += (i ? "," : "") + ("\"" + kNames[order[i]] + "\":") + kValues[order[i]];
  return out + "}";
}

// Every subset of {a,b,c,d} in every order: accepted exactly when it holds b and d.
TEST(GrammarObjectOrder, EveryOrderOfEverySubset) {
  const Dfa dfa = schema_dfa(R"({"type":"object","properties":{"a":{"type":"integer"},
      "b":{"type":"string"},"c":{"type":"boolean"},"d":{"type":"null"}},"required":["b","d"],
      "additionalProperties":false})");
  int accepted = 0;
  for (int set = 0; set < 16; ++set) {
    std::vector<int> order;
    for (int i = 0; i < 4; ++i)
      if (set & (1 << i)) order.push_back(i);
    const bool complete = (set & 0b1010) == 0b1010;
    do {
      EXPECT_EQ(dfa.matches(object_of(order)), complete) << object_of(order);
      accepted += complete;
    } while (std::next_permutation(order.begin(), order.end()));
  }
  EXPECT_EQ(accepted, 2 + 6 + 6 + 24);  // {b,d}, {a,b,d}, {b,c,d}, {a,b,c,d} in every order
  // Each property at most once; values still checked; layout as before.
  for (const char* bad : {R"({"b":"s","d":null,"b":"t"})", R"({"d":null,"b":1})",
                          R"({"d":null,"b":"s","e":1})", R"({"d":null,,"b":"s"})",
                          R"({"d":null,"b":"s",})", R"({ "d":null,"b":"s"})"})
    EXPECT_FALSE(dfa.matches(bad)) << bad;
  EXPECT_TRUE(dfa.matches(R"({"d": null, "b": "s"})"));
}

TEST(GrammarObjectOrder, FurtherMembersGoAnywhere) {
  const Dfa dfa = schema_dfa(R"({"properties":{"id":{"type":"integer"},"name":{"type":"string"}},
      "required":["id"],"additionalProperties":{"type":"boolean"}})");
  for (const char* good : {R"({"id":1})", R"({"x":true,"id":1})", R"({"name":"n","x":false,"id":2})",
                           R"({"x":true,"y":false,"id":1,"z":true})", R"({"id":1,"name":"n","x":true})"})
    EXPECT_TRUE(dfa.matches(good)) << good;
  for (const char* bad : {R"({"x":true})", R"({"x":1,"id":1})", R"({"id":1,"id":2})",
                          R"({"name":"n","id":1,"name":"m"})", R"({"id":"1"})"})
    EXPECT_FALSE(dfa.matches(bad)) << bad;
  // Without properties' companions: any members at all, also empty.
  const Dfa open = schema_dfa(R"({"properties":{"a":{"const":1},"b":{"const":2}},
      "additionalProperties":true})");
  for (const char* good : {"{}", R"({"z":[1],"b":2,"a":1})", R"({"b":2,"q":null})"})
    EXPECT_TRUE(open.matches(good)) << good;
  EXPECT_FALSE(open.matches(R"({"b":3})"));
}

// Nested objects in any order each, and the same object schema reached twice (its shared
// subexpressions are defined twice with the same text).
TEST(GrammarObjectOrder, NestedAndRepeatedObjects) {
  const std::string point = R"({"type":"object","properties":{"x":{"type":"integer"},
      "y":{"type":"integer"}},"required":["x","y"],"additionalProperties":false})";
  const Dfa dfa = schema_dfa(R"({"type":"object","properties":{"from":)" + point + R"(,"to":)" +
                             point + R"(,"path":{"type":"array","items":)" + point +
                             R"(}},"required":["from","to"],"additionalProperties":false})");
  for (const char* good : {R"({"from":{"x":1,"y":2},"to":{"y":3,"x":4}})",
                           R"({"to":{"x":1,"y":2},"path":[{"y":1,"x":1},{"x":2,"y":2}],"from":{"y":0,"x":0}})"})
    EXPECT_TRUE(dfa.matches(good)) << good;
  for (const char* bad : {R"({"from":{"x":1},"to":{"y":3,"x":4}})",
                          R"({"to":{"x":1,"y":2},"path":[{"y":1,"y":1}],"from":{"y":0,"x":0}})"})
    EXPECT_FALSE(dfa.matches(bad)) << bad;
}

// Eight optional string properties: 256 subsets times the members' states, compiled quickly.
TEST(GrammarObjectOrder, EightPropertiesCompileQuickly) {
  std::string schema = R"({"type":"object","additionalProperties":false,"properties":{)";
  for (int i = 0; i < 8; ++i)
    schema += (i ? "," : "") + std::string("\"property_") + std::to_string(i) +
              R"(":{"type":"string"})";
  schema += "}}";
  const auto start = std::chrono::steady_clock::now();
  const Dfa dfa = schema_dfa(schema);
  EXPECT_LT(std::chrono::steady_clock::now() - start,
            sable::test_support::time_budget(std::chrono::seconds(3)));
  EXPECT_LT(dfa.num_states(), kMaxDfaStates);
  EXPECT_TRUE(dfa.matches(R"({"property_7":"a","property_0":"b","property_3":""})"));
  EXPECT_FALSE(dfa.matches(R"({"property_7":"a","property_7":"b"})"));
}

// Past the any-order limits the default ("auto") keeps any order but lets members repeat (each
// value checked, the required ones tracked); "declared" generates declared order, "any" refuses,
// naming the object and the options.
TEST(GrammarObjectOrder, TooManyPropertiesRepeatOrFallBackToDeclaredOrder) {
  std::string props;
  for (int i = 0; i < 13; ++i)
    props += (i ? "," : "") + std::string("\"p") + std::to_string(i) + R"(":{"type":"integer"})";
  const std::string inner =
      R"({"type":"object","properties":{)" + props + R"(},"required":["p0","p8"]})";
  const std::string e = error_of(R"({"type":"object","x-sable":{"property_order":"any"},
      "properties":{"outer":)" + inner + "}}");
  EXPECT_NE(e.find("13 properties in any order is too large"), std::string::npos) << e;
  EXPECT_NE(e.find("/properties/outer/properties"), std::string::npos) << e;
  EXPECT_NE(e.find("\"property_order\": \"declared\""), std::string::npos) << e;
  for (const char* order : {"", R"("x-sable":{"property_order":"declared"},)"}) {
    const Dfa dfa = schema_dfa("{" + std::string(order) +
                               R"("type":"object","properties":{"outer":)" + inner + "}}");
    const bool any = std::string(order).empty();
    EXPECT_TRUE(dfa.matches(R"({"outer":{"p0":1,"p8":2}})"));
    EXPECT_EQ(dfa.matches(R"({"outer":{"p8":2,"p3":5,"p0":1}})"), any);
    EXPECT_EQ(dfa.matches(R"({"outer":{"p3":5,"p0":1,"p3":6,"p8":2,"p0":3}})"), any);
    for (const char* bad : {R"({"outer":{"p8":2}})", R"({"outer":{"p3":1,"p0":1}})",
                            R"({"outer":{"p0":1,"p8":"2"}})", R"({"outer":{"p0":1,"p8":2,"p1":"x"}})",
                            R"({"outer":{"p0":1,"p0":"x","p8":2}})"})
      EXPECT_FALSE(dfa.matches(bad)) << bad;
    // The small outer object keeps any order.
    const Dfa two = schema_dfa("{" + std::string(order) + R"("type":"object","properties":{
        "outer":)" + inner + R"(,"z":{"type":"integer"}}})");
    EXPECT_EQ(two.matches(R"({"z":1,"outer":{"p0":1,"p8":1}})"), any) << order;
  }
  // Fewer properties with large values: refused by the foreseen automaton size.
  std::string big = R"({"type":"object","additionalProperties":true,
      "x-sable":{"property_order":"any"},"properties":{)";
  for (int i = 0; i < 8; ++i)
    big += (i ? "," : "") + std::string("\"p") + std::to_string(i) + R"(":{"type":"string","maxLength":200})";
  const std::string e2 = error_of(big + "}}");  // refused before the automaton is built
  EXPECT_NE(e2.find("8 properties in any order is too large to compile (about"), std::string::npos) << e2;
  const Dfa auto_order = schema_dfa(std::regex_replace(big, std::regex(R"("any")"), R"("auto")") + "}}");
  EXPECT_TRUE(auto_order.matches(R"({"p0":"a","p7":"b","q":1})"));
  EXPECT_TRUE(auto_order.matches(R"({"p7":"b","p0":"a"})"));
  EXPECT_FALSE(auto_order.matches(R"({"p7":"b","p0":1})"));
}

// Snowplow sp_376 (JSONSchemaBench): 16 properties, 14 required, no further members. Past the
// repeatable form's 2^15 alternatives, it used to be generated in declared order, so the bench's
// valid instance (`name` first, not the first declared key) was rejected. Now two intersected
// automata (2^7 states each) take every order. Expectations from Python `jsonschema`
// (Draft7Validator): every rotation of the instance's keys valid, each required one missing
// invalid, the two optional ones missing valid, and the values below.
TEST(GrammarObjectOrder, SixteenPropertiesFourteenRequiredInAnyOrder) {
  const std::string schema = R"(
    {"additionalProperties":false,"properties":{"account":{"type":"string"},
    "auth":{"oneOf":[{"properties":{"accessKeyId":{"type":"string"},
    "secretAccessKey":{"type":"string"}},"required":["accessKeyId","secretAccessKey"],
    "type":"object"},{"properties":{"roleArn":{"minLength":20,"type":["string","null"]},
    "sessionDuration":{"minimum":900,"type":"integer"}},"required":["roleArn",
    "sessionDuration"],"type":"object"},{"type":"null"}]},"awsRegion":{"type":"string"},
    "database":{"type":"string"},"id":{"_format":"uuid","type":"string"},
    "input":{"_format":"uri","type":"string"},"manifest":{"type":"string"},
    "name":{"type":"string"},
    "password":{"properties":{"ec2ParameterStore":{"properties":{"parameterName":{"type":"string"}},
    "required":["parameterName"],"type":"object"}},"required":["ec2ParameterStore"],
    "type":["string","object"]},"purpose":{"enum":["ENRICHED_EVENTS"],"type":"string"},
    "schema":{"type":"string"},"snowflakeRegion":{"type":"string"},"stage":{"type":"string"},
    "stageUrl":{"_format":"uri","type":"string"},"username":{"type":"string"},
    "warehouse":{"type":"string"}},"required":["name","auth","awsRegion","manifest",
    "snowflakeRegion","database","account","warehouse","input","stage","stageUrl","username",
    "password","purpose"],"type":"object"})";
  const nlohmann::ordered_json instance = nlohmann::ordered_json::parse(R"({"name":"n",
      "auth":{"accessKeyId":"k","secretAccessKey":"s"},"awsRegion":"r","manifest":"m",
      "snowflakeRegion":"r","database":"d","account":"a","warehouse":"w","input":"s3://b/i",
      "stage":"s","stageUrl":"s3://b/s","username":"u",
      "password":{"ec2ParameterStore":{"parameterName":"p"}},"purpose":"ENRICHED_EVENTS",
      "schema":"x","id":"i"})");
  const Dfa dfa = schema_dfa(schema);
  std::vector<std::string> keys;
  for (const auto& [k, v] : instance.items()) keys.push_back(k);
  for (size_t r = 0; r < keys.size(); ++r) {  // every rotation of the keys
    nlohmann::ordered_json rotated = nlohmann::ordered_json::object();
    for (size_t i = 0; i < keys.size(); ++i) {
      const std::string& k = keys[(r + i) % keys.size()];
      rotated[k] = instance[k];
    }
    EXPECT_TRUE(dfa.matches(rotated.dump())) << rotated.dump();
  }
  for (const std::string& k : keys) {  // each one left out: only "schema" and "id" are optional
    nlohmann::ordered_json without = instance;
    without.erase(k);
    EXPECT_EQ(dfa.matches(without.dump()), k == "schema" || k == "id") << k;
  }
  const std::vector<std::tuple<std::string, std::string, bool>> values = {
      {"purpose", R"("OTHER")", false},
      {"auth", "null", true},
      {"auth", R"({"roleArn":"a","sessionDuration":900})", false},
      {"auth", R"({"roleArn":"arn:aws:iam::1:role/x","sessionDuration":900})", true},
      {"password", R"("pw")", true},
      {"password", "{}", false},
      {"extra", "1", false}};
  for (const auto& [key, value, valid] : values) {
    nlohmann::ordered_json changed = instance;
    changed[key] = nlohmann::ordered_json::parse(value);
    EXPECT_EQ(dfa.matches(changed.dump()), valid) << changed.dump();
  }
}

// 20 properties, 12 required and a dependency (p19 needs p18): 14 tracked names in two automata,
// the dependency's trigger and what it needs in one. Past 14 tracked names (16 required) declared
// order stays (a subset), refused under "property_order": "any". Expectations from Python
// `jsonschema`.
TEST(GrammarObjectOrder, LargeObjectsSplitTheirRequiredNames) {
  auto schema = [](int required, bool dependency) {
    std::string props, names;
    for (int i = 0; i < 20; ++i)
      props += (i ? "," : "") + std::string("\"p") + std::to_string(i) + R"(":{"type":"integer"})";
    for (int i = 0; i < required; ++i) names += (i ? ",\"p" : "\"p") + std::to_string(i) + "\"";
    return R"({"type":"object","additionalProperties":false,)" +
           std::string(dependency ? R"("dependencies":{"p19":["p18"]},)" : "") +
           R"("properties":{)" + props + R"(},"required":[)" + names + "]}";
  };
  auto object = [](const std::vector<int>& keys, const std::string& more = "") {
    std::string out = "{";
    for (size_t i = 0; i < keys.size(); ++i)
      out += (i ? ",\"p" : "\"p") + std::to_string(keys[i]) + "\":1";
    return out + more + "}";
  };
  std::vector<int> all, required;
  for (int i = 19; i >= 0; --i) all.push_back(i);
  for (int i = 11; i >= 0; --i) required.push_back(i);
  auto with = [&](std::vector<int> keys, std::vector<int> more) {
    keys.insert(keys.end(), more.begin(), more.end());
    return keys;
  };
  std::vector<int> no_p7 = required;
  std::erase(no_p7, 7);
  testing::check(schema(12, true),
                 {object(all), object(with(required, {19, 18})), object(with({19}, with(required, {18})))},
                 {object(with(required, {19})), object(no_p7), object(required, R"(,"p15":"x")"),
                  object(required, R"(,"q":1)")});
  std::vector<int> forward(all.rbegin(), all.rend());
  const Dfa declared = schema_dfa(schema(16, false));
  EXPECT_TRUE(declared.matches(object(forward)));
  EXPECT_FALSE(declared.matches(object(all)));  // valid, but out of declared order: a subset
  const std::string e =
      error_of(std::regex_replace(schema(16, false), std::regex("^\\{"), R"({"x-sable":{"property_order":"any"},)"));
  EXPECT_NE(e.find("20 properties in any order is too large"), std::string::npos) << e;
}

TEST(GrammarObjectOrder, OptionsAreChecked) {
  EXPECT_NE(error_of(R"({"x-sable":{"property_order":"sorted"}})").find("\"auto\", \"any\" or \"declared\""),
            std::string::npos);
  EXPECT_NE(error_of(R"({"x-sable":{"order":"any"}})").find("unknown option 'order'"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"x-sable":true})").find("x-sable must be an object"), std::string::npos);
  // The option object is not a keyword: beside enum it is no conflict.
  EXPECT_TRUE(schema_dfa(R"({"enum":[1,2],"x-sable":{"property_order":"any"}})").matches("2"));
}

// The option holds for the schema that carries it and those inside it, until another one.
TEST(GrammarObjectOrder, OptionsApplyInsideTheirSchema) {
  const Dfa dfa = schema_dfa(R"({"type":"object","x-sable":{"property_order":"declared"},
      "properties":{"name":{"const":"f"},"args":{"type":"object","x-sable":{"property_order":"any"},
      "properties":{"a":{"type":"integer"},"b":{"type":"integer"}},"required":["a","b"]}},
      "required":["name","args"]})");
  EXPECT_TRUE(dfa.matches(R"({"name":"f","args":{"b":1,"a":2}})"));
  EXPECT_FALSE(dfa.matches(R"({"args":{"a":1,"b":2},"name":"f"})"));
}

// The internal dialect is not the client's: `(?@` in a regex request is refused.
TEST(GrammarObjectOrder, DefinitionsOnlyInTheInternalDialect) {
  EXPECT_THROW(parse_regex("(?@1=a)(?@1)"), sable::cpp::Error);
  const Dfa dfa = Dfa::build(build_nfa(parse_regex("(?@1=ab|c)x(?@1)(?@1)", RegexDialect::kInternal)));
  EXPECT_TRUE(dfa.matches("xabc"));
  EXPECT_FALSE(dfa.matches("abxab" "c"));
  EXPECT_THROW(parse_regex("(?@2)", RegexDialect::kInternal), sable::cpp::Error);
  EXPECT_THROW(parse_regex("(?@1=a)(?@1=b)", RegexDialect::kInternal), sable::cpp::Error);
}

}  // namespace
}  // namespace sable::grammar
