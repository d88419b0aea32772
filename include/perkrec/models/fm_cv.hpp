// Model selection for redemption models by cross-validation: FMCV picks, on the training rows
// alone, between an L2-regularized logistic regression and an FM warm-started from it, so that
// on small sets the result does not lose to a well-tuned logistic regression and on sets with
// interactions it keeps the FM's gain.
//
// Stages (all on the rows given to fit; nothing else is looked at):
//   1. Folds: `folds` stratified folds, deterministic from `seed` (fold_of): the rows of each
//      label are shuffled by their own stream and dealt round-robin. With `target.groups` (one
//      id >= 0 per row: a member, a household), every group's rows stay in one fold (group
//      k-fold, as when the model will score members it never saw): groups are shuffled, then
//      placed largest positive count first, each in the fold with the fewest positives (then
//      rows) so far.
//   2. Regularization path: the exact logistic regression (FM with factors = 0) at every
//      reg_linear of `reg_linear_path`, from the strongest penalty to the weakest, each solve
//      warm-started from the previous one (to a gradient 1e-6 of its start: the ranking needs no
//      more), on every fold's training part; the held-out log-loss is pooled over the folds
//      (weighted by the held-out sample weights). The penalty with the
//      lowest CV log-loss wins (ties: the stronger one). Path values are penalties of the final
//      model on all rows; a fold trained on a share s of the weight uses reg_linear / s, so the
//      penalty per sample is the same (scikit-learn's LogisticRegressionCV keeps C, the same
//      rule: C = 1 / (reg_linear * n)).
//   3. FM candidates (factors > 0): for each reg_factors of `reg_factors_grid`, an FM on every
//      fold starts from that fold's logistic regression at the chosen penalty (bias and linear
//      weights; factors small random, init_std) and trains epoch by epoch with AdaGrad; the
//      pooled held-out log-loss after each epoch gives a CV curve, stopped `patience` epochs
//      after its best. The (reg_factors, epochs) with the lowest CV log-loss is the FM
//      candidate.
//   4. Choice: the FM when its CV log-loss is below the logistic regression's by more than
//      `min_improvement`, else the logistic regression.
//   5. Refit on all rows: the logistic regression at the chosen penalty; for the FM, `seeds`
//      FMs warm-started from it (seeds derived from `seed`) trained for the chosen epochs and
//      averaged (FM::average: one FM with seeds x factors factors).
//
// The result, model(), is a plain FM (factors = 0 for logistic regression), so everything that
// takes an FM (score_candidates, the planner, benefit_server, save / load) takes it. Its
// metadata holds {"selection": {"params": ..., "report": ...}} (report().to_json()), so a saved
// model says how it was chosen.
//
// Threads: folds (and the refit's seeds) run in parallel, each single-threaded, and the exact
// solver is thread-count invariant, so the selection and the model are bit-identical for any
// num_threads (on a given machine).
//
// Cost: the path costs folds x path length exact solves (warm-started: a few Newton steps
// each); the FM stage folds x candidates x epochs SGD passes over (folds - 1) / folds of the
// rows; memory: one copy of the rows per fold's training part and held-out part
// (folds x nnz x 8 bytes in all) plus each fold's models.
//
// Example:
//   perkrec::FMCVParams p;
//   p.factors = 8;
//   p.seeds = 3;
//   perkrec::FMCV cv(p);
//   cv.fit(train_rows, target, feature_fields, n_fields);
//   const perkrec::FM& model = cv.model();       // LR or FM, refit on all rows
//   bool fm_won = cv.report().factorized;
//   model.save("redemption.perk");
//
// Thread safety: fit needs exclusive access; the const methods are safe from any thread.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/json.hpp"
#include "perkrec/core/params.hpp"
#include "perkrec/core/progress.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/models/fm.hpp"

namespace perkrec {

struct FMCVParams {
  int folds = 5;  ///< cross-validation folds; in [2, 20]; each label needs >= folds rows
  /// Candidate penalties reg_linear of the logistic regression (mean log-loss +
  /// reg_linear / 2 |w|^2 on all rows); each finite and > 0; solved strongest first.
  std::vector<double> reg_linear_path = {1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4,
                                         1e-4, 3e-5, 1e-5, 3e-6, 1e-6};
  int factors = 8;  ///< factors of the FM candidate; in [0, 1024]; 0 = logistic regression only
  bool field_aware = false;  ///< the candidate is an FFM (O(nnz^2) per row) instead of an FM
  /// Candidate L2 penalties on the factors (per update, as FMParams::reg_factors); each finite
  /// and >= 0; not empty when factors > 0.
  std::vector<double> reg_factors_grid = {1e-4, 1e-3, 1e-2};
  float learning_rate = 0.02f;  ///< AdaGrad step of the FM candidate; > 0
  float init_std = 0.01f;       ///< standard deviation of its initial factors; >= 0
  int max_epochs = 30;          ///< epochs per FM candidate at most; >= 1
  int patience = 3;             ///< stop a candidate after this many epochs without a better
                                ///< CV log-loss; >= 1
  int seeds = 1;                ///< FMs averaged in the final model; >= 1, seeds x factors <= 1024
  /// The FM is chosen only when its CV log-loss is below the logistic regression's by more
  /// than this; >= 0.
  float min_improvement = 0.0f;
  int num_threads = 1;      ///< 0 = the OpenMP default; results do not depend on it
  std::uint64_t seed = 42;  ///< folds and the FMs' initial factors and visiting order

