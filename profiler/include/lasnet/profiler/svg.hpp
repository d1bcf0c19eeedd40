#pragma once
// A self-contained SVG scatter plot of predicted against measured latency: log-log axes with
// decade ticks, the y = x line and a +-tolerance band, one colour per series, a tooltip per
// point. Opens in any browser; no scripts, no external resources.
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

// Escapes &, <, >, " and ' for XML text and attributes.
std::string xml_escape(std::string_view text);

// Decade ticks covering [lo, hi] (both > 0): {1e-6, 1e-5, ...}, at least two.
std::vector<double> decade_ticks(double lo, double hi);

// Throws lasnet::Error when a point is not positive (a log axis cannot show it).
std::string render_scatter_svg(const ScatterPlot& plot);

}  // namespace lasnet::profiler
