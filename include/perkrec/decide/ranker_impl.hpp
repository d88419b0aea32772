// Definitions for decide/ranker.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <utility>

#include "perkrec/core/math.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/decide/ranker.hpp"

namespace perkrec {

namespace detail {

inline constexpr Offset kBlendBlock = 4096;  // pairs per block of the blend's sums
inline constexpr Offset kRankBlock = 256;    // members per block of rank

/// Solves the small symmetric positive definite system H x = g (n <= a few dozen) by Cholesky,
/// adding a growing ridge when H is numerically singular. Returns false when it cannot.
inline bool solve_spd(std::vector<double> H, std::vector<double> g, std::size_t n,
                      std::vector<double>& x) {
  double trace = 0;
  for (std::size_t i = 0; i < n; ++i) trace += std::abs(H[i * n + i]);
  double ridge = 0;
  const std::vector<double> H0 = H;
  for (int attempt = 0; attempt < 8; ++attempt) {
    H = H0;
    for (std::size_t i = 0; i < n; ++i) H[i * n + i] += ridge;
    bool ok = true;
    for (std::size_t j = 0; j < n && ok; ++j) {
      double d = H[j * n + j];
      for (std::size_t k = 0; k < j; ++k) d -= H[j * n + k] * H[j * n + k];
      if (!(d > 1e-14 * (trace > 0 ? trace : 1.0))) {
        ok = false;
        break;
      }
      const double l = std::sqrt(d);
      H[j * n + j] = l;
      for (std::size_t i = j + 1; i < n; ++i) {
        double s = H[i * n + j];
        for (std::size_t k = 0; k < j; ++k) s -= H[i * n + k] * H[j * n + k];
        H[i * n + j] = s / l;
      }
    }
    if (ok) {
      std::vector<double> y(n);
      for (std::size_t i = 0; i < n; ++i) {
        double s = g[i];
        for (std::size_t k = 0; k < i; ++k) s -= H[i * n + k] * y[k];
        y[i] = s / H[i * n + i];
      }
      x.assign(n, 0.0);
      for (std::size_t i = n; i-- > 0;) {
        double s = y[i];
        for (std::size_t k = i + 1; k < n; ++k) s -= H[k * n + i] * x[k];
        x[i] = s / H[i * n + i];
      }
      return true;
    }
    ridge = ridge == 0 ? 1e-10 * (trace > 0 ? trace : 1.0) : ridge * 100;
  }
  return false;
}

inline double softplus(double z) {
  return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
}

}  // namespace detail

// --- ScoreBlendParams ------------------------------------------------------------------------

PERKREC_INLINE void ScoreBlendParams::validate() const {
  params::validate_fields(*this, "ScoreBlendParams");
}
PERKREC_INLINE Json ScoreBlendParams::to_json() const { return params::fields_to_json(*this); }
PERKREC_INLINE ScoreBlendParams ScoreBlendParams::from_json(const Json& j) {
  return params::fields_from_json<ScoreBlendParams>(j, "ScoreBlendParams::from_json");
}

PERKREC_INLINE const char* to_string(ScoreBlend::Transform t) {
  return t == ScoreBlend::Transform::logit ? "logit" : "identity";
}

// --- ScoreBlend ------------------------------------------------------------------------------

PERKREC_INLINE ScoreBlend::ScoreBlend(ScoreBlendParams params) : params_(params) {
  params_.validate();
}

PERKREC_INLINE ScoreBlend& ScoreBlend::add_source(std::string name, Scorer scorer,
                                                  Transform transform) {
  if (name.empty()) detail::raise<ConfigError>("ScoreBlend::add_source: name is empty");
  if (std::find(names_.begin(), names_.end(), name) != names_.end()) {
    detail::raise<ConfigError>("ScoreBlend::add_source: duplicate source name (got \"", name,
                               "\")");
  }
  if (!scorer)
    detail::raise<ConfigError>("ScoreBlend::add_source: scorer of \"", name, "\" is empty");
  names_.push_back(std::move(name));
  scorers_.push_back(std::move(scorer));
  transforms_.push_back(transform);
  weights_.push_back(0.0);
  fitted_ = false;
  return *this;
}

PERKREC_INLINE void ScoreBlend::attach(const std::string& name, Scorer scorer) {
  const auto it = std::find(names_.begin(), names_.end(), name);
  if (it == names_.end()) {
    std::string known;
    for (const auto& n : names_) known += (known.empty() ? "" : ", ") + n;
    detail::raise<ConfigError>("ScoreBlend::attach: unknown source (got \"", name,
                               "\", expected one of: ", known, ")");
  }
  if (!scorer) detail::raise<ConfigError>("ScoreBlend::attach: scorer of \"", name, "\" is empty");
  scorers_[static_cast<std::size_t>(it - names_.begin())] = std::move(scorer);
}

PERKREC_INLINE void ScoreBlend::set_weights(double bias, std::vector<double> weights) {
  if (weights.size() != names_.size()) {
    detail::raise<InputError>("ScoreBlend::set_weights: got ", weights.size(),
                              " weights (expected ", names_.size(), ", one per source)");
  }
  if (!std::isfinite(bias))
    detail::raise<InputError>("ScoreBlend::set_weights: bias is not finite (got ", bias, ")");
  for (std::size_t s = 0; s < weights.size(); ++s) {
    if (!std::isfinite(weights[s])) {
      detail::raise<InputError>("ScoreBlend::set_weights: weight of \"", names_[s],
                                "\" is not finite (got ", weights[s], ")");
    }
  }
  weights_ = std::move(weights);
  bias_ = bias;
  fitted_ = true;
}

PERKREC_INLINE void ScoreBlend::check_ready(const char* method) const {
  if (names_.empty())
    detail::raise<InputError>("ScoreBlend::", method, ": the blend has no sources");
  for (std::size_t s = 0; s < scorers_.size(); ++s) {
    if (!scorers_[s]) {
      detail::raise<InputError>("ScoreBlend::", method, ": source \"", names_[s],
                                "\" has no scorer (attach it after from_json)");
    }
  }
}

PERKREC_INLINE void ScoreBlend::check_pairs(const char* method, Span<const Index> users,
                                            Span<const Index> benefits, std::size_t out_size,
                                            std::size_t per_pair) const {
  if (users.size() != benefits.size()) {
    detail::raise<InputError>("ScoreBlend::", method, ": users and benefits differ in length (",
                              users.size(), " vs ", benefits.size(), ")");
  }
  if (out_size != users.size() * per_pair) {
    detail::raise<InputError>("ScoreBlend::", method, ": out has ", out_size, " entries (expected ",
                              users.size() * per_pair, ")");
  }
}

PERKREC_INLINE void ScoreBlend::transformed(const char* method, Span<const Index> users,
                                            Span<const Index> benefits, float* out) const {
  const std::size_t n = users.size();
  const std::size_t k = names_.size();
  std::vector<float> tmp(n);
  const double lo = params_.clip, hi = 1.0 - params_.clip;
  for (std::size_t s = 0; s < k; ++s) {
    scorers_[s](users, benefits, Span<float>(tmp.data(), n));
    const bool logit = transforms_[s] == Transform::logit;
    for (std::size_t i = 0; i < n; ++i) {
      const float v = tmp[i];
      if (!std::isfinite(v) || (logit && !(v >= 0.0f && v <= 1.0f))) {
        detail::raise<InputError>(
            "ScoreBlend::", method, ": source \"", names_[s], "\" scored pair ", i, " (user ",
            users[i], ", benefit ", benefits[i], ") as ", v,
            logit ? " (expected a probability in [0, 1])" : " (expected a finite score)");
      }
      out[i * k + s] = logit ? static_cast<float>(std::log(std::clamp<double>(v, lo, hi) /
                                                           (1.0 - std::clamp<double>(v, lo, hi))))
                             : v;
    }
  }
}

PERKREC_INLINE void ScoreBlend::fit(Span<const Index> users, Span<const Index> benefits,
                                    Span<const float> labels, const Callbacks& callbacks) {
  check_ready("fit");
  if (users.size() != benefits.size() || users.size() != labels.size()) {
    detail::raise<InputError>("ScoreBlend::fit: users, benefits and labels differ in length (",
                              users.size(), ", ", benefits.size(), ", ", labels.size(), ")");
  }
  const std::size_t n = users.size();
  if (n == 0) detail::raise<InputError>("ScoreBlend::fit: no labelled pairs");
  double label_sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!(labels[i] >= 0.0f && labels[i] <= 1.0f)) {
      detail::raise<InputError>("ScoreBlend::fit: labels[", i, "] must be in [0, 1] (got ",
                                labels[i], ")");
    }
    label_sum += labels[i];
  }
  const std::size_t k = names_.size();
  const std::size_t K = k + 1;  // bias first
  const int threads = params_.num_threads;
  const Offset blocks = static_cast<Offset>((n + detail::kBlendBlock - 1) / detail::kBlendBlock);
  auto block_range = [&](Offset blk) {
    const std::size_t b0 = static_cast<std::size_t>(blk) * detail::kBlendBlock;
    return std::pair<std::size_t, std::size_t>(b0, std::min(n, b0 + detail::kBlendBlock));
  };

  std::vector<float> X(n * k);
  parallel_for(0, blocks, threads, [&](Offset blk) {
    const auto [b0, b1] = block_range(blk);
    transformed("fit", Span<const Index>(users.data() + b0, b1 - b0),
                Span<const Index>(benefits.data() + b0, b1 - b0), X.data() + b0 * k);
  });

  const double l2 = params_.l2;
  const double inv_n = 1.0 / static_cast<double>(n);
  // Objective (and optionally gradient + Hessian) summed over fixed blocks in block order.
  auto evaluate = [&](const std::vector<double>& theta, bool derivatives, std::vector<double>& grad,
                      std::vector<double>& hess) {
    const std::size_t width = derivatives ? 1 + K + K * K : 1;
    std::vector<double> partial(static_cast<std::size_t>(blocks) * width, 0.0);
    parallel_for(0, blocks, threads, [&](Offset blk) {
      const auto [b0, b1] = block_range(blk);
      double* acc = partial.data() + static_cast<std::size_t>(blk) * width;
      for (std::size_t i = b0; i < b1; ++i) {
        const float* x = X.data() + i * k;
        double z = theta[0];
        for (std::size_t s = 0; s < k; ++s) z += theta[s + 1] * x[s];
        const double y = labels[i];
        acc[0] += detail::softplus(z) - y * z;
        if (derivatives) {
          const double p = sigmoid(z);
          const double r = p - y;
          const double w = p * (1.0 - p);
          double* g = acc + 1;
          double* h = acc + 1 + K;
          g[0] += r;
          h[0] += w;
          for (std::size_t a = 0; a < k; ++a) {
            g[a + 1] += r * x[a];
            h[a + 1] += w * x[a];  // row 0
            for (std::size_t b = 0; b <= a; ++b) h[(a + 1) * K + b + 1] += w * x[a] * x[b];
          }
        }
      }
    });
    std::vector<double> total(width, 0.0);
    for (Offset blk = 0; blk < blocks; ++blk) {
      for (std::size_t j = 0; j < width; ++j)
        total[j] += partial[static_cast<std::size_t>(blk) * width + j];
    }
    double penalty = 0;
    for (std::size_t s = 1; s < K; ++s) penalty += theta[s] * theta[s];
    const double objective = total[0] * inv_n + 0.5 * l2 * penalty;
    if (derivatives) {
      grad.assign(K, 0.0);
      hess.assign(K * K, 0.0);
      for (std::size_t a = 0; a < K; ++a)
        grad[a] = total[1 + a] * inv_n + (a > 0 ? l2 * theta[a] : 0.0);
      const double* h = total.data() + 1 + K;
      for (std::size_t a = 0; a < K; ++a) {
        for (std::size_t b = 0; b <= a; ++b) {
          const double v = (b == 0 ? h[a] : h[a * K + b]) * inv_n + (a == b && a > 0 ? l2 : 0.0);
          hess[a * K + b] = v;
          hess[b * K + a] = v;
        }
      }
    }
    return objective;
  };

  std::vector<double> theta(K, 0.0);
  const double mean = std::clamp(label_sum * inv_n, 1e-6, 1.0 - 1e-6);
  theta[0] = std::log(mean / (1.0 - mean));
  ProgressReporter progress(callbacks, "ScoreBlend::fit", params_.max_iterations);
  std::vector<double> grad, hess, step, candidate(K);
  double objective = evaluate(theta, false, grad, hess);
  int iterations = 0;
  for (int it = 0; it < params_.max_iterations; ++it) {
    evaluate(theta, true, grad, hess);
    if (!detail::solve_spd(hess, grad, K, step)) break;
    double slope = 0;
    for (std::size_t a = 0; a < K; ++a) slope += grad[a] * step[a];
    double t = 1.0;
    double next = objective;
    bool accepted = false;
    for (int ls = 0; ls < 40; ++ls) {
      for (std::size_t a = 0; a < K; ++a) candidate[a] = theta[a] - t * step[a];
      next = evaluate(candidate, false, grad, hess);
      if (std::isfinite(next) && next <= objective - 1e-4 * t * slope) {
        accepted = true;
        break;
      }
      t *= 0.5;
    }
    ++iterations;
    double change = 0;
    if (accepted) {
      for (std::size_t a = 0; a < K; ++a)
        change = std::max(change, std::abs(candidate[a] - theta[a]));
      theta = candidate;
      const double improvement = objective - next;
      objective = next;
      progress.advance(1);
      if (change < params_.tolerance || improvement <= 1e-15 * (1.0 + std::abs(objective))) break;
    } else {
      progress.advance(1);
      break;  // no decrease possible along Newton's direction: at the optimum numerically
    }
  }
  for (double v : theta) {
    if (!std::isfinite(v))
      detail::raise<DivergenceError>("ScoreBlend::fit: Newton produced non-finite weights");
  }
  bias_ = theta[0];
  weights_.assign(theta.begin() + 1, theta.end());
  fitted_ = true;
  iterations_ = iterations;
  training_loss_ = objective;
}

