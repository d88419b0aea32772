// BenefitPlanner: the fitted pipeline of a BenefitPlannerFile (perkrec.BenefitPlanner's model
// file) turned into plans and one-member answers, in C++.
//
// From the stored parts (the redemption FM with its FeatureEncoder, the PreferenceModel, the
// catalog, the event log, the optional user table, the order values, the held-out issues of
// the interaction shrinkage, the optional control-group share, the policy and the parameters
// in the file's config) a plan at time t is:
//   1. every (member, benefit) row at t, built block by block (members x benefits rows of
//      `block_members` members at a time, member-major) with the columns
//      perkrec.pipeline.with_attributes gives them (the catalog's kind, face_value,
//      face_value_band, threshold, discount_rate, validity_days, scope, channel; the user
//      table's columns, signup_time as tenure_days; the member's default segment of the stored
//      preference model as kMemberSegmentColumn; weekday and hour of t), encoded by the
//      FM's FeatureEncoder (its behaviour fields, when it has any, from the stored behaviour
//      log, item catalog and benefit items: events strictly before t) and scored by the FM (P as
//      float32; no members x benefits float64 matrix and no dense feature matrix beyond one block);
//   2. with params.shrink, P clipped to [1e-6, 1 - 1e-6] and its member x benefit
//      interaction shrunk in place (shrink_interactions_in_place: means of logit P at t, the
//      slope fitted on the stored held-out issues);
//   2b. with params.pooled, the stored pooled member effects added to logit P (P clipped to
//      [1e-6, 1 - 1e-6] first; PooledMemberEffects::apply_row, decide/pooled_effects.hpp), and
//      with params.preference_offset, the fitted weight x the preference model's centred
//      member x kind log-preference (apply_preference_offset), and with params.benefit_level,
//      each benefit's stored held-out level factor (apply_benefit_levels,
//      decide/calibration.hpp); row by row, so a one-member answer gets exactly the plan's row;
//   3. the incremental share: the stored control-group matrix (incremental "control") or the
//      preference model's purchase timing (timing_share_scorer, evaluated on eligible pairs);
//   4. the policy compiled at t (the preference model's default segments, the event log's
//      caps) and Planner::plan (rank -> allocate -> schedule -> explain); with stored
//      behaviour the reasons name the member's matching behaviour of the 8 weeks before t
//      (decide/explain.hpp, "behavior").
// The result equals perkrec.BenefitPlanner's Python reference (inputs() then Planner.plan)
// bit for bit.
//
// One member (a server's request): prepare(t) computes once what the shrinkage needs at t
// (benefit means and grand mean of logit P, the slope; one scoring pass over all members) and
// compiles the policy; answer(state, member, time) then scores the member's row at `time`,
// shrinks it with the prepared means, ranks it (Planner::rank_user), and gives each ranked
// benefit its send time (Planner::send_time) and reasons (explain). With time == the
// prepared time, the member's probabilities equal the plan's.
//
// A pilot wave (test and scale): plan's `scope` restricts the plan to some members (the others
// get P = 0, so no candidate) and multiplies their P by a level (after step 2b, capped at 1)
// measured on the pilot's redemptions (pilot_level, decide/calibration.hpp). P is computed for
// every member first, so a planned member's P (before the level) is the whole plan's.
//
// `events` (plan / prepare): a newer log of the same members and benefits (the same
// indexing; it may hold more events) replaces the stored history for the features and the
// caps, without refitting; nullptr = the stored log. `behavior` (plan / prepare /
// redemption_probability): likewise a newer BehaviorLog over the stored item catalog's items and
// at most the fitted members replaces the stored behaviour log for the behaviour features and
// the reasons (InputError naming `behavior` for a file without behaviour or a log of other
// items); nullptr = the stored one.
//
// Errors: ModelFormatError(invalid_content) for a config that does not describe a pipeline
// (or an encoder with a behaviour field in a file without the behaviour part);
// InputError naming the field for a bad time, member, budget or a log of another shape; a
// categorical field over a numeric user column is an InputError naming the field.
//
// Example:
//   perkrec::BenefitPlanner bp = perkrec::BenefitPlanner::load("planner.perk");
//   perkrec::BenefitPlanner::Plan p = bp.plan(bp.end_time());      // p.result.member, ...
//   perkrec::BenefitPlanner::Plan rest = bp.plan(bp.end_time(), budget_left, nullptr, nullptr,
//                                                perkrec::PlanScope{rest_flags, l.level});
//   perkrec::BenefitPlanner::State s = bp.prepare(bp.end_time());  // once
//   perkrec::UserAnswer a = bp.answer(s, 17, bp.end_time(), 3);  // from any thread
//
// Cost: plan O(members x benefits x (fields + factors)) for scoring, in blocks, parallel
// within each block; memory: P (float32 members x benefits) plus one block's CSR rows.
// answer: O(benefits x (fields + factors) + the member's events).
// A behaviour field adds, per block (and per answer), one pass over the behaviour log when it
// asks for the popularity aggregates (features/behavior_features.hpp builds their sorted
// per-item times on each call: O(behaviour events log events)); the reasons' behaviour part
// reads only the chosen member's events of the last 8 weeks.
// Thread safety: const methods are safe from many threads at once (plan, prepare, answer).
// Results never depend on the thread count.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/decide/benefit_planner_file.hpp"
#include "perkrec/decide/calibration.hpp"
#include "perkrec/decide/explain.hpp"
#include "perkrec/decide/planner.hpp"
#include "perkrec/decide/policy.hpp"
#include "perkrec/decide/pooled_effects.hpp"
#include "perkrec/features/feature_encoder.hpp"

