// Small numerical helpers used across layers. All are pure functions: safe from any thread
// and identical on every platform (no global state such as lgamma's signgam).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace perkrec {

/// Logistic function 1 / (1 + e^-x), stable for large |x|.
inline double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

/// Natural log of the gamma function for x > 0 (Lanczos, g = 7, n = 9; ~1e-15 relative).
inline double log_gamma(double x) {
  static constexpr double kCoefficients[9] = {
      0.99999999999980993,  676.5203681218851,     -1259.1392167224028,
      771.32342877765313,   -176.61502916214059,   12.507343278686905,
      -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7};
  constexpr double kPi = 3.14159265358979323846;
  if (x < 0.5) {
    // Reflection keeps the approximation in its accurate range.
    return std::log(kPi / std::fabs(std::sin(kPi * x))) - log_gamma(1.0 - x);
  }
  x -= 1.0;
  double a = kCoefficients[0];
  const double t = x + 7.5;
  for (int i = 1; i < 9; ++i) a += kCoefficients[i] / (x + i);
  return 0.5 * std::log(2.0 * kPi) + (x + 0.5) * std::log(t) - t + std::log(a);
}

/// Regularized lower incomplete gamma P(a, x) = γ(a, x) / Γ(a), for a > 0, x >= 0: the CDF of a
/// Gamma(a, 1) variable at x. Series below a + 1, Lentz continued fraction above.
inline double regularized_gamma_p(double a, double x) {
  if (x <= 0.0) return 0.0;
  if (!std::isfinite(x)) return 1.0;
  const double log_prefix = a * std::log(x) - x - log_gamma(a);
  if (x < a + 1.0) {
    double term = 1.0 / a;
    double sum = term;
    for (int n = 1; n < 1000; ++n) {
      term *= x / (a + n);
      sum += term;
      if (std::fabs(term) < std::fabs(sum) * 1e-15) break;
    }
    return std::min(1.0, sum * std::exp(log_prefix));
  }
  constexpr double kTiny = 1e-300;
  double b = x + 1.0 - a;
  double c = 1.0 / kTiny;
  double d = 1.0 / b;
  double h = d;
  for (int i = 1; i < 1000; ++i) {
    const double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = b + an / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1.0) < 1e-15) break;
  }
  return std::max(0.0, 1.0 - std::exp(log_prefix) * h);
}

/// Standard normal CDF.
inline double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

