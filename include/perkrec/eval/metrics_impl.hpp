// Definitions for metrics.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "perkrec/core/threading.hpp"
#include "perkrec/detail/blocks.hpp"
#include "perkrec/detail/numpy_sum.hpp"
#include "perkrec/eval/metrics.hpp"

namespace perkrec {

namespace detail {

inline void check_labels(Span<const std::uint8_t> labels, std::size_t n, const char* context) {
  if (labels.size() != n) {
    raise<InputError>(context, ": labels has ", labels.size(), " entries (expected ", n, ")");
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (labels[i] > 1) {
      raise<InputError>(context, ": label at position ", i, " must be 0 or 1 (got ",
                        static_cast<int>(labels[i]), ")");
    }
  }
}

}  // namespace detail

PERKREC_INLINE double auc(Span<const float> scores, Span<const std::uint8_t> labels) {
  const std::size_t n = scores.size();
  detail::check_labels(labels, n, "auc");
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(scores[i])) {
      detail::raise<InputError>("auc: score at position ", i, " is not finite (got ", scores[i],
                                ")");
    }
  }
  std::size_t positives = 0;
  for (std::size_t i = 0; i < n; ++i) positives += labels[i];
  const std::size_t negatives = n - positives;
  if (positives == 0 || negatives == 0) {
    detail::raise<InputError>("auc: needs both classes (got ", positives, " positive and ",
                              negatives, " negative labels)");
  }
  std::vector<std::uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(),
            [&](std::uint32_t a, std::uint32_t b) { return scores[a] < scores[b]; });
  // Sum of the (average, 1-based) ranks of the positives: Mann-Whitney U.
  double rank_sum = 0;
  std::size_t i = 0;
  while (i < n) {
    std::size_t j = i;
    std::size_t tied_positives = 0;
    while (j < n && scores[order[j]] == scores[order[i]]) {
      tied_positives += labels[order[j]];
      ++j;
    }
    const double average_rank = 0.5 * static_cast<double>(i + 1 + j);
    rank_sum += average_rank * static_cast<double>(tied_positives);
    i = j;
  }
  const double p = static_cast<double>(positives);
  return (rank_sum - p * (p + 1) / 2) / (p * static_cast<double>(negatives));
}

PERKREC_INLINE double log_loss(Span<const float> probabilities, Span<const std::uint8_t> labels,
                               double eps) {
  const std::size_t n = probabilities.size();
  detail::check_labels(labels, n, "log_loss");
  if (!(eps > 0 && eps < 0.5))
    detail::raise<InputError>("log_loss: eps must be in (0, 0.5) (got ", eps, ")");
  if (n == 0) detail::raise<InputError>("log_loss: no samples");
  double total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double p = probabilities[i];
    if (!std::isfinite(p) || p < 0 || p > 1) {
      detail::raise<InputError>("log_loss: probability at position ", i,
                                " must be finite and in [0, 1] (got ", p, ")");
    }
    const double q = std::clamp(p, eps, 1.0 - eps);
    total -= labels[i] ? std::log(q) : std::log1p(-q);
  }
  return total / static_cast<double>(n);
}

PERKREC_INLINE double catalog_coverage(Span<const Index> recommended, Index n_benefits) {
  if (n_benefits <= 0)
    detail::raise<InputError>("catalog_coverage: n_benefits must be > 0 (got ", n_benefits, ")");
  std::vector<std::uint8_t> seen(static_cast<std::size_t>(n_benefits), 0);
  Index distinct = 0;
  for (std::size_t i = 0; i < recommended.size(); ++i) {
    const Index b = recommended[i];
    if (b == -1) continue;
    if (b < 0 || b >= n_benefits) {
      detail::raise<InputError>("catalog_coverage: benefit at position ", i, " out of range (got ",
                                b, ", expected -1 or 0 <= benefit < ", n_benefits, ")");
    }
    if (!seen[static_cast<std::size_t>(b)]) {
      seen[static_cast<std::size_t>(b)] = 1;
      ++distinct;
    }
  }
  return static_cast<double>(distinct) / static_cast<double>(n_benefits);
}

