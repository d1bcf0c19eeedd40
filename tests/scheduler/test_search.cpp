// The search: its answer is the true optimum of the product space (checked by brute force on
// small specs), fusion never predicts worse than no fusion, budgets and infeasible choices are
// values, and the plan's timeline respects every dependency.
#include <doctest/doctest.h>

#include <limits>

#include "fixtures.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/scheduler/search.hpp"

namespace lp = lasnet::predictor;
namespace ls = lasnet::scheduler;

namespace {

struct Best {
  double latency_s = std::numeric_limits<double>::infinity();
  std::vector<std::int64_t> granularity;
  std::int64_t streams = 0;
  std::size_t plans = 0;  // whole-network plans evaluated
};

// Exhaustive: every S per stage x every fusion per block x every stream count, each plan built
// as a whole network and list-scheduled as one graph (no per-block shortcut).
Best brute_force(const lp::Spec& spec, const lp::Profile& hw, double density,
                 std::int64_t max_streams) {
  const auto dense = lp::build_network(spec, lp::Execution::dense);
  const auto fusions = ls::all_fusions();
  const auto geometry = lp::stage_geometry(spec);
  std::vector<std::pair<std::size_t, std::size_t>> blocks;  // (stage, index)
  for (std::size_t s = 0; s < spec.stages.size(); ++s) {
    for (std::size_t i = 0; i < static_cast<std::size_t>(spec.stages[s].blocks); ++i) {
      blocks.emplace_back(s, i);
    }
  }
  lp::PredictionCache cache(hw);
  Best best;
  std::vector<std::int64_t> s_choice(spec.stages.size());
  const auto s_options = [&](std::size_t stage) {
    return lp::granularity_candidates(geometry[stage]);
  };
  // Odometer over the S per stage.
  std::vector<std::size_t> si(spec.stages.size(), 0);
  while (true) {
    for (std::size_t s = 0; s < si.size(); ++s) s_choice[s] = s_options(s)[si[s]];
    std::vector<std::size_t> fi(blocks.size(), 0);
    while (true) {
      std::vector<lp::BlockGraph> net{dense.front()};
      for (std::size_t b = 0; b < blocks.size(); ++b) {
        const auto [stage, index] = blocks[b];
        net.push_back(lp::make_block(spec, stage, index, lp::Execution::dynamic,
                                     {s_choice[stage], density, fusions[fi[b]]}));
      }
      net.push_back(dense.back());
      const auto g = ls::predict_op_graph(net, cache, hw);
      for (std::int64_t k = 1; k <= max_streams; ++k) {
        const double t = ls::schedule_streams(g, k).makespan_s;
        ++best.plans;
        if (t < best.latency_s) best = {t, s_choice, k, best.plans};
      }
      std::size_t b = 0;
      while (b < fi.size() && ++fi[b] == fusions.size()) fi[b++] = 0;
      if (b == fi.size()) break;
    }
    std::size_t s = 0;
    while (s < si.size() && ++si[s] == s_options(s).size()) si[s++] = 0;
    if (s == si.size()) break;
  }
  return best;
}

ls::Plan min_latency(const lp::Spec& spec, const lp::Profile& hw, double density,
                     std::int64_t streams) {
  ls::SearchRequest r;
  r.density = density;
  r.max_streams = streams;
  return ls::search(spec, hw, r);
}

}  // namespace

