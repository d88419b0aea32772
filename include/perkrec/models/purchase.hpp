// Purchase models of customer-base analysis, shared by the preference model's timing and the
// lifetime-value model (models/clv.hpp): BG/NBD, MBG/NBD, Pareto/NBD, Gamma-Gamma, one
// maximum-likelihood fitter.
//
// BG/NBD (Fader, Hardie and Lee, 2005): while alive a member buys as a Poisson process with
// rate lambda ~ Gamma(r, alpha); after each purchase they drop out with probability
// p ~ Beta(a, b). A member is summarized by x (repeat purchases: occasions after the first),
// t_x (time from the first to the last occasion) and T (time from the first occasion to the
// end of observation), in any time unit (the rate alpha is in the same unit). The
// log-likelihood of one member is
//   ln L = ln G(r+x) - ln G(r) + r ln alpha + ln B(a, b+x) - ln B(a, b)
//          + ln[ (alpha+T)^-(r+x) + [x>0] a/(b+x-1) (alpha+t_x)^-(r+x) ]
// evaluated in log space.
//
// MBG/NBD (Batislam, Denizel and Filiztekin, 2007): as BG/NBD, but a member may also drop out
// right after the first purchase (x + 1 dropout chances instead of x), so a one-time buyer is
// not alive for sure:
//   ln L = ln G(r+x) - ln G(r) + r ln alpha + ln B(a, b+x+1) - ln B(a, b)
//          + ln[ (alpha+T)^-(r+x) + a/(b+x) (alpha+t_x)^-(r+x) ]
//
// Pareto/NBD (Schmittlein, Morrison and Colombo, 1987): while alive a member buys at rate
// lambda ~ Gamma(r, alpha) and dies at an exponential time of rate mu ~ Gamma(s, beta), in
// continuous time. With J = int_{t_x}^{T} (alpha+u)^-(r+x) (beta+u)^-(s+1) du,
//   ln L = ln G(r+x) - ln G(r) + r ln alpha + s ln beta
//          + ln[ (alpha+T)^-(r+x) (beta+T)^-s + s J ].
// J is evaluated as a difference of Gauss hypergeometric functions written in the form
// 2F1(1, c; d; z) (Euler's transformation of Fader and Hardie's expression; a positive series
// with ratio below z), or, when z > 0.9 (alpha and beta far apart), by composite Gauss-Legendre
// quadrature on ln(min(alpha, beta) + u) with panels narrow enough for 1e-13 relative error.
// "No detectable dropout" is s -> 0 or beta -> infinity.
//
// BG/BB (Fader, Hardie and Shang, 2010), for discrete purchase opportunities (one per time
// unit): while alive a member buys at each opportunity with probability p ~ Beta(alpha, beta)
// and dies before each with probability theta ~ Beta(gamma, delta). A member is x purchases in
// n opportunities, the last at opportunity t_x (whole numbers; the continuous summaries are
// floored: n = floor(T), t_x = floor(t_x)), and
//   L = B(alpha+x, beta+n-x)/B(alpha, beta) B(gamma, delta+n)/B(gamma, delta)
//       + sum_{i=0}^{n-t_x-1} B(alpha+x, beta+t_x-x+i)/B(alpha, beta) B(gamma+1,
//       delta+t_x+i)/B(gamma, delta).
// Its cost per member is O(n - t_x).
//
// Each purchase model gives P(alive at T | x, t_x, T) and the conditional expectation of the
// purchases in (T, T + t] (Fader, Hardie and Lee 2005 eq. 10; Batislam et al. eq. 6; Fader and
// Hardie's Pareto/NBD note, eq. 14), exact for any parameters (BG/NBD and MBG/NBD with a < 1
// included; the NBD limit when the dropout probability a / (a + b) is below 1e-9).
// PurchaseModel holds any of them behind one interface.
//
// Gamma-Gamma (Fader, Hardie and Lee, 2005b; Colombo and Jiang, 1999): a member's order values
// are Gamma(p, nu) with nu ~ Gamma(q, gamma) across members; a member with x repeat orders of
// mean value m contributes
//   ln L = ln G(px+q) - ln G(px) - ln G(q) + q ln gamma + (px-1) ln m + px ln x - (px+q)
//   ln(xm+gamma).
// It assumes the mean order value is independent of the purchase frequency; the fit reports the
// sample correlation of the two so that users can check.
//
// Fitting. BGNBD::fit is the historical entry point of the preference model (Nelder-Mead over
// the logs of the parameters; kept bit-identical). BGNBD::maximum_likelihood and
// GammaGamma::maximum_likelihood are the robust fitters: they run the same Nelder-Mead start,
// then Newton steps on the log-parameters with a Hessian taken by differencing the analytic
// gradient, and
//  - never throw on ordinary data: each log-parameter is mapped through 23 tanh(u / 23), so a
//    parameter that runs to 0 or infinity (a -> 0 or b -> infinity: "no detectable dropout")
//    stops at e^-23 or e^23 and is reported in `at_boundary` instead of failing;
//  - take an optional penalizer c >= 0: the objective is -(ln L)/n + c sum_k ln(theta_k)^2,
//    which shrinks every parameter towards 1 on the log scale (scale-free, unlike a penalty on
//    theta^2);
//  - give standard errors from the observed information: the inverse Hessian of -ln L over the
//    log-parameters that are not at a boundary, mapped by the delta method (se(theta) = theta x
//    se(ln theta)); NaN for a parameter at a boundary or when the Hessian is singular.
// BG/NBD works on the distinct (x, t_x, T) triples with counts, so its cost per evaluation is
// O(distinct triples / threads); Gamma-Gamma costs one logarithm per member and evaluation.
// Above 20,000 rows the Nelder-Mead start runs on a systematic sample of every k-th row (it
// needs hundreds of evaluations), and the Newton steps and the Hessian on all rows (a few
// dozen). Deterministic for any num_threads (fixed-order sums over fixed chunks).
//
// Example:
//   perkrec::BGNBDFit f = perkrec::BGNBD::maximum_likelihood(x, t_x, T);
//   double alive = f.model.p_alive(3, 40.0, 60.0);
//   double next30 = f.model.expected_purchases(30.0, 3, 40.0, 60.0);
//   perkrec::GammaGammaFit g = perkrec::GammaGamma::maximum_likelihood(x, mean_value);
//   double value = g.model.expected_order_value(3, 25.0);
//
// Thread safety: the models are plain values; all methods are const.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/types.hpp"

