// Definitions for policy.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <unordered_map>

#include "perkrec/core/math.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/decide/policy.hpp"

namespace perkrec {

namespace detail {

// The quiet hours [start_hour, end_hour) of the member's local day, in seconds.
inline Timestamp quiet_shift(Timestamp t, double offset_hours, double start_hour, double end_hour) {
  return leave_daily_window(t, std::llround(offset_hours * 3600.0),
                            std::llround(start_hour * 3600.0), std::llround(end_hour * 3600.0));
}

inline bool is_benefit_kind_name(const std::string& name) {
  for (int k = 0; k < kNumBenefitKinds; ++k) {
    if (name == to_string(static_cast<BenefitKind>(k))) return true;
  }
  return false;
}

inline bool is_scope_name(const std::string& name) {
  for (int k = 0; k < kNumScopes; ++k) {
    if (name == to_string(static_cast<Scope>(k))) return true;
  }
  return false;
}

inline int benefit_kind_code(const std::string& name) {
  for (int k = 0; k < kNumBenefitKinds; ++k) {
    if (name == to_string(static_cast<BenefitKind>(k))) return k;
  }
  return -1;
}

inline bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

inline bool shares_any(const std::vector<std::string>& wanted,
                       const std::vector<std::string>& have) {
  for (const auto& w : wanted) {
    if (contains(have, w)) return true;
  }
  return false;
}

// ---- parsing ----------------------------------------------------------------------------------

using PolicyReader = JsonReader<ConfigError>;

inline void read_names(PolicyReader& r, const char* key, std::vector<std::string>& out,
                       bool (*valid)(const std::string&), const char* what) {
  if (!r.read(key, out)) return;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (valid != nullptr && !valid(out[i])) {
      r.fail_at(r.child_pointer(key) + "/" + std::to_string(i), std::string("unknown ") + what,
                Json(out[i]));
    }
  }
}

inline void read_range(PolicyReader& r, const char* key, double& lo, double& hi) {
  const Json* v = r.raw(key);
  if (v == nullptr) return;
  PolicyReader rr(*v, r.child_pointer(key), r.context());
  rr.read("min", lo);
  rr.read("max", hi);
  rr.finish();
}

inline BenefitSelector parse_selector(const Json& j, const std::string& pointer,
                                      const std::string& context) {
  BenefitSelector s;
  if (j.is_array()) {  // shorthand: a list of ids
    static const Json kEmpty = Json::object();
    PolicyReader dummy(kEmpty, pointer, context);
    dummy.convert(j, pointer, s.ids);
    return s;
  }
  PolicyReader r(j, pointer, context);
  r.read("ids", s.ids);
  read_names(r, "kinds", s.kinds, &is_benefit_kind_name, "benefit kind");
  read_names(r, "scopes", s.scopes, &is_scope_name, "scope");
  r.read("scope_values", s.scope_values);
  r.read("scenarios", s.scenarios);
  r.read("channels", s.channels);
  r.read("tags", s.tags);
  read_range(r, "face_value", s.face_value_min, s.face_value_max);
  read_range(r, "threshold", s.threshold_min, s.threshold_max);
  r.finish();
  return s;
}

inline AttributeCondition parse_condition(const Json& j, const std::string& pointer,
                                          const std::string& context) {
  using Op = AttributeCondition::Op;
  AttributeCondition c;
  PolicyReader r(j, pointer, context);
  r.require("column", c.column);
  std::string op;
  r.require("op", op);
  const Json* value = r.raw("value");
  r.finish();
  if (c.column.empty()) r.fail("column", "must not be empty");
  bool found = false;
  for (int k = 0; k <= static_cast<int>(Op::between); ++k) {
    if (op == to_string(static_cast<Op>(k))) {
      c.op = static_cast<Op>(k);
      found = true;
    }
  }
  if (!found) r.fail("op", "unknown operator (expected ==, !=, in, not_in, <, <=, >, >=, between)");
  if (value == nullptr) r.fail("value", "required key is missing");
  const std::string where = r.child_pointer("value");
  switch (c.op) {
    case Op::eq:
    case Op::ne:
      if (value->is_string()) {
        c.strings = {value->get<std::string>()};
      } else if (value->is_number()) {
        double d = 0;
        r.convert(*value, where, d);
        c.numbers = {d};
      } else {
        r.fail_at(where, "expected a string or a number", *value);
      }
      break;
    case Op::in:
    case Op::not_in:
      r.convert(*value, where, c.strings);
      if (c.strings.empty()) r.fail_at(where, "expected a non-empty array of strings", *value);
      break;
    case Op::lt:
    case Op::le:
    case Op::gt:
    case Op::ge: {
      double d = 0;
      r.convert(*value, where, d);
      c.numbers = {d};
      break;
    }
    case Op::between:
      r.convert(*value, where, c.numbers);
      if (c.numbers.size() != 2) r.fail_at(where, "expected [lo, hi]", *value);
      break;
  }
  return c;
}

inline MemberCondition parse_members(const Json& j, const std::string& pointer,
                                     const std::string& context) {
  MemberCondition m;
  PolicyReader r(j, pointer, context);
  r.read("segments", m.segments);
  if (const Json* a = r.raw("attributes")) {
    const std::string where = r.child_pointer("attributes");
    if (!a->is_array()) r.fail_at(where, "expected an array", *a);
    for (std::size_t i = 0; i < a->size(); ++i) {
      m.attributes.push_back(parse_condition((*a)[i], where + "/" + std::to_string(i), context));
    }
  }
  r.finish();
  return m;
}

inline Timestamp parse_time_value(const PolicyReader& r, const Json& v, const std::string& where) {
  Timestamp t = 0;
  if (v.is_string()) {
    t = parse_utc_time(v.get<std::string>(), r.context() + ": " + where);
  } else {
    r.convert(v, where, t);
  }
  // One range for times everywhere (core/types.hpp): what is accepted can be written back.
  if (t < kMinTimestamp || t >= kMaxTimestamp) {
    r.fail_at(where,
              detail::concat("time outside the supported range [", kMinTimestamp, ", ",
                             kMaxTimestamp, ") s (years 1900 to 2199)"),
              v);
  }
  return t;
}

inline EligibilityRule parse_rule(const Json& j, const std::string& pointer,
                                  const std::string& context, std::size_t index) {
  EligibilityRule rule;
  PolicyReader r(j, pointer, context);
  rule.name = "rule " + std::to_string(index);
  r.read("name", rule.name);
  std::string effect;
  r.require("effect", effect);
  if (effect == "deny") {
    rule.effect = EligibilityRule::Effect::deny;
  } else if (effect == "require") {
    rule.effect = EligibilityRule::Effect::require;
  } else if (effect == "window") {
    rule.effect = EligibilityRule::Effect::window;
  } else {
    r.fail("effect", "expected \"deny\", \"require\" or \"window\"");
  }
  if (const Json* b = r.raw("benefits"))
    rule.benefits = parse_selector(*b, r.child_pointer("benefits"), context);
  if (const Json* m = r.raw("members"))
    rule.members = parse_members(*m, r.child_pointer("members"), context);
  if (const Json* f = r.raw("from")) rule.from = parse_time_value(r, *f, r.child_pointer("from"));
  if (const Json* u = r.raw("until"))
    rule.until = parse_time_value(r, *u, r.child_pointer("until"));
  r.finish();
  return rule;
}

// ---- serialization ----------------------------------------------------------------------------

inline Json selector_to_json(const BenefitSelector& s) {
  Json j = Json::object();
  auto put = [&j](const char* key, const std::vector<std::string>& v) {
    if (!v.empty()) j[key] = v;
  };
  put("ids", s.ids);
  put("kinds", s.kinds);
  put("scopes", s.scopes);
  put("scope_values", s.scope_values);
  put("scenarios", s.scenarios);
  put("channels", s.channels);
  put("tags", s.tags);
  auto range = [&j](const char* key, double lo, double hi) {
    Json r = Json::object();
    if (std::isfinite(lo)) r["min"] = lo;
    if (std::isfinite(hi)) r["max"] = hi;
    if (!r.empty()) j[key] = r;
  };
  range("face_value", s.face_value_min, s.face_value_max);
  range("threshold", s.threshold_min, s.threshold_max);
  return j;
}

inline Json condition_to_json(const AttributeCondition& c) {
  using Op = AttributeCondition::Op;
  Json j{{"column", c.column}, {"op", to_string(c.op)}};
  switch (c.op) {
    case Op::eq:
    case Op::ne:
      if (!c.strings.empty()) {
        j["value"] = c.strings.front();
      } else if (!c.numbers.empty()) {
        j["value"] = c.numbers.front();
      }
      break;
    case Op::in:
    case Op::not_in:
      j["value"] = c.strings;
      break;
    case Op::between:
      j["value"] = c.numbers;
      break;
    default:
      if (!c.numbers.empty()) j["value"] = c.numbers.front();
  }
  return j;
}

[[noreturn]] inline void policy_fail(const std::string& context, const std::string& pointer,
                                     const std::string& what) {
  raise<ConfigError>(context, ": ", pointer, ": ", what);
}

inline void validate_selector(const BenefitSelector& s, const std::string& p,
                              const std::string& ctx) {
  for (std::size_t i = 0; i < s.kinds.size(); ++i) {
    if (!is_benefit_kind_name(s.kinds[i])) {
      policy_fail(ctx, p + "/kinds/" + std::to_string(i),
                  "unknown benefit kind (got \"" + s.kinds[i] + "\")");
    }
  }
  for (std::size_t i = 0; i < s.scopes.size(); ++i) {
    if (!is_scope_name(s.scopes[i])) {
      policy_fail(ctx, p + "/scopes/" + std::to_string(i),
                  "unknown scope (got \"" + s.scopes[i] + "\")");
    }
  }
  auto range = [&](const char* key, double lo, double hi) {
    if (std::isnan(lo) || std::isnan(hi) || lo > hi) {
      policy_fail(ctx, p + "/" + key, concat("min must be <= max (got ", lo, " > ", hi, ")"));
    }
  };
  range("face_value", s.face_value_min, s.face_value_max);
  range("threshold", s.threshold_min, s.threshold_max);
}

inline void validate_condition(const AttributeCondition& c, const std::string& p,
                               const std::string& ctx) {
  using Op = AttributeCondition::Op;
  if (c.column.empty()) policy_fail(ctx, p + "/column", "must not be empty");
  for (double v : c.numbers) {
    if (!std::isfinite(v)) policy_fail(ctx, p + "/value", "values must be finite");
  }
  const std::size_t ns = c.strings.size(), nn = c.numbers.size();
  bool ok = true;
  switch (c.op) {
    case Op::eq:
    case Op::ne:
      ok = ns + nn == 1;
      break;
    case Op::in:
    case Op::not_in:
      ok = ns >= 1 && nn == 0;
      break;
    case Op::lt:
    case Op::le:
    case Op::gt:
    case Op::ge:
      ok = ns == 0 && nn == 1;
      break;
    case Op::between:
      ok = ns == 0 && nn == 2;
      if (ok && c.numbers[0] > c.numbers[1]) {
        policy_fail(
            ctx, p + "/value",
            concat("between needs lo <= hi (got [", c.numbers[0], ", ", c.numbers[1], "])"));
      }
      break;
  }
  if (!ok) {
    policy_fail(ctx, p + "/value",
                std::string("wrong value for operator ") + to_string(c.op) +
                    " (expected a string or number for ==/!=, strings for "
                    "in/not_in, a number for </<=/>/>=, [lo, hi] for between)");
  }
}

// The checks of Policy::validate, with messages starting with `ctx`.
inline void validate_policy(const Policy& p, const std::string& ctx) {
  if (!(p.budget >= 0)) policy_fail(ctx, "/budget", concat("must be >= 0 (got ", p.budget, ")"));
  if (!(p.issue_cost >= 0) || !std::isfinite(p.issue_cost)) {
    policy_fail(ctx, "/issue_cost", concat("must be finite and >= 0 (got ", p.issue_cost, ")"));
  }
  if (p.max_per_member < 1) {
    policy_fail(ctx, "/max_per_member", concat("must be >= 1 (got ", p.max_per_member, ")"));
  }
  if (p.max_per_kind < 0 || p.max_per_kind > p.max_per_member) {
    policy_fail(ctx, "/max_per_kind",
                concat("must be in [0, max_per_member = ", p.max_per_member, "] (got ",
                       p.max_per_kind, ")"));
  }
  if (!(p.min_return_per_cost >= 0) || !std::isfinite(p.min_return_per_cost)) {
    policy_fail(ctx, "/min_return_per_cost",
                concat("must be finite and >= 0 (got ", p.min_return_per_cost, ")"));
  }
  if (!(p.diversity >= 0 && p.diversity <= 1)) {
    policy_fail(ctx, "/diversity", concat("must be in [0, 1] (got ", p.diversity, ")"));
  }
  for (std::size_t i = 0; i < p.caps.size(); ++i) {
    const IssueCap& c = p.caps[i];
    const std::string at = "/caps/" + std::to_string(i);
    if (!(c.period_days > 0) || !std::isfinite(c.period_days)) {
      policy_fail(ctx, at + "/period_days", concat("must be > 0 (got ", c.period_days, ")"));
    }
    if (c.max < 0) policy_fail(ctx, at + "/max", concat("must be >= 0 (got ", c.max, ")"));
    if (!c.kind.empty() && !is_benefit_kind_name(c.kind)) {
      policy_fail(ctx, at + "/kind", "unknown benefit kind (got \"" + c.kind + "\")");
    }
  }
  if (p.has_frequency_cap) {
    if (!(p.frequency_period_days > 0) || !std::isfinite(p.frequency_period_days)) {
      policy_fail(ctx, "/frequency_cap/period_days",
                  concat("must be > 0 (got ", p.frequency_period_days, ")"));
    }
    if (p.frequency_max_contacts < 0) {
      policy_fail(ctx, "/frequency_cap/max_contacts",
                  concat("must be >= 0 (got ", p.frequency_max_contacts, ")"));
    }
  }
  if (p.has_quiet_hours) {
    auto hour = [&](const char* key, double h) {
      if (!(h >= 0 && h < 24)) {
        policy_fail(ctx, std::string("/quiet_hours/") + key,
                    concat("must be in [0, 24) (got ", h, ")"));
      }
    };
    hour("start_hour", p.quiet_start_hour);
    hour("end_hour", p.quiet_end_hour);
    if (std::llround(p.quiet_start_hour * 3600.0) == std::llround(p.quiet_end_hour * 3600.0)) {
      policy_fail(ctx, "/quiet_hours/end_hour",
                  concat("must differ from start_hour (got both ", p.quiet_start_hour, ")"));
    }
  } else if (!p.utc_offset_column.empty()) {
    policy_fail(ctx, "/quiet_hours/utc_offset_column", "is set without quiet hours");
  }
  for (std::size_t i = 0; i < p.inventory.size(); ++i) {
    const auto& [id, units] = p.inventory[i];
    const std::string at = "/inventory/" + json_pointer_token(id);
    if (units < -1)
      policy_fail(ctx, at, concat("must be >= 0 or -1 for unlimited (got ", units, ")"));
    for (std::size_t k = 0; k < i; ++k) {
      if (p.inventory[k].first == id) policy_fail(ctx, at, "duplicate benefit id");
    }
  }
  for (std::size_t g = 0; g < p.non_stackable.size(); ++g) {
    const BenefitSelector& s = p.non_stackable[g];
    const std::string at = "/non_stackable/" + std::to_string(g);
    validate_selector(s, at, ctx);
    for (std::size_t h = 0; h < g; ++h) {
      const BenefitSelector& o = p.non_stackable[h];
      for (std::size_t i = 0; i < s.ids.size(); ++i) {
        if (contains(o.ids, s.ids[i])) {
          policy_fail(ctx, at + "/ids/" + std::to_string(i),
                      "benefit \"" + s.ids[i] + "\" is already in non_stackable group " +
                          std::to_string(h));
        }
      }
      for (std::size_t i = 0; i < s.kinds.size(); ++i) {
        if (contains(o.kinds, s.kinds[i])) {
          policy_fail(
              ctx, at + "/kinds/" + std::to_string(i),
              "kind \"" + s.kinds[i] + "\" is already in non_stackable group " + std::to_string(h));
        }
      }
    }
  }
  for (std::size_t i = 0; i < p.segment_quotas.size(); ++i) {
    const auto& [name, q] = p.segment_quotas[i];
    const std::string at = "/segment_quotas/" + json_pointer_token(name);
    if (q.max_members < -1) {
      policy_fail(ctx, at + "/max_members", concat("must be >= 0 or -1 (got ", q.max_members, ")"));
    }
    if (!(q.max_cost >= -1) || !std::isfinite(q.max_cost)) {
      policy_fail(ctx, at + "/max_cost", concat("must be >= 0 or -1 (got ", q.max_cost, ")"));
    }
    for (std::size_t k = 0; k < i; ++k) {
      if (p.segment_quotas[k].first == name) policy_fail(ctx, at, "duplicate segment");
    }
  }
  for (std::size_t i = 0; i < p.rules.size(); ++i) {
    const EligibilityRule& r = p.rules[i];
    const std::string at = "/rules/" + std::to_string(i);
    validate_selector(r.benefits, at + "/benefits", ctx);
    for (std::size_t a = 0; a < r.members.attributes.size(); ++a) {
      validate_condition(r.members.attributes[a], at + "/members/attributes/" + std::to_string(a),
                         ctx);
    }
    if (r.effect == EligibilityRule::Effect::window) {
      if (r.from == kNoTime && r.until == kNoTime) {
        policy_fail(ctx, at, "a window rule needs \"from\" and/or \"until\"");
      }
      if (r.from != kNoTime && r.until != kNoTime && r.until <= r.from) {
        policy_fail(ctx, at + "/until",
                    "must be after from (got " + format_utc_time(r.until) +
                        " <= " + format_utc_time(r.from) + ")");
      }
    } else if (r.from != kNoTime || r.until != kNoTime) {
      policy_fail(ctx, at + (r.from != kNoTime ? "/from" : "/until"),
                  "only a rule with effect \"window\" takes from / until");
    }
    for (std::size_t k = 0; k < i; ++k) {
      const EligibilityRule& o = p.rules[k];
      const bool opposite = (r.effect == EligibilityRule::Effect::deny &&
                             o.effect == EligibilityRule::Effect::require) ||
                            (r.effect == EligibilityRule::Effect::require &&
                             o.effect == EligibilityRule::Effect::deny);
      if (opposite && r.benefits == o.benefits && r.members == o.members) {
        policy_fail(ctx, at,
                    "contradicts rule " + std::to_string(k) + " (\"" + o.name +
                        "\"): one denies and the other requires the same benefits for "
                        "the same members");
      }
    }
  }
}

// A member condition resolved against a UserTable and segments.
struct ResolvedCondition {
  bool categorical = false;
  const std::vector<std::int32_t>* codes = nullptr;
  const std::vector<double>* values = nullptr;
  std::vector<std::uint8_t> accept;  // categorical: per category code
  AttributeCondition::Op op = AttributeCondition::Op::eq;
  double a = 0, b = 0;

