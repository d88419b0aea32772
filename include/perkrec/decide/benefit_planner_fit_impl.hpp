// Definitions for benefit_planner_fit.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "perkrec/decide/benefit_planner.hpp"
#include "perkrec/decide/benefit_planner_fit.hpp"
#include "perkrec/decide/benefit_planner_impl.hpp"
#include "perkrec/decide/calibration.hpp"
#include "perkrec/decide/planner.hpp"
#include "perkrec/decide/policy.hpp"
#include "perkrec/decide/pooled_effects.hpp"
#include "perkrec/features/redemption_labels.hpp"
#include "perkrec/models/preference.hpp"

namespace perkrec {

PERKREC_INLINE const Json& benefit_planner_default_fields() {
  static const Json fields = [] {
    Json member = Json::array(), benefit = Json::array();
    for (const std::string& a : history_aggregate_names()) {
      if (a.rfind("member", 0) == 0) member.push_back(a);
      if (a.rfind("benefit", 0) == 0) benefit.push_back(a);
    }
    Json f = Json::parse(R"([
      {"name": "user", "kind": "id", "min_count": 3},
      {"name": "benefit", "kind": "id"},
      {"name": "kind", "kind": "categorical"},
      {"name": "face_value_band", "kind": "categorical"},
      {"name": "threshold", "kind": "numeric", "transform": "quantile", "bins": 6},
      {"name": "discount_rate", "kind": "numeric", "transform": "quantile", "bins": 6},
      {"name": "validity_days", "kind": "categorical"},
      {"name": "scope", "kind": "categorical"},
      {"name": "channel", "kind": "categorical"},
      {"name": "age_band", "kind": "categorical"},
      {"name": "gender", "kind": "categorical"},
      {"name": "tier", "kind": "categorical"},
      {"name": "region", "kind": "categorical"},
      {"name": "tenure_days", "kind": "numeric", "transform": "quantile", "bins": 8},
      {"name": "weekday", "kind": "categorical"},
      {"name": "hour", "kind": "categorical"},
      {"name": "member_history", "kind": "history", "bins": 6},
      {"name": "benefit_history", "kind": "history", "bins": 6}])");
    f[f.size() - 2]["aggregates"] = member;
    f[f.size() - 1]["aggregates"] = benefit;
    return f;
  }();
  return fields;
}

PERKREC_INLINE const Json& benefit_planner_default_behavior_field() {
  static const Json field = Json::parse(R"({"name": "behavior", "kind": "behavior",
    "levels": null, "actions": null,
    "aggregates": ["decayed_count", "days_since_last", "share_of_wallet", "member_days_since_last"],
    "half_life_days": 28, "bins": 8})");
  return field;
}

// ---------------------------------------------------------------------------------------------
// Params

namespace detail::benefit_planner_fit {

inline void check_choice(const std::string& value, std::initializer_list<const char*> choices,
                         const char* field) {
  for (const char* c : choices)
    if (value == c) return;
  std::string list;
  for (const char* c : choices) list += detail::concat(list.empty() ? "" : ", ", "'", c, "'");
  detail::raise<ConfigError>("BenefitPlanner: ", field, " must be one of ", list, " (got '", value,
                             "')");
}

/// Rethrows any error of a sub-object's params as a ConfigError naming the sub-object.
template <class F>
void as_config_error(const char* what, F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    throw ConfigError(detail::concat("BenefitPlanner: ", what, ": ", e.what()));
  } catch (const std::exception& e) {
    throw ConfigError(detail::concat("BenefitPlanner: ", what, ": ", e.what()));
  }
}

inline const Json& member(const Json& object, const char* key, const char* where) {
  if (!object.is_object() || !object.contains(key))
    detail::raise<ConfigError>("BenefitPlanner: config: ", where, ": missing '", key, "'");
  return object.at(key);
}

}  // namespace detail::benefit_planner_fit

PERKREC_INLINE Json BenefitPlannerFitParams::fm_params() const {
  Json p = Json::object();
  p["field_aware"] = false;
  p["factors"] = factors;
  p["loss"] = "logistic";
  p["optimizer"] = "adagrad";
  p["learning_rate"] = learning_rate;
  p["init_std"] = 0.01;
  p["reg_bias"] = 0.0;
  p["reg_linear"] = reg_linear;
  p["reg_factors"] = reg_factors;
  p["epochs"] = epochs >= 0 ? epochs : (early_stopping ? 10 : 6);
  p["early_stopping_rounds"] = early_stopping ? early_stopping_rounds : 0;
  p["shuffle"] = "blocks";
  p["num_threads"] = fm_threads;
  p["seed"] = seed;
  return p;
}

PERKREC_INLINE Json BenefitPlannerFitParams::preference_params_json() const {
  Json p = preference_params;
  if (p.is_object() && !p.contains("num_threads")) p["num_threads"] = num_threads;
  return p;
}

