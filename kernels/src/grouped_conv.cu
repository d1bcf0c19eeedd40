#include "grouped_conv.cuh"

#include "cuda_check.cuh"
#include "row_map.cuh"

namespace lasnet::kernels::detail {
namespace {

constexpr int kTx = 4;  // output pixels per strip (one thread's pixels)
constexpr int kRy = 4;  // row segments a run of strips covers before it moves along x

// A row segment is a run of rows whose pixels are consecutive along x: a map row (grid) or a
// patch row (patch); strips never cross one, so a strip's pixels share (n, y). A pixel list's
// rows are single pixels.
__host__ __device__ inline int segment_width(const RowMap& m) {
  return m.kind == RowMap::grid ? m.gw : (m.kind == RowMap::patch ? m.r : 1);
}
__host__ __device__ inline int strips_per_segment(int w) {
  return (w + kTx - 1) / kTx;
}
// Strips for `rows` rows, padded to whole runs of kRy segments.
__host__ __device__ inline long long strip_count(long long rows, int w) {
  const long long segs = (rows + w - 1) / w;
  return (segs + kRy - 1) / kRy * kRy * strips_per_segment(w);
}
// First row and length of strip `item`; false when it lies past the active rows.
__device__ __forceinline__ bool strip_rows(long long item, long long rows, int w, long long& m0,
                                           int& len) {
  const int run = kRy * strips_per_segment(w);
  const long long group = item / run;
  const int within = static_cast<int>(item - group * run);
  const long long seg = group * kRy + within % kRy;
  const int x0 = (within / kRy) * kTx;
  m0 = seg * w + x0;
  if (m0 >= rows) return false;
  len = static_cast<int>(min(static_cast<long long>(min(kTx, w - x0)), rows - m0));
  return true;
}

__device__ __forceinline__ float4 ldg4(const float* p) {
  return __ldg(reinterpret_cast<const float4*>(p));
}
__device__ __forceinline__ void fma4(float4& acc, const float4& v, const float4& w) {
  acc.x = fmaf(v.x, w.x, acc.x);
  acc.y = fmaf(v.y, w.y, acc.y);
  acc.z = fmaf(v.z, w.z, acc.z);
  acc.w = fmaf(v.w, w.w, acc.w);
}
__device__ __forceinline__ float lane_of(const float4& v, int i) {
  return i == 0 ? v.x : (i == 1 ? v.y : (i == 2 ? v.z : v.w));
}

// The epilogue of 4 output channels col..col+3 of the row at output offset `off`: the same
// order as the implicit GEMM's (bias, residual, ReLU, then zeroing).
__device__ __forceinline__ void store4(const ConvArgs& a, long long off, bool zero, int col,
                                       float4 v) {
  if (a.bias != nullptr) {
    const float4 b = ldg4(a.bias + col);
    v.x += b.x, v.y += b.y, v.z += b.z, v.w += b.w;
  }
  if (a.residual != nullptr) {  // plain load: the residual may be another kernel's fresh output
    const float4 r = *reinterpret_cast<const float4*>(a.residual + off + col);
    v.x += r.x, v.y += r.y, v.z += r.z, v.w += r.w;
  }
  if (a.relu) {
    v.x = fmaxf(v.x, 0.f), v.y = fmaxf(v.y, 0.f), v.z = fmaxf(v.z, 0.f), v.w = fmaxf(v.w, 0.f);
  }
  if (zero) v = make_float4(0.f, 0.f, 0.f, 0.f);
  *reinterpret_cast<float4*>(a.out + off + col) = v;
}

// blockDim = (channel quads of the block, strips of the block); the block's quad chunk varies
// fastest over blockIdx.x so that all chunks of a pixel range run together.
template <int STRIDE>
__global__ void __launch_bounds__(256) depthwise3x3_kernel(const ConvArgs a, long long strips) {
  __shared__ float4 ws[9][32];  // [tap][quad]: one 16-byte read per tap and thread
  const int chunks = (a.groups / 4) / static_cast<int>(blockDim.x);
  const int chunk = static_cast<int>(blockIdx.x % chunks);
  const long long sblock = blockIdx.x / chunks;
  const int q0 = chunk * static_cast<int>(blockDim.x);
  const int tid = threadIdx.y * blockDim.x + threadIdx.x;
  float* const wsf = reinterpret_cast<float*>(ws);
  for (int i = tid; i < 9 * 4 * static_cast<int>(blockDim.x);
       i += static_cast<int>(blockDim.x * blockDim.y)) {
    const int c = i / 9, tap = i - (i / 9) * 9;  // consecutive i: consecutive weights
    wsf[tap * 128 + c] = __ldg(a.weight + (q0 * 4 + c) * 9 + tap);
  }
  __syncthreads();

  const long long rows = active_rows(a.a_map);
  const int w = segment_width(a.a_map);
  const long long item = sblock * blockDim.y + threadIdx.y;
  long long m0 = 0;
  int len = 0;
  if (item >= strips || !strip_rows(item, rows, w, m0, len)) return;
  const RowPos p = decode_row(a.a_map, m0);
  const int col = (q0 + static_cast<int>(threadIdx.x)) * 4;
  const int y0 = p.y * STRIDE - a.pad, x0 = p.x * STRIDE - a.pad;
  const float* const img = a.src + static_cast<long long>(p.n) * a.src_h * a.src_w * a.src_c + col;
  constexpr int kCols = (kTx - 1) * STRIDE + 3;
  const int cols = (len - 1) * STRIDE + 3;
  float4 acc[kTx];
#pragma unroll
  for (int j = 0; j < kTx; ++j) acc[j] = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
  for (int ky = 0; ky < 3; ++ky) {
    const int hi = y0 + ky;
    if (static_cast<unsigned>(hi) >= static_cast<unsigned>(a.src_h)) continue;
    const float* const row = img + static_cast<long long>(hi) * a.src_w * a.src_c;
    float4 v[kCols];
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      const int wi = x0 + c;
      const bool ok = c < cols && static_cast<unsigned>(wi) < static_cast<unsigned>(a.src_w);
      v[c] =
          ok ? ldg4(row + static_cast<long long>(wi) * a.src_c) : make_float4(0.f, 0.f, 0.f, 0.f);
    }
#pragma unroll
    for (int kx = 0; kx < 3; ++kx) {
      const float4 wv = ws[ky * 3 + kx][threadIdx.x];
#pragma unroll
      for (int j = 0; j < kTx; ++j) fma4(acc[j], v[j * STRIDE + kx], wv);
    }
  }
#pragma unroll
  for (int j = 0; j < kTx; ++j) {
    if (j >= len) break;
    bool zero = false;
    const long long off = row_output(a, m0 + j, zero);
    if (off >= 0) store4(a, off, zero, col, acc[j]);
  }
}

// 128 threads, one chunk of CO output channels of one group per block; the chunks of a pixel
// range are neighbouring blocks (unit fastest over blockIdx.x).
template <int STRIDE, int CO>
__global__ void __launch_bounds__(128) grouped3x3_kernel(const ConvArgs a, long long strips) {
  extern __shared__ float4 smem4[];
  float* const ws = reinterpret_cast<float*>(smem4);  // [tap][cin_g][CO]
  const int chunks_per_group = a.cout_g / CO;
  const int units = a.groups * chunks_per_group;
  const int unit = static_cast<int>(blockIdx.x % units);
  const long long sblock = blockIdx.x / units;
  const int g = unit / chunks_per_group;
  const int co0 = (unit - g * chunks_per_group) * CO;
  const int cin_g = a.cin_g, k_total = 9 * a.cin_g;
  const float* const wg = a.weight + static_cast<long long>(g * a.cout_g + co0) * k_total;
  for (int i = threadIdx.x; i < CO * k_total; i += blockDim.x) {
    const int co = i / k_total, k = i - (i / k_total) * k_total;
    ws[k * CO + co] = __ldg(wg + i);
  }
  __syncthreads();

  const long long rows = active_rows(a.a_map);
  const int w = segment_width(a.a_map);
  const long long item = sblock * blockDim.x + threadIdx.x;
  long long m0 = 0;
  int len = 0;
  if (item >= strips || !strip_rows(item, rows, w, m0, len)) return;
  const RowPos p = decode_row(a.a_map, m0);
  const int y0 = p.y * STRIDE - a.pad, x0 = p.x * STRIDE - a.pad;
  const float* const img = a.src + static_cast<long long>(p.n) * a.src_h * a.src_w * a.src_c +
                           static_cast<long long>(g) * cin_g;
  constexpr int kCols = (kTx - 1) * STRIDE + 3;
  const int cols = (len - 1) * STRIDE + 3;
  float acc[kTx][CO];
#pragma unroll
  for (int j = 0; j < kTx; ++j)
#pragma unroll
    for (int c = 0; c < CO; ++c) acc[j][c] = 0.f;
#pragma unroll
  for (int ky = 0; ky < 3; ++ky) {
    const int hi = y0 + ky;
    if (static_cast<unsigned>(hi) >= static_cast<unsigned>(a.src_h)) continue;
    const float* const row = img + static_cast<long long>(hi) * a.src_w * a.src_c;
    for (int c4 = 0; c4 < cin_g; c4 += 4) {
      float4 v[kCols];
#pragma unroll
      for (int c = 0; c < kCols; ++c) {
        const int wi = x0 + c;
        const bool ok = c < cols && static_cast<unsigned>(wi) < static_cast<unsigned>(a.src_w);
        v[c] = ok ? ldg4(row + static_cast<long long>(wi) * a.src_c + c4)
                  : make_float4(0.f, 0.f, 0.f, 0.f);
      }
#pragma unroll
      for (int kx = 0; kx < 3; ++kx) {
        const float* const wp = ws + ((ky * 3 + kx) * cin_g + c4) * CO;
#pragma unroll
        for (int qi = 0; qi < 4; ++qi) {
          float wr[CO];  // the same address in every thread: a shared-memory broadcast
#pragma unroll
          for (int u = 0; u < CO / 4; ++u) {
            const float4 t = *reinterpret_cast<const float4*>(wp + qi * CO + 4 * u);
            wr[4 * u] = t.x, wr[4 * u + 1] = t.y, wr[4 * u + 2] = t.z, wr[4 * u + 3] = t.w;
          }
#pragma unroll
          for (int j = 0; j < kTx; ++j) {
            const float x = lane_of(v[j * STRIDE + kx], qi);
#pragma unroll
            for (int c = 0; c < CO; ++c) acc[j][c] = fmaf(x, wr[c], acc[j][c]);
          }
        }
      }
    }
  }
  const int col0 = g * a.cout_g + co0;
#pragma unroll
  for (int j = 0; j < kTx; ++j) {
    if (j >= len) break;
    bool zero = false;
    const long long off = row_output(a, m0 + j, zero);
    if (off < 0) continue;
#pragma unroll
    for (int u = 0; u < CO / 4; ++u) {
      store4(a, off, zero, col0 + 4 * u,
             make_float4(acc[j][4 * u], acc[j][4 * u + 1], acc[j][4 * u + 2], acc[j][4 * u + 3]));
    }
  }
}

void check_preconditions(const ConvArgs& a, const ConvPlan& plan) {
  const bool ok = a.kh == 3 && a.kw == 3 && (a.stride == 1 || a.stride == 2) && a.groups > 1 &&
                  a.src_c % 4 == 0 && a.out_c % 4 == 0 && a.aux_weight == nullptr &&
                  plan.block_pixels % kTx == 0 && plan.block_channels % 4 == 0 &&
                  plan.block_channels > 0 && plan.block_pixels > 0;
  if (!ok) throw lasnet::Error("grouped_conv: a conv outside the depthwise/grouped kernels' rule");
}

}  // namespace

