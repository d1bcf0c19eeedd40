#include <doctest/doctest.h>

#include "lasnet/common/error.hpp"
#include "lasnet/common/json_reader.hpp"

using lasnet::json::ObjectReader;

TEST_CASE("json::parse reports syntax errors with the source name") {
  CHECK_THROWS_WITH_AS(lasnet::json::parse("{\"a\": ", "model.json"),
                       doctest::Contains("model.json: not valid JSON"), lasnet::Error);
}

TEST_CASE("ObjectReader names the JSON path of missing, mistyped and unknown keys") {
  const auto doc = lasnet::json::parse(R"({"input": {"height": "big", "extra": 1}})", "x");
  ObjectReader top(doc, "");
  ObjectReader input(top.required("input"), "input");
  CHECK_THROWS_WITH_AS(input.required("width"), "input.width: missing required key", lasnet::Error);
  CHECK_THROWS_WITH_AS(input.required_positive_int("height"),
                       doctest::Contains("input.height: expected an integer, got a string"),
                       lasnet::Error);
  CHECK_THROWS_WITH_AS(input.reject_unknown(), doctest::Contains("input.extra: unknown key"),
                       lasnet::Error);
}

TEST_CASE("number checks reject zero, negatives and fractions where integers are needed") {
  const auto doc = lasnet::json::parse(R"({"a": 0, "b": -2.5, "c": 3.0, "d": 2.5})", "x");
  ObjectReader r(doc, "cfg");
  CHECK_THROWS_WITH_AS(r.required_positive_int("a"), "cfg.a: must be positive, got 0",
                       lasnet::Error);
  CHECK_THROWS_WITH_AS(r.required_positive_number("b"), "cfg.b: must be positive, got -2.5",
                       lasnet::Error);
  CHECK(r.required_positive_int("c") == 3);
  CHECK_THROWS_WITH_AS(r.required_positive_int("d"), doctest::Contains("expected an integer"),
                       lasnet::Error);
  CHECK(lasnet::json::join("stages", 2) == "stages[2]");
  CHECK(lasnet::json::join("stages[2]", "granularity") == "stages[2].granularity");
}

TEST_CASE("json::parse refuses documents nested deeper than the limit before parsing them") {
  // 64 levels parse; the 65th opening bracket (column 65 of line 1) is refused.
  const std::string ok = std::string(64, '[') + std::string(64, ']');
  CHECK(lasnet::json::parse(ok, "ok.json").is_array());
  const std::string deep = std::string(65, '[') + std::string(65, ']');
  CHECK_THROWS_WITH_AS(lasnet::json::parse(deep, "deep.json"),
                       "deep.json: nested deeper than 64 levels (line 1, column 65)",
                       lasnet::Error);
  // 100000 levels, generated here: before the limit, printing such a value into a message
  // recursed until the stack overflowed. Objects count like arrays; line 2 starts after "\n".
  std::string very_deep = "\n";
  for (int i = 0; i < 100000; ++i) very_deep += "{\"a\":";
  CHECK_THROWS_WITH_AS(lasnet::json::parse(very_deep, "very_deep.json"),
                       "very_deep.json: nested deeper than 64 levels (line 2, column 321)",
                       lasnet::Error);
  // Brackets inside strings (escaped quotes included) are text, not nesting.
  const std::string in_strings = "{\"k\\\"[\": \"" + std::string(100, '[') + "\"}";
  CHECK(lasnet::json::parse(in_strings, "s.json").size() == 1);
}

TEST_CASE("json::parse refuses a document over the size limit") {
  // 64 MiB + 1 byte of spaces: refused by its size, before the (empty) content is looked at.
  const std::string big(lasnet::json::max_document_bytes + 1, ' ');
  CHECK_THROWS_WITH_AS(lasnet::json::parse(big, "big.json"),
                       "big.json: 67108865 bytes is over the limit of 64 MiB for a JSON document",
                       lasnet::Error);
}
