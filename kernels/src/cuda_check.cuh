#pragma once
// One checking macro for every CUDA runtime and cuBLAS(Lt) call: on failure it throws
// lasnet::Error "FILE:LINE: CALL failed: ERROR TEXT". Destructors use the non-throwing variant,
// which reports to stderr. RAII owners for device memory and events.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdio>
#include <string>
#include <utility>

#include "lasnet/common/error.hpp"

namespace lasnet::kernels::detail {

inline std::string error_text(cudaError_t e) {
  return cudaGetErrorString(e);
}
inline std::string error_text(cublasStatus_t s) {
  return std::string(cublasGetStatusName(s)) + " (" + cublasGetStatusString(s) + ")";
}
inline bool failed(cudaError_t e) {
  return e != cudaSuccess;
}
inline bool failed(cublasStatus_t s) {
  return s != CUBLAS_STATUS_SUCCESS;
}

template <class Status>
void check(Status status, const char* file, int line, const char* call) {
  if (failed(status)) {
    throw lasnet::Error(std::string(file) + ":" + std::to_string(line) + ": " + call +
                        " failed: " + error_text(status));
  }
}
template <class Status>
void check_nothrow(Status status, const char* file, int line, const char* call) noexcept {
  if (failed(status)) {
    std::fprintf(stderr, "%s:%d: %s failed: %s\n", file, line, call, error_text(status).c_str());
  }
}

}  // namespace lasnet::kernels::detail

#define LASNET_CUDA_CHECK(call) ::lasnet::kernels::detail::check((call), __FILE__, __LINE__, #call)
#define LASNET_CUDA_CHECK_NOTHROW(call) \
  ::lasnet::kernels::detail::check_nothrow((call), __FILE__, __LINE__, #call)
// After a kernel launch: configuration errors show here, execution errors at the next sync.
#define LASNET_CUDA_CHECK_LAUNCH() LASNET_CUDA_CHECK(cudaGetLastError())

namespace lasnet::kernels::detail {

// Owning device allocation of `count` elements of T. Move-only.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t count) : count_(count) {
    if (count_ > 0) LASNET_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptr_), bytes()));
  }
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), count_(std::exchange(o.count_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      ptr_ = std::exchange(o.ptr_, nullptr);
      count_ = std::exchange(o.count_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return ptr_; }
  std::size_t size() const { return count_; }
  std::size_t bytes() const { return count_ * sizeof(T); }
  bool empty() const { return count_ == 0; }
  void reset() noexcept {
    if (ptr_ != nullptr) LASNET_CUDA_CHECK_NOTHROW(cudaFree(ptr_));
    ptr_ = nullptr;
    count_ = 0;
  }

 private:
  T* ptr_ = nullptr;
  std::size_t count_ = 0;
};

}  // namespace lasnet::kernels::detail