PERKREC_INLINE RankingMetrics ranking_metrics(Span<const Index> recommended, int k,
                                              const CsrView<float>& relevant, int num_threads) {
  if (k < 1) detail::raise<InputError>("ranking_metrics: k must be >= 1 (got ", k, ")");
  relevant.validate("ranking_metrics: relevant", true);
  const Index rows = relevant.rows;
  if (recommended.size() != static_cast<std::size_t>(rows) * static_cast<std::size_t>(k)) {
    detail::raise<InputError>("ranking_metrics: recommended has ", recommended.size(),
                              " entries (expected rows x k = ", rows, " x ", k, ")");
  }
  for (Index r = 0; r < rows; ++r) {
    const Index* row =
        recommended.data() + static_cast<std::size_t>(r) * static_cast<std::size_t>(k);
    std::vector<Index> sorted;
    for (int i = 0; i < k; ++i) {
      if (row[i] == -1) continue;
      if (row[i] < 0 || row[i] >= relevant.cols) {
        detail::raise<InputError>("ranking_metrics: recommended[", r, "][", i,
                                  "] out of range (got ", row[i],
                                  ", expected -1 or 0 <= benefit < ", relevant.cols, ")");
      }
      sorted.push_back(row[i]);
    }
    std::sort(sorted.begin(), sorted.end());
    const auto dup = std::adjacent_find(sorted.begin(), sorted.end());
    if (dup != sorted.end()) {
      detail::raise<InputError>("ranking_metrics: row ", r, " recommends benefit ", *dup, " twice");
    }
  }
  std::vector<double> discount(static_cast<std::size_t>(k));
  for (int i = 0; i < k; ++i) discount[static_cast<std::size_t>(i)] = 1.0 / std::log2(i + 2.0);

  // Per-block sums combined in block order: identical for any thread count.
  const detail::Blocks blocks(rows, 1024, 256);
  struct Sums {
    double precision = 0, recall = 0, ndcg = 0, map = 0, hit = 0;
    Index evaluated = 0;
  };
  std::vector<Sums> partial(static_cast<std::size_t>(blocks.count));
  parallel_for(0, blocks.count, num_threads, [&](Offset blk) {
    Sums s;
    for (Offset r = blocks.begin(blk); r < blocks.end(blk); ++r) {
      const auto row = static_cast<Index>(r);
      const Index* rel_begin = relevant.indices + relevant.row_begin(row);
      const Index* rel_end = relevant.indices + relevant.row_end(row);
      const auto n_rel = static_cast<int>(rel_end - rel_begin);
      if (n_rel == 0) continue;
      const Index* rec =
          recommended.data() + static_cast<std::size_t>(r) * static_cast<std::size_t>(k);
      int hits = 0;
      double dcg = 0, ap = 0;
      for (int i = 0; i < k; ++i) {
        if (rec[i] < 0 || !std::binary_search(rel_begin, rel_end, rec[i])) continue;
        ++hits;
        dcg += discount[static_cast<std::size_t>(i)];
        ap += static_cast<double>(hits) / (i + 1);
      }
      const int ideal = std::min(k, n_rel);
      double idcg = 0;
      for (int i = 0; i < ideal; ++i) idcg += discount[static_cast<std::size_t>(i)];
      s.precision += static_cast<double>(hits) / k;
      s.recall += static_cast<double>(hits) / n_rel;
      s.ndcg += dcg / idcg;
      s.map += ap / ideal;
      s.hit += hits > 0;
      ++s.evaluated;
    }
    partial[static_cast<std::size_t>(blk)] = s;
  });
  Sums total;
  for (const Sums& s : partial) {
    total.precision += s.precision;
    total.recall += s.recall;
    total.ndcg += s.ndcg;
    total.map += s.map;
    total.hit += s.hit;
    total.evaluated += s.evaluated;
  }
  RankingMetrics m;
  m.k = k;
  m.rows_evaluated = total.evaluated;
  if (total.evaluated > 0) {
    const double n = total.evaluated;
    m.precision = total.precision / n;
    m.recall = total.recall / n;
    m.ndcg = total.ndcg / n;
    m.map = total.map / n;
    m.hit_rate = total.hit / n;
  }
  m.coverage = relevant.cols > 0 ? catalog_coverage(recommended, relevant.cols) : 0.0;
  return m;
}

