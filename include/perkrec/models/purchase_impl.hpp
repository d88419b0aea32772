// Definitions for purchase.hpp.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <tuple>

#include <Eigen/Dense>

#include "perkrec/core/error.hpp"
#include "perkrec/core/math.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/models/purchase.hpp"

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
  const double log_ratio =
      std::log(a) - std::log(b + x - 1) + (r + x) * (std::log(alpha + T) - std::log(alpha + t_x));
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
    detail::raise<InputError>("BGNBD::fit: x, t_x and T must have equal lengths (got ", x.size(),
                              ", ", t_x.size(), ", ", T.size(), ")");
  }
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!(x[i] >= 0) || !(t_x[i] >= 0) || !(T[i] >= t_x[i]) || !std::isfinite(T[i])) {
      detail::raise<InputError>("BGNBD::fit: member at position ", i,
                                " has inconsistent summary (got x=", x[i], ", t_x=", t_x[i],
                                ", T=", T[i], ", expected x >= 0 and 0 <= t_x <= T)");
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

PERKREC_INLINE void MaximumLikelihoodOptions::validate() const {
  if (!(penalizer >= 0) || !std::isfinite(penalizer)) {
    detail::raise<ConfigError>("MaximumLikelihoodOptions: penalizer must be finite and >= 0 (got ",
                               penalizer, ")");
  }
  if (max_iterations <= 0) {
    detail::raise<ConfigError>("MaximumLikelihoodOptions: max_iterations must be > 0 (got ",
                               max_iterations, ")");
  }
  resolve_num_threads(num_threads);
}

namespace detail {

// Digamma for x > 0: recurrence up to x >= 6, then the asymptotic series.
inline double digamma(double x) {
  double result = 0;
  while (x < 6) {
    result -= 1 / x;
    x += 1;
  }
  const double f = 1 / (x * x);
  return result + std::log(x) - 0.5 / x -
         f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f * (1.0 / 132)))));
}

inline constexpr Offset kMinParallelChunks = 8;  // 32,768 rows

// Fixed chunks summed in a fixed order: the same total for any thread count. Each chunk calls
// its own copy of `term`, so a term may keep a cache in mutable captures.
template <class F>
double chunked_sum(Offset n, int threads, const F& term) {
  constexpr Offset kChunk = 4096;
  const Offset chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<std::size_t>(chunks), 0.0);
  // Small sums run on the calling thread: a parallel region per evaluation costs more than the
  // work below a few chunks, and far more on a loaded machine. Same chunks, same total.
  parallel_for(0, chunks, chunks < kMinParallelChunks ? 1 : threads, [&](Offset c) {
    double s = 0;
    F local = term;
    const Offset end = std::min(n, (c + 1) * kChunk);
    for (Offset i = c * kChunk; i < end; ++i) s += local(i);
    partial[static_cast<std::size_t>(c)] = s;
  });
  return std::accumulate(partial.begin(), partial.end(), 0.0);
}

// Same for K sums at once: term(i, acc) adds row i into acc[0..K).
template <std::size_t K, class F>
std::array<double, K> chunked_sums(Offset n, int threads, const F& term) {
  constexpr Offset kChunk = 4096;
  const Offset chunks = (n + kChunk - 1) / kChunk;
  std::vector<std::array<double, K>> partial(static_cast<std::size_t>(chunks));
  parallel_for(0, chunks, chunks < kMinParallelChunks ? 1 : threads, [&](Offset c) {
    std::array<double, K> acc{};
    F local = term;
    const Offset end = std::min(n, (c + 1) * kChunk);
    for (Offset i = c * kChunk; i < end; ++i) local(i, acc);
    partial[static_cast<std::size_t>(c)] = acc;
  });
  std::array<double, K> total{};
  for (const auto& a : partial) {
    for (std::size_t j = 0; j < K; ++j) total[j] += a[j];
  }
  return total;
}

// Log-parameters live in (-kLogBound, kLogBound) through v = B tanh(u / B): smooth, unbounded u
// for Nelder-Mead, and a parameter running to 0 or infinity stops instead of overflowing.
inline constexpr double kLogBound = 23.0;
inline constexpr double kBoundaryLog = 16.0;  // |ln theta| beyond this: reported at a boundary

// Nelder-Mead runs on `start_nll` over `start_members` (the whole data, or a systematic sample
// of it for large data: the simplex needs hundreds of evaluations, the Newton polish that
// follows on the whole data a few dozen), then Newton on `total_nll`.
// `total_gradient` (optional) returns the total -ln L and fills its gradient over v: the Newton
// steps then take the gradient from it and the Hessian from central differences of it (2k
// passes over the data instead of 2k^2 + 1).
using GradientFunction = std::function<double(const std::vector<double>&, std::vector<double>&)>;

