// Catalog: the benefits a program can issue, with typed attributes.
//
// A benefit is what a member receives: a coupon, a threshold discount ("spend 150, get 20
// off"), a percent-off, a gift, a points reward, free shipping, a member-exclusive perk or a
// service. Its attributes say what it is worth (face_value, threshold, discount_rate), what it
// costs the business per redemption (cost), how long it lasts, where it applies (scope), in
// which programs it runs (scenarios), through which channel it is issued, how many may be
// issued (inventory), plus free tags and free attributes (brand, category, campaign, … — any
// column a program's catalog carries, text or numeric, kept as they are and returned by
// to_json and Python's to_frame so that they can become model features).
//
// JSON schema (strict: unknown keys, duplicate keys and duplicate ids are errors naming the
// JSON pointer):
//   {
//     "version": 1,                               // optional; 1 is the only version
//     "benefits": [
//       {
//         "id": "B001",                           // required, unique, non-empty
//         "kind": "threshold_discount",           // required unless "discount" is given:
//                                                 //   discount | threshold_discount |
//                                                 //   percent_off | gift | points |
//                                                 //   free_shipping | member_exclusive | service
//         "discount": "150:20",                   // optional notation filling kind, threshold,
//                                                 //   face_value, discount_rate (parse_discount)
//         "face_value": 20,                       // >= 0, currency units (points: their value)
//         "threshold": 150,                       // >= 0, minimum spend (0 = none)
//         "discount_rate": 0.0,                   // [0, 1): fraction off (0.1 = 10% off)
//         "cost": 20,                             // >= 0, cost to the business per redemption
//         "validity_days": 14,                    // > 0
//         "scope": "category",                    // all | category | brand | tier
//         "scope_value": "dairy",                 // what the scope names ("" for all)
//         "scenarios": ["regular", "member_day"], // free strings: regular, holiday, …
//         "channel": "app",                       // issuing channel ("" = any)
//         "inventory": 5000,                      // units that may be issued; -1 = unlimited
//         "tags": ["spring"],                     // free strings
//         "attributes": {"brand": "Acme",         // free attributes: name -> string or finite
//                        "unit_price": 3.5}       //   number (names non-empty)
//       }
//     ]
//   }
// Omitted attributes take the defaults of `Benefit`.
//
// Example:
//   perkrec::Catalog catalog = perkrec::Catalog::from_json(text);
//   perkrec::Benefit b;
//   b.id = "B9";
//   perkrec::apply_discount(perkrec::parse_discount("200:30"), b);   // threshold discount
//   catalog.add(b);
//
// Thread safety: const methods are safe from many threads; add/extend need exclusive access.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/error.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/data/id_map.hpp"
#include "perkrec/io/serializable.hpp"

namespace perkrec {

/// What kind of benefit it is.
enum class BenefitKind : std::uint8_t {
  discount,            ///< a fixed amount off
  threshold_discount,  ///< an amount off once the order reaches a threshold
  percent_off,         ///< a fraction off the order
  gift,                ///< a free item
  points,              ///< loyalty points credited
  free_shipping,       ///< delivery fee waived
  member_exclusive,    ///< access to a member-only product, price or event
  service,             ///< a service perk (lounge, priority support, …)
};
inline constexpr int kNumBenefitKinds = 8;

/// Where a benefit applies.
enum class Scope : std::uint8_t { all, category, brand, tier };
inline constexpr int kNumScopes = 4;

PERKREC_INLINE const char* to_string(BenefitKind kind);
PERKREC_INLINE const char* to_string(Scope scope);
/// Parses a kind name; throws InputError naming `context` and the value when unknown.
PERKREC_INLINE BenefitKind parse_benefit_kind(std::string_view name, const std::string& context);
PERKREC_INLINE Scope parse_scope(std::string_view name, const std::string& context);

/// One benefit and its attributes. Defaults describe a plain, unlimited, 30-day discount.
struct Benefit {
  std::string id;  ///< unique, non-empty
  BenefitKind kind = BenefitKind::discount;
  double face_value = 0.0;          ///< >= 0; currency units (points: their value)
  double threshold = 0.0;           ///< >= 0; minimum spend, 0 = none
  double discount_rate = 0.0;       ///< [0, 1); fraction off, 0.1 = 10% off
  double cost = 0.0;                ///< >= 0; cost to the business per redemption
  std::int32_t validity_days = 30;  ///< > 0
  Scope scope = Scope::all;
  std::string scope_value;             ///< category / brand / tier name; "" for all
  std::vector<std::string> scenarios;  ///< regular, holiday, member_day, referral, …
  std::string channel;                 ///< issuing channel; "" = any
  std::int64_t inventory = -1;         ///< >= 0 units issuable, or -1 = unlimited
  std::vector<std::string> tags;       ///< free labels
  /// Free text attributes (brand, category, campaign, …): name -> value. Names are non-empty.
  std::map<std::string, std::string> attributes;
  /// Free numeric attributes: name -> finite value. A name is in one of the two maps at most.
  std::map<std::string, double> numeric_attributes;

