#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "fixtures.hpp"
#include "lasnet/predictor/model.hpp"
#include "lasnet/predictor/network.hpp"

using namespace lasnet::predictor;

namespace {
Op add_op() {
  Op op;
  op.kind = OpKind::add;
  op.batch = 1;
  op.in_channels = op.out_channels = 8;
  op.in_height = op.in_width = op.out_height = op.out_width = 4;
  return op;
}

// A 1x1 conv over a batch of square maps, and the context that prices it as cuBLASLt's GEMM.
Op pointwise_conv(std::int64_t batch, std::int64_t side, std::int64_t k, std::int64_t n,
                  Precision precision) {
  Op conv;
  conv.kind = OpKind::conv;
  conv.precision = precision;
  conv.batch = batch;
  conv.in_channels = k;
  conv.out_channels = n;
  conv.in_height = conv.in_width = conv.out_height = conv.out_width = side;
  return conv;
}
OpContext library_gemm() {
  GemmTile library;
  library.library = true;
  return OpContext{false, library};
}
}  // namespace

TEST_CASE("one tile of an elementwise add, worked by hand on the toy GPU") {
  // Tile: all 8 channels x 4x4 pixels x 1 image = the whole op in one tile.
  // Input rows: 4 rows of 4 px x 8 ch x 4 B = 128 B each = 4 transactions; two inputs -> 1024 B.
  // Output: 4 rows x 128 B = 512 B. L2 bytes 1536 at 4 GB/s = 384 ns.
  // DRAM: 3 maps x 128 elements x 4 B = 1536 B at 1 GB/s = 1536 ns.
  // Compute: 128 adds on an SM of 64 GFLOP/s with full lanes = 2 ns. Memory-bound: 1536 ns.
  const auto eval = evaluate_tile(add_op(), Tile{8, 4, 4, 1}, lasnet::test::toy_gpu());
  REQUIRE(eval.feasible);
  const auto& p = eval.prediction;
  CHECK(p.tiles == 1);
  CHECK(p.waves == 1);
  CHECK(p.l2_bytes == 1536);
  CHECK(p.l2_s == doctest::Approx(384e-9));
  CHECK(p.dram_bytes == 1536);
  CHECK(p.dram_s == doctest::Approx(1536e-9));
  CHECK(p.compute_s == doctest::Approx(2e-9));
  CHECK(p.latency_s == doctest::Approx(1536e-9));
  CHECK(p.bound == Bound::memory);
  CHECK(p.coalescing_efficiency == doctest::Approx(1.0));
}

TEST_CASE("short rows pay for whole transactions") {
  // Tiles of 1 channel: each pixel's 4-byte slice costs a 32-byte transaction (1/8 useful).
  const auto eval = evaluate_tile(add_op(), Tile{1, 4, 4, 1}, lasnet::test::toy_gpu());
  REQUIRE(eval.feasible);
  CHECK(eval.prediction.tiles == 8);
  CHECK(eval.prediction.coalescing_efficiency == doctest::Approx(0.125));
  CHECK(eval.prediction.l2_bytes == 8 * (2 * 16 * 32 + 16 * 32));
}

TEST_CASE("the sum combination adds memory and compute, and launch cost is charged per kernel") {
  auto hw = lasnet::test::toy_gpu();
  hw.combine = TimeCombine::sum;
  hw.launch_overhead_s = 1e-6;
  const auto p = evaluate_tile(add_op(), Tile{8, 4, 4, 1}, hw).prediction;
  CHECK(p.latency_s == doctest::Approx(1536e-9 + 2e-9 + 1e-6));
  CHECK(p.launch_s == doctest::Approx(1e-6));
}

TEST_CASE("a graph launch saves the measured difference per launch, outside the fitted scale") {
  // The SE op runs 3 kernels. With the class scaled by 4 and launches of 2 us in a stream and
  // 0.5 us in a graph, the graph prices it 3 x 1.5 us = 4.5 us less, not 4 x 4.5 us: the scale
  // was fitted on stream timings, the difference is a measured device time.
  auto hw = lasnet::test::shipped_profile("h100-sxm");
  hw.launch_overhead_s = 2e-6;
  hw.calibration.op_scale["se"] = 4.0;
  Op se;
  se.kind = OpKind::se;
  se.batch = 1;
  se.in_channels = se.out_channels = 64;
  se.in_height = se.in_width = se.out_height = se.out_width = 28;
  const auto stream = predict_op(se, hw);
  CHECK(stream.launch_s == doctest::Approx(6e-6));
  // Without the figure, a graph changes nothing.
  CHECK(predict_op(se, lasnet::predictor::graph_launched(hw)).latency_s ==
        doctest::Approx(stream.latency_s));
  hw.graph_launch_overhead_s = 0.5e-6;
  CHECK(predict_op(se, hw).latency_s == doctest::Approx(stream.latency_s));  // a stream
  const auto graph = predict_op(se, lasnet::predictor::graph_launched(hw));
  CHECK(graph.latency_s == doctest::Approx(stream.latency_s - 4.5e-6));
  CHECK(graph.launch_s == doctest::Approx(1.5e-6));
}

TEST_CASE("infeasible tiles are values with a reason") {
  Op conv;
  conv.kind = OpKind::conv;
  conv.in_channels = conv.out_channels = 256;
  conv.in_height = conv.in_width = conv.out_height = conv.out_width = 56;
  conv.kernel = 3;
  const auto eval = evaluate_tile(conv, Tile{256, 56, 56, 1}, lasnet::test::toy_gpu());
  CHECK_FALSE(eval.feasible);
  CHECK(eval.reason.find("threads per tile exceed 1024") != std::string::npos);
}

TEST_CASE("the searched tile is at least as fast as any candidate we try by hand") {
  const auto hw = lasnet::test::shipped_profile("v100");
  Op conv;
  conv.kind = OpKind::conv;
  conv.batch = 8;
  conv.in_channels = 64;
  conv.out_channels = 128;
  conv.in_height = conv.in_width = conv.out_height = conv.out_width = 28;
  conv.kernel = 3;
  const auto best = predict_op(conv, hw);
  for (const Tile t :
       {Tile{32, 7, 7, 1}, Tile{64, 4, 8, 1}, Tile{128, 8, 8, 1}, Tile{16, 2, 2, 4}}) {
    const auto eval = evaluate_tile(conv, t, hw);
    if (eval.feasible) CHECK(best.latency_s <= eval.prediction.latency_s);
  }
  CHECK(best.flops == doctest::Approx(2.0 * 8 * 28 * 28 * 128 * 64 * 9));
}

TEST_CASE("an input still in L2 is not read from DRAM again") {
  const auto hw = lasnet::test::toy_gpu();
  OpContext in_l2;
  in_l2.input_in_l2 = true;
  const auto cold = evaluate_tile(add_op(), Tile{8, 4, 4, 1}, hw, OpContext{}).prediction;
  const auto warm = evaluate_tile(add_op(), Tile{8, 4, 4, 1}, hw, in_l2).prediction;
  CHECK(warm.dram_bytes == cold.dram_bytes - 16 * 8 * 4);
}

TEST_CASE("an empty dynamic op costs only its launch") {
  auto hw = lasnet::test::toy_gpu();
  hw.launch_overhead_s = 3e-6;
  Op op;
  op.kind = OpKind::gathered_conv;
  op.in_channels = op.out_channels = 16;
  op.in_height = op.in_width = op.out_height = op.out_width = 8;
  op.kernel = 3;
  op.granularity = 2;
  op.active_patches = 0;
  const auto p = predict_op(op, hw);
  CHECK(p.empty);
  CHECK(p.latency_s == doctest::Approx(3e-6));
  CHECK(p.bound == Bound::launch);
}

