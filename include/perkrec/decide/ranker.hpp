// Ranker: from model scores to an expected value per (member, benefit), and the top-K eligible
// candidates per member that the Allocator chooses from. Also the calibrated score blend that
// turns several models' scores into one redemption probability, and the send time / validity
// of an issued benefit.
//
// Money (see decide/types.hpp): for member u and benefit b with redemption probability p,
//   value(u, b) = p x share(u, b) x member_value[u] x benefit_value[b]    (objective incremental)
//               = p x member_value[u] x benefit_value[b]                   (objective redemption)
//   cost(u, b)  = issue_cost + p x cost_per_redemption[b]
// share is the incremental share of a redemption (the part of the purchase the benefit
// caused; missing = 1, which makes the two objectives equal). The ranking key is
// value - cost; a member's row of the output lists their eligible benefits with the largest
// keys, best first (ties by lower benefit index), and only positive keys unless
// keep_non_positive.
//
// ScoreBlend: p = sigmoid(bias + sum_i w_i f_i(score_i(u, b))), f_i = identity for sources
// that are scores (ALS/BPR dot products, log rates), logit for sources that are
// probabilities (FM with a sigmoid output, a calibrated model). fit() maximizes the
// L2-penalized Bernoulli log-likelihood of labelled pairs by Newton's method with a
// backtracking line search (the problem is convex, so it converges from zero weights); the
// gradient and Hessian are summed over fixed blocks of 4096 pairs in block order, so the
// weights are bit-identical for any thread count.
//
// Example:
//   perkrec::ScoreBlend blend;
//   blend.add_source("als", perkrec::model_scorer(als));
//   blend.add_source("preference", perkrec::model_scorer(preference));
//   blend.fit(train_users, train_benefits, redeemed);        // labels in {0, 1}
//   perkrec::RankInputs in;
//   in.member_value = basket_margin;                         // per member
//   in.cost_per_redemption = benefit_cost;                   // per benefit
//   perkrec::RankerParams p;
//   p.objective = perkrec::RankerParams::Objective::redemption;
//   perkrec::Candidates c = perkrec::rank(blend, in, compiled.masks, p);
//
// Thread safety: rank() and schedule() are pure functions. ScoreBlend: fit/add_source/attach
// need exclusive access; predict/contributions/features are const and safe from many threads
// when the attached scorers are (every perkrec model's const score() is).
// Cost: rank is O(members x benefits) for the dense inputs plus O(B + K log K) per member for
// the top-K (B = eligible benefits; about 8 ns per pair on 2 cores, BENCHMARKS.md), parallel
// over members; with a blend the sources are scored only on eligible pairs (and on every pair
// when diagnostics are requested).
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/error.hpp"
#include "perkrec/core/json.hpp"
#include "perkrec/core/math.hpp"
#include "perkrec/core/params.hpp"
#include "perkrec/core/progress.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/data/catalog.hpp"
#include "perkrec/decide/types.hpp"
#include "perkrec/models/preference.hpp"

namespace perkrec {

// ---------------------------------------------------------------------------------------------
// ScoreBlend

/// Hyper-parameters of ScoreBlend::fit.
struct ScoreBlendParams {
  double l2 = 1e-4;         ///< L2 penalty on the source weights (not the bias), per pair; >= 0
  int max_iterations = 50;  ///< Newton steps; >= 1
  double tolerance = 1e-9;  ///< stop when the largest weight change is below; > 0
  double clip = 1e-6;       ///< logit sources clip probabilities to [clip, 1 - clip]; (0, 0.5)
  int num_threads = 0;      ///< 0 = OpenMP default

  static auto param_fields() {
    using P = ScoreBlendParams;
    return std::make_tuple(params::field("l2", &P::l2, params::at_least(0)),
                           params::field("max_iterations", &P::max_iterations, params::at_least(1)),
                           params::field("tolerance", &P::tolerance, params::above(0)),
                           params::field("clip", &P::clip, params::open(0, 0.5)),
                           params::field("num_threads", &P::num_threads, params::threads()));
  }
  void validate() const;
  Json to_json() const;
  /// Strict: unknown keys or bad values throw ConfigError naming the JSON pointer.
  static ScoreBlendParams from_json(const Json& j);
};

class ScoreBlend {
 public:
  /// out[i] = the source's score of (users[i], benefits[i]). Must be safe to call from several
  /// threads at once; must write every out[i].
  using Scorer =
      std::function<void(Span<const Index> users, Span<const Index> benefits, Span<float> out)>;
  /// How a source's score enters the linear predictor.
  enum class Transform : std::uint8_t {
    identity,  ///< f(s) = s
    logit,     ///< f(s) = log(s / (1 - s)), s a probability clipped to [clip, 1 - clip]
  };

