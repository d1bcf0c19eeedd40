// Calibration and validation on synthetic measurements: timings made by the predictor itself
// under a known "true" profile, so the fit must recover it and the report must score it.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "lasnet/common/error.hpp"
#include "lasnet/kernels/block.hpp"
#include "lasnet/kernels/conv_plan.hpp"
#include "lasnet/predictor/profile.hpp"
#include "lasnet/predictor/spec.hpp"
#include "lasnet/profiler/block_timing.hpp"
#include "lasnet/profiler/calibration.hpp"
#include "lasnet/profiler/plan.hpp"
#include "lasnet/profiler/validation.hpp"

using namespace lasnet::profiler;
namespace predictor = lasnet::predictor;

namespace {

predictor::Spec example(const std::string& name) {
  return predictor::load_spec(std::string(LASNET_EXAMPLES_DIR) + "/" + name + ".json");
}

predictor::Profile h100() {
  return predictor::load_profile(std::string(LASNET_PROFILES_DIR) + "/h100.json");
}

Summary around(double t) {
  return summarize(std::vector<double>{0.99 * t, t, 1.01 * t, t});
}

// Each job's modelled steps timed as `truth` predicts them times `factor`, under the kernel
// names plan_conv gives (so the GEMM tiles are priced as the real runs are); dynamic blocks
// also get a step the predictor has no op for ("extra"). Each step's timing carries
// `event_s` more than the block's, as the events between the steps of a real run add.
MeasurementSet synthetic(const std::vector<PlannedBlock>& plan, const predictor::Profile& truth,
                         double factor, double unmodelled_s = 0, double event_s = 0) {
  MeasurementSet set;
  set.device.name = "synthetic";
  set.device.pci_bus_id = "0000:00:00.0";
  set.device.compute_capability_major = 9;
  set.device.sm_count = 132;
  set.device.l2_size_bytes = 50 << 20;
  set.device.max_sm_clock_hz = 1.98e9;
  set.device.driver_version = "test";
  set.device.cuda_runtime_version = "test";
  set.date = "2026-01-01T00:00:00Z";
  set.l2_flush = "none";
  for (const auto& b : plan) {
    if (!b.runnable || set.find(b.job.key) != nullptr) continue;
    BlockTiming t;
    t.key = b.job.key;
    double total = 0;
    // The kernels run the shortcut first (the order predict_steps assumes without a timing).
    auto steps = step_ops(b, nullptr, truth);
    std::stable_partition(steps.begin(), steps.end(),
                          [](const StepOps& s) { return s.step == "shortcut"; });
    predictor::PredictionCache cache(truth);
    for (const auto& s : steps) {
      double predicted = 0;
      for (const auto& [op, context] : s.ops) predicted += cache.predict(op, context).latency_s;
      const double v = factor * predicted;
      t.steps.push_back(
          StepTiming{s.step, s.kernel.empty() ? "fake" : s.kernel, around(v + event_s), false});
      total += v;
    }
    if (b.graph.dynamic && unmodelled_s > 0) {
      t.steps.push_back(StepTiming{"extra", "extra", around(unmodelled_s), false});
      total += unmodelled_s;
    }
    t.latency_s = around(total);
    set.blocks.push_back(std::move(t));
  }
  return set;
}

std::vector<PlannedBlock> small_plan() {
  PlanOptions o;
  o.batches = {1, 128};
  o.densities = {0.3, 0.8};
  return plan_spec(example("resnet50"), o);
}

// The GEMM kernel variants a plan's steps run at, and how many ops run at each.
std::map<std::string, std::size_t> variant_ops(const std::vector<PlannedBlock>& plan,
                                               const predictor::Profile& hw) {
  std::map<std::string, std::size_t> seen;
  for (const auto& b : plan) {
    if (!b.runnable) continue;
    for (const auto& s : step_ops(b, nullptr, hw)) {
      for (const auto& [op, context] : s.ops) {
        if (const auto v = predictor::gemm_variant(op, context); !v.empty()) ++seen[v];
      }
    }
  }
  return seen;
}

// The synthetic recoveries of the GEMM variants' terms: no class scales, no round costs, no
// ridge, so that only the variants' efficiencies and memory factors explain the timings.
CalibrationOptions gemm_variant_options() {
  CalibrationOptions options;
  options.fit_op_scale = false;
  options.fit_gemm_round = false;
  options.ridge = 0;
  options.fit.max_iterations = 400;
  return options;
}

}  // namespace

TEST_CASE("calibrate: recovers a profile the measurements were made with") {
  const auto plan = small_plan();
  const predictor::Profile base = h100();
  predictor::Profile truth = base;
  truth.calibration.dram_efficiency = 0.7;
  truth.calibration.compute_efficiency[predictor::Precision::fp32] = 0.55;
  truth.launch_overhead_s = 3e-6;
  truth.calibration.latency_warps = 3;
  truth.calibration.serial_load_s = 2e-8;
  const auto measured = synthetic(plan, truth, 1.0);
  CalibrationOptions options;
  options.fit_op_scale = false;
  options.fit_launch = true;
  options.ridge = 0;
  const auto r = calibrate(plan, measured, base, options);
  CHECK(r.samples > 50);
  CHECK(r.rms_log_before > 0.05);
  CHECK(r.rms_log_after < 0.2 * r.rms_log_before);
  CHECK(r.after.mape < r.before.mape);
  CHECK(r.profile.provenance.source == "calibrated");
  // What is written reads back.
  const auto again = predictor::parse_profile(predictor::profile_to_json(r.profile), "test");
  CHECK(again.calibration.dram_efficiency ==
        doctest::Approx(r.profile.calibration.dram_efficiency));
  bool saw_launch = false;
  for (const auto& p : r.parameters) {
    if (p.name == "launch_overhead_s") {
      saw_launch = true;
      CHECK(p.before == doctest::Approx(base.launch_overhead_s));
    }
  }
  CHECK(saw_launch);
  CHECK(calibration_table(r).find("RMS log(pred/meas)") != std::string::npos);
  const auto j = nlohmann::json::parse(calibration_json(r));
  CHECK(j["schema"] == "lasnet.calibration");
  CHECK(j["version"] == 1);
  CHECK(j["samples"] == r.samples);
  CHECK(j["after"]["rms_log"].get<double>() == doctest::Approx(r.rms_log_after));
}

// Known GPU-wide and class terms for the synthetic recoveries below, and a fit of them alone
// (no per-variant terms, no fixed offsets, no ridge).
namespace {
predictor::Profile known_truth(const predictor::Profile& base, double l2_efficiency) {
  predictor::Profile truth = base;
  truth.calibration.dram_efficiency = 0.7;
  truth.calibration.l2_efficiency = l2_efficiency;
  truth.calibration.compute_efficiency[predictor::Precision::fp32] = 0.55;
  truth.calibration.latency_warps = 3;
  truth.calibration.serial_load_s = 2e-8;
  truth.calibration.gemm_round_s = 1.5e-6;
  truth.calibration.op_scale["gathered_conv.k3.igemm"] = 1.4;
  return truth;
}
CalibrationOptions known_truth_options() {
  CalibrationOptions options;
  options.fit_op_offset = false;
  options.fit_gemm_variants = false;  // the truth has none; a later case recovers those
  options.ridge = 0;
  options.fit.max_iterations = 400;
  return options;
}
}  // namespace

