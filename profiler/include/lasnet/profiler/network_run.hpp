#pragma once
// A whole network as the GPU runs it (`lasnet run`): the ordered kernel launches of its stem,
// blocks, layer stages and head, each on a stream with the events it waits for, and the
// predictor's time for each. Built from a spec (one stream) or from a `schedule --plan` file
// (the plan's streams and order). Pure functions of their inputs: tested without a GPU; the
// CUDA backend (Gpu::run_network) replays a program and times it.
//
// A plan records its spec's name, not the spec: `run PLAN --spec SPEC` rebuilds every block
// from SPEC at the plan's S, density and fusion, and refuses a plan whose blocks or ops do not
// match (another spec) or whose one-stream prediction differs (another --batch or --precision).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lasnet/kernels/layers.hpp"
#include "lasnet/predictor/network.hpp"
#include "lasnet/predictor/profile.hpp"
#include "lasnet/predictor/spec.hpp"
#include "lasnet/profiler/block_timing.hpp"
#include "lasnet/profiler/hardware.hpp"
#include "lasnet/profiler/statistics.hpp"

namespace lasnet::profiler {

// The stem, one block, a layer stage or the head.
struct ProgramUnit {
  std::string name;  // "stem", "layer1.0", "head"
  predictor::BlockGraph graph;
  bool layers = false;                              // plain layers, not a block
  std::vector<kernels::LayerConfig> layer_configs;  // layers: one per graph node
  BlockJob job;                                     // a block: what the kernels run
  // Per graph node, the step that runs it (layers: the node's own name).
  std::vector<std::string> node_steps;
  std::vector<std::string> steps;  // distinct steps in node order
  double density = 1;              // dynamic blocks: the masker is calibrated to it
  bool runnable = false;
  std::string reason;      // why the kernels cannot run it
  double predicted_s = 0;  // its ops one after another (the predictor's)
};

struct ProgramLaunch {
  std::size_t unit = 0;
  std::string step;
  std::int64_t stream = 0;
  // Earlier launches on other streams this one waits for (an event each); same-stream order
  // is the stream's own.
  std::vector<std::size_t> waits;
  double predicted_s = 0;                             // solo latency: its ops' predictions summed
  double predicted_start_s = 0, predicted_end_s = 0;  // on the predicted timeline
};

struct NetworkProgram {
  std::string label;  // "plan", "spec", "one stream", "dense"
  std::string spec;
  std::int64_t batch = 1;
  predictor::Precision precision = predictor::Precision::fp32;
  bool dynamic = false;
  std::int64_t streams = 1;
  predictor::MapShape input{3, 224, 224};  // the network's input map
  std::vector<ProgramUnit> units;
  std::vector<ProgramLaunch> launches;  // in issue order (a topological order)
  double predicted_s = 0;               // makespan on `streams`

  // "layer1.0: reason", one per unit the kernels cannot run.
  std::vector<std::string> not_covered() const;
};

// The spec as given (dynamic where it has dynamic settings and `dynamic` holds, else dense),
// every unit on stream 0 in order. `fusion`: every dynamic block's, else the spec's own.
// Predicted at the schedules the kernels run (`predict --kernels`), or with `kernel_schedules`
// false at the model's tile search (as a plan made without `schedule --kernels` was priced).
NetworkProgram spec_program(const predictor::Spec& spec, const predictor::Profile& hw,
                            bool dynamic = true,
                            const std::optional<predictor::Fusion>& fusion = std::nullopt,
                            bool kernel_schedules = true);

// A plan JSON, version 2 (docs/scheduler.md), as far as running it needs.
struct PlanOp {
  std::size_t id = 0;
  std::size_t node = 0;
  std::string name;
  std::int64_t stream = 0;
  std::size_t launch = 0;
  std::vector<std::size_t> after;
  double start_s = 0, end_s = 0, latency_s = 0;
};
struct PlanBlock {
  std::string name;
  std::optional<std::int64_t> stage;  // nullopt: stem, head, layer stage
  std::int64_t index = 0;
  bool dynamic = false;
  std::int64_t granularity = 0;
  double density = 1;
  predictor::Fusion fusion;
  double latency_s = 0, single_stream_latency_s = 0;
  std::vector<PlanOp> ops;
};
struct PlanFile {
  std::string source;  // the file, for messages
  std::string spec, hardware, mode;
  bool feasible = true;
  bool kernel_schedules = false;  // schedule --kernels (absent in older plans: the search)
  bool graph_launches = false;    // schedule --graph (absent in older plans: stream launches)
  std::int64_t streams = 1;
  std::vector<std::int64_t> granularity;
  double latency_s = 0, single_stream_latency_s = 0, dense_latency_s = 0;
  std::vector<PlanBlock> blocks;
};
// Whether a JSON text is labelled "schema": "lasnet.plan" (never throws).
bool is_plan_document(std::string_view json_text);
// Throws lasnet::Error "SOURCE: json.path: message" on malformed input.
PlanFile parse_plan(std::string_view json_text, std::string_view source);
PlanFile load_plan(const std::filesystem::path& file);

// The plan on the GPU: every block rebuilt from `spec` at the plan's settings and checked
// against it, each kernel on the plan's stream in the plan's launch order, waiting on the
// events of its predecessors on other streams. Predicted times are the plan's.
NetworkProgram plan_program(const predictor::Spec& spec, const PlanFile& plan,
                            const predictor::Profile& hw);

// The same launches on one stream (no waits); predicted: the ops one after another.
NetworkProgram single_stream(const NetworkProgram& program);

// ---- measured -------------------------------------------------------------------------------
struct NetworkRunOptions {
  int runs = 50;   // timed graph launches
  int warmup = 5;  // untimed graph launches before them
  bool flush_l2 = true;
};

struct LaunchTiming {
  double start_s = 0, end_s = 0;  // from the run's first event
};

struct NetworkMeasurement {
  std::string label;
  DeviceInfo device;
  std::string date;
  std::vector<double> samples_s;  // the CUDA graph, one sample per timed launch
  Summary latency_s;
  // One eager run (kernels launched from the host, an event pair around each): the timeline.
  double eager_s = 0;
  std::vector<LaunchTiming> launches;  // per program launch
  std::vector<double> unit_density;    // measured active fraction per unit (-1: dense)
};

// Per unit, the eager run's span (first start to last end of its launches); 0 with none.
std::vector<double> unit_spans_s(const NetworkProgram& program, const NetworkMeasurement& m);

// What `lasnet run` reports: each program (the plan or spec as given, the same on one stream,
// dense) predicted beside measured; `measured` empty in a dry run.
struct RunRow {
  NetworkProgram program;
  std::optional<NetworkMeasurement> measured;
};
struct RunReport {
  std::string command;
  std::string spec;
  std::string plan;  // the plan file, "" for a spec
  std::string hardware;
  std::int64_t batch = 1;
  predictor::Precision precision = predictor::Precision::fp32;
  NetworkRunOptions options;
  std::vector<RunRow> rows;  // rows[0] is the program as given
};
inline constexpr int run_format_version = 1;
// "schema": "lasnet.run" (docs/schema/run.schema.json), milliseconds throughout.
std::string run_json(const RunReport& report);
std::string run_table(const RunReport& report);
// The launches of a program, one line each (`run --dry-run`).
std::string program_table(const NetworkProgram& program);

// Chrome/Perfetto trace: process 1 the measured eager timeline, process 2 the predicted one,
// one track per stream each (docs/scheduler.md "Running a plan").
std::string run_trace(const NetworkProgram& program, const NetworkMeasurement& measured);

}  // namespace lasnet::profiler
