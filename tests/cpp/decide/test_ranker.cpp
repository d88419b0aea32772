// Ranker, ScoreBlend, send time and explanations (decide/ranker.hpp, decide/explain.hpp).
#include <algorithm>
#include <cmath>
#include <random>

#include "test_util.hpp"

namespace perkrec {
namespace {

// Random masks: `n_masks` random eligibility rows (rule r+1 excludes, r = benefit % 3), members
// assigned at random.
EligibilityMasks random_masks(Index n, Index m, int n_masks, double p_eligible, std::mt19937& rng) {
  EligibilityMasks masks(n, m);
  std::bernoulli_distribution elig(p_eligible);
  std::vector<Index> ids{0};
  for (int k = 0; k < n_masks; ++k) {
    std::vector<std::int32_t> rule(static_cast<std::size_t>(m));
    for (Index b = 0; b < m; ++b) rule[static_cast<std::size_t>(b)] = elig(rng) ? -1 : (b % 3);
    ids.push_back(masks.add_mask(rule));
  }
  std::uniform_int_distribution<std::size_t> pick(0, ids.size() - 1);
  for (Index u = 0; u < n; ++u) masks.set_user_mask(u, ids[pick(rng)]);
  return masks;
}

struct Inputs {
  std::vector<float> prob, share, member_value, benefit_value, cost;
  RankInputs view() const {
    RankInputs in;
    in.redemption_probability = prob;
    in.incremental_share = share;
    in.member_value = member_value;
    in.benefit_value = benefit_value;
    in.cost_per_redemption = cost;
    return in;
  }
};

Inputs random_inputs(Index n, Index m, std::mt19937& rng) {
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  Inputs in;
  for (Index i = 0; i < n * m; ++i) {
    in.prob.push_back(unit(rng) * 0.5f);
    in.share.push_back(unit(rng));
  }
  for (Index u = 0; u < n; ++u) in.member_value.push_back(5.0f + 20.0f * unit(rng));
  for (Index b = 0; b < m; ++b) {
    in.benefit_value.push_back(0.5f + unit(rng));
    in.cost.push_back(10.0f * unit(rng));
  }
  return in;
}

struct NaiveEntry {
  double key;
  Index b;
  double value, cost;
};

std::vector<NaiveEntry> naive_row(const Inputs& in, const EligibilityMasks& masks,
                                  const RankerParams& p, Index u) {
  const Index m = masks.n_benefits();
  std::vector<NaiveEntry> row;
  for (Index b = 0; b < m; ++b) {
    if (!masks.eligible(u, b)) continue;
    const double pr = in.prob[static_cast<std::size_t>(u * m + b)];
    const double share = p.objective == RankerParams::Objective::incremental
                             ? in.share[static_cast<std::size_t>(u * m + b)]
                             : 1.0;
    const double value = pr * share * in.member_value[static_cast<std::size_t>(u)] *
                         in.benefit_value[static_cast<std::size_t>(b)];
    const double cost = p.issue_cost + pr * in.cost[static_cast<std::size_t>(b)];
    if (p.keep_non_positive || value - cost > 0) row.push_back({value - cost, b, value, cost});
  }
  std::sort(row.begin(), row.end(), [](const NaiveEntry& a, const NaiveEntry& b) {
    return a.key > b.key || (a.key == b.key && a.b < b.b);
  });
  if (row.size() > static_cast<std::size_t>(p.top_k)) row.resize(static_cast<std::size_t>(p.top_k));
  return row;
}

TEST(Ranker, EqualsNaiveDenseComputation) {
  std::mt19937 rng(3);
  const Index n = 300, m = 70;  // 70 benefits: two mask words
  const EligibilityMasks masks = random_masks(n, m, 5, 0.6, rng);
  const Inputs in = random_inputs(n, m, rng);
  for (auto objective :
       {RankerParams::Objective::incremental, RankerParams::Objective::redemption}) {
    RankerParams p;
    p.objective = objective;
    p.top_k = 7;
    p.issue_cost = 0.3;
    const Candidates c = rank(in.view(), masks, p);
    c.validate("test");
    ASSERT_EQ(c.n_users, n);
    ASSERT_EQ(c.n_benefits, m);
    for (Index u = 0; u < n; ++u) {
      const auto expected = naive_row(in, masks, p, u);
      const auto begin = c.offsets[static_cast<std::size_t>(u)];
      ASSERT_EQ(c.offsets[static_cast<std::size_t>(u) + 1] - begin,
                static_cast<std::int64_t>(expected.size()))
          << u;
      for (std::size_t i = 0; i < expected.size(); ++i) {
        const auto k = static_cast<std::size_t>(begin) + i;
        EXPECT_EQ(c.benefit[k], expected[i].b);
        EXPECT_NEAR(c.value[k], expected[i].value, 1e-4 * (1 + std::abs(expected[i].value)));
        EXPECT_NEAR(c.cost[k], expected[i].cost, 1e-4 * (1 + expected[i].cost));
        EXPECT_EQ(c.probability[k], in.prob[static_cast<std::size_t>(u * m + expected[i].b)]);
        EXPECT_GT(c.value[k] - c.cost[k], 0.0f);
      }
    }
  }
}

TEST(Ranker, NeverReturnsIneligibleBenefitsOverRandomMasks) {
  for (std::uint32_t seed = 0; seed < 30; ++seed) {
    std::mt19937 rng(seed);
    const Index n = 40 + static_cast<Index>(seed), m = 1 + static_cast<Index>(seed * 7 % 140);
    const EligibilityMasks masks =
        random_masks(n, m, 1 + static_cast<int>(seed % 6), (seed % 10) / 10.0, rng);
    const Inputs in = random_inputs(n, m, rng);
    RankerParams p;
    p.top_k = 1 + static_cast<int>(seed % 9);
    p.keep_non_positive = true;
    RankDiagnostics diag;
    const Candidates c = rank(in.view(), masks, p, &diag);
    for (Index u = 0; u < n; ++u) {
      Index eligible = 0;
      for (Index b = 0; b < m; ++b) eligible += masks.eligible(u, b) ? 1 : 0;
      EXPECT_EQ(diag.n_eligible[static_cast<std::size_t>(u)], eligible);
      EXPECT_EQ(c.offsets[static_cast<std::size_t>(u) + 1] - c.offsets[static_cast<std::size_t>(u)],
                std::min<std::int64_t>(eligible, p.top_k));
      for (auto k = c.offsets[static_cast<std::size_t>(u)];
           k < c.offsets[static_cast<std::size_t>(u) + 1]; ++k) {
        ASSERT_TRUE(masks.eligible(u, c.benefit[static_cast<std::size_t>(k)])) << "seed " << seed;
        if (k > c.offsets[static_cast<std::size_t>(u)]) {
          const auto kz = static_cast<std::size_t>(k);
          EXPECT_GE(c.value[kz - 1] - c.cost[kz - 1], c.value[kz] - c.cost[kz] - 1e-5f);
        }
      }
      // The best ineligible benefit really is ineligible, and its rule is the mask's.
      const Index bi = diag.best_ineligible[static_cast<std::size_t>(u)];
      if (eligible == m) {
        EXPECT_EQ(bi, -1);
      } else {
        ASSERT_GE(bi, 0);
        EXPECT_FALSE(masks.eligible(u, bi));
        EXPECT_EQ(diag.best_ineligible_rule[static_cast<std::size_t>(u)], masks.user_rule(u, bi));
      }
    }
  }
}

TEST(Ranker, IdenticalForAnyThreadCount) {
  std::mt19937 rng(11);
  const Index n = 2000, m = 90;
  const EligibilityMasks masks = random_masks(n, m, 8, 0.7, rng);
  const Inputs in = random_inputs(n, m, rng);
  RankerParams p;
  p.top_k = 10;
  p.num_threads = 1;
  const Candidates c1 = rank(in.view(), masks, p);
  for (int t : {2, 3}) {
    p.num_threads = t;
    const Candidates ct = rank(in.view(), masks, p);
    EXPECT_EQ(ct.offsets, c1.offsets);
    EXPECT_EQ(ct.benefit, c1.benefit);
    EXPECT_EQ(ct.value, c1.value);
    EXPECT_EQ(ct.cost, c1.cost);
  }
}

TEST(Ranker, IncrementalAndRedemptionObjectivesKnownAnswers) {
  // One member, two benefits: p = (0.5, 0.2), incremental share (0.2, 1.0), member value 10,
  // cost per redemption (1, 2), issue cost 0.1.
  //   redemption:  value (5, 2), cost (0.6, 0.5), key (4.4, 1.5)  -> b0 first
  //   incremental: value (1, 2), cost (0.6, 0.5), key (0.4, 1.5)  -> b1 first
  const EligibilityMasks masks(1, 2);
  const std::vector<float> prob{0.5f, 0.2f}, share{0.2f, 1.0f}, mv{10.0f}, cost{1.0f, 2.0f};
  RankInputs in;
  in.redemption_probability = prob;
  in.incremental_share = share;
  in.member_value = mv;
  in.cost_per_redemption = cost;
  RankerParams p;
  p.issue_cost = 0.1;
  p.objective = RankerParams::Objective::redemption;
  Candidates c = rank(in, masks, p);
  ASSERT_EQ(c.benefit, (std::vector<Index>{0, 1}));
  EXPECT_FLOAT_EQ(c.value[0], 5.0f);
  EXPECT_FLOAT_EQ(c.cost[0], 0.6f);
  EXPECT_FLOAT_EQ(c.value[1], 2.0f);
  EXPECT_FLOAT_EQ(c.cost[1], 0.5f);
  p.objective = RankerParams::Objective::incremental;
  c = rank(in, masks, p);
  ASSERT_EQ(c.benefit, (std::vector<Index>{1, 0}));
  EXPECT_FLOAT_EQ(c.value[0], 2.0f);
  EXPECT_FLOAT_EQ(c.value[1], 1.0f);
  // A cost above the value drops the candidate unless keep_non_positive.
  const std::vector<float> expensive{1.0f, 20.0f};
  in.cost_per_redemption = expensive;
  c = rank(in, masks, p);
  ASSERT_EQ(c.benefit, (std::vector<Index>{0}));
  p.keep_non_positive = true;
  c = rank(in, masks, p);
  ASSERT_EQ(c.benefit, (std::vector<Index>{0, 1}));
  EXPECT_FLOAT_EQ(c.cost[1], 4.1f);
  // A per-member share equals the matrix with the same share everywhere.
  const std::vector<float> member_share{0.5f};
  in.incremental_share = member_share;
  in.cost_per_redemption = cost;
  c = rank(in, masks, p);
  EXPECT_FLOAT_EQ(c.value[0], 2.5f);
}

TEST(Ranker, BadInputsThrowInputErrorNamingTheField) {
  const EligibilityMasks masks(2, 2);
  std::vector<float> prob{0.1f, 0.2f, 0.3f, 0.4f};
  RankInputs in;
  in.redemption_probability = prob;
  RankerParams p;
  const std::vector<float> short_prob{0.1f, 0.2f, 0.3f};
  RankInputs bad = in;
  bad.redemption_probability = short_prob;
  PERKREC_EXPECT_THROW_MSG(rank(bad, masks, p), InputError, "redemption_probability", "2 x 2");
  std::vector<float> nan_prob = prob;
  nan_prob[3] = std::nanf("");
  bad = in;
  bad.redemption_probability = nan_prob;
  PERKREC_EXPECT_THROW_MSG(rank(bad, masks, p), InputError, "redemption_probability[1, 1]");
  std::vector<float> big_prob = prob;
  big_prob[2] = 1.5f;
  bad.redemption_probability = big_prob;
  PERKREC_EXPECT_THROW_MSG(rank(bad, masks, p), InputError, "redemption_probability[1, 0]", "1.5");
  const std::vector<float> neg_cost{1.0f, -1.0f};
  bad = in;
  bad.cost_per_redemption = neg_cost;
  PERKREC_EXPECT_THROW_MSG(rank(bad, masks, p), InputError, "cost_per_redemption[1]", ">= 0");
  const std::vector<float> inf_value{1.0f, INFINITY};
  bad = in;
  bad.member_value = inf_value;
  PERKREC_EXPECT_THROW_MSG(rank(bad, masks, p), InputError, "member_value[1]");
  const std::vector<float> three{1.0f, 1.0f, 1.0f};
  bad = in;
  bad.benefit_value = three;
  PERKREC_EXPECT_THROW_MSG(rank(bad, masks, p), InputError, "benefit_value", "3 entries");
  bad = in;
  bad.incremental_share = three;
  PERKREC_EXPECT_THROW_MSG(rank(bad, masks, p), InputError, "incremental_share", "3 entries");
  p.top_k = 0;
  PERKREC_EXPECT_THROW_MSG(rank(in, masks, p), ConfigError, "top_k");
  PERKREC_EXPECT_THROW_MSG(RankerParams::from_json(Json::parse(R"({"top_kk": 3})")), ConfigError,
                           "/top_kk");
  PERKREC_EXPECT_THROW_MSG(RankerParams::from_json(Json::parse(R"({"objective": "uplift"})")),
                           ConfigError, "/objective");
  RankerParams q;
  q.objective = RankerParams::Objective::redemption;
  q.top_k = 9;
  q.issue_cost = 0.25;
  const RankerParams r = RankerParams::from_json(q.to_json());
  EXPECT_EQ(r.to_json(), q.to_json());
}

// --- ScoreBlend ------------------------------------------------------------------------------

struct Planted {
  Index n_users = 500, n_benefits = 40;
  std::vector<float> score, prob;  // source 1 (identity), source 2 (a probability: logit)
  std::vector<Index> users, benefits;
  std::vector<float> labels;
};

Planted planted(double bias, double w1, double w2, std::uint32_t seed) {
  Planted d;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> unit(0.02f, 0.98f);
  const std::size_t nm =
      static_cast<std::size_t>(d.n_users) * static_cast<std::size_t>(d.n_benefits);
  for (std::size_t i = 0; i < nm; ++i) {
    d.score.push_back(normal(rng));
    d.prob.push_back(unit(rng));
  }
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  for (Index u = 0; u < d.n_users; ++u) {
    for (Index b = 0; b < d.n_benefits; ++b) {
      const std::size_t i = static_cast<std::size_t>(u) * static_cast<std::size_t>(d.n_benefits) +
                            static_cast<std::size_t>(b);
      const double z = bias + w1 * d.score[i] + w2 * std::log(d.prob[i] / (1.0 - d.prob[i]));
      d.users.push_back(u);
      d.benefits.push_back(b);
      d.labels.push_back(u01(rng) < 1.0 / (1.0 + std::exp(-z)) ? 1.0f : 0.0f);
    }
  }
  return d;
}

TEST(ScoreBlend, RecoversPlantedWeightsAndIsCalibrated) {
  const Planted d = planted(-1.0, 1.5, 0.8, 5);
  ScoreBlend blend;
  blend.add_source("cf", dense_scorer(d.score, d.n_users, d.n_benefits, "cf"));
  blend.add_source("fm", dense_scorer(d.prob, d.n_users, d.n_benefits, "fm"),
                   ScoreBlend::Transform::logit);
  blend.fit(d.users, d.benefits, d.labels);
  EXPECT_NEAR(blend.bias(), -1.0, 0.1);
  EXPECT_NEAR(blend.weights()[0], 1.5, 0.1);
  EXPECT_NEAR(blend.weights()[1], 0.8, 0.08);
  EXPECT_GT(blend.iterations(), 1);
  EXPECT_LT(blend.iterations(), 20);
  // Calibration: in each decile of the predicted probability the mean label is close.
  std::vector<float> p(d.users.size());
  blend.predict(d.users, d.benefits, p);
  std::vector<std::size_t> order(p.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return p[a] < p[b]; });
  for (int bin = 0; bin < 10; ++bin) {
    double sp = 0, sy = 0;
    const std::size_t i0 = order.size() * static_cast<std::size_t>(bin) / 10,
                      i1 = order.size() * static_cast<std::size_t>(bin + 1) / 10;
    for (std::size_t i = i0; i < i1; ++i) {
      sp += p[order[i]];
      sy += d.labels[order[i]];
    }
    EXPECT_NEAR(sp / static_cast<double>(i1 - i0), sy / static_cast<double>(i1 - i0), 0.03)
        << "decile " << bin;
  }
  // Contributions are the terms of the logit.
  const std::vector<double> terms = blend.contributions(3, 7);
  const std::size_t i = 3 * static_cast<std::size_t>(d.n_benefits) + 7;
  EXPECT_NEAR(terms[0], blend.weights()[0] * d.score[i], 1e-5);
  EXPECT_NEAR(terms[1], blend.weights()[1] * std::log(d.prob[i] / (1 - d.prob[i])), 1e-4);
  EXPECT_NEAR(1.0 / (1.0 + std::exp(-(blend.bias() + terms[0] + terms[1]))), p[i], 1e-5);
}

TEST(ScoreBlend, DeterministicForAnyThreadCountAndRoundTripsThroughJson) {
  const Planted d = planted(0.3, -0.7, 1.2, 9);
  std::vector<double> reference;
  double reference_bias = 0;
  for (int t : {1, 2, 3}) {
    ScoreBlendParams params;
    params.num_threads = t;
    ScoreBlend blend(params);
    blend.add_source("cf", dense_scorer(d.score, d.n_users, d.n_benefits));
    blend.add_source("fm", dense_scorer(d.prob, d.n_users, d.n_benefits),
                     ScoreBlend::Transform::logit);
    blend.fit(d.users, d.benefits, d.labels);
    if (t == 1) {
      reference = blend.weights();
      reference_bias = blend.bias();
    } else {
      EXPECT_EQ(blend.weights(), reference);
      EXPECT_EQ(blend.bias(), reference_bias);
    }
    if (t == 3) {
      ScoreBlend back = ScoreBlend::from_json(Json::parse(blend.to_json().dump()));
      EXPECT_EQ(back.source_names(), blend.source_names());
      EXPECT_EQ(back.transform(1), ScoreBlend::Transform::logit);
      std::vector<float> p(10);
      const Span<const Index> us(d.users.data(), 10), bs(d.benefits.data(), 10);
      PERKREC_EXPECT_THROW_MSG(back.predict(us, bs, p), InputError, "\"cf\"", "attach");
      back.attach("cf", dense_scorer(d.score, d.n_users, d.n_benefits));
      back.attach("fm", dense_scorer(d.prob, d.n_users, d.n_benefits));
      std::vector<float> q(10);
      back.predict(us, bs, p);
      blend.predict(us, bs, q);
      for (int i = 0; i < 10; ++i) EXPECT_NEAR(p[i], q[i], 1e-6);
      PERKREC_EXPECT_THROW_MSG(back.attach("als", dense_scorer(d.score, d.n_users, d.n_benefits)),
                               ConfigError, "unknown source", "als");
    }
  }
  PERKREC_EXPECT_THROW_MSG(
      ScoreBlend::from_json(Json::parse(R"({"sources": [{"name": "a", "wieght": 1}]})")),
      ConfigError, "/sources/0/wieght");
  PERKREC_EXPECT_THROW_MSG(
      ScoreBlend::from_json(Json::parse(R"({"sources": [{"name": "a", "transform": "log"}]})")),
      ConfigError, "/sources/0/transform");
  PERKREC_EXPECT_THROW_MSG(ScoreBlend::from_json(Json::parse(R"({"params": {"l2": -1}})")),
                           ConfigError, "l2");
}

TEST(ScoreBlend, BadInputsThrow) {
  const Planted d = planted(0.0, 1.0, 1.0, 2);
  ScoreBlend blend;
  blend.add_source("cf", dense_scorer(d.score, d.n_users, d.n_benefits));
  PERKREC_EXPECT_THROW_MSG(blend.add_source("cf", dense_scorer(d.score, d.n_users, d.n_benefits)),
                           ConfigError, "duplicate");
  std::vector<float> p(3);
  const std::vector<Index> u{0, 1, 2}, b{0, 1, 2};
  PERKREC_EXPECT_THROW_MSG(blend.predict(u, b, p), InputError, "not fitted");
  const std::vector<float> bad_labels{0.0f, 2.0f, 1.0f};
  PERKREC_EXPECT_THROW_MSG(blend.fit(u, b, bad_labels), InputError, "labels[1]");
  std::vector<float> bad_scores = d.score;
  bad_scores[static_cast<std::size_t>(d.n_benefits) + 1] = INFINITY;  // user 1, benefit 1
  ScoreBlend nan_blend;
  nan_blend.add_source("broken", dense_scorer(bad_scores, d.n_users, d.n_benefits));
  const std::vector<float> labels{0.0f, 1.0f, 1.0f};
  PERKREC_EXPECT_THROW_MSG(nan_blend.fit(u, b, labels), InputError, "\"broken\"", "pair 1");
  ScoreBlend logit_blend;
  logit_blend.add_source("not_prob", dense_scorer(d.score, d.n_users, d.n_benefits),
                         ScoreBlend::Transform::logit);
  PERKREC_EXPECT_THROW_MSG(logit_blend.fit(d.users, d.benefits, d.labels), InputError, "[0, 1]");
  const std::vector<Index> far{999};
  const std::vector<Index> zero{0};
  const std::vector<float> one{1.0f};
  PERKREC_EXPECT_THROW_MSG(blend.fit(far, zero, one), InputError, "out of range");
  EXPECT_FALSE(blend.fitted());  // failed fits leave the blend as it was
}

TEST(Ranker, BlendRankEqualsDenseRankOfItsProbabilities) {
  const Planted d = planted(-2.0, 1.0, 0.5, 4);
  ScoreBlend blend;
  blend.add_source("cf", dense_scorer(d.score, d.n_users, d.n_benefits));
  blend.add_source("fm", dense_scorer(d.prob, d.n_users, d.n_benefits),
                   ScoreBlend::Transform::logit);
  blend.fit(d.users, d.benefits, d.labels);
  std::vector<float> prob(d.users.size());
  blend.predict(d.users, d.benefits, prob);
  std::mt19937 rng(1);
  const EligibilityMasks masks = random_masks(d.n_users, d.n_benefits, 4, 0.5, rng);
  std::vector<float> mv(static_cast<std::size_t>(d.n_users), 10.0f),
      cost(static_cast<std::size_t>(d.n_benefits), 3.0f);
  RankInputs in;
  in.member_value = mv;
  in.cost_per_redemption = cost;
  RankerParams p;
  p.top_k = 5;
  RankDiagnostics d1, d2;
  const Candidates from_blend = rank(blend, in, masks, p, &d1);
  in.redemption_probability = prob;
  const Candidates dense = rank(in, masks, p, &d2);
  EXPECT_EQ(from_blend.offsets, dense.offsets);
  EXPECT_EQ(from_blend.benefit, dense.benefit);
  EXPECT_EQ(from_blend.value, dense.value);
  EXPECT_EQ(d1.best_ineligible, d2.best_ineligible);
  const Candidates no_diag = rank(blend, in, masks, p);
  EXPECT_EQ(no_diag.benefit, dense.benefit);
}

TEST(ScoreBlend, AcceptsModelsThroughModelScorer) {
  // Popularity's score is its per-benefit rate: a blend on it alone ranks like popularity.
  CsrMatrix<float> x;
  x.rows = 3;
  x.cols = 3;
  x.indptr = {0, 2, 3, 5};
  x.indices = {0, 1, 0, 0, 2};
  x.data = {1, 1, 1, 1, 1};
  Popularity pop;
  pop.fit(x.view());
  ScoreBlend blend;
  blend.add_source("popularity", model_scorer(pop));
  blend.set_weights(-1.0, {2.0});
  std::vector<float> out(3), raw(3);
  const std::vector<Index> u{0, 0, 0}, b{0, 1, 2};
  blend.predict(u, b, out);
  pop.score(u, b, raw);
  for (int i = 0; i < 3; ++i)
    EXPECT_NEAR(out[static_cast<std::size_t>(i)],
                1.0 / (1.0 + std::exp(1.0 - 2.0 * raw[static_cast<std::size_t>(i)])), 1e-6);
  EXPECT_GT(out[0], out[1]);
}

// --- schedule --------------------------------------------------------------------------------

constexpr Timestamp kMonday = 4 * kSecondsPerDay;  // 1970-01-05 00:00 UTC was a Monday

TEST(Schedule, HourOfWeekAndDefaultsWithoutAModel) {
  EXPECT_EQ(hour_of_week(kMonday), 0);
  EXPECT_EQ(hour_of_week(0), 72);  // Thursday 00:00
  EXPECT_EQ(hour_of_week(kMonday - 1), 167);
  EXPECT_EQ(hour_of_week(kMonday + 7 * kSecondsPerDay + 25 * kSecondsPerHour + 59), 25);
  Benefit b;
  b.id = "B";
  b.validity_days = 14;
  // Monday 12:00 -> Tuesday 10:00 (default hour 10, already past on Monday).
  SendSchedule s = schedule(nullptr, 0, kMonday + 12 * kSecondsPerHour, b);
  EXPECT_EQ(s.send_at, kMonday + kSecondsPerDay + 10 * kSecondsPerHour);
  EXPECT_EQ(s.validity_days, 14);
  EXPECT_FALSE(s.from_model);
  // Monday 08:00 -> Monday 10:00; exactly 10:00 stays.
  EXPECT_EQ(schedule(nullptr, 0, kMonday + 8 * kSecondsPerHour, b).send_at,
            kMonday + 10 * kSecondsPerHour);
  EXPECT_EQ(schedule(nullptr, 0, kMonday + 10 * kSecondsPerHour, b).send_at,
            kMonday + 10 * kSecondsPerHour);
  // The quiet-hours callable moves the time.
  const auto quiet = [](Timestamp t) { return t + 3 * kSecondsPerHour; };
  EXPECT_EQ(schedule(nullptr, 0, kMonday, b, quiet).send_at, kMonday + 13 * kSecondsPerHour);
  ScheduleParams params;
  params.default_hour = 24;
  PERKREC_EXPECT_THROW_MSG(schedule(nullptr, 0, kMonday, b, {}, params), ConfigError,
                           "default_hour");
  PERKREC_EXPECT_THROW_MSG(schedule(nullptr, -1, kMonday, b), InputError, "member");
}

TEST(Schedule, QuietHoursWrapAroundMidnightAndUtcOffsets) {
  const QuietHours night{22, 8};
  const Timestamp day = kMonday;
  EXPECT_EQ(night.next_allowed(day + 12 * kSecondsPerHour), day + 12 * kSecondsPerHour);
  EXPECT_EQ(night.next_allowed(day + 23 * kSecondsPerHour),
            day + kSecondsPerDay + 8 * kSecondsPerHour);
  EXPECT_EQ(night.next_allowed(day + 3 * kSecondsPerHour), day + 8 * kSecondsPerHour);
  EXPECT_EQ(night.next_allowed(day + 8 * kSecondsPerHour), day + 8 * kSecondsPerHour);
  // 12:00 UTC is 23:00 at UTC+11: quiet until 08:00 local = 21:00 UTC.
  EXPECT_EQ(night.next_allowed(day + 12 * kSecondsPerHour, 11.0), day + 21 * kSecondsPerHour);
  const QuietHours lunch{12, 14};
  EXPECT_EQ(lunch.next_allowed(day + 13 * kSecondsPerHour), day + 14 * kSecondsPerHour);
  EXPECT_EQ(lunch.next_allowed(day + 11 * kSecondsPerHour), day + 11 * kSecondsPerHour);
  PERKREC_EXPECT_THROW_MSG((QuietHours{5, 5}.validate()), ConfigError,
                           "start_hour equals end_hour");
}

// A small simulated program and a two-class preference model fitted on it.
struct FittedPreference {
  SimulatedProgram prog;
  PreferenceModel model;
};

FittedPreference fitted_preference(Index n_users, int days, int em_iterations) {
  SimulatorParams sp;
  sp.n_users = n_users;
  sp.days = days;
  PreferenceParams pp;
  pp.latent_classes = 2;
  pp.em_iterations = em_iterations;
  FittedPreference f{simulate(sp), PreferenceModel(pp)};
  f.model.fit(f.prog.events, f.prog.catalog, f.prog.truth.reference_time);
  return f;
}

TEST(Schedule, FollowsThePreferenceModelsBestSlotAcrossTheWeekBoundary) {
  const FittedPreference fitted = fitted_preference(400, 120, 3);
  const SimulatedProgram& prog = fitted.prog;
  const PreferenceModel& model = fitted.model;
  const Benefit& b = prog.catalog[0];
  const Timestamp plan = model.cut_time();
  std::vector<Index> members;
  std::vector<std::int32_t> validity;
  for (Index u = 0; u < model.n_users(); ++u) {
    const MemberTiming& t = model.timing()[static_cast<std::size_t>(u)];
    const SendSchedule s = schedule(&model, u, plan, b);
    ASSERT_TRUE(s.from_model);
    const Timestamp earliest =
        std::max(plan, model.cut_time() +
                           static_cast<Timestamp>(std::llround(t.send_in_days * kSecondsPerDay)));
    EXPECT_EQ(hour_of_week(s.send_at), t.best_slot);
    EXPECT_GE(s.send_at, earliest);
    EXPECT_LT(s.send_at, earliest + 7 * kSecondsPerDay);
    EXPECT_EQ(s.validity_days,
              std::min<std::int32_t>(static_cast<std::int32_t>(std::ceil(t.validity_days)),
                                     b.validity_days));
    members.push_back(u);
    validity.push_back(b.validity_days);
  }
  // Members the model does not know get the defaults.
  EXPECT_FALSE(schedule(&model, model.n_users(), plan, b).from_model);
  // The batch equals the single calls; quiet hours apply per row.
  const std::size_t n = members.size();
  std::vector<Timestamp> at(n);
  std::vector<std::int32_t> days(n);
  std::vector<std::uint8_t> from(n);
  const QuietHours night{22, 8};
  std::vector<float> offsets(n, 2.0f);
  schedule_batch(&model, members, plan, validity, &night, offsets, at, days, from, {}, 2);
  for (std::size_t i = 0; i < n; ++i) {
    const SendSchedule s = schedule(&model, members[i], plan, b,
                                    [&](Timestamp t) { return night.next_allowed(t, 2.0); });
    EXPECT_EQ(at[i], s.send_at);
    EXPECT_EQ(days[i], s.validity_days);
    EXPECT_EQ(from[i], 1);
  }
  // Snapping across the week boundary: Sunday 23:30 to slot 1 is Monday 01:00.
  EXPECT_EQ(next_in_hour_of_week(kMonday + 7 * kSecondsPerDay - 30 * 60, 1),
            kMonday + 7 * kSecondsPerDay + kSecondsPerHour);
  EXPECT_EQ(next_in_hour_of_week(kMonday + 90 * 60, 1),
            kMonday + 90 * 60);  // inside the slot already
  EXPECT_EQ(next_in_hour_of_week(kMonday + 2 * kSecondsPerHour, 1),
            kMonday + 7 * kSecondsPerDay + kSecondsPerHour);
  PERKREC_EXPECT_THROW_MSG(next_in_hour_of_week(kMonday, 168), InputError, "slot");
}

// --- explanations ----------------------------------------------------------------------------

ExplanationContext small_context(const std::vector<float>& pref, const std::vector<float>& lo,
                                 const std::vector<float>& hi) {
  ExplanationContext ctx;
  ctx.preference = pref;
  ctx.lower = lo;
  ctx.upper = hi;
  ctx.dimension_names = {"kind:points", "kind:gift", "face_value:<10", "channel:app"};
  ctx.benefit_dim_offsets = {0, 3, 5, 5};  // B0: points, <10, app; B1: gift, <10; B2: none
  ctx.benefit_dims = {0, 2, 3, 1, 2};
  ctx.source_names = {"als", "fm"};
  ctx.benefit_ids = {"B0", "B1", "B2"};
  ctx.rule_names = {"gold only", "no gifts for new members"};
  ctx.top_dimensions = 2;
  return ctx;
}

TEST(Explain, KnownAnswerFields) {
  const std::vector<float> pref{1.8f, 0.5f, 1.2f, 0.9f,   // member 0
                                0.7f, 2.0f, 1.0f, 1.1f};  // member 1
  std::vector<float> lo(pref), hi(pref);
  for (auto& v : lo) v -= 0.25f;
  for (auto& v : hi) v += 0.25f;
  const ExplanationContext ctx = small_context(pref, lo, hi);
  const float terms[2] = {0.25f, 0.75f};
  ExplanationRow row;
  row.member = 0;
  row.benefit = 0;
  row.probability = 0.3f;
  row.value = 4.5f;
  row.cost = 1.25f;
  row.contributions = terms;
  row.runner_up = 1;
  row.runner_up_reason = ExclusionReason::budget;
  row.best_ineligible = 2;
  row.best_ineligible_rule = 1;
  const Json j = explain(ctx, row);
  EXPECT_EQ(j["member"], 0);
  EXPECT_EQ(j["benefit"], "B0");
  EXPECT_DOUBLE_EQ(j["probability"].get<double>(), 0.3);
  EXPECT_DOUBLE_EQ(j["value"].get<double>(), 4.5);
  EXPECT_DOUBLE_EQ(j["cost"].get<double>(), 1.25);
  ASSERT_EQ(j["preferences"].size(), 2u);  // top 2 of points 1.8, <10 1.2, app 0.9
  EXPECT_EQ(j["preferences"][0]["dimension"], "kind:points");
  EXPECT_DOUBLE_EQ(j["preferences"][0]["lift"].get<double>(), 1.8);
  EXPECT_DOUBLE_EQ(j["preferences"][0]["lower"].get<double>(), 1.55);
  EXPECT_DOUBLE_EQ(j["preferences"][0]["upper"].get<double>(), 2.05);
  EXPECT_EQ(j["preferences"][1]["dimension"], "face_value:<10");
  ASSERT_EQ(j["contributions"].size(), 2u);
  EXPECT_EQ(j["contributions"][0]["source"], "fm");  // largest term first
  EXPECT_DOUBLE_EQ(j["contributions"][0]["term"].get<double>(), 0.75);
  EXPECT_EQ(j["runner_up"]["benefit"], "B1");
  EXPECT_EQ(j["runner_up"]["reason"], "budget");
  EXPECT_EQ(j["best_ineligible"]["benefit"], "B2");
  EXPECT_EQ(j["best_ineligible"]["rule"], "no gifts for new members");
  // Member 1 and B1: gift 2.0 then <10 1.0; nothing else known.
  ExplanationRow other;
  other.member = 1;
  other.benefit = 1;
  const Json k = explain(ctx, other);
  EXPECT_EQ(k["preferences"][0]["dimension"], "kind:gift");
  EXPECT_TRUE(k["probability"].is_null());
  EXPECT_TRUE(k["runner_up"].is_null());
  EXPECT_TRUE(k["best_ineligible"].is_null());
  EXPECT_TRUE(k["contributions"].empty());
  other.benefit = 5;
  PERKREC_EXPECT_THROW_MSG(explain(ctx, other), InputError, "benefit out of range");
  other.benefit = 0;
  other.member = 2;
  PERKREC_EXPECT_THROW_MSG(explain(ctx, other), InputError, "member out of range");
}

TEST(Explain, BatchEqualsSingleRowsAndPipelineOverload) {
  const std::vector<float> pref{1.8f, 0.5f, 1.2f, 0.9f, 0.7f, 2.0f, 1.0f, 1.1f};
  const ExplanationContext ctx = small_context(pref, {}, {});
  const std::vector<Index> members{0, 1, 1, 0};
  const std::vector<Index> benefits{0, 1, 2, 1};
  const std::vector<float> prob{0.1f, 0.2f, 0.3f, 0.4f}, value{1, 2, 3, 4},
      cost{0.5f, 0.5f, 0.5f, 0.5f};
  const std::vector<float> contrib{0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f};
  const std::vector<Index> runner{1, -1, 0, 2};
  const std::vector<std::uint8_t> reason{3, 0, 4, 7};
  const std::vector<Index> best{2, 0, -1, 0};
  const std::vector<std::int32_t> rule{0, 1, -1, 0};
  ExplanationBatch batch;
  batch.members = members;
  batch.benefits = benefits;
  batch.probability = prob;
  batch.value = value;
  batch.cost = cost;
  batch.contributions = contrib;
  batch.runner_up = runner;
  batch.runner_up_reason = reason;
  batch.best_ineligible = best;
  batch.best_ineligible_rule = rule;
  const std::vector<std::string> texts = explain_batch(ctx, batch, 2);
  ASSERT_EQ(texts.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    ExplanationRow row;
    row.member = members[i];
    row.benefit = benefits[i];
    row.probability = prob[i];
    row.value = value[i];
    row.cost = cost[i];
    row.contributions = contrib.data() + 2 * i;
    row.runner_up = runner[i];
    row.runner_up_reason = static_cast<ExclusionReason>(reason[i]);
    row.best_ineligible = best[i];
    row.best_ineligible_rule = rule[i];
    EXPECT_EQ(texts[i], explain_text(ctx, row));
    EXPECT_EQ(Json::parse(texts[i]), explain(ctx, row));
  }
  EXPECT_EQ(Json::parse(texts[3])["runner_up"]["reason"], "stacking");
  EXPECT_EQ(texts[1].rfind("{\"member\":1,\"benefit\":\"B1\",\"probability\":0.2,\"value\":2,", 0),
            0u)
      << texts[1];
  // Names are escaped.
  ExplanationContext odd = ctx;
  odd.benefit_ids[0] = "say \"hi\"\\\n";
  ExplanationRow plain;
  const Json escaped = Json::parse(explain_text(odd, plain));
  EXPECT_EQ(escaped["benefit"], "say \"hi\"\\\n");
  const std::vector<float> short_value{1, 2};
  batch.value = short_value;
  PERKREC_EXPECT_THROW_MSG(explain_batch(ctx, batch), InputError, "value", "2 entries");

  // The pipeline overload reads the candidate, runner-up and diagnostics.
  Candidates c;
  c.n_users = 2;
  c.n_benefits = 3;
  c.offsets = {0, 2, 3};
  c.benefit = {0, 1, 2};
  c.value = {5, 4, 3};
  c.cost = {1, 1, 1};
  c.probability = {0.5f, 0.4f, 0.3f};
  Allocation a;
  a.offsets = {0, 1, 2};
  a.candidate = {0, 2};
  a.benefit = {0, 2};
  a.runner_up = {1, -1};
  a.runner_up_reason = {ExclusionReason::inventory, ExclusionReason::none};
  RankDiagnostics diag;
  diag.best_ineligible = {2, -1};
  diag.best_ineligible_rule = {0, -1};
  ExplanationContext no_blend = ctx;
  no_blend.source_names.clear();
  const Json j = explain(no_blend, 0, 0, c, &a, nullptr, &diag);
  EXPECT_DOUBLE_EQ(j["value"].get<double>(), 5.0);
  EXPECT_DOUBLE_EQ(j["probability"].get<double>(), 0.5);
  EXPECT_EQ(j["runner_up"]["benefit"], "B1");
  EXPECT_EQ(j["runner_up"]["reason"], "inventory");
  EXPECT_EQ(j["best_ineligible"]["rule"], "gold only");
}

TEST(Explain, ContextFromAPreferenceModelMatchesDimensionsByName) {
  const FittedPreference fitted = fitted_preference(300, 90, 2);
  const SimulatedProgram& prog = fitted.prog;
  const PreferenceModel& model = fitted.model;
  const ExplanationContext ctx = ExplanationContext::make(&model, prog.catalog, nullptr, {"r0"});
  ctx.validate();
  ASSERT_EQ(ctx.n_benefits(), prog.catalog.size());
  EXPECT_EQ(ctx.benefit_ids[0], prog.catalog[0].id);
  const Benefit& b = prog.catalog[3];
  const std::string kind_dim = std::string("kind:") + to_string(b.kind);
  bool has_kind = false;
  for (auto k = ctx.benefit_dim_offsets[3]; k < ctx.benefit_dim_offsets[4]; ++k) {
    has_kind |= ctx.dimension_names[static_cast<std::size_t>(
                    ctx.benefit_dims[static_cast<std::size_t>(k)])] == kind_dim;
  }
  EXPECT_TRUE(has_kind);
  ExplanationRow row;
  row.member = 5;
  row.benefit = 3;
  const Json j = explain(ctx, row);
  ASSERT_EQ(j["preferences"].size(), 3u);
  EXPECT_GE(j["preferences"][0]["lift"].get<double>(), j["preferences"][1]["lift"].get<double>());
  EXPECT_LE(j["preferences"][0]["lower"].get<double>(), j["preferences"][0]["lift"].get<double>());
}

}  // namespace
}  // namespace perkrec
