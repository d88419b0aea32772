// Planner: from a compiled policy, redemption probabilities and the value of a redemption to an
// issuable plan in one call — candidates (Ranker) -> budget-constrained choice (Allocator) ->
// send time and validity (schedule, moved out of the policy's quiet hours) -> reasons (explain).
// Also the estimators the planner needs when no model provides them, and the two baselines a
// plan is compared with at the same budget.
//
// Probabilities never need a dense members x benefits matrix: PlanInputs takes a scorer (for
// example factor_scorer over per-member and per-benefit factors, or a fitted ScoreBlend) that
// the Ranker calls on blocks of 256 members with only their eligible pairs; a dense float32
// matrix is accepted too. The incremental share likewise comes per member, as a dense matrix,
// or from a scorer (timing_share_scorer: 1 - P(an organic order within the validity)).
//
// Estimators:
//   order_value            per member: margin x the member's median order amount before the
//                          cut time (members without orders: the population median)
//   redemption_counts      redemptions per benefit (the popularity the baselines rank by)
//   timing_share           per (member, benefit): exp(-orders per day x validity days), the
//                          share of a redemption that is incremental when benefits only pull
//                          orders forward
//   incremental_share_from_control   the same share learned from a random control group
// Baselines (dense members x benefits float64 inputs, as the comparisons hold them):
//   popularity_plan        the most popular benefit whose expected cost for every eligible
//                          member fits the budget goes to all of them; when none fits, the most
//                          popular one goes to members in random order until the budget is spent
//   segment_rules_plan     a fixed benefit per segment, members in random order until the
//                          budget is spent
//   default_segment_benefits   the fixed benefit per segment an operator would write by hand
//
// Example:
//   perkrec::CompiledPolicy compiled = policy.compile(catalog, users, plan_time, &segments, &log);
//   std::vector<float> value = perkrec::order_value(log, 0.3, plan_time);
//   perkrec::PlanInputs in;
//   in.probability = perkrec::factor_scorer(user_factors, benefit_factors, benefit_bias, k);
//   in.incremental_share = per_member_share;    // or in.incremental_share_scorer
//   in.order_value = value;
//   in.preference = &preference;                // send times and reasons; may be nullptr
//   perkrec::Planner planner;                   // PlannerParams: objective, top_k, method
//   perkrec::PlanResult plan = planner.plan(compiled, catalog, plan_time, in);
//   // plan.member[i] gets plan.benefit[i] at plan.send_at[i]; plan.reasons[i] is JSON text
//
// Cost: the Ranker's O(eligible pairs) scorer calls plus O(B + K log K) per member, the
// Allocator's dual search (O(candidates) per multiplier step), O(rows) schedule and about a
// microsecond per row of explanation text; all parallel over members. Memory: the candidates
// (16 bytes per kept pair, at most top_k per member) and the plan rows; no members x benefits
// array unless the caller passes one.
//
// Thread safety: Planner::plan is const and safe from many threads at once when the scorers
// are; the free functions are pure. Results do not depend on the thread count (the Ranker and
// the Allocator work on fixed blocks; the baselines are sequential).
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/error.hpp"
#include "perkrec/core/json.hpp"
#include "perkrec/core/params.hpp"
#include "perkrec/core/progress.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/data/catalog.hpp"
#include "perkrec/data/event_log.hpp"
#include "perkrec/decide/allocator.hpp"
#include "perkrec/decide/explain.hpp"
#include "perkrec/decide/policy.hpp"
#include "perkrec/decide/ranker.hpp"
#include "perkrec/decide/types.hpp"
#include "perkrec/models/preference.hpp"

