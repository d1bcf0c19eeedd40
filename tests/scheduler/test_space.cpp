// The search space: named dimensions, their defaults, and cheap feasibility as a value.
#include <doctest/doctest.h>

#include <set>

#include "fixtures.hpp"
#include "lasnet/scheduler/space.hpp"

namespace lp = lasnet::predictor;
namespace ls = lasnet::scheduler;

TEST_CASE("the fusion dimension: eight combinations, none first, then the four union forms") {
  const auto f = ls::all_fusions();
  REQUIRE(f.size() == 12);
  std::set<std::string> names;
  for (const auto& x : f) names.insert(lp::to_string(x));
  CHECK(names.size() == 12);
  CHECK(lp::to_string(f.front()) == "none");
  CHECK(lp::to_string(f[7]) == "masker,gather,scatter");
  for (std::size_t i = 0; i < f.size(); ++i) {
    CAPTURE(i);
    CHECK(f[i].union_conv1 == (i >= 8));
    CHECK_FALSE((f[i].union_conv1 && f[i].masker_conv1));  // they exclude each other
  }
  CHECK(lp::to_string(f[8]) == "union");
  CHECK(lp::to_string(f.back()) == "union,gather,scatter");
}

TEST_CASE("default space of the tiny spec") {
  const auto spec = ls::test::tiny_spec();
  const auto space = ls::default_space(spec, 3, {0.5});
  REQUIRE(space.granularity.size() == 2);
  CHECK(space.granularity[0] == std::vector<std::int64_t>{1, 2, 4, 8});  // 8x8 map
  CHECK(space.granularity[1] == std::vector<std::int64_t>{1, 2, 4});     // 4x4 map
  CHECK(space.streams == std::vector<std::int64_t>{1, 2, 3});
  // Plans: 3 streams x 1 density x 4 S x 12^2 fusions (stage 1) x 3 S x 12 fusions (stage 2).
  CHECK(ls::plan_count(spec, space) == doctest::Approx(3.0 * 4 * 144 * 3 * 12));
}

TEST_CASE("a granularity past the map is infeasible, with a reason; a non-dividing one runs") {
  const auto spec = ls::test::tiny_spec();
  // S = 3 on the 8x8 map: a 3x3 patch grid whose border patches are partial.
  CHECK(ls::check_candidate(spec, 0, {3, {}, 1, 0.5}).ok);
  const auto bad = ls::check_candidate(spec, 1, {8, {}, 1, 0.5});  // larger than 4x4
  CHECK_FALSE(bad.ok);
  CHECK(bad.reason.find("does not fit the 4x4 map") != std::string::npos);
  CHECK(ls::check_candidate(spec, 1, {4, {}, 2, 0.5}).ok);
  CHECK_FALSE(ls::check_candidate(spec, 1, {4, {}, 0, 0.5}).ok);
}
