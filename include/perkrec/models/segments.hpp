// Segments: operator-editable named rules over member features, and seeded k-means++.
//
// Rules (strict JSON; unknown keys, duplicate keys and bad values are ConfigError naming the
// JSON pointer). Segments are tried in order; a member joins the first whose conditions all
// hold, else `default`:
//   {
//     "segments": [
//       {"name": "dormant", "description": "few recent orders; win back",
//        "all": [{"feature": "orders_90d", "op": "<=", "value": {"quantile": 0.5, "times": 0.5}}]},
//       {"name": "points_redemption_active",
//        "all": [{"feature": "top:kind", "op": "==", "value": "points"}]}
//     ],
//     "default": "other",
//     "min_confidence": 0.5,          (optional; 0 = never uncertain)
//     "uncertain": "uncertain",       (optional; the name of the uncertain outcome)
//     "calibration": {"strength": 1, "iterations": 1}   (optional; scored segments, below)
//   }
// A feature is a member feature of the PreferenceModel (feature_names(): recency_days,
// tenure_days, claim_rate, …), "pref:<dimension>" (the member's preference lift, e.g.
// "pref:kind:points"), or "top:<group>" (the value of the group's dimension with the highest
// lift, e.g. "top:kind" -> "points"; compare it with == or != and a string). Numeric ops:
// <, <=, >, >=, ==, !=. A condition on a NaN feature is false. A numeric value is either a
// number (an absolute threshold) or {"quantile": q, "times": t} (a threshold relative to the
// program: t x the q-quantile of the feature over the members with any event before the cut;
// q in [0, 1], t default 1), so the same rules carry over to programs with other activity
// levels and archetype mixes. PreferenceModel::segments reports each member's confidence (the
// probability of their segment under the posterior of their preferences) and, when
// min_confidence > 0, sends members whose most probable segment is below it to `uncertain`.
//
// Scored segments. A segment may carry a "score" instead of "all":
//       {"name": "points_redemption_active",
//        "score": {"bias": 0.6, "terms": [{"feature": "pref:kind:points", "weight": 2.68},
//                                          {"feature": "orders", "weight": -2.57}]}}
// (a segment has either "all" or "score", not both). Each term adds
// weight x log(max(v, 0.01 r) / r) for the member's value v of the feature (member features and
// "pref:<dimension>", not "top:") and the reference r: by default the median of the feature over
// the program's active members, or an absolute "reference" (> 0) given in the term; a NaN value
// adds 0 (a typical member), and so do a term whose program median is not > 0 and a
// "pref:scenario:<x>" or "pref:channel:<x>" term whose scenario or channel the catalog lacks
// (other unknown features are a ConfigError, as in conditions). Segments with
// "all" are tried first, in order; a member none of them takes goes to the scored segment or
// the default with the highest score, the default scoring 0 (a multinomial logit with the
// default as the reference: P(s) = exp(score_s) / (1 + sum over scored segments of
// exp(score))). Log ratios to the program's median do not move when every rate or count of a
// program is scaled, so scores carry over to programs with other activity levels; the
// confidence of a scored member is that softmax probability (times the probability that no
// "all" rule before it holds).
//
// Per-program calibration of the scored segments (optional, unsupervised):
//       "calibration": {"strength": 1.0, "iterations": 1}
// combines each member's softmax over the scored segments and the default, P(s | x), with
// what the program's own latent classes say (the PreferenceModel's class memberships m_uk,
// fitted on this program): over the members the scored segments compete for (any event
// before the cut, no "all" rule holding), q_ks = sum_u m_uk P(s | x_u) / sum_u m_uk is the
// share of segment s within class k and pi_s = mean_u P(s | x_u) its overall share; every
// scored segment and the default then adds strength x log(max(sum_k m_uk q_ks / pi_s, 1e-3))
// to its score (less the default's, which stays at 0): a naive-Bayes product of the score's
// posterior and the segment evidence of the member's classes. With iterations > 1 the shares
// are recomputed from the calibrated posteriors (the additions always go onto the original
// scores). strength >= 0 (finite, <= 10; 0 = off), iterations in [0, 100] (0 = off). Absent
// from a rules JSON = off, and off in the defaults (strength 0; set 1 to use it): strength 1
// with one iteration was chosen on simulator seeds 1 and 2 with the weights refitted on the
// other seed (+0.007 agreement there; share-only calibrations — label-shift EM on the
// segment shares, even with the true shares — gained <= 0.005), but on 12 programs never
// used for choices it moved agreement by -0.006 to +0.007 (mean +0.001; -0.001 on the three
// fresh seeds) and made the confidence higher than the agreement (BENCHMARKS.md). The sums run over
// members in fixed-size blocks reduced in block order, so the result is identical for any
// num_threads; with one latent class the calibration changes nothing. Log ratios and class
// memberships do not move when a program's rates and counts are scaled, so the calibrated segments
// carry over as the scores do.
//
// SegmentRules::defaults() name the six segments of the program brief, in this order:
//   new_member                    tenure_days < 0.5 x median ("all": a gate)
//   dormant, threshold_discount_sensitive, points_redemption_active, high_face_value_seeker:
//                                 scored, over the member features orders, orders_90d,
//                                 recency_days, recency_cycles, mean_interorder_days,
//                                 claim_rate_lift, expected_purchases and preference lifts
//   default: discount_indifferent_loyal (score 0)
// The weights are an L1-penalised multinomial logistic regression (C = 0.05) of the planted
// archetypes on these log ratios, fitted on simulator seeds 1 and 2 with two archetype mixes
// (members with >= 10 events before a cut 30 days before the end; weights relative to the
// default's, rounded to 0.01); bench/preference_truth.py --transfer measures them on other seeds
// next to a classifier trained on each program's own archetypes. min_confidence is 0 in the
// defaults (no uncertain outcome; set it, e.g. 0.5, to hold back unsure members), and so is
// the calibration by the latent classes (an option: "calibration": {"strength": 1}).
// SegmentRules::threshold_defaults() are the relative threshold rules that were the defaults
// before (new_member tenure_days < 0.5 x median; dormant orders_90d <= 0.5 x median;
// pref:kind:threshold_discount >= 1.6 x median; pref:kind:points >= 1.7 x median;
// pref:face_value:>=30 >= 1.1 x median), and SegmentRules::absolute_defaults() the absolute rules
// before those (tenure_days < 110, orders_90d <= 4, lifts >= 1.5 / 1.4 / 1.1; tuned on seed 3).
//
// k-means: kmeans++ initialisation drawn from Rng(seed, 0, pass), Lloyd iterations with the
// assignment parallel over rows and the centroid sums reduced over fixed-size blocks in block
// order, so the result is identical for any num_threads.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/json.hpp"
#include "perkrec/core/types.hpp"