PERKREC_INLINE void ScoreBlend::predict(Span<const Index> users, Span<const Index> benefits,
                                        Span<float> out) const {
  check_ready("predict");
  if (!fitted_)
    detail::raise<InputError>(
        "ScoreBlend::predict: the blend is not fitted (call fit or set_weights)");
  check_pairs("predict", users, benefits, out.size(), 1);
  const std::size_t n = users.size();
  const std::size_t k = names_.size();
  std::vector<float> f(n * k);
  transformed("predict", users, benefits, f.data());
  for (std::size_t i = 0; i < n; ++i) {
    double z = bias_;
    for (std::size_t s = 0; s < k; ++s) z += weights_[s] * f[i * k + s];
    out[i] = static_cast<float>(sigmoid(z));
  }
}

PERKREC_INLINE void ScoreBlend::features(Span<const Index> users, Span<const Index> benefits,
                                         Span<float> out) const {
  check_ready("features");
  check_pairs("features", users, benefits, out.size(), names_.size());
  transformed("features", users, benefits, out.data());
}

PERKREC_INLINE void ScoreBlend::contributions(Span<const Index> users, Span<const Index> benefits,
                                              Span<float> out) const {
  check_ready("contributions");
  if (!fitted_) detail::raise<InputError>("ScoreBlend::contributions: the blend is not fitted");
  check_pairs("contributions", users, benefits, out.size(), names_.size());
  transformed("contributions", users, benefits, out.data());
  const std::size_t k = names_.size();
  for (std::size_t i = 0; i < users.size(); ++i) {
    for (std::size_t s = 0; s < k; ++s)
      out[i * k + s] = static_cast<float>(weights_[s] * out[i * k + s]);
  }
}

