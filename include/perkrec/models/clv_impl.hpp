// Definitions for clv.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>

#include <Eigen/Dense>

#include "perkrec/core/error.hpp"
#include "perkrec/core/math.hpp"
#include "perkrec/core/random.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/detail/numpy_sum.hpp"
#include "perkrec/models/clv.hpp"

namespace perkrec {

namespace detail {

inline const char* clv_unit_name(CLVParams::TimeUnit u) {
  return u == CLVParams::TimeUnit::day ? "day" : "week";
}

// Quantile (linear interpolation) of a copy of `values`; NaN when empty.
inline double quantile_of(std::vector<double> values, double level) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  const double pos = level * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(values.size() - 1, lo + 1);
  return values[lo] + (pos - static_cast<double>(lo)) * (values[hi] - values[lo]);
}

inline Json finite_or_null(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

// The fit of one model as a flat f64 array: params, standard errors, boundary flags (k each),
// then log-likelihood, gradient norm, members, evaluations, converged, then the k x k
// covariance of the log-parameters.
inline std::vector<double> pack_fit(const MaximumLikelihoodFit& f, std::size_t k) {
  std::vector<double> out;
  for (std::size_t j = 0; j < k; ++j) out.push_back(f.params[j]);
  for (std::size_t j = 0; j < k; ++j) out.push_back(f.standard_errors[j]);
  for (std::size_t j = 0; j < k; ++j) out.push_back(f.at_boundary[j]);
  out.push_back(f.log_likelihood);
  out.push_back(f.gradient_norm);
  out.push_back(static_cast<double>(f.members));
  out.push_back(f.evaluations);
  out.push_back(f.converged ? 1.0 : 0.0);
  for (std::size_t j = 0; j < k * k; ++j)
    out.push_back(f.log_covariance.empty() ? 0.0 : f.log_covariance[j]);
  return out;
}

inline std::size_t packed_fit_size(std::size_t k) { return 3 * k + 5 + k * k; }

inline MaximumLikelihoodFit unpack_fit(const std::vector<double>& v, std::size_t k,
                                       const ModelReader& r, const char* what) {
  MaximumLikelihoodFit f;
  auto bad = [&](const char* field) { r.invalid(concat(what, ": bad ", field)); };
  for (std::size_t j = 0; j < k; ++j) {
    if (!(v[j] > 0) || !std::isfinite(v[j])) bad("parameter (expected finite and > 0)");
    f.params.push_back(v[j]);
  }
  for (std::size_t j = 0; j < k; ++j) {
    const double se = v[k + j];
    if (!std::isnan(se) && !(se >= 0 && std::isfinite(se))) bad("standard error");
    f.standard_errors.push_back(se);
  }
  for (std::size_t j = 0; j < k; ++j) {
    const double b = v[2 * k + j];
    if (b != 0.0 && b != 1.0) bad("boundary flag");
    f.at_boundary.push_back(static_cast<std::uint8_t>(b));
  }
  const double* tail = v.data() + 3 * k;
  if (!std::isfinite(tail[0]) || !(tail[1] >= 0) || !(tail[2] >= 0 && tail[2] < 9e18) ||
      !(tail[3] >= 0 && tail[3] < 2e9) || (tail[4] != 0.0 && tail[4] != 1.0)) {
    bad("fit statistics");
  }
  f.log_likelihood = tail[0];
  f.gradient_norm = tail[1];
  f.members = static_cast<Offset>(tail[2]);
  f.evaluations = static_cast<int>(tail[3]);
  f.converged = tail[4] != 0.0;
  f.log_covariance.assign(v.begin() + static_cast<std::ptrdiff_t>(3 * k + 5), v.end());
  for (double c : f.log_covariance) {
    if (!std::isfinite(c)) bad("covariance");
  }
  return f;
}

inline Json fit_json(const MaximumLikelihoodFit& f, const std::vector<const char*>& names) {
  Json se = Json::object(), boundary = Json::array();
  for (std::size_t j = 0; j < names.size(); ++j) {
    se[names[j]] = finite_or_null(f.standard_errors[j]);
    if (f.at_boundary[j]) boundary.push_back(names[j]);
  }
  return Json{{"standard_errors", se},
              {"at_boundary", boundary},
              {"log_likelihood", f.log_likelihood},
              {"gradient_norm", finite_or_null(f.gradient_norm)},
              {"members", f.members},
              {"evaluations", f.evaluations},
              {"converged", f.converged}};
}

// Draws of the log-parameters from N(v_hat, covariance); parameters at a boundary (zero rows)
// stay fixed. A covariance that is not positive semi-definite gives the point for every draw.
inline std::vector<std::vector<double>> parameter_draws(const MaximumLikelihoodFit& f, int draws,
                                                        Rng& rng) {
  const auto k = static_cast<Eigen::Index>(f.params.size());
  std::vector<std::vector<double>> out(static_cast<std::size_t>(draws),
                                       std::vector<double>(f.params.size()));
  Eigen::MatrixXd L = Eigen::MatrixXd::Zero(k, k);
  if (f.log_covariance.size() == static_cast<std::size_t>(k * k)) {
    Eigen::MatrixXd cov(k, k);
    for (Eigen::Index i = 0; i < k; ++i) {
      for (Eigen::Index j = 0; j < k; ++j)
        cov(i, j) = f.log_covariance[static_cast<std::size_t>(i * k + j)];
    }
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(cov);
    if (eig.info() == Eigen::Success && eig.eigenvalues().minCoeff() >= -1e-12) {
      L = eig.eigenvectors() * eig.eigenvalues().cwiseMax(0.0).cwiseSqrt().asDiagonal();
    }
  }
  for (auto& d : out) {
    Eigen::VectorXd z(k);
    for (Eigen::Index i = 0; i < k; ++i) z(i) = rng.normal();
    const Eigen::VectorXd shift = L * z;
    for (Eigen::Index i = 0; i < k; ++i) {
      // Draws stay inside the fitter's box of log-parameters, so they are finite.
      d[static_cast<std::size_t>(i)] = std::exp(
          std::clamp(std::log(f.params[static_cast<std::size_t>(i)]) + shift(i), -23.0, 23.0));
    }
  }
  return out;
}

// One draw of the member's discounted purchases over the units ending at `ends` (discount
// `factors`) from their posterior given alive under purchase-model parameters `th` (see the
// file comment of clv.hpp).
inline double posterior_purchases_draw(PurchaseModelKind kind, const std::vector<double>& th,
                                       double x, double T, const std::vector<double>& ends,
                                       const std::vector<double>& factors, Rng& rng) {
  double purchases = 0, before = 0;
  if (kind == PurchaseModelKind::bgbb) {
    // Given alive at the next opportunity: p ~ Beta(alpha + x, beta + n - x), theta ~ Beta(gamma,
    // delta + n + 1); purchases in the next t opportunities p (1 - (1 - theta)^t) / theta.
    const double xx = std::floor(x), n = std::floor(T);
    const double p = rng.beta(th[0] + xx, th[1] + n - xx);
    const double theta = std::max(rng.beta(th[2], th[3] + n + 1), 1e-12);
    for (std::size_t k = 0; k < ends.size(); ++k) {
      const double cumulative = p * -std::expm1(ends[k] * std::log1p(-theta)) / theta;
      purchases += factors[k] * (cumulative - before);
      before = cumulative;
    }
    return purchases;
  }
  const double lambda = rng.gamma(th[0] + x) / (th[1] + T);
  if (kind == PurchaseModelKind::paretonbd) {
    const double mu = std::max(rng.gamma(th[2]) / (th[3] + T), 1e-300);
    for (std::size_t k = 0; k < ends.size(); ++k) {
      const double cumulative = lambda * -std::expm1(-mu * ends[k]) / mu;
      purchases += factors[k] * (cumulative - before);
      before = cumulative;
    }
    return purchases;
  }
  const double extra = kind == PurchaseModelKind::mbgnbd ? 1.0 : 0.0;
  const double drop = std::max(rng.beta(th[2], th[3] + x + extra), 1e-12);
  for (std::size_t k = 0; k < ends.size(); ++k) {
    const double cumulative = -std::expm1(-lambda * drop * ends[k]) / drop;
    purchases += factors[k] * (cumulative - before);
    before = cumulative;
  }
  return purchases;
}

// --- forecasters: features, ridge regression, backtest ------------------------------------------

// Per-member features (row-major, kClvFeatures per member of `s`) from the log's events of each
// member strictly before `cut` (see kCLVRegressionFeatures); `m` and `value` give the purchase
// model's p_alive and expected purchases over `horizon` and the expected order value.
inline std::vector<double> clv_features(const EventLog& log, const CLVSummary& s, Timestamp cut,
                                        double horizon, Timestamp unit, const PurchaseModel& m,
                                        const std::vector<double>& value, int threads) {
  const std::size_t n = s.size();
  std::vector<double> f(n * kClvFeatures, 0.0);
  const Span<const std::uint8_t> types = log.types();
  const Span<const Timestamp> times = log.timestamps();
  const Span<const float> amounts = log.order_amounts();
  const auto ordered = static_cast<std::uint8_t>(EventType::ordered);
  const auto issued = static_cast<std::uint8_t>(EventType::issued);
  const auto claimed = static_cast<std::uint8_t>(EventType::claimed);
  const auto redeemed = static_cast<std::uint8_t>(EventType::redeemed);
  const double windows[3] = {horizon / 4, horizon / 2, horizon};
  const auto span_of = [&](double w) {
    return static_cast<Timestamp>(std::llround(w * static_cast<double>(unit)));
  };
  const Timestamp w_q = span_of(windows[0]), w_h = span_of(windows[1]), w_1 = span_of(windows[2]);
  parallel_for(0, static_cast<Offset>(n), threads, [&](Offset row) {
    const auto i = static_cast<std::size_t>(row);
    const Index u = s.users[i];
    double recent[3] = {0, 0, 0}, recent_spend = 0, benefits_recent = 0, benefits = 0,
           redeemed_recent = 0;
    std::int64_t last_day[3] = {std::numeric_limits<std::int64_t>::min(),
                                std::numeric_limits<std::int64_t>::min(),
                                std::numeric_limits<std::int64_t>::min()};
    for (Offset e = log.user_begin(u); e < log.user_end(u); ++e) {
      const auto k = static_cast<std::size_t>(e);
      if (times[k] >= cut) break;
      const Timestamp age = cut - times[k];
      if (types[k] == ordered) {
        const std::int64_t day = floor_div(times[k], kSecondsPerDay);
        const Timestamp spans[3] = {w_q, w_h, w_1};
        for (int w = 0; w < 3; ++w) {
          if (age <= spans[w] && day != last_day[w]) {
            recent[w] += 1;
            last_day[w] = day;
          }
        }
        if (age <= w_1)
          recent_spend += amounts.empty() ? 0.0 : std::max(0.0, static_cast<double>(amounts[k]));
      } else {
        const bool benefit = types[k] == issued || types[k] == claimed || types[k] == redeemed;
        benefits += benefit;
        if (age <= w_1) {
          benefits_recent += benefit;
          redeemed_recent += types[k] == redeemed;
        }
      }
    }
    const double x = s.x[i], t_x = s.t_x[i], T = s.T[i];
    const double expected = m.expected_purchases(horizon, x, t_x, T);
    double* r = f.data() + i * kClvFeatures;
    // Rates and windows rather than totals, so that the features of the (older) members at the
    // cut lie in the range of those at the backtest cut.
    r[0] = T > 0 ? std::log1p(x / T * horizon) : 0.0;
    r[1] = x / (T + 1.0);
    r[2] = (T - t_x) / (T + 1.0);
    r[3] = std::log1p(T - t_x);
    r[4] = std::min(T / horizon, 1.0);
    r[5] = std::log1p(recent[0]);
    r[6] = std::log1p(recent[1]);
    r[7] = std::log1p(recent[2]);
    r[8] = std::log1p(s.mean_order_value[i]);
    r[9] = std::log1p(recent_spend);
    r[10] = std::log1p(std::max(0.0, expected));
    r[11] = m.p_alive(x, t_x, T);
    r[12] = std::log1p(std::max(0.0, expected * value[i]));
    r[13] = std::log1p(benefits_recent);
    r[14] = std::log1p(benefits / (T + 1.0) * horizon);
    r[15] = std::log1p(redeemed_recent);
    r[16] = x == 0 ? 1.0 : 0.0;
    for (std::size_t j = 0; j < kClvFeatures; ++j) {
      if (!std::isfinite(r[j])) r[j] = 0.0;
    }
  });
  return f;
}

// The standardization of the features of the rows with use[i] == keep (all when `use` is
// empty): their mean, scale (0 for a constant feature, which is then unused) and range.
PERKREC_INLINE void clv_standardize(const std::vector<double>& f, std::size_t n,
                                    const std::vector<std::uint8_t>& use, std::uint8_t keep,
                                    CLVRegression& sc) {
  const std::size_t p = kClvFeatures;
  const auto used = [&](std::size_t i) { return use.empty() || use[i] == keep; };
  sc.mean.assign(p, 0.0);
  sc.scale.assign(p, 0.0);
  sc.lo.assign(p, std::numeric_limits<double>::infinity());
  sc.hi.assign(p, -std::numeric_limits<double>::infinity());
  double count = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!used(i)) continue;
    count += 1;
    for (std::size_t j = 0; j < p; ++j) {
      const double v = f[i * p + j];
      sc.mean[j] += v;
      sc.lo[j] = std::min(sc.lo[j], v);
      sc.hi[j] = std::max(sc.hi[j], v);
    }
  }
  if (count == 0) {
    sc.lo.assign(p, 0.0);
    sc.hi.assign(p, 0.0);
    return;
  }
  for (double& v : sc.mean) v /= count;
  for (std::size_t i = 0; i < n; ++i) {
    if (!used(i)) continue;
    for (std::size_t j = 0; j < p; ++j)
      sc.scale[j] += (f[i * p + j] - sc.mean[j]) * (f[i * p + j] - sc.mean[j]);
  }
  for (double& v : sc.scale) v = v / count > 1e-18 ? std::sqrt(v / count) : 0.0;
}

