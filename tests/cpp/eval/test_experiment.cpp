#include <cmath>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace perkrec {
namespace {

TEST(AssignHoldout, PinnedArmsSoAChangedHashFails) {
  EXPECT_EQ(holdout_hash("u1", "spring-2026"), 0xd89ef278fb94c871ULL);
  EXPECT_EQ(holdout_hash("1002", "spring-2026"), 0x0c2260749f0a1c4bULL);
  EXPECT_EQ(holdout_hash("", "spring-2026"), 0xb7911d99ae10b84aULL);
  const std::vector<std::string> ids = {"u1", "u2",   "u3",   "member-42", "alice", "bob",
                                        "",   "1001", "1002", "1003",      "1004",  "1005"};
  const std::vector<std::int32_t> expected = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0};
  EXPECT_EQ(assign_holdout(ids, "spring-2026", std::vector<double>{0.5, 0.5}), expected);
  // The salt and the id are separated: ("ab", "c") and ("a", "bc") hash differently.
  EXPECT_NE(holdout_hash("c", "ab"), holdout_hash("bc", "a"));
}

TEST(AssignHoldout, BalancedIndependentOfSaltAndThreadCount) {
  std::vector<std::string> ids;
  for (int i = 0; i < 100000; ++i) ids.push_back("user" + std::to_string(i));
  const std::vector<double> weights = {0.9, 0.1};
  const std::vector<std::int32_t> one = assign_holdout(ids, "a", weights, 1);
  EXPECT_EQ(assign_holdout(ids, "a", weights, 2), one);
  double treated = 0;
  for (std::int32_t a : one) treated += a;
  // Binomial(100000, 0.1): sd about 95; allow 4 sd.
  EXPECT_NEAR(treated, 10000, 380);
  // Three arms, one with zero weight never used.
  const std::vector<std::int32_t> three = assign_holdout(ids, "a", std::vector<double>{1, 0, 1});
  std::vector<double> counts(3, 0);
  for (std::int32_t a : three) counts[static_cast<std::size_t>(a)] += 1;
  EXPECT_EQ(counts[1], 0);
  EXPECT_NEAR(counts[0], 50000, 640);
  // Another salt is an independent draw: about a quarter in both halves.
  const std::vector<std::int32_t> a = assign_holdout(ids, "a", std::vector<double>{1, 1});
  const std::vector<std::int32_t> b = assign_holdout(ids, "b", std::vector<double>{1, 1});
  double both = 0;
  for (std::size_t i = 0; i < a.size(); ++i) both += a[i] && b[i];
  EXPECT_NEAR(both, 25000, 560);
  PERKREC_EXPECT_THROW_MSG(assign_holdout(ids, "a", std::vector<double>{1}), InputError,
                           "at least 2");
  PERKREC_EXPECT_THROW_MSG(assign_holdout(ids, "a", std::vector<double>{1, NAN}), InputError,
                           "arm 1");
  PERKREC_EXPECT_THROW_MSG(assign_holdout(ids, "a", std::vector<double>{0, 0}), InputError,
                           "sum to 0");
}