namespace perkrec {

struct BGNBDFit;
struct MBGNBDFit;
struct ParetoNBDFit;
struct GammaGammaFit;

/// Options of the robust maximum-likelihood fitters.
struct MaximumLikelihoodOptions {
  double penalizer = 0.0;     ///< >= 0, finite: weight of sum ln(theta)^2 added to -(ln L)/n
  int max_iterations = 2000;  ///< Nelder-Mead iterations before the Newton polish; > 0
  int num_threads = 0;        ///< 0 = OpenMP default
  /// Throws ConfigError naming the field.
  void validate() const;
};

/// What a robust fit found, parameter by parameter in the model's order.
struct MaximumLikelihoodFit {
  std::vector<double> params;             ///< natural scale
  std::vector<double> standard_errors;    ///< NaN at a boundary or with a singular Hessian
  std::vector<std::uint8_t> at_boundary;  ///< 1: ran to e^-23 or e^23 (0 or infinity)
  /// k x k row-major covariance of ln theta (inverse Hessian); zero rows and columns for
  /// parameters at a boundary; all zero when the Hessian is singular.
  std::vector<double> log_covariance;
  double log_likelihood = 0;  ///< unpenalized total over members
  double gradient_norm = 0;   ///< of the objective over free log-parameters
  Offset members = 0;         ///< members the likelihood summed over
  int evaluations = 0;        ///< objective evaluations
  bool converged = false;     ///< gradient small at the end
};

struct BGNBD {
  double r = 1.0, alpha = 1.0, a = 1.0, b = 1.0;  ///< all > 0

  /// Log-likelihood of one member (x >= 0, 0 <= t_x <= T, T > 0).
  double log_likelihood(double x, double t_x, double T) const;
  /// Probability the member is still active at T.
  double p_alive(double x, double t_x, double T) const;
  /// Expected purchases in the next t time units (needs a > 1 for a finite mean; below that the
  /// expectation is computed with a clamped at 1 + 1e-6).
  double expected_purchases(double t, double x, double t_x, double T) const;
  /// Maximum-likelihood fit over members (arrays of equal length). Members with T <= 0 are
  /// skipped. Deterministic for any num_threads. Throws InputError for bad arrays.
  static BGNBD fit(Span<const double> x, Span<const double> t_x, Span<const double> T,
                   int num_threads = 0, int max_iterations = 600);
  /// Robust maximum-likelihood fit (see the file comment). Members with T <= 0 are skipped;
  /// inconsistent summaries (x < 0, t_x < 0, t_x > T, non-finite) are an InputError naming the
  /// position; no member with T > 0 is an InputError.
  static BGNBDFit maximum_likelihood(Span<const double> x, Span<const double> t_x,
                                     Span<const double> T,
                                     const MaximumLikelihoodOptions& options = {});
};

/// BG/NBD parameters with their fit (params = r, alpha, a, b).
struct BGNBDFit {
  BGNBD model;
  MaximumLikelihoodFit fit;
};

struct MBGNBD {
  double r = 1.0, alpha = 1.0, a = 1.0, b = 1.0;  ///< all > 0

