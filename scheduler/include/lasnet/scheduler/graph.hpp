#pragma once
// The operator graph the scheduler works on: a Boost.Graph DAG whose vertices are the kernels of
// a network (or of one block), each carrying the predictor's solo latency and its SM demand.
// Edges are "must finish before". Inside a block they come from OpNode::after; a node with no
// predecessor in its block waits for every sink of the previous block (the block's output), so
// consecutive blocks are separated by a barrier. The scheduler relies on that barrier: the
// makespan of a network is the sum of its blocks' makespans (docs/scheduler.md).
#include <boost/graph/adjacency_list.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lasnet/predictor/network.hpp"
#include "lasnet/predictor/profile.hpp"

namespace lasnet::scheduler {

struct OpVertex {
  std::size_t block = 0;   // index into the block list the graph was built from
  std::size_t node = 0;    // index of the node in its block (BlockGraph::nodes)
  std::string block_name;  // "layer3.4"
  std::string name;        // "conv2"
  predictor::Op op;
  double latency_s = 0;  // the predictor's latency of the kernel running alone
  // How it holds the GPU while it runs (streams.hpp prices overlap with these, graph.hpp's
  // `Occupancy` derives them): the fraction of the SMs' resident-tile slots its grid fills while
  // whole waves run, in [0, 1]; the share of its work before its last phase (its whole waves)
  // and the slots it holds then; the slots of its last phase (a one-wave grid is all last
  // phase); the fraction of DRAM bandwidth it draws running alone.
  double sm_demand = 1;
  double head_fraction = 0;
  double head_demand = 1;
  double tail_demand = 1;
  double dram_share = 0;
};

using OpGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS, OpVertex>;
using Vertex = boost::graph_traits<OpGraph>::vertex_descriptor;

// min(1, tiles / (sm_count * tiles_per_sm)): below 1 the kernel's grid fills less than one wave
// and leaves SMs to a concurrent kernel. A prediction without tile data counts as a full wave.
double sm_demand(const predictor::OpPrediction& prediction, const predictor::Profile& hw);

// What a kernel leaves to a concurrent one, from the predictor's figures (no new constants).
// A grid: waves = ceil(tiles / slots) with slots = sm_count x tiles_per_sm (resident tiles at
// its occupancy); its whole waves (the first (waves - 1) / waves of its work, the waves taking
// equal time) hold every slot, its last wave (tiles - (waves - 1) x slots) / slots of them.
// The masker is two phases, not a grid of tiles: its per-pixel logits pass, a grid-stride kernel
// of one warp per pixel that holds min(1, pixels / warp slots) of the GPU, then the pool and
// compaction on the threads of its pool plan (the prediction's tiles_per_sm: threads on the
// busiest SM). The logits pass is at least max(compute, DRAM) of the masker's time against the
// pool's L2 time; its chain of dependent loads, not in the prediction, only lengthens it.
// The DRAM share is dram_s / latency_s (the model's DRAM time at the profile's bandwidth over its
// whole time, at most 1). A prediction without tile data is one full wave; an empty op holds
// nothing.
struct Occupancy {
  double sm_demand = 1;
  std::int64_t waves = 1;
  double head_fraction = 0;
  double head_demand = 1;
  double tail_demand = 1;
  double dram_share = 0;
};
Occupancy occupancy(const predictor::Op& op, const predictor::OpPrediction& prediction,
                    const predictor::Profile& hw);

// Appends one predicted block to `graph` (vertices in node order); its roots wait for
// `previous_sinks`. Returns the new block's sinks (nodes no other node of the block waits for).
// `result.ops` must be the prediction of `block.nodes`, in the same order (predict_block).
std::vector<Vertex> append_block(OpGraph& graph, std::size_t block_index,
                                 const predictor::BlockGraph& block,
                                 const predictor::BlockResult& result, const predictor::Profile& hw,
                                 const std::vector<Vertex>& previous_sinks);

// One block on its own (no predecessors outside it).
OpGraph block_op_graph(const predictor::BlockGraph& block, const predictor::BlockResult& result,
                       const predictor::Profile& hw);

// The whole network, blocks chained by barriers. `results[i]` predicts `blocks[i]`.
OpGraph network_op_graph(const std::vector<predictor::BlockGraph>& blocks,
                         const std::vector<predictor::BlockResult>& results,
                         const predictor::Profile& hw);

// Predicts every block with `cache` (at `schedule`'s kernels where given) and builds the
// network graph (dense or dynamic, as the blocks were built).
OpGraph predict_op_graph(const std::vector<predictor::BlockGraph>& blocks,
                         predictor::PredictionCache& cache, const predictor::Profile& hw,
                         const predictor::KernelSchedule& schedule = {});

// A topological order of the vertices, or nullopt if the graph has a cycle.
std::optional<std::vector<Vertex>> topological_order(const OpGraph& graph);

// Sum of the solo latencies: the makespan on one stream.
double serial_latency_s(const OpGraph& graph);

}  // namespace lasnet::scheduler
