#pragma once
// What the kernel benchmarks share: CUDA error checks, the median, and a set of CUDA events.
#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <vector>

#include "lasnet/common/error.hpp"

namespace lasnet::bench {

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw lasnet::Error(std::string(what) + ": " + cudaGetErrorString(e));
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

class Events {
 public:
  explicit Events(std::size_t n) : ev_(n) {
    for (auto& e : ev_) check(cudaEventCreate(&e), "cudaEventCreate");
  }
  ~Events() {
    for (auto& e : ev_) cudaEventDestroy(e);
  }
  Events(const Events&) = delete;
  Events& operator=(const Events&) = delete;
  cudaEvent_t operator[](std::size_t i) const { return ev_[i]; }
  double ms(std::size_t a, std::size_t b) const {
    float t = 0;
    check(cudaEventElapsedTime(&t, ev_[a], ev_[b]), "cudaEventElapsedTime");
    return t;
  }

 private:
  std::vector<cudaEvent_t> ev_;
};

}  // namespace lasnet::bench
