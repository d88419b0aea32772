// evaluate_plan_offline (eval/plan_offline.hpp): a hand-sized log and plan with the decisions,
// the rewards and the estimates computed by hand; bad inputs are typed errors.
#include <cmath>
#include <limits>
#include <vector>

#include "test_util.hpp"

namespace perkrec {
namespace {

constexpr Timestamp kDay = 86400;

Catalog two_benefits() {
  return Catalog::from_json(R"({"benefits": [
    {"id": "A", "kind": "gift", "face_value": 5, "cost": 3, "validity_days": 1},
    {"id": "B", "kind": "gift", "face_value": 5, "cost": 5, "validity_days": 1}]})");
}

/// Issues (member, benefit, time, propensity, redeemed): (0, 0, 0, 0.5, yes), (0, 1, 1000,
/// 0.5, no), (1, 1, 2000, 0.25, yes), (2, 0, 3000, 0.5, no), and (1, 0, 1.5 days, 0.5, no),
/// whose validity ends after the log's last event (an order at 2 days).
EventLog small_log(bool with_propensity = true) {
  const auto I = static_cast<std::uint8_t>(EventType::issued);
  const auto R = static_cast<std::uint8_t>(EventType::redeemed);
  const auto O = static_cast<std::uint8_t>(EventType::ordered);
  static const std::vector<Index> users{0, 0, 0, 1, 1, 2, 1, 2};
  static const std::vector<Index> benefits{0, 0, 1, 1, 1, 0, 0, -1};
  static const std::vector<std::uint8_t> types{I, R, I, I, R, I, I, O};
  static const std::vector<Timestamp> times{0,       100, 1000, 2000, 3000, 3000, kDay + kDay / 2,
                                            2 * kDay};
  static const std::vector<float> propensity{0.5f, 1, 0.5f, 0.25f, 1, 0.5f, 0.5f, 1};
  EventColumns c;
  c.user = users;
  c.benefit = benefits;
  c.type = types;
  c.timestamp = times;
  if (with_propensity) c.propensity = propensity;
  return EventLog::from_columns(c, 3, 2);
}

struct PlanRows {
  // (0, A) planned with P 0.5 and return 4; (1, A) with P 0.4; a member the log lacks.
  std::vector<Index> users{0, 1, -1}, benefits{0, 0, 1};
  std::vector<double> probability{0.5, 0.4, 0.3}, value{4, 2, 1};
  OfflinePlan plan() const { return OfflinePlan{users, benefits, probability, value, 0.1}; }
};

OffPolicyParams estimator(OpeEstimator e) {
  OffPolicyParams p;
  p.estimator = e;
  return p;
}

