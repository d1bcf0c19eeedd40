#include "lasnet/scheduler/streams.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

namespace lasnet::scheduler {

namespace {

// Kahn's algorithm: a topological order in which ties go to the lower vertex index.
std::vector<Vertex> kahn_order(const OpGraph& graph) {
  const auto n = boost::num_vertices(graph);
  std::vector<std::size_t> indegree(n, 0);
  for (Vertex v = 0; v < n; ++v) indegree[v] = boost::in_degree(v, graph);
  std::vector<Vertex> order;
  order.reserve(n);
  for (Vertex v = 0; v < n; ++v) {
    if (indegree[v] == 0) order.push_back(v);
  }
  for (std::size_t i = 0; i < order.size(); ++i) {
    for (const auto e : boost::make_iterator_range(boost::out_edges(order[i], graph))) {
      const Vertex w = boost::target(e, graph);
      if (--indegree[w] == 0) order.push_back(w);
    }
  }
  assert(order.size() == n && "the operator graph has a cycle");
  return order;
}

// Longest path (solo latencies) from each vertex to a sink, itself included.
std::vector<double> upward_rank(const OpGraph& graph, const std::vector<Vertex>& order) {
  std::vector<double> rank(boost::num_vertices(graph), 0.0);
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    double tail = 0;
    for (const auto e : boost::make_iterator_range(boost::out_edges(*it, graph))) {
      tail = std::max(tail, rank[boost::target(e, graph)]);
    }
    rank[*it] = graph[*it].latency_s + tail;
  }
  return rank;
}

struct Running {
  Vertex vertex;
  double remaining_s;  // solo-speed work left
  bool in_tail;        // its last wave runs (a one-wave kernel is always in it)
};

// Solo-speed work left when a kernel's last phase starts (a grid's last wave: its waves take
// equal time).
double tail_work_s(const OpVertex& k) {
  return (1.0 - k.head_fraction) * k.latency_s;
}

// The slot fraction a kernel holds now: its whole waves' (every slot), then its last wave's.
double slot_demand(const OpVertex& k, bool in_tail) {
  return in_tail ? k.tail_demand : k.head_demand;
}

// Progress rates (solo seconds of work per second) of the running kernels, in start order.
// SM slots go to the kernels in the order they started: the block scheduler dispatches an
// earlier grid's blocks before a later one's, so a later kernel gets only the slots the
// earlier ones leave idle (below one wave, or in their last wave), and runs at the fraction of
// its own demand it got. DRAM is then shared: if the running kernels together would draw more
// than the bandwidth, all slow by the same factor. A kernel's draw follows its resident tiles:
// its solo share times its slots now over its mean slots of a solo run (a last wave that fills
// half the SMs draws about half).
std::vector<double> progress_rates(const OpGraph& graph, const std::vector<Running>& running) {
  std::vector<double> rate(running.size(), 1.0);
  double free_slots = 1.0;
  double dram = 0;
  for (std::size_t i = 0; i < running.size(); ++i) {
    const auto& k = graph[running[i].vertex];
    const double demand = slot_demand(k, running[i].in_tail);
    if (demand > 0) {
      const double granted = std::min(demand, free_slots);
      free_slots -= granted;
      rate[i] = granted / demand;
    }
    const double mean_slots =
        k.head_fraction * k.head_demand + (1.0 - k.head_fraction) * k.tail_demand;
    const double draw =
        mean_slots > 0 ? std::min(1.0, k.dram_share * demand / mean_slots) : k.dram_share;
    dram += rate[i] * draw;
  }
  if (dram > 1.0) {
    for (auto& r : rate) r /= dram;
  }
  return rate;
}

}  // namespace

