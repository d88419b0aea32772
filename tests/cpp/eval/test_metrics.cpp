#include <cmath>

#include "test_util.hpp"

namespace perkrec {
namespace {

CsrMatrix<float> relevant_rows(const std::vector<std::vector<Index>>& rows, Index cols) {
  CsrMatrix<float> m;
  m.rows = static_cast<Index>(rows.size());
  m.cols = cols;
  for (const auto& r : rows) {
    for (Index c : r) {
      m.indices.push_back(c);
      m.data.push_back(1.0f);
    }
    m.indptr.push_back(static_cast<Offset>(m.indices.size()));
  }
  return m;
}

TEST(Auc, HandComputedCasesWithTies) {
  // Positives 0.35, 0.8 vs negatives 0.1, 0.4: 3 of 4 pairs ordered correctly.
  EXPECT_DOUBLE_EQ(
      auc(std::vector<float>{0.1f, 0.4f, 0.35f, 0.8f}, std::vector<std::uint8_t>{0, 0, 1, 1}),
      0.75);
  // A tie between a positive and a negative counts one half.
  EXPECT_DOUBLE_EQ(auc(std::vector<float>{0.5f, 0.5f, 0.9f}, std::vector<std::uint8_t>{1, 0, 1}),
                   0.75);
  EXPECT_DOUBLE_EQ(auc(std::vector<float>{1, 1, 1, 1}, std::vector<std::uint8_t>{1, 0, 1, 0}), 0.5);
  EXPECT_DOUBLE_EQ(auc(std::vector<float>{3, 2, 1}, std::vector<std::uint8_t>{1, 0, 0}), 1.0);
  PERKREC_EXPECT_THROW_MSG(auc(std::vector<float>{1, 2}, std::vector<std::uint8_t>{1, 1}),
                           InputError, "both classes");
  PERKREC_EXPECT_THROW_MSG(auc(std::vector<float>{1, NAN}, std::vector<std::uint8_t>{1, 0}),
                           InputError, "position 1");
  PERKREC_EXPECT_THROW_MSG(auc(std::vector<float>{1, 2}, std::vector<std::uint8_t>{1, 2}),
                           InputError, "0 or 1");
  PERKREC_EXPECT_THROW_MSG(auc(std::vector<float>{1, 2}, std::vector<std::uint8_t>{1}), InputError,
                           "expected 2");
}

TEST(LogLoss, HandComputedAndClipped) {
  const double expected = -(std::log(0.8) + std::log(1 - 0.3)) / 2;
  EXPECT_NEAR(log_loss(std::vector<float>{0.8f, 0.3f}, std::vector<std::uint8_t>{1, 0}), expected,
              1e-7);
  EXPECT_NEAR(log_loss(std::vector<float>{0.0f}, std::vector<std::uint8_t>{1}), -std::log(1e-15),
              1e-6);
  PERKREC_EXPECT_THROW_MSG(log_loss(std::vector<float>{1.2f}, std::vector<std::uint8_t>{1}),
                           InputError, "[0, 1]");
  EXPECT_THROW(log_loss(std::vector<float>{}, std::vector<std::uint8_t>{}), InputError);
}

TEST(RankingMetrics, HandComputedCase) {
  // Row 0: relevant {1, 3}; recommended [3, 0, 1] -> hits at ranks 1 and 3.
  // Row 1: relevant {2};    recommended [0, 1, -1] -> no hit.
  // Row 2: relevant {};     skipped.
  const CsrMatrix<float> rel = relevant_rows({{1, 3}, {2}, {}}, 5);
  const std::vector<Index> rec = {3, 0, 1, 0, 1, -1, 4, 2, 1};
  const RankingMetrics m = ranking_metrics(rec, 3, rel.view());
  EXPECT_EQ(m.rows_evaluated, 2);
  const double dcg0 = 1.0 + 1.0 / std::log2(4.0);
  const double idcg0 = 1.0 + 1.0 / std::log2(3.0);
  EXPECT_NEAR(m.ndcg, (dcg0 / idcg0 + 0.0) / 2, 1e-12);
  EXPECT_NEAR(m.precision, (2.0 / 3 + 0.0) / 2, 1e-12);
  EXPECT_NEAR(m.recall, (1.0 + 0.0) / 2, 1e-12);
  EXPECT_NEAR(m.map, ((1.0 + 2.0 / 3) / 2 + 0.0) / 2, 1e-12);
  EXPECT_NEAR(m.hit_rate, 0.5, 1e-12);
  EXPECT_NEAR(m.coverage, 5.0 / 5.0, 1e-12);
  EXPECT_NEAR(catalog_coverage(std::vector<Index>{0, 0, 2, -1}, 4), 0.5, 1e-12);
}

TEST(RankingMetrics, IdenticalForAnyThreadCountAndValidated) {
  Rng rng(1);
  const Index rows = 5000, cols = 60;
  std::vector<std::vector<Index>> rel(static_cast<std::size_t>(rows));
  std::vector<Index> rec;
  for (Index r = 0; r < rows; ++r) {
    for (Index c = 0; c < cols; ++c) {
      if (rng.bernoulli(0.1)) rel[static_cast<std::size_t>(r)].push_back(c);
    }
    const Index start = static_cast<Index>(rng.below(static_cast<std::uint32_t>(cols - 10)));
    for (Index i = 0; i < 10; ++i) rec.push_back(start + i);
  }
  const CsrMatrix<float> m = relevant_rows(rel, cols);
  const RankingMetrics a = ranking_metrics(rec, 10, m.view(), 1);
  const RankingMetrics b = ranking_metrics(rec, 10, m.view(), 2);
  EXPECT_EQ(a.ndcg, b.ndcg);
  EXPECT_EQ(a.map, b.map);
  EXPECT_EQ(a.precision, b.precision);
  rec[3] = rec[4];
  PERKREC_EXPECT_THROW_MSG(ranking_metrics(rec, 10, m.view()), InputError, "row 0", "twice");
  rec[3] = 99;
  PERKREC_EXPECT_THROW_MSG(ranking_metrics(rec, 10, m.view()), InputError, "recommended[0][3]",
                           "99");
  PERKREC_EXPECT_THROW_MSG(ranking_metrics(std::vector<Index>{1, 2}, 10, m.view()), InputError,
                           "rows x k");
}

TEST(ReliabilityCurve, UniformBinsHandComputed) {
  const std::vector<double> y{0, 1, 1, 0, 1, 1};
  const std::vector<double> p{0.05, 0.15, 0.55, 0.6, 0.95, 1.0};  // 1.0 falls in the last bin
  const ReliabilityCurve c = reliability_curve(y, p, 2);
  EXPECT_EQ(c.bin, (std::vector<Index>{0, 1}));
  EXPECT_EQ(c.low, (std::vector<double>{0.0, 0.5}));
  EXPECT_EQ(c.high, (std::vector<double>{0.5, 1.0}));
  EXPECT_EQ(c.count, (std::vector<Offset>{2, 4}));
  EXPECT_NEAR(c.mean_predicted[0], 0.1, 1e-15);
  EXPECT_NEAR(c.mean_predicted[1], 0.775, 1e-15);
  EXPECT_EQ(c.fraction_positive, (std::vector<double>{0.5, 0.75}));
  EXPECT_NEAR(c.ece, (2 * 0.4 + 4 * 0.025) / 6, 1e-15);
  // Empty bins are left out.
  EXPECT_EQ(reliability_curve(y, p, 4).bin, (std::vector<Index>{0, 2, 3}));
  // Perfectly calibrated bins: ECE 0.
  const std::vector<double> yy{0, 1, 0, 1}, pp{0.5, 0.5, 0.5, 0.5};
  EXPECT_EQ(reliability_curve(yy, pp, 10).ece, 0.0);
  EXPECT_TRUE(reliability_curve({}, {}, 3).bin.empty());
}

TEST(ReliabilityCurve, QuantileBinsAtTheLinearQuantiles) {
  const std::vector<double> y{0, 0, 1, 1}, p{0.4, 0.1, 0.3, 0.2};
  const ReliabilityCurve c = reliability_curve(y, p, 2, true);  // edges 0.1, 0.25, 0.4
  ASSERT_EQ(c.bin, (std::vector<Index>{0, 1}));
  EXPECT_EQ(c.low[0], 0.1);
  EXPECT_DOUBLE_EQ(c.low[1], 0.25);
  EXPECT_DOUBLE_EQ(c.high[0], 0.25);
  EXPECT_EQ(c.high[1], 0.4);
  EXPECT_EQ(c.count, (std::vector<Offset>{2, 2}));
  EXPECT_EQ(c.fraction_positive, (std::vector<double>{0.5, 0.5}));
  EXPECT_NEAR(c.ece, (2 * 0.35 + 2 * 0.15) / 4, 1e-15);
  // One distinct quantile: no bin.
  const std::vector<double> same(5, 0.3), labels{0, 1, 0, 1, 1};
  const ReliabilityCurve flat = reliability_curve(labels, same, 4, true);
  EXPECT_TRUE(flat.bin.empty());
  EXPECT_EQ(flat.ece, 0.0);
}

TEST(ReliabilityCurve, RejectsBadInput) {
  const std::vector<double> y{0, 1}, p{0.2, 0.7};
  PERKREC_EXPECT_THROW_MSG(reliability_curve(y, std::vector<double>{0.2}), InputError,
                           "lengths differ (2 vs 1)");
  PERKREC_EXPECT_THROW_MSG(reliability_curve(y, std::vector<double>{0.2, NAN}), InputError,
                           "finite", "row 1");
  PERKREC_EXPECT_THROW_MSG(reliability_curve(y, p, 0), ConfigError, "bins");
  PERKREC_EXPECT_THROW_MSG(reliability_curve({}, {}, 3, true), InputError, "0 rows");
}

using V = std::vector<double>;

TEST(Metrics, SpearmanIsPearsonOfAverageRanks) {
  EXPECT_DOUBLE_EQ(spearman_correlation(V{1, 2, 3, 4}, V{10, 20, 30, 40}), 1.0);
  EXPECT_DOUBLE_EQ(spearman_correlation(V{1, 2, 3, 4}, V{9, 5, 2, -1}), -1.0);
  // Ties share the mean rank: ranks {1, 2.5, 2.5} against {1, 2, 3} correlate sqrt(3) / 2.
  EXPECT_NEAR(spearman_correlation(V{2.5, 3, 3}, V{0, 2, 4}), std::sqrt(3.0) / 2, 1e-15);
  // Only the order matters: a monotone transform of one side changes nothing.
  const std::vector<double> a{0.3, 7, -2, 5, 1}, b{1, 4, 0.5, 2, 3};
  std::vector<double> a_cubed(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) a_cubed[i] = a[i] * a[i] * a[i];
  EXPECT_DOUBLE_EQ(spearman_correlation(a, b), spearman_correlation(a_cubed, b));
  EXPECT_NEAR(spearman_correlation(a, b), 0.9, 1e-15);  // 1 - 6 x 2 / (5 x 24)
  EXPECT_TRUE(std::isnan(spearman_correlation(V{1, 1, 1}, V{1, 2, 3})));
  EXPECT_TRUE(std::isnan(spearman_correlation(V{1}, V{2})));
  PERKREC_EXPECT_THROW_MSG(spearman_correlation(V{1, 2}, V{1}), InputError, "b has 1 entries");
  PERKREC_EXPECT_THROW_MSG(spearman_correlation(V{1, NAN}, V{1, 2}), InputError,
                           "a[1] is not finite");
}

TEST(Metrics, HoldoutErrorsKnownAnswers) {
  const V actual_p{0, 2, 4}, actual_s{0, 20, 40};
  HoldoutErrors e = holdout_errors(actual_p, actual_s, actual_p, actual_s);
  EXPECT_EQ(e.members, 3);
  EXPECT_EQ(e.mae_purchases, 0.0);
  EXPECT_EQ(e.mae_spend, 0.0);
  EXPECT_DOUBLE_EQ(e.spearman_purchases, 1.0);
  EXPECT_EQ(e.aggregate_spend_error, 0.0);
  e = holdout_errors(actual_p, actual_s, V{2.5, 3, 3}, V{0, 30, 60});
  EXPECT_DOUBLE_EQ(e.mae_purchases, 4.5 / 3);  // 2.5 vs 0, 3 vs 2, 3 vs 4
  EXPECT_DOUBLE_EQ(e.mae_spend, 10.0);         // 0 vs 0, 30 vs 20, 60 vs 40
  EXPECT_NEAR(e.spearman_purchases, std::sqrt(3.0) / 2, 1e-15);
  EXPECT_DOUBLE_EQ(e.spearman_spend, 1.0);
  EXPECT_DOUBLE_EQ(e.aggregate_purchases_error, 8.5 / 6 - 1);
  EXPECT_DOUBLE_EQ(e.aggregate_spend_error, 0.5);
  // No actual occasion: the aggregate error is undefined; no rows: nothing is.
  e = holdout_errors(V{0, 0}, V{0, 0}, V{1, 2}, V{3, 4});
  EXPECT_TRUE(std::isnan(e.aggregate_purchases_error));
  EXPECT_TRUE(std::isnan(e.spearman_purchases));  // constant actuals
  e = holdout_errors(V{}, V{}, V{}, V{});
  EXPECT_EQ(e.members, 0);
  EXPECT_TRUE(std::isnan(e.mae_purchases) && std::isnan(e.mae_spend));
  PERKREC_EXPECT_THROW_MSG(holdout_errors(actual_p, actual_s, V{1, 2}, actual_s), InputError,
                           "forecast_purchases has 2 entries (expected 3");
  PERKREC_EXPECT_THROW_MSG(holdout_errors(actual_p, actual_s, actual_p, V{1, INFINITY, 2}),
                           InputError, "forecast_spend[1] is not finite");
}

}  // namespace
}  // namespace perkrec
