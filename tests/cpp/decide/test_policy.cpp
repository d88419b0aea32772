#include <cmath>
#include <random>

#include "test_util.hpp"

namespace perkrec {
namespace {

using testing::day_time;
using testing::make_log;
using testing::Row;

// Six benefits covering every selector field.
Catalog small_catalog() {
  std::vector<Benefit> v(6);
  v[0].id = "B0";
  v[0].kind = BenefitKind::discount;
  v[0].face_value = 5;
  v[0].channel = "app";
  v[0].scenarios = {"regular"};
  v[1].id = "B1";
  v[1].kind = BenefitKind::threshold_discount;
  v[1].face_value = 20;
  v[1].threshold = 150;
  v[1].scope = Scope::category;
  v[1].scope_value = "dairy";
  v[1].scenarios = {"holiday"};
  v[2].id = "B2";
  v[2].kind = BenefitKind::points;
  v[2].face_value = 2;
  v[2].tags = {"spring"};
  v[3].id = "B3";
  v[3].kind = BenefitKind::member_exclusive;
  v[3].channel = "email";
  v[4].id = "B4";
  v[4].kind = BenefitKind::gift;
  v[4].face_value = 10;
  v[4].inventory = 0;
  v[5].id = "B5";
  v[5].kind = BenefitKind::percent_off;
  v[5].discount_rate = 0.1;
  v[5].scope = Scope::brand;
  v[5].scope_value = "acme";
  v[5].tags = {"spring", "promo"};
  return Catalog(v);
}

// Five members: tier (gold, basic, platinum, missing, basic), age (30, 45, NaN, 70, 18).
UserTable small_users() {
  UserTable t(IdMap::range(5));
  t.add_categorical("tier", std::vector<std::int32_t>{0, 1, 2, -1, 1},
                    {"gold", "basic", "platinum"});
  t.add_numeric("age", {30, 45, std::nan(""), 70, 18});
  t.add_numeric("utc_offset", {0, 5.5, -8, std::nan(""), 9});
  return t;
}

SegmentAssignment small_segments() {
  SegmentAssignment s;
  s.names = {"new_member", "loyal", "dormant"};
  s.codes = {1, 0, 1, 2, -1};
  return s;
}

std::vector<int> benefit_column(const CompiledPolicy& c, Index b) {
  std::vector<int> out;
  for (Index u = 0; u < c.masks.n_users(); ++u) out.push_back(c.masks.eligible(u, b) ? 1 : 0);
  return out;
}

const Timestamp kPlan = day_time(30);

TEST(Policy, EmptyPolicyMakesEverythingEligibleExceptZeroInventory) {
  const Catalog cat = small_catalog();
  const CompiledPolicy c = Policy{}.compile(cat, small_users(), kPlan);
  EXPECT_EQ(c.masks.n_users(), 5);
  EXPECT_EQ(c.masks.n_benefits(), 6);
  for (Index u = 0; u < 5; ++u) {
    for (Index b = 0; b < 6; ++b) {
      EXPECT_EQ(c.masks.eligible(u, b), b != 4);
      EXPECT_EQ(c.masks.user_rule(u, b), b == 4 ? 0 : -1);
    }
  }
  EXPECT_EQ(c.rule_names, std::vector<std::string>{"inventory"});
  EXPECT_EQ(c.constraints.inventory, (std::vector<std::int64_t>{-1, -1, -1, -1, 0, -1}));
  EXPECT_EQ(c.constraints.benefit_kind, (std::vector<std::int32_t>{0, 1, 4, 6, 3, 2}));
  EXPECT_EQ(c.constraints.n_kinds, kNumBenefitKinds);
  EXPECT_EQ(c.constraints.member_capacity, std::vector<std::int32_t>(5, 1));
  EXPECT_TRUE(std::isinf(c.constraints.budget));
  EXPECT_NO_THROW(c.constraints.validate(5, 6));
}

TEST(Policy, DenyRequireAndWindowKnownAnswers) {
  const Catalog cat = small_catalog();
  const UserTable users = small_users();
  const SegmentAssignment seg = small_segments();
  const Policy p = Policy::from_string(R"({
    "inventory": {"B4": 3},
    "rules": [
      {"name": "exclusive for gold+", "effect": "require", "benefits": {"kinds": ["member_exclusive"]},
       "members": {"attributes": [{"column": "tier", "op": "in", "value": ["gold", "platinum"]}]}},
      {"name": "no points for loyal", "effect": "deny", "benefits": {"kinds": ["points"]},
       "members": {"segments": ["loyal"]}},
      {"name": "holiday", "effect": "window", "benefits": {"scenarios": ["holiday"]},
       "from": "2023-12-01", "until": "2024-01-01T00:00:00Z"}
    ]})");
  // kPlan = 1'700'000'000 + 30 days = 2023-12-14: inside the window.
  CompiledPolicy c = p.compile(cat, users, kPlan, &seg);
  EXPECT_EQ(benefit_column(c, 3), (std::vector<int>{1, 0, 1, 0, 0}));  // gold, platinum only
  EXPECT_EQ(benefit_column(c, 2), (std::vector<int>{0, 1, 0, 1, 1}));  // members 0, 2 are "loyal"
  EXPECT_EQ(benefit_column(c, 1), (std::vector<int>{1, 1, 1, 1, 1}));
  EXPECT_EQ(benefit_column(c, 4), (std::vector<int>{1, 1, 1, 1, 1}));  // inventory override 3
  EXPECT_EQ(c.masks.user_rule(1, 3), 0);
  EXPECT_EQ(c.masks.user_rule(0, 2), 1);
  EXPECT_EQ(c.masks.user_rule(1, 2), -1);
  EXPECT_EQ(c.rule_names, (std::vector<std::string>{"exclusive for gold+", "no points for loyal",
                                                    "holiday", "inventory"}));
  // Members 0 and 2 (gold / platinum, not loyal) share a mask; masks are few.
  EXPECT_EQ(c.masks.mask_of(0), c.masks.mask_of(2));
  EXPECT_LE(c.masks.n_masks(), 4);
  // Window boundaries: [from, until).
  const Timestamp until = parse_utc_time("2024-01-01", "t");
  const Timestamp from = parse_utc_time("2023-12-01", "t");
  EXPECT_EQ(benefit_column(p.compile(cat, users, until, &seg), 1), std::vector<int>(5, 0));
  EXPECT_EQ(benefit_column(p.compile(cat, users, until - 1, &seg), 1), std::vector<int>(5, 1));
  EXPECT_EQ(benefit_column(p.compile(cat, users, from, &seg), 1), std::vector<int>(5, 1));
  EXPECT_EQ(benefit_column(p.compile(cat, users, from - 1, &seg), 1), std::vector<int>(5, 0));
  EXPECT_EQ(p.compile(cat, users, from - 1, &seg).masks.user_rule(0, 1), 2);
}

TEST(Policy, BenefitSelectorFieldsKnownAnswers) {
  const Catalog cat = small_catalog();
  auto denied = [&](const std::string& selector) {
    const Policy p =
        Policy::from_string(R"({"rules": [{"effect": "deny", "benefits": )" + selector + "}]}");
    const CompiledPolicy c = p.compile(cat, small_users(), kPlan);
    std::vector<int> out;
    for (Index b = 0; b < cat.size(); ++b) out.push_back(c.masks.user_rule(0, b) == 0 ? 1 : 0);
    return out;
  };
  EXPECT_EQ(denied(R"({"ids": ["B1", "B5"]})"), (std::vector<int>{0, 1, 0, 0, 0, 1}));
  EXPECT_EQ(denied(R"(["B0"])"), (std::vector<int>{1, 0, 0, 0, 0, 0}));
  EXPECT_EQ(denied(R"({"kinds": ["gift", "points"]})"), (std::vector<int>{0, 0, 1, 0, 1, 0}));
  EXPECT_EQ(denied(R"({"scopes": ["category", "brand"]})"), (std::vector<int>{0, 1, 0, 0, 0, 1}));
  EXPECT_EQ(denied(R"({"scope_values": ["acme"]})"), (std::vector<int>{0, 0, 0, 0, 0, 1}));
  EXPECT_EQ(denied(R"({"scenarios": ["regular", "x"]})"), (std::vector<int>{1, 0, 0, 0, 0, 0}));
  EXPECT_EQ(denied(R"({"channels": ["email"]})"), (std::vector<int>{0, 0, 0, 1, 0, 0}));
  EXPECT_EQ(denied(R"({"tags": ["spring"]})"), (std::vector<int>{0, 0, 1, 0, 0, 1}));
  EXPECT_EQ(denied(R"({"face_value": {"min": 5, "max": 10}})"),
            (std::vector<int>{1, 0, 0, 0, 1, 0}));
  EXPECT_EQ(denied(R"({"threshold": {"min": 1}})"), (std::vector<int>{0, 1, 0, 0, 0, 0}));
  EXPECT_EQ(denied(R"({"tags": ["spring"], "kinds": ["points"]})"),
            (std::vector<int>{0, 0, 1, 0, 0, 0}));
  EXPECT_EQ(denied(R"({})"), (std::vector<int>{1, 1, 1, 1, 1, 1}));
}

TEST(Policy, AttributeOperatorsKnownAnswers) {
  const Catalog cat = small_catalog();
  // Which members a deny rule on B0 hits under one condition (missing values never match).
  auto hit = [&](const std::string& cond) {
    const Policy p = Policy::from_string(R"({"rules": [{"effect": "deny", "benefits": ["B0"],
        "members": {"attributes": [)" + cond +
                                         "]}}]}");
    const CompiledPolicy c = p.compile(cat, small_users(), kPlan);
    std::vector<int> out;
    for (Index u = 0; u < 5; ++u) out.push_back(c.masks.eligible(u, 0) ? 0 : 1);
    return out;
  };
  // tier: gold, basic, platinum, missing, basic
  EXPECT_EQ(hit(R"({"column": "tier", "op": "==", "value": "basic"})"),
            (std::vector<int>{0, 1, 0, 0, 1}));
  EXPECT_EQ(hit(R"({"column": "tier", "op": "!=", "value": "basic"})"),
            (std::vector<int>{1, 0, 1, 0, 0}));
  EXPECT_EQ(hit(R"({"column": "tier", "op": "in", "value": ["gold", "diamond"]})"),
            (std::vector<int>{1, 0, 0, 0, 0}));
  EXPECT_EQ(hit(R"({"column": "tier", "op": "not_in", "value": ["gold"]})"),
            (std::vector<int>{0, 1, 1, 0, 1}));
  // age: 30, 45, NaN, 70, 18
  EXPECT_EQ(hit(R"({"column": "age", "op": "<", "value": 30})"), (std::vector<int>{0, 0, 0, 0, 1}));
  EXPECT_EQ(hit(R"({"column": "age", "op": "<=", "value": 30})"),
            (std::vector<int>{1, 0, 0, 0, 1}));
  EXPECT_EQ(hit(R"({"column": "age", "op": ">", "value": 45})"), (std::vector<int>{0, 0, 0, 1, 0}));
  EXPECT_EQ(hit(R"({"column": "age", "op": ">=", "value": 45})"),
            (std::vector<int>{0, 1, 0, 1, 0}));
  EXPECT_EQ(hit(R"({"column": "age", "op": "==", "value": 45})"),
            (std::vector<int>{0, 1, 0, 0, 0}));
  EXPECT_EQ(hit(R"({"column": "age", "op": "!=", "value": 45})"),
            (std::vector<int>{1, 0, 0, 1, 1}));
  EXPECT_EQ(hit(R"({"column": "age", "op": "between", "value": [18, 45]})"),
            (std::vector<int>{1, 1, 0, 0, 1}));
  EXPECT_EQ(
      hit(R"({"column": "age", "op": ">", "value": 20}, {"column": "tier", "op": "==", "value": "basic"})"),
      (std::vector<int>{0, 1, 0, 0, 0}));
}

TEST(Policy, CompileRejectsDataThatDoesNotFitThePolicy) {
  const Catalog cat = small_catalog();
  const UserTable users = small_users();
  const SegmentAssignment seg = small_segments();
  auto compile = [&](const std::string& text, const SegmentAssignment* s) {
    return Policy::from_string(text).compile(cat, users, kPlan, s);
  };
  PERKREC_EXPECT_THROW_MSG(compile(R"({"rules": [{"name": "r", "effect": "deny",
      "members": {"attributes": [{"column": "tierr", "op": "==", "value": "gold"}]}}]})",
                                   nullptr),
                           InputError, "rule 'r'", "/rules/0/members/attributes/0",
                           "unknown column 'tierr'");
  PERKREC_EXPECT_THROW_MSG(compile(R"({"rules": [{"name": "r", "effect": "deny",
      "members": {"attributes": [{"column": "tier", "op": "<", "value": 3}]}}]})",
                                   nullptr),
                           InputError, "rule 'r'", "'tier' is categorical");
  PERKREC_EXPECT_THROW_MSG(compile(R"({"rules": [{"name": "r", "effect": "deny",
      "members": {"attributes": [{"column": "age", "op": "==", "value": "old"}]}}]})",
                                   nullptr),
                           InputError, "'age' is numeric");
  PERKREC_EXPECT_THROW_MSG(compile(R"({"rules": [{"name": "r", "effect": "deny",
      "members": {"segments": ["loyal"]}}]})",
                                   nullptr),
                           InputError, "no segments were given");
  PERKREC_EXPECT_THROW_MSG(compile(R"({"rules": [{"name": "r", "effect": "deny",
      "members": {"segments": ["loyal", "vip"]}}]})",
                                   &seg),
                           InputError, "/rules/0/members/segments/1", "unknown segment 'vip'");
  PERKREC_EXPECT_THROW_MSG(compile(R"({"rules": [{"name": "r", "effect": "deny",
      "benefits": {"ids": ["B0", "B9"]}}]})",
                                   nullptr),
                           InputError, "/rules/0/benefits/ids/1", "'B9'");
  PERKREC_EXPECT_THROW_MSG(compile(R"({"inventory": {"B9": 1}})", nullptr), InputError,
                           "/inventory/B9");
  PERKREC_EXPECT_THROW_MSG(compile(R"({"segment_quotas": {"vip": {"max_members": 1}}})", &seg),
                           InputError, "/segment_quotas/vip", "unknown segment");
  // Groups that do not overlap by name but do on this catalog.
  PERKREC_EXPECT_THROW_MSG(compile(R"({"non_stackable": [["B2"], {"tags": ["spring"]}]})", nullptr),
                           ConfigError, "/non_stackable/1", "'B2'",
                           "already in non_stackable group 0");
  PERKREC_EXPECT_THROW_MSG(compile(R"({"quiet_hours": {"start_hour": 22, "end_hour": 8,
      "utc_offset_column": "tier"}})",
                                   nullptr),
                           InputError, "utc_offset_column", "'tier'");
}

