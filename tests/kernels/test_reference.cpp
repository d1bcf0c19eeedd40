// CPU references of lasnet::kernels against hand-computed cases, and the dynamic block's
// reference (built from its kernels' references) against where(mask, dense block, ReLU(sc)).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "lasnet/kernels/block.hpp"
#include "lasnet/kernels/conv_plan.hpp"
#include "lasnet/kernels/reference.hpp"

namespace k = lasnet::kernels;
namespace ref = lasnet::kernels::ref;

namespace {
std::vector<float> iota(std::size_t n, float start = 1.0f) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}
}  // namespace

TEST_CASE("conv2d: 3x3 pad 1 on a 3x3 map of 1..9 with unit weights") {
  // Sums of 3x3 neighbourhoods: corner (0,0) = 1+2+4+5 = 12, centre = 45, + bias 1.
  const auto x = iota(9);
  const std::vector<float> w(9, 1.0f), b{1.0f};
  const auto y = ref::conv2d(x, {1, 3, 3, 1}, w, b, {1, 3, 1, 1, 1, false});
  REQUIRE(y.size() == 9);
  CHECK(y[0] == 13.0f);
  CHECK(y[4] == 46.0f);
  CHECK(y[8] == 5 + 6 + 8 + 9 + 1.0f);
  // Stride 2: outputs at input (0,0), (0,2), (2,0), (2,2).
  const auto z = ref::conv2d(x, {1, 3, 3, 1}, w, b, {1, 3, 2, 1, 1, false});
  REQUIRE(z.size() == 4);
  CHECK(z[1] == 2 + 3 + 5 + 6 + 1.0f);
  CHECK(z[3] == 5 + 6 + 8 + 9 + 1.0f);
}

TEST_CASE("conv2d: groups, ReLU and residual") {
  // Two channels, two groups, 1x1 weights 2 and -3: y = ReLU((2*x0, -3*x1) + residual).
  const std::vector<float> x{1.0f, 2.0f}, w{2.0f, -3.0f}, res{0.5f, 1.0f};
  const auto y = ref::conv2d(x, {1, 1, 1, 2}, w, {}, {2, 1, 1, 0, 2, true}, &res);
  CHECK(y[0] == 2.5f);
  CHECK(y[1] == 0.0f);  // -6 + 1 -> ReLU -> 0
}

TEST_CASE("masker: patch means of a 3x3 map at S=2 (partial patches), threshold, compaction") {
  // One channel, wm = 1, bm = -5. Patches: rows {0,1} x cols {0,1} -> mean(1,2,4,5) = 3;
  // (0,1): cols {2} -> mean(3,6) = 4.5; (1,0): mean(7,8) = 7.5; (1,1): 9.
  k::BottleneckShape s;
  s.batch = 1, s.height = 3, s.width = 3, s.in_channels = 1, s.stride = 1;
  const k::PatchGrid g = k::patch_grid(s, 2);
  CHECK(g.rows == 2);
  CHECK(g.halo_extent == 4);
  const auto logits = ref::masker_logits(iota(9), {1, 3, 3, 1}, g, {1.0f}, -5.0f);
  REQUIRE(logits.size() == 4);
  CHECK(logits[0] == doctest::Approx(-2.0));
  CHECK(logits[1] == doctest::Approx(-0.5));
  CHECK(logits[2] == doctest::Approx(2.5));
  CHECK(logits[3] == doctest::Approx(4.0));
  const auto pooled = ref::pool_pixel_logits(ref::pixel_logits(iota(9), {1, 3, 3, 1}, {1.0f}),
                                             {1, 3, 3, 1}, g, -5.0f);
  for (std::size_t i = 0; i < 4; ++i) CHECK(pooled[i] == doctest::Approx(logits[i]));
  const auto mask = ref::threshold(logits);
  CHECK(mask == std::vector<std::uint8_t>{0, 0, 1, 1});
  CHECK(ref::compact(mask) == std::vector<std::int32_t>{2, 3});
}

TEST_CASE("gather_halo: zero padding at the border") {
  // 4x4 map of 1..16, S = 2, stride 1: E = 4, patch (0,0) starts at (-1,-1).
  k::BottleneckShape s;
  s.batch = 1, s.height = 4, s.width = 4, s.in_channels = 1;
  const k::PatchGrid g = k::patch_grid(s, 2);
  const auto h = ref::gather_halo(iota(16), {1, 4, 4, 1}, {0, 3}, g);
  REQUIRE(h.size() == 32);
  CHECK(h[0] == 0.0f);               // (-1,-1)
  CHECK(h[1 * 4 + 1] == 1.0f);       // (0,0)
  CHECK(h[3 * 4 + 3] == 11.0f);      // (2,2)
  CHECK(h[16 + 0] == 6.0f);          // patch 3 origin (1,1) -> value 6
  CHECK(h[16 + 3 * 4 + 3] == 0.0f);  // (4,4) outside
}

TEST_CASE("scatter_add_relu and add_inactive cover the map once") {
  // 1x2x2 map, 1 channel, S = 1: patches 0 and 3 active.
  k::BottleneckShape s;
  s.batch = 1, s.height = 2, s.width = 2, s.in_channels = 1, s.out_channels = 1;
  const k::PatchGrid g = k::patch_grid(s, 1);
  const std::vector<float> res{-1.0f, 2.0f, -3.0f, 4.0f}, rows{5.0f, -10.0f};
  std::vector<float> out(4, NAN);
  ref::add_inactive(out, res, {1, 0, 0, 1}, g, {1, 2, 2, 1});
  ref::scatter_add_relu(out, res, rows, {0, 3}, g, {1, 2, 2, 1});
  CHECK(out == std::vector<float>{4.0f, 2.0f, 0.0f, 0.0f});
}

TEST_CASE("masker_bias_for_density keeps the k largest logits") {
  CHECK(k::masker_bias_for_density({3, 1, 2, -1}, 0.5) == doctest::Approx(-1.5));
  const float b0 = k::masker_bias_for_density({3, 1, 2, -1}, 0.0);
  const float b1 = k::masker_bias_for_density({3, 1, 2, -1}, 1.0);
  CHECK(3 + b0 <= 0);
  CHECK(-1 + b1 > 0);
}

TEST_CASE("random data: deterministic, in [-1, 1), not zeros") {
  CHECK(k::random_uniform(7, 1, 5) == k::random_uniform(7, 1, 5));
  CHECK(k::random_uniform(7, 1, 5) != k::random_uniform(8, 1, 5));
  int zeros = 0;
  for (std::uint64_t i = 0; i < 1000; ++i) {
    const float v = k::random_uniform(1, 1, i);
    CHECK(v >= -1.0f);
    CHECK(v < 1.0f);
    zeros += v == 0.0f ? 1 : 0;
  }
  CHECK(zeros < 2);
}