PERKREC_INLINE Json BenefitPlannerFitParams::resolved_behavior_field() const {
  if (behavior_field.is_null()) return behavior_field;
  Json f = behavior_field;
  if (f.is_object()) {
    if (!f.contains("name")) f["name"] = "behavior";
    if (!f.contains("kind")) f["kind"] = "behavior";
  }
  return f;
}

PERKREC_INLINE void BenefitPlannerFitParams::validate() const {
  using detail::benefit_planner_fit::as_config_error;
  using detail::benefit_planner_fit::check_choice;
  check_choice(weighting, {"ipw", "none"}, "weighting");
  check_choice(incremental, {"timing", "control"}, "incremental");
  if (!(margin > 0 && margin <= 1))
    detail::raise<ConfigError>("BenefitPlanner: margin must be in (0, 1] (got ", margin, ")");
  if (epochs < -1)
    detail::raise<ConfigError>("BenefitPlanner: epochs must be >= 0 or -1 (got ", epochs, ")");
  if (!preference_params.is_object()) {
    detail::raise<ConfigError>("BenefitPlanner: preference_params must be an object (got ",
                               preference_params.type_name(), ")");
  }
  const Json field = resolved_behavior_field();
  if (!field.is_null()) {
    if (!field.is_object()) {
      detail::raise<ConfigError>("BenefitPlanner: behavior_field must be an object or null (got ",
                                 field.type_name(), ")");
    }
    if (field.at("kind") != "behavior") {
      detail::raise<ConfigError>("BenefitPlanner: behavior_field: kind must be 'behavior' (got ",
                                 field.at("kind").dump(), ")");
    }
    as_config_error("behavior_field", [&] {
      Json spec = Json::array();
      spec.push_back(field);
      FeatureSpec::from_json(spec, "/fields");
    });
  }
  as_config_error("fm", [&] { FMParams::from_json(fm_params()).validate(); });
  as_config_error("preference_params",
                  [&] { PreferenceParams::from_json(preference_params_json()).validate(); });
  as_config_error("planner", [&] {
    Json pp = Json::object();
    pp["objective"] = objective;
    pp["top_k"] = top_k;
    pp["method"] = method;
    pp["num_threads"] = num_threads;
    PlannerParams::from_json(pp).validate();
  });
  as_config_error("policy", [&] { Policy::from_json(policy); });
}

PERKREC_INLINE Json BenefitPlannerFitParams::to_config(Timestamp cut_time,
                                                       Timestamp end_time) const {
  Json params = Json::object();
  params["early_stopping"] = early_stopping;
  params["weighting"] = weighting;
  params["shrink"] = shrink;
  params["pooled"] = pooled;
  params["preference_offset"] = preference_offset;
  params["incremental"] = incremental;
  params["margin"] = margin;
  params["objective"] = objective;
  params["top_k"] = top_k;
  params["method"] = method;
  params["seed"] = seed;
  params["num_threads"] = num_threads;
  params["behavior_field"] = resolved_behavior_field();
  params["segment_field"] = segment_field;
  params["benefit_level"] = benefit_level;
  const Json fm = fm_params();
  Json fm_stored = Json::object();
  for (const char* key : {"factors", "epochs", "early_stopping_rounds", "reg_linear", "reg_factors",
                          "learning_rate", "num_threads", "seed"})
    fm_stored[key] = fm.at(key);
  Json config = Json::object();
  config["policy"] = Policy::from_json(policy).to_json();
  config["params"] = std::move(params);
  config["fm_params"] = std::move(fm_stored);
  config["preference_params"] = preference_params_json();
  config["cut_time"] = cut_time;
  config["end_time"] = end_time;
  return config;
}

PERKREC_INLINE BenefitPlannerFitParams BenefitPlannerFitParams::from_json(const Json& config) {
  // The keys to_config writes are the known ones: one list, the defaults' config.
  static const Json known = BenefitPlannerFitParams().to_config(0, 0);
  JsonReader<ConfigError> top(config, "", "BenefitPlanner: config");
  for (const auto& [key, value] : known.items()) {
    top.raw(key.c_str());
    if (!value.is_object() || key == "policy" || key == "preference_params" ||
        !config.contains(key) || !config.at(key).is_object())
      continue;  // the policy and the preference model read their own keys strictly
    JsonReader<ConfigError> inner(config.at(key), top.child_pointer(key), top.context());
    for (const auto& item : value.items()) inner.raw(item.key().c_str());
    inner.finish();
  }
  top.finish();
  return from_config(config);
}

