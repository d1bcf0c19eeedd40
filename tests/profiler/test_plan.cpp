#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "lasnet/common/error.hpp"
#include "lasnet/kernels/block.hpp"
#include "lasnet/predictor/sample.hpp"
#include "lasnet/predictor/spec.hpp"
#include "lasnet/profiler/plan.hpp"

using namespace lasnet::profiler;
namespace predictor = lasnet::predictor;

namespace {

predictor::Spec example(const std::string& name) {
  return predictor::load_spec(std::string(LASNET_EXAMPLES_DIR) + "/" + name + ".json");
}

std::size_t count_if_dynamic(const std::vector<PlannedBlock>& plan, bool dynamic) {
  return static_cast<std::size_t>(std::count_if(
      plan.begin(), plan.end(), [&](const PlannedBlock& b) { return b.dynamic == dynamic; }));
}

}  // namespace

TEST_CASE("plan: ResNet-50 at the spec's S, dense and one density") {
  PlanOptions o;
  o.batches = {1};
  o.densities = {0.5};
  o.granularity = GranularityChoice::spec;
  const auto plan = plan_spec(example("resnet50"), o);
  // 3 + 4 + 6 + 3 blocks, once dense and once dynamic.
  REQUIRE(plan.size() == 32);
  CHECK(count_if_dynamic(plan, false) == 16);
  CHECK(count_if_dynamic(plan, true) == 16);
  for (const auto& b : plan) {
    CHECK_MESSAGE(b.runnable, b.reason);
    CHECK(b.batch == 1);
    CHECK(b.spec_granularity);
    CHECK(b.node_steps.size() == b.graph.nodes.size());
  }
  // The spec's S is 4-4-2-1.
  const auto& l3 = *std::find_if(plan.begin(), plan.end(), [](const PlannedBlock& b) {
    return b.dynamic && b.stage_name == "layer3";
  });
  CHECK(l3.granularity == 2);
  CHECK(l3.job.config.dynamic.has_value());
  CHECK(l3.job.config.dynamic->granularity == 2);
  CHECK(l3.job.config.dynamic->density == doctest::Approx(0.5));
  // Repeated blocks share one job: per stage the first block (projection) and one more.
  CHECK(distinct_jobs(plan).size() == 16);
}

TEST_CASE("plan: kernel steps of dense and dynamic bottlenecks") {
  PlanOptions o;
  o.batches = {128};
  o.densities = {0.3};
  o.granularity = GranularityChoice::spec;
  const auto plan = plan_spec(example("resnet50"), o);
  const auto& dense0 = plan.front();  // layer1.0, projection (64 -> 256)
  REQUIRE_FALSE(dense0.dynamic);
  CHECK(dense0.job.config.shape.in_channels == 64);
  CHECK(dense0.job.config.shape.out_channels == 256);
  CHECK(dense0.job.config.shape.mid_channels == 64);
  CHECK(dense0.job.config.shape.batch == 128);
  CHECK(dense0.job.skip_steps.empty());
  for (std::size_t i = 0; i < dense0.graph.nodes.size(); ++i) {
    const auto& name = dense0.graph.nodes[i].name;
    // The kernels fuse the dense residual add into conv3.
    CHECK(dense0.node_steps[i] == (name == "add" ? std::string("conv3") : name));
  }
  const auto dyn =
      std::find_if(plan.begin(), plan.end(), [](const PlannedBlock& b) { return b.dynamic; });
  REQUIRE(dyn != plan.end());
  std::set<std::string> steps(dyn->node_steps.begin(), dyn->node_steps.end());
  CHECK(steps == std::set<std::string>{"masker", "conv1", "conv2", "conv3", "shortcut"});
  CHECK(dyn->job.config.dynamic->fusion.gather_conv1);
  CHECK(dyn->job.config.dynamic->fusion.conv3_scatter_add);
  CHECK(dyn->job.key.find("S4 d0.3") != std::string::npos);
}

TEST_CASE("plan: every S a stage allows, the spec's own marked") {
  PlanOptions o;
  o.batches = {1};
  o.densities = {0.5};
  o.dense = false;
  const auto plan = plan_spec(example("resnet50"), o);
  std::set<std::int64_t> layer4;
  for (const auto& b : plan) {
    CHECK(b.dynamic);
    if (b.stage_name == "layer4") {
      layer4.insert(b.granularity);
      CHECK(b.spec_granularity == (b.granularity == 1));
    }
  }
  CHECK(layer4 == std::set<std::int64_t>{1, 7});  // 7x7 map
}

