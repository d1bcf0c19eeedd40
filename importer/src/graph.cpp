// Pass 1: the ONNX protobuf into a Graph value: nodes in topological order and the shape of
// every value, by one rule per op type. Every failure names the file and the node.
#include <fmt/format.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <set>

#include "internal.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/common/file_io.hpp"

namespace lasnet::importer::detail {

namespace {

using Dims = std::vector<std::int64_t>;

// Keeps every element count inside int64 arithmetic (and a fuzzer's input from asking for more).
constexpr std::int64_t max_dim = std::int64_t{1} << 24;
constexpr std::size_t max_rank = 8;
constexpr std::size_t max_constant_numbers = 64;

std::string dims_text(const Dims& d) {
  if (d.empty()) return "scalar";
  return fmt::format("{}", fmt::join(d, "x"));
}

// Element counts are capped (max_elements) when a value is created, so products stay in range.
constexpr std::int64_t max_elements = std::int64_t{1} << 40;
std::int64_t element_count(const Dims& d) {
  std::int64_t n = 1;
  for (const auto x : d) {
    if (__builtin_mul_overflow(n, x, &n) || n > max_elements) return max_elements + 1;
  }
  return n;
}

std::optional<std::vector<double>> tensor_numbers(const onnx::TensorProto& t) {
  std::int64_t count = 1;
  for (const auto d : t.dims()) {
    if (d < 0 || d > static_cast<std::int64_t>(max_constant_numbers)) return std::nullopt;
    count *= d;
  }
  if (count > static_cast<std::int64_t>(max_constant_numbers)) return std::nullopt;
  std::vector<double> out;
  const auto n = static_cast<std::size_t>(count);
  const std::string& raw = t.raw_data();
  auto from_raw = [&](auto sample) -> bool {
    using T = decltype(sample);
    if (raw.size() != n * sizeof(T)) return false;
    for (std::size_t i = 0; i < n; ++i) {
      T x;
      std::memcpy(&x, raw.data() + i * sizeof(T), sizeof(T));
      out.push_back(static_cast<double>(x));
    }
    return true;
  };
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      if (t.has_raw_data()) {
        if (!from_raw(float{})) return std::nullopt;
      } else {
        for (const float x : t.float_data()) out.push_back(x);
      }
      break;
    case onnx::TensorProto::DOUBLE:
      if (t.has_raw_data()) {
        if (!from_raw(double{})) return std::nullopt;
      } else {
        for (const double x : t.double_data()) out.push_back(x);
      }
      break;
    case onnx::TensorProto::INT64:
      if (t.has_raw_data()) {
        if (!from_raw(std::int64_t{})) return std::nullopt;
      } else {
        for (const auto x : t.int64_data()) out.push_back(static_cast<double>(x));
      }
      break;
    case onnx::TensorProto::INT32:
      if (t.has_raw_data()) {
        if (!from_raw(std::int32_t{})) return std::nullopt;
      } else {
        for (const auto x : t.int32_data()) out.push_back(x);
      }
      break;
    default:
      return std::nullopt;
  }
  if (out.size() != n) return std::nullopt;
  return out;
}

// Dims of a TensorProto or a declared graph input; nullopt for unknown/symbolic ones.
std::optional<Dims> tensor_dims(const onnx::TensorProto& t) {
  if (static_cast<std::size_t>(t.dims_size()) > max_rank) return std::nullopt;
  Dims d;
  for (const auto x : t.dims()) {
    if (x < 0 || x > max_dim) return std::nullopt;
    d.push_back(x);
  }
  return d;
}

std::optional<Dims> declared_dims(const onnx::ValueInfoProto& v) {
  if (!v.type().has_tensor_type() || !v.type().tensor_type().has_shape()) return std::nullopt;
  const auto& shape = v.type().tensor_type().shape();
  if (static_cast<std::size_t>(shape.dim_size()) > max_rank) return std::nullopt;
  Dims d;
  for (const auto& dim : shape.dim()) {
    if (!dim.has_dim_value() || dim.dim_value() <= 0 || dim.dim_value() > max_dim)
      return std::nullopt;
    d.push_back(dim.dim_value());
  }
  return d;
}

std::string declared_text(const onnx::ValueInfoProto& v) {
  if (!v.type().has_tensor_type() || !v.type().tensor_type().has_shape()) return "no shape";
  std::vector<std::string> parts;
  for (const auto& dim : v.type().tensor_type().shape().dim()) {
    if (dim.has_dim_value()) {
      parts.push_back(std::to_string(dim.dim_value()));
    } else {
      parts.push_back(dim.dim_param().empty() ? "?" : dim.dim_param());
    }
  }
  return fmt::format("{}", fmt::join(parts, "x"));
}

Attribute to_attribute(const onnx::AttributeProto& a) {
  Attribute out;
  out.i = a.i();
  out.f = a.f();
  out.s = a.s();
  out.ints.assign(a.ints().begin(), a.ints().end());
  return out;
}

// ---- shape rules ------------------------------------------------------------------------------

struct Context {
  const Graph& graph;
  const Node& node;
  [[noreturn]] void fail(const std::string& message) const { fail_node(graph, node, message); }
  const Value& in(std::size_t i) const {
    if (i >= node.inputs.size() || node.inputs[i].empty())
      fail(fmt::format("input {} is missing", i));
    return graph.values.at(node.inputs[i]);
  }
  bool has_in(std::size_t i) const { return i < node.inputs.size() && !node.inputs[i].empty(); }
  std::int64_t attr_i(const std::string& key, std::int64_t fallback) const {
    const auto it = node.attributes.find(key);
    return it == node.attributes.end() ? fallback : it->second.i;
  }
  Dims attr_ints(const std::string& key) const {
    const auto it = node.attributes.find(key);
    return it == node.attributes.end() ? Dims{} : it->second.ints;
  }
  std::string attr_s(const std::string& key) const {
    const auto it = node.attributes.find(key);
    return it == node.attributes.end() ? std::string{} : it->second.s;
  }
  Dims map_in(std::size_t i, std::size_t rank) const {
    const Dims& d = in(i).dims;
    if (d.size() != rank)
      fail(fmt::format("input '{}' has shape {}, expected rank {}", node.inputs[i], dims_text(d),
                       rank));
    return d;
  }
};

std::int64_t checked(const Context& c, std::int64_t v, const char* what) {
  if (v <= 0 || v > max_dim) c.fail(fmt::format("{} would be {}", what, v));
  return v;
}

using Rule = std::function<std::vector<Dims>(const Context&)>;

std::vector<Dims> same_as_first(const Context& c) {
  return {c.in(0).dims};
}

Dims broadcast(const Context& c) {
  Dims out;
  for (std::size_t i = 0; i < c.node.inputs.size(); ++i) {
    const Dims& d = c.in(i).dims;
    if (d.size() > out.size()) out.insert(out.begin(), d.size() - out.size(), 1);
    for (std::size_t k = 0; k < d.size(); ++k) {
      std::int64_t& o = out[out.size() - d.size() + k];
      const std::int64_t x = d[k];
      if (o == x || x == 1) continue;
      if (o == 1) {
        o = x;
        continue;
      }
      c.fail(fmt::format("inputs of shapes {} cannot be broadcast together",
                         dims_text(c.in(0).dims) + " and " + dims_text(d)));
    }
  }
  return out;
}

// Output extent of a window op (conv, pooling) along one spatial axis.
std::int64_t window_extent(const Context& c, std::int64_t in, std::int64_t kernel,
                           std::int64_t stride, std::int64_t pad_total, std::int64_t dilation,
                           bool ceil_mode) {
  if (kernel < 1 || stride < 1 || dilation < 1 || pad_total < 0 || kernel > max_dim ||
      stride > max_dim || dilation > max_dim || pad_total > max_dim)
    c.fail("kernel, stride, dilation and pads must be positive (pads >= 0)");
  const std::int64_t span = dilation * (kernel - 1) + 1;
  const std::int64_t room = in + pad_total - span;
  if (room < 0) c.fail(fmt::format("a window of {} does not fit an extent of {}", span, in));
  const std::int64_t out = ceil_mode ? (room + stride - 1) / stride + 1 : room / stride + 1;
  return checked(c, out, "the output extent");
}

// Pads per axis (begin + end), from `pads` or `auto_pad`.
std::vector<std::int64_t> pad_totals(const Context& c, const Dims& in, const Dims& kernel,
                                     const Dims& strides, const Dims& dilations) {
  const std::string auto_pad = c.attr_s("auto_pad");
  const std::size_t n = kernel.size();
  std::vector<std::int64_t> total(n, 0);
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    for (std::size_t k = 0; k < n; ++k) {
      const std::int64_t out = (in[k] + strides[k] - 1) / strides[k];
      const std::int64_t span = dilations[k] * (kernel[k] - 1) + 1;
      total[k] = std::max<std::int64_t>(0, (out - 1) * strides[k] + span - in[k]);
    }
    return total;
  }
  if (!auto_pad.empty() && auto_pad != "NOTSET" && auto_pad != "VALID")
    c.fail(fmt::format("auto_pad '{}' is not supported", auto_pad));
  const Dims pads = c.attr_ints("pads");
  if (!pads.empty()) {
    if (pads.size() != 2 * n)
      c.fail(fmt::format("pads has {} entries, expected {}", pads.size(), 2 * n));
    for (std::size_t k = 0; k < n; ++k) total[k] = pads[k] + pads[k + n];
    for (const auto p : pads)
      if (p < 0 || p > max_dim) c.fail("pads must be >= 0");
  }
  return total;
}

