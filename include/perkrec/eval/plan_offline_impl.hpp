// Definitions for plan_offline.hpp.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "perkrec/eval/ope.hpp"
#include "perkrec/eval/plan_offline.hpp"
#include "perkrec/features/redemption_labels.hpp"

namespace perkrec {

PERKREC_INLINE PlanOfflineEvaluation evaluate_plan_offline(const EventLog& log,
                                                           const Catalog& catalog,
                                                           const OfflinePlan& plan,
                                                           const OffPolicyParams& params) {
  const char* context = "Plan.evaluate_offline";
  if (params.estimator != OpeEstimator::ips && params.estimator != OpeEstimator::snips) {
    detail::raise<ConfigError>(context, ": estimator must be 'snips' or 'ips' (got '",
                               to_string(params.estimator), "')");
  }
  params.validate();
  if (!log.has_propensity()) {
    detail::raise<InputError>(context,
                              ": the log has no logged propensities (needed to reweight the "
                              "logging policy's decisions)");
  }
  if (catalog.size() != log.n_benefits()) {
    detail::raise<InputError>(context, ": the catalog has ", catalog.size(), " benefits, the log ",
                              log.n_benefits());
  }
  const std::size_t n_plan = plan.users.size();
  if (plan.benefits.size() != n_plan || plan.probability.size() != n_plan ||
      plan.value.size() != n_plan) {
    detail::raise<InputError>(context, ": the plan's users, benefits, probability and value have ",
                              n_plan, ", ", plan.benefits.size(), ", ", plan.probability.size(),
                              " and ", plan.value.size(), " rows (expected the same)");
  }
  if (!(std::isfinite(plan.issue_cost) && plan.issue_cost >= 0)) {
    detail::raise<InputError>(context, ": issue_cost must be finite and >= 0 (got ",
                              plan.issue_cost, ")");
  }
  for (std::size_t r = 0; r < n_plan; ++r) {
    if (plan.users[r] < -1 || plan.users[r] >= log.n_users()) {
      detail::raise<InputError>(context, ": the plan's user at row ", r,
                                " must be a log index in [-1, ", log.n_users(), ") (got ",
                                plan.users[r], ")");
    }
    if (plan.benefits[r] < 0 || plan.benefits[r] >= log.n_benefits()) {
      detail::raise<InputError>(context, ": the plan's benefit at row ", r, " must be in [0, ",
                                log.n_benefits(), ") (got ", plan.benefits[r], ")");
    }
    if (!(std::isfinite(plan.probability[r]) && plan.probability[r] >= 0 &&
          plan.probability[r] <= 1)) {
      detail::raise<InputError>(context, ": the plan's probability at row ", r,
                                " must be in [0, 1] (got ", plan.probability[r], ")");
    }
    if (!std::isfinite(plan.value[r])) {
      detail::raise<InputError>(context, ": the plan's value at row ", r, " must be finite (got ",
                                plan.value[r], ")");
    }
  }
  // The decisions: finished issues in the window, in log order.
  std::vector<double> windows;
  for (const Benefit& b : catalog.benefits()) windows.push_back(b.validity_days);
  const RedemptionLabels labels = redemption_labels(log, windows);
  const auto users = log.users();
  const auto benefits = log.benefits();
  const auto times = log.timestamps();
  const auto propensities = log.propensities();
  const Timestamp end = log.max_time();
  std::vector<Index> user, benefit;
  std::vector<double> label, propensity;
  for (std::size_t i = 0; i < labels.event.size(); ++i) {
    const auto e = static_cast<std::size_t>(labels.event[i]);
    const Timestamp t = times[e];
    const Timestamp validity = catalog[benefits[e]].validity_days;
    if (t + validity * 86400 > end || (plan.since != kNoTime && t < plan.since) ||
        (plan.until != kNoTime && t >= plan.until))
      continue;
    user.push_back(users[e]);
    benefit.push_back(benefits[e]);
    label.push_back(static_cast<double>(labels.label[i]));
    propensity.push_back(static_cast<double>(propensities[e]));
  }
  if (user.empty()) {
    detail::raise<InputError>(context,
                              ": no logged issue in the window has a complete validity period");
  }
  const PlanTargetPolicy target =
      plan_target_policy(plan.users, plan.benefits, user, benefit, log.n_users(), log.n_benefits());
  PlanOfflineEvaluation out;
  out.pairs = static_cast<Offset>(n_plan);
  out.decisions = static_cast<Offset>(target.decision.size());
  std::vector<Offset> covered;
  for (std::size_t i = 0; i < target.decision.size(); ++i)
    if (target.target[i] > 0) covered.push_back(target.plan_row[i]);
  if (covered.empty()) {
    detail::raise<InputError>(context,
                              ": the log holds no decision that issued one of the plan's "
                              "(member, benefit) pairs in the window");
  }
  std::sort(covered.begin(), covered.end());
  out.covered_pairs =
      static_cast<Offset>(std::unique(covered.begin(), covered.end()) - covered.begin());
  // The rewards of the kept decisions. An unplanned decision (target 0) adds nothing to IPS
  // or SNIPS whatever its reward; it gets the logged benefit's cost and no return.
  std::array<std::vector<double>, 3> reward;
  std::vector<double> logged;
  for (std::size_t i = 0; i < target.decision.size(); ++i) {
    const auto d = static_cast<std::size_t>(target.decision[i]);
    const double y = label[d];
    const Offset row = target.plan_row[i];
    double per_redemption = 0;
    if (row >= 0) {
      const double p = plan.probability[static_cast<std::size_t>(row)];
      if (p > 0) per_redemption = plan.value[static_cast<std::size_t>(row)] / std::max(p, 1e-300);
    }
    reward[kOfflineRedemptions].push_back(y);
    reward[kOfflineCost].push_back(plan.issue_cost + y * catalog[benefit[d]].cost);
    reward[kOfflineReturn].push_back(y * per_redemption);
    logged.push_back(propensity[d]);
  }
  out.scale = params.estimator == OpeEstimator::snips ? static_cast<double>(n_plan)
                                                      : static_cast<double>(logged.size());
  for (int k = 0; k < 3; ++k) {
    const OffPolicyEstimate est =
        off_policy_value(reward[k], logged, target.target, {}, {}, params);
    out.mean[k] = est;
    out.estimate[k] = est.value * out.scale;
    out.lower[k] = est.lower * out.scale;
    out.upper[k] = est.upper * out.scale;
    out.effective_sample_size = est.effective_sample_size;
  }
  return out;
}

}  // namespace perkrec
