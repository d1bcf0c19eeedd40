// The network program `lasnet run` replays: its units, launches, streams and waits, from a spec
// and from a plan file, and the plan file's validation at the boundary.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <string>

#include "lasnet/common/error.hpp"
#include "lasnet/predictor/profile.hpp"
#include "lasnet/predictor/spec.hpp"
#include "lasnet/profiler/network_run.hpp"
#include "lasnet/profiler/statistics.hpp"
#include "lasnet/profiler/validation.hpp"

namespace pr = lasnet::profiler;
namespace pd = lasnet::predictor;

namespace {

pd::Spec resnet50(std::int64_t batch) {
  auto spec = pd::load_spec(std::string(LASNET_EXAMPLES_DIR) + "/resnet50.json");
  spec.batch = batch;
  return spec;
}

pd::Profile h100() {
  return pd::load_profile(std::string(LASNET_PROFILES_DIR) + "/h100-calibrated.json");
}

// A plan JSON as `schedule --plan` writes it, made from the spec's program: every op with the
// predictor's latency, the shortcuts on stream 1 when `streams` is 2, `after` the block's own
// edges plus, for a block's roots, every sink of the block before (the scheduler's barrier).
nlohmann::ordered_json make_plan(const pd::Spec& spec, const pd::Profile& hw, int streams) {
  const auto program = pr::spec_program(spec, hw);
  nlohmann::ordered_json j{{"schema", "lasnet.plan"}, {"version", 2}, {"tool_version", "0"}};
  j["spec"] = spec.name;
  j["hardware"] = hw.name;
  j["mode"] = "spatial";
  j["feasible"] = true;
  j["streams"] = streams;
  j["kernel_schedules"] = true;  // priced as spec_program prices it
  j["granularity"] = {4, 4, 2, 1};
  j["latency_ms"] = program.predicted_s * 1e3;
  j["single_stream_latency_ms"] = program.predicted_s * 1e3;
  j["dense_latency_ms"] = 1.0;
  auto blocks = nlohmann::ordered_json::array();
  std::size_t id = 0;
  std::vector<std::size_t> previous_sinks;
  double clock = 0;
  for (const auto& u : program.units) {
    const auto& g = u.graph;
    const std::size_t first = id;
    auto ops = nlohmann::ordered_json::array();
    std::vector<bool> has_succ(g.nodes.size(), false);
    double unit_s = 0;
    for (std::size_t n = 0; n < g.nodes.size(); ++n) {
      std::vector<std::size_t> after;
      for (const auto a : g.nodes[n].after) {
        after.push_back(first + a);
        has_succ[a] = true;
      }
      if (g.nodes[n].after.empty()) after = previous_sinks;
      double t = 0;
      for (const auto& l : program.launches) {
        if (program.units[l.unit].name == u.name && l.step == u.node_steps[n]) t = l.predicted_s;
      }
      unit_s += t;
      const int stream = streams == 2 && g.nodes[n].name == "shortcut" ? 1 : 0;
      ops.push_back({{"id", id},
                     {"node", n},
                     {"name", g.nodes[n].name},
                     {"kind", "conv"},
                     {"stream", stream},
                     {"launch", id},
                     {"after", after},
                     {"start_ms", clock},
                     {"end_ms", clock + t * 1e3},
                     {"latency_ms", t * 1e3},
                     {"sm_demand", 1.0}});
      clock += t * 1e3;
      ++id;
    }
    previous_sinks.clear();
    for (std::size_t n = 0; n < g.nodes.size(); ++n) {
      if (!has_succ[n]) previous_sinks.push_back(first + n);
    }
    blocks.push_back({{"name", g.name},
                      {"stage", g.stage >= 0 && g.name != "head" ? nlohmann::ordered_json(g.stage)
                                                                 : nlohmann::ordered_json(nullptr)},
                      {"index", g.index_in_stage},
                      {"dynamic", g.dynamic},
                      {"granularity", g.granularity},
                      {"density", g.density},
                      {"fusion", "gather,scatter"},
                      {"latency_ms", unit_s * 1e3},
                      {"unfused_latency_ms", unit_s * 1e3},
                      {"fusion_saving_ms", 0.0},
                      {"single_stream_latency_ms", unit_s * 1e3},
                      {"ops", ops}});
  }
  j["blocks"] = blocks;
  return j;
}

std::string error_of(const std::string& text, const pd::Spec& spec, const pd::Profile& hw) {
  try {
    (void)pr::plan_program(spec, pr::parse_plan(text, "plan.json"), hw);
  } catch (const lasnet::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("ResNet-50 as a program: stem, 16 blocks and head, one stream in order") {
  const auto hw = h100();
  const auto p = pr::spec_program(resnet50(1), hw);
  // 3 + 4 + 6 + 3 = 16 bottlenecks between the stem and the head.
  REQUIRE(p.units.size() == 18);
  CHECK(p.units.front().name == "stem");
  CHECK(p.units.back().name == "head");
  CHECK(p.units.front().layers);
  CHECK(p.units[1].name == "layer1.0");
  CHECK(p.not_covered().empty());
  CHECK(p.dynamic);
  CHECK(p.streams == 1);
  // Stem conv 7x7 s2 + max pool; head global pool + fc; the 4 projection blocks have 5 steps
  // (masker, conv1, conv2, shortcut, conv3 with gather and scatter fused), the 12 others 4:
  // 2 + 4 x 5 + 12 x 4 + 2 = 72 launches.
  CHECK(p.units.front().steps == std::vector<std::string>{"conv0", "max_pool1"});
  REQUIRE(p.units.front().layer_configs.size() == 2);
  CHECK(p.units.front().layer_configs[0].kernel == 7);
  CHECK(p.units.front().layer_configs[0].padding == 3);
  CHECK(p.units.front().layer_configs[1].out_height() == 56);
  CHECK(p.units[1].steps ==
        std::vector<std::string>{"masker", "conv1", "conv2", "shortcut", "conv3"});
  CHECK(p.launches.size() == 72);
  double sum = 0, unit_sum = 0;
  for (std::size_t i = 0; i < p.launches.size(); ++i) {
    CHECK(p.launches[i].stream == 0);
    CHECK(p.launches[i].waits.empty());
    sum += p.launches[i].predicted_s;
    if (i > 0) CHECK(p.launches[i].predicted_start_s == p.launches[i - 1].predicted_end_s);
  }
  for (const auto& u : p.units) unit_sum += u.predicted_s;
  CHECK(sum == doctest::Approx(p.predicted_s));
  CHECK(unit_sum == doctest::Approx(p.predicted_s));
  // Dense: the same units, no masker.
  const auto dense = pr::spec_program(resnet50(1), hw, false);
  CHECK_FALSE(dense.dynamic);
  CHECK(dense.units[1].steps == std::vector<std::string>{"conv1", "conv2", "conv3", "shortcut"});
  double dense_sum = 0;
  for (const auto& l : dense.launches) dense_sum += l.predicted_s;
  CHECK(dense_sum == doctest::Approx(dense.predicted_s));
}

TEST_CASE("a 2-stream plan: shortcuts on stream 1, waits only where streams cross") {
  const auto hw = h100();
  const auto spec = resnet50(1);
  const auto plan = pr::parse_plan(make_plan(spec, hw, 2).dump(), "plan.json");
  CHECK(plan.streams == 2);
  const auto p = pr::plan_program(spec, plan, hw);
  REQUIRE(p.launches.size() == 72);
  CHECK(p.streams == 2);
  // Each of the 4 projection shortcuts waits for the block before (its last kernel, conv3 or
  // the stem's max pool, on stream 0), and its block's conv3 waits for it: 8 waits in all.
  std::size_t waits = 0, shortcuts = 0;
  for (std::size_t i = 0; i < p.launches.size(); ++i) {
    const auto& l = p.launches[i];
    waits += l.waits.size();
    for (const auto w : l.waits) CHECK(w < i);
    if (l.step == "shortcut") {
      ++shortcuts;
      CHECK(l.stream == 1);
      REQUIRE(l.waits.size() == 1);
      CHECK(p.launches[l.waits[0]].unit == l.unit - 1);
    }
    if (l.step == "conv3" && p.units[l.unit].name.ends_with(".0")) {
      REQUIRE(l.waits.size() == 1);
      CHECK(p.launches[l.waits[0]].step == "shortcut");
      CHECK(p.launches[l.waits[0]].unit == l.unit);
    }
  }
  CHECK(shortcuts == 4);
  CHECK(waits == 8);
  // The same on one stream: no waits, the ops one after another.
  const auto one = pr::single_stream(p);
  CHECK(one.streams == 1);
  for (const auto& l : one.launches) CHECK(l.waits.empty());
  CHECK(one.predicted_s == doctest::Approx(plan.single_stream_latency_s));
}

TEST_CASE("malformed plans: one message naming the file and the JSON path") {
  const auto hw = h100();
  const auto spec = resnet50(1);
  auto plan = make_plan(spec, hw, 2);
  {
    auto bad = plan;
    bad["blocks"][1]["ops"][0]["stream"] = 5;
    CHECK(error_of(bad.dump(), spec, hw) ==
          "plan.json: blocks[1].ops[0].stream: 5 is not a stream of the plan's 2");
  }
  {
    auto bad = plan;
    bad["blocks"][2]["ops"][1].erase("after");
    CHECK(error_of(bad.dump(), spec, hw) ==
          "plan.json: blocks[2].ops[1].after: missing required key");
  }
  {
    auto bad = plan;
    bad["blocks"][2]["ops"][1]["after"] = {100000};
    CHECK(error_of(bad.dump(), spec, hw) ==
          "plan.json: blocks[2].ops[1].after[0]: no op has id 100000");
  }
  {
    auto bad = plan;
    bad["blocks"][1]["ops"][1]["name"] = "gather";
    CHECK(error_of(bad.dump(), spec, hw)
              .starts_with("plan.json: blocks[1].ops[1].name: 'gather' at node 1, but layer1.0's "
                           "node is 'conv1'"));
  }
  {
    auto bad = plan;
    bad["spec"] = "resnet101";
    CHECK(error_of(bad.dump(), spec, hw)
              .starts_with("plan.json: spec: the plan is for 'resnet101', not 'resnet50'"));
  }
  CHECK(error_of("[]", spec, hw).starts_with("plan.json: "));
  // The plan was made at batch 1: at batch 128 its one-stream prediction is not this spec's.
  CHECK(error_of(plan.dump(), resnet50(128), hw)
            .starts_with("plan.json: single_stream_latency_ms: the plan predicts"));
  CHECK(pr::is_plan_document(plan.dump()));
  CHECK_FALSE(pr::is_plan_document("{\"name\": \"resnet50\"}"));
  CHECK_FALSE(pr::is_plan_document("not json"));
}

TEST_CASE("what the kernels cannot run is listed, unit by unit") {
  // MobileNetV2 runs whole: stem conv, expansion-1 (separable) and expanded inverted residuals,
  // head (1x1 conv, pool, fc).
  auto spec = pd::load_spec(std::string(LASNET_EXAMPLES_DIR) + "/mobilenetv2.json");
  spec.batch = 1;
  const auto whole = pr::spec_program(spec, h100());
  CHECK(whole.not_covered().empty());
  CHECK(whole.units.front().runnable);
  CHECK(whole.units.back().runnable);
  // A 5x5 depthwise conv (MnasNet's) is not the kernels': that unit is listed, the rest run.
  spec.stages[1].kernel = 5;
  const auto p = pr::spec_program(spec, h100());
  const auto missing = p.not_covered();
  REQUIRE(missing.size() == static_cast<std::size_t>(spec.stages[1].blocks));
  CHECK(missing.front().find("3x3") != std::string::npos);
  CHECK(p.units.front().runnable);
  CHECK(p.units.back().runnable);
}

TEST_CASE("per-unit spans and the trace of a measured run") {
  const auto p = pr::spec_program(resnet50(1), h100());
  pr::NetworkMeasurement m;
  m.device.name = "test GPU";
  // Every launch 1 us long, back to back: a unit of k launches spans k us.
  for (std::size_t i = 0; i < p.launches.size(); ++i) {
    m.launches.push_back({1e-6 * static_cast<double>(i), 1e-6 * static_cast<double>(i + 1)});
  }
  m.eager_s = 1e-6 * static_cast<double>(p.launches.size());
  const auto spans = pr::unit_spans_s(p, m);
  CHECK(spans.front() == doctest::Approx(2e-6));  // the stem's 2 launches
  CHECK(spans[1] == doctest::Approx(5e-6));       // layer1.0's 5
  const auto trace = nlohmann::json::parse(pr::run_trace(p, m));
  CHECK(trace["schema"] == "lasnet.trace");
  std::size_t complete = 0;
  for (const auto& e : trace["traceEvents"]) complete += e["ph"] == "X";
  CHECK(complete == 2 * p.launches.size());  // measured and predicted
}

TEST_CASE("the run report: predicted beside measured, the stream gain and the dense speedup") {
  const auto hw = h100();
  const auto spec = resnet50(1);
  const auto plan =
      pr::plan_program(spec, pr::parse_plan(make_plan(spec, hw, 2).dump(), "plan.json"), hw);
  pr::RunReport report;
  report.spec = "resnet50";
  report.plan = "plan.json";
  report.hardware = hw.name;
  report.rows.push_back({plan, std::nullopt});
  report.rows.push_back({pr::single_stream(plan), std::nullopt});
  report.rows.push_back({pr::spec_program(spec, hw, false), std::nullopt});
  // Measured: the plan 2 ms, one stream 2.2 ms, dense 3 ms (every sample the same).
  const double measured[] = {2e-3, 2.2e-3, 3e-3};
  for (std::size_t i = 0; i < 3; ++i) {
    pr::NetworkMeasurement m;
    m.device.name = "test GPU";
    m.samples_s.assign(5, measured[i]);
    m.latency_s = pr::summarize(m.samples_s);
    m.eager_s = measured[i];
    m.launches.assign(report.rows[i].program.launches.size(), {0.0, 1e-6});
    m.unit_density.assign(report.rows[i].program.units.size(), -1);
    report.rows[i].measured = m;
  }
  const auto j = nlohmann::json::parse(pr::run_json(report));
  CHECK(j["schema"] == "lasnet.run");
  REQUIRE(j["programs"].size() == 3);
  CHECK(j["programs"][0]["label"] == "plan");
  CHECK(j["programs"][0]["streams"] == 2);
  CHECK(j["programs"][0]["measured_ms"].get<double>() == doctest::Approx(2.0));
  // error = (predicted - measured) / measured.
  const double predicted_ms = plan.predicted_s * 1e3;
  CHECK(j["programs"][0]["error"].get<double>() == doctest::Approx((predicted_ms - 2.0) / 2.0));
  // Measured gain of two streams: 2.2 / 2 = 1.1; the dense speedup 3 / 2 = 1.5.
  CHECK(j["stream_gain"]["measured"].get<double>() == doctest::Approx(1.1));
  CHECK(j["stream_gain"]["predicted"].get<double>() ==
        doctest::Approx(pr::single_stream(plan).predicted_s / plan.predicted_s));
  CHECK(j["dynamic_speedup"]["measured"].get<double>() == doctest::Approx(1.5));
  CHECK(j["programs"][0]["units"].size() == 18);
  const auto table = pr::run_table(report);
  CHECK(table.find("gain of 2 streams over one: predicted") != std::string::npos);
  CHECK(table.find("measured 1.100x") != std::string::npos);
  CHECK(table.find("speedup over dense") != std::string::npos);
}

TEST_CASE("a dense bottleneck's conv3 (with the residual add) runs after its shortcut") {
  // Dense layer1.0: conv1 -> conv2 -> conv3 (+add, after the shortcut); the shortcut reads the
  // input only. On one stream: conv1, conv2, shortcut, conv3.
  const auto dense = pr::spec_program(resnet50(1), h100(), false);
  std::vector<std::string> order;
  for (const auto& l : dense.launches) {
    if (l.unit == 1) order.push_back(l.step);
  }
  CHECK(order == std::vector<std::string>{"conv1", "conv2", "shortcut", "conv3"});
}

TEST_CASE("validate --network: whole-network rows join the network metrics") {
  pr::ValidationReport report;
  pr::Comparison sum;
  sum.level = pr::Level::network;
  sum.spec = "resnet50";
  sum.name = "resnet50";
  sum.kind = "network";
  sum.predicted_s = 1.1e-3;  // +10%
  sum.measured_s = 1.0e-3;
  report.rows.push_back(sum);
  pr::Comparison whole = sum;
  whole.name = "resnet50 (whole)";
  whole.kind = "whole network";
  whole.predicted_s = 0.9e-3;  // -10%... of 1.0 ms: |error| 0.1 either way
  pr::add_whole_network_rows(report, {whole});
  REQUIRE(report.rows.size() == 2);
  const auto& m = report.metrics.at(pr::Level::network);
  CHECK(m.count == 2);
  CHECK(m.mape == doctest::Approx(0.1));
  CHECK(pr::render_table(report).find("whole networks run with stem and head") !=
        std::string::npos);
}
