// Definitions for experiment.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "perkrec/core/error.hpp"
#include "perkrec/core/math.hpp"
#include "perkrec/core/random.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/eval/experiment.hpp"

namespace perkrec {

PERKREC_INLINE std::uint64_t holdout_hash(std::string_view user_id, std::string_view salt) {
  std::uint64_t h = 0xCBF29CE484222325ULL;  // FNV-1a 64 offset basis
  const auto feed = [&h](unsigned char byte) {
    h ^= byte;
    h *= 0x100000001B3ULL;
  };
  for (char c : salt) feed(static_cast<unsigned char>(c));
  feed(0);  // separator: ("ab", "c") and ("a", "bc") differ
  for (char c : user_id) feed(static_cast<unsigned char>(c));
  // FNV's low bits mix poorly; the SplitMix64 finalizer spreads every input bit over all 64.
  std::uint64_t state = h - 0x9E3779B97F4A7C15ULL;  // splitmix64 adds it back before mixing
  return splitmix64(state);
}

PERKREC_INLINE std::vector<std::int32_t> assign_holdout(const std::vector<std::string>& user_ids,
                                                        std::string_view salt,
                                                        Span<const double> weights,
                                                        int num_threads) {
  if (weights.size() < 2) {
    detail::raise<InputError>("assign_holdout: weights needs at least 2 arms (got ", weights.size(),
                              ")");
  }
  std::vector<double> cumulative(weights.size());
  double total = 0;
  for (std::size_t j = 0; j < weights.size(); ++j) {
    if (!std::isfinite(weights[j]) || weights[j] < 0) {
      detail::raise<InputError>("assign_holdout: weight of arm ", j,
                                " must be finite and >= 0 (got ", weights[j], ")");
    }
    total += weights[j];
    cumulative[j] = total;
  }
  if (!(total > 0)) detail::raise<InputError>("assign_holdout: weights sum to 0");
  resolve_num_threads(num_threads);
  const std::size_t last = weights.size() - 1;
  std::vector<std::int32_t> arms(user_ids.size());
  parallel_for(0, static_cast<Offset>(user_ids.size()), num_threads, [&](Offset i) {
    const auto r = static_cast<std::size_t>(i);
    const double u = static_cast<double>(holdout_hash(user_ids[r], salt) >> 11) * 0x1.0p-53 * total;
    std::size_t arm = 0;
    while (arm < last && !(u < cumulative[arm])) ++arm;
    // Skip zero-weight arms that u landed on through rounding at the end.
    while (arm > 0 && weights[arm] == 0) --arm;
    arms[r] = static_cast<std::int32_t>(arm);
  });
  return arms;
}

PERKREC_INLINE void ExperimentParams::validate() const {
  if (n_arms != 0 && n_arms < 2) {
    detail::raise<ConfigError>("ExperimentParams: n_arms must be 0 (from the data) or >= 2 (got ",
                               n_arms, ")");
  }
  params::validate_fields(*this, "ExperimentParams");
}

namespace detail::experiment {

inline void check_column(Span<const double> values, std::size_t n, const char* name,
                         std::size_t index, bool indexed) {
  if (values.size() != n) {
    if (indexed) {
      raise<InputError>("analyze_experiment: ", name, "[", index, "] has ", values.size(),
                        " rows (expected ", n, ")");
    }
    raise<InputError>("analyze_experiment: ", name, " has ", values.size(), " rows (expected ", n,
                      ")");
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(values[i])) {
      if (indexed) {
        raise<InputError>("analyze_experiment: ", name, "[", index, "] at row ", i,
                          " is not finite (got ", values[i], ")");
      }
      raise<InputError>("analyze_experiment: ", name, " at row ", i, " is not finite (got ",
                        values[i], ")");
    }
  }
}

/// Y - theta (X - mean X), theta = cov(Y, X) / var(X) over all rows (0 when X is constant).
inline std::vector<double> cuped_adjust(Span<const double> y, Span<const double> x, double& theta) {
  const std::size_t n = y.size();
  double mean_x = 0, mean_y = 0;
  for (std::size_t i = 0; i < n; ++i) {
    mean_x += x[i];
    mean_y += y[i];
  }
  mean_x /= static_cast<double>(n);
  mean_y /= static_cast<double>(n);
  double cov = 0, var = 0;
  for (std::size_t i = 0; i < n; ++i) {
    cov += (y[i] - mean_y) * (x[i] - mean_x);
    var += (x[i] - mean_x) * (x[i] - mean_x);
  }
  theta = var > 0 ? cov / var : 0.0;
  std::vector<double> adjusted(n);
  for (std::size_t i = 0; i < n; ++i) adjusted[i] = y[i] - theta * (x[i] - mean_x);
  return adjusted;
}

/// Mean and (n - 1) variance of `column` over `rows`, and the covariance with `other`.
struct Moments {
  double mean = 0, variance = 0, covariance = 0, other_mean = 0;
};

inline Moments moments(const std::vector<std::size_t>& rows, Span<const double> column,
                       Span<const double> other) {
  Moments m;
  const double n = static_cast<double>(rows.size());
  for (std::size_t i : rows) {
    m.mean += column[i];
    if (!other.empty()) m.other_mean += other[i];
  }
  m.mean /= n;
  m.other_mean /= n;
  for (std::size_t i : rows) {
    const double d = column[i] - m.mean;
    m.variance += d * d;
    if (!other.empty()) m.covariance += d * (other[i] - m.other_mean);
  }
  m.variance /= n - 1;
  m.covariance /= n - 1;
  return m;
}

/// numpy's default (linear) quantile of the finite values; NaN when there are none.
inline double quantile(std::vector<double> values, double q) {
  values.erase(
      std::remove_if(values.begin(), values.end(), [](double v) { return !std::isfinite(v); }),
      values.end());
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  const double pos = q * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (pos - static_cast<double>(lo)) * (values[hi] - values[lo]);
}

/// Means of every column in every arm for `resamples` bootstrap draws: out[(b * arms + a) * cols +
/// c].
inline std::vector<double> bootstrap_means(const std::vector<std::vector<std::size_t>>& arm_rows,
                                           const std::vector<Span<const double>>& columns,
                                           int resamples, std::uint64_t seed, int num_threads) {
  const std::size_t n_arms = arm_rows.size(), n_cols = columns.size();
  std::vector<double> out(static_cast<std::size_t>(resamples) * n_arms * n_cols, 0.0);
  parallel_for(
      0, resamples, num_threads,
      [&](Offset b) {
        Rng rng(seed, static_cast<std::uint64_t>(b));
        double* means = out.data() + static_cast<std::size_t>(b) * n_arms * n_cols;
        for (std::size_t a = 0; a < n_arms; ++a) {
          const std::vector<std::size_t>& rows = arm_rows[a];
          const auto size = static_cast<std::uint32_t>(rows.size());
          double* arm_means = means + a * n_cols;
          for (std::uint32_t draw = 0; draw < size; ++draw) {
            const std::size_t i = rows[rng.below(size)];
            for (std::size_t c = 0; c < n_cols; ++c) arm_means[c] += columns[c][i];
          }
          for (std::size_t c = 0; c < n_cols; ++c) arm_means[c] /= static_cast<double>(size);
        }
      },
      Schedule::dynamic, 1);
  return out;
}

}  // namespace detail::experiment

