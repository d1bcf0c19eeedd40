// Pass 3: block recognition over the plain layers, which yields the spec.
//  1. walk: the layer graph from the image on, every fork resolved at its join into one item:
//     a residual (body + shortcut, joined by Add), a squeeze-excitation, or a SiLU / GELU /
//     hard-swish built from elementwise ops (joined by Mul).
//  2. fold: BatchNorm, biases, layer scales and activations into the conv/fc before them.
//  3. match: residual items and conv runs against the block kinds of the spec; what matches
//     no block stays a plain layer (stem, head, or a layer stage between block stages).
//  4. stages: consecutive equal blocks; JSON (schema 1 unless a schema-2 feature is needed).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>

#include "internal.hpp"
#include "lasnet/common/document.hpp"
#include "lasnet/common/error.hpp"

namespace lasnet::importer::detail {

namespace {

using ordered = nlohmann::ordered_json;

enum class ItemKind { layer, residual, se, activation };

struct Item {
  ItemKind kind = ItemKind::layer;
  Layer l;                       // layer; residual/se/activation: shape and first node
  std::vector<Item> body, skip;  // residual
  std::int64_t se_channels = 0;  // se
  std::string se_activation, se_gate;
  double se_parameters = 0;
  std::vector<PlainNode> nodes;  // every ONNX node inside, for the report
};

constexpr int max_nesting = 64;

class Walker {
 public:
  explicit Walker(const LayerGraph& g) : g_(g) {}

  // Items from value `v` until the graph ends (join = -1) or a layer with several map inputs
  // is reached (join = its index); `end` = the value that reaches it.
  struct Stop {
    int end;
    int join;
  };
  Stop walk(int v, std::vector<Item>& items, int depth = 0) const {
    for (;;) {
      const auto& cons = g_.consumers.at(static_cast<std::size_t>(v));
      if (cons.empty()) return {v, -1};
      if (cons.size() == 1) {
        const Layer& l = layer(cons[0]);
        if (l.inputs.size() >= 2) return {v, cons[0]};
        items.push_back(layer_item(l));
        v = l.output;
        continue;
      }
      int join = -1;
      std::vector<std::vector<Item>> branches;
      for (const int c : cons) {
        std::vector<Item> branch;
        int j = c;
        const Layer& l = layer(c);
        if (l.inputs.size() < 2) {
          // Forks nest (an SE inside a residual, a SiLU inside the SE): a bound keeps a crafted
          // graph from exhausting the stack.
          if (depth >= max_nesting)
            fail(l, fmt::format("forks nest deeper than {} levels", max_nesting));
          branch.push_back(layer_item(l));
          j = walk(l.output, branch, depth + 1).join;
        }
        if (j < 0)
          fail(l,
               "its branch never joins the others (graphs with several outputs are not supported)");
        if (join >= 0 && j != join)
          fail(l,
               fmt::format("its branch joins at '{}' but another branch at '{}'; only forks that "
                           "meet again at one node are supported",
                           layer(j).node, layer(join).node));
        join = j;
        branches.push_back(std::move(branch));
      }
      const Layer& j = layer(join);
      if (j.inputs.size() != branches.size()) fail(j, "its inputs do not all come from one fork");
      items.push_back(composite(j, std::move(branches)));
      v = j.output;
    }
  }

  [[noreturn]] void fail(const Layer& l, const std::string& message) const {
    throw Error(fmt::format("{}: node '{}' ({}): {}", g_.source, l.node, l.op, message));
  }

 private:
  const Layer& layer(int i) const { return g_.layers.at(static_cast<std::size_t>(i)); }

  static Item layer_item(const Layer& l) {
    Item it;
    it.l = l;
    it.nodes.push_back({l.node, l.op, ""});
    return it;
  }

  Item composite(const Layer& join, std::vector<std::vector<Item>> branches) const;

