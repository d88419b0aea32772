#include <limits>
#include <map>

#include "test_util.hpp"

namespace perkrec {
namespace {

TEST(ParseDiscount, CommonNotations) {
  ParsedDiscount d = parse_discount("150:20");
  EXPECT_EQ(d.kind, BenefitKind::threshold_discount);
  EXPECT_EQ(d.threshold, 150);
  EXPECT_EQ(d.face_value, 20);
  d = parse_discount(" 0.9 ");
  EXPECT_EQ(d.kind, BenefitKind::percent_off);
  EXPECT_NEAR(d.discount_rate, 0.1, 1e-12);
  d = parse_discount("15%");
  EXPECT_EQ(d.kind, BenefitKind::percent_off);
  EXPECT_NEAR(d.discount_rate, 0.15, 1e-12);
  d = parse_discount("20");
  EXPECT_EQ(d.kind, BenefitKind::discount);
  EXPECT_EQ(d.face_value, 20);
  d = parse_discount("fixed");
  EXPECT_TRUE(d.fixed_price);
  EXPECT_EQ(d.kind, BenefitKind::discount);
  d = parse_discount("30.5:2.5");
  EXPECT_EQ(d.threshold, 30.5);
  EXPECT_EQ(d.face_value, 2.5);
}

TEST(ParseDiscount, RejectsEverythingElseQuotingTheText) {
  for (const char* bad : {"", "null", "0", "-5", "10:20", "abc", "10:", ":5", "nan", "inf", "0:0",
                          "1:2:3", "150%", "0%", "1e400", "5 off"}) {
    PERKREC_EXPECT_THROW_MSG(parse_discount(bad), InputError, std::string("'") + bad + "'");
  }
}

constexpr const char* kCatalogJson = R"({
  "version": 1,
  "benefits": [
    {"id": "B1", "kind": "threshold_discount", "threshold": 150, "face_value": 20, "cost": 20,
     "validity_days": 14, "scope": "category", "scope_value": "dairy",
     "scenarios": ["regular", "member_day"], "channel": "app", "inventory": 500, "tags": ["x"]},
    {"id": "B2", "discount": "0.85", "cost": 9},
    {"id": "B3", "kind": "points", "face_value": 5}
  ]
})";

TEST(Catalog, LoadsTheDocumentedJsonSchema) {
  const Catalog c = Catalog::from_json(kCatalogJson);
  ASSERT_EQ(c.size(), 3);
  EXPECT_EQ(c[0].kind, BenefitKind::threshold_discount);
  EXPECT_EQ(c[0].scope, Scope::category);
  EXPECT_EQ(c[0].scenarios, (std::vector<std::string>{"regular", "member_day"}));
  EXPECT_EQ(c[0].inventory, 500);
  EXPECT_EQ(c[1].kind, BenefitKind::percent_off);
  EXPECT_NEAR(c[1].discount_rate, 0.15, 1e-12);
  EXPECT_EQ(c[2].validity_days, 30);  // default
  EXPECT_EQ(c[2].inventory, -1);
  EXPECT_EQ(c.find("B3"), 2);
  // JSON and container round trips.
  EXPECT_EQ(Catalog::from_json(c.to_json()), c);
  EXPECT_EQ(Catalog::from_bytes(c.to_bytes()), c);
}

TEST(Catalog, JsonErrorsNameThePointer) {
  PERKREC_EXPECT_THROW_MSG(
      Catalog::from_json(
          R"({"benefits": [{"id": "A", "kind": "gift"}, {"id": "B", "kind": "gift", "colour": 1}]})"),
      InputError, "/benefits/1/colour", "unknown key");
  PERKREC_EXPECT_THROW_MSG(
      Catalog::from_json(
          R"({"benefits": [{"id": "A", "kind": "gift"}, {"id": "A", "kind": "points"}]})"),
      InputError, "/benefits/1/id", "duplicate benefit id 'A'");
  PERKREC_EXPECT_THROW_MSG(Catalog::from_json(R"({"benefits": [{"id": "A", "kind": "coupon"}]})"),
                           InputError, "/benefits/0/kind", "unknown benefit kind", "coupon");
  PERKREC_EXPECT_THROW_MSG(
      Catalog::from_json(R"({"benefits": [{"id": "A", "kind": "gift", "face_value": -3}]})"),
      InputError, "/benefits/0", "face_value", "-3");
  PERKREC_EXPECT_THROW_MSG(
      Catalog::from_json(R"({"benefits": [{"id": "A", "discount": "150:20", "kind": "gift"}]})"),
      InputError, "/benefits/0/kind", "contradicts");
  PERKREC_EXPECT_THROW_MSG(Catalog::from_json(R"({"benefits": [{"id": "A"}]})"), InputError,
                           "/benefits/0/kind", "missing");
  PERKREC_EXPECT_THROW_MSG(Catalog::from_json(R"({"benefits": [], "benefits": []})"), InputError,
                           "duplicate key");
  PERKREC_EXPECT_THROW_MSG(Catalog::from_json(R"({"benefit": []})"), InputError, "/benefit");
  PERKREC_EXPECT_THROW_MSG(
      Catalog::from_json(R"({"benefits": [{"id": "A", "kind": "gift", "validity_days": 0}]})"),
      InputError, "validity_days");
  PERKREC_EXPECT_THROW_MSG(
      Catalog::from_json(R"({"benefits": [{"id": "A", "kind": "gift", "scope": "planet"}]})"),
      InputError, "/benefits/0/scope");
  PERKREC_EXPECT_THROW_MSG(Catalog::from_json("{"), InputError, "syntax error");
}

