#include "lasnet/profiler/network_run.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <queue>
#include <set>

#include "lasnet/common/document.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/common/file_io.hpp"
#include "lasnet/common/json_reader.hpp"
#include "lasnet/profiler/plan.hpp"
#include "lasnet/profiler/validation.hpp"

namespace lasnet::profiler {

namespace {

using ojson = nlohmann::ordered_json;

// Plans are written with up to this many streams; more is a damaged file, not a plan.
constexpr std::int64_t max_plan_streams = 64;

// The layers a layer unit (stem, head, layer stage) is made of, in graph-node order.
const std::vector<predictor::LayerSpec>* unit_layers(const predictor::Spec& spec,
                                                     const std::string& name) {
  if (name == "stem") return &spec.stem;
  if (name == "head") return &spec.head;
  for (const auto& ls : spec.layer_stages) {
    if (ls.name == name) return &ls.layers;
  }
  return nullptr;
}

std::string activation_text(predictor::Activation a) {
  return std::string(predictor::to_string(a));
}

// A plain layer as the kernels' layer runner runs it; false with the reason otherwise.
bool layer_config(const predictor::LayerSpec& l, const predictor::Op& op, std::uint64_t seed,
                  kernels::LayerConfig& c, std::string& reason) {
  using Kind = predictor::LayerSpec::Kind;
  c = kernels::LayerConfig{};
  c.batch = op.batch;
  c.in_channels = op.in_channels;
  c.in_height = op.in_height;
  c.in_width = op.in_width;
  c.out_channels = op.out_channels;
  c.kernel = l.kernel;
  c.stride = l.stride;
  c.padding = l.padding;
  c.seed = seed;
  const auto precision = kernels::parse_precision(predictor::to_string(op.precision));
  if (!precision) {
    reason = "precision unknown to the kernels";
    return false;
  }
  c.precision = *precision;
  const bool relu_or_none =
      l.activation == predictor::Activation::relu || l.activation == predictor::Activation::none;
  switch (l.kind) {
    case Kind::conv:
      c.kind = kernels::LayerKind::conv;
      if (l.groups != 1) {
        reason = fmt::format("a conv of {} groups (the layer runner runs one group)", l.groups);
        return false;
      }
      if (l.dilation != 1) {
        reason =
            fmt::format("a conv of dilation {} (the layer runner runs dilation 1)", l.dilation);
        return false;
      }
      if (!relu_or_none) {
        reason = fmt::format("a conv with {} (the layer runner applies ReLU or nothing)",
                             activation_text(l.activation));
        return false;
      }
      c.relu = l.activation == predictor::Activation::relu;
      break;
    case Kind::max_pool:
      c.kind = kernels::LayerKind::max_pool;
      break;
    case Kind::avg_pool:
      c.kind = kernels::LayerKind::avg_pool;
      break;
    case Kind::global_avg_pool:
      c.kind = kernels::LayerKind::global_avg_pool;
      c.kernel = 1;
      c.stride = 1;
      c.padding = 0;
      break;
    case Kind::fc:
      c.kind = kernels::LayerKind::fc;
      if (!relu_or_none) {
        reason = fmt::format("an fc with {} (the layer runner applies ReLU or nothing)",
                             activation_text(l.activation));
        return false;
      }
      c.relu = l.activation == predictor::Activation::relu;
      c.kernel = 1;
      c.stride = 1;
      c.padding = 0;
      break;
    default:
      reason = fmt::format("{} layers are not run by the kernels", predictor::to_string(op.kind));
      return false;
  }
  if (const auto support = kernels::check_supported(c); !support.ok) {
    reason = support.reason;
    return false;
  }
  if (c.out_height() != op.out_height || c.out_width() != op.out_width ||
      c.out_channels_of() != op.out_channels) {
    reason = fmt::format("the layer runner's output map {}x{}x{} is not the predictor's {}x{}x{}",
                         c.out_height(), c.out_width(), c.out_channels_of(), op.out_height,
                         op.out_width, op.out_channels);
    return false;
  }
  return true;
}

void distinct_steps(ProgramUnit& u) {
  u.steps.clear();
  for (const auto& s : u.node_steps) {
    if (!s.empty() && std::find(u.steps.begin(), u.steps.end(), s) == u.steps.end()) {
      u.steps.push_back(s);
    }
  }
}

// The unit for one graph of the network: what runs it, and whether the kernels can.
ProgramUnit make_unit(const predictor::Spec& spec, predictor::BlockGraph graph,
                      const predictor::Fusion& fusion, std::size_t position) {
  ProgramUnit u;
  u.name = graph.name;
  u.density = graph.dynamic ? graph.density : 1.0;
  if (graph.stage < 0 || graph.name == "head" || unit_layers(spec, graph.name) != nullptr) {
    u.layers = true;
    const auto* layers = unit_layers(spec, graph.name);
    u.runnable = true;
    if (layers == nullptr || layers->size() != graph.nodes.size()) {
      u.runnable = false;
      u.reason = "its layers do not match the predictor's graph";
    }
    for (std::size_t i = 0; u.runnable && i < graph.nodes.size(); ++i) {
      kernels::LayerConfig c;
      std::string why;
      if (!layer_config((*layers)[i], graph.nodes[i].op, 1000 + 16 * position + i, c, why)) {
        u.runnable = false;
        u.reason = fmt::format("{}: {}", graph.nodes[i].name, why);
        break;
      }
      u.layer_configs.push_back(c);
    }
    for (const auto& n : graph.nodes) u.node_steps.push_back(n.name);
  } else {
    const std::size_t stage = static_cast<std::size_t>(graph.stage);
    u.runnable = map_to_kernels(graph, fusion, u.job, u.node_steps, u.reason, /*se=*/true);
    if (u.runnable) {
      const auto& st = spec.stages[stage];
      // As plan.cpp's stage_runs_on_kernels: what the block graph does not say.
      if (st.kernel != 3 || st.dilation != 1 || st.activation != predictor::Activation::relu) {
        u.runnable = false;
        u.reason = "a spatial conv other than 3x3, dilation 1, ReLU";
      } else if (st.block == predictor::BlockKind::convnext ||
                 (st.block == predictor::BlockKind::inverted_residual && st.se_channels > 0)) {
        u.runnable = false;
        u.reason = "a ConvNeXt block or SE in an inverted residual (not run by the kernels)";
      } else if (u.job.config.precision == kernels::Precision::fp16) {
        // The blocks have fp16 kernels; the network runner's maps and layers are still float.
        u.runnable = false;
        u.reason = "fp16 networks are not run yet (fp16 blocks are: bench_kernels, the tests)";
      }
    }
    if (u.runnable) {
      u.job.config.seed = 100 + position;
      with_mask_model(u.job, MaskModel::uniform);
      for (std::size_t i = 0; i < graph.nodes.size(); ++i) {
        if (u.node_steps[i].empty()) {
          u.runnable = false;
          u.reason = fmt::format("its op '{}' has no kernel", graph.nodes[i].name);
          break;
        }
      }
    }
  }
  if (!u.runnable) u.node_steps.assign(graph.nodes.size(), std::string());
  distinct_steps(u);
  u.graph = std::move(graph);
  return u;
}

// Orders launches topologically by (rank, step position), keeps the dependencies that cross
// streams as waits, and fills the predicted timeline of a one-stream program.
struct StepNode {
  std::size_t unit = 0;
  std::string step;
  std::int64_t stream = 0;
  double rank = 0;  // plan launch rank (or position) of its first op
  std::set<std::size_t> preds;
  double predicted_s = 0;
  double start_s = 0, end_s = 0;
  bool planned = false;  // start/end from the plan
};

std::vector<ProgramLaunch> order_launches(std::vector<StepNode>& nodes) {
  std::vector<std::size_t> indegree(nodes.size(), 0);
  std::vector<std::vector<std::size_t>> succs(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    for (const auto p : nodes[i].preds) {
      succs[p].push_back(i);
      ++indegree[i];
    }
  }
  using Item = std::pair<double, std::size_t>;
  std::priority_queue<Item, std::vector<Item>, std::greater<>> ready;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (indegree[i] == 0) ready.emplace(nodes[i].rank, i);
  }
  std::vector<std::size_t> order, position(nodes.size(), 0);
  while (!ready.empty()) {
    const auto [rank, i] = ready.top();
    ready.pop();
    position[i] = order.size();
    order.push_back(i);
    for (const auto s : succs[i]) {
      if (--indegree[s] == 0) ready.emplace(nodes[s].rank, s);
    }
  }
  if (order.size() != nodes.size()) throw Error("the plan's dependencies form a cycle");
  std::vector<ProgramLaunch> out;
  double clock = 0;
  for (const auto i : order) {
    const auto& n = nodes[i];
    ProgramLaunch l;
    l.unit = n.unit;
    l.step = n.step;
    l.stream = n.stream;
    for (const auto p : n.preds) {
      if (nodes[p].stream != n.stream) l.waits.push_back(position[p]);
    }
    std::sort(l.waits.begin(), l.waits.end());
    l.predicted_s = n.predicted_s;
    if (n.planned) {
      l.predicted_start_s = n.start_s;
      l.predicted_end_s = n.end_s;
    } else {
      l.predicted_start_s = clock;
      l.predicted_end_s = clock + n.predicted_s;
      clock = l.predicted_end_s;
    }
    out.push_back(std::move(l));
  }
  return out;
}

// The steps of one unit in an order the kernels can run them one after another: every step
// after the steps its ops wait for (a dense block's conv3 carries the residual add, so it comes
// after the shortcut) and after the step before it in the block's chain (all but the shortcut),
// ties going to the earlier op.
std::vector<std::string> unit_order(const ProgramUnit& u) {
  const auto index_of = [&](const std::string& step) {
    return static_cast<std::size_t>(std::find(u.steps.begin(), u.steps.end(), step) -
                                    u.steps.begin());
  };
  std::vector<std::set<std::size_t>> preds(u.steps.size());
  for (std::size_t n = 0; n < u.graph.nodes.size() && n < u.node_steps.size(); ++n) {
    if (u.node_steps[n].empty()) continue;
    const auto me = index_of(u.node_steps[n]);
    for (const auto a : u.graph.nodes[n].after) {
      if (a >= u.node_steps.size() || u.node_steps[a].empty()) continue;
      const auto other = index_of(u.node_steps[a]);
      if (other != me) preds[me].insert(other);
    }
  }
  std::optional<std::size_t> previous;
  for (std::size_t k = 0; k < u.steps.size(); ++k) {
    if (u.steps[k] == "shortcut") continue;
    if (previous) preds[k].insert(*previous);
    previous = k;
  }
  std::vector<std::string> order;
  std::vector<bool> done(u.steps.size(), false);
  while (order.size() < u.steps.size()) {
    bool progressed = false;
    for (std::size_t k = 0; k < u.steps.size(); ++k) {
      if (done[k]) continue;
      bool ready = true;
      for (const auto p : preds[k]) ready = ready && done[p];
      if (!ready) continue;
      done[k] = true;
      order.push_back(u.steps[k]);
      progressed = true;
      break;
    }
    if (!progressed)
      throw Error(fmt::format("{}: its steps depend on each other in a cycle", u.name));
  }
  return order;
}

// Every unit's steps, one after another on stream 0 (a spec, or a plan on one stream).
std::vector<ProgramLaunch> sequential_launches(const std::vector<ProgramUnit>& units,
                                               const std::vector<std::vector<double>>& op_s) {
  std::vector<StepNode> nodes;
  for (std::size_t u = 0; u < units.size(); ++u) {
    for (const auto& step : unit_order(units[u])) {
      StepNode n;
      n.unit = u;
      n.step = step;
      n.rank = static_cast<double>(nodes.size());
      if (!nodes.empty()) n.preds.insert(nodes.size() - 1);
      for (std::size_t k = 0; k < units[u].node_steps.size(); ++k) {
        if (units[u].node_steps[k] == step) n.predicted_s += op_s[u][k];
      }
      nodes.push_back(std::move(n));
    }
  }
  return order_launches(nodes);
}

// At the schedules the kernels run each op with (predict --kernels: what run times), or at the
// model's tile search.
std::vector<double> predict_ops(const predictor::BlockGraph& g, predictor::PredictionCache& cache,
                                const predictor::Profile& hw, bool kernel_schedules) {
  const auto r = predictor::predict_block(
      g, cache, hw,
      kernel_schedules ? project_kernel_schedule(static_cast<int>(hw.sm_count))
                       : predictor::KernelSchedule{});
  std::vector<double> out;
  for (const auto& op : r.ops) out.push_back(op.prediction.latency_s);
  return out;
}

}  // namespace

