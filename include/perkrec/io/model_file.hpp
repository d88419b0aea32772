// The model-file container: one binary format for every perkrec model and data object.
//
// Layout (all integers little-endian):
//   [0, 8)    magic "\x89PRK\r\n\x1a\n"  (detects text-mode and truncation damage)
//   [8, 12)   u32 format version (kModelFormatVersion)
//   [12, 16)  u32 length of the JSON header in bytes
//   [16, 24)  u64 length of the whole file in bytes
//   [24, 32)  reserved, zero
//   [32, …)   JSON header: {"format", "kind", "library_version", "content", "arrays"}
//   arrays    each at a 64-byte-aligned offset, zero padding in between
//   last 8    u32 CRC32C of every preceding byte, then "PRKE"
// "content" holds the object's own description (params, shapes, vocabularies); "arrays" lists
// {name, dtype, shape, offset, bytes} for every array.
//
// Loading trusts nothing: length, magic, version and checksum are verified before the header
// is parsed (strictly), every array entry is checked against the bytes present, and loaders
// validate array contents (index ranges, finiteness) before constructing anything. Every
// failure is a ModelFormatError whose code() says why.
//
// Example (a model's save/load):
//   perkrec::ModelWriter w("Popularity", {{"params", params_json}});
//   w.add("scores", scores);                       // std::vector<float>
//   w.save("pop.perk");                            // atomic: temp file, then rename
//   perkrec::ModelReader r = perkrec::ModelReader::from_file("pop.perk");
//   r.expect_kind("Popularity");
//   perkrec::Span<const float> s = r.array<float>("scores", {n_benefits});
//
// Thread safety: writers and readers are values; const methods may be used concurrently.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/error.hpp"
#include "perkrec/core/json.hpp"
#include "perkrec/core/types.hpp"

namespace perkrec {

/// Current container format version; files with a higher version are refused.
inline constexpr std::uint32_t kModelFormatVersion = 1;

/// Element types an array may hold.
enum class DType : std::uint8_t { u8, i8, i16, i32, i64, f32, f64 };

PERKREC_INLINE const char* to_string(DType dtype);
PERKREC_INLINE std::size_t dtype_size(DType dtype);

template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, std::uint8_t>)
    return DType::u8;
  else if constexpr (std::is_same_v<T, std::int8_t>)
    return DType::i8;
  else if constexpr (std::is_same_v<T, std::int16_t>)
    return DType::i16;
  else if constexpr (std::is_same_v<T, std::int32_t>)
    return DType::i32;
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return DType::i64;
  else if constexpr (std::is_same_v<T, float>)
    return DType::f32;
  else {
    static_assert(std::is_same_v<T, double>, "unsupported array element type");
    return DType::f64;
  }
}

/// Collects a header and arrays, then serializes them as one container.
class ModelWriter {
 public:
  /// `kind` names the object type ("Popularity", "EventLog", …); `content` is its JSON
  /// description (params, shapes, vocabularies).
  explicit ModelWriter(std::string kind, Json content = Json::object());

  /// Adds an array of `shape` (row-major) copied from `data`. Names must be unique.
  template <class T>
  void add(const std::string& name, const T* data, std::vector<std::int64_t> shape);
  /// Adds a 1-D array.
  template <class T, class A>
  void add(const std::string& name, const std::vector<T, A>& values) {
    add(name, values.data(), {static_cast<std::int64_t>(values.size())});
  }
  /// Adds a list of strings (stored as "<name>.bytes" u8 and "<name>.offsets" i64).
  void add_strings(const std::string& name, const std::vector<std::string>& values);

  Json& content() { return content_; }

  /// The whole container as bytes.
  std::string to_bytes() const;
  /// Writes the container to `out`. Throws ModelFormatError(io_error) on stream failure.
  void write(std::ostream& out) const;
  /// Writes atomically: to "<path>.partial", then renames over `path`, so a failed save never
  /// leaves a half-written file at `path`.
  void save(const std::string& path) const;

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<std::int64_t> shape;
    std::string bytes;
  };
  void add_raw(const std::string& name, DType dtype, std::vector<std::int64_t> shape,
               const void* data, std::size_t bytes);

  std::string kind_;
  Json content_;
  std::vector<Entry> entries_;
};