TEST_CASE("the search finds the brute-force optimum on small specs") {
  struct Case {
    int batch;
    const char* hw;
    double density;
  };
  for (const Case c : {Case{2, "h100-sxm", 0.3}, Case{1, "v100", 0.75}, Case{1, "tx2", 0.5}}) {
    const auto spec = ls::test::tiny_spec(c.batch);
    const auto hw = ls::test::profile(c.hw);
    const Best truth = brute_force(spec, hw, c.density, 2);
    // 4 x 3 granularities x 12^3 fusions (three dynamic blocks) x 2 stream counts.
    CHECK(truth.plans == 4 * 3 * 1728 * 2);
    CHECK(truth.plans ==
          static_cast<std::size_t>(ls::plan_count(spec, ls::default_space(spec, 2, {c.density}))));
    const auto plan = min_latency(spec, hw, c.density, 2);
    INFO(c.hw, " batch ", c.batch, " density ", c.density);
    CHECK(plan.latency_s == doctest::Approx(truth.latency_s).epsilon(1e-9));
    // The plan's own timeline (the whole network on its streams) has the reported makespan.
    CHECK(plan.schedule.makespan_s == doctest::Approx(plan.latency_s).epsilon(1e-9));
    CHECK(plan.blocks.size() == 5);  // stem, three blocks, head
  }
}

TEST_CASE("the tolerance recommends the finest S within it of the fastest, stage by stage") {
  const auto spec = ls::test::tiny_spec(2);
  const auto hw = ls::test::profile("h100-sxm");
  const auto fastest = min_latency(spec, hw, 0.5, 1);
  for (const auto& st : fastest.stages) CHECK(st.granularity == st.fastest_granularity);
  for (const double tolerance : {0.0, 0.01, 0.05, 0.2, 1.0}) {
    ls::SearchRequest r;
    r.density = 0.5;
    r.granularity_tolerance = tolerance;
    const auto plan = ls::search(spec, hw, r);
    INFO("tolerance ", tolerance);
    CHECK(plan.granularity_tolerance == tolerance);
    REQUIRE(plan.stages.size() == fastest.stages.size());
    for (std::size_t st = 0; st < plan.stages.size(); ++st) {
      const auto& stage = plan.stages[st];
      CHECK(stage.fastest_granularity == fastest.stages[st].granularity);
      const double limit = fastest.stages[st].latency_s * (1 + tolerance);
      CHECK(stage.latency_s <= limit);
      // No finer S is within the tolerance: checked over the whole table.
      for (const auto& o : stage.options) {
        if (o.granularity < stage.granularity && o.feasibility.ok) CHECK(o.latency_s > limit);
      }
    }
    CHECK(plan.latency_s >= fastest.latency_s);
    CHECK(plan.latency_s <= fastest.latency_s * (1 + tolerance) + 1e-12);
    CHECK(plan.schedule.makespan_s == doctest::Approx(plan.latency_s).epsilon(1e-9));
    if (tolerance == 1.0) {
      // Every stage of the tiny spec has a feasible S = 1 within 2x of its fastest.
      for (const auto& stage : plan.stages) CHECK(stage.granularity == 1);
    }
  }
  ls::SearchRequest bad;
  bad.density = 0.5;
  bad.granularity_tolerance = -0.1;
  CHECK_THROWS_AS(ls::search(spec, hw, bad), lasnet::Error);
}

TEST_CASE("fusion never predicts worse than no fusion") {
  for (const auto& [spec, hw] :
       {std::pair{ls::test::tiny_spec(2), ls::test::profile("h100-sxm")},
        std::pair{ls::test::example("resnet50"), ls::test::profile("v100")},
        std::pair{ls::test::example("regnety_400mf"), ls::test::profile("tx2")}}) {
    INFO(spec.name, " on ", hw.name);
    const auto fused = min_latency(spec, hw, 0.5, 2);
    for (const auto& b : fused.blocks) {
      CHECK(b.latency_s <= b.unfused_latency_s * (1 + 1e-12));
      CHECK(b.fusion_saving_s() >= -1e-15);
    }
    ls::SearchRequest none;
    none.density = 0.5;
    none.max_streams = 2;
    none.fusions = {lp::Fusion{false, false, false}};
    const auto unfused = ls::search(spec, hw, none);
    CHECK(fused.latency_s <= unfused.latency_s * (1 + 1e-12));
    for (std::size_t s = 0; s < fused.stages.size(); ++s) {
      for (std::size_t o = 0; o < fused.stages[s].options.size(); ++o) {
        CHECK(fused.stages[s].options[o].latency_s <=
              unfused.stages[s].options[o].latency_s * (1 + 1e-12));
      }
    }
  }
}

