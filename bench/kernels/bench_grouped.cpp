// Times conv2 (and the whole block) of the RegNetY-400MF, RegNetY-800MF and MobileNetV2 stage
// blocks, dense and dynamic, with the depthwise / grouped 3x3 kernels (grouped_conv.cu) against
// the old one-thread-per-output direct kernel (BlockConfig::legacy_direct_conv) in the same run.
// Per configuration: warm-up runs, the median of `runs` CUDA-event-timed block runs, and per-step
// medians from a second pass with events between steps. Inputs rotate among copies that
// together exceed the L2 (50 MB). Floors use the H100's ceilings that bench_kernels measured
// (docs/kernels.md: 2975 GB/s device copy, 51.4 TFLOP/s cuBLAS fp32 GEMM), fixed here so that
// floors compare across runs; fp32 only (the kernels compute fp32 for tf32 too).
//   bench_grouped --out FILE.json [--batches 1,128] [--density 0.5] [--runs 50] [--warmup 5]
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "lasnet/common/error.hpp"
#include "lasnet/common/file_io.hpp"
#include "lasnet/kernels/runner.hpp"
#include "timing.hpp"

namespace k = lasnet::kernels;
using json = nlohmann::ordered_json;

namespace {

constexpr double kBandwidth = 2975e9;  // bytes/s, H100 measured device-copy bandwidth
constexpr double kFp32Peak = 51.4e12;  // FLOP/s, H100 measured cuBLAS fp32 GEMM rate

using lasnet::bench::check;
using lasnet::bench::Events;
using lasnet::bench::median;

struct Options {
  std::string out = "grouped.json";
  std::vector<std::int64_t> batches{1, 128};
  double density = 0.5;
  int runs = 50, warmup = 5;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw lasnet::Error("missing value after " + a);
      return argv[++i];
    };
    try {
      if (a == "--out") {
        o.out = value();
      } else if (a == "--batches") {
        o.batches.clear();
        std::stringstream ss(value());
        for (std::string item; std::getline(ss, item, ',');) o.batches.push_back(std::stoll(item));
      } else if (a == "--density") {
        o.density = std::stod(value());
      } else if (a == "--runs") {
        o.runs = std::stoi(value());
      } else if (a == "--warmup") {
        o.warmup = std::stoi(value());
      } else {
        throw lasnet::Error("unknown option " + a);
      }
    } catch (const std::logic_error& e) {
      throw lasnet::Error("while handling " + a + ": " + e.what());
    }
  }
  if (o.runs < 1 || o.warmup < 0) throw lasnet::Error("--runs must be >= 1, --warmup >= 0");
  return o;
}

struct BlockType {
  std::string net, name;
  std::int64_t h, cin, cmid, cout, stride, groups, granularity;
};

