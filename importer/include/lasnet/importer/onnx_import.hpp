#pragma once
// ONNX models to model specs (docs/import.md). Three passes, as TVM's ONNX frontend does it:
// shape inference over the graph, one small converter per op type into plain layers (BatchNorm
// and activations folded into the conv they follow), then block recognition over those layers,
// which yields the spec: stem, stages of residual blocks grouped by resolution, head. What is
// not a block stays a plain layer. Only shapes are read: initializers may be stripped.
#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lasnet::importer {

struct ImportOptions {
  std::optional<std::array<std::int64_t, 4>> input;  // NxCxHxW of the image input
  std::string name;                                  // spec name; default: the file's stem
};

// A recognised block, in graph order.
struct FoundBlock {
  std::string stage;    // the spec stage it went into
  std::string kind;     // "bottleneck", "inverted_residual", ...
  std::string first;    // name of its first ONNX node
  std::string summary;  // "64->256 mid 64 stride 1 shortcut"
};

// A node that is in no block: a stem/head/layer-stage layer, or folded away.
struct PlainNode {
  std::string node;  // ONNX node name
  std::string op_type;
  std::string placed;  // "stem", "head", "stage3 (layer)", "folded into conv 'x'", ...
};

struct Imported {
  std::string spec_json;  // the spec (schema 1 when it needs no schema-2 feature)
  int schema_version = 1;
  std::vector<std::string> v2_features;  // why the spec needs schema 2 (empty for schema 1)
  std::vector<FoundBlock> blocks;
  std::vector<PlainNode> plain;
  double macs = 0;        // per image, conv/fc/matmul multiply-accumulates
  double parameters = 0;  // weights, biases, normalisation affine parameters
};

// `bytes` is the serialized ModelProto; errors are lasnet::Error "SOURCE: node 'n' (Op): ...".
Imported import_onnx(std::string_view bytes, std::string_view source, const ImportOptions& options);
// Models carry their weights, so they may be far larger than a JSON input; protobuf parses at
// most 2 GiB (an int of bytes), and nests messages at most 100 deep (its default recursion
// limit, which ParseFromArray keeps: a deeper file is "not an ONNX model").
inline constexpr std::uintmax_t max_onnx_file_bytes = (std::uintmax_t{2} << 30) - 1;
Imported import_onnx_file(const std::filesystem::path& file, const ImportOptions& options);

// "1x3x224x224" -> {1,3,224,224}; errors name `what`.
std::array<std::int64_t, 4> parse_input_shape(std::string_view text, std::string_view what);

// What --report prints: every block, then every node outside a block.
std::string format_report(const Imported& imported);

}  // namespace lasnet::importer
