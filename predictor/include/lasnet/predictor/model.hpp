#pragma once
// The per-operator latency model: roofline time per tile schedule, with the tile searched.
// For each candidate tile it counts FLOPs, the bytes each tile moves from L2 (in memory
// transactions, so short rows pay for coalescing), the DRAM bytes (unique bytes, plus re-reads
// when the working set overflows L2), the waves of tiles over the SMs and the lane utilisation
// of partial tiles; the fastest feasible tile is the predicted schedule.
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "lasnet/predictor/op.hpp"
#include "lasnet/predictor/profile.hpp"

namespace lasnet::predictor {

struct Tile {
  std::int64_t out_channels = 0;
  std::int64_t rows = 0;     // output rows per tile (within an image, or within a patch)
  std::int64_t cols = 0;     // output columns per tile
  std::int64_t patches = 1;  // patches (dynamic) or images (dense) per tile
  bool operator==(const Tile&) const = default;
};
std::string to_string(const Tile& tile);  // "64c x 7x7 x 2p"

enum class Bound { compute, memory, launch };
std::string_view to_string(Bound bound);

struct OpPrediction {
  double latency_s = 0;  // what the op costs: combine(compute, memory) + launch, calibrated
  double compute_s = 0;
  double memory_s = 0;  // max(dram_s, l2_s)
  double dram_s = 0;
  double l2_s = 0;
  double launch_s = 0;
  double flops = 0;
  double dram_bytes = 0;
  double l2_bytes = 0;
  Bound bound = Bound::memory;
  Tile tile;
  std::int64_t tiles = 0;
  std::int64_t waves = 0;
  std::int64_t tiles_per_sm = 0;  // resident at once (occupancy)
  double lane_utilization = 1;
  double coalescing_efficiency = 1;
  // Ops with nothing to do (density 0) cost only their launch; they are still reported.
  bool empty = false;
};

// A schedule candidate that cannot run (too much shared memory, too many threads) is a value
// with a reason, not an error.
struct TileEvaluation {
  bool feasible = false;
  std::string reason;
  OpPrediction prediction;
};

// The tile of an implicit-GEMM kernel: `rows` output pixels (of the flattened batch, or of the
// active patches' rows) x `cols` output channels of one group, computed by `warps` warps. The
// GEMM is M = output pixels, N = output channels per group, K = taps x input channels per group.
struct GemmTile {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t warps = 4;
  // A direct kernel for narrow groups instead of a GEMM: FFMA (no tensor cores); each thread
  // computes `pixels_per_thread` consecutive output pixels of a row and loads the input columns
  // they share once; a depthwise block (`channels_across_groups`) spans `cols` channels of as
  // many groups, a grouped one `cols` output channels of one group.
  bool direct = false;
  bool channels_across_groups = false;
  std::int64_t pixels_per_thread = 1;
  // Split-K: each output tile's K loop split over `splits` blocks that write partial sums to a
  // workspace, then one more pass adds them and applies the epilogue.
  std::int64_t splits = 1;
  // A vendor library's GEMM (cuBLASLt): it picks its own kernel per shape by its heuristic, so
  // the op is priced as the cheapest of the tile shapes and split-K factors such a library
  // chooses among (each by the implicit GEMM's model: waves of tiles, partial tiles computed
  // whole, split-K's extra pass), under the library's own calibration class and GEMM variant.
  // The other fields are unused then.
  bool library = false;
  // Tiles of this kernel resident on one SM, where the kernel's build says (ptxas's registers,
  // its shared memory, __launch_bounds__); 0: the model's rule (threads, up to 128 registers).
  // The fp32 128-row tiles hold 254 registers a thread, so one 128x128 tile runs per SM, not
  // two: half the warps to hide latency and twice the rounds of fixed per-tile phases.
  std::int64_t blocks_per_sm = 0;
  // The plain layers of a stem, head or layer stage as a layer runner runs them, priced kernel
  // by kernel by predict_block (network.hpp), never by the model's single-kernel paths:
  // - `im2col` (with `library`): a conv as one pass copying every output pixel's taps into a
  //   [pixels][taps x staged_channels] buffer, then the library's GEMM over that buffer; where
  //   `staged_channels` exceeds the op's input channels, a pass first copies the input into a
  //   zero-padded map of that many channels (an RGB image into four: float4 taps).
  // - `thread_per_output`: a pool (max/avg/global), one thread per output element looping over
  //   its window, grid-stride.
  bool im2col = false;
  std::int64_t staged_channels = 0;
  bool thread_per_output = false;
  // A dense block's residual add as the kernels run it: in the epilogue of the block's last
  // conv, not a pass of its own. That conv's tile has `residual` (its epilogue reads the
  // residual map: one more output pass of bytes, in its own DRAM and L2 streams); the add's is
  // the conv's with `epilogue`: no launch, no bytes, only the fixed cost of its class
  // ("add.epilogue.library", ".igemm": one per implementation).
  bool residual = false;
  bool epilogue = false;
  bool operator==(const GemmTile&) const = default;
};
std::string to_string(const GemmTile& tile);  // "gemm 128x64 (8 warps)"

// Memory hints the network composer knows and a single op does not.
struct OpContext {
  // The op's input was just written by its producer and fits in L2: its DRAM read is free.
  bool input_in_l2 = false;
  // The schedule a real kernel runs the op with (the profiler passes the kernels' choice): a
  // conv-like op is then priced at this GEMM tile (waves of tiles over the SMs, each running
  // its whole K loop, partial tiles computed whole) instead of the best tile of the search.
  // Ignored by the other kinds.
  std::optional<GemmTile> gemm_tile;
};

// The calibration class of an op in a context: op_class(op), plus ".igemm" when a conv-like op is
// priced at a given kernel tile (its scale and fixed cost belong to that implementation; the
// plain class and then the kind stand in where the profile has none for it).
std::string op_class(const Op& op, const OpContext& context);

// The GEMM kernel variant an op runs as, the key of Calibration::gemm_efficiency:
// "igemm.<precision>.<rows>x<cols>.w<warps>[.splitk]" for the implicit GEMM at a given tile,
// "library.<precision>" for a vendor library's GEMM, "" for everything else (direct kernels,
// the model's own tile search, non-GEMM ops).
std::string gemm_variant(const Op& op, const OpContext& context);

TileEvaluation evaluate_tile(const Op& op, const Tile& tile, const Profile& hw,
                             const OpContext& context = {});
// Searches the tile space; the best feasible tile's prediction.
OpPrediction predict_op(const Op& op, const Profile& hw, const OpContext& context = {});

// Memoises predict_op within one query: a ResNet-101 repeats its block shapes dozens of times.
// Owned by the caller (no global state); not thread-safe, use one per thread.
class PredictionCache {
 public:
  explicit PredictionCache(const Profile& hw) : hw_(hw) {}
  const OpPrediction& predict(const Op& op, const OpContext& context = {});
  std::size_t size() const { return cache_.size(); }
  // Adds the entries of another cache of the same profile (one filled by another thread); an
  // op priced by both keeps this cache's entry, which is equal since predict_op is pure.
  void merge(const PredictionCache& other);

 private:
  struct Key {
    Op op;
    bool input_in_l2;
    std::optional<GemmTile> gemm_tile;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const;
  };
  const Profile& hw_;
  std::unordered_map<Key, OpPrediction, KeyHash> cache_;
};

}  // namespace lasnet::predictor
