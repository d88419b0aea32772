// Policy: the rules and limits an issued plan must respect, as strict JSON, compiled once per
// plan into per-member eligibility masks and the Allocator's constraints.
//
// An operator writes what may be issued (eligibility rules), how much (caps, budget,
// inventory, quotas) and when (quiet hours). `Policy::compile` turns that into
//   - EligibilityMasks: one bitset over the catalog per distinct member signature, so checking
//     a (member, benefit) pair while scoring is one load and one bit test;
//   - AllocationConstraints: budget, per-member capacity (caps minus history), inventory,
//     kind caps, non-stackable groups, segment quotas, minimum return per cost, diversity;
//   - per-member blocks (frequency cap / caps used up), rule names, segment names, UTC offsets.
//
// JSON schema (strict: unknown or duplicate keys, wrong types and out-of-range values throw
// ConfigError naming the JSON pointer; every key is optional):
//   {
//     "budget": 50000,            // >= 0: total expected cost of the plan; absent = unlimited
//     "issue_cost": 0.02,         // >= 0: cost of issuing one benefit (message, handling)
//     "max_per_member": 2,        // >= 1 (default 1): benefits per member in this plan
//     "max_per_kind": 1,          // >= 0 (default 0 = no limit): per member and benefit kind
//                                 //   in this plan; must be <= max_per_member
//     "min_return_per_cost": 1.0, // >= 0: drop candidates whose expected return / expected
//                                 //   cost is below this
//     "diversity": 0.3,           // [0, 1]: a member's 2nd, 3rd, ... benefit of an already
//                                 //   chosen kind counts value x (1 - diversity)
//     "caps": [                   // per-member caps over trailing periods, counting the
//                                 //   member's `issued` events in the history log
//       {"period_days": 30, "max": 4},                  // period_days > 0, max >= 0
//       {"period_days": 30, "max": 1, "kind": "gift"}   // optional kind: count that kind only
//     ],
//     "frequency_cap": {"period_days": 7, "max_contacts": 2},
//                                 // a member contacted max_contacts times (distinct issue
//                                 //   timestamps in the history) in the trailing period gets
//                                 //   nothing; period_days > 0, max_contacts >= 0
//     "quiet_hours": {"start_hour": 22, "end_hour": 8, "utc_offset_column": "utc_offset"},
//                                 // no sends in [start, end) member-local time; hours in
//                                 //   [0, 24), start != end, start > end wraps midnight;
//                                 //   utc_offset_column (optional): numeric UserTable column
//                                 //   of hours east of UTC in [-14, 14] (missing = 0)
//     "inventory": {"B007": 500}, // benefit id -> units left (>= 0, -1 = unlimited); overrides
//                                 //   the catalog's inventory. Inventory 0 = ineligible.
//     "non_stackable": [          // groups: a member gets at most one benefit of each group;
//       ["B001", "B002"],         //   an array of ids is short for {"ids": [...]}; any other
//       {"kinds": ["threshold_discount", "percent_off"]}   // group is a benefit selector.
//     ],                          //   A benefit may belong to one group only.
//     "segment_quotas": {         // segment name -> limits over this plan's members
//       "dormant": {"max_members": 1000, "max_cost": 2000}   // each >= 0, or -1 = no limit
//     },
//     "rules": [                  // eligibility rules, evaluated in order
//       {"name": "exclusive perks for gold+",   // optional (default "rule <index>")
//        "effect": "require",                   // required: deny | require | window
//        "benefits": {"kinds": ["member_exclusive"]},           // selector, default all
//        "members": {"attributes": [{"column": "tier", "op": "in",
//                                    "value": ["gold", "platinum"]}]}},  // default all
//       {"name": "no points for new members", "effect": "deny",
//        "benefits": {"kinds": ["points"]}, "members": {"segments": ["new_member"]}},
//       {"name": "holiday window", "effect": "window", "benefits": {"scenarios": ["holiday"]},
//        "from": "2026-12-01T00:00:00Z", "until": "2027-01-01T00:00:00Z"}
//     ]
//   }
//
// Effects:
//   deny     matching members may not get matching benefits;
//   require  matching benefits go only to matching members;
//   window   matching benefits (for matching members) only when the plan time lies in
//            [from, until); "from" / "until" are only allowed here, at least one is needed.
//            Times: "YYYY-MM-DD", "YYYY-MM-DDTHH:MM:SSZ" (UTC) or integer seconds since epoch.
// Benefit selector (all given fields must match; within a field any listed value matches;
// empty = every benefit): "ids", "kinds" (catalog kind names), "scopes" (all | category |
// brand | tier), "scope_values", "scenarios" (any shared), "channels", "tags" (any shared),
// "face_value" and "threshold": {"min": lo, "max": hi} inclusive ranges (either end optional).
// Member conditions (all must hold; empty = every member): "segments" (the member's segment
// is one of these names), "attributes": [{"column", "op", "value"}] on UserTable columns.
//   categorical columns: op ==, !=  (value a string), in, not_in (value an array of strings);
//   numeric columns: op <, <=, >, >=, ==, != (a number), between (an array [lo, hi],
//   inclusive). A missing value (NaN / code -1) satisfies no condition, like SQL NULL.
//
// Contradictions are ConfigError naming the pointer: a negative budget or issue cost,
// max_per_kind > max_per_member, a window whose until is not after from, quiet hours with
// start == end, a quota below -1, a range with min > max, a benefit (id or kind) listed in two
// non-stackable groups, a deny and a require rule over the same benefits and members, an
// unknown kind or scope name, from/until on a rule that is not a window.
// At compile time (InputError naming the rule / pointer): an unknown attribute column or a
// condition of the wrong type for the column, an unknown segment name or segment conditions
// without segments, an unknown benefit id in a selector or in "inventory", a utc offset
// outside [-14, 14]. A benefit selected by two non-stackable groups is a ConfigError.
//
// Compiled eligibility: rule i of the JSON list has index i in EligibilityMasks::rule; index
// rules.size() is the built-in rule "inventory" (inventory 0). `rule(mask, b)` names the first
// rule, in that order, that excludes b. Members share a mask when every rule's member
// condition gives them the same answer (hashing that signature), so masks are few.
//
// Caps and frequency caps count `issued` events with time in [plan_time - period_days x
// 86400, plan_time): an event exactly period_days before the plan counts, an event at or after
// plan_time does not.
//
// Example:
//   perkrec::Policy policy = perkrec::Policy::from_string(R"({"budget": 1000,
//       "max_per_member": 2, "rules": [{"effect": "deny", "benefits": {"kinds": ["gift"]},
//       "members": {"attributes": [{"column": "tier", "op": "==", "value": "basic"}]}}]})");
//   perkrec::CompiledPolicy compiled = policy.compile(catalog, users, plan_time);
//   bool ok = compiled.masks.eligible(member, benefit);
//
// Cost: compile is O(members x rules + distinct signatures x benefits x rules + history
// events), parallel over members, deterministic for any thread count.
// Thread safety: a Policy is plain data; const methods are safe from many threads.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/error.hpp"
#include "perkrec/core/json.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/data/catalog.hpp"
#include "perkrec/data/event_log.hpp"
#include "perkrec/data/user_table.hpp"
#include "perkrec/decide/types.hpp"
#include "perkrec/models/preference.hpp"