TEST_CASE("calibration scales compute, bandwidth and per-kind time") {
  auto hw = lasnet::test::toy_gpu();
  const auto base = evaluate_tile(add_op(), Tile{8, 4, 4, 1}, hw).prediction;
  hw.calibration.dram_efficiency = 0.5;
  hw.calibration.op_scale["add"] = 2.0;
  const auto slow = evaluate_tile(add_op(), Tile{8, 4, 4, 1}, hw).prediction;
  CHECK(slow.dram_s == doctest::Approx(2 * base.dram_s));
  CHECK(slow.latency_s == doctest::Approx(4 * base.latency_s));
}

TEST_CASE("a masker whose patch is the whole map still costs time (no tile fits shared memory)") {
  const auto hw = lasnet::test::shipped_profile("h100-sxm");
  auto spec = lasnet::test::example("resnet50");
  spec.batch = 1;
  BlockSettings settings;
  settings.granularity = 56;  // layer1's map: the block runs or not
  settings.density = 0.3;
  const auto block = make_block(spec, 0, 1, Execution::dynamic, settings);
  REQUIRE(block.nodes.front().name == "masker");
  const auto p = predict_op(block.nodes.front().op, hw);
  CHECK(p.latency_s > hw.launch_overhead_s);
  CHECK(p.latency_s < 1e-3);
}

TEST_CASE("the prediction cache returns what predict_op returns, once per distinct op") {
  const auto hw = lasnet::test::shipped_profile("v100");
  PredictionCache cache(hw);
  const auto first = cache.predict(add_op()).latency_s;
  CHECK(cache.predict(add_op()).latency_s == first);
  CHECK(cache.size() == 1);
  CHECK(first == predict_op(add_op(), hw).latency_s);
}

TEST_CASE("more density never predicts less latency (every example, several GPUs)") {
  for (const char* gpu : {"v100", "h100-sxm", "tx2"}) {
    const auto hw = lasnet::test::shipped_profile(gpu);
    for (const char* name : {"resnet50", "regnety_400mf", "mobilenetv2"}) {
      for (const std::int64_t batch : {1, 16}) {
        auto spec = lasnet::test::example(name);
        spec.batch = batch;
        for (const char* fusion : {"none", "gather,scatter", "all"}) {
          PredictionCache cache(hw);
          double previous = 0;
          std::vector<double> previous_ops;
          for (int step = 0; step <= 20; ++step) {
            set_density(spec, step / 20.0, "density");
            const auto n = predict_network(
                build_network(spec, Execution::dynamic, {parse_fusion(fusion, "f")}), spec, hw,
                cache);
            CAPTURE(gpu);
            CAPTURE(name);
            CAPTURE(batch);
            CAPTURE(fusion);
            CAPTURE(step);
            CHECK(n.latency_s >= previous);
            std::vector<double> ops;
            for (const auto& b : n.blocks) {
              for (const auto& o : b.ops) ops.push_back(o.prediction.latency_s);
            }
            if (!previous_ops.empty()) {
              REQUIRE(ops.size() == previous_ops.size());
              for (std::size_t i = 0; i < ops.size(); ++i) CHECK(ops[i] >= previous_ops[i]);
            }
            previous = n.latency_s;
            previous_ops = ops;
          }
        }
      }
    }
  }
}

TEST_CASE("more SMs of the same kind never predict more latency") {
  for (const char* gpu : {"v100", "tx2"}) {
    auto hw = lasnet::test::shipped_profile(gpu);
    for (const char* name : {"resnet50", "regnety_800mf", "mobilenetv2"}) {
      auto spec = lasnet::test::example(name);
      spec.batch = 8;
      double previous_dense = 1e30, previous_dynamic = 1e30;
      for (const std::int64_t scale : {1, 2, 3, 5, 8}) {
        auto bigger = hw;
        bigger.sm_count = hw.sm_count * scale;
        for (auto& [prec, peak] : bigger.peak_flops_per_s) peak = hw.peak_flops_of(prec) * scale;
        PredictionCache cache(bigger);
        const auto dense =
            predict_network(build_network(spec, Execution::dense), spec, bigger, cache);
        const auto dynamic =
            predict_network(build_network(spec, Execution::dynamic), spec, bigger, cache);
        CAPTURE(gpu);
        CAPTURE(name);
        CAPTURE(scale);
        CHECK(dense.latency_s <= previous_dense * (1 + 1e-12));
        CHECK(dynamic.latency_s <= previous_dynamic * (1 + 1e-12));
        previous_dense = dense.latency_s;
        previous_dynamic = dynamic.latency_s;
      }
    }
  }
}

// Regression: a masker pooling a whole large map per patch (layer mode, or S = the map) broke
// every tile's shared-memory limit, and the fallback tile was left unpriced ("tiles": 0, about
// free; an assertion with assertions on). Every op that has work must come out priced.
TEST_CASE("every op with work is priced, maskers of whole maps included") {
  struct Case {
    const char* spec;
    const char* hw;
    DynamicMode mode;
    double density;
  };
  for (const auto& c : {Case{"mobilenetv2", "tx2", DynamicMode::layer, 0.3},
                        Case{"resnet50", "h100-sxm", DynamicMode::spatial, 0.5},
                        Case{"resnet50", "tx2", DynamicMode::layer, 0.5}}) {
    CAPTURE(std::string(c.spec));
    CAPTURE(std::string(c.hw));
    const auto hw = lasnet::test::shipped_profile(c.hw);
    auto spec = lasnet::test::example(c.spec);
    set_mode(spec, c.mode);
    if (c.mode == DynamicMode::spatial) {
      // S = each stage's map, as the scheduler's search tries it.
      std::vector<std::int64_t> whole;
      for (const auto& geo : stage_geometry(spec)) whole.push_back(geo.out_height);
      set_granularity(spec, whole, "granularity");
    }
    set_density(spec, c.density, "density");
    PredictionCache cache(hw);
    const auto net = predict_network(build_network(spec, Execution::dynamic), spec, hw, cache);
    for (const auto& block : net.blocks) {
      for (const auto& op : block.ops) {
        CAPTURE(block.name);
        CAPTURE(op.name);
        if (op.prediction.empty) continue;
        CHECK(op.prediction.tiles > 0);
        CHECK(op.prediction.latency_s > op.prediction.launch_s);
      }
    }
  }
}

TEST_CASE("a given GEMM tile: waves of whole tiles, each running its full K loop") {
  // conv 3x3, 64 -> 64 channels on a 14x14 map, batch 1: M = 196, N = 64, K = 576.
  Op conv;
  conv.kind = OpKind::conv;
  conv.batch = 1;
  conv.in_channels = conv.out_channels = 64;
  conv.in_height = conv.in_width = conv.out_height = conv.out_width = 14;
  conv.kernel = 3;
  const auto hw = lasnet::test::toy_gpu();  // 2 SMs, 64 GFLOP/s each
  OpContext context;
  context.gemm_tile = GemmTile{64, 64, 4};
  const auto p = predict_op(conv, hw, context);
  // ceil(196 / 64) = 4 tiles on 2 SMs: 2 each, 64 x 64 x 576 x 2 flops per tile.
  CHECK(p.tiles == 4);
  CHECK(p.compute_s == doctest::Approx(2 * 64.0 * 64 * 576 * 2 / 64e9));
  CHECK(p.lane_utilization == doctest::Approx(196.0 / 256));
  // A larger tile covers the op in fewer, longer tiles: 2 tiles of 128 rows, one per SM.
  context.gemm_tile = GemmTile{128, 64, 8};
  const auto big = predict_op(conv, hw, context);
  CHECK(big.tiles == 2);
  CHECK(big.compute_s == doctest::Approx(p.compute_s));
  // The search prices some tile of its own; with no tile given nothing changes.
  CHECK(predict_op(conv, hw).latency_s == predict_op(conv, hw, OpContext{}).latency_s);
  // Ops that are not convolutions ignore the tile.
  CHECK(predict_op(add_op(), hw, context).latency_s == predict_op(add_op(), hw).latency_s);
  // Split-K: twice the blocks, each with half the K loop; one more launch for the reduce pass,
  // and the partial sums go through L2 (written and read back).
  GemmTile split{64, 64, 4};
  split.splits = 2;
  OpContext split_context;
  split_context.gemm_tile = split;
  const auto halves = predict_op(conv, hw, split_context);
  CHECK(halves.tiles == 8);
  CHECK(halves.compute_s == doctest::Approx(p.compute_s));
  CHECK(halves.launch_s == doctest::Approx(2 * p.launch_s));
  CHECK(halves.l2_bytes > p.l2_bytes);
  // The cache keys on the tile.
  PredictionCache cache(hw);
  CHECK(cache.predict(conv, context).tiles == 2);
  CHECK(cache.predict(conv).tiles != 0);
  CHECK(cache.size() == 2);
}

