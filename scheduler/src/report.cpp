#include "lasnet/scheduler/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "lasnet/common/document.hpp"

namespace lasnet::scheduler {

namespace {

using ojson = nlohmann::ordered_json;

double ms(double seconds) {
  return seconds * 1e3;
}

ojson feasibility_json(const Feasibility& f) {
  return f.ok ? ojson(nullptr) : ojson(f.reason);
}

// The predecessors of `v` (global vertex ids), ascending.
std::vector<std::size_t> predecessors(const OpGraph& graph, Vertex v) {
  std::vector<std::size_t> out;
  for (const auto e : boost::make_iterator_range(boost::in_edges(v, graph))) {
    out.push_back(boost::source(e, graph));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string density_text(const Plan& plan) {
  return plan.density ? fmt::format("{:.2f}", *plan.density) : std::string("as in the spec");
}

}  // namespace

std::string plan_to_json(const Plan& plan, const predictor::Spec& spec,
                         const predictor::Profile& hw) {
  ojson j = output_document("plan", plan_format_version);
  j["spec"] = spec.name;
  j["hardware"] = hw.name;
  j["mode"] = predictor::to_string(spec.dynamic.mode);
  j["objective"] = to_string(plan.objective);
  j["density"] = plan.density ? ojson(*plan.density) : ojson(nullptr);
  j["budget_ms"] =
      plan.objective == Objective::max_density ? ojson(ms(plan.budget_s)) : ojson(nullptr);
  j["feasible"] = plan.feasibility.ok;
  j["reason"] = feasibility_json(plan.feasibility);
  j["streams"] = plan.streams;
  j["max_streams"] = plan.max_streams;
  j["kernel_schedules"] = plan.kernel_schedules;
  j["graph_launches"] = plan.graph_launches;
  j["granularity_tolerance"] = plan.granularity_tolerance;
  j["granularity"] = plan.granularity;
  j["latency_ms"] = ms(plan.latency_s);
  j["single_stream_latency_ms"] = ms(plan.single_stream_latency_s);
  j["dense_latency_ms"] = ms(plan.dense_latency_s);
  j["dense_streams_latency_ms"] = ms(plan.dense_streams_latency_s);
  j["search"] = ojson{{"plans_in_space", plan.plans_in_space},
                      {"block_evaluations", plan.block_evaluations},
                      {"predicted_ops", plan.predicted_ops}};

  ojson stages = ojson::array();
  for (const auto& st : plan.stages) {
    ojson options = ojson::array();
    for (const auto& o : st.options) {
      const bool ok = o.feasibility.ok;
      options.push_back(
          ojson{{"granularity", o.granularity},
                {"feasible", ok},
                {"reason", feasibility_json(o.feasibility)},
                {"latency_ms", ok ? ojson(ms(o.latency_s)) : ojson(nullptr)},
                {"network_latency_ms", ok ? ojson(ms(o.network_latency_s)) : ojson(nullptr)}});
    }
    stages.push_back(ojson{{"name", st.name},
                           {"granularity", st.granularity},
                           {"fastest_granularity", st.fastest_granularity},
                           {"latency_ms", ms(st.latency_s)},
                           {"options", options}});
  }
  j["stages"] = stages;

  ojson streams = ojson::array();
  for (const auto& s : plan.stream_options) {
    streams.push_back(ojson{
        {"streams", s.streams}, {"latency_ms", ms(s.latency_s)}, {"granularity", s.granularity}});
  }
  j["stream_options"] = streams;

  ojson scan = ojson::array();
  for (const auto& d : plan.density_scan) {
    scan.push_back(ojson{
        {"density", d.density}, {"latency_ms", ms(d.latency_s)}, {"meets_budget", d.meets_budget}});
  }
  j["density_scan"] = scan;

  // Launch rank of every vertex: the order a single host thread issues the kernels.
  std::vector<std::size_t> launch(boost::num_vertices(plan.graph), 0);
  for (std::size_t i = 0; i < plan.schedule.launch_order.size(); ++i) {
    launch[plan.schedule.launch_order[i]] = i;
  }
  // Vertices of block b, in node order (the graph appends blocks in order).
  std::vector<std::vector<Vertex>> by_block(plan.blocks.size());
  for (const Vertex v : boost::make_iterator_range(boost::vertices(plan.graph))) {
    by_block.at(plan.graph[v].block).push_back(v);
  }
  ojson blocks = ojson::array();
  for (std::size_t b = 0; b < plan.blocks.size(); ++b) {
    const auto& c = plan.blocks[b];
    ojson ops = ojson::array();
    for (const Vertex v : by_block[b]) {
      const auto& vertex = plan.graph[v];
      const auto& when = plan.schedule.ops[v];
      ops.push_back(ojson{{"id", v},
                          {"node", vertex.node},
                          {"name", vertex.name},
                          {"kind", predictor::to_string(vertex.op.kind)},
                          {"stream", when.stream},
                          {"launch", launch[v]},
                          {"after", predecessors(plan.graph, v)},
                          {"start_ms", ms(when.start_s)},
                          {"end_ms", ms(when.end_s)},
                          {"latency_ms", ms(vertex.latency_s)},
                          {"sm_demand", vertex.sm_demand}});
    }
    blocks.push_back(ojson{{"name", c.name},
                           {"stage", c.stage >= 0 ? ojson(c.stage) : ojson(nullptr)},
                           {"index", c.index_in_stage},
                           {"dynamic", c.dynamic},
                           {"granularity", c.granularity},
                           {"density", c.density},
                           {"fusion", predictor::to_string(c.fusion)},
                           {"latency_ms", ms(c.latency_s)},
                           {"unfused_latency_ms", ms(c.unfused_latency_s)},
                           {"fusion_saving_ms", ms(c.fusion_saving_s())},
                           {"single_stream_latency_ms", ms(c.single_stream_latency_s)},
                           {"ops", ops}});
  }
  j["blocks"] = blocks;
  return j.dump(2) + "\n";
}

std::string chrome_trace(const OpGraph& graph, const StreamSchedule& schedule,
                         std::string_view title) {
  constexpr int pid = 1;
  ojson events = ojson::array();
  events.push_back(ojson{{"name", "process_name"},
                         {"ph", "M"},
                         {"pid", pid},
                         {"tid", 0},
                         {"args", ojson{{"name", title}}}});
  for (std::int64_t s = 0; s < schedule.streams; ++s) {
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
  for (const Vertex v : schedule.launch_order) {
    const auto& vertex = graph[v];
    const auto& when = schedule.ops[v];
    events.push_back(ojson{{"name", fmt::format("{}/{}", vertex.block_name, vertex.name)},
                           {"cat", predictor::to_string(vertex.op.kind)},
                           {"ph", "X"},
                           {"pid", pid},
                           {"tid", when.stream},
                           {"ts", when.start_s * 1e6},
                           {"dur", (when.end_s - when.start_s) * 1e6},
                           {"args", ojson{{"id", v},
                                          {"solo_latency_us", vertex.latency_s * 1e6},
                                          {"sm_demand", vertex.sm_demand}}}});
  }
  // Trace Event Format viewers ignore top-level keys they do not know, so the trace carries the
  // label every output has; ts and dur stay microseconds, as the format defines them.
  ojson j = output_document("trace", trace_format_version);
  j["traceEvents"] = events;
  j["displayTimeUnit"] = "ms";
  j["otherData"] = ojson{{"tool", "lasnet schedule"},
                         {"streams", schedule.streams},
                         {"makespan_us", schedule.makespan_s * 1e6}};
  return j.dump(1) + "\n";
}

std::string plan_table(const Plan& plan, const predictor::Spec& spec,
                       const predictor::Profile& hw) {
  std::string out;
  auto line = [&out](std::string text) {
    out += text;
    out += '\n';
  };
  if (plan.objective == Objective::max_density) {
    line(fmt::format("lasnet schedule: {} on {}, budget {:.3f} ms, up to {} stream(s)", spec.name,
                     hw.name, ms(plan.budget_s), plan.max_streams));
  } else {
    line(fmt::format("lasnet schedule: {} on {}, density {}, up to {} stream(s)", spec.name,
                     hw.name, density_text(plan), plan.max_streams));
  }
  if (!plan.feasibility.ok) line(fmt::format("INFEASIBLE: {}", plan.feasibility.reason));
  const std::string gran = predictor::format_granularity(plan.granularity);
  line(fmt::format("plan: granularity {}, density {}, {} stream(s): {:.4f} ms", gran,
                   density_text(plan), plan.streams, ms(plan.latency_s)));
  line(
      fmt::format("      one stream {:.4f} ms ({:.3f}x); dense {:.4f} ms on one stream, "
                  "{:.4f} ms on {} ({:.3f}x vs dense)",
                  ms(plan.single_stream_latency_s),
                  plan.latency_s > 0 ? plan.single_stream_latency_s / plan.latency_s : 1.0,
                  ms(plan.dense_latency_s), ms(plan.dense_streams_latency_s), plan.streams,
                  plan.latency_s > 0 ? plan.dense_latency_s / plan.latency_s : 1.0));
  line(
      fmt::format("search: {} block evaluations, {} distinct ops priced ({:.3g} plans in the "
                  "space)",
                  plan.block_evaluations, plan.predicted_ops, plan.plans_in_space));

  line("");
  line(
      fmt::format("granularity per stage ({} stream(s), best fusion per block; recommended: the "
                  "finest S within {:.1f}% of the fastest):",
                  plan.streams, 100.0 * plan.granularity_tolerance));
  line(fmt::format("  {:<12} {:>5} {:>12} {:>12} {:>11}  {}", "stage", "S", "stage ms",
                   "network ms", "vs fastest", ""));
  for (const auto& st : plan.stages) {
    double fastest_s = st.latency_s;
    for (const auto& o : st.options) {
      if (o.granularity == st.fastest_granularity) fastest_s = o.latency_s;
    }
    for (const auto& o : st.options) {
      const bool chosen = o.granularity == st.granularity;
      const bool fastest = o.granularity == st.fastest_granularity;
      const char* mark = chosen && fastest ? "<- recommended (fastest)"
                         : chosen          ? "<- recommended"
                         : fastest         ? "(fastest)"
                                           : "";
      if (!o.feasibility.ok) {
        line(fmt::format("  {:<12} {:>5} {:>12} {:>12} {:>11}  {}", st.name, o.granularity, "-",
                         "-", "-", o.feasibility.reason));
        continue;
      }
      line(fmt::format("  {:<12} {:>5} {:>12.4f} {:>12.4f} {:>+10.1f}%  {}", st.name, o.granularity,
                       ms(o.latency_s), ms(o.network_latency_s),
                       fastest_s > 0 ? 100.0 * (o.latency_s / fastest_s - 1) : 0.0, mark));
    }
  }

  line("");
  line("streams (each re-optimised):");
  line(fmt::format("  {:>7} {:>12}  {}", "streams", "latency ms", "granularity"));
  for (const auto& s : plan.stream_options) {
    line(fmt::format("  {:>7} {:>12.4f}  {}{}", s.streams, ms(s.latency_s),
                     predictor::format_granularity(s.granularity),
                     s.streams == plan.streams ? "  <- chosen" : ""));
  }

  if (!plan.density_scan.empty()) {
    line("");
    line("density scan (best plan at each density):");
    line(fmt::format("  {:>8} {:>12}  {}", "density", "latency ms", "budget"));
    for (const auto& d : plan.density_scan) {
      line(fmt::format("  {:>8.3f} {:>12.4f}  {}", d.density, ms(d.latency_s),
                       d.meets_budget ? "meets" : "over"));
    }
  }

  line("");
  line("blocks:");
  line(fmt::format("  {:<14} {:>4} {:>7} {:<22} {:>10} {:>11} {:>10} {:>10}", "block", "S",
                   "density", "fusion", "ms", "unfused ms", "saving ms", "1-stream"));
  // The unfused form can be infeasible where a fused one is not (no tile fits its buffers).
  const auto maybe = [](double seconds) {
    return std::isfinite(seconds) ? fmt::format("{:.4f}", ms(seconds)) : std::string("infeasible");
  };
  for (const auto& c : plan.blocks) {
    line(fmt::format("  {:<14} {:>4} {:>7} {:<22} {:>10.4f} {:>11} {:>10} {:>10.4f}", c.name,
                     c.dynamic ? fmt::format("{}", c.granularity) : std::string("-"),
                     c.dynamic ? fmt::format("{:.2f}", c.density) : std::string("dense"),
                     c.dynamic ? predictor::to_string(c.fusion) : std::string("-"), ms(c.latency_s),
                     maybe(c.unfused_latency_s), maybe(c.fusion_saving_s()),
                     ms(c.single_stream_latency_s)));
  }
  return out;
}

std::string plan_csv(const Plan& plan) {
  std::string out =
      "stage,granularity,feasible,stage_latency_ms,network_latency_ms,recommended,fastest,reason\n";
  for (const auto& st : plan.stages) {
    for (const auto& o : st.options) {
      const bool ok = o.feasibility.ok;
      std::string reason = o.feasibility.reason;
      std::replace(reason.begin(), reason.end(), ',', ';');
      out += fmt::format("{},{},{},{},{},{},{},{}\n", st.name, o.granularity, ok ? 1 : 0,
                         ok ? fmt::format("{:.6f}", ms(o.latency_s)) : std::string(),
                         ok ? fmt::format("{:.6f}", ms(o.network_latency_s)) : std::string(),
                         o.granularity == st.granularity ? 1 : 0,
                         o.granularity == st.fastest_granularity ? 1 : 0, reason);
    }
  }
  return out;
}

}  // namespace lasnet::scheduler
