// Every file the CLI writes goes through write_file_atomic: temp file in the target directory,
// then rename (or link, when overwriting is refused). These tests hold the CLI to it: clear
// errors for bad directories, no overwrite without --force, and no half-written file when the
// writer fails or the process dies mid-write.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "lasnet/common/error.hpp"
#include "lasnet/common/file_io.hpp"
#include "run.hpp"

namespace fs = std::filesystem;
using lasnet::test::run_lasnet;
using lasnet::test::slurp;

namespace {

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  return names;
}

void put(const fs::path& file, const std::string& text) {
  std::ofstream(file, std::ios::binary) << text;
}

// One command per writer the CLI has; `{}` is the output file.
const std::vector<std::string> writers{
    "predict examples/resnet50.json --hw h100 --format json -o '{}'",
    "schedule examples/resnet50.json --hw h100 --density 0.5 -o '{}'",
    "schedule examples/resnet50.json --hw h100 --density 0.5 --plan '{}'",
    "schedule examples/resnet50.json --hw h100 --density 0.5 --trace '{}'",
    "schedule examples/resnet50.json --hw h100 --density 0.5 --write-spec '{}'",
    "hw generate --name t --sms 10 --lanes 64 --clock-ghz 1 --dram-gbs 100 --l2-mb 1 "
    "--smem-kb 64 -o '{}'",
    "import tests/data/onnx/resnet18.onnx --out '{}'",
    "plot examples/resnet50.json --hw h100 --batch 1 --density-step 0.25 -o '{}'",
};

}  // namespace

TEST_CASE("every writer: a nonexistent directory is a clear error, status 2, nothing written") {
  for (const auto& w : writers) {
    CAPTURE(w);
    const auto r = run_lasnet(fmt::format(fmt::runtime(w), "/nonexistent_lasnet_dir/out.json"));
    CHECK(r.status == 2);
    CHECK(r.err.find("/nonexistent_lasnet_dir/out.json: directory /nonexistent_lasnet_dir does "
                     "not exist") != std::string::npos);
    CHECK(!fs::exists("/nonexistent_lasnet_dir"));
  }
}

TEST_CASE("every writer: a path through a regular file is a clear error, status 2") {
  const auto dir = lasnet::test::scratch_dir("through_file");
  put(dir / "plain", "x");
  for (const auto& w : writers) {
    CAPTURE(w);
    const auto r = run_lasnet(fmt::format(fmt::runtime(w), (dir / "plain" / "out.json").string()));
    CHECK(r.status == 2);
    CHECK(r.err.find("is not a directory") != std::string::npos);
  }
  CHECK(entries(dir) == std::vector<std::string>{"plain"});
}

TEST_CASE("every writer: an unwritable directory is a clear error, status 2, no stray temp file") {
  const auto dir = lasnet::test::scratch_dir("readonly");
  fs::permissions(dir, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                           fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
  // root ignores directory permissions: run the binary as nobody then.
  std::string prefix;
  if (::geteuid() == 0) {
    REQUIRE_MESSAGE(std::system("command -v setpriv >/dev/null") == 0,
                    "running as root needs setpriv to drop to an unprivileged user");
    prefix = "setpriv --reuid=65534 --regid=65534 --clear-groups";
  }
  for (const auto& w : writers) {
    CAPTURE(w);
    const auto r = run_lasnet(fmt::format(fmt::runtime(w), (dir / "out.json").string()), prefix);
    CHECK(r.status == 2);
    CHECK(r.err.find("cannot create a temporary file in") != std::string::npos);
    CHECK(r.err.find("Permission denied") != std::string::npos);
    CHECK(entries(dir).empty());
  }
  fs::permissions(dir, fs::perms::owner_all);
}

TEST_CASE("every writer: an existing file is untouched without --force and replaced with it") {
  const auto dir = lasnet::test::scratch_dir("force");
  const auto file = dir / "out.json";
  for (const auto& w : writers) {
    CAPTURE(w);
    put(file, "old contents\n");
    auto r = run_lasnet(fmt::format(fmt::runtime(w), file.string()));
    CHECK(r.status == 2);
    CHECK(r.err.find(file.string() + ": already exists (use --force to overwrite)") !=
          std::string::npos);
    CHECK(slurp(file) == "old contents\n");
    r = run_lasnet(fmt::format(fmt::runtime(w), file.string()) + " --force");
    CHECK(r.status == 0);
    const auto text = slurp(file);
    CHECK(text != "old contents\n");
    CHECK(!text.empty());
    CHECK(text.back() == '\n');  // whole, as the writer finishes every output with a newline
    CHECK(entries(dir) == std::vector<std::string>{"out.json"});
  }
}

TEST_CASE("write_file_atomic: a writer that fails mid-write keeps the old file, no temp file") {
  const auto dir = lasnet::test::scratch_dir("throws");
  const auto file = dir / "out.txt";
  put(file, "old");
  // In a child: a 4 KiB file-size limit makes write() fail with EFBIG half-way through.
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{4096, 4096};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    try {
      lasnet::write_file_atomic(file, std::string(1 << 20, 'x'), lasnet::Overwrite::allow);
    } catch (const lasnet::Error& e) {
      const std::string what = e.what();
      ::_exit(what.find("write failed: File too large") != std::string::npos ? 42 : 1);
    }
    ::_exit(0);
  }
  int raw = 0;
  ::waitpid(pid, &raw, 0);
  REQUIRE(WIFEXITED(raw));
  CHECK(WEXITSTATUS(raw) == 42);  // the writer threw, with the reason
  CHECK(slurp(file) == "old");
  CHECK(entries(dir) == std::vector<std::string>{"out.txt"});
}

TEST_CASE("write_file_atomic: a process killed mid-write leaves the old file whole") {
  const auto dir = lasnet::test::scratch_dir("killed");
  const auto file = dir / "out.txt";
  put(file, "old");
  // SIGXFSZ's default action kills the child inside write(), after 4 KiB of 1 MiB.
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const rlimit limit{4096, 4096};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    lasnet::write_file_atomic(file, std::string(1 << 20, 'x'), lasnet::Overwrite::allow);
    ::_exit(0);
  }
  int raw = 0;
  ::waitpid(pid, &raw, 0);
  REQUIRE(WIFSIGNALED(raw));
  CHECK(WTERMSIG(raw) == SIGXFSZ);
  CHECK(slurp(file) == "old");
  // The dead process could not clean up: its temp file may remain, never under the real name.
  for (const auto& name : entries(dir)) {
    if (name != "out.txt") CHECK(name.starts_with("out.txt.tmp."));
  }
}

TEST_CASE("CLI killed mid-write (file-size limit) leaves the old output, or none") {
  const auto dir = lasnet::test::scratch_dir("cli_killed");
  const auto file = dir / "report.json";
  const std::string args = fmt::format(
      "predict examples/resnet101.json --hw h100 --per op --format json -o '{}'", file.string());
  // ulimit -f counts 1 KiB blocks; the per-op report is far larger.
  auto r = run_lasnet(args, "ulimit -f 4;");
  CHECK(r.status == 128 + SIGXFSZ);
  CHECK(!fs::exists(file));  // none
  put(file, "old");
  r = run_lasnet(args + " --force", "ulimit -f 4;");
  CHECK(r.status == 128 + SIGXFSZ);
  CHECK(slurp(file) == "old");  // the old one
  r = run_lasnet(args + " --force");
  CHECK(r.status == 0);
  CHECK(slurp(file).size() > 4096);
}