TEST_CASE("GEMM variants: each tile shape and the library at their own efficiencies") {
  // The conv of the case above (M = 196, N = 64, K = 576) at a 64x64 tile: 2 tiles per SM.
  Op conv;
  conv.kind = OpKind::conv;
  conv.batch = 1;
  conv.in_channels = conv.out_channels = 64;
  conv.in_height = conv.in_width = conv.out_height = conv.out_width = 14;
  conv.kernel = 3;
  auto hw = lasnet::test::toy_gpu();
  OpContext context;
  context.gemm_tile = GemmTile{64, 64, 4};
  CHECK(gemm_variant(conv, context) == "igemm.fp32.64x64.w4");
  GemmTile split{64, 64, 4};
  split.splits = 2;
  CHECK(gemm_variant(conv, OpContext{false, split}) == "igemm.fp32.64x64.w4.splitk");
  const OpContext library_context = library_gemm();
  CHECK(gemm_variant(conv, library_context) == "library.fp32");
  CHECK(op_class(conv, library_context) == "conv.k3.library");
  CHECK(gemm_variant(conv, OpContext{}).empty());
  CHECK(gemm_variant(add_op(), context).empty());

  const auto base = predict_op(conv, hw, context);
  // A variant at a quarter of the precision's efficiency: four times the compute time (2 tiles
  // of 64 x 64 x 576 x 2 flops on an SM of 64 GFLOP/s, at 0.25 of it).
  hw.calibration.gemm_efficiency["igemm.fp32.64x64.w4"] = 0.25;
  const auto slow = predict_op(conv, hw, context);
  CHECK(slow.compute_s == doctest::Approx(2 * 64.0 * 64 * 576 * 2 / (0.25 * 64e9)));
  CHECK(slow.compute_s == doctest::Approx(4 * base.compute_s));
  // A variant the calibration lacks runs at its split sibling's entry (the same main loop),
  // else at its family's geometric mean (the other fp32 implicit-GEMM tiles), and only a
  // variant of a family with no entries at the precision's efficiency.
  const auto& cal = hw.calibration;
  CHECK(cal.compute_efficiency_of(Precision::fp32, "igemm.fp32.64x64.w4.splitk") == 0.25);
  OpContext other;
  other.gemm_tile = GemmTile{128, 64, 8};
  CHECK(predict_op(conv, hw, other).compute_s ==
        doctest::Approx(4 * predict_op(conv, lasnet::test::toy_gpu(), other).compute_s));
  hw.calibration.gemm_efficiency["igemm.fp32.128x128.w8"] = 1.0;
  CHECK(cal.compute_efficiency_of(Precision::fp32, "igemm.fp32.128x64.w8") == doctest::Approx(0.5));
  CHECK(cal.compute_efficiency_of(Precision::fp32, "igemm.tf32.128x64.w8") == 1.0);
  CHECK(cal.compute_efficiency_of(Precision::fp32, "library.fp32") == 1.0);
  CHECK(gemm_family("igemm.fp32.128x64.w8.splitk") == "igemm.fp32");
  CHECK(gemm_family("library.fp32").empty());
  hw.calibration.gemm_efficiency.erase("igemm.fp32.128x128.w8");
  // A variant streaming at half the rates: twice the DRAM and L2 times.
  hw.calibration.gemm_memory_efficiency["igemm.fp32.64x64.w4"] = 0.5;
  const auto stream = predict_op(conv, hw, context);
  CHECK(stream.dram_s == doctest::Approx(2 * base.dram_s));
  // The library is priced at its own variant's efficiency.
  const auto lib = predict_op(conv, lasnet::test::toy_gpu(), library_context);
  auto slow_library = lasnet::test::toy_gpu();
  slow_library.calibration.gemm_efficiency["library.fp32"] = 0.1;
  // (Its SIMT tiles' compute time carries their L2 staging, which the efficiency leaves alone.)
  const auto slow_lib = predict_op(conv, slow_library, library_context);
  CHECK(slow_lib.compute_s - slow_lib.l2_s > 5 * (lib.compute_s - lib.l2_s));
}

TEST_CASE("physical bounds: no op under its FLOPs at the peak, no rate over the measured ones") {
  Op conv;
  conv.kind = OpKind::conv;
  conv.batch = 8;
  conv.in_channels = conv.out_channels = 256;
  conv.in_height = conv.in_width = conv.out_height = conv.out_width = 28;
  conv.kernel = 3;
  auto hw = lasnet::test::shipped_profile("h100");
  OpContext context;
  context.gemm_tile = GemmTile{128, 128, 8};
  // A class scale and a variant efficiency each within their bounds, together 10x the peak.
  hw.calibration.op_scale["conv.k3.igemm"] = 0.1;
  hw.calibration.gemm_efficiency["igemm.fp32.128x128.w8"] = 1.0;
  const auto fast = predict_op(conv, hw, context);
  CHECK(fast.latency_s ==
        doctest::Approx(fast.flops / hw.peak_flops_of(Precision::fp32) + fast.launch_s));
  CHECK(fast.bound == Bound::compute);
  // A memory factor past what undoes the GPU-wide L2 efficiency streams at the measured L2.
  hw.calibration.l2_efficiency = 0.5;
  hw.calibration.gemm_memory_efficiency["igemm.fp32.128x128.w8"] = 2.0;
  const auto at_l2 = predict_op(conv, hw, context);
  hw.calibration.gemm_memory_efficiency["igemm.fp32.128x128.w8"] = 8.0;
  CHECK(predict_op(conv, hw, context).l2_s == doctest::Approx(at_l2.l2_s));
  hw.calibration.gemm_memory_efficiency["igemm.fp32.128x128.w8"] = 1.0;
  CHECK(predict_op(conv, hw, context).l2_s > 1.5 * at_l2.l2_s);
}

TEST_CASE("a library GEMM: the cheapest of the library's tiles and split-K factors") {
  const auto hw = lasnet::test::shipped_profile("h100");
  const OpContext library_context = library_gemm();
  // Batch 1, 7 x 7, K = 2048, N = 512: 32 tiles of 32 x 32 for 132 SMs, each walking the whole
  // K. The library splits K (the probe saw split 16 here) and so beats its own unsplit tile.
  const Op long_k = pointwise_conv(1, 7, 2048, 512, Precision::fp32);
  const auto split = predict_op(long_k, hw, library_context);
  const auto unsplit = predict_op(long_k, hw, OpContext{false, GemmTile{32, 32, 4}});
  CHECK(split.tiles > 32);
  CHECK(split.latency_s < 0.8 * unsplit.latency_s);
  // No candidate is missed: never slower than one of them priced alone (at tf32, where the
  // library's tensor-core tiles are priced as our implicit GEMM's at the same tile).
  for (const GemmTile& t : {GemmTile{64, 64, 4}, GemmTile{128, 64, 4}, GemmTile{128, 128, 8}}) {
    const Op big = pointwise_conv(32, 56, 256, 64, Precision::tf32);
    CHECK(predict_op(big, hw, library_context).latency_s <=
          predict_op(big, hw, OpContext{false, t}).latency_s * (1 + 1e-12));
  }
  // N = 16 computes at least a 32-wide tile column: twice the FLOPs the tile search, which
  // tiles any 16 channels at full lanes, charges.
  const Op narrow = pointwise_conv(64, 56, 64, 16, Precision::fp32);
  const auto lib = predict_op(narrow, hw, library_context);
  const double m = 64.0 * 56 * 56;
  CHECK(lib.compute_s >= 2.0 * m * 64 * 32 / hw.peak_flops_of(Precision::fp32));
  CHECK(predict_op(narrow, hw).compute_s < lib.compute_s);
}

