// GPU tests of the profiler's kernel timing: built with CUDA, registered with LASNET_GPU_TESTS.
// Without a device every case prints "SKIPPED: no CUDA device" and passes.
#include <doctest/doctest.h>

#include <fmt/format.h>
#include <algorithm>

#include <string>
#include <vector>

#include "lasnet/kernels/runner.hpp"
#include "lasnet/predictor/profile.hpp"
#include "lasnet/predictor/spec.hpp"
#include "lasnet/profiler/gpu.hpp"
#include "lasnet/profiler/plan.hpp"
#include "lasnet/profiler/validation.hpp"

using namespace lasnet::profiler;
namespace predictor = lasnet::predictor;

namespace {

bool have_gpu() {
  if (lasnet::kernels::cuda_device_count() > 0) return true;
  MESSAGE("SKIPPED: no CUDA device");
  return false;
}

}  // namespace

TEST_CASE("GPU: timed blocks have every step, positive medians, and steps add up to the block") {
  if (!have_gpu()) return;
  PlanOptions o;
  o.batches = {4};
  o.densities = {0.5};
  o.granularity = GranularityChoice::spec;
  const auto spec = predictor::load_spec(std::string(LASNET_EXAMPLES_DIR) + "/resnet50.json");
  auto plan = plan_spec(spec, o);
  // layer2's blocks: dense and dynamic, with and without the projection shortcut.
  std::erase_if(plan, [](const PlannedBlock& b) { return b.stage_name != "layer2"; });
  const auto jobs = distinct_jobs(plan);
  REQUIRE(jobs.size() == 4);
  auto gpu = open_gpu(0);
  SamplingPlan sampling;
  sampling.warmup_runs = 2;
  sampling.min_runs = 20;
  sampling.max_time_s = 0.2;
  const auto set = gpu->time_blocks(jobs, sampling, {});
  REQUIRE(set.blocks.size() == jobs.size());
  CHECK(set.device.name == gpu->info().name);
  for (const auto& b : set.blocks) {
    CAPTURE(b.key);
    REQUIRE_MESSAGE(b.supported, b.reason);
    CHECK(b.latency_s.runs >= 20);
    CHECK(b.latency_s.median > 0);
    double steps = 0;
    for (const auto& s : b.steps) {
      CHECK(s.latency_s.median > 0);
      CHECK(s.latency_s.p10 <= s.latency_s.median);
      steps += s.latency_s.median;
    }
    // Events between steps cost a little; the block timed without them is no slower than the
    // steps' sum, and not much faster.
    CHECK(b.latency_s.median <= 1.15 * steps);
    CHECK(b.latency_s.median >= 0.7 * steps);
    const bool dynamic = b.key.find(" S") != std::string::npos;
    CHECK((b.step("masker") != nullptr) == dynamic);
    if (dynamic) CHECK(b.active_patches > 0);
    // Identity-shortcut dynamic blocks run with the in-place residual: no inactive-pixel pass.
    const bool identity = b.key.find(" in-place") != std::string::npos;
    if (dynamic) CHECK((b.step("add") == nullptr) == identity);
  }
  CHECK(std::count_if(set.blocks.begin(), set.blocks.end(), [](const auto& b) {
          return b.key.find(" in-place") != std::string::npos;
        }) == 1);
  // The timings feed a report end to end.
  const auto hw = predictor::load_profile(std::string(LASNET_PROFILES_DIR) + "/h100.json");
  const auto report = compare(plan, set, hw);
  CHECK(report.metrics.at(Level::op).count > 0);
  CHECK_FALSE(render_svg(report).empty());
}