TEST_CASE("dynamic block reference equals the masked dense block") {
  struct Case {
    k::BottleneckShape shape;
    std::int64_t s;
  };
  const auto shape = [](std::int64_t h, std::int64_t cin, std::int64_t cmid, std::int64_t cout,
                        std::int64_t stride, std::int64_t groups) {
    k::BottleneckShape b;
    b.batch = 2, b.height = h, b.width = h + 1, b.in_channels = cin, b.mid_channels = cmid;
    b.out_channels = cout, b.stride = stride, b.groups = groups;
    return b;
  };
  const std::vector<Case> cases{{shape(7, 8, 4, 8, 1, 1), 1},  {shape(7, 8, 4, 8, 1, 1), 3},
                                {shape(8, 8, 4, 12, 2, 1), 2}, {shape(9, 6, 4, 6, 2, 2), 4},
                                {shape(6, 8, 8, 8, 1, 8), 8},  {shape(5, 4, 4, 8, 1, 1), 2}};
  for (const auto& c : cases) {
    for (const double density : {0.0, 0.5, 1.0}) {
      CAPTURE(k::to_string(c.shape));
      CAPTURE(c.s);
      CAPTURE(density);
      k::BlockConfig cfg;
      cfg.shape = c.shape;
      cfg.seed = 11;
      k::BlockData d = k::make_block_data(cfg);
      const k::PatchGrid g = k::patch_grid(c.shape, c.s);
      d.bm = 0;
      const auto raw = ref::masker_logits(
          d.x, {c.shape.batch, c.shape.height, c.shape.width, c.shape.in_channels}, g, d.wm, 0.0f);
      d.bm = k::masker_bias_for_density(raw, density);
      const auto dyn = ref::bottleneck_dynamic(d, c.s);
      const auto expected_active = lasnet::active_patches(density, c.shape.batch * g.per_image);
      CHECK(static_cast<std::int64_t>(dyn.active.size()) == expected_active);
      const auto dense = ref::bottleneck_dense(d);
      const auto want = ref::masked_dense_output(dense, d, dyn.mask, g);
      const auto cmp = ref::compare(dyn.out, want);
      CHECK(cmp.ok(1e-6));
      CHECK(cmp.non_finite == 0);
    }
  }
}

TEST_CASE("plan_conv: the tile the GPU side runs, as a host function") {
  using lasnet::kernels::ConvImpl;
  lasnet::kernels::ConvShape s;
  s.src_c = s.cin_g = 256;
  s.out_c = s.cout_g = 256;
  s.kernel = 3;
  s.rows = 128LL * 28 * 28;  // plenty of 128x128 tiles for 132 SMs: 784 = 2.97 waves of 264
  auto p = lasnet::kernels::plan_conv(s, true, 132);
  CHECK(p.impl == ConvImpl::igemm_128x128);
  CHECK(p.tile_rows() == 128);
  CHECK(p.tile_cols() == 128);
  CHECK(p.splits == 1);
  CHECK(lasnet::kernels::to_string(p) == "igemm_tf32_128x128");
  s.rows = 128LL * 14 * 14;  // 392 tiles = 1.48 waves: split-K in 2 gives 2.97 waves of halves
  p = lasnet::kernels::plan_conv(s, true, 132);
  CHECK(p.impl == ConvImpl::igemm_128x128);
  CHECK(p.splits == 2);
  CHECK(lasnet::kernels::to_string(p) == "igemm_tf32_128x128_splitk2");
  // By wgmma (L2-bound per tile): 196 tiles of 256x128, split in 2: 2.97 waves of the 132
  // one-block slots, each tile with 2/3 of the L2 bytes per FLOP of a 128x128 one.
  CHECK(lasnet::kernels::to_string(lasnet::kernels::use_wgmma(p, s, 132)) ==
        "igemm_wgmma_256x128_splitk2");
  s.kernel = 1;  // 1x1 convs whose tiles fill a wave of slots: not split
  p = lasnet::kernels::plan_conv(s, true, 132);
  CHECK(p.splits == 1);
  {  // batch 1's 1x1 convs: split where it takes >= 12 chunks off each block's K loop
    lasnet::kernels::ConvShape b1 = s;
    b1.rows = 49, b1.src_c = b1.cin_g = 1024, b1.out_c = b1.cout_g = 2048;  // layer4.0 shortcut
    CHECK(lasnet::kernels::to_string(lasnet::kernels::plan_conv(b1, false, 132)) ==
          "igemm_fp32_64x64_splitk8");
    CHECK(lasnet::kernels::plan_conv(b1, true, 132).splits == 8);  // 32 chunks of 32
    b1.src_c = b1.cin_g = 256;  // tf32: 8 chunks, a split saves at most 6
    CHECK(lasnet::kernels::plan_conv(b1, true, 132).splits == 1);
    CHECK(lasnet::kernels::plan_conv(b1, false, 132).splits == 4);  // fp32: 16 chunks, 4 of 4
    b1.rows = 784, b1.out_c = b1.cout_g = 512;  // layer2.0's shortcut: 104 blocks
    CHECK(lasnet::kernels::plan_conv(b1, false, 132).splits == 1);  // 4 would make 416 > 264
    b1.rows = 49;
    b1.fused_masker = true;  // the masker's logit channel: never split
    CHECK(lasnet::kernels::plan_conv(b1, false, 132).splits == 1);
  }
  s.kernel = 3;
  s.rows = 49;  // batch 1, 7x7: the smallest tile, 4 blocks: split-K as far as it goes (8)
  p = lasnet::kernels::plan_conv(s, false, 132);
  CHECK(p.impl == ConvImpl::igemm_64x64);
  CHECK(p.splits == 8);
  CHECK(lasnet::kernels::to_string(p) == "igemm_fp32_64x64_splitk8");
  CHECK_FALSE(lasnet::kernels::use_wgmma(p, s, 132).wgmma);  // fp32
  // 64x64 at batch 1: kept
  CHECK_FALSE(lasnet::kernels::use_wgmma(lasnet::kernels::plan_conv(s, true, 132), s, 132).wgmma);
  {  // batch 128's gathered layer4 conv2 at d = 0.5: 3136 rows, N = 512, mma.sync's 64x64
    lasnet::kernels::ConvShape l4 = s;
    l4.src_c = l4.cin_g = l4.out_c = l4.cout_g = 512;
    l4.rows = 3136;
    const auto mma = lasnet::kernels::plan_conv(l4, true, 132);
    CHECK(mma.impl == ConvImpl::igemm_64x64);
    const auto wg = lasnet::kernels::use_wgmma(mma, l4, 132);
    CHECK(wg.wgmma);
    CHECK(wg.impl == ConvImpl::igemm_256x128);
    CHECK(wg.splits > 1);
    l4.kernel = 1;  // never split: batch 1's layer1.0 shortcut (3136 rows, N = 256) lost
    l4.rows = 3136, l4.src_c = l4.cin_g = 64, l4.out_c = l4.cout_g = 256;
    CHECK_FALSE(
        lasnet::kernels::use_wgmma(lasnet::kernels::plan_conv(l4, true, 132), l4, 132).wgmma);
  }
  s.cin_g = s.src_c = 16;  // K = 144: 9 chunks of 16, slices of >= 4 chunks: 2 at most
  p = lasnet::kernels::plan_conv(s, false, 132);
  CHECK(p.splits == 2);
  s.cin_g = s.src_c = 256;
  s.groups = 16;  // 16 channels per group: too narrow for the tiled kernel
  s.cin_g = s.cout_g = 16;
  p = lasnet::kernels::plan_conv(s, false, 132);
  CHECK(p.impl == ConvImpl::grouped);
  CHECK(p.tile_rows() == 512);  // 128 threads x 4 pixels
  CHECK(p.tile_cols() == 8);    // 49 rows: chunks of 8 channels (more blocks)
  CHECK(lasnet::kernels::to_string(p) == "grouped_fp32");
  s.src_c = s.out_c = 10;  // channels not a multiple of 4: only the direct kernel
  s.groups = 5;
  s.cin_g = s.cout_g = 2;
  p = lasnet::kernels::plan_conv(s, false, 132);
  CHECK(p.impl == ConvImpl::direct);
  CHECK(p.tile_rows() == 0);
  CHECK(lasnet::kernels::to_string(p) == "direct_fp32");
}

