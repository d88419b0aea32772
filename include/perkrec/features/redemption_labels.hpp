// Redemption labels of logged issues: which offers of a benefit to a member were redeemed within
// the benefit's window. These are the labels a redemption model trains on
// (perkrec.redemption_samples gives one row per issue with its label, BenefitPlanner fits the
// FM on them) and the rewards off-policy evaluation reads.
//
// An issue is an `issued` event with a benefit (benefit >= 0). Its label is 1 when the same
// member redeemed the same benefit at or after the second and at most
// window_days[benefit] x 86400 seconds after it; the first redemption at or after the issue
// decides. window_days holds one window per benefit index: > 0 (inf: any later redemption),
// or NaN for a benefit whose window is unknown (a benefit the catalog lacks): any later
// redemption counts and the window never counts as open. A benefit index at or beyond
// window_days.size() is unknown too. Besides the label each issue says whether it is `late`
// (label 0 although the member redeemed that benefit after the window) and `open` (label 0
// and issue time + window after the last event of the input: a label that may still turn 1).
// Event types are EventType codes; only `issued` and `redeemed` matter, other codes are other
// events.
//
// Example:
//   std::vector<double> windows;  // the catalog's validity
//   for (Index b = 0; b < catalog.size(); ++b) windows.push_back(catalog[b].validity_days);
//   perkrec::RedemptionLabels labels = perkrec::redemption_labels(log, windows);
//   // labels.event[i] is the position in the log, labels.label[i] its label
//
// Errors: InputError for columns of different lengths, or a window that is neither NaN nor
// > 0 (naming the benefit), before any work. Cost: O(E + R log R) for E events and R
// redemptions, serial. Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/data/event_log.hpp"

namespace perkrec {

/// One entry per issue, in the order of the input.
struct RedemptionLabels {
  std::vector<Offset> event;        ///< the issue's position in the input (row id)
  std::vector<std::uint8_t> label;  ///< 1 = redeemed within the window
  std::vector<std::uint8_t> late;   ///< 1 = label 0, but redeemed after the window
  std::vector<std::uint8_t> open;   ///< 1 = label 0 and the window not over at `last_time`
  Timestamp last_time = kNoTime;    ///< the input's last event time (kNoTime when empty)
};

/// See the file comment. `users`, `benefits`, `types` (EventType codes) and `times` are event
/// columns of one length, in any order; `window_days` one window per benefit index.
PERKREC_INLINE RedemptionLabels redemption_labels(Span<const Index> users,
                                                  Span<const Index> benefits,
                                                  Span<const std::uint8_t> types,
                                                  Span<const Timestamp> times,
                                                  Span<const double> window_days);

/// The same over an EventLog's events (`event` = position in the log).
PERKREC_INLINE RedemptionLabels redemption_labels(const EventLog& log,
                                                  Span<const double> window_days);

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/features/redemption_labels_impl.hpp"
#endif
