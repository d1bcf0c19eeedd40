#include "context.hpp"
namespace lasnet::cli {
}
namespace lasnet::cli { void add_predict_command(CLI::App&, const Context&) {} }
