// Import speed: reading tests/data/onnx/resnet152.onnx from disk, importing it (protobuf parse,
// shape inference, converters, block recognition), parsing the spec it writes and predicting
// it dense and dynamic with a cold cache: what `lasnet import` + `lasnet predict` do, in one
// process. Target (issue 20): under 50 ms on one core.
#include <benchmark/benchmark.h>

#include <string>

#include "lasnet/importer/onnx_import.hpp"
#include "lasnet/predictor/network.hpp"

namespace {

using namespace lasnet;

const std::string source = LASNET_SOURCE_DIR;

void import_only(benchmark::State& state, const char* model) {
  for (auto _ : state) {
    const auto imported =
        importer::import_onnx_file(source + "/tests/data/onnx/" + model + ".onnx", {});
    benchmark::DoNotOptimize(imported);
  }
}

void import_and_predict(benchmark::State& state, const char* model) {
  for (auto _ : state) {
    const auto imported =
        importer::import_onnx_file(source + "/tests/data/onnx/" + model + ".onnx", {});
    const auto spec = predictor::parse_spec(imported.spec_json, model);
    const auto hw = predictor::load_profile(source + "/hardware_profiles/h100.json");
    predictor::PredictionCache cache(hw);
    const auto dense = predictor::predict_network(
        predictor::build_network(spec, predictor::Execution::dense), spec, hw, cache);
    const auto dynamic = predictor::predict_network(
        predictor::build_network(spec, predictor::Execution::dynamic), spec, hw, cache);
    benchmark::DoNotOptimize(dense);
    benchmark::DoNotOptimize(dynamic);
  }
}

}  // namespace

BENCHMARK_CAPTURE(import_only, resnet152, "resnet152")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(import_and_predict, resnet152, "resnet152")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(import_and_predict, mobilenet_v2, "mobilenet_v2")->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
