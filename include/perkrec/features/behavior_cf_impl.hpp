// Definitions for behavior_cf.hpp.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <unordered_set>
#include <utility>

#include "perkrec/core/threading.hpp"
#include "perkrec/features/behavior_cf.hpp"
#include "perkrec/models/als.hpp"

namespace perkrec {

PERKREC_INLINE const std::vector<std::string>& behavior_cf_column_names() {
  static const std::vector<std::string> names = {"cf_dot", "cf_cosine"};
  return names;
}

PERKREC_INLINE void BehaviorCFParams::validate() const {
  const char* ctx = "BehaviorCFParams::validate";
  if (actions.empty()) detail::raise<ConfigError>(ctx, ": actions: expected at least one action");
  std::unordered_set<std::string> seen;
  for (const auto& a : actions) {
    if (a.empty()) detail::raise<ConfigError>(ctx, ": actions: empty action name");
    if (!seen.insert(a).second)
      detail::raise<ConfigError>(ctx, ": actions: '", a, "' is listed twice");
  }
  params::validate_fields(*this, "BehaviorCFParams");
}

PERKREC_INLINE Json BehaviorCFParams::to_json() const { return params::fields_to_json(*this); }

PERKREC_INLINE BehaviorCFParams BehaviorCFParams::from_json(const Json& j) {
  return params::fields_from_json<BehaviorCFParams>(j, "BehaviorCFParams::from_json");
}

namespace detail {

/// 1 for the log's action codes named in `actions`; InputError naming an action it lacks.
inline std::array<std::uint8_t, 256> cf_action_mask(const BehaviorLog& log,
                                                    const std::vector<std::string>& actions,
                                                    const char* ctx) {
  std::array<std::uint8_t, 256> mask{};
  for (const auto& name : actions) mask[static_cast<std::size_t>(log.action_code(name, ctx))] = 1;
  return mask;
}

/// The members x items matrix of the masked events before `as_of` (weights summed per pair).
/// Two passes over the members (count, fill), each member's pairs sorted by item in a
/// per-thread scratch: the result does not depend on the thread count.
inline CsrMatrix<float> cf_matrix(const BehaviorLog& log, Timestamp as_of,
                                  const std::array<std::uint8_t, 256>& mask,
                                  double weight_half_life_days, int num_threads) {
  const int threads = resolve_num_threads(num_threads);
  const Index users = log.n_users();
  const auto items = log.items();
  const auto actions = log.actions();
  const auto times = log.timestamps();
  const double half_life_s = weight_half_life_days * static_cast<double>(kSecondsPerDay);
  std::vector<std::vector<std::pair<Index, double>>> scratch(static_cast<std::size_t>(threads));
  // The member's distinct (item, summed weight) pairs, sorted by item, in `pairs`.
  auto member_pairs = [&](Index u, std::vector<std::pair<Index, double>>& pairs) {
    pairs.clear();
    const Offset end = log.before(u, as_of);
    for (Offset e = log.user_begin(u); e < end; ++e) {
      const auto ei = static_cast<std::size_t>(e);
      if (mask[actions[ei]] == 0) continue;
      const double w =
          half_life_s > 0 ? std::exp2(-static_cast<double>(as_of - times[ei]) / half_life_s) : 1.0;
      pairs.emplace_back(items[ei], w);
    }
    // Stable: equal items keep log order, so the sums are the same on any thread.
    std::stable_sort(pairs.begin(), pairs.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::size_t out = 0;
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      if (out > 0 && pairs[out - 1].first == pairs[i].first) {
        pairs[out - 1].second += pairs[i].second;
      } else {
        pairs[out++] = pairs[i];
      }
    }
    pairs.resize(out);
  };
  CsrMatrix<float> m;
  m.rows = users;
  m.cols = log.n_items();
  m.indptr.assign(static_cast<std::size_t>(users) + 1, 0);
  parallel_for(0, users, threads, [&](Offset u, int thread) {
    auto& pairs = scratch[static_cast<std::size_t>(thread)];
    member_pairs(static_cast<Index>(u), pairs);
    m.indptr[static_cast<std::size_t>(u) + 1] = static_cast<Offset>(pairs.size());
  });
  for (std::size_t u = 0; u < static_cast<std::size_t>(users); ++u) m.indptr[u + 1] += m.indptr[u];
  m.indices.resize(static_cast<std::size_t>(m.indptr.back()));
  m.data.resize(m.indices.size());
  parallel_for(0, users, threads, [&](Offset u, int thread) {
    auto& pairs = scratch[static_cast<std::size_t>(thread)];
    member_pairs(static_cast<Index>(u), pairs);
    auto at = static_cast<std::size_t>(m.indptr[static_cast<std::size_t>(u)]);
    for (const auto& [item, w] : pairs) {
      m.indices[at] = item;
      m.data[at++] = static_cast<float>(w);
    }
  });
  return m;
}

/// Marks the non-zero rows of `t` (items with factors).
inline std::vector<std::uint8_t> nonzero_rows(const FactorTable& t) {
  std::vector<std::uint8_t> out(static_cast<std::size_t>(t.rows), 0);
  for (Index r = 0; r < t.rows; ++r) {
    const float* row = t.row(r);
    out[static_cast<std::size_t>(r)] =
        std::any_of(row, row + t.dim, [](float v) { return v != 0.0f; }) ? 1 : 0;
  }
  return out;
}

}  // namespace detail

PERKREC_INLINE BehaviorCF::BehaviorCF(BehaviorCFParams params) : params_(std::move(params)) {
  params_.validate();
}

PERKREC_INLINE void BehaviorCF::set_num_threads(int num_threads) {
  resolve_num_threads(num_threads);
  params_.num_threads = num_threads;
}

PERKREC_INLINE void BehaviorCF::require_fitted(const char* method) const {
  if (!fitted_) detail::raise<InputError>("BehaviorCF::", method, ": not fitted");
}

PERKREC_INLINE void BehaviorCF::fit(const BehaviorLog& log, Timestamp as_of,
                                    const Callbacks& callbacks) {
  const char* ctx = "BehaviorCF::fit";
  if (as_of < kMinTimestamp || as_of > kMaxTimestamp) {
    detail::raise<InputError>(ctx, ": as_of out of range (got ", as_of, ", expected ",
                              kMinTimestamp, " <= as_of <= ", kMaxTimestamp, ")");
  }
  const auto mask = detail::cf_action_mask(log, params_.actions, ctx);
  const CsrMatrix<float> m =
      detail::cf_matrix(log, as_of, mask, params_.weight_half_life_days, params_.num_threads);
  detail::FactorTable items(log.n_items(), params_.factors);
  if (m.nnz() > 0) {
    ALSParams ap;
    ap.factors = params_.factors;
    ap.regularization = params_.regularization;
    ap.alpha = params_.alpha;
    ap.iterations = params_.iterations;
    ap.cg_steps = params_.cg_steps;
    ap.num_threads = params_.num_threads;
    ap.seed = params_.seed;
    ALS als(ap);
    als.fit(m.view(), callbacks);
    items = als.benefit_factors();
    // Items nobody touched before as_of keep zero rows: ALS only drew them at random.
    std::vector<std::uint8_t> seen(static_cast<std::size_t>(items.rows), 0);
    for (Index i : m.indices) seen[static_cast<std::size_t>(i)] = 1;
    for (Index i = 0; i < items.rows; ++i) {
      if (seen[static_cast<std::size_t>(i)] == 0)
        std::fill(items.row(i), items.row(i) + items.dim, 0.0f);
    }
  }
  has_factors_ = detail::nonzero_rows(items);
  items_ = std::move(items);
  as_of_ = as_of;
  fitted_ = true;
}

PERKREC_INLINE std::vector<double> BehaviorCF::transform_matrix(const BehaviorSamples& samples,
                                                                const BehaviorLog& log,
                                                                const BenefitItems& benefit_items,
                                                                const char* ctx,
                                                                int num_threads) const {
  require_fitted("transform");
  const std::size_t n = samples.user.size();
  if (samples.benefit.size() != n || samples.timestamp.size() != n) {
    detail::raise<InputError>(ctx, ": samples: user, benefit and timestamp have ", n, ", ",
                              samples.benefit.size(), " and ", samples.timestamp.size(),
                              " rows (expected equal lengths)");
  }
  if (log.n_items() != n_items() || benefit_items.n_items() != n_items()) {
    detail::raise<InputError>(ctx, ": item counts differ (fitted ", n_items(), ", behaviour log ",
                              log.n_items(), ", benefit items ", benefit_items.n_items(),
                              "; all must index the same items)");
  }
  const auto mask = detail::cf_action_mask(log, params_.actions, ctx);
  const Index n_benefits = benefit_items.n_benefits();
  detail::check_behavior_sample_indices(samples, n_benefits, ctx);
  const int threads = resolve_num_threads(num_threads < 0 ? params_.num_threads : num_threads);
  const int dim = items_.dim;
  const auto d = static_cast<std::size_t>(dim);
  constexpr std::size_t kCols = 2;
  std::vector<double> out(n * kCols, 0.0);

  // Benefit vectors: the mean of their items' factors (zero without any), and their norms.
  std::vector<double> benefit_vec(static_cast<std::size_t>(n_benefits) * d, 0.0);
  std::vector<double> benefit_norm(static_cast<std::size_t>(n_benefits), 0.0);
  parallel_for(0, n_benefits, threads, [&](Offset b) {
    double* v = benefit_vec.data() + static_cast<std::size_t>(b) * d;
    int count = 0;
    for (Index item : benefit_items.items(static_cast<Index>(b))) {
      if (has_factors_[static_cast<std::size_t>(item)] == 0) continue;
      const float* y = items_.row(item);
      for (std::size_t k = 0; k < d; ++k) v[k] += static_cast<double>(y[k]);
      ++count;
    }
    double norm = 0.0;
    for (std::size_t k = 0; k < d && count > 0; ++k) {
      v[k] /= count;
      norm += v[k] * v[k];
    }
    benefit_norm[static_cast<std::size_t>(b)] = std::sqrt(norm);
  });

  // Samples grouped by member, in time order (ties in input order).
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return samples.user[a] != samples.user[b] ? samples.user[a] < samples.user[b]
                                              : samples.timestamp[a] < samples.timestamp[b];
  });
  std::vector<std::size_t> group_start;
  for (std::size_t i = 0; i < n; ++i) {
    if (i == 0 || samples.user[order[i]] != samples.user[order[i - 1]]) group_start.push_back(i);
  }
  group_start.push_back(n);

  const auto items = log.items();
  const auto actions = log.actions();
  const auto times = log.timestamps();
  const double half_life_s = params_.half_life_days * static_cast<double>(kSecondsPerDay);
  const auto groups = static_cast<Offset>(group_start.size()) - 1;
  std::vector<std::vector<double>> scratch(static_cast<std::size_t>(threads),
                                           std::vector<double>(d));
  parallel_for(
      0, groups, threads,
      [&](Offset g, int thread) {
        const std::size_t first = group_start[static_cast<std::size_t>(g)];
        const std::size_t last = group_start[static_cast<std::size_t>(g) + 1];
        const std::int64_t user = samples.user[order[first]];
        if (user >= log.n_users()) return;  // no behaviour: zeros
        const auto u = static_cast<Index>(user);
        // sum[] and weight hold the decayed sums as of `latest` (the newest event swept).
        std::vector<double>& sum = scratch[static_cast<std::size_t>(thread)];
        std::fill(sum.begin(), sum.end(), 0.0);
        double weight = 0.0;
        Timestamp latest = kNoTime;
        Offset e = log.user_begin(u);
        const Offset end = log.user_end(u);
        for (std::size_t i = first; i < last; ++i) {
          const std::size_t s = order[i];
          const Timestamp t = samples.timestamp[s];
          for (; e < end && times[static_cast<std::size_t>(e)] < t; ++e) {
            const auto ei = static_cast<std::size_t>(e);
            const Index item = items[ei];
            if (mask[actions[ei]] == 0 || has_factors_[static_cast<std::size_t>(item)] == 0)
              continue;
            const double decay =
                weight > 0 ? std::exp2(-static_cast<double>(times[ei] - latest) / half_life_s)
                           : 0.0;
            const float* y = items_.row(item);
            for (std::size_t k = 0; k < d; ++k) sum[k] = sum[k] * decay + static_cast<double>(y[k]);
            weight = weight * decay + 1.0;
            latest = times[ei];
          }
          const auto b = static_cast<std::size_t>(samples.benefit[s]);
          if (weight <= 0 || benefit_norm[b] <= 0) continue;
          const double* v = benefit_vec.data() + b * d;
          double dot = 0.0, norm = 0.0;
          for (std::size_t k = 0; k < d; ++k) {
            const double x = sum[k] / weight;
            dot += x * v[k];
            norm += x * x;
          }
          out[s * kCols] = dot;
          out[s * kCols + 1] = norm > 0 ? dot / (std::sqrt(norm) * benefit_norm[b]) : 0.0;
        }
      },
      Schedule::dynamic, 64);
  return out;
}

