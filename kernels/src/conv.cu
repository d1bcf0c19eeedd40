#include <algorithm>
#include <cstdint>

#include "conv.cuh"
#include "cuda_check.cuh"
#include "grouped_conv.cuh"
#include "mma_async.cuh"
#include "row_map.cuh"
#include "splitk_reduce.cuh"

namespace lasnet::kernels::detail {
namespace {

// Tile configurations. The FFMA (fp32) kernels reduce in chunks of 16 floats over 4 pipeline
// stages; the tensor-core (tf32) kernels in chunks of 32 over 3 stages, with 64x64 warp tiles
// where the block allows: mma.sync reads its fragments from shared memory, and a 64x32 warp
// tile moved as many shared-memory bytes per MMA as the tensor cores could consume.
template <int BK>
constexpr int lds() {
  return BK + 4;  // padded smem row: conflict-free ldmatrix / float4 reads
}

// wgmma (WG) stages rows unpadded, 128 bytes each, in the 128-byte swizzle its shared-memory
// descriptors describe: 16-byte vector j of row r sits at vector j ^ (r % 8) of that row.
template <int BK, bool WG>
constexpr int row_floats() {
  return WG ? BK : lds<BK>();
}
template <int BM, int BN, int WM, int WN, bool WG>
constexpr int threads_of() {
  return WG ? (BM / 64) * 128 : (BM / WM) * (BN / WN) * 32;  // WG: a warpgroup per 64 rows
}
template <int BM, int BN, bool MMA>
constexpr int c_stride() {
  return BN + (MMA ? 8 : 4);
}
// The pipeline stages, or the output tile that reuses them, whichever is larger.
template <int BM, int BN, bool MMA, int BK, int ST, bool WG = false>
constexpr int smem_main() {
  constexpr int pipe = ST * (BM + BN) * row_floats<BK, WG>() * 4;
  constexpr int cst = BM * c_stride<BM, BN, MMA>() * 4;
  return pipe > cst ? pipe : cst;
}
// smem_main plus the per-row output offsets and flags. WG: the swizzle atoms must start on
// 1024-byte boundaries and dynamic shared memory is only 16-byte aligned, so 1 KiB of slack
// lets the kernel align its base.
template <int BM, int BN, bool MMA, int BK, int ST, bool WG = false>
constexpr int smem_bytes() {
  return smem_main<BM, BN, MMA, BK, ST, WG>() + BM * 8 + BM * 4 + (WG ? 1024 : 0);
}

__device__ __forceinline__ std::uint64_t wgmma_desc(const float* smem_tile) {
  // K-major operand, 128-byte swizzle (layout type 1 in bits 62-63), 8-row atoms 1024 bytes
  // apart (stride byte offset, bits 32-45, in 16-byte units); the leading offset is unused
  // in this layout. Start address in 16-byte units, bits 0-13.
  const auto a = static_cast<std::uint64_t>(__cvta_generic_to_shared(smem_tile));
  return ((a & 0x3FFFF) >> 4) | (std::uint64_t{1024 >> 4} << 32) | (std::uint64_t{1} << 62);
}
__device__ __forceinline__ void wgmma_fence() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_commit() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void wgmma_wait() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}
// cp.async writes through the generic proxy, wgmma reads through the async one.
__device__ __forceinline__ void fence_proxy_async() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}
// D[64 x N] += A[64 x 8] B[8 x N], tf32 in, fp32 accumulators (d: the m64nNk8 fragment).
template <int N>
__device__ __forceinline__ void wgmma_tf32(float (&d)[N / 2], std::uint64_t da, std::uint64_t db) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  if constexpr (N == 128) {
    asm volatile(
        "wgmma.mma_async.sync.aligned.m64n128k8.f32.tf32.tf32 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"
        "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,"
        "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,"
        "%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, "
        "%64, %65, 1, 1, 1;\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),
          "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),
          "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]),
          "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]),
          "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]),
          "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]),
          "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]),
          "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]),
          "+f"(d[63])
        : "l"(da), "l"(db));
  } else {
    static_assert(N == 64, "wgmma_tf32: N is 64 or 128");
    asm volatile(
        "wgmma.mma_async.sync.aligned.m64n64k8.f32.tf32.tf32 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"
        "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, "
        "%32, %33, 1, 1, 1;\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),
          "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),
          "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]),
          "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]),
          "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "l"(da), "l"(db));
  }
#else
  (void)d, (void)da, (void)db;
  __trap();  // built without sm_90a: the host never selects this path (wgmma_supported)
#endif
}