TEST_CASE("more streams never make the chosen plan slower; one-stream figures agree") {
  const auto spec = ls::test::example("resnet50");
  const auto hw = ls::test::profile("h100-sxm");
  auto small = spec;
  small.batch = 1;
  const auto plan = min_latency(small, hw, 0.5, 4);
  REQUIRE(plan.stream_options.size() == 4);
  CHECK(plan.stream_options[0].streams == 1);
  CHECK(plan.latency_s <= plan.stream_options[0].latency_s * (1 + 1e-12));
  CHECK(plan.latency_s <= plan.single_stream_latency_s * (1 + 1e-12));
  CHECK(plan.streams >= 1);
  CHECK(plan.streams <= 4);
  const auto one = min_latency(small, hw, 0.5, 1);
  CHECK(one.latency_s == doctest::Approx(plan.stream_options[0].latency_s).epsilon(1e-12));
  CHECK(one.latency_s == doctest::Approx(one.single_stream_latency_s).epsilon(1e-9));
}

TEST_CASE("the plan's timeline respects every dependency") {
  const auto hw = ls::test::profile("h100-sxm");
  for (auto spec : {ls::test::example("resnet101"), ls::test::example("mobilenetv2"),
                    ls::test::example("regnety_800mf")}) {
    spec.batch = 1;
    const auto plan = min_latency(spec, hw, 0.4, 3);
    INFO(spec.name);
    const auto violation = ls::check_schedule(plan.graph, plan.schedule);
    CHECK_FALSE(violation.has_value());
    CHECK(plan.schedule.streams == plan.streams);
    CHECK(plan.schedule.makespan_s == doctest::Approx(plan.latency_s).epsilon(1e-9));
  }
}

TEST_CASE("budget objective: the largest density whose best plan meets the budget") {
  const auto spec = ls::test::tiny_spec(2);
  const auto hw = ls::test::profile("v100");
  // Truth from min-latency searches at every grid density (themselves checked above).
  std::vector<double> grid;
  std::vector<double> best;
  for (int i = 0; i <= 20; ++i) {
    grid.push_back(i == 20 ? 1.0 : i * 0.05);
    best.push_back(min_latency(spec, hw, grid.back(), 2).latency_s);
  }
  for (const double budget :
       {best[7] * (1 + 1e-9), best[13], 0.5 * (best[3] + best[4]), best[20] * 2}) {
    double expected = -1;
    for (std::size_t i = 0; i < grid.size(); ++i) {
      if (best[i] <= budget * (1 + 1e-12)) expected = grid[i];
    }
    ls::SearchRequest r;
    r.objective = ls::Objective::max_density;
    r.budget_s = budget;
    r.density_step = 0.05;
    r.max_streams = 2;
    const auto plan = ls::search(spec, hw, r);
    INFO("budget ", budget);
    REQUIRE(plan.feasibility.ok);
    REQUIRE(plan.density.has_value());
    CHECK(*plan.density == doctest::Approx(expected));
    CHECK(plan.latency_s <= budget * (1 + 1e-12));
    CHECK_FALSE(plan.density_scan.empty());
  }
}

TEST_CASE("an unmeetable budget is a value with a reason, not an error") {
  ls::SearchRequest r;
  r.objective = ls::Objective::max_density;
  r.budget_s = 1e-9;
  const auto plan = ls::search(ls::test::tiny_spec(), ls::test::profile("v100"), r);
  CHECK_FALSE(plan.feasibility.ok);
  CHECK(plan.feasibility.reason.find("budget") != std::string::npos);
  CHECK(plan.density == 0.0);
}

