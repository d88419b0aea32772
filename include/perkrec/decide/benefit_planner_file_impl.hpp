#pragma once

#include <cmath>
#include <string_view>
#include <utility>

#include "perkrec/decide/benefit_planner_file.hpp"

namespace perkrec {

namespace detail {

inline void write_part(ModelWriter& w, const std::string& name, const std::string& bytes) {
  w.add(name, reinterpret_cast<const std::uint8_t*>(bytes.data()),
        {static_cast<std::int64_t>(bytes.size())});
}

template <class T>
T read_part(const ModelReader& r, const std::string& name) {
  Span<const std::uint8_t> bytes = r.array<std::uint8_t>(name);
  const std::string_view view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  try {
    return T::from_bytes(view);
  } catch (const ModelFormatError& e) {
    r.invalid(detail::concat("part '", name, "': ", e.what()));
  } catch (const Error& e) {
    r.invalid(detail::concat("part '", name, "': ", e.what()));
  }
}

/// The pooled effects of a BenefitPlannerFile: content "pooled" and its three arrays, each
/// sized from the header's shape before it is read.
inline PooledMemberEffects read_pooled(const ModelReader& r, const std::string& prefix,
                                       const Json& content, Index n_users, Index n_benefits) {
  JsonReader<ModelFormatError> jr(content, content_pointer(prefix) + "/pooled",
                                  "BenefitPlannerFile::read");
  PooledMemberEffects e;
  std::vector<std::int64_t> n_codes;
  jr.require("intercept", e.intercept);
  jr.require("slope", e.slope);
  jr.require("n_codes", n_codes);
  jr.require("variance", e.variance);
  jr.finish();
  if (n_codes.size() > 64) r.bad_content("pooled: n_codes: more than 64 attributes");
  std::int64_t total = 0;
  for (std::int64_t c : n_codes) {
    if (c < 1 || c > (1 << 20)) r.bad_content(detail::concat("pooled: n_codes: bad count ", c));
    e.n_codes.push_back(static_cast<Index>(c));
    total += c;
  }
  const auto na = static_cast<std::int64_t>(n_codes.size());
  e.member = r.vector<double>(prefix + "pooled_member", {n_users});
  const std::vector<std::int32_t> codes =
      r.vector<std::int32_t>(prefix + "pooled_benefit_code", {na * n_benefits});
  const std::vector<double> effects =
      r.vector<double>(prefix + "pooled_attribute_effect", {total * n_users});
  std::size_t at = 0;
  for (std::size_t a = 0; a < n_codes.size(); ++a) {
    const auto nb = static_cast<std::size_t>(n_benefits);
    e.benefit_code.emplace_back(codes.begin() + static_cast<std::ptrdiff_t>(a * nb),
                                codes.begin() + static_cast<std::ptrdiff_t>((a + 1) * nb));
    const std::size_t cells =
        static_cast<std::size_t>(n_users) * static_cast<std::size_t>(n_codes[a]);
    e.attribute_effect.emplace_back(effects.begin() + static_cast<std::ptrdiff_t>(at),
                                    effects.begin() + static_cast<std::ptrdiff_t>(at + cells));
    at += cells;
  }
  return e;
}

}  // namespace detail

PERKREC_INLINE std::string BenefitPlannerFile::check() const {
  const Index n = events.n_users();
  const Index nb = events.n_benefits();
  if (!config.is_object()) return "config: expected a JSON object";
  if (!redemption_model.fitted()) return "redemption_model: not fitted";
  if (!preference.fitted()) return "preference: not fitted";
  if (catalog.size() != nb) {
    return detail::concat("catalog: expected ", nb, " benefits (the event log's; got ",
                          catalog.size(), ")");
  }
  if (preference.n_users() != n || preference.n_benefits() != nb) {
    return detail::concat("preference: expected ", n, " members x ", nb, " benefits (got ",
                          preference.n_users(), " x ", preference.n_benefits(), ")");
  }
  if (users && users->size() != n) {
    return detail::concat("users: expected ", n, " members (got ", users->size(), ")");
  }
  if (order_value.size() != static_cast<std::size_t>(n)) {
    return detail::concat("order_value: expected ", n, " values (got ", order_value.size(), ")");
  }
  for (std::size_t u = 0; u < order_value.size(); ++u) {
    if (!std::isfinite(order_value[u]) || order_value[u] < 0) {
      return detail::concat("order_value[", u, "]: expected a finite value >= 0 (got ",
                            order_value[u], ")");
    }
  }
  const std::size_t m = holdout_user.size();
  if (holdout_benefit.size() != m || holdout_predicted.size() != m ||
      holdout_redeemed.size() != m || (!holdout_weight.empty() && holdout_weight.size() != m)) {
    return detail::concat("holdout: user, benefit, predicted, redeemed (and weight) must have ",
                          "the same length (got ", m, ", ", holdout_benefit.size(), ", ",
                          holdout_predicted.size(), ", ", holdout_redeemed.size(), ", ",
                          holdout_weight.size(), ")");
  }
  for (std::size_t i = 0; i < m; ++i) {
    if (holdout_user[i] < 0 || holdout_user[i] >= n) {
      return detail::concat("holdout_user[", i, "]: expected a member in [0, ", n, ") (got ",
                            holdout_user[i], ")");
    }
    if (holdout_benefit[i] < 0 || holdout_benefit[i] >= nb) {
      return detail::concat("holdout_benefit[", i, "]: expected a benefit in [0, ", nb, ") (got ",
                            holdout_benefit[i], ")");
    }
    if (!(holdout_predicted[i] >= 0 && holdout_predicted[i] <= 1)) {
      return detail::concat("holdout_predicted[", i, "]: expected a probability (got ",
                            holdout_predicted[i], ")");
    }
    if (holdout_redeemed[i] != 0 && holdout_redeemed[i] != 1) {
      return detail::concat("holdout_redeemed[", i, "]: expected 0 or 1 (got ", holdout_redeemed[i],
                            ")");
    }
    if (!holdout_weight.empty() && !(std::isfinite(holdout_weight[i]) && holdout_weight[i] >= 0)) {
      return detail::concat("holdout_weight[", i, "]: expected a finite weight >= 0 (got ",
                            holdout_weight[i], ")");
    }
  }
  if (!incremental_share.empty()) {
    if (incremental_share.size() != static_cast<std::size_t>(n) * static_cast<std::size_t>(nb)) {
      return detail::concat("incremental_share: expected ", n, " x ", nb, " values (got ",
                            incremental_share.size(), ")");
    }
    for (std::size_t i = 0; i < incremental_share.size(); ++i) {
      if (!(incremental_share[i] >= 0 && incremental_share[i] <= 1)) {
        return detail::concat("incremental_share[", i / nb, ", ", i % nb,
                              "]: expected a share in [0, 1] (got ", incremental_share[i], ")");
      }
    }
  }
  if (pooled) {
    const std::string what = pooled->check(n, nb);
    if (!what.empty()) return "pooled: " + what;
  }
  if (preference_weight && !(*preference_weight >= 0 && *preference_weight <= 1)) {
    return detail::concat("preference_weight: expected a weight in [0, 1] (got ",
                          *preference_weight, ")");
  }
  if (!benefit_level.empty()) {
    if (benefit_level.size() != static_cast<std::size_t>(nb)) {
      return detail::concat("benefit_level: expected ", nb, " factors (got ", benefit_level.size(),
                            ")");
    }
    for (std::size_t b = 0; b < benefit_level.size(); ++b) {
      if (!(std::isfinite(benefit_level[b]) && benefit_level[b] > 0)) {
        return detail::concat("benefit_level[", b, "]: expected a finite factor > 0 (got ",
                              benefit_level[b], ")");
      }
    }
  }
  if (behavior) {
    const Index items = behavior->items.size();
    if (behavior->log.n_items() != items || behavior->benefit_items.n_items() != items) {
      return detail::concat("behavior: the log, the item catalog and the benefit items index ",
                            behavior->log.n_items(), ", ", items, " and ",
                            behavior->benefit_items.n_items(), " items (expected the same)");
    }
    if (behavior->benefit_items.n_benefits() != nb) {
      return detail::concat("behavior: benefit_items: expected ", nb,
                            " benefits (the event log's; got ",
                            behavior->benefit_items.n_benefits(), ")");
    }
    if (behavior->log.n_users() > n) {
      return detail::concat("behavior: log: expected at most ", n,
                            " members (the event log's; got ", behavior->log.n_users(), ")");
    }
  }
  return {};
}

PERKREC_INLINE void BenefitPlannerFile::validate() const {
  const std::string what = check();
  if (!what.empty()) detail::raise<InputError>("BenefitPlannerFile::validate: ", what);
}

PERKREC_INLINE void BenefitPlannerFile::write(ModelWriter& w, const std::string& prefix) const {
  validate();
  Json& c = content_section(w, prefix);
  c["config"] = config;
  c["n_users"] = events.n_users();
  c["n_benefits"] = events.n_benefits();
  c["has_users"] = users.has_value();
  detail::write_part(w, prefix + "part.fm", redemption_model.to_bytes());
  detail::write_part(w, prefix + "part.preference", preference.to_bytes());
  detail::write_part(w, prefix + "part.catalog", catalog.to_bytes());
  detail::write_part(w, prefix + "part.events", events.to_bytes());
  if (users) detail::write_part(w, prefix + "part.users", users->to_bytes());
  w.add(prefix + "order_value", order_value);
  w.add(prefix + "holdout_user", holdout_user);
  w.add(prefix + "holdout_benefit", holdout_benefit);
  w.add(prefix + "holdout_predicted", holdout_predicted);
  w.add(prefix + "holdout_redeemed", holdout_redeemed);
  w.add(prefix + "holdout_weight", holdout_weight);
  w.add(prefix + "incremental_share", incremental_share);
  if (pooled) {
    c["pooled"] = Json{{"intercept", pooled->intercept},
                       {"slope", pooled->slope},
                       {"n_codes", pooled->n_codes},
                       {"variance", pooled->variance}};
    std::vector<std::int32_t> codes;
    std::vector<double> effects;
    for (std::size_t a = 0; a < pooled->n_codes.size(); ++a) {
      codes.insert(codes.end(), pooled->benefit_code[a].begin(), pooled->benefit_code[a].end());
      effects.insert(effects.end(), pooled->attribute_effect[a].begin(),
                     pooled->attribute_effect[a].end());
    }
    w.add(prefix + "pooled_member", pooled->member);
    w.add(prefix + "pooled_benefit_code", codes);
    w.add(prefix + "pooled_attribute_effect", effects);
  }
  if (preference_weight) c["preference_weight"] = *preference_weight;
  if (!benefit_level.empty()) w.add(prefix + "benefit_level", benefit_level);
  if (behavior) {
    c["has_behavior"] = true;
    detail::write_part(w, prefix + "part.behavior_log", behavior->log.to_bytes());
    detail::write_part(w, prefix + "part.items", behavior->items.to_bytes());
    detail::write_part(w, prefix + "part.benefit_items", behavior->benefit_items.to_bytes());
  }
}

PERKREC_INLINE BenefitPlannerFile BenefitPlannerFile::read(const ModelReader& r,
                                                           const std::string& prefix) {
  const Json& c = content_section(r, prefix);
  JsonReader<ModelFormatError> jr(c, content_pointer(prefix), "BenefitPlannerFile::read");
  Index n_users = 0, n_benefits = 0;
  bool has_users = false;
  double preference_weight = 0;
  const Json* config = jr.raw("config");
  jr.require("n_users", n_users);
  jr.require("n_benefits", n_benefits);
  jr.require("has_users", has_users);
  const Json* pooled = jr.raw("pooled");
  const bool has_weight = jr.read("preference_weight", preference_weight);
  bool has_behavior = false;
  jr.read("has_behavior", has_behavior);
  jr.finish();
  if (config == nullptr || !config->is_object()) r.bad_content("config: expected a JSON object");
  if (n_users < 0 || n_benefits < 0) r.bad_content("negative shape");
  r.check_count("n_users", n_users);
  r.check_count("n_benefits", n_benefits);
  BenefitPlannerFile f;
  f.config = *config;
  f.events = detail::read_part<EventLog>(r, prefix + "part.events");
  if (f.events.n_users() != n_users || f.events.n_benefits() != n_benefits) {
    r.invalid(detail::concat("part 'events' holds ", f.events.n_users(), " members x ",
                             f.events.n_benefits(), " benefits (the header says ", n_users, " x ",
                             n_benefits, ")"));
  }
  f.redemption_model = detail::read_part<FM>(r, prefix + "part.fm");
  f.preference = detail::read_part<PreferenceModel>(r, prefix + "part.preference");
  f.catalog = detail::read_part<Catalog>(r, prefix + "part.catalog");
  if (has_users) f.users = detail::read_part<UserTable>(r, prefix + "part.users");
  f.order_value = r.vector<float>(prefix + "order_value", {n_users});
  f.holdout_user = r.vector<std::int32_t>(prefix + "holdout_user");
  f.holdout_benefit = r.vector<std::int32_t>(prefix + "holdout_benefit");
  f.holdout_predicted = r.vector<double>(prefix + "holdout_predicted");
  f.holdout_redeemed = r.vector<double>(prefix + "holdout_redeemed");
  f.holdout_weight = r.vector<float>(prefix + "holdout_weight");
  f.incremental_share = r.vector<float>(prefix + "incremental_share");
  if (pooled != nullptr) f.pooled = detail::read_pooled(r, prefix, *pooled, n_users, n_benefits);
  if (has_weight) f.preference_weight = preference_weight;
  if (r.has(prefix + "benefit_level"))
    f.benefit_level = r.vector<double>(prefix + "benefit_level", {n_benefits});
  if (has_behavior) {
    f.behavior = Behavior{detail::read_part<BehaviorLog>(r, prefix + "part.behavior_log"),
                          detail::read_part<ItemCatalog>(r, prefix + "part.items"),
                          detail::read_part<BenefitItems>(r, prefix + "part.benefit_items")};
  }
  const std::string what = f.check();
  if (!what.empty()) r.invalid(what);
  return f;
}

}  // namespace perkrec
