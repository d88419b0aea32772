// Definitions for interest.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_set>

#include "perkrec/core/math.hpp"
#include "perkrec/models/interest.hpp"

namespace perkrec {

PERKREC_INLINE void InterestParams::validate() const {
  params::validate_fields(*this, "InterestParams");
  if (level.empty()) detail::raise<ConfigError>("InterestParams: level must name a catalog level");
  std::unordered_set<std::string> seen;
  for (const std::string& a : actions) {
    if (a.empty()) detail::raise<ConfigError>("InterestParams: actions: empty action name");
    if (!seen.insert(a).second)
      detail::raise<ConfigError>("InterestParams: actions: duplicate action '", a, "'");
  }
}
PERKREC_INLINE Json InterestParams::to_json() const { return params::fields_to_json(*this); }
PERKREC_INLINE InterestParams InterestParams::from_json(const Json& j) {
  InterestParams p = params::fields_from_json<InterestParams>(j, "InterestParams::from_json");
  p.validate();
  return p;
}

PERKREC_INLINE InterestModel::InterestModel(InterestParams params) : params_(std::move(params)) {
  params_.validate();
}

namespace detail::interest {

/// The Dirichlet-multinomial log marginal likelihood of every member's activity at
/// concentration alpha (terms constant in alpha dropped).
inline double marginal_ll(double alpha, const std::vector<Offset>& offsets,
                          const std::vector<Index>& value, const std::vector<float>& weight,
                          const std::vector<float>& total, const std::vector<double>& pop,
                          int threads) {
  const auto n = static_cast<Index>(total.size());
  const double lg_alpha = log_gamma(alpha);
  return detail::block_sum(n, 1, threads, [&](Index u, double* acc) {
    const auto row = static_cast<std::size_t>(u);
    if (total[row] <= 0) return;
    double s = lg_alpha - log_gamma(total[row] + alpha);
    for (Offset e = offsets[row]; e < offsets[row + 1]; ++e) {
      const double a = alpha * pop[static_cast<std::size_t>(value[static_cast<std::size_t>(e)])];
      s += log_gamma(weight[static_cast<std::size_t>(e)] + a) - log_gamma(a);
    }
    acc[0] += s;
  })[0];
}

}  // namespace detail::interest

PERKREC_INLINE void InterestModel::fit(const BehaviorLog& behavior, const ItemCatalog& items,
                                       Timestamp cut_time, const Callbacks& callbacks) {
  constexpr const char* kWhere = "InterestModel::fit";
  if (items.size() != behavior.n_items()) {
    detail::raise<InputError>(kWhere, ": the item catalog holds ", items.size(),
                              " items (expected the behaviour log's n_items, ", behavior.n_items(),
                              ")");
  }
  const int level = items.find_level(params_.level);
  if (level < 0) {
    std::string have;
    for (const std::string& name : items.level_names()) have += (have.empty() ? "" : ", ") + name;
    detail::raise<InputError>(
        kWhere, ": level '", params_.level,
        "' is not a level of the item catalog (it has: ", have.empty() ? "none" : have, ")");
  }
  if (cut_time < kMinTimestamp || cut_time > kMaxTimestamp) {
    detail::raise<InputError>(kWhere, ": cut_time out of range (got ", cut_time, ")");
  }
  std::vector<char> counted(behavior.action_names().size(), params_.actions.empty() ? 1 : 0);
  for (const std::string& a : params_.actions) {
    const int code = behavior.find_action(a);
    if (code < 0) {
      detail::raise<InputError>(kWhere, ": action '", a,
                                "' is not in the behaviour log's vocabulary");
    }
    counted[static_cast<std::size_t>(code)] = 1;
  }
  const std::vector<std::int32_t>& codes = items.level_codes(level);
  const std::vector<std::string>& names = items.level_values(level);
  const auto V = static_cast<Index>(names.size());
  const Index n = behavior.n_users();
  const auto nz = static_cast<std::size_t>(n);
  const int threads = resolve_num_threads(params_.num_threads);
  const double decay =
      params_.half_life_days > 0 ? std::log(2.0) / (params_.half_life_days * kSecondsPerDay) : 0.0;
  const auto measure = params_.measure;
  Span<const Index> item = behavior.items();
  Span<const std::uint8_t> action = behavior.actions();
  Span<const Timestamp> time = behavior.timestamps();
  Span<const float> quantity = behavior.quantities();
  Span<const double> amount = behavior.amounts();
  ProgressReporter progress(callbacks, "interest", 2);

  // Per member: (value, activity) cells, sorted by value, merged.
  std::vector<std::vector<std::pair<Index, float>>> cells(nz);
  std::vector<std::int64_t> missing(nz, 0);
  parallel_for(
      0, n, threads,
      [&](Offset uo) {
        const auto u = static_cast<Index>(uo);
        std::vector<std::pair<Index, double>> raw;
        for (Offset e = behavior.user_begin(u), end = behavior.before(u, cut_time); e < end; ++e) {
          const auto k = static_cast<std::size_t>(e);
          if (!counted[action[k]]) continue;
          const std::int32_t v = codes[static_cast<std::size_t>(item[k])];
          if (v < 0) {
            ++missing[static_cast<std::size_t>(u)];
            continue;
          }
          double m = 1.0;
          if (measure == InterestParams::Measure::quantity) m = quantity[k];
          if (measure == InterestParams::Measure::spend) m = amount[k];
          if (m <= 0) continue;
          const double w = m * std::exp(-decay * static_cast<double>(cut_time - time[k]));
          raw.emplace_back(static_cast<Index>(v), w);
        }
        std::sort(raw.begin(), raw.end(),
                  [](const auto& a, const auto& b) { return a.first < b.first; });
        auto& out = cells[static_cast<std::size_t>(u)];
        for (std::size_t i = 0; i < raw.size();) {
          double sum = 0;
          std::size_t j = i;
          for (; j < raw.size() && raw[j].first == raw[i].first; ++j) sum += raw[j].second;
          if (sum > 0) out.emplace_back(raw[i].first, static_cast<float>(sum));
          i = j;
        }
      },
      Schedule::dynamic, 256);
  std::vector<Offset> offsets(nz + 1, 0);
  for (std::size_t u = 0; u < nz; ++u)
    offsets[u + 1] = offsets[u] + static_cast<Offset>(cells[u].size());
  std::vector<Index> value(static_cast<std::size_t>(offsets[nz]));
  std::vector<float> weight(value.size());
  std::vector<float> total(nz, 0.0f);
  parallel_for(0, n, threads, [&](Offset uo) {
    const auto u = static_cast<std::size_t>(uo);
    double sum = 0;
    auto at = static_cast<std::size_t>(offsets[u]);
    for (const auto& [v, w] : cells[u]) {
      value[at] = v;
      weight[at++] = w;
      sum += w;
    }
    total[u] = static_cast<float>(sum);
    std::vector<std::pair<Index, float>>().swap(cells[u]);
  });
  const std::vector<double> pop_sum =
      detail::block_sum(n, static_cast<std::size_t>(V), threads, [&](Index u, double* acc) {
        const auto row = static_cast<std::size_t>(u);
        for (Offset e = offsets[row]; e < offsets[row + 1]; ++e)
          acc[static_cast<std::size_t>(value[static_cast<std::size_t>(e)])] +=
              weight[static_cast<std::size_t>(e)];
      });
  const double grand = std::accumulate(pop_sum.begin(), pop_sum.end(), 0.0);
  if (!(grand > 0)) {
    detail::raise<InputError>(kWhere, ": no counted event with a value at level '", params_.level,
                              "' before the cut time (cut_time ", cut_time, ")");
  }
  // Values no one touched keep a small share (half an average cell's activity) so every
  // population share is positive and every lift finite.
  std::vector<double> pop(static_cast<std::size_t>(V));
  {
    const double eps = 0.5 * grand / static_cast<double>(std::max<std::size_t>(1, value.size()));
    const double denom = grand + eps * static_cast<double>(V);
    for (std::size_t v = 0; v < pop.size(); ++v) pop[v] = (pop_sum[v] + eps) / denom;
  }
  progress.advance(1);
  double alpha = params_.prior_strength;
  if (alpha <= 0) {
    // Golden-section search over log alpha.
    auto f = [&](double log_alpha) {
      return detail::interest::marginal_ll(std::exp(log_alpha), offsets, value, weight, total, pop,
                                           threads);
    };
    const double phi = 0.5 * (std::sqrt(5.0) - 1.0);
    double lo = std::log(1e-2), hi = std::log(1e6);
    double x1 = hi - phi * (hi - lo), x2 = lo + phi * (hi - lo);
    double f1 = f(x1), f2 = f(x2);
    for (int it = 0; it < 60 && hi - lo > 1e-4; ++it) {
      if (f1 < f2) {
        lo = x1;
        x1 = x2;
        f1 = f2;
        x2 = lo + phi * (hi - lo);
        f2 = f(x2);
      } else {
        hi = x2;
        x2 = x1;
        f2 = f1;
        x1 = hi - phi * (hi - lo);
        f1 = f(x1);
      }
    }
    alpha = std::exp(0.5 * (lo + hi));
  }
  progress.advance(1);
  // Commit.
  alpha_ = alpha;
  cut_time_ = cut_time;
  missing_value_events_ = std::accumulate(missing.begin(), missing.end(), std::int64_t{0});
  value_names_ = names;
  population_share_ = std::move(pop);
  total_ = std::move(total);
  offsets_ = std::move(offsets);
  value_ = std::move(value);
  weight_ = std::move(weight);
  user_ids_ = IdMap();
  fitted_ = true;
}

PERKREC_INLINE void InterestModel::require_fitted(const char* method) const {
  if (!fitted_) detail::raise<InputError>("InterestModel::", method, ": the model is not fitted");
}

PERKREC_INLINE void InterestModel::check_user(Index u, const char* method) const {
  if (u < 0 || u >= n_users()) {
    detail::raise<InputError>("InterestModel::", method, ": member ", u, " out of range [0, ",
                              n_users(), ")");
  }
}

PERKREC_INLINE double InterestModel::activity(Index u, Index v) const {
  const auto row = static_cast<std::size_t>(u);
  const auto first = value_.begin() + offsets_[row], last = value_.begin() + offsets_[row + 1];
  const auto it = std::lower_bound(first, last, v);
  return it != last && *it == v ? weight_[static_cast<std::size_t>(it - value_.begin())] : 0.0;
}

PERKREC_INLINE double InterestModel::share(Index u, Index v) const {
  require_fitted("share");
  check_user(u, "share");
  if (v < 0 || v >= n_values()) {
    detail::raise<InputError>("InterestModel::share: value ", v, " out of range [0, ", n_values(),
                              ")");
  }
  return (activity(u, v) + alpha_ * population_share_[static_cast<std::size_t>(v)]) /
         (static_cast<double>(total_[static_cast<std::size_t>(u)]) + alpha_);
}

PERKREC_INLINE double InterestModel::lift(Index u, Index v) const {
  return share(u, v) / population_share_[static_cast<std::size_t>(v)];
}

PERKREC_INLINE std::vector<float> InterestModel::lifts(Span<const Index> users) const {
  require_fitted("lifts");
  for (Index u : users) check_user(u, "lifts");
  const auto V = static_cast<std::size_t>(n_values());
  std::vector<float> out(users.size() * V);
  parallel_for(0, static_cast<Offset>(users.size()), params_.num_threads, [&](Offset i) {
    const auto row = static_cast<std::size_t>(users[static_cast<std::size_t>(i)]);
    const double denom = static_cast<double>(total_[row]) + alpha_;
    float* o = out.data() + static_cast<std::size_t>(i) * V;
    const float untouched = static_cast<float>(alpha_ / denom);
    std::fill(o, o + V, untouched);
    for (Offset e = offsets_[row]; e < offsets_[row + 1]; ++e) {
      const auto v = static_cast<std::size_t>(value_[static_cast<std::size_t>(e)]);
      o[v] = static_cast<float>(
          (weight_[static_cast<std::size_t>(e)] + alpha_ * population_share_[v]) /
          (denom * population_share_[v]));
    }
  });
  return out;
}

PERKREC_INLINE std::vector<double> InterestModel::group_lifts(Span<const std::int32_t> group,
                                                              std::int32_t n_groups) const {
  require_fitted("group_lifts");
  if (static_cast<Index>(group.size()) != n_users()) {
    detail::raise<InputError>("InterestModel::group_lifts: group has ", group.size(),
                              " entries (expected n_users = ", n_users(), ")");
  }
  if (n_groups < 0) {
    detail::raise<InputError>("InterestModel::group_lifts: n_groups must be >= 0 (got ", n_groups,
                              ")");
  }
  for (std::size_t u = 0; u < group.size(); ++u) {
    if (group[u] < -1 || group[u] >= n_groups) {
      detail::raise<InputError>("InterestModel::group_lifts: group of member ", u, " is ", group[u],
                                " (expected -1 or a code in [0, ", n_groups, "))");
    }
  }
  const auto V = static_cast<std::size_t>(n_values());
  const auto G = static_cast<std::size_t>(n_groups);
  // Per group: members, the sum of alpha / (N_u + alpha) (every value's lift floor), and per
  // value the sum of y_uv / ((N_u + alpha) pi_v) over members who touched it.
  const std::vector<double> sums =
      detail::block_sum(n_users(), G * (V + 2), params_.num_threads, [&](Index u, double* acc) {
        const auto row = static_cast<std::size_t>(u);
        const std::int32_t g = group[row];
        if (g < 0) return;
        double* a = acc + static_cast<std::size_t>(g) * (V + 2);
        const double denom = static_cast<double>(total_[row]) + alpha_;
        a[V] += 1.0;
        a[V + 1] += alpha_ / denom;
        for (Offset e = offsets_[row]; e < offsets_[row + 1]; ++e) {
          const auto v = static_cast<std::size_t>(value_[static_cast<std::size_t>(e)]);
          a[v] += weight_[static_cast<std::size_t>(e)] / (denom * population_share_[v]);
        }
      });
  std::vector<double> out(G * V, 1.0);
  for (std::size_t g = 0; g < G; ++g) {
    const double* a = sums.data() + g * (V + 2);
    if (a[V] <= 0) continue;
    for (std::size_t v = 0; v < V; ++v) out[g * V + v] = (a[V + 1] + a[v]) / a[V];
  }
  return out;
}

PERKREC_INLINE GroupInterests InterestModel::group_top(Span<const std::int32_t> group,
                                                       std::int32_t n_groups, int n) const {
  require_fitted("group_top");
  if (n < 1) detail::raise<InputError>("InterestModel::group_top: n must be >= 1 (got ", n, ")");
  const std::vector<double> means = group_lifts(group, n_groups);  // checks group and n_groups
  std::vector<Offset> members(static_cast<std::size_t>(n_groups), 0);
  for (const std::int32_t g : group) {
    if (g >= 0) ++members[static_cast<std::size_t>(g)];
  }
  const auto V = static_cast<std::size_t>(n_values());
  const std::size_t per = std::min<std::size_t>(static_cast<std::size_t>(n), V);
  GroupInterests out;
  std::vector<Index> order(V);
  for (std::int32_t g = 0; g < n_groups; ++g) {
    if (members[static_cast<std::size_t>(g)] == 0) continue;
    const double* mean = means.data() + static_cast<std::size_t>(g) * V;
    std::iota(order.begin(), order.end(), Index{0});
    std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) {
      return mean[static_cast<std::size_t>(a)] > mean[static_cast<std::size_t>(b)];
    });
    for (std::size_t k = 0; k < per; ++k) {
      out.group.push_back(g);
      out.rank.push_back(static_cast<std::int32_t>(k + 1));
      out.value.push_back(order[k]);
      out.mean_lift.push_back(mean[static_cast<std::size_t>(order[k])]);
      out.members.push_back(members[static_cast<std::size_t>(g)]);
    }
  }
  return out;
}