PERKREC_INLINE MaximumLikelihoodFit minimize_log_parameters_from(
    const std::function<double(const std::vector<double>&)>& total_nll, double members,
    const std::function<double(const std::vector<double>&)>& start_nll, double start_members,
    std::vector<double> start, const MaximumLikelihoodOptions& options,
    const GradientFunction& total_gradient = {}) {
  const std::size_t k = start.size();
  const double n = std::max(1.0, members);
  int evaluations = 0;
  auto objective_v = [&](const std::vector<double>& v) {
    ++evaluations;
    const double t = total_nll(v);
    if (!std::isfinite(t)) return std::numeric_limits<double>::infinity();
    double pen = 0;
    for (double x : v) pen += x * x;
    return t / n + options.penalizer * pen;
  };
  auto start_objective_v = [&](const std::vector<double>& v) {
    ++evaluations;
    const double t = start_nll(v);
    if (!std::isfinite(t)) return std::numeric_limits<double>::infinity();
    double pen = 0;
    for (double x : v) pen += x * x;
    return t / std::max(1.0, start_members) + options.penalizer * pen;
  };
  auto to_v = [&](const std::vector<double>& u) {
    std::vector<double> v(k);
    for (std::size_t j = 0; j < k; ++j) v[j] = kLogBound * std::tanh(u[j] / kLogBound);
    return v;
  };
  auto objective_u = [&](const std::vector<double>& u) { return start_objective_v(to_v(u)); };
  std::vector<double> u = start;
  for (std::size_t j = 0; j < k; ++j) {
    const double c = std::clamp(start[j], -0.9 * kLogBound, 0.9 * kLogBound);
    u[j] = kLogBound * std::atanh(c / kLogBound);
  }
  u = nelder_mead(objective_u, u, 0.5, options.max_iterations, 1e-12);
  u = nelder_mead(objective_u, u, 0.2, options.max_iterations / 2 + 1, 1e-12);
  std::vector<double> v = to_v(u);

  // Newton polish on the free log-parameters with central finite differences.
  std::vector<std::uint8_t> boundary(k, 0);
  std::vector<std::size_t> free_index;
  for (std::size_t j = 0; j < k; ++j) {
    boundary[j] = std::fabs(v[j]) > kBoundaryLog;
    if (!boundary[j]) free_index.push_back(j);
  }
  const auto m = static_cast<Eigen::Index>(free_index.size());
  constexpr double h = 1e-4;
  auto derivatives = [&](const std::function<double(const std::vector<double>&)>& f,
                         const std::vector<double>& at, Eigen::VectorXd& g, Eigen::MatrixXd& H) {
    g.setZero(m);
    H.setZero(m, m);
    if (total_gradient) {
      // Objective = total / n + penalizer |v|^2.
      std::vector<double> full(k);
      auto gradient_at = [&](const std::vector<double>& point, Eigen::VectorXd& out) {
        ++evaluations;
        const double t = total_gradient(point, full);
        out.resize(m);
        for (Eigen::Index i = 0; i < m; ++i) {
          const std::size_t j = free_index[static_cast<std::size_t>(i)];
          out(i) = full[j] / n + 2.0 * options.penalizer * point[j];
        }
        double pen = 0;
        for (double x : point) pen += x * x;
        return std::isfinite(t) ? t / n + options.penalizer * pen
                                : std::numeric_limits<double>::infinity();
      };
      const double f0 = gradient_at(at, g);
      Eigen::VectorXd gp, gq;
      for (Eigen::Index i = 0; i < m; ++i) {
        std::vector<double> p = at, q = at;
        p[free_index[static_cast<std::size_t>(i)]] += h;
        q[free_index[static_cast<std::size_t>(i)]] -= h;
        gradient_at(p, gp);
        gradient_at(q, gq);
        H.col(i) = (gp - gq) / (2 * h);
      }
      const Eigen::MatrixXd symmetric = (H + H.transpose()) / 2;
      H = symmetric;
      return f0;
    }
    const double f0 = f(at);
    for (Eigen::Index i = 0; i < m; ++i) {
      std::vector<double> p = at, q = at;
      p[free_index[static_cast<std::size_t>(i)]] += h;
      q[free_index[static_cast<std::size_t>(i)]] -= h;
      const double fp = f(p), fq = f(q);
      g(i) = (fp - fq) / (2 * h);
      H(i, i) = (fp - 2 * f0 + fq) / (h * h);
      for (Eigen::Index j = 0; j < i; ++j) {
        std::vector<double> pp = at, pq = at, qp = at, qq = at;
        const std::size_t a = free_index[static_cast<std::size_t>(i)],
                          b = free_index[static_cast<std::size_t>(j)];
        pp[a] += h, pp[b] += h;
        pq[a] += h, pq[b] -= h;
        qp[a] -= h, qp[b] += h;
        qq[a] -= h, qq[b] -= h;
        H(i, j) = H(j, i) = (f(pp) - f(pq) - f(qp) + f(qq)) / (4 * h * h);
      }
    }
    return f0;
  };
  Eigen::VectorXd g;
  Eigen::MatrixXd H;
  double gradient_norm = std::numeric_limits<double>::infinity();
  if (m > 0) {
    bool fresh = false;  // g and H belong to the current v
    for (int it = 0; it < 30; ++it) {
      const double f0 = derivatives(objective_v, v, g, H);
      fresh = true;
      gradient_norm = g.norm();
      if (!std::isfinite(f0) || !std::isfinite(gradient_norm) || gradient_norm < 1e-7) break;
      // Levenberg damping until the step is a descent direction that lowers the objective.
      double lambda = 0;
      bool improved = false;
      for (int tries = 0; tries < 8 && !improved; ++tries) {
        Eigen::MatrixXd A = H;
        A.diagonal().array() += lambda;
        Eigen::LDLT<Eigen::MatrixXd> ldlt(A);
        Eigen::VectorXd step = -ldlt.solve(g);
        if (ldlt.info() == Eigen::Success && (ldlt.vectorD().array() > 0).all() &&
            step.allFinite()) {
          for (double scale = 1.0; scale > 1e-4 && !improved; scale *= 0.5) {
            std::vector<double> trial = v;
            for (Eigen::Index i = 0; i < m; ++i) {
              const std::size_t j = free_index[static_cast<std::size_t>(i)];
              trial[j] =
                  std::clamp(v[j] + scale * std::clamp(step(i), -2.0, 2.0), -kLogBound, kLogBound);
            }
            if (objective_v(trial) < f0) {
              v = trial;
              improved = true;
              fresh = false;
            }
          }
        }
        lambda =
            lambda == 0 ? 1e-6 * std::max(1.0, H.diagonal().cwiseAbs().maxCoeff()) : lambda * 10;
      }
      if (!improved) break;
    }
    if (!fresh) derivatives(objective_v, v, g, H);
    gradient_norm = g.norm();
  } else {
    gradient_norm = 0;
  }

  MaximumLikelihoodFit fit;
  fit.params.resize(k);
  for (std::size_t j = 0; j < k; ++j) {
    fit.params[j] = std::exp(v[j]);
    boundary[j] = std::fabs(v[j]) > kBoundaryLog;
  }
  fit.at_boundary = boundary;
  fit.log_likelihood = -total_nll(v);
  fit.members = static_cast<Offset>(members);
  fit.gradient_norm = gradient_norm;
  fit.converged = std::isfinite(gradient_norm) && gradient_norm < 1e-4;
  // Standard errors: inverse observed information of the unpenalized total over the free
  // log-parameters (boundary ones held fixed), then the delta method.
  fit.standard_errors.assign(k, std::numeric_limits<double>::quiet_NaN());
  fit.log_covariance.assign(k * k, 0.0);
  if (m > 0) {
    // The Hessian of the total -ln L from the objective's: n (H - 2 penalizer I).
    H.diagonal().array() -= 2.0 * options.penalizer;
    H *= n;
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(H);
    if (eig.info() == Eigen::Success &&
        eig.eigenvalues().minCoeff() > 1e-10 * std::max(1.0, eig.eigenvalues().maxCoeff())) {
      const Eigen::MatrixXd cov = eig.eigenvectors() *
                                  eig.eigenvalues().cwiseInverse().asDiagonal() *
                                  eig.eigenvectors().transpose();
      for (Eigen::Index i = 0; i < m; ++i) {
        const std::size_t j = free_index[static_cast<std::size_t>(i)];
        if (!fit.at_boundary[j]) fit.standard_errors[j] = fit.params[j] * std::sqrt(cov(i, i));
        for (Eigen::Index l = 0; l < m; ++l) {
          fit.log_covariance[j * k + free_index[static_cast<std::size_t>(l)]] = cov(i, l);
        }
      }
    }
  }
  fit.evaluations = evaluations;
  return fit;
}

PERKREC_INLINE MaximumLikelihoodFit minimize_log_parameters(
    const std::function<double(const std::vector<double>&)>& total_nll, double members,
    std::vector<double> start, const MaximumLikelihoodOptions& options) {
  return minimize_log_parameters_from(total_nll, members, total_nll, members, std::move(start),
                                      options);
}