  const LayerGraph& g_;
};

bool is_act(const Item& it, std::string_view name) {
  return it.kind == ItemKind::layer && it.l.kind == LayerKind::activation &&
         it.l.activation == name;
}
bool is_free(const Item& it) {
  return it.kind == ItemKind::layer && it.l.kind == LayerKind::free;
}
bool is_layer(const Item& it, LayerKind kind) {
  return it.kind == ItemKind::layer && it.l.kind == kind;
}
// Activations a conv/fc (or a residual's add) can carry in its epilogue.
bool fusable(const std::string& act) {
  return act == "relu" || act == "relu6" || act == "silu" || act == "hardswish" ||
         act == "sigmoid" || act == "hardsigmoid" || act == "gelu";
}

void collect(const std::vector<Item>& items, std::vector<PlainNode>& nodes) {
  for (const auto& it : items) nodes.insert(nodes.end(), it.nodes.begin(), it.nodes.end());
}

// conv/fc absorbs BatchNorm, a bias add, a layer scale, an activation after it; free scalar ops
// go away; a residual absorbs the activation after its add.
void fold(std::vector<Item>& items) {
  std::vector<Item> out;
  for (auto& it : items) {
    if (it.kind == ItemKind::residual) {
      fold(it.body);
      fold(it.skip);
    }
    if (is_free(it)) {
      if (!out.empty())
        out.back().nodes.push_back({it.l.node, it.l.op, ""});
      else
        out.push_back(std::move(it));
      continue;
    }
    if (!out.empty()) {
      Item& prev = out.back();
      const bool conv_like = prev.kind == ItemKind::layer &&
                             (prev.l.kind == LayerKind::conv || prev.l.kind == LayerKind::fc);
      std::string act;
      if ((it.kind == ItemKind::activation ||
           (it.kind == ItemKind::layer && it.l.kind == LayerKind::activation)) &&
          fusable(it.l.activation))
        act = it.l.activation;
      // A decomposed LayerNorm: its centring, then its normalisation, is one layernorm.
      if (it.kind == ItemKind::activation && it.l.activation == "ln_scale" &&
          prev.kind == ItemKind::activation && prev.l.activation == "ln_center") {
        prev.kind = ItemKind::layer;
        prev.l.kind = LayerKind::layernorm;
        prev.l.op = "LayerNormalization (decomposed)";
        prev.l.activation.clear();
        prev.l.parameters = 0;
        prev.nodes.insert(prev.nodes.end(), it.nodes.begin(), it.nodes.end());
        continue;
      }
      // Its affine weight and bias follow as a per-channel scale and bias.
      if (prev.kind == ItemKind::layer && prev.l.kind == LayerKind::layernorm &&
          prev.l.op == "LayerNormalization (decomposed)" && it.kind == ItemKind::layer &&
          (it.l.kind == LayerKind::scale || it.l.kind == LayerKind::bias_add)) {
        prev.l.parameters += it.l.parameters;
        prev.nodes.insert(prev.nodes.end(), it.nodes.begin(), it.nodes.end());
        continue;
      }
      bool absorbed = false;
      if (conv_like && it.kind == ItemKind::layer) {
        if (it.l.kind == LayerKind::batchnorm && !prev.l.norm && prev.l.activation.empty() &&
            prev.l.kind == LayerKind::conv) {
          prev.l.norm = true;
          absorbed = true;
        } else if (it.l.kind == LayerKind::bias_add && !prev.l.bias && !prev.l.norm &&
                   prev.l.activation.empty()) {
          prev.l.bias = true;
          absorbed = true;
        } else if (it.l.kind == LayerKind::scale && prev.l.activation.empty()) {
          absorbed = true;  // a per-channel scale folds into the weights
        }
        if (absorbed) prev.l.parameters += it.l.parameters;
      }
      if (!absorbed && !act.empty() && prev.l.activation.empty() &&
          (conv_like || prev.kind == ItemKind::residual)) {
        prev.l.activation = act;
        absorbed = true;
      }
      if (absorbed) {
        prev.nodes.insert(prev.nodes.end(), it.nodes.begin(), it.nodes.end());
        continue;
      }
    }
    out.push_back(std::move(it));
  }
  items = std::move(out);
}

Item Walker::composite(const Layer& join, std::vector<std::vector<Item>> branches) const {
  Item it;
  it.l = join;
  std::sort(branches.begin(), branches.end(),
            [](const auto& a, const auto& b) { return a.size() < b.size(); });
  // The body (the longest branch) first, so a block's first node is its first conv.
  for (auto b = branches.rbegin(); b != branches.rend(); ++b) collect(*b, it.nodes);
  it.nodes.push_back({join.node, join.op, ""});
  if (branches.back().empty())
    fail(join, "both of its inputs are the same map (no pattern the importer knows)");
  if (join.kind == LayerKind::add && branches.size() == 2) {
    it.kind = ItemKind::residual;
    it.l.activation.clear();
    it.skip = std::move(branches[0]);
    it.body = std::move(branches[1]);
    return it;
  }
  // Decomposed LayerNorm: x - mean(x), then d / sqrt(mean(d^2) + eps).
  if (join.kind == LayerKind::sub && branches.size() == 2 && branches[0].empty() &&
      branches[1].size() == 1 && is_layer(branches[1][0], LayerKind::channel_mean)) {
    it.kind = ItemKind::activation;
    it.l.activation = "ln_center";
    return it;
  }
  if (join.kind == LayerKind::div && branches.size() == 2 && branches[0].empty()) {
    const auto& b = branches[1];
    if (b.size() == 4 && is_free(b[0]) && is_layer(b[1], LayerKind::channel_mean) &&
        is_free(b[2]) && is_act(b[3], "sqrt")) {
      it.kind = ItemKind::activation;
      it.l.activation = "ln_scale";
      return it;
    }
  }
  if (join.kind == LayerKind::mul && branches.size() == 2 && branches[0].empty()) {
    auto& b = branches[1];
    it.kind = ItemKind::activation;
    if (b.size() == 1 && is_act(b[0], "sigmoid")) {
      it.l.activation = "silu";
      return it;
    }
    if (b.size() == 1 && is_act(b[0], "hardsigmoid")) {
      it.l.activation = "hardswish";
      return it;
    }
    // GELU as exported: x * (erf(x / sqrt 2) + 1), then * 0.5 after the join.
    if (b.size() == 3 && is_free(b[0]) && is_act(b[1], "erf") && is_free(b[2])) {
      it.l.activation = "gelu";
      return it;
    }
    if (!b.empty() && b[0].kind == ItemKind::layer && b[0].l.kind == LayerKind::global_pool) {
      fold(b);
      // pool -> conv/fc (act) -> conv/fc (gate)
      if (b.size() == 3) {
        const Layer& squeeze = b[1].l;
        const Layer& excite = b[2].l;
        const bool ok = b[1].kind == ItemKind::layer && b[2].kind == ItemKind::layer &&
                        (squeeze.kind == LayerKind::conv || squeeze.kind == LayerKind::fc) &&
                        (excite.kind == LayerKind::conv || excite.kind == LayerKind::fc) &&
                        squeeze.kernel == 1 && excite.kernel == 1 && excite.c == join.c &&
                        (excite.activation == "sigmoid" || excite.activation == "hardsigmoid") &&
                        !squeeze.activation.empty() && !squeeze.norm && !excite.norm;
        if (ok) {
          it.kind = ItemKind::se;
          it.se_channels = squeeze.c;
          it.se_activation = squeeze.activation;
          it.se_gate = excite.activation;
          it.se_parameters = squeeze.parameters + excite.parameters;
          it.l.activation.clear();
          return it;
        }
      }
      fail(join,
           "a gate that is not squeeze-excitation (pool, 1x1 conv, activation, 1x1 conv, "
           "sigmoid or hard sigmoid)");
    }
  }
  fail(join,
       "its inputs form no pattern the importer knows (residual Add, squeeze-excitation, "
       "SiLU, hard swish or GELU)");
}

// ---- blocks -----------------------------------------------------------------------------------

struct Block {
  std::string kind;  // basic, bottleneck, regnety, inverted_residual, convnext
  std::int64_t in_c = 0, in_h = 0, in_w = 0, out_c = 0, out_h = 0, out_w = 0;
  std::int64_t mid = 0, stride = 1, groups = 1, kernel = 3, dilation = 1;
  std::string activation = "relu";
  std::int64_t se = 0;
  std::string se_activation, se_gate;
  bool residual = true;
  double parameters = 0, macs = 0;
  std::int64_t expansion_mid = 0;  // convnext: the 1x1's width
  std::vector<PlainNode> nodes;
};

double layer_macs(const Layer& l) {
  switch (l.kind) {
    case LayerKind::conv:
      return static_cast<double>(l.c) * static_cast<double>(l.h * l.w) *
             static_cast<double>(l.in_c / l.groups) * static_cast<double>(l.kernel * l.kernel);
    case LayerKind::fc:
      return static_cast<double>(l.in_c) * static_cast<double>(l.c);
    default:
      return 0;
  }
}

double item_macs(const Item& it);
double items_macs(const std::vector<Item>& items) {
  double m = 0;
  for (const auto& i : items) m += item_macs(i);
  return m;
}
double item_macs(const Item& it) {
  switch (it.kind) {
    case ItemKind::layer:
      return layer_macs(it.l);
    case ItemKind::residual:
      return items_macs(it.body) + items_macs(it.skip);
    case ItemKind::se:
      return 2.0 * static_cast<double>(it.l.c) * static_cast<double>(it.se_channels);
    case ItemKind::activation:
      return 0;
  }
  return 0;
}
double item_parameters(const Item& it);
double items_parameters(const std::vector<Item>& items) {
  double p = 0;
  for (const auto& i : items) p += item_parameters(i);
  return p;
}
double item_parameters(const Item& it) {
  switch (it.kind) {
    case ItemKind::layer:
      return it.l.parameters;
    case ItemKind::residual:
      return items_parameters(it.body) + items_parameters(it.skip);
    case ItemKind::se:
      return it.se_parameters;
    case ItemKind::activation:
      return 0;
  }
  return 0;
}

bool is_conv(const Item& it) {
  return it.kind == ItemKind::layer && it.l.kind == LayerKind::conv;
}
bool same_padding(const Layer& l) {
  return l.padding == l.dilation * (l.kernel - 1) / 2 && l.kernel % 2 == 1;
}
bool pointwise(const Item& it) {
  return is_conv(it) && it.l.kernel == 1 && it.l.stride == 1 && it.l.groups == 1 && it.l.norm &&
         !it.l.bias;
}
bool depthwise(const Item& it) {
  return is_conv(it) && it.l.groups == it.l.in_c && it.l.c == it.l.in_c && it.l.kernel > 1 &&
         same_padding(it.l);
}

// Inverted residual body: [expand 1x1 act]? dw act [se]? project 1x1 (no act).
std::optional<Block> match_inverted(const std::vector<Item>& b, std::size_t at, std::size_t& used) {
  std::size_t i = at;
  Block k;
  k.kind = "inverted_residual";
  const Item* expand = nullptr;
  if (i < b.size() && pointwise(b[i]) && !b[i].l.activation.empty() && i + 1 < b.size() &&
      depthwise(b[i + 1])) {
    expand = &b[i];
    ++i;
  }
  if (i >= b.size() || !depthwise(b[i]) || !b[i].l.norm || b[i].l.bias || b[i].l.activation.empty())
    return std::nullopt;
  const Layer& dw = b[i].l;
  if (expand && expand->l.activation != dw.activation) return std::nullopt;
  ++i;
  if (i < b.size() && b[i].kind == ItemKind::se) {
    k.se = b[i].se_channels;
    k.se_activation = b[i].se_activation;
    k.se_gate = b[i].se_gate;
    ++i;
  }
  if (i >= b.size() || !pointwise(b[i]) || !b[i].l.activation.empty()) return std::nullopt;
  const Layer& project = b[i].l;
  ++i;
  const Layer& first = expand ? expand->l : dw;
  k.in_c = first.in_c;
  k.in_h = first.in_h;
  k.in_w = first.in_w;
  k.mid = dw.c;
  k.out_c = project.c;
  k.out_h = project.h;
  k.out_w = project.w;
  k.stride = dw.stride;
  k.kernel = dw.kernel;
  k.dilation = dw.dilation;
  k.activation = dw.activation;
  if (!expand && k.mid != k.in_c) return std::nullopt;
  used = i - at;
  for (std::size_t x = at; x < i; ++x) {
    k.parameters += item_parameters(b[x]);
    k.macs += item_macs(b[x]);
    k.nodes.insert(k.nodes.end(), b[x].nodes.begin(), b[x].nodes.end());
  }
  return k;
}

std::optional<Block> match_residual(const Item& r) {
  const auto& b = r.body;
  // Shortcut: identity, or a 1x1 conv + BatchNorm with the block's stride.
  const Layer* shortcut = nullptr;
  if (r.skip.size() == 1 && is_conv(r.skip[0]) && r.skip[0].l.kernel == 1 &&
      r.skip[0].l.groups == 1 && r.skip[0].l.norm && r.skip[0].l.activation.empty() &&
      !r.skip[0].l.bias) {
    shortcut = &r.skip[0].l;
  } else if (!r.skip.empty()) {
    return std::nullopt;
  }
  std::optional<Block> k;
  std::size_t used = 0;
  const std::string act = r.l.activation;
  auto plain = [](const Item& it, std::int64_t kernel) {
    return is_conv(it) && it.l.kernel == kernel && it.l.norm && !it.l.bias && same_padding(it.l);
  };
  if (b.size() == 2 && plain(b[0], b[0].l.kernel) && plain(b[1], b[0].l.kernel) &&
      b[0].l.groups == 1 && b[1].l.groups == 1 && b[0].l.activation == act && !act.empty() &&
      b[1].l.activation.empty() && b[1].l.stride == 1 && b[0].l.dilation == b[1].l.dilation) {
    k.emplace();
    k->kind = "basic";
    k->mid = b[0].l.c;
  } else if ((b.size() == 3 || (b.size() == 4 && b[2].kind == ItemKind::se)) && pointwise(b[0]) &&
             plain(b[1], b[1].l.kernel) && pointwise(b.back()) && !act.empty() &&
             b[0].l.activation == act && b[1].l.activation == act &&
             b.back().l.activation.empty() && b[1].l.c == b[0].l.c) {
    k.emplace();
    k->kind = b.size() == 4 ? "regnety" : "bottleneck";
    k->mid = b[1].l.c;
    k->groups = b[1].l.groups;
    if (b.size() == 4) {
      k->se = b[2].se_channels;
      k->se_activation = b[2].se_activation;
      k->se_gate = b[2].se_gate;
    }
  } else if (act.empty() && !shortcut) {
    if (auto ir = match_inverted(b, 0, used); ir && used == b.size()) {
      k = ir;
      k->parameters = 0;
      k->macs = 0;
      k->nodes.clear();
    } else if (b.size() == 4 && is_conv(b[0]) && depthwise(b[0]) && !b[0].l.norm &&
               b[0].l.activation.empty() && b[1].kind == ItemKind::layer &&
               b[1].l.kind == LayerKind::layernorm && is_conv(b[2]) && b[2].l.kernel == 1 &&
               b[2].l.activation == "gelu" && !b[2].l.norm && is_conv(b[3]) && b[3].l.kernel == 1 &&
               b[3].l.activation.empty() && !b[3].l.norm && b[3].l.c == b[0].l.c &&
               b[0].l.stride == 1) {
      k.emplace();
      k->kind = "convnext";
      k->mid = b[2].l.c;
      k->kernel = b[0].l.kernel;
      k->dilation = b[0].l.dilation;
      k->activation = "gelu";
    }
  }
  if (!k) return std::nullopt;
  const Layer& first = b.front().l;
  k->in_c = first.in_c;
  k->in_h = first.in_h;
  k->in_w = first.in_w;
  k->out_c = r.l.c;
  k->out_h = r.l.h;
  k->out_w = r.l.w;
  if (k->kind != "inverted_residual" && k->kind != "convnext") {
    const Layer& spatial = k->kind == "basic" ? b[0].l : b[1].l;
    k->stride = spatial.stride;
    k->kernel = spatial.kernel;
    k->dilation = spatial.dilation;
    k->activation = act;
  }
  // The spec adds a shortcut conv exactly where the block changes shape.
  const bool changes = k->stride != 1 || k->in_c != k->out_c;
  if (changes != (shortcut != nullptr)) return std::nullopt;
  if (shortcut && shortcut->stride != k->stride) return std::nullopt;
  k->residual = true;
  k->parameters = item_parameters(r);
  k->macs = item_macs(r);
  k->nodes = r.nodes;
  return k;
}

// ---- spec -------------------------------------------------------------------------------------

struct Entry {
  std::optional<Block> block;
  Item plain;  // when no block
};

struct StageOut {
  bool blocks = false;
  std::vector<Block> members;
  std::vector<Item> layers;
};

std::string describe(const Block& k) {
  std::string s = fmt::format("{}->{} ch, {}x{} -> {}x{}, stride {}", k.in_c, k.out_c, k.in_h,
                              k.in_w, k.out_h, k.out_w, k.stride);
  if (k.kind != "basic") s += fmt::format(", mid {}", k.mid);
  if (k.groups > 1 && k.kind != "inverted_residual") s += fmt::format(", groups {}", k.groups);
  if (k.kernel != 3) s += fmt::format(", kernel {}", k.kernel);
  if (k.dilation != 1) s += fmt::format(", dilation {}", k.dilation);
  s += fmt::format(", {}", k.activation);
  if (k.se > 0) s += fmt::format(", SE {} ({}, {})", k.se, k.se_activation, k.se_gate);
  if (!k.residual) s += ", no residual";
  return s;
}

// Whether `k` can join a stage whose first block is `first` (blocks after the first keep the
// map: stride 1, in = out).
bool same_stage(const Block& first, const Block& k) {
  if (k.kind != first.kind || k.stride != 1 || k.in_c != k.out_c || k.out_c != first.out_c ||
      k.kernel != first.kernel || k.dilation != first.dilation ||
      k.activation != first.activation || k.se_activation != first.se_activation ||
      k.se_gate != first.se_gate || k.residual != true)
    return false;
  if (k.kind == "inverted_residual") {
    // A whole expansion is relative to each block's input (mid = expansion x in); a stage
    // whose width is no whole multiple gives it as mid_channels, the same for every block.
    if (first.mid % first.in_c == 0 ? k.mid * first.in_c != first.mid * k.in_c : k.mid != first.mid)
      return false;
    return k.se == first.se;
  }
  if (k.kind == "regnety") {
    const double ratio = static_cast<double>(first.se) / static_cast<double>(first.in_c);
    if (std::llround(ratio * static_cast<double>(k.in_c)) != k.se) return false;
  }
  return k.mid == first.mid && k.groups == first.groups;
}

class SpecWriter {
 public:
  SpecWriter(bool v2_spec, std::string source) : v2_spec_(v2_spec), source_(std::move(source)) {}
  std::vector<std::string> v2;  // why the spec needs schema 2
  void need_v2(const std::string& why) {
    if (std::find(v2.begin(), v2.end(), why) == v2.end()) v2.push_back(why);
  }
  bool v2_spec() const { return v2_spec_; }

