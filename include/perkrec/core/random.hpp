// Seeded random streams.
//
// Reproducibility rule: a random stream is derived from (seed, work item, epoch), never from
// a thread id, so a result computed per member (or per chunk, per epoch) is the same whatever
// the thread count. All distributions are implemented here rather than taken from <random>,
// whose distributions differ between standard libraries: the same seed gives the same numbers
// with any compiler.
//
// Example:
//   perkrec::Rng rng(params.seed, user, epoch);   // independent stream for (user, epoch)
//   double u = rng.uniform();                      // [0, 1)
//   std::uint32_t j = rng.below(n_benefits);       // uniform integer in [0, n)
//
// Thread safety: an Rng is a value; use one per work item, never share one across threads.
#pragma once

#include <cmath>
#include <cstdint>

#include "perkrec/core/math.hpp"

namespace perkrec {

/// SplitMix64 step: a bijective 64-bit mixer, used to derive independent stream states.
inline std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// A small, fast generator (xoshiro256**) with the distributions perkrec needs.
class Rng {
 public:
  /// A stream determined by (seed, stream, substream); different triples give streams that do
  /// not overlap in practice.
  explicit Rng(std::uint64_t seed, std::uint64_t stream = 0, std::uint64_t substream = 0) {
    std::uint64_t mix = seed;
    std::uint64_t key = splitmix64(mix) ^ (stream * 0xD1B54A32D192ED03ULL);
    key = splitmix64(key) ^ (substream * 0xAEF17502108EF2D9ULL);
    for (auto& word : s_) word = splitmix64(key);
  }

  /// Next 64 random bits.
  std::uint64_t next_u64() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform double in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  /// Uniform double in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  /// Uniform float in [0, 1) with 24 random bits.
  float uniform_float() { return static_cast<float>(next_u64() >> 40) * 0x1.0p-24f; }

  /// Uniform integer in [0, n) without modulo bias (Lemire's method); n must be > 0.
  std::uint32_t below(std::uint32_t n) {
    std::uint64_t m = static_cast<std::uint64_t>(static_cast<std::uint32_t>(next_u64() >> 32)) * n;
    auto low = static_cast<std::uint32_t>(m);
    if (low < n) {
      const std::uint32_t threshold = static_cast<std::uint32_t>(-n) % n;
      while (low < threshold) {
        m = static_cast<std::uint64_t>(static_cast<std::uint32_t>(next_u64() >> 32)) * n;
        low = static_cast<std::uint32_t>(m);
      }
    }
    return static_cast<std::uint32_t>(m >> 32);
  }

  /// True with probability p.
  bool bernoulli(double p) { return uniform() < p; }

  /// Standard normal (Marsaglia's polar method; the second value is kept for the next call).
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u, v, s;
    do {
      u = 2.0 * uniform() - 1.0;
      v = 2.0 * uniform() - 1.0;
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double factor = std::sqrt(-2.0 * std::log(s) / s);
    spare_ = v * factor;
    has_spare_ = true;
    return u * factor;
  }
  double normal(double mean, double stddev) { return mean + stddev * normal(); }

  /// Exponential with rate 1.
  double exponential() { return -std::log1p(-uniform()); }

  /// Gamma(shape, 1) by Marsaglia and Tsang; shape > 0.
  double gamma(double shape) {
    if (shape < 1.0) {
      const double boost = std::pow(1.0 - uniform(), 1.0 / shape);
      return gamma(shape + 1.0) * boost;
    }
    const double d = shape - 1.0 / 3.0;
    const double c = 1.0 / std::sqrt(9.0 * d);
    for (;;) {
      double x, v;
      do {
        x = normal();
        v = 1.0 + c * x;
      } while (v <= 0.0);
      v = v * v * v;
      const double u = uniform();
      if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
      if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
    }
  }

  /// Beta(a, b) from two gammas; a, b > 0.
  double beta(double a, double b) {
    const double x = gamma(a);
    const double y = gamma(b);
    return x / (x + y);
  }

  /// Poisson(mean); inversion for small means, normal-approximation-free PTRS (Hörmann) above.
  std::int64_t poisson(double mean) {
    if (mean <= 0.0) return 0;
    if (mean < 12.0) {
      const double limit = std::exp(-mean);
      double product = uniform();
      std::int64_t k = 0;
      while (product > limit) {
        product *= uniform();
        ++k;
      }
      return k;
    }
    const double slam = std::sqrt(mean);
    const double loglam = std::log(mean);
    const double b = 0.931 + 2.53 * slam;
    const double a = -0.059 + 0.02483 * b;
    const double inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
    const double vr = 0.9277 - 3.6224 / (b - 2.0);
    for (;;) {
      const double u = uniform() - 0.5;
      const double v = uniform();
      const double us = 0.5 - std::fabs(u);
      const double k = std::floor((2.0 * a / us + b) * u + mean + 0.43);
      if (us >= 0.07 && v <= vr) return static_cast<std::int64_t>(k);
      if (k < 0.0 || (us < 0.013 && v > us)) continue;
      if (std::log(v) + std::log(inv_alpha) - std::log(a / (us * us) + b) <=
          -mean + k * loglam - log_gamma(k + 1.0)) {
        return static_cast<std::int64_t>(k);
      }
    }
  }

  /// Index drawn with probability proportional to cumulative[i] - cumulative[i-1], given the
  /// non-decreasing cumulative weights cumulative[0..n-1] with cumulative[n-1] > 0.
  std::uint32_t from_cumulative(const double* cumulative, std::uint32_t n) {
    const double target = uniform() * cumulative[n - 1];
    std::uint32_t lo = 0, hi = n - 1;
    while (lo < hi) {
      const std::uint32_t mid = (lo + hi) / 2;
      if (cumulative[mid] > target) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    return lo;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  std::uint64_t s_[4];
  double spare_ = 0.0;
  bool has_spare_ = false;
};

}  // namespace perkrec
