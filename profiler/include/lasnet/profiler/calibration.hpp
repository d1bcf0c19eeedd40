#pragma once
// `lasnet calibrate`: fits the predictor's free parameters (compute efficiency per precision,
// DRAM and L2 efficiency, optionally the launch cost, a scale and a fixed cost per operator
// class) to timed kernel steps by least
// squares on log latency, and writes them into a profile. Host code: it takes measurements,
// not a GPU.
#include <string>
#include <vector>

#include "lasnet/predictor/profile.hpp"
#include "lasnet/profiler/block_timing.hpp"
#include "lasnet/profiler/fit.hpp"
#include "lasnet/profiler/metrics.hpp"
#include "lasnet/profiler/plan.hpp"

namespace lasnet::profiler {

struct CalibrationOptions {
  // The launch cost is measured directly by `lasnet profile`; fitting it too trades it against
  // the per-class offsets.
  bool fit_launch = false;
  bool fit_op_scale = true;   // a scale per operator class (predictor::op_class)
  bool fit_op_offset = true;  // and a fixed cost per class
  // And, for classes priced at a kernel's schedule, a factor on their compute time alone
  // (Calibration::op_compute_scale). Off by default: it needs training shapes on both sides of
  // each class's compute/memory balance (ResNet-50 with the kernel probes has them; ResNet-50
  // alone, with no conv narrower than 64 input channels, does not, and the split it fits there
  // misprices the narrow convs of other networks: docs/profiler.md). The inactive-pixel pass
  // ("scatter") has its own always: its compute time is a walk priced at an estimated cycle
  // count, its memory time bytes at the GPU's rates, and every training set has both regimes
  // (the walk at high density and small maps, the bytes at low density and large ones).
  bool fit_compute_scale = false;
  // Whether unseen classes also inherit their kind's mean fixed cost. Off by default: a fixed
  // cost belongs to one kernel implementation (a 3x3 conv's tile loop), and does not carry to
  // another (a depthwise conv), while an efficiency scale plausibly does.
  bool offset_fallback = false;
  // Where the timings name the kernels' GEMM tile: the tiles' fixed cost per round
  // (Calibration::gemm_round_s). With it, the kind-level fallback scales come from a companion
  // fit without that term (see calibrate()).
  bool fit_gemm_round = true;
  // A compute efficiency per GEMM kernel variant (Calibration::gemm_efficiency) where the
  // timings name the variant and have min_samples_per_kind of it.
  bool fit_gemm_variants = true;
  // The weight of a prior that holds each GEMM variant's memory factor
  // (Calibration::gemm_memory_efficiency) at the GPU-wide rates (log factor 0), about one
  // training step's worth: a tile's L2 bytes and its FLOPs both grow with its K loop, so its
  // memory factor and its compute efficiency trade along a valley that only the epilogue's bytes
  // and the DRAM traffic tilt, and without the prior the fit settled anywhere along it (a split
  // that is the same on the GPU it was fitted on, not on one with other bandwidths). 0: none.
  double memory_prior = 1.0;
  std::size_t min_samples_per_kind = 3;  // classes with fewer samples keep their scale
  double ridge = 1e-3;                   // pull of each log-parameter towards its start
  FitOptions fit = {.max_iterations = 200, .tolerance = 1e-5};
};

struct CalibrationParameter {
  std::string name;
  double before = 0;
  double after = 0;
};

struct CalibrationResult {
  predictor::Profile profile;  // the base profile with the fitted parameters
  std::vector<CalibrationParameter> parameters;
  std::vector<std::string> fallbacks;  // kind-level entries derived from the fitted classes
  std::size_t samples = 0;
  ErrorMetrics before;  // over the training samples
  ErrorMetrics after;
  double rms_log_before = 0;  // root mean square of log(predicted / measured)
  double rms_log_after = 0;
  int iterations = 0;
  bool converged = false;
};

// The training samples are the modelled kernel steps of the plan's distinct jobs.
CalibrationResult calibrate(const std::vector<PlannedBlock>& plan, const MeasurementSet& measured,
                            const predictor::Profile& base, const CalibrationOptions& options);

std::string calibration_table(const CalibrationResult& result);
std::string calibration_json(const CalibrationResult& result);

}  // namespace lasnet::profiler
