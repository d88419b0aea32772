// Uplift metrics: how well a score ranks members by the incremental effect of a benefit, measured
// on a randomized (or propensity-balanced) treatment/control sample.
//
// Rows are sorted by descending uplift score. Rows with equal scores form one group: a curve only
// has a point after each group (a tie is never split), so the order inside a tie never matters.
// After the first k rows, with N_t, N_c treated and control rows and Y_t, Y_c their summed
// outcomes:
//   qini_curve(k)   = Y_t(k) - Y_c(k) * N_t(k) / N_c(k)          (0 while N_c(k) = 0)
//   uplift_curve(k) = (Y_t(k) / N_t(k) - Y_c(k) / N_c(k)) * k     (a mean is 0 while its N is 0)
// Both curves start at (0, 0). The scores are normalized like scikit-uplift's
// qini_auc_score / uplift_auc_score: (area(model) - area(random)) / (area(perfect) - area(random)),
// areas by the trapezoid rule, the random model the straight line from (0, 0) to the perfect
// curve's end, and the perfect model
//   Qini   : scores y * t - y * (1 - t) (negative_effect = true), or the two-segment curve that
//            reaches the total incremental outcome at once (negative_effect = false);
//   uplift : scores 2 * [y == t] + (y if control responders outnumber treated non-responders,
//            else t), for binary outcomes.
// uplift_at_k = mean outcome of the treated minus mean outcome of the control rows among the
// top k rows ("overall"), or among the top k of each group separately ("by_group"); a fraction k
// means floor(k * count) rows (as scikit-uplift 0.5). Inside ties, later rows come first (as
// numpy's stable argsort reversed), so uplift_at_k is deterministic even when k splits a tie.
//
// The cost curve weighs value against what the benefits cost: with per-row value v and cost c
// (a coupon's face value when redeemed, say), after k rows
//   incremental_value(k) = V_t(k) - V_c(k) * N_t(k) / N_c(k)
//   incremental_cost(k)  = C_t(k) - C_c(k) * N_t(k) / N_c(k)
// and aucc_score is the trapezoid area under incremental value against incremental cost, both
// divided by their totals at k = n (so the random model scores about 0.5 and the best ranking
// close to 1). Both totals must be positive.
//
// Cost: one sort, O(n log n). Outcomes, values, costs and scores must be finite; treatment is
// 0/1 with both groups present; lengths must match: otherwise InputError naming the argument
// and row. Thread safety: pure functions.
//
// Example:
//   double q = perkrec::qini_auc_score(outcome, uplift, treatment);
//   perkrec::UpliftCurve c = perkrec::qini_curve(outcome, uplift, treatment);  // c.x, c.y
#pragma once

#include <cstdint>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/types.hpp"

namespace perkrec {

/// Points of an uplift or Qini curve: x = rows targeted (0, then the end of each tie group),
/// y = the curve's value there.
struct UpliftCurve {
  std::vector<double> x;
  std::vector<double> y;
};

/// Points of a cost curve: rows targeted, incremental cost and incremental value after them.
struct CostCurve {
  std::vector<double> rows;
  std::vector<double> cost;
  std::vector<double> value;
};

/// How uplift_at_k picks its top rows.
enum class UpliftAtKStrategy {
  overall,   ///< the top k of all rows, then each group's mean among them
  by_group,  ///< the top k of the treated and the top k of the control rows separately
};

/// See the file comment.
PERKREC_INLINE UpliftCurve qini_curve(Span<const double> outcome, Span<const double> uplift,
                                      Span<const std::uint8_t> treatment);

/// See the file comment.
PERKREC_INLINE UpliftCurve uplift_curve(Span<const double> outcome, Span<const double> uplift,
                                        Span<const std::uint8_t> treatment);

/// The perfect model's Qini curve (see the file comment).
PERKREC_INLINE UpliftCurve perfect_qini_curve(Span<const double> outcome,
                                              Span<const std::uint8_t> treatment,
                                              bool negative_effect = true);

/// The perfect model's uplift curve; outcomes must be 0 or 1.
PERKREC_INLINE UpliftCurve perfect_uplift_curve(Span<const double> outcome,
                                                Span<const std::uint8_t> treatment);

/// Normalized area between the Qini curve and the random line: 1 for the perfect ranking, about
/// 0 for a random one, negative for a ranking worse than random. Throws InputError when the
/// perfect model's area equals the random one (no incremental outcome to rank).
PERKREC_INLINE double qini_auc_score(Span<const double> outcome, Span<const double> uplift,
                                     Span<const std::uint8_t> treatment,
                                     bool negative_effect = true);

/// Normalized area between the uplift curve and the random line; outcomes must be 0 or 1.
PERKREC_INLINE double uplift_auc_score(Span<const double> outcome, Span<const double> uplift,
                                       Span<const std::uint8_t> treatment);

/// Treated mean minus control mean among the top rows. `k` in (0, 1) is a fraction of the rows
/// (of each group for by_group), rounded down; an integral k >= 1 is a count of rows. Throws
/// InputError when a group has no row among the chosen ones.
PERKREC_INLINE double uplift_at_k(Span<const double> outcome, Span<const double> uplift,
                                  Span<const std::uint8_t> treatment, double k,
                                  UpliftAtKStrategy strategy = UpliftAtKStrategy::overall);

/// See the file comment. Costs may be negative (a refund) but must be finite.
PERKREC_INLINE CostCurve cost_curve(Span<const double> value, Span<const double> cost,
                                    Span<const double> uplift, Span<const std::uint8_t> treatment);

/// Area under the normalized cost curve (see the file comment); InputError when the total
/// incremental value or cost is not positive.
PERKREC_INLINE double aucc_score(Span<const double> value, Span<const double> cost,
                                 Span<const double> uplift, Span<const std::uint8_t> treatment);

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/eval/uplift_metrics_impl.hpp"
#endif