// The linear predictor (log of the forecast over H) of feature row `r`. Features outside the
// range seen in training are clamped to it (the features at the cut can lie beyond those at the
// backtest cut: the members are older, the purchase model refitted).
inline double clv_linear(const double* r, const CLVRegression& sc,
                         const std::vector<double>& coef) {
  double v = coef[0];
  for (std::size_t j = 0; j < kClvFeatures; ++j) {
    if (sc.scale[j] > 0)
      v += coef[j + 1] * (std::clamp(r[j], sc.lo[j], sc.hi[j]) - sc.mean[j]) / sc.scale[j];
  }
  return v;
}

// The forecast over H of feature row `r`: exp of the linear predictor (capped far above any
// count or spend so that it stays finite).
PERKREC_INLINE double clv_regression_apply(const double* r, const CLVRegression& sc,
                                           const std::vector<double>& coef) {
  const double v = clv_linear(r, sc, coef);
  return std::isfinite(v) ? std::exp(std::min(v, 200.0)) : 0.0;
}

// A Poisson (log-link) ridge regression of y >= 0 on the standardized features (`sc`, from
// clv_standardize) of the rows with use[i] == keep (all when `use` is empty): the minimum of
//   sum_i (mu_i - y_i eta_i) + l2 / 2 x mean(y) x |beta|^2,   eta_i = beta_0 + z_i . beta,
//   mu_i = exp(eta_i),
// the intercept unpenalized, by Newton's method (IRLS) with step halving from beta = 0,
// beta_0 = log mean(y). For counts it is the Poisson maximum likelihood; for spend the Poisson
// quasi-likelihood (any y >= 0, mean proportional to variance, zeros included). Scaling the
// penalty by mean(y) makes beta the same for y and c y (the intercept moves by log c). Expected
// values, unbiased in total: at the optimum the intercept's equation is sum_i mu_i = sum_i y_i
// exactly. Sums are taken in fixed blocks in order: the result does not depend on the thread
// count. `coef` = (beta_0, beta), beta_j = 0 for a constant feature; beta_0 = log(1e-12) when no
// row has y > 0.
PERKREC_INLINE void clv_poisson(const std::vector<double>& f, const std::vector<double>& y,
                                const std::vector<std::uint8_t>& use, std::uint8_t keep, double l2,
                                int threads, const CLVRegression& sc, std::vector<double>& coef) {
  const std::size_t n = y.size(), p = kClvFeatures;
  const auto used = [&](std::size_t i) { return use.empty() || use[i] == keep; };
  const auto P = static_cast<Eigen::Index>(p + 1);
  coef.assign(p + 1, 0.0);
  double count = 0, total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!used(i)) continue;
    count += 1;
    total += y[i];
  }
  if (!(total > 0)) {
    coef[0] = std::log(1e-12);
    return;
  }
  const double penalty = l2 * total / count;
  std::vector<std::size_t> rows;
  rows.reserve(static_cast<std::size_t>(count));
  for (std::size_t i = 0; i < n; ++i) {
    if (used(i)) rows.push_back(i);
  }
  const std::size_t m = rows.size();
  // The standardized row i with a leading 1.
  const auto standardized = [&](std::size_t i, Eigen::VectorXd& z) {
    z(0) = 1.0;
    for (std::size_t j = 0; j < p; ++j) {
      z(static_cast<Eigen::Index>(j + 1)) =
          sc.scale[j] > 0 ? (f[i * p + j] - sc.mean[j]) / sc.scale[j] : 0.0;
    }
  };
  constexpr std::size_t kBlock = 4096;
  const std::size_t blocks = (m + kBlock - 1) / kBlock;
  Eigen::VectorXd beta = Eigen::VectorXd::Zero(P);
  beta(0) = std::log(total / count);
  std::vector<double> block_loss(blocks);
  // The penalized objective at `b` (the intercept unpenalized).
  const auto objective = [&](const Eigen::VectorXd& b) {
    parallel_for(0, static_cast<Offset>(blocks), threads, [&](Offset block) {
      const auto k = static_cast<std::size_t>(block);
      Eigen::VectorXd z(P);
      double loss = 0;
      for (std::size_t r = k * kBlock; r < std::min(m, (k + 1) * kBlock); ++r) {
        standardized(rows[r], z);
        const double eta = z.dot(b);
        loss += std::exp(std::min(eta, 200.0)) - y[rows[r]] * eta;
      }
      block_loss[k] = loss;
    });
    double loss = 0;
    for (double v : block_loss) loss += v;
    return loss + 0.5 * penalty * b.tail(P - 1).squaredNorm();
  };
  std::vector<Eigen::MatrixXd> hessians(blocks);
  std::vector<Eigen::VectorXd> gradients(blocks);
  double current = objective(beta);
  for (int iteration = 0; iteration < 100; ++iteration) {
    parallel_for(0, static_cast<Offset>(blocks), threads, [&](Offset block) {
      const auto k = static_cast<std::size_t>(block);
      Eigen::MatrixXd H = Eigen::MatrixXd::Zero(P, P);
      Eigen::VectorXd g = Eigen::VectorXd::Zero(P), z(P);
      for (std::size_t r = k * kBlock; r < std::min(m, (k + 1) * kBlock); ++r) {
        standardized(rows[r], z);
        const double mu = std::exp(std::min(z.dot(beta), 200.0));
        H.selfadjointView<Eigen::Lower>().rankUpdate(z, mu);
        g += z * (mu - y[rows[r]]);
      }
      hessians[k] = std::move(H);
      gradients[k] = std::move(g);
    });
    Eigen::MatrixXd H = Eigen::MatrixXd::Zero(P, P);
    Eigen::VectorXd g = Eigen::VectorXd::Zero(P);
    for (std::size_t k = 0; k < blocks; ++k) {
      H += hessians[k];
      g += gradients[k];
    }
    H = H.selfadjointView<Eigen::Lower>();
    for (Eigen::Index j = 1; j < P; ++j) {
      H(j, j) += sc.scale[static_cast<std::size_t>(j - 1)] > 0 ? penalty + 1e-9 * total : 1.0;
      g(j) += penalty * beta(j);
    }
    const Eigen::VectorXd step = H.ldlt().solve(g);
    if (!step.allFinite()) break;
    // Step halving until the objective does not increase.
    double t = 1.0, next = current;
    Eigen::VectorXd candidate = beta;
    for (int halving = 0; halving < 40; ++halving, t /= 2) {
      candidate = beta - t * step;
      next = objective(candidate);
      if (std::isfinite(next) && next <= current) break;
    }
    if (!(std::isfinite(next) && next <= current)) break;
    const double moved = (t * step).cwiseAbs().maxCoeff();
    beta = candidate;
    current = next;
    if (moved < 1e-10) break;
  }
  for (std::size_t j = 0; j <= p; ++j) {
    const double b = beta(static_cast<Eigen::Index>(j));
    coef[j] = (j == 0 || sc.scale[j - 1] > 0) && std::isfinite(b) ? b : 0.0;
  }
}

