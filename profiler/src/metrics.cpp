#include "lasnet/profiler/metrics.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numeric>

namespace lasnet::profiler {

double relative_error(double predicted, double measured) {
  assert(measured > 0);
  return (predicted - measured) / measured;
}

std::vector<double> ranks(std::span<const double> values) {
  std::vector<std::size_t> order(values.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return values[a] < values[b]; });
  std::vector<double> result(values.size());
  std::size_t i = 0;
  while (i < order.size()) {
    std::size_t j = i;
    while (j + 1 < order.size() && values[order[j + 1]] == values[order[i]]) ++j;
    // Positions i..j (0-based) hold equal values: each gets the mean rank (i+1 + j+1) / 2.
    const double mean_rank = (static_cast<double>(i + j) + 2.0) / 2.0;
    for (std::size_t k = i; k <= j; ++k) result[order[k]] = mean_rank;
    i = j + 1;
  }
  return result;
}

double pearson(std::span<const double> a, std::span<const double> b) {
  assert(a.size() == b.size());
  const auto nan = std::numeric_limits<double>::quiet_NaN();
  if (a.size() < 2) return nan;
  const double n = static_cast<double>(a.size());
  const double mean_a = std::accumulate(a.begin(), a.end(), 0.0) / n;
  const double mean_b = std::accumulate(b.begin(), b.end(), 0.0) / n;
  double cov = 0, var_a = 0, var_b = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    cov += (a[i] - mean_a) * (b[i] - mean_b);
    var_a += (a[i] - mean_a) * (a[i] - mean_a);
    var_b += (b[i] - mean_b) * (b[i] - mean_b);
  }
  if (var_a == 0 || var_b == 0) return nan;
  return cov / std::sqrt(var_a * var_b);
}

double spearman(std::span<const double> a, std::span<const double> b) {
  const auto rank_a = ranks(a);
  const auto rank_b = ranks(b);
  return pearson(rank_a, rank_b);
}

ErrorMetrics error_metrics(std::span<const double> predicted, std::span<const double> measured) {
  assert(predicted.size() == measured.size());
  ErrorMetrics m;
  m.count = predicted.size();
  if (m.count == 0) {
    m.spearman = std::numeric_limits<double>::quiet_NaN();
    return m;
  }
  std::size_t within_10 = 0, within_15 = 0;
  double sum_abs = 0, sum_signed = 0;
  for (std::size_t i = 0; i < m.count; ++i) {
    const double e = relative_error(predicted[i], measured[i]);
    sum_abs += std::fabs(e);
    sum_signed += e;
    m.max_abs_error = std::max(m.max_abs_error, std::fabs(e));
    // A hair of slack so that an error of exactly 10% (up to rounding) counts as within.
    if (std::fabs(e) <= 0.10 + 1e-12) ++within_10;
    if (std::fabs(e) <= 0.15 + 1e-12) ++within_15;
  }
  const double n = static_cast<double>(m.count);
  m.mape = sum_abs / n;
  m.mean_signed_error = sum_signed / n;
  m.within_10 = static_cast<double>(within_10) / n;
  m.within_15 = static_cast<double>(within_15) / n;
  m.spearman = spearman(predicted, measured);
  return m;
}

}  // namespace lasnet::profiler
