#include <Eigen/Dense>

#include <cmath>
#include <thread>

#include "models/cf_test_util.hpp"

namespace perkrec {
namespace {

using testing::planted;

ALSParams small_params(int cg_steps, int threads = 0) {
  ALSParams p;
  p.factors = 6;
  p.iterations = 8;
  p.regularization = 0.05f;
  p.alpha = 2.0f;
  p.cg_steps = cg_steps;
  p.num_threads = threads;
  return p;
}

// Dense normal equations, every pair explicitly (no Gram trick), in double.
Eigen::VectorXd dense_solve(const CsrMatrix<float>& m, Index row, const detail::FactorTable& y,
                            double reg, double alpha) {
  const int f = y.dim;
  Eigen::MatrixXd a = Eigen::MatrixXd::Identity(f, f) * reg;
  Eigen::VectorXd b = Eigen::VectorXd::Zero(f);
  std::vector<double> value(static_cast<std::size_t>(m.cols), 0.0);
  std::vector<bool> positive(static_cast<std::size_t>(m.cols), false);
  for (Offset e = m.indptr[static_cast<std::size_t>(row)];
       e < m.indptr[static_cast<std::size_t>(row) + 1]; ++e) {
    value[static_cast<std::size_t>(m.indices[static_cast<std::size_t>(e)])] =
        m.data[static_cast<std::size_t>(e)];
    positive[static_cast<std::size_t>(m.indices[static_cast<std::size_t>(e)])] = true;
  }
  for (Index j = 0; j < y.rows; ++j) {
    Eigen::VectorXd yj(f);
    for (int k = 0; k < f; ++k) yj[k] = y.row(j)[k];
    const double c = 1.0 + alpha * value[static_cast<std::size_t>(j)];
    a += c * yj * yj.transpose();
    if (positive[static_cast<std::size_t>(j)]) b += c * yj;
  }
  return a.ldlt().solve(b);
}

TEST(ALS, TinyKnownAnswerMatchesDenseLeastSquares) {
  CsrMatrix<float> m;
  m.rows = 4;
  m.cols = 5;
  m.indptr = {0, 2, 3, 6, 7};
  m.indices = {0, 3, 1, 0, 2, 4, 3};
  m.data = {1, 2, 5, 1, 1, 3, 0.5f};
  ALSParams p = small_params(0);
  p.factors = 3;
  p.iterations = 3;
  ALS als(p);
  als.fit(m.view());
  // The last half-sweep solved every benefit exactly with the member factors fixed.
  const CsrMatrix<float> t = detail::transpose(m.view(), 1);
  for (Index b = 0; b < m.cols; ++b) {
    const Eigen::VectorXd want = dense_solve(t, b, als.user_factors(), p.regularization, p.alpha);
    for (int k = 0; k < p.factors; ++k)
      EXPECT_NEAR(als.benefit_factors().row(b)[k], want[k], 2e-4) << b;
  }
  // Fold-in is the exact member solve with the benefit factors fixed.
  const std::vector<float> folded = als.fold_in(m.view());
  for (Index u = 0; u < m.rows; ++u) {
    const Eigen::VectorXd want =
        dense_solve(m, u, als.benefit_factors(), p.regularization, p.alpha);
    for (int k = 0; k < p.factors; ++k)
      EXPECT_NEAR(folded[static_cast<std::size_t>(u * p.factors + k)], want[k], 2e-4);
  }
}

TEST(ALS, ConjugateGradientConvergesToTheExactSolve) {
  const auto data = planted(60, 24, 3, 0.5, 3);
  ALSParams p = small_params(30);
  p.iterations = 1;
  ALS cg(p);
  cg.fit(data.matrix.view());
  // With many CG steps the benefit half-sweep reaches the exact solution.
  const CsrMatrix<float> t = detail::transpose(data.matrix.view(), 1);
  for (Index b = 0; b < data.matrix.cols; b += 5) {
    const Eigen::VectorXd want = dense_solve(t, b, cg.user_factors(), p.regularization, p.alpha);
    for (int k = 0; k < p.factors; ++k) EXPECT_NEAR(cg.benefit_factors().row(b)[k], want[k], 1e-3);
  }
}

TEST(ALS, CholeskyTrainingLossNeverIncreases) {
  const auto data = planted(120, 40, 4, 0.4, 5);
  ALSParams p = small_params(0);
  p.calculate_training_loss = true;
  p.iterations = 10;
  ALS als(p);
  std::vector<std::string> logged;
  Callbacks cb;
  cb.log = [&](LogLevel, const std::string& msg) { logged.push_back(msg); };
  als.fit(data.matrix.view(), cb);
  const auto& loss = als.training_loss();
  ASSERT_EQ(loss.size(), 10u);
  EXPECT_EQ(logged.size(), 10u);
  for (std::size_t i = 1; i < loss.size(); ++i) EXPECT_LE(loss[i], loss[i - 1] * (1 + 1e-6)) << i;
  EXPECT_LT(loss.back(), loss.front());
}

TEST(ALS, CholeskyStaysFiniteWithMoreFactorsThanBenefitsAndManyRows) {
  // Many rows make Y^T Y large against the regularization; with more factors than benefits
  // the normal equations are nearly singular. The exact solve must stay accurate (regression:
  // a float factorization diverged here).
  auto data = planted(4000, 12, 3, 0.6, 8);
  for (float& v : data.matrix.data) v *= 5.0f;
  ALSParams p = small_params(0);
  p.factors = 24;
  p.iterations = 4;
  ALS als(p);
  als.fit(data.matrix.view());
  float largest = 0;
  for (float v : als.benefit_factors().values) largest = std::max(largest, std::abs(v));
  EXPECT_LT(largest, 10.0f);
}

TEST(ALS, FactorsIdenticalForAnyThreadCount) {
  const auto data = planted(200, 50, 5, 0.3, 7);
  for (int cg : {3, 0}) {
    ALS one(small_params(cg, 1)), two(small_params(cg, 2)), three(small_params(cg, 3));
    one.fit(data.matrix.view());
    two.fit(data.matrix.view());
    three.fit(data.matrix.view());
    EXPECT_EQ(one.user_factors().values, two.user_factors().values);
    EXPECT_EQ(one.benefit_factors().values, two.benefit_factors().values);
    EXPECT_EQ(one.benefit_factors().values, three.benefit_factors().values);
  }
}

TEST(ALS, RecoversPlantedGroups) {
  const auto data = planted(300, 60, 4, 0.3, 11);
  for (int cg : {3, 0}) {
    ALS als(small_params(cg));
    als.fit(data.matrix.view());
    const auto users = testing::iota_ids(300);
    Filter f;
    f.exclude_rows = data.matrix.view();
    const TopK top = als.recommend(users, 5, f);
    EXPECT_GT(testing::in_group_share(data, users, top), 0.95) << cg;
    testing::expect_filter_respected(top, f);
    // Similar benefits of a benefit come from its own group.
    const TopK sim = als.similar_benefits(std::vector<Index>{0, 1}, 6);
    EXPECT_EQ(sim.ids[0], 0);
    for (int i = 0; i < 6; ++i) EXPECT_EQ(sim.ids[static_cast<std::size_t>(i)] % 4, 0);
    const TopK su = als.similar_users(std::vector<Index>{2}, 5);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(su.ids[static_cast<std::size_t>(i)] % 4, 2);
  }
}

TEST(ALS, FiltersAndEligibilityNeverLeak) {
  const auto data = planted(150, 40, 4, 0.3, 13);
  ALS als(small_params(3));
  als.fit(data.matrix.view());
  Rng rng(99);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<Index> users;
    for (int i = 0; i < 12; ++i) users.push_back(static_cast<Index>(rng.below(150)));
    const CsrMatrix<float> seen = testing::take_rows(data.matrix, users);
    const auto elig = planted(12, 40, 2, 0.5, 100 + trial).matrix;
    Filter f;
    f.exclude_rows = seen.view();
    f.eligibility = elig.view();
    f.eligibility_blocks = trial % 2 == 0;
    f.exclude = {static_cast<Index>(rng.below(40)), static_cast<Index>(rng.below(40))};
    if (trial % 3 == 0) {
      for (Index b = 0; b < 40; b += 2) f.allow.push_back(b);
    }
    const int n = 1 + static_cast<int>(rng.below(45));
    const TopK top = als.recommend(users, n, f);
    ASSERT_EQ(top.k, std::min(n, 40));  // never wider than the catalog
    ASSERT_EQ(top.ids.size(), users.size() * static_cast<std::size_t>(top.k));
    testing::expect_filter_respected(top, f);
    const TopK fresh = als.recommend_new(seen.view(), n, f);
    testing::expect_filter_respected(fresh, f);
  }
}

TEST(ALS, FoldInOfATrainingMemberLandsNearItsVector) {
  const auto data = planted(200, 50, 5, 0.4, 17);
  ALSParams p = small_params(0);
  p.iterations = 15;
  ALS als(p);
  als.fit(data.matrix.view());
  const std::vector<float> folded = als.fold_in(data.matrix.view());
  double worst = 1;
  for (Index u = 0; u < 200; ++u) {
    detail::ConstMapVectorF a(folded.data() + u * p.factors, p.factors);
    detail::ConstMapVectorF b(als.user_factors().row(u), p.factors);
    worst = std::min<double>(worst, a.dot(b) / (a.norm() * b.norm()));
  }
  EXPECT_GT(worst, 0.98);
  // recommend_new of training rows gives (nearly) the trained recommendations.
  const auto users = testing::iota_ids(200);
  Filter f;
  f.exclude_rows = data.matrix.view();
  const TopK a = als.recommend(users, 3, f), b = als.recommend_new(data.matrix.view(), 3, f);
  std::size_t same = 0;
  for (std::size_t i = 0; i < a.ids.size(); ++i) same += a.ids[i] == b.ids[i] ? 1 : 0;
  EXPECT_GT(static_cast<double>(same) / a.ids.size(), 0.9);
}

TEST(ALS, PartialFitGrowsAndExplainSumsToTheScore) {
  const auto data = planted(100, 40, 4, 0.4, 19);
  ALS als(small_params(0));
  als.fit(data.matrix.view());
  const CsrMatrix<float> rows = testing::take_rows(data.matrix, {3, 7});
  als.partial_fit_users(std::vector<Index>{3, 104}, rows.view());
  EXPECT_EQ(als.n_users(), 105);
  const std::vector<float> folded = als.fold_in(rows.view());
  for (int k = 0; k < 6; ++k) {
    EXPECT_EQ(als.user_factors().row(3)[k], folded[static_cast<std::size_t>(k)]);
    EXPECT_EQ(als.user_factors().row(104)[k], folded[static_cast<std::size_t>(6 + k)]);
    EXPECT_EQ(als.user_factors().row(103)[k], 0.0f);
  }
  // A new benefit liked by group-1 members lands near group 1.
  CsrMatrix<float> col;
  col.rows = 1;
  col.cols = 105;
  for (Index u = 1; u < 100; u += 4) {
    col.indices.push_back(u);
    col.data.push_back(3);
  }
  col.indptr.push_back(static_cast<Offset>(col.indices.size()));
  als.partial_fit_benefits(std::vector<Index>{40}, col.view());
  EXPECT_EQ(als.n_benefits(), 41);
  const TopK sim = als.similar_benefits(std::vector<Index>{40}, 4);
  for (int i = 1; i < 4; ++i) EXPECT_EQ(sim.ids[static_cast<std::size_t>(i)] % 4, 1);
  // Explanations add up to the folded-in score.
  CsrMatrix<float> one = testing::take_rows(data.matrix, {5});
  one.cols = 41;
  const Explanation ex = als.explain(one.view(), 9, 100);
  const std::vector<float> x = als.fold_in(one.view());
  const float score = detail::ConstMapVectorF(x.data(), 6)
                          .dot(detail::ConstMapVectorF(als.benefit_factors().row(9), 6));
  EXPECT_NEAR(ex.score, score, 1e-3);
  float sum = 0;
  for (float c : ex.contributions) sum += c;
  EXPECT_NEAR(sum, score, 1e-3);
  EXPECT_EQ(ex.benefits.size(), static_cast<std::size_t>(one.nnz()));
  EXPECT_TRUE(std::is_sorted(ex.contributions.rbegin(), ex.contributions.rend()));
}

TEST(ALS, SaveLoadAndConcurrentRecommendMatchSerial) {
  const auto data = planted(120, 30, 3, 0.4, 23);
  ALS als(small_params(3));
  als.fit(data.matrix.view());
  als.set_ids(IdMap(), IdMap());
  const auto users = testing::iota_ids(120);
  Filter f;
  f.exclude_rows = data.matrix.view();
  const TopK expected = als.recommend(users, 5, f);
  const std::string path = testing::temp_dir() + "/als_test.perk";
  als.save(path);
  for (const ALS& other : {ALS::load(path), ALS::from_bytes(als.to_bytes())}) {
    const TopK got = other.recommend(users, 5, f);
    EXPECT_EQ(got.ids, expected.ids);
    EXPECT_EQ(got.scores, expected.scores);
    EXPECT_EQ(other.get_params(), als.get_params());
  }
  // Batches take the packed-panel product, single members the plain one: same rankings.
  for (Index u = 0; u < 120; u += 7) {
    Filter one;
    const CsrMatrix<float> row = testing::take_rows(data.matrix, {u});
    one.exclude_rows = row.view();
    const TopK single = als.recommend(std::vector<Index>{u}, 5, one);
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(single.ids[static_cast<std::size_t>(i)],
                expected.ids[static_cast<std::size_t>(u * 5 + i)]);
      EXPECT_NEAR(single.scores[static_cast<std::size_t>(i)],
                  expected.scores[static_cast<std::size_t>(u * 5 + i)], 1e-5);
    }
  }
  std::vector<TopK> results(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back(
        [&, t] { results[static_cast<std::size_t>(t)] = als.recommend(users, 5, f); });
  for (auto& th : threads) th.join();
  for (const TopK& r : results) EXPECT_EQ(r.ids, expected.ids);
  PERKREC_EXPECT_THROW_MSG(Popularity::from_bytes(als.to_bytes()), ModelFormatError, "ALS");
}

TEST(ALS, BadInputRaisesAndLeavesTheModelUnchanged) {
  const auto data = planted(40, 12, 3, 0.4, 29);
  ALS als(small_params(3));
  PERKREC_EXPECT_THROW_MSG(als.recommend(std::vector<Index>{0}, 3), InputError, "not fitted");
  als.fit(data.matrix.view());
  const std::vector<float> before = als.user_factors().values;
  CsrMatrix<float> bad = data.matrix;
  bad.data[2] = std::numeric_limits<float>::quiet_NaN();
  PERKREC_EXPECT_THROW_MSG(als.fit(bad.view()), InputError, "non-finite");
  bad.data[2] = std::numeric_limits<float>::infinity();
  PERKREC_EXPECT_THROW_MSG(als.fit(bad.view()), InputError, "non-finite");
  bad.data[2] = -1;
  PERKREC_EXPECT_THROW_MSG(als.fit(bad.view()), InputError, "negative");
  EXPECT_EQ(als.user_factors().values, before);
  PERKREC_EXPECT_THROW_MSG(als.recommend(std::vector<Index>{40}, 3), InputError, "out of range");
  PERKREC_EXPECT_THROW_MSG(als.recommend(std::vector<Index>{-1}, 3), InputError, "out of range");
  PERKREC_EXPECT_THROW_MSG(als.recommend(std::vector<Index>{0}, -1), InputError, "n must be");
  std::vector<float> out(1);
  PERKREC_EXPECT_THROW_MSG(als.score(std::vector<Index>{0}, std::vector<Index>{12}, out),
                           InputError, "out of range");
  const CsrMatrix<float> rows = testing::take_rows(data.matrix, {1, 2});
  PERKREC_EXPECT_THROW_MSG(als.partial_fit_users(std::vector<Index>{1}, rows.view()), InputError,
                           "wrong shape");
  PERKREC_EXPECT_THROW_MSG(als.partial_fit_users(std::vector<Index>{1, -2}, rows.view()),
                           InputError, "out of range");
  PERKREC_EXPECT_THROW_MSG(als.partial_fit_users(std::vector<Index>{1, 1}, rows.view()), InputError,
                           "twice");
  CsrMatrix<float> wide = rows;
  wide.cols = 13;
  PERKREC_EXPECT_THROW_MSG(als.recommend_new(wide.view(), 3), InputError, "wrong shape");
  EXPECT_EQ(als.user_factors().values, before);
  EXPECT_EQ(als.n_users(), 40);
  // Confidences so large that the solve overflows: DivergenceError, model unchanged.
  ALSParams huge = small_params(0);
  huge.alpha = 3e38f;
  ALS diverging(huge);
  CsrMatrix<float> big = data.matrix;
  for (float& v : big.data) v = 1e30f;  // finite, but no confidence is that large
  PERKREC_EXPECT_THROW_MSG(diverging.fit(big.view()), InputError, "too large");
  for (float& v : big.data) v = 1e9f;  // the largest accepted, times alpha = 3e38
  PERKREC_EXPECT_THROW_MSG(diverging.fit(big.view()), DivergenceError, "non-finite");
  EXPECT_FALSE(diverging.fitted());
  huge.cg_steps = 3;
  ALS diverging_cg(huge);
  PERKREC_EXPECT_THROW_MSG(diverging_cg.fit(big.view()), DivergenceError, "non-finite");
  PERKREC_EXPECT_THROW_MSG(ALS(ALSParams{0}), ConfigError, "factors");
  PERKREC_EXPECT_THROW_MSG(ALSParams::from_json(Json{{"factor", 3}}), ConfigError, "unknown key");
  PERKREC_EXPECT_THROW_MSG(ALSParams::from_json(Json{{"cg_steps", -1}}), ConfigError, "cg_steps");
  EXPECT_EQ(ALSParams::from_json(small_params(2).to_json()).to_json(), small_params(2).to_json());
}

}  // namespace
}  // namespace perkrec