namespace perkrec {

namespace detail {
struct PlanFrame;
}  // namespace detail

/// The plan-time column holding each member's default segment (PreferenceModel::segments with
/// SegmentRules::defaults()); an encoder field of this name (perkrec.BenefitPlanner's
/// segment_field) reads it. In training rows the same column holds the segment as of the row's
/// time (from preference models fitted at checkpoints before it).
inline constexpr const char* kMemberSegmentColumn = "member_segment";

/// One ranked benefit of a member's answer.
struct UserBenefit {
  Index benefit = -1;
  float probability = 0;  ///< redemption probability (after the shrinkage)
  float value = 0;        ///< expected return (objective's)
  float cost = 0;         ///< expected cost
  SendSchedule schedule;  ///< send time (out of the quiet hours) and validity
  std::string reasons;    ///< explain_text JSON
};

/// BenefitPlanner::answer's result: the member's eligible benefits by expected value - cost.
struct UserAnswer {
  std::vector<UserBenefit> benefits;
  ExclusionReason blocked = ExclusionReason::none;  ///< frequency_cap / member_cap, else none
  std::vector<float> probability;                   ///< every benefit's (shrunk) probability
};
/// The members a BenefitPlanner plan is for and a level of their P (see the file comment).
struct PlanScope {
  Span<const std::uint8_t> user_mask;  ///< per member 1 = planned, 0 = not; empty = every member
  double level = 1;                    ///< multiplies P (capped at 1); finite, > 0
};

using MemberBenefit [[deprecated("use UserBenefit")]] = UserBenefit;
using MemberAnswer [[deprecated("use UserAnswer")]] = UserAnswer;

class BenefitPlanner {
 public:
  /// `num_threads`: -1 = the stored params' num_threads; 0 = OpenMP default.
  /// Throws ModelFormatError(invalid_content) for a config that is not a pipeline's.
  explicit BenefitPlanner(BenefitPlannerFile file, int num_threads = -1);
  static BenefitPlanner load(const std::string& path, int num_threads = -1);
  static BenefitPlanner from_bytes(std::string_view bytes, int num_threads = -1);
  BenefitPlanner(BenefitPlanner&&) noexcept = default;
  BenefitPlanner& operator=(BenefitPlanner&&) noexcept = default;
  BenefitPlanner(const BenefitPlanner&) = delete;  // one copy of the stored parts
  BenefitPlanner& operator=(const BenefitPlanner&) = delete;

  const BenefitPlannerFile& file() const { return *file_; }
  const FeatureEncoder& encoder() const { return encoder_; }
  const Policy& policy() const { return policy_; }
  const Planner& planner() const { return planner_; }
  Index n_users() const { return file_->events.n_users(); }
  Index n_benefits() const { return file_->events.n_benefits(); }
  Timestamp cut_time() const { return cut_time_; }
  Timestamp end_time() const { return end_time_; }
  bool shrink() const { return shrink_; }
  /// Whether plans add the stored pooled member effects (params.pooled).
  bool pooled() const { return file_->pooled.has_value(); }
  /// The preference offset's fitted weight (params.preference_offset), 0 without it.
  double preference_weight() const { return file_->preference_weight.value_or(0.0); }
  /// Whether plans multiply P by the stored per-benefit level factors (params.benefit_level).
  bool benefit_level() const { return !file_->benefit_level.empty(); }
  int num_threads() const { return num_threads_; }
  /// Members scored per block by plan / prepare (>= 1; default 2048).
  void set_block_users(Index users);
  [[deprecated("use set_block_users")]] void set_block_members(Index members) {
    set_block_users(members);
  }

  /// The FM's probabilities (before the shrinkage) of members [begin, end) x every benefit at
  /// `at`, member-major, into `out` ((end - begin) x n_benefits values).
  void score_users(Index begin, Index end, Timestamp at, const EventLog& events,
                   Span<float> out) const;
  [[deprecated("use score_users")]] void score_members(Index begin, Index end, Timestamp at,
                                                       const EventLog& events,
                                                       Span<float> out) const {
    score_users(begin, end, at, events, out);
  }