// Rows kept for the Nelder-Mead start: all up to kStartRows, else every stride-th.
inline constexpr std::size_t kStartRows = 20000;

// Distinct rows of (keys...) with their counts, in sorted order (deterministic).
struct WeightedTriples {
  std::vector<double> x, t_x, T, weight;
  // t_x and T as indices into the sorted distinct times, so that ln(alpha + time) is computed
  // once per distinct time and evaluation (summaries on a day grid have a few hundred).
  std::vector<std::uint32_t> t_x_index, T_index;
  std::vector<double> times;
  void index_times() {
    times = t_x;
    times.insert(times.end(), T.begin(), T.end());
    std::sort(times.begin(), times.end());
    times.erase(std::unique(times.begin(), times.end()), times.end());
    auto at = [&](double v) {
      return static_cast<std::uint32_t>(std::lower_bound(times.begin(), times.end(), v) -
                                        times.begin());
    };
    t_x_index.resize(x.size());
    T_index.resize(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      t_x_index[i] = at(t_x[i]);
      T_index[i] = at(T[i]);
    }
  }
};

PERKREC_INLINE WeightedTriples distinct_triples(Span<const double> x, Span<const double> t_x,
                                                Span<const double> T) {
  std::vector<std::uint32_t> order;
  order.reserve(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (T[i] > 0) order.push_back(static_cast<std::uint32_t>(i));
  }
  std::sort(order.begin(), order.end(), [&](std::uint32_t i, std::uint32_t j) {
    return std::tie(x[i], t_x[i], T[i]) < std::tie(x[j], t_x[j], T[j]);
  });
  WeightedTriples out;
  for (std::size_t k = 0; k < order.size(); ++k) {
    const std::uint32_t i = order[k];
    if (!out.x.empty() && out.x.back() == x[i] && out.t_x.back() == t_x[i] &&
        out.T.back() == T[i]) {
      out.weight.back() += 1;
    } else {
      out.x.push_back(x[i]);
      out.t_x.push_back(t_x[i]);
      out.T.push_back(T[i]);
      out.weight.push_back(1);
    }
  }
  return out;
}

}  // namespace detail

namespace detail {

// Validated purchase summaries as distinct weighted triples, with a systematic sample of them
// for the Nelder-Mead start on large data.
struct PurchaseData {
  WeightedTriples all, sample;
  double members = 0, sample_weight = 0, mean_rate = 0;
  bool sampled = false;
};

PERKREC_INLINE PurchaseData purchase_data(const char* who, Span<const double> x,
                                          Span<const double> t_x, Span<const double> T,
                                          const MaximumLikelihoodOptions& options) {
  options.validate();
  if (x.size() != t_x.size() || x.size() != T.size()) {
    raise<InputError>(who, ": x, t_x and T must have equal lengths (got ", x.size(), ", ",
                      t_x.size(), ", ", T.size(), ")");
  }
  if (x.size() >= (std::size_t{1} << 32)) {
    raise<InputError>(who, ": at most 2^32 - 1 members (got ", x.size(), ")");
  }
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!(x[i] >= 0) || !std::isfinite(x[i]) || !(t_x[i] >= 0) || !(T[i] >= t_x[i]) ||
        !std::isfinite(T[i])) {
      raise<InputError>(who, ": member at position ", i,
                        " has an inconsistent summary (got x=", x[i], ", t_x=", t_x[i],
                        ", T=", T[i], ", expected finite x >= 0 and 0 <= t_x <= T)");
    }
  }
  PurchaseData out;
  out.all = distinct_triples(x, t_x, T);
  const WeightedTriples& d = out.all;
  for (std::size_t i = 0; i < d.x.size(); ++i) {
    out.members += d.weight[i];
    out.mean_rate += d.weight[i] * d.x[i] / d.T[i];
  }
  if (out.members <= 0)
    raise<InputError>(who, ": no member with T > 0 (got ", x.size(), " members)");
  out.mean_rate = std::max(1e-3, out.mean_rate / out.members);
  out.sample_weight = out.members;
  const std::size_t stride = d.x.size() / kStartRows + 1;
  out.sampled = stride > 1;
  if (out.sampled) {
    out.sample_weight = 0;
    for (std::size_t i = 0; i < d.x.size(); i += stride) {
      out.sample.x.push_back(d.x[i]);
      out.sample.t_x.push_back(d.t_x[i]);
      out.sample.T.push_back(d.T[i]);
      out.sample.weight.push_back(d.weight[i]);
      out.sample_weight += d.weight[i];
    }
    out.sample.index_times();
  }
  out.all.index_times();
  return out;
}

