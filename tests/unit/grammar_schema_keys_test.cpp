// JSON schema keywords about keys and string forms: patternProperties split into key regions
// (json_schema_patterns.cpp), propertyNames (property_names.h), patterns with anchors inside
// groups (key_patterns.h), the uri-reference and color formats. Expectations are what a JSON Schema validator answers (checked
// with Python's `jsonschema` and its format checker when written).
#include <gtest/gtest.h>

#include <string>

#include "tests/unit/grammar_schema_check.h"

namespace sable::grammar {
namespace {

using testing::check;
using testing::error_of;

// A declared name a pattern matches takes both schemas; a key that two patterns match, both.
TEST(GrammarSchemaKeys, PatternPropertiesMatchingDeclaredNamesAndEachOther) {
  check(R"({"type":"object","properties":{"a":{"type":"integer"}},
            "patternProperties":{"^[a-z]+$":{"minimum":0}},"additionalProperties":false})",
        {R"({"a":1})", R"({"b":2})", R"({"a":1,"b":2})"},
        {R"({"a":-1})", R"({"b":-1})", R"({"B":1})", R"({"a":1,"a":2})"});
  check(R"({"type":"object","patternProperties":{"^a":{"type":"integer"},"b$":{"minimum":5}}})",
        {R"({"ab":7})", R"({"a":3})", R"({"b":"s"})", R"({"c":[]})"},
        {R"({"ab":3})", R"({"ab":"x"})", R"({"b":3})"});
  check(R"({"type":"object","patternProperties":{"^\\w[-\\w_]*$":{},
            "^(relationships|links)$":{"not":{}}},"additionalProperties":false})",
        {R"({"name":1})"}, {R"({"links":1})", R"({"-x":1})"});
}

// Keys no pattern matches beside declared names are additionalProperties' (a difference of key
// languages); required names beside patterns are governed by the patterns matching them.
TEST(GrammarSchemaKeys, KeysOutsideEveryPatternAndRequiredNames) {
  check(R"({"type":"object","properties":{"id":{"type":"string"}},
            "patternProperties":{"^x-":{"type":"integer"}},"additionalProperties":{"type":"boolean"}})",
        {R"({"id":"a","x-1":1,"other":true})", R"({"x-a":2,"id":"b"})"},
        {R"({"other":1})", R"({"x-1":true})", R"({"id":true})"});
  check(R"({"type":"object","patternProperties":{"^n":{"type":"string"}},"required":["name"],
            "additionalProperties":false})",
        {R"({"name":"x"})", R"({"nick":"y","name":"x"})"}, {"{}", R"({"name":1})"});
  check(R"({"type":"object","patternProperties":{"^_":false},
            "additionalProperties":{"type":"integer"}})",
        {R"({"a":1})", "{}"}, {R"({"_a":1})"});
}

TEST(GrammarSchemaKeys, PropertyNamesOfAnyStringAssertNothing) {
  check(R"({"type":"object","propertyNames":{"type":"string"},
            "additionalProperties":{"type":"integer"}})",
        {"{}", R"({"a":1})"}, {R"({"a":"x"})"});
  check(R"({"type":"object","propertyNames":true})", {"{}", R"({"a":[1]})"}, {"[]"});
}

TEST(GrammarSchemaKeys, PropertyNamesPatternRestrictsFurtherKeys) {
  check(R"({"type":"object","propertyNames":{"pattern":"^[a-z]+$"},
            "additionalProperties":{"type":"integer"}})",
        {"{}", R"({"ab":1})", R"({"ab":1,"c":2})"},
        {R"({"aB":1})", R"({"ab":"x"})", R"({"1":1})"});
  // Search semantics: "a" anywhere in the key; a type-less schema still allows other types.
  check(R"({"propertyNames":{"pattern":"a"}})", {R"({"bab":[1]})", "[1]", R"("s")"},
        {R"({"b":1})"});
}