  bool holds(Index u) const {
    using Op = AttributeCondition::Op;
    if (categorical) {
      const std::int32_t c = (*codes)[static_cast<std::size_t>(u)];
      return c >= 0 && accept[static_cast<std::size_t>(c)] != 0;
    }
    const double v = (*values)[static_cast<std::size_t>(u)];
    if (std::isnan(v)) return false;
    switch (op) {
      case Op::eq:
        return v == a;
      case Op::ne:
        return v != a;
      case Op::lt:
        return v < a;
      case Op::le:
        return v <= a;
      case Op::gt:
        return v > a;
      case Op::ge:
        return v >= a;
      case Op::between:
        return v >= a && v <= b;
      default:
        return false;
    }
  }
};

struct ResolvedMembers {
  bool all = true;
  std::vector<std::uint8_t> segment_accept;  // per segment code; empty = no segment condition
  std::vector<ResolvedCondition> conditions;

  bool holds(Index u, const std::vector<std::int32_t>* segment_codes) const {
    if (all) return true;
    if (!segment_accept.empty()) {
      const std::int32_t s = (*segment_codes)[static_cast<std::size_t>(u)];
      if (s < 0 || segment_accept[static_cast<std::size_t>(s)] == 0) return false;
    }
    for (const ResolvedCondition& c : conditions) {
      if (!c.holds(u)) return false;
    }
    return true;
  }
};

inline ResolvedMembers resolve_members(const MemberCondition& m, const std::string& rule_name,
                                       const std::string& at, const UserTable& users,
                                       const SegmentAssignment* segments) {
  using Op = AttributeCondition::Op;
  const char* ctx = "Policy::compile";
  ResolvedMembers out;
  out.all = m.all();
  if (!m.segments.empty()) {
    if (segments == nullptr) {
      raise<InputError>(ctx, ": rule '", rule_name, "' (", at,
                        "/segments) has a segment condition but no segments were given");
    }
    out.segment_accept.assign(segments->names.size(), 0);
    for (std::size_t i = 0; i < m.segments.size(); ++i) {
      const auto it = std::find(segments->names.begin(), segments->names.end(), m.segments[i]);
      if (it == segments->names.end()) {
        raise<InputError>(ctx, ": rule '", rule_name, "' (", at, "/segments/", i,
                          "): unknown segment '", m.segments[i], "'");
      }
      out.segment_accept[static_cast<std::size_t>(it - segments->names.begin())] = 1;
    }
  }
  for (std::size_t i = 0; i < m.attributes.size(); ++i) {
    const AttributeCondition& c = m.attributes[i];
    const std::string where = at + "/attributes/" + std::to_string(i);
    if (users.find(c.column) < 0) {
      raise<InputError>(
          ctx, ": rule '", rule_name, "' (", where, "): unknown column '", c.column,
          "' (the user table has: ",
          [&] {
            std::string s;
            for (const auto& n : users.names()) s += (s.empty() ? "" : ", ") + n;
            return s;
          }(),
          ")");
    }
    ResolvedCondition r;
    r.op = c.op;
    if (users.type(c.column) == UserTable::ColumnType::categorical) {
      if (c.strings.empty() ||
          !(c.op == Op::eq || c.op == Op::ne || c.op == Op::in || c.op == Op::not_in)) {
        raise<InputError>(ctx, ": rule '", rule_name, "' (", where, "): column '", c.column,
                          "' is categorical (expected ==, != with a string, or in / not_in)");
      }
      r.categorical = true;
      r.codes = &users.codes(c.column);
      const auto& cats = users.categories(c.column);
      const bool negate = c.op == Op::ne || c.op == Op::not_in;
      r.accept.assign(cats.size(), negate ? 1 : 0);
      for (std::size_t k = 0; k < cats.size(); ++k) {
        if (contains(c.strings, cats[k])) r.accept[k] = negate ? 0 : 1;
      }
    } else {
      if (c.numbers.empty()) {
        raise<InputError>(ctx, ": rule '", rule_name, "' (", where, "): column '", c.column,
                          "' is numeric (expected a number, or [lo, hi] for between)");
      }
      r.values = &users.numeric(c.column);
      r.a = c.numbers[0];
      r.b = c.numbers.size() > 1 ? c.numbers[1] : c.numbers[0];
    }
    out.conditions.push_back(std::move(r));
  }
  return out;
}

inline std::vector<std::uint8_t> resolve_benefits(const BenefitSelector& s,
                                                  const std::string& owner, const std::string& at,
                                                  const Catalog& catalog) {
  for (std::size_t i = 0; i < s.ids.size(); ++i) {
    if (catalog.find(s.ids[i]) < 0) {
      raise<InputError>("Policy::compile: ", owner, " (", at, "/ids/", i, "): unknown benefit id '",
                        s.ids[i], "'");
    }
  }
  std::vector<std::uint8_t> out(static_cast<std::size_t>(catalog.size()));
  for (Index b = 0; b < catalog.size(); ++b)
    out[static_cast<std::size_t>(b)] = s.matches(catalog[b]) ? 1 : 0;
  return out;
}

}  // namespace detail

