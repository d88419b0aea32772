// The behaviour part of the reasons (decide/explain.hpp): exact counts on a hand-built case,
// strictly before the decision time and within the window, and bad inputs refused.
#include <string>
#include <vector>

#include "test_util.hpp"

namespace perkrec {
namespace {

constexpr Timestamp kDay = 86400;
constexpr Timestamp kT = 1'700'000'000;  // the decision time

struct World {
  ItemCatalog items{IdMap::range(5)};
  BenefitItems benefit_items;
  BehaviorLog log;
  Catalog catalog;
  World() {
    // Items 0, 1: frozen; 2, 3: dairy; 4: no category. Brands: A A B B A.
    items.add_level("category", std::vector<std::string>{"frozen", "frozen", "dairy", "dairy", ""});
    items.add_level("brand", std::vector<std::string>{"A", "A", "B", "B", "A"});
    // Benefit 0 applies to item 0; benefit 1 to nothing; benefit 2 to item 3.
    const std::vector<Index> b{0, 2}, i{0, 3};
    benefit_items = BenefitItems::from_pairs(b, i, 3, 5);
    // Member 0: purchases of item 0 at T-10d (4.0), T-20d (6.0), T-70d (outside the 8 weeks),
    // at T (not before T); views of item 1 at T-1d twice; a purchase of item 2 (dairy, B).
    // Member 1: nothing.
    const std::vector<Index> user{0, 0, 0, 0, 0, 0, 0};
    const std::vector<Index> item{0, 0, 0, 0, 1, 1, 2};
    const std::vector<Timestamp> time{kT - 10 * kDay, kT - 20 * kDay, kT - 70 * kDay, kT,
                                      kT - kDay,      kT - kDay,      kT - 5 * kDay};
    const std::vector<std::int32_t> action{0, 0, 0, 0, 1, 1, 0};
    const std::vector<double> amount{4.0, 6.0, 1.0, 1.0, 0.0, 0.0, 2.5};
    BehaviorColumns c;
    c.user = user;
    c.item = item;
    c.timestamp = time;
    c.action = action;
    c.amount = amount;
    BehaviorOptions o;
    o.n_users = 2;
    o.n_items = 5;
    o.action_names = {"purchase", "view"};
    log = BehaviorLog::from_columns(c, o);
    for (int k = 0; k < 3; ++k) {
      Benefit x;
      x.id = "b" + std::to_string(k);
      catalog.add(x);
    }
  }
  ExplanationContext context() const {
    ExplanationContext ctx = ExplanationContext::make(nullptr, catalog);
    ctx.set_behavior(BehaviorEvidence{&log, &items, &benefit_items});
    return ctx;
  }
};

Json behavior_of(const ExplanationContext& ctx, Index member, Index benefit, Timestamp t) {
  ExplanationRow row;
  row.member = member;
  row.benefit = benefit;
  row.time = t;
  return Json::parse(explain_text(ctx, row)).at("behavior");
}

TEST(ExplainBehavior, CountsTheMembersMatchingEventsOfTheWindowBeforeTheTime) {
  const World w;
  const ExplanationContext ctx = w.context();
  const Json got = behavior_of(ctx, 0, 0, kT);
  const Json expected = Json::parse(R"([
    {"action": "purchase", "scope": "items", "count": 2, "spend": 10, "days": 56,
     "text": "bought items of this benefit 2 times in the last 8 weeks"},
    {"action": "purchase", "scope": "category", "count": 2, "spend": 10, "days": 56,
     "text": "bought its category 2 times in the last 8 weeks"},
    {"action": "purchase", "scope": "brand", "count": 2, "spend": 10, "days": 56,
     "text": "bought its brand 2 times in the last 8 weeks"},
    {"action": "view", "scope": "category", "count": 2, "spend": 0, "days": 56,
     "text": "viewed its category 2 times in the last 8 weeks"},
    {"action": "view", "scope": "brand", "count": 2, "spend": 0, "days": 56,
     "text": "viewed its brand 2 times in the last 8 weeks"}])");
  EXPECT_EQ(got, expected) << got.dump();
  // Benefit 2 (item 3: dairy, brand B): the one dairy purchase, once.
  const Json dairy = behavior_of(ctx, 0, 2, kT);
  ASSERT_EQ(dairy.size(), 2u) << dairy.dump();
  EXPECT_EQ(dairy[0]["scope"], "category");
  EXPECT_EQ(dairy[0]["text"], "bought its category once in the last 8 weeks");
  EXPECT_EQ(dairy[0]["spend"], 2.5);
  EXPECT_EQ(dairy[1]["scope"], "brand");
  // A benefit without items, a member without events, a row without a time: nothing.
  EXPECT_EQ(behavior_of(ctx, 0, 1, kT), Json::array());
  EXPECT_EQ(behavior_of(ctx, 1, 0, kT), Json::array());
  EXPECT_EQ(behavior_of(ctx, 0, 0, kNoTime), Json::array());
  // One second later the purchase at T counts; 15 days earlier the T-10d one does not, while
  // the T-70d one (55 days before) does.
  EXPECT_EQ(behavior_of(ctx, 0, 0, kT + 1)[0]["count"], 3);
  EXPECT_EQ(behavior_of(ctx, 0, 0, kT - 15 * kDay)[0]["count"], 2);
  EXPECT_EQ(behavior_of(ctx, 0, 0, kT - 15 * kDay)[0]["spend"], 7);
}

TEST(ExplainBehavior, TheWindowAndTheBatchFormAgree) {
  const World w;
  ExplanationContext ctx = ExplanationContext::make(nullptr, w.catalog);
  ctx.set_behavior(BehaviorEvidence{&w.log, &w.items, &w.benefit_items, 100});
  const Json got = behavior_of(ctx, 0, 0, kT);
  EXPECT_EQ(got[0]["count"], 3);  // the T-70d purchase is within 100 days
  EXPECT_EQ(got[0]["text"], "bought items of this benefit 3 times in the last 100 days");
  const std::vector<Index> members{0, 1}, benefits{0, 0};
  ExplanationBatch batch;
  batch.members = members;
  batch.benefits = benefits;
  batch.time = kT;
  const std::vector<std::string> texts = explain_batch(ctx, batch, 2);
  EXPECT_EQ(Json::parse(texts[0])["behavior"], got);
  EXPECT_EQ(Json::parse(texts[1])["behavior"], Json::array());
  // Without behaviour the key is absent (reasons as before).
  ExplanationRow row;
  EXPECT_FALSE(Json::parse(explain_text(ExplanationContext::make(nullptr, w.catalog), row))
                   .contains("behavior"));
}

TEST(ExplainBehavior, InconsistentBehaviourIsAnInputErrorAndChangesNothing) {
  const World w;
  ExplanationContext ctx = ExplanationContext::make(nullptr, w.catalog);
  const BenefitItems other =
      BenefitItems::from_pairs(std::vector<Index>{0}, std::vector<Index>{0}, 3, 6);
  PERKREC_EXPECT_THROW_MSG(ctx.set_behavior(BehaviorEvidence{&w.log, &w.items, &other}), InputError,
                           "items");
  const BenefitItems fewer =
      BenefitItems::from_pairs(std::vector<Index>{0}, std::vector<Index>{0}, 2, 5);
  PERKREC_EXPECT_THROW_MSG(ctx.set_behavior(BehaviorEvidence{&w.log, &w.items, &fewer}), InputError,
                           "benefits");
  PERKREC_EXPECT_THROW_MSG(
      ctx.set_behavior(BehaviorEvidence{&w.log, &w.items, &w.benefit_items, 0}), InputError,
      "window_days");
  EXPECT_FALSE(ctx.behavior.complete());
}

}  // namespace
}  // namespace perkrec