namespace perkrec {

/// Which benefits a rule or group applies to. Empty fields match everything.
struct BenefitSelector {
  std::vector<std::string> ids;
  std::vector<std::string> kinds;   ///< BenefitKind names (checked when parsed)
  std::vector<std::string> scopes;  ///< Scope names (checked when parsed)
  std::vector<std::string> scope_values;
  std::vector<std::string> scenarios;  ///< matches when the benefit has any of these
  std::vector<std::string> channels;
  std::vector<std::string> tags;  ///< matches when the benefit has any of these
  double face_value_min = -std::numeric_limits<double>::infinity();
  double face_value_max = std::numeric_limits<double>::infinity();
  double threshold_min = -std::numeric_limits<double>::infinity();
  double threshold_max = std::numeric_limits<double>::infinity();

  /// True when no field restricts anything.
  bool all() const;
  /// Whether benefit `b` matches (ids are compared to b.id).
  bool matches(const Benefit& b) const;
  bool operator==(const BenefitSelector& o) const;
};

/// One condition on a UserTable column.
struct AttributeCondition {
  enum class Op : std::uint8_t { eq, ne, in, not_in, lt, le, gt, ge, between };
  std::string column;
  Op op = Op::eq;
  std::vector<std::string> strings;  ///< categorical values (eq / ne: one; in / not_in: any)
  std::vector<double> numbers;       ///< numeric values (one; between: lo, hi)
  bool operator==(const AttributeCondition& o) const;
};

/// Name of an operator as written in JSON ("==", "in", "between", ...).
PERKREC_INLINE const char* to_string(AttributeCondition::Op op);

/// Which members a rule applies to. Empty = every member.
struct MemberCondition {
  std::vector<std::string> segments;           ///< any of these segment names
  std::vector<AttributeCondition> attributes;  ///< all must hold
  bool all() const { return segments.empty() && attributes.empty(); }
  bool operator==(const MemberCondition& o) const {
    return segments == o.segments && attributes == o.attributes;
  }
};

/// One eligibility rule (see the file comment for the effects).
struct EligibilityRule {
  enum class Effect : std::uint8_t { deny, require, window };
  std::string name;
  Effect effect = Effect::deny;
  BenefitSelector benefits;
  MemberCondition members;
  Timestamp from = kNoTime;   ///< window only; kNoTime = open start
  Timestamp until = kNoTime;  ///< window only; kNoTime = open end
  bool operator==(const EligibilityRule& o) const;
};

/// A cap on a member's issued benefits over a trailing period.
struct IssueCap {
  double period_days = 30;  ///< > 0
  std::int32_t max = 1;     ///< >= 0
  std::string kind;         ///< "" = all kinds, else a BenefitKind name
  bool operator==(const IssueCap& o) const {
    return period_days == o.period_days && max == o.max && kind == o.kind;
  }
};

/// Limits for one segment in this plan.
struct SegmentQuota {
  std::int64_t max_members = -1;  ///< >= 0, or -1 = no limit
  double max_cost = -1;           ///< >= 0, or -1 = no limit
  bool operator==(const SegmentQuota& o) const {
    return max_members == o.max_members && max_cost == o.max_cost;
  }
};

/// Policy::compile's result; see the file comment.
struct CompiledPolicy {
  EligibilityMasks masks;                     ///< rule index -> rule_names
  AllocationConstraints constraints;          ///< everything the Allocator must respect
  std::vector<ExclusionReason> member_block;  ///< per member: frequency_cap / member_cap when
                                              ///< the member can receive nothing, else none
  std::vector<std::string> rule_names;        ///< policy rules in order, then "inventory"
  std::vector<std::string> segment_names;     ///< constraints.member_segment codes -> names
  std::vector<float> utc_offset_hours;        ///< per member (the policy's column, else 0)
  double issue_cost = 0.0;                    ///< per issued benefit
  bool has_quiet_hours = false;
  double quiet_start_hour = 0.0;
  double quiet_end_hour = 0.0;

