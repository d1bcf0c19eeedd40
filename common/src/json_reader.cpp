#include "lasnet/common/json_reader.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "lasnet/common/error.hpp"

namespace lasnet::json {

namespace {

std::string type_name(const value& v) {
  if (v.is_number_integer()) return "an integer";
  if (v.is_number_float()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_null()) return "null";
  if (v.is_array()) return "an array";
  return "an object";
}

std::string brief(const value& v) {
  // replace: a message must never throw over a string that is not valid UTF-8.
  std::string text = v.dump(-1, ' ', false, value::error_handler_t::replace);
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

// A linear scan of the brackets outside strings: cheap, and it runs before anything recursive
// touches the document. Malformed text that passes is left to the parser's own message.
void check_nesting(std::string_view text, std::string_view source) {
  std::size_t depth = 0;
  std::size_t line = 1;
  std::size_t line_start = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      line_start = i + 1;
    }
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_nesting_depth) {
        throw Error(fmt::format("{}: nested deeper than {} levels (line {}, column {})", source,
                                max_nesting_depth, line, i - line_start + 1));
      }
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
}

}  // namespace

value parse(std::string_view text, std::string_view source) {
  if (text.size() > max_document_bytes) {
    throw Error(fmt::format("{}: {} bytes is over the limit of {} MiB for a JSON document", source,
                            text.size(), max_document_bytes >> 20));
  }
  check_nesting(text, source);
  try {
    return value::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    // Not only parse_error: a number too large for a double ("1e400") is out_of_range.
    throw Error(fmt::format("{}: not valid JSON: {}", source, e.what()));
  }
}

std::string join(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return fmt::format("{}.{}", path, key);
}

std::string join(std::string_view path, std::size_t index) {
  return fmt::format("{}[{}]", path, index);
}

void fail(std::string_view path, std::string_view message) {
  if (path.empty()) throw Error(std::string(message));
  throw Error(fmt::format("{}: {}", path, message));
}

std::int64_t as_int(const value& v, std::string_view path) {
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 9.0e15) {
      return static_cast<std::int64_t>(d);
    }
    fail(path, fmt::format("expected an integer, got {}", brief(v)));
  }
  fail(path, fmt::format("expected an integer, got {} ({})", type_name(v), brief(v)));
}

double as_number(const value& v, std::string_view path) {
  if (!v.is_number()) {
    fail(path, fmt::format("expected a number, got {} ({})", type_name(v), brief(v)));
  }
  const double d = v.get<double>();
  if (!std::isfinite(d)) fail(path, "expected a finite number");
  return d;
}

std::string as_string(const value& v, std::string_view path) {
  if (!v.is_string()) {
    fail(path, fmt::format("expected a string, got {} ({})", type_name(v), brief(v)));
  }
  return v.get<std::string>();
}

bool as_bool(const value& v, std::string_view path) {
  if (!v.is_boolean()) {
    fail(path, fmt::format("expected true or false, got {} ({})", type_name(v), brief(v)));
  }
  return v.get<bool>();
}

const value& as_array(const value& v, std::string_view path) {
  if (!v.is_array()) {
    fail(path, fmt::format("expected an array, got {} ({})", type_name(v), brief(v)));
  }
  return v;
}

std::int64_t positive_int(const value& v, std::string_view path) {
  const std::int64_t i = as_int(v, path);
  if (i <= 0) fail(path, fmt::format("must be positive, got {}", i));
  return i;
}

double positive_number(const value& v, std::string_view path) {
  const double d = as_number(v, path);
  if (!(d > 0)) fail(path, fmt::format("must be positive, got {}", d));
  return d;
}

double non_negative_number(const value& v, std::string_view path) {
  const double d = as_number(v, path);
  if (d < 0) fail(path, fmt::format("must not be negative, got {}", d));
  return d;
}

ObjectReader::ObjectReader(const value& object, std::string path)
    : object_(object), path_(std::move(path)) {
  if (!object_.is_object()) {
    fail(path_.empty() ? std::string("(top level)") : path_,
         fmt::format("expected an object, got {} ({})", type_name(object_), brief(object_)));
  }
}

bool ObjectReader::has(std::string_view key) const {
  return object_.find(std::string(key)) != object_.end();
}

const value& ObjectReader::required(std::string_view key) {
  seen_.emplace(key);
  const auto it = object_.find(std::string(key));
  if (it == object_.end()) fail(path_of(key), "missing required key");
  return *it;
}

const value* ObjectReader::optional(std::string_view key) {
  seen_.emplace(key);
  const auto it = object_.find(std::string(key));
  return it == object_.end() ? nullptr : &*it;
}

std::int64_t ObjectReader::required_positive_int(std::string_view key) {
  return positive_int(required(key), path_of(key));
}

std::int64_t ObjectReader::optional_positive_int(std::string_view key, std::int64_t fallback) {
  const value* v = optional(key);
  return v ? positive_int(*v, path_of(key)) : fallback;
}

double ObjectReader::required_positive_number(std::string_view key) {
  return positive_number(required(key), path_of(key));
}

std::string ObjectReader::required_string(std::string_view key) {
  return as_string(required(key), path_of(key));
}

std::string ObjectReader::optional_string(std::string_view key, std::string fallback) {
  const value* v = optional(key);
  return v ? as_string(*v, path_of(key)) : std::move(fallback);
}

void ObjectReader::reject_unknown() const {
  for (const auto& [key, _] : object_.items()) {
    if (!seen_.contains(key)) {
      std::string known;
      for (const auto& k : seen_) known += (known.empty() ? "" : ", ") + k;
      fail(path_of(key), fmt::format("unknown key (known keys here: {})", known));
    }
  }
}

}  // namespace lasnet::json
