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
//      member quota is over-used, scale nu where a cost quota is, and relax unused prices;
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
// Thread safety: the free functions are reentrant; Pacer::decide may be called from many
// threads at once (it serialises on an internal mutex).
#pragma once

#include <cstdint>
#include <limits>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/json.hpp"
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
      : n_users(c.n_users), n_benefits(c.n_benefits), offsets(c.offsets), benefit(c.benefit),
        value(c.value), cost(c.cost) {}
  std::int64_t size() const { return static_cast<std::int64_t>(benefit.size()); }
  /// Same checks as Candidates::validate (shapes, ids, finite values, costs >= 0), in parallel.
  void validate(const char* context, int num_threads = 0) const;
};

struct AllocatorParams {
  int max_iterations = 60;    ///< multiplier-search evaluations per price round, >= 1
  double tolerance = 1e-7;    ///< the search stops when hi - lo <= tolerance x hi, in (0, 1)
  int price_rounds = 8;       ///< inventory / segment-quota price rounds, >= 0
  int num_threads = 0;        ///< 0 = OpenMP default
  double budget_gap = 1e-4;   ///< the search also stops when the spend at the feasible
                              ///< multiplier is within budget_gap x budget of the budget (the
                              ///< fill pass spends the rest), in [0, 1)
  int fill_rounds = 4;        ///< rounds of the fill pass (one move per member each), >= 0
  std::int64_t polish_entries = 1 << 20;  ///< instances with at most this many candidate
                              ///< entries are also completed (repair + fill) from every other
                              ///< multiplier the last search tried and from the value-per-cost
                              ///< greedy plan; the best plan is kept. 0 = never

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

/// The integer optimum by depth-first branch and bound over members (subsets of each member's
/// candidates, bounded by the Lagrangian relaxation of the rest). For small instances: throws
/// InputError when more than `max_nodes` nodes would be needed. dual_bound = value (proven).
Allocation allocate_exact(const CandidatesView& c, const AllocationConstraints& k,
                          std::int64_t max_nodes = 10'000'000);

/// "" when `a` is a valid allocation of `c` under `k` (every chosen entry is a candidate of
/// its member, no duplicates, and budget, inventory, member capacity, kind caps, stacking
/// groups, segment quotas and min_return_per_cost hold; value and cost match the entries),
/// else a description of the first violation.
std::string check_allocation(const CandidatesView& c, const AllocationConstraints& k,
                             const Allocation& a);

/// Value of one member's chosen set under the diversity discount: per kind, the best value
/// counts in full and every further one x (1 - diversity). `kinds` may be empty (no kinds).
double member_set_value(Span<const float> values, Span<const std::int32_t> kinds, double diversity);

struct PacingParams {
  double budget = std::numeric_limits<double>::infinity();  ///< total expected cost allowed over
                                     ///< [start, end], >= 0; infinite (JSON: key absent) = no
                                     ///< budget, only inventory, caps and quotas are paced
  Timestamp start = 0;
  Timestamp end = 0;                 ///< > start
  std::vector<double> spend_curve;   ///< cumulative share of the budget at the end of each of
                                     ///< spend_curve.size() equal steps over [start, end]
                                     ///< (non-decreasing, in [0, 1]); empty = linear
  double initial_multiplier = 0.0;   ///< lambda at the start (value per unit cost), >= 0
  double gain = 2.0;                 ///< lambda moves by gain x (mean value/cost seen) per 1%
                                     ///< of the budget that spend is ahead of the curve, >= 0
  bool pace_inventory = true;        ///< benefits with a limited inventory follow the same
                                     ///< curve: a benefit whose used share of its inventory is
                                     ///< ahead of the curve costs gain x (mean value seen) per
                                     ///< 1% ahead, so its units last the period instead of
                                     ///< going to the first arrivals; false = first come,
                                     ///< first served

  void validate() const;
  Json to_json() const;
  /// Strict: unknown keys and bad values throw ConfigError naming the JSON pointer.
  static PacingParams from_json(const Json& j);
  /// The budget share the curve allows by time t (0 before start, the last point after end).
  double target_share(Timestamp t) const;
};

/// Online pacing: members arrive one at a time during the day; decide() picks that member's
/// benefits with a multiplier lambda set from how far spend is ahead of (or behind) the budget
/// curve: a candidate is taken when value - lambda x cost - mu_b > 0, best first, while the member's
/// capacity, kind caps, stacking groups, inventory, segment quotas and the budget allow (mu_b
/// is benefit b's inventory price, see PacingParams::pace_inventory; 0 without a limit). The
/// budget, inventory and quotas are never exceeded. A member may be decided several times;
/// its earlier benefits count against its caps. The curve is read at the latest time seen so
/// far: a request whose t is earlier than one already decided (threads answering out of
/// order) is paced as of that later time.
/// Thread safety: decide() and the accessors may be called from many threads at once.
class Pacer {
 public:
  Pacer(const AllocationConstraints& k, PacingParams p);

  /// Returns the chosen positions in the given candidate arrays, ascending. `member` indexes
  /// the per-member constraint vectors (when present). At most `max_new` benefits are issued
  /// by this call (-1: as many as the member's caps allow), so a request for n benefits is one
  /// call. `reasons` (optional) receives one entry per candidate: none for the issued ones,
  /// else why not (not_positive, min_return, below_multiplier, inventory — sold out or priced
  /// out by inventory pacing —, member_cap — the member's cap, max_new, or held already —,
  /// budget, stacking, kind_cap, segment_quota). InputError for mismatched arrays, non-finite
  /// values or negative costs, a member out of range or max_new < -1.
  std::vector<std::int32_t> decide(Index member, Timestamp t, Span<const Index> benefit,
                                   Span<const float> value, Span<const float> cost, int max_new = -1,
                                   std::vector<ExclusionReason>* reasons = nullptr);

  double spent() const;
  double multiplier() const;
  std::int64_t decisions() const;
  std::int64_t issued() const;
  const PacingParams& params() const { return params_; }

 private:
  struct MemberState {
    std::vector<Index> benefits;  // issued so far
  };
  double update_multiplier_locked(Timestamp t);

  AllocationConstraints k_;
  PacingParams params_;
  mutable std::mutex mutex_;
  double spent_ = 0.0;
  double lambda_ = 0.0;
  Timestamp clock_ = 0;  // latest decision time seen (the curve never moves back)
  double ratio_sum_ = 0.0;
  std::int64_t ratio_count_ = 0;
  double value_sum_ = 0.0;
  std::int64_t value_count_ = 0;
  std::int64_t decisions_ = 0;
  std::int64_t issued_ = 0;
  std::vector<std::int64_t> inventory_used_;
  std::vector<std::int64_t> segment_members_;
  std::vector<double> segment_cost_;
  std::unordered_map<Index, MemberState> members_;
};

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/decide/allocator_impl.hpp"
#endif