TEST(Policy, StrictParsingNamesThePointer) {
  auto bad = [](const std::string& text, const std::vector<std::string>& fragments) {
    try {
      Policy::from_string(text);
      ADD_FAILURE() << "accepted " << text;
    } catch (const ConfigError& e) {
      for (const auto& f : fragments) {
        EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what() << " lacks " << f;
      }
    }
  };
  bad(R"({"budgte": 1})", {"/budgte", "unknown key"});
  bad(R"({"budget": -1})", {"/budget", ">= 0"});
  bad(R"({"budget": 1, "budget": 2})", {"/budget"});
  bad(R"({"rules": [{"effect": "deny", "members": {"attributes": [{"column": "a", "op": "==", "value": 1, "x": 2}]}}]})",
      {"/rules/0/members/attributes/0/x", "unknown key"});
  bad(R"({"rules": [{"effect": "deny", "benefits": {"kind": ["gift"]}}]})",
      {"/rules/0/benefits/kind", "unknown key"});
  bad(R"({"rules": [{"effect": "deny", "benefits": {"kinds": ["gift", "voucher"]}}]})",
      {"/rules/0/benefits/kinds/1", "unknown benefit kind"});
  bad(R"({"rules": [{"effect": "deny", "benefits": {"scopes": ["shop"]}}]})",
      {"/rules/0/benefits/scopes/0"});
  bad(R"({"rules": [{"effect": "allow"}]})", {"/rules/0/effect"});
  bad(R"({"rules": [{"name": "x"}]})", {"/rules/0/effect", "missing"});
  bad(R"({"max_per_member": 1, "max_per_kind": 2})", {"/max_per_kind", "max_per_member"});
  bad(R"({"max_per_member": 0})", {"/max_per_member"});
  bad(R"({"diversity": 1.5})", {"/diversity"});
  bad(R"({"issue_cost": -0.1})", {"/issue_cost"});
  bad(R"({"rules": [{"effect": "window", "from": "2026-12-02", "until": "2026-12-01"}]})",
      {"/rules/0/until", "after from"});
  bad(R"({"rules": [{"effect": "window"}]})", {"/rules/0", "from"});
  bad(R"({"rules": [{"effect": "deny", "from": "2026-12-01"}]})", {"/rules/0/from", "window"});
  bad(R"({"rules": [{"effect": "window", "from": "2026-13-01"}]})", {"/rules/0/from", "UTC time"});
  bad(R"({"quiet_hours": {"start_hour": 8, "end_hour": 8}})", {"/quiet_hours/end_hour", "differ"});
  bad(R"({"quiet_hours": {"start_hour": 24, "end_hour": 8}})", {"/quiet_hours/start_hour"});
  bad(R"({"quiet_hours": {"start_hour": 22}})", {"/quiet_hours/end_hour", "missing"});
  bad(R"({"segment_quotas": {"dormant": {"max_members": -2}}})",
      {"/segment_quotas/dormant/max_members"});
  bad(R"({"segment_quotas": {"dormant": {"max_cost": -5}}})", {"/segment_quotas/dormant/max_cost"});
  bad(R"({"non_stackable": [["B1", "B2"], ["B3", "B2"]]})", {"/non_stackable/1/ids/1", "B2"});
  bad(R"({"non_stackable": [{"kinds": ["gift"]}, {"kinds": ["points", "gift"]}]})",
      {"/non_stackable/1/kinds/1"});
  bad(R"({"inventory": {"B1": -2}})", {"/inventory/B1"});
  bad(R"({"caps": [{"period_days": 0, "max": 1}]})", {"/caps/0/period_days"});
  bad(R"({"caps": [{"period_days": 7, "max": 1, "kind": "coupon"}]})", {"/caps/0/kind"});
  bad(R"({"frequency_cap": {"period_days": 7, "max_contacts": -1}})",
      {"/frequency_cap/max_contacts"});
  bad(R"({"rules": [{"effect": "deny", "members": {"attributes": [{"column": "age", "op": "between", "value": [5, 1]}]}}]})",
      {"/rules/0/members/attributes/0/value", "lo <= hi"});
  bad(R"({"rules": [{"effect": "deny", "members": {"attributes": [{"column": "age", "op": "~", "value": 1}]}}]})",
      {"/rules/0/members/attributes/0/op"});
  bad(R"({"rules": [{"effect": "deny", "benefits": {"face_value": {"min": 5, "max": 1}}}]})",
      {"/rules/0/benefits/face_value", "min must be <= max"});
  bad(R"({"rules": [
      {"effect": "require", "benefits": {"kinds": ["gift"]}, "members": {"segments": ["a"]}},
      {"effect": "deny", "benefits": {"kinds": ["gift"]}, "members": {"segments": ["a"]}}]})",
      {"/rules/1", "contradicts rule 0"});
  // The struct-level checks give the same pointers.
  Policy p;
  p.budget = -3;
  PERKREC_EXPECT_THROW_MSG(p.validate(), ConfigError, "Policy::validate", "/budget");
}

