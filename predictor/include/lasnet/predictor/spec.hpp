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

// Activations (schema 2). On a conv or fc they are fused in its epilogue and cost nothing; an
// unfused one is an `elementwise` layer.
enum class Activation { relu, relu6, silu, hardswish, sigmoid, gelu, none };
// The gate of a squeeze-excitation.
enum class Gate { sigmoid, hardsigmoid };
// What an `elementwise` layer does: an activation, or a normalisation / per-channel scale.
enum class Elementwise { activation, layernorm, batchnorm, scale };

struct LayerSpec {
  enum class Kind {
    conv,
    max_pool,
    avg_pool,
    global_avg_pool,
    fc,
    // schema 2
    add,          // sum with another map of the running map's shape
    concat,       // `channels` channels of another map appended
    upsample,     // `scale` x per side, nearest or bilinear
    elementwise,  // one unfused pass over the map
    se,           // squeeze-excitation on the running map
  };
  Kind kind = Kind::conv;
  std::int64_t out_channels = 0;  // conv, fc
  std::int64_t kernel = 1;
  std::int64_t stride = 1;
  std::int64_t padding = 0;
  std::int64_t groups = 1;
  std::int64_t dilation = 1;                 // conv
  Activation activation = Activation::relu;  // conv (relu), fc/add (none), elementwise, se
  bool bias = false;                         // conv: parameters only
  bool batchnorm = true;                     // conv: a BatchNorm folded in (parameters only)
  std::int64_t channels = 0;                 // concat: appended channels; se: squeeze width
  std::int64_t scale = 1;                    // upsample
  bool bilinear = false;                     // upsample mode
  Elementwise elementwise = Elementwise::activation;
  Gate gate = Gate::sigmoid;  // se
};

// A stage of plain layers between block stages (schema 2): always dense.
struct LayerStageSpec {
  std::string name;
  std::vector<LayerSpec> layers;
  // The block stage it runs before (Spec::stages index); stages.size() = after the last one.
  std::size_t before = 0;
};

enum class BlockKind {
  basic,              // kxk -> kxk, residual (ResNet-18/34)
  bottleneck,         // 1x1 reduce -> kxk (stride, groups) -> 1x1 expand, residual
  regnety,            // bottleneck with group conv and squeeze-excitation, ratio 1
  inverted_residual,  // MobileNetV2: 1x1 expand -> kxk depthwise (-> SE) -> 1x1 project
  convnext,           // kxk depthwise -> layernorm -> 1x1 expand -> 1x1 back, residual
};

struct StageSpec {
  std::string name;
  BlockKind block = BlockKind::bottleneck;
  std::int64_t blocks = 1;
  std::int64_t out_channels = 0;
  // bottleneck/regnety width; inverted_residual: its expanded width where given directly
  // (expansion 0), else derived per block as expansion x input channels
  std::int64_t mid_channels = 0;
  std::int64_t stride = 1;       // of the first block; later blocks use 1
  std::int64_t group_width = 0;  // channels per group of the 3x3 conv; 0 = not grouped
  double se_ratio = 0;           // squeeze channels = se_ratio * block input channels
  std::int64_t expansion = 0;    // inverted_residual, convnext (mid = expansion * in)
  // schema 2
  std::int64_t kernel = 3;    // the spatial conv (depthwise for inverted_residual, convnext)
  std::int64_t dilation = 1;  // of the spatial conv
  Activation activation = Activation::relu;  // after each conv that has one (convnext: gelu)
  std::int64_t se_channels = 0;              // squeeze width given directly (0 = none / se_ratio)
  Activation se_activation = Activation::relu;
  Gate se_gate = Gate::sigmoid;
};

enum class DynamicMode { spatial, channel, layer };

// Which kernels of a dynamic block are fused.
struct Fusion {
  bool masker_conv1 = false;      // masker computed as conv1's extra output channel
  bool gather_conv1 = true;       // conv1 reads the full map through the index list
  bool conv3_scatter_add = true;  // conv3's epilogue adds into the residual
  // conv1 once per needed pixel: on the union of the active patches' conv2 windows, into a
  // full-size map that conv2 reads as with masker_conv1 (blocks whose first conv is 1x1; the
  // others ignore it). Excludes masker_conv1, which computes conv1 densely.
  bool union_conv1 = false;
  bool operator==(const Fusion&) const = default;
};
// "none", "all" (masker, gather, scatter), or a comma list of "union", "masker", "gather",
// "scatter"; "union" with "masker" is an error naming `what`.
Fusion parse_fusion(std::string_view text, std::string_view what);
std::string to_string(const Fusion& fusion);
// Whether the project's kernels run the fusion at that precision (kernels::fusion_supported
// says the same; tests/profiler/test_plan.cpp checks that they agree). fp16 runs a dynamic
// block's GEMMs over patch rows as the fp16 implicit GEMM, which has the gather and scatter
// forms but no extra logit channel: every fusion but the masker. `schedule` searches no
// masker fusion in fp16.
bool fusion_available(Precision precision, const Fusion& fusion);

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
  int schema_version = 1;  // as read; spec_to_json writes 2 where a schema-2 feature is used
  std::string name;
  std::int64_t batch = 1;
  std::int64_t in_channels = 3;
  std::int64_t height = 224;
  std::int64_t width = 224;
  Precision precision = Precision::fp32;
  std::vector<LayerSpec> stem;
  std::vector<StageSpec> stages;             // block stages only
  std::vector<LayerStageSpec> layer_stages;  // in order; each placed before a block stage
  std::vector<LayerSpec> head;
  DynamicSpec dynamic;
};

// Feature-map geometry each stage sees, derived from the spec.
struct StageGeometry {
  std::int64_t in_channels, in_height, in_width;     // input of the stage's first block
  std::int64_t out_channels, out_height, out_width;  // output of every block of the stage
};
std::vector<StageGeometry> stage_geometry(const Spec& spec);
struct MapShape {
  std::int64_t channels, height, width;
};
// The map each layer stage reads (in spec.layer_stages order), and the map the head reads.
std::vector<MapShape> layer_stage_inputs(const Spec& spec);
MapShape head_input(const Spec& spec);
// The map a layer produces from `in` (stem, head and layer-stage layers).
MapShape layer_output(const LayerSpec& layer, MapShape in);
// The side of a kernel with its dilation folded in: (k - 1) * dilation + 1.
constexpr std::int64_t effective_kernel(std::int64_t kernel, std::int64_t dilation) {
  return (kernel - 1) * dilation + 1;
}

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
void set_precision(Spec& spec, std::string_view text, std::string_view what);
void set_mode(Spec& spec, DynamicMode mode);
// Every S that tiles the stage's output map exactly (divisors of both sides), ascending, and on a
// non-square map its longer side (one patch per image). Any S from 1 to the longer side predicts
// (border patches are then partial); these are the ones searched.
std::vector<std::int64_t> granularity_candidates(const StageGeometry& stage);

std::string_view to_string(BlockKind kind);
std::string_view to_string(DynamicMode mode);
std::string_view to_string(Activation activation);

}  // namespace lasnet::predictor