  /// Earliest time >= t outside the quiet hours in member u's local time.
  Timestamp send_time(Timestamp t, Index u) const;
};

struct Policy {
  double budget = std::numeric_limits<double>::infinity();  ///< >= 0; inf = unlimited
  double issue_cost = 0.0;                                  ///< >= 0
  int max_per_member = 1;                                   ///< >= 1
  int max_per_kind = 0;                                     ///< [0, max_per_member]
  double min_return_per_cost = 0.0;                         ///< >= 0
  double diversity = 0.0;                                   ///< [0, 1]
  std::vector<IssueCap> caps;
  bool has_frequency_cap = false;
  double frequency_period_days = 7;         ///< > 0
  std::int32_t frequency_max_contacts = 1;  ///< >= 0
  bool has_quiet_hours = false;
  double quiet_start_hour = 22;                                 ///< [0, 24)
  double quiet_end_hour = 8;                                    ///< [0, 24), != start
  std::string utc_offset_column;                                ///< "" = every member at UTC
  std::vector<std::pair<std::string, std::int64_t>> inventory;  ///< id -> units, -1 unlimited
  std::vector<BenefitSelector> non_stackable;
  std::vector<std::pair<std::string, SegmentQuota>> segment_quotas;
  std::vector<EligibilityRule> rules;

