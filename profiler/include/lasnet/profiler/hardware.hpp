#pragma once
// What `lasnet profile` measures on a GPU, as plain values: the device as the driver describes
// it, its clock state, and one Figure per micro-benchmark (median with spread). Turning the
// figures into a hardware profile and into reports is host code, tested without a GPU.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lasnet/predictor/profile.hpp"
#include "lasnet/profiler/statistics.hpp"

namespace lasnet::profiler {

struct DeviceInfo {
  int index = 0;
  std::string name;
  std::string pci_bus_id;
  int compute_capability_major = 0;
  int compute_capability_minor = 0;
  std::int64_t sm_count = 0;
  std::int64_t fp32_lanes_per_sm = 0;  // from the compute capability (the driver does not say)
  double max_sm_clock_hz = 0;          // the driver's peak SM clock
  double memory_clock_hz = 0;
  std::int64_t memory_bus_width_bits = 0;
  std::int64_t global_memory_bytes = 0;
  std::int64_t l2_size_bytes = 0;
  std::int64_t shared_memory_per_sm_bytes = 0;
  std::int64_t max_threads_per_sm = 0;
  std::int64_t max_blocks_per_sm = 0;
  std::string driver_version;  // "570.86.15" where the driver says, else the CUDA driver API
  std::string cuda_runtime_version;
};

// FP32 lanes per SM by compute capability: 64 on 6.0/7.x/8.0, 128 on 6.1/8.6+/9.x/10.x/12.x.
std::int64_t fp32_lanes_for(int major, int minor);

// The clocks and limits the GPU reports at one moment (through NVML when it is available).
struct ClockState {
  bool available = false;
  std::string unavailable_reason;
  double sm_clock_hz = 0;
  double max_sm_clock_hz = 0;
  double memory_clock_hz = 0;
  double temperature_c = 0;
  double power_w = 0;
  double power_limit_w = 0;
  std::vector<std::string> throttle_reasons;  // empty: running free
  // "SM 1980/1980 MHz, mem 2619 MHz, 45 C, 120/700 W, no throttling"
  std::string describe() const;
};

struct Figure {
  std::string name;         // "dram_copy_bandwidth"
  std::string unit;         // "B/s", "FLOP/s", "s"
  std::string description;  // how it was measured
  Summary value;            // in `unit`
  bool noisy = false;
};

struct HardwareMeasurement {
  DeviceInfo device;
  ClockState clocks_before;
  ClockState clocks_after;
  double measured_sm_clock_hz = 0;  // SM cycles over elapsed time while the FMA peak ran
  std::string date;                 // ISO 8601, UTC
  SamplingPlan plan;
  std::vector<Figure> figures;

  const Figure* find(std::string_view name) const;
};

// Figure names the profile needs; measure_hardware produces all of them.
namespace figure {
inline constexpr std::string_view dram_read = "dram_read_bandwidth";
inline constexpr std::string_view dram_write = "dram_write_bandwidth";
inline constexpr std::string_view dram_copy = "dram_copy_bandwidth";
inline constexpr std::string_view l2_read = "l2_read_bandwidth";
inline constexpr std::string_view sm_read = "sm_l2_read_bandwidth";
inline constexpr std::string_view fp32_fma = "fp32_fma_peak";
inline constexpr std::string_view fp32_gemm = "fp32_gemm_cublas";
inline constexpr std::string_view tf32_gemm = "tf32_gemm_cublas";
inline constexpr std::string_view fp16_gemm = "fp16_gemm_cublas";
inline constexpr std::string_view launch_overhead = "launch_overhead";
inline constexpr std::string_view graph_launch_overhead = "graph_launch_overhead";  // optional
inline constexpr std::string_view launch_latency = "launch_latency";
}  // namespace figure

// The hardware profile a measurement gives: provenance "measured"; efficiencies left at 1
// (calibration fits them). `name` becomes the profile's name. Throws lasnet::Error when a
// figure the profile needs is missing.
predictor::Profile make_measured_profile(const HardwareMeasurement& measurement,
                                         std::string_view name, std::string_view tool_version);

// Reports of a measurement: an aligned table, CSV and JSON (ordered keys).
std::string hardware_table(const HardwareMeasurement& measurement);
std::string hardware_csv(const HardwareMeasurement& measurement);
std::string hardware_json(const HardwareMeasurement& measurement);

// "3.02 TB/s", "51.2 TFLOP/s", "4.1 us": a value in a unit, scaled for people.
std::string format_quantity(double value, std::string_view unit);

// Current UTC time as "2026-05-04T12:34:56Z".
std::string utc_now_iso8601();

}  // namespace lasnet::profiler
