#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "lasnet/profiler/progress.hpp"

using lasnet::profiler::ProgressBar;

TEST_CASE("ProgressBar::render") {
  // 7 of 20 at width 20: 7 filled, 13 empty, 35%.
  CHECK(ProgressBar::render("profile", "dram", 7, 20, 1.5, 20) ==
        "profile [#######-------------]  7/20  35%   1.5s dram");
  CHECK(ProgressBar::render("x", "done", 3, 3, 0, 4) == "x [####] 3/3 100%   0.0s done");
}

TEST_CASE("ProgressBar: a line per step off a terminal, then nothing after the end") {
  std::vector<std::string> lines;
  ProgressBar bar([&](std::string_view t) { lines.emplace_back(t); }, false, "p");
  bar.update("a", 0, 2);
  bar.update("b", 1, 2);
  bar.update("done", 2, 2);
  bar.update("late", 2, 2);
  REQUIRE(lines.size() == 3);
  CHECK(lines[2].find("2/2 100%") != std::string::npos);
  CHECK(lines[0].back() == '\n');
}

TEST_CASE("ProgressBar: redraws one line on a terminal") {
  std::string out;
  ProgressBar bar([&](std::string_view t) { out += t; }, true, "p");
  bar.update("a", 0, 1);
  bar.update("done", 1, 1);
  CHECK(out.front() == '\r');
  CHECK(out.back() == '\n');
  CHECK(std::count(out.begin(), out.end(), '\n') == 1);
}