TEST_CASE("a fixed granularity past the map stays in the table as infeasible") {
  ls::SearchRequest r;
  r.density = 0.5;
  r.granularity = {{9, 4}, {2}};  // stage 1's map is 8x8
  const auto plan = ls::search(ls::test::tiny_spec(), ls::test::profile("v100"), r);
  CHECK(plan.granularity == std::vector<std::int64_t>{4, 2});
  const auto& options = plan.stages[0].options;
  REQUIRE(options.size() == 2);
  CHECK_FALSE(options[0].feasibility.ok);
  CHECK(options[0].feasibility.reason.find("does not fit") != std::string::npos);
  CHECK(options[1].feasibility.ok);
}

TEST_CASE("a fixed granularity that does not divide the map is searched like any other") {
  ls::SearchRequest r;
  r.density = 0.5;
  r.granularity = {{3}, {2}};  // 3 on the 8x8 map: partial border patches
  const auto plan = ls::search(ls::test::tiny_spec(), ls::test::profile("v100"), r);
  REQUIRE(plan.feasibility.ok);
  CHECK(plan.granularity == std::vector<std::int64_t>{3, 2});
  CHECK(plan.stages[0].options[0].feasibility.ok);
}

TEST_CASE("user errors throw lasnet::Error") {
  const auto spec = ls::test::tiny_spec();  // no dynamic section: no densities of its own
  const auto hw = ls::test::profile("v100");
  CHECK_THROWS_AS(ls::search(spec, hw, ls::SearchRequest{}), lasnet::Error);
  ls::SearchRequest bad;
  bad.density = 1.5;
  CHECK_THROWS_AS(ls::search(spec, hw, bad), lasnet::Error);
  bad.density = 0.5;
  bad.max_streams = 0;
  CHECK_THROWS_AS(ls::search(spec, hw, bad), lasnet::Error);
}

TEST_CASE("the spec's own per-block densities are used when none is given") {
  auto spec = ls::test::tiny_spec();
  lp::set_granularity(spec, {2, 2}, "test");
  lp::set_density(spec, 0.5, "test");
  spec.dynamic.density[0][1] = 0.25;
  const auto plan = ls::search(spec, ls::test::profile("v100"), ls::SearchRequest{});
  CHECK_FALSE(plan.density.has_value());
  CHECK(plan.blocks[1].density == 0.5);   // s1.0
  CHECK(plan.blocks[2].density == 0.25);  // s1.1
}

TEST_CASE("the scheduled spec parses back with the plan's granularity and density") {
  const auto spec = ls::test::example("resnet50");
  const auto hw = ls::test::profile("v100");
  const auto plan = min_latency(spec, hw, 0.6, 2);
  const auto text = lp::spec_to_json(ls::scheduled_spec(spec, plan));
  const auto back = lp::parse_spec(text, "scheduled.json");
  CHECK(back.dynamic.enabled);
  CHECK(back.dynamic.granularity == plan.granularity);
  for (const auto& stage : back.dynamic.density) {
    for (const double d : stage) CHECK(d == doctest::Approx(0.6));
  }
  // Every block's chosen fusion is in the spec, so predicting it prices exactly the plan's
  // blocks: the same total as the plan on one stream.
  for (const auto& c : plan.blocks) {
    if (c.stage < 0 || !c.dynamic) continue;
    CHECK(back.dynamic.fusion.at(static_cast<std::size_t>(c.stage))
              .at(static_cast<std::size_t>(c.index_in_stage)) == c.fusion);
  }
  const auto blocks = lp::build_network(back, lp::Execution::dynamic);
  for (const auto& b : blocks) {
    if (b.stage >= 0 && b.dynamic) {
      CHECK(b.granularity == plan.granularity[static_cast<std::size_t>(b.stage)]);
    }
  }
  lp::PredictionCache cache(hw);
  const auto predicted = lp::predict_network(blocks, back, hw, cache);
  CHECK(predicted.latency_s == doctest::Approx(plan.single_stream_latency_s).epsilon(1e-9));
}

