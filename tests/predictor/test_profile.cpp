#include <doctest/doctest.h>

#include <string>

#include "fixtures.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/predictor/profile.hpp"

using lasnet::predictor::parse_profile;
using lasnet::predictor::Precision;

namespace {

const char* valid = R"({
  "schema_version": 1, "name": "g", "sm_count": 80, "fp32_lanes_per_sm": 64,
  "clock_hz": 1.5e9, "dram_bandwidth_bytes_per_s": 7e11, "l2_bandwidth_bytes_per_s": 2.8e12,
  "l2_size_bytes": 6291456, "shared_memory_per_sm_bytes": 98304,
  "memory_transaction_bytes": 32, "launch_overhead_s": 8e-6,
  "peak_flops_per_s": {"fp32": 1.536e13, "fp16": 1.2e14}, "time_combine": "overlap",
  "provenance": {"source": "datasheet", "date": "2026-11-25"}
})";

// Replaces the first occurrence of `from` in the valid profile.
std::string with(const std::string& from, const std::string& to) {
  std::string text = valid;
  const auto pos = text.find(from);
  REQUIRE(pos != std::string::npos);
  // Concatenation, not std::string::replace: GCC 12 warns falsely (-Wrestrict) on the latter.
  return text.substr(0, pos) + to + text.substr(pos + from.size());
}

}  // namespace

TEST_CASE("a valid profile parses into its values, with documented defaults") {
  const auto p = parse_profile(valid, "g.json");
  CHECK(p.sm_count == 80);
  CHECK(p.clock_hz == 1.5e9);
  CHECK(p.peak_flops_of(Precision::fp16) == 1.2e14);
  // No tf32 units: falls back to the fp32 peak.
  CHECK(p.peak_flops_of(Precision::tf32) == 1.536e13);
  CHECK_FALSE(p.has_tensor_cores(Precision::tf32));
  CHECK(p.sm_bandwidth_bytes_per_s == doctest::Approx(32 * 1.5e9));
  CHECK(p.max_threads_per_sm == 2048);
  CHECK(p.calibration.compute_efficiency_of(Precision::fp32) == 1.0);
  CHECK(p.calibration.op_scale_of("gather") == 1.0);
}

TEST_CASE("profiles round-trip through profile_to_json") {
  auto p = parse_profile(valid, "g.json");
  p.calibration.compute_efficiency[Precision::fp32] = 0.8;
  p.calibration.op_scale["gather"] = 1.25;
  p.provenance.notes.append("round trip");
  const auto text = lasnet::predictor::profile_to_json(p);
  const auto q = parse_profile(text, "round.json");
  CHECK(lasnet::predictor::profile_to_json(q) == text);
  CHECK(q.calibration.op_scale_of("gather") == 1.25);
}

TEST_CASE("profiles are written with the common label; the old schema_version still reads") {
  const auto text = lasnet::predictor::profile_to_json(parse_profile(valid, "g.json"));
  CHECK(text.starts_with("{\n  \"schema\": \"lasnet.profile\",\n  \"version\": 1,"));
  CHECK(text.find("schema_version") == std::string::npos);
  CHECK(parse_profile(text, "new.json").schema_version == 1);
  CHECK(parse_profile(valid, "old.json").schema_version == 1);
}

TEST_CASE("gemm_round_s: absent means 0 and is not written; set, it round-trips") {
  auto p = parse_profile(valid, "g.json");
  CHECK(p.calibration.gemm_round_s == 0);
  CHECK(lasnet::predictor::profile_to_json(p).find("gemm_round_s") == std::string::npos);
  p.calibration.gemm_round_s = 2.5e-6;
  const auto q = parse_profile(lasnet::predictor::profile_to_json(p), "round.json");
  CHECK(q.calibration.gemm_round_s == 2.5e-6);
  const auto r = parse_profile(
      with("\"provenance\"", "\"calibration\": {\"gemm_round_s\": 1e-6}, \"provenance\""),
      "g.json");
  CHECK(r.calibration.gemm_round_s == 1e-6);
  // Per GEMM variant, under its own key; a negative entry names its path.
  p.calibration.gemm_round["library.tf32"] = 3e-6;
  const auto v = parse_profile(lasnet::predictor::profile_to_json(p), "round.json");
  CHECK(v.calibration.gemm_round == p.calibration.gemm_round);
  CHECK_THROWS_WITH(
      parse_profile(with("\"provenance\"",
                         "\"calibration\": {\"gemm_round_s_of\": {\"library.tf32\": -1}}, "
                         "\"provenance\""),
                    "g.json"),
      "g.json: calibration.gemm_round_s_of.library.tf32: must not be negative, got -1");
}

