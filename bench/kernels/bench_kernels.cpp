// Times dense and dynamic ResNet-101 bottleneck blocks with lasnet::kernels on the local GPU.
// Per configuration: warm-up runs, then the median of `runs` CUDA-event-timed block runs, and
// per-step medians from a second pass with events between steps. Inputs rotate among copies
// so that together they exceed the L2 (50 MB). Also measures the two roofline ceilings
// (device copy bandwidth, cuBLAS fp32/tf32/fp16 GEMM rate) for the floors beside each time.
// fp16 (--precisions fp16): __half blocks, dense GEMMs cuBLASLt's, the dynamic GEMMs over patch
// rows the fp16 implicit GEMM; its dynamic forms are the fp32 ones but the one-kernel masker,
// plus the unfused and union forms, each also through cuBLASLt at the mask's capacity
// (fusion "... (cuBLASLt capacity)", the baseline; never picked for the --network chain).
// Identity-shortcut dynamic blocks update the residual in place (x >= 0 input; --in-place 0
// turns it off); their input copy is refilled after every run, outside the timed region.
//   bench_kernels --out FILE.json [--batches 1,128] [--precisions fp32,tf32] [--runs 50]
//                 [--in-place 1] [--network 1] [--cub-select 0] [--im2col-conv2 auto] [--wgmma
//                 auto] [--library-1x1 auto] [--union 1] [--library-first-pick 0]
// --union 0|1|all: the union form (union+gather+scatter: conv1 once per needed pixel, from
// the dilated mask) beside the other forms: not at all, at d = 0.5 only (default), or at every
// density. Its rows carry a fourth fusion flag (union_conv1) after the three of before.
// --cub-select 1: the baseline of the one-kernel masker pool + compaction (cub's select
// everywhere, as before it), for a same-device comparison.
// --wgmma 0|1: tf32 128-row implicit-GEMM tiles by mma.sync (0) or wgmma (1) instead of
// wherever the device has wgmma (auto).
// --im2col-conv2 0|1: every dense conv2 through our implicit GEMM (0) or as im2col + cuBLASLt
// (1) instead of the rule (auto: kernels::im2col_library_conv).
// --library-1x1 0|1: every dense conv1 / conv3 through our implicit GEMM (0) or as a cuBLASLt
// GEMM (1) instead of the rule (auto: kernels::library_1x1_conv).
// --library-first-pick 1: every cuBLASLt GEMM at its heuristic's first pick, the baseline of
// the fastest of its candidates timed when the block is built.
// --network 1: after the blocks of each batch and precision, ResNet-101's 33 bottlenecks chained
// into one forward (each block reads the previous one's output), dense and dynamic at d = 0.5
// (one S per stage, fastest fusion per block type, both from this run's block results; masker
// biases calibrated on each block's real input), eager and as a CUDA graph.
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "lasnet/common/error.hpp"
#include "lasnet/common/file_io.hpp"
#include "lasnet/kernels/runner.hpp"
#include "timing.hpp"

namespace k = lasnet::kernels;
using json = nlohmann::ordered_json;

namespace {

using lasnet::bench::check;
using lasnet::bench::Events;
using lasnet::bench::median;
void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw lasnet::Error(std::string(what) + ": cuBLAS error");
}

