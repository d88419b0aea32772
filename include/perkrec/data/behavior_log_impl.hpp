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

// Whether row i passes behavior_row_problem (the fast test; the message is built only for the
// row that fails).
inline bool behavior_row_ok(const BehaviorColumns& c, std::size_t i, Index n_users, Index n_items,
                            std::int32_t n_actions) {
  const Index u = c.user[i], it = c.item[i];
  const Timestamp t = c.timestamp[i];
  bool ok =
      u >= -1 && u < n_users && it >= -1 && it < n_items && t >= kMinTimestamp && t < kMaxTimestamp;
  if (!c.action.empty()) ok = ok && c.action[i] >= 0 && c.action[i] < n_actions;
  if (!c.quantity.empty()) ok = ok && std::isfinite(c.quantity[i]) && c.quantity[i] >= 0;
  if (!c.amount.empty()) ok = ok && std::isfinite(c.amount[i]) && c.amount[i] >= 0;
  return ok;
}

inline int bit_width_u64(std::uint64_t v) {
  int bits = 0;
  while (v != 0) {
    ++bits;
    v >>= 1;
  }
  return bits;
}

// Stable LSD radix sort of keys[0, m) by their low `bits` bits, carrying pos (set to 0..m-1
// here). Digits of 11 bits keep each histogram (16 KiB) in L1; a digit that is the same for all
// keys is skipped, so a bucket costs one histogram pass plus one scatter per varying digit.
// key_tmp and pos_tmp hold m entries; hist holds 2048 * ceil(bits / 11) entries.
template <class Pos>
void radix_sort_bucket(std::uint64_t* keys, Pos* pos, std::size_t m, int bits,
                       std::uint64_t* key_tmp, Pos* pos_tmp, std::vector<std::size_t>& hist) {
  constexpr int kDigitBits = 11;
  constexpr std::size_t kDigits = std::size_t{1} << kDigitBits;
  for (std::size_t j = 0; j < m; ++j) pos[j] = static_cast<Pos>(j);
  const int passes = (bits + kDigitBits - 1) / kDigitBits;
  if (m < 2 || passes == 0) return;
  hist.assign(kDigits * static_cast<std::size_t>(passes), 0);
  for (std::size_t j = 0; j < m; ++j) {
    const std::uint64_t k = keys[j];
    for (int p = 0; p < passes; ++p)
      ++hist[static_cast<std::size_t>(p) * kDigits + ((k >> (p * kDigitBits)) & (kDigits - 1))];
  }
  std::uint64_t* k_in = keys;
  std::uint64_t* k_out = key_tmp;
  Pos* p_in = pos;
  Pos* p_out = pos_tmp;
  for (int p = 0; p < passes; ++p) {
    std::size_t* h = hist.data() + static_cast<std::size_t>(p) * kDigits;
    const int shift = p * kDigitBits;
    if (h[(k_in[0] >> shift) & (kDigits - 1)] == m) continue;
    std::size_t total = 0;
    for (std::size_t d = 0; d < kDigits; ++d) {
      const std::size_t count = h[d];
      h[d] = total;
      total += count;
    }
    for (std::size_t j = 0; j < m; ++j) {
      const std::size_t d = h[(k_in[j] >> shift) & (kDigits - 1)]++;
      k_out[d] = k_in[j];
      p_out[d] = p_in[j];
    }
    std::swap(k_in, k_out);
    std::swap(p_in, p_out);
  }
  if (k_in != keys) {
    std::copy(k_in, k_in + m, keys);
    std::copy(p_in, p_in + m, pos);
  }
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
  std::vector<Timestamp> block_min_time(n_blocks, std::numeric_limits<Timestamp>::max());
  std::vector<Timestamp> block_max_time(n_blocks, std::numeric_limits<Timestamp>::min());
  parallel_for(0, blocks.count, num_threads, [&](Offset b) {
    const auto bb = static_cast<std::size_t>(b);
    bool unsorted = false;
    Timestamp lo = std::numeric_limits<Timestamp>::max(),
              hi = std::numeric_limits<Timestamp>::min();
    for (Offset i = blocks.begin(b); i < blocks.end(b); ++i) {
      const auto k = static_cast<std::size_t>(i);
      if (!detail::behavior_row_ok(c, k, n_users, n_items, n_actions)) {
        first_bad[bb] = i;
        return;
      }
      if (c.item[k] < 0 || c.user[k] < 0) {
        if (first_unknown[bb] < 0) first_unknown[bb] = i;
        ++(c.item[k] < 0 ? unknown_count[bb] : unknown_user_count[bb]);
      } else {
        lo = std::min(lo, c.timestamp[k]);
        hi = std::max(hi, c.timestamp[k]);
      }
      if (i > blocks.begin(b)) {
        const Index pu = c.user[k - 1], u = c.user[k];
        unsorted = unsorted || pu > u || (pu == u && c.timestamp[k - 1] > c.timestamp[k]);
      }
    }
    unsorted_block[bb] = unsorted;
    block_min_time[bb] = lo;
    block_max_time[bb] = hi;
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
  const std::size_t kept = n - static_cast<std::size_t>(unknown + unknown_users);
  const Timestamp min_time =
      kept == 0 ? kNoTime : *std::min_element(block_min_time.begin(), block_min_time.end());
  const Timestamp max_time =
      kept == 0 ? kNoTime : *std::max_element(block_max_time.begin(), block_max_time.end());

  BehaviorLog log;
  log.n_users_ = n_users;
  log.n_items_ = n_items;
  log.unknown_items_ = unknown;
  log.unknown_users_ = unknown_users;
  log.action_names_ = o.action_names;
  log.has_baskets_ = !c.basket.empty() || (n == 0 && c.basket.data() != nullptr);
  log.min_time_ = min_time;
  log.max_time_ = max_time;
  log.user_offsets_.assign(static_cast<std::size_t>(n_users) + 1, 0);

  // user_offsets_[u] = the first position whose member is >= u, from the members in log order
  // (member_at(j)): each u is written by exactly one position, so blocks run in parallel.
  auto fill_offsets = [&](auto member_at) {
    const detail::Blocks kb(static_cast<Offset>(kept));
    parallel_for(0, kb.count, num_threads, [&](Offset b) {
      Offset prev = kb.begin(b) == 0 ? -1 : member_at(static_cast<std::size_t>(kb.begin(b)) - 1);
      for (Offset j = kb.begin(b); j < kb.end(b); ++j) {
        const Offset cur = member_at(static_cast<std::size_t>(j));
        for (Offset u = prev + 1; u <= cur; ++u) log.user_offsets_[static_cast<std::size_t>(u)] = j;
        prev = cur;
      }
    });
    const Offset last = kept == 0 ? -1 : member_at(kept - 1);
    for (Offset u = last + 1; u <= n_users; ++u)
      log.user_offsets_[static_cast<std::size_t>(u)] = static_cast<Offset>(kept);
  };

  log.item_.resize(kept);
  log.action_.resize(kept);
  log.timestamp_.resize(kept);
  log.quantity_.resize(kept);
  log.amount_.resize(kept);
  if (!c.basket.empty()) log.basket_.resize(kept);

  if (sorted) {
    fill_offsets([&](std::size_t j) { return static_cast<Offset>(c.user[j]); });
    parallel_for(0, blocks.count, num_threads, [&](Offset b) {
      const auto first = static_cast<std::size_t>(blocks.begin(b));
      const auto rows = static_cast<std::size_t>(blocks.end(b)) - first;
      std::memcpy(log.item_.data() + first, c.item.data() + first, rows * sizeof(Index));
      std::memcpy(log.timestamp_.data() + first, c.timestamp.data() + first,
                  rows * sizeof(Timestamp));
      if (!c.basket.empty()) {
        std::memcpy(log.basket_.data() + first, c.basket.data() + first,
                    rows * sizeof(std::int64_t));
      }
      for (std::size_t k = first; k < first + rows; ++k) {
        log.action_[k] =
            c.action.empty() ? std::uint8_t{0} : static_cast<std::uint8_t>(c.action[k]);
        log.quantity_[k] = c.quantity.empty() ? 1.0f : static_cast<float>(c.quantity[k]);
        log.amount_[k] = c.amount.empty() ? 0.0 : c.amount[k];
      }
    });
    return log;
  }
  if (kept == 0) return log;

  // A two-level stable radix sort that never materializes records. Each kept row gets a key,
  // (member << time_bits) | (time - min_time) — or the member alone where that would not fit in
  // 64 bits — whose top 10 bits pick one of at most 1024 buckets. Keys are partitioned into
  // buckets (sequential reads, at most 1024 write streams), each bucket is radix-sorted in cache
  // into a bucket-local permutation, and then the other columns are partitioned the same way
  // straight into their output arrays (all in one pass over the rows: one bucket read and one
  // cursor per row serve every column) and permuted within each bucket through a small
  // per-thread buffer (all columns of a bucket in turn). A global permutation gather would read
  // the input at random (memory-latency bound once the log outgrows the cache) and per-event
  // records would cost 40 bytes per event; this way the temporaries are 10 bytes per event while
  // sorting (keys, bucket ids) and 6 while placing the columns (bucket ids, permutation). Every
  // pass is stable and its blocks depend only on the data, so ties in time keep their input
  // order and the log is the same for any thread count.
  const int threads = resolve_num_threads(num_threads);
  const int user_bits = detail::bit_width_u64(static_cast<std::uint64_t>(n_users - 1));
  const int time_bits = detail::bit_width_u64(static_cast<std::uint64_t>(max_time - min_time));
  const bool packed = user_bits + time_bits <= 64;
  const int key_time_bits = packed ? time_bits : 0;
  const int bucket_shift = std::max(0, user_bits + key_time_bits - 10);
  auto key_of = [&](std::size_t k) {
    const auto u = static_cast<std::uint64_t>(c.user[k]);
    if (!packed) return u;
    return (u << key_time_bits) | static_cast<std::uint64_t>(c.timestamp[k] - min_time);
  };
  auto member_of_key = [&](std::uint64_t key) { return static_cast<Offset>(key >> key_time_bits); };
  const std::uint64_t max_key =
      (static_cast<std::uint64_t>(n_users - 1) << key_time_bits) |
      (packed ? static_cast<std::uint64_t>(max_time - min_time) : std::uint64_t{0});
  const auto n_buckets = static_cast<std::size_t>(max_key >> bucket_shift) + 1;
  constexpr std::uint16_t kDropped = 0xFFFF;

  const detail::Blocks rb(static_cast<Offset>(n), 1 << 16, 64);
  const auto nb = static_cast<std::size_t>(rb.count);
  detail::LargeVector<std::uint16_t> bucket_of(n);
  std::vector<Offset> block_cursor(nb * n_buckets, 0);  // [block][bucket]
  parallel_for(0, rb.count, num_threads, [&](Offset blk) {
    Offset* h = block_cursor.data() + static_cast<std::size_t>(blk) * n_buckets;
    for (Offset i = rb.begin(blk); i < rb.end(blk); ++i) {
      const auto k = static_cast<std::size_t>(i);
      if (c.item[k] < 0 || c.user[k] < 0) {
        bucket_of[k] = kDropped;
        continue;
      }
      const auto bk = static_cast<std::uint16_t>(key_of(k) >> bucket_shift);
      bucket_of[k] = bk;
      ++h[bk];
    }
  });
  const std::vector<Offset> bucket_start = detail::bucket_cursors(block_cursor, nb, n_buckets);
  std::size_t largest = 0;
  for (std::size_t bk = 0; bk < n_buckets; ++bk) {
    largest = std::max(largest, static_cast<std::size_t>(bucket_start[bk + 1] - bucket_start[bk]));
  }

  // Calls write(d, k) for every kept row k, d its position in its bucket's range, in input
  // order within each bucket.
  auto partition_rows = [&](auto write) {
    std::vector<Offset> cursor = block_cursor;
    parallel_for(0, rb.count, num_threads, [&](Offset blk) {
      Offset* pos = cursor.data() + static_cast<std::size_t>(blk) * n_buckets;
      for (Offset i = rb.begin(blk); i < rb.end(blk); ++i) {
        const auto k = static_cast<std::size_t>(i);
        const std::uint16_t bk = bucket_of[k];
        if (bk == kDropped) continue;
        write(static_cast<std::size_t>(pos[bk]++), k);
      }
    });
  };
  // Writes value_of(k) of every kept row k to its bucket's range of `out`.
  auto partition = [&](auto* out, auto value_of) {
    partition_rows([&](std::size_t d, std::size_t k) { out[d] = value_of(k); });
  };
  auto for_each_bucket = [&](auto body) {
    parallel_for(
        0, static_cast<Offset>(n_buckets), num_threads,
        [&](Offset bk, int tid) {
          const auto first = static_cast<std::size_t>(bucket_start[static_cast<std::size_t>(bk)]);
          const auto m =
              static_cast<std::size_t>(bucket_start[static_cast<std::size_t>(bk) + 1]) - first;
          if (m > 0) body(first, m, static_cast<std::size_t>(tid));
        },
        Schedule::dynamic, 1);
  };

  auto sort_and_place = [&](auto pos_tag) {
    using Pos = decltype(pos_tag);
    detail::LargeVector<Pos> perm(kept);
    {
      // Packed keys are sorted in the timestamp column itself (its low bits are the time), so
      // the times need no pass of their own.
      detail::LargeVector<std::uint64_t> member_keys(packed ? 0 : kept);
      std::uint64_t* keys =
          packed ? reinterpret_cast<std::uint64_t*>(log.timestamp_.data()) : member_keys.data();
      partition(keys, key_of);
      // Without packed keys the buckets are ordered by member alone; time breaks ties.
      if (!packed) partition(log.timestamp_.data(), [&](std::size_t k) { return c.timestamp[k]; });
      std::vector<detail::LargeVector<std::uint64_t>> key_tmp(static_cast<std::size_t>(threads));
      std::vector<detail::LargeVector<Pos>> pos_tmp(static_cast<std::size_t>(threads));
      std::vector<std::vector<std::size_t>> hist(static_cast<std::size_t>(threads));
      for_each_bucket([&](std::size_t first, std::size_t m, std::size_t tid) {
        auto& kt = key_tmp[tid];
        auto& pt = pos_tmp[tid];
        if (kt.size() < m) kt.resize(largest);
        if (pt.size() < m) pt.resize(largest);
        std::uint64_t* kk = keys + first;
        Pos* out = perm.data() + first;
        if (packed) {
          detail::radix_sort_bucket(kk, out, m, bucket_shift, kt.data(), pt.data(), hist[tid]);
          return;
        }
        const Timestamp* tt = log.timestamp_.data() + first;
        for (std::size_t j = 0; j < m; ++j) out[j] = static_cast<Pos>(j);
        std::sort(out, out + m, [&](Pos x, Pos y) {
          if (kk[x] != kk[y]) return kk[x] < kk[y];
          if (tt[x] != tt[y]) return tt[x] < tt[y];
          return x < y;
        });
        for (std::size_t j = 0; j < m; ++j) kt[j] = kk[out[j]];
        std::copy(kt.begin(), kt.begin() + static_cast<std::ptrdiff_t>(m), kk);
      });
      fill_offsets([&](std::size_t j) { return member_of_key(keys[j]); });
      if (packed) {
        const std::uint64_t time_mask = (std::uint64_t{1} << key_time_bits) - 1;
        const detail::Blocks kb(static_cast<Offset>(kept));
        parallel_for(0, kb.count, num_threads, [&](Offset b) {
          for (Offset j = kb.begin(b); j < kb.end(b); ++j) {
            const auto e = static_cast<std::size_t>(j);
            log.timestamp_[e] = min_time + static_cast<Timestamp>(keys[e] & time_mask);
          }
        });
      }
    }
    // Permutes each bucket of the partitioned columns (null = absent) into (member, time)
    // order, every column of a bucket in turn while its permutation is in cache. The buffer
    // holds a bucket of any column (at most 8 bytes per value), copied through bytes.
    auto permute = [&](auto*... columns) {
      std::vector<detail::LargeVector<std::uint64_t>> tmp(static_cast<std::size_t>(threads));
      for_each_bucket([&](std::size_t first, std::size_t m, std::size_t tid) {
        auto& buf = tmp[tid];
        if (buf.size() < m) buf.resize(largest);
        auto* bytes = reinterpret_cast<unsigned char*>(buf.data());
        const Pos* order = perm.data() + first;
        auto permute_one = [&](auto* column) {
          using T = std::remove_pointer_t<decltype(column)>;
          static_assert(sizeof(T) <= sizeof(std::uint64_t) && std::is_trivially_copyable_v<T>);
          if (column == nullptr) return;
          T* col = column + first;
          std::memcpy(bytes, col, m * sizeof(T));
          for (std::size_t j = 0; j < m; ++j)
            std::memcpy(col + j, bytes + static_cast<std::size_t>(order[j]) * sizeof(T), sizeof(T));
        };
        (permute_one(columns), ...);
      });
    };
    auto fill = [&](auto& column, auto value) {
      const detail::Blocks kb(static_cast<Offset>(kept));
      parallel_for(0, kb.count, num_threads, [&](Offset b) {
        std::fill(column.begin() + kb.begin(b), column.begin() + kb.end(b), value);
      });
    };
    if (!packed) permute(log.timestamp_.data());
    if (c.action.empty()) fill(log.action_, std::uint8_t{0});
    if (c.quantity.empty()) fill(log.quantity_, 1.0f);
    if (c.amount.empty()) fill(log.amount_, 0.0);
    // The other columns are partitioned together: one pass over the rows reads each row's
    // bucket once and one cursor per bucket serves every column (absent columns have a null
    // output and are skipped); then each is permuted within its buckets.
    auto optional_out = [&](auto& column, bool present) {
      return present ? column.data() : nullptr;
    };
    std::uint8_t* const action_out = optional_out(log.action_, !c.action.empty());
    float* const quantity_out = optional_out(log.quantity_, !c.quantity.empty());
    double* const amount_out = optional_out(log.amount_, !c.amount.empty());
    std::int64_t* const basket_out = optional_out(log.basket_, !c.basket.empty());
    partition_rows([&](std::size_t d, std::size_t k) {
      log.item_[d] = c.item[k];
      if (action_out != nullptr) action_out[d] = static_cast<std::uint8_t>(c.action[k]);
      if (quantity_out != nullptr) quantity_out[d] = static_cast<float>(c.quantity[k]);
      if (amount_out != nullptr) amount_out[d] = c.amount[k];
      if (basket_out != nullptr) basket_out[d] = c.basket[k];
    });
    permute(log.item_.data(), action_out, quantity_out, amount_out, basket_out);
  };
  if (largest <= std::numeric_limits<std::uint32_t>::max()) {
    sort_and_place(std::uint32_t{});
  } else {
    sort_and_place(std::uint64_t{});
  }
  return log;
}

PERKREC_INLINE Offset lookup_behavior_ids(const BehaviorIds& r, const IdMap& users,
                                          const IdMap& items, int num_threads) {
  const char* ctx = "lookup_behavior_ids";
  if (r.user.size() != r.user_ids.size() || r.item.size() != r.item_ids.size()) {
    detail::raise<InputError>(ctx, ": output lengths (", r.user.size(), ", ", r.item.size(),
                              ") differ from the ids' (", r.user_ids.size(), ", ",
                              r.item_ids.size(), ")");
  }
  const std::size_t n = std::max({r.user_ids.size(), r.item_ids.size(), r.timestamp.size()});
  detail::check_column_length(ctx, "user_ids", r.user_ids.size(), n, true);
  detail::check_column_length(ctx, "item_ids", r.item_ids.size(), n, true);
  detail::check_column_length(ctx, "timestamp", r.timestamp.size(), n, true);
  if (!r.user_ids.empty() && users.key_type() == IdMap::KeyType::string)
    detail::raise<InputError>(ctx, ": the member map holds string ids (got integer ids)");
  if (!r.item_ids.empty() && items.key_type() == IdMap::KeyType::string)
    detail::raise<InputError>(ctx, ": the item map holds string ids (got integer ids)");
  const detail::IntegerIdLookup user_table(users), item_table(items);
  const bool with_users = !r.user_ids.empty(), with_items = !r.item_ids.empty(),
             with_times = !r.timestamp.empty();
  const detail::Blocks blocks(static_cast<Offset>(n));
  std::vector<Offset> first_bad(static_cast<std::size_t>(blocks.count), -1);
  parallel_for(0, blocks.count, num_threads, [&](Offset b) {
    for (Offset i = blocks.begin(b); i < blocks.end(b); ++i) {
      const auto k = static_cast<std::size_t>(i);
      if (with_users) r.user[k] = user_table.find(r.user_ids[k]);
      if (with_items) r.item[k] = item_table.find(r.item_ids[k]);
      if (with_times && (r.timestamp[k] < kMinTimestamp || r.timestamp[k] >= kMaxTimestamp)) {
        first_bad[static_cast<std::size_t>(b)] = i;
        return;
      }
    }
  });
  for (const Offset bad : first_bad) {
    if (bad >= 0) return bad;
  }
  return -1;
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

PERKREC_INLINE std::string BehaviorLog::quoted_action_names() const {
  std::string out;
  for (const auto& a : action_names_) out += (out.empty() ? "'" : ", '") + a + "'";
  return out;
}

PERKREC_INLINE int BehaviorLog::action_code(const std::string& name, const char* ctx) const {
  const int code = find_action(name);
  if (code < 0) {
    detail::raise<InputError>(ctx, ": unknown action '", name, "' (the behaviour log has actions ",
                              quoted_action_names(), ")");
  }
  return code;
}

PERKREC_INLINE void BehaviorLog::write(ModelWriter& w, const std::string& prefix) const {
  Json& c = content_section(w, prefix);
  c["n_users"] = n_users_;
  c["n_items"] = n_items_;
  c["action_names"] = action_names_;
  c["has_baskets"] = has_baskets_;
  c["unknown_items"] = unknown_items_;
  c["unknown_users"] = unknown_users_;
  const auto n = static_cast<std::int64_t>(size());
  w.add(prefix + "user", users());
  w.add(prefix + "item", item_.data(), {n});
  w.add(prefix + "action", action_.data(), {n});
  w.add(prefix + "timestamp", timestamp_.data(), {n});
  w.add(prefix + "quantity", quantity_.data(), {n});
  w.add(prefix + "amount", amount_.data(), {n});
  if (has_baskets_) w.add(prefix + "basket", basket_.data(), {n});
  if (user_ids_.size() > 0) user_ids_.write(w, prefix + "user_ids.");
}

PERKREC_INLINE void BehaviorLog::set_user_ids(IdMap ids) {
  if (ids.size() != 0 && ids.size() != n_users_) {
    detail::raise<InputError>("BehaviorLog::set_user_ids: the id map holds ", ids.size(),
                              " ids (expected 0 or n_users = ", n_users_, ")");
  }
  user_ids_ = std::move(ids);
}

PERKREC_INLINE BehaviorLog BehaviorLog::read(const ModelReader& r, const std::string& prefix) {
  JsonReader<ModelFormatError> jr(content_section(r, prefix), content_pointer(prefix),
                                  "BehaviorLog::read");
  BehaviorOptions o;
  bool has_baskets = false;
  Offset unknown_items = 0, unknown_users = 0;
  jr.require("n_users", o.n_users);
  jr.require("n_items", o.n_items);
  jr.require("action_names", o.action_names);
  jr.require("has_baskets", has_baskets);
  jr.require("unknown_items", unknown_items);
  jr.require("unknown_users", unknown_users);
  if (prefix.empty()) jr.raw("user_ids.");  // optional: files before the ids were stored
  jr.finish();
  if (o.n_users < 0 || o.n_items < 0 || unknown_items < 0 || unknown_users < 0)
    r.bad_content("negative count");
  r.check_count("n_users", o.n_users);
  r.check_count("n_items", o.n_items);
  const Span<const Index> user = r.array<Index>(prefix + "user");
  const std::vector<std::int64_t> shape{static_cast<std::int64_t>(user.size())};
  BehaviorColumns cols;
  cols.user = user;
  cols.item = r.array<Index>(prefix + "item", shape);
  cols.timestamp = r.array<Timestamp>(prefix + "timestamp", shape);
  const Span<const std::uint8_t> action = r.array<std::uint8_t>(prefix + "action", shape);
  const Span<const float> quantity = r.array<float>(prefix + "quantity", shape);
  const std::vector<std::int32_t> codes(action.begin(), action.end());
  const std::vector<double> quantities(quantity.begin(), quantity.end());
  cols.action = codes;
  cols.quantity = quantities;
  cols.amount = r.array<double>(prefix + "amount", shape);
  static const std::int64_t no_basket = -1;
  if (has_baskets) {
    cols.basket = r.array<std::int64_t>(prefix + "basket", shape);
    if (user.empty()) cols.basket = Span<const std::int64_t>(&no_basket, 0);
  }
  o.unknown = UnknownItems::raise;
  BehaviorLog log;
  try {
    log = from_columns(cols, o);
  } catch (const Error& e) {
    r.invalid(e.what());
  }
  log.unknown_items_ = unknown_items;
  log.unknown_users_ = unknown_users;
  if (r.content().contains(prefix + "user_ids.")) {
    IdMap ids = IdMap::read(r, prefix + "user_ids.");
    if (ids.size() != log.n_users_) r.invalid("BehaviorLog: user_ids does not hold n_users ids");
    log.user_ids_ = std::move(ids);
  }
  return log;
}

}  // namespace perkrec
