#pragma once
// What to run for a calibration or validation: every block of a spec, dense and dynamic, at
// the batches, densities and granularities asked for, each with its predictor graph and the
// kernels' job that runs it, and which kernel step stands for which predictor op. Pure
// functions of the spec: tested without a GPU.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lasnet/common/mask.hpp"
#include "lasnet/predictor/network.hpp"
#include "lasnet/predictor/spec.hpp"
#include "lasnet/profiler/block_timing.hpp"

namespace lasnet::profiler {

enum class GranularityChoice {
  spec,  // the spec's own S per stage
  all,   // every S that tiles the stage's map (granularity_candidates), plus the spec's
};

struct PlanOptions {
  std::vector<std::int64_t> batches;  // empty: the spec's batch
  std::vector<double> densities;      // empty: the spec's densities (its dynamic settings)
  GranularityChoice granularity = GranularityChoice::all;
  // The fusion forms of the dynamic blocks, each a configuration of its own; the default is the
  // predictor's (gather and scatter fused). With more than one, a configuration's label says
  // which ("0.5 masker,gather,scatter"), so stages, networks and the S ranking compare like
  // with like.
  std::vector<predictor::Fusion> fusions = std::vector<predictor::Fusion>(1);
  bool dense = true;  // also the dense network
  // How dynamic blocks choose their active patches (`--masks`). The kernels: uniform (and
  // nullopt) threshold the masker's own logits at a bias that keeps ceil(d x patches) of them
  // (same job keys as before --masks existed); clustered and varied run a generated mask
  // (common/mask.hpp), keyed apart. The predictor: nullopt prices P = ceil(d x patches) and
  // P x extent^2 gathered pixels as before; uniform its expected statistics, clustered and
  // varied those of the very mask the kernels run (predictor/mask_stats.hpp).
  std::optional<MaskModel> masks;
  // Time RegNetY's squeeze-excitation on the kernels (`--se`): SE blocks run the kernels' "se"
  // step and their job keys gain " seN". Off: SE blocks run as the plain bottleneck and their SE
  // ops stay uncovered, which keeps the keys of measurement files recorded before the kernels
  // had SE.
  bool se = false;
};

// One block of one configuration, as the predictor sees it and as the kernels run it.
struct PlannedBlock {
  std::string spec;
  std::int64_t batch = 1;
  // The configuration the block belongs to. A block that cannot skip positions stays dense in a
  // dynamic configuration (its graph says so).
  bool dynamic = false;
  // "0.5", or "spec" for the spec's own per-block densities; followed by the fusion form where
  // the plan has several (PlanOptions::fusions).
  std::string density_label;
  double density = 1;  // this block's density (1 for dense)
  std::size_t stage = 0;
  std::string stage_name;
  std::size_t index = 0;          // block within the stage
  std::int64_t granularity = 0;   // the configuration's S for this stage (0 dense)
  bool spec_granularity = false;  // S is the spec's own (the block belongs to the network row)
  predictor::BlockGraph graph;
  bool runnable = false;
  std::string reason;  // why the kernels cannot run it
  BlockJob job;
  // For each graph node, the kernel step that implements it ("" when none does).
  std::vector<std::string> node_steps;
};

// Maps a predictor block graph onto the kernels' bottleneck block (1x1 -> 3x3 -> 1x1) or basic
// block (3x3 -> 3x3). On failure returns false and says why in `reason`. Names: expand/dw/project
// are conv1/conv2/conv3; a dense "add" is fused into the kernels' last conv (conv3, or conv2 of
// a basic block); "se" has no kernel.
// With `se`, a graph's "se" node becomes the kernels' SE (BottleneckShape::se_channels) and its
// step "se"; without, it has no step.
bool map_to_kernels(const predictor::BlockGraph& graph, const predictor::Fusion& fusion,
                    BlockJob& job, std::vector<std::string>& node_steps, std::string& reason,
                    bool se = false);

// Gives a mapped dynamic job its mask model: for clustered and varied, the generated mask of
// the job's shape, S and density (seeded by the configuration, so a configuration always gets
// the same mask) in config.dynamic->mask, and " mask:MODEL" appended to the key. Uniform and
// dense jobs only record the model ("uniform", "").
void with_mask_model(BlockJob& job, MaskModel model);

// The kernel step that runs a graph node ("expand" -> "conv1", a dense "add" -> "conv3"; "" for
// a node no kernel runs, "se"). map_to_kernels maps a basic block's dense "add" to "conv2".
std::string kernel_step(std::string_view node, bool dynamic);

// Every planned block of `spec` (its batch and dynamic settings overridden by the options).
std::vector<PlannedBlock> plan_spec(const predictor::Spec& spec, const PlanOptions& options);

// Whether the kernels can time every block of `spec`, dense and dynamic, at every S that tiles
// each stage (what calibrate/validate plan with --granularity all); false with the first
// block's reason otherwise. `lasnet sample --runnable` keeps only such specs.
bool runnable_on_kernels(const predictor::Spec& spec, std::string& reason);

// The distinct runnable jobs, in first-appearance order.
std::vector<BlockJob> distinct_jobs(const std::vector<PlannedBlock>& blocks);

// Every fusion form of a dynamic block: none, each of masker/gather/scatter alone, each pair, all.
// Not the union form (the forms the shipped calibrations were timed with; name it to add it).
std::vector<predictor::Fusion> every_fusion();

// The `--fusion` of calibrate/validate: fusion forms joined by '/', each a predictor fusion
// ("union,gather,scatter") or "each" (every_fusion()); duplicates dropped, first kept.
// "each/union,gather,scatter" times the eight forms and the union form. Errors name `what`.
std::vector<predictor::Fusion> parse_fusion_forms(std::string_view text, std::string_view what);
// The fusions `validate --network` runs whole networks at: each form of the list, or for "each"
// alone the spec's own (nullopt: eight forms per block are not eight networks).
std::vector<std::optional<predictor::Fusion>> network_fusions(std::string_view text,
                                                              std::string_view what);

// "0.3,0.5,0.8" -> {0.3, 0.5, 0.8}; "1,128" -> {1, 128}. Errors name `what`.
std::vector<double> parse_number_list(std::string_view text, std::string_view what);
std::vector<std::int64_t> parse_int_list(std::string_view text, std::string_view what);

}  // namespace lasnet::profiler
