#include <doctest/doctest.h>

#include <string>

#include "fixtures.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/predictor/spec.hpp"

using lasnet::predictor::parse_spec;
using lasnet::predictor::Spec;

namespace {

// A small two-stage ResNet-like spec: 32x32 input, stem stride 2 -> 16x16, stage 2 -> 8x8.
const char* valid = R"({
  "name": "tiny", "batch": 2, "input": {"channels": 3, "height": 32, "width": 32},
  "stem": [{"type": "conv", "out_channels": 16, "kernel": 3, "stride": 2}],
  "stages": [
    {"name": "s1", "block": "bottleneck", "blocks": 2, "mid_channels": 8, "out_channels": 32},
    {"name": "s2", "block": "bottleneck", "blocks": 1, "mid_channels": 16, "out_channels": 64,
     "stride": 2}
  ],
  "head": [{"type": "global_avg_pool"}, {"type": "fc", "out_channels": 10}],
  "dynamic": {"mode": "spatial", "granularity": "4-2", "density": 0.5}
})";

std::string with(const std::string& from, const std::string& to) {
  std::string text = valid;
  const auto pos = text.find(from);
  REQUIRE(pos != std::string::npos);
  // Concatenation, not std::string::replace: GCC 12 warns falsely (-Wrestrict) on the latter.
  return text.substr(0, pos) + to + text.substr(pos + from.size());
}

}  // namespace

TEST_CASE("a valid spec parses, with derived stage geometry") {
  const Spec s = parse_spec(valid, "tiny.json");
  CHECK(s.batch == 2);
  REQUIRE(s.stages.size() == 2);
  CHECK(s.stages[1].stride == 2);
  CHECK(s.stem[0].padding == 1);  // default (kernel - 1) / 2
  const auto g = lasnet::predictor::stage_geometry(s);
  CHECK(g[0].in_height == 16);
  CHECK(g[0].out_height == 16);
  CHECK(g[1].in_channels == 32);
  CHECK(g[1].out_height == 8);
  CHECK(s.dynamic.enabled);
  CHECK(s.dynamic.granularity == std::vector<std::int64_t>{4, 2});
  REQUIRE(s.dynamic.density.size() == 2);
  CHECK(s.dynamic.density[0] == std::vector<double>{0.5, 0.5});
  CHECK(lasnet::predictor::granularity_candidates(g[1]) == std::vector<std::int64_t>{1, 2, 4, 8});
}

TEST_CASE("specs round-trip through spec_to_json") {
  Spec s = parse_spec(valid, "tiny.json");
  s.dynamic.density[0] = {0.25, 0.75};
  const auto text = lasnet::predictor::spec_to_json(s);
  const Spec t = parse_spec(text, "round.json");
  CHECK(lasnet::predictor::spec_to_json(t) == text);
  CHECK(t.dynamic.density[0] == std::vector<double>{0.25, 0.75});
}

TEST_CASE("granularity and density come as strings, lists and per-block lists") {
  const Spec a = parse_spec(with("\"4-2\"", "[4, 2]"), "a.json");
  CHECK(a.dynamic.granularity == std::vector<std::int64_t>{4, 2});
  const Spec b = parse_spec(with("\"density\": 0.5", "\"density\": [[0.1, 0.2], 0.3]"), "b.json");
  CHECK(b.dynamic.density[0] == std::vector<double>{0.1, 0.2});
  CHECK(b.dynamic.density[1] == std::vector<double>{0.3});
  const Spec c = parse_spec(
      with("\"mode\": \"spatial\", \"granularity\": \"4-2\"", "\"mode\": \"layer\""), "c.json");
  CHECK(c.dynamic.granularity == std::vector<std::int64_t>{16, 8});
  CHECK(lasnet::predictor::parse_granularity("4-4-2-1", "x") ==
        std::vector<std::int64_t>{4, 4, 2, 1});
  CHECK(lasnet::predictor::format_granularity({4, 4, 2, 1}) == "4-4-2-1");
}

TEST_CASE("fusion comes as one string, per stage, or per block, and round-trips") {
  using lasnet::predictor::Fusion;
  const Spec none = parse_spec(valid, "none.json");
  CHECK(none.dynamic.fusion.empty());  // not given: the tool's default applies
  const Spec all =
      parse_spec(with("\"density\": 0.5", "\"density\": 0.5, \"fusion\": \"all\""), "all.json");
  REQUIRE(all.dynamic.fusion.size() == 2);
  CHECK(all.dynamic.fusion[0] == std::vector<Fusion>(2, Fusion{true, true, true}));
  CHECK(all.dynamic.fusion[1] == std::vector<Fusion>(1, Fusion{true, true, true}));
  const Spec mixed =
      parse_spec(with("\"density\": 0.5",
                      "\"density\": 0.5, \"fusion\": [[\"none\", \"masker,scatter\"], \"gather\"]"),
                 "mixed.json");
  CHECK(mixed.dynamic.fusion[0][0] == Fusion{false, false, false});
  CHECK(mixed.dynamic.fusion[0][1] == Fusion{true, false, true});
  CHECK(mixed.dynamic.fusion[1][0] == Fusion{false, true, false});
  const auto text = lasnet::predictor::spec_to_json(mixed);
  CHECK(parse_spec(text, "back.json").dynamic.fusion == mixed.dynamic.fusion);
  CHECK(lasnet::predictor::spec_to_json(parse_spec(text, "back.json")) == text);
}

