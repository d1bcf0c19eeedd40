#include <algorithm>
#include <string>

#include "cuda_check.cuh"
#include "lasnet/common/error.hpp"
#include "lasnet/common/launch_plans.hpp"
#include "lasnet/kernels/block.hpp"
#include "typed_ops.cuh"

namespace lasnet::kernels::detail {
namespace {

// The grid-stride plan the predictor prices (common/launch_plans.hpp).
constexpr int kThreads = static_cast<int>(kGridStrideThreads);
constexpr long long kMaxBlocks = kGridStrideMaxBlocks;

unsigned grid_for(long long work) {
  return static_cast<unsigned>(grid_stride_blocks(work));
}

__device__ __forceinline__ float to_f(float v) {
  return v;
}
__device__ __forceinline__ float to_f(__half v) {
  return __half2float(v);
}
template <class T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half from_f<__half>(float v) {
  return __float2half_rn(v);
}

// 16 bytes of T, moved as one vector load or store.
template <class T>
struct alignas(16) Pack {
  T v[kVec<T>];
};

template <class T>
__global__ void fill_random_kernel(T* p, long long count, std::uint64_t seed, std::uint64_t stream,
                                   float scale, bool absolute) {
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const float v = scale * random_uniform(seed, stream, static_cast<std::uint64_t>(i));
    p[i] = from_f<T>(absolute ? fabsf(v) : v);
  }
}

template <class T>
__global__ void pixel_logits_kernel(const T* x, long long pixels, int channels, const T* wm,
                                    float* pixel_logits) {
  const int warps = blockDim.x / 32;
  const int lane = threadIdx.x % 32;
  const int cv = channels / kVec<T>;
  for (long long pix = blockIdx.x * static_cast<long long>(warps) + threadIdx.x / 32; pix < pixels;
       pix += static_cast<long long>(gridDim.x) * warps) {
    const auto* p = reinterpret_cast<const Pack<T>*>(x + pix * channels);
    const auto* w = reinterpret_cast<const Pack<T>*>(wm);
    float acc = 0.0f;
    for (int c = lane; c < cv; c += 32) {
      const Pack<T> a = p[c], b = w[c];
#pragma unroll
      for (int j = 0; j < kVec<T>; ++j) acc = fmaf(to_f(a.v[j]), to_f(b.v[j]), acc);
    }
#pragma unroll
    for (int o = 16; o > 0; o /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0) pixel_logits[pix] = acc;
  }
}

template <class T>
__global__ void gather_kernel(const T* map, int channels, const std::int32_t* index,
                              const std::int32_t* count, PatchGeometry g, T* out) {
  const int cv = channels / kVec<T>;
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
    Pack<T> v{};
    if (y >= 0 && y < g.in_h && xx >= 0 && xx < g.in_w) {
      v = reinterpret_cast<const Pack<T>*>(
          map)[((static_cast<long long>(n) * g.in_h + y) * g.in_w + xx) * cv + c];
    }
    reinterpret_cast<Pack<T>*>(out)[i] = v;
  }
}

template <class T>
__device__ __forceinline__ Pack<T> add_relu(const Pack<T>& a, const Pack<T>& b) {
  Pack<T> r;
#pragma unroll
  for (int j = 0; j < kVec<T>; ++j) r.v[j] = from_f<T>(fmaxf(to_f(a.v[j]) + to_f(b.v[j]), 0.0f));
  return r;
}

template <class T>
__global__ void scatter_add_kernel(const T* rows, int channels, const std::int32_t* index,
                                   const std::int32_t* count, PatchGeometry g, const T* residual,
                                   T* out) {
  const int cv = channels / kVec<T>;
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
    reinterpret_cast<Pack<T>*>(out)[o] = add_relu(reinterpret_cast<const Pack<T>*>(residual)[o],
                                                  reinterpret_cast<const Pack<T>*>(rows)[i]);
  }
}

template <class T>
__global__ void add_inactive_kernel(const std::uint8_t* mask, long long pixels, int channels,
                                    PatchGeometry g, const T* residual, T* out) {
  const int cv = channels / kVec<T>;
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
    const Pack<T> r = reinterpret_cast<const Pack<T>*>(residual)[i];
    reinterpret_cast<Pack<T>*>(out)[i] = add_relu(r, Pack<T>{});
  }
}

// kScatter: map[pixels[i]] = rows[i]; else rows[i] = map[pixels[i]].
template <class T, bool kScatter>
__global__ void pixel_rows_kernel(const T* from, int channels, const std::int32_t* pixels,
                                  const std::int32_t* count, T* to) {
  const int cv = channels / kVec<T>;
  const long long total = static_cast<long long>(*count) * cv;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long row = i / cv;
    const long long c = i - row * cv;
    const long long pix = static_cast<long long>(pixels[row]) * cv + c;
    const auto* src = reinterpret_cast<const Pack<T>*>(from);
    auto* dst = reinterpret_cast<Pack<T>*>(to);
    if constexpr (kScatter) {
      dst[pix] = src[i];
    } else {
      dst[i] = src[pix];
    }
  }
}