PERKREC_INLINE std::vector<ExperimentComparison> analyze_experiment(
    Span<const std::int32_t> arms, const std::vector<Span<const double>>& metrics,
    const std::vector<Span<const double>>& pre_period, Span<const double> cost,
    const ExperimentParams& params) {
  params.validate();
  const std::size_t n = arms.size();
  if (metrics.empty()) detail::raise<InputError>("analyze_experiment: metrics is empty");
  for (std::size_t m = 0; m < metrics.size(); ++m)
    detail::experiment::check_column(metrics[m], n, "metrics", m, true);
  if (!pre_period.empty() && pre_period.size() != metrics.size()) {
    detail::raise<InputError>("analyze_experiment: pre_period has ", pre_period.size(),
                              " entries (expected 0 or one per metric, ", metrics.size(), ")");
  }
  for (std::size_t m = 0; m < pre_period.size(); ++m) {
    if (!pre_period[m].empty())
      detail::experiment::check_column(pre_period[m], n, "pre_period", m, true);
  }
  if (!cost.empty()) detail::experiment::check_column(cost, n, "cost", 0, false);
  std::int32_t largest = -1;
  for (std::size_t i = 0; i < n; ++i) {
    const std::int32_t a = arms[i];
    if (a < 0 || (params.n_arms > 0 && a >= params.n_arms)) {
      detail::raise<InputError>(
          "analyze_experiment: arm at row ", i, " is unknown (got ", a, ", expected 0 <= arm < ",
          params.n_arms > 0 ? params.n_arms : std::numeric_limits<std::int32_t>::max(), ")");
    }
    largest = std::max(largest, a);
  }
  const std::size_t n_arms = params.n_arms > 0 ? static_cast<std::size_t>(params.n_arms)
                                               : static_cast<std::size_t>(largest + 1);
  if (n_arms < 2)
    detail::raise<InputError>("analyze_experiment: needs a control and at least one arm (got arms ",
                              largest + 1, ")");
  std::vector<std::vector<std::size_t>> arm_rows(n_arms);
  for (std::size_t i = 0; i < n; ++i) arm_rows[static_cast<std::size_t>(arms[i])].push_back(i);
  for (std::size_t a = 0; a < n_arms; ++a) {
    if (arm_rows[a].size() < 2) {
      detail::raise<InputError>("analyze_experiment: arm ", a, " has ", arm_rows[a].size(),
                                " rows (expected at least 2)");
    }
    if (arm_rows[a].size() > 0xFFFFFFFFull)
      detail::raise<InputError>("analyze_experiment: arm ", a, " has over 2^32 rows");
  }

  // Columns analyzed: the (CUPED-adjusted) metrics, then the cost.
  const std::size_t n_metrics = metrics.size();
  std::vector<std::vector<double>> adjusted(n_metrics);
  std::vector<double> theta(n_metrics, 0.0);
  std::vector<Span<const double>> columns(n_metrics);
  for (std::size_t m = 0; m < n_metrics; ++m) {
    const bool has_covariate = params.cuped && !pre_period.empty() && !pre_period[m].empty();
    if (has_covariate) {
      adjusted[m] = detail::experiment::cuped_adjust(metrics[m], pre_period[m], theta[m]);
      columns[m] = Span<const double>(adjusted[m]);
    } else {
      columns[m] = metrics[m];
    }
  }
  const bool has_cost = !cost.empty();
  if (has_cost) columns.push_back(cost);
  const std::size_t n_cols = columns.size();

  std::vector<double> boot;
  if (params.bootstrap > 0) {
    boot = detail::experiment::bootstrap_means(arm_rows, columns, params.bootstrap, params.seed,
                                               params.num_threads);
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double z = inverse_normal_cdf(0.5 * (1.0 + params.confidence));
  const double tail = 0.5 * (1.0 - params.confidence);
  std::vector<ExperimentComparison> out;
  for (std::size_t a = 1; a < n_arms; ++a) {
    const double n0 = static_cast<double>(arm_rows[0].size()),
                 na = static_cast<double>(arm_rows[a].size());
    detail::experiment::Moments cost0, costa;
    if (has_cost) {
      cost0 = detail::experiment::moments(arm_rows[0], cost, {});
      costa = detail::experiment::moments(arm_rows[a], cost, {});
    }
    for (std::size_t m = 0; m < n_metrics; ++m) {
      const Span<const double> other = has_cost ? cost : Span<const double>();
      const auto c = detail::experiment::moments(arm_rows[0], columns[m], other);
      const auto t = detail::experiment::moments(arm_rows[a], columns[m], other);
      ExperimentComparison r;
      r.arm = static_cast<std::int32_t>(a);
      r.metric = static_cast<std::int32_t>(m);
      r.n_control = static_cast<Offset>(arm_rows[0].size());
      r.n_arm = static_cast<Offset>(arm_rows[a].size());
      r.control_mean = detail::experiment::moments(arm_rows[0], metrics[m], {}).mean;
      r.arm_mean = detail::experiment::moments(arm_rows[a], metrics[m], {}).mean;
      r.theta = theta[m];
      r.lift = t.mean - c.mean;
      r.relative_lift = r.control_mean != 0 ? r.lift / r.control_mean : nan;
      const double var_lift = t.variance / na + c.variance / n0;
      r.std_error = std::sqrt(var_lift);
      r.lower = r.lift - z * r.std_error;
      r.upper = r.lift + z * r.std_error;
      r.p_value = r.std_error > 0 ? 2.0 * normal_cdf(-std::fabs(r.lift) / r.std_error)
                                  : (r.lift == 0 ? 1.0 : 0.0);
      r.bootstrap_lower = r.bootstrap_upper = nan;
      r.roi = r.roi_lower = r.roi_upper = r.roi_bootstrap_lower = r.roi_bootstrap_upper = nan;
      const double cost_lift = costa.mean - cost0.mean;
      if (has_cost && cost_lift != 0) {
        r.roi = r.lift / cost_lift;
        const double var_cost = costa.variance / na + cost0.variance / n0;
        const double cov = t.covariance / na + c.covariance / n0;
        const double var_roi =
            (var_lift - 2 * r.roi * cov + r.roi * r.roi * var_cost) / (cost_lift * cost_lift);
        const double se_roi = std::sqrt(std::max(0.0, var_roi));
        r.roi_lower = r.roi - z * se_roi;
        r.roi_upper = r.roi + z * se_roi;
      }
      if (params.bootstrap > 0) {
        std::vector<double> lifts(static_cast<std::size_t>(params.bootstrap));
        std::vector<double> rois(has_cost ? lifts.size() : 0);
        for (std::size_t b = 0; b < lifts.size(); ++b) {
          const double* means = boot.data() + b * n_arms * n_cols;
          lifts[b] = means[a * n_cols + m] - means[m];
          if (has_cost) {
            const double dc = means[a * n_cols + n_metrics] - means[n_metrics];
            rois[b] = dc != 0 ? lifts[b] / dc : nan;
          }
        }
        r.bootstrap_lower = detail::experiment::quantile(lifts, tail);
        r.bootstrap_upper = detail::experiment::quantile(lifts, 1.0 - tail);
        if (has_cost && cost_lift != 0) {
          r.roi_bootstrap_lower = detail::experiment::quantile(rois, tail);
          r.roi_bootstrap_upper = detail::experiment::quantile(rois, 1.0 - tail);
        }
      }
      out.push_back(r);
    }
  }
  return out;
}

PERKREC_INLINE ExperimentMembers experiment_members(const EventLog& log,
                                                    Span<const double> cost_per_redemption,
                                                    Timestamp since, Timestamp until,
                                                    double issue_cost) {
  const char* context = "experiment_members";
  if (!log.has_control()) {
    detail::raise<InputError>(context, ": the log has no control flag (a control column)");
  }
  if (cost_per_redemption.size() != static_cast<std::size_t>(log.n_benefits())) {
    detail::raise<InputError>(context, ": the catalog has ", cost_per_redemption.size(),
                              " benefits, the log ", log.n_benefits());
  }
  if (!(std::isfinite(issue_cost) && issue_cost >= 0)) {
    detail::raise<InputError>(context, ": issue_cost must be finite and >= 0 (got ", issue_cost,
                              ")");
  }
  const Timestamp first = log.empty() ? 0 : log.min_time();
  const Timestamp last = log.empty() ? 0 : log.max_time();
  const Timestamp start = since == kNoTime ? first : since;
  const Timestamp stop = until == kNoTime ? last + 1 : until;
  if (!(start < stop)) {
    detail::raise<InputError>(context, ": since must be before until (got ", start, ", ", stop,
                              ")");
  }
  const bool pre = since != kNoTime;
  const Timestamp pre_start = start - ((until == kNoTime ? last : stop) - start);
  const auto n = static_cast<std::size_t>(log.n_users());
  ExperimentMembers out;
  out.control.assign(n, 0);
  out.orders.assign(n, 0.0);
  out.revenue.assign(n, 0.0);
  out.cost.assign(n, 0.0);
  if (pre) {
    out.orders_pre.assign(n, 0.0);
    out.revenue_pre.assign(n, 0.0);
  }
  // Redemption costs and issue counts are summed apart and combined at the end, as
  // bincount(redeemed, cost) + issue_cost x bincount(issued) does.
  std::vector<double> issues(n, 0.0);
  const Span<const Index> users = log.users();
  const Span<const Index> benefits = log.benefits();
  const Span<const Timestamp> times = log.timestamps();
  const Span<const float> amounts = log.order_amounts();
  const Span<const std::uint8_t> control = log.control();
  for (Offset e = 0; e < log.size(); ++e) {
    const auto i = static_cast<std::size_t>(e);
    const auto u = static_cast<std::size_t>(users[i]);
    if (control[i] != 0) out.control[u] = 1;
    const EventType type = log.type(e);
    const Timestamp t = times[i];
    const double amount = amounts.empty() ? 0.0 : static_cast<double>(amounts[i]);
    if (t >= start && t < stop) {
      if (type == EventType::ordered) {
        out.orders[u] += 1.0;
        out.revenue[u] += amount;
      } else if (type == EventType::redeemed) {
        const Index b = benefits[i];
        out.cost[u] += b >= 0 ? cost_per_redemption[static_cast<std::size_t>(b)] : 0.0;
      } else if (type == EventType::issued) {
        issues[u] += 1.0;
      }
    } else if (pre && type == EventType::ordered && t >= pre_start && t < start) {
      out.orders_pre[u] += 1.0;
      out.revenue_pre[u] += amount;
    }
  }
  for (std::size_t u = 0; u < n; ++u) out.cost[u] += issue_cost * issues[u];
  return out;
}

}  // namespace perkrec
