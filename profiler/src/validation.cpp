#include "lasnet/profiler/validation.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>
#include <tuple>

#include "lasnet/common/document.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/common/patch_geometry.hpp"
#include "lasnet/kernels/conv_plan.hpp"
#include "lasnet/kernels/layers.hpp"
#include "lasnet/profiler/svg.hpp"

namespace lasnet::profiler {

namespace {

using ordered = nlohmann::ordered_json;

// The step the kernels run first in a block: the shortcut conv when there is one, else the
// step of the first node.
std::string first_step(const PlannedBlock& b, const BlockTiming* timing) {
  if (timing != nullptr && !timing->steps.empty()) return timing->steps.front().name;
  const auto& skip = b.job.skip_steps;
  if (b.job.config.shape.has_projection() &&
      std::find(skip.begin(), skip.end(), "shortcut") == skip.end()) {
    return "shortcut";
  }
  for (const auto& s : b.node_steps) {
    if (!s.empty()) return s;
  }
  return {};
}

std::vector<StepPrediction> predict_steps_cached(const PlannedBlock& b, const BlockTiming* timing,
                                                 const predictor::Profile& hw,
                                                 predictor::PredictionCache& cache) {
  std::vector<StepPrediction> out;
  for (const auto& s : step_ops(b, timing, hw)) {
    StepPrediction p{s.step, s.nodes, 0, s.kinds};
    for (const auto& [op, context] : s.ops) {
      p.predicted_s += predictor::predict_scheduled(op, context, cache, hw).latency_s;
    }
    out.push_back(std::move(p));
  }
  return out;
}

// The shape the runner gives a conv-like op's kernel.
kernels::ConvShape shape_of(const predictor::Op& op) {
  kernels::ConvShape shape;
  shape.src_c = static_cast<int>(op.in_channels);
  shape.out_c = static_cast<int>(op.out_channels);
  shape.groups = static_cast<int>(op.groups);
  shape.cin_g = static_cast<int>(op.in_channels / op.groups);
  shape.cout_g = static_cast<int>(op.out_channels / op.groups);
  shape.kernel = static_cast<int>(op.kernel);
  shape.stride = static_cast<int>(op.stride);
  shape.row_width = static_cast<int>(op.is_dynamic() ? op.granularity : op.out_width);
  shape.rows = op.is_dynamic() ? op.active_patches * op.granularity * op.granularity
                               : op.batch * op.out_height * op.out_width;
  shape.fused_masker = op.kind == predictor::OpKind::masker_conv;
  return shape;
}

// kernels::plan_conv for a conv-like op.
kernels::ConvPlan plan_of(const predictor::Op& op, int sm_count) {
  return kernels::plan_conv(shape_of(op), op.precision == predictor::Precision::tf32, sm_count);
}

// Resident blocks per SM of the depthwise / grouped direct kernels, from the registers ptxas
// gives each instantiation (sm_90a, CUDA 13; `nvcc -Xptxas -v` on kernels/src/grouped_conv.cu):
// depthwise 62 (stride 1) and 74 (stride 2), grouped 72 / 96 / 128 at stride 1 and 109 / 127 /
// 137 at stride 2 for 4 / 8 / 16 output channels a thread. A warp's registers are allocated in
// units of 256 (8 a thread), out of 64K an SM.
std::int64_t direct_blocks_per_sm(bool depthwise, int stride, int channels, std::int64_t warps) {
  int registers = 0;
  if (depthwise) {
    registers = stride == 1 ? 62 : 74;
  } else if (channels <= 4) {
    registers = stride == 1 ? 72 : 109;
  } else if (channels <= 8) {
    registers = stride == 1 ? 96 : 127;
  } else {
    registers = stride == 1 ? 128 : 137;
  }
  const std::int64_t per_warp = (registers + 7) / 8 * 8 * 32;
  return std::max<std::int64_t>(1, 65536 / per_warp / std::max<std::int64_t>(1, warps));
}

// The block tile of the depthwise / grouped direct kernels (kernels/src/grouped_conv.cu): the
// plan's block of threads x 4 pixels of a row (fewer where rows are narrower) x its channels.
std::optional<predictor::GemmTile> direct_tile(const predictor::Op& op, std::string_view kernel,
                                               int sm_count) {
  if (kernel != "depthwise_fp32" && kernel != "grouped_fp32") return std::nullopt;
  const auto plan = plan_of(op, sm_count);
  if (kernels::to_string(plan) != kernel || plan.block_pixels <= 0 || plan.block_channels <= 0) {
    return std::nullopt;
  }
  const std::int64_t width = op.is_dynamic() ? op.granularity : op.out_width;
  const std::int64_t ppt = std::clamp<std::int64_t>(width, 1, 4);
  const bool depthwise = plan.impl == kernels::ConvImpl::depthwise;
  // Threads: depthwise block_pixels / 4 rows of block_channels / 4 channel quads; grouped 128.
  const std::int64_t threads =
      depthwise ? plan.block_pixels / 4 * (plan.block_channels / 4) : plan.block_pixels / 4;
  const std::int64_t pixel_threads = depthwise ? plan.block_pixels / 4 : threads;
  predictor::GemmTile tile;
  tile.rows = pixel_threads * ppt;
  tile.cols = plan.block_channels;
  tile.warps = std::max<std::int64_t>(1, (threads + 31) / 32);
  tile.direct = true;
  tile.channels_across_groups = depthwise;
  tile.pixels_per_thread = ppt;
  tile.blocks_per_sm =
      direct_blocks_per_sm(depthwise, static_cast<int>(op.stride), plan.block_channels, tile.warps);
  return tile;
}

// The kernel the runner picks for a step when no timing says which ran: our implicit GEMM for
// every conv it launches through plan_conv (kernels/src/runner.cu), cuBLASLt for the dense
// 1x1 conv1/conv3 where library_1x1_conv says so (and conv1 beside a library-conv1 masker)
// and for the dense conv2 where im2col_library_conv says so.
std::string planned_kernel(const predictor::Op& op, std::string_view step, bool dynamic,
                           int sm_count) {
  using predictor::OpKind;
  const bool tf32 = op.precision == predictor::Precision::tf32;
  const bool conv_op = op.kind == OpKind::conv || op.kind == OpKind::gather_conv ||
                       op.kind == OpKind::gathered_conv || op.kind == OpKind::conv_scatter_add ||
                       op.kind == OpKind::masker_conv || op.kind == OpKind::union_conv;
  // fp16 blocks run the dense convs through cuBLASLt (3x3 as im2col + GEMM) and a dynamic
  // block's convs over patch rows (per-patch, gathered, scatter-add and union forms) as the fp16
  // implicit GEMM at the active rows, split as fp16_igemm_splits says (kernels/src/runner.cu,
  // build_half_dynamic).
  if (op.precision == predictor::Precision::fp16 && conv_op) {
    const bool patch_rows =
        dynamic && (op.kind == OpKind::gather_conv || op.kind == OpKind::gathered_conv ||
                    op.kind == OpKind::conv_scatter_add || op.kind == OpKind::union_conv);
    if (patch_rows) {
      return kernels::fp16_igemm_kernel(kernels::fp16_igemm_splits(shape_of(op), sm_count));
    }
    return step == "conv2" ? "im2col+cublaslt" : "cublaslt";
  }
  const bool library =
      !dynamic &&
      (((step == "conv1" || step == "conv3") && kernels::library_1x1_conv(shape_of(op), tf32)) ||
       (step == "conv2" && kernels::im2col_library_conv(shape_of(op), tf32)));
  const bool conv = op.kind == OpKind::conv || op.kind == OpKind::gather_conv ||
                    op.kind == OpKind::gathered_conv || op.kind == OpKind::conv_scatter_add ||
                    op.kind == OpKind::masker_conv || op.kind == OpKind::union_conv;
  if (!conv) return {};
  if (library) return step == "conv2" ? "im2col+cublaslt" : "cublaslt";
  return kernels::to_string(plan_of(op, sm_count));
}

// A dense block's residual add runs in the epilogue of the conv it follows (its first input),
// which reads the residual map there (GemmTile::residual, ::epilogue); a dynamic block's has a
// step of its own. That conv's node index, where `node` is such an add.
std::optional<std::size_t> epilogue_conv(const predictor::BlockGraph& block,
                                         const predictor::OpNode& node) {
  if (block.dynamic || node.op.kind != predictor::OpKind::add || node.after.empty()) {
    return std::nullopt;
  }
  return node.after.front();
}
bool feeds_fused_add(const predictor::BlockGraph& block, std::size_t node) {
  return std::any_of(block.nodes.begin(), block.nodes.end(),
                     [&](const predictor::OpNode& n) { return epilogue_conv(block, n) == node; });
}
// The add's tile: its conv's (the implementation names its class), marked as the epilogue.
predictor::GemmTile epilogue_tile(predictor::GemmTile conv) {
  conv.epilogue = true;
  conv.residual = false;
  return conv;
}

// The schedule of a kernel, by name: our implicit GEMM's tile or a direct kernel's block.
std::optional<predictor::GemmTile> tile_of_kernel(const predictor::Op& op, std::string_view kernel,
                                                  int sm_count) {
  if (auto tile = gemm_tile_of_kernel(kernel)) return tile;
  if (kernel.ends_with("cublaslt")) {
    predictor::GemmTile library;
    library.library = true;
    // A dense 3x3 conv as the taps copy (conv.cu's im2col) and the library's GEMM over it.
    library.im2col = kernel == "im2col+cublaslt" && op.kind == predictor::OpKind::conv;
    return library;
  }
  return direct_tile(op, kernel, sm_count);
}

// A plain layer (stem, head, layer stage) as the kernels' layer runner runs it
// (kernels/src/layers.cu): a conv as im2col + cuBLASLt at the channels the runner stages, an fc
// on cuBLASLt, a pool as one thread per output element; nullopt (the model's search) for what
// the runner does not run (grouped or dilated convs, other layers, fp16).
std::optional<predictor::GemmTile> layer_runner_tile(const predictor::Op& op) {
  using predictor::OpKind;
  if (op.precision == predictor::Precision::fp16) return std::nullopt;
  predictor::GemmTile tile;
  switch (op.kind) {
    case OpKind::conv: {
      if (op.groups != 1 || op.dilation != 1) return std::nullopt;
      kernels::LayerConfig c;
      c.in_channels = op.in_channels;
      c.kernel = op.kernel;
      c.stride = op.stride;
      // The op keeps no padding: "same" stands in (it decides im2col only for a 1x1 stride-1
      // conv, which has none).
      c.padding = (op.kernel - 1) / 2;
      tile.library = true;
      tile.im2col = kernels::conv_uses_im2col(c);
      if (tile.im2col) tile.staged_channels = kernels::conv_gemm_channels(c);
      return tile;
    }
    case OpKind::fc:
      tile.library = true;
      return tile;
    case OpKind::pool:
    case OpKind::global_pool:
      tile.thread_per_output = true;
      return tile;
    default:
      return std::nullopt;
  }
}

}  // namespace

predictor::KernelSchedule project_kernel_schedule(int sm_count) {
  return [sm_count](const predictor::BlockGraph& block,
                    const predictor::OpNode& node) -> std::optional<predictor::GemmTile> {
    // The stem and layer stages have no stage of the spec, the head the one past the last.
    if (block.stage < 0 || block.name == "head") return layer_runner_tile(node.op);
    const auto tile_of = [&](const predictor::OpNode& n) -> std::optional<predictor::GemmTile> {
      const std::string step = kernel_step(n.name, block.dynamic);
      if (step.empty()) return std::nullopt;
      return tile_of_kernel(n.op, planned_kernel(n.op, step, block.dynamic, sm_count), sm_count);
    };
    const auto index = static_cast<std::size_t>(&node - block.nodes.data());
    // A dense block's add: in its conv's epilogue where that conv runs on a kernel's schedule.
    if (const auto conv = epilogue_conv(block, node)) {
      if (const auto tile = tile_of(block.nodes[*conv])) return epilogue_tile(*tile);
      return std::nullopt;
    }
    auto tile = tile_of(node);
    if (tile && feeds_fused_add(block, index)) tile->residual = true;
    return tile;
  };
}

std::optional<predictor::GemmTile> gemm_tile_of_kernel(std::string_view kernel) {
  // igemm_<precision>_<rows>x<cols>[_splitk<N>]
  std::int64_t splits = 1;
  if (const auto at = kernel.find("_splitk"); at != std::string_view::npos) {
    const auto ns = kernel.substr(at + 7);
    int n = 0;
    const auto [end, ec] = std::from_chars(ns.data(), ns.data() + ns.size(), n);
    if (ec != std::errc() || end != ns.data() + ns.size() || n < 2) return std::nullopt;
    splits = n;
    kernel = kernel.substr(0, at);
  }
  const auto parts = [&]() -> std::optional<std::tuple<std::string_view, int, int>> {
    if (!kernel.starts_with("igemm_")) return std::nullopt;
    const auto rest = kernel.substr(6);
    const auto us = rest.find('_');
    if (us == std::string_view::npos) return std::nullopt;
    const auto prec = rest.substr(0, us);
    const auto dims = rest.substr(us + 1);
    const auto x = dims.find('x');
    if (x == std::string_view::npos) return std::nullopt;
    int r = 0, c = 0;
    const auto rs = dims.substr(0, x), cs = dims.substr(x + 1);
    const auto [re, rec] = std::from_chars(rs.data(), rs.data() + rs.size(), r);
    const auto [ce, cec] = std::from_chars(cs.data(), cs.data() + cs.size(), c);
    if (rec != std::errc() || cec != std::errc() || re != rs.data() + rs.size() ||
        ce != cs.data() + cs.size() || r <= 0 || c <= 0) {
      return std::nullopt;
    }
    return std::make_tuple(prec, r, c);
  }();
  if (!parts) return std::nullopt;
  const auto [prec, rows, cols] = *parts;
  // Warp tiles as kernels/src/conv.cu instantiates them (Tile<BM, BN, WM, WN, ...>): fp32
  // (FFMA) 64x32 in 128-row tiles and 32x32 in 64-row ones; tf32 64x64 in 128x128, 64x32 in
  // 128x64, 32x32 in 64x64. So 128x128 fp32 runs 8 warps and every other tile 4. Sizes the
  // kernels do not instantiate get the nearest rule.
  // wgmma (tf32): a warpgroup of 4 warps per 64 rows. fp16 (conv_f16.cu): 32x32 warp tiles.
  if (prec != "fp32" && prec != "tf32" && prec != "wgmma" && prec != "fp16") return std::nullopt;
  const int wm = rows >= 128 && prec != "fp16" ? 64 : 32;
  const int wn = prec == "tf32" && rows >= 128 && cols >= 128 ? 64 : 32;
  const std::int64_t warps =
      prec == "wgmma"
          ? std::max<std::int64_t>(4, rows / 64 * 4)
          : std::max<std::int64_t>(
                1, static_cast<std::int64_t>(std::max(1, rows / wm)) * std::max(1, cols / wn));
  predictor::GemmTile tile{rows, cols, warps};
  tile.splits = splits;
  // Resident blocks per SM as the kernels build (docs/kernels.md, from ptxas and their shared
  // memory): the fp32 FFMA 128-row tiles hold 254 registers a thread (128x128: 256 threads, one
  // per SM; 128x64: 128 threads, two), the tf32 mma.sync 128-row tiles two and 64x64 three (4
  // stages of shared memory), wgmma's 256x128 one and 128x64 two (__launch_bounds__).
  if (prec == "fp32" && rows >= 128) {
    tile.blocks_per_sm = 65536 / (256 * 32 * warps);
  } else if (prec == "tf32") {
    tile.blocks_per_sm = rows >= 128 ? 2 : 3;
  } else if (prec == "wgmma") {
    tile.blocks_per_sm = rows >= 256 ? 1 : 2;
  }
  return tile;
}

std::vector<StepOps> step_ops(const PlannedBlock& b, const BlockTiming* timing,
                              const predictor::Profile& hw) {
  std::vector<StepOps> out;
  const std::string first = first_step(b, timing);
  const double l2_capacity = 0.5 * static_cast<double>(hw.l2_size_bytes);
  const auto slot = [&out](const std::string& step) -> StepOps& {
    auto it =
        std::find_if(out.begin(), out.end(), [&](const StepOps& p) { return p.step == step; });
    if (it != out.end()) return *it;
    out.push_back(StepOps{step, {}, {}, "", ""});
    return out.back();
  };
  const auto context_of = [&](const predictor::Op& op, StepOps& s) {
    const double in_bytes =
        static_cast<double>(predictor::bytes_per_element(op.precision)) *
        static_cast<double>(op.batch * op.in_height * op.in_width * op.in_channels);
    predictor::OpContext context;
    context.input_in_l2 = s.step != first && in_bytes <= l2_capacity;
    if (timing != nullptr) {
      if (const auto* st = timing->step(s.step)) s.kernel = st->kernel;
    } else if (auto k = planned_kernel(op, s.step, b.graph.dynamic, static_cast<int>(hw.sm_count));
               !k.empty()) {
      // A step's kernel is its conv's: the add or scatter fused into it (no kernel of its own)
      // keeps the name, as a timed step names one kernel for all its ops.
      s.kernel = std::move(k);
    }
    context.gemm_tile = tile_of_kernel(op, s.kernel, static_cast<int>(hw.sm_count));
    return context;
  };
  const predictor::Op* last = nullptr;
  for (std::size_t i = 0; i < b.graph.nodes.size(); ++i) {
    const auto& op = b.graph.nodes[i].op;
    const std::string& step = b.node_steps[i];
    if (step.empty()) continue;
    last = &op;
    StepOps& s = slot(step);
    s.nodes.push_back(i);
    s.ops.emplace_back(op, context_of(op, s));
    // The kernels fuse a dense block's add into the conv it follows (the step's): that conv
    // reads the residual, the add costs no pass (GemmTile::residual, ::epilogue).
    if (const auto conv = epilogue_conv(b.graph, b.graph.nodes[i])) {
      const auto at = std::find(s.nodes.begin(), s.nodes.end(), *conv);
      if (at != s.nodes.end()) {
        auto& tile = s.ops[static_cast<std::size_t>(at - s.nodes.begin())].second.gemm_tile;
        if (tile) {
          s.ops.back().second.gemm_tile = epilogue_tile(*tile);
          tile->residual = true;
        }
      }
    }
    if (!s.kinds.empty()) s.kinds += '+';
    s.kinds += predictor::op_class(op, s.ops.back().second);
  }
  // The inactive-pixel step, when the kernels run it and nothing else stands for it. Its grid
  // covers every output pixel and channel (each reads the mask, the inactive ones copy
  // ReLU(shortcut)): the model prices the walk over the whole map and the bytes of the inactive
  // pixels apart (OpKind::scatter), so it is given the block's active patches. The ResNet-50
  // timings fall far less than the inactive share with density (batch 128, 56x56x256:
  // 210/169/152 us at d = 0.3/0.5/0.8): the walk, not the bytes, sets the time at high density.
  const bool has_add_node =
      std::find(b.node_steps.begin(), b.node_steps.end(), "add") != b.node_steps.end();
  // Without timings: every dynamic block but those that update the residual in place.
  const bool in_place = b.job.config.dynamic.has_value() && b.job.config.dynamic->in_place_residual;
  const bool runs_add =
      timing != nullptr ? timing->step("add") != nullptr : b.graph.dynamic && !in_place;
  if (b.graph.dynamic && runs_add && !has_add_node && last != nullptr && last->is_dynamic()) {
    predictor::Op add = *last;  // the block's output map, at the block's S
    add.kind = predictor::OpKind::scatter;
    add.kernel = 1, add.stride = 1, add.groups = 1;
    add.in_channels = add.out_channels;
    add.in_height = add.out_height, add.in_width = add.out_width;
    add.granularity = b.graph.granularity;
    add.active_patches = last->active_patches;
    add.active_pixels = last->active_pixels;
    StepOps& s = slot("add");
    s.ops.emplace_back(add, context_of(add, s));
    if (!s.kinds.empty()) s.kinds += '+';
    s.kinds += predictor::op_class(add, s.ops.back().second);
  }
  return out;
}

namespace {

double nan() {
  return std::numeric_limits<double>::quiet_NaN();
}

std::string percent(double fraction) {
  if (std::isnan(fraction)) return "n/a";
  return fmt::format("{:+.1f}%", 100 * fraction);
}
std::string share(double fraction) {
  return fmt::format("{:.1f}%", 100 * fraction);
}
std::string micros(double s) {
  if (s >= 1e-2) return fmt::format("{:.2f} ms", s * 1e3);
  return fmt::format("{:.1f} us", s * 1e6);
}

ordered metrics_json(const ErrorMetrics& m) {
  ordered j;
  j["count"] = m.count;
  j["mape"] = m.mape;
  j["max_abs_error"] = m.max_abs_error;
  j["mean_signed_error"] = m.mean_signed_error;
  j["within_10"] = m.within_10;
  j["within_15"] = m.within_15;
  j["spearman"] = std::isnan(m.spearman) ? ordered(nullptr) : ordered(m.spearman);
  return j;
}

struct RankSummary {
  std::size_t groups = 0;  // with at least two choices
  double min = nan(), median = nan(), mean = nan();
  double share_at_target = nan();
  std::size_t best_agrees = 0;
  double mean_regret = 0, max_regret = 0;
};

RankSummary summarize_ranks(const ValidationReport& r) {
  RankSummary s;
  std::vector<double> rhos;
  for (const auto& g : r.rank_groups) {
    if (std::isnan(g.spearman)) continue;
    rhos.push_back(g.spearman);
    if (g.predicted_best == g.measured_best) ++s.best_agrees;
    s.mean_regret += g.regret;
    s.max_regret = std::max(s.max_regret, g.regret);
  }
  s.groups = rhos.size();
  if (rhos.empty()) return s;
  std::sort(rhos.begin(), rhos.end());
  s.min = rhos.front();
  s.median = rhos[rhos.size() / 2];
  double sum = 0;
  std::size_t ok = 0;
  for (const double x : rhos) {
    sum += x;
    if (x >= r.targets.spearman - 1e-12) ++ok;
  }
  s.mean = sum / static_cast<double>(rhos.size());
  s.share_at_target = static_cast<double>(ok) / static_cast<double>(rhos.size());
  s.mean_regret /= static_cast<double>(rhos.size());
  return s;
}

double max_network_error(const ValidationReport& r) {
  double worst = nan();
  for (const auto& row : r.rows) {
    if (row.level != Level::network) continue;
    const double e = std::fabs(row.error());
    worst = std::isnan(worst) ? e : std::max(worst, e);
  }
  return worst;
}

}  // namespace

std::string_view to_string(Level level) {
  switch (level) {
    case Level::op:
      return "op";
    case Level::block:
      return "block";
    case Level::stage:
      return "stage";
    case Level::network:
      return "network";
  }
  return "?";
}

double Comparison::error() const {
  return measured_s > 0 ? relative_error(predicted_s, measured_s) : nan();
}

std::vector<StepPrediction> predict_steps(const PlannedBlock& block, const BlockTiming* timing,
                                          const predictor::Profile& hw) {
  predictor::PredictionCache cache(hw);
  return predict_steps_cached(block, timing, hw, cache);
}

ValidationReport compare(const std::vector<PlannedBlock>& plan, const MeasurementSet& measured,
                         const predictor::Profile& hw) {
  ValidationReport r;
  r.profile_name = hw.name;
  r.profile_source = hw.provenance.source;
  r.device = measured.device;
  r.measured_date = measured.date;
  r.l2_flush = measured.l2_flush;
  r.clocks_before = measured.clocks_before.available ? measured.clocks_before.describe()
                                                     : measured.clocks_before.unavailable_reason;
  r.clocks_after = measured.clocks_after.available ? measured.clocks_after.describe()
                                                   : measured.clocks_after.unavailable_reason;
  r.sampling = fmt::format(
      "CUDA events, {} warm-up runs, median of {}..{} runs ({:g}..{:g} s per configuration), "
      "noisy when (p90 - p10) / median > {:.0f}%",
      measured.plan.warmup_runs, measured.plan.min_runs, measured.plan.max_runs,
      measured.plan.min_time_s, measured.plan.max_time_s, 100 * measured.plan.noise_threshold);
  if (!hw.provenance.device_name.empty() && !measured.device.name.empty() &&
      hw.provenance.device_name != measured.device.name) {
    r.notes.push_back(fmt::format("the profile describes '{}' but the timings are from '{}'",
                                  hw.provenance.device_name, measured.device.name));
  }
  // Steps are timed between events, blocks without: op rows compare the kernels' time.
  const double event_overhead_s = step_event_overhead_s(measured);
  r.step_event_overhead_s = event_overhead_s;
  predictor::PredictionCache cache(hw);

  // Per planned block: predicted total of its covered ops and the measured block.
  struct BlockValue {
    bool ok = false;
    double predicted_s = 0;
    const BlockTiming* timing = nullptr;
  };
  std::vector<BlockValue> values(plan.size());
  std::set<std::string> rows_done, not_covered, uncovered_ops;
  std::vector<std::string> missing;
  for (std::size_t k = 0; k < plan.size(); ++k) {
    const PlannedBlock& b = plan[k];
    for (std::size_t i = 0; i < b.graph.nodes.size() && b.runnable; ++i) {
      if (b.node_steps[i].empty()) {
        uncovered_ops.insert(
            fmt::format("'{}' ops of {} blocks (no kernel runs them; block "
                        "rows compare the other ops)",
                        b.graph.nodes[i].name, b.spec));
      }
    }
    if (!b.runnable) {
      not_covered.insert(fmt::format("{} {}: {}", b.spec, b.graph.name, b.reason));
      continue;
    }
    const BlockTiming* t = measured.find(b.job.key);
    if (t == nullptr) {
      missing.push_back(b.job.key);
      continue;
    }
    if (!t->supported) {
      not_covered.insert(fmt::format("{} {}: {}", b.spec, b.graph.name, t->reason));
      continue;
    }
    const auto steps = predict_steps_cached(b, t, hw, cache);
    values[k].ok = true;
    values[k].timing = t;
    for (const auto& s : steps) values[k].predicted_s += s.predicted_s;
    if (!rows_done.insert(b.job.key).second) continue;

    Comparison base;
    base.spec = b.spec;
    base.batch = b.batch;
    base.dynamic = b.graph.dynamic;
    base.density = b.graph.dynamic ? b.density_label : "";
    base.stage = static_cast<std::int64_t>(b.stage);
    base.stage_name = b.stage_name;
    base.granularity = b.graph.granularity;
    base.key = b.job.key;
    for (const auto& st : t->steps) {
      Comparison c = base;
      c.level = Level::op;
      c.name = fmt::format("{}/{}", b.graph.name, st.name);
      c.kernel = st.kernel;
      c.measured_s = step_kernel_s(st, event_overhead_s);
      c.measured_p10_s = st.latency_s.p10 - (st.latency_s.median - c.measured_s);
      c.measured_p90_s = st.latency_s.p90 - (st.latency_s.median - c.measured_s);
      c.noisy = st.noisy;
      const auto it = std::find_if(steps.begin(), steps.end(),
                                   [&](const StepPrediction& p) { return p.step == st.name; });
      if (it == steps.end()) {
        c.modelled = false;
        c.kind = "unmodelled";
      } else {
        c.kind = it->kinds;
        c.predicted_s = it->predicted_s;
      }
      r.rows.push_back(c);
    }
    for (const auto& s : steps) {
      if (t->step(s.step) == nullptr) {
        throw Error(
            fmt::format("{}: the predictor expects a kernel step '{}' the kernels did "
                        "not run",
                        b.job.key, s.step));
      }
    }
    Comparison c = base;
    c.level = Level::block;
    c.name = b.graph.name;
    c.kind = "block";
    c.predicted_s = values[k].predicted_s;
    c.measured_s = t->latency_s.median;
    c.measured_p10_s = t->latency_s.p10;
    c.measured_p90_s = t->latency_s.p90;
    c.noisy = t->noisy;
    r.rows.push_back(c);
  }
  if (!missing.empty()) {
    throw Error(fmt::format("the measurements lack {} block configuration(s), e.g. '{}'",
                            missing.size(), missing.front()));
  }

  // Stages (per configuration and S) and networks (per configuration, at the spec's S).
  struct Sum {
    Comparison row;
    std::size_t blocks = 0, covered = 0;
  };
  std::map<std::tuple<std::string, std::int64_t, bool, std::string, std::size_t, std::int64_t>, Sum>
      stages;
  std::map<std::tuple<std::string, std::int64_t, bool, std::string>, Sum> networks;
  std::vector<decltype(stages)::key_type> stage_order;
  std::vector<decltype(networks)::key_type> network_order;
  for (std::size_t k = 0; k < plan.size(); ++k) {
    const PlannedBlock& b = plan[k];
    const auto add = [&](Sum& s) {
      ++s.blocks;
      if (!values[k].ok) return;
      ++s.covered;
      s.row.predicted_s += values[k].predicted_s;
      s.row.measured_s += values[k].timing->latency_s.median;
      s.row.measured_p10_s += values[k].timing->latency_s.p10;
      s.row.measured_p90_s += values[k].timing->latency_s.p90;
      s.row.noisy = s.row.noisy || values[k].timing->noisy;
    };
    const auto skey =
        std::make_tuple(b.spec, b.batch, b.dynamic, b.density_label, b.stage, b.granularity);
    auto [sit, snew] = stages.try_emplace(skey);
    if (snew) {
      stage_order.push_back(skey);
      Comparison& c = sit->second.row;
      c.level = Level::stage;
      c.spec = b.spec;
      c.batch = b.batch;
      c.dynamic = b.dynamic;
      c.density = b.density_label;
      c.stage = static_cast<std::int64_t>(b.stage);
      c.stage_name = b.stage_name;
      c.granularity = b.granularity;
      c.name = b.stage_name;
      c.kind = "stage";
    }
    add(sit->second);
    if (!b.spec_granularity) continue;
    const auto nkey = std::make_tuple(b.spec, b.batch, b.dynamic, b.density_label);
    auto [nit, nnew] = networks.try_emplace(nkey);
    if (nnew) {
      network_order.push_back(nkey);
      Comparison& c = nit->second.row;
      c.level = Level::network;
      c.spec = b.spec;
      c.batch = b.batch;
      c.dynamic = b.dynamic;
      c.density = b.density_label;
      c.kind = "network";
    }
    add(nit->second);
  }
  std::map<std::tuple<std::string, std::int64_t, std::string, std::size_t>, RankGroup> ranks;
  std::vector<decltype(ranks)::key_type> rank_order;
  for (const auto& key : stage_order) {
    const Sum& s = stages.at(key);
    if (s.covered != s.blocks || s.blocks == 0) continue;  // an incomplete stage is no row
    r.rows.push_back(s.row);
    if (!s.row.dynamic) continue;
    const auto rkey = std::make_tuple(s.row.spec, s.row.batch, s.row.density,
                                      static_cast<std::size_t>(s.row.stage));
    auto [it, fresh] = ranks.try_emplace(rkey);
    if (fresh) {
      rank_order.push_back(rkey);
      it->second.spec = s.row.spec;
      it->second.batch = s.row.batch;
      it->second.density = s.row.density;
      it->second.stage_name = s.row.stage_name;
    }
    if (s.row.noisy) {
      ++it->second.noisy_left_out;
      continue;
    }
    it->second.granularities.push_back(s.row.granularity);
    it->second.predicted_s.push_back(s.row.predicted_s);
    it->second.measured_s.push_back(s.row.measured_s);
  }
  for (const auto& key : network_order) {
    Sum& s = networks.at(key);
    if (s.covered == 0) continue;
    s.row.name = s.covered == s.blocks
                     ? s.row.spec
                     : fmt::format("{} ({}/{} blocks)", s.row.spec, s.covered, s.blocks);
    r.rows.push_back(s.row);
  }
  for (const auto& key : rank_order) {
    RankGroup g = ranks.at(key);
    if (g.granularities.empty()) continue;  // every candidate noisy
    g.spearman = spearman(g.predicted_s, g.measured_s);
    const auto pbest =
        std::min_element(g.predicted_s.begin(), g.predicted_s.end()) - g.predicted_s.begin();
    const auto mbest =
        std::min_element(g.measured_s.begin(), g.measured_s.end()) - g.measured_s.begin();
    g.predicted_best = g.granularities[static_cast<std::size_t>(pbest)];
    g.measured_best = g.granularities[static_cast<std::size_t>(mbest)];
    g.regret = g.measured_s[static_cast<std::size_t>(pbest)] /
                   g.measured_s[static_cast<std::size_t>(mbest)] -
               1;
    r.rank_groups.push_back(std::move(g));
  }

  for (const Level level : {Level::op, Level::block, Level::stage, Level::network}) {
    std::vector<double> p, m;
    for (const auto& row : r.rows) {
      if (row.level != level || !row.modelled || row.measured_s <= 0) continue;
      p.push_back(row.predicted_s);
      m.push_back(row.measured_s);
    }
    r.metrics[level] = error_metrics(p, m);
  }
  {
    std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> by_class;
    for (const auto& row : r.rows) {
      if (row.level != Level::op || !row.modelled || row.measured_s <= 0) continue;
      auto& [p, m] = by_class[fmt::format("{} n{}", row.kind, row.batch)];
      p.push_back(row.predicted_s);
      m.push_back(row.measured_s);
    }
    for (const auto& [key, pm] : by_class)
      r.op_class_metrics[key] = error_metrics(pm.first, pm.second);
  }
  r.not_covered.assign(not_covered.begin(), not_covered.end());
  r.not_covered.insert(r.not_covered.end(), uncovered_ops.begin(), uncovered_ops.end());
  {
    std::set<std::string> classes;
    for (const auto& row : r.rows) {
      if (row.level != Level::op || !row.modelled) continue;
      for (std::size_t pos = 0; pos <= row.kind.size();) {
        const auto plus = std::min(row.kind.find('+', pos), row.kind.size());
        classes.insert(row.kind.substr(pos, plus - pos));
        pos = plus + 1;
      }
    }
    for (auto& w : calibration_warnings(hw, classes, measured.kernels_version)) {
      r.notes.push_back(std::move(w));
    }
  }
  return r;
}

std::vector<std::string> calibration_warnings(const predictor::Profile& hw,
                                              const std::set<std::string>& classes,
                                              std::string_view kernels_version) {
  std::vector<std::string> out;
  const auto& on = hw.calibration.fitted_on;
  if (!on) {
    if (hw.provenance.source == "calibrated" || hw.provenance.source == "transferred") {
      out.push_back(fmt::format(
          "profile '{}' does not record the kernels and operator classes it was fitted on "
          "(calibrated before profiles did): it cannot be checked against these kernels",
          hw.name));
    }
    return out;
  }
  if (!on->kernels.empty() && !kernels_version.empty() && on->kernels != kernels_version) {
    out.push_back(fmt::format(
        "profile '{}' was fitted on kernels {}, these are {}: the kernels changed since the fit "
        "(re-run lasnet calibrate)",
        hw.name, on->kernels, kernels_version));
  }
  std::vector<std::string> unseen;
  for (const auto& cls : classes) {
    if (std::find(on->classes.begin(), on->classes.end(), cls) == on->classes.end()) {
      unseen.push_back(cls);
    }
  }
  if (!unseen.empty()) {
    out.push_back(fmt::format(
        "profile '{}' had no timings of {} operator class(es) priced here, which fall back to "
        "their kind's scale: {}",
        hw.name, unseen.size(), fmt::join(unseen, ", ")));
  }
  return out;
}

std::set<std::string> priced_classes(const std::vector<predictor::BlockGraph>& blocks,
                                     const predictor::KernelSchedule& schedule) {
  std::set<std::string> classes;
  for (const auto& b : blocks) {
    for (const auto& node : b.nodes) {
      predictor::OpContext context;
      if (schedule) context.gemm_tile = schedule(b, node);
      // A layer runner's copies and pools have no calibrated class (bytes and latency only);
      // its im2col conv is priced as its GEMM.
      if (context.gemm_tile && context.gemm_tile->thread_per_output) continue;
      classes.insert(predictor::op_class(node.op, context));
    }
  }
  return classes;
}

void add_whole_network_rows(ValidationReport& r, const std::vector<Comparison>& rows) {
  r.rows.insert(r.rows.end(), rows.begin(), rows.end());
  std::vector<double> p, m;
  for (const auto& row : r.rows) {
    if (row.level != Level::network || !row.modelled || row.measured_s <= 0) continue;
    p.push_back(row.predicted_s);
    m.push_back(row.measured_s);
  }
  r.metrics[Level::network] = error_metrics(p, m);
}

std::string render_table(const ValidationReport& r) {
  std::string out = fmt::format(
      "lasnet validate: profile {} ({}) against {} (driver {}), measured {}\n", r.profile_name,
      r.profile_source, r.device.name, r.device.driver_version, r.measured_date);
  if (!r.command.empty()) out += fmt::format("command: {}\n", r.command);
  if (!r.clocks_before.empty()) {
    out += fmt::format("clocks before: {}\nclocks after:  {}\n", r.clocks_before, r.clocks_after);
  }
  if (!r.sampling.empty()) out += fmt::format("timing: {}; {}\n", r.sampling, r.l2_flush);
  if (r.step_event_overhead_s > 0) {
    out += fmt::format(
        "op rows: step timings less {:.2f} us each, what the events between steps add (median "
        "of (sum of steps - block) / steps over these timings)\n",
        1e6 * r.step_event_overhead_s);
  }
  out += fmt::format("\n{:<8} {:>6} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}\n", "level", "count",
                     "MAPE", "max|err|", "bias", "in +-10%", "in +-15%", "Spearman");
  for (const auto& [level, m] : r.metrics) {
    out += fmt::format("{:<8} {:>6} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}\n", to_string(level),
                       m.count, share(m.mape), share(m.max_abs_error), percent(m.mean_signed_error),
                       share(m.within_10), share(m.within_15),
                       std::isnan(m.spearman) ? "n/a" : fmt::format("{:.3f}", m.spearman));
  }
  if (!r.op_class_metrics.empty()) {
    out += fmt::format(
        "\nkernels by operator class and batch:\n{:<36} {:>6} {:>8} {:>9} {:>9} {:>9}\n", "class",
        "count", "MAPE", "max|err|", "bias", "in +-15%");
    for (const auto& [key, m] : r.op_class_metrics) {
      out += fmt::format("{:<36} {:>6} {:>8} {:>9} {:>9} {:>9}\n", key, m.count, share(m.mape),
                         share(m.max_abs_error), percent(m.mean_signed_error), share(m.within_15));
    }
  }
  const auto ops = r.metrics.count(Level::op) ? r.metrics.at(Level::op) : ErrorMetrics{};
  const auto rank = summarize_ranks(r);
  const double worst_net = max_network_error(r);
  const auto verdict = [](bool ok) { return ok ? "PASS" : "FAIL"; };
  out += "\ntargets:\n";
  out += fmt::format("  per-kernel MAPE <= {:.0f}%: {} ({})\n", 100 * r.targets.op_mape,
                     share(ops.mape), verdict(ops.count > 0 && ops.mape <= r.targets.op_mape));
  out += fmt::format("  kernels within +-15% >= {:.0f}%: {} ({})\n", 100 * r.targets.op_within_15,
                     share(ops.within_15),
                     verdict(ops.count > 0 && ops.within_15 >= r.targets.op_within_15));
  out +=
      fmt::format("  whole-network |error| <= {:.0f}%: worst {} ({})\n",
                  100 * r.targets.network_error, std::isnan(worst_net) ? "n/a" : share(worst_net),
                  verdict(!std::isnan(worst_net) && worst_net <= r.targets.network_error));
  out += fmt::format(
      "  Spearman over S per stage >= {:.2f}: {} groups, min {:.3f}, median {:.3f}, {} at "
      "target ({}); predicted best S = measured best in {}/{}, mean regret {}, worst {}\n",
      r.targets.spearman, rank.groups, rank.min, rank.median, share(rank.share_at_target),
      verdict(rank.groups > 0 && rank.min >= r.targets.spearman - 1e-12), rank.best_agrees,
      rank.groups, share(rank.mean_regret), share(rank.max_regret));
  if (const auto noisy =
          std::accumulate(r.rank_groups.begin(), r.rank_groups.end(), std::int64_t{0},
                          [](std::int64_t n, const RankGroup& g) { return n + g.noisy_left_out; });
      noisy > 0) {
    out += fmt::format("    ({} S candidates with a noisy stage timing left out of the ranking)\n",
                       noisy);
  }

  const bool whole = std::any_of(r.rows.begin(), r.rows.end(), [](const Comparison& c) {
    return c.level == Level::network && c.kind == "whole network";
  });
  out += fmt::format(
      "\nnetworks ({}):\n{:<28} {:>5} "
      "{:>8} {:>7} {:>11} {:>11} {:>8}\n",
      whole ? "sums of blocks, and whole networks run with stem and head (`run`)"
            : "blocks only: stem and head have no kernels",
      "spec", "batch", "mode", "density", "predicted", "measured", "error");
  for (const auto& row : r.rows) {
    if (row.level != Level::network) continue;
    out += fmt::format("{:<28} {:>5} {:>8} {:>7} {:>11} {:>11} {:>8}{}\n", row.name, row.batch,
                       row.dynamic ? "dynamic" : "dense", row.density, micros(row.predicted_s),
                       micros(row.measured_s), percent(row.error()), row.noisy ? " noisy" : "");
  }
  out += "\nrank correlation over S, per stage (worst first):\n";
  std::vector<const RankGroup*> groups;
  for (const auto& g : r.rank_groups) {
    if (!std::isnan(g.spearman)) groups.push_back(&g);
  }
  std::sort(groups.begin(), groups.end(),
            [](const RankGroup* a, const RankGroup* b) { return a->spearman < b->spearman; });
  for (std::size_t i = 0; i < groups.size() && i < 12; ++i) {
    const RankGroup& g = *groups[i];
    out += fmt::format(
        "  {:<14} n{:<4} d{:<5} {:<8} rho {:+.3f}  best S predicted {} measured "
        "{} (regret {})\n",
        g.spec, g.batch, g.density, g.stage_name, g.spearman, g.predicted_best, g.measured_best,
        share(g.regret));
  }
  std::vector<const Comparison*> worst;
  for (const auto& row : r.rows) {
    if (row.level == Level::op && row.modelled) worst.push_back(&row);
  }
  std::sort(worst.begin(), worst.end(), [](const Comparison* a, const Comparison* b) {
    return std::fabs(a->error()) > std::fabs(b->error());
  });
  out += fmt::format("\nworst kernels:\n{:<52} {:<18} {:>10} {:>10} {:>8}\n", "job / step", "kind",
                     "predicted", "measured", "error");
  for (std::size_t i = 0; i < worst.size() && i < 15; ++i) {
    const Comparison& c = *worst[i];
    out += fmt::format("{:<52} {:<18} {:>10} {:>10} {:>8}\n",
                       fmt::format("{} / {}", c.key, c.name.substr(c.name.find('/') + 1)), c.kind,
                       micros(c.predicted_s), micros(c.measured_s), percent(c.error()));
  }
  std::size_t unmodelled = 0;
  double unmodelled_s = 0;
  for (const auto& row : r.rows) {
    if (row.level == Level::op && !row.modelled) {
      ++unmodelled;
      unmodelled_s += row.measured_s;
    }
  }
  if (unmodelled > 0) {
    out += fmt::format(
        "\nunmodelled kernel steps (measured, no predicted op; counted in block rows): {} "
        "steps, {} in all\n",
        unmodelled, micros(unmodelled_s));
  }
  if (!r.not_covered.empty()) {
    out += "\nnot covered:\n";
    for (const auto& n : r.not_covered) out += "  " + n + "\n";
  }
  for (const auto& n : r.notes) out += "note: " + n + "\n";
  return out;
}

namespace {

// The JSON value of a density label: the number it spells ("0.5"), null for dense rows ("")
// and for the spec's own densities ("spec").
ordered density_value(const std::string& label) {
  if (label.empty()) return nullptr;
  double value = 0;
  const auto* end = label.data() + label.size();
  const auto [ptr, ec] = std::from_chars(label.data(), end, value);
  return ec == std::errc() && ptr == end ? ordered(value) : ordered(nullptr);
}

std::vector<double> to_ms(std::vector<double> seconds) {
  for (auto& t : seconds) t *= 1e3;
  return seconds;
}

}  // namespace

std::string render_json(const ValidationReport& r) {
  // Version 1 was labelled "kind": "lasnet-validation" and gave times in seconds (`_s` keys).
  ordered j = output_document("validation", 2);
  j["command"] = r.command;
  j["profile"] = r.profile_name;
  j["profile_source"] = r.profile_source;
  j["device"] = r.device.name;
  j["driver"] = r.device.driver_version;
  j["measured"] = r.measured_date;
  j["l2_flush"] = r.l2_flush;
  j["clocks_before"] = r.clocks_before;
  j["clocks_after"] = r.clocks_after;
  j["sampling"] = r.sampling;
  j["step_event_overhead_ms"] = r.step_event_overhead_s * 1e3;
  ordered metrics;
  for (const auto& [level, m] : r.metrics) metrics[std::string(to_string(level))] = metrics_json(m);
  j["metrics"] = metrics;
  ordered classes;
  for (const auto& [key, m] : r.op_class_metrics) classes[key] = metrics_json(m);
  j["op_class_metrics"] = classes;
  const auto ops = r.metrics.count(Level::op) ? r.metrics.at(Level::op) : ErrorMetrics{};
  const auto rank = summarize_ranks(r);
  const double worst_net = max_network_error(r);
  ordered t;
  t["op_mape"] = {{"target", r.targets.op_mape},
                  {"value", ops.mape},
                  {"met", ops.count > 0 && ops.mape <= r.targets.op_mape}};
  t["op_within_15"] = {{"target", r.targets.op_within_15},
                       {"value", ops.within_15},
                       {"met", ops.count > 0 && ops.within_15 >= r.targets.op_within_15}};
  t["network_max_abs_error"] = {
      {"target", r.targets.network_error},
      {"value", std::isnan(worst_net) ? ordered(nullptr) : ordered(worst_net)},
      {"met", !std::isnan(worst_net) && worst_net <= r.targets.network_error}};
  t["stage_spearman_min"] = {
      {"target", r.targets.spearman},
      {"value", std::isnan(rank.min) ? ordered(nullptr) : ordered(rank.min)},
      {"median", std::isnan(rank.median) ? ordered(nullptr) : ordered(rank.median)},
      {"share_at_target",
       std::isnan(rank.share_at_target) ? ordered(nullptr) : ordered(rank.share_at_target)},
      {"groups", rank.groups},
      {"best_s_agrees", rank.best_agrees},
      {"mean_regret", rank.mean_regret},
      {"met", rank.groups > 0 && rank.min >= r.targets.spearman - 1e-12}};
  j["targets"] = t;
  auto groups = ordered::array();
  for (const auto& g : r.rank_groups) {
    ordered jg;
    jg["spec"] = g.spec;
    jg["batch"] = g.batch;
    jg["density"] = density_value(g.density);
    jg["density_label"] = g.density;
    jg["stage"] = g.stage_name;
    jg["granularity"] = g.granularities;
    jg["predicted_ms"] = to_ms(g.predicted_s);
    jg["measured_ms"] = to_ms(g.measured_s);
    jg["spearman"] = std::isnan(g.spearman) ? ordered(nullptr) : ordered(g.spearman);
    jg["predicted_best"] = g.predicted_best;
    jg["measured_best"] = g.measured_best;
    jg["regret"] = g.regret;
    jg["noisy_left_out"] = g.noisy_left_out;
    groups.push_back(jg);
  }
  j["rank_groups"] = groups;
  auto rows = ordered::array();
  for (const auto& c : r.rows) {
    ordered jr;
    jr["level"] = to_string(c.level);
    jr["spec"] = c.spec;
    jr["batch"] = c.batch;
    jr["mode"] = c.dynamic ? "dynamic" : "dense";
    jr["density"] = density_value(c.density);
    jr["density_label"] = c.density.empty() ? std::string("dense") : c.density;
    jr["stage"] = c.stage_name;
    jr["granularity"] = c.granularity;
    jr["name"] = c.name;
    jr["kind"] = c.kind;
    jr["key"] = c.key;
    jr["kernel"] = c.kernel;
    jr["predicted_ms"] = c.predicted_s * 1e3;
    jr["measured_ms"] = c.measured_s * 1e3;
    jr["measured_p10_ms"] = c.measured_p10_s * 1e3;
    jr["measured_p90_ms"] = c.measured_p90_s * 1e3;
    jr["error"] = c.modelled ? ordered(c.error()) : ordered(nullptr);
    jr["modelled"] = c.modelled;
    jr["noisy"] = c.noisy;
    rows.push_back(jr);
  }
  j["rows"] = rows;
  j["not_covered"] = r.not_covered;
  j["notes"] = r.notes;
  return j.dump(1) + "\n";
}

std::string render_csv(const ValidationReport& r) {
  // Numeric columns hold numbers or nothing: density is empty for dense rows and rows at the
  // spec's own densities (density_label says which), granularity is empty where no S applies.
  std::string out =
      "level,spec,batch,mode,density,stage,granularity,name,kind,key,kernel,predicted_ms,"
      "measured_ms,measured_p10_ms,measured_p90_ms,error,modelled,noisy,density_label\n";
  const auto quote = [](const std::string& s) {
    if (s.find_first_of(",\"") == std::string::npos) return s;
    std::string q = "\"";
    for (const char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  for (const auto& c : r.rows) {
    const auto density = density_value(c.density);
    out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{:.6e},{:.6e},{:.6e},{:.6e},{},{},{},{}\n",
                       to_string(c.level), quote(c.spec), c.batch, c.dynamic ? "dynamic" : "dense",
                       density.is_null() ? std::string() : density.dump(), quote(c.stage_name),
                       c.granularity > 0 ? std::to_string(c.granularity) : std::string(),
                       quote(c.name), quote(c.kind), quote(c.key), quote(c.kernel),
                       c.predicted_s * 1e3, c.measured_s * 1e3, c.measured_p10_s * 1e3,
                       c.measured_p90_s * 1e3,
                       c.modelled ? fmt::format("{:.5f}", c.error()) : std::string(),
                       c.modelled ? "true" : "false", c.noisy ? "true" : "false",
                       quote(c.density.empty() ? "dense" : c.density));
  }
  return out;
}

namespace {

// The colour class of a kernel step in the plot: its op kind and kernel size, with dense convs
// split into ours (implicit GEMM, direct) and cuBLASLt's, whose errors differ most. Few enough
// classes for a legend of distinct colours: "gather_conv.k1", "conv.k3 (ours)", "conv (cuBLASLt)".
std::string plot_class(std::string_view kind) {
  kind = kind.substr(0, kind.find('+'));  // "conv.k1+add": a conv with the add fused behind
  const auto first_dot = kind.find('.');
  const std::string_view op = kind.substr(0, first_dot);
  if (op == "masker" || first_dot == std::string_view::npos) return std::string(op);
  const auto second_dot = kind.find('.', first_dot + 1);
  const std::string_view op_and_size = kind.substr(0, second_dot);
  if (op == "conv") {
    const bool ours = kind.find(".igemm") != std::string_view::npos ||
                      kind.find(".direct") != std::string_view::npos;
    return ours ? fmt::format("{} (ours)", op_and_size) : std::string("conv (cuBLASLt)");
  }
  return std::string(op_and_size);
}

}  // namespace

std::string render_svg(const ValidationReport& r) {
  ErrorPlot plot;
  const auto metrics = [&](Level level) {
    const auto it = r.metrics.find(level);
    return it == r.metrics.end() ? ErrorMetrics{} : it->second;
  };
  const ErrorMetrics ops = metrics(Level::op), networks = metrics(Level::network);
  plot.title = fmt::format("Predicted against measured: {} on {}", r.profile_name, r.device.name);
  plot.summary = fmt::format(
      "{} kernels: MAPE {:.1f}%, {:.1f}% within \u00B110%, {:.1f}% within \u00B115%, bias "
      "{:+.1f}%",
      ops.count, 100 * ops.mape, 100 * ops.within_10, 100 * ops.within_15,
      100 * ops.mean_signed_error);
  if (networks.count > 0) {
    plot.summary += fmt::format("; {} networks: MAPE {:.1f}%, {:.1f}% within \u00B110%",
                                networks.count, 100 * networks.mape, 100 * networks.within_10);
  }
  for (const auto& c : r.rows) {
    if (!c.modelled || c.measured_s <= 0) continue;
    if (c.level == Level::network) plot.network_errors.push_back(c.error());
    if (c.level != Level::op) continue;
    plot.points.push_back(
        ErrorPoint{c.measured_s, c.error(), plot_class(c.kind),
                   fmt::format("{} n{} {}{} {} [{}]", c.spec, c.batch, c.dynamic ? "d" : "dense",
                               c.dynamic ? c.density + " S" + std::to_string(c.granularity) : "",
                               c.name, c.kernel)});
  }
  return render_error_svg(plot);
}

}  // namespace lasnet::profiler
