#pragma once
// Clock state through NVML, loaded at run time (dlopen of libnvidia-ml.so.1): the build needs
// no NVML header or library, and a machine without it simply reports "unavailable".
#include <memory>
#include <string>

#include "lasnet/profiler/hardware.hpp"

namespace lasnet::profiler::cuda {

class Nvml {
 public:
  // `pci_bus_id` as cudaDeviceGetPCIBusId gives it. Never throws: failures become a reason.
  explicit Nvml(const std::string& pci_bus_id);
  ~Nvml();
  Nvml(const Nvml&) = delete;
  Nvml& operator=(const Nvml&) = delete;

  ClockState clock_state() const;
  // The driver's release ("570.86.15"); empty when NVML is unavailable.
  std::string driver_version() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lasnet::profiler::cuda
