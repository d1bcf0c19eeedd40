#include "lasnet/kernels/reference.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstddef>
#include <limits>
#include <thread>

namespace lasnet::kernels::ref {
namespace {

using index_t = std::int64_t;

std::size_t sz(index_t v) {
  return static_cast<std::size_t>(v);
}

// Runs body(i) for i in [0, n) on up to hardware_concurrency threads (plain C++: no OpenMP).
template <class Body>
void parallel_for(index_t n, const Body& body) {
  const index_t threads =
      std::clamp<index_t>(static_cast<index_t>(std::thread::hardware_concurrency()), 1, 64);
  if (n < 2 || threads == 1) {
    for (index_t i = 0; i < n; ++i) body(i);
    return;
  }
  const index_t workers = std::min(threads, n);
  std::vector<std::jthread> pool;
  pool.reserve(sz(workers));
  for (index_t t = 0; t < workers; ++t) {
    pool.emplace_back([t, workers, n, &body] {
      for (index_t i = t; i < n; i += workers) body(i);
    });
  }
}

struct PatchPos {
  index_t n, py, px;
};
PatchPos decode(std::int32_t index, const PatchGrid& g) {
  const index_t r = index % g.per_image;
  return {index / g.per_image, r / g.cols, r % g.cols};
}

}  // namespace

MapShape conv_output_shape(MapShape in, const ConvParams& p) {
  return {in.n, conv_output_extent(in.h, p.kernel, p.stride, p.pad),
          conv_output_extent(in.w, p.kernel, p.stride, p.pad), p.out_channels};
}

std::vector<float> conv2d(const std::vector<float>& x, MapShape in, const std::vector<float>& w,
                          const std::vector<float>& bias, const ConvParams& p,
                          const std::vector<float>* residual) {
  assert(static_cast<index_t>(x.size()) == in.elements());
  const MapShape out = conv_output_shape(in, p);
  const index_t cin_g = in.c / p.groups, cout_g = p.out_channels / p.groups;
  assert(static_cast<index_t>(w.size()) == p.out_channels * p.kernel * p.kernel * cin_g);
  std::vector<float> y(sz(out.elements()));
  parallel_for(out.n * out.h, [&](index_t row) {
    const index_t n = row / out.h, ho = row % out.h;
    for (index_t wo = 0; wo < out.w; ++wo) {
      for (index_t co = 0; co < p.out_channels; ++co) {
        const index_t g = co / cout_g;
        double acc = bias.empty() ? 0.0 : bias[sz(co)];
        for (index_t ky = 0; ky < p.kernel; ++ky) {
          const index_t hi = ho * p.stride - p.pad + ky;
          if (hi < 0 || hi >= in.h) continue;
          for (index_t kx = 0; kx < p.kernel; ++kx) {
            const index_t wi = wo * p.stride - p.pad + kx;
            if (wi < 0 || wi >= in.w) continue;
            const float* xp = &x[sz(((n * in.h + hi) * in.w + wi) * in.c + g * cin_g)];
            const float* wp = &w[sz(((co * p.kernel + ky) * p.kernel + kx) * cin_g)];
            for (index_t ci = 0; ci < cin_g; ++ci) {
              acc += static_cast<double>(xp[ci]) * static_cast<double>(wp[ci]);
            }
          }
        }
        const index_t o = ((n * out.h + ho) * out.w + wo) * out.c + co;
        if (residual != nullptr) acc += (*residual)[sz(o)];
        if (p.relu && acc < 0) acc = 0;
        y[sz(o)] = static_cast<float>(acc);
      }
    }
  });
  return y;
}

std::vector<float> masker_logits(const std::vector<float>& x, MapShape in, const PatchGrid& g,
                                 const std::vector<float>& wm, float bm) {
  std::vector<float> logits(sz(in.n * g.per_image));
  parallel_for(in.n * g.per_image, [&](index_t i) {
    const index_t n = i / g.per_image, py = (i % g.per_image) / g.cols, px = i % g.cols;
    const index_t y0 = py * g.input_step, y1 = std::min(y0 + g.input_step, in.h);
    const index_t x0 = px * g.input_step, x1 = std::min(x0 + g.input_step, in.w);
    double acc = 0;
    for (index_t y = y0; y < y1; ++y) {
      for (index_t xx = x0; xx < x1; ++xx) {
        const float* xp = &x[sz(((n * in.h + y) * in.w + xx) * in.c)];
        for (index_t c = 0; c < in.c; ++c) acc += static_cast<double>(xp[c]) * wm[sz(c)];
      }
    }
    logits[sz(i)] = static_cast<float>(acc / static_cast<double>((y1 - y0) * (x1 - x0)) + bm);
  });
  return logits;
}

std::vector<float> pixel_logits(const std::vector<float>& x, MapShape in,
                                const std::vector<float>& wm) {
  std::vector<float> out(sz(in.n * in.h * in.w));
  parallel_for(in.n * in.h, [&](index_t row) {
    for (index_t xx = 0; xx < in.w; ++xx) {
      const index_t pix = row * in.w + xx;
      double acc = 0;
      for (index_t c = 0; c < in.c; ++c)
        acc += static_cast<double>(x[sz(pix * in.c + c)]) * wm[sz(c)];
      out[sz(pix)] = static_cast<float>(acc);
    }
  });
  return out;
}

std::vector<float> pool_pixel_logits(const std::vector<float>& pl, MapShape in, const PatchGrid& g,
                                     float bm) {
  std::vector<float> logits(sz(in.n * g.per_image));
  for (index_t i = 0; i < in.n * g.per_image; ++i) {
    const index_t n = i / g.per_image, py = (i % g.per_image) / g.cols, px = i % g.cols;
    const index_t y0 = py * g.input_step, y1 = std::min(y0 + g.input_step, in.h);
    const index_t x0 = px * g.input_step, x1 = std::min(x0 + g.input_step, in.w);
    double acc = 0;
    for (index_t y = y0; y < y1; ++y) {
      for (index_t xx = x0; xx < x1; ++xx) acc += pl[sz((n * in.h + y) * in.w + xx)];
    }
    logits[sz(i)] = static_cast<float>(acc / static_cast<double>((y1 - y0) * (x1 - x0)) + bm);
  }
  return logits;
}

std::vector<std::uint8_t> threshold(const std::vector<float>& logits) {
  std::vector<std::uint8_t> mask(logits.size());
  for (std::size_t i = 0; i < logits.size(); ++i) mask[i] = logits[i] > 0.0f ? 1 : 0;
  return mask;
}

std::vector<std::int32_t> compact(const std::vector<std::uint8_t>& mask) {
  std::vector<std::int32_t> idx;
  for (std::size_t i = 0; i < mask.size(); ++i) {
    if (mask[i] != 0) idx.push_back(static_cast<std::int32_t>(i));
  }
  return idx;
}

std::vector<float> gather_patches(const std::vector<float>& map, MapShape in,
                                  const std::vector<std::int32_t>& index, const PatchGrid& g,
                                  index_t extent, index_t step, index_t offset) {
  const index_t per_patch = extent * extent * in.c;
  std::vector<float> out(index.size() * sz(per_patch), 0.0f);
  for (std::size_t p = 0; p < index.size(); ++p) {
    const PatchPos pos = decode(index[p], g);
    for (index_t ey = 0; ey < extent; ++ey) {
      const index_t y = pos.py * step + offset + ey;
      if (y < 0 || y >= in.h) continue;
      for (index_t ex = 0; ex < extent; ++ex) {
        const index_t xx = pos.px * step + offset + ex;
        if (xx < 0 || xx >= in.w) continue;
        const float* src = &map[sz(((pos.n * in.h + y) * in.w + xx) * in.c)];
        float* dst = &out[p * sz(per_patch) + sz((ey * extent + ex) * in.c)];
        std::copy(src, src + in.c, dst);
      }
    }
  }
  return out;
}

std::vector<float> gather_halo(const std::vector<float>& map, MapShape in,
                               const std::vector<std::int32_t>& index, const PatchGrid& g) {
  return gather_patches(map, in, index, g, g.halo_extent, g.input_step, -1);
}

std::vector<float> conv1x1_rows(const std::vector<float>& rows, index_t cin,
                                const std::vector<float>& w, const std::vector<float>& bias,
                                index_t cout, bool relu) {
  const index_t n = static_cast<index_t>(rows.size()) / cin;
  return conv2d(rows, {n, 1, 1, cin}, w, bias, {cout, 1, 1, 0, 1, relu});
}

void zero_halo_outside(std::vector<float>& rows, index_t channels,
                       const std::vector<std::int32_t>& index, const PatchGrid& g, index_t map_h,
                       index_t map_w) {
  zero_patch_outside(rows, channels, index, g, g.halo_extent, g.input_step, -1, map_h, map_w);
}

void zero_patch_outside(std::vector<float>& rows, index_t channels,
                        const std::vector<std::int32_t>& index, const PatchGrid& g, index_t e,
                        index_t step, index_t offset, index_t map_h, index_t map_w) {
  for (std::size_t p = 0; p < index.size(); ++p) {
    const PatchPos pos = decode(index[p], g);
    for (index_t ey = 0; ey < e; ++ey) {
      for (index_t ex = 0; ex < e; ++ex) {
        const index_t y = pos.py * step + offset + ey, xx = pos.px * step + offset + ex;
        if (y >= 0 && y < map_h && xx >= 0 && xx < map_w) continue;
        float* r = &rows[(p * sz(e * e) + sz(ey * e + ex)) * sz(channels)];
        std::fill(r, r + channels, 0.0f);
      }
    }
  }
}

std::vector<float> conv3x3_patches(const std::vector<float>& halos, index_t patches,
                                   const PatchGrid& g, index_t channels, index_t stride,
                                   index_t groups, const std::vector<float>& w,
                                   const std::vector<float>& bias) {
  if (patches == 0) return {};
  return conv2d(halos, {patches, g.halo_extent, g.halo_extent, channels}, w, bias,
                {channels, 3, stride, 0, groups, true});
}

void scatter_add_relu(std::vector<float>& out, const std::vector<float>& residual,
                      const std::vector<float>& rows, const std::vector<std::int32_t>& index,
                      const PatchGrid& g, MapShape os) {
  for (std::size_t p = 0; p < index.size(); ++p) {
    const PatchPos pos = decode(index[p], g);
    for (index_t oy = 0; oy < g.s; ++oy) {
      const index_t y = pos.py * g.s + oy;
      if (y >= os.h) continue;
      for (index_t ox = 0; ox < g.s; ++ox) {
        const index_t xx = pos.px * g.s + ox;
        if (xx >= os.w) continue;
        const index_t pix = ((pos.n * os.h + y) * os.w + xx) * os.c;
        const index_t row = (static_cast<index_t>(p) * g.s * g.s + oy * g.s + ox) * os.c;
        for (index_t c = 0; c < os.c; ++c) {
          const double v = static_cast<double>(residual[sz(pix + c)]) + rows[sz(row + c)];
          out[sz(pix + c)] = static_cast<float>(v > 0 ? v : 0);
        }
      }
    }
  }
}

void add_inactive(std::vector<float>& out, const std::vector<float>& residual,
                  const std::vector<std::uint8_t>& mask, const PatchGrid& g, MapShape os) {
  for (index_t n = 0; n < os.n; ++n) {
    for (index_t y = 0; y < os.h; ++y) {
      for (index_t xx = 0; xx < os.w; ++xx) {
        if (mask[sz(n * g.per_image + (y / g.s) * g.cols + xx / g.s)] != 0) continue;
        const index_t pix = ((n * os.h + y) * os.w + xx) * os.c;
        for (index_t c = 0; c < os.c; ++c) out[sz(pix + c)] = std::max(residual[sz(pix + c)], 0.0f);
      }
    }
  }
}

namespace {
std::vector<float> se_excite(const std::vector<double>& sums, const std::vector<index_t>& counts,
                             index_t c, const BlockData& d) {
  const index_t n = static_cast<index_t>(counts.size()), r = d.shape.se_channels;
  std::vector<float> scale(sz(n * c));
  std::vector<double> hidden(sz(r));
  for (index_t i = 0; i < n; ++i) {
    const double inv = counts[sz(i)] > 0 ? 1.0 / static_cast<double>(counts[sz(i)]) : 0.0;
    for (index_t j = 0; j < r; ++j) {
      double acc = d.bse1[sz(j)];
      for (index_t k = 0; k < c; ++k) acc += d.wse1[sz(j * c + k)] * sums[sz(i * c + k)] * inv;
      hidden[sz(j)] = std::max(acc, 0.0);
    }
    for (index_t k = 0; k < c; ++k) {
      double acc = d.bse2[sz(k)];
      for (index_t j = 0; j < r; ++j) acc += d.wse2[sz(k * r + j)] * hidden[sz(j)];
      scale[sz(i * c + k)] = static_cast<float>(1.0 / (1.0 + std::exp(-acc)));
    }
  }
  return scale;
}
}  // namespace

std::vector<float> se_scale_map(const std::vector<float>& map, MapShape m, const BlockData& d) {
  std::vector<double> sums(sz(m.n * m.c), 0.0);
  for (index_t i = 0; i < m.n; ++i) {
    for (index_t p = 0; p < m.h * m.w; ++p) {
      for (index_t k = 0; k < m.c; ++k)
        sums[sz(i * m.c + k)] += map[sz((i * m.h * m.w + p) * m.c + k)];
    }
  }
  return se_excite(sums, std::vector<index_t>(sz(m.n), m.h * m.w), m.c, d);
}

std::vector<float> se_scale_patches(const std::vector<float>& rows,
                                    const std::vector<std::int32_t>& index, const PatchGrid& g,
                                    MapShape os, const BlockData& d) {
  std::vector<double> sums(sz(os.n * os.c), 0.0);
  std::vector<index_t> counts(sz(os.n), 0);
  for (std::size_t p = 0; p < index.size(); ++p) {
    const PatchPos pos = decode(index[p], g);
    for (index_t oy = 0; oy < g.s; ++oy) {
      for (index_t ox = 0; ox < g.s; ++ox) {
        if (pos.py * g.s + oy >= os.h || pos.px * g.s + ox >= os.w) continue;  // clipped patch
        ++counts[sz(pos.n)];
        const index_t row = (static_cast<index_t>(p) * g.s * g.s + oy * g.s + ox) * os.c;
        for (index_t k = 0; k < os.c; ++k) sums[sz(pos.n * os.c + k)] += rows[sz(row + k)];
      }
    }
  }
  return se_excite(sums, counts, os.c, d);
}

std::vector<float> se_apply_map(const std::vector<float>& map, MapShape m,
                                const std::vector<float>& scale) {
  std::vector<float> out(map.size());
  for (index_t i = 0; i < m.n * m.h * m.w; ++i) {
    const index_t n = i / (m.h * m.w);
    for (index_t k = 0; k < m.c; ++k)
      out[sz(i * m.c + k)] = map[sz(i * m.c + k)] * scale[sz(n * m.c + k)];
  }
  return out;
}

std::vector<float> se_apply_patches(const std::vector<float>& rows, index_t channels,
                                    const std::vector<std::int32_t>& index, const PatchGrid& g,
                                    const std::vector<float>& scale) {
  std::vector<float> out(rows.size());
  const index_t per_patch = g.s * g.s * channels;
  for (std::size_t p = 0; p < index.size(); ++p) {
    const index_t n = decode(index[p], g).n;
    for (index_t i = 0; i < per_patch; ++i) {
      const index_t e = static_cast<index_t>(p) * per_patch + i;
      out[sz(e)] = rows[sz(e)] * scale[sz(n * channels + i % channels)];
    }
  }
  return out;
}

namespace {
MapShape input_shape(const BottleneckShape& s) {
  return {s.batch, s.height, s.width, s.in_channels};
}
MapShape output_shape(const BottleneckShape& s) {
  return {s.batch, s.out_height(), s.out_width(), s.out_channels};
}
std::vector<float> shortcut_of(const BlockData& d, Precision storage) {
  const auto& s = d.shape;
  if (!s.has_projection()) return {};
  auto sc = conv2d(d.x, input_shape(s), d.wsc, d.bsc, {s.out_channels, 1, s.stride, 0, 1, false});
  round_to_storage(sc, storage);
  return sc;
}
// The masker's part of a dynamic block, the same for every block kind: the patch logits, the
// mask (the given one, else the logits' signs) and its compacted index list.
DynamicResult masked(const BlockData& d, const MapShape& in, const PatchGrid& g,
                     const std::vector<std::uint8_t>& mask) {
  DynamicResult r;
  r.patch_logits = masker_logits(d.x, in, g, d.wm, d.bm);
  r.mask = mask.empty() ? threshold(r.patch_logits) : mask;
  r.active = compact(r.mask);
  return r;
}
}  // namespace

BlockResult bottleneck_dense(const BlockData& d, Precision storage) {
  const auto& s = d.shape;
  BlockResult r;
  const MapShape in = input_shape(s);
  // A separable block has no conv1: conv2 reads x (Cmid = Cin).
  r.conv1 = s.separable() ? d.x : conv2d(d.x, in, d.w1, d.b1, {s.mid_channels, 1, 1, 0, 1, true});
  round_to_storage(r.conv1, storage);
  const MapShape m1{s.batch, s.height, s.width, s.mid_channels};
  r.conv2 = conv2d(r.conv1, m1, d.w2, d.b2, {s.mid_channels, 3, s.stride, 1, s.groups, true});
  round_to_storage(r.conv2, storage);
  const MapShape m2{s.batch, s.out_height(), s.out_width(), s.mid_channels};
  if (s.se_channels > 0) {
    r.se_scale = se_scale_map(r.conv2, m2, d);
    r.se = se_apply_map(r.conv2, m2, r.se_scale);
  }
  r.conv3 = conv2d(s.se_channels > 0 ? r.se : r.conv2, m2, d.w3, d.b3,
                   {s.out_channels, 1, 1, 0, 1, false});
  r.shortcut = shortcut_of(d, storage);
  const std::vector<float>& res = s.has_projection() ? r.shortcut : d.x;
  r.out.resize(r.conv3.size());
  for (std::size_t i = 0; i < r.out.size(); ++i) r.out[i] = std::max(r.conv3[i] + res[i], 0.0f);
  round_to_storage(r.out, storage);  // one rounding: conv3's epilogue adds the residual in fp32
  return r;
}

namespace {
// conv2 onwards of the dynamic bottleneck, from r.conv1 ([P][E][E][Cmid], zero outside the map).
void bottleneck_dynamic_from_conv1(const BlockData& d, const PatchGrid& g, DynamicResult& r,
                                   Precision storage) {
  const auto& s = d.shape;
  const MapShape os = output_shape(s);
  const auto p = static_cast<index_t>(r.active.size());
  r.conv2 = conv3x3_patches(r.conv1, p, g, s.mid_channels, s.stride, s.groups, d.w2, d.b2);
  round_to_storage(r.conv2, storage);
  if (s.se_channels > 0) {
    r.se_scale = se_scale_patches(r.conv2, r.active, g,
                                  {s.batch, s.out_height(), s.out_width(), s.mid_channels}, d);
    r.se = se_apply_patches(r.conv2, s.mid_channels, r.active, g, r.se_scale);
  }
  r.conv3 = conv1x1_rows(s.se_channels > 0 ? r.se : r.conv2, s.mid_channels, d.w3, d.b3,
                         s.out_channels, false);
  round_to_storage(r.conv3, storage);  // fp16: the unfused conv3 rows are stored
  r.shortcut = shortcut_of(d, storage);
  const std::vector<float>& res = s.has_projection() ? r.shortcut : d.x;
  r.out.assign(sz(os.elements()), std::numeric_limits<float>::quiet_NaN());
  add_inactive(r.out, res, r.mask, g, os);
  scatter_add_relu(r.out, res, r.conv3, r.active, g, os);
  round_to_storage(r.out, storage);
}
}  // namespace

DynamicResult bottleneck_dynamic(const BlockData& d, index_t granularity,
                                 const std::vector<std::uint8_t>& mask, Precision storage) {
  const auto& s = d.shape;
  const PatchGrid g = patch_grid(s, granularity);
  const MapShape in = input_shape(s);
  DynamicResult r = masked(d, in, g, mask);
  r.gathered_x = gather_halo(d.x, in, r.active, g);
  if (s.separable()) {
    r.conv1 = r.gathered_x;  // conv2's halos are x's own (zero outside the map)
  } else {
    r.conv1 = conv1x1_rows(r.gathered_x, s.in_channels, d.w1, d.b1, s.mid_channels, true);
    zero_halo_outside(r.conv1, s.mid_channels, r.active, g, s.height, s.width);
    round_to_storage(r.conv1, storage);
  }
  bottleneck_dynamic_from_conv1(d, g, r, storage);
  return r;
}

std::vector<float> pixel_rows(const std::vector<float>& map, index_t channels,
                              const std::vector<std::int32_t>& pixels) {
  std::vector<float> rows;
  rows.reserve(pixels.size() * sz(channels));
  for (const std::int32_t p : pixels) {
    const auto first = map.begin() + static_cast<std::ptrdiff_t>(p * channels);
    rows.insert(rows.end(), first, first + static_cast<std::ptrdiff_t>(channels));
  }
  return rows;
}

std::vector<float> union_conv1_map(const BlockData& d, const std::vector<std::int32_t>& pixels,
                                   Precision storage) {
  const auto& s = d.shape;
  const auto cmid = s.mid_channels;
  auto rows =
      conv1x1_rows(pixel_rows(d.x, s.in_channels, pixels), s.in_channels, d.w1, d.b1, cmid, true);
  round_to_storage(rows, storage);
  std::vector<float> map(sz(s.batch * s.height * s.width * cmid),
                         std::numeric_limits<float>::quiet_NaN());
  for (std::size_t i = 0; i < pixels.size(); ++i) {
    std::copy_n(rows.begin() + static_cast<std::ptrdiff_t>(i * sz(cmid)), cmid,
                map.begin() + static_cast<std::ptrdiff_t>(pixels[i] * cmid));
  }
  return map;
}

DynamicResult bottleneck_dynamic_union(const BlockData& d, index_t granularity,
                                       const std::vector<std::uint8_t>& mask, Precision storage) {
  const auto& s = d.shape;
  const PatchGrid g = patch_grid(s, granularity);
  DynamicResult r = masked(d, input_shape(s), g, mask);
  r.needed = needed_conv1_pixels(s, granularity, r.mask);
  r.conv1 = gather_halo(union_conv1_map(d, r.needed, storage),
                        {s.batch, s.height, s.width, s.mid_channels}, r.active, g);
  bottleneck_dynamic_from_conv1(d, g, r, storage);
  return r;
}

BlockResult basic_dense(const BlockData& d) {
  const auto& s = d.shape;
  BlockResult r;
  r.conv1 = conv2d(d.x, input_shape(s), d.w1, d.b1, {s.mid_channels, 3, s.stride, 1, 1, true});
  const MapShape m1{s.batch, s.out_height(), s.out_width(), s.mid_channels};
  r.conv2 = conv2d(r.conv1, m1, d.w2, d.b2, {s.out_channels, 3, 1, 1, 1, false});
  r.shortcut = shortcut_of(d, Precision::fp32);
  const std::vector<float>& res = s.has_projection() ? r.shortcut : d.x;
  r.out.resize(r.conv2.size());
  for (std::size_t i = 0; i < r.out.size(); ++i) r.out[i] = std::max(r.conv2[i] + res[i], 0.0f);
  return r;
}

BlockResult block_dense(const BlockData& d) {
  return d.shape.basic() ? basic_dense(d) : bottleneck_dense(d);
}

DynamicResult basic_dynamic(const BlockData& d, index_t granularity,
                            const std::vector<std::uint8_t>& mask) {
  const auto& s = d.shape;
  const PatchGrid g = patch_grid(s, granularity);
  const MapShape in = input_shape(s), os = output_shape(s);
  DynamicResult r = masked(d, in, g, mask);
  const auto p = static_cast<index_t>(r.active.size());
  r.gathered_x = gather_patches(d.x, in, r.active, g, g.halo_extent, g.input_step, g.halo_offset);
  if (p > 0) {
    r.conv1 = conv2d(r.gathered_x, {p, g.halo_extent, g.halo_extent, s.in_channels}, d.w1, d.b1,
                     {s.mid_channels, 3, s.stride, 0, 1, true});
    zero_patch_outside(r.conv1, s.mid_channels, r.active, g, g.mid_extent, g.mid_step, -1,
                       s.out_height(), s.out_width());
    r.conv2 = conv2d(r.conv1, {p, g.mid_extent, g.mid_extent, s.mid_channels}, d.w2, d.b2,
                     {s.out_channels, 3, 1, 0, 1, false});
  }
  r.shortcut = shortcut_of(d, Precision::fp32);
  const std::vector<float>& res = s.has_projection() ? r.shortcut : d.x;
  r.out.assign(sz(os.elements()), std::numeric_limits<float>::quiet_NaN());
  add_inactive(r.out, res, r.mask, g, os);
  scatter_add_relu(r.out, res, r.conv2, r.active, g, os);
  return r;
}

DynamicResult block_dynamic(const BlockData& d, index_t granularity,
                            const std::vector<std::uint8_t>& mask) {
  return d.shape.basic() ? basic_dynamic(d, granularity, mask)
                         : bottleneck_dynamic(d, granularity, mask);
}

std::vector<float> masked_dense_output(const BlockResult& dense, const BlockData& d,
                                       const std::vector<std::uint8_t>& mask, const PatchGrid& g) {
  const auto& s = d.shape;
  const MapShape os = output_shape(s);
  const std::vector<float>& res = s.has_projection() ? dense.shortcut : d.x;
  std::vector<float> out = dense.out;
  add_inactive(out, res, mask, g, os);
  return out;
}

void round_to_storage(std::vector<float>& v, Precision storage) {
  if (storage != Precision::fp16) return;
  for (float& e : v) e = round_to_fp16(e);
}

Comparison compare(const std::vector<float>& a, const std::vector<float>& r) {
  Comparison c;
  if (a.size() != r.size()) {
    c.size_mismatch = true;
    return c;
  }
  double sq = 0;
  for (const float v : r) sq += static_cast<double>(v) * v;
  const double rms = r.empty() ? 0.0 : std::sqrt(sq / static_cast<double>(r.size()));
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) {
      ++c.non_finite;
      continue;
    }
    const double denom = std::max(std::abs(static_cast<double>(r[i])) + rms, 1e-30);
    const double e = std::abs(static_cast<double>(a[i]) - r[i]) / denom;
    if (e > c.max_rel_error) {
      c.max_rel_error = e;
      c.worst_index = static_cast<index_t>(i);
    }
  }
  return c;
}

}  // namespace lasnet::kernels::ref