TEST_CASE("fp16_igemm_splits: plan_conv's split rule at the fp16 implicit GEMM's tile") {
  using lasnet::kernels::fp16_igemm_kernel;
  using lasnet::kernels::fp16_igemm_splits;
  // ResNet-101 at batch 128, d = 0.5, S = 4-4-2-1 (the runner's row hints: ceil(d x patches)
  // active patches of S^2 rows for conv2 and conv3, E^2 = (S + 2)^2 for conv1): 3136 patches
  // in layer3 (S = 2) and layer4 (S = 1), 12544 in layer1 (S = 4). Three 128 x 64 blocks per SM
  // of 132: 396 slots; K in chunks of 32 halves.
  lasnet::kernels::ConvShape s;
  s.kernel = 3;
  s.src_c = s.cin_g = s.out_c = s.cout_g = 512;
  s.rows = 3136;  // layer4's conv2: 25 x 8 = 200 blocks, K = 4608 (144 chunks)
  // Waves of the unsplit K: 1 unsplit, ceil(200 s / 396) / s = 1 for s = 2, 2 / 3 for s = 3
  // (the first 10% gain), 4 / 7 = 0.57 for s = 7 (10% under 2 / 3); 4-6 and 8 give 0.6-0.8.
  CHECK(fp16_igemm_splits(s, 132) == 7);
  CHECK(fp16_igemm_kernel(7) == "igemm_fp16_128x64_splitk7");
  s.kernel = 1;  // layer4's conv3 (K = 512, N = 2048): 800 blocks, past one wave: a 1x1 stays
  s.src_c = s.cin_g = 512, s.out_c = s.cout_g = 2048;
  CHECK(fp16_igemm_splits(s, 132) == 1);
  s.rows = 3136 * 9;  // conv1 (K = 2048) over the 3 x 3 halos: 221 x 8 = 1768 blocks
  s.src_c = s.cin_g = 2048, s.out_c = s.cout_g = 512;
  CHECK(fp16_igemm_splits(s, 132) == 1);
  // layer3's conv2: 12544 rows, N = 256, K = 2304 (72 chunks): 392 blocks, one wave; no split
  // takes 10% off it (halves: 2 waves of halves, 1). Two slots per SM split it in 2 and lost
  // 4% a block on the H100.
  s.kernel = 3, s.rows = 12544;
  s.src_c = s.cin_g = s.out_c = s.cout_g = 256;
  CHECK(fp16_igemm_splits(s, 132) == 1);
  // layer1 (N = 64): conv2 200704 rows, 1568 blocks = 5.94 waves, no split gains 10%; conv1 and
  // conv3 far past one wave.
  s.rows = 12544 * 16;
  s.src_c = s.cin_g = s.out_c = s.cout_g = 64;
  CHECK(fp16_igemm_splits(s, 132) == 1);
  CHECK(fp16_igemm_kernel(1) == "igemm_fp16_128x64");
  s.kernel = 1, s.rows = 12544 * 36, s.src_c = s.cin_g = 256;
  CHECK(fp16_igemm_splits(s, 132) == 1);
  s.rows = 12544 * 16, s.src_c = s.cin_g = 64, s.out_c = s.cout_g = 256;
  CHECK(fp16_igemm_splits(s, 132) == 1);
  {  // batch 1 or 2 on a 7x7 map: a few blocks, split as far as the rule goes
    lasnet::kernels::ConvShape b;
    b.kernel = 3, b.rows = 25;
    b.src_c = b.cin_g = b.out_c = b.cout_g = 512;
    CHECK(fp16_igemm_splits(b, 132) == 8);  // 8 blocks, 144 chunks
    b.rows = 0;  // no patch expected (d = 0): still one tile row's blocks
    CHECK(fp16_igemm_splits(b, 132) == 8);
    b.src_c = b.cin_g = b.out_c = b.cout_g = 88;  // K = 792: 25 chunks, slices of >= 4: 6
    CHECK(fp16_igemm_splits(b, 132) == 6);
    b.kernel = 1, b.src_c = b.cin_g = 512, b.rows = 225;  // 16 chunks: 4 takes 12 off each
    CHECK(fp16_igemm_splits(b, 132) == 4);
    b.src_c = b.cin_g = 256;  // 8 chunks: a split saves at most 4
    CHECK(fp16_igemm_splits(b, 132) == 1);
  }
  // plan_conv's rule (the fewest waves of the unsplit K, 10% to pay for the reduce) at three
  // slots per SM: N = 64, K = 2304 (72 chunks), `tiles` 128-row blocks over 396 slots.
  lasnet::kernels::ConvShape t;
  t.kernel = 3, t.src_c = t.cin_g = 256, t.out_c = t.cout_g = 64;
  const std::pair<long long, int> by_tiles[] = {
      {264, 3},  // 1 wave -> 2 waves of thirds, 0.67
      {300, 5},  // 1 -> 4 waves of fifths, 0.8 (thirds and quarters: 1)
      {392, 1},  // 1 -> no split under 0.9
      {500, 3},  // 2 -> 4 waves of thirds, 1.33
      {529, 2},  // 2 -> 3 waves of halves, 1.5
      {800, 5},  // 3 -> 11 waves of fifths, 2.2
  };
  for (const auto& [tiles, splits] : by_tiles) {
    CAPTURE(tiles);
    t.rows = tiles * 128;
    CHECK(fp16_igemm_splits(t, 132) == splits);
  }
}

TEST_CASE("im2col_library_conv: tf32, single-group 3x3, >= 256 output channels, >= 4096 rows") {
  using lasnet::kernels::im2col_library_conv;
  lasnet::kernels::ConvShape s;
  s.src_c = s.cin_g = 512;
  s.out_c = s.cout_g = 512;
  s.kernel = 3;
  s.rows = 128LL * 7 * 7;  // ResNet-101 layer4 at batch 128
  CHECK(im2col_library_conv(s, true));
  CHECK_FALSE(im2col_library_conv(s, false));  // fp32: both sides are FFMA
  s.rows = 49;                                 // batch 1
  CHECK_FALSE(im2col_library_conv(s, true));
  s.rows = 128LL * 28 * 28;
  s.src_c = s.cin_g = s.out_c = s.cout_g = 128;  // layer2: the copy is not paid back
  CHECK_FALSE(im2col_library_conv(s, true));
  s.src_c = s.cin_g = s.out_c = s.cout_g = 256;
  CHECK(im2col_library_conv(s, true));
  s.kernel = 1;
  CHECK_FALSE(im2col_library_conv(s, true));
  s.kernel = 3;
  s.groups = 2, s.cin_g = s.cout_g = 256, s.src_c = s.out_c = 512;  // grouped
  CHECK_FALSE(im2col_library_conv(s, true));
}

TEST_CASE("library_1x1_conv: cuBLASLt for single-group stride-1 1x1 convs") {
  lasnet::kernels::ConvShape s;
  s.src_c = s.cin_g = 1024, s.out_c = s.cout_g = 256, s.kernel = 1, s.rows = 196;
  CHECK(lasnet::kernels::library_1x1_conv(s, true));
  CHECK(lasnet::kernels::library_1x1_conv(s, false));
  s.stride = 2;  // a strided shortcut: the GEMM would need its pixels gathered
  CHECK_FALSE(lasnet::kernels::library_1x1_conv(s, true));
  s.stride = 1, s.kernel = 3;
  CHECK_FALSE(lasnet::kernels::library_1x1_conv(s, true));
}

