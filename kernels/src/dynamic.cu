#include <thrust/iterator/counting_iterator.h>
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_select.cuh>

#include <algorithm>

#include "cuda_check.cuh"
#include "dynamic.cuh"
#include "lasnet/common/error.hpp"
#include "lasnet/common/launch_plans.hpp"
#include "lasnet/kernels/block.hpp"

namespace lasnet::kernels::detail {
namespace {

// The grid-stride plan the predictor prices (common/launch_plans.hpp).
constexpr int kThreads = static_cast<int>(kGridStrideThreads);
constexpr long long kMaxBlocks = kGridStrideMaxBlocks;

unsigned grid_for(long long work) {
  return static_cast<unsigned>(grid_stride_blocks(work));
}

__global__ void fill_random_kernel(float* p, long long count, std::uint64_t seed,
                                   std::uint64_t stream, float scale, bool absolute) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const float v = scale * random_uniform(seed, stream, static_cast<std::uint64_t>(i));
    p[i] = absolute ? fabsf(v) : v;
  }
}

struct Region {
  int n, y0, y1, x0, x1;
};
__device__ __forceinline__ Region patch_region(const PatchGeometry& g, int i) {
  Region r;
  r.n = i / g.per_image;
  const int q = i - r.n * g.per_image;
  const int py = q / g.cols, px = q - (q / g.cols) * g.cols;
  r.y0 = py * g.step;
  r.y1 = min(r.y0 + g.step, g.in_h);
  r.x0 = px * g.step;
  r.x1 = min(r.x0 + g.step, g.in_w);
  return r;
}

// pixel_logits[pix] = wm . x[pix]: one warp per pixel, 16-byte loads when channels % 4 == 0.
template <int V>
__global__ void pixel_logits_kernel(const float* x, long long pixels, int channels, const float* wm,
                                    float* pixel_logits) {
  using vec = std::conditional_t<V == 4, float4, float>;
  const int warps = blockDim.x / 32;
  const int lane = threadIdx.x % 32;
  const int cv = channels / V;
  for (long long pix = blockIdx.x * static_cast<long long>(warps) + threadIdx.x / 32; pix < pixels;
       pix += static_cast<long long>(gridDim.x) * warps) {
    const vec* p = reinterpret_cast<const vec*>(x + pix * channels);
    const vec* w = reinterpret_cast<const vec*>(wm);
    float acc = 0.0f;
    for (int c = lane; c < cv; c += 32) {
      if constexpr (V == 4) {
        const float4 a = p[c], b = w[c];
        acc = fmaf(a.x, b.x, fmaf(a.y, b.y, fmaf(a.z, b.z, fmaf(a.w, b.w, acc))));
      } else {
        acc = fmaf(p[c], w[c], acc);
      }
    }
#pragma unroll
    for (int o = 16; o > 0; o /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0) pixel_logits[pix] = acc;
  }
}

