// Definitions for uplift_metrics.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <vector>

#include "perkrec/core/error.hpp"
#include "perkrec/eval/uplift_metrics.hpp"

namespace perkrec {

namespace detail::uplift {

inline void check_finite(Span<const double> values, const char* function, const char* name) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      raise<InputError>(function, ": ", name, " at row ", i, " is not finite (got ", values[i],
                        ")");
    }
  }
}

inline void check_length(std::size_t got, std::size_t expected, const char* function,
                         const char* name) {
  if (got != expected) {
    raise<InputError>(function, ": ", name, " has ", got, " rows (expected ", expected, ")");
  }
}

/// Treatment is 0/1 with both groups present.
inline void check_treatment(Span<const std::uint8_t> treatment, const char* function) {
  std::size_t treated = 0;
  for (std::size_t i = 0; i < treatment.size(); ++i) {
    if (treatment[i] > 1) {
      raise<InputError>(function, ": treatment at row ", i, " must be 0 or 1 (got ",
                        static_cast<int>(treatment[i]), ")");
    }
    treated += treatment[i];
  }
  if (treated == 0 || treated == treatment.size()) {
    raise<InputError>(function, ": needs treated and control rows (got ", treated, " treated of ",
                      treatment.size(), ")");
  }
}

inline void check_inputs(const char* function, Span<const double> outcome,
                         Span<const double> uplift, Span<const std::uint8_t> treatment,
                         const char* outcome_name = "outcome") {
  check_length(uplift.size(), outcome.size(), function, "uplift");
  check_length(treatment.size(), outcome.size(), function, "treatment");
  check_finite(outcome, function, outcome_name);
  check_finite(uplift, function, "uplift");
  check_treatment(treatment, function);
}

inline void check_binary(Span<const double> outcome, const char* function) {
  for (std::size_t i = 0; i < outcome.size(); ++i) {
    if (outcome[i] != 0.0 && outcome[i] != 1.0) {
      raise<InputError>(function, ": outcome at row ", i, " must be 0 or 1 (got ", outcome[i], ")");
    }
  }
}

/// Rows by descending score; inside a tie the later row first (numpy's stable argsort, reversed).
inline std::vector<std::size_t> descending_order(Span<const double> score) {
  std::vector<std::size_t> order(score.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return score[a] > score[b] || (score[a] == score[b] && a > b);
  });
  return order;
}

/// Running sums at the end of each tie group of the descending order.
struct GroupSums {
  std::vector<double> rows, treated, sum_treated, sum_control, cost_treated, cost_control;
};

inline GroupSums group_sums(Span<const double> outcome, Span<const double> cost,
                            Span<const double> score, Span<const std::uint8_t> treatment) {
  const std::vector<std::size_t> order = descending_order(score);
  GroupSums g;
  double treated = 0, sum_t = 0, sum_c = 0, cost_t = 0, cost_c = 0;
  const std::size_t n = order.size();
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = order[k];
    const double c = cost.empty() ? 0.0 : cost[i];
    if (treatment[i]) {
      treated += 1;
      sum_t += outcome[i];
      cost_t += c;
    } else {
      sum_c += outcome[i];
      cost_c += c;
    }
    if (k + 1 == n || score[order[k + 1]] != score[i]) {
      g.rows.push_back(static_cast<double>(k + 1));
      g.treated.push_back(treated);
      g.sum_treated.push_back(sum_t);
      g.sum_control.push_back(sum_c);
      g.cost_treated.push_back(cost_t);
      g.cost_control.push_back(cost_c);
    }
  }
  return g;
}

/// Y_t - Y_c * N_t / N_c, 0 while there is no control row.
inline double incremental(double sum_treated, double sum_control, double treated, double control) {
  return sum_treated - (control > 0 ? sum_control * treated / control : 0.0);
}

/// A curve starting at (0, 0) with one point per tie group: (rows, point(sums, group)).
template <class Point>
UpliftCurve curve_from_scores(Span<const double> outcome, Span<const double> score,
                              Span<const std::uint8_t> treatment, Point point) {
  const GroupSums g = group_sums(outcome, {}, score, treatment);
  UpliftCurve c;
  c.x.push_back(0.0);
  c.y.push_back(0.0);
  for (std::size_t j = 0; j < g.rows.size(); ++j) {
    c.x.push_back(g.rows[j]);
    c.y.push_back(point(g, j, g.rows[j] - g.treated[j]));
  }
  return c;
}

inline UpliftCurve qini_from_scores(Span<const double> outcome, Span<const double> score,
                                    Span<const std::uint8_t> treatment) {
  return curve_from_scores(
      outcome, score, treatment, [](const GroupSums& g, std::size_t j, double control) {
        return incremental(g.sum_treated[j], g.sum_control[j], g.treated[j], control);
      });
}

