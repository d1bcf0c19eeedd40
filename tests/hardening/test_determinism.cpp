// The same inputs give byte-identical output: JSON across runs (and for `schedule` across
// --threads), the plot SVG across runs.
#include <doctest/doctest.h>

#include <string>

#include "run.hpp"

using lasnet::test::run_lasnet;

TEST_CASE("predict: JSON output is byte-identical across runs") {
  for (const char* args : {
           "predict examples/resnet101.json --hw v100 --density 0.5 --granularity 4-4-2-1 "
           "--per op --format json",
           "predict examples/mobilenetv2.json --hw tx2 --per op --format json",
           "predict examples/regnety_800mf.json --hw h100 --mode channel --density 0.3 "
           "--per op --format json",
       }) {
    CAPTURE(args);
    const auto first = run_lasnet(args);
    REQUIRE(first.status == 0);
    REQUIRE(first.out.size() > 1000);
    for (int i = 0; i < 2; ++i) CHECK(run_lasnet(args).out == first.out);
  }
}

TEST_CASE("schedule: plan JSON is byte-identical across runs and --threads 1, 2, 8") {
  for (const char* args : {
           "schedule examples/resnet50.json --hw h100 --density 0.5 --streams 2",
           "schedule examples/resnet101.json --hw v100 --budget-ms 20 --streams 3",
           "schedule examples/regnety_400mf.json --hw rtx3060 --streams 2 --density 0.4",
       }) {
    CAPTURE(args);
    const auto reference = run_lasnet(fmt::format("{} --format json --threads 1", args));
    REQUIRE(reference.status == 0);
    REQUIRE(reference.out.find("\"schema\": \"lasnet.plan\"") != std::string::npos);
    for (const int threads : {1, 2, 8}) {
      CAPTURE(threads);
      const auto r = run_lasnet(fmt::format("{} --format json --threads {}", args, threads));
      CHECK(r.status == 0);
      CHECK(r.out == reference.out);
    }
  }
}

TEST_CASE("plot: the SVG is byte-identical across runs") {
  const char* args = "plot examples/regnety_400mf.json --hw rtx3060 --density 0.4";
  const auto first = run_lasnet(args);
  REQUIRE(first.status == 0);
  REQUIRE(first.out.size() > 1000);
  for (int i = 0; i < 2; ++i) CHECK(run_lasnet(args).out == first.out);
}

TEST_CASE("import: the spec and the report are byte-identical across runs") {
  for (const char* args : {"import tests/data/onnx/efficientnet_b0.onnx --report",
                           "import tests/data/onnx/regnet_y_400mf.onnx"}) {
    CAPTURE(args);
    const auto first = run_lasnet(args);
    REQUIRE(first.status == 0);
    REQUIRE(first.out.size() > 500);
    for (int i = 0; i < 2; ++i) CHECK(run_lasnet(args).out == first.out);
  }
}