TEST(Catalog, FreeAttributesRoundTripAndAreValidated) {
  const Catalog c = Catalog::from_json(
      R"({"benefits": [{"id": "C1", "kind": "discount", "attributes": {"brand": "Acme", "category": "Meat", "campaign": 8}},
                       {"id": "C2", "kind": "gift"}]})");
  EXPECT_EQ(c[0].attributes,
            (std::map<std::string, std::string>{{"brand", "Acme"}, {"category", "Meat"}}));
  EXPECT_EQ(c[0].numeric_attributes, (std::map<std::string, double>{{"campaign", 8.0}}));
  EXPECT_TRUE(c[1].attributes.empty());
  EXPECT_EQ(Catalog::from_json(c.to_json()), c);
  EXPECT_EQ(Catalog::from_bytes(c.to_bytes()), c);
  Catalog other = c;
  Benefit b = c[0];
  b.id = "C3";
  b.attributes["brand"] = "Bolt";
  EXPECT_EQ(other.add(b), 2);
  EXPECT_FALSE(other[2] == c[0]);
  PERKREC_EXPECT_THROW_MSG(
      Catalog::from_json(
          R"({"benefits": [{"id": "A", "kind": "gift", "attributes": {"size": [1]}}]})"),
      InputError, "/benefits/0/attributes/size", "string or a number");
  PERKREC_EXPECT_THROW_MSG(
      Catalog::from_json(R"({"benefits": [{"id": "A", "kind": "gift", "attributes": {"": "x"}}]})"),
      InputError, "/benefits/0/attributes", "must not be empty");
  PERKREC_EXPECT_THROW_MSG(
      Catalog::from_json(R"({"benefits": [{"id": "A", "kind": "gift", "attributes": 3}]})"),
      InputError, "/benefits/0/attributes", "expected an object");
  Benefit clash;
  clash.id = "X";
  clash.attributes["brand"] = "Acme";
  clash.numeric_attributes["brand"] = 1.0;
  PERKREC_EXPECT_THROW_MSG(other.add(clash), InputError, "attribute 'brand'",
                           "both text and numeric");
  Benefit inf;
  inf.id = "Y";
  inf.numeric_attributes["price"] = std::numeric_limits<double>::infinity();
  PERKREC_EXPECT_THROW_MSG(other.add(inf), InputError, "attribute 'price'", "finite");
  EXPECT_EQ(other.size(), 3);
}

TEST(Catalog, AddAndExtendAreAllOrNothing) {
  Catalog c = Catalog::from_json(kCatalogJson);
  Benefit b;
  b.id = "B1";
  PERKREC_EXPECT_THROW_MSG(c.add(b), InputError, "duplicate benefit id 'B1'");
  Benefit good;
  good.id = "B9";
  Benefit bad;
  bad.id = "B10";
  bad.cost = std::nan("");
  EXPECT_THROW(c.extend({good, bad}), InputError);
  EXPECT_EQ(c.size(), 3);
  EXPECT_EQ(c.find("B9"), -1);
  apply_discount(parse_discount("200:30"), good);
  EXPECT_EQ(c.add(good), 3);
  EXPECT_EQ(c[3].kind, BenefitKind::threshold_discount);
  PERKREC_EXPECT_THROW_MSG(c.at(4), InputError, "out of range");
}

TEST(BenefitDimensions, EncodesEachGroup) {
  const Catalog c = Catalog::from_json(kCatalogJson);
  const BenefitDimensions dims = BenefitDimensions::for_catalog(c);
  EXPECT_EQ(dims.scenarios(), (std::vector<std::string>{"regular", "member_day"}));
  EXPECT_EQ(dims.channels(), (std::vector<std::string>{"app"}));
  std::vector<int> active;
  dims.encode(c[0], active);
  std::vector<std::string> names;
  for (int d : active) names.push_back(dims.names()[static_cast<std::size_t>(d)]);
  EXPECT_EQ(names,
            (std::vector<std::string>{"kind:threshold_discount", "face_value:10-30",
                                      "threshold:100-300", "scope:category", "scenario:regular",
                                      "scenario:member_day", "channel:app"}));
  active.clear();
  dims.encode(c[1], active);  // 15% off a typical 60 basket = 9
  EXPECT_EQ(dims.names()[static_cast<std::size_t>(active[1])], "face_value:<10");
  EXPECT_EQ(dims.names()[static_cast<std::size_t>(active[2])], "threshold:none");
  EXPECT_EQ(dims.group_of(dims.find("scope:tier")), BenefitDimensions::Group::scope);
  BenefitDimensions::Params bad;
  bad.face_value_edges = {30, 10};
  EXPECT_THROW(BenefitDimensions(bad, {}, {}), ConfigError);
}

}  // namespace
}  // namespace perkrec