// Epilogue of one element, shared by both kernels. `off` is the row's output offset (floats).
__device__ __forceinline__ void store_one(const ConvArgs& a, long long off, bool zero,
                                          int col_global, float acc) {
  float v = acc;
  if (a.bias != nullptr) v += a.bias[col_global];
  if (a.residual != nullptr) v += a.residual[off + col_global];
  if (a.relu) v = fmaxf(v, 0.0f);
  if (zero) v = 0.0f;
  a.out[off + col_global] = v;
}

template <int BM, int BN, int WM, int WN, bool MMA, int BK, int ST, bool WG>
__global__ void __launch_bounds__(threads_of<BM, BN, WM, WN, WG>(), (WG && BM <= 128) ? 2 : 1)
    igemm_kernel(const ConvArgs a) {
  constexpr int kThreads = threads_of<BM, BN, WM, WN, WG>();
  constexpr int kBK = BK, kStages = ST, kLds = row_floats<BK, WG>();
  static_assert(!WG || (MMA && BK == 32 && BM % 64 == 0), "wgmma: 128-byte rows of tf32");
  // Prefetch distance in chunks. WG with 4 or more stages keeps one wgmma group in flight
  // behind the next chunk's loads, so a stage is refilled two chunks after its last reader.
  constexpr int kPD = WG && ST >= 4 ? ST - 2 : ST - 1;
  constexpr int kWgInFlight = WG && kPD == ST - 2 ? 1 : 0;
  constexpr int kVpr = kBK / 4;                  // 16-byte vectors per row per chunk
  constexpr int kRowsPerPass = kThreads / kVpr;  // rows one pass of the block loads
  constexpr int kAVecs = BM * kVpr / kThreads;   // 16-byte vectors of A per thread per chunk
  constexpr int kBVecs = BN * kVpr / kThreads;
  static_assert(kAVecs >= 1 && kBVecs >= 1 && kThreads % kVpr == 0, "tile too small");
  extern __shared__ float4 smem4[];
  float* const smem =
      WG ? reinterpret_cast<float*>((reinterpret_cast<std::uintptr_t>(smem4) + 1023) &
                                    ~std::uintptr_t{1023})
         : reinterpret_cast<float*>(smem4);
  float* const as = smem;
  float* const bs = smem + kStages * BM * kLds;

  const long long rows = active_rows(a.a_map);
  const int n_tiles = (a.cout_g + BN - 1) / BN;
  // Split-K: the split index is the innermost part of the block index, so the early exit below
  // still sees whole M tiles.
  const bool split_k = a.splits > 1;
  const int split = split_k ? static_cast<int>(blockIdx.x % a.splits) : 0;
  const long long bid = split_k ? blockIdx.x / a.splits : blockIdx.x;
  const int tile_n = static_cast<int>(bid % n_tiles);
  const long long rest = bid / n_tiles;
  const int g = static_cast<int>(rest % a.groups);
  const long long m0 = (rest / a.groups) * BM;
  if (m0 >= rows) return;
  const int n0 = tile_n * BN;
  const int tid = threadIdx.x;
  const int kv = (tid % kVpr) * 4;  // this thread's float offset inside each chunk
  const int k_total = a.kh * a.kw * a.cin_g;

  // Rows this thread loads: pixel index of the (y0, x0) tap and y0, x0 (y0 far out of range
  // for rows past the end, so the bounds test zero-fills them), fixed for the whole reduction.
  constexpr int kFar = -(1 << 28);
  int a_pix[kAVecs], a_y0[kAVecs], a_x0[kAVecs];
#pragma unroll
  for (int u = 0; u < kAVecs; ++u) {
    const long long m = m0 + tid / kVpr + u * kRowsPerPass;
    const bool ok = m < rows;
    const RowPos p = decode_row(a.a_map, ok ? m : 0);
    a_y0[u] = ok ? p.y * a.stride - a.pad : kFar;
    a_x0[u] = p.x * a.stride - a.pad;
    a_pix[u] = (p.n * a.src_h + (p.y * a.stride - a.pad)) * a.src_w + a_x0[u];
  }
  const float* const src_g = a.src + static_cast<long long>(g) * a.cin_g;
  const float* const w_g = a.weight + static_cast<long long>(g) * a.cout_g * k_total;

  // Where this thread's vector of a staged row goes (WG: swizzled, see row_floats).
  const auto slot = [&](int row) {
    return WG ? row * kLds + (((kv / 4) ^ (row & 7)) * 4) : row * kLds + kv;
  };
  const auto load_chunk = [&](int stage, int chunk) {
    const int k = chunk * kBK + kv;
    const int tap = k / a.cin_g;
    const int ci = k - tap * a.cin_g;
    const int ky = tap / a.kw, kx = tap - (tap / a.kw) * a.kw;
    const bool k_ok = k < k_total;
    float* const as_s = as + stage * BM * kLds;
#pragma unroll
    for (int u = 0; u < kAVecs; ++u) {
      const int hi = a_y0[u] + ky, wi = a_x0[u] + kx;
      const bool ok = k_ok && static_cast<unsigned>(hi) < static_cast<unsigned>(a.src_h) &&
                      static_cast<unsigned>(wi) < static_cast<unsigned>(a.src_w);
      const float* p =
          ok ? src_g + static_cast<long long>(a_pix[u] + ky * a.src_w + kx) * a.src_c + ci : a.src;
      cp_async16(as_s + slot(tid / kVpr + u * kRowsPerPass), p, ok);
    }
    float* const bs_s = bs + stage * BN * kLds;
#pragma unroll
    for (int u = 0; u < kBVecs; ++u) {
      const int row = tid / kVpr + u * kRowsPerPass;
      const int n = n0 + row;
      const bool ok = k_ok && n < a.cout_g;
      const float* p = ok ? w_g + static_cast<long long>(n) * k_total + k : a.weight;
      cp_async16(bs_s + slot(row), p, ok);
    }
  };

  const int warp = tid / 32, lane = tid % 32;
  const int wm = (warp / (BN / WN)) * WM, wn = (warp % (BN / WN)) * WN;
  constexpr int kMi = MMA ? WM / 16 : WM / 8;  // MMA: 16-row fragments; FFMA: rows per thread
  constexpr int kNi = MMA ? WN / 8 : WN / 4;   // MMA: 8-col fragments;  FFMA: cols per thread
  constexpr int kAcc = MMA ? 4 : 1;
  float acc[WG ? 1 : kMi][WG ? 1 : kNi][kAcc];
#pragma unroll
  for (int i = 0; i < kMi; ++i)
#pragma unroll
    for (int j = 0; j < kNi; ++j)
#pragma unroll
      for (int q = 0; q < kAcc; ++q) acc[WG ? 0 : i][WG ? 0 : j][q] = 0.0f;
  // WG: each warpgroup's 64 rows x BN accumulators in the m64nNk8 fragment layout.
  float wacc[WG ? BN / 2 : 1];
#pragma unroll
  for (int i = 0; i < (WG ? BN / 2 : 1); ++i) wacc[i] = 0.0f;
  const int wgroup = tid / 128;

  const bool do_aux = a.aux_weight != nullptr && tile_n == 0 && tid < BM;  // never split
  float aux_acc = 0.0f;
  // This block's K chunks: all, or its split's slice (an empty slice stores zeros).
  const int chunks_total = (k_total + kBK - 1) / kBK;
  const int per_split = (chunks_total + a.splits - 1) / a.splits;
  const int c_first = split_k ? split * per_split : 0;
  const int chunks = split_k ? max(0, min(chunks_total - c_first, per_split)) : chunks_total;
#pragma unroll
  for (int s = 0; s < kPD; ++s) {
    if (s < chunks) load_chunk(s, c_first + s);
    cp_async_commit();
  }
  for (int c = 0; c < chunks; ++c) {
    cp_async_wait<kPD - 1>();
    if constexpr (WG) fence_proxy_async();
    __syncthreads();
    {
      const int pf = c + kPD;
      if (pf < chunks) load_chunk(pf % kStages, c_first + pf);
      cp_async_commit();
    }
    const float* const as_s = as + (c % kStages) * BM * kLds;
    const float* const bs_s = bs + (c % kStages) * BN * kLds;
    if (do_aux) {  // float4 reads: rows kLds floats apart are conflict-free per quarter-warp
#pragma unroll
      for (int kk = 0; kk < kBK; kk += 4) {
        const int k = c * kBK + kk;
        if (k < k_total) {  // k_total % 4 == 0 on the tiled path
          const int j = kk / 4;
          const float4 v = *reinterpret_cast<const float4*>(as_s + tid * kLds +
                                                            (WG ? ((j ^ (tid & 7)) * 4) : kk));
          const float4 w = __ldg(reinterpret_cast<const float4*>(a.aux_weight + k));
          aux_acc = fmaf(v.x, w.x, fmaf(v.y, w.y, fmaf(v.z, w.z, fmaf(v.w, w.w, aux_acc))));
        }
      }
    }
    if constexpr (WG) {
      // Both operands straight from the swizzled stage; 8 tf32 of K (32 bytes) per wgmma,
      // stepped by moving the descriptors' start inside the 128-byte swizzle atom. At most
      // kWgInFlight groups stay pending: the next refill of this stage comes after that.
      wgmma_fence();
#pragma unroll
      for (int k8 = 0; k8 < kBK; k8 += 8) {
        wgmma_tf32<BN>(wacc, wgmma_desc(as_s + wgroup * 64 * kLds + k8), wgmma_desc(bs_s + k8));
      }
      wgmma_commit();
      wgmma_wait<kWgInFlight>();
    } else if constexpr (MMA) {
      // Fragments by ldmatrix: an 8x8 b16 matrix is an 8x4 tf32 block, and lane l receives
      // element (l / 4, l % 4) of each, which is the m16n8k8 tf32 fragment layout. The fp32
      // bits go to the tensor cores as they are (they read the tf32 part: round toward zero).
      const int mat = lane / 8, mr = lane % 8;
#pragma unroll
      for (int k8 = 0; k8 < kBK; k8 += 8) {
        unsigned af[kMi][4], bf[kNi][2];
#pragma unroll
        for (int i = 0; i < kMi; ++i) {
          const float* r = as_s + (wm + i * 16 + mr + (mat & 1) * 8) * kLds + k8 + (mat >> 1) * 4;
          ldmatrix_x4(af[i], r);
        }
#pragma unroll
        for (int j = 0; j < kNi; j += 2) {
          const float* r = bs_s + (wn + (j + (mat >> 1)) * 8 + mr) * kLds + k8 + (mat & 1) * 4;
          unsigned q[4];
          ldmatrix_x4(q, r);
          bf[j][0] = q[0], bf[j][1] = q[1], bf[j + 1][0] = q[2], bf[j + 1][1] = q[3];
        }
#pragma unroll
        for (int i = 0; i < kMi; ++i)
#pragma unroll
          for (int j = 0; j < kNi; ++j) {
            asm volatile(
                "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, "
                "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                : "+f"(acc[i][j][0]), "+f"(acc[i][j][1]), "+f"(acc[i][j][2]), "+f"(acc[i][j][3])
                : "r"(af[i][0]), "r"(af[i][1]), "r"(af[i][2]), "r"(af[i][3]), "r"(bf[j][0]),
                  "r"(bf[j][1]));
          }
      }
    } else {
      const int tm = lane % 8, tn = lane / 8;
#pragma unroll
      for (int k4 = 0; k4 < kBK; k4 += 4) {
        float4 av[kMi], bv[kNi];
#pragma unroll
        for (int i = 0; i < kMi; ++i)
          av[i] = *reinterpret_cast<const float4*>(as_s + (wm + tm + 8 * i) * kLds + k4);
#pragma unroll
        for (int j = 0; j < kNi; ++j)
          bv[j] = *reinterpret_cast<const float4*>(bs_s + (wn + tn + 4 * j) * kLds + k4);
#pragma unroll
        for (int i = 0; i < kMi; ++i)
#pragma unroll
          for (int j = 0; j < kNi; ++j) {
            float s = acc[i][j][0];
            s = fmaf(av[i].x, bv[j].x, s);
            s = fmaf(av[i].y, bv[j].y, s);
            s = fmaf(av[i].z, bv[j].z, s);
            s = fmaf(av[i].w, bv[j].w, s);
            acc[i][j][0] = s;
          }
      }
    }
  }
  cp_async_wait<0>();
  if constexpr (WG) wgmma_wait<0>();
  __syncthreads();  // the pipeline buffers become the output tile

  constexpr int kCs = c_stride<BM, BN, MMA>();
  float* const cs = smem;
  constexpr int kMain = smem_main<BM, BN, MMA, BK, ST, WG>();
  long long* const row_off = reinterpret_cast<long long*>(reinterpret_cast<char*>(smem) + kMain);
  int* const row_zero = reinterpret_cast<int*>(row_off + BM);
  if constexpr (WG) {
    // m64nNk8 fragment: register 4q + e of a thread is row 16 * warp + lane / 4 (+ 8 for
    // e >= 2) and column 8q + 2 * (lane % 4) + e % 2 of its warpgroup's 64 x BN block.
    const int r0 = wgroup * 64 + (warp % 4) * 16 + lane / 4, c0 = 2 * (lane % 4);
#pragma unroll
    for (int q = 0; q < BN / 8; ++q) {
      float* p = cs + r0 * kCs + q * 8 + c0;
      *reinterpret_cast<float2*>(p) = make_float2(wacc[4 * q], wacc[4 * q + 1]);
      *reinterpret_cast<float2*>(p + 8 * kCs) = make_float2(wacc[4 * q + 2], wacc[4 * q + 3]);
    }
  } else if constexpr (MMA) {
    const int gq = lane / 4, t = lane % 4;
#pragma unroll
    for (int i = 0; i < kMi; ++i)
#pragma unroll
      for (int j = 0; j < kNi; ++j) {
        float* c0 = cs + (wm + i * 16 + gq) * kCs + wn + j * 8 + 2 * t;
        *reinterpret_cast<float2*>(c0) = make_float2(acc[i][j][0], acc[i][j][1]);
        *reinterpret_cast<float2*>(c0 + 8 * kCs) = make_float2(acc[i][j][2], acc[i][j][3]);
      }
  } else {
    const int tm = lane % 8, tn = lane / 8;
#pragma unroll
    for (int i = 0; i < kMi; ++i)
#pragma unroll
      for (int j = 0; j < kNi; ++j) cs[(wm + tm + 8 * i) * kCs + wn + tn + 4 * j] = acc[i][j][0];
  }
  if (do_aux && m0 + tid < rows) a.aux[m0 + tid] = aux_acc;
  for (int r = tid; r < BM; r += kThreads) {
    const long long m = m0 + r;
    bool zero = false;
    if (split_k) {
      row_off[r] = m < rows ? m * a.out_c : -1;  // raw sums, dense rows: the reduce maps them
    } else {
      row_off[r] = m < rows ? row_output(a, m, zero) : -1;
    }
    row_zero[r] = zero ? 1 : 0;
  }
  __syncthreads();
  float* const out = split_k ? a.partial + split * a.a_map.rows_max * a.out_c : a.out;
  const float* const residual = split_k ? nullptr : a.residual;
  const float* const bias = split_k ? nullptr : a.bias;
  const bool relu = !split_k && a.relu;

  // Up to 16 output vectors per thread at a time, their residual loads issued before any store:
  // the epilogue of a short-K conv (conv3 + scatter-add) is a memory stream, and one load in
  // flight per thread left it far under the bandwidth. The accumulators are dead by now, so
  // the registers are free: 16 rather than 4 took conv3 + scatter-add at batch 128 from
  // 28.5 to 27.2 ms (fp32) and 13.4 to 12.6 ms (tf32) summed over ResNet-101's configurations.
  const int col0 = g * a.cout_g;
  constexpr int kIters = BM * BN / 4 / kThreads;
  // The WG tiles fit their 128 registers (two 128x64 blocks or one 512-thread 256x128 block per
  // SM) only with 8 in flight.
  constexpr int kU = kIters < (WG ? 8 : 16) ? kIters : (WG ? 8 : 16);
  static_assert(kIters % kU == 0, "epilogue unroll");
  for (int it = 0; it < kIters; it += kU) {
    long long off[kU];
    int col[kU], rr[kU];
    float4 q[kU];
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int v = tid + (it + u) * kThreads;
      rr[u] = v / (BN / 4);
      col[u] = (v % (BN / 4)) * 4;
      off[u] = row_off[rr[u]];
      q[u] = make_float4(0.f, 0.f, 0.f, 0.f);
      const int n = n0 + col[u];
      if (residual != nullptr && off[u] >= 0 && n + 4 <= a.cout_g)
        q[u] = *reinterpret_cast<const float4*>(residual + off[u] + col0 + n);
    }
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int r = rr[u], c = col[u];
      const int n = n0 + c;
      if (off[u] < 0 || n >= a.cout_g) continue;
      const bool zero = row_zero[r] != 0;
      const float4 sv = *reinterpret_cast<const float4*>(cs + r * kCs + c);
      const int cg = col0 + n;
      if (n + 4 <= a.cout_g) {
        float4 val = sv;
        if (bias != nullptr) {
          const float4 b = *reinterpret_cast<const float4*>(bias + cg);
          val.x += b.x, val.y += b.y, val.z += b.z, val.w += b.w;
        }
        val.x += q[u].x, val.y += q[u].y, val.z += q[u].z, val.w += q[u].w;  // 0 if none
        if (relu) {
          val.x = fmaxf(val.x, 0.f), val.y = fmaxf(val.y, 0.f);
          val.z = fmaxf(val.z, 0.f), val.w = fmaxf(val.w, 0.f);
        }
        if (zero) val = make_float4(0.f, 0.f, 0.f, 0.f);
        *reinterpret_cast<float4*>(out + off[u] + cg) = val;
      } else {
        const float e[4] = {sv.x, sv.y, sv.z, sv.w};
        for (int k = 0; k < 4 && n + k < a.cout_g; ++k) {
          if (split_k) {
            out[off[u] + cg + k] = e[k];
          } else {
            store_one(a, off[u], zero, cg + k, e[k]);
          }
        }
      }
    }
  }
}

