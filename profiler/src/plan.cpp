#include "lasnet/profiler/plan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>
#include <set>

#include "lasnet/common/error.hpp"

namespace lasnet::profiler {

namespace {

const predictor::OpNode* find_node(const predictor::BlockGraph& g,
                                   std::initializer_list<std::string_view> names) {
  for (const auto& n : g.nodes) {
    for (const auto name : names) {
      if (n.name == name) return &n;
    }
  }
  return nullptr;
}

bool has_node(const predictor::BlockGraph& g, std::string_view name) {
  return find_node(g, {name}) != nullptr;
}

// What the block graph does not say and the kernels cannot run: they compute 3x3 convs at
// dilation 1 with ReLU epilogues, and have no SE inside inverted residuals and no ConvNeXt block.
// Such blocks are reported as not covered rather than timed as something else.
bool stage_runs_on_kernels(const predictor::StageSpec& st, std::string& reason) {
  if (st.block == predictor::BlockKind::convnext) {
    reason = "convnext blocks are not run by the kernels";
  } else if (st.kernel != 3) {
    reason = fmt::format("a {}x{} spatial conv (the kernels run 3x3 only)", st.kernel, st.kernel);
  } else if (st.dilation != 1) {
    reason = fmt::format("dilation {} (the kernels run dilation 1 only)", st.dilation);
  } else if (st.activation != predictor::Activation::relu) {
    reason = fmt::format("{} activations (the kernels' epilogues apply ReLU)",
                         predictor::to_string(st.activation));
  } else if (st.block == predictor::BlockKind::inverted_residual && st.se_channels > 0) {
    reason = "SE in an inverted residual is not run by the kernels";
  } else {
    return true;
  }
  return false;
}

}  // namespace

bool map_to_kernels(const predictor::BlockGraph& g, const predictor::Fusion& fusion, BlockJob& job,
                    std::vector<std::string>& node_steps, std::string& reason, bool se) {
  const auto* first = find_node(g, {"conv1", "expand", "masker_conv"});
  const auto* second = find_node(g, {"conv2", "dw"});
  const auto* third = find_node(g, {"conv3", "project"});
  // A basic block (ResNet-18/34): 3x3 stride s -> 3x3, one group, nothing after conv2.
  const bool basic = first != nullptr && second != nullptr && third == nullptr &&
                     first->op.kernel == 3 && second->op.kernel == 3 && second->op.stride == 1 &&
                     first->op.groups == 1 && second->op.groups == 1;
  // A separable block (MobileNetV2's expansion 1): 3x3 on x -> 1x1, no conv1.
  const bool separable = first == nullptr && second != nullptr && third != nullptr &&
                         second->op.kernel == 3 && third->op.kernel == 1;
  const char* not_mapped =
      "not a 1x1 -> 3x3 -> 1x1, 3x3 -> 1x1 or 3x3 -> 3x3 block (the kernels run bottleneck, "
      "separable and basic blocks)";
  if (!separable && (first == nullptr || second == nullptr || (third == nullptr && !basic))) {
    reason = not_mapped;
    return false;
  }
  if (!basic && !separable &&
      (first->op.kernel != 1 || second->op.kernel != 3 || third->op.kernel != 1)) {
    reason = not_mapped;
    return false;
  }
  const auto& lead = separable ? second->op : first->op;  // the conv that reads x
  const auto precision = kernels::parse_precision(predictor::to_string(lead.precision));
  if (!precision) {
    reason = "precision unknown to the kernels";
    return false;
  }
  kernels::BlockConfig c;
  c.precision = *precision;
  c.shape.batch = lead.batch;
  c.shape.height = lead.in_height;
  c.shape.width = lead.in_width;
  c.shape.in_channels = lead.in_channels;
  c.shape.mid_channels = separable ? lead.in_channels : lead.out_channels;
  if (separable) c.shape.kind = kernels::BlockKind::separable;
  if (basic) {
    c.shape.kind = kernels::BlockKind::basic;
    c.shape.out_channels = second->op.out_channels;
    c.shape.stride = first->op.stride;
  } else {
    c.shape.out_channels = third->op.out_channels;
    c.shape.stride = second->op.stride;
    c.shape.groups = second->op.groups;
    if (const auto* squeeze = find_node(g, {"se"}); se && squeeze != nullptr) {
      c.shape.se_channels = squeeze->op.out_channels;
    }
  }
  if (g.dynamic) {
    kernels::DynamicSettings d;
    d.granularity = g.granularity;
    d.density = g.density;
    // As the graph has them: a block without conv1 ignores the masker fusion (its masker reads
    // x alone), and one whose first conv is not 1x1 the union form.
    d.fusion.masker_conv1 = fusion.masker_conv1 && !separable;
    d.fusion.gather_conv1 = fusion.gather_conv1;
    d.fusion.conv3_scatter_add = fusion.conv3_scatter_add;
    d.fusion.union_conv1 = fusion.union_conv1 && has_node(g, "dilate");
    // Identity-shortcut blocks update the residual in place, as the predictor models them (x is
    // the previous block's ReLU output, so x >= 0 holds): no pass over the inactive pixels.
    d.in_place_residual = !c.shape.has_projection();
    c.dynamic = d;
  }
  if (const auto support = kernels::check_supported(c); !support.ok) {
    reason = support.reason;
    return false;
  }
  job.config = c;
  job.skip_steps.clear();
  // A block without a residual path (a MobileNetV2 block that changes shape) has no shortcut.
  if (c.shape.has_projection() && !has_node(g, "shortcut")) job.skip_steps.emplace_back("shortcut");
  job.key = job_key(c, job.skip_steps);
  node_steps.clear();
  for (const auto& n : g.nodes) {
    // A basic block's dense residual add is fused into conv2 (its last conv), not conv3.
    if (basic && !g.dynamic && n.name == "add") {
      node_steps.emplace_back("conv2");
    } else if (n.name == "se" && c.shape.se_channels > 0) {
      node_steps.emplace_back("se");
    } else {
      node_steps.push_back(kernel_step(n.name, g.dynamic));
    }
  }
  return true;
}

void with_mask_model(BlockJob& job, MaskModel model) {
  if (!job.config.dynamic) {
    job.masks.clear();
    return;
  }
  job.masks = std::string(to_string(model));
  if (model == MaskModel::uniform) return;
  auto& d = *job.config.dynamic;
  const auto grid = kernels::patch_grid(job.config.shape, d.granularity);
  // FNV-1a of the key: the mask depends on the configuration alone, not on the plan's order.
  std::uint64_t seed = 0xCBF29CE484222325ULL;
  for (const char ch : job.key) seed = (seed ^ static_cast<unsigned char>(ch)) * 0x100000001B3ULL;
  d.mask =
      make_mask(model, MaskShape{job.config.shape.batch, grid.rows, grid.cols}, d.density, seed);
  job.key += fmt::format(" mask:{}", to_string(model));
}

std::string kernel_step(std::string_view node, bool dynamic) {
  if (node == "expand") return "conv1";
  if (node == "dw") return "conv2";
  if (node == "project") return "conv3";
  if (node == "se") return "";
  if (node == "add" && !dynamic) return "conv3";  // the kernels fuse the residual add
  return std::string(node);
}

std::vector<PlannedBlock> plan_spec(const predictor::Spec& original, const PlanOptions& o) {
  const std::vector<std::int64_t> batches =
      o.batches.empty() ? std::vector<std::int64_t>{original.batch} : o.batches;
  const auto geometry = predictor::stage_geometry(original);
  std::vector<PlannedBlock> out;
  const auto add_block = [&](const predictor::Spec& spec, std::size_t s, std::size_t i,
                             bool dynamic, std::string density_label, double density,
                             std::int64_t granularity, bool spec_granularity,
                             const predictor::Fusion& fusion) {
    PlannedBlock b;
    b.spec = spec.name;
    b.batch = spec.batch;
    b.dynamic = dynamic;
    b.density_label = std::move(density_label);
    b.density = dynamic ? density : 1.0;
    b.stage = s;
    b.stage_name = spec.stages[s].name;
    b.index = i;
    b.granularity = dynamic ? granularity : 0;
    b.spec_granularity = spec_granularity;
    predictor::BlockSettings settings;
    settings.granularity = granularity;
    settings.density = density;
    settings.fusion = fusion;
    predictor::MaskSource masks{o.masks, {}};
    const auto execution = dynamic ? predictor::Execution::dynamic : predictor::Execution::dense;
    b.graph = predictor::make_block(spec, s, i, execution, settings, masks);
    b.runnable = stage_runs_on_kernels(spec.stages[s], b.reason) &&
                 map_to_kernels(b.graph, fusion, b.job, b.node_steps, b.reason, o.se);
    if (b.runnable) {
      with_mask_model(b.job, o.masks.value_or(MaskModel::uniform));
      if (b.job.config.dynamic && !b.job.config.dynamic->mask.empty()) {
        // Priced at the mask the kernels will run, not at the model's expectation.
        masks.mask = b.job.config.dynamic->mask;
        b.graph = predictor::make_block(spec, s, i, execution, settings, masks);
      }
    }
    out.push_back(std::move(b));
  };

  for (const auto batch : batches) {
    predictor::Spec spec = original;
    spec.batch = batch;
    if (o.dense) {
      for (std::size_t s = 0; s < spec.stages.size(); ++s) {
        for (std::size_t i = 0; i < static_cast<std::size_t>(spec.stages[s].blocks); ++i) {
          add_block(spec, s, i, false, "", 1.0, 0, true, predictor::Fusion{});
        }
      }
    }
    // Densities: the options', else the spec's per-block values (one configuration).
    std::vector<std::optional<double>> densities;
    if (!o.densities.empty()) {
      for (const double d : o.densities) densities.emplace_back(d);
    } else if (original.dynamic.enabled) {
      densities.emplace_back(std::nullopt);
    }
    if (densities.empty()) continue;
    if (original.dynamic.mode != predictor::DynamicMode::spatial) {
      throw Error(
          fmt::format("{}: only the spatial dynamic mode runs on the kernels", original.name));
    }
    if (original.dynamic.granularity.size() != spec.stages.size()) {
      throw Error(fmt::format("{}: the spec gives no granularity per stage", original.name));
    }
    if (o.fusions.empty()) throw Error("the plan has no fusion form");
    for (const auto& density : densities) {
      for (const auto& fusion : o.fusions) {
        const std::string label =
            (density ? fmt::format("{:g}", *density) : std::string("spec")) +
            (o.fusions.size() > 1 ? " " + predictor::to_string(fusion) : std::string());
        for (std::size_t s = 0; s < spec.stages.size(); ++s) {
          const std::int64_t own = original.dynamic.granularity[s];
          std::vector<std::int64_t> choices{own};
          if (o.granularity == GranularityChoice::all) {
            choices = predictor::granularity_candidates(geometry[s]);
            if (std::find(choices.begin(), choices.end(), own) == choices.end()) {
              choices.push_back(own);
            }
          }
          for (const auto g : choices) {
            for (std::size_t i = 0; i < static_cast<std::size_t>(spec.stages[s].blocks); ++i) {
              const double d = density ? *density : original.dynamic.density.at(s).at(i);
              add_block(spec, s, i, true, label, d, g, g == own, fusion);
            }
          }
        }
      }
    }
  }
  return out;
}

bool runnable_on_kernels(const predictor::Spec& spec, std::string& reason) {
  if (!spec.dynamic.enabled || spec.dynamic.mode != predictor::DynamicMode::spatial) {
    reason = "only the spatial dynamic mode runs on the kernels";
    return false;
  }
  PlanOptions options;
  options.granularity = GranularityChoice::all;
  for (const auto& b : plan_spec(spec, options)) {
    if (!b.runnable) {
      reason = fmt::format("{}.{}: {}", b.stage_name, b.index, b.reason);
      return false;
    }
  }
  return true;
}

std::vector<BlockJob> distinct_jobs(const std::vector<PlannedBlock>& blocks) {
  std::vector<BlockJob> jobs;
  std::set<std::string> seen;
  for (const auto& b : blocks) {
    if (!b.runnable) continue;
    if (seen.insert(b.job.key).second) jobs.push_back(b.job);
  }
  return jobs;
}

std::vector<predictor::Fusion> every_fusion() {
  std::vector<predictor::Fusion> forms;
  for (const bool masker : {false, true}) {
    for (const bool gather : {false, true}) {
      for (const bool scatter : {false, true}) forms.push_back({masker, gather, scatter});
    }
  }
  return forms;
}

std::vector<predictor::Fusion> parse_fusion_forms(std::string_view text, std::string_view what) {
  std::vector<predictor::Fusion> forms;
  const auto add = [&forms](const predictor::Fusion& f) {
    if (std::find(forms.begin(), forms.end(), f) == forms.end()) forms.push_back(f);
  };
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const auto slash = text.find('/', pos);
    const auto part =
        text.substr(pos, slash == std::string_view::npos ? text.size() - pos : slash - pos);
    if (part == "each") {
      for (const auto& f : every_fusion()) add(f);
    } else {
      add(predictor::parse_fusion(part, what));
    }
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  return forms;
}

std::vector<std::optional<predictor::Fusion>> network_fusions(std::string_view text,
                                                              std::string_view what) {
  if (text == "each") return {std::nullopt};
  const auto forms = parse_fusion_forms(text, what);
  return {forms.begin(), forms.end()};
}

std::vector<double> parse_number_list(std::string_view text, std::string_view what) {
  std::vector<double> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const auto comma = text.find(',', pos);
    const auto part = text.substr(pos, comma == std::string_view::npos ? text.npos : comma - pos);
    double v = 0;
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    if (part.empty() || ec != std::errc() || end != part.data() + part.size() ||
        !std::isfinite(v)) {
      throw Error(fmt::format("{}: '{}' is not a number (expected a comma list such as 0.3,0.5)",
                              what, part));
    }
    out.push_back(v);
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return out;
}

std::vector<std::int64_t> parse_int_list(std::string_view text, std::string_view what) {
  std::vector<std::int64_t> out;
  for (const double v : parse_number_list(text, what)) {
    if (v < 1 || v != std::floor(v) || v > 1e9) {
      throw Error(fmt::format("{}: {} is not a positive whole number", what, v));
    }
    out.push_back(static_cast<std::int64_t>(v));
  }
  return out;
}

}  // namespace lasnet::profiler