TEST(Policy, ToJsonRoundTrips) {
  const std::string text = R"({
    "budget": 50000, "issue_cost": 0.02, "max_per_member": 2, "max_per_kind": 1,
    "min_return_per_cost": 1.0, "diversity": 0.3,
    "caps": [{"period_days": 30, "max": 4}, {"period_days": 30, "max": 1, "kind": "gift"}],
    "frequency_cap": {"period_days": 7, "max_contacts": 2},
    "quiet_hours": {"start_hour": 22, "end_hour": 8, "utc_offset_column": "utc_offset"},
    "inventory": {"B007": 500, "B001": -1},
    "non_stackable": [["B001", "B002"], {"kinds": ["threshold_discount", "percent_off"]}],
    "segment_quotas": {"dormant": {"max_members": 1000, "max_cost": 2000}, "new": {"max_members": 5}},
    "rules": [
      {"name": "exclusive perks for gold+", "effect": "require",
       "benefits": {"kinds": ["member_exclusive"], "face_value": {"min": 1}},
       "members": {"attributes": [{"column": "tier", "op": "in", "value": ["gold", "platinum"]},
                                  {"column": "age", "op": "between", "value": [18, 99]},
                                  {"column": "age", "op": "!=", "value": 40}]}},
      {"name": "no points for new members", "effect": "deny",
       "benefits": {"kinds": ["points"]}, "members": {"segments": ["new_member"]}},
      {"name": "holiday window", "effect": "window", "benefits": {"scenarios": ["holiday"]},
       "from": "2026-12-01T00:00:00Z", "until": 1798761600}
    ] })";
  const Policy p = Policy::from_string(text);
  EXPECT_EQ(p.budget, 50000);
  EXPECT_EQ(p.rules[2].until, 1798761600);
  EXPECT_EQ(p.rules[2].from, parse_utc_time("2026-12-01", "t"));
  const Json j = p.to_json();
  const Policy q = Policy::from_json(j);
  EXPECT_TRUE(q == p);
  EXPECT_EQ(q.to_json(), j);
  EXPECT_EQ(Policy::from_string(j.dump()), p);
  EXPECT_TRUE(Policy::from_json(Policy{}.to_json()) == Policy{});
  EXPECT_FALSE(Policy::from_json(Policy{}.to_json()).to_json().contains("budget"));
  EXPECT_EQ(format_utc_time(parse_utc_time("2024-02-29T23:59:59Z", "t")), "2024-02-29T23:59:59Z");
  EXPECT_EQ(format_utc_time(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(parse_utc_time("2026-11-23T01:10:00Z", "t"), 1795396200);
  PERKREC_EXPECT_THROW_MSG(parse_utc_time("2023-02-29", "ctx"), ConfigError, "ctx");
}

TEST(Policy, ConstraintsFromPolicy) {
  const Catalog cat = small_catalog();
  const SegmentAssignment seg = small_segments();
  const Policy p = Policy::from_string(R"({"budget": 100, "issue_cost": 0.5, "max_per_member": 3,
      "max_per_kind": 2, "min_return_per_cost": 1.5, "diversity": 0.25,
      "inventory": {"B0": 7, "B4": -1},
      "non_stackable": [["B0", "B1"], {"kinds": ["percent_off", "points"]}],
      "segment_quotas": {"dormant": {"max_members": 10, "max_cost": 20}, "loyal": {"max_cost": 5}}})");
  const CompiledPolicy c = p.compile(cat, small_users(), kPlan, &seg);
  const AllocationConstraints& k = c.constraints;
  EXPECT_EQ(k.budget, 100);
  EXPECT_EQ(c.issue_cost, 0.5);
  EXPECT_EQ(k.max_per_member, 3);
  EXPECT_EQ(k.max_per_kind, 2);
  EXPECT_EQ(k.min_return_per_cost, 1.5);
  EXPECT_EQ(k.diversity, 0.25);
  EXPECT_EQ(k.inventory, (std::vector<std::int64_t>{7, -1, -1, -1, -1, -1}));
  EXPECT_EQ(k.benefit_group, (std::vector<std::int32_t>{0, 0, 1, -1, -1, 1}));
  EXPECT_EQ(c.segment_names, seg.names);
  EXPECT_EQ(k.member_segment, seg.codes);
  EXPECT_EQ(k.segment_max_members, (std::vector<std::int64_t>{-1, -1, 10}));
  EXPECT_EQ(k.segment_max_cost, (std::vector<double>{-1, 5, 20}));
  EXPECT_EQ(k.member_capacity, std::vector<std::int32_t>(5, 3));
  EXPECT_TRUE(k.member_kind_capacity.empty());
  EXPECT_EQ(benefit_column(c, 4), std::vector<int>(5, 1));  // inventory -1 overrides catalog's 0
  EXPECT_NO_THROW(k.validate(5, 6));
}

