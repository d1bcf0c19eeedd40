// The CUDA backend: device discovery and the micro-benchmarks of `lasnet profile`.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <optional>
#include <regex>

#include "block_timer.hpp"
#include "cuda_backend.hpp"
#include "cuda_check.hpp"
#include "cuda_resources.hpp"
#include "lasnet/common/error.hpp"
#include "microbench.hpp"
#include "network_runner.hpp"
#include "nvml_clocks.hpp"

namespace lasnet::profiler {

namespace cuda {
namespace {

int attribute(cudaDeviceAttr attr, int device) {
  int value = 0;
  LASNET_CUDA_CHECK(cudaDeviceGetAttribute(&value, attr, device));
  return value;
}

// "NVRM version: NVIDIA UNIX x86_64 Kernel Module  570.86.15  ..." -> "570.86.15".
std::string driver_from_proc() {
  std::ifstream in("/proc/driver/nvidia/version");
  std::string line;
  if (!std::getline(in, line)) return {};
  std::smatch m;
  static const std::regex version(R"((\d+\.\d+(\.\d+)?))");
  if (std::regex_search(line, m, version)) return m.str(1);
  return {};
}

std::string cuda_version_text(int v) {
  return fmt::format("{}.{}", v / 1000, (v % 1000) / 10);
}

DeviceInfo query_device(int index) {
  LASNET_CUDA_CHECK(cudaSetDevice(index));
  cudaDeviceProp p{};
  LASNET_CUDA_CHECK(cudaGetDeviceProperties(&p, index));
  DeviceInfo d;
  d.index = index;
  d.name = p.name;
  std::array<char, 32> bus{};
  LASNET_CUDA_CHECK(cudaDeviceGetPCIBusId(bus.data(), static_cast<int>(bus.size()), index));
  d.pci_bus_id = bus.data();
  d.compute_capability_major = p.major;
  d.compute_capability_minor = p.minor;
  d.sm_count = p.multiProcessorCount;
  d.fp32_lanes_per_sm = fp32_lanes_for(p.major, p.minor);
  d.max_sm_clock_hz = attribute(cudaDevAttrClockRate, index) * 1e3;
  d.memory_clock_hz = attribute(cudaDevAttrMemoryClockRate, index) * 1e3;
  d.memory_bus_width_bits = attribute(cudaDevAttrGlobalMemoryBusWidth, index);
  d.global_memory_bytes = static_cast<std::int64_t>(p.totalGlobalMem);
  d.l2_size_bytes = p.l2CacheSize;
  d.shared_memory_per_sm_bytes = static_cast<std::int64_t>(p.sharedMemPerMultiprocessor);
  d.max_threads_per_sm = p.maxThreadsPerMultiProcessor;
  d.max_blocks_per_sm = p.maxBlocksPerMultiProcessor;
  int runtime = 0, driver = 0;
  LASNET_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
  LASNET_CUDA_CHECK(cudaDriverGetVersion(&driver));
  d.cuda_runtime_version = cuda_version_text(runtime);
  d.driver_version = driver_from_proc();
  if (d.driver_version.empty()) d.driver_version = "CUDA " + cuda_version_text(driver);
  return d;
}

std::int64_t floor_power_of_two(std::int64_t x) {
  std::int64_t p = 1;
  while (p * 2 <= x) p *= 2;
  return p;
}

class CudaGpu final : public Gpu {
 public:
  explicit CudaGpu(int index) : info_(query_device(index)), nvml_(info_.pci_bus_id) {
    if (const auto version = nvml_.driver_version(); !version.empty()) {
      info_.driver_version = version;
    }
  }
  const DeviceInfo& info() const override { return info_; }
  ClockState clock_state() const override { return nvml_.clock_state(); }
  HardwareMeasurement measure_hardware(const HardwareOptions& options,
                                       const ProgressFn& progress) override;
  MeasurementSet time_blocks(const std::vector<BlockJob>& jobs, const SamplingPlan& plan,
                             const ProgressFn& progress) override {
    return cuda::time_blocks(info_, nvml_, jobs, plan, progress);
  }
  NetworkMeasurement run_network(const NetworkProgram& program, const NetworkRunOptions& options,
                                 const ProgressFn& progress) override {
    return cuda::run_network(info_, program, options, progress);
  }

