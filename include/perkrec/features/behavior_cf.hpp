// Leak-safe collaborative behaviour signal: item factors learned by implicit ALS
// (models/als.hpp) on what members bought or browsed STRICTLY BEFORE a cut time `as_of`, pooled
// over the items each benefit applies to and matched with what each sample's member did
// STRICTLY BEFORE the sample's time (an event at the same second is not visible).
//
// fit(log, as_of): the member x item matrix holds, per (member, item), the events of `actions`
// at times < as_of, each weighing 1, or 0.5 ^ (age_days / weight_half_life_days) with the age
// measured to as_of when weight_half_life_days > 0. ALS (factors, iterations, regularization,
// alpha, cg_steps, seed; confidence 1 + alpha x weight) learns member and item factors on it;
// the item factors are kept, the member factors dropped. An item with no such event keeps no
// factors (a zero row, has_factors() false): nothing was learnt about it. Events at or after
// as_of never change the item factors.
//
// transform(samples, log, benefit_items): for a sample (member u, benefit b, time t)
//   benefit vector  y_b    = the mean of the factors of b's items that have factors
//   member vector   x_u(t) = sum_e w_e y_item(e) / sum_e w_e over u's events e of `actions` at
//                   times t_e < t on items with factors, w_e = 0.5 ^ ((t - t_e) / half_life_days)
//                   (a fold-in proxy: where the member's recent behaviour sits in item space)
//   columns (behavior_cf_column_names(), in this order):
//     cf_dot     x_u(t) . y_b
//     cf_cosine  x_u(t) . y_b / (|x_u(t)| |y_b|)
// A sample whose member has no such earlier event (or is unknown to the log: index >=
// log.n_users()), or whose benefit has no item with factors, gets 0 in every column (as does a
// zero vector's cosine). The log of transform may be newer than the one of fit (the same items
// and action names): only its events before each sample's time are read.
//
// Algorithm: fit builds the matrix in two parallel passes over the members (count, then fill)
// and runs ALS::fit. transform groups the samples by member and sorts them by time; each
// member's events are swept once in time order into a decayed sum of item factors and of
// weights (kept at the time of the latest event, so no decay ever underflows to 0 / 0: the
// ratio of the two does not depend on the time it is read at), read by each sample in turn.
//
// Example:
//   perkrec::BehaviorCFParams p;
//   p.actions = {"purchase"};
//   p.factors = 16;
//   perkrec::BehaviorCF cf(p);
//   cf.fit(log, /*as_of=*/earliest_training_time);   // no behaviour at or after it is used
//   perkrec::BehaviorTable t = cf.transform({users, benefits, times}, log, benefit_items);
//   // t.names: cf_dot, cf_cosine
//   cf.save("cf.perk");  // the item factors, as_of and params (kind "BehaviorCF")
//
// Cost: fit O(events log events + ALS: iterations x (nnz x factors x cg_steps + (members +
// items) x factors^2)); transform O(samples log samples + events x factors + samples x (k +
// 1) x factors), k = items per benefit. Memory: the matrix (8 bytes per distinct member x item
// pair) and the factor tables during fit; transform, 8 bytes per sample of ordering plus the
// output. Parallel over members; the output does not depend on the thread count (ALS is
// thread-count invariant, see models/als.hpp).
// Thread safety: fit needs exclusive access; transform and the accessors are const and safe
// from any number of threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/error.hpp"
#include "perkrec/core/json.hpp"
#include "perkrec/core/params.hpp"
#include "perkrec/core/progress.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/data/behavior_log.hpp"
#include "perkrec/data/item_catalog.hpp"
#include "perkrec/features/behavior_features.hpp"
#include "perkrec/io/serializable.hpp"
#include "perkrec/models/factors.hpp"

namespace perkrec {

/// The output column names of BehaviorCF::transform, in order: cf_dot, cf_cosine.
PERKREC_INLINE const std::vector<std::string>& behavior_cf_column_names();

struct BehaviorCFParams {
  std::vector<std::string> actions = {"purchase"};  ///< action names of the log (1+, distinct)
  int factors = 16;                                 ///< latent dimension; 1..4096
  int iterations = 10;                              ///< ALS sweeps; >= 1
  float regularization = 0.1f;                      ///< ALS L2 penalty; >= 0
  float alpha = 1.0f;                               ///< ALS confidence 1 + alpha x weight; >= 0
  int cg_steps = 3;                    ///< ALS conjugate-gradient steps; 0 = exact Cholesky
  double half_life_days = 28.0;        ///< decay of the member vector's weights; finite, > 0
  double weight_half_life_days = 0.0;  ///< decay of the fit matrix's weights to as_of; >= 0,
                                       ///< 0 = plain event counts
  int num_threads = 0;                 ///< 0 = OpenMP default; never changes the output
  std::uint64_t seed = 42;             ///< ALS initialization stream