// One thread per output element; any channel counts and groups.
__global__ void direct_conv_kernel(const ConvArgs a) {
  const long long rows = active_rows(a.a_map);
  const int cols = a.groups * a.cout_g;
  const long long total = rows * cols;
  const int k_total = a.kh * a.kw * a.cin_g;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long m = i / cols;
    const int col = static_cast<int>(i % cols);
    const int g = col / a.cout_g;
    const RowPos p = decode_row(a.a_map, m);
    const int y0 = p.y * a.stride - a.pad, x0 = p.x * a.stride - a.pad;
    const float* w = a.weight + static_cast<long long>(col) * k_total;
    float acc = 0.0f;
    for (int ky = 0; ky < a.kh; ++ky) {
      const int hi = y0 + ky;
      if (hi < 0 || hi >= a.src_h) continue;
      for (int kx = 0; kx < a.kw; ++kx) {
        const int wi = x0 + kx;
        if (wi < 0 || wi >= a.src_w) continue;
        const float* s = a.src +
                         ((static_cast<long long>(p.n) * a.src_h + hi) * a.src_w + wi) * a.src_c +
                         static_cast<long long>(g) * a.cin_g;
        const float* wt = w + (ky * a.kw + kx) * a.cin_g;
        for (int ci = 0; ci < a.cin_g; ++ci) acc = fmaf(s[ci], wt[ci], acc);
      }
    }
    bool zero = false;
    const long long off = row_output(a, m, zero);
    if (off >= 0) store_one(a, off, zero, col, acc);
    if (a.aux_weight != nullptr && col == 0) {  // fused masker: 1x1, groups 1
      float l = 0.0f;
      const int hi = y0, wi = x0;
      if (hi >= 0 && hi < a.src_h && wi >= 0 && wi < a.src_w) {
        const float* s =
            a.src + ((static_cast<long long>(p.n) * a.src_h + hi) * a.src_w + wi) * a.src_c;
        for (int ci = 0; ci < a.cin_g; ++ci) l = fmaf(s[ci], a.aux_weight[ci], l);
      }
      a.aux[m] = l;
    }
  }
}

