// Strict JSON for configs, catalogs and model-file headers.
//
// nlohmann::json alone accepts duplicate keys (the last one wins) and has no bounds on input
// size or nesting. perkrec parses every JSON document through `parse_json_strict`, which
//  - rejects duplicate keys, naming the JSON pointer of the second occurrence,
//  - bounds the document size (bytes) and nesting depth,
//  - reports syntax errors with their byte offset,
// and reads objects through `JsonReader`, which type-checks every field, names the JSON
// pointer of any bad value, and rejects keys it was not asked about.
//
// Example:
//   auto doc = perkrec::parse_json_strict<perkrec::ConfigError>(text, "ALSParams::from_json");
//   perkrec::JsonReader<perkrec::ConfigError> r(doc, "", "ALSParams::from_json");
//   r.read("factors", params.factors);   // optional key, type-checked
//   r.finish();                           // unknown keys -> ConfigError naming "/key"
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "perkrec/core/config.hpp"
#include "perkrec/core/error.hpp"

namespace perkrec {

using Json = nlohmann::json;

/// Bounds applied while parsing.
struct JsonLimits {
  std::size_t max_bytes = 64u << 20;  ///< largest accepted document
  int max_depth = 64;                 ///< deepest accepted nesting of objects and arrays
  /// Largest estimated size of the parsed document in memory (0 = only max_bytes bounds it):
  /// short tokens expand (`[],` is 3 bytes of text and ~60 bytes of DOM), so a reader of
  /// untrusted text caps the expansion, e.g. at a small multiple of the text's length.
  std::size_t max_memory_bytes = 0;
};

/// Escapes one JSON-pointer token (RFC 6901: "~" -> "~0", "/" -> "~1").
PERKREC_INLINE std::string json_pointer_token(std::string_view token);

namespace detail {

struct JsonParseFailure {
  bool failed = false;
  std::string pointer;  ///< where it failed ("" = the document root)
  std::string message;
};

/// Parses `text` into `out` under the strict rules; on failure fills `failure` instead.
PERKREC_INLINE void parse_json_strict_into(std::string_view text, const JsonLimits& limits,
                                           Json& out, JsonParseFailure& failure);

PERKREC_INLINE std::string json_type_name(const Json& value);
PERKREC_INLINE std::string json_preview(const Json& value);

}  // namespace detail

/// Parses `text` strictly (see the file comment). Throws `E` (ConfigError for configs,
/// InputError for data, …) with a message starting with `context`.
template <class E>
Json parse_json_strict(std::string_view text, const std::string& context,
                       const JsonLimits& limits = {}) {
  Json out;
  detail::JsonParseFailure failure;
  detail::parse_json_strict_into(text, limits, out, failure);
  if (failure.failed) {
    detail::raise<E>(context, ": ", failure.pointer.empty() ? "(document)" : failure.pointer, ": ",
                     failure.message);
  }
  return out;
}

/// Reads one JSON object field by field; see the file comment. `E` is the exception thrown.
template <class E>
class JsonReader {
 public:
  /// `pointer` is the JSON pointer of `value` ("" for the root); `context` starts every
  /// message ("Catalog::from_json"). Throws E when `value` is not an object.
  JsonReader(const Json& value, std::string pointer, std::string context)
      : value_(value), pointer_(std::move(pointer)), context_(std::move(context)) {
    if (!value_.is_object()) fail_here("expected an object", value_);
  }

  const std::string& pointer() const { return pointer_; }
  const std::string& context() const { return context_; }
  bool has(const char* key) const { return value_.contains(key); }

  /// The raw value under `key` (marked as known), or nullptr when absent.
  const Json* raw(const char* key) {
    known_.insert(key);
    auto it = value_.find(key);
    return it == value_.end() ? nullptr : &*it;
  }

  /// Reads `key` into `out` when present (returns false and leaves `out` when absent).
  template <class T>
  bool read(const char* key, T& out) {
    const Json* v = raw(key);
    if (v == nullptr) return false;
    convert(*v, child_pointer(key), out);
    return true;
  }

