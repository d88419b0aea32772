// Definitions of decide/planner.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "perkrec/core/random.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/decide/allocator_exact.hpp"
#include "perkrec/decide/planner.hpp"
#include "perkrec/detail/numpy_sum.hpp"
#include "perkrec/features/redemption_labels.hpp"

namespace perkrec {

namespace detail {

/// Median of a non-empty range (reordered), the mean of the two middle values for an even
/// count, rounded to float as numpy / pandas round a float32 median.
inline float median_of(float* first, float* last) {
  const std::size_t n = static_cast<std::size_t>(last - first);
  float* mid = first + n / 2;
  std::nth_element(first, mid, last);
  if (n % 2 == 1) return *mid;
  const float upper = *mid;
  const float lower = *std::max_element(first, mid);
  return static_cast<float>((static_cast<double>(lower) + static_cast<double>(upper)) * 0.5);
}

inline void check_baseline_matrix(const char* context, const char* field, Span<const double> m,
                                  Index n_users, Index n_benefits) {
  const std::size_t expected =
      static_cast<std::size_t>(n_users) * static_cast<std::size_t>(n_benefits);
  if (m.size() != expected) {
    detail::raise<InputError>(context, ": ", field, " has ", m.size(),
                              " entries (expected members x benefits = ", n_users, " x ",
                              n_benefits, ")");
  }
  for (std::size_t i = 0; i < m.size(); ++i) {
    if (!std::isfinite(m[i])) {
      detail::raise<InputError>(context, ": ", field, "[", i / static_cast<std::size_t>(n_benefits),
                                ", ", i % static_cast<std::size_t>(n_benefits),
                                "] is not finite (got ", m[i], ")");
    }
  }
}

/// Validates the baseline inputs and returns the members' visiting order.
inline std::vector<Index> baseline_order(const char* context, const BaselineInputs& in) {
  if (in.n_users < 0 || in.n_benefits < 0) {
    detail::raise<InputError>(context, ": negative shape (", in.n_users, " x ", in.n_benefits, ")");
  }
  if (!(in.budget >= 0))
    detail::raise<ConfigError>(context, ": budget must be >= 0 (got ", in.budget, ")");
  if (!(std::isfinite(in.issue_cost) && in.issue_cost >= 0)) {
    detail::raise<ConfigError>(context, ": issue_cost must be finite and >= 0 (got ", in.issue_cost,
                               ")");
  }
  check_baseline_matrix(context, "redemption_probability", in.redemption_probability, in.n_users,
                        in.n_benefits);
  check_baseline_matrix(context, "value", in.value, in.n_users, in.n_benefits);
  if (in.cost_per_redemption.size() != static_cast<std::size_t>(in.n_benefits)) {
    detail::raise<InputError>(context, ": cost_per_redemption has ", in.cost_per_redemption.size(),
                              " entries (expected ", in.n_benefits, ")");
  }
  for (std::size_t b = 0; b < in.cost_per_redemption.size(); ++b) {
    if (!(std::isfinite(in.cost_per_redemption[b]) && in.cost_per_redemption[b] >= 0)) {
      detail::raise<InputError>(context, ": cost_per_redemption[", b,
                                "] must be finite and >= 0 (got ", in.cost_per_redemption[b], ")");
    }
  }
  if (!in.eligible.empty() && in.eligible.size() != in.redemption_probability.size()) {
    detail::raise<InputError>(context, ": eligible has ", in.eligible.size(), " entries (expected ",
                              in.redemption_probability.size(), " or none)");
  }
  const auto n = static_cast<std::size_t>(in.n_users);
  std::vector<Index> order;
  if (in.order.empty()) {
    order.resize(n);
    std::iota(order.begin(), order.end(), Index{0});
    Rng rng(in.seed);
    for (std::size_t i = n; i > 1; --i) {
      std::swap(order[i - 1], order[rng.below(static_cast<std::uint32_t>(i))]);
    }
    return order;
  }
  if (in.order.size() != n) {
    detail::raise<InputError>(context, ": order has ", in.order.size(), " entries (expected ", n,
                              " or none)");
  }
  std::vector<std::uint8_t> seen(n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    const Index u = in.order[i];
    if (u < 0 || u >= in.n_users || seen[static_cast<std::size_t>(u)] != 0) {
      detail::raise<InputError>(context, ": order must be a permutation of the members (order[", i,
                                "] = ", u, ")");
    }
    seen[static_cast<std::size_t>(u)] = 1;
  }
  return std::vector<Index>(in.order.begin(), in.order.end());
}

/// Members in `order` whose benefit[u] >= 0 while the running cost stays within the budget
/// (a member who would overshoot is skipped), returned ascending.
inline std::vector<Index> fill_until_budget(const std::vector<Index>& order,
                                            const std::vector<Index>& benefit,
                                            const std::vector<double>& cost, double budget) {
  std::vector<Index> taken;
  double spent = 0.0;
  for (Index u : order) {
    const auto uz = static_cast<std::size_t>(u);
    if (benefit[uz] >= 0 && spent + cost[uz] <= budget) {
      spent += cost[uz];
      taken.push_back(u);
    }
  }
  std::sort(taken.begin(), taken.end());
  return taken;
}

inline void add_baseline_row(const BaselineInputs& in, BaselinePlan& plan, Index u, Index b,
                             double cost) {
  const std::size_t at = static_cast<std::size_t>(u) * static_cast<std::size_t>(in.n_benefits) +
                         static_cast<std::size_t>(b);
  plan.member.push_back(u);
  plan.benefit.push_back(b);
  plan.probability.push_back(in.redemption_probability[at]);
  plan.value.push_back(in.value[at]);
  plan.cost.push_back(cost);
}

inline bool baseline_eligible(const BaselineInputs& in, Index u, Index b) {
  return in.eligible.empty() ||
         in.eligible[static_cast<std::size_t>(u) * static_cast<std::size_t>(in.n_benefits) +
                     static_cast<std::size_t>(b)] != 0;
}

}  // namespace detail

// --- estimators --------------------------------------------------------------------------------

PERKREC_INLINE std::vector<float> order_value(Span<const Index> users, Span<const Timestamp> times,
                                              Span<const float> amounts, Index n_users,
                                              double margin, Timestamp cut_time) {
  if (!(margin > 0 && margin <= 1))
    detail::raise<ConfigError>("order_value: margin must be in (0, 1] (got ", margin, ")");
  if (n_users < 0)
    detail::raise<InputError>("order_value: n_users must be >= 0 (got ", n_users, ")");
  if (amounts.size() != users.size() || (!times.empty() && times.size() != users.size())) {
    detail::raise<InputError>("order_value: users, times and amounts have ", users.size(), ", ",
                              times.size(), " and ", amounts.size(),
                              " entries (expected equal lengths; times may be empty)");
  }
  if (times.empty() && cut_time != kNoTime && !users.empty()) {
    detail::raise<InputError>("order_value: a cut_time needs the orders' times");
  }
  // Orders before the cut, grouped by member (a counting sort keeps it O(orders)).
  std::vector<std::int64_t> start(static_cast<std::size_t>(n_users) + 1, 0);
  std::size_t kept = 0;
  for (std::size_t i = 0; i < users.size(); ++i) {
    const Index u = users[i];
    if (u < 0 || u >= n_users) {
      detail::raise<InputError>("order_value: users[", i, "] is out of range (got ", u,
                                ", expected [0, ", n_users, "))");
    }
    if (!std::isfinite(amounts[i])) {
      detail::raise<InputError>("order_value: amounts[", i, "] is not finite (got ", amounts[i],
                                ")");
    }
    if (cut_time != kNoTime && !(times[i] < cut_time)) continue;
    ++start[static_cast<std::size_t>(u) + 1];
    ++kept;
  }
  if (kept == 0)
    detail::raise<InputError>(
        "order_value: the events hold no orders (event_type 'ordered') before the cut");
  for (std::size_t u = 0; u < static_cast<std::size_t>(n_users); ++u) start[u + 1] += start[u];
  std::vector<float> grouped(kept), all(kept);
  std::vector<std::int64_t> next(start.begin(), start.end() - 1);
  std::size_t k = 0;
  for (std::size_t i = 0; i < users.size(); ++i) {
    if (cut_time != kNoTime && !(times[i] < cut_time)) continue;
    grouped[static_cast<std::size_t>(next[static_cast<std::size_t>(users[i])]++)] = amounts[i];
    all[k++] = amounts[i];
  }
  const float population = detail::median_of(all.data(), all.data() + all.size());
  std::vector<float> out(static_cast<std::size_t>(n_users));
  for (std::size_t u = 0; u < out.size(); ++u) {
    const float median = start[u + 1] > start[u] ? detail::median_of(grouped.data() + start[u],
                                                                     grouped.data() + start[u + 1])
                                                 : population;
    out[u] = static_cast<float>(margin * static_cast<double>(median));
  }
  return out;
}

PERKREC_INLINE std::vector<float> order_value(const EventLog& log, double margin,
                                              Timestamp cut_time) {
  std::vector<Index> users;
  std::vector<Timestamp> times;
  std::vector<float> amounts;
  const Span<const std::uint8_t> types = log.types();
  const Span<const float> log_amounts = log.order_amounts();
  for (std::size_t e = 0; e < types.size(); ++e) {
    if (static_cast<EventType>(types[e]) != EventType::ordered) continue;
    users.push_back(log.users()[e]);
    times.push_back(log.timestamps()[e]);
    amounts.push_back(log_amounts.empty() ? 0.0f : log_amounts[e]);
  }
  return order_value(users, times, amounts, log.n_users(), margin, cut_time);
}

PERKREC_INLINE std::vector<std::int64_t> redemption_counts(Span<const Index> benefits,
                                                           Index n_benefits) {
  if (n_benefits < 0)
    detail::raise<InputError>("redemption_counts: n_benefits must be >= 0 (got ", n_benefits, ")");
  std::vector<std::int64_t> counts(static_cast<std::size_t>(n_benefits), 0);
  for (std::size_t i = 0; i < benefits.size(); ++i) {
    const Index b = benefits[i];
    if (b < 0) continue;
    if (b >= n_benefits) {
      detail::raise<InputError>("redemption_counts: benefits[", i, "] is out of range (got ", b,
                                ", expected < ", n_benefits, ")");
    }
    ++counts[static_cast<std::size_t>(b)];
  }
  return counts;
}

PERKREC_INLINE std::vector<std::int64_t> redemption_counts(const EventLog& log, Index n_benefits) {
  std::vector<Index> redeemed;
  const Span<const std::uint8_t> types = log.types();
  for (std::size_t e = 0; e < types.size(); ++e) {
    if (static_cast<EventType>(types[e]) == EventType::redeemed)
      redeemed.push_back(log.benefits()[e]);
  }
  return redemption_counts(redeemed, n_benefits);
}

namespace detail {

inline void check_non_negative(const char* context, const char* field, Span<const double> v) {
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!(std::isfinite(v[i]) && v[i] >= 0)) {
      detail::raise<InputError>(context, ": ", field, "[", i, "] must be finite and >= 0 (got ",
                                v[i], ")");
    }
  }
}

}  // namespace detail

