#pragma once
// Stream assignment: list scheduling of an OpGraph onto k CUDA streams, with a model of what
// concurrent kernels leave each other of the GPU.
//
// The model (docs/scheduler.md has the worked examples):
// - Each kernel has a solo latency L (the predictor's) and, from the predictor's tiles and
//   occupancy (graph.hpp, `Occupancy`), the fraction of the SMs' resident-tile slots it holds:
//   all of them while whole waves run, then its last wave's share for the last 1/waves of its
//   work; a one-wave grid holds its share throughout; the masker holds its logits pass's share,
//   then its pool's. It also draws a share of DRAM bandwidth.
// - Slots go to the running kernels in the order they started (the block scheduler serves an
//   earlier grid first): a later kernel progresses at the fraction of its demand that the
//   earlier ones leave idle, so beside a multi-wave kernel it waits for that kernel's last wave.
// - If the running kernels' DRAM draws (each scaled by its progress rate) sum above 1, all of
//   them slow by that sum: a DRAM-bound pair takes as long as its bytes need.
// - The earliest kernel always progresses, and the rates of all running kernels sum to at least
//   1, so concurrency never makes a set of kernels slower than one stream.
// - Streams are in-order queues. A kernel is ready when all its predecessors have finished; the
//   ready kernel with the longest remaining path to a sink (solo latencies) starts first, on the
//   lowest-numbered idle stream. A stream runs one kernel at a time.
// Not modelled: launch latency overlapping across streams, L2 and compute-pipe contention
// between co-resident kernels, event overheads.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lasnet/scheduler/graph.hpp"

namespace lasnet::scheduler {

struct ScheduledOp {
  std::int64_t stream = 0;
  double start_s = 0;
  double end_s = 0;
};

struct StreamSchedule {
  std::int64_t streams = 1;
  std::vector<ScheduledOp> ops;      // indexed by vertex
  std::vector<Vertex> launch_order;  // by start time: the order a host thread issues kernels
  double makespan_s = 0;
};

// Schedules every vertex; `streams` >= 1. The graph must be acyclic (asserted).
StreamSchedule schedule_streams(const OpGraph& graph, std::int64_t streams);

// Checks a schedule against its graph: every edge finishes before its successor starts, no two
// kernels of one stream overlap, streams are within range, the makespan is the last end.
// Returns a description of the first violation, or nullopt.
std::optional<std::string> check_schedule(const OpGraph& graph, const StreamSchedule& schedule);

}  // namespace lasnet::scheduler
