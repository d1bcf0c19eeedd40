#pragma once
// A cuBLASLt GEMM with the conv epilogue (bias, residual, ReLU), planned once and launched many
// times: the 1x1 convs of the blocks, the im2col convs and the stem and head layers. It runs the
// fastest of the heuristic's top candidates, timed once per shape and context (LtPicks).
#include <cublasLt.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>

#include "cuda_check.cuh"
#include "lasnet/common/error.hpp"
#include "typed_ops.cuh"

namespace lasnet::kernels::detail {

// The algorithm each GEMM shape runs, chosen once per context (Context::Impl holds it). Timing
// the candidates rather than taking the heuristic's first: with the residual (beta = 1) and
// K < 96 the first is 1.1-3.4x slower than the best of its own top 8 on the H100 and H200
// (bench/results/cublaslt_probe_residual_*.txt), and the predictor prices the library's GEMM as
// the cheapest of its candidates (docs/model.md).
struct LtPicks {
  using Key = std::array<std::int64_t, 7>;  // compute, data, rows, k, n, relu, residual
  std::map<Key, cublasLtMatmulAlgo_t> algos;
  std::size_t tuned = 0;  // shapes whose candidates were timed
};

// out[rows][n] = act(x[rows][k] . w[n][k]^T + bias [+ residual]) through cuBLASLt, the bias,
// residual (beta = 1) and ReLU in its epilogue. Every operand, the bias included, has the
// storage type `data`: fp32 (the sums in fp32 or tf32) or fp16 (fp32 sums on the tensor cores,
// fp32 alpha/beta; the bias type defaults to D's, fp16, which cuBLASLt supports with an fp16
// D and CUBLAS_COMPUTE_32F).
class LtGemm {
 public:
  LtGemm(cublasLtHandle_t lt, LtPicks& picks, const DeviceBuffer<char>& workspace, bool tf32,
         std::uint64_t rows, std::uint64_t k, std::uint64_t n, const float* bias, bool relu,
         bool residual)
      : LtGemm(lt, picks, workspace, tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F,
               CUDA_R_32F, rows, k, n, bias, relu, residual) {}
  LtGemm(cublasLtHandle_t lt, LtPicks& picks, const DeviceBuffer<char>& workspace,
         cublasComputeType_t compute, cudaDataType_t data, std::uint64_t rows, std::uint64_t k,
         std::uint64_t n, const void* bias, bool relu, bool residual)
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
    const LtPicks::Key key{compute,
                           data,
                           static_cast<std::int64_t>(rows),
                           static_cast<std::int64_t>(k),
                           static_cast<std::int64_t>(n),
                           relu,
                           residual};
    if (const auto it = picks.algos.find(key); it != picks.algos.end()) {
      algo_ = it->second;
      return;
    }
    Candidates found = candidates(lt, workspace.bytes());
    if (found.count == 0) throw lasnet::Error("cuBLASLt found no algorithm for a 1x1 conv GEMM");
    algo_ = found.result[0].algo;
    const std::size_t elem = data == CUDA_R_16F ? sizeof(__half) : sizeof(float);
    if (found.count > 1 && tune(lt, workspace, found, elem, rows, k, n)) {
      ++picks.tuned;
    }
    picks.algos.emplace(key, algo_);
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
    LASNET_CUDA_CHECK(launch(lt, algo_, w, x, residual, out, workspace, workspace_bytes, stream));
  }

 private:
  static constexpr int kCandidates = 8;
  struct Candidates {
    std::array<cublasLtMatmulHeuristicResult_t, kCandidates> result{};
    int count = 0;
  };

  Candidates candidates(cublasLtHandle_t lt, std::size_t workspace_bytes) const {
    cublasLtMatmulPreference_t pref = nullptr;
    LASNET_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    const std::uint64_t ws = workspace_bytes;
    const cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
    Candidates found;
    cublasStatus_t hs = CUBLAS_STATUS_SUCCESS;
    if (st == CUBLAS_STATUS_SUCCESS) {
      hs = cublasLtMatmulAlgoGetHeuristic(lt, desc_, a_, b_, c_, c_, pref, kCandidates,
                                          found.result.data(), &found.count);
    }
    LASNET_CUDA_CHECK_NOTHROW(cublasLtMatmulPreferenceDestroy(pref));
    LASNET_CUDA_CHECK(st);
    LASNET_CUDA_CHECK(hs);
    return found;
  }