TEST(Policy, CapsAndFrequencyCapFromHistory) {
  const Catalog cat = small_catalog();
  const UserTable users = small_users();
  // plan at day 30; caps over 7 days: window [day 23, day 30).
  const Policy p = Policy::from_string(R"({"max_per_member": 3,
      "caps": [{"period_days": 7, "max": 2}, {"period_days": 7, "max": 1, "kind": "gift"}]})");
  const EventLog log = make_log(
      {
          {0, 0, EventType::issued, 23.0},                // exactly at the window start: counts
          {0, 1, EventType::issued, 29.5},                // counts -> member 0 has 0 left
          {1, 0, EventType::issued, 23.0 - 1.0 / 86400},  // one second before: does not count
          {1, 4, EventType::issued, 30.0},                // at plan time: does not count
          {1, 4, EventType::claimed, 25.0},               // not an issue
          {2, 4, EventType::issued, 24.0},  // a gift: gift cap used up, 1 general slot left
          {3, 0, EventType::issued, 20.0},  // outside
          {3, 2, EventType::issued, 28.0},
      },
      5, 6);
  const CompiledPolicy c = p.compile(cat, users, kPlan, nullptr, &log);
  EXPECT_EQ(c.constraints.member_capacity, (std::vector<std::int32_t>{0, 2, 1, 1, 2}));
  EXPECT_EQ(c.member_block,
            (std::vector<ExclusionReason>{ExclusionReason::member_cap, ExclusionReason::none,
                                          ExclusionReason::none, ExclusionReason::none,
                                          ExclusionReason::none}));
  ASSERT_EQ(c.constraints.member_kind_capacity.size(), 5u * kNumBenefitKinds);
  const int gift = static_cast<int>(BenefitKind::gift);
  for (Index u = 0; u < 5; ++u) {
    for (int kk = 0; kk < kNumBenefitKinds; ++kk) {
      const std::int32_t expected = kk == gift ? (u == 2 ? 0 : 1) : 3;
      EXPECT_EQ(
          c.constraints.member_kind_capacity[static_cast<std::size_t>(u) * kNumBenefitKinds + kk],
          expected)
          << u << " " << kk;
    }
  }
  EXPECT_NO_THROW(c.constraints.validate(5, 6));

  // Frequency cap: two contacts in 7 days block; benefits issued at the same second are one.
  const Policy f = Policy::from_string(
      R"({"max_per_member": 2, "frequency_cap": {"period_days": 7, "max_contacts": 2}})");
  const EventLog contacts = make_log(
      {
          {0, 0, EventType::issued, 24.0},
          {0, 1, EventType::issued, 24.0},  // one contact
          {1, 0, EventType::issued, 24.0},
          {1, 1, EventType::issued, 26.0},  // two contacts
          {2, 0, EventType::issued, 23.0},
          {2, 1, EventType::issued, 22.9},  // one inside
          {3, 0, EventType::viewed, 24.0},
          {3, 1, EventType::viewed, 26.0},  // not contacts
      },
      4, 6);
  const CompiledPolicy fc = f.compile(cat, users, kPlan, nullptr, &contacts);
  EXPECT_EQ(fc.constraints.member_capacity, (std::vector<std::int32_t>{2, 0, 2, 2, 2}));
  EXPECT_EQ(fc.member_block[1], ExclusionReason::frequency_cap);
  EXPECT_EQ(fc.member_block[0], ExclusionReason::none);
  EXPECT_EQ(fc.member_block[4], ExclusionReason::none);  // beyond the history's members
  // A history indexed differently is rejected.
  const EventLog wide = make_log({{0, 0, EventType::issued, 1.0}}, 9, 6);
  PERKREC_EXPECT_THROW_MSG(f.compile(cat, users, kPlan, nullptr, &wide), InputError, "history");
}

