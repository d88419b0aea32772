// Calibration of a member x benefit redemption-probability matrix for an optimizer that picks
// each member's maxima.
//
// A model's P(member u redeems benefit b) is fitted on the pairs a logging policy issued; the
// planner scores every pair and keeps the ones it is most optimistic about, so the noise in
// the member x benefit interaction is what it buys (on the simulator: chosen pairs predicted
// 0.25, true 0.13). shrink_interactions splits the logit of the matrix into an additive part
//    A(u, b) = mean_b' logit P(u, b') + mean_u' logit P(u', b) - mean logit P
// and the interaction logit P(u, b) - A(u, b), measures on held-out logged issues (the model's
// prediction for each, whether it was redeemed, an optional weight such as a clipped inverse
// propensity) the slope c of the interaction in a weighted logistic fit with offset A (Newton
// steps from c = 1, then clipped to [0, 1]), and returns sigmoid(A + c (logit P - A)).
// c = 1 keeps the matrix; c = 0 keeps only member and benefit effects.
//
// Errors: probabilities outside (0, 1) or non-finite, mismatched lengths, members or benefits
// out of range, labels other than 0/1, negative weights throw InputError naming the argument
// and row; bad params ConfigError naming the field. Cost: O(n_users x n_benefits + rows x
// iterations); the matrix passes run in parallel over members, the fit serially in row order,
// so the result is identical for any thread count. Thread safety: a pure function.
//
// fit_offset_slope is the one-parameter fit these slopes share, for any covariate x: the c of
// a weighted logistic regression logit P(row) = offset(row) + c x(row), Newton steps from
// `start`, clipped to [lower, upper] (what the held-out issues say about how much of x to
// add on top of a model whose logit is the offset). Pure, serial, in row order.
//
// issue_weights are the weights these fits (and a redemption model's training) give logged
// issues so that they stand for every (member, benefit) pair rather than the ones the logging
// policy favoured: w = 1 / propensity, capped at its `clip` quantile (numpy's linear
// quantile), divided by the mean (numpy's pairwise sum), so they average 1. Identical to the
// numpy reference bit for bit. Pure, serial, O(rows).
//
// benefit_levels is a per-benefit level correction of a redemption model, measured on the
// same held-out issues, relative to their overall level: with Y_b and E_b the weighted sums of
// redemptions and of the model's predictions over benefit b's held-out issues and K = sum Y /
// sum E, the factor of benefit b is ((Y_b + m K) / (E_b + m)) / K (m = `prior`, pseudo
// expected redemptions at the overall level). Dividing by K leaves out what every held-out
// issue shares (the held-out window's season: its issues redeem 1.0-1.3x the plan time's
// rates on the simulator), so only how benefits differ from each other is kept; benefits
// with few held-out issues stay near 1. apply_benefit_levels multiplies one member's row by
// them (capped below 1). Pure, serial, O(rows + n_benefits).
//
// pilot_level is the level of P on a plan's own pairs, measured by a pilot wave (test and
// scale: the plan issued to a random share of members first): with E = sum P x cost and O =
// sum redeemed x cost over the pilot's issued pairs and c = E / sum P (the mean cost of an
// expected redemption), level = (O + m c) / (E + m c) (m = `prior`, pseudo expected
// redemptions at level 1). Held-out logged issues do not predict this level: the optimizer
// picks the pairs P is most optimistic about (BENCHMARKS.md, "The plan's true spend against
// its target"). Its standard error is the delta method's for the ratio with E fixed by the
// model: sqrt(sum cost^2 q (1 - q)) / (E + m c), q = min(level x P, 1), and the interval
// level -/+ z se (lower clipped at 0). Multiply the rest's P by `level`
// (BenefitPlanner::plan's PlanScope::level). Pure, serial, O(rows).
//
// Example:
//   std::vector<float> w = perkrec::issue_weights(logged_propensity);  // clip 0.99
//   perkrec::InteractionShrinkage s = perkrec::shrink_interactions(
//       P, n_users, n_benefits, held_users, held_benefits, held_predicted, held_redeemed);
//   // s.probability (row-major n_users x n_benefits), s.slope
//   perkrec::PilotLevel l = perkrec::pilot_level(pilot_p, pilot_redeemed, pilot_cost);
//   // l.level (and l.lower, l.upper): the rest's PlanScope::level
#pragma once

#include <cstdint>
#include <tuple>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/params.hpp"
#include "perkrec/core/types.hpp"

