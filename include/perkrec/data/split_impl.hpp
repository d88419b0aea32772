// Definitions for split.hpp.
#pragma once

#include <cmath>
#include <limits>
#include <vector>

#include "perkrec/core/random.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/data/split.hpp"

namespace perkrec {

namespace detail {

inline Split split_with_test_mask(const EventLog& log, const std::vector<std::uint8_t>& is_test,
                                  int num_threads) {
  std::vector<std::uint8_t> is_train(is_test.size());
  for (std::size_t i = 0; i < is_test.size(); ++i) is_train[i] = !is_test[i];
  return Split{log.filter(is_train, num_threads), log.filter(is_test, num_threads)};
}

}  // namespace detail

PERKREC_INLINE Split split_by_time(const EventLog& log, Timestamp cut_time, int num_threads) {
  resolve_num_threads(num_threads);
  if (cut_time == kNoTime) detail::raise<InputError>("split_by_time: cut_time must be a timestamp");
  std::vector<std::uint8_t> is_test(static_cast<std::size_t>(log.size()));
  const Span<const Timestamp> t = log.timestamps();
  parallel_for(0, log.size(), num_threads, [&](Offset i) {
    is_test[static_cast<std::size_t>(i)] = t[static_cast<std::size_t>(i)] >= cut_time;
  });
  return detail::split_with_test_mask(log, is_test, num_threads);
}

PERKREC_INLINE Split split_leave_last_k(const EventLog& log, int k, std::uint32_t target_types,
                                        int num_threads) {
  resolve_num_threads(num_threads);
  if (k < 1) detail::raise<InputError>("split_leave_last_k: k must be >= 1 (got ", k, ")");
  if (target_types == 0 || target_types >= (1u << kNumEventTypes)) {
    detail::raise<InputError>(
        "split_leave_last_k: target_types must be a non-empty mask of "
        "event types (got ",
        target_types, ")");
  }
  std::vector<std::uint8_t> is_test(static_cast<std::size_t>(log.size()), 0);
  const Span<const Timestamp> t = log.timestamps();
  const Span<const std::uint8_t> type = log.types();
  parallel_for(
      0, log.n_users(), num_threads,
      [&](Offset user) {
        const auto u = static_cast<Index>(user);
        const Offset begin = log.user_begin(u), end = log.user_end(u);
        // Walk back to the k-th last target event; k + 1 are needed to keep one in train.
        int seen = 0;
        Offset kth = -1;
        bool more = false;
        for (Offset e = end - 1; e >= begin; --e) {
          if (target_types & (1u << type[static_cast<std::size_t>(e)])) {
            if (seen == k) {
              more = true;
              break;
            }
            ++seen;
            kth = e;
          }
        }
        if (!more) return;
        // Everything at or after the cut goes to test, ties included, so no train event shares
        // a time with (or follows) a test event of the same member.
        const Timestamp cut = t[static_cast<std::size_t>(kth)];
        for (Offset e = begin; e < end; ++e) {
          is_test[static_cast<std::size_t>(e)] = t[static_cast<std::size_t>(e)] >= cut;
        }
      },
      Schedule::dynamic, 256);
  return detail::split_with_test_mask(log, is_test, num_threads);
}

PERKREC_INLINE Split split_random_users(const EventLog& log, double test_fraction,
                                        std::uint64_t seed, int num_threads) {
  resolve_num_threads(num_threads);
  if (!(test_fraction >= 0 && test_fraction <= 1)) {
    detail::raise<InputError>("split_random_users: test_fraction must be in [0, 1] (got ",
                              test_fraction, ")");
  }
  std::vector<std::uint8_t> is_test(static_cast<std::size_t>(log.size()), 0);
  parallel_for(0, log.n_users(), num_threads, [&](Offset user) {
    const auto u = static_cast<Index>(user);
    Rng rng(seed, static_cast<std::uint64_t>(u), 0x5917ULL);
    if (rng.uniform() >= test_fraction) return;
    for (Offset e = log.user_begin(u); e < log.user_end(u); ++e)
      is_test[static_cast<std::size_t>(e)] = 1;
  });
  return detail::split_with_test_mask(log, is_test, num_threads);
}

}  // namespace perkrec
