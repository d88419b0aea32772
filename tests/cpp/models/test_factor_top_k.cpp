// The dispatched paths of factor_top_k (AVX-512 fused, AVX2 blocked, portable Eigen) return the
// same top-K on random data, with every filter kind.
#include <algorithm>
#include <cmath>

#include "models/cf_test_util.hpp"

namespace perkrec {
namespace {

detail::FactorTable random_table(Index rows, int dim, std::uint64_t seed) {
  detail::FactorTable t(rows, dim);
  Rng rng(seed);
  for (float& v : t.values) v = static_cast<float>(rng.uniform(-1.0, 1.0));
  return t;
}

// Each row lists `per_row` distinct random benefits (sorted or not).
CsrMatrix<float> random_rows(Index rows, Index cols, int per_row, bool sorted, std::uint64_t seed) {
  CsrMatrix<float> m;
  m.rows = rows;
  m.cols = cols;
  Rng rng(seed);
  for (Index r = 0; r < rows; ++r) {
    std::vector<Index> row;
    while (static_cast<int>(row.size()) < per_row) {
      const auto b = static_cast<Index>(rng.below(static_cast<std::uint32_t>(cols)));
      if (std::find(row.begin(), row.end(), b) == row.end()) row.push_back(b);
    }
    if (sorted) std::sort(row.begin(), row.end());
    for (Index b : row) {
      m.indices.push_back(b);
      m.data.push_back(1.0f);
    }
    m.indptr.push_back(static_cast<Offset>(m.indices.size()));
  }
  return m;
}

void expect_same(const TopK& a, const TopK& b, float tol, const char* what) {
  ASSERT_EQ(a.rows, b.rows) << what;
  ASSERT_EQ(a.k, b.k) << what;
  ASSERT_EQ(a.ids, b.ids) << what;
  for (std::size_t i = 0; i < a.scores.size(); ++i) {
    if (std::isinf(a.scores[i])) {
      EXPECT_EQ(a.scores[i], b.scores[i]) << what << " at " << i;
    } else {
      EXPECT_NEAR(a.scores[i], b.scores[i], tol) << what << " at " << i;
    }
  }
}

TEST(FactorTopK, SimdPathsAgreeWithScalar) {
  // Shapes with tails everywhere: 250 queries (blocks of 96, tiles of 12), 1,009 benefits
  // (panels of 16 / 32), 64 and 13 factors.
  for (int dim : {64, 13}) {
    const Index n_users = 400, n_benefits = 1009;
    const auto left = random_table(n_users, dim, 11 + static_cast<std::uint64_t>(dim));
    const auto right = random_table(n_benefits, dim, 12 + static_cast<std::uint64_t>(dim));
    std::vector<Index> queries;
    for (Index i = 0; i < 250; ++i) queries.push_back((i * 7) % n_users);
    const auto seen = random_rows(250, n_benefits, 40, false, 5);
    const auto elig = random_rows(250, n_benefits, 300, true, 6);
    std::vector<Filter> filters(5);
    filters[1].exclude_rows = seen.view();
    filters[2].exclude_rows = seen.view();
    filters[2].exclude = {0, 5, 17, 1008};
    filters[3].exclude_rows = seen.view();
    filters[3].eligibility = elig.view();  // allow mode
    filters[4].eligibility = elig.view();
    filters[4].eligibility_blocks = true;
    filters[4].allow = {3, 4, 9, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1008};
    for (std::size_t fi = 0; fi < filters.size(); ++fi) {
      for (int n : {10, 1, 37}) {
        const TopK scalar = detail::factor_top_k(left, queries, right, n, filters[fi], 2,
                                                 detail::SimdLevel::scalar);
        for (std::size_t r = 0; r < static_cast<std::size_t>(scalar.rows); ++r) {
          ASSERT_NE(scalar.ids[r * static_cast<std::size_t>(n)], -1);
        }
        const std::string what = "dim " + std::to_string(dim) + " filter " + std::to_string(fi) +
                                 " n " + std::to_string(n);
        testing::expect_filter_respected(scalar, filters[fi]);
        if (detail::cpu_has_avx2_fma()) {
          const TopK avx2 = detail::factor_top_k(left, queries, right, n, filters[fi], 2,
                                                 detail::SimdLevel::avx2);
          expect_same(avx2, scalar, 1e-4f, ("avx2 " + what).c_str());
          if (detail::cpu_has_avx512f()) {
            const TopK fused = detail::factor_top_k(left, queries, right, n, filters[fi], 2,
                                                    detail::SimdLevel::avx512);
            // Same accumulation order as AVX2: bit-identical scores.
            expect_same(fused, avx2, 0.0f, ("avx512 " + what).c_str());
            // The default picks the best path, whatever the thread count.
            expect_same(detail::factor_top_k(left, queries, right, n, filters[fi], 1), fused, 0.0f,
                        what.c_str());
          }
        }
      }
    }
  }
}

TEST(FactorTopK, FusedPathHandlesTiesNanAndShortLists) {
  if (!detail::cpu_has_avx512f()) GTEST_SKIP() << "no AVX-512F on this CPU";
  // Benefits 0..69 in 7 identical groups of 10 scores: ties go to the lower index. Benefit 3 is
  // NaN and never returned. With only 5 allowed benefits, the rest is padding.
  const int dim = 3;
  detail::FactorTable right(70, dim);
  for (Index b = 0; b < 70; ++b) {
    for (int f = 0; f < dim; ++f) right.row(b)[f] = static_cast<float>((b % 10) + f);
  }
  right.row(3)[1] = std::nanf("");
  detail::FactorTable left(20, dim);
  for (float& v : left.values) v = 1.0f;
  const std::vector<Index> queries = testing::iota_ids(20);
  Filter none;
  const TopK top = detail::factor_top_k_fused(left, queries, right, 8, none, 2);
  const std::vector<Index> want = {9, 19, 29, 39, 49, 59, 69, 8};
  for (Index r = 0; r < 20; ++r) {
    for (int i = 0; i < 8; ++i)
      EXPECT_EQ(top.ids[static_cast<std::size_t>(r) * 8 + static_cast<std::size_t>(i)],
                want[static_cast<std::size_t>(i)]);
  }
  Filter few;
  few.allow = {3, 1, 2, 50, 60, 61};
  const TopK short_top = detail::factor_top_k_fused(left, queries, right, 8, few, 2);
  const std::vector<Index> want_short = {2, 1, 61, 50, 60, -1, -1, -1};
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(short_top.ids[static_cast<std::size_t>(i)], want_short[static_cast<std::size_t>(i)]);
  EXPECT_TRUE(std::isinf(short_top.scores[7]));
}

}  // namespace
}  // namespace perkrec
