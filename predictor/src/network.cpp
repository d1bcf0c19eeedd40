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
  std::int64_t kernel, dilation;  // the spatial conv
  bool shortcut_conv;             // the residual needs a 1x1 (strided) conv
  bool residual;                  // the block has a residual path at all
  bool expand;                    // inverted residual with an expansion conv
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
  b.kernel = st.kernel;
  b.dilation = st.dilation;
  switch (st.block) {
    case BlockKind::basic:
      b.mid = st.out_channels;
      break;
    case BlockKind::bottleneck:
    case BlockKind::regnety:
      b.mid = st.mid_channels;
      break;
    case BlockKind::inverted_residual:
    case BlockKind::convnext:
      b.mid = st.expansion > 0 ? st.expansion * b.in_c : st.mid_channels;
      break;
  }
  b.groups = st.group_width > 0 ? b.mid / st.group_width : 1;
  if (st.block == BlockKind::inverted_residual) b.groups = b.mid;  // depthwise
  if (st.block == BlockKind::convnext) b.groups = b.in_c;          // depthwise, before the 1x1s
  b.se = st.se_channels > 0 ? st.se_channels
         : st.block == BlockKind::regnety
             ? std::max<std::int64_t>(1, std::llround(st.se_ratio * static_cast<double>(b.in_c)))
             : 0;
  b.residual = st.block != BlockKind::inverted_residual || (b.stride == 1 && b.in_c == b.out_c);
  b.shortcut_conv =
      st.block != BlockKind::inverted_residual && (b.stride != 1 || b.in_c != b.out_c);
  // No expansion conv at expansion 1 (or a given width equal to the input's, as torchvision
  // builds MobileNetV3's first block).
  b.expand = st.block == BlockKind::inverted_residual &&
             (st.expansion > 0 ? st.expansion != 1 : st.mid_channels != b.in_c);
  return b;
}

Op conv_op(const Spec& spec, std::int64_t in_c, std::int64_t in_h, std::int64_t in_w,
           std::int64_t out_c, std::int64_t kernel, std::int64_t stride, std::int64_t groups,
           std::int64_t dilation = 1) {
  Op op;
  op.kind = OpKind::conv;
  op.precision = spec.precision;
  op.batch = spec.batch;
  op.in_channels = in_c;
  op.out_channels = out_c;
  op.in_height = in_h;
  op.in_width = in_w;
  const std::int64_t extent = effective_kernel(kernel, dilation);
  op.out_height = conv_output_extent(in_h, extent, stride, (extent - 1) / 2);
  op.out_width = conv_output_extent(in_w, extent, stride, (extent - 1) / 2);
  op.kernel = kernel;
  op.stride = stride;
  op.groups = groups;
  op.dilation = dilation;
  return op;
}

