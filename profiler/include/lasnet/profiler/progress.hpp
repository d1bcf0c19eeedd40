#pragma once
// A progress bar for long measurements, written to a text sink (stderr in the CLI). On a
// terminal it redraws one line; elsewhere (logs, CI) it prints one line per step.
#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace lasnet::profiler {

class ProgressBar {
 public:
  using Sink = std::function<void(std::string_view)>;
  ProgressBar(Sink sink, bool interactive, std::string title);
  // Matches ProgressFn: the step starting, steps done, steps in all. done == total finishes.
  void update(std::string_view step, std::size_t done, std::size_t total);

  // "[#######-------------]  7/20  35%  label" (width counts the bar's characters).
  static std::string render(std::string_view title, std::string_view step, std::size_t done,
                            std::size_t total, double elapsed_s, std::size_t width = 24);

 private:
  Sink sink_;
  bool interactive_;
  std::string title_;
  std::chrono::steady_clock::time_point start_;
  bool finished_ = false;
};

// A sink that writes to stderr, and whether stderr is a terminal.
ProgressBar::Sink stderr_sink();
bool stderr_is_terminal();

}  // namespace lasnet::profiler