// BG/NBD (modified = false) and MBG/NBD (true) differ only in the dropout chances: x or x + 1.
// With m = modified ? 1 : 0 a member's likelihood is
//   G(r+x) alpha^r / G(r) x B(a, b+x+m) / B(a, b)
//   x [ (alpha+T)^-(r+x) + [x > 0 or m] a/(b+x-1+m) (alpha+t_x)^-(r+x) ].
PERKREC_INLINE MaximumLikelihoodFit fit_beta_geometric(const char* who, bool modified,
                                                       Span<const double> x, Span<const double> t_x,
                                                       Span<const double> T,
                                                       const MaximumLikelihoodOptions& options) {
  const PurchaseData data = purchase_data(who, x, t_x, T, options);
  const WeightedTriples& d = data.all;
  const double members = data.members;
  const double shift = modified ? 1.0 : 0.0;
  const int threads = resolve_num_threads(options.num_threads);
  // The likelihood over a set of weighted triples (sorted by x: the x-only terms are computed
  // once per run of equal x).
  auto nll_of = [threads, shift, modified](const WeightedTriples& t, double total_weight) {
    return [&t, total_weight, threads, shift, modified](const std::vector<double>& v) {
      const BGNBD m{std::exp(v[0]), std::exp(v[1]), std::exp(v[2]), std::exp(v[3])};
      const double base =
          -log_gamma(m.r) + m.r * std::log(m.alpha) + log_gamma(m.a + m.b) - log_gamma(m.b);
      const double log_a = std::log(m.a);
      std::vector<double> log_time(t.times.size());
      for (std::size_t j = 0; j < log_time.size(); ++j)
        log_time[j] = std::log(m.alpha + t.times[j]);
      const auto n = static_cast<Offset>(t.x.size());
      const double ll =
          chunked_sum(n, threads, [&, last_x = -1.0, lead = 0.0, log_b = 0.0](Offset i) mutable {
            const auto k = static_cast<std::size_t>(i);
            const double xx = t.x[k];
            const bool dropout_term = xx > 0 || modified;
            if (xx != last_x) {
              last_x = xx;
              lead = log_gamma(m.r + xx) + log_gamma(m.b + xx + shift) -
                     log_gamma(m.a + m.b + xx + shift);
              log_b = dropout_term ? std::log(m.b + xx - 1 + shift) : 0.0;
            }
            const double a3 = -(m.r + xx) * log_time[t.T_index[k]];
            double tail = a3;
            if (dropout_term) {
              const double a4 = log_a - log_b - (m.r + xx) * log_time[t.t_x_index[k]];
              const double top = std::max(a3, a4);
              tail = top + std::log1p(std::exp(std::min(a3, a4) - top));
            }
            return t.weight[k] * (lead + tail);
          });
      const double total = ll + total_weight * base;
      return std::isfinite(total) ? -total : std::numeric_limits<double>::infinity();
    };
  };
  const auto total_nll = nll_of(d, members);
  const auto start_nll = data.sampled ? nll_of(data.sample, data.sample_weight) : total_nll;
  // -ln L and its gradient over the log-parameters in one pass (w = the share of the "dropped
  // out after the last purchase" term in the member's likelihood).
  const GradientFunction total_gradient = [&](const std::vector<double>& v,
                                              std::vector<double>& grad) {
    const BGNBD m{std::exp(v[0]), std::exp(v[1]), std::exp(v[2]), std::exp(v[3])};
    std::vector<double> log_time(d.times.size()), inv_time(d.times.size());
    for (std::size_t j = 0; j < d.times.size(); ++j) {
      log_time[j] = std::log(m.alpha + d.times[j]);
      inv_time[j] = 1.0 / (m.alpha + d.times[j]);
    }
    const double log_a = std::log(m.a);
    struct PerX {
      double x = -1, lead = 0, log_b = 0, inv_b = 0, psi_r = 0, psi_abx = 0, psi_bx = 0;
    };
    const auto sums = chunked_sums<5>(
        static_cast<Offset>(d.x.size()), threads,
        [&, c = PerX()](Offset i, std::array<double, 5>& acc) mutable {
          const auto k = static_cast<std::size_t>(i);
          const double xx = d.x[k];
          const bool dropout_term = xx > 0 || modified;
          if (xx != c.x) {
            c.x = xx;
            c.lead = log_gamma(m.r + xx) + log_gamma(m.b + xx + shift) -
                     log_gamma(m.a + m.b + xx + shift);
            c.log_b = dropout_term ? std::log(m.b + xx - 1 + shift) : 0.0;
            c.inv_b = dropout_term ? 1.0 / (m.b + xx - 1 + shift) : 0.0;
            c.psi_r = digamma(m.r + xx);
            c.psi_abx = digamma(m.a + m.b + xx + shift);
            c.psi_bx = digamma(m.b + xx + shift);
          }
          const double lt = log_time[d.T_index[k]], ltx = log_time[d.t_x_index[k]];
          const double a3 = -(m.r + xx) * lt;
          double tail = a3, w = 0;
          if (dropout_term) {
            const double a4 = log_a - c.log_b - (m.r + xx) * ltx;
            const double top = std::max(a3, a4);
            tail = top + std::log1p(std::exp(std::min(a3, a4) - top));
            w = std::exp(a4 - tail);
          }
          const double wt = d.weight[k];
          acc[0] += wt * (c.lead + tail);
          acc[1] += wt * (c.psi_r - (1 - w) * lt - w * ltx);
          acc[2] +=
              wt * (m.r + xx) * ((1 - w) * inv_time[d.T_index[k]] + w * inv_time[d.t_x_index[k]]);
          acc[3] += wt * (w / m.a - c.psi_abx);
          acc[4] += wt * (c.psi_bx - c.psi_abx - w * c.inv_b);
        });
    const double W = members;
    const double ll = sums[0] + W * (-log_gamma(m.r) + m.r * std::log(m.alpha) +
                                     log_gamma(m.a + m.b) - log_gamma(m.b));
    const double dr = sums[1] + W * (-digamma(m.r) + std::log(m.alpha));
    const double dalpha = W * m.r / m.alpha - sums[2];
    const double psi_ab = digamma(m.a + m.b);
    const double da = sums[3] + W * psi_ab;
    const double db = sums[4] + W * (psi_ab - digamma(m.b));
    grad = {-m.r * dr, -m.alpha * dalpha, -m.a * da, -m.b * db};
    return std::isfinite(ll) ? -ll : std::numeric_limits<double>::infinity();
  };
  return minimize_log_parameters_from(total_nll, members, start_nll, data.sample_weight,
                                      {0.0, std::log(1.0 / data.mean_rate), 0.0, std::log(3.0)},
                                      options, total_gradient);
}

// 2F1(1, b; c; z) for 0 <= z < 1 by its series (positive terms with ratio (b + k) / (c + k) z).
inline double hypergeometric_2f1_one(double b, double c, double z) {
  double term = 1.0, sum = 1.0;
  for (int k = 0; k < 100000; ++k) {
    term *= (b + k) / (c + k) * z;
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  return sum;
}

// ln of (r + s + x) int_t^inf (alpha+u)^-(r+x) (beta+u)^-(s+1) du by the series (z <= 0.9).
PERKREC_INLINE double pareto_log_upper(const ParetoNBD& m, double x, double t) {
  const double rx = m.r + x;
  if (m.alpha >= m.beta) {
    const double z = (m.alpha - m.beta) / (m.alpha + t);
    return -rx * std::log(m.alpha + t) - m.s * std::log(m.beta + t) +
           std::log(hypergeometric_2f1_one(rx, rx + m.s + 1, z));
  }
  const double z = (m.beta - m.alpha) / (m.beta + t);
  return (1 - rx) * std::log(m.alpha + t) - (m.s + 1) * std::log(m.beta + t) +
         std::log(hypergeometric_2f1_one(m.s + 1, rx + m.s + 1, z));
}

// ln int_{t_x}^{T} (alpha+u)^-(r+x) (beta+u)^-(s+1) du by composite 8-point Gauss-Legendre.
// The integrand f decreases, fastest at the left: ln f falls at rate k(u) = (r+x)/(alpha+u) +
// (s+1)/(beta+u). Each panel spans at most one e-fold (1 / k at its left end) and half the
// distance to the nearer singularity (-min(alpha, beta)), so f is smooth on it at the scale of
// the rule (error near machine precision); the sum stops once f has fallen below e^-40 of its
// start. At most a few hundred panels, whatever the parameters.
PERKREC_INLINE double pareto_log_integral_quadrature(const ParetoNBD& m, double x, double t_x,
                                                     double T) {
  static constexpr double kNodes[4] = {0.1834346424956498, 0.5255324099163290, 0.7966664774136267,
                                       0.9602898564975363};
  static constexpr double kWeights[4] = {0.3626837833783620, 0.3137066458778873, 0.2223810344533745,
                                         0.1012285362903763};
  const double rx = m.r + x, s1 = m.s + 1, low = std::min(m.alpha, m.beta);
  auto log_f = [&](double u) { return -rx * std::log(m.alpha + u) - s1 * std::log(m.beta + u); };
  const double ref = log_f(t_x);
  double sum = 0, u = t_x;
  for (int panel = 0; panel < 10000 && u < T; ++panel) {
    const double rate = rx / (m.alpha + u) + s1 / (m.beta + u);
    const double width = std::min({1.0 / rate, 0.5 * (low + u), T - u});
    const double mid = u + 0.5 * width;
    double part = 0;
    for (int k = 0; k < 4; ++k) {
      const double off = 0.5 * width * kNodes[k];
      part += kWeights[k] * (std::exp(log_f(mid - off) - ref) + std::exp(log_f(mid + off) - ref));
    }
    sum += 0.5 * width * part;
    u += width;
    if (log_f(u) - ref < -40) break;
  }
  return ref + std::log(sum);
}

// The Pareto/NBD's bracket: ln[(alpha+T)^-(r+x) (beta+T)^-s + s J] (see the file comment);
// `log_first` receives the log of its first term.
inline double pareto_log_bracket(const ParetoNBD& m, double x, double t_x, double T,
                                 double& log_first) {
  const double rx = m.r + x;
  log_first = -rx * std::log(m.alpha + T) - m.s * std::log(m.beta + T);
  if (!(T > t_x)) return log_first;
  const double z = std::fabs(m.alpha - m.beta) / (std::max(m.alpha, m.beta) + t_x);
  double log_j;
  if (z <= 0.9) {
    const double upper_tx = pareto_log_upper(m, x, t_x), upper_T = pareto_log_upper(m, x, T);
    if (!(upper_T < upper_tx)) return log_first;
    log_j = upper_tx + std::log1p(-std::exp(upper_T - upper_tx)) - std::log(rx + m.s);
  } else {
    log_j = pareto_log_integral_quadrature(m, x, t_x, T);
  }
  const double second = std::log(m.s) + log_j;
  const double top = std::max(log_first, second);
  return top + std::log1p(std::exp(std::min(log_first, second) - top));
}

}  // namespace detail

