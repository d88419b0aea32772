// Definitions for behavior_log.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <unordered_set>
#include <utility>

#include "perkrec/core/threading.hpp"
#include "perkrec/data/behavior_log.hpp"
#include "perkrec/detail/blocks.hpp"

namespace perkrec {

namespace detail {

// Empty when row i is valid (an unknown item, -1, is valid here), else the reason.
inline std::string behavior_row_problem(const BehaviorColumns& c, std::size_t i, Index n_users,
                                        Index n_items, std::int32_t n_actions) {
  const Index u = c.user[i];
  if (u < -1 || u >= n_users) {
    return concat("user: out of range (got ", u, ", expected 0 <= user < ", n_users,
                  ", or -1 for an unknown member)");
  }
  const Index it = c.item[i];
  if (it < -1 || it >= n_items) {
    return concat("item: out of range (got ", it, ", expected 0 <= item < ", n_items,
                  ", or -1 for an unknown item)");
  }
  const Timestamp t = c.timestamp[i];
  if (t < kMinTimestamp || t >= kMaxTimestamp) {
    return concat("timestamp: outside the supported range (got ", t, ", expected ", kMinTimestamp,
                  " <= t < ", kMaxTimestamp, ")");
  }
  if (!c.action.empty() && (c.action[i] < 0 || c.action[i] >= n_actions)) {
    return concat("action: code out of range (got ", c.action[i], ", expected 0 <= code < ",
                  n_actions, ")");
  }
  if (!c.quantity.empty() && !(std::isfinite(c.quantity[i]) && c.quantity[i] >= 0)) {
    return concat("quantity: must be finite and >= 0 (got ", c.quantity[i], ")");
  }
  if (!c.amount.empty() && !(std::isfinite(c.amount[i]) && c.amount[i] >= 0)) {
    return concat("amount: must be finite and >= 0 (got ", c.amount[i], ")");
  }
  return {};
}

}  // namespace detail

PERKREC_INLINE BehaviorLog BehaviorLog::from_columns(const BehaviorColumns& c,
                                                     const BehaviorOptions& o) {
  const char* ctx = "BehaviorLog::from_columns";
  const std::size_t n = c.user.size();
  const int num_threads = o.num_threads;
  resolve_num_threads(num_threads);
  auto check_length = [&](const char* name, std::size_t len, bool optional) {
    detail::check_column_length(ctx, name, len, n, optional);
  };
  check_length("item", c.item.size(), false);
  check_length("timestamp", c.timestamp.size(), false);
  check_length("action", c.action.size(), true);
  check_length("quantity", c.quantity.size(), true);
  check_length("amount", c.amount.size(), true);
  check_length("basket", c.basket.size(), true);
  if (o.n_users < -1)
    detail::raise<InputError>(ctx, ": n_users must be >= 0 or -1 (got ", o.n_users, ")");
  if (o.n_items < -1)
    detail::raise<InputError>(ctx, ": n_items must be >= 0 or -1 (got ", o.n_items, ")");
  if (o.action_names.empty() || o.action_names.size() > 255) {
    detail::raise<InputError>(ctx, ": action_names must hold 1 to 255 names (got ",
                              o.action_names.size(), ")");
  }
  {
    std::unordered_set<std::string> seen;
    for (const auto& a : o.action_names) {
      if (a.empty()) detail::raise<InputError>(ctx, ": action_names holds an empty name");
      if (!seen.insert(a).second)
        detail::raise<InputError>(ctx, ": action '", a, "' is listed twice");
    }
  }

  const detail::Blocks blocks(static_cast<Offset>(n));
  const auto n_blocks = static_cast<std::size_t>(blocks.count);
  Index n_users = o.n_users, n_items = o.n_items;
  if (n_users < 0 || n_items < 0) {
    // Inferred shapes size per-member and per-item arrays: one stray id must not allocate
    // gigabytes.
    const Offset cap = std::max<Offset>(Offset{1} << 20, 64 * static_cast<Offset>(n));
    std::vector<Index> mu(n_blocks, -1), mi(n_blocks, -1);
    parallel_for(0, blocks.count, num_threads, [&](Offset b) {
      Index a = -1, z = -1;
      for (Offset i = blocks.begin(b); i < blocks.end(b); ++i) {
        a = std::max(a, c.user[static_cast<std::size_t>(i)]);
        z = std::max(z, c.item[static_cast<std::size_t>(i)]);
      }
      mu[static_cast<std::size_t>(b)] = a;
      mi[static_cast<std::size_t>(b)] = z;
    });
    auto infer = [&](const std::vector<Index>& m, const char* what) {
      Index top = -1;
      for (Index v : m) top = std::max(top, v);
      if (top == std::numeric_limits<Index>::max() || top + 1 > cap) {
        detail::raise<InputError>(ctx, ": the largest ", what, " index (", top, ") implies more ",
                                  what, "s than ", cap, " for ", n, " events; pass n_", what,
                                  "s explicitly");
      }
      return top + 1;
    };
    if (n_users < 0) n_users = infer(mu, "user");
    if (n_items < 0) n_items = infer(mi, "item");
  }

  // Validate every row; report the lowest bad row whatever the threads.
  const auto n_actions = static_cast<std::int32_t>(o.action_names.size());
  std::vector<Offset> first_bad(n_blocks, -1), first_unknown(n_blocks, -1),
      unknown_count(n_blocks, 0);
  std::vector<Offset> unknown_user_count(n_blocks, 0);
  std::vector<std::uint8_t> unsorted_block(n_blocks, 0);
  parallel_for(0, blocks.count, num_threads, [&](Offset b) {
    const auto bb = static_cast<std::size_t>(b);
    bool unsorted = false;
    for (Offset i = blocks.begin(b); i < blocks.end(b); ++i) {
      const auto k = static_cast<std::size_t>(i);
      if (!detail::behavior_row_problem(c, k, n_users, n_items, n_actions).empty()) {
        first_bad[bb] = i;
        return;
      }
      if (c.item[k] < 0 || c.user[k] < 0) {
        if (first_unknown[bb] < 0) first_unknown[bb] = i;
        ++(c.item[k] < 0 ? unknown_count[bb] : unknown_user_count[bb]);
      }
      if (i > blocks.begin(b)) {
        const Index pu = c.user[k - 1], u = c.user[k];
        unsorted = unsorted || pu > u || (pu == u && c.timestamp[k - 1] > c.timestamp[k]);
      }
    }
    unsorted_block[bb] = unsorted;
  });
  for (Offset bad : first_bad) {
    if (bad >= 0) {
      detail::raise<InputError>(ctx, ": row ", bad, ": ",
                                detail::behavior_row_problem(c, static_cast<std::size_t>(bad),
                                                             n_users, n_items, n_actions));
    }
  }
  Offset unknown = 0, unknown_users = 0;
  for (std::size_t b = 0; b < n_blocks; ++b) {
    if (o.unknown == UnknownItems::raise && first_unknown[b] >= 0) {
      const auto row = static_cast<std::size_t>(first_unknown[b]);
      Offset total = 0;
      for (std::size_t k = 0; k < n_blocks; ++k) total += unknown_count[k] + unknown_user_count[k];
      detail::raise<InputError>(
          ctx, ": row ", row,
          c.item[row] < 0 ? ": item: unknown item id (" : ": user: unknown member id (", total,
          " rows name items or members the maps lack; unknown='drop' skips them)");
    }
    unknown += unknown_count[b];
    unknown_users += unknown_user_count[b];
  }
  bool sorted = unknown == 0 && unknown_users == 0;
  for (Offset b = 0; b < blocks.count && sorted; ++b) {
    if (unsorted_block[static_cast<std::size_t>(b)]) sorted = false;
    if (b > 0) {
      const auto k = static_cast<std::size_t>(blocks.begin(b));
      if (c.user[k - 1] > c.user[k] ||
          (c.user[k - 1] == c.user[k] && c.timestamp[k - 1] > c.timestamp[k])) {
        sorted = false;
      }
    }
  }

  BehaviorLog log;
  log.n_users_ = n_users;
  log.n_items_ = n_items;
  log.unknown_items_ = unknown;
  log.unknown_users_ = unknown_users;
  log.action_names_ = o.action_names;
  log.has_baskets_ = !c.basket.empty() || (n == 0 && c.basket.data() != nullptr);
  const std::size_t kept = n - static_cast<std::size_t>(unknown + unknown_users);

  // Member offsets (kept rows only).
  log.user_offsets_.assign(static_cast<std::size_t>(n_users) + 1, 0);
  for (std::size_t i = 0; i < n; ++i) {
    if (c.item[i] >= 0 && c.user[i] >= 0)
      ++log.user_offsets_[static_cast<std::size_t>(c.user[i]) + 1];
  }
  for (std::size_t u = 0; u < static_cast<std::size_t>(n_users); ++u)
    log.user_offsets_[u + 1] += log.user_offsets_[u];

  log.item_.resize(kept);
  log.action_.resize(kept);
  log.timestamp_.resize(kept);
  log.quantity_.resize(kept);
  log.amount_.resize(kept);
  if (!c.basket.empty()) log.basket_.resize(kept);

  if (sorted) {
    std::memcpy(log.item_.data(), c.item.data(), kept * sizeof(Index));
    std::memcpy(log.timestamp_.data(), c.timestamp.data(), kept * sizeof(Timestamp));
    if (!c.basket.empty())
      std::memcpy(log.basket_.data(), c.basket.data(), kept * sizeof(std::int64_t));
    if (!c.amount.empty()) std::memcpy(log.amount_.data(), c.amount.data(), kept * sizeof(double));
    parallel_for(0, blocks.count, num_threads, [&](Offset b) {
      for (Offset i = blocks.begin(b); i < blocks.end(b); ++i) {
        const auto k = static_cast<std::size_t>(i);
        log.action_[k] =
            c.action.empty() ? std::uint8_t{0} : static_cast<std::uint8_t>(c.action[k]);
        log.quantity_[k] = c.quantity.empty() ? 1.0f : static_cast<float>(c.quantity[k]);
        if (c.amount.empty()) log.amount_[k] = 0.0;
      }
    });
  } else {
    // Records are partitioned by member range into at most 1024 buckets (sequential reads, few
    // write streams), each bucket is counting-sorted by member into the columns (its output
    // range is small enough for the cache), then members whose events were out of time order
    // are sorted. A permutation gather would read the input at random: memory-latency bound
    // once the log outgrows the cache. Every pass is stable and its blocks depend only on the
    // data, so the order is the same for any thread count.
    struct Record {
      Timestamp time;
      double amount;
      std::int64_t basket;
      Index user;
      Index item;
      float quantity;
      std::uint8_t action;
    };
    const Index users_or_one = std::max<Index>(n_users, 1);
    int shift = 0;
    while ((static_cast<std::int64_t>(users_or_one - 1) >> shift) >= 1024) ++shift;
    const auto n_buckets = static_cast<std::size_t>((users_or_one - 1) >> shift) + 1;
    const detail::Blocks rb(static_cast<Offset>(n), 1 << 16, 64);
    const auto nb = static_cast<std::size_t>(rb.count);
    auto keep_row = [&](std::size_t i) { return c.item[i] >= 0 && c.user[i] >= 0; };
    std::vector<Offset> cursor(nb * n_buckets, 0);  // [block][bucket]
    parallel_for(0, rb.count, num_threads, [&](Offset blk) {
      Offset* h = cursor.data() + static_cast<std::size_t>(blk) * n_buckets;
      for (Offset i = rb.begin(blk); i < rb.end(blk); ++i) {
        const auto k = static_cast<std::size_t>(i);
        if (keep_row(k)) ++h[static_cast<std::size_t>(c.user[k] >> shift)];
      }
    });
    const std::vector<Offset> bucket_start = detail::bucket_cursors(cursor, nb, n_buckets);
    detail::LargeVector<Record> records(kept);
    parallel_for(0, rb.count, num_threads, [&](Offset blk) {
      Offset* pos = cursor.data() + static_cast<std::size_t>(blk) * n_buckets;
      for (Offset i = rb.begin(blk); i < rb.end(blk); ++i) {
        const auto k = static_cast<std::size_t>(i);
        if (!keep_row(k)) continue;
        Record r;
        r.time = c.timestamp[k];
        r.amount = c.amount.empty() ? 0.0 : c.amount[k];
        r.basket = c.basket.empty() ? std::int64_t{-1} : c.basket[k];
        r.user = c.user[k];
        r.item = c.item[k];
        r.quantity = c.quantity.empty() ? 1.0f : static_cast<float>(c.quantity[k]);
        r.action = c.action.empty() ? std::uint8_t{0} : static_cast<std::uint8_t>(c.action[k]);
        records[static_cast<std::size_t>(pos[static_cast<std::size_t>(r.user >> shift)]++)] = r;
      }
    });
    const bool with_basket = !c.basket.empty();
    parallel_for(
        0, static_cast<Offset>(n_buckets), num_threads,
        [&](Offset bk) {
          const auto first_user = static_cast<std::size_t>(bk << shift);
          const auto last_user =
              static_cast<std::size_t>(std::min<Offset>(n_users, (bk + 1) << shift));
          if (first_user >= last_user) return;
          std::vector<Offset> next(
              log.user_offsets_.begin() + static_cast<std::ptrdiff_t>(first_user),
              log.user_offsets_.begin() + static_cast<std::ptrdiff_t>(last_user));
          for (Offset i = bucket_start[static_cast<std::size_t>(bk)];
               i < bucket_start[static_cast<std::size_t>(bk) + 1]; ++i) {
            const Record& r = records[static_cast<std::size_t>(i)];
            const auto d =
                static_cast<std::size_t>(next[static_cast<std::size_t>(r.user) - first_user]++);
            log.item_[d] = r.item;
            log.timestamp_[d] = r.time;
            log.action_[d] = r.action;
            log.quantity_[d] = r.quantity;
            log.amount_[d] = r.amount;
            if (with_basket) log.basket_[d] = r.basket;
          }
        },
        Schedule::dynamic, 1);
    records.clear();
    records.shrink_to_fit();
    parallel_for(
        0, n_users, num_threads,
        [&](Offset u) {
          const auto begin =
              static_cast<std::size_t>(log.user_offsets_[static_cast<std::size_t>(u)]);
          const auto end =
              static_cast<std::size_t>(log.user_offsets_[static_cast<std::size_t>(u) + 1]);
          const auto t0 = log.timestamp_.begin() + static_cast<std::ptrdiff_t>(begin);
          if (std::is_sorted(t0, log.timestamp_.begin() + static_cast<std::ptrdiff_t>(end))) return;
          std::vector<std::size_t> order(end - begin);
          for (std::size_t i = 0; i < order.size(); ++i) order[i] = begin + i;
          std::stable_sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) {
            return log.timestamp_[x] < log.timestamp_[y];
          });
          auto permute = [&](auto& column) {
            if (column.empty()) return;
            using T = typename std::decay_t<decltype(column)>::value_type;
            std::vector<T> moved(order.size());
            for (std::size_t i = 0; i < order.size(); ++i) moved[i] = column[order[i]];
            std::copy(moved.begin(), moved.end(),
                      column.begin() + static_cast<std::ptrdiff_t>(begin));
          };
          permute(log.item_);
          permute(log.action_);
          permute(log.quantity_);
          permute(log.amount_);
          permute(log.basket_);
          permute(log.timestamp_);
        },
        Schedule::dynamic, 256);
  }
  if (kept > 0) {
    const detail::Blocks out_blocks(static_cast<Offset>(kept));
    std::vector<Timestamp> lo(static_cast<std::size_t>(out_blocks.count)), hi(lo.size());
    parallel_for(0, out_blocks.count, num_threads, [&](Offset b) {
      Timestamp a = std::numeric_limits<Timestamp>::max(),
                z = std::numeric_limits<Timestamp>::min();
      for (Offset k = out_blocks.begin(b); k < out_blocks.end(b); ++k) {
        a = std::min(a, log.timestamp_[static_cast<std::size_t>(k)]);
        z = std::max(z, log.timestamp_[static_cast<std::size_t>(k)]);
      }
      lo[static_cast<std::size_t>(b)] = a;
      hi[static_cast<std::size_t>(b)] = z;
    });
    log.min_time_ = *std::min_element(lo.begin(), lo.end());
    log.max_time_ = *std::max_element(hi.begin(), hi.end());
  }
  return log;
}

PERKREC_INLINE std::vector<Index> BehaviorLog::users() const {
  std::vector<Index> out(item_.size());
  for (Index u = 0; u < n_users_; ++u) {
    std::fill(out.begin() + user_begin(u), out.begin() + user_end(u), u);
  }
  return out;
}

PERKREC_INLINE Offset BehaviorLog::before(Index u, Timestamp t) const {
  if (u < 0 || u >= n_users_) {
    detail::raise<InputError>("BehaviorLog::before: user out of range (got ", u,
                              ", expected 0 <= user < ", n_users_, ")");
  }
  const auto lo = timestamp_.begin() + user_begin(u), hi = timestamp_.begin() + user_end(u);
  return static_cast<Offset>(std::lower_bound(lo, hi, t) - timestamp_.begin());
}

PERKREC_INLINE int BehaviorLog::find_action(const std::string& name) const {
  for (std::size_t i = 0; i < action_names_.size(); ++i) {
    if (action_names_[i] == name) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace perkrec
