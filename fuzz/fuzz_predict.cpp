// Parser + model: whatever spec the parser accepts, the predictor must price without crashing,
// hanging or producing a non-finite or negative latency or FLOP count. The input is a spec and a
// profile separated by a line "----" (no separator: the spec is paired with a fixed H100 profile),
// so the fuzzer mutates both.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lasnet/common/error.hpp"
#include "lasnet/predictor/network.hpp"
#include "lasnet/predictor/profile.hpp"
#include "lasnet/predictor/spec.hpp"

namespace {

// A copy of hardware_profiles/h100.json's datasheet figures, so the target needs no files.
constexpr std::string_view default_profile = R"({
  "schema_version": 1, "name": "h100", "sm_count": 132, "fp32_lanes_per_sm": 128,
  "clock_hz": 1.755e9, "dram_bandwidth_bytes_per_s": 3.0e12, "l2_bandwidth_bytes_per_s": 7.0e12,
  "sm_bandwidth_bytes_per_s": 1.0e11, "l2_size_bytes": 52428800,
  "shared_memory_per_sm_bytes": 233472, "launch_overhead_s": 3e-6,
  "peak_flops_per_s": {"fp32": 5.9e13, "tf32": 4.9e14, "fp16": 9.9e14}
})";

void check(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lasnet::predictor;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto cut = input.find("\n----\n");
  const auto spec_text = input.substr(0, cut);
  const auto profile_text = cut == std::string_view::npos ? default_profile : input.substr(cut + 6);
  Spec spec;
  Profile hw;
  try {
    spec = parse_spec(spec_text, "fuzz-spec.json");
    hw = parse_profile(profile_text, "fuzz-profile.json");
  } catch (const lasnet::Error&) {
    return 0;
  }
  for (const auto execution : {Execution::dense, Execution::dynamic}) {
    try {
      PredictionCache cache(hw);
      const auto blocks = build_network(spec, execution);
      const auto prediction = predict_network(blocks, spec, hw, cache);
      check(prediction.latency_s);
      check(prediction.flops);  // a negative count means an integer overflowed on the way
      for (const auto& block : prediction.blocks) check(block.latency_s);
    } catch (const lasnet::Error&) {
      // A spec the parser accepts may still be impossible to run (a map shrunk to nothing):
      // a clear error is fine, a crash is not.
    }
  }
  return 0;
}
