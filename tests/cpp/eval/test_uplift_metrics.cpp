#include <cmath>
#include <vector>

#include "test_util.hpp"

namespace perkrec {
namespace {

// Six rows with distinct scores, already in descending order (see the hand computations below).
const std::vector<double> kOutcome = {1, 0, 1, 0, 1, 0};
const std::vector<std::uint8_t> kTreatment = {1, 1, 0, 0, 1, 0};
const std::vector<double> kScore = {0.9, 0.8, 0.7, 0.6, 0.5, 0.4};

void expect_curve(const UpliftCurve& c, const std::vector<double>& x,
                  const std::vector<double>& y) {
  ASSERT_EQ(c.x.size(), x.size());
  ASSERT_EQ(c.y.size(), y.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    EXPECT_DOUBLE_EQ(c.x[i], x[i]) << "x at " << i;
    EXPECT_NEAR(c.y[i], y[i], 1e-12) << "y at " << i;
  }
}

TEST(QiniCurve, HandComputedPoints) {
  // k=1: Y_t=1, no control -> 1; k=3: 1 - 1 * 2/1 = -1; k=5: 2 - 1 * 3/2 = 0.5; k=6: 2 - 1 * 3/3
  // = 1.
  expect_curve(qini_curve(kOutcome, kScore, kTreatment), {0, 1, 2, 3, 4, 5, 6},
               {0, 1, 1, -1, 0, 0.5, 1});
}

TEST(UpliftCurve, HandComputedPoints) {
  // (mean_t - mean_c) * k: k=3: (1/2 - 1) * 3; k=5: (2/3 - 1/2) * 5; k=6: (2/3 - 1/3) * 6.
  expect_curve(uplift_curve(kOutcome, kScore, kTreatment), {0, 1, 2, 3, 4, 5, 6},
               {0, 1, 1, -1.5, 0, 5.0 / 6.0, 2});
}

TEST(QiniCurve, TiesFormOneGroupWhateverTheirOrder) {
  const std::vector<double> tied = {0.9, 0.9, 0.5, 0.5, 0.5, 0.1};
  expect_curve(qini_curve(kOutcome, tied, kTreatment), {0, 2, 5, 6}, {0, 1, 0.5, 1});
  // Reversing the rows of each tie group changes nothing.
  const std::vector<double> y = {0, 1, 1, 0, 1, 0};
  const std::vector<std::uint8_t> t = {1, 1, 1, 0, 0, 0};
  expect_curve(qini_curve(y, tied, t), {0, 2, 5, 6}, {0, 1, 0.5, 1});
}

TEST(QiniAucScore, HandComputedAgainstPerfectAndRandom) {
  // Model area 2.0. Perfect scores y*t - y*(1-t) give the curve (0,0) (2,2) (5,2) (6,1), area 9.5;
  // the random line to (6, 1) has area 3: (2 - 3) / (9.5 - 3).
  expect_curve(perfect_qini_curve(kOutcome, kTreatment), {0, 2, 5, 6}, {0, 2, 2, 1});
  EXPECT_NEAR(qini_auc_score(kOutcome, kScore, kTreatment), -1.0 / 6.5, 1e-12);
  // negative_effect = false: the perfect curve reaches the total (1) at x = 1: area 0.5 + 5 = 5.5.
  EXPECT_NEAR(qini_auc_score(kOutcome, kScore, kTreatment, false), (2.0 - 3.0) / (5.5 - 3.0),
              1e-12);
  // The perfect ranking scores 1.
  std::vector<double> best(kOutcome.size());
  for (std::size_t i = 0; i < best.size(); ++i)
    best[i] = kTreatment[i] ? kOutcome[i] : -kOutcome[i];
  EXPECT_NEAR(qini_auc_score(kOutcome, best, kTreatment), 1.0, 1e-12);
}

TEST(UpliftAucScore, PerfectRankingScoresOneAndRandomAboutZero) {
  // Control responders (1) do not outnumber treated non-responders (1): perfect = 2[y == t] + t.
  // Scores 3 3 1 0 2... sorted: rows {4, 0}, {5, 3}, {1}, {2}.
  expect_curve(perfect_uplift_curve(kOutcome, kTreatment), {0, 2, 4, 5, 6},
               {0, 2, 4, 10.0 / 3.0, 2});
  // Model area: 0.5 + 1 - 0.25 - 0.75 + 5/12 + 17/12 = 7/3; perfect 2 + 6 + 11/3 + 8/3 = 43/3;
  // random 6: (7/3 - 6) / (43/3 - 6) = -11/25.
  EXPECT_NEAR(uplift_auc_score(kOutcome, kScore, kTreatment), -11.0 / 25.0, 1e-12);
  Rng rng(3);
  const std::size_t n = 20000;
  std::vector<double> y(n), score(n);
  std::vector<std::uint8_t> t(n);
  for (std::size_t i = 0; i < n; ++i) {
    t[i] = rng.bernoulli(0.5);
    y[i] = rng.bernoulli(0.2 + 0.1 * t[i]);
    score[i] = rng.uniform();
  }
  EXPECT_NEAR(uplift_auc_score(y, score, t), 0.0, 0.1);
  EXPECT_NEAR(qini_auc_score(y, score, t), 0.0, 0.1);
}

TEST(UpliftAtK, OverallAndByGroup) {
  // Top 3 rows: treated {1, 0}, control {1}: 0.5 - 1.
  EXPECT_NEAR(uplift_at_k(kOutcome, kScore, kTreatment, 0.5), -0.5, 1e-12);
  EXPECT_NEAR(uplift_at_k(kOutcome, kScore, kTreatment, 3.0), -0.5, 1e-12);
  // floor(0.5 * 3) = 1 row of each group: treated {1}, control {1}.
  EXPECT_NEAR(uplift_at_k(kOutcome, kScore, kTreatment, 0.5, UpliftAtKStrategy::by_group), 0.0,
              1e-12);
  // Inside a tie the later row comes first: with all scores equal, the top 2 are rows 5 and 4.
  const std::vector<double> flat(6, 1.0);
  EXPECT_NEAR(uplift_at_k(kOutcome, flat, kTreatment, 2.0), 1.0 - 0.0, 1e-12);
  PERKREC_EXPECT_THROW_MSG(uplift_at_k(kOutcome, kScore, kTreatment, 2.0), InputError,
                           "no control");
  PERKREC_EXPECT_THROW_MSG(uplift_at_k(kOutcome, kScore, kTreatment, 1.5), InputError, "got 1.5");
  PERKREC_EXPECT_THROW_MSG(uplift_at_k(kOutcome, kScore, kTreatment, 0.0), InputError, "k must be");
}

TEST(CostCurve, HandComputedAucc) {
  // Treated rows cost 2, 1, 3; control rows cost nothing. Incremental cost 2, 3, 3, 3, 6, 6 and
  // value (the Qini curve) 1, 1, -1, 0, 0.5, 1.
  const std::vector<double> cost = {2, 1, 0, 0, 3, 0};
  const CostCurve c = cost_curve(kOutcome, cost, kScore, kTreatment);
  const std::vector<double> expected_cost = {0, 2, 3, 3, 3, 6, 6};
  const std::vector<double> expected_value = {0, 1, 1, -1, 0, 0.5, 1};
  ASSERT_EQ(c.cost.size(), expected_cost.size());
  for (std::size_t i = 0; i < expected_cost.size(); ++i) {
    EXPECT_NEAR(c.cost[i], expected_cost[i], 1e-12);
    EXPECT_NEAR(c.value[i], expected_value[i], 1e-12);
    EXPECT_DOUBLE_EQ(c.rows[i], static_cast<double>(i));
  }
  // Normalized: 1/3 * 1/2 + 1/6 * 1 + 1/2 * 1/4.
  EXPECT_NEAR(aucc_score(kOutcome, cost, kScore, kTreatment), 1.0 / 6 + 1.0 / 6 + 1.0 / 8, 1e-12);
  const std::vector<double> free(6, 0.0);
  PERKREC_EXPECT_THROW_MSG(aucc_score(kOutcome, free, kScore, kTreatment), InputError, "positive");
}

TEST(UpliftMetrics, RejectBadInput) {
  std::vector<double> y = kOutcome;
  y[2] = NAN;
  PERKREC_EXPECT_THROW_MSG(qini_auc_score(y, kScore, kTreatment), InputError, "outcome at row 2");
  std::vector<double> s = kScore;
  s[4] = INFINITY;
  PERKREC_EXPECT_THROW_MSG(uplift_curve(kOutcome, s, kTreatment), InputError, "uplift at row 4");
  std::vector<std::uint8_t> t = kTreatment;
  t[1] = 2;
  PERKREC_EXPECT_THROW_MSG(qini_curve(kOutcome, kScore, t), InputError, "treatment at row 1",
                           "0 or 1");
  PERKREC_EXPECT_THROW_MSG(qini_curve(kOutcome, std::vector<double>{1, 2}, kTreatment), InputError,
                           "uplift has 2 rows (expected 6)");
  PERKREC_EXPECT_THROW_MSG(qini_curve(kOutcome, kScore, std::vector<std::uint8_t>(6, 1)),
                           InputError, "treated and control");
  PERKREC_EXPECT_THROW_MSG(
      uplift_auc_score(std::vector<double>{0, 2, 1, 0, 1, 0}, kScore, kTreatment), InputError,
      "0 or 1");
  PERKREC_EXPECT_THROW_MSG(
      aucc_score(kOutcome, std::vector<double>{1, NAN, 0, 0, 0, 0}, kScore, kTreatment), InputError,
      "cost at row 1");
}

}  // namespace
}  // namespace perkrec
