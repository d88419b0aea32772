#include <algorithm>
#include <cmath>

#include "models/cf_test_util.hpp"

namespace perkrec {
namespace {

using testing::planted;

TEST(ItemKNN, CosineNeighboursKnownAnswer) {
  // Columns: b0 = (1, 1, 0), b1 = (1, 0, 0), b2 = (0, 2, 2).
  CsrMatrix<float> m;
  m.rows = 3;
  m.cols = 3;
  m.indptr = {0, 2, 4, 5};
  m.indices = {0, 1, 0, 2, 2};
  m.data = {1, 1, 1, 2, 2};
  ItemKNN knn;
  knn.fit(m.view());
  const CsrMatrix<float>& s = knn.neighbours();
  auto at = [&](Index i, Index j) {
    for (Offset e = s.indptr[static_cast<std::size_t>(i)];
         e < s.indptr[static_cast<std::size_t>(i) + 1]; ++e) {
      if (s.indices[static_cast<std::size_t>(e)] == j) return s.data[static_cast<std::size_t>(e)];
    }
    return 0.0f;
  };
  EXPECT_NEAR(at(0, 0), 1.0f, 1e-6);
  EXPECT_NEAR(at(0, 1), 1.0f / std::sqrt(2.0f), 1e-6);
  EXPECT_NEAR(at(0, 2), 0.5f, 1e-6);  // (1*0 + 1*2 + 0*2) / (sqrt2 * sqrt8)
  EXPECT_NEAR(at(1, 2), 0.0f, 1e-6);
  // Member 0 (b0 = 1, b1 = 1) scores b2 as 1 * S[0,2] + 1 * S[1,2].
  std::vector<float> out(1);
  knn.score(std::vector<Index>{0}, std::vector<Index>{2}, out);
  EXPECT_NEAR(out[0], 0.5f, 1e-6);
  ItemKNNParams one;
  one.neighbours = 1;
  ItemKNN top1(one);
  top1.fit(m.view());
  EXPECT_EQ(top1.neighbours().nnz(), 3);  // only itself
}

TEST(ItemKNN, EveryWeightingRecoversPlantedGroups) {
  const auto data = planted(300, 60, 4, 0.3, 53);
  for (auto w : {ItemKNNParams::Weighting::cosine, ItemKNNParams::Weighting::tfidf,
                 ItemKNNParams::Weighting::bm25}) {
    ItemKNNParams p;
    p.weighting = w;
    p.neighbours = 10;
    ItemKNN knn(p);
    knn.fit(data.matrix.view());
    const auto users = testing::iota_ids(300);
    Filter f;
    f.exclude_rows = data.matrix.view();
    const TopK top = knn.recommend(users, 5, f);
    EXPECT_GT(testing::in_group_share(data, users, top), 0.95);
    testing::expect_filter_respected(top, f);
    const TopK fresh = knn.recommend_new(data.matrix.view(), 5, f);
    EXPECT_EQ(fresh.ids, top.ids);
    const TopK sim = knn.similar_users(std::vector<Index>{1}, 5);
    EXPECT_EQ(sim.ids[0], 1);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(sim.ids[static_cast<std::size_t>(i)] % 4, 1);
    const TopK sb = knn.similar_benefits(std::vector<Index>{3}, 5);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(sb.ids[static_cast<std::size_t>(i)] % 4, 3);
  }
}

// Python's recommend_new(filter_already_interacted=True) and C++'s recommend_new agree: a row's
// own benefits are skipped by default, kept on request, and joined with the caller's exclude_rows.
TEST(ItemKNN, RecommendNewSkipsTheRowsOwnBenefitsByDefault) {
  const auto data = planted(100, 40, 4, 0.4, 59);
  ItemKNN knn;
  knn.fit(data.matrix.view());
  const CsrMatrix<float> rows = testing::take_rows(data.matrix, {3, 7});
  const CsrMatrix<float> other = testing::take_rows(data.matrix, {10, 21});
  Filter keep;
  keep.filter_already_interacted = false;
  Filter more;
  more.exclude_rows = other.view();
  const TopK all = knn.recommend_new(rows.view(), 40, keep);
  const TopK skip = knn.recommend_new(rows.view(), 40);
  const TopK both = knn.recommend_new(rows.view(), 40, more);
  auto in_row = [](const CsrMatrix<float>& m, Index r, Index b) {
    const auto first = m.indices.begin() + m.indptr[static_cast<std::size_t>(r)];
    const auto last = m.indices.begin() + m.indptr[static_cast<std::size_t>(r) + 1];
    return std::find(first, last, b) != last;
  };
  for (Index r = 0; r < 2; ++r) {
    ASSERT_GT(rows.indptr[static_cast<std::size_t>(r) + 1],
              rows.indptr[static_cast<std::size_t>(r)]);
    std::vector<Index> expect_skip, expect_both;
    for (int j = 0; j < 40; ++j) {
      const Index b = all.ids[static_cast<std::size_t>(r * 40 + j)];
      ASSERT_GE(b, 0);  // keep: every benefit, own ones included
      if (in_row(rows, r, b)) continue;
      expect_skip.push_back(b);
      if (!in_row(other, r, b)) expect_both.push_back(b);
    }
    ASSERT_LT(expect_skip.size(), 40u);
    ASSERT_LT(expect_both.size(), expect_skip.size());
    auto real = [](const TopK& t, Index row) {
      std::vector<Index> ids;
      for (int j = 0; j < t.k; ++j) {
        const Index b = t.ids[static_cast<std::size_t>(row * t.k + j)];
        if (b >= 0) ids.push_back(b);
      }
      return ids;
    };
    EXPECT_EQ(real(skip, r), expect_skip);
    EXPECT_EQ(real(both, r), expect_both);
  }
}

TEST(ItemKNN, PartialFitSaveLoadAndBadInput) {
  const auto data = planted(100, 40, 4, 0.4, 59);
  ItemKNN knn;
  knn.fit(data.matrix.view());
  const CsrMatrix<float> rows = testing::take_rows(data.matrix, {9});
  knn.partial_fit_users(std::vector<Index>{102}, rows.view());
  EXPECT_EQ(knn.n_users(), 103);
  Filter keep;  // recommend(users) filters nothing by default; recommend_new must be told the same
  keep.filter_already_interacted = false;
  EXPECT_EQ(knn.recommend(std::vector<Index>{102}, 5).ids,
            knn.recommend_new(rows.view(), 5, keep).ids);
  EXPECT_EQ(knn.recommend(std::vector<Index>{101}, 3).ids[0],
            0);  // empty row: all zero, lowest index
  CsrMatrix<float> col;
  col.rows = 1;
  col.cols = 103;
  for (Index u = 2; u < 100; u += 4) {
    col.indices.push_back(u);
    col.data.push_back(1);
  }
  col.indptr.push_back(static_cast<Offset>(col.indices.size()));
  knn.partial_fit_benefits(std::vector<Index>{40}, col.view());
  EXPECT_EQ(knn.n_benefits(), 41);
  const TopK sb = knn.similar_benefits(std::vector<Index>{40}, 4);
  EXPECT_EQ(sb.ids[0], 40);
  for (int i = 1; i < 4; ++i) EXPECT_EQ(sb.ids[static_cast<std::size_t>(i)] % 4, 2);
  const auto users = testing::iota_ids(103);
  const ItemKNN loaded = ItemKNN::from_bytes(knn.to_bytes());
  EXPECT_EQ(loaded.recommend(users, 5).ids, knn.recommend(users, 5).ids);
  EXPECT_EQ(loaded.recommend(users, 5).scores, knn.recommend(users, 5).scores);
  CsrMatrix<float> bad = data.matrix;
  bad.data[1] = std::numeric_limits<float>::infinity();
  PERKREC_EXPECT_THROW_MSG(knn.fit(bad.view()), InputError, "non-finite");
  EXPECT_EQ(knn.n_users(), 103);
  PERKREC_EXPECT_THROW_MSG(knn.recommend(std::vector<Index>{103}, 2), InputError, "out of range");
  PERKREC_EXPECT_THROW_MSG(ItemKNNParams::from_json(Json{{"weighting", "jaccard"}}), ConfigError,
                           "weighting");
}

}  // namespace
}  // namespace perkrec
