// The GPU subcommands: `lasnet profile` (measure the local GPU into a hardware profile),
// `lasnet calibrate` (fit the predictor's free parameters to timed kernels) and
// `lasnet validate` (compare predictions with timed runs of a spec's blocks). Without a usable
// GPU each throws lasnet::Error from open_gpu(), which main() turns into exit status 2.
#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>

#include "context.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/common/file_io.hpp"
#include "lasnet/predictor/profile.hpp"
#include "lasnet/predictor/spec.hpp"
#include "lasnet/profiler/calibration.hpp"
#include "lasnet/profiler/gpu.hpp"
#include "lasnet/profiler/hardware.hpp"
#include "lasnet/profiler/network_run.hpp"
#include "lasnet/profiler/plan.hpp"
#include "lasnet/profiler/progress.hpp"
#include "lasnet/profiler/validation.hpp"

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

// What calibrate and validate share: the specs and configurations to run, and how to time them.
struct RunOptions {
  std::vector<std::string> specs;
  std::string hw;
  std::optional<std::string> batches;
  std::optional<std::string> densities;
  std::string granularity = "all";
  std::string fusion = "gather,scatter";
  std::optional<std::string> masks;
  bool no_dense = false;
  bool se = false;
  std::vector<std::filesystem::path> measurements;  // merged in order: the first's timing wins
  std::optional<std::filesystem::path> save_measurements;
  int device = 0;
  int min_runs = 10;
  double max_time_per_block_s = 0.5;
  double noise_threshold = 0.10;
  bool force = false;  // set from the command's --force (add_output_options)
  bool dry_run = false;
  bool measured_only = false;
};

void add_run_options(CLI::App& cmd, RunOptions& o) {
  cmd.add_option("specs", o.specs, "Model spec JSON files (see examples/)")->required();
  cmd.add_option("--hw", o.hw, "Hardware profile: a name from `lasnet hw list` or a JSON file")
      ->required();
  cmd.add_option("--batch", o.batches, "Batch sizes, a comma list (default: each spec's)");
  cmd.add_option("--density", o.densities,
                 "Densities, a comma list such as 0.3,0.5,0.8 (default: each spec's own)");
  cmd.add_option("--granularity", o.granularity,
                 "Which S per stage: all (every S that tiles the stage) or spec (the spec's own)")
      ->check(CLI::IsMember({"all", "spec"}))
      ->default_str("all");
  cmd.add_option(
         "--fusion", o.fusion,
         "Fused kernels in dynamic blocks: none, all, a list of union,masker,gather,scatter, "
         "each (every form but union, each a configuration of its own), or several "
         "joined by '/' (each/union,gather,scatter)")
      ->default_str("gather,scatter");
  cmd.add_option("--masks", o.masks,
                 "Which patches of dynamic blocks are active: uniform (the masker's own logits, "
                 "the default), clustered (blobs) or varied (density varies per image)")
      ->check(CLI::IsMember({"uniform", "clustered", "varied"}));
  cmd.add_flag("--no-dense", o.no_dense, "Leave out the dense blocks");
  cmd.add_flag("--se", o.se,
               "Time RegNetY's squeeze-excitation on the kernels (keys gain ' seN'; without it "
               "SE ops are not covered)");
  auto* measurements =
      cmd.add_option("--measurements", o.measurements,
                     "Timings saved by --save-measurements: used instead of the GPU "
                     "(configurations they lack are measured); repeat it to merge files of one "
                     "kernels version, the first file's timing of a configuration winning")
          ->allow_extra_args(false);
  cmd.add_flag("--measured-only", o.measured_only,
               "Leave out (and list as not covered) the configurations the --measurements lack "
               "instead of timing them; needs no GPU (timings made before a kernel existed)")
      ->needs(measurements);
  cmd.add_option("--save-measurements", o.save_measurements,
                 "Save the timings (all of them, loaded and new) to this file");
  cmd.add_option("--device", o.device, "CUDA device index")->default_str("0");
  cmd.add_option("--min-runs", o.min_runs, "Timed runs per block configuration, at least")
      ->check(CLI::Range(3, 10000))
      ->default_str("10");
  cmd.add_option("--max-time-per-block", o.max_time_per_block_s,
                 "Seconds of timed runs per block configuration and mode, at most")
      ->check(CLI::PositiveNumber)
      ->default_str("0.5");
  cmd.add_option("--noise-threshold", o.noise_threshold,
                 "Flag a timing whose (p90 - p10) / median exceeds this")
      ->check(CLI::PositiveNumber)
      ->default_str("0.10");
  cmd.add_flag("--dry-run", o.dry_run,
               "List the block configurations that would be timed (those the measurements lack) "
               "and stop; needs no GPU");
}