  explicit ScoreBlend(ScoreBlendParams params = {});

  /// Adds a source (its weight starts at 0; the blend needs fit() or set_weights() after).
  /// ConfigError for an empty or duplicate name or an empty scorer.
  ScoreBlend& add_source(std::string name, Scorer scorer,
                         Transform transform = Transform::identity);
  /// Replaces the scorer of source `name` (after from_json). ConfigError for an unknown name.
  void attach(const std::string& name, Scorer scorer);

  int n_sources() const { return static_cast<int>(names_.size()); }
  const std::vector<std::string>& source_names() const { return names_; }
  Transform transform(int source) const { return transforms_[static_cast<std::size_t>(source)]; }
  /// True once fit() or set_weights() gave the weights.
  bool fitted() const { return fitted_; }
  const ScoreBlendParams& params() const { return params_; }

  /// Fits bias and weights on labelled pairs (labels in [0, 1]; 1 = redeemed). InputError for
  /// mismatched lengths, no pairs, bad labels, ids the scorers reject, non-finite source
  /// scores or logit sources outside [0, 1] (naming the source and pair); DivergenceError if
  /// Newton produces non-finite weights. On error the blend is unchanged. Interrupted when
  /// callbacks.should_stop() asks between Newton steps.
  void fit(Span<const Index> users, Span<const Index> benefits, Span<const float> labels,
           const Callbacks& callbacks = {});
  /// Sets the weights by hand (one per source). InputError for a wrong count or non-finite.
  void set_weights(double bias, std::vector<double> weights);

  double bias() const { return bias_; }
  const std::vector<double>& weights() const { return weights_; }
  /// Newton steps of the last fit, and its mean penalized log-loss.
  int iterations() const { return iterations_; }
  double training_loss() const { return training_loss_; }

  /// out[i] = P(redeem) of (users[i], benefits[i]). InputError before fit/set_weights, for
  /// mismatched lengths, or for a source without a scorer.
  void predict(Span<const Index> users, Span<const Index> benefits, Span<float> out) const;
  /// out[i * n_sources() + s] = f_s(score_s) (the transformed source values).
  void features(Span<const Index> users, Span<const Index> benefits, Span<float> out) const;
  /// out[i * n_sources() + s] = w_s f_s(score_s): each source's term of the linear predictor
  /// (the logit of the probability is bias() + the row sum).
  void contributions(Span<const Index> users, Span<const Index> benefits, Span<float> out) const;
  /// One pair's terms, in source order.
  std::vector<double> contributions(Index user, Index benefit) const;

  /// {"params": {...}, "bias": b, "fitted": bool, "sources": [{"name", "transform", "weight"}]}.
  Json to_json() const;
  /// Restores params, weights and source names; scorers must be re-attached by name with
  /// attach() before predict. Strict: ConfigError naming the JSON pointer.
  static ScoreBlend from_json(const Json& j);

 private:
  void check_ready(const char* method) const;
  void check_pairs(const char* method, Span<const Index> users, Span<const Index> benefits,
                   std::size_t out_size, std::size_t per_pair) const;
  /// Transformed source values of a batch, pair-major, into out (n x n_sources).
  void transformed(const char* method, Span<const Index> users, Span<const Index> benefits,
                   float* out) const;