struct Options {
  std::string out = "kernels.json";
  std::vector<std::int64_t> batches{1, 128};
  std::vector<k::Precision> precisions{k::Precision::fp32, k::Precision::tf32};
  std::vector<std::int64_t> granularities{1, 2, 4, 7};
  std::vector<double> densities{0.25, 0.5, 0.75};
  int runs = 50, warmup = 5;
  bool in_place = true;     // in-place residual for identity-shortcut dynamic blocks
  bool network = true;      // also the chained whole-network forward
  bool cub_select = false;  // baseline: the masker's compaction by cub even where one kernel runs
  std::optional<bool> im2col_conv2;  // unset: the rule
  std::optional<bool> wgmma;         // unset: where the device has it
  std::optional<bool> library_1x1;   // unset: the rule
  int union_form = 1;                // 0: no union rows, 1: at d = 0.5, 2: at every density
  bool library_first_pick = false;   // baseline: cuBLASLt's first pick, not the fastest
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw lasnet::Error("missing value after " + a);
      return argv[++i];
    };
    // "auto" (unset: the library's rule) or 0 / 1.
    const auto auto_or_bool = [](const std::string& v) -> std::optional<bool> {
      if (v == "auto") return std::nullopt;
      return std::stoi(v) != 0;
    };
    try {
      if (a == "--out") {
        o.out = value();
      } else if (a == "--batches") {
        o.batches.clear();
        for (const auto& v : split(value())) o.batches.push_back(std::stoll(v));
      } else if (a == "--precisions") {
        o.precisions.clear();
        for (const auto& v : split(value())) {
          const auto p = k::parse_precision(v);
          if (!p) throw lasnet::Error("unknown precision " + v);
          o.precisions.push_back(*p);
        }
      } else if (a == "--granularities") {
        o.granularities.clear();
        for (const auto& v : split(value())) o.granularities.push_back(std::stoll(v));
      } else if (a == "--densities") {
        o.densities.clear();
        for (const auto& v : split(value())) o.densities.push_back(std::stod(v));
      } else if (a == "--runs") {
        o.runs = std::stoi(value());
      } else if (a == "--warmup") {
        o.warmup = std::stoi(value());
      } else if (a == "--network") {
        o.network = std::stoi(value()) != 0;
      } else if (a == "--in-place") {
        o.in_place = std::stoi(value()) != 0;
      } else if (a == "--cub-select") {
        o.cub_select = std::stoi(value()) != 0;
      } else if (a == "--wgmma") {
        o.wgmma = auto_or_bool(value());
      } else if (a == "--im2col-conv2") {
        o.im2col_conv2 = auto_or_bool(value());
      } else if (a == "--library-1x1") {
        o.library_1x1 = auto_or_bool(value());
      } else if (a == "--library-first-pick") {
        o.library_first_pick = std::stoi(value()) != 0;
      } else if (a == "--union") {
        const std::string v = value();
        o.union_form = v == "all" ? 2 : (std::stoi(v) != 0 ? 1 : 0);
      } else {
        throw lasnet::Error("unknown option " + a);
      }
    } catch (const std::logic_error& e) {
      throw lasnet::Error("while handling " + a + ": " + e.what());
    }
  }
  return o;
}

struct Ceilings {
  double bandwidth_bytes_per_s = 0;
  double fp32_flops_per_s = 0, tf32_flops_per_s = 0, fp16_flops_per_s = 0;
  double peak_of(k::Precision p) const {
    switch (p) {
      case k::Precision::tf32:
        return tf32_flops_per_s;
      case k::Precision::fp16:
        return fp16_flops_per_s;
      case k::Precision::fp32:
        break;
    }
    return fp32_flops_per_s;
  }
};

Ceilings measure_ceilings() {
  Ceilings c;
  const std::size_t bytes = std::size_t{1} << 30;
  void *a = nullptr, *b = nullptr;
  check(cudaMalloc(&a, bytes), "cudaMalloc");
  check(cudaMalloc(&b, bytes), "cudaMalloc");
  check(cudaMemset(a, 1, bytes), "cudaMemset");
  Events ev(2);
  std::vector<double> t;
  for (int i = 0; i < 13; ++i) {
    check(cudaEventRecord(ev[0]), "record");
    check(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice), "copy");
    check(cudaEventRecord(ev[1]), "record");
    check(cudaEventSynchronize(ev[1]), "sync");
    if (i >= 3) t.push_back(ev.ms(0, 1));
  }
  c.bandwidth_bytes_per_s = 2.0 * static_cast<double>(bytes) / (median(t) * 1e-3);
  cublasHandle_t h = nullptr;
  check(cublasCreate(&h), "cublasCreate");
  const int n = 8192;
  const float one = 1, zero = 0;
  float* fa = static_cast<float*>(a);
  float* fb = static_cast<float*>(b);
  float* fc = nullptr;
  check(cudaMalloc(&fc, sizeof(float) * n * n), "cudaMalloc");
  for (const bool tf32 : {false, true}) {
    t.clear();
    for (int i = 0; i < 8; ++i) {
      check(cudaEventRecord(ev[0]), "record");
      check(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, fa, CUDA_R_32F, n, fb,
                         CUDA_R_32F, n, &zero, fc, CUDA_R_32F, n,
                         tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F,
                         CUBLAS_GEMM_DEFAULT),
            "cublasGemmEx");
      check(cudaEventRecord(ev[1]), "record");
      check(cudaEventSynchronize(ev[1]), "sync");
      if (i >= 2) t.push_back(ev.ms(0, 1));
    }
    const double rate = 2.0 * n * n * static_cast<double>(n) / (median(t) * 1e-3);
    (tf32 ? c.tf32_flops_per_s : c.fp32_flops_per_s) = rate;
  }
  {  // fp16 operands, fp32 sums: what the fp16 blocks' cuBLASLt GEMMs run
    t.clear();
    for (int i = 0; i < 8; ++i) {
      check(cudaEventRecord(ev[0]), "record");
      check(
          cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a, CUDA_R_16F, n, b, CUDA_R_16F,
                       n, &zero, fc, CUDA_R_16F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
          "cublasGemmEx");
      check(cudaEventRecord(ev[1]), "record");
      check(cudaEventSynchronize(ev[1]), "sync");
      if (i >= 2) t.push_back(ev.ms(0, 1));
    }
    c.fp16_flops_per_s = 2.0 * n * n * static_cast<double>(n) / (median(t) * 1e-3);
  }
  cublasDestroy(h);
  cudaFree(fc);
  cudaFree(a);
  cudaFree(b);
  return c;
}

