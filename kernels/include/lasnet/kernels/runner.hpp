#pragma once
// The GPU side of lasnet::kernels as the profiler and the tests see it: a device context and a
// BlockRunner that owns one block's device buffers and exposes the block as named steps, each
// launchable on a stream. Plain C++: no CUDA header (streams are passed as CUstream_st*, which
// is what cudaStream_t is), so host code includes it without nvcc. Link lasnet::kernels.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lasnet/kernels/block.hpp"

struct CUstream_st;  // cudaStream_t is CUstream_st*

namespace lasnet::kernels {

using StreamHandle = CUstream_st*;  // nullptr: the legacy default stream

// Number of CUDA devices that answer (0 when there is no driver or no device); never throws.
int cuda_device_count();

// Per-device state shared by runners: the cuBLAS(Lt) handles and their workspace. Not
// thread-safe; one per host thread. Move-only.
class Context {
 public:
  Context();  // uses the current device; throws lasnet::Error naming the failing CUDA call
  ~Context();
  Context(Context&&) noexcept;
  Context& operator=(Context&&) noexcept;
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Whether tf32 implicit GEMMs can run as wgmma here (sm_90 device, sm_90a build).
  bool wgmma() const;

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// One step of the block. Names match the predictor's op names: "shortcut", "masker_conv",
// "masker", "dilate", "gather", "conv1", "conv2", "se", "conv3", "scatter_add", "add"
// (docs/kernels.md).
struct StepInfo {
  std::string name;
  std::string kernel;  // which implementation runs it: "cublaslt", "igemm_tf32_128x128", ...
  double flops = 0;    // useful arithmetic at the expected number of active patches
  double bytes = 0;    // fewest DRAM bytes: inputs read once, outputs written once
};

// Host copies of what a run produced, for checking against the CPU reference (fp16 blocks:
// their __half values, exactly, as float).
struct BlockOutputs {
  std::vector<float> out;            // [N][Ho][Wo][Cout]
  std::vector<float> patch_logits;   // [N][GH][GW] (dynamic; with the bias)
  std::vector<std::uint8_t> mask;    // [N][GH][GW] (dynamic)
  std::vector<std::int32_t> active;  // active patch indices n*GH*GW + py*GW + px, ascending
  // The union form: the conv1 pixels its "dilate" step listed (needed_conv1_pixels's order).
  std::vector<std::int32_t> needed_pixels;
  // Intermediates where the configuration materialises them (else empty):
  std::vector<float> gathered_x;  // [P][E][E][Cin]       unfused gather of x
  // Dense [N][H][W][Cmid] (masker_conv1; union_conv1: written at needed_pixels only) or
  // gathered [P][E][E][Cmid].
  std::vector<float> conv1;
  std::vector<float> gathered_conv1;  // [P][E][E][Cmid]      gather of dense conv1 (masker_conv1)
  std::vector<float> conv2;           // dense [N][Ho][Wo][Cmid] or gathered [P][S][S][Cmid]
  std::vector<float> conv3;           // gathered [P][S][S][Cout] (no scatter fusion), +b3
  std::vector<float> shortcut;        // [N][Ho][Wo][Cout] (projection blocks)
  std::vector<float> se_scale;        // [N][Cmid]            SE blocks: the channel scale
  std::vector<float> se;              // SE blocks: conv2 scaled (dense map or gathered rows)
};

class BlockRunner {
 public:
  // Allocates every buffer for the configuration, fills inputs and weights with the seeded
  // random values of make_block_data (on the device), and for dynamic blocks sets the masker
  // bias to reach the density (one host round trip here, none in run()). Throws lasnet::Error
  // if check_supported(config) says no.
  BlockRunner(Context& context, const BlockConfig& config);
  ~BlockRunner();
  BlockRunner(BlockRunner&&) noexcept;
  BlockRunner& operator=(BlockRunner&&) noexcept;
  BlockRunner(const BlockRunner&) = delete;
  BlockRunner& operator=(const BlockRunner&) = delete;

  const BlockConfig& config() const;
  float masker_bias() const;             // the bias chosen for the density (dynamic)
  std::int64_t expected_active() const;  // active patches the bias (or mask) gives

  const std::vector<StepInfo>& steps() const;
  // Launches step i on `stream` (asynchronous). Steps must run in order within one block run;
  // "shortcut" depends only on the input and may go to another stream.
  void run_step(std::size_t i, StreamHandle stream = nullptr, std::int64_t input_index = 0);
  // All steps in order on one stream (asynchronous).
  void run(StreamHandle stream = nullptr, std::int64_t input_index = 0);
  // Refills input copy `input_index` with its original values (asynchronous). With an in-place
  // residual a run overwrites its input with the output, so timed loops restore the copy
  // (outside the timed region) before it is run again; otherwise a no-op in effect.
  void restore_input(std::int64_t input_index, StreamHandle stream = nullptr);

  // Chaining blocks into a network forward. run_on launches every step on an external input
  // map (NHWC, this block's input shape; not the runner's own copies) and returns the map the
  // output lands in: the runner's output buffer, or `input` itself with an in-place residual.
  // Maps are of the block's storage type: float for fp32/tf32, __half for fp16 (hence void*).
  void* run_on(void* input, StreamHandle stream = nullptr);
  // Step i of run_on alone, for a block whose steps go to several streams (the caller orders
  // them as run_on would: every step after the one before it, "shortcut" after the input only).
  void run_step_on(std::size_t i, void* input, StreamHandle stream = nullptr);
  // The map run_on(input) leaves its output in.
  void* output_of(void* input) const;
  // Dynamic blocks: re-chooses the masker bias from the patch logits of `input` so that
  // `density` of the patches are active (synchronises: one host round trip).
  void calibrate_masker(const void* input, double density);
  // Active patches of the latest run (dynamic; synchronises and reads the device count).
  std::int64_t active_patches() const;
  // Patches of the mask (batch * patches per image); 0 for a dense block.
  std::int64_t total_patches() const;

  // Fills every output and intermediate buffer with NaN (so unwritten elements show); in place,
  // the output is the input and keeps its values (an unwritten active pixel still shows, as x
  // instead of ReLU(x + conv3 + b3)).
  void poison();
  // Synchronises the device and copies the results back (in place: `out` is the input copy of
  // the latest run).
  BlockOutputs download() const;
  // The host data the device holds (input copy 0), with bm set to masker_bias().
  BlockData host_data() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace lasnet::kernels