TEST_CASE("a kernel's own residency: one fp32 128x128 tile per SM, not the model's two") {
  auto hw = lasnet::test::shipped_profile("h100");
  // The terms residency acts through: latency hiding and the per-round fixed phases.
  hw.calibration.latency_warps = 2;
  hw.calibration.gemm_round_s = 2e-6;
  Op conv;
  conv.kind = OpKind::conv;
  conv.batch = 32;
  conv.in_channels = conv.out_channels = 256;
  conv.in_height = conv.in_width = conv.out_height = conv.out_width = 28;
  conv.kernel = 3;
  GemmTile rule{128, 128, 8};
  GemmTile built = rule;
  built.blocks_per_sm = 1;
  const auto two = predict_op(conv, hw, OpContext{false, rule});
  const auto one = predict_op(conv, hw, OpContext{false, built});
  CHECK(two.tiles_per_sm == 2);
  CHECK(one.tiles_per_sm == 1);
  // 25088 rows x 256 channels: 392 tiles, 3 rounds of 132 against 2 of 264.
  CHECK(one.tiles == 392);
  CHECK(one.waves == 3);
  CHECK(two.waves == 2);
  // Half the warps hide less latency, and each round pays the fixed phases: slower.
  CHECK(one.compute_s > 1.05 * two.compute_s);
  CHECK(one.latency_s > two.latency_s);
  // Without either term the two agree (the busiest SM runs the same tiles).
  const auto plain = lasnet::test::shipped_profile("h100");
  CHECK(predict_op(conv, plain, OpContext{false, built}).latency_s ==
        doctest::Approx(predict_op(conv, plain, OpContext{false, rule}).latency_s));
}

namespace {

// Squeeze-excitation over `batch` square maps of `side`: `channels` squeezed to `squeeze`.
Op se_op(std::int64_t batch, std::int64_t channels, std::int64_t squeeze, std::int64_t side) {
  Op se;
  se.kind = OpKind::se;
  se.batch = batch;
  se.in_channels = channels;
  se.out_channels = squeeze;
  se.in_height = se.in_width = se.out_height = se.out_width = side;
  return se;
}

}  // namespace

TEST_CASE("squeeze-excitation as the kernels run it: pool, fcs, scale") {
  // Dense SE over a 2 x 32 x 32 x 64 map (0.5 MiB: fits the toy's L2 half), squeeze width 16.
  Op se = se_op(2, 64, 16, 32);
  auto hw = lasnet::test::toy_gpu();  // DRAM 1 GB/s, L2 4 GB/s, 800 ns per load round trip
  const double map = 2.0 * 32 * 32 * 64 * 4;
  const auto p = predict_op(se, hw);
  // The pool runs 4 blocks of 32 channels x 2 images, each image's 1024 rows cut into
  // se_pool_slices = min(256 / 4, 1024 / 128) = 8 slices: 32 blocks.
  // pool: the map from DRAM (its 2 rounds of 16-load chains are shorter); the fcs, a 512-thread
  // block per image: the 8 slices' sums (two unrolled iterations of 4), then per warp one row of
  // w1 (64 long: every lane has 2 loads, both leftovers, so 2 round trips) plus its bias, and 4
  // rows of w2 (16 long: 1 round trip) plus their biases: 2 + 3 + 4 x 2 = 13 round trips, longer
  // than its 10 KiB of weights and sums through the SM's port; scale: the map from L2, written.
  const double pool = map / 1e9, fcs = (2 + 3 + 4 * 2) * 800e-9;
  const double scale = map / 4e9 + map / 1e9;
  CHECK(p.latency_s == doctest::Approx(pool + fcs + scale));
  CHECK(p.tiles == 32);
  // One image of a 256 x 256 map, 32 channels: one block column cut into 64 slices (the cap) of
  // 1024 rows, so chains of 1024 / 8 = 128 loads; 64 blocks on the toy's 2 SMs x 8 resident is 4
  // rounds. With slow loads the chains (4 x 128 x 1e-4 s) set the time, not the bytes.
  se.batch = 1;
  se.in_channels = 32;
  se.in_height = se.in_width = se.out_height = se.out_width = 256;
  hw.calibration.load_latency_s = 1e-4;
  const double big = 256.0 * 256 * 32 * 4;  // 8 MiB: no longer in L2
  const auto chain = predict_op(se, hw);
  const double chain_s = 4 * 128 * 1e-4;
  // The fcs' chain: 64 slice sums in 16 unrolled iterations, a w1 row of 32 (1 + its bias), 2
  // w2 rows of 16 (1 + bias each); then the scale.
  const double rest = (16 + 2 + 2 * 2) * 1e-4 + 2 * big / 1e9;
  CHECK(chain.latency_s == doctest::Approx(chain_s + rest));
  CHECK(chain.tiles == 64);
  // A dynamic block's SE walks the index list: a class of its own.
  CHECK(op_class(se) == "se");
  se.granularity = 4;
  se.active_patches = 10;
  CHECK(op_class(se) == "se.dynamic");
}

TEST_CASE("squeeze-excitation: the busiest image and the FC's leftover loads set the chains") {
  auto hw = lasnet::test::toy_gpu();
  hw.sm_count = 64;                      // every pool block in one round
  hw.calibration.load_latency_s = 1e-4;  // slow round trips: the chains, not bytes, set the time
  // A dynamic SE on 4 images of 64 x 64 at S = 32: 4 patches an image, 4 of the 16 active.
  Op se = se_op(4, 32, 8, 64);
  se.granularity = 32;
  se.active_patches = 4;
  // The pool's blocks are per image: one patch in each image is a quarter of the chain of all
  // four in one image, whose blocks walk 4 x 1024 rows (each the patch's index, then the pixel).
  se.max_image_patches = 1;
  const auto spread = predict_op(se, hw);
  se.max_image_patches = 4;
  const auto one_image = predict_op(se, hw);
  // se_pool_slices(32, 4, 4096) = 32 slices: rows / 32 / 8 iterations of 2 loads, one round.
  const double per_patch = 1024.0 / 32 / 8 * 2 * 1e-4;
  CHECK(one_image.latency_s - spread.latency_s == doctest::Approx(3 * per_patch));
  // Without a mask: the uniform expectation, between the mean (1) and all 4 in one image.
  se.max_image_patches = 0;
  const auto expected = predict_op(se, hw);
  CHECK(expected.latency_s > spread.latency_s);
  CHECK(expected.latency_s < one_image.latency_s);

  // The FCs: a w2 row of 112 leaves lanes 16-31 three leftover loads (3 round trips, then one
  // unrolled iteration for lanes 0-15); one of 128 is a single unrolled iteration. So at 448
  // channels (28 w2 rows a warp) the narrower squeeze is the slower, as the kernel runs it.
  Op dense;
  dense.kind = OpKind::se;
  dense.batch = 1;
  dense.in_channels = 448;
  dense.in_height = dense.in_width = dense.out_height = dense.out_width = 7;
  dense.out_channels = 112;
  const auto narrow = predict_op(dense, hw);
  dense.out_channels = 128;
  const auto wide = predict_op(dense, hw);
  CHECK(narrow.latency_s > wide.latency_s);
  // 448 / 112: 7 w1 rows of (14 loads: 2 leftovers + 3 unrolled) + bias, 28 w2 rows of (3 + 1)
  // + bias, the one slice's sum: 7 x 6 + 28 x 5 + 1 = 183 round trips; 448 / 128: 8 x 6 +
  // 28 x 2 + 1 = 105.
  CHECK(narrow.latency_s - wide.latency_s == doctest::Approx((183 - 105) * 1e-4).epsilon(0.01));
}

