// Definitions for feature_encoder.hpp.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <unordered_map>
#include <utility>

#include "perkrec/core/error.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/detail/numpy_sum.hpp"
#include "perkrec/features/feature_encoder.hpp"

namespace perkrec {

PERKREC_INLINE const std::vector<std::string>& history_aggregate_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    const char* scopes[4] = {"member", "member_kind", "member_band", "benefit"};
    const char* types[3] = {"issued", "claimed", "redeemed"};
    for (const char* s : scopes) {
      for (const char* t : types) n.push_back(std::string(s) + "_" + t);
    }
    n.push_back("member_ordered");
    for (const char* s : scopes) {
      n.push_back(std::string(s) + "_redemption_rate");
      n.push_back(std::string(s) + "_claim_rate");
    }
    // Member x channel (appended, so the indices above keep their meaning).
    for (const char* t : {"issued", "viewed", "claimed", "redeemed"})
      n.push_back(std::string("member_channel_") + t);
    for (const char* r : {"view_rate", "claim_rate", "redemption_rate"})
      n.push_back(std::string("member_channel_") + r);
    // The member's order timing (appended too).
    for (const char* t : {"days_since", "interval_days", "overdue"})
      n.push_back(std::string("order_") + t);
    return n;
  }();
  return names;
}

namespace detail {

// ---- numpy / pandas-exact numerics ---------------------------------------------------------
// The Python package's reference encoder is numpy code; these reproduce its arithmetic bit for
// bit so both give identical matrices.

/// np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1])) of finite values (linear
/// method); `x` is reordered.
PERKREC_INLINE std::vector<double> numpy_quantile_edges(std::vector<double>& x, int bins) {
  std::vector<double> edges;
  const Offset n = static_cast<Offset>(x.size());
  if (n == 0 || bins <= 1) return edges;
  const double step = 1.0 / static_cast<double>(bins);
  std::vector<double> virtual_index(static_cast<std::size_t>(bins - 1));
  std::vector<Offset> wanted;
  for (int i = 1; i < bins; ++i) {
    const double q = static_cast<double>(i) * step + 0.0;
    const double v = static_cast<double>(n - 1) * q;
    virtual_index[static_cast<std::size_t>(i - 1)] = v;
    if (v >= static_cast<double>(n - 1)) {
      wanted.push_back(n - 1);
    } else {
      const auto lo = static_cast<Offset>(std::floor(v));
      wanted.push_back(lo);
      wanted.push_back(lo + 1);
    }
  }
  std::sort(wanted.begin(), wanted.end());
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  // Successive selections: each order statistic is found in the part right of the previous.
  Offset from = 0;
  for (Offset w : wanted) {
    std::nth_element(x.begin() + from, x.begin() + w, x.end());
    from = w + 1;
  }
  for (double v : virtual_index) {
    double a, b, gamma;
    if (v >= static_cast<double>(n - 1)) {
      a = b = x[static_cast<std::size_t>(n - 1)];
      gamma = 0.0;
    } else {
      const double lo = std::floor(v);
      a = x[static_cast<std::size_t>(lo)];
      b = x[static_cast<std::size_t>(lo) + 1];
      gamma = v - lo;
    }
    const double diff = b - a;
    edges.push_back(gamma >= 0.5 ? b - diff * (1.0 - gamma) : a + diff * gamma);
  }
  std::sort(edges.begin(), edges.end());
  edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
  return edges;
}

/// searchsorted(edges, x, side="right"), non-finite x -> edges + 1.
inline Index bucket_of(const std::vector<double>& edges, double x) {
  if (!std::isfinite(x)) return static_cast<Index>(edges.size()) + 1;
  return static_cast<Index>(std::upper_bound(edges.begin(), edges.end(), x) - edges.begin());
}

/// sign(x) log1p(|x|): the value of a continuous history / behavior feature before scaling.
inline double slog1p(double x) { return std::copysign(std::log1p(std::fabs(x)), x); }

/// Mean and population std (1 when 0 or when there is nothing) of slog1p over the finite `x`,
/// summed pairwise in order (deterministic).
inline void slog1p_scaling(const std::vector<double>& x, double& mean, double& sd) {
  std::vector<double> v;
  v.reserve(x.size());
  for (double e : x) {
    if (std::isfinite(e)) v.push_back(slog1p(e));
  }
  const auto n = static_cast<Offset>(v.size());
  mean = 0.0;
  sd = 1.0;
  if (n == 0) return;
  mean = numpy_pairwise_sum(v.data(), n) / static_cast<double>(n);
  for (auto& e : v) e = (e - mean) * (e - mean);
  sd = std::sqrt(numpy_pairwise_sum(v.data(), n) / static_cast<double>(n));
  if (!(sd > 0.0)) sd = 1.0;
}

/// Row entries per aggregate of a history / behavior field: the bucket and / or the value.
inline int entries_per_aggregate(const FeatureField& f) {
  return f.bins > 0 && f.continuous ? 2 : 1;
}

inline std::uint64_t rotl64(std::uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

/// SipHash-2-4 of `data` under a 16-byte key (pandas' hashing.pyx).
inline std::uint64_t siphash24(const unsigned char* data, std::size_t len,
                               const unsigned char key[16]) {
  auto load64 = [](const unsigned char* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
  };
  const std::uint64_t k0 = load64(key), k1 = load64(key + 8);
  std::uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
  std::uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
  auto round = [&] {
    v0 += v1;
    v1 = rotl64(v1, 13);
    v1 ^= v0;
    v0 = rotl64(v0, 32);
    v2 += v3;
    v3 = rotl64(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl64(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl64(v1, 17);
    v1 ^= v2;
    v2 = rotl64(v2, 32);
  };
  const std::size_t end = len - (len % 8);
  for (std::size_t i = 0; i < end; i += 8) {
    const std::uint64_t m = load64(data + i);
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
  std::uint64_t b = static_cast<std::uint64_t>(len) << 56;
  for (std::size_t i = 0; i < len % 8; ++i)
    b |= static_cast<std::uint64_t>(data[end + i]) << (8 * i);
  v3 ^= b;
  round();
  round();
  v0 ^= b;
  v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) round();
  return v0 ^ v1 ^ v2 ^ v3;
}

/// pandas.util.hash_array of one string (categorize=True): SipHash, then the 64-bit mix.
PERKREC_INLINE std::uint64_t pandas_string_hash(const std::string& s) {
  static const unsigned char key[16] = {'0', '1', '2', '3', '4', '5', '6', '7',
                                        '8', '9', '1', '2', '3', '4', '5', '6'};
  std::uint64_t v = siphash24(reinterpret_cast<const unsigned char*>(s.data()), s.size(), key);
  v ^= v >> 30;
  v *= 0xbf58476d1ce4e5b9ULL;
  v ^= v >> 27;
  v *= 0x94d049bb133111ebULL;
  v ^= v >> 31;
  return v;
}

/// The string numpy's astype(str) gives a missing value in an object array (hashed fields).
inline const std::string& missing_string() {
  static const std::string nan = "nan";
  return nan;
}

// ---- history counts ------------------------------------------------------------------------
// kHistoryCounts (19) counts per sample, row-major: scope s (member, member_kind, member_band,
// benefit) x type t (issued, claimed, redeemed) at s * 3 + t, member_ordered at 12, then member x
// channel issued, viewed, claimed, redeemed at 13..16, then whole minutes from the member's last
// order to the sample at 17 and from the first order to the last at 18 (both -1 without an order).
inline constexpr int kHistoryCounts = 19;
inline constexpr int kScopeAggregates = 21;   // the 13 counts above 13, then 8 scope rates
inline constexpr int kChannelAggregates = 7;  // member x channel: 4 counts, 3 rates

inline double history_value(const std::int32_t* c, int aggregate) {
  if (aggregate < 13) return static_cast<double>(c[aggregate]);
  if (aggregate < kScopeAggregates) {
    const int r = aggregate - 13;  // scope * 2 + (0 redemption, 1 claim)
    const int s = r / 2;
    const double issued = static_cast<double>(c[s * 3 + 0]);
    const double num = static_cast<double>(c[s * 3 + ((r % 2) == 0 ? 2 : 1)]);
    return (num + 0.1) / (issued + 1.0);
  }
  const int a = aggregate - kScopeAggregates;  // 0..3 channel counts, 4..6 channel rates
  if (a >= kChannelAggregates) {               // order timing: days since, interval days, overdue
    const int orders = c[12];
    const double since = orders > 0 ? static_cast<double>(c[17]) / 1440.0 : kBehaviorNeverDays;
    const double interval =
        orders > 1 ? static_cast<double>(c[18]) / 1440.0 / (orders - 1) : kBehaviorNeverDays;
    if (a == kChannelAggregates) return since;
    if (a == kChannelAggregates + 1) return interval;
    return orders > 1 ? since / std::max(interval, 1.0 / 24.0) : 0.0;
  }
  if (a < 4) return static_cast<double>(c[13 + a]);
  const double issued = static_cast<double>(c[13]);
  const double num = static_cast<double>(c[13 + (a == 4   ? 1
                                                 : a == 5 ? 2
                                                          : 3)]);  // viewed, claimed, redeemed
  return (num + 0.1) / (issued + 1.0);
}

/// Whole minutes of a non-negative span of seconds, saturated at the int32 maximum.
inline std::int32_t whole_minutes(Timestamp seconds) {
  const Timestamp m = seconds / 60;
  return m > std::numeric_limits<std::int32_t>::max() ? std::numeric_limits<std::int32_t>::max()
                                                      : static_cast<std::int32_t>(m);
}

struct HistoryInputs {
  Span<const std::int64_t> user, benefit, time;
};

/// Counts of events strictly before each sample's time (see the file comment of the header).
/// Member scopes: samples grouped by member and swept in time order against the member's
/// time-sorted events; benefit scope: binary search in per-(benefit, type) sorted times.
inline int history_type_slot(std::uint8_t t) {
  switch (static_cast<EventType>(t)) {
    case EventType::issued:
      return 0;
    case EventType::claimed:
      return 1;
    case EventType::redeemed:
      return 2;
    case EventType::ordered:
      return 3;
    case EventType::viewed:
      return 4;  // member x channel scope only
    default:
      return -1;
  }
}

}  // namespace detail

PERKREC_INLINE HistoryIndex HistoryIndex::build(const EventLog& log, Index n_benefits,
                                                int num_threads) {
  HistoryIndex index;
  index.log = &log;
  const std::size_t n_keys = static_cast<std::size_t>(n_benefits) * 3;
  index.key_start.assign(n_keys + 1, 0);
  const Offset n_events = log.size();
  const auto ev_benefit = log.benefits();
  const auto ev_type = log.types();
  const auto ev_time = log.timestamps();
  auto key_of = [&](Offset e) -> std::int64_t {
    const int slot = detail::history_type_slot(ev_type[static_cast<std::size_t>(e)]);
    const Index b = ev_benefit[static_cast<std::size_t>(e)];
    if (b >= n_benefits) {
      detail::raise<InputError>(
          "HistoryIndex: events: benefit index out of range of the catalog (got ", b,
          ", expected < ", n_benefits, ")");
    }
    if (slot < 0 || slot >= 3 || b < 0) return -1;
    return static_cast<std::int64_t>(b) * 3 + slot;
  };
  for (Offset e = 0; e < n_events; ++e) {
    const std::int64_t k = key_of(e);
    if (k >= 0) ++index.key_start[static_cast<std::size_t>(k) + 1];
  }
  for (std::size_t k = 0; k < n_keys; ++k) index.key_start[k + 1] += index.key_start[k];
  index.key_time.resize(static_cast<std::size_t>(index.key_start.back()));
  {
    std::vector<Offset> fill(index.key_start.begin(), index.key_start.end() - 1);
    for (Offset e = 0; e < n_events; ++e) {
      const std::int64_t k = key_of(e);
      if (k >= 0) {
        index.key_time[static_cast<std::size_t>(fill[static_cast<std::size_t>(k)]++)] =
            ev_time[static_cast<std::size_t>(e)];
      }
    }
  }
  parallel_for(
      0, static_cast<Offset>(n_keys), num_threads,
      [&](Offset k) {
        std::sort(index.key_time.begin() + index.key_start[static_cast<std::size_t>(k)],
                  index.key_time.begin() + index.key_start[static_cast<std::size_t>(k) + 1]);
      },
      Schedule::dynamic, 1);
  return index;
}

namespace detail {

inline std::vector<std::int32_t> history_counts(const HistoryInputs& in, const EventLog& log,
                                                const std::vector<std::int64_t>& kind,
                                                const std::vector<std::int64_t>& band,
                                                const std::vector<std::int64_t>& channel,
                                                int num_threads,
                                                const HistoryIndex* prebuilt = nullptr) {
  const Offset n = static_cast<Offset>(in.user.size());
  const Index n_users = log.n_users();
  const auto n_cat = static_cast<std::int64_t>(kind.size());
  std::int64_t n_kinds = 1, n_bands = 1, n_channels = 1;
  for (auto k : kind) n_kinds = std::max(n_kinds, k + 1);
  for (auto b : band) n_bands = std::max(n_bands, b + 1);
  for (auto c : channel) n_channels = std::max(n_channels, c + 1);
  // A benefit's channel code (0 for every benefit when none were given).
  auto channel_of = [&](std::size_t b) { return channel.empty() ? std::int64_t{0} : channel[b]; };
  std::vector<std::int32_t> counts(static_cast<std::size_t>(n) * kHistoryCounts, 0);
  const auto ev_benefit = log.benefits();
  const auto ev_type = log.types();
  const auto ev_time = log.timestamps();
  const auto type_slot = history_type_slot;

  // Samples grouped by member, each group sorted below in (time, row) order: a counting sort
  // over the members when the samples are many, a sort of the rows when they are few (one
  // member's request must not cost O(members)).
  std::vector<Offset> order;
  std::vector<Index> group_user;
  std::vector<Offset> group_start(1, 0);
  if (n * 8 >= static_cast<Offset>(n_users)) {
    std::vector<Offset> start(static_cast<std::size_t>(n_users) + 1, 0);
    for (Offset i = 0; i < n; ++i) {
      const std::int64_t u = in.user[static_cast<std::size_t>(i)];
      if (u < n_users) ++start[static_cast<std::size_t>(u) + 1];
    }
    for (Index u = 0; u < n_users; ++u)
      start[static_cast<std::size_t>(u) + 1] += start[static_cast<std::size_t>(u)];
    order.resize(static_cast<std::size_t>(start.back()));
    std::vector<Offset> fill(start.begin(), start.end() - 1);
    for (Offset i = 0; i < n; ++i) {
      const std::int64_t u = in.user[static_cast<std::size_t>(i)];
      if (u < n_users) order[static_cast<std::size_t>(fill[static_cast<std::size_t>(u)]++)] = i;
    }
    for (Index u = 0; u < n_users; ++u) {
      if (start[static_cast<std::size_t>(u) + 1] == start[static_cast<std::size_t>(u)]) continue;
      group_user.push_back(u);
      group_start.push_back(start[static_cast<std::size_t>(u) + 1]);
    }
  } else {
    for (Offset i = 0; i < n; ++i) {
      if (in.user[static_cast<std::size_t>(i)] < n_users) order.push_back(i);
    }
    std::stable_sort(order.begin(), order.end(), [&](Offset a, Offset b) {
      return in.user[static_cast<std::size_t>(a)] < in.user[static_cast<std::size_t>(b)];
    });
    for (std::size_t k = 0; k < order.size(); ++k) {
      const auto u = static_cast<Index>(in.user[static_cast<std::size_t>(order[k])]);
      if (group_user.empty() || group_user.back() != u) {
        if (!group_user.empty()) group_start.push_back(static_cast<Offset>(k));
        group_user.push_back(u);
      }
    }
    if (!group_user.empty()) group_start.push_back(static_cast<Offset>(order.size()));
  }
  const int threads = resolve_num_threads(num_threads);
  std::vector<std::vector<std::int32_t>> scratch(static_cast<std::size_t>(threads));
  const std::size_t per_kind = static_cast<std::size_t>(n_kinds) * 3;
  const std::size_t per_band = static_cast<std::size_t>(n_bands) * 3;
  const std::size_t scratch_size = per_kind + per_band + static_cast<std::size_t>(n_channels) * 4;
  parallel_for(
      0, static_cast<Offset>(group_user.size()), num_threads,
      [&](Offset g, int thread) {
        const Index u = group_user[static_cast<std::size_t>(g)];
        const Offset s0 = group_start[static_cast<std::size_t>(g)],
                     s1 = group_start[static_cast<std::size_t>(g) + 1];
        std::sort(order.begin() + s0, order.begin() + s1, [&](Offset a, Offset b) {
          const auto ta = in.time[static_cast<std::size_t>(a)],
                     tb = in.time[static_cast<std::size_t>(b)];
          return ta != tb ? ta < tb : a < b;
        });
        auto& kb = scratch[static_cast<std::size_t>(thread)];
        kb.assign(scratch_size, 0);
        std::int32_t member[4] = {0, 0, 0, 0};
        Timestamp first_order = 0, last_order = 0;
        Offset e = log.user_begin(u);
        const Offset e_end = log.user_end(u);
        for (Offset k = s0; k < s1; ++k) {
          const Offset row = order[static_cast<std::size_t>(k)];
          const Timestamp t = in.time[static_cast<std::size_t>(row)];
          for (; e < e_end && ev_time[static_cast<std::size_t>(e)] < t; ++e) {
            const int slot = type_slot(ev_type[static_cast<std::size_t>(e)]);
            if (slot < 0) continue;
            const Index b = ev_benefit[static_cast<std::size_t>(e)];
            if (slot == 3) {
              if (member[3]++ == 0) first_order = ev_time[static_cast<std::size_t>(e)];
              last_order = ev_time[static_cast<std::size_t>(e)];
              continue;
            }
            if (b < 0) continue;
            const auto bb = static_cast<std::size_t>(b);
            // Channel slots: issued 0, viewed 1, claimed 2, redeemed 3.
            const int channel_slot = slot == 4 ? 1 : slot == 0 ? 0 : slot + 1;
            ++kb[per_kind + per_band + static_cast<std::size_t>(channel_of(bb)) * 4 +
                 static_cast<std::size_t>(channel_slot)];
            if (slot == 4) continue;
            ++member[slot];
            ++kb[static_cast<std::size_t>(kind[bb]) * 3 + static_cast<std::size_t>(slot)];
            ++kb[per_kind + static_cast<std::size_t>(band[bb]) * 3 +
                 static_cast<std::size_t>(slot)];
          }
          std::int32_t* c = counts.data() + static_cast<std::size_t>(row) * kHistoryCounts;
          const auto sb = static_cast<std::size_t>(in.benefit[static_cast<std::size_t>(row)]);
          for (int s = 0; s < 3; ++s) {
            c[s] = member[s];
            c[3 + s] = kb[static_cast<std::size_t>(kind[sb]) * 3 + static_cast<std::size_t>(s)];
            c[6 + s] =
                kb[per_kind + static_cast<std::size_t>(band[sb]) * 3 + static_cast<std::size_t>(s)];
          }
          c[12] = member[3];
          c[17] = member[3] > 0 ? detail::whole_minutes(t - last_order) : -1;
          c[18] = member[3] > 0 ? detail::whole_minutes(last_order - first_order) : -1;
          const std::size_t ch = per_kind + per_band + static_cast<std::size_t>(channel_of(sb)) * 4;
          for (int s = 0; s < 4; ++s) c[13 + s] = kb[ch + static_cast<std::size_t>(s)];
        }
      },
      Schedule::dynamic, 256);

  // Benefit scope: event times per (benefit, type), sorted (built here unless given).
  HistoryIndex built;
  if (prebuilt == nullptr || prebuilt->log != &log ||
      prebuilt->key_start.size() != static_cast<std::size_t>(n_cat) * 3 + 1) {
    built = HistoryIndex::build(log, static_cast<Index>(n_cat), num_threads);
    prebuilt = &built;
  }
  const std::vector<Offset>& key_start = prebuilt->key_start;
  const std::vector<Timestamp>& key_time = prebuilt->key_time;
  parallel_for(0, n, num_threads, [&](Offset row) {
    const auto b = static_cast<std::size_t>(in.benefit[static_cast<std::size_t>(row)]);
    const Timestamp t = in.time[static_cast<std::size_t>(row)];
    std::int32_t* c = counts.data() + static_cast<std::size_t>(row) * kHistoryCounts;
    for (std::size_t s = 0; s < 3; ++s) {
      const auto lo = key_time.begin() + key_start[b * 3 + s];
      const auto hi = key_time.begin() + key_start[b * 3 + s + 1];
      c[9 + s] = static_cast<std::int32_t>(std::lower_bound(lo, hi, t) - lo);
    }
  });
  return counts;
}

// ---- columns per field ---------------------------------------------------------------------

/// Where a categorical field reads its values.
struct CategoricalSource {
  const SampleColumns::Categorical* categorical = nullptr;
  const SampleColumns::Integer* integer = nullptr;
};

inline std::string encoder_column(const FeatureField& f) {
  return f.column.empty() ? f.name : f.column;
}

/// Value -> vocabulary code (0 = other) for one categorical field over one input column.
struct VocabLookup {
  std::vector<Index> by_dictionary;  // categorical column: code per dictionary entry
  // integer column: dense table over [lo, lo + table.size()) or sorted pairs
  std::int64_t lo = 0;
  std::vector<Index> table;
  std::vector<std::pair<std::int64_t, Index>> pairs;
  const std::vector<std::pair<std::int64_t, Index>>* sorted = nullptr;  // the encoder's, when set
  std::vector<std::uint32_t> hash_by_dictionary;  // hashed fields, categorical column

  Index integer_code(std::int64_t v) const {
    if (!table.empty()) {
      if (v < lo) return 0;
      const auto off = static_cast<std::uint64_t>(v) - static_cast<std::uint64_t>(lo);
      return off < table.size() ? table[off] : 0;
    }
    const auto& p = sorted != nullptr ? *sorted : pairs;
    auto it = std::lower_bound(p.begin(), p.end(), std::make_pair(v, Index{-1}));
    return (it != p.end() && it->first == v) ? it->second : 0;
  }
};

/// Parses a canonical decimal integer (what str(int) writes); false for anything else.
inline bool canonical_int(const std::string& s, std::int64_t& out) {
  if (s.empty() || s.size() > 20) return false;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end != s.c_str() + s.size()) return false;
  if (std::to_string(v) != s) return false;
  out = static_cast<std::int64_t>(v);
  return true;
}

/// The integer values of a vocabulary (entries that are canonical decimal integers) with their
/// codes, sorted by value.
inline std::vector<std::pair<std::int64_t, Index>> integer_vocab(
    const std::vector<std::string>& vocab) {
  std::vector<std::pair<std::int64_t, Index>> pairs;
  for (std::size_t i = 0; i < vocab.size(); ++i) {
    std::int64_t v;
    if (canonical_int(vocab[i], v)) pairs.emplace_back(v, static_cast<Index>(i) + 1);
  }
  std::sort(pairs.begin(), pairs.end());
  return pairs;
}

/// `int_vocab`: integer_vocab(vocab), kept by the encoder; a batch of few rows looks values
/// up in it directly instead of building a table over the vocabulary.
inline VocabLookup make_lookup(const std::vector<std::string>& vocab, const CategoricalSource& src,
                               Offset rows,
                               const std::vector<std::pair<std::int64_t, Index>>* int_vocab) {
  VocabLookup l;
  if (src.categorical != nullptr) {
    l.by_dictionary.resize(src.categorical->dictionary.size(), 0);
    const auto& missing = src.categorical->missing;
    for (std::size_t d = 0; d < src.categorical->dictionary.size(); ++d) {
      if (!missing.empty() && missing[d] != 0) continue;
      auto it = std::lower_bound(vocab.begin(), vocab.end(), src.categorical->dictionary[d]);
      if (it != vocab.end() && *it == src.categorical->dictionary[d]) {
        l.by_dictionary[d] = static_cast<Index>(it - vocab.begin()) + 1;
      }
    }
    return l;
  }
  if (int_vocab != nullptr && static_cast<std::size_t>(rows) * 16 < int_vocab->size()) {
    l.sorted = int_vocab;
    return l;
  }
  l.pairs = int_vocab != nullptr ? *int_vocab : integer_vocab(vocab);
  if (!l.pairs.empty()) {
    const std::int64_t lo = l.pairs.front().first, hi = l.pairs.back().first;
    const auto range = static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo) + 1;
    const auto limit = std::max<std::uint64_t>(
        1u << 20, 4 * static_cast<std::uint64_t>(rows) + 4 * l.pairs.size());
    if (range <= limit) {
      l.lo = lo;
      l.table.assign(range, 0);
      for (const auto& p : l.pairs) l.table[static_cast<std::uint64_t>(p.first - lo)] = p.second;
      l.pairs.clear();
    }
  }
  return l;
}

/// Counts of each distinct string of a categorical field's column (missing values skipped).
inline std::map<std::string, Offset> count_strings(const CategoricalSource& src, Offset rows) {
  std::map<std::string, Offset> counts;
  if (src.categorical != nullptr) {
    std::vector<Offset> per_code(src.categorical->dictionary.size(), 0);
    for (Offset i = 0; i < rows; ++i) {
      const std::int32_t c = src.categorical->codes[static_cast<std::size_t>(i)];
      if (c >= 0) ++per_code[static_cast<std::size_t>(c)];
    }
    const auto& missing = src.categorical->missing;
    for (std::size_t d = 0; d < per_code.size(); ++d) {
      if (!missing.empty() && missing[d] != 0) continue;
      if (per_code[d] > 0) counts[src.categorical->dictionary[d]] += per_code[d];
    }
    return counts;
  }
  std::vector<std::int64_t> values(src.integer->values.begin(), src.integer->values.end());
  std::sort(values.begin(), values.end());
  for (std::size_t i = 0; i < values.size();) {
    std::size_t j = i;
    while (j < values.size() && values[j] == values[i]) ++j;
    counts[std::to_string(values[i])] += static_cast<Offset>(j - i);
    i = j;
  }
  return counts;
}

}  // namespace detail

namespace detail {

/// The keys of a behavior_cf field (see feature_encoder.hpp); ConfigError naming the pointer.
inline void read_behavior_cf_field(JsonReader<ConfigError>& r, FeatureField& f,
                                   const std::string& where, const char* ctx) {
  f.kind = FeatureField::Kind::behavior_cf;
  f.bins = 0;
  f.continuous = true;
  r.read("bins", f.bins);
  if (f.bins < 0) r.fail("bins", "expected an integer >= 0");
  BehaviorCFParams& c = f.cf;
  r.read("actions", c.actions);
  r.read("factors", c.factors);
  r.read("iterations", c.iterations);
  r.read("regularization", c.regularization);
  r.read("alpha", c.alpha);
  r.read("cg_steps", c.cg_steps);
  r.read("half_life_days", c.half_life_days);
  r.read("weight_half_life_days", c.weight_half_life_days);
  r.read("seed", c.seed);
  Timestamp as_of = kNoTime;
  if (r.read("as_of", as_of)) {
    if (as_of < kMinTimestamp || as_of > kMaxTimestamp)
      r.fail("as_of", "expected epoch seconds in the supported time range");
    f.cf_as_of = as_of;
  }
  try {
    c.validate();
  } catch (const ConfigError& e) {
    detail::raise<ConfigError>(ctx, ": ", where, ": ", e.what());
  }
  f.actions = c.actions;
}

}  // namespace detail

// ---- specification -------------------------------------------------------------------------

PERKREC_INLINE FeatureSpec FeatureSpec::from_json(const std::string& text) {
  const Json doc = parse_json_strict<ConfigError>(text, "FeatureSpec::from_json");
  return from_json(doc, "");
}

PERKREC_INLINE FeatureSpec FeatureSpec::from_json(const Json& value, const std::string& pointer) {
  const char* ctx = "FeatureSpec::from_json";
  const Json* fields = &value;
  std::string base = pointer;
  if (value.is_object()) {
    JsonReader<ConfigError> r(value, pointer, ctx);
    fields = r.raw("fields");
    if (fields == nullptr) r.fail("fields", "required key is missing");
    r.finish();
    base = pointer + "/fields";
  }
  if (!fields->is_array()) {
    detail::raise<ConfigError>(ctx, ": ", base.empty() ? "(document)" : base,
                               ": expected an array of fields");
  }
  FeatureSpec spec;
  const auto& names = history_aggregate_names();
  for (std::size_t i = 0; i < fields->size(); ++i) {
    const Json& fj = (*fields)[i];
    const std::string where = base + "/" + std::to_string(i);
    JsonReader<ConfigError> r(fj, where, ctx);
    FeatureField f;
    f.raw = fj;
    std::string kind;
    r.require("name", f.name);
    r.require("kind", kind);
    if (f.name.empty()) r.fail("name", "expected a non-empty name");
    if (kind == "categorical" || kind == "id") {
      f.kind = kind == "id" ? FeatureField::Kind::id : FeatureField::Kind::categorical;
      r.read("column", f.column);
      r.read("min_count", f.min_count);
      r.read("hash_buckets", f.hash_buckets);
      if (f.min_count < 0) r.fail("min_count", "expected an integer >= 0");
      if (f.hash_buckets < 0) r.fail("hash_buckets", "expected an integer >= 0");
    } else if (kind == "numeric") {
      f.kind = FeatureField::Kind::numeric;
      std::string transform = "quantile";
      r.read("column", f.column);
      r.read("transform", transform);
      if (transform == "standardize") {
        f.transform = FeatureField::Transform::standardize;
      } else if (transform != "quantile") {
        r.fail("transform", "expected 'quantile' or 'standardize'");
      }
      f.bins = 8;
      r.read("bins", f.bins);
      if (f.bins < 0) r.fail("bins", "expected an integer >= 0");
    } else if (kind == "history") {
      f.kind = FeatureField::Kind::history;
      f.bins = 6;
      r.read("bins", f.bins);
      if (f.bins < 0) r.fail("bins", "expected an integer >= 0");
      std::vector<std::string> aggregates = names;
      r.read("aggregates", aggregates);
      for (std::size_t a = 0; a < aggregates.size(); ++a) {
        auto it = std::find(names.begin(), names.end(), aggregates[a]);
        if (it == names.end()) {
          detail::raise<ConfigError>(ctx, ": ", where, "/aggregates/", a,
                                     ": unknown aggregate (got '", aggregates[a],
                                     "', expected one of the history aggregate names)");
        }
        f.aggregates.push_back(static_cast<int>(it - names.begin()));
      }
      r.read("continuous", f.continuous);
    } else if (kind == "behavior") {
      f.kind = FeatureField::Kind::behavior;
      f.bins = 6;
      r.read("bins", f.bins);
      if (f.bins < 0) r.fail("bins", "expected an integer >= 0");
      const auto& bnames = behavior_aggregate_names();
      std::vector<std::string> aggregates = bnames;
      r.read("aggregates", aggregates);
      for (std::size_t a = 0; a < aggregates.size(); ++a) {
        auto it = std::find(bnames.begin(), bnames.end(), aggregates[a]);
        if (it == bnames.end()) {
          detail::raise<ConfigError>(ctx, ": ", where, "/aggregates/", a,
                                     ": unknown aggregate (got '", aggregates[a],
                                     "', expected one of the behavior aggregate names)");
        }
        const int id = static_cast<int>(it - bnames.begin());
        if (std::find(f.aggregates.begin(), f.aggregates.end(), id) != f.aggregates.end()) {
          detail::raise<ConfigError>(ctx, ": ", where, "/aggregates/", a, ": '", aggregates[a],
                                     "' is listed twice");
        }
        f.aggregates.push_back(id);
      }
      r.read("levels", f.levels);
      for (std::size_t l = 0; l < f.levels.size(); ++l) {
        const bool dup =
            std::find(f.levels.begin(), f.levels.begin() + static_cast<std::ptrdiff_t>(l),
                      f.levels[l]) != f.levels.begin() + static_cast<std::ptrdiff_t>(l);
        if (f.levels[l].empty() || f.levels[l] == "items" || dup) {
          detail::raise<ConfigError>(ctx, ": ", where, "/levels/", l,
                                     ": expected a distinct level name other than "
                                     "'items' (got '",
                                     f.levels[l], "')");
        }
      }
      r.read("actions", f.actions);
      if (f.actions.empty()) r.fail("actions", "expected at least one action");
      for (std::size_t a = 0; a < f.actions.size(); ++a) {
        const bool dup =
            std::find(f.actions.begin(), f.actions.begin() + static_cast<std::ptrdiff_t>(a),
                      f.actions[a]) != f.actions.begin() + static_cast<std::ptrdiff_t>(a);
        if (f.actions[a].empty() || dup) {
          detail::raise<ConfigError>(ctx, ": ", where, "/actions/", a,
                                     ": expected a distinct non-empty action (got '", f.actions[a],
                                     "')");
        }
      }
      r.read("half_life_days", f.half_life_days);
      if (!(f.half_life_days > 0)) r.fail("half_life_days", "expected a number > 0");
      r.read("continuous", f.continuous);
    } else if (kind == "behavior_cf") {
      detail::read_behavior_cf_field(r, f, where, ctx);
    } else {
      r.fail("kind",
             "unknown kind (expected one of: behavior, behavior_cf, categorical, history, id, "
             "numeric)");
    }
    r.read("optional", f.optional);
    r.finish();
    for (const auto& g : spec.fields) {
      if (g.name == f.name) r.fail("name", "duplicate field name");
    }
    spec.fields.push_back(std::move(f));
  }
  return spec;
}

PERKREC_INLINE Json FeatureSpec::to_json() const {
  Json out = Json::array();
  for (const auto& f : fields) out.push_back(f.raw);
  return out;
}

// ---- columns -------------------------------------------------------------------------------

PERKREC_INLINE const SampleColumns::Integer* SampleColumns::find_integer(
    const std::string& name) const {
  for (const auto& c : integers) {
    if (c.name == name) return &c;
  }
  return nullptr;
}
PERKREC_INLINE const SampleColumns::Numeric* SampleColumns::find_numeric(
    const std::string& name) const {
  for (const auto& c : numerics) {
    if (c.name == name) return &c;
  }
  return nullptr;
}
PERKREC_INLINE const SampleColumns::Categorical* SampleColumns::find_categorical(
    const std::string& name) const {
  for (const auto& c : categoricals) {
    if (c.name == name) return &c;
  }
  return nullptr;
}
PERKREC_INLINE bool SampleColumns::has(const std::string& name) const {
  return find_integer(name) || find_numeric(name) || find_categorical(name);
}

namespace detail {

/// Checks the columns' lengths and categorical codes once per call.
inline void check_sample_columns(const SampleColumns& s, const char* ctx) {
  if (s.rows < 0) detail::raise<InputError>(ctx, ": negative row count (got ", s.rows, ")");
  const auto n = static_cast<std::size_t>(s.rows);
  for (const auto& c : s.integers) {
    detail::check_column_length(ctx, c.name, c.values.size(), n);
  }
  for (const auto& c : s.numerics) {
    detail::check_column_length(ctx, c.name, c.values.size(), n);
  }
  for (const auto& c : s.categoricals) {
    detail::check_column_length(ctx, c.name, c.codes.size(), n);
    if (!c.missing.empty() && c.missing.size() != c.dictionary.size()) {
      detail::raise<InputError>(ctx, ": column '", c.name, "' has ", c.missing.size(),
                                " missing flags (expected ", c.dictionary.size(),
                                ", one per dictionary entry)");
    }
    const auto size = static_cast<std::int32_t>(c.dictionary.size());
    for (std::size_t i = 0; i < n; ++i) {
      if (c.codes[i] < -1 || c.codes[i] >= size) {
        detail::raise<InputError>(ctx, ": column '", c.name, "' row ", i,
                                  ": code out of range (got ", c.codes[i],
                                  ", expected -1 <= code < ", size, ")");
      }
    }
  }
}

inline CategoricalSource categorical_source(const SampleColumns& s, const FeatureField& f,
                                            const char* ctx) {
  const std::string col = encoder_column(f);
  CategoricalSource src;
  src.categorical = s.find_categorical(col);
  if (src.categorical == nullptr) src.integer = s.find_integer(col);
  if (src.categorical == nullptr && src.integer == nullptr) {
    if (s.find_numeric(col) != nullptr) {
      detail::raise<InputError>(
          ctx, ": field '", f.name, "': column '", col,
          "' is given as floating point (expected categorical codes or integers)");
    }
    detail::raise<InputError>(ctx, ": field '", f.name, "': missing column '", col, "'");
  }
  return src;
}

/// A numeric field's values as doubles (an integer column is converted).
struct NumericSource {
  const double* values = nullptr;
  const std::int64_t* integers = nullptr;
  double at(Offset i) const { return values ? values[i] : static_cast<double>(integers[i]); }
};

inline NumericSource numeric_source(const SampleColumns& s, const FeatureField& f,
                                    const char* ctx) {
  const std::string col = encoder_column(f);
  NumericSource src;
  if (const auto* c = s.find_numeric(col)) {
    src.values = c->values.data();
  } else if (const auto* c2 = s.find_integer(col)) {
    src.integers = c2->values.data();
  } else if (s.find_categorical(col) != nullptr) {
    detail::raise<InputError>(ctx, ": field '", f.name, "': column '", col,
                              "' is categorical (expected numbers)");
  } else {
    detail::raise<InputError>(ctx, ": field '", f.name, "': missing column '", col, "'");
  }
  return src;
}

inline HistoryInputs history_inputs(const SampleColumns& s, const EventLog* events,
                                    const std::vector<std::int64_t>& kind, bool has_benefits,
                                    const char* ctx, bool events_checked = false) {
  if (events == nullptr) {
    detail::raise<InputError>(ctx, ": history fields need an EventLog (events)");
  }
  HistoryInputs in;
  const char* names[3] = {"user", "benefit", "timestamp"};
  Span<const std::int64_t>* out[3] = {&in.user, &in.benefit, &in.time};
  for (int i = 0; i < 3; ++i) {
    const auto* c = s.find_integer(names[i]);
    if (c == nullptr) {
      detail::raise<InputError>(ctx, ": history fields need the integer column '", names[i],
                                "' in the samples");
    }
    *out[i] = c->values;
  }
  if (!has_benefits) {
    detail::raise<InputError>(
        ctx, ": history fields need the benefits' kinds and face values (set_benefits / catalog)");
  }
  const auto n_cat = static_cast<std::int64_t>(kind.size());
  for (std::size_t i = 0; i < in.benefit.size(); ++i) {
    if (in.benefit[i] < 0 || in.benefit[i] >= n_cat) {
      detail::raise<InputError>(ctx, ": field 'benefit' row ", i,
                                ": benefit index out of range (got ", in.benefit[i],
                                ", expected 0 <= benefit < ", n_cat, ")");
    }
    if (in.user[i] < 0) {
      detail::raise<InputError>(ctx, ": field 'user' row ", i, ": negative member index (got ",
                                in.user[i], ")");
    }
  }
  const auto benefits = events->benefits();
  // A HistoryIndex of this log checked its benefits when it was built.
  for (std::size_t e = 0; !events_checked && e < benefits.size(); ++e) {
    if (benefits[e] >= n_cat) {
      detail::raise<InputError>(ctx, ": events: benefit index out of range of the catalog (got ",
                                benefits[e], ", expected < ", n_cat, ")");
    }
  }
  if (events->size() >= static_cast<Offset>(std::numeric_limits<std::int32_t>::max())) {
    detail::raise<InputError>(ctx, ": events: history counts are held in 32 bits (got ",
                              events->size(), " events)");
  }
  return in;
}

inline BehaviorSamples behavior_samples(const SampleColumns& s, const char* ctx) {
  BehaviorSamples out;
  const char* names[3] = {"user", "benefit", "timestamp"};
  Span<const std::int64_t>* cols[3] = {&out.user, &out.benefit, &out.timestamp};
  for (int i = 0; i < 3; ++i) {
    const auto* c = s.find_integer(names[i]);
    if (c == nullptr) {
      detail::raise<InputError>(ctx, ": behavior fields need the integer column '", names[i],
                                "' in the samples");
    }
    *cols[i] = c->values;
  }
  return out;
}

/// Checks a behavior field against the data: every level in the item catalog, every action in
/// the log (ConfigError naming the pointer), and the data present (InputError).
inline void check_behavior_field(const FeatureField& f, const BehaviorData* data,
                                 const std::string& where, const char* ctx) {
  if (data == nullptr || !data->complete()) {
    detail::raise<InputError>(ctx, ": field '", f.name,
                              "': behavior fields need BehaviorData (a BehaviorLog, ",
                              "its ItemCatalog and the BenefitItems)");
  }
  for (std::size_t l = 0; l < f.levels.size(); ++l) {
    if (data->items->find_level(f.levels[l]) < 0) {
      std::string have;
      for (const auto& n : data->items->level_names())
        have += (have.empty() ? "'" : ", '") + n + "'";
      detail::raise<ConfigError>(ctx, ": ", where, "/levels/", l, ": unknown level '", f.levels[l],
                                 "' (the item catalog has ",
                                 have.empty() ? std::string("no levels") : have, ")");
    }
  }
  for (std::size_t a = 0; a < f.actions.size(); ++a) {
    if (data->log->find_action(f.actions[a]) < 0) {
      detail::raise<ConfigError>(ctx, ": ", where, "/actions/", a, ": unknown action '",
                                 f.actions[a], "' (the behaviour log has ",
                                 data->log->quoted_action_names(), ")");
    }
  }
}

}  // namespace detail

PERKREC_INLINE BehaviorFeatureParams behavior_params(const FeatureField& field, int num_threads) {
  BehaviorFeatureParams p;
  const auto& names = behavior_aggregate_names();
  for (int a : field.aggregates) p.aggregates.push_back(names[static_cast<std::size_t>(a)]);
  p.levels = field.levels;
  p.actions = field.actions;
  p.half_life_days = field.half_life_days;
  p.num_threads = num_threads;
  return p;
}

namespace detail {

/// Behavior and behavior_cf fields: one value per sample and output column, computed from
/// BehaviorData.
inline bool reads_behavior(const FeatureField& f) {
  return f.kind == FeatureField::Kind::behavior || f.kind == FeatureField::Kind::behavior_cf;
}

inline std::vector<std::string> behavior_field_columns(const FeatureField& f) {
  return f.kind == FeatureField::Kind::behavior_cf ? behavior_cf_column_names()
                                                   : behavior_column_names(behavior_params(f));
}

/// The cut time of a behavior_cf field's fit: the declared as_of, or the earliest sample's
/// time. InputError when there is neither, or when as_of is later than a sample (that
/// behaviour would reach the item factors before the sample's time).
inline Timestamp behavior_cf_as_of(const FeatureField& f, const SampleColumns& samples,
                                   const char* ctx) {
  const auto times = behavior_samples(samples, ctx).timestamp;
  if (times.size() == 0 && f.cf_as_of == kNoTime) {
    detail::raise<InputError>(ctx, ": field '", f.name,
                              "': behavior_cf needs fit samples (as_of defaults to the earliest "
                              "sample's time) or an as_of");
  }
  const Timestamp earliest =
      times.size() == 0 ? f.cf_as_of : *std::min_element(times.begin(), times.end());
  if (f.cf_as_of != kNoTime && f.cf_as_of > earliest) {
    detail::raise<InputError>(ctx, ": field '", f.name, "': as_of is later than a fit sample (got ",
                              f.cf_as_of, ", earliest sample time ", earliest,
                              "; behaviour after a sample's time would reach its item factors)");
  }
  return f.cf_as_of != kNoTime ? f.cf_as_of : earliest;
}

}  // namespace detail

// ---- encoder -------------------------------------------------------------------------------

PERKREC_INLINE FeatureEncoder::FeatureEncoder(FeatureSpec spec, int num_threads)
    : declared_(spec), spec_(std::move(spec)) {
  set_num_threads(num_threads);
}

PERKREC_INLINE void FeatureEncoder::set_num_threads(int num_threads) {
  resolve_num_threads(num_threads);
  num_threads_ = num_threads;
}

PERKREC_INLINE void FeatureEncoder::set_benefits(const std::vector<std::string>& kind_names,
                                                 Span<const double> face_values,
                                                 const std::vector<std::string>& channel_names) {
  if (kind_names.size() != face_values.size()) {
    detail::raise<InputError>("FeatureEncoder::set_benefits: ", kind_names.size(), " kinds but ",
                              face_values.size(),
                              " face values (expected one of each per benefit)");
  }
  if (!channel_names.empty() && channel_names.size() != kind_names.size()) {
    detail::raise<InputError>("FeatureEncoder::set_benefits: ", kind_names.size(), " kinds but ",
                              channel_names.size(),
                              " channels (expected one per benefit, or none)");
  }
  std::vector<std::string> channels_sorted = channel_names;
  std::sort(channels_sorted.begin(), channels_sorted.end());
  channels_sorted.erase(std::unique(channels_sorted.begin(), channels_sorted.end()),
                        channels_sorted.end());
  std::vector<std::int64_t> channel(channel_names.size());
  for (std::size_t b = 0; b < channel_names.size(); ++b) {
    channel[b] =
        std::lower_bound(channels_sorted.begin(), channels_sorted.end(), channel_names[b]) -
        channels_sorted.begin();
  }
  std::vector<std::string> sorted = kind_names;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::vector<std::int64_t> kind(kind_names.size()), band(kind_names.size());
  for (std::size_t b = 0; b < kind_names.size(); ++b) {
    kind[b] = std::lower_bound(sorted.begin(), sorted.end(), kind_names[b]) - sorted.begin();
    band[b] =
        std::upper_bound(std::begin(kFaceValueBands), std::end(kFaceValueBands), face_values[b]) -
        std::begin(kFaceValueBands);
  }
  set_benefit_codes(std::move(kind), std::move(band), std::move(channel));
}

PERKREC_INLINE void FeatureEncoder::set_benefit_codes(std::vector<std::int64_t> kind,
                                                      std::vector<std::int64_t> band,
                                                      std::vector<std::int64_t> channel) {
  if (kind.size() != band.size()) {
    detail::raise<InputError>("FeatureEncoder::set_benefit_codes: ", kind.size(),
                              " kind codes but ", band.size(),
                              " bands (expected one of each per benefit)");
  }
  if (!channel.empty() && channel.size() != kind.size()) {
    detail::raise<InputError>("FeatureEncoder::set_benefit_codes: ", kind.size(),
                              " kind codes but ", channel.size(),
                              " channel codes (expected one per benefit, or none)");
  }
  for (std::size_t b = 0; b < channel.size(); ++b) {
    if (channel[b] < 0 || channel[b] > (1 << 20)) {
      detail::raise<InputError>("FeatureEncoder::set_benefit_codes: benefit ", b,
                                ": channel code out of range (got ", channel[b],
                                ", expected 0 <= code <= 2^20)");
    }
  }
  for (std::size_t b = 0; b < kind.size(); ++b) {
    if (kind[b] < 0 || kind[b] > (1 << 20) || band[b] < 0 || band[b] > (1 << 20)) {
      detail::raise<InputError>("FeatureEncoder::set_benefit_codes: benefit ", b,
                                ": codes out of range (got kind ", kind[b], ", band ", band[b],
                                ", expected 0 <= code <= 2^20)");
    }
  }
  benefit_kind_ = std::move(kind);
  benefit_band_ = std::move(band);
  benefit_channel_ = std::move(channel);
  has_benefits_ = true;
}

PERKREC_INLINE void FeatureEncoder::index_vocabularies() {
  int_vocab_.assign(state_.size(), {});
  for (std::size_t i = 0; i < state_.size(); ++i)
    int_vocab_[i] = detail::integer_vocab(state_[i].vocab);
}

PERKREC_INLINE void FeatureEncoder::require_fitted(const char* method) const {
  if (!fitted_) detail::raise<InputError>("FeatureEncoder::", method, ": not fitted");
}

PERKREC_INLINE std::vector<Index> FeatureEncoder::field_sizes() const {
  require_fitted("field_sizes");
  std::vector<Index> sizes;
  for (const auto& s : state_) sizes.push_back(s.size);
  return sizes;
}

PERKREC_INLINE std::vector<Offset> FeatureEncoder::field_offsets() const {
  require_fitted("field_offsets");
  std::vector<Offset> offsets(1, 0);
  for (const auto& s : state_) offsets.push_back(offsets.back() + s.size);
  return offsets;
}

PERKREC_INLINE HistoryIndex FeatureEncoder::history_index(const EventLog& events) const {
  return HistoryIndex::build(events, static_cast<Index>(benefit_kind_.size()), num_threads_);
}

PERKREC_INLINE Index FeatureEncoder::n_features() const {
  return static_cast<Index>(field_offsets().back());
}

PERKREC_INLINE std::vector<std::int32_t> FeatureEncoder::feature_fields() const {
  std::vector<std::int32_t> out;
  const auto sizes = field_sizes();
  for (std::size_t f = 0; f < sizes.size(); ++f)
    out.insert(out.end(), static_cast<std::size_t>(sizes[f]), static_cast<std::int32_t>(f));
  return out;
}

PERKREC_INLINE void FeatureEncoder::fit(const SampleColumns& samples, const EventLog* events,
                                        const BehaviorData* behavior) {
  const char* ctx = "FeatureEncoder::fit";
  detail::check_sample_columns(samples, ctx);
  const Offset n = samples.rows;
  // Validation first: which fields stay, and every column they read.
  std::vector<FeatureField> kept;
  std::vector<std::string> dropped;
  bool need_history = false;
  for (std::size_t fi = 0; fi < declared_.fields.size(); ++fi) {
    const auto& f = declared_.fields[fi];
    if (detail::reads_behavior(f)) {
      if (f.optional && (behavior == nullptr || !behavior->complete())) {
        dropped.push_back(f.name);
        continue;
      }
      detail::check_behavior_field(f, behavior, "/fields/" + std::to_string(fi), ctx);
      detail::behavior_samples(samples, ctx);
      if (f.kind == FeatureField::Kind::behavior_cf) detail::behavior_cf_as_of(f, samples, ctx);
      kept.push_back(f);
      continue;
    }
    if (f.kind == FeatureField::Kind::history) {
      need_history = true;
      kept.push_back(f);
      continue;
    }
    const std::string col = detail::encoder_column(f);
    if (f.optional && !samples.has(col)) {
      dropped.push_back(f.name);
      continue;
    }
    if (f.kind == FeatureField::Kind::numeric) {
      const auto src = detail::numeric_source(samples, f, ctx);
      if (f.transform == FeatureField::Transform::standardize) {
        for (Offset i = 0; i < n; ++i) {
          if (!std::isfinite(src.at(i))) {
            detail::raise<InputError>(ctx, ": field '", f.name, "' row ", i,
                                      ": non-finite value (got ", src.at(i),
                                      ", a standardized column must be finite)");
          }
        }
      }
    } else {
      detail::categorical_source(samples, f, ctx);
    }
    kept.push_back(f);
  }
  std::vector<std::int32_t> counts;
  if (need_history) {
    const auto in = detail::history_inputs(samples, events, benefit_kind_, has_benefits_, ctx);
    counts = detail::history_counts(in, *events, benefit_kind_, benefit_band_, benefit_channel_,
                                    num_threads_);
  }
  // Behaviour values (row-major) of each kept behavior field.
  std::vector<std::vector<double>> behavior_values(kept.size());
  std::vector<std::size_t> behavior_columns(kept.size(), 0);
  std::vector<BehaviorCF> cf_models(kept.size());
  for (std::size_t i = 0; i < kept.size(); ++i) {
    if (kept[i].kind == FeatureField::Kind::behavior_cf) {
      // Item factors from behaviour before as_of (<= every fit sample's time), then the
      // samples' values, as transform gives them.
      BehaviorCFParams cp = kept[i].cf;
      cp.num_threads = num_threads_;
      BehaviorCF model(cp);
      model.fit(*behavior->log, detail::behavior_cf_as_of(kept[i], samples, ctx));
      behavior_columns[i] = behavior_cf_column_names().size();
      behavior_values[i] = model.transform_matrix(detail::behavior_samples(samples, ctx),
                                                  *behavior->log, *behavior->benefit_items, ctx);
      model.set_num_threads(0);
      cf_models[i] = std::move(model);
      continue;
    }
    if (kept[i].kind != FeatureField::Kind::behavior) continue;
    const auto params = behavior_params(kept[i], num_threads_);
    behavior_columns[i] = behavior_column_names(params).size();
    behavior_values[i] =
        detail::behavior_matrix(detail::behavior_samples(samples, ctx), *behavior->log,
                                *behavior->items, *behavior->benefit_items, params, ctx);
  }

  // Quantile jobs (numeric fields, history aggregates) run in parallel, each on its own copy.
  std::vector<FieldState> state(kept.size());
  struct Job {
    std::size_t field;
    int aggregate;  // -1 for a numeric field
  };
  std::vector<Job> jobs;
  for (std::size_t i = 0; i < kept.size(); ++i) {
    const auto& f = kept[i];
    auto& st = state[i];
    if (f.kind == FeatureField::Kind::behavior_cf) st.cf = std::move(cf_models[i]);
    if (f.kind == FeatureField::Kind::categorical || f.kind == FeatureField::Kind::id) {
      if (f.hash_buckets > 0) {
        st.size = f.hash_buckets;
        continue;
      }
      const auto counts_by_string =
          detail::count_strings(detail::categorical_source(samples, f, ctx), n);
      // A field that holds one value on every fit row is a constant: it keeps no vocabulary,
      // so every row (then and later) encodes its "other" feature. With the value as a feature,
      // the model would give it part of the bias, which a new value at transform time (a plan
      // at another hour than every logged issue) would take away.
      const bool constant = counts_by_string.size() == 1 && counts_by_string.begin()->second == n;
      for (const auto& [value, count] : counts_by_string) {
        if (!constant && count >= f.min_count) st.vocab.push_back(value);  // already sorted
      }
      st.size = static_cast<Index>(st.vocab.size()) + 1;
    } else if (f.kind == FeatureField::Kind::numeric) {
      if (f.transform == FeatureField::Transform::standardize) {
        std::vector<double> x(static_cast<std::size_t>(n));
        const auto src = detail::numeric_source(samples, f, ctx);
        for (Offset r = 0; r < n; ++r) x[static_cast<std::size_t>(r)] = src.at(r);
        // np.mean / np.std (ddof 0): pairwise sums, as numpy computes them.
        double mean = detail::numpy_pairwise_sum(x.data(), n) / static_cast<double>(n);
        for (auto& v : x) v = (v - mean) * (v - mean);
        double sd = std::sqrt(detail::numpy_pairwise_sum(x.data(), n) / static_cast<double>(n));
        if (n == 0) mean = 0.0, sd = 1.0;  // nothing to learn from: the identity scaling
        if (sd == 0.0) sd = 1.0;
        st.mean = mean;
        st.std = sd;
        st.size = 1;
      } else {
        jobs.push_back({i, -1});
      }
    } else {
      // History / behavior: one job per aggregate column when it learns edges or a scaling.
      const std::size_t columns =
          detail::reads_behavior(f) ? behavior_columns[i] : f.aggregates.size();
      if (f.bins > 0) st.agg_edges.resize(columns);
      if (f.continuous) {
        st.agg_mean.assign(columns, 0.0);
        st.agg_std.assign(columns, 1.0);
      }
      if (f.bins > 0 || f.continuous) {
        for (std::size_t a = 0; a < columns; ++a) jobs.push_back({i, static_cast<int>(a)});
      }
      if (f.bins == 0) st.size = static_cast<Index>(columns);
    }
  }
  parallel_for(
      0, static_cast<Offset>(jobs.size()), num_threads_,
      [&](Offset j) {
        const Job job = jobs[static_cast<std::size_t>(j)];
        const auto& f = kept[job.field];
        std::vector<double> x;
        x.reserve(static_cast<std::size_t>(n));
        if (job.aggregate < 0) {
          const auto src = detail::numeric_source(samples, f, ctx);
          for (Offset r = 0; r < n; ++r) {
            const double v = src.at(r);
            if (std::isfinite(v)) x.push_back(v);
          }
          state[job.field].edges = detail::numpy_quantile_edges(x, f.bins);
        } else {
          const auto c = static_cast<std::size_t>(job.aggregate);
          if (detail::reads_behavior(f)) {
            const auto& m = behavior_values[job.field];
            const std::size_t cols = behavior_columns[job.field];
            for (Offset r = 0; r < n; ++r) x.push_back(m[static_cast<std::size_t>(r) * cols + c]);
          } else {
            const int agg = f.aggregates[c];
            for (Offset r = 0; r < n; ++r) {
              x.push_back(detail::history_value(
                  counts.data() + static_cast<std::size_t>(r) * detail::kHistoryCounts, agg));
            }
          }
          auto& st = state[job.field];
          if (f.continuous) detail::slog1p_scaling(x, st.agg_mean[c], st.agg_std[c]);
          if (f.bins > 0) st.agg_edges[c] = detail::numpy_quantile_edges(x, f.bins);
        }
      },
      Schedule::dynamic, 1);
  Offset total = 0;
  for (std::size_t i = 0; i < kept.size(); ++i) {
    auto& st = state[i];
    const auto& f = kept[i];
    if (f.kind == FeatureField::Kind::numeric && f.transform == FeatureField::Transform::quantile) {
      st.size = static_cast<Index>(st.edges.size()) + 2;
    } else if ((f.kind == FeatureField::Kind::history || detail::reads_behavior(f)) && f.bins > 0) {
      st.agg_offsets.assign(1, 0);
      for (const auto& e : st.agg_edges)
        st.agg_offsets.push_back(st.agg_offsets.back() + static_cast<Index>(e.size()) + 2 +
                                 (f.continuous ? 1 : 0));
      st.size = st.agg_offsets.back();
    }
    total += st.size;
  }
  if (total >= static_cast<Offset>(std::numeric_limits<Index>::max())) {
    detail::raise<ConfigError>(ctx, ": ", total,
                               " features (expected fewer than 2^31; lower hash_buckets)");
  }
  spec_.fields = std::move(kept);
  dropped_ = std::move(dropped);
  state_ = std::move(state);
  fitted_ = true;
  index_vocabularies();
}

PERKREC_INLINE CsrMatrix<float> FeatureEncoder::transform(const SampleColumns& samples,
                                                          const EventLog* events,
                                                          const std::vector<std::string>* fields,
                                                          const BehaviorData* behavior,
                                                          const HistoryIndex* history_index) const {
  const char* ctx = "FeatureEncoder::transform";
  require_fitted("transform");
  detail::check_sample_columns(samples, ctx);
  std::vector<char> selected(spec_.fields.size(), fields == nullptr ? 1 : 0);
  if (fields != nullptr) {
    for (const auto& name : *fields) {
      bool found = false;
      for (std::size_t i = 0; i < spec_.fields.size(); ++i) {
        if (spec_.fields[i].name == name) {
          selected[i] = 1;
          found = true;
        }
      }
      if (!found) detail::raise<InputError>(ctx, ": unknown field '", name, "'");
    }
  }
  const Offset n = samples.rows;
  const auto offsets = field_offsets();

  // Per selected field: its source and lookup, and its first slot in each row.
  struct Plan {
    std::size_t field;
    int slot;
    detail::CategoricalSource cat;
    detail::VocabLookup lookup;
    detail::NumericSource num;
  };
  std::vector<Plan> plans;
  int slots = 0;
  bool need_history = false;
  std::vector<std::vector<double>> behavior_values(spec_.fields.size());
  std::vector<std::size_t> behavior_columns(spec_.fields.size(), 0);
  for (std::size_t i = 0; i < spec_.fields.size(); ++i) {
    if (!selected[i]) continue;
    const auto& f = spec_.fields[i];
    const auto& st = state_[i];
    Plan p{i, slots, {}, {}, {}};
    if (f.kind == FeatureField::Kind::categorical || f.kind == FeatureField::Kind::id) {
      p.cat = detail::categorical_source(samples, f, ctx);
      if (f.hash_buckets > 0) {
        if (p.cat.categorical != nullptr) {
          const auto& dict = p.cat.categorical->dictionary;
          p.lookup.hash_by_dictionary.resize(dict.size());
          for (std::size_t d = 0; d < dict.size(); ++d) {
            p.lookup.hash_by_dictionary[d] = static_cast<std::uint32_t>(
                detail::pandas_string_hash(dict[d]) % static_cast<std::uint64_t>(st.size));
          }
        }
      } else {
        p.lookup = detail::make_lookup(st.vocab, p.cat, n, &int_vocab_[p.field]);
      }
      slots += 1;
    } else if (f.kind == FeatureField::Kind::numeric) {
      p.num = detail::numeric_source(samples, f, ctx);
      if (f.transform == FeatureField::Transform::standardize) {
        for (Offset r = 0; r < n; ++r) {
          if (!std::isfinite(p.num.at(r))) {
            detail::raise<InputError>(ctx, ": field '", f.name, "' row ", r,
                                      ": non-finite value (got ", p.num.at(r),
                                      ", a standardized column must be finite)");
          }
        }
      }
      slots += 1;
    } else if (f.kind == FeatureField::Kind::behavior) {
      detail::check_behavior_field(f, behavior, "/fields/" + std::to_string(i), ctx);
      const auto params = behavior_params(f, num_threads_);
      behavior_columns[i] = behavior_column_names(params).size();
      behavior_values[i] =
          detail::behavior_matrix(detail::behavior_samples(samples, ctx), *behavior->log,
                                  *behavior->items, *behavior->benefit_items, params, ctx);
      slots += static_cast<int>(behavior_columns[i]) * detail::entries_per_aggregate(f);
    } else if (f.kind == FeatureField::Kind::behavior_cf) {
      detail::check_behavior_field(f, behavior, "/fields/" + std::to_string(i), ctx);
      behavior_columns[i] = behavior_cf_column_names().size();
      behavior_values[i] =
          st.cf.transform_matrix(detail::behavior_samples(samples, ctx), *behavior->log,
                                 *behavior->benefit_items, ctx, num_threads_);
      slots += static_cast<int>(behavior_columns[i]) * detail::entries_per_aggregate(f);
    } else {
      need_history = true;
      slots += static_cast<int>(f.aggregates.size()) * detail::entries_per_aggregate(f);
    }
    plans.push_back(std::move(p));
  }
  std::vector<std::int32_t> counts;
  if (need_history) {
    const bool indexed = history_index != nullptr && history_index->log == events &&
                         history_index->key_start.size() == benefit_kind_.size() * 3 + 1;
    const auto in =
        detail::history_inputs(samples, events, benefit_kind_, has_benefits_, ctx, indexed);
    counts = detail::history_counts(in, *events, benefit_kind_, benefit_band_, benefit_channel_,
                                    num_threads_, history_index);
  }

  CsrMatrix<float> out;
  out.rows = static_cast<Index>(n);
  out.cols = static_cast<Index>(offsets.back());
  out.indptr.resize(static_cast<std::size_t>(n) + 1);
  out.indices.resize(static_cast<std::size_t>(n) * static_cast<std::size_t>(slots));
  out.data.resize(out.indices.size());
  const Offset block = 4096;
  const Offset n_blocks = (n + block - 1) / block;
  parallel_for(0, n_blocks, num_threads_, [&](Offset blk) {
    const Offset r0 = blk * block, r1 = std::min(n, r0 + block);
    for (Offset r = r0; r < r1; ++r) out.indptr[static_cast<std::size_t>(r) + 1] = (r + 1) * slots;
    for (const auto& p : plans) {
      const auto& f = spec_.fields[p.field];
      const auto& st = state_[p.field];
      const auto base = static_cast<Index>(offsets[p.field]);
      Index* idx = out.indices.data();
      float* val = out.data.data();
      auto at = [&](Offset r, int k) {
        return static_cast<std::size_t>(r) * static_cast<std::size_t>(slots) +
               static_cast<std::size_t>(p.slot + k);
      };
      if (f.kind == FeatureField::Kind::categorical || f.kind == FeatureField::Kind::id) {
        for (Offset r = r0; r < r1; ++r) {
          Index code;
          if (f.hash_buckets > 0) {
            if (p.cat.categorical != nullptr) {
              const std::int32_t c = p.cat.categorical->codes[static_cast<std::size_t>(r)];
              code =
                  c >= 0
                      ? static_cast<Index>(p.lookup.hash_by_dictionary[static_cast<std::size_t>(c)])
                      : static_cast<Index>(detail::pandas_string_hash(detail::missing_string()) %
                                           static_cast<std::uint64_t>(st.size));
            } else {
              code = static_cast<Index>(detail::pandas_string_hash(std::to_string(
                                            p.cat.integer->values[static_cast<std::size_t>(r)])) %
                                        static_cast<std::uint64_t>(st.size));
            }
          } else if (p.cat.categorical != nullptr) {
            const std::int32_t c = p.cat.categorical->codes[static_cast<std::size_t>(r)];
            code = c >= 0 ? p.lookup.by_dictionary[static_cast<std::size_t>(c)] : 0;
          } else {
            code = p.lookup.integer_code(p.cat.integer->values[static_cast<std::size_t>(r)]);
          }
          idx[at(r, 0)] = base + code;
          val[at(r, 0)] = 1.0f;
        }
      } else if (f.kind == FeatureField::Kind::numeric) {
        for (Offset r = r0; r < r1; ++r) {
          const double x = p.num.at(r);
          if (f.transform == FeatureField::Transform::standardize) {
            idx[at(r, 0)] = base;
            val[at(r, 0)] = static_cast<float>((x - st.mean) / st.std);
          } else {
            idx[at(r, 0)] = base + detail::bucket_of(st.edges, x);
            val[at(r, 0)] = 1.0f;
          }
        }
      } else {
        // History / behavior: per aggregate its bucket (bins > 0) and / or its value.
        const int per = detail::entries_per_aggregate(f);
        auto emit = [&](Offset r, std::size_t a, double x) {
          int k = static_cast<int>(a) * per;
          if (f.bins > 0) {
            const Index first = base + st.agg_offsets[a];
            idx[at(r, k)] = first + detail::bucket_of(st.agg_edges[a], x);
            val[at(r, k)] = 1.0f;
            if (!f.continuous) return;
            ++k;
            idx[at(r, k)] = base + st.agg_offsets[a + 1] - 1;  // after the buckets
          } else {
            idx[at(r, k)] = base + static_cast<Index>(a);
          }
          val[at(r, k)] = static_cast<float>(
              !f.continuous      ? std::log1p(x)
              : std::isfinite(x) ? (detail::slog1p(x) - st.agg_mean[a]) / st.agg_std[a]
                                 : 0.0);
        };
        if (detail::reads_behavior(f)) {
          const std::size_t cols = behavior_columns[p.field];
          const double* m = behavior_values[p.field].data();
          for (Offset r = r0; r < r1; ++r) {
            for (std::size_t a = 0; a < cols; ++a)
              emit(r, a, m[static_cast<std::size_t>(r) * cols + a]);
          }
        } else {
          for (Offset r = r0; r < r1; ++r) {
            const std::int32_t* c =
                counts.data() + static_cast<std::size_t>(r) * detail::kHistoryCounts;
            for (std::size_t a = 0; a < f.aggregates.size(); ++a)
              emit(r, a, detail::history_value(c, f.aggregates[a]));
          }
        }
      }
    }
  });
  out.indptr[0] = 0;
  return out;
}

PERKREC_INLINE HistoryTable FeatureEncoder::history(const SampleColumns& samples,
                                                    const EventLog& events,
                                                    const std::vector<std::string>& names) const {
  const char* ctx = "FeatureEncoder::history";
  detail::check_sample_columns(samples, ctx);
  const auto& all = history_aggregate_names();
  std::vector<int> wanted;
  for (const auto& name : names.empty() ? all : names) {
    auto it = std::find(all.begin(), all.end(), name);
    if (it == all.end()) detail::raise<InputError>(ctx, ": unknown aggregate '", name, "'");
    wanted.push_back(static_cast<int>(it - all.begin()));
  }
  const auto in = detail::history_inputs(samples, &events, benefit_kind_, has_benefits_, ctx);
  const auto counts = detail::history_counts(in, events, benefit_kind_, benefit_band_,
                                             benefit_channel_, num_threads_);
  HistoryTable t;
  t.rows = samples.rows;
  for (int a : wanted) {
    t.names.push_back(all[static_cast<std::size_t>(a)]);
    std::vector<double> col(static_cast<std::size_t>(samples.rows));
    parallel_for(0, samples.rows, num_threads_, [&](Offset r) {
      col[static_cast<std::size_t>(r)] = detail::history_value(
          counts.data() + static_cast<std::size_t>(r) * detail::kHistoryCounts, a);
    });
    t.columns.push_back(std::move(col));
  }
  return t;
}

// ---- persistence ---------------------------------------------------------------------------

PERKREC_INLINE std::string FeatureEncoder::to_json() const {
  require_fitted("to_json");
  Json out;
  out["fields"] = spec_.to_json();
  Json state = Json::array();
  const auto& names = history_aggregate_names();
  for (std::size_t i = 0; i < spec_.fields.size(); ++i) {
    const auto& f = spec_.fields[i];
    const auto& st = state_[i];
    Json s = Json::object();
    if (f.kind == FeatureField::Kind::categorical || f.kind == FeatureField::Kind::id) {
      if (f.hash_buckets == 0) s["vocab"] = st.vocab;
    } else if (f.kind == FeatureField::Kind::numeric) {
      if (f.transform == FeatureField::Transform::standardize) {
        s["mean"] = st.mean;
        s["std"] = st.std;
      } else {
        s["edges"] = st.edges;
      }
    } else if (detail::reads_behavior(f)) {
      s["columns"] = detail::behavior_field_columns(f);
      if (f.kind == FeatureField::Kind::behavior_cf) s["cf"] = st.cf.to_json();
      s["bins"] = f.bins;
      if (f.bins > 0) {
        s["edges"] = st.agg_edges;
        s["offsets"] = st.agg_offsets;
      }
      if (f.continuous) {
        s["mean"] = st.agg_mean;
        s["std"] = st.agg_std;
      }
    } else {
      Json aggs = Json::array();
      for (int a : f.aggregates) aggs.push_back(names[static_cast<std::size_t>(a)]);
      s["aggregates"] = aggs;
      s["bins"] = f.bins;
      if (f.bins > 0) {
        s["edges"] = st.agg_edges;
        s["offsets"] = st.agg_offsets;
      }
      if (f.continuous) {
        s["mean"] = st.agg_mean;
        s["std"] = st.agg_std;
      }
    }
    s["size"] = st.size;
    state.push_back(std::move(s));
  }
  out["state"] = std::move(state);
  out["benefit_kind"] = has_benefits_ ? Json(benefit_kind_) : Json(nullptr);
  out["benefit_band"] = has_benefits_ ? Json(benefit_band_) : Json(nullptr);
  if (has_benefits_ && !benefit_channel_.empty()) out["benefit_channel"] = benefit_channel_;
  if (!dropped_.empty()) out["dropped_fields"] = dropped_;
  return out.dump();
}

PERKREC_INLINE FeatureEncoder FeatureEncoder::from_json(const std::string& text) {
  const Json doc = parse_json_strict<ModelFormatError>(text, "FeatureEncoder::from_json");
  return from_json(doc, "");
}

PERKREC_INLINE FeatureEncoder FeatureEncoder::from_json(const Json& value,
                                                        const std::string& pointer) {
  const char* ctx = "FeatureEncoder::from_json";
  JsonReader<ModelFormatError> r(value, pointer, ctx);
  const Json* fields = r.raw("fields");
  const Json* state = r.raw("state");
  if (fields == nullptr) r.fail("fields", "required key is missing");
  if (state == nullptr) r.fail("state", "required key is missing");
  FeatureEncoder enc;
  try {
    enc.spec_ = FeatureSpec::from_json(*fields, r.child_pointer("fields"));
  } catch (const ConfigError& e) {
    throw ModelFormatError(e.what());
  }
  enc.declared_ = enc.spec_;
  const Json* kind = r.raw("benefit_kind");
  const Json* band = r.raw("benefit_band");
  if (kind != nullptr && !kind->is_null()) {
    std::vector<std::int64_t> k, b;
    r.convert(*kind, r.child_pointer("benefit_kind"), k);
    if (band == nullptr || band->is_null()) r.fail("benefit_band", "required with benefit_kind");
    r.convert(*band, r.child_pointer("benefit_band"), b);
    if (k.size() != b.size()) r.fail("benefit_band", "expected as many entries as benefit_kind");
    std::vector<std::int64_t> ch;
    if (r.read("benefit_channel", ch) && ch.size() != k.size()) {
      r.fail("benefit_channel", "expected as many entries as benefit_kind");
    }
    try {
      enc.set_benefit_codes(std::move(k), std::move(b), std::move(ch));
    } catch (const InputError& e) {
      throw ModelFormatError(e.what());
    }
  }
  r.read("dropped_fields", enc.dropped_);
  r.finish();
  const std::string state_ptr = r.child_pointer("state");
  if (!state->is_array() || state->size() != enc.spec_.fields.size()) {
    detail::raise<ModelFormatError>(ctx, ": ", state_ptr,
                                    ": expected an array with one entry per field (",
                                    enc.spec_.fields.size(), ")");
  }
  Offset total = 0;
  for (std::size_t i = 0; i < enc.spec_.fields.size(); ++i) {
    const auto& f = enc.spec_.fields[i];
    const std::string where = state_ptr + "/" + std::to_string(i);
    JsonReader<ModelFormatError> s((*state)[i], where, ctx);
    FieldState st;
    s.require("size", st.size);
    if (st.size < 0) s.fail("size", "expected >= 0");
    auto check_sorted = [&](const std::vector<double>& e, const char* key) {
      for (std::size_t j = 1; j < e.size(); ++j) {
        if (!(e[j - 1] < e[j])) s.fail(key, "edges must strictly increase");
      }
    };
    if (f.kind == FeatureField::Kind::categorical || f.kind == FeatureField::Kind::id) {
      if (f.hash_buckets > 0) {
        if (st.size != f.hash_buckets) s.fail("size", "expected hash_buckets");
      } else {
        s.require("vocab", st.vocab);
        if (!std::is_sorted(st.vocab.begin(), st.vocab.end()) ||
            std::adjacent_find(st.vocab.begin(), st.vocab.end()) != st.vocab.end()) {
          s.fail("vocab", "expected sorted distinct strings");
        }
        if (static_cast<std::size_t>(st.size) != st.vocab.size() + 1)
          s.fail("size", "expected len(vocab) + 1");
      }
    } else if (f.kind == FeatureField::Kind::numeric) {
      if (f.transform == FeatureField::Transform::standardize) {
        s.require("mean", st.mean);
        s.require("std", st.std);
        if (!(st.std > 0)) s.fail("std", "expected > 0");
        if (st.size != 1) s.fail("size", "expected 1");
      } else {
        s.require("edges", st.edges);
        check_sorted(st.edges, "edges");
        if (static_cast<std::size_t>(st.size) != st.edges.size() + 2)
          s.fail("size", "expected len(edges) + 2");
      }
    } else {
      // History (key "aggregates") and behavior (key "columns"): one entry per output column.
      const bool is_behavior = detail::reads_behavior(f);
      const char* key = is_behavior ? "columns" : "aggregates";
      std::vector<std::string> aggs, expected;
      int bins = 0;
      s.require(key, aggs);
      s.require("bins", bins);
      if (is_behavior) {
        expected = detail::behavior_field_columns(f);
      } else {
        for (int a : f.aggregates)
          expected.push_back(history_aggregate_names()[static_cast<std::size_t>(a)]);
      }
      if (aggs != expected)
        s.fail(key,
               is_behavior ? "expected the field's columns" : "expected the field's aggregates");
      if (bins != f.bins) s.fail("bins", "expected the field's bins");
      if (bins > 0) {
        s.require("edges", st.agg_edges);
        s.require("offsets", st.agg_offsets);
        if (st.agg_edges.size() != aggs.size() || st.agg_offsets.size() != aggs.size() + 1) {
          s.fail("offsets", "expected one edge list per aggregate and aggregates + 1 offsets");
        }
        Index o = 0;
        for (std::size_t a = 0; a < aggs.size(); ++a) {
          check_sorted(st.agg_edges[a], "edges");
          if (st.agg_offsets[a] != o) s.fail("offsets", "inconsistent with the edges");
          o += static_cast<Index>(st.agg_edges[a].size()) + 2 + (f.continuous ? 1 : 0);
        }
        if (st.agg_offsets.back() != o || st.size != o)
          s.fail("size", "inconsistent with the edges");
      } else if (static_cast<std::size_t>(st.size) != aggs.size()) {
        s.fail("size", "expected one feature per aggregate");
      }
      if (f.continuous) {
        s.require("mean", st.agg_mean);
        s.require("std", st.agg_std);
        if (st.agg_mean.size() != aggs.size() || st.agg_std.size() != aggs.size())
          s.fail("std", "expected one mean and one std per aggregate");
        for (std::size_t a = 0; a < aggs.size(); ++a) {
          if (!std::isfinite(st.agg_mean[a])) s.fail("mean", "expected finite numbers");
          if (!(st.agg_std[a] > 0) || !std::isfinite(st.agg_std[a]))
            s.fail("std", "expected finite numbers > 0");
        }
      }
    }
    if (f.kind == FeatureField::Kind::behavior_cf) {
      const Json* cf = s.raw("cf");
      if (cf == nullptr) s.fail("cf", "required key is missing");
      st.cf = BehaviorCF::from_json(*cf, s.child_pointer("cf"));
      if (st.cf.params().to_json() != f.cf.to_json()) s.fail("cf", "expected the field's params");
      if (f.cf_as_of != kNoTime && st.cf.as_of() != f.cf_as_of)
        s.fail("cf", "expected the field's as_of");
    }
    s.finish();
    total += st.size;
    if (total >= static_cast<Offset>(std::numeric_limits<Index>::max())) {
      s.fail("size", "more than 2^31 features in all");
    }
    enc.state_.push_back(std::move(st));
  }
  enc.fitted_ = true;
  enc.index_vocabularies();
  return enc;
}

PERKREC_INLINE FeatureEncoder FeatureEncoder::from_fm_metadata(const std::string& metadata) {
  const Json doc =
      parse_json_strict<ModelFormatError>(metadata, "FeatureEncoder::from_fm_metadata");
  if (!doc.is_object() || !doc.contains("encoder")) {
    detail::raise<ModelFormatError>(
        "FeatureEncoder::from_fm_metadata: /encoder: the model stores no encoder");
  }
  return from_json(doc.at("encoder"), "/encoder");
}

}  // namespace perkrec
