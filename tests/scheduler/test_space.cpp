// The search space: named dimensions, their defaults, and cheap feasibility as a value.
#include <doctest/doctest.h>

#include <set>

#include "fixtures.hpp"
#include "lasnet/scheduler/space.hpp"

namespace lp = lasnet::predictor;
namespace ls = lasnet::scheduler;

TEST_CASE("the fusion dimension has all eight combinations, none first and all last") {
  const auto f = ls::all_fusions();
  REQUIRE(f.size() == 8);
  std::set<std::string> names;
  for (const auto& x : f) names.insert(lp::to_string(x));
  CHECK(names.size() == 8);
  CHECK(lp::to_string(f.front()) == "none");
  CHECK(lp::to_string(f.back()) == "masker,gather,scatter");
}

TEST_CASE("default space of the tiny spec") {
  const auto spec = ls::test::tiny_spec();
  const auto space = ls::default_space(spec, 3, {0.5});
  REQUIRE(space.granularity.size() == 2);
  CHECK(space.granularity[0] == std::vector<std::int64_t>{1, 2, 4, 8});  // 8x8 map
  CHECK(space.granularity[1] == std::vector<std::int64_t>{1, 2, 4});     // 4x4 map
  CHECK(space.streams == std::vector<std::int64_t>{1, 2, 3});
  // Plans: 3 streams x 1 density x 4 S x 8^2 fusions (stage 1) x 3 S x 8 fusions (stage 2).
  CHECK(ls::plan_count(spec, space) == doctest::Approx(3.0 * 4 * 64 * 3 * 8));
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