// The taps of every output pixel side by side, col[m][(ky, kx, ci)] (the weights' K order),
// zeros where a tap falls outside the map: the A operand of a library GEMM. One thread per
// 4 floats; consecutive threads take consecutive channels of one tap, so both the reads and
// the writes are coalesced.
__global__ void im2col_kernel(const ConvArgs a, float* col) {
  const long long rows = active_rows(a.a_map);
  const int k_total = a.kh * a.kw * a.cin_g;
  const int kv = k_total / 4;
  const long long total = rows * kv;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long m = i / kv;
    const int k = static_cast<int>(i - m * kv) * 4;
    const int tap = k / a.cin_g, ci = k - tap * a.cin_g;
    const int ky = tap / a.kw, kx = tap - ky * a.kw;
    const RowPos p = decode_row(a.a_map, m);
    const int hi = p.y * a.stride - a.pad + ky, wi = p.x * a.stride - a.pad + kx;
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (static_cast<unsigned>(hi) < static_cast<unsigned>(a.src_h) &&
        static_cast<unsigned>(wi) < static_cast<unsigned>(a.src_w)) {
      v = __ldg(reinterpret_cast<const float4*>(
          a.src + ((static_cast<long long>(p.n) * a.src_h + hi) * a.src_w + wi) * a.src_c + ci));
    }
    *reinterpret_cast<float4*>(col + m * k_total + k) = v;
  }
}

