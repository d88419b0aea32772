// Planner, its estimators and the baselines (decide/planner.hpp).
#include <cmath>
#include <random>
#include <set>

#include "perkrec/detail/numpy_sum.hpp"
#include "test_util.hpp"

namespace perkrec {
namespace {

using testing::day_time;
using testing::make_log;
using testing::Row;

// Four benefits: costs 1, 2, 4, 0.5 per redemption; validity 10, 20, 5, 30 days.
Catalog four_benefits() {
  std::vector<Benefit> v(4);
  const char* ids[] = {"A", "B", "C", "D"};
  const BenefitKind kinds[] = {BenefitKind::discount, BenefitKind::points, BenefitKind::gift,
                               BenefitKind::free_shipping};
  const double cost[] = {1.0, 2.0, 4.0, 0.5};
  const std::int32_t validity[] = {10, 20, 5, 30};
  for (int b = 0; b < 4; ++b) {
    v[static_cast<std::size_t>(b)].id = ids[b];
    v[static_cast<std::size_t>(b)].kind = kinds[b];
    v[static_cast<std::size_t>(b)].cost = cost[b];
    v[static_cast<std::size_t>(b)].validity_days = validity[b];
  }
  return Catalog(v);
}

UserTable members(Index n) {
  UserTable t(IdMap::range(n));
  std::vector<std::int32_t> tier(static_cast<std::size_t>(n));
  for (Index u = 0; u < n; ++u) tier[static_cast<std::size_t>(u)] = u % 3 == 0 ? 0 : 1;
  t.add_categorical("tier", tier, {"gold", "basic"});
  return t;
}

const Timestamp kPlan = day_time(30);

// --- estimators ----------------------------------------------------------------------------------

TEST(PlannerEstimators, OrderValueIsMarginTimesMedianWithPopulationFallback) {
  // Member 0 orders 10, 30, 20 (median 20); member 1 orders 50; member 2 never orders.
  const EventLog log = make_log({{0, -1, EventType::ordered, 1, 10.0f},
                                 {0, -1, EventType::ordered, 2, 30.0f},
                                 {0, -1, EventType::ordered, 3, 20.0f},
                                 {1, -1, EventType::ordered, 4, 50.0f},
                                 {2, 0, EventType::issued, 5}},
                                3, 1);
  EXPECT_EQ(order_value(log, 0.5),
            (std::vector<float>{10.0f, 25.0f, 12.5f}));  // population median 25
  // Only orders before day 3: member 0 has 10 and 30 (median 20); the population 10, 30 -> 20.
  EXPECT_EQ(order_value(log, 0.5, day_time(3)), (std::vector<float>{10.0f, 10.0f, 10.0f}));
  EXPECT_THROW(order_value(log, 0.0), ConfigError);
  EXPECT_THROW(order_value(log, 1.5), ConfigError);
  EXPECT_THROW(order_value(log, 0.5, day_time(0)), InputError);  // no order before the cut
  const std::vector<Index> users{0, 5};
  const std::vector<float> amounts{1.0f, 2.0f};
  EXPECT_THROW(order_value(users, {}, amounts, 3, 0.5), InputError);  // member out of range
  const std::vector<float> nan_amounts{1.0f, std::nanf("")};
  const std::vector<Index> ok_users{0, 1};
  EXPECT_THROW(order_value(ok_users, {}, nan_amounts, 3, 0.5), InputError);
}

TEST(PlannerEstimators, RedemptionCountsSkipEventsWithoutABenefit) {
  const EventLog log = make_log({{0, 2, EventType::redeemed, 1},
                                 {1, 2, EventType::redeemed, 2},
                                 {1, 0, EventType::issued, 3},
                                 {2, 3, EventType::redeemed, 4}},
                                3, 5);
  EXPECT_EQ(redemption_counts(log, 5), (std::vector<std::int64_t>{0, 0, 2, 1, 0}));
  const std::vector<Index> b{2, -1, 2, 7};
  EXPECT_THROW(redemption_counts(b, 5), InputError);
}

TEST(PlannerEstimators, TimingShareMatrixAndScorerAgree) {
  const std::vector<double> rate{0.0, 0.1}, validity{10, 20, 5, 30};
  const std::vector<float> s = timing_share(rate, validity);
  ASSERT_EQ(s.size(), 8u);
  for (int b = 0; b < 4; ++b) EXPECT_EQ(s[static_cast<std::size_t>(b)], 1.0f);
  EXPECT_EQ(s[4 + 2], static_cast<float>(std::exp(-0.5)));
  const ScoreBlend::Scorer scorer = timing_share_scorer(rate, validity);
  const std::vector<Index> u{1, 1, 0}, b{0, 3, 2};
  std::vector<float> out(3);
  scorer(u, b, out);
  EXPECT_EQ(out, (std::vector<float>{s[4], s[7], s[2]}));
  const std::vector<double> negative{-0.1};
  EXPECT_THROW(timing_share(negative, validity), InputError);
  const std::vector<Index> far{2};
  std::vector<float> one(1);
  EXPECT_THROW(scorer(far, std::vector<Index>{0}, one), InputError);
}

TEST(PlannerEstimators, IncrementalShareFromControlIsTheUpliftPerRedemption) {
  // One benefit (kind 0, valid 10 days), four members, nobody ordered before day 10.
  // Issues at day 10 to all four: members 0 and 1 order on day 12 (within the validity) and
  // redeem; member 3 orders on day 25 (too late). Control rows: member 3 at day 16 (the day-25
  // order falls in its window), member 2 at days 10, 20, 30.
  // Issued order rate 2/4, control 1/4, redemption rate 2/4: share (0.5 - 0.25) / 0.5 = 0.5.
  const std::vector<Index> order_user{0, 1, 3};
  const std::vector<Timestamp> order_time{day_time(12), day_time(12), day_time(25)};
  const std::vector<Index> issue_user{0, 1, 2, 3}, issue_benefit{0, 0, 0, 0};
  const std::vector<Timestamp> issue_time(4, day_time(10));
  const std::vector<double> redeemed{1, 1, 0, 0};
  const std::vector<Index> control_user{3, 2, 2, 2}, control_benefit{0, 0, 0, 0};
  const std::vector<Timestamp> control_time{day_time(16), day_time(10), day_time(20), day_time(30)};
  const std::vector<std::int32_t> kind{0};
  const std::vector<double> validity{10.0};
  ControlShareInputs in;
  in.n_users = 4;
  in.order_user = order_user;
  in.order_time = order_time;
  in.issue_user = issue_user;
  in.issue_benefit = issue_benefit;
  in.issue_time = issue_time;
  in.issue_redeemed = redeemed;
  in.control_user = control_user;
  in.control_benefit = control_benefit;
  in.control_time = control_time;
  in.benefit_kind = kind;
  in.n_kinds = 1;
  in.validity_days = validity;
  in.plan_time = day_time(100);
  in.min_rows = 1;
  // Members 0, 1, 3 are in a stratum without rows (one order, overdue): the kind's pooled share.
  EXPECT_EQ(incremental_share_from_control(in), (std::vector<float>{0.5f, 0.5f, 0.5f, 0.5f}));
  in.min_rows = 5;  // no stratum and no kind has 5 rows a side: the overall share
  EXPECT_EQ(incremental_share_from_control(in), (std::vector<float>{0.5f, 0.5f, 0.5f, 0.5f}));
  // Control members who order as often as the issued ones: nothing is incremental.
  const std::vector<Timestamp> busy_control{day_time(10), day_time(10), day_time(10), day_time(10)};
  const std::vector<Index> busy_user{3, 3, 0, 1};
  in.control_user = busy_user;
  in.control_time = busy_control;
  in.min_rows = 1;
  EXPECT_EQ(incremental_share_from_control(in), (std::vector<float>{0.0f, 0.0f, 0.0f, 0.0f}));
  in.min_rows = 0;
  EXPECT_THROW(incremental_share_from_control(in), ConfigError);
  in.min_rows = 1;
  const std::vector<Index> bad_benefit{0, 0, 3, 0};
  in.issue_benefit = bad_benefit;
  EXPECT_THROW(incremental_share_from_control(in), InputError);
  in.issue_benefit = issue_benefit;
  in.issue_user = {};
  EXPECT_THROW(incremental_share_from_control(in), InputError);
}

TEST(PlannerEstimators, IncrementalShareFromControlOfALogAssemblesTheRows) {
  // One benefit valid 10 days. Members 0 and 1 are issued it on day 10; member 0 orders and
  // redeems on day 12. Members 2, 3, 4 are the control group (seen from day 0); member 2 orders
  // on day 15. Every pseudo-issue draws a day-10 issue, so any seed gives: issued order rate
  // 1/2, redemption rate 1/2, control order rate 1/3, share (1/2 - 1/3) / (1/2) = 1/3.
  const std::vector<Index> users{0, 1, 0, 0, 2, 3, 4, 2};
  const std::vector<Index> benefits{0, 0, 0, -1, 0, 0, 0, -1};
  const auto t = [](EventType e) { return static_cast<std::uint8_t>(e); };
  const std::vector<std::uint8_t> types{
      t(EventType::issued), t(EventType::issued), t(EventType::redeemed), t(EventType::ordered),
      t(EventType::viewed), t(EventType::viewed), t(EventType::viewed),   t(EventType::ordered)};
  const std::vector<Timestamp> times{day_time(10), day_time(10), day_time(12), day_time(12),
                                     day_time(0),  day_time(0),  day_time(0),  day_time(15)};
  const std::vector<std::uint8_t> control{0, 0, 0, 0, 1, 1, 1, 1};
  EventColumns c;
  c.user = users;
  c.benefit = benefits;
  c.type = types;
  c.timestamp = times;
  c.control = control;
  const EventLog log = EventLog::from_columns(c, 5, 1);
  std::vector<Benefit> one(1);
  one[0].id = "A";
  one[0].validity_days = 10;
  const Catalog catalog(one);
  for (std::uint64_t seed : {0u, 7u}) {
    ControlShareParams p;
    p.seed = seed;
    p.min_rows = 1;
    const std::vector<float> share = incremental_share_from_control(log, catalog, day_time(100), p);
    ASSERT_EQ(share.size(), 5u);
    for (float v : share) EXPECT_FLOAT_EQ(v, 1.0f / 3.0f);
  }
  // Before the issues' windows end there is nothing to learn from.
  PERKREC_EXPECT_THROW_MSG(incremental_share_from_control(log, catalog, day_time(19)), InputError,
                           "complete validity windows", "0 issues");
  ControlShareParams bad;
  bad.pseudo_issues = 0;
  PERKREC_EXPECT_THROW_MSG(incremental_share_from_control(log, catalog, day_time(100), bad),
                           ConfigError, "pseudo_issues");
  PERKREC_EXPECT_THROW_MSG(incremental_share_from_control(
                               make_log({{0, 0, EventType::issued, 1.0}}), catalog, day_time(100)),
                           InputError, "no control column");
  PERKREC_EXPECT_THROW_MSG(incremental_share_from_control(log, four_benefits(), day_time(100)),
                           InputError, "the catalog has 4 benefits, the log 1");
}

TEST(PlannerEstimators, FactorScorerIsTheSigmoidOfBiasPlusDot) {
  const std::vector<float> users{1.0f, 0.0f, 0.5f, -1.0f};  // 2 members x k = 2
  const std::vector<float> benefits{2.0f, 1.0f};            // 1 benefit
  const std::vector<float> bias{-1.0f};
  const ScoreBlend::Scorer s = factor_scorer(users, benefits, bias, 2);
  std::vector<float> out(2);
  s(std::vector<Index>{0, 1}, std::vector<Index>{0, 0}, out);
  EXPECT_FLOAT_EQ(out[0], static_cast<float>(1.0 / (1.0 + std::exp(-1.0))));
  EXPECT_FLOAT_EQ(out[1], static_cast<float>(1.0 / (1.0 + std::exp(1.0))));  // 1 - 1 - 1
  EXPECT_THROW(factor_scorer(users, benefits, bias, 3), InputError);
  const std::vector<float> bad{std::nanf(""), 1.0f};
  EXPECT_THROW(factor_scorer(users, bad, bias, 2), InputError);
}

// --- baselines -----------------------------------------------------------------------------------

struct Dense {
  Index n, m;
  std::vector<double> p, v, cost;
  std::vector<std::uint8_t> eligible;
  BaselineInputs view(double budget) const {
    BaselineInputs in;
    in.n_users = n;
    in.n_benefits = m;
    in.redemption_probability = p;
    in.value = v;
    in.cost_per_redemption = cost;
    in.eligible = eligible;
    in.budget = budget;
    return in;
  }
};

Dense dense(Index n, Index m, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  Dense d{n, m, {}, {}, {}, {}};
  for (Index i = 0; i < n * m; ++i) {
    d.p.push_back(0.5 * unit(rng));
    d.v.push_back(10.0 * unit(rng));
    d.eligible.push_back(unit(rng) < 0.8 ? 1 : 0);
  }
  for (Index b = 0; b < m; ++b) d.cost.push_back(1.0 + b);
  return d;
}

TEST(PlannerBaselines, PopularityGivesTheMostPopularAffordableBenefitToEveryone) {
  Dense d{3, 2, {0.5, 0.1, 0.5, 0.1, 0.5, 0.1}, {1, 2, 3, 4, 5, 6}, {2.0, 1.0}, {}};
  // Expected cost per member: benefit 0 = 1.0, benefit 1 = 0.1; benefit 0 is more popular.
  const std::vector<double> popularity{5, 3};
  BaselinePlan all = popularity_plan(d.view(3.0), popularity);
  EXPECT_EQ(all.chosen, 0);
  EXPECT_EQ(all.member, (std::vector<Index>{0, 1, 2}));
  EXPECT_EQ(all.value, (std::vector<double>{1, 3, 5}));
  // Budget 1: benefit 0 (total 3) does not fit, benefit 1 (total 0.3) does.
  BaselinePlan cheap = popularity_plan(d.view(1.0), popularity);
  EXPECT_EQ(cheap.chosen, 1);
  EXPECT_EQ(cheap.member.size(), 3u);
  // Budget 0.2: none fits everyone; the most popular goes to members in order while it fits.
  BaselineInputs in = d.view(2.5);
  const std::vector<Index> order{2, 0, 1};
  in.order = order;
  const std::vector<double> pop2{1, 5};  // benefit 1 first: total 0.3 fits
  EXPECT_EQ(popularity_plan(in, pop2).chosen, 1);
  in.budget = 0.25;
  BaselinePlan partial = popularity_plan(in, pop2);
  EXPECT_EQ(partial.chosen, 1);
  EXPECT_EQ(partial.member,
            (std::vector<Index>{0, 2}));  // visited 2, 0 (0.2 spent); 1 would overshoot
  for (double c : partial.cost) EXPECT_DOUBLE_EQ(c, 0.1);
}

TEST(PlannerBaselines, BudgetIsNeverExceededAndEligibilityNeverLeaks) {
  const Dense d = dense(400, 6, 3);
  const std::vector<double> popularity{1, 6, 2, 5, 3, 4};
  std::vector<std::int32_t> segment(400);
  for (std::size_t u = 0; u < segment.size(); ++u)
    segment[u] = static_cast<std::int32_t>(u % 4) - 1;
  const std::vector<Index> segment_benefit{1, -1, 4};
  for (double budget : {0.0, 3.0, 40.0, 1e9}) {
    for (int which = 0; which < 2; ++which) {
      BaselineInputs in = d.view(budget);
      in.seed = 11;
      const BaselinePlan plan = which == 0 ? popularity_plan(in, popularity)
                                           : segment_rules_plan(in, segment, segment_benefit);
      double spent = 0;
      for (std::size_t i = 0; i < plan.member.size(); ++i) {
        const auto at = static_cast<std::size_t>(plan.member[i]) * 6 +
                        static_cast<std::size_t>(plan.benefit[i]);
        EXPECT_EQ(d.eligible[at], 1) << "member " << plan.member[i];
        EXPECT_DOUBLE_EQ(plan.cost[i], d.p[at] * d.cost[static_cast<std::size_t>(plan.benefit[i])]);
        if (which == 1) {
          EXPECT_EQ(plan.benefit[i], segment_benefit[static_cast<std::size_t>(
                                         segment[static_cast<std::size_t>(plan.member[i])])]);
        }
        if (i > 0) {
          EXPECT_LT(plan.member[i - 1], plan.member[i]);
        }
        spent += plan.cost[i];
      }
      EXPECT_LE(spent, budget + 1e-9);
    }
  }
}

TEST(PlannerBaselines, RejectBadInputBeforeWork) {
  Dense d = dense(5, 3, 1);
  const std::vector<double> popularity{1, 2, 3};
  EXPECT_THROW(popularity_plan(d.view(-1.0), popularity), ConfigError);
  EXPECT_THROW(popularity_plan(d.view(std::nan("")), popularity), ConfigError);
  EXPECT_THROW(popularity_plan(d.view(1.0), std::vector<double>{1, 2}), InputError);
  Dense bad = d;
  bad.p[4] = std::nan("");
  EXPECT_THROW(popularity_plan(bad.view(1.0), popularity), InputError);
  BaselineInputs in = d.view(1.0);
  const std::vector<Index> not_permutation{0, 1, 1, 2, 3};
  in.order = not_permutation;
  EXPECT_THROW(popularity_plan(in, popularity), InputError);
  const std::vector<std::int32_t> codes{0, 0, 2, 0, 0};
  EXPECT_THROW(segment_rules_plan(d.view(1.0), codes, std::vector<Index>{0, 1}), InputError);
  EXPECT_THROW(segment_rules_plan(d.view(1.0), std::vector<std::int32_t>{0, 0, 0, 0, 0},
                                  std::vector<Index>{3}),
               InputError);
}

TEST(PlannerBaselines, PairwiseSumMatchesNumpyOrder) {
  // 1 + 1e-16 * k: a sequential sum loses every tiny term, the pairwise one keeps some.
  std::vector<double> x(1000, 1e-16);
  x[0] = 1.0;
  double sequential = 0;
  for (double v : x) sequential += v;
  EXPECT_EQ(sequential, 1.0);
  EXPECT_GT(detail::numpy_pairwise_sum(x.data(), x.size()), 1.0);
  EXPECT_EQ(detail::numpy_pairwise_sum(x.data(), 5), 1.0);  // short: sequential
}

TEST(PlannerBaselines, PlanTruthSumsTheRowsTrueFigures) {
  // Two members x two benefits; the plan gives member 0 both benefits and member 1 benefit 1.
  const std::vector<double> red{0.5, 0.25, 0.1, 0.2}, inc{0.2, 0.1, 0.05, 0.1};
  const std::vector<double> value{10, 20}, cost{4, 8};
  const std::vector<Index> users{0, 0, 1}, benefits{0, 1, 1};
  const PlanTruth t = evaluate_plan_truth(red, inc, 2, 2, value, cost, users, benefits, 0.5);
  EXPECT_EQ(t.members, 2);
  EXPECT_EQ(t.benefits, 3);
  EXPECT_DOUBLE_EQ(t.redemptions, 0.5 + 0.25 + 0.2);
  EXPECT_DOUBLE_EQ(t.incremental_return, 0.2 * 10 + 0.1 * 10 + 0.1 * 20);
  EXPECT_DOUBLE_EQ(t.cost, 3 * 0.5 + 0.5 * 4 + 0.25 * 8 + 0.2 * 8);
  EXPECT_DOUBLE_EQ(t.return_per_cost, 5.0 / 7.1);
  const PlanTruth none = evaluate_plan_truth(red, inc, 2, 2, value, cost, {}, {}, 0.5);
  EXPECT_EQ(none.benefits, 0);
  EXPECT_TRUE(std::isnan(none.return_per_cost));
  PERKREC_EXPECT_THROW_MSG(evaluate_plan_truth(red, inc, 2, 2, value, cost, std::vector<Index>{2},
                                               std::vector<Index>{0}, 0.5),
                           InputError, "plan row 0", "2 x 2");
  std::vector<double> bad = red;
  bad[3] = NAN;
  PERKREC_EXPECT_THROW_MSG(evaluate_plan_truth(bad, inc, 2, 2, value, cost, users, benefits, 0.5),
                           InputError, "redemption_probability[3]");
}

TEST(PlannerBaselines, NumpyQuantileInterpolatesAsNumpyLinear) {
  std::vector<double> x{10, 2, 4};  // sorted 2, 4, 10
  EXPECT_EQ(detail::numpy_quantile(x, 0.0), 2.0);
  EXPECT_EQ(detail::numpy_quantile(x, 0.5), 4.0);
  EXPECT_EQ(detail::numpy_quantile(x, 0.75), 7.0);  // from the upper value: 10 - 6 x 0.5
  EXPECT_EQ(detail::numpy_quantile(x, 1.0), 10.0);
  EXPECT_DOUBLE_EQ(detail::numpy_quantile(x, 0.1), 2.4);
  std::vector<double> one{3.5};
  EXPECT_EQ(detail::numpy_quantile(one, 0.3), 3.5);
}

// Five benefits: A discount 5, B points 2, C threshold discount 10, D free shipping 6, E gift 20
// (face values; the 0.75 quantile is 10, so C and E are the top face-value quartile).
Catalog five_kinds() {
  std::vector<Benefit> v(5);
  const char* ids[] = {"A", "B", "C", "D", "E"};
  const BenefitKind kinds[] = {BenefitKind::discount, BenefitKind::points,
                               BenefitKind::threshold_discount, BenefitKind::free_shipping,
                               BenefitKind::gift};
  const double face[] = {5, 2, 10, 6, 20};
  for (std::size_t b = 0; b < 5; ++b) {
    v[b].id = ids[b];
    v[b].kind = kinds[b];
    v[b].face_value = face[b];
    v[b].threshold = kinds[b] == BenefitKind::threshold_discount ? 50 : 0;
    v[b].cost = face[b];
    v[b].validity_days = 10;
  }
  return Catalog(v);
}

TEST(PlannerBaselines, DefaultSegmentBenefitsFollowTheSegmentNames) {
  const Catalog catalog = five_kinds();
  const std::vector<double> popularity{5, 1, 9, 3, 2};
  const std::vector<std::string> names{"dormant",
                                       "points_redemption_active",
                                       "threshold_discount_sensitive",
                                       "high_face_value_seeker",
                                       "new_member",
                                       "anyone else"};
  EXPECT_EQ(default_segment_benefits(catalog, popularity, names),
            (std::vector<Index>{0, 1, 2, 2, 3, 2}));
  // Expected costs 1, 1, 3, 1, 0.5 with at most 2 per member: C never fits, so the threshold
  // segment gets the cheapest of its kind (C itself), the high-value one E, the rest A.
  const std::vector<double> cost{1, 1, 3, 1, 0.5};
  EXPECT_EQ(default_segment_benefits(catalog, popularity, names, cost, 2.0),
            (std::vector<Index>{0, 1, 2, 4, 3, 0}));
  // Ties go to the lower index; a kind the catalog lacks falls back to every benefit.
  const std::vector<double> flat{1, 1, 1, 1, 1};
  EXPECT_EQ(default_segment_benefits(catalog, flat, {"high_face_value_seeker", "x"}),
            (std::vector<Index>{2, 0}));
  std::vector<Benefit> no_points;
  for (Index b : {0, 2}) no_points.push_back(catalog[b]);
  EXPECT_EQ(default_segment_benefits(Catalog(no_points), std::vector<double>{1, 4},
                                     {"points_redemption_active"}),
            (std::vector<Index>{1}));
}

TEST(PlannerBaselines, DefaultSegmentBenefitsRejectBadInput) {
  const Catalog catalog = five_kinds();
  PERKREC_EXPECT_THROW_MSG(
      default_segment_benefits(catalog, std::vector<double>{1, 2, 3, 4}, {"dormant"}), InputError,
      "popularity has 4 values (expected 5");
  PERKREC_EXPECT_THROW_MSG(
      default_segment_benefits(catalog, std::vector<double>{1, NAN, 3, 4, 5}, {"dormant"}),
      InputError, "popularity[1]");
  const std::vector<double> pop{1, 2, 3, 4, 5};
  PERKREC_EXPECT_THROW_MSG(default_segment_benefits(catalog, pop, {"dormant"},
                                                    std::vector<double>{1, 1, 1, 1, INFINITY}),
                           InputError, "expected_cost[4]");
  PERKREC_EXPECT_THROW_MSG(
      default_segment_benefits(catalog, pop, {"dormant"}, std::vector<double>(5, 1.0), NAN),
      InputError, "max_cost_per_user");
  PERKREC_EXPECT_THROW_MSG(default_segment_benefits(Catalog(), {}, {"dormant"}), InputError,
                           "empty");
}

// --- planner -------------------------------------------------------------------------------------

struct Program {
  Catalog catalog = four_benefits();
  UserTable users;
  CompiledPolicy compiled;
  std::vector<float> prob, share, value;
};

// n members; benefit C (index 2) excluded for basic members by a rule.
Program program(Index n, double budget, std::uint32_t seed, int max_per_member = 1) {
  Program p;
  p.users = members(n);
  Policy policy = Policy::from_string(
      R"({"rules": [{"name": "gifts for gold", "effect": "deny", "benefits": {"ids": ["C"]},
          "members": {"attributes": [{"column": "tier", "op": "in", "value": ["basic"]}]}}]})");
  policy.budget = budget;
  policy.issue_cost = 0.05;
  policy.max_per_member = max_per_member;
  p.compiled = policy.compile(p.catalog, p.users, kPlan);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  for (Index i = 0; i < n * 4; ++i) {
    p.prob.push_back(0.6f * unit(rng));
    p.share.push_back(unit(rng));
  }
  for (Index u = 0; u < n; ++u) p.value.push_back(5.0f + 20.0f * unit(rng));
  return p;
}

