#include "lasnet/common/svg.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>

namespace lasnet::svg {

std::string escape(std::string_view text) {
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

std::string_view colour(std::size_t series) {
  return palette[series % palette.size()];
}

std::string_view dash(std::size_t series) {
  static constexpr std::array<std::string_view, 4> patterns = {"", "7,4", "2,3", "9,3,2,3"};
  return patterns[(series / palette.size()) % patterns.size()];
}

std::vector<double> nice_ticks(double lo, double hi, int target_count) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {0, 1};
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) {
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / std::max(1, target_count);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (const double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    step = m * magnitude;
    if (step >= raw * (1 - 1e-9)) break;
  }
  const double first = std::floor(lo / step + 1e-9) * step;
  std::vector<double> ticks;
  for (int i = 0;; ++i) {
    const double t = first + i * step;
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
    if (t >= hi - step * 1e-9) break;
  }
  return ticks;
}

std::vector<double> decade_ticks(double lo, double hi) {
  const int first = static_cast<int>(std::floor(std::log10(lo) + 1e-9));
  int last = static_cast<int>(std::ceil(std::log10(hi) - 1e-9));
  if (last <= first) last = first + 1;
  std::vector<double> ticks;
  for (int e = first; e <= last; ++e) ticks.push_back(std::pow(10.0, e));
  return ticks;
}

std::string tick_label(double value) {
  if (value == 0) return "0";
  const double a = std::abs(value);
  if (a >= 1e-3 && a < 1e6) return fmt::format("{:.6g}", value);
  return fmt::format("{:.0e}", value);
}

double Axis::operator()(double value) const {
  const double t = log ? (std::log10(value) - std::log10(lo)) / (std::log10(hi) - std::log10(lo))
                       : (value - lo) / (hi - lo);
  return from_px + t * (to_px - from_px);
}

double text_width(std::string_view text, double font_size) {
  // Average advance of DejaVu Sans glyphs is about 0.55 em for lower case and digits, 0.65 em
  // for capitals; 0.57 em for all, counted in characters (not UTF-8 bytes), errs slightly wide.
  std::size_t characters = 0;
  for (const char c : text) characters += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return 0.57 * font_size * static_cast<double>(characters);
}

Writer::Writer(double width, double height, double font_size) {
  out_ = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" font-family=\"DejaVu Sans, Liberation Sans, Arial, sans-serif\" "
      "font-size=\"{2}\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      width, height, font_size);
}

void Writer::raw(std::string_view text) {
  out_ += text;
}

void Writer::text(double x, double y, std::string_view content, std::string_view attributes) {
  out_ += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\"{}{}>{}</text>\n", x, y,
                      attributes.empty() ? "" : " ", attributes, escape(content));
}

void Writer::line(double x1, double y1, double x2, double y2, std::string_view attributes) {
  out_ += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" {}/>\n", x1,
                      y1, x2, y2, attributes);
}

void Writer::rect(double x, double y, double w, double h, std::string_view attributes) {
  out_ += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" {}/>\n",
                      x, y, w, h, attributes);
}

void Writer::circle(double cx, double cy, double r, std::string_view attributes,
                    std::string_view tooltip) {
  if (tooltip.empty()) {
    out_ +=
        fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{:g}\" {}/>\n", cx, cy, r, attributes);
  } else {
    out_ += fmt::format(
        "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{:g}\" {}><title>{}</title></circle>\n", cx, cy, r,
        attributes, escape(tooltip));
  }
}

void Writer::polyline(const std::vector<std::pair<double, double>>& points,
                      std::string_view attributes) {
  out_ += "<polyline points=\"";
  for (std::size_t i = 0; i < points.size(); ++i) {
    out_ += fmt::format("{}{:.1f},{:.1f}", i ? " " : "", points[i].first, points[i].second);
  }
  out_ += fmt::format("\" fill=\"none\" {}/>\n", attributes);
}

void Writer::open_group(std::string_view attributes) {
  out_ += fmt::format("<g {}>\n", attributes);
}

void Writer::close_group() {
  out_ += "</g>\n";
}

void Writer::axes(const Axis& x, const Axis& y, const std::vector<double>& x_ticks,
                  const std::vector<double>& y_ticks, std::string_view x_title,
                  std::string_view y_title) {
  const double left = std::min(x.from_px, x.to_px), right = std::max(x.from_px, x.to_px);
  const double top = std::min(y.from_px, y.to_px), bottom = std::max(y.from_px, y.to_px);
  const auto inside = [](const Axis& a, double v) {
    const double lo = std::min(a.lo, a.hi), hi = std::max(a.lo, a.hi);
    const double eps = (hi - lo) * 1e-9;
    return v >= lo - eps && v <= hi + eps;
  };
  for (const double t : x_ticks) {
    if (!inside(x, t)) continue;
    const double px = x(t);
    line(px, top, px, bottom, "stroke=\"#e4e4e4\"");
    line(px, bottom, px, bottom + 5, "stroke=\"#333\"");
    text(px, bottom + 19, tick_label(t), "text-anchor=\"middle\"");
  }
  for (const double t : y_ticks) {
    if (!inside(y, t)) continue;
    const double py = y(t);
    line(left, py, right, py, "stroke=\"#e4e4e4\"");
    line(left - 5, py, left, py, "stroke=\"#333\"");
    text(left - 8, py + 4.5, tick_label(t), "text-anchor=\"end\"");
  }
  rect(left, top, right - left, bottom - top, "fill=\"none\" stroke=\"#333\"");
  text((left + right) / 2, bottom + 40, x_title, "text-anchor=\"middle\" font-size=\"14\"");
  double widest = 0;
  for (const double t : y_ticks) {
    if (inside(y, t)) widest = std::max(widest, text_width(tick_label(t), 13));
  }
  out_ += fmt::format(
      "<text transform=\"translate({:.1f},{:.1f}) rotate(-90)\" text-anchor=\"middle\" "
      "font-size=\"14\">{}</text>\n",
      left - widest - 18, (top + bottom) / 2, escape(y_title));
}

std::string Writer::finish() {
  out_ += "</svg>\n";
  return std::exchange(out_, std::string());
}

}  // namespace lasnet::svg
