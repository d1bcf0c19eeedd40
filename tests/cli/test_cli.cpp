// End-to-end tests of the `lasnet` binary: exit statuses, messages, and output formats.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sys/wait.h>

#include <array>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Run {
  int status = -1;
  std::string output;  // stdout and stderr together
};

Run lasnet(const std::string& args, bool with_stderr = true) {
  const std::string command = fmt::format("cd '{}' && '{}' {} {}", LASNET_SOURCE_DIR, LASNET_BINARY,
                                          args, with_stderr ? "2>&1" : "2>/dev/null");
  Run r;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    r.output.append(buffer.data(), n);
  const int raw = ::pclose(pipe);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

// A file in this run's own scratch folder (a unique name, removed when the program exits).
// tests/scratch_dir.hpp's ScratchDir, spelled out: its namespace `lasnet` would make every
// call of this file's lasnet() ambiguous.
std::filesystem::path scratch(const char* name) {
  struct Dir {
    std::filesystem::path path;
    Dir() {
      std::string pattern =
          (std::filesystem::temp_directory_path() / "lasnet_test_cli.XXXXXX").string();
      REQUIRE(mkdtemp(pattern.data()) != nullptr);
      path = pattern;
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Dir dir;
  return dir.path / name;
}

// Unquoted CSV (the predict and schedule outputs need no quoting) into rows of cells.
std::vector<std::vector<std::string>> csv_rows(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    rows.emplace_back();
    std::size_t start = 0;
    for (std::size_t comma; (comma = line.find(',', start)) != std::string::npos;
         start = comma + 1) {
      rows.back().push_back(line.substr(start, comma - start));
    }
    rows.back().push_back(line.substr(start));
  }
  return rows;
}

// Every cell outside the named text columns is empty or a number.
void check_numeric_columns(const std::vector<std::vector<std::string>>& rows,
                           const std::set<std::string>& text_columns) {
  for (std::size_t r = 1; r < rows.size(); ++r) {
    REQUIRE(rows[r].size() == rows[0].size());
    for (std::size_t c = 0; c < rows[r].size(); ++c) {
      const std::string& cell = rows[r][c];
      if (text_columns.contains(rows[0][c]) || cell.empty()) continue;
      CAPTURE(rows[0][c]);
      CAPTURE(cell);
      double value = 0;
      const auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), value);
      CHECK((ec == std::errc() && end == cell.data() + cell.size()));
    }
  }
}

}  // namespace

TEST_CASE("predict: the README's query gives dense and dynamic totals with a per-block breakdown") {
  const auto r = lasnet(
      "predict examples/resnet101.json --hw v100 --density 0.5 --granularity 4-4-2-1 --format json",
      false);
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.output);
  CHECK(j["schema"] == "lasnet.predict");
  CHECK(j["version"] == 1);
  CHECK(j["hardware"] == "v100");
  CHECK(j["dynamic_settings"]["granularity"] == nlohmann::json::array({4, 4, 2, 1}));
  CHECK(j["dense"]["blocks"].size() == 1 + 33 + 1);
  CHECK(j["dynamic"]["blocks"].size() == 1 + 33 + 1);
  CHECK(j["dense"]["latency_ms"].get<double>() > 0);
  CHECK(j["dynamic"]["latency_ms"].get<double>() > 0);
  CHECK(j["latency_ratio"].get<double>() ==
        doctest::Approx(j["dynamic"]["latency_ms"].get<double>() /
                        j["dense"]["latency_ms"].get<double>()));
  CHECK(j["dynamic"]["blocks"][5]["granularity"] == 4);
}