  /// P at `at`: members x benefits float32, after the shrinkage when params.shrink. `slope`
  /// (optional) receives the kept share of the interaction (1 without shrinkage).
  std::vector<float> redemption_probability(Timestamp at, const EventLog* events = nullptr,
                                            double* slope = nullptr,
                                            const BehaviorLog* behavior = nullptr) const;

  struct Plan {
    CompiledPolicy compiled;
    PlanResult result;
    double slope = 1.0;
  };
  /// The plan at `at` (see the file comment). `budget`: NaN = the policy's; else >= 0.
  /// InputError naming `user_mask` (another length than n_users, a flag other than 0/1) or `level`
  /// (not finite, <= 0), before any work.
  Plan plan(Timestamp at, double budget = std::numeric_limits<double>::quiet_NaN(),
            const EventLog* events = nullptr, const BehaviorLog* behavior = nullptr,
            const PlanScope& scope = {}) const;

  /// What one-member answers at (or near) `at` need; see the file comment.
  struct State {
    Timestamp time = 0;
    const EventLog* events = nullptr;       ///< borrowed; nullptr = the stored log
    HistoryIndex history;                   ///< of `events` (empty for the stored log)
    const BehaviorLog* behavior = nullptr;  ///< borrowed; nullptr = the stored behaviour log
    CompiledPolicy compiled;
    InteractionMeans means;  ///< the shrinkage at `time` (empty without shrink)
    ExplanationContext context;
  };
  /// One scoring pass over every member at `at` (the shrinkage's means) and the compiled
  /// policy. `events` and `behavior` must outlive the state.
  State prepare(Timestamp at, const EventLog* events = nullptr,
                const BehaviorLog* behavior = nullptr) const;
  /// The member's redemption probability of every benefit at `time`, shrunk with the state's
  /// means (the first step of answer; what a server ranks and paces itself).
  std::vector<float> user_probability(const State& state, Index user, Timestamp time) const;
  /// The member's incremental share of every benefit (the stored control-group row or the
  /// purchase-timing share).
  std::vector<float> user_share(Index user) const;
  /// The member's value of a redemption (the stored order value).
  float user_value(Index user) const;
  /// The member's eligible benefits ranked as the plan ranks them (top `n`, n >= 1), scored at
  /// `time` with the state's shrinkage, each with its send time from `time` and reasons.
  UserAnswer answer(const State& state, Index user, Timestamp time, int n = 1) const;

  [[deprecated("use user_probability")]] std::vector<float> member_probability(
      const State& state, Index member, Timestamp time) const {
    return user_probability(state, member, time);
  }
  [[deprecated("use user_share")]] std::vector<float> member_share(Index member) const {
    return user_share(member);
  }
  [[deprecated("use user_value")]] float member_value(Index member) const {
    return user_value(member);
  }

 private:
  const EventLog& log_of(const EventLog* events, const char* method) const;
  /// The behaviour inputs with `log` (nullptr: the stored one) checked against the stored ones.
  /// `events`: when given, the log's member map is checked against it (plan, prepare; answer
  /// reads the state prepare checked).
  BehaviorData behavior_of(const BehaviorLog* log, const char* method,
                           const EventLog* events = nullptr) const;
  std::vector<float> probability(Timestamp at, const EventLog& log, const BehaviorData& behavior,
                                 double* slope, InteractionMeans* means) const;
  void score_users(Index begin, Index end, Timestamp at, const EventLog& events,
                   const HistoryIndex& history, const BehaviorData& behavior,
                   Span<float> out) const;
  static float clip(float p);
  /// Steps 2b of the file comment on one member's row (after the shrinkage).
  void adjust_row(Span<float> row, Index user) const;
  /// `behavior` for the reasons (empty without it).
  static BehaviorEvidence evidence(const BehaviorData& behavior);

  std::unique_ptr<const BenefitPlannerFile>
      file_;  ///< on the heap: the frame and index point into it
  FeatureEncoder encoder_;
  HistoryIndex history_index_;  ///< of the stored log
  BehaviorData behavior_;       ///< into file_->behavior; empty without it
  std::shared_ptr<const detail::PlanFrame> frame_;
  Policy policy_;
  Planner planner_;
  UserTable users_;                  ///< the stored table, or one without columns
  SegmentAssignment segments_;       ///< the preference model's default segments
  ScoreBlend::Scorer share_scorer_;  ///< incremental "timing": timing_share_scorer
  KindPreferenceLift lift_;          ///< params.preference_offset: of the stored preference
  bool shrink_ = true;
  bool control_share_ = false;
  Timestamp cut_time_ = 0;
  Timestamp end_time_ = 0;
  int num_threads_ = 0;
  Index block_members_ = 2048;
};

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/decide/benefit_planner_impl.hpp"
#endif
