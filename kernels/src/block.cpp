#include "lasnet/kernels/block.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>

#include <fmt/format.h>

#include "lasnet/common/error.hpp"

namespace lasnet::kernels {

std::string_view to_string(Precision p) {
  switch (p) {
    case Precision::fp32:
      return "fp32";
    case Precision::tf32:
      return "tf32";
    case Precision::fp16:
      return "fp16";
  }
  return "?";
}

std::optional<Precision> parse_precision(std::string_view text) {
  for (const Precision p : {Precision::fp32, Precision::tf32, Precision::fp16}) {
    if (text == to_string(p)) return p;
  }
  return std::nullopt;
}

std::string_view to_string(BlockKind kind) {
  switch (kind) {
    case BlockKind::bottleneck:
      return "bottleneck";
    case BlockKind::basic:
      return "basic";
    case BlockKind::separable:
      return "separable";
  }
  return "?";
}

std::string to_string(const BottleneckShape& s) {
  // Bottlenecks without SE keep the form of the keys in committed measurement files.
  std::string out = fmt::format("n{} {}x{} {}-{}-{} s{} g{}", s.batch, s.height, s.width,
                                s.in_channels, s.mid_channels, s.out_channels, s.stride, s.groups);
  if (s.kind != BlockKind::bottleneck) out += fmt::format(" {}", to_string(s.kind));
  if (s.se_channels > 0) out += fmt::format(" se{}", s.se_channels);
  return out;
}

std::string to_string(const Fusion& f) {
  std::string out;
  const auto add = [&out](bool on, const char* name) {
    if (!on) return;
    if (!out.empty()) out += '+';
    out += name;
  };
  add(f.union_conv1, "union");
  add(f.masker_conv1, "masker");
  add(f.gather_conv1, "gather");
  add(f.conv3_scatter_add, "scatter");
  return out.empty() ? "none" : out;
}

PatchGrid patch_grid(const BottleneckShape& shape, std::int64_t granularity) {
  PatchGrid g;
  g.s = granularity;
  g.rows = patches_per_side(shape.out_height(), granularity);
  g.cols = patches_per_side(shape.out_width(), granularity);
  g.per_image = g.rows * g.cols;
  g.input_step = granularity * shape.stride;
  if (shape.basic()) {
    g.mid_extent = granularity + 2;
    g.mid_step = granularity;
    g.halo_extent = patch_input_extent(g.mid_extent, shape.stride, 3);
    g.halo_offset = -shape.stride - 1;  // conv1 output -1 reads x from -stride - 1
  } else {
    g.halo_extent = patch_input_extent(granularity, shape.stride, 3);
    g.halo_offset = -1;
    g.mid_extent = g.halo_extent;
    g.mid_step = g.input_step;
  }
  return g;
}

std::vector<std::int32_t> needed_conv1_pixels(const BottleneckShape& shape,
                                              std::int64_t granularity,
                                              const std::vector<std::uint8_t>& mask) {
  const PatchGrid g = patch_grid(shape, granularity);
  const std::int64_t h = shape.basic() ? shape.out_height() : shape.height;
  const std::int64_t w = shape.basic() ? shape.out_width() : shape.width;
  if (static_cast<std::int64_t>(mask.size()) != shape.batch * g.per_image) {
    throw lasnet::Error(fmt::format("needed_conv1_pixels: mask has {} entries, not {}", mask.size(),
                                    shape.batch * g.per_image));
  }
  std::vector<std::uint8_t> needed(static_cast<std::size_t>(shape.batch * h * w), 0);
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(mask.size()); ++i) {
    if (mask[static_cast<std::size_t>(i)] == 0) continue;
    const std::int64_t n = i / g.per_image, q = i % g.per_image;
    const std::int64_t y0 = (q / g.cols) * g.mid_step - 1, x0 = (q % g.cols) * g.mid_step - 1;
    for (std::int64_t y = std::max<std::int64_t>(y0, 0); y < std::min(y0 + g.mid_extent, h); ++y) {
      for (std::int64_t x = std::max<std::int64_t>(x0, 0); x < std::min(x0 + g.mid_extent, w);
           ++x) {
        needed[static_cast<std::size_t>((n * h + y) * w + x)] = 1;
      }
    }
  }
  std::vector<std::int32_t> pixels;
  for (std::size_t p = 0; p < needed.size(); ++p) {
    if (needed[p] != 0) pixels.push_back(static_cast<std::int32_t>(p));
  }
  return pixels;
}