TEST_CASE("calibrate: the fit recovers the parameter values, not only a smaller residual") {
  // Timings made from known parameters, with no noise: a fit that explains them with other
  // values has traded terms against each other, and its profile would not travel. Our kernels'
  // L2 efficiency as the shipped fits find it (0.46-0.49): at 0.8 only a few of the plan's ops
  // are L2-bound (the library's GEMMs stream at their own rate), too few to pull it off its
  // starting bound of 1 (the next case).
  const auto plan = small_plan();
  const predictor::Profile base = h100();
  const auto r =
      calibrate(plan, synthetic(plan, known_truth(base, 0.5), 1.0), base, known_truth_options());
  CHECK(r.after.max_abs_error < 0.01);
  const auto& c = r.profile.calibration;
  CHECK(c.dram_efficiency == doctest::Approx(0.7).epsilon(0.05));
  CHECK(c.l2_efficiency == doctest::Approx(0.5).epsilon(0.05));
  CHECK(c.compute_efficiency_of(predictor::Precision::fp32) == doctest::Approx(0.55).epsilon(0.05));
  CHECK(c.latency_warps == doctest::Approx(3).epsilon(0.10));
  CHECK(c.gemm_round_s == doctest::Approx(1.5e-6).epsilon(0.10));
  CHECK(c.op_scale_of("gathered_conv.k3.igemm") == doctest::Approx(1.4).epsilon(0.05));
  // Classes the truth left at 1 come back near 1.
  CHECK(c.op_scale_of("conv.k1.igemm") == doctest::Approx(1.0).epsilon(0.05));
  // The fit records what it saw.
  REQUIRE(c.fitted_on);
  CHECK(c.fitted_on->device == "synthetic");
  CHECK(c.fitted_on->clock_hz == base.clock_hz);
  CHECK(std::find(c.fitted_on->classes.begin(), c.fitted_on->classes.end(),
                  "gathered_conv.k3.igemm") != c.fitted_on->classes.end());
}

// The full fit starts from the companion fit's optimum (no per-round cost) and also from the
// profile's own values, and keeps the lower cost. With an L2 efficiency that few ops see, the
// companion's optimum lies in another basin (l2_efficiency at its bound, the compute efficiency
// 0.77 and every class scale 1.4 making up for it: a 19% residual) that the full fit, which
// only takes steps that lower the cost, cannot leave.
TEST_CASE("calibrate: the full fit does not stay in the companion fit's basin") {
  const auto plan = small_plan();
  const predictor::Profile base = h100();
  const auto r =
      calibrate(plan, synthetic(plan, known_truth(base, 0.8), 1.0), base, known_truth_options());
  CHECK(r.after.max_abs_error < 0.05);
  const auto& c = r.profile.calibration;
  CHECK(c.compute_efficiency_of(predictor::Precision::fp32) == doctest::Approx(0.55).epsilon(0.05));
  CHECK(c.op_scale_of("gathered_conv.k3.igemm") == doctest::Approx(1.4).epsilon(0.05));
  CHECK(c.op_scale_of("conv.k1.igemm") == doctest::Approx(1.0).epsilon(0.05));
}

TEST_CASE("calibrate: the fit recovers a GEMM variant's compute and memory efficiencies") {
  // Two kernel variants of the plan made slower than the precision's figures say, one in its
  // math, one in its streaming: the fit must put each slowdown on its own variant's term and
  // leave the others at the precision's efficiency and the full memory rate.
  const auto plan = small_plan();
  const predictor::Profile base = h100();
  const auto seen = variant_ops(plan, base);
  std::vector<std::pair<std::size_t, std::string>> by_count;
  for (const auto& [v, n] : seen) {
    if (v.starts_with("igemm.")) by_count.emplace_back(n, v);
  }
  std::sort(by_count.rbegin(), by_count.rend());
  REQUIRE(by_count.size() >= 3);
  const std::string slow_math = by_count[0].second, slow_stream = by_count[1].second,
                    untouched = by_count[2].second;
  predictor::Profile truth = base;
  // Every variant's entries are set: one left out would run at its family's (the others').
  truth.calibration.compute_efficiency[predictor::Precision::fp32] = 0.5;
  truth.calibration.gemm_efficiency[slow_math] = 0.2;
  truth.calibration.gemm_efficiency[slow_stream] = 0.5;
  truth.calibration.gemm_efficiency[untouched] = 0.5;
  truth.calibration.gemm_memory_efficiency[slow_math] = 1.0;
  truth.calibration.gemm_memory_efficiency[slow_stream] = 0.5;
  truth.calibration.gemm_memory_efficiency[untouched] = 1.0;
  // No prior on the memory factors: the truth's is 0.5, and a prior at 1 would leave a residual.
  CalibrationOptions options = gemm_variant_options();
  options.memory_prior = 0;
  const auto r = calibrate(plan, synthetic(plan, truth, 1.0), base, options);
  CHECK(r.after.max_abs_error < 0.02);
  const auto& c = r.profile.calibration;
  CHECK(c.compute_efficiency_of(predictor::Precision::fp32, slow_math) ==
        doctest::Approx(0.2).epsilon(0.05));
  CHECK(c.compute_efficiency_of(predictor::Precision::fp32, untouched) ==
        doctest::Approx(0.5).epsilon(0.05));
  REQUIRE(c.gemm_memory_efficiency.contains(slow_stream));
  CHECK(c.gemm_memory_efficiency.at(slow_stream) == doctest::Approx(0.5).epsilon(0.05));
  // What is written reads back.
  const auto again = predictor::parse_profile(predictor::profile_to_json(r.profile), "test");
  CHECK(again.calibration.gemm_efficiency == c.gemm_efficiency);
  CHECK(again.calibration.gemm_memory_efficiency == c.gemm_memory_efficiency);
}

TEST_CASE("calibrate: a memory factor the timings cannot see is held at the GPU-wide rates") {
  // The plan's most common tile computes slowly (30% of the peak) and streams at the GPU's
  // rates. Started from a memory factor of 0.2 (an older fit's, say), the timings pull the factor
  // up only until the tile's math is what binds it: past that every factor prices the same
  // timings, and without a prior the fit stops at the kink, a tile "bound" by both (the split
  // that does not travel to a GPU of other bandwidths). The prior takes it on to 1.
  const auto plan = small_plan();
  const predictor::Profile base = h100();
  const auto seen = variant_ops(plan, base);
  const std::string tile =
      std::max_element(seen.begin(), seen.end(), [](const auto& a, const auto& b) {
        return a.second < b.second;
      })->first;
  predictor::Profile truth = base;
  truth.calibration.gemm_efficiency[tile] = 0.3;
  predictor::Profile start = base;
  start.calibration.gemm_memory_efficiency[tile] = 0.2;
  const CalibrationOptions options = gemm_variant_options();
  const auto measured = synthetic(plan, truth, 1.0);
  auto without = options;
  without.memory_prior = 0;
  const auto stuck = calibrate(plan, measured, start, without);
  const auto held = calibrate(plan, measured, start, options);
  CAPTURE(tile);
  // Both fit the timings; only one says how the tile streams.
  CHECK(stuck.after.max_abs_error < 0.02);
  CHECK(held.after.max_abs_error < 0.02);
  CHECK(stuck.profile.calibration.gemm_memory_efficiency.at(tile) < 0.9);
  CHECK(held.profile.calibration.gemm_memory_efficiency.at(tile) ==
        doctest::Approx(1.0).epsilon(0.05));
  CHECK(held.profile.calibration.compute_efficiency_of(predictor::Precision::fp32, tile) ==
        doctest::Approx(0.3).epsilon(0.05));
}

TEST_CASE("calibrate: DRAM efficiency stays under the fastest measured stream") {
  const auto plan = small_plan();
  predictor::Profile base = h100();
  base.dram_peak_bytes_per_s = 1.05 * base.dram_bandwidth_bytes_per_s;
  // Timings 1.5x faster in memory than the copy figure allows: the fit must stop at the peak.
  predictor::Profile truth = base;
  truth.calibration.dram_efficiency = 1.5;
  const auto r = calibrate(plan, synthetic(plan, truth, 1.0), base, CalibrationOptions{});
  CHECK(r.profile.calibration.dram_efficiency <= 1.05 + 1e-9);
}