// First block of each stage and, where the stage has more, one repeated block (".x"); input
// maps after the 32-channel stride-2 stem (112 x 112). Granularities are the specs' (examples/).
std::vector<BlockType> blocks() {
  std::vector<BlockType> v;
  const auto add = [&v](const char* net, const char* name, std::int64_t h, std::int64_t cin,
                        std::int64_t cmid, std::int64_t cout, std::int64_t stride,
                        std::int64_t group_width, std::int64_t s) {
    v.push_back({net, name, h, cin, cmid, cout, stride, cmid / group_width, s});
  };
  // RegNetY-400MF: widths 48-104-208-440, group width 8; S 4-4-2-1.
  add("regnety_400mf", "s1.0", 112, 32, 48, 48, 2, 8, 4);
  add("regnety_400mf", "s2.0", 56, 48, 104, 104, 2, 8, 4);
  add("regnety_400mf", "s2.x", 28, 104, 104, 104, 1, 8, 4);
  add("regnety_400mf", "s3.0", 28, 104, 208, 208, 2, 8, 2);
  add("regnety_400mf", "s3.x", 14, 208, 208, 208, 1, 8, 2);
  add("regnety_400mf", "s4.0", 14, 208, 440, 440, 2, 8, 1);
  add("regnety_400mf", "s4.x", 7, 440, 440, 440, 1, 8, 1);
  // RegNetY-800MF: widths 64-128-320-768, group width 16; S 4-4-2-1.
  add("regnety_800mf", "s1.0", 112, 32, 64, 64, 2, 16, 4);
  add("regnety_800mf", "s2.0", 56, 64, 128, 128, 2, 16, 4);
  add("regnety_800mf", "s2.x", 28, 128, 128, 128, 1, 16, 4);
  add("regnety_800mf", "s3.0", 28, 128, 320, 320, 2, 16, 2);
  add("regnety_800mf", "s3.x", 14, 320, 320, 320, 1, 16, 2);
  add("regnety_800mf", "s4.0", 14, 320, 768, 768, 2, 16, 1);
  add("regnety_800mf", "s4.x", 7, 768, 768, 768, 1, 16, 1);
  // MobileNetV2 inverted residuals (expansion 6, depthwise conv2); S 8-4-4-2-2-1-1.
  add("mobilenetv2", "b1.0", 112, 32, 32, 16, 1, 1, 8);
  add("mobilenetv2", "b2.0", 112, 16, 96, 24, 2, 1, 4);
  add("mobilenetv2", "b2.x", 56, 24, 144, 24, 1, 1, 4);
  add("mobilenetv2", "b3.0", 56, 24, 144, 32, 2, 1, 4);
  add("mobilenetv2", "b3.x", 28, 32, 192, 32, 1, 1, 4);
  add("mobilenetv2", "b4.0", 28, 32, 192, 64, 2, 1, 2);
  add("mobilenetv2", "b4.x", 14, 64, 384, 64, 1, 1, 2);
  add("mobilenetv2", "b5.0", 14, 64, 384, 96, 1, 1, 2);
  add("mobilenetv2", "b5.x", 14, 96, 576, 96, 1, 1, 2);
  add("mobilenetv2", "b6.0", 14, 96, 576, 160, 2, 1, 1);
  add("mobilenetv2", "b6.x", 7, 160, 960, 160, 1, 1, 1);
  add("mobilenetv2", "b7.0", 7, 160, 960, 320, 1, 1, 1);
  return v;
}

struct Timing {
  double total_ms = 0, floor_ms = 0;
  double conv2_ms = 0, conv2_floor_ms = 0, conv2_flops = 0, conv2_bytes = 0;
  std::string conv2_kernel;
  json steps = json::array();
};