PERKREC_INLINE std::vector<float> timing_share(Span<const double> orders_per_day,
                                               Span<const double> validity_days) {
  detail::check_non_negative("timing_share", "orders_per_day", orders_per_day);
  detail::check_non_negative("timing_share", "validity_days", validity_days);
  const std::size_t n = orders_per_day.size(), m = validity_days.size();
  std::vector<float> out(n * m);
  for (std::size_t u = 0; u < n; ++u) {
    for (std::size_t b = 0; b < m; ++b)
      out[u * m + b] = static_cast<float>(std::exp(-(orders_per_day[u] * validity_days[b])));
  }
  return out;
}

PERKREC_INLINE ScoreBlend::Scorer timing_share_scorer(std::vector<double> orders_per_day,
                                                      std::vector<double> validity_days) {
  detail::check_non_negative("timing_share_scorer", "orders_per_day", orders_per_day);
  detail::check_non_negative("timing_share_scorer", "validity_days", validity_days);
  return [rate = std::move(orders_per_day), validity = std::move(validity_days)](
             Span<const Index> users, Span<const Index> benefits, Span<float> out) {
    for (std::size_t i = 0; i < users.size(); ++i) {
      const Index u = users[i], b = benefits[i];
      if (u < 0 || static_cast<std::size_t>(u) >= rate.size() || b < 0 ||
          static_cast<std::size_t>(b) >= validity.size()) {
        detail::raise<InputError>("timing_share_scorer: pair (", u, ", ", b, ") out of range (",
                                  rate.size(), " members x ", validity.size(), " benefits)");
      }
      out[i] = static_cast<float>(
          std::exp(-(rate[static_cast<std::size_t>(u)] * validity[static_cast<std::size_t>(b)])));
    }
  };
}

PERKREC_INLINE ScoreBlend::Scorer factor_scorer(Span<const float> user_factors,
                                                Span<const float> benefit_factors,
                                                Span<const float> benefit_bias, Index k) {
  if (k < 1) detail::raise<InputError>("factor_scorer: k must be >= 1 (got ", k, ")");
  const auto kz = static_cast<std::size_t>(k);
  if (user_factors.size() % kz != 0 || benefit_factors.size() % kz != 0) {
    detail::raise<InputError>("factor_scorer: user_factors (", user_factors.size(),
                              ") and benefit_factors (", benefit_factors.size(),
                              ") must hold whole rows of k = ", k, " factors");
  }
  const std::size_t n = user_factors.size() / kz, m = benefit_factors.size() / kz;
  if (!benefit_bias.empty() && benefit_bias.size() != m) {
    detail::raise<InputError>("factor_scorer: benefit_bias has ", benefit_bias.size(),
                              " entries (expected ", m, ")");
  }
  for (Span<const float> s : {user_factors, benefit_factors, benefit_bias}) {
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (!std::isfinite(s[i]))
        detail::raise<InputError>("factor_scorer: a factor is not finite (got ", s[i], ")");
    }
  }
  return [user_factors, benefit_factors, benefit_bias, kz, n, m](
             Span<const Index> users, Span<const Index> benefits, Span<float> out) {
    for (std::size_t i = 0; i < users.size(); ++i) {
      const Index u = users[i], b = benefits[i];
      if (u < 0 || static_cast<std::size_t>(u) >= n || b < 0 || static_cast<std::size_t>(b) >= m) {
        detail::raise<InputError>("factor_scorer: pair (", u, ", ", b, ") out of range (", n,
                                  " members x ", m, " benefits)");
      }
      const float* x = user_factors.data() + static_cast<std::size_t>(u) * kz;
      const float* y = benefit_factors.data() + static_cast<std::size_t>(b) * kz;
      double z = benefit_bias.empty() ? 0.0 : benefit_bias[static_cast<std::size_t>(b)];
      for (std::size_t f = 0; f < kz; ++f) z += static_cast<double>(x[f]) * y[f];
      out[i] = static_cast<float>(1.0 / (1.0 + std::exp(-z)));
    }
  };
}