namespace perkrec {

// ---------------------------------------------------------------------------------------------
// Estimators

/// Per member (n_users values): margin x the median amount of the member's orders with time <
/// cut_time (kNoTime = every order); members without orders get margin x the median of all
/// those orders. The orders are given as parallel arrays (user, time, amount); `times` may be
/// empty when cut_time is kNoTime. A median of an even count is the mean of the two middle
/// amounts, rounded to float. ConfigError unless 0 < margin <= 1; InputError for mismatched
/// lengths, users out of [0, n_users), non-finite amounts, or no order before the cut.
/// Cost O(orders log orders).
PERKREC_INLINE std::vector<float> order_value(Span<const Index> users, Span<const Timestamp> times,
                                              Span<const float> amounts, Index n_users,
                                              double margin, Timestamp cut_time = kNoTime);
/// The same from the log's `ordered` events (n_users = log.n_users()).
PERKREC_INLINE std::vector<float> order_value(const EventLog& log, double margin,
                                              Timestamp cut_time = kNoTime);

/// Redemptions per benefit: counts of `benefits` entries (one per redemption; entries < 0 are
/// events without a benefit and are skipped). InputError for an entry >= n_benefits.
PERKREC_INLINE std::vector<std::int64_t> redemption_counts(Span<const Index> benefits,
                                                           Index n_benefits);
/// The same from the log's `redeemed` events.
PERKREC_INLINE std::vector<std::int64_t> redemption_counts(const EventLog& log, Index n_benefits);

/// What incremental_share_from_control learns from: orders (user, time), the logged issues
/// whose validity ended before the plan time (user, benefit, time, redeemed 0/1 within the
/// validity), and pseudo-issues of control members (user, benefit, time: when and what the
/// logging policy would have issued them). Benefit kind codes (0..n_kinds-1) and validity per
/// benefit. Spans are borrowed.
struct ControlShareInputs {
  Index n_users = 0;
  Span<const Index> order_user;
  Span<const Timestamp> order_time;
  Span<const Index> issue_user, issue_benefit;
  Span<const Timestamp> issue_time;
  Span<const double> issue_redeemed;
  Span<const Index> control_user, control_benefit;
  Span<const Timestamp> control_time;
  Span<const std::int32_t> benefit_kind;  ///< per benefit, in [0, n_kinds)
  std::int32_t n_kinds = 0;
  Span<const double> validity_days;  ///< per benefit, > 0
  Timestamp plan_time = 0;
  std::int64_t min_rows = 200;  ///< rows each side needs before a stratum's own share
                                ///< is used; >= 1
};

/// Dense members x benefits (row-major) float32: the share of a redemption that is
/// incremental, learned from the random control group. Strata are benefit kind x (validity /
/// the member's mean days between orders: 4 bins + no cycle) x (days since the last order /
/// that mean: 3 bins + never ordered), each row's state taken from its orders before the issue
/// time; outcome = an order in [time, time + validity). Per stratum share = (order rate issued
/// - order rate control) / redemption rate issued, clipped to [0, 1]; strata with fewer than
/// min_rows rows on either side (or no redemption) fall back to the kind's pooled share, then
/// to the overall one. At plan_time every member's stratum comes from their orders before it.
/// Sums run in row order, as numpy's bincount adds them. InputError naming the field for bad
/// lengths or ids, or no issues; ConfigError for min_rows < 1.
/// Cost O((orders + rows) log orders + members x benefits).
PERKREC_INLINE std::vector<float> incremental_share_from_control(const ControlShareInputs& in);

struct ControlShareParams {
  std::int32_t pseudo_issues = 60;  ///< pseudo-issues per control member; >= 1
  std::int64_t min_rows = 200;      ///< as ControlShareInputs::min_rows; >= 1
  std::uint64_t seed = 0;           ///< the pseudo-issues' draws: stream (seed, member)
};

/// The same share from a log with a control group (EventLog::has_control) and its catalog, the
/// inputs assembled as the issues and pseudo-issues above: the logged issues before plan_time
/// whose validity ended by it, labelled by redemption_labels on the events before plan_time;
/// per control member (any control-flagged event), `pseudo_issues` draws of a logged issue's
/// time and benefit, kept when at or after the member's first event; the orders before
/// plan_time; benefit kinds coded by name order of the kinds the catalog has. The draws are
/// seeded per member, so the result does not depend on the thread count. InputError for a log
/// without the control flag, a catalog of another size than the log's benefits, or no issue
/// with a complete window / no control member; ConfigError for pseudo_issues or min_rows < 1.
PERKREC_INLINE std::vector<float> incremental_share_from_control(
    const EventLog& log, const Catalog& catalog, Timestamp plan_time,
    const ControlShareParams& params = {});

/// Dense members x benefits (row-major) float32: exp(-orders_per_day[u] x validity_days[b]).
/// InputError for negative or non-finite inputs. For small programs; the Planner takes the
/// scorer below instead.
PERKREC_INLINE std::vector<float> timing_share(Span<const double> orders_per_day,
                                               Span<const double> validity_days);
/// A scorer of the same share (the arrays are copied). InputError as above; the scorer throws
/// InputError for ids out of range.
PERKREC_INLINE ScoreBlend::Scorer timing_share_scorer(std::vector<double> orders_per_day,
                                                      std::vector<double> validity_days);
/// A redemption-probability scorer from factors: p(u, b) = sigmoid(benefit_bias[b] +
/// user_factors[u] . benefit_factors[b]) (row-major n_users x k and n_benefits x k float32;
/// benefit_bias may be empty). The arrays are borrowed: they must outlive the scorer.
/// InputError for shapes that do not fit k or non-finite factors (checked once here).
PERKREC_INLINE ScoreBlend::Scorer factor_scorer(Span<const float> user_factors,
                                                Span<const float> benefit_factors,
                                                Span<const float> benefit_bias, Index k);

// ---------------------------------------------------------------------------------------------
// Baselines

/// Inputs of the baselines: dense row-major members x benefits float64 matrices.
struct BaselineInputs {
  Index n_users = 0;
  Index n_benefits = 0;
  Span<const double> redemption_probability;  ///< members x benefits, finite
  Span<const double> value;                   ///< members x benefits expected return, finite
  Span<const double> cost_per_redemption;     ///< per benefit, finite and >= 0
  Span<const std::uint8_t> eligible;          ///< members x benefits, non-zero = eligible;
                                              ///< empty = everyone eligible
  double budget = 0.0;                        ///< on total expected cost, >= 0 (inf allowed)
  double issue_cost = 0.0;                    ///< per issued benefit, finite and >= 0
  Span<const Index> order;  ///< members in the order the random fill visits them (a
                            ///< permutation of 0..n_users-1); empty = shuffled with `seed`
  std::uint64_t seed = 0;
};

/// A baseline's plan: rows sorted by member; expected cost = issue_cost + p x cost.
struct BaselinePlan {
  std::vector<Index> member;
  std::vector<Index> benefit;
  std::vector<double> probability, value, cost;
  Index chosen = -1;  ///< popularity_plan: the benefit given; -1 otherwise
};

/// The most popular benefit (largest `popularity`, ties by lower index) whose expected cost
/// summed over its eligible members fits the budget goes to each of them; when none fits, the
/// most popular one goes to eligible members in `order` while the running cost stays within the
/// budget (a member who would overshoot is skipped; later cheaper ones still fit). The sums are
/// pairwise, in numpy's order, so a caller comparing with numpy gets the same choice.
/// InputError / ConfigError naming the field for bad shapes or values. O(members x benefits).
PERKREC_INLINE BaselinePlan popularity_plan(const BaselineInputs& in,
                                            Span<const double> popularity);

/// Members of segment s (member_segment, -1 = none) get segment_benefit[s] (-1 = nothing) when
/// eligible for it, visited in `order` while the running expected cost fits the budget.
/// InputError for codes outside [-1, segments) or benefits outside [-1, n_benefits).
PERKREC_INLINE BaselinePlan segment_rules_plan(const BaselineInputs& in,
                                               Span<const std::int32_t> member_segment,
                                               Span<const Index> segment_benefit);

/// The benefit per segment of the segment-rules baseline, as an operator would write it by
/// hand: for each of `segment_names`, the most popular benefit (largest `popularity`, ties by
/// lower index) of the kind the segment is named for — threshold discounts for
/// "threshold_discount_sensitive", points for "points_redemption_active", the top face-value
/// quartile (face value >= numpy's linear 0.75 quantile of the catalog's) for
/// "high_face_value_seeker", a plain discount for "dormant", free shipping for "new_member" —
/// and the most popular benefit overall for any other name (or when the catalog has none of
/// the kind). With `expected_cost` (per benefit, e.g. the population's redemption rate x cost)
/// only benefits with expected_cost <= `max_cost_per_user` are considered; when none is, the
/// cheapest of the candidates (ties by lower index). Returns one benefit index per name.
/// InputError for an empty catalog, lengths other than the catalog's, non-finite popularity or
/// expected cost, or a NaN max_cost_per_user. O(segments x benefits).
PERKREC_INLINE std::vector<Index> default_segment_benefits(
    const Catalog& catalog, Span<const double> popularity,
    const std::vector<std::string>& segment_names, Span<const double> expected_cost = {},
    double max_cost_per_user = std::numeric_limits<double>::infinity());

/// A plan's true figures when the truth is known (the simulator's SimulationTruth).
struct PlanTruth {
  Index members = 0;              ///< distinct members in the plan
  Offset benefits = 0;            ///< plan rows
  double redemptions = 0;         ///< sum of P(redemption) over the rows
  double cost = 0;                ///< sum of issue_cost + P(redemption) x cost per redemption
  double incremental_return = 0;  ///< sum of P(incremental order) x the member's order value
  double return_per_cost = 0;     ///< incremental_return / cost; NaN when cost is 0
};

/// The true return and cost of the plan rows (users[i], benefits[i]) under dense row-major
/// n_users x n_benefits truth matrices, summed in numpy's pairwise order (the figures equal the
/// numpy reference's). InputError naming the argument for sizes that differ, non-finite
/// values, or rows outside the truth's shape. O(rows).
PERKREC_INLINE PlanTruth evaluate_plan_truth(Span<const double> redemption_probability,
                                             Span<const double> incremental_probability,
                                             Index n_users, Index n_benefits,
                                             Span<const double> order_value,
                                             Span<const double> cost_per_redemption,
                                             Span<const Index> users, Span<const Index> benefits,
                                             double issue_cost);

// ---------------------------------------------------------------------------------------------
// Planner

struct PlannerParams {
  enum class Method : std::uint8_t {
    dual,    ///< Lagrangian multiple-choice knapsack (allocate)
    greedy,  ///< value per unit cost (allocate_greedy)
    exact,   ///< branch and bound (allocate_exact); small instances only
  };
  RankerParams::Objective objective = RankerParams::Objective::incremental;
  int top_k = 50;  ///< candidates per member; >= 1
  Method method = Method::dual;
  AllocatorParams allocator;            ///< for method dual (its num_threads is ignored)
  std::int64_t max_nodes = 10'000'000;  ///< method exact: node limit; >= 1
  ScheduleParams schedule;              ///< default send hour and minimum validity
  bool explain = true;                  ///< write PlanResult::reasons
  int num_threads = 0;                  ///< 0 = OpenMP default