// ---- small pieces
// --------------------------------------------------------------------------------

PERKREC_INLINE const char* to_string(AttributeCondition::Op op) {
  using Op = AttributeCondition::Op;
  switch (op) {
    case Op::eq:
      return "==";
    case Op::ne:
      return "!=";
    case Op::in:
      return "in";
    case Op::not_in:
      return "not_in";
    case Op::lt:
      return "<";
    case Op::le:
      return "<=";
    case Op::gt:
      return ">";
    case Op::ge:
      return ">=";
    case Op::between:
      return "between";
  }
  return "?";
}

PERKREC_INLINE Timestamp parse_utc_time(std::string_view text, const std::string& context) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, n = 0;
  const std::string t(text);
  bool ok = false;
  if (t.size() == 10) {
    ok = std::sscanf(t.c_str(), "%4d-%2d-%2d%n", &y, &mo, &d, &n) == 3 && n == 10;
  } else if (t.size() == 19 || (t.size() == 20 && t.back() == 'Z')) {
    ok = std::sscanf(t.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) == 6 &&
         n == 19;
  }
  static const int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  ok = ok && t[4] == '-' && t[7] == '-' && mo >= 1 && mo <= 12 && d >= 1 && d <= kDays[mo - 1] &&
       h >= 0 && h < 24 && mi >= 0 && mi < 60 && s >= 0 && s < 60;
  if (ok && mo == 2 && d == 29) ok = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (!ok) {
    detail::raise<ConfigError>(context,
                               ": expected a UTC time \"YYYY-MM-DD\" or "
                               "\"YYYY-MM-DDTHH:MM:SSZ\" (got \"",
                               t, "\")");
  }
  return days_from_civil(y, mo, d) * kSecondsPerDay + h * kSecondsPerHour + mi * 60 + s;
}

