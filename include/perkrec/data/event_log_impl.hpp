// Definitions for event_log.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "perkrec/core/threading.hpp"
#include "perkrec/data/event_log.hpp"
#include "perkrec/detail/blocks.hpp"

namespace perkrec {

PERKREC_INLINE const char* to_string(EventType type) {
  switch (type) {
    case EventType::issued:
      return "issued";
    case EventType::viewed:
      return "viewed";
    case EventType::claimed:
      return "claimed";
    case EventType::redeemed:
      return "redeemed";
    case EventType::expired:
      return "expired";
    case EventType::ordered:
      return "ordered";
  }
  return "?";
}

PERKREC_INLINE EventType parse_event_type(std::string_view name, const std::string& context) {
  for (int k = 0; k < kNumEventTypes; ++k) {
    if (name == to_string(static_cast<EventType>(k))) return static_cast<EventType>(k);
  }
  detail::raise<InputError>(context, ": unknown event type '", name,
                            "' (expected issued, viewed, claimed, redeemed, expired or ordered)");
}

namespace detail {

// Returns an empty string when row i is valid, else the reason.
inline std::string event_row_problem(const EventColumns& c, std::size_t i, Index n_users,
                                     Index n_benefits, std::size_t n_channels) {
  const Index u = c.user[i];
  if (u < 0 || u >= n_users) {
    return concat("user out of range (got ", u, ", expected 0 <= user < ", n_users, ")");
  }
  const std::uint8_t t = c.type[i];
  if (t >= kNumEventTypes) {
    return concat("unknown event type code (got ", static_cast<int>(t), ", expected 0..",
                  kNumEventTypes - 1, ")");
  }
  const Index b = c.benefit[i];
  if (b == kNoBenefit) {
    if (static_cast<EventType>(t) != EventType::ordered) {
      return concat("benefit is -1 but the event type is '", to_string(static_cast<EventType>(t)),
                    "' (only 'ordered' events may lack a benefit)");
    }
  } else if (b < 0 || b >= n_benefits) {
    return concat("benefit out of range (got ", b, ", expected 0 <= benefit < ", n_benefits,
                  ", or -1 for an order without one)");
  }
  if (c.timestamp[i] < 0) return concat("negative timestamp (got ", c.timestamp[i], ")");
  if (c.timestamp[i] >= kMaxTimestamp) {
    return concat("timestamp beyond the supported range (got ", c.timestamp[i], ", expected < ",
                  kMaxTimestamp, ": year 2200)");
  }
  if (!c.channel.empty()) {
    const std::int16_t ch = c.channel[i];
    if (ch < -1 || ch >= static_cast<std::int64_t>(n_channels)) {
      return concat("channel code out of range (got ", ch, ", expected -1 <= channel < ",
                    n_channels, ")");
    }
  }
  if (!c.order_amount.empty()) {
    const float a = c.order_amount[i];
    if (!std::isfinite(a) || a < 0) {
      return concat("order_amount must be finite and >= 0 (got ", a, ")");
    }
  }
  if (!c.propensity.empty()) {
    const float p = c.propensity[i];
    if (!std::isfinite(p) || p <= 0 || p > 1) {
      return concat("propensity must be in (0, 1] (got ", p, ")");
    }
  }
  if (!c.control.empty() && c.control[i] > 1) {
    return concat("control must be 0 or 1 (got ", static_cast<int>(c.control[i]), ")");
  }
  return {};
}

}  // namespace detail

PERKREC_INLINE EventLog EventLog::from_columns(const EventColumns& c, Index n_users,
                                               Index n_benefits,
                                               std::vector<std::string> channel_names,
                                               int num_threads) {
  const char* ctx = "EventLog::from_columns";
  const std::size_t n = c.user.size();
  resolve_num_threads(num_threads);
  auto check_length = [&](const char* name, std::size_t len, bool optional) {
    detail::check_column_length(ctx, name, len, n, optional);
  };
  check_length("benefit", c.benefit.size(), false);
  check_length("type", c.type.size(), false);
  check_length("timestamp", c.timestamp.size(), false);
  check_length("channel", c.channel.size(), true);
  check_length("order_amount", c.order_amount.size(), true);
  check_length("propensity", c.propensity.size(), true);
  check_length("control", c.control.size(), true);
  if (n_users < -1)
    detail::raise<InputError>(ctx, ": n_users must be >= 0 or -1 (got ", n_users, ")");
  if (n_benefits < -1) {
    detail::raise<InputError>(ctx, ": n_benefits must be >= 0 or -1 (got ", n_benefits, ")");
  }
  if (channel_names.size() > static_cast<std::size_t>(std::numeric_limits<std::int16_t>::max())) {
    detail::raise<InputError>(ctx, ": too many channel names (got ", channel_names.size(), ")");
  }
  {
    std::vector<std::string> sorted(channel_names);
    std::sort(sorted.begin(), sorted.end());
    const auto dup = std::adjacent_find(sorted.begin(), sorted.end());
    if (dup != sorted.end())
      detail::raise<InputError>(ctx, ": channel name '", *dup, "' is listed twice");
  }

  const detail::Blocks blocks(static_cast<Offset>(n));
  // An inferred shape sizes per-member and per-benefit indexes: one stray huge id must not
  // allocate gigabytes. Beyond this many rows per event the caller states the shape.
  const Offset inferred_cap = std::max<Offset>(Offset{1} << 20, 64 * static_cast<Offset>(n));
  auto check_inferred = [&](const char* what, Index count) {
    if (count > inferred_cap) {
      detail::raise<InputError>(ctx, ": the largest ", what, " index implies ", count, " ", what,
                                "s for ", n, " events (more than ", inferred_cap, "); pass n_",
                                what, "s explicitly to allow that many");
    }
  };
  if (n_users < 0 || n_benefits < 0) {
    // Infer the shape; negative ids are reported by the validation pass below.
    std::vector<Index> max_user(static_cast<std::size_t>(blocks.count), -1);
    std::vector<Index> max_benefit(static_cast<std::size_t>(blocks.count), -1);
    parallel_for(0, blocks.count, num_threads, [&](Offset b) {
      Index mu = -1, mb = -1;
      for (Offset i = blocks.begin(b); i < blocks.end(b); ++i) {
        mu = std::max(mu, c.user[static_cast<std::size_t>(i)]);
        mb = std::max(mb, c.benefit[static_cast<std::size_t>(i)]);
      }
      max_user[static_cast<std::size_t>(b)] = mu;
      max_benefit[static_cast<std::size_t>(b)] = mb;
    });
    if (n_users < 0) {
      Index m = -1;
      for (Index v : max_user) m = std::max(m, v);
      if (m == std::numeric_limits<Index>::max())
        detail::raise<InputError>(ctx, ": user id too large");
      n_users = m + 1;
      check_inferred("user", n_users);
    }
    if (n_benefits < 0) {
      Index m = -1;
      for (Index v : max_benefit) m = std::max(m, v);
      if (m == std::numeric_limits<Index>::max()) {
        detail::raise<InputError>(ctx, ": benefit id too large");
      }
      n_benefits = m + 1;
      check_inferred("benefit", n_benefits);
    }
  }

  // Validate every row; report the first bad one (lowest row number, whatever the threads).
  std::vector<Offset> first_bad(static_cast<std::size_t>(blocks.count), -1);
  std::vector<std::uint8_t> unsorted_block(static_cast<std::size_t>(blocks.count), 0);
  parallel_for(0, blocks.count, num_threads, [&](Offset b) {
    bool unsorted = false;
    for (Offset i = blocks.begin(b); i < blocks.end(b); ++i) {
      const auto k = static_cast<std::size_t>(i);
      // One rule set for checking and for the message; a valid row costs no allocation.
      const bool ok =
          detail::event_row_problem(c, k, n_users, n_benefits, channel_names.size()).empty();
      if (!ok) {
        first_bad[static_cast<std::size_t>(b)] = i;
        return;
      }
      if (i > blocks.begin(b)) {
        const Index pu = c.user[k - 1], u = c.user[k];
        unsorted = unsorted || pu > u || (pu == u && c.timestamp[k - 1] > c.timestamp[k]);
      }
    }
    unsorted_block[static_cast<std::size_t>(b)] = unsorted;
  });
  for (Offset bad : first_bad) {
    if (bad >= 0) {
      const std::string why = detail::event_row_problem(c, static_cast<std::size_t>(bad), n_users,
                                                        n_benefits, channel_names.size());
      detail::raise<InputError>(ctx, ": row ", bad, ": ", why);
    }
  }

  // Already in (user, time) order? Then the columns are copied as they are.
  bool sorted = true;
  for (Offset b = 0; b < blocks.count; ++b) {
    if (unsorted_block[static_cast<std::size_t>(b)]) sorted = false;
    if (b > 0 && n > 0) {
      const auto k = static_cast<std::size_t>(blocks.begin(b));
      if (c.user[k - 1] > c.user[k] ||
          (c.user[k - 1] == c.user[k] && c.timestamp[k - 1] > c.timestamp[k])) {
        sorted = false;
      }
    }
  }

  EventLog log;
  log.n_users_ = n_users;
  log.n_benefits_ = n_benefits;
  log.channel_names_ = std::move(channel_names);
  log.has_propensity_ = !c.propensity.empty() || (n == 0 && c.propensity.data() != nullptr);
  log.has_control_ = !c.control.empty() || (n == 0 && c.control.data() != nullptr);

  // Stable counting sort by member: member offsets first.
  log.user_offsets_.assign(static_cast<std::size_t>(n_users) + 1, 0);
  for (std::size_t i = 0; i < n; ++i) ++log.user_offsets_[static_cast<std::size_t>(c.user[i]) + 1];
  for (std::size_t u = 0; u < static_cast<std::size_t>(n_users); ++u) {
    log.user_offsets_[u + 1] += log.user_offsets_[u];
  }

  log.user_.resize(n);
  log.benefit_.resize(n);
  log.type_.resize(n);
  log.timestamp_.resize(n);
  log.channel_.resize(n);
  log.order_amount_.resize(n);
  if (!c.propensity.empty()) log.propensity_.resize(n);
  if (!c.control.empty()) log.control_.resize(n);

  if (sorted) {
    auto copy = [&](auto& dst, const auto& src) {
      if (!src.empty()) std::memcpy(dst.data(), src.data(), src.size() * sizeof(dst[0]));
    };
    copy(log.user_, c.user);
    copy(log.benefit_, c.benefit);
    copy(log.type_, c.type);
    copy(log.timestamp_, c.timestamp);
    if (c.channel.empty()) {
      std::fill(log.channel_.begin(), log.channel_.end(), std::int16_t{-1});
    } else {
      copy(log.channel_, c.channel);
    }
    if (c.order_amount.empty()) {
      std::fill(log.order_amount_.begin(), log.order_amount_.end(), 0.0f);
    } else {
      copy(log.order_amount_, c.order_amount);
    }
    copy(log.propensity_, c.propensity);
    copy(log.control_, c.control);
  } else {
    log.fill_sorted(c, num_threads);
  }
  log.finish_index();
  return log;
}

// Moves the columns into (user, time) order. Whole 32-byte records are first partitioned by
// user range into at most 1024 buckets (sequential reads, few write streams), then each bucket
// is counting-sorted by user into the output (cache-resident), then members whose events were
// not in time order are sorted. Every pass is stable, and blocks and buckets depend only on the
// data, so the order is the same for any thread count.
PERKREC_INLINE void EventLog::fill_sorted(const EventColumns& c, int num_threads) {
  struct Record {
    Timestamp time;
    Index user;
    Index benefit;
    float amount;
    float propensity;
    std::int16_t channel;
    std::uint8_t type;
    std::uint8_t control;
  };
  static_assert(sizeof(Record) == 32, "records are meant to fill half a cache line");
  const std::size_t n = c.user.size();
  int shift = 0;
  while ((static_cast<std::int64_t>(n_users_ - 1) >> shift) >= 1024) ++shift;
  const std::size_t n_buckets = static_cast<std::size_t>((n_users_ - 1) >> shift) + 1;
  const detail::Blocks blocks(static_cast<Offset>(n), 1 << 16, 64);
  const auto n_blocks = static_cast<std::size_t>(blocks.count);

  // Pass 1: partition records into buckets, block by block in order (stable).
  std::vector<Offset> cursor(n_blocks * n_buckets, 0);  // [block][bucket]
  parallel_for(0, blocks.count, num_threads, [&](Offset blk) {
    Offset* h = cursor.data() + static_cast<std::size_t>(blk) * n_buckets;
    for (Offset i = blocks.begin(blk); i < blocks.end(blk); ++i) {
      ++h[static_cast<std::size_t>(c.user[static_cast<std::size_t>(i)] >> shift)];
    }
  });
  const std::vector<Offset> bucket_start = detail::bucket_cursors(cursor, n_blocks, n_buckets);
  detail::LargeVector<Record> records(n);
  parallel_for(0, blocks.count, num_threads, [&](Offset blk) {
    Offset* pos = cursor.data() + static_cast<std::size_t>(blk) * n_buckets;
    for (Offset i = blocks.begin(blk); i < blocks.end(blk); ++i) {
      const auto k = static_cast<std::size_t>(i);
      Record r;
      r.time = c.timestamp[k];
      r.user = c.user[k];
      r.benefit = c.benefit[k];
      r.amount = c.order_amount.empty() ? 0.0f : c.order_amount[k];
      r.propensity = c.propensity.empty() ? 1.0f : c.propensity[k];
      r.channel = c.channel.empty() ? std::int16_t{-1} : c.channel[k];
      r.type = c.type[k];
      r.control = c.control.empty() ? std::uint8_t{0} : c.control[k];
      records[static_cast<std::size_t>(pos[static_cast<std::size_t>(r.user >> shift)]++)] = r;
    }
  });

  // Pass 2: counting sort of each bucket by user, written into the final columns.
  const bool with_propensity = !c.propensity.empty();
  const bool with_control = !c.control.empty();
  parallel_for(
      0, static_cast<Offset>(n_buckets), num_threads,
      [&](Offset bk) {
        const Index first_user = static_cast<Index>(bk << shift);
        const Index last_user = std::min<Index>(n_users_, static_cast<Index>((bk + 1) << shift));
        std::vector<Offset> next(user_offsets_.begin() + first_user,
                                 user_offsets_.begin() + last_user);
        for (Offset i = bucket_start[static_cast<std::size_t>(bk)];
             i < bucket_start[static_cast<std::size_t>(bk) + 1]; ++i) {
          const Record& r = records[static_cast<std::size_t>(i)];
          const auto k =
              static_cast<std::size_t>(next[static_cast<std::size_t>(r.user - first_user)]++);
          user_[k] = r.user;
          benefit_[k] = r.benefit;
          type_[k] = r.type;
          timestamp_[k] = r.time;
          channel_[k] = r.channel;
          order_amount_[k] = r.amount;
          if (with_propensity) propensity_[k] = r.propensity;
          if (with_control) control_[k] = r.control;
        }
      },
      Schedule::dynamic, 1);
  records.clear();
  records.shrink_to_fit();

  // Pass 3: members whose events arrived out of time order.
  parallel_for(
      0, n_users_, num_threads,
      [&](Offset u) {
        const auto begin = static_cast<std::size_t>(user_offsets_[static_cast<std::size_t>(u)]);
        const auto end = static_cast<std::size_t>(user_offsets_[static_cast<std::size_t>(u) + 1]);
        if (std::is_sorted(timestamp_.begin() + static_cast<std::ptrdiff_t>(begin),
                           timestamp_.begin() + static_cast<std::ptrdiff_t>(end))) {
          return;
        }
        std::vector<std::size_t> order(end - begin);
        for (std::size_t i = 0; i < order.size(); ++i) order[i] = begin + i;
        std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
          return timestamp_[a] < timestamp_[b];
        });
        auto permute = [&](auto& column) {
          if (column.empty()) return;
          using T = typename std::decay_t<decltype(column)>::value_type;
          std::vector<T> moved(order.size());
          for (std::size_t i = 0; i < order.size(); ++i) moved[i] = column[order[i]];
          std::copy(moved.begin(), moved.end(),
                    column.begin() + static_cast<std::ptrdiff_t>(begin));
        };
        permute(benefit_);
        permute(type_);
        permute(timestamp_);
        permute(channel_);
        permute(order_amount_);
        permute(propensity_);
        permute(control_);
      },
      Schedule::dynamic, 256);
}

