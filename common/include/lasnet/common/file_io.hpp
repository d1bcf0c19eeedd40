#pragma once
// Whole-file reads and writes. Writes go to a temporary file in the same directory and are
// renamed into place, so an interrupted run never leaves half a file behind.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace lasnet {

enum class Overwrite { refuse, allow };

// Input files larger than this are refused before they are read: every JSON input of the tool
// (specs, profiles, measurements, plans) is far smaller, and a runaway file must not exhaust
// memory. ONNX models, which carry weights, pass their own limit.
inline constexpr std::uintmax_t max_input_file_bytes = std::uintmax_t{64} << 20;  // 64 MiB

// Reads a file into memory; throws lasnet::Error naming the file if it cannot be read or holds
// more than max_bytes.
std::string read_text_file(const std::filesystem::path& path,
                           std::uintmax_t max_bytes = max_input_file_bytes);

// Writes `content` to `path` atomically (temp file + rename). With Overwrite::refuse an existing
// file is an error that suggests --force.
void write_file_atomic(const std::filesystem::path& path, std::string_view content,
                       Overwrite overwrite);

}  // namespace lasnet
