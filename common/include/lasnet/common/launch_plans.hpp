#pragma once
// How kernels split a reduction over threads and blocks where the split sets their time, shared
// by the kernels (which run it) and the predictor (which prices the chain of loads it leaves).
#include <cstdint>

#include "lasnet/common/host_device.hpp"
#include "lasnet/common/patch_geometry.hpp"

namespace lasnet {

// How the masker pools one patch's pixel logits into its logit (kernels/src/dynamic.cu), by the
// pixels of the patch's input region: a thread per patch for small regions; a warp per patch
// (at most 64 loads per lane); beyond that blocks of 256 threads over slices of the region (at
// most 8 loads per thread) whose partial sums a second pass adds. A thread walking a large region
// alone is a serial chain of loads (a 224x224 patch took 0.6 ms on an H100); the predictor prices
// the chain this plan leaves.
struct MaskerPool {
  std::int64_t threads = 1;  // per patch and slice
  std::int64_t slices = 1;   // > 1: partial sums, then a finalize pass
};
LASNET_HOST_DEVICE constexpr MaskerPool masker_pool(std::int64_t region_pixels) {
  if (region_pixels <= 16) return {1, 1};
  if (region_pixels <= 2048) return {32, 1};
  return {256, ceil_div(region_pixels, 2048)};
}
// The single-block pool + compaction (up to 1024 patches): threads per patch, a power of two
// up to a warp, so that the block's 1024 threads all pool.
LASNET_HOST_DEVICE constexpr std::int64_t masker_pool_select_threads(std::int64_t patches) {
  std::int64_t g = 1;
  while (g < 32 && patches * g * 2 <= 1024) g *= 2;
  return g;
}

// Squeeze-excitation's pool (kernels/src/se.cu): a block per 32 channels and image, its 8 row
// groups walking the image's rows, and the rows cut into `slices` per image so that the grid
// has about 256 blocks (each slice at least 128 rows); the FC kernel adds the slices' sums. One
// block per (channels, image) alone left 8 blocks on 132 SMs at batch 2, each a chain of
// hundreds of loads.
LASNET_HOST_DEVICE constexpr std::int64_t se_pool_slices(std::int64_t channels, std::int64_t batch,
                                                         std::int64_t rows_per_image) {
  const std::int64_t blocks = ceil_div(channels, 32) * batch;
  std::int64_t slices = ceil_div(256, blocks);
  const std::int64_t by_rows = rows_per_image / 128 > 1 ? rows_per_image / 128 : 1;
  if (slices > by_rows) slices = by_rows;
  return slices > 64 ? 64 : slices;
}

// The elementwise passes of a dynamic block (fill, gather, scatter-add, the inactive-pixel pass;
// kernels/src/dynamic.cu, typed_ops.cu): 256-thread blocks in a grid-stride loop, at most 16
// blocks per SM of an H100 (two rounds of 8 resident), so a large map is walked by every thread
// several times rather than by millions of blocks. The predictor prices those trips.
inline constexpr std::int64_t kGridStrideThreads = 256;
inline constexpr std::int64_t kGridStrideMaxBlocks = 132 * 16;
LASNET_HOST_DEVICE constexpr std::int64_t grid_stride_blocks(std::int64_t work) {
  const std::int64_t blocks = ceil_div(work, kGridStrideThreads);
  return blocks < 1 ? 1 : blocks > kGridStrideMaxBlocks ? kGridStrideMaxBlocks : blocks;
}

// SE's FC kernel: one block per image of this many threads; a warp per squeezed channel, then
// a warp per channel.
inline constexpr std::int64_t kSeFcThreads = 512;

}  // namespace lasnet
