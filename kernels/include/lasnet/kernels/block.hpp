#pragma once
// Value types that describe one residual block to run on the GPU or on the CPU reference:
// shape, precision, dynamic settings (granularity S, density or explicit mask, fusions), plus
// the deterministic random data both sides draw from. Host-only C++: no CUDA header here, so
// the profiler and the tests include it freely.
//
// Block semantics (NHWC, BatchNorm folded into the biases):
//   bottleneck: conv1 1x1 Cin->Cmid +b1, ReLU; conv2 3x3 stride s pad 1 groups g Cmid->Cmid
//   +b2, ReLU; conv3 1x1 Cmid->Cout +b3; out = ReLU(shortcut + conv3).
//   basic (ResNet-18/34): conv1 3x3 stride s pad 1 Cin->Cmid +b1, ReLU; conv2 3x3 stride 1
//   pad 1 Cmid->Cout +b2; out = ReLU(shortcut + conv2). No conv3, one group.
//   separable (MobileNetV2's expansion-1 inverted residual): the bottleneck without conv1
//   (Cmid = Cin; conv2, depthwise for MobileNetV2, reads x): conv2 +b2, ReLU; conv3 +b3;
//   out = ReLU(shortcut + conv3).
//   Every kind: shortcut = x if s == 1 and Cin == Cout, else 1x1 stride s Cin->Cout +bsc
//   (always dense).
// Dynamic: a mask per S x S patch of the OUTPUT map; masker logit = bm + wm . avgpool(x over
// the patch's (S*s) x (S*s) input region, clipped at the border); active iff logit > 0.
// Inactive output pixels get ReLU(shortcut). A basic block's conv2 needs conv1 on the patch
// plus a 1-pixel halo, (S+2)^2 pixels, and those read x on ((S+1)*s+3)^2 pixels.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lasnet/common/host_device.hpp"
#include "lasnet/common/patch_geometry.hpp"

namespace lasnet::kernels {

enum class Precision { fp32, tf32, fp16 };
std::string_view to_string(Precision p);
std::optional<Precision> parse_precision(std::string_view text);

enum class BlockKind { bottleneck, basic, separable };
std::string_view to_string(BlockKind kind);

// The shape of every block kind (the name predates the other kinds; the bottleneck is the
// default, so every existing configuration keeps its meaning and its job key).
struct BottleneckShape {
  BlockKind kind = BlockKind::bottleneck;
  std::int64_t batch = 1;
  std::int64_t height = 56, width = 56;  // input map
  std::int64_t in_channels = 256, mid_channels = 64, out_channels = 256;
  std::int64_t stride = 1;  // conv2's (and the projection shortcut's) stride
  std::int64_t groups = 1;  // conv2's groups (mid_channels for depthwise)
  // Squeeze-excitation after conv2 (bottleneck kind only; 0: none): global average pool of
  // conv2's output -> FC Cmid->se +b ReLU -> FC se->Cmid +b sigmoid -> scales conv2's channels.
  std::int64_t se_channels = 0;

