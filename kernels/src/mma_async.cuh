#pragma once
// The asynchronous copy and matrix-load helpers the tensor-core implicit GEMMs share (conv.cu's
// tf32 tiles over floats, conv_f16.cu's over halves): cp.async of 16 bytes (zero-filled where
// invalid: padding, rows past the count) and ldmatrix of four 8x8 b16 matrices.
#include <cuda_runtime.h>

namespace lasnet::kernels::detail {

template <typename T>
__device__ __forceinline__ void cp_async16(T* smem_dst, const T* src, bool valid) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem_dst));
  const int bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::);
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
template <typename T>
__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], const T* smem_row) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(smem_row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}

}  // namespace lasnet::kernels::detail