TEST_CASE("predict: per-op JSON carries the schedule; table and CSV render") {
  auto r = lasnet("predict examples/resnet50.json --hw h100-sxm --batch 1 --per op --format json",
                  false);
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.output);
  const auto& op = j["dynamic"]["blocks"][1]["ops"][0];
  CHECK(op["name"] == "masker");
  CHECK(op.contains("tile"));
  CHECK(op["waves"].get<int>() >= 1);
  r = lasnet("predict examples/mobilenetv2.json --hw tx2 --per stage");
  REQUIRE(r.status == 0);
  CHECK(r.output.find("dense   total:") != std::string::npos);
  CHECK(r.output.find("dynamic / dense:") != std::string::npos);
  r = lasnet("predict examples/regnety_400mf.json --hw rtx3060 --format csv --per block");
  REQUIRE(r.status == 0);
  CHECK(r.output.rfind("block,dense_ms,dynamic_ms", 0) == 0);
  // Numeric columns hold numbers or nothing; the text column `execution` says why a cell is
  // empty (the table's "-" and "dense"). The stem runs dense in the dynamic network.
  const auto rows = csv_rows(r.output);
  REQUIRE(rows.size() > 2);
  CHECK(rows[0].back() == "execution");
  CHECK(rows[1] == std::vector<std::string>{rows[1][0], rows[1][1], rows[1][2], rows[1][3], "", "",
                                            rows[1][6], rows[1][7], rows[1][8], "dense"});
  CHECK(rows[2].back() == "dynamic");
  check_numeric_columns(rows, {"block", "bound", "execution"});
  r = lasnet(
      "predict examples/regnety_400mf.json --hw rtx3060 --format csv --per block "
      "--dense-only");
  REQUIRE(r.status == 0);
  const auto dense = csv_rows(r.output);
  CHECK(dense[1][2].empty());  // no dynamic_ms
  CHECK(dense[1].back() == "dense_only");
  check_numeric_columns(dense, {"block", "bound", "execution"});
  r = lasnet("predict examples/resnet50.json --hw v100 --mode layer --density 0.3 --per stage");
  CHECK(r.status == 0);
  r = lasnet("predict examples/resnet50.json --hw v100 --mode channel --density 0.3 --per stage");
  CHECK(r.status == 0);
}

TEST_CASE("predict --kernels: convs priced at the schedules the project's kernels run") {
  const std::string query =
      "predict examples/regnety_400mf.json --hw h200-calibrated --batch 128 --dense-only "
      "--per op --format json";
  const auto plain = lasnet(query, false);
  const auto kernels = lasnet(query + " --kernels", false);
  REQUIRE(plain.status == 0);
  REQUIRE(kernels.status == 0);
  const auto p = nlohmann::json::parse(plain.output);
  const auto k = nlohmann::json::parse(kernels.output);
  CHECK_FALSE(p.contains("schedule"));
  CHECK(k["schedule"] == "kernels");
  // The stem keeps the search; s2.1's grouped conv2 is priced as the direct kernel runs it.
  const auto op_ms = [](const nlohmann::json& j, std::size_t block, const std::string& name) {
    for (const auto& op : j["dense"]["blocks"][block]["ops"]) {
      if (op["name"] == name) return op["latency_ms"].get<double>();
    }
    return -1.0;
  };
  CHECK(op_ms(k, 0, "conv") == doctest::Approx(op_ms(p, 0, "conv")));
  CHECK(k["dense"]["blocks"][3]["name"] == "s2.1");
  CHECK(op_ms(k, 3, "conv2") > 0);
  CHECK(op_ms(k, 3, "conv2") != doctest::Approx(op_ms(p, 3, "conv2")));
  const auto table = lasnet("predict examples/resnet50.json --hw h100-calibrated --kernels");
  CHECK(table.status == 0);
  CHECK(table.output.find("convs at the project kernels' schedules") != std::string::npos);
}

TEST_CASE("predict: --out writes the report whole and refuses to overwrite without --force") {
  const auto file = scratch("report.json");
  auto r = lasnet(fmt::format("predict examples/resnet50.json --hw v100 --format json --out '{}'",
                              file.string()));
  REQUIRE(r.status == 0);
  CHECK(r.output.empty());
  CHECK(nlohmann::json::parse(std::ifstream(file))["spec"] == "resnet50");
  r = lasnet(fmt::format("predict examples/resnet50.json --hw v100 --out '{}'", file.string()));
  CHECK(r.status == 2);
  CHECK(r.output.find("already exists (use --force") != std::string::npos);
  r = lasnet(
      fmt::format("predict examples/resnet50.json --hw v100 --out '{}' --force", file.string()));
  CHECK(r.status == 0);
}

TEST_CASE("predict: bad input exits 2 with one message naming what is wrong") {
  struct Case {
    const char* args;
    const char* message;
  };
  const Case cases[] = {
      {"predict examples/missing.json --hw v100", "examples/missing.json: cannot open"},
      {"predict examples/resnet101.json --hw v100 --granularity 4-4-2-9",
       "--granularity[3]: 9 is larger than the 7x7 map of stage layer4"},
      {"predict examples/resnet101.json --hw v100 --granularity 4-4-2",
       "--granularity: has 3 entries but the spec has 4 stages"},
      {"predict examples/resnet101.json --hw v100 --density 1.5",
       "--density: 1.5 is outside [0, 1]"},
      {"predict examples/resnet101.json --hw a100", "no hardware profile named 'a100'"},
      {"predict examples/resnet101.json --hw v100 --precision int8",
       "--precision: 'int8' is not one of fp32, tf32, fp16"},
      {"predict examples/resnet101.json --hw v100 --fusion glue",
       "--fusion: 'glue' is not a fusion"},
      {"predict examples/resnet101.json --hw v100 --format yaml",
       "--format: yaml not in {table,json,csv}"},
      {"predict examples/resnet101.json --hw v100 --per layer",
       "--per: layer not in {op,block,stage}"},
      {"predict examples/resnet101.json", "--hw is required"},
      {"predict hardware_profiles/v100.json --hw v100",
       "hardware_profiles/v100.json: input: missing required key"},
  };
  for (const auto& c : cases) {
    CAPTURE(std::string(c.args));
    const auto r = lasnet(c.args);
    CHECK(r.status == 2);
    CHECK(r.output.find(c.message) != std::string::npos);
  }
}