namespace detail {

/// Orders grouped by member, times ascending, for the control-share estimator's queries.
struct OrderIndex {
  std::vector<std::int64_t> start;  // n_users + 1
  std::vector<Timestamp> time;

  OrderIndex(Index n_users, Span<const Index> user, Span<const Timestamp> t)
      : start(static_cast<std::size_t>(n_users) + 1, 0) {
    for (Index u : user) ++start[static_cast<std::size_t>(u) + 1];
    for (std::size_t u = 0; u + 1 < start.size(); ++u) start[u + 1] += start[u];
    time.resize(user.size());
    std::vector<std::int64_t> next(start.begin(), start.end() - 1);
    for (std::size_t i = 0; i < user.size(); ++i)
      time[static_cast<std::size_t>(next[static_cast<std::size_t>(user[i])]++)] = t[i];
    for (std::size_t u = 0; u + 1 < start.size(); ++u)
      std::sort(time.begin() + start[u], time.begin() + start[u + 1]);
  }

  /// Days since the last order before t (inf: none), the mean days between the orders before
  /// t (NaN: fewer than two), and whether an order falls in [t, t + window days).
  void state(Index u, Timestamp t, double window, double& recency, double& gap,
             bool& ordered) const {
    const auto first = time.begin() + start[static_cast<std::size_t>(u)];
    const auto last = time.begin() + start[static_cast<std::size_t>(u) + 1];
    const auto pos = std::lower_bound(first, last, t);
    const std::int64_t before = pos - first;
    recency = before > 0 ? static_cast<double>(t - *(pos - 1)) / 86400.0
                         : std::numeric_limits<double>::infinity();
    gap = before > 1
              ? static_cast<double>(*(pos - 1) - *first) / 86400.0 / static_cast<double>(before - 1)
              : std::numeric_limits<double>::quiet_NaN();
    ordered = pos != last && static_cast<double>(*pos) < static_cast<double>(t) + window * 86400.0;
  }
};

/// np.digitize(x, bins) for increasing bins: how many bins are <= x.
template <std::size_t N>
int digitize(double x, const double (&bins)[N]) {
  int i = 0;
  for (double b : bins) i += b <= x ? 1 : 0;
  return i;
}

/// Stratum of (benefit kind, member state): kind x order cycle (4 bins + none) x overdue
/// (3 bins + never ordered).
inline std::int64_t control_stratum(std::int32_t kind, double recency, double gap,
                                    double validity) {
  static const double cycle_bins[] = {0.5, 1.5, 4.0};
  static const double due_bins[] = {0.75, 2.0};
  const int cycle = std::isnan(gap) ? 4 : digitize(validity / gap, cycle_bins);
  const double overdue = recency / (std::isnan(gap) ? 30.0 : std::max(gap, 1.0));
  const int due = std::isinf(recency) ? 3 : digitize(overdue, due_bins);
  return (static_cast<std::int64_t>(kind) * 5 + cycle) * 4 + due;
}

}  // namespace detail

