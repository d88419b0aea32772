// The save/load vocabulary every perkrec model and data object shares.
//
// A serializable class `T` derives from Serializable<T> and provides
//   static constexpr const char* kind;                          // "IdMap", "Popularity", …
//   void write(ModelWriter& w, const std::string& prefix) const; // arrays named prefix + …
//   static T read(const ModelReader& r, const std::string& prefix);
// and gets `save(path)`, `save(stream)`, `to_bytes()`, `T::load(path)`, `T::load(stream)` and
// `T::from_bytes(bytes)`. The prefix lets one container hold several objects (a model with its
// id maps): each object keeps its content under `content[prefix]` and names its arrays
// `prefix + name`. Python pickling goes through to_bytes/from_bytes.
#pragma once

#include <istream>
#include <ostream>
#include <string>
#include <string_view>

#include "perkrec/io/model_file.hpp"

namespace perkrec {

/// The JSON object where an object written with `prefix` keeps its description.
inline Json& content_section(ModelWriter& w, const std::string& prefix) {
  if (prefix.empty()) return w.content();
  Json& section = w.content()[prefix];
  if (!section.is_object()) section = Json::object();
  return section;
}

/// Reading side of content_section; throws ModelFormatError(bad_header) when it is missing.
inline const Json& content_section(const ModelReader& r, const std::string& prefix) {
  if (prefix.empty()) return r.content();
  auto it = r.content().find(prefix);
  if (it == r.content().end() || !it->is_object()) {
    r.bad_content("missing section '" + prefix + "'");
  }
  return *it;
}

/// JSON pointer of the section used with `prefix`, for messages.
inline std::string content_pointer(const std::string& prefix) {
  return prefix.empty() ? std::string("/content") : "/content/" + json_pointer_token(prefix);
}

/// Hyper-parameters stored in a model file: Params::from_json, with a ConfigError turned into
/// ModelFormatError(bad_content) — a file whose params do not validate is a corrupt file.
template <class Params>
Params read_params(const ModelReader& r, const Json& params_json) {
  try {
    return Params::from_json(params_json);
  } catch (const ConfigError& e) {
    r.bad_content(e.what());
  }
}

/// The opening of a recommender's file (Popularity, ALS, BPR, ItemKNN): its params and shape.
template <class Params>
struct RecommenderHeader {
  Params params;
  Index n_users = 0;
  Index n_benefits = 0;
};

/// Reads the section shared by the recommenders' files: "params", "n_users", "n_benefits",
/// then the keys `more(JsonReader&)` requires, and at the top level (empty prefix) the sections
/// of the two id maps ("user_ids.", "benefit_ids."); no other key. ModelFormatError for a
/// missing, mistyped or unknown key, a negative shape, or params that do not validate.
template <class Params, class More>
RecommenderHeader<Params> read_recommender_header(const ModelReader& r, const std::string& prefix,
                                                  const char* method, More&& more) {
  JsonReader<ModelFormatError> jr(content_section(r, prefix), content_pointer(prefix), method);
  Json params_json;
  RecommenderHeader<Params> h;
  jr.require("params", params_json);
  jr.require("n_users", h.n_users);
  jr.require("n_benefits", h.n_benefits);
  more(jr);
  if (prefix.empty()) {
    jr.raw("user_ids.");
    jr.raw("benefit_ids.");
  }
  jr.finish();
  if (h.n_users < 0 || h.n_benefits < 0) r.bad_content("negative shape");
  h.params = read_params<Params>(r, params_json);
  return h;
}

template <class Derived>
class Serializable {
 public:
  /// The object as container bytes (also what Python pickles).
  std::string to_bytes() const { return writer().to_bytes(); }
  /// Saves atomically to `path` (see ModelWriter::save).
  void save(const std::string& path) const { writer().save(path); }
  void save(std::ostream& out) const { writer().write(out); }

  /// Loads from container bytes. Throws ModelFormatError when damaged or of another kind.
  static Derived from_bytes(std::string_view bytes) {
    return read_checked(ModelReader::from_bytes(bytes));
  }
  static Derived load(const std::string& path) {
    return read_checked(ModelReader::from_file(path));
  }
  static Derived load(std::istream& in) { return read_checked(ModelReader::from_stream(in)); }

 private:
  ModelWriter writer() const {
    ModelWriter w(Derived::kind);
    static_cast<const Derived&>(*this).write(w, "");
    return w;
  }
  static Derived read_checked(const ModelReader& r) {
    r.expect_kind(Derived::kind);
    return Derived::read(r, "");
  }
};

}  // namespace perkrec
