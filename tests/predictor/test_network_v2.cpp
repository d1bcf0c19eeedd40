// What schema 2 adds to the priced network: new ops (elementwise, upsample, concat) with their
// counts worked by hand, dilation, fused vs unfused activations, SE in inverted residuals,
// convnext blocks, layer stages, partial border patches, and the MAC and parameter counts.
#include <doctest/doctest.h>

#include <string>

#include "fixtures.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/predictor/network.hpp"

namespace lp = lasnet::predictor;

namespace {

std::vector<std::string> names(const lp::BlockGraph& g) {
  std::vector<std::string> out;
  for (const auto& n : g.nodes) out.push_back(n.name);
  return out;
}

const lp::OpNode& node(const lp::BlockGraph& g, const std::string& name) {
  for (const auto& n : g.nodes) {
    if (n.name == name) return n;
  }
  FAIL("no node " << name);
  return g.nodes.front();
}

lp::Op map_op(lp::OpKind kind, std::int64_t c, std::int64_t h, std::int64_t w) {
  lp::Op op;
  op.kind = kind;
  op.in_channels = op.out_channels = c;
  op.in_height = op.out_height = h;
  op.in_width = op.out_width = w;
  return op;
}

lp::Spec spec_of(const std::string& stages, const std::string& extra = "") {
  return lp::parse_spec(R"({"schema_version": 2, "name": "t", "input": {"channels": 8,
      "height": 7, "width": 7}, "stages": [)" +
                            stages + "]" + extra + "}",
                        "t.json");
}

}  // namespace

TEST_CASE("elementwise, upsample and concat counts") {
  // 1x8x4x4 = 128 elements; fp32.
  lp::Op relu6 = map_op(lp::OpKind::elementwise, 8, 4, 4);
  relu6.pointwise = lp::Pointwise::relu6;
  CHECK(lp::flops(relu6) == 256);               // clamp: 2 per element
  CHECK(lp::unique_dram_bytes(relu6) == 1024);  // read 128 + write 128 floats
  lp::Op ln = relu6;
  ln.pointwise = lp::Pointwise::layernorm;
  CHECK(lp::flops(ln) == 1024);              // 8 per element
  CHECK(lp::unique_dram_bytes(ln) == 1088);  // + 2 x 8 affine parameters
  // Nearest 2x: 4x4 -> 8x8, 8 channels: no arithmetic, (128 in + 512 out) x 4 bytes.
  lp::Op up = map_op(lp::OpKind::upsample, 8, 4, 4);
  up.out_height = up.out_width = 8;
  up.stride = 2;
  CHECK(lp::flops(up) == 0);
  CHECK(lp::unique_dram_bytes(up) == 2560);
  up.kernel = 2;  // bilinear: 7 FLOPs per output
  CHECK(lp::flops(up) == 3584);
  // Concat of 8 + 8 channels on 4x4: every element read and written once.
  const lp::Op cat = map_op(lp::OpKind::concat, 16, 4, 4);
  CHECK(lp::flops(cat) == 0);
  CHECK(lp::unique_dram_bytes(cat) == 2048);
  // Each prices to a positive, memory-bound latency.
  const auto hw = lasnet::test::toy_gpu();
  for (const auto& op : {relu6, ln, up, cat}) {
    CAPTURE(lp::to_string(op.kind));
    const auto p = lp::predict_op(op, hw);
    CHECK(p.latency_s > 0);
    CHECK(p.bound == lp::Bound::memory);
  }
}

TEST_CASE("dilation widens a conv's footprint, not its taps") {
  // 3x3 at dilation 2 spans 5 pixels: a patch of 2 outputs reads (2-1)*1 + 5 = 6 per side.
  lp::Op conv = map_op(lp::OpKind::gathered_conv, 8, 8, 8);
  conv.kernel = 3;
  conv.granularity = 2;
  conv.active_patches = 1;
  const lp::Op plain = conv;
  conv.dilation = 2;
  CHECK(conv.kernel_extent() == 5);
  CHECK(conv.patch_in_extent() == 6);
  CHECK(lp::flops(conv) == lp::flops(plain));  // 4 outputs x 8 x 72 x 2 = 4608
  CHECK(lp::flops(conv) == 4608);
  // Input 36 pixels x 8 channels instead of 16 x 8: 160 more floats.
  CHECK(lp::unique_dram_bytes(conv) - lp::unique_dram_bytes(plain) == 4.0 * 160);
  // A block stage's dilation reaches its spatial conv; the map keeps its size.
  const auto spec = spec_of(
      R"({"block": "bottleneck", "blocks": 1, "mid_channels": 8, "out_channels": 8,
          "dilation": 2, "kernel": 5})");
  const auto b = lp::make_block(spec, 0, 0, lp::Execution::dense, {});
  const auto& conv2 = node(b, "conv2").op;
  CHECK(conv2.kernel == 5);
  CHECK(conv2.dilation == 2);
  CHECK(conv2.out_height == 7);
}

