// FLOP and unique-DRAM-byte counts of every operator on tiny shapes, worked by hand in the
// comments (fp32: 4 bytes per element; indices are 4-byte ints).
#include <doctest/doctest.h>

#include "lasnet/predictor/op.hpp"

using lasnet::predictor::flops;
using lasnet::predictor::Op;
using lasnet::predictor::OpKind;
using lasnet::predictor::Precision;
using lasnet::predictor::unique_dram_bytes;

namespace {
Op make(OpKind kind, std::int64_t n, std::int64_t cin, std::int64_t hin, std::int64_t cout,
        std::int64_t hout, std::int64_t k = 1, std::int64_t s = 1, std::int64_t g = 1) {
  Op op;
  op.kind = kind;
  op.batch = n;
  op.in_channels = cin;
  op.out_channels = cout;
  op.in_height = op.in_width = hin;
  op.out_height = op.out_width = hout;
  op.kernel = k;
  op.stride = s;
  op.groups = g;
  return op;
}
}  // namespace

TEST_CASE("dense conv, grouped, depthwise, fc") {
  // 1x2x4x4 -> 3 channels, 3x3 pad 1: 16 outputs x 3 channels x (2*9) MACs x 2 = 1728 FLOPs.
  // Bytes: input 32 + weights 3*18 + bias 3 = 57 + output 48 -> 137 elements = 548 bytes.
  const Op conv = make(OpKind::conv, 1, 2, 4, 3, 4, 3);
  CHECK(flops(conv) == 1728);
  CHECK(unique_dram_bytes(conv) == 548);
  // fp16 halves every element.
  Op half = conv;
  half.precision = Precision::fp16;
  CHECK(unique_dram_bytes(half) == 274);
  // groups=2, 4->4 channels, 2x2 map: 4 pixels x 4 channels x (2*9) x 2 = 576.
  CHECK(flops(make(OpKind::conv, 1, 4, 2, 4, 2, 3, 1, 2)) == 576);
  // Depthwise 8 channels, 4x4 -> 2x2 at stride 2: 4 pixels x 8 x 9 x 2 = 576.
  CHECK(flops(make(OpKind::conv, 1, 8, 4, 8, 2, 3, 2, 8)) == 576);
  // fc 10 -> 5 at batch 2: 2*2*5*10 = 200 FLOPs; (20 in + 55 weights + 10 out) * 4 = 340 bytes.
  const Op fc = make(OpKind::fc, 2, 10, 1, 5, 1);
  CHECK(flops(fc) == 200);
  CHECK(unique_dram_bytes(fc) == 340);
}

TEST_CASE("pooling, global pooling, add, squeeze-excitation, channel gate") {
  // 2x2 pool at stride 2 on 1x2x4x4: 8 outputs x 4 = 32 FLOPs; (32 + 8) * 4 = 160 bytes.
  const Op pool = make(OpKind::pool, 1, 2, 4, 2, 2, 2, 2);
  CHECK(flops(pool) == 32);
  CHECK(unique_dram_bytes(pool) == 160);
  // Global pool of 2x3x2x2: 24 adds; (24 + 6) * 4 = 120 bytes.
  const Op gp = make(OpKind::global_pool, 2, 3, 2, 3, 1);
  CHECK(flops(gp) == 24);
  CHECK(unique_dram_bytes(gp) == 120);
  // Add of two 1x2x3x3 maps: 18 FLOPs, 3 x 18 x 4 = 216 bytes.
  const Op add = make(OpKind::add, 1, 2, 3, 2, 3);
  CHECK(flops(add) == 18);
  CHECK(unique_dram_bytes(add) == 216);
  // SE on 1x4x2x2 with 2 squeeze channels: pool+scale 2*16, fcs 4*4*2 -> 64 FLOPs;
  // three passes over 16 elements + two 4x2 weight matrices = 64 elements = 256 bytes.
  const Op se = make(OpKind::se, 1, 4, 2, 2, 2);
  CHECK(flops(se) == 64);
  CHECK(unique_dram_bytes(se) == 256);
  // Channel gate on 1x4x2x2 deciding 3 channels: 16 adds + 2*4*3 -> 40 FLOPs;
  // (16 in + 12 weights + 3 decisions) * 4 = 124 bytes.
  const Op gate = make(OpKind::channel_gate, 1, 4, 2, 3, 1);
  CHECK(flops(gate) == 40);
  CHECK(unique_dram_bytes(gate) == 124);
}

