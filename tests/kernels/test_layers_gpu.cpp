// The stem and head layers on the GPU against their CPU reference (kernels/layers.hpp), at the
// shapes of the shipped specs' stems and heads, shrunk. Without a CUDA device every case
// returns early after a loud "SKIPPED".
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "lasnet/kernels/layers.hpp"

namespace k = lasnet::kernels;

namespace {

bool have_layer_device() {
  static const bool ok = [] {
    const int n = k::cuda_device_count();
    if (n == 0) {
      std::printf("\nSKIPPED: no CUDA device -- stem/head layer GPU tests did not run\n\n");
    }
    return n > 0;
  }();
  return ok;
}

k::LayerConfig layer(k::LayerKind kind, std::int64_t n, std::int64_t c, std::int64_t h,
                     std::int64_t kernel, std::int64_t stride, std::int64_t padding,
                     std::int64_t out = 1) {
  k::LayerConfig l;
  l.kind = kind;
  l.batch = n;
  l.in_channels = c;
  l.in_height = h;
  l.in_width = h;
  l.kernel = kernel;
  l.stride = stride;
  l.padding = padding;
  l.out_channels = out;
  l.relu = kind == k::LayerKind::conv;
  return l;
}

// Runs `c` on the GPU on a seeded input and compares with the reference element-wise: fp32 to
// 1e-4 of the largest output, tf32 to 5e-3.
void check_layer(const k::LayerConfig& c) {
  CAPTURE(k::to_string(c.kind));
  CAPTURE(c.in_channels);
  CAPTURE(c.in_height);
  static k::Context ctx;
  k::LayerRunner runner(ctx, c);
  const auto input = k::make_layer_input(c, 5);
  const auto want = k::reference_layer(c, k::make_layer_data(c), input);
  runner.run_on(runner.upload_input(input));
  const auto got = runner.download();
  REQUIRE(got.size() == want.size());
  float scale = 1e-6f;
  for (const float v : want) scale = std::max(scale, std::abs(v));
  const float tol = (c.precision == k::Precision::tf32 ? 5e-3f : 1e-4f) * scale;
  std::size_t bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!(std::abs(got[i] - want[i]) <= tol)) ++bad;
  }
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("GPU stem layers match the reference") {
  if (!have_layer_device()) return;
  // ResNet's stem on a 32x32 image: conv 7x7 s2 p3 from 3 (padded to 4) channels, then max pool.
  check_layer(layer(k::LayerKind::conv, 2, 3, 32, 7, 2, 3, 64));
  check_layer(layer(k::LayerKind::max_pool, 2, 64, 16, 3, 2, 1));
  // RegNetY's stem: conv 3x3 s2 p1 to 32 channels; a 1x1 conv (MobileNetV2's head) runs the GEMM
  // on the map directly.
  check_layer(layer(k::LayerKind::conv, 2, 3, 18, 3, 2, 1, 32));
  check_layer(layer(k::LayerKind::conv, 2, 16, 7, 1, 1, 0, 24));
  auto tf32 = layer(k::LayerKind::conv, 1, 3, 32, 7, 2, 3, 64);
  tf32.precision = k::Precision::tf32;
  check_layer(tf32);
  check_layer(layer(k::LayerKind::avg_pool, 1, 8, 9, 3, 2, 1));
}

TEST_CASE("GPU head layers match the reference") {
  if (!have_layer_device()) return;
  check_layer(layer(k::LayerKind::global_avg_pool, 3, 2048, 7, 1, 1, 0));
  auto fc = layer(k::LayerKind::fc, 3, 2048, 1, 1, 1, 0, 1000);
  check_layer(fc);
  fc.batch = 1;
  check_layer(fc);
}