TEST_CASE("activations fused in a conv are free; unfused ones are a priced pass") {
  const auto relu = spec_of(R"({"block": "basic", "blocks": 1, "out_channels": 8})",
                            R"(, "head": [{"type": "conv", "out_channels": 8, "kernel": 1}])");
  const auto silu = spec_of(
      R"({"block": "basic", "blocks": 1, "out_channels": 8, "activation": "silu"})",
      R"(, "head": [{"type": "conv", "out_channels": 8, "kernel": 1, "activation": "silu"}])");
  const auto unfused =
      spec_of(R"({"block": "basic", "blocks": 1, "out_channels": 8})",
              R"(, "head": [{"type": "conv", "out_channels": 8, "kernel": 1, "activation": "none"},
                    {"type": "elementwise", "op": "silu"}])");
  const auto hw = lasnet::test::toy_gpu();
  const auto latency = [&](const lp::Spec& s) {
    lp::PredictionCache cache(hw);
    return lp::predict_network(lp::build_network(s, lp::Execution::dense), s, hw, cache);
  };
  const auto a = latency(relu), b = latency(silu), c = latency(unfused);
  CHECK(a.latency_s == b.latency_s);
  CHECK(a.flops == b.flops);
  // The unfused silu: 8 x 7 x 7 = 392 elements x 5 FLOPs more.
  CHECK(c.flops - a.flops == 392 * 5);
  CHECK(c.latency_s > a.latency_s);
  CHECK(names(lp::build_network(unfused, lp::Execution::dense).back()) ==
        std::vector<std::string>{"conv0", "silu1"});
}

TEST_CASE("SE in an inverted residual, dense and dynamic") {
  const auto spec = spec_of(
      R"({"block": "inverted_residual", "blocks": 1, "expansion": 4, "out_channels": 8,
          "se_channels": 8, "se_gate": "hardsigmoid"})",
      R"(, "dynamic": {"granularity": "7", "density": 1})");
  const auto dense = lp::make_block(spec, 0, 0, lp::Execution::dense, {});
  CHECK(names(dense) == std::vector<std::string>{"expand", "dw", "se", "project", "add"});
  const auto& se = node(dense, "se").op;
  CHECK(se.kind == lp::OpKind::se);
  CHECK(se.in_channels == 32);
  CHECK(se.out_channels == 8);
  // pool + scale over 49 pixels x 32 channels (2 each), two fcs of 32 x 8 (4 FLOPs per weight).
  CHECK(lp::flops(se) == 2.0 * 49 * 32 + 4.0 * 32 * 8);
  const auto dyn = lp::make_block(spec, 0, 0, lp::Execution::dynamic, {7, 1.0, lp::Fusion{}});
  CHECK(names(dyn) == std::vector<std::string>{"masker", "expand", "dw", "se", "project"});
  CHECK(node(dyn, "se").op.is_dynamic());
}