// Files saved before the Poisson regression hold a median-like forecast: a member whose
// P(no occasion in the horizon) = (1 - P(any in H))^(horizon / H) >= 1/2 is forecast 0.
inline bool clv_median_zero(double p_any, double horizon, double H) {
  return std::pow(1.0 - p_any, horizon / H) >= 0.5;
}

inline const char* clv_forecaster_name(const CLVParams& p) {
  switch (p.forecaster) {
    case CLVParams::Forecaster::automatic:
      return "auto";
    case CLVParams::Forecaster::naive:
      return "naive";
    case CLVParams::Forecaster::regression:
      return "regression";
    default:
      return PurchaseModel::name(p.model);
  }
}

// Expected order values of the members of `s` under a Gamma-Gamma fit (or their own mean).
inline std::vector<double> clv_order_values(const CLVSummary& s, const GammaGammaFit* gg) {
  std::vector<double> v(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    v[i] = gg ? gg->model.expected_order_value(s.x[i], s.monetary[i]) : s.mean_order_value[i];
  }
  return v;
}

inline std::optional<GammaGammaFit> clv_spend_fit(const CLVSummary& s,
                                                  const MaximumLikelihoodOptions& options) {
  std::size_t spenders = 0;
  for (std::size_t i = 0; i < s.size(); ++i) spenders += s.x[i] > 0 && s.monetary[i] > 0;
  if (spenders < 2) return std::nullopt;
  return GammaGamma::maximum_likelihood(s.x, s.monetary, options);
}

// What the backtest decides (see the file comment of clv.hpp).
struct CLVBacktestResult {
  CLVSelection selection;
  CLVRegression regression;
  PurchaseModelKind purchase = PurchaseModelKind::bgnbd;
};

inline double clv_mae(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0;
  for (std::size_t i = 0; i < a.size(); ++i) sum += std::abs(a[i] - b[i]);
  return a.empty() ? 0.0 : sum / static_cast<double>(a.size());
}

// (sum of forecasts - sum of actuals) / sum of actuals; NaN when the actuals sum to 0.
inline double clv_total_error(const std::vector<double>& forecast,
                              const std::vector<double>& actual) {
  double f = 0, a = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    f += forecast[i];
    a += actual[i];
  }
  return a > 0 ? (f - a) / a : std::numeric_limits<double>::quiet_NaN();
}

inline CLVBacktestResult clv_backtest(const EventLog& log, const CLVSummary& at_cut, Timestamp cut,
                                      const CLVParams& params,
                                      const MaximumLikelihoodOptions& options) {
  CLVBacktestResult out;
  out.purchase = params.model;
  out.selection.choice = params.forecaster == CLVParams::Forecaster::regression
                             ? "regression"
                             : PurchaseModel::name(params.model);
  const int threads = resolve_num_threads(params.num_threads);
  const Timestamp unit = CLVParams::unit_seconds(params.time_unit);
  Timestamp earliest = cut;
  for (Timestamp t : at_cut.first_order) earliest = std::min(earliest, t);
  double horizon = params.backtest_horizon;
  // A quarter of the history: the members at the backtest cut have 3/4 of the history the
  // members at the cut have, so the features at both cuts are alike (with half, the members at
  // b were younger and the regression over-extrapolated at the cut; see BENCHMARKS.md).
  if (horizon <= 0) horizon = static_cast<double>(cut - earliest) / static_cast<double>(unit) / 4;
  const auto h_seconds = static_cast<Timestamp>(std::llround(horizon * static_cast<double>(unit)));
  const Timestamp b = cut - h_seconds;
  out.selection.horizon = horizon;
  out.selection.backtest_cut = b;
  if (h_seconds <= 0 || b <= earliest) {
    out.selection.note = "too little order history before the cut for a backtest";
    return out;
  }
  CLVHoldout split =
      calibration_holdout(log, b, cut, params.time_unit, params.occasion, params.num_threads);
  const CLVSummary& s = split.calibration;
  std::size_t with_t = 0;
  double targets = 0;
  for (std::size_t i = 0; i < s.size(); ++i) with_t += s.T[i] > 0;
  for (double v : split.purchases) targets += v;
  out.selection.members = static_cast<Offset>(s.size());
  if (with_t < 20 || targets == 0) {
    out.selection.note =
        concat("too little history for a backtest (", with_t, " members before the backtest cut, ",
               targets, " occasions after it)");
    return out;
  }
  const std::size_t n = s.size();
  const std::optional<GammaGammaFit> gg = clv_spend_fit(s, options);
  const std::vector<double> value = clv_order_values(s, gg ? &*gg : nullptr);
  std::vector<CLVBacktestError> candidates;
  auto add = [&](const std::string& name, const std::vector<double>& purchases,
                 const std::vector<double>& spend) {
    candidates.push_back({name, clv_mae(purchases, split.purchases), clv_mae(spend, split.spend),
                          0.0, clv_total_error(purchases, split.purchases),
                          clv_total_error(spend, split.spend)});
  };
  // Purchase models.
  const bool automatic = params.forecaster == CLVParams::Forecaster::automatic;
  std::vector<PurchaseModelKind> kinds;
  if (automatic) {
    kinds = {PurchaseModelKind::bgnbd, PurchaseModelKind::mbgnbd, PurchaseModelKind::paretonbd};
  } else {
    kinds = {params.model};
  }
  std::vector<PurchaseModel> models;
  for (PurchaseModelKind kind : kinds) {
    const MaximumLikelihoodFit fit =
        PurchaseModel::maximum_likelihood(kind, s.x, s.t_x, s.T, options);
    const PurchaseModel m{kind, {fit.params[0], fit.params[1], fit.params[2], fit.params[3]}};
    models.push_back(m);
    std::vector<double> purchases(n), spend(n);
    parallel_for(0, static_cast<Offset>(n), threads, [&](Offset row) {
      const auto i = static_cast<std::size_t>(row);
      purchases[i] = m.expected_purchases(horizon, s.x[i], s.t_x[i], s.T[i]);
      spend[i] = purchases[i] * value[i];
    });
    add(PurchaseModel::name(kind), purchases, spend);
  }
  // Naive own rate.
  {
    const CLVForecast naive = naive_forecast(s.x, s.T, s.mean_order_value, horizon);
    add("naive", naive.expected_purchases, naive.clv);
  }
  const double naive_p = candidates.back().mae_purchases, naive_s = candidates.back().mae_spend;
  auto score = [&](CLVBacktestError& c) {
    c.score = (naive_p > 0 ? c.mae_purchases / naive_p : c.mae_purchases) +
              (naive_s > 0 ? c.mae_spend / naive_s : c.mae_spend);
  };
  for (auto& c : candidates) score(c);
  // The purchase model for p_alive and the regression's features: the best by the score.
  std::size_t best_model = 0;
  for (std::size_t k = 1; k < models.size(); ++k) {
    if (candidates[k].score < candidates[best_model].score) best_model = k;
  }
  out.purchase = models[best_model].kind;
  // Regression, out-of-fold on two folds by a hash of the member index.
  const std::vector<double> f =
      clv_features(log, s, b, horizon, unit, models[best_model], value, threads);
  std::vector<double> y_p(n), y_s(n);
  std::vector<std::uint8_t> fold(n);
  for (std::size_t i = 0; i < n; ++i) {
    y_p[i] = split.purchases[i];
    y_s[i] = std::max(0.0, split.spend[i]);
    std::uint64_t state = static_cast<std::uint64_t>(s.users[i]) + 0x5EEDULL;
    fold[i] = static_cast<std::uint8_t>(splitmix64(state) & 1U);
  }
  std::vector<double> oof_p(n), oof_s(n);
  for (std::uint8_t k = 0; k < 2; ++k) {
    const auto train = static_cast<std::uint8_t>(1 - k);
    CLVRegression sc;
    std::vector<double> cp, cs;
    clv_standardize(f, n, fold, train, sc);
    clv_poisson(f, y_p, fold, train, params.regression_l2, threads, sc, cp);
    clv_poisson(f, y_s, fold, train, params.regression_l2, threads, sc, cs);
    for (std::size_t i = 0; i < n; ++i) {
      if (fold[i] != k) continue;
      const double* r = f.data() + i * kClvFeatures;
      oof_p[i] = clv_regression_apply(r, sc, cp);
      oof_s[i] = clv_regression_apply(r, sc, cs);
    }
  }
  add("regression", oof_p, oof_s);
  score(candidates.back());
  CLVRegression& reg = out.regression;
  clv_standardize(f, n, {}, 0, reg);
  clv_poisson(f, y_p, {}, 0, params.regression_l2, threads, reg, reg.purchases);
  clv_poisson(f, y_s, {}, 0, params.regression_l2, threads, reg, reg.spend);
  reg.horizon = horizon;
  reg.fitted = true;
  out.selection.backtested = true;
  if (automatic) {
    std::size_t best = 0;
    for (std::size_t k = 1; k < candidates.size(); ++k) {
      if (candidates[k].score < candidates[best].score) best = k;
    }
    out.selection.choice = candidates[best].name;
  }
  out.selection.candidates = std::move(candidates);
  return out;
}

}  // namespace detail

// --- params -----------------------------------------------------------------------------------

PERKREC_INLINE void CLVParams::validate() const {
  params::validate_fields(*this, "CLVParams");
  if (model == Model::bgbb && occasion != time_unit) {
    detail::raise<ConfigError>(
        "CLVParams: occasion must equal time_unit with model 'bgbb' (one purchase opportunity "
        "per time_unit; got occasion '",
        detail::clv_unit_name(occasion), "', time_unit '", detail::clv_unit_name(time_unit), "')");
  }
  // The thresholds' order: each later stage needs at least as many overdue cycles and at most
  // the earlier stage's quantile and p_alive cap.
  auto order = [](const char* field, double value, bool ok, const char* expected) {
    if (!ok) {
      detail::raise<ConfigError>("CLVParams: ", field, " must be ", expected, " (got ", value, ")");
    }
  };
  order("dormant_cycles", dormant_cycles, dormant_cycles >= at_risk_cycles, ">= at_risk_cycles");
  order("lost_cycles", lost_cycles, lost_cycles >= dormant_cycles, ">= dormant_cycles");
  order("dormant_quantile", dormant_quantile, dormant_quantile <= at_risk_quantile,
        "<= at_risk_quantile");
  order("lost_quantile", lost_quantile, lost_quantile <= dormant_quantile, "<= dormant_quantile");
  order("dormant_p_alive", dormant_p_alive, dormant_p_alive <= at_risk_p_alive,
        "<= at_risk_p_alive");
  order("lost_p_alive", lost_p_alive, lost_p_alive <= dormant_p_alive, "<= dormant_p_alive");
}

