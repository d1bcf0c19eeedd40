// Random specs: portable draws, every draw a valid spec, sized by the predictor, reproducible.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "lasnet/common/error.hpp"
#include "lasnet/common/random.hpp"
#include "lasnet/predictor/network.hpp"
#include "lasnet/predictor/sample.hpp"

using namespace lasnet::predictor;

namespace {

Profile h100() {
  return load_profile(std::string(LASNET_SOURCE_DIR) + "/hardware_profiles/h100-calibrated.json");
}

void check_ranges(const Spec& s, const SampleSpace& space) {
  CHECK(s.height >= space.min_side);
  CHECK(s.height <= space.max_side);
  CHECK(s.width >= space.min_side);
  CHECK(s.width <= space.max_side);
  CHECK(s.batch >= space.min_batch);
  CHECK(s.batch <= space.max_batch);
  CHECK(static_cast<std::int64_t>(s.stages.size()) >= space.min_stages);
  CHECK(static_cast<std::int64_t>(s.stages.size()) <= space.max_stages);
  for (const auto& st : s.stages) {
    CHECK(st.out_channels >= space.min_width);
    CHECK(st.out_channels <= space.max_width);
    CHECK(st.blocks <= space.max_blocks);
  }
}

}  // namespace

TEST_CASE("random: splitmix64's published stream and exact integer ranges") {
  // splitmix64 from state 0: the reference implementation's first two outputs (Vigna's
  // splitmix64.c; also the seeding sequence of xoshiro's test vectors).
  lasnet::Random r(0);
  CHECK(r.next_u64() == 0xE220A8397B1DCDAFULL);
  CHECK(r.next_u64() == 0x6E789E6AA1B965F4ULL);
  lasnet::Random a(7);
  std::set<std::int64_t> seen;
  for (int i = 0; i < 2000; ++i) {
    const auto v = a.between(-2, 3);
    CHECK(v >= -2);
    CHECK(v <= 3);
    seen.insert(v);
  }
  CHECK(seen.size() == 6);  // all six values within 2000 draws (miss odds ~6 x (5/6)^2000)
  double sum = 0;
  for (int i = 0; i < 20000; ++i) sum += a.uniform();
  CHECK(sum / 20000 == doctest::Approx(0.5).epsilon(0.02));  // sd of the mean: 0.002
}

TEST_CASE("random: beta draws have mean a / (a + b)") {
  // Beta(2, 6): mean 0.25, variance ab / ((a+b)^2 (a+b+1)) = 12 / 576 = 0.0208; over 20000
  // draws the mean's sd is 0.001, so 0.25 +- 0.01 cannot fail by chance.
  lasnet::Random r(11);
  double sum = 0, sq = 0;
  for (int i = 0; i < 20000; ++i) {
    const double x = r.beta(2, 6);
    CHECK(x >= 0);
    CHECK(x <= 1);
    sum += x;
    sq += x * x;
  }
  const double mean = sum / 20000;
  CHECK(mean == doctest::Approx(0.25).epsilon(0.04));
  CHECK(sq / 20000 - mean * mean == doctest::Approx(12.0 / 576.0).epsilon(0.1));
  // Shape below 1 takes the boost path: Beta(0.5, 0.5) has mean 0.5.
  sum = 0;
  for (int i = 0; i < 20000; ++i) sum += r.beta(0.5, 0.5);
  CHECK(sum / 20000 == doctest::Approx(0.5).epsilon(0.03));
}

TEST_CASE("sample: every draw of many seeds is a valid spec inside the space") {
  for (const auto& space : {full_space(), runnable_space()}) {
    std::set<std::string> kinds;
    std::set<std::string> texts;
    for (std::uint64_t seed = 1; seed <= 25; ++seed) {
      for (std::int64_t index = 0; index < 20; ++index) {
        const Spec drawn = draw_spec(seed, index, 0, space);
        const std::string text = spec_to_json(drawn);
        Spec parsed;
        REQUIRE_NOTHROW(parsed = parse_spec(text, drawn.name));
        CHECK(spec_to_json(parsed) == text);  // nothing lost in the round trip
        check_ranges(parsed, space);
        for (const auto& st : parsed.stages) kinds.insert(std::string(to_string(st.block)));
        texts.insert(text);
      }
    }
    CHECK(kinds.size() == space.block_kinds.size());  // every kind drawn somewhere in 500
    CHECK(texts.size() == 500);                       // no two draws alike
  }
}

