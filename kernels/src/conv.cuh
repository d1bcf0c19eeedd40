#pragma once
// One implicit-GEMM convolution kernel for every conv of the dense and dynamic blocks: GEMM
// rows are output pixels described by a RowMap (a dense grid, or the pixels of active patches
// through the device index list), the reduction runs over (tap, input channel), and a
// shared-memory-staged epilogue adds bias, residual, ReLU, zeroes halo pixels outside the map,
// scatters into the output map, or computes the masker logit from the A tiles as an extra channel.
// Depthwise and narrow grouped 3x3 convs go to the direct 3x3 kernels of grouped_conv.cuh,
// and a scalar direct-conv kernel with the same arguments covers what none of them can
// (channels not a multiple of 4, other kernel sizes or strides).
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "lasnet/kernels/conv_plan.hpp"

namespace lasnet::kernels::detail {

// Maps GEMM row m to an image position (n, y, x).
struct RowMap {
  enum Kind : int { grid = 0, patch = 1, pixels = 2 };
  int kind = grid;
  // grid: m = (n * gh + y) * gw + x
  // pixels: index[m] = (n * gh + y) * gw + x, a list of pixels of a gh x gw map (the union
  //         form's needed conv1 pixels); always inside
  int gh = 1, gw = 1;
  // patch: m = (p * r + ry) * r + rx; index[p] = n * prow * pcol + py * pcol + px;
  //        y = py * pstride + ry + poff (x likewise); inside iff 0 <= y < lim_h, 0 <= x < lim_w
  const std::int32_t* index = nullptr;
  int prow = 1, pcol = 1, r = 1, pstride = 1, poff = 0, lim_h = 1, lim_w = 1;
  // Rows: `rows_max`, or (*count) * unit when count is set (device-side number of patches).
  long long rows_max = 0;
  const std::int32_t* count = nullptr;
  int unit = 1;
};

struct ConvArgs {
  // The map the conv reads: NHWC with `src_c` floats per pixel.
  const float* src = nullptr;
  int src_h = 1, src_w = 1, src_c = 1;
  int kh = 1, kw = 1, stride = 1, pad = 0;
  int groups = 1, cin_g = 1;
  RowMap a_map;  // output pixel of row m; its taps read src at (y*stride - pad + ky, ...)
  // Weights [groups * cout_g][kh][kw][cin_g]; GEMM N per group is cout_g.
  const float* weight = nullptr;
  int cout_g = 1;
  // Epilogue.
  enum EpiMode : int { store_rows = 0, zero_outside = 1, scatter = 2 };
  int e_mode = store_rows;
  RowMap e_map;  // zero_outside / scatter: same row enumeration as a_map
  float* out = nullptr;
  int out_c = 1;             // floats per output row / pixel
  int out_h = 1, out_w = 1;  // scatter: the output map
  const float* bias = nullptr;
  const float* residual = nullptr;  // same addressing as out
  int relu = 0;
  // Fused masker: aux[m] = aux_weight . (row m of A) (1x1 convs, groups 1): the extra output
  // channel, computed from the A tile already in shared memory by the blocks of N-tile 0.
  const float* aux_weight = nullptr;
  float* aux = nullptr;
  // Split-K (ConvPlan::splits > 1): each of `splits` blocks per output tile reduces one slice of
  // K and stores its raw sums in partial[split][a_map.rows_max][out_c]; a second kernel adds
  // the slices and applies the epilogue above. Set by launch_conv from the plan; `partial`
  // (splits * rows_max * out_c floats) is the caller's (BlockRunner allocates it).
  int splits = 1;
  float* partial = nullptr;
};

using lasnet::kernels::ConvImpl;
using lasnet::kernels::ConvPlan;
using lasnet::kernels::ConvShape;
using lasnet::kernels::to_string;
// The plan's view of the arguments; rows_hint is the expected number of rows.
lasnet::kernels::ConvShape shape_of(const ConvArgs& a, long long rows_hint);
// lasnet::kernels::plan_conv (conv_plan.hpp) applied to the arguments.
ConvPlan plan_conv(const ConvArgs& a, bool tf32, long long rows_hint, int sm_count);
// Sets the kernels' shared-memory limits; call once per device before launching.
void init_conv_kernels();
// Whether the wgmma tiles can run here: an sm_90 device and a build with sm_90a code
// (LASNET_CUDA_ARCHITECTURES=90a). Launches a probe kernel.
bool wgmma_supported();
// Floats of split-K workspace a.partial must hold for this plan (0 without split-K).
long long splitk_workspace_floats(const ConvArgs& a, const ConvPlan& plan);
void launch_conv(const ConvArgs& a, const ConvPlan& plan, cudaStream_t stream);
// col[m][k] = the input tap k of output pixel m (zero outside the map): the A operand of a
// library GEMM for the conv `a` (one group, cin_g % 4 == 0, a dense grid of rows; the
// epilogue fields are ignored). col holds a_map.rows_max x kh x kw x cin_g floats.
void launch_im2col(const ConvArgs& a, float* col, cudaStream_t stream);

}  // namespace lasnet::kernels::detail