std::vector<profiler::PlannedBlock> plan_runs(const RunOptions& o) {
  profiler::PlanOptions plan;
  if (o.batches) plan.batches = profiler::parse_int_list(*o.batches, "--batch");
  if (o.densities) {
    plan.densities = profiler::parse_number_list(*o.densities, "--density");
    for (const double d : plan.densities) {
      if (d < 0 || d > 1) throw Error(fmt::format("--density: {} is outside [0, 1]", d));
    }
  }
  plan.granularity = o.granularity == "spec" ? profiler::GranularityChoice::spec
                                             : profiler::GranularityChoice::all;
  plan.fusions = profiler::parse_fusion_forms(o.fusion, "--fusion");
  plan.dense = !o.no_dense;
  plan.se = o.se;
  if (o.masks) plan.masks = *parse_mask_model(*o.masks);  // CLI11 checked the name
  std::vector<profiler::PlannedBlock> all;
  for (const auto& file : o.specs) {
    const predictor::Spec spec = predictor::load_spec(file);
    try {
      auto blocks = profiler::plan_spec(spec, plan);
      all.insert(all.end(), std::make_move_iterator(blocks.begin()),
                 std::make_move_iterator(blocks.end()));
    } catch (const Error& e) {
      throw Error(fmt::format("while planning {}: {}", file, e.what()));
    }
  }
  return all;
}

// The --measurements files, joined with " + " (by file name only where `short_names`).
std::string measurement_files(const RunOptions& o, bool short_names) {
  std::string out;
  for (const auto& file : o.measurements) {
    if (!out.empty()) out += " + ";
    out += short_names ? file.filename().string() : file.string();
  }
  return out;
}

// --measured-only: the blocks the measurements lack are not covered, with the reason, rather
// than timed (compare and calibrate then leave them out as they do what the kernels cannot run).
void leave_out_unmeasured(std::vector<profiler::PlannedBlock>& plan,
                          const profiler::MeasurementSet& measured, const RunOptions& o) {
  if (!o.measured_only) return;
  for (auto& b : plan) {
    if (!b.runnable || measured.find(b.job.key) != nullptr) continue;
    b.runnable = false;
    b.reason = fmt::format("not in {} (--measured-only)", measurement_files(o, true));
  }
}

// The timings of every job of the plan: loaded, and what is missing measured on the GPU.
profiler::MeasurementSet measure(const std::vector<profiler::PlannedBlock>& plan,
                                 const RunOptions& o) {
  const auto jobs = profiler::distinct_jobs(plan);
  profiler::MeasurementSet set;
  bool loaded = false;
  for (const auto& file : o.measurements) {
    auto more = profiler::load_measurements(file);
    if (!loaded) {
      set = std::move(more);
      loaded = true;
    } else if (more.kernels_version != set.kernels_version) {
      // One fit over two kernel versions would mix what it measures.
      const auto version = [](const std::string& v) { return v.empty() ? "(none)" : v; };
      throw Error(fmt::format("{}: kernels version {} differs from {}'s {}", file.string(),
                              version(more.kernels_version), o.measurements.front().string(),
                              version(set.kernels_version)));
    } else {
      profiler::merge_measurements(set, more);
    }
  }
  std::vector<profiler::BlockJob> missing;
  for (const auto& job : jobs) {
    if (set.find(job.key) == nullptr) missing.push_back(job);
  }
  if (o.dry_run) {
    for (const auto& job : missing) fmt::print("{}\n", job.key);
    // What the kernels cannot run, once per block and reason (validate leaves these out).
    std::vector<std::string> not_covered;
    for (const auto& b : plan) {
      if (b.runnable) continue;
      auto line = fmt::format("{} {}: {}", b.spec, b.graph.name, b.reason);
      if (std::find(not_covered.begin(), not_covered.end(), line) == not_covered.end()) {
        not_covered.push_back(std::move(line));
      }
    }
    for (const auto& line : not_covered) fmt::print(stderr, "not covered: {}\n", line);
    fmt::print(stderr, "{} distinct block configurations, {} to time ({} planned blocks)\n",
               jobs.size(), missing.size(), plan.size());
    return set;
  }
  if (!missing.empty() && o.measured_only) {
    fmt::print(stderr, "--measured-only: {} of {} block configurations are not in {}: left out\n",
               missing.size(), jobs.size(), measurement_files(o, false));
  } else if (!missing.empty()) {
    if (o.save_measurements && !o.force && std::filesystem::exists(*o.save_measurements)) {
      throw Error(fmt::format("{}: already exists (use --force to overwrite)",
                              o.save_measurements->string()));
    }
    auto gpu = profiler::open_gpu(o.device);
    fmt::print(stderr, "timing {} block configurations on {}; clocks: {}\n", missing.size(),
               gpu->info().name, gpu->clock_state().describe());
    profiler::SamplingPlan sampling;
    sampling.warmup_runs = 2;
    sampling.min_runs = o.min_runs;
    sampling.min_time_s = 0.005;
    sampling.max_time_s = o.max_time_per_block_s;
    sampling.noise_threshold = o.noise_threshold;
    profiler::ProgressBar bar(profiler::stderr_sink(), profiler::stderr_is_terminal(), "timing");
    auto fresh = gpu->time_blocks(missing, sampling,
                                  [&](std::string_view step, std::size_t done, std::size_t total) {
                                    bar.update(step, done, total);
                                  });
    fmt::print(stderr, "clocks after: {}\n", fresh.clocks_after.describe());
    std::size_t noisy = 0, unsupported = 0;
    for (const auto& b : fresh.blocks) {
      if (!b.supported) ++unsupported;
      if (b.noisy) ++noisy;
    }
    if (noisy > 0) {
      fmt::print(stderr, "warning: {} of {} block timings are noisy (spread over {:.0f}%)\n", noisy,
                 fresh.blocks.size(), 100 * o.noise_threshold);
    }
    if (unsupported > 0) {
      fmt::print(stderr, "note: the kernels refused {} configuration(s)\n", unsupported);
    }
    if (loaded) {
      profiler::merge_measurements(set, fresh);
    } else {
      set = std::move(fresh);
    }
  }
  if (o.save_measurements) {
    write_file_atomic(*o.save_measurements, profiler::measurements_to_json(set),
                      o.force ? Overwrite::allow : Overwrite::refuse);
  }
  return set;
}

