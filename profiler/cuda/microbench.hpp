#pragma once
// Launchers of the micro-benchmark kernels (microbench.cu). Each checks its launch.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace lasnet::profiler::cuda {

struct LaunchShape {
  int grid = 1;
  int block = 256;
};

// Uniform random floats in [-1, 1) (a counter hash, so a seed always gives the same data).
void fill_random_float(float* data, std::size_t count, std::uint64_t seed, cudaStream_t stream);
// The same as IEEE half precision.
void fill_random_half(void* data, std::size_t count, std::uint64_t seed, cudaStream_t stream);

// Streams `bytes` (a multiple of 64) from `in`; `sink` is written only if a checksum matches
// an impossible value, so the reads cannot be optimised away.
void launch_read(const float* in, std::size_t bytes, float* sink, LaunchShape shape,
                 cudaStream_t stream);
void launch_write(float* out, std::size_t bytes, LaunchShape shape, cudaStream_t stream);
void launch_copy(const float* in, float* out, std::size_t bytes, LaunchShape shape,
                 cudaStream_t stream);
// Reads a buffer of `bytes` (a power of two, at least 64 KiB) `repeats` times through L2
// (ld.global.cg bypasses L1), shifting the start each pass.
void launch_l2_read(const float* in, std::size_t bytes, int repeats, float* sink, LaunchShape shape,
                    cudaStream_t stream);
// 16 independent FMA chains of `iterations` per thread. Block 0 writes its SM cycle count
// and elapsed nanoseconds to clocks[0] and clocks[1].
void launch_fma(int iterations, float* sink, unsigned long long* clocks, LaunchShape shape,
                cudaStream_t stream);
inline constexpr int fma_chains = 16;
void launch_empty(cudaStream_t stream);
// Keeps the stream busy for `ns` nanoseconds (so that launches queue up behind it).
void launch_spin(std::uint64_t ns, cudaStream_t stream);

}  // namespace lasnet::profiler::cuda
