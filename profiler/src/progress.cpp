#include "lasnet/profiler/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace lasnet::profiler {

ProgressBar::ProgressBar(Sink sink, bool interactive, std::string title)
    : sink_(std::move(sink)),
      interactive_(interactive),
      title_(std::move(title)),
      start_(std::chrono::steady_clock::now()) {}

std::string ProgressBar::render(std::string_view title, std::string_view step, std::size_t done,
                                std::size_t total, double elapsed_s, std::size_t width) {
  const double fraction =
      total == 0 ? 1.0 : static_cast<double>(std::min(done, total)) / static_cast<double>(total);
  const auto filled = static_cast<std::size_t>(fraction * static_cast<double>(width) + 1e-9);
  return fmt::format("{} [{}{}] {:>{}}/{} {:3.0f}% {:5.1f}s {}", title, std::string(filled, '#'),
                     std::string(width - filled, '-'), done, fmt::formatted_size("{}", total),
                     total, 100 * fraction, elapsed_s, step);
}

void ProgressBar::update(std::string_view step, std::size_t done, std::size_t total) {
  if (finished_) return;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const std::string line = render(title_, step, done, total, elapsed);
  finished_ = done >= total;
  if (interactive_) {
    // Clear to the end of the line so a shorter label leaves no residue.
    sink_(fmt::format("\r{}\x1b[K{}", line, finished_ ? "\n" : ""));
  } else {
    sink_(line + "\n");
  }
}

ProgressBar::Sink stderr_sink() {
  return [](std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stderr);
    std::fflush(stderr);
  };
}

bool stderr_is_terminal() {
  return ::isatty(STDERR_FILENO) == 1;
}

}  // namespace lasnet::profiler
