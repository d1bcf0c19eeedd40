// The union form (Fusion::union_conv1): conv1 once per needed pixel. Its graph, the needed-pixel
// count U counted by hand, and the expected U of each mask model against Monte-Carlo counts of
// generated masks, dilated here independently of mask_stats.cpp.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cmath>
#include <string>

#include "fixtures.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/common/mask.hpp"
#include "lasnet/common/patch_geometry.hpp"
#include "lasnet/predictor/mask_stats.hpp"
#include "lasnet/predictor/model.hpp"
#include "lasnet/predictor/network.hpp"

using namespace lasnet::predictor;
using lasnet::MaskModel;
using lasnet::MaskShape;

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

// One bottleneck stage on a side x side map, 8 -> 4 -> 8 channels (stride 2: out 16 channels).
Spec one_stage(std::int64_t side, std::int64_t stride, std::int64_t batch) {
  return parse_spec(fmt::format(R"({{"name": "u", "batch": {}, "input": {{"channels": 8,
    "height": {}, "width": {}}}, "stages": [{{"block": "bottleneck", "blocks": 1,
    "mid_channels": 4, "out_channels": {}, "stride": {}}}],
    "dynamic": {{"granularity": [1], "density": 0.5}}}})",
                                batch, side, side, stride == 1 ? 8 : 16, stride),
                    "u");
}

BlockGraph union_block(const Spec& spec, std::int64_t s, double d, const MaskSource& masks = {},
                       Fusion fusion = Fusion{false, true, true, true}) {
  return make_block(spec, 0, 0, Execution::dynamic, {s, d, fusion}, masks);
}

// The needed conv1 pixels of one image, straight from the definition (the kernels' dilate): patch
// (py, px) at S and conv2 stride t reads conv1 rows py*S*t - 1 .. py*S*t + (S-1)*t + 1 (3x3,
// padding 1), likewise columns, clipped to the map.
std::int64_t dilated_pixels(const std::uint8_t* mask, std::int64_t rows, std::int64_t cols,
                            std::int64_t s, std::int64_t t, std::int64_t side) {
  std::vector<std::uint8_t> needed(static_cast<std::size_t>(side * side), 0);
  for (std::int64_t py = 0; py < rows; ++py) {
    for (std::int64_t px = 0; px < cols; ++px) {
      if (!mask[py * cols + px]) continue;
      for (std::int64_t y = py * s * t - 1; y <= py * s * t + (s - 1) * t + 1; ++y) {
        for (std::int64_t x = px * s * t - 1; x <= px * s * t + (s - 1) * t + 1; ++x) {
          if (y >= 0 && y < side && x >= 0 && x < side) needed[y * side + x] = 1;
        }
      }
    }
  }
  std::int64_t n = 0;
  for (const auto v : needed) n += v;
  return n;
}

}  // namespace