std::string describe_command(std::string_view name, const RunOptions& o, std::string_view outputs) {
  std::string text = fmt::format("lasnet {}", name);
  for (const auto& s : o.specs) text += " " + s;
  text += " --hw " + o.hw;
  if (o.batches) text += " --batch " + *o.batches;
  if (o.densities) text += " --density " + *o.densities;
  text += " --granularity " + o.granularity + " --fusion " + o.fusion;
  if (o.masks) text += " --masks " + *o.masks;
  if (o.no_dense) text += " --no-dense";
  if (o.se) text += " --se";
  for (const auto& file : o.measurements) text += " --measurements " + file.string();
  if (o.measured_only) text += " --measured-only";
  return text + std::string(outputs);
}

void refuse_existing(const std::optional<std::filesystem::path>& file, bool force) {
  if (file && !force && std::filesystem::exists(*file)) {
    throw Error(fmt::format("{}: already exists (use --force to overwrite)", file->string()));
  }
}

struct ValidateOptions {
  RunOptions run;
  Format format = Format::table;
  OutputTarget out;
  std::optional<std::filesystem::path> json, csv, svg;
  std::optional<std::filesystem::path> record;  // the profile, with this validation's summary
  bool network = false;                         // also whole networks through `run`
};

// `validate --network`: each spec run whole (stem, blocks at the spec's S, head) on one stream
// as `lasnet run` does, per batch and configuration, as network rows of the report.
void add_whole_networks(profiler::ValidationReport& report, const RunOptions& o,
                        const predictor::Profile& hw) {
  std::vector<profiler::Comparison> rows;
  std::unique_ptr<profiler::Gpu> gpu;
  profiler::NetworkRunOptions options;
  options.runs = std::max(o.min_runs, 10);
  const auto fusions = profiler::network_fusions(o.fusion, "--fusion");
  for (const auto& file : o.specs) {
    const predictor::Spec base = predictor::load_spec(file);
    const std::vector<std::int64_t> batches = o.batches
                                                  ? profiler::parse_int_list(*o.batches, "--batch")
                                                  : std::vector<std::int64_t>{base.batch};
    std::vector<std::optional<double>> densities;
    if (o.densities) {
      for (const double d : profiler::parse_number_list(*o.densities, "--density")) {
        densities.emplace_back(d);
      }
    } else if (base.dynamic.enabled) {
      densities.emplace_back(std::nullopt);
    }
    for (const auto batch : batches) {
      predictor::Spec spec = base;
      spec.batch = batch;
      std::vector<std::pair<std::string, profiler::NetworkProgram>> programs;
      if (!o.no_dense) programs.emplace_back("", profiler::spec_program(spec, hw, false));
      for (const auto& d : densities) {
        predictor::Spec dyn = spec;
        if (d) predictor::set_density(dyn, *d, "--density");
        for (const auto& fusion : fusions) {
          std::string label = d ? fmt::format("{:g}", *d) : std::string("spec");
          if (fusions.size() > 1 && fusion) label += " " + predictor::to_string(*fusion);
          programs.emplace_back(std::move(label), profiler::spec_program(dyn, hw, true, fusion));
        }
      }
      for (const auto& [density, program] : programs) {
        if (const auto missing = program.not_covered(); !missing.empty()) {
          report.notes.push_back(fmt::format("whole network {} batch {} {} not run: {}", spec.name,
                                             batch, program.label, missing.front()));
          continue;
        }
        if (!gpu) gpu = profiler::open_gpu(o.device);
        fmt::print(stderr, "running {} batch {} {} whole\n", spec.name, batch, program.label);
        const auto m = gpu->run_network(program, options, {});
        profiler::Comparison c;
        c.level = profiler::Level::network;
        c.spec = spec.name;
        c.batch = batch;
        c.dynamic = program.dynamic;
        c.density = program.dynamic ? density : "";
        c.name = spec.name + " (whole)";
        c.kind = "whole network";
        c.predicted_s = program.predicted_s;
        c.measured_s = m.latency_s.median;
        c.measured_p10_s = m.latency_s.p10;
        c.measured_p90_s = m.latency_s.p90;
        c.noisy = m.latency_s.relative_spread() > o.noise_threshold;
        rows.push_back(std::move(c));
      }
    }
  }
  profiler::add_whole_network_rows(report, rows);
}

