// `lasnet hw list|show|generate`: the hardware profiles the predictor runs on.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "context.hpp"
#include "lasnet/common/document.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/common/file_io.hpp"
#include "lasnet/common/json_reader.hpp"
#include "report.hpp"

namespace lasnet::cli {

namespace {

using predictor::Precision;
using predictor::Profile;

std::string today() {
  const auto now = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
  const std::chrono::year_month_day ymd{now};
  return fmt::format("{:04}-{:02}-{:02}", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
}

// "kernels 8.1% MAPE, networks 97% in +-10%", or "not validated": what a reader needs to know
// before trusting a profile's numbers.
std::string validation_text(const predictor::Provenance& provenance) {
  const auto& v = provenance.validation;
  if (!v) return "not validated";
  std::string text = fmt::format("kernels {:.1f}% MAPE", 100 * v->kernel_mape);
  if (v->networks > 0) {
    text += fmt::format(", networks {:.0f}% in +-10%", 100 * v->network_within_10);
  }
  return text;
}

void list_profiles(const Context& context, Format format) {
  std::vector<std::vector<std::string>> rows{{"name", "source", "SMs", "clock_GHz", "DRAM_GB/s",
                                              "fp32_TFLOP/s", "validated", "description"}};
  std::vector<Profile> profiles;
  for (const auto& path : predictor::list_profiles(context.profile_dirs)) {
    const Profile p = predictor::load_profile(path);
    rows.push_back({path.stem().string(), p.provenance.source, std::to_string(p.sm_count),
                    fmt::format("{:.3f}", p.clock_hz / 1e9),
                    fmt::format("{:.1f}", p.dram_bandwidth_bytes_per_s / 1e9),
                    fmt::format("{:.2f}", p.peak_flops_of(Precision::fp32) / 1e12),
                    validation_text(p.provenance), p.description});
    profiles.push_back(p);
  }
  if (format == Format::json) {
    auto list = nlohmann::ordered_json::array();
    for (std::size_t i = 1; i < rows.size(); ++i) {
      nlohmann::ordered_json row{
          {"name", rows[i][0]}, {"source", rows[i][1]}, {"description", rows[i][7]}};
      const auto& v = profiles[i - 1].provenance.validation;
      row["validation"] = v ? nlohmann::ordered_json{{"kernel_mape", v->kernel_mape},
                                                     {"kernel_within_15", v->kernel_within_15},
                                                     {"networks", v->networks},
                                                     {"network_within_10", v->network_within_10},
                                                     {"network_worst", v->network_worst},
                                                     {"report", v->report},
                                                     {"date", v->date}}
                            : nlohmann::ordered_json(nullptr);
      list.push_back(std::move(row));
    }
    // Version 1 of "lasnet.hw_list"; before the common label the output was the bare array.
    auto j = output_document("hw_list", 1);
    j["profiles"] = std::move(list);
    fmt::print("{}\n", j.dump(2));
  } else if (format == Format::csv) {
    for (const auto& row : rows) {
      std::string line;
      for (std::size_t i = 0; i < row.size(); ++i) line += (i ? "," : "") + csv_escape(row[i]);
      fmt::print("{}\n", line);
    }
  } else {
    fmt::print("{}", text_table(rows));
  }
}

void show_profile(const Context& context, const std::string& name, Format format) {
  const auto path = predictor::find_profile(name, context.profile_dirs);
  const Profile p = predictor::load_profile(path);
  if (format == Format::json) {
    fmt::print("{}", predictor::profile_to_json(p));
    return;
  }
  std::vector<std::vector<std::string>> rows{{"field", "value"}};
  const auto add = [&rows](std::string k, std::string v) {
    rows.push_back({std::move(k), std::move(v)});
  };
  add("file", path.string());
  add("name", p.name);
  add("description", p.description);
  add("SMs", std::to_string(p.sm_count));
  add("FP32 lanes / SM", std::to_string(p.fp32_lanes_per_sm));
  add("clock", fmt::format("{:.3f} GHz", p.clock_hz / 1e9));
  add("DRAM bandwidth", fmt::format("{:.1f} GB/s", p.dram_bandwidth_bytes_per_s / 1e9));
  if (p.dram_peak_bytes_per_s > 0) {
    add("DRAM peak stream", fmt::format("{:.1f} GB/s", p.dram_peak_bytes_per_s / 1e9));
  }
  add("L2 bandwidth", fmt::format("{:.1f} GB/s", p.l2_bandwidth_bytes_per_s / 1e9));
  add("per-SM bandwidth", fmt::format("{:.1f} GB/s", p.sm_bandwidth_bytes_per_s / 1e9));
  add("L2 size", fmt::format("{:.2f} MiB", static_cast<double>(p.l2_size_bytes) / (1 << 20)));
  add("shared memory / SM", fmt::format("{} KiB", p.shared_memory_per_sm_bytes / 1024));
  add("threads / SM", std::to_string(p.max_threads_per_sm));
  add("blocks / SM", std::to_string(p.max_blocks_per_sm));
  add("memory transaction", fmt::format("{} B", p.memory_transaction_bytes));
  add("launch overhead", fmt::format("{:.2f} us", p.launch_overhead_s * 1e6));
  for (const auto& [prec, flops] : p.peak_flops_per_s) {
    add(fmt::format("peak {}", predictor::to_string(prec)),
        fmt::format("{:.2f} TFLOP/s", flops / 1e12));
  }
  add("time combine", p.combine == predictor::TimeCombine::overlap ? "overlap (max)" : "sum");
  for (const auto& [prec, e] : p.calibration.compute_efficiency) {
    add(fmt::format("compute efficiency {}", predictor::to_string(prec)), fmt::format("{:.3f}", e));
  }
  add("DRAM efficiency", fmt::format("{:.3f}", p.calibration.dram_efficiency));
  add("L2 efficiency", fmt::format("{:.3f}", p.calibration.l2_efficiency));
  for (const auto& [kind, s] : p.calibration.op_scale)
    add("op scale " + kind, fmt::format("{:.3f}", s));
  for (const auto& [kind, o] : p.calibration.op_offset_s)
    add("op offset " + kind, fmt::format("{:.3f} us", o * 1e6));
  for (const auto& [kind, s] : p.calibration.op_compute_scale)
    add("op compute scale " + kind, fmt::format("{:.3f}", s));
  const auto& c = p.calibration;
  if (c.latency_warps > 0) add("latency warps", fmt::format("{:.3f}", c.latency_warps));
  for (const auto& [label, v] : {std::pair{"serial load", c.serial_load_s},
                                 {"warp iteration", c.warp_iteration_s},
                                 {"load latency", c.load_latency_s},
                                 {"L1 wavefront", c.l1_wavefront_s},
                                 {"GEMM round", c.gemm_round_s}}) {
    if (v > 0) add(label, fmt::format("{:.4f} us ({:.1f} SM cycles)", v * 1e6, v * p.clock_hz));
  }
  for (const auto& [variant, v] : c.gemm_round) {
    add("GEMM round " + variant,
        fmt::format("{:.4f} us ({:.1f} SM cycles)", v * 1e6, v * p.clock_hz));
  }
  if (const auto& on = c.fitted_on) {
    add("fitted on",
        fmt::format("{} at {:.3f} GHz, kernels {}", on->device.empty() ? "?" : on->device,
                    on->clock_hz / 1e9, on->kernels.empty() ? "?" : on->kernels));
    add("fitted classes", fmt::format("{}", fmt::join(on->classes, " ")));
  }
  add("source", p.provenance.source);
  add("date", p.provenance.date);
  add("validated", validation_text(p.provenance));
  if (const auto& v = p.provenance.validation) {
    add("validation", fmt::format("{} kernel steps within +-15%: {:.1f}%{}; {} ({})", v->kernels,
                                  100 * v->kernel_within_15,
                                  v->networks > 0 ? fmt::format("; {} networks, worst {:.1f}%",
                                                                v->networks, 100 * v->network_worst)
                                                  : std::string(),
                                  v->report, v->date));
  }
  if (!p.provenance.device_name.empty()) add("device", p.provenance.device_name);
  if (!p.provenance.driver.empty()) add("driver", p.provenance.driver);
  if (!p.provenance.notes.empty()) add("notes", p.provenance.notes);
  if (format == Format::csv) {
    for (const auto& row : rows) fmt::print("{},{}\n", csv_escape(row[0]), csv_escape(row[1]));
  } else {
    // A listing, values left-aligned: a right-aligned number column as wide as the longest value
    // (a calibrated profile's notes run to hundreds of characters) would push numbers off screen.
    std::size_t key_width = 0;
    for (const auto& row : rows) key_width = std::max(key_width, row[0].size());
    fmt::print("{:<{}}  {}\n{}\n", rows[0][0], key_width, rows[0][1],
               std::string(key_width + 2 + 40, '-'));
    for (std::size_t r = 1; r < rows.size(); ++r) {
      fmt::print("{:<{}}  {}\n", rows[r][0], key_width, rows[r][1]);
    }
  }
}

// Datasheet figures in the units vendors print them in.
struct Datasheet {
  std::optional<std::string> from;
  std::optional<std::string> name, description;
  std::optional<std::int64_t> sms, lanes;
  std::optional<double> clock_ghz, dram_gbs, l2_gbs, l2_mb, smem_kb, launch_us;
  std::optional<double> fp32_tflops, tf32_tflops, fp16_tflops;
  std::optional<std::string> combine;
  OutputTarget out;
};

// Fills fields the flags left open from the --from file (strict: unknown keys are errors).
void read_datasheet_file(Datasheet& d) {
  const std::string text = read_text_file(*d.from);
  try {
    const auto doc = json::parse(text, *d.from);
    json::ObjectReader r(doc, "");
    const auto number = [&r](const char* key, std::optional<double>& field) {
      if (const auto* v = r.optional(key); v && !field) field = json::as_number(*v, key);
    };
    const auto integer = [&r](const char* key, std::optional<std::int64_t>& field) {
      if (const auto* v = r.optional(key); v && !field) field = json::as_int(*v, key);
    };
    const auto text_field = [&r](const char* key, std::optional<std::string>& field) {
      if (const auto* v = r.optional(key); v && !field) field = json::as_string(*v, key);
    };
    text_field("name", d.name);
    text_field("description", d.description);
    integer("sm_count", d.sms);
    integer("fp32_lanes_per_sm", d.lanes);
    number("clock_ghz", d.clock_ghz);
    number("dram_gb_per_s", d.dram_gbs);
    number("l2_gb_per_s", d.l2_gbs);
    number("l2_mb", d.l2_mb);
    number("shared_memory_kb", d.smem_kb);
    number("launch_us", d.launch_us);
    number("fp32_tflops", d.fp32_tflops);
    number("tf32_tflops", d.tf32_tflops);
    number("fp16_tflops", d.fp16_tflops);
    text_field("time_combine", d.combine);
    r.reject_unknown();
  } catch (const Error& e) {
    const std::string message = e.what();
    if (message.starts_with(*d.from)) throw;
    throw Error(fmt::format("{}: {}", *d.from, message));
  }
}

void generate_profile(const Datasheet& flags) {
  Datasheet d = flags;
  if (d.from) read_datasheet_file(d);
  const auto need = [](const auto& field, const char* flag) {
    if (!field)
      throw Error(fmt::format("hw generate: {} is required (as a flag or in --from)", flag));
    return *field;
  };
  const std::int64_t sms = need(d.sms, "--sms");
  const std::int64_t lanes = need(d.lanes, "--lanes");
  const double clock_hz = need(d.clock_ghz, "--clock-ghz") * 1e9;
  const double dram = need(d.dram_gbs, "--dram-gbs") * 1e9;
  nlohmann::ordered_json j = input_document("profile", Profile::current_schema_version);
  j["name"] = need(d.name, "--name");
  j["description"] = d.description.value_or("");
  j["sm_count"] = sms;
  j["fp32_lanes_per_sm"] = lanes;
  j["clock_hz"] = clock_hz;
  j["dram_bandwidth_bytes_per_s"] = dram;
  // The reference predictor's assumption when no L2 figure is known: 4x DRAM.
  j["l2_bandwidth_bytes_per_s"] = d.l2_gbs ? *d.l2_gbs * 1e9 : 4 * dram;
  j["l2_size_bytes"] = static_cast<std::int64_t>(need(d.l2_mb, "--l2-mb") * 1024 * 1024);
  j["shared_memory_per_sm_bytes"] = static_cast<std::int64_t>(need(d.smem_kb, "--smem-kb") * 1024);
  j["memory_transaction_bytes"] = 32;
  j["launch_overhead_s"] = d.launch_us.value_or(8.0) * 1e-6;
  nlohmann::ordered_json peaks;
  peaks["fp32"] =
      d.fp32_tflops ? *d.fp32_tflops * 1e12 : 2.0 * static_cast<double>(sms * lanes) * clock_hz;
  if (d.tf32_tflops) peaks["tf32"] = *d.tf32_tflops * 1e12;
  if (d.fp16_tflops) peaks["fp16"] = *d.fp16_tflops * 1e12;
  j["peak_flops_per_s"] = peaks;
  j["time_combine"] = d.combine.value_or("overlap");
  j["provenance"] = {
      {"source", "datasheet"}, {"date", today()}, {"tool_version", LASNET_VERSION},
      {"device_name", ""},     {"driver", ""},    {"notes", "written by lasnet hw generate"}};
  const std::string text = j.dump(2) + "\n";
  // The generated file must pass the same validation as any profile before it is written.
  predictor::parse_profile(text, "hw generate");
  emit(d.out, text);
}

struct TransferOptions {
  std::string calibration;  // a calibrated profile (name or file)
  std::string target;       // the GPU's own profile (name or file)
  std::optional<std::string> name;
  bool target_launch = false;  // keep the target's launch costs, not the calibration's
  OutputTarget out;
};

void transfer(const Context& context, const TransferOptions& o) {
  const Profile from = resolve_profile(context, o.calibration);
  if (!from.calibration.fitted_on && from.provenance.source != "calibrated") {
    throw Error(
        fmt::format("hw transfer: --calibration {}: '{}' is a {} profile with no fitted "
                    "calibration to transfer",
                    o.calibration, from.name, from.provenance.source));
  }
  const Profile to = resolve_profile(context, o.target);
  if (to.provenance.source == "calibrated" || to.provenance.source == "transferred") {
    throw Error(
        fmt::format("hw transfer: --to {}: '{}' is already {}; give the GPU's measured "
                    "or datasheet profile",
                    o.target, to.name, to.provenance.source));
  }
  Profile out = predictor::transfer_calibration(
      from, to, o.name.value_or(fmt::format("{}-from-{}", to.name, from.name)),
      o.target_launch ? predictor::TransferLaunch::target : predictor::TransferLaunch::calibration);
  out.provenance.date = today();
  out.provenance.tool_version = LASNET_VERSION;
  const std::string text = predictor::profile_to_json(out);
  predictor::parse_profile(text, "hw transfer");
  emit(o.out, text);
}

}  // namespace

void add_hw_commands(CLI::App& app, const Context& context) {
  auto* hw = app.add_subcommand("hw", "Hardware profiles: list, show, generate, transfer");
  hw->require_subcommand(1);

  auto list_format = std::make_shared<Format>(Format::table);
  auto* list = hw->add_subcommand("list", "List the known hardware profiles");
  add_format_option(*list, *list_format);
  list->callback([&context, list_format] { list_profiles(context, *list_format); });

  auto show_name = std::make_shared<std::string>();
  auto show_format = std::make_shared<Format>(Format::table);
  auto* show = hw->add_subcommand("show", "Show one profile (a name or a JSON file)");
  show->add_option("name", *show_name, "Profile name or file")->required();
  add_format_option(*show, *show_format);
  show->callback(
      [&context, show_name, show_format] { show_profile(context, *show_name, *show_format); });

  auto d = std::make_shared<Datasheet>();
  auto* gen = hw->add_subcommand("generate", "Write a profile from datasheet figures");
  gen->add_option("--from", d->from,
                  "Datasheet JSON (keys: name, description, sm_count, fp32_lanes_per_sm, "
                  "clock_ghz, dram_gb_per_s, l2_gb_per_s, l2_mb, shared_memory_kb, launch_us, "
                  "fp32_tflops, tf32_tflops, fp16_tflops, time_combine); flags override it");
  gen->add_option("--name", d->name, "Profile name");
  gen->add_option("--description", d->description, "Free text");
  gen->add_option("--sms", d->sms, "Streaming multiprocessors");
  gen->add_option("--lanes", d->lanes, "FP32 lanes per SM");
  gen->add_option("--clock-ghz", d->clock_ghz, "SM clock in GHz");
  gen->add_option("--dram-gbs", d->dram_gbs, "Effective DRAM bandwidth in GB/s");
  gen->add_option("--l2-gbs", d->l2_gbs, "L2 bandwidth in GB/s (default 4x DRAM)");
  gen->add_option("--l2-mb", d->l2_mb, "L2 size in MiB");
  gen->add_option("--smem-kb", d->smem_kb, "Shared memory per SM in KiB");
  gen->add_option("--launch-us", d->launch_us, "Kernel launch overhead in us (default 8)");
  gen->add_option("--fp32-tflops", d->fp32_tflops, "FP32 peak (default 2 x SMs x lanes x clock)");
  gen->add_option("--tf32-tflops", d->tf32_tflops, "TF32 tensor-core peak, if any");
  gen->add_option("--fp16-tflops", d->fp16_tflops, "FP16 peak, if any");
  gen->add_option("--combine", d->combine, "How memory and compute time combine: overlap or sum");
  add_output_options(*gen, d->out, "Write the profile here (refuses to overwrite without --force)");
  gen->callback([d] { generate_profile(*d); });

  auto t = std::make_shared<TransferOptions>();
  auto* tr = hw->add_subcommand(
      "transfer",
      "Apply a calibration fitted on one GPU to another GPU's measured or datasheet profile");
  tr->add_option("--calibration", t->calibration,
                 "The calibrated profile whose fitted terms are carried (a name or a file)")
      ->required();
  tr->add_option("--to", t->target, "The target GPU's own profile (a name or a file)")->required();
  tr->add_option("--name", t->name, "The new profile's name (default TARGET-from-CALIBRATION)");
  tr->add_flag("--target-launch", t->target_launch,
               "Price launches at the target profile's launch costs, not at those the calibration "
               "was fitted with (in SM cycles)");
  add_output_options(*tr, t->out, "Write the profile here (refuses to overwrite without --force)");
  tr->callback([&context, t] { transfer(context, *t); });
}

}  // namespace lasnet::cli