TEST_CASE("union form: the ops, their kinds and classes; blocks without a 1x1 conv1 ignore it") {
  const Spec spec = one_stage(8, 1, 1);
  const auto g = union_block(spec, 2, 0.5);
  CHECK(names(g) == std::vector<std::string>{"masker", "dilate", "conv1", "conv2", "conv3"});
  CHECK(node(g, "dilate").op.kind == OpKind::dilate);
  const Op& conv1 = node(g, "conv1").op;
  CHECK(conv1.kind == OpKind::union_conv);
  CHECK(conv1.granularity == 1);  // one GEMM row per needed pixel
  CHECK(conv1.active_patches == node(g, "dilate").op.read_pixels);
  // conv2 reads conv1's full map as in the masker form: through the index list here.
  CHECK(node(g, "conv2").op.kind == OpKind::gather_conv);
  CHECK(node(g, "conv2").op.in_height == 8);
  CHECK(node(g, "conv3").op.kind == OpKind::conv_scatter_add);
  CHECK(op_class(conv1) == "union_conv.k1");
  CHECK(op_class(conv1, OpContext{false, GemmTile{64, 32, 4}}) == "union_conv.k1.igemm");
  CHECK(op_class(node(g, "dilate").op) == "dilate");
  // Without gather and scatter fusion: conv1's map is gathered for conv2, conv3 scatter-adds.
  const auto unfused = union_block(spec, 2, 0.5, {}, Fusion{false, false, false, true});
  CHECK(names(unfused) == std::vector<std::string>{"masker", "dilate", "conv1", "gather", "conv2",
                                                   "conv3", "scatter_add"});
  CHECK(node(unfused, "gather").op.in_channels == 4);  // conv1's map, not x

  // A basic block's conv1 is 3x3: the flag changes nothing.
  const Spec basic = parse_spec(R"({"name": "b", "input": {"channels": 8, "height": 8,
    "width": 8}, "stages": [{"block": "basic", "blocks": 1, "out_channels": 8}],
    "dynamic": {"granularity": [2], "density": 0.5}})",
                                "b");
  CHECK_FALSE(block_has_union_form(basic, 0, 0));
  CHECK(block_has_union_form(spec, 0, 0));
  const auto plain = make_block(basic, 0, 0, Execution::dynamic, {2, 0.5, Fusion{}});
  const auto flagged =
      make_block(basic, 0, 0, Execution::dynamic, {2, 0.5, Fusion{false, true, true, true}});
  REQUIRE(plain.nodes.size() == flagged.nodes.size());
  for (std::size_t i = 0; i < plain.nodes.size(); ++i)
    CHECK(plain.nodes[i].op == flagged.nodes[i].op);
  // MobileNetV2: only blocks with an expansion conv.
  const auto mb = lasnet::test::example("mobilenetv2");
  CHECK(block_has_union_form(mb, 1, 1));
  CHECK_FALSE(block_has_union_form(mb, 1, 0));  // no residual
}

TEST_CASE("union form: U counted by hand for given masks, stride 1 and 2") {
  // 8x8 map, S = 2: 4x4 patches; conv2's windows on conv1's map are 4 wide, 2 apart, from -1.
  // Patch (0,0) reads rows and columns [-1, 3) -> [0, 3): 9 pixels. With (0,1), columns [1, 5):
  // together 3 x 5 = 15. With (3,3) too, rows and columns [5, 9) -> [5, 8): 9 more, apart: 24.
  const Spec spec = one_stage(8, 1, 1);
  std::vector<std::uint8_t> mask(16, 0);
  mask[0] = 1;
  const auto u = [&](const Spec& sp, std::int64_t s) {
    return union_block(sp, s, 0.5, MaskSource{std::nullopt, mask});
  };
  CHECK(node(u(spec, 2), "conv1").op.active_patches == 9);
  mask[1] = 1;
  CHECK(node(u(spec, 2), "conv1").op.active_patches == 15);
  mask[15] = 1;
  const auto g = u(spec, 2);
  CHECK(node(g, "conv1").op.active_patches == 24);
  CHECK(node(g, "dilate").op.read_pixels == 24);
  CHECK(node(g, "masker").op.active_patches == 3);
  // conv1's GEMM: M = 24 rows of K = 8 -> N = 4: 2 x 24 x 4 x 8 = 1536 FLOPs; DRAM: x at the 24
  // pixels (24 x 8), the weights and bias (4 x 8 + 4), conv1's 24 rows (24 x 4), 4-byte floats,
  // and the 24 indices: 4 x (192 + 36 + 96) + 4 x 24 = 1392 bytes.
  CHECK(flops(node(g, "conv1").op) == 1536);
  CHECK(unique_dram_bytes(node(g, "conv1").op) == 1392);
  // dilate: the 16 mask entries in, the 24 indices out, 4 bytes each.
  CHECK(unique_dram_bytes(node(g, "dilate").op) == 4 * (16 + 24));
  // conv2 reads the same 24 pixels of conv1's map (the mask's own statistic).
  CHECK(node(g, "conv2").op.read_pixels == 24);

  // Stride 2, 8x8 -> 4x4, S = 2: 2x2 patches; conv2's windows on the 8x8 conv1 map are
  // (2-1) x 2 + 3 = 5 wide, 4 apart, from -1. Patch (0,0): [0, 4)^2 = 16 pixels; patch (1,1):
  // [3, 8)^2 = 25; they share pixel (3,3): 40.
  const Spec strided = one_stage(8, 2, 1);
  mask = {1, 0, 0, 1};
  CHECK(node(u(strided, 2), "conv1").op.active_patches == 40);
  // S = 3 does not divide the 4x4 map: 2x2 patches, windows 7 wide, 6 apart: patch (1,1) reads
  // [5, 12) -> [5, 8)^2 = 9 pixels.
  mask = {0, 0, 0, 1};
  CHECK(node(u(strided, 3), "conv1").op.active_patches == 9);
}

