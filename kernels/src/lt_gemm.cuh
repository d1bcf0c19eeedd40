#pragma once
// A cuBLASLt GEMM with the conv epilogue (bias, residual, ReLU), planned once and launched many
// times: the 1x1 convs of the blocks, the im2col convs and the stem and head layers.
#include <cublasLt.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "cuda_check.cuh"
#include "lasnet/common/error.hpp"

namespace lasnet::kernels::detail {

// out[rows][n] = act(x[rows][k] . w[n][k]^T + bias [+ residual]) through cuBLASLt, the bias,
// residual (beta = 1) and ReLU in its epilogue. Every operand, the bias included, has the
// storage type `data`: fp32 (the sums in fp32 or tf32) or fp16 (fp32 sums on the tensor cores,
// fp32 alpha/beta; the bias type defaults to D's, fp16, which cuBLASLt supports with an fp16
// D and CUBLAS_COMPUTE_32F).
//
// Which algorithm: the fastest of the heuristic's first candidates, timed here on scratch
// operands as the steps run (`tune`, below), not its first pick. For narrow K, with the residual in
// the epilogue, the first pick is up to 3.4x slower than the best candidate on the H100 and H200
// (bench/results/cublaslt_probe_residual_*.txt); the predictor prices the best candidate.
// `tune` false keeps the first pick (a benchmark baseline).
class LtGemm {
 public:
  LtGemm(cublasLtHandle_t lt, bool tf32, std::uint64_t rows, std::uint64_t k, std::uint64_t n,
         const float* bias, bool relu, bool residual, std::size_t workspace_bytes, bool tune = true)
      : LtGemm(lt, tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUDA_R_32F, rows, k, n,
               bias, relu, residual, workspace_bytes, tune) {}
  LtGemm(cublasLtHandle_t lt, cublasComputeType_t compute, cudaDataType_t data, std::uint64_t rows,
         std::uint64_t k, std::uint64_t n, const void* bias, bool relu, bool residual,
         std::size_t workspace_bytes, bool tune = true)
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
    std::array<cublasLtMatmulHeuristicResult_t, kCandidates> results{};
    int found = 0;
    cublasStatus_t hs = CUBLAS_STATUS_SUCCESS;
    if (st == CUBLAS_STATUS_SUCCESS) {
      hs = cublasLtMatmulAlgoGetHeuristic(lt, desc_, a_, b_, c_, c_, pref, tune ? kCandidates : 1,
                                          results.data(), &found);
    }
    LASNET_CUDA_CHECK_NOTHROW(cublasLtMatmulPreferenceDestroy(pref));
    LASNET_CUDA_CHECK(st);
    LASNET_CUDA_CHECK(hs);
    if (found == 0) throw lasnet::Error("cuBLASLt found no algorithm for a 1x1 conv GEMM");
    algo_ = results[0].algo;
    if (found > 1) {
      const std::size_t element = data == CUDA_R_16F ? 2 : 4;
      algo_ = fastest(lt, {results.data(), static_cast<std::size_t>(found)}, element, rows, k, n,
                      workspace_bytes);
    }
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
  static constexpr int kCandidates = 8;

