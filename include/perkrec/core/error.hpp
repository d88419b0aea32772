// The exception hierarchy. perkrec reports every failure by throwing one of these; it never
// returns error codes and never prints.
//
// Messages follow one pattern: `Class::method: what is wrong (got X, expected Y)`, naming the
// field, row or JSON pointer involved, so the message alone tells the user what to fix.
// Every method validates its input before it changes any state: when it throws, the object
// is left exactly as it was.
//
// Python mapping (perkrec._core): Error -> perkrec.Error(Exception); InputError and ConfigError
// -> also ValueError; ModelFormatError -> also ValueError, with a `.code` attribute;
// DivergenceError -> also ArithmeticError; Interrupted -> KeyboardInterrupt.
#pragma once

#include <cstddef>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace perkrec {
namespace detail {

/// Length of the valid UTF-8 sequence starting at `s[i]` (1 to 4), or 0 when the bytes there
/// are not valid UTF-8 (overlong forms, surrogates and code points above U+10FFFF included).
inline std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = at(i);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (at(i + 1) < lo || at(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    if (at(i + k) < 0x80 || at(i + k) > 0xBF) return 0;
  }
  return n;
}

/// Byte offset of the first invalid UTF-8 sequence in `s`, or std::string_view::npos.
inline std::size_t invalid_utf8_at(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence_length(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

/// `s` with every byte that is not part of valid UTF-8 written as "\xNN", so that any text
/// (a message quoting hostile input) can be shown, encoded as JSON or turned into a Python str.
inline std::string valid_utf8(std::string_view s) {
  if (invalid_utf8_at(s) == std::string_view::npos) return std::string(s);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 16);
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence_length(s, i);
    if (n == 0) {
      const auto c = static_cast<unsigned char>(s[i]);
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
      ++i;
    } else {
      out.append(s.data() + i, n);
      i += n;
    }
  }
  return out;
}

}  // namespace detail

/// Root of all perkrec exceptions. The message is always valid UTF-8: bytes of hostile input
/// quoted in it that are not valid UTF-8 are written as "\xNN".
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(detail::valid_utf8(message)) {}
  explicit Error(const char* message) : Error(std::string(message)) {}
};

/// Bad data: mismatched shapes, out-of-range ids, non-finite values, unknown categories.
class InputError : public Error {
 public:
  using Error::Error;
};

/// Bad hyper-parameters or configuration (including strict-JSON violations in configs).
class ConfigError : public Error {
 public:
  using Error::Error;
};

/// Why a model file was rejected.
enum class ModelFormatCode {
  io_error,             ///< the file or stream could not be read or written
  bad_magic,            ///< not a perkrec model file
  unsupported_version,  ///< written by a newer, incompatible format version
  truncated,            ///< fewer bytes than the file declares
  checksum_mismatch,    ///< CRC32C does not match: the bytes were altered
  bad_header,           ///< the JSON header is malformed or inconsistent
  bad_array,            ///< an array entry is malformed (dtype, shape, offset, size)
  wrong_kind,           ///< a file of another model kind was given to a loader
  invalid_content,      ///< arrays are well-formed but their values are not (indices range, …)
};

/// Name of a ModelFormatCode ("bad_magic", …).
inline const char* to_string(ModelFormatCode code) {
  switch (code) {
    case ModelFormatCode::io_error:
      return "io_error";
    case ModelFormatCode::bad_magic:
      return "bad_magic";
    case ModelFormatCode::unsupported_version:
      return "unsupported_version";
    case ModelFormatCode::truncated:
      return "truncated";
    case ModelFormatCode::checksum_mismatch:
      return "checksum_mismatch";
    case ModelFormatCode::bad_header:
      return "bad_header";
    case ModelFormatCode::bad_array:
      return "bad_array";
    case ModelFormatCode::wrong_kind:
      return "wrong_kind";
    case ModelFormatCode::invalid_content:
      return "invalid_content";
  }
  return "unknown";
}

/// A model file or byte string that cannot be loaded; `code()` says why.
class ModelFormatError : public Error {
 public:
  ModelFormatError(ModelFormatCode code, const std::string& message)
      : Error(message), code_(code) {}
  /// A header problem (code bad_header); used by the strict JSON reader.
  explicit ModelFormatError(const std::string& message)
      : ModelFormatError(ModelFormatCode::bad_header, message) {}
  ModelFormatCode code() const noexcept { return code_; }

 private:
  ModelFormatCode code_;
};

/// Training produced non-finite values; the model keeps its last finite state.
class DivergenceError : public Error {
 public:
  using Error::Error;
};

/// Long work stopped because the caller's `should_stop` callback asked for it (Ctrl-C in
/// Python). The object is left as it was before the call.
class Interrupted : public Error {
 public:
  using Error::Error;
};

namespace detail {

template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  out.precision(10);
  (out << ... << parts);
  return out.str();
}

/// Throws `E` with the concatenation of `parts` as its message.
template <class E, class... Parts>
[[noreturn]] void raise(const Parts&... parts) {
  throw E(concat(parts...));
}

/// InputError unless column `name` has `expected` rows (or none, when `optional`).
inline void check_column_length(const char* ctx, const std::string& name, std::size_t rows,
                                std::size_t expected, bool optional = false) {
  if (rows == expected || (optional && rows == 0)) return;
  raise<InputError>(ctx, ": column '", name, "' has ", rows, " rows (expected ", expected,
                    optional ? " or none)" : ")");
}

}  // namespace detail
}  // namespace perkrec
