#pragma once
// Which kernels this build has: a short hash of the kernels' sources (kernels/CMakeLists.txt).
// A calibration is a fit to timings of particular kernels; profiles record the version they were
// fitted on, and the tools compare it with this one.
#include <string_view>

namespace lasnet::kernels {

std::string_view version();

}  // namespace lasnet::kernels
