#include "report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "lasnet/common/document.hpp"

namespace lasnet::cli {

namespace {

using predictor::BlockResult;
using predictor::NetworkPrediction;
using predictor::OpResult;
using ojson = nlohmann::ordered_json;

// docs/schema/predict.schema.json; 1 is what was labelled "lasnet.predict/1".
constexpr int predict_document_version = 1;

std::string ms(double seconds) {
  return fmt::format("{:.4f}", seconds * 1e3);
}

ojson op_json(const OpResult& r) {
  const auto& p = r.prediction;
  ojson j;
  j["name"] = r.name;
  j["kind"] = predictor::to_string(r.op.kind);
  j["latency_ms"] = p.latency_s * 1e3;
  j["compute_ms"] = p.compute_s * 1e3;
  j["memory_ms"] = p.memory_s * 1e3;
  j["dram_ms"] = p.dram_s * 1e3;
  j["l2_ms"] = p.l2_s * 1e3;
  j["launch_ms"] = p.launch_s * 1e3;
  j["bound"] = predictor::to_string(p.bound);
  j["flops"] = p.flops;
  j["dram_bytes"] = p.dram_bytes;
  j["l2_bytes"] = p.l2_bytes;
  j["tile"] = ojson{{"out_channels", p.tile.out_channels},
                    {"rows", p.tile.rows},
                    {"cols", p.tile.cols},
                    {"units", p.tile.patches}};
  j["tiles"] = p.tiles;
  j["waves"] = p.waves;
  j["tiles_per_sm"] = p.tiles_per_sm;
  j["lane_utilization"] = p.lane_utilization;
  j["coalescing_efficiency"] = p.coalescing_efficiency;
  if (r.op.is_dynamic()) {
    j["patch_side"] = r.op.granularity;
    j["active_patches"] = r.op.active_patches;
  }
  return j;
}

ojson network_json(const NetworkPrediction& n, Level level) {
  ojson j;
  j["latency_ms"] = n.latency_s * 1e3;
  j["flops"] = n.flops;
  ojson stages = ojson::array();
  for (const auto& s : n.stages)
    stages.push_back(ojson{{"name", s.name}, {"latency_ms", s.latency_s * 1e3}});
  j["stages"] = stages;
  if (level == Level::stage) return j;
  ojson blocks = ojson::array();
  for (const auto& b : n.blocks) {
    ojson bj;
    bj["name"] = b.name;
    bj["stage"] = b.stage;
    bj["dynamic"] = b.dynamic;
    if (b.dynamic) {
      bj["granularity"] = b.granularity;
      bj["density"] = b.density;
    }
    bj["latency_ms"] = b.latency_s * 1e3;
    if (level == Level::op) {
      ojson ops = ojson::array();
      for (const auto& op : b.ops) ops.push_back(op_json(op));
      bj["ops"] = ops;
    }
    blocks.push_back(bj);
  }
  j["blocks"] = blocks;
  return j;
}

// Sums of an op list's compute and memory time, and the bound of its largest contributor.
struct Split {
  double compute_s = 0, memory_s = 0;
  std::string bound = "-";
};
Split split(const BlockResult& b) {
  Split s;
  double worst = -1;
  for (const auto& op : b.ops) {
    s.compute_s += op.prediction.compute_s;
    s.memory_s += op.prediction.memory_s;
    if (op.prediction.latency_s > worst) {
      worst = op.prediction.latency_s;
      s.bound = std::string(predictor::to_string(op.prediction.bound));
    }
  }
  return s;
}

std::string ratio(double dense, double dynamic, const std::string& none) {
  return dense > 0 ? fmt::format("{:.3f}", dynamic / dense) : none;
}

// The table marks what does not apply with "-" (and a dense block's density with "dense"); CSV
// leaves such numeric cells empty and says it in a text column, `execution`, instead.
std::vector<std::vector<std::string>> rows_for(const PredictReport& r, Level level, Format format) {
  std::vector<std::vector<std::string>> rows;
  const auto* dyn = r.dynamic_prediction ? &*r.dynamic_prediction : nullptr;
  const bool csv = format == Format::csv;
  const std::string none = csv ? "" : "-";
  if (level == Level::stage) {
    rows.push_back({"stage", "dense_ms", "dynamic_ms", "dyn/dense"});
    for (std::size_t i = 0; i < r.dense.stages.size(); ++i) {
      const auto& d = r.dense.stages[i];
      rows.push_back({d.name, ms(d.latency_s), dyn ? ms(dyn->stages[i].latency_s) : none,
                      dyn ? ratio(d.latency_s, dyn->stages[i].latency_s, none) : none});
    }
  } else if (level == Level::block) {
    rows.push_back({"block", "dense_ms", "dynamic_ms", "dyn/dense", "S", "density",
                    "dyn_compute_ms", "dyn_memory_ms", "bound"});
    if (csv) rows.back().push_back("execution");
    for (std::size_t i = 0; i < r.dense.blocks.size(); ++i) {
      const auto& d = r.dense.blocks[i];
      if (!dyn) {
        const Split s = split(d);
        rows.push_back({d.name, ms(d.latency_s), none, none, none, none, ms(s.compute_s),
                        ms(s.memory_s), s.bound});
        if (csv) rows.back().push_back("dense_only");
        continue;
      }
      const auto& y = dyn->blocks[i];
      const Split s = split(y);
      rows.push_back({d.name, ms(d.latency_s), ms(y.latency_s),
                      ratio(d.latency_s, y.latency_s, none),
                      y.dynamic && y.granularity > 0 ? std::to_string(y.granularity) : none,
                      y.dynamic ? fmt::format("{:.2f}", y.density)
                      : csv     ? ""
                                : "dense",
                      ms(s.compute_s), ms(s.memory_s), s.bound});
      if (csv) rows.back().push_back(y.dynamic ? "dynamic" : "dense");
    }
  } else {
    rows.push_back({"exec", "block", "op", "kind", "latency_ms", "compute_ms", "memory_ms", "bound",
                    "tile", "tiles", "waves"});
    const auto add = [&rows, &none](const char* exec, const NetworkPrediction& n) {
      for (const auto& b : n.blocks) {
        for (const auto& op : b.ops) {
          const auto& p = op.prediction;
          rows.push_back({exec, b.name, op.name, std::string(predictor::to_string(op.op.kind)),
                          ms(p.latency_s), ms(p.compute_s), ms(p.memory_s),
                          std::string(predictor::to_string(p.bound)),
                          p.empty ? none : predictor::to_string(p.tile), std::to_string(p.tiles),
                          std::to_string(p.waves)});
        }
      }
    };
    add("dense", r.dense);
    if (dyn) add("dynamic", *dyn);
  }
  return rows;
}

// The blocks' fusion: one name when every block shares it.
std::optional<predictor::Fusion> uniform_fusion(const predictor::DynamicSpec& d) {
  std::optional<predictor::Fusion> out;
  for (const auto& stage : d.fusion) {
    for (const auto& f : stage) {
      if (out && !(*out == f)) return std::nullopt;
      out = f;
    }
  }
  return out ? out : predictor::Fusion{};
}

std::string settings_line(const PredictReport& r) {
  std::string line = fmt::format("{} on {}, batch {}, {}", r.spec_name, r.hardware, r.batch,
                                 predictor::to_string(r.precision));
  if (r.dynamic_prediction) {
    line += fmt::format(", {} mode", predictor::to_string(r.dynamic.mode));
    if (r.dynamic.mode == predictor::DynamicMode::spatial) {
      const auto fusion = uniform_fusion(r.dynamic);
      line += fmt::format(", granularity {}, fusion {}",
                          predictor::format_granularity(r.dynamic.granularity),
                          fusion ? predictor::to_string(*fusion) : std::string("per block"));
    }
  }
  if (r.kernel_schedules) line += ", convs at the project kernels' schedules";
  return line;
}

}  // namespace

std::string csv_escape(const std::string& cell) {
  if (cell.find_first_of(",\"\n") == std::string::npos) return cell;
  std::string out = "\"";
  for (const char c : cell) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string text_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()), 0);
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    std::string line;
    for (std::size_t i = 0; i < rows[r].size(); ++i) {
      // Text columns left-aligned, numbers right-aligned.
      const bool numeric =
          !rows[r][i].empty() &&
          (std::isdigit(static_cast<unsigned char>(rows[r][i][0])) || rows[r][i][0] == '-') &&
          r > 0;
      line += numeric ? fmt::format("{:>{}}", rows[r][i], width[i])
                      : fmt::format("{:<{}}", rows[r][i], width[i]);
      if (i + 1 < rows[r].size()) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
    if (r == 0) {
      std::size_t total = 0;
      for (const auto w : width) total += w + 2;
      out += std::string(total > 2 ? total - 2 : 0, '-') + "\n";
    }
  }
  return out;
}

