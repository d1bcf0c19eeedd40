#pragma once
// Split-K's second pass, one kernel for both implicit GEMMs: the fp32/tf32 tiles (ConvArgs,
// conv.cu) and the fp16 one (HalfConvArgs, conv_f16.cu). Each split block stored the raw fp32
// sums of its K slice in partial[split][a_map.rows_max][out_c] (rows in a_map's order); this
// pass adds the slices in slice order (so a rerun repeats bit for bit) and applies the epilogue
// the unsplit kernel would (bias, residual, ReLU, zero outside the map, the e_map's output
// addressing), in fp32, storing in the output's type: one rounding for __half.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "cuda_check.cuh"
#include "row_map.cuh"

namespace lasnet::kernels::detail {

__device__ __forceinline__ float stored_value(float v) {
  return v;
}
__device__ __forceinline__ float stored_value(__half v) {
  return __half2float(v);
}
__device__ __forceinline__ void store_value(float* p, float v) {
  *p = v;
}
__device__ __forceinline__ void store_value(__half* p, float v) {
  *p = __float2half_rn(v);
}

// One thread per 4 channels of a row, up to the device-side row count: rows past the active
// patches cost nothing. The plans split only single-group convs whose out_c is their N and a
// multiple of 4, so channel c's bias is bias[c].
template <class Args>
__global__ void splitk_reduce_kernel(const Args a) {
  const long long rows = active_rows(a.a_map);
  const int cv = a.out_c / 4;
  const long long total = rows * cv;
  const long long slice = a.a_map.rows_max * a.out_c;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long m = i / cv;
    const int c = static_cast<int>(i - m * cv) * 4;
    const float* p = a.partial + m * a.out_c + c;
    float4 v = *reinterpret_cast<const float4*>(p);
    for (int s = 1; s < a.splits; ++s) {
      const float4 w = *reinterpret_cast<const float4*>(p + s * slice);
      v.x += w.x, v.y += w.y, v.z += w.z, v.w += w.w;
    }
    bool zero = false;
    const long long off = row_output(a, m, zero);
    if (off < 0) continue;
    const float e[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      float x = e[k];
      if (a.bias != nullptr) x += stored_value(a.bias[c + k]);
      if (a.residual != nullptr) x += stored_value(a.residual[off + c + k]);
      if (a.relu) x = fmaxf(x, 0.0f);
      if (zero) x = 0.0f;
      store_value(a.out + off + c + k, x);
    }
  }
}

// After the split GEMM, on its stream. The grid covers rows_max (the count lives on the device),
// capped at 16 blocks per SM of an H100; blocks past the count exit at once.
template <class Args>
void launch_splitk_reduce(const Args& a, cudaStream_t stream) {
  const long long total = a.a_map.rows_max * (a.out_c / 4);
  if (total == 0) return;
  const long long blocks = std::min<long long>((total + 255) / 256, 132LL * 16);
  splitk_reduce_kernel<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(a);
  LASNET_CUDA_CHECK_LAUNCH();
}

}  // namespace lasnet::kernels::detail
