// BenefitPlanner with what members buy and browse (decide/benefit_planner.hpp): the stored
// behaviour part feeds the encoder's behaviour field strictly before the plan time, survives a
// save/load, and the reasons name the member's matching behaviour with exact counts.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "decide/benefit_planner_fixture.hpp"
#include "test_util.hpp"

namespace perkrec {
namespace {

using test::behavior_fixture;

/// The log of `base` plus, for each member of `members`, a purchase of item `item` at each of
/// `times` (amount 3).
BehaviorLog with_extra_purchases(const BehaviorLog& base, const std::vector<Index>& members,
                                 Index item, const std::vector<Timestamp>& times) {
  test::BehaviorRows rows = test::BehaviorRows::of(base);
  for (Index u : members) {
    for (Timestamp t : times) rows.add(u, item, t, base.find_action("purchase"), 1.0, 3.0);
  }
  return rows.build(base);
}

void expect_same_plan(const BenefitPlanner::Plan& a, const BenefitPlanner::Plan& b) {
  EXPECT_EQ(a.result.member, b.result.member);
  EXPECT_EQ(a.result.benefit, b.result.benefit);
  EXPECT_EQ(a.result.probability, b.result.probability);
  EXPECT_EQ(a.result.send_at, b.result.send_at);
  EXPECT_EQ(a.result.reasons, b.result.reasons);
}

TEST(BenefitPlannerBehavior, SaveLoadGivesIdenticalPlansAndTheBehaviourMatters) {
  const auto& fx = behavior_fixture();
  const BenefitPlanner bp(fx.file);
  const BenefitPlanner::Plan plan = bp.plan(fx.end);
  ASSERT_GT(plan.result.member.size(), 0u);
  const BenefitPlanner loaded = BenefitPlanner::from_bytes(fx.file.to_bytes());
  ASSERT_TRUE(loaded.file().behavior.has_value());
  EXPECT_TRUE(loaded.file().behavior->items == fx.prog.items);
  EXPECT_EQ(loaded.file().behavior->log.size(), fx.prog.behavior.size());
  EXPECT_EQ(loaded.file().behavior->benefit_items.indices(), fx.prog.benefit_items.indices());
  expect_same_plan(loaded.plan(fx.end), plan);
  // Thread counts and block sizes do not change it (behaviour features per block of members).
  BenefitPlanner serial(fx.file, 1);
  serial.set_block_users(37);
  expect_same_plan(serial.plan(fx.end), plan);
  // Without any behaviour the behaviour features differ, and so does P.
  BenefitPlannerFile empty = fx.file;
  BehaviorColumns none;
  BehaviorOptions o;
  o.n_users = fx.prog.behavior.n_users();
  o.n_items = fx.prog.behavior.n_items();
  o.action_names = fx.prog.behavior.action_names();
  empty.behavior->log = BehaviorLog::from_columns(none, o);
  EXPECT_NE(BenefitPlanner(std::move(empty)).redemption_probability(fx.end),
            bp.redemption_probability(fx.end));
}

TEST(BenefitPlannerBehavior, EventsAtOrAfterThePlanTimeNeverChangeP) {
  const auto& fx = behavior_fixture();
  const BenefitPlanner bp(fx.file, 2);
  const Timestamp at = fx.end - 3 * 86400;
  const std::vector<float> P = bp.redemption_probability(at);
  const Index item = fx.prog.benefit_items.items(0)[0];
  std::vector<Index> members;
  for (Index u = 0; u < 40; ++u) members.push_back(u);
  const BehaviorLog later_log =
      with_extra_purchases(fx.prog.behavior, members, item, {at, at + 1, at + 86400});
  BenefitPlannerFile later = fx.file;
  later.behavior->log = later_log;
  EXPECT_EQ(BenefitPlanner(std::move(later), 2).redemption_probability(at), P);
  // The same log given at plan time (a newer log without refitting) reads the same.
  EXPECT_EQ(bp.redemption_probability(at, nullptr, nullptr, &later_log), P);
  PERKREC_EXPECT_THROW_MSG(
      BenefitPlanner(test::fixture().file).plan(at, std::nan(""), nullptr, &later_log), InputError,
      "behavior", "holds no behaviour");
  // The same purchases a second earlier are seen (so the check above can fail).
  BenefitPlannerFile earlier = fx.file;
  earlier.behavior->log = with_extra_purchases(fx.prog.behavior, members, item, {at - 1});
  EXPECT_NE(BenefitPlanner(std::move(earlier), 2).redemption_probability(at), P);
}

TEST(BenefitPlannerBehavior, ReasonsCountTheMembersPurchasesOfTheBenefitsItems) {
  const auto& fx = behavior_fixture();
  const BenefitPlanner bp(fx.file);
  const BenefitPlanner::Plan plan = bp.plan(fx.end);
  const BehaviorLog& log = fx.prog.behavior;
  const int purchase = log.find_action("purchase");
  int matched = 0;
  for (std::size_t i = 0; i < plan.result.member.size(); ++i) {
    const Index u = plan.result.member[i], b = plan.result.benefit[i];
    const Json why = Json::parse(plan.result.reasons[i]);
    ASSERT_TRUE(why.contains("behavior"));
    const auto its = fx.prog.benefit_items.items(b);
    int expected = 0;
    for (Offset e = log.before(u, fx.end - 56 * 86400); e < log.before(u, fx.end); ++e) {
      const auto ee = static_cast<std::size_t>(e);
      expected += log.actions()[ee] == purchase &&
                  std::binary_search(its.begin(), its.end(), log.items()[ee]);
    }
    int got = 0;
    for (const Json& entry : why["behavior"]) {
      if (entry["action"] == "purchase" && entry["scope"] == "items") got = entry["count"];
    }
    EXPECT_EQ(got, expected) << "row " << i;
    matched += expected > 0;
  }
  EXPECT_GT(matched, 0);
  // One member's answer names the same behaviour as the plan's row.
  const BenefitPlanner::State state = bp.prepare(fx.end);
  const Index u = plan.result.member[0];
  const UserAnswer a = bp.answer(state, u, fx.end, 50);
  for (const UserBenefit& ub : a.benefits) {
    if (ub.benefit != plan.result.benefit[0]) continue;
    EXPECT_EQ(Json::parse(ub.reasons)["behavior"], Json::parse(plan.result.reasons[0])["behavior"]);
  }
}

TEST(BenefitPlannerBehavior, ABehaviourFieldWithoutTheBehaviourPartIsAModelFormatError) {
  const auto& fx = behavior_fixture();
  BenefitPlannerFile f = fx.file;
  f.behavior.reset();
  try {
    BenefitPlanner bp(std::move(f));
    FAIL() << "expected ModelFormatError";
  } catch (const ModelFormatError& e) {
    EXPECT_EQ(e.code(), ModelFormatCode::invalid_content);
    EXPECT_NE(std::string(e.what()).find("behaviour field 'behavior'"), std::string::npos)
        << e.what();
  }
  // A file without a behaviour field loads with or without the part (it is only read by the
  // reasons then).
  EXPECT_NO_THROW(BenefitPlanner(test::fixture().file));
}

TEST(BenefitPlannerBehavior, InconsistentBehaviourIsRefusedBeforeSaving) {
  const auto& fx = behavior_fixture();
  BenefitPlannerFile f = fx.file;
  const std::vector<Index> b{0}, i{0};
  f.behavior->benefit_items =
      BenefitItems::from_pairs(b, i, fx.prog.catalog.size() + 1, fx.prog.items.size());
  PERKREC_EXPECT_THROW_MSG(f.validate(), InputError, "benefit_items");
  EXPECT_THROW(f.to_bytes(), InputError);
}

}  // namespace
}  // namespace perkrec
