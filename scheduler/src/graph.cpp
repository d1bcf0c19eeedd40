#include "lasnet/scheduler/graph.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/graph/topological_sort.hpp>
#include <cassert>
#include <iterator>
#include <stdexcept>

namespace lasnet::scheduler {

double sm_demand(const predictor::OpPrediction& prediction, const predictor::Profile& hw) {
  const double slots =
      static_cast<double>(hw.sm_count) * static_cast<double>(prediction.tiles_per_sm);
  if (prediction.tiles <= 0) return prediction.empty ? 0.0 : 1.0;
  if (!(slots > 0)) return 1.0;
  return std::min(1.0, static_cast<double>(prediction.tiles) / slots);
}

Occupancy occupancy(const predictor::Op& op, const predictor::OpPrediction& prediction,
                    const predictor::Profile& hw) {
  Occupancy o;
  o.sm_demand = sm_demand(prediction, hw);
  o.tail_demand = o.sm_demand;
  if (prediction.latency_s > 0) {
    o.dram_share = std::clamp(prediction.dram_s / prediction.latency_s, 0.0, 1.0);
  }
  if (prediction.empty) return o;
  if (op.kind == predictor::OpKind::masker && hw.max_threads_per_sm > 0 && hw.sm_count > 0) {
    const double warp_slots =
        static_cast<double>(hw.sm_count) * static_cast<double>(hw.max_threads_per_sm / 32);
    const double pixels = static_cast<double>(op.batch * op.in_height * op.in_width);
    const double logits_s = std::max(prediction.compute_s, prediction.dram_s);
    o.head_demand = std::min(1.0, pixels / warp_slots);
    o.head_fraction =
        logits_s + prediction.l2_s > 0 ? logits_s / (logits_s + prediction.l2_s) : 0.0;
    o.tail_demand = std::min(1.0, static_cast<double>(prediction.tiles_per_sm) /
                                      static_cast<double>(hw.max_threads_per_sm));
    o.sm_demand = o.head_demand;
    return o;
  }
  const std::int64_t slots = hw.sm_count * prediction.tiles_per_sm;
  if (prediction.tiles > 0 && slots > 0) {
    o.waves = (prediction.tiles + slots - 1) / slots;
    o.tail_demand =
        static_cast<double>(prediction.tiles - (o.waves - 1) * slots) / static_cast<double>(slots);
    if (o.waves > 1) {
      o.head_fraction = static_cast<double>(o.waves - 1) / static_cast<double>(o.waves);
      o.head_demand = 1.0;
    }
  }
  return o;
}

std::vector<Vertex> append_block(OpGraph& graph, std::size_t block_index,
                                 const predictor::BlockGraph& block,
                                 const predictor::BlockResult& result, const predictor::Profile& hw,
                                 const std::vector<Vertex>& previous_sinks) {
  if (result.ops.size() != block.nodes.size()) {
    throw std::logic_error(fmt::format("block {}: {} predictions for {} nodes", block.name,
                                       result.ops.size(), block.nodes.size()));
  }
  const auto first = static_cast<Vertex>(boost::num_vertices(graph));
  for (std::size_t i = 0; i < block.nodes.size(); ++i) {
    const auto& prediction = result.ops[i].prediction;
    OpVertex v;
    v.block = block_index;
    v.node = i;
    v.block_name = block.name;
    v.name = block.nodes[i].name;
    v.op = block.nodes[i].op;
    v.latency_s = prediction.latency_s;
    const auto held = occupancy(block.nodes[i].op, prediction, hw);
    v.sm_demand = held.sm_demand;
    v.head_fraction = held.head_fraction;
    v.head_demand = held.head_demand;
    v.tail_demand = held.tail_demand;
    v.dram_share = held.dram_share;
    boost::add_vertex(std::move(v), graph);
  }
  std::vector<bool> has_successor(block.nodes.size(), false);
  for (std::size_t i = 0; i < block.nodes.size(); ++i) {
    const auto& after = block.nodes[i].after;
    if (after.empty()) {
      for (const Vertex p : previous_sinks) boost::add_edge(p, first + i, graph);
    }
    for (const std::size_t p : after) {
      assert(p < block.nodes.size() && p != i);
      boost::add_edge(first + p, first + i, graph);
      has_successor[p] = true;
    }
  }
  std::vector<Vertex> sinks;
  for (std::size_t i = 0; i < block.nodes.size(); ++i) {
    if (!has_successor[i]) sinks.push_back(first + i);
  }
  // A block without nodes passes the barrier through.
  return block.nodes.empty() ? previous_sinks : sinks;
}

OpGraph block_op_graph(const predictor::BlockGraph& block, const predictor::BlockResult& result,
                       const predictor::Profile& hw) {
  OpGraph graph;
  append_block(graph, 0, block, result, hw, {});
  return graph;
}

OpGraph network_op_graph(const std::vector<predictor::BlockGraph>& blocks,
                         const std::vector<predictor::BlockResult>& results,
                         const predictor::Profile& hw) {
  assert(blocks.size() == results.size());
  OpGraph graph;
  std::vector<Vertex> sinks;
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    sinks = append_block(graph, b, blocks[b], results[b], hw, sinks);
  }
  return graph;
}

OpGraph predict_op_graph(const std::vector<predictor::BlockGraph>& blocks,
                         predictor::PredictionCache& cache, const predictor::Profile& hw,
                         const predictor::KernelSchedule& schedule) {
  std::vector<predictor::BlockResult> results;
  results.reserve(blocks.size());
  for (const auto& b : blocks) results.push_back(predictor::predict_block(b, cache, hw, schedule));
  return network_op_graph(blocks, results, hw);
}

std::optional<std::vector<Vertex>> topological_order(const OpGraph& graph) {
  std::vector<Vertex> reversed;
  try {
    boost::topological_sort(graph, std::back_inserter(reversed));
  } catch (const boost::not_a_dag&) {
    return std::nullopt;
  }
  return std::vector<Vertex>(reversed.rbegin(), reversed.rend());
}

double serial_latency_s(const OpGraph& graph) {
  double total = 0;
  for (const Vertex v : boost::make_iterator_range(boost::vertices(graph))) {
    total += graph[v].latency_s;
  }
  return total;
}

}  // namespace lasnet::scheduler
