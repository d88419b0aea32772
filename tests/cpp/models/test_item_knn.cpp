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
    for (Offset e = s.indptr[static_cast<std::size_t>(i)]; e < s.indptr[static_cast<std::size_t>(i) + 1]; ++e) {
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
  for (auto w : {ItemKNNParams::Weighting::cosine, ItemKNNParams::Weighting::tfidf, ItemKNNParams::Weighting::bm25}) {
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

TEST(ItemKNN, PartialFitSaveLoadAndBadInput) {
  const auto data = planted(100, 40, 4, 0.4, 59);
  ItemKNN knn;
  knn.fit(data.matrix.view());
  const CsrMatrix<float> rows = testing::take_rows(data.matrix, {9});
  knn.partial_fit_users(std::vector<Index>{102}, rows.view());
  EXPECT_EQ(knn.n_users(), 103);
  EXPECT_EQ(knn.recommend(std::vector<Index>{102}, 5).ids, knn.recommend_new(rows.view(), 5).ids);
  EXPECT_EQ(knn.recommend(std::vector<Index>{101}, 3).ids[0], 0);  // empty row: all zero, lowest index
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
  PERKREC_EXPECT_THROW_MSG(ItemKNNParams::from_json(Json{{"weighting", "jaccard"}}), ConfigError, "weighting");
}

}  // namespace
}  // namespace perkrec
