#pragma once
// The fp16 implicit GEMM: the RowMap convolution of conv.cuh with __half operands, fp32 sums on
// mma.sync m16n8k16 and the epilogue (bias, residual, ReLU, zero outside, scatter) rounding once
// to __half. It stops at the device-side row count (RowMap::count), which cuBLASLt cannot: the
// fp16 dynamic blocks run their GEMMs over patch rows with it (docs/kernels.md, "fp16").
// One tile configuration (128 x 64, BK = 32 halves, 3 stages); channels multiples of 8.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "conv.cuh"

namespace lasnet::kernels::detail {

// ConvArgs (conv.cuh) for __half storage, one group, no fused masker or split-K.
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
};

// Its name in step timings and the predictor's kernel schedules: kFp16IgemmKernel
// (conv_plan.hpp).

// Throws lasnet::Error when the arguments break the kernel's contract (channels and cout
// multiples of 8, 16-byte aligned pointers).
void check_half_conv(const HalfConvArgs& a);
void launch_half_conv(const HalfConvArgs& a, cudaStream_t stream);

}  // namespace lasnet::kernels::detail
