#pragma once
// The elementwise kernels of the blocks as templates on the storage type T (float or __half),
// math always in fp32: what the fp16 path runs around its cuBLASLt GEMMs. Every kernel moves
// 16-byte vectors (4 floats or 8 halves), so channel counts must be multiples of
// kVec<T> (check_supported asks fp16 blocks for channels in eights). The fp32/tf32 path keeps
// its own kernels in dynamic.cu and conv.cu, whose generated code this file does not touch.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "dynamic.cuh"

namespace lasnet::kernels::detail {

template <class T>
inline constexpr int kVec = static_cast<int>(16 / sizeof(T));

// p[i] = T(scale * random_uniform(seed, stream, i)) (its absolute value when `absolute`).
template <class T>
void fill_random_as(T* p, long long count, std::uint64_t seed, std::uint64_t stream, float scale,
                    cudaStream_t s, bool absolute = false);

// pixel_logits[pix] = wm . x[pix] (fp32 sums), one warp per pixel: launch_pixel_logits for T.
template <class T>
void launch_pixel_logits_as(const T* x, int batch, int channels, const T* wm,
                            const PatchGeometry& g, float* pixel_logits, cudaStream_t s);

// launch_gather, launch_scatter_add and launch_add_inactive (dynamic.cuh) for T.
template <class T>
void launch_gather_as(const T* map, int channels, const std::int32_t* index,
                      const std::int32_t* count, long long max_patches, const PatchGeometry& g,
                      T* out, cudaStream_t s);
template <class T>
void launch_scatter_add_as(const T* rows, int channels, const std::int32_t* index,
                           const std::int32_t* count, long long max_patches, const PatchGeometry& g,
                           const T* residual, T* out, cudaStream_t s);
template <class T>
void launch_add_inactive_as(const std::uint8_t* mask, int batch, int channels,
                            const PatchGeometry& g, const T* residual, T* out, cudaStream_t s);

// The union form's rows: rows[i] = map[pixels[i]] (gather), map[pixels[i]] = rows[i] (scatter),
// for i < *count; C = channels per pixel.
template <class T>
void launch_pixel_gather_as(const T* map, int channels, const std::int32_t* pixels,
                            const std::int32_t* count, long long max_pixels, T* rows,
                            cudaStream_t s);
template <class T>
void launch_pixel_scatter_as(const T* rows, int channels, const std::int32_t* pixels,
                             const std::int32_t* count, long long max_pixels, T* map,
                             cudaStream_t s);

// Dense k x k im2col: col[(n, oy, ox)][(ky, kx, c)] = src[n][oy*stride - pad + ky][...][c],
// zero outside the map (the weights' OHWI order, so col . w^T is the conv). k = 1, pad 0 is the
// strided projection shortcut's subsampling.
struct Im2colGeometry {
  int batch = 1, h = 1, w = 1, channels = 1, kernel = 3, stride = 1, pad = 1, out_h = 1, out_w = 1;
};
template <class T>
void launch_im2col_as(const T* src, const Im2colGeometry& g, T* col, cudaStream_t s);

// conv2's taps on gathered halos [P][E][E][C] (valid 3x3 at the block's stride, S x S outputs
// per patch): col[(p, oy, ox)][(ky, kx, c)], zero where the halo pixel lies outside the input
// map (so conv1's rows there need not be zero), for p < *count.
template <class T>
void launch_patch_im2col_as(const T* halos, int channels, int stride, const std::int32_t* index,
                            const std::int32_t* count, long long max_patches,
                            const PatchGeometry& g, T* col, cudaStream_t s);

}  // namespace lasnet::kernels::detail