  ScoreBlendParams params_;
  std::vector<std::string> names_;
  std::vector<Scorer> scorers_;
  std::vector<Transform> transforms_;
  std::vector<double> weights_;
  double bias_ = 0.0;
  bool fitted_ = false;
  int iterations_ = 0;
  double training_loss_ = 0.0;
};

PERKREC_INLINE const char* to_string(ScoreBlend::Transform t);

/// A Scorer calling model.score(users, benefits, out) — for Popularity, ALS, BPR, ItemKNN,
/// PreferenceModel and any type with that const method. Keeps a reference: the model must
/// outlive the blend. (FM scores feature rows; wrap it in a lambda that encodes the pairs.)
template <class Model>
ScoreBlend::Scorer model_scorer(const Model& model) {
  return [&model](Span<const Index> users, Span<const Index> benefits, Span<float> out) {
    model.score(users, benefits, out);
  };
}

/// A Scorer reading a dense row-major n_users x n_benefits matrix (not copied: it must
/// outlive the blend). InputError naming `name` for ids out of range.
PERKREC_INLINE ScoreBlend::Scorer dense_scorer(Span<const float> matrix, Index n_users,
                                               Index n_benefits, std::string name = "matrix");

// ---------------------------------------------------------------------------------------------
// Ranker

struct RankerParams {
  enum class Objective : std::uint8_t {
    redemption,   ///< value of every expected redemption
    incremental,  ///< only the incremental (uplift) part: value x incremental_share
  };
  Objective objective = Objective::incremental;
  int top_k = 50;                  ///< candidates kept per member; >= 1
  double issue_cost = 0.0;         ///< cost of issuing one benefit, added to every cost; >= 0
  bool keep_non_positive = false;  ///< keep candidates with value - cost <= 0
  int num_threads = 0;             ///< 0 = OpenMP default

