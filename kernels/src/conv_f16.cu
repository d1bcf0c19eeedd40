#include "conv_f16.cuh"

#include <cstdint>

#include "cuda_check.cuh"
#include "lasnet/common/error.hpp"
#include "mma_async.cuh"
#include "row_map.cuh"
#include "splitk_reduce.cuh"

namespace lasnet::kernels::detail {
namespace {

constexpr int kBM = kFp16TileRows, kBN = kFp16TileCols, kBK = kFp16ChunkHalves, kStages = 3;
constexpr int kWM = 32, kWN = 32;  // warp tile: 2 x 4 mma.m16n8k16
constexpr int kThreads = (kBM / kWM) * (kBN / kWN) * 32;
constexpr int kChunks = kBK / 8;  // 16-byte chunks (8 halves) per staged row

// A staged row is 64 bytes, so ldmatrix's 8 rows at one chunk would hit 2 bank groups (4-way
// conflict); XOR-ing the chunk with row bits 1-2 spreads them over all 8. Stores use the same map.
__device__ __forceinline__ int swz(int row, int chunk) {
  return row * kBK + ((chunk ^ ((row >> 1) & 3)) * 8);
}

// d += a . b: A 16x16 row-major fragment (4 x f16x2), B 16x8 column-major (2 x f16x2), fp32 C/D.
__device__ __forceinline__ void mma_f16(float (&d)[4], const unsigned (&a)[4], unsigned b0,
                                        unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// The output offset of row m (or -1 to skip it) and whether it is forced to zero: row_output of
// row_map.cuh for these arguments.

__global__ void __launch_bounds__(kThreads) half_conv_kernel(const HalfConvArgs a) {
  __shared__ alignas(128) __half as[kStages][kBM * kBK];
  __shared__ alignas(128) __half bs[kStages][kBN * kBK];
  const long long rows = active_rows(a.a_map);
  // Split-K: the split index is the innermost part of blockIdx.x (as in conv.cu), so the early
  // exit below still sees whole M tiles.
  const int split = static_cast<int>(blockIdx.x % a.splits);
  const long long m0 = static_cast<long long>(blockIdx.x / a.splits) * kBM;
  if (m0 >= rows) return;
  const int n0 = static_cast<int>(blockIdx.y) * kBN;
  const int tid = threadIdx.x;
  const int chunk = tid % kChunks;
  const int k_total = a.kh * a.kw * a.src_c;
  // This block's K tiles: all, or its split's slice (an empty slice stores zeros).
  const int k_tiles_total = (k_total + kBK - 1) / kBK;
  const int per_split = (k_tiles_total + a.splits - 1) / a.splits;
  const int kt_first = split * per_split;
  const int k_tiles = max(0, min(k_tiles_total - kt_first, per_split));

  // This thread's A rows (fixed for the whole reduction): the pixel of the (y0, x0) tap, and
  // y0 far out of range for rows past the count so the bounds test zero-fills them.
  constexpr int kARows = kBM * kChunks / kThreads;
  constexpr int kRowsPerPass = kThreads / kChunks;
  constexpr int kFar = -(1 << 28);
  int a_pix[kARows], a_y0[kARows], a_x0[kARows];
#pragma unroll
  for (int u = 0; u < kARows; ++u) {
    const long long m = m0 + tid / kChunks + u * kRowsPerPass;
    const bool ok = m < rows;
    const RowPos p = decode_row(a.a_map, ok ? m : 0);
    a_y0[u] = ok ? p.y * a.stride - a.pad : kFar;
    a_x0[u] = p.x * a.stride - a.pad;
    a_pix[u] = (p.n * a.src_h + (p.y * a.stride - a.pad)) * a.src_w + a_x0[u];
  }

  const auto load_tile = [&](int stage, int kt) {
    const int k = kt * kBK + chunk * 8;
    const int tap = k / a.src_c;
    const int ci = k - tap * a.src_c;
    const int ky = tap / a.kw, kx = tap - (tap / a.kw) * a.kw;
    const bool k_ok = k < k_total;
#pragma unroll
    for (int u = 0; u < kARows; ++u) {
      const int hi = a_y0[u] + ky, wi = a_x0[u] + kx;
      const bool ok = k_ok && static_cast<unsigned>(hi) < static_cast<unsigned>(a.src_h) &&
                      static_cast<unsigned>(wi) < static_cast<unsigned>(a.src_w);
      const __half* p =
          ok ? a.src + static_cast<long long>(a_pix[u] + ky * a.src_w + kx) * a.src_c + ci : a.src;
      cp_async16(&as[stage][swz(tid / kChunks + u * kRowsPerPass, chunk)], p, ok);
    }
#pragma unroll
    for (int u = 0; u < kBN * kChunks / kThreads; ++u) {
      const int row = tid / kChunks + u * kRowsPerPass;
      const int n = n0 + row;
      const bool ok = k_ok && n < a.cout;
      const __half* p = ok ? a.weight + static_cast<long long>(n) * k_total + k : a.weight;
      cp_async16(&bs[stage][swz(row, chunk)], p, ok);
    }
  };

  const int warp = tid / 32, lane = tid % 32;
  const int wm = (warp / (kBN / kWN)) * kWM, wn = (warp % (kBN / kWN)) * kWN;
  float acc[kWM / 16][kWN / 8][4] = {};

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < k_tiles) load_tile(s, kt_first + s);
    cp_async_commit();
  }
  for (int kt = 0; kt < k_tiles; ++kt) {
    cp_async_wait<kStages - 2>();
    __syncthreads();  // tile kt landed for every thread; slot (kt - 1) % kStages is free
    const int next = kt + kStages - 1;
    if (next < k_tiles) load_tile(next % kStages, kt_first + next);
    cp_async_commit();
    const __half* at = as[kt % kStages];
    const __half* bt = bs[kt % kStages];
#pragma unroll
    for (int ks = 0; ks < kBK / 16; ++ks) {
      // ldmatrix.x4: lanes 8j..8j+7 address the rows of 8x8 matrix j. For A (16x16 at row r0):
      // matrices (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15)
      // = a0..a3 of mma.m16n8k16. For B, stored [n][k] (the .col operand): matrices
      // (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15) = b0, b1 of two n8
      // tiles.
      unsigned af[kWM / 16][4];
#pragma unroll
      for (int mi = 0; mi < kWM / 16; ++mi) {
        const int r = wm + mi * 16 + (lane % 8) + ((lane / 8) % 2) * 8;
        ldmatrix_x4(af[mi], at + swz(r, ks * 2 + lane / 16));
      }
      unsigned bf[kWN / 16][4];
#pragma unroll
      for (int nj = 0; nj < kWN / 16; ++nj) {
        const int r = wn + nj * 16 + (lane % 8) + (lane / 16) * 8;
        ldmatrix_x4(bf[nj], bt + swz(r, ks * 2 + (lane / 8) % 2));
      }
#pragma unroll
      for (int mi = 0; mi < kWM / 16; ++mi) {
#pragma unroll
        for (int ni = 0; ni < kWN / 8; ++ni) {
          mma_f16(acc[mi][ni], af[mi], bf[ni / 2][(ni % 2) * 2], bf[ni / 2][(ni % 2) * 2 + 1]);
        }
      }
    }
  }
  cp_async_wait<0>();

