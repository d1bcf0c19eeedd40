#include "lasnet/common/file_io.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <system_error>

#include "lasnet/common/error.hpp"

namespace lasnet {

namespace {

std::string size_limit_message(const std::filesystem::path& path, std::uintmax_t size,
                               std::uintmax_t max_bytes) {
  return fmt::format("{}: {} bytes is over the limit of {} MiB for an input file", path.string(),
                     size, max_bytes >> 20);
}

}  // namespace

std::string read_text_file(const std::filesystem::path& path, std::uintmax_t max_bytes) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw Error(fmt::format("{}: is a directory, expected a file", path.string()));
  }
  // Checked before reading where the size is known; pipes and devices are cut off while read.
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > max_bytes) throw Error(size_limit_message(path, size, max_bytes));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
  std::string text;
  std::array<char, 1 << 16> chunk{};
  while (in) {
    in.read(chunk.data(), chunk.size());
    text.append(chunk.data(), static_cast<std::size_t>(in.gcount()));
    if (text.size() > max_bytes) throw Error(size_limit_message(path, text.size(), max_bytes));
  }
  if (in.bad()) throw Error(fmt::format("{}: read failed", path.string()));
  return text;
}

void write_file_atomic(const std::filesystem::path& path, std::string_view content,
                       Overwrite overwrite) {
  std::error_code ec;
  if (overwrite == Overwrite::refuse && std::filesystem::exists(path, ec)) {
    throw Error(fmt::format("{}: already exists (use --force to overwrite)", path.string()));
  }
  if (std::filesystem::is_directory(path, ec)) {
    throw Error(fmt::format("{}: is a directory, expected a file name", path.string()));
  }
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  if (!std::filesystem::exists(dir, ec)) {
    throw Error(fmt::format("{}: directory {} does not exist", path.string(), dir.string()));
  }
  if (!std::filesystem::is_directory(dir, ec)) {
    throw Error(fmt::format("{}: {} is not a directory", path.string(), dir.string()));
  }
  // mkstemp gives a unique name in the target directory, so rename() stays on one filesystem.
  std::string tmpl = (dir / (path.filename().string() + ".tmp.XXXXXX")).string();
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0) {
    throw Error(fmt::format("{}: cannot create a temporary file in {}: {}", path.string(),
                            dir.string(), std::strerror(errno)));
  }
  std::size_t written = 0;
  int saved_errno = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      saved_errno = errno;
      break;
    }
    written += static_cast<std::size_t>(n);
  }
  // mkstemp creates 0600; outputs are ordinary user files.
  if (saved_errno == 0 && ::fchmod(fd, 0644) != 0) saved_errno = errno;
  if (saved_errno == 0 && ::fsync(fd) != 0) saved_errno = errno;
  if (::close(fd) != 0 && saved_errno == 0) saved_errno = errno;
  if (saved_errno != 0) {
    ::unlink(tmpl.c_str());
    throw Error(fmt::format("{}: write failed: {}", path.string(), std::strerror(saved_errno)));
  }
  if (overwrite == Overwrite::refuse) {
    // link() fails if the name exists, so a file that appeared since the check above is never
    // replaced. Filesystems without hard links fall back to the checked rename.
    if (::link(tmpl.c_str(), path.c_str()) == 0) {
      ::unlink(tmpl.c_str());
      return;
    }
    const int e = errno;
    if (e == EEXIST) {
      ::unlink(tmpl.c_str());
      throw Error(fmt::format("{}: already exists (use --force to overwrite)", path.string()));
    }
    if (e != EPERM && e != ENOTSUP && e != EXDEV) {
      ::unlink(tmpl.c_str());
      throw Error(fmt::format("{}: cannot move the finished file into place: {}", path.string(),
                              std::strerror(e)));
    }
  }
  if (std::rename(tmpl.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmpl.c_str());
    throw Error(fmt::format("{}: cannot move the finished file into place: {}", path.string(),
                            std::strerror(e)));
  }
}

}  // namespace lasnet