PERKREC_INLINE BehaviorTable BehaviorCF::transform(const BehaviorSamples& samples,
                                                   const BehaviorLog& log,
                                                   const BenefitItems& benefit_items) const {
  const std::vector<double> m = transform_matrix(samples, log, benefit_items);
  const auto& names = behavior_cf_column_names();
  BehaviorTable t;
  t.rows = static_cast<Offset>(samples.user.size());
  t.names = names;
  t.columns.assign(names.size(), std::vector<double>(samples.user.size()));
  for (std::size_t r = 0; r < samples.user.size(); ++r) {
    for (std::size_t c = 0; c < names.size(); ++c) t.columns[c][r] = m[r * names.size() + c];
  }
  return t;
}

PERKREC_INLINE bool BehaviorCF::operator==(const BehaviorCF& o) const {
  return fitted_ == o.fitted_ && as_of_ == o.as_of_ && params_.to_json() == o.params_.to_json() &&
         items_.rows == o.items_.rows && items_.dim == o.items_.dim &&
         items_.values == o.items_.values;
}

// ---- persistence ---------------------------------------------------------------------------

PERKREC_INLINE Json BehaviorCF::to_json() const {
  require_fitted("to_json");
  Json out;
  out["params"] = params_.to_json();
  out["as_of"] = as_of_;
  out["n_items"] = n_items();
  Json factors = Json::array();
  for (float v : items_.values) factors.push_back(detail::json_float(v));
  out["factors"] = std::move(factors);
  return out;
}

