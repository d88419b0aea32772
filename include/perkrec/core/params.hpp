// Parameter structs declared once.
//
// A `*Params` struct is a plain struct: each field has its default in its initializer and a
// `///<` comment giving its meaning and valid range (ARCHITECTURE.md §3). Next to the fields,
// one static `param_fields()` lists each field once more as a descriptor: its JSON name, the
// member, and the range or enum names that the comment states. Everything else is derived
// from that table by the generic functions of this file:
//  - `params::validate_fields(p, "ALSParams")` checks every range and throws
//    ConfigError("ALSParams: factors must be in [1, 4096] (got 0)"; floating-point fields
//    "must be finite and >= 0");
//  - `params::fields_to_json(p)` writes one key per field (floats as the shortest decimal
//    that reads back to the same float, enums by name);
//  - `params::fields_from_json<P>(j, "ALSParams::from_json")` reads strictly: unknown keys and
//    bad values throw ConfigError naming the JSON pointer; absent keys keep their defaults;
//    then it validates.
// Cross-field rules ("early_stopping_rounds must be 0 with factors = 0") stay in the struct's
// own validate(), after validate_fields.
//
// Example:
//   struct MyParams {
//     int factors = 64;     ///< latent dimension; 1..4096
//     float alpha = 1.0f;   ///< >= 0
//     static auto param_fields() {
//       using P = MyParams;
//       return std::make_tuple(params::field("factors", &P::factors, params::closed(1, 4096)),
//                              params::field("alpha", &P::alpha, params::at_least(0)));
//     }
//   };
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "perkrec/core/error.hpp"
#include "perkrec/core/json.hpp"
#include "perkrec/core/threading.hpp"

namespace perkrec {
namespace detail {

/// A float hyper-parameter as the shortest decimal that reads back to the same float, so
/// get_params() shows 0.8 rather than 0.800000011920929.
inline double json_float(float v) {
  char buf[32];
  for (int precision = 6; precision <= 9; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, static_cast<double>(v));
    if (std::strtof(buf, nullptr) == v) return std::strtod(buf, nullptr);
  }
  return static_cast<double>(v);
}

}  // namespace detail

namespace params {

/// The valid range of a numeric field. Floating-point fields must also be finite unless
/// `allow_infinity` (then +inf passes when it is within the bounds, e.g. "no clipping"). JSON
/// has no infinity: such a field's +inf is written as an absent key, and an absent key reads
/// as the default, so a field with allow_infinity must default to +inf.
struct Bounds {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false;
  bool hi_open = false;
  bool allow_infinity = false;

