#include <cmath>
#include <random>
#include <vector>

#include "test_util.hpp"

namespace perkrec {
namespace {

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// True logits: member + benefit effects + a small interaction; the model adds a large noise to
// the interaction. Held-out rows drawn uniformly, labels from the truth.
struct Planted {
  Index n = 2000, nb = 12;
  std::vector<double> truth, model, predicted, redeemed;
  std::vector<Index> users, benefits;
};

Planted planted(double noise, std::uint64_t seed) {
  Planted p;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0, 1);
  std::vector<double> member(p.n), benefit(p.nb);
  for (auto& v : member) v = -2 + 0.5 * g(rng);
  for (auto& v : benefit) v = 0.5 * g(rng);
  for (Index u = 0; u < p.n; ++u) {
    for (Index b = 0; b < p.nb; ++b) {
      const double z = member[u] + benefit[b] + 0.3 * g(rng);
      p.truth.push_back(sigmoid(z));
      p.model.push_back(sigmoid(z + noise * g(rng)));
    }
  }
  std::uniform_int_distribution<Index> pick_u(0, p.n - 1), pick_b(0, p.nb - 1);
  std::uniform_real_distribution<double> unit(0, 1);
  for (int r = 0; r < 20000; ++r) {
    const Index u = pick_u(rng), b = pick_b(rng);
    const std::size_t i = static_cast<std::size_t>(u) * p.nb + b;
    p.users.push_back(u);
    p.benefits.push_back(b);
    p.predicted.push_back(p.model[i]);
    p.redeemed.push_back(unit(rng) < p.truth[i] ? 1.0 : 0.0);
  }
  return p;
}

InteractionShrinkage shrink(const Planted& p, const std::vector<double>& matrix, int threads = 1) {
  InteractionShrinkParams params;
  params.num_threads = threads;
  return shrink_interactions(Span<const double>(matrix.data(), matrix.size()), p.n, p.nb,
                             Span<const Index>(p.users.data(), p.users.size()),
                             Span<const Index>(p.benefits.data(), p.benefits.size()),
                             Span<const double>(p.predicted.data(), p.predicted.size()),
                             Span<const double>(p.redeemed.data(), p.redeemed.size()), {}, params);
}

TEST(ShrinkInteractions, RemovesTheOptimismOfEachMembersBestPair) {
  const Planted p = planted(1.0, 7);
  const InteractionShrinkage s = shrink(p, p.model);
  EXPECT_GT(s.slope, 0.0);
  EXPECT_LT(s.slope, 0.35);
  double gap_raw = 0, gap_shrunk = 0;
  for (Index u = 0; u < p.n; ++u) {
    const std::size_t row = static_cast<std::size_t>(u) * p.nb;
    std::size_t best_raw = row, best_shrunk = row;
    for (std::size_t i = row; i < row + p.nb; ++i) {
      if (p.model[i] > p.model[best_raw]) best_raw = i;
      if (s.probability[i] > s.probability[best_shrunk]) best_shrunk = i;
    }
    gap_raw += p.model[best_raw] - p.truth[best_raw];
    gap_shrunk += s.probability[best_shrunk] - p.truth[best_shrunk];
  }
  EXPECT_GT(gap_raw / p.n, 0.1);
  EXPECT_LT(std::abs(gap_shrunk) / p.n, 0.3 * gap_raw / p.n);
}

TEST(ShrinkInteractions, KeepsAReliableInteractionAndIsThreadCountInvariant) {
  Planted p = planted(1.0, 8);
  for (std::size_t r = 0; r < p.users.size(); ++r) {
    p.predicted[r] = p.truth[static_cast<std::size_t>(p.users[r]) * p.nb + p.benefits[r]];
  }
  const InteractionShrinkage one = shrink(p, p.truth, 1), two = shrink(p, p.truth, 2);
  EXPECT_GT(one.slope, 0.8);
  EXPECT_EQ(one.slope, two.slope);
  EXPECT_EQ(one.probability, two.probability);
}

TEST(ShrinkInteractions, RejectsBadInput) {
  Planted p = planted(1.0, 9);
  std::vector<double> bad = p.model;
  bad[5] = 1.0;
  PERKREC_EXPECT_THROW_MSG(shrink(p, bad), InputError, "probability at (0, 5)", "(0, 1)");
  p.redeemed[3] = 0.5;
  PERKREC_EXPECT_THROW_MSG(shrink(p, p.model), InputError, "redeemed at row 3", "0/1");
  p.redeemed[3] = 1;
  p.users[4] = p.n;
  PERKREC_EXPECT_THROW_MSG(shrink(p, p.model), InputError, "row 4", "out of range");
  InteractionShrinkParams params;
  params.iterations = 0;
  PERKREC_EXPECT_THROW_MSG(params.validate(), ConfigError, "iterations");
}

/// Rows with offset ~ N(-1.2, 0.8), x ~ N(0, 1) and labels drawn from
/// sigmoid(offset + weight x); weights 1 or 2 (clipped inverse propensities of a sort).
struct OffsetRows {
  std::vector<double> offset, x, label, weight;
};

OffsetRows offset_rows(double planted, std::size_t m, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0, 1);
  std::uniform_real_distribution<double> unit(0, 1);
  OffsetRows r;
  for (std::size_t i = 0; i < m; ++i) {
    const double o = -1.2 + 0.8 * g(rng), x = g(rng);
    r.offset.push_back(o);
    r.x.push_back(x);
    r.label.push_back(unit(rng) < 1 / (1 + std::exp(-(o + planted * x))) ? 1.0 : 0.0);
    r.weight.push_back(i % 3 == 0 ? 2.0 : 1.0);
  }
  return r;
}

