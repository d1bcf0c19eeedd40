#pragma once
// A cuBLASLt GEMM with the conv epilogue (bias, residual, ReLU), planned once and launched many
// times: the 1x1 convs of the blocks, the im2col convs and the stem and head layers.
#include <cublasLt.h>

#include <cstddef>
#include <cstdint>

#include "cuda_check.cuh"
#include "lasnet/common/error.hpp"

namespace lasnet::kernels::detail {

// out[rows][n] = act(x[rows][k] . w[n][k]^T + bias [+ residual]) through cuBLASLt, the bias,
// residual (beta = 1) and ReLU in its epilogue. Every operand, the bias included, has the
// storage type `data`: fp32 (the sums in fp32 or tf32) or fp16 (fp32 sums on the tensor cores,
// fp32 alpha/beta; the bias type defaults to D's, fp16, which cuBLASLt supports with an fp16
// D and CUBLAS_COMPUTE_32F).
class LtGemm {
 public:
  LtGemm(cublasLtHandle_t lt, bool tf32, std::uint64_t rows, std::uint64_t k, std::uint64_t n,
         const float* bias, bool relu, bool residual, std::size_t workspace_bytes)
      : LtGemm(lt, tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUDA_R_32F, rows, k, n,
               bias, relu, residual, workspace_bytes) {}
  LtGemm(cublasLtHandle_t lt, cublasComputeType_t compute, cudaDataType_t data, std::uint64_t rows,
         std::uint64_t k, std::uint64_t n, const void* bias, bool relu, bool residual,
         std::size_t workspace_bytes)
      : beta_(residual ? 1.0f : 0.0f) {
    LASNET_CUDA_CHECK(cublasLtMatmulDescCreate(&desc_, compute, CUDA_R_32F));
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    LASNET_CUDA_CHECK(
        cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
    LASNET_CUDA_CHECK(
        cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
    const cublasLtEpilogue_t epi = relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
    LASNET_CUDA_CHECK(
        cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
    LASNET_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                     &bias, sizeof(bias)));
    LASNET_CUDA_CHECK(cublasLtMatrixLayoutCreate(&a_, data, k, n, k));
    LASNET_CUDA_CHECK(cublasLtMatrixLayoutCreate(&b_, data, k, rows, k));
    LASNET_CUDA_CHECK(cublasLtMatrixLayoutCreate(&c_, data, n, rows, n));
    cublasLtMatmulPreference_t pref = nullptr;
    LASNET_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    const std::uint64_t ws = workspace_bytes;
    const cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    cublasStatus_t hs = CUBLAS_STATUS_SUCCESS;
    if (st == CUBLAS_STATUS_SUCCESS) {
      hs = cublasLtMatmulAlgoGetHeuristic(lt, desc_, a_, b_, c_, c_, pref, 1, &result, &found);
    }
    LASNET_CUDA_CHECK_NOTHROW(cublasLtMatmulPreferenceDestroy(pref));
    LASNET_CUDA_CHECK(st);
    LASNET_CUDA_CHECK(hs);
    if (found == 0) throw lasnet::Error("cuBLASLt found no algorithm for a 1x1 conv GEMM");
    algo_ = result.algo;
  }
  ~LtGemm() {
    if (c_ != nullptr) LASNET_CUDA_CHECK_NOTHROW(cublasLtMatrixLayoutDestroy(c_));
    if (b_ != nullptr) LASNET_CUDA_CHECK_NOTHROW(cublasLtMatrixLayoutDestroy(b_));
    if (a_ != nullptr) LASNET_CUDA_CHECK_NOTHROW(cublasLtMatrixLayoutDestroy(a_));
    if (desc_ != nullptr) LASNET_CUDA_CHECK_NOTHROW(cublasLtMatmulDescDestroy(desc_));
  }
  LtGemm(const LtGemm&) = delete;
  LtGemm& operator=(const LtGemm&) = delete;

  void run(cublasLtHandle_t lt, const void* w, const void* x, const void* residual, void* out,
           void* workspace, std::size_t workspace_bytes, cudaStream_t stream) const {
    const float alpha = 1.0f;
    LASNET_CUDA_CHECK(cublasLtMatmul(lt, desc_, &alpha, w, a_, x, b_, &beta_,
                                     residual != nullptr ? residual : out, c_, out, c_, &algo_,
                                     workspace, workspace_bytes, stream));
  }

 private:
  float beta_ = 0;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
};

}  // namespace lasnet::kernels::detail