  bool contains(double v) const {
    if (std::isnan(v)) return false;
    if (lo_open ? !(v > lo) : !(v >= lo)) return false;
    if (hi_open ? !(v < hi) : !(v <= hi)) return false;
    return true;
  }
  bool bounded() const { return std::isfinite(lo) || std::isfinite(hi); }
  /// "in [1, 4096]", ">= 0", "> 0", ...
  std::string describe() const {
    std::ostringstream s;
    s.precision(15);
    if (std::isfinite(lo) && std::isfinite(hi)) {
      s << "in " << (lo_open ? "(" : "[") << lo << ", " << hi << (hi_open ? ")" : "]");
    } else if (std::isfinite(lo)) {
      s << (lo_open ? "> " : ">= ") << lo;
    } else if (std::isfinite(hi)) {
      s << (hi_open ? "< " : "<= ") << hi;
    }
    return s.str();
  }
};

inline constexpr Bounds any() { return {}; }
/// [lo, inf)
inline constexpr Bounds at_least(double lo) {
  return {lo, std::numeric_limits<double>::infinity(), false, false, false};
}
/// (lo, inf)
inline constexpr Bounds above(double lo) {
  return {lo, std::numeric_limits<double>::infinity(), true, false, false};
}
/// [lo, hi]
inline constexpr Bounds closed(double lo, double hi) { return {lo, hi, false, false, false}; }
/// (lo, hi)
inline constexpr Bounds open(double lo, double hi) { return {lo, hi, true, true, false}; }
/// [lo, hi)
inline constexpr Bounds closed_open(double lo, double hi) { return {lo, hi, false, true, false}; }
/// The same bounds, with +inf allowed where they allow it.
inline constexpr Bounds or_infinity(Bounds b) {
  b.allow_infinity = true;
  return b;
}
/// The range of every num_threads: 0 = the OpenMP default, at most kMaxThreads.
inline constexpr Bounds threads() { return closed(0, kMaxThreads); }

/// One name of an enum field's JSON form.
template <class E>
struct EnumName {
  E value;
  const char* name;
};

/// A scalar, string or vector field: JSON key `name`, member `member`, range `bounds`
/// (numeric fields) or `names` (enum fields: the accepted values and their JSON names).
template <class S, class T>
struct Field {
  const char* name;
  T S::*member;
  Bounds bounds{};
  const EnumName<T>* names = nullptr;
  std::size_t n_names = 0;
  bool required = false;           ///< from_json: the key must be present
  const char* old_name = nullptr;  ///< from_json also reads this former key (never written)
};

/// A nested params struct stored under its own key (its own fields, its own validate()).
template <class S, class T>
struct Nested {
  const char* name;
  T S::*member;
};

/// A nested params struct whose fields are stored at this level (no key of its own).
template <class S, class T>
struct Flattened {
  T S::*member;
};

template <class S, class T>
constexpr Field<S, T> field(const char* name, T S::*member, Bounds bounds = {}) {
  return {name, member, bounds, nullptr, 0};
}
template <class S, class E, std::size_t N>
constexpr Field<S, E> field(const char* name, E S::*member, const EnumName<E> (&names)[N]) {
  return {name, member, {}, names, N};
}
/// The same field, with a key that from_json requires.
template <class S, class T>
constexpr Field<S, T> required(Field<S, T> f) {
  f.required = true;
  return f;
}
/// The same field, renamed from `old_name`: from_json still reads the old key (files written
/// before the rename), to_json writes only the new one; both keys at once are a ConfigError.
template <class S, class T>
constexpr Field<S, T> renamed_from(Field<S, T> f, const char* old_name) {
  f.old_name = old_name;
  return f;
}
template <class S, class T>
constexpr Nested<S, T> nested(const char* name, T S::*member) {
  return {name, member};
}
template <class S, class T>
constexpr Flattened<S, T> flattened(T S::*member) {
  return {member};
}

namespace detail {

template <class T>
struct is_vector : std::false_type {};
template <class T, class A>
struct is_vector<std::vector<T, A>> : std::true_type {};

template <class T, class F>
void for_each_field(F&& f) {
  std::apply([&](const auto&... d) { (f(d), ...); }, T::param_fields());
}

template <class T>
std::string enum_choices(const EnumName<T>* names, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += (i == 0 ? "" : (i + 1 == n ? " or " : ", "));
    out += std::string("\"") + names[i].name + "\"";
  }
  return out;
}

template <class T>
const char* enum_name(const EnumName<T>* names, std::size_t n, T value) {
  for (std::size_t i = 0; i < n; ++i) {
    if (names[i].value == value) return names[i].name;
  }
  return nullptr;
}

template <class S, class T>
void check_value(const Field<S, T>& f, const T& v, const char* struct_name) {
  if constexpr (std::is_enum_v<T>) {
    if (enum_name(f.names, f.n_names, v) == nullptr) {
      perkrec::detail::raise<ConfigError>(struct_name, ": ", f.name, " must be ",
                                          enum_choices(f.names, f.n_names), " (got code ",
                                          static_cast<long long>(v), ")");
    }
  } else if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
    const double d = static_cast<double>(v);
    const bool inf_ok = f.bounds.allow_infinity && std::isinf(d) && d > 0;
    const bool finite_ok = !std::is_floating_point_v<T> || std::isfinite(d) || inf_ok;
    if (!finite_ok || !f.bounds.contains(d)) {
      perkrec::detail::raise<ConfigError>(
          struct_name, ": ", f.name, " must be ",
          std::is_floating_point_v<T> && !f.bounds.allow_infinity ? "finite and " : "",
          f.bounds.describe(), " (got ", v, ")");
    }
  }
}

template <class T>
Json value_to_json(const T& v) {
  if constexpr (std::is_same_v<T, float>) {
    return perkrec::detail::json_float(v);
  } else {
    return Json(v);
  }
}

template <class S>
void validate_into(const S& p, const char* struct_name);

