// The Python module `lasnet`: the CLI's own commands, called in-process. It only converts:
// Python arguments become the command's arguments (keyword `per="stage"` -> `--per stage`,
// True -> a bare flag, a list -> a comma list), dicts become JSON files in a scratch folder, and
// the command's JSON output (--format json) comes back through json.loads, so every result is
// the dict of the CLI's JSON and every default is the CLI's. A lasnet::Error or an argument
// error raises lasnet.Error with the message the CLI prints after "lasnet: error: ".
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "context.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/common/file_io.hpp"
#include "lasnet/predictor/profile.hpp"
#include "lasnet/predictor/spec.hpp"

namespace py = pybind11;
namespace fs = std::filesystem;

namespace {

// A folder of its own under the system temp dir, removed with everything in it.
class Scratch {
 public:
  Scratch() {
    std::string pattern = (fs::temp_directory_path() / "lasnet-python-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw lasnet::Error("cannot create a scratch folder");
    dir_ = pattern;
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path file(std::string_view name) const { return dir_ / name; }

 private:
  fs::path dir_;
};

std::string to_json(const py::handle& value) {
  return py::module_::import("json").attr("dumps")(value).cast<std::string>();
}
py::object from_json(const std::string& text) {
  return py::module_::import("json").attr("loads")(text);
}

std::string path_of(const py::handle& value) {
  return py::str(py::module_::import("os").attr("fspath")(value)).cast<std::string>();
}

// A spec or profile argument: a path (str or os.PathLike) as it is; a dict is parsed first as
// "the spec dict" / "the profile dict" (so that its messages name no scratch file), then written
// to `name` in the scratch folder for the command to read.
std::string input_argument(const py::handle& value, const Scratch& scratch, std::string_view name,
                           bool is_spec) {
  if (!py::isinstance<py::dict>(value)) return path_of(value);
  const std::string text = to_json(value);
  if (is_spec) {
    (void)lasnet::predictor::parse_spec(text, "the spec dict");
  } else {
    (void)lasnet::predictor::parse_profile(text, "the profile dict");
  }
  const fs::path file = scratch.file(name);
  lasnet::write_file_atomic(file, text, lasnet::Overwrite::refuse);
  return file.string();
}

void append_options(std::vector<std::string>& args, const py::kwargs& options) {
  for (const auto& [key, value] : options) {
    std::string flag = "--";
    flag += key.cast<std::string>();
    std::replace(flag.begin(), flag.end(), '_', '-');
    if (value.is_none() || (py::isinstance<py::bool_>(value) && !value.cast<bool>())) continue;
    args.push_back(flag);
    if (py::isinstance<py::bool_>(value)) continue;
    if (py::isinstance<py::list>(value) || py::isinstance<py::tuple>(value)) {
      std::string joined;
      for (const auto& item : value) {
        if (!joined.empty()) joined += ',';
        joined += py::str(item).cast<std::string>();
      }
      args.push_back(joined);
    } else {
      args.push_back(py::str(value).cast<std::string>());
    }
  }
}

// Runs `lasnet ARGS [--format json] --out FILE` (the commands of cli/main.cpp that need no GPU)
// and returns the file's JSON.
py::object run_command(std::vector<std::string> args, const Scratch& scratch, bool format_json) {
  const fs::path out = scratch.file("out.json");
  if (format_json) args.insert(args.end(), {"--format", "json"});
  args.insert(args.end(), {"--out", out.string()});
  const auto context = lasnet::cli::make_context("lasnet");
  CLI::App app{"lasnet", "lasnet"};
  app.require_subcommand(1);
  lasnet::cli::add_hw_commands(app, context);
  lasnet::cli::add_predict_command(app, context);
  lasnet::cli::add_schedule_command(app, context);
  std::reverse(args.begin(), args.end());  // CLI11 takes a vector last argument first
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    throw lasnet::Error(e.what());
  }
  return from_json(lasnet::read_text_file(out));
}

py::object command(const std::string& name, const py::handle& spec, const py::handle& hw,
                   const py::kwargs& options) {
  Scratch scratch;
  std::vector<std::string> args{name, input_argument(spec, scratch, "spec.json", true), "--hw",
                                input_argument(hw, scratch, "hw.json", false)};
  append_options(args, options);
  return run_command(std::move(args), scratch, true);
}

std::vector<fs::path> profile_dirs() {
  return lasnet::cli::make_context("lasnet").profile_dirs;
}

}  // namespace

PYBIND11_MODULE(lasnet, m) {
  m.doc() =
      "Latency prediction and scheduling of spatially dynamic CNNs (the lasnet CLI's "
      "commands; results are the dicts of their JSON outputs).";
  m.attr("__version__") = LASNET_VERSION;
  static py::exception<lasnet::Error> error(m, "Error");
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const lasnet::Error& e) {
      PyErr_SetString(error.ptr(), e.what());
    }
  });

  m.def(
      "predict",
      [](const py::handle& spec, const py::handle& hw, const py::kwargs& options) {
        return command("predict", spec, hw, options);
      },
      py::arg("spec"), py::arg("hw"),
      "`lasnet predict SPEC --hw HW --OPTION VALUE ...` as the dict of its JSON output. spec: a "
      "path or a spec dict; hw: a profile name, a path or a profile dict; options: batch, "
      "density, granularity ('4-4-2-1'), mode, precision, fusion, per ('op', 'block', "
      "'stage'), dense_only, kernels.");
  m.def(
      "schedule",
      [](const py::handle& spec, const py::handle& hw, const py::kwargs& options) {
        return command("schedule", spec, hw, options);
      },
      py::arg("spec"), py::arg("hw"),
      "`lasnet schedule SPEC --hw HW ...` as the dict of its plan JSON; options as the command's "
      "(density, budget_ms, streams, tolerance, fusion, granularity, batch, ...).");
  m.def(
      "generate_profile",
      [](const py::kwargs& options) {
        Scratch scratch;
        std::vector<std::string> args{"hw", "generate"};
        append_options(args, options);
        return run_command(std::move(args), scratch, false);  // it writes JSON, has no --format
      },
      "`lasnet hw generate --OPTION VALUE ...` (sms, lanes, clock_ghz, dram_gbs, ...) as the "
      "profile dict it writes.");
  m.def(
      "load_spec",
      [](const py::handle& spec) {
        const auto value = py::isinstance<py::dict>(spec)
                               ? lasnet::predictor::parse_spec(to_json(spec), "the spec dict")
                               : lasnet::predictor::load_spec(path_of(spec));
        return from_json(lasnet::predictor::spec_to_json(value));
      },
      py::arg("spec"), "A spec file or dict, validated, as the dict of its canonical JSON.");
  m.def(
      "load_profile",
      [](const py::handle& name_or_file) {
        return from_json(lasnet::predictor::profile_to_json(lasnet::predictor::load_profile(
            lasnet::predictor::find_profile(path_of(name_or_file), profile_dirs()))));
      },
      py::arg("hw"), "`lasnet hw show HW --format json` as a dict.");
  m.def(
      "list_profiles",
      [] {
        std::vector<std::string> names;
        for (const auto& path : lasnet::predictor::list_profiles(profile_dirs())) {
          names.push_back(path.stem().string());
        }
        return names;
      },
      "The names `lasnet hw list` shows, in its order.");
}
