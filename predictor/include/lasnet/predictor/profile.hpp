#pragma once
// Hardware profiles: what the predictor knows of a GPU. Parsed once from JSON (schema in
// hardware_profiles/README.md) into a value type; the model never sees JSON.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lasnet::predictor {

enum class Precision { fp32, tf32, fp16 };
std::string_view to_string(Precision p);
std::optional<Precision> parse_precision(std::string_view text);
// The implementation and precision of a GEMM kernel variant ("igemm.fp32" of
// "igemm.fp32.128x64.w4"; "" for one with no tiles, "library.fp32"): the variants whose fitted
// entries stand in for one of the family that a fit lacks.
std::string_view gemm_family(std::string_view gemm_variant);
int bytes_per_element(Precision p);  // tf32 is stored as fp32

// How an operator's memory and compute times combine: overlapped (max) or serial (sum).
enum class TimeCombine { overlap, sum };

// The model's free parameters that `lasnet calibrate` fits; 1.0 means "as the datasheet says".
struct Calibration {
  std::map<Precision, double> compute_efficiency;  // fraction of peak a tile reaches
  double dram_efficiency = 1.0;
  double l2_efficiency = 1.0;
  // Keyed by operator class ("conv.k3.grouped", see op_class()) or, less specific, by OpKind
  // name ("conv"); the class key wins. The scale multiplies the op's time, the offset (seconds)
  // is added to it: a fixed cost per kernel the roofline does not see (a scan's extra passes,
  // a grid too small to fill the GPU).
  std::map<std::string, double> op_scale;
  std::map<std::string, double> op_offset_s;
  // Keyed by the class of an op priced at a kernel's schedule ("gather_conv.k1.igemm"), exactly:
  // a factor on its compute time alone, before compute and memory combine. An implementation
  // reaches its own fraction of the FMA peak but streams at the memory's rate; one scale on the
  // whole op cannot say both. Default 1.
  std::map<std::string, double> op_compute_scale;
  // Keyed by GEMM kernel variant (gemm_variant(): "igemm.tf32.128x64.w4", "library.fp32"): the
  // fraction of the precision's peak that variant's main loop reaches, in place of
  // compute_efficiency. Each tile shape is its own instantiation (warp tiles, pipeline depth,
  // mma.sync or wgmma), and a vendor library picks kernels of its own per precision: they reach
  // different fractions of the same peak, which per-class scales, shared by every tile an op
  // class runs at, cannot say. Bounded by 1 like compute_efficiency.
  std::map<std::string, double> gemm_efficiency;
  // Keyed the same way: the fraction of the DRAM and L2 rates the variant's loads and stores
  // reach. A tile kernel keeps only its resident tiles' pipeline stages and epilogue stores in
  // flight, too few bytes to cover the memory latency when an SM holds one or two large tiles;
  // the H100 timings show memory-bound 1x1 GEMMs streaming at 1.5-1.9 TB/s where a copy reaches
  // 2.8. Default 1 (the op's rates as the profile says).
  std::map<std::string, double> gemm_memory_efficiency;
  // Latency hiding of GEMM tiles: an SM with `w` resident warps reaches w / (w + latency_warps)
  // of its rate, relative to a full SM (64 warps). 0 = no latency term (the datasheet view).
  double latency_warps = 0;
  // Seconds per step of a serial per-thread loop of loads (squeeze-excitation's pool and FC
  // chains); 0 = the model's guess, 64 SM clock cycles.
  double serial_load_s = 0;
  // The masker's pool (kernels/src/dynamic.cu): each iteration of its loop is an index
  // division, an L2 load and an add. `pool_iteration_s` is what one takes for a warp with the SM
  // to itself (0 = the model's guess, 150 SM clock cycles), `pool_issue_s` what each warp's
  // iteration costs the SM's schedulers when warps share it (0 = the guess, 12 cycles). An
  // iteration on an SM takes the longer of the two: pool_iteration_s, or its warps x
  // pool_issue_s (the one-kernel form puts all its warps, up to 32, on one SM).
  double pool_iteration_s = 0;
  double pool_issue_s = 0;
  // Seconds per iteration of a warp's loop that waits on one DRAM load each time (the masker's
  // logits pass: one warp per pixel, a load, a reduction, the next pixel); 0 = the model's
  // guess, 1500 SM clock cycles.
  double warp_iteration_s = 0;
  // The direct depthwise/grouped kernels: seconds per dependent global-load round trip in a
  // thread's loop (0 = the model's guess, 800 SM clock cycles), and per L1 wavefront (one
  // distinct 128-byte line of a warp's load; 0 = one SM clock cycle).
  double load_latency_s = 0;
  double l1_wavefront_s = 0;
  // The implicit GEMM's fixed cost per round of resident tiles on an SM (seconds): the latency
  // of filling the cp.async pipeline before the first chunk's math and of the epilogue's
  // shared-memory staging and barriers, which are serial with the tile's K loop. With it the
  // model also adds the epilogue's output bytes at the SM's bandwidth. 0 = no such term (the
  // predictions of profiles without it are unchanged).
  double gemm_round_s = 0;
  // The same fixed cost per GEMM kernel variant (JSON "gemm_round_s_of", keyed like
  // gemm_efficiency), in place of gemm_round_s: a wgmma tile (a deeper pipeline, a
  // warpgroup-wide epilogue) or a vendor library's kernel fills and drains in other times than
  // an mma.sync tile, and one shared term priced those kernels' short-K tiles too fast and
  // their long-K ones too slow (rounds 7 and 8: -13..-25% and +13..+48%).
  std::map<std::string, double> gemm_round;
  // What the fit saw, so that a calibration is never applied silently to what it did not meet:
  // the device and its SM clock (the time terms above are that GPU's; `transfer_calibration`
  // rescales them by the clock), the version of the kernels that were timed (a hash of their
  // sources, `lasnet calibrate` records the build's) and the operator classes that had samples
  // (every other class runs on a fallback scale). Absent in profiles nothing was fitted for.
  struct FittedOn {
    std::string device;
    double clock_hz = 0;
    std::string kernels;
    std::vector<std::string> classes;
    bool operator==(const FittedOn&) const = default;
  };
  std::optional<FittedOn> fitted_on;
  double compute_efficiency_of(Precision p) const;
  // The variant's fitted fraction, else its split sibling's, else the geometric mean of its
  // family's (gemm_family), else compute_efficiency_of(p).
  double compute_efficiency_of(Precision p, std::string_view gemm_variant) const;
  // gemm_memory_efficiency's entry, found the same way; 1 where the family has none.
  double memory_efficiency_of(std::string_view gemm_variant) const;
  // gemm_round's entry, found the same way; gemm_round_s where the family has none.
  double gemm_round_of(std::string_view gemm_variant) const;
  double op_scale_of(std::string_view kind) const;
  // Most specific first: the class, then its kind.
  double op_scale_of(std::string_view op_class, std::string_view kind) const;
  double op_offset_of(std::string_view op_class, std::string_view kind) const;
};

