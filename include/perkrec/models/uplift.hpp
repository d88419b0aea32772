// Uplift (heterogeneous treatment effect) models: how much sending a benefit of kind k changes a
// member's probability of a binary outcome (a visit, a redemption, a purchase), as a function of
// the member's sparse feature row. Meta-learners over perkrec's FM:
//
//   T-learner   one outcome model mu_j(x) = P(y = 1 | x, arm j) per arm j = 0 (control), 1..K;
//               uplift_k(x) = mu_k(x) - mu_0(x).
//   X-learner   stage 1 = the T-learner; imputed effects D = y - mu_0(x) on rows of arm k and
//               D = mu_k(x) - y on control rows; stage 2 regresses D on x (FM, squared loss)
//               separately on the two groups (tau1_k, tau0_k) and combines them with the
//               propensity g_k(x) of arm k against control: tau_k = g_k tau0_k + (1 - g_k) tau1_k.
//   DR-learner  pseudo-outcome (mu_k - mu_0) + (1[T = k] / e_k - 1[T = 0] / e_0) (y - mu_T) on
//               every row (the correction is 0 on rows of other arms), regressed on x (FM,
//               squared loss). The outcome models behind the pseudo-outcomes are cross-fitted:
//               rows are split into `cross_fit_folds` folds (seeded, stratified by arm) and each
//               row's mu_j come from models that never saw it.
//
// Treatment codes: 0 = control, 1..K = treatment arms (benefit kinds); K is the largest code in
// the training data and every arm 0..K needs rows. Binary treatment is K = 1.
//
// Propensities: `propensity[i]`, when given, is the logged probability that row i received the
// arm it received (in (0, 1]); it is clipped to [propensity_clip, 1 - propensity_clip] and the
// number clipped is reported (propensities_clipped()). Without it the arms' shares of the
// training rows are used (a randomized experiment). The X-learner needs g_k(x) at prediction
// time, which logged per-row probabilities cannot give: it uses the arm share within (0, k),
// or, when propensities were logged or fit_propensity is set, a logistic FM of 1[T = k] on the
// rows of arms 0 and k (clipped like the logged ones).
//
// Sample weights (optional, >= 0) weight every stage's FM fit (the FM supports them natively).
// Inverse-propensity weighting of the outcome models is sample_weights = 1 / propensity, the
// caller's choice; the DR-learner uses the propensities in its pseudo-outcomes instead.
//
// Base learner: `base` (FMParams) configures every FM of every stage; the outcome and propensity
// models use the logistic loss, the effect models of X and DR the squared loss. A plain logistic
// regression is base.init_std = 0: the factor gradients then vanish and the factors stay 0.
//
// Cost: T fits K + 1 FMs on disjoint row sets (one pass over the data per epoch in all); X adds
// 2K effect FMs on the same rows (and K propensity FMs when fitted); DR fits the K + 1 outcome
// models cross_fit_folds + 1 times (once per fold on the other folds, once on all rows for
// predict_outcomes) and K effect FMs on all rows. predict costs (K + 1) (T), 3K + 1 (X) or K
// FM evaluations per row.
//
// Determinism: each FM gets its own seed derived from (base.seed, stage, arm, fold) and folds are
// drawn from seeded per-arm streams; results are bit-reproducible with base.num_threads = 1 (the
// FM default) and differ slightly between runs with more threads (Hogwild SGD).
//
// Example:
//   perkrec::UpliftParams p;
//   p.learner = perkrec::UpliftParams::Learner::dr;
//   p.base.factors = 8;
//   perkrec::UpliftModel model(p);
//   model.fit(X, outcome, treatment);               // X: CsrView<float>, rows = members
//   std::vector<float> uplift(X.rows * model.n_arms());
//   model.predict(X, uplift);                       // row-major rows x K
//
// Thread safety: fit needs exclusive access; predict, predict_outcomes and save are const and
// safe from any number of threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/json.hpp"
#include "perkrec/core/params.hpp"
#include "perkrec/core/progress.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/io/serializable.hpp"
#include "perkrec/models/fm.hpp"

namespace perkrec {

struct UpliftParams {
  enum class Learner : std::uint8_t { t, x, dr };

  Learner learner = Learner::t;  ///< "t", "x" or "dr" (see the file comment)
  /// Every stage's FM; base.loss must be logistic (the effect models switch to squared) and
  /// base.early_stopping_rounds 0.
  FMParams base;
  float propensity_clip = 0.01f;  ///< propensities clipped to [clip, 1 - clip]; in [0, 0.5)
  int cross_fit_folds = 2;        ///< DR: folds for the outcome models; 1 = in-sample; in [1, 10]
  bool fit_propensity = false;    ///< X: model g_k(x) with a logistic FM even without logged
                                  ///< propensities (default: the arm share)

