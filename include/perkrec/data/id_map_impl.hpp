// Definitions for id_map.hpp.
#pragma once

#include <functional>
#include <limits>

#include "perkrec/core/random.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/data/id_map.hpp"
#include "perkrec/detail/blocks.hpp"

namespace perkrec {

namespace detail {

inline std::uint64_t hash_integer_id(std::int64_t id) {
  std::uint64_t x = static_cast<std::uint64_t>(id);
  return splitmix64(x);
}

inline std::uint64_t hash_string_id(std::string_view id);
inline std::uint64_t hash_id(std::int64_t id) { return hash_integer_id(id); }
inline std::uint64_t hash_id(std::string_view id) { return hash_string_id(id); }
inline std::int64_t key_view(std::int64_t id) { return id; }
inline std::string_view key_view(const std::string& id) { return id; }

inline std::uint64_t hash_string_id(std::string_view id) {
  // FNV-1a; only used in memory, never persisted.
  std::uint64_t h = 0xCBF29CE484222325ULL;
  for (unsigned char c : id) {
    h ^= c;
    h *= 0x100000001B3ULL;
  }
  return h ^ (h >> 29);
}

inline const char* key_type_name(IdMap::KeyType t) {
  switch (t) {
    case IdMap::KeyType::empty:
      return "empty";
    case IdMap::KeyType::integer:
      return "integer";
    case IdMap::KeyType::string:
      return "string";
  }
  return "?";
}

}  // namespace detail

PERKREC_INLINE std::uint64_t IdMap::hash_of(Index index) const {
  return key_type_ == KeyType::string ? detail::hash_string_id(strings_[index])
                                      : detail::hash_integer_id(integers_[index]);
}

PERKREC_INLINE void IdMap::rehash(std::size_t capacity) {
  std::size_t n = 16;
  while (n < capacity) n <<= 1;
  slots_.assign(n, -1);
  const Index count = size();
  for (Index i = 0; i < count; ++i) insert_slot(hash_of(i), i);
}

PERKREC_INLINE void IdMap::insert_slot(std::uint64_t hash, Index index) {
  const std::size_t mask = slots_.size() - 1;
  std::size_t pos = static_cast<std::size_t>(hash) & mask;
  while (slots_[pos] >= 0) pos = (pos + 1) & mask;
  slots_[pos] = index;
}

template <class Key, class Keys>
Index IdMap::probe(Key id, const Keys& keys) const {
  if (slots_.empty()) return -1;
  const std::size_t mask = slots_.size() - 1;
  std::size_t pos = static_cast<std::size_t>(detail::hash_id(id)) & mask;
  for (;;) {
    const Index s = slots_[pos];
    if (s < 0) return -1;
    if (keys[static_cast<std::size_t>(s)] == id) return s;
    pos = (pos + 1) & mask;
  }
}

PERKREC_INLINE Index IdMap::find(std::int64_t id) const {
  return key_type_ == KeyType::integer ? probe(id, integers_) : -1;
}

PERKREC_INLINE Index IdMap::find(std::string_view id) const {
  return key_type_ == KeyType::string ? probe(id, strings_) : -1;
}

PERKREC_INLINE void IdMap::require_type(KeyType type, const char* method) const {
  if (key_type_ != KeyType::empty && key_type_ != type) {
    detail::raise<InputError>("IdMap::", method, ": this map holds ",
                              detail::key_type_name(key_type_), " ids (got ",
                              detail::key_type_name(type), " ids)");
  }
}

template <class Key, class Keys>
Index IdMap::add_key(Key id, Keys& keys, KeyType type) {
  require_type(type, "add");
  const Index found = probe(id, keys);
  if (found >= 0) return found;
  if (size() == std::numeric_limits<Index>::max()) {
    detail::raise<InputError>("IdMap::add: more than 2^31-1 ids");
  }
  key_type_ = type;
  keys.emplace_back(id);
  const auto index = static_cast<Index>(keys.size() - 1);
  if (2 * keys.size() > slots_.size()) {
    rehash(4 * keys.size());
  } else {
    insert_slot(detail::hash_id(id), index);
  }
  return index;
}

PERKREC_INLINE Index IdMap::add(std::int64_t id) {
  return add_key(id, integers_, KeyType::integer);
}

PERKREC_INLINE Index IdMap::add(std::string_view id) {
  return add_key(id, strings_, KeyType::string);
}

PERKREC_INLINE IdMap IdMap::from_integers(Span<const std::int64_t> ids) {
  IdMap map;
  map.key_type_ = KeyType::integer;
  map.integers_.reserve(ids.size());
  map.rehash(2 * ids.size() + 1);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const Index existing = map.probe(ids[i], map.integers_);
    if (existing >= 0) {
      detail::raise<InputError>("IdMap::from_integers: duplicate id ", ids[i], " at positions ",
                                existing, " and ", i);
    }
    map.add(ids[i]);
  }
  return map;
}

