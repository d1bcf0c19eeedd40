// `lasnet schedule SPEC --hw NAME|FILE`: granularity per stage, fusion per block and CUDA
// streams, searched through the predictor. Prints the plan; writes the plan JSON, a Chrome
// trace of the planned timeline and the scheduled spec on request.
#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "context.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/common/file_io.hpp"
#include "lasnet/predictor/network.hpp"
#include "lasnet/predictor/spec.hpp"
#include "lasnet/profiler/validation.hpp"
#include "lasnet/scheduler/report.hpp"
#include "lasnet/scheduler/search.hpp"

namespace lasnet::cli {

namespace {

namespace fs = std::filesystem;

struct ScheduleOptions {
  std::string spec;
  std::string hw;
  std::optional<double> density;
  std::optional<double> budget_ms;
  double density_step = 0.01;
  std::int64_t streams = 1;
  std::int64_t threads = 1;
  double tolerance = 0.02;
  std::string fusion = "auto";
  std::optional<std::string> granularity;
  std::optional<std::int64_t> batch;
  Format format = Format::table;
  OutputTarget out;
  std::optional<fs::path> trace;
  std::optional<fs::path> plan;
  std::optional<fs::path> write_spec;
  bool kernels = false;
  bool graph = false;
};

void run_schedule(const Context& context, const ScheduleOptions& o) {
  // Refuse to overwrite before spending any time on the search.
  const Overwrite overwrite = o.out.force ? Overwrite::allow : Overwrite::refuse;
  for (const auto& file : {o.out.file, o.trace, o.plan, o.write_spec}) {
    if (file && overwrite == Overwrite::refuse && fs::exists(*file)) {
      throw Error(fmt::format("{}: already exists (use --force to overwrite)", file->string()));
    }
  }
  predictor::Spec spec = predictor::load_spec(o.spec);
  if (o.batch) spec.batch = *o.batch;
  const predictor::Profile profile = resolve_profile(context, o.hw);
  if (o.graph && !(profile.graph_launch_overhead_s > 0)) {
    fmt::print(stderr,
               "note: --graph: profile '{}' has no graph_launch_overhead_s (measure it with "
               "`lasnet profile`); kernels are priced at its stream launch cost\n",
               profile.name);
  }
  const predictor::Profile hw = o.graph ? predictor::graph_launched(profile) : profile;

  scheduler::SearchRequest request;
  request.max_streams = o.streams;
  request.threads = o.threads;
  request.granularity_tolerance = o.tolerance;
  request.density_step = o.density_step;
  if (o.kernels) {
    request.kernel_schedule = profiler::project_kernel_schedule(static_cast<int>(hw.sm_count));
  }
  if (o.budget_ms) {
    if (o.density) throw Error("--density and --budget-ms are exclusive: give one objective");
    if (!(*o.budget_ms > 0))
      throw Error(fmt::format("--budget-ms must be positive, got {}", *o.budget_ms));
    request.objective = scheduler::Objective::max_density;
    request.budget_s = *o.budget_ms * 1e-3;
  } else {
    if (o.density && !(*o.density >= 0 && *o.density <= 1)) {
      throw Error(fmt::format("--density: {} is outside [0, 1]", *o.density));
    }
    request.density = o.density;
  }
  if (o.fusion != "auto") request.fusions = {predictor::parse_fusion(o.fusion, "--fusion")};
  if (o.granularity) {
    if (spec.dynamic.mode != predictor::DynamicMode::spatial) {
      throw Error(fmt::format("--granularity: the spec is in {} mode, which has no granularity",
                              predictor::to_string(spec.dynamic.mode)));
    }
    const auto fixed = predictor::parse_granularity(*o.granularity, "--granularity");
    predictor::Spec checked = spec;  // validates count and fit, with the predictor's messages
    predictor::set_granularity(checked, fixed, "--granularity");
    for (const auto s : fixed) request.granularity.push_back({s});
  }

  scheduler::Plan plan = scheduler::search(spec, hw, request);
  plan.graph_launches = o.graph;
  const std::string plan_json = scheduler::plan_to_json(plan, spec, hw);
  if (o.plan) write_file_atomic(*o.plan, plan_json, overwrite);
  if (o.trace) {
    const std::string title =
        fmt::format("lasnet plan: {} on {}, {} stream(s)", spec.name, hw.name, plan.streams);
    write_file_atomic(*o.trace, scheduler::chrome_trace(plan.graph, plan.schedule, title),
                      overwrite);
  }
  if (o.write_spec) {
    if (!plan.feasibility.ok) {
      throw Error(
          fmt::format("not writing {}: {}", o.write_spec->string(), plan.feasibility.reason));
    }
    write_file_atomic(*o.write_spec, predictor::spec_to_json(scheduler::scheduled_spec(spec, plan)),
                      overwrite);
  }
  switch (o.format) {
    case Format::table:
      emit(o.out, scheduler::plan_table(plan, spec, hw));
      break;
    case Format::json:
      emit(o.out, plan_json);
      break;
    case Format::csv:
      emit(o.out, scheduler::plan_csv(plan));
      break;
  }
}

}  // namespace

void add_schedule_command(CLI::App& app, const Context& context) {
  auto o = std::make_shared<ScheduleOptions>();
  auto* cmd = app.add_subcommand(
      "schedule",
      "Search granularity per stage, kernel fusion and CUDA streams with the predictor");
  cmd->add_option("spec", o->spec, "Model spec JSON (see examples/)")->required();
  cmd->add_option("--hw", o->hw, "Hardware profile: a name from `lasnet hw list` or a JSON file")
      ->required();
  auto* density = cmd->add_option(
      "--density", o->density,
      "Objective: lowest latency at this activation rate of every dynamic block, in [0, 1] "
      "(default: the spec's own densities)");
  auto* budget = cmd->add_option(
      "--budget-ms", o->budget_ms,
      "Objective: the largest density whose best plan meets this latency budget (ms)");
  density->excludes(budget);
  cmd->add_option("--density-step", o->density_step,
                  "Resolution of the density scan for --budget-ms")
      ->check(CLI::Range(1e-4, 1.0))
      ->default_str("0.01");
  cmd->add_option("--streams", o->streams,
                  "Most CUDA streams the plan may use (every count from 1 is tried)")
      ->check(CLI::Range(1, 64))
      ->default_str("1");
  cmd->add_option("--threads", o->threads,
                  "Threads that price candidates; the plan is identical for every count")
      ->check(CLI::Range(1, 256))
      ->default_str("1");
  cmd->add_option("--tolerance", o->tolerance,
                  "Recommend per stage the finest S whose predicted latency is within this "
                  "fraction of the fastest S (finer patches keep more accuracy); 0 = the fastest")
      ->check(CLI::Range(0.0, 1.0))
      ->default_str("0.02");
  cmd->add_option("--fusion", o->fusion,
                  "auto (search every fusion per block, union forms included), or fix it: none, "
                  "all, or a list of union,masker,gather,scatter")
      ->default_str("auto");
  cmd->add_option("--granularity", o->granularity,
                  "Fix the patch size per stage, e.g. 4-4-2-1 (default: search every S that "
                  "tiles each stage's map)");
  cmd->add_option("--batch", o->batch, "Batch size (overrides the spec)")
      ->check(CLI::Range(std::int64_t{1}, predictor::max_batch));
  add_format_option(*cmd, o->format);
  add_output_options(*cmd, o->out, "Write the report to this file instead of stdout");
  cmd->add_flag("--kernels", o->kernels,
                "Price each conv at the schedule this project's CUDA kernels run it with (as "
                "`predict --kernels`; what `lasnet run` times) instead of the model's best tile");
  cmd->add_flag("--graph", o->graph,
                "Price every kernel as a node of one CUDA graph, as `lasnet run` launches them "
                "(the profile's graph_launch_overhead_s per launch instead of launch_overhead_s)");
  cmd->add_option("--plan", o->plan,
                  "Also write the plan JSON (fusion and stream of every kernel) to this file");
  cmd->add_option("--trace", o->trace,
                  "Write a Chrome/Perfetto trace (JSON) of the planned timeline, one track per "
                  "stream");
  cmd->add_option("--write-spec", o->write_spec,
                  "Write the spec with the chosen granularity and density, for predict and "
                  "validate");
  cmd->callback([&context, o] { run_schedule(context, *o); });
}

}  // namespace lasnet::cli
