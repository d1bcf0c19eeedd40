#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "lasnet/profiler/metrics.hpp"

using namespace lasnet::profiler;

TEST_CASE("ranks: ties share the mean of their ranks") {
  const std::vector<double> v{10, 20, 20, 30};
  CHECK(ranks(v) == std::vector<double>{1, 2.5, 2.5, 4});
  const std::vector<double> w{3, 1, 2};
  CHECK(ranks(w) == std::vector<double>{3, 1, 2});
}

TEST_CASE("spearman: monotone +1, reversed -1, a hand-worked case with a tie") {
  const std::vector<double> a{1, 2, 3, 4, 5};
  const std::vector<double> up{10, 20, 25, 100, 1000};
  const std::vector<double> down{5, 4, 3, 2, 1};
  CHECK(spearman(a, up) == doctest::Approx(1));
  CHECK(spearman(a, down) == doctest::Approx(-1));
  // b = {5, 6, 7, 8, 7}: ranks {1, 2, 3.5, 5, 3.5}. Deviations from 3: a {-2,-1,0,1,2},
  // b {-2,-1,0.5,2,0.5}; covariance 8, variances 10 and 9.5: rho = 8 / sqrt(95) = 0.820783.
  const std::vector<double> b{5, 6, 7, 8, 7};
  CHECK(spearman(a, b) == doctest::Approx(0.820783).epsilon(1e-5));
}

TEST_CASE("spearman: undefined for fewer than two pairs or a constant side") {
  const std::vector<double> one{1};
  CHECK(std::isnan(spearman(one, one)));
  const std::vector<double> a{1, 2, 3};
  const std::vector<double> flat{2, 2, 2};
  CHECK(std::isnan(spearman(a, flat)));
}

TEST_CASE("error_metrics: MAPE, worst error, bias and shares within tolerance") {
  // Errors: +10%, -20%, 0%, -20%. MAPE 0.5 / 4 = 12.5%, bias -0.3 / 4 = -7.5%.
  // Within 10%: +10% (the boundary counts) and 0%: 2 of 4.
  const std::vector<double> predicted{1.1, 0.8, 2.0, 1.0};
  const std::vector<double> measured{1.0, 1.0, 2.0, 1.25};
  const auto m = error_metrics(predicted, measured);
  CHECK(m.count == 4);
  CHECK(m.mape == doctest::Approx(0.125));
  CHECK(m.max_abs_error == doctest::Approx(0.2));
  CHECK(m.mean_signed_error == doctest::Approx(-0.075));
  CHECK(m.within_10 == doctest::Approx(0.5));
  CHECK(m.within_15 == doctest::Approx(0.5));
  // Ranks: predicted {3, 1, 4, 2}, measured {1.5, 1.5, 4, 3}; deviations from 2.5:
  // {0.5, -1.5, 1.5, -0.5} and {-1, -1, 1.5, 0.5}: covariance 3, variances 5 and 4.5:
  // 3 / sqrt(22.5) = 0.632456.
  CHECK(m.spearman == doctest::Approx(0.632456).epsilon(1e-5));
}

TEST_CASE("error_metrics: no pairs") {
  const std::vector<double> none;
  const auto m = error_metrics(none, none);
  CHECK(m.count == 0);
  CHECK(std::isnan(m.spearman));
}