TEST(FitOffsetSlope, RecoversAPlantedWeight) {
  for (double planted : {0.0, 0.35, 0.7}) {
    const OffsetRows r = offset_rows(planted, 40000, 17);
    const OffsetSlope fit = fit_offset_slope(r.offset, r.x, r.label, r.weight);
    EXPECT_NEAR(fit.unclipped, planted, 0.05) << "planted " << planted;
    EXPECT_GE(fit.slope, 0.0);
    EXPECT_LE(fit.slope, 1.0);
    EXPECT_NEAR(fit.slope, planted, 0.05) << "planted " << planted;
  }
  // Clipped to [lower, upper]; the unclipped value is where the steps ended.
  const OffsetRows r = offset_rows(1.6, 40000, 18);
  const OffsetSlope clipped = fit_offset_slope(r.offset, r.x, r.label);
  EXPECT_EQ(clipped.slope, 1.0);
  EXPECT_NEAR(clipped.unclipped, 1.6, 0.08);
  OffsetSlopeParams wide;
  wide.upper = 3;
  EXPECT_NEAR(fit_offset_slope(r.offset, r.x, r.label, {}, wide).slope, 1.6, 0.08);
  // A covariate opposite to the labels is clipped at 0.
  const OffsetRows neg = offset_rows(-0.8, 20000, 19);
  const OffsetSlope zero = fit_offset_slope(neg.offset, neg.x, neg.label);
  EXPECT_EQ(zero.slope, 0.0);
  EXPECT_LT(zero.unclipped, -0.6);
}

TEST(FitOffsetSlope, RejectsBadInputWithTypedErrors) {
  OffsetRows r = offset_rows(0.5, 50, 3);
  PERKREC_EXPECT_THROW_MSG(fit_offset_slope(r.offset, std::vector<double>(49), r.label), InputError,
                           "x 49");
  r.label[7] = 2;
  PERKREC_EXPECT_THROW_MSG(fit_offset_slope(r.offset, r.x, r.label), InputError, "label at row 7");
  r.label[7] = 1;
  r.offset[4] = std::nan("");
  PERKREC_EXPECT_THROW_MSG(fit_offset_slope(r.offset, r.x, r.label), InputError, "offset at row 4");
  r.offset[4] = 0;
  r.weight[2] = -1;
  PERKREC_EXPECT_THROW_MSG(fit_offset_slope(r.offset, r.x, r.label, r.weight), InputError,
                           "sample_weight at row 2");
  PERKREC_EXPECT_THROW_MSG(fit_offset_slope({}, {}, {}), InputError, "no rows");
  OffsetSlopeParams bad;
  bad.lower = 2;
  PERKREC_EXPECT_THROW_MSG(fit_offset_slope(r.offset, r.x, r.label, {}, bad), ConfigError, "lower");
  bad = {};
  bad.iterations = 0;
  PERKREC_EXPECT_THROW_MSG(bad.validate(), ConfigError, "iterations");
}