TEST_CASE("plan_conv: depthwise and grouped 3x3 kernels") {
  using lasnet::kernels::ConvImpl;
  using lasnet::kernels::plan_conv;
  using lasnet::kernels::to_string;
  lasnet::kernels::ConvShape s;
  s.kernel = 3;
  s.rows = 128LL * 56 * 56;
  // MobileNetV2 depthwise, 144 channels = 36 quads: 18 quads (72 channels) x 14 strips a block.
  s.src_c = s.out_c = s.groups = 144;
  s.cin_g = s.cout_g = 1;
  for (const int stride : {1, 2}) {
    s.stride = stride;
    for (const bool tf32 : {false, true}) {
      const auto p = plan_conv(s, tf32, 132);
      CHECK(p.impl == ConvImpl::depthwise);
      CHECK(to_string(p) == "depthwise_fp32");  // exact fp32 also under tf32
      CHECK(p.tile_cols() == 72);
      CHECK(p.tile_rows() == 4 * (256 / 18));
    }
  }
  s.src_c = s.out_c = s.groups = 960;  // 240 quads: 30 per block
  CHECK(plan_conv(s, false, 132).tile_cols() == 120);
  s.src_c = s.out_c = s.groups = 32;  // 8 quads: one block spans them all
  CHECK(plan_conv(s, false, 132).tile_cols() == 32);
  CHECK(plan_conv(s, false, 132).tile_rows() == 4 * 32);
  s.stride = 3;  // other strides: the direct kernel
  CHECK(plan_conv(s, false, 132).impl == ConvImpl::direct);
  s.stride = 1;
  s.kernel = 5;  // other kernel sizes: the direct kernel
  CHECK(plan_conv(s, false, 132).impl == ConvImpl::direct);
  s.kernel = 3;
  s.src_c = s.out_c = s.groups = 10;  // channel quads would straddle the map's pixels
  CHECK(plan_conv(s, false, 132).impl == ConvImpl::direct);

  // RegNetY group widths: 8, 24 -> grouped (chunks of 8 channels), 16 -> the whole group;
  // 12 -> chunks of 4;
  // 48 -> the implicit GEMM as before; width 2 -> direct.
  const auto grouped = [&](int width, int channels) {
    s.src_c = s.out_c = channels;
    s.cin_g = s.cout_g = width;
    s.groups = channels / width;
    return plan_conv(s, false, 132);
  };
  for (const int width : {8, 16, 24}) {
    const auto p = grouped(width, 48 * width);
    CHECK(p.impl == ConvImpl::grouped);
    CHECK(p.tile_cols() == (width == 16 ? 16 : 8));  // all 16 channels of a group at once
    CHECK(to_string(p) == "grouped_fp32");
  }
  // 16-wide groups: the whole group per thread only with enough blocks and rows >= 4 wide.
  s.row_width = 56;
  CHECK(grouped(16, 64).tile_cols() == 16);  // batch 128, 56 x 56
  s.row_width = 2;                           // S = 2 patch rows
  CHECK(grouped(16, 64).tile_cols() == 8);
  s.row_width = 56;
  s.rows = 56 * 56;  // batch 1
  CHECK(grouped(16, 64).tile_cols() == 8);
  s.rows = 128LL * 56 * 56;
  s.row_width = 0;
  CHECK(grouped(12, 48).tile_cols() == 4);
  CHECK(grouped(12, 48).impl == ConvImpl::grouped);
  CHECK(grouped(48, 96).impl == ConvImpl::igemm_128x64);
  CHECK(grouped(2, 48).impl == ConvImpl::direct);
  s.groups = 1;  // groups 1 never takes these kernels
  s.src_c = s.out_c = s.cin_g = s.cout_g = 16;
  CHECK(plan_conv(s, false, 132).impl != ConvImpl::grouped);
}

TEST_CASE("in-place residual: identity shortcut only, and the input is drawn non-negative") {
  k::BlockConfig c;
  c.shape.batch = 1, c.shape.height = 10, c.shape.width = 10;
  c.shape.in_channels = 32, c.shape.mid_channels = 32, c.shape.out_channels = 64;
  c.shape.stride = 2;
  c.dynamic = k::DynamicSettings{};
  c.dynamic->in_place_residual = true;
  CHECK_FALSE(k::check_supported(c).ok);  // projection shortcut: out cannot alias x
  c.shape.in_channels = 64, c.shape.stride = 1;
  REQUIRE(k::check_supported(c).ok);
  CHECK(k::in_place(c));
  const k::BlockData in = k::make_block_data(c);
  c.dynamic->in_place_residual = false;
  const k::BlockData out = k::make_block_data(c);
  REQUIRE(in.x.size() == out.x.size());
  bool some_negative = false;
  for (std::size_t i = 0; i < in.x.size(); ++i) {
    CHECK(in.x[i] == std::abs(out.x[i]));
    some_negative = some_negative || out.x[i] < 0.0f;
  }
  CHECK(some_negative);  // the test would be vacuous on data that is already non-negative
  CHECK(in.w1 == out.w1);
}

namespace {
// A basic block of one channel on the 3x3 map 1..9, stride 1 (identity shortcut), 3x3 weights
// all 1, b1 = -20, b2 = -60.
k::BlockData tiny_basic_block() {
  k::BlockData d;
  d.shape.kind = k::BlockKind::basic;
  d.shape.batch = 1, d.shape.height = 3, d.shape.width = 3;
  d.shape.in_channels = d.shape.mid_channels = d.shape.out_channels = 1;
  d.x = iota(9);
  d.w1.assign(9, 1.0f), d.b1 = {-20.0f};
  d.w2.assign(9, 1.0f), d.b2 = {-60.0f};
  d.wm = {1.0f};
  return d;
}
}  // namespace

TEST_CASE("basic block: dense reference by hand") {
  // conv1 = ReLU(3x3 neighbour sums of 1..9 - 20): sums [12 21 16; 27 45 33; 24 39 28] ->
  //   [0 1 0; 7 25 13; 4 19 8].
  // conv2 = neighbour sums of that - 60: [33 46 39; 56 77 66; 55 76 65] - 60 ->
  //   [-27 -14 -21; -4 17 6; -5 16 5]; + x (identity) -> [-26 -12 -18; 0 22 12; 2 24 14];
  // ReLU -> [0 0 0; 0 22 12; 2 24 14].
  const auto r = ref::basic_dense(tiny_basic_block());
  CHECK(r.conv1 == std::vector<float>{0, 1, 0, 7, 25, 13, 4, 19, 8});
  CHECK(r.conv2 == std::vector<float>{-27, -14, -21, -4, 17, 6, -5, 16, 5});
  CHECK(r.out == std::vector<float>{0, 0, 0, 0, 22, 12, 2, 24, 14});
  CHECK(r.conv3.empty());
  CHECK(ref::block_dense(tiny_basic_block()).out == r.out);
}

TEST_CASE("basic block: patch geometry of the halos") {
  k::BottleneckShape s;
  s.kind = k::BlockKind::basic;
  s.height = s.width = 8;
  // S = 2, stride 1: conv1 computes the patch + 1 pixel of halo, 4 x 4 outputs at -1..2,
  // which read x at -2..3: 6 pixels from offset -2.
  auto g = k::patch_grid(s, 2);
  CHECK(g.mid_extent == 4);
  CHECK(g.mid_step == 2);
  CHECK(g.halo_extent == 6);
  CHECK(g.halo_offset == -2);
  CHECK(g.input_step == 2);
  // Stride 2: conv1's outputs -1..2 read x at 2*(-1) - 1 = -3 .. 2*2 - 1 + 2 = 5: 9 pixels.
  s.stride = 2;
  g = k::patch_grid(s, 2);
  CHECK(g.mid_extent == 4);
  CHECK(g.halo_extent == 9);
  CHECK(g.halo_offset == -3);
  CHECK(g.input_step == 4);
  CHECK(g.rows == 2);  // output map 4 x 4
  // The bottleneck's geometry is unchanged: conv1 is 1x1, so its outputs are x's halo.
  s.kind = k::BlockKind::bottleneck;
  g = k::patch_grid(s, 2);
  CHECK(g.halo_extent == 5);  // (2 - 1) * 2 + 3
  CHECK(g.halo_offset == -1);
  CHECK(g.mid_extent == 5);
  CHECK(g.mid_step == 4);
}

