#pragma once
// The device context's state (Context::Impl), shared by the block and layer runners: the
// cuBLASLt handle and its workspace, the SM count, whether the wgmma tiles run here.
#include <cublasLt.h>

#include "conv.cuh"
#include "cuda_check.cuh"
#include "lasnet/kernels/runner.hpp"

namespace lasnet::kernels {

struct Context::Impl {
  cublasLtHandle_t lt = nullptr;
  detail::DeviceBuffer<char> workspace;
  int sm_count = 132;
  bool wgmma = false;  // the device and this build run the wgmma tiles

  Impl() {
    int device = 0;
    LASNET_CUDA_CHECK(cudaGetDevice(&device));
    LASNET_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device));
    LASNET_CUDA_CHECK(cublasLtCreate(&lt));
    workspace = detail::DeviceBuffer<char>(std::size_t{32} << 20);
    detail::init_conv_kernels();
    wgmma = detail::wgmma_supported();
  }
  ~Impl() {
    if (lt != nullptr) LASNET_CUDA_CHECK_NOTHROW(cublasLtDestroy(lt));
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
};

}  // namespace lasnet::kernels
