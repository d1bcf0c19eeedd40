// Placeholder until the scheduler lands (issue 5).
#include "context.hpp"

namespace lasnet::cli {
void add_schedule_command(CLI::App&, const Context&) {}
}  // namespace lasnet::cli