PERKREC_INLINE BGNBDFit BGNBD::maximum_likelihood(Span<const double> x, Span<const double> t_x,
                                                  Span<const double> T,
                                                  const MaximumLikelihoodOptions& options) {
  BGNBDFit out;
  out.fit = detail::fit_beta_geometric("BGNBD::maximum_likelihood", false, x, t_x, T, options);
  out.model = BGNBD{out.fit.params[0], out.fit.params[1], out.fit.params[2], out.fit.params[3]};
  return out;
}

PERKREC_INLINE double MBGNBD::log_likelihood(double x, double t_x, double T) const {
  const double a1 = log_gamma(r + x) - log_gamma(r) + r * std::log(alpha);
  const double a2 =
      log_gamma(a + b) + log_gamma(b + x + 1) - log_gamma(b) - log_gamma(a + b + x + 1);
  const double a3 = -(r + x) * std::log(alpha + T);
  const double a4 = std::log(a) - std::log(b + x) - (r + x) * std::log(alpha + t_x);
  const double m = std::max(a3, a4);
  return a1 + a2 + m + std::log(std::exp(a3 - m) + std::exp(a4 - m));
}

PERKREC_INLINE double MBGNBD::p_alive(double x, double t_x, double T) const {
  const double log_ratio =
      std::log(a) - std::log(b + x) + (r + x) * (std::log(alpha + T) - std::log(alpha + t_x));
  return 1.0 / (1.0 + std::exp(std::min(700.0, log_ratio)));
}

PERKREC_INLINE double MBGNBD::expected_purchases(double t, double x, double t_x, double T) const {
  return detail::beta_geometric_expected_purchases(r, alpha, a, b, true, t, x, t_x, T);
}

PERKREC_INLINE MBGNBDFit MBGNBD::maximum_likelihood(Span<const double> x, Span<const double> t_x,
                                                    Span<const double> T,
                                                    const MaximumLikelihoodOptions& options) {
  MBGNBDFit out;
  out.fit = detail::fit_beta_geometric("MBGNBD::maximum_likelihood", true, x, t_x, T, options);
  out.model = MBGNBD{out.fit.params[0], out.fit.params[1], out.fit.params[2], out.fit.params[3]};
  return out;
}

PERKREC_INLINE double ParetoNBD::log_likelihood(double x, double t_x, double T) const {
  double first = 0;
  return log_gamma(r + x) - log_gamma(r) + r * std::log(alpha) + s * std::log(beta) +
         detail::pareto_log_bracket(*this, x, t_x, T, first);
}

PERKREC_INLINE double ParetoNBD::p_alive(double x, double t_x, double T) const {
  double first = 0;
  const double bracket = detail::pareto_log_bracket(*this, x, t_x, T, first);
  return std::min(1.0, std::exp(first - bracket));
}

PERKREC_INLINE double ParetoNBD::expected_purchases(double t, double x, double t_x,
                                                    double T) const {
  if (!(t > 0)) return 0.0;
  // (r+x)/(alpha+T) (beta+T)/(s-1) [1 - ((beta+T)/(beta+T+t))^(s-1)] p_alive, smooth at s = 1.
  const double L = std::log1p(t / (beta + T));
  const double g = std::fabs(s - 1) < 1e-10 ? L : -std::expm1(-(s - 1) * L) / (s - 1);
  const double e = p_alive(x, t_x, T) * (r + x) / (alpha + T) * (beta + T) * g;
  return std::isfinite(e) && e >= 0 ? e : 0.0;
}

PERKREC_INLINE ParetoNBDFit ParetoNBD::maximum_likelihood(Span<const double> x,
                                                          Span<const double> t_x,
                                                          Span<const double> T,
                                                          const MaximumLikelihoodOptions& options) {
  const detail::PurchaseData data =
      detail::purchase_data("ParetoNBD::maximum_likelihood", x, t_x, T, options);
  const int threads = resolve_num_threads(options.num_threads);
  auto nll_of = [threads](const detail::WeightedTriples& t, double total_weight) {
    return [&t, total_weight, threads](const std::vector<double>& v) {
      const ParetoNBD m{std::exp(v[0]), std::exp(v[1]), std::exp(v[2]), std::exp(v[3])};
      const double base = -log_gamma(m.r) + m.r * std::log(m.alpha) + m.s * std::log(m.beta);
      const auto n = static_cast<Offset>(t.x.size());
      const double ll =
          detail::chunked_sum(n, threads, [&, last_x = -1.0, lead = 0.0](Offset i) mutable {
            const auto k = static_cast<std::size_t>(i);
            if (t.x[k] != last_x) {
              last_x = t.x[k];
              lead = log_gamma(m.r + last_x);
            }
            double first = 0;
            return t.weight[k] *
                   (lead + detail::pareto_log_bracket(m, t.x[k], t.t_x[k], t.T[k], first));
          });
      const double total = ll + total_weight * base;
      return std::isfinite(total) ? -total : std::numeric_limits<double>::infinity();
    };
  };
  const auto total_nll = nll_of(data.all, data.members);
  const auto start_nll = data.sampled ? nll_of(data.sample, data.sample_weight) : total_nll;
  double mean_T = 0;
  for (std::size_t i = 0; i < data.all.x.size(); ++i) mean_T += data.all.weight[i] * data.all.T[i];
  mean_T /= data.members;
  ParetoNBDFit out;
  out.fit = detail::minimize_log_parameters_from(
      total_nll, data.members, start_nll, data.sample_weight,
      {0.0, std::log(1.0 / data.mean_rate), 0.0, std::log(std::max(mean_T, 1e-3))}, options);
  out.model = ParetoNBD{out.fit.params[0], out.fit.params[1], out.fit.params[2], out.fit.params[3]};
  return out;
}