namespace {
// fp16 runs the dense GEMMs through cuBLASLt (fp16 storage, fp32 sums) and a dynamic block's
// GEMMs over patch rows as the fp16 implicit GEMM (conv_f16.cuh), with typed elementwise
// kernels around them. The fused masker needs the implicit GEMM's extra logit channel, which
// the fp16 one does not have.
Support check_supported_fp16(const BlockConfig& c) {
  const auto& s = c.shape;
  if (s.kind != BlockKind::bottleneck) {
    return {false, fmt::format("fp16: {} blocks are not implemented (bottlenecks are)",
                               to_string(s.kind))};
  }
  if (s.groups != 1) {
    return {false, "fp16: grouped and depthwise conv2 are not implemented (one group is)"};
  }
  if (s.se_channels > 0) return {false, "fp16: SE is not implemented"};
  if (s.in_channels % 8 != 0 || s.mid_channels % 8 != 0 || s.out_channels % 8 != 0) {
    return {false, "fp16: channels must be multiples of 8 (16-byte vectors of halves)"};
  }
  if (c.wgmma.value_or(false) || c.legacy_direct_conv || !c.im2col_conv2.value_or(true) ||
      !c.library_1x1.value_or(true)) {
    return {false,
            "fp16: dense convs run as cuBLASLt GEMMs (im2col for 3x3); the implicit-GEMM "
            "choices (wgmma, im2col_conv2 = false, library_1x1 = false, legacy_direct_conv) "
            "are fp32/tf32 only"};
  }
  if (c.dynamic) {
    const auto& d = *c.dynamic;
    if (c.fp16_library_dynamic && (d.fusion.gather_conv1 || d.fusion.conv3_scatter_add)) {
      return {false,
              "fp16: the gather/scatter fusions need the fp16 implicit GEMM, not "
              "fp16_library_dynamic"};
    }
    if (d.fusion.masker_conv1 && !d.library_conv1) {
      return {false,
              "fp16: the masker fuses into conv1 only in the fp32/tf32 implicit GEMM (the logit "
              "channel); masker_conv1 needs library_conv1 (cuBLASLt conv1, separate logits pass)"};
    }
  }
  return {};
}
}  // namespace

bool fusion_supported(Precision precision, const Fusion& fusion, bool library_conv1) {
  if (precision != Precision::fp16) return true;
  return !fusion.masker_conv1 || library_conv1;
}

Support check_supported(const BlockConfig& c) {
  const auto& s = c.shape;
  if (s.batch < 1 || s.height < 1 || s.width < 1 || s.in_channels < 1 || s.mid_channels < 1 ||
      s.out_channels < 1 || s.stride < 1 || s.groups < 1) {
    return {false, "every extent must be positive"};
  }
  if (s.mid_channels % s.groups != 0) return {false, "groups must divide mid_channels"};
  if (s.basic() && s.groups != 1) return {false, "a basic block's convs have one group"};
  if (s.se_channels < 0) return {false, "se_channels must be >= 0"};
  if (s.basic() && s.se_channels > 0) return {false, "SE in a basic block is not implemented"};
  if (s.separable() && s.mid_channels != s.in_channels) {
    return {false,
            "a separable block has no conv1: its conv2 reads x (mid_channels = in_channels)"};
  }
  if (s.separable() && s.se_channels > 0) {
    return {false, "SE in a separable block is not implemented"};
  }
  if (s.out_height() < 1 || s.out_width() < 1) return {false, "the map is too small"};
  if (c.input_copies < 1) return {false, "input_copies must be >= 1"};
  if (c.dynamic) {
    const auto& d = *c.dynamic;
    if (d.granularity < 1) return {false, "granularity must be >= 1"};
    if (d.density < 0 || d.density > 1) return {false, "density must be in [0, 1]"};
    const PatchGrid g = patch_grid(s, d.granularity);
    if (!d.mask.empty() && static_cast<std::int64_t>(d.mask.size()) != s.batch * g.per_image) {
      return {false, "explicit mask must have batch * patch rows * patch cols entries"};
    }
    if (s.basic() && (d.fusion.masker_conv1 || d.library_conv1)) {
      return {false, "a basic block's conv1 is 3x3: the masker does not fuse into it"};
    }
    if (d.fusion.union_conv1 && d.fusion.masker_conv1) {
      return {false,
              "union_conv1 and masker_conv1 exclude each other (masker_conv1's conv1 is dense)"};
    }
    if (d.fusion.union_conv1 && s.basic()) {
      return {false, "union_conv1 is for bottleneck blocks only (a basic block's conv1 is 3x3)"};
    }
    if (s.separable() && (d.fusion.masker_conv1 || d.fusion.union_conv1 || d.library_conv1)) {
      return {false,
              "a separable block has no conv1 for the masker or the union form to fuse into"};
    }
    if (d.in_place_residual && s.has_projection()) {
      return {false,
              "an in-place residual needs an identity shortcut (stride 1, in = out channels)"};
    }
  }
  if (c.precision == Precision::fp16) return check_supported_fp16(c);
  return {};
}

bool in_place(const BlockConfig& c) {
  return c.dynamic && c.dynamic->in_place_residual;
}

std::uint64_t random_stream(TensorId id, std::int64_t copy) {
  return static_cast<std::uint64_t>(id) + 100u * static_cast<std::uint64_t>(copy);
}

