#include <map>
#include <set>

#include "test_util.hpp"

namespace perkrec {
namespace {

const SimulatedProgram& program() {
  static const SimulatedProgram p = [] {
    SimulatorParams params;
    params.n_users = 1500;
    params.seed = 11;
    return simulate(params);
  }();
  return p;
}

// For every member, each train event is strictly earlier than each test event.
void expect_no_future_in_train(const Split& s) {
  const Index n = s.train.n_users();
  for (Index u = 0; u < n; ++u) {
    if (s.train.user_end(u) == s.train.user_begin(u) || s.test.user_end(u) == s.test.user_begin(u))
      continue;
    const Timestamp last_train =
        s.train.timestamps()[static_cast<std::size_t>(s.train.user_end(u) - 1)];
    const Timestamp first_test =
        s.test.timestamps()[static_cast<std::size_t>(s.test.user_begin(u))];
    ASSERT_LT(last_train, first_test) << "member " << u;
  }
}

TEST(Split, ByTimeCutsEveryMemberAtTheSameInstant) {
  const EventLog& log = program().events;
  const Timestamp cut = log.min_time() + (log.max_time() - log.min_time()) * 2 / 3;
  const Split s = split_by_time(log, cut);
  EXPECT_EQ(s.train.size() + s.test.size(), log.size());
  EXPECT_LT(s.train.max_time(), cut);
  EXPECT_GE(s.test.min_time(), cut);
  expect_no_future_in_train(s);
  EXPECT_EQ(s.train.n_users(), log.n_users());
  EXPECT_EQ(s.test.benefit_ids(), log.benefit_ids());
}

TEST(Split, LeaveLastKHoldsOutExactlyTheLastTargetsPerMember) {
  const EventLog& log = program().events;
  const std::uint32_t targets = event_mask({EventType::claimed, EventType::redeemed});
  const Split s = split_leave_last_k(log, 2, targets);
  EXPECT_EQ(s.train.size() + s.test.size(), log.size());
  expect_no_future_in_train(s);
  for (Index u = 0; u < log.n_users(); ++u) {
    int total = 0, in_test = 0;
    for (Offset e = log.user_begin(u); e < log.user_end(u); ++e) {
      total += (targets >> log.types()[static_cast<std::size_t>(e)]) & 1u;
    }
    for (Offset e = s.test.user_begin(u); e < s.test.user_end(u); ++e) {
      in_test += (targets >> s.test.types()[static_cast<std::size_t>(e)]) & 1u;
    }
    if (total <= 2) {
      EXPECT_EQ(s.test.user_end(u), s.test.user_begin(u)) << u;  // stays wholly in train
    } else {
      EXPECT_GE(in_test, 2) << u;  // ties at the cut may add more
      EXPECT_LT(in_test, total) << u;
    }
  }
  EXPECT_THROW(split_leave_last_k(log, 0), InputError);
  EXPECT_THROW(split_leave_last_k(log, 1, 0), InputError);
}

TEST(Split, LeaveLastKSendsTiesAtTheCutToTest) {
  using testing::Row;
  const EventLog log = testing::make_log({{0, 0, EventType::claimed, 1},
                                          {0, 1, EventType::claimed, 2},
                                          {0, 2, EventType::viewed, 2},
                                          {0, 2, EventType::claimed, 3}});
  const Split s = split_leave_last_k(log, 1, event_mask({EventType::claimed}));
  EXPECT_EQ(s.train.size(), 3);
  EXPECT_EQ(s.test.size(), 1);
  const Split two = split_leave_last_k(log, 2, event_mask({EventType::claimed}));
  EXPECT_EQ(two.train.size(), 1);  // the view at day 2 ties with the cut and goes to test
  EXPECT_EQ(two.test.size(), 3);
}

TEST(Split, RandomUsersIsAMemberHoldoutIndependentOfThreads) {
  const EventLog& log = program().events;
  const Split a = split_random_users(log, 0.3, 5, 1);
  const Split b = split_random_users(log, 0.3, 5, 2);
  EXPECT_EQ(a.test.user_offsets(), b.test.user_offsets());
  int test_members = 0;
  for (Index u = 0; u < log.n_users(); ++u) {
    const bool in_test = a.test.user_end(u) > a.test.user_begin(u);
    const bool in_train = a.train.user_end(u) > a.train.user_begin(u);
    EXPECT_FALSE(in_test && in_train) << u;
    test_members += in_test;
  }
  EXPECT_NEAR(test_members / 1500.0, 0.3, 0.05);
  EXPECT_THROW(split_random_users(log, 1.5), InputError);
  EXPECT_THROW(split_random_users(log, std::nan("")), InputError);
}

}  // namespace
}  // namespace perkrec
