#include "context.hpp"
namespace lasnet::cli {
}