// One thread per 16-byte vector of a tap; consecutive threads take consecutive channels of
// one tap, so the reads and the writes are coalesced.
template <class T>
__global__ void im2col_kernel(const T* src, Im2colGeometry g, T* col) {
  const int cv = g.channels / kVec<T>;
  const int kv = g.kernel * g.kernel * cv;
  const long long rows = static_cast<long long>(g.batch) * g.out_h * g.out_w;
  const long long total = rows * kv;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long m = i / kv;
    const int k = static_cast<int>(i - m * kv);
    const int tap = k / cv, c = k - tap * cv;
    const int ky = tap / g.kernel, kx = tap - ky * g.kernel;
    const int ox = static_cast<int>(m % g.out_w);
    const long long t = m / g.out_w;
    const int oy = static_cast<int>(t % g.out_h);
    const int n = static_cast<int>(t / g.out_h);
    const int y = oy * g.stride - g.pad + ky, x = ox * g.stride - g.pad + kx;
    Pack<T> v{};
    if (static_cast<unsigned>(y) < static_cast<unsigned>(g.h) &&
        static_cast<unsigned>(x) < static_cast<unsigned>(g.w)) {
      v = reinterpret_cast<const Pack<T>*>(
          src)[((static_cast<long long>(n) * g.h + y) * g.w + x) * cv + c];
    }
    reinterpret_cast<Pack<T>*>(col)[i] = v;
  }
}

template <class T>
__global__ void patch_im2col_kernel(const T* halos, int channels, int stride,
                                    const std::int32_t* index, const std::int32_t* count,
                                    PatchGeometry g, T* col) {
  const int cv = channels / kVec<T>;
  const int kv = 9 * cv;
  const long long rows = static_cast<long long>(*count) * g.s * g.s;
  const long long total = rows * kv;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long m = i / kv;
    const int k = static_cast<int>(i - m * kv);
    const int tap = k / cv, c = k - tap * cv;
    const int ky = tap / 3, kx = tap - ky * 3;
    const long long p = m / (g.s * g.s);
    const int within = static_cast<int>(m - p * g.s * g.s);
    const int oy = within / g.s, ox = within - oy * g.s;
    const int ey = oy * stride + ky, ex = ox * stride + kx;  // in the E x E halo
    const int idx = index[p];
    const int q = idx - (idx / g.per_image) * g.per_image;
    const int y = (q / g.cols) * g.step + g.offset + ey;
    const int x = (q - (q / g.cols) * g.cols) * g.step + g.offset + ex;
    Pack<T> v{};
    if (static_cast<unsigned>(y) < static_cast<unsigned>(g.in_h) &&
        static_cast<unsigned>(x) < static_cast<unsigned>(g.in_w)) {
      v = reinterpret_cast<const Pack<T>*>(
          halos)[((p * g.halo + ey) * g.halo + ex) * static_cast<long long>(cv) + c];
    }
    reinterpret_cast<Pack<T>*>(col)[i] = v;
  }
}

template <class T>
void require_vectors(int channels, const char* what) {
  if (channels % kVec<T> != 0) {
    throw lasnet::Error(std::string(what) + ": channels must be a multiple of " +
                        std::to_string(kVec<T>));
  }
}

}  // namespace

template <class T>
void fill_random_as(T* p, long long count, std::uint64_t seed, std::uint64_t stream, float scale,
                    cudaStream_t s, bool absolute) {
  if (count == 0) return;
  fill_random_kernel<T>
      <<<grid_for(count), kThreads, 0, s>>>(p, count, seed, stream, scale, absolute);
  LASNET_CUDA_CHECK_LAUNCH();
}

template <class T>
void launch_pixel_logits_as(const T* x, int batch, int channels, const T* wm,
                            const PatchGeometry& g, float* pixel_logits, cudaStream_t s) {
  require_vectors<T>(channels, "launch_pixel_logits_as");
  const long long pixels = static_cast<long long>(batch) * g.in_h * g.in_w;
  if (pixels == 0) return;
  const int warps = kThreads / 32;
  const unsigned blocks =
      static_cast<unsigned>(std::clamp<long long>((pixels + warps - 1) / warps, 1, kMaxBlocks * 4));
  pixel_logits_kernel<T><<<blocks, kThreads, 0, s>>>(x, pixels, channels, wm, pixel_logits);
  LASNET_CUDA_CHECK_LAUNCH();
}

template <class T>
void launch_gather_as(const T* map, int channels, const std::int32_t* index,
                      const std::int32_t* count, long long max_patches, const PatchGeometry& g,
                      T* out, cudaStream_t s) {
  require_vectors<T>(channels, "launch_gather_as");
  const long long work = max_patches * g.halo * g.halo * (channels / kVec<T>);
  if (work == 0) return;
  gather_kernel<T><<<grid_for(work), kThreads, 0, s>>>(map, channels, index, count, g, out);
  LASNET_CUDA_CHECK_LAUNCH();
}