TEST_CASE("gemm_round_of: the variant's, its split sibling's, its family's, else the GPU's") {
  lasnet::predictor::Calibration c;
  c.gemm_round_s = 1e-6;
  c.gemm_round["igemm.tf32.256x128.w16"] = 4e-6;
  c.gemm_round["igemm.tf32.64x64.w4"] = 1e-6;
  CHECK(c.gemm_round_of("igemm.tf32.256x128.w16") == 4e-6);
  CHECK(c.gemm_round_of("igemm.tf32.256x128.w16.splitk") == 4e-6);
  CHECK(c.gemm_round_of("igemm.tf32.128x64.w8") == doctest::Approx(2e-6));  // sqrt(4 x 1)
  CHECK(c.gemm_round_of("library.tf32") == 1e-6);
  CHECK(c.gemm_round_of("") == 1e-6);
}

TEST_CASE("every shipped profile parses") {
  for (const char* name : {"v100", "tx2", "rtx3090", "rtx3060", "jetson-nano", "h100-sxm"}) {
    CAPTURE(name);
    const auto p = lasnet::test::shipped_profile(name);
    CHECK(p.name == name);
    CHECK(p.provenance.source == "datasheet");
  }
}

TEST_CASE("malformed profiles name the file and the JSON path") {
  struct Case {
    std::string text;
    std::string message;
  };
  const Case cases[] = {
      {"{nope", "g.json: not valid JSON"},
      {with("\"dram_bandwidth_bytes_per_s\": 7e11", "\"dram_bandwidth_bytes_per_s\": 0"),
       "g.json: dram_bandwidth_bytes_per_s: must be positive, got 0"},
      {with("\"sm_count\": 80", "\"sm_count\": -4"), "g.json: sm_count: must be positive, got -4"},
      {with("\"sm_count\": 80", "\"sm_count\": \"80\""),
       "g.json: sm_count: expected an integer, got a string"},
      {with("\"sm_count\": 80, ", ""), "g.json: sm_count: missing required key"},
      {with("\"name\": \"g\"", "\"name\": \"g\", \"smcount\": 3"), "g.json: smcount: unknown key"},
      {with("\"fp32\": 1.536e13, ", ""), "g.json: peak_flops_per_s.fp32: missing required key"},
      {with("\"fp16\"", "\"int8\""), "g.json: peak_flops_per_s.int8: unknown precision 'int8'"},
      {with("\"overlap\"", "\"both\""), "g.json: time_combine: 'both' is not one of overlap, sum"},
      {with("\"datasheet\"", "\"guess\""), "g.json: provenance.source: 'guess' is not one of"},
      {with("\"schema_version\": 1", "\"schema_version\": 7"),
       "g.json: schema_version: version 7 is not supported"},
      {with("\"schema_version\": 1", "\"schema\": \"lasnet.profile\", \"version\": 7"),
       "g.json: version: lasnet.profile 7 is not a version this tool reads (1)"},
      {with("\"schema_version\": 1", "\"schema\": \"lasnet.spec\", \"version\": 1"),
       "g.json: schema: expected \"lasnet.profile\""},
      {with("\"launch_overhead_s\": 8e-6", "\"launch_overhead_s\": -1"),
       "g.json: launch_overhead_s: must not be negative"},
      {with("\"launch_overhead_s\": 8e-6",
            "\"launch_overhead_s\": 8e-6, \"graph_launch_overhead_s\": -1"),
       "g.json: graph_launch_overhead_s: must not be negative"},
      {with("\"provenance\"", "\"calibration\": {\"gemm_round_s\": -2e-6}, \"provenance\""),
       "g.json: calibration.gemm_round_s: must not be negative"},
      {with("\"provenance\"", "\"calibration\": {\"gemm_round_s\": \"1us\"}, \"provenance\""),
       "g.json: calibration.gemm_round_s: expected a number, got a string"},
      {"[1, 2]", "g.json: (top level): expected an object"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.message);
    CHECK_THROWS_WITH_AS(parse_profile(c.text, "g.json"), doctest::Contains(c.message.c_str()),
                         lasnet::Error);
  }
}