PERKREC_INLINE BenefitPlannerFitParams BenefitPlannerFitParams::from_config(const Json& config) {
  using detail::benefit_planner_fit::member;
  BenefitPlannerFitParams p;
  try {
    const Json& params = member(config, "params", "config");
    const Json& fm = member(config, "fm_params", "config");
    p.factors = member(fm, "factors", "fm_params").get<int>();
    p.epochs = member(fm, "epochs", "fm_params").get<int>();
    p.reg_linear = member(fm, "reg_linear", "fm_params").get<double>();
    p.reg_factors = member(fm, "reg_factors", "fm_params").get<double>();
    p.learning_rate = member(fm, "learning_rate", "fm_params").get<double>();
    p.fm_threads = member(fm, "num_threads", "fm_params").get<int>();
    p.early_stopping = member(params, "early_stopping", "params").get<bool>();
    p.early_stopping_rounds = member(fm, "early_stopping_rounds", "fm_params").get<int>();
    if (!p.early_stopping) p.early_stopping_rounds = 2;  // stored as 0
    p.seed = member(params, "seed", "params").get<std::uint64_t>();
    p.weighting = member(params, "weighting", "params").get<std::string>();
    p.shrink = member(params, "shrink", "params").get<bool>();
    p.pooled = params.value("pooled", false);
    p.preference_offset = params.value("preference_offset", false);
    p.incremental = member(params, "incremental", "params").get<std::string>();
    p.margin = member(params, "margin", "params").get<double>();
    p.preference_params = member(config, "preference_params", "config");
    p.objective = member(params, "objective", "params").get<std::string>();
    p.top_k = member(params, "top_k", "params").get<int>();
    p.method = member(params, "method", "params").get<std::string>();
    p.num_threads = member(params, "num_threads", "params").get<int>();
    p.behavior_field = params.value("behavior_field", Json());
    p.segment_field = params.value("segment_field", false);
    p.benefit_level = params.value("benefit_level", false);
    p.policy = member(config, "policy", "config");
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    detail::raise<ConfigError>("BenefitPlanner: config: ", e.what());
  }
  p.validate();
  return p;
}

PERKREC_INLINE const std::string& SegmentCheckpoints::at(Index user, Timestamp time) const {
  static const std::string none = "none";
  const auto it = std::upper_bound(times.begin(), times.end(), time);
  if (it == times.begin()) return none;
  const auto& seg = segments[static_cast<std::size_t>(it - times.begin() - 1)];
  if (user < 0 || static_cast<std::size_t>(user) >= seg.size()) return none;
  return seg[static_cast<std::size_t>(user)];
}

// ---------------------------------------------------------------------------------------------
// The fit's stages

namespace detail::benefit_planner_fit {

/// Every issue of the log: member, benefit, time, label, and when its validity ends.
struct Issues {
  std::vector<Offset> event;
  std::vector<Index> user, benefit;
  std::vector<Timestamp> time, ends;
  std::vector<float> label;
  std::size_t size() const { return user.size(); }
  /// Positions where keep(i).
  template <class Keep>
  std::vector<std::size_t> where(Keep keep) const {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < size(); ++i)
      if (keep(i)) out.push_back(i);
    return out;
  }
};

inline Issues issues_of(const EventLog& events, const Catalog& catalog) {
  std::vector<double> windows;
  for (const Benefit& b : catalog.benefits()) {
    const double v = static_cast<double>(b.validity_days);
    windows.push_back(v > 0 ? v : std::nan(""));
  }
  RedemptionLabels labels = redemption_labels(events, windows);
  Issues out;
  const auto users = events.users();
  const auto benefits = events.benefits();
  const auto times = events.timestamps();
  for (std::size_t i = 0; i < labels.event.size(); ++i) {
    const auto e = static_cast<std::size_t>(labels.event[i]);
    const Index b = benefits[e];
    if (b >= catalog.size()) {
      detail::raise<InputError>("BenefitPlanner.fit: events: benefit ", b,
                                " is not in the catalog (", catalog.size(), " benefits)");
    }
    const std::int64_t validity = catalog[b].validity_days;
    if (!(validity > 0)) {
      detail::raise<InputError>("BenefitPlanner.fit: catalog: validity_days of benefit ", b,
                                " is not > 0 (got ", validity, ")");
    }
    out.event.push_back(labels.event[i]);
    out.user.push_back(users[e]);
    out.benefit.push_back(b);
    out.time.push_back(times[e]);
    out.ends.push_back(times[e] + validity * 86400);
    out.label.push_back(static_cast<float>(labels.label[i]));
  }
  return out;
}

/// The logged propensities of the issues at `rows`.
inline std::vector<double> propensities(const EventLog& events, const Issues& issues,
                                        const std::vector<std::size_t>& rows) {
  const auto p = events.propensities();
  std::vector<double> out;
  out.reserve(rows.size());
  for (std::size_t i : rows)
    out.push_back(static_cast<double>(p[static_cast<std::size_t>(issues.event[i])]));
  return out;
}