  // Epilogue from the accumulators: c0, c1 are (row g, cols 2t, 2t+1), c2, c3 row g + 8
  // (g = lane / 4, t = lane % 4); one rounding to half after bias, residual and ReLU in fp32.
  const int g = lane / 4, t = lane % 4;
  if (a.splits > 1) {
    // Raw fp32 sums at dense rows (cout = out_c): the reduce pass does the epilogue.
    float* const part = a.partial + split * a.a_map.rows_max * a.out_c;
#pragma unroll
    for (int mi = 0; mi < kWM / 16; ++mi) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const long long m = m0 + wm + mi * 16 + g + h * 8;
        if (m >= rows) continue;
#pragma unroll
        for (int ni = 0; ni < kWN / 8; ++ni) {
          const int n = n0 + wn + ni * 8 + t * 2;
          if (n >= a.cout) continue;
          *reinterpret_cast<float2*>(part + m * a.out_c + n) =
              make_float2(acc[mi][ni][h * 2], acc[mi][ni][h * 2 + 1]);
        }
      }
    }
    return;
  }
#pragma unroll
  for (int mi = 0; mi < kWM / 16; ++mi) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const long long m = m0 + wm + mi * 16 + g + h * 8;
      if (m >= rows) continue;
      bool zero = false;
      const long long off = row_output(a, m, zero);
      if (off < 0) continue;
