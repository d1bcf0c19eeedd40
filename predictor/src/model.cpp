#include "lasnet/predictor/model.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <functional>
#include <limits>
#include <span>

#include "lasnet/common/launch_plans.hpp"
#include "lasnet/common/patch_geometry.hpp"
#include "lasnet/predictor/mask_stats.hpp"

namespace lasnet::predictor {

namespace {

// How a tile of `tc` output channels maps onto input channels.
enum class ChannelMap {
  all,      // every input channel (dense conv, fc, masker)
  grouped,  // the groups the output channels belong to (grouped/depthwise conv)
  same,     // channel c reads channel c (pooling, elementwise, gather, scatter)
};

// An op seen as a grid of output elements (units x rows x cols x channels) that tiles cover,
// with what each output element reads. Units are images (dense) or patches (dynamic).
struct Work {
  std::int64_t units = 1, rows = 1, cols = 1, channels = 1;
  std::int64_t in_channels = 1;
  std::int64_t groups = 1;
  ChannelMap channel_map = ChannelMap::all;
  std::int64_t in_kernel = 1, in_stride = 1;  // input rows/cols a tile reads
  std::int64_t in_kernel_cols = 0;            // input cols per output where unlike rows (0: same)
  std::int64_t taps = 1;                      // kernel taps per side (convs: dilation aside)
  int input_reads = 1;                        // 2 for an elementwise add of two maps
  bool reads_weights = false;
  double weights_per_out_channel = 0;  // reduction length (weights per output channel)
  int output_passes = 1;               // 2 when the epilogue reads the residual it adds to
  double flops_per_output = 0;
  bool tensor_cores = false;  // conv-like ops run on tensor cores where the precision has them
  int outputs_per_thread = 4;
  int launches = 1;
  // Input bytes that stay in DRAM (for L2 residency and re-read accounting).
  double input_map_bytes = 0;
};

constexpr std::int64_t k_chunk = 32;  // reduction depth staged in shared memory per step

// Patches of one image's output map at the op's granularity.
std::int64_t patches_per_image(const Op& op) {
  return patches_per_side(op.out_height, op.granularity) *
         patches_per_side(op.out_width, op.granularity);
}

// Input pixels per output pixel along a side: the block's stride, as the kernels' patch
// geometry takes it (input_step = S x stride). Rounded up: an odd map at stride 2 (7 -> 4) is
// still read in steps of 2.
std::int64_t masker_input_step(const Op& op) {
  return std::max<std::int64_t>(1,
                                ceil_div(op.in_height, std::max<std::int64_t>(op.out_height, 1)));
}

// Input pixels of one patch's masker region (the patch's S x input step square, clipped to the
// map), which sets how the pool runs (masker_pool, common/launch_plans.hpp).
std::int64_t masker_region_pixels(const Op& op) {
  const std::int64_t step = masker_input_step(op);
  return std::min(op.granularity * step, op.in_height) *
         std::min(op.granularity * step, op.in_width);
}

// Launches of the masker's pool and compaction into the index list: one kernel for up to 1024
// patches over at most 16384 input pixels, else the pool (and, for large regions, its finalize
// pass) and cub's two-pass select (kernels/src/dynamic.cuh, fused_masker_select).
int mask_select_launches(const Op& op) {
  const std::int64_t patches = op.batch * patches_per_image(op);
  const std::int64_t pixels = op.batch * op.in_height * op.in_width;
  if (patches <= 1024 && pixels <= 16384) return 1;
  return masker_pool(masker_region_pixels(op)).slices > 1 ? 4 : 3;  // + the slices' finalize
}

// Launches of the union form's dilation: one stream compaction over the conv1 pixels whose
// predicate is the window test (cub::DeviceSelect::If: its tile-state init, then one pass).
int dilate_launches(const Op&) {
  return 2;
}

Work make_work(const Op& op) {
  Work w;
  const double e = bytes_per_element(op.precision);
  w.input_map_bytes =
      e * static_cast<double>(op.batch * op.in_height * op.in_width * op.in_channels);
  const auto conv_like = [&](std::int64_t units, std::int64_t side_rows, std::int64_t side_cols) {
    w.units = units;
    w.rows = side_rows;
    w.cols = side_cols;
    w.channels = op.out_channels;
    w.in_channels = op.in_channels;
    w.groups = op.groups;
    w.channel_map = op.groups == 1 ? ChannelMap::all : ChannelMap::grouped;
    w.in_kernel = op.kernel_extent();
    w.taps = op.kernel;
    w.in_stride = op.stride;
    w.reads_weights = true;
    w.weights_per_out_channel =
        static_cast<double>(op.in_channels / op.groups * op.kernel * op.kernel);
    w.flops_per_output = 2.0 * w.weights_per_out_channel;
    // Depthwise convs have a reduction of k*k: nothing for a tensor core to chew on.
    w.tensor_cores = op.in_channels / op.groups >= 8;
    w.outputs_per_thread = 8;
  };
  switch (op.kind) {
    case OpKind::conv:
      conv_like(op.batch, op.out_height, op.out_width);
      break;
    case OpKind::fc:
      conv_like(op.batch, 1, 1);
      break;
    case OpKind::masker_conv:
      conv_like(op.batch, op.out_height, op.out_width);
      w.channels = op.out_channels + 1;
      w.launches = 1 + mask_select_launches(op);  // conv, then pool and compaction
      break;
    case OpKind::gathered_conv:
    case OpKind::gather_conv:
    case OpKind::union_conv:  // granularity 1: one GEMM row per needed pixel
      conv_like(op.active_patches, op.granularity, op.granularity);
      break;
    case OpKind::conv_scatter_add:
      conv_like(op.active_patches, op.granularity, op.granularity);
      w.output_passes = 2;
      w.flops_per_output += 1;
      // Its input is the gathered rows of the active patches, not the map they came from: what
      // stays in L2 or is re-read by each column of tiles is that buffer.
      w.input_map_bytes =
          e * static_cast<double>(op.patch_in_pixels()) * static_cast<double>(op.in_channels);
      break;
    case OpKind::pool:
      w.units = op.batch;
      w.rows = op.out_height;
      w.cols = op.out_width;
      w.channels = op.out_channels;
      w.in_channels = op.in_channels;
      w.channel_map = ChannelMap::same;
      w.in_kernel = op.kernel;
      w.in_stride = op.stride;
      w.flops_per_output = static_cast<double>(op.kernel * op.kernel);
      break;
    case OpKind::global_pool:
    case OpKind::channel_gate:
      w.units = op.batch;
      w.channels = op.kind == OpKind::global_pool ? op.out_channels : op.in_channels;
      w.in_channels = op.in_channels;
      w.channel_map = ChannelMap::same;
      w.in_kernel = op.in_height;  // one output reads the whole map
      w.in_kernel_cols = op.in_width;
      w.in_stride = 1;
      w.flops_per_output = static_cast<double>(op.in_height * op.in_width);
      if (op.kind == OpKind::channel_gate) {
        w.reads_weights = true;
        w.weights_per_out_channel = static_cast<double>(op.out_channels);
        w.launches = 2;
      }
      break;
    case OpKind::add:
      w.units = op.batch;
      w.rows = op.out_height;
      w.cols = op.out_width;
      w.channels = op.out_channels;
      w.in_channels = op.out_channels;
      w.channel_map = ChannelMap::same;
      w.input_reads = 2;
      w.flops_per_output = 1;
      break;
    case OpKind::elementwise: {
      // One read and one write per element (dense, or over active patches); a layernorm's
      // reduction over a pixel's channels stays within the tile's channel slice here.
      const bool dyn = op.is_dynamic();
      w.units = dyn ? op.active_patches : op.batch;
      w.rows = dyn ? op.granularity : op.out_height;
      w.cols = dyn ? op.granularity : op.out_width;
      w.channels = op.out_channels;
      w.in_channels = op.in_channels;
      w.channel_map = ChannelMap::same;
      w.flops_per_output = flops(op) / std::max(1.0, static_cast<double>(op.output_elements()));
      break;
    }
    case OpKind::upsample:
    case OpKind::concat:
      // Each output element reads one input element (nearest; bilinear's four taps mostly
      // hit L1): a copy shaped by the output map.
      w.units = op.batch;
      w.rows = op.out_height;
      w.cols = op.out_width;
      w.channels = op.out_channels;
      w.in_channels = op.out_channels;
      w.channel_map = ChannelMap::same;
      w.flops_per_output = op.kind == OpKind::upsample && op.kernel > 1 ? 7.0 : 0.0;
      break;
    case OpKind::se: {
      const bool dyn = op.is_dynamic();
      w.units = dyn ? op.active_patches : op.batch;
      w.rows = dyn ? op.granularity : op.out_height;
      w.cols = dyn ? op.granularity : op.out_width;
      w.channels = op.in_channels;
      w.in_channels = op.in_channels;
      w.channel_map = ChannelMap::same;
      w.input_reads = 2;  // once to pool, once to scale
      w.flops_per_output = 2;
      w.launches = 3;  // pool, the two small fcs, scale
      break;
    }
    case OpKind::masker:
      w.units = op.batch;
      w.rows = patches_per_side(op.out_height, op.granularity);
      w.cols = patches_per_side(op.out_width, op.granularity);
      w.channels = 1;
      w.in_channels = op.in_channels;
      w.channel_map = ChannelMap::all;
      w.in_kernel = op.granularity * masker_input_step(op);
      w.in_stride = w.in_kernel;
      w.reads_weights = true;
      w.weights_per_out_channel = static_cast<double>(op.in_channels);
      w.flops_per_output = static_cast<double>(w.in_kernel * w.in_kernel * op.in_channels) +
                           2.0 * static_cast<double>(op.in_channels);
      w.launches = 1 + mask_select_launches(op);  // logits, then pool and compaction
      break;
    case OpKind::dilate:  // one mark per conv1 pixel (predict_dilate prices it)
      w.units = op.batch;
      w.rows = op.in_height;
      w.cols = op.in_width;
      w.channel_map = ChannelMap::same;
      w.launches = dilate_launches(op);
      break;
    case OpKind::gather:
      w.units = op.active_patches;
      w.rows = op.granularity;
      w.cols = op.granularity;
      w.channels = op.in_channels;
      w.in_channels = op.in_channels;
      w.channel_map = ChannelMap::same;
      break;
    case OpKind::scatter:
    case OpKind::scatter_add:
      w.units = op.active_patches;
      w.rows = op.granularity;
      w.cols = op.granularity;
      w.channels = op.out_channels;
      w.in_channels = op.out_channels;
      w.channel_map = ChannelMap::same;
      w.output_passes = op.kind == OpKind::scatter_add ? 2 : 1;
      w.flops_per_output = op.kind == OpKind::scatter_add ? 1 : 0;
      break;
  }
  return w;
}

// Bytes moved in memory transactions for `segments` contiguous runs of `run_bytes` each.
double transaction_bytes(double segments, double run_bytes, double transaction) {
  return segments * transaction * std::ceil(run_bytes / transaction);
}

// Candidate extents along one tile axis: powers of two and the common CNN map sizes, capped by
// the extent itself, plus the extent.
void axis_candidates(std::int64_t extent, std::vector<std::int64_t>& out) {
  out.clear();
  static constexpr std::array<std::int64_t, 10> sizes = {1, 2, 4, 7, 8, 14, 16, 28, 32, 56};
  for (const auto s : sizes) {
    if (s < extent) out.push_back(s);
  }
  out.push_back(extent);
}

void channel_candidates(std::int64_t channels, std::vector<std::int64_t>& out) {
  out.clear();
  // Below 16 output channels a tile leaves a tensor-core fragment or a warp half empty.
  for (std::int64_t c = 16; c < channels && c <= 256; c *= 2) out.push_back(c);
  if (channels <= 256) out.push_back(channels);
  if (channels < 8) return;
  if (channels > 256) out.push_back(256);
}

// Units (images or patches) per tile. Powers of two below `units`, then `units` itself: with
// evaluate_tile clamping to `units`, the set at n units contains the clamped form of every
// candidate at n + 1, which keeps predictions monotone in density.
void unit_candidates(std::int64_t units, std::int64_t pixels_per_unit,
                     std::vector<std::int64_t>& out) {
  out.clear();
  for (std::int64_t u = 1; u < units && u * pixels_per_unit <= 1024; u *= 2) out.push_back(u);
  if (units * pixels_per_unit <= 1024) out.push_back(units);
  if (out.empty()) out.push_back(1);
}

}  // namespace

namespace {
bool conv_like_kind(OpKind kind) {
  switch (kind) {
    case OpKind::conv:
    case OpKind::fc:
    case OpKind::masker_conv:
    case OpKind::gathered_conv:
    case OpKind::gather_conv:
    case OpKind::union_conv:
    case OpKind::conv_scatter_add:
      return true;
    default:
      return false;
  }
}
}  // namespace

std::string op_class(const Op& op, const OpContext& context) {
  if (context.gemm_tile && context.gemm_tile->im2col && op.kind == OpKind::conv) {
    // What is priced and fitted is its GEMM, a 1x1 conv over the taps buffer (the copy is
    // bytes and latency): the library's 1x1 class.
    Op gemm = op;
    gemm.kernel = 1;
    gemm.groups = 1;
    gemm.dilation = 1;
    return op_class(gemm) + ".library";
  }
  std::string c = op_class(op);
  const bool epilogue = op.kind == OpKind::add && context.gemm_tile && context.gemm_tile->epilogue;
  if (epilogue) c += ".epilogue";
  if (context.gemm_tile && (conv_like_kind(op.kind) || epilogue)) {
    c += context.gemm_tile->library ? ".library" : context.gemm_tile->direct ? ".direct" : ".igemm";
  }
  // The one-kernel pool and compaction is its own implementation, with its own fixed cost.
  if (op.kind == OpKind::masker && mask_select_launches(op) == 1) c += ".one_kernel";
  return c;
}

std::string gemm_variant(const Op& op, const OpContext& context) {
  if (!context.gemm_tile || !conv_like_kind(op.kind) || context.gemm_tile->direct) return {};
  const auto& g = *context.gemm_tile;
  if (g.library) return fmt::format("library.{}", to_string(op.precision));
  return fmt::format("igemm.{}.{}x{}.w{}{}", to_string(op.precision), g.rows, g.cols, g.warps,
                     g.splits > 1 ? ".splitk" : "");
}

std::string to_string(const GemmTile& tile) {
  if (tile.epilogue) return "in the conv's epilogue";
  if (tile.library) return "library GEMM";
  if (tile.direct) {
    return fmt::format("direct {}x{} ({} warps, {} px/thread)", tile.rows, tile.cols, tile.warps,
                       tile.pixels_per_thread);
  }
  return fmt::format("gemm {}x{} ({} warps)", tile.rows, tile.cols, tile.warps);
}

std::string to_string(const Tile& tile) {
  return fmt::format("{}c x {}x{} x {}u", tile.out_channels, tile.rows, tile.cols, tile.patches);
}

std::string_view to_string(Bound bound) {
  switch (bound) {
    case Bound::compute:
      return "compute";
    case Bound::memory:
      return "memory";
    case Bound::launch:
      return "launch";
  }
  return "?";
}

namespace {

// What an op costs independently of the tile: computed once per search, not once per tile.
struct OpTerms {
  const Op& op;
  Work w;
  double e;
  double flops;
  double unique_dram;
  double output_elements;
  std::string op_class;
  double scale = 1;          // the calibrated scale of the op's class
  double offset_s = 0;       // the calibrated fixed cost of the op's class
  double compute_scale = 1;  // the calibrated factor on its compute time (exact class only)
  std::string gemm_variant;  // the GEMM kernel variant ("" = none): its own compute efficiency
  // The fraction of the peak the op's math runs at (`math`: the precision its units run).
  double efficiency(const Profile& hw, Precision math) const {
    return hw.calibration.compute_efficiency_of(math, gemm_variant);
  }
  // The fraction of the DRAM and L2 rates its kernel variant streams at (1 = the profile's).
  double memory_efficiency(const Profile& hw) const {
    return hw.calibration.memory_efficiency_of(gemm_variant);
  }
  OpTerms(const Op& o, const Profile& hw, const OpContext& context = {})
      : op(o),
        w(make_work(o)),
        e(bytes_per_element(o.precision)),
        flops(predictor::flops(o)),
        unique_dram(unique_dram_bytes(o)),
        output_elements(static_cast<double>(o.output_elements())),
        op_class(predictor::op_class(o, context)),
        gemm_variant(predictor::gemm_variant(o, context)) {
    // A class priced at a given kernel tile ("conv.k1.igemm") falls back to the plain class,
    // then to the kind.
    const auto& cal = hw.calibration;
    const std::string plain = predictor::op_class(o);
    const auto kind = to_string(o.kind);
    const auto s = cal.op_scale.find(op_class);
    scale = s != cal.op_scale.end() ? s->second : cal.op_scale_of(plain, kind);
    const auto f = cal.op_offset_s.find(op_class);
    offset_s = f != cal.op_offset_s.end() ? f->second : cal.op_offset_of(plain, kind);
    if (const auto c = cal.op_compute_scale.find(op_class); c != cal.op_compute_scale.end()) {
      compute_scale = c->second;
    }
    if (context.gemm_tile && context.gemm_tile->residual && conv_like_kind(o.kind)) {
      w.output_passes += 1;
      unique_dram += e * output_elements;
    }
  }
};

// The L2 and DRAM rates an op streams at: the profile's, times the fitted efficiencies (the
// GPU's and the kernel variant's `stream`), never above what the GPU measured (its L2 figure,
// its fastest DRAM stream). Each efficiency is bounded alone; their product is bounded here.
double l2_rate(const Profile& hw, double stream) {
  const double measured = hw.l2_bandwidth_bytes_per_s;
  return std::min(measured, measured * hw.calibration.l2_efficiency * stream);
}
double dram_rate(const Profile& hw, double stream) {
  const double peak = std::max(hw.dram_peak_bytes_per_s, hw.dram_bandwidth_bytes_per_s);
  return std::min(peak, hw.dram_bandwidth_bytes_per_s * hw.calibration.dram_efficiency * stream);
}

// Combines compute and memory time per the profile, adds launch cost and calibration, and
// says what bounds the op. `serial_s` is time that overlaps neither (a kernel's per-tile fixed
// phases, see evaluate_gemm).
void finish(const OpTerms& terms, const Profile& hw, OpPrediction& p, double serial_s = 0) {
  p.compute_s *= terms.compute_scale;
  const double body = (hw.combine == TimeCombine::overlap ? std::max(p.compute_s, p.memory_s)
                                                          : p.compute_s + p.memory_s) +
                      serial_s;
  p.latency_s = terms.scale * (body + p.launch_s) + terms.offset_s;
  if (p.launch_s >= body) {
    p.bound = Bound::launch;
  } else {
    p.bound = p.compute_s >= p.memory_s ? Bound::compute : Bound::memory;
  }
  // No kernel computes faster than the GPU's peak for the op's precision. The fitted class
  // scale and the variant's efficiency are each bounded, but their ratio is not: a scale of
  // 0.4 with an efficiency at its bound of 1 priced an fp32 GEMM at 2.5x the FMA peak.
  const Precision p_in = terms.op.precision;
  const double peak = hw.peak_flops_of(
      p_in != Precision::fp32 && hw.has_tensor_cores(p_in) ? p_in : Precision::fp32);
  if (peak > 0 && terms.flops / peak + p.launch_s > p.latency_s) {
    p.latency_s = terms.flops / peak + p.launch_s;
    p.bound = Bound::compute;
  }
}

enum class Infeasible { none, bad_tile, threads, shared_memory };

// The model proper. Returns Infeasible::none and fills `p`, or says which limit the tile breaks
// (`detail` holds the offending figure); no strings here, it runs thousands of times a query.
Infeasible evaluate(const OpTerms& terms, const Tile& tile, const Profile& hw,
                    const OpContext& context, OpPrediction& p, double& detail) {
  const Op& op = terms.op;
  const Work& w = terms.w;
  const double e = terms.e;
  p = OpPrediction{};
  p.flops = terms.flops;
  p.tile = tile;
  p.launch_s = hw.launch_overhead_s * w.launches;

  if (w.units <= 0 || terms.output_elements <= 0) {
    // Nothing to compute (density 0): the kernel still launches and returns at once.
    p.empty = true;
    p.bound = Bound::launch;
    p.latency_s = p.launch_s;
    return Infeasible::none;
  }
  if (tile.out_channels <= 0 || tile.rows <= 0 || tile.cols <= 0 || tile.patches <= 0) {
    return Infeasible::bad_tile;
  }

  const std::int64_t tc = std::min(tile.out_channels, w.channels);
  const std::int64_t th = std::min(tile.rows, w.rows);
  const std::int64_t tw = std::min(tile.cols, w.cols);
  const std::int64_t tp = std::min(tile.patches, w.units);
  const std::int64_t tiles = ceil_div(w.channels, tc) * ceil_div(w.rows, th) *
                             ceil_div(w.cols, tw) * ceil_div(w.units, tp);
  const std::int64_t pixels = th * tw * tp;
  const std::int64_t slots = pixels * tc;  // output elements a tile computes (padding included)
  const std::int64_t threads = std::max<std::int64_t>(32, ceil_div(slots, w.outputs_per_thread));
  if (threads > 1024) {
    detail = static_cast<double>(threads);
    return Infeasible::threads;
  }

  // Input footprint of one tile.
  const std::int64_t rows_in = (th - 1) * w.in_stride + w.in_kernel;
  const std::int64_t cols_in =
      (tw - 1) * w.in_stride + (w.in_kernel_cols > 0 ? w.in_kernel_cols : w.in_kernel);
  std::int64_t c_in = w.in_channels;
  if (w.channel_map == ChannelMap::same) {
    c_in = tc;
  } else if (w.channel_map == ChannelMap::grouped) {
    const std::int64_t out_per_group = std::max<std::int64_t>(1, w.channels / w.groups);
    const std::int64_t in_per_group = w.in_channels / w.groups;
    c_in = std::min(w.in_channels, ceil_div(tc, out_per_group) * in_per_group);
  }
  const double T = static_cast<double>(hw.memory_transaction_bytes);
  // NHWC: a row of pixels is one contiguous run when the tile reads all channels, otherwise
  // each pixel's channel slice is its own run (short runs waste transaction bytes).
  const bool whole_rows_in = c_in == w.in_channels;
  const double in_useful = static_cast<double>(tp * rows_in * cols_in * c_in) * e;
  const double in_moved = whole_rows_in
                              ? transaction_bytes(static_cast<double>(tp * rows_in),
                                                  static_cast<double>(cols_in * c_in) * e, T)
                              : transaction_bytes(static_cast<double>(tp * rows_in * cols_in),
                                                  static_cast<double>(c_in) * e, T);
  const double weights_moved =
      w.reads_weights ? transaction_bytes(static_cast<double>(tc), w.weights_per_out_channel * e, T)
                      : 0.0;
  const bool whole_rows_out = tc == w.channels;
  const double out_useful = static_cast<double>(slots) * e;
  const double out_moved =
      whole_rows_out
          ? transaction_bytes(static_cast<double>(tp * th), static_cast<double>(tw * tc) * e, T)
          : transaction_bytes(static_cast<double>(pixels), static_cast<double>(tc) * e, T);
  const double tile_bytes = w.input_reads * in_moved + weights_moved + w.output_passes * out_moved;
  const double useful_bytes = w.input_reads * in_useful + w.output_passes * out_useful;
  p.coalescing_efficiency =
      useful_bytes / std::max(1.0, w.input_reads * in_moved + w.output_passes * out_moved);

  // Shared memory: two stages of a reduction chunk of the input tile and of the weights.
  const std::int64_t pixels_in = tp * rows_in * cols_in;
  const double smem =
      w.reads_weights
          ? 2.0 * e *
                static_cast<double>(
                    pixels_in * std::min(c_in, k_chunk) +
                    tc * std::min<std::int64_t>(
                             static_cast<std::int64_t>(w.weights_per_out_channel), k_chunk))
          : 0.0;
  if (smem > static_cast<double>(hw.shared_memory_per_sm_bytes)) {
    detail = smem;
    return Infeasible::shared_memory;
  }
  std::int64_t per_sm = std::min(hw.max_blocks_per_sm, hw.max_threads_per_sm / threads);
  if (smem > 0) {
    per_sm = std::min<std::int64_t>(
        per_sm,
        static_cast<std::int64_t>(static_cast<double>(hw.shared_memory_per_sm_bytes) / smem));
  }
  per_sm = std::max<std::int64_t>(per_sm, 1);

  // Compute: the busiest SM runs ceil(tiles / SMs) tiles; tensor cores fill 16-pixel x
  // 8-channel fragments, SIMT lanes fill one output element each.
  const bool use_tc =
      w.tensor_cores && op.precision != Precision::fp32 && hw.has_tensor_cores(op.precision);
  const double peak = use_tc ? hw.peak_flops_of(op.precision) : hw.peak_flops_of(Precision::fp32);
  const double efficiency = terms.efficiency(hw, op.precision);
  const double sm_flops = peak / static_cast<double>(hw.sm_count) * efficiency;
  double utilization;
  if (use_tc) {
    utilization = static_cast<double>(pixels * tc) /
                  static_cast<double>(ceil_div(pixels, 16) * 16 * ceil_div(tc, 8) * 8);
  } else {
    // Tiles resident on one SM share its lanes, so small tiles fill them together.
    const std::int64_t lanes = hw.fp32_lanes_per_sm;
    const std::int64_t busy = slots * std::min(per_sm, ceil_div(tiles, hw.sm_count));
    utilization = static_cast<double>(busy) / static_cast<double>(ceil_div(busy, lanes) * lanes);
  }
  const std::int64_t busiest = ceil_div(tiles, hw.sm_count);
  const double tile_flops = static_cast<double>(slots) * w.flops_per_output;
  p.compute_s = static_cast<double>(busiest) * tile_flops / (sm_flops * utilization);
  p.lane_utilization =
      std::min(1.0, terms.output_elements / static_cast<double>(tiles * slots)) * utilization;

  // L2 -> SM traffic: limited by L2 bandwidth overall and by what one SM can pull.
  p.l2_bytes = static_cast<double>(tiles) * tile_bytes;
  const double stream = terms.memory_efficiency(hw);
  p.l2_s = std::max(p.l2_bytes / l2_rate(hw, stream),
                    static_cast<double>(busiest) * tile_bytes / hw.sm_bandwidth_bytes_per_s);

  // DRAM: unique bytes, less an input still in L2, plus re-reads of the input by each
  // output-channel tile column when input and weights overflow L2.
  double dram = terms.unique_dram;
  const double l2_capacity = 0.5 * static_cast<double>(hw.l2_size_bytes);
  if (context.input_in_l2 && w.input_map_bytes <= l2_capacity) {
    dram -= std::min(dram, w.input_map_bytes);
  }
  const double weight_bytes =
      w.reads_weights ? e * w.weights_per_out_channel * static_cast<double>(w.channels) : 0.0;
  const double working_set = w.input_map_bytes + weight_bytes;
  if (working_set > l2_capacity && w.channel_map != ChannelMap::same) {
    const double miss = 1.0 - l2_capacity / working_set;
    const double passes = static_cast<double>(ceil_div(w.channels, tc) - 1);
    dram += miss * passes * std::min(w.input_map_bytes, p.l2_bytes);
  }
  p.dram_bytes = dram;
  p.dram_s = dram / dram_rate(hw, stream);
  p.memory_s = std::max(p.l2_s, p.dram_s);

  p.tiles = tiles;
  p.tiles_per_sm = per_sm;
  p.waves = ceil_div(tiles, hw.sm_count * per_sm);
  finish(terms, hw, p);
  return Infeasible::none;
}

// The fraction of its rate an SM reaches with `warps` resident warps (latency hiding), relative
// to a full SM: 1 when the profile has no latency term.
double occupancy_factor(double warps, const Profile& hw) {
  const double w0 = hw.calibration.latency_warps;
  if (w0 <= 0) return 1.0;
  const double full = static_cast<double>(hw.max_threads_per_sm) / 32.0;
  return (warps / (warps + w0)) / (full / (full + w0));
}

// Starts the prediction of an op priced at a kernel's schedule: false, with a launch-only
// prediction, when there is nothing to compute (density 0).
bool start_priced(const OpTerms& terms, const Profile& hw, int launches, OpPrediction& p) {
  p = OpPrediction{};
  p.flops = terms.flops;
  p.launch_s = hw.launch_overhead_s * static_cast<double>(launches);
  const Work& w = terms.w;
  if (w.units * w.rows * w.cols > 0 && terms.output_elements > 0) return true;
  p.empty = true;
  p.bound = Bound::launch;
  p.latency_s = p.launch_s;
  return false;
}

// The op's unique DRAM bytes, less an input its producer left in L2.
double dram_bytes_once(const OpTerms& terms, const Profile& hw, const OpContext& context) {
  double dram = terms.unique_dram;
  if (context.input_in_l2 &&
      terms.w.input_map_bytes <= 0.5 * static_cast<double>(hw.l2_size_bytes)) {
    dram -= std::min(dram, terms.w.input_map_bytes);
  }
  return dram;
}

// The share of a grouped kernel's reuse between neighbouring strips that L1 keeps: ncu on the
// H200 (probe shapes, batch 128) read L1 hit rates of 19% (stride 2) and 46% (stride 1) against
// 33% and 66% if every shared column hit, at 74-91% of L2 throughput.
constexpr double direct_l1_retention = 0.65;

// The depthwise and grouped direct 3x3 kernels (kernels/src/grouped_conv.cu) as they run: a
// thread computes a strip of up to 4 output pixels of one row x `cols` channels (4 for
// depthwise), looping over the 3 input rows (and, grouped, over its group's input channels 4 at
// a time); each iteration issues its 16-byte input loads, waits for them, then runs its FFMAs.
// Three phases, which add up (below):
// - issue: every warp instruction (loads, shared-memory weight reads, FFMAs) through the SM's
//   schedulers, one per cycle each;
// - L1: a warp load costs one L1 wavefront per distinct 128-byte line; the grouped kernel's
//   32 threads load 32 different pixels (32 lines), a depthwise warp covers 32/quads strips of
//   its quads' contiguous channels;
// - latency: each round of resident blocks waits on its threads' chain of dependent loads
//   (the weight staging, the count and index, each iteration's input, the epilogue's bias).
// Dynamic ops also pay for the blocks past the device-side count.
// Memory: the unique DRAM bytes, and from L2 each block's input footprint once (depthwise: the
// taps its strips share hit L1) plus, for grouped blocks, the reuse L1 misses (below).
void evaluate_direct(const OpTerms& terms, const GemmTile& g, const Profile& hw,
                     const OpContext& context, OpPrediction& p) {
  const Op& op = terms.op;
  const Work& w = terms.w;
  const double e = terms.e;
  if (!start_priced(terms, hw, w.launches, p)) return;
  const std::int64_t m = w.units * w.rows * w.cols;
  constexpr std::int64_t strip = 4, strip_rows = 4;  // kTx, kRy of grouped_conv.cu
  const bool depthwise = g.channels_across_groups;
  const std::int64_t bn = std::max<std::int64_t>(4, g.cols);
  // Threads along pixels: depthwise blocks are (channel quads) x (strips), grouped ones strips.
  const std::int64_t quads = depthwise ? std::min<std::int64_t>(32, bn / 4) : 1;
  const std::int64_t strip_threads =
      std::max<std::int64_t>(1, g.rows / std::max<std::int64_t>(1, g.pixels_per_thread));
  const std::int64_t threads = strip_threads * quads;
  const std::int64_t block_warps = ceil_div(threads, 32);
  // Strips: row segments (map rows or patch rows) padded to runs of 4, ceil(width / 4) each.
  const std::int64_t width = std::max<std::int64_t>(1, w.cols);
  const auto strips_of = [&](std::int64_t rows) {
    return ceil_div(ceil_div(rows, width), strip_rows) * strip_rows * ceil_div(width, strip);
  };
  const std::int64_t strips = strips_of(m);
  const std::int64_t cin_g =
      std::max<std::int64_t>(1, w.in_channels / std::max<std::int64_t>(1, w.groups));
  const std::int64_t channel_blocks =
      depthwise ? ceil_div(std::max<std::int64_t>(1, op.out_channels), bn)
                : std::max<std::int64_t>(1, w.groups) *
                      ceil_div(std::max<std::int64_t>(
                                   1, op.out_channels / std::max<std::int64_t>(1, w.groups)),
                               bn);
  const std::int64_t blocks = ceil_div(strips, strip_threads) * channel_blocks;
  const std::int64_t busiest = ceil_div(blocks, hw.sm_count);
  // Resident blocks: the kernel's own where the build says (ptxas's registers,
  // GemmTile::blocks_per_sm), else about 64 registers a thread depthwise and 128 grouped.
  const std::int64_t registers = depthwise ? 64 : 128;
  const std::int64_t per_sm = std::max<std::int64_t>(
      1,
      std::min({hw.max_blocks_per_sm, hw.max_threads_per_sm / (block_warps * 32),
                g.blocks_per_sm > 0 ? g.blocks_per_sm : 65536 / (registers * block_warps * 32)}));

  const std::int64_t stride = std::max<std::int64_t>(1, w.in_stride);
  const auto cols_of = [&](std::int64_t len) {
    return static_cast<double>((len - 1) * stride + w.in_kernel);
  };
  const double cols_loaded = cols_of(strip);
  const std::int64_t full = width / strip, rest = width % strip;
  const double cols_real =
      (static_cast<double>(full) * cols_of(strip) + (rest > 0 ? cols_of(rest) : 0.0)) /
      static_cast<double>(full + (rest > 0 ? 1 : 0));
  const auto iterations = static_cast<double>(w.taps * (depthwise ? 1 : ceil_div(cin_g, 4)));
  const auto taps_x = static_cast<double>(w.taps);
  const auto px_strip = static_cast<double>(strip);
  const double ffma =
      depthwise ? taps_x * px_strip * 4.0 : taps_x * 4.0 * px_strip * static_cast<double>(bn);
  const double weight_reads = depthwise ? taps_x : taps_x * static_cast<double>(bn);
  const double per_iteration = cols_loaded + weight_reads + ffma;
  const double lines_per_load = depthwise ? static_cast<double>(32 / quads) *
                                                std::ceil(static_cast<double>(quads) * 16.0 / 128.0)
                                          : 32.0;
  const double warps_busiest = static_cast<double>(busiest * block_warps);
  const double schedulers = std::max(1.0, static_cast<double>(hw.fp32_lanes_per_sm) / 32.0);
  const double issue_s = warps_busiest * iterations * per_iteration / (schedulers * hw.clock_hz);
  const double wavefront_s = hw.l1_wavefront_s();
  const double l1_s = warps_busiest * iterations * cols_real * lines_per_load * wavefront_s;
  const double load_latency_s = hw.load_latency_s();
  // A thread's chain of dependent loads. The prologue stages the block's weights in shared
  // memory, one load and store per pass of its threads over them (the store waits for the
  // load: 9 passes for 8 outputs of a 16-wide group), then reads the device-side count (dynamic
  // ops) and its row's patch index (gather_conv); then one load round per iteration and the
  // epilogue's bias.
  const auto block_weights = static_cast<double>(w.taps * w.taps * (depthwise ? bn : cin_g * bn));
  const double fill_loads = std::ceil(block_weights / static_cast<double>(threads));
  const double count_loads = op.is_dynamic() ? 1.0 : 0.0;
  const double index_loads = op.kind == OpKind::gather_conv ? 1.0 : 0.0;
  const double chain_loads = fill_loads + count_loads + index_loads + iterations + 1.0;
  const double rounds = static_cast<double>(ceil_div(busiest, per_sm));
  // The phases in series: a thread issues its loads, waits for them, then runs its FFMAs, and
  // the few warps an SM holds (4-8 blocks of 4-8 warps) run in step, so their L1 wavefronts,
  // the round trips and the instruction issue add up rather than hide each other. (The largest
  // of the three, as before, left grouped convs at batch 1-8 up to 3x over that bound.)
  p.compute_s = issue_s + l1_s + rounds * chain_loads * load_latency_s;
  // A dynamic op's grid is launched for every patch of the batch (the mask's capacity, no host
  // sync): blocks past the device-side count still stage their weights and read the count
  // before they exit, in rounds of resident blocks after the active ones.
  double idle_s = 0;
  if (op.is_dynamic()) {
    const std::int64_t capacity = op.batch * patches_per_image(op) * w.rows * w.cols;
    const std::int64_t grid =
        ceil_div(strips_of(std::max(capacity, m)), strip_threads) * channel_blocks;
    const std::int64_t idle = std::max<std::int64_t>(0, grid - blocks);
    idle_s = static_cast<double>(ceil_div(ceil_div(idle, hw.sm_count), per_sm)) *
             (fill_loads + count_loads) * load_latency_s;
  }
  p.lane_utilization =
      terms.output_elements / static_cast<double>(strips * strip * channel_blocks * bn);

  const double T = static_cast<double>(hw.memory_transaction_bytes);
  const auto kk = static_cast<double>(w.in_kernel), st = static_cast<double>(stride);
  const double px = static_cast<double>(strip_threads * std::min(strip, width));
  const auto uw = static_cast<double>(width);
  const double out_rows = std::max(1.0, px / uw);
  const double footprint = ((out_rows - 1) * st + kk) * ((std::min(px, uw) - 1) * st + kk);
  const double in_row_bytes = static_cast<double>(depthwise ? bn : cin_g) * e;
  const double footprint_bytes = transaction_bytes(footprint, in_row_bytes, T);
  double in_bytes = footprint_bytes;
  double l2_rate = hw.l2_bandwidth_bytes_per_s;
  if (!depthwise) {
    const double load_bytes =
        static_cast<double>(threads) * iterations * cols_real * std::max(16.0, T);
    in_bytes += std::max(0.0, load_bytes - footprint_bytes) * (1.0 - direct_l1_retention);
    l2_rate *= hw.calibration.l2_efficiency;
  }
  const double block_bytes =
      in_bytes + w.output_passes * transaction_bytes(px, static_cast<double>(bn) * e, T);
  p.l2_bytes = static_cast<double>(blocks) * block_bytes;
  p.l2_s = std::max(p.l2_bytes / l2_rate,
                    static_cast<double>(busiest) * block_bytes / hw.sm_bandwidth_bytes_per_s);
  p.dram_bytes = dram_bytes_once(terms, hw, context);
  p.dram_s = p.dram_bytes / (hw.dram_bandwidth_bytes_per_s * hw.calibration.dram_efficiency);
  p.memory_s = std::max(p.l2_s, p.dram_s);

  p.tile = Tile{bn, g.rows, 1, 1};
  p.tiles = blocks;
  p.tiles_per_sm = per_sm;
  p.waves = ceil_div(blocks, hw.sm_count * per_sm);
  finish(terms, hw, p, idle_s);
}

// An implicit GEMM at a given tile, as the kernels run it: ceil(M / rows) x groups x
// ceil(N / cols) tiles, each computing its whole rows x cols block (partial tiles included) over
// the full K loop; the busiest SM runs ceil(tiles / SMs) of them one after another (or side by
// side, sharing its rate). A tiles load every tap of every row from L2 (no halo reuse in shared
// memory), B tiles the tile's weights.
void evaluate_gemm(const OpTerms& terms, const GemmTile& g, const Profile& hw,
                   const OpContext& context, OpPrediction& p) {
  const Op& op = terms.op;
  const Work& w = terms.w;
  const double e = terms.e;
  const std::int64_t splits = std::max<std::int64_t>(1, g.splits);
  if (!start_priced(terms, hw, w.launches + (splits > 1 ? 1 : 0), p)) return;
  const std::int64_t m = w.units * w.rows * w.cols;
  const std::int64_t bm = std::max<std::int64_t>(1, g.rows);
  const std::int64_t bn = std::max<std::int64_t>(1, g.cols);
  const std::int64_t groups = std::max<std::int64_t>(1, w.groups);
  const std::int64_t n = ceil_div(std::max<std::int64_t>(1, op.out_channels), groups);
  const double k = w.weights_per_out_channel;
  const std::int64_t taps = w.taps * w.taps;
  const std::int64_t tiles = ceil_div(m, bm) * groups * ceil_div(n, bn);
  const std::int64_t blocks = tiles * splits;
  const std::int64_t busiest = ceil_div(blocks, hw.sm_count);
  const std::int64_t threads = 32 * std::max<std::int64_t>(1, g.warps);
  // Resident tiles: the kernel's own residency where known, else threads and registers (up to
  // 128 per thread of a 64K-register file).
  const std::int64_t per_sm = std::max<std::int64_t>(
      1, std::min({hw.max_blocks_per_sm, hw.max_threads_per_sm / threads,
                   g.blocks_per_sm > 0 ? g.blocks_per_sm : 65536 / (128 * threads)}));
  const std::int64_t resident = std::min(per_sm, busiest);

  const bool use_tc =
      w.tensor_cores && op.precision != Precision::fp32 && hw.has_tensor_cores(op.precision);
  const Precision math = use_tc ? op.precision : Precision::fp32;
  const double peak = hw.peak_flops_of(math);
  const double sm_flops = peak / static_cast<double>(hw.sm_count) * terms.efficiency(hw, math) *
                          occupancy_factor(static_cast<double>(resident * g.warps), hw);
  const double tile_flops = 2.0 * static_cast<double>(bm * bn) * k / static_cast<double>(splits);
  p.compute_s = static_cast<double>(busiest) * tile_flops / sm_flops;
  p.lane_utilization = terms.output_elements / static_cast<double>(tiles * bm * bn);

  const double T = static_cast<double>(hw.memory_transaction_bytes);
  const double cin_g = k / static_cast<double>(std::max<std::int64_t>(1, taps));
  // Input rows of a tile: every tap of every output pixel (the implicit GEMM stages A per tap).
  const double tap_rows = static_cast<double>(bm * taps);
  const double row_bytes = cin_g * e;
  const double a_bytes = transaction_bytes(tap_rows, row_bytes, T);
  const double b_bytes = transaction_bytes(static_cast<double>(bn), k * e, T);
  const double c_bytes =
      w.output_passes * transaction_bytes(static_cast<double>(bm), static_cast<double>(bn) * e, T);
  // A split block reads its K slice of A and B and writes a whole output tile of partial sums:
  // fp32 in our kernels at every precision (kernels/src/splitk_reduce.cuh), the library's
  // priced at the output's element size.
  const auto sp = static_cast<double>(splits);
  const double partial_e = g.library ? e : 4.0;
  const double tile_bytes = (a_bytes + b_bytes) / sp + c_bytes;
  const double partial_tile_bytes =
      transaction_bytes(static_cast<double>(bm), static_cast<double>(bn) * partial_e, T);
  const double partial_bytes =
      splits > 1 ? sp * static_cast<double>(tiles) * partial_tile_bytes : 0.0;
  p.coalescing_efficiency = 1;
  p.l2_bytes = static_cast<double>(blocks) * tile_bytes + partial_bytes;
  const double stream = terms.memory_efficiency(hw);
  // The fitted L2 efficiency is what our own kernels reach (cp.async into swizzled shared
  // memory, one or two tiles an SM). A library's kernels stream L2 their own way (on Hopper
  // TMA bulk copies, shared across a cluster), so their rate is the measured one times their
  // variant's own memory factor: with ours, the wide tf32 cuBLASLt GEMMs of the tenth round
  // needed twice the rate the fit allowed (docs/model.md, "The library's L2 stream").
  const double l2_stream_rate =
      g.library ? std::min(hw.l2_bandwidth_bytes_per_s, hw.l2_bandwidth_bytes_per_s * stream)
                : l2_rate(hw, stream);
  p.l2_s = std::max(p.l2_bytes / l2_stream_rate,
                    static_cast<double>(busiest) * tile_bytes / hw.sm_bandwidth_bytes_per_s);

  double dram = dram_bytes_once(terms, hw, context);
  const double l2_capacity = 0.5 * static_cast<double>(hw.l2_size_bytes);
  const double weight_bytes = e * k * static_cast<double>(w.channels);
  const double working_set = w.input_map_bytes + weight_bytes;
  // Where input and weights overflow L2, the grid's order decides whether the input is read
  // from DRAM once. The fp32/tf32 implicit GEMM (kernels/src/conv.cu) and the library (its
  // GEMM is C^T = W^T X^T) make the channel tiles the fast grid dimension: a pixel stripe's N
  // tiles run side by side and share it. The fp16 implicit GEMM walks M first, so each
  // column of N tiles streams the whole input again.
  const bool columns_reread = !g.library && op.precision == Precision::fp16;
  if (working_set > l2_capacity && columns_reread) {
    const double miss = 1.0 - l2_capacity / working_set;
    const double passes = static_cast<double>(ceil_div(n, bn) - 1);
    dram += miss * passes * std::min(w.input_map_bytes, p.l2_bytes);
  }
  p.dram_bytes = dram;
  p.dram_s = dram / dram_rate(hw, stream);
  // The library's SIMT tiles (fp32 FFMA) stage their operands with load instructions issued by
  // the same warps, from the same issue slots, as their FMAs: the staging does not hide behind
  // the math, so a tile's L2 traffic adds to its time. Timed one by one
  // (bench/results/cublaslt_probe_fp32_large_h100.txt), cuBLASLt's candidates for a 25088 x
  // 512 x 1536 GEMM run 807 us at 128x128 up to 1115 us at 32x128, in step with their L2
  // traffic; overlapped, every tile was priced the same.
  const bool staging_in_math = g.library && !use_tc;
  if (staging_in_math) p.compute_s += p.l2_s;
  p.memory_s = staging_in_math ? p.dram_s : std::max(p.l2_s, p.dram_s);

  // The per-tile fixed phases (kernels/src/conv.cu, igemm_kernel), where the profile has the
  // term: a tile first fills its cp.async pipeline (ST - 1 chunks in flight before the first
  // chunk's math can start: a memory round trip with nothing to overlap it), and after its K
  // loop stages the accumulators through shared memory behind barriers and streams its rows
  // out (bias, residual, ReLU). Neither overlaps the tile's own K loop, and with the one or two
  // tiles an SM holds there is little other work to hide them, so each round of resident tiles
  // pays one fitted latency (`gemm_round_s`: the fill and the epilogue's barriers, one per
  // round since the resident tiles wait side by side) plus its tiles' output bytes (the
  // residual read too) at what one SM can move. A short-K tile is mostly these phases, a
  // long-K one mostly its loop: the fixed phases are what one per-class scale cannot say.
  double serial_s = 0;
  if (const double round_s = hw.calibration.gemm_round_of(terms.gemm_variant); round_s > 0) {
    const auto rounds = static_cast<double>(ceil_div(busiest, resident));
    // A split block writes its partial sums once; the reduce pass adds the residual.
    const double block_out = splits > 1 ? partial_tile_bytes : c_bytes;
    const double epilogue_bytes = static_cast<double>(resident) * block_out;
    serial_s = rounds * (round_s + epilogue_bytes / hw.sm_bandwidth_bytes_per_s);
  }

  // Split-K's reduce pass (kernels/src/splitk_reduce.cuh) is a kernel of its own, after the
  // GEMM: it overlaps none of it. It streams every slice's partial sums back (from L2 where
  // they fit, else DRAM) and writes the output rows through the epilogue.
  if (splits > 1) {
    const double outputs = static_cast<double>(m) * static_cast<double>(op.out_channels);
    const double out_bytes = outputs * e;
    const double slices_bytes = sp * outputs * partial_e;
    const double read_rate = slices_bytes <= l2_capacity ? l2_rate(hw, 1.0) : dram_rate(hw, 1.0);
    serial_s += slices_bytes / read_rate + w.output_passes * out_bytes / dram_rate(hw, 1.0);
  }

  p.tile = Tile{bn, bm, 1, 1};
  p.tiles = blocks;
  p.tiles_per_sm = per_sm;
  p.waves = ceil_div(blocks, hw.sm_count * per_sm);
  finish(terms, hw, p, serial_s);
}

// A vendor library's GEMM (cuBLASLt) as the library runs it: its heuristic picks, per shape,
// one of a handful of CTA tiles and a split-K factor with a separate reduction. A probe of its
// picks (bench/kernels/cublaslt_probe.cu; on the H100 for sample A's shapes, on the H200 for
// batch-1 ones): fp32 GEMMs run SIMT kernels from 32x32 tiles up (32x32 for most small GEMMs,
// 64x64, 32x128, 64x256, 128x128 for larger ones), split in 2-7 where the unsplit grid leaves
// SMs idle and K is long; tf32 GEMMs run tensor-core kernels whose smallest tile is 64x64. Which
// one it picks is what decides the time of a small GEMM: an N of 16 computes a whole tile
// column, a few tiles over 132 SMs either idle most of them or pay the split's second pass. So
// each candidate is priced as an implicit GEMM at that tile (waves over the SMs, partial tiles
// whole, split-K's partial sums and extra launch, the per-round fixed phases) under the
// library's own efficiency, and the op takes the cheapest: the heuristic's pick is, for most
// shapes, within a few percent of its best candidate (47 of 51 probed shapes within 3%). The
// tile search of `predict`, which prices any tile of outputs at full lanes, cannot see the
// columns a narrow N wastes nor the split a long K needs.
OpPrediction predict_library_gemm(const OpTerms& terms, const Profile& hw,
                                  const OpContext& context) {
  struct Shape {
    std::int64_t rows, cols, warps;
  };
  // CTA tiles (output pixels x output channels, both orientations: the probe names the
  // library's tile, not which GEMM side holds the pixels) and their warps.
  static constexpr Shape simt[] = {{32, 32, 4},  {64, 32, 4},  {32, 64, 4},  {64, 64, 4},
                                   {128, 32, 4}, {32, 128, 4}, {128, 64, 4}, {64, 128, 4},
                                   {256, 64, 8}, {64, 256, 8}, {128, 128, 8}};
  static constexpr Shape tensor[] = {{64, 64, 4},   {128, 64, 4},  {64, 128, 4},
                                     {128, 128, 8}, {256, 128, 8}, {128, 256, 8}};
  const bool use_tc = terms.w.tensor_cores && terms.op.precision != Precision::fp32 &&
                      hw.has_tensor_cores(terms.op.precision);
  const std::span<const Shape> shapes = use_tc ? std::span<const Shape>(tensor) : simt;
  static constexpr std::int64_t split_factors[] = {1, 2, 3, 4, 5, 6, 8, 12, 16};
  const Work& w = terms.w;
  const std::int64_t m = w.units * w.rows * w.cols;
  const std::int64_t n = std::max<std::int64_t>(1, terms.op.out_channels);
  const auto k = static_cast<std::int64_t>(w.weights_per_out_channel);
  OpPrediction best, candidate;
  bool found = false;
  for (const Shape& s : shapes) {
    const std::int64_t tiles = ceil_div(std::max<std::int64_t>(1, m), s.rows) * ceil_div(n, s.cols);
    for (const std::int64_t splits : split_factors) {
      // The library splits K only where the unsplit grid leaves SMs idle, into slices of at
      // least 32 (a split grid beyond two waves gains nothing its reduction does not cost).
      if (splits > 1 &&
          (tiles >= hw.sm_count || k / splits < 32 || tiles * splits > 2 * hw.sm_count)) {
        continue;
      }
      GemmTile g{s.rows, s.cols, s.warps};
      g.splits = splits;
      g.library = true;
      evaluate_gemm(terms, g, hw, context, candidate);
      if (!found || candidate.latency_s < best.latency_s) {
        best = candidate;
        found = true;
      }
    }
  }
  return best;
}

// The masker as a GPU runs it well: a per-pixel pass that reads x once (one warp per pixel, the
// logit of the pixel), a per-patch pool of those logits (one thread per patch walking its
// pixels: a serial chain of loads, the only part that grows with S), then a stream compaction
// of the mask into the index list (a scan over the patches). Not a tile search: no tile of
// this shape reads a patch's whole region, and one SM per patch is not how it runs.
OpPrediction predict_masker(const OpTerms& terms, const Profile& hw, const OpContext& context) {
  const Op& op = terms.op;
  const double e = terms.e;
  OpPrediction p;
  p.flops = terms.flops;
  p.launch_s = hw.launch_overhead_s * (1 + mask_select_launches(op));  // logits, then the rest
  const double pixels = static_cast<double>(op.batch * op.in_height * op.in_width);
  const std::int64_t patches = op.batch * patches_per_image(op);
  if (pixels <= 0 || patches <= 0) {
    p.empty = true;
    p.bound = Bound::launch;
    p.latency_s = p.launch_s;
    return p;
  }
  const double dram_bw = hw.dram_bandwidth_bytes_per_s * hw.calibration.dram_efficiency;
  const double l2_bw = hw.l2_bandwidth_bytes_per_s * hw.calibration.l2_efficiency;
  // Logits: x in, one float per pixel out.
  const double x_bytes = pixels * static_cast<double>(op.in_channels) * e;
  const bool x_in_l2 =
      context.input_in_l2 && x_bytes <= 0.5 * static_cast<double>(hw.l2_size_bytes);
  const double logits_bytes = pixels * 4.0;
  const double logits_s = (x_in_l2 ? x_bytes / l2_bw : x_bytes / dram_bw) + logits_bytes / dram_bw;
  // One warp per pixel in a grid-stride loop: each resident warp walks its pixels one after
  // another, each waiting on its DRAM load. With few channels per pixel this, not the bytes,
  // sets the time (the ResNet-50 56x56x64 masker at batch 128 runs 20% over the byte count).
  const double warp_slots = static_cast<double>(hw.sm_count * (hw.max_threads_per_sm / 32));
  // A pixel of many channels is several 16-byte loads per lane, in flight about four at a time
  // (the unrolled channel loop): 2048 channels, 16 loads, 4.75 iterations' worth.
  const double loads_per_lane = std::ceil(static_cast<double>(op.in_channels) / (4.0 * 32.0));
  const double iteration_s = hw.warp_iteration_s() * (1.0 + (loads_per_lane - 1.0) / 4.0);
  const double logits_latency_s = std::ceil(pixels / warp_slots) * iteration_s;
  const double logits_compute =
      pixels * 2.0 * static_cast<double>(op.in_channels) / hw.peak_flops_of(Precision::fp32);
  // Pool, as masker_pool plans it (common/launch_plans.hpp): G threads per patch, each walking
  // its share of the region's pixels one load after another; large regions in slices of
  // 256-thread blocks and a finalize pass that adds each patch's slices.
  const std::int64_t step = masker_input_step(op);
  const std::int64_t side_h = std::min(op.granularity * step, op.in_height);
  const std::int64_t side_w = std::min(op.granularity * step, op.in_width);
  const std::int64_t region = masker_region_pixels(op);
  const bool one_kernel = mask_select_launches(op) == 1;
  const MaskerPool plan =
      one_kernel ? MaskerPool{masker_pool_select_threads(patches), 1} : masker_pool(region);
  const double chain = static_cast<double>(ceil_div(region, plan.threads * plan.slices));
  constexpr std::int64_t block_threads = 256;
  const std::int64_t threads = patches * plan.threads * plan.slices;
  // One block holds the whole one-kernel pool; otherwise blocks spread over the SMs, at most
  // 8 of 256 threads resident on one at a time.
  const std::int64_t blocks_busiest =
      one_kernel ? 1 : ceil_div(ceil_div(threads, block_threads), hw.sm_count);
  const std::int64_t threads_busiest =
      std::min(threads, (one_kernel ? 1024 : blocks_busiest * block_threads));
  const std::int64_t resident = std::max<std::int64_t>(1, hw.max_threads_per_sm / block_threads);
  const double rounds =
      plan.slices > 1 ? static_cast<double>(ceil_div(blocks_busiest, resident)) : 1.0;
  // Each iteration of the pool's loop (an index division, an L2 load, an add) takes a lone
  // warp's latency until the warps sharing the SM fill its schedulers, then warps x the issue
  // cost of one. The one-kernel form is a single block, so all its warps (up to 32) share one
  // SM: a 120x120 region walked by one warp is 450 iterations at the latency (43 us on the
  // H100), 16 patches of 30x30 on 16 warps 29; spread over the SMs, the busiest holds up to 8
  // blocks of 8 warps. The slices' finalize is a chain of one iteration per slice.
  const double warps_on_sm = static_cast<double>(
      std::min<std::int64_t>(ceil_div(threads_busiest, 32), hw.max_threads_per_sm / 32));
  const double pool_step_s = std::max(hw.pool_iteration_s(), warps_on_sm * hw.pool_issue_s());
  const double chain_s = rounds * chain * pool_step_s;
  const double finalize_s =
      plan.slices > 1 ? static_cast<double>(plan.slices) * hw.pool_iteration_s() : 0.0;
  const double pool_s = std::max(chain_s, logits_bytes / l2_bw) + finalize_s;
  // Compaction: flags in, indices out, two passes over the patches.
  const double compaction_s = static_cast<double>(patches) * (2.0 * 1.0 + 4.0 + 4.0) / l2_bw;
  p.compute_s = logits_compute;
  p.l2_s = pool_s + compaction_s;
  p.dram_s = logits_s;
  p.memory_s = logits_s + pool_s + compaction_s;
  p.dram_bytes = (x_in_l2 ? 0.0 : x_bytes) + logits_bytes;
  p.l2_bytes = x_bytes + 2.0 * logits_bytes + static_cast<double>(patches) * 10.0;
  p.tile = Tile{1, side_h, side_w, 1};
  p.tiles = patches * plan.slices;
  p.waves = static_cast<std::int64_t>(rounds);
  p.tiles_per_sm = threads_busiest;
  const double body =
      std::max({logits_compute, logits_s, logits_latency_s}) + pool_s + compaction_s;
  p.latency_s = terms.scale * (body + p.launch_s) + terms.offset_s;
  p.bound = p.launch_s >= body ? Bound::launch : Bound::memory;
  return p;
}

// The union form's dilation priced like the masker's compaction, which it resembles: a stream
// compaction over every conv1 pixel of the batch whose predicate tests whether an active patch's
// conv2 window holds the pixel (a few mask entries per pixel, mostly the same as its
// neighbours': about one byte per pixel past L1), writing the U needed pixels' indices. Small
// data that stays in L2; the mask and the list cross DRAM once. Not a tile search: no arithmetic.
OpPrediction predict_dilate(const OpTerms& terms, const Profile& hw) {
  const Op& op = terms.op;
  OpPrediction p;
  p.flops = terms.flops;
  p.launch_s = hw.launch_overhead_s * dilate_launches(op);
  const double pixels = static_cast<double>(op.batch * op.in_height * op.in_width);
  const double cells = static_cast<double>(op.batch * patches_per_image(op));
  if (pixels <= 0 || cells <= 0) {
    p.empty = true;
    p.bound = Bound::launch;
    p.latency_s = p.launch_s;
    return p;
  }
  const double dram_bw = hw.dram_bandwidth_bytes_per_s * hw.calibration.dram_efficiency;
  const double l2_bw = hw.l2_bandwidth_bytes_per_s * hw.calibration.l2_efficiency;
  const double needed = static_cast<double>(op.read_pixels);
  p.l2_bytes = cells * 4.0 + pixels * 1.0 + needed * 4.0;
  p.l2_s = p.l2_bytes / l2_bw;
  p.dram_bytes = terms.unique_dram;
  p.dram_s = p.dram_bytes / dram_bw;
  p.memory_s = std::max(p.l2_s, p.dram_s);
  p.compute_s = 0;
  p.tile = Tile{1, op.in_height, op.in_width, 1};
  p.tiles = op.batch;
  p.waves = 1;
  p.tiles_per_sm = 1;
  p.latency_s = terms.scale * (p.memory_s + p.launch_s) + terms.offset_s;
  p.bound = p.launch_s >= p.memory_s ? Bound::launch : Bound::memory;
  return p;
}

// The dependent round trips of a warp's loop `for (i = lane; i < length; i += 32)` over a
// row in global memory, as nvcc compiles it (kernels/src/se.cu's FC loops): unrolled by 4 with
// the 0-3 leftover iterations first, one at a time. The four loads of an unrolled iteration are
// in flight together; each leftover load is a round trip of its own, and a warp runs the
// leftovers its slowest lane has, then the unrolled iterations its longest lane has.
std::int64_t warp_loop_round_trips(std::int64_t length) {
  std::int64_t leftovers = 0, unrolled = 0;
  for (std::int64_t lane = 0; lane < 32 && lane < length; ++lane) {
    const std::int64_t n = ceil_div(length - lane, 32);
    leftovers = std::max(leftovers, n % 4);
    unrolled = std::max(unrolled, n / 4);
  }
  return leftovers + unrolled;
}

// SASS cycles a warp's scheduler spends on one trip of a grid-stride loop whose index math is
// `divisions` integer divisions by runtime values: ptxas expands each (the 64-bit ones on their
// 32-bit fast path) into a float reciprocal and two conversions on the SM's 16-lane/cycle pipe,
// 8 cycles a warp instruction, and the trip's other instructions (some 40 cycles of loads,
// stores, multiplies and the loop test) issue in their shadow.
constexpr double division_trip_cycles(int divisions) {
  return divisions * 3 * 8 + 40;
}

// A grid-stride loop (common/launch_plans.hpp) over `work` items, its grid sized for
// `grid_work` (at least `work`): blocks, each thread's trips, the busiest SM's blocks, and the
// time that SM's schedulers take to issue its warps' trips at `trip_cycles` each.
struct GridStrideWalk {
  std::int64_t blocks = 0, trips = 0, blocks_busiest = 0;
  double issue_s = 0;
};
GridStrideWalk grid_stride_walk(std::int64_t work, std::int64_t grid_work, double trip_cycles,
                                const Profile& hw) {
  GridStrideWalk w;
  w.blocks = grid_stride_blocks(grid_work);
  w.trips = ceil_div(work, w.blocks * kGridStrideThreads);
  w.blocks_busiest = ceil_div(w.blocks, hw.sm_count);
  const double warp_trips =
      static_cast<double>(w.blocks_busiest * (kGridStrideThreads / 32) * w.trips);
  const double schedulers = std::max(1.0, static_cast<double>(hw.fp32_lanes_per_sm) / 32.0);
  w.issue_s = warp_trips * trip_cycles / (schedulers * hw.clock_hz);
  return w;
}

// Squeeze-excitation as the kernels run it (kernels/src/se.cu): a pool pass with one block per
// (32 channels, image, slice of its rows), whose 8 rows of lanes each walk 1/8 of the slice one
// load after another; a small pass of the two fcs, one block per image; and a scale pass.
// Not a tile search: the pool's time is its longest chain of loads or the map's bytes, whichever
// is longer, and the fcs are a chain of dependent round trips to the weights (which the timed
// runs find in DRAM). A dynamic block pools and scales the active patches' pixels only; its
// pool's blocks each find their image's run of the index list by two binary searches, and walk
// every row of the image's active patches (a clipped row too) with two dependent loads each,
// the patch's index and then the pixel, so the busiest image sets the chain.
OpPrediction predict_se(const OpTerms& terms, const Profile& hw, const OpContext& context) {
  const Op& op = terms.op;
  const double e = terms.e;
  OpPrediction p;
  p.flops = terms.flops;
  p.launch_s = hw.launch_overhead_s * 3;
  const double pixels = op.is_dynamic()
                            ? static_cast<double>(op.patch_out_pixels())
                            : static_cast<double>(op.batch * op.out_height * op.out_width);
  const double channels = static_cast<double>(op.in_channels);
  if (pixels <= 0 || channels <= 0 || op.batch <= 0) {
    p.empty = true;
    p.bound = Bound::launch;
    p.latency_s = p.launch_s;
    return p;
  }
  const double dram_bw = hw.dram_bandwidth_bytes_per_s * hw.calibration.dram_efficiency;
  const double l2_bw = hw.l2_bandwidth_bytes_per_s * hw.calibration.l2_efficiency;
  const double round_trip_s = hw.load_latency_s();
  const double map_bytes = pixels * channels * e;
  const bool map_in_l2 =
      context.input_in_l2 && map_bytes <= 0.5 * static_cast<double>(hw.l2_size_bytes);
  // Pool: reads the map once (from L2 where its producer just wrote it).
  const double pool_bytes_s = map_in_l2 ? map_bytes / l2_bw : map_bytes / dram_bw;
  // Blocks of 32 channels x 8 row groups per image and slice of its rows (se_pool_slices,
  // common/launch_plans.hpp, sized from the rows an image can have).
  constexpr double lanes = 32, row_groups = 8;
  const std::int64_t rows_per_image = op.is_dynamic()
                                          ? patches_per_image(op) * op.granularity * op.granularity
                                          : op.out_height * op.out_width;
  const std::int64_t slices_n = se_pool_slices(op.in_channels, op.batch, rows_per_image);
  const double slices = static_cast<double>(slices_n);
  const double blocks = std::ceil(channels / lanes) * static_cast<double>(op.batch) * slices;
  const double per_sm =
      std::floor(static_cast<double>(hw.max_threads_per_sm) / (lanes * row_groups));
  const double rounds = std::ceil(blocks / (static_cast<double>(hw.sm_count) * per_sm));
  // The busiest image's blocks (a column of them per slice) may take fewer rounds than the
  // grid's, but their chains are the longest: the pool waits on whichever is longer.
  const double mean_rows = pixels / static_cast<double>(op.batch);
  double busiest_rows = mean_rows;
  double loads_per_row = 1;
  double search_loads = 0;
  if (op.is_dynamic()) {
    const double busiest =
        op.max_image_patches > 0
            ? static_cast<double>(op.max_image_patches)
            : uniform_max_image_patches(op.batch, patches_per_image(op), op.active_patches);
    busiest_rows = busiest * static_cast<double>(op.granularity * op.granularity);
    loads_per_row = 2;
    search_loads =
        2.0 * std::ceil(std::log2(
                  static_cast<double>(std::max<std::int64_t>(op.active_patches, 1)) + 1.0));
  }
  const double busiest_rounds =
      std::ceil(std::ceil(channels / lanes) * slices / (static_cast<double>(hw.sm_count) * per_sm));
  const double chain = std::ceil(busiest_rows / slices / row_groups);
  const double iterations =
      std::max(rounds * std::ceil(mean_rows / slices / row_groups), busiest_rounds * chain);
  const double pool_chain_s = (iterations * loads_per_row + search_loads) * round_trip_s;
  const double pool_s = std::max(pool_bytes_s, pool_chain_s);
  // The fcs: one block per image (kSeFcThreads threads) on its own SM adds the slices' sums and
  // reads both weight matrices (C x R each) through that SM's port to L2. Its chain: each
  // thread's sums over the slices, then per warp ceil(R / warps) rows of w1 (C long) and
  // ceil(C / warps) rows of w2 (R long), each row a warp loop's round trips plus the dependent
  // load of its bias.
  const std::int64_t squeezed_n = op.out_channels;
  const std::int64_t fc_warps = kSeFcThreads / 32;
  const double fc_bytes =
      (2.0 * channels * static_cast<double>(squeezed_n) + slices * channels) * e;
  const double fc_chain = static_cast<double>(
      ceil_div(op.in_channels, kSeFcThreads) * (slices_n % 4 + slices_n / 4) +
      ceil_div(squeezed_n, fc_warps) * (warp_loop_round_trips(op.in_channels) + 1) +
      ceil_div(op.in_channels, fc_warps) * (warp_loop_round_trips(squeezed_n) + 1));
  const double fc_s = std::max(fc_bytes / hw.sm_bandwidth_bytes_per_s, fc_chain * round_trip_s);
  // Scale: reads the map again (now in L2 where it fits) and writes it, one element a trip of a
  // grid-stride loop (at most 16 blocks an SM) over every row a pass covers (a clipped patch's
  // too). Each trip finds its element's channel and image by divisions (e / C and the row's
  // image; a dynamic block's row / S^2, then its patch index / patches per image): on a large
  // map that walk, not the bytes, sets the pass's time.
  const bool fits = map_bytes <= 0.5 * static_cast<double>(hw.l2_size_bytes);
  const double scale_bytes_s =
      (fits ? map_bytes / l2_bw : map_bytes / dram_bw) + map_bytes / dram_bw;
  const std::int64_t walked_rows = op.is_dynamic()
                                       ? op.active_patches * op.granularity * op.granularity
                                       : op.batch * op.out_height * op.out_width;
  const std::int64_t capacity_rows =
      op.is_dynamic() ? op.batch * patches_per_image(op) * op.granularity * op.granularity
                      : walked_rows;
  const double scale_walk_s =
      grid_stride_walk(walked_rows * op.in_channels, capacity_rows * op.in_channels,
                       division_trip_cycles(op.is_dynamic() ? 3 : 2), hw)
          .issue_s;
  const double scale_s = std::max(scale_bytes_s, scale_walk_s);
  p.compute_s = terms.flops / hw.peak_flops_of(Precision::fp32);
  p.dram_bytes = (map_in_l2 ? 0.0 : map_bytes) + (fits ? 0.0 : map_bytes) + map_bytes;
  p.l2_bytes = 3.0 * map_bytes;
  p.dram_s = p.dram_bytes / dram_bw;
  p.l2_s = pool_chain_s + fc_s;
  p.memory_s = pool_s + fc_s + scale_s;
  p.tile = Tile{static_cast<std::int64_t>(lanes), static_cast<std::int64_t>(chain), 1, 1};
  p.tiles = static_cast<std::int64_t>(blocks);
  p.waves = static_cast<std::int64_t>(rounds);
  p.tiles_per_sm = static_cast<std::int64_t>(per_sm);
  const double body = std::max(p.compute_s, p.memory_s);
  // The class scale corrects the passes' modelled chains, not the three launches: those the
  // profile measured, and at small maps they are most of the op (scaling them priced small SE
  // ops slow and large ones fast).
  p.latency_s = terms.scale * body + p.launch_s + terms.offset_s;
  p.bound = p.launch_s >= body ? Bound::launch : Bound::memory;
  return p;
}

}  // namespace

namespace {

// SASS cycles a warp's scheduler spends on one trip of the inactive pass's loop: the index math
// of a trip is five integer divisions (the vector's pixel, its column, row and image, and the
// patch's row and column), beside some 60 other instructions (the 64-bit index, the mask load and
// test, the 16-byte load, ReLU and store) that issue in their shadow. The calibration's compute
// scale of the class ("scatter") corrects it.
constexpr double inactive_trip_cycles = division_trip_cycles(5);

// The inactive-pixel pass (add_inactive_kernel, kernels/src/dynamic.cu and typed_ops.cu), as it
// runs: a grid-stride loop over every 16-byte vector of the whole output map (one element where
// the channels do not fill vectors); each trip works out its pixel, loads the mask byte of its
// patch, and only where that is 0 loads the shortcut and stores ReLU(it). Two limits, the larger
// wins:
// - the walk: every trip of the busiest SM's warps through its schedulers, active pixels or not
//   (integer divisions, the mask test); it does not fall with density;
// - DRAM: the shortcut read (unless its producer left it in L2) and the output written at the
//   inactive pixels only, plus the mask.
// At low density the bytes set the time, at high density the walk: the timings fall with the
// inactive share, but far less than it.
OpPrediction predict_inactive_pass(const OpTerms& terms, const Profile& hw,
                                   const OpContext& context) {
  const Op& op = terms.op;
  OpPrediction p;
  p.flops = terms.flops;
  p.launch_s = hw.launch_overhead_s;
  const std::int64_t pixels = op.batch * op.out_height * op.out_width;
  if (pixels <= 0 || op.out_channels <= 0) {
    p.empty = true;
    p.bound = Bound::launch;
    p.latency_s = p.launch_s;
    return p;
  }
  const double e = terms.e;
  const auto channel_bytes = static_cast<double>(op.out_channels) * e;
  const std::int64_t per_vector =
      std::fmod(channel_bytes, 16.0) == 0 ? static_cast<std::int64_t>(16.0 / e) : 1;
  const std::int64_t vectors = pixels * ceil_div(op.out_channels, per_vector);
  const auto [blocks, trips, blocks_busiest, issue_s] =
      grid_stride_walk(vectors, vectors, inactive_trip_cycles, hw);
  // A thread's trips are a chain: the mask load, then (at an inactive pixel) the shortcut's,
  // each a round trip, for every round of resident blocks (8 of 256 threads an SM).
  const std::int64_t rounds = ceil_div(
      blocks_busiest, std::max<std::int64_t>(1, hw.max_threads_per_sm / kGridStrideThreads));
  const double inactive_share =
      terms.output_elements / (static_cast<double>(pixels) * static_cast<double>(op.out_channels));
  const double chain_s =
      static_cast<double>(rounds * trips) * (1.0 + inactive_share) * hw.load_latency_s();
  p.compute_s = std::max(issue_s, chain_s);
  p.lane_utilization =
      static_cast<double>(vectors) / static_cast<double>(blocks * kGridStrideThreads * trips);

  // The inactive pixels in runs of a patch row (S pixels of all channels), in transactions.
  const double T = static_cast<double>(hw.memory_transaction_bytes);
  const double inactive_px = terms.output_elements / static_cast<double>(op.out_channels);
  const auto s = static_cast<double>(std::max<std::int64_t>(1, op.granularity));
  const double runs = std::ceil(inactive_px / s);
  const double moved = transaction_bytes(runs, s * channel_bytes, T);
  const double mask_bytes = terms.unique_dram - 2.0 * e * terms.output_elements;
  // A shortcut its producer left in L2 is read from there; the output goes on to DRAM.
  const double map_bytes = static_cast<double>(pixels) * channel_bytes;
  const bool shortcut_in_l2 =
      context.input_in_l2 && map_bytes <= 0.5 * static_cast<double>(hw.l2_size_bytes);
  p.dram_bytes = (shortcut_in_l2 ? 1.0 : 2.0) * moved + mask_bytes;
  // Each warp's trip reads its mask byte (one sector, from L1 or L2).
  // The stores stream on to DRAM (the DRAM term); what the SMs wait on from L2 is the reads.
  const double l2_reads = moved + mask_bytes + static_cast<double>(vectors) / 32.0 * T;
  p.l2_bytes = l2_reads + moved;
  p.dram_s = p.dram_bytes / (hw.dram_bandwidth_bytes_per_s * hw.calibration.dram_efficiency);
  p.l2_s = l2_reads / (hw.l2_bandwidth_bytes_per_s * hw.calibration.l2_efficiency);
  p.memory_s = std::max(p.dram_s, p.l2_s);
  p.coalescing_efficiency = 2.0 * e * terms.output_elements / std::max(1.0, 2.0 * moved);

  p.tiles = blocks;
  p.tiles_per_sm = std::min(blocks_busiest,
                            std::max<std::int64_t>(1, hw.max_threads_per_sm / kGridStrideThreads));
  p.waves = ceil_div(blocks, hw.sm_count * p.tiles_per_sm);
  finish(terms, hw, p);
  return p;
}

// A dense block's residual add in its last conv's epilogue (our implicit GEMM's epilogue,
// cuBLASLt's C input with beta = 1): the residual's read is the conv's (GemmTile::residual), in
// its DRAM and L2 streams; the add itself has no launch and no bytes, only its class's fitted
// fixed cost, one per implementation ("add.epilogue.library": cuBLASLt runs other kernels when
// given C). As a pass of its own (three maps and a launch, a class scale absorbing the
// difference) the sixteenth round's large cuBLASLt convs with a residual came out 40% slow.
OpPrediction predict_epilogue_add(const OpTerms& terms, const Profile& hw) {
  OpPrediction p;
  p.flops = terms.flops;
  p.empty = terms.output_elements <= 0;
  finish(terms, hw, p);
  p.bound = Bound::launch;
  return p;
}

}  // namespace

TileEvaluation evaluate_tile(const Op& op, const Tile& tile, const Profile& hw,
                             const OpContext& context) {
  TileEvaluation result;
  double detail = 0;
  switch (evaluate(OpTerms(op, hw), tile, hw, context, result.prediction, detail)) {
    case Infeasible::none:
      result.feasible = true;
      break;
    case Infeasible::bad_tile:
      result.reason = "tile extents must be positive";
      break;
    case Infeasible::threads:
      result.reason = fmt::format("{:.0f} threads per tile exceed 1024", detail);
      break;
    case Infeasible::shared_memory:
      result.reason = fmt::format("{:.0f} bytes of shared memory per tile exceed the SM's {}",
                                  detail, hw.shared_memory_per_sm_bytes);
      break;
  }
  return result;
}

namespace {

OpPrediction predict_stream_launched(const Op& op, const Profile& hw, const OpContext& context) {
  const OpTerms terms(op, hw, context);
  if (context.gemm_tile && context.gemm_tile->library && conv_like_kind(op.kind)) {
    return predict_library_gemm(terms, hw, context);
  }
  if (context.gemm_tile && !context.gemm_tile->library && conv_like_kind(op.kind)) {
    OpPrediction p;
    if (context.gemm_tile->direct) {
      evaluate_direct(terms, *context.gemm_tile, hw, context, p);
    } else {
      evaluate_gemm(terms, *context.gemm_tile, hw, context, p);
    }
    return p;
  }
  if (op.kind == OpKind::masker) return predict_masker(terms, hw, context);
  if (op.kind == OpKind::dilate) return predict_dilate(terms, hw);
  if (op.kind == OpKind::se) return predict_se(terms, hw, context);
  if (op.kind == OpKind::scatter) return predict_inactive_pass(terms, hw, context);
  if (op.kind == OpKind::add && context.gemm_tile && context.gemm_tile->epilogue) {
    return predict_epilogue_add(terms, hw);
  }
  const Work& w = terms.w;
  std::vector<std::int64_t> cs, rs, ks, us;
  channel_candidates(w.channels, cs);
  axis_candidates(w.rows, rs);
  axis_candidates(w.cols, ks);
  OpPrediction best, candidate;
  bool found = false;
  double detail = 0;

  // Exact pruning: no tile beats its busiest SM's arithmetic at full lanes, nor the op's DRAM
  // traffic; both are cheap to compute, so most losing tiles skip the full evaluation. The
  // bounds mirror evaluate()'s formulas, so the optimum found is the same.
  const bool use_tc =
      w.tensor_cores && op.precision != Precision::fp32 && hw.has_tensor_cores(op.precision);
  const double sm_flops =
      (use_tc ? hw.peak_flops_of(op.precision) : hw.peak_flops_of(Precision::fp32)) /
      static_cast<double>(hw.sm_count) * terms.efficiency(hw, op.precision);
  double dram_floor = terms.unique_dram;
  if (context.input_in_l2 && w.input_map_bytes <= 0.5 * static_cast<double>(hw.l2_size_bytes)) {
    dram_floor -= std::min(dram_floor, w.input_map_bytes);
  }
  const double dram_s_floor =
      dram_floor / (hw.dram_bandwidth_bytes_per_s * hw.calibration.dram_efficiency);
  const double scale = terms.scale;
  const double launch_s = hw.launch_overhead_s * w.launches;
  const auto lower_bound = [&](const Tile& t) {
    const std::int64_t tc = std::min(t.out_channels, w.channels);
    const std::int64_t th = std::min(t.rows, w.rows);
    const std::int64_t tw = std::min(t.cols, w.cols);
    const std::int64_t tp = std::min(t.patches, w.units);
    const std::int64_t tiles = ceil_div(w.channels, tc) * ceil_div(w.rows, th) *
                               ceil_div(w.cols, tw) * ceil_div(w.units, tp);
    const double compute = static_cast<double>(ceil_div(tiles, hw.sm_count)) *
                           static_cast<double>(tc * th * tw * tp) * w.flops_per_output / sm_flops;
    const double body = hw.combine == TimeCombine::overlap ? std::max(compute, dram_s_floor)
                                                           : compute + dram_s_floor;
    return scale * (body + launch_s) + terms.offset_s;
  };

  const auto consider = [&](const Tile& tile) {
    if (found && w.units > 0 && lower_bound(tile) >= best.latency_s) return;
    if (evaluate(terms, tile, hw, context, candidate, detail) != Infeasible::none) return;
    if (!found || candidate.latency_s < best.latency_s) {
      best = candidate;
      found = true;
    }
  };
  for (const auto tc : cs) {
    for (const auto th : rs) {
      for (const auto tw : ks) {
        // Roughly square tiles only: long thin ones just re-read their halos.
        if ((th > 2 * tw || tw > 2 * th) && (th != w.rows || tw != w.cols)) continue;
        if (th * tw > 1024) continue;
        if (th < w.rows || tw < w.cols) {
          // A tile covering part of a unit holds one unit; units are batched into a tile only
          // once it spans them whole.
          consider(Tile{tc, th, tw, 1});
          continue;
        }
        unit_candidates(w.units, th * tw, us);
        for (const auto tp : us) consider(Tile{tc, th, tw, tp});
      }
    }
  }
  if (found && best.empty) return best;
  if (!found) {
    // Every tile broke a limit (a pathological shape): fall back to the smallest tile, whose
    // limits are the loosest, so the network still gets a finite, conservative time. Even that
    // tile can overflow shared memory (a masker pooling a whole 56x56 map per patch); it is
    // then costed as if the memory were there (one tile per SM), never as 0 s.
    if (evaluate(terms, Tile{1, 1, 1, 1}, hw, context, best, detail) != Infeasible::none) {
      Profile roomy = hw;
      roomy.shared_memory_per_sm_bytes = static_cast<std::int64_t>(detail) + 1;
      const Infeasible why = evaluate(terms, Tile{1, 1, 1, 1}, roomy, context, best, detail);
      assert(why == Infeasible::none);
      (void)why;
    }
  }
  return best;
}

}  // namespace

OpPrediction predict_op(const Op& op, const Profile& hw, const OpContext& context) {
  OpPrediction p = predict_stream_launched(op, hw, context);
  // A graph node costs the GPU less than a stream launch (profile.hpp, graph_launched); the
  // measured difference per launch comes off the calibrated time as it is, never scaled, and a
  // kernel never costs less than its graph launch.
  if (hw.graph_launches && hw.graph_launch_overhead_s > 0 && hw.launch_overhead_s > 0) {
    const double launches = p.launch_s / hw.launch_overhead_s;
    const double graph_launch_s = launches * hw.graph_launch_overhead_s;
    const double saving_s = std::max(0.0, p.launch_s - graph_launch_s);
    p.latency_s = std::max(p.latency_s - saving_s, graph_launch_s);
    p.launch_s = graph_launch_s;
  }
  return p;
}

std::size_t PredictionCache::KeyHash::operator()(const Key& k) const {
  std::size_t h = std::hash<int>{}(static_cast<int>(k.op.kind));
  const auto mix = [&h](std::int64_t v) {
    h ^= std::hash<std::int64_t>{}(v) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  };
  const Op& o = k.op;
  for (const auto v : {static_cast<std::int64_t>(o.precision),
                       o.batch,
                       o.in_channels,
                       o.out_channels,
                       o.in_height,
                       o.in_width,
                       o.out_height,
                       o.out_width,
                       o.kernel,
                       o.stride,
                       o.groups,
                       o.granularity,
                       o.active_patches,
                       static_cast<std::int64_t>(k.input_in_l2),
                       o.dilation,
                       static_cast<std::int64_t>(o.pointwise),
                       o.active_pixels,
                       o.active_in_pixels,
                       o.read_pixels,
                       o.max_image_patches}) {
    mix(v);
  }
  if (k.gemm_tile) {
    mix(k.gemm_tile->rows);
    mix(k.gemm_tile->cols);
    mix(k.gemm_tile->warps);
    mix(k.gemm_tile->splits);
    mix(k.gemm_tile->blocks_per_sm);
    mix(k.gemm_tile->pixels_per_thread + (k.gemm_tile->direct ? 1000 : 0) +
        (k.gemm_tile->channels_across_groups ? 2000 : 0) + (k.gemm_tile->library ? 4000 : 0) +
        (k.gemm_tile->epilogue ? 8000 : 0) + (k.gemm_tile->residual ? 16000 : 0));
  }
  return h;
}

const OpPrediction& PredictionCache::predict(const Op& op, const OpContext& context) {
  Key key{op, context.input_in_l2, context.gemm_tile};
  if (const auto it = cache_.find(key); it != cache_.end()) return it->second;
  return cache_.emplace(std::move(key), predict_op(op, hw_, context)).first->second;
}

void PredictionCache::merge(const PredictionCache& other) {
  for (const auto& [key, prediction] : other.cache_) cache_.try_emplace(key, prediction);
}

}  // namespace lasnet::predictor