TEST(GrammarSchemaKeys, PropertyNamesPatternDropsDeclaredNamesItExcludes) {
  check(R"({"type":"object","propertyNames":{"pattern":"^[A-Za-z_][A-Za-z0-9_]*$"},
            "additionalProperties":false,"properties":{"serverId":{"type":"string"},
            "9lives":{"type":"integer"}}})",
        {"{}", R"({"serverId":"x"})"}, {R"({"9lives":1})", R"({"other":1})"});
  check(R"({"type":"object","propertyNames":{"pattern":"^x"},
            "patternProperties":{"^x":{"type":"integer"}},"additionalProperties":false,
            "maxProperties":1})",
        {"{}", R"({"x1":1})"}, {R"({"x1":1,"x2":2})", R"({"y":1})", R"({"x1":"s"})"});
  const std::string required = error_of(R"({"type":"object","propertyNames":{"pattern":"^x"},
      "properties":{"a":{}},"required":["a"]})");
  EXPECT_NE(required.find("required property 'a'"), std::string::npos) << required;
}

TEST(GrammarSchemaKeys, PropertyNamesRefusedWhereTheyCannotBeRestated) {
  const std::string length = error_of(R"({"type":"object","propertyNames":{"maxLength":3}})");
  EXPECT_NE(length.find("/propertyNames/maxLength"), std::string::npos) << length;
  const std::string other = error_of(R"({"type":"object","propertyNames":{"pattern":"^a"},
      "patternProperties":{"^b":{}}})");
  EXPECT_NE(other.find("another pattern"), std::string::npos) << other;
}

// Anchors inside a group that starts or ends an alternative mean what they say under JSON
// Schema's search semantics (Python's re.search).
TEST(GrammarSchemaKeys, PatternsWithAnchorsInsideGroups) {
  check(R"j({"type":"string","pattern":"^([^,]|$)"})j", {R"("")", R"("a")", R"("ab,")"},
        {R"(",a")", R"(",")"});
  check(R"j({"type":"string","pattern":"(^$)|(^[a-f0-9]{4}-[a-f0-9]{2}$)"})j",
        {R"("")", R"("abcd-12")"}, {R"("abcd-123")", R"("xabcd-12")", R"("abcd")"});
  check(R"j({"type":"string","pattern":"^$|(^(?:\\S+\\s+){0,2}\\S+$)"})j",
        {R"("")", R"("a")", R"("a b c")"}, {R"("a b c d")", R"(" a")", R"("a ")"});
  check(R"j({"type":"string","pattern":"(^a)|(b$)"})j",
        {R"("a")", R"("ab")", R"("xb")", R"("axx")"}, {R"("xa")", R"("bx")"});
  check(R"j({"type":"object","patternProperties":{"(^x$)|(^y)":{"type":"integer"}},
            "additionalProperties":false})j",
        {R"({"x":1})", R"({"yz":2})"}, {R"({"xz":1})", R"({"x":"s"})"});
  const std::string inside = error_of(R"j({"type":"string","pattern":"a(^b)*"})j");
  EXPECT_NE(inside.find("/pattern"), std::string::npos) << inside;
}

// RFC 3986 URI-reference (rfc3986_validator's rule, what jsonschema's format checker uses).
TEST(GrammarSchemaKeys, UriReferenceFormat) {
  check(R"({"type":"string","format":"uri-reference"})",
        {R"("")", R"("a/b")", R"("../x?q#f")", R"("//host/p")", R"("http://x.y/z")", R"("a:b")",
         R"("./a:b")", R"("#frag")", R"("/abs/path")", R"("mailto:x@y")"},
        {R"("%zz")", R"("a b")", R"("\\x")"});
  check(R"({"type":"string","format":"uri"})", {R"("http://x.y/z")", R"("a:b")"},
        {R"("a/b")", R"("#frag")", R"("")"});
}

// "color" is a draft 3 format only: an annotation under later drafts (or none), refused (not
// enforced) under draft 3.
TEST(GrammarSchemaKeys, ColorFormatOnlyAssertsUnderDraft3) {
  check(R"({"$schema":"http://json-schema.org/draft-04/schema#","type":"string","format":"color"})",
        {R"("red")", R"("not a colour")"}, {"1"});
  check(R"({"type":"string","format":"color"})", {R"("#fff")"}, {"1"});
  const std::string draft3 = error_of(
      R"({"$schema":"http://json-schema.org/draft-03/schema#","type":"string","format":"color"})");
  EXPECT_NE(draft3.find("format 'color'"), std::string::npos) << draft3;
}

}  // namespace
}  // namespace sable::grammar
