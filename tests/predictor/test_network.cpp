#include <doctest/doctest.h>

#include <set>

#include "fixtures.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/predictor/network.hpp"

using namespace lasnet::predictor;

namespace {
std::vector<std::string> names(const BlockGraph& g) {
  std::vector<std::string> out;
  for (const auto& n : g.nodes) out.push_back(n.name);
  return out;
}
const OpNode& node(const BlockGraph& g, const std::string& name) {
  for (const auto& n : g.nodes) {
    if (n.name == name) return n;
  }
  FAIL("no node " << name);
  return g.nodes.front();
}
double dense_macs(const Spec& spec) {
  const auto hw = lasnet::test::shipped_profile("v100");
  PredictionCache cache(hw);
  double macs = 0;
  for (const auto& b : build_network(spec, Execution::dense)) {
    for (const auto& n : b.nodes) {
      // Count conv/fc multiply-accumulates only, as the published figures do.
      if (n.op.kind == OpKind::conv || n.op.kind == OpKind::fc) macs += flops(n.op) / 2;
    }
  }
  return macs;
}
}  // namespace

TEST_CASE("the examples have their published multiply-accumulate counts at 224x224") {
  struct Case {
    const char* name;
    double gmacs;
  };
  // torchvision / pycls figures.
  for (const Case c : {Case{"resnet50", 4.09}, Case{"resnet101", 7.80}, Case{"regnety_400mf", 0.40},
                       Case{"regnety_800mf", 0.80}, Case{"mobilenetv2", 0.30}}) {
    CAPTURE(c.name);
    auto spec = lasnet::test::example(c.name);
    spec.batch = 1;
    CHECK(dense_macs(spec) / 1e9 == doctest::Approx(c.gmacs).epsilon(0.02));
  }
}

TEST_CASE("dense bottleneck blocks: a shortcut conv only where the shape changes") {
  const auto spec = lasnet::test::example("resnet50");
  const auto first = make_block(spec, 1, 0, Execution::dense, {});
  CHECK(names(first) == std::vector<std::string>{"conv1", "conv2", "conv3", "shortcut", "add"});
  CHECK(node(first, "shortcut").after.empty());  // runs beside the main path
  CHECK(node(first, "add").after.size() == 2);
  CHECK(node(first, "conv2").op.stride == 2);
  const auto second = make_block(spec, 1, 1, Execution::dense, {});
  CHECK(names(second) == std::vector<std::string>{"conv1", "conv2", "conv3", "add"});
  const auto net = build_network(spec, Execution::dense);
  CHECK(net.size() == 1 + 16 + 1);
  CHECK(net.front().name == "stem");
  CHECK(net.back().name == "head");
}

TEST_CASE("dynamic bottleneck: op lists and dependencies for each fusion choice") {
  auto spec = lasnet::test::example("resnet50");
  spec.batch = 2;
  BlockSettings s;
  s.granularity = 4;
  s.density = 0.5;
  // layer2.0: 56x56 -> 28x28 at stride 2: grid 7x7 = 49 per image, 98 over the batch, 49 active.
  s.fusion = Fusion{false, false, false};
  auto g = make_block(spec, 1, 0, Execution::dynamic, s);
  CHECK(names(g) == std::vector<std::string>{"masker", "gather", "conv1", "conv2", "conv3",
                                             "shortcut", "scatter_add"});
  CHECK(node(g, "gather").op.active_patches == 49);
  // conv2 at stride 2 needs (4-1)*2+3 = 9 pixels per side of conv1's output.
  CHECK(node(g, "conv1").op.granularity == 9);
  CHECK(node(g, "gather").op.granularity == 9);
  CHECK(node(g, "conv2").op.patch_in_extent() == 9);
  CHECK(node(g, "conv3").op.granularity == 4);
  CHECK(node(g, "scatter_add").after.size() == 2);

  s.fusion = Fusion{false, true, true};
  g = make_block(spec, 1, 0, Execution::dynamic, s);
  CHECK(names(g) == std::vector<std::string>{"masker", "conv1", "conv2", "shortcut", "conv3"});
  CHECK(node(g, "conv1").op.kind == OpKind::gather_conv);
  CHECK(node(g, "conv3").op.kind == OpKind::conv_scatter_add);
  CHECK(node(g, "conv3").after.size() == 2);

  s.fusion = Fusion{true, true, true};
  g = make_block(spec, 1, 0, Execution::dynamic, s);
  CHECK(names(g) == std::vector<std::string>{"masker_conv", "conv2", "shortcut", "conv3"});
  CHECK(node(g, "conv2").op.kind == OpKind::gather_conv);
  CHECK(node(g, "masker_conv").op.out_height == 56);  // conv1 runs on the full input map
}

