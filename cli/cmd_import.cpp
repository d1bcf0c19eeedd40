// `lasnet import MODEL.onnx --out SPEC.json`: an ONNX model to a model spec (docs/import.md).
#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "context.hpp"
#include "lasnet/common/error.hpp"
#include "lasnet/common/file_io.hpp"
#ifdef LASNET_HAVE_IMPORTER
#include "lasnet/importer/onnx_import.hpp"
#endif

namespace lasnet::cli {

namespace {

struct ImportCommandOptions {
  std::string model;
  std::optional<std::string> input;
  std::string name;
  bool report = false;
  OutputTarget out;
};

void run_import(const ImportCommandOptions& o) {
#ifndef LASNET_HAVE_IMPORTER
  (void)o;
  throw Error(
      "import: this build has no ONNX support (install libonnx-dev and libprotobuf-dev, "
      "e.g. scripts/install-deps.sh, and rebuild)");
#else
  importer::ImportOptions options;
  if (o.input) options.input = importer::parse_input_shape(*o.input, "--input");
  options.name = o.name;
  const importer::Imported imported = importer::import_onnx_file(o.model, options);
  if (o.report) fmt::print("{}", importer::format_report(imported));
  if (o.out.file) {
    emit(o.out, imported.spec_json);
  } else if (!o.report) {
    fmt::print("{}", imported.spec_json);
  }
#endif
}

}  // namespace

void add_import_command(CLI::App& app, const Context& /*context*/) {
  auto o = std::make_shared<ImportCommandOptions>();
  auto* cmd = app.add_subcommand(
      "import", "Turn an ONNX model into a model spec (blocks recognised, weights not needed)");
  cmd->add_option("model", o->model, "ONNX model file")->required();
  cmd->add_option("--input", o->input,
                  "Input shape NxCxHxW, e.g. 1x3x224x224 (needed when the graph's is dynamic)");
  cmd->add_option("--name", o->name, "Spec name (default: the file name without .onnx)");
  cmd->add_flag("--report", o->report,
                "Print each block found and each node in no block (name, op type, where it went)");
  add_output_options(*cmd, o->out, "Write the spec to this file (default: stdout)");
  cmd->callback([o] { run_import(*o); });
}

}  // namespace lasnet::cli
