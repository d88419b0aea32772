// Train/test splits of an EventLog.
//
//  - split_by_time: one global cut; train holds events strictly before it, test the rest.
//  - split_leave_last_k: per member, the last k "target" events (claimed and redeemed by
//    default) and everything at or after the earliest of them go to test; earlier events go to
//    train. Members with k or fewer target events stay wholly in train.
//  - split_random_users: a seeded random share of members goes wholly to test (a member
//    holdout for cold-start evaluation).
// No split lets a member's future into training: for every member, each train event is
// strictly earlier than each of that member's test events (the time split guarantees this
// across members too). Both halves keep the log's shape, ids and channel names.
//
// Thread safety: pure functions of their inputs.
#pragma once

#include <cstdint>
#include <initializer_list>

#include "perkrec/core/config.hpp"
#include "perkrec/data/event_log.hpp"

namespace perkrec {

struct Split {
  EventLog train;
  EventLog test;
};

/// Bit mask of event types, e.g. event_mask({EventType::claimed, EventType::redeemed}).
inline std::uint32_t event_mask(std::initializer_list<EventType> types) {
  std::uint32_t m = 0;
  for (EventType t : types) m |= 1u << static_cast<unsigned>(t);
  return m;
}

/// Train: timestamp < cut_time; test: timestamp >= cut_time.
PERKREC_INLINE Split split_by_time(const EventLog& log, Timestamp cut_time, int num_threads = 0);

/// See the file comment. `k` >= 1; `target_types` a non-empty event_mask.
PERKREC_INLINE Split split_leave_last_k(
    const EventLog& log, int k,
    std::uint32_t target_types = event_mask({EventType::claimed, EventType::redeemed}),
    int num_threads = 0);

/// Each member lands in test with probability `test_fraction` in [0, 1], drawn from the
/// stream (seed, member): the same members for any thread count.
PERKREC_INLINE Split split_random_users(const EventLog& log, double test_fraction,
                                        std::uint64_t seed = 42, int num_threads = 0);

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/data/split_impl.hpp"
#endif
