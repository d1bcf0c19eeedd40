#pragma once
// The dynamic block's non-GEMM kernels: masker (pool + 1x1 + threshold), the pooling of the
// fused masker's logit channel, stream compaction of the mask into the active-patch index list
// (on the device, count included), gather of halo patches, scatter-add into the residual, and
// the pass that gives inactive pixels ReLU(residual), and the union form's list of needed conv1
// pixels. Plus the seeded random fill.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "lasnet/common/launch_plans.hpp"

namespace lasnet::kernels::detail {

struct PatchGeometry {  // device copy of PatchGrid plus the map extents it refers to
  int s = 1, rows = 1, cols = 1, per_image = 1;
  int halo = 3, step = 1;  // E and S*stride
  int offset = -1;         // gather origin of patch (py, px): py*step + offset (PatchGrid)
  int in_h = 1, in_w = 1;  // input map
  int out_h = 1, out_w = 1;
};

// p[i] = scale * random_uniform(seed, stream, i), or its absolute value when `absolute`.
void fill_random(float* p, long long count, std::uint64_t seed, std::uint64_t stream, float scale,
                 cudaStream_t s, bool absolute = false);

// logits[i] = bm + wm . mean(x over patch i's input region); mask[i] = forced ? forced[i] :
// logits[i] > 0. Computed as per-pixel logits wm . x (one warp per pixel, into pixel_logits
// [N][H][W]) and then their patch means: all of x is read once, fully parallel.
// `partials`: masker_pool_partials floats (nullptr when that is 0).
void launch_masker(const float* x, int batch, int channels, const float* wm, float bm,
                   const PatchGeometry& g, const std::uint8_t* forced, float* pixel_logits,
                   float* partials, float* logits, std::uint8_t* mask, cudaStream_t s);
// Its two halves: the per-pixel logits, then (alone in the fused form, whose conv1 writes the
// pixel logits) logits[i] = bm + mean(pixel_logits over the region) and the mask.
void launch_pixel_logits(const float* x, int batch, int channels, const float* wm,
                         const PatchGeometry& g, float* pixel_logits, cudaStream_t s);
// The pool runs as masker_pool (common/launch_plans.hpp) plans it for the full region; large
// regions need a scratch of masker_pool_partials floats.
inline long long pool_region_pixels(const PatchGeometry& g) {
  return static_cast<long long>(g.step < g.in_h ? g.step : g.in_h) *
         (g.step < g.in_w ? g.step : g.in_w);
}
long long masker_pool_partials(const PatchGeometry& g, int batch);
void launch_masker_pool(const float* pixel_logits, int batch, float bm, const PatchGeometry& g,
                        const std::uint8_t* forced, float* partials, float* logits,
                        std::uint8_t* mask, cudaStream_t s);

// Ascending indices of the nonzero entries of mask into `index`, their number into *count.
std::size_t compaction_temp_bytes(int n);
void launch_compaction(const std::uint8_t* mask, int n, std::int32_t* index, std::int32_t* count,
                       void* temp, std::size_t temp_bytes, cudaStream_t s);
// launch_masker_pool then launch_compaction. Up to kFusedMaskerPatches patches over at most
// kFusedMaskerPixels input pixels, both run as one single-block kernel (a group of threads per
// patch and a block scan): one launch instead of the pool's and cub's select's two (an init and a
// sweep kernel), the masker's main cost at batch 1. The pixel bound keeps the pool's loads, which
// then all go through one SM, to a few microseconds.
inline constexpr int kFusedMaskerPatches = 1024;
inline constexpr long long kFusedMaskerPixels = 16384;
constexpr bool fused_masker_select(int patches, long long pixels) {
  return patches <= kFusedMaskerPatches && pixels <= kFusedMaskerPixels;
}
// `one_kernel` (where fused_masker_select allows it) picks the single-block kernel.
void launch_masker_select(const float* pixel_logits, int batch, float bm, const PatchGeometry& g,
                          const std::uint8_t* forced, float* partials, float* logits,
                          std::uint8_t* mask, std::int32_t* index, std::int32_t* count, void* temp,
                          std::size_t temp_bytes, bool one_kernel, cudaStream_t s);

// The union form's "dilate": the pixels of conv1's map (map_h x map_w per image) that some
// active patch's conv2 reads, i.e. those within the window of extent `extent` at origin
// (py*step + offset, px*step + offset) of an active patch (bottleneck: E, S*stride, -1), in
// ascending order n*map_h*map_w + y*map_w + x into `pixels`, their number into *count
// (needed_conv1_pixels on the host). One cub select whose predicate looks up the mask.
struct DilateGeometry {
  int rows = 1, cols = 1;  // patches per image, per side
  int extent = 3, step = 1, offset = -1;
  int map_h = 1, map_w = 1;
};
std::size_t dilate_temp_bytes(int batch, const DilateGeometry& g);
void launch_dilate(const std::uint8_t* mask, int batch, const DilateGeometry& g,
                   std::int32_t* pixels, std::int32_t* count, void* temp, std::size_t temp_bytes,
                   cudaStream_t s);

// out[p][ey][ex][c] = map[n][py*step + offset + ey][px*step + offset + ex][c] or 0 outside
// (E = halo pixels per side).
void launch_gather(const float* map, int channels, const std::int32_t* index,
                   const std::int32_t* count, long long max_patches, const PatchGeometry& g,
                   float* out, cudaStream_t s);
// out[pixel] = ReLU(residual[pixel] + rows[p][oy][ox]) for active patch pixels in the map.
void launch_scatter_add(const float* rows, int channels, const std::int32_t* index,
                        const std::int32_t* count, long long max_patches, const PatchGeometry& g,
                        const float* residual, float* out, cudaStream_t s);
// out[pixel] = ReLU(residual[pixel]) where the pixel's patch is inactive.
void launch_add_inactive(const std::uint8_t* mask, int batch, int channels, const PatchGeometry& g,
                         const float* residual, float* out, cudaStream_t s);

}  // namespace lasnet::kernels::detail
