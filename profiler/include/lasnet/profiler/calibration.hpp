#pragma once
// `lasnet calibrate`: fits the predictor's free parameters (compute efficiency per precision,
// DRAM and L2 efficiency, the launch cost, a scale per op kind) to timed kernel steps by least
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
  bool fit_launch = true;
  bool fit_op_scale = true;
  std::size_t min_samples_per_kind = 3;  // op kinds with fewer samples keep their scale
  double ridge = 1e-3;                   // pull of each log-parameter towards its start
  FitOptions fit;
};

struct CalibrationParameter {
  std::string name;
  double before = 0;
  double after = 0;
};

struct CalibrationResult {
  predictor::Profile profile;  // the base profile with the fitted parameters
  std::vector<CalibrationParameter> parameters;
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