PERKREC_INLINE std::vector<double> ScoreBlend::contributions(Index user, Index benefit) const {
  std::vector<float> terms(names_.size());
  contributions(Span<const Index>(&user, 1), Span<const Index>(&benefit, 1), terms);
  return std::vector<double>(terms.begin(), terms.end());
}

PERKREC_INLINE Json ScoreBlend::to_json() const {
  Json sources = Json::array();
  for (std::size_t s = 0; s < names_.size(); ++s) {
    sources.push_back(Json{
        {"name", names_[s]}, {"transform", to_string(transforms_[s])}, {"weight", weights_[s]}});
  }
  return Json{
      {"params", params_.to_json()}, {"bias", bias_}, {"fitted", fitted_}, {"sources", sources}};
}

PERKREC_INLINE ScoreBlend ScoreBlend::from_json(const Json& j) {
  const char* context = "ScoreBlend::from_json";
  JsonReader<ConfigError> r(j, "", context);
  ScoreBlendParams params;
  if (const Json* pj = r.raw("params")) {
    try {
      params = ScoreBlendParams::from_json(*pj);
    } catch (const ConfigError& e) {
      detail::raise<ConfigError>(context, ": /params: ", e.what());
    }
  }
  ScoreBlend blend(params);
  r.read("bias", blend.bias_);
  r.read("fitted", blend.fitted_);
  const Json* sources = r.raw("sources");
  if (sources != nullptr) {
    if (!sources->is_array()) r.fail("sources", "expected an array");
    std::size_t i = 0;
    for (const Json& sj : *sources) {
      const std::string where = "/sources/" + std::to_string(i++);
      JsonReader<ConfigError> sr(sj, where, context);
      std::string name, transform = "identity";
      double weight = 0;
      sr.require("name", name);
      sr.read("transform", transform);
      sr.read("weight", weight);
      sr.finish();
      if (name.empty()) sr.fail("name", "expected a non-empty name");
      if (std::find(blend.names_.begin(), blend.names_.end(), name) != blend.names_.end()) {
        sr.fail("name", "duplicate source name");
      }
      Transform t = Transform::identity;
      if (transform == "logit") {
        t = Transform::logit;
      } else if (transform != "identity") {
        sr.fail("transform", "expected \"identity\" or \"logit\"");
      }
      blend.names_.push_back(name);
      blend.scorers_.emplace_back();
      blend.transforms_.push_back(t);
      blend.weights_.push_back(weight);
    }
  }
  r.finish();
  return blend;
}

