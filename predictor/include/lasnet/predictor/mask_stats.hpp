#pragma once
// The statistics of a patch mask that the dynamic kernels' cost depends on, measured from a
// mask or expected for a mask model (common/mask.hpp) at a given S, density, batch and map.
//
// Priced: the active patch count P over the batch (the gathered GEMMs' M, every dynamic op's
// work), and the distinct input pixels under the active patches' read windows (a patch reads
// extent x extent pixels with its halo; neighbouring active patches share halo pixels, which
// the gather reads from DRAM once and then from L2): the DRAM bytes of `gather` and
// `gather_conv`. And the busiest image's active patches, which SE's per-image pool waits on.
// The other kernels treat the batch as one flat index list (one compaction over all patches,
// one grid over P). docs/model.md says more.
#include <cstdint>
#include <vector>

#include "lasnet/common/mask.hpp"

namespace lasnet::predictor {

// Where each patch of a block reads the block's input map (one image).
struct PatchWindows {
  std::int64_t map_height = 0, map_width = 0;  // the input map
  std::int64_t rows = 0, cols = 0;             // patches per side
  std::int64_t step = 1;                       // input pixels between patch origins (S x stride)
  std::int64_t extent = 1;                     // input pixels per side one patch reads
  std::int64_t origin = 0;  // input coordinate of the first patch's first pixel (-1: padding)
};

struct MaskStats {
  double active_patches = 0;  // over the batch
  double read_pixels = 0;     // distinct in-map input pixels under active windows, over the batch
  // Active patches of the busiest image: squeeze-excitation pools each image in blocks of its
  // own, so the image with the most active rows sets the pool's chain of loads.
  double max_image_patches = 0;
};

// Expected active patches of the busiest of `batch` images when `active` of the batch's
// batch x per_image patches are chosen uniformly (each image's count hypergeometric, the
// images' maxima taken as independent, and at least the mean count rounded up).
double uniform_max_image_patches(std::int64_t batch, std::int64_t per_image, std::int64_t active);

// Of one mask [batch][rows][cols] (1 = active).
MaskStats measure_mask_stats(const std::vector<std::uint8_t>& mask, std::int64_t batch,
                             const PatchWindows& windows);

// Expected values for a mask model (make_mask's distributions). Uniform is exact: P =
// ceil(d x patches), and a pixel covered by m windows is read unless none of them is among the
// P chosen out of the batch's n patches, with probability C(n - m, P) / C(n, P). Varied: P =
// d x patches; the read pixels are the uniform formula per image, averaged over per-image
// counts drawn from the model's Beta. Clustered: P exact, the read pixels a Monte-Carlo mean of
// the generator itself over a few images and seeds (fixed, so the value is deterministic).
MaskStats expected_mask_stats(MaskModel model, std::int64_t batch, const PatchWindows& windows,
                              double density);

}  // namespace lasnet::predictor