// How well a profile predicted timings it was not fitted on (`lasnet validate --record`).
struct ValidationSummary {
  std::string date;    // ISO 8601
  std::string report;  // what was validated, e.g. the report file or the protocol's name
  std::size_t kernels = 0;
  double kernel_mape = 0;
  double kernel_within_15 = 0;  // fraction of kernel steps within +-15%
  std::size_t networks = 0;
  double network_within_10 = 0;  // fraction of networks within +-10%
  double network_worst = 0;      // largest |error| of a network
};

struct Provenance {
  // "datasheet", "measured", "calibrated", or "transferred" (a calibration fitted on another
  // GPU, applied to this one's figures: `lasnet hw transfer`).
  std::string source;
  std::string date;  // ISO 8601
  std::string tool_version;
  std::string device_name;  // as the driver reports it, for measured profiles
  std::string driver;
  std::string notes;
  std::optional<ValidationSummary> validation;  // none: not validated
};

struct Profile {
  static constexpr int current_schema_version = 1;
  int schema_version = current_schema_version;
  std::string name;
  std::string description;
  std::int64_t sm_count = 0;
  std::int64_t fp32_lanes_per_sm = 0;
  double clock_hz = 0;
  double dram_bandwidth_bytes_per_s = 0;  // effective (what a large copy reaches)
  // The fastest DRAM stream measured (read-only or write-only beat a copy), the ceiling of
  // dram_bandwidth x dram_efficiency; 0 = not measured (the copy figure is the ceiling).
  double dram_peak_bytes_per_s = 0;
  double l2_bandwidth_bytes_per_s = 0;
  // The most one SM can pull from L2/DRAM: why a kernel with few tiles cannot reach full
  // bandwidth.
  double sm_bandwidth_bytes_per_s = 0;
  std::int64_t l2_size_bytes = 0;
  std::int64_t shared_memory_per_sm_bytes = 0;
  std::int64_t max_threads_per_sm = 2048;
  std::int64_t max_blocks_per_sm = 32;
  std::int64_t memory_transaction_bytes = 32;
  double launch_overhead_s = 0;  // device time per kernel launched into a stream
  // Device time per kernel node of a CUDA graph (lasnet run launches whole networks as one):
  // the GPU processes a graph's kernels for less than stream launches (H100: 0.8 us against
  // 1.7-1.8 us). 0 = not measured; graph_launched() then keeps launch_overhead_s.
  double graph_launch_overhead_s = 0;
  // Set by graph_launched() only (never read from or written to a file): price every launch as
  // a graph node.
  bool graph_launches = false;
  std::map<Precision, double> peak_flops_per_s;  // fp32 always; tf32/fp16 where tensor cores
  TimeCombine combine = TimeCombine::overlap;
  Calibration calibration;
  Provenance provenance;