TEST_CASE("squeeze-excitation: the scale pass walks every row of the active patches") {
  // Bytes, chains and the fcs' port nearly free: what is left is the scale pass's walk, one
  // element a trip of 256-thread blocks, three divisions a trip (3 x 24 + 40 = 112 cycles on the
  // toy's one scheduler at 1 GHz).
  auto hw = lasnet::test::toy_gpu();
  hw.dram_bandwidth_bytes_per_s = hw.l2_bandwidth_bytes_per_s = hw.sm_bandwidth_bytes_per_s = 1e18;
  hw.calibration.load_latency_s = 1e-18;
  Op se = se_op(1, 64, 16, 48);
  // S = 32: 2 x 2 patches, all active, 4 x 1024 rows (the clipped ones' rows too, as the kernel
  // walks them) x 64 channels = 1024 blocks of one trip, 512 on the busiest SM, 8 warps each.
  se.granularity = 32;
  se.active_patches = 4;
  const auto coarse = predict_op(se, hw);
  // S = 16: 3 x 3 patches, 9 x 256 = 2304 rows: 576 blocks, 288 on the busiest SM.
  se.granularity = 16;
  se.active_patches = 9;
  const auto fine = predict_op(se, hw);
  CHECK(coarse.latency_s - fine.latency_s ==
        doctest::Approx((512 - 288) * 8 * 112 * 1e-9).epsilon(1e-3));
  // The class scale multiplies the passes, not the three launches the profile measured.
  hw.launch_overhead_s = 1e-6;
  const auto unscaled = predict_op(se, hw);
  hw.calibration.op_scale["se.dynamic"] = 2.0;
  const auto scaled = predict_op(se, hw);
  CHECK(scaled.latency_s - 3e-6 == doctest::Approx(2.0 * (unscaled.latency_s - 3e-6)));
}

TEST_CASE("direct kernels: issue, L1 wavefronts and the chain of dependent loads, in series") {
  // Depthwise 3x3 on 576 channels, 14x14, batch 8, in blocks of 8 channel quads x 32 strips.
  Op dw;
  dw.kind = OpKind::conv;
  dw.batch = 8;
  dw.in_channels = dw.out_channels = dw.groups = 576;
  dw.in_height = dw.in_width = dw.out_height = dw.out_width = 14;
  dw.kernel = 3;
  auto hw = lasnet::test::toy_gpu();  // 2 SMs of 32 lanes (one scheduler), 1 GHz
  OpContext context;
  GemmTile tile{128, 32, 8};
  tile.direct = true;
  tile.channels_across_groups = true;
  tile.pixels_per_thread = 4;
  context.gemm_tile = tile;
  const auto p = predict_op(dw, hw, context);
  // Rows of 14 pixels: 4 strips each (4, 4, 4, 2 pixels); 112 rows in runs of 4: 448 strips,
  // 14 blocks of 32 strips x 18 blocks of 32 channels = 252, 126 on the busiest SM.
  CHECK(p.tiles == 14 * 18);
  // Issue: a thread's 3 iterations issue 6 loads, 3 weight reads and 48 FFMAs each: 126 blocks
  // x 8 warps x 3 x 57 instructions through one scheduler. L1: a warp's load covers 4 strips of
  // 8 quads x 16 bytes (4 lines), 5.5 columns on average (6 for full strips, 4 for the 2-pixel
  // ones), at the default 1 cycle a wavefront. Latency: 4 blocks resident (64 registers x 256
  // threads), 32 rounds of a chain of 6 loads (2 passes staging 288 weights over 256 threads, 3
  // input rows, the bias) at the default 800 cycles. The three phases add up.
  const double issue = 126.0 * 8 * 3 * 57 / 1e9;
  const double l1 = 126.0 * 8 * 3 * 5.5 * 4 / 1e9;
  CHECK(p.compute_s == doctest::Approx(issue + l1 + 32 * 6 * 800e-9));
  // The inputs are read once per block (its strips' rows with the halo), far below the implicit
  // GEMM's 9 taps per pixel.
  GemmTile gemm{256, 32, 8};
  OpContext gemm_context;
  gemm_context.gemm_tile = gemm;
  const auto per_tap = predict_op(dw, hw, gemm_context);
  CHECK(p.l2_bytes < 0.5 * per_tap.l2_bytes);
  CHECK(op_class(dw, context).ends_with(".direct"));
  CHECK(op_class(dw, gemm_context).ends_with(".igemm"));

  // Four schedulers, batch 1: 64 strips, 2 x 18 = 36 blocks, 18 on the busiest SM, 4 resident:
  // 5 rounds of the 6-load chain.
  hw.fp32_lanes_per_sm = 128;
  dw.batch = 1;
  const auto small = predict_op(dw, hw, context);
  CHECK(small.tiles == 2 * 18);
  const double small_issue = 18.0 * 8 * 3 * 57 / 4 / 1e9, small_l1 = 18.0 * 8 * 3 * 5.5 * 4 / 1e9;
  CHECK(small.compute_s == doctest::Approx(small_issue + small_l1 + 5 * 6 * 800e-9));
  hw.calibration.load_latency_s = 400e-9;
  CHECK(predict_op(dw, hw, context).compute_s ==
        doctest::Approx(small_issue + small_l1 + 5 * 6 * 400e-9));
  // Where the build says the kernel holds fewer blocks (ptxas's registers), more rounds.
  tile.blocks_per_sm = 2;
  context.gemm_tile = tile;
  CHECK(predict_op(dw, hw, context).compute_s ==
        doctest::Approx(small_issue + small_l1 + 9 * 6 * 400e-9));

  // Grouped, 8 groups of 8 channels, 28x28, batch 8, 8 output channels per thread: every load
  // of a warp touches 32 pixels (32 lines). 1568 strips, 13 blocks of 128 x 8 groups = 104, 52
  // on the busiest SM; a thread runs 3 rows x 2 channel quads = 6 iterations of 6 loads, 24
  // weight reads and 384 FFMAs; 4 blocks resident, 13 rounds of a chain of 12 loads (5 passes
  // staging 576 weights over 128 threads, 6 iterations, the bias).
  Op grouped = dw;
  grouped.batch = 8;
  grouped.in_channels = grouped.out_channels = 64;
  grouped.groups = 8;
  grouped.in_height = grouped.in_width = grouped.out_height = grouped.out_width = 28;
  GemmTile gt{512, 8, 4};
  gt.direct = true;
  gt.pixels_per_thread = 4;
  OpContext grouped_context;
  grouped_context.gemm_tile = gt;
  hw.calibration.l1_wavefront_s = 1e-9;
  const auto g = predict_op(grouped, hw, grouped_context);
  CHECK(g.tiles == 13 * 8);
  const double g_issue = 52.0 * 4 * 6 * 414 / 4 / 1e9, g_l1 = 52.0 * 4 * 6 * 6 * 32 * 1e-9;
  CHECK(g.compute_s == doctest::Approx(g_issue + g_l1 + 13 * 12 * 400e-9));
  // Wider groups stage more weights: 16-channel groups take 9 passes over 1152 weights.
  Op wide = grouped;
  wide.in_channels = wide.out_channels = 128;
  const auto wg = predict_op(wide, hw, grouped_context);
  CHECK(wg.compute_s > 2.0 * g.compute_s);
}

