// Timing building blocks: the BG/NBD repurchase model and a small Nelder-Mead minimizer.
//
// BG/NBD (Fader, Hardie and Lee, 2005): while alive a member buys as a Poisson process with
// rate lambda ~ Gamma(r, alpha); after each purchase they drop out with probability
// p ~ Beta(a, b). A member is summarized by x (repeat purchases: orders after the first),
// t_x (days from the first to the last order) and T (days from the first order to the cut).
// The log-likelihood of one member is
//   ln L = ln G(r+x) - ln G(r) + r ln alpha + ln B(a, b+x) - ln B(a, b)
//          + ln[ (alpha+T)^-(r+x) + [x>0] a/(b+x-1) (alpha+t_x)^-(r+x) ]
// evaluated in log space. fit() maximizes the total by Nelder-Mead over the logs of
// (r, alpha, a, b), so the parameters stay positive.
//
// Example:
//   perkrec::BGNBD m = perkrec::BGNBD::fit(x, t_x, T);
//   double alive = m.p_alive(3, 40.0, 60.0);
//   double next30 = m.expected_purchases(30.0, 3, 40.0, 60.0);
//
// Thread safety: a BGNBD is a plain value; all methods are const.
#pragma once

#include <functional>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/types.hpp"

namespace perkrec {

struct BGNBD {
  double r = 1.0, alpha = 1.0, a = 1.0, b = 1.0;  ///< all > 0

  /// Log-likelihood of one member (x >= 0, 0 <= t_x <= T, T > 0).
  double log_likelihood(double x, double t_x, double T) const;
  /// Probability the member is still active at T.
  double p_alive(double x, double t_x, double T) const;
  /// Expected purchases in the next t days (needs a > 1 for a finite mean; below that the
  /// expectation is computed with a clamped at 1 + 1e-6).
  double expected_purchases(double t, double x, double t_x, double T) const;
  /// Maximum-likelihood fit over members (arrays of equal length). Members with T <= 0 are
  /// skipped. Deterministic for any num_threads. Throws InputError for bad arrays.
  static BGNBD fit(Span<const double> x, Span<const double> t_x, Span<const double> T,
                   int num_threads = 0, int max_iterations = 600);
};

/// Minimizes f over R^n by Nelder-Mead from `start` with initial step `step`; returns the
/// best point. Stops after `max_iterations` or when the simplex's value spread is below `tol`.
PERKREC_INLINE std::vector<double> nelder_mead(const std::function<double(const std::vector<double>&)>& f,
                                               std::vector<double> start, double step = 0.5,
                                               int max_iterations = 600, double tol = 1e-9);

namespace detail {
/// Gauss hypergeometric 2F1(a, b; c; z) for 0 <= z < 1 by its series.
PERKREC_INLINE double hypergeometric_2f1(double a, double b, double c, double z);
}  // namespace detail

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/models/timing_impl.hpp"
#endif
