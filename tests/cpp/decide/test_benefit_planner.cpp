// BenefitPlanner (decide/benefit_planner.hpp): the plan from a pipeline file equals the
// pipeline assembled by hand (encoder rows, FM, shrinkage, timing share, Planner), one-member
// answers equal the plan's probabilities, results do not depend on threads or block size, and
// a config that is not a pipeline's is a ModelFormatError.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "decide/benefit_planner_fixture.hpp"
#include "test_util.hpp"

namespace perkrec {
namespace {

using test::fixture;
using test::Fixture;

/// The pipeline by hand: every (member, benefit) row through the encoder and the FM, the
/// shrinkage on a float64 copy, the dense timing share, then Planner::plan.
TEST(BenefitPlanner, PlanEqualsThePipelineAssembledByHand) {
  const Fixture& fx = fixture();
  const BenefitPlanner bp(fx.file);
  const Timestamp t = fx.end - 3 * 3600;
  const Index n = bp.n_users(), nb = bp.n_benefits();
  const FeatureEncoder enc = FeatureEncoder::from_fm_metadata(fx.file.redemption_model.metadata());
  test::Samples samples(fx.prog);
  for (Index u = 0; u < n; ++u) {
    for (Index b = 0; b < nb; ++b) samples.add(u, b, t);
  }
  const SampleColumns s = samples.columns();
  const CsrMatrix<float> X = enc.transform(s, &fx.prog.events);
  std::vector<float> raw(samples.user.size());
  fx.file.redemption_model.predict(X.view(), raw);
  std::vector<double> clipped(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    clipped[i] = static_cast<double>(std::clamp(raw[i], 1e-6f, static_cast<float>(1 - 1e-6)));
  }
  const std::vector<double> weight;
  const InteractionShrinkage shrunk =
      shrink_interactions(clipped, n, nb, fx.file.holdout_user, fx.file.holdout_benefit,
                          fx.file.holdout_predicted, fx.file.holdout_redeemed, weight);
  double slope = -1;
  EXPECT_EQ(bp.redemption_probability(t, nullptr, &slope), shrunk.probability);
  EXPECT_EQ(slope, shrunk.slope);

  std::vector<double> rate, validity_days;
  for (const auto& m : fx.file.preference.timing())
    rate.push_back(static_cast<double>(m.expected_purchases) /
                   fx.file.preference.params().horizon_days);
  for (const Benefit& b : fx.prog.catalog.benefits()) validity_days.push_back(b.validity_days);
  const std::vector<float> share = timing_share(rate, validity_days);
  const SegmentAssignment segments = fx.file.preference.segments(SegmentRules::defaults());
  const CompiledPolicy compiled =
      bp.policy().compile(fx.prog.catalog, fx.prog.users, t, &segments, &fx.prog.events, 2);
  PlanInputs in;
  in.redemption_probability = shrunk.probability;
  in.incremental_share = share;
  in.order_value = fx.file.order_value;
  in.preference = &fx.file.preference;
  const PlanResult expected = bp.planner().plan(compiled, fx.prog.catalog, t, in);
  const BenefitPlanner::Plan got = bp.plan(t);
  ASSERT_GT(expected.member.size(), 0u);
  EXPECT_EQ(got.result.member, expected.member);
  EXPECT_EQ(got.result.benefit, expected.benefit);
  EXPECT_EQ(got.result.probability, expected.probability);
  EXPECT_EQ(got.result.value, expected.value);
  EXPECT_EQ(got.result.cost, expected.cost);
  EXPECT_EQ(got.result.send_at, expected.send_at);
  EXPECT_EQ(got.result.reasons, expected.reasons);
  EXPECT_EQ(got.slope, shrunk.slope);
}

TEST(BenefitPlanner, ThreadsAndBlocksDoNotChangeTheResult) {
  const Fixture& fx = fixture();
  BenefitPlanner one(fx.file, 1), four(fx.file, 4);
  four.set_block_users(7);
  EXPECT_EQ(one.redemption_probability(fx.end), four.redemption_probability(fx.end));
  const auto a = one.plan(fx.end), b = four.plan(fx.end);
  EXPECT_EQ(a.result.member, b.result.member);
  EXPECT_EQ(a.result.benefit, b.result.benefit);
  EXPECT_EQ(a.result.reasons, b.result.reasons);
  EXPECT_THROW(four.set_block_users(0), ConfigError);
}

// The deprecated member_* forwarders (kept one release) give what the user_* names give.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
TEST(BenefitPlanner, MemberNamesForwardToUserNames) {
  const Fixture& fx = fixture();
  BenefitPlanner bp(fx.file, 1);
  const BenefitPlanner::State state = bp.prepare(fx.end);
  for (Index u = 0; u < std::min<Index>(bp.n_users(), 5); ++u) {
    EXPECT_EQ(bp.member_probability(state, u, fx.end), bp.user_probability(state, u, fx.end));
    EXPECT_EQ(bp.member_share(u), bp.user_share(u));
    EXPECT_EQ(bp.member_value(u), bp.user_value(u));
  }
  const auto nb = static_cast<std::size_t>(bp.n_benefits());
  std::vector<float> a(2 * nb), b(2 * nb);
  bp.score_users(0, 2, fx.end, fx.file.events, a);
  bp.score_members(0, 2, fx.end, fx.file.events, b);
  EXPECT_EQ(a, b);
  bp.set_block_members(3);
  EXPECT_EQ(bp.plan(fx.end).result.benefit, BenefitPlanner(fx.file, 1).plan(fx.end).result.benefit);
  EXPECT_THROW(bp.set_block_members(0), ConfigError);
  EXPECT_THROW(bp.member_value(bp.n_users()), InputError);
}
#pragma GCC diagnostic pop

TEST(BenefitPlanner, OneMemberAnswersMatchThePlanAtTheSameTime) {
  const Fixture& fx = fixture();
  BenefitPlannerFile unlimited = fx.file;
  unlimited.config["policy"] = Json{{"max_per_member", 1}};
  const BenefitPlanner bp(unlimited, 2);
  const std::vector<float> P = bp.redemption_probability(fx.end);
  const BenefitPlanner::Plan plan = bp.plan(fx.end);
  const BenefitPlanner::State state = bp.prepare(fx.end);
  const auto nb = static_cast<std::size_t>(bp.n_benefits());
  std::size_t row = 0, checked = 0;
  for (Index u = 0; u < bp.n_users(); ++u) {
    const UserAnswer a = bp.answer(state, u, fx.end, 20);
    ASSERT_EQ(a.probability.size(), nb);
    EXPECT_TRUE(std::equal(a.probability.begin(), a.probability.end(),
                           P.begin() + static_cast<std::ptrdiff_t>(u * nb)))
        << "member " << u;
    EXPECT_LE(a.benefits.size(), 20u);
    for (std::size_t i = 1; i < a.benefits.size(); ++i) {
      EXPECT_GE(a.benefits[i - 1].value - a.benefits[i - 1].cost,
                a.benefits[i].value - a.benefits[i].cost);
    }
    // Without a budget the plan gives each member the candidate of largest value: one of the
    // answer's, with the same numbers and send time.
    const bool planned = row < plan.result.member.size() && plan.result.member[row] == u;
    ASSERT_EQ(planned, !a.benefits.empty()) << "member " << u;
    if (planned) {
      const auto it = std::find_if(a.benefits.begin(), a.benefits.end(), [&](const UserBenefit& m) {
        return m.benefit == plan.result.benefit[row];
      });
      ASSERT_NE(it, a.benefits.end()) << "member " << u;
      EXPECT_EQ(it->probability, plan.result.probability[row]);
      EXPECT_EQ(it->value, plan.result.value[row]);
      EXPECT_EQ(it->cost, plan.result.cost[row]);
      EXPECT_EQ(it->schedule.send_at, plan.result.send_at[row]);
      for (const UserBenefit& m : a.benefits) EXPECT_LE(m.value, it->value);
      EXPECT_NE(it->reasons.find("\"preferences\""), std::string::npos);
      ++row;
      ++checked;
    }
  }
  EXPECT_GT(checked, 10u);
  EXPECT_THROW(bp.answer(state, bp.n_users(), fx.end), InputError);
  EXPECT_THROW(bp.answer(state, 0, fx.end, 0), InputError);
}

TEST(BenefitPlanner, ANewerLogOfTheSameShapeIsUsedAndAnotherShapeRefused) {
  const Fixture& fx = fixture();
  const BenefitPlanner bp(fx.file, 2);
  // The log without its last 10 days: different history, same members and benefits.
  std::vector<std::uint8_t> keep(static_cast<std::size_t>(fx.prog.events.size()));
  for (std::size_t e = 0; e < keep.size(); ++e)
    keep[e] = fx.prog.events.timestamps()[e] < fx.end - 10 * 86400;
  const EventLog older = fx.prog.events.filter(keep);
  EXPECT_EQ(bp.redemption_probability(fx.end, &fx.prog.events), bp.redemption_probability(fx.end));
  EXPECT_NE(bp.redemption_probability(fx.end, &older), bp.redemption_probability(fx.end));
  EventColumns cols;
  const std::vector<Index> u{0}, b{0};
  const std::vector<std::uint8_t> type{static_cast<std::uint8_t>(EventType::issued)};
  const std::vector<Timestamp> time{fx.end};
  cols.user = u;
  cols.benefit = b;
  cols.type = type;
  cols.timestamp = time;
  const EventLog tiny = EventLog::from_columns(cols, 3, bp.n_benefits());
  EXPECT_THROW(bp.plan(fx.end, std::numeric_limits<double>::quiet_NaN(), &tiny), InputError);
}

TEST(BenefitPlanner, AConfigThatIsNotAPipelinesIsAModelFormatError) {
  const Fixture& fx = fixture();
  BenefitPlannerFile f = fx.file;
  f.config["params"].erase("shrink");
  EXPECT_THROW(BenefitPlanner{f}, ModelFormatError);
  f = fx.file;
  f.config["params"]["incremental"] = "control";  // without a stored share
  EXPECT_THROW(BenefitPlanner{f}, ModelFormatError);
  f = fx.file;
  f.config["policy"] = Json{{"budget", "lots"}};
  EXPECT_THROW(BenefitPlanner{f}, ModelFormatError);
  f = fx.file;
  f.redemption_model.set_metadata("{}");
  EXPECT_THROW(BenefitPlanner{f}, ModelFormatError);
  const BenefitPlanner loaded = BenefitPlanner::from_bytes(fx.file.to_bytes(), 1);
  EXPECT_EQ(loaded.redemption_probability(fx.end),
            BenefitPlanner(fx.file, 1).redemption_probability(fx.end));
}

/// With params.pooled and params.preference_offset: the shrunk P, then pooled_redemption's
/// matrix on top of it with the same fit, then the preference offset by hand (log of the
/// member's kind preference, centred over the benefits, times the weight) equal the planner's
/// P, and the plan equals Planner::plan on it.
TEST(BenefitPlanner, PooledAndPreferenceOffsetEqualThePipelineAssembledByHand) {
  const Fixture& fx = fixture();
  const BenefitPlannerFile file = test::pooled_file(0.5);
  const BenefitPlanner plain(fx.file, 2), bp(file, 2);
  EXPECT_FALSE(plain.pooled());
  EXPECT_EQ(plain.preference_weight(), 0.0);
  EXPECT_TRUE(bp.pooled());
  EXPECT_EQ(bp.preference_weight(), 0.5);
  const Index n = bp.n_users(), nb = bp.n_benefits();
  std::vector<float> base = plain.redemption_probability(fx.end);
  for (float& p : base) p = std::clamp(p, 1e-6f, static_cast<float>(1 - 1e-6));
  const std::vector<std::vector<Index>> codes = test::kind_and_channel(fx.prog.catalog);
  const PooledRedemption pooled =
      pooled_redemption(base, n, nb, {codes[0], codes[1]}, fx.issue_user, fx.issue_benefit,
                        fx.issue_predicted, fx.issue_label, {}, fx.issue_held);
  EXPECT_EQ(pooled.slope, file.pooled->slope);
  EXPECT_GT(pooled.slope, 0.0);
  std::vector<float> expected = pooled.probability;
  const std::vector<float>& pref = fx.file.preference.preferences();
  const auto nd = static_cast<std::size_t>(fx.file.preference.n_dimensions());
  const std::vector<std::string>& names = fx.file.preference.dimension_names();
  double max_lift = 0;
  for (Index u = 0; u < n; ++u) {
    std::vector<double> lift(static_cast<std::size_t>(nb));
    double mean = 0;
    for (Index b = 0; b < nb; ++b) {
      const std::string name = std::string("kind:") + to_string(fx.prog.catalog[b].kind);
      const auto d =
          static_cast<std::size_t>(std::find(names.begin(), names.end(), name) - names.begin());
      ASSERT_LT(d, nd);
      lift[static_cast<std::size_t>(b)] =
          std::log(static_cast<double>(pref[static_cast<std::size_t>(u) * nd + d]));
      mean += lift[static_cast<std::size_t>(b)];
    }
    mean /= static_cast<double>(nb);
    for (Index b = 0; b < nb; ++b) {
      float& p = expected[static_cast<std::size_t>(u * nb + b)];
      const double q = std::clamp(static_cast<double>(p), 1e-6, 1 - 1e-6);
      const double l = lift[static_cast<std::size_t>(b)] - mean;
      max_lift = std::max(max_lift, std::abs(l));
      p = static_cast<float>(1 / (1 + std::exp(-(std::log(q / (1 - q)) + 0.5 * l))));
    }
  }
  EXPECT_GT(max_lift, 0.05);  // the offset changes P
  const std::vector<float> got = bp.redemption_probability(fx.end);
  ASSERT_EQ(got.size(), expected.size());
  double max_diff = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    max_diff = std::max(max_diff, std::abs(static_cast<double>(got[i] - expected[i])));
  EXPECT_LT(max_diff, 1e-6);  // the lift's mean is summed in another order
  EXPECT_NE(got, plain.redemption_probability(fx.end));

  const SegmentAssignment segments = fx.file.preference.segments(SegmentRules::defaults());
  const CompiledPolicy compiled =
      bp.policy().compile(fx.prog.catalog, fx.prog.users, fx.end, &segments, &fx.prog.events, 2);
  std::vector<double> rate, validity_days;
  for (const auto& m : fx.file.preference.timing())
    rate.push_back(static_cast<double>(m.expected_purchases) /
                   fx.file.preference.params().horizon_days);
  for (const Benefit& b : fx.prog.catalog.benefits()) validity_days.push_back(b.validity_days);
  const std::vector<float> share = timing_share(rate, validity_days);
  PlanInputs in;
  in.redemption_probability = got;
  in.incremental_share = share;
  in.order_value = fx.file.order_value;
  in.preference = &fx.file.preference;
  const PlanResult by_hand = bp.planner().plan(compiled, fx.prog.catalog, fx.end, in);
  const BenefitPlanner::Plan plan = bp.plan(fx.end);
  ASSERT_GT(by_hand.member.size(), 0u);
  EXPECT_EQ(plan.result.member, by_hand.member);
  EXPECT_EQ(plan.result.benefit, by_hand.benefit);
  EXPECT_EQ(plan.result.probability, by_hand.probability);
  EXPECT_EQ(plan.result.reasons, by_hand.reasons);
}

TEST(BenefitPlanner, PooledAnswersEqualThePlansRowsForAnyThreadCount) {
  const Fixture& fx = fixture();
  BenefitPlannerFile file = test::pooled_file(0.5);
  file.config["policy"] = Json{{"max_per_member", 1}};
  const BenefitPlanner one(file, 1);
  BenefitPlanner four(file, 4);
  four.set_block_users(7);
  const std::vector<float> P = one.redemption_probability(fx.end);
  EXPECT_EQ(P, four.redemption_probability(fx.end));
  const auto a = one.plan(fx.end), b = four.plan(fx.end);
  EXPECT_EQ(a.result.benefit, b.result.benefit);
  EXPECT_EQ(a.result.probability, b.result.probability);
  const BenefitPlanner::State state = four.prepare(fx.end);
  const auto nb = static_cast<std::size_t>(one.n_benefits());
  std::size_t row = 0;
  for (Index u = 0; u < one.n_users(); ++u) {
    const UserAnswer ans = four.answer(state, u, fx.end, 20);
    ASSERT_TRUE(std::equal(ans.probability.begin(), ans.probability.end(),
                           P.begin() + static_cast<std::ptrdiff_t>(u * nb)))
        << "member " << u;
    if (row < a.result.member.size() && a.result.member[row] == u) {
      ASSERT_FALSE(ans.benefits.empty());
      const auto it =
          std::find_if(ans.benefits.begin(), ans.benefits.end(),
                       [&](const UserBenefit& m) { return m.benefit == a.result.benefit[row]; });
      ASSERT_NE(it, ans.benefits.end()) << "member " << u;
      EXPECT_EQ(it->probability, a.result.probability[row]);
      EXPECT_EQ(it->value, a.result.value[row]);
      ++row;
    }
  }
  EXPECT_EQ(row, a.result.member.size());
}

TEST(BenefitPlanner, PooledParamsWithoutTheStoredStepsAreAModelFormatError) {
  const Fixture& fx = fixture();
  BenefitPlannerFile f = fx.file;
  f.config["params"]["pooled"] = true;  // no stored effects
  EXPECT_THROW(BenefitPlanner{f}, ModelFormatError);
  f = fx.file;
  f.config["params"]["preference_offset"] = true;  // no stored weight
  EXPECT_THROW(BenefitPlanner{f}, ModelFormatError);
  f = test::pooled_file();
  f.config["params"]["pooled"] = false;  // effects stored but not asked for
  EXPECT_THROW(BenefitPlanner{f}, ModelFormatError);
  f = test::pooled_file();
  f.config["params"]["pooled"] = "yes";
  EXPECT_THROW(BenefitPlanner{f}, ModelFormatError);
  // An older file's params have neither key: it plans without the steps.
  ASSERT_FALSE(fx.file.config["params"].contains("pooled"));
  const BenefitPlanner old = BenefitPlanner::from_bytes(fx.file.to_bytes(), 1);
  EXPECT_FALSE(old.pooled());
  EXPECT_EQ(old.preference_weight(), 0.0);
}

/// With params.benefit_level: the plan's P is the P without it times each benefit's stored
/// factor (after the pooled effects), in plan and answer alike; the key and the factors must
/// come together.
TEST(BenefitPlanner, BenefitLevelsMultiplyThePlansPAndTheAnswersRows) {
  const Fixture& fx = fixture();
  BenefitPlannerFile file = test::pooled_file(0.5);
  const BenefitPlanner without(file, 1);
  const auto nb = static_cast<std::size_t>(without.n_benefits());
  for (std::size_t b = 0; b < nb; ++b) file.benefit_level.push_back(b % 3 == 0 ? 1.5 : 0.8);
  EXPECT_THROW(BenefitPlanner{file}, ModelFormatError);  // factors without the key
  file.config["params"]["benefit_level"] = true;
  const BenefitPlanner with(file, 2);
  EXPECT_TRUE(with.benefit_level());
  EXPECT_FALSE(without.benefit_level());
  const std::vector<float> P0 = without.redemption_probability(fx.end);
  const std::vector<float> P1 = with.redemption_probability(fx.end);
  ASSERT_EQ(P0.size(), P1.size());
  for (std::size_t i = 0; i < P0.size(); ++i) {
    const double want = std::min(static_cast<double>(P0[i]) * file.benefit_level[i % nb], 1 - 1e-6);
    ASSERT_EQ(P1[i], static_cast<float>(want)) << i;
  }
  const BenefitPlanner::State state = with.prepare(fx.end);
  for (Index u = 0; u < with.n_users(); u += 17) {
    const UserAnswer ans = with.answer(state, u, fx.end, 1);
    ASSERT_TRUE(std::equal(ans.probability.begin(), ans.probability.end(),
                           P1.begin() + static_cast<std::ptrdiff_t>(u * nb)))
        << "member " << u;
  }
  BenefitPlannerFile keyed = test::pooled_file(0.5);
  keyed.config["params"]["benefit_level"] = true;  // the key without factors
  EXPECT_THROW(BenefitPlanner{keyed}, ModelFormatError);
}

// A pilot wave's scope: the plan of some members with P times a level equals Planner::plan of
// the whole plan's P zeroed outside them and scaled; level 1 and every member is the plan.
TEST(BenefitPlanner, AScopePlansItsMembersWithPTimesTheLevel) {
  const Fixture& fx = fixture();
  const BenefitPlanner bp(fx.file, 2);
  const Index n = bp.n_users();
  const auto nb = static_cast<std::size_t>(bp.n_benefits());
  std::vector<std::uint8_t> flags(static_cast<std::size_t>(n));
  for (Index u = 0; u < n; ++u) flags[static_cast<std::size_t>(u)] = u % 3 == 0 ? 1 : 0;
  const double budget = 40, level = 1.3;
  const BenefitPlanner::Plan got = bp.plan(fx.end, budget, nullptr, nullptr, {flags, level});
  std::vector<float> P = bp.redemption_probability(fx.end);
  for (std::size_t i = 0; i < P.size(); ++i) {
    P[i] =
        flags[i / nb] ? static_cast<float>(std::min(static_cast<double>(P[i]) * level, 1.0)) : 0.0f;
  }
  PlanInputs in;
  in.redemption_probability = P;
  in.incremental_share_scorer = [&](Span<const Index> users, Span<const Index> benefits,
                                    Span<float> out) {
    for (std::size_t k = 0; k < users.size(); ++k)
      out[k] = bp.user_share(users[k])[static_cast<std::size_t>(benefits[k])];
  };
  in.order_value = fx.file.order_value;
  in.preference = &fx.file.preference;
  in.budget = budget;
  const PlanResult want = bp.planner().plan(got.compiled, fx.prog.catalog, fx.end, in);
  ASSERT_GT(want.member.size(), 0u);
  EXPECT_EQ(got.result.member, want.member);
  EXPECT_EQ(got.result.benefit, want.benefit);
  EXPECT_EQ(got.result.probability, want.probability);
  for (Index u : got.result.member) EXPECT_EQ(u % 3, 0) << u;
  double cost = 0;
  for (float c : got.result.cost) cost += c;
  EXPECT_LE(cost, budget + 1e-6);
  const std::vector<std::uint8_t> every(static_cast<std::size_t>(n), 1);
  EXPECT_EQ(bp.plan(fx.end, budget, nullptr, nullptr, {every, 1.0}).result.reasons,
            bp.plan(fx.end, budget).result.reasons);
  PERKREC_EXPECT_THROW_MSG(
      bp.plan(fx.end, budget, nullptr, nullptr, {Span<const std::uint8_t>(flags.data(), 3), 1.0}),
      InputError, "user_mask has 3 flags");
  std::vector<std::uint8_t> two = flags;
  two[5] = 2;
  PERKREC_EXPECT_THROW_MSG(bp.plan(fx.end, budget, nullptr, nullptr, {two, 1.0}), InputError,
                           "user_mask[5]");
  for (double bad : {0.0, -1.0, std::nan(""), HUGE_VAL}) {
    PERKREC_EXPECT_THROW_MSG(bp.plan(fx.end, budget, nullptr, nullptr, {{}, bad}), InputError,
                             "level");
  }
}

}  // namespace
}  // namespace perkrec
