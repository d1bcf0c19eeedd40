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

TEST_CASE("read_text_file refuses a file over the size limit before reading it") {
  const lasnet::test::ScratchDir dir("lasnet_test_file_io_limit");
  // A sparse file of 64 MiB + 1 byte: the size check needs no data written.
  const auto big = dir / "big.json";
  std::ofstream(big).put('{');
  fs::resize_file(big, lasnet::max_input_file_bytes + 1);
  CHECK_THROWS_WITH_AS(lasnet::read_text_file(big),
                       (big.string() + ": 67108865 bytes is over the limit of 64 MiB for an "
                                       "input file")
                           .c_str(),
                       lasnet::Error);
  // A caller's own limit (the ONNX importer's is 2 GiB): 5 bytes fit a limit of 5, not of 4
  // (reported in MiB, so 0 here).
  const auto small = dir / "small.txt";
  std::ofstream(small) << "12345";
  CHECK(lasnet::read_text_file(small, 5) == "12345");
  CHECK_THROWS_WITH_AS(lasnet::read_text_file(small, 4),
                       doctest::Contains("small.txt: 5 bytes is over the limit of 0 MiB"),
                       lasnet::Error);
}

TEST_CASE("read_text_file stops reading an endless stream at the limit") {
  // /dev/zero has no size to check up front; reading stops one chunk past the limit.
  CHECK_THROWS_WITH_AS(lasnet::read_text_file("/dev/zero", 1 << 20),
                       doctest::Contains("/dev/zero: 1114112 bytes is over the limit of 1 MiB"),
                       lasnet::Error);
}
