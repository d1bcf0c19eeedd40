#include <doctest/doctest.h>

#include "lasnet/common/patch_geometry.hpp"

TEST_CASE("patch geometry") {
  // 56x56 map at S=4: 14 patches per side; 7x7 at S=2 does not divide: 4 per side.
  CHECK(lasnet::patches_per_side(56, 4) == 14);
  CHECK(lasnet::patches_per_side(7, 2) == 4);
  // A 3x3 conv at stride 1 needs a one-pixel halo: S=4 reads 6; at stride 2 it reads 9.
  CHECK(lasnet::patch_input_extent(4, 1, 3) == 6);
  CHECK(lasnet::patch_input_extent(4, 2, 3) == 9);
  CHECK(lasnet::conv_output_extent(224, 7, 2, 3) == 112);
  CHECK(lasnet::conv_output_extent(56, 3, 2, 1) == 28);
  // ceil(d * n), exact at the ends.
  CHECK(lasnet::active_patches(0.0, 196) == 0);
  CHECK(lasnet::active_patches(1.0, 196) == 196);
  CHECK(lasnet::active_patches(0.5, 49) == 25);
  CHECK(lasnet::active_patches(0.3, 10) == 3);
}
