#include "lasnet/importer/onnx_import.hpp"

#include <fmt/format.h>

#include <charconv>

#include "internal.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/common/file_io.hpp"

namespace lasnet::importer {

Imported import_onnx(std::string_view bytes, std::string_view source,
                     const ImportOptions& options) {
  const detail::Graph graph = detail::load_graph(bytes, source, options);
  const detail::LayerGraph layers = detail::to_layers(graph);
  std::string name = options.name;
  if (name.empty()) name = std::filesystem::path(source).stem().string();
  if (name.empty()) name = "model";
  return detail::recognise(layers, name);
}

Imported import_onnx_file(const std::filesystem::path& file, const ImportOptions& options) {
  ImportOptions o = options;
  if (o.name.empty()) o.name = file.stem().string();
  return import_onnx(read_text_file(file, max_onnx_file_bytes), file.string(), o);
}

std::array<std::int64_t, 4> parse_input_shape(std::string_view text, std::string_view what) {
  std::array<std::int64_t, 4> dims{};
  std::size_t at = 0;
  for (std::size_t k = 0; k < 4; ++k) {
    const std::size_t end = k < 3 ? text.find('x', at) : text.size();
    const auto part = text.substr(at, end == std::string_view::npos ? 0 : end - at);
    std::int64_t v = 0;
    const auto r = std::from_chars(part.data(), part.data() + part.size(), v);
    if (end == std::string_view::npos || part.empty() || r.ec != std::errc{} ||
        r.ptr != part.data() + part.size() || v < 1 || v > (std::int64_t{1} << 24))
      throw Error(fmt::format("{}: '{}' is not NxCxHxW with positive integers (e.g. 1x3x224x224)",
                              what, text));
    dims[k] = v;
    at = end + 1;
  }
  return dims;
}

std::string format_report(const Imported& imported) {
  std::string s =
      fmt::format("schema_version {}{}\n", imported.schema_version,
                  imported.v2_features.empty()
                      ? std::string{}
                      : fmt::format(" (needs: {})", fmt::join(imported.v2_features, ", ")));
  s += fmt::format("{:.4f} GMACs per image, {:.0f} parameters\n\n", imported.macs / 1e9,
                   imported.parameters);
  s += fmt::format("blocks ({}):\n", imported.blocks.size());
  for (const auto& b : imported.blocks)
    s += fmt::format("  {:<8} {:<18} from {:<24} {}\n", b.stage, b.kind, b.first, b.summary);
  std::size_t weights_only = 0;
  std::string rows;
  for (const auto& n : imported.plain) {
    if (n.placed == detail::weights_only) {
      ++weights_only;
      continue;
    }
    rows += fmt::format("  {:<28} {:<20} {}\n", n.node, n.op_type, n.placed);
  }
  s += fmt::format("\nnodes in no block ({}, and {} over weights only):\n",
                   imported.plain.size() - weights_only, weights_only);
  return s + rows;
}

}  // namespace lasnet::importer
