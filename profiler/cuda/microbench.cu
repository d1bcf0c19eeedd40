// Micro-benchmark kernels for `lasnet profile`: DRAM read/write/copy streams, an L2-resident
// read loop, an FMA throughput loop with an in-kernel clock measurement, and empty/spin
// kernels for launch overhead.
#include <cuda_fp16.h>

#include "cuda_check.hpp"
#include "microbench.hpp"

namespace lasnet::profiler::cuda {

namespace {

__device__ inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

__device__ inline float uniform_pm1(std::uint64_t seed, std::size_t i) {
  // 24 random bits -> [0, 1) -> [-1, 1)
  const auto bits =
      static_cast<std::uint32_t>(splitmix64(seed ^ (i * 0x2545F4914F6CDD1DULL)) >> 40);
  return static_cast<float>(bits) * (2.0f / 16777216.0f) - 1.0f;
}

__global__ void fill_float_kernel(float* data, std::size_t count, std::uint64_t seed) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride) {
    data[i] = uniform_pm1(seed, i);
  }
}

__global__ void fill_half_kernel(__half* data, std::size_t count, std::uint64_t seed) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += stride) {
    data[i] = __float2half(uniform_pm1(seed, i));
  }
}

__device__ inline float sum4(float4 v) {
  return (v.x + v.y) + (v.z + v.w);
}

// A checksum no random data reaches exactly; the store keeps the loads alive.
constexpr float impossible = 1.0e30f;

__global__ void read_kernel(const float4* __restrict__ in, std::size_t n, float* sink) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  float acc = 0;
  for (; i + 3 * stride < n; i += 4 * stride) {
    const float4 a = in[i], b = in[i + stride], c = in[i + 2 * stride], d = in[i + 3 * stride];
    acc += (sum4(a) + sum4(b)) + (sum4(c) + sum4(d));
  }
  for (; i < n; i += stride) acc += sum4(in[i]);
  if (acc == impossible) *sink = acc;
}

__global__ void write_kernel(float4* __restrict__ out, std::size_t n) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const float v = static_cast<float>(i & 1023) * (1.0f / 1024.0f);
    out[i] = make_float4(v, -v, v, -v);
  }
}

__global__ void copy_kernel(const float4* __restrict__ in, float4* __restrict__ out,
                            std::size_t n) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (; i + stride < n; i += 2 * stride) {
    const float4 a = in[i], b = in[i + stride];
    out[i] = a;
    out[i + stride] = b;
  }
  for (; i < n; i += stride) out[i] = in[i];
}

__global__ void l2_read_kernel(const float4* __restrict__ in, std::size_t n, int repeats,
                               float* sink) {
  // n is a power of two; each pass starts at a different offset so that no two passes issue
  // the same load (the compiler cannot merge them) while warps stay coalesced.
  const std::size_t mask = n - 1;
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  const std::size_t first = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  float acc = 0;
  for (int r = 0; r < repeats; ++r) {
    const std::size_t shift = static_cast<std::size_t>(r) * 4096;
    std::size_t i = first;
    for (; i + 3 * stride < n; i += 4 * stride) {
      const float4 a = __ldcg(in + ((i + shift) & mask));
      const float4 b = __ldcg(in + ((i + stride + shift) & mask));
      const float4 c = __ldcg(in + ((i + 2 * stride + shift) & mask));
      const float4 d = __ldcg(in + ((i + 3 * stride + shift) & mask));
      acc += (sum4(a) + sum4(b)) + (sum4(c) + sum4(d));
    }
    for (; i < n; i += stride) acc += sum4(__ldcg(in + ((i + shift) & mask)));
  }
  if (acc == impossible) *sink = acc;
}

