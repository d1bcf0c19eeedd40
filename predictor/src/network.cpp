#include "lasnet/predictor/network.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "lasnet/common/error.hpp"
#include "lasnet/common/patch_geometry.hpp"
#include "lasnet/predictor/mask_stats.hpp"

namespace lasnet::predictor {

namespace {

// Shapes of one block, resolved from its stage.
struct BlockShape {
  BlockKind kind;
  std::int64_t batch, in_c, in_h, in_w, out_c, out_h, out_w, mid, stride, groups, se;
  bool shortcut_conv;  // the residual needs a 1x1 (strided) conv
  bool residual;       // the block has a residual path at all
  bool expand;         // inverted residual with an expansion conv
};

BlockShape block_shape(const Spec& spec, std::size_t stage, std::size_t index) {
  const auto geometry = stage_geometry(spec);
  const StageSpec& st = spec.stages.at(stage);
  const StageGeometry& g = geometry.at(stage);
  BlockShape b{};
  b.kind = st.block;
  b.batch = spec.batch;
  b.stride = index == 0 ? st.stride : 1;
  b.in_c = index == 0 ? g.in_channels : g.out_channels;
  b.in_h = index == 0 ? g.in_height : g.out_height;
  b.in_w = index == 0 ? g.in_width : g.out_width;
  b.out_c = st.out_channels;
  b.out_h = g.out_height;
  b.out_w = g.out_width;
  switch (st.block) {
    case BlockKind::basic:
      b.mid = st.out_channels;
      break;
    case BlockKind::bottleneck:
    case BlockKind::regnety:
      b.mid = st.mid_channels;
      break;
    case BlockKind::inverted_residual:
      b.mid = st.expansion * b.in_c;
      break;
  }
  b.groups = st.group_width > 0 ? b.mid / st.group_width : 1;
  if (st.block == BlockKind::inverted_residual) b.groups = b.mid;  // depthwise
  b.se = st.block == BlockKind::regnety
             ? std::max<std::int64_t>(1, std::llround(st.se_ratio * static_cast<double>(b.in_c)))
             : 0;
  b.residual = st.block != BlockKind::inverted_residual || (b.stride == 1 && b.in_c == b.out_c);
  b.shortcut_conv =
      st.block != BlockKind::inverted_residual && (b.stride != 1 || b.in_c != b.out_c);
  b.expand = st.block == BlockKind::inverted_residual && st.expansion != 1;
  return b;
}

Op conv_op(const Spec& spec, std::int64_t in_c, std::int64_t in_h, std::int64_t in_w,
           std::int64_t out_c, std::int64_t kernel, std::int64_t stride, std::int64_t groups) {
  Op op;
  op.kind = OpKind::conv;
  op.precision = spec.precision;
  op.batch = spec.batch;
  op.in_channels = in_c;
  op.out_channels = out_c;
  op.in_height = in_h;
  op.in_width = in_w;
  op.out_height = conv_output_extent(in_h, kernel, stride, (kernel - 1) / 2);
  op.out_width = conv_output_extent(in_w, kernel, stride, (kernel - 1) / 2);
  op.kernel = kernel;
  op.stride = stride;
  op.groups = groups;
  return op;
}

// Turns a dense op into its dynamic form over `patches` patches of `side` output pixels.
Op dynamic_op(Op op, OpKind kind, std::int64_t side, std::int64_t patches) {
  op.kind = kind;
  op.granularity = side;
  op.active_patches = patches;
  return op;
}

class BlockBuilder {
 public:
  explicit BlockBuilder(BlockGraph& graph) : graph_(graph) {}
  std::size_t add(std::string name, Op op, std::vector<std::size_t> after) {
    graph_.nodes.push_back(OpNode{std::move(name), std::move(op), std::move(after)});
    return graph_.nodes.size() - 1;
  }
  // Appends after the last node added, or after the block input when there is none.
  std::size_t then(std::string name, Op op) {
    std::vector<std::size_t> after;
    if (!graph_.nodes.empty()) after.push_back(graph_.nodes.size() - 1);
    return add(std::move(name), std::move(op), std::move(after));
  }