PlanInputs dense_inputs(const Program& p) {
  PlanInputs in;
  in.redemption_probability = p.prob;
  in.incremental_share = p.share;
  in.order_value = p.value;
  return in;
}

TEST(Planner, HandBuiltCaseHasTheKnownAnswer) {
  // Two members, unlimited budget, one benefit each. Member 0 (gold): A 5 - 0.55 = 4.45,
  // B 1 - 0.25, C 4 - 1.65 = 2.35, D 2 - 0.15 = 1.85. Member 1 (basic): C is excluded.
  Program p = program(2, std::numeric_limits<double>::infinity(), 1);
  p.prob = {0.5f, 0.1f, 0.4f, 0.2f, 0.5f, 0.1f, 0.4f, 0.2f};
  p.share.assign(8, 1.0f);
  p.value = {10.0f, 10.0f};
  PlanInputs in = dense_inputs(p);
  const Planner planner;
  PlanResult plan = planner.plan(p.compiled, p.catalog, kPlan, in);
  EXPECT_EQ(plan.member, (std::vector<Index>{0, 1}));
  EXPECT_EQ(plan.benefit, (std::vector<Index>{0, 0}));
  EXPECT_FLOAT_EQ(plan.value[0], 5.0f);
  EXPECT_FLOAT_EQ(plan.cost[0], 0.55f);
  EXPECT_FLOAT_EQ(plan.probability[1], 0.5f);
  // C worth three times as much: member 0 takes it, member 1 cannot (the rule names why).
  const std::vector<float> benefit_value{1.0f, 1.0f, 3.0f, 1.0f};
  in.benefit_value = benefit_value;
  plan = planner.plan(p.compiled, p.catalog, kPlan, in);
  EXPECT_EQ(plan.benefit, (std::vector<Index>{2, 0}));
  EXPECT_FLOAT_EQ(plan.value[0], 12.0f);
  ASSERT_EQ(plan.reasons.size(), 2u);
  const Json why = Json::parse(plan.reasons[1]);
  EXPECT_EQ(why["benefit"], "A");
  EXPECT_EQ(why["best_ineligible"]["benefit"], "C");
  EXPECT_EQ(why["best_ineligible"]["rule"], "gifts for gold");
  EXPECT_EQ(why["runner_up"]["benefit"], "D");  // A 4.45, D 1.85, B 0.75
  // Default send time: 10:00 UTC on or after the plan time; the catalog's validity.
  EXPECT_EQ(plan.send_at[0] % kSecondsPerDay, 10 * kSecondsPerHour);
  EXPECT_GE(plan.send_at[0], kPlan);
  EXPECT_EQ(plan.validity_days, (std::vector<std::int32_t>{5, 10}));
  // Objective redemption ignores the share; a budget of 0.6 affords one of the two.
  p.share.assign(8, 0.0f);
  in = dense_inputs(p);
  PlannerParams params;
  params.objective = RankerParams::Objective::redemption;
  in.budget = 0.6;
  plan = Planner(params).plan(p.compiled, p.catalog, kPlan, in);
  EXPECT_EQ(plan.member.size(), 1u);
  EXPECT_DOUBLE_EQ(plan.budget, 0.6);
}

