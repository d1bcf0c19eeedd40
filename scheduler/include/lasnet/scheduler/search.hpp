#pragma once
// The schedule search: granularity per stage, fusion per block, one stream count, and (for a
// latency budget) the density, all priced by the predictor.
//
// Why searching per block is exact: every block waits for the whole previous block (graph.hpp),
// so a network's makespan on k streams is the sum of its blocks' makespans on k streams, and a
// block's makespan depends only on its own stage's S, its own fusion and k. For each k the
// optimum is therefore, per stage, the S whose blocks (each with its best fusion) sum lowest;
// the best k is then the lowest of those sums. Blocks of a stage after the first have identical
// shapes, so they are evaluated once per density. tests/scheduler checks this against brute
// force over the whole product on small specs.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lasnet/predictor/network.hpp"
#include "lasnet/predictor/profile.hpp"
#include "lasnet/predictor/spec.hpp"
#include "lasnet/scheduler/graph.hpp"
#include "lasnet/scheduler/space.hpp"
#include "lasnet/scheduler/streams.hpp"

namespace lasnet::scheduler {

enum class Objective {
  min_latency,  // the lowest latency at the given density
  max_density,  // the largest density whose best plan meets the latency budget
};
std::string_view to_string(Objective objective);

struct SearchRequest {
  Objective objective = Objective::min_latency;
  // min_latency: one uniform density for every dynamic block; nullopt = the spec's own
  // per-block densities. max_density: ignored (densities 0, step, 2*step, ..., 1 are scanned).
  std::optional<double> density;
  double budget_s = 0;         // max_density only
  double density_step = 0.01;  // max_density only
  std::int64_t max_streams = 1;
  // The fusion dimension; empty = all_fusions().
  std::vector<predictor::Fusion> fusions;
  // The granularity dimension per stage; empty = default_space's. A value larger than the
  // stage's map stays in the table as infeasible, with its reason; one that does not divide it
  // runs with partial border patches.
  std::vector<std::vector<std::int64_t>> granularity;
  // Latency alone always favours the coarsest S (no halo, longest rows) while accuracy favours
  // the finest (design note), so the recommended S of a stage is the finest whose stage latency
  // is within this fraction of the fastest S's; 0 recommends the fastest.
  double granularity_tolerance = 0;
  // The kernels' schedule of each op (`schedule --kernels`: profiler::project_kernel_schedule),
  // so that plans are priced as this project's kernels run them (as `lasnet run` times them);
  // empty: the model's tile search. Called from the pricing threads at once.
  predictor::KernelSchedule kernel_schedule;
  // Threads that price candidates (std::jthread, each with its own PredictionCache). The plan
  // is identical, to the bit, for every thread count: results merge in a fixed order.
  std::int64_t threads = 1;
};

// One block of the chosen plan (stem and head included: dense, fusion "none").
struct BlockChoice {
  std::string name;
  std::int64_t stage = -1;  // -1 for stem, head and layer stages (dense)
  std::int64_t index_in_stage = 0;
  bool dynamic = false;
  std::int64_t granularity = 0;
  double density = 1;
  predictor::Fusion fusion{false, false, false};
  double latency_s = 0;                // makespan on the plan's streams
  double unfused_latency_s = 0;        // same S and streams, fusion "none"
  double single_stream_latency_s = 0;  // same S and fusion, one stream
  double fusion_saving_s() const { return unfused_latency_s - latency_s; }
};

// One row of a stage's trade-off table.
struct GranularityOption {
  std::int64_t granularity = 0;
  Feasibility feasibility;
  double latency_s = 0;          // the stage: every block at its best fusion, plan's streams
  double network_latency_s = 0;  // the network with this S here and the chosen S elsewhere
};

struct StagePlan {
  std::string name;
  std::int64_t granularity = 0;          // recommended
  std::int64_t fastest_granularity = 0;  // the lowest latency, whatever the tolerance
  double latency_s = 0;
  std::vector<GranularityOption> options;
};

// The best plan restricted to one stream count.
struct StreamOption {
  std::int64_t streams = 1;
  double latency_s = 0;
  std::vector<std::int64_t> granularity;
};

// max_density: the best plan's latency at each scanned density.
struct DensityOption {
  double density = 0;
  double latency_s = 0;
  bool meets_budget = false;
};

struct Plan {
  Feasibility feasibility;  // max_density: not ok when even density 0 misses the budget
  Objective objective = Objective::min_latency;
  std::optional<double> density;  // uniform density of the plan; nullopt = the spec's own
  double budget_s = 0;
  std::int64_t max_streams = 1;
  double granularity_tolerance = 0;
  bool kernel_schedules = false;  // priced at the kernels' schedules (SearchRequest)
  bool graph_launches = false;    // priced as kernels of a CUDA graph (schedule --graph sets it)
  std::int64_t streams = 1;       // the fewest streams that reach the best latency
  std::vector<std::int64_t> granularity;  // per stage
  double latency_s = 0;                   // makespan on `streams`
  double single_stream_latency_s = 0;     // the same plan on one stream
  double dense_latency_s = 0;             // the dense network, one stream
  double dense_streams_latency_s = 0;     // the dense network on `streams`
  std::vector<StagePlan> stages;
  std::vector<StreamOption> stream_options;
  std::vector<DensityOption> density_scan;
  std::vector<BlockChoice> blocks;  // stem, every block in order, head
  // The scheduled timeline: the network's operator graph and its stream schedule.
  OpGraph graph;
  StreamSchedule schedule;
  // Effort, for reports and benchmarks.
  std::size_t block_evaluations = 0;  // (block shape, S, fusion) graphs built and predicted
  std::size_t predicted_ops = 0;      // distinct ops the predictor priced
  double plans_in_space = 0;          // what an exhaustive search would have evaluated
};

// Runs the search. User errors (no density anywhere, a bad request) throw lasnet::Error; an
// unmet budget or an unfit S is reported in the plan.
Plan search(const predictor::Spec& spec, const predictor::Profile& hw,
            const SearchRequest& request);

// The spec with the plan's granularity and density written in, for `predict` and `validate`.
// Fusion and streams are not part of the spec schema; they live in the plan JSON.
predictor::Spec scheduled_spec(const predictor::Spec& spec, const Plan& plan);

// The blocks of the plan as the predictor builds them (stem, blocks, head), with the plan's
// granularity, density and fusion: the graphs `Plan::graph` was made of.
std::vector<predictor::BlockGraph> plan_blocks(const predictor::Spec& spec, const Plan& plan);

}  // namespace lasnet::scheduler