TEST_CASE("find_profile resolves names and files, and lists what exists on failure") {
  const std::vector<std::filesystem::path> dirs{lasnet::test::source_path("hardware_profiles")};
  CHECK(lasnet::predictor::find_profile("v100", dirs).filename() == "v100.json");
  CHECK(
      lasnet::predictor::find_profile(lasnet::test::source_path("hardware_profiles/tx2.json"), dirs)
          .filename() == "tx2.json");
  CHECK_THROWS_WITH_AS(lasnet::predictor::find_profile("a100", dirs),
                       doctest::Contains("no hardware profile named 'a100' (known: "),
                       lasnet::Error);
  CHECK_THROWS_WITH_AS(lasnet::predictor::find_profile("nothere/x.json", dirs),
                       doctest::Contains("no such profile file"), lasnet::Error);
  CHECK(lasnet::predictor::list_profiles(dirs).size() >= 6);
}

TEST_CASE("fitted_on and a validation summary round-trip; absent, nothing is written") {
  auto p = parse_profile(valid, "g.json");
  const auto plain = lasnet::predictor::profile_to_json(p);
  CHECK(plain.find("fitted_on") == std::string::npos);
  CHECK(plain.find("validation") == std::string::npos);
  p.calibration.fitted_on = {"GPU X", 1.5e9, "abc123", {"conv.k1", "masker"}};
  p.provenance.validation = lasnet::predictor::ValidationSummary{
      "2026-12-06T00:00:00Z", "report.json", 400, 0.081, 0.85, 32, 0.97, 0.12};
  const auto text = lasnet::predictor::profile_to_json(p);
  const auto q = parse_profile(text, "round.json");
  CHECK(lasnet::predictor::profile_to_json(q) == text);
  REQUIRE(q.calibration.fitted_on);
  CHECK(q.calibration.fitted_on->classes.size() == 2);
  REQUIRE(q.provenance.validation);
  CHECK(q.provenance.validation->network_worst == 0.12);
  CHECK_THROWS_WITH_AS(
      parse_profile(with(R"("source": "datasheet")",
                         R"("source": "datasheet", "validation": {"date": "d", "kernels": 3,
                            "kernel_mape": 0.1, "kernel_within_15": 1.5})"),
                    "v.json"),
      "v.json: provenance.validation.kernel_within_15: 1.5 is outside [0, 1]", lasnet::Error);
  CHECK_THROWS_WITH_AS(
      parse_profile(with(R"("dram_bandwidth_bytes_per_s": 7e11)",
                         R"("dram_bandwidth_bytes_per_s": 7e11, "dram_peak_bytes_per_s": 6e11)"),
                    "d.json"),
      "d.json: dram_peak_bytes_per_s: is below dram_bandwidth_bytes_per_s (the peak is the "
      "fastest stream measured)",
      lasnet::Error);
}

