// Randomized experiments: deterministic holdout assignment and the analysis of the result.
//
// Assignment. A member's arm depends only on (user id, salt, weights): the id's UTF-8 bytes and
// the salt are hashed with FNV-1a 64 followed by the SplitMix64 finalizer
//   h = splitmix_finalize(fnv1a64(salt bytes, 0x00, user id bytes)),
// u = (h >> 11) * 2^-53 is uniform in [0, 1), and the arm is the first j with
// u < (w_0 + ... + w_j) / sum(w). The same member gets the same arm on every run, machine and
// thread count, and a new salt gives an independent draw. Changing the hash would reassign every
// member: the tests pin the arms of a few ids.
//
// Analysis. Rows are members; arm codes are 0 (control) .. n_arms - 1. For each arm a >= 1 and
// each metric (redemptions, orders, revenue, cost, ...) the result compares the arm's mean with
// the control's:
//   lift = mean_a(Y') - mean_0(Y'),  se = sqrt(var_a(Y') / n_a + var_0(Y') / n_0)  (Welch),
// with Y' = Y - theta (X - mean(X)) when the metric has a pre-period covariate X (CUPED;
// theta = cov(Y, X) / var(X) pooled over all rows), else Y' = Y. CUPED leaves the expected lift
// unchanged and shrinks its variance by the factor 1 - corr(Y, X)^2. The interval is
// lift +- z se and the p-value two-sided normal. When a cost column is given, the incremental
// return on cost roi = lift(Y') / lift(cost) gets a delta-method interval:
//   var(roi) = (var(dY) - 2 roi cov(dY, dC) + roi^2 var(dC)) / dC^2
// (each var/cov the sum of the two arms' var/n or cov/n). With `bootstrap` > 0 resamples, each
// arm is resampled with replacement inside itself (stream (seed, resample)), theta held fixed,
// and percentile intervals are reported beside the normal ones; the resamples run in parallel
// and give identical results for any thread count.
//
// Errors: mismatched lengths, non-finite values, arm codes outside [0, n_arms) and arms with
// fewer than 2 rows throw InputError naming the argument and row; bad params ConfigError.
// Cost: O(n * metrics) plus O(bootstrap * n * metrics). Thread safety: pure functions.
//
// Members of a log. experiment_members reads an event log with a random control group as an
// experiment, one row per member (the log's member index): control (a member with any
// control-flagged event), orders and revenue (ordered events and their amounts), cost (the
// cost per redemption of the benefits redeemed plus issue_cost per issue) in [since, until),
// and, when `since` is given, orders_pre / revenue_pre over the period of the same length just
// before it (the CUPED covariates). since defaults to the log's first event, until to one
// second after its last. Sums run over each member's events in log order. InputError for a
// log without the control flag, a cost vector of another length than the log's benefits, a
// non-finite or negative issue_cost, or since >= until. O(events), serial.
//
// Example:
//   std::vector<std::int32_t> arm = perkrec::assign_holdout(ids, "spring-2026", {0.9, 0.1});
//   perkrec::ExperimentParams p;
//   p.bootstrap = 1000;
//   auto rows = perkrec::analyze_experiment(arm, {revenue, orders}, {revenue_pre, {}}, cost, p);
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/params.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/data/event_log.hpp"

namespace perkrec {

/// The stable 64-bit hash of (user id, salt) used by assign_holdout (see the file comment).
PERKREC_INLINE std::uint64_t holdout_hash(std::string_view user_id, std::string_view salt);

/// Arm of each id (see the file comment). `weights` has at least 2 entries, each finite and
/// >= 0, summing to > 0. Parallel over ids; identical for any thread count.
PERKREC_INLINE std::vector<std::int32_t> assign_holdout(const std::vector<std::string>& user_ids,
                                                        std::string_view salt,
                                                        Span<const double> weights,
                                                        int num_threads = 0);

struct ExperimentParams {
  int n_arms = 0;            ///< arms (control included); 0 = 1 + the largest arm code; else >= 2
  double confidence = 0.95;  ///< interval coverage; in (0, 1)
  int bootstrap = 0;         ///< resamples for percentile intervals; 0 = none; <= 1e6
  bool cuped = true;         ///< use the pre-period covariates given (false ignores them)
  std::uint64_t seed = 42;   ///< bootstrap streams
  int num_threads = 0;       ///< 0 = OpenMP default
  static auto param_fields() {
    using P = ExperimentParams;
    return std::make_tuple(params::field("n_arms", &P::n_arms),  // 0 or >= 2: validate()
                           params::field("confidence", &P::confidence, params::open(0, 1)),
                           params::field("bootstrap", &P::bootstrap, params::closed(0, 1000000)),
                           params::field("cuped", &P::cuped), params::field("seed", &P::seed),
                           params::field("num_threads", &P::num_threads, params::threads()));
  }
  void validate() const;
};

/// One arm compared with the control on one metric. Fields without meaning (ROI without a cost
/// column or with zero incremental cost, bootstrap without resamples) are NaN.
struct ExperimentComparison {
  std::int32_t arm = 0;
  std::int32_t metric = 0;  ///< index into the metrics given
  Offset n_control = 0;
  Offset n_arm = 0;
  double control_mean = 0;  ///< raw means (before CUPED)
  double arm_mean = 0;
  double lift = 0;           ///< difference of (CUPED-adjusted) means
  double relative_lift = 0;  ///< lift / control_mean (NaN when control_mean is 0)
  double std_error = 0;
  double lower = 0;
  double upper = 0;
  double p_value = 1;
  double theta = 0;  ///< CUPED coefficient (0 without a covariate)
  double bootstrap_lower = 0;
  double bootstrap_upper = 0;
  double roi = 0;  ///< lift / incremental cost
  double roi_lower = 0;
  double roi_upper = 0;
  double roi_bootstrap_lower = 0;
  double roi_bootstrap_upper = 0;
};

/// See the file comment. `metrics[m]` holds one value per row; `pre_period` is empty or has one
/// entry per metric, each empty (no covariate) or one value per row; `cost` is empty or one
/// value per row. Results are ordered by arm, then metric.
PERKREC_INLINE std::vector<ExperimentComparison> analyze_experiment(
    Span<const std::int32_t> arms, const std::vector<Span<const double>>& metrics,
    const std::vector<Span<const double>>& pre_period = {}, Span<const double> cost = {},
    const ExperimentParams& params = {});

/// One entry per member of the log (see the file comment).
struct ExperimentMembers {
  std::vector<std::uint8_t> control;  ///< 1 = control member (arm 0 in analyze_experiment)
  std::vector<double> orders;         ///< ordered events in [since, until)
  std::vector<double> revenue;        ///< their order amounts
  std::vector<double> cost;           ///< redemption costs + issue_cost x issues in the window
  std::vector<double> orders_pre;     ///< the same before `since` (empty without since)
  std::vector<double> revenue_pre;    ///< (empty without since)
};

/// See the file comment. `cost_per_redemption` has one value per benefit of the log;
/// since / until = kNoTime take the defaults.
PERKREC_INLINE ExperimentMembers experiment_members(const EventLog& log,
                                                    Span<const double> cost_per_redemption,
                                                    Timestamp since = kNoTime,
                                                    Timestamp until = kNoTime,
                                                    double issue_cost = 0.0);

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/eval/experiment_impl.hpp"
#endif
