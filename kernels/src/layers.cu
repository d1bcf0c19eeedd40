// The stem and head layers on the GPU. Convs are im2col + cuBLASLt (the blocks' LtGemm and
// im2col, bias and ReLU in the GEMM's epilogue); an input whose channels are not a multiple of
// four (an RGB image) is first copied into a zero-padded map of 4k channels, which im2col's
// float4 taps need. Pools are one thread per output element: they are a small part of a
// network and memory-bound.
#include <algorithm>
#include <cfloat>
#include <memory>

#include "context_impl.cuh"
#include "conv.cuh"
#include "cuda_check.cuh"
#include "lasnet/kernels/layers.hpp"
#include "lt_gemm.cuh"

namespace lasnet::kernels {

namespace {

using detail::DeviceBuffer;

unsigned grid_for(long long total) {
  return static_cast<unsigned>(std::min<long long>((total + 255) / 256, 132LL * 64));
}

__global__ void pad_channels_kernel(const float* in, long long pixels, int c, int c4, float* out) {
  const long long total = pixels * c;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long p = i / c;
    out[p * c4 + (i - p * c)] = in[i];
  }
}

// out[n][y][x][c]: max or mean over the window's taps inside the map (mean over kernel^2).
__global__ void pool_kernel(const float* in, int n, int h, int w, int c, int ho, int wo, int k,
                            int stride, int pad, int is_max, float* out) {
  const long long total = static_cast<long long>(n) * ho * wo * c;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const int ch = static_cast<int>(i % c);
    long long r = i / c;
    const int x = static_cast<int>(r % wo);
    r /= wo;
    const int y = static_cast<int>(r % ho);
    const int img = static_cast<int>(r / ho);
    float acc = is_max ? -FLT_MAX : 0.f;
    for (int ky = 0; ky < k; ++ky) {
      const int iy = y * stride - pad + ky;
      if (iy < 0 || iy >= h) continue;
      for (int kx = 0; kx < k; ++kx) {
        const int ix = x * stride - pad + kx;
        if (ix < 0 || ix >= w) continue;
        const float v = __ldg(in + ((static_cast<long long>(img) * h + iy) * w + ix) * c + ch);
        acc = is_max ? fmaxf(acc, v) : acc + v;
      }
    }
    out[i] = is_max ? acc : acc / static_cast<float>(k * k);
  }
}

// out[n][c] = mean over the map; consecutive threads take consecutive channels (coalesced).
__global__ void global_avg_pool_kernel(const float* in, int n, int hw, int c, float* out) {
  const long long total = static_cast<long long>(n) * c;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long img = i / c;
    const int ch = static_cast<int>(i - img * c);
    const float* p = in + img * hw * c + ch;
    float acc = 0.f;
    for (int j = 0; j < hw; ++j) acc += __ldg(p + static_cast<long long>(j) * c);
    out[i] = acc / static_cast<float>(hw);
  }
}

int to_int(std::int64_t v) {
  return static_cast<int>(v);
}

}  // namespace

struct LayerRunner::Impl {
  Context::Impl* ctx = nullptr;
  LayerConfig cfg;
  StepInfo info;
  std::int64_t padded_c = 0;  // conv: input channels as the GEMM reads them (multiple of 4)
  bool pad_input = false;
  bool use_im2col = false;
  DeviceBuffer<float> weight, bias, padded, col, out, input;
  std::unique_ptr<detail::LtGemm> gemm;

  Impl(Context::Impl& context, const LayerConfig& config) : ctx(&context), cfg(config) {
    const Support support = check_supported(cfg);
    if (!support.ok) throw lasnet::Error("LayerRunner: " + support.reason);
    const std::int64_t ho = cfg.out_height(), wo = cfg.out_width();
    const std::int64_t out_px = cfg.batch * ho * wo;
    out = DeviceBuffer<float>(static_cast<std::size_t>(cfg.out_elements()));
    info.name = to_string(cfg.kind);
    info.bytes = 4.0 * static_cast<double>(cfg.in_elements() + cfg.out_elements());
    const bool tf32 = cfg.precision == Precision::tf32;
    const std::size_t ws = ctx->workspace.bytes();
    if (cfg.kind == LayerKind::conv) {
      const LayerData data = make_layer_data(cfg);
      padded_c = conv_gemm_channels(cfg);
      pad_input = padded_c != cfg.in_channels;
      use_im2col = conv_uses_im2col(cfg);
      const std::int64_t taps = cfg.kernel * cfg.kernel;
      // [cout][ky][kx][padded_c], the padded channels' weights zero.
      std::vector<float> w(static_cast<std::size_t>(cfg.out_channels * taps * padded_c), 0.f);
      for (std::int64_t o = 0; o < cfg.out_channels; ++o) {
        for (std::int64_t t = 0; t < taps; ++t) {
          for (std::int64_t c = 0; c < cfg.in_channels; ++c) {
            w[static_cast<std::size_t>((o * taps + t) * padded_c + c)] =
                data.weight[static_cast<std::size_t>((o * taps + t) * cfg.in_channels + c)];
          }
        }
      }
      weight = upload(w);
      bias = upload(data.bias);
      if (pad_input) {
        padded = DeviceBuffer<float>(
            static_cast<std::size_t>(cfg.batch * cfg.in_height * cfg.in_width * padded_c));
        LASNET_CUDA_CHECK(cudaMemset(padded.get(), 0, padded.bytes()));
      }
      const std::int64_t k = taps * padded_c;
      if (use_im2col) col = DeviceBuffer<float>(static_cast<std::size_t>(out_px * k));
      gemm = std::make_unique<detail::LtGemm>(ctx->lt, tf32, out_px, k, cfg.out_channels,
                                              bias.get(), cfg.relu, false, ws);
      info.kernel = use_im2col ? "im2col+cublaslt" : "cublaslt";
      info.flops = 2.0 * static_cast<double>(out_px * taps * cfg.in_channels * cfg.out_channels);
      info.bytes += 4.0 * static_cast<double>(w.size());
    } else if (cfg.kind == LayerKind::fc) {
      const LayerData data = make_layer_data(cfg);
      weight = upload(data.weight);
      bias = upload(data.bias);
      gemm = std::make_unique<detail::LtGemm>(ctx->lt, tf32, cfg.batch, cfg.in_channels,
                                              cfg.out_channels, bias.get(), cfg.relu, false, ws);
      info.kernel = "cublaslt";
      info.flops = 2.0 * static_cast<double>(cfg.batch * cfg.in_channels * cfg.out_channels);
      info.bytes += 4.0 * static_cast<double>(data.weight.size());
    } else {
      info.kernel = "direct";
      info.flops = static_cast<double>(cfg.out_elements()) *
                   (cfg.kind == LayerKind::global_avg_pool
                        ? static_cast<double>(cfg.in_height * cfg.in_width)
                        : static_cast<double>(cfg.kernel * cfg.kernel));
    }
    LASNET_CUDA_CHECK(cudaDeviceSynchronize());
  }