/// The encoder's input columns of the issues at `rows` (the plan's column code, each row at its
/// issue time) with the as-of member segment when `checkpoints` is given.
class IssueColumns {
 public:
  IssueColumns(const FeatureEncoder& encoder, const PlanFrame& frame, const Issues& issues,
               std::vector<std::size_t> rows, const SegmentCheckpoints* checkpoints)
      : rows_(std::move(rows)), block_(encoder, frame, rows_.size(), [&](std::size_t r) {
          const std::size_t i = rows_[r];
          return benefit_planner::BlockColumns::RowKey{static_cast<std::size_t>(issues.user[i]),
                                                       static_cast<std::size_t>(issues.benefit[i]),
                                                       issues.time[i]};
        }) {
    if (checkpoints == nullptr) return;
    std::map<std::string, std::int32_t> code;
    SampleColumns::Categorical c;
    c.name = kMemberSegmentColumn;
    for (std::size_t i : rows_) {
      const std::string& s = checkpoints->at(issues.user[i], issues.time[i]);
      auto it = code.find(s);
      if (it == code.end()) {
        it = code.emplace(s, static_cast<std::int32_t>(c.dictionary.size())).first;
        c.dictionary.push_back(s);
      }
      segment_codes_.push_back(it->second);
    }
    c.codes = Span<const std::int32_t>(segment_codes_);
    block_.columns.categoricals.push_back(std::move(c));
  }
  const SampleColumns& columns() const { return block_.columns; }
  const std::vector<std::size_t>& rows() const { return rows_; }

 private:
  std::vector<std::size_t> rows_;
  benefit_planner::BlockColumns block_;
  std::vector<std::int32_t> segment_codes_;
};

inline std::vector<float> gather(const std::vector<float>& v, const std::vector<std::size_t>& at) {
  std::vector<float> out;
  out.reserve(at.size());
  for (std::size_t i : at) out.push_back(v[i]);
  return out;
}

/// pd.factorize of the strings: codes in the order of first appearance.
inline std::vector<Index> factorize(const std::vector<std::string>& values) {
  std::map<std::string, Index> code;
  std::vector<Index> out;
  for (const std::string& v : values)
    out.push_back(code.emplace(v, static_cast<Index>(code.size())).first->second);
  return out;
}

inline PreferenceModel fit_preference(const BenefitPlannerFitParams& params, const EventLog& events,
                                      const Catalog& catalog, const UserTable* user_table,
                                      Timestamp cut, const Callbacks& callbacks = {}) {
  PreferenceModel model(PreferenceParams::from_json(params.preference_params_json()));
  if (user_table != nullptr) {
    model.fit(events, catalog, cut, *user_table, callbacks);
  } else {
    model.fit(events, catalog, cut, callbacks);
  }
  return model;
}

/// A user-table column that a default field reads must have the field's type: the plan-time
/// columns cannot read a numeric column as categories or categories as numbers.
inline void check_user_columns(const UserTable& user_table) {
  const std::vector<std::string> names = user_table.names();
  for (const Json& field : benefit_planner_default_fields()) {
    const std::string kind = field.at("kind").get<std::string>();
    if (kind != "categorical" && kind != "numeric") continue;
    const std::string name = field.at("name").get<std::string>();
    const std::string column = field.value("column", name);
    if (std::find(names.begin(), names.end(), column) == names.end()) continue;
    const bool numeric = user_table.type(column) == UserTable::ColumnType::numeric;
    if (numeric == (kind == "numeric")) continue;
    detail::raise<InputError>(
        "BenefitPlanner.fit: user_table: column '", column, "' is ",
        numeric ? "numeric" : "categorical", " but the default field '", name, "' reads it as ",
        kind, " (got a ", numeric ? "numeric" : "categorical", " column, expected a ", kind,
        " one); ", numeric ? "give it as strings or" : "give it as numbers or",
        " rename the column");
  }
}

/// The input checks of the file comment (before any fitting).
inline void check_inputs(const EventLog& events, const Catalog& catalog,
                         const UserTable* user_table, const BehaviorData* behavior,
                         const BenefitPlannerFitParams& params) {
  if (catalog.size() != events.n_benefits()) {
    detail::raise<InputError>("BenefitPlanner.fit: catalog: expected ", events.n_benefits(),
                              " benefits, the event log's (got ", catalog.size(), ")");
  }
  if (user_table != nullptr && user_table->size() != events.n_users()) {
    detail::raise<InputError>("BenefitPlanner.fit: user_table: expected ", events.n_users(),
                              " members, the event log's (got ", user_table->size(), ")");
  }
  if (user_table != nullptr) check_user_columns(*user_table);
  if (events.empty())
    detail::raise<InputError>("BenefitPlanner.fit: events: the log is empty (got 0 events)");
  if (behavior == nullptr || !behavior->complete()) {
    if (behavior != nullptr && (behavior->log || behavior->items || behavior->benefit_items)) {
      detail::raise<InputError>(
          "BenefitPlanner.fit: behavior: give the BehaviorLog, ItemCatalog and BenefitItems "
          "together");
    }
    if (!params.behavior_field.is_null()) {
      detail::raise<InputError>(
          "BenefitPlanner.fit: behavior_field needs behavior=(BehaviorLog, ItemCatalog, "
          "BenefitItems) (got none)");
    }
  } else {
    const BehaviorData& b = *behavior;
    if (b.benefit_items->n_benefits() != events.n_benefits()) {
      detail::raise<InputError>("BenefitPlanner.fit: behavior: the benefit items cover ",
                                b.benefit_items->n_benefits(),
                                " benefits (expected the event log's ", events.n_benefits(), ")");
    }
    if (b.log->n_users() > events.n_users()) {
      detail::raise<InputError>("BenefitPlanner.fit: behavior: the behaviour log has ",
                                b.log->n_users(), " members (expected at most the event log's ",
                                events.n_users(), ")");
    }
    detail::check_behavior_member_map(*b.log, events, "BenefitPlanner.fit");
    if (b.log->n_items() != b.items->size() || b.items->size() != b.benefit_items->n_items()) {
      detail::raise<InputError>(
          "BenefitPlanner.fit: behavior: the log, the item catalog and the benefit items index ",
          b.log->n_items(), ", ", b.items->size(), " and ", b.benefit_items->n_items(),
          " items (expected the same)");
    }
  }
  if (params.weighting == "ipw" && !events.has_propensity()) {
    detail::raise<InputError>(
        "BenefitPlanner.fit: events: weighting 'ipw' needs logged propensities (the log has no "
        "propensity column); use weighting='none'");
  }
  if (params.incremental == "control" && !events.has_control()) {
    detail::raise<InputError>(
        "BenefitPlanner.fit: events: incremental 'control' needs the control flag (the log has "
        "none); use incremental='timing'");
  }
}