TEST_CASE("union form: density 0 and 1") {
  const Spec spec = one_stage(8, 1, 2);
  // Density 0: no needed pixel, conv1 only launches; the dilation still passes over the map.
  const auto none = union_block(spec, 2, 0.0);
  CHECK(node(none, "conv1").op.active_patches == 0);
  const auto hw = lasnet::test::shipped_profile("h100");
  PredictionCache cache(hw);
  const auto r = predict_block(none, cache, hw);
  for (const auto& op : r.ops) {
    CAPTURE(op.name);
    if (op.name == "conv1") CHECK(op.prediction.empty);
    if (op.name == "dilate") CHECK_FALSE(op.prediction.empty);
  }
  // Density 1: every pixel of both images, each once (the gather form's conv1 computes
  // P x (S+2)^2 = 32 x 16 = 512 pixels for these 128).
  const auto all = union_block(spec, 2, 1.0);
  CHECK(node(all, "conv1").op.active_patches == 2 * 8 * 8);
  const auto gathered = make_block(spec, 0, 0, Execution::dynamic, {2, 1.0, Fusion{}});
  CHECK(node(gathered, "conv1").op.patch_in_pixels() == 512);
}

TEST_CASE("union form: priced below the gather form's conv1 at fine S") {
  // ResNet-50 layer1 (56x56, 64 -> 64 channels) at batch 8, d = 0.5, S = 1: the gather form's
  // conv1 computes 9 pixels per active pixel (4.5x the dense conv1), the union form about the
  // whole map once (uniform coverage 0.997).
  auto spec = lasnet::test::example("resnet50");
  spec.batch = 8;
  const auto hw = lasnet::test::shipped_profile("h100");
  PredictionCache cache(hw);
  const auto gathered = make_block(spec, 0, 1, Execution::dynamic, {1, 0.5, Fusion{}});
  const auto with_union =
      make_block(spec, 0, 1, Execution::dynamic, {1, 0.5, Fusion{false, true, true, true}});
  const double dense_pixels = 8.0 * 56 * 56;
  CHECK(static_cast<double>(node(with_union, "conv1").op.active_patches) / dense_pixels ==
        doctest::Approx(0.997).epsilon(0.002));
  CHECK(flops(node(with_union, "conv1").op) < 0.25 * flops(node(gathered, "conv1").op));
  CHECK(predict_block(with_union, cache, hw).latency_s <
        predict_block(gathered, cache, hw).latency_s);
}

