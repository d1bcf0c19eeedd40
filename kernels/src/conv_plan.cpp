#include "lasnet/kernels/conv_plan.hpp"

#include <algorithm>

namespace lasnet::kernels {

int ConvPlan::tile_rows() const {
  switch (impl) {
    case ConvImpl::igemm_128x128:
    case ConvImpl::igemm_128x64:
      return 128;
    case ConvImpl::igemm_64x64:
      return 64;
    case ConvImpl::direct:
      return 0;
  }
  return 0;
}

int ConvPlan::tile_cols() const {
  switch (impl) {
    case ConvImpl::igemm_128x128:
      return 128;
    case ConvImpl::igemm_128x64:
    case ConvImpl::igemm_64x64:
      return 64;
    case ConvImpl::direct:
      return 0;
  }
  return 0;
}

namespace {

// Split-K for the 3x3 convs whose tiles fill the block slots (two per SM, as above) poorly:
// the time of a grid is about ceil(blocks * s / slots) / s waves of the unsplit K, so pick the
// s in 1..8 that minimises it, keeping every slice at least 4 K chunks long and asking for a
// 10% gain to pay for the workspace pass. Only single-group convs whose output rows are the
// N columns (the reduce pass writes 4 channels at a time).
// Two slots per SM for every tile is a rule of thumb, not the residency: ptxas gives the fp32
// 128-row tiles 254 registers x 256 threads (1 block per SM) and tf32 64x64 3 per SM. A plan
// with those exact slots was measured (H100, batch 128) and lost in fp32: layer4.x dense
// 1.442 -> 1.675 ms, layer4.0 2.417 -> 2.642, dynamic layer3.x conv2 0.426 -> 0.523 (only the
// dense layer3.x conv2 gained, 0.909 -> 0.852), so the FFMA kernel gains from the shorter K
// slices for another reason than waves (docs/kernels.md); the rule of thumb stays until the
// choice is measured per shape.
int choose_splits(const ConvShape& a, long long blocks, bool tf32, int sm_count) {
  if (a.kernel < 3 || a.groups != 1 || a.out_c != a.cout_g || a.out_c % 4 != 0 || blocks <= 0)
    return 1;
  const long long slots = 2LL * sm_count;
  const int chunk = tf32 ? 32 : 16;
  const long long chunks =
      (static_cast<long long>(a.kernel) * a.kernel * a.cin_g + chunk - 1) / chunk;
  const auto waves = [&](long long s) {
    return static_cast<double>((blocks * s + slots - 1) / slots) / static_cast<double>(s);
  };
  int best = 1;
  for (int s = 2; s <= 8 && chunks / s >= 4; ++s) {
    if (waves(s) < waves(best) * 0.9) best = s;
  }
  return best;
}

}  // namespace

ConvPlan plan_conv(const ConvShape& a, bool tf32, int sm_count) {
  ConvPlan plan;
  plan.tf32 = tf32;
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
  plan.splits = choose_splits(a, blocks(plan.tile_rows(), plan.tile_cols()), tf32, sm_count);
  return plan;
}

std::string to_string(const ConvPlan& p) {
  const std::string prec = p.tf32 ? "tf32" : "fp32";
  const std::string split = p.splits > 1 ? "_splitk" + std::to_string(p.splits) : "";
  switch (p.impl) {
    case ConvImpl::igemm_128x128:
      return "igemm_" + prec + "_128x128" + split;
    case ConvImpl::igemm_128x64:
      return "igemm_" + prec + "_128x64" + split;
    case ConvImpl::igemm_64x64:
      return "igemm_" + prec + "_64x64" + split;
    case ConvImpl::direct:
      return "direct_fp32";
  }
  return "?";
}

}  // namespace lasnet::kernels
