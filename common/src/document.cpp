#include "lasnet/common/document.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace lasnet {

nlohmann::ordered_json input_document(std::string_view name, int version) {
  nlohmann::ordered_json j;
  j["schema"] = fmt::format("lasnet.{}", name);
  j["version"] = version;
  return j;
}

nlohmann::ordered_json output_document(std::string_view name, int version) {
  auto j = input_document(name, version);
  j["tool_version"] = LASNET_VERSION;
  return j;
}

std::optional<int> read_document_version(json::ObjectReader& r, std::string_view name, int newest) {
  if (!r.has("schema")) return std::nullopt;
  const std::string expected = fmt::format("lasnet.{}", name);
  if (json::as_string(r.required("schema"), r.path_of("schema")) != expected) {
    json::fail(r.path_of("schema"), fmt::format("expected \"{}\"", expected));
  }
  const std::int64_t version = json::as_int(r.required("version"), r.path_of("version"));
  if (version < 1 || version > newest) {
    json::fail(r.path_of("version"),
               fmt::format("{} {} is not a version this tool reads ({})", expected,
                           std::clamp<std::int64_t>(version, -1000000, 1000000),
                           newest == 1 ? std::string("1") : fmt::format("1 to {}", newest)));
  }
  if (const auto* tool = r.optional("tool_version"))
    json::as_string(*tool, r.path_of("tool_version"));
  return static_cast<int>(version);
}

}  // namespace lasnet