PERKREC_INLINE IdMap IdMap::from_strings(const std::vector<std::string>& ids) {
  IdMap map;
  map.key_type_ = KeyType::string;
  map.strings_.reserve(ids.size());
  map.rehash(2 * ids.size() + 1);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const Index existing = map.probe(std::string_view(ids[i]), map.strings_);
    if (existing >= 0) {
      detail::raise<InputError>("IdMap::from_strings: duplicate id '", ids[i], "' at positions ",
                                existing, " and ", i);
    }
    map.add(ids[i]);
  }
  return map;
}

PERKREC_INLINE IdMap IdMap::range(Index n) {
  if (n < 0) detail::raise<InputError>("IdMap::range: n must be >= 0 (got ", n, ")");
  std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) ids[i] = i;
  return from_integers(ids);
}

namespace detail {

// Lookups are independent reads of the const map, so large batches run on the OpenMP default
// thread count in fixed blocks; an unknown id raises for the lowest position whatever the threads.
template <class Map, class Key, class Find>
void id_map_lookup(const Map& map, const Key* ids, std::size_t n, Index* out,
                   IdMap::Missing missing, Find&& find, const char* type) {
  const Blocks blocks(static_cast<Offset>(n));
  std::vector<Offset> first_missing(static_cast<std::size_t>(blocks.count), -1);
  parallel_for(0, blocks.count, 0, [&](Offset b) {
    for (Offset i = blocks.begin(b); i < blocks.end(b); ++i) {
      const auto k = static_cast<std::size_t>(i);
      const Index idx = find(ids[k]);
      if (idx < 0 && missing == IdMap::Missing::raise) {
        first_missing[static_cast<std::size_t>(b)] = i;
        return;
      }
      out[k] = idx;
    }
  });
  for (const Offset i : first_missing) {
    if (i >= 0) {
      raise<InputError>("IdMap::lookup: unknown ", type, " id ", ids[static_cast<std::size_t>(i)],
                        " at position ", i, " (the map holds ", map.size(), " ids)");
    }
  }
}

}  // namespace detail

PERKREC_INLINE void IdMap::lookup(Span<const std::int64_t> ids, Span<Index> out,
                                  Missing missing) const {
  if (ids.size() != out.size()) {
    detail::raise<InputError>("IdMap::lookup: output length ", out.size(), " != ", ids.size());
  }
  require_type(KeyType::integer, "lookup");
  // The dense array costs O(size) to build: worth it for batches at least as long as the map.
  if (ids.size() >= static_cast<std::size_t>(size())) {
    const detail::IntegerIdLookup table(*this);
    if (table.dense()) {
      detail::id_map_lookup(
          *this, ids.data(), ids.size(), out.data(), missing,
          [&](std::int64_t id) { return table.find(id); }, "integer");
      return;
    }
  }
  detail::id_map_lookup(
      *this, ids.data(), ids.size(), out.data(), missing, [&](std::int64_t id) { return find(id); },
      "integer");
}

PERKREC_INLINE void IdMap::lookup(const std::vector<std::string>& ids, Span<Index> out,
                                  Missing missing) const {
  if (ids.size() != out.size()) {
    detail::raise<InputError>("IdMap::lookup: output length ", out.size(), " != ", ids.size());
  }
  require_type(KeyType::string, "lookup");
  detail::id_map_lookup(
      *this, ids.data(), ids.size(), out.data(), missing,
      [&](const std::string& id) { return find(std::string_view(id)); }, "string");
}

