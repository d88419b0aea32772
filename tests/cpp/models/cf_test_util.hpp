// Planted-structure data shared by the collaborative-filtering tests.
#pragma once

#include <set>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace perkrec::testing {

/// Members in `groups` taste groups; group g's benefits are those with b % groups == g. Each
/// member interacts with each benefit of their group with probability `density` (at least
/// one), values 1..4.
struct Planted {
  CsrMatrix<float> matrix;
  Index groups = 0;
  Index group_of(Index user) const { return user % groups; }
  bool in_group(Index user, Index benefit) const { return benefit % groups == group_of(user); }
};

inline Planted planted(Index users, Index benefits, Index groups, double density,
                       std::uint64_t seed) {
  Planted p;
  p.groups = groups;
  p.matrix.rows = users;
  p.matrix.cols = benefits;
  Rng rng(seed);
  for (Index u = 0; u < users; ++u) {
    bool any = false;
    for (Index b = 0; b < benefits; ++b) {
      if (b % groups != u % groups) continue;
      if (rng.bernoulli(density) || (!any && b + groups >= benefits)) {
        p.matrix.indices.push_back(b);
        p.matrix.data.push_back(1.0f + static_cast<float>(rng.below(4)));
        any = true;
      }
    }
    p.matrix.indptr.push_back(static_cast<Offset>(p.matrix.indices.size()));
  }
  return p;
}

/// Row subset of a CSR (rows in the given order).
inline CsrMatrix<float> take_rows(const CsrMatrix<float>& m, const std::vector<Index>& rows) {
  CsrMatrix<float> out;
  out.rows = static_cast<Index>(rows.size());
  out.cols = m.cols;
  for (Index r : rows) {
    for (Offset e = m.indptr[static_cast<std::size_t>(r)];
         e < m.indptr[static_cast<std::size_t>(r) + 1]; ++e) {
      out.indices.push_back(m.indices[static_cast<std::size_t>(e)]);
      out.data.push_back(m.data[static_cast<std::size_t>(e)]);
    }
    out.indptr.push_back(static_cast<Offset>(out.indices.size()));
  }
  return out;
}

inline std::vector<Index> iota_ids(Index n) {
  std::vector<Index> v(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
  return v;
}

/// Share of returned (non-padding) recommendations that lie in the member's planted group.
inline double in_group_share(const Planted& p, const std::vector<Index>& users, const TopK& top) {
  std::size_t hits = 0, total = 0;
  for (std::size_t r = 0; r < users.size(); ++r) {
    for (int i = 0; i < top.k; ++i) {
      const Index b = top.ids[r * static_cast<std::size_t>(top.k) + static_cast<std::size_t>(i)];
      if (b < 0) continue;
      ++total;
      hits += p.in_group(users[r], b) ? 1 : 0;
    }
  }
  return total > 0 ? static_cast<double>(hits) / static_cast<double>(total) : 0.0;
}

/// Checks a TopK against a filter: nothing excluded, ineligible, already seen or NaN.
inline void expect_filter_respected(const TopK& top, const Filter& f) {
  for (Index r = 0; r < top.rows; ++r) {
    std::set<Index> seen, listed;
    if (f.exclude_rows.rows > 0) {
      for (Offset e = f.exclude_rows.row_begin(r); e < f.exclude_rows.row_end(r); ++e)
        seen.insert(f.exclude_rows.indices[e]);
    }
    if (f.eligibility.rows > 0) {
      for (Offset e = f.eligibility.row_begin(r); e < f.eligibility.row_end(r); ++e)
        listed.insert(f.eligibility.indices[e]);
    }
    std::set<Index> got;
    for (int i = 0; i < top.k; ++i) {
      const std::size_t at = static_cast<std::size_t>(r) * static_cast<std::size_t>(top.k) +
                             static_cast<std::size_t>(i);
      const Index b = top.ids[at];
      EXPECT_FALSE(std::isnan(top.scores[at]));
      if (b < 0) continue;
      EXPECT_TRUE(got.insert(b).second);
      EXPECT_EQ(seen.count(b), 0u);
      EXPECT_EQ(std::count(f.exclude.begin(), f.exclude.end(), b), 0);
      if (!f.allow.empty()) {
        EXPECT_GT(std::count(f.allow.begin(), f.allow.end(), b), 0);
      }
      if (f.eligibility.rows > 0) {
        EXPECT_EQ(listed.count(b) > 0, !f.eligibility_blocks);
      }
    }
  }
}

}  // namespace perkrec::testing
