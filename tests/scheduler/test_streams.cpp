// Stream assignment: list scheduling with SM sharing, against hand-worked timelines, and the
// dependency/stream invariants on random DAGs and real networks.
#include <doctest/doctest.h>

#include <fmt/format.h>
#include <algorithm>
#include <cstdint>

#include "fixtures.hpp"
#include "lasnet/scheduler/streams.hpp"

namespace lp = lasnet::predictor;
namespace ls = lasnet::scheduler;

namespace {

struct Kernel {
  double latency_s;
  double demand;  // slots of one wave, or of every whole wave where waves > 1
  std::int64_t waves = 1;
  double tail = 1;  // slots of the last wave (waves > 1)
  double dram = 0;  // share of DRAM bandwidth, alone
};

ls::OpGraph make_graph(const std::vector<Kernel>& kernels,
                       const std::vector<std::pair<int, int>>& edges) {
  ls::OpGraph g;
  for (std::size_t i = 0; i < kernels.size(); ++i) {
    ls::OpVertex v;
    v.node = i;
    v.name = fmt::format("k{}", i);
    v.latency_s = kernels[i].latency_s;
    v.sm_demand = kernels[i].demand;
    const auto waves = static_cast<double>(kernels[i].waves);
    v.head_fraction = kernels[i].waves > 1 ? (waves - 1) / waves : 0.0;
    v.head_demand = 1.0;
    v.tail_demand = kernels[i].waves > 1 ? kernels[i].tail : kernels[i].demand;
    v.dram_share = kernels[i].dram;
    boost::add_vertex(v, g);
  }
  for (const auto& [a, b] : edges) boost::add_edge(a, b, g);
  return g;
}

double critical_path_s(const ls::OpGraph& g) {
  const auto order = *ls::topological_order(g);
  std::vector<double> finish(boost::num_vertices(g), 0.0);
  double longest = 0;
  for (const auto v : order) {
    double start = 0;
    for (const auto e : boost::make_iterator_range(boost::in_edges(v, g))) {
      start = std::max(start, finish[boost::source(e, g)]);
    }
    finish[v] = start + g[v].latency_s;
    longest = std::max(longest, finish[v]);
  }
  return longest;
}

}  // namespace

TEST_CASE("two half-wave kernels overlap for free") {
  // Demands 0.5 + 0.5 <= 1: both run at full speed side by side.
  const auto g = make_graph({{1e-3, 0.5}, {1e-3, 0.5}}, {});
  CHECK(ls::schedule_streams(g, 1).makespan_s == doctest::Approx(2e-3));
  const auto two = ls::schedule_streams(g, 2);
  CHECK(two.makespan_s == doctest::Approx(1e-3));
  CHECK(two.ops[0].stream != two.ops[1].stream);
}

TEST_CASE("two full-wave kernels do not overlap for free") {
  // Each fills every slot: the second gets none until the first's blocks retire, then runs
  // alone. 2 ms, as on one stream.
  const auto g = make_graph({{1e-3, 1.0}, {1e-3, 1.0}}, {});
  const auto two = ls::schedule_streams(g, 2);
  CHECK(two.makespan_s == doctest::Approx(2e-3));
  CHECK(two.ops[0].end_s == doctest::Approx(1e-3));
  CHECK(two.ops[1].start_s == doctest::Approx(0.0));  // launched, waiting for slots
  CHECK(two.ops[1].end_s == doctest::Approx(2e-3));
}

TEST_CASE("a later kernel gets only the slots an earlier one leaves idle") {
  // L = 2 ms filling a wave and L = 1 ms at half a wave: the long one starts first (longer
  // path) and holds every slot, so the short one waits for it: 3 ms, as on one stream.
  const auto full_first = make_graph({{2e-3, 1.0}, {1e-3, 0.5}}, {});
  const auto s = ls::schedule_streams(full_first, 2);
  CHECK(s.ops[0].end_s == doctest::Approx(2e-3));
  CHECK(s.ops[1].end_s == doctest::Approx(3e-3));
  // The half wave first (its successor makes its path longer): it keeps its half and the full
  // wave runs on the other half at rate 1/2, 0.5 ms of its 2 done when the half wave ends at
  // 1 ms. The successor (a quarter wave) then starts, but the full wave started earlier and
  // takes every slot back: it ends at 2.5 ms, the successor runs alone and ends at 4 ms.
  const auto half_first = make_graph({{2e-3, 1.0}, {1e-3, 0.5}, {1.5e-3, 0.25}}, {{1, 2}});
  const auto h = ls::schedule_streams(half_first, 2);
  CHECK(h.ops[1].end_s == doctest::Approx(1e-3));
  CHECK(h.ops[0].end_s == doctest::Approx(2.5e-3));
  CHECK(h.ops[2].end_s == doctest::Approx(4e-3));
  CHECK(ls::schedule_streams(half_first, 1).makespan_s == doctest::Approx(4.5e-3));
}