// A pass over a map of `c` channels (an unfused activation or norm).
Op pointwise_op(const Spec& spec, std::int64_t c, std::int64_t h, std::int64_t w, Pointwise p) {
  Op op = conv_op(spec, c, h, w, c, 1, 1, 1);
  op.kind = OpKind::elementwise;
  op.pointwise = p;
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
  const std::int64_t k = b.kernel, d = b.dilation;
  switch (b.kind) {
    case BlockKind::basic:
      add.then("conv1", conv_op(spec, b.in_c, b.in_h, b.in_w, b.out_c, k, b.stride, 1, d));
      last = add.then("conv2", conv_op(spec, b.out_c, b.out_h, b.out_w, b.out_c, k, 1, 1, d));
      break;
    case BlockKind::bottleneck:
    case BlockKind::regnety: {
      const std::int64_t groups = std::max<std::int64_t>(1, b.groups * mid / b.mid);
      add.then("conv1", conv_op(spec, b.in_c, b.in_h, b.in_w, mid, 1, 1, 1));
      add.then("conv2", conv_op(spec, mid, b.in_h, b.in_w, mid, k, b.stride, groups, d));
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
      add.then("dw", conv_op(spec, mid, b.in_h, b.in_w, mid, k, b.stride, mid, d));
      if (b.se > 0) {
        Op se = conv_op(spec, mid, b.out_h, b.out_w, b.se, 1, 1, 1);
        se.kind = OpKind::se;
        add.then("se", se);
      }
      last = add.then("project", conv_op(spec, mid, b.out_h, b.out_w, b.out_c, 1, 1, 1));
      break;
    case BlockKind::convnext:
      add.then("dw", conv_op(spec, b.in_c, b.in_h, b.in_w, b.in_c, k, 1, b.in_c, d));
      add.then("norm", pointwise_op(spec, b.in_c, b.out_h, b.out_w, Pointwise::layernorm));
      add.then("pw1", conv_op(spec, b.in_c, b.out_h, b.out_w, mid, 1, 1, 1));
      last = add.then("pw2", conv_op(spec, mid, b.out_h, b.out_w, b.out_c, 1, 1, 1));
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

// The patch grid of a dynamic block whose S does not divide its map: border patches are clipped
// to the map, and each op's pixels are the clipped patches' (with their halos), expected over
// the grid (rows and columns clip independently, so the mean area is the product of the mean
// sides). A dividing S leaves the ops' whole-patch counts untouched.
struct PatchGrid {
  std::int64_t out_h, out_w, s, patches;
  bool partial() const { return out_h % s != 0 || out_w % s != 0; }
  // Sum over the patches along one axis of (clipped side - 1) * stride + kernel.
  static double axis(std::int64_t extent, std::int64_t s, std::int64_t stride,
                     std::int64_t kernel) {
    const std::int64_t whole = extent / s, rest = extent % s;
    return static_cast<double>(whole * ((s - 1) * stride + kernel) +
                               (rest > 0 ? (rest - 1) * stride + kernel : 0));
  }
  std::int64_t pixels(std::int64_t stride, std::int64_t kernel) const {
    const double cells =
        static_cast<double>(patches_per_side(out_h, s) * patches_per_side(out_w, s));
    return std::llround(static_cast<double>(patches) * axis(out_h, s, stride, kernel) *
                        axis(out_w, s, stride, kernel) / cells);
  }
  // An op whose output side per patch is (clipped side - 1) * a + b reads
  // (clipped side - 1) * a * stride + (b - 1) * stride + its kernel extent.
  Op clip(Op op, std::int64_t a, std::int64_t b) const {
    if (!partial()) return op;
    op.active_pixels = pixels(a, b);
    op.active_in_pixels = pixels(a * op.stride, (b - 1) * op.stride + op.kernel_extent());
    return op;
  }
};

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
  const auto set_reads = [&](Op op) {
    if (stats) op.read_pixels = std::llround(stats->read_pixels);
    return op;
  };
  const std::int64_t k = b.kernel, d = b.dilation, extent = effective_kernel(k, d);
  // A dynamic op over the block's patches whose output side per patch is (S - 1) * a + c.
  const auto dyn = [&](const Op& op, OpKind kind, std::int64_t side, std::int64_t a,
                       std::int64_t c) {
    return PatchGrid{b.out_h, b.out_w, s, patches}.clip(dynamic_op(op, kind, side, patches), a, c);
  };
  // A gather copies what its reader reads: per side (S - 1) * a + c.
  const auto gather_for = [&](const Op& reader, std::int64_t side, std::int64_t a, std::int64_t c) {
    Op gather = dynamic_op(reader, OpKind::gather, side, patches);
    gather.out_channels = gather.in_channels;
    gather.kernel = 1;
    gather.stride = 1;
    gather.groups = 1;
    gather.dilation = 1;
    return set_reads(PatchGrid{b.out_h, b.out_w, s, patches}.clip(gather, a, c));
  };

  // The first conv of the block (1x1 for bottlenecks and inverted residuals, kxk for basic
  // blocks) computes the halo its successor kxk conv needs; the second conv is strided.
  // ConvNeXt blocks and inverted residuals without expansion start at the depthwise conv.
  const bool basic = b.kind == BlockKind::basic;
  const bool convnext = b.kind == BlockKind::convnext;
  const bool inverted = b.kind == BlockKind::inverted_residual;
  const std::int64_t first_side = basic ? s + extent - 1 : patch_input_extent(s, b.stride, extent);
  // The first conv's output side per patch, as (S - 1) * a + c.
  const std::int64_t first_a = basic ? 1 : b.stride, first_c = extent;
  Op first;
  if (basic) {
    first = conv_op(spec, b.in_c, b.in_h, b.in_w, b.out_c, k, b.stride, 1, d);
  } else if (b.expand || (!inverted && !convnext)) {
    first = conv_op(spec, b.in_c, b.in_h, b.in_w, b.mid, 1, 1, 1);
  }
  const bool has_first = first.out_channels > 0;
  const std::string first_name = inverted ? "expand" : "conv1";
  Op second = basic      ? conv_op(spec, b.out_c, b.out_h, b.out_w, b.out_c, k, 1, 1, d)
              : convnext ? conv_op(spec, b.in_c, b.in_h, b.in_w, b.in_c, k, 1, b.in_c, d)
                         : conv_op(spec, b.mid, b.in_h, b.in_w, b.mid, k, b.stride, b.groups, d);
  const std::string second_name = inverted || convnext ? "dw" : "conv2";
  // conv2's windows on conv1's full output: a k x k halo around S x S outputs at its stride,
  // from its padding's origin.
  const auto second_windows = [&](const MaskSource& source) {
    return mask_stats_of(b, settings, source, second, patch_input_extent(s, second.stride, extent),
                         s * second.stride, -((extent - 1) / 2));
  };
  // The union form: a 1x1 first conv computed once per pixel that some active patch's conv2
  // reads. Blocks whose first conv is not 1x1 (basic blocks, a ConvNeXt or an inverted residual
  // without expansion) ignore the flag; parse_fusion rejects it together with masker.
  const bool union_form =
      fusion.union_conv1 && !fusion.masker_conv1 && has_first && first.kernel == 1;
  // Both forms leave conv1's output as a full map that conv2 picks its patches out of.
  const bool first_map = (fusion.masker_conv1 && has_first) || union_form;
  if (first_map) {
    stats = second_windows(masks);
  } else {
    const Op& reader = has_first ? first : second;
    const std::int64_t side = has_first ? first_side : s;
    // A 1x1 first conv reads conv2's halo (origin -1); a k x k reader adds its own padding.
    const std::int64_t origin =
        reader.kernel == 1 ? -((extent - 1) / 2)
                           : -((side - s) / 2 * reader.stride + (reader.kernel_extent() - 1) / 2);
    stats = mask_stats_of(b, settings, masks, reader,
                          patch_input_extent(side, reader.stride, reader.kernel_extent()),
                          s * b.stride, origin);
  }
  if (stats) patches = std::llround(stats->active_patches);

  // conv2 picks its patches out of conv1's full output, through the index list or a gather.
  const auto second_from_first_map = [&] {
    if (fusion.gather_conv1) {
      add.then(second_name, set_reads(dyn(second, OpKind::gather_conv, s, 1, 1)));
    } else {
      add.then("gather", gather_for(second, patch_input_extent(s, second.stride, extent),
                                    second.stride, extent));
      add.then(second_name, dyn(second, OpKind::gathered_conv, s, 1, 1));
    }
  };
  const auto add_masker = [&] {
    Op masker = first.out_channels > 0 ? first : second;
    masker.kind = OpKind::masker;
    masker.out_channels = 1;
    masker.kernel = 1;
    masker.stride = 1;
    masker.groups = 1;
    masker.dilation = 1;
    masker.in_channels = b.in_c;
    masker.in_height = b.in_h;
    masker.in_width = b.in_w;
    masker.out_height = b.out_h;
    masker.out_width = b.out_w;
    masker.granularity = s;
    masker.active_patches = patches;
    add.then("masker", masker);
  };

  if (fusion.masker_conv1 && has_first) {
    // conv1 runs densely with the mask logit as an extra channel.
    Op mc = first;
    mc.kind = OpKind::masker_conv;
    mc.granularity = s * b.stride * (basic ? 1 : 1);
    mc.active_patches = patches;
    if (basic) mc.granularity = s;
    add.then("masker_conv", mc);
    second_from_first_map();
  } else if (union_form) {
    add_masker();
    // U, the distinct conv1 pixels under the active patches' conv2 windows: the mask's own,
    // the model's expectation, and without either uniform's (a form that computes the union
    // has no "halos not shared" reading to fall back on).
    const auto needed_stats = stats ? stats : second_windows(MaskSource{MaskModel::uniform, {}});
    const std::int64_t needed = std::llround(needed_stats->read_pixels);
    Op dilate = first;
    dilate.kind = OpKind::dilate;
    dilate.in_channels = dilate.out_channels = 1;
    dilate.out_height = b.out_h;  // the patch grid is the block output's
    dilate.out_width = b.out_w;
    dilate.granularity = s;
    dilate.active_patches = patches;
    dilate.read_pixels = needed;
    add.then("dilate", dilate);
    // A GEMM of M = U rows: x at the needed pixels in, conv1's rows out at the same pixels.
    Op conv1 = first;
    conv1.kind = OpKind::union_conv;
    conv1.granularity = 1;
    conv1.active_patches = needed;
    conv1.read_pixels = needed;
    add.then(first_name, conv1);
    second_from_first_map();
  } else {
    add_masker();
    const Op& reader = has_first ? first : second;
    const std::int64_t reader_side = has_first ? first_side : s;
    // The reader's output side per patch, as (S - 1) * a + c.
    const std::int64_t ra = has_first ? first_a : 1, rc = has_first ? first_c : 1;
    if (!fusion.gather_conv1) {
      add.then(
          "gather",
          gather_for(reader, patch_input_extent(reader_side, reader.stride, reader.kernel_extent()),
                     ra * reader.stride, (rc - 1) * reader.stride + reader.kernel_extent()));
    }
    const OpKind reader_kind = fusion.gather_conv1 ? OpKind::gather_conv : OpKind::gathered_conv;
    const auto reading = [&](Op op) {
      return reader_kind == OpKind::gather_conv ? set_reads(op) : op;
    };
    if (has_first) {
      add.then(first_name, reading(dyn(first, reader_kind, first_side, first_a, first_c)));
      add.then(second_name, dyn(second, OpKind::gathered_conv, s, 1, 1));
    } else {
      add.then(second_name, reading(dyn(second, reader_kind, s, 1, 1)));
    }
  }

  if (b.se > 0) {
    Op se = conv_op(spec, b.mid, b.out_h, b.out_w, b.se, 1, 1, 1);
    Op squeeze = dyn(se, OpKind::se, s, 1, 1);
    if (stats) squeeze.max_image_patches = std::llround(std::ceil(stats->max_image_patches));
    add.then("se", squeeze);
  }
  if (convnext) {
    // The layernorm and the expanding 1x1 run on the active pixels only.
    add.then("norm", dyn(pointwise_op(spec, b.in_c, b.out_h, b.out_w, Pointwise::layernorm),
                         OpKind::elementwise, s, 1, 1));
    add.then("pw1", dyn(conv_op(spec, b.in_c, b.out_h, b.out_w, b.mid, 1, 1, 1),
                        OpKind::gathered_conv, s, 1, 1));
  }
  const bool has_third = !basic;
  std::size_t shortcut = 0;
  const bool need_shortcut = b.shortcut_conv;
  const auto add_shortcut = [&] {
    shortcut =
        add.add("shortcut", conv_op(spec, b.in_c, b.in_h, b.in_w, b.out_c, 1, b.stride, 1), {});
  };
  const std::string third_name = inverted ? "project" : convnext ? "pw2" : "conv3";
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
    add.add(has_third ? third_name : second_name, dyn(producer, OpKind::conv_scatter_add, s, 1, 1),
            after);
  } else {
    std::size_t produced = g.nodes.size() - 1;
    if (has_third) produced = add.then(third_name, dyn(last, OpKind::gathered_conv, s, 1, 1));
    std::vector<std::size_t> after{produced};
    if (need_shortcut) {
      add_shortcut();
      after.push_back(shortcut);
    }
    Op scatter = dyn(conv_op(spec, b.out_c, b.out_h, b.out_w, b.out_c, 1, 1, 1),
                     OpKind::scatter_add, s, 1, 1);
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

Pointwise pointwise_of(Activation a) {
  switch (a) {
    case Activation::relu:
      return Pointwise::relu;
    case Activation::relu6:
      return Pointwise::relu6;
    case Activation::silu:
      return Pointwise::silu;
    case Activation::hardswish:
      return Pointwise::hardswish;
    case Activation::sigmoid:
      return Pointwise::sigmoid;
    case Activation::gelu:
      return Pointwise::gelu;
    case Activation::none:
      return Pointwise::copy;
  }
  return Pointwise::copy;
}

Pointwise pointwise_of(const LayerSpec& l) {
  switch (l.elementwise) {
    case Elementwise::activation:
      return pointwise_of(l.activation);
    case Elementwise::layernorm:
      return Pointwise::layernorm;
    case Elementwise::batchnorm:
      return Pointwise::batchnorm;
    case Elementwise::scale:
      return Pointwise::scale;
  }
  return Pointwise::copy;
}

Op layer_op(const Spec& spec, const LayerSpec& l, std::int64_t c, std::int64_t h, std::int64_t w) {
  Op op;
  op.precision = spec.precision;
  op.batch = spec.batch;
  op.in_channels = c;
  op.in_height = h;
  op.in_width = w;
  switch (l.kind) {
    case LayerSpec::Kind::conv: {
      op = conv_op(spec, c, h, w, l.out_channels, l.kernel, l.stride, l.groups, l.dilation);
      const std::int64_t extent = effective_kernel(l.kernel, l.dilation);
      op.out_height = conv_output_extent(h, extent, l.stride, l.padding);
      op.out_width = conv_output_extent(w, extent, l.stride, l.padding);
      break;
    }
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
    case LayerSpec::Kind::add:  // its activation runs in the same pass
      op = conv_op(spec, c, h, w, c, 1, 1, 1);
      op.kind = OpKind::add;
      break;
    case LayerSpec::Kind::elementwise:
      op = pointwise_op(spec, c, h, w, pointwise_of(l));
      break;
    case LayerSpec::Kind::se:
      op = conv_op(spec, c, h, w, l.channels, 1, 1, 1);
      op.kind = OpKind::se;
      break;
    case LayerSpec::Kind::concat:
      op = conv_op(spec, c + l.channels, h, w, c + l.channels, 1, 1, 1);
      op.kind = OpKind::concat;
      break;
    case LayerSpec::Kind::upsample:
      op.kind = OpKind::upsample;
      op.out_channels = c;
      op.kernel = l.bilinear ? 2 : 1;
      op.stride = l.scale;
      op.out_height = h * l.scale;
      op.out_width = w * l.scale;
      break;
  }
  return op;
}

std::string layer_name(const LayerSpec& l) {
  switch (l.kind) {
    case LayerSpec::Kind::conv:
      return "conv";
    case LayerSpec::Kind::max_pool:
      return "max_pool";
    case LayerSpec::Kind::avg_pool:
      return "avg_pool";
    case LayerSpec::Kind::global_avg_pool:
      return "global_pool";
    case LayerSpec::Kind::fc:
      return "fc";
    case LayerSpec::Kind::add:
      return "add";
    case LayerSpec::Kind::concat:
      return "concat";
    case LayerSpec::Kind::upsample:
      return "upsample";
    case LayerSpec::Kind::elementwise:
      return std::string(to_string(pointwise_of(l)));
    case LayerSpec::Kind::se:
      return "se";
  }
  return "layer";
}

BlockGraph layer_block(const Spec& spec, const std::vector<LayerSpec>& layers, std::string name,
                       std::int64_t c, std::int64_t h, std::int64_t w) {
  BlockGraph g;
  g.name = std::move(name);
  BlockBuilder add(g);
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const Op op = layer_op(spec, layers[i], c, h, w);
    add.then(fmt::format("{}{}", layer_name(layers[i]), i), op);
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

bool block_has_union_form(const Spec& spec, std::size_t stage, std::size_t index) {
  const BlockShape b = block_shape(spec, stage, index);
  return b.residual && (b.kind == BlockKind::bottleneck || b.kind == BlockKind::regnety ||
                        (b.kind == BlockKind::inverted_residual && b.expand));
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
  const auto layer_inputs = layer_stage_inputs(spec);
  std::size_t next_layer_stage = 0;
  const auto layer_stages_before = [&](std::size_t stage) {
    for (; next_layer_stage < spec.layer_stages.size() &&
           spec.layer_stages[next_layer_stage].before <= stage;
         ++next_layer_stage) {
      const auto& ls = spec.layer_stages[next_layer_stage];
      const auto& in = layer_inputs[next_layer_stage];
      blocks.push_back(layer_block(spec, ls.layers, ls.name, in.channels, in.height, in.width));
    }
  };
  for (std::size_t s = 0; s < spec.stages.size(); ++s) {
    layer_stages_before(s);
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
  layer_stages_before(spec.stages.size());
  const MapShape last = head_input(spec);
  auto head = layer_block(spec, spec.head, "head", last.channels, last.height, last.width);
  head.stage = static_cast<std::int64_t>(spec.stages.size());
  blocks.push_back(std::move(head));
  blocks.front().stage = -1;
  return blocks;
}

double network_macs(const Spec& spec) {
  double macs = 0;
  for (const auto& block : build_network(spec, Execution::dense)) {
    for (const auto& node : block.nodes) {
      const Op& op = node.op;
      if (op.kind == OpKind::conv || op.kind == OpKind::fc) {
        macs += flops(op) / 2;
      } else if (op.kind == OpKind::se) {  // its two fcs, C -> R -> C
        macs += 2.0 * static_cast<double>(op.batch * op.in_channels * op.out_channels);
      }
    }
  }
  return macs / static_cast<double>(spec.batch);
}

namespace {

// A squeeze-excitation's two fcs, with their biases.
std::int64_t se_parameters(std::int64_t c, std::int64_t r) {
  return c * r + r + r * c + c;
}

// A conv with its folded BatchNorm (scale and shift per output channel).
std::int64_t conv_bn_parameters(std::int64_t in, std::int64_t out, std::int64_t kernel,
                                std::int64_t groups) {
  return out * (in / groups) * kernel * kernel + 2 * out;
}

std::int64_t layer_parameters(const LayerSpec& l, const MapShape& in) {
  switch (l.kind) {
    case LayerSpec::Kind::conv:
      return l.out_channels * (in.channels / l.groups) * l.kernel * l.kernel +
             (l.bias ? l.out_channels : 0) + (l.batchnorm ? 2 * l.out_channels : 0);
    case LayerSpec::Kind::fc:
      return (in.channels * in.height * in.width + 1) * l.out_channels;
    case LayerSpec::Kind::elementwise:
      return l.elementwise == Elementwise::layernorm || l.elementwise == Elementwise::batchnorm
                 ? 2 * in.channels
             : l.elementwise == Elementwise::scale ? in.channels
                                                   : 0;
    case LayerSpec::Kind::se:
      return se_parameters(in.channels, l.channels);
    default:
      return 0;
  }
}

std::int64_t layers_parameters(const std::vector<LayerSpec>& layers, MapShape map) {
  std::int64_t n = 0;
  for (const auto& l : layers) {
    n += layer_parameters(l, map);
    map = layer_output(l, map);
  }
  return n;
}

std::int64_t block_parameters(const BlockShape& b) {
  const std::int64_t k = b.kernel;
  std::int64_t n = 0;
  switch (b.kind) {
    case BlockKind::basic:
      n = conv_bn_parameters(b.in_c, b.out_c, k, 1) + conv_bn_parameters(b.out_c, b.out_c, k, 1);
      break;
    case BlockKind::bottleneck:
    case BlockKind::regnety:
      n = conv_bn_parameters(b.in_c, b.mid, 1, 1) + conv_bn_parameters(b.mid, b.mid, k, b.groups) +
          conv_bn_parameters(b.mid, b.out_c, 1, 1);
      break;
    case BlockKind::inverted_residual:
      n = (b.expand ? conv_bn_parameters(b.in_c, b.mid, 1, 1) : 0) +
          conv_bn_parameters(b.mid, b.mid, k, b.mid) + conv_bn_parameters(b.mid, b.out_c, 1, 1);
      break;
    case BlockKind::convnext:
      // As torchvision builds it: convs with biases and no BatchNorm, a LayerNorm's affine, and
      // the layer scale (one factor per channel).
      n = (b.in_c * k * k + b.in_c) + 2 * b.in_c + (b.in_c * b.mid + b.mid) +
          (b.mid * b.out_c + b.out_c) + b.out_c;
      break;
  }
  if (b.se > 0) n += se_parameters(b.mid, b.se);
  if (b.shortcut_conv) n += conv_bn_parameters(b.in_c, b.out_c, 1, 1);
  return n;
}

}  // namespace

std::int64_t network_parameters(const Spec& spec) {
  std::int64_t n = layers_parameters(spec.stem, {spec.in_channels, spec.height, spec.width});
  const auto layer_inputs = layer_stage_inputs(spec);
  for (std::size_t i = 0; i < spec.layer_stages.size(); ++i) {
    n += layers_parameters(spec.layer_stages[i].layers, layer_inputs[i]);
  }
  for (std::size_t s = 0; s < spec.stages.size(); ++s) {
    for (std::size_t i = 0; i < static_cast<std::size_t>(spec.stages[s].blocks); ++i) {
      n += block_parameters(block_shape(spec, s, i));
    }
  }
  return n + layers_parameters(spec.head, head_input(spec));
}

namespace {

// The launch cost of one kernel as predict_op charges it: a graph node's where the profile
// prices graph launches and has the figure, else a stream launch's.
double kernel_launch_s(const Profile& hw) {
  if (hw.graph_launches && hw.graph_launch_overhead_s > 0 && hw.launch_overhead_s > 0) {
    return hw.graph_launch_overhead_s;
  }
  return hw.launch_overhead_s;
}

// One grid-stride pass of a layer runner's plain kernels (the pad and im2col copies, the
// pools): `items` work items, one per thread and iteration, over a grid of 256-thread blocks
// capped at `max_blocks`; each item waits `round_trips` memory round trips (the loads the
// compiler issues together count once). Its time is the largest of its bytes through L2, its
// bytes through DRAM, and, where the grid is small (batch 1), its threads' chain of round trips.
struct Pass {
  double items = 0;
  std::int64_t max_blocks = 0;
  double round_trips = 1;
  double l2_bytes = 0;
  double dram_bytes = 0;
};

constexpr std::int64_t pass_threads = 256;

OpPrediction price_pass(const Pass& pass, const Profile& hw) {
  OpPrediction p;
  p.launch_s = kernel_launch_s(hw);
  if (pass.items <= 0) {
    p.empty = true;
    p.bound = Bound::launch;
    p.latency_s = p.launch_s;
    return p;
  }
  const auto items = static_cast<std::int64_t>(std::ceil(pass.items));
  const std::int64_t blocks =
      std::clamp<std::int64_t>(ceil_div(items, pass_threads), 1, pass.max_blocks);
  const std::int64_t resident = std::max<std::int64_t>(
      1, std::min(hw.max_blocks_per_sm, hw.max_threads_per_sm / pass_threads));
  const std::int64_t busiest = ceil_div(blocks, hw.sm_count);
  const auto iterations = static_cast<double>(ceil_div(items, blocks * pass_threads));
  const auto rounds = static_cast<double>(ceil_div(busiest, resident));
  p.compute_s = rounds * iterations * pass.round_trips * hw.load_latency_s();
  p.l2_bytes = pass.l2_bytes;
  p.dram_bytes = pass.dram_bytes;
  p.l2_s = pass.l2_bytes / hw.l2_bandwidth_bytes_per_s;
  p.dram_s = pass.dram_bytes / (hw.dram_bandwidth_bytes_per_s * hw.calibration.dram_efficiency);
  p.memory_s = std::max(p.l2_s, p.dram_s);
  const double body = std::max(p.compute_s, p.memory_s);
  p.latency_s = body + p.launch_s;
  p.bound = p.launch_s >= body          ? Bound::launch
            : p.compute_s >= p.memory_s ? Bound::compute
                                        : Bound::memory;
  p.tile = Tile{1, pass_threads, 1, 1};
  p.tiles = blocks;
  p.tiles_per_sm = resident;
  p.waves = ceil_div(blocks, hw.sm_count * resident);
  return p;
}

// Adds a kernel's prediction to a layer's: times and bytes add (the kernels run one after
// another); the schedule fields stay the largest kernel's, which is what holds the SMs longest.
void add_kernel(OpPrediction& total, const OpPrediction& k) {
  const bool larger = k.latency_s > total.latency_s - k.latency_s;
  total.latency_s += k.latency_s;
  total.compute_s += k.compute_s;
  total.memory_s += k.memory_s;
  total.dram_s += k.dram_s;
  total.l2_s += k.l2_s;
  total.launch_s += k.launch_s;
  total.flops += k.flops;
  total.dram_bytes += k.dram_bytes;
  total.l2_bytes += k.l2_bytes;
  total.empty = total.empty && k.empty;
  if (larger) {
    total.bound = k.bound;
    total.tile = k.tile;
    total.tiles = k.tiles;
    total.waves = k.waves;
    total.tiles_per_sm = k.tiles_per_sm;
    total.lane_utilization = k.lane_utilization;
    total.coalescing_efficiency = k.coalescing_efficiency;
  }
}

// The layer runners' grid caps (kernels/src/layers.cu's grid_for for the pad copy and the pools,
// conv.cu's launch_im2col for the taps copy): blocks of 256 threads, a few per SM of an H100.
constexpr std::int64_t pad_and_pool_max_blocks = 132 * 64;
constexpr std::int64_t im2col_max_blocks = 132 * 32;
// The loops over a window (the pools' taps, the global pool's pixels) as nvcc compiles them
// (layers.cu, -O3, sm_90a PTX): unrolled by four, the four loads of one step issued together.
constexpr double loads_per_round_trip = 4;

// A conv as an im2col GEMM: the pad copy (where the staged channels exceed the input's), the
// taps copy, then the library GEMM over the [pixels][taps x channels] buffer, which is a 1x1
// conv of that many channels over the output map (the same cuBLASLt GEMM as the blocks' 1x1
// convs, so priced and calibrated as one).
OpPrediction predict_im2col_conv(const Op& op, const GemmTile& tile, const OpContext& context,
                                 PredictionCache& cache, const Profile& hw) {
  const double e = bytes_per_element(op.precision);
  const double l2_capacity = 0.5 * static_cast<double>(hw.l2_size_bytes);
  const std::int64_t staged = std::max(op.in_channels, tile.staged_channels);
  const auto in_pixels = static_cast<double>(op.batch * op.in_height * op.in_width);
  const auto out_pixels = static_cast<double>(op.batch * op.out_height * op.out_width);
  const auto taps = static_cast<double>(op.kernel * op.kernel);
  OpPrediction total;
  total.empty = true;
  bool source_in_l2 = context.input_in_l2;
  if (staged > op.in_channels) {
    // One thread per input element; each 4-byte store lands in the padded map, whose every
    // sector is written (only the pad channels, zeroed once, are skipped).
    const double read = e * in_pixels * static_cast<double>(op.in_channels);
    const double written = e * in_pixels * static_cast<double>(staged);
    Pass pad;
    pad.items = in_pixels * static_cast<double>(op.in_channels);
    pad.max_blocks = pad_and_pool_max_blocks;
    pad.l2_bytes = read + written;
    pad.dram_bytes = (source_in_l2 ? 0.0 : read) + written;
    add_kernel(total, price_pass(pad, hw));
    source_in_l2 = written <= l2_capacity;
  }
  // One thread per float4 of a tap (kernels/src/conv.cu, im2col_kernel): every tap read once
  // through L2 (neighbouring pixels' windows overlap there), the source map once from DRAM.
  const double col = e * out_pixels * taps * static_cast<double>(staged);
  Pass copy;
  copy.items = out_pixels * taps * static_cast<double>(staged) / 4.0;
  copy.max_blocks = im2col_max_blocks;
  copy.l2_bytes = 2.0 * col;
  copy.dram_bytes = (source_in_l2 ? 0.0 : e * in_pixels * static_cast<double>(staged)) + col;
  add_kernel(total, price_pass(copy, hw));

  Op gemm = op;
  gemm.kind = OpKind::conv;
  gemm.kernel = 1;
  gemm.stride = 1;
  gemm.groups = 1;
  gemm.dilation = 1;
  gemm.in_channels = op.kernel * op.kernel * staged;
  gemm.in_height = op.out_height;
  gemm.in_width = op.out_width;
  OpContext gemm_context;
  gemm_context.input_in_l2 = col <= l2_capacity;
  GemmTile library;
  library.library = true;
  library.residual = tile.residual;  // a dense block's add in the GEMM's epilogue
  gemm_context.gemm_tile = library;
  OpPrediction g = cache.predict(gemm, gemm_context);
  // The useful arithmetic is the conv's (the padded channels' products are zeros).
  g.flops = flops(op);
  add_kernel(total, g);
  return total;
}

// A pool as the layer runner's kernel: one thread per output element reading its window (the
// whole map for a global pool), consecutive threads on consecutive channels (coalesced).
OpPrediction predict_pool_pass(const Op& op, const OpContext& context, const Profile& hw) {
  const double e = bytes_per_element(op.precision);
  const auto outputs = static_cast<double>(op.output_elements());
  const bool global = op.kind == OpKind::global_pool;
  const std::int64_t rows = global ? op.in_height : op.kernel;
  const std::int64_t cols = global ? op.in_width : op.kernel;
  // The global pool's loop runs over the map's pixels in steps of four; the pool's over the
  // window's rows, each row's taps in steps of four.
  const double round_trips =
      global
          ? std::ceil(static_cast<double>(rows * cols) / loads_per_round_trip)
          : static_cast<double>(rows) * std::ceil(static_cast<double>(cols) / loads_per_round_trip);
  const double in_map =
      e * static_cast<double>(op.batch * op.in_height * op.in_width * op.in_channels);
  Pass pass;
  pass.items = outputs;
  pass.max_blocks = pad_and_pool_max_blocks;
  pass.round_trips = round_trips;
  pass.l2_bytes = e * outputs * static_cast<double>(rows * cols) + e * outputs;
  pass.dram_bytes = (context.input_in_l2 ? 0.0 : in_map) + e * outputs;
  OpPrediction p = price_pass(pass, hw);
  p.flops = flops(op);
  return p;
}

// A plain layer's op at a layer runner's schedule (GemmTile::im2col, ::thread_per_output).
std::optional<OpPrediction> predict_layer_kernels(const Op& op, const OpContext& context,
                                                  PredictionCache& cache, const Profile& hw) {
  if (!context.gemm_tile) return std::nullopt;
  const GemmTile& tile = *context.gemm_tile;
  if (tile.im2col && op.kind == OpKind::conv) {
    return predict_im2col_conv(op, tile, context, cache, hw);
  }
  if (tile.thread_per_output && (op.kind == OpKind::pool || op.kind == OpKind::global_pool)) {
    return predict_pool_pass(op, context, hw);
  }
  return std::nullopt;
}

}  // namespace

OpPrediction predict_scheduled(const Op& op, const OpContext& context, PredictionCache& cache,
                               const Profile& hw) {
  if (auto layer = predict_layer_kernels(op, context, cache, hw)) return std::move(*layer);
  return cache.predict(op, context);
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
    OpPrediction p = predict_scheduled(node.op, context, cache, hw);
    r.latency_s += p.latency_s;
    r.ops.push_back(OpResult{node.name, node.op, std::move(p)});
  }
  return r;
}

NetworkPrediction predict_network(const std::vector<BlockGraph>& blocks, const Spec& spec,
                                  const Profile& hw, PredictionCache& cache,
                                  const KernelSchedule& schedule) {
  NetworkPrediction n;
  // Stem, the stages in order (layer stages where they run), head.
  n.stages.push_back(StageResult{"stem", 0});
  std::vector<std::size_t> block_stage_slot;
  std::size_t next_layer_stage = 0;
  const auto layer_stages_before = [&](std::size_t stage) {
    for (; next_layer_stage < spec.layer_stages.size() &&
           spec.layer_stages[next_layer_stage].before <= stage;
         ++next_layer_stage) {
      n.stages.push_back(StageResult{spec.layer_stages[next_layer_stage].name, 0});
    }
  };
  for (std::size_t s = 0; s < spec.stages.size(); ++s) {
    layer_stages_before(s);
    block_stage_slot.push_back(n.stages.size());
    n.stages.push_back(StageResult{spec.stages[s].name, 0});
  }
  layer_stages_before(spec.stages.size());
  n.stages.push_back(StageResult{"head", 0});
  const auto slot_of = [&](const BlockGraph& block) -> std::size_t {
    if (block.name == "stem") return 0;
    if (block.name == "head") return n.stages.size() - 1;
    if (block.stage >= 0 && static_cast<std::size_t>(block.stage) < block_stage_slot.size()) {
      return block_stage_slot[static_cast<std::size_t>(block.stage)];
    }
    for (std::size_t i = 1; i + 1 < n.stages.size(); ++i) {
      if (n.stages[i].name == block.name) return i;
    }
    return 0;
  };
  for (const auto& block : blocks) {
    BlockResult r = predict_block(block, cache, hw, schedule);
    const std::size_t stage_slot = slot_of(block);
    n.stages[stage_slot].latency_s += r.latency_s;
    n.latency_s += r.latency_s;
    for (const auto& op : r.ops) n.flops += op.prediction.flops;
    n.blocks.push_back(std::move(r));
  }
  return n;
}

}  // namespace lasnet::predictor