PERKREC_INLINE std::string format_utc_time(Timestamp t) {
  const std::int64_t sec = floor_mod(t, kSecondsPerDay);
  const CivilDate date = civil_from_days(floor_div(t, kSecondsPerDay));
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02d-%02dT%02lld:%02lld:%02lldZ",
                static_cast<long long>(date.year), date.month, date.day,
                static_cast<long long>(sec / 3600), static_cast<long long>(sec / 60 % 60),
                static_cast<long long>(sec % 60));
  return buf;
}

PERKREC_INLINE bool BenefitSelector::all() const {
  return ids.empty() && kinds.empty() && scopes.empty() && scope_values.empty() &&
         scenarios.empty() && channels.empty() && tags.empty() && std::isinf(face_value_min) &&
         std::isinf(face_value_max) && std::isinf(threshold_min) && std::isinf(threshold_max);
}

PERKREC_INLINE bool BenefitSelector::matches(const Benefit& b) const {
  using detail::contains;
  if (!ids.empty() && !contains(ids, b.id)) return false;
  if (!kinds.empty() && !contains(kinds, to_string(b.kind))) return false;
  if (!scopes.empty() && !contains(scopes, to_string(b.scope))) return false;
  if (!scope_values.empty() && !contains(scope_values, b.scope_value)) return false;
  if (!scenarios.empty() && !detail::shares_any(scenarios, b.scenarios)) return false;
  if (!channels.empty() && !contains(channels, b.channel)) return false;
  if (!tags.empty() && !detail::shares_any(tags, b.tags)) return false;
  if (b.face_value < face_value_min || b.face_value > face_value_max) return false;
  if (b.threshold < threshold_min || b.threshold > threshold_max) return false;
  return true;
}

PERKREC_INLINE bool BenefitSelector::operator==(const BenefitSelector& o) const {
  return ids == o.ids && kinds == o.kinds && scopes == o.scopes && scope_values == o.scope_values &&
         scenarios == o.scenarios && channels == o.channels && tags == o.tags &&
         face_value_min == o.face_value_min && face_value_max == o.face_value_max &&
         threshold_min == o.threshold_min && threshold_max == o.threshold_max;
}

PERKREC_INLINE bool AttributeCondition::operator==(const AttributeCondition& o) const {
  return column == o.column && op == o.op && strings == o.strings && numbers == o.numbers;
}

PERKREC_INLINE bool EligibilityRule::operator==(const EligibilityRule& o) const {
  return name == o.name && effect == o.effect && benefits == o.benefits && members == o.members &&
         from == o.from && until == o.until;
}