PERKREC_INLINE std::vector<float> incremental_share_from_control(const ControlShareInputs& in) {
  const char* c = "incremental_share_from_control";
  if (in.min_rows < 1)
    detail::raise<ConfigError>(c, ": min_rows must be >= 1 (got ", in.min_rows, ")");
  if (in.n_users < 0 || in.n_kinds < 1) {
    detail::raise<InputError>(c, ": n_users must be >= 0 and n_kinds >= 1 (got ", in.n_users, ", ",
                              in.n_kinds, ")");
  }
  const std::size_t nb = in.validity_days.size();
  if (in.benefit_kind.size() != nb) {
    detail::raise<InputError>(c, ": benefit_kind has ", in.benefit_kind.size(),
                              " entries (expected ", nb, ")");
  }
  for (std::size_t b = 0; b < nb; ++b) {
    if (in.benefit_kind[b] < 0 || in.benefit_kind[b] >= in.n_kinds) {
      detail::raise<InputError>(c, ": benefit_kind[", b, "] must be in [0, ", in.n_kinds, ") (got ",
                                in.benefit_kind[b], ")");
    }
    if (!(std::isfinite(in.validity_days[b]) && in.validity_days[b] > 0)) {
      detail::raise<InputError>(c, ": validity_days[", b, "] must be finite and > 0 (got ",
                                in.validity_days[b], ")");
    }
  }
  auto check_rows = [&](const char* what, Span<const Index> user, Span<const Index> benefit,
                        Span<const Timestamp> time, std::size_t extra) {
    if ((!benefit.empty() || extra > 0) &&
        (benefit.size() != user.size() || time.size() != user.size())) {
      detail::raise<InputError>(c, ": ", what, " columns have different lengths (", user.size(),
                                ", ", benefit.size(), ", ", time.size(), ")");
    }
    for (std::size_t i = 0; i < user.size(); ++i) {
      if (user[i] < 0 || user[i] >= in.n_users) {
        detail::raise<InputError>(c, ": ", what, " user[", i, "] out of range (got ", user[i],
                                  ", expected [0, ", in.n_users, "))");
      }
      if (!benefit.empty() && (benefit[i] < 0 || static_cast<std::size_t>(benefit[i]) >= nb)) {
        detail::raise<InputError>(c, ": ", what, " benefit[", i, "] out of range (got ", benefit[i],
                                  ", expected [0, ", nb, "))");
      }
    }
  };
  if (in.order_time.size() != in.order_user.size()) {
    detail::raise<InputError>(c, ": order_user and order_time have ", in.order_user.size(), " and ",
                              in.order_time.size(), " entries (expected equal lengths)");
  }
  check_rows("orders", in.order_user, {}, in.order_time, 0);
  check_rows("issues", in.issue_user, in.issue_benefit, in.issue_time, 1);
  check_rows("control", in.control_user, in.control_benefit, in.control_time, 1);
  if (in.issue_redeemed.size() != in.issue_user.size()) {
    detail::raise<InputError>(c, ": issue_redeemed has ", in.issue_redeemed.size(),
                              " entries (expected ", in.issue_user.size(), ")");
  }
  if (in.issue_user.empty()) detail::raise<InputError>(c, ": no issues (got 0 rows)");

  const detail::OrderIndex orders(in.n_users, in.order_user, in.order_time);
  const std::size_t n_strata = static_cast<std::size_t>(in.n_kinds) * 20;
  // Per side: stratum and outcome of every row.
  auto strata_of = [&](Span<const Index> user, Span<const Index> benefit,
                       Span<const Timestamp> time, std::vector<std::int64_t>& stratum,
                       std::vector<double>& outcome) {
    stratum.resize(user.size());
    outcome.resize(user.size());
    for (std::size_t i = 0; i < user.size(); ++i) {
      const auto b = static_cast<std::size_t>(benefit[i]);
      double recency = 0, gap = 0;
      bool ordered = false;
      orders.state(user[i], time[i], in.validity_days[b], recency, gap, ordered);
      stratum[i] = detail::control_stratum(in.benefit_kind[b], recency, gap, in.validity_days[b]);
      outcome[i] = ordered ? 1.0 : 0.0;
    }
  };
  std::vector<std::int64_t> s_issue, s_control;
  std::vector<double> y_issue, y_control;
  strata_of(in.issue_user, in.issue_benefit, in.issue_time, s_issue, y_issue);
  strata_of(in.control_user, in.control_benefit, in.control_time, s_control, y_control);

  // Share per group (group = stratum / divisor), summed in row order like np.bincount.
  auto shares = [&](std::int64_t divisor, std::size_t groups, std::vector<double>& share,
                    std::vector<std::uint8_t>& ok) {
    std::vector<std::int64_t> nt(groups, 0), nc(groups, 0);
    std::vector<double> yt(groups, 0.0), yc(groups, 0.0), rt(groups, 0.0);
    for (std::size_t i = 0; i < s_issue.size(); ++i) {
      const auto g = static_cast<std::size_t>(s_issue[i] / divisor);
      ++nt[g];
      yt[g] += y_issue[i];
      rt[g] += in.issue_redeemed[i];
    }
    for (std::size_t i = 0; i < s_control.size(); ++i) {
      const auto g = static_cast<std::size_t>(s_control[i] / divisor);
      ++nc[g];
      yc[g] += y_control[i];
    }
    share.resize(groups);
    ok.resize(groups);
    for (std::size_t g = 0; g < groups; ++g) {
      const double t_rate = yt[g] / static_cast<double>(std::max<std::int64_t>(nt[g], 1));
      const double c_rate = yc[g] / static_cast<double>(std::max<std::int64_t>(nc[g], 1));
      const double r_rate = rt[g] / static_cast<double>(std::max<std::int64_t>(nt[g], 1));
      share[g] = std::min(1.0, std::max(0.0, (t_rate - c_rate) / std::max(r_rate, 1e-9)));
      ok[g] = nt[g] >= in.min_rows && nc[g] >= in.min_rows && r_rate > 0 ? 1 : 0;
    }
  };
  std::vector<double> s_cell, s_kind, s_all;
  std::vector<std::uint8_t> ok_cell, ok_kind, ok_all;
  shares(1, n_strata, s_cell, ok_cell);
  shares(20, static_cast<std::size_t>(in.n_kinds), s_kind, ok_kind);
  shares(static_cast<std::int64_t>(n_strata), 1, s_all, ok_all);
  std::vector<double> cell_share(n_strata);
  for (std::size_t s = 0; s < n_strata; ++s) {
    cell_share[s] = ok_cell[s] ? s_cell[s] : ok_kind[s / 20] ? s_kind[s / 20] : s_all[0];
  }

  // Every member's state at plan_time, for every benefit.
  const auto n = static_cast<std::size_t>(in.n_users);
  std::vector<float> out(n * nb);
  for (std::size_t u = 0; u < n; ++u) {
    double recency = 0, gap = 0;
    bool ordered = false;
    orders.state(static_cast<Index>(u), in.plan_time, 0.0, recency, gap, ordered);
    for (std::size_t b = 0; b < nb; ++b) {
      const std::int64_t s =
          detail::control_stratum(in.benefit_kind[b], recency, gap, in.validity_days[b]);
      out[u * nb + b] = static_cast<float>(cell_share[static_cast<std::size_t>(s)]);
    }
  }
  return out;
}

PERKREC_INLINE std::vector<float> incremental_share_from_control(const EventLog& log,
                                                                 const Catalog& catalog,
                                                                 Timestamp plan_time,
                                                                 const ControlShareParams& params) {
  const char* c = "incremental_share_from_control";
  if (params.pseudo_issues < 1) {
    detail::raise<ConfigError>(c, ": pseudo_issues must be an integer >= 1 (got ",
                               params.pseudo_issues, ")");
  }
  if (params.min_rows < 1) {
    detail::raise<ConfigError>(c, ": min_rows must be an integer >= 1 (got ", params.min_rows, ")");
  }
  if (!log.has_control()) {
    detail::raise<InputError>(c,
                              ": events: no control column (a random control group is needed; "
                              "use incremental_share(preference, catalog) without one)");
  }
  if (catalog.size() != log.n_benefits()) {
    detail::raise<InputError>(c, ": the catalog has ", catalog.size(), " benefits, the log ",
                              log.n_benefits());
  }
  const auto nb = static_cast<std::size_t>(catalog.size());
  const auto n = static_cast<std::size_t>(log.n_users());
  // Kind codes in name order of the kinds present (as pandas' categorical codes them).
  std::vector<std::string> kind_names;
  for (std::size_t b = 0; b < nb; ++b)
    kind_names.emplace_back(to_string(catalog[static_cast<Index>(b)].kind));
  std::vector<std::string> kinds = kind_names;
  std::sort(kinds.begin(), kinds.end());
  kinds.erase(std::unique(kinds.begin(), kinds.end()), kinds.end());
  std::vector<std::int32_t> kind_code(nb);
  std::vector<double> validity(nb);
  for (std::size_t b = 0; b < nb; ++b) {
    kind_code[b] = static_cast<std::int32_t>(
        std::lower_bound(kinds.begin(), kinds.end(), kind_names[b]) - kinds.begin());
    validity[b] = static_cast<double>(catalog[static_cast<Index>(b)].validity_days);
  }
  const Span<const Index> users = log.users();
  const Span<const Index> benefits = log.benefits();
  const Span<const std::uint8_t> types = log.types();
  const Span<const Timestamp> times = log.timestamps();
  const Span<const std::uint8_t> control = log.control();
  // The events before plan_time: orders, issues, and the columns the labels read.
  std::vector<Index> order_user, before_user, before_benefit;
  std::vector<Timestamp> order_time, before_time;
  std::vector<std::uint8_t> before_type, control_member(n, 0);
  std::vector<Timestamp> first_seen(n, std::numeric_limits<Timestamp>::max());
  for (std::size_t e = 0; e < users.size(); ++e) {
    const auto u = static_cast<std::size_t>(users[e]);
    first_seen[u] = std::min(first_seen[u], times[e]);
    if (control[e] != 0) control_member[u] = 1;
    if (times[e] >= plan_time) continue;
    before_user.push_back(users[e]);
    before_benefit.push_back(benefits[e]);
    before_type.push_back(types[e]);
    before_time.push_back(times[e]);
    if (types[e] == static_cast<std::uint8_t>(EventType::ordered)) {
      order_user.push_back(users[e]);
      order_time.push_back(times[e]);
    }
  }
  const RedemptionLabels labels =
      redemption_labels(before_user, before_benefit, before_type, before_time, validity);
  // The issues whose validity ended by plan_time, with their labels.
  std::vector<Index> issue_user, issue_benefit;
  std::vector<Timestamp> issue_time;
  std::vector<double> issue_redeemed;
  for (std::size_t i = 0; i < labels.event.size(); ++i) {
    const auto e = static_cast<std::size_t>(labels.event[i]);
    const auto b = static_cast<std::size_t>(before_benefit[e]);
    if (!(static_cast<double>(before_time[e]) + validity[b] * 86400.0 <=
          static_cast<double>(plan_time))) {
      continue;
    }
    issue_user.push_back(before_user[e]);
    issue_benefit.push_back(before_benefit[e]);
    issue_time.push_back(before_time[e]);
    issue_redeemed.push_back(labels.label[i]);
  }
  const auto n_control = std::count(control_member.begin(), control_member.end(), 1);
  if (issue_user.empty() || n_control == 0) {
    detail::raise<InputError>(c,
                              ": events: need issues with complete validity windows and "
                              "control members (got ",
                              issue_user.size(), " issues, ", n_control, " control members)");
  }
  if (issue_user.size() > std::numeric_limits<std::uint32_t>::max()) {
    detail::raise<InputError>(c, ": more than 2^32 issues (got ", issue_user.size(), ")");
  }
  // Pseudo-issues of the control members: logged issues' times and benefits, drawn per member.
  std::vector<Index> control_user, control_benefit;
  std::vector<Timestamp> control_time;
  const auto n_issues = static_cast<std::uint32_t>(issue_user.size());
  for (std::size_t u = 0; u < n; ++u) {
    if (control_member[u] == 0) continue;
    Rng rng(params.seed, u);
    for (std::int32_t k = 0; k < params.pseudo_issues; ++k) {
      const std::uint32_t pick = rng.below(n_issues);
      if (issue_time[pick] < first_seen[u]) continue;
      control_user.push_back(static_cast<Index>(u));
      control_benefit.push_back(issue_benefit[pick]);
      control_time.push_back(issue_time[pick]);
    }
  }
  ControlShareInputs in;
  in.n_users = log.n_users();
  in.order_user = order_user;
  in.order_time = order_time;
  in.issue_user = issue_user;
  in.issue_benefit = issue_benefit;
  in.issue_time = issue_time;
  in.issue_redeemed = issue_redeemed;
  in.control_user = control_user;
  in.control_benefit = control_benefit;
  in.control_time = control_time;
  in.benefit_kind = kind_code;
  in.n_kinds = static_cast<std::int32_t>(kinds.size());
  in.validity_days = validity;
  in.plan_time = plan_time;
  in.min_rows = params.min_rows;
  return incremental_share_from_control(in);
}

