#pragma once
// How well predictions match measurements: signed relative error per pair, and over a set the
// mean absolute percentage error, the worst error, the share within a tolerance and the
// Spearman rank correlation (does the predictor order the choices as the hardware does).
#include <cstddef>
#include <span>
#include <vector>

namespace lasnet::profiler {

// (predicted - measured) / measured; +0.10 means the prediction is 10% too slow.
double relative_error(double predicted, double measured);

// Ranks 1..n, ties sharing the mean of their ranks ({10, 20, 20, 30} -> {1, 2.5, 2.5, 4}).
std::vector<double> ranks(std::span<const double> values);
double pearson(std::span<const double> a, std::span<const double> b);
// Pearson correlation of the ranks. NaN when fewer than two pairs or either side is constant.
double spearman(std::span<const double> a, std::span<const double> b);

struct ErrorMetrics {
  std::size_t count = 0;
  double mape = 0;               // mean |relative error|, as a fraction (0.05 = 5%)
  double max_abs_error = 0;      // the worst |relative error|
  double mean_signed_error = 0;  // bias: > 0 when the predictor is slow on average
  double within_10 = 0;          // share of pairs with |error| <= 10%
  double within_15 = 0;          // share of pairs with |error| <= 15%
  double spearman = 0;           // NaN when undefined (see spearman())
};
// Pairs are (predicted[i], measured[i]); the spans must have equal length. Empty -> count 0.
ErrorMetrics error_metrics(std::span<const double> predicted, std::span<const double> measured);

}  // namespace lasnet::profiler