TEST_CASE("hw list, show and generate") {
  auto r = lasnet("hw list");
  REQUIRE(r.status == 0);
  for (const char* name : {"v100", "tx2", "rtx3090", "rtx3060", "jetson-nano", "h100-sxm"}) {
    CHECK(r.output.find(name) != std::string::npos);
  }
  r = lasnet("hw show v100 --format json", false);
  REQUIRE(r.status == 0);
  CHECK(nlohmann::json::parse(r.output)["sm_count"] == 80);
  CHECK(nlohmann::json::parse(r.output)["schema"] == "lasnet.profile");
  r = lasnet("hw list --format json", false);
  REQUIRE(r.status == 0);
  const auto list = nlohmann::json::parse(r.output);
  CHECK(list["schema"] == "lasnet.hw_list");
  CHECK(list["version"] == 1);
  CHECK(list["profiles"].size() >= 6);
  r = lasnet("hw show v100");
  CHECK(r.output.find("80") != std::string::npos);

  const auto file = scratch("gen.json");
  const std::string gen = fmt::format(
      "hw generate --name a100 --sms 108 --lanes 64 --clock-ghz 1.41 --dram-gbs 1555 --l2-mb 40 "
      "--smem-kb 164 --tf32-tflops 156 --out '{}'",
      file.string());
  r = lasnet(gen);
  REQUIRE(r.status == 0);
  r = lasnet(gen);
  CHECK(r.status == 2);
  CHECK(r.output.find("already exists") != std::string::npos);
  CHECK(lasnet(gen + " --force").status == 0);
  r = lasnet(fmt::format("predict examples/resnet50.json --hw '{}' --per stage", file.string()));
  CHECK(r.status == 0);
  CHECK(r.output.find("on a100") != std::string::npos);

  r = lasnet("hw generate --name x --lanes 64");
  CHECK(r.status == 2);
  CHECK(r.output.find("--sms is required") != std::string::npos);
  r = lasnet(
      "hw generate --name x --sms 1 --lanes 64 --clock-ghz 1 --dram-gbs 0 --l2-mb 1 "
      "--smem-kb 64");
  CHECK(r.status == 2);
  CHECK(r.output.find("dram_bandwidth_bytes_per_s: must be positive, got 0") != std::string::npos);
}

TEST_CASE("hw transfer: a calibration onto another GPU's profile") {
  const auto file = scratch("transferred.json");
  auto r = lasnet(
      fmt::format("hw transfer --calibration h100-calibrated --to v100 --out '{}'", file.string()));
  REQUIRE(r.status == 0);
  r = lasnet(fmt::format("hw show '{}' --format json", file.string()), false);
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.output);
  CHECK(j["name"] == "v100-from-h100-calibrated");
  CHECK(j["sm_count"] == 80);
  CHECK(j["provenance"]["source"] == "transferred");
  // The launch costs are the calibration's, in the target's SM cycles, unless --target-launch.
  const auto profile_json = [](const std::string& name) {
    auto shown = lasnet(fmt::format("hw show {} --format json", name), false);
    REQUIRE(shown.status == 0);
    return nlohmann::json::parse(shown.output);
  };
  const auto h100 = profile_json("h100-calibrated"), v100 = profile_json("v100");
  const double cycles = v100["clock_hz"].get<double>() / h100["clock_hz"].get<double>();
  CHECK(j["launch_overhead_s"].get<double>() ==
        doctest::Approx(h100["launch_overhead_s"].get<double>() * cycles));
  const auto own_launch = scratch("transferred-own-launch.json");
  r =
      lasnet(fmt::format("hw transfer --calibration h100-calibrated --to v100 --target-launch "
                         "--out '{}'",
                         own_launch.string()));
  REQUIRE(r.status == 0);
  CHECK(profile_json(fmt::format("'{}'", own_launch.string()))["launch_overhead_s"] ==
        v100["launch_overhead_s"]);
  r = lasnet(fmt::format("predict examples/resnet50.json --hw '{}' --per stage", file.string()));
  CHECK(r.status == 0);
  r = lasnet(
      fmt::format("hw transfer --calibration h100-calibrated --to v100 --out '{}'", file.string()));
  CHECK(r.status == 2);
  CHECK(r.output.find("already exists") != std::string::npos);

  r = lasnet("hw transfer --calibration v100 --to h200");
  CHECK(r.status == 2);
  CHECK(r.output.find("hw transfer: --calibration v100: 'v100' is a datasheet profile with no "
                      "fitted calibration to transfer") != std::string::npos);
  r = lasnet("hw transfer --calibration h100-calibrated --to h200-calibrated");
  CHECK(r.status == 2);
  CHECK(r.output.find("hw transfer: --to h200-calibrated: 'h200-calibrated' is already "
                      "calibrated; give the GPU's measured or datasheet profile") !=
        std::string::npos);
}