  /// JSON keys: these names, with the schedule's keys at the top level.
  static auto param_fields() {
    using P = PlannerParams;
    static constexpr params::EnumName<Method> kMethods[] = {
        {Method::dual, "dual"}, {Method::greedy, "greedy"}, {Method::exact, "exact"}};
    return std::make_tuple(params::field("objective", &P::objective, RankerParams::kObjectives),
                           params::field("top_k", &P::top_k, params::at_least(1)),
                           params::field("method", &P::method, kMethods),
                           params::nested("allocator", &P::allocator),
                           params::field("max_nodes", &P::max_nodes, params::at_least(1)),
                           params::flattened(&P::schedule), params::field("explain", &P::explain),
                           params::field("num_threads", &P::num_threads, params::threads()));
  }
  /// ConfigError naming the field.
  void validate() const;
  Json to_json() const;
  /// Strict: {"objective", "top_k", "method", "allocator", "max_nodes", "explain",
  /// "num_threads", "default_hour", "min_validity_days"}; unknown keys or bad values throw
  /// ConfigError naming the JSON pointer.
  static PlannerParams from_json(const Json& j);
};

PERKREC_INLINE const char* to_string(PlannerParams::Method method);

/// What the plan is made from. Exactly one probability source; spans are borrowed.
struct PlanInputs {
  Span<const float> redemption_probability;     ///< dense members x benefits float32, or
  const ScoreBlend* blend = nullptr;            ///< a fitted blend (also gives the reasons'
                                                ///< contributions), or
  ScoreBlend::Scorer probability;               ///< a scorer, called on eligible pairs only
  Span<const float> incremental_share;          ///< members x benefits or per member in [0, 1];
                                                ///< objective incremental needs it or the scorer
  ScoreBlend::Scorer incremental_share_scorer;  ///< e.g. timing_share_scorer
  Span<const float> order_value;                ///< per member value of a redemption; empty = 1
  Span<const float> benefit_value;              ///< per benefit multiplier; empty = 1
  const PreferenceModel* preference = nullptr;  ///< send times, validity and the reasons'
                                                ///< preference dimensions; may be nullptr
  double budget = std::numeric_limits<double>::quiet_NaN();  ///< NaN = the policy's budget;
                                                             ///< else >= 0
  BehaviorEvidence behavior;  ///< optional: the reasons name the member's matching behaviour
                              ///< before the plan time (decide/explain.hpp)
};

/// The plan: one row per issued (member, benefit), members ascending, and the pipeline's
/// intermediate objects.
struct PlanResult {
  std::vector<Index> member;
  std::vector<Index> benefit;
  std::vector<std::int64_t> entry;  ///< index into candidates
  std::vector<float> probability, value, cost;
  std::vector<Timestamp> send_at;  ///< outside the policy's quiet hours
  std::vector<std::int32_t> validity_days;
  std::vector<std::uint8_t> from_model;  ///< 1 when the preference model gave the time
  std::vector<std::string> reasons;      ///< JSON text per row (empty unless params.explain)
  Candidates candidates;
  RankDiagnostics diagnostics;
  Allocation allocation;
  double budget = std::numeric_limits<double>::infinity();  ///< the budget planned for
};

class Planner {
 public:
  explicit Planner(PlannerParams params = {});
  const PlannerParams& params() const { return params_; }