PERKREC_INLINE ScoreBlend::Scorer dense_scorer(Span<const float> matrix, Index n_users,
                                               Index n_benefits, std::string name) {
  if (n_users < 0 || n_benefits < 0 ||
      matrix.size() != static_cast<std::size_t>(n_users) * static_cast<std::size_t>(n_benefits)) {
    detail::raise<InputError>("dense_scorer: ", name, " has ", matrix.size(), " entries (expected ",
                              n_users, " x ", n_benefits, ")");
  }
  return [matrix, n_users, n_benefits, name](Span<const Index> users, Span<const Index> benefits,
                                             Span<float> out) {
    for (std::size_t i = 0; i < users.size(); ++i) {
      const Index u = users[i], b = benefits[i];
      if (u < 0 || u >= n_users || b < 0 || b >= n_benefits) {
        detail::raise<InputError>("dense_scorer: ", name, ": pair ", i, " (user ", u, ", benefit ",
                                  b, ") out of range (", n_users, " x ", n_benefits, ")");
      }
      out[i] = matrix[static_cast<std::size_t>(u) * static_cast<std::size_t>(n_benefits) +
                      static_cast<std::size_t>(b)];
    }
  };
}

// --- RankerParams ----------------------------------------------------------------------------

PERKREC_INLINE const char* to_string(RankerParams::Objective objective) {
  return objective == RankerParams::Objective::redemption ? "redemption" : "incremental";
}

PERKREC_INLINE void RankerParams::validate() const {
  params::validate_fields(*this, "RankerParams");
}
PERKREC_INLINE Json RankerParams::to_json() const { return params::fields_to_json(*this); }
PERKREC_INLINE RankerParams RankerParams::from_json(const Json& j) {
  return params::fields_from_json<RankerParams>(j, "RankerParams::from_json");
}

PERKREC_INLINE bool parse_objective(const std::string& text, RankerParams::Objective& out) {
  if (text == "redemption") {
    out = RankerParams::Objective::redemption;
  } else if (text == "incremental") {
    out = RankerParams::Objective::incremental;
  } else {
    return false;
  }
  return true;
}

// --- rank ------------------------------------------------------------------------------------

