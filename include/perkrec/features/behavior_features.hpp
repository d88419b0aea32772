// Leak-safe behaviour features: for samples (member, benefit, time), aggregates of what the
// member bought or browsed STRICTLY BEFORE the sample's time (an event at the same second is
// not visible), matched to the items the benefit applies to and to their hierarchy.
//
// Inputs: a BehaviorLog, the ItemCatalog its item indices point into, and BenefitItems (benefit
// -> items over the same item indices). Samples give int64 member, benefit and time columns;
// members the log does not know (index >= log.n_users()) simply have no behaviour.
//
// Aggregates (behavior_aggregate_names(), canonical order), computed for each action of
// `actions` (events of other actions are ignored):
//   scope aggregates, for the benefit's items (scope "items") and for each level of `levels`
//   (scope = the level's name: events on any item sharing a value of that level with one of
//   the benefit's items, e.g. the same category or brand; each distinct value counted once):
//     count            events
//     quantity         sum of quantities
//     spend            sum of amounts
//     decayed_count    sum of 0.5 ^ (age_days / half_life_days), age measured to the sample time
//     days_since_last  days from the latest such event to the sample time; kBehaviorNeverDays
//                      (100000: beyond any real gap, so quantile buckets give "never" a bucket
//                      of its own) when there is none
//     share_of_wallet  spend in the scope / the member's spend (0 when the member spent nothing)
//   member aggregates (all items):
//     member_count, member_spend, member_distinct_items,
//     member_baskets          distinct basket ids (distinct event times when the log has no
//                             baskets)
//     member_days_since_last  as days_since_last over all items
//   popularity of the benefit's items over ALL members (as of the sample time):
//     popularity_events   events on the benefit's items
//     popularity_members  sum over the benefit's items of the members with an event on it
// Output columns are named "<action>_<scope>_<aggregate>" for scope aggregates (scope "items"
// first, then the levels in order) and "<action>_<aggregate>" for the others, action by action,
// aggregates in the order requested (behavior_column_names()).
//
// Algorithm: samples are grouped by member and sorted by time; each member's events are swept
// once in time order into per-item and per-level-value accumulators (per-thread dense arrays
// reset through a touched list; decayed sums are kept with their last update time and decayed
// to the sample time), and each sample sums the accumulators over its benefit's items and level
// values. Popularity uses sorted event times (and first-event times per member) per item, merged
// per benefit when the merged lists hold at most max(2^24, 2 x events) times (one binary search
// per sample; otherwise one per item).
//
// Example:
//   perkrec::BehaviorFeatureParams p;
//   p.aggregates = {"count", "spend", "days_since_last", "member_spend"};
//   p.levels = {"category", "brand"};
//   perkrec::BehaviorTable t = perkrec::behavior_features({users, benefits, times}, log, items,
//                                                         benefit_items, p);
//   // t.names: purchase_items_count, purchase_items_spend, ..., purchase_brand_days_since_last,
//   //          purchase_member_spend
//
// Output dtype (params.dtype): float64 (the default) fills BehaviorTable::columns; float32
// fills BehaviorTable::float32_columns instead, each value the float64 value rounded to the
// nearest float (bit for bit static_cast<float> of what float64 gives, for any thread count),
// in half the memory. The values are computed in double either way and rounded as they are
// written; no float64 copy of the output exists. float32 keeps 24 significant bits: counts up
// to 2^24 (16,777,216) exactly, larger ones and sums to a relative 2^-24. FeatureEncoder feeds
// float32 values to the models (CsrMatrix<float>) but buckets and transforms the float64
// values first, so its behaviour fields always use float64.
//
// Cost: O(events + samples x (k + level values) x actions) time, k = items per benefit, plus
// O(events log events) for popularity. Memory: the output (8 bytes per sample and column,
// 4 with float32) plus, at its peak, one staging block of at least 32 MiB, 8 bytes per sample
// (the member order) and O(threads x items x actions) of scratch; the popularity aggregates
// first hold about 8-16 bytes per event of sorted times, freed before the rest of the output
// is written.
// Parallel over members; the output does not depend on the thread count.
// Thread safety: behavior_features is reentrant; the inputs are only read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/error.hpp"
#include "perkrec/core/params.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/data/behavior_log.hpp"
#include "perkrec/data/item_catalog.hpp"

namespace perkrec {

/// days_since_last / member_days_since_last when there is no earlier event.
inline constexpr double kBehaviorNeverDays = 100000.0;
/// The first kBehaviorScopeAggregates names of behavior_aggregate_names() are per scope.
inline constexpr int kBehaviorScopeAggregates = 6;

/// The aggregate names in canonical order: count, quantity, spend, decayed_count,
/// days_since_last, share_of_wallet (per scope), member_count, member_baskets, member_spend,
/// member_distinct_items, member_days_since_last, popularity_events, popularity_members.
PERKREC_INLINE const std::vector<std::string>& behavior_aggregate_names();

struct BehaviorFeatureParams {
  /// The output columns' type: BehaviorTable::columns (float64) or float32_columns (float32).
  enum class Dtype : std::uint8_t { float64, float32 };

