// Pass 2: one small converter per op type turns each node over a feature map into a plain
// layer (a table from op type to converter, as TVM's ONNX frontend has). Nodes over constants
// only (weights, Constant, Identity of weights) become no layer; reshapes and transposes become
// aliases of their input, with the channel axis tracked (ConvNeXt's channels-last MLP).
#include <fmt/format.h>

#include <cmath>
#include <functional>

#include "internal.hpp"

namespace lasnet::importer::detail {

namespace {

using Dims = std::vector<std::int64_t>;

struct MapValue {
  Dims dims;
  bool channels_last = false;
};

class Builder {
 public:
  Builder(const Graph& g, LayerGraph& out) : g_(g), out_(out) {}

  int id(const std::string& name) {
    const auto it = ids_.find(name);
    if (it != ids_.end()) return it->second;
    const int v = static_cast<int>(maps_.size());
    ids_[name] = v;
    maps_.push_back({g_.values.at(name).dims, false});
    out_.producer.push_back(-1);
    return v;
  }
  bool is_map(const std::string& name) const {
    return !name.empty() && !g_.values.at(name).constant;
  }
  const MapValue& map(int v) const { return maps_.at(static_cast<std::size_t>(v)); }
  // A value that is a new view of a map: same layer output, other dims/layout.
  int view(const std::string& name, int of, Dims dims, bool channels_last) {
    const int v = static_cast<int>(maps_.size());
    ids_[name] = v;
    maps_.push_back({std::move(dims), channels_last});
    out_.producer.push_back(out_.producer.at(static_cast<std::size_t>(of)));
    views_.emplace(v, of);
    return v;
  }
  int root(int v) const {
    const auto it = views_.find(v);
    return it == views_.end() ? v : root(it->second);
  }