TEST_CASE("validate --measured-only: what the timings lack is left out and named, no GPU") {
  // The H200 timings hold ResNet-50's blocks only: MobileNetV2's are listed as not covered.
  const std::string run =
      "validate examples/resnet50.json examples/mobilenetv2.json --hw h200-calibrated --batch 1 "
      "--density 0.5 --granularity spec --measurements "
      "bench/results/calibration_measurements_h200.json";
  auto r = lasnet(run + " --measured-only");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(r.output.find("--measured-only: ") != std::string::npos);
  CHECK(r.output.find("mobilenetv2 b1.0: not in calibration_measurements_h200.json "
                      "(--measured-only)") != std::string::npos);
  // ResNet-50's network rows are there, MobileNetV2's not (none of its blocks was compared).
  CHECK(std::regex_search(r.output, std::regex("\nresnet50 +1 +dense ")));
  CHECK_FALSE(std::regex_search(r.output, std::regex("\nmobilenetv2[ (]")));
  // Without the flag the missing configurations are to be timed, which needs the GPU.
  r = lasnet(run);
  CHECK(r.status == 2);
  r = lasnet("validate examples/resnet50.json --hw h200-calibrated --measured-only");
  CHECK(r.status == 2);
  CHECK(r.output.find("--measured-only requires --measurements") != std::string::npos);
}

TEST_CASE("validate --record: the profile with its scores, shown by hw list") {
  const auto file = scratch("recorded.json");
  auto r = lasnet(fmt::format(
      "validate examples/resnet50.json --hw h200-calibrated --batch 1 --density 0.5 "
      "--granularity spec --measurements bench/results/calibration_measurements_h200.json "
      "--record '{}'",
      file.string()));
  REQUIRE_MESSAGE(r.status == 0, r.output);
  r = lasnet(fmt::format("hw show '{}' --format json", file.string()), false);
  REQUIRE(r.status == 0);
  const auto v = nlohmann::json::parse(r.output)["provenance"]["validation"];
  CHECK(v["kernels"].get<int>() > 10);
  CHECK(v["kernel_mape"].get<double>() > 0);
  CHECK(v["networks"] == 2);  // the dense and the dynamic network
  CHECK(v["report"].get<std::string>().find("lasnet validate examples/resnet50.json") == 0);
  r = lasnet(fmt::format("hw show '{}'", file.string()));
  CHECK(r.output.find("kernels ") != std::string::npos);
}

TEST_CASE("usage errors exit 2; --help and --version exit 0") {
  CHECK(lasnet("").status == 2);
  CHECK(lasnet("frobnicate").status == 2);
  CHECK(lasnet("--help").status == 0);
  const auto v = lasnet("--version");
  CHECK(v.status == 0);
  CHECK(v.output.find("lasnet 0.1.0") != std::string::npos);
}