PERKREC_INLINE ReliabilityCurve reliability_curve(Span<const double> labels,
                                                  Span<const double> probabilities, int bins,
                                                  bool quantile_bins) {
  const std::size_t n = labels.size();
  if (probabilities.size() != n) {
    detail::raise<InputError>("reliability_curve: y and probabilities lengths differ (", n, " vs ",
                              probabilities.size(), ")");
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(labels[i]) || !std::isfinite(probabilities[i])) {
      detail::raise<InputError>("reliability_curve: y and probabilities must be finite (row ", i,
                                ": got ", labels[i], ", ", probabilities[i], ")");
    }
  }
  if (bins < 1) detail::raise<ConfigError>("reliability_curve: bins must be >= 1 (got ", bins, ")");
  if (quantile_bins && n == 0) {
    detail::raise<InputError>("reliability_curve: quantile bins need probabilities (got 0 rows)");
  }
  // np.linspace(0, 1, bins + 1): i x (1 / bins) + 0, the last exactly 1.
  const double step = 1.0 / static_cast<double>(bins);
  std::vector<double> edges;
  std::vector<double> scratch;
  for (int i = 0; i <= bins; ++i) {
    const double level = i == bins ? 1.0 : static_cast<double>(i) * step + 0.0;
    if (!quantile_bins) {
      edges.push_back(level);
      continue;
    }
    scratch.assign(probabilities.begin(), probabilities.end());
    edges.push_back(detail::numpy_quantile(scratch, level));
  }
  if (quantile_bins) {
    std::sort(edges.begin(), edges.end());
    edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
  }
  ReliabilityCurve out;
  if (edges.size() < 2) return out;  // one distinct quantile: no bin (ece 0)
  const auto last_bin = static_cast<std::ptrdiff_t>(edges.size()) - 2;
  std::vector<std::vector<double>> predicted(edges.size()), observed(edges.size());
  for (std::size_t i = 0; i < n; ++i) {
    std::ptrdiff_t b =
        std::upper_bound(edges.begin(), edges.end(), probabilities[i]) - edges.begin() - 1;
    b = std::min(std::max<std::ptrdiff_t>(b, 0), last_bin);
    const auto k = static_cast<std::size_t>(b);
    predicted[k].push_back(probabilities[i]);
    observed[k].push_back(labels[i]);
  }
  std::vector<double> weighted_gaps;
  for (std::size_t k = 0; k + 1 < edges.size(); ++k) {
    const auto c = static_cast<Offset>(predicted[k].size());
    if (c == 0) continue;
    const double mp = detail::numpy_pairwise_sum(predicted[k].data(), c) / static_cast<double>(c);
    const double fp = detail::numpy_pairwise_sum(observed[k].data(), c) / static_cast<double>(c);
    out.bin.push_back(static_cast<Index>(k));
    out.low.push_back(edges[k]);
    out.high.push_back(edges[k + 1]);
    out.mean_predicted.push_back(mp);
    out.fraction_positive.push_back(fp);
    out.count.push_back(c);
    weighted_gaps.push_back(static_cast<double>(c) * std::fabs(mp - fp));
  }
  out.ece =
      detail::numpy_pairwise_sum(weighted_gaps.data(), static_cast<Offset>(weighted_gaps.size())) /
      static_cast<double>(std::max<std::size_t>(n, 1));
  return out;
}

namespace detail {

// 1-based ranks of `v`, ties sharing the mean of their positions (scipy's rankdata "average").
inline std::vector<double> average_ranks(Span<const double> v) {
  const std::size_t n = v.size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return v[a] < v[b]; });
  std::vector<double> ranks(n);
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i + 1;
    while (j < n && v[order[j]] == v[order[i]]) ++j;
    const double rank = 0.5 * static_cast<double>(i + 1 + j);
    for (std::size_t k = i; k < j; ++k) ranks[order[k]] = rank;
    i = j;
  }
  return ranks;
}