TEST_CASE("a multi-wave kernel leaves another only its last wave's idle slots") {
  // A: 10 ms in 20 waves (0.5 ms each), the last filling half the slots. B: 1 ms filling a
  // whole wave. B waits until A's last wave starts at 9.5 ms, then runs on the free half at
  // rate 1/2 for 0.5 ms (0.25 ms of work), then alone: 10 + 0.75 = 10.75 ms, against 11 ms on
  // one stream: a gain of 2%, where sharing by demand alone would give none or more.
  const auto g = make_graph({{10e-3, 1.0, 20, 0.5, 0.1}, {1e-3, 1.0, 1, 1.0, 0.1}}, {});
  const auto s = ls::schedule_streams(g, 2);
  CHECK(s.ops[0].end_s == doctest::Approx(10e-3));
  CHECK(s.ops[1].end_s == doctest::Approx(10.75e-3));
  CHECK(ls::schedule_streams(g, 1).makespan_s / s.makespan_s == doctest::Approx(11.0 / 10.75));
  // A last wave that fills every slot leaves nothing: no gain at all.
  const auto exact = make_graph({{10e-3, 1.0, 20, 1.0, 0.1}, {1e-3, 0.3, 1, 0.3, 0.1}}, {});
  CHECK(ls::schedule_streams(exact, 2).makespan_s == doctest::Approx(11e-3));
}

TEST_CASE("two one-wave kernels on 30% of the slots overlap fully") {
  // 0.3 + 0.3 slots, DRAM 0.2 + 0.2 of the bandwidth: nothing is short, both run at full
  // speed side by side.
  const auto g = make_graph({{1e-3, 0.3, 1, 0.3, 0.2}, {1e-3, 0.3, 1, 0.3, 0.2}}, {});
  const auto s = ls::schedule_streams(g, 2);
  CHECK(s.ops[0].end_s == doctest::Approx(1e-3));
  CHECK(s.ops[1].end_s == doctest::Approx(1e-3));
  CHECK(s.makespan_s == doctest::Approx(1e-3));
}

TEST_CASE("a DRAM-bound pair gains only what its bandwidth allows") {
  // Slots are free (0.3 + 0.3), but each draws 0.9 of DRAM: together 1.8, so both progress at
  // 1/1.8 and end at 1.8 ms (their bytes need 0.9 + 0.9 ms), against 2 ms on one stream.
  const auto g = make_graph({{1e-3, 0.3, 1, 0.3, 0.9}, {1e-3, 0.3, 1, 0.3, 0.9}}, {});
  const auto s = ls::schedule_streams(g, 2);
  CHECK(s.ops[0].end_s == doctest::Approx(1.8e-3));
  CHECK(s.ops[1].end_s == doctest::Approx(1.8e-3));
  // A DRAM-bound kernel beside a compute-bound one (0.9 + 0.1): no contention.
  const auto mixed = make_graph({{1e-3, 0.3, 1, 0.3, 0.9}, {1e-3, 0.3, 1, 0.3, 0.1}}, {});
  CHECK(ls::schedule_streams(mixed, 2).makespan_s == doctest::Approx(1e-3));
}

TEST_CASE("a last wave draws DRAM in proportion to the slots it holds") {
  // A: 4 ms in 4 waves, last wave half full: mean slots (3 + 0.5) / 4 = 0.875; DRAM share 0.7,
  // so its whole waves draw min(1, 0.7 / 0.875) = 0.8 and its last wave 0.7 x 0.5 / 0.875 =
  // 0.4. B: one wave on 0.5 of the slots, DRAM 0.9, 2 ms. B waits for A's last wave (t = 3 ms),
  // then both draw 0.4 + 0.9 = 1.3 and run at 1/1.3: A's last 1 ms ends at 4.3 ms, when B has
  // done 1 ms of its 2; B finishes alone at 5.3 ms, against 6 ms on one stream. (Drawing its
  // average 0.7 in the tail, A would leave B less: both at 1/1.6, A ending at 4.6 ms.)
  const auto g = make_graph({{4e-3, 1.0, 4, 0.5, 0.7}, {2e-3, 0.5, 1, 0.5, 0.9}}, {});
  const auto s = ls::schedule_streams(g, 2);
  CHECK(s.ops[0].end_s == doctest::Approx(4.3e-3));
  CHECK(s.ops[1].end_s == doctest::Approx(5.3e-3));
}