template <int BM, int BN, int WM, int WN, bool MMA, int BK, int ST, bool WG = false>
struct Tile {
  static void launch(const ConvArgs& a, cudaStream_t stream) {
    constexpr int threads = threads_of<BM, BN, WM, WN, WG>();
    const long long m_tiles = (a.a_map.rows_max + BM - 1) / BM;
    const long long blocks = m_tiles * a.groups * ((a.cout_g + BN - 1) / BN) * a.splits;
    if (blocks == 0) return;
    igemm_kernel<BM, BN, WM, WN, MMA, BK, ST, WG>
        <<<static_cast<unsigned>(blocks), threads, smem_bytes<BM, BN, MMA, BK, ST, WG>(), stream>>>(
            a);
    LASNET_CUDA_CHECK_LAUNCH();
  }
  static void set_smem_limit() {
    LASNET_CUDA_CHECK(cudaFuncSetAttribute(igemm_kernel<BM, BN, WM, WN, MMA, BK, ST, WG>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           smem_bytes<BM, BN, MMA, BK, ST, WG>()));
  }
};
// fp32 (FFMA): 8 warps of 64x32 (128-row tiles), 4 warps of 32x32 (64x64).
using Ffma128x128 = Tile<128, 128, 64, 32, false, 16, 4>;
using Ffma128x64 = Tile<128, 64, 64, 32, false, 16, 4>;
using Ffma64x64 = Tile<64, 64, 32, 32, false, 16, 4>;
// tf32 (mma.sync m16n8k8): 4 warps each.
using Mma128x128 = Tile<128, 128, 64, 64, true, 32, 3>;
using Mma128x64 = Tile<128, 64, 64, 32, true, 32, 3>;
using Mma64x64 = Tile<64, 64, 32, 32, true, 32, 4>;
// tf32 (wgmma m64nNk8, sm_90a): a warpgroup per 64 rows, 4 stages. 256x128: one block of 4
// warpgroups per SM (196 KB); 128x64 (N <= 64): two blocks per SM.
using Wgmma256x128 = Tile<256, 128, 64, 128, true, 32, 4, true>;
using Wgmma128x64 = Tile<128, 64, 64, 64, true, 32, 4, true>;