TEST_CASE("calibrate: a uniform 20% slowdown is absorbed by the per-kind scales") {
  const auto plan = small_plan();
  const predictor::Profile base = h100();
  const auto measured = synthetic(plan, base, 1.2);
  CalibrationOptions options;
  options.ridge = 0;
  const auto r = calibrate(plan, measured, base, options);
  CHECK(r.before.mean_signed_error == doctest::Approx(1 / 1.2 - 1).epsilon(1e-3));
  CHECK(r.after.mape < 0.02);
}

TEST_CASE("calibrate: per-class scale and fixed cost, with kind fallbacks for unseen classes") {
  const auto plan = small_plan();
  const predictor::Profile base = h100();
  predictor::Profile truth = base;
  truth.calibration.op_scale["gathered_conv.k3"] = 1.5;
  truth.calibration.op_offset_s["masker"] = 20e-6;
  const auto measured = synthetic(plan, truth, 1.0);
  CalibrationOptions options;
  options.ridge = 0;
  const auto r = calibrate(plan, measured, base, options);
  CHECK(r.rms_log_after < 0.02);
  CHECK(r.profile.calibration.op_scale_of("gathered_conv.k3", "gathered_conv") ==
        doctest::Approx(1.5).epsilon(0.03));
  CHECK(r.profile.calibration.op_offset_of("masker", "masker") ==
        doctest::Approx(20e-6).epsilon(0.05));
  // A grouped 3x3 gathered conv (absent from ResNet-50) takes the kind-level scale.
  CHECK(r.profile.calibration.op_scale_of("gathered_conv.k3.grouped", "gathered_conv") ==
        doctest::Approx(r.profile.calibration.op_scale_of("gathered_conv.k3", "gathered_conv")));
  CHECK_FALSE(r.fallbacks.empty());
  // Offsets survive the profile's JSON.
  const auto again = predictor::parse_profile(predictor::profile_to_json(r.profile), "test");
  CHECK(again.calibration.op_offset_s == r.profile.calibration.op_offset_s);
}

TEST_CASE("calibrate: the union form's conv1 and dilate are classes of their own, fitted") {
  // ResNet-50 at batch 128 and batch 1, d = 0.5, the spec's S, the gather form and the union
  // form: the union conv1 runs 1.4x what the base profile says, the dilation 5 us more.
  PlanOptions o;
  o.batches = {1, 128};
  o.densities = {0.5};
  o.granularity = GranularityChoice::spec;
  o.fusions = parse_fusion_forms("gather,scatter/union,gather,scatter", "test");
  const auto plan = plan_spec(example("resnet50"), o);
  const predictor::Profile base = h100();
  predictor::Profile truth = base;
  truth.calibration.op_scale["union_conv.k1.igemm"] = 1.4;
  truth.calibration.op_offset_s["dilate"] = 5e-6;
  // The steps are priced under those classes.
  const auto union_block = std::find_if(plan.begin(), plan.end(), [](const PlannedBlock& b) {
    return b.runnable && b.graph.dynamic && b.job.config.dynamic->fusion.union_conv1;
  });
  REQUIRE(union_block != plan.end());
  const auto steps = step_ops(*union_block, nullptr, base);
  const auto step = [&](std::string_view name) {
    const auto it =
        std::find_if(steps.begin(), steps.end(), [&](const StepOps& s) { return s.step == name; });
    REQUIRE(it != steps.end());
    return *it;
  };
  CHECK(step("conv1").kinds == "union_conv.k1.igemm");
  CHECK(step("conv1").kernel.starts_with("igemm_fp32_"));
  CHECK(step("dilate").kinds == "dilate");
  CHECK(step("dilate").kernel.empty());

  const auto measured = synthetic(plan, truth, 1.0);
  CalibrationOptions options;
  options.ridge = 0;
  const auto r = calibrate(plan, measured, base, options);
  // (The truth has no cost per round of tiles; each variant's term stops at 50 cycles, so the
  // fit cannot reach it exactly.)
  CHECK(r.rms_log_after < 0.03);
  // The union conv1 steps: 1.4x off before the fit (the base profile's kind fallback), within
  // 3% of the truth after it (the class scale shares the work with the GEMM terms the fit also
  // moves, so the scale itself need not come out at 1.4).
  predictor::PredictionCache fitted(r.profile), real(truth), before(base);
  std::size_t union_steps = 0;
  for (const auto& b : plan) {
    if (!b.runnable || !b.job.config.dynamic || !b.job.config.dynamic->fusion.union_conv1) continue;
    for (const auto& s : step_ops(b, nullptr, base)) {
      if (s.step != "conv1") continue;
      for (const auto& [op, context] : s.ops) {
        ++union_steps;
        const double t = real.predict(op, context).latency_s;
        CHECK(before.predict(op, context).latency_s / t == doctest::Approx(1 / 1.4).epsilon(0.01));
        CHECK(fitted.predict(op, context).latency_s / t == doctest::Approx(1.0).epsilon(0.03));
      }
    }
  }
  CHECK(union_steps == 32);  // 16 blocks at 2 batches
  CHECK(r.profile.calibration.op_offset_of("dilate", "dilate") ==
        doctest::Approx(5e-6).epsilon(0.1));
  REQUIRE(r.profile.calibration.fitted_on.has_value());
  const auto& seen = r.profile.calibration.fitted_on->classes;
  CHECK(std::find(seen.begin(), seen.end(), "union_conv.k1.igemm") != seen.end());
  CHECK(std::find(seen.begin(), seen.end(), "dilate") != seen.end());
  CHECK(calibration_warnings(r.profile, {"union_conv.k1.igemm", "dilate"}, "").empty());

  // A profile fitted on the gather form alone never saw them (the fit's record without the two
  // classes): pricing the union form at the kernels' schedules warns, naming both.
  predictor::Profile plain = r.profile;
  auto& classes_seen = plain.calibration.fitted_on->classes;
  std::erase(classes_seen, "union_conv.k1.igemm");
  std::erase(classes_seen, "dilate");
  auto spec = example("resnet50");
  spec.batch = 128;
  predictor::set_density(spec, 0.5, "test");
  spec.dynamic.fusion.assign(spec.stages.size(), {});
  for (std::size_t s = 0; s < spec.stages.size(); ++s) {
    spec.dynamic.fusion[s].assign(static_cast<std::size_t>(spec.stages[s].blocks),
                                  predictor::Fusion{false, true, true, true});
  }
  const auto blocks = predictor::build_network(spec, predictor::Execution::dynamic);
  const auto classes = priced_classes(blocks, project_kernel_schedule(132));
  CHECK(classes.contains("union_conv.k1.igemm"));
  CHECK(classes.contains("dilate"));
  const auto warnings = calibration_warnings(plain, classes, "");
  REQUIRE(warnings.size() == 1);
  CHECK(warnings.front().find("dilate") != std::string::npos);
  CHECK(warnings.front().find("union_conv.k1.igemm") != std::string::npos);
}

TEST_CASE("step timings: the events' overhead is measured and taken off before fit and score") {
  const auto plan = small_plan();
  const predictor::Profile hw = h100();
  const auto measured = synthetic(plan, hw, 1.0, 0, 1e-6);
  CHECK(step_event_overhead_s(measured) == doctest::Approx(1e-6));
  CHECK(step_event_overhead_s(synthetic(plan, hw, 1.0)) == doctest::Approx(0).epsilon(1e-12));
  // The profile that made the timings fits them as they are: nothing to calibrate.
  CalibrationOptions options;
  options.ridge = 0;
  const auto r = calibrate(plan, measured, hw, options);
  CHECK(r.before.mape < 1e-6);
  const auto v = compare(plan, measured, hw);
  CHECK(v.step_event_overhead_s == doctest::Approx(1e-6));
  CHECK(v.metrics.at(Level::op).mape < 1e-6);
  CHECK(v.metrics.at(Level::block).mape < 1e-6);
  CHECK(render_table(v).find("step timings less 1.00 us each") != std::string::npos);
  // A timing is never cut below a quarter of itself.
  StepTiming tiny{"conv1", "k", around(1e-6), false};
  CHECK(step_kernel_s(tiny, 2e-6) == doctest::Approx(0.25e-6));
}

