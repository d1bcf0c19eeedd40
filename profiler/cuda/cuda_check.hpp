#pragma once
// One checking macro for CUDA runtime and cuBLAS calls: a failure throws lasnet::Error naming
// the file, line, call and the error text. Destructors use the _NOTHROW variant, which prints.
// The messages are built in cuda_check.cpp (plain C++), so nvcc never compiles fmt.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <string_view>

namespace lasnet::profiler::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t error, std::string_view call, const char* file,
                                   int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, std::string_view call, const char* file,
                                     int line);
void report_cuda_error(cudaError_t error, std::string_view call, const char* file,
                       int line) noexcept;
void report_cublas_error(cublasStatus_t status, std::string_view call, const char* file,
                         int line) noexcept;

inline void check(cudaError_t error, std::string_view call, const char* file, int line) {
  if (error != cudaSuccess) throw_cuda_error(error, call, file, line);
}
inline void check(cublasStatus_t status, std::string_view call, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS) throw_cublas_error(status, call, file, line);
}
inline void check_nothrow(cudaError_t error, std::string_view call, const char* file,
                          int line) noexcept {
  if (error != cudaSuccess) report_cuda_error(error, call, file, line);
}
inline void check_nothrow(cublasStatus_t status, std::string_view call, const char* file,
                          int line) noexcept {
  if (status != CUBLAS_STATUS_SUCCESS) report_cublas_error(status, call, file, line);
}

}  // namespace lasnet::profiler::cuda

#define LASNET_CUDA_CHECK(call) ::lasnet::profiler::cuda::check((call), #call, __FILE__, __LINE__)
#define LASNET_CUDA_CHECK_NOTHROW(call) \
  ::lasnet::profiler::cuda::check_nothrow((call), #call, __FILE__, __LINE__)
// After a kernel launch: the launch's own error (a bad configuration) surfaces here.
#define LASNET_CUDA_CHECK_LAUNCH() LASNET_CUDA_CHECK(cudaGetLastError())
