#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "lasnet/common/error.hpp"
#include "lasnet/common/file_io.hpp"
#include "scratch_dir.hpp"

namespace fs = std::filesystem;

TEST_CASE("write_file_atomic writes the whole content and leaves no temporary file") {
  const lasnet::test::ScratchDir dir("lasnet_test_file_io");
  const auto file = dir / "out.json";
  lasnet::write_file_atomic(file, "{\"a\": 1}\n", lasnet::Overwrite::refuse);
  CHECK(lasnet::read_text_file(file) == "{\"a\": 1}\n");
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++entries;
  CHECK(entries == 1);
  CHECK(((fs::status(file).permissions() & fs::perms::owner_read) != fs::perms::none));
}

TEST_CASE("write_file_atomic refuses to overwrite unless allowed, and keeps the old file") {
  const lasnet::test::ScratchDir dir("lasnet_test_file_io_refuse");
  const auto file = dir / "out.txt";
  lasnet::write_file_atomic(file, "old", lasnet::Overwrite::refuse);
  CHECK_THROWS_WITH_AS(lasnet::write_file_atomic(file, "new", lasnet::Overwrite::refuse),
                       doctest::Contains("already exists (use --force"), lasnet::Error);
  CHECK(lasnet::read_text_file(file) == "old");
  lasnet::write_file_atomic(file, "new", lasnet::Overwrite::allow);
  CHECK(lasnet::read_text_file(file) == "new");
}

TEST_CASE("write_file_atomic names a missing directory") {
  CHECK_THROWS_WITH_AS(
      lasnet::write_file_atomic("/nonexistent_lasnet_dir/x.json", "x", lasnet::Overwrite::allow),
      doctest::Contains("does not exist"), lasnet::Error);
}

TEST_CASE("read_text_file names the file it cannot read") {
  CHECK_THROWS_WITH_AS(lasnet::read_text_file("/nonexistent_lasnet_file.json"),
                       doctest::Contains("/nonexistent_lasnet_file.json: cannot open"),
                       lasnet::Error);
  CHECK_THROWS_WITH_AS(lasnet::read_text_file(fs::temp_directory_path()),
                       doctest::Contains("is a directory"), lasnet::Error);
}
