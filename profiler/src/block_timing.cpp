#include "lasnet/profiler/block_timing.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

#include "lasnet/common/document.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/common/file_io.hpp"
#include "lasnet/common/json_reader.hpp"
#include "lasnet/common/mask.hpp"

namespace lasnet::profiler {

namespace {

using ordered = nlohmann::ordered_json;

ordered summary_to_json(const Summary& s) {
  ordered j;
  j["median"] = s.median;
  j["p10"] = s.p10;
  j["p90"] = s.p90;
  j["min"] = s.min;
  j["max"] = s.max;
  j["mean"] = s.mean;
  j["stddev"] = s.stddev;
  j["runs"] = s.runs;
  return j;
}

Summary summary_from_json(const json::value& v, const std::string& path) {
  json::ObjectReader r(v, path);
  Summary s;
  s.median = json::non_negative_number(r.required("median"), r.path_of("median"));
  s.p10 = json::non_negative_number(r.required("p10"), r.path_of("p10"));
  s.p90 = json::non_negative_number(r.required("p90"), r.path_of("p90"));
  s.min = json::non_negative_number(r.required("min"), r.path_of("min"));
  s.max = json::non_negative_number(r.required("max"), r.path_of("max"));
  s.mean = json::non_negative_number(r.required("mean"), r.path_of("mean"));
  s.stddev = json::non_negative_number(r.required("stddev"), r.path_of("stddev"));
  s.runs = static_cast<std::size_t>(r.required_positive_int("runs"));
  r.reject_unknown();
  return s;
}

ordered device_to_json(const DeviceInfo& d) {
  ordered j;
  j["name"] = d.name;
  j["pci_bus_id"] = d.pci_bus_id;
  j["compute_capability"] =
      fmt::format("{}.{}", d.compute_capability_major, d.compute_capability_minor);
  j["sm_count"] = d.sm_count;
  j["l2_size_bytes"] = d.l2_size_bytes;
  j["max_sm_clock_hz"] = d.max_sm_clock_hz;
  j["driver_version"] = d.driver_version;
  j["cuda_runtime_version"] = d.cuda_runtime_version;
  return j;
}

DeviceInfo device_from_json(const json::value& v, const std::string& path) {
  json::ObjectReader r(v, path);
  DeviceInfo d;
  d.name = r.required_string("name");
  d.pci_bus_id = r.required_string("pci_bus_id");
  const std::string cc = r.required_string("compute_capability");
  if (std::sscanf(cc.c_str(), "%d.%d", &d.compute_capability_major, &d.compute_capability_minor) !=
      2) {
    json::fail(r.path_of("compute_capability"), "expected MAJOR.MINOR");
  }
  d.sm_count = r.required_positive_int("sm_count");
  d.l2_size_bytes = r.required_positive_int("l2_size_bytes");
  d.max_sm_clock_hz = r.required_positive_number("max_sm_clock_hz");
  d.driver_version = r.required_string("driver_version");
  d.cuda_runtime_version = r.required_string("cuda_runtime_version");
  r.reject_unknown();
  return d;
}

// Clock states are kept as text: they are for people reading the file.
ClockState clocks_from_text(std::string text) {
  ClockState c;
  c.unavailable_reason = std::move(text);
  return c;
}

}  // namespace

std::string job_key(const kernels::BlockConfig& c, const std::vector<std::string>& skip) {
  std::string key =
      fmt::format("{} {}", kernels::to_string(c.shape), kernels::to_string(c.precision));
  if (c.dynamic) {
    key += fmt::format(" S{} d{:g} {}", c.dynamic->granularity, c.dynamic->density,
                       kernels::to_string(c.dynamic->fusion));
    if (c.dynamic->in_place_residual) key += " in-place";
  } else {
    key += " dense";
  }
  for (const auto& s : skip) key += " -" + s;
  return key;
}

const StepTiming* BlockTiming::step(std::string_view name) const {
  for (const auto& s : steps) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const BlockTiming* MeasurementSet::find(std::string_view key) const {
  for (const auto& b : blocks) {
    if (b.key == key) return &b;
  }
  return nullptr;
}

std::string measurements_to_json(const MeasurementSet& set) {
  ordered j = output_document("measurements", measurements_format_version);
  j["date"] = set.date;
  if (!set.kernels_version.empty()) j["kernels_version"] = set.kernels_version;
  j["device"] = device_to_json(set.device);
  j["clocks_before"] = set.clocks_before.available ? set.clocks_before.describe()
                                                   : set.clocks_before.unavailable_reason;
  j["clocks_after"] = set.clocks_after.available ? set.clocks_after.describe()
                                                 : set.clocks_after.unavailable_reason;
  ordered plan;
  plan["warmup_runs"] = set.plan.warmup_runs;
  plan["min_runs"] = set.plan.min_runs;
  plan["max_runs"] = set.plan.max_runs;
  plan["min_time_s"] = set.plan.min_time_s;
  plan["max_time_s"] = set.plan.max_time_s;
  plan["noise_threshold"] = set.plan.noise_threshold;
  j["sampling"] = plan;
  j["l2_flush"] = set.l2_flush;
  auto blocks = ordered::array();
  for (const auto& b : set.blocks) {
    ordered jb;
    jb["key"] = b.key;
    jb["supported"] = b.supported;
    if (!b.supported) {
      jb["reason"] = b.reason;
      blocks.push_back(jb);
      continue;
    }
    jb["active_patches"] = b.active_patches;
    if (!b.masks.empty()) jb["masks"] = b.masks;
    jb["latency_s"] = summary_to_json(b.latency_s);
    jb["noisy"] = b.noisy;
    auto steps = ordered::array();
    for (const auto& s : b.steps) {
      ordered js;
      js["name"] = s.name;
      js["kernel"] = s.kernel;
      js["latency_s"] = summary_to_json(s.latency_s);
      js["noisy"] = s.noisy;
      steps.push_back(js);
    }
    jb["steps"] = steps;
    blocks.push_back(jb);
  }
  j["blocks"] = blocks;
  return j.dump(1) + "\n";
}

MeasurementSet parse_measurements(std::string_view text, std::string_view source) {
  try {
    const json::value root = json::parse(text, source);
    json::ObjectReader r(root, "");
    // Files written before the common label say "kind": "lasnet-measurements" (version 1).
    if (!read_document_version(r, "measurements", measurements_format_version)) {
      if (!r.has("kind")) json::fail("schema", "missing required key (\"lasnet.measurements\")");
      if (r.required_string("kind") != "lasnet-measurements") {
        json::fail("kind", "expected \"lasnet-measurements\"");
      }
    }
    MeasurementSet set;
    set.date = r.required_string("date");
    set.kernels_version = r.optional_string("kernels_version", "");
    set.device = device_from_json(r.required("device"), "device");
    set.clocks_before = clocks_from_text(r.required_string("clocks_before"));
    set.clocks_after = clocks_from_text(r.required_string("clocks_after"));
    {
      json::ObjectReader p(r.required("sampling"), "sampling");
      set.plan.warmup_runs =
          static_cast<int>(json::as_int(p.required("warmup_runs"), p.path_of("warmup_runs")));
      set.plan.min_runs = static_cast<int>(p.required_positive_int("min_runs"));
      set.plan.max_runs = static_cast<int>(p.required_positive_int("max_runs"));
      set.plan.min_time_s =
          json::non_negative_number(p.required("min_time_s"), p.path_of("min_time_s"));
      set.plan.max_time_s = p.required_positive_number("max_time_s");
      set.plan.noise_threshold = p.required_positive_number("noise_threshold");
      p.reject_unknown();
    }
    set.l2_flush = r.required_string("l2_flush");
    const auto& blocks = json::as_array(r.required("blocks"), "blocks");
    std::set<std::string> keys;
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      const std::string path = json::join("blocks", i);
      json::ObjectReader rb(blocks[i], path);
      BlockTiming b;
      b.key = rb.required_string("key");
      if (!keys.insert(b.key).second) json::fail(rb.path_of("key"), "appears twice");
      b.supported = json::as_bool(rb.required("supported"), rb.path_of("supported"));
      if (!b.supported) {
        b.reason = rb.required_string("reason");
        rb.reject_unknown();
        set.blocks.push_back(std::move(b));
        continue;
      }
      b.active_patches = json::as_int(rb.required("active_patches"), rb.path_of("active_patches"));
      b.masks = rb.optional_string("masks", "");
      if (!b.masks.empty() && !parse_mask_model(b.masks)) {
        json::fail(rb.path_of("masks"),
                   fmt::format("'{}' is not one of uniform, clustered, varied", b.masks));
      }
      b.latency_s = summary_from_json(rb.required("latency_s"), rb.path_of("latency_s"));
      b.noisy = json::as_bool(rb.required("noisy"), rb.path_of("noisy"));
      const auto& steps = json::as_array(rb.required("steps"), rb.path_of("steps"));
      for (std::size_t k = 0; k < steps.size(); ++k) {
        const std::string spath = json::join(rb.path_of("steps"), k);
        json::ObjectReader rs(steps[k], spath);
        StepTiming s;
        s.name = rs.required_string("name");
        s.kernel = rs.required_string("kernel");
        s.latency_s = summary_from_json(rs.required("latency_s"), rs.path_of("latency_s"));
        s.noisy = json::as_bool(rs.required("noisy"), rs.path_of("noisy"));
        rs.reject_unknown();
        b.steps.push_back(std::move(s));
      }
      rb.reject_unknown();
      set.blocks.push_back(std::move(b));
    }
    r.reject_unknown();
    return set;
  } catch (const Error& e) {
    if (std::string_view(e.what()).starts_with(source)) throw;
    throw Error(fmt::format("{}: {}", source, e.what()));
  }
}

MeasurementSet load_measurements(const std::filesystem::path& file) {
  return parse_measurements(read_text_file(file), file.string());
}

double step_event_overhead_s(const MeasurementSet& set) {
  std::vector<double> per_step;
  for (const auto& b : set.blocks) {
    if (!b.supported || b.steps.size() < 2 || !(b.latency_s.median > 0)) continue;
    double sum = 0;
    for (const auto& st : b.steps) sum += st.latency_s.median;
    per_step.push_back(
        std::max(0.0, (sum - b.latency_s.median) / static_cast<double>(b.steps.size())));
  }
  if (per_step.empty()) return 0;
  const auto mid = per_step.begin() + static_cast<std::ptrdiff_t>(per_step.size() / 2);
  std::nth_element(per_step.begin(), mid, per_step.end());
  return *mid;
}

double step_kernel_s(const StepTiming& step, double event_overhead_s) {
  const double t = step.latency_s.median;
  return std::max(t - event_overhead_s, 0.25 * t);
}

void merge_measurements(MeasurementSet& into, const MeasurementSet& more) {
  for (const auto& b : more.blocks) {
    if (into.find(b.key) == nullptr) into.blocks.push_back(b);
  }
}

}  // namespace lasnet::profiler