  std::vector<std::string> aggregates;  ///< from behavior_aggregate_names(), distinct; empty = all
  std::vector<std::string> levels;      ///< ItemCatalog level names (distinct): extra scopes
  std::vector<std::string> actions = {"purchase"};  ///< action names of the log (1+, distinct)
  double half_life_days = 28.0;                     ///< decay of decayed_count; finite, > 0
  int num_threads = 0;  ///< 0 = OpenMP default; never changes the output
  /// "float64" or "float32": the output's type (see the file comment); float32 halves the
  /// output's memory, each value the float64 one rounded to the nearest float.
  Dtype dtype = Dtype::float64;
  static auto param_fields() {
    using P = BehaviorFeatureParams;
    static constexpr params::EnumName<Dtype> kDtypes[] = {{Dtype::float64, "float64"},
                                                          {Dtype::float32, "float32"}};
    return std::make_tuple(params::field("aggregates", &P::aggregates),  // names: validate()
                           params::field("levels", &P::levels),
                           params::field("actions", &P::actions),
                           params::field("half_life_days", &P::half_life_days, params::above(0)),
                           params::field("num_threads", &P::num_threads, params::threads()),
                           params::field("dtype", &P::dtype, kDtypes));
  }
  /// Throws ConfigError naming the field (unknown or duplicate aggregate, empty actions, ...).
  void validate() const;
};

/// The output column names for `params` (validated), in output order.
PERKREC_INLINE std::vector<std::string> behavior_column_names(const BehaviorFeatureParams& params);

/// Borrowed sample columns, one entry per sample.
struct BehaviorSamples {
  Span<const std::int64_t> user;       ///< member index (>= 0)
  Span<const std::int64_t> benefit;    ///< benefit index into BenefitItems
  Span<const std::int64_t> timestamp;  ///< seconds; only events strictly before it count
};

/// Named columns, one value per sample: `columns` with dtype float64, `float32_columns` with
/// float32 (the other one is then empty).
struct BehaviorTable {
  Offset rows = 0;
  std::vector<std::string> names;
  std::vector<std::vector<double>> columns;
  std::vector<std::vector<float>> float32_columns;
};

/// The aggregates of every sample (see the file comment). Throws ConfigError for bad params,
/// InputError for inconsistent inputs (item counts differ, benefit out of range, negative
/// member, an action or level the log / catalog lacks, naming it).
PERKREC_INLINE BehaviorTable behavior_features(const BehaviorSamples& samples,
                                               const BehaviorLog& log, const ItemCatalog& items,
                                               const BenefitItems& benefit_items,
                                               const BehaviorFeatureParams& params);

namespace detail {
/// The same values row-major (rows x behavior_column_names(params).size()), always float64
/// (params.dtype is ignored); what FeatureEncoder uses.
PERKREC_INLINE std::vector<double> behavior_matrix(const BehaviorSamples& samples,
                                                   const BehaviorLog& log, const ItemCatalog& items,
                                                   const BenefitItems& benefit_items,
                                                   const BehaviorFeatureParams& params,
                                                   const char* context);
/// behavior_features with the sweep's row-major staging blocks of `staging_rows` rows (a
/// power of two; 0 = blocks of at least 32 MiB). The output does not depend on it; tests use
/// small blocks to cover the block boundaries.
PERKREC_INLINE BehaviorTable behavior_table(const BehaviorSamples& samples, const BehaviorLog& log,
                                            const ItemCatalog& items,
                                            const BenefitItems& benefit_items,
                                            const BehaviorFeatureParams& params,
                                            std::size_t staging_rows, const char* context);

/// InputError (prefixed by `ctx`) naming the first sample whose member index is negative or
/// whose benefit is not one of BenefitItems' `n_benefits`; shared by the behaviour stages.
inline void check_behavior_sample_indices(const BehaviorSamples& samples, Index n_benefits,
                                          const char* ctx) {
  for (std::size_t i = 0; i < samples.user.size(); ++i) {
    if (samples.user[i] < 0) {
      raise<InputError>(ctx, ": sample ", i, ": user: negative member index (got ", samples.user[i],
                        ")");
    }
    if (samples.benefit[i] < 0 || samples.benefit[i] >= n_benefits) {
      raise<InputError>(ctx, ": sample ", i, ": benefit: out of range (got ", samples.benefit[i],
                        ", expected 0 <= benefit < ", n_benefits,
                        ", the benefits of BenefitItems)");
    }
  }
}
}  // namespace detail

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/features/behavior_features_impl.hpp"
#endif
