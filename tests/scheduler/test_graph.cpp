// The operator graph: one vertex per kernel with the predictor's latency, edges from
// OpNode::after inside a block and a barrier between consecutive blocks.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "fixtures.hpp"
#include "lasnet/scheduler/graph.hpp"

namespace lp = lasnet::predictor;
namespace ls = lasnet::scheduler;

TEST_CASE("sm_demand is the fraction of one wave a grid fills") {
  lp::Profile hw;
  hw.sm_count = 80;
  lp::OpPrediction p;
  p.tiles = 40;
  p.tiles_per_sm = 1;
  CHECK(ls::sm_demand(p, hw) == doctest::Approx(0.5));  // 40 tiles / (80 SMs x 1)
  p.tiles_per_sm = 4;
  CHECK(ls::sm_demand(p, hw) == doctest::Approx(0.125));  // 40 / 320
  p.tiles = 1000;
  CHECK(ls::sm_demand(p, hw) == 1.0);  // several waves: the whole GPU
  p.tiles = 0;
  p.empty = true;
  CHECK(ls::sm_demand(p, hw) == 0.0);  // nothing to run
  p.empty = false;
  p.tiles_per_sm = 0;
  p.tiles = 10;
  CHECK(ls::sm_demand(p, hw) == 1.0);  // no occupancy data: assume a full wave
}

TEST_CASE("occupancy: waves, the last wave's slots and the DRAM share") {
  lp::Profile hw;
  hw.sm_count = 80;
  lp::OpPrediction p;
  p.tiles = 1000;
  p.tiles_per_sm = 4;  // 320 slots: waves 320, 320, 320, 40
  p.latency_s = 10e-6;
  p.dram_s = 4e-6;
  auto o = ls::occupancy(lp::Op{}, p, hw);
  CHECK(o.sm_demand == 1.0);
  CHECK(o.waves == 4);
  CHECK(o.head_fraction == doctest::Approx(0.75));
  CHECK(o.head_demand == 1.0);
  CHECK(o.tail_demand == doctest::Approx(40.0 / 320));
  CHECK(o.dram_share == doctest::Approx(0.4));
  p.tiles = 960;  // exactly three waves: the last one full
  o = ls::occupancy(lp::Op{}, p, hw);
  CHECK(o.waves == 3);
  CHECK(o.tail_demand == doctest::Approx(1.0));
  p.tiles = 96;      // one wave on 30% of the slots
  p.dram_s = 30e-6;  // the model's DRAM time above its latency (calibration): capped
  o = ls::occupancy(lp::Op{}, p, hw);
  CHECK(o.waves == 1);
  CHECK(o.head_fraction == 0.0);
  CHECK(o.sm_demand == doctest::Approx(0.3));
  CHECK(o.tail_demand == doctest::Approx(0.3));
  CHECK(o.dram_share == 1.0);
  p.tiles_per_sm = 0;  // no occupancy data: one full wave
  o = ls::occupancy(lp::Op{}, p, hw);
  CHECK(o.waves == 1);
  CHECK(o.sm_demand == 1.0);
}

TEST_CASE("occupancy: the masker's logits pass, then its pool") {
  // 132 SMs x 64 warp slots = 8448; 128 x 112 x 112 pixels fill them (one warp per pixel), a
  // 28 x 28 map at batch 1 (784 pixels) fills 784 / 8448. Logits max(compute, DRAM) = 60 us
  // against the pool's 20 us of L2 time: 3/4 of the masker holds the logits' slots, then the
  // pool's 512 threads on the busiest SM hold 512 / 2048 of its slots.
  lp::Profile hw;
  hw.sm_count = 132;
  hw.max_threads_per_sm = 2048;
  lp::Op masker;
  masker.kind = lp::OpKind::masker;
  masker.batch = 128;
  masker.in_height = masker.in_width = 112;
  lp::OpPrediction p;
  p.latency_s = 100e-6;
  p.compute_s = 2e-6;
  p.dram_s = 60e-6;
  p.l2_s = 20e-6;
  p.tiles = 2048;
  p.tiles_per_sm = 512;
  auto o = ls::occupancy(masker, p, hw);
  CHECK(o.head_demand == 1.0);
  CHECK(o.head_fraction == doctest::Approx(0.75));
  CHECK(o.tail_demand == doctest::Approx(0.25));
  CHECK(o.dram_share == doctest::Approx(0.6));
  masker.batch = 1;
  masker.in_height = masker.in_width = 28;
  o = ls::occupancy(masker, p, hw);
  CHECK(o.head_demand == doctest::Approx(784.0 / 8448));
}