TEST(IssueWeights, ClippedInverseScaledToMeanOneHandComputed) {
  const std::vector<double> p{0.5, 0.25, 0.1};            // 1 / p = 2, 4, 10
  const std::vector<float> none = issue_weights(p, 1.0);  // mean 16 / 3
  EXPECT_FLOAT_EQ(none[0], 0.375f);
  EXPECT_FLOAT_EQ(none[1], 0.75f);
  EXPECT_FLOAT_EQ(none[2], 1.875f);
  // The 0.5 quantile of (2, 4, 10) is 4: weights 2, 4, 4 over mean 10 / 3.
  const std::vector<float> half = issue_weights(p, 0.5);
  EXPECT_FLOAT_EQ(half[0], 0.6f);
  EXPECT_FLOAT_EQ(half[1], 1.2f);
  EXPECT_FLOAT_EQ(half[2], 1.2f);
  // The 0.75 quantile interpolates halfway between 4 and 10: 7; weights 2, 4, 7 over 13 / 3.
  const std::vector<float> q75 = issue_weights(p, 0.75);
  EXPECT_FLOAT_EQ(q75[0], 6.0f / 13.0f);
  EXPECT_FLOAT_EQ(q75[1], 12.0f / 13.0f);
  EXPECT_FLOAT_EQ(q75[2], 21.0f / 13.0f);
  // One issue weighs 1; the default clip keeps the order of the weights and their mean at 1.
  EXPECT_EQ(issue_weights(std::vector<double>{0.3}), std::vector<float>{1.0f});
  std::vector<double> many;
  for (int i = 1; i <= 500; ++i) many.push_back(i / 500.0);
  const std::vector<float> w = issue_weights(many);
  double sum = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    sum += w[i];
    if (i > 0) {
      EXPECT_LE(w[i], w[i - 1]);
    }
  }
  EXPECT_NEAR(sum / static_cast<double>(w.size()), 1.0, 1e-6);
  EXPECT_EQ(w[0], w[1]);  // 1 / 0.002 and 1 / 0.004 are both above the 0.99 quantile
}

TEST(IssueWeights, RejectsBadInputWithTypedErrors) {
  PERKREC_EXPECT_THROW_MSG(issue_weights(std::vector<double>{0.5}, 0.4), ConfigError, "clip");
  PERKREC_EXPECT_THROW_MSG(issue_weights(std::vector<double>{0.5}, std::nan("")), ConfigError,
                           "clip");
  for (double bad : {0.0, 1.5, -0.1, std::nan(""), HUGE_VAL}) {
    PERKREC_EXPECT_THROW_MSG(issue_weights(std::vector<double>{0.5, 0.2, bad}), InputError,
                             "propensity[2]", "(0, 1]");
  }
  PERKREC_EXPECT_THROW_MSG(issue_weights(std::vector<double>{}), InputError, "0 rows");
}