TEST_CASE("sample: a draw is a function of (seed, index, attempt) alone") {
  const auto space = full_space();
  CHECK(spec_to_json(draw_spec(5, 3, 0, space)) == spec_to_json(draw_spec(5, 3, 0, space)));
  CHECK(spec_to_json(draw_spec(5, 3, 0, space)) != spec_to_json(draw_spec(5, 3, 1, space)));
  CHECK(spec_to_json(draw_spec(5, 3, 0, space)) != spec_to_json(draw_spec(6, 3, 0, space)));
  CHECK(draw_spec(5, 3, 0, space).name == "sample_5_3");
}

TEST_CASE("sample: kept specs have a dense latency in range; index i does not depend on count") {
  const Profile hw = h100();
  SampleOptions o;
  o.seed = 3;
  o.count = 4;
  const auto samples = sample_specs(o, hw);
  REQUIRE(samples.size() == 4);
  for (const auto& s : samples) {
    CHECK(s.dense_latency_s >= o.space.min_dense_s);
    CHECK(s.dense_latency_s <= o.space.max_dense_s);
    PredictionCache cache(hw);
    const auto dense = predict_network(build_network(s.spec, Execution::dense), s.spec, hw, cache);
    CHECK(dense.latency_s == s.dense_latency_s);
    // The kept draw is the first acceptable attempt: every earlier one was rejected.
    CHECK(spec_to_json(s.spec) == spec_to_json(draw_spec(3, s.index, s.attempt, o.space)));
  }
  const auto third = sample_spec(3, 2, o.space, hw);
  CHECK(spec_to_json(third.spec) == spec_to_json(samples[2].spec));
  SampleOptions later = o;
  later.first = 2;
  later.count = 1;
  CHECK(spec_to_json(sample_specs(later, hw).front().spec) == spec_to_json(samples[2].spec));
}

TEST_CASE("sample: a filter rejects draws; an impossible range is one clear error") {
  const Profile hw = h100();
  auto space = runnable_space();
  int calls = 0;
  const SampleFilter odd_batch_only = [&](const Spec& s, std::string& reason) {
    ++calls;
    reason = "even batch";
    return s.batch % 2 == 1;
  };
  const auto s = sample_spec(9, 0, space, hw, odd_batch_only);
  CHECK(s.spec.batch % 2 == 1);
  CHECK(calls >= 1);
  space.min_dense_s = 10;  // 10 s: no network of the space is that slow
  space.max_dense_s = 20;
  space.max_attempts = 5;
  CHECK_THROWS_WITH_AS(sample_spec(9, 0, space, hw),
                       doctest::Contains("no draw in 5 attempts had a dense latency in"),
                       lasnet::Error);
}

TEST_CASE("sample: the index names every file with its main parameters") {
  const Profile hw = h100();
  SampleOptions o;
  o.seed = 4;
  o.count = 2;
  o.space = runnable_space();
  const auto samples = sample_specs(o, hw);
  const auto text = sample_index_json(o, hw.name, samples, {"a.json", "b.json"});
  const auto j = nlohmann::json::parse(text);
  CHECK(j["seed"] == 4);
  CHECK(j["count"] == 2);
  CHECK(j["generator_version"] == sampler_version);
  REQUIRE(j["files"].size() == 2);
  CHECK(j["files"][1]["file"] == "b.json");
  CHECK(j["files"][1]["name"] == samples[1].spec.name);
  CHECK(j["files"][1]["batch"] == samples[1].spec.batch);
  CHECK(j["files"][0]["mode"] == "spatial");
  CHECK(j["files"][0]["dense_ms"].get<double>() ==
        doctest::Approx(samples[0].dense_latency_s * 1e3));
}
