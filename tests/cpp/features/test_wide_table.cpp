#include <algorithm>
#include <cmath>

#include "test_util.hpp"

namespace perkrec {
namespace {

using testing::day_time;
using testing::make_log;
using testing::Row;

Catalog two_benefits() {
  Benefit points;
  points.id = "P5";
  points.kind = BenefitKind::points;
  points.face_value = 5;
  points.channel = "app";
  points.scenarios = {"regular"};
  Benefit threshold;
  threshold.id = "T150";
  threshold.kind = BenefitKind::threshold_discount;
  threshold.threshold = 150;
  threshold.face_value = 20;
  threshold.channel = "sms";
  threshold.scenarios = {"member_day"};
  return Catalog({points, threshold});
}

double at(const WideTable& t, const std::string& column, Index u) {
  return t.column(column)[static_cast<std::size_t>(u)];
}

TEST(WideTable, KnownAnswerAndEventsAtTheCutAreExcluded) {
  const Catalog catalog = two_benefits();
  // Member 0: two benefits issued and claimed, both redeemed on one order (stacked), a second
  // order, and events exactly at the cut (day 10) that must not count. Member 1: only an event
  // at the cut.
  const EventLog log = make_log({{0, 0, EventType::issued, 0.0},
                                 {0, 0, EventType::viewed, 0.1},
                                 {0, 0, EventType::claimed, 0.2},
                                 {0, 1, EventType::issued, 1.0},
                                 {0, 1, EventType::claimed, 1.5},
                                 {0, 0, EventType::redeemed, 2.0, 50.0f},
                                 {0, 1, EventType::redeemed, 2.0, 50.0f},
                                 {0, -1, EventType::ordered, 2.0, 50.0f},
                                 {0, -1, EventType::ordered, 5.0, 30.0f},
                                 {0, -1, EventType::ordered, 10.0, 999.0f},
                                 {0, 0, EventType::issued, 10.0},
                                 {1, 0, EventType::issued, 10.0}},
                                2, 2);
  const WideTable t = wide_table(log, catalog, day_time(10.0), {});
  ASSERT_EQ(t.n_users, 2);
  for (const auto& c : t.columns) ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(at(t, "issued", 0), 2);
  EXPECT_EQ(at(t, "viewed", 0), 1);
  EXPECT_EQ(at(t, "claimed", 0), 2);
  EXPECT_EQ(at(t, "redeemed", 0), 2);
  EXPECT_EQ(at(t, "expired", 0), 0);
  EXPECT_EQ(at(t, "orders", 0), 2);
  EXPECT_DOUBLE_EQ(at(t, "claim_rate", 0), 1.0);
  EXPECT_DOUBLE_EQ(at(t, "redemption_rate", 0), 1.0);
  EXPECT_DOUBLE_EQ(at(t, "expiry_rate", 0), 0.0);
  EXPECT_DOUBLE_EQ(at(t, "view_rate", 0), 0.5);
  EXPECT_EQ(at(t, "issued:kind:points", 0), 1);
  EXPECT_DOUBLE_EQ(at(t, "claim_rate:kind:points", 0), 1.0);
  EXPECT_DOUBLE_EQ(at(t, "claim_rate:threshold:100-300", 0), 1.0);
  EXPECT_TRUE(std::isnan(at(t, "claim_rate:kind:gift", 0)));
  EXPECT_EQ(at(t, "issued:channel:sms", 0), 1);
  EXPECT_NEAR(at(t, "median_days_claim_to_redemption", 0), (1.8 + 0.5) / 2, 1e-9);
  EXPECT_DOUBLE_EQ(at(t, "stacked_order_share", 0), 0.5);
  EXPECT_NEAR(at(t, "recency_days", 0), 5.0, 1e-9);
  EXPECT_NEAR(at(t, "monetary", 0), 40.0, 1e-6);
  EXPECT_NEAR(at(t, "total_spend", 0), 80.0, 1e-6);
  EXPECT_EQ(at(t, "orders_30d", 0), 2);
  EXPECT_NEAR(at(t, "tenure_days", 0), 10.0, 1e-9);
  EXPECT_NEAR(at(t, "frequency", 0), 2.0 / 10.0 * 30.0, 1e-9);
  EXPECT_NEAR(at(t, "mean_interorder_days", 0), 3.0, 1e-9);
  EXPECT_TRUE(std::isnan(at(t, "cv_interorder", 0)));  // needs 3 orders
  EXPECT_DOUBLE_EQ(at(t, "points_earned", 0), 5.0);
  EXPECT_DOUBLE_EQ(at(t, "points_redeemed", 0), 5.0);
  EXPECT_EQ(at(t, "active_days_90d", 0), 4);  // days 0, 1, 2, 5
  // Member 1: only an event at the cut: an empty row.
  EXPECT_EQ(at(t, "issued", 1), 0);
  EXPECT_TRUE(std::isnan(at(t, "claim_rate", 1)));
  EXPECT_TRUE(std::isnan(at(t, "tenure_days", 1)));
  // One second later the cut events count.
  const WideTable later = wide_table(log, catalog, day_time(10.0) + 1, {});
  EXPECT_EQ(at(later, "issued", 0), 3);
  EXPECT_EQ(at(later, "orders", 0), 3);
  EXPECT_EQ(at(later, "issued", 1), 1);
}

TEST(WideTable, CutBeforeEveryEventGivesEmptyRows) {
  const EventLog log =
      make_log({{0, 0, EventType::issued, 3.0}, {1, 1, EventType::issued, 4.0}}, 2, 2);
  const WideTable t = wide_table(log, two_benefits(), day_time(0.0), {});
  for (Index u = 0; u < 2; ++u) {
    EXPECT_EQ(at(t, "issued", u), 0);
    EXPECT_EQ(at(t, "orders", u), 0);
    EXPECT_TRUE(std::isnan(at(t, "claim_rate", u)));
  }
  const WideTable empty = wide_table(EventLog(), Catalog(), 0, {});
  EXPECT_EQ(empty.n_users, 0);
  EXPECT_FALSE(empty.names.empty());
}

TEST(WideTable, RejectsBadInput) {
  const EventLog log = make_log({{0, 0, EventType::issued, 3.0}}, 1, 2);
  Catalog one;
  Benefit b;
  b.id = "x";
  one.add(b);
  PERKREC_EXPECT_THROW_MSG(wide_table(log, one, day_time(5.0), {}), InputError, "wide_table",
                           "1 benefits");
  PERKREC_EXPECT_THROW_MSG(wide_table(log, two_benefits(), day_time(5.0), WideTableParams{{}, -1}),
                           ConfigError, "num_threads");
  // Unknown members and NaN amounts never reach the table: the log rejects them.
  EXPECT_THROW(make_log({{5, 0, EventType::issued, 1.0}}, 2, 2), InputError);
  EXPECT_THROW(make_log({{0, -1, EventType::ordered, 1.0, std::nanf("")}}, 2, 2), InputError);
  EXPECT_THROW(wide_table(log, two_benefits(), day_time(5.0), {}).column("nope"), InputError);
}

TEST(WideTable, SameForAnyThreadCountAndInputOrder) {
  SimulatorParams sp;
  sp.n_users = 600;
  sp.days = 60;
  const SimulatedProgram prog = simulate(sp);
  const Timestamp cut = prog.truth.reference_time - 10 * kSecondsPerDay;
  WideTableParams one, two;
  one.num_threads = 1;
  two.num_threads = 2;
  const WideTable a = wide_table(prog.events, prog.catalog, cut, one);
  const WideTable b = wide_table(prog.events, prog.catalog, cut, two);
  ASSERT_EQ(a.names, b.names);
  for (std::size_t c = 0; c < a.columns.size(); ++c) {
    for (std::size_t u = 0; u < a.columns[c].size(); ++u) {
      const double x = a.columns[c][u], y = b.columns[c][u];
      ASSERT_TRUE((std::isnan(x) && std::isnan(y)) || x == y) << a.names[c];
    }
  }
  // Reversed input order: the log sorts, the table is the same.
  const EventLog& log = prog.events;
  std::vector<Index> users(log.users().begin(), log.users().end()),
      benefits(log.benefits().begin(), log.benefits().end());
  std::vector<std::uint8_t> types(log.types().begin(), log.types().end());
  std::vector<Timestamp> times(log.timestamps().begin(), log.timestamps().end());
  std::vector<float> amounts(log.order_amounts().begin(), log.order_amounts().end());
  std::vector<std::int16_t> channels(log.channels().begin(), log.channels().end());
  // Reverse whole members (ties within a member keep their order).
  std::vector<std::size_t> order;
  for (Index u = log.n_users() - 1; u >= 0; --u) {
    for (Offset e = log.user_begin(u); e < log.user_end(u); ++e)
      order.push_back(static_cast<std::size_t>(e));
  }
  auto permute = [&](auto& v) {
    auto copy = v;
    for (std::size_t i = 0; i < order.size(); ++i) v[i] = copy[order[i]];
  };
  permute(users), permute(benefits), permute(types), permute(times), permute(amounts),
      permute(channels);
  EventColumns c;
  c.user = users;
  c.benefit = benefits;
  c.type = types;
  c.timestamp = times;
  c.order_amount = amounts;
  c.channel = channels;
  const EventLog shuffled =
      EventLog::from_columns(c, log.n_users(), log.n_benefits(), log.channel_names());
  const WideTable s = wide_table(shuffled, prog.catalog, cut, one);
  for (std::size_t k = 0; k < a.columns.size(); ++k) {
    for (std::size_t u = 0; u < a.columns[k].size(); ++u) {
      const double x = a.columns[k][u], y = s.columns[k][u];
      ASSERT_TRUE((std::isnan(x) && std::isnan(y)) || x == y) << a.names[k];
    }
  }
}

}  // namespace
}  // namespace perkrec
