#pragma once
// Direct 3x3 convolution kernels for the convs the implicit GEMM serves badly: depthwise
// (cin_g = cout_g = 1, MobileNetV2) and narrow groups (cout_g < 32, RegNetY's group widths
// 8-24). Both take the implicit GEMM's ConvArgs (either RowMap kind, the device-side row count,
// the same epilogue: bias, residual, ReLU, zero_outside, scatter; no fused masker) and compute
// in exact fp32 FFMA whatever precision is asked.
//
// Work unit: a strip of up to 4 consecutive output pixels of one map row (grid RowMap) or one
// patch row (patch RowMap), so a thread loads each input column of its 3 input rows once for
// all the taps that use it ((4-1)*stride + 3 columns instead of 4 * 3). Strips are ordered 4 map
// rows deep before they move along x, so the threads of a block share input rows in L1.
// - depthwise: a thread computes a strip x 4 channels (16-byte loads along channels); a block
//   covers the channel quads of ConvPlan::block_channels and block_pixels / 4 strips, its 3x3
//   weights staged tap-major in shared memory. Memory-bound: each input pixel is read from DRAM
//   about once.
// - grouped: a thread computes a strip x 4, 8 or 16 output channels of one group over all cin_g
//   input channels; the block (128 threads, one channel chunk of one group) stages that chunk's
//   weights in shared memory, read as warp-wide broadcasts. The channel chunks of a pixel range
//   are neighbouring blocks, so a group's input is fetched from DRAM once and re-read from L2.
#include <cuda_runtime.h>

#include "conv.cuh"

namespace lasnet::kernels::detail {

// Preconditions: those of the plan_conv rule for ConvImpl::depthwise / grouped (conv_plan.hpp).
void launch_depthwise_conv(const ConvArgs& a, const ConvPlan& plan, cudaStream_t stream);
void launch_grouped_conv(const ConvArgs& a, const ConvPlan& plan, cudaStream_t stream);

}  // namespace lasnet::kernels::detail
