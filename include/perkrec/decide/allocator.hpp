// The Allocator: from Candidates (top-K eligible benefits per member with expected value and
// expected cost) to an issuable plan (Allocation) that respects every AllocationConstraints
// limit exactly: the global budget on expected cost, per-benefit inventory, per-member
// capacity, per-member kind caps, non-stackable groups, per-segment quotas (members and cost)
// and the minimum return per unit cost.
//
// The problem is a multiple-choice knapsack over members. `allocate` solves it through its
// Lagrangian dual:
//   1. prices: lambda on the budget, mu_b on each benefit's inventory, nu_s on a segment's
//      cost quota and rho_s on a segment's member quota. Given the prices every member solves
//      its own small problem (greedy on value - (lambda + nu_s) x cost - mu_b under its caps,
//      kind caps, stacking groups and diversity discounts; a member takes nothing when its
//      total adjusted value does not exceed rho_s);
//   2. the budget multiplier is found by a bracketed search (bisection with regula-falsi
//      steps) on the total spend; on large instances a strided member sample brackets it first;
//   3. price rounds raise mu / rho to the marginal member's advantage where inventory or a
//      member quota is over-used, scale nu where a cost quota is, and relax unused prices (a
//      member's advantage: with one slot, the held entry's edge over its best other entry;
//      with several, what its problem loses without the benefit). On instances past
//      `polish_entries` a limit used within 0.5% of its level counts as met, later rounds
//      start the search from the last lambda (first probing where the last search's slope of
//      the spend puts the budget), and an inventory priced but used below its band drops its
//      price by what the members who could take it gain (elsewhere the price halves). With
//      at least 25,000 members there, the rounds first run on a strided sample of 1 in 25
//      members with every limit scaled to its share, and the rounds on all members start
//      from its prices (usually two full rounds of 2-5 evaluations each);
//   4. a repair pass (chosen entries in order of adjusted value, ties by position) drops what
//      does not fit so every constraint holds exactly;
//   5. a fill pass spends any slack: per member the best addition or swap, applied in order of
//      value gained per unit of extra cost while they fit;
//   6. on small instances (AllocatorParams::polish_entries) steps 4-5 also run from the other
//      multipliers the search tried and from the value-per-cost greedy plan; the best is kept.
// `Allocation::dual_bound` is the smallest Lagrangian dual value seen, each computed with a
// relaxation of the per-member problem (top-capacity adjusted values, ignoring stacking groups,
// kind caps and diversity discounts), so it is a true upper bound of the integer optimum.
//
// Determinism: members are processed in fixed blocks and every floating-point reduction adds
// the block results in block order, so the plan is identical for any thread count.
//
// Example:
//   perkrec::AllocationConstraints k;
//   k.budget = 50000;
//   k.max_per_member = 2;
//   perkrec::Allocation plan = perkrec::allocate(candidates, k);
//   assert(perkrec::check_allocation(candidates, k, plan).empty());
//
// The exact solver (allocator_exact.hpp), the checker (allocation_check.hpp) and the online
// Pacer (pacer.hpp) have headers of their own.
//
// Thread safety: the free functions are reentrant.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/json.hpp"
#include "perkrec/core/params.hpp"
#include "perkrec/core/progress.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/decide/types.hpp"

namespace perkrec {

/// A borrowed Candidates (nothing copied): the allocator's functions take this so that large
/// candidate arrays (numpy, memory maps) need not be copied into a Candidates first.
struct CandidatesView {
  Index n_users = 0;
  Index n_benefits = 0;
  Span<const std::int64_t> offsets;  ///< n_users + 1
  Span<const Index> benefit;
  Span<const float> value;
  Span<const float> cost;

  CandidatesView() = default;
  CandidatesView(const Candidates& c)  // NOLINT: implicit by design
      : n_users(c.n_users),
        n_benefits(c.n_benefits),
        offsets(c.offsets),
        benefit(c.benefit),
        value(c.value),
        cost(c.cost) {}
  std::int64_t size() const { return static_cast<std::int64_t>(benefit.size()); }
  /// Same checks as Candidates::validate (shapes, ids, finite values, costs >= 0), in parallel.
  void validate(const char* context, int num_threads = 0) const;
};

struct AllocatorParams {
  int max_iterations = 60;   ///< multiplier-search evaluations per price round, >= 1
  double tolerance = 1e-7;   ///< the search stops when hi - lo <= tolerance x hi, in (0, 1)
  int price_rounds = 8;      ///< inventory / segment-quota price rounds (on a large instance
                             ///< this many on the member sample, then on all), >= 0
  int num_threads = 0;       ///< 0 = OpenMP default
  double budget_gap = 1e-4;  ///< the search also stops when the spend at the feasible
                             ///< multiplier is within budget_gap x budget of the budget (the
                             ///< fill pass spends the rest), in [0, 1)
  int fill_rounds = 4;       ///< rounds of the fill pass (one move per member each), >= 0
  std::int64_t polish_entries =
      1 << 20;  ///< instances with at most this many candidate
                ///< entries are also completed (repair + fill) from every other
                ///< multiplier the last search tried and from the value-per-cost
                ///< greedy plan; the best plan is kept. 0 = never

  static auto param_fields() {
    using P = AllocatorParams;
    return std::make_tuple(
        params::field("max_iterations", &P::max_iterations, params::at_least(1)),
        params::field("tolerance", &P::tolerance, params::open(0, 1)),
        params::field("price_rounds", &P::price_rounds, params::at_least(0)),
        params::field("num_threads", &P::num_threads, params::threads()),
        params::field("budget_gap", &P::budget_gap, params::closed_open(0, 1)),
        params::field("fill_rounds", &P::fill_rounds, params::at_least(0)),
        params::field("polish_entries", &P::polish_entries, params::at_least(0)));
  }
  void validate() const;
  Json to_json() const;
  /// Strict: unknown keys and bad values throw ConfigError naming the JSON pointer.
  static AllocatorParams from_json(const Json& j);
};

/// The budget-constrained plan by the Lagrangian dual (see the file comment). Validates the
/// candidates (InputError) and constraints (InputError / ConfigError naming the field) first.
/// Never allocates a candidate not in `c`; `check_allocation(c, k, result)` is always "".
Allocation allocate(const CandidatesView& c, const AllocationConstraints& k,
                    const AllocatorParams& p = {}, const Callbacks& cb = {});

/// Baseline: every allowed candidate in order of value per unit cost (free ones first, ties by
/// position), taken while it fits. Deterministic; `num_threads` runs the per-member passes.
Allocation allocate_greedy(const CandidatesView& c, const AllocationConstraints& k,
                           int num_threads = 0);

/// Value of one member's chosen set under the diversity discount: per kind, the best value
/// counts in full and every further one x (1 - diversity). `kinds` may be empty (no kinds).
double member_set_value(Span<const float> values, Span<const std::int32_t> kinds, double diversity);

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/decide/allocator_impl.hpp"
#endif
