// `lasnet plot SPEC --hw NAME|FILE`: an SVG of predicted stage latency against density, one
// panel per stage, one line per S, the dense stage as reference and the S `lasnet schedule`
// recommends marked. Plain C++ all the way down: works in builds without CUDA.
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "context.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/predictor/spec.hpp"
#include "lasnet/scheduler/density_plot.hpp"

namespace lasnet::cli {

namespace {

struct PlotOptions {
  std::string spec;
  std::string hw;
  std::optional<std::int64_t> batch;
  std::optional<std::string> precision;
  std::string fusion = "auto";
  std::optional<double> density;
  double density_step = 0.05;
  double tolerance = 0.02;
  OutputTarget out;
};

void run_plot(const Context& context, const PlotOptions& o) {
  if (o.out.file && !o.out.force && std::filesystem::exists(*o.out.file)) {
    throw Error(fmt::format("{}: already exists (use --force to overwrite)", o.out.file->string()));
  }
  predictor::Spec spec = predictor::load_spec(o.spec);
  if (o.batch) spec.batch = *o.batch;
  if (o.precision) predictor::set_precision(spec, *o.precision, "--precision");
  const predictor::Profile hw = resolve_profile(context, o.hw);

  scheduler::SweepRequest request;
  if (o.density && !(*o.density >= 0 && *o.density <= 1)) {
    throw Error(fmt::format("--density: {} is outside [0, 1]", *o.density));
  }
  request.density = o.density;
  request.granularity_tolerance = o.tolerance;
  if (o.fusion != "auto") request.fusions = {predictor::parse_fusion(o.fusion, "--fusion")};
  const auto steps = static_cast<int>(std::ceil(1 / o.density_step - 1e-9));
  for (int k = 0; k <= steps; ++k) request.densities.push_back(std::min(1.0, k * o.density_step));

  emit(o.out, scheduler::render_density_svg(scheduler::sweep_density(spec, hw, request)));
}

}  // namespace

void add_plot_command(CLI::App& app, const Context& context) {
  auto o = std::make_shared<PlotOptions>();
  auto* cmd = app.add_subcommand(
      "plot",
      "SVG of predicted stage latency against density: one line per S, dense as reference, the "
      "recommended S marked");
  cmd->add_option("spec", o->spec, "Model spec JSON (see examples/)")->required();
  cmd->add_option("--hw", o->hw, "Hardware profile: a name from `lasnet hw list` or a JSON file")
      ->required();
  cmd->add_option("--batch", o->batch, "Batch size (overrides the spec)")
      ->check(CLI::Range(std::int64_t{1}, predictor::max_batch));
  cmd->add_option("--precision", o->precision, "fp32, tf32 or fp16 (overrides the spec)");
  cmd->add_option("--fusion", o->fusion,
                  "auto (best fusion per block, as `schedule` searches), or fix it: none, all, or "
                  "a list of union,masker,gather,scatter")
      ->default_str("auto");
  cmd->add_option("--density", o->density,
                  "Mark the recommended S at this density, in [0, 1] (default: the spec's own)");
  cmd->add_option("--density-step", o->density_step, "Spacing of the curves' density samples")
      ->check(CLI::Range(0.01, 0.5))
      ->default_str("0.05");
  cmd->add_option("--tolerance", o->tolerance,
                  "The recommended S is the finest within this fraction of the fastest "
                  "(as `schedule --tolerance`)")
      ->check(CLI::Range(0.0, 1.0))
      ->default_str("0.02");
  add_output_options(*cmd, o->out, "Write the SVG to this file instead of stdout");
  cmd->callback([&context, o] { run_plot(context, *o); });
}

}  // namespace lasnet::cli
