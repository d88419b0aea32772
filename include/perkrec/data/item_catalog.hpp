// ItemCatalog: the products (items) members buy and browse, with their hierarchy; BenefitItems:
// which items each benefit (coupon, ...) applies to.
//
// An ItemCatalog holds one row per item, aligned with the item IdMap's dense indices, and any
// number of named columns:
//   levels   categorical hierarchy or attribute levels with free names (department, category,
//            brand, manufacturer, ...): an int32 code per item into the level's dictionary of
//            values, -1 = missing;
//   numeric  numeric attributes (price, package size, ...): a double per item, NaN = missing,
//            ±Inf rejected.
// Level and numeric names share one namespace. Accessors take the name; an unknown name is an
// InputError naming it and the names the catalog has.
//
// BenefitItems is the many-to-many map benefit -> items, in CSR form (each benefit's item
// indices sorted and distinct), built from (benefit index, item index) pairs. Item index -1
// marks an id the item map did not know: such pairs are counted (unknown_items()) and dropped,
// or raise InputError with UnknownItems::raise. `level_values` gives each benefit's distinct
// values of one level (the categories, brands or manufacturers its items belong to).
//
// Example:
//   perkrec::ItemCatalog items(perkrec::IdMap::from_integers(product_ids));
//   items.add_level("category", category_codes, category_names);
//   items.add_level("brand", brand_strings);              // one string per item, "" = missing
//   items.add_numeric("price", prices);
//   perkrec::BenefitItems applies = perkrec::BenefitItems::from_pairs(
//       coupon_index, product_index, n_coupons, items.size());   // product_index -1 = unknown
//   perkrec::Span<const perkrec::Index> its = applies.items(coupon);
//   perkrec::LevelValues cats = applies.level_values(items, "category");
//
// Both save and load through the model-file container (kinds "ItemCatalog", "BenefitItems");
// reading rebuilds through add_level / add_numeric / from_pairs, so a file is validated like any
// input (ModelFormatError naming what is wrong).
//
// Cost: building is O(items) per column and O(pairs log pairs) for BenefitItems.
// Thread safety: const methods are safe from many threads; adding columns needs exclusive
// access. Every method validates before it changes anything.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/error.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/data/id_map.hpp"
#include "perkrec/io/serializable.hpp"

namespace perkrec {

/// What to do with rows naming an item the item map does not hold (item index -1).
enum class UnknownItems : std::uint8_t {
  drop,   ///< skip the row and count it
  raise,  ///< throw InputError naming the first such row
};

/// "drop" or "raise"; anything else throws ConfigError naming `context` and the value.
PERKREC_INLINE UnknownItems parse_unknown_items(const std::string& name,
                                                const std::string& context);

class ItemCatalog : public Serializable<ItemCatalog> {
 public:
  static constexpr const char* kind = "ItemCatalog";
  ItemCatalog() = default;
  /// A catalog with one row per item of `items` and no columns yet.
  explicit ItemCatalog(IdMap items);

  Index size() const { return items_.size(); }
  const IdMap& items() const { return items_; }

  /// Adds a level from codes into `values` (distinct, non-empty names); -1 = missing. Throws
  /// InputError for a wrong length, a duplicate or empty name, a code out of range or a
  /// duplicate value.
  void add_level(const std::string& name, std::vector<std::int32_t> codes,
                 std::vector<std::string> values);
  /// Adds a level from one string per item; `missing` marks a missing value. Values are
  /// numbered in order of first appearance.
  void add_level(const std::string& name, const std::vector<std::string>& values,
                 const std::string& missing = "");
  /// Adds a numeric attribute (NaN = missing; ±Inf is an InputError naming the item).
  void add_numeric(const std::string& name, std::vector<double> values);

  int num_levels() const { return static_cast<int>(levels_.size()); }
  /// Level names in insertion order.
  std::vector<std::string> level_names() const;
  /// Numeric attribute names in insertion order.
  std::vector<std::string> numeric_names() const;
  /// Position of the level, or -1.
  int find_level(const std::string& name) const;
  /// Position of the level; InputError naming it (and the levels there are) when absent.
  int level_index(const std::string& name, const char* context = "ItemCatalog::level") const;