  // Times each candidate as a block's step runs (one launch between events, L2 flushed before
  // it: a write of twice its size), on scratch operands of the GEMM's shape (a byte pattern, not
  // zeros: a small normal number in fp32 and fp16 alike), in kRounds rounds that interleave the
  // candidates, and returns the one of the lowest median, or the heuristic's first unless another
  // beats it by kMargin. Timing warm back-to-back launches instead (the tenth round's tuner,
  // docs/profiler.md) ranked microsecond GEMMs otherwise than the flushed steps and slowed 32 of
  // 154 steps by 10% or more. A candidate that fails to launch is skipped.
  cublasLtMatmulAlgo_t fastest(cublasLtHandle_t lt,
                               std::span<const cublasLtMatmulHeuristicResult_t> candidates,
                               std::size_t element, std::uint64_t rows, std::uint64_t k,
                               std::uint64_t n, std::size_t workspace_bytes) const {
    constexpr int kRounds = 5;
    constexpr float kMargin = 0.97f;
    int device = 0, l2_bytes = 0;
    LASNET_CUDA_CHECK(cudaGetDevice(&device));
    LASNET_CUDA_CHECK(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device));
    const DeviceBuffer<char> w(element * n * k), x(element * rows * k), out(element * rows * n),
        workspace(workspace_bytes), flush(2 * static_cast<std::size_t>(std::max(l2_bytes, 1)));
    for (const auto* b : {&w, &x, &out}) LASNET_CUDA_CHECK(cudaMemset(b->get(), 0x20, b->bytes()));
    const std::size_t count = candidates.size();
    std::vector<cudaEvent_t> events(2 * kRounds * count, nullptr);
    cudaStream_t stream = nullptr;
    cublasLtMatmulAlgo_t best = candidates[0].algo;
    try {
      LASNET_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
      for (auto& e : events) LASNET_CUDA_CHECK(cudaEventCreate(&e));
      const float alpha = 1.0f;
      const auto launch = [&](const cublasLtMatmulAlgo_t& algo) {
        return cublasLtMatmul(lt, desc_, &alpha, w.get(), a_, x.get(), b_, &beta_, out.get(), c_,
                              out.get(), c_, &algo, workspace.get(), workspace_bytes, stream);
      };
      std::vector<bool> runs(count);
      for (std::size_t c = 0; c < count; ++c) {  // also the warm-up launch
        runs[c] = candidates[c].state == CUBLAS_STATUS_SUCCESS &&
                  candidates[c].workspaceSize <= workspace_bytes &&
                  launch(candidates[c].algo) == CUBLAS_STATUS_SUCCESS;
      }
      for (int r = 0; r < kRounds; ++r) {
        for (std::size_t c = 0; c < count; ++c) {
          if (!runs[c]) continue;
          LASNET_CUDA_CHECK(cudaMemsetAsync(flush.get(), r, flush.bytes(), stream));
          const std::size_t i = 2 * (static_cast<std::size_t>(r) * count + c);
          LASNET_CUDA_CHECK(cudaEventRecord(events[i], stream));
          runs[c] = launch(candidates[c].algo) == CUBLAS_STATUS_SUCCESS;
          LASNET_CUDA_CHECK(cudaEventRecord(events[i + 1], stream));
        }
      }
      LASNET_CUDA_CHECK(cudaStreamSynchronize(stream));
      std::vector<float> median(count, -1.0f);
      for (std::size_t c = 0; c < count; ++c) {
        if (!runs[c]) continue;
        std::array<float, kRounds> ms{};
        for (int r = 0; r < kRounds; ++r) {
          const std::size_t i = 2 * (static_cast<std::size_t>(r) * count + c);
          LASNET_CUDA_CHECK(cudaEventElapsedTime(&ms[r], events[i], events[i + 1]));
        }
        std::nth_element(ms.begin(), ms.begin() + kRounds / 2, ms.end());
        median[c] = ms[kRounds / 2];
      }
      std::size_t pick = 0;
      for (std::size_t c = 1; c < count; ++c) {
        if (median[c] >= 0 && (median[pick] < 0 || median[c] < median[pick])) pick = c;
      }
      if (median[0] < 0 || median[pick] < kMargin * median[0]) best = candidates[pick].algo;
    } catch (...) {
      destroy(stream, events);
      throw;
    }
    destroy(stream, events);
    return best;
  }
  static void destroy(cudaStream_t stream, const std::vector<cudaEvent_t>& events) noexcept {
    for (const auto e : events) {
      if (e != nullptr) LASNET_CUDA_CHECK_NOTHROW(cudaEventDestroy(e));
    }
    if (stream != nullptr) LASNET_CUDA_CHECK_NOTHROW(cudaStreamDestroy(stream));
  }

  float beta_ = 0;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
};

}  // namespace lasnet::kernels::detail
