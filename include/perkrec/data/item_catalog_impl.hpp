// Definitions for item_catalog.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "perkrec/data/item_catalog.hpp"

namespace perkrec {

PERKREC_INLINE UnknownItems parse_unknown_items(const std::string& name,
                                                const std::string& context) {
  if (name == "drop") return UnknownItems::drop;
  if (name == "raise") return UnknownItems::raise;
  detail::raise<ConfigError>(context, ": unknown must be 'drop' or 'raise' (got '", name, "')");
}

// ---- ItemCatalog ---------------------------------------------------------------------------

PERKREC_INLINE ItemCatalog::ItemCatalog(IdMap items) : items_(std::move(items)) {}

PERKREC_INLINE void ItemCatalog::check_new_name(const std::string& name, std::size_t length,
                                                const char* method) const {
  if (name.empty()) detail::raise<InputError>("ItemCatalog::", method, ": name is empty");
  bool taken = find_level(name) >= 0;
  for (const auto& n : numerics_) taken = taken || n.name == name;
  if (taken) detail::raise<InputError>("ItemCatalog::", method, ": duplicate column '", name, "'");
  if (static_cast<Index>(length) != size()) {
    detail::raise<InputError>("ItemCatalog::", method, ": column '", name, "' has ", length,
                              " rows (expected ", size(), ", one per item)");
  }
}

PERKREC_INLINE void ItemCatalog::add_level(const std::string& name, std::vector<std::int32_t> codes,
                                           std::vector<std::string> values) {
  check_new_name(name, codes.size(), "add_level");
  std::unordered_set<std::string> seen;
  for (const auto& v : values) {
    if (!seen.insert(v).second) {
      detail::raise<InputError>("ItemCatalog::add_level: level '", name, "': duplicate value '", v,
                                "'");
    }
  }
  const auto n_values = static_cast<std::int32_t>(values.size());
  for (std::size_t i = 0; i < codes.size(); ++i) {
    if (codes[i] < -1 || codes[i] >= n_values) {
      detail::raise<InputError>("ItemCatalog::add_level: level '", name, "' item ", i,
                                ": code out of range (got ", codes[i], ", expected -1 <= code < ",
                                n_values, ")");
    }
  }
  levels_.push_back(Level{name, std::move(codes), std::move(values)});
}

PERKREC_INLINE void ItemCatalog::add_level(const std::string& name,
                                           const std::vector<std::string>& values,
                                           const std::string& missing) {
  std::vector<std::int32_t> codes(values.size());
  std::vector<std::string> dictionary;
  std::unordered_map<std::string, std::int32_t> index;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values[i] == missing) {
      codes[i] = -1;
      continue;
    }
    auto [it, inserted] = index.emplace(values[i], static_cast<std::int32_t>(dictionary.size()));
    if (inserted) dictionary.push_back(values[i]);
    codes[i] = it->second;
  }
  add_level(name, std::move(codes), std::move(dictionary));
}

PERKREC_INLINE void ItemCatalog::add_numeric(const std::string& name, std::vector<double> values) {
  check_new_name(name, values.size(), "add_numeric");
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (std::isinf(values[i])) {
      detail::raise<InputError>("ItemCatalog::add_numeric: column '", name, "' item ", i,
                                ": infinite value (got ", values[i],
                                "; use NaN for a missing value)");
    }
  }
  numerics_.push_back(Numeric{name, std::move(values)});
}

PERKREC_INLINE std::vector<std::string> ItemCatalog::level_names() const {
  std::vector<std::string> out;
  for (const auto& l : levels_) out.push_back(l.name);
  return out;
}

PERKREC_INLINE std::vector<std::string> ItemCatalog::numeric_names() const {
  std::vector<std::string> out;
  for (const auto& n : numerics_) out.push_back(n.name);
  return out;
}

