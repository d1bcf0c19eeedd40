// Schema 2 of the model spec (examples/README.md): parsing, validation with JSON paths, geometry
// and round-tripping of activations, kernels and dilation, layer stages, the new layer types,
// SE in inverted residuals, convnext blocks and a granularity that does not divide its map.
#include <doctest/doctest.h>

#include <string>

#include "fixtures.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/predictor/network.hpp"
#include "lasnet/predictor/spec.hpp"

namespace lp = lasnet::predictor;

namespace {

// 3x16x12 (non-square) -> stem conv s2 -> 8x6x6 ... every schema-2 feature at least once.
const char* v2 = R"({
  "schema_version": 2,
  "name": "v2", "batch": 1, "input": {"channels": 3, "height": 12, "width": 16},
  "stem": [{"type": "conv", "out_channels": 8, "kernel": 3, "stride": 2, "activation": "silu",
            "bias": true, "norm": "none"},
           {"type": "elementwise", "op": "hardswish"}],
  "stages": [
    {"name": "s1", "block": "inverted_residual", "blocks": 2, "expansion": 4, "out_channels": 8,
     "kernel": 5, "activation": "relu6", "se_channels": 8, "se_activation": "silu",
     "se_gate": "hardsigmoid"},
    {"name": "down", "layers": [{"type": "conv", "out_channels": 16, "kernel": 2, "stride": 2,
                                  "padding": 0, "norm": "none", "bias": true},
                                 {"type": "elementwise", "op": "layernorm"}]},
    {"name": "s2", "block": "convnext", "blocks": 1, "out_channels": 16},
    {"name": "s3", "block": "basic", "blocks": 1, "out_channels": 16, "dilation": 2},
    {"name": "neck", "layers": [{"type": "upsample", "scale": 2, "mode": "bilinear"},
                                 {"type": "concat", "channels": 8},
                                 {"type": "add", "activation": "relu"},
                                 {"type": "se", "channels": 4, "gate": "hardsigmoid"},
                                 {"type": "conv", "out_channels": 8, "kernel": 3,
                                  "dilation": 2}]}
  ],
  "head": [{"type": "global_avg_pool"}, {"type": "fc", "out_channels": 10,
                                          "activation": "sigmoid"}],
  "dynamic": {"mode": "spatial", "granularity": "4-3-2", "density": 0.5}
})";

std::string with(const std::string& from, const std::string& to) {
  std::string text = v2;
  const auto pos = text.find(from);
  REQUIRE(pos != std::string::npos);
  return text.substr(0, pos) + to + text.substr(pos + from.size());
}

}  // namespace

TEST_CASE("a schema-2 spec parses: layer stages apart, geometry through them") {
  const lp::Spec s = lp::parse_spec(v2, "v2.json");
  CHECK(s.schema_version == 2);
  REQUIRE(s.stages.size() == 3);  // block stages only
  REQUIRE(s.layer_stages.size() == 2);
  CHECK(s.layer_stages[0].name == "down");
  CHECK(s.layer_stages[0].before == 1);  // runs before block stage 1 (s2)
  CHECK(s.layer_stages[1].before == 3);  // after the last block stage
  CHECK(s.stem[0].activation == lp::Activation::silu);
  CHECK(s.stem[0].bias);
  CHECK_FALSE(s.stem[0].batchnorm);
  CHECK(s.stages[0].kernel == 5);
  CHECK(s.stages[0].se_gate == lp::Gate::hardsigmoid);
  CHECK(s.stages[1].kernel == 7);                         // convnext default
  CHECK(s.stages[1].activation == lp::Activation::gelu);  // convnext default
  CHECK(s.stages[1].expansion == 4);
  CHECK(s.stages[2].dilation == 2);
  CHECK(s.dynamic.granularity == std::vector<std::int64_t>{4, 3, 2});  // one per block stage
  // 12x16 -> stem s2 -> 6x8 (s1) -> 2x2/s2 -> 3x4 (s2, s3) -> x2 -> 6x8, 16 + 8 channels, a
  // dilated 3x3 (padding 2 by default) to 8.
  const auto g = lp::stage_geometry(s);
  CHECK(g[0].out_height == 6);
  CHECK(g[0].out_width == 8);
  CHECK(g[1].in_channels == 16);
  CHECK(g[1].in_height == 3);
  CHECK(g[1].in_width == 4);
  CHECK(g[2].out_height == 3);
  const auto in = lp::layer_stage_inputs(s);
  CHECK(in[1].channels == 16);
  const auto head = lp::head_input(s);
  CHECK(head.channels == 8);
  CHECK(head.height == 6);
  CHECK(head.width == 8);
}

TEST_CASE("schema 2 round-trips; schema 1 specs write version 1") {
  const lp::Spec s = lp::parse_spec(v2, "v2.json");
  const auto text = lp::spec_to_json(s);
  CHECK(text.starts_with("{\n  \"schema\": \"lasnet.spec\",\n  \"version\": 2,"));
  const lp::Spec t = lp::parse_spec(text, "round.json");
  CHECK(lp::spec_to_json(t) == text);
  CHECK(t.layer_stages.size() == 2);
  CHECK(t.stages[0].se_activation == lp::Activation::silu);
  const auto v1 = lp::spec_to_json(lasnet::test::example("resnet50"));
  CHECK(v1.starts_with("{\n  \"schema\": \"lasnet.spec\",\n  \"version\": 1,"));
  CHECK(v1.find("schema_version") == std::string::npos);
  // A schema-1 spec that only dilates a conv becomes schema 2 when written.
  lp::Spec r = lasnet::test::example("resnet50");
  r.stages[3].dilation = 2;
  CHECK(lp::spec_to_json(r).find("\"version\": 2,") != std::string::npos);
}

