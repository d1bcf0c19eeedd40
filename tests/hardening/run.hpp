#pragma once
// Runs the `lasnet` binary for the hardening tests: exit status, stdout and stderr apart.
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "scratch_dir.hpp"

namespace lasnet::test {

struct Run {
  int status = -1;  // exit status; 128 + N when killed by signal N
  std::string out;
  std::string err;
};

inline std::string slurp(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A unique directory for one test, removed when it goes (tests/scratch_dir.hpp).
inline ScratchDir scratch_dir(const std::string& name) {
  return ScratchDir("lasnet_hardening_" + name);
}

// Runs a shell command line from the repository root, capturing both streams.
inline Run run_shell(const std::string& command_line) {
  const ScratchDir dir("lasnet_hardening_run");
  const auto out = dir / "out";
  const auto err = dir / "err";
  const std::string command = fmt::format("cd '{}' && {} >'{}' 2>'{}'", LASNET_SOURCE_DIR,
                                          command_line, out.string(), err.string());
  const int raw = std::system(command.c_str());
  Run r;
  if (WIFEXITED(raw)) r.status = WEXITSTATUS(raw);
  if (WIFSIGNALED(raw)) r.status = 128 + WTERMSIG(raw);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

// `prefix` is put before the binary (e.g. "ulimit -f 1;" or an env assignment).
inline Run run_lasnet(const std::string& args, const std::string& prefix = "") {
  return run_shell(fmt::format("{} '{}' {}", prefix, LASNET_BINARY, args));
}

}  // namespace lasnet::test