struct BlockType {
  std::string name;
  int stage;
  int count;  // blocks of this type in ResNet-101
  k::BottleneckShape shape;
};

std::vector<BlockType> resnet101_blocks(std::int64_t batch) {
  const auto s = [batch](std::int64_t h, std::int64_t cin, std::int64_t cmid, std::int64_t cout,
                         std::int64_t stride) {
    k::BottleneckShape b;
    b.batch = batch, b.height = h, b.width = h, b.in_channels = cin, b.mid_channels = cmid;
    b.out_channels = cout, b.stride = stride;
    return b;
  };
  return {
      {"layer1.0", 1, 1, s(56, 64, 64, 256, 1)},     {"layer1.x", 1, 2, s(56, 256, 64, 256, 1)},
      {"layer2.0", 2, 1, s(56, 256, 128, 512, 2)},   {"layer2.x", 2, 3, s(28, 512, 128, 512, 1)},
      {"layer3.0", 3, 1, s(28, 512, 256, 1024, 2)},  {"layer3.x", 3, 22, s(14, 1024, 256, 1024, 1)},
      {"layer4.0", 4, 1, s(14, 1024, 512, 2048, 2)}, {"layer4.x", 4, 2, s(7, 2048, 512, 2048, 1)}};
}

json time_block(k::Context& ctx, const k::BlockConfig& cfg, const Options& o, const Ceilings& c) {
  k::BlockRunner r(ctx, cfg);
  const auto& steps = r.steps();
  Events ev(steps.size() + 1);
  // In place, a run overwrites its input copy with the output: refill it after the run (on the
  // same stream, before the next run's start event), so every run sees the original data and
  // the calibrated density.
  const bool restore = k::in_place(cfg);
  const auto after_run = [&](std::int64_t in) {
    if (restore) r.restore_input(in);
  };
  std::int64_t input = 0;
  for (int i = 0; i < o.warmup; ++i) {
    r.run(nullptr, input);
    after_run(input++);
  }
  check(cudaDeviceSynchronize(), "warm-up");
  std::vector<double> total;
  for (int i = 0; i < o.runs; ++i) {
    check(cudaEventRecord(ev[0]), "record");
    r.run(nullptr, input);
    check(cudaEventRecord(ev[1]), "record");
    after_run(input++);
    check(cudaEventSynchronize(ev[1]), "sync");
    total.push_back(ev.ms(0, 1));
  }
  std::vector<std::vector<double>> per(steps.size());
  for (int i = 0; i < o.runs; ++i) {
    const std::int64_t in = input++;
    check(cudaEventRecord(ev[0]), "record");
    for (std::size_t s = 0; s < steps.size(); ++s) {
      r.run_step(s, nullptr, in);
      check(cudaEventRecord(ev[s + 1]), "record");
    }
    after_run(in);
    check(cudaEventSynchronize(ev[steps.size()]), "sync");
    for (std::size_t s = 0; s < steps.size(); ++s) per[s].push_back(ev.ms(s, s + 1));
  }
  const double peak = c.peak_of(cfg.precision);
  json j;
  j["total_ms"] = median(total);
  j["active_patches"] = r.expected_active();
  j["in_place"] = restore;
  json js = json::array();
  double floor_ms = 0;
  for (std::size_t s = 0; s < steps.size(); ++s) {
    const double f =
        std::max(steps[s].bytes / c.bandwidth_bytes_per_s, steps[s].flops / peak) * 1e3;
    floor_ms += f;
    js.push_back({{"name", steps[s].name},
                  {"kernel", steps[s].kernel},
                  {"median_ms", median(per[s])},
                  {"flops", steps[s].flops},
                  {"bytes", steps[s].bytes},
                  {"floor_ms", f}});
  }
  j["floor_ms"] = floor_ms;
  j["steps"] = js;
  return j;
}