template <class T>
void launch_scatter_add_as(const T* rows, int channels, const std::int32_t* index,
                           const std::int32_t* count, long long max_patches, const PatchGeometry& g,
                           const T* residual, T* out, cudaStream_t s) {
  require_vectors<T>(channels, "launch_scatter_add_as");
  const long long work = max_patches * g.s * g.s * (channels / kVec<T>);
  if (work == 0) return;
  scatter_add_kernel<T>
      <<<grid_for(work), kThreads, 0, s>>>(rows, channels, index, count, g, residual, out);
  LASNET_CUDA_CHECK_LAUNCH();
}

template <class T>
void launch_add_inactive_as(const std::uint8_t* mask, int batch, int channels,
                            const PatchGeometry& g, const T* residual, T* out, cudaStream_t s) {
  require_vectors<T>(channels, "launch_add_inactive_as");
  const long long pixels = static_cast<long long>(batch) * g.out_h * g.out_w;
  const long long work = pixels * (channels / kVec<T>);
  if (work == 0) return;
  add_inactive_kernel<T>
      <<<grid_for(work), kThreads, 0, s>>>(mask, pixels, channels, g, residual, out);
  LASNET_CUDA_CHECK_LAUNCH();
}

template <class T>
void launch_pixel_gather_as(const T* map, int channels, const std::int32_t* pixels,
                            const std::int32_t* count, long long max_pixels, T* rows,
                            cudaStream_t s) {
  require_vectors<T>(channels, "launch_pixel_gather_as");
  const long long work = max_pixels * (channels / kVec<T>);
  if (work == 0) return;
  pixel_rows_kernel<T, false>
      <<<grid_for(work), kThreads, 0, s>>>(map, channels, pixels, count, rows);
  LASNET_CUDA_CHECK_LAUNCH();
}

template <class T>
void launch_pixel_scatter_as(const T* rows, int channels, const std::int32_t* pixels,
                             const std::int32_t* count, long long max_pixels, T* map,
                             cudaStream_t s) {
  require_vectors<T>(channels, "launch_pixel_scatter_as");
  const long long work = max_pixels * (channels / kVec<T>);
  if (work == 0) return;
  pixel_rows_kernel<T, true>
      <<<grid_for(work), kThreads, 0, s>>>(rows, channels, pixels, count, map);
  LASNET_CUDA_CHECK_LAUNCH();
}

template <class T>
void launch_im2col_as(const T* src, const Im2colGeometry& g, T* col, cudaStream_t s) {
  require_vectors<T>(g.channels, "launch_im2col_as");
  const long long work = static_cast<long long>(g.batch) * g.out_h * g.out_w * g.kernel * g.kernel *
                         (g.channels / kVec<T>);
  if (work == 0) return;
  const long long blocks = std::min<long long>((work + kThreads - 1) / kThreads, 132LL * 32);
  im2col_kernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, s>>>(src, g, col);
  LASNET_CUDA_CHECK_LAUNCH();
}

template <class T>
void launch_patch_im2col_as(const T* halos, int channels, int stride, const std::int32_t* index,
                            const std::int32_t* count, long long max_patches,
                            const PatchGeometry& g, T* col, cudaStream_t s) {
  require_vectors<T>(channels, "launch_patch_im2col_as");
  const long long work = max_patches * g.s * g.s * 9 * (channels / kVec<T>);
  if (work == 0) return;
  const long long blocks = std::min<long long>((work + kThreads - 1) / kThreads, 132LL * 32);
  patch_im2col_kernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, s>>>(halos, channels, stride,
                                                                            index, count, g, col);
  LASNET_CUDA_CHECK_LAUNCH();
}

#define LASNET_TYPED_OPS(T)                                                                        \
  template void fill_random_as<T>(T*, long long, std::uint64_t, std::uint64_t, float,              \
                                  cudaStream_t, bool);                                             \
  template void launch_pixel_logits_as<T>(const T*, int, int, const T*, const PatchGeometry&,      \
                                          float*, cudaStream_t);                                   \
  template void launch_gather_as<T>(const T*, int, const std::int32_t*, const std::int32_t*,       \
                                    long long, const PatchGeometry&, T*, cudaStream_t);            \
  template void launch_scatter_add_as<T>(const T*, int, const std::int32_t*, const std::int32_t*,  \
                                         long long, const PatchGeometry&, const T*, T*,            \
                                         cudaStream_t);                                            \
  template void launch_add_inactive_as<T>(const std::uint8_t*, int, int, const PatchGeometry&,     \
                                          const T*, T*, cudaStream_t);                             \
  template void launch_pixel_gather_as<T>(const T*, int, const std::int32_t*, const std::int32_t*, \
                                          long long, T*, cudaStream_t);                            \
  template void launch_pixel_scatter_as<T>(const T*, int, const std::int32_t*,                     \
                                           const std::int32_t*, long long, T*, cudaStream_t);      \
  template void launch_im2col_as<T>(const T*, const Im2colGeometry&, T*, cudaStream_t);            \
  template void launch_patch_im2col_as<T>(const T*, int, int, const std::int32_t*,                 \
                                          const std::int32_t*, long long, const PatchGeometry&,    \
                                          T*, cudaStream_t);

LASNET_TYPED_OPS(float)
LASNET_TYPED_OPS(__half)
#undef LASNET_TYPED_OPS

}  // namespace lasnet::kernels::detail