  static auto param_fields() {
    using P = BehaviorCFParams;
    return std::make_tuple(
        params::field("actions", &P::actions),  // names: validate()
        params::field("factors", &P::factors, params::closed(1, 4096)),
        params::field("iterations", &P::iterations, params::at_least(1)),
        params::field("regularization", &P::regularization, params::at_least(0)),
        params::field("alpha", &P::alpha, params::at_least(0)),
        params::field("cg_steps", &P::cg_steps, params::at_least(0)),
        params::field("half_life_days", &P::half_life_days, params::above(0)),
        params::field("weight_half_life_days", &P::weight_half_life_days, params::at_least(0)),
        params::field("num_threads", &P::num_threads, params::threads()),
        params::field("seed", &P::seed));
  }
  /// Throws ConfigError naming the field (empty or duplicate action, a value out of range).
  void validate() const;
  Json to_json() const;
  /// Strict: unknown keys and bad values throw ConfigError naming the JSON pointer.
  static BehaviorCFParams from_json(const Json& j);
};

class BehaviorCF : public Serializable<BehaviorCF> {
 public:
  static constexpr const char* kind = "BehaviorCF";

  /// Throws ConfigError for bad params.
  explicit BehaviorCF(BehaviorCFParams params = {});

  /// Learns the item factors from the events of `actions` strictly before `as_of` (see the file
  /// comment). Throws InputError (an action the log lacks, as_of out of [kMinTimestamp,
  /// kMaxTimestamp]) before changing anything; on any error (DivergenceError, Interrupted) the
  /// object is unchanged. Progress: ALS's, one unit per iteration.
  void fit(const BehaviorLog& log, Timestamp as_of, const Callbacks& callbacks = {});

  /// cf_dot and cf_cosine of every sample (float64 columns; see the file comment). Throws
  /// InputError for a log or benefit_items over another number of items, a negative member, a
  /// benefit out of range, an action the log lacks, or when not fitted.
  BehaviorTable transform(const BehaviorSamples& samples, const BehaviorLog& log,
                          const BenefitItems& benefit_items) const;

  /// The same values row-major (rows x 2): what FeatureEncoder uses. `num_threads` < 0 uses
  /// params().num_threads; the output never depends on it.
  std::vector<double> transform_matrix(const BehaviorSamples& samples, const BehaviorLog& log,
                                       const BenefitItems& benefit_items,
                                       const char* context = "BehaviorCF::transform",
                                       int num_threads = -1) const;

  bool fitted() const { return fitted_; }
  const BehaviorCFParams& params() const { return params_; }
  /// The cut time of the last fit (kNoTime before one).
  Timestamp as_of() const { return as_of_; }
  Index n_items() const { return items_.rows; }
  /// n_items x factors, row-major float32; rows of items without factors are zero.
  const detail::FactorTable& item_factors() const { return items_; }
  /// 1 for items with an event before as_of (they have factors), 0 otherwise.
  const std::vector<std::uint8_t>& has_factors() const { return has_factors_; }
  /// Threads of later calls (0 = OpenMP default); never changes the output.
  void set_num_threads(int num_threads);

  /// The fitted state as JSON (params, as_of, n_items, the items with factors and their
  /// factors, each float written as the shortest decimal that reads back to it): what
  /// FeatureEncoder stores. from_json reads it strictly (ModelFormatError naming the pointer).
  Json to_json() const;
  static BehaviorCF from_json(const Json& value, const std::string& pointer);

  bool operator==(const BehaviorCF& o) const;

  void write(ModelWriter& w, const std::string& prefix) const;
  static BehaviorCF read(const ModelReader& r, const std::string& prefix);

 private:
  void require_fitted(const char* method) const;

  BehaviorCFParams params_;
  bool fitted_ = false;
  Timestamp as_of_ = kNoTime;
  detail::FactorTable items_;
  std::vector<std::uint8_t> has_factors_;
};

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/features/behavior_cf_impl.hpp"
#endif