PERKREC_INLINE Json CLVParams::to_json() const {
  Json out = params::fields_to_json(*this);
  out["model"] = detail::clv_forecaster_name(*this);
  return out;
}

PERKREC_INLINE CLVParams CLVParams::from_json(const Json& j) {
  constexpr const char* kContext = "CLVParams::from_json";
  CLVParams p;
  JsonReader<ConfigError> r(j, "", kContext);
  std::string text;
  if (r.read("model", text)) {
    if (text == "auto") {
      p.forecaster = Forecaster::automatic;
    } else if (text == "naive") {
      p.forecaster = Forecaster::naive;
    } else if (text == "regression") {
      p.forecaster = Forecaster::regression;
    } else if (PurchaseModel::parse(text, p.model)) {
      p.forecaster = Forecaster::purchase;
    } else {
      r.fail(
          "model",
          "unknown model '" + text +
              "' (expected \"auto\", \"bgnbd\", \"mbgnbd\", \"paretonbd\", \"bgbb\", \"naive\" or "
              "\"regression\")");
    }
  }
  params::detail::read_into(r, p);
  r.finish();
  try {
    p.validate();
  } catch (const ConfigError& e) {
    detail::raise<ConfigError>(kContext, ": ", e.what());
  }
  return p;
}

// --- summaries --------------------------------------------------------------------------------

PERKREC_INLINE CLVSummary CLVSummary::from_arrays(Span<const double> x, Span<const double> t_x,
                                                  Span<const double> T,
                                                  Span<const double> monetary) {
  const std::size_t n = x.size();
  if (t_x.size() != n || T.size() != n || monetary.size() != n) {
    detail::raise<InputError>(
        "CLVSummary::from_arrays: x, t_x, T and monetary must have equal lengths (got ", n, ", ",
        t_x.size(), ", ", T.size(), ", ", monetary.size(), ")");
  }
  if (n >= static_cast<std::size_t>(std::numeric_limits<Index>::max())) {
    detail::raise<InputError>("CLVSummary::from_arrays: too many members (got ", n, ")");
  }
  for (std::size_t i = 0; i < n; ++i) {
    auto bad = [&](const char* field, double v, const char* expected) {
      detail::raise<InputError>("CLVSummary::from_arrays: ", field, " at position ", i, " must be ",
                                expected, " (got ", v, ")");
    };
    if (!(x[i] >= 0) || !std::isfinite(x[i])) bad("x", x[i], "finite and >= 0");
    if (!(T[i] > 0) || !std::isfinite(T[i])) bad("T", T[i], "finite and > 0");
    if (!(t_x[i] >= 0) || !(t_x[i] <= T[i])) bad("t_x", t_x[i], "in [0, T]");
    if (!(monetary[i] >= 0) || !std::isfinite(monetary[i]))
      bad("monetary", monetary[i], "finite and >= 0");
  }
  CLVSummary s;
  s.users.resize(n);
  std::iota(s.users.begin(), s.users.end(), Index{0});
  s.x.assign(x.begin(), x.end());
  s.t_x.assign(t_x.begin(), t_x.end());
  s.T.assign(T.begin(), T.end());
  s.monetary.assign(monetary.begin(), monetary.end());
  s.mean_order_value = s.monetary;
  s.first_order.assign(n, 0);
  return s;
}

PERKREC_INLINE CLVSummary summarize_purchases(const EventLog& log, Timestamp cut_time,
                                              CLVParams::TimeUnit time_unit,
                                              CLVParams::TimeUnit occasion, int num_threads) {
  if (cut_time <= kMinTimestamp || cut_time > kMaxTimestamp) {
    detail::raise<InputError>("summarize_purchases: cut_time out of range (got ", cut_time,
                              ", expected in (", kMinTimestamp, ", ", kMaxTimestamp, "])");
  }
  if (log.empty()) detail::raise<InputError>("summarize_purchases: log: the event log is empty");
  const int threads = resolve_num_threads(num_threads);
  const Index n_users = log.n_users();
  const Span<const std::uint8_t> types = log.types();
  const Span<const Timestamp> times = log.timestamps();
  const Span<const float> amounts = log.order_amounts();
  const auto ordered = static_cast<std::uint8_t>(EventType::ordered);
  // Pass 1: who has an order before the cut; the earliest order for the message.
  std::vector<std::uint8_t> has(static_cast<std::size_t>(n_users), 0);
  parallel_for(0, n_users, threads, [&](Offset u) {
    for (Offset e = log.user_begin(static_cast<Index>(u)); e < log.user_end(static_cast<Index>(u));
         ++e) {
      const auto k = static_cast<std::size_t>(e);
      if (times[k] >= cut_time) break;  // time-sorted within a member
      if (types[k] == ordered) {
        has[static_cast<std::size_t>(u)] = 1;
        break;
      }
    }
  });
  std::vector<Index> users;
  for (Index u = 0; u < n_users; ++u) {
    if (has[static_cast<std::size_t>(u)]) users.push_back(u);
  }
  if (users.empty()) {
    Timestamp earliest = kNoTime;
    for (std::size_t k = 0; k < types.size(); ++k) {
      if (types[k] == ordered && (earliest == kNoTime || times[k] < earliest)) earliest = times[k];
    }
    if (earliest == kNoTime) {
      detail::raise<InputError>("summarize_purchases: log: no 'ordered' events (got ", log.size(),
                                " events)");
    }
    detail::raise<InputError>(
        "summarize_purchases: cut_time: no 'ordered' event before the cut (got cut_time=", cut_time,
        ", earliest order at ", earliest, ")");
  }
  CLVSummary s;
  const std::size_t n = users.size();
  s.users = std::move(users);
  s.x.resize(n);
  s.t_x.resize(n);
  s.T.resize(n);
  s.monetary.resize(n);
  s.mean_order_value.resize(n);
  s.first_order.resize(n);
  const double unit_days = time_unit == CLVParams::TimeUnit::day ? 1.0 : 7.0;
  const std::int64_t occasion_days = occasion == CLVParams::TimeUnit::day ? 1 : 7;
  const std::int64_t end_day = floor_div(cut_time - 1, kSecondsPerDay);
  parallel_for(0, static_cast<Offset>(n), threads, [&](Offset row) {
    const auto i = static_cast<std::size_t>(row);
    const Index u = s.users[i];
    std::int64_t first_day = 0, current = -1, last_start_day = 0;
    double occasions = 0, repeat_value = 0, current_value = 0, all_value = 0, orders = 0;
    bool any = false;
    for (Offset e = log.user_begin(u); e < log.user_end(u); ++e) {
      const auto k = static_cast<std::size_t>(e);
      if (times[k] >= cut_time) break;
      if (types[k] != ordered) continue;
      const std::int64_t day = floor_div(times[k], kSecondsPerDay);
      const double amount = amounts.empty() ? 0.0 : static_cast<double>(amounts[k]);
      if (!any) {
        any = true;
        first_day = day;
        s.first_order[i] = times[k];
      }
      const std::int64_t block = (day - first_day) / occasion_days;
      if (block != current) {
        if (current > 0) repeat_value += current_value;
        current = block;
        current_value = 0;
        occasions += 1;
        last_start_day = day;
      }
      current_value += amount;
      all_value += amount;
      orders += 1;
    }
    if (current > 0) repeat_value += current_value;
    const double x = occasions - 1;
    s.x[i] = x;
    s.t_x[i] = static_cast<double>(last_start_day - first_day) / unit_days;
    s.T[i] = static_cast<double>(end_day - first_day) / unit_days;
    s.monetary[i] = x > 0 ? repeat_value / x : 0.0;
    s.mean_order_value[i] = orders > 0 ? all_value / orders : 0.0;
  });
  return s;
}

PERKREC_INLINE CLVHoldout calibration_holdout(const EventLog& log, Timestamp calibration_end,
                                              Timestamp observation_end,
                                              CLVParams::TimeUnit time_unit,
                                              CLVParams::TimeUnit occasion, int num_threads) {
  if (!(observation_end > calibration_end) || observation_end > kMaxTimestamp) {
    detail::raise<InputError>(
        "calibration_holdout: observation_end must be after calibration_end and <= ", kMaxTimestamp,
        " (got observation_end=", observation_end, ", calibration_end=", calibration_end, ")");
  }
  CLVHoldout out;
  out.calibration = summarize_purchases(log, calibration_end, time_unit, occasion, num_threads);
  const int threads = resolve_num_threads(num_threads);
  const Timestamp unit = CLVParams::unit_seconds(time_unit);
  out.duration = static_cast<double>(observation_end - calibration_end) / static_cast<double>(unit);
  const auto periods = static_cast<std::size_t>(std::ceil(out.duration));
  const std::size_t n = out.calibration.size();
  out.purchases.assign(n, 0.0);
  out.spend.assign(n, 0.0);
  const Span<const std::uint8_t> types = log.types();
  const Span<const Timestamp> times = log.timestamps();
  const Span<const float> amounts = log.order_amounts();
  const auto ordered = static_cast<std::uint8_t>(EventType::ordered);
  const std::int64_t occasion_days = occasion == CLVParams::TimeUnit::day ? 1 : 7;
  // Per-thread period counts (integers as doubles: the sum is exact, so any thread count agrees).
  std::vector<std::vector<double>> by_thread(static_cast<std::size_t>(threads),
                                             std::vector<double>(periods, 0.0));
  parallel_for(0, static_cast<Offset>(n), threads, [&](Offset row, int thread) {
    const auto i = static_cast<std::size_t>(row);
    const Index u = out.calibration.users[i];
    const std::int64_t first_day = floor_div(out.calibration.first_order[i], kSecondsPerDay);
    std::int64_t current = -1;
    auto& counts = by_thread[static_cast<std::size_t>(thread)];
    for (Offset e = log.user_begin(u); e < log.user_end(u); ++e) {
      const auto k = static_cast<std::size_t>(e);
      if (times[k] < calibration_end || types[k] != ordered) continue;
      if (times[k] >= observation_end) break;
      const std::int64_t block = (floor_div(times[k], kSecondsPerDay) - first_day) / occasion_days;
      if (block != current) {
        current = block;
        out.purchases[i] += 1;
        const auto period = static_cast<std::size_t>((times[k] - calibration_end) / unit);
        counts[std::min(period, periods - 1)] += 1;
      }
      out.spend[i] += amounts.empty() ? 0.0 : static_cast<double>(amounts[k]);
    }
  });
  out.period_purchases.assign(periods, 0.0);
  for (const auto& counts : by_thread) {
    for (std::size_t k = 0; k < periods; ++k) out.period_purchases[k] += counts[k];
  }
  return out;
}