#pragma unroll
      for (int ni = 0; ni < kWN / 8; ++ni) {
        const int n = n0 + wn + ni * 8 + t * 2;
        if (n >= a.cout) continue;
        float v0 = acc[mi][ni][h * 2], v1 = acc[mi][ni][h * 2 + 1];
        if (a.bias != nullptr) {
          const float2 b = __half22float2(*reinterpret_cast<const __half2*>(a.bias + n));
          v0 += b.x, v1 += b.y;
        }
        if (a.residual != nullptr) {
          const float2 r = __half22float2(*reinterpret_cast<const __half2*>(a.residual + off + n));
          v0 += r.x, v1 += r.y;
        }
        if (a.relu != 0) v0 = fmaxf(v0, 0.0f), v1 = fmaxf(v1, 0.0f);
        if (zero) v0 = v1 = 0.0f;
        *reinterpret_cast<__half2*>(a.out + off + n) = __floats2half2_rn(v0, v1);
      }
    }
  }
}

bool aligned16(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) % 16 == 0;
}

}  // namespace

ConvShape shape_of(const HalfConvArgs& a, long long rows_hint) {
  ConvShape shape;
  shape.src_c = a.src_c, shape.cin_g = a.src_c, shape.out_c = a.out_c, shape.cout_g = a.cout;
  shape.kernel = a.kh, shape.stride = a.stride, shape.rows = rows_hint;
  return shape;
}

int plan_half_conv_splits(const HalfConvArgs& a, long long rows_hint, int sm_count) {
  return lasnet::kernels::fp16_igemm_splits(shape_of(a, rows_hint), sm_count);
}

long long splitk_workspace_floats(const HalfConvArgs& a) {
  return a.splits > 1 ? a.splits * a.a_map.rows_max * a.out_c : 0;
}

void check_half_conv(const HalfConvArgs& a) {
  if (a.src_c % 8 != 0 || a.cout % 8 != 0 || a.out_c % 8 != 0) {
    throw lasnet::Error("fp16 implicit GEMM: channels must be multiples of 8");
  }
  if (!aligned16(a.src) || !aligned16(a.weight) || !aligned16(a.out) ||
      (a.residual != nullptr && !aligned16(a.residual)) ||
      (a.bias != nullptr && !aligned16(a.bias))) {
    throw lasnet::Error("fp16 implicit GEMM: operands must be 16-byte aligned");
  }
  if (a.splits < 1) throw lasnet::Error("fp16 implicit GEMM: splits must be at least 1");
  if (a.splits > 1 && (a.cout != a.out_c || a.partial == nullptr || !aligned16(a.partial))) {
    throw lasnet::Error(
        "fp16 implicit GEMM: split-K needs cout = out_c and a 16-byte aligned workspace");
  }
}

void launch_half_conv(const HalfConvArgs& a, cudaStream_t stream) {
  check_half_conv(a);
  const long long m_tiles = (a.a_map.rows_max + kBM - 1) / kBM;
  if (m_tiles == 0) return;
  const dim3 grid(static_cast<unsigned>(m_tiles * a.splits),
                  static_cast<unsigned>((a.cout + kBN - 1) / kBN));
  half_conv_kernel<<<grid, kThreads, 0, stream>>>(a);
  LASNET_CUDA_CHECK_LAUNCH();
  if (a.splits > 1) launch_splitk_reduce(a, stream);
}

}  // namespace lasnet::kernels::detail