namespace detail {
inline double log_beta(double a, double b) {
  return log_gamma(a) + log_gamma(b) - log_gamma(a + b);
}

// log of the BG/BB's "alive through opportunity n" term and of the whole likelihood (before the
// constant -ln B(alpha, beta) - ln B(gamma, delta)).
inline void bgbb_log_terms(const BGBB& m, double x, double t_x, double n, double& log_alive,
                           double& log_total) {
  log_alive = log_beta(m.alpha + x, m.beta + n - x) + log_beta(m.gamma, m.delta + n);
  double top = log_alive, sum = 1.0;
  const double lead = log_beta(m.alpha + x, m.beta + t_x - x);
  // Terms i = 0 .. n - t_x - 1 by their ratios (no log-gamma per term).
  double term = lead + log_beta(m.gamma + 1, m.delta + t_x);
  for (double i = 0; i < n - t_x; ++i) {
    if (term > top) {
      sum = sum * std::exp(top - term) + 1.0;
      top = term;
    } else {
      sum += std::exp(term - top);
    }
    // B(a, b + 1) / B(a, b) = b / (a + b)
    const double bb = m.beta + t_x - x + i, dd = m.delta + t_x + i;
    term += std::log(bb / (m.alpha + x + bb)) + std::log(dd / (m.gamma + 1 + dd));
  }
  log_total = top + std::log(sum);
}

// The BG/BB's likelihood costs O(n - t_x): opportunities are capped at a million.
inline constexpr double kMaxOpportunities = 1e6;

PERKREC_INLINE bool bgbb_summary_ok(double x, double t_x, double n) {
  return x <= t_x && t_x <= n && !(x > 0 && t_x < 1) && n <= kMaxOpportunities;
}

PERKREC_INLINE void check_bgbb_summary(const char* who, std::size_t i, double x, double t_x,
                                       double n) {
  if (!bgbb_summary_ok(x, t_x, n)) {
    raise<InputError>(who, ": member at position ", i,
                      " has an inconsistent discrete summary (got x=", x, ", t_x=", t_x, ", n=", n,
                      " after flooring; expected x <= t_x <= n <= 1e6 and t_x >= 1 when x > 0)");
  }
}
}  // namespace detail

PERKREC_INLINE double BGBB::log_likelihood(double x, double t_x, double n) const {
  double alive = 0, total = 0;
  detail::bgbb_log_terms(*this, std::floor(x), std::floor(t_x), std::floor(n), alive, total);
  return total - detail::log_beta(alpha, beta) - detail::log_beta(gamma, delta);
}

PERKREC_INLINE double BGBB::p_alive(double x, double t_x, double n) const {
  const double nn = std::floor(n);
  double alive = 0, total = 0;
  detail::bgbb_log_terms(*this, std::floor(x), std::floor(t_x), nn, alive, total);
  // Alive at n + 1: survive one more death chance, B(gamma, delta+n+1) / B(gamma, delta+n).
  return std::min(1.0, std::exp(alive - total) * (delta + nn) / (gamma + delta + nn));
}

PERKREC_INLINE double BGBB::expected_purchases(double t, double x, double t_x, double n) const {
  if (!(t > 0)) return 0.0;
  const double xx = std::floor(x), nn = std::floor(n);
  double alive = 0, total = 0;
  detail::bgbb_log_terms(*this, xx, std::floor(t_x), nn, alive, total);
  // Fader, Hardie and Shang eq. 13: given alive through n with posterior p ~ Beta(alpha+x,
  // beta+n-x), theta ~ Beta(gamma, delta+n): E = E[p] sum_{k=1..t} E[(1-theta)^k]
  //   = (alpha+x)/(alpha+beta+n) (delta+n)/(gamma-1) [1 - G(gamma+delta+n) G(1+delta+n+t) /
  //     (G(1+delta+n) G(gamma+delta+n+t))]  (the bracket over gamma - 1 is smooth at gamma = 1).
  const double mean_p = (alpha + xx) / (alpha + beta + nn);
  const double g = gamma - 1;
  const double log_ratio = log_gamma(gamma + delta + nn) + log_gamma(1 + delta + nn + t) -
                           log_gamma(1 + delta + nn) - log_gamma(gamma + delta + nn + t);
  double bracket;
  if (std::fabs(g) < 1e-8) {
    // d/dg of -exp(log_ratio) at g = 0: digamma difference.
    bracket = -(detail::digamma(1 + delta + nn) - detail::digamma(1 + delta + nn + t));
  } else {
    bracket = -std::expm1(log_ratio) / g;
  }
  const double e = std::exp(alive - total) * mean_p * (delta + nn) * bracket;
  return std::isfinite(e) && e >= 0 ? e : 0.0;
}

PERKREC_INLINE BGBBFit BGBB::maximum_likelihood(Span<const double> x, Span<const double> t_x,
                                                Span<const double> n,
                                                const MaximumLikelihoodOptions& options) {
  const char* who = "BGBB::maximum_likelihood";
  if (x.size() != t_x.size() || x.size() != n.size()) {
    detail::raise<InputError>(who, ": x, t_x and n must have equal lengths (got ", x.size(), ", ",
                              t_x.size(), ", ", n.size(), ")");
  }
  std::vector<double> fx(x.size()), ft(x.size()), fn(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    fx[i] = std::floor(x[i]);
    ft[i] = std::floor(t_x[i]);
    fn[i] = std::isfinite(n[i]) ? std::floor(n[i]) : n[i];
    if (std::isfinite(fx[i]) && std::isfinite(ft[i]) && std::isfinite(fn[i]) && fn[i] > 0) {
      detail::check_bgbb_summary(who, i, fx[i], ft[i], fn[i]);
    }
  }
  const detail::PurchaseData data = detail::purchase_data(who, fx, ft, fn, options);
  const int threads = resolve_num_threads(options.num_threads);
  auto nll_of = [threads](const detail::WeightedTriples& t, double total_weight) {
    return [&t, total_weight, threads](const std::vector<double>& v) {
      const BGBB m{std::exp(v[0]), std::exp(v[1]), std::exp(v[2]), std::exp(v[3])};
      const double base = -detail::log_beta(m.alpha, m.beta) - detail::log_beta(m.gamma, m.delta);
      const double ll =
          detail::chunked_sum(static_cast<Offset>(t.x.size()), threads, [&](Offset i) {
            const auto k = static_cast<std::size_t>(i);
            double alive = 0, total = 0;
            detail::bgbb_log_terms(m, t.x[k], t.t_x[k], t.T[k], alive, total);
            return t.weight[k] * total;
          });
      const double all = ll + total_weight * base;
      return std::isfinite(all) ? -all : std::numeric_limits<double>::infinity();
    };
  };
  const auto total_nll = nll_of(data.all, data.members);
  const auto start_nll = data.sampled ? nll_of(data.sample, data.sample_weight) : total_nll;
  BGBBFit out;
  out.fit = detail::minimize_log_parameters_from(total_nll, data.members, start_nll,
                                                 data.sample_weight, {0.0, 0.0, 0.0, 0.0}, options);
  out.model = BGBB{out.fit.params[0], out.fit.params[1], out.fit.params[2], out.fit.params[3]};
  return out;
}

