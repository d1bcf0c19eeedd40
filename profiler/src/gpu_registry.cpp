// The one place that knows whether the CUDA backend was compiled in. Everything else asks
// open_gpu() at run time.
#include <fmt/format.h>

#include "lasnet/common/error.hpp"
#include "lasnet/profiler/gpu.hpp"

#if LASNET_PROFILER_HAVE_CUDA
#include "cuda_backend.hpp"
#endif

namespace lasnet::profiler {

bool gpu_backend_built() {
#if LASNET_PROFILER_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Gpu> open_gpu(int index) {
#if LASNET_PROFILER_HAVE_CUDA
  return open_cuda_gpu(index);
#else
  throw Error(fmt::format(
      "no GPU support in this build: lasnet was built without CUDA, so it cannot use device {}; "
      "rebuild with -DLASNET_CUDA=ON on a machine with the CUDA toolkit",
      index));
#endif
}

}  // namespace lasnet::profiler