namespace {
// A folder for one test inside this run's unique scratch folder (never a fixed /tmp name, so
// two runs at once do not collide).
std::filesystem::path scratch_dir(const char* name) {
  const auto dir = scratch(name);
  std::filesystem::remove_all(dir);
  return dir;
}
std::string slurp(const std::filesystem::path& file) {
  std::ifstream in(file);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
}  // namespace

TEST_CASE("sample: N specs and an index, the same from the same seed, refused without --force") {
  const auto dir = scratch_dir("sample");
  auto r = lasnet(fmt::format("sample --count 3 --seed 7 --out '{}'", dir.string()));
  REQUIRE(r.status == 0);
  CHECK(r.output.find("3 specs (seed 7") != std::string::npos);
  const auto index = nlohmann::json::parse(std::ifstream(dir / "index.json"));
  CHECK(index["seed"] == 7);
  CHECK(index["count"] == 3);
  CHECK(index["hardware"] == "h100-calibrated");
  REQUIRE(index["files"].size() == 3);
  const std::string first = slurp(dir / "sample_0000.json");
  CHECK(nlohmann::json::parse(first)["name"] == "sample_7_0");
  CHECK(index["files"][2]["file"] == "sample_0002.json");
  // Every written spec predicts.
  r = lasnet(
      fmt::format("predict '{}' --hw h100 --per stage", (dir / "sample_0002.json").string()));
  CHECK(r.status == 0);

  r = lasnet(fmt::format("sample --count 3 --seed 7 --out '{}'", dir.string()));
  CHECK(r.status == 2);
  CHECK(r.output.find("sample_0000.json: already exists (use --force") != std::string::npos);
  r = lasnet(fmt::format("sample --count 3 --seed 7 --out '{}' --force", dir.string()));
  CHECK(r.status == 0);
  CHECK(slurp(dir / "sample_0000.json") == first);  // reproducible from the seed
  // --first continues the same seed's sequence.
  const auto more = scratch_dir("sample_more");
  r = lasnet(fmt::format("sample --count 1 --first 2 --seed 7 --out '{}'", more.string()));
  REQUIRE(r.status == 0);
  CHECK(slurp(more / "sample_0002.json") == slurp(dir / "sample_0002.json"));
}

TEST_CASE("sample --runnable: only what the kernels time; bad arguments exit 2") {
  const auto dir = scratch_dir("sample_runnable");
  auto r = lasnet(fmt::format("sample --count 2 --seed 1 --runnable --out '{}'", dir.string()));
  REQUIRE(r.status == 0);
  for (const char* name : {"sample_0000.json", "sample_0001.json"}) {
    const auto spec = nlohmann::json::parse(std::ifstream(dir / name));
    CHECK(spec["dynamic"]["mode"] == "spatial");
    CHECK(spec["precision"] != "fp16");
    for (const auto& stage : spec["stages"]) CHECK(stage["block"] != "basic");
  }
  CHECK(lasnet(fmt::format("sample --count 0 --seed 1 --out '{}'", dir.string())).status == 2);
  CHECK(lasnet("sample --count 1 --seed 1").status == 2);  // --out is required
  const auto file = scratch("not_a_dir");
  std::ofstream(file) << "x";
  r = lasnet(fmt::format("sample --count 1 --seed 1 --out '{}'", file.string()));
  CHECK(r.status == 2);
  CHECK(r.output.find("exists and is not a directory") != std::string::npos);
  r = lasnet(fmt::format("sample --count 1 --seed 1 --hw nosuchgpu --out '{}'", dir.string()));
  CHECK(r.status == 2);
}

TEST_CASE("predict and schedule a schema-2 spec: layer stages, convnext, SE, non-dividing S") {
  const auto spec = scratch("schema2.json");
  {
    std::ofstream out(spec);
    out << R"({"schema_version": 2, "name": "s2", "input": {"channels": 3, "height": 48,
      "width": 40},
      "stem": [{"type": "conv", "out_channels": 16, "kernel": 4, "stride": 4, "padding": 0,
                "norm": "none", "bias": true, "activation": "none"},
               {"type": "elementwise", "op": "layernorm"}],
      "stages": [{"name": "a", "block": "convnext", "blocks": 2, "out_channels": 16},
        {"name": "down", "layers": [{"type": "conv", "out_channels": 32, "kernel": 2,
                                     "stride": 2, "padding": 0}]},
        {"name": "b", "block": "inverted_residual", "blocks": 1, "expansion": 4,
         "out_channels": 32, "kernel": 5, "activation": "hardswish", "se_channels": 8,
         "se_gate": "hardsigmoid"}],
      "head": [{"type": "global_avg_pool"}, {"type": "fc", "out_channels": 10}],
      "dynamic": {"granularity": "4-3", "density": 0.5}})";
  }
  // 48x40 -> 12x10 (a: S = 4 leaves partial patches) -> 6x5 (b: S = 3 too).
  const auto r = lasnet(
      fmt::format("predict {} --hw h100-sxm --per stage --format json", spec.string()), false);
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.output);
  std::vector<std::string> stages;
  for (const auto& s : j["dynamic"]["stages"]) stages.push_back(s["name"]);
  CHECK(stages == std::vector<std::string>{"stem", "a", "down", "b", "head"});
  CHECK(j["dynamic"]["latency_ms"].get<double>() > 0);
  const auto written = scratch("schema2.scheduled.json");
  const auto s = lasnet(fmt::format("schedule {} --hw h100-sxm --density 0.5 --write-spec {}",
                                    spec.string(), written.string()));
  REQUIRE_MESSAGE(s.status == 0, s.output);
  const auto again = lasnet(fmt::format("predict {} --hw h100-sxm", written.string()));
  CHECK_MESSAGE(again.status == 0, again.output);
}

