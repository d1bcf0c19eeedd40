#pragma once
// Self-contained SVG plots of predictions against measurements (any browser; no scripts, no
// external resources): the validation plot (signed error against measured time with the
// tolerance bands, per-class colours, and histograms of the errors), and a predicted-vs-measured
// scatter plot on log-log axes. The SVG primitives are common/'s (lasnet/common/svg.hpp).
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lasnet::profiler {

struct ScatterPoint {
  double x = 0;        // measured
  double y = 0;        // predicted
  std::string series;  // "op", "block", "network": the legend and the colour
  std::string label;   // tooltip
};

struct ScatterPlot {
  std::string title;
  std::string x_label = "measured latency";
  std::string y_label = "predicted latency";
  double unit_scale = 1e6;  // data are seconds; axes print microseconds
  std::string unit = "us";
  double band = 0.10;  // draws y = x * (1 +- band); 0 for none
  std::vector<ScatterPoint> points;
};

// Escapes &, <, >, " and ' for XML text and attributes (svg::escape).
std::string xml_escape(std::string_view text);

// Decade ticks covering [lo, hi] (both > 0): {1e-6, 1e-5, ...}, at least two (svg::decade_ticks).
std::vector<double> decade_ticks(double lo, double hi);

// Throws lasnet::Error when a point is not positive (a log axis cannot show it).
std::string render_scatter_svg(const ScatterPlot& plot);

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