// Pixels of a region; pixel i of it (row-major) in pixel_logits.
__device__ __forceinline__ int region_pixels(const Region& r) {
  return (r.y1 - r.y0) * (r.x1 - r.x0);
}
__device__ __forceinline__ float region_pixel(const float* pixel_logits, const PatchGeometry& g,
                                              const Region& r, int i) {
  const int w = r.x1 - r.x0;
  return pixel_logits[(static_cast<long long>(r.n) * g.in_h + r.y0 + i / w) * g.in_w + r.x0 +
                      i % w];
}
// Pixels [begin, end) of the region, every `lanes`-th from `lane`.
__device__ __forceinline__ float region_sum(const float* pixel_logits, const PatchGeometry& g,
                                            const Region& r, int begin, int end, int lane,
                                            int lanes) {
  float acc = 0.0f;
  for (int i = begin + lane; i < end; i += lanes) acc += region_pixel(pixel_logits, g, r, i);
  return acc;
}
// The sum over the `lanes` (a power of two up to 32) aligned lanes of a group of a warp.
__device__ __forceinline__ float group_sum(float v, int lanes) {
  for (int o = lanes / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ void write_patch(int i, float sum, const Region& r, float bm,
                                            const std::uint8_t* forced, float* logits,
                                            std::uint8_t* mask) {
  const float logit = sum / static_cast<float>(region_pixels(r)) + bm;
  logits[i] = logit;
  mask[i] = forced != nullptr ? forced[i] : (logit > 0.0f ? 1 : 0);
}

// Pool by masker_pool's plan. LANES threads per patch (1 or a warp), grid-stride over patches.
template <int LANES>
__global__ void masker_pool_kernel(const float* pixel_logits, int patches, float bm,
                                   PatchGeometry g, const std::uint8_t* forced, float* logits,
                                   std::uint8_t* mask) {
  const int lane = static_cast<int>(threadIdx.x) % LANES;
  const int groups = static_cast<int>(gridDim.x * blockDim.x) / LANES;
  for (int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x) / LANES; i < patches;
       i += groups) {
    const Region r = patch_region(g, i);
    const float sum =
        group_sum(region_sum(pixel_logits, g, r, 0, region_pixels(r), lane, LANES), LANES);
    if (lane == 0) write_patch(i, sum, r, bm, forced, logits, mask);
  }
}

// Large regions: block (patch, slice) sums its slice of the region into partials[patch][slice];
// masker_pool_finalize_kernel adds a patch's slices in order (deterministic, no atomics).
__global__ void __launch_bounds__(kThreads)
    masker_pool_slices_kernel(const float* pixel_logits, PatchGeometry g, int slices,
                              float* partials) {
  using Reduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename Reduce::TempStorage temp;
  const int i = static_cast<int>(blockIdx.x);
  const Region r = patch_region(g, i);
  const int area = region_pixels(r);
  const int per_slice = (area + slices - 1) / slices;
  const int begin = static_cast<int>(blockIdx.y) * per_slice;
  const int end = min(area, begin + per_slice);
  const float part = Reduce(temp).Sum(
      region_sum(pixel_logits, g, r, begin, end, static_cast<int>(threadIdx.x), kThreads));
  if (threadIdx.x == 0) partials[static_cast<long long>(i) * slices + blockIdx.y] = part;
}
__global__ void masker_pool_finalize_kernel(const float* partials, int patches, int slices,
                                            float bm, PatchGeometry g, const std::uint8_t* forced,
                                            float* logits, std::uint8_t* mask) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < patches; i += gridDim.x * blockDim.x) {
    float sum = 0.0f;
    for (int k = 0; k < slices; ++k) sum += partials[static_cast<long long>(i) * slices + k];
    write_patch(i, sum, patch_region(g, i), bm, forced, logits, mask);
  }
}

// The pool and the compaction in one block: masker_pool_select_threads(patches) threads per
// patch pool it, then a block scan of the groups' active flags places each active patch in the
// index list, in patch order as cub::DeviceSelect::Flagged does.
__global__ void __launch_bounds__(kFusedMaskerPatches)
    masker_pool_select_kernel(const float* pixel_logits, int patches, int lanes, float bm,
                              PatchGeometry g, const std::uint8_t* forced, float* logits,
                              std::uint8_t* mask, std::int32_t* index, std::int32_t* count) {
  using Scan = cub::BlockScan<int, kFusedMaskerPatches>;
  __shared__ typename Scan::TempStorage scan;
  const int t = static_cast<int>(threadIdx.x);
  const int i = t / lanes, lane = t % lanes;
  float sum = 0.0f;
  Region r{};
  if (i < patches) {
    r = patch_region(g, i);
    sum = region_sum(pixel_logits, g, r, 0, region_pixels(r), lane, lanes);
  }
  // Every lane of the block takes part in the shuffles (whole warps, groups aligned in them).
  sum = group_sum(sum, lanes);
  int active = 0;
  if (i < patches && lane == 0) {
    write_patch(i, sum, r, bm, forced, logits, mask);
    active = mask[i] != 0 ? 1 : 0;
  }
  int slot = 0, total = 0;
  Scan(scan).ExclusiveSum(active, slot, total);
  if (active != 0) index[slot] = i;
  if (t == 0) *count = total;
}

// The "dilate" predicate: whether conv1 pixel `pixel` (n*H*W + y*W + x) is needed.
struct NeededPixel {
  const std::uint8_t* mask;
  DilateGeometry g;
  __device__ __forceinline__ bool operator()(std::int32_t pixel) const {
    const int per_image = g.map_h * g.map_w;
    const int n = pixel / per_image;
    const int q = pixel - n * per_image;
    const int y = q / g.map_w, x = q - (q / g.map_w) * g.map_w;
    return in_active_window(mask + static_cast<long long>(n) * g.rows * g.cols, g.rows, g.cols,
                            g.extent, g.step, g.offset, y, x);
  }
};