void run_validate(const Context& context, const ValidateOptions& o) {
  const predictor::Profile hw = resolve_profile(context, o.run.hw);
  const bool force = o.out.force;
  RunOptions run = o.run;
  run.force = force;
  for (const auto* f : {&o.out.file, &o.json, &o.csv, &o.svg, &o.record}) {
    refuse_existing(*f, force);
  }
  auto plan = plan_runs(run);
  const auto measured = measure(plan, run);
  if (run.dry_run) return;
  leave_out_unmeasured(plan, measured, run);
  auto report = profiler::compare(plan, measured, hw);
  report.command = describe_command("validate", o.run, o.network ? " --network" : "");
  if (o.network) add_whole_networks(report, run, hw);
  const Overwrite overwrite = force ? Overwrite::allow : Overwrite::refuse;
  if (o.json) write_file_atomic(*o.json, profiler::render_json(report), overwrite);
  if (o.csv) write_file_atomic(*o.csv, profiler::render_csv(report), overwrite);
  if (o.svg) write_file_atomic(*o.svg, profiler::render_svg(report), overwrite);
  if (o.record) {
    // The profile as it was scored, with the scores: `hw list` shows them from then on.
    const auto found = report.metrics.find(profiler::Level::op);
    if (found == report.metrics.end() || found->second.count == 0) {
      throw Error("validate --record: no kernel step was compared");
    }
    const auto& op = found->second;
    predictor::Profile scored = hw;
    predictor::ValidationSummary v;
    v.date = profiler::utc_now_iso8601();
    v.report = report.command;
    v.kernels = op.count;
    v.kernel_mape = op.mape;
    v.kernel_within_15 = op.within_15;
    if (const auto it = report.metrics.find(profiler::Level::network);
        it != report.metrics.end() && it->second.count > 0) {
      v.networks = it->second.count;
      v.network_within_10 = it->second.within_10;
      v.network_worst = it->second.max_abs_error;
    }
    scored.provenance.validation = v;
    write_file_atomic(*o.record, predictor::profile_to_json(scored), overwrite);
  }
  std::string text;
  switch (o.format) {
    case Format::table:
      text = profiler::render_table(report);
      break;
    case Format::json:
      text = profiler::render_json(report);
      break;
    case Format::csv:
      text = profiler::render_csv(report);
      break;
  }
  OutputTarget target = o.out;
  target.force = force;
  emit(target, text);
}

void add_validate_command(CLI::App& app, const Context& context) {
  auto o = std::make_shared<ValidateOptions>();
  auto* cmd = app.add_subcommand(
      "validate",
      "Run every block of the specs with the real kernels and compare measured with predicted "
      "latency (per op, block, stage and network)");
  add_run_options(*cmd, o->run);
  add_format_option(*cmd, o->format);
  add_output_options(*cmd, o->out, "Write the report to this file instead of stdout");
  cmd->add_option("--json", o->json, "Also write the report as JSON to this file");
  cmd->add_option("--csv", o->csv, "Also write every comparison as CSV to this file");
  cmd->add_option("--svg", o->svg,
                  "Also write a scatter plot (predicted vs measured, log-log) to this file");
  cmd->add_flag("--network", o->network,
                "Also run each spec whole on the GPU (stem, blocks at the spec's S, head; one "
                "stream, as `lasnet run`) per batch and configuration: whole-network rows");
  cmd->add_option("--record", o->record,
                  "Also write the profile with this validation's summary in its provenance (what "
                  "`hw list` shows) to this file");
  cmd->callback([&context, o] { run_validate(context, *o); });
}

