#pragma once
// The importer's passes and the value types between them (not installed).
//   graph.cpp:  protobuf -> Graph (nodes in topological order, every value's shape)
//   layers.cpp: Graph -> LayerGraph (one converter per op type, a table)
//   blocks.cpp: LayerGraph -> items (forks joined: residuals, SE, SiLU/GELU) -> blocks -> spec
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lasnet/importer/onnx_import.hpp"

namespace lasnet::importer::detail {

// Where a node over constants only (weights, Constant, Identity of weights) is reported.
inline constexpr const char* weights_only = "weights only (no layer)";

// An attribute of a node, the few kinds the converters read.
struct Attribute {
  std::int64_t i = 0;
  double f = 0;
  std::string s;
  std::vector<std::int64_t> ints;
};

struct Node {
  std::string name;  // the node's name, or "#index" when the file gives none
  std::string op;
  std::vector<std::string> inputs;  // "" = optional input left out
  std::vector<std::string> outputs;
  std::map<std::string, Attribute> attributes;
  std::optional<std::vector<double>> constant_value;  // Constant nodes, small tensors only
  std::vector<std::int64_t> constant_dims;            // Constant nodes
};

struct Value {
  std::vector<std::int64_t> dims;
  bool constant = false;                       // initializer, weight input, or computed from them
  std::optional<std::vector<double>> numbers;  // small constants whose values were readable
  int producer = -1;                           // node index, -1 for graph inputs/initializers
};

struct Graph {
  std::string source;
  std::string input;        // the image input
  std::vector<Node> nodes;  // topological order
  std::map<std::string, Value> values;
  std::vector<std::string> outputs;
};

[[noreturn]] void fail_node(const Graph& g, const Node& n, const std::string& message);

// Parses, sorts and infers every shape; throws lasnet::Error naming the file and the node.
Graph load_graph(std::string_view bytes, std::string_view source, const ImportOptions& options);

// ---- layers -----------------------------------------------------------------------------------
enum class LayerKind {
  conv,  // incl. 1x1 convs from MatMul over channels-last maps
  fc,
  pool_max,
  pool_avg,
  global_pool,
  batchnorm,  // elementwise until folded into the conv before it
  activation,
  layernorm,
  bias_add,      // + constant per-channel vector (a bias, foldable)
  scale,         // x constant per-channel vector (layer scale, foldable)
  free,          // x / + scalar constant, reshapes: no cost
  add,           // two maps
  mul,           // two maps (gates, SiLU)
  sub,           // two maps (a decomposed LayerNorm's centring)
  div,           // two maps (a decomposed LayerNorm's normalisation)
  channel_mean,  // mean over the channels of a channels-last map (decomposed LayerNorm)
  concat,
  upsample,
};

struct Layer {
  LayerKind kind = LayerKind::free;
  std::string node, op;     // ONNX node name and type
  std::vector<int> inputs;  // value ids of maps (constants dropped)
  int output = -1;
  // map shape of the output: channels, height, width (fc/vectors: height = width = 1)
  std::int64_t c = 0, h = 1, w = 1;
  std::int64_t in_c = 0, in_h = 1, in_w = 1;
  // conv / pool
  std::int64_t kernel = 1, stride = 1, padding = 0, groups = 1, dilation = 1;
  bool bias = false;
  bool norm = false;                // BatchNorm folded in
  std::string activation;           // "", "relu", "relu6", "silu", "hardswish", "sigmoid",
                                    // "hardsigmoid", "gelu", "erf" (part of a GELU)
  double constant = 0;              // scalar of a `free` op, when known
  std::int64_t scale = 1;           // upsample
  std::string mode;                 // upsample
  std::vector<std::string> folded;  // "name (Op)" of nodes folded into this one
  double parameters = 0;            // of the layer itself (weights, bias, affine)
};

struct LayerGraph {
  std::string source;
  std::vector<Layer> layers;  // topological
  int input = 0;              // value id of the image
  std::int64_t batch = 1;
  std::int64_t in_c = 0, in_h = 0, in_w = 0;
  std::vector<std::vector<int>> consumers;  // per value id: layer indices
  std::vector<int> producer;                // per value id: layer index, -1 = input
  std::vector<PlainNode> folded;            // Identity, Flatten, ... (free, no layer)
};

LayerGraph to_layers(const Graph& graph);

Imported recognise(const LayerGraph& layers, const std::string& name);

}  // namespace lasnet::importer::detail
