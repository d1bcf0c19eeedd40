// Generated patch masks: exact counts, determinism, clustering, Beta-distributed densities.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "lasnet/common/mask.hpp"

using namespace lasnet;

namespace {
std::int64_t count_active(const std::vector<std::uint8_t>& m) {
  return std::accumulate(m.begin(), m.end(), std::int64_t{0});
}
std::int64_t count_image(const std::vector<std::uint8_t>& m, const MaskShape& s, std::int64_t b) {
  return std::accumulate(m.begin() + b * s.per_image(), m.begin() + (b + 1) * s.per_image(),
                         std::int64_t{0});
}
}  // namespace

TEST_CASE("mask: uniform and clustered have exactly ceil(d x patches) active over the batch") {
  // 3 images of 7 x 5 patches = 105; d = 0.3 -> 31.5 -> 32; d = 0.01 -> 1.05 -> 2.
  const MaskShape shape{3, 7, 5};
  for (const auto model : {MaskModel::uniform, MaskModel::clustered}) {
    CHECK(count_active(make_mask(model, shape, 0.3, 1)) == 32);
    CHECK(count_active(make_mask(model, shape, 0.01, 2)) == 2);
    CHECK(count_active(make_mask(model, shape, 0.0, 3)) == 0);
    CHECK(count_active(make_mask(model, shape, 1.0, 4)) == 105);
    for (const auto v : make_mask(model, shape, 0.5, 5)) CHECK(v <= 1);
  }
  // Clustered splits 32 over 3 images as 11, 11, 10 in some order.
  const auto m = make_mask(MaskModel::clustered, shape, 0.3, 9);
  std::vector<std::int64_t> per{count_image(m, shape, 0), count_image(m, shape, 1),
                                count_image(m, shape, 2)};
  std::sort(per.begin(), per.end());
  CHECK(per == std::vector<std::int64_t>{10, 11, 11});
}

TEST_CASE("mask: the same seed gives the same mask, another seed another one") {
  const MaskShape shape{4, 14, 14};
  for (const auto model : {MaskModel::uniform, MaskModel::clustered, MaskModel::varied}) {
    CHECK(make_mask(model, shape, 0.4, 17) == make_mask(model, shape, 0.4, 17));
    CHECK(make_mask(model, shape, 0.4, 17) != make_mask(model, shape, 0.4, 18));
  }
  CHECK(parse_mask_model("clustered") == MaskModel::clustered);
  CHECK(to_string(MaskModel::varied) == "varied");
  CHECK_FALSE(parse_mask_model("blobs").has_value());
}

TEST_CASE("mask: clustered masks have measurably more active neighbours than uniform ones") {
  // Uniform at d = 0.3 on 28 x 28: each active patch has ~4 x 0.3 x (1 - border share) ~ 1.15
  // active neighbours. Eden blobs of ~235 patches are compact: most of a blob's patches are
  // inside it, with 3-4 active neighbours; the perimeter of a disc of 235 cells is ~55 cells.
  const MaskShape shape{8, 28, 28};
  double uniform = 0, clustered = 0;
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    uniform += mean_active_neighbours(make_mask(MaskModel::uniform, shape, 0.3, seed), shape);
    clustered += mean_active_neighbours(make_mask(MaskModel::clustered, shape, 0.3, seed), shape);
  }
  uniform /= 4, clustered /= 4;
  CHECK(uniform == doctest::Approx(4 * 0.3 * 26.0 / 28.0).epsilon(0.1));
  CHECK(clustered > 2.5);
  CHECK(clustered > 2 * uniform);
  // Hand-counted: a 2 x 2 block in a 3 x 3 image has 2 active neighbours per active patch.
  const MaskShape one{1, 3, 3};
  CHECK(mean_active_neighbours({1, 1, 0, 1, 1, 0, 0, 0, 0}, one) == 2.0);
  CHECK(mean_active_neighbours({1, 0, 1, 0, 0, 0, 1, 0, 1}, one) == 0.0);
}

TEST_CASE("mask: varied per-image densities are Beta(k d, k (1 - d)) around d") {
  // 2000 images of 10 x 10 at d = 0.3, k = 4: x ~ Beta(1.2, 2.8), mean 0.3, variance
  // d (1 - d) / (k + 1) = 0.042 (sd 0.205); rounding to 100 patches adds ~1/1200. The mean of
  // 2000 images has sd 0.0046, so 0.3 +- 0.02 cannot fail by chance.
  const MaskShape shape{2000, 10, 10};
  const auto m = make_mask(MaskModel::varied, shape, 0.3, 5);
  double sum = 0, sq = 0;
  std::int64_t empty = 0;
  for (std::int64_t b = 0; b < shape.batch; ++b) {
    const double x = static_cast<double>(count_image(m, shape, b)) / 100.0;
    sum += x;
    sq += x * x;
    if (x == 0) ++empty;
  }
  const double mean = sum / 2000, var = sq / 2000 - mean * mean;
  CHECK(mean == doctest::Approx(0.3).epsilon(0.07));
  CHECK(var == doctest::Approx(0.042).epsilon(0.15));
  // Beta(1.2, 2.8) puts P(x < 0.005) ~ 0.005^1.2 / (1.2 B(1.2, 2.8)) ~ 0.4%: some empty images.
  CHECK(empty < 40);
  // d = 0 and d = 1 are exact.
  CHECK(count_active(make_mask(MaskModel::varied, {3, 4, 4}, 0.0, 1)) == 0);
  CHECK(count_active(make_mask(MaskModel::varied, {3, 4, 4}, 1.0, 1)) == 48);
}
