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