StreamSchedule schedule_streams(const OpGraph& graph, std::int64_t streams) {
  assert(streams >= 1);
  const auto n = boost::num_vertices(graph);
  StreamSchedule out;
  out.streams = streams;
  out.ops.assign(n, {});
  out.launch_order.reserve(n);
  if (n == 0) return out;

  const auto rank = upward_rank(graph, kahn_order(graph));
  std::vector<std::size_t> waiting(n);
  std::vector<Vertex> ready;
  for (Vertex v = 0; v < n; ++v) {
    waiting[v] = boost::in_degree(v, graph);
    if (waiting[v] == 0) ready.push_back(v);
  }
  std::vector<bool> stream_busy(static_cast<std::size_t>(streams), false);
  std::vector<Running> running;
  double now = 0;
  std::size_t finished = 0;

  while (finished < n) {
    // Start ready kernels on idle streams, most critical first.
    for (std::size_t s = 0; s < stream_busy.size() && !ready.empty(); ++s) {
      if (stream_busy[s]) continue;
      const auto best = std::min_element(ready.begin(), ready.end(), [&](Vertex a, Vertex b) {
        return rank[a] != rank[b] ? rank[a] > rank[b] : a < b;
      });
      const Vertex v = *best;
      ready.erase(best);
      stream_busy[s] = true;
      out.ops[v] = {static_cast<std::int64_t>(s), now, now};
      out.launch_order.push_back(v);
      running.push_back({v, graph[v].latency_s, !(graph[v].head_fraction > 0)});
    }
    assert(!running.empty());

    // Advance to the next event under the sharing model: a kernel ends, or one's last wave
    // starts (its slots change). The first kernel to start always progresses.
    const auto rate = progress_rates(graph, running);
    double step_s = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < running.size(); ++i) {
      if (!(rate[i] > 0)) continue;
      const auto& r = running[i];
      const double until_s =
          r.in_tail ? r.remaining_s : r.remaining_s - tail_work_s(graph[r.vertex]);
      step_s = std::min(step_s, std::max(until_s, 0.0) / rate[i]);
    }
    assert(std::isfinite(step_s));
    now += step_s;
    for (std::size_t i = 0; i < running.size(); ++i) {
      auto& r = running[i];
      r.remaining_s -= step_s * rate[i];
      const auto& k = graph[r.vertex];
      const double tolerance = 1e-12 * std::max(k.latency_s, 1e-12);
      if (!r.in_tail && r.remaining_s <= tail_work_s(k) + tolerance) {
        r.in_tail = true;
        r.remaining_s = std::max(r.remaining_s, 0.0);
      }
    }

    // Retire everything that is done (simultaneous completions included).
    for (auto it = running.begin(); it != running.end();) {
      const double tolerance = 1e-12 * std::max(graph[it->vertex].latency_s, 1e-12);
      if (it->remaining_s > tolerance) {
        ++it;
        continue;
      }
      const Vertex v = it->vertex;
      out.ops[v].end_s = now;
      stream_busy[static_cast<std::size_t>(out.ops[v].stream)] = false;
      ++finished;
      for (const auto e : boost::make_iterator_range(boost::out_edges(v, graph))) {
        const Vertex w = boost::target(e, graph);
        if (--waiting[w] == 0) ready.push_back(w);
      }
      it = running.erase(it);
    }
  }
  out.makespan_s = now;
  return out;
}

std::optional<std::string> check_schedule(const OpGraph& graph, const StreamSchedule& schedule) {
  const auto n = boost::num_vertices(graph);
  if (schedule.ops.size() != n) {
    return fmt::format("{} scheduled ops for {} vertices", schedule.ops.size(), n);
  }
  const double eps = 1e-9 * std::max(schedule.makespan_s, 1e-12);
  double last_end = 0;
  for (Vertex v = 0; v < n; ++v) {
    const auto& op = schedule.ops[v];
    const auto& name = graph[v].name;
    if (op.stream < 0 || op.stream >= schedule.streams) {
      return fmt::format("{}/{} is on stream {} of {}", graph[v].block_name, name, op.stream,
                         schedule.streams);
    }
    if (op.end_s + eps < op.start_s || op.start_s < -eps) {
      return fmt::format("{}/{} has a bad interval", graph[v].block_name, name);
    }
    last_end = std::max(last_end, op.end_s);
  }
  for (const auto e : boost::make_iterator_range(boost::edges(graph))) {
    const Vertex u = boost::source(e, graph);
    const Vertex v = boost::target(e, graph);
    if (schedule.ops[u].end_s > schedule.ops[v].start_s + eps) {
      return fmt::format("{}/{} starts at {} s before its predecessor {}/{} ends at {} s",
                         graph[v].block_name, graph[v].name, schedule.ops[v].start_s,
                         graph[u].block_name, graph[u].name, schedule.ops[u].end_s);
    }
  }
  std::vector<Vertex> by_start(n);
  for (Vertex v = 0; v < n; ++v) by_start[v] = v;
  std::sort(by_start.begin(), by_start.end(), [&](Vertex a, Vertex b) {
    const auto& x = schedule.ops[a];
    const auto& y = schedule.ops[b];
    if (x.stream != y.stream) return x.stream < y.stream;
    return x.start_s != y.start_s ? x.start_s < y.start_s : x.end_s < y.end_s;
  });
  for (std::size_t i = 1; i < n; ++i) {
    const auto& prev = schedule.ops[by_start[i - 1]];
    const auto& next = schedule.ops[by_start[i]];
    if (prev.stream == next.stream && prev.end_s > next.start_s + eps) {
      return fmt::format("stream {}: {}/{} overlaps {}/{}", next.stream,
                         graph[by_start[i - 1]].block_name, graph[by_start[i - 1]].name,
                         graph[by_start[i]].block_name, graph[by_start[i]].name);
    }
  }
  if (std::abs(last_end - schedule.makespan_s) > eps) {
    return fmt::format("makespan {} s but the last kernel ends at {} s", schedule.makespan_s,
                       last_end);
  }
  return std::nullopt;
}

}  // namespace lasnet::scheduler
