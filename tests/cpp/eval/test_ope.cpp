#include <cmath>
#include <vector>

#include "test_util.hpp"

namespace perkrec {
namespace {

OffPolicyParams with(OpeEstimator estimator) {
  OffPolicyParams p;
  p.estimator = estimator;
  return p;
}

TEST(OffPolicyValue, HandComputedEstimators) {
  // Weights 2, 0, 2.
  const std::vector<double> r = {1, 0, 1}, logged = {0.5, 0.5, 0.25}, target = {1, 0, 0.5};
  const std::vector<double> q = {0.5, 0.5, 0.5}, e = {0.6, 0.6, 0.6};
  const OffPolicyEstimate ips = off_policy_value(r, logged, target);
  EXPECT_NEAR(ips.value, 4.0 / 3.0, 1e-12);
  // Terms 2, 0, 2: sample variance 4/3, standard error sqrt(4/9).
  EXPECT_NEAR(ips.std_error, 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(ips.upper - ips.value, 1.959963985 * 2.0 / 3.0, 1e-8);
  EXPECT_NEAR(ips.value - ips.lower, ips.upper - ips.value, 1e-12);
  EXPECT_NEAR(ips.effective_sample_size, 16.0 / 8.0, 1e-12);
  EXPECT_DOUBLE_EQ(ips.max_weight, 2.0);
  EXPECT_EQ(ips.n, 3);
  const OffPolicyEstimate snips =
      off_policy_value(r, logged, target, {}, {}, with(OpeEstimator::snips));
  EXPECT_NEAR(snips.value, 1.0, 1e-12);
  // Linearized terms w (r - 1) / mean(w) are all 0 here.
  EXPECT_NEAR(snips.std_error, 0.0, 1e-12);
  EXPECT_NEAR(off_policy_value(r, logged, target, q, e, with(OpeEstimator::dm)).value, 0.6, 1e-12);
  EXPECT_NEAR(off_policy_value(r, logged, target, q, e, with(OpeEstimator::dr)).value, 3.8 / 3.0,
              1e-12);
  OffPolicyParams sw = with(OpeEstimator::switch_dr);
  sw.switch_threshold = 1.0;
  const OffPolicyEstimate s = off_policy_value(r, logged, target, q, e, sw);
  EXPECT_NEAR(s.value, 0.6, 1e-12);
  EXPECT_EQ(s.n_switched, 2);
  sw.switch_threshold = 2.0;  // no row switched: DR
  EXPECT_NEAR(off_policy_value(r, logged, target, q, e, sw).value, 3.8 / 3.0, 1e-12);
  OffPolicyParams clipped;
  clipped.clip = 1.5;
  const OffPolicyEstimate c = off_policy_value(r, logged, target, {}, {}, clipped);
  EXPECT_NEAR(c.value, 1.0, 1e-12);
  EXPECT_EQ(c.n_clipped, 2);
  EXPECT_DOUBLE_EQ(c.max_weight, 1.5);
}

// Three actions, logging (0.5, 0.3, 0.2), target (0.2, 0.3, 0.5), Bernoulli rewards with means
// (0.2, 0.5, 0.7): the target's value is 0.54. The reward model is off by +0.1 everywhere.
struct SyntheticLog {
  std::vector<double> reward, logged, target, q, e;
};

SyntheticLog synthetic_log(std::uint64_t seed, std::size_t n) {
  const double logging[3] = {0.5, 0.3, 0.2}, target[3] = {0.2, 0.3, 0.5}, mean[3] = {0.2, 0.5, 0.7};
  const double cumulative[3] = {0.5, 0.8, 1.0};
  double e = 0;
  for (int a = 0; a < 3; ++a) e += target[a] * (mean[a] + 0.1);
  Rng rng(seed);
  SyntheticLog log;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t a = rng.from_cumulative(cumulative, 3);
    log.reward.push_back(rng.bernoulli(mean[a]) ? 1.0 : 0.0);
    log.logged.push_back(logging[a]);
    log.target.push_back(target[a]);
    log.q.push_back(mean[a] + 0.1);
    log.e.push_back(e);
  }
  return log;
}

TEST(OffPolicyValue, UnbiasedWithNominalCoverageOnSyntheticLogs) {
  const double truth = 0.54;
  const int seeds = 200;
  for (OpeEstimator est : {OpeEstimator::ips, OpeEstimator::snips, OpeEstimator::dr}) {
    double sum = 0;
    int covered = 0;
    for (int s = 0; s < seeds; ++s) {
      const SyntheticLog log = synthetic_log(static_cast<std::uint64_t>(s), 1000);
      const OffPolicyEstimate v =
          off_policy_value(log.reward, log.logged, log.target, log.q, log.e, with(est));
      sum += v.value;
      covered += v.lower <= truth && truth <= v.upper;
    }
    // Standard error of the mean over seeds is about 0.03 / sqrt(200) = 0.002.
    EXPECT_NEAR(sum / seeds, truth, 0.008) << to_string(est);
    EXPECT_GE(covered, 180) << to_string(est);  // nominal 190 of 200
    EXPECT_LE(covered, 198) << to_string(est);
  }
  // The direct method inherits the model's bias (+0.1).
  const SyntheticLog log = synthetic_log(1, 1000);
  EXPECT_NEAR(
      off_policy_value(log.reward, log.logged, log.target, log.q, log.e, with(OpeEstimator::dm))
          .value,
      truth + 0.1, 1e-12);
}

TEST(OffPolicyValue, IdenticalForAnyThreadCount) {
  const SyntheticLog log = synthetic_log(7, 100000);
  OffPolicyParams one = with(OpeEstimator::snips), two = one;
  one.num_threads = 1;
  two.num_threads = 2;
  const OffPolicyEstimate a = off_policy_value(log.reward, log.logged, log.target, {}, {}, one);
  const OffPolicyEstimate b = off_policy_value(log.reward, log.logged, log.target, {}, {}, two);
  EXPECT_EQ(a.value, b.value);
  EXPECT_EQ(a.std_error, b.std_error);
  EXPECT_EQ(a.effective_sample_size, b.effective_sample_size);
}

TEST(OffPolicyValue, RejectsBadInput) {
  const std::vector<double> r = {1, 0}, p = {0.5, 0.5}, t = {0.5, 0.5};
  PERKREC_EXPECT_THROW_MSG(off_policy_value(r, std::vector<double>{0.5, 0.0}, t), InputError,
                           "logged_propensity at row 1", "(0, 1]");
  PERKREC_EXPECT_THROW_MSG(off_policy_value(r, std::vector<double>{1.5, 0.5}, t), InputError,
                           "logged_propensity at row 0");
  PERKREC_EXPECT_THROW_MSG(off_policy_value(r, std::vector<double>{0.5, NAN}, t), InputError,
                           "logged_propensity at row 1");
  PERKREC_EXPECT_THROW_MSG(off_policy_value(r, p, std::vector<double>{-0.1, 0.5}), InputError,
                           "target_propensity at row 0", "[0, 1]");
  PERKREC_EXPECT_THROW_MSG(off_policy_value(std::vector<double>{1, INFINITY}, p, t), InputError,
                           "rewards at row 1");
  PERKREC_EXPECT_THROW_MSG(off_policy_value(r, std::vector<double>{0.5}, t), InputError,
                           "logged_propensity has 1 rows (expected 2)");
  PERKREC_EXPECT_THROW_MSG(off_policy_value(r, p, t, {}, {}, with(OpeEstimator::dm)), InputError,
                           "target_reward_estimate");
  PERKREC_EXPECT_THROW_MSG(
      off_policy_value(r, p, t, {}, std::vector<double>{0, 0}, with(OpeEstimator::dr)), InputError,
      "reward_estimate");
  PERKREC_EXPECT_THROW_MSG(off_policy_value(r, p, t, std::vector<double>{0},
                                            std::vector<double>{0, 0}, with(OpeEstimator::dr)),
                           InputError, "reward_estimate has 1 rows");
  OffPolicyParams bad;
  bad.confidence = 1.0;
  PERKREC_EXPECT_THROW_MSG(off_policy_value(r, p, t, {}, {}, bad), ConfigError, "confidence");
  bad = {};
  bad.clip = 0;
  PERKREC_EXPECT_THROW_MSG(off_policy_value(r, p, t, {}, {}, bad), ConfigError, "clip");
  PERKREC_EXPECT_THROW_MSG(ope_estimator_from_string("magic"), ConfigError, "magic");
  EXPECT_EQ(ope_estimator_from_string("switch-dr"), OpeEstimator::switch_dr);
  PERKREC_EXPECT_THROW_MSG(
      off_policy_value(std::vector<double>{}, std::vector<double>{}, std::vector<double>{}),
      InputError, "empty");
}

TEST(PlanTargetPolicy, PlannedPairsWeighOneOverTheMembersDecisions) {
  // Plan: member 0 gets benefits 1 and 2, member 2 gets 0 (twice: the first row wins),
  // member -1 (not in the log) gets 1.
  const std::vector<Index> plan_users{0, 2, 0, 2, -1};
  const std::vector<Index> plan_benefits{1, 0, 2, 0, 1};
  // Logged decisions: member 0 three times (benefits 1, 0, 2), member 1 once (not planned),
  // member 2 twice (benefit 1, then 0).
  const std::vector<Index> logged_users{0, 1, 0, 2, 0, 2};
  const std::vector<Index> logged_benefits{1, 1, 0, 1, 2, 0};
  const PlanTargetPolicy t =
      plan_target_policy(plan_users, plan_benefits, logged_users, logged_benefits, 3, 3);
  EXPECT_EQ(t.decision, (std::vector<Offset>{0, 2, 3, 4, 5}));
  EXPECT_EQ(t.plan_row, (std::vector<Offset>{0, -1, -1, 2, 1}));
  const double third = 1.0 / 3.0;
  EXPECT_EQ(t.target, (std::vector<double>{third, 0.0, 0.0, third, 0.5}));
  // Nothing planned: nothing kept.
  EXPECT_TRUE(plan_target_policy({}, {}, logged_users, logged_benefits, 3, 3).decision.empty());
}

TEST(PlanTargetPolicy, RejectsBadInputBeforeWork) {
  const std::vector<Index> one{0}, bad_user{3}, bad_benefit{-1};
  PERKREC_EXPECT_THROW_MSG(plan_target_policy(one, {}, one, one, 3, 3), InputError,
                           "expected equal pairs");
  PERKREC_EXPECT_THROW_MSG(plan_target_policy(bad_user, one, one, one, 3, 3), InputError,
                           "plan_users[0]");
  PERKREC_EXPECT_THROW_MSG(plan_target_policy(one, bad_benefit, one, one, 3, 3), InputError,
                           "plan_benefits[0]");
  PERKREC_EXPECT_THROW_MSG(plan_target_policy(one, one, bad_user, one, 3, 3), InputError,
                           "logged_users[0]");
}

}  // namespace
}  // namespace perkrec