namespace detail {
// Calls f with the concrete model that `m` holds.
template <class F>
double visit_purchase_model(const PurchaseModel& m, F&& f) {
  const auto& p = m.params;
  switch (m.kind) {
    case PurchaseModelKind::mbgnbd:
      return f(MBGNBD{p[0], p[1], p[2], p[3]});
    case PurchaseModelKind::paretonbd:
      return f(ParetoNBD{p[0], p[1], p[2], p[3]});
    case PurchaseModelKind::bgbb:
      return f(BGBB{p[0], p[1], p[2], p[3]});
    default:
      return f(BGNBD{p[0], p[1], p[2], p[3]});
  }
}
}  // namespace detail

PERKREC_INLINE double PurchaseModel::log_likelihood(double x, double t_x, double T) const {
  return detail::visit_purchase_model(*this,
                                      [&](const auto& m) { return m.log_likelihood(x, t_x, T); });
}

PERKREC_INLINE double PurchaseModel::p_alive(double x, double t_x, double T) const {
  return detail::visit_purchase_model(*this, [&](const auto& m) { return m.p_alive(x, t_x, T); });
}

PERKREC_INLINE double PurchaseModel::expected_purchases(double t, double x, double t_x,
                                                        double T) const {
  // BGNBD::expected_purchases clamps a for the preference model; here the exact expectation.
  if (kind == PurchaseModelKind::bgnbd) {
    return detail::beta_geometric_expected_purchases(params[0], params[1], params[2], params[3],
                                                     false, t, x, t_x, T);
  }
  return detail::visit_purchase_model(
      *this, [&](const auto& m) { return m.expected_purchases(t, x, t_x, T); });
}

PERKREC_INLINE const char* PurchaseModel::name(PurchaseModelKind kind) {
  switch (kind) {
    case PurchaseModelKind::mbgnbd:
      return "mbgnbd";
    case PurchaseModelKind::paretonbd:
      return "paretonbd";
    case PurchaseModelKind::bgbb:
      return "bgbb";
    default:
      return "bgnbd";
  }
}

PERKREC_INLINE bool PurchaseModel::parse(const std::string& name, PurchaseModelKind& out) {
  for (auto k : {PurchaseModelKind::bgnbd, PurchaseModelKind::mbgnbd, PurchaseModelKind::paretonbd,
                 PurchaseModelKind::bgbb}) {
    if (name == PurchaseModel::name(k)) {
      out = k;
      return true;
    }
  }
  return false;
}

PERKREC_INLINE std::array<const char*, 4> PurchaseModel::parameter_names(PurchaseModelKind kind) {
  if (kind == PurchaseModelKind::paretonbd) return {"r", "alpha", "s", "beta"};
  if (kind == PurchaseModelKind::bgbb) return {"alpha", "beta", "gamma", "delta"};
  return {"r", "alpha", "a", "b"};
}

PERKREC_INLINE MaximumLikelihoodFit PurchaseModel::maximum_likelihood(
    PurchaseModelKind kind, Span<const double> x, Span<const double> t_x, Span<const double> T,
    const MaximumLikelihoodOptions& options) {
  switch (kind) {
    case PurchaseModelKind::mbgnbd:
      return MBGNBD::maximum_likelihood(x, t_x, T, options).fit;
    case PurchaseModelKind::paretonbd:
      return ParetoNBD::maximum_likelihood(x, t_x, T, options).fit;
    case PurchaseModelKind::bgbb:
      return BGBB::maximum_likelihood(x, t_x, T, options).fit;
    default:
      return BGNBD::maximum_likelihood(x, t_x, T, options).fit;
  }
}
PERKREC_INLINE double GammaGamma::log_likelihood(double x, double m) const {
  const double px = p * x;
  return log_gamma(px + q) - log_gamma(px) - log_gamma(q) + q * std::log(gamma) +
         (px - 1) * std::log(m) + px * std::log(x) - (px + q) * std::log(x * m + gamma);
}

PERKREC_INLINE double GammaGamma::expected_order_value(double x, double m) const {
  const double qq = std::max(q, 1.0 + 1e-6);
  if (!(x > 0)) return p * gamma / (qq - 1);
  return p * (gamma + x * m) / (p * x + qq - 1);
}

