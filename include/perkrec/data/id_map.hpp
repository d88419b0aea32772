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
// `lookup` runs batches of more than 65,536 ids on the OpenMP default number of threads.
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

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/data/id_map_impl.hpp"
#endif
