// `lasnet predict SPEC --hw NAME|FILE`: dense and dynamic latency with a breakdown.
#include <fmt/format.h>

#include <memory>
#include <set>

#include "context.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/kernels/version.hpp"
#include "lasnet/predictor/network.hpp"
#include "lasnet/profiler/validation.hpp"
#include "report.hpp"

namespace lasnet::cli {

namespace {

struct PredictOptions {
  std::string spec;
  std::string hw;
  std::optional<std::int64_t> batch;
  std::optional<double> density;
  std::optional<std::string> granularity;
  std::optional<std::string> mode;
  std::optional<std::string> precision;
  std::optional<std::string> fusion;
  std::optional<std::string> masks;
  Level level = Level::block;
  Format format = Format::table;
  bool dense_only = false;
  bool kernels = false;
  OutputTarget out;
};

void run_predict(const Context& context, const PredictOptions& o) {
  predictor::Spec spec = predictor::load_spec(o.spec);
  if (o.batch) spec.batch = *o.batch;
  if (o.precision) predictor::set_precision(spec, *o.precision, "--precision");
  if (o.mode) {
    predictor::DynamicMode mode = predictor::DynamicMode::spatial;
    if (*o.mode == "channel") {
      mode = predictor::DynamicMode::channel;
    } else if (*o.mode == "layer") {
      mode = predictor::DynamicMode::layer;
    } else if (*o.mode != "spatial") {
      throw Error(fmt::format("--mode: '{}' is not one of spatial, channel, layer", *o.mode));
    }
    predictor::set_mode(spec, mode);
    spec.dynamic.enabled = true;
  }
  if (o.granularity) {
    predictor::set_granularity(spec, predictor::parse_granularity(*o.granularity, "--granularity"),
                               "--granularity");
  }
  if (o.density) predictor::set_density(spec, *o.density, "--density");
  // One fusion per block from here on: --fusion for all, else the spec's own, else the default.
  if (o.fusion || spec.dynamic.fusion.empty()) {
    const predictor::Fusion fusion =
        o.fusion ? predictor::parse_fusion(*o.fusion, "--fusion") : predictor::Fusion{};
    spec.dynamic.fusion.clear();
    for (const auto& st : spec.stages) {
      spec.dynamic.fusion.emplace_back(static_cast<std::size_t>(st.blocks), fusion);
    }
  }
  const predictor::NetworkOptions options{};
  std::optional<MaskModel> masks;
  if (o.masks) masks = parse_mask_model(*o.masks);  // CLI11 checked the name
  const predictor::Profile hw = resolve_profile(context, o.hw);

  PredictReport report;
  report.spec_name = spec.name;
  report.hardware = hw.name;
  report.batch = spec.batch;
  report.precision = spec.precision;
  report.dynamic = spec.dynamic;
  report.kernel_schedules = o.kernels;
  const predictor::KernelSchedule schedule =
      o.kernels ? profiler::project_kernel_schedule(static_cast<int>(hw.sm_count))
                : predictor::KernelSchedule{};
  predictor::PredictionCache cache(hw);
  const auto dense = predictor::build_network(spec, predictor::Execution::dense, options);
  report.dense = predictor::predict_network(dense, spec, hw, cache, schedule);
  std::set<std::string> classes;
  if (o.kernels) classes = profiler::priced_classes(dense, schedule);
  if (spec.dynamic.enabled && !o.dense_only) {
    const auto dynamic =
        predictor::build_network(spec, predictor::Execution::dynamic, options, masks);
    report.dynamic_prediction = predictor::predict_network(dynamic, spec, hw, cache, schedule);
    if (o.kernels) classes.merge(profiler::priced_classes(dynamic, schedule));
  }
  // --kernels claims to price what this build's kernels run: say where the profile cannot back
  // that claim (stderr, so the report itself stays machine-readable).
  for (const auto& w : profiler::calibration_warnings(hw, classes, kernels::version())) {
    fmt::print(stderr, "warning: {}\n", w);
  }
  emit(o.out, render(report, o.level, o.format));
}

}  // namespace

void add_predict_command(CLI::App& app, const Context& context) {
  auto o = std::make_shared<PredictOptions>();
  auto* cmd = app.add_subcommand(
      "predict", "Predict the dense and dynamic latency of a model spec on a hardware profile");
  cmd->add_option("spec", o->spec, "Model spec JSON (see examples/)")->required();
  cmd->add_option("--hw", o->hw, "Hardware profile: a name from `lasnet hw list` or a JSON file")
      ->required();
  cmd->add_option("--batch", o->batch, "Batch size (overrides the spec)")
      ->check(CLI::Range(std::int64_t{1}, predictor::max_batch));
  cmd->add_option("--density", o->density,
                  "Activation rate of every dynamic block, in [0, 1] (overrides the spec)");
  cmd->add_option("--granularity", o->granularity,
                  "Patch size per stage, e.g. 4-4-2-1 (overrides the spec)");
  cmd->add_option("--mode", o->mode, "Dynamic mode: spatial, channel or layer");
  cmd->add_option("--precision", o->precision, "fp32, tf32 or fp16 (overrides the spec)");
  cmd->add_option("--fusion", o->fusion,
                  "Fused kernels in every dynamic block: none, all, or a list of "
                  "union,masker,gather,scatter (default: the spec's own, else gather,scatter)");
  cmd->add_option("--masks", o->masks,
                  "Price spatial blocks at a mask model's expected statistics: uniform, "
                  "clustered or varied (default: P = ceil(d x patches), halos not shared)")
      ->check(CLI::IsMember({"uniform", "clustered", "varied"}));
  const std::map<std::string, Level> levels{
      {"op", Level::op}, {"block", Level::block}, {"stage", Level::stage}};
  cmd->add_option("--per", o->level, "Breakdown: op, block or stage")
      ->transform(CLI::Transformer(levels, CLI::ignore_case).description(""))
      ->transform(CLI::IsMember({"op", "block", "stage"}, CLI::ignore_case))
      ->default_str("block");
  cmd->add_flag("--dense-only", o->dense_only, "Predict the dense network only");
  cmd->add_flag("--kernels", o->kernels,
                "Price each conv at the schedule this project's CUDA kernels run it with (the "
                "one `lasnet validate` checks; use a profile calibrated on them) instead of the "
                "model's best tile");
  add_format_option(*cmd, o->format);
  add_output_options(*cmd, o->out, "Write the report to this file instead of stdout");
  cmd->callback([&context, o] { run_predict(context, *o); });
}

}  // namespace lasnet::cli
