#include "lasnet/predictor/op.hpp"

#include <algorithm>

#include "lasnet/common/patch_geometry.hpp"

namespace lasnet::predictor {

std::string_view to_string(OpKind kind) {
  switch (kind) {
    case OpKind::conv:
      return "conv";
    case OpKind::fc:
      return "fc";
    case OpKind::pool:
      return "pool";
    case OpKind::global_pool:
      return "global_pool";
    case OpKind::add:
      return "add";
    case OpKind::se:
      return "se";
    case OpKind::elementwise:
      return "elementwise";
    case OpKind::upsample:
      return "upsample";
    case OpKind::concat:
      return "concat";
    case OpKind::masker:
      return "masker";
    case OpKind::masker_conv:
      return "masker_conv";
    case OpKind::dilate:
      return "dilate";
    case OpKind::union_conv:
      return "union_conv";
    case OpKind::gather:
      return "gather";
    case OpKind::gathered_conv:
      return "gathered_conv";
    case OpKind::gather_conv:
      return "gather_conv";
    case OpKind::scatter:
      return "scatter";
    case OpKind::scatter_add:
      return "scatter_add";
    case OpKind::conv_scatter_add:
      return "conv_scatter_add";
    case OpKind::channel_gate:
      return "channel_gate";
  }
  return "?";
}

std::string_view to_string(Pointwise pointwise) {
  switch (pointwise) {
    case Pointwise::copy:
      return "copy";
    case Pointwise::relu:
      return "relu";
    case Pointwise::relu6:
      return "relu6";
    case Pointwise::silu:
      return "silu";
    case Pointwise::hardswish:
      return "hardswish";
    case Pointwise::sigmoid:
      return "sigmoid";
    case Pointwise::gelu:
      return "gelu";
    case Pointwise::layernorm:
      return "layernorm";
    case Pointwise::batchnorm:
      return "batchnorm";
    case Pointwise::scale:
      return "scale";
  }
  return "?";
}

std::int64_t Op::patch_in_extent() const {
  return patch_input_extent(granularity, stride, kernel_extent());
}

std::int64_t Op::patch_out_pixels() const {
  return active_pixels > 0 ? active_pixels : active_patches * granularity * granularity;
}

std::int64_t Op::patch_in_pixels() const {
  return active_in_pixels > 0 ? active_in_pixels
                              : active_patches * patch_in_extent() * patch_in_extent();
}

std::int64_t Op::output_elements() const {
  switch (kind) {
    case OpKind::masker:
      return batch * patches_per_side(out_height, granularity) *
             patches_per_side(out_width, granularity);
    case OpKind::masker_conv:
      return batch * out_height * out_width * (out_channels + 1);
    case OpKind::dilate:  // the list of needed pixels
      return read_pixels;
    case OpKind::global_pool:
    case OpKind::channel_gate:
    case OpKind::fc:
      return batch * out_channels;
    case OpKind::se:
      return (is_dynamic() ? patch_out_pixels() : batch * out_height * out_width) * in_channels;
    case OpKind::scatter:  // the pixels the active patches leave
      return std::max<std::int64_t>(0, batch * out_height * out_width - patch_out_pixels()) *
             out_channels;
    default:
      break;
  }
  if (is_dynamic()) return patch_out_pixels() * out_channels;
  return batch * out_height * out_width * out_channels;
}

namespace {

// MACs per output element of a conv-like op.
double reduction(const Op& op) {
  return static_cast<double>(op.in_channels / op.groups) *
         static_cast<double>(op.kernel * op.kernel);
}

double weight_elements(const Op& op) {
  return static_cast<double>(op.out_channels) * reduction(op) +
         static_cast<double>(op.out_channels);
}

double in_map(const Op& op) {
  return static_cast<double>(op.batch * op.in_height * op.in_width * op.in_channels);
}

// Input elements a dense conv reads: a kernel smaller than its stride (a 1x1 stride-2
// shortcut) touches only the rows and columns its taps land on (NHWC: each touched pixel's
// channels are one contiguous run), not the whole map.
double conv_in_touched(const Op& op) {
  if (op.kernel >= op.stride) return in_map(op);
  const std::int64_t rows = std::min(op.in_height, op.out_height * op.kernel);
  const std::int64_t cols = std::min(op.in_width, op.out_width * op.kernel);
  return static_cast<double>(op.batch * rows * cols * op.in_channels);
}

double out_map(const Op& op) {
  return static_cast<double>(op.batch * op.out_height * op.out_width * op.out_channels);
}

// Input pixels a dynamic op reads, over the batch: patches overlap by their halo, so never more
// than the whole input map.
double gathered_in_pixels(const Op& op) {
  if (op.read_pixels > 0) return static_cast<double>(op.read_pixels);
  return std::min(static_cast<double>(op.patch_in_pixels()),
                  static_cast<double>(op.batch * op.in_height * op.in_width));
}

double patch_out_pixels(const Op& op) {
  return static_cast<double>(op.patch_out_pixels());
}

// FLOPs per element of an elementwise op: one compare for relu, two for relu6's clamp, exp,
// add and divide for sigmoid (4; silu multiplies once more: 5), x * relu6(x + 3) / 6 for
// hardswish (5), the erf form of gelu (8); layernorm accumulates the sum and the sum of
// squares over the pixel's channels, then subtracts, scales and applies its affine (8);
// batchnorm is a multiply-add (2), a scale one multiply (1), a copy nothing.
double pointwise_flops(Pointwise p) {
  switch (p) {
    case Pointwise::copy:
      return 0;
    case Pointwise::relu:
    case Pointwise::scale:
      return 1;
    case Pointwise::relu6:
    case Pointwise::batchnorm:
      return 2;
    case Pointwise::sigmoid:
      return 4;
    case Pointwise::silu:
    case Pointwise::hardswish:
      return 5;
    case Pointwise::gelu:
    case Pointwise::layernorm:
      return 8;
  }
  return 0;
}

// Per-channel parameters an elementwise op reads (affine of a norm, scale factors).
double pointwise_parameters(const Op& op) {
  const auto c = static_cast<double>(op.out_channels);
  switch (op.pointwise) {
    case Pointwise::layernorm:
    case Pointwise::batchnorm:
      return 2 * c;
    case Pointwise::scale:
      return c;
    default:
      return 0;
  }
}

double grid_cells(const Op& op) {
  return static_cast<double>(op.batch * patches_per_side(op.out_height, op.granularity) *
                             patches_per_side(op.out_width, op.granularity));
}

constexpr double index_bytes = 4;  // int32 patch indices and mask entries

}  // namespace

double flops(const Op& op) {
  const double outputs = static_cast<double>(op.output_elements());
  switch (op.kind) {
    case OpKind::conv:
    case OpKind::fc:
    case OpKind::gathered_conv:
    case OpKind::gather_conv:
    case OpKind::union_conv:
      return 2.0 * outputs * reduction(op);
    case OpKind::conv_scatter_add:
      return 2.0 * outputs * reduction(op) + outputs;  // + the residual add
    case OpKind::masker_conv:  // conv1 with one extra channel, then pooling of that channel
      return 2.0 * outputs * reduction(op) +
             static_cast<double>(op.batch * op.out_height * op.out_width);
    case OpKind::pool:
      return outputs * static_cast<double>(op.kernel * op.kernel);
    case OpKind::global_pool:
      return in_map(op);
    case OpKind::add:
    case OpKind::scatter_add:
      return outputs;
    case OpKind::scatter:
    case OpKind::gather:
    case OpKind::concat:
    case OpKind::dilate:  // marks and a compaction: no arithmetic
      return 0;
    case OpKind::elementwise:
      return outputs * pointwise_flops(op.pointwise);
    case OpKind::upsample:  // bilinear: 4 taps weighted and summed (4 multiplies, 3 adds)
      return op.kernel > 1 ? 7.0 * outputs : 0.0;
    case OpKind::se: {
      // pool + fc(C->R) + fc(R->C) + scale, R = out_channels (squeeze width).
      const double pixels = op.is_dynamic()
                                ? patch_out_pixels(op)
                                : static_cast<double>(op.batch * op.out_height * op.out_width);
      const double c = static_cast<double>(op.in_channels);
      const double r = static_cast<double>(op.out_channels);
      return 2.0 * pixels * c + 4.0 * static_cast<double>(op.batch) * c * r;
    }
    case OpKind::masker: {
      // Pool every input pixel, then a 1x1 conv to one channel per grid cell.
      return in_map(op) + 2.0 * grid_cells(op) * static_cast<double>(op.in_channels);
    }
    case OpKind::channel_gate:
      return in_map(op) + 2.0 * static_cast<double>(op.batch * op.in_channels * op.out_channels);
  }
  return 0;
}

double unique_dram_bytes(const Op& op) {
  const double e = bytes_per_element(op.precision);
  switch (op.kind) {
    case OpKind::conv:
    case OpKind::fc:
      return e * (conv_in_touched(op) + weight_elements(op) + out_map(op));
    case OpKind::masker_conv:
      return e * (in_map(op) + weight_elements(op) + static_cast<double>(op.in_channels) + 1 +
                  out_map(op)) +
             index_bytes * (grid_cells(op) + static_cast<double>(op.active_patches));
    case OpKind::pool:
    case OpKind::upsample:
    case OpKind::concat:
      return e * (in_map(op) + out_map(op));
    case OpKind::elementwise: {
      const double out = static_cast<double>(op.output_elements());
      return e * (out + out + pointwise_parameters(op));
    }
    case OpKind::global_pool:
      return e * (in_map(op) + static_cast<double>(op.batch * op.out_channels));
    case OpKind::add:
      return e * 3.0 * out_map(op);
    case OpKind::se: {
      const double pixels = op.is_dynamic()
                                ? patch_out_pixels(op)
                                : static_cast<double>(op.batch * op.out_height * op.out_width);
      const double map = pixels * static_cast<double>(op.in_channels);
      // read for the pool, read + write for the scale, two small fc weight matrices
      return e * (3.0 * map + 2.0 * static_cast<double>(op.in_channels * op.out_channels));
    }
    case OpKind::masker:
      return e * (in_map(op) + static_cast<double>(op.in_channels) + 1) +
             index_bytes * (grid_cells(op) + static_cast<double>(op.active_patches));
    case OpKind::dilate:  // the mask in, the needed pixels' indices out
      return index_bytes * (grid_cells(op) + static_cast<double>(op.read_pixels));
    case OpKind::gather: {
      const double copied = static_cast<double>(op.patch_out_pixels() * op.in_channels);
      return e * (gathered_in_pixels(op) * static_cast<double>(op.in_channels) + copied) +
             index_bytes * static_cast<double>(op.active_patches);
    }
    case OpKind::gathered_conv: {
      const double in = static_cast<double>(op.patch_in_pixels() * op.in_channels);
      return e * (in + weight_elements(op) + static_cast<double>(op.output_elements()));
    }
    case OpKind::gather_conv:
    case OpKind::union_conv:  // x at the U needed pixels in, U rows of conv1's map out
      return e * (gathered_in_pixels(op) * static_cast<double>(op.in_channels) +
                  weight_elements(op) + static_cast<double>(op.output_elements())) +
             index_bytes * static_cast<double>(op.active_patches);
    case OpKind::scatter:  // the shortcut in and ReLU(it) out at the inactive pixels, the mask
      return e * 2.0 * static_cast<double>(op.output_elements()) + grid_cells(op);
    case OpKind::scatter_add:
      return e * 3.0 * static_cast<double>(op.output_elements()) +
             index_bytes * static_cast<double>(op.active_patches);
    case OpKind::conv_scatter_add: {
      const double in = static_cast<double>(op.patch_in_pixels() * op.in_channels);
      return e * (in + weight_elements(op) + 2.0 * static_cast<double>(op.output_elements())) +
             index_bytes * static_cast<double>(op.active_patches);
    }
    case OpKind::channel_gate:
      return e * (in_map(op) + static_cast<double>(op.in_channels * op.out_channels) +
                  static_cast<double>(op.batch * op.out_channels));
  }
  return 0;
}

std::string op_class(const Op& op) {
  std::string name(to_string(op.kind));
  switch (op.kind) {
    case OpKind::conv:
    case OpKind::masker_conv:
    case OpKind::gathered_conv:
    case OpKind::gather_conv:
    case OpKind::union_conv:
    case OpKind::conv_scatter_add:
      name += ".k" + std::to_string(op.kernel);
      if (op.groups > 1) name += op.groups == op.in_channels ? ".depthwise" : ".grouped";
      return name;
    case OpKind::se:  // a dynamic block's pool walks the index list: its own loop, its own class
      return op.is_dynamic() ? name + ".dynamic" : name;
    case OpKind::elementwise:  // "elementwise.layernorm"; calibration falls back to the kind
      return name + "." + std::string(to_string(op.pointwise));
    default:
      return name;
  }
}

}  // namespace lasnet::predictor
