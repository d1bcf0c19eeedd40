#include "lasnet/profiler/hardware.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <ctime>

#include "lasnet/common/document.hpp"
#include "lasnet/common/error.hpp"

namespace lasnet::profiler {

namespace {

const Figure& require(const HardwareMeasurement& m, std::string_view name) {
  const Figure* f = m.find(name);
  if (f == nullptr) {
    throw Error(fmt::format("the measurement has no figure '{}', which the profile needs", name));
  }
  return *f;
}

std::string format_ghz(double hz) {
  return fmt::format("{:.0f} MHz", hz / 1e6);
}

std::string spread_text(const Figure& f) {
  return fmt::format("{:.1f}%", 100 * f.value.relative_spread());
}

nlohmann::ordered_json summary_json(const Summary& s) {
  nlohmann::ordered_json j;
  j["median"] = s.median;
  j["p10"] = s.p10;
  j["p90"] = s.p90;
  j["min"] = s.min;
  j["max"] = s.max;
  j["mean"] = s.mean;
  j["stddev"] = s.stddev;
  j["runs"] = s.runs;
  j["relative_spread"] = s.relative_spread();
  return j;
}

nlohmann::ordered_json clocks_json(const ClockState& c) {
  nlohmann::ordered_json j;
  j["available"] = c.available;
  if (!c.available) {
    j["reason"] = c.unavailable_reason;
    return j;
  }
  j["sm_clock_hz"] = c.sm_clock_hz;
  j["max_sm_clock_hz"] = c.max_sm_clock_hz;
  j["memory_clock_hz"] = c.memory_clock_hz;
  j["temperature_c"] = c.temperature_c;
  j["power_w"] = c.power_w;
  j["power_limit_w"] = c.power_limit_w;
  j["throttle_reasons"] = c.throttle_reasons;
  return j;
}

}  // namespace

std::int64_t fp32_lanes_for(int major, int minor) {
  if (major == 6) return minor == 0 ? 64 : 128;
  if (major == 7) return 64;
  if (major == 8) return minor == 0 ? 64 : 128;
  if (major >= 9) return 128;
  return 128;  // Maxwell (5.x) and older had 128 as well
}

std::string ClockState::describe() const {
  if (!available) return fmt::format("clock state unavailable ({})", unavailable_reason);
  std::string text = fmt::format(
      "SM {:.0f}/{:.0f} MHz, memory {:.0f} MHz, {:.0f} C, {:.0f}/{:.0f} W", sm_clock_hz / 1e6,
      max_sm_clock_hz / 1e6, memory_clock_hz / 1e6, temperature_c, power_w, power_limit_w);
  if (throttle_reasons.empty()) {
    text += ", no clock limits active";
  } else {
    text += fmt::format(", clocks limited by: {}", fmt::join(throttle_reasons, ", "));
  }
  return text;
}

const Figure* HardwareMeasurement::find(std::string_view name) const {
  for (const auto& f : figures) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

predictor::Profile make_measured_profile(const HardwareMeasurement& m, std::string_view name,
                                         std::string_view tool_version) {
  using predictor::Precision;
  const DeviceInfo& d = m.device;
  predictor::Profile p;
  p.name = std::string(name);
  p.description = fmt::format("{} (sm_{}{}), measured by lasnet profile", d.name,
                              d.compute_capability_major, d.compute_capability_minor);
  p.sm_count = d.sm_count;
  p.fp32_lanes_per_sm = d.fp32_lanes_per_sm;
  // The clock the SMs actually ran at under full FMA load, which is what the peaks reflect.
  p.clock_hz = m.measured_sm_clock_hz > 0 ? m.measured_sm_clock_hz : d.max_sm_clock_hz;
  p.dram_bandwidth_bytes_per_s = require(m, figure::dram_copy).value.median;
  // The ceiling a calibrated DRAM efficiency may reach: a read-only or write-only stream beats
  // a copy (H100: read 3.05, write 3.14, copy 2.78 TB/s).
  p.dram_peak_bytes_per_s = p.dram_bandwidth_bytes_per_s;
  for (const auto stream : {figure::dram_read, figure::dram_write}) {
    if (const Figure* f = m.find(stream)) {
      p.dram_peak_bytes_per_s = std::max(p.dram_peak_bytes_per_s, f->value.median);
    }
  }
  p.l2_bandwidth_bytes_per_s = require(m, figure::l2_read).value.median;
  p.sm_bandwidth_bytes_per_s = require(m, figure::sm_read).value.median;
  p.l2_size_bytes = d.l2_size_bytes;
  p.shared_memory_per_sm_bytes = d.shared_memory_per_sm_bytes;
  p.max_threads_per_sm = d.max_threads_per_sm;
  p.max_blocks_per_sm = d.max_blocks_per_sm;
  p.memory_transaction_bytes = 32;
  p.launch_overhead_s = require(m, figure::launch_overhead).value.median;
  // Measurements from before the figure existed give profiles without it (stream launches).
  if (const Figure* f = m.find(figure::graph_launch_overhead)) {
    p.graph_launch_overhead_s = f->value.median;
  }
  p.peak_flops_per_s[Precision::fp32] = require(m, figure::fp32_fma).value.median;
  if (const Figure* f = m.find(figure::tf32_gemm))
    p.peak_flops_per_s[Precision::tf32] = f->value.median;
  if (const Figure* f = m.find(figure::fp16_gemm))
    p.peak_flops_per_s[Precision::fp16] = f->value.median;
  p.combine = predictor::TimeCombine::overlap;
  p.provenance.source = "measured";
  p.provenance.date = m.date;
  p.provenance.tool_version = std::string(tool_version);
  p.provenance.device_name = d.name;
  p.provenance.driver = d.driver_version;
  std::vector<std::string> noisy;
  for (const auto& f : m.figures) {
    if (f.noisy) noisy.push_back(f.name);
  }
  p.provenance.notes = fmt::format(
      "medians of {}+ runs; SM clock under load {}, driver peak {}; clocks before: {}; after: {}; "
      "CUDA runtime {}{}",
      m.plan.min_runs, format_ghz(m.measured_sm_clock_hz), format_ghz(d.max_sm_clock_hz),
      m.clocks_before.describe(), m.clocks_after.describe(), d.cuda_runtime_version,
      noisy.empty() ? std::string()
                    : fmt::format("; NOISY (spread over {:.0f}%): {}", 100 * m.plan.noise_threshold,
                                  fmt::join(noisy, ", ")));
  return p;
}

std::string format_quantity(double value, std::string_view unit) {
  if (unit == "s") {
    if (value < 1e-3) return fmt::format("{:.2f} us", value * 1e6);
    if (value < 1) return fmt::format("{:.3f} ms", value * 1e3);
    return fmt::format("{:.3f} s", value);
  }
  static constexpr std::pair<double, std::string_view> prefixes[] = {
      {1e15, "P"}, {1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}};
  for (const auto& [scale, prefix] : prefixes) {
    if (std::fabs(value) >= scale) return fmt::format("{:.3g} {}{}", value / scale, prefix, unit);
  }
  return fmt::format("{:.3g} {}", value, unit);
}

std::string hardware_table(const HardwareMeasurement& m) {
  const DeviceInfo& d = m.device;
  std::string out = fmt::format(
      "device {}: {} (sm_{}{}, {} SMs x {} FP32 lanes, L2 {:.0f} MiB, {:.1f} GiB), driver {}, "
      "CUDA runtime {}\n",
      d.index, d.name, d.compute_capability_major, d.compute_capability_minor, d.sm_count,
      d.fp32_lanes_per_sm, static_cast<double>(d.l2_size_bytes) / (1 << 20),
      static_cast<double>(d.global_memory_bytes) / (1 << 30), d.driver_version,
      d.cuda_runtime_version);
  out += fmt::format("SM clock under load {} (driver peak {})\n",
                     format_ghz(m.measured_sm_clock_hz), format_ghz(d.max_sm_clock_hz));
  out += fmt::format("clocks before: {}\nclocks after:  {}\n", m.clocks_before.describe(),
                     m.clocks_after.describe());
  out += fmt::format("{:<24} {:>14} {:>14} {:>14} {:>8} {:>5}\n", "figure", "median", "p10", "p90",
                     "spread", "runs");
  for (const auto& f : m.figures) {
    out += fmt::format("{:<24} {:>14} {:>14} {:>14} {:>8} {:>5}{}\n", f.name,
                       format_quantity(f.value.median, f.unit),
                       format_quantity(f.value.p10, f.unit), format_quantity(f.value.p90, f.unit),
                       spread_text(f), f.value.runs, f.noisy ? "  NOISY" : "");
  }
  return out;
}

std::string hardware_csv(const HardwareMeasurement& m) {
  std::string out = "figure,unit,median,p10,p90,min,max,runs,relative_spread,noisy\n";
  for (const auto& f : m.figures) {
    out += fmt::format("{},{},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g},{},{:.4f},{}\n", f.name, f.unit,
                       f.value.median, f.value.p10, f.value.p90, f.value.min, f.value.max,
                       f.value.runs, f.value.relative_spread(), f.noisy ? "true" : "false");
  }
  return out;
}

std::string hardware_json(const HardwareMeasurement& m) {
  const DeviceInfo& d = m.device;
  nlohmann::ordered_json j = output_document("hardware_measurement", 1);
  j["date"] = m.date;
  nlohmann::ordered_json dev;
  dev["index"] = d.index;
  dev["name"] = d.name;
  dev["pci_bus_id"] = d.pci_bus_id;
  dev["compute_capability"] =
      fmt::format("{}.{}", d.compute_capability_major, d.compute_capability_minor);
  dev["sm_count"] = d.sm_count;
  dev["fp32_lanes_per_sm"] = d.fp32_lanes_per_sm;
  dev["max_sm_clock_hz"] = d.max_sm_clock_hz;
  dev["memory_clock_hz"] = d.memory_clock_hz;
  dev["memory_bus_width_bits"] = d.memory_bus_width_bits;
  dev["global_memory_bytes"] = d.global_memory_bytes;
  dev["l2_size_bytes"] = d.l2_size_bytes;
  dev["shared_memory_per_sm_bytes"] = d.shared_memory_per_sm_bytes;
  dev["max_threads_per_sm"] = d.max_threads_per_sm;
  dev["max_blocks_per_sm"] = d.max_blocks_per_sm;
  dev["driver_version"] = d.driver_version;
  dev["cuda_runtime_version"] = d.cuda_runtime_version;
  j["device"] = dev;
  j["measured_sm_clock_hz"] = m.measured_sm_clock_hz;
  j["clocks_before"] = clocks_json(m.clocks_before);
  j["clocks_after"] = clocks_json(m.clocks_after);
  nlohmann::ordered_json plan;
  plan["warmup_runs"] = m.plan.warmup_runs;
  plan["min_runs"] = m.plan.min_runs;
  plan["max_runs"] = m.plan.max_runs;
  plan["min_time_s"] = m.plan.min_time_s;
  plan["noise_threshold"] = m.plan.noise_threshold;
  j["sampling"] = plan;
  auto figures = nlohmann::ordered_json::array();
  for (const auto& f : m.figures) {
    nlohmann::ordered_json jf;
    jf["name"] = f.name;
    jf["unit"] = f.unit;
    jf["description"] = f.description;
    jf["value"] = summary_json(f.value);
    jf["noisy"] = f.noisy;
    figures.push_back(jf);
  }
  j["figures"] = figures;
  return j.dump(2) + "\n";
}

std::string utc_now_iso8601() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

}  // namespace lasnet::profiler