TEST_CASE("union form: expected U against Monte-Carlo counts, every mask model, S and density") {
  // A 56x56 map at stride 1 (conv2's windows on conv1's map S + 2 wide, S apart, from -1),
  // batch 4. For each case, n = 24 generated masks dilated by dilated_pixels; the tolerance is
  // 4 standard errors of the difference: the Monte-Carlo mean's (sd / sqrt(n), sd the spread of
  // a mask's U) plus the expectation's own: 0 for uniform (exact hypergeometric form); for
  // clustered, which is itself the mean of 4 masks of 4 images of the generator, sd / sqrt(4);
  // for varied, 256 draws of per-image counts, sd x 2 / sqrt(256) (sd of one image about twice a
  // 4-image mean's). Floor: half a pixel per image.
  constexpr std::int64_t side = 56, batch = 4, n = 24;
  for (const MaskModel model : {MaskModel::uniform, MaskModel::clustered, MaskModel::varied}) {
    for (const std::int64_t s : {1, 2, 4}) {
      for (const double d : {0.3, 0.5, 0.8}) {
        CAPTURE(lasnet::to_string(model));
        CAPTURE(s);
        CAPTURE(d);
        const std::int64_t cells = side / s;
        PatchWindows w;
        w.map_height = w.map_width = side;
        w.rows = w.cols = cells;
        w.step = s;
        w.extent = s + 2;
        w.origin = -1;
        const double expected = expected_mask_stats(model, batch, w, d).read_pixels;
        // The graph prices conv1 at exactly this statistic: conv2's windows on conv1's map.
        const Spec spec = one_stage(side, 1, batch);
        const auto g = make_block(spec, 0, 0, Execution::dynamic,
                                  {s, d, Fusion{false, true, true, true}}, MaskSource{model, {}});
        CHECK(node(g, "conv1").op.active_patches == std::llround(expected));

        double sum = 0, sum2 = 0;
        for (std::uint64_t seed = 1; seed <= static_cast<std::uint64_t>(n); ++seed) {
          const auto mask = make_mask(model, MaskShape{batch, cells, cells}, d, 1000 + seed);
          double u = 0;
          for (std::int64_t b = 0; b < batch; ++b) {
            u += static_cast<double>(
                dilated_pixels(mask.data() + b * cells * cells, cells, cells, s, 1, side));
          }
          sum += u;
          sum2 += u * u;
        }
        const double mean = sum / n;
        const double sd = std::sqrt(std::max(0.0, (sum2 - n * mean * mean) / (n - 1)));
        const double own = model == MaskModel::uniform     ? 0.0
                           : model == MaskModel::clustered ? sd / 2.0
                                                           : 2.0 * sd / 16.0;
        const double tolerance =
            std::max(4.0 * std::sqrt(sd * sd / n + own * own), 0.5 * static_cast<double>(batch));
        CHECK(std::abs(expected - mean) <= tolerance);
      }
    }
  }
}

TEST_CASE("union form: the coverage of the issue's figures (56x56, d = 0.5)") {
  // The share of conv1's map the union covers, batch 1. Uniform, worked by hand: a pixel under
  // m_r windows along its row and m_c along its column stays unread with probability ~2^-m,
  // m = m_r x m_c (half the patches active; the exact hypergeometric factors are 0.5, 0.249,
  // 0.062 for m = 1, 2, 4).
  //   S = 1: windows 3 wide, 1 apart: m_r = 3, 2 on rows 0 and 55. Unread (54/56)^2 2^-9 +
  //          2 (54/56)(2/56) 2^-6 + (2/56)^2 2^-4 = 0.0030: coverage 0.997.
  //   S = 2: windows 4 wide, 2 apart: m_r = 2, 1 on rows 0 and 55. Unread (54/56)^2 0.062 +
  //          2 (54/56)(2/56) 0.249 + (2/56)^2 0.5 = 0.0755: 0.924.
  //   S = 4: windows 6 wide, 4 apart: m_r = 2 on rows 4q and 4q + 3 (26 of them, rows 0 and 55
  //          excepted), 1 on the other 30. Unread (30/56)^2 0.5 + 2 (30/56)(26/56) 0.249 +
  //          (26/56)^2 0.062 = 0.281: 0.719.
  // The issue's 0.99 / 0.92 / 0.72. Its clustered figures (0.91 / 0.76 / 0.63) are not this
  // repository's clustered masks: make_mask grows 1-3 compact blobs per image, whose union
  // is the blobs plus a thin rim, about 0.57 of the map at every S (Monte-Carlo above).
  const auto coverage = [](MaskModel model, std::int64_t s) {
    PatchWindows w;
    w.map_height = w.map_width = 56;
    w.rows = w.cols = 56 / s;
    w.step = s;
    w.extent = s + 2;
    w.origin = -1;
    return expected_mask_stats(model, 1, w, 0.5).read_pixels / (56.0 * 56.0);
  };
  CHECK(coverage(MaskModel::uniform, 1) == doctest::Approx(0.997).epsilon(0.002));
  CHECK(coverage(MaskModel::uniform, 2) == doctest::Approx(0.924).epsilon(0.002));
  CHECK(coverage(MaskModel::uniform, 4) == doctest::Approx(0.719).epsilon(0.003));
  for (const std::int64_t s : {1, 2, 4}) {
    CAPTURE(s);
    CHECK(coverage(MaskModel::clustered, s) == doctest::Approx(0.57).epsilon(0.05));
  }
}

