#include "nvml_clocks.hpp"

#include <dlfcn.h>
#include <fmt/format.h>

#include <array>
#include <utility>

namespace lasnet::profiler::cuda {

namespace {

// The few NVML entry points used, with the C signatures of nvml.h (a stable ABI).
using nvml_device = struct nvmlDevice_st*;
using nvml_return = int;  // NVML_SUCCESS == 0
constexpr unsigned clock_sm = 1, clock_mem = 2;
constexpr unsigned temperature_gpu = 0;

struct Api {
  nvml_return (*init)() = nullptr;
  nvml_return (*shutdown)() = nullptr;
  nvml_return (*handle_by_pci)(const char*, nvml_device*) = nullptr;
  nvml_return (*clock_info)(nvml_device, unsigned, unsigned*) = nullptr;
  nvml_return (*max_clock_info)(nvml_device, unsigned, unsigned*) = nullptr;
  nvml_return (*clock_reasons)(nvml_device, unsigned long long*) = nullptr;
  nvml_return (*temperature)(nvml_device, unsigned, unsigned*) = nullptr;
  nvml_return (*power_usage)(nvml_device, unsigned*) = nullptr;
  nvml_return (*power_limit)(nvml_device, unsigned*) = nullptr;
  nvml_return (*driver_version)(char*, unsigned) = nullptr;
};

template <typename F>
bool load(void* library, const char* name, F& f) {
  f = reinterpret_cast<F>(dlsym(library, name));
  return f != nullptr;
}

// Bits of nvmlDeviceGetCurrentClocksEventReasons.
constexpr std::array<std::pair<unsigned long long, const char*>, 8> reason_names = {{
    {0x1ULL, "idle"},
    {0x2ULL, "application clock setting"},
    {0x4ULL, "software power cap"},
    {0x8ULL, "hardware slowdown"},
    {0x10ULL, "sync boost"},
    {0x20ULL, "software thermal slowdown"},
    {0x40ULL, "hardware thermal slowdown"},
    {0x80ULL, "hardware power brake"},
}};

}  // namespace

struct Nvml::Impl {
  void* library = nullptr;
  Api api;
  nvml_device device = nullptr;
  bool initialised = false;
  std::string failure;
};

Nvml::Nvml(const std::string& pci_bus_id) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.library = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (s.library == nullptr) {
    s.failure = "libnvidia-ml.so.1 not found";
    return;
  }
  bool ok = load(s.library, "nvmlInit_v2", s.api.init) &&
            load(s.library, "nvmlShutdown", s.api.shutdown) &&
            load(s.library, "nvmlDeviceGetHandleByPciBusId_v2", s.api.handle_by_pci) &&
            load(s.library, "nvmlDeviceGetClockInfo", s.api.clock_info) &&
            load(s.library, "nvmlDeviceGetMaxClockInfo", s.api.max_clock_info) &&
            load(s.library, "nvmlDeviceGetTemperature", s.api.temperature) &&
            load(s.library, "nvmlDeviceGetPowerUsage", s.api.power_usage) &&
            load(s.library, "nvmlDeviceGetEnforcedPowerLimit", s.api.power_limit) &&
            load(s.library, "nvmlSystemGetDriverVersion", s.api.driver_version);
  // Newer drivers name it "event reasons"; older ones "throttle reasons".
  if (ok && !load(s.library, "nvmlDeviceGetCurrentClocksEventReasons", s.api.clock_reasons)) {
    ok = load(s.library, "nvmlDeviceGetCurrentClocksThrottleReasons", s.api.clock_reasons);
  }
  if (!ok) {
    s.failure = "libnvidia-ml.so.1 lacks an expected function";
    return;
  }
  if (const int rc = s.api.init(); rc != 0) {
    s.failure = fmt::format("nvmlInit failed ({})", rc);
    return;
  }
  s.initialised = true;
  if (const int rc = s.api.handle_by_pci(pci_bus_id.c_str(), &s.device); rc != 0) {
    s.failure = fmt::format("NVML does not know PCI device {} ({})", pci_bus_id, rc);
    s.device = nullptr;
  }
}

Nvml::~Nvml() {
  if (impl_->initialised) impl_->api.shutdown();
  if (impl_->library != nullptr) dlclose(impl_->library);
}

ClockState Nvml::clock_state() const {
  const Impl& s = *impl_;
  ClockState c;
  if (s.device == nullptr) {
    c.unavailable_reason = s.failure;
    return c;
  }
  unsigned sm = 0, sm_max = 0, mem = 0, temp = 0, power = 0, limit = 0;
  unsigned long long reasons = 0;
  if (s.api.clock_info(s.device, clock_sm, &sm) != 0 ||
      s.api.max_clock_info(s.device, clock_sm, &sm_max) != 0 ||
      s.api.clock_info(s.device, clock_mem, &mem) != 0) {
    c.unavailable_reason = "NVML could not read the clocks";
    return c;
  }
  c.available = true;
  c.sm_clock_hz = sm * 1e6;
  c.max_sm_clock_hz = sm_max * 1e6;
  c.memory_clock_hz = mem * 1e6;
  if (s.api.temperature(s.device, temperature_gpu, &temp) == 0) c.temperature_c = temp;
  if (s.api.power_usage(s.device, &power) == 0) c.power_w = power * 1e-3;
  if (s.api.power_limit(s.device, &limit) == 0) c.power_limit_w = limit * 1e-3;
  if (s.api.clock_reasons(s.device, &reasons) == 0) {
    for (const auto& [bit, name] : reason_names) {
      if ((reasons & bit) != 0) c.throttle_reasons.emplace_back(name);
    }
  }
  return c;
}

std::string Nvml::driver_version() const {
  if (!impl_->initialised) return {};
  std::array<char, 96> buffer{};
  if (impl_->api.driver_version(buffer.data(), static_cast<unsigned>(buffer.size())) != 0)
    return {};
  return buffer.data();
}

}  // namespace lasnet::profiler::cuda
