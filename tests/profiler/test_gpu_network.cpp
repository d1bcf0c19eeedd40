// GPU tests of `lasnet run`'s backend (Gpu::run_network): built with CUDA, registered with
// LASNET_GPU_TESTS. Without a device every case prints "SKIPPED: no CUDA device" and passes.
#include <doctest/doctest.h>

#include <string>

#include "lasnet/kernels/runner.hpp"
#include "lasnet/predictor/profile.hpp"
#include "lasnet/predictor/spec.hpp"
#include "lasnet/profiler/gpu.hpp"
#include "lasnet/profiler/network_run.hpp"

using namespace lasnet::profiler;
namespace predictor = lasnet::predictor;

namespace {

bool have_network_gpu() {
  if (lasnet::kernels::cuda_device_count() > 0) return true;
  MESSAGE("SKIPPED: no CUDA device");
  return false;
}

}  // namespace

TEST_CASE("GPU: ResNet-50 whole, on one and two streams, dynamic and dense") {
  if (!have_network_gpu()) return;
  auto spec = predictor::load_spec(std::string(LASNET_EXAMPLES_DIR) + "/resnet50.json");
  spec.batch = 2;
  const auto hw =
      predictor::load_profile(std::string(LASNET_PROFILES_DIR) + "/h100-calibrated.json");
  auto program = spec_program(spec, hw);
  // Two streams: every shortcut on stream 1, after the block before and before its conv3.
  auto two = program;
  two.label = "two";
  two.streams = 2;
  for (std::size_t i = 0; i < two.launches.size(); ++i) {
    auto& l = two.launches[i];
    if (l.step != "shortcut") continue;
    std::size_t before = i;  // the previous unit's last launch
    while (before > 0 && two.launches[before].unit == l.unit) --before;
    l.stream = 1;
    l.waits = {before};
    REQUIRE(two.launches[i + 1].step == "conv3");  // the block's last step reads the shortcut
    two.launches[i + 1].waits.push_back(i);
  }
  auto gpu = open_gpu(0);
  NetworkRunOptions options;
  options.runs = 5;
  options.warmup = 1;
  for (const auto& p : {program, two, spec_program(spec, hw, false)}) {
    CAPTURE(p.label);
    const auto m = gpu->run_network(p, options, {});
    CHECK(m.samples_s.size() == 5);
    CHECK(m.latency_s.median > 0);
    CHECK(m.eager_s > 0);
    REQUIRE(m.launches.size() == p.launches.size());
    for (const auto& t : m.launches) {
      CHECK(t.start_s >= 0);
      CHECK(t.end_s >= t.start_s);
    }
    // Dynamic blocks' masks were calibrated on their real inputs to about half the patches.
    for (std::size_t u = 0; u < p.units.size(); ++u) {
      if (p.dynamic && !p.units[u].layers) {
        CHECK(m.unit_density[u] == doctest::Approx(0.5).epsilon(0.2));
      }
    }
    const auto spans = unit_spans_s(p, m);
    CHECK(spans.front() > 0);
  }
}

TEST_CASE("GPU: MobileNetV2 whole: its separable first block and blocks without a residual") {
  if (!have_network_gpu()) return;
  auto spec = predictor::load_spec(std::string(LASNET_EXAMPLES_DIR) + "/mobilenetv2.json");
  spec.batch = 2;
  const auto hw =
      predictor::load_profile(std::string(LASNET_PROFILES_DIR) + "/h100-calibrated.json");
  auto gpu = open_gpu(0);
  NetworkRunOptions options;
  options.runs = 3;
  options.warmup = 1;
  for (const bool dynamic : {true, false}) {
    const auto p = spec_program(spec, hw, dynamic);
    CAPTURE(dynamic);
    REQUIRE(p.not_covered().empty());
    const auto m = gpu->run_network(p, options, {});
    CHECK(m.latency_s.median > 0);
    REQUIRE(m.launches.size() == p.launches.size());
    const auto spans = unit_spans_s(p, m);
    for (const double span : spans) CHECK(span > 0);
  }
}
