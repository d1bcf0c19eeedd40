#pragma once
// Device decoding of a RowMap (conv.cuh): GEMM row -> image position, and the epilogue's
// row -> output offset.
#include "conv.cuh"

namespace lasnet::kernels::detail {

struct RowPos {
  int n, y, x;
  bool inside;
};

__device__ __forceinline__ long long active_rows(const RowMap& m) {
  return m.count != nullptr ? static_cast<long long>(*m.count) * m.unit : m.rows_max;
}

__device__ __forceinline__ RowPos decode_row(const RowMap& m, long long row) {
  RowPos p;
  if (m.kind == RowMap::grid) {
    p.x = static_cast<int>(row % m.gw);
    const long long t = row / m.gw;
    p.y = static_cast<int>(t % m.gh);
    p.n = static_cast<int>(t / m.gh);
    p.inside = true;
    return p;
  }
  if (m.kind == RowMap::pixels) {
    const int idx = m.index[row];
    const int per_image = m.gh * m.gw;
    p.n = idx / per_image;
    const int q = idx - p.n * per_image;
    p.y = q / m.gw;
    p.x = q - p.y * m.gw;
    p.inside = true;
    return p;
  }
  const int rr = m.r * m.r;
  const long long patch = row / rr;
  const int within = static_cast<int>(row - patch * rr);
  const int ry = within / m.r, rx = within - (within / m.r) * m.r;
  const int idx = m.index[patch];
  const int per_image = m.prow * m.pcol;
  p.n = idx / per_image;
  const int q = idx - p.n * per_image;
  const int py = q / m.pcol, px = q - (q / m.pcol) * m.pcol;
  p.y = py * m.pstride + ry + m.poff;
  p.x = px * m.pstride + rx + m.poff;
  p.inside = p.y >= 0 && p.y < m.lim_h && p.x >= 0 && p.x < m.lim_w;
  return p;
}

// Epilogue addressing shared by the conv kernels (ConvArgs, and the fp16 kernel's
// HalfConvArgs, which has the same output fields): the output offset of row m (or -1 to skip
// it) and whether it is forced to zero (halo pixel outside the map).
template <typename Args>
__device__ __forceinline__ long long row_output(const Args& a, long long m, bool& zero) {
  zero = false;
  if (a.e_mode == ConvArgs::store_rows) return m * a.out_c;
  const RowPos p = decode_row(a.e_map, m);
  if (a.e_mode == ConvArgs::zero_outside) {
    zero = !p.inside;
    return m * a.out_c;
  }
  if (!p.inside) return -1;
  return ((static_cast<long long>(p.n) * a.out_h + p.y) * a.out_w + p.x) * a.out_c;
}

}  // namespace lasnet::kernels::detail
