#include "lasnet/predictor/mask_stats.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include "lasnet/common/patch_geometry.hpp"
#include "lasnet/common/random.hpp"

namespace lasnet::predictor {

namespace {

// How many patch windows cover each coordinate of one axis (clipped to the map).
std::vector<std::int64_t> coverage(std::int64_t size, std::int64_t patches, std::int64_t step,
                                   std::int64_t extent, std::int64_t origin) {
  std::vector<std::int64_t> c(static_cast<std::size_t>(std::max<std::int64_t>(size, 0)), 0);
  for (std::int64_t p = 0; p < patches; ++p) {
    const std::int64_t lo = std::max<std::int64_t>(0, origin + p * step);
    const std::int64_t hi = std::min(size, origin + p * step + extent);
    for (std::int64_t y = lo; y < hi; ++y) ++c[static_cast<std::size_t>(y)];
  }
  return c;
}

std::map<std::int64_t, std::int64_t> histogram(const std::vector<std::int64_t>& values) {
  std::map<std::int64_t, std::int64_t> h;
  for (const auto v : values) {
    if (v > 0) ++h[v];
  }
  return h;
}

// Expected distinct pixels of ONE image when `k` of `n` patches are chosen uniformly without
// replacement (n counts the patches of every image the choice runs over; the image's own
// windows are the only ones that cover its pixels): a pixel under m windows stays unread with
// probability C(n - m, k) / C(n, k) = prod_{j < m} (n - k - j) / (n - j).
double uniform_image_pixels(const PatchWindows& w, std::int64_t n, std::int64_t k) {
  if (k <= 0 || n <= 0) return 0;
  const auto rows = histogram(coverage(w.map_height, w.rows, w.step, w.extent, w.origin));
  const auto cols = histogram(coverage(w.map_width, w.cols, w.step, w.extent, w.origin));
  std::map<std::int64_t, double> unread;  // by m
  const auto none_chosen = [&](std::int64_t m) {
    const auto it = unread.find(m);
    if (it != unread.end()) return it->second;
    double q = 1;
    for (std::int64_t j = 0; j < m && q > 0; ++j) {
      q = n - k - j <= 0 ? 0.0 : q * static_cast<double>(n - k - j) / static_cast<double>(n - j);
    }
    unread[m] = q;
    return q;
  };
  double pixels = 0;
  for (const auto& [mr, row_count] : rows) {
    for (const auto& [mc, col_count] : cols) {
      pixels += static_cast<double>(row_count * col_count) * (1.0 - none_chosen(mr * mc));
    }
  }
  return pixels;
}

}  // namespace

double uniform_max_image_patches(std::int64_t batch, std::int64_t per_image, std::int64_t active) {
  if (batch <= 0 || per_image <= 0 || active <= 0) return 0;
  const std::int64_t total = batch * per_image;
  active = std::min(active, total);
  if (batch == 1) return static_cast<double>(active);
  // One image's count x ~ Hypergeometric(total, per_image, active), in logs for large maps.
  const auto log_choose = [](double n, double k) {
    return std::lgamma(n + 1) - std::lgamma(k + 1) - std::lgamma(n - k + 1);
  };
  const std::int64_t lo = std::max<std::int64_t>(0, active - (total - per_image));
  const std::int64_t hi = std::min(per_image, active);
  const double all = log_choose(static_cast<double>(total), static_cast<double>(active));
  double cdf = 0, expected = 0;
  for (std::int64_t x = 0; x < hi; ++x) {
    if (x >= lo) {
      cdf += std::exp(
          log_choose(static_cast<double>(per_image), static_cast<double>(x)) +
          log_choose(static_cast<double>(total - per_image), static_cast<double>(active - x)) -
          all);
    }
    // E[max] = sum over x of P(max > x) = 1 - P(every image <= x).
    expected += 1.0 - std::pow(std::min(cdf, 1.0), static_cast<double>(batch));
  }
  // Independence lets every image come up short at once, which the shared total forbids: with
  // few active patches it undercounts (one patch over 8 images: 0.66). Some image holds at
  // least the mean.
  return std::max(expected, std::ceil(static_cast<double>(active) / static_cast<double>(batch)));
}

MaskStats measure_mask_stats(const std::vector<std::uint8_t>& mask, std::int64_t batch,
                             const PatchWindows& w) {
  MaskStats s;
  const std::int64_t per = w.rows * w.cols;
  std::vector<std::uint8_t> read(static_cast<std::size_t>(w.map_height * w.map_width));
  for (std::int64_t b = 0; b < batch; ++b) {
    std::fill(read.begin(), read.end(), std::uint8_t{0});
    double image_patches = 0;
    for (std::int64_t r = 0; r < w.rows; ++r) {
      for (std::int64_t c = 0; c < w.cols; ++c) {
        if (!mask[static_cast<std::size_t>(b * per + r * w.cols + c)]) continue;
        s.active_patches += 1;
        image_patches += 1;
        const std::int64_t y0 = std::max<std::int64_t>(0, w.origin + r * w.step);
        const std::int64_t y1 = std::min(w.map_height, w.origin + r * w.step + w.extent);
        const std::int64_t x0 = std::max<std::int64_t>(0, w.origin + c * w.step);
        const std::int64_t x1 = std::min(w.map_width, w.origin + c * w.step + w.extent);
        for (std::int64_t y = y0; y < y1; ++y) {
          for (std::int64_t x = x0; x < x1; ++x)
            read[static_cast<std::size_t>(y * w.map_width + x)] = 1;
        }
      }
    }
    for (const auto v : read) s.read_pixels += v;
    s.max_image_patches = std::max(s.max_image_patches, image_patches);
  }
  return s;
}

MaskStats expected_mask_stats(MaskModel model, std::int64_t batch, const PatchWindows& w,
                              double density) {
  const std::int64_t per = w.rows * w.cols, n = batch * per;
  MaskStats s;
  switch (model) {
    case MaskModel::uniform: {
      const std::int64_t k = active_patches(density, n);
      s.active_patches = static_cast<double>(k);
      s.read_pixels = static_cast<double>(batch) * uniform_image_pixels(w, n, k);
      s.max_image_patches = uniform_max_image_patches(batch, per, k);
      break;
    }
    case MaskModel::varied: {
      s.active_patches = density * static_cast<double>(n);
      if (density <= 0 || density >= 1) {
        s.read_pixels =
            static_cast<double>(batch) * uniform_image_pixels(w, per, active_patches(density, per));
        s.max_image_patches = static_cast<double>(active_patches(density, per));
        break;
      }
      // The mean over per-image counts k = round(x x per), x ~ Beta: 256 draws of a fixed
      // stream (the count's distribution, not a particular batch's masks).
      constexpr int draws = 256;
      Random rng(0x5EEDULL);
      std::map<std::int64_t, double> by_count;
      double sum = 0;
      std::vector<std::int64_t> counts;
      for (int i = 0; i < draws; ++i) {
        const double x =
            rng.beta(varied_concentration * density, varied_concentration * (1 - density));
        const auto k = std::clamp<std::int64_t>(
            static_cast<std::int64_t>(std::floor(x * static_cast<double>(per) + 0.5)), 0, per);
        counts.push_back(k);
        auto it = by_count.find(k);
        if (it == by_count.end()) it = by_count.emplace(k, uniform_image_pixels(w, per, k)).first;
        sum += it->second;
      }
      s.read_pixels = static_cast<double>(batch) * sum / draws;
      // The busiest of `batch` independent images: E[max] = sum over x of 1 - F(x)^batch, F
      // the draws' distribution of one image's count.
      std::sort(counts.begin(), counts.end());
      for (std::int64_t x = 0; x < per; ++x) {
        const auto at_most = std::upper_bound(counts.begin(), counts.end(), x) - counts.begin();
        s.max_image_patches +=
            1.0 - std::pow(static_cast<double>(at_most) / draws, static_cast<double>(batch));
      }
      break;
    }
    case MaskModel::clustered: {
      s.active_patches = static_cast<double>(active_patches(density, n));
      // The generator splits the count evenly over the images (the remainder to some of them).
      s.max_image_patches = std::ceil(s.active_patches / static_cast<double>(batch));
      // A few images, a few seeds: blobs are per image, so the batch scales the mean.
      const std::int64_t images = std::min<std::int64_t>(batch, 4);
      constexpr int seeds = 4;
      double sum = 0;
      for (int seed = 1; seed <= seeds; ++seed) {
        const auto mask = make_mask(MaskModel::clustered, MaskShape{images, w.rows, w.cols},
                                    density, static_cast<std::uint64_t>(seed));
        sum += measure_mask_stats(mask, images, w).read_pixels;
      }
      s.read_pixels = static_cast<double>(batch) * sum / (seeds * static_cast<double>(images));
      break;
    }
  }
  return s;
}

}  // namespace lasnet::predictor
