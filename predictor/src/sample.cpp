#include "lasnet/predictor/sample.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "lasnet/common/document.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/common/random.hpp"
#include "lasnet/predictor/network.hpp"

namespace lasnet::predictor {

namespace {

std::int64_t round_to(std::int64_t value, std::int64_t step) {
  return std::max(step, (value + step / 2) / step * step);
}

std::int64_t clamp_width(std::int64_t w, const SampleSpace& space) {
  return std::clamp(round_to(w, 8), space.min_width, space.max_width);
}

// Widths spread evenly in log2: a power of two times 1, 1.25, 1.5 or 1.75 (multiples of 8 from
// 16 up), inside [lo, hi].
std::int64_t draw_width(Random& rng, std::int64_t lo, std::int64_t hi) {
  std::int64_t e_lo = 0, e_hi = 0;
  while ((std::int64_t{1} << (e_lo + 1)) <= lo) ++e_lo;
  while ((std::int64_t{1} << (e_hi + 1)) <= hi) ++e_hi;
  const std::int64_t base = std::int64_t{1} << rng.between(e_lo, e_hi);
  const std::int64_t w = base * rng.between(4, 7) / 4;
  return std::clamp(round_to(w, 8), lo, hi);
}

// ---- named dimensions ----

// Stems: how the input is brought down to the first stage's map.
struct StemChoice {
  const char* name;
  std::vector<LayerSpec> (*make)(std::int64_t channels);
};
LayerSpec conv(std::int64_t out, std::int64_t kernel, std::int64_t stride, std::int64_t padding) {
  LayerSpec l;
  l.kind = LayerSpec::Kind::conv;
  l.out_channels = out;
  l.kernel = kernel;
  l.stride = stride;
  l.padding = padding;
  return l;
}
LayerSpec max_pool(std::int64_t kernel, std::int64_t stride, std::int64_t padding) {
  LayerSpec l;
  l.kind = LayerSpec::Kind::max_pool;
  l.kernel = kernel;
  l.stride = stride;
  l.padding = padding;
  return l;
}
const std::vector<StemChoice>& stem_choices() {
  static const std::vector<StemChoice> table{
      {"resnet",
       [](std::int64_t c) {
         return std::vector{conv(c, 7, 2, 3), max_pool(3, 2, 1)};
       }},
      {"conv3s2", [](std::int64_t c) { return std::vector{conv(c, 3, 2, 1)}; }},
      {"conv3s1", [](std::int64_t c) { return std::vector{conv(c, 3, 1, 1)}; }},
      {"deep",
       [](std::int64_t c) {
         return std::vector{conv(std::max<std::int64_t>(16, c / 2), 3, 2, 1), conv(c, 3, 1, 1)};
       }},
      {"patchify", [](std::int64_t c) { return std::vector{conv(c, 4, 4, 0)}; }},
  };
  return table;
}

// Block kinds: one generator per kind fills the kind's own keys of a stage whose nominal
// width is `width` (its out_channels before the kind's expansion).
struct BlockGenerator {
  BlockKind kind;
  void (*draw)(Random& rng, StageSpec& stage, std::int64_t width, const SampleSpace& space);
};

std::int64_t group_width_for(Random& rng, std::int64_t mid, const std::vector<std::int64_t>& from) {
  std::vector<std::int64_t> fitting;
  for (const auto g : from) {
    if (g <= mid && mid % g == 0) fitting.push_back(g);
  }
  return fitting.empty() ? mid : rng.pick(fitting);
}

const std::vector<BlockGenerator>& block_generators() {
  static const std::vector<BlockGenerator> table{
      {BlockKind::basic,
       [](Random&, StageSpec& s, std::int64_t width, const SampleSpace& space) {
         s.out_channels = clamp_width(width, space);
         s.mid_channels = s.out_channels;
       }},
      {BlockKind::bottleneck,
       [](Random& rng, StageSpec& s, std::int64_t width, const SampleSpace& space) {
         s.mid_channels = clamp_width(width, space);
         s.out_channels =
             clamp_width(width * rng.pick(std::vector<std::int64_t>{1, 2, 4, 4}), space);
         if (rng.chance(0.3))
           s.group_width = group_width_for(rng, s.mid_channels, {4, 8, 16, 32, 64});
       }},
      {BlockKind::regnety,
       [](Random& rng, StageSpec& s, std::int64_t width, const SampleSpace& space) {
         s.out_channels = clamp_width(width, space);
         s.mid_channels = rng.chance(0.7) ? s.out_channels : clamp_width(width / 2, space);
         s.group_width = group_width_for(rng, s.mid_channels, {8, 16, 24, 32, 48, 64});
         s.se_ratio = rng.pick(std::vector<double>{0.25, 0.25, 0.125, 0.5});
       }},
      {BlockKind::inverted_residual,
       [](Random& rng, StageSpec& s, std::int64_t width, const SampleSpace& space) {
         s.out_channels = clamp_width(width, space);
         s.expansion = rng.pick(space.expansions);
       }},
      // schema 2 (spec_v2.md) adds {BlockKind::convnext, ...} here.
  };
  return table;
}

const BlockGenerator& generator_of(BlockKind kind) {
  for (const auto& g : block_generators()) {
    if (g.kind == kind) return g;
  }
  throw Error(fmt::format("sample: no generator for {} blocks", to_string(kind)));
}

// Batch: mostly powers of two, sometimes any size, inside [lo, hi].
std::int64_t draw_batch(Random& rng, std::int64_t lo, std::int64_t hi) {
  if (rng.chance(0.25)) return rng.between(lo, hi);
  std::vector<std::int64_t> powers;
  for (std::int64_t b = 1; b <= hi; b *= 2) {
    if (b >= lo) powers.push_back(b);
  }
  return powers.empty() ? lo : rng.pick(powers);
}

// Densities in steps of 0.05 (exact decimal text in the JSON), in [0.05, 0.95].
double draw_density(Random& rng) {
  return static_cast<double>(rng.between(1, 19)) / 20.0;
}

void draw_dynamic(Random& rng, Spec& spec, const SampleSpace& space) {
  DynamicSpec& dyn = spec.dynamic;
  dyn.enabled = true;
  dyn.mode = rng.pick(space.modes);
  const auto geometry = stage_geometry(spec);
  for (std::size_t i = 0; i < spec.stages.size(); ++i) {
    const auto blocks = static_cast<std::size_t>(spec.stages[i].blocks);
    if (dyn.mode == DynamicMode::spatial) {
      dyn.granularity.push_back(rng.pick(granularity_candidates(geometry[i])));
    } else if (dyn.mode == DynamicMode::layer) {
      dyn.granularity.push_back(std::max(geometry[i].out_height, geometry[i].out_width));
    }
    if (rng.chance(0.25)) {
      std::vector<double> per_block;
      for (std::size_t b = 0; b < blocks; ++b) per_block.push_back(draw_density(rng));
      dyn.density.push_back(std::move(per_block));
    } else {
      dyn.density.emplace_back(blocks, draw_density(rng));
    }
  }
  if (dyn.mode == DynamicMode::spatial && rng.chance(0.3)) {
    static const std::vector<std::string> fusions{"none", "gather", "scatter", "gather,scatter",
                                                  "masker,gather,scatter"};
    for (const auto& st : spec.stages) {
      dyn.fusion.emplace_back(static_cast<std::size_t>(st.blocks),
                              parse_fusion(rng.pick(fusions), "sample"));
    }
  }
}

}  // namespace

SampleSpace full_space() {
  SampleSpace s;
  s.block_kinds = {BlockKind::basic, BlockKind::bottleneck, BlockKind::regnety,
                   BlockKind::inverted_residual};
  s.precisions = {Precision::fp32, Precision::tf32, Precision::fp16};
  s.modes = {DynamicMode::spatial, DynamicMode::spatial, DynamicMode::spatial, DynamicMode::channel,
             DynamicMode::layer};
  s.expansions = {1, 2, 3, 4, 6, 6};
  return s;
}

SampleSpace runnable_space() {
  SampleSpace s;
  // plan.cpp's map_to_kernels: a 3x3 -> 3x3 basic block or a 1x1 -> 3x3 -> 1x1 block, fp32 or
  // tf32 (check_supported), spatial mode (plan_spec). The kernels also run an inverted residual
  // without expansion (their separable block), but expansion 1 stays out of this space: adding
  // it would change every network the committed rounds' seeds draw.
  s.block_kinds = {BlockKind::basic, BlockKind::bottleneck, BlockKind::regnety,
                   BlockKind::inverted_residual};
  s.precisions = {Precision::fp32, Precision::tf32};
  s.modes = {DynamicMode::spatial};
  s.expansions = {2, 3, 4, 6, 6};
  s.min_side = 96;
  s.max_side = 256;
  s.max_batch = 32;
  s.max_width = 512;
  s.max_stages = 4;
  s.max_blocks = 3;
  s.min_dense_s = 5e-5;
  s.max_dense_s = 0.01;
  return s;
}

Spec draw_spec(std::uint64_t seed, std::int64_t index, int attempt, const SampleSpace& space) {
  Random rng =
      Random::derived(seed, static_cast<std::uint64_t>(index), static_cast<std::uint64_t>(attempt));
  Spec spec;
  spec.name = fmt::format("sample_{}_{}", seed, index);
  const std::int64_t lo = (space.min_side + 15) / 16, hi = space.max_side / 16;
  spec.height = 16 * rng.between(lo, hi);
  spec.width = rng.chance(0.6) ? spec.height : 16 * rng.between(lo, hi);
  spec.in_channels = 3;
  spec.batch = draw_batch(rng, space.min_batch, space.max_batch);
  spec.precision = rng.pick(space.precisions);

  const std::int64_t stem_width =
      clamp_width(rng.pick(std::vector<std::int64_t>{16, 24, 32, 48, 64}), space);
  spec.stem = rng.pick(stem_choices()).make(stem_width);

  const BlockKind family = rng.pick(space.block_kinds);
  const std::int64_t stages = rng.between(space.min_stages, space.max_stages);
  std::int64_t width =
      draw_width(rng, space.min_width, std::min<std::int64_t>(256, space.max_width));
  for (std::int64_t i = 0; i < stages; ++i) {
    StageSpec st;
    st.name = fmt::format("stage{}", i + 1);
    st.block = rng.chance(0.2) ? rng.pick(space.block_kinds) : family;
    st.blocks = rng.between(1, space.max_blocks);
    st.stride = i == 0 ? rng.pick(std::vector<std::int64_t>{1, 2}) : (rng.chance(0.75) ? 2 : 1);
    if (i > 0) {
      const auto grow = rng.pick(std::vector<std::int64_t>{4, 6, 8, 8, 10});  // x1 .. x2.5
      width = clamp_width(width * grow / 4, space);
    }
    generator_of(st.block).draw(rng, st, width, space);
    spec.stages.push_back(st);
  }

  if (rng.chance(0.3)) {
    spec.head.push_back(
        conv(clamp_width(rng.pick(std::vector<std::int64_t>{512, 1024, 1280}), space), 1, 1, 0));
  }
  LayerSpec pool;
  pool.kind = LayerSpec::Kind::global_avg_pool;
  spec.head.push_back(pool);
  LayerSpec fc;
  fc.kind = LayerSpec::Kind::fc;
  fc.out_channels = rng.pick(std::vector<std::int64_t>{10, 100, 1000});
  spec.head.push_back(fc);

  draw_dynamic(rng, spec, space);
  return spec;
}

SampledSpec sample_spec(std::uint64_t seed, std::int64_t index, const SampleSpace& space,
                        const Profile& hw, const SampleFilter& filter) {
  PredictionCache cache(hw);
  std::string last_reason;
  for (int attempt = 0; attempt < space.max_attempts; ++attempt) {
    // Written and read back, so a kept sample is exactly what its file says.
    const Spec drawn = draw_spec(seed, index, attempt, space);
    Spec spec = parse_spec(spec_to_json(drawn), drawn.name);
    if (filter && !filter(spec, last_reason)) continue;
    const auto dense = predict_network(build_network(spec, Execution::dense), spec, hw, cache);
    if (dense.latency_s < space.min_dense_s || dense.latency_s > space.max_dense_s) {
      last_reason = fmt::format("dense latency {:.4f} ms", dense.latency_s * 1e3);
      continue;
    }
    return SampledSpec{index, attempt, std::move(spec), dense.latency_s, dense.flops};
  }
  throw Error(fmt::format(
      "sample {} of seed {}: no draw in {} attempts had a dense latency in [{:g}, {:g}] ms on {}"
      " (last rejected: {})",
      index, seed, space.max_attempts, space.min_dense_s * 1e3, space.max_dense_s * 1e3, hw.name,
      last_reason));
}

std::vector<SampledSpec> sample_specs(const SampleOptions& o, const Profile& hw,
                                      const SampleFilter& filter) {
  std::vector<SampledSpec> out;
  for (std::int64_t i = 0; i < o.count; ++i)
    out.push_back(sample_spec(o.seed, o.first + i, o.space, hw, filter));
  return out;
}

std::string sample_index_json(const SampleOptions& o, const std::string& hw_name,
                              const std::vector<SampledSpec>& samples,
                              const std::vector<std::string>& file_names) {
  using ojson = nlohmann::ordered_json;
  // Version 1 is what was labelled "lasnet.sample/1".
  ojson j = output_document("sample_index", 1);
  j["generator_version"] = sampler_version;
  j["seed"] = o.seed;
  j["count"] = o.count;
  j["first"] = o.first;
  j["hardware"] = hw_name;
  j["dense_ms_range"] = ojson::array({o.space.min_dense_s * 1e3, o.space.max_dense_s * 1e3});
  ojson files = ojson::array();
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const auto& s = samples[i];
    const Spec& spec = s.spec;
    ojson f;
    f["file"] = file_names.at(i);
    f["name"] = spec.name;
    f["index"] = s.index;
    f["attempt"] = s.attempt;
    f["batch"] = spec.batch;
    f["input"] = ojson::array({spec.in_channels, spec.height, spec.width});
    f["precision"] = to_string(spec.precision);
    f["mode"] = to_string(spec.dynamic.mode);
    ojson blocks = ojson::array();
    std::int64_t total = 0;
    for (const auto& st : spec.stages) {
      blocks.push_back(fmt::format("{}x{} {}", st.blocks, to_string(st.block), st.out_channels));
      total += st.blocks;
    }
    f["stages"] = blocks;
    f["blocks"] = total;
    if (spec.dynamic.mode == DynamicMode::spatial) f["granularity"] = spec.dynamic.granularity;
    double density_sum = 0;
    for (const auto& stage : spec.dynamic.density) {
      for (const double d : stage) density_sum += d;
    }
    f["mean_density"] = total > 0 ? density_sum / static_cast<double>(total) : 0.0;
    f["dense_ms"] = s.dense_latency_s * 1e3;
    f["dense_gflop"] = s.dense_flops * 1e-9;
    files.push_back(f);
  }
  j["files"] = files;
  return j.dump(2) + "\n";
}

}  // namespace lasnet::predictor
