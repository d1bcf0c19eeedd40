// Probe (not built by CMake): what cuBLASLt's heuristic picks for the 1x1-conv GEMMs the runner
// issues (the descriptors of kernels/src/runner.cu's LtGemm: fp32, bias(+ReLU) epilogue, residual
// by beta = 1, 32 MiB workspace), and how fast each of its top 8 candidates runs: median of 50
// CUDA-event-timed runs after 10 warm-ups, a 256 MiB memset before each as an L2 flush. Input:
// lines "rows k n relu residual" on stdin (bench/kernels/cublaslt_probe_shapes_n1.txt: the
// held-out specs' batch-1 cuBLASLt steps; cublaslt_probe_shapes_protocol_a_{fp32,tf32}.txt: the
// distinct cuBLASLt GEMMs of the blind protocol's sample A, seed 2026120601, to set the library
// model's candidates, docs/model.md, against the H100's picks; run the tf32 file with `t`).
// Data is a constant bit pattern, not random: the time
// of these SIMT kernels does not depend on the values.
//   nvcc -std=c++17 -O2 -arch=sm_90 bench/kernels/cublaslt_probe.cu -lcublasLt -o cublaslt_probe
//   ./cublaslt_probe f < bench/kernels/cublaslt_probe_shapes_n1.txt
//   ./cublaslt_probe t s < bench/kernels/cublaslt_probe_shapes_residual.txt   (tf32, the residual
//   out of place as the runner has it: bench/results/cublaslt_probe_residual_h100.txt)
//   ./cublaslt_probe f s < bench/kernels/cublaslt_probe_shapes_fp32_large.txt   (the seen rounds'
//   large fp32 GEMMs: bench/results/cublaslt_probe_fp32_large_h100.txt)
// Output: per shape, each candidate's algo id, tile id (CUBLASLT_MATMUL_TILE_*: 11 = 32x32,
// 15 = 64x64), split-K number, reduction scheme, stages id, swizzle, custom option, workspace.
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <algorithm>
#include <cstdio>
#include <vector>
#define CK(x)                                                   \
  do {                                                          \
    auto e_ = (x);                                              \
    if ((int)e_ != 0) {                                         \
      printf("err %d at %s:%d\n", (int)e_, __FILE__, __LINE__); \
      exit(1);                                                  \
    }                                                           \
  } while (0)
int main(int argc, char** argv) {
  const bool tf32 = argc > 1 && argv[1][0] == 't';
  // `s` as the second argument: the residual in a buffer of its own (C != D), as the runner
  // passes it; else C is D, updated in place.
  const bool separate_c = argc > 2 && argv[2][0] == 's';
  struct S {
    long rows, k, n;
    int relu, res;
  };
  std::vector<S> shapes;
  long r, k, n;
  int relu, res;
  while (scanf("%ld %ld %ld %d %d", &r, &k, &n, &relu, &res) == 5)
    shapes.push_back({r, k, n, relu, res});
  cublasLtHandle_t lt;
  CK(cublasLtCreate(&lt));
  size_t ws_bytes = 32u << 20;
  void* ws;
  CK(cudaMalloc(&ws, ws_bytes));
  size_t flush_bytes = 256u << 20;
  void* flush;
  CK(cudaMalloc(&flush, flush_bytes));
  float *x, *w, *out, *bias;
  size_t cap = 64u << 20;
  CK(cudaMalloc(&x, cap * 4));
  CK(cudaMalloc(&w, cap * 4));
  CK(cudaMalloc(&out, cap * 4));
  CK(cudaMalloc(&bias, 1 << 16));
  CK(cudaMemset(x, 0x3c, cap * 4));
  CK(cudaMemset(w, 0x3c, cap * 4));
  CK(cudaMemset(bias, 0, 1 << 16));
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  for (auto s : shapes) {
    cublasLtMatmulDesc_t desc;
    CK(cublasLtMatmulDescCreate(&desc, tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F,
                                CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    CK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
    CK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
    cublasLtEpilogue_t epi = s.relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
    CK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
    CK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                      sizeof(bias)));
    cublasLtMatrixLayout_t a, b, c;
    CK(cublasLtMatrixLayoutCreate(&a, CUDA_R_32F, s.k, s.n, s.k));
    CK(cublasLtMatrixLayoutCreate(&b, CUDA_R_32F, s.k, s.rows, s.k));
    CK(cublasLtMatrixLayoutCreate(&c, CUDA_R_32F, s.n, s.rows, s.n));
    cublasLtMatmulPreference_t pref;
    CK(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t wsb = ws_bytes;
    CK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb,
                                            sizeof(wsb)));
    cublasLtMatmulHeuristicResult_t res_[8];
    int found = 0;
    CK(cublasLtMatmulAlgoGetHeuristic(lt, desc, a, b, c, c, pref, 8, res_, &found));
    float alpha = 1, beta = s.res ? 1.f : 0.f;
    printf("shape rows %ld k %ld n %ld relu %d res %d found %d\n", s.rows, s.k, s.n, s.relu, s.res,
           found);
    for (int i = 0; i < found; ++i) {
      int id = 0, tile = 0, split = 0, red = 0, stages = 0, swz = 0, custom = 0;
      size_t sz;
      cublasLtMatmulAlgoConfigGetAttribute(&res_[i].algo, CUBLASLT_ALGO_CONFIG_ID, &id, sizeof(id),
                                           &sz);
      cublasLtMatmulAlgoConfigGetAttribute(&res_[i].algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile,
                                           sizeof(tile), &sz);
      cublasLtMatmulAlgoConfigGetAttribute(&res_[i].algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &split,
                                           sizeof(split), &sz);
      cublasLtMatmulAlgoConfigGetAttribute(&res_[i].algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME,
                                           &red, sizeof(red), &sz);
      cublasLtMatmulAlgoConfigGetAttribute(&res_[i].algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages,
                                           sizeof(stages), &sz);
      cublasLtMatmulAlgoConfigGetAttribute(&res_[i].algo, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, &swz,
                                           sizeof(swz), &sz);
      cublasLtMatmulAlgoConfigGetAttribute(&res_[i].algo, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION,
                                           &custom, sizeof(custom), &sz);
      std::vector<float> t;
      for (int it = 0; it < 60; ++it) {
        CK(cudaMemsetAsync(flush, it, flush_bytes));
        CK(cudaEventRecord(e0));
        CK(cublasLtMatmul(lt, desc, &alpha, w, a, x, b, &beta, s.res && separate_c ? w : out, c,
                          out, c, &res_[i].algo, ws, ws_bytes, 0));
        CK(cudaEventRecord(e1));
        CK(cudaEventSynchronize(e1));
        float ms;
        cudaEventElapsedTime(&ms, e0, e1);
        if (it >= 10) t.push_back(ms * 1000);
      }
      std::sort(t.begin(), t.end());
      printf(
          "  cand %d algo %d tile %d splitk %d red %d stages %d swz %d custom %d ws %zu  median "
          "%.2f us p10 %.2f\n",
          i, id, tile, split, red, stages, swz, custom, res_[i].workspaceSize, t[t.size() / 2],
          t[t.size() / 10]);
    }
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(a);
    cublasLtMatrixLayoutDestroy(b);
    cublasLtMatrixLayoutDestroy(c);
    cublasLtMatmulDescDestroy(desc);
  }
  return 0;
}
