// PreferenceModel: how each member responds to each kind of benefit, which named segment they
// belong to, and when to reach them.
//
// Preference vectors. For every member u and benefit attribute dimension d (BenefitDimensions:
// kinds, face-value bands, threshold bands, scopes, scenarios, channels) the model estimates
// the member's claim rate for benefits with that attribute, rate[u,d] = P(claim | issued, d)
// (the response event is configurable: `response` = redeemed for logs without claims),
// and reports preference[u,d] = rate[u,d] / population_rate[d]: 1 = responds like the average
// member, 2 = twice as often. Estimation, with every count time-decayed by its age at the cut
// (weight 2^(-age / half_life_days)):
//  1. Counts per member and dimension: issued n[u,d] and claimed k[u,d]; per issuing channel,
//     issued and viewed.
//  2. Pooled prior. A latent-class model (EM, `latent_classes` classes)
//     groups members whose responses move together: each class has a response rate per
//     benefit, and a member's membership r[u,c] comes from the exact Bernoulli likelihood of
//     their responses per trial (claims per view when the log records views — the view itself
//     mostly reflects channel habits — else per issue), plus two behaviours segments differ
//     in: order frequency (negative binomial over the member's tenure) and, for claims, how
//     often a claimed benefit gets redeemed. Initialised by k-means++ on population-shrunk
//     lifts of up to 50,000 members (fixed stride). The member's prior mean is
//     mu[u,d] = sum_c r[u,c] theta[c,d] (theta: the classes' claim rates per dimension, shrunk
//     toward the population), corrected by how much more (or less) often the member opens
//     each issuing channel than their classes do (views reveal channel affinity).
//     With latent_classes = 1 the prior is the population rate: plain empirical Bayes.
//  3. Beta-binomial shrinkage: rate[u,d] = (k[u,d] + M[d] mu[u,d]) / (n[u,d] + M[d]), where the
//     prior strength M[d] is fitted by maximizing the beta-binomial marginal likelihood (or
//     fixed by `prior_strength`). A member with two events stays near their prior (near the
//     population when the classes cannot place them); one with many approaches their own rate.
//  4. Credible interval at level `interval`: around the rate of step 3, half-width = the
//     level's quantile of a Student t with 6 degrees of freedom scaled to unit variance x the
//     posterior sd (heavier tails than the normal: the spread varies across members more than
//     one value per class and dimension says), clipped to [0, 1] before dividing by the
//     population rate; the sd is that of a
//     posterior that knows how far members stray from their class. The individual spread
//     around class c in dimension d is tau2[c,d] = theta[c,d] (1 - theta[c,d]) x share[d],
//     share[d] by the method of moments: the variance of the members' own rates (that of
//     their raw rates less the binomial part) less the variance between the class rates, over
//     the classes' mean theta (1 - theta). The member's variance is sum_c r[u,c] x
//     Var Beta(k + S m_c, n - k + S (1 - m_c)) (k, n: the decayed counts scaled back to the
//     member's number of issues),
//     m_c = theta[c,d] x the member's channel factor,
//     S = 1 / share[d] - 1 (0.5 .. 1e6): the within-class posteriors mixed by the memberships.
//     A fixed `prior_strength` M fixes S = M as well.
//     Why not M[d]: the prior means of step 2 were fitted on the same responses, so the
//     responses look less dispersed around them than around a prior that had not seen them,
//     and the marginal likelihood puts M at the top of its grid; intervals built on it covered
//     63% of the simulator's planted truths at the 90% level. Why not also the spread between
//     the class rates a member may belong to: on the simulator that overcovered (normal shape,
//     one seed: 0.57 at the 50% level, 0.95 at 90%); the within-class variances alone hold
//     the levels (BENCHMARKS.md, issue 16).

