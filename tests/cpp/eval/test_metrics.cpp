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

}  // namespace
}  // namespace perkrec