TEST_CASE(
    "plan: RegNetY's SE has no kernel; MobileNetV2 blocks without a residual skip the shortcut") {
  PlanOptions o;
  o.batches = {1};
  o.densities = {0.5};
  o.granularity = GranularityChoice::spec;
  const auto regnet = plan_spec(example("regnety_400mf"), o);
  for (const auto& b : regnet) {
    REQUIRE_MESSAGE(b.runnable, b.reason);
    CHECK(b.job.config.shape.groups > 1);
    for (std::size_t i = 0; i < b.graph.nodes.size(); ++i) {
      if (b.graph.nodes[i].name == "se") CHECK(b.node_steps[i].empty());
    }
  }
  const auto mobile = plan_spec(example("mobilenetv2"), o);
  bool saw_separable = false, saw_skip = false;
  for (const auto& b : mobile) {
    REQUIRE_MESSAGE(b.runnable, b.reason);
    const auto& shape = b.job.config.shape;
    CHECK(shape.groups == shape.mid_channels);  // depthwise
    if (b.stage_name == "b1") {
      // Expansion 1: no expand conv, so the kernels' separable block (conv2 reads x).
      saw_separable = true;
      CHECK(shape.kind == lasnet::kernels::BlockKind::separable);
      CHECK(shape.mid_channels == shape.in_channels);
      CHECK(b.node_steps == std::vector<std::string>{"conv2", "conv3"});
    } else {
      CHECK(shape.kind == lasnet::kernels::BlockKind::bottleneck);
    }
    if (!b.job.skip_steps.empty()) {
      saw_skip = true;
      CHECK(b.job.skip_steps == std::vector<std::string>{"shortcut"});
      CHECK_FALSE(b.graph.dynamic);  // no residual: stays dense in a dynamic configuration
      CHECK(b.job.key.ends_with(" -shortcut"));
    }
  }
  CHECK(saw_separable);
  CHECK(saw_skip);
}

TEST_CASE("plan: a separable block with a residual runs dynamic, without the conv1 fusions") {
  auto spec = example("mobilenetv2");
  spec.stages.front().out_channels = 32;  // b1 keeps its 32 channels: an identity shortcut
  PlanOptions o;
  o.batches = {2};
  o.densities = {0.5};
  o.granularity = GranularityChoice::spec;
  for (const bool masker : {false, true}) {
    // The masker fusion needs a conv1: the graph ignores it, and so do the kernels.
    predictor::Fusion fusion;
    fusion.masker_conv1 = masker;
    o.fusions = {fusion};
    bool saw_dynamic = false;
    for (const auto& b : plan_spec(spec, o)) {
      if (b.stage_name != "b1") continue;
      REQUIRE_MESSAGE(b.runnable, b.reason);
      const auto& shape = b.job.config.shape;
      CHECK(shape.kind == lasnet::kernels::BlockKind::separable);
      CHECK(to_string(shape) == "n2 112x112 32-32-32 s1 g32 separable");  // dense or dynamic
      CHECK(b.job.skip_steps.empty());
      if (!b.graph.dynamic) continue;
      saw_dynamic = true;
      const auto& d = *b.job.config.dynamic;
      CHECK_FALSE(d.fusion.masker_conv1);
      CHECK(d.in_place_residual);
      CHECK(lasnet::kernels::check_supported(b.job.config).ok);
      CHECK(std::find(b.node_steps.begin(), b.node_steps.end(), "conv1") == b.node_steps.end());
      CHECK(std::find(b.node_steps.begin(), b.node_steps.end(), "masker") != b.node_steps.end());
      CHECK(std::find(b.node_steps.begin(), b.node_steps.end(), "conv2") != b.node_steps.end());
    }
    CHECK(saw_dynamic);
  }
}