Dims spatial_attr(const Context& c, const char* key, std::size_t n, std::int64_t fallback) {
  Dims v = c.attr_ints(key);
  if (v.empty()) v.assign(n, fallback);
  if (v.size() != n) c.fail(fmt::format("{} has {} entries, expected {}", key, v.size(), n));
  return v;
}

std::vector<Dims> conv_rule(const Context& c) {
  const Dims x = c.map_in(0, 4);
  const Dims w = c.map_in(1, 4);
  const std::int64_t groups = c.attr_i("group", 1);
  if (groups < 1 || x[1] % groups != 0 || w[0] % groups != 0 || w[1] * groups != x[1])
    c.fail(fmt::format("weight {} and group {} do not fit an input of {} channels", dims_text(w),
                       groups, x[1]));
  Dims kernel = c.attr_ints("kernel_shape");
  if (kernel.empty()) kernel = {w[2], w[3]};
  if (kernel.size() != 2 || kernel[0] != w[2] || kernel[1] != w[3])
    c.fail("kernel_shape does not match the weight");
  const Dims strides = spatial_attr(c, "strides", 2, 1);
  const Dims dilations = spatial_attr(c, "dilations", 2, 1);
  const auto pads = pad_totals(c, {x[2], x[3]}, kernel, strides, dilations);
  if (c.has_in(2) && (c.in(2).dims.size() != 1 || c.in(2).dims[0] != w[0]))
    c.fail("the bias does not have one entry per output channel");
  return {{x[0], w[0], window_extent(c, x[2], kernel[0], strides[0], pads[0], dilations[0], false),
           window_extent(c, x[3], kernel[1], strides[1], pads[1], dilations[1], false)}};
}

