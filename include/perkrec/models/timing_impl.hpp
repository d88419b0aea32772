// Definitions for timing.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "perkrec/core/error.hpp"
#include "perkrec/core/math.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/models/timing.hpp"

namespace perkrec {

PERKREC_INLINE double BGNBD::log_likelihood(double x, double t_x, double T) const {
  const double a1 = log_gamma(r + x) - log_gamma(r) + r * std::log(alpha);
  const double a2 = log_gamma(a + b) + log_gamma(b + x) - log_gamma(b) - log_gamma(a + b + x);
  const double a3 = -(r + x) * std::log(alpha + T);
  if (x <= 0) return a1 + a2 + a3;
  const double a4 = std::log(a) - std::log(b + x - 1) - (r + x) * std::log(alpha + t_x);
  const double m = std::max(a3, a4);
  return a1 + a2 + m + std::log(std::exp(a3 - m) + std::exp(a4 - m));
}

PERKREC_INLINE double BGNBD::p_alive(double x, double t_x, double T) const {
  if (x <= 0) return 1.0;
  const double log_ratio = std::log(a) - std::log(b + x - 1) + (r + x) * (std::log(alpha + T) - std::log(alpha + t_x));
  return 1.0 / (1.0 + std::exp(std::min(700.0, log_ratio)));
}

PERKREC_INLINE double BGNBD::expected_purchases(double t, double x, double t_x, double T) const {
  if (t <= 0) return 0.0;
  const double aa = std::max(a, 1.0 + 1e-6);
  const double z = t / (alpha + T + t);
  const double h = detail::hypergeometric_2f1(r + x, b + x, aa + b + x - 1, z);
  const double lead = (aa + b + x - 1) / (aa - 1);
  const double bracket = 1.0 - std::pow((alpha + T) / (alpha + T + t), r + x) * h;
  return std::max(0.0, lead * bracket * p_alive(x, t_x, T));
}

PERKREC_INLINE BGNBD BGNBD::fit(Span<const double> x, Span<const double> t_x, Span<const double> T,
                                int num_threads, int max_iterations) {
  if (x.size() != t_x.size() || x.size() != T.size()) {
    detail::raise<InputError>("BGNBD::fit: x, t_x and T must have equal lengths (got ", x.size(), ", ",
                              t_x.size(), ", ", T.size(), ")");
  }
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!(x[i] >= 0) || !(t_x[i] >= 0) || !(T[i] >= t_x[i]) || !std::isfinite(T[i])) {
      detail::raise<InputError>("BGNBD::fit: member at position ", i,
                                " has inconsistent summary (got x=", x[i], ", t_x=", t_x[i], ", T=", T[i],
                                ", expected x >= 0 and 0 <= t_x <= T)");
    }
  }
  const int threads = resolve_num_threads(num_threads);
  constexpr Offset kChunk = 8192;
  const auto n = static_cast<Offset>(x.size());
  const Offset chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<std::size_t>(chunks));
  auto nll = [&](const std::vector<double>& p) {
    BGNBD m{std::exp(p[0]), std::exp(p[1]), std::exp(p[2]), std::exp(p[3])};
    parallel_for(0, chunks, threads, [&](Offset c) {
      double s = 0;
      for (Offset i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) {
        const auto k = static_cast<std::size_t>(i);
        if (T[k] > 0) s += m.log_likelihood(x[k], t_x[k], T[k]);
      }
      partial[static_cast<std::size_t>(c)] = s;
    });
    const double total = std::accumulate(partial.begin(), partial.end(), 0.0);  // fixed order
    return std::isfinite(total) ? -total : std::numeric_limits<double>::infinity();
  };
  double mean_rate = 0;
  Offset used = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (T[i] > 0) {
      mean_rate += x[i] / T[i];
      ++used;
    }
  }
  mean_rate = used > 0 ? std::max(1e-3, mean_rate / static_cast<double>(used)) : 0.1;
  std::vector<double> start = {0.0, std::log(1.0 / mean_rate), 0.0, std::log(3.0)};
  std::vector<double> best = nelder_mead(nll, start, 0.5, max_iterations, 1e-10);
  // One restart from the optimum escapes a collapsed simplex.
  best = nelder_mead(nll, best, 0.2, max_iterations / 2, 1e-10);
  return BGNBD{std::exp(best[0]), std::exp(best[1]), std::exp(best[2]), std::exp(best[3])};
}

PERKREC_INLINE std::vector<double> nelder_mead(const std::function<double(const std::vector<double>&)>& f,
                                               std::vector<double> start, double step, int max_iterations,
                                               double tol) {
  const std::size_t n = start.size();
  std::vector<std::vector<double>> simplex(n + 1, start);
  for (std::size_t i = 0; i < n; ++i) simplex[i + 1][i] += step;
  std::vector<double> values(n + 1);
  for (std::size_t i = 0; i <= n; ++i) values[i] = f(simplex[i]);
  std::vector<std::size_t> order(n + 1);
  auto point = [&](const std::vector<double>& c, const std::vector<double>& w, double t) {
    std::vector<double> p(n);
    for (std::size_t j = 0; j < n; ++j) p[j] = c[j] + t * (w[j] - c[j]);
    return p;
  };
  for (int it = 0; it < max_iterations; ++it) {
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](std::size_t i, std::size_t j) { return values[i] < values[j]; });
    const std::size_t best = order.front(), worst = order.back(), second = order[n - 1];
    if (std::fabs(values[worst] - values[best]) <= tol * (1.0 + std::fabs(values[best]))) break;
    std::vector<double> centroid(n, 0.0);
    for (std::size_t i = 0; i <= n; ++i) {
      if (i == worst) continue;
      for (std::size_t j = 0; j < n; ++j) centroid[j] += simplex[i][j] / static_cast<double>(n);
    }
    const std::vector<double> reflected = point(centroid, simplex[worst], -1.0);
    const double fr = f(reflected);
    if (fr < values[best]) {
      const std::vector<double> expanded = point(centroid, simplex[worst], -2.0);
      const double fe = f(expanded);
      if (fe < fr) {
        simplex[worst] = expanded;
        values[worst] = fe;
      } else {
        simplex[worst] = reflected;
        values[worst] = fr;
      }
    } else if (fr < values[second]) {
      simplex[worst] = reflected;
      values[worst] = fr;
    } else {
      const bool outside = fr < values[worst];
      const std::vector<double> contracted = point(centroid, outside ? reflected : simplex[worst], 0.5);
      const double fc = f(contracted);
      if (fc < (outside ? fr : values[worst])) {
        simplex[worst] = contracted;
        values[worst] = fc;
      } else {
        for (std::size_t i = 0; i <= n; ++i) {
          if (i == best) continue;
          simplex[i] = point(simplex[best], simplex[i], 0.5);
          values[i] = f(simplex[i]);
        }
      }
    }
  }
  std::size_t best = 0;
  for (std::size_t i = 1; i <= n; ++i) {
    if (values[i] < values[best]) best = i;
  }
  return simplex[best];
}

namespace detail {
PERKREC_INLINE double hypergeometric_2f1(double a, double b, double c, double z) {
  double term = 1.0, sum = 1.0;
  for (int k = 0; k < 5000; ++k) {
    term *= (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
    sum += term;
    if (std::fabs(term) < 1e-14 * std::fabs(sum)) break;
  }
  return sum;
}
}  // namespace detail

}  // namespace perkrec