TEST_CASE("plan: the spec's own densities when none are given") {
  PlanOptions o;
  o.granularity = GranularityChoice::spec;
  o.dense = false;
  const auto plan = plan_spec(example("resnet50"), o);
  REQUIRE(plan.size() == 16);
  for (const auto& b : plan) {
    CHECK(b.density_label == "spec");
    CHECK(b.density == doctest::Approx(0.5));
    CHECK(b.batch == 128);  // the spec's batch
  }
}

TEST_CASE("plan: number lists") {
  CHECK(parse_number_list("0.3,0.5,0.8", "--density") == std::vector<double>{0.3, 0.5, 0.8});
  CHECK(parse_int_list("1,128", "--batch") == std::vector<std::int64_t>{1, 128});
  CHECK_THROWS_AS(parse_number_list("0.3,,0.5", "--density"), lasnet::Error);
  CHECK_THROWS_AS(parse_number_list("abc", "--density"), lasnet::Error);
  CHECK_THROWS_AS(parse_int_list("1,2.5", "--batch"), lasnet::Error);
  CHECK_THROWS_AS(parse_int_list("0", "--batch"), lasnet::Error);
  try {
    parse_int_list("x", "--batch");
    FAIL("no throw");
  } catch (const lasnet::Error& e) {
    CHECK(std::string(e.what()).find("--batch") != std::string::npos);
  }
}

TEST_CASE("plan: every fusion form is a configuration of its own") {
  const auto forms = every_fusion();
  REQUIRE(forms.size() == 8);
  std::set<std::string> names;
  for (const auto& f : forms) names.insert(predictor::to_string(f));
  CHECK(names.size() == 8);
  PlanOptions o;
  o.batches = {1};
  o.densities = {0.5};
  o.granularity = GranularityChoice::spec;
  o.fusions = forms;
  const auto plan = plan_spec(example("resnet50"), o);
  // 16 dense blocks, and 16 dynamic ones per form.
  REQUIRE(plan.size() == 16 + 8 * 16);
  std::set<std::string> labels;
  for (const auto& b : plan) {
    CHECK_MESSAGE(b.runnable, b.reason);
    if (b.dynamic) labels.insert(b.density_label);
  }
  CHECK(labels.size() == 8);
  CHECK(labels.contains("0.5 masker,gather,scatter"));
  CHECK(labels.contains("0.5 none"));
  // Each form runs its own kernels: per form the 16 jobs of the single-form plan.
  CHECK(distinct_jobs(plan).size() == 8 + 8 * 8);
  // One form keeps today's labels.
  o.fusions = {predictor::Fusion{}};
  for (const auto& b : plan_spec(example("resnet50"), o)) {
    if (b.dynamic) CHECK(b.density_label == "0.5");
  }
}

TEST_CASE("plan: every draw of the sampler's runnable space runs on the kernels; others may not") {
  // The sampler restricts its space by plan.cpp's rules (runnable_space()); this checks the two
  // agree on draws no filter has seen.
  const auto runnable = predictor::runnable_space();
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    for (std::int64_t index = 0; index < 6; ++index) {
      const auto spec = predictor::parse_spec(
          predictor::spec_to_json(predictor::draw_spec(seed, index, 0, runnable)), "draw");
      std::string reason;
      CHECK_MESSAGE(runnable_on_kernels(spec, reason), spec.name, ": ", reason);
    }
  }
  // Basic blocks (3x3 -> 3x3) run; a dilated one and channel mode are outside the kernels.
  auto spec = example("resnet50");
  std::string reason;
  CHECK(runnable_on_kernels(spec, reason));
  spec.stages[1].block = predictor::BlockKind::basic;
  spec.stages[1].mid_channels = spec.stages[1].out_channels;
  CHECK_MESSAGE(runnable_on_kernels(spec, reason), reason);
  spec.stages[1].dilation = 2;
  CHECK_FALSE(runnable_on_kernels(spec, reason));
  CHECK(reason.find("layer2.0") == 0);
  spec = example("resnet50");
  predictor::set_mode(spec, predictor::DynamicMode::channel);
  CHECK_FALSE(runnable_on_kernels(spec, reason));
  CHECK(reason.find("spatial") != std::string::npos);
}