TEST_CASE("transfer_calibration: fractions carry over, time terms keep their SM cycles") {
  // Source: a 2 GHz GPU with tf32 tensor cores, fitted there. Target: the 1.5 GHz profile
  // above, which has fp16 units but none for tf32.
  auto source = parse_profile(with(R"("clock_hz": 1.5e9)", R"("clock_hz": 2e9)"), "s.json");
  source.launch_overhead_s = 2e-6;  // what the fit was made with: 4000 cycles at 2 GHz
  source.graph_launch_overhead_s = 1e-6;
  auto& c = source.calibration;
  c.compute_efficiency = {{Precision::fp32, 0.8}, {Precision::tf32, 0.5}, {Precision::fp16, 0.6}};
  c.dram_efficiency = 1.2;
  c.op_scale["conv.k1"] = 1.5;
  c.op_offset_s["conv.k1"] = 2e-6;  // 4000 cycles at 2 GHz
  c.gemm_round_s = 1e-6;            // 2000 cycles
  c.gemm_round = {{"igemm.fp32.64x64.w4", 2e-6}, {"igemm.tf32.256x128.w16", 1e-6}};
  c.fitted_on = {"GPU S", 2e9, "k1", {"conv.k1"}};
  source.provenance.validation = lasnet::predictor::ValidationSummary{};
  const auto target = parse_profile(valid, "t.json");

  const auto t = lasnet::predictor::transfer_calibration(source, target, "t-from-s");
  CHECK(t.name == "t-from-s");
  CHECK(t.clock_hz == 1.5e9);  // the target's own figures
  CHECK(t.dram_bandwidth_bytes_per_s == 7e11);
  CHECK(t.calibration.op_scale_of("conv.k1") == 1.5);  // a fraction: as it is
  // 4000 cycles at 1.5 GHz = 2.667 us; 2000 cycles = 1.333 us.
  CHECK(t.calibration.op_offset_s.at("conv.k1") == doctest::Approx(4000 / 1.5e9));
  CHECK(t.calibration.gemm_round_s == doctest::Approx(2000 / 1.5e9));
  CHECK(t.calibration.gemm_round.at("igemm.fp32.64x64.w4") == doctest::Approx(4000 / 1.5e9));
  // A tf32 tile's term goes with its efficiencies where no tensor core runs tf32.
  CHECK_FALSE(t.calibration.gemm_round.contains("igemm.tf32.256x128.w16"));
  CHECK(t.calibration.compute_efficiency_of(Precision::fp16) == 0.6);
  // No tf32 units on the target: its FP32 lanes run tf32, at the fp32 efficiency.
  CHECK(t.calibration.compute_efficiency_of(Precision::tf32) == 0.8);
  // No measured peak stream on the target: the copy figure is the ceiling.
  CHECK(t.calibration.dram_efficiency == 1.0);
  CHECK(t.provenance.source == "transferred");
  CHECK_FALSE(t.provenance.validation);  // the source's validation says nothing of the target
  CHECK(t.provenance.notes.find("GPU S") != std::string::npos);
  // Zero terms stay zero (the model's defaults in cycles apply on the target).
  CHECK(t.calibration.serial_load_s == 0);
  // The launch costs the fit was made with go with it, in cycles (the target's 8 us is another
  // profile's figure); a source without a graph figure leaves graphs priced as streams.
  CHECK(t.launch_overhead_s == doctest::Approx(4000 / 1.5e9));
  CHECK(t.graph_launch_overhead_s == doctest::Approx(2000 / 1.5e9));
  CHECK(t.provenance.notes.find("launch costs the calibration's") != std::string::npos);
  auto no_graph = source;
  no_graph.graph_launch_overhead_s = 0;
  CHECK(lasnet::predictor::transfer_calibration(no_graph, target, "g").graph_launch_overhead_s ==
        0);
  // Or the target's own, on request.
  const auto own = lasnet::predictor::transfer_calibration(
      source, target, "t-from-s", lasnet::predictor::TransferLaunch::target);
  CHECK(own.launch_overhead_s == 8e-6);
  CHECK(own.graph_launch_overhead_s == 0);
  CHECK(own.provenance.notes.find("launch costs the target's") != std::string::npos);
  // A transferred profile is a valid profile.
  CHECK_NOTHROW(parse_profile(lasnet::predictor::profile_to_json(t), "t.json"));
}
