// The stem and head layers' shapes, coverage and CPU reference, against hand-worked cases.
#include <doctest/doctest.h>

#include <vector>

#include "lasnet/kernels/layers.hpp"

namespace k = lasnet::kernels;

namespace {

k::LayerConfig layer(k::LayerKind kind, std::int64_t c, std::int64_t h, std::int64_t kernel,
                     std::int64_t stride, std::int64_t padding) {
  k::LayerConfig l;
  l.kind = kind;
  l.in_channels = c;
  l.in_height = h;
  l.in_width = h;
  l.kernel = kernel;
  l.stride = stride;
  l.padding = padding;
  return l;
}

}  // namespace

TEST_CASE("layer shapes: ResNet's stem and head") {
  // conv 7x7 s2 p3 on 224: (224 + 6 - 7) / 2 + 1 = 112; max pool 3x3 s2 p1 on 112: 56.
  auto conv = layer(k::LayerKind::conv, 3, 224, 7, 2, 3);
  conv.out_channels = 64;
  CHECK(conv.out_height() == 112);
  CHECK(conv.out_channels_of() == 64);
  const auto pool = layer(k::LayerKind::max_pool, 64, 112, 3, 2, 1);
  CHECK(pool.out_height() == 56);
  CHECK(pool.out_channels_of() == 64);
  const auto gap = layer(k::LayerKind::global_avg_pool, 2048, 7, 1, 1, 0);
  CHECK(gap.out_height() == 1);
  CHECK(gap.out_elements() == 2048);
  CHECK(k::check_supported(conv).ok);
  CHECK(k::check_supported(pool).ok);
}

TEST_CASE("layers the runner refuses say why") {
  auto conv = layer(k::LayerKind::conv, 3, 8, 3, 1, 1);
  conv.precision = k::Precision::fp16;
  CHECK(k::check_supported(conv).reason.find("fp16") != std::string::npos);
  auto fc = layer(k::LayerKind::fc, 8, 2, 1, 1, 0);  // an unpooled 2x2 map
  CHECK_FALSE(k::check_supported(fc).ok);
  // Pool padding 2 on a 3x3 window: the corner window would see padding only.
  CHECK_FALSE(k::check_supported(layer(k::LayerKind::max_pool, 1, 4, 3, 2, 2)).ok);
}

TEST_CASE("reference conv: a 3x3 padded conv over a 2x2 map, by hand") {
  // One channel in, one out, weights all 1 (set by hand), bias 0.5:
  // every output pixel of a 2x2 map with padding 1 sees all four inputs 1+2+3+4 = 10 -> 10.5.
  auto c = layer(k::LayerKind::conv, 1, 2, 3, 1, 1);
  c.out_channels = 1;
  k::LayerData d;
  d.weight.assign(9, 1.0f);
  d.bias = {0.5f};
  const auto out = k::reference_layer(c, d, {1, 2, 3, 4});
  REQUIRE(out.size() == 4);
  for (const float v : out) CHECK(v == doctest::Approx(10.5));
  // Bias -20 with ReLU: 10 - 20 < 0 -> 0.
  c.relu = true;
  d.bias = {-20.0f};
  for (const float v : k::reference_layer(c, d, {1, 2, 3, 4})) CHECK(v == 0.0f);
}

TEST_CASE("reference pools and fc, by hand") {
  // 4x4 map 0..15, max pool 2x2 s2: {5, 7, 13, 15}; avg pool: {2.5, 4.5, 10.5, 12.5}.
  std::vector<float> in(16);
  for (int i = 0; i < 16; ++i) in[static_cast<std::size_t>(i)] = static_cast<float>(i);
  const auto mx = k::reference_layer(layer(k::LayerKind::max_pool, 1, 4, 2, 2, 0), {}, in);
  CHECK(mx == std::vector<float>{5, 7, 13, 15});
  const auto av = k::reference_layer(layer(k::LayerKind::avg_pool, 1, 4, 2, 2, 0), {}, in);
  CHECK(av == std::vector<float>{2.5f, 4.5f, 10.5f, 12.5f});
  // Global average: (0 + ... + 15) / 16 = 7.5.
  const auto gap = k::reference_layer(layer(k::LayerKind::global_avg_pool, 1, 4, 1, 1, 0), {}, in);
  CHECK(gap == std::vector<float>{7.5f});
  // fc 2 -> 2: [[1, 2], [3, 4]] . [1, 1] + [0, 1] = [3, 8].
  auto fc = layer(k::LayerKind::fc, 2, 1, 1, 1, 0);
  fc.out_channels = 2;
  const auto y = k::reference_layer(fc, k::LayerData{{1, 2, 3, 4}, {0, 1}}, {1, 1});
  CHECK(y == std::vector<float>{3, 8});
}

TEST_CASE("seeded layer data: fixed by the seed, scaled by the fan-in") {
  auto c = layer(k::LayerKind::conv, 3, 8, 7, 2, 3);
  c.out_channels = 4;
  const auto a = k::make_layer_data(c), b = k::make_layer_data(c);
  CHECK(a.weight == b.weight);
  REQUIRE(a.weight.size() == 4u * 49 * 3);
  // |w| <= sqrt(3 / 147) = 0.1429.
  for (const float w : a.weight) CHECK(std::abs(w) <= 0.1429f);
  c.seed = 2;
  CHECK(k::make_layer_data(c).weight != a.weight);
}