TEST_CASE("calibrate: the direct kernels' terms are fitted where the training set has them") {
  PlanOptions o;
  o.batches = {1, 128};
  o.densities = {0.5};
  const auto plan = plan_spec(example("mobilenetv2"), o);
  const predictor::Profile base = h100();
  predictor::Profile truth = base;
  truth.calibration.load_latency_s = 1e-6;
  truth.calibration.l1_wavefront_s = 2.0 / base.clock_hz;
  CalibrationOptions options;
  options.fit_op_scale = false;
  options.ridge = 0;
  const auto r = calibrate(plan, synthetic(plan, truth, 1.0), base, options);
  CHECK(r.rms_log_after < 0.2 * r.rms_log_before);
  CHECK(r.profile.calibration.load_latency_s == doctest::Approx(1e-6).epsilon(0.05));
  const auto names = [](const CalibrationResult& c) {
    std::vector<std::string> n;
    for (const auto& p : c.parameters) n.push_back(p.name);
    return n;
  };
  const auto fitted = names(r);
  CHECK(std::find(fitted.begin(), fitted.end(), "l1_wavefront_s") != fitted.end());
  // ResNet-50 has no direct kernel: the model's guesses stand.
  const auto resnet = calibrate(small_plan(), synthetic(small_plan(), base, 1.0), base, options);
  const auto none = names(resnet);
  CHECK(std::find(none.begin(), none.end(), "load_latency_s") == none.end());
  CHECK(resnet.profile.calibration.load_latency_s == 0);
  // Both survive the profile's JSON.
  const auto again = predictor::parse_profile(predictor::profile_to_json(r.profile), "test");
  CHECK(again.calibration.load_latency_s == r.profile.calibration.load_latency_s);
  CHECK(again.calibration.l1_wavefront_s == r.profile.calibration.l1_wavefront_s);
}

TEST_CASE("calibrate: the GEMM tiles' cost per round, and fallbacks from the fit without it") {
  const auto plan = small_plan();
  const predictor::Profile base = h100();
  predictor::Profile truth = base;
  truth.calibration.gemm_round_s = 3e-6;
  const auto measured = synthetic(plan, truth, 1.0);
  CalibrationOptions options;
  options.ridge = 0;
  const auto r = calibrate(plan, measured, base, options);
  CHECK(r.rms_log_after < 0.02);
  CHECK(r.profile.calibration.gemm_round_s == doctest::Approx(3e-6).epsilon(0.1));
  // Without the term the scales must carry the fixed phases, and nothing else is fitted.
  auto no_round = options;
  no_round.fit_gemm_round = false;
  const auto off = calibrate(plan, measured, base, no_round);
  CHECK(off.profile.calibration.gemm_round_s == 0);
  CHECK(off.rms_log_after > 2 * r.rms_log_after);
  // The implicit GEMM's fitted scales stay near the truth's 1; the kind-level fallback (for a
  // grouped gathered conv, absent from ResNet-50) is the companion fit's, i.e. that of the fit
  // without the term (where the scales and offsets carry the fixed phases as they can), not
  // the full fit's own class scale.
  const auto& cal = r.profile.calibration;
  CHECK(cal.op_scale_of("gathered_conv.k3.igemm") == doctest::Approx(1.0).epsilon(0.1));
  CHECK(cal.op_scale_of("gathered_conv") ==
        doctest::Approx(off.profile.calibration.op_scale_of("gathered_conv")).epsilon(1e-6));
  // ResNet-50's only gathered conv class is the 3x3 implicit GEMM: the fallback is its scale
  // in the fit without the term.
  CHECK(
      cal.op_scale_of("gathered_conv") ==
      doctest::Approx(off.profile.calibration.op_scale_of("gathered_conv.k3.igemm")).epsilon(1e-6));
  // Written and read back.
  const auto again = predictor::parse_profile(predictor::profile_to_json(r.profile), "test");
  CHECK(again.calibration.gemm_round_s == r.profile.calibration.gemm_round_s);
}

TEST_CASE("calibrate: each GEMM variant's cost per round, recovered apart") {
  // Two tiles of ResNet-50's plan with fixed phases 4x apart: one shared term cannot say both,
  // a term per variant must find each.
  const auto plan = small_plan();
  const predictor::Profile base = h100();
  const auto seen = variant_ops(plan, base);
  predictor::Profile truth = base;
  truth.calibration.gemm_round_s = 1e-6;
  for (const auto& [v, n] : seen) truth.calibration.gemm_round[v] = 1e-6;
  const auto most = std::max_element(seen.begin(), seen.end(), [](const auto& a, const auto& b) {
                      return a.second < b.second;
                    })->first;
  truth.calibration.gemm_round[most] = 4e-6;
  CalibrationOptions options;
  options.ridge = 0;
  options.fit_op_scale = false;
  options.fit.max_iterations = 400;
  const auto r = calibrate(plan, synthetic(plan, truth, 1.0), base, options);
  CHECK(r.rms_log_after < 0.02);
  const auto& c = r.profile.calibration;
  CHECK(c.gemm_round_of(most) == doctest::Approx(4e-6).epsilon(0.1));
  for (const auto& [v, n] : seen) {
    if (v == most || n < options.min_samples_per_kind) continue;
    CAPTURE(v);
    CHECK(c.gemm_round_of(v) == doctest::Approx(1e-6).epsilon(0.15));
  }
  // Every tile had its own: the GPU-wide figure is their sample-weighted geometric mean.
  CHECK(c.gemm_round_s > 1e-6);
  CHECK(c.gemm_round_s < 4e-6);
}

TEST_CASE("calibrate: --split-compute fits a class's compute time apart from its memory time") {
  const auto plan = small_plan();
  const predictor::Profile base = h100();
  predictor::Profile truth = base;
  // (Not gather_conv.k1.igemm, as before the tiles' residency: most of its steps now run one
  // fp32 128x128 tile per SM, and its compute scale trades against the per-round cost and the
  // latency hiding of those rounds; the fit took 1.32-1.36 for its 1.5.)
  truth.calibration.op_compute_scale["conv_scatter_add.k1.igemm"] = 1.5;
  // A per-round cost the fit can reach (its lower bound is 50 cycles, not 0): with the fp32
  // 128-row tiles one per SM, the rounds are many enough that the bound alone misfits.
  truth.calibration.gemm_round_s = 1.5e-6;
  const auto measured = synthetic(plan, truth, 1.0);
  CalibrationOptions options;
  options.ridge = 0;
  // Without it, only the inactive-pixel pass ("scatter") has a compute scale of its own.
  for (const auto& [cls, scale] :
       calibrate(plan, measured, base, options).profile.calibration.op_compute_scale) {
    CHECK(cls == "scatter");
  }
  options.fit_compute_scale = true;
  const auto r = calibrate(plan, measured, base, options);
  CHECK(r.rms_log_after < 0.02);
  CHECK(r.profile.calibration.op_compute_scale.at("conv_scatter_add.k1.igemm") ==
        doctest::Approx(1.5).epsilon(0.05));
  const auto again = predictor::parse_profile(predictor::profile_to_json(r.profile), "test");
  CHECK(again.calibration.op_compute_scale == r.profile.calibration.op_compute_scale);
}

