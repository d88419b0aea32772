// Shared types of the decision layer (decide/): what the Policy compiles into, what the Ranker
// hands to the Allocator, and what the Allocator returns.
//
//   Policy (policy.hpp)  --compile-->  EligibilityMasks + AllocationConstraints
//   Ranker (ranker.hpp)  --rank------>  Candidates (top-K eligible benefits per member, with
//                                        expected value and expected cost)
//   Allocator (allocator.hpp) --allocate--> Allocation (the plan: which member gets which
//                                        candidates, within budget / inventory / caps / quotas)
//
// Money: every value and cost is in the program's currency. A candidate's `cost` is the
// *expected* cost of issuing it (issue cost + P(redemption) x cost per redemption); budgets,
// per-segment cost quotas and the minimum return per unit cost apply to expected cost.
//
// Thread safety: plain data; const access from many threads is safe.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/error.hpp"
#include "perkrec/core/types.hpp"

namespace perkrec {

/// Why a benefit was not given to a member (explanations). Codes are stable (saved in plans).
enum class ExclusionReason : std::uint8_t {
  none = 0,              ///< allocated, or not excluded
  ineligible = 1,        ///< an eligibility rule of the policy (see `rule` for which)
  below_multiplier = 2,  ///< its value per unit cost was below the budget's shadow price
  budget = 3,            ///< the global budget ran out (repair pass)
  inventory = 4,         ///< the benefit's inventory ran out
  member_cap = 5,        ///< the member already holds / receives the most benefits allowed
  kind_cap = 6,          ///< the member's cap for that benefit kind is reached
  stacking = 7,          ///< a non-stackable benefit of the same group was chosen instead
  segment_quota = 8,     ///< the member's segment quota (members or cost) is used up
  min_return = 9,        ///< expected return per unit cost below the policy's minimum
  frequency_cap = 10,    ///< the member was contacted too often recently
  not_positive = 11,     ///< expected value minus cost is not positive
};

/// Lower-case name of a reason ("budget", "inventory", ...).
inline const char* exclusion_reason_name(ExclusionReason r) {
  switch (r) {
    case ExclusionReason::none:
      return "none";
    case ExclusionReason::ineligible:
      return "ineligible";
    case ExclusionReason::below_multiplier:
      return "below_multiplier";
    case ExclusionReason::budget:
      return "budget";
    case ExclusionReason::inventory:
      return "inventory";
    case ExclusionReason::member_cap:
      return "member_cap";
    case ExclusionReason::kind_cap:
      return "kind_cap";
    case ExclusionReason::stacking:
      return "stacking";
    case ExclusionReason::segment_quota:
      return "segment_quota";
    case ExclusionReason::min_return:
      return "min_return";
    case ExclusionReason::frequency_cap:
      return "frequency_cap";
    case ExclusionReason::not_positive:
      return "not_positive";
  }
  return "unknown";
}

/// Per-member eligibility, compiled once from a policy. Members that share the same values of
/// every attribute the rules look at share one bitset ("mask") over the catalog, so memory is
/// n_masks x n_benefits bits + one int32 per member, and a check is one load and a bit test.
/// For every mask and ineligible benefit, `rule(mask, b)` names the first rule that excluded it
/// (an index into the policy's rule list, or -1 when eligible).
class EligibilityMasks {
 public:
  EligibilityMasks() = default;
  /// Everyone eligible for everything (one mask).
  EligibilityMasks(Index n_users, Index n_benefits)
      : n_users_(n_users),
        n_benefits_(n_benefits),
        words_((n_benefits + 63) / 64),
        member_mask_(static_cast<std::size_t>(n_users), 0) {
    add_mask(std::vector<std::int32_t>(static_cast<std::size_t>(n_benefits), -1));
  }

  Index n_users() const { return n_users_; }
  Index n_benefits() const { return n_benefits_; }
  Index n_masks() const {
    return static_cast<Index>(rule_.size() /
                              static_cast<std::size_t>(n_benefits_ > 0 ? n_benefits_ : 1));
  }
  Index words_per_row() const { return words_; }