// ---- the whole network: ResNet-101's 33 bottlenecks chained, each reading the previous output.
struct Choice {  // how one block type runs in the dynamic network
  std::int64_t granularity = 0;
  k::Fusion fusion;
  bool library_conv1 = false;
};

// Per stage, the S that minimises the stage's sum (count x fastest fusion per block type) at
// density 0.5 in this run's block results (as summarize.py does for the composed estimate).
std::map<std::string, Choice> choose_network(const json& results, std::int64_t batch,
                                             const std::string& prec,
                                             const std::vector<BlockType>& blocks) {
  std::map<std::string, Choice> out;
  std::map<int, std::vector<const BlockType*>> stages;
  for (const auto& b : blocks) stages[b.stage].push_back(&b);
  for (const auto& [stage, sb] : stages) {
    // best[S][block] = (ms, choice)
    std::map<std::int64_t, std::map<std::string, std::pair<double, Choice>>> best;
    for (const auto& r : results) {
      if (r["mode"] != "dynamic" || r["batch"] != batch || r["precision"] != prec ||
          std::abs(r["density"].get<double>() - 0.5) > 1e-9 || r["stage"] != stage ||
          r.value("fp16_library_dynamic", false))  // a baseline row, not a form the chain runs
        continue;
      const auto g = r["granularity"].get<std::int64_t>();
      const auto name = r["block"].get<std::string>();
      const double ms = r["total_ms"].get<double>();
      auto it = best[g].find(name);
      if (it == best[g].end() || ms < it->second.first) {
        const auto& f = r["fusion_flags"];
        k::Fusion fu;
        fu.masker_conv1 = f[0].get<bool>(), fu.gather_conv1 = f[1].get<bool>();
        fu.conv3_scatter_add = f[2].get<bool>();
        fu.union_conv1 = f.size() > 3 && f[3].get<bool>();  // files from before the union form
        best[g][name] = {ms, Choice{g, fu, r["library_conv1"].get<bool>()}};
      }
    }
    double best_sum = 1e300;
    for (const auto& [g, per] : best) {
      if (per.size() != sb.size()) continue;
      double sum = 0;
      for (const auto* b : sb) sum += b->count * per.at(b->name).first;
      if (sum < best_sum) {
        best_sum = sum;
        for (const auto* b : sb) out[b->name] = per.at(b->name).second;
      }
    }
  }
  return out;
}

