#pragma once
// Strict reading of JSON input files. Every error names the JSON path of the offending value
// (`stages[2].granularity: 9 is larger than the 7x7 map`); loaders prefix the file name.
// ObjectReader rejects keys nobody asked for, so a typo never becomes a silent default.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace lasnet::json {

using value = nlohmann::json;

// No input of the tool nests deeper than a few levels; the limit keeps everything that walks a
// document recursively (printing a value into a message, copying) off a deep stack.
inline constexpr std::size_t max_nesting_depth = 64;
inline constexpr std::size_t max_document_bytes = std::size_t{64} << 20;  // as read_text_file

// Parses text; a syntax error becomes lasnet::Error "SOURCE: not valid JSON: ...". A document
// larger than max_document_bytes or nested deeper than max_nesting_depth is refused before it is
// parsed.
value parse(std::string_view text, std::string_view source);

// "stages" + 2 -> "stages[2]"; "" + "batch" -> "batch"; "input" + "height" -> "input.height".
std::string join(std::string_view path, std::string_view key);
std::string join(std::string_view path, std::size_t index);

// Throws lasnet::Error("PATH: MESSAGE").
[[noreturn]] void fail(std::string_view path, std::string_view message);

// Type-checked scalar reads; `what` is the JSON path used in messages.
std::int64_t as_int(const value& v, std::string_view path);
double as_number(const value& v, std::string_view path);
std::string as_string(const value& v, std::string_view path);
bool as_bool(const value& v, std::string_view path);
const value& as_array(const value& v, std::string_view path);

// Range checks that name the path.
std::int64_t positive_int(const value& v, std::string_view path);
double positive_number(const value& v, std::string_view path);
double non_negative_number(const value& v, std::string_view path);

class ObjectReader {
 public:
  ObjectReader(const value& object, std::string path);

  bool has(std::string_view key) const;
  // The member's value; missing keys are an error naming the path.
  const value& required(std::string_view key);
  const value* optional(std::string_view key);
  std::string path_of(std::string_view key) const { return join(path_, key); }
  const std::string& path() const { return path_; }

  std::int64_t required_positive_int(std::string_view key);
  std::int64_t optional_positive_int(std::string_view key, std::int64_t fallback);
  double required_positive_number(std::string_view key);
  std::string required_string(std::string_view key);
  std::string optional_string(std::string_view key, std::string fallback);

  // Throws if the object has a key that no required()/optional()/has() call asked for.
  void reject_unknown() const;

 private:
  const value& object_;
  std::string path_;
  std::set<std::string, std::less<>> seen_;
};

}  // namespace lasnet::json
