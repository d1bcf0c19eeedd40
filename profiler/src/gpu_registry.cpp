// The one place that knows whether the CUDA backend was compiled in. Everything else asks
// open_gpu() at run time.
//
// The backend is a shared library of its own (liblasnet_gpu.so: profiler/cuda/ with the kernels,
// cudart, cuBLAS and cuBLASLt), opened with dlopen() only here, so that the commands that need
// no GPU (predict, schedule, hw) start without loading the CUDA libraries (~115 ms of a ~120 ms
// run). Its one exported symbol is lasnet_open_cuda_gpu (profiler/cuda/module.cpp).
#include <fmt/format.h>

#include "lasnet/common/error.hpp"
#include "lasnet/profiler/gpu.hpp"

#if LASNET_PROFILER_HAVE_CUDA
#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>
#endif

namespace lasnet::profiler {

#if LASNET_PROFILER_HAVE_CUDA
namespace {

using OpenFn = void (*)(int, std::unique_ptr<Gpu>&);

// Where the backend may be, in order: $LASNET_GPU_LIBRARY alone if set; beside an installed
// executable (bin/ -> lib/lasnet/); the configured install prefix; the build tree.
std::vector<std::filesystem::path> backend_candidates() {
  if (const char* env = std::getenv("LASNET_GPU_LIBRARY"); env && *env) return {env};
  std::vector<std::filesystem::path> paths;
  std::error_code ec;
  const auto exe = std::filesystem::canonical("/proc/self/exe", ec);
  if (!ec) paths.push_back(exe.parent_path() / LASNET_GPU_LIBRARY_FROM_BINDIR);
  paths.emplace_back(LASNET_GPU_LIBRARY_INSTALLED);
  paths.emplace_back(LASNET_GPU_LIBRARY_BUILT);
  return paths;
}

// The handle is never closed: the Gpu objects' code lives in the library, and the process ends
// soon after a GPU command anyway.
OpenFn load_backend() {
  std::string tried;
  for (const auto& path : backend_candidates()) {
    if (!std::filesystem::exists(path)) {
      tried += fmt::format("; {}: not found", path.string());
      continue;
    }
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      tried += fmt::format("; {}: {}", path.string(), dlerror());
      continue;
    }
    if (void* symbol = dlsym(handle, "lasnet_open_cuda_gpu")) {
      return reinterpret_cast<OpenFn>(symbol);
    }
    tried += fmt::format("; {}: no lasnet_open_cuda_gpu", path.string());
    dlclose(handle);
  }
  throw Error(fmt::format(
      "no GPU support: cannot load the CUDA backend liblasnet_gpu.so (set LASNET_GPU_LIBRARY to "
      "its path){}",
      tried));
}

}  // namespace
#endif

bool gpu_backend_built() {
#if LASNET_PROFILER_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Gpu> open_gpu(int index) {
#if LASNET_PROFILER_HAVE_CUDA
  std::unique_ptr<Gpu> gpu;
  load_backend()(index, gpu);
  return gpu;
#else
  throw Error(fmt::format(
      "no GPU support in this build: lasnet was built without CUDA, so it cannot use device {}; "
      "rebuild with -DLASNET_CUDA=ON on a machine with the CUDA toolkit",
      index));
#endif
}

}  // namespace lasnet::profiler
