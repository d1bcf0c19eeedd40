#pragma once
// `lasnet run` on the GPU (network_runner.cpp), called by the CUDA backend.
#include "lasnet/profiler/gpu.hpp"
#include "lasnet/profiler/network_run.hpp"

namespace lasnet::profiler::cuda {

NetworkMeasurement run_network(const DeviceInfo& device, const NetworkProgram& program,
                               const NetworkRunOptions& options, const ProgressFn& progress);

}  // namespace lasnet::profiler::cuda
