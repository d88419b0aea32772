// Explanations: structured reasons for each decision of a plan.
//
// For one decision (member u receives benefit b) explain() returns
//   {"member": u or its id, "benefit": b's id,
//    "probability": p, "value": expected return, "cost": expected cost,
//    "preferences": [{"dimension": "kind:points", "lift": 1.8, "lower": 1.2, "upper": 2.4}, ...]
//        the benefit's preference dimensions with the member's largest lifts (top
//        `top_dimensions`, largest first; lower/upper only when intervals are given),
//    "contributions": [{"source": "als", "term": 0.7}, ...]
//        the blend's terms w_i f_i(score_i) of the redemption logit, largest first,
//    "runner_up": {"benefit": id, "reason": "budget"} or null
//        the member's best candidate that was not chosen and why (Allocation::runner_up),
//    "best_ineligible": {"benefit": id, "rule": "rule name"} or null
//        the best benefit the policy excluded and the first rule that excluded it
//        (RankDiagnostics),
//    "behavior": [{"action": "purchase", "scope": "items", "count": 6, "spend": 21.5,
//                  "days": 56, "text": "bought items of this benefit 6 times in the last 8 weeks"},
//                 {"action": "view", "scope": "category", "count": 3, ...}, ...]
//        only when the context carries behaviour (ExplanationContext::set_behavior) and the row
//        a time: the member's events strictly before the row's time and at most
//        `window_days` before it, per action of the log (in its order) and scope: the
//        benefit's own items ("items"), then each level of the item catalog ("category",
//        "brand", ...: events on any item sharing a value of that level with one of the
//        benefit's items); entries with a count of 0 are left out, so a benefit that applies
//        to no items gets []}
// Missing inputs give [] / null / NaN-as-null; the keys are always present (the "behavior" key
// whenever the context has behaviour). Numbers are
// rounded to 6 significant digits. The text forms (explain_text, explain_batch) are written
// directly, keys in the order above, at about a microsecond per row.
//
// explain_batch() writes the same JSON text for many plan rows at once (parallel), for plans
// of 10^5 rows and more; it takes plain arrays so callers without the C++ objects (Python)
// can use it.
//
// Example:
//   auto ctx = perkrec::ExplanationContext::make(&preference, catalog, &blend,
//   compiled.rule_names); perkrec::Json why = perkrec::explain(ctx, u, b, candidates, &allocation,
//   &blend, &diagnostics);
//
// Cost: the behaviour part reads the member's events of the window once, with a binary search
// per event and scope (O(window events x (1 + levels) x log items)): cheap for a plan's chosen
// rows, not meant for every candidate.
// Thread safety: pure functions; a context is read-only after construction.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/json.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/data/behavior_log.hpp"
#include "perkrec/data/catalog.hpp"
#include "perkrec/data/item_catalog.hpp"
#include "perkrec/decide/ranker.hpp"
#include "perkrec/decide/types.hpp"
#include "perkrec/models/preference.hpp"

namespace perkrec {

/// The behaviour the reasons name (borrowed: the owners outlive every context holding it; the
/// three index the same items, benefit_items the catalog's benefits, the log the members).
struct BehaviorEvidence {
  const BehaviorLog* log = nullptr;
  const ItemCatalog* items = nullptr;
  const BenefitItems* benefit_items = nullptr;
  int window_days = 56;  ///< events at most this many days before the decision; >= 1
  bool complete() const { return log != nullptr && items != nullptr && benefit_items != nullptr; }
};

/// Names and per-member / per-benefit arrays shared by all explanations of a plan. Spans are
/// borrowed: their owners must outlive the context.
struct ExplanationContext {
  Span<const float> preference;                      ///< members x dimensions lift, or empty
  Span<const float> lower;                           ///< same shape as preference, or empty
  Span<const float> upper;                           ///< same shape as preference, or empty
  std::vector<std::string> dimension_names;          ///< one per dimension
  std::vector<std::int32_t> benefit_dim_offsets{0};  ///< CSR benefit -> dimensions, n_benefits + 1
  std::vector<std::int32_t> benefit_dims;            ///< dimension indices
  std::vector<std::string> source_names;             ///< blend sources (columns of contributions)
  std::vector<std::string> benefit_ids;              ///< per benefit; empty = indices as numbers
  std::vector<std::string> member_ids;               ///< per member; empty = indices as numbers
  std::vector<std::string> rule_names;               ///< EligibilityMasks rule index -> name
  int top_dimensions = 3;                            ///< preference dimensions listed; >= 0
  BehaviorEvidence behavior;                 ///< set by set_behavior; empty = no "behavior" key
  std::vector<std::string> behavior_levels;  ///< the item catalog's levels (set_behavior)
  std::vector<LevelValues> behavior_level_values;  ///< per level: each benefit's values