 private:
  BlockGraph& graph_;
};

void dense_block(const Spec& spec, const BlockShape& b, BlockGraph& g, std::int64_t mid) {
  BlockBuilder add(g);
  std::size_t last = 0;
  switch (b.kind) {
    case BlockKind::basic:
      add.then("conv1", conv_op(spec, b.in_c, b.in_h, b.in_w, b.out_c, 3, b.stride, 1));
      last = add.then("conv2", conv_op(spec, b.out_c, b.out_h, b.out_w, b.out_c, 3, 1, 1));
      break;
    case BlockKind::bottleneck:
    case BlockKind::regnety: {
      const std::int64_t groups = std::max<std::int64_t>(1, b.groups * mid / b.mid);
      add.then("conv1", conv_op(spec, b.in_c, b.in_h, b.in_w, mid, 1, 1, 1));
      add.then("conv2", conv_op(spec, mid, b.in_h, b.in_w, mid, 3, b.stride, groups));
      if (b.se > 0) {
        Op se = conv_op(spec, mid, b.out_h, b.out_w, b.se, 1, 1, 1);
        se.kind = OpKind::se;
        add.then("se", se);
      }
      last = add.then("conv3", conv_op(spec, mid, b.out_h, b.out_w, b.out_c, 1, 1, 1));
      break;
    }
    case BlockKind::inverted_residual:
      if (b.expand) add.then("expand", conv_op(spec, b.in_c, b.in_h, b.in_w, mid, 1, 1, 1));
      add.then("dw", conv_op(spec, mid, b.in_h, b.in_w, mid, 3, b.stride, mid));
      last = add.then("project", conv_op(spec, mid, b.out_h, b.out_w, b.out_c, 1, 1, 1));
      break;
  }
  if (!b.residual) return;
  std::vector<std::size_t> join{last};
  if (b.shortcut_conv) {
    join.push_back(
        add.add("shortcut", conv_op(spec, b.in_c, b.in_h, b.in_w, b.out_c, 1, b.stride, 1), {}));
  }
  Op sum = conv_op(spec, b.out_c, b.out_h, b.out_w, b.out_c, 1, 1, 1);
  sum.kind = OpKind::add;
  add.add("add", sum, join);
}

// The mask's statistics for gathered reads of `reader`'s input map in windows of `extent`
// pixels, `step` apart from `origin`; nullopt without a mask model or mask.
std::optional<MaskStats> mask_stats_of(const BlockShape& b, const BlockSettings& settings,
                                       const MaskSource& masks, const Op& reader,
                                       std::int64_t extent, std::int64_t step,
                                       std::int64_t origin) {
  if (!masks.model && masks.mask.empty()) return std::nullopt;
  PatchWindows w;
  w.map_height = reader.in_height;
  w.map_width = reader.in_width;
  w.rows = patches_per_side(b.out_h, settings.granularity);
  w.cols = patches_per_side(b.out_w, settings.granularity);
  w.step = step;
  w.extent = extent;
  w.origin = origin;
  if (!masks.mask.empty()) {
    if (static_cast<std::int64_t>(masks.mask.size()) != b.batch * w.rows * w.cols) {
      throw Error(fmt::format("a mask of {} entries for {} images of {}x{} patches",
                              masks.mask.size(), b.batch, w.rows, w.cols));
    }
    return measure_mask_stats(masks.mask, b.batch, w);
  }
  return expected_mask_stats(*masks.model, b.batch, w, settings.density);
}

void spatial_block(const Spec& spec, const BlockShape& b, BlockGraph& g,
                   const BlockSettings& settings, const MaskSource& masks) {
  const std::int64_t s = settings.granularity;
  const Fusion& fusion = settings.fusion;
  BlockBuilder add(g);
  const std::int64_t grid = patches_per_side(b.out_h, s) * patches_per_side(b.out_w, s);
  std::int64_t patches = active_patches(settings.density, b.batch * grid);
  // With a known mask, P is its count, and the gathered reads its distinct pixels.
  std::optional<MaskStats> stats;
  const auto set_reads = [&](Op& op) {
    if (stats) op.read_pixels = std::llround(stats->read_pixels);
    return op;
  };

  // The first conv of the block (1x1 for bottlenecks and inverted residuals, 3x3 for basic
  // blocks) computes the halo its successor 3x3 conv needs; the second conv is strided.
  const bool basic = b.kind == BlockKind::basic;
  const std::int64_t first_side = basic ? s + 2 : patch_input_extent(s, b.stride, 3);
  Op first;
  if (basic) {
    first = conv_op(spec, b.in_c, b.in_h, b.in_w, b.out_c, 3, b.stride, 1);
  } else if (b.expand || b.kind != BlockKind::inverted_residual) {
    first = conv_op(spec, b.in_c, b.in_h, b.in_w, b.mid, 1, 1, 1);
  }
  const bool has_first = first.out_channels > 0;
  const std::string first_name = b.kind == BlockKind::inverted_residual ? "expand" : "conv1";
  Op second = basic ? conv_op(spec, b.out_c, b.out_h, b.out_w, b.out_c, 3, 1, 1)
                    : conv_op(spec, b.mid, b.in_h, b.in_w, b.mid, 3, b.stride, b.groups);
  const std::string second_name = b.kind == BlockKind::inverted_residual ? "dw" : "conv2";
  if (fusion.masker_conv1 && has_first) {
    // conv2's windows on conv1's full output: a 3x3 halo around S x S outputs at its stride.
    stats = mask_stats_of(b, settings, masks, second, patch_input_extent(s, second.stride, 3),
                          s * second.stride, -1);
  } else {
    const Op& reader = has_first ? first : second;
    const std::int64_t side = has_first ? first_side : s;
    // A 1x1 first conv reads conv2's halo (origin -1); a 3x3 reader adds its own padding.
    const std::int64_t origin =
        reader.kernel == 1 ? -1 : -((side - s) / 2 * reader.stride + (reader.kernel - 1) / 2);
    stats =
        mask_stats_of(b, settings, masks, reader,
                      patch_input_extent(side, reader.stride, reader.kernel), s * b.stride, origin);
  }
  if (stats) patches = std::llround(stats->active_patches);

  std::size_t second_node;
  if (fusion.masker_conv1 && has_first) {
    // conv1 runs densely with the mask logit as an extra channel; conv2 then picks its
    // patches out of conv1's full output, through the index list or a gather.
    Op mc = first;
    mc.kind = OpKind::masker_conv;
    mc.granularity = s * b.stride * (basic ? 1 : 1);
    mc.active_patches = patches;
    if (basic) mc.granularity = s;
    add.then("masker_conv", mc);
    if (fusion.gather_conv1) {
      Op reader = dynamic_op(second, OpKind::gather_conv, s, patches);
      second_node = add.then(second_name, set_reads(reader));
    } else {
      Op gather =
          dynamic_op(second, OpKind::gather, patch_input_extent(s, second.stride, 3), patches);
      gather.out_channels = gather.in_channels;
      gather.kernel = 1;
      gather.stride = 1;
      gather.groups = 1;
      add.then("gather", set_reads(gather));
      second_node = add.then(second_name, dynamic_op(second, OpKind::gathered_conv, s, patches));
    }
  } else {
    Op masker = first.out_channels > 0 ? first : second;
    masker.kind = OpKind::masker;
    masker.out_channels = 1;
    masker.kernel = 1;
    masker.stride = 1;
    masker.groups = 1;
    masker.in_channels = b.in_c;
    masker.in_height = b.in_h;
    masker.in_width = b.in_w;
    masker.out_height = b.out_h;
    masker.out_width = b.out_w;
    masker.granularity = s;
    masker.active_patches = patches;
    add.then("masker", masker);
    Op reader = has_first ? first : second;
    const std::int64_t reader_side = has_first ? first_side : s;
    if (!fusion.gather_conv1) {
      Op gather =
          dynamic_op(reader, OpKind::gather,
                     patch_input_extent(reader_side, reader.stride, reader.kernel), patches);
      gather.out_channels = gather.in_channels;
      gather.kernel = 1;
      gather.stride = 1;
      gather.groups = 1;
      add.then("gather", set_reads(gather));
    }
    const OpKind reader_kind = fusion.gather_conv1 ? OpKind::gather_conv : OpKind::gathered_conv;
    const auto reading = [&](Op op) {
      return reader_kind == OpKind::gather_conv ? set_reads(op) : op;
    };
    if (has_first) {
      add.then(first_name, reading(dynamic_op(first, reader_kind, first_side, patches)));
      second_node = add.then(second_name, dynamic_op(second, OpKind::gathered_conv, s, patches));
    } else {
      second_node = add.then(second_name, reading(dynamic_op(second, reader_kind, s, patches)));
    }
  }
  (void)second_node;

  if (b.se > 0) {
    Op se = conv_op(spec, b.mid, b.out_h, b.out_w, b.se, 1, 1, 1);
    add.then("se", dynamic_op(se, OpKind::se, s, patches));
  }
  const bool has_third = !basic;
  std::size_t shortcut = 0;
  const bool need_shortcut = b.shortcut_conv;
  const auto add_shortcut = [&] {
    shortcut =
        add.add("shortcut", conv_op(spec, b.in_c, b.in_h, b.in_w, b.out_c, 1, b.stride, 1), {});
  };
  const std::string third_name = b.kind == BlockKind::inverted_residual ? "project" : "conv3";
  Op last = has_third ? conv_op(spec, b.mid, b.out_h, b.out_w, b.out_c, 1, 1, 1) : Op{};
  if (fusion.conv3_scatter_add) {
    // The last conv's epilogue adds into the residual: it must wait for the shortcut.
    Op producer = has_third ? last : second;
    const std::size_t prev = g.nodes.size() - 1;
    std::vector<std::size_t> after{prev};
    if (!has_third) {
      // Basic block: conv2 itself becomes the fused conv; replace the node added above.
      g.nodes.pop_back();
      after = {g.nodes.size() - 1};
    }
    if (need_shortcut) {
      add_shortcut();
      after.push_back(shortcut);
    }
    add.add(has_third ? third_name : second_name,
            dynamic_op(producer, OpKind::conv_scatter_add, s, patches), after);
  } else {
    std::size_t produced = g.nodes.size() - 1;
    if (has_third)
      produced = add.then(third_name, dynamic_op(last, OpKind::gathered_conv, s, patches));
    std::vector<std::size_t> after{produced};
    if (need_shortcut) {
      add_shortcut();
      after.push_back(shortcut);
    }
    Op scatter = dynamic_op(conv_op(spec, b.out_c, b.out_h, b.out_w, b.out_c, 1, 1, 1),
                            OpKind::scatter_add, s, patches);
    add.add("scatter_add", scatter, after);
  }
}

void channel_block(const Spec& spec, const BlockShape& b, BlockGraph& g, double density) {
  BlockBuilder add(g);
  Op gate = conv_op(spec, b.in_c, b.in_h, b.in_w, b.mid, 1, 1, 1);
  gate.kind = OpKind::channel_gate;
  gate.out_height = 1;
  gate.out_width = 1;
  add.then("gate", gate);
  const std::int64_t kept =
      static_cast<std::int64_t>(std::ceil(density * static_cast<double>(b.mid) - 1e-9));
  if (kept <= 0) {
    // Every channel skipped: only the shortcut (if it is a conv) remains.
    if (b.shortcut_conv) {
      add.add("shortcut", conv_op(spec, b.in_c, b.in_h, b.in_w, b.out_c, 1, b.stride, 1), {});
    }
    return;
  }
  BlockGraph body;
  dense_block(spec, b, body, kept);
  const std::size_t offset = g.nodes.size();
  for (auto& node : body.nodes) {
    for (auto& a : node.after) a += offset;
    if (node.after.empty() && node.name != "shortcut") node.after.push_back(0);
    g.nodes.push_back(std::move(node));
  }
}

Op layer_op(const Spec& spec, const LayerSpec& l, std::int64_t c, std::int64_t h, std::int64_t w) {
  Op op;
  op.precision = spec.precision;
  op.batch = spec.batch;
  op.in_channels = c;
  op.in_height = h;
  op.in_width = w;
  switch (l.kind) {
    case LayerSpec::Kind::conv:
      op = conv_op(spec, c, h, w, l.out_channels, l.kernel, l.stride, l.groups);
      op.out_height = conv_output_extent(h, l.kernel, l.stride, l.padding);
      op.out_width = conv_output_extent(w, l.kernel, l.stride, l.padding);
      break;
    case LayerSpec::Kind::max_pool:
    case LayerSpec::Kind::avg_pool:
      op.kind = OpKind::pool;
      op.out_channels = c;
      op.kernel = l.kernel;
      op.stride = l.stride;
      op.out_height = conv_output_extent(h, l.kernel, l.stride, l.padding);
      op.out_width = conv_output_extent(w, l.kernel, l.stride, l.padding);
      break;
    case LayerSpec::Kind::global_avg_pool:
      op.kind = OpKind::global_pool;
      op.out_channels = c;
      op.out_height = op.out_width = 1;
      break;
    case LayerSpec::Kind::fc:
      op.kind = OpKind::fc;
      op.in_channels = c * h * w;
      op.in_height = op.in_width = 1;
      op.out_channels = l.out_channels;
      op.out_height = op.out_width = 1;
      break;
  }
  return op;
}

BlockGraph layer_block(const Spec& spec, const std::vector<LayerSpec>& layers, std::string name,
                       std::int64_t c, std::int64_t h, std::int64_t w) {
  BlockGraph g;
  g.name = std::move(name);
  BlockBuilder add(g);
  const char* names[] = {"conv", "max_pool", "avg_pool", "global_pool", "fc"};
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const Op op = layer_op(spec, layers[i], c, h, w);
    add.then(fmt::format("{}{}", names[static_cast<int>(layers[i].kind)], i), op);
    c = op.out_channels;
    h = op.out_height;
    w = op.out_width;
  }
  return g;
}

}  // namespace

