// The fitted benefit-planning pipeline as one model file (kind "BenefitPlanner").
//
// fit_benefit_planner (decide/benefit_planner_fit.hpp; perkrec.BenefitPlanner.fit calls it)
// fits everything a plan needs from an event log: the
// redemption FM with its FeatureEncoder, the PreferenceModel, each member's order value, the
// held-out issues that measure how much of the FM's member x benefit interaction holds up,
// and (optionally) the incremental share learned from the control group. This class is that
// state at rest: `save` writes it as one container, `load` reads it back and validates every
// part before returning, so a service can open the same file the data scientist saved.
//
// Layout: content {"config": {policy, params, times}, "parts": [names], "n_users",
// "n_benefits"}; the sub-objects (FM, PreferenceModel, Catalog, EventLog, optional UserTable)
// are stored as their own container bytes in u8 arrays "part.<name>", each verified (magic,
// checksum, kind, contents) by its own loader; per-member and per-issue arrays beside them.
// Optional since 2026-12: content "pooled" {intercept, slope, n_codes, variance} with arrays
// "pooled_member" (members), "pooled_benefit_code" (attributes x benefits) and
// "pooled_attribute_effect" (the attributes' members x codes effects, one after another), and
// content "preference_weight"; a file without them loads as before (no such step).
// Optional since 2026-12: content "has_behavior" with parts "part.behavior_log",
// "part.items" and "part.benefit_items" (BehaviorLog, ItemCatalog, BenefitItems): what members
// buy and browse, read by the encoder's behaviour fields and the reasons; a file without them
// loads as before.
// Optional since 2026-12: array "benefit_level" (n_benefits factors, params "benefit_level";
// calibration.hpp benefit_levels); a file without it plans as before.
//
// Example:
//   perkrec::BenefitPlannerFile f = perkrec::BenefitPlannerFile::load("plan.perk");
//   const perkrec::FM& fm = f.redemption_model;        // with its encoder in fm.metadata()
//   std::vector<float> v = f.order_value;               // per member
//
// Cost: loading parses each part once (the event log dominates: O(events)).
// Thread safety: a value; const methods are safe from any number of threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/json.hpp"
#include "perkrec/data/behavior_log.hpp"
#include "perkrec/data/catalog.hpp"
#include "perkrec/data/event_log.hpp"
#include "perkrec/data/item_catalog.hpp"
#include "perkrec/data/user_table.hpp"
#include "perkrec/decide/pooled_effects.hpp"
#include "perkrec/io/serializable.hpp"
#include "perkrec/models/fm.hpp"
#include "perkrec/models/preference.hpp"

namespace perkrec {

class BenefitPlannerFile : public Serializable<BenefitPlannerFile> {
 public:
  static constexpr const char* kind = "BenefitPlanner";

  /// Policy JSON, the pipeline's parameters and its times (free-form JSON object written by
  /// fit_benefit_planner, BenefitPlannerFitParams::to_config; must be an object).
  Json config = Json::object();
  FM redemption_model;             ///< the redemption FM; its metadata holds the encoder
  PreferenceModel preference;      ///< fitted on the same members and benefits as `events`
  Catalog catalog;                 ///< catalog.size() == events.n_benefits()
  EventLog events;                 ///< the history the plan's features and caps read
  std::optional<UserTable> users;  ///< member attributes; size() == events.n_users()
  std::vector<float> order_value;  ///< per member (events.n_users()), finite, >= 0
  /// Held-out issues for the interaction shrinkage (all the same length; may be empty):
  /// member and benefit in range, the FM's predicted probability in [0, 1], redeemed 0 or 1,
  /// optional weight (empty or the same length; finite, >= 0).
  std::vector<std::int32_t> holdout_user, holdout_benefit;
  std::vector<double> holdout_predicted, holdout_redeemed;
  std::vector<float> holdout_weight;
  /// Empty, or members x benefits (row-major) shares in [0, 1] learned from the control group.
  std::vector<float> incremental_share;
  /// Pooled member, member x kind and member x channel effects on top of the FM (params
  /// "pooled"; absent in files written before them): events.n_users() members x
  /// events.n_benefits() benefits.
  std::optional<PooledMemberEffects> pooled;
  /// The fitted weight of the preference model's member x kind log-preference as a logit
  /// offset (params "preference_offset"; absent in older files); finite, in [0, 1].
  std::optional<double> preference_weight;
  /// Empty, or one factor per benefit (finite, > 0) multiplying the plan's P (params
  /// "benefit_level", calibration.hpp benefit_levels; absent in older files).
  std::vector<double> benefit_level;
  /// What members buy and browse (perkrec.BenefitPlanner.fit(behavior=...); absent in older
  /// files and without behaviour): the three index the same items, benefit_items covers
  /// events.n_benefits() benefits and log at most events.n_users() members (the others have
  /// no behaviour).
  struct Behavior {
    BehaviorLog log;
    ItemCatalog items;
    BenefitItems benefit_items;
  };
  std::optional<Behavior> behavior;

  /// Throws InputError naming the first inconsistent field (before saving).
  void validate() const;

  void write(ModelWriter& w, const std::string& prefix) const;
  static BenefitPlannerFile read(const ModelReader& r, const std::string& prefix);

 private:
  /// The first inconsistency as a message, or empty.
  std::string check() const;
};

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/decide/benefit_planner_file_impl.hpp"
#endif
