// Every input the fuzzers (fuzz/, scripts/fuzz.sh) once crashed on stays here as a regression:
// the parsers must reject it with lasnet::Error (or accept it), never abort, and the CLI must
// answer with a message and status 2.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "lasnet/common/error.hpp"
#include "lasnet/predictor/network.hpp"
#include "lasnet/predictor/profile.hpp"
#include "lasnet/predictor/spec.hpp"
#include "run.hpp"

namespace fs = std::filesystem;
using namespace lasnet::predictor;

namespace {

fs::path input(const char* name) {
  return fs::path(LASNET_HARDENING_DIR) / "inputs" / name;
}

// What the predict fuzz target does with an accepted spec: price it dense and dynamic.
void predict_both(const Spec& spec, const Profile& hw) {
  for (const auto execution : {Execution::dense, Execution::dynamic}) {
    PredictionCache cache(hw);
    const auto prediction = predict_network(build_network(spec, execution), spec, hw, cache);
    CHECK(prediction.latency_s >= 0);
  }
}

}  // namespace

TEST_CASE("fuzz finding: a number beyond double range (1e3083) in a spec is a JSON error") {
  const auto text = lasnet::test::slurp(input("spec-number-overflow.json"));
  CHECK_THROWS_WITH_AS(parse_spec(text, "crash.json"),
                       doctest::Contains("crash.json: not valid JSON: "), lasnet::Error);
  const auto r = lasnet::test::run_lasnet(
      fmt::format("predict '{}' --hw h100", input("spec-number-overflow.json").string()));
  CHECK(r.status == 2);
  CHECK(r.err.find("not valid JSON") != std::string::npos);
  CHECK(r.err.find("number overflow") != std::string::npos);
}

TEST_CASE("fuzz finding: a number beyond double range in a profile is a JSON error") {
  const auto text = lasnet::test::slurp(input("profile-number-overflow.json"));
  CHECK_THROWS_WITH_AS(parse_profile(text, "crash.json"),
                       doctest::Contains("crash.json: not valid JSON: "), lasnet::Error);
  const auto r = lasnet::test::run_lasnet(
      fmt::format("hw show '{}'", input("profile-number-overflow.json").string()));
  CHECK(r.status == 2);
  CHECK(r.err.find("not valid JSON") != std::string::npos);
}

TEST_CASE("every saved fuzz input is rejected cleanly or accepted and priced") {
  const auto hw = load_profile(fs::path(LASNET_SOURCE_DIR) / "hardware_profiles" / "h100.json");
  std::size_t files = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(LASNET_HARDENING_DIR) / "inputs")) {
    ++files;
    const auto name = entry.path().filename().string();
    CAPTURE(name);
    const auto text = lasnet::test::slurp(entry.path());
    try {
      if (name.starts_with("profile")) {
        (void)parse_profile(text, name);
      } else if (name.starts_with("predict")) {
        const auto cut = text.find("\n----\n");
        const auto spec = parse_spec(text.substr(0, cut), name);
        const auto profile =
            cut == std::string::npos ? hw : parse_profile(text.substr(cut + 6), name);
        predict_both(spec, profile);
      } else {
        predict_both(parse_spec(text, name), hw);
      }
    } catch (const lasnet::Error& e) {
      CHECK(std::string(e.what()).find(name) != std::string::npos);  // names its source
    }
  }
  CHECK(files >= 2);
}

TEST_CASE("audit finding: sizes past int64 or memory are rejected at the boundary, not priced") {
  // Before the limits, batch 2^63-1 and a 4e9 x 4e9 map overflowed int64 element counts (UB,
  // negative GFLOP in the report) and 1e8 blocks ran out of memory (exit 3, bad_alloc).
  const std::vector<std::pair<const char*, const char*>> cases{
      {"spec-batch-int64-max.json", "batch: 9223372036854775807 is over the limit of 65536"},
      {"spec-map-overflows-int64.json", "input.height: 4000000000 is over the limit of 16384"},
      {"spec-1e8-blocks.json", "stages[0].blocks: 100000000 is over the limit of 1024"},
  };
  for (const auto& [file, message] : cases) {
    CAPTURE(file);
    CHECK_THROWS_WITH_AS(parse_spec(lasnet::test::slurp(input(file)), file),
                         doctest::Contains(message), lasnet::Error);
    const auto r =
        lasnet::test::run_lasnet(fmt::format("predict '{}' --hw v100", input(file).string()));
    CHECK(r.status == 2);
    CHECK(r.err.find(message) != std::string::npos);
  }
  const auto r = lasnet::test::run_lasnet("predict examples/resnet50.json --hw v100 --batch 65537");
  CHECK(r.status == 2);
  CHECK(r.err.find("--batch: Value 65537 not in range 1 to 65536") != std::string::npos);
}

TEST_CASE(
    "audit finding: JSON nested 100000 deep crashed the process; now exit 2 naming the file") {
  // Printing such a value into a message recursed once per level until the stack overflowed
  // (the seeds inputs/*-deep-nesting.json nest 100 deep, within the fuzzers' input size). The
  // object is level 1, so the 65th bracket is the 64th '[' after `"stages": `: the first is at
  // column 28 (27 characters before it), the 64th at 27 + 64 = 91; with "x" for "deep", 88.
  CHECK_THROWS_WITH_AS(
      parse_spec(lasnet::test::slurp(input("spec-deep-nesting.json")), "deep.json"),
      "deep.json: nested deeper than 64 levels (line 1, column 91)", lasnet::Error);
  const auto dir = lasnet::test::scratch_dir("deep_nesting");
  const auto spec = dir / "very_deep.json";
  std::ofstream(spec) << "{\"name\": \"x\", \"stages\": " << std::string(100000, '[');
  auto r = lasnet::test::run_lasnet(fmt::format("predict '{}' --hw v100", spec.string()));
  CHECK(r.status == 2);
  CHECK(r.err == fmt::format("lasnet: error: {}: nested deeper than 64 levels (line 1, column "
                             "88)\n",
                             spec.string()));
  r = lasnet::test::run_lasnet(fmt::format("predict examples/resnet50.json --hw '{}'",
                                           input("profile-deep-nesting.json").string()));
  CHECK(r.status == 2);
  CHECK(r.err.find("profile-deep-nesting.json: nested deeper than 64 levels") != std::string::npos);
}