inline UpliftCurve uplift_from_scores(Span<const double> outcome, Span<const double> score,
                                      Span<const std::uint8_t> treatment) {
  return curve_from_scores(
      outcome, score, treatment, [](const GroupSums& g, std::size_t j, double control) {
        const double mean_t = g.treated[j] > 0 ? g.sum_treated[j] / g.treated[j] : 0.0;
        const double mean_c = control > 0 ? g.sum_control[j] / control : 0.0;
        return (mean_t - mean_c) * g.rows[j];
      });
}

inline double trapezoid(const std::vector<double>& x, const std::vector<double>& y) {
  double area = 0;
  for (std::size_t j = 1; j < x.size(); ++j) area += 0.5 * (x[j] - x[j - 1]) * (y[j] + y[j - 1]);
  return area;
}

/// (area(model) - area(random)) / (area(perfect) - area(random)); random = the chord to the
/// perfect curve's end.
inline double normalized_area(const UpliftCurve& model, const UpliftCurve& perfect,
                              const char* function) {
  const double random = 0.5 * perfect.x.back() * perfect.y.back();
  const double best = trapezoid(perfect.x, perfect.y) - random;
  if (!(std::fabs(best) > 0)) {
    raise<InputError>(function,
                      ": the perfect ranking is no better than random (no incremental outcome "
                      "to rank), so the score is undefined");
  }
  return (trapezoid(model.x, model.y) - random) / best;
}

}  // namespace detail::uplift

PERKREC_INLINE UpliftCurve qini_curve(Span<const double> outcome, Span<const double> uplift,
                                      Span<const std::uint8_t> treatment) {
  detail::uplift::check_inputs("qini_curve", outcome, uplift, treatment);
  return detail::uplift::qini_from_scores(outcome, uplift, treatment);
}

PERKREC_INLINE UpliftCurve uplift_curve(Span<const double> outcome, Span<const double> uplift,
                                        Span<const std::uint8_t> treatment) {
  detail::uplift::check_inputs("uplift_curve", outcome, uplift, treatment);
  return detail::uplift::uplift_from_scores(outcome, uplift, treatment);
}

PERKREC_INLINE UpliftCurve perfect_qini_curve(Span<const double> outcome,
                                              Span<const std::uint8_t> treatment,
                                              bool negative_effect) {
  detail::uplift::check_inputs("perfect_qini_curve", outcome, outcome, treatment);
  const std::size_t n = outcome.size();
  if (negative_effect) {
    std::vector<double> best(n);
    for (std::size_t i = 0; i < n; ++i) best[i] = treatment[i] ? outcome[i] : -outcome[i];
    return detail::uplift::qini_from_scores(outcome, best, treatment);
  }
  double treated = 0, sum_t = 0, sum_c = 0;
  for (std::size_t i = 0; i < n; ++i) {
    treated += treatment[i];
    (treatment[i] ? sum_t : sum_c) += outcome[i];
  }
  const double total =
      detail::uplift::incremental(sum_t, sum_c, treated, static_cast<double>(n) - treated);
  // scikit-uplift's curve: it reaches the total at x = total (in rows) and stays there.
  return UpliftCurve{{0.0, total, static_cast<double>(n)}, {0.0, total, total}};
}

PERKREC_INLINE UpliftCurve perfect_uplift_curve(Span<const double> outcome,
                                                Span<const std::uint8_t> treatment) {
  detail::uplift::check_inputs("perfect_uplift_curve", outcome, outcome, treatment);
  detail::uplift::check_binary(outcome, "perfect_uplift_curve");
  const std::size_t n = outcome.size();
  std::size_t control_responders = 0, treated_non_responders = 0;
  for (std::size_t i = 0; i < n; ++i) {
    control_responders += outcome[i] == 1.0 && !treatment[i];
    treated_non_responders += outcome[i] == 0.0 && treatment[i];
  }
  std::vector<double> best(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double summand = control_responders > treated_non_responders ? outcome[i] : treatment[i];
    best[i] = 2.0 * (outcome[i] == static_cast<double>(treatment[i])) + summand;
  }
  return detail::uplift::uplift_from_scores(outcome, best, treatment);
}

PERKREC_INLINE double qini_auc_score(Span<const double> outcome, Span<const double> uplift,
                                     Span<const std::uint8_t> treatment, bool negative_effect) {
  detail::uplift::check_inputs("qini_auc_score", outcome, uplift, treatment);
  return detail::uplift::normalized_area(
      detail::uplift::qini_from_scores(outcome, uplift, treatment),
      perfect_qini_curve(outcome, treatment, negative_effect), "qini_auc_score");
}