TEST_CASE("plan: schema-2 blocks the kernels cannot run are not covered, with the reason") {
  struct Case {
    const char* edit;  // JSON keys added to ResNet-50's layer3
    const char* reason;
  };
  const Case cases[] = {
      {R"("kernel": 5)", "a 5x5 spatial conv (the kernels run 3x3 only)"},
      {R"("dilation": 2)", "dilation 2 (the kernels run dilation 1 only)"},
      {R"("activation": "silu")", "silu activations (the kernels' epilogues apply ReLU)"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.edit);
    predictor::Spec spec = example("resnet50");
    auto text = predictor::spec_to_json(spec);
    const std::string anchor = "\"name\": \"layer3\",";
    const auto at = text.find(anchor);
    REQUIRE(at != std::string::npos);
    text = text.substr(0, at + anchor.size()) + c.edit + "," + text.substr(at + anchor.size());
    PlanOptions o;
    o.batches = {1};
    o.densities = {0.5};
    const auto plan = plan_spec(predictor::parse_spec(text, "edited.json"), o);
    for (const auto& b : plan) {
      CAPTURE(b.stage_name);
      if (b.stage_name == "layer3") {
        CHECK_FALSE(b.runnable);
        CHECK(b.reason == c.reason);
      } else {
        CHECK(b.runnable);
      }
    }
  }
  // SE in an inverted residual, and convnext blocks.
  const auto ir = predictor::parse_spec(
      R"({"name": "t", "batch": 1, "input": {"channels": 16, "height": 8, "width": 8},
          "stages": [{"block": "inverted_residual", "blocks": 1, "expansion": 4,
                      "out_channels": 16, "se_channels": 4},
                     {"block": "convnext", "blocks": 1, "out_channels": 16}]})",
      "t.json");
  PlanOptions o;
  o.densities = {};
  const auto plan = plan_spec(ir, o);
  REQUIRE(plan.size() == 2);
  CHECK_FALSE(plan[0].runnable);
  CHECK(plan[0].reason == "SE in an inverted residual is not run by the kernels");
  CHECK_FALSE(plan[1].runnable);
  CHECK(plan[1].reason == "convnext blocks are not run by the kernels");
}

TEST_CASE(
    "plan: --masks clustered|varied run a generated mask, keyed apart; uniform keeps today's") {
  PlanOptions o;
  o.batches = {4};
  o.densities = {0.3};
  o.granularity = GranularityChoice::spec;
  o.dense = false;
  const auto spec = example("resnet50");
  const auto today = plan_spec(spec, o);
  o.masks = lasnet::MaskModel::uniform;
  const auto uniform = plan_spec(spec, o);
  o.masks = lasnet::MaskModel::clustered;
  const auto clustered = plan_spec(spec, o);
  o.masks = lasnet::MaskModel::varied;
  const auto varied = plan_spec(spec, o);
  REQUIRE(today.size() == clustered.size());
  for (std::size_t i = 0; i < today.size(); ++i) {
    CAPTURE(today[i].job.key);
    // Uniform: the masker's own logits, as without --masks (same key, no explicit mask).
    CHECK(uniform[i].job.key == today[i].job.key);
    CHECK(today[i].job.masks == "uniform");
    CHECK(uniform[i].job.config.dynamic->mask.empty());
    CHECK(clustered[i].job.key == today[i].job.key + " mask:clustered");
    CHECK(varied[i].job.key == today[i].job.key + " mask:varied");
    CHECK(clustered[i].job.masks == "clustered");
    const auto& d = *clustered[i].job.config.dynamic;
    const auto grid = lasnet::kernels::patch_grid(clustered[i].job.config.shape, d.granularity);
    const auto n = 4 * grid.per_image;
    REQUIRE(static_cast<std::int64_t>(d.mask.size()) == n);
    // Exactly ceil(0.3 n) active, and the predictor's graph prices that count.
    const auto active = std::count(d.mask.begin(), d.mask.end(), std::uint8_t{1});
    CHECK(active == lasnet::active_patches(0.3, n));
    for (const auto& node : clustered[i].graph.nodes) {
      if (node.op.is_dynamic() && node.op.kind != predictor::OpKind::masker) {
        CHECK(node.op.active_patches == active);
      }
    }
    // Varied: the graph prices the varied mask's own count, whatever the Beta draws gave.
    const auto& vm = varied[i].job.config.dynamic->mask;
    const auto varied_active = std::count(vm.begin(), vm.end(), std::uint8_t{1});
    for (const auto& node : varied[i].graph.nodes) {
      if (node.op.is_dynamic() && node.op.kind != predictor::OpKind::masker) {
        CHECK(node.op.active_patches == varied_active);
      }
    }
  }
  // A configuration always gets the same mask (seeded by its key), whatever else is planned.
  o.masks = lasnet::MaskModel::clustered;
  o.densities = {0.8, 0.3};
  const auto again = plan_spec(spec, o);
  const auto same = std::find_if(again.begin(), again.end(), [&](const PlannedBlock& b) {
    return b.job.key == clustered.front().job.key;
  });
  REQUIRE(same != again.end());
  CHECK(same->job.config.dynamic->mask == clustered.front().job.config.dynamic->mask);
}