namespace detail {

inline void check_vector(const char* field, Span<const float> v, std::size_t expected,
                         bool unit_interval) {
  if (v.empty()) return;
  if (v.size() != expected) {
    detail::raise<InputError>("rank: ", field, " has ", v.size(), " entries (expected ", expected,
                              " or none)");
  }
  for (std::size_t i = 0; i < v.size(); ++i) {
    const float x = v[i];
    if (!std::isfinite(x) || x < 0 || (unit_interval && x > 1)) {
      detail::raise<InputError>("rank: ", field, "[", i, "] must be finite and ",
                                unit_interval ? "in [0, 1]" : ">= 0", " (got ", x, ")");
    }
  }
}

struct RankEntry {
  double key;
  Index benefit;
};

struct RankBefore {
  bool operator()(const RankEntry& a, const RankEntry& b) const {
    return a.key > b.key || (a.key == b.key && a.benefit < b.benefit);
  }
};

/// The shared body of the rank() overloads. `probabilities(u0, u1, need_all, scratch)` returns,
/// for members [u0, u1), a dense (u1 - u0) x n_benefits block of probabilities (every entry
/// when need_all, else at least the eligible ones), stored in `scratch` or borrowed.
/// `shares(u0, u1, need_all, scratch)` does the same for incremental shares, or returns
/// nullptr when they come from in.incremental_share. Bad values are reported per member and
/// raised for the first bad member after the loop (so the message does not depend on threads).
template <class Probabilities, class Shares>
Candidates rank_impl(const RankInputs& in, const EligibilityMasks& masks, const RankerParams& p,
                     RankDiagnostics* diag, bool dense_probability, Probabilities&& probabilities,
                     Shares&& shares) {
  p.validate();
  const Index n = masks.n_users();
  const Index m = masks.n_benefits();
  const std::size_t nm = static_cast<std::size_t>(n) * static_cast<std::size_t>(m);
  if (dense_probability && in.redemption_probability.size() != nm) {
    detail::raise<InputError>("rank: redemption_probability has ", in.redemption_probability.size(),
                              " entries (expected members x benefits = ", n, " x ", m, ")");
  }
  const bool share_matrix = in.incremental_share.size() == nm && nm > 0;
  if (!in.incremental_share.empty() && !share_matrix &&
      in.incremental_share.size() != static_cast<std::size_t>(n)) {
    detail::raise<InputError>("rank: incremental_share has ", in.incremental_share.size(),
                              " entries (expected members x benefits = ", nm, ", members = ", n,
                              ", or none)");
  }
  if (!share_matrix)
    check_vector("incremental_share", in.incremental_share, static_cast<std::size_t>(n), true);
  check_vector("member_value", in.member_value, static_cast<std::size_t>(n), false);
  check_vector("benefit_value", in.benefit_value, static_cast<std::size_t>(m), false);
  check_vector("cost_per_redemption", in.cost_per_redemption, static_cast<std::size_t>(m), false);

  const bool incremental = p.objective == RankerParams::Objective::incremental;
  std::vector<double> benefit_value(static_cast<std::size_t>(m), 1.0),
      cost_per_redemption(static_cast<std::size_t>(m), 0.0);
  if (!in.benefit_value.empty())
    benefit_value.assign(in.benefit_value.begin(), in.benefit_value.end());
  if (!in.cost_per_redemption.empty())
    cost_per_redemption.assign(in.cost_per_redemption.begin(), in.cost_per_redemption.end());
  const bool want_diag = diag != nullptr;
  const std::size_t top_k = static_cast<std::size_t>(p.top_k);
  const Offset blocks = (n + kRankBlock - 1) / kRankBlock;

  struct Block {
    std::vector<std::int64_t> count;
    std::vector<Index> benefit;
    std::vector<float> value, cost, probability;
  };
  std::vector<Block> out(static_cast<std::size_t>(blocks));
  // Per member: first bad dense entry (benefit index + 1, or 0), and which field.
  std::vector<std::int64_t> bad(static_cast<std::size_t>(n), 0);
  std::vector<std::uint8_t> bad_field(static_cast<std::size_t>(n), 0);
  std::vector<float> bad_value(static_cast<std::size_t>(n), 0.0f);
  if (want_diag) {
    diag->best_ineligible.assign(static_cast<std::size_t>(n), -1);
    diag->best_ineligible_key.assign(static_cast<std::size_t>(n),
                                     std::numeric_limits<float>::quiet_NaN());
    diag->best_ineligible_rule.assign(static_cast<std::size_t>(n), -1);
    diag->n_eligible.assign(static_cast<std::size_t>(n), 0);
  }

  parallel_for(0, blocks, p.num_threads, [&](Offset blk) {
    const Index u0 = static_cast<Index>(blk * kRankBlock);
    const Index u1 = static_cast<Index>(std::min<Offset>(n, u0 + kRankBlock));
    Block& o = out[static_cast<std::size_t>(blk)];
    o.count.assign(static_cast<std::size_t>(u1 - u0), 0);
    std::vector<float> scratch, share_scratch;
    const float* prob_block = probabilities(u0, u1, want_diag, scratch);
    const float* share_block = shares(u0, u1, want_diag, share_scratch);
    std::vector<RankEntry> entries;
    entries.resize(static_cast<std::size_t>(m));
    // Value, cost and probability of the kept entries, by benefit (read back for the top K).
    std::vector<float> kept_value(static_cast<std::size_t>(m)),
        kept_cost(static_cast<std::size_t>(m)), kept_probability(static_cast<std::size_t>(m));
    o.benefit.reserve(static_cast<std::size_t>(u1 - u0) *
                      std::min(top_k, static_cast<std::size_t>(m)));
    o.value.reserve(o.benefit.capacity());
    o.cost.reserve(o.benefit.capacity());
    o.probability.reserve(o.benefit.capacity());
    for (Index u = u0; u < u1; ++u) {
      const std::size_t uz = static_cast<std::size_t>(u);
      const float* prob =
          prob_block + static_cast<std::size_t>(u - u0) * static_cast<std::size_t>(m);
      const float* share_row =
          share_block != nullptr
              ? share_block + static_cast<std::size_t>(u - u0) * static_cast<std::size_t>(m)
          : share_matrix ? in.incremental_share.data() + uz * static_cast<std::size_t>(m)
                         : nullptr;
      const double member_share =
          share_block == nullptr && !share_matrix && !in.incremental_share.empty()
              ? in.incremental_share[uz]
              : 1.0;
      const double mv = in.member_value.empty() ? 1.0 : in.member_value[uz];
      const std::uint64_t* row = masks.row(u);
      std::size_t kept = 0;
      double best_key = -std::numeric_limits<double>::infinity();
      Index best_b = -1;
      Index eligible_count = 0;
      for (Index b = 0; b < m; ++b) {
        const bool eligible = (row[b >> 6] >> (b & 63)) & 1u;
        if (!eligible && !want_diag) {
          if (dense_probability) {
            const float pr = prob[b];
            if (!(pr >= 0.0f && pr <= 1.0f) && bad[uz] == 0) {
              bad[uz] = b + 1;
              bad_field[uz] = 0;
              bad_value[uz] = pr;
            }
          }
          if (share_row != nullptr && !(share_row[b] >= 0.0f && share_row[b] <= 1.0f) &&
              bad[uz] == 0) {
            bad[uz] = b + 1;
            bad_field[uz] = 1;
            bad_value[uz] = share_row[b];
          }
          continue;
        }
        const float pr = prob[b];
        if (!(pr >= 0.0f && pr <= 1.0f)) {
          if (bad[uz] == 0) {
            bad[uz] = b + 1;
            bad_field[uz] = 0;
            bad_value[uz] = pr;
          }
          continue;
        }
        double share = member_share;
        if (share_row != nullptr) {
          if (!(share_row[b] >= 0.0f && share_row[b] <= 1.0f)) {
            if (bad[uz] == 0) {
              bad[uz] = b + 1;
              bad_field[uz] = 1;
              bad_value[uz] = share_row[b];
            }
            continue;
          }
          share = share_row[b];
        }
        const double bv = benefit_value[static_cast<std::size_t>(b)];
        const double cpr = cost_per_redemption[static_cast<std::size_t>(b)];
        const double value = static_cast<double>(pr) * (incremental ? share : 1.0) * mv * bv;
        const double cost = p.issue_cost + static_cast<double>(pr) * cpr;
        const double key = value - cost;
        if (!eligible) {
          if (key > best_key) {
            best_key = key;
            best_b = b;
          }
          continue;
        }
        ++eligible_count;
        // Branch-free append (whether key > 0 is a coin flip for the branch predictor).
        entries[kept] = RankEntry{key, b};
        kept += (p.keep_non_positive || key > 0) ? 1 : 0;
        const auto bz = static_cast<std::size_t>(b);
        kept_value[bz] = static_cast<float>(value);
        kept_cost[bz] = static_cast<float>(cost);
        kept_probability[bz] = pr;
      }
      // Select the top K by (key, benefit) on 16-byte entries, then sort only those.
      const auto first = entries.begin();
      if (kept > top_k) {
        std::nth_element(first, first + static_cast<std::ptrdiff_t>(top_k),
                         first + static_cast<std::ptrdiff_t>(kept), RankBefore{});
        kept = top_k;
      }
      std::sort(first, first + static_cast<std::ptrdiff_t>(kept), RankBefore{});
      o.count[static_cast<std::size_t>(u - u0)] = static_cast<std::int64_t>(kept);
      for (std::size_t i = 0; i < kept; ++i) {
        const RankEntry& e = entries[i];
        const auto bz = static_cast<std::size_t>(e.benefit);
        o.benefit.push_back(e.benefit);
        o.value.push_back(kept_value[bz]);
        o.cost.push_back(kept_cost[bz]);
        o.probability.push_back(kept_probability[bz]);
      }
      if (want_diag) {
        diag->n_eligible[uz] = eligible_count;
        if (best_b >= 0) {
          diag->best_ineligible[uz] = best_b;
          diag->best_ineligible_key[uz] = static_cast<float>(best_key);
          diag->best_ineligible_rule[uz] = masks.user_rule(u, best_b);
        }
      }
    }
  });

  for (Index u = 0; u < n; ++u) {
    const std::size_t uz = static_cast<std::size_t>(u);
    if (bad[uz] != 0) {
      const Index b = static_cast<Index>(bad[uz] - 1);
      if (bad_field[uz] == 1) {
        detail::raise<InputError>("rank: incremental_share[", u, ", ", b,
                                  "] must be in [0, 1] (got ", bad_value[uz], ")");
      }
      detail::raise<InputError>(
          "rank: ", dense_probability ? "redemption_probability" : "scored probability", "[", u,
          ", ", b, "] must be in [0, 1] (got ", bad_value[uz], ")");
    }
  }

  Candidates c;
  c.n_users = n;
  c.n_benefits = m;
  c.offsets.assign(static_cast<std::size_t>(n) + 1, 0);
  std::vector<std::int64_t> block_start(static_cast<std::size_t>(blocks) + 1, 0);
  for (Offset blk = 0; blk < blocks; ++blk) {
    const Block& o = out[static_cast<std::size_t>(blk)];
    const Index u0 = static_cast<Index>(blk * kRankBlock);
    for (std::size_t i = 0; i < o.count.size(); ++i) {
      c.offsets[static_cast<std::size_t>(u0) + i + 1] =
          c.offsets[static_cast<std::size_t>(u0) + i] + o.count[i];
    }
    block_start[static_cast<std::size_t>(blk) + 1] =
        block_start[static_cast<std::size_t>(blk)] + static_cast<std::int64_t>(o.benefit.size());
  }
  const std::size_t total = static_cast<std::size_t>(c.offsets.back());
  c.benefit.resize(total);
  c.value.resize(total);
  c.cost.resize(total);
  c.probability.resize(total);
  parallel_for(0, blocks, p.num_threads, [&](Offset blk) {
    Block& o = out[static_cast<std::size_t>(blk)];
    const std::size_t at = static_cast<std::size_t>(block_start[static_cast<std::size_t>(blk)]);
    std::copy(o.benefit.begin(), o.benefit.end(),
              c.benefit.begin() + static_cast<std::ptrdiff_t>(at));
    std::copy(o.value.begin(), o.value.end(), c.value.begin() + static_cast<std::ptrdiff_t>(at));
    std::copy(o.cost.begin(), o.cost.end(), c.cost.begin() + static_cast<std::ptrdiff_t>(at));
    std::copy(o.probability.begin(), o.probability.end(),
              c.probability.begin() + static_cast<std::ptrdiff_t>(at));
    o = Block{};
  });
  return c;
}

}  // namespace detail