PERKREC_INLINE TopInterests InterestModel::top(Span<const Index> users, int n, double level) const {
  require_fitted("top");
  if (n < 1) detail::raise<InputError>("InterestModel::top: n must be >= 1 (got ", n, ")");
  if (!(level > 0 && level < 1)) {
    detail::raise<InputError>("InterestModel::top: level must be in (0, 1) (got ", level, ")");
  }
  for (Index u : users) check_user(u, "top");
  const auto V = static_cast<std::size_t>(n_values());
  const std::size_t per = std::min<std::size_t>(static_cast<std::size_t>(n), V);
  const std::size_t m = users.size();
  TopInterests out;
  out.user.resize(m * per);
  out.rank.resize(m * per);
  out.value.resize(m * per);
  out.share.resize(m * per);
  out.lift.resize(m * per);
  out.lower.resize(m * per);
  out.upper.resize(m * per);
  out.activity.resize(m * per);
  // Untouched values in order of population share (then code): the list's filler.
  std::vector<Index> by_pop(V);
  std::iota(by_pop.begin(), by_pop.end(), Index{0});
  std::stable_sort(by_pop.begin(), by_pop.end(), [&](Index a, Index b) {
    return population_share_[static_cast<std::size_t>(a)] >
           population_share_[static_cast<std::size_t>(b)];
  });
  const double q_lo = 0.5 * (1.0 - level), q_hi = 0.5 * (1.0 + level);
  const double z_lo = inverse_normal_cdf(q_lo), z_hi = -z_lo;
  parallel_for(
      0, static_cast<Offset>(m), params_.num_threads,
      [&](Offset io) {
        const auto i = static_cast<std::size_t>(io);
        const Index u = users[i];
        const auto row = static_cast<std::size_t>(u);
        const double N = total_[row];
        const double denom = N + alpha_;
        std::vector<std::pair<double, Index>> touched;
        for (Offset e = offsets_[row]; e < offsets_[row + 1]; ++e) {
          const Index v = value_[static_cast<std::size_t>(e)];
          const double pi = population_share_[static_cast<std::size_t>(v)];
          touched.emplace_back((weight_[static_cast<std::size_t>(e)] + alpha_ * pi) / (denom * pi),
                               v);
        }
        std::sort(touched.begin(), touched.end(), [](const auto& a, const auto& b) {
          return a.first != b.first ? a.first > b.first : a.second < b.second;
        });
        std::vector<Index> chosen;
        for (std::size_t k = 0; k < touched.size() && chosen.size() < per; ++k)
          chosen.push_back(touched[k].second);
        for (std::size_t k = 0; k < V && chosen.size() < per; ++k) {
          const Index v = by_pop[k];
          if (activity(u, v) == 0) chosen.push_back(v);
        }
        for (std::size_t k = 0; k < per; ++k) {
          const std::size_t at = i * per + k;
          const Index v = chosen[k];
          const double pi = population_share_[static_cast<std::size_t>(v)];
          const double y = activity(u, v);
          const double a = y + alpha_ * pi, b = N - y + alpha_ * (1.0 - pi);
          out.user[at] = u;
          out.rank[at] = static_cast<std::int32_t>(k + 1);
          out.value[at] = v;
          out.share[at] = static_cast<float>(a / (a + b));
          out.lift[at] = static_cast<float>(a / (a + b) / pi);
          out.lower[at] = static_cast<float>(beta_quantile(a, std::max(b, 1e-12), q_lo, z_lo) / pi);
          out.upper[at] = static_cast<float>(beta_quantile(a, std::max(b, 1e-12), q_hi, z_hi) / pi);
          out.activity[at] = static_cast<float>(y);
        }
      },
      Schedule::dynamic, 64);
  return out;
}