  /// From a fitted PreferenceModel (nullptr: no preferences), the catalog it was fitted on
  /// (benefit ids and each benefit's dimensions, matched to the model's dimensions by name),
  /// an optional blend (source names) and the policy's rule names.
  static ExplanationContext make(const PreferenceModel* pref, const Catalog& catalog,
                                 const ScoreBlend* blend = nullptr,
                                 std::vector<std::string> rule_names = {});
  /// Adds the behaviour part to the reasons (see the file comment). InputError when the three
  /// index different items, benefit_items covers another number of benefits than the context
  /// names, or window_days < 1; nothing changes then.
  void set_behavior(const BehaviorEvidence& evidence);
  /// InputError naming the field for inconsistent shapes or dimension indices.
  void validate() const;
  Index n_dimensions() const { return static_cast<Index>(dimension_names.size()); }
  Index n_benefits() const { return static_cast<Index>(benefit_dim_offsets.size()) - 1; }
};

/// One decision and what is known about it; NaN / -1 / nullptr = unknown.
struct ExplanationRow {
  Index member = 0;
  Index benefit = 0;
  float probability = std::numeric_limits<float>::quiet_NaN();
  float value = std::numeric_limits<float>::quiet_NaN();
  float cost = std::numeric_limits<float>::quiet_NaN();
  const float* contributions = nullptr;  ///< source_names.size() terms
  Index runner_up = -1;                  ///< benefit index
  ExclusionReason runner_up_reason = ExclusionReason::none;
  Index best_ineligible = -1;  ///< benefit index
  std::int32_t best_ineligible_rule = -1;
  Timestamp time = kNoTime;  ///< the decision's time: the behaviour part counts events before
                             ///< it (kNoTime: "behavior" is [])
};

/// The explanation of one decision (see the file comment). InputError for ids out of range.
PERKREC_INLINE Json explain(const ExplanationContext& ctx, const ExplanationRow& row);
/// The same as compact JSON text, keys in the order of the file comment (what explain_batch
/// writes; faster than building a Json).
PERKREC_INLINE std::string explain_text(const ExplanationContext& ctx, const ExplanationRow& row);

/// Member u's decision for benefit b from the pipeline's objects: probability, value and cost
/// from u's candidate entry for b (NaN when b is not among u's candidates), contributions from
/// the blend, runner-up from the allocation, best ineligible from the ranker's diagnostics
/// (each may be nullptr).
PERKREC_INLINE Json explain(const ExplanationContext& ctx, Index user, Index benefit,
                            const Candidates& candidates, const Allocation* allocation = nullptr,
                            const ScoreBlend* blend = nullptr,
                            const RankDiagnostics* diagnostics = nullptr);

/// Plan rows as arrays (length rows, except contributions: rows x source_names.size()).
/// Optional arrays may be empty.
struct ExplanationBatch {
  Span<const Index> members;
  Span<const Index> benefits;
  Span<const float> probability, value, cost;
  Span<const float> contributions;
  Span<const Index> runner_up;                ///< benefit index, -1 = none
  Span<const std::uint8_t> runner_up_reason;  ///< ExclusionReason codes
  Span<const Index> best_ineligible;          ///< benefit index, -1 = none
  Span<const std::int32_t> best_ineligible_rule;
  Timestamp time = kNoTime;  ///< every row's decision time (ExplanationRow::time)
};

/// One JSON text per row (explain_text(ctx, row)), computed in parallel. InputError naming the
/// field for mismatched lengths or ids out of range.
PERKREC_INLINE std::vector<std::string> explain_batch(const ExplanationContext& ctx,
                                                      const ExplanationBatch& rows,
                                                      int num_threads = 0);

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/decide/explain_impl.hpp"
#endif
