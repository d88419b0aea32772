#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "test_util.hpp"

namespace perkrec {
namespace {

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

using testing::correlation;

// True logit = -1.5 + benefit + member + member x kind + member x channel; 16 benefits of 4
// kinds (b % 4) and 2 channels (b / 8); issues drawn uniformly, labels from the truth.
struct Planted {
  Index n = 800, nb = 16;
  std::vector<Index> kind, channel, users, benefits;
  std::vector<double> member, member_kind, member_channel, redeemed, truth;
};

Planted planted(std::uint64_t seed, int issues_per_member = 40) {
  Planted p;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0, 1);
  for (Index b = 0; b < p.nb; ++b) {
    p.kind.push_back(b % 4);
    p.channel.push_back(b / 8);
  }
  std::vector<double> benefit(p.nb);
  for (auto& v : benefit) v = 0.4 * g(rng);
  p.member.resize(p.n);
  p.member_kind.resize(p.n * 4);
  p.member_channel.resize(p.n * 2);
  for (auto& v : p.member) v = 0.5 * g(rng);
  for (auto& v : p.member_kind) v = 0.8 * g(rng);
  for (auto& v : p.member_channel) v = 1.0 * g(rng);
  for (Index u = 0; u < p.n; ++u) {
    for (Index b = 0; b < p.nb; ++b) {
      p.truth.push_back(sigmoid(-1.5 + benefit[b] + p.member[u] + p.member_kind[u * 4 + p.kind[b]] +
                                p.member_channel[u * 2 + p.channel[b]]));
    }
  }
  std::uniform_int_distribution<Index> pick_b(0, p.nb - 1);
  std::uniform_real_distribution<double> unit(0, 1);
  for (Index u = 0; u < p.n; ++u) {
    for (int i = 0; i < issues_per_member; ++i) {
      const Index b = pick_b(rng);
      p.users.push_back(u);
      p.benefits.push_back(b);
      p.redeemed.push_back(unit(rng) < p.truth[static_cast<std::size_t>(u * p.nb + b)] ? 1.0 : 0.0);
    }
  }
  return p;
}

template <class T>
Span<const T> span(const std::vector<T>& v) {
  return Span<const T>(v.data(), v.size());
}

PooledRedemption fit(const Planted& p, int threads = 1, const std::vector<float>& base = {},
                     const std::vector<double>& at_issue = {},
                     const std::vector<double>& weight = {}) {
  PooledEffectsParams params;
  params.num_threads = threads;
  return pooled_redemption(span(base), p.n, p.nb, {span(p.kind), span(p.channel)}, span(p.users),
                           span(p.benefits), span(at_issue), span(p.redeemed), span(weight), {},
                           params);
}

TEST(PooledRedemption, RecoversPlantedMemberKindAndMemberChannelEffects) {
  const Planted p = planted(11, 80);
  const PooledRedemption r = fit(p);
  ASSERT_EQ(r.fit.effects.size(), 4u);  // benefit, member, member x kind, member x channel
  EXPECT_GT(correlation(r.fit.effects[2], p.member_kind), 0.65);
  EXPECT_GT(correlation(r.fit.effects[3], p.member_channel), 0.75);
  // Planted variances 0.64 and 1.0: the Laplace approximation underestimates them on sparse
  // binary data, but each group gets its own, in the planted order (not the initial 1 for all).
  EXPECT_GT(r.fit.variance[2], 0.2);
  EXPECT_LT(r.fit.variance[2], r.fit.variance[3]);
  EXPECT_LT(r.fit.variance[3], 1.6);
  EXPECT_GT(correlation(r.probability, p.truth), 0.85);
}

TEST(PooledRedemption, AGroupWithoutSignalIsShrunkAway) {
  // Labels drawn from the truth, which here has no member x kind effect at all.
  Planted p = planted(12);
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> unit(0, 1);
  for (std::size_t r = 0; r < p.users.size(); ++r) {
    const Index u = p.users[r], b = p.benefits[r];
    p.redeemed[r] = unit(rng) < sigmoid(-1.5 + p.member_channel[u * 2 + p.channel[b]]) ? 1.0 : 0.0;
  }
  const PooledRedemption r = fit(p);
  EXPECT_LT(r.fit.variance[2], 0.15);  // member x kind: EM nears 0 slowly on sparse levels
  EXPECT_GT(r.fit.variance[3], 0.5);   // member x channel
}

TEST(PooledEffects, PullsRarelySeenLevelsTowardTheGroupMean) {
  // Levels 0..39: 100 rows each at rate ~0.2 with small true effects; level 40: 2 rows, both
  // redeemed (unpooled, its effect would be infinite); level 41: 300 rows at rate 0.6.
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> unit(0, 1);
  std::vector<Index> level;
  std::vector<double> label;
  for (Index l = 0; l < 40; ++l) {
    for (int i = 0; i < 100; ++i) level.push_back(l), label.push_back(unit(rng) < 0.2 ? 1.0 : 0.0);
  }
  level.push_back(40), label.push_back(1.0);
  level.push_back(40), label.push_back(1.0);
  for (int i = 0; i < 300; ++i) level.push_back(41), label.push_back(unit(rng) < 0.6 ? 1.0 : 0.0);
  const PooledEffects f = fit_pooled_effects(span(label), {}, {}, {EffectGroup{span(level), 43}});
  const std::vector<double>& e = f.effects[0];
  EXPECT_GT(e[40], 0.0);
  EXPECT_LT(e[40], 1.0);  // pulled most of the way to the mean
  EXPECT_GT(e[41], 1.2);  // logit 0.6 - logit 0.2 ~ 1.8, with plenty of rows: mostly kept
  EXPECT_LT(e[40], e[41]);
  EXPECT_EQ(e[42], 0.0);  // a level without rows stays at the mean
}

TEST(PooledRedemption, OnAPerfectBaseTheEffectsVanish) {
  const Planted p = planted(13);
  std::vector<float> base(p.truth.begin(), p.truth.end());
  std::vector<double> at_issue;
  for (std::size_t r = 0; r < p.users.size(); ++r) {
    at_issue.push_back(p.truth[static_cast<std::size_t>(p.users[r] * p.nb + p.benefits[r])]);
  }
  const PooledRedemption r = fit(p, 1, base, at_issue);
  ASSERT_EQ(r.fit.effects.size(), 3u);                 // member, member x kind, member x channel
  for (double v : r.fit.variance) EXPECT_LT(v, 0.15);  // EM nears 0 slowly on sparse levels
  // Close to the base: a fifth of the error of the same fit without it.
  const PooledRedemption alone = fit(p);
  double on_base = 0, without = 0;
  for (std::size_t i = 0; i < base.size(); ++i) {
    on_base += std::abs(static_cast<double>(r.probability[i]) - p.truth[i]);
    without += std::abs(static_cast<double>(alone.probability[i]) - p.truth[i]);
  }
  EXPECT_LT(on_base, 0.2 * without);
}

TEST(PooledRedemption, KeepsOfTheEffectsTheSlopeHeldOutRowsSupport) {
  Planted p = planted(16, 80);
  std::vector<std::uint8_t> held(p.users.size());
  for (std::size_t r = 0; r < held.size(); ++r) held[r] = r % 4 == 0 ? 1 : 0;
  PooledEffectsParams params;
  const auto run = [&](const Planted& q) {
    return pooled_redemption({}, q.n, q.nb, {span(q.kind), span(q.channel)}, span(q.users),
                             span(q.benefits), {}, span(q.redeemed), {}, span(held), params);
  };
  EXPECT_GT(run(p).slope, 0.7);
  // Held-out labels at a flat rate: the member effects do not hold up there.
  std::mt19937_64 rng(2);
  std::uniform_real_distribution<double> unit(0, 1);
  for (std::size_t r = 0; r < held.size(); ++r) {
    if (held[r]) p.redeemed[r] = unit(rng) < 0.25 ? 1.0 : 0.0;
  }
  EXPECT_LT(run(p).slope, 0.3);
}

TEST(PooledRedemption, IdenticalForOneAndTwoThreads) {
  const Planted p = planted(14, 10);
  const PooledRedemption a = fit(p, 1), b = fit(p, 2);
  EXPECT_EQ(a.probability, b.probability);
  EXPECT_EQ(a.fit.variance, b.fit.variance);
}

TEST(PooledRedemption, RejectsBadInputsNamingTheRow) {
  const Planted p = planted(15, 2);
  std::vector<double> weight(p.users.size(), 1.0);
  weight[3] = std::nan("");
  PERKREC_EXPECT_THROW_MSG(fit(p, 1, {}, {}, weight), InputError, "sample_weight at row 3",
                           "finite");
  weight.pop_back();
  PERKREC_EXPECT_THROW_MSG(fit(p, 1, {}, {}, weight), InputError, "sample_weight has");
  Planted q = p;
  q.users[5] = p.n;  // an unknown member
  PERKREC_EXPECT_THROW_MSG(fit(q, 1), InputError, "row 5", "out of range");
  q = p;
  q.redeemed[2] = 0.5;
  PERKREC_EXPECT_THROW_MSG(fit(q, 1), InputError, "redeemed at row 2", "0/1");
  q = p;
  q.kind.pop_back();
  PERKREC_EXPECT_THROW_MSG(fit(q, 1), InputError, "benefit_attributes[0]", "one per benefit");
  std::vector<float> base(static_cast<std::size_t>(p.n * p.nb), 0.2f);
  PERKREC_EXPECT_THROW_MSG(fit(p, 1, base, {}), InputError, "given together");
  std::vector<double> at_issue(p.users.size(), 0.2);
  base[7] = 1.0f;
  PERKREC_EXPECT_THROW_MSG(fit(p, 1, base, at_issue), InputError, "base at (0, 7)", "(0, 1)");
  PooledEffectsParams params;
  params.sweeps = 0;
  PERKREC_EXPECT_THROW_MSG(params.validate(), ConfigError, "sweeps");
  params = {};
  params.initial_variance = -1;
  PERKREC_EXPECT_THROW_MSG(params.validate(), ConfigError, "initial_variance");
}

/// fit_pooled_member_effects + apply_row: the same effects, slope and matrix as
/// pooled_redemption with a base (what BenefitPlanner stores and applies row by row).
TEST(PooledMemberEffects, ApplyRowReproducesPooledRedemptionsMatrix) {
  const Planted p = planted(21, 12);
  std::vector<float> base(static_cast<std::size_t>(p.n * p.nb));
  std::vector<double> at_issue;
  for (std::size_t i = 0; i < base.size(); ++i)
    base[i] = static_cast<float>(0.05 + 0.3 * static_cast<double>(i % 7) / 7);
  for (std::size_t r = 0; r < p.users.size(); ++r)
    at_issue.push_back(base[static_cast<std::size_t>(p.users[r] * p.nb + p.benefits[r])]);
  std::vector<std::uint8_t> held(p.users.size());
  for (std::size_t r = 0; r < held.size(); ++r) held[r] = r % 4 == 0;
  PooledEffectsParams params;
  params.num_threads = 2;
  const PooledRedemption matrix =
      pooled_redemption(span(base), p.n, p.nb, {span(p.kind), span(p.channel)}, span(p.users),
                        span(p.benefits), span(at_issue), span(p.redeemed), {}, span(held), params);
  const PooledMemberEffects e =
      fit_pooled_member_effects(p.n, p.nb, {span(p.kind), span(p.channel)}, span(p.users),
                                span(p.benefits), span(at_issue), span(p.redeemed), {}, span(held));
  EXPECT_EQ(e.slope, matrix.slope);
  EXPECT_GT(e.slope, 0.0);
  EXPECT_EQ(e.intercept, matrix.fit.intercept);
  EXPECT_EQ(e.member, matrix.fit.effects[0]);
  EXPECT_EQ(e.attribute_effect[0], matrix.fit.effects[1]);
  EXPECT_EQ(e.attribute_effect[1], matrix.fit.effects[2]);
  EXPECT_EQ(e.n_codes, (std::vector<Index>{4, 2}));
  EXPECT_EQ(e.check(p.n, p.nb), "");
  std::vector<float> rows = base;
  for (Index u = 0; u < p.n; ++u)
    e.apply_row(Span<float>(rows.data() + static_cast<std::size_t>(u * p.nb),
                            static_cast<std::size_t>(p.nb)),
                u);
  EXPECT_EQ(rows, matrix.probability);
  EXPECT_NEAR(e.shift(3, 5),
              std::log(matrix.probability[3 * 16 + 5] / (1 - matrix.probability[3 * 16 + 5])) -
                  std::log(base[3 * 16 + 5] / (1 - base[3 * 16 + 5])),
              1e-4);
  PERKREC_EXPECT_THROW_MSG(fit_pooled_member_effects(p.n, p.nb, {span(p.kind)}, span(p.users),
                                                     span(p.benefits), {}, span(p.redeemed)),
                           InputError, "base_at_issue");
  std::vector<float> row(static_cast<std::size_t>(p.nb), 0.3f);
  PERKREC_EXPECT_THROW_MSG(e.apply_row(row, p.n), InputError, "user out of range");
}

/// The preference model's centred kind log-preference with a planted weight: labels drawn from
/// sigmoid(logit base + 0.6 x lift) on a simulated program's logged issues; the fitted weight
/// recovers 0.6, and 0 where the labels ignore the lift.
TEST(PreferenceWeight, RecoversAPlantedWeight) {
  SimulatorParams sp;
  sp.n_users = 1500;
  sp.days = 90;
  sp.seed = 31;
  const SimulatedProgram prog = simulate(sp);
  PreferenceModel model;
  model.fit(prog.events, prog.catalog, prog.events.max_time() + 1);
  const KindPreferenceLift lift(model, prog.catalog);
  const auto nb = static_cast<std::size_t>(prog.catalog.size());
  ASSERT_EQ(lift.n_users(), prog.events.n_users());
  std::vector<double> row(nb);
  lift.row(4, row);
  double mean = 0, spread = 0;
  for (double v : row) mean += v / static_cast<double>(nb);
  for (double v : row) spread = std::max(spread, std::abs(v));
  EXPECT_NEAR(mean, 0.0, 1e-12);  // centred over the benefits
  EXPECT_GT(spread, 0.01);
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> unit(0, 1);
  std::uniform_int_distribution<Index> pick_u(0, lift.n_users() - 1);
  std::uniform_int_distribution<Index> pick_b(0, static_cast<Index>(nb) - 1);
  for (double planted : {0.6, 0.0}) {
    std::vector<Index> users, benefits;
    std::vector<double> base, label;
    for (int i = 0; i < 60000; ++i) {
      const Index u = pick_u(rng), b = pick_b(rng);
      const double q = 0.05 + 0.4 * unit(rng);
      lift.row(u, row);
      const double z = std::log(q / (1 - q)) + planted * row[static_cast<std::size_t>(b)];
      users.push_back(u);
      benefits.push_back(b);
      base.push_back(q);
      label.push_back(unit(rng) < sigmoid(z) ? 1.0 : 0.0);
    }
    const OffsetSlope fit =
        fit_preference_weight(lift, span(users), span(benefits), span(base), span(label));
    EXPECT_NEAR(fit.unclipped, planted, 0.1) << "planted " << planted;
    EXPECT_NEAR(fit.slope, planted, 0.1) << "planted " << planted;
    if (planted > 0) {
      // apply_preference_offset adds weight x lift on the logit scale.
      lift.row(users[0], row);
      std::vector<float> p(nb, 0.25f);
      apply_preference_offset(p, row, fit.slope);
      const auto b = static_cast<std::size_t>(benefits[0]);
      EXPECT_NEAR(std::log(p[b] / (1 - p[b])), std::log(1.0 / 3) + fit.slope * row[b], 1e-5);
    }
  }
  std::vector<Index> users{0, lift.n_users()}, benefits{0, 1};
  std::vector<double> base{0.2, 0.3}, label{0, 1};
  PERKREC_EXPECT_THROW_MSG(
      fit_preference_weight(lift, span(users), span(benefits), span(base), span(label)), InputError,
      "row 1", "out of range");
  users[1] = 1;
  base[0] = 1.0;
  PERKREC_EXPECT_THROW_MSG(
      fit_preference_weight(lift, span(users), span(benefits), span(base), span(label)), InputError,
      "base_at_issue at row 0");
  PERKREC_EXPECT_THROW_MSG(KindPreferenceLift(PreferenceModel(), prog.catalog), InputError,
                           "not fitted");
}

}  // namespace
}  // namespace perkrec
