#include <algorithm>

#include "cuda_check.cuh"
#include "lasnet/common/error.hpp"
#include "lasnet/common/launch_plans.hpp"
#include "se.cuh"

namespace lasnet::kernels::detail {
namespace {

constexpr int kLanes = 32, kRowGroups = 8;  // pool: 32 channels x 8 row slices per block
constexpr int kThreads = 256;
constexpr int kFcThreads = kSeFcThreads;

// First position in index[0, n) whose value is >= v (index ascending).
__device__ int lower_bound(const std::int32_t* index, int n, int v) {
  int lo = 0, hi = n;
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (index[mid] < v) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// One block per (32 channels, image, slice of the image's rows): the slice in 8 row groups,
// coalesced along channels; its sum and row count into partial[n][slice][c] and rows[n][slice].
__global__ void se_pool_kernel(SeInput in, float* partial, int* counted_rows) {
  const int n = blockIdx.y;
  const int slice = blockIdx.z, slices = gridDim.z;
  const int c = blockIdx.x * kLanes + threadIdx.x;
  const int C = in.channels;
  long long lo = 0, hi = 0;
  const int s2 = in.g.s * in.g.s;
  if (in.index == nullptr) {
    lo = n * in.pixels_per_image;
    hi = lo + in.pixels_per_image;
  } else {
    // The index list is ascending, so image n's patches are one run of it.
    const int p = *in.count;
    lo = static_cast<long long>(lower_bound(in.index, p, n * in.g.per_image)) * s2;
    hi = static_cast<long long>(lower_bound(in.index, p, (n + 1) * in.g.per_image)) * s2;
  }
  const long long chunk = (hi - lo + slices - 1) / slices;
  const long long begin = lo + slice * chunk, end = begin + chunk < hi ? begin + chunk : hi;
  float acc = 0.0f;
  int counted = 0;
  for (long long row = begin + threadIdx.y; row < end; row += kRowGroups) {
    if (in.index != nullptr) {
      const long long patch = row / s2;
      const int within = static_cast<int>(row - patch * s2);
      const int q = in.index[patch] - n * in.g.per_image;
      const int y = (q / in.g.cols) * in.g.s + within / in.g.s;
      const int x = (q % in.g.cols) * in.g.s + within % in.g.s;
      if (y >= in.g.out_h || x >= in.g.out_w) continue;  // a clipped patch's row
    }
    ++counted;
    if (c < C) acc += in.rows[row * C + c];
  }
  __shared__ float sums[kRowGroups][kLanes];
  __shared__ int counts[kRowGroups];
  sums[threadIdx.y][threadIdx.x] = acc;
  if (threadIdx.x == 0) counts[threadIdx.y] = counted;
  __syncthreads();
  if (threadIdx.y != 0) return;
  float total = 0.0f;
  int pixels = 0;
  for (int i = 0; i < kRowGroups; ++i) {
    total += sums[i][threadIdx.x];
    pixels += counts[i];
  }
  const long long at = static_cast<long long>(n) * slices + slice;
  if (c < C) partial[at * C + c] = total;
  if (blockIdx.x == 0 && threadIdx.x == 0) counted_rows[at] = pixels;
}

// One block per image: the means (the slices' sums over their rows) in shared memory, a warp
// per squeezed channel, then a thread per channel for the excitation.
__global__ void se_fc_kernel(int channels, int slices, SeWeights w, const float* partial,
                             const int* counted_rows, float* mean, float* scale) {
  extern __shared__ float shared[];
  float* m = shared;
  float* hidden = shared + channels;
  const int n = blockIdx.x;
  int pixels = 0;
  for (int k = 0; k < slices; ++k) pixels += counted_rows[static_cast<long long>(n) * slices + k];
  for (int c = threadIdx.x; c < channels; c += blockDim.x) {
    float total = 0.0f;
    for (int k = 0; k < slices; ++k)
      total += partial[(static_cast<long long>(n) * slices + k) * channels + c];
    // An image without active pixels has nothing to scale; its mean is 0.
    m[c] = pixels > 0 ? total / static_cast<float>(pixels) : 0.0f;
    mean[static_cast<long long>(n) * channels + c] = m[c];
  }
  __syncthreads();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  for (int j = warp; j < w.se; j += warps) {
    float acc = 0.0f;
    for (int c = lane; c < channels; c += 32)
      acc += w.w1[static_cast<long long>(j) * channels + c] * m[c];
    for (int off = 16; off > 0; off /= 2) acc += __shfl_down_sync(0xffffffffu, acc, off);
    if (lane == 0) hidden[j] = fmaxf(acc + w.b1[j], 0.0f);
  }
  __syncthreads();
  // The excitation: a warp per channel, its lanes along the channel's row of w2 (coalesced; a
  // thread per channel walked a column, a strided load per squeezed channel).
  for (int c = warp; c < channels; c += warps) {
    float acc = 0.0f;
    for (int j = lane; j < w.se; j += 32)
      acc += w.w2[static_cast<long long>(c) * w.se + j] * hidden[j];
    for (int off = 16; off > 0; off /= 2) acc += __shfl_down_sync(0xffffffffu, acc, off);
    if (lane == 0) {
      scale[static_cast<long long>(n) * channels + c] = 1.0f / (1.0f + expf(-(acc + w.b2[c])));
    }
  }
}

__global__ void se_scale_kernel(SeInput in, const float* scale, float* out) {
  const int C = in.channels;
  const int s2 = in.g.s * in.g.s;
  const long long rows = in.index == nullptr ? in.max_rows : static_cast<long long>(*in.count) * s2;
  const long long total = rows * C;
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long row = e / C;
    const int c = static_cast<int>(e - row * C);
    const int n = in.index == nullptr ? static_cast<int>(row / in.pixels_per_image)
                                      : in.index[row / s2] / in.g.per_image;
    out[e] = in.rows[e] * scale[static_cast<long long>(n) * C + c];
  }
}

// Rows one image can have: every pixel (dense), every row of its patches (dynamic).
int se_slices(const SeInput& in) {
  const long long rows = in.index == nullptr
                             ? in.pixels_per_image
                             : static_cast<long long>(in.g.per_image) * in.g.s * in.g.s;
  return static_cast<int>(se_pool_slices(in.channels, in.batch, rows));
}

}  // namespace

long long se_pool_scratch(const SeInput& in) {
  return static_cast<long long>(in.batch) * se_slices(in) * (in.channels + 1);
}

void launch_se(const SeInput& in, const SeWeights& w, float* scratch, float* mean, float* scale,
               float* out, cudaStream_t stream) {
  if (in.batch < 1 || in.channels < 1 || w.se < 1) return;
  const int slices = se_slices(in);
  float* partial = scratch;
  int* counted_rows =
      reinterpret_cast<int*>(scratch + static_cast<long long>(in.batch) * slices * in.channels);
  const dim3 pool_grid((in.channels + kLanes - 1) / kLanes, in.batch, slices);
  se_pool_kernel<<<pool_grid, dim3(kLanes, kRowGroups), 0, stream>>>(in, partial, counted_rows);
  LASNET_CUDA_CHECK_LAUNCH();
  const std::size_t shared = sizeof(float) * (static_cast<std::size_t>(in.channels) + w.se);
  if (shared > 48 * 1024) throw lasnet::Error("SE: too many channels for the FC kernel");
  se_fc_kernel<<<in.batch, kFcThreads, shared, stream>>>(in.channels, slices, w, partial,
                                                         counted_rows, mean, scale);
  LASNET_CUDA_CHECK_LAUNCH();
  const long long work = in.max_rows * in.channels;
  if (work == 0) return;
  const auto blocks =
      static_cast<unsigned>(std::clamp<long long>((work + kThreads - 1) / kThreads, 1, 132LL * 16));
  se_scale_kernel<<<blocks, kThreads, 0, stream>>>(in, scale, out);
  LASNET_CUDA_CHECK_LAUNCH();
}

}  // namespace lasnet::kernels::detail
