#pragma once
// Which convolution kernel the GPU side runs for a conv, as a plain host function. The runner
// launches what it says, and the profiler hands the same choice to the predictor, so the model
// prices the tile that really runs instead of the best tile it can imagine (issue 4).
#include <string>

namespace lasnet::kernels {

// igemm_*: the tiled implicit GEMM (conv.cu). depthwise / grouped: direct 3x3 kernels of
// grouped_conv.cu for cin_g = cout_g = 1, and for narrow groups (cout_g < 32); both compute in
// exact fp32 FFMA also when tf32 is requested. direct: one thread per output element, for what
// nothing else takes (channels not a multiple of 4, other kernel sizes or strides).
// igemm_256x128 is a wgmma tile only (use_wgmma).
enum class ConvImpl {
  igemm_256x128,
  igemm_128x128,
  igemm_128x64,
  igemm_64x64,
  direct,
  depthwise,
  grouped
};

// What the choice depends on. GEMM view: rows = output pixels (or active-patch pixels), N per
// group = cout_g, K = taps x cin_g.
struct ConvShape {
  int src_c = 1;  // floats per input pixel
  int out_c = 1;  // floats per output pixel
  int groups = 1;
  int cin_g = 1;   // input channels per group
  int cout_g = 1;  // output channels per group
  int kernel = 1;  // kh = kw
  int stride = 1;
  // Output pixels per map row (dense) or per patch row (S, gathered / patch rows); 0: unknown,
  // taken as wide. The depthwise / grouped kernels give each thread up to 4 pixels of one row.
  int row_width = 0;
  long long rows = 0;  // expected GEMM rows
  // The masker's logit channel rides in the epilogue (masker_conv): never split-K, since the
  // channel is computed from each block's A tiles and a split block sees a slice of them.
  bool fused_masker = false;
};

struct ConvPlan {
  ConvImpl impl = ConvImpl::direct;
  bool tf32 = false;
  // Split-K: blocks per output tile, each reducing a slice of K into a workspace, then one pass
  // adds the slices and applies the epilogue. > 1 where the tiles alone would leave the last
  // wave of blocks mostly empty (e.g. 392 tiles on 264 block slots: 1.48 waves) or most SMs
  // idle (batch 1: a few tiles, each a long K loop).
  int splits = 1;
  // tf32 only (tiles 256x128 and 128x64): the block computes with Hopper's warpgroup MMA
  // (wgmma, operands read by the tensor cores straight from swizzled shared memory) instead
  // of mma.sync. Not set by plan_conv, which does not know the device: use_wgmma() below,
  // where the runner's device and build have it.
  bool wgmma = false;
  // Output tile of one thread block, for depthwise / grouped (set by plan_conv; the launch uses
  // them): pixels (threads x 4 consecutive output pixels of a map row or patch row; fewer where
  // that row is narrower) x channels (depthwise: 4 per thread across the block's x dimension;
  // grouped: the 4, 8 or 16 output channels of one group that every thread of the block
  // computes).
  int block_pixels = 0, block_channels = 0;
  // The output tile (pixels x output channels): igemm_* its GEMM tile (of one group);
  // depthwise / grouped the block tile above; 0 x 0 for the direct kernel.
  int tile_rows() const;
  int tile_cols() const;
};

// Rule: depthwise when groups > 1, cin_g = cout_g = 1, 3x3, stride 1 or 2, groups and both
// channel strides multiples of 4; grouped when groups > 1, cout_g < 32, cin_g <= 64, 3x3,
// stride 1 or 2, cin_g, cout_g and both channel strides multiples of 4 (a thread takes all 16
// channels of a 16-wide group when rows are at least 4 wide and that still gives 4 blocks per
// SM, else chunks of 8 or 4: measured on the H100, docs/kernels.md); else the implicit GEMM
// when its 16-byte loads apply, else direct.
ConvPlan plan_conv(const ConvShape& shape, bool tf32, int sm_count);
// Whether a dense conv runs as an im2col copy plus a cuBLASLt GEMM instead of plan_conv's
// kernel: tf32 3x3 single-group convs with at least 256 output channels over at least 4096
// output pixels (batch 128 of ResNet-101's layer3 and layer4, never batch 1). There the
// library's tensor-core GEMM outruns our mma.sync kernel by more than the copy of the
// taps costs (K = 9 x cin floats per pixel, written and read once); with fewer output channels
// the copy is not paid back, and in fp32 both sides are FFMA (docs/kernels.md). Dynamic convs
// keep plan_conv: their row count lives on the device, and a library call needs it on the host.
bool im2col_library_conv(const ConvShape& shape, bool tf32);
// Whether a dense 1x1 conv (a block's conv1 and conv3) runs as a cuBLASLt GEMM (true) or
// through plan_conv's implicit GEMM (false): every single-group stride-1 one. Our kernel, split
// at batch 1, was measured against it on the H200 (bench_kernels --library-1x1 0 vs 1, same
// call; docs/kernels.md, third round) and lost in both precisions at both batches: ResNet-101's
// 33 dense bottlenecks chained (CUDA graph) 60.4 vs 53.8 ms (fp32, batch 128), 16.4 vs 13.0 ms
// (tf32), 1.24 vs 1.11 ms (tf32, batch 1). So false is a benchmark baseline, kept to repeat
// that test.
bool library_1x1_conv(const ConvShape& shape, bool tf32);
// The plan with wgmma where it applies (tf32 plans of a 128-row tile, and of the 64x64 one
// for 3x3 convs from 2048 rows and N >= 256 on), its tile and split
// chosen again for wgmma: the tile's time over its waves with each K step costing the larger
// of its tensor-core time and its operand bytes at the L2 rate (the implicit GEMM gathers A
// through L2, and wgmma is fast enough that small tiles are L2-bound), so 256x128 wins
// where mma.sync's rule took smaller tiles for the waves; 128x64 where N <= 64.
ConvPlan use_wgmma(ConvPlan plan, const ConvShape& shape, int sm_count);
// The StepInfo::kernel name of the step, stable (the predictor keys on it):
// "igemm_{fp32,tf32,wgmma}_{256x128,128x128,128x64,64x64}", "direct_fp32", "depthwise_fp32",
// "grouped_fp32" (the last two also under tf32: they compute exact fp32; "wgmma" is tf32 by
// warpgroup MMA); split-K plans append "_splitk<N>" ("igemm_tf32_128x64_splitk2").
std::string to_string(const ConvPlan& plan);
// The fp16 implicit GEMM's one tile (kernels/src/conv_f16.cuh): the dynamic fp16 blocks' GEMMs
// over patch rows, stopping at the device-side count. Its step name, and the predictor's;
// fp16_igemm_kernel appends its split.
inline constexpr const char* kFp16IgemmKernel = "igemm_fp16_128x64";
// Its tile and K chunk (halves), which conv_f16.cu is built with.
inline constexpr int kFp16TileRows = 128, kFp16TileCols = 64, kFp16ChunkHalves = 32;
// Split-K for the fp16 implicit GEMM by plan_conv's rule (the same function, at the fp16
// tile's block count and chunk length): 1 where its tiles fill the GPU, more on the small maps
// of ResNet's layer3 and layer4, where a few 128 x 64 tiles walk a long K. Only shape.rows,
// kernel, cin_g, cout_g, out_c and groups matter. The runner launches this split and the
// predictor prices it.
int fp16_igemm_splits(const ConvShape& shape, int sm_count);
// The fp16 step's kernel name: kFp16IgemmKernel, with "_splitk<N>" for N > 1 as to_string.
std::string fp16_igemm_kernel(int splits);

}  // namespace lasnet::kernels