TEST_CASE("project_kernel_schedule: the kernels' tiles where ours run, the search elsewhere") {
  const auto schedule = project_kernel_schedule(132);
  const auto spec = example("regnety_400mf");
  const auto dense = predictor::build_network(spec, predictor::Execution::dense);
  const auto dynamic = predictor::build_network(spec, predictor::Execution::dynamic);
  const auto node = [](const predictor::BlockGraph& b, const std::string& name) {
    const auto it = std::find_if(b.nodes.begin(), b.nodes.end(),
                                 [&](const predictor::OpNode& n) { return n.name == name; });
    REQUIRE(it != b.nodes.end());
    return *it;
  };
  // Stem and head: the layer runner's kernels. RegNetY's stem conv (3 -> 32, 3x3, stride 2)
  // reads an RGB image padded to 4 channels through an im2col buffer into cuBLASLt; the head's
  // global pool is one thread per output, its fc cuBLASLt.
  const auto stem = schedule(dense.front(), dense.front().nodes.front());
  REQUIRE(stem.has_value());
  CHECK(stem->library);
  CHECK(stem->im2col);
  CHECK(stem->staged_channels == 4);
  const auto& head = dense.back();
  REQUIRE(head.name == "head");
  const auto pool = schedule(head, head.nodes.front());
  REQUIRE(pool.has_value());
  CHECK(pool->thread_per_output);
  const auto fc = schedule(head, head.nodes.back());
  REQUIRE(fc.has_value());
  CHECK(fc->library);
  CHECK_FALSE(fc->im2col);
  // The classes priced: the stem conv's GEMM is the library's 1x1 conv over the taps; the pool
  // is bytes and latency, with no class to fit.
  CHECK(priced_classes({dense.front()}, schedule) == std::set<std::string>{"conv.k1.library"});
  CHECK(priced_classes({head}, schedule) == std::set<std::string>{"fc.library"});
  // Dense 1x1 convs: cuBLASLt, whose tile we cannot see (the model's tile search stands in,
  // under the library's own class and variant); the copies are the layer runner's alone.
  const auto library = schedule(dense[1], node(dense[1], "conv1"));
  REQUIRE(library.has_value());
  CHECK(library->library);
  CHECK_FALSE(library->im2col);
  CHECK(predictor::gemm_variant(node(dense[1], "conv1").op, predictor::OpContext{false, library}) ==
        "library.fp32");
  // The grouped 3x3 runs the direct kernel; a dynamic block's conv1 our implicit GEMM.
  const auto conv2 = schedule(dense[1], node(dense[1], "conv2"));
  REQUIRE(conv2.has_value());
  CHECK(conv2->direct);
  const auto conv1 = schedule(dynamic[2], node(dynamic[2], "conv1"));
  REQUIRE(conv1.has_value());
  CHECK_FALSE(conv1->direct);
  CHECK(conv1->rows > 0);
  // Squeeze-excitation has no kernel step.
  CHECK_FALSE(schedule(dense[1], node(dense[1], "se")).has_value());
}

TEST_CASE(
    "project_kernel_schedule: fp16 dynamic convs as the fp16 implicit GEMM, dense as cuBLASLt") {
  const auto schedule = project_kernel_schedule(132);
  auto spec = example("resnet50");
  spec.precision = predictor::Precision::fp16;
  const auto dense = predictor::build_network(spec, predictor::Execution::dense);
  const auto dynamic = predictor::build_network(spec, predictor::Execution::dynamic);
  const auto node = [](const predictor::BlockGraph& b, const std::string& name) {
    const auto it = std::find_if(b.nodes.begin(), b.nodes.end(),
                                 [&](const predictor::OpNode& n) { return n.name == name; });
    REQUIRE(it != b.nodes.end());
    return *it;
  };
  for (const char* name : {"conv1", "conv2", "conv3"}) {
    CAPTURE(std::string(name));
    const auto lib = schedule(dense[2], node(dense[2], name));
    REQUIRE(lib.has_value());
    CHECK(lib->library);
    const auto own = schedule(dynamic[2], node(dynamic[2], name));
    REQUIRE(own.has_value());
    CHECK(*own == predictor::GemmTile{128, 64, 8});
  }
}

TEST_CASE("calibrate: measurements must cover the plan") {
  const auto plan = small_plan();
  MeasurementSet empty;
  CHECK_THROWS_AS(calibrate(plan, empty, h100(), {}), lasnet::Error);
}

TEST_CASE("validate: a noisy stage timing is left out of the ranking over S") {
  const auto plan = small_plan();
  const predictor::Profile hw = h100();
  auto measured = synthetic(plan, hw, 1.0);
  // One dynamic block's timing disturbed (5x off, flagged noisy): kept in, it would make its S
  // the measured best and every other pick look costly.
  const auto dynamic = std::find_if(plan.begin(), plan.end(), [&](const PlannedBlock& b) {
    return b.runnable && b.graph.dynamic && measured.find(b.job.key) != nullptr;
  });
  REQUIRE(dynamic != plan.end());
  auto t = std::find_if(measured.blocks.begin(), measured.blocks.end(),
                        [&](const BlockTiming& x) { return x.key == dynamic->job.key; });
  REQUIRE(t != measured.blocks.end());
  t->noisy = true;
  t->latency_s = around(0.2 * t->latency_s.median);
  for (auto& step : t->steps) step.latency_s = around(0.2 * step.latency_s.median);
  const auto r = compare(plan, measured, hw);
  std::int64_t left_out = 0;
  for (const auto& g : r.rank_groups) {
    left_out += g.noisy_left_out;
    CHECK(g.regret == doctest::Approx(0));
    CHECK(g.predicted_best == g.measured_best);
  }
  CHECK(left_out >= 1);
  CHECK(render_table(r).find("with a noisy stage timing left out of the ranking") !=
        std::string::npos);
}