  /// Mask id of member u.
  Index mask_of(Index u) const { return member_mask_[static_cast<std::size_t>(u)]; }
  /// Bit row of a mask (words_per_row() words; bit b set = eligible).
  const std::uint64_t* mask_bits(Index mask) const {
    return bits_.data() + static_cast<std::size_t>(mask) * static_cast<std::size_t>(words_);
  }
  const std::uint64_t* row(Index u) const { return mask_bits(mask_of(u)); }
  bool eligible(Index u, Index b) const { return (row(u)[b >> 6] >> (b & 63)) & 1u; }
  /// The rule that made benefit b ineligible under `mask`, or -1 when eligible.
  std::int32_t rule(Index mask, Index b) const {
    return rule_[static_cast<std::size_t>(mask) * static_cast<std::size_t>(n_benefits_) +
                 static_cast<std::size_t>(b)];
  }
  std::int32_t user_rule(Index u, Index b) const { return rule(mask_of(u), b); }
  [[deprecated("use user_rule")]] std::int32_t member_rule(Index u, Index b) const {
    return user_rule(u, b);
  }

  /// Building: adds a mask given, per benefit, the excluding rule (-1 = eligible); returns its
  /// id. Assigns members to masks with set_user_mask.
  Index add_mask(const std::vector<std::int32_t>& rule_per_benefit) {
    if (static_cast<Index>(rule_per_benefit.size()) != n_benefits_) {
      detail::raise<InputError>("EligibilityMasks::add_mask: rule_per_benefit has ",
                                rule_per_benefit.size(), " entries (expected ", n_benefits_, ")");
    }
    const Index id = n_benefits_ > 0
                         ? static_cast<Index>(rule_.size() / static_cast<std::size_t>(n_benefits_))
                         : static_cast<Index>(bits_.size());
    bits_.resize(bits_.size() + static_cast<std::size_t>(words_ > 0 ? words_ : 0), 0);
    std::uint64_t* w =
        bits_.data() + static_cast<std::size_t>(id) * static_cast<std::size_t>(words_);
    for (Index b = 0; b < n_benefits_; ++b) {
      if (rule_per_benefit[static_cast<std::size_t>(b)] < 0)
        w[b >> 6] |= std::uint64_t{1} << (b & 63);
    }
    rule_.insert(rule_.end(), rule_per_benefit.begin(), rule_per_benefit.end());
    if (n_benefits_ == 0) bits_.push_back(0);  // keep ids distinct for an empty catalog
    return id;
  }
  void set_user_mask(Index u, Index mask) {
    if (u < 0 || u >= n_users_ || mask < 0 || mask >= n_masks()) {
      detail::raise<InputError>("EligibilityMasks::set_user_mask: user ", u, " or mask ", mask,
                                " out of range (", n_users_, " members, ", n_masks(), " masks)");
    }
    member_mask_[static_cast<std::size_t>(u)] = mask;
  }
  /// The mask id of each member (n_users entries).
  const std::vector<std::int32_t>& user_masks() const { return member_mask_; }
  [[deprecated("use set_user_mask")]] void set_member_mask(Index u, Index mask) {
    set_user_mask(u, mask);
  }
  [[deprecated("use user_masks")]] const std::vector<std::int32_t>& member_masks() const {
    return user_masks();
  }

  /// Masks from a dense members x benefits 0/1 matrix (row-major, non-zero = eligible): one
  /// mask per distinct row, in order of first appearance after the all-eligible mask 0; an
  /// excluded pair gets rule 0. Throws InputError when `eligible` does not hold n_users x
  /// n_benefits entries. Cost O(n_users x n_benefits) time, O(distinct rows x n_benefits) memory.
  static EligibilityMasks from_dense(Span<const std::uint8_t> eligible, Index n_users,
                                     Index n_benefits);
  /// The dense members x benefits 0/1 matrix (row-major): from_dense's inverse.
  std::vector<std::uint8_t> dense() const;

