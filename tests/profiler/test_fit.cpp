#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "lasnet/common/error.hpp"
#include "lasnet/profiler/fit.hpp"

using namespace lasnet::profiler;

TEST_CASE("solve_spd: a 2x2 system worked by hand") {
  // [[4, 2], [2, 3]] x = [2, 1]: the inverse is [[3, -2], [-2, 4]] / 8, so x = [0.5, 0].
  std::vector<double> b{2, 1};
  CHECK(solve_spd({4, 2, 2, 3}, b, 2));
  CHECK(b[0] == doctest::Approx(0.5));
  CHECK(b[1] == doctest::Approx(0).epsilon(1e-12));
  std::vector<double> c{1, 1};
  CHECK_FALSE(solve_spd({1, 2, 2, 1}, c, 2));  // indefinite
}

TEST_CASE("fit: a straight line through exact data") {
  // y = 2 + 3x at x = 0..4.
  const std::vector<double> x{0, 1, 2, 3, 4};
  FitProblem p;
  p.parameters = {{"a", 0, -10, 10}, {"b", 0, -10, 10}};
  p.residuals = [&](std::span<const double> v) {
    std::vector<double> r;
    for (const double xi : x) r.push_back(v[0] + v[1] * xi - (2 + 3 * xi));
    return r;
  };
  const auto f = fit_least_squares(p);
  CHECK(f.values[0] == doctest::Approx(2).epsilon(1e-6));
  CHECK(f.values[1] == doctest::Approx(3).epsilon(1e-6));
  // Initial residuals are -(2 + 3x) = -2, -5, -8, -11, -14: cost (4+25+64+121+196)/2 = 205.
  CHECK(f.initial_cost == doctest::Approx(205));
  CHECK(f.final_cost < 1e-10);
  CHECK(f.converged);
}

TEST_CASE("fit: a power law on log latency, as the calibration fits it") {
  // t = c * n^p with c = 2e-6, p = 0.8; parameters in log space stay positive.
  const std::vector<double> n{1, 10, 100, 1000};
  FitProblem p;
  p.parameters = {{"log_c", std::log(1e-6), -30, 0}, {"p", 1, 0, 2}};
  p.residuals = [&](std::span<const double> v) {
    std::vector<double> r;
    for (const double ni : n) {
      r.push_back(v[0] + v[1] * std::log(ni) - std::log(2e-6 * std::pow(ni, 0.8)));
    }
    return r;
  };
  const auto f = fit_least_squares(p);
  CHECK(std::exp(f.values[0]) == doctest::Approx(2e-6).epsilon(1e-5));
  CHECK(f.values[1] == doctest::Approx(0.8).epsilon(1e-6));
  CHECK(rms(f.final_residuals) < 1e-6);
  CHECK(rms(f.initial_residuals) > 0.1);
}

TEST_CASE("fit: bounds clamp, the ridge pulls towards the prior") {
  // Data want a = 2; the box stops it at 1.
  FitProblem bounded;
  bounded.parameters = {{"a", 0, -1, 1}};
  bounded.residuals = [](std::span<const double> v) { return std::vector<double>{v[0] - 2}; };
  CHECK(fit_least_squares(bounded).values[0] == doctest::Approx(1));
  // (a - 4)^2 + 1 * (a - 0)^2 is least at a = 2; only the data row counts in final_cost.
  FitProblem ridge;
  ridge.parameters = {{"a", 0}};
  ridge.ridge = 1;
  ridge.residuals = [](std::span<const double> v) { return std::vector<double>{v[0] - 4}; };
  const auto f = fit_least_squares(ridge);
  CHECK(f.values[0] == doctest::Approx(2).epsilon(1e-6));
  CHECK(f.final_cost == doctest::Approx(2));  // (2 - 4)^2 / 2
}

TEST_CASE("fit: a parameter's own prior pulls it to its own centre, beside the ridge") {
  // (a - 4)^2 + 1 * (a - 2)^2 is least at a = 3; b has no prior and no data, and stays put.
  FitProblem p;
  p.parameters = {{"a", 0}, {"b", 5}};
  p.parameters[0].prior_weight = 1;
  p.parameters[0].prior = 2;
  p.residuals = [](std::span<const double> v) { return std::vector<double>{v[0] - 4}; };
  const auto f = fit_least_squares(p);
  CHECK(f.values[0] == doctest::Approx(3).epsilon(1e-6));
  CHECK(f.values[1] == doctest::Approx(5));
  CHECK(f.final_residuals.size() == 1);  // the prior's row is not a data residual
  CHECK(f.final_cost == doctest::Approx(0.5));
}

TEST_CASE("fit: a kinked model (max of two terms) still reaches the optimum") {
  // t(x) = max(a, x * b) with data from a = 5, b = 2: the kink moves as the fit proceeds.
  const std::vector<double> x{0.5, 1, 2, 4, 8, 16};
  FitProblem p;
  p.parameters = {{"a", 1, 0.01, 100}, {"b", 1, 0.01, 100}};
  p.residuals = [&](std::span<const double> v) {
    std::vector<double> r;
    for (const double xi : x) {
      r.push_back(std::log(std::max(v[0], xi * v[1])) - std::log(std::max(5.0, xi * 2.0)));
    }
    return r;
  };
  const auto f = fit_least_squares(p);
  CHECK(f.values[0] == doctest::Approx(5).epsilon(1e-3));
  CHECK(f.values[1] == doctest::Approx(2).epsilon(1e-3));
}

TEST_CASE("fit: misuse is an error") {
  FitProblem none;
  none.residuals = [](std::span<const double>) { return std::vector<double>{}; };
  CHECK_THROWS_AS(fit_least_squares(none), lasnet::Error);
  FitProblem nan;
  nan.parameters = {{"a", 1}};
  nan.residuals = [](std::span<const double>) { return std::vector<double>{0.0 / 0.0}; };
  CHECK_THROWS_AS(fit_least_squares(nan), lasnet::Error);
}