TEST_CASE("schema-2 errors name the JSON path") {
  const std::pair<std::string, std::string> cases[] = {
      {with("\"schema_version\": 2", "\"schema_version\": 3"),
       "t.json: schema_version: 3 is not a version this tool reads (1 or 2)"},
      // The common label (docs/outputs.md) in place of schema_version.
      {with("\"schema_version\": 2", "\"schema\": \"lasnet.spec\", \"version\": 3"),
       "t.json: version: lasnet.spec 3 is not a version this tool reads (1 to 2)"},
      {with("\"schema_version\": 2", "\"schema\": \"lasnet.plan\", \"version\": 2"),
       "t.json: schema: expected \"lasnet.spec\""},
      {with("\"activation\": \"silu\"", "\"activation\": \"swish\""),
       "t.json: stem[0].activation: 'swish' is not one of relu, relu6, silu, hardswish, sigmoid, "
       "gelu, none"},
      {with("\"op\": \"hardswish\"", "\"op\": \"softmax\""),
       "t.json: stem[1].op: 'softmax' is not one of relu, relu6, silu, hardswish, sigmoid, gelu, "
       "none, layernorm, batchnorm, scale"},
      {with("\"norm\": \"none\",", "\"norm\": \"groupnorm\","),
       "t.json: stages[1].layers[0].norm: 'groupnorm' is not one of batchnorm, none"},
      {with("\"kernel\": 5", "\"kernel\": 4"),
       "t.json: stages[0].kernel: must be odd (the block's conv keeps its map), got 4"},
      {with("\"se_gate\": \"hardsigmoid\"", "\"se_gate\": \"tanh\""),
       "t.json: stages[0].se_gate: 'tanh' is not one of sigmoid, hardsigmoid"},
      {with("\"mode\": \"bilinear\"", "\"mode\": \"cubic\""),
       "t.json: stages[4].layers[0].mode: 'cubic' is not one of nearest, bilinear"},
      {with("{\"type\": \"upsample\"", "{\"type\": \"pixelshuffle\""),
       "t.json: stages[4].layers[0].type: 'pixelshuffle' is not one of conv, max_pool, avg_pool, "
       "global_avg_pool, fc, add, concat, upsample, elementwise, se"},
      {with("\"name\": \"down\", \"layers\"",
            "\"name\": \"down\", \"block\": \"basic\", \"layers\""),
       "t.json: stages[1].block: a stage has either a block or layers, not both"},
      {with("\"name\": \"neck\"", "\"name\": \"down\""),
       "t.json: stages[4].name: another layer stage is named 'down' already"},
      {with("\"name\": \"neck\"", "\"name\": \"s3\""),
       "t.json: stages[4].name: a block stage is named 's3' too"},
      {with("\"blocks\": 1, \"out_channels\": 16}", "\"blocks\": 1, \"out_channels\": 32}"),
       "t.json: stages[2].out_channels: 32 differs from the 16 channels the stage reads"},
      {with("\"block\": \"convnext\", \"blocks\": 1,",
            "\"block\": \"convnext\", \"blocks\": 1, "
            "\"stride\": 2,"),
       "t.json: stages[2].stride: must be 1 for convnext blocks"},
      {with("\"kernel\": 2, \"stride\": 2,", "\"kernel\": 8, \"stride\": 2,"),
       "t.json: stages[1].layers[0]: a 8x8 conv does not fit the 6x8 map"},
      {with("\"out_channels\": 16, \"dilation\": 2}",
            "\"out_channels\": 16, \"dilation\": 2, "
            "\"se_gate\": \"sigmoid\"}"),
       "t.json: stages[3].se_gate: not used by basic blocks"},
      {with("\"se_channels\": 8, ", ""),
       "t.json: stages[0].se_activation: given without se_channels"},
      {with("\"4-3-2\"", "\"4-5-2\""),
       "t.json: dynamic.granularity[1]: 5 is larger than the 3x4 map of stage s2"},
      {with("\"layers\": [{\"type\": \"upsample\"",
            "\"layers\": [], \"x\": [{\"type\": \"upsample\""),
       "t.json: stages[4].layers: must list at least one layer"},
  };
  for (const auto& [text, message] : cases) {
    CAPTURE(message);
    CHECK_THROWS_WITH_AS(lp::parse_spec(text, "t.json"), doctest::Contains(message.c_str()),
                         lasnet::Error);
  }
}

TEST_CASE("a spec of layer stages only is refused: the head takes what follows the blocks") {
  const std::string text = R"({"name": "x", "input": {"channels": 3, "height": 8, "width": 8},
    "stages": [{"layers": [{"type": "conv", "out_channels": 4, "kernel": 3}]}]})";
  CHECK_THROWS_WITH_AS(lp::parse_spec(text, "t.json"),
                       doctest::Contains("t.json: stages: must list at least one block stage"),
                       lasnet::Error);
}

TEST_CASE("any S up to the map's longer side is accepted; past it is an error") {
  lp::Spec s = lp::parse_spec(v2, "v2.json");
  // s1's map is 6x8: S = 7 (> 6 rows, <= 8 columns) gives a 1x2 grid of partial patches.
  lp::set_granularity(s, {7, 3, 2}, "--granularity");
  CHECK(s.dynamic.granularity[0] == 7);
  CHECK_THROWS_WITH_AS(lp::set_granularity(s, {9, 3, 2}, "--granularity"),
                       doctest::Contains("--granularity[0]: 9 is larger than the 6x8 map"),
                       lasnet::Error);
  // Candidates: the divisors of both sides, and the longer side (one patch per image).
  CHECK(lp::granularity_candidates(lp::stage_geometry(s)[0]) == std::vector<std::int64_t>{1, 2, 8});
}