TEST_CASE("direct kernels on patches: blocks past the device-side count") {
  // The kernels launch a dynamic op's grid for every patch of the batch; blocks past the active
  // count stage their weights, read the count and exit. The same active patches cost more in a
  // batch of more patches, by rounds of those idle blocks only.
  Op op;
  op.kind = OpKind::gathered_conv;
  op.in_channels = op.out_channels = 64;
  op.groups = 8;
  op.in_height = op.in_width = op.out_height = op.out_width = 32;
  op.kernel = 3;
  op.granularity = 4;
  op.active_patches = 16;
  auto hw = lasnet::test::toy_gpu();
  GemmTile gt{512, 8, 4};
  gt.direct = true;
  gt.pixels_per_thread = 4;
  OpContext context;
  context.gemm_tile = gt;
  op.batch = 1;  // 64 patches: 256 strips, 2 x 8 = 16 blocks, 8 of them active
  const auto one = predict_op(op, hw, context);
  op.batch = 16;  // 1024 patches: 32 x 8 = 256 blocks, the same 8 active
  const auto many = predict_op(op, hw, context);
  CHECK(many.tiles == one.tiles);
  CHECK(many.compute_s == doctest::Approx(one.compute_s));
  // Idle blocks: 248 over 2 SMs, 4 resident: 31 rounds of 5 weight passes and the count, at the
  // default 800 cycles; batch 1's 8 idle blocks one round.
  CHECK(many.latency_s - one.latency_s == doctest::Approx((31 - 1) * 6 * 800e-9));
}

TEST_CASE("gemm_round_s: the implicit GEMM's fixed cost per round of resident tiles") {
  // A 1x1 conv at batch 128 on the kernels' 128x128 tile, at a short and a long reduction.
  const auto conv_of = [](std::int64_t in_channels) {
    Op conv;
    conv.kind = OpKind::conv;
    conv.batch = 128;
    conv.in_channels = in_channels;
    conv.out_channels = 256;
    conv.in_height = conv.in_width = conv.out_height = conv.out_width = 14;
    conv.kernel = 1;
    return conv;
  };
  const Op short_k = conv_of(32), long_k = conv_of(2048);
  auto hw = lasnet::test::toy_gpu();
  hw.dram_bandwidth_bytes_per_s = hw.l2_bandwidth_bytes_per_s = 1e11;
  hw.calibration.op_scale["conv.k1.igemm"] = 1.5;
  OpContext context;
  context.gemm_tile = GemmTile{128, 128, 8};
  const auto short0 = predict_op(short_k, hw, context);
  const auto long0 = predict_op(long_k, hw, context);
  // Absent (0, what every profile without the field reads as): no impact, bit for bit.
  auto zero = hw;
  zero.calibration.gemm_round_s = 0;
  CHECK(predict_op(short_k, zero, context).latency_s == short0.latency_s);
  CHECK(predict_op(long_k, zero, context).latency_s == long0.latency_s);

  auto with_round = hw;
  with_round.calibration.gemm_round_s = 2e-6;
  const auto short1 = predict_op(short_k, with_round, context);
  const auto long1 = predict_op(long_k, with_round, context);
  // The compute and memory terms are unchanged; the fixed phases are serial with them.
  CHECK(short1.compute_s == short0.compute_s);
  CHECK(short1.memory_s == short0.memory_s);
  // 25088 rows / 128 = 196 x 2 column tiles = 392 tiles, 196 on each of 2 SMs; two 256-thread
  // tiles resident per SM (128 registers each of a 64K-register file): 98 rounds, each 2 us
  // plus the two tiles' 128 x 128 fp32 outputs at the SM's bandwidth.
  REQUIRE(short1.tiles == 392);
  const double rounds = 98;
  const double epilogue = 2.0 * 128 * 128 * 4 / hw.sm_bandwidth_bytes_per_s;
  CHECK(short1.latency_s - short0.latency_s == doctest::Approx(1.5 * rounds * (2e-6 + epilogue)));
  CHECK(long1.latency_s - long0.latency_s == doctest::Approx(short1.latency_s - short0.latency_s));
  // The same cost weighs more on the short reduction: its share of the short-K tile is larger.
  const double short_rise = short1.latency_s / short0.latency_s - 1;
  const double long_rise = long1.latency_s / long0.latency_s - 1;
  CHECK(long_rise > 0);
  CHECK(short_rise > 5 * long_rise);
  // Only the implicit GEMM at a kernel tile has it: the tile search is unchanged.
  CHECK(predict_op(short_k, with_round).latency_s == predict_op(short_k, hw).latency_s);
  // A variant's own cost replaces the GPU-wide one, for that variant's family only.
  REQUIRE(gemm_variant(short_k, context) == "igemm.fp32.128x128.w8");
  auto own = with_round;
  own.calibration.gemm_round["igemm.fp32.128x128.w8"] = 5e-6;
  CHECK(predict_op(short_k, own, context).latency_s - short0.latency_s ==
        doctest::Approx(1.5 * rounds * (5e-6 + epilogue)));
  Op half = short_k;
  half.precision = Precision::fp16;
  CHECK(predict_op(half, own, context).latency_s ==
        predict_op(half, with_round, context).latency_s);
}

TEST_CASE("op_compute_scale: a factor on the compute time of one class, before the max") {
  Op conv;
  conv.kind = OpKind::conv;
  conv.batch = 4;
  conv.in_channels = conv.out_channels = 256;
  conv.in_height = conv.in_width = conv.out_height = conv.out_width = 14;
  conv.kernel = 3;
  auto hw = lasnet::test::toy_gpu();
  hw.dram_bandwidth_bytes_per_s = hw.l2_bandwidth_bytes_per_s = 1e12;  // compute-bound
  OpContext context;
  context.gemm_tile = GemmTile{64, 64, 4};
  const auto base = predict_op(conv, hw, context);
  REQUIRE(base.bound == Bound::compute);
  hw.calibration.op_compute_scale[op_class(conv, context)] = 2;
  const auto scaled = predict_op(conv, hw, context);
  CHECK(scaled.compute_s == doctest::Approx(2 * base.compute_s));
  CHECK(scaled.memory_s == doctest::Approx(base.memory_s));
  CHECK(scaled.latency_s == doctest::Approx(2 * base.latency_s));
  // Exact class only: the same conv at the search's tile is not that class.
  auto plain = hw;
  plain.calibration.op_compute_scale.clear();
  CHECK(predict_op(conv, hw).latency_s == doctest::Approx(predict_op(conv, plain).latency_s));
}

TEST_CASE("latency hiding: one resident tile of 4 warps runs slower than a full SM") {
  Op conv;
  conv.kind = OpKind::conv;
  conv.batch = 1;
  conv.in_channels = conv.out_channels = 64;
  conv.in_height = conv.in_width = conv.out_height = conv.out_width = 8;
  conv.kernel = 1;
  auto hw = lasnet::test::toy_gpu();
  hw.max_threads_per_sm = 2048;
  OpContext context;
  context.gemm_tile = GemmTile{64, 64, 4};
  const double base = predict_op(conv, hw, context).compute_s;
  hw.calibration.latency_warps = 4;
  // 4 resident warps of 64: (4 / 8) / (64 / 68).
  CHECK(predict_op(conv, hw, context).compute_s ==
        doctest::Approx(base / ((4.0 / 8) / (64.0 / 68))));
}

