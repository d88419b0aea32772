// numpy's summation order and quantile, for C++ code whose sums and cut points must decide
// exactly as the numpy reference does (the feature encoder's statistics, the baselines' budget
// checks, the issue weights' cap). Internal.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "perkrec/core/types.hpp"

namespace perkrec::detail {

/// numpy's pairwise summation of a contiguous float64 array (umath loops, PW_BLOCKSIZE 128).
inline double numpy_pairwise_sum(const double* a, Offset n) {
  if (n < 8) {
    double res = 0.0;
    for (Offset i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    Offset i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    }
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  Offset n2 = n / 2;
  n2 -= n2 % 8;
  return numpy_pairwise_sum(a, n2) + numpy_pairwise_sum(a + n2, n - n2);
}

/// numpy's _lerp: a + (b - a) t, computed from b when t >= 0.5.
inline double numpy_lerp(double a, double b, double t) {
  const double diff = b - a;
  return t >= 0.5 ? b - diff * (1.0 - t) : a + diff * t;
}

/// np.quantile(x, q) (method "linear") of a non-empty `x`, q in [0, 1]; `x` is reordered.
inline double numpy_quantile(std::vector<double>& x, double q) {
  const Offset n = static_cast<Offset>(x.size());
  const double v = static_cast<double>(n - 1) * q;
  if (v >= static_cast<double>(n - 1)) {
    return *std::max_element(x.begin(), x.end());
  }
  const auto lo = static_cast<Offset>(std::floor(v));
  std::nth_element(x.begin(), x.begin() + lo, x.end());
  const double a = x[static_cast<std::size_t>(lo)];
  const double b = *std::min_element(x.begin() + lo + 1, x.end());
  return numpy_lerp(a, b, v - static_cast<double>(lo));
}

}  // namespace perkrec::detail
