// The common label of every JSON document the tool writes (docs/outputs.md).
#include <doctest/doctest.h>

#include "lasnet/common/document.hpp"
#include "lasnet/common/error.hpp"

namespace {

std::optional<int> version_of(const char* text, int newest) {
  const auto j = lasnet::json::parse(text, "t.json");
  lasnet::json::ObjectReader r(j, "");
  const auto v = lasnet::read_document_version(r, "plan", newest);
  r.reject_unknown();  // the label's keys count as read
  return v;
}

}  // namespace

TEST_CASE("output documents start with schema, version and tool_version, in that order") {
  auto j = lasnet::output_document("plan", 2);
  j["spec"] = "resnet50";
  auto it = j.begin();
  CHECK(it.key() == "schema");
  CHECK(*it == "lasnet.plan");
  CHECK((++it).key() == "version");
  CHECK(*it == 2);
  CHECK((++it).key() == "tool_version");
  CHECK(*it == LASNET_VERSION);
  CHECK((++it).key() == "spec");
  CHECK(lasnet::input_document("spec", 1).dump() == R"({"schema":"lasnet.spec","version":1})");
}

TEST_CASE("reading a label: the version, none without schema, errors naming the key") {
  CHECK(version_of(R"({"schema": "lasnet.plan", "version": 2, "tool_version": "0.1.0"})", 2) == 2);
  CHECK(version_of(R"({"schema": "lasnet.plan", "version": 1})", 2) == 1);
  CHECK(!version_of("{}", 2).has_value());  // the caller checks its older label
  const std::pair<const char*, const char*> cases[] = {
      {R"({"schema": "lasnet.spec", "version": 1})", "schema: expected \"lasnet.plan\""},
      {R"({"schema": "lasnet.plan"})", "version: missing required key"},
      {R"({"schema": "lasnet.plan", "version": 3})",
       "version: lasnet.plan 3 is not a version this tool reads (1 to 2)"},
      {R"({"schema": "lasnet.plan", "version": 0})",
       "version: lasnet.plan 0 is not a version this tool reads (1 to 2)"},
      {R"({"schema": "lasnet.plan", "version": "2"})", "version: expected an integer"},
      {R"({"schema": 7, "version": 1})", "schema: expected a string"},
  };
  for (const auto& [text, message] : cases) {
    CAPTURE(text);
    CHECK_THROWS_WITH_AS(version_of(text, 2), doctest::Contains(message), lasnet::Error);
  }
}
