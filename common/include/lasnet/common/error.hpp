#pragma once
// The one exception type for user-facing failures (bad input files, impossible requests).
// main() catches it once and exits with status 2. Programmer bugs use assertions instead, and
// expected outcomes (an infeasible tile, an unsupported fusion) are values, not throws.
#include <stdexcept>
#include <string>

namespace lasnet {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Exit status for user errors, shared by every subcommand.
inline constexpr int exit_user_error = 2;

}  // namespace lasnet