TEST_CASE(
    "validate --dry-run: basic blocks are planned; blocks the kernels cannot run are listed") {
  // A ResNet-18-like spec (basic blocks) and one whose second stage uses 5x5 convs.
  const auto basic = scratch("r18.json"), wide = scratch("k5.json");
  const auto write = [](const std::filesystem::path& path, const char* second_stage) {
    std::ofstream(path) << fmt::format(
        R"({{"name": "{}", "batch": 1, "input": {{"channels": 64, "height": 16, "width": 16}},
             "stages": [{{"name": "layer1", "block": "basic", "blocks": 2, "out_channels": 64}},
                        {}],
             "dynamic": {{"granularity": "4-2", "density": 0.5}}}})",
        path.stem().string(), second_stage);
  };
  write(basic, R"({"name": "layer2", "block": "basic", "blocks": 1, "out_channels": 128,
                   "stride": 2})");
  write(wide, R"({"name": "layer2", "block": "basic", "blocks": 1, "out_channels": 128,
                  "stride": 2, "kernel": 5})");
  const std::string opts = " --hw h100 --density 0.5 --granularity spec --dry-run";
  const auto r = lasnet("validate " + basic.string() + opts);
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(r.output.find("n1 16x16 64-64-64 s1 g1 basic fp32 dense\n") != std::string::npos);
  CHECK(r.output.find("n1 16x16 64-128-128 s2 g1 basic fp32 S2 d0.5 gather+scatter\n") !=
        std::string::npos);
  CHECK(r.output.find("not covered") == std::string::npos);
  const auto k5 = lasnet("validate " + wide.string() + opts);
  REQUIRE_MESSAGE(k5.status == 0, k5.output);
  CHECK(
      k5.output.find("not covered: k5 layer2.0: a 5x5 spatial conv (the kernels run 3x3 only)\n") !=
      std::string::npos);
  CHECK(k5.output.find("n1 16x16 64-64-64 s1 g1 basic fp32 dense\n") != std::string::npos);
  // RegNetY's SE: timed with --se (keys marked), else as before.
  const std::string regnety =
      "validate examples/regnety_400mf.json --hw h100 --batch 1 --density 0.5 --granularity spec "
      "--dry-run";
  const auto plain = lasnet(regnety, false), se = lasnet(regnety + " --se", false);
  REQUIRE(plain.status == 0);
  REQUIRE(se.status == 0);
  CHECK(plain.output.find("n1 112x112 32-48-48 s2 g6 fp32 dense\n") != std::string::npos);
  CHECK(plain.output.find(" se") == std::string::npos);
  CHECK(se.output.find("n1 112x112 32-48-48 s2 g6 se8 fp32 dense\n") != std::string::npos);
}

TEST_CASE("validate --masks: generated masks are keyed apart; uniform keeps the default keys") {
  const std::string base =
      "validate examples/resnet50.json --hw h100 --batch 1 --density 0.5 --granularity spec "
      "--no-dense --dry-run";
  const auto plain = lasnet(base, false);
  const auto uniform = lasnet(base + " --masks uniform", false);
  const auto clustered = lasnet(base + " --masks clustered", false);
  const auto varied = lasnet(base + " --masks varied", false);
  REQUIRE(plain.status == 0);
  REQUIRE(clustered.status == 0);
  REQUIRE(varied.status == 0);
  CHECK(uniform.output == plain.output);
  CHECK(plain.output.find("mask:") == std::string::npos);
  CHECK(clustered.output.find("S4 d0.5 gather+scatter mask:clustered\n") != std::string::npos);
  CHECK(varied.output.find("mask:varied") != std::string::npos);
  const auto bad = lasnet(base + " --masks blobs");
  CHECK(bad.status == 2);
  CHECK(bad.output.find("--masks: blobs not in {uniform,clustered,varied}") != std::string::npos);
}

TEST_CASE("predict --masks: a mask model's statistics never price more than the default") {
  // The gathered reads' distinct pixels are at most P x extent^2 (the default's count), and a
  // clustered mask keeps P: only the DRAM floor of gather/gather_conv can drop.
  const std::string base =
      "predict examples/resnet50.json --hw h100-calibrated --batch 8 --density 0.3 "
      "--granularity 4-4-2-1 --fusion none --format json";
  const auto latency = [&](const std::string& extra) {
    const auto r = lasnet(base + extra, false);
    REQUIRE(r.status == 0);
    return nlohmann::json::parse(r.output)["dynamic"]["latency_ms"].get<double>();
  };
  const double plain = latency("");
  CHECK(latency(" --masks uniform") <= plain);
  CHECK(latency(" --masks clustered") <= plain);
  CHECK(latency(" --masks varied") > 0);
  const auto bad = lasnet("predict examples/resnet50.json --hw v100 --masks blobs");
  CHECK(bad.status == 2);
  CHECK(bad.output.find("--masks: blobs not in {uniform,clustered,varied}") != std::string::npos);
}