// --- baselines ---------------------------------------------------------------------------------

PERKREC_INLINE BaselinePlan popularity_plan(const BaselineInputs& in,
                                            Span<const double> popularity) {
  const char* context = "popularity_plan";
  const std::vector<Index> order = detail::baseline_order(context, in);
  if (popularity.size() != static_cast<std::size_t>(in.n_benefits)) {
    detail::raise<InputError>(context, ": popularity has ", popularity.size(),
                              " entries (expected ", in.n_benefits, ")");
  }
  for (std::size_t b = 0; b < popularity.size(); ++b) {
    if (!std::isfinite(popularity[b])) {
      detail::raise<InputError>(context, ": popularity[", b, "] is not finite (got ", popularity[b],
                                ")");
    }
  }
  BaselinePlan plan;
  if (in.n_benefits == 0) return plan;
  std::vector<Index> by_popularity(static_cast<std::size_t>(in.n_benefits));
  std::iota(by_popularity.begin(), by_popularity.end(), Index{0});
  std::stable_sort(by_popularity.begin(), by_popularity.end(), [&](Index a, Index b) {
    return popularity[static_cast<std::size_t>(a)] > popularity[static_cast<std::size_t>(b)];
  });
  const auto n = static_cast<std::size_t>(in.n_users);
  const auto m = static_cast<std::size_t>(in.n_benefits);
  std::vector<double> cost(n), eligible_cost(n);
  auto column_cost = [&](Index b) {
    const double c = in.cost_per_redemption[static_cast<std::size_t>(b)];
    for (std::size_t u = 0; u < n; ++u) {
      cost[u] = in.issue_cost + in.redemption_probability[u * m + static_cast<std::size_t>(b)] * c;
      eligible_cost[u] =
          cost[u] * (detail::baseline_eligible(in, static_cast<Index>(u), b) ? 1.0 : 0.0);
    }
  };
  for (Index b : by_popularity) {
    column_cost(b);
    if (detail::numpy_pairwise_sum(eligible_cost.data(), static_cast<Offset>(n)) <= in.budget) {
      plan.chosen = b;
      for (std::size_t u = 0; u < n; ++u) {
        if (detail::baseline_eligible(in, static_cast<Index>(u), b))
          detail::add_baseline_row(in, plan, static_cast<Index>(u), b, cost[u]);
      }
      return plan;
    }
  }
  const Index b = by_popularity.front();
  plan.chosen = b;
  column_cost(b);
  std::vector<Index> benefit(n);
  for (std::size_t u = 0; u < n; ++u)
    benefit[u] = detail::baseline_eligible(in, static_cast<Index>(u), b) ? b : -1;
  for (Index u : detail::fill_until_budget(order, benefit, cost, in.budget)) {
    detail::add_baseline_row(in, plan, u, b, cost[static_cast<std::size_t>(u)]);
  }
  return plan;
}

PERKREC_INLINE std::vector<Index> default_segment_benefits(
    const Catalog& catalog, Span<const double> popularity,
    const std::vector<std::string>& segment_names, Span<const double> expected_cost,
    double max_cost_per_user) {
  const char* context = "default_segment_benefits";
  const std::size_t nb = static_cast<std::size_t>(catalog.size());
  if (nb == 0) detail::raise<InputError>(context, ": the catalog is empty (got 0 benefits)");
  auto check = [&](Span<const double> v, const char* name) {
    if (v.size() != nb) {
      detail::raise<InputError>(context, ": ", name, " has ", v.size(), " values (expected ", nb,
                                ", one per benefit)");
    }
    for (std::size_t b = 0; b < nb; ++b) {
      if (!std::isfinite(v[b])) {
        detail::raise<InputError>(context, ": ", name, "[", b, "] is not finite (got ", v[b], ")");
      }
    }
  };
  check(popularity, "popularity");
  const bool capped = !expected_cost.empty();
  if (capped) check(expected_cost, "expected_cost");
  if (std::isnan(max_cost_per_user)) {
    detail::raise<InputError>(context, ": max_cost_per_user is NaN");
  }
  std::vector<double> face(nb);
  for (std::size_t b = 0; b < nb; ++b) face[b] = catalog[static_cast<Index>(b)].face_value;
  std::vector<double> scratch = face;
  const double top_quartile = detail::numpy_quantile(scratch, 0.75);
  auto wanted = [&](const std::string& name, std::size_t b) {
    const BenefitKind kind = catalog[static_cast<Index>(b)].kind;
    if (name == "threshold_discount_sensitive") return kind == BenefitKind::threshold_discount;
    if (name == "points_redemption_active") return kind == BenefitKind::points;
    if (name == "high_face_value_seeker") return face[b] >= top_quartile;
    if (name == "dormant") return kind == BenefitKind::discount;
    if (name == "new_member") return kind == BenefitKind::free_shipping;
    return true;
  };
  std::vector<Index> out;
  out.reserve(segment_names.size());
  for (const std::string& name : segment_names) {
    std::vector<std::size_t> candidates;
    for (std::size_t b = 0; b < nb; ++b) {
      if (wanted(name, b)) candidates.push_back(b);
    }
    if (candidates.empty()) {
      for (std::size_t b = 0; b < nb; ++b) candidates.push_back(b);
    }
    if (capped) {
      std::vector<std::size_t> fits;
      for (std::size_t b : candidates) {
        if (expected_cost[b] <= max_cost_per_user) fits.push_back(b);
      }
      if (fits.empty()) {
        std::size_t cheapest = candidates.front();
        for (std::size_t b : candidates) {
          if (expected_cost[b] < expected_cost[cheapest]) cheapest = b;
        }
        out.push_back(static_cast<Index>(cheapest));
        continue;
      }
      candidates = std::move(fits);
    }
    std::size_t best = candidates.front();
    for (std::size_t b : candidates) {
      if (popularity[b] > popularity[best]) best = b;
    }
    out.push_back(static_cast<Index>(best));
  }
  return out;
}