/// The data conditions of the file comment on the issues (before any fitting).
inline void check_issues(std::size_t before, std::size_t after, std::size_t done_before,
                         const BenefitPlannerFitParams& params, Timestamp cut) {
  if (before == 0) {
    detail::raise<InputError>(
        "BenefitPlanner.fit: events: no issues before cut_time (got "
        "cut_time ",
        cut, ")");
  }
  if (params.early_stopping && after == 0) {
    detail::raise<InputError>(
        "BenefitPlanner.fit: cut_time: early stopping needs issues after cut_time whose validity "
        "ended by the end of the log (got none); move cut_time earlier or pass "
        "early_stopping=False");
  }
  if ((params.shrink || params.benefit_level) && after == 0) {
    detail::raise<InputError>(
        "BenefitPlanner.fit: cut_time: the shrinkage and the benefit levels need issues after "
        "cut_time whose validity ended by the end of the log (got none); move cut_time earlier "
        "or pass shrink=False, benefit_level=False");
  }
  if ((params.pooled || params.preference_offset) && (after == 0 || done_before == 0)) {
    detail::raise<InputError>(
        "BenefitPlanner.fit: cut_time: pooled effects and the preference offset need finished "
        "issues on both sides of cut_time (got ",
        done_before, " before, ", after,
        " after); move cut_time or pass pooled=False, preference_offset=False");
  }
}

/// The encoder's field specification: the defaults (optional), the segment, the behaviour.
inline FeatureSpec encoder_spec(const BenefitPlannerFitParams& params,
                                const BehaviorData* behavior) {
  Json fields = Json::array();
  for (Json f : benefit_planner_default_fields()) {
    f["optional"] = true;
    fields.push_back(std::move(f));
  }
  if (params.segment_field) {
    fields.push_back(Json{{"name", kMemberSegmentColumn}, {"kind", "categorical"}});
  }
  if (behavior != nullptr && behavior->complete()) {
    Json field = params.resolved_behavior_field();
    if (field.is_null()) {
      field = benefit_planner_default_behavior_field();
      field["levels"] = behavior->items->level_names();
      field["actions"] = behavior->log->action_names();
    }
    fields.push_back(std::move(field));
  }
  return FeatureSpec::from_json(Json{{"fields", std::move(fields)}}, "");
}

inline std::vector<float> predict_clipped(const FM& fm, const CsrMatrix<float>& X) {
  std::vector<float> p(static_cast<std::size_t>(X.rows));
  fm.predict(X.view(), p);
  for (float& x : p) x = std::clamp(x, 1e-6f, static_cast<float>(1 - 1e-6));
  return p;
}

}  // namespace detail::benefit_planner_fit

PERKREC_INLINE SegmentCheckpoints benefit_planner_segment_checkpoints(
    const EventLog& events, const Catalog& catalog, const UserTable* user_table,
    const BenefitPlannerFitParams& params) {
  SegmentCheckpoints out;
  if (events.empty()) return out;
  const Timestamp step = static_cast<Timestamp>(kSegmentCheckpointDays) * 86400;
  for (Timestamp t = events.min_time() + step; t < events.max_time(); t += step) {
    const PreferenceModel model =
        detail::benefit_planner_fit::fit_preference(params, events, catalog, user_table, t);
    const SegmentAssignment seg = model.segments(SegmentRules::defaults());
    std::vector<std::string> names;
    names.reserve(seg.codes.size());
    for (std::int32_t c : seg.codes)
      names.push_back(c >= 0 ? seg.names[static_cast<std::size_t>(c)] : std::string("nan"));
    out.times.push_back(t);
    out.segments.push_back(std::move(names));
  }
  return out;
}

