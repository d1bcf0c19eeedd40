// The GPU subcommands: `lasnet profile` (measure the local GPU into a hardware profile),
// `lasnet calibrate` (fit the predictor's free parameters to timed kernels) and
// `lasnet validate` (compare predictions with timed runs of a spec's blocks). Without a usable
// GPU each throws lasnet::Error from open_gpu(), which main() turns into exit status 2.
#include <fmt/format.h>

#include <memory>
#include <optional>
#include <string>

#include "context.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/common/file_io.hpp"
#include "lasnet/predictor/profile.hpp"
#include "lasnet/profiler/gpu.hpp"
#include "lasnet/profiler/hardware.hpp"
#include "lasnet/profiler/progress.hpp"

namespace lasnet::cli {

namespace {

struct ProfileOptions {
  OutputTarget out;
  std::string name = "measured";
  int device = 0;
  std::optional<std::filesystem::path> report;
  Format format = Format::table;
  int min_runs = 15;
  double noise_threshold = 0.05;
};

Overwrite overwrite_of(const OutputTarget& target) {
  return target.force ? Overwrite::allow : Overwrite::refuse;
}

void run_profile(const ProfileOptions& o) {
  // Refuse an existing output before spending minutes measuring.
  if (o.out.file && !o.out.force && std::filesystem::exists(*o.out.file)) {
    throw Error(fmt::format("{}: already exists (use --force to overwrite)", o.out.file->string()));
  }
  auto gpu = profiler::open_gpu(o.device);
  profiler::HardwareOptions options;
  options.plan.min_runs = o.min_runs;
  options.plan.noise_threshold = o.noise_threshold;
  fmt::print(stderr, "profiling {} ({}); clocks: {}\n", gpu->info().name, gpu->info().pci_bus_id,
             gpu->clock_state().describe());
  profiler::ProgressBar bar(profiler::stderr_sink(), profiler::stderr_is_terminal(), "profile");
  const auto measurement =
      gpu->measure_hardware(options, [&](std::string_view step, std::size_t done,
                                         std::size_t total) { bar.update(step, done, total); });
  fmt::print(stderr, "{}", profiler::hardware_table(measurement));
  for (const auto& f : measurement.figures) {
    if (f.noisy) {
      fmt::print(stderr, "warning: {} is noisy: spread {:.1f}% over {} runs (threshold {:.0f}%)\n",
                 f.name, 100 * f.value.relative_spread(), f.value.runs,
                 100 * options.plan.noise_threshold);
    }
  }
  const auto profile = profiler::make_measured_profile(measurement, o.name, LASNET_VERSION);
  const std::string json = predictor::profile_to_json(profile);
  // What we write must be what `lasnet predict --hw FILE` accepts.
  (void)predictor::parse_profile(json, "the measured profile");
  if (o.report) {
    std::string text;
    switch (o.format) {
      case Format::table:
        text = profiler::hardware_table(measurement);
        break;
      case Format::json:
        text = profiler::hardware_json(measurement);
        break;
      case Format::csv:
        text = profiler::hardware_csv(measurement);
        break;
    }
    write_file_atomic(*o.report, text, overwrite_of(o.out));
  }
  emit(o.out, json);
  if (o.out.file) fmt::print(stderr, "wrote {}\n", o.out.file->string());
}

void add_profile_command(CLI::App& app) {
  auto o = std::make_shared<ProfileOptions>();
  auto* cmd = app.add_subcommand(
      "profile",
      "Measure the local GPU (bandwidths, FMA and tensor-core peaks, launch cost) into a "
      "hardware profile");
  add_output_options(*cmd, o->out, "Write the profile JSON here instead of stdout");
  cmd->add_option("--name", o->name, "The profile's name")->default_str("measured");
  cmd->add_option("--device", o->device, "CUDA device index")->default_str("0");
  cmd->add_option("--report", o->report,
                  "Also write every figure with its spread to this file (in --format)");
  add_format_option(*cmd, o->format);
  cmd->add_option("--min-runs", o->min_runs, "Timed runs per figure, at least")
      ->check(CLI::Range(3, 10000))
      ->default_str("15");
  cmd->add_option("--noise-threshold", o->noise_threshold,
                  "Flag a figure whose (p90 - p10) / median exceeds this")
      ->check(CLI::PositiveNumber)
      ->default_str("0.05");
  cmd->callback([o] { run_profile(*o); });
}

}  // namespace

void add_gpu_commands(CLI::App& app, const Context&) {
  add_profile_command(app);
}

}  // namespace lasnet::cli
