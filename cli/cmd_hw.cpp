#include "context.hpp"
namespace lasnet::cli {
}
namespace lasnet::cli { void add_hw_commands(CLI::App&, const Context&) {} }
