#include <string>

#include "test_util.hpp"

namespace perkrec {
namespace {

TEST(StrictJson, ParsesValidDocuments) {
  const Json j =
      parse_json_strict<ConfigError>(R"({"a": [1, 2.5, "x", {"b": null}], "c": true})", "t");
  EXPECT_EQ(j["a"][1].get<double>(), 2.5);
  EXPECT_TRUE(j["a"][3]["b"].is_null());
  EXPECT_TRUE(j["c"].get<bool>());
}

TEST(StrictJson, DuplicateKeysNameTheirPointer) {
  PERKREC_EXPECT_THROW_MSG(parse_json_strict<ConfigError>(R"({"a": 1, "a": 2})", "Ctx"),
                           ConfigError, "Ctx", "/a", "duplicate key");
  PERKREC_EXPECT_THROW_MSG(parse_json_strict<InputError>(
                               R"({"list": [{}, {}, {"x": 1, "y": {"z": 1, "z": 2}}]})", "Ctx"),
                           InputError, "/list/2/y/z", "duplicate");
  // The same key in sibling objects is fine.
  EXPECT_NO_THROW(parse_json_strict<ConfigError>(R"([{"a": 1}, {"a": 2}])", "t"));
}

TEST(StrictJson, PointersEscapeSpecialCharacters) {
  PERKREC_EXPECT_THROW_MSG(parse_json_strict<ConfigError>(R"({"a/b": {"c~d": 1, "c~d": 2}})", "t"),
                           ConfigError, "/a~1b/c~0d");
}

TEST(StrictJson, BoundsDepthAndSize) {
  std::string deep(100, '[');
  deep += std::string(100, ']');
  PERKREC_EXPECT_THROW_MSG(parse_json_strict<ConfigError>(deep, "t"), ConfigError,
                           "nesting deeper");
  JsonLimits limits;
  limits.max_bytes = 10;
  PERKREC_EXPECT_THROW_MSG(
      parse_json_strict<ConfigError>(R"({"key": "a long value"})", "t", limits), ConfigError,
      "too large");
  limits = JsonLimits{};
  limits.max_depth = 2;
  EXPECT_NO_THROW(parse_json_strict<ConfigError>(R"({"a": [1]})", "t", limits));
  EXPECT_THROW(parse_json_strict<ConfigError>(R"({"a": [[1]]})", "t", limits), ConfigError);
}

TEST(StrictJson, SyntaxErrorsGiveTheByteOffset) {
  PERKREC_EXPECT_THROW_MSG(parse_json_strict<ConfigError>(R"({"a": 1,})", "Ctx"), ConfigError,
                           "Ctx", "syntax error at byte");
  EXPECT_THROW(parse_json_strict<ConfigError>("", "t"), ConfigError);
  EXPECT_THROW(parse_json_strict<ConfigError>("{} trailing", "t"), ConfigError);
  EXPECT_THROW(parse_json_strict<ConfigError>("NaN", "t"), ConfigError);
}

TEST(JsonReader, ReadsTypedFieldsAndRejectsUnknownKeys) {
  const Json j = parse_json_strict<ConfigError>(
      R"({"factors": 64, "rate": 0.05, "name": "x", "tags": ["a", "b"], "flag": false, "big": 3.0})",
      "t");
  JsonReader<ConfigError> r(j, "", "Params::from_json");
  int factors = 0;
  double rate = 0;
  std::string name;
  std::vector<std::string> tags;
  bool flag = true;
  std::int64_t big = 0;
  int absent = 7;
  EXPECT_TRUE(r.read("factors", factors));
  EXPECT_TRUE(r.read("rate", rate));
  r.require("name", name);
  r.read("tags", tags);
  r.read("flag", flag);
  r.read("big", big);
  EXPECT_FALSE(r.read("absent", absent));
  EXPECT_NO_THROW(r.finish());
  EXPECT_EQ(factors, 64);
  EXPECT_EQ(rate, 0.05);
  EXPECT_EQ(tags, (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(flag);
  EXPECT_EQ(big, 3);
  EXPECT_EQ(absent, 7);

  const Json k = parse_json_strict<ConfigError>(R"({"factors": 64, "factor": 3})", "t");
  JsonReader<ConfigError> r2(k, "", "Params::from_json");
  r2.read("factors", factors);
  PERKREC_EXPECT_THROW_MSG(r2.finish(), ConfigError, "Params::from_json", "/factor", "unknown key",
                           "factors");
}

TEST(JsonReader, TypeAndRangeErrorsNameThePointerAndValue) {
  const Json j = parse_json_strict<ConfigError>(
      R"({"n": "ten", "small": 3000000000, "neg": -1, "frac": 2.5, "list": [1, "x"]})", "t");
  JsonReader<ConfigError> r(j, "/params", "P");
  int n = 0;
  PERKREC_EXPECT_THROW_MSG(r.read("n", n), ConfigError, "/params/n", "expected an integer",
                           "\"ten\"");
  int small = 0;
  PERKREC_EXPECT_THROW_MSG(r.read("small", small), ConfigError, "/params/small", "out of range");
  std::uint32_t neg = 0;
  PERKREC_EXPECT_THROW_MSG(r.read("neg", neg), ConfigError, "/params/neg", "out of range");
  int frac = 0;
  PERKREC_EXPECT_THROW_MSG(r.read("frac", frac), ConfigError, "/params/frac", "2.5");
  std::vector<int> list;
  PERKREC_EXPECT_THROW_MSG(r.read("list", list), ConfigError, "/params/list/1");
  double missing = 0;
  PERKREC_EXPECT_THROW_MSG(r.require("missing", missing), ConfigError, "/params/missing",
                           "required key is missing");
  PERKREC_EXPECT_THROW_MSG(JsonReader<ConfigError>(Json::array(), "/x", "P"), ConfigError, "/x",
                           "expected an object");
}

}  // namespace
}  // namespace perkrec
