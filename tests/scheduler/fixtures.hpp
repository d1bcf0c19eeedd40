#pragma once
// Shared fixtures of the scheduler tests: tiny specs written inline (small enough for brute
// force) and the datasheet profiles of the source tree.
#include <filesystem>
#include <string>

#include "lasnet/predictor/profile.hpp"
#include "lasnet/predictor/spec.hpp"

namespace lasnet::scheduler::test {

inline predictor::Profile profile(const std::string& name) {
  return predictor::load_profile(std::filesystem::path(LASNET_SOURCE_DIR) / "hardware_profiles" /
                                 (name + ".json"));
}

inline predictor::Spec example(const std::string& name) {
  return predictor::load_spec(std::filesystem::path(LASNET_SOURCE_DIR) / "examples" /
                              (name + ".json"));
}

// Two bottleneck stages: an 8x8 map (S in 1, 2, 4, 8) with two blocks, then a strided stage on
// a 4x4 map (S in 1, 2, 4) with one block whose shortcut is a conv (a second branch).
inline predictor::Spec tiny_spec(int batch = 2) {
  return predictor::parse_spec(R"({
    "name": "tiny",
    "batch": )" + std::to_string(batch) +
                                   R"(,
    "input": {"channels": 32, "height": 8, "width": 8},
    "stages": [
      {"name": "s1", "block": "bottleneck", "blocks": 2, "mid_channels": 16,
       "out_channels": 64, "stride": 1},
      {"name": "s2", "block": "bottleneck", "blocks": 1, "mid_channels": 32,
       "out_channels": 128, "stride": 2}
    ],
    "head": [{"type": "global_avg_pool"}, {"type": "fc", "out_channels": 10}]
  })",
                               "tiny.json");
}

}  // namespace lasnet::scheduler::test
