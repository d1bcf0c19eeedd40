#pragma once
// The validation plot, self-contained SVG (any browser; no scripts, no external resources): the
// signed error of every kernel against its measured time with the tolerance bands and per-class
// colours, and histograms of the kernel and network errors. The SVG primitives are common/'s
// (lasnet/common/svg.hpp).
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lasnet::profiler {

// Counts of values in bins of width `bin` from `lo` to `hi`; values outside go to `below` and
// `above`, so every value is counted once (NaN is not counted).
struct Histogram {
  double lo = 0, hi = 0, bin = 0;
  std::vector<std::size_t> counts;
  std::size_t below = 0, above = 0;
  std::size_t total() const;
};
Histogram make_histogram(std::span<const double> values, double lo, double hi, double bin);

struct ErrorPoint {
  double measured_s = 0;
  double error = 0;    // (predicted - measured) / measured
  std::string series;  // the kernel class: colour and legend
  std::string label;   // tooltip
};

struct ErrorPlot {
  std::string title;
  std::string summary;  // one line under the title (MAPE, share within the bands)
  std::vector<ErrorPoint> points;
  // Whole-network errors; a histogram of its own when not empty.
  std::vector<double> network_errors;
  std::vector<double> bands = {0.10, 0.15};  // shaded |error| <= band
  double histogram_bin = 0.05;               // bins of the histograms, as fractions
  double histogram_range = 0.5;              // [-range, +range]; beyond goes to the end bars
};

// (a) signed error (%) against measured time (log x axis) with the bands shaded, small
// translucent markers coloured by class (legend with counts), errors beyond the y range drawn
// at its edge and counted; (b) a histogram of the point errors and (c) of the network errors,
// the bands marked. Throws lasnet::Error when a measured time is not positive.
std::string render_error_svg(const ErrorPlot& plot);

}  // namespace lasnet::profiler
