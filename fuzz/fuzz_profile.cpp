// Hardware-profile parser: any byte string either parses to a profile that round-trips through
// profile_to_json, or is rejected with lasnet::Error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lasnet/common/error.hpp"
#include "lasnet/predictor/profile.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto profile = lasnet::predictor::parse_profile(text, "fuzz.json");
    const auto json = lasnet::predictor::profile_to_json(profile);
    const auto again = lasnet::predictor::parse_profile(json, "roundtrip.json");
    if (lasnet::predictor::profile_to_json(again) != json) std::abort();
  } catch (const lasnet::Error&) {
  }
  return 0;
}