namespace detail::benefit_planner_fit {

/// What every stage reads: the inputs, the issues and their row sets, the rows' columns.
struct Context {
  const EventLog& events;
  const Catalog& catalog;
  const UserTable* user_table;
  const BehaviorData* behavior;
  const BenefitPlannerFitParams& params;
  Timestamp cut, end;
  Issues issues;
  std::vector<std::size_t> train;  ///< before the cut, validity ended by the end
  std::vector<std::size_t> held;   ///< after the cut, validity ended by the end
  std::vector<std::size_t> done;   ///< validity ended by the cut, or held
  const SegmentCheckpoints* asof = nullptr;
  PlanFrame frame;

  Context(const EventLog& e, const Catalog& c, const UserTable* u, const BehaviorData* b,
          const BenefitPlannerFitParams& p, Timestamp t_cut)
      : events(e),
        catalog(c),
        user_table(u),
        behavior(b),
        params(p),
        cut(t_cut),
        end(e.max_time()),
        issues(issues_of(e, c)),
        frame(c, u) {
    train = issues.where([&](std::size_t i) { return issues.time[i] < cut && finished(i); });
    held = issues.where([&](std::size_t i) { return is_held(i); });
    done = issues.where([&](std::size_t i) { return issues.ends[i] <= cut || is_held(i); });
  }
  bool finished(std::size_t i) const { return issues.ends[i] <= end; }
  bool is_held(std::size_t i) const { return issues.time[i] >= cut && finished(i); }
  IssueColumns columns(const FeatureEncoder& encoder, const std::vector<std::size_t>& rows) const {
    return IssueColumns(encoder, frame, issues, rows, asof);
  }
  /// Clipped FM predictions of the issues at `rows`.
  std::vector<float> predict(const FM& fm, const FeatureEncoder& encoder,
                             const std::vector<std::size_t>& rows) const {
    return predict_clipped(
        fm, encoder.transform(columns(encoder, rows).columns(), &events, nullptr, behavior));
  }
};

/// Steps 1-2: the encoder fitted on the training rows, the FM (early-stopped on the held-out
/// rows), its encoder in its metadata.
struct RedemptionModel {
  FeatureEncoder encoder;
  FM fm;
};

inline RedemptionModel fit_redemption_model(const Context& c, const Callbacks& callbacks) {
  RedemptionModel m{FeatureEncoder(encoder_spec(c.params, c.behavior)),
                    FM(FMParams::from_json(c.params.fm_params()))};
  std::vector<std::string> kinds, channels;
  std::vector<double> faces;
  for (const Benefit& b : c.catalog.benefits()) {
    kinds.emplace_back(to_string(b.kind));
    channels.push_back(b.channel);
    faces.push_back(b.face_value);
  }
  m.encoder.set_benefits(kinds, faces, channels);
  const IssueColumns train = c.columns(m.encoder, c.train);
  m.encoder.fit(train.columns(), &c.events, c.behavior);
  m.fm.set_metadata(python_json_dumps(
      Json{{"encoder", parse_json_strict<ModelFormatError>(m.encoder.to_json(), "encoder")}}));
  const CsrMatrix<float> X = m.encoder.transform(train.columns(), &c.events, nullptr, c.behavior);
  const std::vector<float> y = gather(c.issues.label, c.train);
  std::vector<float> w;
  if (c.params.weighting == "ipw") w = issue_weights(propensities(c.events, c.issues, c.train));
  FMTarget target;
  target.labels = y;
  target.sample_weights = w;
  const std::vector<std::int32_t> fields = m.encoder.feature_fields();
  if (!c.params.early_stopping) {
    m.fm.fit(X.view(), target, fields, m.encoder.n_fields(), nullptr, nullptr, callbacks);
    return m;
  }
  const CsrMatrix<float> held_X =
      m.encoder.transform(c.columns(m.encoder, c.held).columns(), &c.events, nullptr, c.behavior);
  const std::vector<float> held_y = gather(c.issues.label, c.held);
  FMTarget held_target;
  held_target.labels = held_y;
  const CsrView<float> vx = held_X.view();
  m.fm.fit(X.view(), target, fields, m.encoder.n_fields(), &vx, &held_target, callbacks);
  return m;
}

/// Step 3: the held-out issues with the FM's predictions (and their issue weights).
inline void add_holdout(const Context& c, const RedemptionModel& m, BenefitPlannerFile& file) {
  const std::vector<float> p = c.predict(m.fm, m.encoder, c.held);
  for (std::size_t r = 0; r < c.held.size(); ++r) {
    const std::size_t i = c.held[r];
    file.holdout_user.push_back(static_cast<std::int32_t>(c.issues.user[i]));
    file.holdout_benefit.push_back(static_cast<std::int32_t>(c.issues.benefit[i]));
    file.holdout_predicted.push_back(static_cast<double>(p[r]));
    file.holdout_redeemed.push_back(static_cast<double>(c.issues.label[i]));
  }
  if (c.events.has_propensity())
    file.holdout_weight = issue_weights(propensities(c.events, c.issues, c.held));
}

/// Step 5b: the per-benefit level factors of the held-out issues (add_holdout's arrays).
inline void add_benefit_level(const Context& c, BenefitPlannerFile& file) {
  const std::vector<Index> benefits(file.holdout_benefit.begin(), file.holdout_benefit.end());
  const std::vector<double> weight(file.holdout_weight.begin(), file.holdout_weight.end());
  file.benefit_level = benefit_levels(c.events.n_benefits(), benefits, file.holdout_predicted,
                                      file.holdout_redeemed, weight);
}

/// Step 4: the preference model, the control share and the order values at the end.
inline void add_end_state(const Context& c, BenefitPlannerFile& file, const Callbacks& callbacks) {
  file.preference = fit_preference(c.params, c.events, c.catalog, c.user_table, c.end, callbacks);
  if (c.events.user_ids().size() > 0 || c.events.benefit_ids().size() > 0)
    file.preference.set_ids(c.events.user_ids(), c.events.benefit_ids());
  if (c.params.incremental == "control")
    file.incremental_share = incremental_share_from_control(c.events, c.catalog, c.end);
  file.order_value = order_value(c.events, c.params.margin, c.end);
}

/// Step 5: pooled member effects and the preference weight on the finished issues (`done`),
/// the FM's prediction at each as the offset, weights from the issue weights of all issues.
inline void add_offsets(const Context& c, const RedemptionModel& m, BenefitPlannerFile& file,
                        BenefitPlannerFitInfo& info) {
  const std::vector<float> at = c.predict(m.fm, m.encoder, c.done);
  const std::vector<double> at_issue(at.begin(), at.end());
  std::vector<double> labels, weight;
  std::vector<Index> users, benefits;
  std::vector<std::uint8_t> held;
  if (c.events.has_propensity()) {
    std::vector<std::size_t> all(c.issues.size());
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
    const std::vector<float> w = issue_weights(propensities(c.events, c.issues, all));
    for (std::size_t i : c.done) weight.push_back(static_cast<double>(w[i]));
  }
  for (std::size_t i : c.done) {
    users.push_back(c.issues.user[i]);
    benefits.push_back(c.issues.benefit[i]);
    labels.push_back(static_cast<double>(c.issues.label[i]));
    held.push_back(c.is_held(i) ? 1 : 0);
  }
  if (c.params.pooled) {
    std::vector<std::string> kinds, channels;
    for (const Benefit& b : c.catalog.benefits()) {
      kinds.emplace_back(to_string(b.kind));
      channels.push_back(b.channel);
    }
    const std::vector<Index> kind_codes = factorize(kinds), channel_codes = factorize(channels);
    const std::vector<Span<const Index>> attributes = {kind_codes, channel_codes};
    file.pooled = fit_pooled_member_effects(c.events.n_users(), c.events.n_benefits(), attributes,
                                            users, benefits, at_issue, labels, weight, held);
  }
  if (!c.params.preference_offset) return;
  std::vector<Index> hu, hb;
  std::vector<double> hq, hy, hw;
  for (std::size_t r = 0; r < held.size(); ++r) {
    if (!held[r]) continue;
    hu.push_back(users[r]);
    hb.push_back(benefits[r]);
    hq.push_back(at_issue[r]);
    hy.push_back(labels[r]);
    if (!weight.empty()) hw.push_back(weight[r]);
  }
  const PreferenceModel at_cut = fit_preference(c.params, c.events, c.catalog, c.user_table, c.cut);
  OffsetSlopeParams slope;
  slope.lower = 0.0;
  slope.upper = 1.0;
  const OffsetSlope fitted =
      fit_preference_weight(KindPreferenceLift(at_cut, c.catalog), hu, hb, hq, hy, hw,
                            file.pooled ? &*file.pooled : nullptr, slope);
  file.preference_weight = fitted.slope;
  info.preference_weight_unclipped = fitted.unclipped;
}

}  // namespace detail::benefit_planner_fit

