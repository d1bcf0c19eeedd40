// Every input the fuzzers (fuzz/, scripts/fuzz.sh) once crashed on stays here as a regression:
// the parsers must reject it with lasnet::Error (or accept it), never abort, and the CLI must
// answer with a message and status 2.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "lasnet/common/error.hpp"
#include "lasnet/predictor/network.hpp"
#include "lasnet/predictor/profile.hpp"
#include "lasnet/predictor/spec.hpp"
#include "run.hpp"

namespace fs = std::filesystem;
using namespace lasnet::predictor;

namespace {

fs::path input(const char* name) { return fs::path(LASNET_HARDENING_DIR) / "inputs" / name; }

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
