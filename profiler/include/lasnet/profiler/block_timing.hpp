#pragma once
// Timed runs of the project's kernels, one block configuration at a time, as plain values: what
// `lasnet calibrate` and `lasnet validate` measure on the GPU, and what they save to (and load
// from) a measurements file so that fits and reports can be redone on any machine.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lasnet/kernels/block.hpp"
#include "lasnet/profiler/hardware.hpp"
#include "lasnet/profiler/statistics.hpp"

namespace lasnet::profiler {

// One block configuration to time: the kernels' description of it, the steps to leave out
// (a block without a residual path runs no shortcut), and a key naming it uniquely.
struct BlockJob {
  std::string key;
  kernels::BlockConfig config;
  std::vector<std::string> skip_steps;
  // The mask model of a dynamic block ("uniform": the masker's own logits thresholded at the
  // density; "clustered"/"varied": a generated mask in config.dynamic->mask); "" when dense.
  std::string masks;
};

// "n128 56x56 256-64-256 s1 g1 fp32 dense" or "... fp32 S4 d0.5 gather+scatter [-shortcut]";
// plan.cpp's with_mask_model appends " mask:clustered" for a generated mask.
std::string job_key(const kernels::BlockConfig& config, const std::vector<std::string>& skip);

struct StepTiming {
  std::string name;    // "conv1", "masker", ...
  std::string kernel;  // the implementation the kernels chose
  Summary latency_s;   // from the event before the step to the event after it
  bool noisy = false;
};

struct BlockTiming {
  std::string key;
  bool supported = true;
  std::string reason;  // why not, when not supported
  std::int64_t active_patches = 0;
  std::string masks;  // the job's mask model ("" when dense, or in files written before it)
  std::vector<StepTiming> steps;  // in execution order, skipped steps absent
  Summary latency_s;              // the whole block, timed without events between steps
  bool noisy = false;

  const StepTiming* step(std::string_view name) const;
};

// A measurement campaign: the device and its state, the sampling discipline, the timings.
struct MeasurementSet {
  DeviceInfo device;
  ClockState clocks_before;
  ClockState clocks_after;
  std::string date;
  // The kernels timed (kernels::version() of the build that timed them); "" in files older
  // than the field.
  std::string kernels_version;
  SamplingPlan plan;
  std::string l2_flush;  // how the L2 was cleared before each timed run
  std::vector<BlockTiming> blocks;

  const BlockTiming* find(std::string_view key) const;
};

// "schema": "lasnet.measurements" (docs/schema/measurements.schema.json); the reader also takes
// files labelled "kind": "lasnet-measurements", the same keys before the common label.
inline constexpr int measurements_format_version = 1;
std::string measurements_to_json(const MeasurementSet& set);
// Throws lasnet::Error "SOURCE: path: message" on malformed input.
MeasurementSet parse_measurements(std::string_view json_text, std::string_view source);
MeasurementSet load_measurements(const std::filesystem::path& file);
// What timing a step between CUDA events adds to it: the median over the set's blocks of
// (sum of the step medians - the block's median, timed without events) / steps, at least 0.
// A kernel in a block runs without those events, so fits and per-step comparisons take it off
// the step timings (about 1 us a step on the H100 and H200).
double step_event_overhead_s(const MeasurementSet& set);
// A step's median timing less that overhead (never below a quarter of the timing).
double step_kernel_s(const StepTiming& step, double event_overhead_s);

// Adds `more`'s blocks whose keys `into` lacks; device and plan stay `into`'s.
void merge_measurements(MeasurementSet& into, const MeasurementSet& more);

}  // namespace lasnet::profiler