 private:
  DeviceInfo info_;
  Nvml nvml_;
};

// Events around one enqueued piece of work, per the sampling plan.
class EventTimer {
 public:
  EventTimer(const Stream& stream, const SamplingPlan& plan) : stream_(stream), plan_(plan) {}
  // Seconds per run of `enqueue`, divided by `per_run` (e.g. launches per sample).
  std::vector<double> time(const std::function<void()>& enqueue, double per_run = 1,
                           const std::function<void()>& before = {}) {
    return collect_samples(plan_, [&] {
      if (before) before();
      start_.record(stream_.get());
      enqueue();
      stop_.record(stream_.get());
      stop_.synchronize();
      return stop_.seconds_since(start_) / per_run;
    });
  }

 private:
  const Stream& stream_;
  const SamplingPlan& plan_;
  Event start_, stop_;
};

Figure make_figure(std::string_view name, std::string_view unit, std::string description,
                   const std::vector<double>& samples, const SamplingPlan& plan) {
  Figure f;
  f.name = std::string(name);
  f.unit = std::string(unit);
  f.description = std::move(description);
  f.value = summarize(samples);
  f.noisy = is_noisy(f.value, plan);
  return f;
}

std::vector<double> rates(double work, const std::vector<double>& seconds) {
  std::vector<double> r;
  r.reserve(seconds.size());
  for (const double t : seconds) r.push_back(work / t);
  return r;
}

HardwareMeasurement CudaGpu::measure_hardware(const HardwareOptions& options,
                                              const ProgressFn& progress) {
  LASNET_CUDA_CHECK(cudaSetDevice(info_.index));
  HardwareMeasurement m;
  m.device = info_;
  m.plan = options.plan;
  m.date = utc_now_iso8601();
  m.clocks_before = nvml_.clock_state();
  const SamplingPlan& plan = options.plan;
  constexpr std::size_t steps = 12;
  std::size_t step = 0;
  const auto next = [&](std::string_view name) {
    if (progress) progress(name, step, steps);
    ++step;
  };

  Stream stream;
  EventTimer timer(stream, plan);
  const cudaStream_t s = stream.get();
  const LaunchShape full{static_cast<int>(info_.sm_count * (info_.max_threads_per_sm / 256)), 256};

  // DRAM buffers: far larger than L2, within a quarter of free memory each.
  std::size_t free_bytes = 0, total_bytes = 0;
  LASNET_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  std::int64_t dram_bytes = options.dram_buffer_bytes;
  if (dram_bytes <= 0) dram_bytes = std::max<std::int64_t>(32 * info_.l2_size_bytes, 1LL << 30);
  dram_bytes = std::min<std::int64_t>(dram_bytes, static_cast<std::int64_t>(free_bytes / 4));
  dram_bytes = dram_bytes / (1 << 20) * (1 << 20);
  if (dram_bytes < 8 * info_.l2_size_bytes) {
    throw Error(fmt::format("not enough free GPU memory for the DRAM benchmarks ({} MiB free)",
                            free_bytes >> 20));
  }
  const auto bytes = static_cast<std::size_t>(dram_bytes);
  DeviceBuffer source(bytes), destination(bytes), sink(64);
  fill_random_float(source.as<float>(), bytes / sizeof(float), 1, s);
  fill_random_float(destination.as<float>(), bytes / sizeof(float), 2, s);
  stream.synchronize();
  const std::string mib = fmt::format("{} MiB", bytes >> 20);

  next(figure::dram_read);
  m.figures.push_back(make_figure(
      figure::dram_read, "B/s", fmt::format("float4 loads streaming a {} buffer", mib),
      rates(static_cast<double>(bytes),
            timer.time([&] { launch_read(source.as<float>(), bytes, sink.as<float>(), full, s); })),
      plan));
  next(figure::dram_write);
  m.figures.push_back(
      make_figure(figure::dram_write, "B/s", fmt::format("float4 stores over a {} buffer", mib),
                  rates(static_cast<double>(bytes),
                        timer.time([&] { launch_write(destination.as<float>(), bytes, full, s); })),
                  plan));
  next(figure::dram_copy);
  m.figures.push_back(make_figure(
      figure::dram_copy, "B/s",
      fmt::format("float4 copy kernel, {} to {}; bytes read plus bytes written", mib, mib),
      rates(2.0 * static_cast<double>(bytes), timer.time([&] {
        launch_copy(source.as<float>(), destination.as<float>(), bytes, full, s);
      })),
      plan));

  // L2: a buffer of at most a quarter of L2, read again and again (ld.global.cg skips L1).
  {
    next(figure::l2_read);
    const auto l2_bytes = static_cast<std::size_t>(floor_power_of_two(info_.l2_size_bytes / 4));
    const int repeats =
        static_cast<int>(std::max<std::size_t>(1, (std::size_t{1} << 32) / l2_bytes));
    m.figures.push_back(make_figure(
        figure::l2_read, "B/s",
        fmt::format("all SMs re-reading an L2-resident {} KiB buffer {} times", l2_bytes >> 10,
                    repeats),
        rates(static_cast<double>(l2_bytes) * repeats, timer.time([&] {
          launch_l2_read(source.as<float>(), l2_bytes, repeats, sink.as<float>(), full, s);
        })),
        plan));
    next(figure::sm_read);
    const std::size_t sm_bytes = std::size_t{1} << 20;
    const int sm_repeats = 64;
    const LaunchShape one_sm{1, 1024};
    m.figures.push_back(make_figure(
        figure::sm_read, "B/s",
        fmt::format("one block of 1024 threads re-reading an L2-resident {} KiB buffer",
                    sm_bytes >> 10),
        rates(static_cast<double>(sm_bytes) * sm_repeats, timer.time([&] {
          launch_l2_read(source.as<float>(), sm_bytes, sm_repeats, sink.as<float>(), one_sm, s);
        })),
        plan));
  }

  // FP32 FMA peak, and the SM clock it ran at (cycles over globaltimer nanoseconds).
  {
    next(figure::fp32_fma);
    constexpr int iterations = 8192;
    DeviceBuffer clocks(2 * sizeof(unsigned long long));
    std::vector<double> clock_samples;
    const double flops = 2.0 * fma_chains * iterations * full.grid * full.block;
    const auto seconds = timer.time([&] {
      launch_fma(iterations, sink.as<float>(), clocks.as<unsigned long long>(), full, s);
    });
    // The last run's clock; the kernel is long enough (about a millisecond) to be exact.
    unsigned long long host_clocks[2] = {0, 0};
    LASNET_CUDA_CHECK(
        cudaMemcpy(host_clocks, clocks.get(), sizeof host_clocks, cudaMemcpyDeviceToHost));
    if (host_clocks[1] > 0) {
      m.measured_sm_clock_hz =
          static_cast<double>(host_clocks[0]) / (static_cast<double>(host_clocks[1]) * 1e-9);
    }
    m.figures.push_back(
        make_figure(figure::fp32_fma, "FLOP/s",
                    fmt::format("{} independent FMA chains per thread, {} x {} threads", fma_chains,
                                full.grid, full.block),
                    rates(flops, seconds), plan));
  }

  // Tensor-core (and FP32) GEMM peaks through cuBLAS, square matrices.
  {
    CublasHandle handle;
    LASNET_CUDA_CHECK(cublasSetStream(handle.get(), s));
    const std::int64_t n = options.gemm_size;
    const auto elements = static_cast<std::size_t>(n * n);
    DeviceBuffer a(elements * 4), b(elements * 4), c(elements * 4);
    const double flops =
        2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n);
    const float alpha = 1.0f, beta = 0.0f;
    const auto gemm = [&](cudaDataType_t type, cublasComputeType_t compute) {
      LASNET_CUDA_CHECK(cublasGemmEx(handle.get(), CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(n),
                                     static_cast<int>(n), static_cast<int>(n), &alpha, a.get(),
                                     type, static_cast<int>(n), b.get(), type, static_cast<int>(n),
                                     &beta, c.get(), type, static_cast<int>(n), compute,
                                     CUBLAS_GEMM_DEFAULT));
    };
    fill_random_float(a.as<float>(), elements, 3, s);
    fill_random_float(b.as<float>(), elements, 4, s);
    const std::string shape = fmt::format("{0} x {0} x {0}", n);
    next(figure::fp32_gemm);
    m.figures.push_back(make_figure(
        figure::fp32_gemm, "FLOP/s", fmt::format("cublasGemmEx FP32 (no tensor cores), {}", shape),
        rates(flops, timer.time([&] { gemm(CUDA_R_32F, CUBLAS_COMPUTE_32F_PEDANTIC); })), plan));
    next(figure::tf32_gemm);
    if (info_.compute_capability_major >= 8) {
      m.figures.push_back(make_figure(
          figure::tf32_gemm, "FLOP/s", fmt::format("cublasGemmEx TF32 tensor cores, {}", shape),
          rates(flops, timer.time([&] { gemm(CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32); })), plan));
    }
    next(figure::fp16_gemm);
    if (info_.compute_capability_major >= 7) {
      fill_random_half(a.get(), elements, 5, s);
      fill_random_half(b.get(), elements, 6, s);
      m.figures.push_back(make_figure(
          figure::fp16_gemm, "FLOP/s",
          fmt::format("cublasGemmEx FP16 tensor cores, FP32 accumulate, {}", shape),
          rates(flops, timer.time([&] { gemm(CUDA_R_16F, CUBLAS_COMPUTE_32F); })), plan));
    }
  }

