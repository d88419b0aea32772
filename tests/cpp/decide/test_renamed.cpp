// One vocabulary (issue 17): the member -> user renames of the public C++ names. Each old name
// is a [[deprecated]] forwarder kept for one release; these tests call them on purpose (the
// only calls in the tree) and check they give what the new names give.
#include <gtest/gtest.h>

#include "test_util.hpp"

#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif

namespace perkrec {
namespace {

TEST(RenamedToUser, EligibilityMasksForwarders) {
  EligibilityMasks m(3, 2);
  const Index blocked = m.add_mask({0, -1});
  m.set_user_mask(1, blocked);
  m.set_member_mask(2, blocked);  // deprecated: same as set_user_mask
  EXPECT_EQ(m.user_masks(), (std::vector<std::int32_t>{0, blocked, blocked}));
  EXPECT_EQ(&m.member_masks(), &m.user_masks());
  for (Index u = 0; u < 3; ++u) {
    for (Index b = 0; b < 2; ++b) EXPECT_EQ(m.member_rule(u, b), m.user_rule(u, b));
  }
  EXPECT_EQ(m.user_rule(2, 0), 0);
  PERKREC_EXPECT_THROW_MSG(m.set_member_mask(3, 0), InputError, "set_user_mask: user 3");
}

TEST(RenamedToUser, PreferenceModelTableReport) {
  static_assert(std::is_same_v<MemberTableReport, UserTableReport>);
  static_assert(std::is_same_v<MemberAnswer, UserAnswer>);
  static_assert(std::is_same_v<MemberBenefit, UserBenefit>);
  const PreferenceModel model;
  EXPECT_EQ(&model.member_table_report(), &model.user_table_report());
}

}  // namespace
}  // namespace perkrec