  /// Log-likelihood of one member (x >= 0, 0 <= t_x <= T, T > 0).
  double log_likelihood(double x, double t_x, double T) const;
  /// Probability the member is still active at T (below 1 for x = 0 too).
  double p_alive(double x, double t_x, double T) const;
  /// Expected purchases in the next t time units, exact for any a.
  double expected_purchases(double t, double x, double t_x, double T) const;
  /// Robust maximum-likelihood fit; inputs, skipped members and errors as
  /// BGNBD::maximum_likelihood.
  static MBGNBDFit maximum_likelihood(Span<const double> x, Span<const double> t_x,
                                      Span<const double> T,
                                      const MaximumLikelihoodOptions& options = {});
};

/// MBG/NBD parameters with their fit (params = r, alpha, a, b).
struct MBGNBDFit {
  MBGNBD model;
  MaximumLikelihoodFit fit;
};

struct ParetoNBD {
  double r = 1.0, alpha = 1.0, s = 1.0, beta = 1.0;  ///< all > 0

  /// Log-likelihood of one member (x >= 0, 0 <= t_x <= T, T > 0).
  double log_likelihood(double x, double t_x, double T) const;
  /// Probability the member is still active at T.
  double p_alive(double x, double t_x, double T) const;
  /// Expected purchases in the next t time units (any s; the s = 1 limit is a logarithm).
  double expected_purchases(double t, double x, double t_x, double T) const;
  /// Robust maximum-likelihood fit; inputs, skipped members and errors as
  /// BGNBD::maximum_likelihood. The Hessian is taken by differencing the likelihood.
  static ParetoNBDFit maximum_likelihood(Span<const double> x, Span<const double> t_x,
                                         Span<const double> T,
                                         const MaximumLikelihoodOptions& options = {});
};

/// Pareto/NBD parameters with their fit (params = r, alpha, s, beta).
struct ParetoNBDFit {
  ParetoNBD model;
  MaximumLikelihoodFit fit;
};

struct BGBBFit;

struct BGBB {
  double alpha = 1.0, beta = 1.0, gamma = 1.0, delta = 1.0;  ///< all > 0

  /// Log-likelihood of one member: x purchases in n opportunities, the last at t_x (floored;
  /// x <= t_x <= n, and t_x = 0 when x = 0).
  double log_likelihood(double x, double t_x, double n) const;
  /// Probability the member is alive at the next opportunity.
  double p_alive(double x, double t_x, double n) const;
  /// Expected purchases in the next t opportunities (t need not be whole: the formula is
  /// smooth in t).
  double expected_purchases(double t, double x, double t_x, double n) const;
  /// Robust maximum-likelihood fit; inputs are floored as above, members with n = 0 skipped;
  /// x > t_x, t_x > n, or x > 0 with t_x = 0 after flooring is an InputError naming the position.
  static BGBBFit maximum_likelihood(Span<const double> x, Span<const double> t_x,
                                    Span<const double> n,
                                    const MaximumLikelihoodOptions& options = {});
};

/// BG/BB parameters with their fit (params = alpha, beta, gamma, delta).
struct BGBBFit {
  BGBB model;
  MaximumLikelihoodFit fit;
};

/// Which purchase model; names "bgnbd", "mbgnbd", "paretonbd", "bgbb".
enum class PurchaseModelKind : std::uint8_t { bgnbd, mbgnbd, paretonbd, bgbb };

/// Any of the purchase models above behind one interface (four parameters in the model's
/// order: r, alpha, a, b or r, alpha, s, beta or alpha, beta, gamma, delta). Expected purchases are
/// exact for every model (unlike BGNBD::expected_purchases, kept for the preference model).
struct PurchaseModel {
  PurchaseModelKind kind = PurchaseModelKind::bgnbd;
  std::array<double, 4> params{1.0, 1.0, 1.0, 1.0};

