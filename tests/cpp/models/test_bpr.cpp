#include <thread>

#include "models/cf_test_util.hpp"

namespace perkrec {
namespace {

using testing::planted;

BPRParams small_params(int threads = 1) {
  BPRParams p;
  p.factors = 8;
  p.iterations = 60;
  p.learning_rate = 0.05f;
  p.regularization = 0.01f;
  p.num_threads = threads;
  return p;
}

TEST(BPR, RecoversPlantedGroupsAndLogsAccuracy) {
  const auto data = planted(300, 60, 4, 0.3, 31);
  BPR bpr(small_params(2));
  int logs = 0;
  Callbacks cb;
  cb.log = [&](LogLevel, const std::string&) { ++logs; };
  bpr.fit(data.matrix.view(), {}, cb);
  EXPECT_EQ(logs, 60);
  EXPECT_GT(bpr.training_accuracy().back(), 0.8);
  EXPECT_GT(bpr.training_accuracy().back(), bpr.training_accuracy().front());
  const auto users = testing::iota_ids(300);
  Filter f;
  f.exclude_rows = data.matrix.view();
  const TopK top = bpr.recommend(users, 5, f);
  EXPECT_GT(testing::in_group_share(data, users, top), 0.9);
  testing::expect_filter_respected(top, f);
  // Fold-in of training rows recommends inside the planted group too.
  const TopK fresh = bpr.recommend_new(data.matrix.view(), 5, f);
  EXPECT_GT(testing::in_group_share(data, users, fresh), 0.9);
  // Member rows end with the constant 1 that carries the benefit bias.
  for (Index u = 0; u < 300; ++u) ASSERT_EQ(bpr.user_factors().row(u)[8], 1.0f);
}

TEST(BPR, OneThreadIsBitReproducible) {
  const auto data = planted(100, 30, 3, 0.4, 37);
  BPR a(small_params(1)), b(small_params(1));
  a.fit(data.matrix.view());
  b.fit(data.matrix.view());
  EXPECT_EQ(a.user_factors().values, b.user_factors().values);
  EXPECT_EQ(a.benefit_factors().values, b.benefit_factors().values);
  BPRParams other = small_params(1);
  other.seed = 7;
  BPR c(other);
  c.fit(data.matrix.view());
  EXPECT_NE(a.benefit_factors().values, c.benefit_factors().values);
}

TEST(BPR, NegativesAreDrawnOnlyAmongEligibleBenefits) {
  // Benefits 20..29 are never interacted with; eligibility covers only 0..19. They are then
  // never sampled, so their factors stay exactly at their initial values.
  auto data = planted(80, 20, 2, 0.5, 41);
  data.matrix.cols = 30;
  CsrMatrix<float> elig;
  elig.rows = 80;
  elig.cols = 30;
  for (Index u = 0; u < 80; ++u) {
    for (Index b = 0; b < 20; ++b) {
      elig.indices.push_back(b);
      elig.data.push_back(1);
    }
    elig.indptr.push_back(static_cast<Offset>(elig.indices.size()));
  }
  BPRParams init_only = small_params(1);
  init_only.iterations = 0;
  BPR initial(init_only), with(small_params(2)), without(small_params(2));
  initial.fit(data.matrix.view());
  with.fit(data.matrix.view(), elig.view());
  without.fit(data.matrix.view());
  for (Index b = 20; b < 30; ++b) {
    for (int k = 0; k < 9; ++k)
      EXPECT_EQ(with.benefit_factors().row(b)[k], initial.benefit_factors().row(b)[k]);
  }
  EXPECT_NE(without.benefit_factors().row(25)[8], initial.benefit_factors().row(25)[8]);
  CsrMatrix<float> wrong = elig;
  wrong.cols = 31;
  PERKREC_EXPECT_THROW_MSG(with.fit(data.matrix.view(), wrong.view()), InputError, "eligibility");
}

TEST(BPR, PartialFitAndSaveLoadAndThreads) {
  const auto data = planted(120, 40, 4, 0.4, 43);
  BPR bpr(small_params(2));
  bpr.fit(data.matrix.view());
  const CsrMatrix<float> rows = testing::take_rows(data.matrix, {2, 6});
  bpr.partial_fit_users(std::vector<Index>{2, 125}, rows.view());
  EXPECT_EQ(bpr.n_users(), 126);
  EXPECT_EQ(bpr.user_factors().row(123)[8], 1.0f);
  Filter f;
  f.exclude_rows = testing::take_rows(data.matrix, {6}).view();
  const CsrMatrix<float> seen = testing::take_rows(data.matrix, {6});
  f.exclude_rows = seen.view();
  const TopK top = bpr.recommend(std::vector<Index>{125}, 4, f);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(top.ids[static_cast<std::size_t>(i)] % 4, 2);
  CsrMatrix<float> col;
  col.rows = 1;
  col.cols = 126;
  for (Index u = 3; u < 120; u += 4) {
    col.indices.push_back(u);
    col.data.push_back(1);
  }
  col.indptr.push_back(static_cast<Offset>(col.indices.size()));
  bpr.partial_fit_benefits(std::vector<Index>{40}, col.view());
  EXPECT_EQ(bpr.n_benefits(), 41);
  // The new benefit ranks high for group-3 members, low for the others.
  std::vector<float> s(2);
  bpr.score(std::vector<Index>{3, 4}, std::vector<Index>{40, 40}, s);
  EXPECT_GT(s[0], s[1]);

  const auto users = testing::iota_ids(120);
  const TopK expected = bpr.recommend(users, 5);
  const BPR loaded = BPR::from_bytes(bpr.to_bytes());
  EXPECT_EQ(loaded.recommend(users, 5).ids, expected.ids);
  std::vector<TopK> results(6);
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t)
    threads.emplace_back(
        [&, t] { results[static_cast<std::size_t>(t)] = bpr.recommend(users, 5); });
  for (auto& th : threads) th.join();
  for (const TopK& r : results) EXPECT_EQ(r.ids, expected.ids);
}

// Planted groups (benefits 0..59) plus four benefits everyone takes at random (60..63): with
// uniform negatives the four rarely show up as negatives and their bias climbs; drawn in
// proportion to their interactions they do, so the bias stays with the members' own groups.
TEST(BPR, PopularityNegativesKeepGloballyPopularBenefitsInCheck) {
  const auto data = planted(400, 60, 4, 0.25, 7);
  CsrMatrix<float> m;
  m.rows = 400;
  m.cols = 64;
  Rng rng(99);
  for (Index u = 0; u < 400; ++u) {
    for (Offset e = data.matrix.indptr[static_cast<std::size_t>(u)];
         e < data.matrix.indptr[static_cast<std::size_t>(u) + 1]; ++e) {
      m.indices.push_back(data.matrix.indices[static_cast<std::size_t>(e)]);
      m.data.push_back(1.0f);
    }
    for (Index b = 60; b < 64; ++b) {
      if (rng.bernoulli(0.6)) {
        m.indices.push_back(b);
        m.data.push_back(1.0f);
      }
    }
    m.indptr.push_back(static_cast<Offset>(m.indices.size()));
  }
  auto bias_gap = [&](NegativeSampling sampling) {
    BPRParams p = small_params(1);
    p.negative_sampling = sampling;
    BPR bpr(p);
    bpr.fit(m.view());
    const int dim = 8;
    double popular = 0, rest = 0;
    for (Index b = 0; b < 64; ++b) (b >= 60 ? popular : rest) += bpr.benefit_factors().row(b)[dim];
    return popular / 4 - rest / 60;
  };
  const double uniform = bias_gap(NegativeSampling::uniform);
  const double by_popularity = bias_gap(NegativeSampling::popularity);
  EXPECT_GT(uniform, 0.5);
  EXPECT_LT(by_popularity, uniform - 0.5);
  // The choice is a parameter of the model file.
  BPRParams p = small_params(1);
  p.negative_sampling = NegativeSampling::popularity;
  EXPECT_EQ(BPRParams::from_json(p.to_json()).negative_sampling, NegativeSampling::popularity);
  PERKREC_EXPECT_THROW_MSG(BPRParams::from_json(Json{{"negative_sampling", "hard"}}), ConfigError,
                           "negative_sampling");
}

TEST(BPR, BadInputRaises) {
  const auto data = planted(40, 12, 3, 0.4, 47);
  BPR bpr(small_params(1));
  CsrMatrix<float> bad = data.matrix;
  bad.data[0] = std::numeric_limits<float>::quiet_NaN();
  PERKREC_EXPECT_THROW_MSG(bpr.fit(bad.view()), InputError, "non-finite");
  EXPECT_FALSE(bpr.fitted());
  CsrMatrix<float> unsorted = data.matrix;
  std::swap(unsorted.indices[0], unsorted.indices[1]);
  PERKREC_EXPECT_THROW_MSG(bpr.fit(unsorted.view()), InputError, "strictly increasing");
  bpr.fit(data.matrix.view());
  PERKREC_EXPECT_THROW_MSG(bpr.recommend(std::vector<Index>{40}, 2), InputError, "out of range");
  PERKREC_EXPECT_THROW_MSG(bpr.similar_benefits(std::vector<Index>{-1}, 2), InputError,
                           "out of range");
  BPRParams diverge = small_params(1);
  diverge.learning_rate = 1e30f;
  diverge.regularization = 1e30f;
  BPR exploding(diverge);
  PERKREC_EXPECT_THROW_MSG(exploding.fit(data.matrix.view()), DivergenceError, "non-finite");
  PERKREC_EXPECT_THROW_MSG(BPRParams::from_json(Json{{"learning_rate", 0}}), ConfigError,
                           "learning_rate");
  EXPECT_EQ(BPRParams::from_json(small_params(3).to_json()).to_json(), small_params(3).to_json());
}

}  // namespace
}  // namespace perkrec