TEST(Policy, QuietHoursAndSendTime) {
  const Policy p = Policy::from_string(
      R"({"quiet_hours": {"start_hour": 22, "end_hour": 8, "utc_offset_column": "utc_offset"}})");
  const Timestamp day = parse_utc_time("2026-11-23", "t");
  const Timestamp h = kSecondsPerHour;
  EXPECT_EQ(p.send_time(day + 12 * h), day + 12 * h);  // outside
  EXPECT_EQ(p.send_time(day + 23 * h), day + 32 * h);  // wraps to 08:00 next day
  EXPECT_EQ(p.send_time(day + 3 * h), day + 8 * h);
  EXPECT_EQ(p.send_time(day + 22 * h), day + 32 * h);  // start is quiet
  EXPECT_EQ(p.send_time(day + 8 * h), day + 8 * h);    // end is not
  EXPECT_EQ(p.send_time(day + 8 * h - 1), day + 8 * h);
  // UTC+5.5: 17:00 UTC is 22:30 local -> next send at 08:00 local = 02:30 UTC next day.
  EXPECT_EQ(p.send_time(day + 17 * h, 5.5), day + 26 * h + 30 * 60);
  // UTC-8: 10:00 UTC is 02:00 local -> 08:00 local = 16:00 UTC.
  EXPECT_EQ(p.send_time(day + 10 * h, -8), day + 16 * h);
  PERKREC_EXPECT_THROW_MSG(p.send_time(day, 15), InputError, "utc_offset_hours");
  // A daytime window (start < end).
  const Policy lunch =
      Policy::from_string(R"({"quiet_hours": {"start_hour": 12, "end_hour": 13.5}})");
  EXPECT_EQ(lunch.send_time(day + 12 * h + 60), day + 13 * h + 30 * 60);
  EXPECT_EQ(lunch.send_time(day + 11 * h), day + 11 * h);
  EXPECT_EQ(Policy{}.send_time(day + 23 * h), day + 23 * h);
  // Compiled: per-member offsets from the column (missing = 0).
  const CompiledPolicy c = p.compile(small_catalog(), small_users(), kPlan);
  EXPECT_EQ(c.utc_offset_hours, (std::vector<float>{0, 5.5f, -8, 0, 9}));
  EXPECT_EQ(c.send_time(day + 17 * h, 1), day + 26 * h + 30 * 60);
  EXPECT_EQ(c.send_time(day + 23 * h, 3), day + 32 * h);
  EXPECT_EQ(c.send_time(day + 12 * h, 4), day + 12 * h);  // 21:00 local (UTC+9): not quiet
  EXPECT_EQ(c.send_time(day + 14 * h, 4), day + 23 * h);  // 23:00 local -> 08:00 local
  PERKREC_EXPECT_THROW_MSG(c.send_time(day, 5), InputError, "member out of range");
}

