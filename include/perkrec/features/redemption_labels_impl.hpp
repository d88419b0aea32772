// Definitions for redemption_labels.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "perkrec/core/error.hpp"
#include "perkrec/features/redemption_labels.hpp"

namespace perkrec {

PERKREC_INLINE RedemptionLabels redemption_labels(Span<const Index> users,
                                                  Span<const Index> benefits,
                                                  Span<const std::uint8_t> types,
                                                  Span<const Timestamp> times,
                                                  Span<const double> window_days) {
  const std::size_t n = users.size();
  if (benefits.size() != n || types.size() != n || times.size() != n) {
    detail::raise<InputError>("redemption_labels: users, benefits, types and times have ", n, ", ",
                              benefits.size(), ", ", types.size(), " and ", times.size(),
                              " rows (expected the same)");
  }
  for (std::size_t b = 0; b < window_days.size(); ++b) {
    const double w = window_days[b];
    if (!(std::isnan(w) || w > 0)) {
      detail::raise<InputError>("redemption_labels: window_days[", b, "] must be > 0 or NaN (got ",
                                w, ")");
    }
  }
  const auto issued = static_cast<std::uint8_t>(EventType::issued);
  const auto redeemed = static_cast<std::uint8_t>(EventType::redeemed);
  RedemptionLabels out;
  // Redemptions sorted by (member, benefit, time): the first one of an issue's pair at or after
  // its time is one binary search away.
  std::vector<Offset> red;
  for (std::size_t e = 0; e < n; ++e) {
    if (types[e] == redeemed && benefits[e] >= 0) red.push_back(static_cast<Offset>(e));
  }
  auto key_less = [&](Offset a, Offset b) {
    const auto ia = static_cast<std::size_t>(a), ib = static_cast<std::size_t>(b);
    if (users[ia] != users[ib]) return users[ia] < users[ib];
    if (benefits[ia] != benefits[ib]) return benefits[ia] < benefits[ib];
    return times[ia] < times[ib];
  };
  std::sort(red.begin(), red.end(), key_less);
  for (std::size_t e = 0; e < n; ++e) {
    out.last_time = e == 0 ? times[e] : std::max(out.last_time, times[e]);
  }
  const double last = static_cast<double>(out.last_time);
  const double unknown = std::numeric_limits<double>::quiet_NaN();
  for (std::size_t e = 0; e < n; ++e) {
    if (types[e] != issued || benefits[e] < 0) continue;
    const Index u = users[e], b = benefits[e];
    const Timestamp t = times[e];
    const auto it = std::lower_bound(red.begin(), red.end(), t, [&](Offset r, Timestamp value) {
      const auto ir = static_cast<std::size_t>(r);
      if (users[ir] != u) return users[ir] < u;
      if (benefits[ir] != b) return benefits[ir] < b;
      return times[ir] < value;
    });
    const bool found = it != red.end() && users[static_cast<std::size_t>(*it)] == u &&
                       benefits[static_cast<std::size_t>(*it)] == b;
    const double window =
        static_cast<std::size_t>(b) < window_days.size() ? window_days[b] : unknown;
    // Compared in double as (redemption - issue) seconds against window x 86400: a NaN window
    // is never exceeded and never open.
    const bool late =
        found && static_cast<double>(times[static_cast<std::size_t>(*it)] - t) > window * 86400.0;
    const bool label = found && !late;
    out.event.push_back(static_cast<Offset>(e));
    out.label.push_back(label ? 1 : 0);
    out.late.push_back(late ? 1 : 0);
    out.open.push_back(!label && static_cast<double>(t) + window * 86400.0 > last ? 1 : 0);
  }
  return out;
}

PERKREC_INLINE RedemptionLabels redemption_labels(const EventLog& log,
                                                  Span<const double> window_days) {
  return redemption_labels(log.users(), log.benefits(), log.types(), log.timestamps(), window_days);
}

}  // namespace perkrec