TEST(AnalyzeExperiment, HandComputedLiftAndRoi) {
  const std::vector<std::int32_t> arm = {0, 0, 1, 1};
  const std::vector<double> revenue = {1, 3, 4, 6}, cost = {0, 0, 1, 2};
  const auto rows = analyze_experiment(arm, {revenue}, {}, cost);
  ASSERT_EQ(rows.size(), 1u);
  const ExperimentComparison& r = rows[0];
  EXPECT_EQ(r.arm, 1);
  EXPECT_EQ(r.n_control, 2);
  EXPECT_DOUBLE_EQ(r.control_mean, 2.0);
  EXPECT_DOUBLE_EQ(r.arm_mean, 5.0);
  EXPECT_DOUBLE_EQ(r.lift, 3.0);
  EXPECT_DOUBLE_EQ(r.relative_lift, 1.5);
  // Variances 2 and 2: se = sqrt(2/2 + 2/2).
  EXPECT_NEAR(r.std_error, std::sqrt(2.0), 1e-12);
  EXPECT_NEAR(r.upper, 3.0 + 1.959963985 * std::sqrt(2.0), 1e-8);
  EXPECT_NEAR(r.p_value, 2 * normal_cdf(-3.0 / std::sqrt(2.0)), 1e-12);
  // roi = 3 / 1.5; var(dY) = 2, var(dC) = 0.25, cov = cov_arm(Y, C) / 2 = 1 / 2.
  EXPECT_DOUBLE_EQ(r.roi, 2.0);
  const double var_roi = (2.0 - 2 * 2.0 * 0.5 + 4.0 * 0.25) / (1.5 * 1.5);
  EXPECT_NEAR(r.roi_upper - r.roi, 1.959963985 * std::sqrt(var_roi), 1e-8);
  EXPECT_TRUE(std::isnan(r.bootstrap_lower));
  const auto no_cost = analyze_experiment(arm, {revenue});
  EXPECT_TRUE(std::isnan(no_cost[0].roi));
}

// n rows per arm; metric = effect * arm + 2 x + noise, x the pre-period value.
struct Sample {
  std::vector<std::int32_t> arm;
  std::vector<double> y, x;
};

Sample sample(std::uint64_t seed, std::size_t n, int arms, double effect) {
  Rng rng(seed);
  Sample s;
  for (int a = 0; a < arms; ++a) {
    for (std::size_t i = 0; i < n; ++i) {
      const double x = rng.normal(10, 1);
      s.arm.push_back(a);
      s.x.push_back(x);
      s.y.push_back(effect * a + 2 * x + rng.normal());
    }
  }
  return s;
}

TEST(AnalyzeExperiment, ZeroEffectIntervalsCoverZeroAtTheNominalRate) {
  int covered = 0, total = 0;
  for (int seed = 0; seed < 200; ++seed) {
    const Sample s = sample(static_cast<std::uint64_t>(seed), 500, 3, 0.0);
    for (const ExperimentComparison& r : analyze_experiment(s.arm, {s.y})) {
      covered += r.lower <= 0 && 0 <= r.upper;
      ++total;
    }
  }
  EXPECT_EQ(total, 400);
  EXPECT_GE(covered, 370);  // nominal 380
  EXPECT_LE(covered, 394);
}

TEST(AnalyzeExperiment, CupedNarrowsIntervalsAndStaysUnbiased) {
  double sum_plain = 0, sum_cuped = 0, width_plain = 0, width_cuped = 0;
  const int seeds = 50;
  for (int seed = 0; seed < seeds; ++seed) {
    const Sample s = sample(static_cast<std::uint64_t>(seed), 1000, 2, 0.3);
    const auto plain = analyze_experiment(s.arm, {s.y});
    const auto cuped = analyze_experiment(s.arm, {s.y}, {s.x});
    sum_plain += plain[0].lift;
    sum_cuped += cuped[0].lift;
    width_plain += plain[0].upper - plain[0].lower;
    width_cuped += cuped[0].upper - cuped[0].lower;
    EXPECT_NEAR(cuped[0].theta, 2.0, 0.15);
  }
  // var(y) = 5 and corr^2 = 4/5: CUPED keeps a fifth of the variance, sqrt(1/5) of the width.
  EXPECT_NEAR(width_cuped / width_plain, std::sqrt(0.2), 0.03);
  EXPECT_NEAR(sum_cuped / seeds, 0.3, 0.02);  // se per seed ~0.045, over 50 seeds ~0.006
  EXPECT_NEAR(sum_plain / seeds, 0.3, 0.05);
  // cuped = false ignores the covariate.
  const Sample s = sample(1, 1000, 2, 0.3);
  ExperimentParams off;
  off.cuped = false;
  EXPECT_EQ(analyze_experiment(s.arm, {s.y}, {s.x}, {}, off)[0].lift,
            analyze_experiment(s.arm, {s.y})[0].lift);
}

