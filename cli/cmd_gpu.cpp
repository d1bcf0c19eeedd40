// Placeholder until the profiler lands (issue 4).
#include "context.hpp"

namespace lasnet::cli {
void add_gpu_commands(CLI::App&, const Context&) {}
}  // namespace lasnet::cli
