// Online pacing of an allocation (decide/allocator.hpp) over a period: members arrive one
// at a time and Pacer::decide picks their benefits against a budget curve.
//
// Example:
//   perkrec::PacingParams pp;
//   pp.budget = 5000; pp.start = day_start; pp.end = day_start + 86400;
//   perkrec::Pacer pacer(k, pp);
//   std::vector<std::int32_t> chosen = pacer.decide(member, now, benefits, values, costs, 1);
//
// Thread safety: decide() and the accessors may be called from many threads at once (they
// serialise on an internal mutex).
#pragma once

#include <cstdint>
#include <limits>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "perkrec/core/json.hpp"
#include "perkrec/core/params.hpp"
#include "perkrec/core/types.hpp"

#include "perkrec/core/config.hpp"
#include "perkrec/decide/allocator.hpp"

namespace perkrec {

struct PacingParams {
  double budget =
      std::numeric_limits<double>::infinity();  ///< total expected cost allowed over
                                                ///< [start, end], >= 0; infinite (JSON: key absent)
                                                ///< = no budget, only inventory, caps and quotas
                                                ///< are paced
  Timestamp start = 0;
  Timestamp end = 0;                ///< > start
  std::vector<double> spend_curve;  ///< cumulative share of the budget at the end of each of
                                    ///< spend_curve.size() equal steps over [start, end]
                                    ///< (non-decreasing, in [0, 1]); empty = linear
  double initial_multiplier = 0.0;  ///< lambda at the start (value per unit cost), >= 0
  double gain = 2.0;                ///< lambda moves by gain x (mean value/cost seen) per 1%
                                    ///< of the budget that spend is ahead of the curve, >= 0
  bool pace_inventory = true;       ///< benefits with a limited inventory follow the same
                                    ///< curve: a benefit whose used share of its inventory is
                                    ///< ahead of the curve costs gain x (mean value seen) per
                                    ///< 1% ahead, so its units last the period instead of
                                    ///< going to the first arrivals; false = first come,
                                    ///< first served

  /// JSON: these names; start and end are required, budget absent = infinite.
  static auto param_fields() {
    using P = PacingParams;
    return std::make_tuple(
        params::field("budget", &P::budget, params::or_infinity(params::at_least(0))),
        params::required(params::field("start", &P::start)),
        params::required(params::field("end", &P::end)),  // > start: validate()
        params::field("spend_curve", &P::spend_curve),    // validate()
        params::field("initial_multiplier", &P::initial_multiplier, params::at_least(0)),
        params::field("gain", &P::gain, params::at_least(0)),
        params::field("pace_inventory", &P::pace_inventory));
  }
  void validate() const;
  Json to_json() const;
  /// Strict: unknown keys and bad values throw ConfigError naming the JSON pointer.
  static PacingParams from_json(const Json& j);
  /// The budget share the curve allows by time t (0 before start, the last point after end).
  double target_share(Timestamp t) const;
};

/// Online pacing: members arrive one at a time during the day; decide() picks that member's
/// benefits with a multiplier lambda set from how far spend is ahead of (or behind) the budget
/// curve: a candidate is taken when value - lambda x cost - mu_b > 0, best first, while the
/// member's capacity, kind caps, stacking groups, inventory, segment quotas and the budget allow
/// (mu_b is benefit b's inventory price, see PacingParams::pace_inventory; 0 without a limit). The
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
  std::vector<std::int32_t> decide(Index user, Timestamp t, Span<const Index> benefit,
                                   Span<const float> value, Span<const float> cost,
                                   int max_new = -1,
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
#include "perkrec/decide/pacer_impl.hpp"
#endif
