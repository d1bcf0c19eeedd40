#include "lasnet/profiler/statistics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <numeric>

#include "lasnet/common/error.hpp"

namespace lasnet::profiler {

double Summary::relative_spread() const {
  if (runs < 2 || median <= 0) return 0;
  return (p90 - p10) / median;
}

Summary Summary::inverted(double numerator) const {
  Summary out;
  out.runs = runs;
  out.median = numerator / median;
  out.min = numerator / max;
  out.max = numerator / min;
  out.p10 = numerator / p90;
  out.p90 = numerator / p10;
  // The mean and standard deviation do not invert exactly; first-order (delta method).
  out.mean = numerator / mean;
  out.stddev = numerator * stddev / (mean * mean);
  return out;
}

double quantile_of_sorted(std::span<const double> sorted, double q) {
  assert(!sorted.empty());
  assert(q >= 0 && q <= 1);
  const double position = q * static_cast<double>(sorted.size() - 1);
  const auto below = static_cast<std::size_t>(std::floor(position));
  const std::size_t above = std::min(below + 1, sorted.size() - 1);
  const double fraction = position - static_cast<double>(below);
  return sorted[below] + fraction * (sorted[above] - sorted[below]);
}

Summary summarize(std::span<const double> samples) {
  if (samples.empty()) throw Error("no samples to summarise");
  for (const double x : samples) {
    if (!std::isfinite(x)) throw Error(fmt::format("a sample is not finite ({})", x));
  }
  std::vector<double> sorted(samples.begin(), samples.end());
  std::sort(sorted.begin(), sorted.end());
  Summary s;
  s.runs = sorted.size();
  s.min = sorted.front();
  s.max = sorted.back();
  s.median = quantile_of_sorted(sorted, 0.5);
  s.p10 = quantile_of_sorted(sorted, 0.1);
  s.p90 = quantile_of_sorted(sorted, 0.9);
  s.mean = std::accumulate(sorted.begin(), sorted.end(), 0.0) / static_cast<double>(s.runs);
  if (s.runs > 1) {
    double squares = 0;
    for (const double x : sorted) squares += (x - s.mean) * (x - s.mean);
    s.stddev = std::sqrt(squares / static_cast<double>(s.runs - 1));
  }
  return s;
}

std::vector<double> collect_samples(const SamplingPlan& plan,
                                    const std::function<double()>& run_once) {
  assert(plan.min_runs >= 1 && plan.max_runs >= plan.min_runs);
  for (int i = 0; i < plan.warmup_runs; ++i) run_once();
  std::vector<double> samples;
  double total_s = 0;
  while (static_cast<int>(samples.size()) < plan.max_runs) {
    const double t = run_once();
    samples.push_back(t);
    total_s += t;
    const bool enough_runs = static_cast<int>(samples.size()) >= plan.min_runs;
    if ((enough_runs && total_s >= plan.min_time_s) || total_s >= plan.max_time_s) break;
  }
  return samples;
}

bool is_noisy(const Summary& summary, const SamplingPlan& plan) {
  return summary.relative_spread() > plan.noise_threshold;
}

}  // namespace lasnet::profiler