  // Launch overhead: back-to-back empty kernels queued behind a spinning kernel, so the host's
  // enqueue rate is hidden and only the device's cost per kernel remains.
  {
    next(figure::launch_overhead);
    constexpr int launches = 200;
    const auto host_start = std::chrono::steady_clock::now();
    for (int i = 0; i < launches; ++i) launch_empty(s);
    const std::chrono::duration<double> enqueue = std::chrono::steady_clock::now() - host_start;
    stream.synchronize();
    const auto spin_ns = static_cast<std::uint64_t>(std::max(4.0 * enqueue.count(), 1e-3) * 1e9);
    m.figures.push_back(make_figure(
        figure::launch_overhead, "s",
        fmt::format("device time per empty kernel, {} queued behind a {:.1f} ms spin kernel",
                    launches, spin_ns * 1e-6),
        timer.time(
            [&] {
              for (int i = 0; i < launches; ++i) launch_empty(s);
            },
            launches, [&] { launch_spin(spin_ns, s); }),
        plan));
    // The same empty kernels as nodes of one CUDA graph (what `lasnet run` launches): the GPU
    // processes graph nodes for less than stream launches, which the model prices for graphs.
    next(figure::graph_launch_overhead);
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    struct GraphOwner {
      cudaGraph_t& g;
      cudaGraphExec_t& e;
      ~GraphOwner() {
        if (e != nullptr) LASNET_CUDA_CHECK_NOTHROW(cudaGraphExecDestroy(e));
        if (g != nullptr) LASNET_CUDA_CHECK_NOTHROW(cudaGraphDestroy(g));
      }
    } owner{graph, exec};
    LASNET_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < launches; ++i) launch_empty(s);
    LASNET_CUDA_CHECK(cudaStreamEndCapture(s, &graph));
    LASNET_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    LASNET_CUDA_CHECK(cudaGraphUpload(exec, s));
    m.figures.push_back(make_figure(
        figure::graph_launch_overhead, "s",
        fmt::format("device time per empty kernel node, {} in one CUDA graph behind a {:.1f} ms "
                    "spin kernel",
                    launches, spin_ns * 1e-6),
        timer.time([&] { LASNET_CUDA_CHECK(cudaGraphLaunch(exec, s)); }, launches,
                   [&] { launch_spin(spin_ns, s); }),
        plan));
    next(figure::launch_latency);
    std::vector<double> latency = collect_samples(plan, [&] {
      const auto t0 = std::chrono::steady_clock::now();
      launch_empty(s);
      stream.synchronize();
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    });
    m.figures.push_back(make_figure(figure::launch_latency, "s",
                                    "host wall time of one empty launch plus synchronize", latency,
                                    plan));
  }
  if (progress) progress("done", steps, steps);
  m.clocks_after = nvml_.clock_state();
  return m;
}

}  // namespace
}  // namespace cuda

std::unique_ptr<Gpu> open_cuda_gpu(int index) {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess || count == 0) {
    throw Error(fmt::format(
        "no CUDA device available ({}): this command needs an NVIDIA GPU and its driver",
        error != cudaSuccess ? cudaGetErrorString(error) : "the driver lists no device"));
  }
  if (index < 0 || index >= count) {
    throw Error(fmt::format("--device {}: this machine has {} CUDA device{} (0..{})", index, count,
                            count == 1 ? "" : "s", count - 1));
  }
  return std::make_unique<cuda::CudaGpu>(index);
}

}  // namespace lasnet::profiler
