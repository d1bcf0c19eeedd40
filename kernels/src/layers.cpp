#include <algorithm>
#include <cmath>
#include <limits>

#include "lasnet/kernels/layers.hpp"

namespace lasnet::kernels {

namespace {

constexpr std::uint64_t weight_stream = 101;
constexpr std::uint64_t bias_stream = 102;

std::int64_t pooled(std::int64_t in, std::int64_t kernel, std::int64_t stride,
                    std::int64_t padding) {
  return (in + 2 * padding - kernel) / stride + 1;
}

}  // namespace

std::string to_string(LayerKind kind) {
  switch (kind) {
    case LayerKind::conv:
      return "conv";
    case LayerKind::max_pool:
      return "max_pool";
    case LayerKind::avg_pool:
      return "avg_pool";
    case LayerKind::global_avg_pool:
      return "global_avg_pool";
    case LayerKind::fc:
      return "fc";
  }
  return "layer";
}

std::int64_t LayerConfig::out_height() const {
  if (kind == LayerKind::global_avg_pool || kind == LayerKind::fc) return 1;
  return pooled(in_height, kernel, stride, padding);
}
std::int64_t LayerConfig::out_width() const {
  if (kind == LayerKind::global_avg_pool || kind == LayerKind::fc) return 1;
  return pooled(in_width, kernel, stride, padding);
}
std::int64_t LayerConfig::out_channels_of() const {
  return kind == LayerKind::conv || kind == LayerKind::fc ? out_channels : in_channels;
}

std::int64_t conv_gemm_channels(const LayerConfig& c) {
  return (c.in_channels + 3) / 4 * 4;
}

bool conv_uses_im2col(const LayerConfig& c) {
  return c.kernel > 1 || c.stride > 1 || c.padding > 0 || conv_gemm_channels(c) != c.in_channels;
}

Support check_supported(const LayerConfig& c) {
  Support s;
  s.ok = false;
  if (c.precision == Precision::fp16) {
    s.reason = "fp16 layers are not run by the kernels";
  } else if (c.batch < 1 || c.in_channels < 1 || c.in_height < 1 || c.in_width < 1 ||
             c.out_channels < 1 || c.kernel < 1 || c.stride < 1 || c.padding < 0) {
    s.reason = "a layer with an empty or negative size";
  } else if (c.kind == LayerKind::fc && (c.in_height != 1 || c.in_width != 1)) {
    s.reason = "an fc layer reads a pooled 1x1 map";
  } else if (c.out_height() < 1 || c.out_width() < 1) {
    s.reason = "the kernel is larger than the padded map";
  } else if ((c.kind == LayerKind::max_pool || c.kind == LayerKind::avg_pool) &&
             2 * c.padding > c.kernel) {
    s.reason = "pool padding over half the kernel (a window could see padding only)";
  } else {
    s.ok = true;
  }
  return s;
}

LayerData make_layer_data(const LayerConfig& c) {
  LayerData d;
  if (c.kind != LayerKind::conv && c.kind != LayerKind::fc) return d;
  const std::int64_t taps = c.kind == LayerKind::conv ? c.kernel * c.kernel : 1;
  const std::int64_t fan_in = taps * c.in_channels;
  const float scale = std::sqrt(3.0f / static_cast<float>(fan_in));
  d.weight.resize(static_cast<std::size_t>(c.out_channels * fan_in));
  for (std::size_t i = 0; i < d.weight.size(); ++i) {
    d.weight[i] = scale * random_uniform(c.seed, weight_stream, i);
  }
  d.bias.resize(static_cast<std::size_t>(c.out_channels));
  for (std::size_t i = 0; i < d.bias.size(); ++i) {
    d.bias[i] = 0.1f * random_uniform(c.seed, bias_stream, i);
  }
  return d;
}

std::vector<float> make_layer_input(const LayerConfig& c, std::uint64_t seed) {
  std::vector<float> in(static_cast<std::size_t>(c.in_elements()));
  for (std::size_t i = 0; i < in.size(); ++i) {
    in[i] = 0.5f * (random_uniform(seed, 1, i) + 1.0f);
  }
  return in;
}

std::vector<float> reference_layer(const LayerConfig& c, const LayerData& d,
                                   const std::vector<float>& in) {
  const std::int64_t ho = c.out_height(), wo = c.out_width(), co = c.out_channels_of();
  const std::int64_t h = c.in_height, w = c.in_width, ci = c.in_channels;
  std::vector<float> out(static_cast<std::size_t>(c.out_elements()));
  const auto at = [&](std::int64_t n, std::int64_t y, std::int64_t x, std::int64_t ch) {
    return in[static_cast<std::size_t>(((n * h + y) * w + x) * ci + ch)];
  };
  for (std::int64_t n = 0; n < c.batch; ++n) {
    for (std::int64_t y = 0; y < ho; ++y) {
      for (std::int64_t x = 0; x < wo; ++x) {
        for (std::int64_t o = 0; o < co; ++o) {
          double acc = 0;
          switch (c.kind) {
            case LayerKind::conv: {
              acc = d.bias[static_cast<std::size_t>(o)];
              for (std::int64_t ky = 0; ky < c.kernel; ++ky) {
                const std::int64_t iy = y * c.stride - c.padding + ky;
                if (iy < 0 || iy >= h) continue;
                for (std::int64_t kx = 0; kx < c.kernel; ++kx) {
                  const std::int64_t ix = x * c.stride - c.padding + kx;
                  if (ix < 0 || ix >= w) continue;
                  const float* wt = &d.weight[static_cast<std::size_t>(
                      ((o * c.kernel + ky) * c.kernel + kx) * ci)];
                  for (std::int64_t k = 0; k < ci; ++k) acc += double(wt[k]) * at(n, iy, ix, k);
                }
              }
              if (c.relu) acc = std::max(acc, 0.0);
              break;
            }
            case LayerKind::fc: {
              acc = d.bias[static_cast<std::size_t>(o)];
              const float* wt = &d.weight[static_cast<std::size_t>(o * ci)];
              for (std::int64_t k = 0; k < ci; ++k) acc += double(wt[k]) * at(n, 0, 0, k);
              if (c.relu) acc = std::max(acc, 0.0);
              break;
            }
            case LayerKind::max_pool:
            case LayerKind::avg_pool: {
              const bool max = c.kind == LayerKind::max_pool;
              acc = max ? -std::numeric_limits<double>::infinity() : 0.0;
              for (std::int64_t ky = 0; ky < c.kernel; ++ky) {
                const std::int64_t iy = y * c.stride - c.padding + ky;
                if (iy < 0 || iy >= h) continue;
                for (std::int64_t kx = 0; kx < c.kernel; ++kx) {
                  const std::int64_t ix = x * c.stride - c.padding + kx;
                  if (ix < 0 || ix >= w) continue;
                  const double v = at(n, iy, ix, o);
                  acc = max ? std::max(acc, v) : acc + v;
                }
              }
              if (!max) acc /= static_cast<double>(c.kernel * c.kernel);
              break;
            }
            case LayerKind::global_avg_pool: {
              for (std::int64_t iy = 0; iy < h; ++iy) {
                for (std::int64_t ix = 0; ix < w; ++ix) acc += at(n, iy, ix, o);
              }
              acc /= static_cast<double>(h * w);
              break;
            }
          }
          out[static_cast<std::size_t>(((n * ho + y) * wo + x) * co + o)] = static_cast<float>(acc);
        }
      }
    }
  }
  return out;
}

}  // namespace lasnet::kernels