struct CalibrateOptions {
  RunOptions run;
  Format format = Format::table;
  OutputTarget out;
  std::optional<std::filesystem::path> report;
  std::string name;
  bool fit_launch = false;
  bool no_op_scale = false;
  bool no_op_offset = false;
  bool split_compute = false;
  bool no_gemm_round = false;
  double memory_prior = profiler::CalibrationOptions{}.memory_prior;
};

void run_calibrate(const Context& context, const CalibrateOptions& o) {
  const predictor::Profile base = resolve_profile(context, o.run.hw);
  const bool force = o.out.force;
  RunOptions run = o.run;
  run.force = force;
  refuse_existing(o.out.file, force);
  refuse_existing(o.report, force);
  auto plan = plan_runs(run);
  const auto measured = measure(plan, run);
  if (run.dry_run) return;
  leave_out_unmeasured(plan, measured, run);
  profiler::CalibrationOptions options;
  options.fit_launch = o.fit_launch;
  options.fit_op_scale = !o.no_op_scale;
  options.fit_op_offset = !o.no_op_offset;
  options.fit_compute_scale = o.split_compute;
  options.fit_gemm_round = !o.no_gemm_round;
  options.memory_prior = o.memory_prior;
  auto result = profiler::calibrate(plan, measured, base, options);
  result.profile.name = o.name.empty() ? base.name + "-calibrated" : o.name;
  const std::string json = predictor::profile_to_json(result.profile);
  (void)predictor::parse_profile(json, "the calibrated profile");
  const Overwrite overwrite = force ? Overwrite::allow : Overwrite::refuse;
  if (o.report) write_file_atomic(*o.report, profiler::calibration_json(result), overwrite);
  OutputTarget target = o.out;
  target.force = force;
  if (target.file) {
    emit(target, json);
    fmt::print("{}", o.format == Format::json ? profiler::calibration_json(result)
                                              : profiler::calibration_table(result));
    fmt::print(stderr, "wrote {}\n", target.file->string());
  } else {
    fmt::print(stderr, "{}", profiler::calibration_table(result));
    emit(target, json);
  }
}

void add_calibrate_command(CLI::App& app, const Context& context) {
  auto o = std::make_shared<CalibrateOptions>();
  auto* cmd = app.add_subcommand(
      "calibrate",
      "Time the kernels over the blocks of the specs and fit the profile's free parameters "
      "(efficiencies, launch cost, per-op-kind scales) by least squares on log latency");
  add_run_options(*cmd, o->run);
  add_format_option(*cmd, o->format);
  add_output_options(*cmd, o->out,
                     "Write the calibrated profile here (the fit goes to stdout) instead of "
                     "stdout (the fit then goes to stderr)");
  cmd->add_option("--report", o->report, "Also write the fit as JSON to this file");
  cmd->add_option("--name", o->name, "The calibrated profile's name (default: BASE-calibrated)");
  cmd->add_flag("--fit-launch", o->fit_launch,
                "Also fit the launch overhead (default: keep the profile's measured one)");
  cmd->add_flag("--no-op-scale", o->no_op_scale, "Fit no per-operator-class scales (nor offsets)");
  cmd->add_flag("--no-op-offset", o->no_op_offset, "Fit no per-operator-class fixed costs");
  cmd->add_flag("--no-gemm-round", o->no_gemm_round,
                "Fit no fixed cost per round of the implicit GEMM's tiles (gemm_round_s)");
  cmd->add_option("--memory-prior", o->memory_prior,
                  "Weight of the prior holding each GEMM variant's memory factor at the GPU-wide "
                  "rates (default 1, about one kernel step's worth; 0: none)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--split-compute", o->split_compute,
                "Also fit, per class priced at a kernel's schedule, a factor on its compute time "
                "alone (needs training shapes that are compute- and memory-bound in each class, "
                "e.g. ResNet-50 with profiler/probes/)");
  cmd->callback([&context, o] { run_calibrate(context, *o); });
}

}  // namespace

void add_gpu_commands(CLI::App& app, const Context& context) {
  add_profile_command(app);
  add_calibrate_command(app, context);
  add_validate_command(app, context);
}

}  // namespace lasnet::cli