TEST_CASE("basic block: dynamic reference by hand, S = 2 not dividing the 3x3 map") {
  // Patches (0,0) and (1,1) active: (0,0) covers outputs (0..1, 0..1) -> the dense block's
  // 0 0 / 0 22; (1,1) covers (2,2) -> 14. Inactive pixels get ReLU(x): (0,2) = 3, (1,2) = 6,
  // (2,0) = 7, (2,1) = 8.
  const k::BlockData d = tiny_basic_block();
  const auto r = ref::basic_dynamic(d, 2, {1, 0, 0, 1});
  CHECK(r.active == std::vector<std::int32_t>{0, 3});
  CHECK(r.out == std::vector<float>{0, 0, 3, 0, 22, 6, 7, 8, 14});
  // conv1 of patch 0 covers outputs -1..2 per side; row and column -1 are outside (zero).
  REQUIRE(r.conv1.size() == 2 * 16);
  CHECK(r.conv1[0] == 0.0f);
  CHECK(r.conv1[1 * 4 + 1] == 0.0f);   // conv1 (0,0)
  CHECK(r.conv1[1 * 4 + 2] == 1.0f);   // conv1 (0,1)
  CHECK(r.conv1[2 * 4 + 2] == 25.0f);  // conv1 (1,1)
  CHECK(r.conv1[3 * 4 + 3] == 8.0f);   // conv1 (2,2)
  // Patch 3's conv1 pixels start at output (2,2) - 1 = (1,1); its last one, (4,4), is outside.
  CHECK(r.conv1[16 + 0] == 25.0f);
  CHECK(r.conv1[16 + 15] == 0.0f);
  CHECK(r.conv2[4] == 5.0f);  // patch 3's output (2,2): the dense conv2 there
  // gathered x of patch 0: 6 x 6 from (-2,-2): x(0,0) = 1 sits at (2,2).
  CHECK(r.gathered_x[2 * 6 + 2] == 1.0f);
  CHECK(r.gathered_x[0] == 0.0f);
  // conv2 rows of patch 0 are the dense conv2 (no add): -27 -14 / -4 17.
  CHECK(r.conv2[0] == -27.0f);
  CHECK(r.conv2[1] == -14.0f);
  CHECK(r.conv2[2] == -4.0f);
  CHECK(r.conv2[3] == 17.0f);
}

TEST_CASE("basic block: dynamic reference equals the masked dense block") {
  struct Case {
    k::BottleneckShape shape;
    std::int64_t s;
  };
  const auto shape = [](std::int64_t h, std::int64_t cin, std::int64_t c, std::int64_t stride) {
    k::BottleneckShape b;
    b.kind = k::BlockKind::basic;
    b.batch = 2, b.height = h, b.width = h + 1, b.in_channels = cin, b.mid_channels = c;
    b.out_channels = c, b.stride = stride;
    return b;
  };
  // Identity and projection shortcuts, stride 1 and 2, S dividing the map and not, S = 1.
  const std::vector<Case> cases{{shape(7, 8, 8, 1), 1}, {shape(7, 8, 8, 1), 3},
                                {shape(8, 4, 8, 2), 2}, {shape(9, 6, 4, 2), 4},
                                {shape(6, 8, 8, 1), 7}, {shape(5, 4, 12, 1), 2}};
  for (const auto& c : cases) {
    for (const double density : {0.0, 0.5, 1.0}) {
      CAPTURE(k::to_string(c.shape));
      CAPTURE(c.s);
      CAPTURE(density);
      k::BlockConfig cfg;
      cfg.shape = c.shape;
      cfg.seed = 12;
      REQUIRE(k::check_supported(cfg).ok);
      k::BlockData d = k::make_block_data(cfg);
      const k::PatchGrid g = k::patch_grid(c.shape, c.s);
      const auto raw = ref::masker_logits(
          d.x, {c.shape.batch, c.shape.height, c.shape.width, c.shape.in_channels}, g, d.wm, 0.0f);
      d.bm = k::masker_bias_for_density(raw, density);
      const auto dyn = ref::block_dynamic(d, c.s);
      CHECK(static_cast<std::int64_t>(dyn.active.size()) ==
            lasnet::active_patches(density, c.shape.batch * g.per_image));
      const auto dense = ref::basic_dense(d);
      const auto cmp = ref::compare(dyn.out, ref::masked_dense_output(dense, d, dyn.mask, g));
      CHECK(cmp.ok(1e-6));
      CHECK(cmp.non_finite == 0);
      if (density == 0.0) {  // nothing computed: ReLU(shortcut) everywhere
        const auto& res = c.shape.has_projection() ? dense.shortcut : d.x;
        REQUIRE(dyn.out.size() == res.size());
        for (std::size_t i = 0; i < res.size(); ++i) CHECK(dyn.out[i] == std::max(res[i], 0.0f));
      }
      if (density == 1.0) CHECK(ref::compare(dyn.out, dense.out).ok(1e-6));
    }
  }
}

TEST_CASE("basic block: what the kernels refuse, and the job key's shape") {
  k::BlockConfig c;
  c.shape.kind = k::BlockKind::basic;
  c.shape.in_channels = c.shape.mid_channels = c.shape.out_channels = 64;
  CHECK(k::to_string(c.shape) == "n1 56x56 64-64-64 s1 g1 basic");
  REQUIRE(k::check_supported(c).ok);
  c.dynamic = k::DynamicSettings{};
  c.dynamic->fusion.gather_conv1 = c.dynamic->fusion.conv3_scatter_add = true;
  CHECK(k::check_supported(c).ok);
  c.dynamic->fusion.masker_conv1 = true;  // conv1 is 3x3: no logit channel in its GEMM
  CHECK_FALSE(k::check_supported(c).ok);
  c.dynamic->fusion.masker_conv1 = false;
  c.shape.groups = 2;
  CHECK_FALSE(k::check_supported(c).ok);
  // The bottleneck's key is as before.
  k::BottleneckShape b;
  CHECK(k::to_string(b) == "n1 56x56 256-64-256 s1 g1");
}

TEST_CASE("separable block: the bottleneck whose conv1 is the identity, dense and dynamic") {
  for (const std::int64_t stride : {1, 2}) {
    k::BlockConfig sep;
    sep.shape.kind = k::BlockKind::separable;
    sep.shape.batch = 2, sep.shape.height = 9, sep.shape.width = 10;
    sep.shape.in_channels = sep.shape.mid_channels = 6, sep.shape.out_channels = 6 * stride;
    sep.shape.stride = stride, sep.shape.groups = 6;
    sep.seed = 21;
    REQUIRE(k::check_supported(sep).ok);
    k::BlockData d = k::make_block_data(sep);
    CHECK(d.w1.empty());
    CHECK(d.b1.empty());
    for (float& v : d.x) v = std::abs(v);  // ReLU(x) = x: the identity conv1's ReLU is a no-op
    // The same block as a bottleneck with w1 = I and b1 = 0.
    k::BlockData b = d;
    b.shape.kind = k::BlockKind::bottleneck;
    const std::int64_t c = d.shape.in_channels;
    b.w1.assign(static_cast<std::size_t>(c * c), 0.0f);
    for (std::int64_t i = 0; i < c; ++i) b.w1[static_cast<std::size_t>(i * c + i)] = 1.0f;
    b.b1.assign(static_cast<std::size_t>(c), 0.0f);
    CAPTURE(stride);
    const auto dense_sep = ref::bottleneck_dense(d), dense_b = ref::bottleneck_dense(b);
    CHECK(dense_sep.conv1 == d.x);
    CHECK(ref::compare(dense_sep.out, dense_b.out).ok(1e-6));
    for (const std::int64_t gran : {1, 2, 3}) {
      const k::PatchGrid g = k::patch_grid(d.shape, gran);
      const auto raw = ref::masker_logits(d.x, {2, 9, 10, c}, g, d.wm, 0.0f);
      d.bm = b.bm = k::masker_bias_for_density(raw, 0.5);
      const auto dyn_sep = ref::bottleneck_dynamic(d, gran),
                 dyn_b = ref::bottleneck_dynamic(b, gran);
      CAPTURE(gran);
      CHECK(dyn_sep.mask == dyn_b.mask);
      CHECK(dyn_sep.conv1 == dyn_sep.gathered_x);  // conv2's halos are x's own
      CHECK(ref::compare(dyn_sep.out, dyn_b.out).ok(1e-6));
      const auto want = ref::masked_dense_output(dense_sep, d, dyn_sep.mask, g);
      const auto cmp = ref::compare(dyn_sep.out, want);
      CHECK(cmp.ok(1e-6));
      CHECK(cmp.non_finite == 0);
    }
  }
}

