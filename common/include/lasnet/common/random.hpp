#pragma once
// A small, portable random source for things that must come out the same on every machine
// from a seed (sampled specs, generated masks): splitmix64 as the generator and our own
// integer/real mappings on top. std::uniform_*_distribution is implementation-defined, so two
// standard libraries give different streams from the same engine; these functions do not.
// Integer draws and uniform reals use only integer and exactly rounded IEEE arithmetic; the
// gamma/beta draws call std::log/std::sqrt/std::exp, whose last bit may differ between libms
// (a derived count can then differ only at a rounding boundary).
#include <cmath>
#include <cstdint>
#include <vector>

namespace lasnet {

class Random {
 public:
  explicit Random(std::uint64_t seed) : state_(seed) {}
  // A generator whose stream depends on the seed and a list of sub-stream ids (e.g. the
  // sample's index and attempt): streams of different ids do not overlap in practice.
  static Random derived(std::uint64_t seed, std::uint64_t a, std::uint64_t b = 0) {
    return Random(mix(mix(mix(seed) ^ (a * 0xD1B54A32D192ED03ULL)) ^ (b * 0x8CB92BA72F3D8DD7ULL)));
  }

  std::uint64_t next_u64() {
    state_ += 0x9E3779B97F4A7C15ULL;
    return mix(state_);
  }
  // Uniform in [0, n), n >= 1, unbiased (rejection of the last partial range).
  std::uint64_t below(std::uint64_t n) {
    const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    std::uint64_t x = next_u64();
    while (x >= limit) x = next_u64();
    return x % n;
  }
  // Uniform integer in [lo, hi], lo <= hi.
  std::int64_t between(std::int64_t lo, std::int64_t hi) {
    return lo + static_cast<std::int64_t>(below(static_cast<std::uint64_t>(hi - lo) + 1));
  }
  // Uniform in [0, 1) with 53 random bits (exact: a dyadic rational).
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  bool chance(double p) { return uniform() < p; }
  template <class T>
  const T& pick(const std::vector<T>& items) {
    return items[static_cast<std::size_t>(below(items.size()))];
  }
  // Index drawn with the given non-negative weights (at least one positive).
  std::size_t weighted(const std::vector<double>& weights) {
    double total = 0;
    for (const double w : weights) total += w;
    double x = uniform() * total;
    for (std::size_t i = 0; i < weights.size(); ++i) {
      if (x < weights[i]) return i;
      x -= weights[i];
    }
    return weights.size() - 1;
  }
  // Standard normal (Marsaglia's polar method).
  double normal() {
    while (true) {
      const double u = 2 * uniform() - 1, v = 2 * uniform() - 1;
      const double s = u * u + v * v;
      if (s > 0 && s < 1) return u * std::sqrt(-2 * std::log(s) / s);
    }
  }
  // Gamma(shape, 1), shape > 0 (Marsaglia and Tsang; shape < 1 by the u^(1/shape) boost).
  double gamma(double shape) {
    if (shape < 1) return gamma(shape + 1) * std::exp(std::log(uniform_open()) / shape);
    const double d = shape - 1.0 / 3.0, c = 1 / std::sqrt(9 * d);
    while (true) {
      double x = 0, v = 0;
      do {
        x = normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const double u = uniform_open();
      if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
    }
  }
  // Beta(a, b), a, b > 0: X / (X + Y) of two gammas.
  double beta(double a, double b) {
    const double x = gamma(a), y = gamma(b);
    return x + y > 0 ? x / (x + y) : 0.5;
  }

 private:
  static std::uint64_t mix(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  double uniform_open() { return (static_cast<double>(next_u64() >> 11) + 0.5) * 0x1.0p-53; }
  std::uint64_t state_;
};

}  // namespace lasnet
