// docs/errors.md is the table of every error the CLI can print; this test runs it. Each row's
// reproducer runs with bash from the repository root, and the exit status and stderr must match
// the row. Rows with no reproducer ("-") are counted and must say why in the doc.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <filesystem>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "run.hpp"

namespace fs = std::filesystem;

namespace {

struct Row {
  std::string id, pattern, cause, reproducer;
  int status = 0;
};

std::string strip(std::string s) {
  const auto b = s.find_first_not_of(' ');
  const auto e = s.find_last_not_of(' ');
  s = b == std::string::npos ? "" : s.substr(b, e - b + 1);
  if (s.size() >= 2 && s.front() == '`' && s.back() == '`') s = s.substr(1, s.size() - 2);
  return s;
}

// Splits a Markdown table row on '|' not escaped as "\|" (which becomes '|').
std::vector<std::string> cells(const std::string& line) {
  std::vector<std::string> out;
  std::string cell;
  for (std::size_t i = 1; i < line.size(); ++i) {
    if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '|') {
      cell += '|';
      ++i;
    } else if (line[i] == '|') {
      out.push_back(strip(cell));
      cell.clear();
    } else {
      cell += line[i];
    }
  }
  return out;
}

std::vector<Row> read_table() {
  std::istringstream doc(lasnet::test::slurp(fs::path(LASNET_SOURCE_DIR) / "docs" / "errors.md"));
  std::vector<Row> rows;
  const std::regex id("[A-Z][0-9]{2}");
  for (std::string line; std::getline(doc, line);) {
    if (!line.starts_with("| ")) continue;
    const auto c = cells(line);
    if (c.size() != 5 || !std::regex_match(c[0], id)) continue;
    rows.push_back({c[0], c[1], c[2], c[4], std::stoi(c[3])});
  }
  return rows;
}

lasnet::test::Run run_row(const Row& row) {
  const auto scratch = lasnet::test::scratch_dir("errors_" + row.id);
  const auto script = scratch / "repro.sh";
  const std::string preamble = fmt::format(
      R"(T='{}'
echo '{{}}' > "$T/exists.json"
lasnet() {{ '{}' "$@"; }}
j() {{ printf '%s' "$1" > "$T/in.json"; echo "$T/in.json"; }}
p() {{ sed "$1" hardware_profiles/v100.json > "$T/p.json"; echo "$T/p.json"; }}
B='"name":"t","input":{{"channels":3,"height":8,"width":8}}'
S='"stages":[{{"block":"basic","blocks":1,"out_channels":8}}]'
)",
      (scratch / "t").string(), LASNET_BINARY);
  fs::create_directories(scratch / "t");
  std::ofstream(script) << preamble << row.reproducer << "\n";
  auto r = lasnet::test::run_shell(fmt::format("bash '{}'", script.string()));
  fs::remove_all(scratch);
  return r;
}

bool has_subcommand(const std::string& name) {
  return lasnet::test::run_lasnet("--help").out.find("\n  " + name + " ") != std::string::npos;
}

}  // namespace

TEST_CASE("docs/errors.md: every reachable row gives its status and message") {
  const auto rows = read_table();
  REQUIRE(rows.size() >= 80);
  std::size_t ran = 0, unreachable = 0, skipped = 0;
  const bool profiler_branch = has_subcommand("validate");
  for (const auto& row : rows) {
    CAPTURE(row.id);
    CAPTURE(row.reproducer);
    if (row.reproducer == "-" || row.reproducer.starts_with("- (")) {
      ++unreachable;
      continue;
    }
    if (row.cause.find("*profiler branch*") != std::string::npos && !profiler_branch) {
      ++skipped;
      continue;
    }
#ifdef LASNET_SANITIZED
    // ASan reserves terabytes of address space: an address-space limit stops it from starting.
    if (row.reproducer.find("ulimit -v") != std::string::npos) {
      MESSAGE(fmt::format("SKIPPED {} under sanitizers: {}", row.id, row.reproducer));
      ++skipped;
      continue;
    }
#endif
    ++ran;
    const auto r = run_row(row);
    CAPTURE(r.err);
    CHECK(r.status == row.status);
    CHECK(std::regex_search(r.err, std::regex(row.pattern)));
    if (row.status == 2 && r.err.find("lasnet: error: ") != std::string::npos) {
      CHECK(r.err.find("internal error") == std::string::npos);
    }
  }
  if (!profiler_branch) {
    MESSAGE(
        "SKIPPED the *profiler branch* rows of docs/errors.md: this binary has no "
        "`validate`/`calibrate` (branch profiler not merged)");
  }
  MESSAGE(fmt::format("docs/errors.md: {} rows ran, {} unreachable from the CLI, {} skipped", ran,
                      unreachable, skipped));
  CHECK(ran >= 70);
}