// --- report -----------------------------------------------------------------------------------

PERKREC_INLINE Json CLVFitReport::to_json() const {
  const auto names = PurchaseModel::parameter_names(purchase.model.kind);
  Json j{{"model", PurchaseModel::name(purchase.model.kind)},
         {"forecast", selection.choice},
         {"selection", selection.to_json()},
         {"purchase", detail::fit_json(purchase.fit, {names.begin(), names.end()})},
         {"spend_fitted", spend_fitted},
         {"program_cycle", program_cycle},
         {"p_alive_thresholds", Json{{"at_risk", p_alive_thresholds[0]},
                                     {"dormant", p_alive_thresholds[1]},
                                     {"lost", p_alive_thresholds[2]}}}};
  for (std::size_t k = 0; k < names.size(); ++k) j[names[k]] = purchase.model.params[k];
  if (spend_fitted) {
    j["p"] = spend.model.p;
    j["q"] = spend.model.q;
    j["gamma"] = spend.model.gamma;
    j["spend"] = detail::fit_json(spend.fit, {"p", "q", "gamma"});
    j["frequency_spend_correlation"] = spend.frequency_spend_correlation;
  }
  if (regression.fitted) j["regression"] = regression.to_json();
  return j;
}

PERKREC_INLINE Json CLVSelection::to_json() const {
  Json c = Json::object();
  for (const auto& e : candidates) {
    c[e.name] = Json{{"mae_purchases", e.mae_purchases},
                     {"mae_spend", e.mae_spend},
                     {"score", e.score},
                     {"total_error_purchases", detail::finite_or_null(e.total_error_purchases)},
                     {"total_error_spend", detail::finite_or_null(e.total_error_spend)}};
  }
  return Json{{"choice", choice},
              {"backtested", backtested},
              {"note", note},
              {"horizon", horizon},
              {"backtest_cut", backtest_cut == kNoTime ? Json(nullptr) : Json(backtest_cut)},
              {"members", members},
              {"candidates", c}};
}

PERKREC_INLINE Json CLVRegression::to_json() const {
  auto named = [](const std::vector<double>& coef) {
    Json j = Json::object();
    j["intercept"] = coef.empty() ? 0.0 : coef[0];
    for (std::size_t k = 0; k < kCLVRegressionFeatures.size() && k + 1 < coef.size(); ++k) {
      j[kCLVRegressionFeatures[k]] = coef[k + 1];
    }
    return j;
  };
  Json j{{"horizon", horizon},
         {"link", active.empty() ? "log" : "log1p"},
         {"purchases", named(purchases)},
         {"spend", named(spend)},
         {"standardized", true}};
  if (!active.empty()) j["active"] = named(active);
  return j;
}

// --- model ------------------------------------------------------------------------------------

PERKREC_INLINE CLVModel::CLVModel(CLVParams params) : params_(params) { params_.validate(); }

PERKREC_INLINE void CLVModel::require_fitted(const char* method) const {
  if (!fitted_) detail::raise<InputError>("CLVModel::", method, ": the model is not fitted");
}

PERKREC_INLINE BGNBD CLVModel::bgnbd() const {
  require_fitted("bgnbd");
  const PurchaseModel& m = report_.purchase.model;
  if (m.kind != PurchaseModelKind::bgnbd) {
    detail::raise<InputError>("CLVModel::bgnbd: the purchase model is '",
                              PurchaseModel::name(m.kind), "', not 'bgnbd'");
  }
  return BGNBD{m.params[0], m.params[1], m.params[2], m.params[3]};
}

PERKREC_INLINE void CLVModel::fit(const EventLog& log, Timestamp cut_time,
                                  const Callbacks& callbacks) {
  CLVSummary s =
      summarize_purchases(log, cut_time, params_.time_unit, params_.occasion, params_.num_threads);
  fit_summary(std::move(s), log.n_users(), log.user_ids(), cut_time, callbacks, &log);
}

PERKREC_INLINE void CLVModel::fit(const CLVSummary& summary, const Callbacks& callbacks) {
  if (params_.forecaster == CLVParams::Forecaster::regression) {
    detail::raise<InputError>(
        "CLVModel::fit: model 'regression' needs an event log (fit(log, cut_time)); "
        "given summaries have no event times");
  }
  // Re-validate: the fields are public.
  CLVSummary s = CLVSummary::from_arrays(summary.x, summary.t_x, summary.T, summary.monetary);
  fit_summary(std::move(s), static_cast<Index>(s.size()), IdMap(), kNoTime, callbacks);
}

PERKREC_INLINE void CLVModel::fit_summary(CLVSummary s, Index n_users, IdMap user_ids,
                                          Timestamp cut_time, const Callbacks& callbacks,
                                          const EventLog* log) {
  ProgressReporter progress(callbacks, "CLVModel::fit", 4);
  MaximumLikelihoodOptions options;
  options.penalizer = params_.penalizer;
  options.max_iterations = params_.max_iterations;
  options.num_threads = params_.num_threads;
  const int threads = resolve_num_threads(params_.num_threads);
  // Members with T = 0 (first order on the cut's last day) carry no likelihood; they stay in
  // the summary and are predicted like any other member.
  bool any_positive = false;
  for (double t : s.T) any_positive = any_positive || t > 0;
  CLVFitReport report;
  // The forecast: a backtest inside the calibration period when the forecaster needs one.
  using Forecaster = CLVParams::Forecaster;
  PurchaseModelKind kind = params_.model;
  report.selection.choice = detail::clv_forecaster_name(params_);
  if (params_.forecaster == Forecaster::automatic) {
    report.selection.choice = PurchaseModel::name(params_.model);
    if (log == nullptr)
      report.selection.note = "fitted on given summaries: no event log for a backtest";
  }
  if (any_positive && log != nullptr &&
      (params_.forecaster == Forecaster::automatic ||
       params_.forecaster == Forecaster::regression)) {
    detail::CLVBacktestResult bt = detail::clv_backtest(*log, s, cut_time, params_, options);
    if (params_.forecaster == Forecaster::regression && !bt.regression.fitted) {
      detail::raise<InputError>("CLVModel::fit: cut_time: model 'regression' needs a backtest: ",
                                bt.selection.note);
    }
    kind = bt.purchase;
    report.selection = std::move(bt.selection);
    report.regression = std::move(bt.regression);
  }
  progress.advance(1);
  if (any_positive) {
    report.purchase.fit = PurchaseModel::maximum_likelihood(kind, s.x, s.t_x, s.T, options);
    const auto& fp = report.purchase.fit.params;
    report.purchase.model = PurchaseModel{kind, {fp[0], fp[1], fp[2], fp[3]}};
  } else {
    detail::raise<InputError>(
        "CLVModel::fit: cut_time: every member's first order is on the cut's last day (T = 0 for ",
        s.size(), " members); move the cut later");
  }
  progress.advance(1);
  std::size_t spenders = 0;
  for (std::size_t i = 0; i < s.size(); ++i) spenders += s.x[i] > 0 && s.monetary[i] > 0;
  if (spenders >= 2) {
    report.spend = GammaGamma::maximum_likelihood(s.x, s.monetary, options);
    report.spend_fitted = true;
  }
  progress.advance(1);
  // Lifecycle thresholds from the fitted members.
  std::vector<double> cycles;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s.x[i] > 0 && s.t_x[i] > 0) cycles.push_back(s.t_x[i] / s.x[i]);
  }
  double program_cycle = detail::quantile_of(cycles, 0.5);
  if (!(program_cycle > 0)) program_cycle = std::max(detail::quantile_of(s.T, 0.5), 1.0);
  report.program_cycle = program_cycle;
  const PurchaseModel bg = report.purchase.model;
  std::vector<double> alive(s.size());
  parallel_for(0, static_cast<Offset>(s.size()), threads, [&](Offset i) {
    const auto k = static_cast<std::size_t>(i);
    alive[k] = bg.p_alive(s.x[k], s.t_x[k], s.T[k]);
  });
  std::vector<double> non_new;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (!(s.x[i] == 0 && s.T[i] <= program_cycle)) non_new.push_back(alive[i]);
  }
  report.p_alive_thresholds = {
      std::min(params_.at_risk_p_alive, detail::quantile_of(non_new, params_.at_risk_quantile)),
      std::min(params_.dormant_p_alive, detail::quantile_of(non_new, params_.dormant_quantile)),
      std::min(params_.lost_p_alive, detail::quantile_of(non_new, params_.lost_quantile))};
  for (double& t : report.p_alive_thresholds) {
    if (!std::isfinite(t)) t = 0.0;
  }
  progress.advance(1);
  // Per-member rates of the naive and regression forecasts.
  std::vector<double> rate_purchases, rate_spend;
  if (report.selection.choice == "naive" || report.selection.choice == "regression") {
    rate_purchases.resize(s.size());
    rate_spend.resize(s.size());
    if (report.selection.choice == "naive") {
      CLVForecast rate = naive_forecast(s.x, s.T, s.mean_order_value, 1.0);  // x / T x 1 = x / T
      rate_purchases = std::move(rate.expected_purchases);
      rate_spend = std::move(rate.clv);
    } else {
      const CLVRegression& reg = report.regression;
      const std::vector<double> value =
          detail::clv_order_values(s, report.spend_fitted ? &report.spend : nullptr);
      const std::vector<double> f = detail::clv_features(*log, s, cut_time, reg.horizon,
                                                         CLVParams::unit_seconds(params_.time_unit),
                                                         report.purchase.model, value, threads);
      parallel_for(0, static_cast<Offset>(s.size()), threads, [&](Offset row) {
        const auto i = static_cast<std::size_t>(row);
        const double* r = f.data() + i * detail::kClvFeatures;
        rate_purchases[i] = detail::clv_regression_apply(r, reg, reg.purchases) / reg.horizon;
        rate_spend[i] = detail::clv_regression_apply(r, reg, reg.spend) / reg.horizon;
      });
    }
  }
  progress.advance(1);
  forecast_purchases_ = std::move(rate_purchases);
  forecast_spend_ = std::move(rate_spend);
  forecast_active_.clear();
  report_ = std::move(report);
  summary_ = std::move(s);
  n_users_ = n_users;
  user_ids_ = std::move(user_ids);
  cut_time_ = cut_time;
  fitted_ = true;
}