TEST_CASE("convnext blocks: dw kxk, layernorm and the 1x1s, dense and on active pixels") {
  const auto spec = spec_of(R"({"block": "convnext", "blocks": 1, "out_channels": 8})",
                            R"(, "dynamic": {"granularity": "1", "density": 0.5})");
  const auto dense = lp::make_block(spec, 0, 0, lp::Execution::dense, {});
  CHECK(names(dense) == std::vector<std::string>{"dw", "norm", "pw1", "pw2", "add"});
  CHECK(node(dense, "dw").op.kernel == 7);
  CHECK(node(dense, "dw").op.groups == 8);
  CHECK(node(dense, "pw1").op.out_channels == 32);
  CHECK(node(dense, "norm").op.pointwise == lp::Pointwise::layernorm);
  // Dynamic at S=1, density 0.5 of 49 pixels: 25 patches; the dw reads a 7x7 halo per patch.
  const auto dyn = lp::make_block(spec, 0, 0, lp::Execution::dynamic, {1, 0.5, lp::Fusion{}});
  CHECK(names(dyn) == std::vector<std::string>{"masker", "dw", "norm", "pw1", "pw2"});
  const auto& dw = node(dyn, "dw").op;
  CHECK(dw.kind == lp::OpKind::gather_conv);
  CHECK(dw.active_patches == 25);
  CHECK(dw.patch_in_extent() == 7);
  CHECK(node(dyn, "norm").op.output_elements() == 25 * 8);
  CHECK(node(dyn, "pw2").op.kind == lp::OpKind::conv_scatter_add);
}

TEST_CASE("an S that does not divide the map prices the pixels inside it") {
  // 7x7 map, S = 3: a 3x3 grid of patches with sides 3, 3, 1 per axis.
  const auto spec = spec_of(R"({"block": "bottleneck", "blocks": 1, "mid_channels": 4,
                                "out_channels": 8})",
                            R"(, "dynamic": {"granularity": "3", "density": 1})");
  const auto full = lp::make_block(spec, 0, 0, lp::Execution::dynamic, {3, 1.0, lp::Fusion{}});
  // Every patch active: conv3 writes exactly the 49 map pixels, not 9 x 9 = 81.
  const auto& conv3 = node(full, "conv3").op;
  CHECK(conv3.active_patches == 9);
  CHECK(conv3.patch_out_pixels() == 49);
  CHECK(conv3.output_elements() == 49 * 8);
  // conv2 (3x3) reads per axis (3-1)+3 + (3-1)+3 + (1-1)+3 = 13: 169 pixels, not 9 x 25.
  CHECK(node(full, "conv2").op.patch_in_pixels() == 169);
  // conv1 computes that halo region too.
  CHECK(node(full, "conv1").op.patch_out_pixels() == 169);
  // Density 0.5: ceil(4.5) = 5 patches of 49/9 pixels on average: round(27.2) = 27.
  const auto half = lp::make_block(spec, 0, 0, lp::Execution::dynamic, {3, 0.5, lp::Fusion{}});
  CHECK(node(half, "conv3").op.active_patches == 5);
  CHECK(node(half, "conv3").op.patch_out_pixels() == 27);
  CHECK(lp::flops(node(half, "conv3").op) == 2.0 * 27 * 8 * 4 + 27 * 8);  // + the residual add
  // A dividing S leaves the whole-patch counts: 7 on 7x7.
  const auto whole = lp::make_block(spec, 0, 0, lp::Execution::dynamic, {7, 1.0, lp::Fusion{}});
  CHECK(node(whole, "conv3").op.active_pixels == 0);
  CHECK(node(whole, "conv3").op.patch_out_pixels() == 49);
  // And the prediction runs, cheaper than 81-pixel patches would be.
  const auto hw = lasnet::test::toy_gpu();
  lp::PredictionCache cache(hw);
  CHECK(lp::predict_block(full, cache, hw).latency_s > 0);
}

TEST_CASE("layer stages run dense between block stages, with their own stage result") {
  const auto spec = spec_of(
      R"({"name": "a", "block": "basic", "blocks": 1, "out_channels": 8},
         {"name": "down", "layers": [{"type": "conv", "out_channels": 16, "kernel": 3,
                                      "stride": 2}]},
         {"name": "b", "block": "basic", "blocks": 2, "out_channels": 16})",
      R"(, "dynamic": {"granularity": "7-2", "density": 0.5})");
  const auto blocks = lp::build_network(spec, lp::Execution::dynamic);
  std::vector<std::string> got;
  for (const auto& b : blocks) got.push_back(b.name);
  CHECK(got == std::vector<std::string>{"stem", "a.0", "down", "b.0", "b.1", "head"});
  CHECK_FALSE(blocks[2].dynamic);
  CHECK(blocks[2].nodes.front().op.out_height == 4);
  CHECK(blocks[3].granularity == 2);  // the second entry belongs to the second block stage
  const auto hw = lasnet::test::toy_gpu();
  lp::PredictionCache cache(hw);
  const auto n = lp::predict_network(blocks, spec, hw, cache);
  REQUIRE(n.stages.size() == 5);
  CHECK(n.stages[2].name == "down");
  CHECK(n.stages[2].latency_s == n.blocks[2].latency_s);
  double sum = 0;
  for (const auto& s : n.stages) sum += s.latency_s;
  CHECK(sum == doctest::Approx(n.latency_s));
}

