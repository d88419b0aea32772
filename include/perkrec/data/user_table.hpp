// UserTable: member attributes (age band, gender, tier, region, signup date, …), one row per
// member, aligned with the member IdMap's dense indices.
//
// Columns are numeric (double; NaN marks a missing value, ±Inf is rejected) or categorical
// (int32 codes into a list of category names; -1 marks a missing value).
//
// Example:
//   perkrec::UserTable users(perkrec::IdMap::range(3));
//   users.add_categorical("tier", {0, 1, -1}, {"basic", "gold"});
//   users.add_numeric("age", {31, 45, std::nan("")});
//
// Thread safety: const methods are safe from many threads; adding columns needs exclusive
// access.
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

class UserTable : public Serializable<UserTable> {
 public:
  static constexpr const char* kind = "UserTable";

  enum class ColumnType : std::uint8_t { numeric, categorical };

  UserTable() = default;
  /// A table with one row per member of `users` and no columns yet.
  explicit UserTable(IdMap users);

  Index size() const { return users_.size(); }
  const IdMap& users() const { return users_; }

  /// Adds a numeric column of size() values. Throws InputError for a wrong length, a
  /// duplicate or empty name, or an infinite value (naming the row).
  void add_numeric(const std::string& name, std::vector<double> values);
  /// Adds a categorical column from codes into `categories` (unique names); -1 = missing.
  void add_categorical(const std::string& name, std::vector<std::int32_t> codes,
                       std::vector<std::string> categories);
  /// Adds a categorical column from one string per row; `missing` marks a missing value.
  /// Categories are numbered in order of first appearance.
  void add_categorical(const std::string& name, const std::vector<std::string>& values,
                       const std::string& missing = "");

  int num_columns() const { return static_cast<int>(columns_.size()); }
  /// Column names in insertion order.
  std::vector<std::string> names() const;
  /// Position of the column, or -1.
  int find(const std::string& name) const;
  ColumnType type(const std::string& name) const;
  /// Throws InputError when the column is absent or not numeric.
  const std::vector<double>& numeric(const std::string& name) const;
  /// Throws InputError when the column is absent or not categorical.
  const std::vector<std::int32_t>& codes(const std::string& name) const;
  const std::vector<std::string>& categories(const std::string& name) const;

  bool operator==(const UserTable& o) const;

  void write(ModelWriter& w, const std::string& prefix) const;
  static UserTable read(const ModelReader& r, const std::string& prefix);

 private:
  struct Column {
    std::string name;
    ColumnType type;
    std::vector<double> numeric;
    std::vector<std::int32_t> codes;
    std::vector<std::string> categories;
  };
  const Column& column(const std::string& name, const char* method) const;
  void check_new_name(const std::string& name, const char* method) const;

  IdMap users_;
  std::vector<Column> columns_;
};

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/data/user_table_impl.hpp"
#endif
