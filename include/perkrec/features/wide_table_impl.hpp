// Definitions for wide_table.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "perkrec/core/error.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/features/wide_table.hpp"

namespace perkrec {

PERKREC_INLINE void WideTableParams::validate() const {
  params::validate_fields(*this, "WideTableParams");
}

PERKREC_INLINE int WideTable::find(const std::string& name) const {
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return static_cast<int>(i);
  }
  return -1;
}

PERKREC_INLINE const std::vector<double>& WideTable::column(const std::string& name) const {
  const int i = find(name);
  if (i < 0) detail::raise<InputError>("WideTable::column: no column named '", name, "'");
  return columns[static_cast<std::size_t>(i)];
}

namespace detail {

/// Benefit -> active dimension indices, flattened (CSR).
struct BenefitDimensionIndex {
  std::vector<int> offsets{0};
  std::vector<int> dims;
  void build(const BenefitDimensions& d, const Catalog& catalog) {
    offsets.assign(1, 0);
    dims.clear();
    std::vector<int> active;
    for (Index b = 0; b < catalog.size(); ++b) {
      active.clear();
      d.encode(catalog[b], active);
      dims.insert(dims.end(), active.begin(), active.end());
      offsets.push_back(static_cast<int>(dims.size()));
    }
  }
  const int* begin(Index b) const { return dims.data() + offsets[static_cast<std::size_t>(b)]; }
  const int* end(Index b) const { return dims.data() + offsets[static_cast<std::size_t>(b) + 1]; }
};

inline double median_of(std::vector<double>& v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  const std::size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  double m = v[mid];
  if (v.size() % 2 == 0) {
    m = 0.5 * (m + *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid)));
  }
  return m;
}