// ---- property test: masks equal a naive per-pair evaluation -------------------------------------

struct RandomWorld {
  Catalog catalog;
  UserTable users;
  SegmentAssignment segments;
};

RandomWorld random_world(std::mt19937_64& rng, Index n_users, Index n_benefits) {
  RandomWorld w;
  const std::vector<std::string> scen = {"regular", "holiday", "member_day"};
  const std::vector<std::string> tags = {"a", "b", "c"};
  const std::vector<std::string> channels = {"", "app", "email"};
  std::vector<Benefit> v(static_cast<std::size_t>(n_benefits));
  for (Index b = 0; b < n_benefits; ++b) {
    Benefit& x = v[static_cast<std::size_t>(b)];
    x.id = "B" + std::to_string(b);
    x.kind = static_cast<BenefitKind>(rng() % kNumBenefitKinds);
    x.scope = static_cast<Scope>(rng() % kNumScopes);
    if (x.scope != Scope::all) x.scope_value = "v" + std::to_string(rng() % 3);
    x.face_value = static_cast<double>(rng() % 30);
    x.threshold = static_cast<double>(rng() % 3) * 50;
    for (const auto& s : scen)
      if (rng() % 2) x.scenarios.push_back(s);
    for (const auto& t : tags)
      if (rng() % 3 == 0) x.tags.push_back(t);
    x.channel = channels[rng() % 3];
    x.inventory = rng() % 8 == 0 ? 0 : -1;
    if (x.kind == BenefitKind::threshold_discount) x.threshold = 100;
    if (x.kind == BenefitKind::percent_off) x.discount_rate = 0.1;
  }
  w.catalog = Catalog(v);
  w.users = UserTable(IdMap::range(n_users));
  std::vector<std::int32_t> tier(static_cast<std::size_t>(n_users));
  std::vector<double> age(static_cast<std::size_t>(n_users));
  w.segments.names = {"s0", "s1", "s2"};
  w.segments.codes.resize(static_cast<std::size_t>(n_users));
  for (std::size_t u = 0; u < tier.size(); ++u) {
    tier[u] = static_cast<std::int32_t>(rng() % 5) - 1;
    age[u] = rng() % 10 == 0 ? std::nan("") : static_cast<double>(18 + rng() % 60);
    w.segments.codes[u] = static_cast<std::int32_t>(rng() % 4) - 1;
  }
  w.users.add_categorical("tier", tier, {"basic", "silver", "gold", "platinum"});
  w.users.add_numeric("age", age);
  return w;
}

std::string random_policy_text(std::mt19937_64& rng, Timestamp plan) {
  const std::vector<std::string> kinds = {"discount", "gift", "points", "percent_off",
                                          "member_exclusive"};
  auto pick = [&](const std::vector<std::string>& from) {
    Json a = Json::array();
    for (const auto& s : from)
      if (rng() % 3 == 0) a.push_back(s);
    if (a.empty()) a.push_back(from[rng() % from.size()]);
    return a;
  };
  Json rules = Json::array();
  const int n_rules = static_cast<int>(rng() % 7);
  for (int i = 0; i < n_rules; ++i) {
    Json r;
    r["name"] = "r" + std::to_string(i);
    const int effect = static_cast<int>(rng() % 3);
    r["effect"] = effect == 0 ? "deny" : effect == 1 ? "require" : "window";
    Json sel = Json::object();
    if (rng() % 2) sel["kinds"] = pick(kinds);
    if (rng() % 4 == 0) sel["scenarios"] = pick({"regular", "holiday", "member_day"});
    if (rng() % 4 == 0) sel["tags"] = pick({"a", "b", "c"});
    if (rng() % 5 == 0) sel["scopes"] = pick({"all", "category", "brand", "tier"});
    if (rng() % 5 == 0) sel["channels"] = pick({"", "app", "email"});
    if (rng() % 5 == 0) sel["face_value"] = Json{{"min", static_cast<double>(rng() % 15)}};
    if (rng() % 6 == 0)
      sel["ids"] =
          Json::array({"B" + std::to_string(rng() % 20), "B" + std::to_string(rng() % 20)});
    if (!sel.empty()) r["benefits"] = sel;
    Json mem = Json::object();
    if (rng() % 3 == 0) mem["segments"] = pick({"s0", "s1", "s2"});
    Json attrs = Json::array();
    if (rng() % 2) {
      const int op = static_cast<int>(rng() % 4);
      const char* ops[] = {"==", "!=", "in", "not_in"};
      Json c{{"column", "tier"}, {"op", ops[op]}};
      c["value"] = op < 2 ? Json(pick({"basic", "silver", "gold", "platinum"})[0])
                          : pick({"basic", "silver", "gold", "platinum"});
      attrs.push_back(c);
    }
    if (rng() % 2) {
      const int op = static_cast<int>(rng() % 7);
      const char* ops[] = {"<", "<=", ">", ">=", "==", "!=", "between"};
      Json c{{"column", "age"}, {"op", ops[op]}};
      const double a = static_cast<double>(18 + rng() % 60);
      c["value"] = op == 6 ? Json::array({a, a + static_cast<double>(rng() % 20)}) : Json(a);
      attrs.push_back(c);
    }
    if (!attrs.empty()) mem["attributes"] = attrs;
    if (!mem.empty()) r["members"] = mem;
    if (effect == 2) {
      const Timestamp from =
          plan + static_cast<Timestamp>(rng() % 5) * kSecondsPerDay - 2 * kSecondsPerDay;
      r["from"] = from;
      if (rng() % 2) r["until"] = from + static_cast<Timestamp>(1 + rng() % 3) * kSecondsPerDay;
    }
    rules.push_back(r);
  }
  return Json{{"rules", rules}}.dump();
}