// Writes 1 where this build has sm_90a code for the running device (wgmma is an
// architecture-specific feature: sm_90 code cannot hold it).
__global__ void wgmma_probe_kernel(int* ok) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  *ok = 1;
#else
  *ok = 0;
#endif
}

}  // namespace

void init_conv_kernels() {
  Ffma128x128::set_smem_limit();
  Ffma128x64::set_smem_limit();
  Ffma64x64::set_smem_limit();
  Mma128x128::set_smem_limit();
  Mma128x64::set_smem_limit();
  Mma64x64::set_smem_limit();
  Wgmma256x128::set_smem_limit();
  Wgmma128x64::set_smem_limit();
}

bool wgmma_supported() {
  int device = 0, major = 0, minor = 0;
  LASNET_CUDA_CHECK(cudaGetDevice(&device));
  LASNET_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  LASNET_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  if (major != 9 || minor != 0) return false;
  const DeviceBuffer<int> flag(1);
  wgmma_probe_kernel<<<1, 1>>>(flag.get());
  // No image for this device (a build for other architectures): not an error, just no wgmma.
  if (cudaGetLastError() != cudaSuccess) return false;
  int ok = 0;
  LASNET_CUDA_CHECK(cudaMemcpy(&ok, flag.get(), sizeof(int), cudaMemcpyDeviceToHost));
  return ok == 1;
}