// score(u, b) = log(base_rate[b]) + mean over b's dimensions of log preference[u,d]: the log of
// the member's expected claim rate for b (base_rate = the population's claim rate of b), which
// makes the model a content-based recommender (recommend() ranks by it).
//
// Member features (feature_names(), for segment rules and reports): issued, claimed, orders,
// claim_rate, claim_rate_lift (member's shrunk overall claim rate / population), recency_days,
// tenure_days (0 for a member without events before the cut), mean_interorder_days, recency_cycles
// (recency / mean inter-order days), orders_90d, p_alive, expected_purchases (BG/NBD, next
// `horizon_days`).
//
// Timing. Hour-of-week profile: the member's order times binned into 168 UTC slots (Monday
// 00:00 = slot 0), posterior mean under a Dirichlet prior of `timing_prior_strength`
// pseudo-orders spread like the population profile. Best send slot: the weekday with the most
// posterior mass and, within the day, the hour whose circular ±2-hour window (weights
// 1,2,3,2,1) has the most mass. Repurchase: a gamma renewal per member over the orders that
// carried no redemption (the member's own rhythm, without the extra purchases benefits
// trigger; all orders when every one carried a benefit) — mean inter-order days
// and regularity 1/CV^2, both shrunk toward the population) gives the expected next order
// (mean residual life given the days since the last order), the send date ahead of it
// (lead = min(2 days, a quarter cycle)), and a validity window covering the lead plus one
// standard deviation of the member's inter-order time (3..30 days). BG/NBD, fitted by maximum
// likelihood over up to 10,000 members with an order (a fixed-stride sample), gives P(alive)
// and expected purchases.
//
// Segments and clusters: see models/segments.hpp. clusters(k) runs seeded k-means++ on the
// log preference vectors and describes each cluster by its most over-represented dimensions.
// group_preferences(segments(rules).codes, ...) gives each segment's mean preference vector.
//
// Example:
//   perkrec::PreferenceModel model;                 // PreferenceParams defaults
//   model.fit(program.events, program.catalog, cut);
//   float lift = model.preference(u, model.dimensions().find("kind:points"));
//   auto seg = model.segments(perkrec::SegmentRules::defaults());
//   perkrec::TopK top = model.recommend(users, 5);
//
// Thread safety: fit needs exclusive access; every const method is safe from many threads.
// Cost: fit is O(events x dimensions per benefit + members x dimensions x latent_classes x
// em_iterations); memory O(members x dimensions).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/json.hpp"
#include "perkrec/core/params.hpp"
#include "perkrec/core/progress.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/data/benefit_dimensions.hpp"
#include "perkrec/data/catalog.hpp"
#include "perkrec/data/event_log.hpp"
#include "perkrec/data/id_map.hpp"
#include "perkrec/data/user_table.hpp"
#include "perkrec/io/serializable.hpp"
#include "perkrec/models/recommender.hpp"
#include "perkrec/models/segments.hpp"
#include "perkrec/models/timing.hpp"

namespace perkrec {

struct PreferenceParams {
  double half_life_days = 365.0;       ///< time decay of events; > 0, or 0 = no decay
  double prior_strength = 0.0;         ///< pseudo-issues of the prior; 0 = fitted (EB), else > 0
  int latent_classes = 8;              ///< classes of the pooled prior; 1..64 (1 = population)
  int em_iterations = 20;              ///< EM sweeps for the latent classes; >= 0
  double interval = 0.9;               ///< credible interval level; (0, 1)
  double timing_prior_strength = 8.0;  ///< Dirichlet pseudo-orders of the hour profile; > 0
  double horizon_days = 30.0;          ///< BG/NBD expected-purchase horizon; > 0
  /// The event that counts as a member's response to an issued benefit: claimed (default) or
  /// redeemed (for logs without claims, e.g. coupon data that only records redemptions).
  EventType response = EventType::claimed;
  BenefitDimensionsParams dimensions;  ///< band edges of the dimensions
  /// Numeric columns of the member table that hold epoch-second times (signup, first
  /// purchase). A row whose time lies at or after the cut belongs to a member who joined after
  /// the cut: all its attributes are ignored (counted in UserTableReport::joined_after_cut).
  /// Known times enter the covariates as days before the cut. Absent columns are skipped.
  std::vector<std::string> user_time_columns = {"signup_time"};  ///< JSON: also member_time_columns
  std::uint64_t seed = 42;
  int num_threads = 0;  ///< 0 = OpenMP default

