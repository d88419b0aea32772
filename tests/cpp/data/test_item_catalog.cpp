#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace perkrec {
namespace {

ItemCatalog six_items() {
  ItemCatalog c(IdMap::from_integers(std::vector<std::int64_t>{100, 101, 102, 103, 104, 105}));
  c.add_level("category",
              std::vector<std::string>{"dairy", "dairy", "bakery", "bakery", "meat", ""});
  c.add_level("brand", std::vector<std::int32_t>{0, 1, 0, 2, 1, 0},
              std::vector<std::string>{"A", "B", "C"});
  c.add_numeric("price", {1.0, 2.0, NAN, 4.0, 5.0, 6.0});
  return c;
}

TEST(ItemCatalog, LevelsAndNumericByName) {
  const ItemCatalog c = six_items();
  EXPECT_EQ(c.size(), 6);
  EXPECT_EQ(c.num_levels(), 2);
  EXPECT_EQ(c.level_names(), (std::vector<std::string>{"category", "brand"}));
  EXPECT_EQ(c.numeric_names(), (std::vector<std::string>{"price"}));
  EXPECT_EQ(c.level_codes("category"), (std::vector<std::int32_t>{0, 0, 1, 1, 2, -1}));
  EXPECT_EQ(c.level_values("category"), (std::vector<std::string>{"dairy", "bakery", "meat"}));
  EXPECT_EQ(c.level_codes("brand")[3], 2);
  EXPECT_TRUE(std::isnan(c.numeric("price")[2]));
  EXPECT_EQ(c.find_level("brand"), 1);
  EXPECT_EQ(c.find_level("nope"), -1);
  EXPECT_EQ(c.items().find(std::int64_t{103}), 3);
  EXPECT_TRUE(c == six_items());
}

TEST(ItemCatalog, UnknownNamesAreInputErrorsNamingThem) {
  const ItemCatalog c = six_items();
  PERKREC_EXPECT_THROW_MSG(c.level_codes("department"), InputError, "unknown level 'department'",
                           "'category'", "'brand'");
  PERKREC_EXPECT_THROW_MSG(c.numeric("size"), InputError, "'size'", "'price'");
  PERKREC_EXPECT_THROW_MSG(c.level_codes(5), InputError, "out of range");
}

TEST(ItemCatalog, RejectsBadColumnsWithoutChange) {
  ItemCatalog c = six_items();
  PERKREC_EXPECT_THROW_MSG(
      c.add_level("x", std::vector<std::int32_t>{0, 0}, std::vector<std::string>{"a"}), InputError,
      "has 2 rows", "expected 6");
  PERKREC_EXPECT_THROW_MSG(c.add_level("brand", std::vector<std::int32_t>{0, 0, 0, 0, 0, 0},
                                       std::vector<std::string>{"a"}),
                           InputError, "duplicate column 'brand'");
  PERKREC_EXPECT_THROW_MSG(c.add_numeric("category", std::vector<double>(6, 1.0)), InputError,
                           "duplicate");
  PERKREC_EXPECT_THROW_MSG(c.add_level("x", std::vector<std::int32_t>{0, 0, 0, 0, 0, 3},
                                       std::vector<std::string>{"a", "b"}),
                           InputError, "item 5", "code out of range");
  PERKREC_EXPECT_THROW_MSG(c.add_level("x", std::vector<std::int32_t>{0, 0, 0, 0, 0, 0},
                                       std::vector<std::string>{"a", "a"}),
                           InputError, "duplicate value 'a'");
  PERKREC_EXPECT_THROW_MSG(c.add_numeric("size", {1, 2, 3, INFINITY, 5, 6}), InputError, "item 3",
                           "infinite");
  PERKREC_EXPECT_THROW_MSG(
      c.add_level("", std::vector<std::int32_t>{0, 0, 0, 0, 0, 0}, std::vector<std::string>{"a"}),
      InputError, "name is empty");
  EXPECT_TRUE(c == six_items());
}

TEST(ItemCatalogBenefitItems, SortedDistinctWithUnknownsCounted) {
  const std::vector<Index> benefit{1, 0, 0, 1, 0, 2, 0};
  const std::vector<Index> item{4, 2, 0, -1, 2, -1, 0};
  const BenefitItems bi = BenefitItems::from_pairs(benefit, item, 4, 6);
  EXPECT_EQ(bi.n_benefits(), 4);
  EXPECT_EQ(bi.n_items(), 6);
  EXPECT_EQ(bi.unknown_items(), 2);
  EXPECT_EQ(bi.size(), 3);
  EXPECT_EQ(std::vector<Index>(bi.items(0).begin(), bi.items(0).end()), (std::vector<Index>{0, 2}));
  EXPECT_EQ(std::vector<Index>(bi.items(1).begin(), bi.items(1).end()), (std::vector<Index>{4}));
  EXPECT_TRUE(bi.items(2).empty());
  EXPECT_TRUE(bi.items(3).empty());
  EXPECT_EQ(bi.offsets(), (std::vector<Offset>{0, 2, 3, 3, 3}));
  // Inferred benefit count.
  EXPECT_EQ(BenefitItems::from_pairs(benefit, item, -1, 6).n_benefits(), 3);
}

TEST(ItemCatalogBenefitItems, TypedErrors) {
  const std::vector<Index> benefit{0, 1};
  PERKREC_EXPECT_THROW_MSG(
      BenefitItems::from_pairs(benefit, std::vector<Index>{0, -1}, 2, 6, UnknownItems::raise),
      InputError, "pair 1", "unknown item");
  PERKREC_EXPECT_THROW_MSG(BenefitItems::from_pairs(benefit, std::vector<Index>{0, 6}, 2, 6),
                           InputError, "pair 1", "item out of range", "got 6");
  PERKREC_EXPECT_THROW_MSG(BenefitItems::from_pairs(benefit, std::vector<Index>{0, 1}, 1, 6),
                           InputError, "benefit out of range");
  PERKREC_EXPECT_THROW_MSG(BenefitItems::from_pairs(benefit, std::vector<Index>{0}, 2, 6),
                           InputError, "one of each per pair");
  PERKREC_EXPECT_THROW_MSG(parse_unknown_items("keep", "BenefitItems"), ConfigError,
                           "'drop' or 'raise'", "keep");
}

TEST(ItemCatalogBenefitItems, DistinctLevelValuesPerBenefit) {
  const ItemCatalog c = six_items();
  const std::vector<Index> benefit{0, 0, 1, 2, 2};
  const std::vector<Index> item{0, 2, 4, 5, 1};
  const BenefitItems bi = BenefitItems::from_pairs(benefit, item, 3, 6);
  const LevelValues cat = bi.level_values(c, "category");
  auto vec = [](Span<const std::int32_t> s) {
    return std::vector<std::int32_t>(s.begin(), s.end());
  };
  EXPECT_EQ(vec(cat.of(0)), (std::vector<std::int32_t>{0, 1}));  // dairy, bakery
  EXPECT_EQ(vec(cat.of(1)), (std::vector<std::int32_t>{2}));     // meat
  EXPECT_EQ(vec(cat.of(2)), (std::vector<std::int32_t>{0}));     // item 5 has no category
  const LevelValues brand = bi.level_values(c, "brand");
  EXPECT_EQ(vec(brand.of(0)), (std::vector<std::int32_t>{0}));  // both items are brand A
  EXPECT_EQ(vec(brand.of(2)), (std::vector<std::int32_t>{0, 1}));
  PERKREC_EXPECT_THROW_MSG(bi.level_values(c, "aisle"), InputError, "unknown level 'aisle'");
  const BenefitItems other = BenefitItems::from_pairs(benefit, item, 3, 9);
  PERKREC_EXPECT_THROW_MSG(other.level_values(c, "brand"), InputError, "holds 6 items",
                           "expected 9");
}

TEST(ItemCatalogBenefitItems, RoundTripThroughBytesAndRefuseBadContent) {
  const ItemCatalog c = six_items();
  EXPECT_TRUE(ItemCatalog::from_bytes(c.to_bytes()) == c);
  const std::vector<Index> benefit{0, 0, 1, 2, 2, 2}, item{0, 2, 4, 5, 1, -1};
  const BenefitItems bi = BenefitItems::from_pairs(benefit, item, 4, 6);
  const BenefitItems back = BenefitItems::from_bytes(bi.to_bytes());
  EXPECT_EQ(back.offsets(), bi.offsets());
  EXPECT_EQ(back.indices(), bi.indices());
  EXPECT_EQ(back.n_benefits(), 4);
  EXPECT_EQ(back.unknown_items(), 1);
  // An item index past n_items is refused by from_pairs on load.
  ModelWriter w(BenefitItems::kind);
  w.content() = Json{{"n_benefits", 1}, {"n_items", 2}, {"unknown_items", 0}};
  w.add("benefit", std::vector<Index>{0});
  w.add("item", std::vector<Index>{5});
  PERKREC_EXPECT_THROW_MSG(BenefitItems::from_bytes(w.to_bytes()), ModelFormatError, "item");
  // A level code past the level's values is refused by add_level.
  ModelWriter wc(ItemCatalog::kind);
  IdMap::range(2).write(wc, "items.");
  wc.content()["levels"] = Json::array({"category"});
  wc.content()["numerics"] = Json::array();
  wc.add("level0", std::vector<std::int32_t>{0, 3});
  wc.add_strings("level0.values", {"dairy"});
  PERKREC_EXPECT_THROW_MSG(ItemCatalog::from_bytes(wc.to_bytes()), ModelFormatError,
                           "code out of range");
}

}  // namespace
}  // namespace perkrec