namespace perkrec {

struct InteractionShrinkParams {
  int iterations = 30;  ///< Newton steps for the slope; >= 1
  int num_threads = 0;  ///< 0 = OpenMP default
  static auto param_fields() {
    using P = InteractionShrinkParams;
    return std::make_tuple(params::field("iterations", &P::iterations, params::at_least(1)),
                           params::field("num_threads", &P::num_threads, params::threads()));
  }
  void validate() const;
};

struct InteractionShrinkage {
  std::vector<float> probability;  ///< the shrunk matrix, row-major n_users x n_benefits
  double slope = 1;                ///< share of the interaction kept, in [0, 1]
};

/// See the file comment. `probability` is row-major n_users x n_benefits; `users`,
/// `benefits`, `predicted`, `redeemed` and (when not empty) `sample_weight` describe the
/// held-out issues, one row each.
PERKREC_INLINE InteractionShrinkage shrink_interactions(
    Span<const double> probability, Index n_users, Index n_benefits, Span<const Index> users,
    Span<const Index> benefits, Span<const double> predicted, Span<const double> redeemed,
    Span<const double> sample_weight = {}, const InteractionShrinkParams& params = {});

/// What the shrinkage of one matrix learned: the per-benefit means of logit P, their grand
/// mean and the slope; shrink_row applies it to one member's row of the same kind.
struct InteractionMeans {
  std::vector<double> benefit_mean;
  double grand_mean = 0;
  double slope = 1;
};

/// One member's row (n_benefits probabilities in (0, 1)) shrunk in place as
/// shrink_interactions shrinks the rows of the matrix `means` came from (the member mean from
/// the row itself). InputError for a row of another length or values outside (0, 1).
PERKREC_INLINE void shrink_row(Span<float> row, const InteractionMeans& means);

/// The same on a float32 matrix, shrunk in place (no float64 copy of the matrix: what
/// BenefitPlanner uses for members x benefits at scale). The values are read as doubles, so
/// the result equals shrink_interactions on the matrix converted to float64. Returns the slope.
/// `means` (optional) receives what shrink_row needs.
PERKREC_INLINE double shrink_interactions_in_place(
    Span<float> probability, Index n_users, Index n_benefits, Span<const Index> users,
    Span<const Index> benefits, Span<const double> predicted, Span<const double> redeemed,
    Span<const double> sample_weight = {}, const InteractionShrinkParams& params = {},
    InteractionMeans* means = nullptr);

struct OffsetSlopeParams {
  int iterations = 30;  ///< Newton steps; >= 1 (stops early when a step is below 1e-10)
  double start = 0;     ///< the first c; finite
  double lower = 0;     ///< the fitted c is clipped to [lower, upper]; finite, <= upper
  double upper = 1;     ///< finite
  static auto param_fields() {
    using P = OffsetSlopeParams;
    return std::make_tuple(params::field("iterations", &P::iterations, params::at_least(1)),
                           params::field("start", &P::start, params::any()),
                           params::field("lower", &P::lower, params::any()),
                           params::field("upper", &P::upper, params::any()));
  }
  void validate() const;  ///< also ConfigError when lower > upper
};

struct OffsetSlope {
  double slope = 0;      ///< clipped to [lower, upper]
  double unclipped = 0;  ///< where the Newton steps ended
};

/// See the file comment. `offset` (logit scale), `x` and `label` (0/1) one value per row,
/// `sample_weight` empty (all 1) or one finite weight >= 0 per row. InputError naming the
/// argument and row for bad values or lengths, or no rows; ConfigError for bad params.
PERKREC_INLINE OffsetSlope fit_offset_slope(Span<const double> offset, Span<const double> x,
                                            Span<const double> label,
                                            Span<const double> sample_weight = {},
                                            const OffsetSlopeParams& params = {});

struct BenefitLevelParams {
  double prior = 50;  ///< pseudo expected redemptions pulling each factor toward 1; > 0
  static auto param_fields() {
    using P = BenefitLevelParams;
    return std::make_tuple(params::field("prior", &P::prior, params::above(0)));
  }
  void validate() const;
};

/// See the file comment: one factor > 0 per benefit (all 1 when the held-out issues hold no
/// redemption). `benefits`, `predicted` (in (0, 1]), `redeemed` (0/1) and `sample_weight`
/// (empty: all 1; else finite, >= 0) one value per held-out issue. InputError naming the
/// argument and row for bad values or lengths, or no rows; ConfigError for bad params.
PERKREC_INLINE std::vector<double> benefit_levels(Index n_benefits, Span<const Index> benefits,
                                                  Span<const double> predicted,
                                                  Span<const double> redeemed,
                                                  Span<const double> sample_weight = {},
                                                  const BenefitLevelParams& params = {});

/// One member's row (n_benefits probabilities) times its benefit's factor, capped at 1 - 1e-6.
/// InputError for a row of another length.
PERKREC_INLINE void apply_benefit_levels(Span<float> row, Span<const double> levels);

struct PilotLevelParams {
  double prior = 20;         ///< pseudo expected redemptions at level 1; >= 0 (0: the raw ratio)
  double confidence = 0.95;  ///< of the interval; in (0, 1)
  static auto param_fields() {
    using P = PilotLevelParams;
    return std::make_tuple(params::field("prior", &P::prior, params::at_least(0)),
                           params::field("confidence", &P::confidence, params::open(0, 1)));
  }
  void validate() const;
};

struct PilotLevel {
  double level = 1;                 ///< (O + m c) / (E + m c), >= 0
  double ratio = 1;                 ///< O / E, the level without the prior
  double observed = 0;              ///< O: the pilot's redemption cost
  double expected = 0;              ///< E: its expected redemption cost under P
  double expected_redemptions = 0;  ///< sum P
  double standard_error = 0;        ///< of `level`
  double lower = 0, upper = 0;      ///< level -/+ z standard_error, lower >= 0
};

/// See the file comment. `probability` (P in [0, 1]), `redeemed` (0/1) and `cost` (the cost of
/// a redemption, finite, >= 0) one value per issued pilot pair. InputError naming the argument
/// and row for bad values, mismatched lengths, no rows, or an expected redemption cost of 0;
/// ConfigError for bad params.
PERKREC_INLINE PilotLevel pilot_level(Span<const double> probability, Span<const double> redeemed,
                                      Span<const double> cost, const PilotLevelParams& params = {});

/// See the file comment: self-normalized inverse-propensity weights (mean 1), float32, one per
/// logged issue, capped at the `clip` quantile of 1 / propensity (clip = 1: no cap).
/// ConfigError when clip is not in [0.5, 1]; InputError naming the row when a propensity is
/// not in (0, 1], or when there are none. Pure.
PERKREC_INLINE std::vector<float> issue_weights(Span<const double> propensity, double clip = 0.99);

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/decide/calibration_impl.hpp"
#endif