 private:
  Index n_users_ = 0;
  Index n_benefits_ = 0;
  Index words_ = 0;
  std::vector<std::uint64_t> bits_;        // n_masks x words_
  std::vector<std::int32_t> rule_;         // n_masks x n_benefits_
  std::vector<std::int32_t> member_mask_;  // n_users_
};

/// The Ranker's output and the Allocator's input: for each member (CSR by member, rows in
/// member order) the candidate benefits with their expected value and expected cost.
/// `probability` (redemption probability) and `score` (the ranking key) are for reporting and
/// may be empty. Entries of a row are sorted by decreasing `value - cost`.
struct Candidates {
  Index n_users = 0;
  Index n_benefits = 0;
  std::vector<std::int64_t> offsets{0};  ///< n_users + 1
  std::vector<Index> benefit;
  std::vector<float> value;        ///< expected return of issuing (incremental or redemption)
  std::vector<float> cost;         ///< expected cost of issuing, >= 0
  std::vector<float> probability;  ///< redemption probability, or empty
  std::int64_t size() const { return static_cast<std::int64_t>(benefit.size()); }
  /// Throws InputError naming the field and entry for bad shapes, ids or non-finite numbers.
  PERKREC_INLINE void validate(const char* context) const;
};

/// Entry index in `candidates` of each (users[i], benefits[i]) pair, -1 when the member has no
/// candidate for that benefit (or the member is outside [0, n_users)); the first entry of a
/// repeated pair. InputError when the lengths differ. O(pairs x candidates per member).
PERKREC_INLINE std::vector<std::int64_t> find_candidates(const Candidates& candidates,
                                                         Span<const Index> users,
                                                         Span<const Index> benefits);

/// Per member, the ineligible benefit with the largest key and the rule that excluded it.
struct BestIneligible {
  std::vector<Index> benefit;      ///< -1 = none
  std::vector<std::int32_t> rule;  ///< -1 = none
};

/// BestIneligible from a dense row-major n_users x n_benefits `key` (e.g. expected value -
/// cost), as numpy's argmax over the ineligible pairs picks it: the first largest key; none
/// when the member is eligible for everything, or when that key (or any NaN key among the
/// member's ineligible pairs) is not finite. rank(..., diagnostics) gives the same without a
/// dense matrix. InputError when key has another size. O(n_users x n_benefits).
PERKREC_INLINE BestIneligible best_ineligible(const EligibilityMasks& masks,
                                              Span<const double> key);

/// Everything the Allocator must respect. Empty per-benefit / per-member vectors mean "no
/// limit" / "defaults". Compiled from a Policy (Policy::constraints) or filled by hand.
struct AllocationConstraints {
  double budget = std::numeric_limits<double>::infinity();  ///< on total expected cost, >= 0
  int max_per_member = 1;                     ///< benefits per member in this plan, >= 1
  std::vector<std::int32_t> member_capacity;  ///< per member: remaining slots (<= max_per_member
                                              ///< applies too); 0 = frequency-capped / full
  std::vector<std::int64_t> inventory;        ///< per benefit: units left, -1 = unlimited
  std::vector<std::int32_t> benefit_kind;     ///< per benefit kind code (for kind caps/diversity)
  int max_per_kind = 0;                       ///< per member and kind in this plan; 0 = no limit
  std::vector<std::int32_t> member_kind_capacity;  ///< members x n_kinds remaining, or empty
  int n_kinds = 0;                                 ///< columns of member_kind_capacity
  std::vector<std::int32_t> benefit_group;         ///< per benefit stacking group, -1 = stackable;
                                                   ///< at most one benefit per group per member
  std::vector<std::int32_t> member_segment;        ///< per member segment code, -1 = none
  std::vector<std::int64_t> segment_max_members;   ///< per segment code, -1 = no limit (codes
                                                   ///< past the end: no limit)
  std::vector<double> segment_max_cost;            ///< per segment code, < 0 = no limit
  double min_return_per_cost = 0.0;                ///< drop candidates with value / cost below this
  double diversity = 0.0;  ///< in [0, 1]: a member's 2nd, 3rd ... benefit of
                           ///< an already-chosen kind counts value x (1 - d)
  /// Throws InputError / ConfigError naming the field for sizes or values that do not fit.
  PERKREC_INLINE void validate(Index n_users, Index n_benefits) const;
};

/// The plan: for each member (CSR by member) the chosen candidates, plus totals, the dual bound
/// and, per member, the best candidate that was not chosen and why (explanations).
struct Allocation {
  std::vector<std::int64_t> offsets{0};  ///< n_users + 1
  std::vector<std::int64_t> candidate;   ///< indices into Candidates entries
  std::vector<Index> benefit;            ///< the chosen benefits (same order as candidate)
  std::vector<std::int64_t> runner_up;   ///< per member: best unchosen candidate, -1 = none
  std::vector<ExclusionReason> runner_up_reason;  ///< per member
  double value = 0.0;  ///< sum of chosen values (after diversity discounts)
  double cost = 0.0;   ///< sum of chosen expected costs
  double dual_bound = std::numeric_limits<double>::infinity();  ///< >= best feasible value
  double multiplier = 0.0;  ///< the budget's shadow price lambda at the end
  int iterations = 0;       ///< multiplier-search evaluations over all members (dual)
  std::string method;       ///< "dual", "greedy", "exact", "pacing"
};

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/decide/types_impl.hpp"
#endif