  /// The whole pipeline (see the file comment) for the members of `compiled` (compiled from
  /// the same catalog). Everything is validated before work starts: InputError naming the
  /// field for no or several probability sources, a missing incremental share (objective
  /// incremental), sizes that do not fit compiled.masks, non-finite or out-of-range values
  /// (probabilities outside [0, 1], as the Ranker names them); ConfigError for a negative
  /// budget. Interrupted between stages and in the Allocator when callbacks.should_stop() asks.
  PlanResult plan(const CompiledPolicy& compiled, const Catalog& catalog, Timestamp plan_time,
                  const PlanInputs& in, const Callbacks& callbacks = {}) const;

  /// The stages plan() runs, for callers that keep some of them (each validates its inputs).
  Candidates rank(const CompiledPolicy& compiled, const Catalog& catalog, const PlanInputs& in,
                  RankDiagnostics* diagnostics) const;
  Allocation allocate(const Candidates& candidates, const AllocationConstraints& constraints,
                      const Callbacks& callbacks = {}) const;
  /// Fills member, benefit, entry, probability, value, cost, send_at, validity_days,
  /// from_model of `out` from out.candidates and out.allocation.
  void schedule(const CompiledPolicy& compiled, const Catalog& catalog, Timestamp plan_time,
                const PreferenceModel* preference, PlanResult& out) const;
  /// Fills out.reasons for out's rows; `plan_time` is the time the behaviour part of the
  /// reasons (in.behavior) counts back from (kNoTime: none).
  void explain(const CompiledPolicy& compiled, const Catalog& catalog, const PlanInputs& in,
               PlanResult& out, Timestamp plan_time = kNoTime) const;

