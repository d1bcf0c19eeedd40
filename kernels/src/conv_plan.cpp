#include "lasnet/kernels/conv_plan.hpp"

#include <algorithm>
#include <limits>

namespace lasnet::kernels {

int ConvPlan::tile_rows() const {
  switch (impl) {
    case ConvImpl::igemm_256x128:
      return 256;
    case ConvImpl::igemm_128x128:
    case ConvImpl::igemm_128x64:
      return 128;
    case ConvImpl::igemm_64x64:
      return 64;
    case ConvImpl::direct:
      return 0;
    case ConvImpl::depthwise:
    case ConvImpl::grouped:
      return block_pixels;
  }
  return 0;
}

int ConvPlan::tile_cols() const {
  switch (impl) {
    case ConvImpl::igemm_256x128:
    case ConvImpl::igemm_128x128:
      return 128;
    case ConvImpl::igemm_128x64:
    case ConvImpl::igemm_64x64:
      return 64;
    case ConvImpl::direct:
      return 0;
    case ConvImpl::depthwise:
    case ConvImpl::grouped:
      return block_channels;
  }
  return 0;
}

namespace {

// K elements per pipeline chunk as conv.cu builds its tiles: FFMA (fp32) 16 floats, tensor-core
// (tf32, mma.sync and wgmma) 32.
constexpr int kFfmaChunk = 16, kTf32Chunk = 32;

// Split-K for the convs whose tiles fill the block slots (two per SM, as above) poorly: the
// time of a grid is about ceil(blocks * s / slots) / s waves of the unsplit K, so pick the s in
// 1..8 that minimises it, keeping every slice at least 4 K chunks long and asking for a 10% gain
// to pay for the workspace pass. Only single-group convs whose output rows are the N columns
// (the reduce pass writes 4 channels at a time), and not the fused masker's.
// 1x1 convs only where the split grid still fits in one wave of slots (batch 1: a few tiles
// each walk the whole K loop) and the split takes at least 12 chunks off each block's loop: on
// the H200 at batch 1 (docs/kernels.md, third round) layer4.0's shortcut (K = 1024, 32 blocks)
// went from 58 to 23 us (fp32) split in 8 and the gathered conv1 of layer3.x from 56 to 23,
// but a split in 2 of 8-16 chunks (conv3 at K = 256 in tf32) lost 1-4 us to the second pass,
// and so did layer2.0's shortcut split in 4 into 416 blocks (21 -> 24 us, fp32).
// Two slots per SM for every tile is a rule of thumb, not the residency: ptxas gives the fp32
// 128-row tiles 254 registers x 256 threads (1 block per SM) and tf32 64x64 3 per SM. A plan
// with those exact slots was measured (H100, batch 128) and lost in fp32: layer4.x dense
// 1.442 -> 1.675 ms, layer4.0 2.417 -> 2.642, dynamic layer3.x conv2 0.426 -> 0.523 (only the
// dense layer3.x conv2 gained, 0.909 -> 0.852), so the FFMA kernel gains from the shorter K
// slices for another reason than waves (docs/kernels.md); the rule of thumb stays until the
// choice is measured per shape. `chunk`: K elements per pipeline chunk of the kernel.
// The fp16 implicit GEMM takes the same rule (fp16_igemm_splits); its thresholds were measured
// on the fp32 and tf32 tiles only.
int choose_splits(const ConvShape& a, long long blocks, int chunk, int sm_count, int per_sm = 2) {
  if (a.fused_masker || a.groups != 1 || a.out_c != a.cout_g || a.out_c % 4 != 0 || blocks <= 0)
    return 1;
  const long long slots = static_cast<long long>(per_sm) * sm_count;
  const long long chunks =
      (static_cast<long long>(a.kernel) * a.kernel * a.cin_g + chunk - 1) / chunk;
  const auto waves = [&](long long s) {
    return static_cast<double>((blocks * s + slots - 1) / slots) / static_cast<double>(s);
  };
  int best = 1;
  for (int s = 2; s <= 8 && chunks / s >= 4; ++s) {
    if (a.kernel == 1 && (chunks - (chunks + s - 1) / s < 12 || blocks * s > slots)) continue;
    if (waves(s) < waves(best) * 0.9) best = s;
  }
  return best;
}

// Channel quads (4 channels, one thread each) across a depthwise block: the largest divisor of
// the quad count up to 32, so that no block carries idle lanes; threads are 256 (or just under).
int depthwise_block_quads(int quads) {
  for (int q = std::min(quads, 32); q > 1; --q) {
    if (quads % q == 0) return q;
  }
  return 1;
}
int depthwise_threads_y(int block_quads) {
  return std::max(1, 256 / block_quads);
}
}  // namespace

bool im2col_library_conv(const ConvShape& a, bool tf32) {
  return tf32 && a.kernel == 3 && a.groups == 1 && a.cin_g % 4 == 0 && a.cout_g >= 256 &&
         a.out_c == a.cout_g && a.rows >= 4096;
}

bool library_1x1_conv(const ConvShape& a, bool /*tf32: the same in both*/) {
  return a.kernel == 1 && a.groups == 1 && a.stride == 1;
}

ConvPlan plan_conv(const ConvShape& a, bool tf32, int sm_count) {
  ConvPlan plan;
  plan.tf32 = tf32;
  const bool small3x3 = a.groups > 1 && a.kernel == 3 && (a.stride == 1 || a.stride == 2) &&
                        a.src_c % 4 == 0 && a.out_c % 4 == 0;
  if (small3x3 && a.cin_g == 1 && a.cout_g == 1 && a.groups % 4 == 0) {
    plan.impl = ConvImpl::depthwise;
    const int quads = depthwise_block_quads(a.groups / 4);
    plan.block_pixels = 4 * depthwise_threads_y(quads);
    plan.block_channels = 4 * quads;
    return plan;
  }
  if (small3x3 && a.cout_g < 32 && a.cin_g <= 64 && a.cin_g % 4 == 0 && a.cout_g % 4 == 0) {
    plan.impl = ConvImpl::grouped;
    plan.block_pixels = 4 * 128;  // 128 threads
    // A thread's output channels: a whole 16-wide group (each input load then serves all of
    // its outputs; 1.2-1.4x faster at batch 128 on the H100) where the work still fills the
    // GPU and strips are full; with fewer blocks (batch 1) or 1-2 pixel rows (S = 1, 2) the
    // chunks of 8 were 1.5x faster. Else chunks of 8 or 4.
    const long long width = a.row_width > 0 ? a.row_width : 1 << 20;
    const long long strips =
        (std::max(a.rows, 1LL) + width - 1) / width * ((std::min(width, a.rows) + 3) / 4);
    const long long blocks16 = (strips + 127) / 128 * a.groups;
    if (a.cout_g == 16 && width >= 4 && blocks16 >= 4LL * sm_count) {
      plan.block_channels = 16;
    } else {
      plan.block_channels = a.cout_g % 8 == 0 ? 8 : 4;
    }
    return plan;
  }
  // The tiled kernel loads 16-byte vectors and stages a whole N tile per group.
  const bool vec = a.cin_g % 4 == 0 && a.src_c % 4 == 0 && a.out_c % 4 == 0 &&
                   (a.groups == 1 || a.cout_g % 4 == 0);
  if (!vec || (a.groups > 1 && a.cout_g < 32)) {
    plan.impl = ConvImpl::direct;
    return plan;
  }
  const auto blocks = [&](int bm, int bn) {
    return ((std::max(a.rows, 1LL) + bm - 1) / bm) * a.groups * ((a.cout_g + bn - 1) / bn);
  };
  // The largest tile that still gives two blocks per SM.
  const long long enough = 2LL * sm_count;
  if (a.cout_g > 64 && blocks(128, 128) >= enough) {
    plan.impl = ConvImpl::igemm_128x128;
  } else if (blocks(128, 64) >= enough) {
    plan.impl = ConvImpl::igemm_128x64;
  } else {
    plan.impl = ConvImpl::igemm_64x64;
  }
  plan.splits = choose_splits(a, blocks(plan.tile_rows(), plan.tile_cols()),
                              tf32 ? kTf32Chunk : kFfmaChunk, sm_count);
  return plan;
}

ConvPlan use_wgmma(ConvPlan plan, const ConvShape& a, int sm_count) {
  // 64x64 plans too for 3x3 convs with wide rows and N (batch 128's gathered layer4 conv2:
  // 3136 rows at d = 0.5, N = 512, where mma.sync's 64x64 tile ran at ~80 TFLOP/s; wgmma's
  // 256x128 split in 2 or 5 took it 1.5-2.7x faster). Not 1x1 convs: batch 1's layer1.0
  // shortcut (3136 rows, N = 256) went from 13 to 17.5 us as 26 unsplit wgmma blocks.
  const bool tiled =
      plan.impl == ConvImpl::igemm_128x128 || plan.impl == ConvImpl::igemm_128x64 ||
      (plan.impl == ConvImpl::igemm_64x64 && a.kernel == 3 && a.rows >= 2048 && a.cout_g >= 256);
  if (!plan.tf32 || !tiled) return plan;
  // Per SM and cycle on the H100/H200: ~1890 tf32 FLOPs by wgmma (494 TFLOP/s, 132 SMs, 1.98
  // GHz) against ~35 bytes of L2 (9.3 TB/s measured on the H200).
  constexpr double kFlopsPerCycle = 1890.0, kL2BytesPerCycle = 35.0;
  struct Candidate {
    ConvImpl impl;
    int bm, bn, slots;  // slots: blocks per SM
  };
  // (A 128x128 wgmma tile, two per SM, loses to 256x128 at every size under this cost: its
  // bytes per FLOP are 1.33x and its two slots per SM do not make up for it.)
  const Candidate candidates[] = {{ConvImpl::igemm_256x128, 256, 128, 1},
                                  {ConvImpl::igemm_128x64, 128, 64, 2}};
  double best_time = std::numeric_limits<double>::infinity();
  for (const Candidate& c : candidates) {
    if (c.bn == 128 && a.cout_g <= 64) continue;  // half the tile would be idle
    const long long blocks =
        ((std::max(a.rows, 1LL) + c.bm - 1) / c.bm) * a.groups * ((a.cout_g + c.bn - 1) / c.bn);
    const double per_k =
        std::max(2.0 * c.bm * c.bn / kFlopsPerCycle, 4.0 * (c.bm + c.bn) / kL2BytesPerCycle);
    const int splits = choose_splits(a, blocks, kTf32Chunk, sm_count, c.slots);
    const long long slots = static_cast<long long>(c.slots) * sm_count;
    const double waves =
        static_cast<double>((blocks * splits + slots - 1) / slots) / static_cast<double>(splits);
    const double time = waves * c.slots * per_k;
    if (time < best_time) {
      best_time = time;
      plan.impl = c.impl;
      plan.splits = splits;
    }
  }
  plan.wgmma = true;
  return plan;
}

int fp16_igemm_splits(const ConvShape& a, int sm_count) {
  const long long blocks = ((std::max(a.rows, 1LL) + kFp16TileRows - 1) / kFp16TileRows) *
                           ((a.cout_g + kFp16TileCols - 1) / kFp16TileCols);
  // Three slots per SM, the kernel's residency (ptxas: 78 registers x 256 threads, 36 KB of
  // stages). The two-slot rule of thumb split layer3's conv2 of ResNet-101 at batch 128 (392
  // blocks, under one wave of three) in 2 and lost 4% a block (H100, bench_kernels fp16 A/B,
  // docs/kernels.md).
  return choose_splits(a, blocks, kFp16ChunkHalves, sm_count, 3);
}

std::string fp16_igemm_kernel(int splits) {
  return std::string(kFp16IgemmKernel) + (splits > 1 ? "_splitk" + std::to_string(splits) : "");
}

std::string to_string(const ConvPlan& p) {
  const std::string prec = p.wgmma ? "wgmma" : p.tf32 ? "tf32" : "fp32";
  const std::string split = p.splits > 1 ? "_splitk" + std::to_string(p.splits) : "";
  switch (p.impl) {
    case ConvImpl::igemm_256x128:
      return "igemm_" + prec + "_256x128" + split;
    case ConvImpl::igemm_128x128:
      return "igemm_" + prec + "_128x128" + split;
    case ConvImpl::igemm_128x64:
      return "igemm_" + prec + "_128x64" + split;
    case ConvImpl::igemm_64x64:
      return "igemm_" + prec + "_64x64" + split;
    case ConvImpl::direct:
      return "direct_fp32";
    case ConvImpl::depthwise:
      return "depthwise_fp32";
    case ConvImpl::grouped:
      return "grouped_fp32";
  }
  return "?";
}

}  // namespace lasnet::kernels