  /// Reads a key that must be present.
  template <class T>
  void require(const char* key, T& out) {
    if (!read(key, out)) {
      detail::raise<E>(context_, ": ", child_pointer(key), ": required key is missing");
    }
  }

  /// A reader for the object under `key` (which must be present and an object).
  JsonReader child(const char* key) {
    const Json* v = raw(key);
    if (v == nullptr) {
      detail::raise<E>(context_, ": ", child_pointer(key), ": required key is missing");
    }
    return JsonReader(*v, child_pointer(key), context_);
  }

  /// Throws E naming the first key that no read/require/raw/child call asked for.
  void finish() const {
    for (auto it = value_.begin(); it != value_.end(); ++it) {
      if (known_.count(it.key()) == 0) {
        std::string expected;
        for (const auto& k : known_) expected += (expected.empty() ? "" : ", ") + k;
        detail::raise<E>(context_, ": ", child_pointer(it.key()),
                         ": unknown key (expected one of: ", expected, ")");
      }
    }
  }

  /// Throws E for the value under `key` with `what` as the reason.
  [[noreturn]] void fail(const char* key, const std::string& what) const {
    auto it = value_.find(key);
    if (it == value_.end()) {
      detail::raise<E>(context_, ": ", child_pointer(key), ": ", what);
    }
    detail::raise<E>(context_, ": ", child_pointer(key), ": ", what, " (got ",
                     detail::json_preview(*it), ")");
  }

  std::string child_pointer(std::string_view key) const {
    return pointer_ + "/" + json_pointer_token(key);
  }

  /// Converts `v` (found at `where`) into `out` with type and range checks.
  template <class T>
  void convert(const Json& v, const std::string& where, T& out) const {
    if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) fail_at(where, "expected true or false", v);
      out = v.get<bool>();
    } else if constexpr (std::is_integral_v<T>) {
      if (!v.is_number_integer()) {
        // Accept integral-valued floats such as 3.0 written by other tools.
        if (v.is_number_float()) {
          const double d = v.get<double>();
          if (std::isfinite(d) && d == std::floor(d) &&
              d >= static_cast<double>(std::numeric_limits<T>::min()) &&
              d <= static_cast<double>(std::numeric_limits<T>::max())) {
            out = static_cast<T>(d);
            return;
          }
        }
        fail_at(where, "expected an integer", v);
      }
      if (v.is_number_unsigned()) {
        const auto u = v.get<std::uint64_t>();
        if (u > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) {
          fail_at(where, "integer out of range", v);
        }
        out = static_cast<T>(u);
      } else {
        const auto s = v.get<std::int64_t>();
        if (s < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
            (s > 0 && static_cast<std::uint64_t>(s) >
                          static_cast<std::uint64_t>(std::numeric_limits<T>::max()))) {
          fail_at(where, "integer out of range", v);
        }
        out = static_cast<T>(s);
      }
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!v.is_number()) fail_at(where, "expected a number", v);
      const double d = v.get<double>();
      if (!std::isfinite(d)) fail_at(where, "expected a finite number", v);
      out = static_cast<T>(d);
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!v.is_string()) fail_at(where, "expected a string", v);
      out = v.get<std::string>();
    } else if constexpr (std::is_same_v<T, Json>) {
      out = v;
    } else {
      // std::vector<U>
      if (!v.is_array()) fail_at(where, "expected an array", v);
      T result;
      result.reserve(v.size());
      std::size_t i = 0;
      for (const auto& element : v) {
        typename T::value_type item{};
        convert(element, where + "/" + std::to_string(i++), item);
        result.push_back(std::move(item));
      }
      out = std::move(result);
    }
  }

  [[noreturn]] void fail_at(const std::string& where, const std::string& what,
                            const Json& v) const {
    detail::raise<E>(context_, ": ", where, ": ", what, " (got ", detail::json_preview(v), ")");
  }

 private:
  [[noreturn]] void fail_here(const std::string& what, const Json& v) const {
    fail_at(pointer_.empty() ? std::string("(document)") : pointer_, what, v);
  }

  const Json& value_;
  std::string pointer_;
  std::string context_;
  std::set<std::string> known_;
};

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/core/json_impl.hpp"
#endif