TEST_CASE("separable block: what the kernels refuse, and the job key's shape") {
  k::BlockConfig c;
  c.shape.kind = k::BlockKind::separable;
  c.shape.height = c.shape.width = 112;
  c.shape.in_channels = c.shape.mid_channels = c.shape.groups = 32;
  c.shape.out_channels = 16;
  CHECK(k::to_string(c.shape) == "n1 112x112 32-32-16 s1 g32 separable");
  REQUIRE(k::check_supported(c).ok);
  c.dynamic = k::DynamicSettings{};
  c.dynamic->fusion.gather_conv1 = c.dynamic->fusion.conv3_scatter_add = true;
  CHECK(k::check_supported(c).ok);
  const auto refused = [](k::BlockConfig v, const char* why) {
    const auto support = k::check_supported(v);
    CHECK_FALSE(support.ok);
    CHECK(support.reason.find(why) != std::string::npos);
  };
  for (const int form : {0, 1, 2}) {
    k::BlockConfig v = c;
    auto& d = *v.dynamic;
    (form == 0 ? d.fusion.masker_conv1 : form == 1 ? d.fusion.union_conv1 : d.library_conv1) = true;
    CAPTURE(form);
    refused(v, "no conv1");
  }
  k::BlockConfig wide = c;
  wide.shape.mid_channels = 64;  // conv2 reads x: Cmid must be Cin
  refused(wide, "mid_channels = in_channels");
  k::BlockConfig se = c;
  se.shape.se_channels = 8;
  refused(se, "SE in a separable block");
  k::BlockConfig half = c;
  half.precision = k::Precision::fp16;
  refused(half, "fp16");
}

namespace {
// SE of 2 channels into 1: hidden = ReLU(m0 + m1), scale = sigmoid(+hidden), sigmoid(-hidden).
k::BlockData tiny_se() {
  k::BlockData d;
  d.shape.mid_channels = 2, d.shape.se_channels = 1;
  d.wse1 = {1.0f, 1.0f}, d.bse1 = {0.0f};
  d.wse2 = {1.0f, -1.0f}, d.bse2 = {0.0f, 0.0f};
  return d;
}
double sigmoid(double v) {
  return 1.0 / (1.0 + std::exp(-v));
}
}  // namespace

TEST_CASE("SE: pooled FC + channel scale by hand, dense and over active patches") {
  const k::BlockData d = tiny_se();
  // Dense: one image, 2x1 pixels (1, 3) and (3, 5): means (2, 4), hidden 6.
  const ref::MapShape m{1, 2, 1, 2};
  const std::vector<float> map{1, 3, 3, 5};
  const auto scale = ref::se_scale_map(map, m, d);
  REQUIRE(scale.size() == 2);
  CHECK(scale[0] == doctest::Approx(sigmoid(6)));
  CHECK(scale[1] == doctest::Approx(sigmoid(-6)));
  const auto scaled = ref::se_apply_map(map, m, scale);
  CHECK(scaled[2] == doctest::Approx(3 * sigmoid(6)));
  CHECK(scaled[3] == doctest::Approx(5 * sigmoid(-6)));
  // Dynamic: 2 images of a 3x1 output map, S = 2 (patches rows 0-1 and 2, the second clipped).
  // Only image 0's patch 1 is active; of its 2x2 rows only (y 2, x 0) is inside the map:
  // means (4, 8), hidden 12. Image 1 has no active pixel: mean 0, hidden 0, scale 0.5.
  k::BottleneckShape s;
  s.batch = 2, s.height = 3, s.width = 1;
  const k::PatchGrid g = k::patch_grid(s, 2);
  REQUIRE(g.per_image == 2);
  const std::vector<float> rows{4, 8, 100, 100, 100, 100, 100, 100};
  const auto ps = ref::se_scale_patches(rows, {1}, g, {2, 3, 1, 2}, d);
  REQUIRE(ps.size() == 4);
  CHECK(ps[0] == doctest::Approx(sigmoid(12)));
  CHECK(ps[1] == doctest::Approx(sigmoid(-12)));
  CHECK(ps[2] == doctest::Approx(0.5));
  CHECK(ps[3] == doctest::Approx(0.5));
  const auto applied = ref::se_apply_patches(rows, 2, {1}, g, ps);
  CHECK(applied[1] == doctest::Approx(8 * sigmoid(-12)));
}

TEST_CASE("SE block (RegNetY): dynamic at density 1 equals dense; density 0 gives ReLU(shortcut)") {
  k::BottleneckShape s;
  s.batch = 2, s.height = 9, s.width = 8, s.in_channels = 8, s.mid_channels = 8;
  s.out_channels = 12, s.stride = 2, s.groups = 2, s.se_channels = 3;
  CHECK(k::to_string(s) == "n2 9x8 8-8-12 s2 g2 se3");
  k::BlockConfig cfg;
  cfg.shape = s, cfg.seed = 21;
  REQUIRE(k::check_supported(cfg).ok);
  k::BlockData d = k::make_block_data(cfg);
  REQUIRE(d.wse1.size() == 3 * 8);
  REQUIRE(d.wse2.size() == 8 * 3);
  const auto dense = ref::bottleneck_dense(d);
  REQUIRE(dense.se_scale.size() == 2 * 8);
  for (const std::int64_t gran : {1, 2, 3}) {  // 5x4 output map: S = 2, 3 leave partial patches
    CAPTURE(gran);
    const k::PatchGrid g = k::patch_grid(s, gran);
    const auto raw = ref::masker_logits(d.x, {2, 9, 8, 8}, g, d.wm, 0.0f);
    d.bm = k::masker_bias_for_density(raw, 1.0);
    const auto all = ref::bottleneck_dynamic(d, gran);
    CHECK(ref::compare(all.se_scale, dense.se_scale).ok(1e-6));
    CHECK(ref::compare(all.out, dense.out).ok(1e-6));
    d.bm = k::masker_bias_for_density(raw, 0.0);
    const auto none = ref::bottleneck_dynamic(d, gran);
    REQUIRE(none.out.size() == dense.shortcut.size());
    for (std::size_t i = 0; i < none.out.size(); ++i) {
      CHECK(none.out[i] == std::max(dense.shortcut[i], 0.0f));
    }
  }
  cfg.shape.kind = k::BlockKind::basic;
  cfg.shape.groups = 1;
  CHECK_FALSE(k::check_supported(cfg).ok);  // SE only in the bottleneck kind
}

// ---- the union form (Fusion::union_conv1): conv1 once per needed pixel ----
namespace {
k::BottleneckShape union_shape(std::int64_t batch, std::int64_t h, std::int64_t w,
                               std::int64_t stride) {
  k::BottleneckShape b;
  b.batch = batch, b.height = h, b.width = w, b.stride = stride;
  b.in_channels = 8, b.mid_channels = 4, b.out_channels = stride == 1 ? 8 : 12;
  return b;
}
// Indices y*w + x (+ offset) of the rectangle rows y0..y1, columns x0..x1 (inclusive).
std::vector<std::int32_t> rect(std::int64_t w, std::int64_t y0, std::int64_t y1, std::int64_t x0,
                               std::int64_t x1, std::int64_t offset = 0) {
  std::vector<std::int32_t> v;
  for (std::int64_t y = y0; y <= y1; ++y) {
    for (std::int64_t x = x0; x <= x1; ++x)
      v.push_back(static_cast<std::int32_t>(offset + y * w + x));
  }
  return v;
}
std::vector<std::int32_t> sorted_union(std::vector<std::int32_t> a,
                                       const std::vector<std::int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  std::sort(a.begin(), a.end());
  a.erase(std::unique(a.begin(), a.end()), a.end());
  return a;
}
}  // namespace