PERKREC_INLINE std::uint8_t CLVModel::stage_of(std::size_t row, double p_alive) const {
  const double x = summary_.x[row], t_x = summary_.t_x[row], T = summary_.T[row];
  const double C = report_.program_cycle;
  if (x == 0 && T <= C) return 0;
  const double cycle = x > 0 && t_x > 0 ? t_x / x : C;
  const double overdue = (T - t_x) / cycle;
  const std::uint8_t by_recency = overdue <= params_.at_risk_cycles   ? 1
                                  : overdue <= params_.dormant_cycles ? 2
                                  : overdue <= params_.lost_cycles    ? 3
                                                                      : 4;
  const auto& q = report_.p_alive_thresholds;
  const std::uint8_t by_alive = p_alive >= q[0] ? 1 : p_alive >= q[1] ? 2 : p_alive >= q[2] ? 3 : 4;
  return std::max(by_recency, by_alive);
}

PERKREC_INLINE void CLVModel::conditional(Span<const double> x, Span<const double> t_x,
                                          Span<const double> T, double horizon,
                                          Span<double> p_alive,
                                          Span<double> expected_purchases) const {
  require_fitted("conditional");
  const std::size_t n = x.size();
  if (t_x.size() != n || T.size() != n || p_alive.size() != n || expected_purchases.size() != n) {
    detail::raise<InputError>(
        "CLVModel::conditional: x, t_x, T and the outputs must have equal lengths (got ", n, ", ",
        t_x.size(), ", ", T.size(), ", ", p_alive.size(), ", ", expected_purchases.size(), ")");
  }
  if (!(horizon >= 0) || !std::isfinite(horizon)) {
    detail::raise<InputError>("CLVModel::conditional: horizon must be finite and >= 0 (got ",
                              horizon, ")");
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (!(x[i] >= 0) || !std::isfinite(x[i]) || !(t_x[i] >= 0) || !(T[i] >= t_x[i]) ||
        !std::isfinite(T[i])) {
      detail::raise<InputError>("CLVModel::conditional: member at position ", i,
                                " has an inconsistent summary (got x=", x[i], ", t_x=", t_x[i],
                                ", T=", T[i], ", expected finite x >= 0 and 0 <= t_x <= T)");
    }
  }
  const PurchaseModel m = report_.purchase.model;
  if (m.kind == PurchaseModelKind::bgbb) {
    for (std::size_t i = 0; i < n; ++i) {
      detail::check_bgbb_summary("CLVModel::conditional", i, std::floor(x[i]), std::floor(t_x[i]),
                                 std::floor(T[i]));
    }
  }
  parallel_for(0, static_cast<Offset>(n), resolve_num_threads(params_.num_threads),
               [&](Offset row) {
                 const auto i = static_cast<std::size_t>(row);
                 p_alive[i] = m.p_alive(x[i], t_x[i], T[i]);
                 expected_purchases[i] = m.expected_purchases(horizon, x[i], t_x[i], T[i]);
               });
}

PERKREC_INLINE std::vector<double> CLVModel::expected_purchases_by_period(Span<const double> x,
                                                                          Span<const double> t_x,
                                                                          Span<const double> T,
                                                                          int periods,
                                                                          double end) const {
  require_fitted("expected_purchases_by_period");
  if (periods < 0 || periods > 100000) {
    detail::raise<InputError>(
        "CLVModel::expected_purchases_by_period: periods must be in [0, 100000] (got ", periods,
        ")");
  }
  if (!(end >= 0) || !std::isfinite(end)) {
    detail::raise<InputError>(
        "CLVModel::expected_purchases_by_period: end must be finite and >= 0 (got ", end, ")");
  }
  std::vector<double> out(static_cast<std::size_t>(periods));
  std::vector<double> alive(x.size()), expected(x.size());
  double previous = 0.0;
  for (int k = 0; k < periods; ++k) {
    conditional(x, t_x, T, std::min(static_cast<double>(k + 1), end), alive, expected);
    // Cumulative sums as numpy sums them, differenced (np.diff of the cumulative curve).
    const double cumulative =
        detail::numpy_pairwise_sum(expected.data(), static_cast<Offset>(expected.size()));
    out[static_cast<std::size_t>(k)] = cumulative - previous;
    previous = cumulative;
  }
  return out;
}

PERKREC_INLINE CLVMemberHistory CLVModel::p_alive_history(const EventLog& log, Index user,
                                                          Span<const Timestamp> times) const {
  require_fitted("p_alive_history");
  if (user < 0 || user >= log.n_users()) {
    detail::raise<InputError>("CLVModel::p_alive_history: user ", user,
                              " is not a member of the log (expected in [0, ", log.n_users(), "))");
  }
  for (std::size_t i = 0; i < times.size(); ++i) {
    if (times[i] <= kMinTimestamp || times[i] > kMaxTimestamp) {
      detail::raise<InputError>("CLVModel::p_alive_history: times[", i, "] out of range (got ",
                                times[i], ", expected in (", kMinTimestamp, ", ", kMaxTimestamp,
                                "])");
    }
  }
  // The member's own events, and the time of their first order.
  std::vector<std::uint8_t> keep(static_cast<std::size_t>(log.size()), 0);
  Timestamp first_order = kNoTime;
  const auto ordered = static_cast<std::uint8_t>(EventType::ordered);
  for (Offset e = log.user_begin(user); e < log.user_end(user); ++e) {
    const auto k = static_cast<std::size_t>(e);
    keep[k] = 1;
    if (first_order == kNoTime && log.types()[k] == ordered) first_order = log.timestamps()[k];
  }
  CLVMemberHistory out;
  if (first_order == kNoTime) return out;
  const EventLog own = log.filter(keep, 1);
  for (std::size_t i = 0; i < times.size(); ++i) {
    if (times[i] <= first_order) continue;  // no order before this time yet
    const CLVSummary s = summarize_purchases(own, times[i], params_.time_unit, params_.occasion, 1);
    out.position.push_back(i);
    out.x.push_back(s.x[0]);
    out.t_x.push_back(s.t_x[0]);
    out.T.push_back(s.T[0]);
  }
  out.p_alive.resize(out.x.size());
  out.expected_purchases.resize(out.x.size());
  conditional(out.x, out.t_x, out.T, 1.0, out.p_alive, out.expected_purchases);
  return out;
}

PERKREC_INLINE void CLVModel::check_prediction_args(const char* method, double horizon,
                                                    double discount_rate, double margin) const {
  require_fitted(method);
  if (!(horizon > 0) || !std::isfinite(horizon) || horizon > 1e6) {
    detail::raise<InputError>("CLVModel::", method,
                              ": horizon must be finite and in (0, 1e6] time units (got ", horizon,
                              ")");
  }
  if (!(discount_rate >= 0) || !std::isfinite(discount_rate)) {
    detail::raise<InputError>("CLVModel::", method, ": discount_rate must be finite and >= 0 (got ",
                              discount_rate, ")");
  }
  if (!(margin >= 0) || !std::isfinite(margin)) {
    detail::raise<InputError>("CLVModel::", method, ": margin must be finite and >= 0 (got ",
                              margin, ")");
  }
}

PERKREC_INLINE CLVPrediction CLVModel::predict(double horizon, double discount_rate,
                                               double margin) const {
  check_prediction_args("predict", horizon, discount_rate, margin);
  return predict_rows(horizon, discount_rate, margin, params_.interval_draws);
}

PERKREC_INLINE CLVForecast naive_forecast(Span<const double> x, Span<const double> T,
                                          Span<const double> mean_order_value, double horizon) {
  const std::size_t n = x.size();
  if (!(std::isfinite(horizon) && horizon >= 0)) {
    detail::raise<InputError>("naive_forecast: horizon must be finite and >= 0 (got ", horizon,
                              ")");
  }
  struct Named {
    const char* name;
    Span<const double> values;
    bool non_negative;
  };
  for (const Named& a : {Named{"x", x, true}, Named{"T", T, true},
                         Named{"mean_order_value", mean_order_value, false}}) {
    if (a.values.size() != n) {
      detail::raise<InputError>("naive_forecast: ", a.name, " has ", a.values.size(),
                                " entries (expected ", n, ", as x)");
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (!std::isfinite(a.values[i]) || (a.non_negative && a.values[i] < 0)) {
        detail::raise<InputError>("naive_forecast: ", a.name, "[", i, "] must be finite",
                                  a.non_negative ? " and >= 0" : "", " (got ", a.values[i], ")");
      }
    }
  }
  CLVForecast out;
  out.expected_purchases.resize(n);
  out.clv.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    out.expected_purchases[i] = T[i] > 0 ? x[i] / T[i] * horizon : 0.0;
    out.clv[i] = out.expected_purchases[i] * mean_order_value[i];
  }
  return out;
}

PERKREC_INLINE std::vector<double> percentile_rank(Span<const double> values, const char* name) {
  const std::size_t n = values.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(values[i])) {
      detail::raise<InputError>("percentile_rank: ", name, "[", i, "] is not finite (got ",
                                values[i], ")");
    }
  }
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return values[a] < values[b]; });
  std::vector<double> out(n);
  // A run of equal values all get the position of its last member (ties share the highest rank).
  for (std::size_t start = 0; start < n;) {
    std::size_t end = start + 1;
    while (end < n && values[order[end]] == values[order[start]]) ++end;
    const double rank = static_cast<double>(end) / static_cast<double>(n);
    for (std::size_t k = start; k < end; ++k) out[order[k]] = rank;
    start = end;
  }
  return out;
}

PERKREC_INLINE int lifecycle_stage_code(const std::string& name, const char* field) {
  for (std::size_t k = 0; k < kLifecycleStages.size(); ++k) {
    if (name == kLifecycleStages[k]) return static_cast<int>(k);
  }
  detail::raise<InputError>(field, ": unknown lifecycle stage '", name,
                            "' (expected new, active, at_risk, dormant or lost)");
}