std::vector<Dims> pool_rule(const Context& c) {
  const Dims x = c.map_in(0, 4);
  const Dims kernel = c.attr_ints("kernel_shape");
  if (kernel.size() != 2) c.fail("kernel_shape must have 2 entries");
  const Dims strides = spatial_attr(c, "strides", 2, 1);
  const Dims dilations = spatial_attr(c, "dilations", 2, 1);
  const auto pads = pad_totals(c, {x[2], x[3]}, kernel, strides, dilations);
  const bool ceil_mode = c.attr_i("ceil_mode", 0) != 0;
  return {{x[0], x[1],
           window_extent(c, x[2], kernel[0], strides[0], pads[0], dilations[0], ceil_mode),
           window_extent(c, x[3], kernel[1], strides[1], pads[1], dilations[1], ceil_mode)}};
}

std::vector<Dims> global_pool_rule(const Context& c) {
  const Dims x = c.map_in(0, 4);
  return {{x[0], x[1], 1, 1}};
}

std::vector<Dims> reduce_mean_rule(const Context& c) {
  const Dims x = c.in(0).dims;
  Dims axes = c.attr_ints("axes");
  if (axes.empty() && c.has_in(1)) {
    if (!c.in(1).numbers) c.fail("axes must be a constant");
    for (const double a : *c.in(1).numbers) axes.push_back(static_cast<std::int64_t>(a));
  }
  const auto rank = static_cast<std::int64_t>(x.size());
  std::set<std::int64_t> reduced;
  for (auto a : axes) {
    if (a < -rank || a >= rank) c.fail(fmt::format("axis {} is out of range", a));
    reduced.insert(a < 0 ? a + rank : a);
  }
  if (axes.empty())
    for (std::int64_t a = 0; a < rank; ++a) reduced.insert(a);
  const bool keep = c.attr_i("keepdims", 1) != 0;
  Dims out;
  for (std::int64_t a = 0; a < rank; ++a) {
    if (!reduced.count(a)) {
      out.push_back(x[static_cast<std::size_t>(a)]);
    } else if (keep) {
      out.push_back(1);
    }
  }
  return {out};
}