TEST_CASE("the masker's pool splits large patches over threads; the logits pass reads x once") {
  auto hw = lasnet::test::shipped_profile("h100-sxm");
  hw.calibration.pool_iteration_s = 1e-6;  // the chains dominate everything else
  auto spec = lasnet::test::example("resnet50");
  const auto masker_at = [&](std::int64_t batch, std::int64_t s) {
    spec.batch = batch;
    BlockSettings settings;
    settings.granularity = s;
    settings.density = 0.5;
    const auto block = make_block(spec, 0, 1, Execution::dynamic, settings);
    REQUIRE(block.nodes.front().name == "masker");
    return predict_op(block.nodes.front().op, hw);
  };
  // Batch 1, S 56: one patch of 3136 pixels, the one-kernel form with 32 threads on it (one
  // warp): 98 iterations, each a lone warp's.
  const auto one = masker_at(1, 56);
  CHECK(one.l2_s == doctest::Approx(98e-6).epsilon(0.01));
  // Batch 8 (25088 pixels: the two-kernel form): 3136 pixels is 2 slices of 256 threads, chains
  // of 7 iterations, 8 warps on the busiest SM (whose issue is far below the latency), then a
  // finalize chain of 2.
  const auto sliced = masker_at(8, 56);
  CHECK(sliced.l2_s == doctest::Approx(7e-6 + 2e-6).epsilon(0.01));
  // S 1: a thread per patch, one load each; the logits pass's bytes do not depend on S.
  const auto fine = masker_at(8, 1);
  CHECK(fine.dram_s == doctest::Approx(sliced.dram_s));
  CHECK(fine.l2_s < sliced.l2_s);
}

TEST_CASE("the spread-out masker pool: an SM's warps queue in its issue past the latency") {
  // ResNet-50's first block at batch 8, S = 4: 8 x 14 x 14 = 1568 patches over 25088 pixels, too
  // many for the one-kernel form; a thread per 4 x 4 patch, 7 blocks of 256 threads, so 8 warps
  // on the busiest SM; each thread walks 16 logits.
  auto hw = lasnet::test::shipped_profile("h100-sxm");
  hw.calibration.pool_iteration_s = 1e-6;  // the chains dominate everything else
  hw.calibration.pool_issue_s = 1e-9;
  auto spec = lasnet::test::example("resnet50");
  spec.batch = 8;
  BlockSettings settings;
  settings.granularity = 4;
  settings.density = 0.5;
  const auto op = make_block(spec, 0, 1, Execution::dynamic, settings).nodes.front().op;
  REQUIRE(op_class(op, OpContext{}) == "masker");
  CHECK(predict_op(op, hw).l2_s == doctest::Approx(16 * 1e-6).epsilon(0.01));
  hw.calibration.pool_issue_s = 2e-7;  // 8 warps' issue: 1.6 us an iteration
  CHECK(predict_op(op, hw).l2_s == doctest::Approx(16 * 8 * 2e-7).epsilon(0.01));
}

TEST_CASE("the one-kernel pool: a lone warp's latency per iteration, until the warps' issue") {
  // ResNet-50's first block at batch 1 (56 x 56 pixels): one block on one SM pools and compacts.
  auto hw = lasnet::test::shipped_profile("h100-sxm");
  hw.calibration.pool_iteration_s = 1e-6;  // the pool dominates everything else
  hw.calibration.pool_issue_s = 1e-9;
  auto spec = lasnet::test::example("resnet50");
  spec.batch = 1;
  BlockSettings settings;
  settings.density = 0.5;
  const auto masker_at = [&](std::int64_t s) {
    settings.granularity = s;
    const auto op = make_block(spec, 0, 1, Execution::dynamic, settings).nodes.front().op;
    REQUIRE(op.kind == OpKind::masker);
    REQUIRE(op_class(op, OpContext{}) == "masker.one_kernel");
    return op;
  };
  // S = 56: one patch, one warp walking 3136 logits 32 at a time, 98 iterations at the latency.
  const auto whole = masker_at(56);
  CHECK(predict_op(whole, hw).l2_s == doctest::Approx(98 * 1e-6).epsilon(0.01));
  // S = 4: 196 patches of 16 logits, 4 threads each (784 threads, 25 warps), 4 iterations; at
  // this issue cost the latency still sets each one.
  const auto fine = masker_at(4);
  CHECK(predict_op(fine, hw).l2_s == doctest::Approx(4 * 1e-6).epsilon(0.01));
  // Once 25 warps' issue outlasts the latency, an iteration takes 25 of them; one warp alone
  // never queues behind others.
  hw.calibration.pool_issue_s = 1e-7;
  CHECK(predict_op(fine, hw).l2_s == doctest::Approx(4 * 25 * 1e-7).epsilon(0.01));
  CHECK(predict_op(whole, hw).l2_s == doctest::Approx(98 * 1e-6).epsilon(0.01));
  const auto again = parse_profile(profile_to_json(hw), "test");
  CHECK(again.calibration.pool_iteration_s == 1e-6);
  CHECK(again.calibration.pool_issue_s == 1e-7);
}

TEST_CASE("an op priced at a kernel tile has its own calibration class, with fallbacks") {
  Op conv;
  conv.kind = OpKind::conv;
  conv.in_channels = conv.out_channels = 64;
  conv.in_height = conv.in_width = conv.out_height = conv.out_width = 14;
  OpContext tiled;
  tiled.gemm_tile = GemmTile{64, 64, 4};
  CHECK(op_class(conv, OpContext{}) == "conv.k1");
  CHECK(op_class(conv, tiled) == "conv.k1.igemm");
  CHECK(op_class(add_op(), tiled) == "add");  // not a conv: the tile does not apply
  auto hw = lasnet::test::toy_gpu();
  const double plain = predict_op(conv, hw, tiled).latency_s;
  hw.calibration.op_scale["conv.k1"] = 2;  // the plain class stands in for the tiled one
  CHECK(predict_op(conv, hw, tiled).latency_s == doctest::Approx(2 * plain));
  hw.calibration.op_scale["conv.k1.igemm"] = 3;  // and the tiled class wins where it is fitted
  CHECK(predict_op(conv, hw, tiled).latency_s == doctest::Approx(3 * plain));
  hw.calibration.op_offset_s["conv.k1.igemm"] = 1e-6;
  CHECK(predict_op(conv, hw, tiled).latency_s == doctest::Approx(3 * plain + 1e-6));
}

TEST_CASE("the masker's logits pass: a warp per pixel waits on each load when pixels are thin") {
  auto hw = lasnet::test::shipped_profile("h100-sxm");
  hw.calibration.warp_iteration_s = 1e-6;
  Op masker;
  masker.kind = OpKind::masker;
  masker.batch = 128;
  masker.in_channels = 24;  // 96 bytes per pixel: far from DRAM-bound
  masker.out_channels = 1;
  masker.in_height = masker.in_width = masker.out_height = masker.out_width = 56;
  masker.granularity = 1;
  masker.active_patches = 128 * 56 * 56 / 2;
  const double pixels = 128.0 * 56 * 56;
  const double slots = static_cast<double>(hw.sm_count * hw.max_threads_per_sm / 32);
  const double floor = std::ceil(pixels / slots) * 1e-6;
  CHECK(predict_op(masker, hw).latency_s >= floor);
  // Many channels per pixel: the bytes, not the loop, set the pass.
  masker.in_channels = 2048;
  const auto wide = predict_op(masker, hw);
  CHECK(wide.dram_s > floor);
}

// The kernels pool and compact up to 1024 patches over at most 16384 input pixels in one
// kernel (kernels/src/dynamic.cuh); beyond that, the pool and cub's two-pass select.
TEST_CASE("the masker launches: logits + one pool-and-select kernel for small patch counts") {
  const auto hw = lasnet::test::shipped_profile("h100-sxm");
  Op masker;
  masker.kind = OpKind::masker;
  masker.batch = 1;
  masker.in_channels = 256;
  masker.out_channels = 1;
  masker.in_height = masker.in_width = masker.out_height = masker.out_width = 32;
  masker.granularity = 1;  // 1024 patches, 1024 pixels
  masker.active_patches = 512;
  CHECK(predict_op(masker, hw).launch_s == doctest::Approx(2 * hw.launch_overhead_s));
  masker.in_height = masker.in_width = masker.out_height = masker.out_width = 33;  // 1089
  CHECK(predict_op(masker, hw).launch_s == doctest::Approx(4 * hw.launch_overhead_s));
  masker.granularity = 2;  // 289 patches over 1089 pixels
  CHECK(predict_op(masker, hw).launch_s == doctest::Approx(2 * hw.launch_overhead_s));
  masker.batch = 16;  // 4624 patches over 17424 pixels
  CHECK(predict_op(masker, hw).launch_s == doctest::Approx(4 * hw.launch_overhead_s));
  masker.granularity = 8;  // 400 patches, but 17424 pixels
  CHECK(predict_op(masker, hw).launch_s == doctest::Approx(4 * hw.launch_overhead_s));
}