ConvShape shape_of(const ConvArgs& a, long long rows_hint) {
  ConvShape shape;
  shape.src_c = a.src_c, shape.out_c = a.out_c, shape.groups = a.groups;
  shape.cin_g = a.cin_g, shape.cout_g = a.cout_g, shape.kernel = a.kh, shape.rows = rows_hint;
  shape.stride = a.stride;
  shape.row_width = a.a_map.kind == RowMap::grid    ? a.a_map.gw
                    : a.a_map.kind == RowMap::patch ? a.a_map.r
                                                    : 0;  // pixel lists: no rows to speak of
  // The fused masker's extra channel exists only in the implicit GEMM and direct kernels.
  if (a.aux_weight != nullptr) shape.groups = 1, shape.fused_masker = true;
  return shape;
}

ConvPlan plan_conv(const ConvArgs& a, bool tf32, long long rows_hint, int sm_count) {
  return lasnet::kernels::plan_conv(shape_of(a, rows_hint), tf32, sm_count);
}

long long splitk_workspace_floats(const ConvArgs& a, const ConvPlan& plan) {
  return plan.splits > 1 ? plan.splits * a.a_map.rows_max * a.out_c : 0;
}

namespace {
// The tiled conv as `plan` says, split-K included.
template <class T>
void launch_tile(const ConvArgs& args, const ConvPlan& plan, cudaStream_t stream) {
  if (plan.splits <= 1 || args.aux_weight != nullptr) {
    ConvArgs a = args;
    a.splits = 1;
    T::launch(a, stream);
    return;
  }
  if (args.partial == nullptr) throw lasnet::Error("launch_conv: split-K plan without workspace");
  ConvArgs a = args;
  a.splits = plan.splits;
  T::launch(a, stream);
  launch_splitk_reduce(a, stream);
}
}  // namespace