float random_scale(const BottleneckShape& s, TensorId id) {
  const auto he = [](std::int64_t fan_in) {
    return static_cast<float>(std::sqrt(3.0 / static_cast<double>(fan_in)));
  };
  switch (id) {
    case TensorId::x:
      return 1.0f;
    case TensorId::w1:
      return he(s.basic() ? 9 * s.in_channels : s.in_channels);
    case TensorId::w2:
      return he(9 * (s.mid_channels / s.groups));
    case TensorId::w3:
    case TensorId::wse1:
      return he(s.mid_channels);
    case TensorId::wse2:
      return he(std::max<std::int64_t>(s.se_channels, 1));
    case TensorId::wsc:
      return he(s.in_channels);
    case TensorId::wm:
      return he(s.in_channels);
    case TensorId::b1:
    case TensorId::b2:
    case TensorId::b3:
    case TensorId::bsc:
    case TensorId::bse1:
    case TensorId::bse2:
      return 0.1f;
  }
  return 1.0f;
}

float round_to_fp16(float v) {
  if (!std::isfinite(v)) return v;
  const float a = std::abs(v);
  if (a >= 65520.0f) return std::copysign(std::numeric_limits<float>::infinity(), v);
  int e = 0;
  (void)std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  // binary16 keeps 11 significant bits down to 2^-14, then a fixed spacing of 2^-24.
  const float ulp = std::ldexp(1.0f, std::max(e - 11, -24));
  // a / ulp is exact (a power-of-two scale); nearbyint rounds half to even by default.
  return std::copysign(std::nearbyint(a / ulp) * ulp, v);
}

namespace {
std::vector<float> fill(const BlockConfig& c, TensorId id, std::int64_t count) {
  std::vector<float> v(static_cast<std::size_t>(count));
  const float scale = random_scale(c.shape, id);
  const std::uint64_t stream = random_stream(id);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = scale * random_uniform(c.seed, stream, i);
  // fp16 blocks hold the values rounded to half (as the device's fill converts them).
  if (c.precision == Precision::fp16) {
    for (float& e : v) e = round_to_fp16(e);
  }
  return v;
}
}  // namespace

BlockData make_block_data(const BlockConfig& c) {
  const auto& s = c.shape;
  BlockData d;
  d.shape = s;
  d.x = fill(c, TensorId::x, s.batch * s.height * s.width * s.in_channels);
  if (in_place(c)) {  // the in-place residual's precondition: x is a ReLU output
    for (float& v : d.x) v = std::abs(v);
  }
  if (s.basic()) {
    d.w1 = fill(c, TensorId::w1, s.mid_channels * 9 * s.in_channels);
    d.b1 = fill(c, TensorId::b1, s.mid_channels);
    d.w2 = fill(c, TensorId::w2, s.out_channels * 9 * s.mid_channels);
    d.b2 = fill(c, TensorId::b2, s.out_channels);
  } else {
    if (!s.separable()) {
      d.w1 = fill(c, TensorId::w1, s.mid_channels * s.in_channels);
      d.b1 = fill(c, TensorId::b1, s.mid_channels);
    }
    d.w2 = fill(c, TensorId::w2, s.mid_channels * 9 * (s.mid_channels / s.groups));
    d.b2 = fill(c, TensorId::b2, s.mid_channels);
    d.w3 = fill(c, TensorId::w3, s.out_channels * s.mid_channels);
    d.b3 = fill(c, TensorId::b3, s.out_channels);
  }
  if (s.se_channels > 0) {
    d.wse1 = fill(c, TensorId::wse1, s.se_channels * s.mid_channels);
    d.bse1 = fill(c, TensorId::bse1, s.se_channels);
    d.wse2 = fill(c, TensorId::wse2, s.mid_channels * s.se_channels);
    d.bse2 = fill(c, TensorId::bse2, s.mid_channels);
  }
  if (s.has_projection()) {
    d.wsc = fill(c, TensorId::wsc, s.out_channels * s.in_channels);
    d.bsc = fill(c, TensorId::bsc, s.out_channels);
  }
  d.wm = fill(c, TensorId::wm, s.in_channels);
  return d;
}

float masker_bias_for_density(std::vector<float> logits, double density) {
  const auto n = static_cast<std::int64_t>(logits.size());
  if (n == 0) return 0.0f;
  const std::int64_t k = active_patches(density, n);
  std::sort(logits.begin(), logits.end(), std::greater<>());
  // Active iff logit + bias > 0. Keep the k largest: threshold between logits[k-1] and logits[k].
  if (k == 0) return -(logits.front() + 1.0f + std::abs(logits.front()));
  if (k == n) return -(logits.back() - 1.0f - std::abs(logits.back()));
  const double mid = 0.5 * (static_cast<double>(logits[static_cast<std::size_t>(k - 1)]) +
                            static_cast<double>(logits[static_cast<std::size_t>(k)]));
  return static_cast<float>(-mid);
}

}  // namespace lasnet::kernels