  ordered layer(const Item& it) {
    const Layer& l = it.l;
    ordered j;
    if (it.kind == ItemKind::se) {
      need_v2("se layer");
      j["type"] = "se";
      j["channels"] = it.se_channels;
      j["activation"] = it.se_activation;
      j["gate"] = it.se_gate;
      return j;
    }
    if (it.kind == ItemKind::activation) {
      if (!fusable(it.l.activation))
        throw Error(
            fmt::format("{}: node '{}' ({}): part of a LayerNorm whose other part is "
                        "missing",
                        source_, l.node, l.op));
      need_v2(fmt::format("unfused {}", it.l.activation));
      j["type"] = "elementwise";
      j["op"] = it.l.activation;
      return j;
    }
    if (it.kind == ItemKind::residual) {
      need_v2("residual add outside a block");
      j["type"] = "add";
      if (!l.activation.empty()) j["activation"] = l.activation;
      return j;
    }
    switch (l.kind) {
      case LayerKind::conv: {
        j["type"] = "conv";
        j["out_channels"] = l.c;
        j["kernel"] = l.kernel;
        j["stride"] = l.stride;
        j["padding"] = l.padding;
        if (l.groups != 1) j["groups"] = l.groups;
        const bool v1_act =
            l.activation.empty() || l.activation == "relu" || l.activation == "relu6";
        if (!v1_act) need_v2(fmt::format("{} activation", l.activation));
        if (!l.norm) need_v2("conv without BatchNorm");
        if (l.bias) need_v2("conv bias");
        if (l.dilation != 1) need_v2("dilation");
        if (l.kernel % 2 == 0) need_v2("even kernel");
        if (v2_spec_) {
          j["activation"] = l.activation.empty() ? "none" : l.activation;
          if (l.bias) j["bias"] = true;
          if (!l.norm) j["norm"] = "none";
          if (l.dilation != 1) j["dilation"] = l.dilation;
        }
        break;
      }
      case LayerKind::fc:
        j["type"] = "fc";
        j["out_channels"] = l.c;
        if (!l.activation.empty()) {
          need_v2(fmt::format("fc with {}", l.activation));
          j["activation"] = l.activation;
        }
        break;
      case LayerKind::pool_max:
      case LayerKind::pool_avg:
        j["type"] = l.kind == LayerKind::pool_max ? "max_pool" : "avg_pool";
        j["kernel"] = l.kernel;
        j["stride"] = l.stride;
        j["padding"] = l.padding;
        break;
      case LayerKind::global_pool:
        j["type"] = "global_avg_pool";
        break;
      case LayerKind::batchnorm:
      case LayerKind::layernorm:
      case LayerKind::activation:
      case LayerKind::scale:
      case LayerKind::bias_add:
        need_v2(fmt::format("unfused {}", l.op));
        j["type"] = "elementwise";
        j["op"] = l.kind == LayerKind::batchnorm    ? "batchnorm"
                  : l.kind == LayerKind::layernorm  ? "layernorm"
                  : l.kind == LayerKind::activation ? l.activation
                                                    : "scale";
        break;
      case LayerKind::concat:
        need_v2("concat");
        j["type"] = "concat";
        j["channels"] = l.c - l.in_c;
        break;
      case LayerKind::upsample:
        need_v2("upsample");
        j["type"] = "upsample";
        j["scale"] = l.scale;
        j["mode"] = l.mode;
        break;
      case LayerKind::add:
      case LayerKind::mul:
      case LayerKind::sub:
      case LayerKind::div:
      case LayerKind::channel_mean:
      case LayerKind::free:
        // Joins are items and free ops fold away; a channel mean outside a LayerNorm has no
        // spec layer.
        throw Error(fmt::format("{}: node '{}' ({}): no spec layer expresses it here", source_,
                                l.node, l.op));
    }
    return j;
  }

