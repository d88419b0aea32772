// InteractionMatrix: the members x benefits confidence matrix that collaborative-filtering
// models learn from, built from an EventLog.
//
// Each event adds  event_weights[type] * 0.5^(age / half_life)  to its (member, benefit) cell,
// where age is the time from the event to the reference time. Cells with several events are
// combined by sum (default) or max. Events without a benefit and event types of weight 0 add
// nothing; cells that stay 0 are not stored.
//
// Only events strictly before `cut_time` are used when it is set; it is then also the
// reference time for decay (otherwise the log's last timestamp is). So a matrix built with
// cut_time = the split cut never sees the test period.
//
// Example:
//   perkrec::InteractionParams p;
//   p.event_weights[static_cast<int>(perkrec::EventType::redeemed)] = 5.0f;
//   p.half_life_days = 60;
//   perkrec::InteractionMatrix m = perkrec::build_interaction_matrix(train_log, p);
//
// Cost: O(events + nnz log(row length)); parallel over members, identical for any thread
// count.
#pragma once

#include <array>
#include <cstdint>

#include "perkrec/core/config.hpp"
#include "perkrec/core/params.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/data/event_log.hpp"

namespace perkrec {

/// A members x benefits CSR matrix of float confidences, column indices sorted per row.
using InteractionMatrix = CsrMatrix<float>;

struct InteractionParams {
  enum class Combine : std::uint8_t { sum, max };

  /// Weight per EventType (issued, viewed, claimed, redeemed, expired, ordered); each finite,
  /// >= 0, not all 0.
  std::array<float, kNumEventTypes> event_weights = {0.0f, 0.25f, 1.0f, 4.0f, 0.0f, 0.0f};
  double half_life_days = 0.0;   ///< >= 0; 0 = no time decay
  Timestamp cut_time = kNoTime;  ///< use only events before it; kNoTime = all events
  Combine combine = Combine::sum;
  int num_threads = 0;  ///< 0 = OpenMP default

  static auto param_fields() {
    using P = InteractionParams;
    static constexpr params::EnumName<Combine> kCombines[] = {{Combine::sum, "sum"},
                                                              {Combine::max, "max"}};
    return std::make_tuple(
        params::field("event_weights", &P::event_weights),  // validate()
        params::field("half_life_days", &P::half_life_days, params::at_least(0)),
        params::renamed_from(params::field("cut_time", &P::cut_time), "end_time"),
        params::field("combine", &P::combine, kCombines),
        params::field("num_threads", &P::num_threads, params::threads()));
  }
  /// Throws ConfigError naming the field.
  void validate() const;
};

/// Builds the matrix; see the file comment.
PERKREC_INLINE InteractionMatrix build_interaction_matrix(const EventLog& log,
                                                          const InteractionParams& params = {});

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/features/interaction_matrix_impl.hpp"
#endif