// V floats per thread (4 when channels % 4 == 0).
template <int V>
__global__ void gather_kernel(const float* map, int channels, const std::int32_t* index,
                              const std::int32_t* count, PatchGeometry g, float* out) {
  using vec = std::conditional_t<V == 4, float4, float>;
  const int cv = channels / V;
  const long long per_patch = static_cast<long long>(g.halo) * g.halo * cv;
  const long long total = static_cast<long long>(*count) * per_patch;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long p = i / per_patch;
    const long long w = i - p * per_patch;
    const int pix = static_cast<int>(w / cv),
              c = static_cast<int>(w - static_cast<long long>(pix) * cv);
    const int ey = pix / g.halo, ex = pix - (pix / g.halo) * g.halo;
    const int idx = index[p];
    const int n = idx / g.per_image, q = idx - n * g.per_image;
    const int py = q / g.cols, px = q - (q / g.cols) * g.cols;
    const int y = py * g.step + g.offset + ey, xx = px * g.step + g.offset + ex;
    vec v{};
    if (y >= 0 && y < g.in_h && xx >= 0 && xx < g.in_w) {
      v = reinterpret_cast<const vec*>(
          map)[((static_cast<long long>(n) * g.in_h + y) * g.in_w + xx) * cv + c];
    }
    reinterpret_cast<vec*>(out)[i] = v;
  }
}

__device__ __forceinline__ float relu(float v) {
  return fmaxf(v, 0.0f);
}
__device__ __forceinline__ float4 add_relu(float4 a, float4 b) {
  return make_float4(relu(a.x + b.x), relu(a.y + b.y), relu(a.z + b.z), relu(a.w + b.w));
}
__device__ __forceinline__ float add_relu(float a, float b) {
  return relu(a + b);
}
__device__ __forceinline__ float4 relu_of(float4 a) {
  return make_float4(relu(a.x), relu(a.y), relu(a.z), relu(a.w));
}
__device__ __forceinline__ float relu_of(float a) {
  return relu(a);
}

template <int V>
__global__ void scatter_add_kernel(const float* rows, int channels, const std::int32_t* index,
                                   const std::int32_t* count, PatchGeometry g,
                                   const float* residual, float* out) {
  using vec = std::conditional_t<V == 4, float4, float>;
  const int cv = channels / V;
  const long long per_patch = static_cast<long long>(g.s) * g.s * cv;
  const long long total = static_cast<long long>(*count) * per_patch;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long p = i / per_patch;
    const long long w = i - p * per_patch;
    const int pix = static_cast<int>(w / cv),
              c = static_cast<int>(w - static_cast<long long>(pix) * cv);
    const int oy = pix / g.s, ox = pix - (pix / g.s) * g.s;
    const int idx = index[p];
    const int n = idx / g.per_image, q = idx - n * g.per_image;
    const int y = (q / g.cols) * g.s + oy, xx = (q - (q / g.cols) * g.cols) * g.s + ox;
    if (y >= g.out_h || xx >= g.out_w) continue;
    const long long o = ((static_cast<long long>(n) * g.out_h + y) * g.out_w + xx) * cv + c;
    reinterpret_cast<vec*>(out)[o] =
        add_relu(reinterpret_cast<const vec*>(residual)[o], reinterpret_cast<const vec*>(rows)[i]);
  }
}

template <int V>
__global__ void add_inactive_kernel(const std::uint8_t* mask, long long pixels, int channels,
                                    PatchGeometry g, const float* residual, float* out) {
  using vec = std::conditional_t<V == 4, float4, float>;
  const int cv = channels / V;
  const long long total = pixels * cv;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long pix = i / cv;
    const int xx = static_cast<int>(pix % g.out_w);
    const long long t = pix / g.out_w;
    const int y = static_cast<int>(t % g.out_h);
    const int n = static_cast<int>(t / g.out_h);
    if (mask[static_cast<long long>(n) * g.per_image + (y / g.s) * g.cols + xx / g.s] != 0)
      continue;
    reinterpret_cast<vec*>(out)[i] = relu_of(reinterpret_cast<const vec*>(residual)[i]);
  }
}

}  // namespace

