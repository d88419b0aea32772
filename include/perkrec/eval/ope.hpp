// Off-policy evaluation: the expected reward of a target policy estimated from logs of another
// (logging) policy, without deploying it.
//
// Row i of the log holds the reward r_i of the logged action, the logging policy's probability
// p_i of that action (its propensity, in (0, 1]), and the target policy's probability pi_i of the
// same action (in [0, 1]). The weight is w_i = pi_i / p_i, capped at `clip` when given. With
// q_i = a reward model's estimate for the logged action and e_i = E_{a ~ target}[q(x_i, a)] its
// expectation under the target policy, the estimators are means of per-row terms:
//   ips        w_i r_i
//   snips      w_i r_i / mean(w)                       (self-normalized; ratio of two means)
//   dm         e_i                                     (direct method; needs e)
//   dr         e_i + w_i (r_i - q_i)                   (doubly robust; needs q and e)
//   switch_dr  e_i + [w_i <= tau] w_i (r_i - q_i)      (DR where the unclipped weight is at most
//                                                       tau, the model alone above; needs q, e)
// IPS and DR are unbiased when the propensities are right (DR also needs pi > 0 => p > 0);
// SNIPS is consistent with a bias of order 1/n. The interval is the normal approximation
// value +- z * sd(terms) / sqrt(n); for SNIPS the terms are the linearized (delta-method) ones
// w_i (r_i - value) / mean(w). effective_sample_size = (sum w)^2 / sum w^2 over the weights used
// (n for DM): how many uniform rows the weighted log is worth.
//
// Errors: mismatched lengths, non-finite values, logged propensities outside (0, 1] or target
// probabilities outside [0, 1], and DM/DR/switch-DR without the estimates they need throw
// InputError naming the argument and row; bad params throw ConfigError naming the field.
// Cost: O(n), parallel over fixed blocks (identical for any thread count).
// Thread safety: a pure function.
//
// A plan as the target policy: plan_target_policy reads a plan (member, benefit pairs) as a
// policy that issues a logged decision's benefit with probability 1 when the plan gives that
// member that benefit and 0 otherwise, each member's decisions weighing 1 / (their number) so
// every planned member counts once. It keeps the logged decisions of members the plan holds
// and gives each its target probability and the plan row of its pair; the rewards and
// off_policy_value do the rest (perkrec.Plan.evaluate_offline). O((P + D) log P), serial.
//
// Example:
//   perkrec::OffPolicyParams p;
//   p.estimator = perkrec::OpeEstimator::snips;
//   perkrec::OffPolicyEstimate e = perkrec::off_policy_value(rewards, logged, target, {}, {}, p);
//   // e.value, e.lower, e.upper, e.effective_sample_size
#pragma once

#include <limits>
#include <string>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/params.hpp"
#include "perkrec/core/types.hpp"

namespace perkrec {

enum class OpeEstimator { ips, snips, dm, dr, switch_dr };

/// "ips", "snips", "dm", "dr", "switch-dr".
PERKREC_INLINE const char* to_string(OpeEstimator estimator);
/// The estimator named `name` (as to_string; "switch_dr" also accepted); ConfigError otherwise.
PERKREC_INLINE OpeEstimator ope_estimator_from_string(const std::string& name);

struct OffPolicyParams {
  OpeEstimator estimator = OpeEstimator::ips;
  double confidence = 0.95;                               ///< interval coverage; in (0, 1)
  double clip = std::numeric_limits<double>::infinity();  ///< max weight; > 0 (inf = no clipping)
  double switch_threshold = std::numeric_limits<double>::infinity();  ///< switch-DR's tau; >= 0
  int num_threads = 0;                                                ///< 0 = OpenMP default
  static auto param_fields() {
    using P = OffPolicyParams;
    static constexpr params::EnumName<OpeEstimator> kEstimators[] = {
        {OpeEstimator::ips, "ips"},
        {OpeEstimator::snips, "snips"},
        {OpeEstimator::dm, "dm"},
        {OpeEstimator::dr, "dr"},
        {OpeEstimator::switch_dr, "switch-dr"}};
    return std::make_tuple(params::field("estimator", &P::estimator, kEstimators),
                           params::field("confidence", &P::confidence, params::open(0, 1)),
                           params::field("clip", &P::clip, params::or_infinity(params::above(0))),
                           params::field("switch_threshold", &P::switch_threshold,
                                         params::or_infinity(params::at_least(0))),
                           params::field("num_threads", &P::num_threads, params::threads()));
  }
  void validate() const;
};

struct OffPolicyEstimate {
  double value = 0;
  double lower = 0;  ///< normal-approximation interval at params.confidence
  double upper = 0;
  double std_error = 0;
  double effective_sample_size = 0;
  double max_weight = 0;  ///< largest weight used (after clipping)
  Offset n_clipped = 0;   ///< rows whose weight was capped at clip
  Offset n_switched = 0;  ///< switch-DR rows that used the model alone
  Offset n = 0;
};

/// See the file comment. `reward_estimate` (q) and `target_reward_estimate` (e) may be empty
/// for IPS and SNIPS, in which case they are not used.
PERKREC_INLINE OffPolicyEstimate off_policy_value(Span<const double> rewards,
                                                  Span<const double> logged_propensity,
                                                  Span<const double> target_propensity,
                                                  Span<const double> reward_estimate = {},
                                                  Span<const double> target_reward_estimate = {},
                                                  const OffPolicyParams& params = {});

/// What plan_target_policy keeps: one entry per logged decision of a member the plan holds.
struct PlanTargetPolicy {
  std::vector<Offset> decision;  ///< row of the decision in the logged columns, ascending
  std::vector<double> target;    ///< 1 / (the member's kept decisions) when planned, else 0
  std::vector<Offset> plan_row;  ///< first plan row of the decision's pair; -1 = not planned
};

/// See the file comment. `plan_users` (-1 = a member the log lacks: never matched) and
/// `plan_benefits` are the plan's rows; `logged_users` / `logged_benefits` the logged
/// decisions; all indices of an n_users x n_benefits log. InputError naming the argument and
/// row for lengths that differ or indices out of range.
PERKREC_INLINE PlanTargetPolicy plan_target_policy(Span<const Index> plan_users,
                                                   Span<const Index> plan_benefits,
                                                   Span<const Index> logged_users,
                                                   Span<const Index> logged_benefits, Index n_users,
                                                   Index n_benefits);

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/eval/ope_impl.hpp"
#endif