std::vector<Dims> flatten_rule(const Context& c) {
  const Dims x = c.in(0).dims;
  const auto rank = static_cast<std::int64_t>(x.size());
  std::int64_t axis = c.attr_i("axis", 1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis > rank) c.fail(fmt::format("axis {} is out of range", axis));
  std::int64_t a = 1, b = 1;
  for (std::int64_t k = 0; k < rank; ++k) (k < axis ? a : b) *= x[static_cast<std::size_t>(k)];
  return {{a, b}};
}

std::vector<Dims> reshape_rule(const Context& c) {
  const Dims x = c.in(0).dims;
  if (!c.in(1).numbers) c.fail("the target shape must be a constant");
  const auto& target = *c.in(1).numbers;
  if (target.size() > max_rank) c.fail("the target shape has too many dimensions");
  Dims out;
  int unknown = -1;
  std::int64_t known = 1;
  for (std::size_t k = 0; k < target.size(); ++k) {
    auto v = static_cast<std::int64_t>(target[k]);
    if (v == 0 && c.attr_i("allowzero", 0) == 0) {
      if (k >= x.size()) c.fail("a 0 in the target shape has no input dimension to copy");
      v = x[k];
    }
    if (v == -1) {
      if (unknown >= 0) c.fail("the target shape has two -1 entries");
      unknown = static_cast<int>(k);
      out.push_back(1);
      continue;
    }
    if (v <= 0 || v > max_dim) c.fail(fmt::format("target dimension {} is not supported", v));
    known *= v;
    if (known > std::numeric_limits<std::int64_t>::max() / max_dim)
      c.fail("the target shape is too large");
    out.push_back(v);
  }
  const std::int64_t total = element_count(x);
  if (unknown >= 0) {
    if (known == 0 || total % known != 0) c.fail("the target shape does not divide the input");
    out[static_cast<std::size_t>(unknown)] = checked(c, total / known, "the -1 dimension");
  } else if (known != total) {
    c.fail(fmt::format("cannot reshape {} into {}", dims_text(x), dims_text(out)));
  }
  return {out};
}

