#pragma once
// CPU references of every kernel of lasnet::kernels: plain C++, double accumulation, the same
// layouts as the device buffers, so a GPU result compares element-wise with its reference.
// Built always (lasnet::kernels_reference), also where there is no CUDA toolkit.
#include <cstdint>
#include <vector>

#include "lasnet/kernels/block.hpp"

namespace lasnet::kernels::ref {

struct MapShape {  // an NHWC map
  std::int64_t n = 1, h = 1, w = 1, c = 1;
  std::int64_t elements() const { return n * h * w * c; }
};

struct ConvParams {
  std::int64_t out_channels = 1;
  std::int64_t kernel = 1, stride = 1, pad = 0, groups = 1;
  bool relu = false;
};
// out = act(conv(x, w) + bias [+ residual]); weights OHWI [Cout][k][k][Cin/groups]; bias may be
// empty; residual (same shape as out) may be null. Output extents conv_output_extent(...).
std::vector<float> conv2d(const std::vector<float>& x, MapShape in, const std::vector<float>& w,
                          const std::vector<float>& bias, const ConvParams& p,
                          const std::vector<float>* residual = nullptr);
MapShape conv_output_shape(MapShape in, const ConvParams& p);

// ---- masker ----
// Patch logits [N][GH][GW] = bm + wm . mean of x over each patch's input region
// rows [py*S*stride, min((py+1)*S*stride, H)) x cols likewise.
std::vector<float> masker_logits(const std::vector<float>& x, MapShape in, const PatchGrid& g,
                                 const std::vector<float>& wm, float bm);
// The fused form: per-pixel logits wm . x (no bias) [N][H][W], then the patch mean + bm.
std::vector<float> pixel_logits(const std::vector<float>& x, MapShape in,
                                const std::vector<float>& wm);
std::vector<float> pool_pixel_logits(const std::vector<float>& pixel_logits, MapShape in,
                                     const PatchGrid& g, float bm);
std::vector<std::uint8_t> threshold(const std::vector<float>& logits);     // logit > 0
std::vector<std::int32_t> compact(const std::vector<std::uint8_t>& mask);  // ascending indices

// ---- gather / scatter ----
// Patches of `extent` x `extent` pixels of `map`; patch p = index[p] = n*GH*GW + py*GW + px has
// its origin at (py*step + offset, px*step + offset); pixels outside the map are 0.
// Output [P][extent][extent][C].
std::vector<float> gather_patches(const std::vector<float>& map, MapShape in,
                                  const std::vector<std::int32_t>& index, const PatchGrid& g,
                                  std::int64_t extent, std::int64_t step, std::int64_t offset);
// The conv2 input halo of each active patch: extent E, step S*stride, offset -1.
std::vector<float> gather_halo(const std::vector<float>& map, MapShape in,
                               const std::vector<std::int32_t>& index, const PatchGrid& g);
// 1x1 conv on rows [rows][Cin] -> [rows][Cout], act(w.x + b). If `halo_rows_outside_zero`,
// rows are gathered halo pixels [P][E][E] of a map of extent (h, w) and those outside it are 0.
std::vector<float> conv1x1_rows(const std::vector<float>& rows, std::int64_t cin,
                                const std::vector<float>& w, const std::vector<float>& bias,
                                std::int64_t cout, bool relu);
void zero_halo_outside(std::vector<float>& rows, std::int64_t channels,
                       const std::vector<std::int32_t>& index, const PatchGrid& g,
                       std::int64_t map_h, std::int64_t map_w);
// The same for rows [P][extent][extent] whose patch origin is (py*step + offset, ...).
void zero_patch_outside(std::vector<float>& rows, std::int64_t channels,
                        const std::vector<std::int32_t>& index, const PatchGrid& g,
                        std::int64_t extent, std::int64_t step, std::int64_t offset,
                        std::int64_t map_h, std::int64_t map_w);
// conv2 on gathered halos [P][E][E][C]: valid 3x3 conv at the block stride -> [P][S][S][Cmid].
std::vector<float> conv3x3_patches(const std::vector<float>& halos, std::int64_t patches,
                                   const PatchGrid& g, std::int64_t channels, std::int64_t stride,
                                   std::int64_t groups, const std::vector<float>& w,
                                   const std::vector<float>& bias);
// out[pixel] = ReLU(residual[pixel] + rows[p][oy][ox]) for every active patch pixel inside the
// output map (ho x wo); other pixels of out untouched.
void scatter_add_relu(std::vector<float>& out, const std::vector<float>& residual,
                      const std::vector<float>& rows, const std::vector<std::int32_t>& index,
                      const PatchGrid& g, MapShape out_shape);
// out[pixel] = ReLU(residual[pixel]) at pixels whose patch is inactive.
void add_inactive(std::vector<float>& out, const std::vector<float>& residual,
                  const std::vector<std::uint8_t>& mask, const PatchGrid& g, MapShape out_shape);

// ---- squeeze-excitation ----
// scale[n][c] = sigmoid(bse2 + wse2 . ReLU(bse1 + wse1 . mean[n])), mean[n][c] the mean of image
// n's conv2 output: over the whole map (dense), or over the pixels of its active patches inside
// the output map (dynamic: only those exist; an image without any gets mean 0).
std::vector<float> se_scale_map(const std::vector<float>& map, MapShape m, const BlockData& d);
std::vector<float> se_scale_patches(const std::vector<float>& rows,
                                    const std::vector<std::int32_t>& index, const PatchGrid& g,
                                    MapShape out_map, const BlockData& d);
// The channel scale applied: map [N][H][W][C] or rows [P][S][S][C] (image of index[p]).
std::vector<float> se_apply_map(const std::vector<float>& map, MapShape m,
                                const std::vector<float>& scale);
std::vector<float> se_apply_patches(const std::vector<float>& rows, std::int64_t channels,
                                    const std::vector<std::int32_t>& index, const PatchGrid& g,
                                    const std::vector<float>& scale);

// ---- whole blocks ----
struct BlockResult {
  std::vector<float> out;
  // Dense maps. The block's last conv (conv3; conv2 of a basic block) includes its bias but
  // not the residual add.
  std::vector<float> conv1, conv2, conv3, shortcut;
  std::vector<float> se_scale, se;  // SE blocks: [N][Cmid], and conv2 scaled (conv3's input)
};
// `storage`: fp16 rounds every map the fp16 kernels store (conv1, conv2, the gathered conv3 rows,
// shortcut, out) to half, so the reference models the storage rounding; sums stay in double.
// fp32 and tf32 store floats: no rounding. A separable block (no conv1) is the bottleneck whose
// conv1 is the identity: its conv1 map is x, dense or gathered.
BlockResult bottleneck_dense(const BlockData& d, Precision storage = Precision::fp32);
BlockResult basic_dense(const BlockData& d);
BlockResult block_dense(const BlockData& d);  // by d.shape.kind

struct DynamicResult {
  std::vector<float> out;
  std::vector<float> patch_logits;
  std::vector<std::uint8_t> mask;
  std::vector<std::int32_t> active;
  std::vector<float> gathered_x;     // [P][E][E][Cin]
  std::vector<float> conv1;          // [P][E][E][Cmid], zero outside the map
  std::vector<float> conv2;          // [P][S][S][Cmid]
  std::vector<float> conv3;          // [P][S][S][Cout], + b3
  std::vector<float> shortcut;       // dense [N][Ho][Wo][Cout] (projection blocks)
  std::vector<float> se_scale;       // SE blocks: [N][Cmid]
  std::vector<float> se;             // SE blocks: conv2 rows scaled, [P][S][S][Cmid]
  std::vector<std::int32_t> needed;  // union form: needed_conv1_pixels of the mask
};
// The dynamic block by its own kernels' references. If `mask` is non-empty it replaces the
// masker's threshold (the logits are still computed).
DynamicResult bottleneck_dynamic(const BlockData& d, std::int64_t granularity,
                                 const std::vector<std::uint8_t>& mask = {},
                                 Precision storage = Precision::fp32);
// The union form (Fusion::union_conv1): conv1 once per needed pixel into a full-size map (NaN
// at the pixels no active patch reads, so a missing one shows), conv2's halos gathered from it,
// the rest as bottleneck_dynamic. Same output; r.conv1 is the gathered [P][E][E][Cmid].
DynamicResult bottleneck_dynamic_union(const BlockData& d, std::int64_t granularity,
                                       const std::vector<std::uint8_t>& mask = {},
                                       Precision storage = Precision::fp32);
// Rows [P][C] of an NHWC map at the listed pixels n*H*W + y*W + x.
std::vector<float> pixel_rows(const std::vector<float>& map, std::int64_t channels,
                              const std::vector<std::int32_t>& pixels);
// conv1 (1x1 +b1, ReLU) of d.x at the listed pixels into [N][H][W][Cmid], NaN elsewhere.
std::vector<float> union_conv1_map(const BlockData& d, const std::vector<std::int32_t>& pixels,
                                   Precision storage = Precision::fp32);
// Rounds v to what a map of that precision stores (fp16: round_to_fp16; else unchanged).
void round_to_storage(std::vector<float>& v, Precision storage);
// The basic block: x gathered on the patch's ((S+1)*s+3)^2 pixels -> conv1 (3x3 valid, stride s)
// on the gathered patch -> conv1 [P][S+2][S+2][Cmid], zero outside the output map -> conv2 (3x3
// valid) -> conv2 [P][S][S][Cout] + b2 (no add) -> scatter-add; conv3 stays empty.
DynamicResult basic_dynamic(const BlockData& d, std::int64_t granularity,
                            const std::vector<std::uint8_t>& mask = {});
DynamicResult block_dynamic(const BlockData& d, std::int64_t granularity,
                            const std::vector<std::uint8_t>& mask = {});  // by d.shape.kind

// Where(mask, dense block output, ReLU(shortcut)): what the dynamic block must equal.
std::vector<float> masked_dense_output(const BlockResult& dense, const BlockData& d,
                                       const std::vector<std::uint8_t>& mask, const PatchGrid& g);

// ---- comparison ----
struct Comparison {
  double max_rel_error = 0;  // max |a - r| / (|r| + rms(r))
  std::int64_t worst_index = -1;
  std::int64_t non_finite = 0;  // NaN/Inf in a (e.g. unwritten, poisoned elements)
  bool size_mismatch = false;
  bool ok(double tolerance) const {
    return !size_mismatch && non_finite == 0 && max_rel_error <= tolerance;
  }
};
Comparison compare(const std::vector<float>& actual, const std::vector<float>& expected);

}  // namespace lasnet::kernels::ref
