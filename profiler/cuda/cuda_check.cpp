#include "cuda_check.hpp"

#include <fmt/format.h>

#include <cstdio>

#include "lasnet/common/error.hpp"

namespace lasnet::profiler::cuda {

void throw_cuda_error(cudaError_t error, std::string_view call, const char* file, int line) {
  throw Error(fmt::format("{}:{}: CUDA call {} failed: {} ({})", file, line, call,
                          cudaGetErrorString(error), cudaGetErrorName(error)));
}

void throw_cublas_error(cublasStatus_t status, std::string_view call, const char* file, int line) {
  throw Error(fmt::format("{}:{}: cuBLAS call {} failed: {} ({})", file, line, call,
                          cublasGetStatusString(status), cublasGetStatusName(status)));
}

void report_cuda_error(cudaError_t error, std::string_view call, const char* file,
                       int line) noexcept {
  std::fprintf(stderr, "%s:%d: CUDA call %.*s failed: %s\n", file, line,
               static_cast<int>(call.size()), call.data(), cudaGetErrorString(error));
}

void report_cublas_error(cublasStatus_t status, std::string_view call, const char* file,
                         int line) noexcept {
  std::fprintf(stderr, "%s:%d: cuBLAS call %.*s failed: %s\n", file, line,
               static_cast<int>(call.size()), call.data(), cublasGetStatusString(status));
}

}  // namespace lasnet::profiler::cuda