TEST_CASE("every shipped example parses, with the real stage maps") {
  const auto r101 = lasnet::test::example("resnet101");
  CHECK(r101.stages[2].blocks == 23);
  const auto g = lasnet::predictor::stage_geometry(r101);
  CHECK(g[0].out_height == 56);
  CHECK(g[3].out_height == 7);
  for (const char* name : {"resnet50", "regnety_400mf", "regnety_800mf", "mobilenetv2"}) {
    CAPTURE(name);
    CHECK(lasnet::test::example(name).name == name);
  }
}

TEST_CASE("malformed specs name the file and the JSON path") {
  struct Case {
    std::string text;
    std::string message;
  };
  const Case cases[] = {
      {"not json", "t.json: not valid JSON"},
      {with("\"batch\": 2", "\"batch\": 0"), "t.json: batch: must be positive, got 0"},
      {with("\"height\": 32", "\"height\": -32"),
       "t.json: input.height: must be positive, got -32"},
      {with("\"blocks\": 2", "\"blocks\": \"two\""),
       "t.json: stages[0].blocks: expected an integer, got a string"},
      {with("\"mid_channels\": 8, ", ""), "t.json: stages[0].mid_channels: missing required key"},
      {with("\"out_channels\": 32", "\"out_channels\": 32, \"colour\": 1"),
       "t.json: stages[0].colour: unknown key"},
      {with("\"name\": \"tiny\"", "\"name\": \"tiny\", \"extra\": true"),
       "t.json: extra: unknown key"},
      {with("\"block\": \"bottleneck\"", "\"block\": \"dense\""),
       "t.json: stages[0].block: 'dense' is not one of"},
      {with("\"4-2\"", "\"4-16\""),
       "t.json: dynamic.granularity[1]: 16 is larger than the 8x8 map of stage s2"},
      {with("\"4-2\"", "\"4-2-1\""),
       "t.json: dynamic.granularity: has 3 entries but the spec has 2 stages"},
      {with("\"4-2\"", "\"4-x\""), "t.json: dynamic.granularity: '4-x' is not a granularity list"},
      {with("\"4-2\"", "[4, 0]"), "t.json: dynamic.granularity[1]: must be positive, got 0"},
      {with("\"density\": 0.5", "\"density\": 1.5"),
       "t.json: dynamic.density: 1.5 is outside [0, 1]"},
      {with("\"density\": 0.5", "\"density\": [0.5, -0.1]"),
       "t.json: dynamic.density[1]: -0.1 is outside [0, 1]"},
      {with("\"density\": 0.5", "\"density\": [[0.5], 0.5]"),
       "t.json: dynamic.density[0]: has 1 entries but stage s1 has 2 blocks"},
      {with("\"density\": 0.5", "\"density\": [0.5]"),
       "t.json: dynamic.density: has 1 entries but the spec has 2 stages"},
      {with("\"mode\": \"spatial\"", "\"mode\": \"pixel\""),
       "t.json: dynamic.mode: 'pixel' is not one of spatial, channel, layer"},
      {with("\"mode\": \"spatial\"", "\"mode\": \"channel\""),
       "t.json: dynamic.granularity: not used in channel mode"},
      {with("\"stages\": [", "\"stages\": [], \"x\": ["),
       "t.json: stages: must list at least one stage"},
      {with("\"kernel\": 3, \"stride\": 2", "\"kernel\": 64, \"stride\": 2, \"padding\": 0"),
       "t.json: stem[0]: a 64x64 conv does not fit the 32x32 map"},
      {with("\"density\": 0.5", "\"density\": 0.5, \"fusion\": \"glue\""),
       "t.json: dynamic.fusion: 'glue' is not a fusion"},
      {with("\"density\": 0.5", "\"density\": 0.5, \"fusion\": [\"all\", [\"none\", 3]]"),
       "t.json: dynamic.fusion[1]: has 2 entries but stage s2 has 1 blocks"},
      {with("\"density\": 0.5", "\"density\": 0.5, \"fusion\": [[\"all\", 3], \"none\"]"),
       "t.json: dynamic.fusion[0][1]: expected a string, got an integer (3)"},
      {with("\"density\": 0.5", "\"density\": 0.5, \"fusion\": [\"all\"]"),
       "t.json: dynamic.fusion: has 1 entries but the spec has 2 stages"},
      {with("\"mode\": \"spatial\", \"granularity\": \"4-2\", \"density\": 0.5",
            "\"mode\": \"layer\", \"density\": 0.5, \"fusion\": \"all\""),
       "t.json: dynamic.fusion: not used in layer mode"},
      {with("\"mid_channels\": 16,", "\"mid_channels\": 16, \"expansion\": 6,"),
       "t.json: stages[1].expansion: not used by bottleneck blocks"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.message);
    CHECK_THROWS_WITH_AS(parse_spec(c.text, "t.json"), doctest::Contains(c.message.c_str()),
                         lasnet::Error);
  }
}

TEST_CASE("command-line overrides are validated like the file") {
  Spec s = parse_spec(valid, "tiny.json");
  CHECK_THROWS_WITH_AS(lasnet::predictor::set_granularity(s, {4, 9}, "--granularity"),
                       doctest::Contains("--granularity[1]: 9 is larger than the 8x8 map"),
                       lasnet::Error);
  CHECK_THROWS_WITH_AS(lasnet::predictor::set_density(s, -0.5, "--density"),
                       "--density: -0.5 is outside [0, 1]", lasnet::Error);
  lasnet::predictor::set_granularity(s, {8, 1}, "--granularity");
  CHECK(s.dynamic.granularity == std::vector<std::int64_t>{8, 1});
  lasnet::predictor::set_density(s, 0.25, "--density");
  CHECK(s.dynamic.density[1] == std::vector<double>{0.25});
}
