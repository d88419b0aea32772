#include <algorithm>
#include <cmath>

#include "test_util.hpp"

namespace perkrec {
namespace {

using testing::make_log;
using testing::Row;

TEST(EventLog, SortsByMemberThenTimeStably) {
  const EventLog log = make_log({{2, 0, EventType::claimed, 5},
                                 {0, 1, EventType::issued, 3},
                                 {2, 1, EventType::issued, 1},
                                 {0, 1, EventType::viewed, 3},  // same time: input order kept
                                 {0, -1, EventType::ordered, 1, 40.0f}});
  EXPECT_EQ(log.size(), 5);
  EXPECT_EQ(log.n_users(), 3);
  EXPECT_EQ(log.n_benefits(), 2);
  EXPECT_EQ(log.user_offsets(), (std::vector<Offset>{0, 3, 3, 5}));
  const std::vector<std::uint8_t> types(log.types().begin(), log.types().end());
  EXPECT_EQ(types, (std::vector<std::uint8_t>{5, 0, 1, 0, 2}));
  EXPECT_EQ(log.order_amounts()[0], 40.0f);
  EXPECT_EQ(log.benefits()[0], kNoBenefit);
  EXPECT_EQ(log.min_time(), testing::day_time(1));
  EXPECT_EQ(log.max_time(), testing::day_time(5));
  const auto counts = log.count_by_type();
  EXPECT_EQ(counts[0], 2);
  EXPECT_EQ(counts[5], 1);
  EXPECT_FALSE(log.has_propensity());
  EXPECT_EQ(log.channels()[0], -1);
}

TEST(EventLog, SameResultForAnyInputOrderAndThreadCount) {
  // Many members, shuffled input with timestamp ties: the sorted log must be identical.
  std::vector<Index> users, benefits;
  std::vector<std::uint8_t> types;
  std::vector<Timestamp> times;
  Rng rng(3);
  for (int i = 0; i < 300000; ++i) {
    users.push_back(static_cast<Index>(rng.below(5000)));
    benefits.push_back(static_cast<Index>(rng.below(40)));
    types.push_back(static_cast<std::uint8_t>(rng.below(5)));
    times.push_back(1000 + rng.below(200));
  }
  EventColumns c;
  c.user = users;
  c.benefit = benefits;
  c.type = types;
  c.timestamp = times;
  const EventLog one = EventLog::from_columns(c, 5000, 40, {}, 1);
  const EventLog two = EventLog::from_columns(c, 5000, 40, {}, 2);
  const EventLog three = EventLog::from_columns(c, -1, -1, {}, 3);
  for (const EventLog* other : {&two, &three}) {
    ASSERT_TRUE(std::equal(one.users().begin(), one.users().end(), other->users().begin()));
    ASSERT_TRUE(
        std::equal(one.timestamps().begin(), one.timestamps().end(), other->timestamps().begin()));
    ASSERT_TRUE(
        std::equal(one.benefits().begin(), one.benefits().end(), other->benefits().begin()));
    ASSERT_TRUE(std::equal(one.types().begin(), one.types().end(), other->types().begin()));
  }
  for (Index u = 0; u < one.n_users(); ++u) {
    for (Offset e = one.user_begin(u); e < one.user_end(u); ++e) {
      ASSERT_EQ(one.users()[static_cast<std::size_t>(e)], u);
      if (e > one.user_begin(u)) {
        ASSERT_LE(one.timestamps()[static_cast<std::size_t>(e) - 1],
                  one.timestamps()[static_cast<std::size_t>(e)]);
      }
    }
  }
  // Stability: among equal (member, time) the input order is kept. Re-feeding the sorted log
  // (a stable order of itself) must give it back unchanged.
  EventColumns sorted;
  sorted.user = one.users();
  sorted.benefit = one.benefits();
  sorted.type = one.types();
  sorted.timestamp = one.timestamps();
  const EventLog again = EventLog::from_columns(sorted, 5000, 40, {}, 2);
  EXPECT_TRUE(std::equal(again.benefits().begin(), again.benefits().end(), one.benefits().begin()));
}

struct BadRow {
  const char* what;
  Index user;
  Index benefit;
  std::uint8_t type;
  Timestamp time;
  float amount;
  float propensity;
  std::uint8_t control;
  std::int16_t channel;
  std::vector<std::string> fragments;
};

TEST(EventLog, EveryBadRowIsNamedWithItsValue) {
  const std::vector<BadRow> cases = {
      {"user", 7, 0, 0, 10, 0, 0.5f, 0, 0, {"row 2", "user out of range", "got 7"}},
      {"negative user", -1, 0, 0, 10, 0, 0.5f, 0, 0, {"row 2", "got -1"}},
      {"benefit", 0, 9, 0, 10, 0, 0.5f, 0, 0, {"row 2", "benefit out of range", "got 9"}},
      {"no benefit", 0, -1, 2, 10, 0, 0.5f, 0, 0, {"row 2", "only 'ordered'", "claimed"}},
      {"type", 0, 0, 6, 10, 0, 0.5f, 0, 0, {"row 2", "event type", "got 6"}},
      {"time", 0, 0, 0, -5, 0, 0.5f, 0, 0, {"row 2", "negative timestamp", "-5"}},
      {"amount", 0, 0, 5, 10, std::nanf(""), 0.5f, 0, 0, {"row 2", "order_amount", "nan"}},
      {"negative amount", 0, 0, 5, 10, -1.0f, 0.5f, 0, 0, {"row 2", "order_amount", "-1"}},
      {"propensity", 0, 0, 0, 10, 0, 0.0f, 0, 0, {"row 2", "propensity", "(0, 1]"}},
      {"propensity>1", 0, 0, 0, 10, 0, 1.5f, 0, 0, {"row 2", "propensity", "1.5"}},
      {"control", 0, 0, 0, 10, 0, 0.5f, 2, 0, {"row 2", "control", "got 2"}},
      {"channel", 0, 0, 0, 10, 0, 0.5f, 0, 3, {"row 2", "channel code", "got 3"}},
  };
  for (const BadRow& bad : cases) {
    SCOPED_TRACE(bad.what);
    std::vector<Index> users = {0, 1, bad.user, 1};
    std::vector<Index> benefits = {0, 1, bad.benefit, 0};
    std::vector<std::uint8_t> types = {0, 0, bad.type, 5};
    std::vector<Timestamp> times = {1, 2, bad.time, 3};
    std::vector<float> amounts = {0, 0, bad.amount, 9};
    std::vector<float> propensity = {1, 1, bad.propensity, 1};
    std::vector<std::uint8_t> control = {0, 0, bad.control, 0};
    std::vector<std::int16_t> channel = {0, 1, bad.channel, -1};
    EventColumns c;
    c.user = users;
    c.benefit = benefits;
    c.type = types;
    c.timestamp = times;
    c.order_amount = amounts;
    c.propensity = propensity;
    c.control = control;
    c.channel = channel;
    try {
      EventLog::from_columns(c, 2, 2, {"app", "sms", "email"});
      ADD_FAILURE() << "accepted";
    } catch (const InputError& e) {
      for (const auto& f : bad.fragments) {
        EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what() << " lacks " << f;
      }
    }
  }
}

TEST(EventLog, MismatchedColumnLengthsAreRejected) {
  std::vector<Index> users = {0, 1};
  std::vector<Index> benefits = {0};
  std::vector<std::uint8_t> types = {0, 0};
  std::vector<Timestamp> times = {1, 2};
  EventColumns c;
  c.user = users;
  c.benefit = benefits;
  c.type = types;
  c.timestamp = times;
  PERKREC_EXPECT_THROW_MSG(EventLog::from_columns(c), InputError, "'benefit'", "1 rows",
                           "expected 2");
  benefits.push_back(0);
  c.benefit = benefits;
  std::vector<float> amounts = {1};
  c.order_amount = amounts;
  PERKREC_EXPECT_THROW_MSG(EventLog::from_columns(c), InputError, "'order_amount'", "or none");
}

TEST(EventLog, FilterKeepsShapeIdsAndOrder) {
  EventLog log = make_log({{0, 0, EventType::issued, 1},
                           {0, 1, EventType::claimed, 2},
                           {1, 1, EventType::redeemed, 3},
                           {2, 0, EventType::viewed, 4}});
  log.set_ids(IdMap::from_strings({"a", "b", "c"}), IdMap::from_strings({"B1", "B2"}));
  const std::vector<std::uint8_t> keep = {1, 0, 1, 0};
  const EventLog kept = log.filter(keep);
  EXPECT_EQ(kept.size(), 2);
  EXPECT_EQ(kept.n_users(), 3);
  EXPECT_EQ(kept.user_offsets(), (std::vector<Offset>{0, 1, 2, 2}));
  EXPECT_EQ(kept.user_ids().string_at(2), "c");
  EXPECT_THROW(log.filter(std::vector<std::uint8_t>{1}), InputError);
  PERKREC_EXPECT_THROW_MSG(log.set_ids(IdMap::range(2), IdMap()), InputError, "holds 2 ids",
                           "expected 3");
}

TEST(EventLog, SavesAndLoadsWithOptionalColumnsAndIds) {
  const SimulatedProgram p = [] {
    SimulatorParams params;
    params.n_users = 300;
    return simulate(params);
  }();
  const EventLog back = EventLog::from_bytes(p.events.to_bytes());
  EXPECT_EQ(back.size(), p.events.size());
  EXPECT_TRUE(back.has_propensity());
  EXPECT_TRUE(back.has_control());
  EXPECT_EQ(back.channel_names(), p.events.channel_names());
  EXPECT_TRUE(std::equal(back.propensities().begin(), back.propensities().end(),
                         p.events.propensities().begin()));
  EXPECT_EQ(back.benefit_ids(), p.events.benefit_ids());
  EXPECT_EQ(back.user_offsets(), p.events.user_offsets());
}

TEST(EventType, NamesRoundTrip) {
  for (int t = 0; t < kNumEventTypes; ++t) {
    EXPECT_EQ(parse_event_type(to_string(static_cast<EventType>(t)), "x"),
              static_cast<EventType>(t));
  }
  PERKREC_EXPECT_THROW_MSG(parse_event_type("bought", "ctx"), InputError, "ctx", "'bought'");
}

}  // namespace
}  // namespace perkrec