  /// Online decisions (a server answering one member's request): the member's eligible
  /// benefits ranked like plan() ranks them, from `probability` (one per benefit, in [0, 1]),
  /// the member's `share` (objective incremental; 1 = all of it) and value of a redemption.
  /// One member, so it runs on the calling thread. InputError for a member out of range or
  /// bad values (as the Ranker names them).
  Candidates rank_user(const CompiledPolicy& compiled, const Catalog& catalog, Index user,
                       Span<const float> probability, float share, float user_value,
                       RankDiagnostics* diagnostics = nullptr) const;
  /// The same with the member's share per benefit (`share`: one value, or one per benefit).
  Candidates rank_user(const CompiledPolicy& compiled, const Catalog& catalog, Index user,
                       Span<const float> probability, Span<const float> share, float user_value,
                       RankDiagnostics* diagnostics = nullptr) const;
  [[deprecated("use rank_user")]] Candidates rank_member(
      const CompiledPolicy& compiled, const Catalog& catalog, Index member,
      Span<const float> probability, float share, float member_value,
      RankDiagnostics* diagnostics = nullptr) const {
    return rank_user(compiled, catalog, member, probability, share, member_value, diagnostics);
  }
  [[deprecated("use rank_user")]] Candidates rank_member(
      const CompiledPolicy& compiled, const Catalog& catalog, Index member,
      Span<const float> probability, Span<const float> share, float member_value,
      RankDiagnostics* diagnostics = nullptr) const {
    return rank_user(compiled, catalog, member, probability, share, member_value, diagnostics);
  }
  /// Send time and validity of one issued benefit decided at `time` (as schedule() gives
  /// them), moved out of the policy's quiet hours in the member's local time.
  SendSchedule send_time(const CompiledPolicy& compiled, const Catalog& catalog,
                         const PreferenceModel* preference, Index user, Index benefit,
                         Timestamp time) const;

 private:
  PlannerParams params_;
};

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/decide/planner_impl.hpp"
#endif
