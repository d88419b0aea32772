// Definitions for user_table.hpp.
#pragma once

#include <cmath>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "perkrec/data/user_table.hpp"

namespace perkrec {

PERKREC_INLINE UserTable::UserTable(IdMap users) : users_(std::move(users)) {}

PERKREC_INLINE void UserTable::check_new_name(const std::string& name, const char* method) const {
  if (name.empty()) detail::raise<InputError>("UserTable::", method, ": column name is empty");
  if (find(name) >= 0) {
    detail::raise<InputError>("UserTable::", method, ": duplicate column '", name, "'");
  }
}

PERKREC_INLINE void UserTable::add_numeric(const std::string& name, std::vector<double> values) {
  check_new_name(name, "add_numeric");
  if (static_cast<Index>(values.size()) != size()) {
    detail::raise<InputError>("UserTable::add_numeric: column '", name, "' has ", values.size(),
                              " rows (expected ", size(), ")");
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (std::isinf(values[i])) {
      detail::raise<InputError>("UserTable::add_numeric: column '", name, "' row ", i,
                                ": infinite value (got ", values[i],
                                "; use NaN for a missing value)");
    }
  }
  columns_.push_back(Column{name, ColumnType::numeric, std::move(values), {}, {}});
}

PERKREC_INLINE void UserTable::add_categorical(const std::string& name,
                                               std::vector<std::int32_t> codes,
                                               std::vector<std::string> categories) {
  check_new_name(name, "add_categorical");
  if (static_cast<Index>(codes.size()) != size()) {
    detail::raise<InputError>("UserTable::add_categorical: column '", name, "' has ", codes.size(),
                              " rows (expected ", size(), ")");
  }
  std::unordered_set<std::string> seen;
  for (const auto& c : categories) {
    if (!seen.insert(c).second) {
      detail::raise<InputError>("UserTable::add_categorical: column '", name,
                                "': duplicate category '", c, "'");
    }
  }
  const auto n_categories = static_cast<std::int32_t>(categories.size());
  for (std::size_t i = 0; i < codes.size(); ++i) {
    if (codes[i] < -1 || codes[i] >= n_categories) {
      detail::raise<InputError>("UserTable::add_categorical: column '", name, "' row ", i,
                                ": code out of range (got ", codes[i], ", expected -1 <= code < ",
                                n_categories, ")");
    }
  }
  columns_.push_back(
      Column{name, ColumnType::categorical, {}, std::move(codes), std::move(categories)});
}

PERKREC_INLINE void UserTable::add_categorical(const std::string& name,
                                               const std::vector<std::string>& values,
                                               const std::string& missing) {
  std::vector<std::int32_t> codes(values.size());
  std::vector<std::string> categories;
  std::unordered_map<std::string, std::int32_t> index;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values[i] == missing) {
      codes[i] = -1;
      continue;
    }
    auto [it, inserted] = index.emplace(values[i], static_cast<std::int32_t>(categories.size()));
    if (inserted) categories.push_back(values[i]);
    codes[i] = it->second;
  }
  add_categorical(name, std::move(codes), std::move(categories));
}

PERKREC_INLINE std::vector<std::string> UserTable::names() const {
  std::vector<std::string> out;
  for (const auto& c : columns_) out.push_back(c.name);
  return out;
}

PERKREC_INLINE int UserTable::find(const std::string& name) const {
  for (std::size_t i = 0; i < columns_.size(); ++i) {
    if (columns_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

PERKREC_INLINE const UserTable::Column& UserTable::column(const std::string& name,
                                                          const char* method) const {
  const int i = find(name);
  if (i < 0) detail::raise<InputError>("UserTable::", method, ": no column '", name, "'");
  return columns_[static_cast<std::size_t>(i)];
}

PERKREC_INLINE UserTable::ColumnType UserTable::type(const std::string& name) const {
  return column(name, "type").type;
}

PERKREC_INLINE const std::vector<double>& UserTable::numeric(const std::string& name) const {
  const Column& c = column(name, "numeric");
  if (c.type != ColumnType::numeric) {
    detail::raise<InputError>("UserTable::numeric: column '", name, "' is categorical");
  }
  return c.numeric;
}

PERKREC_INLINE const std::vector<std::int32_t>& UserTable::codes(const std::string& name) const {
  const Column& c = column(name, "codes");
  if (c.type != ColumnType::categorical) {
    detail::raise<InputError>("UserTable::codes: column '", name, "' is numeric");
  }
  return c.codes;
}

PERKREC_INLINE const std::vector<std::string>& UserTable::categories(
    const std::string& name) const {
  const Column& c = column(name, "categories");
  if (c.type != ColumnType::categorical) {
    detail::raise<InputError>("UserTable::categories: column '", name, "' is numeric");
  }
  return c.categories;
}

PERKREC_INLINE bool UserTable::operator==(const UserTable& o) const {
  if (!(users_ == o.users_) || columns_.size() != o.columns_.size()) return false;
  for (std::size_t i = 0; i < columns_.size(); ++i) {
    const Column& a = columns_[i];
    const Column& b = o.columns_[i];
    if (a.name != b.name || a.type != b.type || a.codes != b.codes ||
        a.categories != b.categories || a.numeric.size() != b.numeric.size()) {
      return false;
    }
    for (std::size_t k = 0; k < a.numeric.size(); ++k) {
      const bool both_nan = std::isnan(a.numeric[k]) && std::isnan(b.numeric[k]);
      if (!both_nan && a.numeric[k] != b.numeric[k]) return false;
    }
  }
  return true;
}

PERKREC_INLINE void UserTable::write(ModelWriter& w, const std::string& prefix) const {
  users_.write(w, prefix + "users.");
  Json columns = Json::array();
  for (std::size_t i = 0; i < columns_.size(); ++i) {
    const Column& c = columns_[i];
    const std::string base = prefix + "column" + std::to_string(i);
    if (c.type == ColumnType::numeric) {
      columns.push_back({{"name", c.name}, {"type", "numeric"}});
      w.add(base, c.numeric);
    } else {
      columns.push_back({{"name", c.name}, {"type", "categorical"}});
      w.add(base, c.codes);
      w.add_strings(base + ".categories", c.categories);
    }
  }
  content_section(w, prefix)["columns"] = std::move(columns);
}

PERKREC_INLINE UserTable UserTable::read(const ModelReader& r, const std::string& prefix) {
  const Json& section = content_section(r, prefix);
  JsonReader<ModelFormatError> jr(section, content_pointer(prefix), "UserTable::read");
  jr.raw("users.");  // the id map's own section
  std::vector<Json> columns;
  jr.require("columns", columns);
  jr.finish();
  UserTable table(IdMap::read(r, prefix + "users."));
  const std::int64_t rows = table.size();
  for (std::size_t i = 0; i < columns.size(); ++i) {
    JsonReader<ModelFormatError> cr(
        columns[i], content_pointer(prefix) + "/columns/" + std::to_string(i), "UserTable::read");
    std::string name, type;
    cr.require("name", name);
    cr.require("type", type);
    cr.finish();
    const std::string base = prefix + "column" + std::to_string(i);
    try {
      if (type == "numeric") {
        table.add_numeric(name, r.vector<double>(base, {rows}));
      } else if (type == "categorical") {
        table.add_categorical(name, r.vector<std::int32_t>(base, {rows}),
                              r.strings(base + ".categories"));
      } else {
        r.bad_content("unknown column type '" + type + "'");
      }
    } catch (const InputError& e) {
      r.invalid(e.what());
    }
  }
  return table;
}

}  // namespace perkrec