PERKREC_INLINE void EventLog::finish_index() {
  if (timestamp_.empty()) {
    min_time_ = max_time_ = kNoTime;
    return;
  }
  Timestamp lo = std::numeric_limits<Timestamp>::max(), hi = std::numeric_limits<Timestamp>::min();
  for (Timestamp t : timestamp_) {
    lo = std::min(lo, t);
    hi = std::max(hi, t);
  }
  min_time_ = lo;
  max_time_ = hi;
}

PERKREC_INLINE std::array<Offset, kNumEventTypes> EventLog::count_by_type() const {
  std::array<Offset, kNumEventTypes> counts{};
  for (std::uint8_t t : type_) ++counts[t];
  return counts;
}

PERKREC_INLINE void EventLog::set_ids(IdMap users, IdMap benefits) {
  if (users.size() != 0 && users.size() != n_users_) {
    detail::raise<InputError>("EventLog::set_ids: user id map holds ", users.size(),
                              " ids (expected ", n_users_, ")");
  }
  if (benefits.size() != 0 && benefits.size() != n_benefits_) {
    detail::raise<InputError>("EventLog::set_ids: benefit id map holds ", benefits.size(),
                              " ids (expected ", n_benefits_, ")");
  }
  user_ids_ = std::move(users);
  benefit_ids_ = std::move(benefits);
}