TEST_CASE("masker: pooled 1x1 conv on the patch grid, then compaction") {
  // 1x4x8x8 input, S=4 on an 8x8 output: 2x2 grid = 4 cells, 2 active.
  // FLOPs: pool every input element (256) + 1x1 conv per cell 2*4*4 = 32 -> 288.
  // Bytes: input 256 + weights 4 + bias 1 = 261 elements * 4 = 1044; mask 4 + indices 2 = 24.
  Op m = make(OpKind::masker, 1, 4, 8, 1, 8);
  m.granularity = 4;
  m.active_patches = 2;
  CHECK(flops(m) == 288);
  CHECK(unique_dram_bytes(m) == 1068);
  // Fused into conv1 (2 -> 3 channels on 4x4, S=2 grid of 4 cells, 1 active):
  // conv 16 px x 4 ch x 2 MACs x 2 = 256, + 16 to pool the mask channel = 272 FLOPs.
  // Bytes: input 32 + weights 9 + mask weights 3 + output 48 = 92 * 4 = 368; + (4 + 1) * 4.
  Op mc = make(OpKind::masker_conv, 1, 2, 4, 3, 4);
  mc.granularity = 2;
  mc.active_patches = 1;
  CHECK(flops(mc) == 272);
  CHECK(unique_dram_bytes(mc) == 388);
}

TEST_CASE("gather, gathered conv, gather-fused conv, scatter, scatter-add, conv+scatter-add") {
  // Gather 3 patches of 4x4 pixels x 2 channels from a 1x2x8x8 map: reads 48 px (< 64 px
  // in the map), writes 48 px: (96 + 96) * 4 = 768 bytes + 3 indices * 4 = 780; no FLOPs.
  Op g = make(OpKind::gather, 1, 2, 8, 2, 8);
  g.granularity = 4;
  g.active_patches = 3;
  CHECK(flops(g) == 0);
  CHECK(unique_dram_bytes(g) == 780);
  // With 5 patches the halos overlap: reads are capped at the 64-pixel map.
  g.active_patches = 5;
  CHECK(unique_dram_bytes(g) == 4 * (64 * 2 + 5 * 16 * 2) + 5 * 4);

  // conv2 on gathered patches: 2 patches, S=2 out of 4x4 inputs (3x3 valid), 4 -> 4 channels.
  // FLOPs: 2 patches x 4 px x 4 ch x 36 MACs x 2 = 2304.
  // Bytes: input 2*16*4 = 128 + weights 148 + output 32 = 308 elements = 1232.
  Op c = make(OpKind::gathered_conv, 1, 4, 8, 4, 8, 3);
  c.granularity = 2;
  c.active_patches = 2;
  CHECK(c.patch_in_extent() == 4);
  CHECK(flops(c) == 2304);
  CHECK(unique_dram_bytes(c) == 1232);
  // The same conv reading the full map through the index list: input capped at the map's
  // 8*8*4 = 256 elements (2 patches * 16 px * 4 ch = 128 < 256), + 2 indices.
  c.kind = OpKind::gather_conv;
  CHECK(flops(c) == 2304);
  CHECK(unique_dram_bytes(c) == 1232 + 8);

  // Scatter-add of 2 patches of 2x2 x 3 channels: 24 adds; read patch, read + write residual:
  // 3 * 24 * 4 = 288 + 8 index bytes. The inactive-pixel pass (kind scatter) reads the shortcut
  // and writes the output at the 64 - 8 pixels the 2 patches leave, 56 * 3 * 4 * 2 = 1344
  // bytes, plus the mask of 4 x 4 patches, 16 bytes.
  Op sa = make(OpKind::scatter_add, 1, 3, 8, 3, 8);
  sa.granularity = 2;
  sa.active_patches = 2;
  CHECK(flops(sa) == 24);
  CHECK(unique_dram_bytes(sa) == 296);
  sa.kind = OpKind::scatter;
  CHECK(flops(sa) == 0);
  CHECK(sa.output_elements() == 56 * 3);
  CHECK(unique_dram_bytes(sa) == 1360);

  // conv3 (1x1, 4 -> 3) with scatter-add fused: 24 outputs x 4 MACs x 2 + 24 adds = 216;
  // input 2*4*4 = 32 + weights 15 + residual read and write 48 = 95 * 4 = 380 + 8.
  Op csa = make(OpKind::conv_scatter_add, 1, 4, 8, 3, 8);
  csa.granularity = 2;
  csa.active_patches = 2;
  CHECK(flops(csa) == 216);
  CHECK(unique_dram_bytes(csa) == 388);
}

TEST_CASE("no active patch means no work") {
  Op c = make(OpKind::gathered_conv, 4, 64, 56, 64, 56, 3);
  c.granularity = 4;
  c.active_patches = 0;
  CHECK(c.output_elements() == 0);
  CHECK(flops(c) == 0);
}

TEST_CASE("a 1x1 stride-2 conv reads only the pixels its taps land on") {
  // 8x8x4 -> 4x4x2, 1x1 stride 2: 16 input pixels x 4 channels read, not 64 x 4.
  const Op shortcut = make(OpKind::conv, 1, 4, 8, 2, 4, 1, 2);
  CHECK(unique_dram_bytes(shortcut) == 4.0 * (16 * 4 + (2 * 4 + 2) + 16 * 2));
  // A 3x3 stride-2 conv touches every row and column.
  const Op conv3 = make(OpKind::conv, 1, 4, 8, 2, 4, 3, 2);
  CHECK(unique_dram_bytes(conv3) == 4.0 * (64 * 4 + (2 * 36 + 2) + 16 * 2));
}
