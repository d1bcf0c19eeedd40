#include "lasnet/scheduler/density_plot.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "lasnet/common/svg.hpp"
#include "lasnet/predictor/model.hpp"
#include "lasnet/predictor/network.hpp"
#include "lasnet/scheduler/search.hpp"

namespace lasnet::scheduler {

namespace {

using predictor::Spec;

// The density a stage's mark stands at when the spec gives its own: the mean over the blocks
// that can skip positions (the others run dense whatever the spec says).
double spec_stage_density(const Spec& spec, std::size_t stage) {
  const auto& densities = spec.dynamic.density.at(stage);
  double sum = 0;
  std::size_t n = 0;
  for (std::size_t b = 0; b < densities.size(); ++b) {
    if (!predictor::block_can_be_dynamic(spec, stage, b)) continue;
    sum += densities[b];
    ++n;
  }
  if (n == 0) {
    for (const double d : densities) sum += d;
    n = densities.size();
  }
  return n ? sum / static_cast<double>(n) : 1.0;
}

std::string curve_label(std::int64_t granularity) {
  return granularity == 0 ? std::string("channels") : fmt::format("S={}", granularity);
}

}  // namespace

DensitySweep sweep_density(const Spec& spec, const predictor::Profile& hw,
                           const SweepRequest& request) {
  SearchRequest base;
  base.max_streams = 1;
  base.fusions = request.fusions;
  base.granularity_tolerance = request.granularity_tolerance;

  SearchRequest at = base;
  at.density = request.density;
  const Plan chosen = search(spec, hw, at);

  DensitySweep out;
  out.network = spec.name;
  out.hardware = hw.name;
  out.batch = spec.batch;
  out.precision = spec.precision;
  out.mode = spec.dynamic.mode;
  out.fusion = request.fusions.size() == 1 ? predictor::to_string(request.fusions.front())
                                           : std::string("best per block");
  out.granularity_tolerance = request.granularity_tolerance;
  out.spec_density = !request.density;

  std::vector<double> densities = request.densities;
  const auto geometry = predictor::stage_geometry(spec);
  out.stages.resize(spec.stages.size());
  for (std::size_t i = 0; i < spec.stages.size(); ++i) {
    auto& s = out.stages[i];
    s.name = spec.stages[i].name;
    s.blocks = spec.stages[i].blocks;
    for (std::int64_t b = 0; b < s.blocks; ++b) {
      if (predictor::block_can_be_dynamic(spec, i, static_cast<std::size_t>(b))) ++s.dynamic_blocks;
    }
    s.height = geometry.at(i).out_height;
    s.width = geometry.at(i).out_width;
    s.marked_density = request.density ? *request.density : spec_stage_density(spec, i);
    densities.push_back(s.marked_density);
    const StagePlan& plan = chosen.stages.at(i);
    s.recommended = plan.granularity;
    s.fastest = plan.fastest_granularity;
    for (const auto& option : plan.options) {
      if (option.granularity == plan.granularity) s.recommended_latency_s = option.latency_s;
    }
  }
  std::sort(densities.begin(), densities.end());
  densities.erase(std::unique(densities.begin(), densities.end(),
                              [](double a, double b) { return std::abs(a - b) < 1e-9; }),
                  densities.end());
  out.densities = densities;

  for (const double d : densities) {
    SearchRequest r = base;
    r.density = d;
    const Plan plan = search(spec, hw, r);
    for (std::size_t i = 0; i < out.stages.size(); ++i) {
      auto& curves = out.stages[i].curves;
      for (const auto& option : plan.stages.at(i).options) {
        if (!option.feasibility.ok) continue;
        auto it = std::find_if(curves.begin(), curves.end(), [&](const GranularityCurve& c) {
          return c.granularity == option.granularity;
        });
        if (it == curves.end()) {
          curves.push_back({option.granularity, {}});
          it = std::prev(curves.end());
        }
        it->latency_s.push_back(option.latency_s);
      }
    }
  }
  for (auto& s : out.stages) {
    std::sort(s.curves.begin(), s.curves.end(),
              [](const auto& a, const auto& b) { return a.granularity < b.granularity; });
  }

  // The dense reference, priced as `predict` prices the dense network (one stream).
  predictor::PredictionCache cache(hw);
  const auto dense = predictor::predict_network(
      predictor::build_network(spec, predictor::Execution::dense), spec, hw, cache);
  for (auto& s : out.stages) {
    for (const auto& stage : dense.stages) {
      if (stage.name == s.name) s.dense_latency_s = stage.latency_s;
    }
  }
  return out;
}

std::string render_density_svg(const DensitySweep& sweep) {
  // Panel geometry (pixels): a two-line title above the plot (the stage, then the
  // recommendation, so that no label sits on the curves), room for tick values and axis titles
  // on the left and below, and the legend to the right so that it never covers a line.
  constexpr double plot_w = 420, plot_h = 270;
  constexpr double margin_left = 82, legend_w = 150, panel_gap = 24;
  constexpr double panel_title_h = 56, margin_bottom = 58;
  constexpr double panel_w = margin_left + plot_w + legend_w;
  constexpr double panel_h = panel_title_h + plot_h + margin_bottom;
  constexpr double header_h = 84;
  const std::size_t n = sweep.stages.size();
  const std::size_t columns = n > 1 ? 2 : 1;
  const std::size_t rows = (n + columns - 1) / columns;
  const double width = panel_gap + static_cast<double>(columns) * (panel_w + panel_gap);
  const double height = header_h + static_cast<double>(rows) * panel_h + 16;

  // One colour per S across the whole figure, so S=7 looks the same in every panel.
  std::set<std::int64_t> all_s;
  for (const auto& s : sweep.stages) {
    for (const auto& c : s.curves) all_s.insert(c.granularity);
  }
  std::map<std::int64_t, std::size_t> series_of;
  for (const auto s : all_s) series_of.emplace(s, series_of.size());
  const auto stroke = [&](std::int64_t granularity, double stroke_width) {
    const std::size_t series = series_of.count(granularity) ? series_of.at(granularity) : 0;
    const auto d = svg::dash(series);
    return fmt::format("stroke=\"{}\" stroke-width=\"{}\"{}", svg::colour(series), stroke_width,
                       d.empty() ? "" : fmt::format(" stroke-dasharray=\"{}\"", d));
  };
  const auto colour_of = [&](std::int64_t granularity) {
    return svg::colour(series_of.count(granularity) ? series_of.at(granularity) : 0);
  };
  const auto diamond = [](double cx, double cy, double r, std::string_view fill) {
    return fmt::format(
        "<path d=\"M {:.1f} {:.1f} l {r} {r} l -{r} {r} l -{r} -{r} z\" fill=\"{}\" "
        "stroke=\"#000\" stroke-width=\"1.5\"/>\n",
        cx, cy - r, fill, fmt::arg("r", r));
  };

  // Milliseconds, or microseconds where no stage takes one; one unit for the whole figure.
  double slowest_s = 0;
  for (const auto& s : sweep.stages) {
    slowest_s = std::max(slowest_s, s.dense_latency_s);
    for (const auto& c : s.curves) {
      for (const double v : c.latency_s) slowest_s = std::max(slowest_s, v);
    }
  }
  const bool micro = slowest_s < 1e-3;

  svg::Writer w(width, height, 13);
  w.text(panel_gap, 30,
         fmt::format("{} on {}: predicted stage latency against density", sweep.network,
                     sweep.hardware),
         "font-size=\"20\" font-weight=\"bold\"");
  const std::string mark_at =
      sweep.spec_density
          ? std::string("the spec's density")
          : fmt::format("density {:g}",
                        sweep.stages.empty() ? 0.0 : sweep.stages.front().marked_density);
  w.text(
      panel_gap, 54,
      fmt::format("batch {}, {}, {} mode, fusion: {}, one stream. Dashed black: the dense stage.",
                  sweep.batch, predictor::to_string(sweep.precision),
                  predictor::to_string(sweep.mode), sweep.fusion),
      "font-size=\"14\"");
  w.text(
      panel_gap, 74,
      fmt::format("\u25C6 the S `lasnet schedule` recommends at {}: the finest S within {:g}% of "
                  "the fastest.",
                  mark_at, 100 * sweep.granularity_tolerance),
      "font-size=\"14\"");

  for (std::size_t p = 0; p < n; ++p) {
    const auto& stage = sweep.stages[p];
    const double x0 = panel_gap + static_cast<double>(p % columns) * (panel_w + panel_gap);
    const double y0 = header_h + static_cast<double>(p / columns) * panel_h;
    const double left = x0 + margin_left, top = y0 + panel_title_h;

    double top_s = stage.dense_latency_s;
    for (const auto& c : stage.curves) {
      for (const double v : c.latency_s) top_s = std::max(top_s, v);
    }
    const double scale = micro ? 1e6 : 1e3;
    const std::string unit = micro ? "\u00B5s" : "ms";
    const auto value = [&](double seconds) {
      return fmt::format("{:.3g} {}", seconds * scale, unit);
    };

    w.text(left, y0 + 22,
           fmt::format("{}: {}x{} map, {} block{}{}", stage.name, stage.height, stage.width,
                       stage.blocks, stage.blocks == 1 ? "" : "s",
                       stage.dynamic_blocks == 0 ? " (all dense: no residual to skip to)"
                       : stage.dynamic_blocks < stage.blocks
                           ? fmt::format(" ({} can skip)", stage.dynamic_blocks)
                           : std::string()),
           "font-size=\"16\" font-weight=\"bold\"");
    w.raw(diamond(left + 6, y0 + 39, 6, colour_of(stage.recommended)));
    w.text(left + 18, y0 + 44,
           fmt::format("{} recommended: {} at d={:g}{}; dense {}", curve_label(stage.recommended),
                       value(stage.recommended_latency_s), stage.marked_density,
                       stage.fastest == stage.recommended
                           ? std::string()
                           : fmt::format(" (fastest {})", curve_label(stage.fastest)),
                       value(stage.dense_latency_s)),
           "font-size=\"14\"");

    const auto y_ticks = svg::nice_ticks(0, top_s * scale * 1.04, 5);
    const svg::Axis x{0, 1, left, left + plot_w, false};
    const svg::Axis y{0, y_ticks.back(), top + plot_h, top, false};
    w.axes(x, y, svg::nice_ticks(0, 1, 5), y_ticks, "density (share of patches that run)",
           fmt::format("stage latency ({})", unit));

    // Curves, the recommended S last (on top of those it may coincide with) and bolder: it is
    // the line the reader follows. Then the dense line, then the mark.
    std::vector<const GranularityCurve*> order;
    for (const auto& c : stage.curves) {
      if (c.granularity != stage.recommended) order.push_back(&c);
    }
    for (const auto& c : stage.curves) {
      if (c.granularity == stage.recommended) order.push_back(&c);
    }
    for (const GranularityCurve* curve : order) {
      const GranularityCurve& c = *curve;
      std::vector<std::pair<double, double>> points;
      for (std::size_t k = 0; k < c.latency_s.size() && k < sweep.densities.size(); ++k) {
        points.emplace_back(x(sweep.densities[k]), y(c.latency_s[k] * scale));
      }
      w.raw(
          fmt::format("<g class=\"series\" data-stage=\"{}\" data-s=\"{}\"><title>{} {}</title>\n",
                      svg::escape(stage.name), c.granularity, svg::escape(stage.name),
                      curve_label(c.granularity)));
      w.polyline(points, stroke(c.granularity, c.granularity == stage.recommended ? 3.6 : 2.2));
      w.close_group();
    }
    const double dense_y = y(stage.dense_latency_s * scale);
    w.raw(fmt::format("<g class=\"dense\" data-stage=\"{}\"><title>{} dense: {}</title>\n",
                      svg::escape(stage.name), svg::escape(stage.name),
                      value(stage.dense_latency_s)));
    w.line(left, dense_y, left + plot_w, dense_y,
           "stroke=\"#000\" stroke-width=\"2\" stroke-dasharray=\"8,5\"");
    w.close_group();

    // The recommendation: a dotted guide at its density, a diamond on its curve, and a short
    // tag (the full text is in the panel title) with a white halo.
    const double mx = x(stage.marked_density), my = y(stage.recommended_latency_s * scale);
    w.line(mx, top, mx, top + plot_h,
           "stroke=\"#555\" stroke-width=\"1\" stroke-dasharray=\"2,3\"");
    w.raw(fmt::format(
        "<g class=\"recommended\" data-stage=\"{}\" data-s=\"{}\" data-density=\"{:g}\">"
        "<title>{}: {} recommended at density {:g}, {}</title>\n",
        svg::escape(stage.name), stage.recommended, stage.marked_density, svg::escape(stage.name),
        curve_label(stage.recommended), stage.marked_density, value(stage.recommended_latency_s)));
    w.raw(diamond(mx, my, 9, colour_of(stage.recommended)));
    const std::string tag = curve_label(stage.recommended);
    const bool tag_right = mx + 14 + svg::text_width(tag, 14) <= left + plot_w - 2;
    w.text(tag_right ? mx + 13 : mx - 13, my + 22, tag,
           fmt::format("font-size=\"14\" font-weight=\"bold\" text-anchor=\"{}\" stroke=\"white\" "
                       "stroke-width=\"4\" paint-order=\"stroke\" stroke-linejoin=\"round\"",
                       tag_right ? "start" : "end"));
    w.close_group();

    // Legend beside the plot: every S, the dense line and the mark.
    const double gx = left + plot_w + 18;
    double gy = top + 8;
    for (const auto& c : stage.curves) {
      w.line(gx, gy, gx + 26, gy,
             stroke(c.granularity, c.granularity == stage.recommended ? 3.6 : 2.2));
      w.text(gx + 33, gy + 4.5, curve_label(c.granularity),
             c.granularity == stage.recommended ? "font-weight=\"bold\"" : "");
      gy += 19;
    }
    gy += 4;
    w.line(gx, gy, gx + 26, gy, "stroke=\"#000\" stroke-width=\"2\" stroke-dasharray=\"8,5\"");
    w.text(gx + 33, gy + 4.5, "dense");
    gy += 21;
    w.raw(diamond(gx + 13, gy, 7, colour_of(stage.recommended)));
    w.text(gx + 33, gy + 4.5, "recommended");
  }
  return w.finish();
}

}  // namespace lasnet::scheduler
