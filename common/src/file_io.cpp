#include "lasnet/common/file_io.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include "lasnet/common/error.hpp"

namespace lasnet {

std::string read_text_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw Error(fmt::format("{}: is a directory, expected a file", path.string()));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw Error(fmt::format("{}: read failed", path.string()));
  return text.str();
}

void write_file_atomic(const std::filesystem::path& path, std::string_view content,
                       Overwrite overwrite) {
  std::error_code ec;
  if (overwrite == Overwrite::refuse && std::filesystem::exists(path, ec)) {
    throw Error(fmt::format("{}: already exists (use --force to overwrite)", path.string()));
  }
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  if (!std::filesystem::is_directory(dir, ec)) {
    throw Error(fmt::format("{}: directory {} does not exist", path.string(), dir.string()));
  }
  // mkstemp gives a unique name in the target directory, so rename() stays on one filesystem.
  std::string tmpl = (dir / (path.filename().string() + ".tmp.XXXXXX")).string();
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0) {
    throw Error(fmt::format("{}: cannot create a temporary file: {}", path.string(),
                            std::strerror(errno)));
  }
  std::size_t written = 0;
  bool ok = true;
  while (written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      ok = false;
      break;
    }
    written += static_cast<std::size_t>(n);
  }
  const int saved_errno = errno;
  // mkstemp creates 0600; outputs are ordinary user files.
  ok = ok && ::fchmod(fd, 0644) == 0;
  ok = ok && ::fsync(fd) == 0;
  ok = (::close(fd) == 0) && ok;
  if (!ok) {
    ::unlink(tmpl.c_str());
    throw Error(
        fmt::format("{}: write failed: {}", path.string(), std::strerror(saved_errno)));
  }
  if (std::rename(tmpl.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmpl.c_str());
    throw Error(fmt::format("{}: cannot move the finished file into place: {}", path.string(),
                            std::strerror(e)));
  }
}

}  // namespace lasnet
