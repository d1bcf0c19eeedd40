#pragma once
// Small shared fixtures for predictor tests: a toy GPU whose numbers are easy to work by hand,
// and access to the shipped examples and profiles.
#include <string>

#include "lasnet/predictor/profile.hpp"
#include "lasnet/predictor/spec.hpp"

namespace lasnet::test {

// 2 SMs x 32 lanes at 1 GHz: 128 GFLOP/s fp32; 1 GB/s DRAM, 4 GB/s L2, no per-SM cap, no launch
// cost, 1 MiB L2, 64 KiB shared memory, 32-byte transactions, overlapped memory and compute.
inline predictor::Profile toy_gpu() {
  predictor::Profile p;
  p.name = "toy";
  p.sm_count = 2;
  p.fp32_lanes_per_sm = 32;
  p.clock_hz = 1e9;
  p.dram_bandwidth_bytes_per_s = 1e9;
  p.l2_bandwidth_bytes_per_s = 4e9;
  p.sm_bandwidth_bytes_per_s = 1e12;
  p.l2_size_bytes = 1 << 20;
  p.shared_memory_per_sm_bytes = 64 << 10;
  p.memory_transaction_bytes = 32;
  p.launch_overhead_s = 0;
  p.peak_flops_per_s[predictor::Precision::fp32] = 128e9;
  p.provenance.source = "datasheet";
  return p;
}

inline std::string source_path(const std::string& relative) {
  return std::string(LASNET_SOURCE_DIR) + "/" + relative;
}

inline predictor::Profile shipped_profile(const std::string& name) {
  return predictor::load_profile(source_path("hardware_profiles/" + name + ".json"));
}

inline predictor::Spec example(const std::string& name) {
  return predictor::load_spec(source_path("examples/" + name + ".json"));
}

}  // namespace lasnet::test