namespace detail {

inline const float* no_shares(Index, Index, bool, std::vector<float>&) { return nullptr; }

/// Members [u0, u1) scored by `scorer` on their eligible pairs (every pair when need_all),
/// written into a dense block; entries not scored are 0 and never read.
inline const float* scored_block(const ScoreBlend::Scorer& scorer, const EligibilityMasks& masks,
                                 Index u0, Index u1, bool need_all, std::vector<float>& dense) {
  const Index m = masks.n_benefits();
  std::vector<Index> users, benefits;
  users.reserve(static_cast<std::size_t>(u1 - u0) * static_cast<std::size_t>(m));
  benefits.reserve(users.capacity());
  for (Index u = u0; u < u1; ++u) {
    const std::uint64_t* row = masks.row(u);
    for (Index b = 0; b < m; ++b) {
      if (need_all || ((row[b >> 6] >> (b & 63)) & 1u)) {
        users.push_back(u);
        benefits.push_back(b);
      }
    }
  }
  std::vector<float> scores(users.size());
  if (!users.empty()) scorer(users, benefits, scores);
  dense.assign(static_cast<std::size_t>(u1 - u0) * static_cast<std::size_t>(m), 0.0f);
  for (std::size_t i = 0; i < users.size(); ++i) {
    dense[static_cast<std::size_t>(users[i] - u0) * static_cast<std::size_t>(m) +
          static_cast<std::size_t>(benefits[i])] = scores[i];
  }
  return dense.data();
}

}  // namespace detail