TEST(Planner, BudgetIsNeverExceededAndEligibilityNeverLeaks) {
  for (double budget : {0.0, 5.0, 60.0, std::numeric_limits<double>::infinity()}) {
    for (auto method : {PlannerParams::Method::dual, PlannerParams::Method::greedy}) {
      const Program p = program(600, budget, 7, 2);
      PlannerParams params;
      params.method = method;
      const PlanResult plan = Planner(params).plan(p.compiled, p.catalog, kPlan, dense_inputs(p));
      double spent = 0;
      for (std::size_t i = 0; i < plan.member.size(); ++i) {
        ASSERT_TRUE(p.compiled.masks.eligible(plan.member[i], plan.benefit[i]))
            << "member " << plan.member[i] << " benefit " << plan.benefit[i];
        if (plan.member[i] % 3 != 0) {
          EXPECT_NE(plan.benefit[i], 2);
        }
        spent += plan.cost[i];
      }
      EXPECT_LE(spent, budget * (1 + 1e-6) + 1e-6);
      EXPECT_EQ(check_allocation(plan.candidates, p.compiled.constraints, plan.allocation), "");
      if (budget == 0.0) {
        EXPECT_TRUE(plan.member.empty());
      }
    }
  }
}

TEST(Planner, ScorersGiveTheSamePlanAsDenseMatrices) {
  const Program p = program(700, 40.0, 5, 2);
  // Dense probabilities from factors, then the same as a scorer.
  std::vector<float> user_factors,
      benefit_factors{0.5f, -0.2f, 0.1f, 0.3f, -0.4f, 0.2f, 0.0f, 0.1f};
  std::mt19937 rng(2);
  std::normal_distribution<float> normal;
  for (int i = 0; i < 700 * 2; ++i) user_factors.push_back(normal(rng));
  const std::vector<float> bias{-1.0f, -1.5f, -0.5f, -2.0f};
  const ScoreBlend::Scorer scorer = factor_scorer(user_factors, benefit_factors, bias, 2);
  std::vector<Index> all_u, all_b;
  for (Index u = 0; u < 700; ++u) {
    for (Index b = 0; b < 4; ++b) {
      all_u.push_back(u);
      all_b.push_back(b);
    }
  }
  std::vector<float> dense_prob(all_u.size());
  scorer(all_u, all_b, dense_prob);
  std::vector<double> rate(700), validity{10, 20, 5, 30};
  for (std::size_t u = 0; u < rate.size(); ++u) rate[u] = 0.01 * static_cast<double>(u % 20);
  const std::vector<float> dense_share = timing_share(rate, validity);

  PlanInputs dense;
  dense.redemption_probability = dense_prob;
  dense.incremental_share = dense_share;
  dense.order_value = p.value;
  PlanInputs scored;
  scored.probability = scorer;
  scored.incremental_share_scorer = timing_share_scorer(rate, validity);
  scored.order_value = p.value;
  const Planner planner;
  const PlanResult a = planner.plan(p.compiled, p.catalog, kPlan, dense);
  const PlanResult b = planner.plan(p.compiled, p.catalog, kPlan, scored);
  ASSERT_GT(a.member.size(), 10u);
  EXPECT_EQ(a.member, b.member);
  EXPECT_EQ(a.benefit, b.benefit);
  EXPECT_EQ(a.value, b.value);
  EXPECT_EQ(a.cost, b.cost);
  EXPECT_EQ(a.send_at, b.send_at);
  EXPECT_EQ(a.reasons, b.reasons);
  EXPECT_EQ(a.diagnostics.best_ineligible, b.diagnostics.best_ineligible);
}