inline double ratio_or_nan(double num, double den) {
  return den > 0 ? num / den : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace detail

PERKREC_INLINE WideTable wide_table(const EventLog& log, const Catalog& catalog, Timestamp cut_time,
                                    const WideTableParams& params) {
  params.validate();
  if (catalog.size() != log.n_benefits()) {
    detail::raise<InputError>("wide_table: catalog holds ", catalog.size(),
                              " benefits (expected the log's n_benefits, ", log.n_benefits(), ")");
  }
  const BenefitDimensions dims = BenefitDimensions::for_catalog(catalog, params.dimensions);
  detail::BenefitDimensionIndex index;
  index.build(dims, catalog);
  const int nd = dims.size();

  static const char* kBase[] = {"issued",      "viewed",   "claimed",    "redeemed",
                                "expired",     "orders",   "claim_rate", "redemption_rate",
                                "expiry_rate", "view_rate"};
  static const char* kTail[] = {"median_days_claim_to_redemption",
                                "stacked_order_share",
                                "recency_days",
                                "frequency",
                                "monetary",
                                "total_spend",
                                "orders_30d",
                                "orders_90d",
                                "active_days_90d",
                                "tenure_days",
                                "mean_interorder_days",
                                "cv_interorder",
                                "points_earned",
                                "points_redeemed"};
  constexpr int kNumBase = 10;
  WideTable t;
  t.n_users = log.n_users();
  t.cut_time = cut_time;
  for (const char* n : kBase) t.names.emplace_back(n);
  for (const char* prefix : {"issued:", "claim_rate:", "redemption_rate:"}) {
    for (const auto& n : dims.names()) t.names.push_back(prefix + n);
  }
  for (const char* n : kTail) t.names.emplace_back(n);
  const auto nu = static_cast<std::size_t>(log.n_users());
  t.columns.assign(t.names.size(), std::vector<double>(nu, 0.0));
  const int dim_base = kNumBase;
  const int tail_base = kNumBase + 3 * nd;

  const Span<const Index> benefit = log.benefits();
  const Span<const std::uint8_t> type = log.types();
  const Span<const Timestamp> time = log.timestamps();
  const Span<const float> amount = log.order_amounts();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  constexpr double kDay = static_cast<double>(kSecondsPerDay);

  struct Scratch {
    std::vector<double> dim_issued, dim_claimed, dim_redeemed;
    std::vector<std::pair<Index, Timestamp>> last_claim;
    std::vector<double> claim_to_redeem;
    std::vector<Timestamp> order_times;
    std::vector<Timestamp> active_days;
  };
  const int threads = resolve_num_threads(params.num_threads);
  std::vector<Scratch> scratch(static_cast<std::size_t>(threads));

  parallel_for(
      0, log.n_users(), threads,
      [&](Offset uo, int thread) {
        const auto u = static_cast<Index>(uo);
        const auto row = static_cast<std::size_t>(u);
        Scratch& s = scratch[static_cast<std::size_t>(thread)];
        s.dim_issued.assign(static_cast<std::size_t>(nd), 0.0);
        s.dim_claimed.assign(static_cast<std::size_t>(nd), 0.0);
        s.dim_redeemed.assign(static_cast<std::size_t>(nd), 0.0);
        s.last_claim.clear();
        s.claim_to_redeem.clear();
        s.order_times.clear();
        s.active_days.clear();
        double counts[kNumEventTypes] = {};
        double spend = 0, points_earned = 0, points_redeemed = 0;
        double stacked_orders = 0;
        Timestamp first_time = kNoTime;
        const Offset begin = log.user_begin(u), end = log.user_end(u);
        for (Offset e = begin; e < end; ++e) {
          const Timestamp ts = time[static_cast<std::size_t>(e)];
          if (ts >= cut_time) break;  // sorted by time within the member
          if (first_time == kNoTime) first_time = ts;
          const auto ty = static_cast<EventType>(type[static_cast<std::size_t>(e)]);
          const Index b = benefit[static_cast<std::size_t>(e)];
          counts[static_cast<int>(ty)] += 1;
          if (cut_time - ts <= 90 * kSecondsPerDay) {
            const Timestamp day = ts / kSecondsPerDay;
            if (s.active_days.empty() || s.active_days.back() != day) s.active_days.push_back(day);
          }
          switch (ty) {
            case EventType::issued:
              for (const int* d = index.begin(b); d != index.end(b); ++d)
                s.dim_issued[static_cast<std::size_t>(*d)] += 1;
              break;
            case EventType::claimed: {
              for (const int* d = index.begin(b); d != index.end(b); ++d)
                s.dim_claimed[static_cast<std::size_t>(*d)] += 1;
              if (catalog[b].kind == BenefitKind::points) points_earned += catalog[b].face_value;
              bool found = false;
              for (auto& [cb, ct] : s.last_claim) {
                if (cb == b) {
                  ct = ts;
                  found = true;
                }
              }
              if (!found) s.last_claim.emplace_back(b, ts);
              break;
            }
            case EventType::redeemed: {
              for (const int* d = index.begin(b); d != index.end(b); ++d)
                s.dim_redeemed[static_cast<std::size_t>(*d)] += 1;
              if (catalog[b].kind == BenefitKind::points) points_redeemed += catalog[b].face_value;
              for (const auto& [cb, ct] : s.last_claim) {
                if (cb == b) s.claim_to_redeem.push_back(static_cast<double>(ts - ct) / kDay);
              }
              break;
            }
            case EventType::ordered: {
              s.order_times.push_back(ts);
              spend += amount.empty() ? 0.0 : amount[static_cast<std::size_t>(e)];
              // Redemptions at the same instant as this order were used on it.
              int same = 0;
              for (Offset f = e; f-- > begin && time[static_cast<std::size_t>(f)] == ts;) {
                same += type[static_cast<std::size_t>(f)] ==
                        static_cast<std::uint8_t>(EventType::redeemed);
              }
              for (Offset f = e + 1; f < end && time[static_cast<std::size_t>(f)] == ts; ++f) {
                same += type[static_cast<std::size_t>(f)] ==
                        static_cast<std::uint8_t>(EventType::redeemed);
              }
              stacked_orders += same >= 2 ? 1 : 0;
              break;
            }
            default:
              break;
          }
        }
        auto set = [&](int col, double v) { t.columns[static_cast<std::size_t>(col)][row] = v; };
        const double issued = counts[static_cast<int>(EventType::issued)];
        const double viewed = counts[static_cast<int>(EventType::viewed)];
        const double claimed = counts[static_cast<int>(EventType::claimed)];
        const double redeemed = counts[static_cast<int>(EventType::redeemed)];
        const double expired = counts[static_cast<int>(EventType::expired)];
        const double orders = counts[static_cast<int>(EventType::ordered)];
        set(0, issued);
        set(1, viewed);
        set(2, claimed);
        set(3, redeemed);
        set(4, expired);
        set(5, orders);
        set(6, detail::ratio_or_nan(claimed, issued));
        set(7, detail::ratio_or_nan(redeemed, claimed));
        set(8, detail::ratio_or_nan(expired, claimed));
        set(9, detail::ratio_or_nan(viewed, issued));
        for (int d = 0; d < nd; ++d) {
          const auto k = static_cast<std::size_t>(d);
          set(dim_base + d, s.dim_issued[k]);
          set(dim_base + nd + d, detail::ratio_or_nan(s.dim_claimed[k], s.dim_issued[k]));
          set(dim_base + 2 * nd + d, detail::ratio_or_nan(s.dim_redeemed[k], s.dim_claimed[k]));
        }
        const double tenure =
            first_time == kNoTime ? nan : static_cast<double>(cut_time - first_time) / kDay;
        double orders_30 = 0, orders_90 = 0;
        for (Timestamp o : s.order_times) {
          orders_30 += cut_time - o <= 30 * kSecondsPerDay;
          orders_90 += cut_time - o <= 90 * kSecondsPerDay;
        }
        double mean_gap = nan, cv_gap = nan;
        if (s.order_times.size() >= 2) {
          const double n_gaps = static_cast<double>(s.order_times.size() - 1);
          mean_gap =
              static_cast<double>(s.order_times.back() - s.order_times.front()) / kDay / n_gaps;
          if (s.order_times.size() >= 3 && mean_gap > 0) {
            double ss = 0;
            for (std::size_t i = 1; i < s.order_times.size(); ++i) {
              const double g =
                  static_cast<double>(s.order_times[i] - s.order_times[i - 1]) / kDay - mean_gap;
              ss += g * g;
            }
            cv_gap = std::sqrt(ss / (n_gaps - 1)) / mean_gap;
          }
        }
        set(tail_base + 0, detail::median_of(s.claim_to_redeem));
        set(tail_base + 1, detail::ratio_or_nan(stacked_orders, orders));
        set(tail_base + 2, s.order_times.empty()
                               ? nan
                               : static_cast<double>(cut_time - s.order_times.back()) / kDay);
        set(tail_base + 3, tenure > 0 ? orders / std::max(tenure, 1.0) * 30.0 : nan);
        set(tail_base + 4, detail::ratio_or_nan(spend, orders));
        set(tail_base + 5, spend);
        set(tail_base + 6, orders_30);
        set(tail_base + 7, orders_90);
        set(tail_base + 8, static_cast<double>(s.active_days.size()));
        set(tail_base + 9, tenure);
        set(tail_base + 10, mean_gap);
        set(tail_base + 11, cv_gap);
        set(tail_base + 12, points_earned);
        set(tail_base + 13, points_redeemed);
      },
      Schedule::dynamic, 256);
  return t;
}

}  // namespace perkrec