  cublasStatus_t launch(cublasLtHandle_t lt, const cublasLtMatmulAlgo_t& algo, const void* w,
                        const void* x, const void* residual, void* out, void* workspace,
                        std::size_t workspace_bytes, cudaStream_t stream) const {
    const float alpha = 1.0f;
    return cublasLtMatmul(lt, desc_, &alpha, w, a_, x, b_, &beta_,
                          residual != nullptr ? residual : out, c_, out, c_, &algo, workspace,
                          workspace_bytes, stream);
  }

  // Times each candidate on scratch operands of fresh random data (the residual in place: the
  // probe found the same picks in place or not) and keeps the fastest, unless it beats the
  // heuristic's first by less than 5%, the timing's noise. Skipped (the first kept) where the
  // scratch would take more than a quarter of the free memory. Returns whether it timed.
  bool tune(cublasLtHandle_t lt, const DeviceBuffer<char>& workspace, const Candidates& found,
            std::size_t elem, std::uint64_t rows, std::uint64_t k, std::uint64_t n) {
    std::size_t free_bytes = 0, total_bytes = 0;
    LASNET_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    const std::uint64_t w_bytes = k * n * elem, x_bytes = rows * k * elem;
    const std::uint64_t scratch_bytes = w_bytes + x_bytes + rows * n * elem;
    if (scratch_bytes > free_bytes / 4) return false;
    DeviceBuffer<char> scratch(static_cast<std::size_t>(scratch_bytes));
    const cudaStream_t s = nullptr;
    const auto count = static_cast<long long>(scratch_bytes / elem);
    if (elem == sizeof(__half)) {
      fill_random_as(reinterpret_cast<__half*>(scratch.get()), count, 0x4c74, 0, 1.0f, s);
    } else {
      fill_random_as(reinterpret_cast<float*>(scratch.get()), count, 0x4c74, 0, 1.0f, s);
    }
    LASNET_CUDA_CHECK(cudaGetLastError());
    char* w = scratch.get();
    char* x = w + w_bytes;
    char* out = x + x_bytes;
    const void* residual = beta_ != 0.0f ? out : nullptr;
    Event start, stop;
    constexpr int kRuns = 3, kTrials = 2;
    constexpr float kNone = std::numeric_limits<float>::infinity();
    float first_ms = kNone, best_ms = kNone;
    const cublasLtMatmulAlgo_t* best = nullptr;
    for (int i = 0; i < found.count; ++i) {
      const cublasLtMatmulAlgo_t& algo = found.result[static_cast<std::size_t>(i)].algo;
      const auto go = [&] {
        return launch(lt, algo, w, x, residual, out, workspace.get(), workspace.bytes(), s);
      };
      if (go() != CUBLAS_STATUS_SUCCESS) continue;  // a candidate that cannot run is no pick
      float ms = kNone;
      for (int t = 0; t < kTrials; ++t) {
        LASNET_CUDA_CHECK(cudaEventRecord(start.e, s));
        for (int r = 0; r < kRuns; ++r) LASNET_CUDA_CHECK(go());
        LASNET_CUDA_CHECK(cudaEventRecord(stop.e, s));
        LASNET_CUDA_CHECK(cudaEventSynchronize(stop.e));
        float trial = 0;
        LASNET_CUDA_CHECK(cudaEventElapsedTime(&trial, start.e, stop.e));
        ms = std::min(ms, trial);
      }
      if (i == 0) first_ms = ms;
      if (ms < best_ms) best_ms = ms, best = &algo;
    }
    if (best != nullptr && best_ms < 0.95f * first_ms) algo_ = *best;
    return true;
  }

  struct Event {  // a timing event, destroyed with its scope
    cudaEvent_t e = nullptr;
    Event() { LASNET_CUDA_CHECK(cudaEventCreate(&e)); }
    ~Event() { LASNET_CUDA_CHECK_NOTHROW(cudaEventDestroy(e)); }
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;
  };

  float beta_ = 0;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
};

}  // namespace lasnet::kernels::detail