// Times one forward of the chained blocks: eager (every kernel launched from the host per
// forward) and as one CUDA graph, each the median of `runs` CUDA-event-timed forwards after
// warm-up. The chain's input is a fixed non-negative map (what the stem's ReLU + max-pool
// hand over); every identity block of a dynamic chain updates its input in place, and every
// first block of a stage writes a fresh map, so repeated forwards compute the same thing.
json time_network(k::Context& ctx, k::Precision prec, const std::vector<BlockType>& blocks,
                  const std::map<std::string, Choice>* dyn, const Options& o) {
  cudaStream_t stream = nullptr;
  check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  std::vector<std::unique_ptr<k::BlockRunner>> chain;
  std::vector<std::string> names;
  std::uint64_t seed = 100;
  for (const auto& bt : blocks) {
    for (int i = 0; i < bt.count; ++i) {
      k::BlockConfig cfg;
      cfg.shape = bt.shape, cfg.precision = prec, cfg.seed = ++seed;
      cfg.cub_mask_select = o.cub_select;
      cfg.im2col_conv2 = o.im2col_conv2;
      cfg.wgmma = o.wgmma;
      cfg.library_1x1 = o.library_1x1;
      cfg.library_first_pick = o.library_first_pick;
      if (dyn != nullptr) {
        const Choice& c = dyn->at(bt.name);
        k::DynamicSettings d;
        d.granularity = c.granularity, d.density = 0.5, d.fusion = c.fusion;
        d.library_conv1 = c.library_conv1;
        d.in_place_residual = o.in_place && !bt.shape.has_projection();
        cfg.dynamic = d;
      }
      chain.push_back(std::make_unique<k::BlockRunner>(ctx, cfg));
      names.push_back(bt.name.substr(0, bt.name.size() - 1) + std::to_string(i));
    }
  }
  const auto& s0 = blocks.front().shape;
  const long long in_elems = s0.batch * s0.height * s0.width * s0.in_channels;
  // The blocks' storage type: __half for fp16, float otherwise.
  const bool half = prec == k::Precision::fp16;
  const std::size_t elem = half ? sizeof(__half) : sizeof(float);
  void* input = nullptr;
  check(cudaMalloc(&input, elem * in_elems), "cudaMalloc");
  {
    std::vector<float> h(static_cast<std::size_t>(in_elems));
    for (std::size_t i = 0; i < h.size(); ++i) h[i] = std::abs(k::random_uniform(99, 1, i));
    if (half) {
      std::vector<__half> hh(h.size());
      for (std::size_t i = 0; i < h.size(); ++i) hh[i] = __float2half_rn(h[i]);
      check(cudaMemcpy(input, hh.data(), elem * hh.size(), cudaMemcpyHostToDevice), "copy");
    } else {
      check(cudaMemcpy(input, h.data(), elem * h.size(), cudaMemcpyHostToDevice), "copy");
    }
  }
  const auto forward = [&] {
    void* x = input;
    for (auto& r : chain) x = r->run_on(x, stream);
  };
  // Calibration forward: each masker's bias from its real input, so that d ~ 0.5.
  if (dyn != nullptr) {
    void* x = input;
    for (auto& r : chain) {
      r->calibrate_masker(x, 0.5);
      x = r->run_on(x, stream);
      check(cudaStreamSynchronize(stream), "calibration forward");
    }
  }
  Events ev(2);
  const auto time = [&](const std::function<void()>& fn) {
    for (int i = 0; i < o.warmup; ++i) fn();
    check(cudaStreamSynchronize(stream), "warm-up");
    std::vector<double> t;
    for (int i = 0; i < std::max(o.runs, 20); ++i) {
      check(cudaEventRecord(ev[0], stream), "record");
      fn();
      check(cudaEventRecord(ev[1], stream), "record");
      check(cudaEventSynchronize(ev[1]), "sync");
      t.push_back(ev.ms(0, 1));
    }
    return median(t);
  };
  json j;
  j["eager_ms"] = time(forward);
  if (dyn != nullptr) {  // measured density per block, of the forward just timed
    json dens = json::array();
    for (std::size_t i = 0; i < chain.size(); ++i) {
      dens.push_back({{"block", names[i]},
                      {"density", static_cast<double>(chain[i]->active_patches()) /
                                      static_cast<double>(chain[i]->total_patches())}});
    }
    j["density_per_block"] = dens;
  }
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "begin capture");
  forward();
  check(cudaStreamEndCapture(stream, &graph), "end capture");
  check(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");
  j["graph_ms"] = time([&] { check(cudaGraphLaunch(exec, stream), "cudaGraphLaunch"); });
  j["blocks"] = chain.size();
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  check(cudaStreamSynchronize(stream), "sync");
  cudaFree(input);
  cudaStreamDestroy(stream);
  return j;
}

