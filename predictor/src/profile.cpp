#include "lasnet/predictor/profile.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>

#include "lasnet/common/document.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/common/file_io.hpp"
#include "lasnet/common/json_reader.hpp"

namespace lasnet::predictor {

namespace {

constexpr Precision all_precisions[] = {Precision::fp32, Precision::tf32, Precision::fp16};

Precision read_precision_key(std::string_view key, std::string_view path) {
  const auto p = parse_precision(key);
  if (!p) json::fail(path, fmt::format("unknown precision '{}' (known: fp32, tf32, fp16)", key));
  return *p;
}

Calibration read_calibration(const json::value& v, const std::string& path) {
  json::ObjectReader r(v, path);
  Calibration c;
  if (const auto* eff = r.optional("compute_efficiency")) {
    const std::string epath = r.path_of("compute_efficiency");
    json::ObjectReader er(*eff, epath);
    for (const auto& [key, value] : eff->items()) {
      er.optional(key);
      const std::string kpath = json::join(epath, key);
      c.compute_efficiency[read_precision_key(key, kpath)] = json::positive_number(value, kpath);
    }
  }
  if (const auto* d = r.optional("dram_efficiency")) {
    c.dram_efficiency = json::positive_number(*d, r.path_of("dram_efficiency"));
  }
  if (const auto* l = r.optional("l2_efficiency")) {
    c.l2_efficiency = json::positive_number(*l, r.path_of("l2_efficiency"));
  }
  // Objects of operator class -> number (every key is free-form; the values are checked).
  const auto read_class_map = [&r](std::string_view key, std::map<std::string, double>& into,
                                   double (*number)(const json::value&, std::string_view)) {
    const auto* o = r.optional(key);
    if (o == nullptr) return;
    const std::string opath = r.path_of(key);
    json::ObjectReader orr(*o, opath);
    for (const auto& [k, value] : o->items()) {
      orr.optional(k);
      into[k] = number(value, json::join(opath, k));
    }
  };
  read_class_map("op_scale", c.op_scale, json::positive_number);
  read_class_map("op_offset_s", c.op_offset_s, json::non_negative_number);
  read_class_map("op_compute_scale", c.op_compute_scale, json::positive_number);
  read_class_map("gemm_efficiency", c.gemm_efficiency, json::positive_number);
  read_class_map("gemm_memory_efficiency", c.gemm_memory_efficiency, json::positive_number);
  read_class_map("gemm_round_s_of", c.gemm_round, json::non_negative_number);
  if (const auto* l = r.optional("latency_warps")) {
    c.latency_warps = json::non_negative_number(*l, r.path_of("latency_warps"));
  }
  if (const auto* l = r.optional("warp_iteration_s")) {
    c.warp_iteration_s = json::non_negative_number(*l, r.path_of("warp_iteration_s"));
  }
  // Profiles calibrated before the masker's pool was priced by its iterations carry how its
  // warps' chains added up (warps^k); still validated, no longer used (pool_iteration_s and
  // pool_issue_s say it now, at their defaults until such a profile is refitted).
  if (const auto* l = r.optional("pool_warp_exponent")) {
    json::non_negative_number(*l, r.path_of("pool_warp_exponent"));
  }
  if (const auto* l = r.optional("pool_iteration_s")) {
    c.pool_iteration_s = json::non_negative_number(*l, r.path_of("pool_iteration_s"));
  }
  if (const auto* l = r.optional("pool_issue_s")) {
    c.pool_issue_s = json::non_negative_number(*l, r.path_of("pool_issue_s"));
  }
  if (const auto* l = r.optional("serial_load_s")) {
    c.serial_load_s = json::non_negative_number(*l, r.path_of("serial_load_s"));
  }
  if (const auto* l = r.optional("load_latency_s")) {
    c.load_latency_s = json::non_negative_number(*l, r.path_of("load_latency_s"));
  }
  if (const auto* l = r.optional("l1_wavefront_s")) {
    c.l1_wavefront_s = json::non_negative_number(*l, r.path_of("l1_wavefront_s"));
  }
  if (const auto* l = r.optional("gemm_round_s")) {
    c.gemm_round_s = json::non_negative_number(*l, r.path_of("gemm_round_s"));
  }
  if (const auto* f = r.optional("fitted_on")) {
    json::ObjectReader fr(*f, r.path_of("fitted_on"));
    Calibration::FittedOn on;
    on.device = fr.optional_string("device", "");
    on.clock_hz = fr.required_positive_number("clock_hz");
    on.kernels = fr.optional_string("kernels", "");
    if (const auto* classes = fr.optional("classes")) {
      const std::string cpath = fr.path_of("classes");
      const auto& list = json::as_array(*classes, cpath);
      for (std::size_t i = 0; i < list.size(); ++i) {
        on.classes.push_back(json::as_string(list[i], json::join(cpath, i)));
      }
    }
    fr.reject_unknown();
    c.fitted_on = std::move(on);
  }
  r.reject_unknown();
  return c;
}

double fraction(const json::value& v, std::string_view path) {
  const double x = json::as_number(v, path);
  if (x < 0 || x > 1) json::fail(path, fmt::format("{} is outside [0, 1]", x));
  return x;
}

ValidationSummary read_validation(const json::value& v, const std::string& path) {
  json::ObjectReader r(v, path);
  ValidationSummary s;
  s.date = r.required_string("date");
  s.report = r.optional_string("report", "");
  s.kernels = static_cast<std::size_t>(r.required_positive_int("kernels"));
  s.kernel_mape = json::non_negative_number(r.required("kernel_mape"), r.path_of("kernel_mape"));
  s.kernel_within_15 = fraction(r.required("kernel_within_15"), r.path_of("kernel_within_15"));
  if (const auto* n = r.optional("networks")) {
    s.networks = static_cast<std::size_t>(json::positive_int(*n, r.path_of("networks")));
    s.network_within_10 = fraction(r.required("network_within_10"), r.path_of("network_within_10"));
    s.network_worst =
        json::non_negative_number(r.required("network_worst"), r.path_of("network_worst"));
  }
  r.reject_unknown();
  return s;
}

Provenance read_provenance(const json::value& v, const std::string& path) {
  json::ObjectReader r(v, path);
  Provenance p;
  p.source = r.required_string("source");
  if (p.source != "datasheet" && p.source != "measured" && p.source != "calibrated" &&
      p.source != "transferred") {
    json::fail(
        r.path_of("source"),
        fmt::format("'{}' is not one of datasheet, measured, calibrated, transferred", p.source));
  }
  p.date = r.required_string("date");
  p.tool_version = r.optional_string("tool_version", "");
  p.device_name = r.optional_string("device_name", "");
  p.driver = r.optional_string("driver", "");
  p.notes = r.optional_string("notes", "");
  if (const auto* n = r.optional("validation")) {
    p.validation = read_validation(*n, r.path_of("validation"));
  }
  r.reject_unknown();
  return p;
}

}  // namespace

std::string_view to_string(Precision p) {
  switch (p) {
    case Precision::fp32:
      return "fp32";
    case Precision::tf32:
      return "tf32";
    case Precision::fp16:
      return "fp16";
  }
  return "?";
}

std::optional<Precision> parse_precision(std::string_view text) {
  for (const Precision p : all_precisions) {
    if (to_string(p) == text) return p;
  }
  return std::nullopt;
}

int bytes_per_element(Precision p) {
  return p == Precision::fp16 ? 2 : 4;
}

double Calibration::compute_efficiency_of(Precision p) const {
  const auto it = compute_efficiency.find(p);
  return it == compute_efficiency.end() ? 1.0 : it->second;
}

std::string_view gemm_family(std::string_view gemm_variant) {
  const auto implementation = gemm_variant.find('.');
  if (implementation == std::string_view::npos) return {};
  const auto precision = gemm_variant.find('.', implementation + 1);
  return precision == std::string_view::npos ? std::string_view{}
                                             : gemm_variant.substr(0, precision);
}

namespace {

// A variant's entry in a per-variant map, else its split sibling's (the same tile's main loop,
// with or without the split: "igemm.fp32.128x64.w4" and "igemm.fp32.128x64.w4.splitk"), else
// the geometric mean of its family's entries (the other tiles of its implementation and
// precision). A variant the fit lacks is a tile of the same kernel family, not an op of no
// kernel: the precision's own entry prices the latter (the memory-bound elementwise ops, where
// the fit cannot tell its value and leaves it anywhere up to its bound).
std::optional<double> variant_entry(const std::map<std::string, double>& entries,
                                    std::string_view gemm_variant) {
  if (gemm_variant.empty()) return std::nullopt;
  if (const auto it = entries.find(std::string(gemm_variant)); it != entries.end()) {
    return it->second;
  }
  constexpr std::string_view split = ".splitk";
  const std::string sibling =
      gemm_variant.ends_with(split)
          ? std::string(gemm_variant.substr(0, gemm_variant.size() - split.size()))
          : fmt::format("{}{}", gemm_variant, split);
  if (const auto it = entries.find(sibling); it != entries.end()) return it->second;
  const std::string_view family = gemm_family(gemm_variant);
  if (family.empty()) return std::nullopt;
  double log_sum = 0;
  int count = 0;
  for (const auto& [variant, value] : entries) {
    if (gemm_family(variant) == family) {
      log_sum += std::log(value);
      ++count;
    }
  }
  if (count == 0) return std::nullopt;
  return std::exp(log_sum / count);
}

}  // namespace

double Calibration::compute_efficiency_of(Precision p, std::string_view gemm_variant) const {
  return variant_entry(gemm_efficiency, gemm_variant).value_or(compute_efficiency_of(p));
}

double Calibration::memory_efficiency_of(std::string_view gemm_variant) const {
  return variant_entry(gemm_memory_efficiency, gemm_variant).value_or(1.0);
}

double Calibration::gemm_round_of(std::string_view gemm_variant) const {
  return variant_entry(gemm_round, gemm_variant).value_or(gemm_round_s);
}

double Calibration::op_scale_of(std::string_view kind) const {
  const auto it = op_scale.find(std::string(kind));
  return it == op_scale.end() ? 1.0 : it->second;
}

double Calibration::op_scale_of(std::string_view op_class, std::string_view kind) const {
  if (const auto it = op_scale.find(std::string(op_class)); it != op_scale.end()) return it->second;
  return op_scale_of(kind);
}

double Calibration::op_offset_of(std::string_view op_class, std::string_view kind) const {
  if (const auto it = op_offset_s.find(std::string(op_class)); it != op_offset_s.end()) {
    return it->second;
  }
  const auto it = op_offset_s.find(std::string(kind));
  return it == op_offset_s.end() ? 0.0 : it->second;
}

namespace {
double or_cycles(double calibrated_s, double cycles, double clock_hz) {
  return calibrated_s > 0 ? calibrated_s : cycles / clock_hz;
}
}  // namespace

double Profile::serial_load_s() const {
  return or_cycles(calibration.serial_load_s, 64, clock_hz);
}
double Profile::pool_iteration_s() const {
  return or_cycles(calibration.pool_iteration_s, 150, clock_hz);
}
double Profile::pool_issue_s() const {
  return or_cycles(calibration.pool_issue_s, 12, clock_hz);
}
double Profile::warp_iteration_s() const {
  return or_cycles(calibration.warp_iteration_s, 1500, clock_hz);
}
double Profile::load_latency_s() const {
  return or_cycles(calibration.load_latency_s, 800, clock_hz);
}
double Profile::l1_wavefront_s() const {
  return or_cycles(calibration.l1_wavefront_s, 1, clock_hz);
}

double Profile::peak_flops_of(Precision p) const {
  if (const auto it = peak_flops_per_s.find(p); it != peak_flops_per_s.end()) return it->second;
  return peak_flops_per_s.at(Precision::fp32);
}

Profile parse_profile(std::string_view json_text, std::string_view source) {
  try {
    const json::value doc = json::parse(json_text, source);
    json::ObjectReader r(doc, "");
    Profile p;
    if (const auto version = read_document_version(r, "profile", Profile::current_schema_version)) {
      p.schema_version = *version;
    } else {
      // Profiles written before the common label carry "schema_version" instead.
      p.schema_version =
          static_cast<int>(json::as_int(r.required("schema_version"), "schema_version"));
      if (p.schema_version != Profile::current_schema_version) {
        json::fail("schema_version",
                   fmt::format("version {} is not supported (this build reads {})",
                               p.schema_version, Profile::current_schema_version));
      }
    }
    p.name = r.required_string("name");
    if (p.name.empty()) json::fail("name", "must not be empty");
    p.description = r.optional_string("description", "");
    p.sm_count = r.required_positive_int("sm_count");
    p.fp32_lanes_per_sm = r.required_positive_int("fp32_lanes_per_sm");
    p.clock_hz = r.required_positive_number("clock_hz");
    p.dram_bandwidth_bytes_per_s = r.required_positive_number("dram_bandwidth_bytes_per_s");
    if (const auto* v = r.optional("dram_peak_bytes_per_s")) {
      p.dram_peak_bytes_per_s = json::positive_number(*v, "dram_peak_bytes_per_s");
      if (p.dram_peak_bytes_per_s < p.dram_bandwidth_bytes_per_s) {
        json::fail("dram_peak_bytes_per_s",
                   "is below dram_bandwidth_bytes_per_s (the peak is the fastest stream measured)");
      }
    }
    p.l2_bandwidth_bytes_per_s = r.required_positive_number("l2_bandwidth_bytes_per_s");
    if (const auto* v = r.optional("sm_bandwidth_bytes_per_s")) {
      p.sm_bandwidth_bytes_per_s = json::positive_number(*v, "sm_bandwidth_bytes_per_s");
    } else {
      // An SM moves about 32 bytes per clock from L2 when nothing else limits it.
      p.sm_bandwidth_bytes_per_s = 32.0 * p.clock_hz;
    }
    p.l2_size_bytes = r.required_positive_int("l2_size_bytes");
    p.shared_memory_per_sm_bytes = r.required_positive_int("shared_memory_per_sm_bytes");
    p.max_threads_per_sm = r.optional_positive_int("max_threads_per_sm", 2048);
    p.max_blocks_per_sm = r.optional_positive_int("max_blocks_per_sm", 32);
    p.memory_transaction_bytes = r.required_positive_int("memory_transaction_bytes");
    p.launch_overhead_s =
        json::non_negative_number(r.required("launch_overhead_s"), "launch_overhead_s");
    if (const auto* v = r.optional("graph_launch_overhead_s")) {
      p.graph_launch_overhead_s = json::non_negative_number(*v, "graph_launch_overhead_s");
    }

    const auto& peaks = r.required("peak_flops_per_s");
    json::ObjectReader pr(peaks, "peak_flops_per_s");
    for (const auto& [key, value] : peaks.items()) {
      pr.optional(key);
      const std::string kpath = json::join("peak_flops_per_s", key);
      p.peak_flops_per_s[read_precision_key(key, kpath)] = json::positive_number(value, kpath);
    }
    if (!p.peak_flops_per_s.contains(Precision::fp32)) {
      json::fail("peak_flops_per_s.fp32", "missing required key");
    }

    const std::string combine = r.required_string("time_combine");
    if (combine == "overlap") {
      p.combine = TimeCombine::overlap;
    } else if (combine == "sum") {
      p.combine = TimeCombine::sum;
    } else {
      json::fail("time_combine", fmt::format("'{}' is not one of overlap, sum", combine));
    }
    if (const auto* c = r.optional("calibration"))
      p.calibration = read_calibration(*c, "calibration");
    p.provenance = read_provenance(r.required("provenance"), "provenance");
    r.reject_unknown();
    return p;
  } catch (const Error& e) {
    const std::string message = e.what();
    // json::parse already names the source; everything else gets it here.
    if (message.starts_with(source)) throw;
    throw Error(fmt::format("{}: {}", source, message));
  }
}

Profile graph_launched(Profile profile) {
  profile.graph_launches = true;
  return profile;
}

Profile load_profile(const std::filesystem::path& file) {
  return parse_profile(read_text_file(file), file.string());
}

std::string profile_to_json(const Profile& p) {
  nlohmann::ordered_json j = input_document("profile", p.schema_version);
  j["name"] = p.name;
  j["description"] = p.description;
  j["sm_count"] = p.sm_count;
  j["fp32_lanes_per_sm"] = p.fp32_lanes_per_sm;
  j["clock_hz"] = p.clock_hz;
  j["dram_bandwidth_bytes_per_s"] = p.dram_bandwidth_bytes_per_s;
  if (p.dram_peak_bytes_per_s > 0) j["dram_peak_bytes_per_s"] = p.dram_peak_bytes_per_s;
  j["l2_bandwidth_bytes_per_s"] = p.l2_bandwidth_bytes_per_s;
  j["sm_bandwidth_bytes_per_s"] = p.sm_bandwidth_bytes_per_s;
  j["l2_size_bytes"] = p.l2_size_bytes;
  j["shared_memory_per_sm_bytes"] = p.shared_memory_per_sm_bytes;
  j["max_threads_per_sm"] = p.max_threads_per_sm;
  j["max_blocks_per_sm"] = p.max_blocks_per_sm;
  j["memory_transaction_bytes"] = p.memory_transaction_bytes;
  j["launch_overhead_s"] = p.launch_overhead_s;
  if (p.graph_launch_overhead_s > 0) j["graph_launch_overhead_s"] = p.graph_launch_overhead_s;
  nlohmann::ordered_json peaks = nlohmann::ordered_json::object();
  for (const auto& [prec, flops] : p.peak_flops_per_s) peaks[std::string(to_string(prec))] = flops;
  j["peak_flops_per_s"] = peaks;
  j["time_combine"] = p.combine == TimeCombine::overlap ? "overlap" : "sum";
  nlohmann::ordered_json cal;
  nlohmann::ordered_json eff = nlohmann::ordered_json::object();
  for (const auto& [prec, e] : p.calibration.compute_efficiency) {
    eff[std::string(to_string(prec))] = e;
  }
  cal["compute_efficiency"] = eff;
  cal["dram_efficiency"] = p.calibration.dram_efficiency;
  cal["l2_efficiency"] = p.calibration.l2_efficiency;
  nlohmann::ordered_json scale = nlohmann::ordered_json::object();
  for (const auto& [kind, s] : p.calibration.op_scale) scale[kind] = s;
  cal["op_scale"] = scale;
  // Maps keyed by class or kernel variant, written only when they have entries.
  const auto write_map = [&cal](const char* key, const std::map<std::string, double>& values) {
    if (values.empty()) return;
    auto o = nlohmann::ordered_json::object();
    for (const auto& [k, v] : values) o[k] = v;
    cal[key] = o;
  };
  write_map("op_offset_s", p.calibration.op_offset_s);
  write_map("op_compute_scale", p.calibration.op_compute_scale);
  write_map("gemm_efficiency", p.calibration.gemm_efficiency);
  write_map("gemm_memory_efficiency", p.calibration.gemm_memory_efficiency);
  write_map("gemm_round_s_of", p.calibration.gemm_round);
  // Written only when set, so profiles without them keep their bytes.
  if (p.calibration.latency_warps > 0) cal["latency_warps"] = p.calibration.latency_warps;
  if (p.calibration.serial_load_s > 0) cal["serial_load_s"] = p.calibration.serial_load_s;
  if (p.calibration.pool_iteration_s > 0) {
    cal["pool_iteration_s"] = p.calibration.pool_iteration_s;
  }
  if (p.calibration.pool_issue_s > 0) cal["pool_issue_s"] = p.calibration.pool_issue_s;
  if (p.calibration.warp_iteration_s > 0) {
    cal["warp_iteration_s"] = p.calibration.warp_iteration_s;
  }
  if (p.calibration.load_latency_s > 0) cal["load_latency_s"] = p.calibration.load_latency_s;
  if (p.calibration.l1_wavefront_s > 0) cal["l1_wavefront_s"] = p.calibration.l1_wavefront_s;
  if (p.calibration.gemm_round_s > 0) cal["gemm_round_s"] = p.calibration.gemm_round_s;
  if (const auto& on = p.calibration.fitted_on) {
    nlohmann::ordered_json f;
    f["device"] = on->device;
    f["clock_hz"] = on->clock_hz;
    f["kernels"] = on->kernels;
    f["classes"] = on->classes;
    cal["fitted_on"] = f;
  }
  j["calibration"] = cal;
  nlohmann::ordered_json prov;
  prov["source"] = p.provenance.source;
  prov["date"] = p.provenance.date;
  prov["tool_version"] = p.provenance.tool_version;
  prov["device_name"] = p.provenance.device_name;
  prov["driver"] = p.provenance.driver;
  prov["notes"] = p.provenance.notes;
  if (const auto& v = p.provenance.validation) {
    nlohmann::ordered_json s;
    s["date"] = v->date;
    s["report"] = v->report;
    s["kernels"] = v->kernels;
    s["kernel_mape"] = v->kernel_mape;
    s["kernel_within_15"] = v->kernel_within_15;
    if (v->networks > 0) {
      s["networks"] = v->networks;
      s["network_within_10"] = v->network_within_10;
      s["network_worst"] = v->network_worst;
    }
    prov["validation"] = s;
  }
  j["provenance"] = prov;
  return j.dump(2) + "\n";
}

std::filesystem::path find_profile(std::string_view name_or_file,
                                   const std::vector<std::filesystem::path>& search_dirs) {
  const std::filesystem::path as_path(name_or_file);
  std::error_code ec;
  if (std::filesystem::is_regular_file(as_path, ec)) return as_path;
  const bool looks_like_path =
      name_or_file.find('/') != std::string_view::npos || as_path.extension() == ".json";
  if (!looks_like_path) {
    for (const auto& dir : search_dirs) {
      const auto candidate = dir / (std::string(name_or_file) + ".json");
      if (std::filesystem::is_regular_file(candidate, ec)) return candidate;
    }
  }
  std::string known;
  for (const auto& p : list_profiles(search_dirs)) {
    known += (known.empty() ? "" : ", ") + p.stem().string();
  }
  if (looks_like_path) throw Error(fmt::format("{}: no such profile file", name_or_file));
  throw Error(fmt::format("no hardware profile named '{}' (known: {})", name_or_file,
                          known.empty() ? "none found" : known));
}

std::vector<std::filesystem::path> list_profiles(
    const std::vector<std::filesystem::path>& search_dirs) {
  std::vector<std::filesystem::path> found;
  std::set<std::string> names;
  for (const auto& dir : search_dirs) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) continue;
    std::vector<std::filesystem::path> here;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      if (entry.is_regular_file() && entry.path().extension() == ".json")
        here.push_back(entry.path());
    }
    std::sort(here.begin(), here.end());
    for (auto& p : here) {
      if (names.insert(p.stem().string()).second) found.push_back(std::move(p));
    }
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.stem() < b.stem(); });
  return found;
}

}  // namespace lasnet::predictor