TEST_CASE("MACs and parameters of small specs, counted by hand") {
  // 3x8x8 -> stem conv 3->8 3x3 (+BN) -> basic block 8->8 -> pool -> fc 8->10.
  const auto spec = lp::parse_spec(R"({"name": "t", "input": {"channels": 3, "height": 8,
      "width": 8}, "stem": [{"type": "conv", "out_channels": 8, "kernel": 3}],
      "stages": [{"block": "basic", "blocks": 1, "out_channels": 8}],
      "head": [{"type": "global_avg_pool"}, {"type": "fc", "out_channels": 10}]})",
                                   "t.json");
  // Stem 8*3*9 + 2*8 = 232; block 2 x (8*8*9 + 16) = 1184; fc 8*10 + 10 = 90.
  CHECK(lp::network_parameters(spec) == 232 + 1184 + 90);
  // Stem 64 pixels x 8 x 27 = 13824; block 2 x 64 x 8 x 72 = 73728; fc 80.
  CHECK(lp::network_macs(spec) == 13824 + 73728 + 80);
  // Inverted residual 16 -> 16, expansion 4 (64), SE 8, on 4x4: expand 16*64 + 128 = 1152,
  // dw 64*9 + 128 = 704, SE 64*8 + 8 + 8*64 + 64 = 1096, project 64*16 + 32 = 1056.
  const auto ir = lp::parse_spec(R"({"name": "t", "input": {"channels": 16, "height": 4,
      "width": 4}, "stages": [{"block": "inverted_residual", "blocks": 1, "expansion": 4,
      "out_channels": 16, "se_channels": 8}]})",
                                 "t.json");
  CHECK(lp::network_parameters(ir) == 1152 + 704 + 1096 + 1056);
  // MACs: 16 px x (16*64 + 64*9 + 64*16) = 16 x 2624 = 41984, SE fcs 2 x 64 x 8 = 1024.
  CHECK(lp::network_macs(ir) == 41984 + 1024);
  // ConvNeXt C = 8 (mid 32), 7x7 dw, as torchvision: dw 8*49 + 8 = 400, layernorm 16,
  // pw1 8*32 + 32 = 288, pw2 32*8 + 8 = 264, layer scale 8; a conv layer with bias and no BN
  // 8*8 + 8 = 72, an elementwise layernorm 16.
  const auto cn = lp::parse_spec(R"({"name": "t", "input": {"channels": 8, "height": 7,
      "width": 7}, "stages": [{"block": "convnext", "blocks": 1, "out_channels": 8},
      {"layers": [{"type": "elementwise", "op": "layernorm"}, {"type": "conv",
       "out_channels": 8, "kernel": 1, "bias": true, "norm": "none"}]}]})",
                                 "t.json");
  CHECK(lp::network_parameters(cn) == 400 + 16 + 288 + 264 + 8 + 16 + 72);
}

TEST_CASE("ResNet-50 has torchvision's parameters and MACs") {
  const auto spec = lasnet::test::example("resnet50");
  CHECK(static_cast<double>(lp::network_parameters(spec)) ==
        doctest::Approx(25557032).epsilon(0.005));
  CHECK(lp::network_macs(spec) / 1e9 == doctest::Approx(4.09).epsilon(0.005));
}

