#pragma once
// Whole-file reads and writes. Writes go to a temporary file in the same directory and are
// renamed into place, so an interrupted run never leaves half a file behind.
#include <filesystem>
#include <string>
#include <string_view>

namespace lasnet {

enum class Overwrite { refuse, allow };

// Reads a file into memory; throws lasnet::Error naming the file if it cannot be read.
std::string read_text_file(const std::filesystem::path& path);

// Writes `content` to `path` atomically (temp file + rename). With Overwrite::refuse an existing
// file is an error that suggests --force.
void write_file_atomic(const std::filesystem::path& path, std::string_view content,
                       Overwrite overwrite);

}  // namespace lasnet
