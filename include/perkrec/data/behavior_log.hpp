// BehaviorLog: what members buy and browse, columnar, sorted by (member, time) and indexed by
// member (CSR): member u's events are [user_begin(u), user_end(u)), in time order.
//
// One event is (user, item, action, timestamp) with optional quantity, amount and basket:
//   user       member index, the same indexing as EventLog and UserTable
//   item       index into an ItemCatalog (its item IdMap)
//   action     a code into the log's open vocabulary of action names (purchase, view, cart,
//              search, like, share, comment, ...); default: every event is action 0
//   timestamp  int64 seconds since the epoch (UTC), in [kMinTimestamp, kMaxTimestamp)
//   quantity   units (float; default 1), finite and >= 0
//   amount     money spent (double; default 0), finite and >= 0
//   basket     basket / order id (int64; default -1 = none)
//
// Construction validates every row first and throws InputError naming the first bad row, its
// field and value (member or action out of range, time out of range, NaN or negative amount or
// quantity). An item index of -1 marks an id the item map did not know, a member index of -1 a
// member the member map did not know: such rows are counted (unknown_items(), unknown_users())
// and dropped, or, with UnknownItems::raise, the first raises InputError. Row numbers in
// messages are positions in the input columns.
// Events are then stably sorted by member and, within a member, by time (ties keep their input
// order); the result does not depend on the thread count.
//
// Example:
//   perkrec::BehaviorColumns c;
//   c.user = users; c.item = items; c.timestamp = times; c.amount = spend;
//   perkrec::BehaviorOptions o;
//   o.n_items = catalog.size();
//   perkrec::BehaviorLog log = perkrec::BehaviorLog::from_columns(c, o);
//   for (perkrec::Offset e = log.user_begin(u); e < log.before(u, t); ++e) { ... }  // as of t
//
// A log saves and loads through the model-file container (kind "BehaviorLog": its columns,
// action names, counts and, when attached, the members' external ids); reading rebuilds it
// through from_columns, so every row is validated again (ModelFormatError naming the first bad
// one). Files written before the ids were stored load with no ids attached.
//
// Cost: O(events + members) time and memory: input already in (member, time) order is copied;
// otherwise a two-level radix sort (at most 1024 buckets by the top bits of (member, time), each
// sorted in cache) places the columns with one partition pass over the rows and one permute
// pass over the buckets, with no per-event records. Parallel over blocks and buckets.
// Memory: 33 bytes per event (member ids live in the offsets, not per event); while building
// from unsorted input, 6 more bytes per event plus one bucket of scratch per thread.
// Thread safety: a BehaviorLog is immutable after construction; every method is const.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/error.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/data/id_map.hpp"
#include "perkrec/data/item_catalog.hpp"
#include "perkrec/detail/large_vector.hpp"
#include "perkrec/io/serializable.hpp"

namespace perkrec {

/// Borrowed input columns for BehaviorLog::from_columns: `user`, `item` and `timestamp` are
/// required (one entry per event); the others are empty or of the same length.
struct BehaviorColumns {
  Span<const Index> user;           ///< required, in [0, n_users), or -1 = unknown member
  Span<const Index> item;           ///< required, in [0, n_items), or -1 = unknown item
  Span<const Timestamp> timestamp;  ///< required, in [kMinTimestamp, kMaxTimestamp)
  Span<const std::int32_t> action;  ///< optional codes into action_names (default 0)
  Span<const double> quantity;      ///< optional, finite, >= 0 (default 1)
  Span<const double> amount;        ///< optional, finite, >= 0 (default 0)
  Span<const std::int64_t> basket;  ///< optional basket ids, -1 = none (default -1)
};

struct BehaviorOptions {
  Index n_users = -1;  ///< members; -1 = the largest index + 1 (up to max(2^20, 64 x events))
  Index n_items = -1;  ///< items of the ItemCatalog; -1 = the largest index + 1 (same bound)
  /// The action vocabulary (distinct, non-empty; at most 255 names): code k names action k.
  std::vector<std::string> action_names = {"purchase"};
  UnknownItems unknown = UnknownItems::drop;  ///< rows with item -1 or user -1
  int num_threads = 0;                        ///< 0 = OpenMP default; never changes the result
};

class BehaviorLog : public Serializable<BehaviorLog> {
 public:
  static constexpr const char* kind = "BehaviorLog";
  BehaviorLog() = default;

  /// Validates and sorts the columns into a log (see the file comment).
  static BehaviorLog from_columns(const BehaviorColumns& columns,
                                  const BehaviorOptions& options = {});

  Offset size() const { return static_cast<Offset>(item_.size()); }
  bool empty() const { return item_.empty(); }
  Index n_users() const { return n_users_; }
  Index n_items() const { return n_items_; }
  /// Rows dropped because their item was unknown (-1).
  Offset unknown_items() const { return unknown_items_; }
  /// Rows dropped because their member was unknown (-1) (and their item known).
  Offset unknown_users() const { return unknown_users_; }

