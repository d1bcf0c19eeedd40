#pragma once
// Summaries of repeated measurements and the sampling loop that collects them. Every figure the
// profiler reports is a median with its spread; a figure whose spread exceeds the noise
// threshold is flagged, not hidden. Plain C++: the loop takes the timed run as a function, so
// it is unit-tested with a fake clock.
#include <cstddef>
#include <functional>
#include <span>
#include <vector>

namespace lasnet::profiler {

// Order statistics of a sample set, in the samples' unit.
struct Summary {
  std::size_t runs = 0;
  double median = 0;
  double mean = 0;
  double min = 0;
  double max = 0;
  double stddev = 0;  // sample standard deviation (n - 1)
  double p10 = 0;
  double p90 = 0;

  // (p90 - p10) / median: the spread printed next to every figure (0 for one run).
  double relative_spread() const;
  // The summary of f(x) for a decreasing f (rate = work / time): quantiles swap ends.
  Summary inverted(double numerator) const;
};

// Quantile q in [0, 1] of sorted samples, linear between closest ranks (R's type 7).
double quantile_of_sorted(std::span<const double> sorted, double q);
// Throws lasnet::Error on an empty or non-finite sample set.
Summary summarize(std::span<const double> samples);

// When a sampling loop stops: after `warmup_runs` untimed runs, at least `min_runs` timed runs
// and `min_time_s` of measured time, at most `max_runs` runs or `max_time_s` of measured time.
struct SamplingPlan {
  int warmup_runs = 3;
  int min_runs = 15;
  int max_runs = 500;
  double min_time_s = 0.02;
  double max_time_s = 2.0;
  // A figure whose relative spread exceeds this is flagged noisy.
  double noise_threshold = 0.10;
};

// Runs `run_once` (which returns the seconds one run took) per the plan; the samples, in order.
std::vector<double> collect_samples(const SamplingPlan& plan,
                                    const std::function<double()>& run_once);

bool is_noisy(const Summary& summary, const SamplingPlan& plan);

}  // namespace lasnet::profiler