  ordered stage(const Block& k, const std::string& name) {
    ordered st;
    st["name"] = name;
    st["block"] = k.kind;
    st["blocks"] = 1;
    st["out_channels"] = k.out_c;
    st["stride"] = k.stride;
    if (k.stride != 1 && k.stride != 2) need_v2("block stride other than 1 or 2");
    if (k.kind == "bottleneck") {
      st["mid_channels"] = k.mid;
      if (k.groups > 1) st["group_width"] = k.mid / k.groups;
    } else if (k.kind == "regnety") {
      if (k.mid != k.out_c) st["mid_channels"] = k.mid;
      st["group_width"] = k.mid / k.groups;
      if (k.se_activation != "relu" || k.se_gate != "sigmoid")
        need_v2("regnety SE with other activations");
      st["se_ratio"] = static_cast<double>(k.se) / static_cast<double>(k.in_c);
    } else if (k.kind == "inverted_residual") {
      if (k.mid % k.in_c == 0) {
        st["expansion"] = k.mid / k.in_c;
      } else {
        // MobileNetV3-Large expands 80 channels to 200 and 184: no whole expansion.
        need_v2("expanded width as mid_channels");
        st["mid_channels"] = k.mid;
      }
      if (k.se > 0) {
        need_v2("SE in an inverted residual");
        st["se_channels"] = k.se;
        st["se_activation"] = k.se_activation;
        st["se_gate"] = k.se_gate;
      }
    } else if (k.kind == "convnext") {
      need_v2("convnext block");
      st["expansion"] = k.mid / k.in_c;
    }
    if (k.kernel != 3) {
      need_v2("kernel other than 3x3 in a block");
      st["kernel"] = k.kernel;
    }
    if (k.dilation != 1) {
      need_v2("dilation in a block");
      st["dilation"] = k.dilation;
    }
    // relu6 inverted residuals cost what relu ones do: schema 1 can say MobileNetV2.
    if (k.activation != "relu" && !(k.activation == "relu6" && k.kind == "inverted_residual"))
      need_v2(fmt::format("{} in a block", k.activation));
    const std::string fallback = k.kind == "convnext" ? "gelu" : "relu";
    if (v2_spec_ && k.activation != fallback) st["activation"] = k.activation;
    return st;
  }

