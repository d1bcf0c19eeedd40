// The scheduler's performance goal: the whole search for ResNet-101 (every S per stage x 3
// densities x every fusion x streams 1-4) finishes in under 1 s on one core. Each iteration
// starts cold (a fresh PredictionCache inside search()), so the figure includes every predictor
// call the search makes.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <string>

#include "lasnet/predictor/profile.hpp"
#include "lasnet/predictor/spec.hpp"
#include "lasnet/scheduler/search.hpp"

namespace {

namespace fs = std::filesystem;
using lasnet::predictor::load_profile;
using lasnet::predictor::load_spec;

const fs::path source_dir{LASNET_SOURCE_DIR};

// Three densities, each a full min-latency search over S x fusion x streams 1..4.
void resnet_search(benchmark::State& state, const char* spec_file, const char* profile_file) {
  const auto spec = load_spec(source_dir / "examples" / spec_file);
  const auto hw = load_profile(source_dir / "hardware_profiles" / profile_file);
  std::size_t evaluations = 0;
  std::size_t ops = 0;
  double plans = 0;
  for (auto _ : state) {
    for (const double density : {0.3, 0.5, 0.7}) {
      lasnet::scheduler::SearchRequest request;
      request.density = density;
      request.max_streams = 4;
      request.granularity_tolerance = 0.02;  // the CLI's default
      const auto plan = lasnet::scheduler::search(spec, hw, request);
      benchmark::DoNotOptimize(plan.latency_s);
      evaluations += plan.block_evaluations;
      ops += plan.predicted_ops;
      plans += plan.plans_in_space;
    }
  }
  const auto n = static_cast<double>(state.iterations());
  state.counters["block_evals"] = static_cast<double>(evaluations) / n;
  state.counters["ops_priced"] = static_cast<double>(ops) / n;
  state.counters["plans_in_space"] = plans / n;
}

// The budget objective scans 101 densities (step 0.01) with one search each.
void resnet_budget(benchmark::State& state, const char* spec_file, const char* profile_file) {
  const auto spec = load_spec(source_dir / "examples" / spec_file);
  const auto hw = load_profile(source_dir / "hardware_profiles" / profile_file);
  lasnet::scheduler::SearchRequest probe;
  probe.density = 0.5;
  const double budget_s = lasnet::scheduler::search(spec, hw, probe).latency_s;
  for (auto _ : state) {
    lasnet::scheduler::SearchRequest request;
    request.objective = lasnet::scheduler::Objective::max_density;
    request.budget_s = budget_s;
    request.max_streams = 4;
    request.granularity_tolerance = 0.02;
    const auto plan = lasnet::scheduler::search(spec, hw, request);
    benchmark::DoNotOptimize(plan.latency_s);
  }
}

}  // namespace

BENCHMARK_CAPTURE(resnet_search, resnet101_v100, "resnet101.json", "v100.json")
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(resnet_search, resnet101_tx2, "resnet101.json", "tx2.json")
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(resnet_search, resnet101_h100, "resnet101.json", "h100-sxm.json")
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(resnet_budget, resnet101_v100, "resnet101.json", "v100.json")
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
