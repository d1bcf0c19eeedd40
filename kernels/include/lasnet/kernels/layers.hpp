#pragma once
// The plain layers around the blocks (a network's stem and head): conv (BatchNorm folded into
// its bias, ReLU or none), max/avg pooling, global average pooling and the classifier's fc.
// Described and checked here in plain C++ with a CPU reference; LayerRunner runs one layer on
// the GPU (layers.cu: convs as im2col + cuBLASLt, pools as simple kernels). NHWC throughout, as
// the blocks. Link lasnet::kernels_reference for the host part, lasnet::kernels for the runner.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lasnet/kernels/block.hpp"
#include "lasnet/kernels/runner.hpp"

namespace lasnet::kernels {

enum class LayerKind { conv, max_pool, avg_pool, global_avg_pool, fc };
std::string to_string(LayerKind kind);

struct LayerConfig {
  LayerKind kind = LayerKind::conv;
  Precision precision = Precision::fp32;
  std::int64_t batch = 1;
  std::int64_t in_channels = 1, in_height = 1, in_width = 1;  // fc: in_height = in_width = 1
  std::int64_t out_channels = 1;                              // conv, fc; pools keep the channels
  std::int64_t kernel = 1, stride = 1, padding = 0;
  bool relu = false;  // conv, fc: the epilogue's activation
  std::uint64_t seed = 1;

  std::int64_t out_height() const;
  std::int64_t out_width() const;
  std::int64_t out_channels_of() const;  // out_channels for conv/fc, in_channels for pools
  std::int64_t in_elements() const { return batch * in_height * in_width * in_channels; }
  std::int64_t out_elements() const {
    return batch * out_height() * out_width() * out_channels_of();
  }
};

// Whether the GPU runner can run the layer; the reason when not (as check_supported for blocks).
Support check_supported(const LayerConfig& config);

// How LayerRunner runs a conv, for whoever prices it (the predictor's layer schedule): the
// channels its GEMM reads per tap (the input's rounded up to four, as im2col's float4 taps need;
// an RGB image is first copied into a zero-padded map of four), and whether it copies every
// output pixel's taps into an im2col buffer for the GEMM (else the GEMM reads the map itself).
std::int64_t conv_gemm_channels(const LayerConfig& config);
bool conv_uses_im2col(const LayerConfig& config);

// Seeded weights and bias (conv: OHWI [cout][k][k][cin]; fc: [cout][cin]), uniform in
// +-sqrt(3 / fan_in) so activations keep their scale through the stem; empty for pools.
struct LayerData {
  std::vector<float> weight;
  std::vector<float> bias;
};
LayerData make_layer_data(const LayerConfig& config);
// A seeded non-negative input map (what an image normalised to [0, 1) looks like).
std::vector<float> make_layer_input(const LayerConfig& config, std::uint64_t seed);

// out = the layer applied to `in` (NHWC), in double accumulation. Pools: max over the taps
// inside the map; avg divides by kernel^2 (padding counts, as PyTorch's default).
std::vector<float> reference_layer(const LayerConfig& config, const LayerData& data,
                                   const std::vector<float>& in);

// One layer on the GPU: owns its weights (make_layer_data's values) and output buffer.
class LayerRunner {
 public:
  LayerRunner(Context& context, const LayerConfig& config);  // throws if not supported
  ~LayerRunner();
  LayerRunner(LayerRunner&&) noexcept;
  LayerRunner& operator=(LayerRunner&&) noexcept;
  LayerRunner(const LayerRunner&) = delete;
  LayerRunner& operator=(const LayerRunner&) = delete;

  const LayerConfig& config() const;
  const StepInfo& step() const;  // name "conv", "max_pool", ...; its implementation and counts
  // Launches the layer on `input` (NHWC, config's input shape; device memory) and returns the
  // device map the output lands in (asynchronous).
  float* run_on(const float* input, StreamHandle stream = nullptr);
  float* output() const;  // where run_on's output lands (fixed for the runner's life)
  // An input map owned by the runner (the network's image, for the first stem layer): copies
  // `host` (config's input shape) to the device and returns where it lives.
  float* upload_input(const std::vector<float>& host);
  // Synchronises and copies the output of the latest run back.
  std::vector<float> download() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace lasnet::kernels
