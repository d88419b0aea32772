// Allocator: feasibility over random instances and constraints, determinism across thread
// counts, the dual bound, near-optimality against the exact branch and bound (itself checked
// against brute force), known answers, bad input, and the online Pacer (also concurrent).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <thread>

#include "test_util.hpp"

namespace perkrec {
namespace {

struct Instance {
  Candidates c;
  AllocationConstraints k;
};

// A random instance: n members with up to `max_k` candidates each over `nb` benefits, and
// random constraints of every kind (each switched on with some probability).
Instance random_instance(std::uint64_t seed, Index n, int max_k, Index nb,
                         bool all_constraints = true, bool diversity = true) {
  Rng rng(seed, 17);
  Instance in;
  Candidates& c = in.c;
  c.n_users = n;
  c.n_benefits = nb;
  c.offsets.assign(1, 0);
  double total_cost = 0.0;
  for (Index u = 0; u < n; ++u) {
    const int kk = static_cast<int>(rng.below(static_cast<std::uint32_t>(max_k) + 1));
    std::vector<Index> pool(static_cast<std::size_t>(nb));
    for (Index b = 0; b < nb; ++b) pool[static_cast<std::size_t>(b)] = b;
    for (int t = 0; t < kk && t < nb; ++t) {
      const auto pick = t + rng.below(static_cast<std::uint32_t>(nb - t));
      std::swap(pool[static_cast<std::size_t>(t)], pool[pick]);
      c.benefit.push_back(pool[static_cast<std::size_t>(t)]);
      const float cost = rng.bernoulli(0.05) ? 0.0f : 0.1f + rng.uniform_float() * 2.0f;
      const float value = rng.bernoulli(0.08) ? -rng.uniform_float() : rng.uniform_float() * 3.0f;
      c.value.push_back(value);
      c.cost.push_back(cost);
      total_cost += cost;
    }
    c.offsets.push_back(static_cast<std::int64_t>(c.benefit.size()));
  }
  AllocationConstraints& k = in.k;
  k.budget = rng.bernoulli(0.1) ? std::numeric_limits<double>::infinity()
                                : total_cost * rng.uniform(0.05, 0.6);
  k.max_per_member = 1 + static_cast<int>(rng.below(3));
  if (!all_constraints) return in;
  if (rng.bernoulli(0.4)) {
    for (Index u = 0; u < n; ++u)
      k.member_capacity.push_back(static_cast<std::int32_t>(rng.below(4)));
  }
  if (rng.bernoulli(0.6)) {
    for (Index b = 0; b < nb; ++b) {
      k.inventory.push_back(rng.bernoulli(0.4) ? -1
                                               : static_cast<std::int64_t>(rng.below(
                                                     static_cast<std::uint32_t>(n / 2 + 2))));
    }
  }
  const bool kinds = rng.bernoulli(0.6);
  if (kinds) {
    k.n_kinds = 3;
    for (Index b = 0; b < nb; ++b)
      k.benefit_kind.push_back(static_cast<std::int32_t>(rng.below(3)));
    if (rng.bernoulli(0.5)) k.max_per_kind = 1;
    if (rng.bernoulli(0.3)) {
      for (Index i = 0; i < n * 3; ++i)
        k.member_kind_capacity.push_back(static_cast<std::int32_t>(rng.below(3)));
    }
    if (diversity && rng.bernoulli(0.4)) k.diversity = rng.uniform(0.0, 1.0);
  }
  if (rng.bernoulli(0.4)) {
    for (Index b = 0; b < nb; ++b)
      k.benefit_group.push_back(rng.bernoulli(0.5) ? static_cast<std::int32_t>(rng.below(2)) : -1);
  }
  if (rng.bernoulli(0.5)) {
    for (Index u = 0; u < n; ++u)
      k.member_segment.push_back(static_cast<std::int32_t>(rng.below(4)) - 1);
    k.segment_max_members = {
        rng.bernoulli(0.5)
            ? -1
            : static_cast<std::int64_t>(rng.below(static_cast<std::uint32_t>(n / 3 + 2))),
        -1, static_cast<std::int64_t>(rng.below(static_cast<std::uint32_t>(n / 2 + 2)))};
    k.segment_max_cost = {-1.0, rng.bernoulli(0.5) ? -1.0 : total_cost * rng.uniform(0.0, 0.2),
                          total_cost * rng.uniform(0.0, 0.3)};
  }
  if (rng.bernoulli(0.3)) k.min_return_per_cost = rng.uniform(0.0, 1.5);
  return in;
}

void expect_same(const Allocation& a, const Allocation& b) {
  EXPECT_EQ(a.offsets, b.offsets);
  EXPECT_EQ(a.candidate, b.candidate);
  EXPECT_EQ(a.runner_up, b.runner_up);
  EXPECT_EQ(a.runner_up_reason, b.runner_up_reason);
  EXPECT_EQ(a.value, b.value);  // bitwise: reductions in fixed order
  EXPECT_EQ(a.cost, b.cost);
  EXPECT_EQ(a.dual_bound, b.dual_bound);
  EXPECT_EQ(a.multiplier, b.multiplier);
}

// Brute force over every combination of per-member subsets (tiny instances only).
double brute_force(const Instance& in) {
  const Candidates& c = in.c;
  const Index n = c.n_users;
  std::vector<std::uint32_t> mask(static_cast<std::size_t>(n), 0);
  double best = 0.0;
  while (true) {
    Allocation a;
    a.offsets.assign(1, 0);
    for (Index u = 0; u < n; ++u) {
      const std::int64_t b0 = c.offsets[static_cast<std::size_t>(u)];
      for (std::int64_t i = b0; i < c.offsets[static_cast<std::size_t>(u) + 1]; ++i) {
        if (mask[static_cast<std::size_t>(u)] >> (i - b0) & 1u) {
          a.candidate.push_back(i);
          a.benefit.push_back(c.benefit[static_cast<std::size_t>(i)]);
          a.cost += c.cost[static_cast<std::size_t>(i)];
        }
      }
      a.offsets.push_back(static_cast<std::int64_t>(a.candidate.size()));
    }
    // value by the same rule check_allocation uses
    double value = 0.0;
    for (Index u = 0; u < n; ++u) {
      std::vector<float> vals;
      std::vector<std::int32_t> kinds;
      for (auto q = a.offsets[static_cast<std::size_t>(u)];
           q < a.offsets[static_cast<std::size_t>(u) + 1]; ++q) {
        vals.push_back(c.value[static_cast<std::size_t>(a.candidate[static_cast<std::size_t>(q)])]);
        if (!in.k.benefit_kind.empty())
          kinds.push_back(
              in.k.benefit_kind[static_cast<std::size_t>(a.benefit[static_cast<std::size_t>(q)])]);
      }
      value += member_set_value(vals, kinds, in.k.benefit_kind.empty() ? 0.0 : in.k.diversity);
    }
    a.value = value;
    if (value > best && check_allocation(c, in.k, a).empty()) best = value;
    Index u = 0;
    for (; u < n; ++u) {
      const auto len =
          c.offsets[static_cast<std::size_t>(u) + 1] - c.offsets[static_cast<std::size_t>(u)];
      if (++mask[static_cast<std::size_t>(u)] < (1u << len)) break;
      mask[static_cast<std::size_t>(u)] = 0;
    }
    if (u == n) break;
  }
  return best;
}

TEST(Allocator, KnownAnswerBudget) {
  Candidates c;
  c.n_users = 3;
  c.n_benefits = 1;
  c.offsets = {0, 1, 2, 3};
  c.benefit = {0, 0, 0};
  c.value = {10, 8, 6};
  c.cost = {5, 5, 5};
  AllocationConstraints k;
  k.budget = 10;
  for (const Allocation& a : {allocate(c, k), allocate_greedy(c, k), allocate_exact(c, k)}) {
    EXPECT_EQ(a.candidate, (std::vector<std::int64_t>{0, 1})) << a.method;
    EXPECT_DOUBLE_EQ(a.value, 18.0);
    EXPECT_DOUBLE_EQ(a.cost, 10.0);
    EXPECT_EQ(a.runner_up[2], 2);
    EXPECT_EQ(a.runner_up_reason[2], ExclusionReason::budget);
    EXPECT_EQ(a.runner_up[0], -1);
    EXPECT_EQ(check_allocation(c, k, a), "");
  }
  const Allocation d = allocate(c, k);
  EXPECT_GE(d.dual_bound, 18.0 - 1e-9);
  EXPECT_LE(d.dual_bound, 18.0 + 6.0);  // the relaxation is within one item of the optimum
  EXPECT_EQ(d.method, "dual");
}

TEST(Allocator, KnownAnswerInventoryAndStacking) {
  // Three members with the same two candidates: A (10, cost 1) and B (5, cost 1). A has one
  // unit; no budget. Optimum: one A, two B = 20.
  Candidates c;
  c.n_users = 3;
  c.n_benefits = 2;
  c.offsets = {0, 2, 4, 6};
  c.benefit = {0, 1, 0, 1, 0, 1};
  c.value = {10, 5, 10, 5, 10, 5};
  c.cost = {1, 1, 1, 1, 1, 1};
  AllocationConstraints k;
  k.inventory = {1, -1};
  const Allocation a = allocate(c, k);
  EXPECT_EQ(check_allocation(c, k, a), "");
  EXPECT_DOUBLE_EQ(a.value, 20.0);
  EXPECT_EQ(std::count(a.benefit.begin(), a.benefit.end(), 0), 1);
  int inventory_reasons = 0;
  for (auto r : a.runner_up_reason) inventory_reasons += r == ExclusionReason::inventory;
  EXPECT_EQ(inventory_reasons, 2);
  // Two slots each but A and B are non-stackable: still one benefit per member.
  k.max_per_member = 2;
  k.benefit_group = {0, 0};
  const Allocation s = allocate(c, k);
  EXPECT_EQ(check_allocation(c, k, s), "");
  EXPECT_EQ(s.candidate.size(), 3u);
  EXPECT_DOUBLE_EQ(s.value, 20.0);
  // Without the group both fit: 10 + 5 + 5 + 5 = 25.
  k.benefit_group.clear();
  EXPECT_DOUBLE_EQ(allocate(c, k).value, 25.0);
  EXPECT_DOUBLE_EQ(allocate_exact(c, k).value, 25.0);
}

TEST(Allocator, DiversityDiscount) {
  // Two benefits of the same kind, one of another: with diversity 0.5 and two slots the
  // member prefers the other kind's 6 over the same kind's 8 x 0.5 = 4.
  Candidates c;
  c.n_users = 1;
  c.n_benefits = 3;
  c.offsets = {0, 3};
  c.benefit = {0, 1, 2};
  c.value = {10, 8, 6};
  c.cost = {0, 0, 0};
  AllocationConstraints k;
  k.max_per_member = 2;
  k.benefit_kind = {0, 0, 1};
  k.n_kinds = 2;
  k.diversity = 0.5;
  const Allocation a = allocate(c, k);
  EXPECT_EQ(a.benefit, (std::vector<Index>{0, 2}));
  EXPECT_DOUBLE_EQ(a.value, 16.0);
  EXPECT_DOUBLE_EQ(allocate_exact(c, k).value, 16.0);
  EXPECT_DOUBLE_EQ(
      member_set_value(std::vector<float>{10, 8}, std::vector<std::int32_t>{0, 0}, 0.5), 14.0);
}

TEST(Allocator, AlwaysFeasibleOnRandomInstances) {
  int nonempty = 0;
  for (std::uint64_t seed = 0; seed < 300; ++seed) {
    Rng rng(seed, 3);
    const Index n = 1 + static_cast<Index>(rng.below(60));
    const Instance in = random_instance(seed, n, 6, 8);
    const Allocation d = allocate(in.c, in.k);
    const Allocation g = allocate_greedy(in.c, in.k);
    ASSERT_EQ(check_allocation(in.c, in.k, d), "") << "seed " << seed;
    ASSERT_EQ(check_allocation(in.c, in.k, g), "") << "seed " << seed;
    EXPECT_GE(d.dual_bound, d.value - 1e-9);
    nonempty += !d.candidate.empty();
    for (Index u = 0; u < n; ++u) {
      const std::int64_t ru = d.runner_up[static_cast<std::size_t>(u)];
      if (ru < 0) continue;
      EXPECT_GE(ru, in.c.offsets[static_cast<std::size_t>(u)]);
      EXPECT_LT(ru, in.c.offsets[static_cast<std::size_t>(u) + 1]);
      EXPECT_EQ(std::count(d.candidate.begin(), d.candidate.end(), ru), 0);
      EXPECT_NE(d.runner_up_reason[static_cast<std::size_t>(u)], ExclusionReason::none);
    }
  }
  EXPECT_GT(nonempty, 200);  // the instances are not trivially empty
}

TEST(Allocator, CheckAllocationCatchesViolations) {
  Instance in = random_instance(5, 30, 4, 6, false);
  in.k.budget = 1e9;
  Allocation a = allocate(in.c, in.k);
  ASSERT_EQ(check_allocation(in.c, in.k, a), "");
  ASSERT_FALSE(a.candidate.empty());
  AllocationConstraints tight = in.k;
  tight.budget = a.cost * 0.5;
  EXPECT_NE(check_allocation(in.c, tight, a).find("budget"), std::string::npos);
  AllocationConstraints inv = in.k;
  inv.inventory.assign(static_cast<std::size_t>(in.c.n_benefits), 0);
  EXPECT_NE(check_allocation(in.c, inv, a).find("not allowed"), std::string::npos);
  Allocation bad = a;
  bad.candidate[0] = in.c.size() + 5;  // not a candidate of its member
  EXPECT_NE(check_allocation(in.c, in.k, bad).find("not one of its candidates"), std::string::npos);
}

TEST(Allocator, IdenticalForAnyThreadCount) {
  for (std::uint64_t seed : {1u, 2u}) {
    Instance in = random_instance(seed + 100, 6000, 10, 40, true, seed != 1);
    if (!std::isfinite(in.k.budget)) in.k.budget = 500;
    AllocatorParams p;
    p.num_threads = 1;
    const Allocation a1 = allocate(in.c, in.k, p);
    ASSERT_EQ(check_allocation(in.c, in.k, a1), "");
    for (int t : {2, 3}) {
      p.num_threads = t;
      expect_same(a1, allocate(in.c, in.k, p));
      expect_same(allocate_greedy(in.c, in.k, 1), allocate_greedy(in.c, in.k, t));
    }
  }
}

TEST(Allocator, SampleBracketOnLargeInstance) {
  // >= 200k members takes the sampled bracket path; the result must still be feasible, spend
  // the budget and be identical for 1 and 2 threads.
  Instance in = random_instance(7, 220000, 4, 20, false);
  in.k.budget = 20000;
  in.k.max_per_member = 1;
  AllocatorParams p;
  p.num_threads = 1;
  const Allocation a = allocate(in.c, in.k, p);
  ASSERT_EQ(check_allocation(in.c, in.k, a), "");
  EXPECT_GT(a.cost, 0.999 * in.k.budget);
  EXPECT_GT(a.value, 0.995 * a.dual_bound);
  p.num_threads = 2;
  expect_same(a, allocate(in.c, in.k, p));
}

// The benchmark's shape: every member has `k` consecutive benefits (random start) out of `nb`,
// value p x (benefit value) x (member scale), cost 0.02 + p x (benefit cost), p ~ a skewed draw.
Instance shaped_instance(std::uint64_t seed, Index n, int k, Index nb) {
  Rng rng(seed, 23);
  Instance in;
  Candidates& c = in.c;
  c.n_users = n;
  c.n_benefits = nb;
  std::vector<float> b_value(static_cast<std::size_t>(nb)), b_cost(static_cast<std::size_t>(nb));
  for (Index b = 0; b < nb; ++b) {
    b_value[static_cast<std::size_t>(b)] = 2.0f + 10.0f * rng.uniform_float();
    b_cost[static_cast<std::size_t>(b)] = 0.5f + 5.5f * rng.uniform_float();
  }
  c.offsets.assign(1, 0);
  double total = 0.0;
  for (Index u = 0; u < n; ++u) {
    const auto start = static_cast<Index>(rng.below(static_cast<std::uint32_t>(nb)));
    const float scale = 0.5f + rng.uniform_float();
    for (int t = 0; t < k; ++t) {
      const Index b = (start + t) % nb;
      const float x = rng.uniform_float();
      const float p = 0.3f * x * x * x;
      c.benefit.push_back(b);
      c.value.push_back(p * b_value[static_cast<std::size_t>(b)] * scale);
      c.cost.push_back(0.02f + p * b_cost[static_cast<std::size_t>(b)]);
      total += c.cost.back();
    }
    c.offsets.push_back(static_cast<std::int64_t>(c.benefit.size()));
  }
  in.k.budget = 0.02 * total;
  in.k.inventory.assign(static_cast<std::size_t>(nb), -1);
  for (Index b = 0; b < nb; b += 10) in.k.inventory[static_cast<std::size_t>(b)] = n / 50;
  return in;
}

TEST(Allocator, InventoryPricesSettleOnLargeInstance) {
  // Past polish_entries the price rounds stop once every inventory is used within 0.5% of its
  // level (the repair and fill passes settle the last units), and with several slots a
  // member's price step is what its problem loses without the benefit. Before, the rounds
  // oscillated (halving the price of a limit just under its level) until price_rounds ran out
  // and, with two slots, stalled on a too-small step: 28 and 38 evaluations here (then 28 and
  // 30-33, by the build's floating point). Since the prices start from a 1-in-25 member sample
  // (of 1,200 members here, so noisy: 18 and 15 evaluations; on
  // bench/allocate.py's shape at 2M members: 38 and 19, then 10 and 13, now 5 and 8).
  Instance in = shaped_instance(3, 30000, 40, 100);
  ASSERT_GT(in.c.value.size(), static_cast<std::size_t>(AllocatorParams{}.polish_entries));
  AllocatorParams p;
  p.num_threads = 1;
  for (int cap : {1, 2}) {
    in.k.max_per_member = cap;
    if (cap == 2) {
      in.k.benefit_kind.resize(100);
      for (Index b = 0; b < 100; ++b) in.k.benefit_kind[static_cast<std::size_t>(b)] = b % 5;
      in.k.n_kinds = 5;
      in.k.max_per_kind = 1;
    }
    const Allocation a = allocate(in.c, in.k, p);
    ASSERT_EQ(check_allocation(in.c, in.k, a), "") << "cap " << cap;
    EXPECT_GT(a.cost, 0.999 * in.k.budget) << "cap " << cap;
    EXPECT_GT(a.value, (cap == 1 ? 0.999 : 0.99) * a.dual_bound) << "cap " << cap;
    RecordProperty(cap == 1 ? "iterations_cap1" : "iterations_cap2", a.iterations);
    EXPECT_LE(a.iterations, cap == 1 ? 22 : 20) << "cap " << cap;  // before the sample: 28, 30-33
    p.num_threads = 2;
    expect_same(a, allocate(in.c, in.k, p));
    p.num_threads = 1;
  }
}

TEST(Allocator, PresolveWithMemberLimitsAndSegmentQuotas) {
  // Past polish_entries and 25,000 members the prices start from a member sample (1 in 25,
  // limits scaled to its share), which copies the per-member limits of the sampled members:
  // capacities, kind capacities and segments with member and cost quotas. Every limit holds
  // on the full instance, and the plan is the same for 1 and 3 threads.
  Instance in = shaped_instance(11, 30000, 40, 100);
  const Index n = in.c.n_users;
  in.k.max_per_member = 2;
  in.k.benefit_kind.resize(100);
  for (Index b = 0; b < 100; ++b) in.k.benefit_kind[static_cast<std::size_t>(b)] = b % 4;
  in.k.n_kinds = 4;
  in.k.member_capacity.resize(static_cast<std::size_t>(n));
  in.k.member_kind_capacity.resize(static_cast<std::size_t>(n) * 4);
  in.k.member_segment.resize(static_cast<std::size_t>(n));
  for (Index u = 0; u < n; ++u) {
    const auto i = static_cast<std::size_t>(u);
    in.k.member_capacity[i] = u % 7 == 0 ? 1 : 2;
    for (std::size_t kd = 0; kd < 4; ++kd)
      in.k.member_kind_capacity[i * 4 + kd] = (u + kd) % 3 ? 1 : 0;
    in.k.member_segment[i] = u % 3;
  }
  in.k.segment_max_members = {n / 5, -1, -1};
  in.k.segment_max_cost = {-1.0, 0.2 * in.k.budget, -1.0};
  AllocatorParams p;
  p.num_threads = 1;
  const Allocation a = allocate(in.c, in.k, p);
  ASSERT_EQ(check_allocation(in.c, in.k, a), "");
  std::int64_t seg0 = 0;
  double seg1_cost = 0.0;
  for (Index u = 0; u < n; ++u) {
    const auto i = static_cast<std::size_t>(u);
    const std::int64_t held = a.offsets[i + 1] - a.offsets[i];
    if (u % 3 == 0 && held > 0) ++seg0;
    for (std::int64_t e = a.offsets[i]; e < a.offsets[i + 1]; ++e)
      if (u % 3 == 1)
        seg1_cost += in.c.cost[static_cast<std::size_t>(a.candidate[static_cast<std::size_t>(e)])];
  }
  EXPECT_GT(seg0, 0.98 * (n / 5));  // the quotas bind and are used
  EXPECT_GT(seg1_cost, 0.98 * 0.2 * in.k.budget);
  EXPECT_GT(a.cost, 0.999 * in.k.budget);
  EXPECT_GT(a.value, 0.97 * a.dual_bound);
  p.num_threads = 3;
  expect_same(a, allocate(in.c, in.k, p));
}

TEST(Allocator, ExactMatchesBruteForce) {
  for (std::uint64_t seed = 0; seed < 60; ++seed) {
    const Instance in = random_instance(seed + 1000, 4, 3, 4);
    const Allocation e = allocate_exact(in.c, in.k);
    ASSERT_EQ(check_allocation(in.c, in.k, e), "") << "seed " << seed;
    EXPECT_NEAR(e.value, brute_force(in), 1e-6) << "seed " << seed;
  }
}

TEST(Allocator, DualBoundsOptimumAndPlanIsNearOptimal) {
  double ratio_sum = 0.0, greedy_sum = 0.0;
  int counted = 0;
  for (std::uint64_t seed = 0; seed < 150; ++seed) {
    Rng rng(seed, 9);
    const Instance in = random_instance(seed + 5000, 8 + static_cast<Index>(rng.below(8)), 4, 6);
    const Allocation d = allocate(in.c, in.k);
    const Allocation e = allocate_exact(in.c, in.k);
    const Allocation g = allocate_greedy(in.c, in.k);
    ASSERT_EQ(check_allocation(in.c, in.k, e), "");
    const double tol = 1e-6 * std::max(1.0, e.value);
    EXPECT_GE(d.dual_bound, e.value - tol) << "seed " << seed;
    EXPECT_GE(e.value, d.value - tol) << "seed " << seed;
    EXPECT_GE(e.value, g.value - tol) << "seed " << seed;
    if (e.value > 0) {
      ratio_sum += d.value / e.value;
      greedy_sum += g.value / e.value;
      ++counted;
    }
  }
  ASSERT_GT(counted, 100);
  EXPECT_GE(ratio_sum / counted, 0.99);
  EXPECT_GE(ratio_sum, greedy_sum);
}

TEST(Allocator, BadInputNamesTheField) {
  Instance in = random_instance(3, 10, 3, 5, false);
  Candidates bad = in.c;
  bad.cost[1] = -1;
  PERKREC_EXPECT_THROW_MSG(allocate(bad, in.k), InputError, "allocate", "candidates.cost[1]");
  bad = in.c;
  bad.benefit[0] = 99;
  PERKREC_EXPECT_THROW_MSG(allocate_greedy(bad, in.k), InputError, "candidates.benefit[0]");
  bad = in.c;
  bad.value[2] = std::nanf("");
  PERKREC_EXPECT_THROW_MSG(allocate(bad, in.k), InputError, "candidates.value[2]");
  AllocationConstraints k = in.k;
  k.budget = -1;
  PERKREC_EXPECT_THROW_MSG(allocate(in.c, k), ConfigError, "budget");
  k = in.k;
  k.inventory = {1, 2};
  PERKREC_EXPECT_THROW_MSG(allocate(in.c, k), InputError, "inventory");
  AllocatorParams p;
  p.max_iterations = 0;
  PERKREC_EXPECT_THROW_MSG(allocate(in.c, in.k, p), ConfigError, "max_iterations");
  PERKREC_EXPECT_THROW_MSG(AllocatorParams::from_json(Json{{"tolerence", 1e-3}}), ConfigError,
                           "/tolerence");
  PERKREC_EXPECT_THROW_MSG(AllocatorParams::from_json(Json{{"price_rounds", -2}}), ConfigError,
                           "price_rounds");
  Instance big = random_instance(4, 200, 6, 10, false);
  big.k.max_per_member = 3;  // > 1000 member subsets alone
  PERKREC_EXPECT_THROW_MSG(allocate_exact(big.c, big.k, 1000), InputError, "too big");
}

TEST(Allocator, ParamsJsonRoundTrip) {
  AllocatorParams p;
  p.max_iterations = 12;
  p.tolerance = 1e-5;
  p.price_rounds = 3;
  p.budget_gap = 0.01;
  p.fill_rounds = 1;
  const AllocatorParams q = AllocatorParams::from_json(p.to_json());
  EXPECT_EQ(q.to_json(), p.to_json());
  PacingParams pp;
  pp.budget = 100;
  pp.start = 10;
  pp.end = 1000;
  pp.spend_curve = {0.2, 0.5, 1.0};
  EXPECT_EQ(PacingParams::from_json(pp.to_json()).to_json(), pp.to_json());
  PERKREC_EXPECT_THROW_MSG(PacingParams::from_json(Json{{"budget", 1}, {"start", 5}, {"end", 5}}),
                           ConfigError, "end");
  PERKREC_EXPECT_THROW_MSG(
      PacingParams::from_json(
          Json{{"budget", 1}, {"start", 0}, {"end", 5}, {"spend_curve", {0.5, 0.2}}}),
      ConfigError, "spend_curve[1]");
  EXPECT_DOUBLE_EQ(pp.target_share(10 + 330), 0.2);
  EXPECT_DOUBLE_EQ(pp.target_share(5000), 1.0);
  // No budget: the key is absent and reads back as infinite.
  const PacingParams open = PacingParams::from_json(Json{{"start", 0}, {"end", 5}});
  EXPECT_TRUE(std::isinf(open.budget));
  EXPECT_FALSE(open.to_json().contains("budget"));
  EXPECT_TRUE(std::isinf(PacingParams::from_json(open.to_json()).budget));
  PERKREC_EXPECT_THROW_MSG(PacingParams::from_json(Json{{"budget", -1}, {"start", 0}, {"end", 5}}),
                           ConfigError, "budget");
  PERKREC_EXPECT_THROW_MSG(
      PacingParams::from_json(Json{{"budget", 1}, {"start", 0}, {"end", 5}, {"pace", true}}),
      ConfigError, "pace");
}

struct Arrival {
  Index member;
  Timestamp t;
  std::vector<Index> benefit;
  std::vector<float> value, cost;
};

std::vector<Arrival> arrivals(std::uint64_t seed, int n, Index nb, Timestamp day) {
  Rng rng(seed, 1);
  std::vector<Arrival> out;
  for (int i = 0; i < n; ++i) {
    Arrival a;
    a.member = static_cast<Index>(i);
    a.t = static_cast<Timestamp>(static_cast<double>(i) / n * static_cast<double>(day));
    for (Index b = 0; b < 5; ++b) {
      a.benefit.push_back(static_cast<Index>(
          (static_cast<Index>(rng.below(static_cast<std::uint32_t>(nb / 5))) * 5 + b) % nb));
      a.value.push_back(rng.uniform_float());
      a.cost.push_back(0.1f + rng.uniform_float());
    }
    out.push_back(std::move(a));
  }
  return out;
}

TEST(Pacer, FollowsTheBudgetCurveAndNeverOverspends) {
  const Timestamp day = 86400;
  const auto stream = arrivals(11, 20000, 20, day);
  AllocationConstraints k;
  k.max_per_member = 2;
  PacingParams pp;
  pp.budget = 1500;  // demand at lambda = 0 is ~ 20000 x 1.1: pacing must throttle
  pp.start = 0;
  pp.end = day;
  Pacer pacer(k, pp);
  double at_half = 0.0, max_multiplier = 0.0;
  for (std::size_t i = 0; i < stream.size(); ++i) {
    const Arrival& a = stream[i];
    const auto chosen = pacer.decide(a.member, a.t, a.benefit, a.value, a.cost);
    EXPECT_LE(chosen.size(), 2u);
    EXPECT_LE(pacer.spent(), pp.budget + 1e-9);
    max_multiplier = std::max(max_multiplier, pacer.multiplier());
    if (i == stream.size() / 2) at_half = pacer.spent();
  }
  EXPECT_NEAR(at_half, 0.5 * pp.budget, 0.05 * pp.budget);
  EXPECT_GE(pacer.spent(), 0.95 * pp.budget);
  EXPECT_EQ(pacer.decisions(), 20000);
  EXPECT_GT(max_multiplier, 0.0);  // it throttled
  // A front-loaded curve spends more by midday.
  pp.spend_curve = {0.5, 0.8, 0.9, 1.0};
  Pacer front(k, pp);
  for (std::size_t i = 0; i <= stream.size() / 2; ++i) {
    front.decide(stream[i].member, stream[i].t, stream[i].benefit, stream[i].value, stream[i].cost);
  }
  EXPECT_NEAR(front.spent(), 0.8 * pp.budget, 0.06 * pp.budget);
}

// The worst interleaving several threads can produce: each thread's share of the day is
// decided in one run, the next thread starting again at the beginning of the day. Demand is
// 1.4x the budget, so no single thread can spend it. Read at each request's own time, the
// curve would show the later threads far ahead and they would refuse most of their arrivals
// (about 82% of the budget in all by a rough count; this test fails on that code); read at
// the latest time seen, they spend the rest.
TEST(Pacer, OutOfOrderArrivalsStillSpendTheBudget) {
  const Timestamp day = 86400;
  const auto stream = arrivals(13, 8000, 20, day);
  double demand = 0.0;  // what lambda = 0 takes: each member's most valuable candidate
  for (const Arrival& a : stream) {
    demand += a.cost[static_cast<std::size_t>(std::max_element(a.value.begin(), a.value.end()) -
                                              a.value.begin())];
  }
  AllocationConstraints k;
  k.max_per_member = 1;
  PacingParams pp;
  pp.budget = demand / 1.4;
  pp.start = 0;
  pp.end = day;
  Pacer pacer(k, pp);
  for (std::size_t t = 0; t < 4; ++t) {
    for (std::size_t i = t; i < stream.size(); i += 4) {
      pacer.decide(stream[i].member, stream[i].t, stream[i].benefit, stream[i].value,
                   stream[i].cost);
    }
  }
  EXPECT_LE(pacer.spent(), pp.budget + 1e-9);
  EXPECT_GE(pacer.spent(), 0.97 * pp.budget);
}

// Limited benefits follow the curve: a unit is priced at gain x (mean value ~0.5) = 1 per 1%
// of the inventory used ahead of the curve and values are below 1, so after every decision a
// benefit has used at most its curve share of the inventory + 1% + the one unit that decision
// adds (2.5% allowed here); without inventory pacing the first arrivals take every unit
// before midday.
TEST(Pacer, InventoryLastsThePeriod) {
  const Timestamp day = 86400;
  const Index nb = 20;
  const auto stream = arrivals(14, 20000, nb, day);
  AllocationConstraints k;
  k.max_per_member = 2;
  k.inventory.assign(static_cast<std::size_t>(nb), 150);  // 3000 units for ~20000 x 2 wanted
  k.inventory[3] = -1;                                    // unlimited
  PacingParams pp;                                        // no budget: only inventory binds
  pp.start = 0;
  pp.end = day;
  for (bool paced : {true, false}) {
    pp.pace_inventory = paced;
    Pacer pacer(k, pp);
    std::vector<std::int64_t> used(static_cast<std::size_t>(nb), 0);
    std::int64_t limited_at_noon = 0, unlimited = 0, over_curve = 0;
    for (std::size_t i = 0; i < stream.size(); ++i) {
      const Arrival& a = stream[i];
      for (std::int32_t j : pacer.decide(a.member, a.t, a.benefit, a.value, a.cost)) {
        const Index b = a.benefit[static_cast<std::size_t>(j)];
        ++used[static_cast<std::size_t>(b)];
        if (b == 3) ++unlimited;
      }
      const double share = pp.target_share(a.t);
      for (Index b = 0; b < nb; ++b) {
        const auto u = used[static_cast<std::size_t>(b)];
        if (b != 3) {
          EXPECT_LE(u, 150) << "benefit " << b;
          over_curve += static_cast<double>(u) > (share + 0.025) * 150.0 + 1.0;
        }
      }
      if (i + 1 == stream.size() / 2) {
        for (Index b = 0; b < nb; ++b)
          limited_at_noon += b == 3 ? 0 : used[static_cast<std::size_t>(b)];
      }
    }
    std::int64_t limited_total = 0;
    for (Index b = 0; b < nb; ++b) limited_total += b == 3 ? 0 : used[static_cast<std::size_t>(b)];
    if (paced) {
      EXPECT_EQ(over_curve, 0);
      EXPECT_NEAR(static_cast<double>(limited_at_noon), 0.5 * 19 * 150, 0.03 * 19 * 150);
      EXPECT_GE(limited_total, static_cast<std::int64_t>(0.97 * 19 * 150));
      EXPECT_GT(unlimited, 0);
      EXPECT_EQ(pacer.multiplier(), 0.0);
      EXPECT_GT(pacer.spent(), 0.0);
    } else {
      EXPECT_EQ(limited_at_noon, 19 * 150) << "first come, first served: gone by midday";
    }
  }
}

TEST(Pacer, ConcurrentDecisionsKeepEveryLimit) {
  const Timestamp day = 86400;
  const Index nb = 20;
  const auto stream = arrivals(12, 8000, nb, day);
  AllocationConstraints k;
  k.max_per_member = 2;
  k.inventory.assign(static_cast<std::size_t>(nb), 60);
  k.benefit_group.assign(static_cast<std::size_t>(nb), -1);
  k.benefit_group[0] = k.benefit_group[1] = 0;
  k.member_segment.assign(2000, 0);
  k.segment_max_members = {700};
  PacingParams pp;
  pp.budget = 900;
  pp.start = 0;
  pp.end = day;
  Pacer pacer(k, pp);
  std::vector<std::vector<std::pair<Index, Index>>> issued(4);  // (member, benefit)
  std::vector<double> cost(4, 0.0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (std::size_t i = static_cast<std::size_t>(t); i < stream.size(); i += 4) {
        const Arrival& a = stream[i];
        const Index member = a.member % 2000;  // members come back several times
        for (std::int32_t j : pacer.decide(member, a.t, a.benefit, a.value, a.cost)) {
          issued[static_cast<std::size_t>(t)].emplace_back(member,
                                                           a.benefit[static_cast<std::size_t>(j)]);
          cost[static_cast<std::size_t>(t)] += a.cost[static_cast<std::size_t>(j)];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  std::map<Index, int> per_benefit;
  std::map<Index, std::vector<Index>> per_member;
  double total = 0.0;
  for (int t = 0; t < 4; ++t) {
    total += cost[static_cast<std::size_t>(t)];
    for (auto [m, b] : issued[static_cast<std::size_t>(t)]) {
      ++per_benefit[b];
      per_member[m].push_back(b);
    }
  }
  EXPECT_LE(pacer.spent(), pp.budget + 1e-9);
  EXPECT_NEAR(total, pacer.spent(), 1e-6 * pp.budget);
  for (auto [b, n] : per_benefit) EXPECT_LE(n, 60) << "benefit " << b;
  EXPECT_LE(per_member.size(), 700u);
  for (const auto& [m, bs] : per_member) {
    EXPECT_LE(bs.size(), 2u);
    EXPECT_LE(std::count(bs.begin(), bs.end(), 0) + std::count(bs.begin(), bs.end(), 1), 1);
    std::vector<Index> sorted = bs;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end());
  }
  EXPECT_EQ(pacer.decisions(), 8000);
  EXPECT_GT(pacer.issued(), 100);
}

PacingParams pacing(double budget, Timestamp end) {
  PacingParams pp;
  pp.budget = budget;
  pp.start = 0;
  pp.end = end;
  return pp;
}

TEST(Pacer, MaxNewLimitsOneCall) {
  AllocationConstraints k;
  k.max_per_member = 3;
  Pacer pacer(k, pacing(100, 100));
  const std::vector<Index> b{4, 5, 6, 7};
  const std::vector<float> v{0.5f, 2.0f, 1.0f, 1.5f}, c{0.1f, 0.1f, 0.1f, 0.1f};
  EXPECT_TRUE(pacer.decide(0, 50, b, v, c, 0).empty());
  EXPECT_EQ(pacer.decide(0, 50, b, v, c, 2),
            (std::vector<std::int32_t>{1, 3}));  // the two best, ascending
  EXPECT_EQ(pacer.decide(0, 50, b, v, c, 5),
            (std::vector<std::int32_t>{2}));  // the member's cap: 1 left
  EXPECT_EQ(pacer.decide(1, 50, b, v, c),
            (std::vector<std::int32_t>{1, 2, 3}));  // -1: up to the cap
  EXPECT_EQ(pacer.issued(), 6);
  PERKREC_EXPECT_THROW_MSG(pacer.decide(2, 50, b, v, c, -2), InputError, "max_new");
  EXPECT_EQ(pacer.decisions(), 4);  // the refused call changed nothing
}

// Every candidate left out gets the limit that stopped it, judged at the decision itself.
TEST(Pacer, ReasonsNameTheLimit) {
  using R = ExclusionReason;
  AllocationConstraints k;
  k.max_per_member = 3;
  k.min_return_per_cost = 0.5;
  k.inventory = {-1, 0, -1, -1, -1, -1, -1};
  k.benefit_group = {-1, -1, 0, 0, -1, -1, -1};
  k.benefit_kind = {0, 0, 0, 1, 2, 2, 0};
  k.n_kinds = 3;
  k.max_per_kind = 1;
  Pacer pacer(k, pacing(10, 100));
  // 0: best of kind 0; 1: sold out; 2: same kind as 0; 3: stacking group of 2 -> issued (2 lost
  // on kind first); 4: kind 2, issued; 5: kind 2 again but the cap of 3 is reached first;
  // 6: value 0.
  const std::vector<Index> b{0, 1, 2, 3, 4, 5, 6};
  const std::vector<float> v{9, 8, 7, 6, 5, 4, 0}, c{1, 1, 1, 1, 1, 1, 1};
  std::vector<R> why;
  EXPECT_EQ(pacer.decide(0, 100, b, v, c, -1, &why), (std::vector<std::int32_t>{0, 3, 4}));
  EXPECT_EQ(why, (std::vector<R>{R::none, R::inventory, R::kind_cap, R::none, R::none,
                                 R::member_cap, R::not_positive}));
  // Member 1: 0.4 per unit cost is below the minimum return; the budget has 7 left.
  const std::vector<Index> b1{0, 3};
  const std::vector<float> v1{0.4f, 60}, c1{1, 8};
  EXPECT_TRUE(pacer.decide(1, 100, b1, v1, c1, -1, &why).empty());
  EXPECT_EQ(why, (std::vector<R>{R::min_return, R::budget}));
  // A request limit reads as member_cap; a held benefit too.
  EXPECT_EQ(pacer.decide(2, 100, b, v, c, 1, &why), (std::vector<std::int32_t>{0}));
  EXPECT_EQ(why[3], R::member_cap);
  EXPECT_TRUE(pacer
                  .decide(2, 100, std::vector<Index>{0}, std::vector<float>{9},
                          std::vector<float>{1}, -1, &why)
                  .empty());
  EXPECT_EQ(why, (std::vector<R>{R::member_cap}));
}

TEST(Pacer, BadInput) {
  AllocationConstraints k;
  PacingParams pp = pacing(10, 100);
  Pacer pacer(k, pp);
  const std::vector<Index> b{0, 1};
  const std::vector<float> v{1, 1}, c{1, -1}, short_v{1};
  PERKREC_EXPECT_THROW_MSG(pacer.decide(0, 1, b, v, c), InputError, "cost[1]");
  PERKREC_EXPECT_THROW_MSG(pacer.decide(0, 1, b, short_v, v), InputError, "entries");
  pp.budget = -1;
  PERKREC_EXPECT_THROW_MSG(Pacer(k, pp), ConfigError, "budget");
}

}  // namespace
}  // namespace perkrec