  static DeviceBuffer<float> upload(const std::vector<float>& host) {
    DeviceBuffer<float> d(host.size());
    if (!host.empty()) {
      LASNET_CUDA_CHECK(cudaMemcpy(d.get(), host.data(), d.bytes(), cudaMemcpyHostToDevice));
    }
    return d;
  }

  float* run(const float* input, cudaStream_t st) {
    const std::int64_t ho = cfg.out_height(), wo = cfg.out_width();
    const std::size_t ws = ctx->workspace.bytes();
    switch (cfg.kind) {
      case LayerKind::conv: {
        const float* src = input;
        if (pad_input) {
          const long long pixels = cfg.batch * cfg.in_height * cfg.in_width;
          pad_channels_kernel<<<grid_for(pixels * cfg.in_channels), 256, 0, st>>>(
              input, pixels, to_int(cfg.in_channels), to_int(padded_c), padded.get());
          LASNET_CUDA_CHECK_LAUNCH();
          src = padded.get();
        }
        if (use_im2col) {
          detail::ConvArgs a;
          a.src = src;
          a.src_h = to_int(cfg.in_height);
          a.src_w = to_int(cfg.in_width);
          a.src_c = to_int(padded_c);
          a.kh = a.kw = to_int(cfg.kernel);
          a.stride = to_int(cfg.stride);
          a.pad = to_int(cfg.padding);
          a.groups = 1;
          a.cin_g = to_int(padded_c);
          a.a_map.kind = detail::RowMap::grid;
          a.a_map.gh = to_int(ho);
          a.a_map.gw = to_int(wo);
          a.a_map.rows_max = cfg.batch * ho * wo;
          detail::launch_im2col(a, col.get(), st);
          src = col.get();
        }
        gemm->run(ctx->lt, weight.get(), src, nullptr, out.get(), ctx->workspace.get(), ws, st);
        break;
      }
      case LayerKind::fc:
        gemm->run(ctx->lt, weight.get(), input, nullptr, out.get(), ctx->workspace.get(), ws, st);
        break;
      case LayerKind::max_pool:
      case LayerKind::avg_pool:
        pool_kernel<<<grid_for(cfg.out_elements()), 256, 0, st>>>(
            input, to_int(cfg.batch), to_int(cfg.in_height), to_int(cfg.in_width),
            to_int(cfg.in_channels), to_int(ho), to_int(wo), to_int(cfg.kernel), to_int(cfg.stride),
            to_int(cfg.padding), cfg.kind == LayerKind::max_pool ? 1 : 0, out.get());
        LASNET_CUDA_CHECK_LAUNCH();
        break;
      case LayerKind::global_avg_pool:
        global_avg_pool_kernel<<<grid_for(cfg.out_elements()), 256, 0, st>>>(
            input, to_int(cfg.batch), to_int(cfg.in_height * cfg.in_width), to_int(cfg.in_channels),
            out.get());
        LASNET_CUDA_CHECK_LAUNCH();
        break;
    }
    return out.get();
  }
};

LayerRunner::LayerRunner(Context& context, const LayerConfig& config)
    : impl_(std::make_unique<Impl>(context.impl(), config)) {}
LayerRunner::~LayerRunner() = default;
LayerRunner::LayerRunner(LayerRunner&&) noexcept = default;
LayerRunner& LayerRunner::operator=(LayerRunner&&) noexcept = default;

const LayerConfig& LayerRunner::config() const {
  return impl_->cfg;
}
const StepInfo& LayerRunner::step() const {
  return impl_->info;
}
float* LayerRunner::run_on(const float* input, StreamHandle stream) {
  return impl_->run(input, stream);
}
float* LayerRunner::output() const {
  return impl_->out.get();
}
float* LayerRunner::upload_input(const std::vector<float>& host) {
  if (static_cast<std::int64_t>(host.size()) != impl_->cfg.in_elements()) {
    throw lasnet::Error("LayerRunner::upload_input: the map does not have the layer's input shape");
  }
  impl_->input = Impl::upload(host);
  return impl_->input.get();
}
std::vector<float> LayerRunner::download() const {
  LASNET_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<float> host(impl_->out.size());
  if (!host.empty()) {
    LASNET_CUDA_CHECK(
        cudaMemcpy(host.data(), impl_->out.get(), impl_->out.bytes(), cudaMemcpyDeviceToHost));
  }
  return host;
}

}  // namespace lasnet::kernels
