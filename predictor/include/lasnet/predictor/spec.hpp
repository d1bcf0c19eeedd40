#pragma once
// Model specs: a CNN as stem, stages of blocks and head, plus its dynamic settings
// (granularity per stage, density per stage or block, mode). Schema: examples/README.md.
// Parsing validates everything the predictor relies on, so the model takes the values as given.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "lasnet/predictor/profile.hpp"

namespace lasnet::predictor {

// Upper bounds parse_spec enforces. They keep every tensor's element count (batch x channels x
// height x width <= 2^60) inside the model's int64 arithmetic, and a network's block list small
// enough to build: past them a typo would overflow or ask for billions of blocks.
inline constexpr std::int64_t max_batch = 65536;
inline constexpr std::int64_t max_channels = 65536;  // every channel count, expanded ones too
inline constexpr std::int64_t max_side = 16384;      // map height/width, kernels, strides
inline constexpr std::int64_t max_blocks = 1024;     // per stage
inline constexpr std::size_t max_list = 256;         // stages, stem and head layers

struct LayerSpec {
  enum class Kind { conv, max_pool, avg_pool, global_avg_pool, fc };
  Kind kind = Kind::conv;
  std::int64_t out_channels = 0;  // conv, fc
  std::int64_t kernel = 1;
  std::int64_t stride = 1;
  std::int64_t padding = 0;
  std::int64_t groups = 1;
};

enum class BlockKind {
  basic,              // 3x3 -> 3x3, residual (ResNet-18/34)
  bottleneck,         // 1x1 reduce -> 3x3 (stride, groups) -> 1x1 expand, residual
  regnety,            // bottleneck with group conv and squeeze-excitation, ratio 1
  inverted_residual,  // MobileNetV2: 1x1 expand -> 3x3 depthwise -> 1x1 project
};

struct StageSpec {
  std::string name;
  BlockKind block = BlockKind::bottleneck;
  std::int64_t blocks = 1;
  std::int64_t out_channels = 0;
  std::int64_t mid_channels = 0;  // bottleneck/regnety width; inverted_residual: expanded width
  std::int64_t stride = 1;        // of the first block; later blocks use 1
  std::int64_t group_width = 0;   // channels per group of the 3x3 conv; 0 = not grouped
  double se_ratio = 0;            // squeeze channels = se_ratio * block input channels
  std::int64_t expansion = 0;     // inverted_residual only (mid = expansion * in)
};

enum class DynamicMode { spatial, channel, layer };

// Which kernels of a dynamic block are fused.
struct Fusion {
  bool masker_conv1 = false;      // masker computed as conv1's extra output channel
  bool gather_conv1 = true;       // conv1 reads the full map through the index list
  bool conv3_scatter_add = true;  // conv3's epilogue adds into the residual
  bool operator==(const Fusion&) const = default;
};
// "none", "all", or a comma list of "masker", "gather", "scatter".
Fusion parse_fusion(std::string_view text, std::string_view what);
std::string to_string(const Fusion& fusion);

struct DynamicSpec {
  bool enabled = false;  // the spec (or the command line) asks for a dynamic prediction
  DynamicMode mode = DynamicMode::spatial;
  // Per stage, S in output pixels; in layer mode the stage's map size (the block runs or not).
  // Unused (empty) in channel mode.
  std::vector<std::int64_t> granularity;
  std::vector<std::vector<double>> density;  // per stage, per block
  // Per stage, per block (spatial mode); empty = not given, the tool's default applies.
  std::vector<std::vector<Fusion>> fusion;
};

struct Spec {
  std::string name;
  std::int64_t batch = 1;
  std::int64_t in_channels = 3;
  std::int64_t height = 224;
  std::int64_t width = 224;
  Precision precision = Precision::fp32;
  std::vector<LayerSpec> stem;
  std::vector<StageSpec> stages;
  std::vector<LayerSpec> head;
  DynamicSpec dynamic;
};

// Feature-map geometry each stage sees, derived from the spec.
struct StageGeometry {
  std::int64_t in_channels, in_height, in_width;     // input of the stage's first block
  std::int64_t out_channels, out_height, out_width;  // output of every block of the stage
};
std::vector<StageGeometry> stage_geometry(const Spec& spec);

// Parses and validates; errors are lasnet::Error "SOURCE: json.path: message".
Spec parse_spec(std::string_view json_text, std::string_view source);
Spec load_spec(const std::filesystem::path& file);
// Stable JSON that parse_spec reads back to an equal spec (used to write scheduled specs).
std::string spec_to_json(const Spec& spec);

// "4-4-2-1" -> {4,4,2,1}. Throws lasnet::Error naming `what` on malformed text.
std::vector<std::int64_t> parse_granularity(std::string_view text, std::string_view what);
std::string format_granularity(const std::vector<std::int64_t>& granularity);

// Overrides from the command line, validated like the file's own values; `what` names the
// option in messages ("--granularity").
void set_granularity(Spec& spec, const std::vector<std::int64_t>& granularity,
                     std::string_view what);
void set_density(Spec& spec, double density, std::string_view what);
void set_mode(Spec& spec, DynamicMode mode);
// Every S that tiles the stage's output map exactly (divisors of its side), ascending.
std::vector<std::int64_t> granularity_candidates(const StageGeometry& stage);

std::string_view to_string(BlockKind kind);
std::string_view to_string(DynamicMode mode);

}  // namespace lasnet::predictor
