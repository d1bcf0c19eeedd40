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

namespace {
// A one-layer block as predict_block sees a stem (stage -1) or head, at a layer runner's tile.
BlockGraph layer_graph(const std::string& name, const Op& op) {
  BlockGraph g;
  g.name = name;
  g.stage = name == "stem" ? -1 : 4;
  g.nodes.push_back(OpNode{"layer0", op, {}});
  return g;
}
KernelSchedule fixed_tile(const GemmTile& tile) {
  return [tile](const BlockGraph&, const OpNode&) { return std::optional<GemmTile>(tile); };
}
Op stem_conv(std::int64_t in_channels, std::int64_t kernel, std::int64_t batch = 1) {
  Op op;
  op.kind = OpKind::conv;
  op.batch = batch;
  op.in_channels = in_channels;
  op.out_channels = 8;
  op.in_height = op.in_width = 16;
  op.out_height = op.out_width = 16;
  op.kernel = kernel;
  return op;
}
GemmTile im2col_tile(std::int64_t staged) {
  GemmTile t;
  t.library = true;
  t.im2col = true;
  t.staged_channels = staged;
  return t;
}
}  // namespace

TEST_CASE("a stem conv at the layer runner's schedule: pad copy, im2col copy, library GEMM") {
  const auto hw = lasnet::test::toy_gpu();
  PredictionCache cache(hw);
  // RGB 16x16 -> 8 channels, 3x3, batch 1: the image (read once from DRAM, 256 x 3 x 4 B) is
  // padded into 4 channels (256 x 4 x 4 B written); the padded map stays in L2 for im2col, which
  // writes 256 pixels x 9 taps x 4 channels x 4 B; the GEMM (36 -> 8) reads that buffer from L2
  // and its weights and bias ((8 x 36 + 8) x 4 B) from DRAM and writes 256 x 8 x 4 B.
  const auto rgb =
      predict_block(layer_graph("stem", stem_conv(3, 3)), cache, hw, fixed_tile(im2col_tile(4)));
  REQUIRE(rgb.ops.size() == 1);
  const OpPrediction& p = rgb.ops.front().prediction;
  const double pad = 256.0 * 3 * 4 + 256.0 * 4 * 4;
  const double col = 256.0 * 9 * 4 * 4;
  const double gemm = (8.0 * 36 + 8) * 4 + 256.0 * 8 * 4;
  CHECK(p.dram_bytes == doctest::Approx(pad + col + gemm));
  CHECK(rgb.latency_s == doctest::Approx(p.latency_s));

  // Four input channels: no pad copy, and im2col reads the image itself from DRAM.
  const auto four =
      predict_block(layer_graph("stem", stem_conv(4, 3)), cache, hw, fixed_tile(im2col_tile(4)));
  CHECK(four.ops.front().prediction.dram_bytes == doctest::Approx(256.0 * 4 * 4 + col + gemm));
  CHECK(four.latency_s < rgb.latency_s);

  // The same conv as one library GEMM reading the map (no copies) costs less, and the copies
  // grow with the taps: a 7x7 stem writes 49 / 9 times the im2col buffer.
  GemmTile library;
  library.library = true;
  const auto direct =
      predict_block(layer_graph("stem", stem_conv(4, 3)), cache, hw, fixed_tile(library));
  CHECK(direct.latency_s < four.latency_s);
  const auto seven =
      predict_block(layer_graph("stem", stem_conv(4, 7)), cache, hw, fixed_tile(im2col_tile(4)));
  CHECK(seven.latency_s > four.latency_s);
  CHECK(seven.ops.front().prediction.dram_bytes - 256.0 * 4 * 4 > 49.0 / 9.0 * col);
}

TEST_CASE("a pool at the layer runner's schedule: one thread per output, its window's loads") {
  const auto hw = lasnet::test::toy_gpu();
  PredictionCache cache(hw);
  GemmTile thread;
  thread.thread_per_output = true;
  Op pool;
  pool.kind = OpKind::global_pool;
  pool.batch = 1;
  pool.in_channels = pool.out_channels = 64;
  pool.in_height = pool.in_width = 8;
  pool.out_height = pool.out_width = 1;
  // 64 threads, each summing 64 pixels four loads at a time: 16 round trips of the toy GPU's
  // default 800 cycles (0.8 us) in one block; its 16 KiB stay in L2 (a head's input), so the
  // chain, not the bytes, sets the time.
  const auto small = predict_block(layer_graph("head", pool), cache, hw, fixed_tile(thread));
  const OpPrediction& p = small.ops.front().prediction;
  CHECK(p.latency_s == doctest::Approx(16 * 0.8e-6));
  CHECK(p.dram_bytes == doctest::Approx(64.0 * 4));
  // Twice the pixels, twice the chain.
  pool.in_height = 16;
  const auto taller = predict_block(layer_graph("head", pool), cache, hw, fixed_tile(thread));
  CHECK(taller.latency_s == doctest::Approx(2 * small.latency_s));
  // A batch whose map overflows L2 streams it from DRAM once: memory bound.
  pool.batch = 256;
  const auto large = predict_block(layer_graph("head", pool), cache, hw, fixed_tile(thread));
  const OpPrediction& q = large.ops.front().prediction;
  CHECK(q.bound == Bound::memory);
  CHECK(q.dram_bytes == doctest::Approx(4.0 * 256 * (16 * 8 * 64 + 64)));
  CHECK(q.latency_s == doctest::Approx(q.dram_bytes / hw.dram_bandwidth_bytes_per_s));
}