TEST(Planner, ResultIsIdenticalForAnyThreadCount) {
  const Program p = program(3000, 150.0, 9, 2);
  PlannerParams one;
  one.num_threads = 1;
  PlannerParams two = one;
  two.num_threads = 2;
  PlannerParams four = one;
  four.num_threads = 4;
  const PlanResult a = Planner(one).plan(p.compiled, p.catalog, kPlan, dense_inputs(p));
  for (const PlannerParams& params : {two, four}) {
    const PlanResult b = Planner(params).plan(p.compiled, p.catalog, kPlan, dense_inputs(p));
    EXPECT_EQ(a.member, b.member);
    EXPECT_EQ(a.benefit, b.benefit);
    EXPECT_EQ(a.value, b.value);
    EXPECT_EQ(a.cost, b.cost);
    EXPECT_EQ(a.send_at, b.send_at);
    EXPECT_EQ(a.reasons, b.reasons);
    EXPECT_EQ(a.allocation.multiplier, b.allocation.multiplier);
  }
}

TEST(Planner, TypedErrorsOnBadInputBeforeWork) {
  Program p = program(10, 5.0, 3);
  const Planner planner;
  PlanInputs in = dense_inputs(p);
  // Lengths.
  const std::vector<float> short_prob(p.prob.begin(), p.prob.end() - 1);
  in.redemption_probability = short_prob;
  EXPECT_THROW(planner.plan(p.compiled, p.catalog, kPlan, in), InputError);
  in = dense_inputs(p);
  const std::vector<float> short_value(5, 1.0f);
  in.order_value = short_value;
  EXPECT_THROW(planner.plan(p.compiled, p.catalog, kPlan, in), InputError);
  // NaN and out-of-range probabilities, from a matrix or a scorer.
  std::vector<float> nan_prob = p.prob;
  nan_prob[13] = std::nanf("");
  in = dense_inputs(p);
  in.redemption_probability = nan_prob;
  try {
    planner.plan(p.compiled, p.catalog, kPlan, in);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("redemption_probability[3, 1]"), std::string::npos)
        << e.what();
  }
  in = dense_inputs(p);
  in.redemption_probability = {};
  in.probability = [](Span<const Index>, Span<const Index>, Span<float> out) {
    for (float& x : out) x = 1.5f;
  };
  EXPECT_THROW(planner.plan(p.compiled, p.catalog, kPlan, in), InputError);
  // No source, two sources, no share for objective incremental.
  in = dense_inputs(p);
  in.redemption_probability = {};
  EXPECT_THROW(planner.plan(p.compiled, p.catalog, kPlan, in), InputError);
  in = dense_inputs(p);
  in.probability = factor_scorer(std::vector<float>(10, 0.0f), std::vector<float>(4, 0.0f), {}, 1);
  EXPECT_THROW(planner.plan(p.compiled, p.catalog, kPlan, in), InputError);
  in = dense_inputs(p);
  in.incremental_share = {};
  EXPECT_THROW(planner.plan(p.compiled, p.catalog, kPlan, in), InputError);
  // Negative budget; bad parameters.
  in = dense_inputs(p);
  in.budget = -1.0;
  EXPECT_THROW(planner.plan(p.compiled, p.catalog, kPlan, in), ConfigError);
  PlannerParams bad;
  bad.top_k = 0;
  EXPECT_THROW(Planner{bad}, ConfigError);
  EXPECT_THROW(PlannerParams::from_json(Json{{"method", "best"}}), ConfigError);
  EXPECT_THROW(PlannerParams::from_json(Json{{"budget", 1}}), ConfigError);
  const PlannerParams round = PlannerParams::from_json(Json{{"method", "greedy"}, {"top_k", 7}});
  EXPECT_EQ(round.method, PlannerParams::Method::greedy);
  EXPECT_EQ(PlannerParams::from_json(round.to_json()).to_json(), round.to_json());
}