std::vector<std::string> NetworkProgram::not_covered() const {
  std::vector<std::string> out;
  for (const auto& u : units) {
    if (!u.runnable) out.push_back(fmt::format("{}: {}", u.name, u.reason));
  }
  return out;
}

NetworkProgram spec_program(const predictor::Spec& spec, const predictor::Profile& hw, bool dynamic,
                            const std::optional<predictor::Fusion>& fusion, bool kernel_schedules) {
  NetworkProgram p;
  p.spec = spec.name;
  p.batch = spec.batch;
  p.precision = spec.precision;
  p.dynamic = dynamic && spec.dynamic.enabled;
  p.label = p.dynamic ? "spec" : "dense";
  p.input = {spec.in_channels, spec.height, spec.width};
  if (p.dynamic && spec.dynamic.mode != predictor::DynamicMode::spatial) {
    throw Error(fmt::format("{}: only the spatial dynamic mode runs on the kernels", spec.name));
  }
  predictor::NetworkOptions options;
  options.fusion = fusion;
  auto graphs = predictor::build_network(
      spec, p.dynamic ? predictor::Execution::dynamic : predictor::Execution::dense, options);
  predictor::PredictionCache cache(hw);
  std::vector<std::vector<double>> op_s;
  for (std::size_t i = 0; i < graphs.size(); ++i) {
    predictor::Fusion f = fusion.value_or(predictor::Fusion{});
    if (!fusion && graphs[i].stage >= 0 && !spec.dynamic.fusion.empty() &&
        static_cast<std::size_t>(graphs[i].stage) < spec.dynamic.fusion.size()) {
      f = spec.dynamic.fusion.at(static_cast<std::size_t>(graphs[i].stage))
              .at(static_cast<std::size_t>(graphs[i].index_in_stage));
    }
    op_s.push_back(predict_ops(graphs[i], cache, hw, kernel_schedules));
    auto unit = make_unit(spec, std::move(graphs[i]), f, i);
    for (const double t : op_s.back()) unit.predicted_s += t;
    p.units.push_back(std::move(unit));
  }
  p.launches = sequential_launches(p.units, op_s);
  for (const auto& u : p.units) p.predicted_s += u.predicted_s;
  return p;
}

