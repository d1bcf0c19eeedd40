#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "lasnet/common/error.hpp"
#include "lasnet/profiler/svg.hpp"

using namespace lasnet::profiler;

namespace {
std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}
}  // namespace

TEST_CASE("make_histogram: every value in one bin, the ends counted apart, NaN dropped") {
  // Bins of 5% over [-50%, +50%]: -12% and -11% fall in bin 7 ([-15%, -10%)), 0, 4% and 4.9% in
  // bin 10 ([0, 5%)), +50% (the closed upper end) in bin 19; -60% below, +70% above.
  const std::vector<double> errors = {-0.6, -0.12, -0.11, 0, 0.04, 0.049, 0.5, 0.7, std::nan("")};
  const auto h = make_histogram(errors, -0.5, 0.5, 0.05);
  REQUIRE(h.counts.size() == 20);
  CHECK(h.below == 1);
  CHECK(h.above == 1);
  CHECK(h.counts[7] == 2);
  CHECK(h.counts[10] == 3);
  CHECK(h.counts[19] == 1);
  CHECK(h.total() == 8);
}

namespace {
// Sums the data-count of the bars of one histogram (data-of="kernels" or "networks").
std::size_t bar_sum(const std::string& svg, const std::string& of) {
  const auto start = svg.find("class=\"histogram\" data-of=\"" + of + "\"");
  REQUIRE(start != std::string::npos);
  const auto end = svg.find("</g>", start);
  std::size_t sum = 0;
  const std::string key = "data-count=\"";
  for (auto pos = svg.find(key, start); pos < end; pos = svg.find(key, pos + 1)) {
    sum += std::stoul(svg.substr(pos + key.size()));
  }
  return sum;
}
}  // namespace

TEST_CASE("render_error_svg: bands, a legend entry per class, bars that add up") {
  ErrorPlot plot;
  plot.title = "h100 <calibrated>";
  plot.summary = "4 kernels";
  // |errors| 1%, 5%, 12%, 90%: the 98th percentile (index 2 of 4, 12%) fits a +-20% axis, so
  // the 90% point is drawn on its edge and counted there.
  plot.points = {{10e-6, 0.01, "conv.k1 (ours)", "k1"},
                 {20e-6, -0.05, "conv.k1 (ours)", "k2"},
                 {300e-6, 0.12, "conv.k1 (ours)", "k3"},
                 {4e-3, 0.9, "masker", "k4"}};
  plot.network_errors = {0.02, -0.3};
  const auto svg = render_error_svg(plot);
  CHECK(svg.rfind("<svg", 0) == 0);
  CHECK(svg.find("h100 &lt;calibrated&gt;") != std::string::npos);
  // Each band in the error plot and in both histograms.
  CHECK(count(svg, "class=\"band\" data-band=\"0.1\"") == 3);
  CHECK(count(svg, "class=\"band\" data-band=\"0.15\"") == 3);
  CHECK(count(svg, "<text class=\"legend\"") == 2);
  CHECK(svg.find(">conv.k1 (ours) (3)</text>") != std::string::npos);
  CHECK(svg.find(">masker (1)</text>") != std::string::npos);
  CHECK(svg.find("1 beyond \u00B120%") != std::string::npos);
  CHECK(bar_sum(svg, "kernels") == 4);
  CHECK(bar_sum(svg, "networks") == 2);
  CHECK(svg.find("k4: measured 4000 us, error +90.0%") != std::string::npos);
}

TEST_CASE("render_error_svg: without network errors there is one histogram; zero time throws") {
  ErrorPlot plot;
  plot.points = {{10e-6, 0.01, "a", "k1"}};
  const auto svg = render_error_svg(plot);
  CHECK(count(svg, "class=\"histogram\"") == 1);
  plot.points.push_back({0, 0.01, "a", "k2"});
  CHECK_THROWS_AS(render_error_svg(plot), lasnet::Error);
}