  const Graph& g_;
  LayerGraph& out_;
  std::map<std::string, int> ids_;
  std::vector<MapValue> maps_;
  std::map<int, int> views_;
};

struct Shape {
  std::int64_t c = 0, h = 1, w = 1;
};

Shape shape_of(const Graph& g, const Node& n, const MapValue& m) {
  const Dims& d = m.dims;
  if (d.size() == 4) {
    if (m.channels_last) return {d[3], d[1], d[2]};
    return {d[1], d[2], d[3]};
  }
  if (d.size() == 2) return {d[1], 1, 1};
  fail_node(g, n, fmt::format("a map of rank {} is not supported (NCHW or NxC only)", d.size()));
}

struct Converting {
  const Graph& g;
  const Node& n;
  Builder& b;
  Layer layer;
  std::vector<std::string> maps;  // names of the map inputs
  [[noreturn]] void fail(const std::string& message) const { fail_node(g, n, message); }
  const Value& value(std::size_t i) const { return g.values.at(n.inputs.at(i)); }
  bool has(std::size_t i) const { return i < n.inputs.size() && !n.inputs[i].empty(); }
  std::int64_t attr_i(const std::string& key, std::int64_t fallback) const {
    const auto it = n.attributes.find(key);
    return it == n.attributes.end() ? fallback : it->second.i;
  }
  std::optional<double> attr_f(const std::string& key) const {
    const auto it = n.attributes.find(key);
    if (it == n.attributes.end()) return std::nullopt;
    return it->second.f;
  }
  Dims attr_ints(const std::string& key) const {
    const auto it = n.attributes.find(key);
    return it == n.attributes.end() ? Dims{} : it->second.ints;
  }
  Shape in_shape() const { return shape_of(g, n, b.map(b.id(maps.at(0)))); }
  Shape out_shape() const {
    return shape_of(
        g, n, MapValue{g.values.at(n.outputs[0]).dims, b.map(b.id(maps.at(0))).channels_last});
  }
};

// Square kernels, equal strides and symmetric pads: what a spec layer can say.
void window(Converting& c, std::int64_t kh, std::int64_t kw) {
  if (kh != kw) c.fail(fmt::format("a {}x{} kernel is not square", kh, kw));
  const Dims strides = c.attr_ints("strides");
  if (!strides.empty() && (strides.size() != 2 || strides[0] != strides[1]))
    c.fail("strides differ between height and width");
  const Dims dil = c.attr_ints("dilations");
  if (!dil.empty() && (dil.size() != 2 || dil[0] != dil[1]))
    c.fail("dilations differ between height and width");
  const Dims pads = c.attr_ints("pads");
  c.layer.kernel = kh;
  c.layer.stride = strides.empty() ? 1 : strides[0];
  c.layer.dilation = dil.empty() ? 1 : dil[0];
  c.layer.padding = 0;
  const auto it = c.n.attributes.find("auto_pad");
  const bool same = it != c.n.attributes.end() && it->second.s.rfind("SAME", 0) == 0;
  if (same) {
    c.layer.padding = c.layer.dilation * (kh - 1) / 2;
  } else if (pads.size() == 4) {
    if (pads[0] != pads[1] || pads[0] != pads[2] || pads[0] != pads[3])
      c.fail("pads are not the same on every side");
    c.layer.padding = pads[0];
  }
}

void conv(Converting& c) {
  const Dims& w = c.value(1).dims;
  c.layer.kind = LayerKind::conv;
  window(c, w[2], w[3]);
  c.layer.groups = c.attr_i("group", 1);
  c.layer.bias = c.has(2);
  c.layer.parameters = static_cast<double>(w[0]) * static_cast<double>(w[1] * w[2] * w[3]) +
                       (c.layer.bias ? static_cast<double>(w[0]) : 0.0);
}

void pool(Converting& c) {
  const Dims k = c.attr_ints("kernel_shape");
  c.layer.kind = c.n.op == "MaxPool" ? LayerKind::pool_max : LayerKind::pool_avg;
  window(c, k.at(0), k.at(1));
  if (c.layer.dilation != 1) c.fail("dilated pooling is not supported");
  if (c.attr_i("ceil_mode", 0) != 0) {
    const Shape in = c.in_shape(), out = c.out_shape();
    const auto floor_out = (in.h + 2 * c.layer.padding - c.layer.kernel) / c.layer.stride + 1;
    if (floor_out != out.h)
      c.fail("ceil_mode changes the output size here, which a spec cannot say");
  }
}

void activation(Converting& c, std::string name) {
  c.layer.kind = LayerKind::activation;
  c.layer.activation = std::move(name);
}

void clip(Converting& c) {
  std::optional<double> lo = c.attr_f("min"), hi = c.attr_f("max");
  auto scalar = [&](std::size_t i) -> std::optional<double> {
    if (!c.has(i)) return std::nullopt;
    const auto& v = c.value(i);
    if (!v.numbers || v.numbers->size() != 1) c.fail("the bounds must be scalar constants");
    return v.numbers->front();
  };
  if (c.n.inputs.size() > 1) {
    lo = scalar(1);
    hi = scalar(2);
  }
  if (lo && *lo == 0 && hi && *hi == 6) return activation(c, "relu6");
  if (lo && *lo == 0 && !hi) return activation(c, "relu");
  c.fail("only Clip(0, 6) (relu6) and Clip(0) (relu) are supported");
}

void binary(Converting& c) {
  const Shape out = c.out_shape();
  if (c.maps.size() == 2) {
    if (c.n.op == "Add") {
      c.layer.kind = LayerKind::add;
    } else if (c.n.op == "Mul") {
      c.layer.kind = LayerKind::mul;
    } else if (c.n.op == "Sub") {
      c.layer.kind = LayerKind::sub;
    } else if (c.n.op == "Div") {
      c.layer.kind = LayerKind::div;
    } else {
      c.fail("only Add, Sub, Mul and Div of two maps are supported");
    }
    return;
  }
  // One map and a constant.
  std::size_t k = 0;
  while (k < c.n.inputs.size() && c.b.is_map(c.n.inputs[k])) ++k;
  const Value& constant = c.value(k);
  std::int64_t count = 1;
  for (const auto d : constant.dims) count *= d;
  if (count == 1) {
    c.layer.kind = LayerKind::free;
    c.layer.constant = constant.numbers ? constant.numbers->front() : std::nan("");
    return;
  }
  if (count == out.c && c.n.op != "Pow") {
    c.layer.kind = c.n.op == "Add" || c.n.op == "Sub" ? LayerKind::bias_add : LayerKind::scale;
    c.layer.parameters = static_cast<double>(count);
    return;
  }
  c.fail(fmt::format("a constant of {} elements is neither a scalar nor one per channel", count));
}

void reduce_mean(Converting& c) {
  const Dims& d = c.value(0).dims;
  const Dims& o = c.g.values.at(c.n.outputs[0]).dims;
  if (d.size() == 4 && !c.b.map(c.b.id(c.maps[0])).channels_last && o.size() >= 2 &&
      o[o.size() - 1] == 1 && (o.size() == 2 || o[o.size() - 2] == 1) && o[1] == d[1]) {
    c.layer.kind = LayerKind::global_pool;
    return;
  }
  // A mean over the channels of a channels-last map: part of a LayerNorm as torch exports it
  // below opset 17 (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add).
  if (d.size() == 4 && c.b.map(c.b.id(c.maps[0])).channels_last && o.size() == 4 && o[3] == 1 &&
      o[1] == d[1] && o[2] == d[2]) {
    c.layer.kind = LayerKind::channel_mean;
    return;
  }
  c.fail(
      "only a mean over the spatial axes (a global average pool) or over the channels "
      "(a decomposed LayerNorm) is supported");
}

void gemm(Converting& c) {
  const Dims& w = c.value(1).dims;
  c.layer.kind = LayerKind::fc;
  c.layer.bias = c.has(2);
  const auto out = c.g.values.at(c.n.outputs[0]).dims.back();
  c.layer.parameters = static_cast<double>(w[0]) * static_cast<double>(w[1]) +
                       (c.layer.bias ? static_cast<double>(out) : 0.0);
}

void matmul(Converting& c) {
  if (c.maps.size() != 1 || c.b.is_map(c.n.inputs.at(1)))
    c.fail("only a map times a constant weight is supported");
  const Dims& w = c.value(1).dims;
  const Dims& x = c.value(0).dims;
  if (x.size() == 4 && c.b.map(c.b.id(c.maps[0])).channels_last) {
    c.layer.kind = LayerKind::conv;  // a 1x1 conv over a channels-last map
  } else if (x.size() == 2) {
    c.layer.kind = LayerKind::fc;
  } else {
    c.fail("a MatMul over this layout is not supported (channels-last maps and NxC only)");
  }
  c.layer.parameters = static_cast<double>(w[0]) * static_cast<double>(w[1]);
}

void layernorm(Converting& c) {
  const Dims& x = c.value(0).dims;
  auto axis = c.attr_i("axis", -1);
  if (axis < 0) axis += static_cast<std::int64_t>(x.size());
  const bool channels_last = c.b.map(c.b.id(c.maps[0])).channels_last;
  const bool over_channels =
      (x.size() == 4 && channels_last && axis == 3) || (x.size() == 2 && axis == 1);
  if (!over_channels) c.fail("only a LayerNormalization over the channel axis is supported");
  c.layer.kind = LayerKind::layernorm;
  const auto ch = x.back();
  c.layer.parameters = static_cast<double>((c.has(1) ? ch : 0) + (c.has(2) ? ch : 0));
}

void concat(Converting& c) {
  const auto rank = static_cast<std::int64_t>(c.value(0).dims.size());
  auto axis = c.attr_i("axis", 1);
  if (axis < 0) axis += rank;
  const bool channels_last = c.b.map(c.b.id(c.maps[0])).channels_last;
  if (axis != (channels_last ? 3 : 1)) c.fail("only a concatenation along channels is supported");
  if (c.maps.size() != c.n.inputs.size()) c.fail("concatenating a constant is not supported");
  if (c.maps.size() != 2) c.fail("only a concatenation of two maps is supported");
  c.layer.kind = LayerKind::concat;
}

void upsample(Converting& c) {
  const Shape in = c.in_shape(), out = c.out_shape();
  if (out.c != in.c || out.h % in.h != 0 || out.w % in.w != 0 || out.h / in.h != out.w / in.w)
    c.fail("only an integer upsampling, equal in height and width, is supported");
  c.layer.kind = LayerKind::upsample;
  c.layer.scale = out.h / in.h;
  const auto it = c.n.attributes.find("mode");
  const std::string mode = it == c.n.attributes.end() ? "nearest" : it->second.s;
  if (mode == "nearest") {
    c.layer.mode = "nearest";
  } else if (mode == "linear" || mode == "bilinear") {
    c.layer.mode = "bilinear";
  } else {
    c.fail(fmt::format("mode '{}' is not supported", mode));
  }
}

using Converter = std::function<void(Converting&)>;

const std::map<std::string, Converter, std::less<>>& converters() {
  static const std::map<std::string, Converter, std::less<>> table{
      {"Conv", conv},
      {"BatchNormalization",
       [](Converting& c) {
         c.layer.kind = LayerKind::batchnorm;
         c.layer.parameters = 2.0 * static_cast<double>(c.out_shape().c);
       }},
      {"Relu", [](Converting& c) { activation(c, "relu"); }},
      {"Clip", clip},
      {"Sigmoid", [](Converting& c) { activation(c, "sigmoid"); }},
      {"HardSigmoid", [](Converting& c) { activation(c, "hardsigmoid"); }},
      {"HardSwish", [](Converting& c) { activation(c, "hardswish"); }},
      {"Erf", [](Converting& c) { activation(c, "erf"); }},
      {"Sqrt", [](Converting& c) { activation(c, "sqrt"); }},
      {"Add", binary},
      {"Sub", binary},
      {"Mul", binary},
      {"Div", binary},
      {"Pow", binary},
      {"GlobalAveragePool", [](Converting& c) { c.layer.kind = LayerKind::global_pool; }},
      {"ReduceMean", reduce_mean},
      {"AveragePool", pool},
      {"MaxPool", pool},
      {"Gemm", gemm},
      {"MatMul", matmul},
      {"LayerNormalization", layernorm},
      {"Concat", concat},
      {"Resize", upsample},
      {"Upsample", upsample},
  };
  return table;
}

}  // namespace

LayerGraph to_layers(const Graph& g) {
  LayerGraph out;
  out.source = g.source;
  Builder b(g, out);
  out.input = b.id(g.input);
  const Dims& in = g.values.at(g.input).dims;
  out.batch = in[0];
  out.in_c = in[1];
  out.in_h = in[2];
  out.in_w = in[3];
  for (const Node& n : g.nodes) {
    std::vector<std::string> maps;
    for (const auto& i : n.inputs)
      if (b.is_map(i)) maps.push_back(i);
    if (maps.empty()) {
      if (n.op != "Constant") out.folded.push_back({n.name, n.op, weights_only});
      continue;
    }
    const std::string& result = n.outputs[0];
    // Views: no layer, the output is the input seen with other dims or layout.
    if (n.op == "Identity" || n.op == "Dropout" || n.op == "Flatten" || n.op == "Reshape" ||
        n.op == "Transpose") {
      const int from = b.id(maps[0]);
      const MapValue& m = b.map(from);
      bool channels_last = m.channels_last;
      const Dims& od = g.values.at(result).dims;
      if (n.op == "Transpose") {
        const auto it = n.attributes.find("perm");
        const Dims perm = it == n.attributes.end() ? Dims{} : it->second.ints;
        if (m.dims.size() == 4 && perm == Dims{0, 2, 3, 1} && !m.channels_last) {
          channels_last = true;
        } else if (m.dims.size() == 4 && perm == Dims{0, 3, 1, 2} && m.channels_last) {
          channels_last = false;
        } else {
          fail_node(g, n, "only NCHW <-> NHWC transposes are supported");
        }
      } else if (n.op == "Flatten" || n.op == "Reshape") {
        // Only collapsing a 1x1 map to NxC (or back) keeps a map a map.
        const Shape s = shape_of(g, n, m);
        const bool collapse = od.size() == 2 && s.h == 1 && s.w == 1 && od[1] == s.c;
        const bool expand =
            od.size() == 4 && m.dims.size() == 2 && od[1] == s.c && od[2] == 1 && od[3] == 1;
        if (!collapse && !expand && od != m.dims)
          fail_node(g, n, "only reshapes of a 1x1 map to NxC (or back) are supported");
        channels_last = false;
      }
      b.view(result, from, od, channels_last);
      out.folded.push_back({n.name, n.op, "a view (no cost)"});
      continue;
    }
    const auto conv_it = converters().find(n.op);
    if (conv_it == converters().end()) fail_node(g, n, "unsupported op type");
    Converting c{g, n, b, {}, maps};
    c.layer.node = n.name;
    c.layer.op = n.op;
    conv_it->second(c);
    for (const auto& m : maps) c.layer.inputs.push_back(b.root(b.id(m)));
    const Shape is = c.in_shape();
    c.layer.in_c = is.c;
    c.layer.in_h = is.h;
    c.layer.in_w = is.w;
    const bool channels_last = b.map(b.id(maps[0])).channels_last;
    const int v = b.id(result);
    b.maps_[static_cast<std::size_t>(v)].channels_last = channels_last;
    const Shape os = shape_of(g, n, b.map(v));
    c.layer.c = os.c;
    c.layer.h = os.h;
    c.layer.w = os.w;
    c.layer.output = v;
    out.producer[static_cast<std::size_t>(v)] = static_cast<int>(out.layers.size());
    out.layers.push_back(std::move(c.layer));
  }
  out.consumers.assign(b.maps_.size(), {});
  for (std::size_t i = 0; i < out.layers.size(); ++i)
    for (const int v : out.layers[i].inputs)
      out.consumers[static_cast<std::size_t>(v)].push_back(static_cast<int>(i));
  return out;
}

}  // namespace lasnet::importer::detail