  double log_likelihood(double x, double t_x, double T) const;
  double p_alive(double x, double t_x, double T) const;
  double expected_purchases(double t, double x, double t_x, double T) const;
  /// "bgnbd", "mbgnbd", "paretonbd" or "bgbb".
  static const char* name(PurchaseModelKind kind);
  /// Parses a name; false when unknown.
  static bool parse(const std::string& name, PurchaseModelKind& out);
  /// The parameter names in order.
  static std::array<const char*, 4> parameter_names(PurchaseModelKind kind);
  /// The robust fit of the chosen model (see the models' maximum_likelihood).
  static MaximumLikelihoodFit maximum_likelihood(PurchaseModelKind kind, Span<const double> x,
                                                 Span<const double> t_x, Span<const double> T,
                                                 const MaximumLikelihoodOptions& options = {});
};

struct GammaGamma {
  double p = 1.0, q = 2.0, gamma = 1.0;  ///< all > 0

  /// Log-likelihood of one member with x > 0 repeat orders of mean value m > 0.
  double log_likelihood(double x, double m) const;
  /// Expected value of the member's next order: p (gamma + x m) / (p x + q - 1); with x = 0
  /// the population mean p gamma / (q - 1). Needs q > 1 for a finite mean: below that q is
  /// clamped at 1 + 1e-6 and the result is large.
  double expected_order_value(double x, double m) const;
  /// Robust maximum-likelihood fit on the members with x > 0 and m > 0 (others are skipped).
  /// Negative or non-finite x or m is an InputError naming the position; fewer than two usable
  /// members is an InputError.
  static GammaGammaFit maximum_likelihood(Span<const double> x, Span<const double> m,
                                          const MaximumLikelihoodOptions& options = {});
};

/// Gamma-Gamma parameters with their fit (params = p, q, gamma) and the Pearson correlation of
/// x and m over the members used (the model assumes it is near 0).
struct GammaGammaFit {
  GammaGamma model;
  MaximumLikelihoodFit fit;
  double frequency_spend_correlation = 0;
};

/// Minimizes f over R^n by Nelder-Mead from `start` with initial step `step`; returns the
/// best point. Stops after `max_iterations` or when the simplex's value spread is below `tol`.
PERKREC_INLINE std::vector<double> nelder_mead(
    const std::function<double(const std::vector<double>&)>& f, std::vector<double> start,
    double step = 0.5, int max_iterations = 600, double tol = 1e-9);

namespace detail {
/// The robust fitter over log-parameters v = ln theta: minimizes total_nll(v) / members +
/// penalizer sum v^2 from `start` (log scale); total_nll returns the unpenalized total -ln L
/// (or +infinity). See the file comment.
PERKREC_INLINE MaximumLikelihoodFit minimize_log_parameters(
    const std::function<double(const std::vector<double>&)>& total_nll, double members,
    std::vector<double> start, const MaximumLikelihoodOptions& options);
/// Gauss hypergeometric 2F1(a, b; c; z) for 0 <= z < 1 by its series.
PERKREC_INLINE double hypergeometric_2f1(double a, double b, double c, double z);
/// Pareto/NBD: ln of (r + s + x) int_t^inf (alpha+u)^-(r+x) (beta+u)^-(s+1) du by the series
/// (for |alpha - beta| / (max(alpha, beta) + t) <= 0.9), and ln int_{t_x}^{T} of the same
/// integrand by quadrature (any parameters); exposed for tests.
PERKREC_INLINE double pareto_log_upper(const ParetoNBD& m, double x, double t);
PERKREC_INLINE double pareto_log_integral_quadrature(const ParetoNBD& m, double x, double t_x,
                                                     double T);
/// Whether a floored BG/BB summary is consistent: x <= t_x <= n <= 1e6, t_x >= 1 when x > 0.
PERKREC_INLINE bool bgbb_summary_ok(double x, double t_x, double n);
/// InputError naming `who` and position i unless bgbb_summary_ok.
PERKREC_INLINE void check_bgbb_summary(const char* who, std::size_t i, double x, double t_x,
                                       double n);
/// E[purchases in (T, T + t] | x, t_x, T] of BG/NBD (modified = false) or MBG/NBD (true),
/// exact for any a; the NBD limit when a / (a + b) < 1e-9.
PERKREC_INLINE double beta_geometric_expected_purchases(double r, double alpha, double a, double b,
                                                        bool modified, double t, double x,
                                                        double t_x, double T);
}  // namespace detail

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/models/purchase_impl.hpp"
#endif