  /// JSON keys: these names, with the dimensions' keys at the top level.
  static auto param_fields() {
    using P = PreferenceParams;
    static constexpr params::EnumName<EventType> kResponses[] = {{EventType::claimed, "claimed"},
                                                                 {EventType::redeemed, "redeemed"}};
    return std::make_tuple(
        params::field("half_life_days", &P::half_life_days, params::at_least(0)),
        params::field("prior_strength", &P::prior_strength, params::at_least(0)),
        params::field("latent_classes", &P::latent_classes, params::closed(1, 64)),
        params::field("em_iterations", &P::em_iterations, params::at_least(0)),
        params::field("interval", &P::interval, params::open(0, 1)),
        params::field("timing_prior_strength", &P::timing_prior_strength, params::above(0)),
        params::field("horizon_days", &P::horizon_days, params::above(0)),
        params::field("response", &P::response, kResponses), params::flattened(&P::dimensions),
        params::renamed_from(params::field("user_time_columns", &P::user_time_columns),
                             "member_time_columns"),
        params::field("seed", &P::seed),
        params::field("num_threads", &P::num_threads, params::threads()));
  }
  void validate() const;
  Json to_json() const;
  /// Strict: unknown keys and bad values throw ConfigError naming the JSON pointer.
  static PreferenceParams from_json(const Json& j);
};

/// One member's timing recommendation (days are counted from the cut time).
struct MemberTiming {
  int best_slot = -1;            ///< hour-of-week slot, Monday 00:00 UTC = 0
  float next_purchase_days = 0;  ///< expected days from the cut to the next order
  float send_in_days = 0;        ///< recommended send, days after the cut
  float validity_days = 0;       ///< recommended validity window
  float p_alive = 0;             ///< BG/NBD probability the member is still active
  float expected_purchases = 0;  ///< BG/NBD expected orders in horizon_days
};

/// How the member table given to fit lined up with the log (see PreferenceModel::fit).
struct UserTableReport {
  Index rows = 0;            ///< rows of the member table
  Index matched = 0;         ///< rows whose attributes were used
  Index unknown_to_log = 0;  ///< rows whose member id the log lacks: ignored
  Index joined_after_cut =
      0;                     ///< rows of log members whose time column lies after the cut: ignored
  Index without_row = 0;     ///< log members without a usable row: every attribute missing
  Index missing_values = 0;  ///< missing attribute values among the used rows
};
using MemberTableReport [[deprecated("use UserTableReport")]] = UserTableReport;

/// Segment assignment: codes index `names`.
struct SegmentAssignment {
  std::vector<std::string> names;
  std::vector<std::string> descriptions;
  std::vector<std::int32_t> codes;  ///< per member
  std::vector<Index> sizes;         ///< per segment
  /// Per member: the probability of the segment the rules give (see segments()).
  std::vector<float> confidence;
  /// The rules with every relative threshold replaced by its value on this program.
  SegmentRules resolved;
};

/// k-means clusters of the preference vectors with automatic descriptions.
struct PreferenceClusters {
  KMeansResult kmeans;
  std::vector<std::string> descriptions;  ///< per cluster, e.g. "kind:points +1.20, ..."
};

class PreferenceModel : public Serializable<PreferenceModel> {
 public:
  static constexpr const char* kind = "PreferenceModel";
  static constexpr int kSlots = 168;

  explicit PreferenceModel(PreferenceParams params = {});

