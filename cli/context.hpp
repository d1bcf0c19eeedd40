#pragma once
// What every subcommand shares: where profiles are found, how output is written.
// Each cmd_*.cpp registers its subcommands on the app; main() parses and maps errors to exit
// statuses, nothing else.
#include <CLI/CLI.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lasnet/predictor/profile.hpp"

namespace lasnet::cli {

struct Context {
  // Searched in order for `--hw NAME`: $LASNET_PROFILE_DIR, the installed share folder, the
  // source tree's hardware_profiles/.
  std::vector<std::filesystem::path> profile_dirs;
};
Context make_context(const char* argv0);

enum class Format { table, json, csv };
// Adds --format table|json|csv to `command`, bound to `format`.
CLI::Option* add_format_option(CLI::App& command, Format& format);

// Where a command's main output goes: stdout, or a file written whole (temp + rename), refused
// if it exists unless --force.
struct OutputTarget {
  std::optional<std::filesystem::path> file;
  bool force = false;
};
void add_output_options(CLI::App& command, OutputTarget& target, std::string_view description);
void emit(const OutputTarget& target, std::string_view text);

predictor::Profile resolve_profile(const Context& context, std::string_view name_or_file);

// Registration functions, one per cmd_*.cpp.
void add_hw_commands(CLI::App& app, const Context& context);
void add_predict_command(CLI::App& app, const Context& context);
void add_import_command(CLI::App& app, const Context& context);    // cmd_import.cpp
void add_schedule_command(CLI::App& app, const Context& context);  // cmd_schedule.cpp
void add_sample_command(CLI::App& app, const Context& context);    // cmd_sample.cpp
void add_plot_command(CLI::App& app, const Context& context);      // cmd_plot.cpp
void add_run_command(CLI::App& app, const Context& context);       // cmd_run.cpp
void add_gpu_commands(CLI::App& app, const Context& context);  // cmd_gpu.cpp: profile, calibrate,
                                                               // validate, bench kernels

}  // namespace lasnet::cli