TEST(AnalyzeExperiment, BootstrapAgreesWithNormalAndIsThreadInvariant) {
  const Sample s = sample(5, 2000, 3, 0.5);
  std::vector<double> cost(s.y.size());
  for (std::size_t i = 0; i < cost.size(); ++i)
    cost[i] = s.arm[i] > 0 ? 0.5 + 0.01 * static_cast<double>(i % 7) : 0.0;
  ExperimentParams p;
  p.bootstrap = 400;
  p.num_threads = 1;
  const auto one = analyze_experiment(s.arm, {s.y}, {s.x}, cost, p);
  p.num_threads = 2;
  const auto two = analyze_experiment(s.arm, {s.y}, {s.x}, cost, p);
  ASSERT_EQ(one.size(), 2u);
  for (std::size_t k = 0; k < one.size(); ++k) {
    EXPECT_EQ(one[k].bootstrap_lower, two[k].bootstrap_lower);
    EXPECT_EQ(one[k].bootstrap_upper, two[k].bootstrap_upper);
    EXPECT_EQ(one[k].roi_bootstrap_upper, two[k].roi_bootstrap_upper);
    const double width = one[k].upper - one[k].lower;
    EXPECT_NEAR(one[k].bootstrap_lower, one[k].lower, 0.15 * width);
    EXPECT_NEAR(one[k].bootstrap_upper, one[k].upper, 0.15 * width);
    const double roi_width = one[k].roi_upper - one[k].roi_lower;
    EXPECT_NEAR(one[k].roi_bootstrap_lower, one[k].roi_lower, 0.2 * roi_width);
    EXPECT_NEAR(one[k].roi_bootstrap_upper, one[k].roi_upper, 0.2 * roi_width);
  }
  p.seed = 43;
  EXPECT_NE(analyze_experiment(s.arm, {s.y}, {s.x}, cost, p)[0].bootstrap_lower,
            one[0].bootstrap_lower);
}

TEST(AnalyzeExperiment, RejectsBadInput) {
  const std::vector<std::int32_t> arm = {0, 0, 1, 1};
  const std::vector<double> y = {1, 2, 3, 4};
  PERKREC_EXPECT_THROW_MSG(analyze_experiment(std::vector<std::int32_t>{0, 0, -1, 1}, {y}),
                           InputError, "arm at row 2", "unknown");
  ExperimentParams two;
  two.n_arms = 2;
  PERKREC_EXPECT_THROW_MSG(
      analyze_experiment(std::vector<std::int32_t>{0, 0, 1, 2}, {y}, {}, {}, two), InputError,
      "arm at row 3");
  PERKREC_EXPECT_THROW_MSG(analyze_experiment(std::vector<std::int32_t>{0, 0, 2, 2}, {y}),
                           InputError, "arm 1 has 0 rows");
  PERKREC_EXPECT_THROW_MSG(analyze_experiment(arm, {std::vector<double>{1, NAN, 3, 4}}), InputError,
                           "metrics[0] at row 1");
  PERKREC_EXPECT_THROW_MSG(analyze_experiment(arm, {std::vector<double>{1, 2, 3}}), InputError,
                           "metrics[0] has 3 rows (expected 4)");
  PERKREC_EXPECT_THROW_MSG(analyze_experiment(arm, {y}, {std::vector<double>{1, 2, INFINITY, 4}}),
                           InputError, "pre_period[0] at row 2");
  PERKREC_EXPECT_THROW_MSG(analyze_experiment(arm, {y}, {}, std::vector<double>{1, 2}), InputError,
                           "cost has 2 rows");
  PERKREC_EXPECT_THROW_MSG(analyze_experiment(arm, {y}, {y, y}), InputError,
                           "pre_period has 2 entries");
  ExperimentParams bad;
  bad.confidence = 0;
  PERKREC_EXPECT_THROW_MSG(analyze_experiment(arm, {y}, {}, {}, bad), ConfigError, "confidence");
  bad = {};
  bad.bootstrap = -1;
  PERKREC_EXPECT_THROW_MSG(analyze_experiment(arm, {y}, {}, {}, bad), ConfigError, "bootstrap");
}

