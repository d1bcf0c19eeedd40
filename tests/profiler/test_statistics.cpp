#include <doctest/doctest.h>

#include <vector>

#include "lasnet/common/error.hpp"
#include "lasnet/profiler/statistics.hpp"

using lasnet::profiler::collect_samples;
using lasnet::profiler::SamplingPlan;
using lasnet::profiler::summarize;

TEST_CASE("summarize: order statistics of five samples") {
  // Sorted 1 2 3 4 5. Type-7 quantiles: p10 at position 0.4 -> 1.4, p90 at 3.6 -> 4.6.
  // Sample variance: (4 + 1 + 0 + 1 + 4) / 4 = 2.5.
  const std::vector<double> samples{5, 1, 4, 2, 3};
  const auto s = summarize(samples);
  CHECK(s.runs == 5);
  CHECK(s.median == doctest::Approx(3));
  CHECK(s.mean == doctest::Approx(3));
  CHECK(s.min == 1);
  CHECK(s.max == 5);
  CHECK(s.p10 == doctest::Approx(1.4));
  CHECK(s.p90 == doctest::Approx(4.6));
  CHECK(s.stddev == doctest::Approx(1.5811388));
  CHECK(s.relative_spread() == doctest::Approx((4.6 - 1.4) / 3));
}

TEST_CASE("summarize: even count takes the midpoint, one sample has no spread") {
  const std::vector<double> even{4, 1, 3, 2};
  CHECK(summarize(even).median == doctest::Approx(2.5));
  const std::vector<double> one{7};
  const auto s = summarize(one);
  CHECK(s.median == 7);
  CHECK(s.stddev == 0);
  CHECK(s.relative_spread() == 0);
}

TEST_CASE("summarize: empty or non-finite samples are errors") {
  const std::vector<double> none;
  CHECK_THROWS_AS(summarize(none), lasnet::Error);
  const std::vector<double> bad{1, 0.0 / 0.0};
  CHECK_THROWS_AS(summarize(bad), lasnet::Error);
}

TEST_CASE("Summary::inverted: a rate from times swaps the quantile ends") {
  // Times 1..5 s for 10 units of work: the median rate is 10/3, the slow p90 time (4.6 s)
  // becomes the low p10 rate.
  const std::vector<double> samples{5, 1, 4, 2, 3};
  const auto rate = summarize(samples).inverted(10);
  CHECK(rate.median == doctest::Approx(10.0 / 3));
  CHECK(rate.p10 == doctest::Approx(10 / 4.6));
  CHECK(rate.p90 == doctest::Approx(10 / 1.4));
  CHECK(rate.min == doctest::Approx(2));
  CHECK(rate.max == doctest::Approx(10));
}

TEST_CASE("collect_samples: warm-up runs are not kept; the loop runs until min_time") {
  SamplingPlan plan;
  plan.warmup_runs = 3;
  plan.min_runs = 15;
  plan.min_time_s = 0.02;
  int calls = 0;
  // 1 ms per run: 15 runs give 15 ms < 20 ms, so 20 runs are taken.
  const auto samples = collect_samples(plan, [&] {
    ++calls;
    return 0.001;
  });
  CHECK(samples.size() == 20);
  CHECK(calls == 23);
}

TEST_CASE("collect_samples: max_time stops long runs, max_runs stops short ones") {
  SamplingPlan plan;
  plan.warmup_runs = 0;
  plan.min_runs = 10;
  plan.max_time_s = 2.0;
  CHECK(collect_samples(plan, [] { return 1.0; }).size() == 2);
  plan.max_runs = 12;
  plan.min_time_s = 1.0;
  CHECK(collect_samples(plan, [] { return 1e-6; }).size() == 12);
}

TEST_CASE("is_noisy compares the relative spread with the plan's threshold") {
  SamplingPlan plan;
  plan.noise_threshold = 0.10;
  const std::vector<double> tight{1.00, 1.01, 0.99, 1.00, 1.02, 0.98};
  const std::vector<double> loose{1.0, 1.5, 0.7, 1.0, 1.3, 0.8};
  CHECK_FALSE(lasnet::profiler::is_noisy(summarize(tight), plan));
  CHECK(lasnet::profiler::is_noisy(summarize(loose), plan));
}