TEST_CASE("needed_conv1_pixels: the pixels active patches' conv2 windows read, by hand") {
  SUBCASE("8x8, S=2, stride 1: E = 4, windows at 2*p - 1, clipped") {
    const auto s = union_shape(1, 8, 8, 1);
    REQUIRE(k::patch_grid(s, 2).per_image == 16);  // 4 x 4 patches
    std::vector<std::uint8_t> mask(16, 0);
    mask[0] = 1;  // patch (0, 0): rows/cols -1..2 -> 0..2
    CHECK(k::needed_conv1_pixels(s, 2, mask) ==
          std::vector<std::int32_t>{0, 1, 2, 8, 9, 10, 16, 17, 18});
    mask[0] = 0;
    mask[15] = 1;  // patch (3, 3): 5..8 -> 5..7
    CHECK(k::needed_conv1_pixels(s, 2, mask) ==
          std::vector<std::int32_t>{45, 46, 47, 53, 54, 55, 61, 62, 63});
    mask[6] = 1;  // patch (1, 2): rows 1..4, cols 3..6, 16 pixels, none shared with (3, 3)
    const auto both = k::needed_conv1_pixels(s, 2, mask);
    CHECK(both.size() == 25);
    CHECK(both == sorted_union(rect(8, 1, 4, 3, 6), rect(8, 5, 7, 5, 7)));
    mask[7] = 1;  // patch (1, 3): rows 1..4, cols 5..8 -> 5..7, 12 pixels; cols 5..6 shared
                  // with (1, 2), so 4 new (column 7)
    CHECK(k::needed_conv1_pixels(s, 2, mask) == sorted_union(both, rect(8, 1, 4, 7, 7)));
    CHECK(k::needed_conv1_pixels(s, 2, mask).size() == 25 + 4);
  }
  SUBCASE("stride 2: 8x8 input, 4x4 output, S=2: E = 5, step 4") {
    const auto s = union_shape(1, 8, 8, 2);
    REQUIRE(k::patch_grid(s, 2).per_image == 4);
    std::vector<std::uint8_t> mask{1, 0, 0, 0};  // (0, 0): -1..3 -> 0..3
    CHECK(k::needed_conv1_pixels(s, 2, mask) == rect(8, 0, 3, 0, 3));
    mask = {0, 0, 0, 1};  // (1, 1): 3..7
    CHECK(k::needed_conv1_pixels(s, 2, mask) == rect(8, 3, 7, 3, 7));
    mask = {1, 0, 0, 1};  // 16 + 25 - the shared pixel (3, 3)
    const auto both = k::needed_conv1_pixels(s, 2, mask);
    CHECK(both.size() == 40);
    CHECK(both == sorted_union(rect(8, 0, 3, 0, 3), rect(8, 3, 7, 3, 7)));
  }
  SUBCASE("S = 2 not dividing a 5x5 map: the partial corner patch's window is clipped") {
    const auto s = union_shape(1, 5, 5, 1);
    REQUIRE(k::patch_grid(s, 2).per_image == 9);  // 3 x 3 patches
    std::vector<std::uint8_t> mask(9, 0);
    mask[8] = 1;  // (2, 2): rows/cols 3..6 -> 3..4
    CHECK(k::needed_conv1_pixels(s, 2, mask) == std::vector<std::int32_t>{18, 19, 23, 24});
  }
  SUBCASE("batch: image 1's pixels come after image 0's") {
    const auto s = union_shape(2, 4, 4, 1);  // S = 4: one patch per image, window -1..4
    CHECK(k::needed_conv1_pixels(s, 4, {0, 1}) == rect(4, 0, 3, 0, 3, 16));
    CHECK(k::needed_conv1_pixels(s, 4, {1, 0}) == rect(4, 0, 3, 0, 3));
  }
  SUBCASE("density 0: none; density 1: every pixel (the windows tile the map)") {
    for (const std::int64_t stride : {1, 2}) {
      for (const std::int64_t gran : {1, 2, 3, 4, 7}) {
        const auto s = union_shape(2, 9, 7, stride);
        const auto per_image = k::patch_grid(s, gran).per_image;
        CAPTURE(stride);
        CAPTURE(gran);
        CHECK(k::needed_conv1_pixels(s, gran, std::vector<std::uint8_t>(2 * per_image, 0)).empty());
        std::vector<std::int32_t> all(2 * 9 * 7);
        std::iota(all.begin(), all.end(), 0);
        CHECK(k::needed_conv1_pixels(s, gran, std::vector<std::uint8_t>(2 * per_image, 1)) == all);
      }
    }
  }
  SUBCASE("S = 1, stride 1: the mask dilated by one pixel") {
    const auto s = union_shape(1, 4, 4, 1);
    std::vector<std::uint8_t> mask(16, 0);
    mask[5] = 1;  // pixel (1, 1): its 3x3 neighbourhood 0..2 x 0..2
    CHECK(k::needed_conv1_pixels(s, 1, mask) == rect(4, 0, 2, 0, 2));
  }
  CHECK_THROWS(k::needed_conv1_pixels(union_shape(1, 8, 8, 1), 2, {1, 0}));
}

TEST_CASE("union form: same block output as the per-patch conv1, every needed pixel computed") {
  struct Case {
    k::BottleneckShape shape;
    std::int64_t s;
  };
  auto grouped = union_shape(2, 9, 10, 2);
  grouped.in_channels = 6, grouped.mid_channels = 4, grouped.out_channels = 6, grouped.groups = 2;
  const std::vector<Case> cases{{union_shape(2, 7, 8, 1), 1},
                                {union_shape(2, 7, 8, 1), 3},
                                {union_shape(1, 8, 8, 2), 2},
                                {grouped, 4},
                                {union_shape(2, 6, 6, 1), 7}};
  for (const auto& c : cases) {
    for (const double density : {0.0, 0.3, 0.5, 1.0}) {
      CAPTURE(k::to_string(c.shape));
      CAPTURE(c.s);
      CAPTURE(density);
      k::BlockConfig cfg;
      cfg.shape = c.shape;
      cfg.seed = 21;
      k::BlockData d = k::make_block_data(cfg);
      const k::PatchGrid g = k::patch_grid(c.shape, c.s);
      const auto raw = ref::masker_logits(
          d.x, {c.shape.batch, c.shape.height, c.shape.width, c.shape.in_channels}, g, d.wm, 0.0f);
      d.bm = k::masker_bias_for_density(raw, density);
      const auto per_patch = ref::bottleneck_dynamic(d, c.s);
      const auto uni = ref::bottleneck_dynamic_union(d, c.s);
      CHECK(uni.mask == per_patch.mask);
      CHECK(uni.needed == k::needed_conv1_pixels(c.shape, c.s, per_patch.mask));
      if (density == 0.0) CHECK(uni.needed.empty());
      // A needed pixel left out would bring its NaN into conv1's halos and the output.
      CHECK(ref::compare(uni.conv1, per_patch.conv1).non_finite == 0);
      CHECK(uni.conv1 == per_patch.conv1);  // the same products and sums, so bit for bit
      CHECK(uni.out == per_patch.out);
      // Fewer conv1 rows than the per-patch form's P * E^2 wherever halos overlap.
      const auto halo_rows = per_patch.active.size() * g.halo_extent * g.halo_extent;
      CHECK(uni.needed.size() <= halo_rows);
    }
  }
}