// Member 0 is in the control group; member 1 got two benefits; member 2 orders late.
EventLog experiment_log(bool with_control = true) {
  static const std::vector<Index> users{0, 1, 1, 1, 1, 1, 2};
  static const std::vector<Index> benefits{-1, 0, 0, -1, 1, -1, -1};
  static const std::vector<std::uint8_t> types{
      static_cast<std::uint8_t>(EventType::ordered),  static_cast<std::uint8_t>(EventType::issued),
      static_cast<std::uint8_t>(EventType::redeemed), static_cast<std::uint8_t>(EventType::ordered),
      static_cast<std::uint8_t>(EventType::issued),   static_cast<std::uint8_t>(EventType::ordered),
      static_cast<std::uint8_t>(EventType::ordered)};
  static const std::vector<Timestamp> times{100, 150, 160, 170, 50, 60, 300};
  static const std::vector<float> amounts{10, 0, 0, 20, 0, 5, 7};
  static const std::vector<std::uint8_t> control{1, 0, 0, 0, 0, 0, 0};
  EventColumns c;
  c.user = users;
  c.benefit = benefits;
  c.type = types;
  c.timestamp = times;
  c.order_amount = amounts;
  if (with_control) c.control = control;
  return EventLog::from_columns(c, 3, 2);
}

TEST(ExperimentMembers, SumsPerMemberInTheWindowAndBeforeIt) {
  const EventLog log = experiment_log();
  const std::vector<double> cost{2.0, 3.0};
  // The whole log: every order, both issues.
  const ExperimentMembers all = experiment_members(log, cost, kNoTime, kNoTime, 0.5);
  EXPECT_EQ(all.control, (std::vector<std::uint8_t>{1, 0, 0}));
  EXPECT_EQ(all.orders, (std::vector<double>{1, 2, 1}));
  EXPECT_EQ(all.revenue, (std::vector<double>{10, 25, 7}));
  EXPECT_EQ(all.cost, (std::vector<double>{0, 2.0 + 0.5 * 2, 0}));
  EXPECT_TRUE(all.orders_pre.empty());
  // [100, 200) with the 100 seconds before it as the pre-period.
  const ExperimentMembers window = experiment_members(log, cost, 100, 200, 0.5);
  EXPECT_EQ(window.orders, (std::vector<double>{1, 1, 0}));
  EXPECT_EQ(window.revenue, (std::vector<double>{10, 20, 0}));
  EXPECT_EQ(window.cost, (std::vector<double>{0, 2.5, 0}));
  EXPECT_EQ(window.orders_pre, (std::vector<double>{0, 1, 0}));
  EXPECT_EQ(window.revenue_pre, (std::vector<double>{0, 5, 0}));
  // Without until the window runs to the end and the pre-period is as long (to the log's end).
  const ExperimentMembers open = experiment_members(log, cost, 100);
  EXPECT_EQ(open.orders, (std::vector<double>{1, 1, 1}));
  EXPECT_EQ(open.cost, (std::vector<double>{0, 2.0, 0}));
  EXPECT_EQ(open.orders_pre, (std::vector<double>{0, 1, 0}));
}

TEST(ExperimentMembers, RejectsBadInputBeforeWork) {
  const EventLog log = experiment_log();
  const std::vector<double> cost{2.0, 3.0};
  PERKREC_EXPECT_THROW_MSG(experiment_members(experiment_log(false), cost), InputError,
                           "control flag");
  PERKREC_EXPECT_THROW_MSG(experiment_members(log, std::vector<double>{1.0}), InputError,
                           "has 1 benefits, the log 2");
  PERKREC_EXPECT_THROW_MSG(experiment_members(log, cost, kNoTime, kNoTime, -1.0), InputError,
                           "issue_cost");
  PERKREC_EXPECT_THROW_MSG(experiment_members(log, cost, 200, 100), InputError,
                           "since must be before until");
}

}  // namespace
}  // namespace perkrec
