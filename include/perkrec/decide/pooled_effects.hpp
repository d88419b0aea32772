// Pooled (empirical-Bayes) random effects for a member x benefit redemption model.
//
// fit_pooled_effects fits a weighted logistic regression with an optional fixed per-row offset,
// an unpenalized intercept and G groups of random effects:
//    logit P(row) = offset(row) + intercept + sum_g effect_g[level_g(row)],
//    effect_g ~ N(0, variance_g), each group with its own variance estimated from the data.
// The fit alternates, `sweeps` times, one Newton step per group (every level of the group at
// once: gradient and curvature summed over its rows, ridge strength 1 / variance_g) with, after
// `burn_in` sweeps, the Laplace-approximation EM update of each group's variance:
//    variance_g = mean over the levels with rows of (effect^2 + 1 / (curvature + 1 / variance_g)).
// A level with few rows is pulled toward 0 (the group mean on the logit scale), one with many
// keeps what its rows say; a group whose levels do not differ gets a small variance and is
// shrunk away. Levels without rows stay 0.
//
// pooled_redemption builds the groups of a redemption model from logged issues: member,
// member x each benefit attribute given (e.g. kind, channel) and, without a per-row offset,
// benefit; it returns the members x benefits matrix sigmoid(logit base + effects) (base: a
// model's matrix at the plan time, whose per-row predictions at the issue times are the
// offsets) or sigmoid(intercept + benefit + member effects) without a base. Rows flagged
// `held_out` (e.g. the issues after a time cut) are left out of the fit; on them a weighted
// logistic fit with the offset, the intercept and the benefit effect measures the slope c of
// the member effects (member + member x attributes; Newton steps from c = 1, clipped to
// [0, 1]: how much of them holds up on issues they did not see), and the matrix keeps c x
// them. Without held-out rows c = 1.
//
// fit_pooled_member_effects is the same fit on top of a base model without the matrix: the
// intercept, the member effects and the slope (PooledMemberEffects), which apply_row adds to
// any member's row of the base at plan time, as pooled_redemption adds them to the matrix
// (BenefitPlanner stores them in its model file and applies them in plan and answer alike).
//
// KindPreferenceLift and fit_preference_weight: the member x benefit-kind preference of a
// PreferenceModel as one more logit offset. lift(u, b) = log preference[u, "kind:<b's kind>"]
// minus its mean over the benefits (the member's level stays with the redemption model); its
// weight w is fitted (fit_offset_slope, calibration.hpp) on held-out issues with the base
// model's logit at the issue [+ the pooled effects] as the offset, from a preference model
// that did not see those issues (fitted at the base model's cut), and clipped to [0, 1];
// apply_preference_offset adds w x lift to a row.
//
// Errors: mismatched lengths, levels out of range, labels other than 0/1, non-finite or
// negative weights, non-finite offsets, probabilities outside (0, 1) throw InputError naming
// the argument and row, before anything is fitted; bad params ConfigError naming the field.
// Cost: O(sweeps x groups x rows) for the fit (serial, in row order: the result is identical
// for any thread count), O(n_users x n_benefits) for the matrix (parallel over members).
// Thread safety: pure functions.
//
// Example:
//   perkrec::PooledRedemption r = perkrec::pooled_redemption(
//       base, n_users, n_benefits, {kind, channel}, users, benefits, base_at_issue, redeemed,
//       weight, after_cut);
//   // r.probability (row-major n_users x n_benefits), r.fit.variance per group, r.slope
#pragma once

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/params.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/decide/calibration.hpp"