TEST_CASE("the critical path goes first, on the lowest idle stream") {
  // 0 -> 1 (long chain) and 2 alone: 0 starts first on stream 0 (rank 3 ms vs 1 ms).
  const auto g = make_graph({{1e-3, 0.2}, {2e-3, 0.2}, {1e-3, 0.2}}, {{0, 1}});
  const auto one = ls::schedule_streams(g, 1);
  CHECK(one.launch_order == std::vector<ls::Vertex>{0, 1, 2});
  const auto two = ls::schedule_streams(g, 2);
  CHECK(two.ops[0].stream == 0);
  CHECK(two.ops[2].stream == 1);
  CHECK(two.makespan_s == doctest::Approx(3e-3));
}

TEST_CASE("one stream runs the kernels back to back") {
  const auto g = make_graph({{1e-3, 0.3}, {2e-3, 1.0}, {0.5e-3, 0.1}, {0, 0}},
                            {{0, 1}, {0, 2}, {1, 3}, {2, 3}});
  const auto s = ls::schedule_streams(g, 1);
  CHECK(s.makespan_s == doctest::Approx(ls::serial_latency_s(g)));
  CHECK_FALSE(ls::check_schedule(g, s).has_value());
}

TEST_CASE("random DAGs: every dependency holds, streams never overlap") {
  std::uint64_t state = 12345;
  const auto next = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(state >> 11) / static_cast<double>(1ULL << 53);
  };
  for (int trial = 0; trial < 200; ++trial) {
    const int n = 1 + static_cast<int>(next() * 25);
    std::vector<Kernel> kernels;
    std::vector<std::pair<int, int>> edges;
    for (int i = 0; i < n; ++i) {
      const double latency = next() < 0.1 ? 0.0 : next() * 1e-3;
      const double demand = next() < 0.2 ? 1.0 : next();
      const auto waves = next() < 0.3 ? 2 + static_cast<std::int64_t>(next() * 8) : 1;
      kernels.push_back({latency, waves > 1 ? 1.0 : demand, waves, demand, next()});
      for (int j = 0; j < i; ++j) {
        if (next() < 0.15) edges.emplace_back(j, i);
      }
    }
    const auto g = make_graph(kernels, edges);
    const double serial = ls::serial_latency_s(g);
    const double critical = critical_path_s(g);
    for (std::int64_t k = 1; k <= 4; ++k) {
      const auto s = ls::schedule_streams(g, k);
      const auto violation = ls::check_schedule(g, s);
      INFO("trial ", trial, ", ", k, " streams: ", violation.value_or(""));
      CHECK_FALSE(violation.has_value());
      CHECK(s.launch_order.size() == static_cast<std::size_t>(n));
      // Work conservation: never slower than one stream, never faster than the longest chain.
      CHECK(s.makespan_s <= serial * (1 + 1e-9) + 1e-15);
      CHECK(s.makespan_s >= critical * (1 - 1e-9));
    }
  }
}

TEST_CASE("check_schedule reports a broken dependency and an overlap on a stream") {
  const auto g = make_graph({{1e-3, 0.5}, {1e-3, 0.5}}, {{0, 1}});
  auto s = ls::schedule_streams(g, 2);
  CHECK_FALSE(ls::check_schedule(g, s).has_value());
  auto early = s;
  early.ops[1].start_s = 0.5e-3;
  CHECK(ls::check_schedule(g, early).has_value());
  const auto free = make_graph({{1e-3, 0.5}, {1e-3, 0.5}}, {});
  auto packed = ls::schedule_streams(free, 2);
  packed.ops[1].stream = packed.ops[0].stream;
  CHECK(ls::check_schedule(free, packed).has_value());
}

TEST_CASE("a network's makespan is the sum of its blocks' makespans (barriers)") {
  auto spec = ls::test::tiny_spec(1);
  lp::set_granularity(spec, {2, 1}, "test");
  lp::set_density(spec, 0.5, "test");
  const auto hw = ls::test::profile("h100-sxm");
  for (const auto execution : {lp::Execution::dense, lp::Execution::dynamic}) {
    const auto blocks = lp::build_network(spec, execution);
    lp::PredictionCache cache(hw);
    const auto g = ls::predict_op_graph(blocks, cache, hw);
    for (std::int64_t k = 1; k <= 3; ++k) {
      double sum = 0;
      for (const auto& b : blocks) {
        sum += ls::schedule_streams(ls::block_op_graph(b, lp::predict_block(b, cache, hw), hw), k)
                   .makespan_s;
      }
      const auto s = ls::schedule_streams(g, k);
      CHECK_FALSE(ls::check_schedule(g, s).has_value());
      CHECK(s.makespan_s == doctest::Approx(sum).epsilon(1e-12));
    }
  }
}