template <class S>
void to_json_into(const S& p, Json& out) {
  for_each_field<S>([&](const auto& d) {
    using D = std::decay_t<decltype(d)>;
    if constexpr (std::is_same_v<D, Flattened<S, std::decay_t<decltype(p.*d.member)>>>) {
      to_json_into(p.*d.member, out);
    } else if constexpr (std::is_same_v<D, Nested<S, std::decay_t<decltype(p.*d.member)>>>) {
      out[d.name] = (p.*d.member).to_json();
    } else {
      const auto& v = p.*d.member;
      using T = std::decay_t<decltype(v)>;
      if constexpr (std::is_enum_v<T>) {
        const char* name = enum_name(d.names, d.n_names, v);
        out[d.name] = name != nullptr ? Json(name) : Json(static_cast<long long>(v));
      } else if constexpr (std::is_floating_point_v<T>) {
        if (!(d.bounds.allow_infinity && std::isinf(v) && v > 0)) out[d.name] = value_to_json(v);
      } else {
        out[d.name] = value_to_json(v);
      }
    }
  });
}

template <class S>
void read_into(JsonReader<ConfigError>& r, S& p) {
  for_each_field<S>([&](const auto& d) {
    using D = std::decay_t<decltype(d)>;
    using T = std::decay_t<decltype(p.*d.member)>;
    if constexpr (std::is_same_v<D, Flattened<S, T>>) {
      read_into(r, p.*d.member);
    } else if constexpr (std::is_same_v<D, Nested<S, T>>) {
      if (const Json* v = r.raw(d.name)) {
        try {
          p.*d.member = T::from_json(*v);
        } catch (const ConfigError& e) {
          perkrec::detail::raise<ConfigError>(r.context(), ": ", r.child_pointer(d.name), ": ",
                                              e.what());
        }
      }
    } else if constexpr (std::is_enum_v<T>) {
      std::string name;
      if (d.required ? (r.require(d.name, name), true) : r.read(d.name, name)) {
        for (std::size_t i = 0; i < d.n_names; ++i) {
          if (name == d.names[i].name) {
            p.*d.member = d.names[i].value;
            return;
          }
        }
        r.fail(d.name, "expected " + enum_choices(d.names, d.n_names));
      }
    } else if (d.old_name != nullptr && r.has(d.old_name)) {
      if (r.has(d.name)) {
        r.fail(d.old_name, std::string("the former name of \"") + d.name + "\": give one of them");
      }
      r.read(d.old_name, p.*d.member);
    } else if (d.required) {
      r.require(d.name, p.*d.member);
    } else {
      r.read(d.name, p.*d.member);
    }
  });
}

template <class S>
void validate_into(const S& p, const char* struct_name) {
  for_each_field<S>([&](const auto& d) {
    using D = std::decay_t<decltype(d)>;
    using T = std::decay_t<decltype(p.*d.member)>;
    if constexpr (std::is_same_v<D, Flattened<S, T>> || std::is_same_v<D, Nested<S, T>>) {
      (p.*d.member).validate();
    } else {
      check_value(d, p.*d.member, struct_name);
    }
  });
}

}  // namespace detail

/// Throws ConfigError("<struct_name>: <field> must be <range> (got <value>)") for the first
/// field out of its declared range; nested structs run their own validate().
template <class S>
void validate_fields(const S& p, const char* struct_name) {
  detail::validate_into(p, struct_name);
}

/// One key per declared field (flattened structs' keys at this level).
template <class S>
Json fields_to_json(const S& p) {
  Json out = Json::object();
  detail::to_json_into(p, out);
  return out;
}

/// Strict read of the declared fields over the defaults, then p.validate(); every error is a
/// ConfigError starting with `context` and naming the JSON pointer or the field.
template <class S>
S fields_from_json(const Json& j, const char* context) {
  S p;
  JsonReader<ConfigError> r(j, "", context);
  detail::read_into(r, p);
  r.finish();
  try {
    p.validate();
  } catch (const ConfigError& e) {
    perkrec::detail::raise<ConfigError>(context, ": ", e.what());
  }
  return p;
}

/// The defaults of S as JSON (what Python's signatures must match).
template <class S>
Json default_json() {
  return S{}.to_json();
}

}  // namespace params
}  // namespace perkrec
