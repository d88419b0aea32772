// Evaluation metrics: classification (AUC, log-loss) and top-K ranking (precision, recall,
// NDCG, MAP, hit rate) plus catalog coverage.
//
// Ranking metrics compare recommended lists (n_rows x k benefit indices, row-major, -1 for an
// empty slot) with the relevant benefits of each row (CSR, one row per recommended row, any
// stored entry counts as relevant). Definitions, averaged over rows with at least one relevant
// benefit (rel(i) = 1 when the i-th recommendation is relevant, R = |relevant|):
//   precision@k  hits / k
//   recall@k     hits / R
//   ndcg@k       sum over i < k of rel(i) / log2(i + 2), divided by the sum over i < min(k, R)
//                of 1 / log2(i + 2)
//   map@k        sum over i < k of rel(i) x precision@(i + 1), divided by min(k, R)
//   hit_rate@k   1 if any hit
//   coverage     distinct recommended benefits / n_benefits (over all rows)
//
// Calibration: reliability_curve bins predicted probabilities (uniform bins on [0, 1], or
// bins at the quantiles of the predictions) and compares each bin's mean prediction with its
// observed positive fraction; the expected calibration error (ECE) is the count-weighted mean
// absolute gap. Its arithmetic is numpy's (linspace, linear quantiles, pairwise sums), so it
// equals the numpy reference bit for bit.
//
// Forecasts against a holdout: holdout_errors scores per-member forecasts of occasions and spend
// (e.g. CLVModel::predict over a CLVHoldout's duration, or naive_forecast) against the actuals:
// mean absolute error, Spearman's rank correlation (spearman_correlation: average ranks for
// ties, as scipy.stats.spearmanr) and the aggregate error (forecast total - actual total) /
// actual total. Means and totals are numpy's pairwise sums.
//
// Bad input (mismatched lengths, non-finite scores, labels other than 0/1, out-of-range or
// repeated recommendations) throws InputError naming the position and value.
// Thread safety: pure functions, safe from any number of threads; ranking_metrics is parallel
// over rows, the others serial.
#pragma once

#include <cstdint>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/types.hpp"

namespace perkrec {

/// Area under the ROC curve; tied scores count one half. Throws InputError when both classes
/// are not present.
PERKREC_INLINE double auc(Span<const float> scores, Span<const std::uint8_t> labels);

/// Mean binary cross-entropy, probabilities clipped to [eps, 1 - eps]; probabilities must be
/// finite and in [0, 1].
PERKREC_INLINE double log_loss(Span<const float> probabilities, Span<const std::uint8_t> labels,
                               double eps = 1e-15);

struct RankingMetrics {
  int k = 0;
  Index rows_evaluated = 0;  ///< rows with at least one relevant benefit
  double precision = 0;
  double recall = 0;
  double ndcg = 0;
  double map = 0;
  double hit_rate = 0;
  double coverage = 0;
};

/// See the file comment. `recommended` has relevant.rows * k entries.
PERKREC_INLINE RankingMetrics ranking_metrics(Span<const Index> recommended, int k,
                                              const CsrView<float>& relevant, int num_threads = 0);

/// Share of the catalog that appears at least once in `recommended` (-1 entries ignored).
PERKREC_INLINE double catalog_coverage(Span<const Index> recommended, Index n_benefits);

/// Reliability-diagram data: one entry per non-empty bin, in bin order.
struct ReliabilityCurve {
  std::vector<Index> bin;                 ///< bin number in [0, bins)
  std::vector<double> low, high;          ///< the bin's edges
  std::vector<double> mean_predicted;     ///< mean prediction of the bin's rows
  std::vector<double> fraction_positive;  ///< mean label of the bin's rows
  std::vector<Offset> count;              ///< rows in the bin
  double ece = 0;  ///< sum of count x |mean_predicted - fraction_positive| / rows (0 without rows)
};

/// Per probability bin the mean prediction, the observed positive fraction and the count.
/// Edges: `bins` + 1 evenly spaced on [0, 1] (uniform), or the distinct linear quantiles of
/// `probabilities` at those levels (quantile). A row belongs to the last edge at or below it
/// (searchsorted right), clipped to the first and last bins. `labels` are any finite numbers
/// (usually 0/1). InputError for lengths that differ, non-finite values, or no rows with
/// quantile bins; ConfigError for bins < 1. Serial, O(rows x log bins) (quantile: + rows x bins).
PERKREC_INLINE ReliabilityCurve reliability_curve(Span<const double> labels,
                                                  Span<const double> probabilities, int bins = 10,
                                                  bool quantile_bins = false);

/// Spearman's rank correlation of `a` and `b`: Pearson's correlation of their ranks, tied
/// values sharing the mean of their positions (scipy.stats.spearmanr). NaN with fewer than two
/// values or when either is constant. InputError for lengths that differ or a value that is
/// not finite (naming a or b and the position). O(n log n), serial.
PERKREC_INLINE double spearman_correlation(Span<const double> a, Span<const double> b);

/// What holdout_errors measures (NaN where it is undefined).
struct HoldoutErrors {
  Offset members = 0;                    ///< rows scored
  double mae_purchases = 0;              ///< mean |forecast - actual| occasions; NaN without rows
  double mae_spend = 0;                  ///< mean |forecast - actual| spend; NaN without rows
  double spearman_purchases = 0;         ///< spearman_correlation(forecast, actual)
  double spearman_spend = 0;             ///< the same for spend
  double aggregate_purchases_error = 0;  ///< (sum forecast - sum actual) / sum actual; NaN at <= 0
  double aggregate_spend_error = 0;      ///< the same for spend
};

/// Errors of a per-member forecast against the holdout's actuals, row i of every array the same
/// member (see the file comment). Arrays of equal length. InputError naming the array and the
/// position for a length that differs or a value that is not finite. O(n log n), serial.
/// Example, a model fitted at calibration_end on the same log (the same members, in order):
///   CLVHoldout h = calibration_holdout(log, calibration_end, observation_end);
///   CLVPrediction p = model.predict(h.duration);
///   HoldoutErrors e = holdout_errors(h.purchases, h.spend, p.expected_purchases, p.clv);
PERKREC_INLINE HoldoutErrors holdout_errors(Span<const double> actual_purchases,
                                            Span<const double> actual_spend,
                                            Span<const double> forecast_purchases,
                                            Span<const double> forecast_spend);

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/eval/metrics_impl.hpp"
#endif
