#pragma once
// Geometry of coarse-grained spatially dynamic execution, shared by predictor and kernels.
// A block's output map (height x width) is cut into patches of granularity S (S x S output
// pixels); the last row/column of patches may be partial when S does not divide the map.
// A patch of S x S outputs of a k x k conv with stride s reads (S-1)*s + k input pixels per side
// (the halo); pixels outside the input map are the conv's zero padding.
#include <cstdint>

#include "lasnet/common/host_device.hpp"

namespace lasnet {

LASNET_HOST_DEVICE constexpr std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  return (a + b - 1) / b;
}

// Patches per side of a map of `extent` pixels at granularity S.
LASNET_HOST_DEVICE constexpr std::int64_t patches_per_side(std::int64_t extent, std::int64_t s) {
  return ceil_div(extent, s);
}

// Input pixels per side that a patch of `s` outputs needs for a k x k conv at `stride`.
LASNET_HOST_DEVICE constexpr std::int64_t patch_input_extent(std::int64_t s, std::int64_t stride,
                                                             std::int64_t kernel) {
  return (s - 1) * stride + kernel;
}

// Output map size of a conv: floor((in + 2*pad - kernel) / stride) + 1.
LASNET_HOST_DEVICE constexpr std::int64_t conv_output_extent(std::int64_t in, std::int64_t kernel,
                                                             std::int64_t stride,
                                                             std::int64_t pad) {
  return (in + 2 * pad - kernel) / stride + 1;
}

// Active patches per image for density d over n patches: ceil(d * n), exact for d in {0, 1}.
LASNET_HOST_DEVICE constexpr std::int64_t active_patches(double density, std::int64_t n) {
  const double x = density * static_cast<double>(n);
  auto whole = static_cast<std::int64_t>(x);
  if (static_cast<double>(whole) < x - 1e-9) ++whole;
  return whole > n ? n : whole;
}

}  // namespace lasnet