bool is_plan_document(std::string_view text) {
  try {
    const auto j = nlohmann::json::parse(text, nullptr, false);
    return j.is_object() && j.contains("schema") && j["schema"] == "lasnet.plan";
  } catch (...) {
    return false;
  }
}

PlanFile parse_plan(std::string_view text, std::string_view source) {
  try {
    const json::value root = json::parse(text, source);
    json::ObjectReader r(root, "");
    if (!read_document_version(r, "plan", 2)) {
      json::fail("schema", "missing required key (a plan written by `lasnet schedule --plan`)");
    }
    if (json::as_int(r.required("version"), "version") != 2) {
      json::fail("version", "run reads plan version 2 (rewrite the plan with this lasnet)");
    }
    PlanFile p;
    p.source = std::string(source);
    p.spec = r.required_string("spec");
    p.hardware = r.required_string("hardware");
    p.mode = r.required_string("mode");
    p.feasible = json::as_bool(r.required("feasible"), "feasible");
    p.streams = r.required_positive_int("streams");
    if (const auto* k = r.optional("kernel_schedules")) {
      p.kernel_schedules = json::as_bool(*k, "kernel_schedules");
    }
    if (const auto* g = r.optional("graph_launches")) {
      p.graph_launches = json::as_bool(*g, "graph_launches");
    }
    if (p.streams > max_plan_streams) {
      json::fail("streams", fmt::format("{} is over the limit of {}", p.streams, max_plan_streams));
    }
    for (const auto& [i, g] : json::as_array(r.required("granularity"), "granularity").items()) {
      p.granularity.push_back(json::as_int(g, "granularity[" + i + "]"));
    }
    p.latency_s = 1e-3 * json::non_negative_number(r.required("latency_ms"), "latency_ms");
    p.single_stream_latency_s =
        1e-3 * json::non_negative_number(r.required("single_stream_latency_ms"),
                                         "single_stream_latency_ms");
    p.dense_latency_s =
        1e-3 * json::non_negative_number(r.required("dense_latency_ms"), "dense_latency_ms");
    // Keys a run does not need, accepted as the scheduler writes them.
    for (const char* key :
         {"objective", "density", "budget_ms", "reason", "max_streams", "granularity_tolerance",
          "dense_streams_latency_ms", "search", "stages", "stream_options", "density_scan"}) {
      (void)r.optional(key);
    }
    std::set<std::size_t> ids;
    const auto& blocks = json::as_array(r.required("blocks"), "blocks");
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      const std::string bpath = json::join("blocks", b);
      json::ObjectReader rb(blocks[b], bpath);
      PlanBlock block;
      block.name = rb.required_string("name");
      if (const auto& st = rb.required("stage"); !st.is_null()) {
        block.stage = json::as_int(st, rb.path_of("stage"));
      }
      block.index = json::as_int(rb.required("index"), rb.path_of("index"));
      block.dynamic = json::as_bool(rb.required("dynamic"), rb.path_of("dynamic"));
      block.granularity = json::as_int(rb.required("granularity"), rb.path_of("granularity"));
      block.density = json::non_negative_number(rb.required("density"), rb.path_of("density"));
      if (block.density > 1) json::fail(rb.path_of("density"), "must be at most 1");
      block.fusion = predictor::parse_fusion(rb.required_string("fusion"), rb.path_of("fusion"));
      block.latency_s =
          1e-3 * json::non_negative_number(rb.required("latency_ms"), rb.path_of("latency_ms"));
      block.single_stream_latency_s =
          1e-3 * json::non_negative_number(rb.required("single_stream_latency_ms"),
                                           rb.path_of("single_stream_latency_ms"));
      for (const char* key : {"unfused_latency_ms", "fusion_saving_ms"}) (void)rb.optional(key);
      const auto& ops = json::as_array(rb.required("ops"), rb.path_of("ops"));
      for (std::size_t o = 0; o < ops.size(); ++o) {
        const std::string opath = json::join(rb.path_of("ops"), o);
        json::ObjectReader ro(ops[o], opath);
        PlanOp op;
        op.id = static_cast<std::size_t>(json::as_int(ro.required("id"), ro.path_of("id")));
        if (json::as_int(ro.required("id"), ro.path_of("id")) < 0 || !ids.insert(op.id).second) {
          json::fail(ro.path_of("id"), fmt::format("{} is negative or used twice", op.id));
        }
        const auto node = json::as_int(ro.required("node"), ro.path_of("node"));
        if (node < 0) json::fail(ro.path_of("node"), "must not be negative");
        op.node = static_cast<std::size_t>(node);
        op.name = ro.required_string("name");
        (void)ro.optional("kind");
        op.stream = json::as_int(ro.required("stream"), ro.path_of("stream"));
        if (op.stream < 0 || op.stream >= p.streams) {
          json::fail(ro.path_of("stream"),
                     fmt::format("{} is not a stream of the plan's {}", op.stream, p.streams));
        }
        const auto launch = json::as_int(ro.required("launch"), ro.path_of("launch"));
        if (launch < 0) json::fail(ro.path_of("launch"), "must not be negative");
        op.launch = static_cast<std::size_t>(launch);
        const auto& after = json::as_array(ro.required("after"), ro.path_of("after"));
        for (std::size_t k = 0; k < after.size(); ++k) {
          const auto a = json::as_int(after[k], json::join(ro.path_of("after"), k));
          if (a < 0) json::fail(json::join(ro.path_of("after"), k), "must not be negative");
          op.after.push_back(static_cast<std::size_t>(a));
        }
        op.start_s =
            1e-3 * json::non_negative_number(ro.required("start_ms"), ro.path_of("start_ms"));
        op.end_s = 1e-3 * json::non_negative_number(ro.required("end_ms"), ro.path_of("end_ms"));
        op.latency_s =
            1e-3 * json::non_negative_number(ro.required("latency_ms"), ro.path_of("latency_ms"));
        (void)ro.optional("sm_demand");
        ro.reject_unknown();
        block.ops.push_back(std::move(op));
      }
      rb.reject_unknown();
      p.blocks.push_back(std::move(block));
    }
    // Every `after` names an op of the plan.
    for (std::size_t b = 0; b < p.blocks.size(); ++b) {
      for (std::size_t o = 0; o < p.blocks[b].ops.size(); ++o) {
        const auto& after = p.blocks[b].ops[o].after;
        for (std::size_t k = 0; k < after.size(); ++k) {
          if (ids.count(after[k]) == 0) {
            json::fail(fmt::format("blocks[{}].ops[{}].after[{}]", b, o, k),
                       fmt::format("no op has id {}", after[k]));
          }
        }
      }
    }
    r.reject_unknown();
    return p;
  } catch (const Error& e) {
    if (std::string_view(e.what()).starts_with(source)) throw;
    throw Error(fmt::format("{}: {}", source, e.what()));
  }
}