PERKREC_INLINE int ItemCatalog::find_level(const std::string& name) const {
  for (std::size_t i = 0; i < levels_.size(); ++i) {
    if (levels_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

PERKREC_INLINE int ItemCatalog::level_index(const std::string& name, const char* context) const {
  const int i = find_level(name);
  if (i < 0) {
    std::string have;
    for (const auto& l : levels_) have += (have.empty() ? "'" : ", '") + l.name + "'";
    detail::raise<InputError>(context, ": unknown level '", name, "' (the item catalog has ",
                              have.empty() ? std::string("no levels") : "levels " + have, ")");
  }
  return i;
}

PERKREC_INLINE const std::vector<std::int32_t>& ItemCatalog::level_codes(
    const std::string& name) const {
  return levels_[static_cast<std::size_t>(level_index(name, "ItemCatalog::level_codes"))].codes;
}

PERKREC_INLINE const std::vector<std::string>& ItemCatalog::level_values(
    const std::string& name) const {
  return levels_[static_cast<std::size_t>(level_index(name, "ItemCatalog::level_values"))].values;
}

PERKREC_INLINE const std::vector<std::int32_t>& ItemCatalog::level_codes(int level) const {
  if (level < 0 || level >= num_levels()) {
    detail::raise<InputError>("ItemCatalog::level_codes: level position out of range (got ", level,
                              ", expected 0 <= level < ", num_levels(), ")");
  }
  return levels_[static_cast<std::size_t>(level)].codes;
}

PERKREC_INLINE const std::vector<std::string>& ItemCatalog::level_values(int level) const {
  if (level < 0 || level >= num_levels()) {
    detail::raise<InputError>("ItemCatalog::level_values: level position out of range (got ", level,
                              ", expected 0 <= level < ", num_levels(), ")");
  }
  return levels_[static_cast<std::size_t>(level)].values;
}

PERKREC_INLINE const std::vector<double>& ItemCatalog::numeric(const std::string& name) const {
  for (const auto& n : numerics_) {
    if (n.name == name) return n.values;
  }
  std::string have;
  for (const auto& n : numerics_) have += (have.empty() ? "'" : ", '") + n.name + "'";
  detail::raise<InputError>("ItemCatalog::numeric: unknown numeric attribute '", name,
                            "' (the item catalog has ", have.empty() ? std::string("none") : have,
                            ")");
}

PERKREC_INLINE bool ItemCatalog::operator==(const ItemCatalog& o) const {
  if (!(items_ == o.items_) || levels_.size() != o.levels_.size() ||
      numerics_.size() != o.numerics_.size()) {
    return false;
  }
  for (std::size_t i = 0; i < levels_.size(); ++i) {
    const auto &a = levels_[i], &b = o.levels_[i];
    if (a.name != b.name || a.codes != b.codes || a.values != b.values) return false;
  }
  for (std::size_t i = 0; i < numerics_.size(); ++i) {
    const auto &a = numerics_[i], &b = o.numerics_[i];
    if (a.name != b.name || a.values.size() != b.values.size()) return false;
    for (std::size_t k = 0; k < a.values.size(); ++k) {
      const bool same =
          a.values[k] == b.values[k] || (std::isnan(a.values[k]) && std::isnan(b.values[k]));
      if (!same) return false;
    }
  }
  return true;
}

PERKREC_INLINE void ItemCatalog::write(ModelWriter& w, const std::string& prefix) const {
  items_.write(w, prefix + "items.");
  Json levels = Json::array(), numerics = Json::array();
  for (std::size_t l = 0; l < levels_.size(); ++l) {
    const std::string base = prefix + "level" + std::to_string(l);
    levels.push_back(levels_[l].name);
    w.add(base, levels_[l].codes);
    w.add_strings(base + ".values", levels_[l].values);
  }
  for (std::size_t k = 0; k < numerics_.size(); ++k) {
    numerics.push_back(numerics_[k].name);
    w.add(prefix + "numeric" + std::to_string(k), numerics_[k].values);
  }
  Json& c = content_section(w, prefix);
  c["levels"] = std::move(levels);
  c["numerics"] = std::move(numerics);
}

PERKREC_INLINE ItemCatalog ItemCatalog::read(const ModelReader& r, const std::string& prefix) {
  JsonReader<ModelFormatError> jr(content_section(r, prefix), content_pointer(prefix),
                                  "ItemCatalog::read");
  std::vector<std::string> levels, numerics;
  jr.raw("items.");  // the id map's own section
  jr.require("levels", levels);
  jr.require("numerics", numerics);
  jr.finish();
  ItemCatalog catalog(IdMap::read(r, prefix + "items."));
  const std::int64_t rows = catalog.size();
  try {
    for (std::size_t l = 0; l < levels.size(); ++l) {
      const std::string base = prefix + "level" + std::to_string(l);
      catalog.add_level(levels[l], r.vector<std::int32_t>(base, {rows}),
                        r.strings(base + ".values"));
    }
    for (std::size_t k = 0; k < numerics.size(); ++k) {
      catalog.add_numeric(numerics[k],
                          r.vector<double>(prefix + "numeric" + std::to_string(k), {rows}));
    }
  } catch (const InputError& e) {
    r.invalid(e.what());
  }
  return catalog;
}

// ---- BenefitItems --------------------------------------------------------------------------

PERKREC_INLINE BenefitItems BenefitItems::from_pairs(Span<const Index> benefit,
                                                     Span<const Index> item, Index n_benefits,
                                                     Index n_items, UnknownItems unknown) {
  const char* ctx = "BenefitItems::from_pairs";
  if (benefit.size() != item.size()) {
    detail::raise<InputError>(ctx, ": ", benefit.size(), " benefits but ", item.size(),
                              " items (expected one of each per pair)");
  }
  if (n_items < 0) detail::raise<InputError>(ctx, ": n_items must be >= 0 (got ", n_items, ")");
  if (n_benefits < -1)
    detail::raise<InputError>(ctx, ": n_benefits must be >= 0 or -1 (got ", n_benefits, ")");
  const std::size_t n = benefit.size();
  if (n_benefits < 0) {
    Index m = -1;
    for (std::size_t i = 0; i < n; ++i) m = std::max(m, benefit[i]);
    if (m >= (Index{1} << 26) && static_cast<std::size_t>(m) > 64 * n) {
      detail::raise<InputError>(ctx, ": the largest benefit index (", m,
                                ") implies far more benefits than pairs; ",
                                "pass n_benefits explicitly");
    }
    n_benefits = m + 1;
  }
  Offset unknown_count = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (benefit[i] < 0 || benefit[i] >= n_benefits) {
      detail::raise<InputError>(ctx, ": pair ", i, ": benefit out of range (got ", benefit[i],
                                ", expected 0 <= benefit < ", n_benefits, ")");
    }
    if (item[i] == -1) {
      if (unknown == UnknownItems::raise) {
        detail::raise<InputError>(
            ctx, ": pair ", i, ": unknown item (benefit ", benefit[i],
            " applies to an item the item catalog lacks; unknown='drop' skips such pairs)");
      }
      ++unknown_count;
    } else if (item[i] < 0 || item[i] >= n_items) {
      detail::raise<InputError>(ctx, ": pair ", i, ": item out of range (got ", item[i],
                                ", expected 0 <= item < ", n_items, ", or -1 for an unknown item)");
    }
  }
  BenefitItems out;
  out.n_benefits_ = n_benefits;
  out.n_items_ = n_items;
  out.unknown_items_ = unknown_count;
  out.offsets_.assign(static_cast<std::size_t>(n_benefits) + 1, 0);
  for (std::size_t i = 0; i < n; ++i) {
    if (item[i] >= 0) ++out.offsets_[static_cast<std::size_t>(benefit[i]) + 1];
  }
  for (std::size_t b = 0; b < static_cast<std::size_t>(n_benefits); ++b)
    out.offsets_[b + 1] += out.offsets_[b];
  out.items_.resize(static_cast<std::size_t>(out.offsets_.back()));
  {
    std::vector<Offset> fill(out.offsets_.begin(), out.offsets_.end() - 1);
    for (std::size_t i = 0; i < n; ++i) {
      if (item[i] >= 0)
        out.items_[static_cast<std::size_t>(fill[static_cast<std::size_t>(benefit[i])]++)] =
            item[i];
    }
  }
  // Sort and deduplicate each benefit's items, compacting in place.
  Offset write = 0;
  for (std::size_t b = 0; b < static_cast<std::size_t>(n_benefits); ++b) {
    const auto lo = out.items_.begin() + out.offsets_[b],
               hi = out.items_.begin() + out.offsets_[b + 1];
    std::sort(lo, hi);
    const auto end = std::unique(lo, hi);
    const Offset start = write;
    for (auto it = lo; it != end; ++it) out.items_[static_cast<std::size_t>(write++)] = *it;
    out.offsets_[b] = start;
  }
  out.offsets_.back() = write;
  out.items_.resize(static_cast<std::size_t>(write));
  out.items_.shrink_to_fit();
  return out;
}

PERKREC_INLINE LevelValues BenefitItems::level_values(const ItemCatalog& catalog,
                                                      const std::string& level) const {
  const char* ctx = "BenefitItems::level_values";
  if (catalog.size() != n_items_) {
    detail::raise<InputError>(ctx, ": the item catalog holds ", catalog.size(), " items (expected ",
                              n_items_, ", the items these benefits map to)");
  }
  const auto& codes = catalog.level_codes(catalog.level_index(level, ctx));
  LevelValues out;
  out.offsets.assign(static_cast<std::size_t>(n_benefits_) + 1, 0);
  std::vector<std::int32_t> scratch;
  for (Index b = 0; b < n_benefits_; ++b) {
    scratch.clear();
    for (Index i : items(b)) {
      const std::int32_t c = codes[static_cast<std::size_t>(i)];
      if (c >= 0) scratch.push_back(c);
    }
    std::sort(scratch.begin(), scratch.end());
    scratch.erase(std::unique(scratch.begin(), scratch.end()), scratch.end());
    out.codes.insert(out.codes.end(), scratch.begin(), scratch.end());
    out.offsets[static_cast<std::size_t>(b) + 1] = static_cast<Offset>(out.codes.size());
  }
  return out;
}

}  // namespace perkrec

namespace perkrec {

PERKREC_INLINE std::vector<Index> BenefitItems::pair_benefits() const {
  std::vector<Index> out(items_.size());
  for (std::size_t b = 0; b + 1 < offsets_.size(); ++b) {
    std::fill(out.begin() + offsets_[b], out.begin() + offsets_[b + 1], static_cast<Index>(b));
  }
  return out;
}

PERKREC_INLINE void BenefitItems::write(ModelWriter& w, const std::string& prefix) const {
  Json& c = content_section(w, prefix);
  c["n_benefits"] = n_benefits_;
  c["n_items"] = n_items_;
  c["unknown_items"] = unknown_items_;
  w.add(prefix + "benefit", pair_benefits());
  w.add(prefix + "item", items_);
}

PERKREC_INLINE BenefitItems BenefitItems::read(const ModelReader& r, const std::string& prefix) {
  JsonReader<ModelFormatError> jr(content_section(r, prefix), content_pointer(prefix),
                                  "BenefitItems::read");
  Index n_benefits = 0, n_items = 0;
  Offset unknown = 0;
  jr.require("n_benefits", n_benefits);
  jr.require("n_items", n_items);
  jr.require("unknown_items", unknown);
  jr.finish();
  if (n_benefits < 0 || n_items < 0 || unknown < 0) r.bad_content("negative count");
  r.check_count("n_benefits", n_benefits);
  r.check_count("n_items", n_items);
  const Span<const Index> benefit = r.array<Index>(prefix + "benefit");
  const Span<const Index> item =
      r.array<Index>(prefix + "item", {static_cast<std::int64_t>(benefit.size())});
  BenefitItems out;
  try {
    out = from_pairs(benefit, item, n_benefits, n_items, UnknownItems::raise);
  } catch (const InputError& e) {
    r.invalid(e.what());
  }
  out.unknown_items_ = unknown;
  return out;
}

}  // namespace perkrec