PERKREC_INLINE PlanTruth evaluate_plan_truth(Span<const double> redemption_probability,
                                             Span<const double> incremental_probability,
                                             Index n_users, Index n_benefits,
                                             Span<const double> order_value,
                                             Span<const double> cost_per_redemption,
                                             Span<const Index> users, Span<const Index> benefits,
                                             double issue_cost) {
  const char* c = "Plan.evaluate";
  const auto n = static_cast<std::size_t>(n_users);
  const auto nb = static_cast<std::size_t>(n_benefits);
  auto finite = [&](Span<const double> v, std::size_t size, const char* name) {
    if (v.size() != size) {
      detail::raise<InputError>(c, ": ", name, " has ", v.size(), " values (expected ", size, ")");
    }
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!std::isfinite(v[i])) {
        detail::raise<InputError>(c, ": ", name, "[", i, "] is not finite (got ", v[i], ")");
      }
    }
  };
  finite(redemption_probability, n * nb, "redemption_probability");
  finite(incremental_probability, n * nb, "incremental_probability");
  finite(order_value, n, "order_value");
  finite(cost_per_redemption, nb, "cost_per_redemption");
  if (!std::isfinite(issue_cost)) {
    detail::raise<InputError>(c, ": issue_cost is not finite (got ", issue_cost, ")");
  }
  if (users.size() != benefits.size()) {
    detail::raise<InputError>(c, ": the plan has ", users.size(), " members and ", benefits.size(),
                              " benefits (expected one each per row)");
  }
  for (std::size_t i = 0; i < users.size(); ++i) {
    if (users[i] < 0 || users[i] >= n_users || benefits[i] < 0 || benefits[i] >= n_benefits) {
      detail::raise<InputError>(c, ": plan row ", i, " is (", users[i], ", ", benefits[i],
                                "), the truth is ", n_users, " x ", n_benefits);
    }
  }
  const std::size_t rows = users.size();
  std::vector<double> red(rows), ret(rows), cost(rows);
  std::vector<std::uint8_t> seen(n, 0);
  PlanTruth out;
  for (std::size_t i = 0; i < rows; ++i) {
    const auto u = static_cast<std::size_t>(users[i]);
    const auto b = static_cast<std::size_t>(benefits[i]);
    red[i] = redemption_probability[u * nb + b];
    ret[i] = incremental_probability[u * nb + b] * order_value[u];
    cost[i] = issue_cost + red[i] * cost_per_redemption[b];
    out.members += seen[u] == 0 ? 1 : 0;
    seen[u] = 1;
  }
  const auto r = static_cast<Offset>(rows);
  out.benefits = r;
  out.redemptions = detail::numpy_pairwise_sum(red.data(), r);
  out.incremental_return = detail::numpy_pairwise_sum(ret.data(), r);
  out.cost = detail::numpy_pairwise_sum(cost.data(), r);
  out.return_per_cost =
      out.cost > 0 ? out.incremental_return / out.cost : std::numeric_limits<double>::quiet_NaN();
  return out;
}

PERKREC_INLINE BaselinePlan segment_rules_plan(const BaselineInputs& in,
                                               Span<const std::int32_t> member_segment,
                                               Span<const Index> segment_benefit) {
  const char* context = "segment_rules_plan";
  const std::vector<Index> order = detail::baseline_order(context, in);
  const auto n = static_cast<std::size_t>(in.n_users);
  const auto m = static_cast<std::size_t>(in.n_benefits);
  const auto n_segments = static_cast<std::int64_t>(segment_benefit.size());
  if (member_segment.size() != n) {
    detail::raise<InputError>(context, ": member_segment has ", member_segment.size(),
                              " codes (expected ", n, ")");
  }
  for (std::size_t u = 0; u < n; ++u) {
    if (member_segment[u] < -1 || member_segment[u] >= n_segments) {
      detail::raise<InputError>(context, ": member_segment[", u, "] must be in [-1, ", n_segments,
                                ") (got ", member_segment[u], ")");
    }
  }
  for (std::size_t s = 0; s < segment_benefit.size(); ++s) {
    if (segment_benefit[s] < -1 || segment_benefit[s] >= in.n_benefits) {
      detail::raise<InputError>(context, ": segment_benefit[", s, "] must be in [-1, ",
                                in.n_benefits, ") (got ", segment_benefit[s], ")");
    }
  }
  std::vector<Index> benefit(n, -1);
  std::vector<double> cost(n, 0.0);
  for (std::size_t u = 0; u < n; ++u) {
    const std::int32_t s = member_segment[u];
    Index b = s >= 0 ? segment_benefit[static_cast<std::size_t>(s)] : -1;
    if (b >= 0 && !detail::baseline_eligible(in, static_cast<Index>(u), b)) b = -1;
    benefit[u] = b;
    // The cost of a member without a benefit is never read.
    if (b >= 0) {
      cost[u] = in.issue_cost + in.redemption_probability[u * m + static_cast<std::size_t>(b)] *
                                    in.cost_per_redemption[static_cast<std::size_t>(b)];
    }
  }
  BaselinePlan plan;
  for (Index u : detail::fill_until_budget(order, benefit, cost, in.budget)) {
    detail::add_baseline_row(in, plan, u, benefit[static_cast<std::size_t>(u)],
                             cost[static_cast<std::size_t>(u)]);
  }
  return plan;
}

// --- planner -----------------------------------------------------------------------------------

PERKREC_INLINE const char* to_string(PlannerParams::Method method) {
  switch (method) {
    case PlannerParams::Method::dual:
      return "dual";
    case PlannerParams::Method::greedy:
      return "greedy";
    case PlannerParams::Method::exact:
      return "exact";
  }
  return "unknown";
}