PERKREC_INLINE Candidates rank(const RankInputs& in, const EligibilityMasks& masks,
                               const RankerParams& p, RankDiagnostics* diagnostics) {
  const std::size_t m = static_cast<std::size_t>(masks.n_benefits());
  const float* base = in.redemption_probability.data();
  return detail::rank_impl(
      in, masks, p, diagnostics, true,
      [&](Index u0, Index, bool, std::vector<float>&) {
        return base + static_cast<std::size_t>(u0) * m;
      },
      detail::no_shares);
}

PERKREC_INLINE Candidates rank(const ScoreBlend& blend, const RankInputs& in,
                               const EligibilityMasks& masks, const RankerParams& p,
                               RankDiagnostics* diagnostics) {
  if (!blend.fitted())
    detail::raise<InputError>("rank: the blend is not fitted (call fit or set_weights)");
  const ScoreBlend::Scorer predict = [&blend](Span<const Index> users, Span<const Index> benefits,
                                              Span<float> out) {
    blend.predict(users, benefits, out);
  };
  return detail::rank_impl(
      in, masks, p, diagnostics, false,
      [&](Index u0, Index u1, bool need_all, std::vector<float>& dense) {
        return detail::scored_block(predict, masks, u0, u1, need_all, dense);
      },
      detail::no_shares);
}

PERKREC_INLINE Candidates rank(const RankScorers& scorers, const RankInputs& in,
                               const EligibilityMasks& masks, const RankerParams& p,
                               RankDiagnostics* diagnostics) {
  if (!scorers.redemption_probability) {
    detail::raise<InputError>("rank: scorers.redemption_probability is empty (expected a scorer)");
  }
  if (scorers.incremental_share && !in.incremental_share.empty()) {
    detail::raise<InputError>("rank: incremental_share given twice (a scorer and ",
                              in.incremental_share.size(), " values; expected one)");
  }
  const bool score_shares = static_cast<bool>(scorers.incremental_share) &&
                            p.objective == RankerParams::Objective::incremental;
  return detail::rank_impl(
      in, masks, p, diagnostics, false,
      [&](Index u0, Index u1, bool need_all, std::vector<float>& dense) {
        return detail::scored_block(scorers.redemption_probability, masks, u0, u1, need_all, dense);
      },
      [&](Index u0, Index u1, bool need_all, std::vector<float>& dense) -> const float* {
        if (!score_shares) return nullptr;
        return detail::scored_block(scorers.incremental_share, masks, u0, u1, need_all, dense);
      });
}

// --- schedule --------------------------------------------------------------------------------

PERKREC_INLINE void ScheduleParams::validate() const {
  params::validate_fields(*this, "ScheduleParams");
}

