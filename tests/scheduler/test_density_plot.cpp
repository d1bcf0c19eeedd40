// The density plot: its curves are the search's own prices, its mark is the search's own choice,
// and the SVG draws one series per S per stage, the dense line and the mark.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <string>

#include "fixtures.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/predictor/model.hpp"
#include "lasnet/predictor/network.hpp"
#include "lasnet/scheduler/density_plot.hpp"
#include "lasnet/scheduler/search.hpp"

namespace lp = lasnet::predictor;
namespace ls = lasnet::scheduler;

namespace {

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

double option_latency(const ls::Plan& plan, std::size_t stage, std::int64_t granularity) {
  for (const auto& o : plan.stages.at(stage).options) {
    if (o.granularity == granularity) return o.latency_s;
  }
  return -1;
}

}  // namespace

TEST_CASE("sweep_density: one curve per S that tiles the stage, priced as the search prices it") {
  const lp::Spec spec = ls::test::tiny_spec();
  const lp::Profile hw = ls::test::profile("v100");
  ls::SweepRequest request;
  request.densities = {0, 0.5, 1};
  request.density = 0.3;
  const auto sweep = ls::sweep_density(spec, hw, request);

  // The marked density joins the samples: {0, 0.3, 0.5, 1}.
  REQUIRE(sweep.densities.size() == 4);
  CHECK(sweep.densities[1] == doctest::Approx(0.3));
  REQUIRE(sweep.stages.size() == 2);
  // s1's 8x8 map is tiled by S = 1, 2, 4, 8; s2's 4x4 map by S = 1, 2, 4.
  const auto& s1 = sweep.stages[0];
  const auto& s2 = sweep.stages[1];
  CHECK(s1.name == "s1");
  CHECK(s1.height == 8);
  CHECK(s1.blocks == 2);
  REQUIRE(s1.curves.size() == 4);
  REQUIRE(s2.curves.size() == 3);
  CHECK(s1.curves[3].granularity == 8);
  for (const auto& stage : sweep.stages) {
    for (const auto& c : stage.curves) CHECK(c.latency_s.size() == 4);
  }

  // Every point is the search's price of that S at that density.
  ls::SearchRequest half;
  half.density = 0.5;
  half.granularity_tolerance = 0.02;
  const auto at_half = ls::search(spec, hw, half);
  for (std::size_t i = 0; i < 2; ++i) {
    for (const auto& c : sweep.stages[i].curves) {
      CHECK(c.latency_s[2] == doctest::Approx(option_latency(at_half, i, c.granularity)));
    }
  }
  // The mark is schedule's choice at 0.3 (2% tolerance), at that choice's latency.
  ls::SearchRequest marked = half;
  marked.density = 0.3;
  const auto at_mark = ls::search(spec, hw, marked);
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(sweep.stages[i].recommended == at_mark.stages[i].granularity);
    CHECK(sweep.stages[i].fastest == at_mark.stages[i].fastest_granularity);
    CHECK(sweep.stages[i].marked_density == doctest::Approx(0.3));
    CHECK(sweep.stages[i].recommended_latency_s ==
          doctest::Approx(option_latency(at_mark, i, at_mark.stages[i].granularity)));
  }
  // The dense reference is predict's dense stage.
  lp::PredictionCache cache(hw);
  const auto dense =
      lp::predict_network(lp::build_network(spec, lp::Execution::dense), spec, hw, cache);
  const auto s1_dense = std::find_if(dense.stages.begin(), dense.stages.end(),
                                     [](const auto& s) { return s.name == "s1"; });
  REQUIRE(s1_dense != dense.stages.end());
  CHECK(s1.dense_latency_s == doctest::Approx(s1_dense->latency_s));
  CHECK(s1.dense_latency_s > 0);
}

TEST_CASE("sweep_density: the spec's own densities mark each stage at its blocks' mean") {
  lp::Spec spec = ls::test::tiny_spec();
  lp::set_density(spec, 0.5, "test");
  spec.dynamic.density[0] = {0.2, 0.6};  // s1: mean 0.4
  ls::SweepRequest request;
  request.densities = {0, 1};
  const auto sweep = ls::sweep_density(spec, ls::test::profile("v100"), request);
  CHECK(sweep.spec_density);
  CHECK(sweep.stages[0].marked_density == doctest::Approx(0.4));
  CHECK(sweep.stages[1].marked_density == doctest::Approx(0.5));
  // {0, 1} plus the two marks.
  CHECK(sweep.densities.size() == 4);
  ls::SearchRequest own;  // the spec's densities, schedule's tolerance
  own.granularity_tolerance = 0.02;
  const auto plan = ls::search(spec, ls::test::profile("v100"), own);
  CHECK(sweep.stages[0].recommended == plan.stages[0].granularity);
}

TEST_CASE("sweep_density: a spec without densities and no --density is a user error") {
  ls::SweepRequest request;
  request.densities = {0, 1};
  CHECK_THROWS_AS(ls::sweep_density(ls::test::tiny_spec(), ls::test::profile("v100"), request),
                  lasnet::Error);
}

TEST_CASE("render_density_svg: a series per S per stage, a dense line and a mark per stage") {
  const lp::Spec spec = ls::test::tiny_spec();
  ls::SweepRequest request;
  request.densities = {0, 0.25, 0.5, 0.75, 1};
  request.density = 0.5;
  const auto sweep = ls::sweep_density(spec, ls::test::profile("v100"), request);
  const std::string svg = ls::render_density_svg(sweep);
  CHECK(svg.starts_with("<svg"));
  CHECK(svg.ends_with("</svg>\n"));
  CHECK(count(svg, "class=\"series\"") == 4 + 3);
  CHECK(count(svg, "class=\"series\" data-stage=\"s1\"") == 4);
  CHECK(count(svg, "class=\"dense\"") == 2);
  CHECK(count(svg, "class=\"recommended\"") == 2);
  CHECK(svg.find(fmt::format("class=\"recommended\" data-stage=\"s2\" data-s=\"{}\"",
                             sweep.stages[1].recommended)) != std::string::npos);
  // Five densities: each series is a polyline of five points (four spaces between them).
  const auto series = svg.find("<polyline points=\"");
  REQUIRE(series != std::string::npos);
  const auto end = svg.find('"', series + 18);
  CHECK(std::count(svg.begin() + static_cast<long>(series) + 18,
                   svg.begin() + static_cast<long>(end), ' ') == 4);
  CHECK(svg.find("tiny on v100") != std::string::npos);
  CHECK(svg.find("s1: 8x8 map, 2 blocks") != std::string::npos);
}