  static constexpr params::EnumName<Objective> kObjectives[] = {
      {Objective::redemption, "redemption"}, {Objective::incremental, "incremental"}};
  static auto param_fields() {
    using P = RankerParams;
    return std::make_tuple(params::field("objective", &P::objective, kObjectives),
                           params::field("top_k", &P::top_k, params::at_least(1)),
                           params::field("issue_cost", &P::issue_cost, params::at_least(0)),
                           params::field("keep_non_positive", &P::keep_non_positive),
                           params::field("num_threads", &P::num_threads, params::threads()));
  }
  void validate() const;
  Json to_json() const;
  /// Strict: unknown keys or bad values throw ConfigError naming the JSON pointer.
  static RankerParams from_json(const Json& j);
};

PERKREC_INLINE const char* to_string(RankerParams::Objective objective);
/// The objective named `text` ("redemption" or "incremental") into `out`; false (and `out`
/// unchanged) for any other name.
PERKREC_INLINE bool parse_objective(const std::string& text, RankerParams::Objective& out);

/// The ranker's inputs: dense row-major members x benefits matrices unless noted. The shapes
/// come from the EligibilityMasks (n_users x n_benefits). Nothing is copied.
struct RankInputs {
  Span<const float> redemption_probability;  ///< members x benefits in [0, 1]; required
                                             ///< unless a blend is given (then ignored)
  Span<const float> incremental_share;       ///< members x benefits, or one per member, in
                                             ///< [0, 1]; empty = 1 (incremental objective only)
  Span<const float> member_value;            ///< per member value of one redemption, >= 0;
                                             ///< empty = 1
  Span<const float> benefit_value;           ///< per benefit multiplier of the value, >= 0;
                                             ///< empty = 1
  Span<const float> cost_per_redemption;     ///< per benefit (Catalog cost), >= 0; empty = 0
};

/// Per member, the best benefit the policy excluded (by value - cost, as if it were
/// eligible) and the rule that excluded it: what the member would have got without the rules.
struct RankDiagnostics {
  std::vector<Index> best_ineligible;              ///< per member, -1 = none
  std::vector<float> best_ineligible_key;          ///< its value - cost (NaN when none)
  std::vector<std::int32_t> best_ineligible_rule;  ///< EligibilityMasks rule index, -1 = none
  std::vector<Index> n_eligible;                   ///< eligible benefits per member
};

/// Fused eligibility + top-K by value - cost, parallel over members (static blocks, so the
/// result is identical for any thread count). Rows sorted by value - cost descending (ties:
/// lower benefit index first), only eligible benefits, only value - cost > 0 unless
/// keep_non_positive; candidates.probability holds p. Fills `diagnostics` when given.
/// InputError naming the field for wrong sizes, non-finite or out-of-range values
/// (probabilities and shares outside [0, 1], negative values or costs).
PERKREC_INLINE Candidates rank(const RankInputs& in, const EligibilityMasks& masks,
                               const RankerParams& p, RankDiagnostics* diagnostics = nullptr);
/// As above with probabilities from the blend, evaluated only on eligible pairs (on every pair
/// when diagnostics are requested). in.redemption_probability is ignored.
PERKREC_INLINE Candidates rank(const ScoreBlend& blend, const RankInputs& in,
                               const EligibilityMasks& masks, const RankerParams& p,
                               RankDiagnostics* diagnostics = nullptr);

/// Scorers in place of dense matrices: out[i] = the value of (users[i], benefits[i]).
struct RankScorers {
  ScoreBlend::Scorer redemption_probability;  ///< P(redemption | issued) in [0, 1]; required
  ScoreBlend::Scorer incremental_share;       ///< in [0, 1]; empty = RankInputs::incremental_share
};

/// As above with probabilities (and optionally incremental shares) from scorers, called on
/// blocks of 256 members with only their eligible pairs (every pair when diagnostics are
/// requested): no members x benefits matrix is ever held. in.redemption_probability is
/// ignored; InputError when scorers.incremental_share and in.incremental_share are both given,
/// and for scored values outside [0, 1] (naming the first bad member and benefit).
PERKREC_INLINE Candidates rank(const RankScorers& scorers, const RankInputs& in,
                               const EligibilityMasks& masks, const RankerParams& p,
                               RankDiagnostics* diagnostics = nullptr);

// ---------------------------------------------------------------------------------------------
// Send time and validity

/// When to send an issued benefit and how long it stays valid. (Named SendSchedule because
/// perkrec::Schedule is the parallel_for scheduling enum of core/threading.hpp.)
struct SendSchedule {
  Timestamp send_at = 0;
  std::int32_t validity_days = 0;
  bool from_model = false;  ///< true when the preference model's timing was used
};

/// Defaults of schedule() when no timing is known.
struct ScheduleParams {
  int default_hour = 10;      ///< UTC hour of the default send time; 0..23
  int min_validity_days = 1;  ///< lower bound of the validity; >= 1
  static auto param_fields() {
    using P = ScheduleParams;
    return std::make_tuple(
        params::field("default_hour", &P::default_hour, params::closed(0, 23)),
        params::field("min_validity_days", &P::min_validity_days, params::at_least(1)));
  }
  void validate() const;
};

/// Earliest time >= t in hour-of-week `slot` (0..167): t itself when it lies in that hour,
/// else the start of the slot's next occurrence (at most a week later). InputError for a bad
/// slot.
PERKREC_INLINE Timestamp next_in_hour_of_week(Timestamp t, int slot);

/// Send time and validity of `benefit` for `member`:
///  - With a fitted PreferenceModel that knows the member (member < pref->n_users() and a best
///    slot): the earliest time >= max(plan_time, cut_time + send_in_days) that falls in the
///    member's best hour-of-week slot (at most a week later; the start of that hour unless
///    the earliest time already lies inside it); validity = the model's validity_days,
///    capped by the benefit's catalog validity_days.
///  - Otherwise: the first time >= plan_time at params.default_hour:00 UTC; validity = the
///    catalog validity_days.
/// Then `quiet` (e.g. Policy::send_time bound to the member's utc offset) moves the time out
/// of quiet hours. InputError for a negative member.
PERKREC_INLINE SendSchedule schedule(const PreferenceModel* pref, Index user, Timestamp plan_time,
                                     const Benefit& benefit,
                                     const std::function<Timestamp(Timestamp)>& quiet = {},
                                     const ScheduleParams& params = {});

/// Quiet hours in local time: no sends in [start_hour, end_hour) (wrapping midnight when
/// start > end). A small stand-alone helper for callers without a Policy.
struct QuietHours {
  int start_hour = 22;  ///< 0..23
  int end_hour = 8;     ///< 0..23, != start_hour
  void validate() const;
  /// Earliest time >= t outside the quiet hours for a member at utc_offset_hours.
  Timestamp next_allowed(Timestamp t, double utc_offset_hours = 0.0) const;
};

/// Batched schedule for plan rows: users[i] (index into the model's members; ignored
/// without a model), validity_days[i] the benefit's catalog validity (> 0). When `quiet` is
/// given, its hours apply with utc_offset_hours[i] (per row; empty = 0). Outputs per row.
/// InputError naming the argument for mismatched lengths or bad values. Parallel.
PERKREC_INLINE void schedule_batch(const PreferenceModel* pref, Span<const Index> users,
                                   Timestamp plan_time, Span<const std::int32_t> validity_days,
                                   const QuietHours* quiet, Span<const float> utc_offset_hours,
                                   Span<Timestamp> send_at, Span<std::int32_t> validity_out,
                                   Span<std::uint8_t> from_model, const ScheduleParams& params = {},
                                   int num_threads = 0);

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/decide/ranker_impl.hpp"
#endif