inline double pairwise_mean(const std::vector<double>& v) {
  return numpy_pairwise_sum(v.data(), static_cast<Offset>(v.size())) /
         static_cast<double>(v.size());
}

inline void check_finite_column(const char* context, const char* name, Span<const double> values,
                                std::size_t n, const char* length_of) {
  if (values.size() != n) {
    raise<InputError>(context, ": ", name, " has ", values.size(), " entries (expected ", n,
                      ", as ", length_of, ")");
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(values[i])) {
      raise<InputError>(context, ": ", name, "[", i, "] is not finite (got ", values[i], ")");
    }
  }
}

}  // namespace detail

PERKREC_INLINE double spearman_correlation(Span<const double> a, Span<const double> b) {
  detail::check_finite_column("spearman_correlation", "a", a, a.size(), "a");
  detail::check_finite_column("spearman_correlation", "b", b, a.size(), "a");
  const std::size_t n = a.size();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (n < 2) return nan;
  std::vector<double> x = detail::average_ranks(a), y = detail::average_ranks(b);
  const double mx = detail::pairwise_mean(x), my = detail::pairwise_mean(y);
  std::vector<double> xx(n), yy(n), xy(n);
  for (std::size_t i = 0; i < n; ++i) {
    x[i] -= mx;
    y[i] -= my;
    xx[i] = x[i] * x[i];
    yy[i] = y[i] * y[i];
    xy[i] = x[i] * y[i];
  }
  // np.corrcoef's arithmetic: covariances times 1 / (n - 1), divided by each deviation in turn.
  const double dof = static_cast<double>(n - 1);
  const auto total = [n](const std::vector<double>& v) {
    return detail::numpy_pairwise_sum(v.data(), static_cast<Offset>(n));
  };
  const double scale = 1.0 / dof;
  const double cxx = total(xx) * scale, cyy = total(yy) * scale, cxy = total(xy) * scale;
  if (!(cxx > 0 && cyy > 0)) return nan;  // a constant input
  return std::clamp(cxy / std::sqrt(cxx) / std::sqrt(cyy), -1.0, 1.0);
}

PERKREC_INLINE HoldoutErrors holdout_errors(Span<const double> actual_purchases,
                                            Span<const double> actual_spend,
                                            Span<const double> forecast_purchases,
                                            Span<const double> forecast_spend) {
  const std::size_t n = actual_purchases.size();
  const char* context = "holdout_errors";
  detail::check_finite_column(context, "actual_purchases", actual_purchases, n, "actual_purchases");
  detail::check_finite_column(context, "actual_spend", actual_spend, n, "actual_purchases");
  detail::check_finite_column(context, "forecast_purchases", forecast_purchases, n,
                              "actual_purchases");
  detail::check_finite_column(context, "forecast_spend", forecast_spend, n, "actual_purchases");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  HoldoutErrors out;
  out.members = static_cast<Offset>(n);
  const auto score = [&](Span<const double> actual, Span<const double> forecast, double& mae,
                         double& spearman, double& aggregate) {
    std::vector<double> gap(n);
    for (std::size_t i = 0; i < n; ++i) gap[i] = std::fabs(forecast[i] - actual[i]);
    mae = n > 0 ? detail::pairwise_mean(gap) : nan;
    spearman = spearman_correlation(forecast, actual);
    const double total = detail::numpy_pairwise_sum(actual.data(), static_cast<Offset>(n));
    const double forecast_total =
        detail::numpy_pairwise_sum(forecast.data(), static_cast<Offset>(n));
    aggregate = total > 0 ? (forecast_total - total) / total : nan;
  };
  score(actual_purchases, forecast_purchases, out.mae_purchases, out.spearman_purchases,
        out.aggregate_purchases_error);
  score(actual_spend, forecast_spend, out.mae_spend, out.spearman_spend, out.aggregate_spend_error);
  return out;
}

}  // namespace perkrec