namespace detail {
/// Checks a fitted state read from a file: as_of in range, factors finite and bounded (so no
/// dot product of two rows overflows); ModelFormatError through `fail`.
template <class Fail>
void check_cf_state(Timestamp as_of, const FactorTable& t, Fail&& fail) {
  if (as_of < kMinTimestamp || as_of > kMaxTimestamp) fail("as_of", "out of range");
  constexpr float kMaxMagnitude = 1e15f;
  for (float v : t.values) {
    if (!std::isfinite(v) || std::fabs(v) > kMaxMagnitude)
      fail("factors", "expected finite values with |value| <= 1e15");
  }
}
}  // namespace detail

PERKREC_INLINE BehaviorCF BehaviorCF::from_json(const Json& value, const std::string& pointer) {
  const char* ctx = "BehaviorCF::from_json";
  JsonReader<ModelFormatError> r(value, pointer, ctx);
  Json params_json;
  Timestamp as_of = kNoTime;
  Index n = 0;
  std::vector<double> factors;
  r.require("params", params_json);
  r.require("as_of", as_of);
  r.require("n_items", n);
  r.require("factors", factors);
  r.finish();
  BehaviorCFParams params;
  try {
    params = BehaviorCFParams::from_json(params_json);  // validates
  } catch (const ConfigError& e) {
    r.fail("params", e.what());
  }
  if (n < 0 ||
      factors.size() != static_cast<std::size_t>(n) * static_cast<std::size_t>(params.factors))
    r.fail("factors", "expected n_items x factors values");
  BehaviorCF cf(params);
  cf.items_.rows = n;
  cf.items_.dim = params.factors;
  cf.items_.values.resize(factors.size());
  // Written as the shortest decimal of each float (detail::json_float): reads back exactly.
  for (std::size_t i = 0; i < factors.size(); ++i)
    cf.items_.values[i] = static_cast<float>(factors[i]);
  detail::check_cf_state(as_of, cf.items_,
                         [&](const char* key, const char* what) { r.fail(key, what); });
  cf.as_of_ = as_of;
  cf.has_factors_ = detail::nonzero_rows(cf.items_);
  cf.fitted_ = true;
  return cf;
}

