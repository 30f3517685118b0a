// io/json_file.h: syntax errors name file + line + column; typed getters name
// file + dotted field + expected type + the value seen.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "io/json_file.h"
#include "q3vl/error.h"
#include "support/error_message.h"
#include "support/test_paths.h"

namespace q3vl::io {
namespace {

using q3vl::testing::error_message;

TEST(JsonFile, SyntaxErrorNamesFileLineAndColumn) {
  const std::string text = "{\n  \"a\": 1,\n  \"b\": ]\n}\n";
  const auto message = error_message(ErrorKind::format, [&] { parse_json(text, "x.json"); });
  // The ']' is the 8th character of line 3.
  EXPECT_NE(message.find("x.json: line 3, column 8: "), std::string::npos) << message;
  EXPECT_EQ(message.find("[json.exception"), std::string::npos) << message;
}

// Found by tests/fuzz (model_config): nlohmann throws out_of_range, not parse_error,
// for a number beyond double's range; it must still be a q3vl::Error.
TEST(JsonFile, NumberOverflowIsAFormatError) {
  const auto message = error_message(ErrorKind::format, [] { parse_json("{\"head_dim\": 31e308}", "c.json"); });
  EXPECT_EQ(message, "c.json: number overflow parsing '31e308'");
}

// io::JsonLimits: nesting beyond max_depth is refused while parsing, a file above
// max_bytes before it is read; both name the limit.
TEST(JsonFile, LimitsNameTheLimit) {
  const std::string deep = std::string(128, '[') + std::string(128, ']');
  EXPECT_TRUE(parse_json(deep, "d.json").is_array());
  EXPECT_EQ(error_message(ErrorKind::limit, [&] { parse_json("[" + deep + "]", "d.json"); }),
            "d.json: nesting depth: expected at most 128 levels (JsonLimits::max_depth), got deeper");
  EXPECT_EQ(error_message(ErrorKind::limit, [&] { parse_json("{\"a\": [[{}]]}", "d.json", JsonLimits{.max_depth = 3}); }),
            "d.json: nesting depth: expected at most 3 levels (JsonLimits::max_depth), got deeper");
  const auto path = testing::work_dir() / "limits.json";
  std::ofstream(path) << "{\"a\": \"0123456789\"}";
  EXPECT_EQ(read_json_file(path, JsonLimits{.max_bytes = 19}).at("a"), "0123456789");
  EXPECT_EQ(error_message(ErrorKind::limit, [&] { read_json_file(path, JsonLimits{.max_bytes = 18}); }),
            path.string() + ": file size: expected at most 18 bytes (JsonLimits::max_bytes), got 19 bytes");
}

TEST(JsonFile, TruncatedDocumentIsAFormatError) {
  const auto message =
      error_message(ErrorKind::format, [] { parse_json("{\"a\": [1, 2", "t.json"); });
  EXPECT_EQ(message.rfind("t.json: line 1, column ", 0), 0u) << message;
}

TEST(JsonFile, KeepsKeyOrder) {
  const Json value = parse_json(R"({"z": 1, "a": 2, "m": 3})", "o.json");
  EXPECT_EQ(value.dump(), R"({"z":1,"a":2,"m":3})");
}

TEST(JsonFile, TypedGettersReturnValues) {
  const Json doc = parse_json(
      R"({"n": 7, "x": 2.5, "i": 3, "b": true, "s": "hi", "arr": [1, 2, 3], "f": [0.5, 1],
          "sub": {"deep": {"k": -4}}, "nothing": null})",
      "v.json");
  const JsonObject root(doc, "v.json");
  EXPECT_EQ(root.get_int("n"), 7);
  EXPECT_DOUBLE_EQ(root.get_number("x"), 2.5);
  EXPECT_DOUBLE_EQ(root.get_number("i"), 3.0);  // an integer is a number
  EXPECT_TRUE(root.get_bool("b"));
  EXPECT_EQ(root.get_string("s"), "hi");
  EXPECT_EQ(root.get_int_array("arr"), (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(root.get_number_array("f"), (std::vector<double>{0.5, 1.0}));
  const JsonObject deep = root.object("sub").object("deep");
  EXPECT_EQ(deep.path(), "sub.deep");
  EXPECT_EQ(deep.get_int("k"), -4);
  EXPECT_EQ(deep.field_path("k"), "sub.deep.k");
  // null counts as absent, so optional getters fall back.
  EXPECT_FALSE(root.has("nothing"));
  EXPECT_EQ(root.get_int("nothing", 11), 11);
  EXPECT_EQ(root.get_string("absent", "d"), "d");
  EXPECT_FALSE(root.optional_object("absent").has_value());
  EXPECT_EQ(root.get_int_array("absent", {9}), (std::vector<std::int64_t>{9}));
}

TEST(JsonFile, FieldErrorsNameFileDottedPathExpectationAndValue) {
  const Json doc = parse_json(
      R"({"sub": {"deep": {"k": "64", "f": 1.5, "a": [1, "x"], "o": 3}}, "top": null})", "c.json");
  const JsonObject deep = JsonObject(doc, "c.json").object("sub").object("deep");
  struct Case {
    std::function<void()> call;
    const char* message;
  };
  const Case cases[] = {
      {[&] { deep.get_int("k"); }, "c.json: sub.deep.k: expected integer, got \"64\""},
      {[&] { deep.get_int("f"); }, "c.json: sub.deep.f: expected integer, got 1.5"},
      {[&] { deep.get_int("missing"); }, "c.json: sub.deep.missing: expected integer, got missing"},
      {[&] { deep.get_bool("k"); }, "c.json: sub.deep.k: expected boolean, got \"64\""},
      {[&] { deep.get_string("f"); }, "c.json: sub.deep.f: expected string, got 1.5"},
      {[&] { deep.get_int_array("a"); }, "c.json: sub.deep.a[1]: expected integer, got string \"x\""},
      {[&] { deep.object("o"); }, "c.json: sub.deep.o: expected object, got 3"},
      // A present value of the wrong type is an error even where a fallback exists.
      {[&] { deep.get_int("k", 1); }, "c.json: sub.deep.k: expected integer, got \"64\""},
      {[&] { deep.fail("k", "a small number"); }, "c.json: sub.deep.k: expected a small number, got \"64\""},
      {[&] { JsonObject(doc["top"], "c.json", "top"); }, "c.json: top: expected object, got null"},
  };
  for (const Case& c : cases) EXPECT_EQ(error_message(ErrorKind::config, c.call), c.message);
}

TEST(JsonFile, LongValuesAreAbbreviated) {
  const Json value = Json::array();
  Json big = value;
  for (int i = 0; i < 100; ++i) big.push_back(i);
  const std::string text = describe_json_value(big);
  EXPECT_EQ(text.size(), 60u);
  EXPECT_EQ(text.substr(57), "...");
}

TEST(JsonFile, WriteThenReadRoundTrips) {
  const auto dir = testing::work_dir() / "json_file_test";
  std::filesystem::create_directories(dir);
  const auto path = dir / "round.json";
  const Json value = parse_json(R"({"b": [1, 2.5, "s"], "a": {"x": true}})", "in");
  write_json_file(path, value);
  EXPECT_EQ(read_json_file(path), value);
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "{\n  \"b\": [\n    1,\n    2.5,\n    \"s\"\n  ],\n  \"a\": {\n    \"x\": true\n  }\n}\n");
}

TEST(JsonFile, MissingFileIsAnIoErrorNamingIt) {
  const auto path = testing::work_dir() / "json_file_test" / "does-not-exist.json";
  const auto message = error_message(ErrorKind::io, [&] { read_json_file(path); });
  EXPECT_NE(message.find(path.string()), std::string::npos) << message;
}

}  // namespace
}  // namespace q3vl::io