namespace perkrec {

struct SegmentCondition {
  enum class Op : std::uint8_t { lt, le, gt, ge, eq, ne };
  std::string feature;
  Op op = Op::gt;
  double value = 0.0;  ///< for numeric features: the threshold (when quantile is NaN)
  /// Relative threshold: `times` x the `quantile` of the feature over the program's active
  /// members (any event before the cut); NaN = use `value`. quantile in [0, 1], times finite.
  double quantile = std::numeric_limits<double>::quiet_NaN();
  double times = 1.0;
  std::string text;  ///< for "top:<group>" features
  bool is_text = false;
  bool relative() const { return !std::isnan(quantile); }
};

/// One term of a segment score: weight x log(max(v, 0.01 reference) / reference).
struct SegmentTerm {
  std::string feature;  ///< a member feature or "pref:<dimension>"
  double weight = 0.0;  ///< finite
  /// > 0; NaN = the median of the feature over the program's active members.
  double reference = std::numeric_limits<double>::quiet_NaN();
  bool relative() const { return std::isnan(reference); }
};

/// A segment's score: bias + sum of its terms (see the file comment).
struct SegmentScore {
  double bias = 0.0;  ///< finite
  std::vector<SegmentTerm> terms;
};

struct SegmentRule {
  std::string name;
  std::string description;
  std::vector<SegmentCondition> all;  ///< every condition must hold (empty = always)
  /// A scored segment competes by `score` (after every "all" rule); `all` is then empty.
  bool scored = false;
  SegmentScore score;
};

/// Per-program calibration of the scored segments by the latent classes (see the file comment).
struct SegmentCalibration {
  double strength = 0.0;  ///< weight of the class evidence; finite, in [0, 10]; 0 = off
  int iterations = 1;     ///< share re-estimation rounds; [0, 100]; 0 = off
  bool enabled() const { return strength > 0.0 && iterations > 0; }
};

struct SegmentRules {
  std::vector<SegmentRule> segments;
  std::string default_segment = "other";
  /// A member whose most probable segment has probability below `min_confidence` goes to the
  /// segment `uncertain` (placed after the default); 0 = never.
  double min_confidence = 0.0;
  std::string uncertain = "uncertain";
  /// Off unless set (also in defaults()); acts on scored segments only.
  SegmentCalibration calibration;

  /// The documented default rules (relative to the program, see the file comment).
  static SegmentRules defaults();
  /// The relative threshold rules that were the defaults before the scored ones.
  static SegmentRules threshold_defaults();
  /// The absolute rules that were the defaults before issue 16 (tuned on simulator seed 3).
  static SegmentRules absolute_defaults();
  /// Parses the JSON schema above; throws ConfigError naming the JSON pointer.
  static SegmentRules from_json(std::string_view text);
  static SegmentRules from_json_value(const Json& j);
  Json to_json() const;
  /// Segment names in code order: the rules' names, the default, then `uncertain` when
  /// min_confidence > 0.
  std::vector<std::string> names() const;
};

struct KMeansResult {
  int k = 0;
  int dim = 0;
  std::vector<std::int32_t> assignment;  ///< per row, in [0, k)
  std::vector<float> centroids;          ///< k x dim
  std::vector<Index> sizes;              ///< rows per cluster
  double inertia = 0.0;                  ///< sum of squared distances to the centroids
  int iterations = 0;
};

/// k-means++ over `rows` x `dim` row-major `data` (see the file comment). Throws InputError
/// for non-finite data or k out of [1, rows].
PERKREC_INLINE KMeansResult kmeans(const float* data, Index rows, int dim, int k,
                                   std::uint64_t seed, int max_iterations = 50,
                                   int num_threads = 0);

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/models/segments_impl.hpp"
#endif