TEST(Planner, OneMemberRankingAndSendTimeMatchThePlan) {
  // Quiet hours move the 10:00 UTC default for members far from UTC.
  Program p = program(40, std::numeric_limits<double>::infinity(), 4);
  UserTable users = members(40);
  std::vector<double> offsets(40);
  for (std::size_t u = 0; u < offsets.size(); ++u)
    offsets[u] = static_cast<double>(u % 5) * 4.0 - 8.0;
  users.add_numeric("utc_offset", offsets);
  Policy policy = Policy::from_string(
      R"({"issue_cost": 0.05, "quiet_hours": {"start_hour": 21, "end_hour": 8, "utc_offset_column": "utc_offset"}})");
  p.compiled = policy.compile(p.catalog, users, kPlan);
  std::vector<float> member_share(40);
  for (std::size_t u = 0; u < member_share.size(); ++u) member_share[u] = p.share[u];
  PlanInputs in = dense_inputs(p);
  in.incremental_share = member_share;
  const Planner planner;
  const PlanResult plan = planner.plan(p.compiled, p.catalog, kPlan, in);
  ASSERT_GT(plan.member.size(), 20u);
  for (Index u = 0; u < 40; ++u) {
    const auto uz = static_cast<std::size_t>(u);
    const Span<const float> row(p.prob.data() + uz * 4, 4);
    const Candidates one =
        planner.rank_user(p.compiled, p.catalog, u, row, member_share[uz], p.value[uz]);
    const auto first = static_cast<std::size_t>(plan.candidates.offsets[uz]);
    const auto count = static_cast<std::size_t>(plan.candidates.offsets[uz + 1]) - first;
    ASSERT_EQ(one.benefit.size(), count);
    for (std::size_t i = 0; i < count; ++i) {
      EXPECT_EQ(one.benefit[i], plan.candidates.benefit[first + i]);
      EXPECT_EQ(one.value[i], plan.candidates.value[first + i]);
      EXPECT_EQ(one.cost[i], plan.candidates.cost[first + i]);
    }
  }
  std::set<Timestamp> hours;
  for (std::size_t i = 0; i < plan.member.size(); ++i) {
    const SendSchedule when =
        planner.send_time(p.compiled, p.catalog, nullptr, plan.member[i], plan.benefit[i], kPlan);
    EXPECT_EQ(when.send_at, plan.send_at[i]);
    EXPECT_EQ(when.validity_days, plan.validity_days[i]);
    hours.insert(plan.send_at[i] % kSecondsPerDay);
  }
  EXPECT_GT(hours.size(), 1u);  // the quiet hours moved some sends
  EXPECT_THROW(
      planner.rank_user(p.compiled, p.catalog, 40, Span<const float>(p.prob.data(), 4), 1.0f, 1.0f),
      InputError);
}

