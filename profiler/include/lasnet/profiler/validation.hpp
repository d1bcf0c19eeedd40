#pragma once
// Predicted against measured, side by side: per kernel (op), per block, per stage and per
// network, with the error metrics, the rank correlation over the granularity choices of each
// stage, and reports as an aligned table, JSON, CSV and an SVG scatter plot.
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "lasnet/predictor/model.hpp"
#include "lasnet/predictor/network.hpp"
#include "lasnet/predictor/profile.hpp"
#include "lasnet/profiler/block_timing.hpp"
#include "lasnet/profiler/metrics.hpp"
#include "lasnet/profiler/plan.hpp"

namespace lasnet::profiler {

enum class Level { op, block, stage, network };
std::string_view to_string(Level level);

// One row: a prediction and the measurement of the same thing.
struct Comparison {
  Level level = Level::op;
  std::string spec;
  std::int64_t batch = 1;
  bool dynamic = false;
  std::string density;      // "0.5", "spec", "" for dense
  std::int64_t stage = -1;  // -1 for network rows
  std::string stage_name;
  std::int64_t granularity = 0;  // S of the stage (0: dense, or a network row)
  std::string name;              // "layer3.0/conv2", "layer3.0", "layer3", "resnet101"
  std::string kind;              // op kind(s), "block", "stage", "network"
  std::string key;               // the kernels' job key (op and block rows)
  std::string kernel;            // the implementation the kernels chose (op rows)
  double predicted_s = 0;
  double measured_s = 0;  // median (stage/network rows: sum of block medians)
  double measured_p10_s = 0;
  double measured_p90_s = 0;
  bool noisy = false;
  // Modelled: the predictor has an op for it. Kernel steps with no predicted counterpart (the
  // dynamic block's write of the residual at inactive positions) are reported, not scored.
  bool modelled = true;
  double error() const;  // (predicted - measured) / measured
};

// How well the predictor orders the granularity choices of one stage in one configuration.
struct RankGroup {
  std::string spec;
  std::int64_t batch = 1;
  std::string density;
  std::string stage_name;
  std::vector<std::int64_t> granularities;
  std::vector<double> predicted_s;
  std::vector<double> measured_s;
  double spearman = 0;  // NaN with fewer than two choices
  std::int64_t predicted_best = 0;
  std::int64_t measured_best = 0;
  // Measured latency at the predicted best S over the measured best, minus 1.
  double regret = 0;
  // S candidates whose stage timing was noisy: left out, since one throttled or disturbed
  // timing would otherwise decide both the measured best and the regret.
  std::int64_t noisy_left_out = 0;
};

struct Targets {
  double op_mape = 0.08;
  double op_within_15 = 0.95;
  double network_error = 0.05;
  double spearman = 0.95;
};

struct ValidationReport {
  std::string command;
  std::string profile_name;
  std::string profile_source;  // provenance of the profile used
  DeviceInfo device;
  std::string measured_date;
  std::string l2_flush;
  std::vector<Comparison> rows;
  std::string clocks_before, clocks_after;  // the GPU's clock state around the measurements
  std::string sampling;                     // the sampling discipline, in words
  // Taken off every step timing before op rows compare (step_event_overhead_s).
  double step_event_overhead_s = 0;
  std::map<Level, ErrorMetrics> metrics;  // over modelled rows of each level
  // Op rows by operator class(es) and batch ("gathered_conv.k3.depthwise n1").
  std::map<std::string, ErrorMetrics> op_class_metrics;
  std::vector<RankGroup> rank_groups;
  std::vector<std::string> not_covered;  // what the kernels could not run, once each
  std::vector<std::string> notes;
  Targets targets;
};

// The predictor's view of a block in the harness: the op each kernel step stands for, with the
// memory context the harness gives it (L2 flushed before the block, so the first step reads
// its input from DRAM; later ops follow the predictor's L2 rule).
struct StepPrediction {
  std::string step;
  std::vector<std::size_t> nodes;  // graph nodes the step implements
  double predicted_s = 0;
  std::string kinds;  // "conv", "conv_scatter_add", "conv+add"
};
std::vector<StepPrediction> predict_steps(const PlannedBlock& block, const BlockTiming* timing,
                                          const predictor::Profile& hw);

// The predictor ops that price one kernel step, each with its memory context and, for steps our
// implicit GEMM runs, the kernels' GEMM tile (from the step's recorded kernel name, or without
// timings from kernels::plan_conv). A dynamic block's inactive-pixel step (`add`: ReLU of the
// shortcut where the mask is 0) has no node in the predictor's graph; it is priced as a pass
// over the whole output map (the kernel's grid covers every pixel) when the timings contain it
// (or, without timings, in every dynamic block: the kernels run it unless they update the
// residual in place).
struct StepOps {
  std::string step;
  std::vector<std::size_t> nodes;  // graph nodes the step implements (none for `add`)
  std::vector<std::pair<predictor::Op, predictor::OpContext>> ops;
  std::string kinds;
  std::string kernel;  // the timing's kernel name, or without timings plan_conv's ("" if none)
};
std::vector<StepOps> step_ops(const PlannedBlock& block, const BlockTiming* timing,
                              const predictor::Profile& hw);

// The GEMM tile of one of the kernels' implicit-GEMM implementations, by its StepInfo::kernel
// name ("igemm_fp32_128x64"): rows x cols and warps as docs/kernels.md gives them. Any other
// name (cuBLASLt, a direct or new kernel) gives none: the predictor then searches its tile.
std::optional<predictor::GemmTile> gemm_tile_of_kernel(std::string_view kernel);

// The schedule the project's kernels run each op of a block with, as validation prices a block
// without timings (kernels::plan_conv): our implicit GEMM's tile or a direct kernel's block.
// cuBLASLt's dense 1x1 convs and block ops that are not convs keep the predictor's search. The
// stem, head and layer stages get the layer runner's kernels (kernels/layers.hpp: convs as
// im2col + cuBLASLt, fc on cuBLASLt, pools one thread per output), which predict_block prices
// kernel by kernel. `lasnet predict --kernels` and `lasnet run` price networks with it.
predictor::KernelSchedule project_kernel_schedule(int sm_count);

// What a reader must know before trusting `hw` on these operator classes (predictor::op_class
// in context, e.g. "gather_conv.k1.igemm") priced for kernels of version `kernels_version`
// ("" = unknown): the profile was fitted on other kernels, or never saw some of the classes
// (they run on fallback scales). One line each; none for an uncalibrated profile, which claims
// nothing about the kernels.
std::vector<std::string> calibration_warnings(const predictor::Profile& hw,
                                              const std::set<std::string>& classes,
                                              std::string_view kernels_version);
// The classes of every op of `blocks` as `schedule` prices them.
std::set<std::string> priced_classes(const std::vector<predictor::BlockGraph>& blocks,
                                     const predictor::KernelSchedule& schedule);

// Builds every row from the plan, the measurements and the profile. Jobs missing from the
// measurements are an error naming them.
ValidationReport compare(const std::vector<PlannedBlock>& plan, const MeasurementSet& measured,
                         const predictor::Profile& hw);

// `validate --network`: rows of whole networks run by `lasnet run` (stem and head included),
// level network, kind "whole network", appended to the report; the network metrics are
// recomputed over every network row.
void add_whole_network_rows(ValidationReport& report, const std::vector<Comparison>& rows);

// Renderers. The table is a summary with the targets, the network rows and the worst ops.
std::string render_table(const ValidationReport& report);
std::string render_json(const ValidationReport& report);
std::string render_csv(const ValidationReport& report);
std::string render_svg(const ValidationReport& report);

}  // namespace lasnet::profiler
