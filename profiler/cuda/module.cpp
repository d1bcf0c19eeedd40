// The CUDA backend library's one exported symbol, looked up by gpu_registry.cpp after dlopen().
// C linkage keeps the name plain; the arguments are C++ (both sides are built together).
#include <memory>

#include "cuda_backend.hpp"

extern "C" __attribute__((visibility("default"))) void lasnet_open_cuda_gpu(
    int index, std::unique_ptr<lasnet::profiler::Gpu>& gpu) {
  gpu = lasnet::profiler::open_cuda_gpu(index);
}
