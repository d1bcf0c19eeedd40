#pragma once
// What every SVG chart of the tool shares: XML escaping, a colour-blind-safe palette, axes
// (linear or log) with readable tick values, and a small writer for the few elements the
// charts use. Host-only and CUDA-free, so `lasnet plot` works in builds without a GPU. The
// charts themselves (scheduler's density plot, profiler's validation plot) live with their data.
#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lasnet::svg {

// Escapes &, <, >, " and ' for XML text and attributes.
std::string escape(std::string_view text);

// Okabe-Ito, reordered so that neighbours in a legend differ in lightness too; yellow last (it is
// faint on white). Series beyond eight repeat a colour with another dash pattern (dash()).
inline constexpr std::array<std::string_view, 8> palette = {
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442"};
std::string_view colour(std::size_t series);
// "" (solid) for the first eight series, then dash patterns ("6,3", "2,2", ...).
std::string_view dash(std::size_t series);

// About five "nice" ticks (1, 2, 2.5 or 5 times a power of ten) covering [lo, hi]; the first tick
// is <= lo and the last >= hi. lo == hi widens to one step around the value.
std::vector<double> nice_ticks(double lo, double hi, int target_count = 5);
// Decade ticks covering [lo, hi] (both > 0): {1e-6, 1e-5, ...}, at least two.
std::vector<double> decade_ticks(double lo, double hi);
// Tick text: "0", "0.25", "10", "1e+06"; no trailing zeros, no "-0".
std::string tick_label(double value);

// A value axis mapped onto a pixel span (from_px at lo, to_px at hi; to_px < from_px for y).
struct Axis {
  double lo = 0, hi = 1;
  double from_px = 0, to_px = 1;
  bool log = false;  // log10 scale: lo, hi and every value must be > 0
  double operator()(double value) const;
};

// Width of `text` in pixels at `font_size`, estimated for sans-serif (labels are laid out with it
// so they do not overlap; an estimate errs wide).
double text_width(std::string_view text, double font_size);

// Appends elements to one self-contained SVG document (no scripts, no external resources).
// Numbers are written with one decimal; text is escaped here, attributes are passed as written.
class Writer {
 public:
  Writer(double width, double height, double font_size = 13);
  void raw(std::string_view text);
  void text(double x, double y, std::string_view content, std::string_view attributes = {});
  void line(double x1, double y1, double x2, double y2, std::string_view attributes);
  void rect(double x, double y, double w, double h, std::string_view attributes);
  void circle(double cx, double cy, double r, std::string_view attributes,
              std::string_view tooltip = {});
  void polyline(const std::vector<std::pair<double, double>>& points, std::string_view attributes);
  void open_group(std::string_view attributes);
  void close_group();
  // Grid lines, tick marks and tick values of both axes, the frame, and the axis titles.
  // `x_ticks`/`y_ticks` are drawn where they fall inside the axes' ranges.
  void axes(const Axis& x, const Axis& y, const std::vector<double>& x_ticks,
            const std::vector<double>& y_ticks, std::string_view x_title, std::string_view y_title);
  // Closes the document and returns it; the writer is empty afterwards.
  std::string finish();

 private:
  std::string out_;
};

}  // namespace lasnet::svg