void fill_random(float* p, long long count, std::uint64_t seed, std::uint64_t stream, float scale,
                 cudaStream_t s, bool absolute) {
  if (count == 0) return;
  fill_random_kernel<<<grid_for(count), kThreads, 0, s>>>(p, count, seed, stream, scale, absolute);
  LASNET_CUDA_CHECK_LAUNCH();
}

void launch_pixel_logits(const float* x, int batch, int channels, const float* wm,
                         const PatchGeometry& g, float* pixel_logits, cudaStream_t s) {
  const long long pixels = static_cast<long long>(batch) * g.in_h * g.in_w;
  const int warps = kThreads / 32;
  const unsigned blocks =
      static_cast<unsigned>(std::clamp<long long>((pixels + warps - 1) / warps, 1, kMaxBlocks * 4));
  if (channels % 4 == 0) {
    pixel_logits_kernel<4><<<blocks, kThreads, 0, s>>>(x, pixels, channels, wm, pixel_logits);
  } else {
    pixel_logits_kernel<1><<<blocks, kThreads, 0, s>>>(x, pixels, channels, wm, pixel_logits);
  }
  LASNET_CUDA_CHECK_LAUNCH();
}

void launch_masker(const float* x, int batch, int channels, const float* wm, float bm,
                   const PatchGeometry& g, const std::uint8_t* forced, float* pixel_logits,
                   float* partials, float* logits, std::uint8_t* mask, cudaStream_t s) {
  launch_pixel_logits(x, batch, channels, wm, g, pixel_logits, s);
  launch_masker_pool(pixel_logits, batch, bm, g, forced, partials, logits, mask, s);
}

long long masker_pool_partials(const PatchGeometry& g, int batch) {
  const MaskerPool plan = masker_pool(pool_region_pixels(g));
  return plan.slices > 1 ? static_cast<long long>(batch) * g.per_image * plan.slices : 0;
}

void launch_masker_pool(const float* pixel_logits, int batch, float bm, const PatchGeometry& g,
                        const std::uint8_t* forced, float* partials, float* logits,
                        std::uint8_t* mask, cudaStream_t s) {
  const int patches = batch * g.per_image;
  if (patches == 0) return;
  const MaskerPool plan = masker_pool(pool_region_pixels(g));
  if (plan.slices > 1) {
    if (partials == nullptr) throw lasnet::Error("launch_masker_pool: no buffer for the slices");
    const int slices = static_cast<int>(plan.slices);
    masker_pool_slices_kernel<<<dim3(patches, slices), kThreads, 0, s>>>(pixel_logits, g, slices,
                                                                         partials);
    LASNET_CUDA_CHECK_LAUNCH();
    masker_pool_finalize_kernel<<<grid_for(patches), kThreads, 0, s>>>(partials, patches, slices,
                                                                       bm, g, forced, logits, mask);
  } else if (plan.threads > 1) {
    masker_pool_kernel<32><<<grid_for(32LL * patches), kThreads, 0, s>>>(pixel_logits, patches, bm,
                                                                         g, forced, logits, mask);
  } else {
    masker_pool_kernel<1>
        <<<grid_for(patches), kThreads, 0, s>>>(pixel_logits, patches, bm, g, forced, logits, mask);
  }
  LASNET_CUDA_CHECK_LAUNCH();
}

std::size_t compaction_temp_bytes(int n) {
  std::size_t bytes = 0;
  LASNET_CUDA_CHECK(cub::DeviceSelect::Flagged(
      nullptr, bytes, thrust::counting_iterator<std::int32_t>(0),
      static_cast<const std::uint8_t*>(nullptr), static_cast<std::int32_t*>(nullptr),
      static_cast<std::int32_t*>(nullptr), n));
  return bytes;
}

void launch_compaction(const std::uint8_t* mask, int n, std::int32_t* index, std::int32_t* count,
                       void* temp, std::size_t temp_bytes, cudaStream_t s) {
  LASNET_CUDA_CHECK(cub::DeviceSelect::Flagged(
      temp, temp_bytes, thrust::counting_iterator<std::int32_t>(0), mask, index, count, n, s));
}

