// ONNX importer: any byte string either imports to a spec, or is rejected with lasnet::Error.
// A spec that needs no schema-2 feature must be one today's parse_spec accepts (the importer
// writes what the predictor reads). Anything else (a crash, another exception, a sanitizer
// report) is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lasnet/common/error.hpp"
#include "lasnet/importer/onnx_import.hpp"
#include "lasnet/predictor/spec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  lasnet::importer::Imported imported;
  try {
    imported = lasnet::importer::import_onnx(bytes, "fuzz.onnx", {});
  } catch (const lasnet::Error&) {
    return 0;  // rejected with a message: the expected outcome for most inputs
  }
  (void)lasnet::importer::format_report(imported);
  if (imported.schema_version == 1) {
    try {
      const auto spec = lasnet::predictor::parse_spec(imported.spec_json, "imported.json");
      (void)lasnet::predictor::stage_geometry(spec);
    } catch (const lasnet::Error&) {
      // The parser may refuse what it bounds (e.g. over 256 stages, a map past its limits);
      // anything it refuses must still be a message, never a crash.
    }
  }
  return 0;
}
