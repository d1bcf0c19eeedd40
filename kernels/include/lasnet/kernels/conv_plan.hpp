#pragma once
// Which convolution kernel the GPU side runs for a conv, as a plain host function. The runner
// launches what it says, and the profiler hands the same choice to the predictor, so the model
// prices the tile that really runs instead of the best tile it can imagine (issue 4).
#include <string>

namespace lasnet::kernels {

enum class ConvImpl { igemm_128x128, igemm_128x64, igemm_64x64, direct };

// What the choice depends on. GEMM view: rows = output pixels (or active-patch pixels), N per
// group = cout_g, K = taps x cin_g.
struct ConvShape {
  int src_c = 1;  // floats per input pixel
  int out_c = 1;  // floats per output pixel
  int groups = 1;
  int cin_g = 1;       // input channels per group
  int cout_g = 1;      // output channels per group
  int kernel = 1;      // kh = kw
  long long rows = 0;  // expected GEMM rows
};

struct ConvPlan {
  ConvImpl impl = ConvImpl::direct;
  bool tf32 = false;
  // Split-K: blocks per output tile, each reducing a slice of K into a workspace, then one pass
  // adds the slices and applies the epilogue. > 1 where the tiles alone would leave the last
  // wave of blocks mostly empty (e.g. 392 tiles on 264 block slots: 1.48 waves).
  int splits = 1;
  // The GEMM tile (output pixels x output channels of one group); 0 x 0 for the direct kernel.
  int tile_rows() const;
  int tile_cols() const;
};

ConvPlan plan_conv(const ConvShape& shape, bool tf32, int sm_count);
// "igemm_tf32_128x128", "direct_fp32", ...: the StepInfo::kernel name of the step; split-K
// plans append "_splitk<N>" ("igemm_tf32_128x64_splitk2").
std::string to_string(const ConvPlan& plan);

}  // namespace lasnet::kernels
