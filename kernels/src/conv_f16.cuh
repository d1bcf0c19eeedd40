#pragma once
// The fp16 implicit GEMM: the RowMap convolution of conv.cuh with __half operands, fp32 sums on
// mma.sync m16n8k16 and the epilogue (bias, residual, ReLU, zero outside, scatter) rounding once
// to __half. It stops at the device-side row count (RowMap::count), which cuBLASLt cannot: the
// fp16 dynamic blocks run their GEMMs over patch rows with it (docs/kernels.md, "fp16").
// One tile configuration (128 x 64, BK = 32 halves, 3 stages: kFp16Tile* in conv_plan.hpp);
// channels multiples of 8. Split-K as the fp32 kernel's (fp16_igemm_splits chooses it): fp32
// partial sums, then splitk_reduce.cuh's pass applies the epilogue and rounds once.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "conv.cuh"

namespace lasnet::kernels::detail {

// ConvArgs (conv.cuh) for __half storage, one group, no fused masker.
struct HalfConvArgs {
  const __half* src = nullptr;  // NHWC, src_c halves per pixel
  int src_h = 1, src_w = 1, src_c = 1;
  int kh = 1, kw = 1, stride = 1, pad = 0;
  RowMap a_map;
  const __half* weight = nullptr;  // [cout][kh][kw][src_c]
  int cout = 1;
  int e_mode = ConvArgs::store_rows;
  RowMap e_map;
  __half* out = nullptr;
  int out_c = 1, out_h = 1, out_w = 1;
  const __half* bias = nullptr;
  const __half* residual = nullptr;  // same addressing as out
  int relu = 0;
  // Split-K (splits > 1): each of `splits` blocks per output tile sums one slice of K in fp32
  // into partial[split][a_map.rows_max][out_c] (rows in a_map's order, valid up to the
  // device-side count); a second pass adds the slices and applies the epilogue above.
  // `partial` (splitk_workspace_floats) is the caller's, as for ConvArgs.
  int splits = 1;
  float* partial = nullptr;
};

// Its name in step timings and the predictor's kernel schedules: fp16_igemm_kernel(splits)
// (conv_plan.hpp).

// The plan's view of the arguments (rows_hint: the expected number of rows), and the split
// fp16_igemm_splits gives it.
lasnet::kernels::ConvShape shape_of(const HalfConvArgs& a, long long rows_hint);
int plan_half_conv_splits(const HalfConvArgs& a, long long rows_hint, int sm_count);
// Floats of split-K workspace a.partial must hold for a.splits (0 without split-K).
long long splitk_workspace_floats(const HalfConvArgs& a);
// Throws lasnet::Error when the arguments break the kernel's contract (channels and cout
// multiples of 8, cout = out_c when split, 16-byte aligned pointers, a workspace when split).
void check_half_conv(const HalfConvArgs& a);
void launch_half_conv(const HalfConvArgs& a, cudaStream_t stream);

}  // namespace lasnet::kernels::detail