TEST(EvaluatePlanOffline, HandComputedDecisionsRewardsAndTotals) {
  const EventLog log = small_log();
  const Catalog catalog = two_benefits();
  const PlanRows rows;
  // Decisions of planned members in the window: (0, A), (0, B), (1, B); (1, A) is unfinished,
  // member 2 unplanned. Member 0's two decisions weigh 1/2 each; only (0, A) is planned:
  // weights 0.5 / 0.5 = 1, 0, 0. Rewards of (0, A): redeemed 1, cost 0.1 + 3, return 4 / 0.5.
  const PlanOfflineEvaluation ips =
      evaluate_plan_offline(log, catalog, rows.plan(), estimator(OpeEstimator::ips));
  EXPECT_EQ(ips.pairs, 3);
  EXPECT_EQ(ips.decisions, 3);
  EXPECT_EQ(ips.covered_pairs, 1);
  EXPECT_DOUBLE_EQ(ips.scale, 3.0);  // IPS: a mean per decision x the decisions
  EXPECT_DOUBLE_EQ(ips.mean[kOfflineRedemptions].value, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(ips.estimate[kOfflineRedemptions], 1.0);
  EXPECT_DOUBLE_EQ(ips.estimate[kOfflineCost], 3.1);
  EXPECT_DOUBLE_EQ(ips.estimate[kOfflineReturn], 8.0);
  EXPECT_DOUBLE_EQ(ips.effective_sample_size, 1.0);
  EXPECT_DOUBLE_EQ(ips.lower[kOfflineReturn], ips.mean[kOfflineReturn].lower * 3);
  EXPECT_DOUBLE_EQ(ips.upper[kOfflineReturn], ips.mean[kOfflineReturn].upper * 3);
  // SNIPS: sum(w r) / sum(w) per planned pair, x the plan's 3 rows.
  const PlanOfflineEvaluation snips =
      evaluate_plan_offline(log, catalog, rows.plan(), estimator(OpeEstimator::snips));
  EXPECT_DOUBLE_EQ(snips.scale, 3.0);
  EXPECT_DOUBLE_EQ(snips.estimate[kOfflineRedemptions], 3.0);
  EXPECT_DOUBLE_EQ(snips.estimate[kOfflineCost], 3.1 * 3);
  EXPECT_DOUBLE_EQ(snips.estimate[kOfflineReturn], 24.0);
  // The window: before t = 1000 only (0, A) is left; member 0's one decision weighs 1: w = 2.
  OfflinePlan early = rows.plan();
  early.until = 1000;
  const PlanOfflineEvaluation first =
      evaluate_plan_offline(log, catalog, early, estimator(OpeEstimator::ips));
  EXPECT_EQ(first.decisions, 1);
  EXPECT_DOUBLE_EQ(first.estimate[kOfflineRedemptions], 2.0);
}

TEST(EvaluatePlanOffline, BadInputsAreTypedErrorsBeforeAnyEstimate) {
  const EventLog log = small_log();
  const Catalog catalog = two_benefits();
  const PlanRows rows;
  PERKREC_EXPECT_THROW_MSG(
      evaluate_plan_offline(log, catalog, rows.plan(), estimator(OpeEstimator::dm)), ConfigError,
      "estimator");
  PERKREC_EXPECT_THROW_MSG(evaluate_plan_offline(small_log(false), catalog, rows.plan()),
                           InputError, "propensities");
  const Catalog one = Catalog::from_json(
      R"({"benefits": [{"id": "A", "kind": "gift", "face_value": 5, "validity_days": 1}]})");
  PERKREC_EXPECT_THROW_MSG(evaluate_plan_offline(log, one, rows.plan()), InputError, "catalog");
  OfflinePlan late = rows.plan();
  late.since = kDay;
  PERKREC_EXPECT_THROW_MSG(evaluate_plan_offline(log, catalog, late), InputError,
                           "no logged issue");
  PlanRows outside;
  outside.benefits[2] = 2;
  PERKREC_EXPECT_THROW_MSG(evaluate_plan_offline(log, catalog, outside.plan()), InputError,
                           "benefit at row 2 must be in [0, 2) (got 2)");
  PlanRows negative;
  negative.benefits[0] = -1;
  PERKREC_EXPECT_THROW_MSG(evaluate_plan_offline(log, catalog, negative.plan()), InputError,
                           "benefit at row 0");
  PlanRows stranger;
  stranger.users[1] = -2;
  PERKREC_EXPECT_THROW_MSG(evaluate_plan_offline(log, catalog, stranger.plan()), InputError,
                           "user at row 1");
  PlanRows nan_p;
  nan_p.probability[1] = std::nan("");
  PERKREC_EXPECT_THROW_MSG(evaluate_plan_offline(log, catalog, nan_p.plan()), InputError,
                           "probability at row 1");
  PlanRows above_one;
  above_one.probability[0] = 1.5;
  PERKREC_EXPECT_THROW_MSG(evaluate_plan_offline(log, catalog, above_one.plan()), InputError,
                           "probability at row 0");
  PlanRows inf_value;
  inf_value.value[2] = std::numeric_limits<double>::infinity();
  PERKREC_EXPECT_THROW_MSG(evaluate_plan_offline(log, catalog, inf_value.plan()), InputError,
                           "value at row 2");
  OfflinePlan bad_cost = rows.plan();
  bad_cost.issue_cost = -1;
  PERKREC_EXPECT_THROW_MSG(evaluate_plan_offline(log, catalog, bad_cost), InputError, "issue_cost");
  PlanRows short_rows;
  short_rows.value.pop_back();
  PERKREC_EXPECT_THROW_MSG(evaluate_plan_offline(log, catalog, short_rows.plan()), InputError,
                           "rows");
  PlanRows unmatched;  // member 1's only decision in the window is (1, B)
  unmatched.users = {1};
  unmatched.benefits = {0};
  unmatched.probability = {0.5};
  unmatched.value = {1};
  PERKREC_EXPECT_THROW_MSG(evaluate_plan_offline(log, catalog, unmatched.plan()), InputError,
                           "no decision");
}

}  // namespace
}  // namespace perkrec
