#include <algorithm>
#include <cmath>
#include <set>
#include <thread>

#include "test_util.hpp"

namespace perkrec {
namespace {

CsrMatrix<float> random_csr(Index rows, Index cols, double density, std::uint64_t seed) {
  Rng rng(seed);
  CsrMatrix<float> m;
  m.rows = rows;
  m.cols = cols;
  for (Index r = 0; r < rows; ++r) {
    for (Index c = 0; c < cols; ++c) {
      if (rng.bernoulli(density)) {
        m.indices.push_back(c);
        m.data.push_back(1.0f + static_cast<float>(rng.below(4)));
      }
    }
    m.indptr.push_back(static_cast<Offset>(m.indices.size()));
  }
  return m;
}

std::set<Index> row_set(const CsrMatrix<float>& m, Index r) {
  return {m.indices.begin() + m.indptr[static_cast<std::size_t>(r)],
          m.indices.begin() + m.indptr[static_cast<std::size_t>(r) + 1]};
}

TEST(Popularity, KnownScoresAndOrder) {
  // Benefit 2 is used by 3 members, 0 by 2, 1 by 1, 3 by none.
  CsrMatrix<float> m;
  m.rows = 3;
  m.cols = 4;
  m.indptr = {0, 2, 4, 6};
  m.indices = {0, 2, 1, 2, 0, 2};
  m.data = {1, 5, 1, 1, 1, 1};
  Popularity pop;
  pop.fit(m.view());
  EXPECT_EQ(pop.benefit_scores(), (std::vector<float>{2.0f / 3, 1.0f / 3, 1.0f, 0.0f}));
  const TopK top = pop.recommend(std::vector<Index>{0}, 4);
  EXPECT_EQ(top.ids, (std::vector<Index>{2, 0, 1, 3}));
  PopularityParams p;
  p.weighting = PopularityParams::Weighting::confidence;
  Popularity by_confidence(p);
  by_confidence.fit(m.view());
  EXPECT_FLOAT_EQ(by_confidence.benefit_scores()[2], 7.0f / 3);
  std::vector<float> out(2);
  pop.score(std::vector<Index>{1, 2}, std::vector<Index>{3, 2}, out);
  EXPECT_EQ(out, (std::vector<float>{0.0f, 1.0f}));
}

TEST(Popularity, FiltersNeverLeakAcrossRandomCases) {
  const Index n_users = 300, n_benefits = 50;
  const CsrMatrix<float> train = random_csr(n_users, n_benefits, 0.15, 1);
  Popularity pop;
  pop.fit(train.view());
  Rng rng(99);
  for (int trial = 0; trial < 60; ++trial) {
    std::vector<Index> users;
    for (int i = 0; i < 40; ++i) users.push_back(static_cast<Index>(rng.below(n_users)));
    // Row-aligned filters: already-interacted rows of these users, and an eligibility mask.
    CsrMatrix<float> already;
    already.rows = static_cast<Index>(users.size());
    already.cols = n_benefits;
    for (Index u : users) {
      for (Index b : row_set(train, u)) {
        already.indices.push_back(b);
        already.data.push_back(1.0f);
      }
      already.indptr.push_back(static_cast<Offset>(already.indices.size()));
    }
    const CsrMatrix<float> elig =
        random_csr(static_cast<Index>(users.size()), n_benefits, 0.5, 1000 + trial);
    Filter f;
    f.exclude_rows = already.view();
    f.eligibility = elig.view();
    f.eligibility_blocks = trial % 2 == 1;
    for (int i = 0; i < 5; ++i) f.exclude.push_back(static_cast<Index>(rng.below(n_benefits)));
    if (trial % 3 == 0) {
      for (int i = 0; i < 30; ++i) f.allow.push_back(static_cast<Index>(rng.below(n_benefits)));
    }
    const int n = 1 + static_cast<int>(rng.below(60));
    const TopK top = pop.recommend(users, n, f);
    const int width = std::min<int>(n, n_benefits);  // never wider than the catalog
    ASSERT_EQ(top.k, width);
    ASSERT_EQ(top.ids.size(), users.size() * static_cast<std::size_t>(width));
    const std::set<Index> excluded(f.exclude.begin(), f.exclude.end());
    const std::set<Index> allowed(f.allow.begin(), f.allow.end());
    for (std::size_t r = 0; r < users.size(); ++r) {
      const std::set<Index> seen = row_set(already, static_cast<Index>(r));
      const std::set<Index> listed = row_set(elig, static_cast<Index>(r));
      std::set<Index> returned;
      // Count how many benefits the filters leave, to check the padding.
      int candidates = 0;
      for (Index b = 0; b < n_benefits; ++b) {
        const bool ok = !seen.count(b) && !excluded.count(b) &&
                        (allowed.empty() || allowed.count(b)) &&
                        (f.eligibility_blocks ? !listed.count(b) : listed.count(b) > 0);
        candidates += ok;
      }
      for (int i = 0; i < width; ++i) {
        const std::size_t k = r * static_cast<std::size_t>(width) + static_cast<std::size_t>(i);
        const Index b = top.ids[k];
        if (i >= candidates) {
          ASSERT_EQ(b, -1);
          ASSERT_TRUE(std::isinf(top.scores[k]) && top.scores[k] < 0);
          continue;
        }
        ASSERT_GE(b, 0);
        ASSERT_FALSE(std::isnan(top.scores[k]));
        ASSERT_FALSE(seen.count(b)) << "already-interacted benefit leaked";
        ASSERT_FALSE(excluded.count(b)) << "excluded benefit leaked";
        if (!allowed.empty()) {
          ASSERT_TRUE(allowed.count(b)) << "benefit outside the allow list";
        }
        if (f.eligibility_blocks) {
          ASSERT_FALSE(listed.count(b)) << "blocked benefit leaked";
        } else {
          ASSERT_TRUE(listed.count(b)) << "ineligible benefit leaked";
        }
        ASSERT_TRUE(returned.insert(b).second) << "duplicate";
        if (i > 0) {
          ASSERT_GE(top.scores[k - 1], top.scores[k]);
        }
      }
    }
  }
}

TEST(Popularity, SaveLoadAndConcurrentRecommendMatchSerial) {
  const CsrMatrix<float> train = random_csr(500, 80, 0.1, 3);
  Popularity pop;
  pop.fit(train.view());
  const Popularity back = Popularity::from_bytes(pop.to_bytes());
  std::vector<Index> users(500);
  for (Index u = 0; u < 500; ++u) users[static_cast<std::size_t>(u)] = u;
  const TopK expected = pop.recommend(users, 10);
  EXPECT_EQ(back.recommend(users, 10).ids, expected.ids);
  EXPECT_EQ(back.get_params(), pop.get_params());
  // External ids travel with the model; maps of the wrong size are refused.
  Popularity named = pop;
  std::vector<std::string> benefit_names;
  for (int b = 0; b < 80; ++b) benefit_names.push_back("B" + std::to_string(b));
  named.set_ids(IdMap::range(500), IdMap::from_strings(benefit_names));
  const Popularity named_back = Popularity::from_bytes(named.to_bytes());
  EXPECT_EQ(named_back.benefit_ids().string_at(79), "B79");
  EXPECT_EQ(named_back.user_ids(), named.user_ids());
  PERKREC_EXPECT_THROW_MSG(named.set_ids(IdMap::range(3), IdMap()), InputError, "holds 3 ids",
                           "expected 500");
  EXPECT_EQ(named.benefit_ids().size(), 80);
  std::vector<std::thread> threads;
  std::vector<int> mismatches(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 20; ++rep) {
        if (back.recommend(users, 10).ids != expected.ids)
          mismatches[static_cast<std::size_t>(t)]++;
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

TEST(Popularity, BadInputRaisesAndLeavesTheModelUnchanged) {
  Popularity pop;
  PERKREC_EXPECT_THROW_MSG(pop.recommend(std::vector<Index>{0}, 5), InputError, "not fitted");
  CsrMatrix<float> m = random_csr(10, 5, 0.5, 2);
  pop.fit(m.view());
  const std::vector<float> before = pop.benefit_scores();
  CsrMatrix<float> bad = m;
  bad.data[0] = NAN;
  PERKREC_EXPECT_THROW_MSG(pop.fit(bad.view()), InputError, "non-finite");
  bad = m;
  bad.indices[0] = 9;
  PERKREC_EXPECT_THROW_MSG(pop.fit(bad.view()), InputError, "column index out of range");
  bad = m;
  bad.data[0] = -1;
  PERKREC_EXPECT_THROW_MSG(pop.fit(bad.view()), InputError, "negative confidence");
  EXPECT_EQ(pop.benefit_scores(), before);
  PERKREC_EXPECT_THROW_MSG(pop.recommend(std::vector<Index>{10}, 3), InputError,
                           "user at position 0", "got 10");
  PERKREC_EXPECT_THROW_MSG(pop.recommend(std::vector<Index>{0}, -1), InputError, "n must be >= 0");
  Filter f;
  f.exclude = {7};
  PERKREC_EXPECT_THROW_MSG(pop.recommend(std::vector<Index>{0}, 3, f), InputError, "exclude[0]",
                           "got 7");
  Filter rows;
  rows.exclude_rows = m.view();  // 10 rows for 1 requested member
  PERKREC_EXPECT_THROW_MSG(pop.recommend(std::vector<Index>{0}, 3, rows), InputError,
                           "one row per requested member");
  std::vector<float> out(1);
  PERKREC_EXPECT_THROW_MSG(pop.score(std::vector<Index>{0}, std::vector<Index>{5}, out), InputError,
                           "benefit at position 0");
}

TEST(PopularityParams, StrictJson) {
  const PopularityParams p =
      PopularityParams::from_json(Json{{"weighting", "confidence"}, {"num_threads", 2}});
  EXPECT_EQ(p.weighting, PopularityParams::Weighting::confidence);
  EXPECT_EQ(PopularityParams::from_json(p.to_json()).num_threads, 2);
  PERKREC_EXPECT_THROW_MSG(PopularityParams::from_json(Json{{"weightin", "members"}}), ConfigError,
                           "/weightin", "unknown key");
  PERKREC_EXPECT_THROW_MSG(PopularityParams::from_json(Json{{"weighting", "votes"}}), ConfigError,
                           "/weighting");
  PERKREC_EXPECT_THROW_MSG(PopularityParams::from_json(Json{{"num_threads", -3}}), ConfigError,
                           "num_threads");
}

}  // namespace
}  // namespace perkrec
