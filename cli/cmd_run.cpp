// `lasnet run`: a spec or a `schedule --plan` file built whole on the GPU (stem, blocks, head)
// and timed as a CUDA graph over the plan's streams, beside the predictor's figures, for the
// plan as given, the same network on one stream, and dense (docs/scheduler.md, "Running a
// plan"). --dry-run prints the launches and needs no GPU; without one the command exits 2.
#include <fmt/format.h>

#include <memory>
#include <optional>
#include <string>

#include "context.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/common/file_io.hpp"
#include "lasnet/predictor/profile.hpp"
#include "lasnet/predictor/spec.hpp"
#include "lasnet/profiler/gpu.hpp"
#include "lasnet/profiler/network_run.hpp"
#include "lasnet/profiler/progress.hpp"

namespace lasnet::cli {

namespace {

struct RunCommandOptions {
  std::string file;
  std::optional<std::string> spec;
  std::string hw;
  std::optional<std::int64_t> batch;
  std::optional<std::string> precision;
  std::optional<double> density;
  std::optional<std::string> granularity;
  std::optional<std::string> fusion;
  int runs = 50;
  int warmup = 5;
  bool warm_l2 = false;
  bool no_dense = false;
  int device = 0;
  Format format = Format::table;
  OutputTarget out;
  std::optional<std::filesystem::path> trace;
  bool dry_run = false;
};

std::string describe(const RunCommandOptions& o) {
  std::string text = "lasnet run " + o.file;
  if (o.spec) text += " --spec " + *o.spec;
  text += " --hw " + o.hw;
  if (o.batch) text += fmt::format(" --batch {}", *o.batch);
  if (o.precision) text += " --precision " + *o.precision;
  if (o.density) text += fmt::format(" --density {}", *o.density);
  if (o.granularity) text += " --granularity " + *o.granularity;
  if (o.fusion) text += " --fusion " + *o.fusion;
  text += fmt::format(" --runs {} --warmup {}", o.runs, o.warmup);
  if (o.warm_l2) text += " --warm-l2";
  if (o.no_dense) text += " --no-dense";
  return text;
}

void run_run(const Context& context, const RunCommandOptions& o) {
  if (o.format == Format::csv) throw Error("--format csv: run reports as a table or as JSON");
  for (const auto* f : {&o.out.file, &o.trace}) {
    if (*f && !o.out.force && std::filesystem::exists(**f)) {
      throw Error(fmt::format("{}: already exists (use --force to overwrite)", (*f)->string()));
    }
  }
  const std::string text = read_text_file(o.file);
  const bool is_plan = profiler::is_plan_document(text);
  if (is_plan && !o.spec) {
    throw Error(fmt::format(
        "{}: is a plan, which names its spec but does not hold it: give the spec it was "
        "scheduled from with --spec (the same file, or schedule's --write-spec output)",
        o.file));
  }
  if (!is_plan && o.spec) {
    throw Error(fmt::format("--spec: only with a plan file ({} is a spec)", o.file));
  }
  if (is_plan && (o.density || o.granularity || o.fusion)) {
    throw Error(
        "--density, --granularity and --fusion: a plan fixes them (give them to "
        "`lasnet schedule` instead)");
  }
  predictor::Spec spec = predictor::load_spec(is_plan ? *o.spec : o.file);
  if (o.batch) spec.batch = *o.batch;
  if (o.precision) predictor::set_precision(spec, *o.precision, "--precision");
  if (o.granularity) {
    predictor::set_granularity(spec, predictor::parse_granularity(*o.granularity, "--granularity"),
                               "--granularity");
  }
  if (o.density) predictor::set_density(spec, *o.density, "--density");
  std::optional<predictor::Fusion> fusion;
  if (o.fusion) fusion = predictor::parse_fusion(*o.fusion, "--fusion");
  const predictor::Profile profile = resolve_profile(context, o.hw);

  profiler::RunReport report;
  report.command = describe(o);
  report.spec = spec.name;
  report.plan = is_plan ? o.file : "";
  report.hardware = profile.name;
  report.batch = spec.batch;
  report.precision = spec.precision;
  report.options.runs = o.runs;
  report.options.warmup = o.warmup;
  report.options.flush_l2 = !o.warm_l2;
  // The program as given, then the same on one stream (where it has more), then dense (where
  // it is dynamic).
  // A plan was priced as `schedule --kernels` says; the dense row is priced the same way.
  std::optional<profiler::PlanFile> plan;
  if (is_plan) plan = profiler::parse_plan(text, o.file);
  const bool kernel_schedules = !plan || plan->kernel_schedules;
  // Every program runs as one CUDA graph, so its kernels are priced at the graph's launch cost
  // (where the profile measured it); a plan made without `schedule --graph` keeps its stream
  // pricing, and the dense row follows it so that the rows stay comparable.
  const predictor::Profile hw =
      !plan || plan->graph_launches ? predictor::graph_launched(profile) : profile;
  profiler::NetworkProgram given = plan ? profiler::plan_program(spec, *plan, hw)
                                        : profiler::spec_program(spec, hw, true, fusion);
  const bool dynamic = given.dynamic;
  const bool several = given.streams > 1;
  report.rows.push_back({given, std::nullopt});
  if (several) report.rows.push_back({profiler::single_stream(given), std::nullopt});
  if (dynamic && !o.no_dense) {
    report.rows.push_back(
        {profiler::spec_program(spec, hw, false, std::nullopt, kernel_schedules), std::nullopt});
  }

  std::vector<std::string> missing;
  for (const auto& r : report.rows) {
    for (auto& line : r.program.not_covered()) {
      if (std::find(missing.begin(), missing.end(), line) == missing.end()) {
        missing.push_back(std::move(line));
      }
    }
  }
  if (o.dry_run) {
    for (const auto& r : report.rows) fmt::print("{}\n", profiler::program_table(r.program));
    return;
  }
  if (!missing.empty()) {
    throw Error(
        fmt::format("{}: the kernels cannot run {} unit(s) of the network, so it cannot "
                    "run whole: {}",
                    spec.name, missing.size(), fmt::join(missing, "; ")));
  }
  auto gpu = profiler::open_gpu(o.device);
  fmt::print(stderr, "running {} on {}; clocks: {}\n", spec.name, gpu->info().name,
             gpu->clock_state().describe());
  for (auto& r : report.rows) {
    profiler::ProgressBar bar(profiler::stderr_sink(), profiler::stderr_is_terminal(),
                              "run " + r.program.label);
    r.measured = gpu->run_network(r.program, report.options,
                                  [&](std::string_view step, std::size_t done, std::size_t total) {
                                    bar.update(step, done, total);
                                  });
  }
  const Overwrite overwrite = o.out.force ? Overwrite::allow : Overwrite::refuse;
  if (o.trace) {
    write_file_atomic(*o.trace, profiler::run_trace(given, *report.rows.front().measured),
                      overwrite);
  }
  const std::string json = profiler::run_json(report);
  if (o.out.file) write_file_atomic(*o.out.file, json, overwrite);
  fmt::print("{}", o.format == Format::json ? json : profiler::run_table(report));
}

}  // namespace

void add_run_command(CLI::App& app, const Context& context) {
  auto o = std::make_shared<RunCommandOptions>();
  auto* cmd = app.add_subcommand(
      "run",
      "Build a whole network (stem, blocks, head) on the GPU from a spec or a `schedule --plan` "
      "file, run it on the plan's streams as a CUDA graph, and compare measured with predicted "
      "latency: the plan, the same on one stream, and dense");
  cmd->add_option("file", o->file, "A model spec, or a plan JSON written by schedule --plan")
      ->required();
  cmd->add_option("--spec", o->spec, "With a plan: the spec it was scheduled from");
  cmd->add_option("--hw", o->hw, "Hardware profile: a name from `lasnet hw list` or a JSON file")
      ->required();
  cmd->add_option("--batch", o->batch,
                  "Override the spec's batch (a plan's: the batch it was "
                  "scheduled at)")
      ->check(CLI::Range(std::int64_t{1}, predictor::max_batch));
  cmd->add_option("--precision", o->precision, "Override the precision (fp32, tf32)");
  cmd->add_option("--density", o->density, "A spec's density for every dynamic block")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--granularity", o->granularity, "A spec's S per stage, such as 4-4-2-1");
  cmd->add_option("--fusion", o->fusion,
                  "A spec's fusion for every dynamic block: none, all, or masker,gather,scatter");
  cmd->add_option("--runs", o->runs, "Timed runs of the CUDA graph per program")
      ->check(CLI::Range(3, 100000))
      ->default_str("50");
  cmd->add_option("--warmup", o->warmup, "Untimed runs before them")
      ->check(CLI::Range(0, 100000))
      ->default_str("5");
  cmd->add_flag("--warm-l2", o->warm_l2, "Do not clear the L2 before each timed run");
  cmd->add_flag("--no-dense", o->no_dense, "Leave out the dense network");
  cmd->add_option("--device", o->device, "CUDA device index")->default_str("0");
  add_format_option(*cmd, o->format);
  add_output_options(*cmd, o->out, "Also write the report as JSON to this file");
  cmd->add_option("--trace", o->trace,
                  "Write a Chrome/Perfetto trace here: the measured eager timeline (one track per "
                  "stream) above the predicted one");
  cmd->add_flag("--dry-run", o->dry_run,
                "Print every launch (stream, waits, predicted times) and stop; needs no GPU");
  cmd->callback([&context, o] { run_run(context, *o); });
}

}  // namespace lasnet::cli