std::vector<Dims> transpose_rule(const Context& c) {
  const Dims x = c.in(0).dims;
  Dims perm = c.attr_ints("perm");
  if (perm.empty())
    for (std::size_t k = 0; k < x.size(); ++k)
      perm.insert(perm.begin(), static_cast<std::int64_t>(k));
  if (perm.size() != x.size()) c.fail("perm does not match the input rank");
  Dims out;
  std::set<std::int64_t> seen;
  for (const auto p : perm) {
    if (p < 0 || p >= static_cast<std::int64_t>(x.size()) || !seen.insert(p).second)
      c.fail("perm is not a permutation");
    out.push_back(x[static_cast<std::size_t>(p)]);
  }
  return {out};
}

std::vector<Dims> gemm_rule(const Context& c) {
  Dims a = c.map_in(0, 2);
  Dims b = c.map_in(1, 2);
  if (c.attr_i("transA", 0)) std::swap(a[0], a[1]);
  if (c.attr_i("transB", 0)) std::swap(b[0], b[1]);
  if (a[1] != b[0]) c.fail(fmt::format("inner dimensions {} and {} differ", a[1], b[0]));
  return {{a[0], b[1]}};
}

std::vector<Dims> matmul_rule(const Context& c) {
  const Dims a = c.in(0).dims;
  const Dims b = c.in(1).dims;
  if (a.size() < 2 || b.size() != 2) c.fail("only a map times a 2-D weight is supported");
  if (a.back() != b[0]) c.fail(fmt::format("inner dimensions {} and {} differ", a.back(), b[0]));
  Dims out = a;
  out.back() = b[1];
  return {out};
}

std::vector<Dims> concat_rule(const Context& c) {
  Dims out = c.in(0).dims;
  const auto rank = static_cast<std::int64_t>(out.size());
  std::int64_t axis = c.attr_i("axis", 1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) c.fail(fmt::format("axis {} is out of range", axis));
  const auto ax = static_cast<std::size_t>(axis);
  for (std::size_t i = 1; i < c.node.inputs.size(); ++i) {
    const Dims& d = c.in(i).dims;
    if (d.size() != out.size()) c.fail("inputs differ in rank");
    for (std::size_t k = 0; k < d.size(); ++k) {
      if (k == ax) {
        out[k] = checked(c, out[k] + d[k], "the concatenated extent");
      } else if (d[k] != out[k]) {
        c.fail("inputs differ outside the concatenation axis");
      }
    }
  }
  return {out};
}

std::vector<Dims> resize_rule(const Context& c) {
  const Dims x = c.map_in(0, 4);
  // Resize: X, roi, scales, sizes; Upsample: X, scales.
  const std::size_t scales_at = c.node.op == "Upsample" ? 1 : 2;
  Dims out = x;
  if (c.node.op == "Resize" && c.has_in(3) && c.in(3).numbers && c.in(3).numbers->size() == 4) {
    for (std::size_t k = 0; k < 4; ++k)
      out[k] = checked(c, static_cast<std::int64_t>((*c.in(3).numbers)[k]), "a size");
    return {out};
  }
  if (!c.has_in(scales_at) || !c.in(scales_at).numbers || c.in(scales_at).numbers->size() != 4)
    c.fail("the scales must be a constant of 4 numbers");
  for (std::size_t k = 0; k < 4; ++k) {
    const double s = (*c.in(scales_at).numbers)[k];
    if (!(s > 0 && s <= static_cast<double>(max_dim))) c.fail("scales must be positive");
    out[k] =
        checked(c, static_cast<std::int64_t>(std::floor(static_cast<double>(x[k]) * s)), "a size");
  }
  return {out};
}

std::vector<Dims> constant_rule(const Context& c) {
  return {c.node.constant_dims};
}

