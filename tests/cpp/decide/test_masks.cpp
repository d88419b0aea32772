#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "perkrec/decide/types.hpp"
#include "test_util.hpp"

namespace perkrec {
namespace {

TEST(EligibilityMasks, FromDenseSharesOneMaskPerDistinctRowAndRoundTrips) {
  // 5 members x 3 benefits; rows 0 and 3 equal, row 2 all eligible (mask 0).
  const std::vector<std::uint8_t> dense = {1, 0, 1,  //
                                           0, 0, 1,  //
                                           1, 1, 1,  //
                                           1, 0, 1,  //
                                           0, 0, 0};
  const EligibilityMasks m = EligibilityMasks::from_dense(dense, 5, 3);
  EXPECT_EQ(m.n_masks(), 4);  // all-eligible + three distinct rows
  EXPECT_EQ(m.user_masks(), (std::vector<std::int32_t>{1, 2, 0, 1, 3}));
  EXPECT_EQ(m.dense(), dense);
  // An excluded pair names rule 0; an eligible one -1.
  EXPECT_EQ(m.user_rule(0, 1), 0);
  EXPECT_EQ(m.user_rule(0, 0), -1);
  EXPECT_EQ(m.user_rule(4, 2), 0);
  // Any non-zero byte is eligible.
  const std::vector<std::uint8_t> bytes = {7, 0, 255};
  EXPECT_EQ(EligibilityMasks::from_dense(bytes, 1, 3).dense(),
            (std::vector<std::uint8_t>{1, 0, 1}));
}

TEST(EligibilityMasks, FromDenseChecksTheShape) {
  const std::vector<std::uint8_t> dense(5, 1);
  PERKREC_EXPECT_THROW_MSG(EligibilityMasks::from_dense(dense, 2, 3), InputError,
                           "n_users x n_benefits");
  PERKREC_EXPECT_THROW_MSG(EligibilityMasks::from_dense(dense, -1, 3), InputError,
                           "eligible has 5");
  const EligibilityMasks empty = EligibilityMasks::from_dense({}, 0, 4);
  EXPECT_EQ(empty.n_users(), 0);
  EXPECT_TRUE(empty.dense().empty());
}

TEST(ExcludedPairsByRule, CountsTheFirstExcludingRuleOfEachPair) {
  // Three benefits, masks: 0 all eligible, 1 excludes benefits 0 and 2 by rule 1, 2 excludes
  // benefit 1 by rule 0 and benefit 2 by rule 2. Members: two on mask 1, three on mask 2.
  CompiledPolicy c;
  c.masks = EligibilityMasks(6, 3);
  c.masks.add_mask({1, -1, 1});
  c.masks.add_mask({0, -1, 2});
  for (Index u : {1, 2}) c.masks.set_user_mask(u, 1);
  for (Index u : {3, 4, 5}) c.masks.set_user_mask(u, 2);
  c.rule_names = {"a", "b", "inventory"};
  EXPECT_EQ(excluded_pairs_by_rule(c), (std::vector<std::int64_t>{3, 4, 3}));
  c.rule_names = {"a", "b"};
  PERKREC_EXPECT_THROW_MSG(excluded_pairs_by_rule(c), InputError, "names rule 2");
}

TEST(FindCandidates, EntryOfEachPairOrMinusOne) {
  Candidates c;
  c.n_users = 3;
  c.n_benefits = 4;
  c.offsets = {0, 2, 2, 5};
  c.benefit = {3, 1, 0, 2, 0};  // member 2 lists benefit 0 twice: the first entry wins
  c.value = {1, 1, 1, 1, 1};
  c.cost = {0, 0, 0, 0, 0};
  const std::vector<Index> users{0, 0, 1, 2, 2, 7, -1};
  const std::vector<Index> benefits{1, 0, 1, 2, 0, 0, 0};
  EXPECT_EQ(find_candidates(c, users, benefits),
            (std::vector<std::int64_t>{1, -1, -1, 3, 2, -1, -1}));
  PERKREC_EXPECT_THROW_MSG(find_candidates(c, users, std::vector<Index>{1}), InputError,
                           "expected the same");
}

TEST(BestIneligible, LargestKeyAmongTheExcludedPairsAndItsRule) {
  // Three benefits; member 0 eligible for all, member 1 excluded from 0 (rule 4) and 2 (rule 5),
  // member 2 from all three (rules 1, 2, 3).
  EligibilityMasks m(3, 3);
  const Index one = m.add_mask({4, -1, 5});
  const Index all = m.add_mask({1, 2, 3});
  m.set_user_mask(1, one);
  m.set_user_mask(2, all);
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> key{9, 9, 9,   //
                          1, 8, 2,   // the eligible 8 does not count
                          5, 7, 7};  // ties: the first
  BestIneligible r = best_ineligible(m, key);
  EXPECT_EQ(r.benefit, (std::vector<Index>{-1, 2, 1}));
  EXPECT_EQ(r.rule, (std::vector<std::int32_t>{-1, 5, 2}));
  // A largest key that is not finite, or a NaN among the excluded pairs: none.
  key[5] = inf;
  key[6] = std::nan("");
  r = best_ineligible(m, key);
  EXPECT_EQ(r.benefit, (std::vector<Index>{-1, -1, -1}));
  key[5] = -inf;  // member 1: 1 beats -inf
  EXPECT_EQ(best_ineligible(m, key).benefit[1], 0);
  PERKREC_EXPECT_THROW_MSG(best_ineligible(m, std::vector<double>(8)), InputError, "3 x 3");
}

}  // namespace
}  // namespace perkrec