PERKREC_INLINE EventLog EventLog::filter(Span<const std::uint8_t> keep, int num_threads) const {
  if (keep.size() != user_.size()) {
    detail::raise<InputError>("EventLog::filter: keep has ", keep.size(), " entries (expected ",
                              user_.size(), ")");
  }
  const detail::Blocks blocks(size());
  std::vector<Offset> kept(static_cast<std::size_t>(blocks.count) + 1, 0);
  parallel_for(0, blocks.count, num_threads, [&](Offset b) {
    Offset k = 0;
    for (Offset i = blocks.begin(b); i < blocks.end(b); ++i)
      k += keep[static_cast<std::size_t>(i)] != 0;
    kept[static_cast<std::size_t>(b) + 1] = k;
  });
  for (std::size_t b = 0; b + 1 < kept.size(); ++b) kept[b + 1] += kept[b];
  const auto total = static_cast<std::size_t>(kept.back());

  EventLog out;
  out.n_users_ = n_users_;
  out.n_benefits_ = n_benefits_;
  out.channel_names_ = channel_names_;
  out.user_ids_ = user_ids_;
  out.benefit_ids_ = benefit_ids_;
  out.has_propensity_ = has_propensity_;
  out.has_control_ = has_control_;
  out.user_.resize(total);
  out.benefit_.resize(total);
  out.type_.resize(total);
  out.timestamp_.resize(total);
  out.channel_.resize(total);
  out.order_amount_.resize(total);
  if (!propensity_.empty()) out.propensity_.resize(total);
  if (!control_.empty()) out.control_.resize(total);
  parallel_for(0, blocks.count, num_threads, [&](Offset b) {
    auto k = static_cast<std::size_t>(kept[static_cast<std::size_t>(b)]);
    for (Offset i = blocks.begin(b); i < blocks.end(b); ++i) {
      const auto s = static_cast<std::size_t>(i);
      if (!keep[s]) continue;
      out.user_[k] = user_[s];
      out.benefit_[k] = benefit_[s];
      out.type_[k] = type_[s];
      out.timestamp_[k] = timestamp_[s];
      out.channel_[k] = channel_[s];
      out.order_amount_[k] = order_amount_[s];
      if (!propensity_.empty()) out.propensity_[k] = propensity_[s];
      if (!control_.empty()) out.control_[k] = control_[s];
      ++k;
    }
  });
  out.user_offsets_.assign(static_cast<std::size_t>(n_users_) + 1, 0);
  for (Index u : out.user_) ++out.user_offsets_[static_cast<std::size_t>(u) + 1];
  for (std::size_t u = 0; u < static_cast<std::size_t>(n_users_); ++u) {
    out.user_offsets_[u + 1] += out.user_offsets_[u];
  }
  out.finish_index();
  return out;
}