PERKREC_INLINE void PlannerParams::validate() const {
  params::validate_fields(*this, "PlannerParams");
}
PERKREC_INLINE Json PlannerParams::to_json() const { return params::fields_to_json(*this); }
PERKREC_INLINE PlannerParams PlannerParams::from_json(const Json& j) {
  return params::fields_from_json<PlannerParams>(j, "PlannerParams::from_json");
}

PERKREC_INLINE Planner::Planner(PlannerParams params) : params_(std::move(params)) {
  params_.validate();
}

namespace detail {

inline void check_plan_inputs(const PlannerParams& params, const CompiledPolicy& compiled,
                              const Catalog& catalog, const PlanInputs& in) {
  const int sources = (in.redemption_probability.empty() ? 0 : 1) + (in.blend != nullptr ? 1 : 0) +
                      (in.probability ? 1 : 0);
  if (sources != 1) {
    detail::raise<InputError>(
        "Planner::plan: give exactly one of redemption_probability, blend and probability (got ",
        sources, ")");
  }
  if (params.objective == RankerParams::Objective::incremental && in.incremental_share.empty() &&
      !in.incremental_share_scorer) {
    detail::raise<InputError>(
        "Planner::plan: objective 'incremental' needs incremental_share (or "
        "incremental_share_scorer)");
  }
  if (!in.incremental_share.empty() && in.incremental_share_scorer) {
    detail::raise<InputError>(
        "Planner::plan: give incremental_share or incremental_share_scorer, not both");
  }
  if (compiled.masks.n_benefits() != catalog.size()) {
    detail::raise<InputError>("Planner::plan: the compiled policy has ",
                              compiled.masks.n_benefits(), " benefits (expected the catalog's ",
                              catalog.size(), ")");
  }
  if (!std::isnan(in.budget) && !(in.budget >= 0)) {
    detail::raise<ConfigError>("Planner::plan: budget must be >= 0 (got ", in.budget, ")");
  }
  if (in.preference != nullptr && in.preference->fitted() &&
      in.preference->n_benefits() != catalog.size()) {
    detail::raise<InputError>("Planner::plan: the preference model has ",
                              in.preference->n_benefits(), " benefits (expected the catalog's ",
                              catalog.size(), ")");
  }
  if (in.behavior.complete()) {
    // The same checks the reasons' context makes, before any work.
    ExplanationContext probe;
    probe.benefit_ids.resize(static_cast<std::size_t>(catalog.size()));
    try {
      probe.set_behavior(in.behavior);
    } catch (const InputError& e) {
      detail::raise<InputError>("Planner::plan: behavior: ", e.what());
    }
  }
}

}  // namespace detail

PERKREC_INLINE Candidates Planner::rank(const CompiledPolicy& compiled, const Catalog& catalog,
                                        const PlanInputs& in, RankDiagnostics* diagnostics) const {
  detail::check_plan_inputs(params_, compiled, catalog, in);
  std::vector<float> cost_per_redemption(static_cast<std::size_t>(catalog.size()));
  for (Index b = 0; b < catalog.size(); ++b)
    cost_per_redemption[static_cast<std::size_t>(b)] = static_cast<float>(catalog[b].cost);
  const bool incremental = params_.objective == RankerParams::Objective::incremental;
  RankInputs ri;
  ri.redemption_probability = in.redemption_probability;
  if (incremental) ri.incremental_share = in.incremental_share;
  ri.member_value = in.order_value;
  ri.benefit_value = in.benefit_value;
  ri.cost_per_redemption = cost_per_redemption;
  RankerParams rp;
  rp.objective = params_.objective;
  rp.top_k = params_.top_k;
  rp.issue_cost = compiled.issue_cost;
  rp.num_threads = params_.num_threads;
  if (incremental && in.incremental_share_scorer) {
    RankScorers scorers;
    scorers.incremental_share = in.incremental_share_scorer;
    const Index n = compiled.masks.n_users(), m = compiled.masks.n_benefits();
    if (in.blend != nullptr) {
      if (!in.blend->fitted())
        detail::raise<InputError>(
            "Planner::plan: the blend is not fitted (call fit or set_weights)");
      const ScoreBlend* blend = in.blend;
      scorers.redemption_probability = [blend](Span<const Index> u, Span<const Index> b,
                                               Span<float> out) { blend->predict(u, b, out); };
    } else if (in.probability) {
      scorers.redemption_probability = in.probability;
    } else {
      if (in.redemption_probability.size() !=
          static_cast<std::size_t>(n) * static_cast<std::size_t>(m)) {
        detail::raise<InputError>("Planner::plan: redemption_probability has ",
                                  in.redemption_probability.size(),
                                  " entries (expected members x benefits = ", n, " x ", m, ")");
      }
      scorers.redemption_probability =
          dense_scorer(in.redemption_probability, n, m, "redemption_probability");
    }
    return perkrec::rank(scorers, ri, compiled.masks, rp, diagnostics);
  }
  if (in.blend != nullptr) return perkrec::rank(*in.blend, ri, compiled.masks, rp, diagnostics);
  if (in.probability) {
    RankScorers scorers;
    scorers.redemption_probability = in.probability;
    return perkrec::rank(scorers, ri, compiled.masks, rp, diagnostics);
  }
  return perkrec::rank(ri, compiled.masks, rp, diagnostics);
}

PERKREC_INLINE Allocation Planner::allocate(const Candidates& candidates,
                                            const AllocationConstraints& constraints,
                                            const Callbacks& callbacks) const {
  switch (params_.method) {
    case PlannerParams::Method::greedy:
      return allocate_greedy(candidates, constraints, params_.num_threads);
    case PlannerParams::Method::exact:
      return allocate_exact(candidates, constraints, params_.max_nodes);
    case PlannerParams::Method::dual:
      break;
  }
  AllocatorParams ap = params_.allocator;
  ap.num_threads = params_.num_threads;
  return perkrec::allocate(candidates, constraints, ap, callbacks);
}

PERKREC_INLINE void Planner::schedule(const CompiledPolicy& compiled, const Catalog& catalog,
                                      Timestamp plan_time, const PreferenceModel* preference,
                                      PlanResult& out) const {
  const Allocation& a = out.allocation;
  const Candidates& c = out.candidates;
  const std::size_t rows = a.benefit.size();
  if (a.offsets.size() != static_cast<std::size_t>(c.n_users) + 1 || a.candidate.size() != rows ||
      a.offsets.back() != static_cast<std::int64_t>(rows)) {
    detail::raise<InputError>("Planner::schedule: the allocation does not fit the candidates (",
                              a.offsets.size() - 1, " members and ", rows, " rows; candidates for ",
                              c.n_users, " members)");
  }
  out.member.resize(rows);
  out.benefit.assign(a.benefit.begin(), a.benefit.end());
  out.entry.assign(a.candidate.begin(), a.candidate.end());
  out.probability.resize(rows);
  out.value.resize(rows);
  out.cost.resize(rows);
  std::vector<std::int32_t> catalog_validity(rows);
  for (std::size_t u = 0; u + 1 < a.offsets.size(); ++u) {
    for (auto i = a.offsets[u]; i < a.offsets[u + 1]; ++i)
      out.member[static_cast<std::size_t>(i)] = static_cast<Index>(u);
  }
  for (std::size_t i = 0; i < rows; ++i) {
    const auto e = static_cast<std::size_t>(out.entry[i]);
    out.probability[i] =
        c.probability.empty() ? std::numeric_limits<float>::quiet_NaN() : c.probability[e];
    out.value[i] = c.value[e];
    out.cost[i] = c.cost[e];
    catalog_validity[i] = catalog[out.benefit[i]].validity_days;
  }
  out.send_at.resize(rows);
  out.validity_days.resize(rows);
  out.from_model.resize(rows);
  schedule_batch(preference, out.member, plan_time, catalog_validity, nullptr, {}, out.send_at,
                 out.validity_days, out.from_model, params_.schedule, params_.num_threads);
  // Then out of the policy's quiet hours in each member's local time.
  parallel_for(0, static_cast<Offset>(rows), params_.num_threads, [&](Offset i) {
    const auto iz = static_cast<std::size_t>(i);
    out.send_at[iz] = compiled.send_time(out.send_at[iz], out.member[iz]);
  });
}