PERKREC_INLINE BenefitPlannerFile fit_benefit_planner(
    const EventLog& events, const Catalog& catalog, const UserTable* user_table, Timestamp cut,
    const BehaviorData* behavior, const BenefitPlannerFitParams& params, const Callbacks& callbacks,
    BenefitPlannerFitInfo* info) {
  namespace fit = detail::benefit_planner_fit;
  params.validate();
  fit::check_inputs(events, catalog, user_table, behavior, params);
  const Timestamp t_end = events.max_time();
  const Timestamp t_cut = cut == kNoTime ? t_end - kDefaultCutDays * 86400 : cut;
  if (!(t_cut <= t_end)) {
    detail::raise<InputError>(
        "BenefitPlanner.fit: cut_time must not be after the log's last event ", t_end, " (got ",
        t_cut, ")");
  }
  // The labels and row sets; every data condition is checked before any fitting.
  fit::Context c(events, catalog, user_table, behavior, params, t_cut);
  fit::check_issues(c.train.size(), c.held.size(), c.done.size() - c.held.size(), params, t_cut);
  fit::encoder_spec(params, behavior);  // a behaviour field the data lack: ConfigError, now

  BenefitPlannerFitInfo measured;
  if (params.segment_field) {  // step 0
    measured.checkpoints = benefit_planner_segment_checkpoints(events, catalog, user_table, params);
    c.asof = &measured.checkpoints;
  }
  fit::RedemptionModel model = fit::fit_redemption_model(c, callbacks);
  BenefitPlannerFile file;
  if (params.shrink || params.benefit_level) fit::add_holdout(c, model, file);
  if (params.benefit_level) fit::add_benefit_level(c, file);
  if (!params.shrink) {  // the held-out issues were only the benefit levels'
    file.holdout_user.clear();
    file.holdout_benefit.clear();
    file.holdout_predicted.clear();
    file.holdout_redeemed.clear();
    file.holdout_weight.clear();
  }
  fit::add_end_state(c, file, callbacks);
  if (params.pooled || params.preference_offset) fit::add_offsets(c, model, file, measured);

  file.config = params.to_config(t_cut, t_end);  // step 6
  file.redemption_model = std::move(model.fm);
  file.catalog = catalog;
  file.events = events;
  if (user_table != nullptr) file.users = *user_table;
  if (behavior != nullptr && behavior->complete()) {
    file.behavior =
        BenefitPlannerFile::Behavior{*behavior->log, *behavior->items, *behavior->benefit_items};
  }
  file.validate();
  if (info != nullptr) *info = std::move(measured);
  return file;
}

