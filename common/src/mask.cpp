#include "lasnet/common/mask.hpp"

#include <algorithm>
#include <cmath>

#include "lasnet/common/patch_geometry.hpp"
#include "lasnet/common/random.hpp"

namespace lasnet {

std::string_view to_string(MaskModel model) {
  switch (model) {
    case MaskModel::uniform:
      return "uniform";
    case MaskModel::clustered:
      return "clustered";
    case MaskModel::varied:
      return "varied";
  }
  return "?";
}

std::optional<MaskModel> parse_mask_model(std::string_view text) {
  for (const MaskModel m : {MaskModel::uniform, MaskModel::clustered, MaskModel::varied}) {
    if (text == to_string(m)) return m;
  }
  return std::nullopt;
}

namespace {

// Sets `k` of the `n` cells starting at `cells` to 1, chosen uniformly (partial Fisher-Yates).
void choose_uniform(Random& rng, std::uint8_t* cells, std::int64_t n, std::int64_t k) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
  for (std::int64_t i = 0; i < k; ++i) {
    const auto j = i + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(n - i)));
    std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
    cells[order[static_cast<std::size_t>(i)]] = 1;
  }
}

// Grows `k` active cells of one rows x cols image as blobs from a few seeds. The frontier list
// holds a cell once per active neighbour, so cells touching more of a blob join sooner (compact
// blobs); a new seed starts when the frontier runs dry (every blob boxed in by the border).
void grow_blobs(Random& rng, std::uint8_t* cells, std::int64_t rows, std::int64_t cols,
                std::int64_t k) {
  const std::int64_t n = rows * cols;
  if (k >= n) {
    std::fill(cells, cells + n, std::uint8_t{1});
    return;
  }
  std::vector<std::int64_t> frontier;
  std::int64_t active = 0;
  const auto activate = [&](std::int64_t c) {
    cells[c] = 1;
    ++active;
    const std::int64_t r = c / cols, q = c % cols;
    if (r > 0 && !cells[c - cols]) frontier.push_back(c - cols);
    if (r + 1 < rows && !cells[c + cols]) frontier.push_back(c + cols);
    if (q > 0 && !cells[c - 1]) frontier.push_back(c - 1);
    if (q + 1 < cols && !cells[c + 1]) frontier.push_back(c + 1);
  };
  const auto new_seed = [&] {
    // A uniformly chosen inactive cell (there is one: active < k < n).
    std::int64_t pick =
        static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(n - active)));
    for (std::int64_t c = 0; c < n; ++c) {
      if (cells[c]) continue;
      if (pick-- == 0) {
        activate(c);
        return;
      }
    }
  };
  const std::int64_t seeds = std::min<std::int64_t>(k, rng.between(1, 3));
  for (std::int64_t s = 0; s < seeds; ++s) new_seed();
  while (active < k) {
    if (frontier.empty()) {
      new_seed();
      continue;
    }
    const auto i = static_cast<std::size_t>(rng.below(frontier.size()));
    const std::int64_t c = frontier[i];
    frontier[i] = frontier.back();
    frontier.pop_back();
    if (!cells[c]) activate(c);
  }
}

}  // namespace

std::vector<std::uint8_t> make_mask(MaskModel model, const MaskShape& shape, double density,
                                    std::uint64_t seed) {
  const std::int64_t n = shape.patches(), per = shape.per_image();
  std::vector<std::uint8_t> mask(static_cast<std::size_t>(n), 0);
  Random rng(seed);
  switch (model) {
    case MaskModel::uniform:
      choose_uniform(rng, mask.data(), n, active_patches(density, n));
      break;
    case MaskModel::clustered: {
      const std::int64_t k = active_patches(density, n);
      std::vector<std::int64_t> per_image(static_cast<std::size_t>(shape.batch), k / shape.batch);
      // The remainder goes to distinct random images.
      std::vector<std::uint8_t> extra(static_cast<std::size_t>(shape.batch), 0);
      choose_uniform(rng, extra.data(), shape.batch, k % shape.batch);
      for (std::int64_t b = 0; b < shape.batch; ++b) {
        const auto count =
            per_image[static_cast<std::size_t>(b)] + extra[static_cast<std::size_t>(b)];
        if (count > 0) grow_blobs(rng, mask.data() + b * per, shape.rows, shape.cols, count);
      }
      break;
    }
    case MaskModel::varied:
      for (std::int64_t b = 0; b < shape.batch; ++b) {
        double x = density;
        if (density > 0 && density < 1) {
          x = rng.beta(varied_concentration * density, varied_concentration * (1 - density));
        }
        const auto count = std::clamp<std::int64_t>(
            static_cast<std::int64_t>(std::floor(x * static_cast<double>(per) + 0.5)), 0, per);
        choose_uniform(rng, mask.data() + b * per, per, count);
      }
      break;
  }
  return mask;
}

double mean_active_neighbours(const std::vector<std::uint8_t>& mask, const MaskShape& shape) {
  std::int64_t active = 0, neighbours = 0;
  for (std::int64_t b = 0; b < shape.batch; ++b) {
    const std::uint8_t* m = mask.data() + b * shape.per_image();
    for (std::int64_t r = 0; r < shape.rows; ++r) {
      for (std::int64_t c = 0; c < shape.cols; ++c) {
        if (!m[r * shape.cols + c]) continue;
        ++active;
        if (r > 0 && m[(r - 1) * shape.cols + c]) ++neighbours;
        if (r + 1 < shape.rows && m[(r + 1) * shape.cols + c]) ++neighbours;
        if (c > 0 && m[r * shape.cols + c - 1]) ++neighbours;
        if (c + 1 < shape.cols && m[r * shape.cols + c + 1]) ++neighbours;
      }
    }
  }
  return active > 0 ? static_cast<double>(neighbours) / static_cast<double>(active) : 0.0;
}

}  // namespace lasnet