TEST_CASE("union form: parsed from text and spec JSON; with masker it is an error") {
  CHECK(parse_fusion("union,gather,scatter", "f") == Fusion{false, true, true, true});
  CHECK(to_string(Fusion{false, true, false, true}) == "union,gather");
  CHECK(parse_fusion(to_string(Fusion{false, false, false, true}), "f") ==
        Fusion{false, false, false, true});
  CHECK(parse_fusion("all", "f") == Fusion{true, true, true, false});  // as before
  CHECK_THROWS_WITH_AS(parse_fusion("masker,union", "--fusion"),
                       doctest::Contains("--fusion: 'union' and 'masker' exclude each other"),
                       lasnet::Error);
  CHECK_THROWS_WITH_AS(
      parse_spec(R"({"name": "u", "input": {"channels": 8, "height": 8, "width": 8},
        "stages": [{"block": "bottleneck", "blocks": 2, "mid_channels": 4, "out_channels": 8}],
        "dynamic": {"granularity": [2], "density": 0.5, "fusion": [["gather", "union,all"]]}})",
                 "u.json"),
      doctest::Contains("u.json: dynamic.fusion[0][1]: 'all' is not a fusion"), lasnet::Error);
  CHECK_THROWS_WITH_AS(
      parse_spec(R"({"name": "u", "input": {"channels": 8, "height": 8, "width": 8},
        "stages": [{"block": "bottleneck", "blocks": 2, "mid_channels": 4, "out_channels": 8}],
        "dynamic": {"granularity": [2], "density": 0.5, "fusion": [["gather", "union,masker"]]}})",
                 "u.json"),
      doctest::Contains("u.json: dynamic.fusion[0][1]: 'union' and 'masker' exclude each other"),
      lasnet::Error);
  // A spec with the union form round-trips.
  const Spec spec = parse_spec(R"({"name": "u", "input": {"channels": 8, "height": 8, "width": 8},
        "stages": [{"block": "bottleneck", "blocks": 2, "mid_channels": 4, "out_channels": 8}],
        "dynamic": {"granularity": [2], "density": 0.5, "fusion": [["gather", "union,scatter"]]}})",
                               "u.json");
  CHECK(spec.dynamic.fusion[0][1] == Fusion{false, false, true, true});
  CHECK(parse_spec(spec_to_json(spec), "again").dynamic.fusion == spec.dynamic.fusion);
}

TEST_CASE("fp16: the GEMMs over patch rows are priced at the active patches, as they run") {
  // 8x8 map, S = 2: 16 patches per image, batch 2. The fp16 implicit GEMM stops at the
  // device-side count like fp32's, so both price the active patches (d = 0.5: 16 of 32).
  Spec spec = one_stage(8, 1, 2);
  const Fusion unfused{false, false, false, false};
  const auto f32 = union_block(spec, 2, 0.5, {}, unfused);
  spec.precision = Precision::fp16;
  const auto f16 = union_block(spec, 2, 0.5, {}, unfused);
  for (const char* name : {"conv1", "conv2", "conv3", "gather", "scatter_add"}) {
    CAPTURE(name);
    CHECK(node(f32, name).op.active_patches == 16);
    CHECK(node(f16, name).op.active_patches == 16);
  }
  CHECK(node(f16, "conv1").op.kind == OpKind::gathered_conv);
  // The union form's conv1 covers the needed pixels only, fewer than the 2 x 8 x 8 of the map.
  const auto u16 = union_block(spec, 2, 0.5, {}, Fusion{false, false, false, true});
  CHECK(node(u16, "conv1").op.kind == OpKind::union_conv);
  CHECK(node(u16, "conv1").op.active_patches < 128);
  spec.precision = Precision::fp32;
  const auto u32 = union_block(spec, 2, 0.5, {}, Fusion{false, false, false, true});
  CHECK(node(u16, "conv1").op.active_patches == node(u32, "conv1").op.active_patches);
}