bool block_can_be_dynamic(const Spec& spec, std::size_t stage, std::size_t index) {
  return block_shape(spec, stage, index).residual;
}

BlockGraph make_block(const Spec& spec, std::size_t stage, std::size_t index, Execution execution,
                      const BlockSettings& settings, const MaskSource& masks) {
  const BlockShape b = block_shape(spec, stage, index);
  BlockGraph g;
  g.name = fmt::format("{}.{}", spec.stages[stage].name, index);
  g.stage = static_cast<std::int64_t>(stage);
  g.index_in_stage = static_cast<std::int64_t>(index);
  if (execution == Execution::dense || !b.residual) {
    dense_block(spec, b, g, b.mid);
    return g;
  }
  g.dynamic = true;
  g.density = settings.density;
  if (spec.dynamic.mode == DynamicMode::channel) {
    channel_block(spec, b, g, settings.density);
    return g;
  }
  g.granularity = settings.granularity;
  spatial_block(spec, b, g, settings, masks);
  return g;
}

std::vector<BlockGraph> build_network(const Spec& spec, Execution execution,
                                      const NetworkOptions& options,
                                      std::optional<MaskModel> masks) {
  if (execution == Execution::dynamic) {
    if (!spec.dynamic.enabled) {
      throw Error(
          fmt::format("{}: has no dynamic settings (give --density, and --granularity "
                      "in spatial mode)",
                      spec.name));
    }
    if (spec.dynamic.mode == DynamicMode::spatial &&
        spec.dynamic.granularity.size() != spec.stages.size()) {
      throw Error(
          fmt::format("{}: spatial mode needs a granularity per stage (--granularity "
                      "such as 4-4-2-1)",
                      spec.name));
    }
    if (spec.dynamic.density.size() != spec.stages.size()) {
      throw Error(fmt::format("{}: no density given (--density)", spec.name));
    }
  }
  std::vector<BlockGraph> blocks;
  blocks.push_back(layer_block(spec, spec.stem, "stem", spec.in_channels, spec.height, spec.width));
  const auto geometry = stage_geometry(spec);
  for (std::size_t s = 0; s < spec.stages.size(); ++s) {
    for (std::size_t i = 0; i < static_cast<std::size_t>(spec.stages[s].blocks); ++i) {
      BlockSettings settings;
      if (options.fusion) {
        settings.fusion = *options.fusion;
      } else if (!spec.dynamic.fusion.empty()) {
        settings.fusion = spec.dynamic.fusion.at(s).at(i);
      }
      if (execution == Execution::dynamic) {
        settings.density = spec.dynamic.density[s][i];
        if (!spec.dynamic.granularity.empty()) settings.granularity = spec.dynamic.granularity[s];
      }
      blocks.push_back(make_block(spec, s, i, execution, settings, MaskSource{masks, {}}));
    }
  }
  const auto& last = geometry.back();
  auto head =
      layer_block(spec, spec.head, "head", last.out_channels, last.out_height, last.out_width);
  head.stage = static_cast<std::int64_t>(spec.stages.size());
  blocks.push_back(std::move(head));
  blocks.front().stage = -1;
  return blocks;
}

