// Predicts ResNet-101 on the V100 profile at density 0.5 and granularity 4-4-2-1 (the README's
// query) with the installed library, and prints the totals as `lasnet predict` does.
#include <cstdio>

#include "lasnet/predictor/network.hpp"
#include "lasnet/predictor/profile.hpp"
#include "lasnet/predictor/spec.hpp"

int main() {
  namespace lp = lasnet::predictor;
  lp::Spec spec = lp::load_spec(EXAMPLE_DIR "/resnet101.json");
  lp::set_granularity(spec, lp::parse_granularity("4-4-2-1", "granularity"), "granularity");
  lp::set_density(spec, 0.5, "density");
  const lp::Profile hw = lp::load_profile(PROFILE_DIR "/v100.json");
  lp::PredictionCache cache(hw);
  const auto dense =
      lp::predict_network(lp::build_network(spec, lp::Execution::dense), spec, hw, cache);
  const auto dynamic =
      lp::predict_network(lp::build_network(spec, lp::Execution::dynamic), spec, hw, cache);
  std::printf("dense   total: %.4f ms\ndynamic total: %.4f ms\n", 1e3 * dense.latency_s,
              1e3 * dynamic.latency_s);
}
