#pragma once
// Timing of the kernels' blocks (block_timer.cpp), called by the CUDA backend.
#include <vector>

#include "lasnet/profiler/gpu.hpp"
#include "nvml_clocks.hpp"

namespace lasnet::profiler::cuda {

MeasurementSet time_blocks(const DeviceInfo& device, const Nvml& nvml,
                           const std::vector<BlockJob>& jobs, const SamplingPlan& plan,
                           const ProgressFn& progress);

}  // namespace lasnet::profiler::cuda
