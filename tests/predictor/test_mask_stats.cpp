// Mask statistics: measured from a mask against hand counts, expected values against the
// generator (Monte-Carlo), and the ops that price them.
#include <doctest/doctest.h>

#include <string>

#include "lasnet/common/error.hpp"
#include "lasnet/common/mask.hpp"
#include "lasnet/common/patch_geometry.hpp"
#include "lasnet/predictor/mask_stats.hpp"
#include "lasnet/predictor/network.hpp"
#include "lasnet/predictor/op.hpp"

using namespace lasnet::predictor;
using lasnet::MaskModel;
using lasnet::MaskShape;

namespace {
// A bottleneck's conv1 windows: S = 2, stride 1 on a 4 x 4 map: 2 x 2 patches, each reading
// E = (S - 1) + 3 = 4 pixels per side from origin -1 (conv2's padding), 2 apart.
PatchWindows small() {
  PatchWindows w;
  w.map_height = w.map_width = 4;
  w.rows = w.cols = 2;
  w.step = 2;
  w.extent = 4;
  w.origin = -1;
  return w;
}
}  // namespace

TEST_CASE("mask stats: P and the distinct pixels read, counted by hand") {
  const auto w = small();
  // Patch (0,0) reads rows/cols [-1, 3) -> [0, 3): 9 pixels. Patch (0,1) reads rows [0, 3),
  // cols [1, 5) -> [1, 4): 9 pixels, 6 of them shared: the two read 3 x 4 = 12 distinct pixels
  // (P x E^2 = 32 would count the padding and the shared halo).
  auto s = measure_mask_stats({1, 1, 0, 0}, 1, w);
  CHECK(s.active_patches == 2);
  CHECK(s.read_pixels == 12);
  // All four: the whole map; two images add up.
  s = measure_mask_stats({1, 1, 1, 1, 1, 0, 0, 0}, 2, w);
  CHECK(s.active_patches == 5);
  CHECK(s.read_pixels == 16 + 9);
  // Diagonal patches (0,0) and (1,1): 9 + 9 - the 1 x 1 overlap at (1..2, 1..2) = 2 x 2 = 4.
  CHECK(measure_mask_stats({1, 0, 0, 1}, 1, w).read_pixels == 14);
}

TEST_CASE("mask stats: uniform's analytic expectation matches the generator's mean") {
  // The hand case: k = 1 of n = 4 windows: every pixel of the 4 x 4 map is under m windows,
  // m = mr x mc with mr = (1, 2, 2, 1) by row; unread with probability (n - m) / n for k = 1
  // (m <= 3), 0 for m = 4: E = sum (1 - q) = 4 x 1/4 (corners) + 8 x 2/4 + 4 x 1 = 9, which is
  // any single patch's 9 pixels.
  CHECK(expected_mask_stats(MaskModel::uniform, 1, small(), 0.25).read_pixels ==
        doctest::Approx(9.0));
  // A ResNet-50 layer2 block at S = 1, stride 2: 28 x 28 patches on a 56 x 56 map, windows
  // of 3 pixels, 2 apart, origin -1; batch 4, d = 0.3. The analytic value against the mean of
  // 40 generated masks (its sd over masks is ~0.3%; the mean's ~0.05%).
  PatchWindows w;
  w.map_height = w.map_width = 56;
  w.rows = w.cols = 28;
  w.step = 2;
  w.extent = 3;
  w.origin = -1;
  const auto expected = expected_mask_stats(MaskModel::uniform, 4, w, 0.3);
  CHECK(expected.active_patches == lasnet::active_patches(0.3, 4 * 784));
  double sum = 0;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    sum += measure_mask_stats(make_mask(MaskModel::uniform, MaskShape{4, 28, 28}, 0.3, seed), 4, w)
               .read_pixels;
  }
  CHECK(expected.read_pixels == doctest::Approx(sum / 40).epsilon(0.005));
  // Overlap makes it far less than P x 9 (941 patches, 8469 pixels).
  CHECK(expected.read_pixels < 0.8 * 941 * 9);

  // Varied: P = d x n; its reads against the generator's mean over 20 batches of 16 images.
  const auto varied = expected_mask_stats(MaskModel::varied, 16, w, 0.3);
  CHECK(varied.active_patches == doctest::Approx(0.3 * 16 * 784));
  sum = 0;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    sum += measure_mask_stats(make_mask(MaskModel::varied, MaskShape{16, 28, 28}, 0.3, seed), 16, w)
               .read_pixels;
  }
  CHECK(varied.read_pixels == doctest::Approx(sum / 20).epsilon(0.03));
  // Clustered masks share halos: fewer distinct pixels for the same P.
  const auto clustered = expected_mask_stats(MaskModel::clustered, 4, w, 0.3);
  CHECK(clustered.active_patches == expected.active_patches);
  CHECK(clustered.read_pixels < 0.9 * expected.read_pixels);
}