__device__ inline std::uint64_t global_timer_ns() {
  std::uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__global__ void fma_kernel(int iterations, float* sink, unsigned long long* clocks) {
  float a[fma_chains];
  const float seed = static_cast<float>(threadIdx.x & 31) * 1e-3f;
#pragma unroll
  for (int k = 0; k < fma_chains; ++k) a[k] = seed + static_cast<float>(k) * 1e-2f;
  // a <- a * b + c converges to c / (1 - b): no overflow, no denormals.
  const float b = 0.9999f - seed * 1e-4f;
  const float c = 1e-4f + seed * 1e-6f;
  const long long start_cycles = clock64();
  const std::uint64_t start_ns = global_timer_ns();
  for (int it = 0; it < iterations; ++it) {
#pragma unroll
    for (int k = 0; k < fma_chains; ++k) a[k] = fmaf(a[k], b, c);
  }
  float total = 0;
#pragma unroll
  for (int k = 0; k < fma_chains; ++k) total += a[k];
  const long long end_cycles = clock64();
  const std::uint64_t end_ns = global_timer_ns();
  if (total == impossible) *sink = total;
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    clocks[0] = static_cast<unsigned long long>(end_cycles - start_cycles);
    clocks[1] = end_ns - start_ns;
  }
}

__global__ void empty_kernel() {}

__global__ void spin_kernel(std::uint64_t ns) {
  const std::uint64_t start = global_timer_ns();
  while (global_timer_ns() - start < ns) {
  }
}

int fill_grid(std::size_t count) {
  const std::size_t blocks = (count + 255) / 256;
  return static_cast<int>(blocks < 65536 ? blocks : 65536);
}

}  // namespace

void fill_random_float(float* data, std::size_t count, std::uint64_t seed, cudaStream_t stream) {
  fill_float_kernel<<<fill_grid(count), 256, 0, stream>>>(data, count, seed);
  LASNET_CUDA_CHECK_LAUNCH();
}

void fill_random_half(void* data, std::size_t count, std::uint64_t seed, cudaStream_t stream) {
  fill_half_kernel<<<fill_grid(count), 256, 0, stream>>>(static_cast<__half*>(data), count, seed);
  LASNET_CUDA_CHECK_LAUNCH();
}

void launch_read(const float* in, std::size_t bytes, float* sink, LaunchShape shape,
                 cudaStream_t stream) {
  read_kernel<<<shape.grid, shape.block, 0, stream>>>(reinterpret_cast<const float4*>(in),
                                                      bytes / sizeof(float4), sink);
  LASNET_CUDA_CHECK_LAUNCH();
}

void launch_write(float* out, std::size_t bytes, LaunchShape shape, cudaStream_t stream) {
  write_kernel<<<shape.grid, shape.block, 0, stream>>>(reinterpret_cast<float4*>(out),
                                                       bytes / sizeof(float4));
  LASNET_CUDA_CHECK_LAUNCH();
}

void launch_copy(const float* in, float* out, std::size_t bytes, LaunchShape shape,
                 cudaStream_t stream) {
  copy_kernel<<<shape.grid, shape.block, 0, stream>>>(
      reinterpret_cast<const float4*>(in), reinterpret_cast<float4*>(out), bytes / sizeof(float4));
  LASNET_CUDA_CHECK_LAUNCH();
}

void launch_l2_read(const float* in, std::size_t bytes, int repeats, float* sink, LaunchShape shape,
                    cudaStream_t stream) {
  l2_read_kernel<<<shape.grid, shape.block, 0, stream>>>(reinterpret_cast<const float4*>(in),
                                                         bytes / sizeof(float4), repeats, sink);
  LASNET_CUDA_CHECK_LAUNCH();
}

void launch_fma(int iterations, float* sink, unsigned long long* clocks, LaunchShape shape,
                cudaStream_t stream) {
  fma_kernel<<<shape.grid, shape.block, 0, stream>>>(iterations, sink, clocks);
  LASNET_CUDA_CHECK_LAUNCH();
}

void launch_empty(cudaStream_t stream) {
  empty_kernel<<<1, 1, 0, stream>>>();
  LASNET_CUDA_CHECK_LAUNCH();
}

void launch_spin(std::uint64_t ns, cudaStream_t stream) {
  spin_kernel<<<1, 1, 0, stream>>>(ns);
  LASNET_CUDA_CHECK_LAUNCH();
}

}  // namespace lasnet::profiler::cuda