// Independent member evaluation straight from the user table.
bool naive_member(const MemberCondition& m, const UserTable& users, const SegmentAssignment& seg,
                  Index u) {
  if (!m.segments.empty()) {
    const std::int32_t s = seg.codes[static_cast<std::size_t>(u)];
    if (s < 0) return false;
    if (std::find(m.segments.begin(), m.segments.end(), seg.names[static_cast<std::size_t>(s)]) ==
        m.segments.end())
      return false;
  }
  for (const AttributeCondition& c : m.attributes) {
    if (users.type(c.column) == UserTable::ColumnType::categorical) {
      const std::int32_t code = users.codes(c.column)[static_cast<std::size_t>(u)];
      if (code < 0) return false;
      const std::string& v = users.categories(c.column)[static_cast<std::size_t>(code)];
      const bool in = std::find(c.strings.begin(), c.strings.end(), v) != c.strings.end();
      const bool negate =
          c.op == AttributeCondition::Op::ne || c.op == AttributeCondition::Op::not_in;
      if (in == negate) return false;
    } else {
      const double v = users.numeric(c.column)[static_cast<std::size_t>(u)];
      if (std::isnan(v)) return false;
      const double a = c.numbers[0];
      bool ok = false;
      switch (c.op) {
        case AttributeCondition::Op::lt:
          ok = v < a;
          break;
        case AttributeCondition::Op::le:
          ok = v <= a;
          break;
        case AttributeCondition::Op::gt:
          ok = v > a;
          break;
        case AttributeCondition::Op::ge:
          ok = v >= a;
          break;
        case AttributeCondition::Op::eq:
          ok = v == a;
          break;
        case AttributeCondition::Op::ne:
          ok = v != a;
          break;
        case AttributeCondition::Op::between:
          ok = v >= a && v <= c.numbers[1];
          break;
        default:
          break;
      }
      if (!ok) return false;
    }
  }
  return true;
}

std::int32_t naive_rule(const Policy& p, const RandomWorld& w, Timestamp plan, Index u, Index b) {
  const Benefit& benefit = w.catalog[b];
  for (std::size_t i = 0; i < p.rules.size(); ++i) {
    const EligibilityRule& r = p.rules[i];
    if (!r.benefits.matches(benefit)) continue;
    const bool m = naive_member(r.members, w.users, w.segments, u);
    bool excluded = false;
    if (r.effect == EligibilityRule::Effect::deny) excluded = m;
    if (r.effect == EligibilityRule::Effect::require) excluded = !m;
    if (r.effect == EligibilityRule::Effect::window) {
      const bool inside =
          (r.from == kNoTime || plan >= r.from) && (r.until == kNoTime || plan < r.until);
      excluded = m && !inside;
    }
    if (excluded) return static_cast<std::int32_t>(i);
  }
  return benefit.inventory == 0 ? static_cast<std::int32_t>(p.rules.size()) : -1;
}

TEST(Policy, RandomPoliciesMatchNaiveEvaluationForAnyThreadCount) {
  std::mt19937_64 rng(7);
  int checked = 0;
  std::int64_t by_rule = 0, eligible = 0, multi_mask = 0;
  for (int trial = 0; trial < 60; ++trial) {
    const RandomWorld w = random_world(rng, 200, 20);
    const Timestamp plan = day_time(10);
    Policy p;
    try {
      p = Policy::from_string(random_policy_text(rng, plan));
    } catch (const ConfigError&) {
      continue;  // a random deny/require contradiction
    }
    const CompiledPolicy c1 = p.compile(w.catalog, w.users, plan, &w.segments, nullptr, 1);
    for (Index u = 0; u < 200; ++u) {
      for (Index b = 0; b < 20; ++b) {
        const std::int32_t expected = naive_rule(p, w, plan, u, b);
        ASSERT_EQ(c1.masks.user_rule(u, b), expected)
            << "trial " << trial << " u " << u << " b " << b;
        ASSERT_EQ(c1.masks.eligible(u, b), expected < 0);
        by_rule += expected >= 0 && expected < static_cast<std::int32_t>(p.rules.size());
        eligible += expected < 0;
      }
    }
    for (int threads : {2, 3}) {
      const CompiledPolicy ct = p.compile(w.catalog, w.users, plan, &w.segments, nullptr, threads);
      ASSERT_EQ(ct.masks.user_masks(), c1.masks.user_masks());
      ASSERT_EQ(ct.masks.n_masks(), c1.masks.n_masks());
      for (Index k = 0; k < c1.masks.n_masks(); ++k) {
        for (Index b = 0; b < 20; ++b) ASSERT_EQ(ct.masks.rule(k, b), c1.masks.rule(k, b));
      }
    }
    // Masks are shared: no two masks have identical rule rows (mask 0 = all eligible).
    for (Index a = 0; a < c1.masks.n_masks(); ++a) {
      for (Index bb = a + 1; bb < c1.masks.n_masks(); ++bb) {
        bool same = true;
        for (Index b = 0; b < 20; ++b) same = same && c1.masks.rule(a, b) == c1.masks.rule(bb, b);
        EXPECT_FALSE(same) << "masks " << a << " and " << bb << " are identical";
      }
    }
    // The compiled policy round-trips through JSON and compiles identically.
    const CompiledPolicy again =
        Policy::from_json(p.to_json()).compile(w.catalog, w.users, plan, &w.segments);
    ASSERT_EQ(again.masks.user_masks(), c1.masks.user_masks());
    multi_mask += c1.masks.n_masks() > 2;
    ++checked;
  }
  EXPECT_GE(checked, 40);
  // The random policies exercise both outcomes and split members into several masks.
  EXPECT_GT(by_rule, checked * 200 * 20 / 10);
  EXPECT_GT(eligible, checked * 200 * 20 / 10);
  EXPECT_GT(multi_mask, checked / 4);
}

