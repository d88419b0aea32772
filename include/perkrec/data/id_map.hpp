// IdMap: external member or benefit ids (strings or 64-bit integers) <-> dense indices.
//
// Dense indices are assigned in order of first insertion, starting at 0. A map holds one key
// type; it is fixed by the first insertion (an empty map accepts either).
//
// Example:
//   perkrec::IdMap users;
//   std::vector<perkrec::Index> idx(ids.size());
//   users.lookup_or_add(ids, idx);            // assign new indices as needed
//   users.lookup(more_ids, idx2);             // InputError on an unknown id
//   std::string original = users.string_at(idx[0]);
//
// Cost: O(1) expected per lookup (open addressing over indices; the keys are stored once);
// `lookup` runs batches of more than 65,536 ids on the OpenMP default number of threads. A
// batch of integer ids at least as long as the map, in a map whose ids span a compact range
// (max - min < 4 x size + 1024, as database keys usually do), is looked up through a dense
// array over [min, max] built for the call (detail::IntegerIdLookup): same results and errors,
// one cache-resident read per id instead of a hash probe.
// Thread safety: const methods are safe from many threads; inserting needs exclusive access.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/error.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/io/serializable.hpp"

namespace perkrec {

class IdMap : public Serializable<IdMap> {
 public:
  static constexpr const char* kind = "IdMap";

  enum class KeyType : std::uint8_t { empty, integer, string };
  /// What `lookup` does with an id the map does not hold.
  enum class Missing : std::uint8_t {
    raise,      ///< throw InputError naming the position and id
    minus_one,  ///< write -1
  };

  IdMap() = default;

  /// A map of `ids` in order; duplicates throw InputError naming both positions.
  static IdMap from_integers(Span<const std::int64_t> ids);
  static IdMap from_strings(const std::vector<std::string>& ids);
  /// The identity-like map 0..n-1 (integer keys).
  static IdMap range(Index n);

  Index size() const {
    return static_cast<Index>(key_type_ == KeyType::string ? strings_.size() : integers_.size());
  }
  KeyType key_type() const { return key_type_; }

  /// Index of `id`, or -1 when absent (or of the other key type).
  Index find(std::int64_t id) const;
  Index find(std::string_view id) const;

  /// Maps `ids` into `out` (same length) without changing the map.
  void lookup(Span<const std::int64_t> ids, Span<Index> out,
              Missing missing = Missing::raise) const;
  void lookup(const std::vector<std::string>& ids, Span<Index> out,
              Missing missing = Missing::raise) const;
  /// Maps `ids` into `out`, assigning the next indices to ids not yet present. On error (wrong
  /// key type, length mismatch) nothing is added.
  void lookup_or_add(Span<const std::int64_t> ids, Span<Index> out);
  void lookup_or_add(const std::vector<std::string>& ids, Span<Index> out);

  /// Index of `id`, adding it when absent.
  Index add(std::int64_t id);
  Index add(std::string_view id);

  /// The external id at `index`; throws InputError when out of range or of the other type.
  std::int64_t integer_at(Index index) const;
  const std::string& string_at(Index index) const;
  /// All keys in index order (only the vector of the map's key type is non-empty).
  const std::vector<std::int64_t>& integers() const { return integers_; }
  const std::vector<std::string>& strings() const { return strings_; }

  /// A readable rendering of the id at `index` (for messages).
  std::string label(Index index) const;

  bool operator==(const IdMap& other) const {
    return key_type_ == other.key_type_ && integers_ == other.integers_ &&
           strings_ == other.strings_;
  }

  void write(ModelWriter& w, const std::string& prefix) const;
  static IdMap read(const ModelReader& r, const std::string& prefix);

 private:
  void require_type(KeyType type, const char* method) const;
  void rehash(std::size_t capacity);
  void insert_slot(std::uint64_t hash, Index index);
  std::uint64_t hash_of(Index index) const;
  // One implementation for both key types: `keys` is integers_ or strings_.
  template <class Key, class Keys>
  Index probe(Key id, const Keys& keys) const;
  template <class Key, class Keys>
  Index add_key(Key id, Keys& keys, KeyType type);
  template <class Ids, class Keys>
  void lookup_or_add_keys(const Ids& ids, Span<Index> out, Keys& keys, KeyType type);

  KeyType key_type_ = KeyType::empty;
  std::vector<std::int64_t> integers_;
  std::vector<std::string> strings_;
  std::vector<Index> slots_;  // open addressing: -1 = empty, else an index into the keys
};

namespace detail {

/// Looks many integer ids up in an IdMap: find(id) == map.find(id) for every id. When the map's
/// integer ids span a compact range (max - min < 4 x size + 1024) it reads a dense array of
/// max - min + 1 indices (-1 where no id), else the map's hash. Built in O(size + max - min)
/// time and 4 x (max - min + 1) bytes; the map must outlive it unchanged. Const, thread-safe.
class IntegerIdLookup {
 public:
  explicit IntegerIdLookup(const IdMap& map) : map_(&map) {
    if (map.key_type() != IdMap::KeyType::integer || map.size() == 0) return;
    const std::vector<std::int64_t>& keys = map.integers();
    std::int64_t lo = keys[0], hi = keys[0];
    for (const std::int64_t k : keys) {
      lo = k < lo ? k : lo;
      hi = k > hi ? k : hi;
    }
    // Unsigned arithmetic: hi - lo can exceed the int64 range, id - min_ wraps for ids below.
    const std::uint64_t span = static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo);
    if (span >= 4 * static_cast<std::uint64_t>(keys.size()) + 1024) return;
    min_ = static_cast<std::uint64_t>(lo);
    table_.assign(static_cast<std::size_t>(span) + 1, -1);
    for (std::size_t i = 0; i < keys.size(); ++i)
      table_[static_cast<std::uint64_t>(keys[i]) - min_] = static_cast<Index>(i);
  }
  /// Whether lookups read the dense array (else the map's hash).
  bool dense() const { return !table_.empty(); }
  Index find(std::int64_t id) const {
    if (table_.empty()) return map_->find(id);
    const std::uint64_t offset = static_cast<std::uint64_t>(id) - min_;
    return offset < table_.size() ? table_[static_cast<std::size_t>(offset)] : Index{-1};
  }

 private:
  const IdMap* map_;
  std::uint64_t min_ = 0;
  std::vector<Index> table_;
};

}  // namespace detail

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/data/id_map_impl.hpp"
#endif