PlanFile load_plan(const std::filesystem::path& file) {
  return parse_plan(read_text_file(file), file.string());
}

NetworkProgram plan_program(const predictor::Spec& spec, const PlanFile& plan,
                            const predictor::Profile& hw) {
  const auto fail = [&](std::string path, std::string message) -> void {
    throw Error(fmt::format("{}: {}: {}", plan.source, path, message));
  };
  if (plan.spec != spec.name) {
    fail("spec", fmt::format("the plan is for '{}', not '{}' (give the spec it was made from "
                             "with --spec)",
                             plan.spec, spec.name));
  }
  if (!plan.feasible) fail("feasible", "the plan is infeasible: nothing to run");
  if (plan.mode != "spatial") fail("mode", "only spatial plans run on the kernels");
  if (plan.hardware != hw.name) {
    fail("hardware", fmt::format("the plan was made for '{}', not --hw '{}' (its predictions "
                                 "would not be this profile's)",
                                 plan.hardware, hw.name));
  }
  // The network as the plan describes it: the spec's layer units, its blocks at the plan's S,
  // density and fusion. Layer units (stage null) are taken from the dense network.
  const auto dense = predictor::build_network(spec, predictor::Execution::dense);
  if (dense.size() != plan.blocks.size()) {
    fail("blocks", fmt::format("{} blocks, but {} builds {} (stem, blocks, head): was the plan "
                               "made from another spec?",
                               plan.blocks.size(), spec.name, dense.size()));
  }
  NetworkProgram p;
  p.label = "plan";
  p.spec = spec.name;
  p.batch = spec.batch;
  p.precision = spec.precision;
  p.streams = plan.streams;
  p.input = {spec.in_channels, spec.height, spec.width};
  predictor::PredictionCache cache(hw);
  std::vector<std::vector<double>> op_s;
  std::map<std::size_t, std::pair<std::size_t, std::size_t>> where;  // id -> (unit, node)
  for (std::size_t b = 0; b < plan.blocks.size(); ++b) {
    const auto& pb = plan.blocks[b];
    const std::string path = fmt::format("blocks[{}]", b);
    predictor::BlockGraph g = dense[b];
    if (pb.stage) {
      if (*pb.stage < 0 || static_cast<std::size_t>(*pb.stage) >= spec.stages.size() ||
          pb.index < 0 || pb.index >= spec.stages[static_cast<std::size_t>(*pb.stage)].blocks) {
        fail(path + ".stage", fmt::format("{} has no block {}.{}", spec.name, *pb.stage, pb.index));
      }
      predictor::BlockSettings settings;
      settings.granularity = pb.granularity;
      settings.density = pb.density;
      settings.fusion = pb.fusion;
      g = predictor::make_block(
          spec, static_cast<std::size_t>(*pb.stage), static_cast<std::size_t>(pb.index),
          pb.dynamic ? predictor::Execution::dynamic : predictor::Execution::dense, settings);
      if (g.dynamic) p.dynamic = true;
    }
    if (g.name != pb.name) {
      fail(path + ".name", fmt::format("'{}', but {} has '{}' here", pb.name, spec.name, g.name));
    }
    if (g.nodes.size() != pb.ops.size()) {
      fail(path + ".ops", fmt::format("{} ops, but {} builds {} for {}", pb.ops.size(), spec.name,
                                      g.nodes.size(), g.name));
    }
    std::vector<double> times(g.nodes.size(), 0);
    for (std::size_t o = 0; o < pb.ops.size(); ++o) {
      const auto& op = pb.ops[o];
      const std::string opath = fmt::format("{}.ops[{}]", path, o);
      if (op.node >= g.nodes.size() || g.nodes[op.node].name != op.name) {
        fail(opath + ".name",
             fmt::format("'{}' at node {}, but {}'s node is '{}'", op.name, op.node, g.name,
                         op.node < g.nodes.size() ? g.nodes[op.node].name : "(none)"));
      }
      times[op.node] = op.latency_s;
      where[op.id] = {b, op.node};
    }
    op_s.push_back(std::move(times));
    auto unit = make_unit(spec, std::move(g), pb.fusion, b);
    unit.predicted_s = pb.single_stream_latency_s;
    p.units.push_back(std::move(unit));
  }
  // The plan's one-stream prediction must be this spec's at this batch and precision.
  {
    double one = 0;
    for (std::size_t b = 0; b < p.units.size(); ++b) {
      for (const double t : predict_ops(p.units[b].graph, cache, hw, plan.kernel_schedules)) {
        one += t;
      }
    }
    if (std::abs(one - plan.single_stream_latency_s) > 0.005 * plan.single_stream_latency_s) {
      fail("single_stream_latency_ms",
           fmt::format("the plan predicts {:.4f} ms on one stream, {} at batch {} {} here "
                       "{:.4f} ms: give the --batch and --precision it was scheduled at",
                       plan.single_stream_latency_s * 1e3, spec.name, spec.batch,
                       predictor::to_string(spec.precision), one * 1e3));
    }
  }
  // One launch per (unit, step): its ops' streams, ranks and dependencies merged.
  std::vector<StepNode> nodes;
  std::map<std::pair<std::size_t, std::string>, std::size_t> step_of;
  for (std::size_t b = 0; b < p.units.size(); ++b) {
    const auto& u = p.units[b];
    for (const auto& op : plan.blocks[b].ops) {
      const auto& step = u.node_steps[op.node];
      if (step.empty()) continue;  // not runnable: the run refuses it before launching
      auto [it, fresh] = step_of.try_emplace({b, step}, nodes.size());
      if (fresh) {
        StepNode n;
        n.unit = b;
        n.step = step;
        n.stream = op.stream;
        n.rank = static_cast<double>(op.launch);
        n.start_s = op.start_s;
        n.end_s = op.end_s;
        n.planned = true;
        nodes.push_back(std::move(n));
      }
      auto& n = nodes[it->second];
      if (static_cast<double>(op.launch) < n.rank) {
        n.rank = static_cast<double>(op.launch);
        n.stream = op.stream;
      }
      n.start_s = std::min(n.start_s, op.start_s);
      n.end_s = std::max(n.end_s, op.end_s);
      n.predicted_s += op.latency_s;
    }
  }
  for (std::size_t b = 0; b < p.units.size(); ++b) {
    const auto& u = p.units[b];
    for (const auto& op : plan.blocks[b].ops) {
      const auto& step = u.node_steps[op.node];
      if (step.empty()) continue;
      const std::size_t me = step_of.at({b, step});
      for (const auto a : op.after) {
        const auto [pu, pn] = where.at(a);
        const auto& pstep = p.units[pu].node_steps[pn];
        if (pstep.empty()) continue;
        const std::size_t other = step_of.at({pu, pstep});
        if (other != me) nodes[me].preds.insert(other);
      }
    }
    // The kernels run a block's steps in order: each after the one before it, except the
    // shortcut, which reads the block's input only.
    std::optional<std::size_t> previous;
    for (const auto& step : u.steps) {
      if (step == "shortcut") continue;
      const std::size_t me = step_of.at({b, step});
      if (previous && *previous != me) nodes[me].preds.insert(*previous);
      previous = me;
    }
  }
  p.launches = order_launches(nodes);
  p.predicted_s = plan.latency_s;
  return p;
}

