#pragma once
// Tile, wave and patch arithmetic is shared by the predictor (host only) and the kernels
// (device). Under nvcc the functions become __host__ __device__; elsewhere plain inline.
#if defined(__CUDACC__)
#define LASNET_HOST_DEVICE __host__ __device__ inline
#else
#define LASNET_HOST_DEVICE inline
#endif