void launch_depthwise_conv(const ConvArgs& a, const ConvPlan& plan, cudaStream_t stream) {
  check_preconditions(a, plan);
  const int bx = plan.block_channels / 4, by = plan.block_pixels / kTx;
  if (a.cin_g != 1 || a.cout_g != 1 || (a.groups / 4) % bx != 0 || bx > 32 || bx * by > 256)
    throw lasnet::Error("grouped_conv: not a depthwise conv of this plan");
  const long long strips = strip_count(a.a_map.rows_max, segment_width(a.a_map));
  if (strips == 0) return;
  const long long blocks = (strips + by - 1) / by * ((a.groups / 4) / bx);
  const dim3 block(static_cast<unsigned>(bx), static_cast<unsigned>(by));
  if (a.stride == 1) {
    depthwise3x3_kernel<1><<<static_cast<unsigned>(blocks), block, 0, stream>>>(a, strips);
  } else {
    depthwise3x3_kernel<2><<<static_cast<unsigned>(blocks), block, 0, stream>>>(a, strips);
  }
  LASNET_CUDA_CHECK_LAUNCH();
}

void launch_grouped_conv(const ConvArgs& a, const ConvPlan& plan, cudaStream_t stream) {
  check_preconditions(a, plan);
  const int co = plan.block_channels;
  if (a.cin_g % 4 != 0 || a.cin_g > 64 || a.cout_g % co != 0 || (co != 4 && co != 8 && co != 16) ||
      plan.block_pixels != kTx * 128)
    throw lasnet::Error("grouped_conv: not a grouped conv of this plan");
  const long long strips = strip_count(a.a_map.rows_max, segment_width(a.a_map));
  if (strips == 0) return;
  const long long blocks = (strips + 127) / 128 * a.groups * (a.cout_g / co);
  const std::size_t smem = sizeof(float) * 9 * static_cast<std::size_t>(a.cin_g) * co;
  const auto grid = static_cast<unsigned>(blocks);
  if (co == 16) {
    a.stride == 1 ? grouped3x3_kernel<1, 16><<<grid, 128, smem, stream>>>(a, strips)
                  : grouped3x3_kernel<2, 16><<<grid, 128, smem, stream>>>(a, strips);
  } else if (co == 8) {
    a.stride == 1 ? grouped3x3_kernel<1, 8><<<grid, 128, smem, stream>>>(a, strips)
                  : grouped3x3_kernel<2, 8><<<grid, 128, smem, stream>>>(a, strips);
  } else {
    a.stride == 1 ? grouped3x3_kernel<1, 4><<<grid, 128, smem, stream>>>(a, strips)
                  : grouped3x3_kernel<2, 4><<<grid, 128, smem, stream>>>(a, strips);
  }
  LASNET_CUDA_CHECK_LAUNCH();
}

}  // namespace lasnet::kernels::detail