TEST_CASE("validate: a predictor 10% fast scores 10% everywhere and ranks perfectly") {
  const auto plan = small_plan();
  const predictor::Profile hw = h100();
  // Measured = predicted / 0.9 for every modelled step: every error is -10%.
  const auto measured = synthetic(plan, hw, 1 / 0.9);
  const auto r = compare(plan, measured, hw);
  const auto& ops = r.metrics.at(Level::op);
  CHECK(ops.count > 0);
  CHECK(ops.mape == doctest::Approx(0.1).epsilon(1e-6));
  CHECK(ops.within_15 == doctest::Approx(1));
  CHECK(ops.within_10 == doctest::Approx(1));
  CHECK(r.metrics.at(Level::block).mape == doctest::Approx(0.1).epsilon(1e-6));
  CHECK(r.metrics.at(Level::network).mape == doctest::Approx(0.1).epsilon(1e-6));
  // Networks: per batch, dense plus two densities.
  std::size_t networks = 0;
  for (const auto& row : r.rows) {
    if (row.level == Level::network) {
      ++networks;
      CHECK(row.name == "resnet50");
    }
  }
  CHECK(networks == 6);
  // Ranks: every stage with more than one S, per batch and density.
  CHECK_FALSE(r.rank_groups.empty());
  for (const auto& g : r.rank_groups) {
    CHECK(g.granularities.size() >= 2);
    CHECK(g.spearman == doctest::Approx(1));
    CHECK(g.predicted_best == g.measured_best);
    CHECK(g.regret == doctest::Approx(0));
  }
  // Reports.
  const std::string table = render_table(r);
  CHECK(table.find("per-kernel MAPE <= 8%: 10.0% (FAIL)") != std::string::npos);
  const auto j = nlohmann::json::parse(render_json(r));
  CHECK(j["targets"]["op_mape"]["met"] == false);
  CHECK(j["targets"]["op_within_15"]["met"] == true);
  CHECK(j["targets"]["stage_spearman_min"]["met"] == true);
  CHECK(j["rows"].size() == r.rows.size());
  // Version 2 of the report (docs/outputs.md): milliseconds, a numeric density or null.
  CHECK(j["schema"] == "lasnet.validation");
  CHECK(j["version"] == 2);
  const auto& row = j["rows"][0];
  CHECK(row["predicted_ms"].get<double>() == doctest::Approx(r.rows[0].predicted_s * 1e3));
  CHECK(row["measured_ms"].get<double>() == doctest::Approx(r.rows[0].measured_s * 1e3));
  CHECK_FALSE(row.contains("predicted_s"));
  CHECK(row["density_label"] == (r.rows[0].density.empty() ? "dense" : r.rows[0].density));
  CHECK(row["density"].is_null() == (r.rows[0].density.empty() || r.rows[0].density == "spec"));
  const std::string csv = render_csv(r);
  CHECK(static_cast<std::size_t>(std::count(csv.begin(), csv.end(), '\n')) == r.rows.size() + 1);
  CHECK(
      csv.starts_with("level,spec,batch,mode,density,stage,granularity,name,kind,key,kernel,"
                      "predicted_ms,measured_ms,"));
  // Numeric columns hold no '-' and no "dense": those are in mode and density_label.
  CHECK(csv.find(",-,") == std::string::npos);
  CHECK(csv.find(",dense,,") != std::string::npos);  // mode dense, density empty
  // The plot: the bands in the error plot and both histograms, every kernel and network in the
  // bars, one legend entry per class with the class sizes adding up to the kernels.
  const std::string svg = render_svg(r);
  CHECK(svg.starts_with("<svg"));
  const auto occurrences = [&](const std::string& what) {
    std::size_t n = 0;
    for (auto p = svg.find(what); p != std::string::npos; p = svg.find(what, p + 1)) ++n;
    return n;
  };
  CHECK(occurrences("class=\"band\" data-band=\"0.1\"") == 3);
  CHECK(occurrences("class=\"band\" data-band=\"0.15\"") == 3);
  CHECK(svg.find(fmt::format("data-of=\"kernels\" data-total=\"{}\"", ops.count)) !=
        std::string::npos);
  CHECK(svg.find("data-of=\"networks\" data-total=\"6\"") != std::string::npos);
  const std::size_t classes = occurrences("<g class=\"points\"");
  CHECK(classes >= 3);
  CHECK(occurrences("<text class=\"legend\"") == classes);
  std::size_t legend_total = 0;
  for (auto p = svg.find("<text class=\"legend\""); p != std::string::npos;
       p = svg.find("<text class=\"legend\"", p + 1)) {
    const auto close = svg.find(")</text>", p);
    legend_total += std::stoul(svg.substr(svg.rfind('(', close) + 1));
  }
  CHECK(legend_total == ops.count);
  CHECK(svg.find("conv (cuBLASLt)") != std::string::npos);  // the dense 1x1 convs
}

TEST_CASE("validate: unmodelled kernel steps are reported, not scored, and count in blocks") {
  const auto plan = small_plan();
  const predictor::Profile hw = h100();
  const auto measured = synthetic(plan, hw, 1.0, 5e-6);
  const auto r = compare(plan, measured, hw);
  CHECK(r.metrics.at(Level::op).mape == doctest::Approx(0).epsilon(1e-9));
  std::size_t unmodelled = 0;
  for (const auto& row : r.rows) {
    if (row.level == Level::op && !row.modelled) {
      ++unmodelled;
      CHECK(row.kind == "unmodelled");
    }
    if (row.level == Level::block && row.dynamic) CHECK(row.error() < 0);
    if (row.level == Level::block && !row.dynamic)
      CHECK(row.error() == doctest::Approx(0).epsilon(1e-9));
  }
  CHECK(unmodelled > 0);
  CHECK(render_table(r).find("unmodelled kernel steps") != std::string::npos);
  // Timings from another GPU than the profile's are said so.
  CHECK(r.notes.size() == 1);
  CHECK(r.notes.front().find("synthetic") != std::string::npos);
}

TEST_CASE("validate: missing measurements are an error naming the configuration") {
  const auto plan = small_plan();
  MeasurementSet partial = synthetic(plan, h100(), 1.0);
  partial.blocks.pop_back();
  try {
    compare(plan, partial, h100());
    FAIL("no throw");
  } catch (const lasnet::Error& e) {
    CHECK(std::string(e.what()).find("lack") != std::string::npos);
  }
}

TEST_CASE("measurements: JSON round trip and errors with a path") {
  const auto plan = small_plan();
  MeasurementSet set = synthetic(plan, h100(), 1.0, 2e-6);
  BlockTiming refused;
  refused.key = "refused job";
  refused.supported = false;
  refused.reason = "fp16 is not implemented";
  set.blocks.push_back(refused);
  set.blocks.front().masks = "clustered";
  const std::string text = measurements_to_json(set);
  const auto back = parse_measurements(text, "m.json");
  REQUIRE(back.blocks.size() == set.blocks.size());
  CHECK(back.blocks.front().masks == "clustered");
  CHECK(back.blocks.back().reason == "fp16 is not implemented");
  CHECK_FALSE(back.blocks.back().supported);
  CHECK(back.blocks.front().steps.size() == set.blocks.front().steps.size());
  CHECK(back.blocks.front().latency_s.median ==
        doctest::Approx(set.blocks.front().latency_s.median));
  CHECK(measurements_to_json(back) == text);
  // Written with the common label; files with the label before it still read.
  CHECK(text.starts_with("{\n \"schema\": \"lasnet.measurements\",\n \"version\": 1,"));
  auto old = nlohmann::ordered_json::parse(text);
  old.erase("schema");
  old.erase("version");
  old.erase("tool_version");
  old["kind"] = "lasnet-measurements";
  CHECK(parse_measurements(old.dump(), "old.json").blocks.size() == set.blocks.size());
  old["kind"] = "lasnet-plan";
  CHECK_THROWS_WITH_AS(parse_measurements(old.dump(), "old.json"),
                       doctest::Contains("kind: expected \"lasnet-measurements\""), lasnet::Error);
  old.erase("kind");
  CHECK_THROWS_WITH_AS(parse_measurements(old.dump(), "old.json"),
                       doctest::Contains("schema: missing required key"), lasnet::Error);

  auto j = nlohmann::json::parse(text);
  j["blocks"][1]["latency_s"]["median"] = -1;
  try {
    parse_measurements(j.dump(), "m.json");
    FAIL("no throw");
  } catch (const lasnet::Error& e) {
    const std::string what = e.what();
    CHECK(what.find("m.json") != std::string::npos);
    CHECK(what.find("blocks[1]") != std::string::npos);
  }
  auto dup = nlohmann::json::parse(text);
  dup["blocks"][1]["key"] = dup["blocks"][0]["key"];
  CHECK_THROWS_AS(parse_measurements(dup.dump(), "m.json"), lasnet::Error);
  auto bad_masks = nlohmann::json::parse(text);
  bad_masks["blocks"][0]["masks"] = "blobs";
  CHECK_THROWS_WITH_AS(parse_measurements(bad_masks.dump(), "m.json"),
                       doctest::Contains("blocks[0].masks: 'blobs' is not one of uniform"),
                       lasnet::Error);

  MeasurementSet more;
  more.blocks.push_back(set.blocks.front());
  BlockTiming extra;
  extra.key = "extra";
  extra.supported = false;
  extra.reason = "x";
  more.blocks.push_back(extra);
  MeasurementSet merged = set;
  merge_measurements(merged, more);
  CHECK(merged.blocks.size() == set.blocks.size() + 1);
}