TEST_CASE("ConvNeXt-Tiny written in schema 2 has torchvision's parameters and MACs") {
  // torchvision's convnext_tiny: 28,589,128 parameters, 4.46 GMACs. Downsampling layers are
  // layer stages (LayerNorm2d, then a 2x2/s2 conv with bias); the classifier's LayerNorm2d sits
  // on the pooled 1x1 map.
  const std::string down = R"({"type": "elementwise", "op": "layernorm"},
      {"type": "conv", "kernel": 2, "stride": 2, "padding": 0, "bias": true, "norm": "none",
       "activation": "none", "out_channels": )";
  const auto spec = lp::parse_spec(
      R"({"schema_version": 2, "name": "convnext_tiny",
      "input": {"channels": 3, "height": 224, "width": 224},
      "stem": [{"type": "conv", "out_channels": 96, "kernel": 4, "stride": 4, "padding": 0,
                "bias": true, "norm": "none", "activation": "none"},
               {"type": "elementwise", "op": "layernorm"}],
      "stages": [{"name": "stage1", "block": "convnext", "blocks": 3, "out_channels": 96},
        {"name": "down1", "layers": [)" +
          down + R"(192}]},
        {"name": "stage2", "block": "convnext", "blocks": 3, "out_channels": 192},
        {"name": "down2", "layers": [)" +
          down + R"(384}]},
        {"name": "stage3", "block": "convnext", "blocks": 9, "out_channels": 384},
        {"name": "down3", "layers": [)" +
          down + R"(768}]},
        {"name": "stage4", "block": "convnext", "blocks": 3, "out_channels": 768}],
      "head": [{"type": "global_avg_pool"}, {"type": "elementwise", "op": "layernorm"},
               {"type": "fc", "out_channels": 1000}],
      "dynamic": {"granularity": "8-4-2-1", "density": 0.5}})",
      "convnext_tiny.json");
  CHECK(lp::network_parameters(spec) == 28589128);
  CHECK(lp::network_macs(spec) / 1e9 == doctest::Approx(4.46).epsilon(0.01));
  // It prices, dense and dynamic, and the round trip keeps it.
  const auto hw = lasnet::test::shipped_profile("v100");
  lp::PredictionCache cache(hw);
  const auto dense =
      lp::predict_network(lp::build_network(spec, lp::Execution::dense), spec, hw, cache);
  const auto dyn =
      lp::predict_network(lp::build_network(spec, lp::Execution::dynamic), spec, hw, cache);
  CHECK(dense.latency_s > 0);
  CHECK(dyn.latency_s > 0);
  CHECK(dense.stages.size() == 1 + 4 + 3 + 1);
  const auto text = lp::spec_to_json(spec);
  CHECK(lp::spec_to_json(lp::parse_spec(text, "again.json")) == text);
}

TEST_CASE("an inverted residual's expanded width may be given directly (MobileNetV3's 80 -> 200)") {
  const auto spec = lp::parse_spec(R"({"schema_version": 2, "name": "t", "input": {"channels": 80,
      "height": 14, "width": 14}, "stages": [
        {"block": "inverted_residual", "blocks": 1, "mid_channels": 200, "out_channels": 80,
         "activation": "hardswish"},
        {"block": "inverted_residual", "blocks": 1, "mid_channels": 80, "out_channels": 80}]})",
                                   "t.json");
  const auto wide = lp::make_block(spec, 0, 0, lp::Execution::dense, {});
  CHECK(names(wide) == std::vector<std::string>{"expand", "dw", "project", "add"});
  CHECK(node(wide, "expand").op.out_channels == 200);
  CHECK(node(wide, "dw").op.groups == 200);
  // A width equal to the input's has no expansion conv, as torchvision builds it.
  const auto same = lp::make_block(spec, 1, 0, lp::Execution::dense, {});
  CHECK(names(same) == std::vector<std::string>{"dw", "project", "add"});
  // expand 80*200 + 400, dw 200*9 + 400, project 200*80 + 160; then dw 80*9 + 160,
  // project 80*80 + 160.
  CHECK(lp::network_parameters(spec) ==
        (16000 + 400) + (1800 + 400) + (16000 + 160) + (720 + 160) + (6400 + 160));
  const auto text = lp::spec_to_json(spec);
  CHECK(text.find("\"mid_channels\": 200") != std::string::npos);
  CHECK(lp::spec_to_json(lp::parse_spec(text, "again.json")) == text);
  CHECK_THROWS_WITH_AS(
      lp::parse_spec(R"({"name": "t", "input": {"channels": 8, "height": 4, "width": 4},
          "stages": [{"block": "inverted_residual", "blocks": 1, "mid_channels": 16,
                      "expansion": 2, "out_channels": 8}]})",
                     "t.json"),
      doctest::Contains("t.json: stages[0].expansion: give expansion or mid_channels, not both"),
      lasnet::Error);
}
