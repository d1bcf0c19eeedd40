#include "lasnet/predictor/spec.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "lasnet/common/document.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/common/file_io.hpp"
#include "lasnet/common/json_reader.hpp"
#include "lasnet/common/patch_geometry.hpp"

namespace lasnet::predictor {

namespace {

std::int64_t at_most(std::int64_t value, std::int64_t limit, const std::string& path) {
  if (value > limit) json::fail(path, fmt::format("{} is over the limit of {}", value, limit));
  return value;
}

void check_list(const json::value& v, std::size_t limit, const std::string& path) {
  if (v.is_array() && v.size() > limit) {
    json::fail(path, fmt::format("{} entries is over the limit of {}", v.size(), limit));
  }
}

using json::ObjectReader;

using MapSize = MapShape;

const char* layer_kind_name(LayerSpec::Kind k) {
  switch (k) {
    case LayerSpec::Kind::conv:
      return "conv";
    case LayerSpec::Kind::max_pool:
      return "max_pool";
    case LayerSpec::Kind::avg_pool:
      return "avg_pool";
    case LayerSpec::Kind::global_avg_pool:
      return "global_avg_pool";
    case LayerSpec::Kind::fc:
      return "fc";
    case LayerSpec::Kind::add:
      return "add";
    case LayerSpec::Kind::concat:
      return "concat";
    case LayerSpec::Kind::upsample:
      return "upsample";
    case LayerSpec::Kind::elementwise:
      return "elementwise";
    case LayerSpec::Kind::se:
      return "se";
  }
  return "?";
}

constexpr Activation all_activations[] = {
    Activation::relu,    Activation::relu6, Activation::silu, Activation::hardswish,
    Activation::sigmoid, Activation::gelu,  Activation::none};
constexpr const char* activation_list = "relu, relu6, silu, hardswish, sigmoid, gelu, none";

Activation read_activation(ObjectReader& r, std::string_view key, Activation fallback) {
  if (!r.has(key)) return fallback;
  const std::string text = json::as_string(*r.optional(key), r.path_of(key));
  for (const Activation a : all_activations) {
    if (to_string(a) == text) return a;
  }
  json::fail(r.path_of(key), fmt::format("'{}' is not one of {}", text, activation_list));
}

std::string_view to_string(Gate gate) {
  return gate == Gate::sigmoid ? "sigmoid" : "hardsigmoid";
}

Gate read_gate(ObjectReader& r, std::string_view key) {
  const std::string text = r.optional_string(std::string(key), "sigmoid");
  if (text == "sigmoid") return Gate::sigmoid;
  if (text == "hardsigmoid") return Gate::hardsigmoid;
  json::fail(r.path_of(key), fmt::format("'{}' is not one of sigmoid, hardsigmoid", text));
}

std::string_view elementwise_name(const LayerSpec& l) {
  switch (l.elementwise) {
    case Elementwise::activation:
      return to_string(l.activation);
    case Elementwise::layernorm:
      return "layernorm";
    case Elementwise::batchnorm:
      return "batchnorm";
    case Elementwise::scale:
      return "scale";
  }
  return "?";
}

// Applies one stem/head/layer-stage layer to a map; errors name `path`.
MapSize apply_layer(const LayerSpec& l, MapSize in, const std::string& path) {
  switch (l.kind) {
    case LayerSpec::Kind::conv:
    case LayerSpec::Kind::max_pool:
    case LayerSpec::Kind::avg_pool: {
      const auto k = effective_kernel(l.kernel, l.dilation);
      const auto h = conv_output_extent(in.height, k, l.stride, l.padding);
      const auto w = conv_output_extent(in.width, k, l.stride, l.padding);
      if (h <= 0 || w <= 0 || in.height + 2 * l.padding < k || in.width + 2 * l.padding < k) {
        const std::string what =
            l.dilation > 1 ? fmt::format("{}x{} (dilation {})", l.kernel, l.kernel, l.dilation)
                           : fmt::format("{}x{}", l.kernel, l.kernel);
        json::fail(path, fmt::format("a {} {} does not fit the {}x{} map", what,
                                     layer_kind_name(l.kind), in.height, in.width));
      }
      const auto c = l.kind == LayerSpec::Kind::conv ? l.out_channels : in.channels;
      if (l.kind == LayerSpec::Kind::conv &&
          (in.channels % l.groups || l.out_channels % l.groups)) {
        json::fail(path, fmt::format("groups {} must divide the {} input and {} output channels",
                                     l.groups, in.channels, l.out_channels));
      }
      return {c, h, w};
    }
    case LayerSpec::Kind::global_avg_pool:
      return {in.channels, 1, 1};
    case LayerSpec::Kind::fc:
      return {l.out_channels, 1, 1};
    case LayerSpec::Kind::add:
    case LayerSpec::Kind::elementwise:
    case LayerSpec::Kind::se:
      return in;
    case LayerSpec::Kind::concat:
      if (in.channels + l.channels > max_channels) {
        json::fail(path, fmt::format("{} + {} channels is over the limit of {}", in.channels,
                                     l.channels, max_channels));
      }
      return {in.channels + l.channels, in.height, in.width};
    case LayerSpec::Kind::upsample:
      if (std::max(in.height, in.width) > max_side / l.scale) {
        json::fail(path, fmt::format("upsampling the {}x{} map by {} is over the side limit of {}",
                                     in.height, in.width, l.scale, max_side));
      }
      return {in.channels, in.height * l.scale, in.width * l.scale};
  }
  return in;
}

LayerSpec read_layer(const json::value& v, const std::string& path) {
  ObjectReader r(v, path);
  LayerSpec l;
  const std::string type = r.required_string("type");
  if (type == "conv") {
    l.kind = LayerSpec::Kind::conv;
    l.out_channels =
        at_most(r.required_positive_int("out_channels"), max_channels, r.path_of("out_channels"));
    l.kernel = at_most(r.required_positive_int("kernel"), max_side, r.path_of("kernel"));
    l.stride = at_most(r.optional_positive_int("stride", 1), max_side, r.path_of("stride"));
    l.groups = at_most(r.optional_positive_int("groups", 1), max_channels, r.path_of("groups"));
    l.dilation = at_most(r.optional_positive_int("dilation", 1), max_side, r.path_of("dilation"));
    if (effective_kernel(l.kernel, l.dilation) > max_side) {
      json::fail(r.path_of("dilation"),
                 fmt::format("a {}x{} kernel at dilation {} spans over the limit of {}", l.kernel,
                             l.kernel, l.dilation, max_side));
    }
    l.activation = read_activation(r, "activation", Activation::relu);
    if (const auto* bias = r.optional("bias")) l.bias = json::as_bool(*bias, r.path_of("bias"));
    const std::string norm = r.optional_string("norm", "batchnorm");
    if (norm != "batchnorm" && norm != "none") {
      json::fail(r.path_of("norm"), fmt::format("'{}' is not one of batchnorm, none", norm));
    }
    l.batchnorm = norm == "batchnorm";
  } else if (type == "max_pool" || type == "avg_pool") {
    l.kind = type == "max_pool" ? LayerSpec::Kind::max_pool : LayerSpec::Kind::avg_pool;
    l.kernel = at_most(r.required_positive_int("kernel"), max_side, r.path_of("kernel"));
    l.stride = at_most(r.optional_positive_int("stride", l.kernel), max_side, r.path_of("stride"));
  } else if (type == "global_avg_pool") {
    l.kind = LayerSpec::Kind::global_avg_pool;
  } else if (type == "fc") {
    l.kind = LayerSpec::Kind::fc;
    l.out_channels = r.required_positive_int("out_channels");
    l.activation = read_activation(r, "activation", Activation::none);
  } else if (type == "add") {
    l.kind = LayerSpec::Kind::add;
    l.activation = read_activation(r, "activation", Activation::none);
  } else if (type == "concat") {
    l.kind = LayerSpec::Kind::concat;
    l.channels = at_most(r.required_positive_int("channels"), max_channels, r.path_of("channels"));
  } else if (type == "upsample") {
    l.kind = LayerSpec::Kind::upsample;
    l.scale = at_most(r.required_positive_int("scale"), max_side, r.path_of("scale"));
    const std::string mode = r.optional_string("mode", "nearest");
    if (mode != "nearest" && mode != "bilinear") {
      json::fail(r.path_of("mode"), fmt::format("'{}' is not one of nearest, bilinear", mode));
    }
    l.bilinear = mode == "bilinear";
  } else if (type == "elementwise") {
    l.kind = LayerSpec::Kind::elementwise;
    const std::string op = r.required_string("op");
    if (op == "layernorm") {
      l.elementwise = Elementwise::layernorm;
    } else if (op == "batchnorm") {
      l.elementwise = Elementwise::batchnorm;
    } else if (op == "scale") {
      l.elementwise = Elementwise::scale;
    } else {
      const auto* a = std::find_if(std::begin(all_activations), std::end(all_activations),
                                   [&](Activation x) { return to_string(x) == op; });
      if (a == std::end(all_activations)) {
        json::fail(
            r.path_of("op"),
            fmt::format("'{}' is not one of {}, layernorm, batchnorm, scale", op, activation_list));
      }
      l.activation = *a;
    }
  } else if (type == "se") {
    l.kind = LayerSpec::Kind::se;
    l.channels = at_most(r.required_positive_int("channels"), max_channels, r.path_of("channels"));
    l.activation = read_activation(r, "activation", Activation::relu);
    l.gate = read_gate(r, "gate");
  } else {
    json::fail(r.path_of("type"),
               fmt::format("'{}' is not one of conv, max_pool, avg_pool, global_avg_pool, fc, "
                           "add, concat, upsample, elementwise, se",
                           type));
  }
  if (l.kind == LayerSpec::Kind::conv || l.kind == LayerSpec::Kind::max_pool ||
      l.kind == LayerSpec::Kind::avg_pool) {
    const auto k = effective_kernel(l.kernel, l.dilation);
    if (const auto* pad = r.optional("padding")) {
      l.padding = json::as_int(*pad, r.path_of("padding"));
      if (l.padding < 0 || l.padding >= k) {
        json::fail(r.path_of("padding"),
                   fmt::format("must be in [0, kernel) = [0, {}), got {}", k, l.padding));
      }
    } else {
      l.padding = (k - 1) / 2;
    }
  }
  r.reject_unknown();
  return l;
}

std::vector<LayerSpec> read_layers(const json::value& v, const std::string& path) {
  json::as_array(v, path);
  std::vector<LayerSpec> layers;
  for (std::size_t i = 0; i < v.size(); ++i)
    layers.push_back(read_layer(v[i], json::join(path, i)));
  return layers;
}

std::optional<BlockKind> parse_block_kind(std::string_view text) {
  for (const BlockKind k : {BlockKind::basic, BlockKind::bottleneck, BlockKind::regnety,
                            BlockKind::inverted_residual, BlockKind::convnext}) {
    if (to_string(k) == text) return k;
  }
  return std::nullopt;
}

// Rejects a key that this block kind does not use, naming the kind.
void forbid(ObjectReader& r, std::string_view key, BlockKind kind) {
  if (r.has(key)) {
    r.optional(key);
    json::fail(r.path_of(key), fmt::format("not used by {} blocks", to_string(kind)));
  }
}

LayerStageSpec read_layer_stage(const json::value& v, const std::string& path, std::size_t index) {
  ObjectReader r(v, path);
  LayerStageSpec s;
  s.name = r.optional_string("name", fmt::format("stage{}", index + 1));
  if (r.has("block")) {
    r.optional("block");
    json::fail(r.path_of("block"), "a stage has either a block or layers, not both");
  }
  const auto& layers = r.required("layers");
  check_list(layers, max_list, r.path_of("layers"));
  s.layers = read_layers(layers, r.path_of("layers"));
  if (s.layers.empty()) json::fail(r.path_of("layers"), "must list at least one layer");
  r.reject_unknown();
  return s;
}

StageSpec read_stage(const json::value& v, const std::string& path, std::size_t index) {
  ObjectReader r(v, path);
  StageSpec s;
  s.name = r.optional_string("name", fmt::format("stage{}", index + 1));
  const std::string block = r.required_string("block");
  const auto kind = parse_block_kind(block);
  if (!kind) {
    json::fail(r.path_of("block"),
               fmt::format("'{}' is not one of basic, bottleneck, regnety, inverted_residual, "
                           "convnext",
                           block));
  }
  s.block = *kind;
  s.blocks = at_most(r.required_positive_int("blocks"), max_blocks, r.path_of("blocks"));
  s.out_channels =
      at_most(r.required_positive_int("out_channels"), max_channels, r.path_of("out_channels"));
  s.stride = r.optional_positive_int("stride", 1);
  if (s.stride > 2)
    json::fail(r.path_of("stride"), fmt::format("must be 1 or 2, got {}", s.stride));
  s.kernel = at_most(r.optional_positive_int("kernel", s.block == BlockKind::convnext ? 7 : 3),
                     max_side, r.path_of("kernel"));
  if (s.kernel % 2 == 0) {
    json::fail(r.path_of("kernel"),
               fmt::format("must be odd (the block's conv keeps its map), got {}", s.kernel));
  }
  s.dilation = at_most(r.optional_positive_int("dilation", 1), max_side, r.path_of("dilation"));
  if (effective_kernel(s.kernel, s.dilation) > max_side) {
    json::fail(r.path_of("dilation"),
               fmt::format("a {}x{} kernel at dilation {} spans over the limit of {}", s.kernel,
                           s.kernel, s.dilation, max_side));
  }
  s.activation = read_activation(
      r, "activation", s.block == BlockKind::convnext ? Activation::gelu : Activation::relu);
  const auto read_se_channels = [&] {
    s.se_channels = r.has("se_channels") ? at_most(r.required_positive_int("se_channels"),
                                                   max_channels, r.path_of("se_channels"))
                                         : 0;
  };
  if (s.block != BlockKind::inverted_residual) {
    forbid(r, "se_activation", s.block);
    forbid(r, "se_gate", s.block);
  }
  switch (s.block) {
    case BlockKind::basic:
      forbid(r, "mid_channels", s.block);
      forbid(r, "group_width", s.block);
      forbid(r, "se_ratio", s.block);
      forbid(r, "se_channels", s.block);
      forbid(r, "expansion", s.block);
      s.mid_channels = s.out_channels;
      break;
    case BlockKind::bottleneck:
      s.mid_channels =
          at_most(r.required_positive_int("mid_channels"), max_channels, r.path_of("mid_channels"));
      s.group_width = r.has("group_width") ? r.required_positive_int("group_width") : 0;
      forbid(r, "se_ratio", s.block);
      forbid(r, "se_channels", s.block);
      forbid(r, "expansion", s.block);
      break;
    case BlockKind::regnety: {
      s.mid_channels = at_most(r.optional_positive_int("mid_channels", s.out_channels),
                               max_channels, r.path_of("mid_channels"));
      s.group_width = r.required_positive_int("group_width");
      read_se_channels();
      const auto* se = r.optional("se_ratio");
      if (se && s.se_channels > 0) {
        json::fail(r.path_of("se_channels"), "give se_ratio or se_channels, not both");
      }
      s.se_ratio = se ? json::as_number(*se, r.path_of("se_ratio")) : 0.25;
      if (s.se_channels > 0) s.se_ratio = 0;
      if (s.se_channels == 0 && !(s.se_ratio > 0 && s.se_ratio <= 1)) {
        json::fail(r.path_of("se_ratio"), fmt::format("must be in (0, 1], got {}", s.se_ratio));
      }
      forbid(r, "expansion", s.block);
      break;
    }
    case BlockKind::inverted_residual:
      // The expanded width as a factor of the block's input, or (beyond the contract, for
      // MobileNetV3's 80 -> 200 and 80 -> 184 blocks) as a width of its own.
      if (r.has("mid_channels")) {
        if (r.has("expansion")) {
          r.optional("expansion");
          json::fail(r.path_of("expansion"), "give expansion or mid_channels, not both");
        }
        s.mid_channels = at_most(r.required_positive_int("mid_channels"), max_channels,
                                 r.path_of("mid_channels"));
      } else {
        s.expansion = r.required_positive_int("expansion");
      }
      forbid(r, "group_width", s.block);
      forbid(r, "se_ratio", s.block);
      read_se_channels();
      if (s.se_channels == 0) {
        if (r.has("se_activation")) {
          r.optional("se_activation");
          json::fail(r.path_of("se_activation"), "given without se_channels");
        }
        if (r.has("se_gate")) {
          r.optional("se_gate");
          json::fail(r.path_of("se_gate"), "given without se_channels");
        }
      }
      s.se_activation = read_activation(r, "se_activation", Activation::relu);
      s.se_gate = read_gate(r, "se_gate");
      break;
    case BlockKind::convnext:
      s.expansion = r.optional_positive_int("expansion", 4);
      forbid(r, "mid_channels", s.block);
      forbid(r, "group_width", s.block);
      forbid(r, "se_ratio", s.block);
      forbid(r, "se_channels", s.block);
      if (s.stride != 1) {
        json::fail(r.path_of("stride"),
                   fmt::format("must be 1 for convnext blocks (down-sampling belongs in a layer "
                               "stage), got {}",
                               s.stride));
      }
      break;
  }
  if (s.group_width > 0 && s.mid_channels % s.group_width != 0) {
    json::fail(r.path_of("group_width"), fmt::format("{} does not divide the {} mid channels",
                                                     s.group_width, s.mid_channels));
  }
  r.reject_unknown();
  return s;
}

std::string map_text(const StageGeometry& g) {
  return fmt::format("{}x{} map", g.out_height, g.out_width);
}

// Any S from 1 to the map's longer side: where S does not divide the map the border patches are
// partial (they compute only the pixels inside it).
void check_granularity(std::int64_t s, const StageGeometry& g, const StageSpec& stage,
                       const std::string& path) {
  if (s <= 0) json::fail(path, fmt::format("must be positive, got {}", s));
  if (s > std::max(g.out_height, g.out_width)) {
    json::fail(path,
               fmt::format("{} is larger than the {} of stage {}", s, map_text(g), stage.name));
  }
}

void check_density(double d, const std::string& path) {
  if (!(d >= 0.0 && d <= 1.0)) json::fail(path, fmt::format("{} is outside [0, 1]", d));
}

std::vector<std::vector<double>> uniform_density(const Spec& spec, double d) {
  std::vector<std::vector<double>> density;
  for (const auto& st : spec.stages) density.emplace_back(static_cast<std::size_t>(st.blocks), d);
  return density;
}

// "fusion": one string for every block, or per stage a string or a list per block.
std::vector<std::vector<Fusion>> read_fusion(const json::value& v, const std::string& path,
                                             const Spec& spec) {
  const auto one = [](const json::value& f, const std::string& fpath) {
    return parse_fusion(json::as_string(f, fpath), fpath);
  };
  std::vector<std::vector<Fusion>> out;
  if (v.is_string()) {
    const Fusion f = one(v, path);
    for (const auto& st : spec.stages) out.emplace_back(static_cast<std::size_t>(st.blocks), f);
    return out;
  }
  json::as_array(v, path);
  if (v.size() != spec.stages.size()) {
    json::fail(path, fmt::format("has {} entries but the spec has {} stages", v.size(),
                                 spec.stages.size()));
  }
  for (std::size_t i = 0; i < v.size(); ++i) {
    const std::string spath = json::join(path, i);
    const auto blocks = static_cast<std::size_t>(spec.stages[i].blocks);
    if (!v[i].is_array()) {
      out.emplace_back(blocks, one(v[i], spath));
      continue;
    }
    if (v[i].size() != blocks) {
      json::fail(spath, fmt::format("has {} entries but stage {} has {} blocks", v[i].size(),
                                    spec.stages[i].name, blocks));
    }
    std::vector<Fusion> per_block;
    for (std::size_t b = 0; b < blocks; ++b)
      per_block.push_back(one(v[i][b], json::join(spath, b)));
    out.push_back(std::move(per_block));
  }
  return out;
}

void read_dynamic(const json::value& v, Spec& spec, const std::vector<StageGeometry>& geometry) {
  const std::string path = "dynamic";
  ObjectReader r(v, path);
  DynamicSpec& dyn = spec.dynamic;
  dyn.enabled = true;
  const std::string mode = r.optional_string("mode", "spatial");
  if (mode == "spatial") {
    dyn.mode = DynamicMode::spatial;
  } else if (mode == "channel") {
    dyn.mode = DynamicMode::channel;
  } else if (mode == "layer") {
    dyn.mode = DynamicMode::layer;
  } else {
    json::fail(r.path_of("mode"), fmt::format("'{}' is not one of spatial, channel, layer", mode));
  }

  const auto* gran = r.optional("granularity");
  if (dyn.mode != DynamicMode::spatial && gran) {
    json::fail(r.path_of("granularity"),
               fmt::format("not used in {} mode (layer mode skips whole blocks, channel mode "
                           "skips channels)",
                           mode));
  }
  if (dyn.mode == DynamicMode::spatial) {
    if (!gran) json::fail(r.path_of("granularity"), "missing required key (spatial mode)");
    const std::string gpath = r.path_of("granularity");
    std::vector<std::int64_t> g;
    if (gran->is_string()) {
      g = parse_granularity(gran->get<std::string>(), gpath);
    } else {
      json::as_array(*gran, gpath);
      for (std::size_t i = 0; i < gran->size(); ++i) {
        g.push_back(json::as_int((*gran)[i], json::join(gpath, i)));
      }
    }
    if (g.size() != spec.stages.size()) {
      json::fail(gpath, fmt::format("has {} entries but the spec has {} stages", g.size(),
                                    spec.stages.size()));
    }
    for (std::size_t i = 0; i < g.size(); ++i) {
      check_granularity(g[i], geometry[i], spec.stages[i], json::join(gpath, i));
    }
    dyn.granularity = std::move(g);
  } else if (dyn.mode == DynamicMode::layer) {
    dyn.granularity.clear();
    for (const auto& geo : geometry)
      dyn.granularity.push_back(std::max(geo.out_height, geo.out_width));
  }

  const auto& dens = r.required("density");
  const std::string dpath = r.path_of("density");
  if (dens.is_number()) {
    const double d = json::as_number(dens, dpath);
    check_density(d, dpath);
    dyn.density = uniform_density(spec, d);
  } else {
    json::as_array(dens, dpath);
    if (dens.size() != spec.stages.size()) {
      json::fail(dpath, fmt::format("has {} entries but the spec has {} stages", dens.size(),
                                    spec.stages.size()));
    }
    dyn.density.clear();
    for (std::size_t i = 0; i < dens.size(); ++i) {
      const std::string spath = json::join(dpath, i);
      const auto blocks = static_cast<std::size_t>(spec.stages[i].blocks);
      if (dens[i].is_array()) {
        if (dens[i].size() != blocks) {
          json::fail(spath, fmt::format("has {} entries but stage {} has {} blocks", dens[i].size(),
                                        spec.stages[i].name, blocks));
        }
        std::vector<double> per_block;
        for (std::size_t b = 0; b < blocks; ++b) {
          const std::string bpath = json::join(spath, b);
          per_block.push_back(json::as_number(dens[i][b], bpath));
          check_density(per_block.back(), bpath);
        }
        dyn.density.push_back(std::move(per_block));
      } else {
        const double d = json::as_number(dens[i], spath);
        check_density(d, spath);
        dyn.density.emplace_back(blocks, d);
      }
    }
  }
  if (const auto* fusion = r.optional("fusion")) {
    if (dyn.mode != DynamicMode::spatial) {
      json::fail(
          r.path_of("fusion"),
          fmt::format("not used in {} mode (fusion joins the kernels of spatial blocks)", mode));
    }
    dyn.fusion = read_fusion(*fusion, r.path_of("fusion"), spec);
  }
  r.reject_unknown();
}

}  // namespace

bool fusion_available(Precision precision, const Fusion& fusion) {
  if (precision != Precision::fp16) return true;
  return !fusion.masker_conv1;
}

Fusion parse_fusion(std::string_view text, std::string_view what) {
  Fusion f{false, false, false};
  if (text == "none") return f;
  if (text == "all") return Fusion{true, true, true};
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const auto comma = text.find(',', pos);
    const auto part =
        text.substr(pos, comma == std::string_view::npos ? text.size() - pos : comma - pos);
    if (part == "union") {
      f.union_conv1 = true;
    } else if (part == "masker") {
      f.masker_conv1 = true;
    } else if (part == "gather") {
      f.gather_conv1 = true;
    } else if (part == "scatter") {
      f.conv3_scatter_add = true;
    } else {
      throw Error(
          fmt::format("{}: '{}' is not a fusion (use none, all, or a comma list of "
                      "union, masker, gather, scatter)",
                      what, part));
    }
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  if (f.union_conv1 && f.masker_conv1) {
    throw Error(fmt::format(
        "{}: 'union' and 'masker' exclude each other (the union form computes conv1 on the "
        "needed pixels only, the masker form densely with the mask logit)",
        what));
  }
  return f;
}

std::string to_string(const Fusion& f) {
  std::vector<std::string> parts;
  if (f.union_conv1) parts.emplace_back("union");
  if (f.masker_conv1) parts.emplace_back("masker");
  if (f.gather_conv1) parts.emplace_back("gather");
  if (f.conv3_scatter_add) parts.emplace_back("scatter");
  if (parts.empty()) return "none";
  return fmt::format("{}", fmt::join(parts, ","));
}

std::string_view to_string(BlockKind kind) {
  switch (kind) {
    case BlockKind::basic:
      return "basic";
    case BlockKind::bottleneck:
      return "bottleneck";
    case BlockKind::regnety:
      return "regnety";
    case BlockKind::inverted_residual:
      return "inverted_residual";
    case BlockKind::convnext:
      return "convnext";
  }
  return "?";
}

std::string_view to_string(DynamicMode mode) {
  switch (mode) {
    case DynamicMode::spatial:
      return "spatial";
    case DynamicMode::channel:
      return "channel";
    case DynamicMode::layer:
      return "layer";
  }
  return "?";
}

namespace {

// The index a stage had in the file's "stages" list: block stage `block` (or the layer stage
// `layer`) counted among the layer stages placed before it.
std::size_t json_stage_index(const Spec& spec, std::size_t block) {
  std::size_t before = 0;
  for (const auto& ls : spec.layer_stages) before += ls.before <= block ? 1 : 0;
  return block + before;
}

std::string layer_stage_path(const Spec& spec, std::size_t layer, std::size_t i) {
  return json::join(
      json::join(json::join("stages", spec.layer_stages[layer].before + layer), "layers"), i);
}

// Walks the network's maps: calls `on_layer_stage(j, in)` for each layer stage and
// `on_stage(i, geometry)` for each block stage, in order; returns the map the head reads.
template <class OnLayerStage, class OnStage>
MapShape walk(const Spec& spec, OnLayerStage on_layer_stage, OnStage on_stage) {
  MapShape map{spec.in_channels, spec.height, spec.width};
  for (std::size_t i = 0; i < spec.stem.size(); ++i) {
    map = apply_layer(spec.stem[i], map, json::join("stem", i));
  }
  std::size_t next = 0;  // next layer stage
  const auto layer_stages_before = [&](std::size_t block) {
    for (; next < spec.layer_stages.size() && spec.layer_stages[next].before <= block; ++next) {
      on_layer_stage(next, map);
      const auto& layers = spec.layer_stages[next].layers;
      for (std::size_t i = 0; i < layers.size(); ++i) {
        map = apply_layer(layers[i], map, layer_stage_path(spec, next, i));
      }
    }
  };
  for (std::size_t i = 0; i < spec.stages.size(); ++i) {
    layer_stages_before(i);
    const auto& st = spec.stages[i];
    StageGeometry g{};
    g.in_channels = map.channels;
    g.in_height = map.height;
    g.in_width = map.width;
    g.out_channels = st.out_channels;
    // The block's spatial conv keeps the map at stride 1 (padding dilation * (k - 1) / 2), so
    // the output side is that of a 3x3 at the stage's stride whatever the kernel.
    g.out_height = conv_output_extent(map.height, 3, st.stride, 1);
    g.out_width = conv_output_extent(map.width, 3, st.stride, 1);
    on_stage(i, g);
    map = {g.out_channels, g.out_height, g.out_width};
  }
  layer_stages_before(spec.stages.size());
  return map;
}

}  // namespace

std::vector<StageGeometry> stage_geometry(const Spec& spec) {
  std::vector<StageGeometry> out;
  walk(
      spec, [](std::size_t, const MapShape&) {},
      [&](std::size_t, const StageGeometry& g) { out.push_back(g); });
  return out;
}

std::vector<MapShape> layer_stage_inputs(const Spec& spec) {
  std::vector<MapShape> out;
  walk(
      spec, [&](std::size_t, const MapShape& in) { out.push_back(in); },
      [](std::size_t, const StageGeometry&) {});
  return out;
}

MapShape head_input(const Spec& spec) {
  return walk(
      spec, [](std::size_t, const MapShape&) {}, [](std::size_t, const StageGeometry&) {});
}

MapShape layer_output(const LayerSpec& layer, MapShape in) {
  return apply_layer(layer, in, "layer");
}

std::string_view to_string(Activation activation) {
  switch (activation) {
    case Activation::relu:
      return "relu";
    case Activation::relu6:
      return "relu6";
    case Activation::silu:
      return "silu";
    case Activation::hardswish:
      return "hardswish";
    case Activation::sigmoid:
      return "sigmoid";
    case Activation::gelu:
      return "gelu";
    case Activation::none:
      return "none";
  }
  return "?";
}

std::vector<std::int64_t> granularity_candidates(const StageGeometry& stage) {
  std::vector<std::int64_t> out;
  const auto side = std::min(stage.out_height, stage.out_width);
  for (std::int64_t s = 1; s <= side; ++s) {
    if (stage.out_height % s == 0 && stage.out_width % s == 0) out.push_back(s);
  }
  // A non-square map also gets one patch over the whole map (partial along its shorter side),
  // which square maps have among their divisors.
  const auto longer = std::max(stage.out_height, stage.out_width);
  if (out.back() != longer) out.push_back(longer);
  return out;
}

std::vector<std::int64_t> parse_granularity(std::string_view text, std::string_view what) {
  std::vector<std::int64_t> out;
  std::size_t pos = 0;
  while (true) {
    const auto dash = text.find('-', pos);
    const auto part =
        text.substr(pos, dash == std::string_view::npos ? text.size() - pos : dash - pos);
    std::int64_t value = 0;
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (part.empty() || ec != std::errc() || end != part.data() + part.size() || value <= 0) {
      json::fail(what, fmt::format("'{}' is not a granularity list like \"4-4-2-1\" (positive "
                                   "integers joined by '-')",
                                   text));
    }
    out.push_back(value);
    if (dash == std::string_view::npos) break;
    pos = dash + 1;
  }
  return out;
}

std::string format_granularity(const std::vector<std::int64_t>& granularity) {
  return fmt::format("{}", fmt::join(granularity, "-"));
}

void set_granularity(Spec& spec, const std::vector<std::int64_t>& granularity,
                     std::string_view what) {
  if (spec.dynamic.mode != DynamicMode::spatial) {
    json::fail(what,
               fmt::format("granularity applies to spatial mode only; this spec is in {} mode",
                           to_string(spec.dynamic.mode)));
  }
  if (granularity.size() != spec.stages.size()) {
    json::fail(what, fmt::format("has {} entries but the spec has {} stages", granularity.size(),
                                 spec.stages.size()));
  }
  const auto geometry = stage_geometry(spec);
  for (std::size_t i = 0; i < granularity.size(); ++i) {
    check_granularity(granularity[i], geometry[i], spec.stages[i], fmt::format("{}[{}]", what, i));
  }
  spec.dynamic.granularity = granularity;
  spec.dynamic.enabled = true;
}

void set_density(Spec& spec, double density, std::string_view what) {
  check_density(density, std::string(what));
  spec.dynamic.density = uniform_density(spec, density);
  spec.dynamic.enabled = true;
}

void set_precision(Spec& spec, std::string_view text, std::string_view what) {
  const auto p = parse_precision(text);
  if (!p) throw Error(fmt::format("{}: '{}' is not one of fp32, tf32, fp16", what, text));
  spec.precision = *p;
}

void set_mode(Spec& spec, DynamicMode mode) {
  spec.dynamic.mode = mode;
  spec.dynamic.granularity.clear();
  if (mode == DynamicMode::layer) {
    for (const auto& geo : stage_geometry(spec)) {
      spec.dynamic.granularity.push_back(std::max(geo.out_height, geo.out_width));
    }
  }
}

Spec parse_spec(std::string_view json_text, std::string_view source) {
  try {
    const json::value doc = json::parse(json_text, source);
    ObjectReader r(doc, "");
    Spec spec;
    if (const auto labelled = read_document_version(r, "spec", 2)) {
      spec.schema_version = *labelled;
    } else if (const auto* version = r.optional("schema_version")) {
      // The label specs carried before the common one; absent means 1.
      spec.schema_version = static_cast<int>(
          std::clamp<std::int64_t>(json::as_int(*version, "schema_version"), -1, 1000));
      if (spec.schema_version < 1 || spec.schema_version > 2) {
        json::fail("schema_version", fmt::format("{} is not a version this tool reads (1 or 2)",
                                                 json::as_int(*version, "schema_version")));
      }
    }
    spec.name = r.required_string("name");
    spec.batch = at_most(r.optional_positive_int("batch", 1), max_batch, "batch");
    {
      ObjectReader in(r.required("input"), "input");
      spec.in_channels =
          at_most(in.required_positive_int("channels"), max_channels, "input.channels");
      spec.height = at_most(in.required_positive_int("height"), max_side, "input.height");
      spec.width = at_most(in.required_positive_int("width"), max_side, "input.width");
      in.reject_unknown();
    }
    const std::string precision = r.optional_string("precision", "fp32");
    const auto p = parse_precision(precision);
    if (!p) json::fail("precision", fmt::format("'{}' is not one of fp32, tf32, fp16", precision));
    spec.precision = *p;
    if (const auto* stem = r.optional("stem")) {
      check_list(*stem, max_list, "stem");
      spec.stem = read_layers(*stem, "stem");
    }
    const auto& stages = json::as_array(r.required("stages"), "stages");
    if (stages.empty()) json::fail("stages", "must list at least one stage");
    check_list(stages, max_list, "stages");
    for (std::size_t i = 0; i < stages.size(); ++i) {
      const std::string path = json::join("stages", i);
      if (stages[i].is_object() && stages[i].contains("layers")) {
        LayerStageSpec ls = read_layer_stage(stages[i], path, i);
        if (ls.name == "stem" || ls.name == "head") {
          json::fail(json::join(path, "name"),
                     fmt::format("'{}' names the network's own {} layers", ls.name, ls.name));
        }
        for (const auto& other : spec.layer_stages) {
          if (other.name == ls.name) {
            json::fail(json::join(path, "name"),
                       fmt::format("another layer stage is named '{}' already", ls.name));
          }
        }
        ls.before = spec.stages.size();
        spec.layer_stages.push_back(std::move(ls));
      } else {
        spec.stages.push_back(read_stage(stages[i], path, i));
      }
    }
    if (spec.stages.empty()) {
      json::fail("stages", "must list at least one block stage (layer stages alone are a head)");
    }
    for (std::size_t j = 0; j < spec.layer_stages.size(); ++j) {
      const auto& ls = spec.layer_stages[j];
      for (const auto& st : spec.stages) {
        if (st.name == ls.name) {
          json::fail(json::join(json::join("stages", ls.before + j), "name"),
                     fmt::format("a block stage is named '{}' too", ls.name));
        }
      }
    }
    if (const auto* head = r.optional("head")) {
      check_list(*head, max_list, "head");
      spec.head = read_layers(*head, "head");
    }

    // Geometry validates the stem and layer stages; then each stage's map must stay at least
    // 1x1.
    const auto geometry = stage_geometry(spec);
    for (std::size_t i = 0; i < geometry.size(); ++i) {
      const std::string path = json::join("stages", json_stage_index(spec, i));
      if (geometry[i].out_height <= 0 || geometry[i].out_width <= 0) {
        json::fail(path, "the feature map shrinks to nothing");
      }
      const auto& st = spec.stages[i];
      if ((st.block == BlockKind::inverted_residual || st.block == BlockKind::convnext) &&
          st.expansion > 0 &&
          std::max(geometry[i].in_channels, st.out_channels) > max_channels / st.expansion) {
        json::fail(json::join(path, "expansion"),
                   fmt::format("{} expands the channels over the limit of {}", st.expansion,
                               max_channels));
      }
      if (st.block == BlockKind::convnext && st.out_channels != geometry[i].in_channels) {
        json::fail(json::join(path, "out_channels"),
                   fmt::format("{} differs from the {} channels the stage reads (convnext blocks "
                               "keep their width; a layer stage changes it)",
                               st.out_channels, geometry[i].in_channels));
      }
    }
    MapSize last = head_input(spec);
    for (std::size_t i = 0; i < spec.head.size(); ++i) {
      last = apply_layer(spec.head[i], last, json::join("head", i));
    }
    if (const auto* dyn = r.optional("dynamic")) read_dynamic(*dyn, spec, geometry);
    r.reject_unknown();
    return spec;
  } catch (const Error& e) {
    const std::string message = e.what();
    if (message.starts_with(source)) throw;
    throw Error(fmt::format("{}: {}", source, message));
  }
}

Spec load_spec(const std::filesystem::path& file) {
  return parse_spec(read_text_file(file), file.string());
}

std::string spec_to_json(const Spec& spec) {
  using ojson = nlohmann::ordered_json;
  // Schema-2 keys are written only where they differ from their defaults, so a schema-1 spec
  // writes what it always did under version 1; any of them makes the label version 2.
  bool v2 = spec.schema_version >= 2 || !spec.layer_stages.empty();
  const auto layer_json = [&v2](const LayerSpec& l) {
    ojson j;
    j["type"] = layer_kind_name(l.kind);
    if (l.kind == LayerSpec::Kind::conv || l.kind == LayerSpec::Kind::fc) {
      j["out_channels"] = l.out_channels;
    }
    if (l.kind == LayerSpec::Kind::conv || l.kind == LayerSpec::Kind::max_pool ||
        l.kind == LayerSpec::Kind::avg_pool) {
      j["kernel"] = l.kernel;
      j["stride"] = l.stride;
      j["padding"] = l.padding;
    }
    if (l.kind == LayerSpec::Kind::conv && l.groups != 1) j["groups"] = l.groups;
    const auto v2_key = [&](const char* key, const auto& value) {
      j[key] = value;
      v2 = true;
    };
    switch (l.kind) {
      case LayerSpec::Kind::conv:
        if (l.dilation != 1) v2_key("dilation", l.dilation);
        if (l.activation != Activation::relu) v2_key("activation", to_string(l.activation));
        if (l.bias) v2_key("bias", true);
        if (!l.batchnorm) v2_key("norm", "none");
        break;
      case LayerSpec::Kind::fc:
      case LayerSpec::Kind::add:
        if (l.kind == LayerSpec::Kind::add) v2 = true;
        if (l.activation != Activation::none) v2_key("activation", to_string(l.activation));
        break;
      case LayerSpec::Kind::concat:
        v2_key("channels", l.channels);
        break;
      case LayerSpec::Kind::upsample:
        v2_key("scale", l.scale);
        if (l.bilinear) v2_key("mode", "bilinear");
        break;
      case LayerSpec::Kind::elementwise:
        v2_key("op", elementwise_name(l));
        break;
      case LayerSpec::Kind::se:
        v2_key("channels", l.channels);
        if (l.activation != Activation::relu) v2_key("activation", to_string(l.activation));
        if (l.gate != Gate::sigmoid) v2_key("gate", to_string(l.gate));
        break;
      default:
        break;
    }
    return j;
  };
  const auto layers_json = [&](const std::vector<LayerSpec>& layers) {
    ojson out = ojson::array();
    for (const auto& l : layers) out.push_back(layer_json(l));
    return out;
  };
  ojson j;
  j["name"] = spec.name;
  j["batch"] = spec.batch;
  j["input"] =
      ojson{{"channels", spec.in_channels}, {"height", spec.height}, {"width", spec.width}};
  j["precision"] = to_string(spec.precision);
  j["stem"] = layers_json(spec.stem);
  ojson stages = ojson::array();
  std::size_t next_layer_stage = 0;
  const auto layer_stages_before = [&](std::size_t block) {
    for (; next_layer_stage < spec.layer_stages.size() &&
           spec.layer_stages[next_layer_stage].before <= block;
         ++next_layer_stage) {
      const auto& ls = spec.layer_stages[next_layer_stage];
      stages.push_back(ojson{{"name", ls.name}, {"layers", layers_json(ls.layers)}});
    }
  };
  for (std::size_t i = 0; i < spec.stages.size(); ++i) {
    layer_stages_before(i);
    const auto& s = spec.stages[i];
    ojson st;
    st["name"] = s.name;
    st["block"] = to_string(s.block);
    st["blocks"] = s.blocks;
    st["out_channels"] = s.out_channels;
    st["stride"] = s.stride;
    if (s.block == BlockKind::bottleneck || s.block == BlockKind::regnety) {
      st["mid_channels"] = s.mid_channels;
    }
    if (s.group_width > 0) st["group_width"] = s.group_width;
    if (s.block == BlockKind::regnety && s.se_channels == 0) st["se_ratio"] = s.se_ratio;
    if (s.block == BlockKind::inverted_residual || s.block == BlockKind::convnext) {
      if (s.expansion > 0) st["expansion"] = s.expansion;
    }
    const bool convnext = s.block == BlockKind::convnext;
    if (convnext) v2 = true;
    const auto v2_key = [&](const char* key, const auto& value) {
      st[key] = value;
      v2 = true;
    };
    if (s.kernel != (convnext ? 7 : 3)) v2_key("kernel", s.kernel);
    if (s.dilation != 1) v2_key("dilation", s.dilation);
    if (s.activation != (convnext ? Activation::gelu : Activation::relu)) {
      v2_key("activation", to_string(s.activation));
    }
    if (s.block == BlockKind::inverted_residual && s.expansion == 0) {
      v2_key("mid_channels", s.mid_channels);
    }
    if (s.se_channels > 0) v2_key("se_channels", s.se_channels);
    if (s.se_activation != Activation::relu) {
      v2_key("se_activation", to_string(s.se_activation));
    }
    if (s.se_gate != Gate::sigmoid) v2_key("se_gate", to_string(s.se_gate));
    stages.push_back(st);
  }
  layer_stages_before(spec.stages.size());
  j["stages"] = stages;
  j["head"] = layers_json(spec.head);
  if (spec.dynamic.enabled) {
    ojson dyn;
    dyn["mode"] = to_string(spec.dynamic.mode);
    if (spec.dynamic.mode == DynamicMode::spatial) {
      dyn["granularity"] = spec.dynamic.granularity;
    }
    ojson density = ojson::array();
    for (const auto& stage : spec.dynamic.density) {
      const bool uniform =
          std::all_of(stage.begin(), stage.end(), [&](double d) { return d == stage.front(); });
      if (uniform && !stage.empty()) {
        density.push_back(stage.front());
      } else {
        density.push_back(stage);
      }
    }
    dyn["density"] = density;
    if (!spec.dynamic.fusion.empty()) {
      ojson fusion = ojson::array();
      for (const auto& stage : spec.dynamic.fusion) {
        const bool uniform = std::all_of(stage.begin(), stage.end(),
                                         [&](const Fusion& f) { return f == stage.front(); });
        if (uniform && !stage.empty()) {
          fusion.push_back(to_string(stage.front()));
        } else {
          ojson per_block = ojson::array();
          for (const auto& f : stage) per_block.push_back(to_string(f));
          fusion.push_back(per_block);
        }
      }
      dyn["fusion"] = fusion;
    }
    j["dynamic"] = dyn;
  }
  ojson stamped = input_document("spec", v2 ? 2 : 1);
  for (auto it = j.begin(); it != j.end(); ++it) stamped[it.key()] = *it;
  return stamped.dump(2) + "\n";
}

}  // namespace lasnet::predictor