TEST_CASE("plan: basic blocks (ResNet-18/34) map onto the kernels' basic block") {
  // Two stages of ResNet-18 at 32x32 (stem-less): 64 -> 64 identity blocks, then 64 -> 128
  // stride 2 (a projection shortcut) and 128 -> 128.
  const auto spec = predictor::parse_spec(
      R"({"name": "r18", "batch": 2, "input": {"channels": 64, "height": 32, "width": 32},
          "stages": [{"name": "layer1", "block": "basic", "blocks": 2, "out_channels": 64},
                     {"name": "layer2", "block": "basic", "blocks": 2, "out_channels": 128,
                      "stride": 2}],
          "dynamic": {"granularity": "4-2", "density": 0.5}})",
      "r18.json");
  PlanOptions o;
  o.granularity = GranularityChoice::spec;
  const auto plan = plan_spec(spec, o);
  REQUIRE(plan.size() == 8);  // 4 blocks, dense and dynamic
  for (const auto& b : plan) {
    CAPTURE(b.stage_name);
    CAPTURE(b.index);
    REQUIRE_MESSAGE(b.runnable, b.reason);
    const auto& c = b.job.config;
    CHECK(c.shape.kind == lasnet::kernels::BlockKind::basic);
    CHECK(c.shape.groups == 1);
    CHECK(c.shape.mid_channels == c.shape.out_channels);
    for (std::size_t i = 0; i < b.graph.nodes.size(); ++i) {
      const auto& name = b.graph.nodes[i].name;
      CAPTURE(name);
      // Every node the predictor prices is a step the runner times: the dense add is conv2's
      // epilogue; the dynamic graph's names are the runner's own.
      CHECK(b.node_steps[i] == (!b.dynamic && name == "add" ? std::string("conv2") : name));
    }
  }
  const auto& l2 = plan[2];  // dense layer2.0: 32x32x64 -> 16x16x128
  CHECK_FALSE(l2.dynamic);
  CHECK(l2.job.key == "n2 32x32 64-128-128 s2 g1 basic fp32 dense");
  const auto& d1 = plan[5];  // dynamic layer1.1, identity: in place
  REQUIRE(d1.dynamic);
  CHECK(d1.job.key == "n2 32x32 64-64-64 s1 g1 basic fp32 S4 d0.5 gather+scatter in-place");
  std::set<std::string> steps(d1.node_steps.begin(), d1.node_steps.end());
  CHECK(steps == std::set<std::string>{"masker", "conv1", "conv2"});
  const auto& d2 = plan[6];  // dynamic layer2.0 at S = 2
  CHECK(d2.job.config.shape.stride == 2);
  CHECK(d2.job.config.dynamic->granularity == 2);
  CHECK_FALSE(d2.job.config.dynamic->in_place_residual);
  steps = std::set<std::string>(d2.node_steps.begin(), d2.node_steps.end());
  CHECK(steps == std::set<std::string>{"masker", "conv1", "conv2", "shortcut"});
  // Every unfused form maps too; the masker cannot fuse into a 3x3 conv1 (not covered, with
  // the reason).
  o.fusions = every_fusion();
  for (const auto& b : plan_spec(spec, o)) {
    if (!b.dynamic) continue;
    const auto& f = b.job.config.dynamic;
    if (b.runnable) {
      CHECK_FALSE(f->fusion.masker_conv1);
      continue;
    }
    CHECK(b.reason == "a basic block's conv1 is 3x3: the masker does not fuse into it");
  }
  std::string reason;
  CHECK(runnable_on_kernels(spec, reason));
}

