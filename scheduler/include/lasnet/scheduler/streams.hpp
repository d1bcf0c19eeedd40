#pragma once
// Stream assignment: list scheduling of an OpGraph onto k CUDA streams, with a simple model of
// concurrent kernels sharing the GPU's SMs.
//
// The model (docs/scheduler.md has the worked examples):
// - Each kernel has a solo latency L (the predictor's) and an SM demand q in [0, 1]
//   (graph.hpp: the fraction of one wave its grid fills).
// - While the kernels running at one moment have total demand Q <= 1 they all progress at full
//   speed: a grid of less than one wave leaves room for another kernel.
// - When Q > 1 the SMs are shared in proportion to demand, so every running kernel progresses
//   at rate 1/Q. The GPU is then exactly busy (sum of q * rate = 1): two full-wave kernels take
//   as long together as one after the other, and concurrency never makes anything slower.
// - Streams are in-order queues. A kernel is ready when all its predecessors have finished; the
//   ready kernel with the longest remaining path to a sink (solo latencies) starts first, on the
//   lowest-numbered idle stream. A stream runs one kernel at a time.
// Not modelled: launch latency overlapping across streams, L2 contention, event overheads.
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