  /// Per-item codes of a level (-1 = missing); InputError when the level is absent.
  const std::vector<std::int32_t>& level_codes(const std::string& name) const;
  /// The dictionary of a level: the value of each code.
  const std::vector<std::string>& level_values(const std::string& name) const;
  /// The same by position (0 <= level < num_levels()).
  const std::vector<std::int32_t>& level_codes(int level) const;
  const std::vector<std::string>& level_values(int level) const;
  /// Per-item values of a numeric attribute; InputError when absent.
  const std::vector<double>& numeric(const std::string& name) const;

  bool operator==(const ItemCatalog& o) const;

  void write(ModelWriter& w, const std::string& prefix) const;
  static ItemCatalog read(const ModelReader& r, const std::string& prefix);

 private:
  struct Level {
    std::string name;
    std::vector<std::int32_t> codes;
    std::vector<std::string> values;
  };
  struct Numeric {
    std::string name;
    std::vector<double> values;
  };
  void check_new_name(const std::string& name, std::size_t length, const char* method) const;

  IdMap items_;
  std::vector<Level> levels_;
  std::vector<Numeric> numerics_;
};

/// Each benefit's distinct values of one level (CSR: benefit b's codes are
/// codes[offsets[b]:offsets[b+1]], sorted; missing values are left out).
struct LevelValues {
  std::vector<Offset> offsets = std::vector<Offset>(1, 0);
  std::vector<std::int32_t> codes;
  Span<const std::int32_t> of(Index benefit) const {
    const auto b = static_cast<std::size_t>(benefit);
    return {codes.data() + offsets[b], static_cast<std::size_t>(offsets[b + 1] - offsets[b])};
  }
};

class BenefitItems : public Serializable<BenefitItems> {
 public:
  static constexpr const char* kind = "BenefitItems";
  BenefitItems() = default;

  /// From (benefit, item) pairs of equal length. `benefit` must lie in [0, n_benefits) (-1:
  /// inferred as the largest + 1); `item` in [0, n_items), or -1 for an unknown item, which
  /// `unknown` drops (counted in unknown_items()) or raises on. Duplicate pairs are merged.
  static BenefitItems from_pairs(Span<const Index> benefit, Span<const Index> item,
                                 Index n_benefits, Index n_items,
                                 UnknownItems unknown = UnknownItems::drop);

  Index n_benefits() const { return n_benefits_; }
  Index n_items() const { return n_items_; }
  /// Pairs kept.
  Offset size() const { return static_cast<Offset>(items_.size()); }
  /// Pairs dropped because their item was unknown.
  Offset unknown_items() const { return unknown_items_; }

  /// Benefit b's items, sorted and distinct (0 <= b < n_benefits()).
  Span<const Index> items(Index benefit) const {
    const auto b = static_cast<std::size_t>(benefit);
    return {items_.data() + offsets_[b], static_cast<std::size_t>(offsets_[b + 1] - offsets_[b])};
  }
  const std::vector<Offset>& offsets() const { return offsets_; }
  const std::vector<Index>& indices() const { return items_; }

  /// Each benefit's distinct values of `level` in `catalog` (which must hold n_items() items).
  /// InputError when the level is absent or the catalog's size differs.
  LevelValues level_values(const ItemCatalog& catalog, const std::string& level) const;

  /// The benefits b' and items i' of the kept pairs (b' ascending), as from_pairs reads them.
  std::vector<Index> pair_benefits() const;

  void write(ModelWriter& w, const std::string& prefix) const;
  static BenefitItems read(const ModelReader& r, const std::string& prefix);

 private:
  Index n_benefits_ = 0;
  Index n_items_ = 0;
  Offset unknown_items_ = 0;
  std::vector<Offset> offsets_ = std::vector<Offset>(1, 0);
  std::vector<Index> items_;
};

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/data/item_catalog_impl.hpp"
#endif
