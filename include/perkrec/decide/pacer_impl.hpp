// Definitions for decide/pacer.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "perkrec/decide/pacer.hpp"

namespace perkrec {

// --- pacing
// ----------------------------------------------------------------------------------------

PERKREC_INLINE void PacingParams::validate() const {
  params::validate_fields(*this, "PacingParams");
  if (end <= start)
    detail::raise<ConfigError>("PacingParams: end must be after start (got ", start, " .. ", end,
                               ")");
  double prev = 0.0;
  for (std::size_t i = 0; i < spend_curve.size(); ++i) {
    const double x = spend_curve[i];
    if (!(x >= prev && x <= 1.0)) {
      detail::raise<ConfigError>("PacingParams: spend_curve[", i,
                                 "] must be non-decreasing in [0, 1] (got ", x, ")");
    }
    prev = x;
  }
}
PERKREC_INLINE Json PacingParams::to_json() const { return params::fields_to_json(*this); }
PERKREC_INLINE PacingParams PacingParams::from_json(const Json& j) {
  return params::fields_from_json<PacingParams>(j, "PacingParams::from_json");
}

PERKREC_INLINE double PacingParams::target_share(Timestamp t) const {
  if (t <= start) return 0.0;
  const double x = std::min(1.0, static_cast<double>(t - start) / static_cast<double>(end - start));
  if (spend_curve.empty()) return x;
  const double steps = static_cast<double>(spend_curve.size());
  const double pos = x * steps;  // point k (1-based) at pos = k
  const auto k = static_cast<std::size_t>(std::floor(pos));
  if (k >= spend_curve.size()) return spend_curve.back();
  const double left = k == 0 ? 0.0 : spend_curve[k - 1];
  return left + (spend_curve[k] - left) * (pos - static_cast<double>(k));
}

PERKREC_INLINE Pacer::Pacer(const AllocationConstraints& k, PacingParams p)
    : k_(k), params_(std::move(p)) {
  params_.validate();
  if (std::isnan(k_.budget) || k_.budget < 0) {
    detail::raise<ConfigError>("Pacer: constraints.budget must be >= 0 (got ", k_.budget, ")");
  }
  k_.budget = std::min(k_.budget, params_.budget);
  // Per-member vector sizes are checked against the member index in decide().
  const Index nu = static_cast<Index>(std::max(
      {k_.member_capacity.size(), k_.member_segment.size(),
       k_.n_kinds > 0 ? k_.member_kind_capacity.size() / static_cast<std::size_t>(k_.n_kinds)
                      : 0}));
  const Index nb = static_cast<Index>(
      std::max({k_.inventory.size(), k_.benefit_kind.size(), k_.benefit_group.size()}));
  try {
    k_.validate(nu, nb);
  } catch (const InputError& e) {
    detail::raise<InputError>("Pacer: ", e.what());
  }
  inventory_used_.assign(k_.inventory.size(), 0);
  const std::size_t ns = std::max(k_.segment_max_members.size(), k_.segment_max_cost.size());
  segment_members_.assign(ns, 0);
  segment_cost_.assign(ns, 0.0);
  lambda_ = params_.initial_multiplier;
  clock_ = params_.start;
}

PERKREC_INLINE double Pacer::update_multiplier_locked(Timestamp t) {
  // The curve's clock never runs backwards: a request decided after a later one (several
  // threads, or a late arrival) is paced at the latest time seen. Otherwise a lagging thread
  // would see spend far ahead of an earlier point of the curve and refuse everything.
  clock_ = std::max(clock_, t);
  const double B = params_.budget;
  if (!(B > 0) || !std::isfinite(B)) return lambda_ = params_.initial_multiplier;
  const double target = B * params_.target_share(clock_);
  const double ahead = (spent_ - target) / B;  // share of the budget spent ahead of the curve
  const double ref = ratio_count_ > 0 ? ratio_sum_ / static_cast<double>(ratio_count_) : 1.0;
  lambda_ = std::max(0.0, params_.initial_multiplier + params_.gain * ref * ahead / 0.01);
  return lambda_;
}

PERKREC_INLINE std::vector<std::int32_t> Pacer::decide(Index member, Timestamp t,
                                                       Span<const Index> benefit,
                                                       Span<const float> value,
                                                       Span<const float> cost, int max_new,
                                                       std::vector<ExclusionReason>* reasons) {
  const std::size_t n = benefit.size();
  if (max_new < -1)
    detail::raise<InputError>("Pacer::decide: max_new must be >= -1 (got ", max_new, ")");
  if (value.size() != n || cost.size() != n) {
    detail::raise<InputError>("Pacer::decide: benefit/value/cost have ", n, "/", value.size(), "/",
                              cost.size(), " entries (expected equal)");
  }
  if (member < 0)
    detail::raise<InputError>("Pacer::decide: member must be >= 0 (got ", member, ")");
  auto per_member = [&](std::size_t size, const char* name) {
    if (size != 0 && static_cast<std::size_t>(member) >= size) {
      detail::raise<InputError>("Pacer::decide: member ", member, " out of range of constraints.",
                                name, " (", size, " members)");
    }
  };
  per_member(k_.member_capacity.size(), "member_capacity");
  per_member(k_.member_segment.size(), "member_segment");
  if (k_.n_kinds > 0)
    per_member(k_.member_kind_capacity.size() / static_cast<std::size_t>(k_.n_kinds),
               "member_kind_capacity");
  const std::size_t nb =
      std::max({k_.inventory.size(), k_.benefit_kind.size(), k_.benefit_group.size()});
  for (std::size_t i = 0; i < n; ++i) {
    if (benefit[i] < 0 || (nb > 0 && static_cast<std::size_t>(benefit[i]) >= nb)) {
      detail::raise<InputError>("Pacer::decide: benefit[", i, "] out of range (got ", benefit[i],
                                ")");
    }
    if (!std::isfinite(value[i]))
      detail::raise<InputError>("Pacer::decide: value[", i, "] is not finite (got ", value[i], ")");
    if (!std::isfinite(cost[i]) || cost[i] < 0) {
      detail::raise<InputError>("Pacer::decide: cost[", i, "] must be finite and >= 0 (got ",
                                cost[i], ")");
    }
    for (std::size_t q = 0; q < i; ++q) {
      if (benefit[q] == benefit[i])
        detail::raise<InputError>("Pacer::decide: benefit ", benefit[i], " listed twice");
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  ++decisions_;
  for (std::size_t i = 0; i < n; ++i) {
    if (cost[i] > 0 && value[i] > 0) {
      ratio_sum_ += static_cast<double>(value[i]) / cost[i];
      ++ratio_count_;
    }
    if (value[i] > 0) {
      value_sum_ += value[i];
      ++value_count_;
    }
  }
  const double lam = update_multiplier_locked(t);
  // Inventory price: gain x (mean value seen) per 1% of the benefit's units used ahead of the
  // curve; a benefit at or behind the curve is free.
  const double inventory_price =
      value_count_ > 0 ? params_.gain * value_sum_ / static_cast<double>(value_count_) / 0.01 : 0.0;
  const double share = params_.target_share(clock_);
  auto mu = [&](Index b) {
    if (!params_.pace_inventory || k_.inventory.empty()) return 0.0;
    const std::int64_t cap = k_.inventory[static_cast<std::size_t>(b)];
    if (cap <= 0) return 0.0;  // unlimited (< 0) or none left (0, refused below)
    const double ahead = static_cast<double>(inventory_used_[static_cast<std::size_t>(b)]) /
                             static_cast<double>(cap) -
                         share;
    return ahead > 0 ? inventory_price * ahead : 0.0;
  };
  MemberState& ms = members_[member];
  int cap = k_.max_per_member;
  if (!k_.member_capacity.empty())
    cap = std::min<int>(cap, k_.member_capacity[static_cast<std::size_t>(member)]);
  const Index seg =
      k_.member_segment.empty() ? -1 : k_.member_segment[static_cast<std::size_t>(member)];
  const bool seg_limited = seg >= 0 && static_cast<std::size_t>(seg) < segment_members_.size();
  auto seg_max_members = [&]() -> std::int64_t {
    return seg_limited && static_cast<std::size_t>(seg) < k_.segment_max_members.size()
               ? k_.segment_max_members[static_cast<std::size_t>(seg)]
               : -1;
  };
  auto seg_max_cost = [&]() -> double {
    return seg_limited && static_cast<std::size_t>(seg) < k_.segment_max_cost.size()
               ? k_.segment_max_cost[static_cast<std::size_t>(seg)]
               : -1.0;
  };
  auto kind_of = [&](Index b) {
    return k_.benefit_kind.empty() ? -1 : k_.benefit_kind[static_cast<std::size_t>(b)];
  };
  auto group_of = [&](Index b) {
    return k_.benefit_group.empty() ? -1 : k_.benefit_group[static_cast<std::size_t>(b)];
  };
  auto kind_cap = [&](std::int32_t kd) {
    if (kd < 0) return std::numeric_limits<int>::max();
    int c = k_.max_per_kind > 0 ? k_.max_per_kind : std::numeric_limits<int>::max();
    if (!k_.member_kind_capacity.empty() && kd < k_.n_kinds) {
      c = std::min<int>(c, k_.member_kind_capacity[static_cast<std::size_t>(member) *
                                                       static_cast<std::size_t>(k_.n_kinds) +
                                                   static_cast<std::size_t>(kd)]);
    }
    return c;
  };
  using R = ExclusionReason;
  std::vector<R> reason(n, R::none);
  std::vector<std::pair<double, std::int32_t>> order;
  for (std::size_t i = 0; i < n; ++i) {
    const double v = value[i], c = cost[i];
    if (!(v > 0)) {
      reason[i] = R::not_positive;
    } else if (v < k_.min_return_per_cost * c) {
      reason[i] = R::min_return;
    } else if (v - lam * c <= 0) {
      reason[i] = R::below_multiplier;
    } else if (const double a = v - lam * c - mu(benefit[i]); a <= 0) {
      reason[i] = R::inventory;  // priced out: its inventory is ahead of the curve
    } else {
      order.emplace_back(-a, static_cast<std::int32_t>(i));
    }
  }
  std::sort(order.begin(), order.end());
  std::vector<std::int32_t> chosen;
  for (const auto& [neg_a, i] : order) {
    R& why = reason[static_cast<std::size_t>(i)];
    if (static_cast<int>(ms.benefits.size()) >= cap ||
        (max_new >= 0 && static_cast<int>(chosen.size()) >= max_new)) {
      why = R::member_cap;  // the member's cap, or this call's max_new
      continue;
    }
    const Index b = benefit[static_cast<std::size_t>(i)];
    const double c = cost[static_cast<std::size_t>(i)];
    if (std::find(ms.benefits.begin(), ms.benefits.end(), b) != ms.benefits.end()) {
      why = R::member_cap;  // held already
      continue;
    }
    if (spent_ + c > k_.budget) {
      why = R::budget;
      continue;
    }
    if (!k_.inventory.empty() && k_.inventory[static_cast<std::size_t>(b)] >= 0 &&
        inventory_used_[static_cast<std::size_t>(b)] >= k_.inventory[static_cast<std::size_t>(b)]) {
      why = R::inventory;
      continue;
    }
    const std::int32_t g = group_of(b), kd = kind_of(b);
    bool conflict = false;
    int same_kind = 0;
    for (Index held : ms.benefits) {
      conflict = conflict || (g >= 0 && group_of(held) == g);
      same_kind += kd >= 0 && kind_of(held) == kd;
    }
    if (conflict) {
      why = R::stacking;
      continue;
    }
    if (kd >= 0 && same_kind >= kind_cap(kd)) {
      why = R::kind_cap;
      continue;
    }
    if (seg_limited) {
      const std::int64_t mm = seg_max_members();
      const double mc = seg_max_cost();
      if ((ms.benefits.empty() && mm >= 0 &&
           segment_members_[static_cast<std::size_t>(seg)] >= mm) ||
          (mc >= 0 && segment_cost_[static_cast<std::size_t>(seg)] + c > mc)) {
        why = R::segment_quota;
        continue;
      }
      if (ms.benefits.empty()) ++segment_members_[static_cast<std::size_t>(seg)];
      segment_cost_[static_cast<std::size_t>(seg)] += c;
    }
    spent_ += c;
    if (!k_.inventory.empty()) ++inventory_used_[static_cast<std::size_t>(b)];
    ms.benefits.push_back(b);
    chosen.push_back(i);
    ++issued_;
  }
  std::sort(chosen.begin(), chosen.end());
  if (reasons != nullptr) *reasons = std::move(reason);
  return chosen;
}

PERKREC_INLINE double Pacer::spent() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return spent_;
}
PERKREC_INLINE double Pacer::multiplier() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lambda_;
}
PERKREC_INLINE std::int64_t Pacer::decisions() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return decisions_;
}
PERKREC_INLINE std::int64_t Pacer::issued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return issued_;
}

}  // namespace perkrec
