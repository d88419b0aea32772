// EventLog: the benefit event log, columnar, sorted by (member, time) and indexed by member.
//
// One event is (user, benefit, type, timestamp) with optional channel, order_amount, logging
// propensity and control-group flag:
//   issued    the program gave the benefit to the member (propensity = probability that the
//             logging policy issued it, when known)
//   viewed    the member opened the message or saw the benefit
//   claimed   the member collected it into their wallet
//   redeemed  the member used it on an order (order_amount = that order's amount)
//   expired   a claimed benefit ran out unused
//   ordered   the member placed an order (benefit = kNoBenefit unless the order used one)
// Only `ordered` events may have benefit = kNoBenefit (-1).
//
// Construction validates every row first (member and benefit ranges, event types, timestamps
// >= 0, finite non-negative amounts, propensities in (0, 1], control flags 0/1, channel codes)
// and throws InputError naming the first bad row and value. Events are then stably sorted by
// member and, within a member, by time (ties keep their input order), so the result does not
// depend on the thread count. Events may arrive in any order.
//
// Example:
//   perkrec::EventColumns c;
//   c.user = users; c.benefit = benefits; c.type = types; c.timestamp = times;
//   perkrec::EventLog log = perkrec::EventLog::from_columns(c, n_users, n_benefits);
//   for (perkrec::Offset e = log.user_begin(u); e < log.user_end(u); ++e) { ... }
//
// Cost: O(events) time and memory; parallel over members.
// Thread safety: an EventLog is immutable after construction; every method is const.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/error.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/data/id_map.hpp"
#include "perkrec/detail/large_vector.hpp"
#include "perkrec/io/serializable.hpp"

namespace perkrec {

enum class EventType : std::uint8_t { issued, viewed, claimed, redeemed, expired, ordered };
inline constexpr int kNumEventTypes = 6;

PERKREC_INLINE const char* to_string(EventType type);
/// Parses an event type name; throws InputError naming `context` and the value when unknown.
PERKREC_INLINE EventType parse_event_type(std::string_view name, const std::string& context);

/// Borrowed input columns for EventLog::from_columns. The four required columns must have one
/// entry per event; optional columns are either empty or of the same length.
struct EventColumns {
  Span<const Index> user;            ///< required, in [0, n_users)
  Span<const Index> benefit;         ///< required, in [0, n_benefits), or -1 for orders
  Span<const std::uint8_t> type;     ///< required, EventType values
  Span<const Timestamp> timestamp;   ///< required, seconds since the epoch, in [0, kMaxTimestamp)
  Span<const std::int16_t> channel;  ///< optional; -1 = unknown, else < channel_names
  Span<const float> order_amount;    ///< optional; finite, >= 0 (0 when absent)
  Span<const float> propensity;      ///< optional; logging propensity in (0, 1]
  Span<const std::uint8_t> control;  ///< optional; 1 = member is in the control group
};

class EventLog : public Serializable<EventLog> {
 public:
  static constexpr const char* kind = "EventLog";

  EventLog() = default;

  /// Validates and sorts the columns into a log. `n_users` / `n_benefits` of -1 are inferred
  /// as the largest index + 1, up to max(2^20, 64 x events) (a larger one is an InputError:
  /// one stray id must not allocate gigabytes; state the shape to go beyond). `channel_names`
  /// names the channel codes.
  static EventLog from_columns(const EventColumns& columns, Index n_users = -1,
                               Index n_benefits = -1, std::vector<std::string> channel_names = {},
                               int num_threads = 0);

  Offset size() const { return static_cast<Offset>(user_.size()); }
  bool empty() const { return user_.empty(); }
  Index n_users() const { return n_users_; }
  Index n_benefits() const { return n_benefits_; }

  Span<const Index> users() const { return user_; }
  Span<const Index> benefits() const { return benefit_; }
  Span<const std::uint8_t> types() const { return type_; }
  Span<const Timestamp> timestamps() const { return timestamp_; }
  Span<const std::int16_t> channels() const { return channel_; }
  Span<const float> order_amounts() const { return order_amount_; }
  /// Empty when the log has no propensities.
  Span<const float> propensities() const { return propensity_; }
  /// Empty when the log has no control flags.
  Span<const std::uint8_t> control() const { return control_; }
  bool has_propensity() const { return has_propensity_; }
  bool has_control() const { return has_control_; }

  EventType type(Offset e) const {
    return static_cast<EventType>(type_[static_cast<std::size_t>(e)]);
  }

  /// Member u's events are [user_begin(u), user_end(u)), in time order.
  Offset user_begin(Index u) const { return user_offsets_[static_cast<std::size_t>(u)]; }
  Offset user_end(Index u) const { return user_offsets_[static_cast<std::size_t>(u) + 1]; }
  const std::vector<Offset>& user_offsets() const { return user_offsets_; }

  const std::vector<std::string>& channel_names() const { return channel_names_; }

  /// Earliest / latest timestamp (kNoTime when empty).
  Timestamp min_time() const { return min_time_; }
  Timestamp max_time() const { return max_time_; }
  /// Number of events of each type.
  std::array<Offset, kNumEventTypes> count_by_type() const;

  /// External ids for members and benefits (empty maps when none were attached).
  const IdMap& user_ids() const { return user_ids_; }
  const IdMap& benefit_ids() const { return benefit_ids_; }
  /// Attaches external ids; each map must be empty or hold exactly n_users / n_benefits ids.
  void set_ids(IdMap users, IdMap benefits);

  /// The events with keep[e] != 0 (keep has one entry per event), same shape, ids and channels.
  EventLog filter(Span<const std::uint8_t> keep, int num_threads = 0) const;

  void write(ModelWriter& w, const std::string& prefix) const;
  static EventLog read(const ModelReader& r, const std::string& prefix);

 private:
  void finish_index();
  void fill_sorted(const EventColumns& columns, int num_threads);

  Index n_users_ = 0;
  Index n_benefits_ = 0;
  detail::LargeVector<Index> user_;
  detail::LargeVector<Index> benefit_;
  detail::LargeVector<std::uint8_t> type_;
  detail::LargeVector<Timestamp> timestamp_;
  detail::LargeVector<std::int16_t> channel_;
  detail::LargeVector<float> order_amount_;
  detail::LargeVector<float> propensity_;
  detail::LargeVector<std::uint8_t> control_;
  bool has_propensity_ = false;
  bool has_control_ = false;
  std::vector<Offset> user_offsets_ = std::vector<Offset>(1, 0);
  std::vector<std::string> channel_names_;
  Timestamp min_time_ = kNoTime;
  Timestamp max_time_ = kNoTime;
  IdMap user_ids_;
  IdMap benefit_ids_;
};

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/data/event_log_impl.hpp"
#endif