namespace perkrec {

class PreferenceModel;
class Catalog;

struct PooledEffectsParams {
  int sweeps = 30;                ///< backfitting sweeps; >= 1
  int burn_in = 3;                ///< sweeps at the initial variance before it is estimated; >= 0
  double initial_variance = 1.0;  ///< every group's variance at the start; > 0
  double min_variance = 1e-4;     ///< floor of an estimated variance; > 0
  int num_threads = 0;            ///< 0 = OpenMP default (the matrix pass of pooled_redemption)
  static auto param_fields() {
    using P = PooledEffectsParams;
    return std::make_tuple(
        params::field("sweeps", &P::sweeps, params::at_least(1)),
        params::field("burn_in", &P::burn_in, params::at_least(0)),
        params::field("initial_variance", &P::initial_variance, params::above(0)),
        params::field("min_variance", &P::min_variance, params::above(0)),
        params::field("num_threads", &P::num_threads, params::threads()));
  }
  void validate() const;
};

/// One group of random effects: the level of each row, in [0, n_levels).
struct EffectGroup {
  Span<const Index> level;
  Index n_levels = 0;
};

struct PooledEffects {
  double intercept = 0;
  std::vector<std::vector<double>> effects;  ///< per group, n_levels each
  std::vector<double> variance;              ///< per group, as estimated
};

/// See the file comment. `offset` (logit scale) and `sample_weight` may be empty (0 / 1).
PERKREC_INLINE PooledEffects fit_pooled_effects(Span<const double> label, Span<const double> offset,
                                                Span<const double> sample_weight,
                                                const std::vector<EffectGroup>& groups,
                                                const PooledEffectsParams& params = {});

struct PooledRedemption {
  std::vector<float> probability;  ///< row-major n_users x n_benefits
  PooledEffects fit;  ///< groups: [benefit when no base,] member, then member x each attribute
  double slope = 1;   ///< share of the member effects kept (held-out rows); in [0, 1]
};

/// See the file comment. `base` (row-major n_users x n_benefits in (0, 1)) and
/// `base_at_issue` (one per row, in (0, 1)) are both given or both empty;
/// `benefit_attributes`: per attribute, one code per benefit in [0, codes). `held_out`
/// (empty, or one 0/1 flag per row) marks the rows the slope is measured on.
PERKREC_INLINE PooledRedemption
pooled_redemption(Span<const float> base, Index n_users, Index n_benefits,
                  const std::vector<Span<const Index>>& benefit_attributes, Span<const Index> users,
                  Span<const Index> benefits, Span<const double> base_at_issue,
                  Span<const double> redeemed, Span<const double> sample_weight = {},
                  Span<const std::uint8_t> held_out = {}, const PooledEffectsParams& params = {});

/// What pooled_redemption learns on top of a base model, without the matrix:
///   logit P(u, b) = logit base(u, b) + intercept + slope x (member[u]
///                   + sum_a attribute_effect[a][u x n_codes[a] + benefit_code[a][b]]).
struct PooledMemberEffects {
  double intercept = 0;
  double slope = 1;                                   ///< in [0, 1]
  std::vector<double> member;                         ///< n_users
  std::vector<std::vector<Index>> benefit_code;       ///< per attribute, one code per benefit
  std::vector<Index> n_codes;                         ///< per attribute, > every code
  std::vector<std::vector<double>> attribute_effect;  ///< per attribute, n_users x n_codes
  std::vector<double> variance;                       ///< member, then each attribute

  Index n_users() const { return static_cast<Index>(member.size()); }
  Index n_benefits() const {
    return benefit_code.empty() ? 0 : static_cast<Index>(benefit_code[0].size());
  }
  /// intercept + slope x the member effects of (user, benefit) (no range checks).
  double shift(Index user, Index benefit) const;
  /// One member's row of the base (n_benefits values in (0, 1)) in place, exactly as
  /// pooled_redemption computes the matrix. InputError for a row of another length or a user
  /// out of range.
  void apply_row(Span<float> row, Index user) const;
  /// The first inconsistency (shapes, codes out of range, non-finite values) as a message,
  /// or empty.
  std::string check(Index n_users, Index n_benefits) const;
};

/// See the file comment: pooled_redemption's fit with a base (`base_at_issue` required, one
/// per row in (0, 1)), returned as effects to apply instead of a matrix.
PERKREC_INLINE PooledMemberEffects fit_pooled_member_effects(
    Index n_users, Index n_benefits, const std::vector<Span<const Index>>& benefit_attributes,
    Span<const Index> users, Span<const Index> benefits, Span<const double> base_at_issue,
    Span<const double> redeemed, Span<const double> sample_weight = {},
    Span<const std::uint8_t> held_out = {}, const PooledEffectsParams& params = {});

/// The centred member x kind log-preference of a PreferenceModel (see the file comment).
class KindPreferenceLift {
 public:
  KindPreferenceLift() = default;
  /// InputError when the model is not fitted, its benefits are not the catalog's or it has no
  /// "kind:<name>" dimension for a kind of the catalog.
  KindPreferenceLift(const PreferenceModel& model, const Catalog& catalog);
  Index n_users() const { return n_users_; }
  Index n_benefits() const { return static_cast<Index>(benefit_kind_.size()); }
  /// lift(user, b) for every benefit into `out` (n_benefits values); InputError for a user out
  /// of range or a wrong length.
  void row(Index user, Span<double> out) const;

 private:
  Index n_users_ = 0;
  int n_kinds_ = 0;
  std::vector<double> log_preference_;  ///< n_users x n_kinds
  std::vector<int> benefit_kind_;       ///< per benefit, a column of log_preference_
};

/// `row` (n values in (0, 1)) in place: sigmoid(logit clip(row, 1e-6) + weight x lift).
PERKREC_INLINE void apply_preference_offset(Span<float> row, Span<const double> lift,
                                            double weight);

/// The weight of `lift` on held-out issues (rows: users, benefits, the base model's
/// prediction at the issue in (0, 1), redeemed 0/1, optional weights), with the base's
/// logit [+ `pooled`'s shift] as the offset; see fit_offset_slope (default clip [0, 1]).
PERKREC_INLINE OffsetSlope fit_preference_weight(
    const KindPreferenceLift& lift, Span<const Index> users, Span<const Index> benefits,
    Span<const double> base_at_issue, Span<const double> redeemed,
    Span<const double> sample_weight = {}, const PooledMemberEffects* pooled = nullptr,
    const OffsetSlopeParams& params = {});

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/decide/pooled_effects_impl.hpp"
#endif