PERKREC_INLINE void InterestModel::set_user_ids(IdMap users) {
  require_fitted("set_user_ids");
  if (users.size() != 0 && users.size() != n_users()) {
    detail::raise<InputError>("InterestModel::set_user_ids: ", users.size(),
                              " ids (expected 0 or n_users = ", n_users(), ")");
  }
  user_ids_ = std::move(users);
}

PERKREC_INLINE void InterestModel::write(ModelWriter& w, const std::string& prefix) const {
  require_fitted("save");
  Json& c = content_section(w, prefix);
  c["params"] = params_.to_json();
  c["n_users"] = n_users();
  c["n_values"] = n_values();
  c["nnz"] = static_cast<std::int64_t>(value_.size());
  c["cut_time"] = cut_time_;
  c["prior_strength"] = alpha_;
  c["missing_value_events"] = missing_value_events_;
  w.add_strings(prefix + "value_names", value_names_);
  w.add(prefix + "population_share", population_share_);
  w.add(prefix + "total", total_);
  w.add(prefix + "offsets", offsets_);
  w.add(prefix + "value", value_);
  w.add(prefix + "weight", weight_);
  user_ids_.write(w, prefix + "user_ids.");
}

PERKREC_INLINE InterestModel InterestModel::read(const ModelReader& r, const std::string& prefix) {
  JsonReader<ModelFormatError> jr(content_section(r, prefix), content_pointer(prefix),
                                  "InterestModel::read");
  Json params_json;
  Index n_users = 0, n_values = 0;
  std::int64_t nnz = 0, missing = 0;
  Timestamp cut_time = 0;
  double alpha = 0;
  jr.require("params", params_json);
  jr.require("n_users", n_users);
  jr.require("n_values", n_values);
  jr.require("nnz", nnz);
  jr.require("cut_time", cut_time);
  jr.require("prior_strength", alpha);
  jr.require("missing_value_events", missing);
  if (prefix.empty()) jr.raw("user_ids.");
  jr.finish();
  if (n_users < 0 || n_values < 1 || nnz < 0 || missing < 0) r.bad_content("bad shape");
  if (!(std::isfinite(alpha) && alpha > 0)) r.invalid("prior_strength must be finite and > 0");
  r.check_count("n_users", n_users);
  r.check_count("nnz", nnz);
  InterestModel m(read_params<InterestParams>(r, params_json));
  m.value_names_ = r.strings(prefix + "value_names");
  if (static_cast<Index>(m.value_names_.size()) != n_values) r.invalid("value_names: wrong count");
  m.population_share_ = r.vector<double>(prefix + "population_share", {n_values});
  double sum = 0;
  for (double p : m.population_share_) {
    if (!(std::isfinite(p) && p > 0 && p <= 1)) r.invalid("population_share must be in (0, 1]");
    sum += p;
  }
  if (std::fabs(sum - 1.0) > 1e-6) r.invalid("population_share must sum to 1");
  m.total_ = r.vector<float>(prefix + "total", {n_users});
  m.offsets_ = r.vector<Offset>(prefix + "offsets", {static_cast<std::int64_t>(n_users) + 1});
  m.value_ = r.vector<Index>(prefix + "value", {nnz});
  m.weight_ = r.vector<float>(prefix + "weight", {nnz});
  if (m.offsets_.front() != 0 || m.offsets_.back() != nnz) r.invalid("offsets: bad ends");
  for (std::size_t u = 0; u < m.total_.size(); ++u) {
    const Offset b = m.offsets_[u], e = m.offsets_[u + 1];
    if (e < b || e > nnz) r.invalid(detail::concat("offsets: not increasing at member ", u));
    double t = 0;
    for (Offset k = b; k < e; ++k) {
      const auto kk = static_cast<std::size_t>(k);
      const Index v = m.value_[kk];
      if (v < 0 || v >= n_values || (k > b && v <= m.value_[kk - 1])) {
        r.invalid(detail::concat("value: entry ", k, " out of range or not increasing"));
      }
      if (!(std::isfinite(m.weight_[kk]) && m.weight_[kk] > 0))
        r.invalid(detail::concat("weight: entry ", k, " must be finite and > 0"));
      t += m.weight_[kk];
    }
    if (!(std::isfinite(m.total_[u]) && std::fabs(m.total_[u] - t) <= 1e-3 * (1.0 + t)))
      r.invalid(detail::concat("total of member ", u, " does not match its cells"));
  }
  m.alpha_ = alpha;
  m.cut_time_ = cut_time;
  m.missing_value_events_ = missing;
  m.fitted_ = true;
  try {
    m.set_user_ids(IdMap::read(r, prefix + "user_ids."));
  } catch (const InputError& e) {
    r.invalid(e.what());
  }
  return m;
}

}  // namespace perkrec
