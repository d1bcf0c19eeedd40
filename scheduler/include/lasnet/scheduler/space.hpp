#pragma once
// The search space of a schedule: a product of named dimensions.
//   granularity  S per stage (every S that tiles the stage's map, or what the user fixed)
//   fusion       per dynamic block, one of the fusion combinations
//   streams      one stream count for the network (1..k)
//   density      the uniform density (one value, or a scanned grid for a latency budget)
// A point of the space is a Candidate; whether it can run is a value (Feasibility), never an
// exception: the search proposes candidates and the predictor reports their latency.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lasnet/predictor/network.hpp"
#include "lasnet/predictor/spec.hpp"

namespace lasnet::scheduler {

// The eight combinations of masker+conv1, gather-into-conv1 and conv3+scatter-add, "none"
// first and "all" (masker,gather,scatter) eighth, then the four union forms (conv1 once per
// needed pixel, with each gather/scatter choice; never with masker). Ties in the search go to
// the earlier, less fused, entry, so a block that ignores union keeps its plain form.
std::vector<predictor::Fusion> all_fusions();

struct SearchSpace {
  std::vector<std::vector<std::int64_t>> granularity;  // per stage, ascending
  std::vector<predictor::Fusion> fusion;
  std::vector<std::int64_t> streams;  // ascending
  std::vector<double> density;        // ascending
};

// Default dimensions for `spec`: every fitting S per stage in spatial mode (the stage's map size
// in layer mode, 0 in channel mode), all fusions, streams 1..max_streams, the given densities.
SearchSpace default_space(const predictor::Spec& spec, std::int64_t max_streams,
                          std::vector<double> densities);

// Number of whole-network plans in the product (fusion counted per dynamic block), as a double
// because it overflows any integer for deep networks. It is what an exhaustive search would
// evaluate; the scheduler evaluates per block instead (docs/scheduler.md).
double plan_count(const predictor::Spec& spec, const SearchSpace& space);

// One point of a block's space.
struct Candidate {
  std::int64_t granularity = 0;
  predictor::Fusion fusion;
  std::int64_t streams = 1;
  double density = 1;
};

struct Feasibility {
  bool ok = true;
  std::string reason;  // empty when ok
};

// Cheap check before any prediction: S must tile the stage's map (spatial mode), streams >= 1,
// density in [0, 1].
Feasibility check_candidate(const predictor::Spec& spec, std::size_t stage,
                            const Candidate& candidate);

}  // namespace lasnet::scheduler