// Four benefits; held-out issues whose redemptions are planted at a known multiple of the
// model's prediction per benefit and a common 1.2 (the held-out window's season) on top.
TEST(BenefitLevels, KeepsHowBenefitsDifferAndDropsTheCommonLevel) {
  const std::vector<double> multiple{1.0, 2.0, 0.5, 1.0};
  std::vector<Index> benefits;
  std::vector<double> predicted, redeemed;
  for (Index b = 0; b < 3; ++b) {
    // 1000 issues at 0.1 each: expected 100 x 1.2 x multiple redemptions, exactly planted.
    const int hits = static_cast<int>(std::lround(100 * 1.2 * multiple[b]));
    for (int r = 0; r < 1000; ++r) {
      benefits.push_back(b);
      predicted.push_back(0.1);
      redeemed.push_back(r < hits ? 1.0 : 0.0);
    }
  }
  // Benefit 3 has no held-out issue: its factor is 1.
  const Index nb = 4;
  const std::vector<double> exact =
      benefit_levels(nb, benefits, predicted, redeemed, {}, BenefitLevelParams{1e-9});
  const double level = (120.0 + 240.0 + 60.0) / 300.0;
  ASSERT_EQ(exact.size(), 4u);
  for (Index b = 0; b < 3; ++b) EXPECT_NEAR(exact[b], 1.2 * multiple[b] / level, 1e-6) << b;
  EXPECT_NEAR(exact[3], 1.0, 1e-9);
  // The prior pulls toward 1 by (Y_b + m K) / (E_b + m) / K, hand-computed for m = 50.
  const std::vector<double> pulled = benefit_levels(nb, benefits, predicted, redeemed);
  EXPECT_NEAR(pulled[1], (240.0 + 50 * level) / (100.0 + 50) / level, 1e-9);
  EXPECT_GT(pulled[1], 1.0);
  EXPECT_LT(pulled[1], exact[1]);
  // Weights count a row as that many rows.
  std::vector<double> w(benefits.size(), 1.0);
  for (std::size_t r = 0; r < w.size(); ++r) w[r] = benefits[r] == 1 ? 2.0 : 1.0;
  const std::vector<double> weighted = benefit_levels(nb, benefits, predicted, redeemed, w);
  const double wl = (120.0 + 480.0 + 60.0) / 400.0;  // benefit 1 counts twice
  EXPECT_NEAR(weighted[0], (120.0 + 50 * wl) / (100.0 + 50) / wl, 1e-9);
  // No redemption at all: every factor 1.
  const std::vector<double> none =
      benefit_levels(nb, benefits, predicted, std::vector<double>(redeemed.size(), 0.0));
  EXPECT_EQ(none, std::vector<double>(4, 1.0));
  // Applied to a row: multiplied, capped below 1.
  std::vector<float> row{0.5f, 0.6f, 0.5f, 0.25f};
  apply_benefit_levels(row, std::vector<double>{1.0, 2.0, 0.5, 1.0});
  EXPECT_EQ(row[0], 0.5f);
  EXPECT_EQ(row[1], static_cast<float>(1 - 1e-6));
  EXPECT_EQ(row[2], 0.25f);
  EXPECT_EQ(row[3], 0.25f);
}

TEST(BenefitLevels, RejectsBadInputWithTypedErrors) {
  const std::vector<Index> b{0, 1};
  const std::vector<double> q{0.2, 0.3}, y{0.0, 1.0};
  PERKREC_EXPECT_THROW_MSG(benefit_levels(2, b, q, y, {}, BenefitLevelParams{0.0}), ConfigError,
                           "prior");
  PERKREC_EXPECT_THROW_MSG(benefit_levels(0, b, q, y), InputError, "n_benefits");
  PERKREC_EXPECT_THROW_MSG(benefit_levels(1, b, q, y), InputError, "benefits at row 1");
  PERKREC_EXPECT_THROW_MSG(benefit_levels(2, b, std::vector<double>{0.2, 0.0}, y), InputError,
                           "predicted at row 1");
  PERKREC_EXPECT_THROW_MSG(benefit_levels(2, b, q, std::vector<double>{0.0, 0.5}), InputError,
                           "redeemed at row 1");
  PERKREC_EXPECT_THROW_MSG(benefit_levels(2, b, q, y, std::vector<double>{1.0, -1.0}), InputError,
                           "sample_weight at row 1");
  PERKREC_EXPECT_THROW_MSG(benefit_levels(2, b, q, std::vector<double>{1.0}), InputError, "rows");
  PERKREC_EXPECT_THROW_MSG(benefit_levels(2, {}, {}, {}), InputError, "no rows");
  std::vector<float> row(3, 0.5f);
  PERKREC_EXPECT_THROW_MSG(apply_benefit_levels(row, std::vector<double>{1.0, 1.0}), InputError,
                           "3 values");
}

