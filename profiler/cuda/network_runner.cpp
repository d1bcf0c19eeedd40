// `lasnet run` on the GPU: a NetworkProgram built into runners (the kernels' BlockRunner per
// block, LayerRunner per stem/head layer; seeded random weights and input), each launch issued
// on its stream after cudaStreamWaitEvent on the events of its cross-stream predecessors.
//
// 1. Calibration forward, one stream, a sync per unit: every dynamic block's masker bias is
//    chosen on the real map it reads (BlockRunner::calibrate_masker), as bench_kernels does.
// 2. The program captured as one CUDA graph: stream 0 forks to the others through an event,
//    the launches record/wait events as eagerly, and every stream joins stream 0 at the end.
// 3. Timed: `warmup` graph launches, then `runs`, each after the L2 is cleared (a read of twice
//    its size) behind a spin kernel that hides the host's enqueue, between two events.
// 4. Eager, timed per kernel: the program launched from the host with an event pair around
//    every launch (the trace and the per-unit times); the second of two such runs is kept.
#include "network_runner.hpp"

#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "cuda_check.hpp"
#include "cuda_resources.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/kernels/layers.hpp"
#include "lasnet/kernels/runner.hpp"
#include "microbench.hpp"

namespace lasnet::profiler::cuda {

namespace {

// The runners of one unit and, per program step, what to launch.
struct UnitRunners {
  std::optional<kernels::BlockRunner> block;
  std::vector<kernels::LayerRunner> layers;
  // Per program step (ProgramUnit::steps), the runner steps it launches: the block step of that
  // name and any step of the kernels the predictor's graph has no op for, right after it.
  std::vector<std::vector<std::size_t>> launches;
  float* input = nullptr;
  std::vector<float*> layer_inputs;  // layers: each layer's input map
  float* output = nullptr;
};

std::size_t step_position(const ProgramUnit& unit, const std::string& step) {
  const auto it = std::find(unit.steps.begin(), unit.steps.end(), step);
  if (it == unit.steps.end()) {
    throw Error(fmt::format("{}: the program has no step '{}'", unit.name, step));
  }
  return static_cast<std::size_t>(it - unit.steps.begin());
}

}  // namespace

NetworkMeasurement run_network(const DeviceInfo& device, const NetworkProgram& program,
                               const NetworkRunOptions& options, const ProgressFn& progress) {
  if (const auto missing = program.not_covered(); !missing.empty()) {
    throw Error(fmt::format("{}: the kernels cannot run {}", program.spec, missing.front()));
  }
  LASNET_CUDA_CHECK(cudaSetDevice(device.index));
  NetworkMeasurement m;
  m.label = program.label;
  m.device = device;
  m.date = utc_now_iso8601();
  const auto report = [&](std::string_view what, std::size_t done, std::size_t total) {
    if (progress) progress(what, done, total);
  };

  kernels::Context context;
  const std::size_t stream_count =
      static_cast<std::size_t>(std::max<std::int64_t>(1, program.streams));
  std::vector<Stream> streams(stream_count);
  const cudaStream_t s0 = streams[0].get();

  // The network's input: a seeded non-negative image (as after normalisation to [0, 1)).
  kernels::LayerConfig image;
  image.batch = program.batch;
  image.in_channels = program.input.channels;
  image.in_height = program.input.height;
  image.in_width = program.input.width;
  const auto host_input = kernels::make_layer_input(image, 7);
  DeviceBuffer input(host_input.size() * sizeof(float));
  LASNET_CUDA_CHECK(
      cudaMemcpy(input.get(), host_input.data(), input.bytes(), cudaMemcpyHostToDevice));

  // Runners, and the map every unit reads (the previous unit's output).
  std::vector<UnitRunners> units(program.units.size());
  float* x = input.as<float>();
  for (std::size_t u = 0; u < program.units.size(); ++u) {
    const auto& pu = program.units[u];
    auto& r = units[u];
    report(pu.name, u, program.units.size());
    r.input = x;
    r.launches.resize(pu.steps.size());
    if (pu.layers) {
      for (std::size_t i = 0; i < pu.layer_configs.size(); ++i) {
        r.layers.emplace_back(context, pu.layer_configs[i]);
        r.layer_inputs.push_back(x);
        x = r.layers.back().output();
        r.launches[step_position(pu, pu.node_steps[i])].push_back(i);
      }
    } else {
      r.block.emplace(context, pu.job.config);
      const auto& steps = r.block->steps();
      std::optional<std::size_t> last;  // the program step the previous runner step went with
      std::vector<std::size_t> before_first;
      const auto& skip = pu.job.skip_steps;
      for (std::size_t i = 0; i < steps.size(); ++i) {
        // What the graph does not have (the shortcut of a block without a residual) does not
        // run, as in the block timings.
        if (std::find(skip.begin(), skip.end(), steps[i].name) != skip.end()) continue;
        const auto it = std::find(pu.steps.begin(), pu.steps.end(), steps[i].name);
        if (it != pu.steps.end() && steps[i].name == "shortcut") {
          // Its own launch (maybe on another stream): nothing else rides with it.
          r.launches[static_cast<std::size_t>(it - pu.steps.begin())].push_back(i);
        } else if (it != pu.steps.end()) {
          last = static_cast<std::size_t>(it - pu.steps.begin());
          r.launches[*last] = before_first;
          before_first.clear();
          r.launches[*last].push_back(i);
        } else if (last) {
          r.launches[*last].push_back(i);
        } else {
          before_first.push_back(i);
        }
      }
      if (!before_first.empty()) {
        throw Error(
            fmt::format("{}: the kernels' step '{}' has no op of the predictor's to run "
                        "with",
                        pu.name, steps[before_first.front()].name));
      }
      for (std::size_t k = 0; k < pu.steps.size(); ++k) {
        if (r.launches[k].empty()) {
          throw Error(fmt::format("{}: the kernels have no step '{}'", pu.name, pu.steps[k]));
        }
      }
      x = static_cast<float*>(r.block->output_of(x));  // fp32/tf32 networks: float maps
    }
    r.output = x;
  }

  // One launch of the program: the runner steps of program launch i on `stream`.
  const auto launch = [&](std::size_t i, cudaStream_t stream) {
    const auto& l = program.launches[i];
    auto& r = units[l.unit];
    const auto k = step_position(program.units[l.unit], l.step);
    for (const auto step : r.launches[k]) {
      if (r.block) {
        r.block->run_step_on(step, r.input, stream);
      } else {
        r.layers[step].run_on(r.layer_inputs[step], stream);
      }
    }
  };

  // 1. Calibration forward: one stream, unit by unit.
  for (std::size_t u = 0; u < units.size(); ++u) {
    auto& r = units[u];
    if (r.block && program.units[u].job.config.dynamic) {
      r.block->calibrate_masker(r.input, program.units[u].density);
    }
    if (r.block) {
      (void)r.block->run_on(r.input, s0);
    } else {
      for (std::size_t i = 0; i < r.layers.size(); ++i) r.layers[i].run_on(r.layer_inputs[i], s0);
    }
    streams[0].synchronize();
  }
  m.unit_density.assign(units.size(), -1);
  for (std::size_t u = 0; u < units.size(); ++u) {
    if (units[u].block && program.units[u].job.config.dynamic && units[u].block->total_patches()) {
      m.unit_density[u] = static_cast<double>(units[u].block->active_patches()) /
                          static_cast<double>(units[u].block->total_patches());
    }
  }

  // Events: the fork, one after each launch (waits and timing), one before each (timing), and
  // a join per stream.
  Event fork;
  std::vector<Event> before(program.launches.size()), after(program.launches.size());
  std::vector<Event> join(stream_count);
  std::vector<bool> waited(program.launches.size(), false);
  for (const auto& l : program.launches) {
    for (const auto w : l.waits) waited.at(w) = true;
  }
  const auto issue = [&](bool timed) {
    fork.record(s0);
    for (std::size_t s = 1; s < stream_count; ++s) {
      LASNET_CUDA_CHECK(cudaStreamWaitEvent(streams[s].get(), fork.get(), 0));
    }
    for (std::size_t i = 0; i < program.launches.size(); ++i) {
      const auto& l = program.launches[i];
      const cudaStream_t st = streams.at(static_cast<std::size_t>(l.stream)).get();
      for (const auto w : l.waits) LASNET_CUDA_CHECK(cudaStreamWaitEvent(st, after[w].get(), 0));
      if (timed) before[i].record(st);
      launch(i, st);
      if (timed || waited[i]) after[i].record(st);
    }
    for (std::size_t s = 1; s < stream_count; ++s) {
      join[s].record(streams[s].get());
      LASNET_CUDA_CHECK(cudaStreamWaitEvent(s0, join[s].get(), 0));
    }
  };

  // 2. The CUDA graph.
  report("capture", units.size(), units.size());
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  LASNET_CUDA_CHECK(cudaStreamBeginCapture(s0, cudaStreamCaptureModeThreadLocal));
  try {
    issue(false);
  } catch (...) {
    cudaGraph_t broken = nullptr;
    (void)cudaStreamEndCapture(s0, &broken);
    if (broken != nullptr) (void)cudaGraphDestroy(broken);
    throw;
  }
  LASNET_CUDA_CHECK(cudaStreamEndCapture(s0, &graph));
  struct GraphOwner {
    cudaGraph_t g;
    cudaGraphExec_t* e;
    ~GraphOwner() {
      if (*e != nullptr) LASNET_CUDA_CHECK_NOTHROW(cudaGraphExecDestroy(*e));
      if (g != nullptr) LASNET_CUDA_CHECK_NOTHROW(cudaGraphDestroy(g));
    }
  } owner{graph, &exec};
  LASNET_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));

  // 3. Timed graph launches, the L2 cleared before each.
  const auto flush_bytes =
      static_cast<std::size_t>((2 * device.l2_size_bytes + (1 << 20) - 1) / (1 << 20) * (1 << 20));
  DeviceBuffer flush(std::max<std::size_t>(flush_bytes, 1 << 20)), sink(64);
  fill_random_float(flush.as<float>(), flush.bytes() / sizeof(float), 7, s0);
  const LaunchShape full{static_cast<int>(device.sm_count * (device.max_threads_per_sm / 256)),
                         256};
  // The spin gives the host a head start: 20 us for a graph launch, 20 us per kernel eagerly.
  const auto prepare = [&](std::uint64_t head_start_ns) {
    launch_spin(head_start_ns, s0);
    if (options.flush_l2) launch_read(flush.as<float>(), flush.bytes(), sink.as<float>(), full, s0);
  };
  for (int w = 0; w < options.warmup; ++w) {
    prepare(20'000);
    LASNET_CUDA_CHECK(cudaGraphLaunch(exec, s0));
  }
  streams[0].synchronize();
  Event start, stop;
  for (int i = 0; i < options.runs; ++i) {
    report("timing", static_cast<std::size_t>(i), static_cast<std::size_t>(options.runs));
    prepare(20'000);
    start.record(s0);
    LASNET_CUDA_CHECK(cudaGraphLaunch(exec, s0));
    stop.record(s0);
    stop.synchronize();
    m.samples_s.push_back(stop.seconds_since(start));
  }
  m.latency_s = summarize(m.samples_s);

  // 4. Eager, an event pair around every launch; the second run is kept.
  for (int pass = 0; pass < 2; ++pass) {
    prepare(20'000 * (program.launches.size() + 1));
    Event begin, end;
    begin.record(s0);
    issue(true);
    end.record(s0);
    end.synchronize();
    if (pass == 0) continue;
    m.eager_s = end.seconds_since(begin);
    m.launches.clear();
    for (std::size_t i = 0; i < program.launches.size(); ++i) {
      m.launches.push_back({before[i].seconds_since(begin), after[i].seconds_since(begin)});
    }
  }
  LASNET_CUDA_CHECK(cudaGetLastError());
  report("done", units.size(), units.size());
  return m;
}

}  // namespace lasnet::profiler::cuda
