#pragma once
// The tool's core question as a picture: per stage, the predicted stage latency against density
// for every S that tiles the stage, the dense stage as a reference, and the S the scheduler
// recommends marked where the network runs. `sweep_density` computes the curves through the
// search (so each point is what `lasnet schedule` would price); `render_density_svg` draws them.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lasnet/predictor/profile.hpp"
#include "lasnet/predictor/spec.hpp"

namespace lasnet::scheduler {

struct SweepRequest {
  // Densities of the curves; sorted and deduplicated by the sweep. The marked density is added.
  std::vector<double> densities;
  // Where the recommendation is marked: one uniform density, or nullopt for the spec's own (each
  // stage marked at the mean density of its dynamic blocks).
  std::optional<double> density;
  std::vector<predictor::Fusion> fusions;  // empty = every fusion, best per block (schedule's)
  double granularity_tolerance = 0.02;     // schedule's default
};

// One line of a panel: a candidate S and the stage's latency at each density of the sweep.
struct GranularityCurve {
  std::int64_t granularity = 0;
  std::vector<double> latency_s;  // one per DensitySweep::densities
};

struct StageSweep {
  std::string name;
  std::int64_t blocks = 0;
  std::int64_t dynamic_blocks = 0;       // blocks that can skip positions (others run dense)
  std::int64_t height = 0, width = 0;    // the stage's output map
  double dense_latency_s = 0;            // the dense stage, one stream
  std::vector<GranularityCurve> curves;  // ascending S; S that cannot run are left out
  // The scheduler's choice at the marked density (finest S within the tolerance of the fastest).
  std::int64_t recommended = 0;
  std::int64_t fastest = 0;
  double marked_density = 0;
  double recommended_latency_s = 0;
};

struct DensitySweep {
  std::string network;
  std::string hardware;
  std::int64_t batch = 1;
  predictor::Precision precision = predictor::Precision::fp32;
  predictor::DynamicMode mode = predictor::DynamicMode::spatial;
  std::string fusion;  // "best per block" or the fixed fusion
  double granularity_tolerance = 0.02;
  bool spec_density = false;  // the mark is at the spec's own densities
  std::vector<double> densities;
  std::vector<StageSweep> stages;
};

// One search per density (single stream, the request's fusions and tolerance), plus one at the
// marked density. User errors (no density anywhere) throw lasnet::Error.
DensitySweep sweep_density(const predictor::Spec& spec, const predictor::Profile& hw,
                           const SweepRequest& request);

// One panel per stage, two panels a row: x = density 0..1, y = stage latency (ms) from 0, one
// line per S (legend beside the panel), the dense stage as a dashed black line, the recommended
// S as a diamond with its label. Self-contained SVG with a tooltip on every point.
std::string render_density_svg(const DensitySweep& sweep);

}  // namespace lasnet::scheduler