NetworkProgram single_stream(const NetworkProgram& program) {
  NetworkProgram p = program;
  p.label = "one stream";
  p.streams = 1;
  double clock = 0;
  for (auto& l : p.launches) {
    l.stream = 0;
    l.waits.clear();
    l.predicted_start_s = clock;
    l.predicted_end_s = clock + l.predicted_s;
    clock = l.predicted_end_s;
  }
  p.predicted_s = clock;
  return p;
}

std::vector<double> unit_spans_s(const NetworkProgram& program, const NetworkMeasurement& m) {
  std::vector<double> first(program.units.size(), 1e300), last(program.units.size(), -1e300);
  for (std::size_t i = 0; i < program.launches.size() && i < m.launches.size(); ++i) {
    const auto u = program.launches[i].unit;
    first[u] = std::min(first[u], m.launches[i].start_s);
    last[u] = std::max(last[u], m.launches[i].end_s);
  }
  std::vector<double> out(program.units.size(), 0);
  for (std::size_t u = 0; u < out.size(); ++u) {
    if (last[u] >= first[u]) out[u] = last[u] - first[u];
  }
  return out;
}

std::string run_trace(const NetworkProgram& program, const NetworkMeasurement& measured) {
  ojson events = ojson::array();
  const auto process = [&](int pid, const std::string& title) {
    events.push_back(ojson{{"name", "process_name"},
                           {"ph", "M"},
                           {"pid", pid},
                           {"tid", 0},
                           {"args", ojson{{"name", title}}}});
    events.push_back(ojson{{"name", "process_sort_index"},
                           {"ph", "M"},
                           {"pid", pid},
                           {"tid", 0},
                           {"args", ojson{{"sort_index", pid}}}});
    for (std::int64_t s = 0; s < program.streams; ++s) {
      events.push_back(ojson{{"name", "thread_name"},
                             {"ph", "M"},
                             {"pid", pid},
                             {"tid", s},
                             {"args", ojson{{"name", fmt::format("stream {}", s)}}}});
      events.push_back(ojson{{"name", "thread_sort_index"},
                             {"ph", "M"},
                             {"pid", pid},
                             {"tid", s},
                             {"args", ojson{{"sort_index", s}}}});
    }
  };
  process(1, fmt::format("measured: {} {} on {} (eager, events around every kernel)", program.spec,
                         program.label, measured.device.name));
  process(2, fmt::format("predicted: {} {}", program.spec, program.label));
  for (std::size_t i = 0; i < program.launches.size(); ++i) {
    const auto& l = program.launches[i];
    const auto& unit = program.units[l.unit];
    const std::string name = fmt::format("{}/{}", unit.name, l.step);
    if (i < measured.launches.size()) {
      const auto& t = measured.launches[i];
      events.push_back(
          ojson{{"name", name},
                {"cat", unit.layers ? "layer" : "block"},
                {"ph", "X"},
                {"pid", 1},
                {"tid", l.stream},
                {"ts", t.start_s * 1e6},
                {"dur", (t.end_s - t.start_s) * 1e6},
                {"args", ojson{{"launch", i}, {"predicted_solo_us", l.predicted_s * 1e6}}}});
    }
    events.push_back(
        ojson{{"name", name},
              {"cat", unit.layers ? "layer" : "block"},
              {"ph", "X"},
              {"pid", 2},
              {"tid", l.stream},
              {"ts", l.predicted_start_s * 1e6},
              {"dur", (l.predicted_end_s - l.predicted_start_s) * 1e6},
              {"args", ojson{{"launch", i}, {"solo_latency_us", l.predicted_s * 1e6}}}});
  }
  ojson j = output_document("trace", 1);
  j["traceEvents"] = events;
  j["displayTimeUnit"] = "ms";
  j["otherData"] = ojson{{"tool", "lasnet run"},
                         {"streams", program.streams},
                         {"makespan_us", measured.eager_s * 1e6},
                         {"predicted_makespan_us", program.predicted_s * 1e6}};
  return j.dump(1) + "\n";
}

}  // namespace lasnet::profiler

