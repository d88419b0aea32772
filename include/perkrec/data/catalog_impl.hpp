// Definitions for catalog.hpp.
#pragma once

#include <charconv>
#include <cmath>
#include <utility>

#include "perkrec/core/json.hpp"
#include "perkrec/data/catalog.hpp"

namespace perkrec {

PERKREC_INLINE const char* to_string(BenefitKind kind) {
  switch (kind) {
    case BenefitKind::discount:
      return "discount";
    case BenefitKind::threshold_discount:
      return "threshold_discount";
    case BenefitKind::percent_off:
      return "percent_off";
    case BenefitKind::gift:
      return "gift";
    case BenefitKind::points:
      return "points";
    case BenefitKind::free_shipping:
      return "free_shipping";
    case BenefitKind::member_exclusive:
      return "member_exclusive";
    case BenefitKind::service:
      return "service";
  }
  return "?";
}

PERKREC_INLINE const char* to_string(Scope scope) {
  switch (scope) {
    case Scope::all:
      return "all";
    case Scope::category:
      return "category";
    case Scope::brand:
      return "brand";
    case Scope::tier:
      return "tier";
  }
  return "?";
}

PERKREC_INLINE BenefitKind parse_benefit_kind(std::string_view name, const std::string& context) {
  for (int k = 0; k < kNumBenefitKinds; ++k) {
    if (name == to_string(static_cast<BenefitKind>(k))) return static_cast<BenefitKind>(k);
  }
  detail::raise<InputError>(context, ": unknown benefit kind '", name,
                            "' (expected discount, threshold_discount, percent_off, gift, points, "
                            "free_shipping, member_exclusive or service)");
}

PERKREC_INLINE Scope parse_scope(std::string_view name, const std::string& context) {
  for (int k = 0; k < kNumScopes; ++k) {
    if (name == to_string(static_cast<Scope>(k))) return static_cast<Scope>(k);
  }
  detail::raise<InputError>(context, ": unknown scope '", name,
                            "' (expected all, category, brand or tier)");
}

PERKREC_INLINE void Benefit::validate(const std::string& context) const {
  auto bad = [&](const char* field, const auto& value, const char* expected) {
    detail::raise<InputError>(context, ": benefit '", id, "': ", field, " ", expected, " (got ",
                              value, ")");
  };
  if (id.empty()) detail::raise<InputError>(context, ": benefit id must not be empty");
  if (static_cast<int>(kind) >= kNumBenefitKinds) bad("kind", static_cast<int>(kind), "unknown");
  if (!std::isfinite(face_value) || face_value < 0)
    bad("face_value", face_value, "must be finite and >= 0");
  if (!std::isfinite(threshold) || threshold < 0)
    bad("threshold", threshold, "must be finite and >= 0");
  if (!std::isfinite(discount_rate) || discount_rate < 0 || discount_rate >= 1) {
    bad("discount_rate", discount_rate, "must be in [0, 1)");
  }
  if (!std::isfinite(cost) || cost < 0) bad("cost", cost, "must be finite and >= 0");
  if (validity_days <= 0) bad("validity_days", validity_days, "must be > 0");
  if (static_cast<int>(scope) >= kNumScopes) bad("scope", static_cast<int>(scope), "unknown");
  if (inventory < -1) bad("inventory", inventory, "must be >= 0 or -1 (unlimited)");
  for (const auto& [name, value] : attributes) {
    if (name.empty()) bad("attributes", "\"\"", "name must not be empty");
    (void)value;
  }
  for (const auto& [name, value] : numeric_attributes) {
    if (name.empty()) bad("attributes", "\"\"", "name must not be empty");
    if (!std::isfinite(value)) {
      detail::raise<InputError>(context, ": benefit '", id, "': attribute '", name,
                                "' must be finite (got ", value, ")");
    }
    if (attributes.count(name) != 0) {
      detail::raise<InputError>(context, ": benefit '", id, "': attribute '", name,
                                "' is both text and numeric");
    }
  }
  if (kind == BenefitKind::threshold_discount && threshold <= 0) {
    bad("threshold", threshold, "must be > 0 for a threshold_discount");
  }
  if (kind == BenefitKind::percent_off && discount_rate <= 0) {
    bad("discount_rate", discount_rate, "must be > 0 for a percent_off");
  }
}

PERKREC_INLINE bool Benefit::operator==(const Benefit& o) const {
  return id == o.id && kind == o.kind && face_value == o.face_value && threshold == o.threshold &&
         discount_rate == o.discount_rate && cost == o.cost && validity_days == o.validity_days &&
         scope == o.scope && scope_value == o.scope_value && scenarios == o.scenarios &&
         channel == o.channel && inventory == o.inventory && tags == o.tags &&
         attributes == o.attributes && numeric_attributes == o.numeric_attributes;
}

namespace detail {

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

/// Parses the whole of `s` as a finite decimal number.
inline bool parse_number(std::string_view s, double& out) {
  s = trim(s);
  if (s.empty()) return false;
  if (s.front() == '+') s.remove_prefix(1);
  const auto result = std::from_chars(s.data(), s.data() + s.size(), out);
  return result.ec == std::errc() && result.ptr == s.data() + s.size() && std::isfinite(out);
}

}  // namespace detail

PERKREC_INLINE ParsedDiscount parse_discount(std::string_view text) {
  const std::string_view s = detail::trim(text);
  auto bad = [&](const char* why) -> ParsedDiscount {
    detail::raise<InputError>("parse_discount: cannot parse '", text, "': ", why,
                              " (expected \"spend:off\" like \"150:20\", a rate like \"0.9\", "
                              "a percentage like \"15%\", an amount like \"20\", or \"fixed\")");
  };
  ParsedDiscount d;
  if (s.empty()) return bad("empty");
  if (s == "fixed") {
    d.kind = BenefitKind::discount;
    d.fixed_price = true;
    return d;
  }
  const auto colon = s.find(':');
  if (colon != std::string_view::npos) {
    double spend = 0, off = 0;
    if (!detail::parse_number(s.substr(0, colon), spend) ||
        !detail::parse_number(s.substr(colon + 1), off)) {
      return bad("both sides of ':' must be numbers");
    }
    if (spend <= 0 || off <= 0) return bad("both amounts must be > 0");
    if (off > spend) return bad("the amount off exceeds the spend threshold");
    d.kind = BenefitKind::threshold_discount;
    d.threshold = spend;
    d.face_value = off;
    return d;
  }
  if (s.back() == '%') {
    double pct = 0;
    if (!detail::parse_number(s.substr(0, s.size() - 1), pct)) return bad("not a percentage");
    if (pct <= 0 || pct >= 100) return bad("a percentage off must be in (0, 100)");
    d.kind = BenefitKind::percent_off;
    d.discount_rate = pct / 100.0;
    return d;
  }
  double value = 0;
  if (!detail::parse_number(s, value)) return bad("not a number");
  if (value > 0 && value < 1) {
    d.kind = BenefitKind::percent_off;
    // Rates are written as the share paid: "0.9" means 10% off.
    d.discount_rate = 1.0 - value;
    return d;
  }
  if (value >= 1) {
    d.kind = BenefitKind::discount;
    d.face_value = value;
    return d;
  }
  return bad("must be > 0");
}

PERKREC_INLINE void apply_discount(const ParsedDiscount& discount, Benefit& benefit) {
  benefit.kind = discount.kind;
  benefit.threshold = discount.threshold;
  benefit.face_value = discount.face_value;
  benefit.discount_rate = discount.discount_rate;
  if (discount.fixed_price) {
    bool tagged = false;
    for (const auto& t : benefit.tags) tagged = tagged || t == "fixed_price";
    if (!tagged) benefit.tags.push_back("fixed_price");
  }
}

// ---------------------------------------------------------------------------------------------

PERKREC_INLINE Catalog::Catalog(std::vector<Benefit> benefits) { extend(std::move(benefits)); }

PERKREC_INLINE const Benefit& Catalog::at(Index i) const {
  if (i < 0 || i >= size()) {
    detail::raise<InputError>("Catalog::at: benefit index out of range (got ", i,
                              ", expected 0 <= index < ", size(), ")");
  }
  return benefits_[static_cast<std::size_t>(i)];
}

PERKREC_INLINE Index Catalog::add(Benefit benefit) {
  benefit.validate("Catalog::add");
  if (ids_.find(std::string_view(benefit.id)) >= 0) {
    detail::raise<InputError>("Catalog::add: duplicate benefit id '", benefit.id, "'");
  }
  IdMap ids = ids_;
  const Index index = ids.add(std::string_view(benefit.id));
  benefits_.push_back(std::move(benefit));
  ids_ = std::move(ids);
  return index;
}

PERKREC_INLINE void Catalog::extend(std::vector<Benefit> benefits) {
  IdMap ids = ids_;
  for (std::size_t i = 0; i < benefits.size(); ++i) {
    benefits[i].validate("Catalog::extend: row " + std::to_string(i));
    if (ids.find(std::string_view(benefits[i].id)) >= 0) {
      detail::raise<InputError>("Catalog::extend: row ", i, ": duplicate benefit id '",
                                benefits[i].id, "'");
    }
    ids.add(std::string_view(benefits[i].id));
  }
  benefits_.reserve(benefits_.size() + benefits.size());
  for (auto& b : benefits) benefits_.push_back(std::move(b));
  ids_ = std::move(ids);
}

namespace detail {

template <class E>
Benefit benefit_from_json(const Json& value, const std::string& pointer,
                          const std::string& context) {
  JsonReader<E> r(value, pointer, context);
  Benefit b;
  r.require("id", b.id);
  std::string discount;
  const bool has_discount = r.read("discount", discount);
  if (has_discount) {
    try {
      apply_discount(parse_discount(discount), b);
    } catch (const InputError& e) {
      r.fail("discount", e.what());
    }
  }
  std::string kind;
  if (r.read("kind", kind)) {
    BenefitKind parsed{};
    bool known = true;
    try {
      parsed = parse_benefit_kind(kind, context);
    } catch (const InputError&) {
      known = false;
    }
    if (!known) {
      r.fail("kind",
             "unknown benefit kind (expected discount, threshold_discount, percent_off, gift, "
             "points, free_shipping, member_exclusive or service)");
    }
    if (has_discount && parsed != b.kind) {
      r.fail("kind",
             concat("contradicts \"discount\": \"", discount, "\" (a ", to_string(b.kind), ")"));
    }
    b.kind = parsed;
  } else if (!has_discount) {
    raise<E>(context, ": ", r.child_pointer("kind"),
             ": required key is missing (give \"kind\" or \"discount\")");
  }
  r.read("face_value", b.face_value);
  r.read("threshold", b.threshold);
  r.read("discount_rate", b.discount_rate);
  r.read("cost", b.cost);
  r.read("validity_days", b.validity_days);
  std::string scope;
  if (r.read("scope", scope)) {
    try {
      b.scope = parse_scope(scope, context);
    } catch (const InputError&) {
      r.fail("scope", "unknown scope (expected all, category, brand or tier)");
    }
  }
  r.read("scope_value", b.scope_value);
  r.read("scenarios", b.scenarios);
  r.read("channel", b.channel);
  r.read("inventory", b.inventory);
  r.read("tags", b.tags);
  if (const Json* attrs = r.raw("attributes")) {
    const std::string where = r.child_pointer("attributes");
    if (!attrs->is_object()) raise<E>(context, ": ", where, ": expected an object");
    for (auto it = attrs->begin(); it != attrs->end(); ++it) {
      if (it.key().empty()) raise<E>(context, ": ", where, ": attribute name must not be empty");
      if (it->is_string()) {
        b.attributes[it.key()] = it->template get<std::string>();
      } else if (it->is_number()) {
        b.numeric_attributes[it.key()] = it->template get<double>();
      } else {
        raise<E>(context, ": ", where, "/", it.key(), ": expected a string or a number (got ",
                 it->type_name(), ")");
      }
    }
  }
  r.finish();
  try {
    b.validate(context + ": " + pointer);
  } catch (const InputError& e) {
    raise<E>(e.what());
  }
  return b;
}

template <class E>
Catalog catalog_from_json_value(const Json& doc, const std::string& pointer,
                                const std::string& context) {
  JsonReader<E> r(doc, pointer, context);
  int version = 1;
  if (r.read("version", version) && version != 1) r.fail("version", "unsupported version");
  const Json* list = r.raw("benefits");
  if (list == nullptr)
    raise<E>(context, ": ", r.child_pointer("benefits"), ": required key is missing");
  if (!list->is_array()) r.fail("benefits", "expected an array");
  r.finish();
  std::vector<Benefit> benefits;
  benefits.reserve(list->size());
  IdMap seen;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const std::string where = r.child_pointer("benefits") + "/" + std::to_string(i);
    Benefit b = benefit_from_json<E>((*list)[i], where, context);
    const Index previous = seen.find(std::string_view(b.id));
    if (previous >= 0) {
      raise<E>(context, ": ", where, "/id: duplicate benefit id '", b.id, "' (first at ",
               r.child_pointer("benefits"), "/", previous, ")");
    }
    seen.add(std::string_view(b.id));
    benefits.push_back(std::move(b));
  }
  Catalog catalog;
  catalog.extend(std::move(benefits));
  return catalog;
}

inline Json catalog_to_json_value(const Catalog& catalog) {
  Json list = Json::array();
  for (const Benefit& b : catalog.benefits()) {
    list.push_back({{"id", b.id},
                    {"kind", to_string(b.kind)},
                    {"face_value", b.face_value},
                    {"threshold", b.threshold},
                    {"discount_rate", b.discount_rate},
                    {"cost", b.cost},
                    {"validity_days", b.validity_days},
                    {"scope", to_string(b.scope)},
                    {"scope_value", b.scope_value},
                    {"scenarios", b.scenarios},
                    {"channel", b.channel},
                    {"inventory", b.inventory},
                    {"tags", b.tags}});
    if (!b.attributes.empty() || !b.numeric_attributes.empty()) {
      Json attrs = Json::object();
      for (const auto& [name, value] : b.attributes) attrs[name] = value;
      for (const auto& [name, value] : b.numeric_attributes) attrs[name] = value;
      list.back()["attributes"] = std::move(attrs);
    }
  }
  return Json{{"version", 1}, {"benefits", std::move(list)}};
}

}  // namespace detail

PERKREC_INLINE Catalog Catalog::from_json(std::string_view text) {
  const Json doc = parse_json_strict<InputError>(text, "Catalog::from_json");
  return detail::catalog_from_json_value<InputError>(doc, "", "Catalog::from_json");
}

PERKREC_INLINE std::string Catalog::to_json(int indent) const {
  return detail::catalog_to_json_value(*this).dump(indent);
}

PERKREC_INLINE void Catalog::write(ModelWriter& w, const std::string& prefix) const {
  content_section(w, prefix)["catalog"] = detail::catalog_to_json_value(*this);
}

PERKREC_INLINE Catalog Catalog::read(const ModelReader& r, const std::string& prefix) {
  const Json& section = content_section(r, prefix);
  auto it = section.find("catalog");
  if (it == section.end()) r.bad_content("missing 'catalog'");
  try {
    return detail::catalog_from_json_value<InputError>(*it, content_pointer(prefix) + "/catalog",
                                                       "Catalog::read");
  } catch (const InputError& e) {
    r.invalid(e.what());
  }
}

}  // namespace perkrec
