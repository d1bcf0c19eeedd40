#pragma once
// Operators the predictor models, as plain value descriptors with their analytic counts.
// Layout is NHWC (channels last), as in the project's kernels. For dynamic operators the map
// is cut into patches of `granularity` output pixels per side and `active_patches` counts the
// patches that run over the whole batch.
#include <cstdint>
#include <string>
#include <string_view>

#include "lasnet/predictor/profile.hpp"

namespace lasnet::predictor {

enum class OpKind {
  // dense
  conv,         // any kernel, stride, groups (depthwise when groups == channels)
  fc,           // batch x in -> batch x out
  pool,         // max/avg pool, kernel x kernel at stride
  global_pool,  // mean over the map, per channel
  add,          // elementwise residual add (+ReLU)
  se,           // squeeze-excitation: global pool, fc, fc, sigmoid, channel scale
  elementwise,  // one unfused pass over the map (an activation, a norm, a scale)
  upsample,     // nearest (kernel 1) or bilinear (kernel 2) by an integer factor (stride)
  concat,       // copies the maps it joins into one (in_channels = out_channels, all of them)
  // dynamic
  masker,            // pool to patch grid, 1x1 conv to one channel, threshold, compaction
  masker_conv,       // conv1 over the full map with one extra output channel: the mask logit
  dilate,            // mask -> list of the conv1 pixels any active patch's conv2 reads
  union_conv,        // 1x1 conv1 on those pixels only (M = their count), into the full map
  gather,            // copy active patches with their halo into a dense buffer
  gathered_conv,     // conv over gathered patches (valid conv on each patch)
  gather_conv,       // conv that reads the full map through the index list (gather fused)
  scatter,           // ReLU(shortcut) at the pixels outside the active patches (whole map walked)
  scatter_add,       // add patch outputs into the residual at their positions
  conv_scatter_add,  // conv whose epilogue adds into the residual (scatter fused)
  channel_gate,      // channel skipping: global pool + fc -> per-channel keep decisions
};
std::string_view to_string(OpKind kind);

// What an elementwise op computes per element: FLOPs in docs/model.md.
enum class Pointwise {
  copy,
  relu,
  relu6,
  silu,
  hardswish,
  sigmoid,
  gelu,
  layernorm,
  batchnorm,
  scale
};
std::string_view to_string(Pointwise pointwise);

struct Op {
  OpKind kind = OpKind::conv;
  Precision precision = Precision::fp32;
  std::int64_t batch = 1;
  std::int64_t in_channels = 0;
  std::int64_t out_channels = 0;               // se: squeeze channels; masker: 1
  std::int64_t in_height = 0, in_width = 0;    // the full input map
  std::int64_t out_height = 0, out_width = 0;  // the full output map
  std::int64_t kernel = 1, stride = 1, groups = 1;
  std::int64_t dilation = 1;  // convs: taps kernel x kernel, footprint (kernel-1)*dilation+1
  Pointwise pointwise = Pointwise::copy;  // elementwise ops
  // Dynamic ops: `granularity` is the side of the output patch this op computes (the block's S
  // for conv2/conv3/scatter; S plus the halo for a gathered conv1), `active_patches` the patches
  // computed over the whole batch. The masker's granularity is the block's S on its output map.
  std::int64_t granularity = 0;
  std::int64_t active_patches = 0;
  // Where the block's S does not divide its map the border patches are partial: the output
  // and input pixels the active patches cover, over the batch (expected over the patch grid).
  // 0 = whole patches (active_patches x granularity^2 and x patch_in_extent()^2).
  std::int64_t active_pixels = 0;
  std::int64_t active_in_pixels = 0;
  // gather / gather_conv: distinct input pixels the active patches read over the batch, where
  // the mask is known (mask_stats.hpp); 0 = P x extent^2, capped at the map (no mask model).
  // dilate / union_conv: the needed conv1 pixels U over the batch (union_conv also has
  // granularity 1 and active_patches U: a "patch" per needed pixel).
  std::int64_t read_pixels = 0;
  // se: the active patches of the busiest image where the mask is known (mask_stats.hpp);
  // 0 = the uniform expectation for P over the batch.
  std::int64_t max_image_patches = 0;

  bool is_dynamic() const { return granularity > 0; }
  // The kernel's side with its dilation folded in.
  std::int64_t kernel_extent() const { return (kernel - 1) * dilation + 1; }
  // Pixels per side of one patch as this op reads it: (granularity - 1) * stride + kernel_extent.
  std::int64_t patch_in_extent() const;
  // Pixels of the active patches over the batch, as this op writes and reads them.
  std::int64_t patch_out_pixels() const;
  std::int64_t patch_in_pixels() const;
  // Output elements over the whole batch (active patches only for dynamic ops).
  std::int64_t output_elements() const;
  bool operator==(const Op&) const = default;
};

// Analytic counts, independent of the schedule: useful arithmetic and the fewest bytes that
// must cross DRAM (each input element read once, each output written once).
double flops(const Op& op);
double unique_dram_bytes(const Op& op);

// The class calibration keys its per-operator corrections by: the kind, then for convolutions
// the kernel size and whether grouped or depthwise ("conv.k1", "gathered_conv.k3.grouped",
// "conv.k3.depthwise"), elementwise ops by what they compute ("elementwise.gelu"); other kinds
// are their name alone ("masker").
std::string op_class(const Op& op);

}  // namespace lasnet::predictor