TEST_CASE("a stage with no feasible granularity makes the plan infeasible, with a reason") {
  ls::SearchRequest r;
  r.density = 0.5;
  r.granularity = {{9}, {2}};  // stage s1's map is 8x8
  const auto plan = ls::search(ls::test::tiny_spec(), ls::test::profile("v100"), r);
  CHECK_FALSE(plan.feasibility.ok);
  CHECK(plan.feasibility.reason.find("stage s1") != std::string::npos);
  CHECK(plan.blocks.empty());
  CHECK(boost::num_vertices(plan.graph) == 0);
}

TEST_CASE("union forms: searched per block, never chosen where a block has no 1x1 conv1") {
  // Basic blocks ignore the union token: their tables copy the plain forms' latencies (no
  // graph is built twice), so the search evaluates as many block graphs as without the union
  // forms and, ties keeping the plain form, never names union.
  const auto basic = lp::parse_spec(R"({"name": "b", "batch": 2, "input": {"channels": 32,
    "height": 8, "width": 8}, "stages": [{"name": "s1", "block": "basic", "blocks": 2,
    "out_channels": 32}, {"name": "s2", "block": "basic", "blocks": 1, "out_channels": 64,
    "stride": 2}]})",
                                    "b.json");
  const auto hw = ls::test::profile("h100-sxm");
  ls::SearchRequest r;
  r.density = 0.3;
  const auto plan = ls::search(basic, hw, r);
  for (const auto& b : plan.blocks) CHECK_FALSE(b.fusion.union_conv1);
  const auto forms = ls::all_fusions();
  auto plain = r;
  plain.fusions.assign(forms.begin(), forms.begin() + 8);
  const auto without = ls::search(basic, hw, plain);
  CHECK(plan.block_evaluations == without.block_evaluations);
  CHECK(plan.latency_s == without.latency_s);
  // A ResNet-50 layer3 block (1024 -> 256 -> 1024 on 14x14, batch 128) has the form: at d = 0.3
  // and the S it picks, 7 (2x2 patches per image, conv2 windows 9 wide, 7 apart), the union
  // covers about 0.36 of the map (uniform: per side 12 rows under one window, 2 under two:
  // 1 - ((12/14)^2 0.7 + 2 (12/14)(2/14) 0.49 + (2/14)^2 0.24) = 0.36), so its conv1 and the
  // unfused masker cost less than the masker form's dense conv1; the plan names it.
  const auto layer3 = lp::parse_spec(R"({"name": "l3", "batch": 128, "input": {"channels": 1024,
    "height": 14, "width": 14}, "stages": [{"name": "layer3", "block": "bottleneck", "blocks": 2,
    "mid_channels": 256, "out_channels": 1024}]})",
                                     "l3.json");
  const auto chosen = ls::search(layer3, ls::test::profile("h100"), r);
  std::size_t with_union = 0;
  for (const auto& b : chosen.blocks) with_union += b.fusion.union_conv1 ? 1 : 0;
  CHECK(with_union == 2);
}

TEST_CASE("search: in fp16 only the forms the kernels run (no fused masker) are recommended") {
  // The layer3 blocks above, in fp16: the fp16 implicit GEMM has no logit channel, so no
  // dynamic block's form fuses the masker.
  auto layer3 = lp::parse_spec(R"({"name": "l3", "batch": 128, "input": {"channels": 1024,
    "height": 14, "width": 14}, "stages": [{"name": "layer3", "block": "bottleneck", "blocks": 2,
    "mid_channels": 256, "out_channels": 1024}]})",
                               "l3.json");
  layer3.precision = lp::Precision::fp16;
  ls::SearchRequest r;
  r.density = 0.3;
  const auto plan = ls::search(layer3, ls::test::profile("h100"), r);
  std::size_t dynamic = 0;
  for (const auto& b : plan.blocks) {
    if (b.stage < 0) continue;
    CAPTURE(b.name);
    CHECK(lp::fusion_available(lp::Precision::fp16, b.fusion));
    ++dynamic;
  }
  CHECK(dynamic == 2);
}
