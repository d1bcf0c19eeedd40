// `lasnet sample --count N --seed K --out DIR`: random model specs for blind accuracy protocols,
// sized through the predictor (docs/profiler.md, "Random networks").
#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <string>

#include "context.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/common/file_io.hpp"
#include "lasnet/predictor/sample.hpp"
#include "lasnet/profiler/plan.hpp"

namespace lasnet::cli {

namespace {

struct SampleCommandOptions {
  std::int64_t count = 0;
  std::uint64_t seed = 0;
  std::int64_t first = 0;
  std::filesystem::path out;
  bool force = false;
  bool runnable = false;
  std::string hw = "h100-calibrated";
};

void run_sample(const Context& context, const SampleCommandOptions& o) {
  predictor::SampleOptions options;
  options.seed = o.seed;
  options.count = o.count;
  options.first = o.first;
  options.space = o.runnable ? predictor::runnable_space() : predictor::full_space();
  const predictor::Profile hw = resolve_profile(context, o.hw);

  std::vector<std::string> names;
  for (std::int64_t i = 0; i < o.count; ++i) {
    names.push_back(fmt::format("sample_{:04}.json", o.first + i));
  }
  // Refuse before drawing anything, so a refused run leaves the folder as it was.
  if (std::filesystem::exists(o.out) && !std::filesystem::is_directory(o.out)) {
    throw Error(fmt::format("--out: {} exists and is not a directory", o.out.string()));
  }
  if (!o.force) {
    for (const auto& name : names) {
      if (std::filesystem::exists(o.out / name)) {
        throw Error(
            fmt::format("{}: already exists (use --force to overwrite)", (o.out / name).string()));
      }
    }
    if (std::filesystem::exists(o.out / "index.json")) {
      throw Error(fmt::format("{}: already exists (use --force to overwrite)",
                              (o.out / "index.json").string()));
    }
  }
  const predictor::SampleFilter filter =
      o.runnable ? predictor::SampleFilter(profiler::runnable_on_kernels)
                 : predictor::SampleFilter{};
  const auto samples = predictor::sample_specs(options, hw, filter);
  std::filesystem::create_directories(o.out);
  const Overwrite overwrite = o.force ? Overwrite::allow : Overwrite::refuse;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    write_file_atomic(o.out / names[i], predictor::spec_to_json(samples[i].spec), overwrite);
  }
  write_file_atomic(o.out / "index.json",
                    predictor::sample_index_json(options, hw.name, samples, names), overwrite);
  fmt::print("{} specs (seed {}, generator {}{}) in {}\n", samples.size(), o.seed,
             predictor::sampler_version, o.runnable ? ", runnable on the kernels" : "",
             o.out.string());
}

}  // namespace

void add_sample_command(CLI::App& app, const Context& context) {
  auto o = std::make_shared<SampleCommandOptions>();
  auto* cmd = app.add_subcommand(
      "sample", "Write random model specs (and an index) for blind accuracy protocols");
  cmd->add_option("--count", o->count, "Number of specs")
      ->required()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{100000}));
  cmd->add_option("--seed", o->seed, "Seed: the same seed draws the same specs on every machine")
      ->required();
  cmd->add_option("--first", o->first,
                  "Index of the first spec (a second batch from the same seed continues here)")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1000000000}));
  cmd->add_option("--out", o->out, "Folder for the specs and index.json (created if missing)")
      ->required();
  cmd->add_flag("--force", o->force, "Overwrite existing spec files and index.json");
  cmd->add_flag("--runnable", o->runnable,
                "Only networks the project's CUDA kernels can time (bottleneck, regnety and "
                "inverted residual blocks, fp32/tf32, spatial mode), kept small");
  cmd->add_option("--hw", o->hw,
                  "Profile that sizes the networks by predicted dense latency "
                  "(default h100-calibrated)");
  cmd->callback([&context, o] { run_sample(context, *o); });
}

}  // namespace lasnet::cli