/// Parses and verifies a container; arrays are views into its own aligned buffer.
class ModelReader {
 public:
  /// Throws ModelFormatError for any damage (see the file comment).
  static ModelReader from_bytes(std::string_view bytes);
  /// Reads exactly one container from the stream's current position.
  static ModelReader from_stream(std::istream& in);
  static ModelReader from_file(const std::string& path);

  const std::string& kind() const { return kind_; }
  const std::string& library_version() const { return library_version_; }
  const Json& content() const { return content_; }

  /// Throws ModelFormatError(wrong_kind) unless the container holds `kind`.
  void expect_kind(std::string_view kind) const;

  bool has(const std::string& name) const { return arrays_.count(name) != 0; }
  /// Shape of the array `name`; throws bad_array when absent.
  const std::vector<std::int64_t>& shape(const std::string& name) const;

  /// A view of the array `name` with element type T and, when `expected_shape` is given,
  /// exactly that shape. Throws ModelFormatError(bad_array) otherwise.
  template <class T>
  Span<const T> array(const std::string& name,
                      const std::vector<std::int64_t>& expected_shape = {}) const;
  /// Copies of the array as a std::vector.
  template <class T>
  std::vector<T> vector(const std::string& name,
                        const std::vector<std::int64_t>& expected_shape = {}) const {
    Span<const T> s = array<T>(name, expected_shape);
    return std::vector<T>(s.begin(), s.end());
  }
  /// A list written by ModelWriter::add_strings.
  std::vector<std::string> strings(const std::string& name) const;

  /// Size of the container in bytes.
  std::uint64_t size() const { return size_; }
  /// Throws ModelFormatError(bad_header) unless the declared count `n` (members, benefits, …
  /// that size allocations but are not the shape of an array) is in [0, size()]: a count the
  /// file's own bytes cannot justify is damage or an attack, never a real model.
  void check_count(const char* what, std::int64_t n) const;

  /// Throws ModelFormatError(invalid_content) with a message naming this container's kind.
  [[noreturn]] void invalid(const std::string& what) const;
  /// Throws ModelFormatError(bad_header) for a bad `content` entry.
  [[noreturn]] void bad_content(const std::string& what) const;

 private:
  struct ArrayEntry {
    DType dtype;
    std::vector<std::int64_t> shape;
    std::uint64_t offset;
    std::uint64_t bytes;
  };
  struct AlignedDeleter {
    void operator()(unsigned char* p) const;
  };

  static ModelReader parse(std::unique_ptr<unsigned char[], AlignedDeleter> buffer,
                           std::uint64_t size);
  const ArrayEntry& entry(const std::string& name) const;

  std::shared_ptr<unsigned char> buffer_;
  std::uint64_t size_ = 0;
  std::string kind_;
  std::string library_version_;
  Json content_;
  std::map<std::string, ArrayEntry> arrays_;
};

template <class T>
void ModelWriter::add(const std::string& name, const T* data, std::vector<std::int64_t> shape) {
  std::uint64_t count = 1;
  for (std::int64_t d : shape) {
    if (d < 0) detail::raise<InputError>("ModelWriter::add: negative dimension for ", name);
    count *= static_cast<std::uint64_t>(d);
  }
  add_raw(name, dtype_of<T>(), std::move(shape), data, count * sizeof(T));
}

template <class T>
Span<const T> ModelReader::array(const std::string& name,
                                 const std::vector<std::int64_t>& expected_shape) const {
  const ArrayEntry& e = entry(name);
  if (e.dtype != dtype_of<T>()) {
    throw ModelFormatError(
        ModelFormatCode::bad_array,
        detail::concat("ModelReader::array: ", kind_, " array '", name, "' has dtype ",
                       to_string(e.dtype), " (expected ", to_string(dtype_of<T>()), ")"));
  }
  if (!expected_shape.empty() && e.shape != expected_shape) {
    std::string got, want;
    for (auto d : e.shape) got += (got.empty() ? "" : ", ") + std::to_string(d);
    for (auto d : expected_shape) want += (want.empty() ? "" : ", ") + std::to_string(d);
    throw ModelFormatError(ModelFormatCode::bad_array,
                           detail::concat("ModelReader::array: ", kind_, " array '", name,
                                          "' has shape (", got, ") (expected (", want, "))"));
  }
  return Span<const T>(reinterpret_cast<const T*>(buffer_.get() + e.offset),
                       static_cast<std::size_t>(e.bytes / sizeof(T)));
}

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/io/model_file_impl.hpp"
#endif
