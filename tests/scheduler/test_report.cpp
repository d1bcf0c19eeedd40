// What leaves the program: the plan JSON (stable, complete enough to replay on the GPU), the
// Chrome trace (valid JSON, one track per stream) and the CSV trade-off table.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "fixtures.hpp"
#include "lasnet/scheduler/report.hpp"

namespace lp = lasnet::predictor;
namespace ls = lasnet::scheduler;

namespace {

ls::Plan small_plan(std::int64_t streams) {
  auto spec = ls::test::example("resnet50");
  spec.batch = 1;
  ls::SearchRequest r;
  r.density = 0.5;
  r.max_streams = streams;
  return ls::search(spec, ls::test::profile("h100-sxm"), r);
}

}  // namespace

TEST_CASE("the trace loads as JSON with one track per stream") {
  const auto plan = small_plan(3);
  for (const std::int64_t k : {std::int64_t{1}, std::int64_t{2}, std::int64_t{4}}) {
    const auto schedule = ls::schedule_streams(plan.graph, k);
    const auto j = nlohmann::json::parse(ls::chrome_trace(plan.graph, schedule, "test"));
    REQUIRE(j.contains("traceEvents"));
    std::set<std::int64_t> named;
    std::size_t kernels = 0;
    for (const auto& e : j["traceEvents"]) {
      if (e["ph"] == "M" && e["name"] == "thread_name") {
        named.insert(e["tid"].get<std::int64_t>());
      } else if (e["ph"] == "X") {
        ++kernels;
        CHECK(e["dur"].get<double>() >= 0);
        CHECK(e["ts"].get<double>() >= 0);
        const auto tid = e["tid"].get<std::int64_t>();
        CHECK(tid >= 0);
        CHECK(tid < k);
      }
    }
    CHECK(named.size() == static_cast<std::size_t>(k));
    CHECK(kernels == boost::num_vertices(plan.graph));
  }
}

TEST_CASE("the plan JSON: stable header, every kernel with stream, launch rank and waits") {
  const auto spec = [] {
    auto s = ls::test::example("resnet50");
    s.batch = 1;
    return s;
  }();
  const auto hw = ls::test::profile("h100-sxm");
  const auto plan = small_plan(2);
  const auto text = ls::plan_to_json(plan, spec, hw);
  const auto j = nlohmann::ordered_json::parse(text);
  CHECK(j.begin().key() == "schema");
  CHECK(j["schema"] == "lasnet.plan");
  CHECK(j["version"] == 2);  // 1 was "format": "lasnet-plan" in seconds
  CHECK(j["version"] == ls::plan_format_version);
  CHECK(j["granularity"].size() == spec.stages.size());
  CHECK(j["streams"] == plan.streams);
  // Milliseconds: the plan's seconds times 1000.
  CHECK(j["latency_ms"].get<double>() == doctest::Approx(plan.latency_s * 1e3));
  CHECK(!j.contains("latency_s"));
  // Same plan, same text: stable output.
  CHECK(text == ls::plan_to_json(plan, spec, hw));

  std::map<std::size_t, std::pair<double, double>> when;  // id -> (start, end)
  std::set<std::size_t> launches;
  std::size_t ops = 0;
  for (const auto& b : j["blocks"]) {
    for (const auto& op : b["ops"]) {
      ++ops;
      when[op["id"].get<std::size_t>()] = {op["start_ms"].get<double>(),
                                           op["end_ms"].get<double>()};
      launches.insert(op["launch"].get<std::size_t>());
      CHECK(op["stream"].get<std::int64_t>() < plan.streams);
    }
  }
  CHECK(ops == boost::num_vertices(plan.graph));
  CHECK(launches.size() == ops);  // a permutation
  for (const auto& b : j["blocks"]) {
    for (const auto& op : b["ops"]) {
      for (const auto& p : op["after"]) {
        CHECK(when.at(p.get<std::size_t>()).second <= op["start_ms"].get<double>() + 1e-9);
      }
    }
  }
}

TEST_CASE("the CSV has one row per stage and candidate S") {
  const auto plan = small_plan(1);
  const auto csv = ls::plan_csv(plan);
  std::size_t rows = 0;
  for (const auto& st : plan.stages) rows += st.options.size();
  CHECK(static_cast<std::size_t>(std::count(csv.begin(), csv.end(), '\n')) == rows + 1);
  CHECK(csv.starts_with("stage,granularity,feasible"));
}

TEST_CASE("the table names the recommendation and the fusion saving") {
  auto spec = ls::test::example("resnet50");
  spec.batch = 1;
  const auto plan = small_plan(2);
  const auto table = ls::plan_table(plan, spec, ls::test::profile("h100-sxm"));
  CHECK(table.find("<- recommended") != std::string::npos);
  CHECK(table.find("saving ms") != std::string::npos);
  CHECK(table.find(lp::format_granularity(plan.granularity)) != std::string::npos);
}