 private:
  bool v2_spec_;
  std::string source_;
};

std::int64_t default_granularity(std::int64_t h, std::int64_t w) {
  const std::int64_t side = std::gcd(h, w);
  for (std::int64_t s = 4; s > 1; --s)
    if (side % s == 0) return s;
  return 1;
}

Imported write_spec(const LayerGraph& g, const std::string& name, const std::vector<Entry>& entries,
                    bool v2_spec) {
  std::size_t first_block = entries.size(), last_block = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].block) {
      first_block = std::min(first_block, i);
      last_block = i;
    }
  }
  Imported out;
  SpecWriter w(v2_spec, g.source);
  ordered spec = input_document("spec", v2_spec ? 2 : 1);
  spec["name"] = name;
  spec["batch"] = g.batch;
  spec["input"] = {{"channels", g.in_c}, {"height", g.in_h}, {"width", g.in_w}};
  spec["precision"] = "fp32";
  ordered stem = ordered::array(), head = ordered::array(), stages = ordered::array();
  std::optional<Block> stage_first;  // first block of the open block stage
  std::vector<std::int64_t> granularity;
  auto add_plain = [&](ordered& list, const Item& it, const std::string& where) {
    if (is_free(it)) {  // a scalar op with nothing before it to fold into: no cost
      for (const auto& n : it.nodes) out.plain.push_back({n.node, n.op_type, "folded (scalar op)"});
      return;
    }
    list.push_back(w.layer(it));
    for (const auto& n : it.nodes) out.plain.push_back({n.node, n.op_type, where});
    out.macs += item_macs(it);
    out.parameters += item_parameters(it);
  };
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (!e.block) {
      if (i < first_block) {
        add_plain(stem, e.plain, "stem");
      } else if (i > last_block) {
        add_plain(head, e.plain, "head");
      } else {
        // Plain layers between blocks: a layer stage (schema 2).
        if (stage_first) {
          ordered st;
          st["name"] = fmt::format("stage{}", stages.size() + 1);
          st["layers"] = ordered::array();
          stages.push_back(st);
          stage_first.reset();
          w.need_v2("layer stage");
        }
        const std::string where =
            fmt::format("{} (layer stage)", stages.back()["name"].get<std::string>());
        add_plain(stages.back()["layers"], e.plain, where);
      }
      continue;
    }
    const Block& k = *e.block;
    out.macs += k.macs;
    out.parameters += k.parameters;
    if (stage_first && same_stage(*stage_first, k)) {
      auto& st = stages.back();
      st["blocks"] = st["blocks"].get<std::int64_t>() + 1;
    } else {
      stages.push_back(w.stage(k, fmt::format("stage{}", stages.size() + 1)));
      stage_first = k;
      granularity.push_back(default_granularity(k.out_h, k.out_w));
    }
    out.blocks.push_back({stages.back()["name"].get<std::string>(), k.kind,
                          k.nodes.empty() ? std::string{} : k.nodes.front().node, describe(k)});
  }
  spec["stem"] = stem;
  spec["stages"] = stages;
  spec["head"] = head;
  if (!granularity.empty())
    spec["dynamic"] = {{"mode", "spatial"}, {"granularity", granularity}, {"density", 0.5}};
  out.schema_version = v2_spec ? 2 : 1;
  out.v2_features = w.v2;
  out.spec_json = spec.dump(2) + "\n";
  for (const auto& f : g.folded) out.plain.push_back(f);
  return out;
}

}  // namespace