BlockResult predict_block(const BlockGraph& block, PredictionCache& cache, const Profile& hw,
                          const KernelSchedule& schedule) {
  BlockResult r;
  r.name = block.name;
  r.stage = block.stage;
  r.dynamic = block.dynamic;
  r.granularity = block.granularity;
  r.density = block.density;
  const double l2_capacity = 0.5 * static_cast<double>(hw.l2_size_bytes);
  for (const auto& node : block.nodes) {
    // Inputs written by the op before fit in L2 and are read from there (batch-1 inference).
    const double in_bytes = static_cast<double>(bytes_per_element(node.op.precision)) *
                            static_cast<double>(node.op.batch * node.op.in_height *
                                                node.op.in_width * node.op.in_channels);
    const bool first_of_network = block.stage == -1 && &node == &block.nodes.front();
    OpContext context;
    context.input_in_l2 = !first_of_network && in_bytes <= l2_capacity;
    if (schedule) context.gemm_tile = schedule(block, node);
    const OpPrediction& p = cache.predict(node.op, context);
    r.ops.push_back(OpResult{node.name, node.op, p});
    r.latency_s += p.latency_s;
  }
  return r;
}

NetworkPrediction predict_network(const std::vector<BlockGraph>& blocks, const Spec& spec,
                                  const Profile& hw, PredictionCache& cache,
                                  const KernelSchedule& schedule) {
  NetworkPrediction n;
  n.stages.push_back(StageResult{"stem", 0});
  for (const auto& st : spec.stages) n.stages.push_back(StageResult{st.name, 0});
  n.stages.push_back(StageResult{"head", 0});
  for (const auto& block : blocks) {
    BlockResult r = predict_block(block, cache, hw, schedule);
    const std::size_t stage_slot = block.name == "stem" ? 0
                                   : block.name == "head"
                                       ? n.stages.size() - 1
                                       : static_cast<std::size_t>(block.stage) + 1;
    n.stages[stage_slot].latency_s += r.latency_s;
    n.latency_s += r.latency_s;
    for (const auto& op : r.ops) n.flops += op.prediction.flops;
    n.blocks.push_back(std::move(r));
  }
  return n;
}

}  // namespace lasnet::predictor
