#pragma once
// The GPU as the profiler sees it: an interface with no CUDA types, so callers (the CLI,
// calibrate, validate) build without CUDA. open_gpu() is the one entry point; it throws
// lasnet::Error with a clear message when lasnet was built without CUDA or when no usable
// device is present (main maps that to exit status 2).
#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>

#include "lasnet/profiler/block_timing.hpp"
#include "lasnet/profiler/hardware.hpp"
#include "lasnet/profiler/network_run.hpp"
#include "lasnet/profiler/statistics.hpp"

namespace lasnet::profiler {

// Called as work proceeds: the step being run, steps done so far, steps in all.
using ProgressFn = std::function<void(std::string_view step, std::size_t done, std::size_t total)>;

struct HardwareOptions {
  SamplingPlan plan;
  // Bytes of each DRAM benchmark buffer; 0 picks max(32 x L2, 1 GiB) within free memory.
  std::int64_t dram_buffer_bytes = 0;
  // Side of the square matrices of the cuBLAS peak measurements.
  std::int64_t gemm_size = 8192;
};

class Gpu {
 public:
  virtual ~Gpu() = default;
  virtual const DeviceInfo& info() const = 0;
  virtual ClockState clock_state() const = 0;
  // Runs every micro-benchmark of `lasnet profile`.
  virtual HardwareMeasurement measure_hardware(const HardwareOptions& options,
                                               const ProgressFn& progress) = 0;
  // Times each job with the project's kernels: L2 cleared before every timed run, events
  // between the steps for the per-step times, and separate runs without them for the block.
  // A job the kernels refuse comes back unsupported, with the reason.
  virtual MeasurementSet time_blocks(const std::vector<BlockJob>& jobs, const SamplingPlan& plan,
                                     const ProgressFn& progress) = 0;
  // Builds the whole program on the device and times it (`lasnet run`; network_run.hpp): a CUDA
  // graph over the program's streams, and one eager run with events around every launch.
  // Throws lasnet::Error naming a unit the kernels cannot run.
  virtual NetworkMeasurement run_network(const NetworkProgram& program,
                                         const NetworkRunOptions& options,
                                         const ProgressFn& progress) = 0;
};

// Whether this build has the CUDA backend at all (a device may still be missing).
bool gpu_backend_built();
// Opens CUDA device `index`; throws lasnet::Error naming what is missing.
std::unique_ptr<Gpu> open_gpu(int index);

}  // namespace lasnet::profiler
