// Applying one GPU's calibration to another GPU's profile (`lasnet hw transfer`).
#include <fmt/format.h>

#include <algorithm>

#include "lasnet/predictor/profile.hpp"

namespace lasnet::predictor {

Profile transfer_calibration(const Profile& calibrated, const Profile& target, std::string name,
                             TransferLaunch launch) {
  const Calibration& from = calibrated.calibration;
  // The clock the fitted time terms were measured at: the fit's own record, else the profile's.
  const double from_clock_hz = from.fitted_on ? from.fitted_on->clock_hz : calibrated.clock_hz;
  // A fixed cost or a loop step is a number of SM cycles of the kernel's own work (a pipeline
  // fill, a dependent load, a warp's reduction); on another chip the same code takes about as
  // many of that chip's cycles.
  const double cycles = target.clock_hz / from_clock_hz;
  const auto rescale = [cycles](double s) { return s * cycles; };

  Profile out = target;
  out.name = std::move(name);
  // The launch costs the fit was made with. The fit never sees a launch apart from the rest of
  // a kernel's fixed cost: it prices scale x (body + launches x launch) + offset, and fits the
  // scale and the offset around the launch figure its profile had. Swapping in another
  // profile's figure moves every kernel by launches x scale x the difference, which `lasnet
  // profile`'s empty-kernel queue does not measure as the timed steps pay it: the H100 and the
  // H200 differ by 0.51 us in that figure, 0.14-0.35 us in the same single-kernel steps timed on
  // both (and the H100's protocol profiles measured 1.64-1.88 us over seven runs). Both figures go
  // as a pair (a source without a graph figure leaves graphs priced as streams).
  const bool carried = launch == TransferLaunch::calibration && calibrated.launch_overhead_s > 0;
  if (carried) {
    out.launch_overhead_s = rescale(calibrated.launch_overhead_s);
    out.graph_launch_overhead_s = rescale(calibrated.graph_launch_overhead_s);
  }
  Calibration c = from;
  c.compute_efficiency.clear();
  for (const auto& [precision, efficiency] : from.compute_efficiency) {
    // An efficiency is a fraction of the units that run the precision. Where the target has no
    // tensor cores for it (tf32 on a V100), its FP32 lanes run it, at the fp32 fraction.
    if (precision == Precision::fp32 || target.has_tensor_cores(precision)) {
      c.compute_efficiency[precision] = efficiency;
    } else {
      c.compute_efficiency[precision] = from.compute_efficiency_of(Precision::fp32);
    }
  }
  // A kernel variant's fraction carries over like the precision's, where the target runs the
  // variant's precision on tensor cores (else its FP32 lanes run it: the fp32 fraction above).
  const auto runs_elsewhere = [&](const auto& entry) {
    return entry.first.find(".tf32") != std::string::npos &&
           !target.has_tensor_cores(Precision::tf32);
  };
  std::erase_if(c.gemm_efficiency, runs_elsewhere);
  std::erase_if(c.gemm_memory_efficiency, runs_elsewhere);
  std::erase_if(c.gemm_round, runs_elsewhere);
  for (auto& [variant, round_s] : c.gemm_round) round_s = rescale(round_s);
  for (auto& [key, offset] : c.op_offset_s) offset = rescale(offset);
  c.serial_load_s = rescale(c.serial_load_s);
  c.warp_iteration_s = rescale(c.warp_iteration_s);
  c.pool_iteration_s = rescale(c.pool_iteration_s);
  c.pool_issue_s = rescale(c.pool_issue_s);
  c.load_latency_s = rescale(c.load_latency_s);
  c.l1_wavefront_s = rescale(c.l1_wavefront_s);
  c.gemm_round_s = rescale(c.gemm_round_s);
  // The DRAM efficiency multiplies the target's own effective bandwidth; past the target's
  // fastest measured stream it would not be physical there.
  const double ceiling = target.dram_peak_bytes_per_s > 0
                             ? target.dram_peak_bytes_per_s / target.dram_bandwidth_bytes_per_s
                             : 1.0;
  c.dram_efficiency = std::min(c.dram_efficiency, ceiling);
  out.calibration = std::move(c);

  auto& prov = out.provenance;
  const std::string target_source = prov.source;
  prov.source = "transferred";
  prov.validation.reset();
  prov.notes = fmt::format(
      "calibration of '{}' (fitted on {}, {:.3f} GHz) applied to the {} figures of '{}' ({:.3f} "
      "GHz): time terms rescaled x{:.4f} (SM cycles kept); launch costs {}",
      calibrated.name,
      from.fitted_on && !from.fitted_on->device.empty() ? from.fitted_on->device
                                                        : calibrated.provenance.device_name,
      from_clock_hz / 1e9, target_source, target.name, target.clock_hz / 1e9, cycles,
      carried ? "the calibration's, in cycles" : "the target's");
  return out;
}

}  // namespace lasnet::predictor