Timing time_block(k::Context& ctx, const k::BlockConfig& cfg, const Options& o) {
  k::BlockRunner r(ctx, cfg);
  const auto& steps = r.steps();
  Events ev(steps.size() + 1);
  std::int64_t input = 0;
  for (int i = 0; i < o.warmup; ++i) r.run(nullptr, input++);
  check(cudaDeviceSynchronize(), "warm-up");
  std::vector<double> total;
  for (int i = 0; i < o.runs; ++i) {
    check(cudaEventRecord(ev[0]), "record");
    r.run(nullptr, input++);
    check(cudaEventRecord(ev[1]), "record");
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
    check(cudaEventSynchronize(ev[steps.size()]), "sync");
    for (std::size_t s = 0; s < steps.size(); ++s) per[s].push_back(ev.ms(s, s + 1));
  }
  check(cudaGetLastError(), "timed runs");
  Timing t;
  t.total_ms = median(total);
  for (std::size_t s = 0; s < steps.size(); ++s) {
    const double f = std::max(steps[s].bytes / kBandwidth, steps[s].flops / kFp32Peak) * 1e3;
    const double m = median(per[s]);
    t.floor_ms += f;
    if (steps[s].name == "conv2") {
      t.conv2_ms = m, t.conv2_floor_ms = f, t.conv2_kernel = steps[s].kernel;
      t.conv2_flops = steps[s].flops, t.conv2_bytes = steps[s].bytes;
    }
    t.steps.push_back(
        {{"name", steps[s].name}, {"kernel", steps[s].kernel}, {"median_ms", m}, {"floor_ms", f}});
  }
  return t;
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
    k::Context ctx;
    json root;
    root["device"] = prop.name;
    root["precision"] = "fp32";
    root["ceilings"] = {{"bandwidth_bytes_per_s", kBandwidth}, {"fp32_flops_per_s", kFp32Peak}};
    root["runs"] = o.runs;
    root["warmup"] = o.warmup;
    std::string cmd = argv[0];
    for (int i = 1; i < argc; ++i) cmd += std::string(" ") + argv[i];
    root["command"] = cmd;
    json results = json::array();
    std::printf("%-14s %-5s %4s %-8s %-16s %9s %9s %7s %9s | %9s %9s %9s\n", "net", "block", "n",
                "mode", "new kernel", "old ms", "new ms", "speedup", "floor ms", "blk old",
                "blk new", "blk floor");
    for (const auto batch : o.batches) {
      for (const auto& bt : blocks()) {
        k::BlockConfig cfg;
        cfg.shape.batch = batch, cfg.shape.height = cfg.shape.width = bt.h;
        cfg.shape.in_channels = bt.cin, cfg.shape.mid_channels = bt.cmid;
        cfg.shape.out_channels = bt.cout, cfg.shape.stride = bt.stride;
        cfg.shape.groups = bt.groups;
        cfg.precision = k::Precision::fp32, cfg.seed = 11;
        const double x_bytes = 4.0 * batch * bt.h * bt.h * bt.cin;
        cfg.input_copies =
            std::clamp<std::int64_t>(static_cast<std::int64_t>(100e6 / x_bytes) + 1, 1, 32);
        // Dense; dynamic masker+gather+scatter with the cuBLASLt conv1 (conv2 reads conv1's full
        // map through the active-patch rows: patch RowMap); dynamic gather+scatter (conv1 writes
        // the gathered halo rows, conv2 reads them: grid RowMap with the device-side count).
        for (const int form : {0, 1, 2}) {
          const bool dynamic = form != 0;
          if (dynamic) {
            k::DynamicSettings dyn;
            dyn.granularity = bt.granularity, dyn.density = o.density;
            dyn.fusion = form == 1 ? k::Fusion{true, true, true} : k::Fusion{false, true, true};
            dyn.library_conv1 = form == 1;
            cfg.dynamic = dyn;
          } else {
            cfg.dynamic.reset();
          }
          cfg.legacy_direct_conv = true;
          const Timing old_t = time_block(ctx, cfg, o);
          cfg.legacy_direct_conv = false;
          const Timing new_t = time_block(ctx, cfg, o);
          json j{{"net", bt.net},
                 {"block", bt.name},
                 {"batch", batch},
                 {"mode", dynamic ? "dynamic" : "dense"},
                 {"shape", k::to_string(cfg.shape)}};
          if (dynamic) {
            j["granularity"] = bt.granularity;
            j["density"] = o.density;
            j["fusion"] =
                k::to_string(cfg.dynamic->fusion) + (form == 1 ? " (cuBLASLt conv1)" : "");
          }
          j["conv2"] = {{"old_kernel", old_t.conv2_kernel},
                        {"new_kernel", new_t.conv2_kernel},
                        {"old_ms", old_t.conv2_ms},
                        {"new_ms", new_t.conv2_ms},
                        {"floor_ms", new_t.conv2_floor_ms},
                        {"flops", new_t.conv2_flops},
                        {"bytes", new_t.conv2_bytes},
                        {"speedup", old_t.conv2_ms / new_t.conv2_ms},
                        {"new_over_floor", new_t.conv2_ms / new_t.conv2_floor_ms}};
          j["whole_block"] = {{"old_ms", old_t.total_ms},
                              {"new_ms", new_t.total_ms},
                              {"floor_ms", new_t.floor_ms},
                              {"speedup", old_t.total_ms / new_t.total_ms}};
          j["steps_new"] = new_t.steps;
          std::printf("%-14s %-5s %4lld %-8s %-16s %9.4f %9.4f %6.2fx %9.4f | %9.4f %9.4f %9.4f\n",
                      bt.net.c_str(), bt.name.c_str(), static_cast<long long>(batch),
                      form == 0 ? "dense" : (form == 1 ? "dyn_m+g+s" : "dyn_g+s"),
                      new_t.conv2_kernel.c_str(), old_t.conv2_ms, new_t.conv2_ms,
                      old_t.conv2_ms / new_t.conv2_ms, new_t.conv2_floor_ms, old_t.total_ms,
                      new_t.total_ms, new_t.floor_ms);
          std::fflush(stdout);
          results.push_back(j);
        }
        write(root, results, o.out);  // after every block: a cut-short run keeps its data
      }
    }
    write(root, results, o.out);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_grouped: %s\n", e.what());
    return 1;
  }
}
