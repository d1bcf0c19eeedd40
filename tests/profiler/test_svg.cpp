#include <doctest/doctest.h>

#include <string>

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

TEST_CASE("xml_escape") {
  CHECK(xml_escape("a<b & \"c\" 'd'>") == "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
}

TEST_CASE("decade_ticks cover the range") {
  CHECK(decade_ticks(3, 250) == std::vector<double>{1, 10, 100, 1000});
  CHECK(decade_ticks(10, 10) == std::vector<double>{10, 100});
}

TEST_CASE("render_scatter_svg: one circle per point plus one per legend entry") {
  ScatterPlot plot;
  plot.title = "ResNet <101>";
  plot.points = {{10e-6, 11e-6, "op", "layer1.0/conv1"},
                 {100e-6, 90e-6, "op", "layer1.0/conv2"},
                 {1e-3, 1.05e-3, "block", "layer1.0"}};
  const auto svg = render_scatter_svg(plot);
  CHECK(svg.rfind("<svg", 0) == 0);
  CHECK(svg.find("</svg>") != std::string::npos);
  CHECK(count(svg, "<circle") == 3 + 2);
  CHECK(svg.find("ResNet &lt;101&gt;") != std::string::npos);
  CHECK(svg.find("y = x") != std::string::npos);
  CHECK(svg.find("layer1.0/conv2: measured 100 us, predicted 90 us") != std::string::npos);
  CHECK(svg.find("op (2)") != std::string::npos);
}

TEST_CASE("render_scatter_svg: a log axis cannot show zero") {
  ScatterPlot plot;
  plot.points = {{0, 1e-6, "op", "empty"}};
  CHECK_THROWS_AS(render_scatter_svg(plot), lasnet::Error);
}