PERKREC_INLINE void BehaviorCF::write(ModelWriter& w, const std::string& prefix) const {
  require_fitted("save");
  Json& c = content_section(w, prefix);
  c["params"] = params_.to_json();
  c["as_of"] = as_of_;
  c["n_items"] = n_items();
  detail::write_table(w, prefix + "item_factors", items_);
}

PERKREC_INLINE BehaviorCF BehaviorCF::read(const ModelReader& r, const std::string& prefix) {
  JsonReader<ModelFormatError> jr(content_section(r, prefix), content_pointer(prefix),
                                  "BehaviorCF::read");
  Json params_json;
  Timestamp as_of = kNoTime;
  Index n = 0;
  jr.require("params", params_json);
  jr.require("as_of", as_of);
  jr.require("n_items", n);
  jr.finish();
  if (n < 0) r.bad_content("negative n_items");
  const BehaviorCFParams params = read_params<BehaviorCFParams>(r, params_json);
  BehaviorCF cf(params);
  cf.items_ = detail::read_table(r, prefix + "item_factors", n, params.factors);
  detail::check_cf_state(as_of, cf.items_, [&](const char* key, const char* what) {
    r.bad_content(detail::concat(key, ": ", what));
  });
  cf.as_of_ = as_of;
  cf.has_factors_ = detail::nonzero_rows(cf.items_);
  cf.fitted_ = true;
  return cf;
}

}  // namespace perkrec