PERKREC_INLINE bool Policy::operator==(const Policy& o) const {
  return budget == o.budget && issue_cost == o.issue_cost && max_per_member == o.max_per_member &&
         max_per_kind == o.max_per_kind && min_return_per_cost == o.min_return_per_cost &&
         diversity == o.diversity && caps == o.caps && has_frequency_cap == o.has_frequency_cap &&
         (!has_frequency_cap || (frequency_period_days == o.frequency_period_days &&
                                 frequency_max_contacts == o.frequency_max_contacts)) &&
         has_quiet_hours == o.has_quiet_hours &&
         (!has_quiet_hours ||
          (quiet_start_hour == o.quiet_start_hour && quiet_end_hour == o.quiet_end_hour)) &&
         utc_offset_column == o.utc_offset_column && inventory == o.inventory &&
         non_stackable == o.non_stackable && segment_quotas == o.segment_quotas && rules == o.rules;
}

PERKREC_INLINE Timestamp CompiledPolicy::send_time(Timestamp t, Index u) const {
  if (!has_quiet_hours) return t;
  if (u < 0 || static_cast<std::size_t>(u) >= utc_offset_hours.size()) {
    detail::raise<InputError>("CompiledPolicy::send_time: member out of range (got ", u,
                              ", expected 0 <= member < ", utc_offset_hours.size(), ")");
  }
  return detail::quiet_shift(t, utc_offset_hours[static_cast<std::size_t>(u)], quiet_start_hour,
                             quiet_end_hour);
}

PERKREC_INLINE Timestamp Policy::send_time(Timestamp t, double utc_offset_hours) const {
  if (!(utc_offset_hours >= -14 && utc_offset_hours <= 14)) {
    detail::raise<InputError>("Policy::send_time: utc_offset_hours must be in [-14, 14] (got ",
                              utc_offset_hours, ")");
  }
  if (!has_quiet_hours) return t;
  return detail::quiet_shift(t, utc_offset_hours, quiet_start_hour, quiet_end_hour);
}

// ---- JSON
// -----------------------------------------------------------------------------------------

PERKREC_INLINE void Policy::validate() const { detail::validate_policy(*this, "Policy::validate"); }

PERKREC_INLINE Policy Policy::from_string(std::string_view text) {
  return from_json(parse_json_strict<ConfigError>(text, "Policy::from_string"));
}

PERKREC_INLINE Policy Policy::from_json(const Json& j) {
  const std::string ctx = "Policy::from_json";
  Policy p;
  detail::PolicyReader r(j, "", ctx);
  if (const Json* b = r.raw("budget")) {
    if (!b->is_number()) r.fail("budget", "expected a number");
    p.budget = b->get<double>();
    if (std::isnan(p.budget)) r.fail("budget", "expected a number");
  }
  r.read("issue_cost", p.issue_cost);
  r.read("max_per_member", p.max_per_member);
  r.read("max_per_kind", p.max_per_kind);
  r.read("min_return_per_cost", p.min_return_per_cost);
  r.read("diversity", p.diversity);
  if (const Json* caps = r.raw("caps")) {
    const std::string at = r.child_pointer("caps");
    if (!caps->is_array()) r.fail_at(at, "expected an array", *caps);
    for (std::size_t i = 0; i < caps->size(); ++i) {
      detail::PolicyReader c((*caps)[i], at + "/" + std::to_string(i), ctx);
      IssueCap cap;
      c.require("period_days", cap.period_days);
      c.require("max", cap.max);
      if (c.read("kind", cap.kind) && !detail::is_benefit_kind_name(cap.kind)) {
        c.fail("kind", "unknown benefit kind");
      }
      c.finish();
      p.caps.push_back(cap);
    }
  }
  if (r.has("frequency_cap")) {
    detail::PolicyReader f = r.child("frequency_cap");
    p.has_frequency_cap = true;
    f.require("period_days", p.frequency_period_days);
    f.require("max_contacts", p.frequency_max_contacts);
    f.finish();
  }
  if (r.has("quiet_hours")) {
    detail::PolicyReader q = r.child("quiet_hours");
    p.has_quiet_hours = true;
    q.require("start_hour", p.quiet_start_hour);
    q.require("end_hour", p.quiet_end_hour);
    q.read("utc_offset_column", p.utc_offset_column);
    q.finish();
  }
  if (const Json* inv = r.raw("inventory")) {
    const std::string at = r.child_pointer("inventory");
    if (!inv->is_object()) r.fail_at(at, "expected an object of benefit id -> units", *inv);
    for (auto it = inv->begin(); it != inv->end(); ++it) {
      std::int64_t units = 0;
      r.convert(it.value(), at + "/" + json_pointer_token(it.key()), units);
      p.inventory.emplace_back(it.key(), units);
    }
  }
  if (const Json* ns = r.raw("non_stackable")) {
    const std::string at = r.child_pointer("non_stackable");
    if (!ns->is_array()) r.fail_at(at, "expected an array of groups", *ns);
    for (std::size_t i = 0; i < ns->size(); ++i) {
      p.non_stackable.push_back(
          detail::parse_selector((*ns)[i], at + "/" + std::to_string(i), ctx));
    }
  }
  if (const Json* sq = r.raw("segment_quotas")) {
    const std::string at = r.child_pointer("segment_quotas");
    if (!sq->is_object()) r.fail_at(at, "expected an object of segment name -> quota", *sq);
    for (auto it = sq->begin(); it != sq->end(); ++it) {
      detail::PolicyReader q(it.value(), at + "/" + json_pointer_token(it.key()), ctx);
      SegmentQuota quota;
      q.read("max_members", quota.max_members);
      q.read("max_cost", quota.max_cost);
      q.finish();
      p.segment_quotas.emplace_back(it.key(), quota);
    }
  }
  if (const Json* rules = r.raw("rules")) {
    const std::string at = r.child_pointer("rules");
    if (!rules->is_array()) r.fail_at(at, "expected an array of rules", *rules);
    for (std::size_t i = 0; i < rules->size(); ++i) {
      p.rules.push_back(detail::parse_rule((*rules)[i], at + "/" + std::to_string(i), ctx, i));
    }
  }
  r.finish();
  detail::validate_policy(p, ctx);
  return p;
}