TEST(Policy, CapsAreThreadCountInvariant) {
  std::mt19937_64 rng(11);
  const RandomWorld w = random_world(rng, 300, 20);
  std::vector<Row> rows;
  for (int i = 0; i < 3000; ++i) {
    rows.push_back({static_cast<Index>(rng() % 300), static_cast<Index>(rng() % 20),
                    rng() % 3 == 0 ? EventType::viewed : EventType::issued,
                    static_cast<double>(rng() % 40) / 2});
  }
  const EventLog log = make_log(rows, 300, 20);
  const Policy p =
      Policy::from_string(R"({"max_per_member": 3, "caps": [{"period_days": 10, "max": 5},
      {"period_days": 3, "max": 1, "kind": "gift"}], "frequency_cap": {"period_days": 2, "max_contacts": 2}})");
  const CompiledPolicy c1 = p.compile(w.catalog, w.users, day_time(20), nullptr, &log, 1);
  const CompiledPolicy c3 = p.compile(w.catalog, w.users, day_time(20), nullptr, &log, 3);
  EXPECT_EQ(c1.constraints.member_capacity, c3.constraints.member_capacity);
  EXPECT_EQ(c1.constraints.member_kind_capacity, c3.constraints.member_kind_capacity);
  EXPECT_EQ(c1.member_block, c3.member_block);
  int blocked = 0, reduced = 0;
  for (std::size_t u = 0; u < 300; ++u) {
    blocked += c1.member_block[u] == ExclusionReason::frequency_cap;
    reduced += c1.constraints.member_capacity[u] > 0 && c1.constraints.member_capacity[u] < 3;
    EXPECT_GE(c1.constraints.member_capacity[u], 0);
    EXPECT_LE(c1.constraints.member_capacity[u], 3);
  }
  EXPECT_GT(blocked, 0);
  EXPECT_NO_THROW(c1.constraints.validate(300, 20));
}

// Policy::compile's stages (issue 17): the rule stage (eligibility masks) reads only the
// rules and the inventory, the cap stage (capacities) only the caps, the frequency cap and
// the history; compile is the two side by side.
TEST(PolicyStages, RuleStageIgnoresCapsAndCapStageIgnoresRules) {
  const Catalog cat = small_catalog();
  const UserTable users = small_users();
  const SegmentAssignment seg = small_segments();
  const char* rules = R"("rules": [
      {"effect": "require", "benefits": {"kinds": ["member_exclusive"]},
       "members": {"attributes": [{"column": "tier", "op": "in", "value": ["gold", "platinum"]}]}},
      {"effect": "deny", "benefits": {"kinds": ["points"]}, "members": {"segments": ["dormant"]}}])";
  const char* caps =
      R"("max_per_member": 3, "caps": [{"period_days": 7, "max": 2}, {"period_days": 7, "max": 1, "kind": "gift"}],
      "frequency_cap": {"period_days": 7, "max_contacts": 2})";
  const Policy only_rules = Policy::from_string(std::string("{") + rules + "}");
  const Policy only_caps = Policy::from_string(std::string("{") + caps + "}");
  const Policy both = Policy::from_string(std::string("{") + caps + ", " + rules + "}");
  const EventLog log = make_log(
      {
          {0, 0, EventType::issued, 23.0},
          {0, 1, EventType::issued, 23.0},  // cap used up, one contact
          {1, 0, EventType::issued, 24.0},
          {1, 1, EventType::issued, 26.0},  // two contacts
          {2, 4, EventType::issued, 24.0},  // a gift: 1 slot left
      },
      5, 6);
  std::vector<std::int64_t> inventory;
  for (Index b = 0; b < cat.size(); ++b) inventory.push_back(cat[b].inventory);
  for (int threads : {1, 2}) {
    const EligibilityMasks a =
        detail::policy_masks(only_rules, cat, users, kPlan, &seg, inventory, threads);
    const EligibilityMasks b =
        detail::policy_masks(both, cat, users, kPlan, &seg, inventory, threads);
    const CompiledPolicy full = both.compile(cat, users, kPlan, &seg, &log, threads);
    for (Index u = 0; u < 5; ++u) {
      for (Index j = 0; j < 6; ++j) {
        EXPECT_EQ(a.user_rule(u, j), b.user_rule(u, j)) << u << " " << j;
        EXPECT_EQ(full.masks.user_rule(u, j), a.user_rule(u, j)) << u << " " << j;
      }
    }
    // Known answers: member_exclusive (B3) only for gold / platinum (members 0, 2); points (B2)
    // denied to the dormant member 3; the gift B4 has inventory 0 (rule index 2 = "inventory").
    for (Index u = 0; u < 5; ++u) {
      EXPECT_EQ(a.user_rule(u, 3), u == 0 || u == 2 ? -1 : 0) << u;
      EXPECT_EQ(a.user_rule(u, 2), u == 3 ? 1 : -1) << u;
      EXPECT_EQ(a.user_rule(u, 4), 2) << u;
    }
    // No caps: every member keeps max_per_member whatever the rules.
    detail::PolicyCapacities none;
    detail::policy_capacities(only_rules, cat, 5, kPlan, &log, threads, none);
    EXPECT_EQ(none.member_capacity, std::vector<std::int32_t>(5, 1));
    EXPECT_TRUE(none.member_kind_capacity.empty());
    detail::PolicyCapacities with_rules, without;
    detail::policy_capacities(both, cat, 5, kPlan, &log, threads, with_rules);
    detail::policy_capacities(only_caps, cat, 5, kPlan, &log, threads, without);
    EXPECT_EQ(with_rules.member_capacity, without.member_capacity);
    EXPECT_EQ(with_rules.member_kind_capacity, without.member_kind_capacity);
    EXPECT_EQ(with_rules.member_block, without.member_block);
    EXPECT_EQ(without.member_capacity, (std::vector<std::int32_t>{0, 0, 1, 2, 2}));
    EXPECT_EQ(without.member_block,
              (std::vector<ExclusionReason>{ExclusionReason::member_cap,
                                            ExclusionReason::frequency_cap, ExclusionReason::none,
                                            ExclusionReason::none, ExclusionReason::none}));
    EXPECT_EQ(full.constraints.member_capacity, without.member_capacity);
    EXPECT_EQ(full.member_block, without.member_block);
  }
}

}  // namespace
}  // namespace perkrec