PERKREC_INLINE double uplift_auc_score(Span<const double> outcome, Span<const double> uplift,
                                       Span<const std::uint8_t> treatment) {
  detail::uplift::check_inputs("uplift_auc_score", outcome, uplift, treatment);
  detail::uplift::check_binary(outcome, "uplift_auc_score");
  return detail::uplift::normalized_area(
      detail::uplift::uplift_from_scores(outcome, uplift, treatment),
      perfect_uplift_curve(outcome, treatment), "uplift_auc_score");
}

PERKREC_INLINE double uplift_at_k(Span<const double> outcome, Span<const double> uplift,
                                  Span<const std::uint8_t> treatment, double k,
                                  UpliftAtKStrategy strategy) {
  detail::uplift::check_inputs("uplift_at_k", outcome, uplift, treatment);
  const std::size_t n = outcome.size();
  const bool fraction = k > 0 && k < 1;
  if (!fraction && !(k >= 1 && k == std::floor(k) && k <= static_cast<double>(n))) {
    detail::raise<InputError>(
        "uplift_at_k: k must be a fraction in (0, 1) or a whole number of rows in [1, ", n,
        "] (got ", k, ")");
  }
  std::size_t treated = 0;
  for (std::size_t i = 0; i < n; ++i) treated += treatment[i];
  const auto top = [&](std::size_t count) {
    return fraction ? static_cast<std::size_t>(k * static_cast<double>(count))
                    : static_cast<std::size_t>(k);
  };
  const std::size_t take_all = top(n), take_t = top(treated), take_c = top(n - treated);
  if (strategy == UpliftAtKStrategy::by_group && (take_t > treated || take_c > n - treated)) {
    detail::raise<InputError>("uplift_at_k: k = ", k, " exceeds a group (", treated, " treated, ",
                              n - treated, " control rows)");
  }
  double sum[2] = {0, 0}, count[2] = {0, 0};
  std::size_t seen[2] = {0, 0};
  const std::vector<std::size_t> order = detail::uplift::descending_order(uplift);
  for (std::size_t r = 0; r < n; ++r) {
    const std::size_t i = order[r];
    const int group = treatment[i];
    if (strategy == UpliftAtKStrategy::overall) {
      if (r >= take_all) break;
    } else if (seen[group]++ >= (group ? take_t : take_c)) {
      continue;
    }
    sum[group] += outcome[i];
    count[group] += 1;
  }
  if (count[0] == 0 || count[1] == 0) {
    detail::raise<InputError>("uplift_at_k: no ", count[1] == 0 ? "treated" : "control",
                              " row among the top rows (k = ", k, "); use a larger k");
  }
  return sum[1] / count[1] - sum[0] / count[0];
}

PERKREC_INLINE CostCurve cost_curve(Span<const double> value, Span<const double> cost,
                                    Span<const double> uplift, Span<const std::uint8_t> treatment) {
  detail::uplift::check_inputs("cost_curve", value, uplift, treatment, "value");
  detail::uplift::check_length(cost.size(), value.size(), "cost_curve", "cost");
  detail::uplift::check_finite(cost, "cost_curve", "cost");
  const detail::uplift::GroupSums g = detail::uplift::group_sums(value, cost, uplift, treatment);
  CostCurve c;
  c.rows.push_back(0.0);
  c.cost.push_back(0.0);
  c.value.push_back(0.0);
  for (std::size_t j = 0; j < g.rows.size(); ++j) {
    const double control = g.rows[j] - g.treated[j];
    c.rows.push_back(g.rows[j]);
    c.cost.push_back(
        detail::uplift::incremental(g.cost_treated[j], g.cost_control[j], g.treated[j], control));
    c.value.push_back(
        detail::uplift::incremental(g.sum_treated[j], g.sum_control[j], g.treated[j], control));
  }
  return c;
}

PERKREC_INLINE double aucc_score(Span<const double> value, Span<const double> cost,
                                 Span<const double> uplift, Span<const std::uint8_t> treatment) {
  const CostCurve c = cost_curve(value, cost, uplift, treatment);
  const double total_cost = c.cost.back(), total_value = c.value.back();
  if (!(total_cost > 0) || !(total_value > 0)) {
    detail::raise<InputError>(
        "aucc_score: total incremental value and cost must be positive (got value ", total_value,
        ", cost ", total_cost, ")");
  }
  std::vector<double> x(c.cost.size()), y(c.value.size());
  for (std::size_t j = 0; j < x.size(); ++j) {
    x[j] = c.cost[j] / total_cost;
    y[j] = c.value[j] / total_value;
  }
  return detail::uplift::trapezoid(x, y);
}

}  // namespace perkrec