TEST_CASE("plot: an SVG on stdout whose marks are the S that schedule recommends") {
  const std::string query = "examples/resnet50.json --hw h100 --batch 1";
  const auto svg = lasnet("plot " + query, false);
  REQUIRE(svg.status == 0);
  CHECK(svg.output.rfind("<svg", 0) == 0);
  const auto plan = lasnet("schedule " + query + " --format json", false);
  REQUIRE(plan.status == 0);
  const auto j = nlohmann::json::parse(plan.output);
  for (const auto& stage : j["stages"]) {
    CHECK(svg.output.find(fmt::format("class=\"recommended\" data-stage=\"{}\" data-s=\"{}\"",
                                      stage["name"].get<std::string>(),
                                      stage["granularity"].get<int>())) != std::string::npos);
  }
  // --density moves the mark: at 0.2 the marks are schedule --density 0.2's choice.
  const auto low = lasnet("plot " + query + " --density 0.2", false);
  const auto low_plan = nlohmann::json::parse(
      lasnet("schedule " + query + " --density 0.2 --format json", false).output);
  REQUIRE(low.status == 0);
  CHECK(low.output.find(fmt::format("data-s=\"{}\" data-density=\"0.2\"",
                                    low_plan["stages"][0]["granularity"].get<int>())) !=
        std::string::npos);
}

TEST_CASE("plot: writes --out once, refuses to overwrite it without --force") {
  const auto file = scratch("plot.svg");
  const std::string query =
      "plot examples/resnet50.json --hw v100 --batch 1 --fusion all -o '" + file.string() + "'";
  REQUIRE(lasnet(query).status == 0);
  CHECK(std::filesystem::file_size(file) > 1000);
  const auto again = lasnet(query);
  CHECK(again.status == 2);
  CHECK(again.output.find("already exists (use --force to overwrite)") != std::string::npos);
  CHECK(lasnet(query + " --force").status == 0);
}

TEST_CASE("predict and schedule the union form: its ops, its U, the plan and the written spec") {
  // ResNet-50 at batch 8, d = 0.5, S 4-4-2-1: layer1 blocks run masker, dilate, conv1 on the
  // needed pixels (uniform expectation: 0.72 of 8 x 56 x 56 at S = 4), conv2 from conv1's map.
  const std::string base =
      "predict examples/resnet50.json --hw h100 --batch 8 --density 0.5 --granularity 4-4-2-1 "
      "--fusion union,gather,scatter --per op --format json";
  const auto needed = [&](const std::string& extra) {
    const auto r = lasnet(base + extra, false);
    REQUIRE(r.status == 0);
    const auto j = nlohmann::json::parse(r.output);
    CHECK(j["dynamic_settings"]["fusion"] == "union,gather,scatter");
    const auto& ops = j["dynamic"]["blocks"][2]["ops"];  // layer1.1
    std::vector<std::string> names;
    for (const auto& op : ops) names.push_back(op["name"]);
    CHECK(names == std::vector<std::string>{"masker", "dilate", "conv1", "conv2", "conv3"});
    CHECK(ops[2]["kind"] == "union_conv");
    CHECK(ops[2]["patch_side"] == 1);
    return ops[2]["active_patches"].get<double>() / (8.0 * 56 * 56);
  };
  CHECK(needed("") == doctest::Approx(0.72).epsilon(0.01));
  CHECK(needed(" --masks clustered") < 0.65);  // compact blobs share their halos

  // At d = 0.3 the search picks the union form for some blocks; the plan JSON and the written
  // spec carry it, and predicting that spec gives the plan's one-stream latency.
  const auto spec = scratch("union.scheduled.json");
  const auto s = lasnet(
      "schedule examples/resnet50.json --hw h100 --density 0.3 --format json "
      "--write-spec " +
          spec.string() + " --force",
      false);
  REQUIRE(s.status == 0);
  const auto plan = nlohmann::json::parse(s.output);
  std::size_t union_blocks = 0;
  for (const auto& b : plan["blocks"]) {
    if (b["fusion"].get<std::string>().starts_with("union")) ++union_blocks;
  }
  CHECK(union_blocks > 0);
  const auto written = nlohmann::json::parse(std::ifstream(spec));
  CHECK(written["dynamic"]["fusion"].dump().find("union,gather,scatter") != std::string::npos);
  const auto p = lasnet("predict " + spec.string() + " --hw h100 --format json", false);
  REQUIRE(p.status == 0);
  CHECK(nlohmann::json::parse(p.output)["dynamic"]["latency_ms"].get<double>() ==
        doctest::Approx(plan["single_stream_latency_ms"].get<double>()).epsilon(1e-6));

  // Union with masker is refused, naming the flag.
  const auto bad = lasnet("predict examples/resnet50.json --hw h100 --fusion masker,union");
  CHECK(bad.status == 2);
  CHECK(bad.output.find("--fusion: 'union' and 'masker' exclude each other") != std::string::npos);
}