namespace lasnet::profiler {

namespace {

// Per unit, the predicted timeline's span (first start to last end of its launches).
std::vector<double> predicted_spans_s(const NetworkProgram& p) {
  std::vector<double> first(p.units.size(), 1e300), last(p.units.size(), -1e300);
  for (const auto& l : p.launches) {
    first[l.unit] = std::min(first[l.unit], l.predicted_start_s);
    last[l.unit] = std::max(last[l.unit], l.predicted_end_s);
  }
  std::vector<double> out(p.units.size(), 0);
  for (std::size_t u = 0; u < out.size(); ++u) {
    if (last[u] >= first[u]) out[u] = last[u] - first[u];
  }
  return out;
}

ojson ms_or_null(std::optional<double> seconds) {
  return seconds ? ojson(*seconds * 1e3) : ojson(nullptr);
}

std::optional<double> measured_s(const RunRow& r) {
  if (!r.measured) return std::nullopt;
  return r.measured->latency_s.median;
}

const RunRow* find_row(const RunReport& report, std::string_view label) {
  for (const auto& r : report.rows) {
    if (r.program.label == label) return &r;
  }
  return nullptr;
}

// The gain of the as-given program over `other` (other / given): predicted and measured.
struct Gain {
  double predicted = 0;
  std::optional<double> measured;
};
std::optional<Gain> gain_over(const RunReport& report, std::string_view other) {
  const RunRow* base = find_row(report, other);
  if (report.rows.empty() || base == nullptr || &report.rows.front() == base) return std::nullopt;
  const RunRow& given = report.rows.front();
  Gain g;
  g.predicted = base->program.predicted_s / given.program.predicted_s;
  const auto a = measured_s(*base), b = measured_s(given);
  if (a && b && *b > 0) g.measured = *a / *b;
  return g;
}

}  // namespace

std::string run_json(const RunReport& report) {
  ojson j = output_document("run", run_format_version);
  j["command"] = report.command;
  j["spec"] = report.spec;
  j["plan"] = report.plan.empty() ? ojson(nullptr) : ojson(report.plan);
  j["hardware"] = report.hardware;
  const NetworkMeasurement* any = nullptr;
  for (const auto& r : report.rows) {
    if (r.measured) any = &*r.measured;
  }
  j["device"] = any ? ojson(any->device.name) : ojson(nullptr);
  j["date"] = any ? ojson(any->date) : ojson(nullptr);
  j["batch"] = report.batch;
  j["precision"] = predictor::to_string(report.precision);
  j["runs"] = report.options.runs;
  j["warmup"] = report.options.warmup;
  j["l2_flushed"] = report.options.flush_l2;
  ojson programs = ojson::array();
  for (const auto& r : report.rows) {
    const auto& p = r.program;
    const auto meas = measured_s(r);
    ojson row{
        {"label", p.label},
        {"streams", p.streams},
        {"dynamic", p.dynamic},
        {"launches", p.launches.size()},
        {"predicted_ms", p.predicted_s * 1e3},
        {"measured_ms", ms_or_null(meas)},
        {"p10_ms",
         ms_or_null(r.measured ? std::optional(r.measured->latency_s.p10) : std::nullopt)},
        {"p90_ms",
         ms_or_null(r.measured ? std::optional(r.measured->latency_s.p90) : std::nullopt)},
        {"error", meas && *meas > 0 ? ojson((p.predicted_s - *meas) / *meas) : ojson(nullptr)},
        {"eager_ms", ms_or_null(r.measured ? std::optional(r.measured->eager_s) : std::nullopt)}};
    const auto predicted = predicted_spans_s(p);
    std::vector<double> spans;
    if (r.measured) spans = unit_spans_s(p, *r.measured);
    ojson units = ojson::array();
    for (std::size_t u = 0; u < p.units.size(); ++u) {
      const bool dyn =
          r.measured && u < r.measured->unit_density.size() && r.measured->unit_density[u] >= 0;
      units.push_back(
          ojson{{"name", p.units[u].name},
                {"predicted_ms", predicted[u] * 1e3},
                {"measured_ms", r.measured ? ojson(spans[u] * 1e3) : ojson(nullptr)},
                {"density", dyn ? ojson(r.measured->unit_density[u]) : ojson(nullptr)}});
    }
    row["units"] = units;
    programs.push_back(row);
  }
  j["programs"] = programs;
  const auto gain_json = [](const std::optional<Gain>& g) {
    if (!g) return ojson(nullptr);
    return ojson{{"predicted", g->predicted},
                 {"measured", g->measured ? ojson(*g->measured) : ojson(nullptr)}};
  };
  j["stream_gain"] = gain_json(gain_over(report, "one stream"));
  j["dynamic_speedup"] = gain_json(gain_over(report, "dense"));
  return j.dump(1) + "\n";
}

std::string run_table(const RunReport& report) {
  std::string out;
  const auto line = [&out](const std::string& text) { out += text + "\n"; };
  const NetworkMeasurement* any = nullptr;
  for (const auto& r : report.rows) {
    if (r.measured) any = &*r.measured;
  }
  line(fmt::format(
      "lasnet run: {}{} batch {} {} on {} (profile {}); {} timed CUDA-graph runs, "
      "L2 {}",
      report.spec, report.plan.empty() ? "" : " plan " + report.plan, report.batch,
      predictor::to_string(report.precision), any ? any->device.name : "(no GPU)", report.hardware,
      report.options.runs, report.options.flush_l2 ? "cleared before each" : "warm"));
  line("");
  line(fmt::format("{:<12} {:>7} {:>13} {:>12} {:>21} {:>8} {:>10}", "program", "streams",
                   "predicted_ms", "measured_ms", "p10..p90_ms", "error", "eager_ms"));
  for (const auto& r : report.rows) {
    const auto meas = measured_s(r);
    line(fmt::format(
        "{:<12} {:>7} {:>13.4f} {:>12} {:>21} {:>8} {:>10}", r.program.label, r.program.streams,
        r.program.predicted_s * 1e3, meas ? fmt::format("{:.4f}", *meas * 1e3) : "-",
        r.measured ? fmt::format("{:.4f}..{:.4f}", r.measured->latency_s.p10 * 1e3,
                                 r.measured->latency_s.p90 * 1e3)
                   : "-",
        meas ? fmt::format("{:+.1f}%", 100 * (r.program.predicted_s - *meas) / *meas) : "-",
        r.measured ? fmt::format("{:.4f}", r.measured->eager_s * 1e3) : "-"));
  }
  if (const auto g = gain_over(report, "one stream")) {
    line(fmt::format("gain of {} streams over one: predicted {:.3f}x, measured {}",
                     report.rows.front().program.streams, g->predicted,
                     g->measured ? fmt::format("{:.3f}x", *g->measured) : "-"));
  }
  if (const auto g = gain_over(report, "dense")) {
    line(fmt::format("speedup over dense: predicted {:.3f}x, measured {}", g->predicted,
                     g->measured ? fmt::format("{:.3f}x", *g->measured) : "-"));
  }
  if (!report.rows.empty() && report.rows.front().measured) {
    const auto& r = report.rows.front();
    const auto predicted = predicted_spans_s(r.program);
    const auto spans = unit_spans_s(r.program, *r.measured);
    line("");
    line(fmt::format("per unit, {} (eager run, events around every kernel):", r.program.label));
    line(fmt::format("{:<12} {:>13} {:>12} {:>8} {:>8}", "unit", "predicted_ms", "measured_ms",
                     "error", "density"));
    for (std::size_t u = 0; u < r.program.units.size(); ++u) {
      const double d = u < r.measured->unit_density.size() ? r.measured->unit_density[u] : -1;
      line(fmt::format(
          "{:<12} {:>13.4f} {:>12.4f} {:>8} {:>8}", r.program.units[u].name, predicted[u] * 1e3,
          spans[u] * 1e3,
          spans[u] > 0 ? fmt::format("{:+.1f}%", 100 * (predicted[u] - spans[u]) / spans[u]) : "-",
          d >= 0 ? fmt::format("{:.3f}", d) : "-"));
    }
  }
  return out;
}

std::string program_table(const NetworkProgram& p) {
  std::string out = fmt::format(
      "{} ({}): {} batch {} {}, {} stream(s), {} units, {} launches, predicted {:.4f} ms\n", p.spec,
      p.label, p.dynamic ? "dynamic" : "dense", p.batch, predictor::to_string(p.precision),
      p.streams, p.units.size(), p.launches.size(), p.predicted_s * 1e3);
  out += fmt::format("{:>6} {:<22} {:>6} {:>12} {:>12}  {}\n", "launch", "unit/step", "stream",
                     "start_ms", "solo_ms", "waits for");
  for (std::size_t i = 0; i < p.launches.size(); ++i) {
    const auto& l = p.launches[i];
    out += fmt::format("{:>6} {:<22} {:>6} {:>12.4f} {:>12.4f}  {}\n", i,
                       p.units[l.unit].name + "/" + l.step, l.stream, l.predicted_start_s * 1e3,
                       l.predicted_s * 1e3, fmt::join(l.waits, ","));
  }
  for (const auto& line : p.not_covered()) out += fmt::format("not covered: {}\n", line);
  return out;
}

}  // namespace lasnet::profiler