  /// Fits on the events of `log` before `cut_time`. `catalog` must be the log's catalog.
  /// Throws InputError when the catalog does not match, the log is empty, or no event lies
  /// before the cut; on error the model is unchanged. Progress phases: "counts", "classes",
  /// "timing".
  void fit(const EventLog& log, const Catalog& catalog, Timestamp cut_time,
           const Callbacks& callbacks = {});
  /// As above, with member attributes as covariates of the latent-class prior: the mixing
  /// weights become pi_k(member) = softmax_k(W_k . x(member)), x = [1, one-hot of every
  /// categorical column (missing = all zero), every numeric column standardized (missing =
  /// the mean, plus a "<column>:missing" indicator when any value is missing)]. Each EM
  /// sweep refits W by two Boehning-bound Newton steps (L2 penalty 1 on the non-intercept
  /// weights) on the responsibilities; deterministic for any thread count.
  ///
  /// `users` is the member table as of the cut, matched to the log's members by id (by row
  /// position when the log carries no ids): rows of members the log lacks are ignored; log
  /// members without a row have every attribute missing; a row whose `user_time_columns`
  /// value lies at or after the cut (a member who joined after the cut) is ignored like an
  /// absent row, so giving the attributes of future members never changes the fit. Centring
  /// and scaling use the used rows only. The counts are in user_table_report(). InputError
  /// when no row matches a member of the log, or a time column is not numeric.
  void fit(const EventLog& log, const Catalog& catalog, Timestamp cut_time, const UserTable& users,
           const Callbacks& callbacks = {});
  /// Covariate encoding and weights (empty when fitted without users): feature names, and
  /// weights [n_classes x (1 + covariate_names().size())], intercept first.
  const std::vector<std::string>& covariate_names() const { return covariate_names_; }
  const std::vector<double>& covariate_weights() const { return covariate_weight_; }
  /// How the member table of the last fit lined up with the log (all zero when fitted without
  /// one; not saved with the model).
  const UserTableReport& user_table_report() const { return member_table_report_; }
  [[deprecated("use user_table_report")]] const UserTableReport& member_table_report() const {
    return user_table_report();
  }
  /// Mixing weights pi_k(member) of the class prior for rows of `users` (encoded as in fit,
  /// times as of the model's cut; rows whose time lies after the cut count as missing); the
  /// global class weights when fitted without users.
  std::vector<double> class_prior(const UserTable& users) const;

  bool fitted() const { return fitted_; }
  Index n_users() const { return n_users_; }
  Index n_benefits() const { return n_benefits_; }
  int n_dimensions() const { return n_dims_; }
  Timestamp cut_time() const { return cut_time_; }
  const PreferenceParams& params() const { return params_; }
  Json get_params() const { return params_.to_json(); }
  /// Threads of later calls: 0 = the OpenMP default, at most kMaxThreads. A loaded model
  /// keeps the count it was saved with until the service sets its own. Needs exclusive access.
  void set_num_threads(int num_threads) {
    resolve_num_threads(num_threads);
    params_.num_threads = num_threads;
  }
  const std::vector<std::string>& dimension_names() const { return dimension_names_; }

  /// members x dimensions, row-major: preference (lift), interval bounds, posterior rate.
  const std::vector<float>& preferences() const { return preference_; }
  const std::vector<float>& lower() const { return lower_; }
  const std::vector<float>& upper() const { return upper_; }
  float preference(Index u, int d) const;
  /// Credible intervals at any `level` in (0, 1) (members x dimensions, lift scale): the same
  /// shape as lower()/upper() (which hold level params().interval; file comment, step 4), from the
  /// stored posterior sd of each rate. InputError for a level outside (0, 1). Cost
  /// O(members x dimensions); thread-safe.
  void intervals(double level, std::vector<float>& lower, std::vector<float>& upper) const;
  /// Posterior sd of each member's claim rate per dimension (rate scale, members x dimensions).
  const std::vector<float>& posterior_sd() const { return posterior_sd_; }
  /// Population claim rate and fitted prior strength per dimension.
  const std::vector<double>& population_rate() const { return population_rate_; }
  const std::vector<double>& prior_strength() const { return prior_strength_; }
  /// Individual spread behind the intervals: the variance of the members' claim rates around
  /// their class's rate (classes x dimensions, rate scale; see the file comment, step 4).
  /// Empty for a model saved before it was stored.
  const std::vector<double>& individual_spread() const { return individual_spread_; }
  /// Latent classes: class rates (classes x dimensions), weights, memberships (members x
  /// classes).
  const std::vector<float>& class_rates() const { return class_rate_; }
  const std::vector<float>& class_weights() const { return class_weight_; }
  const std::vector<float>& memberships() const { return membership_; }
  int n_classes() const { return n_classes_; }
  /// Population claim rate of each benefit.
  const std::vector<float>& benefit_base_rate() const { return base_rate_; }