PERKREC_INLINE GammaGammaFit GammaGamma::maximum_likelihood(
    Span<const double> x, Span<const double> m, const MaximumLikelihoodOptions& options) {
  options.validate();
  if (x.size() != m.size()) {
    detail::raise<InputError>(
        "GammaGamma::maximum_likelihood: x and m must have equal lengths (got ", x.size(), ", ",
        m.size(), ")");
  }
  std::vector<double> xs, ms;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!(x[i] >= 0) || !std::isfinite(x[i]) || !(m[i] >= 0) || !std::isfinite(m[i])) {
      detail::raise<InputError>("GammaGamma::maximum_likelihood: member at position ", i,
                                " has a bad summary (got x=", x[i], ", m=", m[i],
                                ", expected finite values >= 0)");
    }
    if (x[i] > 0 && m[i] > 0) {
      xs.push_back(x[i]);
      ms.push_back(m[i]);
    }
  }
  if (xs.size() < 2) {
    detail::raise<InputError>(
        "GammaGamma::maximum_likelihood: needs at least two members with x > 0 and m > 0 (got ",
        xs.size(), ")");
  }
  const double members = static_cast<double>(xs.size());
  double mean_m = 0, mean_x = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    mean_m += ms[i];
    mean_x += xs[i];
  }
  mean_m /= members;
  mean_x /= members;
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    sxy += (xs[i] - mean_x) * (ms[i] - mean_m);
    sxx += (xs[i] - mean_x) * (xs[i] - mean_x);
    syy += (ms[i] - mean_m) * (ms[i] - mean_m);
  }
  const int threads = resolve_num_threads(options.num_threads);
  // Sorted by x, the x-only terms are computed once per run of equal x; sum (px - 1) ln m and
  // sum px ln x are fixed sums, so one logarithm per member remains.
  std::vector<std::size_t> order(xs.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t i, std::size_t j) { return xs[i] < xs[j]; });
  std::vector<double> sx(xs.size()), sm(xs.size());
  for (std::size_t i = 0; i < order.size(); ++i) {
    sx[i] = xs[order[i]];
    sm[i] = ms[order[i]];
  }
  auto nll_of = [threads](const std::vector<double>& x_, const std::vector<double>& m_) {
    double sum_x_log_m = 0, sum_log_m = 0, sum_x_log_x = 0;
    for (std::size_t i = 0; i < x_.size(); ++i) {
      sum_x_log_m += x_[i] * std::log(m_[i]);
      sum_log_m += std::log(m_[i]);
      sum_x_log_x += x_[i] * std::log(x_[i]);
    }
    const double count = static_cast<double>(x_.size());
    return [&x_, &m_, threads, sum_x_log_m, sum_log_m, sum_x_log_x,
            count](const std::vector<double>& v) {
      const GammaGamma g{std::exp(v[0]), std::exp(v[1]), std::exp(v[2])};
      const auto n = static_cast<Offset>(x_.size());
      const double ll =
          detail::chunked_sum(n, threads, [&, last_x = -1.0, lead = 0.0](Offset i) mutable {
            const auto k = static_cast<std::size_t>(i);
            const double px = g.p * x_[k];
            if (x_[k] != last_x) {
              last_x = x_[k];
              lead = log_gamma(px + g.q) - log_gamma(px);
            }
            return lead - (px + g.q) * std::log(x_[k] * m_[k] + g.gamma);
          });
      const double total = ll + count * (-log_gamma(g.q) + g.q * std::log(g.gamma)) +
                           g.p * sum_x_log_m - sum_log_m + g.p * sum_x_log_x;
      return std::isfinite(total) ? -total : std::numeric_limits<double>::infinity();
    };
  };
  std::vector<double> start_x, start_m;
  const std::size_t stride = sx.size() / detail::kStartRows + 1;
  for (std::size_t i = 0; stride > 1 && i < sx.size(); i += stride) {
    start_x.push_back(sx[i]);
    start_m.push_back(sm[i]);
  }
  const auto total_nll = nll_of(sx, sm);
  const auto start_nll = stride > 1 ? nll_of(start_x, start_m) : total_nll;
  const double start_members = stride > 1 ? static_cast<double>(start_x.size()) : members;
  double sum_x_log_m = 0, sum_log_m = 0, sum_x_log_x = 0;
  for (std::size_t i = 0; i < sx.size(); ++i) {
    sum_x_log_m += sx[i] * std::log(sm[i]);
    sum_log_m += std::log(sm[i]);
    sum_x_log_x += sx[i] * std::log(sx[i]);
  }
  // -ln L and its gradient over the log-parameters in one pass.
  const detail::GradientFunction total_gradient = [&](const std::vector<double>& v,
                                                      std::vector<double>& grad) {
    const GammaGamma g{std::exp(v[0]), std::exp(v[1]), std::exp(v[2])};
    struct PerX {
      double x = -1, lead = 0, psi_diff = 0, psi_sum = 0;
    };
    const auto sums =
        detail::chunked_sums<4>(static_cast<Offset>(sx.size()), threads,
                                [&, c = PerX()](Offset i, std::array<double, 4>& acc) mutable {
                                  const auto k = static_cast<std::size_t>(i);
                                  const double xv = sx[k], px = g.p * xv;
                                  if (xv != c.x) {
                                    c.x = xv;
                                    c.lead = log_gamma(px + g.q) - log_gamma(px);
                                    c.psi_sum = detail::digamma(px + g.q);
                                    c.psi_diff = c.psi_sum - detail::digamma(px);
                                  }
                                  const double denom = xv * sm[k] + g.gamma;
                                  const double L = std::log(denom);
                                  acc[0] += c.lead - (px + g.q) * L;
                                  acc[1] += xv * (c.psi_diff - L);
                                  acc[2] += c.psi_sum - L;
                                  acc[3] += (px + g.q) / denom;
                                });
    const double n = members;
    const double ll = sums[0] + n * (-log_gamma(g.q) + g.q * std::log(g.gamma)) +
                      g.p * sum_x_log_m - sum_log_m + g.p * sum_x_log_x;
    const double dp = sums[1] + sum_x_log_m + sum_x_log_x;
    const double dq = sums[2] - n * detail::digamma(g.q) + n * std::log(g.gamma);
    const double dgamma = n * g.q / g.gamma - sums[3];
    grad = {-g.p * dp, -g.q * dq, -g.gamma * dgamma};
    return std::isfinite(ll) ? -ll : std::numeric_limits<double>::infinity();
  };
  GammaGammaFit out;
  // Start: p = 1, q = 2 and gamma matching the mean order value (E[Z] = p gamma / (q - 1)).
  out.fit = detail::minimize_log_parameters_from(
      total_nll, members, start_nll, start_members,
      {0.0, std::log(2.0), std::log(std::max(mean_m, 1e-6))}, options, total_gradient);
  out.model = GammaGamma{out.fit.params[0], out.fit.params[1], out.fit.params[2]};
  out.frequency_spend_correlation = sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : 0.0;
  return out;
}

PERKREC_INLINE std::vector<double> nelder_mead(
    const std::function<double(const std::vector<double>&)>& f, std::vector<double> start,
    double step, int max_iterations, double tol) {
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
    std::sort(order.begin(), order.end(),
              [&](std::size_t i, std::size_t j) { return values[i] < values[j]; });
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
      const std::vector<double> contracted =
          point(centroid, outside ? reflected : simplex[worst], 0.5);
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

PERKREC_INLINE double beta_geometric_expected_purchases(double r, double alpha, double a, double b,
                                                        bool modified, double t, double x,
                                                        double t_x, double T) {
  if (!(t > 0)) return 0.0;
  const double alive = modified ? MBGNBD{r, alpha, a, b}.p_alive(x, t_x, T)
                                : BGNBD{r, alpha, a, b}.p_alive(x, t_x, T);
  const double nbd = alive * (r + x) / (alpha + T) * t;
  if (a / (a + b) < 1e-9) return nbd;
  const double shift = modified ? 1.0 : 0.0;
  if (std::fabs(a - 1.0) < 1e-6) a = a < 1.0 ? 1.0 - 1e-6 : 1.0 + 1e-6;
  const double z = t / (alpha + T + t);
  const double h = hypergeometric_2f1(r + x, b + x + shift, a + b + x - 1 + shift, z);
  const double lead = (a + b + x - 1 + shift) / (a - 1);
  const double bracket = 1.0 - std::pow((alpha + T) / (alpha + T + t), r + x) * h;
  const double e = lead * bracket * alive;
  return std::isfinite(e) && e >= 0 ? e : nbd;
}
}  // namespace detail

}  // namespace perkrec
