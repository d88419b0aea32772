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

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace perkrec {

/// Root of all perkrec exceptions.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
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
    case ModelFormatCode::io_error: return "io_error";
    case ModelFormatCode::bad_magic: return "bad_magic";
    case ModelFormatCode::unsupported_version: return "unsupported_version";
    case ModelFormatCode::truncated: return "truncated";
    case ModelFormatCode::checksum_mismatch: return "checksum_mismatch";
    case ModelFormatCode::bad_header: return "bad_header";
    case ModelFormatCode::bad_array: return "bad_array";
    case ModelFormatCode::wrong_kind: return "wrong_kind";
    case ModelFormatCode::invalid_content: return "invalid_content";
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

}  // namespace detail
}  // namespace perkrec