namespace detail {

inline Timestamp hour_start(Timestamp t) { return floor_div(t, kSecondsPerHour) * kSecondsPerHour; }

/// First time >= t at hour:00 UTC.
inline Timestamp next_at_hour(Timestamp t, int hour) {
  Timestamp at = floor_div(t, kSecondsPerDay) * kSecondsPerDay +
                 static_cast<Timestamp>(hour) * kSecondsPerHour;
  if (at < t) at += kSecondsPerDay;
  return at;
}

inline SendSchedule schedule_one(const PreferenceModel* pref, Index member, Timestamp plan_time,
                                 std::int32_t catalog_validity, const ScheduleParams& params) {
  SendSchedule s;
  if (pref != nullptr && pref->fitted() && member < pref->n_users()) {
    const MemberTiming& t = pref->timing()[static_cast<std::size_t>(member)];
    if (t.best_slot >= 0 && t.best_slot < 168 && std::isfinite(t.send_in_days) &&
        std::isfinite(t.validity_days)) {
      const Timestamp target =
          pref->cut_time() + static_cast<Timestamp>(std::llround(
                                 static_cast<double>(t.send_in_days) * kSecondsPerDay));
      s.send_at = next_in_hour_of_week(std::max(plan_time, target), t.best_slot);
      const auto model_days =
          static_cast<std::int32_t>(std::ceil(static_cast<double>(t.validity_days)));
      s.validity_days = std::max(params.min_validity_days, std::min(model_days, catalog_validity));
      s.from_model = true;
      return s;
    }
  }
  s.send_at = next_at_hour(plan_time, params.default_hour);
  s.validity_days = std::max(params.min_validity_days, catalog_validity);
  return s;
}

}  // namespace detail

PERKREC_INLINE Timestamp next_in_hour_of_week(Timestamp t, int slot) {
  if (slot < 0 || slot >= 168) {
    detail::raise<InputError>("next_in_hour_of_week: slot must be in 0..167 (got ", slot, ")");
  }
  const int now = hour_of_week(t);
  if (now == slot) return t;
  const int ahead = ((slot - now) % 168 + 168) % 168;
  return detail::hour_start(t) + static_cast<Timestamp>(ahead) * kSecondsPerHour;
}

PERKREC_INLINE SendSchedule schedule(const PreferenceModel* pref, Index member, Timestamp plan_time,
                                     const Benefit& benefit,
                                     const std::function<Timestamp(Timestamp)>& quiet,
                                     const ScheduleParams& params) {
  params.validate();
  if (member < 0) detail::raise<InputError>("schedule: member must be >= 0 (got ", member, ")");
  SendSchedule s = detail::schedule_one(pref, member, plan_time, benefit.validity_days, params);
  if (quiet) s.send_at = quiet(s.send_at);
  return s;
}

PERKREC_INLINE void QuietHours::validate() const {
  if (start_hour < 0 || start_hour > 23 || end_hour < 0 || end_hour > 23) {
    detail::raise<ConfigError>("QuietHours: start_hour and end_hour must be in 0..23 (got ",
                               start_hour, ", ", end_hour, ")");
  }
  if (start_hour == end_hour) {
    detail::raise<ConfigError>("QuietHours: start_hour equals end_hour (got ", start_hour, ")");
  }
}

PERKREC_INLINE Timestamp QuietHours::next_allowed(Timestamp t, double utc_offset_hours) const {
  return leave_daily_window(t, std::llround(utc_offset_hours * kSecondsPerHour),
                            static_cast<Timestamp>(start_hour) * kSecondsPerHour,
                            static_cast<Timestamp>(end_hour) * kSecondsPerHour);
}

PERKREC_INLINE void schedule_batch(const PreferenceModel* pref, Span<const Index> members,
                                   Timestamp plan_time, Span<const std::int32_t> validity_days,
                                   const QuietHours* quiet, Span<const float> utc_offset_hours,
                                   Span<Timestamp> send_at, Span<std::int32_t> validity_out,
                                   Span<std::uint8_t> from_model, const ScheduleParams& params,
                                   int num_threads) {
  params.validate();
  if (quiet != nullptr) quiet->validate();
  const std::size_t n = members.size();
  if (validity_days.size() != n || send_at.size() != n || validity_out.size() != n ||
      from_model.size() != n || (!utc_offset_hours.empty() && utc_offset_hours.size() != n)) {
    detail::raise<InputError>(
        "schedule_batch: members, validity_days, utc_offset_hours and the outputs must have ", n,
        " entries (got validity_days ", validity_days.size(), ", utc_offset_hours ",
        utc_offset_hours.size(), ", send_at ", send_at.size(), ")");
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (members[i] < 0)
      detail::raise<InputError>("schedule_batch: members[", i, "] is negative (got ", members[i],
                                ")");
    if (validity_days[i] <= 0) {
      detail::raise<InputError>("schedule_batch: validity_days[", i, "] must be > 0 (got ",
                                validity_days[i], ")");
    }
    if (!utc_offset_hours.empty() && !(std::abs(utc_offset_hours[i]) <= 14.0f)) {
      detail::raise<InputError>("schedule_batch: utc_offset_hours[", i,
                                "] must be within +-14 (got ", utc_offset_hours[i], ")");
    }
  }
  parallel_for(0, static_cast<Offset>(n), num_threads, [&](Offset i) {
    const auto iz = static_cast<std::size_t>(i);
    SendSchedule s = detail::schedule_one(pref, members[iz], plan_time, validity_days[iz], params);
    if (quiet != nullptr)
      s.send_at =
          quiet->next_allowed(s.send_at, utc_offset_hours.empty() ? 0.0 : utc_offset_hours[iz]);
    send_at[iz] = s.send_at;
    validity_out[iz] = s.validity_days;
    from_model[iz] = s.from_model ? 1 : 0;
  });
}

}  // namespace perkrec