  /// Member features (members x features, row-major) and their names.
  const std::vector<std::string>& feature_names() const { return feature_names_; }
  const std::vector<float>& features() const { return features_; }

  /// out[i] = score(users[i], benefits[i]) (see the file comment). InputError on bad ids.
  void score(Span<const Index> users, Span<const Index> benefits, Span<float> out) const;
  /// Top-n benefits by score; see models/recommender.hpp for filters.
  TopK recommend(Span<const Index> users, int n, const Filter& filter = {}) const;

  /// Segment of every member under `rules`: the first "all" rule whose conditions hold on the
  /// point estimates, else the scored segment or default with the highest score (softmax over
  /// them, the default scoring 0; models/segments.hpp). Relative thresholds ({"quantile",
  /// "times"}) and score references resolve over the members with any event before the cut
  /// (SegmentAssignment::resolved shows the values). Confidence: each
  /// preference condition holds with probability Phi(distance to the threshold / sd), sd from
  /// the member's interval (its half-width over the level's quantile, step 4); other conditions are
  /// 0 or 1; conditions of a rule are independent, and segment s has probability P(rule s) x prod
  /// of (1 - P(rule r)) over earlier rules r (a scored segment or the default: the product over
  /// all rules x its softmax share). With rules.calibration enabled, the scores first take the
  /// evidence of the member's latent classes (memberships()) computed over this program's members
  /// (models/segments.hpp; identical for any num_threads). confidence = that of the assigned
  /// segment; with
  /// rules.min_confidence > 0 a member whose most probable segment is below it gets
  /// rules.uncertain. Throws ConfigError naming the rule when a rule uses an unknown feature,
  /// dimension or group. Cost O(members x (conditions + terms + iterations x classes x segments)),
  /// plus a sort per relative condition or term; memory members x segments doubles.
  SegmentAssignment segments(const SegmentRules& rules) const;
  /// Mean preference vector of the members of each group (a segment's profile: group =
  /// SegmentAssignment::codes): `group` holds one code per member (n_users of them) in [0,
  /// n_groups) or -1 for none; returns n_groups x n_dimensions, row-major, NaN for a group
  /// without members. Sums in double in member order. O(members x dimensions), serial.
  /// InputError for a wrong length, a code out of range or n_groups < 0.
  std::vector<double> group_preferences(Span<const std::int32_t> group,
                                        std::int32_t n_groups) const;
  /// k-means++ clusters of the log preference vectors (seeded by params().seed).
  PreferenceClusters clusters(int k, int max_iterations = 50) const;

  /// Timing of every member.
  const std::vector<MemberTiming>& timing() const { return timing_; }
  /// Member u's posterior hour-of-week profile (sums to 1).
  std::array<float, kSlots> hour_of_week_profile(Index u) const;
  const std::vector<double>& population_hour_of_week() const { return population_slots_; }
  const BGNBD& bgnbd() const { return bgnbd_; }

  void set_ids(IdMap users, IdMap benefits);
  const IdMap& user_ids() const { return user_ids_; }
  const IdMap& benefit_ids() const { return benefit_ids_; }

  void write(ModelWriter& w, const std::string& prefix) const;
  static PreferenceModel read(const ModelReader& r, const std::string& prefix);

 private:
  void require_fitted(const char* method) const;
  void fit_impl(const EventLog& log, const Catalog& catalog, Timestamp cut_time,
                const UserTable* users, const Callbacks& callbacks);
  float member_score(Index u, Index b) const;

