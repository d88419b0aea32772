#include <cmath>
#include <random>
#include <vector>

#include "test_util.hpp"

namespace perkrec {
namespace {

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// True logits: member + benefit effects + a small interaction; the model adds a large noise to
// the interaction. Held-out rows drawn uniformly, labels from the truth.
struct Planted {
  Index n = 2000, nb = 12;
  std::vector<double> truth, model, predicted, redeemed;
  std::vector<Index> users, benefits;
};

Planted planted(double noise, std::uint64_t seed) {
  Planted p;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0, 1);
  std::vector<double> member(p.n), benefit(p.nb);
  for (auto& v : member) v = -2 + 0.5 * g(rng);
  for (auto& v : benefit) v = 0.5 * g(rng);
  for (Index u = 0; u < p.n; ++u) {
    for (Index b = 0; b < p.nb; ++b) {
      const double z = member[u] + benefit[b] + 0.3 * g(rng);
      p.truth.push_back(sigmoid(z));
      p.model.push_back(sigmoid(z + noise * g(rng)));
    }
  }
  std::uniform_int_distribution<Index> pick_u(0, p.n - 1), pick_b(0, p.nb - 1);
  std::uniform_real_distribution<double> unit(0, 1);
  for (int r = 0; r < 20000; ++r) {
    const Index u = pick_u(rng), b = pick_b(rng);
    const std::size_t i = static_cast<std::size_t>(u) * p.nb + b;
    p.users.push_back(u);
    p.benefits.push_back(b);
    p.predicted.push_back(p.model[i]);
    p.redeemed.push_back(unit(rng) < p.truth[i] ? 1.0 : 0.0);
  }
  return p;
}

InteractionShrinkage shrink(const Planted& p, const std::vector<double>& matrix, int threads = 1) {
  InteractionShrinkParams params;
  params.num_threads = threads;
  return shrink_interactions(Span<const double>(matrix.data(), matrix.size()), p.n, p.nb,
                             Span<const Index>(p.users.data(), p.users.size()),
                             Span<const Index>(p.benefits.data(), p.benefits.size()),
                             Span<const double>(p.predicted.data(), p.predicted.size()),
                             Span<const double>(p.redeemed.data(), p.redeemed.size()), {}, params);
}

TEST(ShrinkInteractions, RemovesTheOptimismOfEachMembersBestPair) {
  const Planted p = planted(1.0, 7);
  const InteractionShrinkage s = shrink(p, p.model);
  EXPECT_GT(s.slope, 0.0);
  EXPECT_LT(s.slope, 0.35);
  double gap_raw = 0, gap_shrunk = 0;
  for (Index u = 0; u < p.n; ++u) {
    const std::size_t row = static_cast<std::size_t>(u) * p.nb;
    std::size_t best_raw = row, best_shrunk = row;
    for (std::size_t i = row; i < row + p.nb; ++i) {
      if (p.model[i] > p.model[best_raw]) best_raw = i;
      if (s.probability[i] > s.probability[best_shrunk]) best_shrunk = i;
    }
    gap_raw += p.model[best_raw] - p.truth[best_raw];
    gap_shrunk += s.probability[best_shrunk] - p.truth[best_shrunk];
  }
  EXPECT_GT(gap_raw / p.n, 0.1);
  EXPECT_LT(std::abs(gap_shrunk) / p.n, 0.3 * gap_raw / p.n);
}

TEST(ShrinkInteractions, KeepsAReliableInteractionAndIsThreadCountInvariant) {
  Planted p = planted(1.0, 8);
  for (std::size_t r = 0; r < p.users.size(); ++r) {
    p.predicted[r] = p.truth[static_cast<std::size_t>(p.users[r]) * p.nb + p.benefits[r]];
  }
  const InteractionShrinkage one = shrink(p, p.truth, 1), two = shrink(p, p.truth, 2);
  EXPECT_GT(one.slope, 0.8);
  EXPECT_EQ(one.slope, two.slope);
  EXPECT_EQ(one.probability, two.probability);
}

TEST(ShrinkInteractions, RejectsBadInput) {
  Planted p = planted(1.0, 9);
  std::vector<double> bad = p.model;
  bad[5] = 1.0;
  PERKREC_EXPECT_THROW_MSG(shrink(p, bad), InputError, "probability at (0, 5)", "(0, 1)");
  p.redeemed[3] = 0.5;
  PERKREC_EXPECT_THROW_MSG(shrink(p, p.model), InputError, "redeemed at row 3", "0/1");
  p.redeemed[3] = 1;
  p.users[4] = p.n;
  PERKREC_EXPECT_THROW_MSG(shrink(p, p.model), InputError, "row 4", "out of range");
  InteractionShrinkParams params;
  params.iterations = 0;
  PERKREC_EXPECT_THROW_MSG(params.validate(), ConfigError, "iterations");
}

}  // namespace
}  // namespace perkrec