  static auto param_fields() {
    using P = FMCVParams;
    return std::make_tuple(
        params::field("folds", &P::folds, params::closed(2, 20)),
        params::field("reg_linear_path", &P::reg_linear_path),
        params::field("factors", &P::factors, params::closed(0, 1024)),
        params::field("field_aware", &P::field_aware),
        params::field("reg_factors_grid", &P::reg_factors_grid),
        params::field("learning_rate", &P::learning_rate, params::above(0)),
        params::field("init_std", &P::init_std, params::at_least(0)),
        params::field("max_epochs", &P::max_epochs, params::at_least(1)),
        params::field("patience", &P::patience, params::at_least(1)),
        params::field("seeds", &P::seeds, params::closed(1, 1024)),
        params::field("min_improvement", &P::min_improvement, params::at_least(0)),
        params::field("num_threads", &P::num_threads, params::threads()),
        params::field("seed", &P::seed));
  }
  void validate() const;
  Json to_json() const;
  /// Strict: unknown keys and bad values throw ConfigError naming the JSON pointer.
  static FMCVParams from_json(const Json& j);
};

/// What FMCV::fit measured and chose. Losses are pooled held-out log-losses over the folds.
struct FMCVReport {
  int folds = 0;
  std::vector<double> reg_linear_path;   ///< the path, strongest penalty first
  std::vector<double> path_loss;         ///< CV log-loss of the logistic regression per value
  double reg_linear = 0.0;               ///< the chosen penalty
  double linear_loss = 0.0;              ///< its CV log-loss
  std::vector<double> reg_factors_grid;  ///< the FM candidates (empty when factors = 0)
  std::vector<double> factors_loss;      ///< best CV log-loss per candidate (inf: diverged)
  std::vector<int> factors_epochs;       ///< its epoch count
  bool factorized = false;               ///< true: the FM was chosen; false: the LR
  double reg_factors = 0.0;              ///< the chosen FM's reg_factors (0 for the LR)
  int epochs = 0;                        ///< the chosen FM's epochs (0 for the LR)
  int seeds = 0;                         ///< FMs averaged in the model (0 for the LR)
  double loss = 0.0;                     ///< CV log-loss of the chosen candidate

  Json to_json() const;
};

class FMCV {
 public:
  explicit FMCV(FMCVParams params = {});

  /// Selects and refits (see the file comment). Labels 0 / 1; `target.groups`: empty, or one
  /// group id >= 0 per row whose rows stay in one fold (fold_of).
  /// `feature_fields[i]` in [0, n_fields) is the field of feature i. Throws InputError (shapes,
  /// labels, fields, fewer than `folds` rows of a label) before any state changes;
  /// DivergenceError when the final refit diverges.
  void fit(const CsrView<float>& X, const FMTarget& target, Span<const std::int32_t> feature_fields,
           std::int32_t n_fields, const Callbacks& callbacks = {});

  bool fitted() const { return fitted_; }
  /// The selected model refit on all rows. InputError when not fitted.
  const FM& model() const;
  const FMCVReport& report() const { return report_; }
  const FMCVParams& params() const { return params_; }
  Json get_params() const { return params_.to_json(); }
  /// Threads of later fits (0 = the OpenMP default); results do not depend on it.
  void set_num_threads(int num_threads) {
    resolve_num_threads(num_threads);
    params_.num_threads = num_threads;
  }

  /// The fold (in [0, folds)) of each row: per label, the rows shuffled by the stream
  /// (seed, label) and dealt round-robin, so fold sizes per label differ by at most one.
  static std::vector<std::int32_t> fold_of(Span<const float> labels, int folds, std::uint64_t seed);
  /// The same with groups (one id >= 0 per row; empty: the overload above): each group's rows
  /// in one fold; groups shuffled by the stream (seed, "GROUP"), then stably ordered by their
  /// positive count (largest first) and placed one by one in the fold with the fewest positive
  /// rows so far (groups without positives: the fewest negative rows), ties to the fewest
  /// rows, then the lowest fold. InputError when a group id is negative or the sizes differ.
  static std::vector<std::int32_t> fold_of(Span<const float> labels, int folds, std::uint64_t seed,
                                           Span<const Index> groups);

 private:
  FMCVParams params_;
  bool fitted_ = false;
  FM model_;
  FMCVReport report_;
};

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/models/fm_cv_impl.hpp"
#endif
