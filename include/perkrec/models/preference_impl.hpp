// Definitions for preference.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

#include "perkrec/core/error.hpp"
#include "perkrec/core/math.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/models/preference.hpp"

namespace perkrec {

PERKREC_INLINE void PreferenceParams::validate() const {
  params::validate_fields(*this, "PreferenceParams");
}
PERKREC_INLINE Json PreferenceParams::to_json() const { return params::fields_to_json(*this); }
PERKREC_INLINE PreferenceParams PreferenceParams::from_json(const Json& j) {
  return params::fields_from_json<PreferenceParams>(j, "PreferenceParams::from_json");
}

PERKREC_INLINE PreferenceModel::PreferenceModel(PreferenceParams params)
    : params_(std::move(params)) {
  params_.validate();
}

namespace detail::pref {

constexpr double kDay = static_cast<double>(kSecondsPerDay);
// Bounds of the Beta strength behind an interval's individual spread (within_class_variance).
constexpr double kMinSpreadStrength = 0.5;
constexpr double kMaxSpreadStrength = 1e6;
using detail::block_sum;

inline double beta_binomial_ll(double k, double n, double a, double b) {
  return log_gamma(k + a) + log_gamma(n - k + b) - log_gamma(n + a + b) - log_gamma(a) -
         log_gamma(b) + log_gamma(a + b);
}

// The half-width of a central interval at `level` in posterior sds: the quantile of a
// Student t with 6 degrees of freedom scaled to unit variance. Heavier tails than the normal:
// how far members stray from their class varies more than one spread per class and dimension
// says, so the errors are a scale mixture (a normal interval with the right tails is too wide
// in the middle). t6's distribution function in closed form, inverted by bisection.
inline double interval_quantile(double level) {
  constexpr double kDof = 6.0;
  const double target = 0.5 * (1.0 + level);
  const auto cdf = [&](double t) {
    const double angle = std::atan(t / std::sqrt(kDof));
    const double c2 = std::cos(angle) * std::cos(angle);
    return 0.5 + 0.5 * std::sin(angle) * (1.0 + 0.5 * c2 + 0.375 * c2 * c2);
  };
  double lo = 0.0, hi = 1e4;
  for (int i = 0; i < 200 && hi - lo > 1e-12; ++i) {
    const double mid = 0.5 * (lo + hi);
    (cdf(mid) < target ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi) * std::sqrt((kDof - 2.0) / kDof);
}

/// Best send slot from slot counts and the population profile (see the header).
inline int best_slot(const double* posterior) {
  double day_mass[7] = {};
  double hour_mass[24] = {};
  for (int s = 0; s < 168; ++s) {
    day_mass[s / 24] += posterior[s];
    hour_mass[s % 24] += posterior[s];
  }
  int best_day = 0;
  for (int d = 1; d < 7; ++d) {
    if (day_mass[d] > day_mass[best_day]) best_day = d;
  }
  static constexpr double kKernel[5] = {1, 2, 3, 2, 1};
  int best_hour = 0;
  double best = -1;
  for (int h = 0; h < 24; ++h) {
    double v = 0;
    for (int o = -2; o <= 2; ++o) v += kKernel[o + 2] * hour_mass[(h + o + 24) % 24];
    if (v > best) {
      best = v;
      best_hour = h;
    }
  }
  return best_day * 24 + best_hour;
}

/// Mean residual life of a Gamma(shape, scale) renewal after `elapsed` without an event.
inline double gamma_residual(double shape, double scale, double elapsed) {
  const double q_k = 1.0 - regularized_gamma_p(shape, elapsed / scale);
  if (q_k < 1e-12) return scale;
  const double q_k1 = 1.0 - regularized_gamma_p(shape + 1.0, elapsed / scale);
  return std::max(0.0, (shape * scale * q_k1 - elapsed * q_k) / q_k);
}

// Rows of `users` whose time column (see PreferenceParams::user_time_columns) lies at or
// after `cut` become -1 in `rows` (the member joined after the cut); returns how many.
inline Index drop_joined_after_cut(const UserTable& users, std::vector<Index>& rows, Timestamp cut,
                                   const std::vector<std::string>& time_columns,
                                   const char* method) {
  Index dropped = 0;
  for (const std::string& col : time_columns) {
    if (users.find(col) < 0) continue;
    if (users.type(col) != UserTable::ColumnType::numeric) {
      detail::raise<InputError>(method, ": time column '", col,
                                "' is not numeric (expected epoch seconds)");
    }
    const std::vector<double>& v = users.numeric(col);
    for (Index& row : rows) {
      if (row >= 0 && std::isfinite(v[static_cast<std::size_t>(row)]) &&
          v[static_cast<std::size_t>(row)] >= static_cast<double>(cut)) {
        row = -1;
        ++dropped;
      }
    }
  }
  return dropped;
}

// Table row of every member of `log` usable as of `cut` (-1 = none), matched by id (by
// position when the log has no ids); fills `report`.
inline std::vector<Index> align_member_rows(const UserTable& users, const EventLog& log,
                                            Timestamp cut,
                                            const std::vector<std::string>& time_columns,
                                            UserTableReport& report, const char* method) {
  const Index n = log.n_users();
  std::vector<Index> rows(static_cast<std::size_t>(n), -1);
  report = UserTableReport{};
  report.rows = users.size();
  const IdMap& log_ids = log.user_ids();
  const IdMap& table_ids = users.users();
  const bool by_id = log_ids.size() > 0;
  for (Index i = 0; i < users.size(); ++i) {
    Index member = -1;
    if (!by_id) {
      member = i < n ? i : -1;
    } else if (table_ids.key_type() == IdMap::KeyType::integer) {
      member = log_ids.find(table_ids.integers()[static_cast<std::size_t>(i)]);
    } else if (table_ids.key_type() == IdMap::KeyType::string) {
      member = log_ids.find(std::string_view(table_ids.strings()[static_cast<std::size_t>(i)]));
    }
    if (member < 0) {
      ++report.unknown_to_log;
      continue;
    }
    rows[static_cast<std::size_t>(member)] = i;
  }
  report.joined_after_cut = drop_joined_after_cut(users, rows, cut, time_columns, method);
  for (Index row : rows) report.matched += row >= 0 ? 1 : 0;
  report.without_row = n - report.matched;
  if (report.matched == 0) {
    detail::raise<InputError>(
        method, ": no row of the users table matches a member of the log known at the cut (got ",
        report.rows, " rows: ", report.unknown_to_log, " unknown to the log, ",
        report.joined_after_cut, " joined after the cut)");
  }
  return rows;
}

// Covariate matrix [rows.size() x (1 + P)], intercept first, of the table rows `rows` (-1 =
// every attribute missing). Time columns become days before `cut`. When `fit` is true, fills
// names/center/scale from the used rows (a numeric column with missing values also gets a
// "<column>:missing" indicator) and counts the missing values; else uses the given encoding.
inline std::vector<double> encode_covariates(const UserTable& users, const std::vector<Index>& rows,
                                             Timestamp cut,
                                             const std::vector<std::string>& time_columns, bool fit,
                                             std::vector<std::string>& names,
                                             std::vector<double>& center,
                                             std::vector<double>& scale, Index* missing_values,
                                             const char* method) {
  const std::size_t nz = rows.size();
  const auto is_time = [&](const std::string& col) {
    return std::find(time_columns.begin(), time_columns.end(), col) != time_columns.end();
  };
  // The numeric value of column `col` for output row r as of the cut; NaN = missing.
  const auto numeric_values = [&](const std::string& col) {
    const std::vector<double>& v = users.numeric(col);
    const bool time = is_time(col);
    std::vector<double> out(nz, std::numeric_limits<double>::quiet_NaN());
    for (std::size_t r = 0; r < nz; ++r) {
      if (rows[r] < 0) continue;
      const double x = v[static_cast<std::size_t>(rows[r])];
      out[r] = time ? (static_cast<double>(cut) - x) / 86400.0 : x;
    }
    return out;
  };
  if (fit) {
    names.clear();
    center.clear();
    scale.clear();
    Index missing = 0;
    for (const std::string& col : users.names()) {
      if (users.type(col) == UserTable::ColumnType::numeric) {
        const std::vector<double> v = numeric_values(col);
        double mean = 0, sq = 0;
        std::size_t seen = 0;
        bool any_missing = false;
        for (std::size_t r = 0; r < nz; ++r) {
          if (std::isnan(v[r])) {
            any_missing = true;
            missing += rows[r] >= 0 ? 1 : 0;
          } else {
            mean += v[r];
            ++seen;
          }
        }
        if (seen == 0) continue;  // nothing known: the column carries no information
        mean /= static_cast<double>(seen);
        for (double x : v) {
          if (!std::isnan(x)) sq += (x - mean) * (x - mean);
        }
        const double sd = seen > 1 ? std::sqrt(sq / static_cast<double>(seen - 1)) : 0.0;
        names.push_back(col);
        center.push_back(mean);
        scale.push_back(sd > 0 ? sd : 1.0);
        if (any_missing) {
          names.push_back(col + ":missing");
          center.push_back(0.0);
          scale.push_back(1.0);
        }
      } else {
        const std::vector<std::int32_t>& codes = users.codes(col);
        for (Index row : rows)
          missing += row >= 0 && codes[static_cast<std::size_t>(row)] < 0 ? 1 : 0;
        for (const std::string& cat : users.categories(col)) {
          names.push_back(col + "=" + cat);
          center.push_back(0.0);
          scale.push_back(1.0);
        }
      }
    }
    if (missing_values != nullptr) *missing_values = missing;
  }
  const std::size_t P = names.size() + 1;
  std::vector<double> x(nz * P, 0.0);
  for (std::size_t u = 0; u < nz; ++u) x[u * P] = 1.0;
  const std::string kMissing = ":missing";
  for (std::size_t j = 0; j < names.size(); ++j) {
    const std::string& name = names[j];
    const bool indicator =
        users.find(name) < 0 && name.size() > kMissing.size() &&
        name.compare(name.size() - kMissing.size(), kMissing.size(), kMissing) == 0;
    const auto eq = name.find('=');
    const std::string col = users.find(name) >= 0 ? name
                            : indicator           ? name.substr(0, name.size() - kMissing.size())
                            : eq == std::string::npos ? name
                                                      : name.substr(0, eq);
    if (users.find(col) < 0)
      detail::raise<InputError>(method, ": users table lacks column '", col, "' used in fit");
    if (col == name || indicator) {
      if (users.type(col) != UserTable::ColumnType::numeric) {
        detail::raise<InputError>(method, ": column '", col,
                                  "' is not numeric (expected numeric as in fit)");
      }
      const std::vector<double> v = numeric_values(col);
      for (std::size_t u = 0; u < nz; ++u) {
        const bool absent = std::isnan(v[u]);
        if (indicator) {
          x[u * P + 1 + j] = absent ? 1.0 : 0.0;
        } else if (!absent) {
          x[u * P + 1 + j] = (v[u] - center[j]) / scale[j];
        }
      }
    } else {
      if (users.type(col) != UserTable::ColumnType::categorical) {
        detail::raise<InputError>(method, ": column '", col,
                                  "' is not categorical (expected categorical as in fit)");
      }
      const std::vector<std::string>& cats = users.categories(col);
      const std::string cat = name.substr(eq + 1);
      const auto it = std::find(cats.begin(), cats.end(), cat);
      if (it == cats.end()) continue;
      const auto code = static_cast<std::int32_t>(it - cats.begin());
      const std::vector<std::int32_t>& codes = users.codes(col);
      for (std::size_t u = 0; u < nz; ++u) {
        x[u * P + 1 + j] =
            rows[u] >= 0 && codes[static_cast<std::size_t>(rows[u])] == code ? 1.0 : 0.0;
      }
    }
  }
  return x;
}

// Row-wise softmax of W x into out (K entries, log-probabilities when `log_out`).
inline void class_softmax(const double* w, const double* x, std::size_t K, std::size_t P,
                          double* out, bool log_out) {
  double best = -std::numeric_limits<double>::infinity();
  for (std::size_t c = 0; c < K; ++c) {
    double s = 0;
    for (std::size_t j = 0; j < P; ++j) s += w[c * P + j] * x[j];
    out[c] = s;
    best = std::max(best, s);
  }
  double z = 0;
  for (std::size_t c = 0; c < K; ++c) z += std::exp(out[c] - best);
  const double lz = best + std::log(z);
  for (std::size_t c = 0; c < K; ++c) out[c] = log_out ? out[c] - lz : std::exp(out[c] - lz);
}

// Solves A y = b in place for a small symmetric positive definite A (P x P, Cholesky).
inline void spd_solve(std::vector<double> A, std::size_t P, double* b) {
  for (std::size_t j = 0; j < P; ++j) {
    double d = A[j * P + j];
    for (std::size_t k = 0; k < j; ++k) d -= A[j * P + k] * A[j * P + k];
    d = std::sqrt(std::max(d, 1e-12));
    A[j * P + j] = d;
    for (std::size_t i = j + 1; i < P; ++i) {
      double v = A[i * P + j];
      for (std::size_t k = 0; k < j; ++k) v -= A[i * P + k] * A[j * P + k];
      A[i * P + j] = v / d;
    }
  }
  for (std::size_t i = 0; i < P; ++i) {
    double v = b[i];
    for (std::size_t k = 0; k < i; ++k) v -= A[i * P + k] * b[k];
    b[i] = v / A[i * P + i];
  }
  for (std::size_t ii = P; ii-- > 0;) {
    double v = b[ii];
    for (std::size_t k = ii + 1; k < P; ++k) v -= A[k * P + ii] * b[k];
    b[ii] = v / A[ii * P + ii];
  }
}

}  // namespace detail::pref

PERKREC_INLINE void PreferenceModel::fit(const EventLog& log, const Catalog& catalog,
                                         Timestamp cut_time, const Callbacks& callbacks) {
  fit_impl(log, catalog, cut_time, nullptr, callbacks);
}

PERKREC_INLINE void PreferenceModel::fit(const EventLog& log, const Catalog& catalog,
                                         Timestamp cut_time, const UserTable& users,
                                         const Callbacks& callbacks) {
  fit_impl(log, catalog, cut_time, &users, callbacks);
}

PERKREC_INLINE std::vector<double> PreferenceModel::class_prior(const UserTable& users) const {
  require_fitted("class_prior");
  const auto K = static_cast<std::size_t>(n_classes_);
  const Index n = users.size();
  std::vector<double> out(static_cast<std::size_t>(n) * K);
  if (covariate_weight_.empty()) {
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = class_weight_[i % K];
    return out;
  }
  std::vector<std::string> names = covariate_names_;
  std::vector<double> center = covariate_center_, scale = covariate_scale_;
  std::vector<Index> rows(static_cast<std::size_t>(n));
  std::iota(rows.begin(), rows.end(), Index{0});
  detail::pref::drop_joined_after_cut(users, rows, cut_time_, params_.user_time_columns,
                                      "PreferenceModel::class_prior");
  const std::vector<double> x = detail::pref::encode_covariates(
      users, rows, cut_time_, params_.user_time_columns, false, names, center, scale, nullptr,
      "PreferenceModel::class_prior");
  const std::size_t P = names.size() + 1;
  for (std::size_t u = 0; u < static_cast<std::size_t>(n); ++u) {
    detail::pref::class_softmax(covariate_weight_.data(), x.data() + u * P, K, P,
                                out.data() + u * K, false);
  }
  return out;
}

namespace detail::pref {

// The stages of PreferenceModel::fit_impl, in order (issue 17): benefit_layout, count_log,
// population_rates, fit_classes (EM), prior_means, prior_strength (empirical Bayes),
// shrink (the posterior), fit_timing and member_features.

// Benefit -> its dimensions (CSR) and its channel (-1 = none) among the channel dimensions
// [c_begin, c_begin + C).
struct BenefitLayout {
  std::vector<std::int32_t> dim_offsets{0}, dim_list;
  std::vector<int> benefit_channel;
  int c_begin = 0, C = 0;
};

inline BenefitLayout benefit_layout(const Catalog& catalog, const BenefitDimensions& dims) {
  BenefitLayout out;
  const Index nb = catalog.size();
  out.c_begin = dims.group_begin(BenefitDimensions::Group::channel);
  out.C = dims.group_end(BenefitDimensions::Group::channel) - out.c_begin;
  const int c_begin = out.c_begin, C = out.C;
  std::vector<std::int32_t>& dim_offsets = out.dim_offsets;
  std::vector<std::int32_t>& dim_list = out.dim_list;
  out.benefit_channel.assign(static_cast<std::size_t>(nb), -1);
  std::vector<int>& benefit_channel = out.benefit_channel;
  {
    std::vector<int> active;
    for (Index b = 0; b < nb; ++b) {
      active.clear();
      dims.encode(catalog[b], active);
      for (int d : active) {
        dim_list.push_back(d);
        if (d >= c_begin && d < c_begin + C)
          benefit_channel[static_cast<std::size_t>(b)] = d - c_begin;
      }
      dim_offsets.push_back(static_cast<std::int32_t>(dim_list.size()));
    }
  }
  return out;
}

// Per member, from the events before the cut.
struct MemberSummary {
  double issued = 0, claimed = 0, issued_w = 0, redeemed = 0;
  double orders = 0, orders_90d = 0;
  Timestamp first_event = kNoTime, first_order = kNoTime, last_order = kNoTime;
  double gap_ss = 0;  // sum of squared gaps (days)
  // The same over orders without a redemption at their instant: the member's own rhythm,
  // without the extra purchases benefits trigger (the repurchase cycle).
  double cycle_orders = 0, cycle_gap_ss = 0;
  Timestamp cycle_first = kNoTime, cycle_last = kNoTime;
};

// Stage 1: one pass over the log — decayed counts per dimension and channel, order
// summaries, order hour-of-week slots, and (benefit, trials, responses) pairs per member.
struct LogCounts {
  std::vector<float> issued, claimed;              // n x D, decayed
  std::vector<float> ch_issued, ch_viewed;         // n x C, decayed
  std::vector<MemberSummary> summary;              // n
  std::vector<Offset> slot_offsets, pair_offsets;  // n + 1 each
  std::vector<std::uint8_t> slots;                 // hour-of-week of each order
  std::vector<Index> pair_benefit;
  std::vector<float> pair_trials, pair_responses;
  std::vector<std::int64_t> benefit_issued, benefit_claimed;  // exact, per benefit
  std::int64_t total_viewed = 0;
};

inline LogCounts count_log(const EventLog& log, Timestamp cut_time, EventType response_type,
                           double decay, const BenefitLayout& layout, Index nb, std::size_t Dz,
                           int threads) {
  LogCounts out;
  const Index n = log.n_users();
  const auto nz = static_cast<std::size_t>(n);
  const auto Cz = static_cast<std::size_t>(std::max(layout.C, 0));
  std::vector<float>& issued = out.issued;
  std::vector<float>& claimed = out.claimed;
  std::vector<float>& ch_issued = out.ch_issued;
  std::vector<float>& ch_viewed = out.ch_viewed;
  std::vector<MemberSummary>& summary = out.summary;
  std::vector<Offset>& slot_offsets = out.slot_offsets;
  std::vector<Offset>& pair_offsets = out.pair_offsets;
  std::vector<std::uint8_t>& slots = out.slots;
  std::vector<Index>& pair_benefit = out.pair_benefit;
  std::vector<float>& pair_trials = out.pair_trials;
  std::vector<float>& pair_responses = out.pair_responses;
  std::vector<std::int64_t>& benefit_issued = out.benefit_issued;
  std::vector<std::int64_t>& benefit_claimed = out.benefit_claimed;
  std::int64_t& total_viewed = out.total_viewed;
  const std::vector<std::int32_t>& dim_offsets = layout.dim_offsets;
  const std::vector<std::int32_t>& dim_list = layout.dim_list;
  const std::vector<int>& benefit_channel = layout.benefit_channel;
  issued.assign(nz * Dz, 0.0f);
  claimed.assign(nz * Dz, 0.0f);
  ch_issued.assign(nz * Cz, 0.0f);
  ch_viewed.assign(nz * Cz, 0.0f);
  summary.resize(nz);
  slot_offsets.assign(nz + 1, 0);
  pair_offsets.assign(nz + 1, 0);  // member -> (benefit, trials, responses)
  const int slices = std::max(1, threads * 4);
  std::vector<std::vector<std::int64_t>> benefit_counts(static_cast<std::size_t>(slices));
  const Span<const Index> ev_benefit = log.benefits();
  const Span<const std::uint8_t> ev_type = log.types();
  const Span<const Timestamp> ev_time = log.timestamps();
  // Members are processed in `slices` fixed ranges so the integer benefit totals are summed
  // per range (exact, so the order does not matter anyway).
  parallel_for(0, slices, threads, [&](Offset so) {
    auto& bc = benefit_counts[static_cast<std::size_t>(so)];
    bc.assign(static_cast<std::size_t>(nb) * 3, 0);
    std::vector<Index> stamp(static_cast<std::size_t>(nb), -1);
    const Index u0 = static_cast<Index>(static_cast<std::int64_t>(n) * so / slices);
    const Index u1 = static_cast<Index>(static_cast<std::int64_t>(n) * (so + 1) / slices);
    for (Index u = u0; u < u1; ++u) {
      const auto row = static_cast<std::size_t>(u);
      float* iu = issued.data() + row * Dz;
      float* ku = claimed.data() + row * Dz;
      float* ci = ch_issued.data() + row * Cz;
      float* cv = ch_viewed.data() + row * Cz;
      MemberSummary& s = summary[row];
      Offset orders = 0, pairs = 0;
      for (Offset e = log.user_begin(u); e < log.user_end(u); ++e) {
        const Timestamp t = ev_time[static_cast<std::size_t>(e)];
        if (t >= cut_time) break;
        if (s.first_event == kNoTime) s.first_event = t;
        const auto type = static_cast<EventType>(ev_type[static_cast<std::size_t>(e)]);
        const Index b = ev_benefit[static_cast<std::size_t>(e)];
        const auto w = static_cast<float>(std::exp(-decay * static_cast<double>(cut_time - t)));
        const bool response = type == response_type;
        if (b >= 0 && (type == EventType::issued || type == EventType::viewed || response) &&
            stamp[static_cast<std::size_t>(b)] != u) {
          stamp[static_cast<std::size_t>(b)] = u;
          ++pairs;
        }
        if (type == EventType::viewed) bc[static_cast<std::size_t>(b) * 3 + 2] += 1;
        if (type == EventType::issued || response) {
          float* target = type == EventType::issued ? iu : ku;
          for (auto k = dim_offsets[static_cast<std::size_t>(b)];
               k < dim_offsets[static_cast<std::size_t>(b) + 1]; ++k) {
            target[dim_list[static_cast<std::size_t>(k)]] += w;
          }
          bc[static_cast<std::size_t>(b) * 3 + (response ? 1 : 0)] += 1;
          if (type == EventType::issued) {
            s.issued += 1;
            s.issued_w += w;
          } else {
            s.claimed += 1;
          }
        }
        if (type == EventType::redeemed) s.redeemed += 1;
        const int ch = b >= 0 ? benefit_channel[static_cast<std::size_t>(b)] : -1;
        if (ch >= 0 && type == EventType::issued) ci[ch] += w;
        if (ch >= 0 && type == EventType::viewed) cv[ch] += w;
        if (type == EventType::ordered) {
          bool with_benefit = false;
          for (Offset f = e;
               f-- > log.user_begin(u) && ev_time[static_cast<std::size_t>(f)] == t;) {
            with_benefit |= ev_type[static_cast<std::size_t>(f)] ==
                            static_cast<std::uint8_t>(EventType::redeemed);
          }
          for (Offset f = e + 1; f < log.user_end(u) && ev_time[static_cast<std::size_t>(f)] == t;
               ++f) {
            with_benefit |= ev_type[static_cast<std::size_t>(f)] ==
                            static_cast<std::uint8_t>(EventType::redeemed);
          }
          if (!with_benefit) {
            if (s.cycle_last != kNoTime) {
              const double g = static_cast<double>(t - s.cycle_last) / kDay;
              s.cycle_gap_ss += g * g;
            } else {
              s.cycle_first = t;
            }
            s.cycle_last = t;
            s.cycle_orders += 1;
          }
          if (s.last_order != kNoTime) {
            const double g = static_cast<double>(t - s.last_order) / kDay;
            s.gap_ss += g * g;
          } else {
            s.first_order = t;
          }
          s.last_order = t;
          s.orders += 1;
          s.orders_90d += cut_time - t <= 90 * kSecondsPerDay;
          ++orders;
        }
      }
      slot_offsets[row + 1] = orders;
      pair_offsets[row + 1] = pairs;
    }
  });
  benefit_issued.assign(static_cast<std::size_t>(nb), 0);
  benefit_claimed.assign(static_cast<std::size_t>(nb), 0);
  for (const auto& bc : benefit_counts) {
    for (Index b = 0; b < nb; ++b) {
      benefit_issued[static_cast<std::size_t>(b)] += bc[static_cast<std::size_t>(b) * 3];
      benefit_claimed[static_cast<std::size_t>(b)] += bc[static_cast<std::size_t>(b) * 3 + 1];
      total_viewed += bc[static_cast<std::size_t>(b) * 3 + 2];
    }
  }
  // Class membership reads responses among viewed benefits when the log records views (the
  // view itself depends on the member's channel habits, not only their taste).
  const bool trials_are_views = response_type == EventType::claimed && total_viewed > 0;
  const auto trial_type =
      static_cast<std::uint8_t>(trials_are_views ? EventType::viewed : EventType::issued);
  for (std::size_t u = 0; u < nz; ++u) {
    slot_offsets[u + 1] += slot_offsets[u];
    pair_offsets[u + 1] += pair_offsets[u];
  }
  slots.resize(static_cast<std::size_t>(slot_offsets.back()));
  pair_benefit.resize(static_cast<std::size_t>(pair_offsets.back()));
  pair_trials.assign(pair_benefit.size(), 0.0f);
  pair_responses.assign(pair_benefit.size(), 0.0f);
  std::vector<std::vector<Offset>> position(static_cast<std::size_t>(threads));
  parallel_for(
      0, n, threads,
      [&](Offset uo, int thread) {
        std::vector<Offset>& pos = position[static_cast<std::size_t>(thread)];
        if (pos.empty()) pos.assign(static_cast<std::size_t>(nb), -1);
        const auto u = static_cast<Index>(uo);
        Offset at = slot_offsets[static_cast<std::size_t>(u)];
        Offset pair_at = pair_offsets[static_cast<std::size_t>(u)];
        for (Offset e = log.user_begin(u); e < log.user_end(u); ++e) {
          const Timestamp t = ev_time[static_cast<std::size_t>(e)];
          if (t >= cut_time) break;
          const std::uint8_t type = ev_type[static_cast<std::size_t>(e)];
          if (type == static_cast<std::uint8_t>(EventType::ordered)) {
            slots[static_cast<std::size_t>(at++)] = static_cast<std::uint8_t>(hour_of_week(t));
          }
          const Index b = ev_benefit[static_cast<std::size_t>(e)];
          const bool response = type == static_cast<std::uint8_t>(response_type);
          if (b < 0 || !(type == static_cast<std::uint8_t>(EventType::issued) ||
                         type == static_cast<std::uint8_t>(EventType::viewed) || response)) {
            continue;
          }
          Offset& p = pos[static_cast<std::size_t>(b)];
          if (p < 0) {
            p = pair_at++;
            pair_benefit[static_cast<std::size_t>(p)] = b;
          }
          const auto w = static_cast<float>(std::exp(-decay * static_cast<double>(cut_time - t)));
          if (type == trial_type) pair_trials[static_cast<std::size_t>(p)] += w;
          if (response) pair_responses[static_cast<std::size_t>(p)] += w;
        }
        for (Offset p = pair_offsets[static_cast<std::size_t>(u)]; p < pair_at; ++p) {
          pos[static_cast<std::size_t>(pair_benefit[static_cast<std::size_t>(p)])] = -1;
        }
      },
      Schedule::dynamic, 1024);

  return out;
}

// Stage 2: population rates.
struct PopulationRates {
  double overall_rate = 0.1;          // responses per issue over all benefits
  std::vector<double> pop;            // per dimension
  std::vector<double> issue_share;    // per dimension: share of the issues
  std::vector<double> pop_view;       // per channel: views per issue
  std::vector<double> channel_share;  // D x (C + 1): channel mix of each dimension's issues
};

inline PopulationRates population_rates(const LogCounts& counts, const BenefitLayout& layout,
                                        Index n, std::size_t Dz, int threads) {
  PopulationRates out;
  const auto Cz = static_cast<std::size_t>(std::max(layout.C, 0));
  const auto nb = static_cast<Index>(counts.benefit_issued.size());
  const std::vector<float>& issued = counts.issued;
  const std::vector<float>& claimed = counts.claimed;
  const std::vector<float>& ch_issued = counts.ch_issued;
  const std::vector<float>& ch_viewed = counts.ch_viewed;
  const std::vector<MemberSummary>& summary = counts.summary;
  const std::vector<std::int64_t>& benefit_issued = counts.benefit_issued;
  const std::vector<std::int64_t>& benefit_claimed = counts.benefit_claimed;
  const std::vector<std::int32_t>& dim_offsets = layout.dim_offsets;
  const std::vector<std::int32_t>& dim_list = layout.dim_list;
  const std::vector<int>& benefit_channel = layout.benefit_channel;
  const std::vector<double> totals =
      block_sum(n, 2 * Dz + 2 * Cz + 2, threads, [&](Index u, double* acc) {
        const auto row = static_cast<std::size_t>(u);
        for (std::size_t d = 0; d < Dz; ++d) {
          acc[d] += issued[row * Dz + d];
          acc[Dz + d] += claimed[row * Dz + d];
        }
        for (std::size_t c = 0; c < Cz; ++c) {
          acc[2 * Dz + c] += ch_issued[row * Cz + c];
          acc[2 * Dz + Cz + c] += ch_viewed[row * Cz + c];
        }
        acc[2 * Dz + 2 * Cz] += summary[row].issued_w;
      });
  double all_issued = 0, all_claimed = 0;
  for (Index b = 0; b < nb; ++b) {
    all_issued += static_cast<double>(benefit_issued[static_cast<std::size_t>(b)]);
    all_claimed += static_cast<double>(benefit_claimed[static_cast<std::size_t>(b)]);
  }
  const double overall_rate = out.overall_rate =
      all_issued > 0 ? std::clamp(all_claimed / all_issued, 1e-4, 1 - 1e-4) : 0.1;
  std::vector<double>& pop = out.pop;
  std::vector<double>& issue_share = out.issue_share;
  pop.resize(Dz);
  issue_share.resize(Dz);
  double dim_issue_total = 0;
  for (std::size_t d = 0; d < Dz; ++d) dim_issue_total += totals[d];
  for (std::size_t d = 0; d < Dz; ++d) {
    pop[d] = totals[d] > 0 ? std::clamp(totals[Dz + d] / totals[d], 1e-4, 1 - 1e-4) : overall_rate;
    issue_share[d] = dim_issue_total > 0 ? totals[d] / dim_issue_total : 0.0;
  }
  std::vector<double>& pop_view = out.pop_view;
  pop_view.resize(Cz);
  for (std::size_t c = 0; c < Cz; ++c) {
    pop_view[c] = totals[2 * Dz + c] > 0
                      ? std::clamp(totals[2 * Dz + Cz + c] / totals[2 * Dz + c], 1e-3, 1 - 1e-3)
                      : 0.5;
  }
  // Channel mix of each dimension's issues (exact integer totals).
  std::vector<double>& channel_share = out.channel_share;
  channel_share.assign(Dz * (Cz + 1), 0.0);  // last column: no channel
  {
    std::vector<double> dim_total(Dz, 0.0);
    for (Index b = 0; b < nb; ++b) {
      const auto cnt = static_cast<double>(benefit_issued[static_cast<std::size_t>(b)]);
      const int ch = benefit_channel[static_cast<std::size_t>(b)];
      for (auto k = dim_offsets[static_cast<std::size_t>(b)];
           k < dim_offsets[static_cast<std::size_t>(b) + 1]; ++k) {
        const auto d = static_cast<std::size_t>(dim_list[static_cast<std::size_t>(k)]);
        channel_share[d * (Cz + 1) + (ch >= 0 ? static_cast<std::size_t>(ch) : Cz)] += cnt;
        dim_total[d] += cnt;
      }
    }
    for (std::size_t d = 0; d < Dz; ++d) {
      for (std::size_t c = 0; c <= Cz; ++c) {
        channel_share[d * (Cz + 1) + c] =
            dim_total[d] > 0 ? channel_share[d * (Cz + 1) + c] / dim_total[d] : (c == Cz);
      }
    }
  }
  return out;
}

// Stage 3: latent classes by EM — memberships (resp, n x K), class rates per dimension
// (theta, K x D), class weights and the covariate weights of the class prior (K x P).
struct LatentClasses {
  int K = 1;
  std::vector<float> resp;
  std::vector<double> theta, weight, cov_w;
};

inline LatentClasses fit_classes(const LogCounts& counts, const PopulationRates& rates,
                                 const std::vector<double>& cov_x, std::size_t Pz,
                                 const PreferenceParams& params, Timestamp cut_time, std::size_t Dz,
                                 int threads, ProgressReporter& em_progress) {
  LatentClasses fit;
  const auto n = static_cast<Index>(counts.summary.size());
  const auto nz = static_cast<std::size_t>(n);
  const auto nb = static_cast<Index>(counts.benefit_issued.size());
  const int D = static_cast<int>(Dz);
  const double overall_rate = rates.overall_rate;
  const std::vector<double>& pop = rates.pop;
  const std::vector<float>& issued = counts.issued;
  const std::vector<float>& claimed = counts.claimed;
  const std::vector<MemberSummary>& summary = counts.summary;
  const std::vector<Offset>& pair_offsets = counts.pair_offsets;
  const std::vector<Index>& pair_benefit = counts.pair_benefit;
  const std::vector<float>& pair_trials = counts.pair_trials;
  const std::vector<float>& pair_responses = counts.pair_responses;
  const int K = fit.K =
      static_cast<int>(std::min<Index>(params.latent_classes, std::max<Index>(1, n)));
  const auto Kz = static_cast<std::size_t>(K);
  std::vector<float>& resp = fit.resp;
  std::vector<double>& theta = fit.theta;
  std::vector<double>& weight = fit.weight;
  resp.assign(nz * Kz, 1.0f / static_cast<float>(K));
  theta.resize(Kz * Dz);
  weight.assign(Kz, 1.0 / K);
  for (std::size_t c = 0; c < Kz; ++c) {
    for (std::size_t d = 0; d < Dz; ++d) theta[c * Dz + d] = pop[d];
  }
  constexpr double kClassPrior = 2.0;  // pseudo-issues pulling class rates to the population
  constexpr double kCovariateL2 = 1.0;
  std::vector<double>& cov_w = fit.cov_w;
  cov_w.assign(Kz * Pz, 0.0);
  std::vector<double> cov_bound;
  auto cov_newton = [&]() {
    for (int step = 0; step < 2; ++step) {
      const std::vector<double> g = block_sum(n, Kz * Pz, threads, [&](Index u, double* acc) {
        const auto row = static_cast<std::size_t>(u);
        const double* x = cov_x.data() + row * Pz;
        double pi[64];
        detail::pref::class_softmax(cov_w.data(), x, Kz, Pz, pi, false);
        for (std::size_t c = 0; c < Kz; ++c) {
          const double e = resp[row * Kz + c] - pi[c];
          for (std::size_t j = 0; j < Pz; ++j) acc[c * Pz + j] += e * x[j];
        }
      });
      for (std::size_t c = 0; c < Kz; ++c) {
        std::vector<double> step_c(Pz);
        for (std::size_t j = 0; j < Pz; ++j)
          step_c[j] = g[c * Pz + j] - (j == 0 ? 0.0 : kCovariateL2) * cov_w[c * Pz + j];
        detail::pref::spd_solve(cov_bound, Pz, step_c.data());
        for (std::size_t j = 0; j < Pz; ++j) cov_w[c * Pz + j] += step_c[j];
      }
    }
  };
  auto m_step = [&]() {
    const std::vector<double> s =
        block_sum(n, Kz * (2 * Dz + 1), threads, [&](Index u, double* acc) {
          const auto row = static_cast<std::size_t>(u);
          for (std::size_t c = 0; c < Kz; ++c) {
            const double r = resp[row * Kz + c];
            if (r == 0) continue;
            double* a = acc + c * (2 * Dz + 1);
            for (std::size_t d = 0; d < Dz; ++d) {
              a[d] += r * issued[row * Dz + d];
              a[Dz + d] += r * claimed[row * Dz + d];
            }
            a[2 * Dz] += r;
          }
        });
    for (std::size_t c = 0; c < Kz; ++c) {
      const double* a = s.data() + c * (2 * Dz + 1);
      for (std::size_t d = 0; d < Dz; ++d) {
        theta[c * Dz + d] =
            std::clamp((a[Dz + d] + kClassPrior * pop[d]) / (a[d] + kClassPrior), 1e-4, 1 - 1e-4);
      }
      weight[c] = (a[2 * Dz] + 1.0) / (static_cast<double>(n) + static_cast<double>(K));
    }
  };
  if (K > 1) {
    // Initialise with k-means++ on population-shrunk log lifts of (at most ~50,000, taken at a
    // fixed stride) members with issues, then give every member with issues its nearest centre.
    auto member_lifts = [&](std::size_t row, float* out) {
      for (std::size_t d = 0; d < Dz; ++d) {
        const double rate = (claimed[row * Dz + d] + 4.0 * pop[d]) / (issued[row * Dz + d] + 4.0);
        out[d] = static_cast<float>(std::log(rate / pop[d]));
      }
    };
    std::vector<Index> active;
    for (Index u = 0; u < n; ++u) {
      if (summary[static_cast<std::size_t>(u)].issued > 0) active.push_back(u);
    }
    const std::size_t stride = std::max<std::size_t>(1, active.size() / 50000);
    std::vector<Index> sample;
    for (std::size_t i = 0; i < active.size(); i += stride) sample.push_back(active[i]);
    if (static_cast<Index>(sample.size()) >= K) {
      std::vector<float> lifts(sample.size() * Dz);
      parallel_for(0, static_cast<Offset>(sample.size()), threads, [&](Offset i) {
        member_lifts(static_cast<std::size_t>(sample[static_cast<std::size_t>(i)]),
                     lifts.data() + static_cast<std::size_t>(i) * Dz);
      });
      const KMeansResult init =
          kmeans(lifts.data(), static_cast<Index>(sample.size()), D, K, params.seed, 20, threads);
      parallel_for(
          0, n, threads,
          [&](Offset uo) {
            const auto row = static_cast<std::size_t>(uo);
            float* r = resp.data() + row * Kz;
            if (summary[row].issued <= 0) {
              std::fill(r, r + Kz, 1.0f / static_cast<float>(K));
              return;
            }
            float x[256];
            float* v = Dz <= 256 ? x : nullptr;
            std::vector<float> big;
            if (v == nullptr) {
              big.resize(Dz);
              v = big.data();
            }
            member_lifts(row, v);
            std::size_t best = 0;
            double best_d = std::numeric_limits<double>::infinity();
            for (std::size_t c = 0; c < Kz; ++c) {
              double dist = 0;
              for (std::size_t d = 0; d < Dz; ++d) {
                const double diff = static_cast<double>(v[d]) - init.centroids[c * Dz + d];
                dist += diff * diff;
              }
              if (dist < best_d) {
                best_d = dist;
                best = c;
              }
            }
            std::fill(r, r + Kz, 0.0f);
            r[best] = 1.0f;
          },
          Schedule::dynamic, 1024);
    }
    // Benefit-level class rates of responses per trial (claims per view, or per issue).
    const auto nbz = static_cast<std::size_t>(nb);
    std::vector<double> benefit_rate(nbz);
    for (std::size_t b = 0; b < nbz; ++b) {
      benefit_rate[b] = overall_rate;
    }
    {
      const std::vector<double> t = block_sum(n, 2 * nbz, threads, [&](Index u, double* acc) {
        for (Offset p = pair_offsets[static_cast<std::size_t>(u)];
             p < pair_offsets[static_cast<std::size_t>(u) + 1]; ++p) {
          const auto b = static_cast<std::size_t>(pair_benefit[static_cast<std::size_t>(p)]);
          acc[b] += pair_trials[static_cast<std::size_t>(p)];
          acc[nbz + b] += std::min(pair_responses[static_cast<std::size_t>(p)],
                                   pair_trials[static_cast<std::size_t>(p)]);
        }
      });
      for (std::size_t b = 0; b < nbz; ++b) {
        benefit_rate[b] =
            std::clamp((t[nbz + b] + 2.0 * overall_rate) / (t[b] + 2.0), 1e-4, 1 - 1e-4);
      }
    }
    // Behaviour the archetypes differ in besides taste: order frequency (negative binomial on
    // the orders over the member's tenure, shape kOrderShape for individual variation) and,
    // when responses are claims, how often a claimed benefit gets redeemed.
    constexpr double kOrderShape = 8.0;
    const bool use_redemption = params.response == EventType::claimed;
    auto tenure_of = [&](std::size_t row) {
      const MemberSummary& m = summary[row];
      return m.first_event == kNoTime ? 0.0 : static_cast<double>(cut_time - m.first_event) / kDay;
    };
    const std::size_t stride_c = 2 * nbz + 5;
    std::vector<double> class_benefit(Kz * nbz), class_order_rate(Kz, 0.1), class_redeem(Kz, 0.5);
    // Sufficient statistics of one member under its memberships, added to acc (per class:
    // trials and responses per benefit, membership, orders, tenure, redeemed, claimed).
    auto accumulate = [&](std::size_t row, double* acc) {
      const MemberSummary& m = summary[row];
      const double tenure = tenure_of(row);
      for (std::size_t c = 0; c < Kz; ++c) {
        const double r = resp[row * Kz + c];
        double* a = acc + c * stride_c;
        a[2 * nbz] += r;
        if (r == 0) continue;
        a[2 * nbz + 1] += r * m.orders;
        a[2 * nbz + 2] += r * tenure;
        a[2 * nbz + 3] += r * std::min(m.redeemed, m.claimed);
        a[2 * nbz + 4] += r * m.claimed;
        for (Offset p = pair_offsets[row]; p < pair_offsets[row + 1]; ++p) {
          const auto b = static_cast<std::size_t>(pair_benefit[static_cast<std::size_t>(p)]);
          const double tr = pair_trials[static_cast<std::size_t>(p)];
          a[b] += r * tr;
          a[nbz + b] += r * std::min<double>(pair_responses[static_cast<std::size_t>(p)], tr);
        }
      }
    };
    auto update_classes = [&](const std::vector<double>& t) {
      for (std::size_t c = 0; c < Kz; ++c) {
        const double* a = t.data() + c * stride_c;
        for (std::size_t b = 0; b < nbz; ++b) {
          class_benefit[c * nbz + b] = std::clamp(
              (a[nbz + b] + kClassPrior * benefit_rate[b]) / (a[b] + kClassPrior), 1e-4, 1 - 1e-4);
        }
        weight[c] = (a[2 * nbz] + 1.0) / (static_cast<double>(n) + static_cast<double>(K));
        class_order_rate[c] = std::max(1e-4, (a[2 * nbz + 1] + 1.0) / (a[2 * nbz + 2] + 30.0));
        class_redeem[c] =
            std::clamp((a[2 * nbz + 3] + 1.0) / (a[2 * nbz + 4] + 2.0), 1e-3, 1 - 1e-3);
      }
    };
    update_classes(block_sum(n, Kz * stride_c, threads, [&](Index u, double* acc) {
      accumulate(static_cast<std::size_t>(u), acc);
    }));
    em_progress.advance(1);
    // Covariates of the class prior: W [K x P], refit after every M-step by Boehning-bound
    // Newton steps (B = X'X / 2 + L2, which bounds the negative Hessian of each class block).
    if (Pz > 0) {
      std::vector<double> xtx = block_sum(n, Pz * Pz, threads, [&](Index u, double* acc) {
        const double* x = cov_x.data() + static_cast<std::size_t>(u) * Pz;
        for (std::size_t i = 0; i < Pz; ++i) {
          for (std::size_t j = 0; j < Pz; ++j) acc[i * Pz + j] += x[i] * x[j];
        }
      });
      cov_bound.resize(Pz * Pz);
      for (std::size_t i = 0; i < Pz * Pz; ++i) cov_bound[i] = 0.5 * xtx[i];
      for (std::size_t j = 0; j < Pz; ++j) cov_bound[j * Pz + j] += j == 0 ? 1e-6 : kCovariateL2;
      for (std::size_t c = 0; c < Kz; ++c) cov_w[c * Pz] = std::log(weight[c]);
      cov_newton();
    }
    // Each sweep is one pass: the E-step for a member, then its statistics for the M-step.
    const std::size_t change_at = Kz * stride_c;
    std::vector<double> log_odds(Kz * nbz), log_fail(Kz * nbz), log_weight(Kz), log_order_rate(Kz);
    std::vector<double> log_redeem(Kz), log_keep(Kz);
    for (int it = 0; it < params.em_iterations; ++it) {
      for (std::size_t i = 0; i < Kz * nbz; ++i) {
        log_fail[i] = std::log1p(-class_benefit[i]);
        log_odds[i] = std::log(class_benefit[i]) - log_fail[i];
      }
      for (std::size_t c = 0; c < Kz; ++c) {
        log_weight[c] = std::log(weight[c]);
        log_order_rate[c] = std::log(class_order_rate[c]);
        log_redeem[c] = std::log(class_redeem[c]);
        log_keep[c] = std::log1p(-class_redeem[c]);
      }
      const std::vector<double> t = block_sum(n, change_at + 1, threads, [&](Index u, double* acc) {
        const auto row = static_cast<std::size_t>(u);
        const MemberSummary& m = summary[row];
        const double tenure = tenure_of(row);
        const double log_tenure = tenure > 0 ? std::log(tenure) : 0.0;
        const double redeemed = std::min(m.redeemed, m.claimed);
        double l[64], log_prior[64];
        if (Pz > 0)
          detail::pref::class_softmax(cov_w.data(), cov_x.data() + row * Pz, Kz, Pz, log_prior,
                                      true);
        double best = -std::numeric_limits<double>::infinity();
        for (std::size_t c = 0; c < Kz; ++c) {
          double s = Pz > 0 ? log_prior[c] : log_weight[c];
          const double* lo = log_odds.data() + c * nbz;
          const double* lf = log_fail.data() + c * nbz;
          for (Offset p = pair_offsets[row]; p < pair_offsets[row + 1]; ++p) {
            const auto b = static_cast<std::size_t>(pair_benefit[static_cast<std::size_t>(p)]);
            const double tr = pair_trials[static_cast<std::size_t>(p)];
            s += std::min<double>(pair_responses[static_cast<std::size_t>(p)], tr) * lo[b] +
                 tr * lf[b];
          }
          if (tenure > 0) {
            // Negative binomial: S log(S / (S + mean)) + x log(mean / (S + mean)).
            const double log_total = std::log(kOrderShape + class_order_rate[c] * tenure);
            s += kOrderShape * (std::log(kOrderShape) - log_total) +
                 m.orders * (log_order_rate[c] + log_tenure - log_total);
          }
          if (use_redemption && m.claimed > 0) {
            s += redeemed * log_redeem[c] + (m.claimed - redeemed) * log_keep[c];
          }
          l[c] = s;
          best = std::max(best, l[c]);
        }
        double z = 0;
        for (std::size_t c = 0; c < Kz; ++c) z += (l[c] = std::exp(l[c] - best));
        for (std::size_t c = 0; c < Kz; ++c) {
          const auto r = static_cast<float>(l[c] / z);
          acc[change_at] += std::fabs(static_cast<double>(r) - resp[row * Kz + c]);
          resp[row * Kz + c] = r;
        }
        accumulate(row, acc);
      });
      update_classes(t);
      if (Pz > 0) cov_newton();
      em_progress.advance(1);
      // Converged when memberships move by less than 1e-4 on average.
      if (t[change_at] < 1e-4 * static_cast<double>(n) * static_cast<double>(Kz)) break;
    }
    m_step();
  } else {
    m_step();
  }
  return fit;
}

// Stage 4a: each member's prior mean per dimension — the membership-weighted class rates,
// corrected for the channel mix the member opens (n x D).
inline std::vector<float> prior_means(const LogCounts& counts, const PopulationRates& rates,
                                      const LatentClasses& classes, std::size_t Dz, std::size_t Cz,
                                      int threads) {
  const auto n = static_cast<Index>(counts.summary.size());
  const auto nz = static_cast<std::size_t>(n);
  const auto Kz = static_cast<std::size_t>(classes.K);
  const std::int64_t total_viewed = counts.total_viewed;
  const std::vector<float>& resp = classes.resp;
  const std::vector<double>& theta = classes.theta;
  const std::vector<double>& pop_view = rates.pop_view;
  const std::vector<double>& channel_share = rates.channel_share;
  const std::vector<float>& ch_issued = counts.ch_issued;
  const std::vector<float>& ch_viewed = counts.ch_viewed;
  std::vector<double> class_view(Kz * Cz, 0.0);
  if (Cz > 0) {
    const std::vector<double> s = block_sum(n, Kz * 2 * Cz, threads, [&](Index u, double* acc) {
      const auto row = static_cast<std::size_t>(u);
      for (std::size_t c = 0; c < Kz; ++c) {
        const double r = resp[row * Kz + c];
        for (std::size_t h = 0; h < Cz; ++h) {
          acc[(c * 2) * Cz + h] += r * ch_issued[row * Cz + h];
          acc[(c * 2 + 1) * Cz + h] += r * ch_viewed[row * Cz + h];
        }
      }
    });
    for (std::size_t c = 0; c < Kz; ++c) {
      for (std::size_t h = 0; h < Cz; ++h) {
        class_view[c * Cz + h] = std::clamp(
            (s[(c * 2 + 1) * Cz + h] + pop_view[h]) / (s[(c * 2) * Cz + h] + 1.0), 1e-3, 1 - 1e-3);
      }
    }
  }
  constexpr double kViewPrior = 4.0;  // pseudo-issues of a member's channel open rates
  std::vector<float> prior_mean(nz * Dz);
  parallel_for(0, n, threads, [&](Offset uo) {
    const auto row = static_cast<std::size_t>(uo);
    double factor[64];
    for (std::size_t h = 0; h < Cz && h < 63; ++h) {
      double m = 0;
      for (std::size_t c = 0; c < Kz; ++c) m += resp[row * Kz + c] * class_view[c * Cz + h];
      factor[h] = total_viewed > 0 ? ((ch_viewed[row * Cz + h] + kViewPrior * m) /
                                      (ch_issued[row * Cz + h] + kViewPrior)) /
                                         m
                                   : 1.0;  // no views recorded: no channel evidence
    }
    for (std::size_t d = 0; d < Dz; ++d) {
      double mu = 0;
      for (std::size_t c = 0; c < Kz; ++c) mu += resp[row * Kz + c] * theta[c * Dz + d];
      double g = channel_share[d * (Cz + 1) + Cz];
      for (std::size_t h = 0; h < Cz && h < 63; ++h)
        g += channel_share[d * (Cz + 1) + h] * factor[h];
      prior_mean[row * Dz + d] = static_cast<float>(std::clamp(mu * g, 1e-4, 1 - 1e-4));
    }
  });
  return prior_mean;
}

// Stage 4b: the empirical-Bayes prior strength per dimension (see the declaration).
PERKREC_INLINE std::vector<double> prior_strength(Span<const float> issued,
                                                  Span<const float> claimed,
                                                  Span<const float> prior_mean, Index n,
                                                  std::size_t Dz, double fixed_strength,
                                                  int threads) {
  std::vector<double> strength(Dz, fixed_strength);
  if (fixed_strength <= 0) {
    static constexpr double kGrid[] = {0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
    constexpr int kG = 12;
    const Index step = std::max<Index>(1, n / 5000);
    std::vector<double> ll(static_cast<std::size_t>(kG) * Dz, 0.0);
    parallel_for(0, kG, threads, [&](Offset g) {
      const double M = kGrid[g];
      for (Index u = 0; u < n; u += step) {
        const auto row = static_cast<std::size_t>(u);
        for (std::size_t d = 0; d < Dz; ++d) {
          const double nn = issued[row * Dz + d];
          if (nn <= 0) continue;
          const double k = std::min<double>(claimed[row * Dz + d], nn);
          const double mu = prior_mean[row * Dz + d];
          ll[static_cast<std::size_t>(g) * Dz + d] += beta_binomial_ll(k, nn, M * mu, M * (1 - mu));
        }
      }
    });
    for (std::size_t d = 0; d < Dz; ++d) {
      int best = 0;
      for (int g = 1; g < kG; ++g) {
        if (ll[static_cast<std::size_t>(g) * Dz + d] > ll[static_cast<std::size_t>(best) * Dz + d])
          best = g;
      }
      strength[d] = kGrid[best];
    }
  }
  return strength;
}

// Stage 4c: the individual spread around the classes (see the declaration). Not residuals
// around the member's prior mean, nor around the classes weighted by the memberships: the
// memberships and the channel factor were fitted on the same responses, so residuals around
// them understate the spread (the beta-binomial likelihood then sees no overdispersion at all,
// and membership-weighted residuals miss the members a class's tail lends to its neighbour).
// The population's spread of the rates, less the part the classes explain, has no such bias.
PERKREC_INLINE std::vector<double> individual_spread(Span<const float> issued,
                                                     Span<const float> claimed,
                                                     Span<const float> memberships,
                                                     Span<const double> class_rates,
                                                     Span<const double> count_scale, Index n,
                                                     std::size_t Dz, int classes, int threads) {
  const auto Kz = static_cast<std::size_t>(classes);
  const std::size_t width = 4 + Kz;  // per dimension: W, sum y, sum y^2, sum 1/n, sum_u r[u,c]
  const std::vector<double> s = block_sum(n, Dz * width, threads, [&](Index u, double* acc) {
    const auto row = static_cast<std::size_t>(u);
    // The binomial part needs the number of issues, not their decayed weight.
    const double scale = count_scale.empty() ? 1.0 : count_scale[row];
    for (std::size_t d = 0; d < Dz; ++d) {
      const double weight = issued[row * Dz + d];
      const double nn = weight * scale;
      if (nn < 1.0) continue;
      const double y = std::min<double>(claimed[row * Dz + d], weight) / weight;
      double* a = acc + d * width;
      a[0] += 1.0;
      a[1] += y;
      a[2] += y * y;
      a[3] += 1.0 / nn;
      for (std::size_t c = 0; c < Kz; ++c) a[4 + c] += memberships[row * Kz + c];
    }
  });
  std::vector<double> spread(Kz * Dz, 0.0);
  for (std::size_t d = 0; d < Dz; ++d) {
    const double* a = s.data() + d * width;
    const double W = a[0];
    if (W - a[3] <= 0) continue;  // no member with two issues: no spread to see
    const double mean = a[1] / W;
    // Variance of the members' own rates: that of the raw rates less the binomial part,
    // E[(y - mean)^2] = V + (mean (1 - mean) - V) / n.
    const double total = (a[2] - W * mean * mean - mean * (1.0 - mean) * a[3]) / (W - a[3]);
    double class_mean = 0, between = 0, bernoulli = 0;
    for (std::size_t c = 0; c < Kz; ++c) class_mean += a[4 + c] / W * class_rates[c * Dz + d];
    for (std::size_t c = 0; c < Kz; ++c) {
      const double theta = class_rates[c * Dz + d];
      between += a[4 + c] / W * (theta - class_mean) * (theta - class_mean);
      bernoulli += a[4 + c] / W * theta * (1.0 - theta);
    }
    // Within class c: theta (1 - theta) / (S + 1), one strength S per dimension.
    const double share = bernoulli > 0 ? std::clamp((total - between) / bernoulli, 0.0, 1.0) : 0.0;
    for (std::size_t c = 0; c < Kz; ++c) {
      const double theta = class_rates[c * Dz + d];
      spread[c * Dz + d] = share * theta * (1.0 - theta);
    }
  }
  return spread;
}

PERKREC_INLINE double within_class_variance(double trials, double responses,
                                            Span<const float> memberships,
                                            Span<const double> class_means,
                                            Span<const double> class_spread) {
  const double nn = trials;
  const double k = std::min<double>(responses, nn);
  double variance = 0;
  for (std::size_t c = 0; c < memberships.size(); ++c) {
    const double r = memberships[c];
    if (r <= 0) continue;
    const double m = std::clamp(class_means[c], 1e-4, 1.0 - 1e-4);
    // Beta(M m, M (1 - m)) has variance m (1 - m) / (M + 1) = class_spread: M from the spread,
    // capped so that no spread means a prior of a million pseudo-issues.
    const double tau2 = std::max(class_spread[c], m * (1.0 - m) / (kMaxSpreadStrength + 1.0));
    const double strength = std::max(m * (1.0 - m) / tau2 - 1.0, kMinSpreadStrength);
    const double a = k + strength * m;
    const double b = nn - k + strength * (1.0 - m);
    variance += r * a * b / ((a + b) * (a + b) * (a + b + 1.0));
  }
  return variance;
}

PERKREC_INLINE BetaPosterior beta_posterior(double trials, double responses, double strength,
                                            double prior_mean, double class_spread) {
  const double nn = trials;
  const double k = std::min<double>(responses, nn);
  const double a = k + strength * prior_mean;
  const double b = nn - k + strength * (1.0 - prior_mean);
  BetaPosterior out;
  out.mean = a / (a + b);
  // Law of total variance over the class memberships: the Beta posterior's variance plus
  // the spread of the class rates the prior mean mixes, weighted by the prior's share.
  const double prior_share = strength / (nn + strength);
  out.sd = std::sqrt(a * b / ((a + b) * (a + b) * (a + b + 1.0)) +
                     prior_share * prior_share * class_spread);
  return out;
}

// Stage 4d: the shrinkage — each member's posterior rate per dimension (beta_posterior), as a
// lift over the population rate, with the sd of its interval from the individual spread
// around the classes (within_class_variance) and the bounds (n x D each).
struct Posterior {
  std::vector<float> pref, lower, upper, sd;
};

inline Posterior shrink(const LogCounts& counts, const PopulationRates& rates,
                        const LatentClasses& classes, const std::vector<float>& prior_mean,
                        const std::vector<double>& strength, const std::vector<double>& spread,
                        double interval, std::size_t Dz, int threads) {
  Posterior out;
  const auto n = static_cast<Index>(counts.summary.size());
  const auto nz = static_cast<std::size_t>(n);
  const auto Kz = static_cast<std::size_t>(classes.K);
  const std::vector<float>& resp = classes.resp;
  const std::vector<double>& theta = classes.theta;
  const std::vector<double>& pop = rates.pop;
  const std::vector<float>& issued = counts.issued;
  const std::vector<float>& claimed = counts.claimed;
  const double z = interval_quantile(interval);
  std::vector<float>& pref = out.pref;
  std::vector<float>& lo = out.lower;
  std::vector<float>& hi = out.upper;
  std::vector<float>& post_sd = out.sd;
  pref.resize(nz * Dz);
  lo.resize(nz * Dz);
  hi.resize(nz * Dz);
  post_sd.resize(nz * Dz);
  parallel_for(0, n, threads, [&](Offset uo) {
    const auto row = static_cast<std::size_t>(uo);
    const MemberSummary& summary = counts.summary[row];
    const double count_scale = summary.issued_w > 0 ? summary.issued / summary.issued_w : 1.0;
    double class_mean[64], class_spread[64];
    for (std::size_t d = 0; d < Dz; ++d) {
      const std::size_t i = row * Dz + d;
      double mix_mean = 0;
      for (std::size_t c = 0; c < Kz; ++c) mix_mean += resp[row * Kz + c] * theta[c * Dz + d];
      // The member's channel factor (prior mean over the class mix) applies to every class.
      const double factor = mix_mean > 0 ? prior_mean[i] / mix_mean : 1.0;
      for (std::size_t c = 0; c < Kz; ++c) {
        // The class's spread as a share of its Bernoulli variance carries over to the
        // member's channel-corrected class rate.
        const double th = theta[c * Dz + d];
        const double m = std::clamp(th * factor, 1e-4, 1.0 - 1e-4);
        class_mean[c] = m;
        class_spread[c] =
            th > 0 && th < 1 ? spread[c * Dz + d] / (th * (1.0 - th)) * m * (1.0 - m) : 0.0;
      }
      const double mean =
          beta_posterior(issued[i], claimed[i], strength[d], prior_mean[i], 0.0).mean;
      // The posterior's information is the number of issues, not their decayed weight (the
      // decay sets the mean's emphasis on recent responses, not how much is known).
      const double sd = std::sqrt(within_class_variance(
          issued[i] * count_scale, claimed[i] * count_scale,
          Span<const float>(resp.data() + row * Kz, Kz), Span<const double>(class_mean, Kz),
          Span<const double>(class_spread, Kz)));
      pref[i] = static_cast<float>(mean / pop[d]);
      post_sd[i] = static_cast<float>(sd);
      lo[i] = static_cast<float>(std::max(0.0, mean - z * sd) / pop[d]);
      hi[i] = static_cast<float>(std::min(1.0, mean + z * sd) / pop[d]);
    }
  });
  return out;
}

// Stage 5: timing — population slot shares, inter-order gaps, BG/NBD, and per member the
// best slot, the next purchase, the send delay, the validity and the BG/NBD predictions.
struct TimingFit {
  std::vector<double> pop_slots;
  double pop_gap = 30.0;
  BGNBD bg;
  std::vector<MemberTiming> timing;
};

inline TimingFit fit_timing(const LogCounts& log_counts, Timestamp cut_time,
                            double timing_prior_strength, double horizon_days, int threads,
                            ProgressReporter& timing_progress) {
  TimingFit out;
  const auto n = static_cast<Index>(log_counts.summary.size());
  const auto nz = static_cast<std::size_t>(n);
  const std::vector<MemberSummary>& summary = log_counts.summary;
  const std::vector<Offset>& slot_offsets = log_counts.slot_offsets;
  const std::vector<std::uint8_t>& slots = log_counts.slots;
  std::vector<double>& pop_slots = out.pop_slots;
  pop_slots.assign(PreferenceModel::kSlots, 0.0);
  {
    std::vector<std::int64_t> counts(PreferenceModel::kSlots, 0);
    for (std::uint8_t s : slots) ++counts[s];
    const double total = static_cast<double>(slots.size());
    for (int s = 0; s < PreferenceModel::kSlots; ++s) {
      pop_slots[static_cast<std::size_t>(s)] =
          total > 0 ? static_cast<double>(counts[static_cast<std::size_t>(s)]) / total
                    : 1.0 / PreferenceModel::kSlots;
    }
  }
  // Population inter-order statistics: mean gap and squared coefficient of variation.
  // Repurchase cycles use the orders without a redemption (see MemberSummary), or all orders
  // when every order of the member carried one.
  struct Cycle {
    double orders, gap_ss;
    Timestamp first, last;
  };
  auto cycle_of = [](const MemberSummary& s) {
    return s.cycle_orders >= 1 ? Cycle{s.cycle_orders, s.cycle_gap_ss, s.cycle_first, s.cycle_last}
                               : Cycle{s.orders, s.gap_ss, s.first_order, s.last_order};
  };
  double gap_days = 0, gap_count = 0, cv2_sum = 0, cv2_count = 0;
  for (const auto& member : summary) {
    const Cycle s = cycle_of(member);
    if (s.orders >= 2) {
      const double span = static_cast<double>(s.last - s.first) / kDay;
      gap_days += span;
      gap_count += s.orders - 1;
      if (s.orders >= 3 && span > 0) {
        const double m = span / (s.orders - 1);
        const double var = std::max(0.0, (s.gap_ss - (s.orders - 1) * m * m) / (s.orders - 2));
        cv2_sum += var / (m * m);
        cv2_count += 1;
      }
    }
  }
  const double pop_gap = out.pop_gap = gap_count > 0 ? gap_days / gap_count : 30.0;
  const double pop_cv2 = cv2_count > 0 ? std::clamp(cv2_sum / cv2_count, 0.05, 2.0) : 1.0;
  // BG/NBD on members with an order, sampled at a fixed stride (at most ~10k members).
  BGNBD& bg = out.bg;
  {
    std::vector<double> x, tx, T;
    Index with_orders = 0;
    for (const auto& s : summary) with_orders += s.orders > 0;
    const Index stride = std::max<Index>(1, with_orders / 10000);
    Index seen = 0;
    for (const auto& s : summary) {
      if (s.orders <= 0) continue;
      if (seen++ % stride != 0) continue;
      x.push_back(s.orders - 1);
      tx.push_back(static_cast<double>(s.last_order - s.first_order) / kDay);
      T.push_back(static_cast<double>(cut_time - s.first_order) / kDay);
    }
    if (!x.empty()) bg = BGNBD::fit(x, tx, T, threads, 300);
  }
  timing_progress.advance(1);
  std::vector<MemberTiming>& timing = out.timing;
  timing.resize(nz);
  const double alpha = timing_prior_strength;
  const double horizon = horizon_days;
  parallel_for(0, n, threads, [&](Offset uo) {
    const auto row = static_cast<std::size_t>(uo);
    const MemberSummary& s = summary[row];
    MemberTiming& t = timing[row];
    double post[PreferenceModel::kSlots];
    const double count = static_cast<double>(slot_offsets[row + 1] - slot_offsets[row]);
    for (int k = 0; k < PreferenceModel::kSlots; ++k)
      post[k] = alpha * pop_slots[static_cast<std::size_t>(k)];
    for (Offset e = slot_offsets[row]; e < slot_offsets[row + 1]; ++e)
      post[slots[static_cast<std::size_t>(e)]] += 1.0;
    for (int k = 0; k < PreferenceModel::kSlots; ++k) post[k] /= (count + alpha);
    t.best_slot = best_slot(post);
    const Cycle cycle = cycle_of(s);
    const double gaps = std::max(0.0, cycle.orders - 1);
    const double span =
        cycle.orders >= 2 ? static_cast<double>(cycle.last - cycle.first) / kDay : 0.0;
    const double mean_gap = std::max(0.5, (span + pop_gap) / (gaps + 1.0));
    double cv2 = pop_cv2;
    if (cycle.orders >= 3 && span > 0) {
      const double m = span / gaps;
      const double var = std::max(0.0, (cycle.gap_ss - gaps * m * m) / (gaps - 1));
      cv2 = (var / (m * m) * (gaps - 1) + 2.0 * pop_cv2) / (gaps - 1 + 2.0);
    }
    const double shape = std::clamp(1.0 / std::max(cv2, 1e-3), 0.5, 20.0);
    const double scale = mean_gap / shape;
    const double elapsed =
        cycle.orders > 0 ? static_cast<double>(cut_time - cycle.last) / kDay : 0.0;
    const double next = cycle.orders > 0 ? gamma_residual(shape, scale, elapsed) : mean_gap;
    const double lead = std::min(2.0, 0.25 * mean_gap);
    t.next_purchase_days = static_cast<float>(next);
    t.send_in_days = static_cast<float>(std::max(0.0, next - lead));
    t.validity_days =
        static_cast<float>(std::clamp(std::ceil(lead + std::sqrt(shape) * scale), 3.0, 30.0));
    if (s.orders > 0) {
      const double xx = s.orders - 1;
      const double txx = static_cast<double>(s.last_order - s.first_order) / kDay;
      const double TT = std::max(txx, static_cast<double>(cut_time - s.first_order) / kDay);
      t.p_alive = static_cast<float>(bg.p_alive(xx, txx, TT));
      t.expected_purchases = static_cast<float>(bg.expected_purchases(horizon, xx, txx, TT));
    } else {
      t.p_alive = 0.0f;
      t.expected_purchases = 0.0f;
    }
  });
  return out;
}

// Stage 6: the member features (names in feature_names, n x F).
inline std::vector<float> member_features(const LogCounts& counts, const PopulationRates& rates,
                                          const Posterior& posterior, const TimingFit& timing_fit,
                                          Timestamp cut_time, std::size_t Dz,
                                          const std::vector<std::string>& feature_names,
                                          int threads) {
  const auto n = static_cast<Index>(counts.summary.size());
  const auto nz = static_cast<std::size_t>(n);
  const std::vector<MemberSummary>& summary = counts.summary;
  const std::vector<double>& issue_share = rates.issue_share;
  const std::vector<float>& pref = posterior.pref;
  const std::vector<MemberTiming>& timing = timing_fit.timing;
  const double pop_gap = timing_fit.pop_gap;
  const std::size_t F = feature_names.size();
  std::vector<float> features(nz * F);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  parallel_for(0, n, threads, [&](Offset uo) {
    const auto row = static_cast<std::size_t>(uo);
    const MemberSummary& s = summary[row];
    float* f = features.data() + row * F;
    double lift = 0;
    for (std::size_t d = 0; d < Dz; ++d) lift += issue_share[d] * pref[row * Dz + d];
    const double span =
        s.orders >= 2 ? static_cast<double>(s.last_order - s.first_order) / kDay : 0.0;
    const double mean_gap =
        s.orders >= 2 ? span / (s.orders - 1) : std::numeric_limits<double>::quiet_NaN();
    const double shrunk_gap = (span + pop_gap) / (std::max(0.0, s.orders - 1) + 1.0);
    const double recency = s.orders > 0 ? static_cast<double>(cut_time - s.last_order) / kDay
                                        : std::numeric_limits<double>::quiet_NaN();
    f[0] = static_cast<float>(s.issued);
    f[1] = static_cast<float>(s.claimed);
    f[2] = static_cast<float>(s.orders);
    f[3] = s.issued > 0 ? static_cast<float>(s.claimed / s.issued) : nan;
    f[4] = static_cast<float>(lift);
    f[5] = static_cast<float>(recency);
    // No event before the cut: no history yet, tenure 0 (so "new member" rules catch them).
    f[6] = s.first_event != kNoTime
               ? static_cast<float>(static_cast<double>(cut_time - s.first_event) / kDay)
               : 0.0f;
    f[7] = static_cast<float>(mean_gap);
    f[8] = static_cast<float>(recency / shrunk_gap);
    f[9] = static_cast<float>(s.orders_90d);
    f[10] = timing[row].p_alive;
    f[11] = timing[row].expected_purchases;
  });
  return features;
}

}  // namespace detail::pref

PERKREC_INLINE void PreferenceModel::fit_impl(const EventLog& log, const Catalog& catalog,
                                              Timestamp cut_time, const UserTable* users,
                                              const Callbacks& callbacks) {
  using namespace detail::pref;
  if (catalog.size() != log.n_benefits()) {
    detail::raise<InputError>("PreferenceModel::fit: catalog holds ", catalog.size(),
                              " benefits (expected the log's n_benefits, ", log.n_benefits(), ")");
  }
  if (log.empty()) detail::raise<InputError>("PreferenceModel::fit: the event log is empty");
  if (log.min_time() >= cut_time) {
    detail::raise<InputError>("PreferenceModel::fit: no event before the cut time (got cut_time ",
                              cut_time, ", earliest event ", log.min_time(), ")");
  }
  const int threads = resolve_num_threads(params_.num_threads);
  std::vector<std::string> cov_names;
  std::vector<double> cov_center, cov_scale, cov_x;
  UserTableReport table_report;
  if (users != nullptr) {
    const std::vector<Index> rows = detail::pref::align_member_rows(
        *users, log, cut_time, params_.user_time_columns, table_report, "PreferenceModel::fit");
    cov_x = detail::pref::encode_covariates(*users, rows, cut_time, params_.user_time_columns, true,
                                            cov_names, cov_center, cov_scale,
                                            &table_report.missing_values, "PreferenceModel::fit");
  }
  const BenefitDimensions dims = BenefitDimensions::for_catalog(catalog, params_.dimensions);
  const int D = dims.size();
  const auto Dz = static_cast<std::size_t>(D);
  const Index n = log.n_users();
  const Index nb = catalog.size();
  BenefitLayout layout = benefit_layout(catalog, dims);
  const auto Cz = static_cast<std::size_t>(std::max(layout.C, 0));
  const double decay =
      params_.half_life_days > 0 ? std::log(2.0) / (params_.half_life_days * kDay) : 0.0;

  // --- 1. one pass over the log: decayed counts, order summaries, slot counts ----------------
  ProgressReporter counting(callbacks, "counts", n);
  LogCounts counts = count_log(log, cut_time, params_.response, decay, layout, nb, Dz, threads);
  counting.advance(n);
  // --- 2. population rates ---------------------------------------------------------------------
  PopulationRates rates = population_rates(counts, layout, n, Dz, threads);
  // --- 3. latent classes (EM) ------------------------------------------------------------------
  ProgressReporter em_progress(callbacks, "classes", params_.em_iterations + 1);
  const std::size_t Pz = users == nullptr ? 0 : cov_names.size() + 1;
  LatentClasses classes =
      fit_classes(counts, rates, cov_x, Pz, params_, cut_time, Dz, threads, em_progress);
  const int K = classes.K;
  // --- 4. prior means with the channel correction, EB strength, posterior -----------------------
  const std::vector<float> prior_mean = prior_means(counts, rates, classes, Dz, Cz, threads);
  std::vector<double> strength = detail::pref::prior_strength(
      counts.issued, counts.claimed, prior_mean, n, Dz, params_.prior_strength, threads);
  std::vector<double> spread;
  if (params_.prior_strength > 0) {  // the prior the user fixed holds for the intervals too
    spread.resize(classes.theta.size());
    for (std::size_t i = 0; i < spread.size(); ++i)
      spread[i] = classes.theta[i] * (1.0 - classes.theta[i]) / (params_.prior_strength + 1.0);
  } else {
    std::vector<double> count_scale(static_cast<std::size_t>(n), 1.0);
    for (std::size_t u = 0; u < count_scale.size(); ++u) {
      const MemberSummary& sm = counts.summary[u];
      if (sm.issued_w > 0) count_scale[u] = sm.issued / sm.issued_w;
    }
    spread = detail::pref::individual_spread(counts.issued, counts.claimed, classes.resp,
                                             classes.theta, count_scale, n, Dz, K, threads);
  }
  Posterior posterior =
      shrink(counts, rates, classes, prior_mean, strength, spread, params_.interval, Dz, threads);
  // --- 5. timing ---------------------------------------------------------------------------------
  ProgressReporter timing_progress(callbacks, "timing", 2);
  TimingFit timing_fit = fit_timing(counts, cut_time, params_.timing_prior_strength,
                                    params_.horizon_days, threads, timing_progress);
  timing_progress.advance(1);
  // --- 6. member features
  // -------------------------------------------------------------------------
  std::vector<std::string> feature_names = {
      "issued",          "claimed",      "orders",      "claim_rate",
      "claim_rate_lift", "recency_days", "tenure_days", "mean_interorder_days",
      "recency_cycles",  "orders_90d",   "p_alive",     "expected_purchases"};
  std::vector<float> features =
      member_features(counts, rates, posterior, timing_fit, cut_time, Dz, feature_names, threads);

  // --- commit ------------------------------------------------------------------------------------
  std::vector<float> base_rate(static_cast<std::size_t>(nb));
  for (Index b = 0; b < nb; ++b) {
    const auto k = static_cast<std::size_t>(b);
    base_rate[k] = static_cast<float>(
        (static_cast<double>(counts.benefit_claimed[k]) + 2.0 * rates.overall_rate) /
        (static_cast<double>(counts.benefit_issued[k]) + 2.0));
  }
  n_users_ = n;
  n_benefits_ = nb;
  n_dims_ = D;
  n_classes_ = K;
  cut_time_ = cut_time;
  covariate_names_ = std::move(cov_names);
  covariate_center_ = std::move(cov_center);
  covariate_scale_ = std::move(cov_scale);
  covariate_weight_ = std::move(classes.cov_w);
  member_table_report_ = table_report;
  dimension_names_ = dims.names();
  dimension_group_.resize(Dz);
  for (int d = 0; d < D; ++d)
    dimension_group_[static_cast<std::size_t>(d)] = static_cast<int>(dims.group_of(d));
  benefit_dim_offsets_ = std::move(layout.dim_offsets);
  benefit_dims_ = std::move(layout.dim_list);
  population_rate_ = std::move(rates.pop);
  prior_strength_ = std::move(strength);
  individual_spread_ = std::move(spread);
  class_rate_.assign(classes.theta.begin(), classes.theta.end());
  class_weight_.assign(classes.weight.begin(), classes.weight.end());
  membership_ = std::move(classes.resp);
  base_rate_ = std::move(base_rate);
  preference_ = std::move(posterior.pref);
  lower_ = std::move(posterior.lower);
  upper_ = std::move(posterior.upper);
  posterior_sd_ = std::move(posterior.sd);
  feature_names_ = std::move(feature_names);
  features_ = std::move(features);
  timing_ = std::move(timing_fit.timing);
  slot_offsets_ = std::move(counts.slot_offsets);
  slots_ = std::move(counts.slots);
  population_slots_ = std::move(timing_fit.pop_slots);
  bgnbd_ = timing_fit.bg;
  user_ids_ = IdMap();
  benefit_ids_ = IdMap();
  fitted_ = true;
}

PERKREC_INLINE void PreferenceModel::require_fitted(const char* method) const {
  if (!fitted_) detail::raise<InputError>("PreferenceModel::", method, ": the model is not fitted");
}

PERKREC_INLINE float PreferenceModel::preference(Index u, int d) const {
  require_fitted("preference");
  if (u < 0 || u >= n_users_ || d < 0 || d >= n_dims_) {
    detail::raise<InputError>("PreferenceModel::preference: (user, dimension) out of range (got (",
                              u, ", ", d, "), expected < (", n_users_, ", ", n_dims_, "))");
  }
  return preference_[static_cast<std::size_t>(u) * static_cast<std::size_t>(n_dims_) +
                     static_cast<std::size_t>(d)];
}

PERKREC_INLINE float PreferenceModel::member_score(Index u, Index b) const {
  const auto k = static_cast<std::size_t>(b);
  const float* p =
      preference_.data() + static_cast<std::size_t>(u) * static_cast<std::size_t>(n_dims_);
  double s = 0;
  int count = 0;
  for (auto i = benefit_dim_offsets_[k]; i < benefit_dim_offsets_[k + 1]; ++i) {
    s += std::log(std::max(1e-6f, p[benefit_dims_[static_cast<std::size_t>(i)]]));
    ++count;
  }
  return static_cast<float>(std::log(std::max(1e-6f, base_rate_[k])) +
                            (count > 0 ? s / count : 0.0));
}

PERKREC_INLINE std::vector<double> PreferenceModel::group_preferences(
    Span<const std::int32_t> group, std::int32_t n_groups) const {
  require_fitted("group_preferences");
  if (static_cast<Index>(group.size()) != n_users_) {
    detail::raise<InputError>("PreferenceModel::group_preferences: group has ", group.size(),
                              " entries (expected n_users = ", n_users_, ")");
  }
  if (n_groups < 0) {
    detail::raise<InputError>("PreferenceModel::group_preferences: n_groups must be >= 0 (got ",
                              n_groups, ")");
  }
  for (std::size_t u = 0; u < group.size(); ++u) {
    if (group[u] < -1 || group[u] >= n_groups) {
      detail::raise<InputError>("PreferenceModel::group_preferences: group of member ", u, " is ",
                                group[u], " (expected -1 or a code in [0, ", n_groups, "))");
    }
  }
  const auto D = static_cast<std::size_t>(n_dims_);
  const auto G = static_cast<std::size_t>(n_groups);
  std::vector<double> sums(G * D, 0.0);
  std::vector<Offset> members(G, 0);
  for (std::size_t u = 0; u < group.size(); ++u) {
    if (group[u] < 0) continue;
    const auto g = static_cast<std::size_t>(group[u]);
    ++members[g];
    const float* row = preference_.data() + u * D;
    for (std::size_t d = 0; d < D; ++d) sums[g * D + d] += static_cast<double>(row[d]);
  }
  for (std::size_t g = 0; g < G; ++g) {
    const double count = static_cast<double>(members[g]);
    for (std::size_t d = 0; d < D; ++d) {
      sums[g * D + d] =
          members[g] > 0 ? sums[g * D + d] / count : std::numeric_limits<double>::quiet_NaN();
    }
  }
  return sums;
}

PERKREC_INLINE void PreferenceModel::intervals(double level, std::vector<float>& lower,
                                               std::vector<float>& upper) const {
  require_fitted("intervals");
  if (!(level > 0 && level < 1)) {
    detail::raise<InputError>("PreferenceModel::intervals: level must be in (0, 1) (got ", level,
                              ")");
  }
  const double z = detail::pref::interval_quantile(level);
  const auto Dz = static_cast<std::size_t>(n_dims_);
  lower.resize(preference_.size());
  upper.resize(preference_.size());
  parallel_for(0, static_cast<Offset>(preference_.size()), params_.num_threads, [&](Offset io) {
    const auto i = static_cast<std::size_t>(io);
    const double pop = population_rate_[i % Dz];
    const double mean = static_cast<double>(preference_[i]) * pop;
    lower[i] = static_cast<float>(std::max(0.0, mean - z * posterior_sd_[i]) / pop);
    upper[i] = static_cast<float>(std::min(1.0, mean + z * posterior_sd_[i]) / pop);
  });
}

PERKREC_INLINE void PreferenceModel::score(Span<const Index> users, Span<const Index> benefits,
                                           Span<float> out) const {
  require_fitted("score");
  detail::check_score_pairs(users, benefits, out, n_users_, n_benefits_, "PreferenceModel");
  parallel_for(0, static_cast<Offset>(users.size()), params_.num_threads, [&](Offset i) {
    const auto k = static_cast<std::size_t>(i);
    out[k] = member_score(users[k], benefits[k]);
  });
}

PERKREC_INLINE TopK PreferenceModel::recommend(Span<const Index> users, int n,
                                               const Filter& filter) const {
  require_fitted("recommend");
  detail::check_users(users, n_users_, "PreferenceModel::recommend");
  return detail::batch_top_k(users, n, n_benefits_, filter, params_.num_threads,
                             [&](Index, Index u, float* out) {
                               for (Index b = 0; b < n_benefits_; ++b) out[b] = member_score(u, b);
                             });
}

PERKREC_INLINE SegmentAssignment PreferenceModel::segments(const SegmentRules& rules) const {
  require_fitted("segments");
  // Resolve every condition to a feature column, a dimension, or a group + value.
  struct Resolved {
    int feature = -1, dim = -1, group = -1, target_dim = -1;
  };
  std::vector<std::vector<Resolved>> resolved(rules.segments.size());
  static const char* kGroups[] = {"kind",  "face_value", "threshold",
                                  "scope", "scenario",   "channel"};
  // A numeric feature ("pref:<dimension>" or a member feature) or a "top:<group>" value.
  // With `lacking_ok`, a scenario or channel the catalog lacks resolves to nothing (no column).
  const auto resolve = [&](const std::string& feature, const std::string& text,
                           const std::string& where, bool lacking_ok = false) {
    Resolved r;
    if (feature.rfind("pref:", 0) == 0) {
      const std::string dim = feature.substr(5);
      for (int d = 0; d < n_dims_; ++d) {
        if (dimension_names_[static_cast<std::size_t>(d)] == dim) r.dim = d;
      }
      if (r.dim < 0 && lacking_ok &&
          (dim.rfind("scenario:", 0) == 0 || dim.rfind("channel:", 0) == 0)) {
        return r;
      }
      if (r.dim < 0)
        detail::raise<ConfigError>("PreferenceModel::segments: ", where, ": unknown dimension '",
                                   dim, "'");
    } else if (feature.rfind("top:", 0) == 0) {
      const std::string group = feature.substr(4);
      for (int g = 0; g < 6; ++g) {
        if (group == kGroups[g]) r.group = g;
      }
      if (r.group < 0)
        detail::raise<ConfigError>("PreferenceModel::segments: ", where, ": unknown group '", group,
                                   "'");
      const std::string full = group + ":" + text;
      for (int d = 0; d < n_dims_; ++d) {
        if (dimension_names_[static_cast<std::size_t>(d)] == full) r.target_dim = d;
      }
      if (r.target_dim < 0) {
        detail::raise<ConfigError>("PreferenceModel::segments: ", where, ": unknown value '", text,
                                   "' of group '", group, "'");
      }
    } else {
      for (std::size_t f = 0; f < feature_names_.size(); ++f) {
        if (feature_names_[f] == feature) r.feature = static_cast<int>(f);
      }
      if (r.feature < 0) {
        detail::raise<ConfigError>("PreferenceModel::segments: ", where, ": unknown feature '",
                                   feature, "'");
      }
    }
    return r;
  };
  std::vector<std::vector<Resolved>> resolved_terms(rules.segments.size());
  for (std::size_t s = 0; s < rules.segments.size(); ++s) {
    const std::string at = "/segments/" + std::to_string(s);
    for (std::size_t c = 0; c < rules.segments[s].all.size(); ++c) {
      const SegmentCondition& cond = rules.segments[s].all[c];
      resolved[s].push_back(
          resolve(cond.feature, cond.text, at + "/all/" + std::to_string(c) + "/feature"));
    }
    if (!rules.segments[s].scored) continue;
    for (std::size_t t = 0; t < rules.segments[s].score.terms.size(); ++t) {
      const std::string where = at + "/score/terms/" + std::to_string(t) + "/feature";
      resolved_terms[s].push_back(
          resolve(rules.segments[s].score.terms[t].feature, "", where, /*lacking_ok=*/true));
      if (resolved_terms[s].back().group >= 0) {
        detail::raise<ConfigError>("PreferenceModel::segments: ", where,
                                   ": a score term takes a numeric feature, not top:<group>");
      }
    }
  }
  const std::size_t F = feature_names_.size();
  const auto Dz = static_cast<std::size_t>(n_dims_);
  const auto value_of = [&](const Resolved& r, std::size_t u) -> double {
    return r.dim >= 0 ? preference_[u * Dz + static_cast<std::size_t>(r.dim)]
                      : features_[u * F + static_cast<std::size_t>(r.feature)];
  };
  // Relative thresholds: quantiles over the active members (any event before the cut), so the
  // rules follow the program rather than one program's absolute levels.
  SegmentAssignment out;
  out.resolved = rules;
  std::vector<std::uint8_t> active(static_cast<std::size_t>(n_users_), 0);
  {
    const auto feature_index = [&](const char* name) {
      const auto it = std::find(feature_names_.begin(), feature_names_.end(), name);
      return it == feature_names_.end() ? F : static_cast<std::size_t>(it - feature_names_.begin());
    };
    const std::size_t issued = feature_index("issued"), orders = feature_index("orders");
    for (std::size_t u = 0; u < active.size(); ++u) {
      active[u] = (issued < F && features_[u * F + issued] > 0) ||
                  (orders < F && features_[u * F + orders] > 0);
    }
    std::vector<double> values;
    const auto quantile_over_active = [&](const Resolved& r, double quantile) {
      values.clear();
      for (std::size_t u = 0; u < active.size(); ++u) {
        const double v = value_of(r, u);
        if (active[u] && !std::isnan(v)) values.push_back(v);
      }
      if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
      std::sort(values.begin(), values.end());
      const double pos = quantile * static_cast<double>(values.size() - 1);
      const auto lo = static_cast<std::size_t>(std::floor(pos));
      const std::size_t hi = std::min(values.size() - 1, lo + 1);
      return values[lo] + (pos - static_cast<double>(lo)) * (values[hi] - values[lo]);
    };
    for (std::size_t s = 0; s < rules.segments.size(); ++s) {
      for (std::size_t c = 0; c < rules.segments[s].all.size(); ++c) {
        SegmentCondition& cond = out.resolved.segments[s].all[c];
        if (cond.is_text || !cond.relative()) continue;
        cond.value = cond.times * quantile_over_active(resolved[s][c], cond.quantile);
        cond.quantile = std::numeric_limits<double>::quiet_NaN();
        cond.times = 1.0;
      }
      // A term's reference: the median over the active members; a median that is not > 0 (or
      // no value) leaves the reference NaN, and the term adds 0.
      for (std::size_t t = 0; t < resolved_terms[s].size(); ++t) {
        SegmentTerm& term = out.resolved.segments[s].score.terms[t];
        if (!term.relative() || (resolved_terms[s][t].dim < 0 && resolved_terms[s][t].feature < 0))
          continue;
        const double median = quantile_over_active(resolved_terms[s][t], 0.5);
        if (median > 0) term.reference = median;
      }
    }
  }
  const SegmentRules& rr = out.resolved;
  const std::size_t S = rules.segments.size();
  out.names = rules.names();
  for (const auto& s : rules.segments) out.descriptions.push_back(s.description);
  out.descriptions.push_back("no benefit preference stands out (no rule matched)");
  if (rules.min_confidence > 0) {
    out.descriptions.push_back(
        "no segment is probable enough (the member's preferences are too uncertain)");
  }
  out.codes.assign(static_cast<std::size_t>(n_users_), static_cast<std::int32_t>(S));
  out.confidence.assign(static_cast<std::size_t>(n_users_), 1.0f);
  // The sd of a preference from its interval (its half-width in sds at level `interval`).
  const double z = detail::pref::interval_quantile(params_.interval);
  // Pass 1, per member: the "all" rules' outcome and the raw scores (column S: the default, 0).
  const std::size_t S1 = S + 1;
  const auto n = static_cast<std::size_t>(n_users_);
  std::vector<double> raw_score(n * S1, 0.0);
  std::vector<std::int32_t> all_code(n);
  std::vector<double> all_chosen(n), all_best(n), all_none(n);
  parallel_for(0, n_users_, params_.num_threads, [&](Offset uo) {
    const auto u = static_cast<std::size_t>(uo);
    const float* pref = preference_.data() + u * Dz;
    // P(condition) under the member's posterior: preference conditions through the interval,
    // everything else as observed (0 or 1). Conditions of one rule are taken as independent.
    std::vector<double> p_rule(S, 1.0);
    std::vector<std::uint8_t> holds_rule(S, 1);  // every condition holds on the point estimates
    for (std::size_t s = 0; s < S; ++s) {
      for (std::size_t c = 0; c < resolved[s].size() && p_rule[s] > 0; ++c) {
        const SegmentCondition& cond = rr.segments[s].all[c];
        const Resolved& r = resolved[s][c];
        if (r.group >= 0) {
          int top = -1;
          for (int d = 0; d < n_dims_; ++d) {
            if (dimension_group_[static_cast<std::size_t>(d)] == r.group &&
                (top < 0 || pref[d] > pref[top]))
              top = d;
          }
          const bool eq = top == r.target_dim;
          if (!(cond.op == SegmentCondition::Op::eq ? eq : !eq)) holds_rule[s] = 0, p_rule[s] = 0;
          continue;
        }
        const double v = value_of(r, u);
        if (std::isnan(v) || std::isnan(cond.value)) {
          holds_rule[s] = 0;
          p_rule[s] = 0;
          continue;
        }
        bool holds = false;
        switch (cond.op) {
          case SegmentCondition::Op::lt:
            holds = v < cond.value;
            break;
          case SegmentCondition::Op::le:
            holds = v <= cond.value;
            break;
          case SegmentCondition::Op::gt:
            holds = v > cond.value;
            break;
          case SegmentCondition::Op::ge:
            holds = v >= cond.value;
            break;
          case SegmentCondition::Op::eq:
            holds = v == cond.value;
            break;
          case SegmentCondition::Op::ne:
            holds = v != cond.value;
            break;
        }
        if (!holds) holds_rule[s] = 0;
        double p = holds ? 1.0 : 0.0;
        const bool ordered =
            cond.op != SegmentCondition::Op::eq && cond.op != SegmentCondition::Op::ne;
        if (r.dim >= 0 && ordered) {
          const std::size_t cell = u * Dz + static_cast<std::size_t>(r.dim);
          const double sd = (static_cast<double>(upper_[cell]) - lower_[cell]) / (2.0 * z);
          if (sd > 0) {
            const bool above =
                cond.op == SegmentCondition::Op::gt || cond.op == SegmentCondition::Op::ge;
            p = normal_cdf((above ? v - cond.value : cond.value - v) / sd);
          }
        }
        p_rule[s] *= p;
      }
    }
    // First match of the "all" rules on the point estimates; the probability of each follows
    // the same order: P(s) = P(rule s) x prod over earlier rules of (1 - P(rule)). The members
    // no rule takes are shared by the scored segments and the default (score 0) by a softmax.
    std::int32_t code = static_cast<std::int32_t>(S);
    double none_before = 1.0, best = 0.0, chosen = -1.0;
    for (std::size_t s = 0; s < S; ++s) {
      if (rules.segments[s].scored) continue;
      const double ps = none_before * p_rule[s];
      best = std::max(best, ps);
      if (code == static_cast<std::int32_t>(S) && holds_rule[s]) {
        code = static_cast<std::int32_t>(s);
        chosen = ps;
      }
      none_before *= 1.0 - p_rule[s];
    }
    all_code[u] = code;
    all_chosen[u] = chosen;
    all_best[u] = best;
    all_none[u] = none_before;
    for (std::size_t s = 0; s < S; ++s) {
      if (!rules.segments[s].scored) continue;
      const SegmentScore& sc = rr.segments[s].score;
      double total = sc.bias;
      for (std::size_t t = 0; t < sc.terms.size(); ++t) {
        const double ref = sc.terms[t].reference;
        const Resolved& r = resolved_terms[s][t];
        if (r.dim < 0 && r.feature < 0) continue;  // a scenario or channel the catalog lacks
        const double v = value_of(r, u);
        if (std::isnan(v) || !(ref > 0)) continue;
        total += sc.terms[t].weight * std::log(std::max(v, 0.01 * ref) / ref);
      }
      raw_score[u * S1 + s] = total;
    }
  });
  // Calibration by the latent classes (segments.hpp): log(sum_k m_uk q_ks / pi_s) per segment,
  // with q and pi from the members the scored segments compete for. Block sums reduced in
  // block order keep the result independent of the thread count.
  const auto K = static_cast<std::size_t>(n_classes_);
  std::vector<std::uint8_t> competes(S1, 0);  // scored segments and the default
  for (std::size_t s = 0; s < S; ++s) competes[s] = rules.segments[s].scored ? 1 : 0;
  competes[S] = 1;
  bool any_scored = false;
  for (std::size_t s = 0; s < S; ++s) any_scored = any_scored || competes[s];
  const SegmentCalibration& cal = rules.calibration;
  std::vector<double> class_share;  // K x S1: q_ks / pi_s; empty = no calibration
  // Scores of member u (calibrated when class_share is set) into score[0..S], default at 0.
  const auto member_scores = [&](std::size_t u, double* score) {
    const double* raw = raw_score.data() + u * S1;
    for (std::size_t s = 0; s < S1; ++s) score[s] = raw[s];
    if (class_share.empty()) return;
    const float* m = membership_.data() + u * K;
    const auto evidence = [&](std::size_t s) {
      double e = 0.0;
      for (std::size_t k = 0; k < K; ++k) e += m[k] * class_share[k * S1 + s];
      return cal.strength * std::log(std::max(e, 1e-3));
    };
    const double base = evidence(S);  // the default's: it keeps scoring 0
    for (std::size_t s = 0; s < S; ++s) {
      if (competes[s]) score[s] += evidence(s) - base;
    }
  };
  if (cal.enabled() && any_scored && K > 1) {
    constexpr std::size_t kBlock = 4096;
    const std::size_t blocks = (n + kBlock - 1) / kBlock;
    const std::size_t width = K * S1 + K + S1;  // sum_u m_uk p_us, sum_u m_uk, sum_u p_us
    std::vector<double> block_sums(blocks * width);
    for (int it = 0; it < cal.iterations; ++it) {
      std::fill(block_sums.begin(), block_sums.end(), 0.0);
      parallel_for(0, static_cast<Offset>(blocks), params_.num_threads, [&](Offset bo) {
        const auto blk = static_cast<std::size_t>(bo);
        double* sums = block_sums.data() + blk * width;
        std::vector<double> score(S1), p(S1);
        for (std::size_t u = blk * kBlock; u < std::min(n, (blk + 1) * kBlock); ++u) {
          if (!active[u] || all_code[u] != static_cast<std::int32_t>(S)) continue;
          member_scores(u, score.data());
          double top = -std::numeric_limits<double>::infinity(), total = 0.0;
          for (std::size_t s = 0; s < S1; ++s)
            if (competes[s]) top = std::max(top, score[s]);
          for (std::size_t s = 0; s < S1; ++s) {
            p[s] = competes[s] ? std::exp(score[s] - top) : 0.0;
            total += p[s];
          }
          const float* m = membership_.data() + u * K;
          for (std::size_t s = 0; s < S1; ++s) {
            p[s] /= total;
            sums[K * S1 + K + s] += p[s];
          }
          for (std::size_t k = 0; k < K; ++k) {
            sums[K * S1 + k] += m[k];
            for (std::size_t s = 0; s < S1; ++s) sums[k * S1 + s] += m[k] * p[s];
          }
        }
      });
      std::vector<double> sums(width, 0.0);
      for (std::size_t blk = 0; blk < blocks; ++blk) {  // fixed block order
        for (std::size_t i = 0; i < width; ++i) sums[i] += block_sums[blk * width + i];
      }
      double members = 0.0;
      for (std::size_t s = 0; s < S1; ++s) members += sums[K * S1 + K + s];
      if (!(members > 0)) break;  // nobody competes: nothing to calibrate
      std::vector<double> next(K * S1, 1.0);
      for (std::size_t k = 0; k < K; ++k) {
        const double mass = sums[K * S1 + k];
        for (std::size_t s = 0; s < S1; ++s) {
          const double share = sums[K * S1 + K + s] / members;
          // A class no competing member belongs to, or a segment nobody takes: no evidence.
          if (competes[s] && mass > 0 && share > 0)
            next[k * S1 + s] = sums[k * S1 + s] / mass / share;
        }
      }
      class_share = std::move(next);
    }
  }
  // Pass 2: the scored segments and the default share the members no rule takes by a softmax.
  parallel_for(0, n_users_, params_.num_threads, [&](Offset uo) {
    const auto u = static_cast<std::size_t>(uo);
    std::vector<double> score(S1);
    member_scores(u, score.data());
    std::int32_t code = all_code[u];
    double chosen = all_chosen[u], best = all_best[u];
    const double none_before = all_none[u];
    double top_score = 0.0;  // the default's
    std::int32_t top = static_cast<std::int32_t>(S);
    for (std::size_t s = 0; s < S; ++s) {
      if (!rules.segments[s].scored) continue;
      if (score[s] - score[S] > top_score)
        top_score = score[s] - score[S], top = static_cast<std::int32_t>(s);
    }
    for (std::size_t s = 0; s < S; ++s) score[s] -= score[S];
    double normaliser = std::exp(-top_score);  // the default's exp(0), shifted by the top score
    for (std::size_t s = 0; s < S; ++s) {
      if (rules.segments[s].scored) normaliser += std::exp(score[s] - top_score);
    }
    for (std::size_t s = 0; s < S; ++s) {
      if (rules.segments[s].scored) {
        best = std::max(best, none_before * std::exp(score[s] - top_score) / normaliser);
      }
    }
    const double p_default = none_before * std::exp(-top_score) / normaliser;
    best = std::max(best, p_default);
    if (code == static_cast<std::int32_t>(S)) {
      code = top;
      chosen = none_before / normaliser;  // the top segment's share: exp(0) / normaliser
    }
    out.confidence[u] = static_cast<float>(chosen);
    if (rules.min_confidence > 0 && best < rules.min_confidence)
      code = static_cast<std::int32_t>(S + 1);
    out.codes[u] = code;
  });
  out.sizes.assign(out.names.size(), 0);
  for (auto c : out.codes) ++out.sizes[static_cast<std::size_t>(c)];
  return out;
}

PERKREC_INLINE PreferenceClusters PreferenceModel::clusters(int k, int max_iterations) const {
  require_fitted("clusters");
  if (k < 1 || k > n_users_) {
    detail::raise<InputError>("PreferenceModel::clusters: k must be in [1, n_users] (got ", k,
                              ", n_users ", n_users_, ")");
  }
  const auto Dz = static_cast<std::size_t>(n_dims_);
  std::vector<float> logs(preference_.size());
  for (std::size_t i = 0; i < logs.size(); ++i) logs[i] = std::log(std::max(1e-6f, preference_[i]));
  PreferenceClusters out;
  out.kmeans =
      kmeans(logs.data(), n_users_, n_dims_, k, params_.seed, max_iterations, params_.num_threads);
  std::vector<double> overall(Dz, 0.0);
  for (std::size_t i = 0; i < logs.size(); ++i) overall[i % Dz] += logs[i];
  for (double& v : overall) v /= std::max<Index>(1, n_users_);
  for (int c = 0; c < k; ++c) {
    std::vector<std::pair<double, int>> diff;
    for (std::size_t d = 0; d < Dz; ++d) {
      diff.emplace_back(out.kmeans.centroids[static_cast<std::size_t>(c) * Dz + d] - overall[d],
                        static_cast<int>(d));
    }
    std::sort(diff.begin(), diff.end(), [](const auto& a, const auto& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    });
    std::string text;
    for (std::size_t i = 0; i < std::min<std::size_t>(3, diff.size()); ++i) {
      char buf[96];
      std::snprintf(buf, sizeof(buf), "%s%s x%.2f", i ? ", " : "",
                    dimension_names_[static_cast<std::size_t>(diff[i].second)].c_str(),
                    std::exp(diff[i].first));
      text += buf;
    }
    out.descriptions.push_back(text);
  }
  return out;
}

PERKREC_INLINE std::array<float, PreferenceModel::kSlots> PreferenceModel::hour_of_week_profile(
    Index u) const {
  require_fitted("hour_of_week_profile");
  detail::check_users(Span<const Index>(&u, 1), n_users_, "PreferenceModel::hour_of_week_profile");
  std::array<float, kSlots> out{};
  const auto row = static_cast<std::size_t>(u);
  const double alpha = params_.timing_prior_strength;
  const double count = static_cast<double>(slot_offsets_[row + 1] - slot_offsets_[row]);
  std::array<double, kSlots> post{};
  for (int k = 0; k < kSlots; ++k)
    post[static_cast<std::size_t>(k)] = alpha * population_slots_[static_cast<std::size_t>(k)];
  for (Offset e = slot_offsets_[row]; e < slot_offsets_[row + 1]; ++e)
    post[slots_[static_cast<std::size_t>(e)]] += 1.0;
  for (int k = 0; k < kSlots; ++k)
    out[static_cast<std::size_t>(k)] =
        static_cast<float>(post[static_cast<std::size_t>(k)] / (count + alpha));
  return out;
}

PERKREC_INLINE void PreferenceModel::set_ids(IdMap users, IdMap benefits) {
  require_fitted("set_ids");
  detail::check_id_maps(users, benefits, n_users_, n_benefits_, "PreferenceModel");
  user_ids_ = std::move(users);
  benefit_ids_ = std::move(benefits);
}

PERKREC_INLINE void PreferenceModel::write(ModelWriter& w, const std::string& prefix) const {
  require_fitted("save");
  Json& c = content_section(w, prefix);
  c["params"] = params_.to_json();
  c["n_users"] = n_users_;
  c["n_benefits"] = n_benefits_;
  c["n_dimensions"] = n_dims_;
  c["n_classes"] = n_classes_;
  c["n_features"] = feature_names_.size();
  c["n_covariates"] =
      covariate_weight_.empty() ? -1 : static_cast<std::int64_t>(covariate_names_.size());
  c["cut_time"] = cut_time_;
  c["bgnbd"] = Json{{"r", bgnbd_.r}, {"alpha", bgnbd_.alpha}, {"a", bgnbd_.a}, {"b", bgnbd_.b}};
  w.add_strings(prefix + "dimension_names", dimension_names_);
  w.add_strings(prefix + "feature_names", feature_names_);
  std::vector<std::int32_t> groups(dimension_group_.begin(), dimension_group_.end());
  w.add(prefix + "dimension_group", groups);
  w.add(prefix + "benefit_dim_offsets", benefit_dim_offsets_);
  w.add(prefix + "benefit_dims", benefit_dims_);
  w.add(prefix + "population_rate", population_rate_);
  w.add(prefix + "prior_strength", prior_strength_);
  w.add(prefix + "individual_spread", individual_spread_);
  w.add(prefix + "class_rate", class_rate_);
  w.add(prefix + "class_weight", class_weight_);
  w.add(prefix + "membership", membership_);
  w.add_strings(prefix + "covariate_names", covariate_names_);
  w.add(prefix + "covariate_center", covariate_center_);
  w.add(prefix + "covariate_scale", covariate_scale_);
  w.add(prefix + "covariate_weight", covariate_weight_);
  w.add(prefix + "base_rate", base_rate_);
  w.add(prefix + "preference", preference_);
  w.add(prefix + "lower", lower_);
  w.add(prefix + "upper", upper_);
  w.add(prefix + "posterior_sd", posterior_sd_);
  w.add(prefix + "features", features_);
  std::vector<std::int32_t> best(timing_.size());
  std::vector<float> timing_values(timing_.size() * 5);
  for (std::size_t u = 0; u < timing_.size(); ++u) {
    best[u] = timing_[u].best_slot;
    timing_values[u * 5 + 0] = timing_[u].next_purchase_days;
    timing_values[u * 5 + 1] = timing_[u].send_in_days;
    timing_values[u * 5 + 2] = timing_[u].validity_days;
    timing_values[u * 5 + 3] = timing_[u].p_alive;
    timing_values[u * 5 + 4] = timing_[u].expected_purchases;
  }
  w.add(prefix + "best_slot", best);
  w.add(prefix + "timing", timing_values);
  w.add(prefix + "slot_offsets", slot_offsets_);
  w.add(prefix + "slots", slots_);
  w.add(prefix + "population_slots", population_slots_);
  user_ids_.write(w, prefix + "user_ids.");
  benefit_ids_.write(w, prefix + "benefit_ids.");
}

PERKREC_INLINE PreferenceModel PreferenceModel::read(const ModelReader& r,
                                                     const std::string& prefix) {
  const Json& c = content_section(r, prefix);
  JsonReader<ModelFormatError> jr(c, content_pointer(prefix), "PreferenceModel::read");
  Json params_json, bg_json;
  Index n_users = 0, n_benefits = 0;
  int n_dims = 0, n_classes = 0;
  std::int64_t n_features = 0;
  Timestamp cut = 0;
  jr.require("params", params_json);
  jr.require("n_users", n_users);
  jr.require("n_benefits", n_benefits);
  jr.require("n_dimensions", n_dims);
  jr.require("n_classes", n_classes);
  jr.require("n_features", n_features);
  std::int64_t n_cov = -1;
  jr.require("n_covariates", n_cov);
  jr.require("cut_time", cut);
  jr.require("bgnbd", bg_json);
  if (prefix.empty()) {
    jr.raw("user_ids.");
    jr.raw("benefit_ids.");
  }
  jr.finish();
  if (n_users < 0 || n_benefits < 0 || n_dims < 0 || n_classes < 1 || n_classes > 64 ||
      n_features < 0 || n_features > 1024) {
    r.bad_content("shape out of range");
  }
  const PreferenceParams params = read_params<PreferenceParams>(r, params_json);
  BGNBD bg;
  {
    JsonReader<ModelFormatError> br(bg_json, content_pointer(prefix) + "/bgnbd",
                                    "PreferenceModel::read");
    br.require("r", bg.r);
    br.require("alpha", bg.alpha);
    br.require("a", bg.a);
    br.require("b", bg.b);
    br.finish();
  }
  const auto nu = static_cast<std::int64_t>(n_users), nd = static_cast<std::int64_t>(n_dims);
  PreferenceModel m(params);
  m.dimension_names_ = r.strings(prefix + "dimension_names");
  m.feature_names_ = r.strings(prefix + "feature_names");
  if (static_cast<int>(m.dimension_names_.size()) != n_dims ||
      static_cast<std::int64_t>(m.feature_names_.size()) != n_features) {
    r.invalid("dimension or feature names do not match the header");
  }
  std::vector<std::int32_t> groups = r.vector<std::int32_t>(prefix + "dimension_group", {nd});
  for (auto g : groups) {
    if (g < 0 || g >= BenefitDimensions::kNumGroups) r.invalid("dimension group out of range");
  }
  m.dimension_group_.assign(groups.begin(), groups.end());
  m.benefit_dim_offsets_ = r.vector<std::int32_t>(prefix + "benefit_dim_offsets",
                                                  {static_cast<std::int64_t>(n_benefits) + 1});
  if (m.benefit_dim_offsets_.front() != 0) r.invalid("benefit_dim_offsets must start at 0");
  for (std::size_t i = 1; i < m.benefit_dim_offsets_.size(); ++i) {
    if (m.benefit_dim_offsets_[i] < m.benefit_dim_offsets_[i - 1])
      r.invalid("benefit_dim_offsets must not decrease");
  }
  m.benefit_dims_ = r.vector<std::int32_t>(
      prefix + "benefit_dims", {static_cast<std::int64_t>(m.benefit_dim_offsets_.back())});
  for (auto d : m.benefit_dims_) {
    if (d < 0 || d >= n_dims) r.invalid("benefit dimension index out of range");
  }
  m.population_rate_ = r.vector<double>(prefix + "population_rate", {nd});
  m.prior_strength_ = r.vector<double>(prefix + "prior_strength", {nd});
  if (r.has(prefix + "individual_spread")) {  // absent from files of before issue 16
    m.individual_spread_ =
        r.vector<double>(prefix + "individual_spread", {static_cast<std::int64_t>(n_classes) * nd});
  }
  m.class_rate_ =
      r.vector<float>(prefix + "class_rate", {static_cast<std::int64_t>(n_classes) * nd});
  m.class_weight_ = r.vector<float>(prefix + "class_weight", {n_classes});
  m.membership_ = r.vector<float>(prefix + "membership", {nu * n_classes});
  if (n_cov < -1 || n_cov > 100000) r.bad_content("n_covariates out of range");
  m.covariate_names_ = r.strings(prefix + "covariate_names");
  if (static_cast<std::int64_t>(m.covariate_names_.size()) != std::max<std::int64_t>(n_cov, 0)) {
    r.invalid("covariate names do not match the header");
  }
  m.covariate_center_ =
      r.vector<double>(prefix + "covariate_center", {std::max<std::int64_t>(n_cov, 0)});
  m.covariate_scale_ =
      r.vector<double>(prefix + "covariate_scale", {std::max<std::int64_t>(n_cov, 0)});
  m.covariate_weight_ =
      r.vector<double>(prefix + "covariate_weight", {n_cov < 0 ? 0 : n_classes * (n_cov + 1)});
  for (double v : m.covariate_scale_) {
    if (!(v > 0) || !std::isfinite(v)) r.invalid("covariate scale is not a positive finite number");
  }
  m.base_rate_ = r.vector<float>(prefix + "base_rate", {n_benefits});
  m.preference_ = r.vector<float>(prefix + "preference", {nu * nd});
  m.lower_ = r.vector<float>(prefix + "lower", {nu * nd});
  m.upper_ = r.vector<float>(prefix + "upper", {nu * nd});
  if (r.has(prefix + "posterior_sd")) {
    m.posterior_sd_ = r.vector<float>(prefix + "posterior_sd", {nu * nd});
  } else {  // a file from before posterior_sd was stored: the sd behind the upper bound
    m.posterior_sd_.resize(m.upper_.size());
    const double z = inverse_normal_cdf(0.5 * (1.0 + m.params_.interval));
    for (std::size_t i = 0; i < m.upper_.size(); ++i) {
      const double pop = m.population_rate_[i % static_cast<std::size_t>(nd)];
      m.posterior_sd_[i] = static_cast<float>(
          std::max(0.0, (static_cast<double>(m.upper_[i]) - m.preference_[i]) * pop / z));
    }
  }
  m.features_ = r.vector<float>(prefix + "features", {nu * n_features});
  for (float v : m.base_rate_) {
    if (!(v > 0 && v < 1)) r.invalid("benefit base rate outside (0, 1)");
  }
  for (float v : m.preference_) {
    if (!std::isfinite(v) || v < 0) r.invalid("preference is not a finite non-negative number");
  }
  // Every other number the model computes with must be finite, and intervals ordered.
  const auto all_finite = [&](const auto& values, const char* name) {
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (!std::isfinite(values[i]))
        r.invalid(detail::concat("array '", name, "' holds a non-finite value at position ", i));
    }
  };
  all_finite(m.population_rate_, "population_rate");
  all_finite(m.prior_strength_, "prior_strength");
  all_finite(m.individual_spread_, "individual_spread");
  for (double v : m.individual_spread_) {
    if (v < 0) r.invalid("individual_spread holds a negative variance");
  }
  all_finite(m.class_rate_, "class_rate");
  all_finite(m.class_weight_, "class_weight");
  all_finite(m.membership_, "membership");
  all_finite(m.covariate_center_, "covariate_center");
  all_finite(m.covariate_weight_, "covariate_weight");
  all_finite(m.lower_, "lower");
  all_finite(m.upper_, "upper");
  all_finite(m.posterior_sd_, "posterior_sd");
  for (std::size_t i = 0; i < m.posterior_sd_.size(); ++i) {
    if (m.posterior_sd_[i] < 0) r.invalid(detail::concat("posterior_sd ", i, " is negative"));
  }
  // (features may hold NaN: a member's missing value, e.g. the gap between orders of a member
  // with one order)
  for (std::size_t i = 0; i < m.lower_.size(); ++i) {
    if (m.lower_[i] > m.upper_[i]) r.invalid(detail::concat("interval ", i, " has lower > upper"));
  }
  std::vector<std::int32_t> best = r.vector<std::int32_t>(prefix + "best_slot", {nu});
  std::vector<float> tv = r.vector<float>(prefix + "timing", {nu * 5});
  all_finite(tv, "timing");
  m.timing_.resize(static_cast<std::size_t>(n_users));
  for (std::size_t u = 0; u < m.timing_.size(); ++u) {
    if (best[u] < 0 || best[u] >= kSlots) r.invalid("best slot out of range");
    m.timing_[u] = MemberTiming{best[u],       tv[u * 5],     tv[u * 5 + 1],
                                tv[u * 5 + 2], tv[u * 5 + 3], tv[u * 5 + 4]};
  }
  m.slot_offsets_ = r.vector<Offset>(prefix + "slot_offsets", {nu + 1});
  if (m.slot_offsets_.front() != 0) r.invalid("slot_offsets must start at 0");
  for (std::size_t i = 1; i < m.slot_offsets_.size(); ++i) {
    if (m.slot_offsets_[i] < m.slot_offsets_[i - 1]) r.invalid("slot_offsets must not decrease");
  }
  m.slots_ = r.vector<std::uint8_t>(prefix + "slots", {m.slot_offsets_.back()});
  for (auto s : m.slots_) {
    if (s >= kSlots) r.invalid("slot out of range");
  }
  m.population_slots_ = r.vector<double>(prefix + "population_slots", {kSlots});
  all_finite(m.population_slots_, "population_slots");
  for (double v : {bg.r, bg.alpha, bg.a, bg.b}) {
    if (!(v > 0) || !std::isfinite(v)) r.bad_content("bgnbd parameters must be finite and > 0");
  }
  m.bgnbd_ = bg;
  m.n_users_ = n_users;
  m.n_benefits_ = n_benefits;
  m.n_dims_ = n_dims;
  m.n_classes_ = n_classes;
  m.cut_time_ = cut;
  m.fitted_ = true;
  try {
    m.set_ids(IdMap::read(r, prefix + "user_ids."), IdMap::read(r, prefix + "benefit_ids."));
  } catch (const InputError& e) {
    r.invalid(e.what());
  }
  return m;
}

}  // namespace perkrec
