// Timing of the project's kernels through lasnet::kernels::BlockRunner. Each timed run starts
// with a spin kernel that keeps the GPU busy while the host enqueues the block (so host launch
// latency stays hidden and only the device's per-kernel cost remains, which is what the
// predictor's launch cost models), then the L2 cleared by a read of a buffer twice the L2's
// size (clean lines, so nothing is written back during the block): every input and weight
// starts in DRAM, as the predictor assumes for a block's first kernel.
#include "block_timer.hpp"

#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "cuda_check.hpp"
#include "cuda_resources.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/kernels/runner.hpp"
#include "lasnet/kernels/version.hpp"
#include "microbench.hpp"

namespace lasnet::profiler::cuda {

namespace {

StepTiming make_step(const kernels::StepInfo& info, const std::vector<double>& samples,
                     const SamplingPlan& plan) {
  StepTiming s;
  s.name = info.name;
  s.kernel = info.kernel;
  s.latency_s = summarize(samples);
  s.noisy = is_noisy(s.latency_s, plan);
  return s;
}

}  // namespace

MeasurementSet time_blocks(const DeviceInfo& device, const Nvml& nvml,
                           const std::vector<BlockJob>& jobs, const SamplingPlan& plan,
                           const ProgressFn& progress) {
  LASNET_CUDA_CHECK(cudaSetDevice(device.index));
  MeasurementSet set;
  set.device = device;
  set.plan = plan;
  set.date = utc_now_iso8601();
  set.kernels_version = std::string(kernels::version());
  set.clocks_before = nvml.clock_state();
  const auto flush_bytes =
      static_cast<std::size_t>((2 * device.l2_size_bytes + (1 << 20) - 1) / (1 << 20) * (1 << 20));
  set.l2_flush = fmt::format(
      "a spin kernel (20 us per launch of the block) then a read of a {} MiB buffer before "
      "every timed run",
      flush_bytes >> 20);

  kernels::Context context;
  Stream stream;
  const cudaStream_t s = stream.get();
  DeviceBuffer flush(flush_bytes), sink(64);
  fill_random_float(flush.as<float>(), flush_bytes / sizeof(float), 7, s);
  const LaunchShape full{static_cast<int>(device.sm_count * (device.max_threads_per_sm / 256)),
                         256};
  // Before every timed run: a spin long enough for the host to enqueue the whole block behind
  // it (so host launch latency never shows in the device timings), then the L2 flush.
  std::uint64_t head_start_ns = 0;
  const auto clear_l2 = [&] {
    launch_spin(head_start_ns, s);
    launch_read(flush.as<float>(), flush_bytes, sink.as<float>(), full, s);
  };
  SamplingPlan timed = plan;
  timed.warmup_runs = 0;  // warm-up happens once per job, below
  Event start, stop;

  // Times one configuration: warm-up, then per-step runs (events between steps), then whole-
  // block runs (no events inside), each run starting with the L2 cleared.
  const auto time_one = [&](kernels::BlockRunner& r, const BlockJob& job, BlockTiming& timing) {
    const auto& steps = r.steps();
    std::vector<std::size_t> run;
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const auto& skip = job.skip_steps;
      if (std::find(skip.begin(), skip.end(), steps[i].name) == skip.end()) run.push_back(i);
    }
    timing.active_patches = r.expected_active();
    head_start_ns = 20'000 * (run.size() + 1);
    const auto run_block = [&] {
      for (const auto i : run) r.run_step(i, s);
    };
    // An in-place block overwrites its input: every run starts from the original values (the
    // refill goes before the L2 flush, so it leaves nothing in L2).
    const bool restore = kernels::in_place(r.config());
    const auto prepare = [&] {
      if (restore) r.restore_input(0, s);
      clear_l2();
    };
    for (int w = 0; w < plan.warmup_runs; ++w) {
      prepare();
      run_block();
    }
    stream.synchronize();

    // Per step: events between the steps.
    std::vector<Event> marks(run.size() + 1);
    std::vector<std::vector<double>> step_samples(run.size());
    collect_samples(timed, [&] {
      prepare();
      marks[0].record(s);
      for (std::size_t k = 0; k < run.size(); ++k) {
        r.run_step(run[k], s);
        marks[k + 1].record(s);
      }
      marks.back().synchronize();
      for (std::size_t k = 0; k < run.size(); ++k) {
        step_samples[k].push_back(marks[k + 1].seconds_since(marks[k]));
      }
      return marks.back().seconds_since(marks[0]);
    });
    for (std::size_t k = 0; k < run.size(); ++k) {
      timing.steps.push_back(make_step(steps[run[k]], step_samples[k], plan));
    }
    // The block: no events inside.
    const auto block_samples = collect_samples(timed, [&] {
      prepare();
      start.record(s);
      run_block();
      stop.record(s);
      stop.synchronize();
      return stop.seconds_since(start);
    });
    timing.latency_s = summarize(block_samples);
    timing.noisy = is_noisy(timing.latency_s, plan);
    LASNET_CUDA_CHECK(cudaGetLastError());
  };

  for (std::size_t j = 0; j < jobs.size(); ++j) {
    const BlockJob& job = jobs[j];
    if (progress) progress(job.key, j, jobs.size());
    BlockTiming timing;
    timing.key = job.key;
    timing.masks = job.masks;
    std::optional<kernels::BlockRunner> runner;
    try {
      runner.emplace(context, job.config);
    } catch (const Error& e) {
      timing.supported = false;
      timing.reason = e.what();
      set.blocks.push_back(std::move(timing));
      continue;
    }
    try {
      time_one(*runner, job, timing);
    } catch (const Error& e) {
      // A failure inside one configuration (a kernel error, memory) is reported with it; a
      // sticky CUDA error then shows on every later configuration too, never as a timing.
      timing.supported = false;
      timing.reason = fmt::format("failed while timing: {}", e.what());
      timing.steps.clear();
    }
    set.blocks.push_back(std::move(timing));
  }
  if (progress) progress("done", jobs.size(), jobs.size());
  set.clocks_after = nvml.clock_state();
  return set;
}

}  // namespace lasnet::profiler::cuda