  PreferenceParams params_;
  bool fitted_ = false;
  Index n_users_ = 0;
  Index n_benefits_ = 0;
  int n_dims_ = 0;
  int n_classes_ = 0;
  Timestamp cut_time_ = 0;
  std::vector<std::string> dimension_names_;
  std::vector<int> dimension_group_;               // per dimension, BenefitDimensions::Group
  std::vector<std::int32_t> benefit_dim_offsets_;  // benefit -> dims (CSR)
  std::vector<std::int32_t> benefit_dims_;
  std::vector<double> population_rate_;
  std::vector<double> prior_strength_;
  std::vector<double> individual_spread_;  // classes x dims
  std::vector<float> class_rate_;
  std::vector<float> class_weight_;
  std::vector<float> membership_;
  std::vector<std::string> covariate_names_;  // "col" (numeric) or "col=category"
  std::vector<double> covariate_center_;      // per covariate: subtracted, then divided by scale
  std::vector<double> covariate_scale_;
  std::vector<double> covariate_weight_;  // [n_classes x (1 + covariates)], intercept first
  UserTableReport member_table_report_;
  std::vector<float> base_rate_;
  std::vector<float> preference_;
  std::vector<float> lower_;
  std::vector<float> upper_;
  std::vector<float> posterior_sd_;  // rate scale, behind the intervals
  std::vector<std::string> feature_names_;
  std::vector<float> features_;
  std::vector<MemberTiming> timing_;
  std::vector<Offset> slot_offsets_;  // member -> order slots (CSR)
  std::vector<std::uint8_t> slots_;
  std::vector<double> population_slots_;
  BGNBD bgnbd_;
  IdMap user_ids_;
  IdMap benefit_ids_;
};

namespace detail::pref {
/// PreferenceModel::fit's shrinkage stage for one member and dimension: the Beta posterior of
/// the member's rate after `responses` (capped at `trials`) in `trials` under the prior
/// Beta(strength x prior_mean, strength x (1 - prior_mean)):
///   mean = (responses + strength x prior_mean) / (trials + strength),
/// i.e. the member's own rate pulled toward prior_mean with weight strength / (trials + strength).
/// sd adds (strength / (trials + strength))^2 x class_spread (the variance of the class rates
/// the prior mean mixes) to the Beta variance (law of total variance).
struct BetaPosterior {
  double mean = 0.0;
  double sd = 0.0;
};
PERKREC_INLINE BetaPosterior beta_posterior(double trials, double responses, double strength,
                                            double prior_mean, double class_spread);
/// fit's empirical-Bayes stage: per dimension, the prior strength on the grid 0.5, 1, 2, ...,
/// 1024 that maximizes the beta-binomial likelihood of the (decayed) issues and responses of
/// every max(1, n / 5000)-th member around their prior means (rows n x dims, row-major);
/// `fixed_strength` > 0 skips the search and gives it for every dimension.
PERKREC_INLINE std::vector<double> prior_strength(Span<const float> issued,
                                                  Span<const float> claimed,
                                                  Span<const float> prior_mean, Index n,
                                                  std::size_t dims, double fixed_strength,
                                                  int threads);
/// fit's individual-spread stage: per class c and dimension d, the variance of the members' own
/// rates around the class rate theta[c,d] = class_rates[c x dims + d], as
/// theta (1 - theta) x share[d], with one share per dimension by the method of moments over the
/// members with at least one (decayed) issue there (rows n x dims; memberships n x classes,
/// row-major): the variance of the members' rates (that of their raw rates k/n less the
/// binomial part) less the variance between the class rates (classes weighted by the summed
/// memberships), over sum_c weight_c theta_c (1 - theta_c); share clipped to [0, 1] (0: no
/// spread beyond the classes). `count_scale` (n, or empty = 1) turns each member's decayed
/// issues into a number of issues for the binomial part (fit: the member's issues over their
/// decayed weight). Result classes x dims. Deterministic for any thread count.
PERKREC_INLINE std::vector<double> individual_spread(Span<const float> issued,
                                                     Span<const float> claimed,
                                                     Span<const float> memberships,
                                                     Span<const double> class_rates,
                                                     Span<const double> count_scale, Index n,
                                                     std::size_t dims, int classes, int threads);
/// fit's interval variance for one member and dimension: sum_c memberships[c] x the variance of
/// the Beta posterior after `responses` (capped at `trials`) in `trials` under the prior
/// Beta(S m_c, S (1 - m_c)), m_c = class_means[c] and S chosen so that the prior's variance is
/// class_spread[c] (S = m_c (1 - m_c) / class_spread[c] - 1, within [0.5, 1e6]).
PERKREC_INLINE double within_class_variance(double trials, double responses,
                                            Span<const float> memberships,
                                            Span<const double> class_means,
                                            Span<const double> class_spread);
}  // namespace detail::pref

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/models/preference_impl.hpp"
#endif
