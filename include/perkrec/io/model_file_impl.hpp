// Definitions for model_file.hpp.
#pragma once

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <istream>
#include <limits>
#include <new>
#include <ostream>
#include <sstream>

#include "perkrec/detail/crc32c.hpp"
#include "perkrec/io/model_file.hpp"
#include "perkrec/version.hpp"

namespace perkrec {

namespace detail {

inline constexpr unsigned char kModelMagic[8] = {0x89, 'P', 'R', 'K', '\r', '\n', 0x1A, '\n'};
inline constexpr unsigned char kModelTrailerMagic[4] = {'P', 'R', 'K', 'E'};
inline constexpr std::size_t kModelPrefixBytes = 32;
inline constexpr std::size_t kModelTrailerBytes = 8;
inline constexpr std::size_t kModelAlignment = 64;
// A header larger than this is certainly damage, not a real model description.
inline constexpr std::uint32_t kMaxModelHeaderBytes = 256u << 20;

inline void store_u32(unsigned char* p, std::uint32_t v) { std::memcpy(p, &v, 4); }
inline void store_u64(unsigned char* p, std::uint64_t v) { std::memcpy(p, &v, 8); }
inline std::uint32_t load_u32(const unsigned char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline std::uint64_t load_u64(const unsigned char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline std::uint64_t align_up(std::uint64_t x) {
  return (x + kModelAlignment - 1) / kModelAlignment * kModelAlignment;
}

[[noreturn]] inline void model_format_error(ModelFormatCode code, const std::string& message) {
  throw ModelFormatError(code, message);
}

PERKREC_INLINE unsigned char* allocate_aligned(std::uint64_t size) {
  return static_cast<unsigned char*>(::operator new(static_cast<std::size_t>(size > 0 ? size : 1),
                                                    std::align_val_t(kModelAlignment)));
}

}  // namespace detail

PERKREC_INLINE const char* to_string(DType dtype) {
  switch (dtype) {
    case DType::u8:
      return "u8";
    case DType::i8:
      return "i8";
    case DType::i16:
      return "i16";
    case DType::i32:
      return "i32";
    case DType::i64:
      return "i64";
    case DType::f32:
      return "f32";
    case DType::f64:
      return "f64";
  }
  return "?";
}

PERKREC_INLINE std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::u8:
    case DType::i8:
      return 1;
    case DType::i16:
      return 2;
    case DType::i32:
    case DType::f32:
      return 4;
    case DType::i64:
    case DType::f64:
      return 8;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Writer

PERKREC_INLINE ModelWriter::ModelWriter(std::string kind, Json content)
    : kind_(std::move(kind)), content_(std::move(content)) {
  if (kind_.empty()) detail::raise<InputError>("ModelWriter: kind must not be empty");
  if (!content_.is_object()) detail::raise<InputError>("ModelWriter: content must be an object");
}

PERKREC_INLINE void ModelWriter::add_raw(const std::string& name, DType dtype,
                                         std::vector<std::int64_t> shape, const void* data,
                                         std::size_t bytes) {
  for (const Entry& e : entries_) {
    if (e.name == name) detail::raise<InputError>("ModelWriter::add: duplicate array '", name, "'");
  }
  Entry e{name, dtype, std::move(shape), std::string()};
  if (bytes > 0) e.bytes.assign(static_cast<const char*>(data), bytes);
  entries_.push_back(std::move(e));
}

PERKREC_INLINE void ModelWriter::add_strings(const std::string& name,
                                             const std::vector<std::string>& values) {
  std::vector<std::int64_t> offsets(values.size() + 1, 0);
  std::vector<std::uint8_t> bytes;
  for (std::size_t i = 0; i < values.size(); ++i) {
    bytes.insert(bytes.end(), values[i].begin(), values[i].end());
    offsets[i + 1] = static_cast<std::int64_t>(bytes.size());
  }
  add(name + ".bytes", bytes);
  add(name + ".offsets", offsets);
}

PERKREC_INLINE std::string ModelWriter::to_bytes() const {
  // Lay out the arrays first: their offsets go into the header, whose length decides where
  // the arrays start, so iterate until the header length is stable.
  Json arrays = Json::array();
  std::string header_text;
  std::uint64_t data_start = 0;
  std::vector<std::uint64_t> offsets(entries_.size());
  std::uint64_t end = 0;
  for (int pass = 0; pass < 8; ++pass) {
    const std::uint64_t start = detail::align_up(detail::kModelPrefixBytes + header_text.size());
    std::uint64_t cursor = start;
    arrays = Json::array();
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      offsets[i] = cursor;
      arrays.push_back({{"name", entries_[i].name},
                        {"dtype", to_string(entries_[i].dtype)},
                        {"shape", entries_[i].shape},
                        {"offset", cursor},
                        {"bytes", entries_[i].bytes.size()}});
      cursor = detail::align_up(cursor + entries_[i].bytes.size());
    }
    end = cursor;
    Json header = {{"format", "perkrec-model"},
                   {"kind", kind_},
                   {"library_version", version_string},
                   {"content", content_},
                   {"arrays", arrays}};
    std::string text = header.dump();
    if (text == header_text && start == data_start) break;
    header_text = std::move(text);
    data_start = start;
  }
  const std::uint64_t total = end + detail::kModelTrailerBytes;
  std::string out(static_cast<std::size_t>(total), '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  std::memcpy(p, detail::kModelMagic, 8);
  detail::store_u32(p + 8, kModelFormatVersion);
  detail::store_u32(p + 12, static_cast<std::uint32_t>(header_text.size()));
  detail::store_u64(p + 16, total);
  std::memcpy(p + detail::kModelPrefixBytes, header_text.data(), header_text.size());
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (!entries_[i].bytes.empty()) {
      std::memcpy(p + offsets[i], entries_[i].bytes.data(), entries_[i].bytes.size());
    }
  }
  const std::uint32_t crc = detail::crc32c(p, static_cast<std::size_t>(end));
  detail::store_u32(p + end, crc);
  std::memcpy(p + end + 4, detail::kModelTrailerMagic, 4);
  return out;
}

PERKREC_INLINE void ModelWriter::write(std::ostream& out) const {
  const std::string bytes = to_bytes();
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    detail::model_format_error(ModelFormatCode::io_error,
                               "ModelWriter::write: the stream refused the bytes");
  }
}

PERKREC_INLINE void ModelWriter::save(const std::string& path) const {
  const std::string bytes = to_bytes();
  const std::string partial = path + ".partial";
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    if (!out) {
      detail::model_format_error(ModelFormatCode::io_error,
                                 "ModelWriter::save: cannot open '" + partial + "' for writing");
    }
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      out.close();
      std::remove(partial.c_str());
      detail::model_format_error(ModelFormatCode::io_error,
                                 "ModelWriter::save: writing '" + partial + "' failed");
    }
  }
  if (std::rename(partial.c_str(), path.c_str()) != 0) {
    std::remove(partial.c_str());
    detail::model_format_error(ModelFormatCode::io_error, "ModelWriter::save: cannot rename '" +
                                                              partial + "' to '" + path + "'");
  }
}

