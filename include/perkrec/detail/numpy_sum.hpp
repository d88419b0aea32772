// numpy's summation order, for C++ code whose sums must decide exactly as the numpy reference
// does (the feature encoder's statistics, the baselines' budget checks). Internal.
#pragma once

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

}  // namespace perkrec::detail
