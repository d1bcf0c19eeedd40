#include <doctest/doctest.h>

#include "lasnet/common/error.hpp"
#include "lasnet/predictor/profile.hpp"
#include "lasnet/profiler/hardware.hpp"

using namespace lasnet::profiler;
using lasnet::predictor::Precision;

namespace {

Figure figure_of(std::string_view name, std::string_view unit, double median) {
  Figure f;
  f.name = std::string(name);
  f.unit = std::string(unit);
  f.value.runs = 20;
  f.value.median = f.value.mean = median;
  f.value.p10 = f.value.min = 0.99 * median;
  f.value.p90 = f.value.max = 1.01 * median;
  return f;
}

HardwareMeasurement h100_like() {
  HardwareMeasurement m;
  m.device.name = "NVIDIA H100 80GB HBM3";
  m.device.compute_capability_major = 9;
  m.device.sm_count = 132;
  m.device.fp32_lanes_per_sm = 128;
  m.device.max_sm_clock_hz = 1.98e9;
  m.device.l2_size_bytes = 52428800;
  m.device.shared_memory_per_sm_bytes = 233472;
  m.device.max_threads_per_sm = 2048;
  m.device.max_blocks_per_sm = 32;
  m.device.driver_version = "570.86.15";
  m.measured_sm_clock_hz = 1.755e9;
  m.date = "2026-11-25T10:00:00Z";
  m.figures = {figure_of(figure::dram_copy, "B/s", 3.0e12),
               figure_of(figure::l2_read, "B/s", 8.0e12),
               figure_of(figure::sm_read, "B/s", 1.1e11),
               figure_of(figure::fp32_fma, "FLOP/s", 5.9e13),
               figure_of(figure::tf32_gemm, "FLOP/s", 4.0e14),
               figure_of(figure::fp16_gemm, "FLOP/s", 7.0e14),
               figure_of(figure::launch_overhead, "s", 1.5e-6)};
  m.figures[2].noisy = true;
  return m;
}

}  // namespace

TEST_CASE("fp32 lanes per SM by compute capability") {
  CHECK(fp32_lanes_for(7, 0) == 64);
  CHECK(fp32_lanes_for(8, 0) == 64);
  CHECK(fp32_lanes_for(8, 6) == 128);
  CHECK(fp32_lanes_for(9, 0) == 128);
}

TEST_CASE("make_measured_profile takes the figures the predictor needs") {
  const auto p = make_measured_profile(h100_like(), "h100", "0.1.0");
  CHECK(p.name == "h100");
  CHECK(p.sm_count == 132);
  CHECK(p.clock_hz == doctest::Approx(1.755e9));  // the clock under load, not the peak
  CHECK(p.dram_bandwidth_bytes_per_s == doctest::Approx(3.0e12));
  CHECK(p.l2_bandwidth_bytes_per_s == doctest::Approx(8.0e12));
  CHECK(p.sm_bandwidth_bytes_per_s == doctest::Approx(1.1e11));
  CHECK(p.launch_overhead_s == doctest::Approx(1.5e-6));
  CHECK(p.peak_flops_of(Precision::fp32) == doctest::Approx(5.9e13));
  CHECK(p.peak_flops_of(Precision::fp16) == doctest::Approx(7.0e14));
  CHECK(p.provenance.source == "measured");
  CHECK(p.provenance.device_name == "NVIDIA H100 80GB HBM3");
  CHECK(p.provenance.driver == "570.86.15");
  CHECK(p.provenance.notes.find("NOISY") != std::string::npos);
  CHECK(p.provenance.notes.find("sm_l2_read_bandwidth") != std::string::npos);
}

TEST_CASE("the graph launch figure is optional and becomes graph_launch_overhead_s") {
  auto m = h100_like();
  CHECK(make_measured_profile(m, "h100", "0.1.0").graph_launch_overhead_s == 0.0);
  m.figures.push_back(figure_of(figure::graph_launch_overhead, "s", 0.8e-6));
  const auto p = make_measured_profile(m, "h100", "0.1.0");
  CHECK(p.graph_launch_overhead_s == doctest::Approx(0.8e-6));
  const auto q = lasnet::predictor::parse_profile(lasnet::predictor::profile_to_json(p), "test");
  CHECK(q.graph_launch_overhead_s == doctest::Approx(0.8e-6));
  // A graph keeps the stream figure (the calibration's launch term) and says it is a graph.
  const auto g = lasnet::predictor::graph_launched(q);
  CHECK(g.graph_launches);
  CHECK(g.launch_overhead_s == doctest::Approx(1.5e-6));
  CHECK_FALSE(q.graph_launches);
}

TEST_CASE("a measured profile survives the predictor's own JSON round trip") {
  const auto p = make_measured_profile(h100_like(), "h100", "0.1.0");
  const auto q = lasnet::predictor::parse_profile(lasnet::predictor::profile_to_json(p), "test");
  CHECK(q.name == p.name);
  CHECK(q.clock_hz == doctest::Approx(p.clock_hz));
  CHECK(q.peak_flops_of(Precision::tf32) == doctest::Approx(4.0e14));
  CHECK(q.provenance.source == "measured");
  CHECK(q.provenance.date == p.provenance.date);
}

TEST_CASE("make_measured_profile: a missing figure is an error naming it") {
  auto m = h100_like();
  m.figures.erase(m.figures.begin());
  CHECK_THROWS_WITH_AS(make_measured_profile(m, "x", "0"), doctest::Contains("dram_copy_bandwidth"),
                       lasnet::Error);
}

TEST_CASE("format_quantity scales for people") {
  CHECK(format_quantity(3.0e12, "B/s") == "3 TB/s");
  CHECK(format_quantity(5.93e13, "FLOP/s") == "59.3 TFLOP/s");
  CHECK(format_quantity(4.1e-6, "s") == "4.10 us");
  CHECK(format_quantity(2.5e-3, "s") == "2.500 ms");
}

TEST_CASE("hardware reports list every figure, and mark the noisy ones") {
  const auto m = h100_like();
  const auto table = hardware_table(m);
  CHECK(table.find("dram_copy_bandwidth") != std::string::npos);
  CHECK(table.find("NOISY") != std::string::npos);
  const auto csv = hardware_csv(m);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 1 + 7);
  const auto json = hardware_json(m);
  CHECK(json.find("\"relative_spread\"") != std::string::npos);
  CHECK(json.starts_with("{\n  \"schema\": \"lasnet.hardware_measurement\",\n  \"version\": 1,"));
}