TEST_CASE("the kernels' GEMM tile from a step's kernel name; other kernels get the search") {
  using predictor::GemmTile;
  // The last field: resident blocks per SM as the kernels build (0: the model's rule).
  CHECK(gemm_tile_of_kernel("igemm_fp32_128x64") ==
        GemmTile{128, 64, 4, false, false, 1, 1, false, 2});
  CHECK(gemm_tile_of_kernel("igemm_fp32_128x128") ==
        GemmTile{128, 128, 8, false, false, 1, 1, false, 1});
  CHECK(gemm_tile_of_kernel("igemm_fp32_64x64") == GemmTile{64, 64, 4});
  CHECK(gemm_tile_of_kernel("igemm_tf32_128x128") ==
        GemmTile{128, 128, 4, false, false, 1, 1, false, 2});
  CHECK(gemm_tile_of_kernel("igemm_tf32_64x64") ==
        GemmTile{64, 64, 4, false, false, 1, 1, false, 3});
  CHECK(gemm_tile_of_kernel("igemm_wgmma_128x128") ==
        GemmTile{128, 128, 8, false, false, 1, 1, false, 2});
  CHECK(gemm_tile_of_kernel("igemm_wgmma_256x128")->blocks_per_sm == 1);
  CHECK(gemm_tile_of_kernel("igemm_fp16_128x64") == GemmTile{128, 64, 8});  // 32x32 warp tiles
  GemmTile split{128, 64, 4, false, false, 1, 1, false, 2};
  split.splits = 3;
  CHECK(gemm_tile_of_kernel("igemm_tf32_128x64_splitk3") == split);
  GemmTile fp16_split{128, 64, 8};
  fp16_split.splits = 5;
  CHECK(gemm_tile_of_kernel("igemm_fp16_128x64_splitk5") == fp16_split);
  CHECK_FALSE(gemm_tile_of_kernel("igemm_tf32_128x64_splitk").has_value());
  CHECK_FALSE(gemm_tile_of_kernel("igemm_tf32_128x64_splitk1").has_value());
  for (const char* other :
       {"cublaslt", "direct_fp32", "add_inactive", "igemm_fp32_", "igemm_fp32_64x",
        "igemm_bf16_64x64", "igemm_fp32_64x64x", "igemm_fp32_0x64", ""}) {
    CAPTURE(std::string(other));
    CHECK_FALSE(gemm_tile_of_kernel(other).has_value());
  }
}

TEST_CASE("step ops: the kernels' tile per step, and the inactive-pixel step only where it runs") {
  const auto plan = small_plan();
  const predictor::Profile hw = h100();
  const auto dyn = std::find_if(plan.begin(), plan.end(), [](const PlannedBlock& b) {
    return b.runnable && b.graph.dynamic && b.batch == 1;
  });
  REQUIRE(dyn != plan.end());
  // Without timings: plan_conv's choice for the implicit-GEMM steps, and the `add` step.
  const auto planned = step_ops(*dyn, nullptr, hw);
  const auto find = [](const std::vector<StepOps>& steps, std::string_view name) {
    return std::find_if(steps.begin(), steps.end(),
                        [&](const StepOps& s) { return s.step == name; });
  };
  REQUIRE(find(planned, "conv2") != planned.end());
  CHECK(find(planned, "conv2")->kernel.starts_with("igemm_fp32_"));
  CHECK(find(planned, "conv2")->ops.front().second.gemm_tile.has_value());
  REQUIRE(find(planned, "add") != planned.end());
  CHECK(find(planned, "add")->ops.size() == 1);
  CHECK(find(planned, "add")->ops.front().first.active_patches > 0);
  // With timings: the recorded kernel decides, and a block whose timings have no `add` (the
  // kernels updating the residual in place) gets none.
  BlockTiming t;
  t.key = dyn->job.key;
  for (const auto& s : planned) {
    if (s.step == "add") continue;
    t.steps.push_back(
        StepTiming{s.step, s.step == "conv2" ? "direct_fp32" : s.kernel, around(1e-5), false});
  }
  const auto timed = step_ops(*dyn, &t, hw);
  CHECK(find(timed, "add") == timed.end());
  CHECK_FALSE(find(timed, "conv2")->ops.front().second.gemm_tile.has_value());
  CHECK(find(timed, "conv2")->kernel == "direct_fp32");
  // Dense blocks never get it.
  const auto dense = std::find_if(plan.begin(), plan.end(), [](const PlannedBlock& b) {
    return b.runnable && !b.graph.dynamic;
  });
  REQUIRE(dense != plan.end());
  const auto dense_steps = step_ops(*dense, nullptr, hw);
  CHECK(find(dense_steps, "add") == dense_steps.end());
  // Identity-shortcut dynamic blocks update the residual in place: no `add` step planned.
  const auto in_place = std::find_if(plan.begin(), plan.end(), [](const PlannedBlock& b) {
    return b.runnable && b.graph.dynamic && b.job.config.dynamic &&
           b.job.config.dynamic->in_place_residual;
  });
  REQUIRE(in_place != plan.end());
  const auto in_place_steps = step_ops(*in_place, nullptr, hw);
  CHECK(find(in_place_steps, "add") == in_place_steps.end());
}

namespace {

// ResNet-50 at batch 128, d = 0.5 at the spec's S (dense blocks too), and its first dense block.
std::vector<PlannedBlock> resnet50_plan() {
  PlanOptions o;
  o.batches = {128};
  o.densities = {0.5};
  o.granularity = GranularityChoice::spec;
  return plan_spec(example("resnet50"), o);
}
std::vector<PlannedBlock>::const_iterator first_dense(const std::vector<PlannedBlock>& plan) {
  return std::find_if(plan.begin(), plan.end(),
                      [](const PlannedBlock& b) { return b.runnable && !b.graph.dynamic; });
}

}  // namespace

TEST_CASE("step ops: a dense block's residual add is priced in its last conv's epilogue") {
  // ResNet-50 at batch 128: layer1.0's conv3 step is cuBLASLt's GEMM with the shortcut's map as
  // its C input. The add costs that kernel the residual's read (in its DRAM stream), not a pass
  // of its own (three maps and a launch).
  const auto plan = resnet50_plan();
  const predictor::Profile hw = h100();
  const auto dense = first_dense(plan);
  REQUIRE(dense != plan.end());
  const auto steps = step_ops(*dense, nullptr, hw);
  const auto conv3 =
      std::find_if(steps.begin(), steps.end(), [](const StepOps& s) { return s.step == "conv3"; });
  REQUIRE(conv3 != steps.end());
  CHECK(conv3->kinds == "conv.k1.library+add.epilogue.library");
  REQUIRE(conv3->ops.size() == 2);
  const auto& [conv, conv_context] = conv3->ops.front();
  const auto& [add, add_context] = conv3->ops.back();
  REQUIRE(add.kind == predictor::OpKind::add);
  REQUIRE(conv_context.gemm_tile.has_value());
  CHECK(conv_context.gemm_tile->library);
  CHECK(conv_context.gemm_tile->residual);
  REQUIRE(add_context.gemm_tile.has_value());
  CHECK(add_context.gemm_tile->epilogue);
  CHECK(add_context.gemm_tile->library);
  // The add: no launch, no bytes, only its class's fixed cost (here the kind's, the profile
  // having none for "add.epilogue.library").
  const auto fused = predictor::predict_op(add, hw, add_context);
  CHECK(fused.launch_s == 0);
  CHECK(fused.dram_bytes == 0);
  CHECK(fused.latency_s == doctest::Approx(hw.calibration.op_offset_of("add", "add")));
  // The conv: the residual map (411 MB, not left in L2) is one more map in its DRAM stream.
  predictor::OpContext plain = conv_context;
  plain.gemm_tile->residual = false;
  const auto with = predictor::predict_op(conv, hw, conv_context);
  const auto without = predictor::predict_op(conv, hw, plain);
  const double residual = 4.0 * static_cast<double>(add.output_elements());
  CHECK(with.dram_bytes - without.dram_bytes == doctest::Approx(residual));
  CHECK(with.latency_s > without.latency_s);
  // Less than the pass it replaces.
  predictor::OpContext pass = add_context;
  pass.gemm_tile.reset();
  CHECK(with.latency_s - without.latency_s < predictor::predict_op(add, hw, pass).latency_s);
  // The network's kernel schedule prices the same nodes the same way.
  const auto schedule = project_kernel_schedule(132);
  const auto& nodes = dense->graph.nodes;
  const auto node = [&](std::string_view name) {
    const auto it = std::find_if(nodes.begin(), nodes.end(),
                                 [&](const predictor::OpNode& n) { return n.name == name; });
    REQUIRE(it != nodes.end());
    return schedule(dense->graph, *it);
  };
  CHECK(node("add") == add_context.gemm_tile);
  CHECK(node("conv3") == conv_context.gemm_tile);
  REQUIRE(node("conv1").has_value());
  CHECK_FALSE(node("conv1")->residual);
}