std::string render(const PredictReport& r, Level level, Format format) {
  const auto* dyn = r.dynamic_prediction ? &*r.dynamic_prediction : nullptr;
  if (format == Format::json) {
    ojson j = output_document("predict", predict_document_version);
    j["spec"] = r.spec_name;
    j["hardware"] = r.hardware;
    j["batch"] = r.batch;
    j["precision"] = predictor::to_string(r.precision);
    if (r.kernel_schedules) j["schedule"] = "kernels";
    j["per"] = level == Level::op ? "op" : level == Level::block ? "block" : "stage";
    j["dense"] = network_json(r.dense, level);
    if (dyn) {
      ojson settings;
      settings["mode"] = predictor::to_string(r.dynamic.mode);
      if (r.dynamic.mode == predictor::DynamicMode::spatial) {
        settings["granularity"] = r.dynamic.granularity;
        // A string when every block shares one fusion, else per stage, per block.
        if (const auto fusion = uniform_fusion(r.dynamic)) {
          settings["fusion"] = predictor::to_string(*fusion);
        } else {
          ojson per_stage = ojson::array();
          for (const auto& stage : r.dynamic.fusion) {
            ojson per_block = ojson::array();
            for (const auto& f : stage) per_block.push_back(predictor::to_string(f));
            per_stage.push_back(per_block);
          }
          settings["fusion"] = per_stage;
        }
      }
      settings["density"] = r.dynamic.density;
      j["dynamic_settings"] = settings;
      j["dynamic"] = network_json(*dyn, level);
      j["latency_ratio"] = dyn->latency_s / r.dense.latency_s;
      j["speedup"] = r.dense.latency_s / dyn->latency_s;
    }
    return j.dump(2) + "\n";
  }
  const auto rows = rows_for(r, level, format);
  if (format == Format::csv) {
    std::string out;
    for (const auto& row : rows) {
      for (std::size_t i = 0; i < row.size(); ++i) {
        out += csv_escape(row[i]) + (i + 1 < row.size() ? "," : "\n");
      }
    }
    return out;
  }
  std::string out = settings_line(r) + "\n\n" + text_table(rows) + "\n";
  out += fmt::format("dense   total: {:>10.4f} ms  ({:.1f} GFLOP)\n", r.dense.latency_s * 1e3,
                     r.dense.flops / 1e9);
  if (dyn) {
    out += fmt::format("dynamic total: {:>10.4f} ms  ({:.1f} GFLOP)\n", dyn->latency_s * 1e3,
                       dyn->flops / 1e9);
    out += fmt::format("dynamic / dense: {:.3f}  (speedup {:.2f}x)\n",
                       dyn->latency_s / r.dense.latency_s, r.dense.latency_s / dyn->latency_s);
  }
  return out;
}

}  // namespace lasnet::cli
