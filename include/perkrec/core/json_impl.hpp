// Definitions for json.hpp.
#pragma once

#include <unordered_set>
#include <utility>
#include <vector>

#include "perkrec/core/json.hpp"

namespace perkrec {

PERKREC_INLINE std::string json_pointer_token(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

namespace detail {

PERKREC_INLINE std::string json_type_name(const Json& value) { return value.type_name(); }

PERKREC_INLINE std::string json_preview(const Json& value) {
  std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  constexpr std::size_t kMax = 60;
  if (text.size() > kMax) text = text.substr(0, kMax) + "...";
  return text;
}

// Builds the DOM through nlohmann's SAX interface so that duplicate keys and depth can be
// checked while parsing, with the JSON pointer of every position known.
class StrictSaxBuilder {
 public:
  using number_integer_t = Json::number_integer_t;
  using number_unsigned_t = Json::number_unsigned_t;
  using number_float_t = Json::number_float_t;
  using string_t = Json::string_t;
  using binary_t = Json::binary_t;

  StrictSaxBuilder(Json& root, const JsonLimits& limits, JsonParseFailure& failure)
      : root_(root), limits_(limits), failure_(failure) {}

  bool null() { return put(Json(nullptr)); }
  bool boolean(bool v) { return put(Json(v)); }
  bool number_integer(number_integer_t v) { return put(Json(v)); }
  bool number_unsigned(number_unsigned_t v) { return put(Json(v)); }
  bool number_float(number_float_t v, const string_t&) { return put(Json(v)); }
  bool string(string_t& v) { return put(Json(std::move(v))); }
  bool binary(binary_t&) { return fail(pointer(), "binary values are not JSON"); }

  bool start_object(std::size_t) { return open(Json::object()); }
  bool end_object() { return close(); }
  bool start_array(std::size_t) { return open(Json::array()); }
  bool end_array() { return close(); }

  bool key(string_t& k) {
    if (!charge(64 + k.size())) return false;  // an object member: map node + key
    Frame& frame = frames_.back();
    if (!frame.keys.insert(k).second) {
      return fail(pointer(frames_.size() - 1) + "/" + json_pointer_token(k),
                  "duplicate key \"" + k + "\"");
    }
    frame.key = std::move(k);
    return true;
  }

  bool parse_error(std::size_t position, const std::string& last_token,
                   const nlohmann::detail::exception& ex) {
    std::string what = ex.what();
    // nlohmann prefixes its messages with "[json.exception.parse_error.101] "; keep the rest.
    const auto bracket = what.find("] ");
    if (bracket != std::string::npos) what = what.substr(bracket + 2);
    return fail(pointer(),
                concat("syntax error at byte ", position, " near '", last_token, "': ", what));
  }

 private:
  struct Frame {
    Json* container;
    std::string key;        // current key when the container is an object
    std::size_t index = 0;  // next element index when it is an array
    std::unordered_set<std::string> keys;
  };

  // JSON pointer of the current position, using the first `depth` frames (all by default).
  std::string pointer(std::size_t depth = static_cast<std::size_t>(-1)) const {
    std::string out;
    if (depth > frames_.size()) depth = frames_.size();
    for (std::size_t i = 0; i < depth; ++i) {
      const Frame& f = frames_[i];
      if (f.container->is_object()) {
        if (!f.key.empty() || !f.keys.empty()) out += "/" + json_pointer_token(f.key);
      } else {
        out += "/" + std::to_string(f.index);
      }
    }
    return out;
  }

  Json* slot() {
    if (frames_.empty()) return &root_;
    Frame& f = frames_.back();
    if (f.container->is_object()) return &(*f.container)[f.key];
    f.container->push_back(nullptr);
    return &f.container->back();
  }

  void after_value() {
    if (!frames_.empty() && frames_.back().container->is_array()) ++frames_.back().index;
  }

  bool put(Json&& value) {
    if (!charge(32 + (value.is_string() ? value.get_ref<const std::string&>().size() + 32 : 0)))
      return false;
    *slot() = std::move(value);
    after_value();
    return true;
  }

  bool open(Json&& container) {
    if (static_cast<int>(frames_.size()) >= limits_.max_depth) {
      return fail(pointer(), concat("nesting deeper than ", limits_.max_depth, " levels"));
    }
    if (!charge(96)) return false;
    Json* target = slot();
    *target = std::move(container);
    frames_.push_back(Frame{target, {}, 0, {}});
    return true;
  }

  bool close() {
    frames_.pop_back();
    after_value();
    return true;
  }

  // Adds an estimate of the memory one more value costs; false (and a failure) past the limit.
  bool charge(std::size_t bytes) {
    memory_ += bytes;
    if (limits_.max_memory_bytes == 0 || memory_ <= limits_.max_memory_bytes) return true;
    return fail(pointer(),
                concat("the document would take more than ", limits_.max_memory_bytes,
                       " bytes in memory (short values expand: it is damaged or hostile)"));
  }

  bool fail(std::string where, std::string message) {
    if (!failure_.failed) {
      failure_.failed = true;
      failure_.pointer = std::move(where);
      failure_.message = std::move(message);
    }
    return false;
  }

  Json& root_;
  const JsonLimits& limits_;
  JsonParseFailure& failure_;
  std::vector<Frame> frames_;
  std::size_t memory_ = 0;
};

PERKREC_INLINE void parse_json_strict_into(std::string_view text, const JsonLimits& limits,
                                           Json& out, JsonParseFailure& failure) {
  failure = JsonParseFailure{};
  if (text.size() > limits.max_bytes) {
    failure.failed = true;
    failure.message =
        concat("document too large (got ", text.size(), " bytes, limit ", limits.max_bytes, ")");
    return;
  }
  Json root;
  StrictSaxBuilder builder(root, limits, failure);
  bool ok = false;
  try {
    ok = Json::sax_parse(text.begin(), text.end(), &builder, Json::input_format_t::json, true);
  } catch (const std::exception& e) {
    if (!failure.failed) {
      failure.failed = true;
      failure.message = e.what();
    }
  }
  if (!ok && !failure.failed) {
    failure.failed = true;
    failure.message = "invalid JSON";
  }
  if (!failure.failed) out = std::move(root);
}

}  // namespace detail
}  // namespace perkrec
