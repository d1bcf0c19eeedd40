#include "lasnet/scheduler/space.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace lasnet::scheduler {

std::vector<predictor::Fusion> all_fusions() {
  std::vector<predictor::Fusion> out;
  // Ordered by how many kernels are fused, then masker < gather < scatter.
  for (int fused = 0; fused <= 3; ++fused) {
    for (int bits = 0; bits < 8; ++bits) {
      const bool masker = (bits & 4) != 0;
      const bool gather = (bits & 2) != 0;
      const bool scatter = (bits & 1) != 0;
      if (static_cast<int>(masker) + static_cast<int>(gather) + static_cast<int>(scatter) !=
          fused) {
        continue;
      }
      out.push_back(predictor::Fusion{masker, gather, scatter});
    }
  }
  // Then the union form with each gather/scatter choice (never with masker): after the others,
  // so that a block that ignores it (no 1x1 first conv) keeps the plain form on the tie.
  for (int bits = 0; bits < 4; ++bits) {
    out.push_back(predictor::Fusion{false, (bits & 2) != 0, (bits & 1) != 0, true});
  }
  return out;
}

SearchSpace default_space(const predictor::Spec& spec, std::int64_t max_streams,
                          std::vector<double> densities) {
  SearchSpace space;
  const auto geometry = predictor::stage_geometry(spec);
  for (std::size_t s = 0; s < spec.stages.size(); ++s) {
    switch (spec.dynamic.mode) {
      case predictor::DynamicMode::spatial:
        space.granularity.push_back(predictor::granularity_candidates(geometry[s]));
        break;
      case predictor::DynamicMode::layer:
        space.granularity.push_back({std::max(geometry[s].out_height, geometry[s].out_width)});
        break;
      case predictor::DynamicMode::channel:
        space.granularity.push_back({0});
        break;
    }
  }
  space.fusion = all_fusions();
  for (std::int64_t k = 1; k <= max_streams; ++k) space.streams.push_back(k);
  std::sort(densities.begin(), densities.end());
  space.density = std::move(densities);
  return space;
}

double plan_count(const predictor::Spec& spec, const SearchSpace& space) {
  double count = static_cast<double>(space.streams.size() * space.density.size());
  for (std::size_t s = 0; s < spec.stages.size() && s < space.granularity.size(); ++s) {
    count *= static_cast<double>(space.granularity[s].size());
    for (std::int64_t i = 0; i < spec.stages[s].blocks; ++i) {
      if (predictor::block_can_be_dynamic(spec, s, static_cast<std::size_t>(i))) {
        count *= static_cast<double>(space.fusion.size());
      }
    }
  }
  return count;
}

Feasibility check_candidate(const predictor::Spec& spec, std::size_t stage,
                            const Candidate& candidate) {
  if (candidate.streams < 1) return {false, fmt::format("{} streams", candidate.streams)};
  if (!(candidate.density >= 0 && candidate.density <= 1)) {
    return {false, fmt::format("density {} is outside [0, 1]", candidate.density)};
  }
  if (spec.dynamic.mode != predictor::DynamicMode::spatial) return {};
  const auto g = predictor::stage_geometry(spec).at(stage);
  const auto s = candidate.granularity;
  // An S that does not divide the map runs with partial border patches (the predictor prices
  // them); only one past the map's longer side has no patch grid.
  if (s <= 0 || s > std::max(g.out_height, g.out_width)) {
    return {false, fmt::format("S={} does not fit the {}x{} map", s, g.out_height, g.out_width)};
  }
  return {};
}

}  // namespace lasnet::scheduler