void launch_masker_select(const float* pixel_logits, int batch, float bm, const PatchGeometry& g,
                          const std::uint8_t* forced, float* partials, float* logits,
                          std::uint8_t* mask, std::int32_t* index, std::int32_t* count, void* temp,
                          std::size_t temp_bytes, bool one_kernel, cudaStream_t s) {
  const int patches = batch * g.per_image;
  if (one_kernel) {
    if (!fused_masker_select(patches, static_cast<long long>(batch) * g.in_h * g.in_w)) {
      throw lasnet::Error("launch_masker_select: too many patches for the one-kernel form");
    }
    masker_pool_select_kernel<<<1, kFusedMaskerPatches, 0, s>>>(
        pixel_logits, patches, static_cast<int>(masker_pool_select_threads(patches)), bm, g, forced,
        logits, mask, index, count);
    LASNET_CUDA_CHECK_LAUNCH();
    return;
  }
  launch_masker_pool(pixel_logits, batch, bm, g, forced, partials, logits, mask, s);
  launch_compaction(mask, patches, index, count, temp, temp_bytes, s);
}

std::size_t dilate_temp_bytes(int batch, const DilateGeometry& g) {
  std::size_t bytes = 0;
  LASNET_CUDA_CHECK(cub::DeviceSelect::If(
      nullptr, bytes, thrust::counting_iterator<std::int32_t>(0),
      static_cast<std::int32_t*>(nullptr), static_cast<std::int32_t*>(nullptr),
      batch * g.map_h * g.map_w, NeededPixel{nullptr, g}));
  return bytes;
}

void launch_dilate(const std::uint8_t* mask, int batch, const DilateGeometry& g,
                   std::int32_t* pixels, std::int32_t* count, void* temp, std::size_t temp_bytes,
                   cudaStream_t s) {
  if (g.offset >= 0 || g.step < 1) throw lasnet::Error("launch_dilate: offset < 0, step >= 1");
  LASNET_CUDA_CHECK(cub::DeviceSelect::If(temp, temp_bytes,
                                          thrust::counting_iterator<std::int32_t>(0), pixels, count,
                                          batch * g.map_h * g.map_w, NeededPixel{mask, g}, s));
}

void launch_gather(const float* map, int channels, const std::int32_t* index,
                   const std::int32_t* count, long long max_patches, const PatchGeometry& g,
                   float* out, cudaStream_t s) {
  const long long work = max_patches * g.halo * g.halo * channels;
  if (work == 0) return;
  if (channels % 4 == 0) {
    gather_kernel<4><<<grid_for(work / 4), kThreads, 0, s>>>(map, channels, index, count, g, out);
  } else {
    gather_kernel<1><<<grid_for(work), kThreads, 0, s>>>(map, channels, index, count, g, out);
  }
  LASNET_CUDA_CHECK_LAUNCH();
}

void launch_scatter_add(const float* rows, int channels, const std::int32_t* index,
                        const std::int32_t* count, long long max_patches, const PatchGeometry& g,
                        const float* residual, float* out, cudaStream_t s) {
  const long long work = max_patches * g.s * g.s * channels;
  if (work == 0) return;
  if (channels % 4 == 0) {
    scatter_add_kernel<4>
        <<<grid_for(work / 4), kThreads, 0, s>>>(rows, channels, index, count, g, residual, out);
  } else {
    scatter_add_kernel<1>
        <<<grid_for(work), kThreads, 0, s>>>(rows, channels, index, count, g, residual, out);
  }
  LASNET_CUDA_CHECK_LAUNCH();
}

void launch_add_inactive(const std::uint8_t* mask, int batch, int channels, const PatchGeometry& g,
                         const float* residual, float* out, cudaStream_t s) {
  const long long pixels = static_cast<long long>(batch) * g.out_h * g.out_w;
  const long long work = pixels * channels;
  if (work == 0) return;
  if (channels % 4 == 0) {
    add_inactive_kernel<4>
        <<<grid_for(work / 4), kThreads, 0, s>>>(mask, pixels, channels, g, residual, out);
  } else {
    add_inactive_kernel<1>
        <<<grid_for(work), kThreads, 0, s>>>(mask, pixels, channels, g, residual, out);
  }
  LASNET_CUDA_CHECK_LAUNCH();
}

}  // namespace lasnet::kernels::detail
