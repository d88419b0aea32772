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
//        (RankDiagnostics)}
// Missing inputs give [] / null / NaN-as-null; the keys are always present. Numbers are
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
// Thread safety: pure functions; a context is read-only after construction.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/json.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/data/catalog.hpp"
#include "perkrec/decide/ranker.hpp"
#include "perkrec/decide/types.hpp"
#include "perkrec/models/preference.hpp"

namespace perkrec {

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

  /// From a fitted PreferenceModel (nullptr: no preferences), the catalog it was fitted on
  /// (benefit ids and each benefit's dimensions, matched to the model's dimensions by name),
  /// an optional blend (source names) and the policy's rule names.
  static ExplanationContext make(const PreferenceModel* pref, const Catalog& catalog,
                                 const ScoreBlend* blend = nullptr,
                                 std::vector<std::string> rule_names = {});
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