// Whole or not at all (temp file + rename): a reader never sees a half-written file.
void write(json root, const json& results, const std::string& path) {
  root["results"] = results;
  lasnet::write_file_atomic(path, root.dump(1) + "\n", lasnet::Overwrite::allow);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse(argc, argv);
    if (k::cuda_device_count() == 0) {
      std::printf("SKIPPED: no CUDA device\n");
      return 0;
    }
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    const Ceilings c = measure_ceilings();
    std::printf(
        "device %s: copy %.0f GB/s, fp32 GEMM %.1f TFLOP/s, tf32 GEMM %.1f TFLOP/s, fp16 GEMM "
        "%.1f TFLOP/s\n",
        prop.name, c.bandwidth_bytes_per_s * 1e-9, c.fp32_flops_per_s * 1e-12,
        c.tf32_flops_per_s * 1e-12, c.fp16_flops_per_s * 1e-12);
    k::Context ctx;
    json root;
    root["device"] = prop.name;
    root["ceilings"] = {{"copy_bandwidth_bytes_per_s", c.bandwidth_bytes_per_s},
                        {"fp32_gemm_flops_per_s", c.fp32_flops_per_s},
                        {"tf32_gemm_flops_per_s", c.tf32_flops_per_s},
                        {"fp16_gemm_flops_per_s", c.fp16_flops_per_s}};
    root["runs"] = o.runs;
    root["warmup"] = o.warmup;
    root["in_place"] = o.in_place;
    root["cub_select"] = o.cub_select;
    root["im2col_conv2"] = o.im2col_conv2 ? json(*o.im2col_conv2) : json("auto");
    root["wgmma"] = o.wgmma ? json(*o.wgmma) : json("auto");
    root["library_1x1"] = o.library_1x1 ? json(*o.library_1x1) : json("auto");
    root["library_first_pick"] = o.library_first_pick;
    root["union"] = o.union_form == 2 ? json("all") : json(o.union_form == 1);
    json results = json::array();
    for (const auto batch : o.batches) {
      for (const auto prec : o.precisions) {
        for (const auto& bt : resnet101_blocks(batch)) {
          k::BlockConfig cfg;
          cfg.shape = bt.shape, cfg.precision = prec, cfg.seed = 7;
          cfg.cub_mask_select = o.cub_select;
          cfg.im2col_conv2 = o.im2col_conv2;
          cfg.wgmma = o.wgmma;
          cfg.library_1x1 = o.library_1x1;
          cfg.library_first_pick = o.library_first_pick;
          const double x_bytes = (prec == k::Precision::fp16 ? 2.0 : 4.0) * bt.shape.batch *
                                 bt.shape.height * bt.shape.width * bt.shape.in_channels;
          cfg.input_copies =
              std::clamp<std::int64_t>(static_cast<std::int64_t>(100e6 / x_bytes) + 1, 1, 32);
          const auto base = [&](const std::string& mode) {
            return json{{"block", bt.name},
                        {"stage", bt.stage},
                        {"count", bt.count},
                        {"batch", batch},
                        {"precision", k::to_string(prec)},
                        {"mode", mode},
                        {"shape", k::to_string(bt.shape)}};
          };
          json d = base("dense");
          d.update(time_block(ctx, cfg, o, c));
          std::printf("%-9s n=%-3lld %s dense %-39s %8.3f ms (floor %.3f)\n", bt.name.c_str(),
                      static_cast<long long>(batch), std::string(k::to_string(prec)).c_str(), "",
                      d["total_ms"].get<double>(), d["floor_ms"].get<double>());
          std::fflush(stdout);
          results.push_back(d);
          for (const auto s : o.granularities) {
            for (const double density : o.densities) {
              // (fusion, cuBLASLt conv1): the unfused-masker form, and the masker-fused form
              // with the library conv1; at d = 0.5 also the one-kernel masker_conv1; the
              // union form as --union says.
              const auto fusion = [](bool masker, bool gather, bool scatter, bool uni) {
                k::Fusion f;
                f.masker_conv1 = masker, f.gather_conv1 = gather;
                f.conv3_scatter_add = scatter, f.union_conv1 = uni;
                return f;
              };
              std::vector<std::pair<k::Fusion, bool>> variants{
                  {fusion(false, true, true, false), false},
                  {fusion(true, true, true, false), true}};
              if (density == 0.5) variants.push_back({fusion(true, true, true, false), false});
              if (o.union_form == 2 || (o.union_form == 1 && density == 0.5)) {
                variants.push_back({fusion(false, true, true, true), false});
              }
              // fp16: also the unfused and union forms through the fp16 implicit GEMM and, as
              // the baseline, through cuBLASLt at the mask's capacity (fp16_library_dynamic).
              std::vector<bool> library_dynamic(variants.size(), false);
              if (prec == k::Precision::fp16) {
                for (const bool uni : {false, true}) {
                  if (uni && !(o.union_form == 2 || (o.union_form == 1 && density == 0.5))) {
                    continue;
                  }
                  for (const bool baseline : {false, true}) {
                    variants.push_back({fusion(false, false, false, uni), false});
                    library_dynamic.push_back(baseline);
                  }
                }
              }
              for (std::size_t vi = 0; vi < variants.size(); ++vi) {
                const auto& [fu, lib] = variants[vi];
                if (!k::fusion_supported(prec, fu, lib)) continue;
                cfg.fp16_library_dynamic = library_dynamic[vi];
                k::DynamicSettings dyn;
                dyn.granularity = s, dyn.density = density, dyn.fusion = fu;
                dyn.library_conv1 = lib;
                dyn.in_place_residual = o.in_place && !bt.shape.has_projection();
                cfg.dynamic = dyn;
                json j = base("dynamic");
                j["granularity"] = s;
                j["density"] = density;
                j["fusion"] = k::to_string(fu) + (lib ? " (cuBLASLt conv1)" : "") +
                              (cfg.fp16_library_dynamic ? " (cuBLASLt capacity)" : "") +
                              (dyn.in_place_residual ? " in-place" : "");
                j["library_conv1"] = lib;
                if (cfg.fp16_library_dynamic) j["fp16_library_dynamic"] = true;
                // A fourth flag only where it is set: other rows stay as they were.
                j["fusion_flags"] = {fu.masker_conv1, fu.gather_conv1, fu.conv3_scatter_add};
                if (fu.union_conv1) j["fusion_flags"].push_back(true);
                j.update(time_block(ctx, cfg, o, c));
                std::printf(
                    "%-9s n=%-3lld %s S=%lld d=%.2f %-39s %8.3f ms (floor %.3f) %.2fx dense\n",
                    bt.name.c_str(), static_cast<long long>(batch),
                    std::string(k::to_string(prec)).c_str(), static_cast<long long>(s), density,
                    j["fusion"].get<std::string>().c_str(), j["total_ms"].get<double>(),
                    j["floor_ms"].get<double>(),
                    j["total_ms"].get<double>() / d["total_ms"].get<double>());
                std::fflush(stdout);
                results.push_back(j);
              }
              cfg.dynamic.reset();
              cfg.fp16_library_dynamic = false;
            }
          }
          write(root, results, o.out);  // after every block type: a cut-short run keeps its data
        }
        if (o.network) {
          const auto blocks = resnet101_blocks(batch);
          const std::string p(k::to_string(prec));
          json net{{"mode", "network"}, {"batch", batch}, {"precision", p}};
          net["dense"] = time_network(ctx, prec, blocks, nullptr, o);
          const auto choice = choose_network(results, batch, p, blocks);
          if (choice.size() == blocks.size()) {
            json cj = json::object();
            for (const auto& [name, ch] : choice) {
              cj[name] = {{"granularity", ch.granularity},
                          {"fusion", k::to_string(ch.fusion) +
                                         (ch.library_conv1 ? " (cuBLASLt conv1)" : "")}};
            }
            net["dynamic_choice"] = cj;
            net["dynamic"] = time_network(ctx, prec, blocks, &choice, o);
          }
          std::printf("network   n=%-3lld %s dense eager %.3f graph %.3f ms",
                      static_cast<long long>(batch), p.c_str(),
                      net["dense"]["eager_ms"].get<double>(),
                      net["dense"]["graph_ms"].get<double>());
          if (net.contains("dynamic")) {
            std::printf(" | dynamic d=0.5 eager %.3f graph %.3f ms",
                        net["dynamic"]["eager_ms"].get<double>(),
                        net["dynamic"]["graph_ms"].get<double>());
          }
          std::printf("\n");
          std::fflush(stdout);
          results.push_back(net);
          write(root, results, o.out);
        }
      }
    }
    write(root, results, o.out);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_kernels: %s\n", e.what());
    return 1;
  }
}
