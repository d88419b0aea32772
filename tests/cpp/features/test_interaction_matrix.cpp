#include <cmath>

#include "test_util.hpp"

namespace perkrec {
namespace {

using testing::make_log;

EventLog small_log() {
  return make_log({{0, 1, EventType::claimed, 10},
                   {0, 1, EventType::redeemed, 12},
                   {0, 0, EventType::issued, 12},        // weight 0 by default
                   {0, -1, EventType::ordered, 12, 30},  // no benefit
                   {1, 2, EventType::viewed, 20},
                   {1, 0, EventType::claimed, 30},  // the last event
                   {2, 2, EventType::expired, 5}},
                  3, 3);
}

float at(const InteractionMatrix& m, Index r, Index c) {
  for (Offset k = m.indptr[static_cast<std::size_t>(r)];
       k < m.indptr[static_cast<std::size_t>(r) + 1]; ++k) {
    if (m.indices[static_cast<std::size_t>(k)] == c) return m.data[static_cast<std::size_t>(k)];
  }
  return 0.0f;
}

TEST(InteractionMatrix, KnownAnswerWithoutDecay) {
  const InteractionMatrix m = build_interaction_matrix(small_log());
  EXPECT_EQ(m.rows, 3);
  EXPECT_EQ(m.cols, 3);
  EXPECT_EQ(m.indptr, (std::vector<Offset>{0, 1, 3, 3}));
  EXPECT_EQ(at(m, 0, 1), 1.0f + 4.0f);  // claimed + redeemed
  EXPECT_EQ(at(m, 1, 2), 0.25f);
  EXPECT_EQ(at(m, 1, 0), 1.0f);
  EXPECT_EQ(m.indices[1], 0);  // sorted within the row
  EXPECT_EQ(m.indices[2], 2);
}

TEST(InteractionMatrix, HalfLifeDecayMaxCombineAndEndTime) {
  InteractionParams p;
  p.half_life_days = 10;
  const InteractionMatrix m = build_interaction_matrix(small_log(), p);
  // Reference = last event (day 30): claimed at day 10 is 20 days = two half-lives old.
  EXPECT_NEAR(at(m, 0, 1), 1.0 * 0.25 + 4.0 * std::exp2(-1.8), 1e-6);
  EXPECT_NEAR(at(m, 1, 0), 1.0, 1e-6);

  p = InteractionParams{};
  p.combine = InteractionParams::Combine::max;
  EXPECT_EQ(at(build_interaction_matrix(small_log(), p), 0, 1), 4.0f);

  p = InteractionParams{};
  p.cut_time = testing::day_time(12);  // events at the cut are excluded
  p.half_life_days = 1;
  const InteractionMatrix before = build_interaction_matrix(small_log(), p);
  EXPECT_NEAR(at(before, 0, 1), std::exp2(-2.0), 1e-6);
  EXPECT_EQ(before.nnz(), 1);

  p = InteractionParams{};
  p.event_weights = {0, 0, 0, 0, 2.0f, 0};
  const InteractionMatrix expired = build_interaction_matrix(small_log(), p);
  EXPECT_EQ(expired.nnz(), 1);
  EXPECT_EQ(at(expired, 2, 2), 2.0f);
}

TEST(InteractionMatrix, IdenticalForAnyThreadCount) {
  SimulatorParams sp;
  sp.n_users = 2000;
  const SimulatedProgram prog = simulate(sp);
  InteractionParams p;
  p.half_life_days = 30;
  p.num_threads = 1;
  const InteractionMatrix a = build_interaction_matrix(prog.events, p);
  p.num_threads = 2;
  const InteractionMatrix b = build_interaction_matrix(prog.events, p);
  EXPECT_EQ(a.indptr, b.indptr);
  EXPECT_EQ(a.indices, b.indices);
  EXPECT_EQ(a.data, b.data);
  EXPECT_NO_THROW(a.view().validate("a", true));
}

TEST(InteractionMatrix, InvalidParamsAreConfigErrors) {
  InteractionParams p;
  p.event_weights[2] = -1;
  PERKREC_EXPECT_THROW_MSG(build_interaction_matrix(small_log(), p), ConfigError, "claimed", "-1");
  p = InteractionParams{};
  p.event_weights = {0, 0, 0, 0, 0, 0};
  PERKREC_EXPECT_THROW_MSG(build_interaction_matrix(small_log(), p), ConfigError, "all 0");
  p = InteractionParams{};
  p.half_life_days = std::nan("");
  PERKREC_EXPECT_THROW_MSG(build_interaction_matrix(small_log(), p), ConfigError, "half_life_days");
  p = InteractionParams{};
  p.event_weights[3] = INFINITY;
  EXPECT_THROW(build_interaction_matrix(small_log(), p), ConfigError);
}

}  // namespace
}  // namespace perkrec