PERKREC_INLINE CLVMemberFields CLVModel::member_fields(double horizon, double discount_rate,
                                                       double margin) const {
  check_prediction_args("member_fields", horizon, discount_rate, margin);
  CLVPrediction p = predict_rows(horizon, discount_rate, margin, 0);
  CLVMemberFields out;
  out.clv_percentile = percentile_rank(p.clv, "clv");
  out.clv = std::move(p.clv);
  out.p_alive = std::move(p.p_alive);
  out.lifecycle_stage.assign(p.lifecycle_stage.begin(), p.lifecycle_stage.end());
  return out;
}

PERKREC_INLINE CLVMemberFields CLVModel::sample_fields(Span<const std::int64_t> users,
                                                       Span<const Timestamp> timestamps,
                                                       double horizon, double discount_rate,
                                                       double margin) const {
  check_prediction_args("sample_fields", horizon, discount_rate, margin);
  if (cut_time_ == kNoTime) {
    detail::raise<InputError>(
        "CLVModel::sample_fields: the model was fitted on given summaries (no cut time to check "
        "the samples against; fit it on an event log)");
  }
  if (users.size() != timestamps.size()) {
    detail::raise<InputError>(
        "CLVModel::sample_fields: users and timestamps differ in length (got ", users.size(),
        " and ", timestamps.size(), ")");
  }
  for (std::size_t i = 0; i < users.size(); ++i) {
    if (users[i] < -1 || users[i] >= static_cast<std::int64_t>(n_users_)) {
      detail::raise<InputError>("CLVModel::sample_fields: users[", i, "] is not a member of the ",
                                "fitted log (got ", users[i], ", expected -1 or [0, ", n_users_,
                                "))");
    }
    if (timestamps[i] < cut_time_) {
      detail::raise<InputError>("CLVModel::sample_fields: timestamps[", i, "] is before the fit's ",
                                "cut_time (got ", timestamps[i], " < ", cut_time_,
                                "): the fields would be read from its future; fit the model at ",
                                "or before the samples' times");
    }
  }
  const CLVMemberFields fitted = member_fields(horizon, discount_rate, margin);
  std::vector<std::int64_t> row_of(static_cast<std::size_t>(n_users_), -1);
  for (std::size_t r = 0; r < summary_.users.size(); ++r) {
    row_of[static_cast<std::size_t>(summary_.users[r])] = static_cast<std::int64_t>(r);
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CLVMemberFields out;
  const std::size_t n = users.size();
  out.clv.assign(n, nan);
  out.clv_percentile.assign(n, nan);
  out.p_alive.assign(n, nan);
  out.lifecycle_stage.assign(n, -1);
  for (std::size_t i = 0; i < n; ++i) {
    if (users[i] < 0) continue;
    const std::int64_t r = row_of[static_cast<std::size_t>(users[i])];
    if (r < 0) continue;
    const auto k = static_cast<std::size_t>(r);
    out.clv[i] = fitted.clv[k];
    out.clv_percentile[i] = fitted.clv_percentile[k];
    out.p_alive[i] = fitted.p_alive[k];
    out.lifecycle_stage[i] = fitted.lifecycle_stage[k];
  }
  return out;
}

PERKREC_INLINE CLVPrediction CLVModel::predict_rows(double horizon, double discount_rate,
                                                    double margin, int draws) const {
  const std::size_t n = summary_.size();
  const int threads = resolve_num_threads(params_.num_threads);
  const PurchaseModel bg = report_.purchase.model;
  const bool spend = report_.spend_fitted;
  const GammaGamma gg = report_.spend.model;
  // Discount factors of the units k = 1..ceil(horizon); with no discount one step.
  std::vector<double> ends, factors;
  if (discount_rate == 0) {
    ends.push_back(horizon);
    factors.push_back(1.0);
  } else {
    const auto units = static_cast<std::size_t>(std::ceil(horizon));
    for (std::size_t k = 1; k <= units; ++k) {
      ends.push_back(std::min(static_cast<double>(k), horizon));
      factors.push_back(std::pow(1.0 + discount_rate, -static_cast<double>(k)));
    }
  }
  Rng param_rng(params_.seed, 0xC1F);
  const std::vector<std::vector<double>> bg_draws =
      detail::parameter_draws(report_.purchase.fit, draws, param_rng);
  const std::vector<std::vector<double>> gg_draws =
      spend ? detail::parameter_draws(report_.spend.fit, draws, param_rng)
            : std::vector<std::vector<double>>();
  const double lower_level = (1.0 - params_.interval_level) / 2, upper_level = 1.0 - lower_level;
  // Naive and regression forecasts are constant rates: their discounted units.
  double rate_units = 0, before_end = 0;
  for (std::size_t k = 0; k < ends.size(); ++k) {
    rate_units += factors[k] * (ends[k] - before_end);
    before_end = ends[k];
  }
  const bool rate = forecast_is_rate();

  CLVPrediction out;
  out.p_alive.resize(n);
  out.expected_purchases.resize(n);
  out.expected_order_value.resize(n);
  out.clv.resize(n);
  out.clv_lower.assign(n, std::numeric_limits<double>::quiet_NaN());
  out.clv_upper.assign(n, std::numeric_limits<double>::quiet_NaN());
  out.lifecycle_stage.resize(n);
  parallel_for(0, static_cast<Offset>(n), threads, [&](Offset row, int) {
    const auto i = static_cast<std::size_t>(row);
    const double x = summary_.x[i], t_x = summary_.t_x[i], T = summary_.T[i],
                 m = summary_.monetary[i];
    const double alive = bg.p_alive(x, t_x, T);
    const double value = spend ? gg.expected_order_value(x, m) : summary_.mean_order_value[i];
    double discounted = 0, previous = 0;
    for (std::size_t k = 0; k < ends.size(); ++k) {
      const double cumulative = bg.expected_purchases(ends[k], x, t_x, T);
      discounted += factors[k] * (cumulative - previous);
      previous = cumulative;
    }
    // The interval of a rate forecast is the purchase model's scaled to its clv.
    double interval_scale = 1.0;
    out.p_alive[i] = alive;
    if (rate) {
      const bool zero =
          !forecast_active_.empty() &&
          detail::clv_median_zero(forecast_active_[i], horizon, report_.regression.horizon);
      const double rp = zero ? 0.0 : forecast_purchases_[i], rs = zero ? 0.0 : forecast_spend_[i];
      out.expected_purchases[i] = rp * horizon;
      out.expected_order_value[i] = rp > 0 ? rs / rp : value;
      out.clv[i] = margin * rs * rate_units;
      const double base = margin * value * discounted;
      interval_scale = base > 0 ? out.clv[i] / base : 0.0;
    } else {
      out.expected_purchases[i] = previous;
      out.expected_order_value[i] = value;
      out.clv[i] = margin * value * discounted;
    }
    out.lifecycle_stage[i] = stage_of(i, alive);
    if (draws > 0) {
      Rng rng(params_.seed, 1, static_cast<std::uint64_t>(summary_.users[i]));
      std::vector<double> samples(static_cast<std::size_t>(draws));
      for (int d = 0; d < draws; ++d) {
        const auto& th = bg_draws[static_cast<std::size_t>(d)];
        const PurchaseModel drawn{bg.kind, {th[0], th[1], th[2], th[3]}};
        const double alive_d = drawn.p_alive(x, t_x, T);
        const double purchases =
            detail::posterior_purchases_draw(bg.kind, th, x, T, ends, factors, rng);
        double value_d = summary_.mean_order_value[i];
        if (spend) {
          const auto& g = gg_draws[static_cast<std::size_t>(d)];
          const double nu = std::max(rng.gamma(g[0] * x + g[1]) / (g[2] + x * m), 1e-300);
          value_d = g[0] / nu;
        }
        samples[static_cast<std::size_t>(d)] =
            interval_scale * margin * value_d * alive_d * purchases;
      }
      out.clv_lower[i] = detail::quantile_of(samples, lower_level);
      out.clv_upper[i] = detail::quantile_of(std::move(samples), upper_level);
    }
  });
  return out;
}

// --- files ------------------------------------------------------------------------------------

PERKREC_INLINE void CLVModel::write(ModelWriter& w, const std::string& prefix) const {
  require_fitted("save");
  Json& c = content_section(w, prefix);
  c["params"] = params_.to_json();
  c["purchase_model"] = PurchaseModel::name(report_.purchase.model.kind);
  c["selection"] = report_.selection.to_json();
  if (report_.regression.fitted) {
    c["regression_horizon"] = report_.regression.horizon;
    // The Poisson (log-link) regression; files without this key hold the median-like log1p one.
    if (report_.regression.active.empty()) c["regression_link"] = "log";
    w.add(prefix + "regression", [&] {
      std::vector<double> v = report_.regression.mean;
      for (const auto* part :
           {&report_.regression.scale, &report_.regression.lo, &report_.regression.hi,
            &report_.regression.purchases, &report_.regression.spend, &report_.regression.active}) {
        v.insert(v.end(), part->begin(), part->end());
      }
      return v;
    }());
  }
  if (forecast_is_rate()) {
    w.add(prefix + "forecast_purchases", forecast_purchases_);
    w.add(prefix + "forecast_spend", forecast_spend_);
    if (!forecast_active_.empty()) w.add(prefix + "forecast_active", forecast_active_);
  }
  c["n_users"] = n_users_;
  c["n_members"] = summary_.size();
  c["cut_time"] = cut_time_ == kNoTime ? Json(nullptr) : Json(cut_time_);
  c["spend_fitted"] = report_.spend_fitted;
  c["frequency_spend_correlation"] =
      report_.spend_fitted ? report_.spend.frequency_spend_correlation : 0.0;
  c["program_cycle"] = report_.program_cycle;
  c["p_alive_thresholds"] =
      Json::array({report_.p_alive_thresholds[0], report_.p_alive_thresholds[1],
                   report_.p_alive_thresholds[2]});
  w.add(prefix + "users", summary_.users);
  w.add(prefix + "x", summary_.x);
  w.add(prefix + "t_x", summary_.t_x);
  w.add(prefix + "T", summary_.T);
  w.add(prefix + "monetary", summary_.monetary);
  w.add(prefix + "mean_order_value", summary_.mean_order_value);
  w.add(prefix + "first_order", summary_.first_order);
  w.add(prefix + "purchase_fit", detail::pack_fit(report_.purchase.fit, 4));
  if (report_.spend_fitted) w.add(prefix + "spend_fit", detail::pack_fit(report_.spend.fit, 3));
  user_ids_.write(w, prefix + "user_ids.");
}

PERKREC_INLINE CLVModel CLVModel::read(const ModelReader& r, const std::string& prefix) {
  const Json& c = content_section(r, prefix);
  JsonReader<ModelFormatError> jr(c, content_pointer(prefix), "CLVModel::read");
  Json params_json, cut_json, thresholds_json;
  Index n_users = 0;
  std::int64_t n_members = 0;
  bool spend_fitted = false;
  double correlation = 0, program_cycle = 0;
  jr.require("params", params_json);
  jr.require("n_users", n_users);
  jr.require("n_members", n_members);
  jr.require("cut_time", cut_json);
  jr.require("spend_fitted", spend_fitted);
  jr.require("frequency_spend_correlation", correlation);
  jr.require("program_cycle", program_cycle);
  jr.require("p_alive_thresholds", thresholds_json);
  // Added with the forecasters; older files have none of them (a purchase model forecast).
  std::string purchase_name, choice;
  Json selection_json;
  double regression_horizon = 0;
  const bool has_kind = jr.read("purchase_model", purchase_name);
  const bool has_selection = jr.read("selection", selection_json);
  const bool has_regression = jr.read("regression_horizon", regression_horizon);
  std::string link = "log1p";
  jr.read("regression_link", link);
  if (link != "log" && link != "log1p") r.bad_content("regression_link: expected \"log\"");
  const bool median_like = link == "log1p";
  if (prefix.empty()) jr.raw("user_ids.");
  jr.finish();
  const CLVParams params = read_params<CLVParams>(r, params_json);
  PurchaseModelKind kind = params.model;
  if (has_kind && !PurchaseModel::parse(purchase_name, kind))
    r.bad_content("purchase_model: unknown model");
  CLVSelection selection;
  selection.choice = detail::clv_forecaster_name(params);
  if (has_selection) {
    if (!selection_json.is_object()) r.bad_content("selection must be an object");
    JsonReader<ModelFormatError> sr(selection_json, content_pointer(prefix) + "/selection",
                                    "CLVModel::read");
    Json cut_value, candidates;
    sr.require("choice", selection.choice);
    sr.require("backtested", selection.backtested);
    sr.require("note", selection.note);
    sr.require("horizon", selection.horizon);
    sr.require("backtest_cut", cut_value);
    sr.require("members", selection.members);
    sr.require("candidates", candidates);
    sr.finish();
    if (cut_value.is_number_integer()) selection.backtest_cut = cut_value.get<Timestamp>();
    if (!candidates.is_object()) r.bad_content("selection/candidates must be an object");
    for (auto it = candidates.begin(); it != candidates.end(); ++it) {
      JsonReader<ModelFormatError> cr(it.value(), content_pointer(prefix) + "/selection/candidates",
                                      "CLVModel::read");
      CLVBacktestError e;
      e.name = it.key();
      cr.require("mae_purchases", e.mae_purchases);
      cr.require("mae_spend", e.mae_spend);
      cr.require("score", e.score);
      // Added with the Poisson regression (null when the actuals summed to 0).
      for (auto [key, field] : {std::pair{"total_error_purchases", &e.total_error_purchases},
                                std::pair{"total_error_spend", &e.total_error_spend}}) {
        Json v;
        if (cr.read(key, v) && v.is_number()) *field = v.get<double>();
      }
      cr.finish();
      selection.candidates.push_back(e);
    }
  }
  const bool rate_forecast = selection.choice == "naive" || selection.choice == "regression";
  if (!rate_forecast) {
    PurchaseModelKind chosen{};
    if (!PurchaseModel::parse(selection.choice, chosen))
      r.bad_content("selection/choice: unknown forecast");
  }
  if (n_users < 0 || n_members < 0 || n_members > n_users) r.bad_content("bad n_users / n_members");
  r.check_count("n_members", n_members);
  Timestamp cut_time = kNoTime;
  if (!cut_json.is_null()) {
    if (!cut_json.is_number_integer()) r.bad_content("cut_time must be an integer or null");
    cut_time = cut_json.get<Timestamp>();
    if (cut_time <= kMinTimestamp || cut_time > kMaxTimestamp)
      r.bad_content("cut_time out of range");
  }
  if (!(correlation >= -1 && correlation <= 1))
    r.bad_content("frequency_spend_correlation out of [-1, 1]");
  if (!(program_cycle > 0) || !std::isfinite(program_cycle))
    r.bad_content("program_cycle must be finite and > 0");
  if (!thresholds_json.is_array() || thresholds_json.size() != 3)
    r.bad_content("p_alive_thresholds: expected 3 numbers");
  std::array<double, 3> thresholds{};
  for (std::size_t k = 0; k < 3; ++k) {
    if (!thresholds_json[k].is_number()) r.bad_content("p_alive_thresholds: expected numbers");
    thresholds[k] = thresholds_json[k].get<double>();
    if (!(thresholds[k] >= 0 && thresholds[k] <= 1))
      r.bad_content("p_alive_thresholds: expected values in [0, 1]");
  }
  CLVSummary s;
  s.users = r.vector<Index>(prefix + "users", {n_members});
  s.x = r.vector<double>(prefix + "x", {n_members});
  s.t_x = r.vector<double>(prefix + "t_x", {n_members});
  s.T = r.vector<double>(prefix + "T", {n_members});
  s.monetary = r.vector<double>(prefix + "monetary", {n_members});
  s.mean_order_value = r.vector<double>(prefix + "mean_order_value", {n_members});
  s.first_order = r.vector<Timestamp>(prefix + "first_order", {n_members});
  for (std::size_t i = 0; i < s.users.size(); ++i) {
    if (s.users[i] < 0 || s.users[i] >= n_users || (i > 0 && s.users[i] <= s.users[i - 1])) {
      r.invalid(detail::concat("users: entry ", i, " out of range or not increasing"));
    }
    const bool ok = s.x[i] >= 0 && std::isfinite(s.x[i]) && s.t_x[i] >= 0 && s.t_x[i] <= s.T[i] &&
                    std::isfinite(s.T[i]) && s.monetary[i] >= 0 && std::isfinite(s.monetary[i]) &&
                    s.mean_order_value[i] >= 0 && std::isfinite(s.mean_order_value[i]);
    const bool discrete_ok =
        kind != PurchaseModelKind::bgbb ||
        detail::bgbb_summary_ok(std::floor(s.x[i]), std::floor(s.t_x[i]), std::floor(s.T[i]));
    if (!ok || !discrete_ok) r.invalid(detail::concat("summary of member ", i, " is inconsistent"));
  }
  CLVModel model(params);
  model.report_.purchase.fit =
      detail::unpack_fit(r.vector<double>(prefix + "purchase_fit",
                                          {static_cast<std::int64_t>(detail::packed_fit_size(4))}),
                         4, r, "purchase_fit");
  const auto& bp = model.report_.purchase.fit.params;
  model.report_.purchase.model = PurchaseModel{kind, {bp[0], bp[1], bp[2], bp[3]}};
  model.report_.selection = std::move(selection);
  if (has_regression) {
    const std::size_t p = detail::kClvFeatures;
    const std::vector<double> v = r.vector<double>(
        prefix + "regression", {static_cast<std::int64_t>(median_like ? 7 * p + 3 : 6 * p + 2)});
    for (double e : v) {
      if (!std::isfinite(e)) r.invalid("regression: coefficients must be finite");
    }
    if (!(regression_horizon > 0) || !std::isfinite(regression_horizon))
      r.bad_content("regression_horizon must be > 0");
    CLVRegression& reg = model.report_.regression;
    reg.fitted = true;
    reg.horizon = regression_horizon;
    auto part = [&](std::size_t from, std::size_t to) {
      return std::vector<double>(v.begin() + static_cast<std::ptrdiff_t>(from),
                                 v.begin() + static_cast<std::ptrdiff_t>(to));
    };
    reg.mean = part(0, p);
    reg.scale = part(p, 2 * p);
    reg.lo = part(2 * p, 3 * p);
    reg.hi = part(3 * p, 4 * p);
    reg.purchases = part(4 * p, 5 * p + 1);
    reg.spend = part(5 * p + 1, 6 * p + 2);
    if (median_like) reg.active = part(6 * p + 2, 7 * p + 3);
    for (std::size_t j = 0; j < p; ++j) {
      if (!(reg.scale[j] >= 0) || !(reg.lo[j] <= reg.hi[j]))
        r.invalid("regression: bad feature scaling");
    }
  }
  if (rate_forecast) {
    model.forecast_purchases_ = r.vector<double>(prefix + "forecast_purchases", {n_members});
    model.forecast_spend_ = r.vector<double>(prefix + "forecast_spend", {n_members});
    if (model.report_.selection.choice == "regression" && median_like) {
      model.forecast_active_ = r.vector<double>(prefix + "forecast_active", {n_members});
      for (double a : model.forecast_active_) {
        if (!(a >= 0 && a <= 1)) r.invalid("forecast_active: expected probabilities in [0, 1]");
      }
    }
    for (std::size_t i = 0; i < model.forecast_purchases_.size(); ++i) {
      if (!(model.forecast_purchases_[i] >= 0) || !std::isfinite(model.forecast_purchases_[i]) ||
          !(model.forecast_spend_[i] >= 0) || !std::isfinite(model.forecast_spend_[i])) {
        r.invalid(detail::concat("forecast of member ", i, " must be finite and >= 0"));
      }
    }
  }
  model.report_.spend_fitted = spend_fitted;
  if (spend_fitted) {
    model.report_.spend.fit = detail::unpack_fit(
        r.vector<double>(prefix + "spend_fit",
                         {static_cast<std::int64_t>(detail::packed_fit_size(3))}),
        3, r, "spend_fit");
    const auto& gp = model.report_.spend.fit.params;
    model.report_.spend.model = GammaGamma{gp[0], gp[1], gp[2]};
    model.report_.spend.frequency_spend_correlation = correlation;
  }
  model.report_.program_cycle = program_cycle;
  model.report_.p_alive_thresholds = thresholds;
  IdMap ids = IdMap::read(r, prefix + "user_ids.");
  if (ids.size() != 0 && ids.size() != n_users) r.invalid("user_ids: size differs from n_users");
  model.summary_ = std::move(s);
  model.n_users_ = n_users;
  model.user_ids_ = std::move(ids);
  model.cut_time_ = cut_time;
  model.fitted_ = true;
  return model;
}

}  // namespace perkrec
