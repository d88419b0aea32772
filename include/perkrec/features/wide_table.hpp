// WideTable: one row of behavioural aggregates per member as of a cut time.
//
// Computed in one pass over the EventLog (parallel over members, each member's events read in
// time order). Events with timestamp >= cut_time are never read: the table only sees the past
// of the cut, so it can feed a model that is evaluated on what happens after it.
//
// Columns (one double per member; NaN where a rate or a duration has no denominator):
//   issued, viewed, claimed, redeemed, expired, orders       event counts before the cut
//   claim_rate            claimed / issued
//   redemption_rate       redeemed / claimed
//   expiry_rate           expired / claimed (claimed but unused)
//   view_rate             viewed / issued
//   issued:<dim>, claim_rate:<dim>, redemption_rate:<dim>
//                         the same per benefit attribute dimension (BenefitDimensions: kind,
//                         face-value band, threshold band, scope, scenario, channel); a benefit
//                         counts in every dimension it activates
//   median_days_claim_to_redemption   median over redemptions of the days since the member's
//                         latest earlier claim of the same benefit (redemptions without one
//                         are skipped)
//   stacked_order_share   share of orders on which two or more benefits were redeemed (a
//                         redemption belongs to the order at the same timestamp)
//   recency_days          days from the last order to the cut
//   frequency             orders per 30 days of tenure
//   monetary              mean order amount
//   total_spend           sum of order amounts
//   orders_30d, orders_90d  orders in the 30 / 90 days before the cut (activity level)
//   active_days_90d       distinct days with any event in the 90 days before the cut
//   tenure_days           days from the member's first event to the cut
//   mean_interorder_days, cv_interorder   mean and coefficient of variation of the gaps
//                         between consecutive orders (NaN below 2 / 3 orders)
//   points_earned         face value of claimed points benefits
//   points_redeemed       face value of redeemed points benefits
//
// A member with no events before the cut gets zero counts and NaN rates (a documented empty
// row, not an error); a cut before every event therefore gives an all-empty table.
//
// Example:
//   perkrec::WideTable t = perkrec::wide_table(log, catalog, cut);
//   const std::vector<double>& rate = t.column("claim_rate");
//
// Cost: O(events x dimensions per benefit) time, O(members x columns) memory.
// Thread safety: wide_table is reentrant; a WideTable is a plain value.
#pragma once

#include <string>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/params.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/data/benefit_dimensions.hpp"
#include "perkrec/data/catalog.hpp"
#include "perkrec/data/event_log.hpp"

namespace perkrec {

struct WideTableParams {
  BenefitDimensionsParams dimensions;  ///< band edges of the per-dimension columns
  int num_threads = 0;                 ///< 0 = OpenMP default
  static auto param_fields() {
    using P = WideTableParams;
    return std::make_tuple(params::flattened(&P::dimensions),
                           params::field("num_threads", &P::num_threads, params::threads()));
  }
  /// Throws ConfigError naming the field.
  void validate() const;
};

/// A columnar table: `names[i]` names `columns[i]`, each with n_users entries.
struct WideTable {
  Index n_users = 0;
  Timestamp cut_time = 0;
  std::vector<std::string> names;
  std::vector<std::vector<double>> columns;

  /// Index of a column, or -1.
  int find(const std::string& name) const;
  /// The column called `name`; throws InputError when there is none.
  const std::vector<double>& column(const std::string& name) const;
};

/// Builds the wide table of `log` as of `cut_time` (see the file comment). `catalog` must be
/// the log's catalog (catalog.size() == log.n_benefits()), else InputError.
PERKREC_INLINE WideTable wide_table(const EventLog& log, const Catalog& catalog, Timestamp cut_time,
                                    const WideTableParams& params = {});

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/features/wide_table_impl.hpp"
#endif