TEST_CASE("a network graph chains its blocks and carries the predictor's latencies") {
  const auto spec = ls::test::tiny_spec();
  const auto hw = ls::test::profile("v100");
  for (const auto execution : {lp::Execution::dense, lp::Execution::dynamic}) {
    auto s = spec;
    lp::set_granularity(s, {2, 2}, "test");
    lp::set_density(s, 0.5, "test");
    const auto blocks = lp::build_network(s, execution);
    lp::PredictionCache cache(hw);
    std::vector<lp::BlockResult> results;
    for (const auto& b : blocks) results.push_back(lp::predict_block(b, cache, hw));
    const ls::OpGraph g = ls::network_op_graph(blocks, results, hw);

    std::size_t nodes = 0;
    std::size_t inner_edges = 0;
    for (const auto& b : blocks) {
      nodes += b.nodes.size();
      for (const auto& n : b.nodes) inner_edges += n.after.size();
    }
    REQUIRE(boost::num_vertices(g) == nodes);
    CHECK(boost::num_edges(g) > inner_edges);  // plus the barrier edges
    REQUIRE(ls::topological_order(g).has_value());

    double total = 0;
    for (const auto v : boost::make_iterator_range(boost::vertices(g))) {
      const auto& x = g[v];
      const auto& predicted = results[x.block].ops[x.node];
      CHECK(x.name == predicted.name);
      CHECK(x.latency_s == predicted.prediction.latency_s);
      CHECK(x.sm_demand >= 0.0);
      CHECK(x.sm_demand <= 1.0);
      total += x.latency_s;
      // Every edge stays inside a block or goes from block b to block b + 1.
      for (const auto e : boost::make_iterator_range(boost::in_edges(v, g))) {
        const auto from = g[boost::source(e, g)].block;
        CHECK((from == x.block || from + 1 == x.block));
        if (from + 1 == x.block) CHECK(blocks[x.block].nodes[x.node].after.empty());
      }
    }
    CHECK(ls::serial_latency_s(g) == doctest::Approx(total));
    // Only the first non-empty block's own roots have no predecessor (the tiny spec has no
    // stem, so those are s1.0's conv chain and its shortcut conv).
    std::size_t roots = 0;
    for (const auto v : boost::make_iterator_range(boost::vertices(g))) {
      if (boost::in_degree(v, g) == 0) ++roots;
    }
    const auto first = std::find_if(blocks.begin(), blocks.end(),
                                    [](const lp::BlockGraph& b) { return !b.nodes.empty(); });
    REQUIRE(first != blocks.end());
    CHECK(roots == static_cast<std::size_t>(
                       std::count_if(first->nodes.begin(), first->nodes.end(),
                                     [](const lp::OpNode& n) { return n.after.empty(); })));
    CHECK(roots == 2);
  }
}

TEST_CASE("a dynamic bottleneck with a shortcut conv has two branches") {
  auto spec = ls::test::tiny_spec();
  const auto hw = ls::test::profile("v100");
  const auto block = lp::make_block(spec, 1, 0, lp::Execution::dynamic, {2, 0.5, {}});
  lp::PredictionCache cache(hw);
  const auto g = ls::block_op_graph(block, lp::predict_block(block, cache, hw), hw);
  std::set<std::string> roots;
  for (const auto v : boost::make_iterator_range(boost::vertices(g))) {
    if (boost::in_degree(v, g) == 0) roots.insert(g[v].name);
  }
  CHECK(roots.contains("shortcut"));
  CHECK(roots.size() == 2);
}

TEST_CASE("topological_order rejects a cycle") {
  ls::OpGraph g;
  const auto a = boost::add_vertex(ls::OpVertex{}, g);
  const auto b = boost::add_vertex(ls::OpVertex{}, g);
  boost::add_edge(a, b, g);
  CHECK(ls::topological_order(g).has_value());
  boost::add_edge(b, a, g);
  CHECK_FALSE(ls::topological_order(g).has_value());
}