  // Peak for p; precisions the chip has no units for fall back to fp32.
  double peak_flops_of(Precision p) const;
  // The calibrated loop terms, or the model's guesses (in SM clock cycles) where the profile has
  // none: serial load 64, warp iteration 1500, load latency 800, L1 wavefront 1, pool iteration
  // 150, pool issue 12.
  double serial_load_s() const;
  double pool_iteration_s() const;
  double pool_issue_s() const;
  double warp_iteration_s() const;
  double load_latency_s() const;
  double l1_wavefront_s() const;
  bool has_tensor_cores(Precision p) const { return peak_flops_per_s.contains(p); }
};

// The profile for kernels launched from a CUDA graph (`graph_launches` set): where
// graph_launch_overhead_s was measured, every op costs launches x (launch_overhead_s -
// graph_launch_overhead_s) less (predict_op). The calibration was fitted on stream-launched
// kernels and its scales multiply the launch term as fitted, so the saving is applied after them,
// unscaled: it is a measured difference in device time per launch, not a fit.
Profile graph_launched(Profile profile);

// Parses and validates; errors are lasnet::Error "SOURCE: json.path: message".
Profile parse_profile(std::string_view json_text, std::string_view source);
Profile load_profile(const std::filesystem::path& file);
// Stable JSON (fixed key order) that parse_profile reads back to an equal profile.
std::string profile_to_json(const Profile& profile);

// Whose launch costs (launch_overhead_s, graph_launch_overhead_s) a transferred profile prices
// kernels with: the calibration's, in SM cycles like its other time terms (the default), or the
// target profile's own figures.
enum class TransferLaunch { calibration, target };

// The calibration of `calibrated` (what a fit learnt about our kernels) applied to another GPU's
// figures (`target`, measured or datasheet): efficiencies and scales are fractions of the
// target's own peaks and carry over as they are; the fitted time terms (fixed costs, loop and
// per-round terms) carry over in SM clock cycles; a precision the target has no tensor cores
// for takes the fp32 efficiency. The launch costs the fit was made with go with it, in cycles
// too (`launch`): a kernel's fixed cost is its class scale times the launches plus its class
// offset, fitted as one sum, and the launch figure of another `lasnet profile` run moves that
// sum by more than the kernels' timings move (docs/profiler.md, "Calibration that travels").
// The result's provenance is "transferred" and names both.
Profile transfer_calibration(const Profile& calibrated, const Profile& target, std::string name,
                             TransferLaunch launch = TransferLaunch::calibration);

// Resolves `name_or_file`: an existing file path, else NAME.json in the first directory of
// `search_dirs` that has it. The error lists the names that do exist.
std::filesystem::path find_profile(std::string_view name_or_file,
                                   const std::vector<std::filesystem::path>& search_dirs);
// Names (file stems) of the profiles in the search directories, first directory winning.
std::vector<std::filesystem::path> list_profiles(
    const std::vector<std::filesystem::path>& search_dirs);

}  // namespace lasnet::predictor