template <class Ids, class Keys>
void IdMap::lookup_or_add_keys(const Ids& ids, Span<Index> out, Keys& keys, KeyType type) {
  if (ids.size() != out.size()) {
    detail::raise<InputError>("IdMap::lookup_or_add: output length ", out.size(),
                              " != ", ids.size());
  }
  require_type(type, "lookup_or_add");
  const Index before = size();
  const KeyType type_before = key_type_;
  try {
    for (std::size_t i = 0; i < ids.size(); ++i) {
      out[i] = add_key(detail::key_view(ids[i]), keys, type);
    }
  } catch (...) {
    // Strong guarantee: drop what this call added.
    keys.resize(static_cast<std::size_t>(before));
    key_type_ = type_before;
    rehash(2 * keys.size() + 1);
    throw;
  }
}

PERKREC_INLINE void IdMap::lookup_or_add(Span<const std::int64_t> ids, Span<Index> out) {
  lookup_or_add_keys(ids, out, integers_, KeyType::integer);
}

PERKREC_INLINE void IdMap::lookup_or_add(const std::vector<std::string>& ids, Span<Index> out) {
  lookup_or_add_keys(ids, out, strings_, KeyType::string);
}

PERKREC_INLINE std::int64_t IdMap::integer_at(Index index) const {
  if (key_type_ != KeyType::integer) {
    detail::raise<InputError>("IdMap::integer_at: this map holds ",
                              detail::key_type_name(key_type_), " ids");
  }
  if (index < 0 || index >= size()) {
    detail::raise<InputError>("IdMap::integer_at: index out of range (got ", index,
                              ", expected 0 <= index < ", size(), ")");
  }
  return integers_[static_cast<std::size_t>(index)];
}

PERKREC_INLINE const std::string& IdMap::string_at(Index index) const {
  if (key_type_ != KeyType::string) {
    detail::raise<InputError>("IdMap::string_at: this map holds ", detail::key_type_name(key_type_),
                              " ids");
  }
  if (index < 0 || index >= size()) {
    detail::raise<InputError>("IdMap::string_at: index out of range (got ", index,
                              ", expected 0 <= index < ", size(), ")");
  }
  return strings_[static_cast<std::size_t>(index)];
}

PERKREC_INLINE std::string IdMap::label(Index index) const {
  if (index < 0 || index >= size()) return "#" + std::to_string(index);
  if (key_type_ == KeyType::string) return "'" + strings_[static_cast<std::size_t>(index)] + "'";
  return std::to_string(integers_[static_cast<std::size_t>(index)]);
}

PERKREC_INLINE void IdMap::write(ModelWriter& w, const std::string& prefix) const {
  Json& c = content_section(w, prefix);
  c["key_type"] = detail::key_type_name(key_type_);
  c["size"] = size();
  if (key_type_ == KeyType::string) {
    w.add_strings(prefix + "ids", strings_);
  } else {
    w.add(prefix + "ids", integers_);
  }
}

PERKREC_INLINE IdMap IdMap::read(const ModelReader& r, const std::string& prefix) {
  const Json& c = content_section(r, prefix);
  JsonReader<ModelFormatError> jr(c, content_pointer(prefix), "IdMap::read");
  std::string type;
  Index n = 0;
  jr.require("key_type", type);
  jr.require("size", n);
  jr.finish();
  if (n < 0) r.bad_content("IdMap size is negative");
  IdMap map;
  if (type == "string") {
    std::vector<std::string> ids = r.strings(prefix + "ids");
    if (static_cast<Index>(ids.size()) != n) r.invalid("IdMap size does not match its ids");
    try {
      map = from_strings(ids);
    } catch (const InputError& e) {
      r.invalid(e.what());
    }
  } else if (type == "integer" || type == "empty") {
    Span<const std::int64_t> ids = r.array<std::int64_t>(prefix + "ids", {n});
    if (type == "empty" && n != 0) r.invalid("an empty IdMap holds ids");
    try {
      map = from_integers(ids);
    } catch (const InputError& e) {
      r.invalid(e.what());
    }
    if (type == "empty") map.key_type_ = KeyType::empty;
  } else {
    r.bad_content("unknown IdMap key_type '" + type + "'");
  }
  return map;
}

}  // namespace perkrec