PERKREC_INLINE Json Policy::to_json() const {
  Json j = Json::object();
  if (std::isfinite(budget)) j["budget"] = budget;
  j["issue_cost"] = issue_cost;
  j["max_per_member"] = max_per_member;
  j["max_per_kind"] = max_per_kind;
  j["min_return_per_cost"] = min_return_per_cost;
  j["diversity"] = diversity;
  if (!caps.empty()) {
    Json a = Json::array();
    for (const IssueCap& c : caps) {
      Json cj{{"period_days", c.period_days}, {"max", c.max}};
      if (!c.kind.empty()) cj["kind"] = c.kind;
      a.push_back(cj);
    }
    j["caps"] = a;
  }
  if (has_frequency_cap) {
    j["frequency_cap"] =
        Json{{"period_days", frequency_period_days}, {"max_contacts", frequency_max_contacts}};
  }
  if (has_quiet_hours) {
    Json q{{"start_hour", quiet_start_hour}, {"end_hour", quiet_end_hour}};
    if (!utc_offset_column.empty()) q["utc_offset_column"] = utc_offset_column;
    j["quiet_hours"] = q;
  }
  if (!inventory.empty()) {
    Json o = Json::object();
    for (const auto& [id, units] : inventory) o[id] = units;
    j["inventory"] = o;
  }
  if (!non_stackable.empty()) {
    Json a = Json::array();
    for (const BenefitSelector& s : non_stackable) a.push_back(detail::selector_to_json(s));
    j["non_stackable"] = a;
  }
  if (!segment_quotas.empty()) {
    Json o = Json::object();
    for (const auto& [name, q] : segment_quotas)
      o[name] = Json{{"max_members", q.max_members}, {"max_cost", q.max_cost}};
    j["segment_quotas"] = o;
  }
  if (!rules.empty()) {
    Json a = Json::array();
    for (const EligibilityRule& rule : rules) {
      Json rj{{"name", rule.name},
              {"effect", rule.effect == EligibilityRule::Effect::deny      ? "deny"
                         : rule.effect == EligibilityRule::Effect::require ? "require"
                                                                           : "window"}};
      if (!rule.benefits.all()) rj["benefits"] = detail::selector_to_json(rule.benefits);
      if (!rule.members.all()) {
        Json m = Json::object();
        if (!rule.members.segments.empty()) m["segments"] = rule.members.segments;
        if (!rule.members.attributes.empty()) {
          Json attrs = Json::array();
          for (const auto& c : rule.members.attributes)
            attrs.push_back(detail::condition_to_json(c));
          m["attributes"] = attrs;
        }
        rj["members"] = m;
      }
      if (rule.from != kNoTime) rj["from"] = format_utc_time(rule.from);
      if (rule.until != kNoTime) rj["until"] = format_utc_time(rule.until);
      a.push_back(rj);
    }
    j["rules"] = a;
  }
  return j;
}

// ---- compile ------------------------------------------------------------------------------------