  static auto param_fields() {
    using P = UpliftParams;
    static constexpr params::EnumName<Learner> kLearners[] = {
        {Learner::t, "t"}, {Learner::x, "x"}, {Learner::dr, "dr"}};
    return std::make_tuple(
        params::field("learner", &P::learner, kLearners), params::nested("base", &P::base),
        params::field("propensity_clip", &P::propensity_clip, params::closed_open(0, 0.5)),
        params::field("cross_fit_folds", &P::cross_fit_folds, params::closed(1, 10)),
        params::field("fit_propensity", &P::fit_propensity));
  }
  void validate() const;
  Json to_json() const;
  /// Strict: unknown keys and bad values throw ConfigError naming the JSON pointer.
  static UpliftParams from_json(const Json& j);
};

/// One training set: outcome, treatment arm and optional extras per row.
struct UpliftTarget {
  Span<const float> outcome;           ///< one per row, 0 or 1
  Span<const std::int32_t> treatment;  ///< one per row: 0 = control, 1..K = arm
  Span<const float> propensity;        ///< empty, or the logged P(observed arm | x) in (0, 1]
  Span<const float> sample_weights;    ///< empty = all 1; else finite and >= 0 per row
};

class UpliftModel : public Serializable<UpliftModel> {
 public:
  static constexpr const char* kind = "UpliftModel";

  explicit UpliftModel(UpliftParams params = {});

  /// Fits the learner on rows X (X.cols features). Validates everything first (InputError
  /// naming the field: outcome, treatment, propensity, sample_weights, X); on any error —
  /// including a DivergenceError of a stage — the model is left as it was.
  void fit(const CsrView<float>& X, const UpliftTarget& target, const Callbacks& callbacks = {});

  /// Estimated uplift of each arm against control, row-major X.rows x n_arms():
  /// out[r * K + (k - 1)] = estimated P(y | x_r, arm k) - P(y | x_r, control).
  void predict(const CsrView<float>& X, Span<float> out) const;
  /// Per-arm response probabilities of the outcome models, row-major X.rows x (n_arms() + 1),
  /// column 0 = control.
  void predict_outcomes(const CsrView<float>& X, Span<float> out) const;

  bool fitted() const { return fitted_; }
  const UpliftParams& params() const { return params_; }
  Json get_params() const { return params_.to_json(); }
  /// Number of treatment arms K (treatment codes 1..K); 0 before fit.
  std::int32_t n_arms() const { return n_arms_; }
  Index n_features() const { return n_features_; }
  /// Share of the training rows in each arm 0..K.
  const std::vector<double>& arm_shares() const { return arm_shares_; }
  /// Logged propensities clipped to [clip, 1 - clip] in the last fit.
  Index propensities_clipped() const { return propensities_clipped_; }

  void write(ModelWriter& w, const std::string& prefix) const;
  static UpliftModel read(const ModelReader& r, const std::string& prefix);

 private:
  void require_fitted(const char* method) const;
  void check_rows(const CsrView<float>& X, Span<float> out, std::size_t columns,
                  const char* method) const;
  FMParams stage_params(FMParams::Loss loss, std::uint64_t stage, std::uint64_t arm,
                        std::uint64_t fold) const;
  void fit_t(const CsrView<float>& X, const UpliftTarget& t, const Callbacks& cb);
  void fit_x(const CsrView<float>& X, const UpliftTarget& t, const Callbacks& cb);
  void fit_dr(const CsrView<float>& X, const UpliftTarget& t, const Callbacks& cb);
  std::vector<float> arm_propensities(const UpliftTarget& t);

  UpliftParams params_;
  bool fitted_ = false;
  std::int32_t n_arms_ = 0;
  Index n_features_ = 0;
  std::vector<double> arm_shares_;
  Index propensities_clipped_ = 0;
  std::vector<FM> outcome_;         // mu_0..mu_K
  std::vector<FM> effect_;          // X: tau1_1..tau1_K; DR: tau_1..tau_K
  std::vector<FM> control_effect_;  // X: tau0_1..tau0_K
  std::vector<FM> propensity_;      // X with a fitted g: g_1..g_K
};

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/models/uplift_impl.hpp"
#endif