  Span<const Index> items() const { return item_; }
  Span<const std::uint8_t> actions() const { return action_; }
  Span<const Timestamp> timestamps() const { return timestamp_; }
  Span<const float> quantities() const { return quantity_; }
  Span<const double> amounts() const { return amount_; }
  /// Empty when the log has no basket column.
  Span<const std::int64_t> baskets() const { return basket_; }
  bool has_baskets() const { return has_baskets_; }
  /// The member of every event, in log order (computed from the offsets).
  std::vector<Index> users() const;

  /// Member u's events are [user_begin(u), user_end(u)), in time order (0 <= u < n_users()).
  Offset user_begin(Index u) const { return user_offsets_[static_cast<std::size_t>(u)]; }
  Offset user_end(Index u) const { return user_offsets_[static_cast<std::size_t>(u) + 1]; }
  const std::vector<Offset>& user_offsets() const { return user_offsets_; }
  /// As-of query: the end of member u's events strictly before `t`, so
  /// [user_begin(u), before(u, t)) are the member's events at times < t. O(log events of u).
  Offset before(Index u, Timestamp t) const;

  const std::vector<std::string>& action_names() const { return action_names_; }
  /// Code of an action name, or -1 when the vocabulary lacks it.
  int find_action(const std::string& name) const;
  /// Code of an action name; InputError "<ctx>: unknown action '<name>' (the behaviour log has
  /// actions <quoted_action_names()>)" when the vocabulary lacks it.
  int action_code(const std::string& name, const char* ctx) const;
  /// The vocabulary as quoted names for messages: 'purchase', 'view'.
  std::string quoted_action_names() const;

  /// Earliest / latest timestamp (kNoTime when empty).
  Timestamp min_time() const { return min_time_; }
  Timestamp max_time() const { return max_time_; }

  /// The members' external ids (member index i is id user_ids()[i]); empty when none were
  /// attached (the log is then indexed by member index, as the caller's other tables).
  const IdMap& user_ids() const { return user_ids_; }
  /// Attaches external member ids: empty or exactly n_users() ids (InputError otherwise, and
  /// the log is unchanged). Saved with the log.
  void set_user_ids(IdMap ids);

  void write(ModelWriter& w, const std::string& prefix) const;
  static BehaviorLog read(const ModelReader& r, const std::string& prefix);

 private:
  Index n_users_ = 0;
  Index n_items_ = 0;
  Offset unknown_items_ = 0;
  Offset unknown_users_ = 0;
  detail::LargeVector<Index> item_;
  detail::LargeVector<std::uint8_t> action_;
  detail::LargeVector<Timestamp> timestamp_;
  detail::LargeVector<float> quantity_;
  detail::LargeVector<double> amount_;
  detail::LargeVector<std::int64_t> basket_;
  bool has_baskets_ = false;
  std::vector<Offset> user_offsets_ = std::vector<Offset>(1, 0);
  std::vector<std::string> action_names_ = {"purchase"};
  Timestamp min_time_ = kNoTime;
  Timestamp max_time_ = kNoTime;
  IdMap user_ids_;
};

/// Behaviour rows named by external integer ids, for lookup_behavior_ids. Each of user_ids,
/// item_ids and timestamp is either empty (skipped) or holds one entry per row; `user` and
/// `item` are the outputs, of the length of user_ids and item_ids.
struct BehaviorIds {
  Span<const std::int64_t> user_ids;  ///< external member ids, or empty
  Span<const std::int64_t> item_ids;  ///< external item ids, or empty
  Span<const Timestamp> timestamp;    ///< times to check against the supported range, or empty
  Span<Index> user;                   ///< out: the member index of each row (-1 = unknown)
  Span<Index> item;                   ///< out: the item index of each row (-1 = unknown)
};

/// The index columns of BehaviorLog::from_columns from external integer ids, in one parallel
/// pass over the rows: user[i] = users.find(user_ids[i]), item[i] = items.find(item_ids[i])
/// (-1 for an id the map lacks, as IdMap::lookup with Missing::minus_one), and each time checked
/// against [kMinTimestamp, kMaxTimestamp). Ids that span a compact range are read from a dense
/// array (detail::IntegerIdLookup), others through the maps' hashes. Returns the first row whose
/// time is out of range (the outputs are then incomplete), or -1. The result does not depend on
/// the thread count. Throws InputError when the lengths disagree or a map holds string ids.
Offset lookup_behavior_ids(const BehaviorIds& rows, const IdMap& users, const IdMap& items,
                           int num_threads = 0);

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/data/behavior_log_impl.hpp"
#endif