TEST_CASE("plan: RegNetY's SE runs on the kernels with PlanOptions::se, keyed apart") {
  PlanOptions o;
  o.batches = {1};
  o.densities = {0.5};
  o.granularity = GranularityChoice::spec;
  const auto spec = example("regnety_400mf");
  const auto plain = plan_spec(spec, o);
  o.se = true;
  const auto with_se = plan_spec(spec, o);
  REQUIRE(plain.size() == with_se.size());
  for (std::size_t i = 0; i < plain.size(); ++i) {
    const auto& a = plain[i];
    const auto& b = with_se[i];
    CAPTURE(b.graph.name);
    REQUIRE(a.runnable);
    REQUIRE_MESSAGE(b.runnable, b.reason);
    // Without --se: the bottleneck as before (same keys as recorded measurements), SE uncovered.
    CHECK(a.job.config.shape.se_channels == 0);
    CHECK(a.job.key.find(" se") == std::string::npos);
    const auto se_node = std::find_if(b.graph.nodes.begin(), b.graph.nodes.end(),
                                      [](const auto& n) { return n.name == "se"; });
    REQUIRE(se_node != b.graph.nodes.end());
    const auto at = static_cast<std::size_t>(se_node - b.graph.nodes.begin());
    CHECK(a.node_steps[at].empty());
    // With it: the squeezed width of the graph's SE op, step "se", the key marked.
    CHECK(b.node_steps[at] == "se");
    CHECK(b.job.config.shape.se_channels == se_node->op.out_channels);
    CHECK(b.job.config.shape.se_channels > 0);
    auto shape = b.job.config.shape;
    shape.se_channels = 0;
    CHECK(shape == a.job.config.shape);
    const auto mark = " g" + std::to_string(shape.groups) + " se" +
                      std::to_string(b.job.config.shape.se_channels) + " ";
    CHECK(b.job.key.find(mark) != std::string::npos);
  }
}

TEST_CASE("plan: the union form maps onto the kernels' union form, its steps by name") {
  PlanOptions o;
  o.batches = {2};
  o.densities = {0.5};
  o.granularity = GranularityChoice::spec;
  o.dense = false;
  o.fusions = {predictor::parse_fusion("union,gather,scatter", "test")};
  const auto plan = plan_spec(example("resnet50"), o);
  REQUIRE(plan.size() == 16);
  for (const auto& b : plan) {
    CAPTURE(b.stage_name);
    CAPTURE(b.index);
    REQUIRE_MESSAGE(b.runnable, b.reason);
    const auto& d = *b.job.config.dynamic;
    CHECK(d.fusion.union_conv1);
    CHECK_FALSE(d.fusion.masker_conv1);
    CHECK(d.fusion.gather_conv1);
    CHECK(d.fusion.conv3_scatter_add);
    CHECK(b.job.key.find("union+gather+scatter") != std::string::npos);
    // Every node is the runner's step of the same name: masker, dilate, conv1 (on the needed
    // pixels), conv2 (from conv1's map), conv3 (+ the shortcut of the first block).
    for (std::size_t i = 0; i < b.graph.nodes.size(); ++i) {
      CHECK(b.node_steps[i] == b.graph.nodes[i].name);
    }
    std::set<std::string> steps(b.node_steps.begin(), b.node_steps.end());
    std::set<std::string> expected{"masker", "dilate", "conv1", "conv2", "conv3"};
    if (b.index == 0) expected.insert("shortcut");
    CHECK(steps == expected);
  }
  // Unfused: conv1's map is gathered for conv2, conv3's output scatter-added.
  o.fusions = {predictor::parse_fusion("union", "test")};
  const auto unfused = plan_spec(example("resnet50"), o);
  REQUIRE(unfused.front().runnable);
  std::set<std::string> steps(unfused.front().node_steps.begin(), unfused.front().node_steps.end());
  CHECK(steps == std::set<std::string>{"masker", "dilate", "conv1", "gather", "conv2", "conv3",
                                       "shortcut", "scatter_add"});

  // A basic block ignores the flag: the plain job, with the same key as without it.
  const auto r18 = predictor::parse_spec(
      R"({"name": "r18", "batch": 2, "input": {"channels": 64, "height": 16, "width": 16},
          "stages": [{"name": "layer1", "block": "basic", "blocks": 1, "out_channels": 64}],
          "dynamic": {"granularity": [2], "density": 0.5}})",
      "r18.json");
  o.fusions = {predictor::parse_fusion("union,gather,scatter", "test")};
  const auto with_flag = plan_spec(r18, o);
  o.fusions = {predictor::parse_fusion("gather,scatter", "test")};
  const auto without = plan_spec(r18, o);
  REQUIRE(with_flag.size() == 1);
  REQUIRE(with_flag.front().runnable);
  CHECK_FALSE(with_flag.front().job.config.dynamic->fusion.union_conv1);
  CHECK(with_flag.front().job.key == without.front().job.key);
}