// The deprecated rank_member forwarders (kept one release) give what rank_user gives.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
TEST(Planner, RankMemberForwardsToRankUser) {
  Program p = program(10, std::numeric_limits<double>::infinity(), 4);
  const Planner planner;
  const std::vector<float> share(4, 0.7f);
  for (Index u = 0; u < 10; ++u) {
    const auto uz = static_cast<std::size_t>(u);
    const Span<const float> row(p.prob.data() + uz * 4, 4);
    const Candidates a = planner.rank_user(p.compiled, p.catalog, u, row, 0.7f, p.value[uz]);
    const Candidates b = planner.rank_member(p.compiled, p.catalog, u, row, 0.7f, p.value[uz]);
    const Candidates c = planner.rank_member(p.compiled, p.catalog, u, row, share, p.value[uz]);
    EXPECT_EQ(a.benefit, b.benefit);
    EXPECT_EQ(a.value, b.value);
    EXPECT_EQ(a.benefit, c.benefit);
    EXPECT_EQ(a.value, c.value);
  }
  EXPECT_THROW(planner.rank_member(p.compiled, p.catalog, 10, Span<const float>(p.prob.data(), 4),
                                   1.0f, 1.0f),
               InputError);
}
#pragma GCC diagnostic pop

TEST(Planner, InterruptedBetweenStages) {
  const Program p = program(10, 5.0, 3);
  Callbacks cb;
  cb.should_stop = [] { return true; };
  EXPECT_THROW(Planner().plan(p.compiled, p.catalog, kPlan, dense_inputs(p), cb), Interrupted);
}

}  // namespace
}  // namespace perkrec