TEST_CASE("union form: the fusion's name and what check_supported refuses") {
  k::Fusion f;
  f.union_conv1 = f.gather_conv1 = f.conv3_scatter_add = true;
  CHECK(k::to_string(f) == "union+gather+scatter");
  f = k::Fusion{};
  f.union_conv1 = true;
  CHECK(k::to_string(f) == "union");
  CHECK(k::to_string(k::Fusion{}) == "none");
  k::BlockConfig c;
  c.shape = union_shape(1, 8, 8, 1);
  c.dynamic = k::DynamicSettings{};
  c.dynamic->fusion.union_conv1 = true;
  CHECK(k::check_supported(c).ok);
  c.dynamic->fusion.masker_conv1 = true;  // masker_conv1's conv1 is dense already
  CHECK_FALSE(k::check_supported(c).ok);
  CHECK(k::check_supported(c).reason.find("masker_conv1") != std::string::npos);
  c.dynamic->fusion.masker_conv1 = false;
  c.shape.kind = k::BlockKind::basic;
  c.shape.in_channels = c.shape.mid_channels = c.shape.out_channels = 8;
  CHECK_FALSE(k::check_supported(c).ok);
  CHECK(k::check_supported(c).reason.find("bottleneck") != std::string::npos);
}

TEST_CASE("in_active_window (the device's dilate predicate) lists what needed_conv1_pixels does") {
  // Random masks over strides, S dividing the map or not, and non-square maps; the predicate
  // looks patches up from the pixel, needed_conv1_pixels marks windows from the patches.
  std::uint64_t draw = 0;
  for (const std::int64_t stride : {1, 2}) {
    for (const std::int64_t gran : {1, 2, 3, 4, 7}) {
      for (const double density : {0.1, 0.5, 0.9}) {
        const auto s = union_shape(2, 11, 9, stride);
        const k::PatchGrid g = k::patch_grid(s, gran);
        std::vector<std::uint8_t> mask(static_cast<std::size_t>(2 * g.per_image));
        for (auto& m : mask) {
          m = k::random_uniform(5, 3, draw++) < 2.0 * density - 1.0 ? 1 : 0;
        }
        std::vector<std::int32_t> listed;
        for (std::int64_t n = 0; n < s.batch; ++n) {
          for (std::int64_t y = 0; y < s.height; ++y) {
            for (std::int64_t x = 0; x < s.width; ++x) {
              if (k::in_active_window(mask.data() + n * g.per_image, static_cast<int>(g.rows),
                                      static_cast<int>(g.cols), static_cast<int>(g.mid_extent),
                                      static_cast<int>(g.mid_step), -1, static_cast<int>(y),
                                      static_cast<int>(x))) {
                listed.push_back(static_cast<std::int32_t>((n * s.height + y) * s.width + x));
              }
            }
          }
        }
        CAPTURE(stride);
        CAPTURE(gran);
        CAPTURE(density);
        CHECK(listed == k::needed_conv1_pixels(s, gran, mask));
      }
    }
  }
}

TEST_CASE("round_to_fp16: binary16's nearest value, ties to even, its range") {
  CHECK(k::round_to_fp16(1.0f) == 1.0f);
  CHECK(k::round_to_fp16(-2.5f) == -2.5f);
  // 11 significant bits: 1 + 2^-10 is a half, 1 + 2^-11 the tie between 1 and it (even: 1).
  CHECK(k::round_to_fp16(1.0f + 0x1p-10f) == 1.0f + 0x1p-10f);
  CHECK(k::round_to_fp16(1.0f + 0x1p-11f) == 1.0f);
  CHECK(k::round_to_fp16(1.0f + 3 * 0x1p-11f) == 1.0f + 0x1p-9f);  // tie, up to even
  CHECK(k::round_to_fp16(1.0f + 0x1p-11f + 0x1p-20f) == 1.0f + 0x1p-10f);
  CHECK(k::round_to_fp16(0.1f) == 0.0999755859375f);  // 1638 / 16384
  // Largest finite 65504; from 65520 (the tie with 2^16) on, infinity.
  CHECK(k::round_to_fp16(65504.0f) == 65504.0f);
  CHECK(k::round_to_fp16(65519.0f) == 65504.0f);
  CHECK(std::isinf(k::round_to_fp16(65520.0f)));
  CHECK(k::round_to_fp16(-70000.0f) == -std::numeric_limits<float>::infinity());
  // Subnormals: spacing 2^-24 below 2^-14; half of 2^-24 ties to 0.
  CHECK(k::round_to_fp16(0x1p-24f) == 0x1p-24f);
  CHECK(k::round_to_fp16(3 * 0x1p-25f) == 0x1p-23f);
  CHECK(k::round_to_fp16(0x1p-25f) == 0.0f);
  CHECK(k::round_to_fp16(0x1p-14f + 0x1p-24f) == 0x1p-14f + 0x1p-24f);
  CHECK(std::isnan(k::round_to_fp16(std::numeric_limits<float>::quiet_NaN())));
}

TEST_CASE("fp16: make_block_data rounds to half; check_supported names what fp16 lacks") {
  k::BlockConfig c;
  c.shape = union_shape(1, 8, 8, 1);
  c.shape.in_channels = c.shape.out_channels = 16, c.shape.mid_channels = 8;
  c.precision = k::Precision::fp16;
  const k::BlockData d = k::make_block_data(c);
  for (const float v : d.w1) CHECK(k::round_to_fp16(v) == v);
  k::BlockConfig f32 = c;
  f32.precision = k::Precision::fp32;
  CHECK(k::make_block_data(f32).x != d.x);  // fp32 keeps the 24-bit values
  CHECK(k::check_supported(c).ok);
  const auto refused = [&](const k::BlockConfig& cfg, const char* words) {
    const k::Support s = k::check_supported(cfg);
    CAPTURE(words);
    CHECK_FALSE(s.ok);
    CHECK(s.reason.find(words) != std::string::npos);
  };
  c.dynamic = k::DynamicSettings{};
  CHECK(k::check_supported(c).ok);
  c.dynamic->fusion.union_conv1 = true;
  CHECK(k::check_supported(c).ok);
  c.dynamic->fusion.conv3_scatter_add = true;
  CHECK(k::check_supported(c).ok);  // the fp16 implicit GEMM has the scatter epilogue
  c.fp16_library_dynamic = true;    // the cuBLASLt baseline has not
  refused(c, "need the fp16 implicit GEMM");
  c.dynamic->fusion = k::Fusion{};
  c.dynamic->fusion.gather_conv1 = true;
  refused(c, "need the fp16 implicit GEMM");
  c.fp16_library_dynamic = false;
  CHECK(k::check_supported(c).ok);
  CHECK(k::fusion_supported(k::Precision::fp16, k::Fusion{false, true, true}, false));
  c.dynamic->fusion = k::Fusion{};
  c.dynamic->fusion.masker_conv1 = true;
  refused(c, "library_conv1");
  c.dynamic->library_conv1 = true;
  CHECK(k::check_supported(c).ok);
  CHECK(k::fusion_supported(k::Precision::fp16, c.dynamic->fusion, true));
  CHECK_FALSE(k::fusion_supported(k::Precision::fp16, c.dynamic->fusion, false));
  CHECK(k::fusion_supported(k::Precision::tf32, k::Fusion{true, true, true}, false));
  c.dynamic.reset();
  c.shape.mid_channels = 12;
  refused(c, "multiples of 8");
  c.shape.mid_channels = 16, c.shape.groups = 2;
  refused(c, "grouped");
  c.shape.groups = 1, c.shape.se_channels = 8;
  refused(c, "SE");
  c.shape.se_channels = 0, c.shape.kind = k::BlockKind::basic;
  refused(c, "basic");
}