// ---------------------------------------------------------------------------------------------
// Reader

PERKREC_INLINE void ModelReader::AlignedDeleter::operator()(unsigned char* p) const {
  ::operator delete(p, std::align_val_t(detail::kModelAlignment));
}

PERKREC_INLINE ModelReader ModelReader::from_bytes(std::string_view bytes) {
  std::unique_ptr<unsigned char[], AlignedDeleter> buffer(detail::allocate_aligned(bytes.size()));
  if (!bytes.empty()) std::memcpy(buffer.get(), bytes.data(), bytes.size());
  return parse(std::move(buffer), bytes.size());
}

PERKREC_INLINE ModelReader ModelReader::from_stream(std::istream& in) {
  using detail::kModelPrefixBytes;
  unsigned char prefix[kModelPrefixBytes];
  in.read(reinterpret_cast<char*>(prefix), kModelPrefixBytes);
  const auto got = static_cast<std::uint64_t>(in.gcount());
  if (got >= 8 && std::memcmp(prefix, detail::kModelMagic, 8) != 0) {
    detail::model_format_error(ModelFormatCode::bad_magic,
                               "ModelReader::from_stream: not a perkrec model (bad magic)");
  }
  if (got < kModelPrefixBytes) {
    detail::model_format_error(ModelFormatCode::truncated,
                               detail::concat("ModelReader::from_stream: truncated (got ", got,
                                              " bytes, expected at least ",
                                              kModelPrefixBytes + detail::kModelTrailerBytes, ")"));
  }
  const std::uint64_t declared = detail::load_u64(prefix + 16);
  if (declared < kModelPrefixBytes + detail::kModelTrailerBytes) {
    detail::model_format_error(
        ModelFormatCode::bad_header,
        detail::concat("ModelReader::from_stream: declared length ", declared, " is too small"));
  }
  // Read in bounded chunks so a damaged length field cannot trigger a huge allocation before
  // the stream proves the bytes exist.
  std::string data(reinterpret_cast<const char*>(prefix), kModelPrefixBytes);
  constexpr std::uint64_t kChunk = 16u << 20;
  while (data.size() < declared) {
    const std::uint64_t want = std::min<std::uint64_t>(kChunk, declared - data.size());
    const std::size_t old = data.size();
    data.resize(old + static_cast<std::size_t>(want));
    in.read(&data[old], static_cast<std::streamsize>(want));
    const auto n = static_cast<std::uint64_t>(in.gcount());
    if (n < want) {
      detail::model_format_error(
          ModelFormatCode::truncated,
          detail::concat("ModelReader::from_stream: truncated (got ", old + n,
                         " bytes, the file declares ", declared, ")"));
    }
  }
  return from_bytes(data);
}