// Four pilot pairs with expected redemption cost 1 each (E = 4, sum P = 1.05); pairs 0 and 2
// redeemed (O = 7). Hand-computed level, standard error and interval.
TEST(PilotLevel, RatioShrunkTowardOneWithItsStandardError) {
  const std::vector<double> p{0.5, 0.25, 0.2, 0.1}, y{1, 0, 1, 0}, cost{2, 4, 5, 10};
  const PilotLevel raw = pilot_level(p, y, cost, PilotLevelParams{0.0, 0.95});
  EXPECT_DOUBLE_EQ(raw.expected, 4.0);
  EXPECT_DOUBLE_EQ(raw.observed, 7.0);
  EXPECT_DOUBLE_EQ(raw.expected_redemptions, 1.05);
  EXPECT_DOUBLE_EQ(raw.ratio, 1.75);
  EXPECT_DOUBLE_EQ(raw.level, 1.75);
  // q = 1.75 P = {0.875, 0.4375, 0.35, 0.175}: sum cost^2 q (1 - q) = 24.5.
  EXPECT_NEAR(raw.standard_error, std::sqrt(24.5) / 4.0, 1e-12);
  EXPECT_EQ(raw.lower, 0.0);  // 1.75 - 1.96 x 1.237 < 0: clipped
  EXPECT_NEAR(raw.upper, 1.75 + 1.959963984540054 * std::sqrt(24.5) / 4.0, 1e-9);
  // Prior 1.05 pseudo expected redemptions at c = 4 / 1.05: (7 + 4) / (4 + 4).
  const PilotLevel shrunk = pilot_level(p, y, cost, PilotLevelParams{1.05, 0.9});
  EXPECT_NEAR(shrunk.level, 1.375, 1e-12);
  EXPECT_DOUBLE_EQ(shrunk.ratio, 1.75);
  EXPECT_NEAR(shrunk.standard_error, std::sqrt(21.3125) / 8.0, 1e-12);
  EXPECT_NEAR(shrunk.upper - shrunk.level, 1.6448536269514722 * std::sqrt(21.3125) / 8.0, 1e-9);
  // Nothing redeemed, default prior 20: (0 + 20 c) / (4 + 20 c), the lower bound clipped at 0.
  const PilotLevel none = pilot_level(p, std::vector<double>(4, 0.0), cost);
  const double c = 4.0 / 1.05;
  EXPECT_NEAR(none.level, 20 * c / (4 + 20 * c), 1e-12);
  EXPECT_LT(none.level, 1.0);
  EXPECT_GE(none.lower, 0.0);
  // A pair with P = 1 at a level above 1 adds no variance (q capped at 1): only the second's
  // q = 2/3 does.
  const PilotLevel sure = pilot_level(std::vector<double>{1.0, 0.5}, std::vector<double>{1, 1},
                                      std::vector<double>{1, 1}, PilotLevelParams{0.0, 0.95});
  EXPECT_NEAR(sure.level, 2.0 / 1.5, 1e-12);
  EXPECT_NEAR(sure.standard_error, std::sqrt(2.0 / 9.0) / 1.5, 1e-12);
}

TEST(PilotLevel, RejectsBadInputWithTypedErrors) {
  const std::vector<double> p{0.2, 0.3}, y{0.0, 1.0}, c{1.0, 2.0};
  PERKREC_EXPECT_THROW_MSG(pilot_level(p, y, c, PilotLevelParams{-1.0, 0.95}), ConfigError,
                           "prior");
  PERKREC_EXPECT_THROW_MSG(pilot_level(p, y, c, PilotLevelParams{20, 1.0}), ConfigError,
                           "confidence");
  PERKREC_EXPECT_THROW_MSG(pilot_level(std::vector<double>{0.2}, y, c), InputError, "rows",
                           "probability 1");
  PERKREC_EXPECT_THROW_MSG(pilot_level(p, y, std::vector<double>{1.0}), InputError, "cost 1");
  PERKREC_EXPECT_THROW_MSG(pilot_level({}, {}, {}), InputError, "no rows");
  for (double bad : {-0.1, 1.5, std::nan(""), HUGE_VAL}) {
    PERKREC_EXPECT_THROW_MSG(pilot_level(std::vector<double>{0.2, bad}, y, c), InputError,
                             "probability at row 1", "[0, 1]");
    PERKREC_EXPECT_THROW_MSG(pilot_level(p, y, std::vector<double>{1.0, bad < 0 ? bad : -bad}),
                             InputError, "cost at row 1");
  }
  PERKREC_EXPECT_THROW_MSG(pilot_level(p, std::vector<double>{0.0, 0.5}, c), InputError,
                           "redeemed at row 1", "0/1");
  PERKREC_EXPECT_THROW_MSG(pilot_level(std::vector<double>{0.0, 0.0}, y, c), InputError,
                           "expected redemption cost is 0");
  PERKREC_EXPECT_THROW_MSG(pilot_level(p, y, std::vector<double>{HUGE_VAL, 1.0}), InputError,
                           "cost at row 0");
}

}  // namespace
}  // namespace perkrec
