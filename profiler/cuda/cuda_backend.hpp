#pragma once
// The CUDA backend's entry point, declared without CUDA types so that gpu_registry.cpp
// (plain C++) can call it.
#include <memory>

#include "lasnet/profiler/gpu.hpp"

namespace lasnet::profiler {

// Throws lasnet::Error when the driver finds no device or `index` is out of range.
std::unique_ptr<Gpu> open_cuda_gpu(int index);

}  // namespace lasnet::profiler