/// Standard normal quantile: z with normal_cdf(z) = p, for p in (0, 1) (bisection on
/// [-10, 10], exact to double precision there).
inline double inverse_normal_cdf(double p) {
  double lo = -10, hi = 10;
  for (int i = 0; i < 100; ++i) {
    const double mid = 0.5 * (lo + hi);
    (normal_cdf(mid) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

/// Regularized incomplete beta I_x(a, b): the CDF of a Beta(a, b) variable at x, for a, b > 0
/// (Lentz continued fraction, on the side of x where it converges fast).
inline double regularized_beta(double a, double b, double x) {
  if (x <= 0.0) return 0.0;
  if (x >= 1.0) return 1.0;
  if (x > (a + 1.0) / (a + b + 2.0)) return 1.0 - regularized_beta(b, a, 1.0 - x);
  const double log_front = a * std::log(x) + b * std::log1p(-x) - std::log(a) + log_gamma(a + b) -
                           log_gamma(a) - log_gamma(b);
  constexpr double kTiny = 1e-300;
  double c = 1.0;
  double d = 1.0 - (a + b) * x / (a + 1.0);
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m < 1000; ++m) {
    const double m2 = 2.0 * m;
    for (int odd = 0; odd < 2; ++odd) {
      const double num = odd == 0 ? m * (b - m) * x / ((a + m2 - 1.0) * (a + m2))
                                  : -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
      d = 1.0 + num * d;
      if (std::fabs(d) < kTiny) d = kTiny;
      c = 1.0 + num / c;
      if (std::fabs(c) < kTiny) c = kTiny;
      d = 1.0 / d;
      h *= d * c;
    }
    if (std::fabs(d * c - 1.0) < 1e-15) break;
  }
  return std::clamp(std::exp(log_front) * h, 0.0, 1.0);
}

/// Beta(a, b) quantile: x with regularized_beta(a, b, x) = p, for a, b > 0 and p in [0, 1].
/// The upper half is solved as the lower tail of Beta(b, a) (I_x(a, b) = 1 - I_{1-x}(b, a)), so
/// tiny tail quantiles keep their relative precision. Newton steps on the CDF from a normal
/// start, kept inside a shrinking bracket (a geometric bisection step whenever Newton would
/// leave it); to a relative 1e-12 in the tail probability, usually in 4 to 10 CDF evaluations.
/// `z` may pass inverse_normal_cdf(p) when many quantiles share p (NaN: computed here).
inline double beta_quantile(double a, double b, double p,
                            double z = std::numeric_limits<double>::quiet_NaN()) {
  if (p <= 0.0) return 0.0;
  if (p >= 1.0) return 1.0;
  if (std::isnan(z)) z = inverse_normal_cdf(p);
  if (p > 0.5) return 1.0 - beta_quantile(b, a, 1.0 - p, -z);
  const double log_norm = log_gamma(a + b) - log_gamma(a) - log_gamma(b);
  const double mean = a / (a + b);
  const double sd = std::sqrt(mean * (1.0 - mean) / (a + b + 1.0));
  double lo = 0.0, hi = 1.0;
  double x = mean + z * sd;
  if (!(x > 0.0 && x < 1.0)) x = 0.5 * mean;
  for (int i = 0; i < 400; ++i) {
    const double f = regularized_beta(a, b, x) - p;
    (f < 0 ? lo : hi) = x;
    if (std::fabs(f) <= 1e-12 * p) break;
    const double log_pdf = log_norm + (a - 1.0) * std::log(x) + (b - 1.0) * std::log1p(-x);
    double next = x - f / std::exp(log_pdf);
    if (!(next > lo && next < hi)) next = lo > 0.0 ? std::sqrt(lo * hi) : 1e-3 * hi;
    if (std::fabs(next - x) <= 1e-15 * x) break;
    x = next;
  }
  return x;
}

/// Civil date (proleptic Gregorian, UTC) of a day counted from 1970-01-01.
struct CivilDate {
  std::int64_t year;
  int month;  ///< 1..12
  int day;    ///< 1..31
};

/// Converts days since the Unix epoch to a civil date (H. Hinnant's algorithm).
inline CivilDate civil_from_days(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<std::uint64_t>(z - era * 146097);
  const std::uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::uint64_t mp = (5 * doy + 2) / 153;
  const auto day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const auto month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  const std::int64_t year = static_cast<std::int64_t>(yoe) + era * 400 + (month <= 2 ? 1 : 0);
  return {year, month, day};
}

/// a mod m in [0, m) for m > 0 (the C++ `%` keeps the sign of a).
inline std::int64_t floor_mod(std::int64_t a, std::int64_t m) {
  const std::int64_t r = a % m;
  return r < 0 ? r + m : r;
}

/// a / m rounded towards minus infinity for m > 0 (the C++ `/` rounds towards zero).
inline std::int64_t floor_div(std::int64_t a, std::int64_t m) { return (a - floor_mod(a, m)) / m; }

/// Days since 1970-01-01 of a civil date (proleptic Gregorian; the inverse of civil_from_days).
inline std::int64_t days_from_civil(std::int64_t year, int month, int day) {
  year -= month <= 2 ? 1 : 0;
  const std::int64_t era = (year >= 0 ? year : year - 399) / 400;
  const auto yoe = static_cast<std::uint64_t>(year - era * 400);
  const auto mp = static_cast<std::uint64_t>(month > 2 ? month - 3 : month + 9);
  const std::uint64_t doy = (153 * mp + 2) / 5 + static_cast<std::uint64_t>(day) - 1;
  const std::uint64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

/// Day of week of a day counted from 1970-01-01, Monday = 0 … Sunday = 6.
inline int weekday_from_days(std::int64_t z) { return static_cast<int>(floor_mod(z + 3, 7)); }

/// Earliest time >= t (epoch seconds) whose local time of day (local = t + offset) lies outside
/// the daily window [start, end) (seconds after local midnight; start > end wraps midnight).
inline std::int64_t leave_daily_window(std::int64_t t, std::int64_t offset, std::int64_t start,
                                       std::int64_t end) {
  const std::int64_t s = floor_mod(t + offset, 86400);
  const bool inside = start < end ? (s >= start && s < end) : (s >= start || s < end);
  return inside ? t + floor_mod(end - s, 86400) : t;
}

/// Hour-of-week slot of a time in UTC epoch seconds: Monday 00:00 = 0 … Sunday 23:00 = 167
/// (the slots of PreferenceModel::hour_of_week_profile and of the send-time schedule).
inline int hour_of_week(std::int64_t t) {
  // 1970-01-01 (hour 0) was a Thursday: Monday 00:00 lies 72 hours earlier.
  return static_cast<int>(floor_mod(floor_div(t, 3600) + 72, 168));
}

}  // namespace perkrec