const std::map<std::string, Rule, std::less<>>& shape_rules() {
  static const std::map<std::string, Rule, std::less<>> rules{
      {"Conv", conv_rule},
      {"BatchNormalization", same_as_first},
      {"Relu", same_as_first},
      {"Clip", same_as_first},
      {"Sigmoid", same_as_first},
      {"HardSigmoid", same_as_first},
      {"HardSwish", same_as_first},
      {"Erf", same_as_first},
      {"Sqrt", same_as_first},
      {"Identity", same_as_first},
      {"Dropout", same_as_first},
      {"LayerNormalization", same_as_first},
      {"Add", [](const Context& c) { return std::vector<Dims>{broadcast(c)}; }},
      {"Sub", [](const Context& c) { return std::vector<Dims>{broadcast(c)}; }},
      {"Mul", [](const Context& c) { return std::vector<Dims>{broadcast(c)}; }},
      {"Div", [](const Context& c) { return std::vector<Dims>{broadcast(c)}; }},
      {"Pow", [](const Context& c) { return std::vector<Dims>{broadcast(c)}; }},
      {"GlobalAveragePool", global_pool_rule},
      {"ReduceMean", reduce_mean_rule},
      {"AveragePool", pool_rule},
      {"MaxPool", pool_rule},
      {"Flatten", flatten_rule},
      {"Reshape", reshape_rule},
      {"Gemm", gemm_rule},
      {"MatMul", matmul_rule},
      {"Concat", concat_rule},
      {"Resize", resize_rule},
      {"Upsample", resize_rule},
      {"Transpose", transpose_rule},
      {"Constant", constant_rule},
  };
  return rules;
}

// Input counts each op needs (ONNX's, as far as the rules and converters read them).
void check_arity(const Context& c) {
  static const std::map<std::string, std::pair<std::size_t, std::size_t>, std::less<>> arity{
      {"Conv", {2, 3}},     {"BatchNormalization", {5, 5}},
      {"Add", {2, 2}},      {"Sub", {2, 2}},
      {"Mul", {2, 2}},      {"Div", {2, 2}},
      {"Pow", {2, 2}},      {"Gemm", {2, 3}},
      {"MatMul", {2, 2}},   {"Reshape", {2, 2}},
      {"Clip", {1, 3}},     {"LayerNormalization", {1, 3}},
      {"Concat", {1, 64}},  {"Resize", {1, 4}},
      {"Upsample", {1, 2}}, {"ReduceMean", {1, 2}},
      {"Constant", {0, 0}}, {"Dropout", {1, 3}},
  };
  const auto it = arity.find(c.node.op);
  const auto [lo, hi] = it == arity.end() ? std::pair<std::size_t, std::size_t>{1, 1} : it->second;
  std::size_t given = c.node.inputs.size();
  // Trailing optional inputs may be left out as "".
  while (given > lo && c.node.inputs[given - 1].empty()) --given;
  if (given < lo || given > hi)
    c.fail(lo == hi
               ? fmt::format("has {} inputs, expected {}", c.node.inputs.size(), lo)
               : fmt::format("has {} inputs, expected {} to {}", c.node.inputs.size(), lo, hi));
  for (std::size_t i = 0; i < lo; ++i)
    if (c.node.inputs[i].empty()) c.fail(fmt::format("input {} is missing", i));
}