namespace detail {

// The stages of Policy::compile (issue 17), in order: policy_benefit_constraints (kinds,
// inventory, stacking groups), policy_segments (names, codes, quotas), policy_utc_offsets,
// policy_masks (the rule stage: eligibility) and policy_capacities (the cap stage: caps and
// the frequency cap from the history).

inline void policy_benefit_constraints(const Policy& policy, const Catalog& catalog,
                                       AllocationConstraints& k) {
  const char* ctx = "Policy::compile";
  const Index n_benefits = catalog.size();
  const auto nb = static_cast<std::size_t>(n_benefits);
  // Per-benefit data: kinds, inventory, stacking groups.
  k.benefit_kind.resize(nb);
  k.inventory.resize(nb);
  for (Index b = 0; b < n_benefits; ++b) {
    k.benefit_kind[static_cast<std::size_t>(b)] = static_cast<std::int32_t>(catalog[b].kind);
    k.inventory[static_cast<std::size_t>(b)] = catalog[b].inventory;
  }
  for (const auto& [id, units] : policy.inventory) {
    const Index b = catalog.find(id);
    if (b < 0) {
      detail::raise<InputError>(ctx, ": /inventory/", json_pointer_token(id),
                                ": unknown benefit id '", id, "'");
    }
    k.inventory[static_cast<std::size_t>(b)] = units;
  }
  k.benefit_group.assign(nb, -1);
  for (std::size_t g = 0; g < policy.non_stackable.size(); ++g) {
    const std::string at = "/non_stackable/" + std::to_string(g);
    const auto match = resolve_benefits(policy.non_stackable[g],
                                        "non_stackable group " + std::to_string(g), at, catalog);
    for (std::size_t b = 0; b < nb; ++b) {
      if (!match[b]) continue;
      if (k.benefit_group[b] >= 0) {
        detail::raise<ConfigError>(ctx, ": ", at, ": benefit '", catalog[static_cast<Index>(b)].id,
                                   "' is already in non_stackable group ", k.benefit_group[b]);
      }
      k.benefit_group[b] = static_cast<std::int32_t>(g);
    }
  }
}

inline void policy_segments(const Policy& policy, const SegmentAssignment* segments,
                            CompiledPolicy& out) {
  const char* ctx = "Policy::compile";
  AllocationConstraints& k = out.constraints;
  // Segments and quotas.
  if (segments != nullptr) {
    out.segment_names = segments->names;
    k.member_segment = segments->codes;
  }
  if (!policy.segment_quotas.empty()) {
    const std::size_t ns = out.segment_names.size();
    k.segment_max_members.assign(ns, -1);
    k.segment_max_cost.assign(ns, -1.0);
    for (const auto& [name, q] : policy.segment_quotas) {
      const std::string at = "/segment_quotas/" + json_pointer_token(name);
      if (segments == nullptr) {
        detail::raise<InputError>(ctx, ": ", at,
                                  ": segment quotas need segments (none were given)");
      }
      const auto it = std::find(out.segment_names.begin(), out.segment_names.end(), name);
      if (it == out.segment_names.end()) {
        detail::raise<InputError>(ctx, ": ", at, ": unknown segment '", name, "'");
      }
      const auto s = static_cast<std::size_t>(it - out.segment_names.begin());
      k.segment_max_members[s] = q.max_members;
      k.segment_max_cost[s] = q.max_cost;
    }
  }
}

inline void policy_utc_offsets(const Policy& policy, const UserTable& users, CompiledPolicy& out) {
  const char* ctx = "Policy::compile";
  const auto nu = static_cast<std::size_t>(users.size());
  // UTC offsets.
  out.utc_offset_hours.assign(nu, 0.0f);
  if (!policy.utc_offset_column.empty()) {
    if (users.find(policy.utc_offset_column) < 0 ||
        users.type(policy.utc_offset_column) != UserTable::ColumnType::numeric) {
      detail::raise<InputError>(ctx, ": /quiet_hours/utc_offset_column: '",
                                policy.utc_offset_column,
                                "' is not a numeric column of the user table");
    }
    const auto& v = users.numeric(policy.utc_offset_column);
    for (std::size_t u = 0; u < nu; ++u) {
      if (std::isnan(v[u])) continue;
      if (!(v[u] >= -14 && v[u] <= 14)) {
        detail::raise<InputError>(ctx, ": column '", policy.utc_offset_column, "' row ", u,
                                  ": utc offset must be in [-14, 14] hours (got ", v[u], ")");
      }
      out.utc_offset_hours[u] = static_cast<float>(v[u]);
    }
  }
}

PERKREC_INLINE EligibilityMasks policy_masks(const Policy& policy, const Catalog& catalog,
                                             const UserTable& users, Timestamp plan_time,
                                             const SegmentAssignment* segments,
                                             const std::vector<std::int64_t>& inventory_units,
                                             int num_threads) {
  const Index n_users = users.size();
  const Index n_benefits = catalog.size();
  const auto nu = static_cast<std::size_t>(n_users);
  const auto nb = static_cast<std::size_t>(n_benefits);
  // Rules: benefit matches, member conditions, window state.
  const std::size_t n_rules = policy.rules.size();
  std::vector<std::vector<std::uint8_t>> benefit_match(n_rules);
  std::vector<detail::ResolvedMembers> member_match(n_rules);
  std::vector<std::uint8_t> in_window(n_rules, 1);
  for (std::size_t i = 0; i < n_rules; ++i) {
    const EligibilityRule& r = policy.rules[i];
    const std::string at = "/rules/" + std::to_string(i);
    benefit_match[i] =
        resolve_benefits(r.benefits, "rule '" + r.name + "'", at + "/benefits", catalog);
    member_match[i] = resolve_members(r.members, r.name, at + "/members", users, segments);
    if (r.effect == EligibilityRule::Effect::window) {
      in_window[i] =
          (r.from == kNoTime || plan_time >= r.from) && (r.until == kNoTime || plan_time < r.until);
    }
  }

  // Member signatures: bit i = member satisfies rule i's member condition. Members with equal
  // signatures get equal eligibility, so one mask serves them all. Rules that select no
  // benefit (or every member) cannot tell members apart: their bit stays 0 / is skipped.
  std::vector<std::uint8_t> splits(n_rules, 0);
  for (std::size_t i = 0; i < n_rules; ++i) {
    splits[i] =
        !member_match[i].all && std::any_of(benefit_match[i].begin(), benefit_match[i].end(),
                                            [](std::uint8_t x) { return x != 0; });
  }
  const std::size_t words = std::max<std::size_t>(1, (n_rules + 63) / 64);
  const std::vector<std::int32_t>* segment_codes = segments != nullptr ? &segments->codes : nullptr;
  std::vector<std::uint64_t> signature(nu * words, 0);
  std::vector<std::uint64_t> hash(nu, 0);
  parallel_for(0, static_cast<Offset>(n_users), num_threads, [&](Offset uo) {
    const auto u = static_cast<Index>(uo);
    std::uint64_t* sig = signature.data() + static_cast<std::size_t>(u) * words;
    for (std::size_t i = 0; i < n_rules; ++i) {
      if (splits[i] && member_match[i].holds(u, segment_codes))
        sig[i >> 6] |= std::uint64_t{1} << (i & 63);
    }
    std::uint64_t h = 1469598103934665603ull;
    for (std::size_t w = 0; w < words; ++w) {
      h ^= sig[w] + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
      h *= 1099511628211ull;
    }
    hash[static_cast<std::size_t>(u)] = h;
  });

  // Distinct signatures in member order (deterministic ids).
  std::vector<Index> representative;           // per distinct signature: its first member
  std::vector<std::int32_t> signature_of(nu);  // per member
  {
    std::unordered_map<std::uint64_t, std::vector<std::int32_t>> seen;
    for (std::size_t u = 0; u < nu; ++u) {
      const std::uint64_t* sig = signature.data() + u * words;
      auto& bucket = seen[hash[u]];
      std::int32_t id = -1;
      for (std::int32_t cand : bucket) {
        const std::uint64_t* other =
            signature.data() +
            static_cast<std::size_t>(representative[static_cast<std::size_t>(cand)]) * words;
        if (std::equal(sig, sig + words, other)) {
          id = cand;
          break;
        }
      }
      if (id < 0) {
        id = static_cast<std::int32_t>(representative.size());
        representative.push_back(static_cast<Index>(u));
        bucket.push_back(id);
      }
      signature_of[u] = id;
    }
  }
  const std::size_t n_signatures = representative.size();
  const auto n_rules_i = static_cast<std::int32_t>(n_rules);
  std::vector<std::vector<std::int32_t>> rule_rows(n_signatures);
  parallel_for(0, static_cast<Offset>(n_signatures), num_threads, [&](Offset so) {
    const auto s = static_cast<std::size_t>(so);
    const std::uint64_t* sig =
        signature.data() + static_cast<std::size_t>(representative[s]) * words;
    std::vector<std::int32_t>& row = rule_rows[s];
    row.assign(nb, -1);
    for (std::size_t b = 0; b < nb; ++b) {
      for (std::size_t i = 0; i < n_rules; ++i) {
        if (!benefit_match[i][b]) continue;
        const bool member = member_match[i].all || ((sig[i >> 6] >> (i & 63)) & 1u);
        bool excluded = false;
        switch (policy.rules[i].effect) {
          case EligibilityRule::Effect::deny:
            excluded = member;
            break;
          case EligibilityRule::Effect::require:
            excluded = !member;
            break;
          case EligibilityRule::Effect::window:
            excluded = member && !in_window[i];
            break;
        }
        if (excluded) {
          row[b] = static_cast<std::int32_t>(i);
          break;
        }
      }
      if (row[b] < 0 && inventory_units[b] == 0) row[b] = n_rules_i;
    }
  });
  // Different signatures may still give identical rows (a rule whose benefits are all
  // excluded earlier): such rows share a mask too. Mask 0 is the all-eligible row.
  EligibilityMasks masks(n_users, n_benefits);
  std::vector<Index> mask_of_signature(n_signatures, 0);
  {
    std::vector<std::size_t> row_of_mask{static_cast<std::size_t>(-1)};  // mask -> signature
    std::unordered_map<std::uint64_t, std::vector<Index>> rows_seen;
    for (std::size_t s = 0; s < n_signatures; ++s) {
      const std::vector<std::int32_t>& row = rule_rows[s];
      if (std::all_of(row.begin(), row.end(), [](std::int32_t r) { return r < 0; })) continue;
      std::uint64_t h = 1469598103934665603ull;
      for (std::int32_t r : row) h = (h ^ static_cast<std::uint32_t>(r)) * 1099511628211ull;
      auto& bucket = rows_seen[h];
      Index id = -1;
      for (Index m : bucket) {
        if (rule_rows[row_of_mask[static_cast<std::size_t>(m)]] == row) id = m;
      }
      if (id < 0) {
        id = masks.add_mask(row);
        row_of_mask.push_back(s);
        bucket.push_back(id);
      }
      mask_of_signature[s] = id;
    }
  }
  for (std::size_t u = 0; u < nu; ++u) {
    masks.set_user_mask(static_cast<Index>(u),
                        mask_of_signature[static_cast<std::size_t>(signature_of[u])]);
  }
  return masks;
}

PERKREC_INLINE void policy_capacities(const Policy& policy, const Catalog& catalog, Index n_users,
                                      Timestamp plan_time, const EventLog* history, int num_threads,
                                      PolicyCapacities& capacity_out) {
  const auto nu = static_cast<std::size_t>(n_users);
  // Caps and the frequency cap from the history.
  bool any_kind_cap = false;
  for (const IssueCap& c : policy.caps) any_kind_cap = any_kind_cap || !c.kind.empty();
  const int n_kinds = kNumBenefitKinds;
  const std::int32_t kind_default =
      policy.max_per_kind > 0 ? policy.max_per_kind : policy.max_per_member;
  capacity_out.member_capacity.assign(nu, policy.max_per_member);
  if (any_kind_cap)
    capacity_out.member_kind_capacity.assign(nu * static_cast<std::size_t>(n_kinds), kind_default);
  capacity_out.member_block.assign(nu, ExclusionReason::none);
  auto window_start = [plan_time](double days) {
    return plan_time -
           static_cast<Timestamp>(std::llround(days * static_cast<double>(kSecondsPerDay)));
  };
  std::vector<Timestamp> cap_start(policy.caps.size());
  std::vector<int> cap_kind(policy.caps.size());
  for (std::size_t c = 0; c < policy.caps.size(); ++c) {
    cap_start[c] = window_start(policy.caps[c].period_days);
    cap_kind[c] = policy.caps[c].kind.empty() ? -1 : benefit_kind_code(policy.caps[c].kind);
  }
  const Timestamp frequency_start =
      policy.has_frequency_cap ? window_start(policy.frequency_period_days) : plan_time;
  parallel_for(0, static_cast<Offset>(n_users), num_threads, [&](Offset uo) {
    const auto u = static_cast<std::size_t>(uo);
    std::int64_t capacity = policy.max_per_member;
    std::int32_t* kind_cap = any_kind_cap ? capacity_out.member_kind_capacity.data() +
                                                u * static_cast<std::size_t>(n_kinds)
                                          : nullptr;
    const bool has_events = history != nullptr && static_cast<Index>(u) < history->n_users();
    const Offset e0 = has_events ? history->user_begin(static_cast<Index>(u)) : 0;
    const Offset e1 = has_events ? history->user_end(static_cast<Index>(u)) : 0;
    for (std::size_t c = 0; c < policy.caps.size(); ++c) {
      std::int64_t used = 0;
      for (Offset e = e0; e < e1; ++e) {
        if (history->type(e) != EventType::issued) continue;
        const Timestamp t = history->timestamps()[static_cast<std::size_t>(e)];
        if (t < cap_start[c] || t >= plan_time) continue;
        if (cap_kind[c] >= 0) {
          const Index b = history->benefits()[static_cast<std::size_t>(e)];
          if (b < 0 || static_cast<int>(catalog[b].kind) != cap_kind[c]) continue;
        }
        ++used;
      }
      const std::int64_t left = std::max<std::int64_t>(0, policy.caps[c].max - used);
      if (cap_kind[c] < 0) {
        capacity = std::min(capacity, left);
      } else {
        std::int32_t& slot = kind_cap[cap_kind[c]];
        slot = static_cast<std::int32_t>(std::min<std::int64_t>(slot, left));
      }
    }
    if (kind_cap != nullptr &&
        std::all_of(kind_cap, kind_cap + n_kinds, [](std::int32_t v) { return v == 0; })) {
      capacity = 0;
    }
    if (policy.has_frequency_cap) {
      std::int64_t contacts = 0;
      Timestamp last = kNoTime;
      for (Offset e = e0; e < e1; ++e) {
        if (history->type(e) != EventType::issued) continue;
        const Timestamp t = history->timestamps()[static_cast<std::size_t>(e)];
        if (t < frequency_start || t >= plan_time || t == last) continue;
        last = t;  // events are time-sorted per member: equal times are one contact
        ++contacts;
      }
      if (contacts >= policy.frequency_max_contacts) {
        capacity_out.member_capacity[u] = 0;
        capacity_out.member_block[u] = ExclusionReason::frequency_cap;
        return;
      }
    }
    capacity_out.member_capacity[u] = static_cast<std::int32_t>(capacity);
    if (capacity == 0) capacity_out.member_block[u] = ExclusionReason::member_cap;
  });
}

}  // namespace detail