  /// Strict parsing of the schema above; ConfigError naming the JSON pointer.
  static Policy from_json(const Json& j);
  /// parse_json_strict + from_json.
  static Policy from_string(std::string_view text);
  /// The schema above; from_json(to_json()) == *this.
  Json to_json() const;
  /// ConfigError naming the JSON pointer of the first contradiction or bad value.
  void validate() const;

  /// Compiles for `users` (one row per member, the rows of the plan) at `plan_time`.
  /// segments: optional (codes per member + names) for segment conditions and quotas;
  /// history: optional EventLog with the same member and benefit indexing (it may hold fewer
  /// members or benefits) for caps and the frequency cap. InputError for data that does not
  /// fit the policy (see the file comment); the policy is validated first.
  CompiledPolicy compile(const Catalog& catalog, const UserTable& users, Timestamp plan_time,
                         const SegmentAssignment* segments = nullptr,
                         const EventLog* history = nullptr, int num_threads = 0) const;

  /// Earliest time >= t outside the quiet hours for a member at `utc_offset_hours`.
  Timestamp send_time(Timestamp t, double utc_offset_hours = 0.0) const;

  bool operator==(const Policy& o) const;
};

namespace detail {
/// Policy::compile's rule stage: the eligibility masks from the rules alone (and inventory
/// 0 = the built-in rule "inventory", index rules.size()), for `users` at `plan_time`.
/// inventory_units: per benefit, as in AllocationConstraints::inventory. Same errors as compile.
PERKREC_INLINE EligibilityMasks policy_masks(const Policy& policy, const Catalog& catalog,
                                             const UserTable& users, Timestamp plan_time,
                                             const SegmentAssignment* segments,
                                             const std::vector<std::int64_t>& inventory_units,
                                             int num_threads);

/// Policy::compile's cap stage: per member, the slots left under max_per_member, the caps and
/// the frequency cap given the `issued` events of `history` (may be null), and the block
/// reason when nothing is left; per member and kind the kind caps' slots (empty without one).
struct PolicyCapacities {
  std::vector<std::int32_t> member_capacity;
  std::vector<std::int32_t> member_kind_capacity;
  std::vector<ExclusionReason> member_block;
};
PERKREC_INLINE void policy_capacities(const Policy& policy, const Catalog& catalog, Index n_users,
                                      Timestamp plan_time, const EventLog* history, int num_threads,
                                      PolicyCapacities& out);
}  // namespace detail

/// Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM:SS" with an optional "Z" (UTC), into seconds since
/// the epoch. Throws ConfigError starting with `context` for anything else.
PERKREC_INLINE Timestamp parse_utc_time(std::string_view text, const std::string& context);
/// Per rule of `compiled.rule_names`: how many (member, benefit) pairs it excludes (only the
/// first excluding rule of a pair counts). InputError when a mask names a rule outside
/// rule_names. O(masks x benefits + members).
PERKREC_INLINE std::vector<std::int64_t> excluded_pairs_by_rule(const CompiledPolicy& compiled);

/// Formats seconds since the epoch as "YYYY-MM-DDTHH:MM:SSZ".
PERKREC_INLINE std::string format_utc_time(Timestamp t);

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/decide/policy_impl.hpp"
#endif
