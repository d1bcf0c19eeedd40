// lasnet: latency prediction and scheduling for spatially dynamic CNNs.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "context.hpp"
#include "lasnet/common/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"lasnet: predict and optimise the latency of spatially dynamic CNNs on GPUs",
               "lasnet"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("lasnet ") + LASNET_VERSION);
  const auto context = lasnet::cli::make_context(argc > 0 ? argv[0] : "lasnet");
  lasnet::cli::add_hw_commands(app, context);
  lasnet::cli::add_predict_command(app, context);
  lasnet::cli::add_import_command(app, context);
  lasnet::cli::add_schedule_command(app, context);
  lasnet::cli::add_gpu_commands(app, context);
  lasnet::cli::add_run_command(app, context);
  lasnet::cli::add_sample_command(app, context);
  lasnet::cli::add_plot_command(app, context);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return lasnet::exit_user_error;
  } catch (const lasnet::Error& e) {
    fmt::print(stderr, "lasnet: error: {}\n", e.what());
    return lasnet::exit_user_error;
  } catch (const std::exception& e) {
    fmt::print(stderr, "lasnet: internal error: {}\n", e.what());
    return 3;
  }
  return 0;
}
