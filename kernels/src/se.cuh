#pragma once
// Squeeze-excitation of conv2's output: per-image channel means (of a dense map, or of the rows
// of the active patches that lie inside the output map: a dynamic block has no others), the two
// small FCs (ReLU, sigmoid), and the channel scale into a new buffer (conv3's input). Three
// launches, exact fp32 whatever precision the block runs, as the predictor prices SE.
#include <cuda_runtime.h>

#include <cstdint>

#include "dynamic.cuh"

namespace lasnet::kernels::detail {

struct SeInput {
  const float* rows = nullptr;  // [rows][channels]
  int channels = 1;
  int batch = 1;
  // Dense: the image of row r is r / pixels_per_image (index == nullptr).
  long long pixels_per_image = 0;
  // Dynamic: rows [*count][S][S]; the image of patch p is index[p] / g.per_image, and a row
  // counts for the mean only inside the output map (g.out_h x g.out_w).
  const std::int32_t* index = nullptr;
  const std::int32_t* count = nullptr;
  PatchGeometry g;
  long long max_rows = 0;  // rows the buffers hold (dense: batch * pixels_per_image)
};

struct SeWeights {
  int se = 1;                 // squeezed channels
  const float* w1 = nullptr;  // [se][channels]
  const float* b1 = nullptr;  // [se]
  const float* w2 = nullptr;  // [channels][se]
  const float* b2 = nullptr;  // [channels]
};

// mean [batch][channels] and scale [batch][channels] are outputs too (kept for the tests);
// out [max_rows][channels] = rows * scale of the row's image; out must not alias rows. The pool
// runs in slices of each image's rows (se_pool_slices, common/launch_plans.hpp) whose sums go to
// `scratch`, se_pool_scratch(in) floats.
long long se_pool_scratch(const SeInput& in);
void launch_se(const SeInput& in, const SeWeights& w, float* scratch, float* mean, float* scale,
               float* out, cudaStream_t stream);

}  // namespace lasnet::kernels::detail