std::vector<Node> read_nodes(const onnx::GraphProto& gp, const Graph& g) {
  std::vector<Node> nodes;
  for (int i = 0; i < gp.node_size(); ++i) {
    const auto& np = gp.node(i);
    Node n;
    n.name = np.name().empty() ? fmt::format("#{}", i) : np.name();
    n.op = np.op_type();
    n.inputs.assign(np.input().begin(), np.input().end());
    n.outputs.assign(np.output().begin(), np.output().end());
    for (const auto& a : np.attribute()) n.attributes[a.name()] = to_attribute(a);
    if (n.outputs.empty() || n.outputs[0].empty()) fail_node(g, n, "the node has no output");
    if (n.op == "Constant") {
      // value (a tensor) or value_float / value_int: the scalars; others are not read.
      for (const auto& a : np.attribute()) {
        if (a.name() == "value" && a.has_t()) {
          n.constant_value = tensor_numbers(a.t());
          const auto d = tensor_dims(a.t());
          if (!d) fail_node(g, n, "the constant's shape is not supported");
          n.constant_dims = *d;
        } else if (a.name() == "value_float") {
          n.constant_value = std::vector<double>{a.f()};
        } else if (a.name() == "value_int") {
          n.constant_value = std::vector<double>{static_cast<double>(a.i())};
        }
      }
    }
    nodes.push_back(std::move(n));
  }
  return nodes;
}

}  // namespace

void fail_node(const Graph& g, const Node& n, const std::string& message) {
  throw Error(fmt::format("{}: node '{}' ({}): {}", g.source, n.name, n.op, message));
}

