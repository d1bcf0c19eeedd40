#pragma once
// The label every JSON document the tool writes starts with (docs/outputs.md):
//   {"schema": "lasnet.NAME", "version": N, "tool_version": "0.1.0", ...}
// NAME says what the document is, N counts changes of its keys, and docs/schema/NAME.schema.json
// describes version N. Specs and profiles are inputs too, so their readers also accept the
// labels that files written before this convention carry.
#include <nlohmann/json.hpp>

#include <optional>
#include <string_view>

#include "lasnet/common/json_reader.hpp"

namespace lasnet {

// An object holding "schema" and "version" and the build's "tool_version"; writers add their
// keys after it (ordered, so the label comes first in the file).
nlohmann::ordered_json output_document(std::string_view name, int version);

// The same without tool_version: for specs and profiles, which users write by hand and which
// carry their provenance elsewhere.
nlohmann::ordered_json input_document(std::string_view name, int version);

// Reads the label of a document: its version when the object has "schema" (which must be
// "lasnet.NAME", with an integer "version" in [1, newest]; "tool_version" is accepted),
// std::nullopt when it has no "schema" key, so the caller checks its older label instead.
std::optional<int> read_document_version(json::ObjectReader& r, std::string_view name, int newest);

}  // namespace lasnet