TEST_CASE("plan: --fusion forms joined by '/', each = the eight non-union forms") {
  CHECK(parse_fusion_forms("gather,scatter", "--fusion") ==
        std::vector<predictor::Fusion>{predictor::Fusion{}});
  const auto each = parse_fusion_forms("each", "--fusion");
  CHECK(each == every_fusion());
  for (const auto& f : each) CHECK_FALSE(f.union_conv1);
  // The union form added to them; a repeated form counts once.
  const auto both = parse_fusion_forms("each/union,gather,scatter/gather,scatter", "--fusion");
  REQUIRE(both.size() == 9);
  CHECK(both.back() == predictor::Fusion{false, true, true, true});
  CHECK(parse_fusion_forms("union/union,gather", "--fusion").size() == 2);
  for (const char* bad : {"each/", "/union", "union,masker", "each/fast"}) {
    CAPTURE(std::string(bad));
    CHECK_THROWS_WITH_AS(parse_fusion_forms(bad, "--fusion"), doctest::Contains("--fusion: '"),
                         lasnet::Error);
  }
}

TEST_CASE("plan: validate --network runs each listed form whole, the spec's own for 'each'") {
  CHECK(network_fusions("each", "--fusion") ==
        std::vector<std::optional<predictor::Fusion>>{std::nullopt});
  // Two forms joined by '/' are two networks (they were read as one form and refused).
  const auto two = network_fusions("masker,gather,scatter/gather,scatter", "--fusion");
  REQUIRE(two.size() == 2);
  CHECK(two[0] == predictor::Fusion{true, true, true});
  CHECK(two[1] == predictor::Fusion{false, true, true});
  CHECK(network_fusions("each/union,gather,scatter", "--fusion").size() == 9);
  CHECK_THROWS_WITH_AS(network_fusions("gather/fast", "--fusion"),
                       doctest::Contains("--fusion: 'fast'"), lasnet::Error);
}

TEST_CASE("plan: the predictor's fp16 fusions are the ones the kernels run") {
  namespace lp = lasnet::predictor;
  namespace lk = lasnet::kernels;
  for (int bits = 0; bits < 16; ++bits) {
    const lp::Fusion pf{(bits & 1) != 0, (bits & 2) != 0, (bits & 4) != 0, (bits & 8) != 0};
    lk::Fusion kf;
    kf.masker_conv1 = pf.masker_conv1, kf.gather_conv1 = pf.gather_conv1;
    kf.conv3_scatter_add = pf.conv3_scatter_add, kf.union_conv1 = pf.union_conv1;
    for (const auto& [p, k] : {std::pair{lp::Precision::fp32, lk::Precision::fp32},
                               std::pair{lp::Precision::tf32, lk::Precision::tf32},
                               std::pair{lp::Precision::fp16, lk::Precision::fp16}}) {
      CAPTURE(lp::to_string(pf));
      CAPTURE(lp::to_string(p));
      // The plan runs masker_conv1 as the fused implicit-GEMM form (library_conv1 false).
      CHECK(lp::fusion_available(p, pf) == lk::fusion_supported(k, kf, false));
    }
  }
  CHECK(lp::fusion_available(lp::Precision::fp16, lp::Fusion{false, false, false, true}));
  CHECK(lp::fusion_available(lp::Precision::fp16, lp::Fusion{}));  // gather + scatter
  CHECK_FALSE(lp::fusion_available(lp::Precision::fp16, lp::Fusion{true, true, true, false}));
}