PERKREC_INLINE CompiledPolicy Policy::compile(const Catalog& catalog, const UserTable& users,
                                              Timestamp plan_time,
                                              const SegmentAssignment* segments,
                                              const EventLog* history, int num_threads) const {
  const char* ctx = "Policy::compile";
  validate();
  resolve_num_threads(num_threads);
  const Index n_users = users.size();
  const Index n_benefits = catalog.size();
  const auto nu = static_cast<std::size_t>(n_users);
  if (segments != nullptr) {
    if (segments->codes.size() != nu) {
      detail::raise<InputError>(ctx, ": segments.codes has ", segments->codes.size(),
                                " entries (expected one per member: ", n_users, ")");
    }
    for (std::size_t u = 0; u < nu; ++u) {
      const std::int32_t c = segments->codes[u];
      if (c < -1 || c >= static_cast<std::int32_t>(segments->names.size())) {
        detail::raise<InputError>(ctx, ": segments.codes[", u, "] out of range (got ", c,
                                  ", expected -1 <= code < ", segments->names.size(), ")");
      }
    }
  }
  if (history != nullptr && (history->n_users() > n_users || history->n_benefits() > n_benefits)) {
    detail::raise<InputError>(ctx, ": history has ", history->n_users(), " members and ",
                              history->n_benefits(), " benefits (expected at most ", n_users,
                              " and ", n_benefits, ", the same indexing as users and catalog)");
  }

  CompiledPolicy out;
  AllocationConstraints& k = out.constraints;
  k.budget = budget;
  k.max_per_member = max_per_member;
  k.max_per_kind = max_per_kind;
  k.min_return_per_cost = min_return_per_cost;
  k.diversity = diversity;
  k.n_kinds = kNumBenefitKinds;
  out.issue_cost = issue_cost;
  out.has_quiet_hours = has_quiet_hours;
  out.quiet_start_hour = quiet_start_hour;
  out.quiet_end_hour = quiet_end_hour;

  detail::policy_benefit_constraints(*this, catalog, k);
  detail::policy_segments(*this, segments, out);
  detail::policy_utc_offsets(*this, users, out);
  out.masks =
      detail::policy_masks(*this, catalog, users, plan_time, segments, k.inventory, num_threads);
  const std::size_t n_rules = rules.size();
  out.rule_names.reserve(n_rules + 1);
  for (const EligibilityRule& r : rules) out.rule_names.push_back(r.name);
  out.rule_names.emplace_back("inventory");

  detail::PolicyCapacities capacities;
  detail::policy_capacities(*this, catalog, n_users, plan_time, history, num_threads, capacities);
  k.member_capacity = std::move(capacities.member_capacity);
  k.member_kind_capacity = std::move(capacities.member_kind_capacity);
  out.member_block = std::move(capacities.member_block);
  return out;
}

PERKREC_INLINE std::vector<std::int64_t> excluded_pairs_by_rule(const CompiledPolicy& compiled) {
  const EligibilityMasks& m = compiled.masks;
  std::vector<std::int64_t> members_per_mask(static_cast<std::size_t>(m.n_masks()), 0);
  for (Index u = 0; u < m.n_users(); ++u)
    ++members_per_mask[static_cast<std::size_t>(m.mask_of(u))];
  const auto n_rules = static_cast<std::int64_t>(compiled.rule_names.size());
  std::vector<std::int64_t> out(compiled.rule_names.size(), 0);
  for (Index k = 0; k < m.n_masks(); ++k) {
    for (Index b = 0; b < m.n_benefits(); ++b) {
      const std::int32_t r = m.rule(k, b);
      if (r < 0) continue;
      if (r >= n_rules) {
        detail::raise<InputError>("excluded_pairs_by_rule: mask ", k, " names rule ", r,
                                  " (the policy has ", n_rules, " rules)");
      }
      out[static_cast<std::size_t>(r)] += members_per_mask[static_cast<std::size_t>(k)];
    }
  }
  return out;
}

}  // namespace perkrec