// ---------------------------------------------------------------------------------------------
// Python's json.dumps

namespace detail::benefit_planner_fit {

/// repr(float): the shortest digits that read back as `x`, fixed notation for decimal exponents
/// in [-4, 16), else d.ddde+XX.
inline std::string python_float(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
  char buf[40];
  int precision = 1;
  for (; precision < 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*e", precision - 1, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  std::snprintf(buf, sizeof(buf), "%.*e", precision - 1, x);
  std::string s(buf);
  const std::size_t e = s.find('e');
  const int exponent = std::atoi(s.c_str() + e + 1);
  std::string sign, digits;
  for (std::size_t i = 0; i < e; ++i) {
    if (s[i] == '-') sign = "-";
    if (s[i] >= '0' && s[i] <= '9') digits += s[i];
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  if (exponent < -4 || exponent >= 16) {
    std::string out = sign + digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char ex[16];
    std::snprintf(ex, sizeof(ex), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    return out + ex;
  }
  const int point = exponent + 1;  // digits before the decimal point
  if (point <= 0) return sign + "0." + std::string(static_cast<std::size_t>(-point), '0') + digits;
  const auto p = static_cast<std::size_t>(point);
  if (digits.size() <= p) return sign + digits + std::string(p - digits.size(), '0') + ".0";
  return sign + digits.substr(0, p) + "." + digits.substr(p);
}

inline void python_string(const std::string& s, std::string& out) {
  static const char* hex = "0123456789abcdef";
  auto unicode = [&](unsigned c) {
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) out += hex[(c >> shift) & 0xF];
  };
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    unsigned cp = c;
    std::size_t len = 1;
    if (c >= 0xF0) {
      cp = c & 0x07u, len = 4;
    } else if (c >= 0xE0) {
      cp = c & 0x0Fu, len = 3;
    } else if (c >= 0xC0) {
      cp = c & 0x1Fu, len = 2;
    }
    for (std::size_t k = 1; k < len && i + k < s.size(); ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3Fu);
    i += len;
    switch (cp) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    if (cp >= 0x20 && cp < 0x7F) {
      out += static_cast<char>(cp);
    } else if (cp >= 0x10000) {
      const unsigned v = cp - 0x10000;
      unicode(0xD800 + (v >> 10));
      unicode(0xDC00 + (v & 0x3FF));
    } else {
      unicode(cp);
    }
  }
  out += '"';
}

inline void python_dump(const Json& v, std::string& out) {
  switch (v.type()) {
    case Json::value_t::object: {
      out += '{';
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out += ", ";
        first = false;
        python_string(it.key(), out);
        out += ": ";
        python_dump(it.value(), out);
      }
      out += '}';
      return;
    }
    case Json::value_t::array: {
      out += '[';
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (i > 0) out += ", ";
        python_dump(v[i], out);
      }
      out += ']';
      return;
    }
    case Json::value_t::string:
      python_string(v.get_ref<const std::string&>(), out);
      return;
    case Json::value_t::number_float:
      out += python_float(v.get<double>());
      return;
    case Json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      return;
    case Json::value_t::null:
      out += "null";
      return;
    default:
      out += v.dump();  // integers
      return;
  }
}

}  // namespace detail::benefit_planner_fit

PERKREC_INLINE std::string detail::python_json_dumps(const Json& value) {
  std::string out;
  benefit_planner_fit::python_dump(value, out);
  return out;
}

}  // namespace perkrec
