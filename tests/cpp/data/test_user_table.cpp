#include <cmath>

#include "test_util.hpp"

namespace perkrec {
namespace {

TEST(UserTable, NumericAndCategoricalColumnsRoundTrip) {
  UserTable t(IdMap::from_strings({"m1", "m2", "m3"}));
  t.add_numeric("age", {31, std::nan(""), 45});
  t.add_categorical("tier", std::vector<std::string>{"gold", "", "basic"});
  t.add_categorical("region", std::vector<std::int32_t>{1, 0, -1}, {"north", "south"});
  EXPECT_EQ(t.names(), (std::vector<std::string>{"age", "tier", "region"}));
  EXPECT_EQ(t.codes("tier"), (std::vector<std::int32_t>{0, -1, 1}));
  EXPECT_EQ(t.categories("tier"), (std::vector<std::string>{"gold", "basic"}));
  EXPECT_TRUE(std::isnan(t.numeric("age")[1]));
  EXPECT_EQ(t.type("region"), UserTable::ColumnType::categorical);
  EXPECT_EQ(UserTable::from_bytes(t.to_bytes()), t);
}

TEST(UserTable, BadColumnsAreRejectedWithoutChangingTheTable) {
  UserTable t(IdMap::range(2));
  t.add_numeric("x", {1, 2});
  PERKREC_EXPECT_THROW_MSG(t.add_numeric("y", {1}), InputError, "'y'", "1 rows", "expected 2");
  PERKREC_EXPECT_THROW_MSG(t.add_numeric("y", {1, INFINITY}), InputError, "row 1", "infinite");
  PERKREC_EXPECT_THROW_MSG(t.add_numeric("x", {1, 2}), InputError, "duplicate column 'x'");
  PERKREC_EXPECT_THROW_MSG(t.add_categorical("c", std::vector<std::int32_t>{0, 2}, {"a", "b"}),
                           InputError, "row 1", "code out of range", "got 2");
  PERKREC_EXPECT_THROW_MSG(t.add_categorical("c", std::vector<std::int32_t>{0, 1}, {"a", "a"}),
                           InputError, "duplicate category 'a'");
  EXPECT_EQ(t.num_columns(), 1);
  PERKREC_EXPECT_THROW_MSG(t.codes("x"), InputError, "numeric");
  PERKREC_EXPECT_THROW_MSG(t.numeric("zz"), InputError, "no column 'zz'");
}

}  // namespace
}  // namespace perkrec
