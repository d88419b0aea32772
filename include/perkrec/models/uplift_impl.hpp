// Definitions for uplift.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "perkrec/core/error.hpp"
#include "perkrec/core/random.hpp"
#include "perkrec/models/uplift.hpp"

namespace perkrec {

namespace detail {

inline const char* uplift_learner_name(UpliftParams::Learner l) {
  switch (l) {
    case UpliftParams::Learner::t:
      return "t";
    case UpliftParams::Learner::x:
      return "x";
    case UpliftParams::Learner::dr:
      return "dr";
  }
  return "t";
}

// The rows `rows` of X as an owned matrix (values filled with 1 where X has none), so a stage
// can train an FM on one arm's rows.
inline CsrMatrix<float> uplift_take_rows(const CsrView<float>& X, const std::vector<Index>& rows) {
  CsrMatrix<float> out;
  out.rows = static_cast<Index>(rows.size());
  out.cols = X.cols;
  out.indptr.reserve(rows.size() + 1);
  for (Index r : rows) {
    for (Offset e = X.indptr[r]; e < X.indptr[r + 1]; ++e) {
      out.indices.push_back(X.indices[e]);
      out.data.push_back(X.data ? X.data[e] : 1.0f);
    }
    out.indptr.push_back(static_cast<Offset>(out.indices.size()));
  }
  return out;
}

template <class T>
std::vector<T> uplift_gather(Span<const T> values, const std::vector<Index>& rows) {
  std::vector<T> out;
  if (values.empty()) return out;
  out.reserve(rows.size());
  for (Index r : rows) out.push_back(values[static_cast<std::size_t>(r)]);
  return out;
}

// One FM fitted on the rows `rows` of X with labels[rows] (labels indexed like X's rows).
inline FM uplift_fit_stage(const CsrView<float>& X, const std::vector<Index>& rows,
                           Span<const float> labels, Span<const float> sample_weights,
                           const FMParams& params, const Callbacks& callbacks) {
  const CsrMatrix<float> sub = uplift_take_rows(X, rows);
  const std::vector<float> y = uplift_gather(labels, rows);
  const std::vector<float> w = uplift_gather(sample_weights, rows);
  const std::vector<std::int32_t> fields(static_cast<std::size_t>(X.cols), 0);
  FMTarget target;
  target.labels = y;
  target.sample_weights = w;
  FM model(params);
  model.fit(sub.view(), target, fields, 1, nullptr, nullptr, callbacks);
  return model;
}

// Predictions of `model` on the rows `rows` of X, written to out[rows].
inline void uplift_predict_rows(const FM& model, const CsrView<float>& X,
                                const std::vector<Index>& rows, std::vector<float>& out) {
  const CsrMatrix<float> sub = uplift_take_rows(X, rows);
  std::vector<float> p(rows.size());
  model.predict(sub.view(), p);
  for (std::size_t i = 0; i < rows.size(); ++i) out[static_cast<std::size_t>(rows[i])] = p[i];
}

inline std::vector<float> uplift_predict_all(const FM& model, const CsrView<float>& X) {
  std::vector<float> p(static_cast<std::size_t>(X.rows));
  model.predict(X, p);
  return p;
}

// Seed streams of the stages (see UpliftModel::stage_params).
enum UpliftStage : std::uint64_t {
  kUpliftOutcome = 1,
  kUpliftCrossFit = 2,
  kUpliftEffect = 3,
  kUpliftControlEffect = 4,
  kUpliftPropensity = 5,
  kUpliftFolds = 6,
};

}  // namespace detail

// ---- params -----------------------------------------------------------------------------------

PERKREC_INLINE void UpliftParams::validate() const {
  params::validate_fields(*this, "UpliftParams");
  if (base.loss != FMParams::Loss::logistic) {
    detail::raise<ConfigError>("UpliftParams: base.loss must be logistic (got ",
                               detail::fm_loss_name(base.loss),
                               "; the effect models set the squared loss themselves)");
  }
  if (base.early_stopping_rounds != 0) {
    detail::raise<ConfigError>("UpliftParams: base.early_stopping_rounds must be 0 (got ",
                               base.early_stopping_rounds, "; the stages have no validation rows)");
  }
}
PERKREC_INLINE Json UpliftParams::to_json() const { return params::fields_to_json(*this); }
PERKREC_INLINE UpliftParams UpliftParams::from_json(const Json& j) {
  return params::fields_from_json<UpliftParams>(j, "UpliftParams::from_json");
}

// ---- model ------------------------------------------------------------------------------------

PERKREC_INLINE UpliftModel::UpliftModel(UpliftParams params) : params_(params) {
  params_.validate();
}

PERKREC_INLINE FMParams UpliftModel::stage_params(FMParams::Loss loss, std::uint64_t stage,
                                                  std::uint64_t arm, std::uint64_t fold) const {
  FMParams p = params_.base;
  p.loss = loss;
  Rng rng(params_.base.seed, 0x55504c4654ULL + stage, arm * 64 + fold);
  p.seed = rng.next_u64();
  return p;
}

PERKREC_INLINE void UpliftModel::require_fitted(const char* method) const {
  if (!fitted_) detail::raise<InputError>("UpliftModel::", method, ": the model is not fitted");
}

PERKREC_INLINE void UpliftModel::check_rows(const CsrView<float>& X, Span<float> out,
                                            std::size_t columns, const char* method) const {
  require_fitted(method);
  const std::string what = std::string("UpliftModel::") + method + ": X";
  X.validate(what.c_str());
  if (X.cols != n_features_) {
    detail::raise<InputError>("UpliftModel::", method, ": X has ", X.cols,
                              " feature columns (expected ", n_features_, ")");
  }
  const std::size_t expected = static_cast<std::size_t>(X.rows) * columns;
  if (out.size() != expected) {
    detail::raise<InputError>("UpliftModel::", method, ": out has ", out.size(),
                              " entries (expected rows x ", columns, " = ", expected, ")");
  }
}

PERKREC_INLINE void UpliftModel::fit(const CsrView<float>& X, const UpliftTarget& t,
                                     const Callbacks& callbacks) {
  // Validate everything before touching the model.
  X.validate("UpliftModel::fit: X");
  const auto rows = static_cast<std::size_t>(X.rows);
  auto check_size = [&](std::size_t size, const char* field, bool optional) {
    if ((optional && size == 0) || size == rows) return;
    detail::raise<InputError>("UpliftModel::fit: ", field, " has ", size,
                              " entries (expected one per row of X: ", rows, ")");
  };
  check_size(t.outcome.size(), "outcome", false);
  check_size(t.treatment.size(), "treatment", false);
  check_size(t.propensity.size(), "propensity", true);
  check_size(t.sample_weights.size(), "sample_weights", true);
  if (rows == 0) detail::raise<InputError>("UpliftModel::fit: X has no rows");
  std::int32_t max_code = 0;
  for (std::size_t i = 0; i < rows; ++i) {
    const float y = t.outcome[i];
    if (y != 0.0f && y != 1.0f) {
      detail::raise<InputError>("UpliftModel::fit: outcome at position ", i,
                                " must be 0 or 1 (got ", y, ")");
    }
    if (t.treatment[i] < 0) {
      detail::raise<InputError>("UpliftModel::fit: treatment at position ", i, " is negative (got ",
                                t.treatment[i], ", expected 0 = control or 1..K = arm)");
    }
    max_code = std::max(max_code, t.treatment[i]);
  }
  if (max_code == 0) {
    detail::raise<InputError>(
        "UpliftModel::fit: treatment has no treated rows (got only code 0, "
        "expected codes 1..K for the arms)");
  }
  if (static_cast<std::size_t>(max_code) >= rows) {
    detail::raise<InputError>("UpliftModel::fit: treatment code ", max_code,
                              " is unknown: arms 0..", max_code, " cannot all have rows among ",
                              rows, " rows");
  }
  std::vector<Index> arm_rows(static_cast<std::size_t>(max_code) + 1, 0);
  for (std::size_t i = 0; i < rows; ++i) ++arm_rows[static_cast<std::size_t>(t.treatment[i])];
  const Index needed = params_.learner == UpliftParams::Learner::dr ? params_.cross_fit_folds : 1;
  for (std::size_t k = 0; k < arm_rows.size(); ++k) {
    if (arm_rows[k] < needed) {
      detail::raise<InputError>(
          "UpliftModel::fit: treatment arm ", k, " has ", arm_rows[k], " rows (expected at least ",
          needed, "; codes are 0 = control and 1..K without gaps, K = ", max_code,
          needed > 1 ? ", and DR cross-fitting needs one row per fold" : "", ")");
    }
  }
  for (std::size_t i = 0; i < t.propensity.size(); ++i) {
    const float p = t.propensity[i];
    if (!(p > 0.0f && p <= 1.0f)) {
      detail::raise<InputError>("UpliftModel::fit: propensity at position ", i,
                                " must be in (0, 1] (got ", p, ")");
    }
  }
  for (std::size_t i = 0; i < t.sample_weights.size(); ++i) {
    const float w = t.sample_weights[i];
    if (!(w >= 0.0f) || !std::isfinite(w)) {
      detail::raise<InputError>("UpliftModel::fit: sample_weights at position ", i,
                                " must be finite and >= 0 (got ", w, ")");
    }
  }

  UpliftModel trial(params_);
  trial.n_arms_ = max_code;
  trial.n_features_ = X.cols;
  trial.arm_shares_.resize(arm_rows.size());
  for (std::size_t k = 0; k < arm_rows.size(); ++k) {
    trial.arm_shares_[k] = static_cast<double>(arm_rows[k]) / static_cast<double>(rows);
  }
  switch (params_.learner) {
    case UpliftParams::Learner::t:
      trial.fit_t(X, t, callbacks);
      break;
    case UpliftParams::Learner::x:
      trial.fit_x(X, t, callbacks);
      break;
    case UpliftParams::Learner::dr:
      trial.fit_dr(X, t, callbacks);
      break;
  }
  trial.fitted_ = true;
  *this = std::move(trial);
}

PERKREC_INLINE std::vector<float> UpliftModel::arm_propensities(const UpliftTarget& t) {
  const std::size_t rows = t.treatment.size();
  std::vector<float> e(rows);
  propensities_clipped_ = 0;
  const float lo = params_.propensity_clip, hi = 1.0f - params_.propensity_clip;
  for (std::size_t i = 0; i < rows; ++i) {
    if (t.propensity.empty()) {
      e[i] = static_cast<float>(arm_shares_[static_cast<std::size_t>(t.treatment[i])]);
      continue;
    }
    const float p = t.propensity[i];
    if (p < lo || p > hi) ++propensities_clipped_;
    e[i] = std::clamp(p, lo, hi);
  }
  return e;
}

PERKREC_INLINE void UpliftModel::fit_t(const CsrView<float>& X, const UpliftTarget& t,
                                       const Callbacks& cb) {
  std::vector<std::vector<Index>> by_arm(static_cast<std::size_t>(n_arms_) + 1);
  for (Index i = 0; i < X.rows; ++i) by_arm[static_cast<std::size_t>(t.treatment[i])].push_back(i);
  outcome_.clear();
  for (std::size_t j = 0; j < by_arm.size(); ++j) {
    outcome_.push_back(detail::uplift_fit_stage(
        X, by_arm[j], t.outcome, t.sample_weights,
        stage_params(FMParams::Loss::logistic, detail::kUpliftOutcome, j, 0), cb));
  }
  (void)arm_propensities(t);  // reports the clipped count
}

PERKREC_INLINE void UpliftModel::fit_x(const CsrView<float>& X, const UpliftTarget& t,
                                       const Callbacks& cb) {
  fit_t(X, t, cb);
  const std::size_t rows = static_cast<std::size_t>(X.rows);
  const bool model_g = params_.fit_propensity || !t.propensity.empty();
  std::vector<Index> control;
  for (Index i = 0; i < X.rows; ++i) {
    if (t.treatment[i] == 0) control.push_back(i);
  }
  std::vector<float> imputed(rows), is_arm(rows);
  for (std::int32_t k = 1; k <= n_arms_; ++k) {
    const auto kk = static_cast<std::size_t>(k);
    std::vector<Index> treated, pair;
    for (Index i = 0; i < X.rows; ++i) {
      if (t.treatment[i] == k) treated.push_back(i);
      if (t.treatment[i] == k || t.treatment[i] == 0) pair.push_back(i);
    }
    // D1 = y - mu_0(x) on arm k; D0 = mu_k(x) - y on control.
    detail::uplift_predict_rows(outcome_[0], X, treated, imputed);
    for (Index i : treated) imputed[i] = t.outcome[i] - imputed[i];
    detail::uplift_predict_rows(outcome_[kk], X, control, imputed);
    for (Index i : control) imputed[i] = imputed[i] - t.outcome[i];
    effect_.push_back(detail::uplift_fit_stage(
        X, treated, imputed, t.sample_weights,
        stage_params(FMParams::Loss::squared, detail::kUpliftEffect, kk, 0), cb));
    control_effect_.push_back(detail::uplift_fit_stage(
        X, control, imputed, t.sample_weights,
        stage_params(FMParams::Loss::squared, detail::kUpliftControlEffect, kk, 0), cb));
    if (model_g) {
      for (Index i : pair) is_arm[i] = t.treatment[i] == k ? 1.0f : 0.0f;
      propensity_.push_back(detail::uplift_fit_stage(
          X, pair, is_arm, t.sample_weights,
          stage_params(FMParams::Loss::logistic, detail::kUpliftPropensity, kk, 0), cb));
    }
  }
}

PERKREC_INLINE void UpliftModel::fit_dr(const CsrView<float>& X, const UpliftTarget& t,
                                        const Callbacks& cb) {
  const std::size_t rows = static_cast<std::size_t>(X.rows);
  const std::size_t arms = static_cast<std::size_t>(n_arms_) + 1;
  const int folds = params_.cross_fit_folds;
  std::vector<std::vector<Index>> by_arm(arms);
  for (Index i = 0; i < X.rows; ++i) by_arm[static_cast<std::size_t>(t.treatment[i])].push_back(i);
  // Folds stratified by arm: each arm's rows in a seeded random order, dealt round-robin, so
  // every fold's complement holds rows of every arm.
  std::vector<int> fold(rows, 0);
  for (std::size_t j = 0; j < arms; ++j) {
    std::vector<Index> order = by_arm[j];
    Rng rng(params_.base.seed, 0x55504c4654ULL + detail::kUpliftFolds, j);
    for (std::size_t i = order.size(); i > 1; --i) {
      std::swap(order[i - 1], order[rng.next_u64() % i]);
    }
    for (std::size_t i = 0; i < order.size(); ++i) {
      fold[static_cast<std::size_t>(order[i])] =
          static_cast<int>(i % static_cast<std::size_t>(folds));
    }
  }
  // Outcome models on all rows: the final mu_j (predict_outcomes), and the nuisance models
  // themselves when there is no cross-fitting.
  fit_t(X, t, cb);
  std::vector<std::vector<float>> mu(arms, std::vector<float>(rows));
  if (folds == 1) {
    for (std::size_t j = 0; j < arms; ++j) mu[j] = detail::uplift_predict_all(outcome_[j], X);
  } else {
    for (int f = 0; f < folds; ++f) {
      std::vector<Index> held_out;
      for (Index i = 0; i < X.rows; ++i) {
        if (fold[static_cast<std::size_t>(i)] == f) held_out.push_back(i);
      }
      for (std::size_t j = 0; j < arms; ++j) {
        std::vector<Index> train;
        for (Index i : by_arm[j]) {
          if (fold[static_cast<std::size_t>(i)] != f) train.push_back(i);
        }
        const FM nuisance =
            detail::uplift_fit_stage(X, train, t.outcome, t.sample_weights,
                                     stage_params(FMParams::Loss::logistic, detail::kUpliftCrossFit,
                                                  j, static_cast<std::uint64_t>(f)),
                                     cb);
        detail::uplift_predict_rows(nuisance, X, held_out, mu[j]);
      }
    }
  }
  const std::vector<float> e = arm_propensities(t);
  std::vector<Index> all(rows);
  std::iota(all.begin(), all.end(), Index{0});
  std::vector<float> pseudo(rows);
  for (std::size_t k = 1; k < arms; ++k) {
    for (std::size_t i = 0; i < rows; ++i) {
      const auto arm = static_cast<std::size_t>(t.treatment[i]);
      double v = static_cast<double>(mu[k][i]) - mu[0][i];
      const double residual = static_cast<double>(t.outcome[i]) - mu[arm][i];
      if (arm == k)
        v += residual / e[i];
      else if (arm == 0)
        v -= residual / e[i];
      pseudo[i] = static_cast<float>(v);
    }
    effect_.push_back(detail::uplift_fit_stage(
        X, all, pseudo, t.sample_weights,
        stage_params(FMParams::Loss::squared, detail::kUpliftEffect, k, 0), cb));
  }
}

PERKREC_INLINE void UpliftModel::predict_outcomes(const CsrView<float>& X, Span<float> out) const {
  const std::size_t arms = static_cast<std::size_t>(n_arms_) + 1;
  check_rows(X, out, fitted_ ? arms : 0, "predict_outcomes");
  for (std::size_t j = 0; j < arms; ++j) {
    const std::vector<float> p = detail::uplift_predict_all(outcome_[j], X);
    for (std::size_t i = 0; i < p.size(); ++i) out[i * arms + j] = p[i];
  }
}

PERKREC_INLINE void UpliftModel::predict(const CsrView<float>& X, Span<float> out) const {
  const auto K = static_cast<std::size_t>(n_arms_);
  check_rows(X, out, K, "predict");
  const std::size_t rows = static_cast<std::size_t>(X.rows);
  if (params_.learner == UpliftParams::Learner::t) {
    const std::vector<float> mu0 = detail::uplift_predict_all(outcome_[0], X);
    for (std::size_t k = 1; k <= K; ++k) {
      const std::vector<float> muk = detail::uplift_predict_all(outcome_[k], X);
      for (std::size_t i = 0; i < rows; ++i) out[i * K + k - 1] = muk[i] - mu0[i];
    }
    return;
  }
  if (params_.learner == UpliftParams::Learner::dr) {
    for (std::size_t k = 1; k <= K; ++k) {
      const std::vector<float> tau = detail::uplift_predict_all(effect_[k - 1], X);
      for (std::size_t i = 0; i < rows; ++i) out[i * K + k - 1] = tau[i];
    }
    return;
  }
  const float lo = params_.propensity_clip, hi = 1.0f - params_.propensity_clip;
  for (std::size_t k = 1; k <= K; ++k) {
    const std::vector<float> tau1 = detail::uplift_predict_all(effect_[k - 1], X);
    const std::vector<float> tau0 = detail::uplift_predict_all(control_effect_[k - 1], X);
    std::vector<float> g;
    if (!propensity_.empty()) {
      g = detail::uplift_predict_all(propensity_[k - 1], X);
      for (float& v : g) v = std::clamp(v, lo, hi);
    } else {
      g.assign(rows, static_cast<float>(arm_shares_[k] / (arm_shares_[k] + arm_shares_[0])));
    }
    for (std::size_t i = 0; i < rows; ++i) {
      out[i * K + k - 1] = g[i] * tau0[i] + (1.0f - g[i]) * tau1[i];
    }
  }
}

// ---- model file -------------------------------------------------------------------------------

namespace detail {
// The nested FMs: group name + "_" + index, written with prefix + "<group>_<i>.".
inline constexpr const char* kUpliftGroups[] = {"outcome", "effect", "control_effect",
                                                "propensity"};

inline std::string uplift_section(const std::string& prefix, const char* name, std::size_t i) {
  return concat(prefix, name, "_", i, ".");
}
}  // namespace detail

PERKREC_INLINE void UpliftModel::write(ModelWriter& w, const std::string& prefix) const {
  require_fitted("save");
  Json& c = content_section(w, prefix);
  c["params"] = params_.to_json();
  c["n_arms"] = n_arms_;
  c["n_features"] = n_features_;
  c["propensities_clipped"] = propensities_clipped_;
  c["propensity_models"] = !propensity_.empty();
  w.add(prefix + "arm_shares", arm_shares_);
  const std::vector<FM>* groups[] = {&outcome_, &effect_, &control_effect_, &propensity_};
  for (std::size_t g = 0; g < 4; ++g) {
    for (std::size_t i = 0; i < groups[g]->size(); ++i) {
      (*groups[g])[i].write(w, detail::uplift_section(prefix, detail::kUpliftGroups[g], i));
    }
  }
}

PERKREC_INLINE UpliftModel UpliftModel::read(const ModelReader& r, const std::string& prefix) {
  const Json& c = content_section(r, prefix);
  JsonReader<ModelFormatError> jr(c, content_pointer(prefix), "UpliftModel::read");
  Json params_json;
  std::int32_t n_arms = 0;
  Index n_features = 0, clipped = 0;
  bool propensity_models = false;
  jr.require("params", params_json);
  jr.require("n_arms", n_arms);
  jr.require("n_features", n_features);
  jr.require("propensities_clipped", clipped);
  jr.require("propensity_models", propensity_models);
  if (n_arms < 1 || n_arms > 65535 || n_features < 0 || clipped < 0) {
    r.bad_content("bad shape (n_arms < 1, n_features < 0 or propensities_clipped < 0)");
  }
  // With prefix "" the nested FMs' sections are keys of this object.
  if (prefix.empty()) {
    for (const char* name : detail::kUpliftGroups) {
      for (std::size_t i = 0; i <= static_cast<std::size_t>(n_arms); ++i) {
        (void)jr.raw(detail::uplift_section(prefix, name, i).c_str());
      }
    }
  }
  jr.finish();
  const UpliftParams params = read_params<UpliftParams>(r, params_json);
  UpliftModel model(params);
  model.n_arms_ = n_arms;
  model.n_features_ = n_features;
  model.propensities_clipped_ = clipped;
  const auto arms = static_cast<std::size_t>(n_arms) + 1;
  model.arm_shares_ = r.vector<double>(prefix + "arm_shares", {static_cast<std::int64_t>(arms)});
  for (double s : model.arm_shares_) {
    if (!(s > 0.0 && s <= 1.0)) r.invalid("arm share outside (0, 1]");
  }
  const bool is_x = params.learner == UpliftParams::Learner::x;
  const bool is_dr = params.learner == UpliftParams::Learner::dr;
  if (propensity_models && !is_x) r.invalid("propensity models stored for a learner without them");
  auto read_group = [&](const char* name, std::size_t count, FMParams::Loss loss,
                        std::vector<FM>& out) {
    for (std::size_t i = 0; i < count; ++i) {
      FM m = FM::read(r, detail::uplift_section(prefix, name, i));
      if (m.n_features() != n_features || m.params().loss != loss) {
        r.invalid(detail::concat(name, " model ", i, " does not match (features or loss)"));
      }
      out.push_back(std::move(m));
    }
  };
  const std::size_t K = static_cast<std::size_t>(n_arms);
  read_group("outcome", arms, FMParams::Loss::logistic, model.outcome_);
  read_group("effect", is_x || is_dr ? K : 0, FMParams::Loss::squared, model.effect_);
  read_group("control_effect", is_x ? K : 0, FMParams::Loss::squared, model.control_effect_);
  read_group("propensity", propensity_models ? K : 0, FMParams::Loss::logistic, model.propensity_);
  model.fitted_ = true;
  return model;
}

}  // namespace perkrec