TEST_CASE("step ops: a dense 3x3 conv run as im2col + cuBLASLt is priced with its taps copy") {
  const auto plan = resnet50_plan();
  const predictor::Profile hw = h100();
  const auto dense = first_dense(plan);
  REQUIRE(dense != plan.end());
  // Timings that name the kernel: conv2 ran as the taps copy and cuBLASLt.
  BlockTiming t;
  t.key = dense->job.key;
  for (const auto& s : step_ops(*dense, nullptr, hw)) {
    t.steps.push_back(
        StepTiming{s.step, s.step == "conv2" ? "im2col+cublaslt" : s.kernel, around(1e-4), false});
  }
  const auto steps = step_ops(*dense, &t, hw);
  const auto conv2 =
      std::find_if(steps.begin(), steps.end(), [](const StepOps& s) { return s.step == "conv2"; });
  REQUIRE(conv2 != steps.end());
  // Fitted as its GEMM, the library's 1x1 conv over the taps.
  CHECK(conv2->kinds == "conv.k1.library");
  const auto& [op, context] = conv2->ops.front();
  REQUIRE(context.gemm_tile.has_value());
  CHECK(context.gemm_tile->library);
  CHECK(context.gemm_tile->im2col);
  predictor::PredictionCache cache(hw);
  const auto scheduled = predictor::predict_scheduled(op, context, cache, hw);
  predictor::OpContext gemm_only = context;
  gemm_only.gemm_tile->im2col = false;
  // The copy writes 9 taps of every output pixel (64 channels at 56x56, batch 128: 925 MB).
  const double taps = 4.0 * 9 * static_cast<double>(op.batch * op.out_height * op.out_width) *
                      static_cast<double>(op.in_channels);
  CHECK(scheduled.latency_s - cache.predict(op, gemm_only).latency_s >
        taps / hw.dram_bandwidth_bytes_per_s);
}

TEST_CASE("step ops: depthwise and grouped 3x3 convs priced at the direct kernels' block tile") {
  PlanOptions o;
  o.batches = {128};
  o.densities = {0.5};
  const auto plan = plan_spec(example("mobilenetv2"), o);
  const predictor::Profile hw = h100();
  int seen = 0;
  for (const auto& b : plan) {
    if (!b.runnable) continue;
    for (const auto& s : step_ops(b, nullptr, hw)) {
      if (s.step != "conv2" || s.kernel != "depthwise_fp32") continue;
      ++seen;
      const auto& [op, context] = s.ops.front();
      REQUIRE(context.gemm_tile.has_value());
      CHECK(context.gemm_tile->direct);
      CHECK(context.gemm_tile->channels_across_groups);
      CHECK(context.gemm_tile->cols % 4 == 0);
      CHECK(context.gemm_tile->pixels_per_thread ==
            std::min<std::int64_t>(4, op.is_dynamic() ? op.granularity : op.out_width));
      CHECK(s.kinds.find(".direct") != std::string::npos);
    }
  }
  CHECK(seen > 0);
}

TEST_CASE("step ops: fp16 dynamic convs priced at the split the kernels launch") {
  // ResNet-101 in fp16 at batch 128, d = 0.5, S = 4-4-2-1. The runner (kernels/src/runner.cu,
  // build_half_dynamic) splits each fp16 implicit GEMM by kernels::fp16_igemm_splits at the
  // rows it expects: ceil(d x patches) active patches (the plan's masks keep that many), E^2
  // halo rows each for conv1, S^2 for conv2 and conv3. The predictor must price that split:
  // the step's kernel name and its tile's splits.
  auto spec = example("resnet101");
  spec.precision = predictor::Precision::fp16;
  PlanOptions o;
  o.batches = {128};
  o.densities = {0.5};
  o.granularity = GranularityChoice::spec;
  const auto plan = plan_spec(spec, o);
  const predictor::Profile hw = h100();
  const int sm_count = static_cast<int>(hw.sm_count);
  const auto runner_shape = [](std::int64_t kernel, std::int64_t cin, std::int64_t cout,
                               std::int64_t rows) {
    lasnet::kernels::ConvShape c;
    c.kernel = static_cast<int>(kernel);
    c.src_c = c.cin_g = static_cast<int>(cin);
    c.out_c = c.cout_g = static_cast<int>(cout);
    c.rows = rows;
    return c;
  };
  std::map<std::string, int> conv2_splits;  // by stage
  int checked = 0;
  for (const auto& b : plan) {
    if (!b.runnable || !b.graph.dynamic) continue;
    const auto& cfg = b.job.config;
    REQUIRE(cfg.dynamic.has_value());
    const auto& s = cfg.shape;
    const auto pg = lasnet::kernels::patch_grid(s, cfg.dynamic->granularity);
    const auto patches = static_cast<std::int64_t>(
        std::ceil(cfg.dynamic->density * static_cast<double>(s.batch * pg.per_image) - 1e-9));
    const std::map<std::string, lasnet::kernels::ConvShape> runs = {
        {"conv1",
         runner_shape(1, s.in_channels, s.mid_channels, patches * pg.halo_extent * pg.halo_extent)},
        {"conv2", runner_shape(3, s.mid_channels, s.mid_channels, patches * pg.s * pg.s)},
        {"conv3", runner_shape(1, s.mid_channels, s.out_channels, patches * pg.s * pg.s)}};
    for (const auto& st : step_ops(b, nullptr, hw)) {
      const auto run = runs.find(st.step);
      if (run == runs.end()) continue;
      CAPTURE(b.stage_name);
      CAPTURE(b.index);
      CAPTURE(st.step);
      REQUIRE(st.kernel.starts_with(lasnet::kernels::kFp16IgemmKernel));
      const int splits = lasnet::kernels::fp16_igemm_splits(run->second, sm_count);
      CHECK(st.kernel == lasnet::kernels::fp16_igemm_kernel(splits));
      REQUIRE(st.ops.front().second.gemm_tile.has_value());
      CHECK(st.ops.front().second.gemm_tile->splits == splits);
      if (st.step == "conv2") conv2_splits[b.stage_name] = splits;
      ++checked;
    }
  }
  CHECK(checked > 0);
  // Split where few tiles walk a long K (layer4's small map, under one wave of three blocks per
  // SM), not on layer1's nor layer3's (one whole wave).
  CHECK(conv2_splits["layer1"] == 1);
  CHECK(conv2_splits["layer3"] == 1);
  CHECK(conv2_splits["layer4"] == 7);
}
