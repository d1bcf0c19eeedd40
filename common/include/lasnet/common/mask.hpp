#pragma once
// Patch masks like trained maskers make, generated on the host from a seed (the same mask on
// every machine), for the kernels' explicit mask (kernels::DynamicSettings::mask), the profiler's
// `--masks` and tests. Layout [batch][patch rows][patch cols], 1 = active.
//
//   uniform    exactly ceil(d x patches) active patches over the batch, positions uniform.
//   clustered  the same count, as blobs: the batch's count split evenly over the images (the
//              remainder to random images), each image's patches grown from 1-3 seeds by
//              Eden growth (a random frontier cell joins, weighted by its active 4-neighbours),
//              as the objects a trained masker keeps are compact regions.
//   varied     per image a density x_i ~ Beta(k d, k (1 - d)) with concentration k =
//              varied_concentration (mean d, sd sqrt(d (1 - d) / (k + 1)): 0.22 at d = 0.5),
//              round(x_i x patches per image) active patches at uniform positions: images with
//              much and little content in one batch. The total is random, its mean ~ d x patches.
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace lasnet {

enum class MaskModel { uniform, clustered, varied };
std::string_view to_string(MaskModel model);
std::optional<MaskModel> parse_mask_model(std::string_view text);

inline constexpr double varied_concentration = 4.0;

struct MaskShape {
  std::int64_t batch = 1;
  std::int64_t rows = 1, cols = 1;  // patches per image, per side
  std::int64_t per_image() const { return rows * cols; }
  std::int64_t patches() const { return batch * rows * cols; }
};

std::vector<std::uint8_t> make_mask(MaskModel model, const MaskShape& shape, double density,
                                    std::uint64_t seed);

// Mean over active patches of their active 4-neighbours in the same image (0 when none is
// active): how clustered a mask is (uniform at density d: about 4d away from the borders).
double mean_active_neighbours(const std::vector<std::uint8_t>& mask, const MaskShape& shape);

}  // namespace lasnet
