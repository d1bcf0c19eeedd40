#pragma once
// Composition: a spec becomes operator graphs per block (dense or dynamic, with the chosen
// fusions), and the predictor's per-op latencies add up to blocks, stages and the network.
// Each block is a small DAG (`after` lists predecessors inside the block; a node with none
// waits for the previous block), which is what the scheduler places onto CUDA streams.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lasnet/common/mask.hpp"
#include "lasnet/predictor/model.hpp"
#include "lasnet/predictor/op.hpp"
#include "lasnet/predictor/spec.hpp"

namespace lasnet::predictor {

enum class Execution { dense, dynamic };

struct OpNode {
  std::string name;  // "conv2", "shortcut", "masker"
  Op op;
  std::vector<std::size_t> after;  // indices of nodes of the same block that must finish first
};

struct BlockGraph {
  std::string name;         // "layer3.4", "stem", "head"
  std::int64_t stage = -1;  // -1 for stem and head
  std::int64_t index_in_stage = 0;
  bool dynamic = false;
  std::int64_t granularity = 0;
  double density = 1;
  std::vector<OpNode> nodes;
};

struct BlockSettings {
  std::int64_t granularity = 0;  // spatial/layer modes
  double density = 1;
  Fusion fusion;
};

// Which patches of a spatial block are active (mask_stats.hpp). Neither set: P = ceil(d x
// patches) and gathered reads of P x extent^2 pixels, capped at the map (what the shipped
// calibrations were fit with); `model`: that model's expected statistics; `mask`
// ([batch][patch rows][patch cols], overrides `model`): that mask's own (its P and the distinct
// pixels its patches read).
struct MaskSource {
  std::optional<MaskModel> model;
  std::vector<std::uint8_t> mask;
};

// The ops of one block of stage `stage`, block `index`, dense or at the given settings.
// Blocks with no residual path (a MobileNetV2 block that changes shape) cannot skip positions
// and stay dense in every mode.
BlockGraph make_block(const Spec& spec, std::size_t stage, std::size_t index, Execution execution,
                      const BlockSettings& settings, const MaskSource& masks = {});
bool block_can_be_dynamic(const Spec& spec, std::size_t stage, std::size_t index);
// Whether Fusion::union_conv1 changes the block's dynamic graph: a block with a residual whose
// first conv is 1x1 (bottleneck, regnety, inverted residual with expansion); others ignore it.
bool block_has_union_form(const Spec& spec, std::size_t stage, std::size_t index);

struct NetworkOptions {
  // Every dynamic block's fusion; nullopt = the spec's own per-block fusion (dynamic.fusion),
  // or Fusion{}'s default where the spec gives none.
  std::optional<Fusion> fusion;
};
// Stem, every block, head. Dynamic execution takes granularity, density and fusion from
// spec.dynamic.
// `masks`: price spatial blocks at this mask model's expected statistics (MaskSource); nullopt:
// as calibrated, P = ceil(d x patches) and gathered reads of P x extent^2 pixels.
std::vector<BlockGraph> build_network(const Spec& spec, Execution execution,
                                      const NetworkOptions& options = {},
                                      std::optional<MaskModel> masks = std::nullopt);

// Per image: multiply-accumulates of the dense network (its convs, fcs and SE fcs; FLOPs / 2) and
// its parameters (conv/fc weights, biases, folded BatchNorm and norm affine parameters, as
// docs/model.md counts them), to compare with published figures.
double network_macs(const Spec& spec);
std::int64_t network_parameters(const Spec& spec);

struct OpResult {
  std::string name;
  Op op;
  OpPrediction prediction;
};

struct BlockResult {
  std::string name;
  std::int64_t stage = -1;
  bool dynamic = false;
  std::int64_t granularity = 0;
  double density = 1;
  std::vector<OpResult> ops;
  double latency_s = 0;  // ops run one after another on one stream
};

struct StageResult {
  std::string name;
  double latency_s = 0;
};

struct NetworkPrediction {
  std::vector<BlockResult> blocks;
  std::vector<StageResult> stages;  // "stem", each spec stage, "head"
  double latency_s = 0;
  double flops = 0;
};

// The schedule a real kernel runs a block's op with (OpContext::gemm_tile), or nullopt for the
// model's own tile search. The profiler gives the project's kernels' choice
// (profiler::project_kernel_schedule); the predictor knows no kernel library.
using KernelSchedule = std::function<std::optional<GemmTile>(const BlockGraph&, const OpNode&)>;

// One op at its kernels' schedule: the kernels of a multi-kernel form (GemmTile::im2col: the
// taps copy and the library's GEMM; ::thread_per_output: a pool pass) or the op's one kernel
// (cache.predict).
OpPrediction predict_scheduled(const Op& op, const OpContext& context, PredictionCache& cache,
                               const Profile& hw);

// Predicts every op of every block, single stream. Consecutive ops pass their output through
// L2 when it fits (the model's OpContext).
BlockResult predict_block(const BlockGraph& block, PredictionCache& cache, const Profile& hw,
                          const KernelSchedule& schedule = {});
NetworkPrediction predict_network(const std::vector<BlockGraph>& blocks, const Spec& spec,
                                  const Profile& hw, PredictionCache& cache,
                                  const KernelSchedule& schedule = {});

}  // namespace lasnet::predictor