void launch_im2col(const ConvArgs& a, float* col, cudaStream_t stream) {
  if (a.groups != 1 || a.cin_g % 4 != 0 || a.a_map.kind != RowMap::grid) {
    throw lasnet::Error("launch_im2col: needs one group, channels in fours and a dense grid");
  }
  const long long total = a.a_map.rows_max * (a.kh * a.kw * a.cin_g / 4);
  if (total == 0) return;
  const long long blocks = std::min<long long>((total + 255) / 256, 132LL * 32);
  im2col_kernel<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(a, col);
  LASNET_CUDA_CHECK_LAUNCH();
}

void launch_conv(const ConvArgs& a, const ConvPlan& plan, cudaStream_t stream) {
  switch (plan.impl) {
    case ConvImpl::igemm_256x128:
      if (!plan.wgmma) throw lasnet::Error("launch_conv: the 256x128 tile exists for wgmma only");
      launch_tile<Wgmma256x128>(a, plan, stream);
      return;
    case ConvImpl::igemm_128x128:
      if (plan.wgmma) throw lasnet::Error("launch_conv: no 128x128 wgmma tile");
      plan.tf32 ? launch_tile<Mma128x128>(a, plan, stream)
                : launch_tile<Ffma128x128>(a, plan, stream);
      return;
    case ConvImpl::igemm_128x64:
      plan.wgmma  ? launch_tile<Wgmma128x64>(a, plan, stream)
      : plan.tf32 ? launch_tile<Mma128x64>(a, plan, stream)
                  : launch_tile<Ffma128x64>(a, plan, stream);
      return;
    case ConvImpl::igemm_64x64:
      plan.tf32 ? launch_tile<Mma64x64>(a, plan, stream) : launch_tile<Ffma64x64>(a, plan, stream);
      return;
    case ConvImpl::direct: {
      const long long total = a.a_map.rows_max * a.groups * a.cout_g;
      if (total == 0) return;
      const long long blocks = std::min<long long>((total + 255) / 256, 132LL * 32);
      direct_conv_kernel<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(a);
      LASNET_CUDA_CHECK_LAUNCH();
      return;
    }
    case ConvImpl::depthwise:
      launch_depthwise_conv(a, plan, stream);
      return;
    case ConvImpl::grouped:
      launch_grouped_conv(a, plan, stream);
      return;
  }
}

}  // namespace lasnet::kernels::detail
