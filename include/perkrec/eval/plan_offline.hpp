// evaluate_plan_offline: a plan's redemptions, cost and return estimated OFF-POLICY from a log
// of issues with logged propensities (no truth needed): how the plan would have done had it
// issued its benefits in the log's period. perkrec.Plan.evaluate_offline is this function.
//
// The decisions: every logged issue (an `issued` event with a benefit) at or after `since` and
// before `until` (kNoTime: no bound) whose validity (the catalog's validity_days) ended by the
// log's last event, labelled redeemed / not within its validity (features/redemption_labels.hpp).
// The plan, read as a target policy (plan_target_policy, eval/ope.hpp), issues the logged
// benefit with probability 1 when the plan gives it to that member and 0 otherwise, each
// member's decisions weighing 1 / (their number). Rewards per decision:
//   redemptions  label (0/1)
//   cost         issue_cost + label x the catalog's cost of the benefit
//   return       label x the plan's expected return per redemption of the pair
//                (value / probability of its plan row; 0 where the probability is 0)
// each estimated by off_policy_value (ips or snips) and scaled to the plan's totals: x the
// plan's rows (snips: a mean per planned pair) or x the decisions kept (ips: a mean per logged
// decision of a planned member); the totals assume the pairs the log covers stand for the others.
//
// Errors, before any estimate: ConfigError for an estimator other than ips / snips or bad
// OffPolicyParams; InputError for a log without propensities, a catalog of another size than the
// log, plan columns of different lengths, a plan user outside [-1, the log's users), a plan
// benefit outside the log, a probability outside [0, 1], a non-finite value or a negative or
// non-finite issue_cost (naming the row), no finished issue in
// the window, and no decision that issued one of the plan's pairs; off_policy_value's own
// (propensities outside (0, 1], naming the row).
// Cost: O(E + R log R + (P + D) log P) for E events, R redemptions, P plan rows, D decisions.
// Thread safety: a pure function.
//
// Example:
//   perkrec::OfflinePlan plan{users, benefits, probability, value, issue_cost};
//   perkrec::OffPolicyParams p;
//   p.estimator = perkrec::OpeEstimator::snips;
//   perkrec::PlanOfflineEvaluation e = perkrec::evaluate_plan_offline(log, catalog, plan, p);
//   // e.estimate[kOfflineReturn], e.lower[...], e.upper[...], e.covered_pairs
#pragma once

#include <array>

#include "perkrec/core/config.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/data/catalog.hpp"
#include "perkrec/data/event_log.hpp"
#include "perkrec/eval/ope.hpp"

namespace perkrec {

/// The plan's rows as evaluate_plan_offline reads them (spans of one length).
struct OfflinePlan {
  Span<const Index> users;         ///< members as log indices; -1 = a member the log lacks
  Span<const Index> benefits;      ///< benefit indices of the log (and catalog)
  Span<const double> probability;  ///< the plan's redemption probability per row
  Span<const double> value;        ///< the plan's expected return per row
  double issue_cost = 0;           ///< the cost of sending one benefit
  Timestamp since = kNoTime;       ///< first issue time kept (kNoTime: the log's start)
  Timestamp until = kNoTime;       ///< issues strictly before it (kNoTime: the log's end)
};

/// Positions of the rewards in PlanOfflineEvaluation's arrays.
enum OfflineReward : int { kOfflineRedemptions = 0, kOfflineCost = 1, kOfflineReturn = 2 };

struct PlanOfflineEvaluation {
  /// off_policy_value's estimate of each reward's mean (redemptions, cost, return).
  std::array<OffPolicyEstimate, 3> mean;
  /// The plan's totals: mean x scale, with its interval.
  std::array<double, 3> estimate{}, lower{}, upper{};
  double scale = 0;          ///< plan rows (snips) or decisions kept (ips)
  Offset pairs = 0;          ///< the plan's rows
  Offset covered_pairs = 0;  ///< distinct plan rows with a logged decision
  Offset decisions = 0;      ///< logged decisions of planned members in the window
  double effective_sample_size = 0;
};

/// See the file comment. `params.estimator`: ips or snips.
PERKREC_INLINE PlanOfflineEvaluation evaluate_plan_offline(const EventLog& log,
                                                           const Catalog& catalog,
                                                           const OfflinePlan& plan,
                                                           const OffPolicyParams& params = {});

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/eval/plan_offline_impl.hpp"
#endif
