#include "lasnet/profiler/svg.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "lasnet/common/error.hpp"

namespace lasnet::profiler {

namespace {

constexpr double width = 760, height = 640;
constexpr double left = 90, right = 180, top = 50, bottom = 70;
constexpr double plot_w = width - left - right, plot_h = height - top - bottom;

// A colour-blind-safe palette (Okabe-Ito), in series order of first appearance.
constexpr std::string_view palette[] = {"#0072B2", "#E69F00", "#009E73", "#CC79A7",
                                        "#D55E00", "#56B4E9", "#F0E442", "#000000"};

std::string format_tick(double value) {
  // 1, 10, 100, 1000 print plainly; beyond that 1e4 style.
  if (value >= 0.01 && value < 1e5) return fmt::format("{:g}", value);
  return fmt::format("{:.0e}", value);
}

}  // namespace

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::vector<double> decade_ticks(double lo, double hi) {
  int first = static_cast<int>(std::floor(std::log10(lo) + 1e-9));
  int last = static_cast<int>(std::ceil(std::log10(hi) - 1e-9));
  if (last <= first) last = first + 1;
  std::vector<double> ticks;
  for (int e = first; e <= last; ++e) ticks.push_back(std::pow(10.0, e));
  return ticks;
}

std::string render_scatter_svg(const ScatterPlot& plot) {
  double lo = 0, hi = 0;
  bool any = false;
  for (const auto& p : plot.points) {
    if (!(p.x > 0) || !(p.y > 0) || !std::isfinite(p.x) || !std::isfinite(p.y)) {
      throw Error(
          fmt::format("scatter plot: point '{}' is not positive ({}, {})", p.label, p.x, p.y));
    }
    const double a = std::min(p.x, p.y) * plot.unit_scale;
    const double b = std::max(p.x, p.y) * plot.unit_scale;
    lo = any ? std::min(lo, a) : a;
    hi = any ? std::max(hi, b) : b;
    any = true;
  }
  if (!any) lo = 1, hi = 10;
  const auto ticks = decade_ticks(lo, hi);
  const double log_lo = std::log10(ticks.front()), log_hi = std::log10(ticks.back());
  const auto sx = [&](double v) {
    return left + (std::log10(v) - log_lo) / (log_hi - log_lo) * plot_w;
  };
  const auto sy = [&](double v) {
    return top + plot_h - (std::log10(v) - log_lo) / (log_hi - log_lo) * plot_h;
  };

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      width, height);
  svg += fmt::format("<text x=\"{}\" y=\"28\" font-size=\"15\" text-anchor=\"middle\">{}</text>\n",
                     left + plot_w / 2, xml_escape(plot.title));
  // Grid, ticks and labels.
  for (const double t : ticks) {
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#ddd\"/>\n"
        "<text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>\n",
        sx(t), top, top + plot_h, top + plot_h + 18, format_tick(t));
    svg += fmt::format(
        "<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"#ddd\"/>\n"
        "<text x=\"{3}\" y=\"{4:.1f}\" text-anchor=\"end\">{5}</text>\n",
        left, sy(t), left + plot_w, left - 8, sy(t) + 4, format_tick(t));
  }
  svg += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>\n", left,
      top, plot_w, plot_h);
  svg +=
      fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{} ({})</text>\n",
                  left + plot_w / 2, height - 25, xml_escape(plot.x_label), xml_escape(plot.unit));
  svg += fmt::format(
      "<text transform=\"translate({},{}) rotate(-90)\" text-anchor=\"middle\">{} ({})</text>\n",
      28, top + plot_h / 2, xml_escape(plot.y_label), xml_escape(plot.unit));
  // y = x and the tolerance band, clipped to the plot square.
  const double a = ticks.front(), b = ticks.back();
  svg += fmt::format(
      "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#333\" "
      "stroke-width=\"1.2\"/>\n",
      sx(a), sy(a), sx(b), sy(b));
  if (plot.band > 0) {
    for (const double f : {1 + plot.band, 1 - plot.band}) {
      // y = f x: from x = a (or y = a) to x = b (or y = b), whichever stays inside.
      const double x0 = std::max(a, a / f), x1 = std::min(b, b / f);
      svg += fmt::format(
          "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#888\" "
          "stroke-dasharray=\"5,4\"/>\n",
          sx(x0), sy(x0 * f), sx(x1), sy(x1 * f));
    }
  }
  // Points, one group per series.
  std::vector<std::string> series;
  for (const auto& p : plot.points) {
    if (std::find(series.begin(), series.end(), p.series) == series.end()) {
      series.push_back(p.series);
    }
  }
  std::map<std::string, std::size_t> counts;
  for (const auto& p : plot.points) ++counts[p.series];
  for (std::size_t s = 0; s < series.size(); ++s) {
    const auto colour = palette[s % std::size(palette)];
    svg += fmt::format("<g fill=\"{}\" fill-opacity=\"0.65\" stroke=\"none\">\n", colour);
    for (const auto& p : plot.points) {
      if (p.series != series[s]) continue;
      svg += fmt::format(
          "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\"><title>{}: measured {:.4g} {}, "
          "predicted {:.4g} {}</title></circle>\n",
          sx(p.x * plot.unit_scale), sy(p.y * plot.unit_scale), xml_escape(p.label),
          p.x * plot.unit_scale, xml_escape(plot.unit), p.y * plot.unit_scale,
          xml_escape(plot.unit));
    }
    svg += "</g>\n";
    const double ly = top + 10 + 22 * static_cast<double>(s);
    svg += fmt::format(
        "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"5\" fill=\"{}\"/>\n"
        "<text x=\"{:.1f}\" y=\"{:.1f}\">{} ({})</text>\n",
        left + plot_w + 20, ly, colour, left + plot_w + 32, ly + 4, xml_escape(series[s]),
        counts[series[s]]);
  }
  const double ly = top + 10 + 22 * static_cast<double>(series.size()) + 10;
  svg += fmt::format(
      "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"#333\"/>\n"
      "<text x=\"{3:.1f}\" y=\"{4:.1f}\">y = x</text>\n",
      left + plot_w + 12, ly, left + plot_w + 28, left + plot_w + 32, ly + 4);
  if (plot.band > 0) {
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"#888\" "
        "stroke-dasharray=\"5,4\"/>\n<text x=\"{3:.1f}\" y=\"{4:.1f}\">&#177;{5:g}%</text>\n",
        left + plot_w + 12, ly + 22, left + plot_w + 28, left + plot_w + 32, ly + 26,
        plot.band * 100);
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace lasnet::profiler