TEST_CASE("mask stats: gathered reads are priced at the mask's pixels, the rest unchanged") {
  Spec spec = parse_spec(R"({"name": "t", "batch": 2, "input": {"channels": 3, "height": 32,
    "width": 32}, "stem": [{"type": "conv", "out_channels": 32, "kernel": 3}],
    "stages": [{"block": "bottleneck", "blocks": 1, "mid_channels": 16, "out_channels": 32}],
    "dynamic": {"granularity": [2], "density": 0.3}})",
                         "t");
  BlockSettings today;
  today.granularity = 2;
  today.density = 0.3;
  const auto base = make_block(spec, 0, 0, Execution::dynamic, today);
  MaskSource with;
  with.mask = make_mask(MaskModel::clustered, MaskShape{2, 16, 16}, 0.3, 3);
  const auto masked = make_block(spec, 0, 0, Execution::dynamic, today, with);
  REQUIRE(base.nodes.size() == masked.nodes.size());
  PatchWindows w;
  w.map_height = w.map_width = 32;
  w.rows = w.cols = 16;
  w.step = 2;
  w.extent = 4;
  w.origin = -1;
  const auto stats = measure_mask_stats(with.mask, 2, w);
  for (std::size_t i = 0; i < base.nodes.size(); ++i) {
    const Op& a = base.nodes[i].op;
    const Op& b = masked.nodes[i].op;
    CAPTURE(base.nodes[i].name);
    CHECK(a.read_pixels == 0);                    // no mask: P x E^2 capped at the map, as before
    CHECK(b.active_patches == a.active_patches);  // clustered: the same ceil(d x patches)
    if (b.kind == OpKind::gather_conv) {
      CHECK(b.read_pixels == static_cast<std::int64_t>(stats.read_pixels));
      // DRAM: the input term drops from min(P x 16, map) to the distinct pixels.
      const double e = 4, c = static_cast<double>(a.in_channels);
      const double before = std::min(static_cast<double>(a.active_patches) * 16, 2.0 * 32 * 32);
      CHECK(unique_dram_bytes(a) - unique_dram_bytes(b) ==
            doctest::Approx(e * c * (before - stats.read_pixels)));
    } else {
      CHECK(unique_dram_bytes(a) == unique_dram_bytes(b));
    }
  }
  // A model's expectation instead of a mask; a mask of the wrong size is an error.
  const auto expected =
      make_block(spec, 0, 0, Execution::dynamic, today, MaskSource{MaskModel::uniform, {}});
  CHECK(expected.nodes[1].op.read_pixels > 0);
  MaskSource wrong;
  wrong.mask.assign(7, 1);
  CHECK_THROWS_AS(make_block(spec, 0, 0, Execution::dynamic, today, wrong), lasnet::Error);
}

TEST_CASE("mask stats: the busiest image's active patches") {
  using lasnet::predictor::uniform_max_image_patches;
  // Counted: image 0 has 1 active patch, image 1 has 3.
  lasnet::predictor::PatchWindows w;
  w.map_height = w.map_width = 4;
  w.rows = w.cols = 2;
  w.step = w.extent = 2;
  const std::vector<std::uint8_t> mask{0, 1, 0, 0, 1, 1, 0, 1};
  CHECK(lasnet::predictor::measure_mask_stats(mask, 2, w).max_image_patches == 3);
  // One image holds every active patch; every patch active fills every image.
  CHECK(uniform_max_image_patches(1, 16, 5) == doctest::Approx(5));
  CHECK(uniform_max_image_patches(4, 16, 64) == doctest::Approx(16));
  // One active patch over 8 images: the busiest image has exactly 1.
  CHECK(uniform_max_image_patches(8, 16, 1) == doctest::Approx(1));
  // Otherwise between the mean and the whole count, and against the generator's mean.
  const double expected = uniform_max_image_patches(8, 16, 32);
  CHECK(expected > 4);
  CHECK(expected < 16);
  double sum = 0;
  constexpr int seeds = 200;
  for (int seed = 1; seed <= seeds; ++seed) {
    const auto m = lasnet::make_mask(lasnet::MaskModel::uniform, lasnet::MaskShape{8, 4, 4}, 0.25,
                                     static_cast<std::uint64_t>(seed));
    w.map_height = w.map_width = 8;
    w.rows = w.cols = 4;
    sum += lasnet::predictor::measure_mask_stats(m, 8, w).max_image_patches;
  }
  // Independence across images overstates the maximum a little (the counts share one total).
  CHECK(expected == doctest::Approx(sum / seeds).epsilon(0.08));
}
