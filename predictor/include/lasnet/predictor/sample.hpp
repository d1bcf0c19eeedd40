#pragma once
// Random model specs over the design space the spec format holds, for blind accuracy
// protocols (calibrate on one random sample, validate on a disjoint one). A sample is a pure
// function of (seed, index): each spec draws from its own sub-stream of lasnet::Random, so
// sample i of seed K is the same whatever the count, on every machine. Each draw is sized
// through the predictor: its dense latency on `hw` must fall in [min, max], else the sample is
// redrawn (attempt 1, 2, ... of the same index, deterministically).
//
// The space is a product of named dimensions (`SampleSpace`): stems, block kinds (a table of
// one generator per kind), widths, depths, input sizes, batch, precision, dynamic mode,
// granularity and density per stage. A new block kind or a new per-stage key is one more row.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lasnet/predictor/profile.hpp"
#include "lasnet/predictor/spec.hpp"

namespace lasnet::predictor {

// Bumped whenever the same (seed, index) would draw a different spec.
inline constexpr int sampler_version = 3;  // 3: basic blocks runnable (the kernels run them)

// The ranges one draw covers. `full_space()` is everything schema 1 holds (within the sizes
// below); `runnable_space()` only what the project's CUDA kernels can time (bottleneck-shaped
// blocks with 3x3 convs, fp32/tf32, spatial mode), small enough that timing every block at
// every S takes seconds.
struct SampleSpace {
  std::vector<BlockKind> block_kinds;
  std::vector<Precision> precisions;
  std::vector<DynamicMode> modes;
  std::vector<std::int64_t> expansions;        // inverted residual blocks' (repeats weight a value)
  std::int64_t min_side = 96, max_side = 640;  // input height and width (16-pixel steps)
  std::int64_t min_batch = 1, max_batch = 256;
  std::int64_t min_width = 16, max_width = 2048;  // every stage's out_channels (and mid)
  std::int64_t min_stages = 1, max_stages = 5;
  std::int64_t max_blocks = 8;  // per stage
  double min_dense_s = 1e-4, max_dense_s = 0.1;
  int max_attempts = 400;  // redraws per sample before giving up (an error)
};
SampleSpace full_space();
SampleSpace runnable_space();

struct SampleOptions {
  std::uint64_t seed = 1;
  std::int64_t count = 1;
  std::int64_t first = 0;  // index of the first sample (samples first .. first+count-1)
  SampleSpace space = full_space();
};

// A caller's extra condition (e.g. "the kernels run every block of it"): false with a reason
// rejects the draw like an out-of-range latency does.
using SampleFilter = std::function<bool(const Spec& spec, std::string& reason)>;

struct SampledSpec {
  std::int64_t index = 0;
  int attempt = 0;  // which redraw was kept
  Spec spec;        // named "sample_<seed>_<index>"
  double dense_latency_s = 0;
  double dense_flops = 0;
};

// Draws sample `index` (redrawing out-of-range draws). Throws lasnet::Error if none of
// `space.max_attempts` draws is accepted.
SampledSpec sample_spec(std::uint64_t seed, std::int64_t index, const SampleSpace& space,
                        const Profile& hw, const SampleFilter& filter = {});
std::vector<SampledSpec> sample_specs(const SampleOptions& options, const Profile& hw,
                                      const SampleFilter& filter = {});

// One draw without the latency check (exposed for tests: every draw must parse).
Spec draw_spec(std::uint64_t seed, std::int64_t index, int attempt, const SampleSpace& space);

// The index file of a sample folder: seed, count, generator version, each file's name and
// main parameters. Stable key order.
std::string sample_index_json(const SampleOptions& options, const std::string& hw_name,
                              const std::vector<SampledSpec>& samples,
                              const std::vector<std::string>& file_names);

}  // namespace lasnet::predictor