// The inactive-pixel pass (add_inactive_kernel): a grid-stride walk over every vector of the
// output map, loading and storing only at the pixels outside the active patches.
TEST_CASE("the inactive-pixel pass: bytes of the inactive pixels, a walk over the whole map") {
  const auto hw = lasnet::test::shipped_profile("h100-sxm");
  Op pass;
  pass.kind = OpKind::scatter;
  pass.batch = 32;
  pass.in_channels = pass.out_channels = 256;
  pass.in_height = pass.in_width = pass.out_height = pass.out_width = 56;
  pass.granularity = 4;  // 14 x 14 patches an image
  const std::int64_t patches = 32 * 14 * 14;
  const auto at = [&](std::int64_t active) {
    pass.active_patches = active;
    return predict_op(pass, hw);
  };
  const auto none = at(0), half = at(patches / 2), all = at(patches);
  // Bytes: the shortcut read and the output written at inactive pixels only (4 bytes each),
  // plus a mask byte per patch.
  const double map = 32.0 * 56 * 56 * 256;
  CHECK(none.dram_bytes == doctest::Approx(2 * 4 * map + patches));
  CHECK(half.dram_bytes == doctest::Approx(4 * map + patches));
  CHECK(all.dram_bytes == doctest::Approx(patches));
  // The walk covers the whole map at any density: its time does not change with it...
  CHECK(none.compute_s > 0);
  CHECK(all.compute_s == doctest::Approx(none.compute_s));
  CHECK(half.compute_s == doctest::Approx(none.compute_s));
  // ...so the pass gets cheaper with density, but a fully active map still costs the walk.
  CHECK(none.latency_s > half.latency_s);
  CHECK(half.latency_s >= all.latency_s);
  CHECK(all.latency_s > all.launch_s);
  CHECK(all.bound == Bound::compute);
  CHECK(none.bound == Bound::memory);
  // A map four times larger walks four times as many trips once the grid is full (16 blocks an
  // SM); one that fills less than the grid is a single trip per thread.
  pass.batch = 128;
  const auto big = at(0);
  CHECK(big.compute_s == doctest::Approx(4 * none.compute_s).epsilon(0.05));
  pass.batch = 1;
  pass.out_height = pass.out_width = 8;
  const auto small = at(0);
  CHECK(small.tiles < 132 * 16);
  CHECK(small.compute_s < none.compute_s / 10);
}

// conv3 with the scatter-add fused reads the gathered rows of the active patches (its A
// operand), not the map they were gathered from. Whether the rows come from DRAM once is the
// grid's order: the fp32/tf32 implicit GEMM runs a stripe's output-channel tiles side by side
// (they share it in L2), the fp16 one walks the rows first, so there each column of tiles
// re-reads the buffer once it overflows L2, however large the map.
TEST_CASE("the fused conv + scatter-add reads its gathered rows, not the whole map") {
  const auto hw = lasnet::test::shipped_profile("h100-sxm");
  Op conv;
  conv.kind = OpKind::conv_scatter_add;
  conv.batch = 18;
  conv.in_channels = conv.out_channels = 256;
  conv.in_height = conv.in_width = conv.out_height = conv.out_width = 128;
  conv.granularity = 1;
  conv.active_patches = 14746;  // d = 0.05: 15 MB of rows, the map 302 MB
  OpContext tiled;
  tiled.gemm_tile = GemmTile{128, 64, 4};
  for (const auto precision : {Precision::fp32, Precision::fp16}) {
    CAPTURE(to_string(precision));
    conv.precision = precision;
    conv.in_height = conv.in_width = conv.out_height = conv.out_width = 128;
    conv.active_patches = 14746;
    const auto sparse = predict_op(conv, hw, tiled);
    CHECK(sparse.dram_bytes == doctest::Approx(unique_dram_bytes(conv)));
    conv.in_height = conv.in_width = conv.out_height = conv.out_width = 512;  // same rows
    CHECK(predict_op(conv, hw, tiled).dram_bytes == doctest::Approx(sparse.dram_bytes));
    // Rows beyond L2 (d = 0.8 of the 128x128 maps: 241 MB in fp32, 121 MB in fp16).
    conv.in_height = conv.in_width = conv.out_height = conv.out_width = 128;
    conv.active_patches = 235930;
    const double dram = predict_op(conv, hw, tiled).dram_bytes;
    if (precision == Precision::fp16) {
      CHECK(dram > 1.5 * unique_dram_bytes(conv));  // the 4 tile columns re-read them
    } else {
      CHECK(dram == doctest::Approx(unique_dram_bytes(conv)));
    }
  }
}

// The fitted L2 efficiency is what our kernels reach; the library's GEMMs stream L2 at the
// measured rate times their own variant's memory factor, and read an input beyond L2 once.
TEST_CASE("a library GEMM streams L2 at its own rate, not at our kernels' efficiency") {
  auto hw = lasnet::test::shipped_profile("h100");
  hw.calibration = {};
  const Op conv = pointwise_conv(16, 60, 448, 448, Precision::tf32);
  const OpContext library_context = library_gemm();
  OpContext own;
  own.gemm_tile = GemmTile{256, 128, 8};
  const auto lib = predict_op(conv, hw, library_context);
  const auto ours = predict_op(conv, hw, own);
  hw.calibration.l2_efficiency = 0.4;
  CHECK(predict_op(conv, hw, library_context).l2_s == doctest::Approx(lib.l2_s));
  CHECK(predict_op(conv, hw, own).l2_s == doctest::Approx(ours.l2_s / 0.4));
  hw.calibration.gemm_memory_efficiency["library.tf32"] = 0.5;
  CHECK(predict_op(conv, hw, library_context).l2_s == doctest::Approx(2 * lib.l2_s));
  // 103 MB of input with 50 MB of L2: the library reads it from DRAM once.
  CHECK(lib.dram_bytes == doctest::Approx(unique_dram_bytes(conv)));
}

TEST_CASE("the library's SIMT tiles add their L2 staging to their math; tensor cores overlap it") {
  auto hw = lasnet::test::shipped_profile("h100");
  hw.calibration = {};
  // FFMA: loads and FMAs share the warps' issue slots.
  Op conv = pointwise_conv(32, 28, 512, 1536, Precision::fp32);
  const OpContext context = library_gemm();
  const auto simt = predict_op(conv, hw, context);
  CHECK(simt.l2_s > 0);
  CHECK(simt.memory_s == doctest::Approx(simt.dram_s));
  CHECK(simt.compute_s > simt.l2_s);
  CHECK(simt.bound == Bound::compute);
  hw.calibration.gemm_memory_efficiency["library.fp32"] = 0.5;  // a slower stream costs time
  CHECK(predict_op(conv, hw, context).latency_s > 1.05 * simt.latency_s);

  conv.precision = Precision::tf32;  // tensor cores: the stream hides behind the math
  hw.calibration.gemm_efficiency["library.tf32"] = 0.05;
  const auto tensor = predict_op(conv, hw, context);
  CHECK(tensor.memory_s == doctest::Approx(std::max(tensor.l2_s, tensor.dram_s)));
  CHECK(tensor.bound == Bound::compute);
  hw.calibration.gemm_memory_efficiency["library.tf32"] = 0.5;
  CHECK(predict_op(conv, hw, context).latency_s == doctest::Approx(tensor.latency_s));
}