Graph load_graph(std::string_view bytes, std::string_view source, const ImportOptions& options) {
  Graph g;
  g.source = std::string(source);
  onnx::ModelProto model;
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()) ||
      !model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    throw Error(
        fmt::format("{}: not an ONNX model (the protobuf does not parse: truncated, corrupt "
                    "or another format)",
                    source));
  if (!model.has_graph() || model.graph().node_size() == 0)
    throw Error(fmt::format("{}: not an ONNX model (no graph, or a graph with no nodes)", source));
  const onnx::GraphProto& gp = model.graph();

  std::map<std::string, Value> declared;  // constant dims from initializers
  for (const auto& t : gp.initializer()) {
    const auto d = tensor_dims(t);
    if (!d)
      throw Error(fmt::format("{}: initializer '{}' has an unsupported shape", source, t.name()));
    Value v;
    v.dims = *d;
    v.constant = true;
    v.numbers = tensor_numbers(t);
    g.values[t.name()] = v;
  }
  // The image is the first graph input that is not an initializer; other such inputs are taken
  // for weights whose initializers were stripped (they keep their declared shapes).
  for (const auto& in : gp.input()) {
    if (g.values.count(in.name())) continue;
    if (g.input.empty()) {
      g.input = in.name();
      Value v;
      if (options.input) {
        v.dims.assign(options.input->begin(), options.input->end());
        const auto d = declared_dims(in);
        if (d && d->size() != 4)
          throw Error(fmt::format("{}: graph input '{}' has shape {}, not NxCxHxW as --input gives",
                                  source, in.name(), declared_text(in)));
      } else {
        const auto d = declared_dims(in);
        if (!d) {
          // Name the node that reads it, as every other import message names a node.
          std::string reader;
          for (const auto& n : gp.node()) {
            if (std::find(n.input().begin(), n.input().end(), in.name()) != n.input().end()) {
              reader = fmt::format(", read by node '{}' ({}),", n.name(), n.op_type());
              break;
            }
          }
          throw Error(
              fmt::format("{}: graph input '{}'{} has a dynamic or unknown shape ({}); "
                          "give --input NxCxHxW",
                          source, in.name(), reader, declared_text(in)));
        }
        v.dims = *d;
      }
      if (v.dims.size() != 4)
        throw Error(fmt::format("{}: graph input '{}' has shape {}, expected NxCxHxW", source,
                                in.name(), dims_text(v.dims)));
      g.values[in.name()] = v;
      continue;
    }
    const auto d = declared_dims(in);
    if (!d)
      throw Error(
          fmt::format("{}: graph input '{}' (a weight: only the first input is the image) "
                      "has no static shape ({})",
                      source, in.name(), declared_text(in)));
    Value v;
    v.dims = *d;
    v.constant = true;
    g.values[in.name()] = v;
  }
  if (g.input.empty()) throw Error(fmt::format("{}: the graph has no image input", source));
  for (const auto& out : gp.output()) g.outputs.push_back(out.name());

  std::vector<Node> unordered = read_nodes(gp, g);

  // Topological order (Kahn), with the producer of every value; a value nobody produces is a
  // missing input, a node never ready is on a cycle.
  std::map<std::string, int> producer;
  for (std::size_t i = 0; i < unordered.size(); ++i) {
    for (const auto& o : unordered[i].outputs) {
      if (o.empty()) continue;
      if (!producer.emplace(o, static_cast<int>(i)).second || g.values.count(o))
        fail_node(g, unordered[i], fmt::format("output '{}' is produced twice", o));
    }
  }
  std::vector<int> pending(unordered.size(), 0);
  std::vector<std::vector<int>> users(unordered.size());
  for (std::size_t i = 0; i < unordered.size(); ++i) {
    for (const auto& in : unordered[i].inputs) {
      if (in.empty()) continue;
      const auto p = producer.find(in);
      if (p == producer.end()) {
        if (!g.values.count(in))
          fail_node(
              g, unordered[i],
              fmt::format("input '{}' is produced by no node, initializer or graph input", in));
        continue;
      }
      ++pending[i];
      users[static_cast<std::size_t>(p->second)].push_back(static_cast<int>(i));
    }
  }
  std::vector<int> ready;
  for (std::size_t i = unordered.size(); i-- > 0;)
    if (pending[i] == 0) ready.push_back(static_cast<int>(i));
  std::vector<int> order;
  while (!ready.empty()) {
    const int i = ready.back();
    ready.pop_back();
    order.push_back(i);
    for (const int u : users[static_cast<std::size_t>(i)])
      if (--pending[static_cast<std::size_t>(u)] == 0) ready.push_back(u);
  }
  if (order.size() != unordered.size()) {
    for (std::size_t i = 0; i < unordered.size(); ++i)
      if (pending[i] > 0) fail_node(g, unordered[i], "the node is on a cycle of the graph");
  }

  const auto& rules = shape_rules();
  for (const int i : order) {
    Node& n = unordered[static_cast<std::size_t>(i)];
    g.nodes.push_back(std::move(n));
    const Node& node = g.nodes.back();
    const auto index = static_cast<int>(g.nodes.size() - 1);
    bool all_constant = true;
    for (const auto& in : node.inputs)
      if (!in.empty() && !g.values.at(in).constant) all_constant = false;
    const auto rule = rules.find(node.op);
    if (rule == rules.end())
      fail_node(g, node, "unsupported op type (docs/import.md lists the supported ones)");
    const Context c{g, node};
    if (node.inputs.empty() && node.op != "Constant") c.fail("the node has no inputs");
    check_arity(c);
    std::vector<Dims> dims = rule->second(c);
    Value v;
    v.dims = dims.at(0);
    v.constant = all_constant;
    v.producer = index;
    if (node.op == "Constant") v.numbers = node.constant_value;
    if ((node.op == "Identity" || node.op == "Reshape" || node.op == "Flatten") && all_constant)
      v.numbers = g.values.at(node.inputs[0]).numbers;
    for (const auto x : v.dims)
      if (x <= 0 || x > max_dim)
        c.fail(fmt::format("output shape {} is not supported", dims_text(v.dims)));
    if (element_count(v.dims) > max_elements)
      c.fail(fmt::format("output shape {} is too large", dims_text(v.dims)));
    // Only the first output matters (BatchNormalization's and Dropout's others are training-only).
    g.values[node.outputs[0]] = v;
    for (std::size_t k = 1; k < node.outputs.size(); ++k) {
      if (node.outputs[k].empty()) continue;
      Value extra;
      extra.constant = true;
      extra.producer = index;
      g.values[node.outputs[k]] = extra;
    }
  }
  return g;
}

}  // namespace lasnet::importer::detail