Imported recognise(const LayerGraph& g, const std::string& name) {
  Walker walker(g);
  std::vector<Item> items;
  // The walk ends where the graph does; a join reached here has an input from no fork (Add(x,
  // x), or a map that does not come from the image).
  if (const auto stop = walker.walk(g.input, items); stop.join >= 0)
    walker.fail(g.layers.at(static_cast<std::size_t>(stop.join)),
                "its inputs do not come from one fork of the graph");
  fold(items);

  // Blocks: residual items, and inverted-residual runs of plain convs (those with no residual).
  std::vector<Entry> entries;
  for (std::size_t i = 0; i < items.size();) {
    const Item& it = items[i];
    if (it.kind == ItemKind::residual) {
      if (auto k = match_residual(it)) {
        entries.push_back({k, {}});
        ++i;
        continue;
      }
      // Not a block: its body stays plain layers followed by an add, if the shortcut is bare.
      if (!it.skip.empty())
        walker.fail(it.l,
                    "a residual whose shortcut has layers and whose body matches no block "
                    "(docs/import.md lists the block patterns)");
      for (const auto& b : it.body) {
        if (b.kind == ItemKind::residual)
          walker.fail(b.l, "a residual nested inside another one that matches no block");
        entries.push_back({std::nullopt, b});
      }
      Item add = it;
      add.body.clear();
      add.nodes = {{it.l.node, it.l.op, ""}};
      entries.push_back({std::nullopt, add});
      ++i;
      continue;
    }
    std::size_t used = 0;
    if (auto k = match_inverted(items, i, used)) {
      k->residual = false;
      entries.push_back({k, {}});
      i += used;
      continue;
    }
    entries.push_back({std::nullopt, it});
    ++i;
  }
  Imported out = write_spec(g, name, entries, false);
  if (!out.v2_features.empty()) out = write_spec(g, name, entries, true);
  return out;
}

}  // namespace lasnet::importer::detail
