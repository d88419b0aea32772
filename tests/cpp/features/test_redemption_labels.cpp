// Redemption labels of logged issues (features/redemption_labels.hpp).
#include <cmath>
#include <limits>
#include <vector>

#include "test_util.hpp"

namespace perkrec {
namespace {

using testing::make_log;
using testing::Row;

constexpr Timestamp kDay = 86400;

struct Events {
  std::vector<Index> user, benefit;
  std::vector<std::uint8_t> type;
  std::vector<Timestamp> time;
  void add(Index u, Index b, EventType t, Timestamp s) {
    user.push_back(u);
    benefit.push_back(b);
    type.push_back(static_cast<std::uint8_t>(t));
    time.push_back(s);
  }
  RedemptionLabels label(const std::vector<double>& windows) const {
    return redemption_labels(user, benefit, type, time, windows);
  }
};

TEST(RedemptionLabels, HandBuiltIssuesHaveTheKnownLabels) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Events e;  // windows: benefit 0 two days, benefit 1 five days, benefit 2 unknown
  e.add(0, 0, EventType::issued, 100);               // 0: redeemed a day later -> 1
  e.add(0, 0, EventType::redeemed, 100 + kDay);      // 1
  e.add(1, 0, EventType::issued, 200);               // 2: redeemed after 3 days -> late
  e.add(1, 0, EventType::redeemed, 200 + 3 * kDay);  // 3
  e.add(2, 1, EventType::issued, 300);               // 4: never redeemed, window over -> 0
  e.add(3, 1, EventType::redeemed, 999);             // 5: before the issue below: not counted
  e.add(3, 1, EventType::issued, 1000);              // 6: -> 0
  e.add(4, 2, EventType::issued, 10);                // 7: unknown window, redeemed -> 1
  e.add(4, 2, EventType::redeemed, 900'000);         // 8
  e.add(5, 2, EventType::issued, 20);                // 9: unknown window, never open -> 0
  e.add(7, 0, EventType::redeemed, 500);             // 10: the same second as the issue -> 1
  e.add(7, 0, EventType::issued, 500);               // 11
  e.add(8, 1, EventType::issued, 900'000);           // 12: window runs past the end -> open
  e.add(0, -1, EventType::ordered, 1'000'000);       // 13: the last event
  e.add(9, -1, EventType::issued, 50);               // 14: no benefit: not an issue
  const RedemptionLabels r = e.label({2.0, 5.0, nan});
  EXPECT_EQ(r.event, (std::vector<Offset>{0, 2, 4, 6, 7, 9, 11, 12}));
  EXPECT_EQ(r.label, (std::vector<std::uint8_t>{1, 0, 0, 0, 1, 0, 1, 0}));
  EXPECT_EQ(r.late, (std::vector<std::uint8_t>{0, 1, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(r.open, (std::vector<std::uint8_t>{0, 0, 0, 0, 0, 0, 0, 1}));
  EXPECT_EQ(r.last_time, 1'000'000);
  // A window given beyond window_days is unknown too; inf counts any later redemption.
  const RedemptionLabels any = e.label({std::numeric_limits<double>::infinity(), 5.0});
  EXPECT_EQ(any.label, (std::vector<std::uint8_t>{1, 1, 0, 0, 1, 0, 1, 0}));
  EXPECT_EQ(any.late, (std::vector<std::uint8_t>(8, 0)));
}

TEST(RedemptionLabels, TheFirstRedemptionAtOrAfterEachIssueDecides) {
  Events e;  // two issues of one pair; one redemption 5 days + 10 s after the first
  e.add(6, 0, EventType::issued, 0);
  e.add(6, 0, EventType::issued, 5 * kDay);
  e.add(6, 0, EventType::redeemed, 5 * kDay + 10);
  e.add(6, 0, EventType::redeemed, 6 * kDay);
  const RedemptionLabels r = e.label({2.0});
  EXPECT_EQ(r.label, (std::vector<std::uint8_t>{0, 1}));
  EXPECT_EQ(r.late, (std::vector<std::uint8_t>{1, 0}));
  // Exactly the window is inside it; one second more is not.
  Events edge;
  edge.add(0, 0, EventType::issued, 0);
  edge.add(0, 0, EventType::redeemed, 2 * kDay);
  edge.add(1, 0, EventType::issued, 0);
  edge.add(1, 0, EventType::redeemed, 2 * kDay + 1);
  EXPECT_EQ(edge.label({2.0}).label, (std::vector<std::uint8_t>{1, 0}));
}

TEST(RedemptionLabels, EventLogOverloadMatchesTheColumns) {
  const EventLog log = make_log({{0, 0, EventType::issued, 0.0},
                                 {0, 0, EventType::redeemed, 1.5},
                                 {1, 1, EventType::issued, 0.5},
                                 {1, 1, EventType::redeemed, 9.0},
                                 {1, 0, EventType::issued, 8.0},
                                 {2, -1, EventType::ordered, 9.5, 20.0f}});
  const std::vector<double> windows{2.0, 3.0};
  const RedemptionLabels a = redemption_labels(log, windows);
  const RedemptionLabels b =
      redemption_labels(log.users(), log.benefits(), log.types(), log.timestamps(), windows);
  EXPECT_EQ(a.event, b.event);
  EXPECT_EQ(a.label, b.label);
  ASSERT_EQ(a.event.size(), 3u);
  for (std::size_t i = 0; i < a.event.size(); ++i) {
    const auto e = static_cast<std::size_t>(a.event[i]);
    EXPECT_EQ(log.type(a.event[i]), EventType::issued);
    if (log.users()[e] == 0) {  // 1.5 days <= 2
      EXPECT_EQ(a.label[i], 1);
    }
    if (log.users()[e] == 1 && log.benefits()[e] == 1) {  // 8.5 > 3
      EXPECT_EQ(a.late[i], 1);
    }
    if (log.users()[e] == 1 && log.benefits()[e] == 0) {  // 8 + 2 > 9.5
      EXPECT_EQ(a.open[i], 1);
    }
  }
}

TEST(RedemptionLabels, RejectsBadInputBeforeWork) {
  Events e;
  e.add(0, 0, EventType::issued, 0);
  PERKREC_EXPECT_THROW_MSG(e.label({0.0}), InputError, "window_days[0]", "> 0 or NaN");
  PERKREC_EXPECT_THROW_MSG(e.label({-std::numeric_limits<double>::infinity()}), InputError,
                           "window_days[0]");
  std::vector<Timestamp> short_times;
  PERKREC_EXPECT_THROW_MSG(
      redemption_labels(e.user, e.benefit, e.type, short_times, std::vector<double>{1.0}),
      InputError, "expected the same");
  EXPECT_TRUE(redemption_labels({}, {}, {}, {}, {}).event.empty());
}

}  // namespace
}  // namespace perkrec