TEST_CASE("run --dry-run: a schedule plan's launches on its streams, without a GPU") {
  const auto plan = scratch("run_plan.json");
  auto r = lasnet(fmt::format("schedule examples/resnet50.json --hw h100-calibrated --batch 1 "
                              "--density 0.5 --streams 2 --plan {} --force",
                              plan.string()),
                  false);
  REQUIRE(r.status == 0);
  r =
      lasnet(fmt::format("run {} --spec examples/resnet50.json --hw h100-calibrated --batch 1 "
                         "--dry-run",
                         plan.string()));
  CHECK(r.status == 0);
  // The plan, the same on one stream, dense: stem, 16 blocks and head each.
  CHECK(r.output.find("resnet50 (plan): dynamic batch 1 fp32, 2 stream(s), 18 units") !=
        std::string::npos);
  CHECK(r.output.find("resnet50 (one stream): dynamic batch 1 fp32, 1 stream(s), 18 units") !=
        std::string::npos);
  CHECK(r.output.find("resnet50 (dense): dense batch 1 fp32, 1 stream(s), 18 units") !=
        std::string::npos);
  CHECK(r.output.find("stem/conv0") != std::string::npos);
  CHECK(r.output.find("head/fc1") != std::string::npos);
  CHECK(r.output.find("layer2.0/shortcut           1") != std::string::npos);
  CHECK(r.output.find("not covered") == std::string::npos);
  r =
      lasnet(fmt::format("run {} --spec examples/resnet50.json --hw h100-calibrated --batch 1 "
                         "--dry-run --no-dense",
                         plan.string()));
  CHECK(r.status == 0);
  CHECK(r.output.find("resnet50 (dense)") == std::string::npos);
  // A spec runs as given, on one stream.
  r = lasnet("run examples/resnet101.json --hw h100 --batch 1 --dry-run");
  CHECK(r.status == 0);
  CHECK(r.output.find("resnet101 (spec): dynamic batch 1 fp32, 1 stream(s), 35 units") !=
        std::string::npos);
}

TEST_CASE("run: bad input exits 2 with one message naming what is wrong") {
  const auto plan = scratch("run_plan_b.json");
  REQUIRE(lasnet(fmt::format("schedule examples/resnet50.json --hw h100-calibrated --batch 1 "
                             "--density 0.5 --streams 2 --plan {} --force",
                             plan.string()),
                 false)
              .status == 0);
  struct Case {
    std::string args;
    std::string message;
  };
  const Case cases[] = {
      {fmt::format("run {} --hw h100-calibrated --batch 1", plan.string()),
       "is a plan, which names its spec but does not hold it: give the spec it was scheduled "
       "from with --spec"},
      {fmt::format("run {} --spec examples/resnet101.json --hw h100-calibrated --batch 1",
                   plan.string()),
       "spec: the plan is for 'resnet50', not 'resnet101'"},
      {fmt::format("run {} --spec examples/resnet50.json --hw h100-calibrated --dry-run",
                   plan.string()),
       "single_stream_latency_ms: the plan predicts"},
      {fmt::format("run {} --spec examples/resnet50.json --hw h100 --batch 1", plan.string()),
       "hardware: the plan was made for 'h100-calibrated', not --hw 'h100'"},
      {fmt::format("run {} --spec examples/resnet50.json --hw h100-calibrated --batch 1 "
                   "--density 0.3",
                   plan.string()),
       "--density, --granularity and --fusion: a plan fixes them"},
      {"run examples/resnet50.json --spec examples/resnet50.json --hw h100",
       "--spec: only with a plan file"},
      {"run bench/specs/torchvision/mobilenet_v3_large.json --hw h100 --batch 1",
       "mobilenet_v3_large: the kernels cannot run 14 unit(s) of the network, so it cannot run "
       "whole: stem: conv0: a conv with hardswish"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.args);
    const auto r = lasnet(c.args);
    CHECK(r.status == 2);
    CHECK(r.output.find(c.message) != std::string::npos);
  }
}
