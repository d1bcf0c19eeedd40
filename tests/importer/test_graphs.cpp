// Small graphs built here, with numbers worked by hand, and every kind of bad input: each must
// give one lasnet::Error naming the file and the node (name, op type).
#include <doctest/doctest.h>
#include <onnx/onnx_pb.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "lasnet/common/error.hpp"
#include "lasnet/common/file_io.hpp"
#include "lasnet/importer/onnx_import.hpp"
#include "lasnet/predictor/spec.hpp"

using namespace lasnet;

namespace {

class ModelBuilder {
 public:
  explicit ModelBuilder(const std::vector<std::int64_t>& input, bool dynamic = false) {
    model_.set_ir_version(8);
    model_.add_opset_import()->set_version(17);
    auto* in = model_.mutable_graph()->add_input();
    in->set_name("x");
    auto* t = in->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    for (std::size_t k = 0; k < input.size(); ++k) {
      auto* d = t->mutable_shape()->add_dim();
      if (dynamic && k != 1) {
        d->set_dim_param(k == 0 ? "N" : "H");
      } else {
        d->set_dim_value(input[k]);
      }
    }
  }
  // A weight whose initializer is stripped: a graph input with its shape. With `initializer`, a
  // real initializer (zeros) instead.
  void weight(const std::string& name, const std::vector<std::int64_t>& dims,
              bool initializer = false) {
    if (initializer) {
      auto* t = model_.mutable_graph()->add_initializer();
      t->set_name(name);
      t->set_data_type(onnx::TensorProto::FLOAT);
      std::int64_t n = 1;
      for (const auto d : dims) {
        t->add_dims(d);
        n *= d;
      }
      for (std::int64_t i = 0; i < n; ++i) t->add_float_data(0.f);
      return;
    }
    auto* in = model_.mutable_graph()->add_input();
    in->set_name(name);
    auto* t = in->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    for (const auto d : dims) t->mutable_shape()->add_dim()->set_dim_value(d);
  }
  onnx::NodeProto& node(const std::string& op, const std::string& name,
                        const std::vector<std::string>& inputs, const std::string& output) {
    auto* n = model_.mutable_graph()->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const auto& i : inputs) n->add_input(i);
    n->add_output(output);
    return *n;
  }
  static void ints(onnx::NodeProto& n, const std::string& key, std::vector<std::int64_t> v) {
    auto* a = n.add_attribute();
    a->set_name(key);
    a->set_type(onnx::AttributeProto::INTS);
    for (const auto x : v) a->add_ints(x);
  }
  static void integer(onnx::NodeProto& n, const std::string& key, std::int64_t v) {
    auto* a = n.add_attribute();
    a->set_name(key);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  // conv kxk, same padding, + BatchNorm (+ Relu): returns the output name.
  std::string conv_bn(const std::string& name, const std::string& in, std::int64_t cin,
                      std::int64_t cout, std::int64_t k, std::int64_t stride, bool relu,
                      bool initializers = false, const std::string& relu_op = "Relu") {
    weight(name + ".w", {cout, cin, k, k}, initializers);
    auto& c = node("Conv", name, {in, name + ".w"}, name + ".y");
    ints(c, "kernel_shape", {k, k});
    ints(c, "strides", {stride, stride});
    ints(c, "pads", {k / 2, k / 2, k / 2, k / 2});
    for (const char* p : {".g", ".b", ".m", ".v"}) weight(name + p, {cout}, initializers);
    node("BatchNormalization", name + ".bn",
         {name + ".y", name + ".g", name + ".b", name + ".m", name + ".v"}, name + ".z");
    if (!relu) return name + ".z";
    node(relu_op, name + ".relu", {name + ".z"}, name + ".r");
    return name + ".r";
  }
  void output(const std::string& name) { model_.mutable_graph()->add_output()->set_name(name); }
  std::string bytes() const { return model_.SerializeAsString(); }
  onnx::ModelProto& model() { return model_; }

 private:
  onnx::ModelProto model_;
};

// x 1x8x16x16 -> basic block (3x3 conv BN relu, 3x3 conv BN, + x, relu) -> pool -> fc 10.
ModelBuilder basic_block_model(bool initializers = false, const std::string& op = "Relu",
                               bool dynamic = false) {
  ModelBuilder b({1, 8, 16, 16}, dynamic);
  const auto a = b.conv_bn("conv1", "x", 8, 8, 3, 1, true, initializers, op);
  const auto c = b.conv_bn("conv2", a, 8, 8, 3, 1, false, initializers);
  b.node("Add", "add", {c, "x"}, "sum");
  b.node("Relu", "add.relu", {"sum"}, "r");
  b.node("GlobalAveragePool", "pool", {"r"}, "p");
  b.node("Flatten", "flatten", {"p"}, "f");
  b.weight("fc.w", {10, 8}, initializers);
  b.weight("fc.b", {10}, initializers);
  auto& g = b.node("Gemm", "fc", {"f", "fc.w", "fc.b"}, "logits");
  ModelBuilder::integer(g, "transB", 1);
  b.output("logits");
  return b;
}

std::string error_of(const std::string& bytes, const importer::ImportOptions& options = {}) {
  try {
    (void)importer::import_onnx(bytes, "model.onnx", options);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("a basic block: counts worked by hand, one stage, schema 1") {
  const auto imported = importer::import_onnx(basic_block_model().bytes(), "tiny.onnx", {});
  // MACs: two 3x3 convs 8->8 on 16x16: 16*16*8*8*9 = 147456 each; fc 8*10 = 80.
  CHECK(imported.macs == 2 * 147456 + 80);
  // Parameters: 2 x (8*8*9 weights + 2*8 BatchNorm) = 2 * 592; fc 80 + 10 bias.
  CHECK(imported.parameters == 2 * 592 + 90);
  CHECK(imported.schema_version == 1);
  // The common label (docs/outputs.md) opens the written spec.
  CHECK(imported.spec_json.starts_with("{\n  \"schema\": \"lasnet.spec\",\n  \"version\": 1,"));
  REQUIRE(imported.blocks.size() == 1);
  CHECK(imported.blocks[0].kind == "basic");
  CHECK(imported.blocks[0].first == "conv1");
  const auto spec = predictor::parse_spec(imported.spec_json, "tiny.json");
  CHECK(spec.name == "tiny");
  REQUIRE(spec.stages.size() == 1);
  CHECK(spec.stages[0].block == predictor::BlockKind::basic);
  CHECK(spec.stages[0].out_channels == 8);
  CHECK(spec.stem.empty());
  CHECK(spec.head.size() == 2);
  // 16x16 output: the default granularity is the largest divisor <= 4.
  CHECK(spec.dynamic.granularity == std::vector<std::int64_t>{4});
  // The report places every node over a map: the block's and the head's.
  const auto report = importer::format_report(imported);
  CHECK(report.find("basic") != std::string::npos);
  CHECK(report.find("fc                           Gemm") != std::string::npos);
}

TEST_CASE("weights are not needed: stripped and present initializers import the same") {
  const auto stripped = importer::import_onnx(basic_block_model(false).bytes(), "a.onnx", {});
  const auto present = importer::import_onnx(basic_block_model(true).bytes(), "a.onnx", {});
  CHECK(stripped.spec_json == present.spec_json);
  CHECK(stripped.parameters == present.parameters);
}

TEST_CASE("--input gives a dynamic graph its shape") {
  const auto bytes = basic_block_model(false, "Relu", true).bytes();
  const std::string message = error_of(bytes);
  CHECK(message.find("model.onnx: graph input 'x', read by node 'conv1' (Conv), has a dynamic or "
                     "unknown shape (Nx8xHxH); give --input NxCxHxW") != std::string::npos);
  importer::ImportOptions options;
  options.input = importer::parse_input_shape("2x8x32x32", "--input");
  const auto spec =
      predictor::parse_spec(importer::import_onnx(bytes, "m.onnx", options).spec_json, "m");
  CHECK(spec.batch == 2);
  CHECK(spec.height == 32);
  CHECK_THROWS_WITH_AS(
      importer::parse_input_shape("1x3x224", "--input"),
      "--input: '1x3x224' is not NxCxHxW with positive integers (e.g. 1x3x224x224)", Error);
  CHECK_THROWS_AS(importer::parse_input_shape("1x3x0x2", "--input"), Error);
  CHECK_THROWS_AS(importer::parse_input_shape("1x3x2x2x", "--input"), Error);
}

TEST_CASE("bad input: one message naming the file and the node") {
  SUBCASE("not an ONNX file") {
    // Field 1 with wire type 7 does not exist in any protobuf.
    CHECK(error_of("\x0f not a model") ==
          "model.onnx: not an ONNX model (the protobuf does not parse: truncated, corrupt or "
          "another format)");
    CHECK(error_of("") == "model.onnx: not an ONNX model (no graph, or a graph with no nodes)");
  }
  SUBCASE("a truncated protobuf") {
    const std::string real =
        read_text_file(std::string(LASNET_SOURCE_DIR) + "/tests/data/onnx/resnet18.onnx");
    CHECK(error_of(real.substr(0, real.size() / 2)).rfind("model.onnx: not an ONNX model", 0) == 0);
  }
  SUBCASE("an unsupported op inside a block") {
    CHECK(error_of(basic_block_model(false, "Softplus").bytes()) ==
          "model.onnx: node 'conv1.relu' (Softplus): unsupported op type (docs/import.md lists "
          "the supported ones)");
  }
  SUBCASE("a cycle") {
    ModelBuilder b({1, 4, 8, 8});
    b.node("Add", "a", {"x", "c_out"}, "a_out");
    b.node("Relu", "c", {"a_out"}, "c_out");
    b.output("c_out");
    CHECK(error_of(b.bytes()) == "model.onnx: node 'a' (Add): the node is on a cycle of the graph");
  }
  SUBCASE("a node whose input is missing") {
    ModelBuilder b({1, 4, 8, 8});
    b.node("Relu", "r", {"x"}, "r_out");
    b.node("Add", "sum", {"r_out", "ghost"}, "s");
    b.output("s");
    CHECK(error_of(b.bytes()) ==
          "model.onnx: node 'sum' (Add): input 'ghost' is produced by no "
          "node, initializer or graph input");
  }
  SUBCASE("shapes that do not fit") {
    ModelBuilder b({1, 4, 8, 8});
    b.weight("w", {8, 3, 3, 3});
    b.node("Conv", "conv", {"x", "w"}, "y");
    b.output("y");
    CHECK(error_of(b.bytes()) ==
          "model.onnx: node 'conv' (Conv): weight 8x3x3x3 and group 1 do "
          "not fit an input of 4 channels");
  }
  SUBCASE("a map added to itself") {
    ModelBuilder b({1, 4, 8, 8});
    b.node("Relu", "r", {"x"}, "y");
    b.node("Add", "twice", {"y", "y"}, "z");
    b.output("z");
    CHECK(error_of(b.bytes()) ==
          "model.onnx: node 'twice' (Add): both of its inputs are the "
          "same map (no pattern the importer knows)");
  }
  SUBCASE("an op with the wrong number of inputs") {
    ModelBuilder b({1, 4, 8, 8});
    b.node("Add", "lonely", {"x"}, "z");
    b.output("z");
    CHECK(error_of(b.bytes()) == "model.onnx: node 'lonely' (Add): has 1 inputs, expected 2");
  }
  SUBCASE("branches that never meet") {
    ModelBuilder b({1, 4, 8, 8});
    b.node("Relu", "left", {"x"}, "l");
    b.node("Sigmoid", "right", {"x"}, "r");
    b.output("l");
    b.output("r");
    CHECK(error_of(b.bytes()).rfind("model.onnx: node 'left' (Relu): its branch never joins", 0) ==
          0);
  }
}

TEST_CASE("what is not a block stays a plain layer (schema 2: an add)") {
  // x -> relu -> (+ x): a residual whose body is a bare activation: no block kind.
  ModelBuilder b({1, 4, 8, 8});
  const auto y = b.conv_bn("stem", "x", 4, 4, 3, 1, true);
  b.node("Sigmoid", "gate", {y}, "s");
  b.node("Add", "skip", {"s", y}, "out");
  b.output("out");
  const auto imported = importer::import_onnx(b.bytes(), "m.onnx", {});
  CHECK(imported.blocks.empty());
  CHECK(imported.schema_version == 2);
  const auto spec = nlohmann::json::parse(imported.spec_json);
  REQUIRE(spec["stem"].size() == 3);
  CHECK(spec["stem"][0]["type"] == "conv");
  CHECK(spec["stem"][1] == nlohmann::json{{"type", "elementwise"}, {"op", "sigmoid"}});
  CHECK(spec["stem"][2]["type"] == "add");
  bool reported = false;
  for (const auto& n : imported.plain)
    reported = reported || (n.node == "gate" && n.op_type == "Sigmoid" && n.placed == "stem");
  CHECK(reported);
}

TEST_CASE("fuzz findings stay fixed: each input imports or is rejected with a message") {
  // tests/data/onnx/fuzz: inputs libFuzzer (fuzz/fuzz_import.cpp) once crashed the importer on.
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(LASNET_SOURCE_DIR) / "tests/data/onnx/fuzz";
  int count = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".onnx") continue;
    ++count;
    CAPTURE(entry.path().filename().string());
    try {
      (void)importer::import_onnx(read_text_file(entry.path()), "fuzz.onnx", {});
    } catch (const Error& e) {
      CHECK(std::string(e.what()).rfind("fuzz.onnx: ", 0) == 0);
    }
  }
  CHECK(count > 0);
}

TEST_CASE("the tiny graphs (tests/data/onnx/tiny): one block pattern each") {
  struct Case {
    const char* file;
    std::vector<std::string> kinds;
    int schema;
  };
  const Case cases[] = {
      {"basic", {"basic"}, 1},
      {"regnety", {"regnety"}, 1},
      // SiLU, 5x5 depthwise, SE: a residual one, then a strided one with no residual.
      {"inverted", {"inverted_residual", "inverted_residual"}, 2},
      {"convnext", {"convnext"}, 2},
      {"convnext_decomposed", {"convnext"}, 2},
  };
  for (const auto& c : cases) {
    CAPTURE(c.file);
    const auto imported = importer::import_onnx_file(
        std::string(LASNET_SOURCE_DIR) + "/tests/data/onnx/tiny/" + c.file + ".onnx", {});
    std::vector<std::string> kinds;
    for (const auto& b : imported.blocks) kinds.push_back(b.kind);
    CHECK(kinds == c.kinds);
    CHECK(imported.schema_version == c.schema);
    if (c.schema == 1) (void)predictor::parse_spec(imported.spec_json, c.file);
  }
  // The decomposed LayerNorm counts its affine pair like LayerNormalization: the two files
  // differ only by the layer scale (4 channels) that convnext.onnx has.
  const auto a = importer::import_onnx_file(
      std::string(LASNET_SOURCE_DIR) + "/tests/data/onnx/tiny/convnext.onnx", {});
  const auto b = importer::import_onnx_file(
      std::string(LASNET_SOURCE_DIR) + "/tests/data/onnx/tiny/convnext_decomposed.onnx", {});
  CHECK(a.parameters == b.parameters + 4);
}

TEST_CASE("a protobuf nested 100000 deep is refused by protobuf's recursion limit, no crash") {
  // graph.node[0].attribute[0].g.node[0].attribute[0].g... 100000 times (built here, not
  // committed; tests/data/onnx/fuzz/deep-nesting.onnx is a 200-level seed of the same shape).
  // Each level is a length-delimited field: tag byte, varint length, payload. Built back to
  // front, so the whole file costs one pass.
  std::string reversed;
  const auto wrap = [&reversed](unsigned char tag) {
    std::size_t n = reversed.size();
    std::string varint;
    do {
      varint += static_cast<char>((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
      n >>= 7;
    } while (n != 0);
    reversed.append(varint.rbegin(), varint.rend());
    reversed += static_cast<char>(tag);
  };
  for (int level = 0; level < 100000; ++level) {
    wrap(0x32);  // AttributeProto.g (field 6)
    wrap(0x2a);  // NodeProto.attribute (field 5)
    wrap(0x0a);  // GraphProto.node (field 1)
  }
  wrap(0x3a);  // ModelProto.graph (field 7)
  const std::string bytes(reversed.rbegin(), reversed.rend());
  CHECK_THROWS_WITH_AS(importer::import_onnx(bytes, "deep.onnx", {}),
                       doctest::Contains("deep.onnx: not an ONNX model (the protobuf does not "
                                         "parse"),
                       Error);
}