  std::int64_t out_height() const { return conv_output_extent(height, 3, stride, 1); }
  std::int64_t out_width() const { return conv_output_extent(width, 3, stride, 1); }
  bool has_projection() const { return stride != 1 || in_channels != out_channels; }
  bool basic() const { return kind == BlockKind::basic; }
  bool separable() const { return kind == BlockKind::separable; }  // no conv1: conv2 reads x
  bool operator==(const BottleneckShape&) const = default;
};
// "n2 56x56 256-64-256 s1 g1"; a basic block adds " basic" ("n1 56x56 64-64-64 s1 g1 basic"),
// a separable one " separable", SE " se16".
std::string to_string(const BottleneckShape& shape);

// Which kernels of the dynamic block are fused (names as in the predictor's Fusion).
struct Fusion {
  bool masker_conv1 = false;       // conv1 runs dense with one extra output channel, the logit
  bool gather_conv1 = false;       // the conv after the masker reads the map via the index list
  bool conv3_scatter_add = false;  // the last conv's epilogue adds into the residual at patch
                                   // positions (conv3; conv2 in a basic block)
  // conv1 on the union of the active patches' conv2 windows: computed once per needed pixel
  // (needed_conv1_pixels) into a full-size map, instead of per patch with its halo, which
  // neighbouring patches share. Bottleneck only; not with masker_conv1 (dense conv1 already).
  bool union_conv1 = false;
  bool operator==(const Fusion&) const = default;
};
// "none", or '+'-joined "union", "masker", "gather", "scatter".
std::string to_string(const Fusion& fusion);

struct DynamicSettings {
  std::int64_t granularity = 4;  // S, output pixels per patch side
  double density = 0.5;          // target fraction of active patches over the batch
  // Optional explicit mask, [batch][patch rows][patch cols], 1 = active; overrides density.
  std::vector<std::uint8_t> mask;
  Fusion fusion;
  // How fusion.masker_conv1 runs: false, one implicit-GEMM kernel computes conv1 and the logit
  // channel from the same input tiles (one read of x); true, conv1 is a cuBLASLt GEMM over the
  // whole map and the logits a separate per-pixel pass (a second read of x, but the library
  // GEMM runs the 1x1 conv about twice as fast as our implicit GEMM). Same results either way.
  bool library_conv1 = false;
  // In-place residual, for identity-shortcut blocks only (stride 1, Cin = Cout): the output
  // map IS the input x, and only active pixels are written (conv3's epilogue or the scatter-add:
  // x[p] = ReLU(x[p] + conv3 + b3)); the pass over inactive pixels (step "add") disappears.
  // Precondition x >= 0, since inactive pixels keep x where the out-of-place block writes
  // ReLU(x): true in a network, where x is the previous block's ReLU output. With this flag the
  // runner and make_block_data draw x non-negative (|uniform|). A run consumes its input
  // (BlockRunner::restore_input refills it before the next one).
  bool in_place_residual = false;
};

struct BlockConfig {
  BottleneckShape shape;
  Precision precision = Precision::fp32;
  std::optional<DynamicSettings> dynamic;  // nullopt: the dense block
  std::uint64_t seed = 1;
  // Input maps to rotate among (BlockRunner::run's `input_index`), so that timed runs can start
  // with the input out of L2. Copy 0 is the one the CPU reference sees.
  std::int64_t input_copies = 1;
  // Benchmark baseline only: run depthwise / grouped 3x3 convs with the old one-thread-per-output
  // direct kernel instead of the depthwise / grouped kernels (bench_grouped's "old" column).
  bool legacy_direct_conv = false;
  // Benchmark baseline only: compact the mask with the pool kernel and cub's select even where
  // the one-kernel pool + compaction runs (bench_kernels --cub-select 1).
  bool cub_mask_select = false;
  // The dense conv2 as im2col + cuBLASLt (true) or through plan_conv (false); unset: as
  // im2col_library_conv (conv_plan.hpp) says. Set for tests and benchmark baselines.
  std::optional<bool> im2col_conv2;
  // The dense conv1 and conv3 as cuBLASLt GEMMs (true) or through plan_conv (false); unset: as
  // library_1x1_conv (conv_plan.hpp) says. Set for tests and benchmark baselines.
  std::optional<bool> library_1x1;
  // tf32 implicit GEMMs by wgmma where use_wgmma applies (true) or all by mma.sync (false);
  // unset: wgmma where the device and the build have it (Context::wgmma). Set for tests and
  // benchmark baselines.
  std::optional<bool> wgmma;
  // Benchmark baseline only: an fp16 dynamic block's GEMMs over patch rows as cuBLASLt GEMMs
  // over the mask's capacity (im2col for conv2), the path before the fp16 implicit GEMM.
  // Not with the gather/scatter fusions, which need the implicit GEMM.
  bool fp16_library_dynamic = false;
  // Benchmark baseline only: cuBLASLt's first heuristic pick for every library GEMM instead of
  // the fastest of its candidates, timed when the block is built (detail::LtGemm).
  bool library_first_pick = false;
};

// Whether the block runs with an in-place residual (and so draws its input x >= 0).
bool in_place(const BlockConfig& config);

// Geometry of the patch mask of a block at granularity S.
struct PatchGrid {
  std::int64_t s = 1;               // S
  std::int64_t rows = 0, cols = 0;  // patches per image, per side
  std::int64_t per_image = 0;       // rows * cols
  // x pixels per side the gathered conv1 reads: bottleneck E = (S-1)*stride + 3 (conv2's
  // input halo, conv1 being 1x1), basic (S+1)*stride + 3 (conv1's input for S+2 outputs).
  std::int64_t halo_extent = 0;
  std::int64_t input_step = 0;   // S*stride: input pixels between patch origins
  std::int64_t halo_offset = 0;  // x origin of patch (py, px) is py*input_step + halo_offset
  // conv1's output per patch: side, step between patch origins, origin offset, in the map
  // conv1 writes (bottleneck: the input map, E, S*stride, -1; basic: the output map, S+2, S, -1).
  std::int64_t mid_extent = 0, mid_step = 0;
};
PatchGrid patch_grid(const BottleneckShape& shape, std::int64_t granularity);

// The pixels of conv1's map that some active patch's conv2 reads (the union form's conv1 rows):
// patch (py, px) reads rows py*mid_step - 1 .. py*mid_step + mid_extent - 2 (bottleneck:
// py*S*s - 1 .. py*S*s + (S-1)*s + 1), columns likewise, clipped to the map (bottleneck: the
// input map; basic: the output map). `mask` is [batch][patch rows][patch cols], 1 = active.
// Ascending indices n*H*W + y*W + x, as the device's "dilate" step lists them.
std::vector<std::int32_t> needed_conv1_pixels(const BottleneckShape& shape,
                                              std::int64_t granularity,
                                              const std::vector<std::uint8_t>& mask);
// The same test for one pixel, as the device's "dilate" runs it: whether (y, x) lies in the
// window [p*step + offset, p*step + offset + extent) (rows and columns) of an active patch of
// one image's mask [rows][cols]; offset < 0, step >= 1. The patches whose window holds y are
// py in [ceil((y - offset - extent + 1) / step), floor((y - offset) / step)], clipped to the
// grid: at most ceil(extent / step) per side (3 at S = 1, else 2).
LASNET_HOST_DEVICE constexpr bool in_active_window(const std::uint8_t* image_mask, int rows,
                                                   int cols, int extent, int step, int offset,
                                                   int y, int x) {
  const auto first = [&](int v) {  // v - offset >= 1
    const int lo = v - offset - extent + 1;
    return lo <= 0 ? 0 : (lo + step - 1) / step;
  };
  const auto last = [&](int v, int n) {
    const int hi = (v - offset) / step;
    return hi < n - 1 ? hi : n - 1;
  };
  for (int py = first(y), py1 = last(y, rows); py <= py1; ++py) {
    for (int px = first(x), px1 = last(x, cols); px <= px1; ++px) {
      if (image_mask[py * cols + px] != 0) return true;
    }
  }
  return false;
}

// Whether a configuration can run; a value, not a throw (e.g. "fp16: the gather/scatter
// fusions need our implicit GEMM, which is fp32/tf32 only").
struct Support {
  bool ok = true;
  std::string reason;
};
Support check_supported(const BlockConfig& config);
// Whether the kernels have the fusion at that precision: fp16 has the masker only as
// library_conv1 (separate logits pass; its implicit GEMM has no logit channel).
bool fusion_supported(Precision precision, const Fusion& fusion, bool library_conv1);

// ---- deterministic random data, identical on host and device ----
LASNET_HOST_DEVICE constexpr std::uint64_t splitmix64(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
// Uniform in [-1, 1) with 24 random bits: exact in float, never all zeros.
LASNET_HOST_DEVICE constexpr float random_uniform(std::uint64_t seed, std::uint64_t stream,
                                                  std::uint64_t index) {
  const std::uint64_t z = splitmix64(splitmix64(seed * 0x632BE59BD9B4E019ULL + stream) + index);
  return static_cast<float>(z >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

// Which tensor a random stream fills; values are scale * random_uniform(seed, stream, i).
enum class TensorId : std::uint64_t {
  x = 1,
  w1,
  b1,
  w2,
  b2,
  w3,
  b3,
  wsc,
  bsc,
  wm,
  wse1,
  bse1,
  wse2,
  bse2  // SE's squeeze and excite FCs
};
// x copy c uses stream x + 100 * c.
std::uint64_t random_stream(TensorId id, std::int64_t copy = 0);
// The factor random values of a tensor are multiplied by (weights: sqrt(3 / fan_in)).
float random_scale(const BottleneckShape& shape, TensorId id);

// Host copies of the block's tensors. Layouts: maps NHWC; weights OHWI, i.e.
// w1 [Cmid][Cin], w2 [Cmid][3][3][Cmid/groups], w3 [Cout][Cmid], wsc [Cout][Cin], wm [Cin];
// SE: wse1 [se][Cmid], wse2 [Cmid][se]. Basic blocks: w1 [Cmid][3][3][Cin],
// w2 [Cout][3][3][Cmid], no w3/b3. Separable blocks: no w1/b1.
struct BlockData {
  BottleneckShape shape;
  std::vector<float> x;
  std::vector<float> w1, b1, w2, b2, w3, b3, wsc, bsc, wm;
  std::vector<float> wse1, bse1, wse2, bse2;
  float bm = 0;  // masker bias (set by whoever chooses the density)
};
// The same values the GPU runner generates for `config` (input copy 0); fp16 blocks: rounded
// to half, as the device stores them.
BlockData make_block_data(const BlockConfig& config);

// v rounded to the nearest binary16 value (ties to even; overflow to +-inf, subnormals kept),
// as a float: what __float2half_rn stores. Plain C++, for the references.
float round_to_fp16(float v);

// The masker bias that makes exactly active_patches(density, n) of the given patch logits
// (computed with bias 0) positive, placed midway between neighbouring logits.
float masker_bias_for_density(std::vector<float> logits_without_bias, double density);

}  // namespace lasnet::kernels