TEST_CASE("blocks without a residual path stay dense; RegNetY blocks carry squeeze-excitation") {
  const auto mb = lasnet::test::example("mobilenetv2");
  CHECK_FALSE(block_can_be_dynamic(mb, 1, 0));  // 16 -> 24 channels at stride 2
  CHECK(block_can_be_dynamic(mb, 1, 1));
  BlockSettings s{4, 0.5, {}};
  CHECK_FALSE(make_block(mb, 1, 0, Execution::dynamic, s).dynamic);
  const auto first = make_block(mb, 0, 0, Execution::dense, {});
  CHECK(names(first) == std::vector<std::string>{"dw", "project"});  // expansion 1
  const auto rg = lasnet::test::example("regnety_400mf");
  const auto block = make_block(rg, 1, 1, Execution::dynamic, s);
  CHECK(node(block, "se").op.kind == OpKind::se);
  CHECK(node(block, "conv2").op.groups == 104 / 8);
}

TEST_CASE("channel and layer skipping") {
  auto spec = lasnet::test::example("resnet50");
  spec.batch = 4;
  spec.dynamic.mode = DynamicMode::channel;
  BlockSettings s{0, 0.5, {}};
  const auto g = make_block(spec, 0, 1, Execution::dynamic, s);
  CHECK(names(g).front() == "gate");
  CHECK(node(g, "conv1").op.out_channels == 32);  // half of 64 mid channels
  const auto none = make_block(spec, 0, 1, Execution::dynamic, BlockSettings{0, 0.0, {}});
  CHECK(names(none) == std::vector<std::string>{"gate"});

  set_mode(spec, DynamicMode::layer);
  set_density(spec, 0.5, "d");
  CHECK(spec.dynamic.granularity == std::vector<std::int64_t>{56, 28, 14, 7});
  const auto layer = make_block(spec, 2, 1, Execution::dynamic, BlockSettings{14, 0.5, {}});
  CHECK(node(layer, "masker").op.active_patches == 2);  // 2 of 4 images run the block
}

TEST_CASE("network predictions add up, and dynamic needs settings") {
  auto spec = lasnet::test::example("resnet101");
  spec.batch = 1;
  const auto hw = lasnet::test::shipped_profile("v100");
  PredictionCache cache(hw);
  const auto n = predict_network(build_network(spec, Execution::dense), spec, hw, cache);
  double blocks = 0, stages = 0;
  for (const auto& b : n.blocks) blocks += b.latency_s;
  for (const auto& s : n.stages) stages += s.latency_s;
  CHECK(blocks == doctest::Approx(n.latency_s));
  CHECK(stages == doctest::Approx(n.latency_s));
  CHECK(n.stages.size() == 6);  // stem, four stages, head
  // 33 bottlenecks of ResNet-101 share 8 distinct shapes: the cache stays small.
  CHECK(cache.size() < 60);

  spec.dynamic = {};
  CHECK_THROWS_WITH_AS(build_network(spec, Execution::dynamic),
                       doctest::Contains("has no dynamic settings"), lasnet::Error);
}

TEST_CASE("fusion strings") {
  CHECK(parse_fusion("none", "f") == Fusion{false, false, false});
  CHECK(parse_fusion("all", "f") == Fusion{true, true, true});
  CHECK(parse_fusion("gather,scatter", "f") == Fusion{false, true, true});
  CHECK(to_string(Fusion{true, false, true}) == "masker,scatter");
  CHECK_THROWS_WITH_AS(parse_fusion("gather,glue", "--fusion"),
                       doctest::Contains("--fusion: 'glue' is not a fusion"), lasnet::Error);
}