  /// Throws InputError naming `context`, the benefit id and the bad field.
  void validate(const std::string& context) const;
  bool operator==(const Benefit& o) const;
};

/// A discount written in one of the common notations.
struct ParsedDiscount {
  BenefitKind kind = BenefitKind::discount;
  double threshold = 0.0;
  double face_value = 0.0;
  double discount_rate = 0.0;
  bool fixed_price = false;  ///< "fixed": a fixed-price deal with no stated amount
};

/// Parses a discount notation:
///   "150:20"  spend 150, get 20 off         -> threshold_discount, threshold 150, face_value 20
///   "0.9"     pay 90% (a rate in (0, 1))    -> percent_off, discount_rate 0.1
///   "15%"     15% off                       -> percent_off, discount_rate 0.15
///   "20"      20 off (an amount >= 1)       -> discount, face_value 20
///   "fixed"   a fixed-price deal            -> discount, fixed_price
/// Surrounding spaces are ignored. Throws InputError quoting the text for anything else
/// (empty, "null", negative or non-finite numbers, face value above the threshold, …).
PERKREC_INLINE ParsedDiscount parse_discount(std::string_view text);

/// Copies a parsed discount into a benefit's kind, threshold, face_value and discount_rate
/// (adding the tag "fixed_price" for fixed-price deals).
PERKREC_INLINE void apply_discount(const ParsedDiscount& discount, Benefit& benefit);

class Catalog : public Serializable<Catalog> {
 public:
  static constexpr const char* kind = "Catalog";

  Catalog() = default;
  /// Validates every benefit; throws InputError on the first bad one or a duplicate id.
  explicit Catalog(std::vector<Benefit> benefits);

  /// Parses the JSON schema above. Throws InputError naming the JSON pointer.
  static Catalog from_json(std::string_view text);
  /// The catalog in the JSON schema above (round-trips through from_json).
  std::string to_json(int indent = 2) const;

  /// Adds one benefit and returns its index; on error the catalog is unchanged.
  Index add(Benefit benefit);
  /// Adds several benefits, all or none.
  void extend(std::vector<Benefit> benefits);

  Index size() const { return static_cast<Index>(benefits_.size()); }
  bool empty() const { return benefits_.empty(); }
  const Benefit& operator[](Index i) const { return benefits_[static_cast<std::size_t>(i)]; }
  /// Throws InputError when `i` is out of range.
  const Benefit& at(Index i) const;
  const std::vector<Benefit>& benefits() const { return benefits_; }
  /// Benefit ids (string keys) to indices.
  const IdMap& ids() const { return ids_; }
  /// Index of the benefit with this id, or -1.
  Index find(std::string_view id) const { return ids_.find(id); }

  bool operator==(const Catalog& o) const { return benefits_ == o.benefits_; }

  void write(ModelWriter& w, const std::string& prefix) const;
  static Catalog read(const ModelReader& r, const std::string& prefix);

 private:
  std::vector<Benefit> benefits_;
  IdMap ids_;
};

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/data/catalog_impl.hpp"
#endif
