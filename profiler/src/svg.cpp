#include "lasnet/profiler/svg.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "lasnet/common/error.hpp"
#include "lasnet/common/svg.hpp"

namespace lasnet::profiler {

std::size_t Histogram::total() const {
  std::size_t n = below + above;
  for (const auto c : counts) n += c;
  return n;
}

Histogram make_histogram(std::span<const double> values, double lo, double hi, double bin) {
  Histogram h;
  h.lo = lo;
  h.hi = hi;
  h.bin = bin;
  const auto bins = static_cast<std::size_t>(std::max(1.0, std::round((hi - lo) / bin)));
  h.counts.assign(bins, 0);
  for (const double v : values) {
    if (std::isnan(v)) continue;
    if (v < lo) {
      ++h.below;
    } else if (v > hi) {
      ++h.above;
    } else {
      // hi itself falls in the last bin: the range is closed on both ends.
      const auto k = std::min(bins - 1, static_cast<std::size_t>((v - lo) / bin));
      ++h.counts[k];
    }
  }
  return h;
}

namespace {

// Greys for the bands: the narrower band is darker, so both read on white and under points.
constexpr std::string_view band_fill[] = {"#c8c8c8", "#e3e3e3", "#f0f0f0"};

std::string percent_text(double fraction) {
  return fmt::format("{:g}%", 100 * fraction);
}

// One histogram panel: bars for the bins, end bars for what falls outside, the bands behind.
void draw_histogram(svg::Writer& w, const Histogram& h, const std::vector<double>& bands,
                    double box_left, double box_top, double box_w, double box_h,
                    std::string_view title, std::string_view unit) {
  const double lo_pct = 100 * (h.lo - h.bin), hi_pct = 100 * (h.hi + h.bin);
  std::size_t peak = std::max(h.below, h.above);
  for (const auto c : h.counts) peak = std::max(peak, c);
  // Headroom over the tallest bar, so that it never meets the frame.
  const auto y_ticks =
      svg::nice_ticks(0, 1.06 * static_cast<double>(std::max<std::size_t>(peak, 1)), 5);
  const svg::Axis x{lo_pct, hi_pct, box_left, box_left + box_w, false};
  const svg::Axis y{0, y_ticks.back(), box_top + box_h, box_top, false};
  w.text(box_left, box_top - 14, title, "font-size=\"16\" font-weight=\"bold\"");
  // Bands first, widest first, so the narrower one shows on top.
  for (std::size_t b = bands.size(); b-- > 0;) {
    const double x0 = x(-100 * bands[b]), x1 = x(100 * bands[b]);
    w.rect(x0, box_top, x1 - x0, box_h,
           fmt::format("fill=\"{}\" class=\"band\" data-band=\"{:g}\"",
                       band_fill[std::min(b, std::size(band_fill) - 1)], bands[b]));
  }
  std::vector<double> x_ticks;
  const double step = h.hi - h.lo > 0.6 ? 20 : 10;
  for (double t = -step * std::floor(-100 * h.lo / step); t <= 100 * h.hi + 1e-9; t += step) {
    x_ticks.push_back(std::abs(t) < 1e-9 ? 0 : t);
  }
  w.axes(x, y, x_ticks, y_ticks, "prediction error (%)", std::string(unit));
  w.open_group(
      fmt::format("class=\"histogram\" data-of=\"{}\" data-total=\"{}\"", unit, h.total()));
  const auto bar = [&](double from_pct, double to_pct, std::size_t count, std::string_view what,
                       std::string_view fill) {
    const double x0 = x(from_pct), x1 = x(to_pct), y0 = y(static_cast<double>(count));
    w.raw(fmt::format(
        "<rect class=\"bar\" data-count=\"{}\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" "
        "height=\"{:.1f}\" fill=\"{}\" stroke=\"white\" stroke-width=\"1\"><title>{}: {} "
        "{}</title></rect>\n",
        count, x0, y0, x1 - x0, box_top + box_h - y0, fill, svg::escape(what), count, unit));
  };
  for (std::size_t k = 0; k < h.counts.size(); ++k) {
    const double a = h.lo + h.bin * static_cast<double>(k), b = a + h.bin;
    bar(100 * a, 100 * b, h.counts[k], fmt::format("{:+g}% to {:+g}%", 100 * a, 100 * b),
        "#0072B2");
  }
  bar(lo_pct, 100 * h.lo, h.below, fmt::format("below {:+g}%", 100 * h.lo), "#D55E00");
  bar(100 * h.hi, hi_pct, h.above, fmt::format("above {:+g}%", 100 * h.hi), "#D55E00");
  w.close_group();
  // The band edges again over the bars, where the shading behind them cannot show.
  for (const double band : bands) {
    for (const double sign : {1.0, -1.0}) {
      w.line(x(sign * 100 * band), box_top, x(sign * 100 * band), box_top + box_h,
             "stroke=\"#333\" stroke-width=\"1\" stroke-dasharray=\"4,3\"");
    }
  }
  const auto end_label = [&](double at_pct, std::size_t count, std::string_view text,
                             std::string_view anchor) {
    if (count == 0) return;  // an empty end bar needs no label
    w.text(x(at_pct), y(static_cast<double>(count)) - 6, fmt::format("{} {}", text, count),
           fmt::format("font-size=\"12\" text-anchor=\"{}\" fill=\"#D55E00\"", anchor));
  };
  end_label(lo_pct, h.below, fmt::format("<{:g}%:", 100 * h.lo), "start");
  end_label(hi_pct, h.above, fmt::format(">{:+g}%:", 100 * h.hi), "end");
}

}  // namespace

std::string render_error_svg(const ErrorPlot& plot) {
  constexpr double width = 1260, height = 990;
  constexpr double a_left = 100, a_top = 118, a_w = 800, a_h = 400;
  constexpr double b_top = a_top + a_h + 124, b_h = 260;

  std::vector<double> measured_us, errors;
  for (const auto& p : plot.points) {
    if (!(p.measured_s > 0) || !std::isfinite(p.measured_s) || !std::isfinite(p.error)) {
      throw Error(fmt::format("error plot: point '{}' has no positive measured time ({} s)",
                              p.label, p.measured_s));
    }
    measured_us.push_back(p.measured_s * 1e6);
    errors.push_back(p.error);
  }
  // The y range: a round value that holds 98% of the errors; the rest sit on its edge.
  std::vector<double> magnitudes;
  for (const double e : errors) magnitudes.push_back(std::abs(e) * 100);
  std::sort(magnitudes.begin(), magnitudes.end());
  const double q98 =
      magnitudes.empty() ? 0 : magnitudes[static_cast<std::size_t>(0.98 * (magnitudes.size() - 1))];
  double limit = 200;
  for (const double candidate : {20.0, 30.0, 40.0, 50.0, 75.0, 100.0, 150.0}) {
    if (q98 <= candidate) {
      limit = candidate;
      break;
    }
  }
  const double x_lo =
      measured_us.empty() ? 1 : *std::min_element(measured_us.begin(), measured_us.end());
  const double x_hi =
      measured_us.empty() ? 10 : *std::max_element(measured_us.begin(), measured_us.end());
  const auto x_ticks = svg::decade_ticks(x_lo, x_hi);
  const svg::Axis x{x_ticks.front(), x_ticks.back(), a_left, a_left + a_w, true};
  const svg::Axis y{-limit, limit, a_top + a_h, a_top, false};

  svg::Writer w(width, height, 13);
  w.text(a_left - 70, 34, plot.title, "font-size=\"20\" font-weight=\"bold\"");
  w.text(a_left - 70, 62, plot.summary, "font-size=\"15\"");
  w.text(a_left, a_top - 14, "(a) error of every kernel against its measured time",
         "font-size=\"16\" font-weight=\"bold\"");
  for (std::size_t b = plot.bands.size(); b-- > 0;) {
    const double y0 = y(100 * plot.bands[b]), y1 = y(-100 * plot.bands[b]);
    w.rect(a_left, y0, a_w, y1 - y0,
           fmt::format("fill=\"{}\" class=\"band\" data-band=\"{:g}\"",
                       band_fill[std::min(b, std::size(band_fill) - 1)], plot.bands[b]));
  }
  std::vector<double> y_ticks;
  const double y_step = limit <= 40 ? 10 : limit <= 100 ? 25 : 50;
  for (double t = -limit; t <= limit + 1e-9; t += y_step) y_ticks.push_back(t);
  w.axes(x, y, x_ticks, y_ticks, "measured kernel time (\u00B5s, log scale)",
         "prediction error (%)");
  w.line(a_left, y(0), a_left + a_w, y(0), "stroke=\"#333\" stroke-width=\"1\"");
  for (const double band : plot.bands) {
    for (const double sign : {1.0, -1.0}) {
      w.text(a_left + a_w + 6, y(sign * 100 * band) + 4.5,
             fmt::format("{}{}", sign > 0 ? "+" : "\u2212", percent_text(band)),
             "font-size=\"12\" fill=\"#444\"");
    }
  }

  // Classes by size, the largest drawn first (underneath); beyond the palette, "other".
  std::map<std::string, std::size_t> sizes;
  for (const auto& p : plot.points) ++sizes[p.series];
  std::vector<std::pair<std::string, std::size_t>> classes(sizes.begin(), sizes.end());
  std::stable_sort(classes.begin(), classes.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  constexpr std::size_t max_classes = 8;
  std::map<std::string, std::size_t> slot;
  for (std::size_t i = 0; i < classes.size(); ++i) {
    slot[classes[i].first] = std::min(i, max_classes - 1);
  }
  std::vector<std::pair<std::string, std::size_t>> legend;
  for (std::size_t i = 0; i < classes.size(); ++i) {
    if (i < max_classes - 1 || classes.size() == max_classes) {
      legend.push_back(classes[i]);
    } else if (i == max_classes - 1) {
      legend.emplace_back("other", classes[i].second);
    } else {
      legend.back().second += classes[i].second;
    }
  }
  const auto slot_colour = [&](std::size_t s) {
    return s == max_classes - 1 && classes.size() > max_classes ? std::string_view("#7f7f7f")
                                                                : svg::colour(s);
  };
  std::size_t beyond = 0;
  for (std::size_t s = 0; s < legend.size(); ++s) {
    w.open_group(fmt::format("class=\"points\" data-class=\"{}\" fill=\"{}\" fill-opacity=\"0.5\"",
                             svg::escape(legend[s].first), slot_colour(s)));
    for (const auto& p : plot.points) {
      if (slot.at(p.series) != s) continue;
      const double pct = 100 * p.error;
      const bool out = std::abs(pct) > limit;
      beyond += out ? 1 : 0;
      w.circle(
          x(p.measured_s * 1e6), y(std::clamp(pct, -limit, limit)), out ? 3 : 2.2,
          out ? "stroke=\"#000\" stroke-width=\"0.6\"" : "",
          fmt::format("{}: measured {:.4g} us, error {:+.1f}%", p.label, p.measured_s * 1e6, pct));
    }
    w.close_group();
  }

  // Legend: classes with their counts, the bands, what sits on the edge.
  const double gx = a_left + a_w + 58;
  double gy = a_top + 6;
  w.text(gx, gy, "kernel class (count)", "font-size=\"14\" font-weight=\"bold\"");
  gy += 22;
  for (std::size_t s = 0; s < legend.size(); ++s) {
    w.circle(gx + 6, gy - 4.5, 5, fmt::format("fill=\"{}\"", slot_colour(s)));
    w.raw(fmt::format("<text class=\"legend\" x=\"{:.1f}\" y=\"{:.1f}\">{} ({})</text>\n", gx + 18,
                      gy, svg::escape(legend[s].first), legend[s].second));
    gy += 20;
  }
  gy += 8;
  for (std::size_t b = 0; b < plot.bands.size(); ++b) {
    w.rect(gx, gy - 11, 14, 14,
           fmt::format("fill=\"{}\" stroke=\"#999\"",
                       band_fill[std::min(b, std::size(band_fill) - 1)]));
    w.text(gx + 22, gy, fmt::format("within \u00B1{}", percent_text(plot.bands[b])));
    gy += 20;
  }
  if (beyond > 0) {
    gy += 6;
    w.circle(gx + 6, gy - 4.5, 3, "fill=\"#999\" stroke=\"#000\" stroke-width=\"0.6\"");
    w.text(gx + 18, gy, fmt::format("{} beyond \u00B1{:g}%,", beyond, limit));
    w.text(gx + 18, gy + 17, "drawn on the edge");
  }

  // The histograms.
  const double hr = plot.histogram_range, hb = plot.histogram_bin;
  const auto kernels = make_histogram(errors, -hr, hr, hb);
  if (plot.network_errors.empty()) {
    draw_histogram(w, kernels, plot.bands, a_left, b_top, a_w, b_h,
                   "(b) distribution of the kernel errors", "kernels");
  } else {
    constexpr double half = 500;
    draw_histogram(w, kernels, plot.bands, a_left, b_top, half, b_h,
                   "(b) distribution of the kernel errors", "kernels");
    draw_histogram(w, make_histogram(plot.network_errors, -hr, hr, hb), plot.bands,
                   a_left + half + 130, b_top, width - (a_left + half + 130) - 40, b_h,
                   "(c) distribution of the network errors", "networks");
  }
  return w.finish();
}

}  // namespace lasnet::profiler
