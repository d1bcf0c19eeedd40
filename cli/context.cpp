#include "context.hpp"

#include <fmt/format.h>

#include <cstdlib>

#include "lasnet/common/file_io.hpp"

namespace lasnet::cli {

Context make_context(const char* argv0) {
  Context c;
  if (const char* env = std::getenv("LASNET_PROFILE_DIR"); env && *env) {
    c.profile_dirs.emplace_back(env);
  }
  std::error_code ec;
  const auto exe = std::filesystem::canonical("/proc/self/exe", ec);
  const auto bin_dir = ec ? std::filesystem::path(argv0).parent_path() : exe.parent_path();
  c.profile_dirs.push_back(bin_dir / ".." / "share" / "lasnet" / "hardware_profiles");
  c.profile_dirs.emplace_back(LASNET_SOURCE_PROFILE_DIR);
  return c;
}

CLI::Option* add_format_option(CLI::App& command, Format& format) {
  const std::map<std::string, Format> names{
      {"table", Format::table}, {"json", Format::json}, {"csv", Format::csv}};
  // transform() prepends, so the membership check below runs first: a bad value reads
  // "yaml not in {table,json,csv}" rather than a dump of the enum's integer values.
  return command.add_option("--format", format, "Output format: table, json or csv")
      ->transform(CLI::Transformer(names, CLI::ignore_case).description(""))
      ->transform(CLI::IsMember({"table", "json", "csv"}, CLI::ignore_case))
      ->default_str("table");
}

void add_output_options(CLI::App& command, OutputTarget& target, std::string_view description) {
  command.add_option("-o,--out", target.file, std::string(description));
  command.add_flag("--force", target.force, "Overwrite the --out file if it exists");
}

void emit(const OutputTarget& target, std::string_view text) {
  if (target.file) {
    write_file_atomic(*target.file, text, target.force ? Overwrite::allow : Overwrite::refuse);
    return;
  }
  fmt::print("{}", text);
  std::fflush(stdout);
}

predictor::Profile resolve_profile(const Context& context, std::string_view name_or_file) {
  return predictor::load_profile(predictor::find_profile(name_or_file, context.profile_dirs));
}

}  // namespace lasnet::cli
