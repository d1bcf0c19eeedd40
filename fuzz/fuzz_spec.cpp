// Model-spec parser: any byte string either parses to a spec that survives a round trip through
// spec_to_json, or is rejected with lasnet::Error. Anything else (a crash, another exception,
// a sanitizer report) is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lasnet/common/error.hpp"
#include "lasnet/predictor/spec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto spec = lasnet::predictor::parse_spec(text, "fuzz.json");
    (void)lasnet::predictor::stage_geometry(spec);
    // What the tool writes must read back: schedule writes specs through spec_to_json.
    const auto json = lasnet::predictor::spec_to_json(spec);
    const auto again = lasnet::predictor::parse_spec(json, "roundtrip.json");
    if (lasnet::predictor::spec_to_json(again) != json) std::abort();
  } catch (const lasnet::Error&) {
    // Rejected with a message: the expected outcome for most inputs.
  }
  return 0;
}
