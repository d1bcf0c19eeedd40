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
  return plan;
}

std::string to_string(const ConvPlan& p) {
  const std::string prec = p.tf32 ? "tf32" : "fp32";
  switch (p.impl) {
    case ConvImpl::igemm_128x128:
      return "igemm_" + prec + "_128x128";
    case ConvImpl::igemm_128x64:
      return "igemm_" + prec + "_128x64";
    case ConvImpl::igemm_64x64:
      return "igemm_" + prec + "_64x64";
    case ConvImpl::direct:
      return "direct_fp32";
  }
  return "?";
}

}  // namespace lasnet::kernels
