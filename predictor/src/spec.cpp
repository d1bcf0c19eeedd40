#include "lasnet/predictor/spec.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

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

struct MapSize {
  std::int64_t channels, height, width;
};

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
  }
  return "?";
}

// Applies one stem/head layer to a map; errors name `path`.
MapSize apply_layer(const LayerSpec& l, MapSize in, const std::string& path) {
  switch (l.kind) {
    case LayerSpec::Kind::conv:
    case LayerSpec::Kind::max_pool:
    case LayerSpec::Kind::avg_pool: {
      const auto h = conv_output_extent(in.height, l.kernel, l.stride, l.padding);
      const auto w = conv_output_extent(in.width, l.kernel, l.stride, l.padding);
      if (h <= 0 || w <= 0 || in.height + 2 * l.padding < l.kernel ||
          in.width + 2 * l.padding < l.kernel) {
        json::fail(path, fmt::format("a {}x{} {} does not fit the {}x{} map", l.kernel, l.kernel,
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
  } else if (type == "max_pool" || type == "avg_pool") {
    l.kind = type == "max_pool" ? LayerSpec::Kind::max_pool : LayerSpec::Kind::avg_pool;
    l.kernel = at_most(r.required_positive_int("kernel"), max_side, r.path_of("kernel"));
    l.stride = at_most(r.optional_positive_int("stride", l.kernel), max_side, r.path_of("stride"));
  } else if (type == "global_avg_pool") {
    l.kind = LayerSpec::Kind::global_avg_pool;
  } else if (type == "fc") {
    l.kind = LayerSpec::Kind::fc;
    l.out_channels = r.required_positive_int("out_channels");
  } else {
    json::fail(
        r.path_of("type"),
        fmt::format("'{}' is not one of conv, max_pool, avg_pool, global_avg_pool, fc", type));
  }
  if (l.kind == LayerSpec::Kind::conv || l.kind == LayerSpec::Kind::max_pool ||
      l.kind == LayerSpec::Kind::avg_pool) {
    if (const auto* pad = r.optional("padding")) {
      l.padding = json::as_int(*pad, r.path_of("padding"));
      if (l.padding < 0 || l.padding >= l.kernel) {
        json::fail(r.path_of("padding"),
                   fmt::format("must be in [0, kernel) = [0, {}), got {}", l.kernel, l.padding));
      }
    } else {
      l.padding = (l.kernel - 1) / 2;
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
                            BlockKind::inverted_residual}) {
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

StageSpec read_stage(const json::value& v, const std::string& path, std::size_t index) {
  ObjectReader r(v, path);
  StageSpec s;
  s.name = r.optional_string("name", fmt::format("stage{}", index + 1));
  const std::string block = r.required_string("block");
  const auto kind = parse_block_kind(block);
  if (!kind) {
    json::fail(
        r.path_of("block"),
        fmt::format("'{}' is not one of basic, bottleneck, regnety, inverted_residual", block));
  }
  s.block = *kind;
  s.blocks = at_most(r.required_positive_int("blocks"), max_blocks, r.path_of("blocks"));
  s.out_channels =
      at_most(r.required_positive_int("out_channels"), max_channels, r.path_of("out_channels"));
  s.stride = r.optional_positive_int("stride", 1);
  if (s.stride > 2)
    json::fail(r.path_of("stride"), fmt::format("must be 1 or 2, got {}", s.stride));
  switch (s.block) {
    case BlockKind::basic:
      forbid(r, "mid_channels", s.block);
      forbid(r, "group_width", s.block);
      forbid(r, "se_ratio", s.block);
      forbid(r, "expansion", s.block);
      s.mid_channels = s.out_channels;
      break;
    case BlockKind::bottleneck:
      s.mid_channels =
          at_most(r.required_positive_int("mid_channels"), max_channels, r.path_of("mid_channels"));
      s.group_width = r.has("group_width") ? r.required_positive_int("group_width") : 0;
      forbid(r, "se_ratio", s.block);
      forbid(r, "expansion", s.block);
      break;
    case BlockKind::regnety: {
      s.mid_channels = at_most(r.optional_positive_int("mid_channels", s.out_channels),
                               max_channels, r.path_of("mid_channels"));
      s.group_width = r.required_positive_int("group_width");
      const auto* se = r.optional("se_ratio");
      s.se_ratio = se ? json::as_number(*se, r.path_of("se_ratio")) : 0.25;
      if (!(s.se_ratio > 0 && s.se_ratio <= 1)) {
        json::fail(r.path_of("se_ratio"), fmt::format("must be in (0, 1], got {}", s.se_ratio));
      }
      forbid(r, "expansion", s.block);
      break;
    }
    case BlockKind::inverted_residual:
      s.expansion = r.required_positive_int("expansion");
      forbid(r, "mid_channels", s.block);
      forbid(r, "group_width", s.block);
      forbid(r, "se_ratio", s.block);
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

void check_granularity(std::int64_t s, const StageGeometry& g, const StageSpec& stage,
                       const std::string& path) {
  if (s <= 0) json::fail(path, fmt::format("must be positive, got {}", s));
  if (s > g.out_height || s > g.out_width) {
    json::fail(path,
               fmt::format("{} is larger than the {} of stage {}", s, map_text(g), stage.name));
  }
  if (g.out_height % s != 0 || g.out_width % s != 0) {
    std::string options;
    for (const auto c : granularity_candidates(g))
      options += (options.empty() ? "" : ", ") + std::to_string(c);
    json::fail(path, fmt::format("{} does not tile the {} of stage {} (fitting: {})", s,
                                 map_text(g), stage.name, options));
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

Fusion parse_fusion(std::string_view text, std::string_view what) {
  Fusion f{false, false, false};
  if (text == "none") return f;
  if (text == "all") return Fusion{true, true, true};
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const auto comma = text.find(',', pos);
    const auto part =
        text.substr(pos, comma == std::string_view::npos ? text.size() - pos : comma - pos);
    if (part == "masker") {
      f.masker_conv1 = true;
    } else if (part == "gather") {
      f.gather_conv1 = true;
    } else if (part == "scatter") {
      f.conv3_scatter_add = true;
    } else {
      throw Error(
          fmt::format("{}: '{}' is not a fusion (use none, all, or a comma list of "
                      "masker, gather, scatter)",
                      what, part));
    }
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return f;
}

std::string to_string(const Fusion& f) {
  std::vector<std::string> parts;
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

std::vector<StageGeometry> stage_geometry(const Spec& spec) {
  MapSize map{spec.in_channels, spec.height, spec.width};
  for (std::size_t i = 0; i < spec.stem.size(); ++i) {
    map = apply_layer(spec.stem[i], map, json::join("stem", i));
  }
  std::vector<StageGeometry> out;
  for (std::size_t i = 0; i < spec.stages.size(); ++i) {
    const auto& st = spec.stages[i];
    StageGeometry g{};
    g.in_channels = map.channels;
    g.in_height = map.height;
    g.in_width = map.width;
    g.out_channels = st.out_channels;
    g.out_height = conv_output_extent(map.height, 3, st.stride, 1);
    g.out_width = conv_output_extent(map.width, 3, st.stride, 1);
    out.push_back(g);
    map = {g.out_channels, g.out_height, g.out_width};
  }
  return out;
}

std::vector<std::int64_t> granularity_candidates(const StageGeometry& stage) {
  std::vector<std::int64_t> out;
  const auto side = std::min(stage.out_height, stage.out_width);
  for (std::int64_t s = 1; s <= side; ++s) {
    if (stage.out_height % s == 0 && stage.out_width % s == 0) out.push_back(s);
  }
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
      spec.stages.push_back(read_stage(stages[i], json::join("stages", i), i));
    }
    if (const auto* head = r.optional("head")) {
      check_list(*head, max_list, "head");
      spec.head = read_layers(*head, "head");
    }

    // Geometry validates the stem; then each stage's map must stay at least 1x1.
    const auto geometry = stage_geometry(spec);
    for (std::size_t i = 0; i < geometry.size(); ++i) {
      if (geometry[i].out_height <= 0 || geometry[i].out_width <= 0) {
        json::fail(json::join("stages", i), "the feature map shrinks to nothing");
      }
      const auto& st = spec.stages[i];
      if (st.block == BlockKind::inverted_residual &&
          std::max(geometry[i].in_channels, st.out_channels) > max_channels / st.expansion) {
        json::fail(json::join(json::join("stages", i), "expansion"),
                   fmt::format("{} expands the channels over the limit of {}", st.expansion,
                               max_channels));
      }
    }
    MapSize last{geometry.back().out_channels, geometry.back().out_height,
                 geometry.back().out_width};
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
  const auto layer_json = [](const LayerSpec& l) {
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
    return j;
  };
  ojson j;
  j["name"] = spec.name;
  j["batch"] = spec.batch;
  j["input"] =
      ojson{{"channels", spec.in_channels}, {"height", spec.height}, {"width", spec.width}};
  j["precision"] = to_string(spec.precision);
  ojson stem = ojson::array();
  for (const auto& l : spec.stem) stem.push_back(layer_json(l));
  j["stem"] = stem;
  ojson stages = ojson::array();
  for (const auto& s : spec.stages) {
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
    if (s.block == BlockKind::regnety) st["se_ratio"] = s.se_ratio;
    if (s.block == BlockKind::inverted_residual) st["expansion"] = s.expansion;
    stages.push_back(st);
  }
  j["stages"] = stages;
  ojson head = ojson::array();
  for (const auto& l : spec.head) head.push_back(layer_json(l));
  j["head"] = head;
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
  return j.dump(2) + "\n";
}

}  // namespace lasnet::predictor