PERKREC_INLINE ModelReader ModelReader::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    detail::model_format_error(ModelFormatCode::io_error,
                               "ModelReader::from_file: cannot open '" + path + "'");
  }
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  in.seekg(0, std::ios::beg);
  if (size < 0) {
    detail::model_format_error(
        ModelFormatCode::io_error,
        "ModelReader::from_file: cannot determine the size of '" + path + "'");
  }
  std::unique_ptr<unsigned char[], AlignedDeleter> buffer(
      detail::allocate_aligned(static_cast<std::uint64_t>(size)));
  in.read(reinterpret_cast<char*>(buffer.get()), size);
  if (in.gcount() != size) {
    detail::model_format_error(ModelFormatCode::io_error,
                               "ModelReader::from_file: reading '" + path + "' failed");
  }
  return parse(std::move(buffer), static_cast<std::uint64_t>(size));
}

PERKREC_INLINE ModelReader
ModelReader::parse(std::unique_ptr<unsigned char[], AlignedDeleter> owned, std::uint64_t size) {
  using detail::kModelPrefixBytes;
  using detail::kModelTrailerBytes;
  const unsigned char* p = owned.get();
  auto fail = [](ModelFormatCode code, const std::string& what) {
    detail::model_format_error(code, "ModelReader: " + what);
  };
  if (size >= 8 && std::memcmp(p, detail::kModelMagic, 8) != 0) {
    fail(ModelFormatCode::bad_magic, "not a perkrec model (bad magic)");
  }
  if (size < kModelPrefixBytes + kModelTrailerBytes) {
    fail(ModelFormatCode::truncated,
         detail::concat("truncated (got ", size, " bytes, expected at least ",
                        kModelPrefixBytes + kModelTrailerBytes, ")"));
  }
  const std::uint32_t version = detail::load_u32(p + 8);
  if (version == 0 || version > kModelFormatVersion) {
    fail(ModelFormatCode::unsupported_version,
         detail::concat("unsupported format version (got ", version, ", expected 1 to ",
                        kModelFormatVersion, ")"));
  }
  const std::uint32_t header_bytes = detail::load_u32(p + 12);
  const std::uint64_t declared = detail::load_u64(p + 16);
  if (declared > size) {
    fail(ModelFormatCode::truncated,
         detail::concat("truncated (got ", size, " bytes, the file declares ", declared, ")"));
  }
  if (declared < size) {
    fail(ModelFormatCode::bad_header, detail::concat("length mismatch (got ", size,
                                                     " bytes, the file declares ", declared, ")"));
  }
  const std::uint64_t body = size - kModelTrailerBytes;
  if (std::memcmp(p + body + 4, detail::kModelTrailerMagic, 4) != 0) {
    fail(ModelFormatCode::truncated, "end marker missing (the file is cut or damaged)");
  }
  const std::uint32_t stored_crc = detail::load_u32(p + body);
  const std::uint32_t actual_crc = detail::crc32c(p, static_cast<std::size_t>(body));
  if (stored_crc != actual_crc) {
    fail(ModelFormatCode::checksum_mismatch,
         detail::concat("checksum mismatch (stored ", stored_crc, ", computed ", actual_crc,
                        "): the file was altered"));
  }
  if (detail::load_u64(p + 24) != 0) fail(ModelFormatCode::bad_header, "reserved bytes not zero");
  if (header_bytes == 0 || header_bytes > detail::kMaxModelHeaderBytes ||
      kModelPrefixBytes + static_cast<std::uint64_t>(header_bytes) > body) {
    fail(ModelFormatCode::bad_header,
         detail::concat("header length ", header_bytes, " does not fit in ", size, " bytes"));
  }

  Json header;
  detail::JsonParseFailure failure;
  JsonLimits limits;
  limits.max_bytes = header_bytes;
  // A real header is mostly strings and short lists; its DOM takes a few times its text.
  limits.max_memory_bytes = 8 * static_cast<std::size_t>(header_bytes) + (1u << 20);
  detail::parse_json_strict_into(
      std::string_view(reinterpret_cast<const char*>(p + kModelPrefixBytes), header_bytes), limits,
      header, failure);
  if (failure.failed) {
    fail(ModelFormatCode::bad_header, "header " + failure.pointer + ": " + failure.message);
  }

  ModelReader reader;
  {
    JsonReader<ModelFormatError> r(header, "", "ModelReader: header");
    std::string format;
    r.require("format", format);
    if (format != "perkrec-model") r.fail("format", "expected \"perkrec-model\"");
    r.require("kind", reader.kind_);
    r.require("library_version", reader.library_version_);
    const Json* content = r.raw("content");
    if (content == nullptr || !content->is_object()) r.fail("content", "expected an object");
    reader.content_ = *content;
    const Json* arrays = r.raw("arrays");
    if (arrays == nullptr || !arrays->is_array()) r.fail("arrays", "expected an array");
    r.finish();

    const std::uint64_t data_start = detail::align_up(kModelPrefixBytes + header_bytes);
    std::vector<std::pair<std::uint64_t, std::uint64_t>> spans;
    std::size_t i = 0;
    for (const Json& a : *arrays) {
      JsonReader<ModelFormatError> ar(a, "/arrays/" + std::to_string(i++), "ModelReader: header");
      std::string name, dtype_name;
      std::vector<std::int64_t> shape;
      std::uint64_t offset = 0, bytes = 0;
      ar.require("name", name);
      ar.require("dtype", dtype_name);
      ar.require("shape", shape);
      ar.require("offset", offset);
      ar.require("bytes", bytes);
      ar.finish();
      DType dtype{};
      bool known = false;
      for (DType d :
           {DType::u8, DType::i8, DType::i16, DType::i32, DType::i64, DType::f32, DType::f64}) {
        if (dtype_name == to_string(d)) {
          dtype = d;
          known = true;
        }
      }
      auto bad = [&](const std::string& what) {
        detail::model_format_error(ModelFormatCode::bad_array,
                                   "ModelReader: array '" + name + "': " + what);
      };
      if (!known) bad("unknown dtype '" + dtype_name + "'");
      if (shape.size() > 8) bad("more than 8 dimensions");
      std::uint64_t count = 1;
      for (std::int64_t d : shape) {
        if (d < 0) bad("negative dimension");
        if (d > 0 &&
            count > std::numeric_limits<std::uint64_t>::max() / static_cast<std::uint64_t>(d)) {
          bad("shape overflows");
        }
        count *= static_cast<std::uint64_t>(d);
      }
      if (count > body / dtype_size(dtype) + 1 || count * dtype_size(dtype) != bytes) {
        bad(detail::concat("byte size ", bytes, " does not match its shape and dtype"));
      }
      if (offset % detail::kModelAlignment != 0 || offset < data_start || offset > body ||
          bytes > body - offset) {
        bad(detail::concat("offset ", offset, " + ", bytes, " bytes lies outside the data area [",
                           data_start, ", ", body, ")"));
      }
      if (reader.arrays_.count(name) != 0) bad("duplicate name");
      spans.emplace_back(offset, bytes);
      reader.arrays_.emplace(name, ArrayEntry{dtype, std::move(shape), offset, bytes});
    }
    std::sort(spans.begin(), spans.end());
    for (std::size_t k = 1; k < spans.size(); ++k) {
      if (spans[k - 1].first + spans[k - 1].second > spans[k].first) {
        detail::model_format_error(ModelFormatCode::bad_array, "ModelReader: arrays overlap");
      }
    }
  }
  reader.buffer_ = std::shared_ptr<unsigned char>(owned.release(), AlignedDeleter{});
  reader.size_ = size;
  return reader;
}