PERKREC_INLINE void EventLog::write(ModelWriter& w, const std::string& prefix) const {
  Json& c = content_section(w, prefix);
  c["n_users"] = n_users_;
  c["n_benefits"] = n_benefits_;
  c["events"] = size();
  c["has_propensity"] = has_propensity_;
  c["has_control"] = has_control_;
  c["channel_names"] = channel_names_;
  w.add(prefix + "user", user_);
  w.add(prefix + "benefit", benefit_);
  w.add(prefix + "type", type_);
  w.add(prefix + "timestamp", timestamp_);
  w.add(prefix + "channel", channel_);
  w.add(prefix + "order_amount", order_amount_);
  if (has_propensity_) w.add(prefix + "propensity", propensity_);
  if (has_control_) w.add(prefix + "control", control_);
  user_ids_.write(w, prefix + "user_ids.");
  benefit_ids_.write(w, prefix + "benefit_ids.");
}

PERKREC_INLINE EventLog EventLog::read(const ModelReader& r, const std::string& prefix) {
  const Json& section = content_section(r, prefix);
  JsonReader<ModelFormatError> jr(section, content_pointer(prefix), "EventLog::read");
  Index n_users = 0, n_benefits = 0;
  Offset events = 0;
  bool has_propensity = false, has_control = false;
  std::vector<std::string> channel_names;
  jr.require("n_users", n_users);
  jr.require("n_benefits", n_benefits);
  jr.require("events", events);
  jr.require("has_propensity", has_propensity);
  jr.require("has_control", has_control);
  jr.require("channel_names", channel_names);
  if (prefix.empty()) {
    jr.raw("user_ids.");
    jr.raw("benefit_ids.");
  }
  jr.finish();
  if (n_users < 0 || n_benefits < 0 || events < 0) r.bad_content("negative shape");
  r.check_count("n_users", n_users);  // they size per-member and per-benefit indexes
  r.check_count("n_benefits", n_benefits);
  if (channel_names.size() > static_cast<std::size_t>(std::numeric_limits<std::int16_t>::max())) {
    r.bad_content("too many channel names");
  }
  EventColumns c;
  c.user = r.array<Index>(prefix + "user", {events});
  c.benefit = r.array<Index>(prefix + "benefit", {events});
  c.type = r.array<std::uint8_t>(prefix + "type", {events});
  c.timestamp = r.array<Timestamp>(prefix + "timestamp", {events});
  c.channel = r.array<std::int16_t>(prefix + "channel", {events});
  c.order_amount = r.array<float>(prefix + "order_amount", {events});
  if (has_propensity) c.propensity = r.array<float>(prefix + "propensity", {events});
  if (has_control) c.control = r.array<std::uint8_t>(prefix + "control", {events});
  IdMap user_ids = IdMap::read(r, prefix + "user_ids.");
  IdMap benefit_ids = IdMap::read(r, prefix + "benefit_ids.");
  try {
    EventLog log = from_columns(c, n_users, n_benefits, std::move(channel_names));
    log.has_propensity_ = has_propensity;
    log.has_control_ = has_control;
    log.set_ids(std::move(user_ids), std::move(benefit_ids));
    return log;
  } catch (const InputError& e) {
    r.invalid(e.what());
  }
}

}  // namespace perkrec
