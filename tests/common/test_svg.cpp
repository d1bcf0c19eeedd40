// The SVG primitives the charts share: escaping, ticks, axes, the writer.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "lasnet/common/svg.hpp"

using namespace lasnet;

TEST_CASE("svg::escape: the five XML specials") {
  CHECK(svg::escape("a<b & \"c\" 'd'>") == "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
  CHECK(svg::escape("plain") == "plain");
}

TEST_CASE("svg::nice_ticks: steps of 1, 2, 2.5 or 5 times a power of ten that cover the range") {
  // [0, 1] in about 5 steps: raw step 0.2 -> 2 x 0.1.
  const auto unit = svg::nice_ticks(0, 1, 5);
  REQUIRE(unit.size() == 6);
  CHECK(unit.front() == 0);
  CHECK(unit[1] == doctest::Approx(0.2));
  CHECK(unit.back() == doctest::Approx(1));
  // [0, 83.2]: raw 16.64 -> 20; the last tick 100 is the first >= 83.2.
  CHECK(svg::nice_ticks(0, 83.2, 5) == std::vector<double>{0, 20, 40, 60, 80, 100});
  // [0, 0.0555]: raw 0.0111 -> 2 x 0.01 (1 x 0.01 is too small); 0.06 is the first >= 0.0555.
  const auto small = svg::nice_ticks(0, 0.0555, 5);
  REQUIRE(small.size() == 4);
  CHECK(small[1] == doctest::Approx(0.02));
  CHECK(small.back() == doctest::Approx(0.06));
  // A zero range widens to one step around the value.
  const auto flat = svg::nice_ticks(5, 5, 5);
  CHECK(flat.front() <= 5);
  CHECK(flat.back() >= 5);
  CHECK(flat.size() >= 2);
}

TEST_CASE("svg::decade_ticks and tick_label") {
  CHECK(svg::decade_ticks(3, 250) == std::vector<double>{1, 10, 100, 1000});
  CHECK(svg::decade_ticks(10, 10) == std::vector<double>{10, 100});
  CHECK(svg::tick_label(0) == "0");
  CHECK(svg::tick_label(0.6000000000000001) == "0.6");
  CHECK(svg::tick_label(-25) == "-25");
  CHECK(svg::tick_label(1e6) == "1e+06");
}

TEST_CASE("svg::Axis maps values onto pixels, linear or log") {
  // y axis: 0 at pixel 300, 100 at pixel 100 -> 25 is a quarter of the way up: 250.
  const svg::Axis y{0, 100, 300, 100, false};
  CHECK(y(25) == doctest::Approx(250));
  // log axis 1..1000 over 0..300 px: 10 is a third of the way, 100 two thirds.
  const svg::Axis x{1, 1000, 0, 300, true};
  CHECK(x(10) == doctest::Approx(100));
  CHECK(x(100) == doctest::Approx(200));
}

TEST_CASE("svg::text_width counts characters, not UTF-8 bytes") {
  // "\u00B5s" is two characters in three bytes: 2 x 0.57 x 10 px.
  CHECK(svg::text_width("\u00B5s", 10) == doctest::Approx(11.4));
  CHECK(svg::text_width("abcd", 10) == doctest::Approx(22.8));
}

TEST_CASE("svg::Writer: one document, escaped text, axes with their tick values") {
  svg::Writer w(200, 100);
  w.text(10, 20, "a < b");
  const svg::Axis x{0, 1, 20, 180, false}, y{0, 10, 80, 10, false};
  w.axes(x, y, {0, 0.5, 1, 2}, {0, 5, 10}, "density", "ms");
  const std::string doc = w.finish();
  CHECK(doc.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"200\" height=\"100\""));
  CHECK(doc.ends_with("</svg>\n"));
  CHECK(doc.find(">a &lt; b</text>") != std::string::npos);
  // The tick 2 lies outside [0, 1] and is not drawn; 0.5 is.
  CHECK(doc.find(">0.5</text>") != std::string::npos);
  CHECK(doc.find(">2</text>") == std::string::npos);
  CHECK(doc.find(">density</text>") != std::string::npos);
  CHECK(w.finish() == "</svg>\n");  // the writer is empty after finish()
}