PERKREC_INLINE void ModelReader::expect_kind(std::string_view kind) const {
  if (kind_ != kind) {
    detail::model_format_error(
        ModelFormatCode::wrong_kind,
        detail::concat("ModelReader: the file holds a ", kind_, " (expected ", kind, ")"));
  }
}

PERKREC_INLINE const ModelReader::ArrayEntry& ModelReader::entry(const std::string& name) const {
  auto it = arrays_.find(name);
  if (it == arrays_.end()) {
    detail::model_format_error(ModelFormatCode::bad_array,
                               "ModelReader: " + kind_ + " file has no array '" + name + "'");
  }
  return it->second;
}

PERKREC_INLINE const std::vector<std::int64_t>& ModelReader::shape(const std::string& name) const {
  return entry(name).shape;
}

PERKREC_INLINE std::vector<std::string> ModelReader::strings(const std::string& name) const {
  Span<const std::uint8_t> bytes = array<std::uint8_t>(name + ".bytes");
  Span<const std::int64_t> offsets = array<std::int64_t>(name + ".offsets");
  if (shape(name + ".offsets").size() != 1 || shape(name + ".bytes").size() != 1) {
    invalid("string list '" + name + "' is not one-dimensional");
  }
  // Every offset is checked before any byte is read: 0 = first <= ... <= last = bytes.
  const auto total = static_cast<std::int64_t>(bytes.size());
  if (offsets.empty() || offsets[0] != 0 || offsets[offsets.size() - 1] != total) {
    invalid("string list '" + name + "' has inconsistent offsets");
  }
  for (std::size_t i = 0; i + 1 < offsets.size(); ++i) {
    if (offsets[i + 1] < offsets[i] || offsets[i + 1] > total) {
      invalid(detail::concat("string list '", name, "' offset ", i + 1, " (", offsets[i + 1],
                             ") decreases or lies outside its ", total, " bytes"));
    }
  }
  std::vector<std::string> out;
  out.reserve(offsets.size() - 1);
  for (std::size_t i = 0; i + 1 < offsets.size(); ++i) {
    const std::string_view text(reinterpret_cast<const char*>(bytes.data()) + offsets[i],
                                static_cast<std::size_t>(offsets[i + 1] - offsets[i]));
    const std::size_t bad = detail::invalid_utf8_at(text);
    if (bad != std::string_view::npos) {
      invalid(detail::concat("string list '", name, "' entry ", i, " holds invalid UTF-8 at byte ",
                             bad));
    }
    out.emplace_back(text);
  }
  return out;
}

PERKREC_INLINE void ModelReader::check_count(const char* what, std::int64_t n) const {
  if (n < 0 || static_cast<std::uint64_t>(n) > size_) {
    bad_content(detail::concat(what, " ", n, " is negative or more than the file's ", size_,
                               " bytes can hold"));
  }
}

PERKREC_INLINE void ModelReader::invalid(const std::string& what) const {
  detail::model_format_error(ModelFormatCode::invalid_content,
                             "ModelReader: " + kind_ + ": " + what);
}

PERKREC_INLINE void ModelReader::bad_content(const std::string& what) const {
  detail::model_format_error(ModelFormatCode::bad_header,
                             "ModelReader: " + kind_ + " content: " + what);
}

}  // namespace perkrec
