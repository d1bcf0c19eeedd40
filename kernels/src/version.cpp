#include "lasnet/kernels/version.hpp"

namespace lasnet::kernels {

std::string_view version() {
  return LASNET_KERNELS_VERSION;
}

}  // namespace lasnet::kernels