PERKREC_INLINE void Planner::explain(const CompiledPolicy& compiled, const Catalog& catalog,
                                     const PlanInputs& in, PlanResult& out,
                                     Timestamp plan_time) const {
  ExplanationContext ctx =
      ExplanationContext::make(in.preference, catalog, in.blend, compiled.rule_names);
  if (in.behavior.complete()) ctx.set_behavior(in.behavior);
  const std::size_t rows = out.member.size();
  std::vector<float> contributions;
  if (in.blend != nullptr && rows > 0) {
    contributions.resize(rows * static_cast<std::size_t>(in.blend->n_sources()));
    in.blend->contributions(out.member, out.benefit, contributions);
  }
  std::vector<Index> runner_up, best_ineligible;
  std::vector<std::uint8_t> runner_up_reason;
  std::vector<std::int32_t> best_rule;
  const Allocation& a = out.allocation;
  if (!a.runner_up.empty()) {
    runner_up.resize(rows);
    runner_up_reason.resize(rows);
    for (std::size_t i = 0; i < rows; ++i) {
      const auto u = static_cast<std::size_t>(out.member[i]);
      const std::int64_t r = a.runner_up[u];
      runner_up[i] = r >= 0 ? out.candidates.benefit[static_cast<std::size_t>(r)] : -1;
      runner_up_reason[i] = static_cast<std::uint8_t>(a.runner_up_reason[u]);
    }
  }
  if (!out.diagnostics.best_ineligible.empty()) {
    best_ineligible.resize(rows);
    best_rule.resize(rows);
    for (std::size_t i = 0; i < rows; ++i) {
      const auto u = static_cast<std::size_t>(out.member[i]);
      best_ineligible[i] = out.diagnostics.best_ineligible[u];
      best_rule[i] = out.diagnostics.best_ineligible_rule[u];
    }
  }
  ExplanationBatch batch;
  batch.members = out.member;
  batch.benefits = out.benefit;
  batch.probability = out.probability;
  batch.value = out.value;
  batch.cost = out.cost;
  batch.contributions = contributions;
  batch.runner_up = runner_up;
  batch.runner_up_reason = runner_up_reason;
  batch.best_ineligible = best_ineligible;
  batch.best_ineligible_rule = best_rule;
  batch.time = plan_time;
  out.reasons = explain_batch(ctx, batch, params_.num_threads);
}

PERKREC_INLINE Candidates Planner::rank_user(const CompiledPolicy& compiled, const Catalog& catalog,
                                             Index member, Span<const float> probability,
                                             float share, float member_value,
                                             RankDiagnostics* diagnostics) const {
  return rank_user(compiled, catalog, member, probability, Span<const float>(&share, 1),
                   member_value, diagnostics);
}

PERKREC_INLINE Candidates Planner::rank_user(const CompiledPolicy& compiled, const Catalog& catalog,
                                             Index member, Span<const float> probability,
                                             Span<const float> share, float member_value,
                                             RankDiagnostics* diagnostics) const {
  const Index m = compiled.masks.n_benefits();
  if (member < 0 || member >= compiled.masks.n_users()) {
    detail::raise<InputError>("Planner::rank_user: member out of range (got ", member,
                              ", expected [0, ", compiled.masks.n_users(), "))");
  }
  if (m != catalog.size()) {
    detail::raise<InputError>("Planner::rank_user: the compiled policy has ", m,
                              " benefits (expected the catalog's ", catalog.size(), ")");
  }
  // A one-member view of the compiled masks: the member's row and its excluding rules.
  EligibilityMasks one(1, m);
  std::vector<std::int32_t> rules(static_cast<std::size_t>(m));
  for (Index b = 0; b < m; ++b)
    rules[static_cast<std::size_t>(b)] = compiled.masks.user_rule(member, b);
  one.set_user_mask(0, one.add_mask(rules));
  std::vector<float> cost_per_redemption(static_cast<std::size_t>(m));
  for (Index b = 0; b < m; ++b)
    cost_per_redemption[static_cast<std::size_t>(b)] = static_cast<float>(catalog[b].cost);
  RankInputs in;
  in.redemption_probability = probability;
  in.incremental_share = share;
  in.member_value = Span<const float>(&member_value, 1);
  in.cost_per_redemption = cost_per_redemption;
  RankerParams rp;
  rp.objective = params_.objective;
  rp.top_k = params_.top_k;
  rp.issue_cost = compiled.issue_cost;
  rp.num_threads = 1;
  return perkrec::rank(in, one, rp, diagnostics);
}

PERKREC_INLINE SendSchedule Planner::send_time(const CompiledPolicy& compiled,
                                               const Catalog& catalog,
                                               const PreferenceModel* preference, Index member,
                                               Index benefit, Timestamp time) const {
  if (benefit < 0 || benefit >= catalog.size()) {
    detail::raise<InputError>("Planner::send_time: benefit out of range (got ", benefit,
                              ", expected [0, ", catalog.size(), "))");
  }
  const std::function<Timestamp(Timestamp)> quiet = [&compiled, member](Timestamp t) {
    return compiled.send_time(t, member);
  };
  return perkrec::schedule(preference, member, time, catalog[benefit], quiet, params_.schedule);
}

PERKREC_INLINE PlanResult Planner::plan(const CompiledPolicy& compiled, const Catalog& catalog,
                                        Timestamp plan_time, const PlanInputs& in,
                                        const Callbacks& callbacks) const {
  detail::check_plan_inputs(params_, compiled, catalog, in);
  AllocationConstraints constraints = compiled.constraints;
  if (!std::isnan(in.budget)) constraints.budget = in.budget;
  constraints.validate(compiled.masks.n_users(), compiled.masks.n_benefits());
  auto stop = [&](const char* stage) {
    if (callbacks.should_stop && callbacks.should_stop()) {
      detail::raise<Interrupted>("Planner::plan: interrupted before ", stage);
    }
  };
  PlanResult out;
  out.budget = constraints.budget;
  out.candidates = rank(compiled, catalog, in, &out.diagnostics);
  stop("allocate");
  out.allocation = allocate(out.candidates, constraints, callbacks);
  stop("schedule");
  schedule(compiled, catalog, plan_time, in.preference, out);
  if (params_.explain) {
    stop("explain");
    explain(compiled, catalog, in, out, plan_time);
  }
  return out;
}

}  // namespace perkrec
