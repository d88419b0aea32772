// Factorization machines: FM (bias, linear terms and factorized pairwise interactions) and its
// field-aware variant FFM, over sparse feature rows — member attributes, benefit attributes,
// context, ids and history aggregates, as built by perkrec.FeatureEncoder.
//
// Rows are a CsrView<float> (rows = samples, cols = n_features, data = feature values or null
// for all ones). Every feature belongs to one field (`feature_fields`, given to fit); FFM keeps
// one factor vector per (feature, other field).
//
//   FM score  = w0 + sum_i w_i x_i + sum_{i<j} <v_i, v_j> x_i x_j
//   FFM score = w0 + sum_i w_i x_i + sum_{i<j} <v_{i,field(j)}, v_{j,field(i)}> x_i x_j
//
// Losses: logistic (label in {0, 1}; predict gives a probability), squared (any real label,
// e.g. order amount), bpr (pairwise ranking within groups such as a member's candidates: a row
// with a higher label should score above a row of the same group with a lower one).
// Optimizers: plain SGD or AdaGrad; L2 per parameter group (bias, linear, factors).
//
// factors = 0 is logistic regression (bias + linear terms; with the squared loss, ridge
// regression), solved exactly: a deterministic full-batch Newton method (conjugate-gradient
// steps, line search, double precision) minimizes
//
//   (1/W) sum_i c_i loss_i + reg_bias/2 w0^2 + reg_linear/2 |w|^2,   W = sum_i c_i
//
// (c_i the sample weights, 1 when absent) to a relative gradient norm of 1e-9 or at most
// FM::kExactMaxIterations steps; `epochs`, `learning_rate`, `optimizer`, `init_std` and
// `shuffle` are not used, and each history entry is one Newton step. In scikit-learn's terms
// (LogisticRegression minimizes C sum_i loss_i + |w|^2/2, intercept not penalized):
// reg_linear = 1 / (C n) with reg_bias = 0, n = the number of rows. Every sum has a fixed order,
// so the result is bit-identical for any num_threads. partial_fit re-solves on the new rows,
// warm-started from the fitted parameters. (bpr with factors = 0 trains a linear model by SGD.)
//
// With factors > 0, training is SGD over rows. The defaults are reproducible: seed = 42 and
// num_threads = 1 make two fits on the same data bit-identical (on a given machine). Any other
// thread count (0 = the OpenMP default) trains lock-free ("Hogwild") with perkrec::parallel_for:
// updates race benignly, so results differ slightly from run to run, in exchange for speed
// where memory bandwidth allows (little on 2 cores: 3.24 vs 3.28 s per epoch, issue 14).
// Scoring and the exact solver (factors = 0) are identical for any thread count. Each epoch checks
// that the loss and every parameter are finite; on divergence it restores the parameters from the
// start of that epoch (the last finite model) and throws DivergenceError.
//
// Cost: FM O(nnz * factors) per sample and epoch; FFM O(nnz^2 * factors). factors = 0 (exact):
// O(nnz) per conjugate-gradient step (typically 5-30 Newton steps of a few to a few hundred CG
// steps each) and one transposed copy of X (nnz x 8 bytes) plus a few doubles per row.
//
// Example:
//   perkrec::FMParams p;
//   p.factors = 8;
//   p.epochs = 10;
//   perkrec::FM fm(p);
//   fm.fit(train_rows, labels, feature_fields, n_fields);
//   std::vector<float> prob(test_rows.rows);
//   fm.predict(test_rows, prob);
//   // One member in one context against every candidate benefit, reusing the member sums:
//   fm.score_candidates(member_context_rows, benefit_rows, out);   // rows x benefits
//
// Thread safety: fit / partial_fit need exclusive access; score, predict, score_candidates
// and save are const and safe from any number of threads.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/json.hpp"
#include "perkrec/core/params.hpp"
#include "perkrec/core/progress.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/io/serializable.hpp"

namespace perkrec {

struct FMParams {
  enum class Loss : std::uint8_t { logistic, squared, bpr };
  enum class Optimizer : std::uint8_t { sgd, adagrad };
  enum class Shuffle : std::uint8_t {
    blocks,  ///< blocks of 256 consecutive rows in random order, rows shuffled within a block:
             ///< cache-friendly (about 2x faster on large data), nearly the same mixing
    rows,    ///< a uniform random permutation of all rows each epoch
  };

  bool field_aware = false;  ///< false = FM, true = FFM
  int factors = 8;           ///< latent dimension; in [0, 1024]; 0 = logistic regression,
                             ///< solved exactly (see the file comment)
  Loss loss = Loss::logistic;
  /// sgd or adagrad (per-parameter sums of squared gradients, starting at 1). With
  /// factors == 8 on an AVX2+FMA CPU the FM factor update runs 8-wide with a reciprocal square
  /// root refined by one Newton step (relative error ~1e-7 against the scalar update);
  /// results stay deterministic for num_threads = 1 on a given machine.
  Optimizer optimizer = Optimizer::adagrad;
  float learning_rate = 0.05f;        ///< step size; > 0
  float init_std = 0.01f;             ///< standard deviation of the initial factors; >= 0
  float reg_bias = 0.0f;              ///< L2 on the global bias; >= 0
  float reg_linear = 1e-5f;           ///< L2 on linear weights; >= 0
  float reg_factors = 1e-5f;          ///< L2 on factors; >= 0
  int epochs = 10;                    ///< passes over the rows per fit / partial_fit call; >= 1
  int early_stopping_rounds = 0;      ///< stop after this many epochs without a better
                                      ///< validation loss, keeping the best (0 = off; needs
                                      ///< validation rows)
  Shuffle shuffle = Shuffle::blocks;  ///< visiting order of the rows in each epoch
  /// 1 (default) = bit-reproducible SGD; 0 = the OpenMP default or > 1 = Hogwild, faster on
  /// many cores and not reproducible. Several threads train an FM on a copy of its parameters
  /// laid out one cache-line-aligned record per feature (64 bytes at 8 factors with SGD, 128
  /// with AdaGrad), made and copied back every epoch. The exact solver (factors = 0) and
  /// scoring are identical for any count.
  int num_threads = 1;
  std::uint64_t seed = 42;  ///< initial factors and visiting order

  /// True when fit solves exactly: factors == 0 with the logistic or squared loss.
  bool exact() const { return factors == 0 && loss != Loss::bpr; }

  static auto param_fields() {
    using P = FMParams;
    static constexpr params::EnumName<Loss> kLosses[] = {
        {Loss::logistic, "logistic"}, {Loss::squared, "squared"}, {Loss::bpr, "bpr"}};
    static constexpr params::EnumName<Optimizer> kOptimizers[] = {{Optimizer::sgd, "sgd"},
                                                                  {Optimizer::adagrad, "adagrad"}};
    static constexpr params::EnumName<Shuffle> kShuffles[] = {{Shuffle::blocks, "blocks"},
                                                              {Shuffle::rows, "rows"}};
    return std::make_tuple(
        params::field("field_aware", &P::field_aware),
        params::field("factors", &P::factors, params::closed(0, 1024)),
        params::field("loss", &P::loss, kLosses),
        params::field("optimizer", &P::optimizer, kOptimizers),
        params::field("learning_rate", &P::learning_rate, params::above(0)),
        params::field("init_std", &P::init_std, params::at_least(0)),
        params::field("reg_bias", &P::reg_bias, params::at_least(0)),
        params::field("reg_linear", &P::reg_linear, params::at_least(0)),
        params::field("reg_factors", &P::reg_factors, params::at_least(0)),
        params::field("epochs", &P::epochs, params::at_least(1)),
        params::field("early_stopping_rounds", &P::early_stopping_rounds, params::at_least(0)),
        params::field("shuffle", &P::shuffle, kShuffles),
        params::field("num_threads", &P::num_threads, params::threads()),
        params::field("seed", &P::seed));
  }
  void validate() const;
  Json to_json() const;
  /// Strict: unknown keys and bad values throw ConfigError naming the JSON pointer.
  static FMParams from_json(const Json& j);
};

/// Labels and optional extras for one training set.
struct FMTarget {
  Span<const float> labels;          ///< one per row; {0, 1} for logistic, finite otherwise
  Span<const float> sample_weights;  ///< empty = all 1; else one finite value >= 0 per row
  Span<const Index> groups;          ///< bpr: one group id >= 0 per row (e.g. member); FMCV: the
                                     ///< rows that stay in one fold
};

/// Per-epoch record of a training run.
struct FMEpoch {
  int epoch = 0;
  double train_loss = 0.0;        ///< mean loss over the epoch's updates (before each update)
  double validation_loss = -1.0;  ///< mean loss on the validation rows (-1 when none)
};

namespace detail {
/// FM::train's BPR stage: the rows of each group sorted by label (stable), and for each row r
/// its partners, the rows of its group with a strictly lower label:
/// group_rows[lower_begin[r] .. lower_begin[r] + lower_count[r]).
struct FMPartners {
  std::vector<Offset> group_rows;
  std::vector<Offset> lower_begin;
  std::vector<Offset> lower_count;
};
PERKREC_INLINE FMPartners fm_bpr_partners(const FMTarget& target, Offset rows);

/// FM::train's early-stopping stage: observe() each epoch's validation loss; new_best when it
/// is strictly below every earlier one, stop after `rounds` epochs in a row without a new best
/// (rounds = 0: never stop).
struct FMEarlyStopping {
  enum class Step : std::uint8_t { go_on, new_best, stop };
  int rounds = 0;
  double best_loss = std::numeric_limits<double>::infinity();
  int since_best = 0;
  PERKREC_INLINE Step observe(double validation_loss);
};
}  // namespace detail

class FM : public Serializable<FM> {
 public:
  static constexpr const char* kind = "FM";
  /// Newton steps of the exact solver (factors = 0) per fit / partial_fit at most.
  static constexpr int kExactMaxIterations = 100;

  explicit FM(FMParams params = {});

  /// Initializes the parameters and trains for params.epochs epochs. `feature_fields[i]` is
  /// the field (in [0, n_fields)) of feature i; X.cols features. With validation rows and
  /// early_stopping_rounds > 0, keeps the parameters of the best validation epoch.
  /// Validates everything first; on an input error the model is unchanged. Throws
  /// DivergenceError (model = last finite parameters) when training diverges.
  void fit(const CsrView<float>& X, const FMTarget& target, Span<const std::int32_t> feature_fields,
           std::int32_t n_fields, const CsrView<float>* validation_X = nullptr,
           const FMTarget* validation_target = nullptr, const Callbacks& callbacks = {});

  /// fit() starting from the bias and linear weights of `start` instead of zeros (the factors
  /// start random as in fit, the AdaGrad sums fresh): an FM warm-started from a logistic
  /// regression (a factors = 0 model) fitted on the same feature space, so that training only
  /// has to learn the interactions. InputError when `start` is not fitted or has another number
  /// of features; the model is unchanged then.
  void fit_from(const FM& start, const CsrView<float>& X, const FMTarget& target,
                Span<const std::int32_t> feature_fields, std::int32_t n_fields,
                const CsrView<float>* validation_X = nullptr,
                const FMTarget* validation_target = nullptr, const Callbacks& callbacks = {});

  /// The model whose raw score is the mean of the models' raw scores ("seed averaging"): bias
  /// and linear weights averaged, factor vectors concatenated and scaled by 1/sqrt(count), so
  /// <v_i, v_j> of the result is the mean of the models' <v_i, v_j>. The models must be fitted
  /// FMs (or all FFMs) on the same feature space with the same loss and factor count, and
  /// count x factors <= 1024; the result keeps the first model's params with factors =
  /// count x factors (InputError otherwise). Its predictions equal the mean of the models' raw
  /// scores up to float rounding (the logistic link is applied after averaging).
  static FM average(const std::vector<FM>& models);

  /// Continues training from the current parameters (and AdaGrad state) on new rows with the
  /// same feature space; on an unfitted model it is fit(). Same errors as fit.
  void partial_fit(const CsrView<float>& X, const FMTarget& target,
                   Span<const std::int32_t> feature_fields, std::int32_t n_fields,
                   const CsrView<float>* validation_X = nullptr,
                   const FMTarget* validation_target = nullptr, const Callbacks& callbacks = {});

  /// Raw scores (log-odds for logistic) of each row. out.size() == X.rows.
  void score(const CsrView<float>& X, Span<float> out) const;
  /// Predictions: probabilities for logistic, raw scores otherwise.
  void predict(const CsrView<float>& X, Span<float> out) const;
  /// Raw scores of every (base row, candidate row) pair in O(candidates x factors) per base row
  /// for FM (O(candidates x nnz_candidate x n_fields x factors) for FFM): a base row holds the
  /// member and context features, a candidate row the benefit features; the pair's features
  /// are the union. out is row-major base.rows x candidates.rows. Equal to score() on the
  /// concatenated rows up to float rounding.
  void score_candidates(const CsrView<float>& base, const CsrView<float>& candidates,
                        Span<float> out) const;

  bool fitted() const { return fitted_; }
  const FMParams& params() const { return params_; }
  Json get_params() const { return params_.to_json(); }
  /// Threads of later calls: 0 = the OpenMP default, at most kMaxThreads. A loaded model
  /// keeps the count it was saved with until the service sets its own. Needs exclusive access.
  void set_num_threads(int num_threads) {
    resolve_num_threads(num_threads);
    params_.num_threads = num_threads;
  }
  Index n_features() const { return n_features_; }
  std::int32_t n_fields() const { return n_fields_; }
  const std::vector<std::int32_t>& feature_fields() const { return feature_fields_; }
  float bias() const { return w0_; }
  const std::vector<float>& linear() const { return w_; }
  /// Factors, row-major: FM n_features x factors; FFM n_features x n_fields x factors.
  const std::vector<float>& factors() const { return v_; }
  const std::vector<FMEpoch>& history() const { return history_; }
  /// Mean loss of the current model on rows (the training objective without regularization).
  double loss(const CsrView<float>& X, const FMTarget& target) const;

  /// Free-form JSON saved with the model (perkrec.FeatureEncoder keeps its fitted state here).
  void set_metadata(std::string json_text);
  const std::string& metadata() const { return metadata_; }

  void write(ModelWriter& w, const std::string& prefix) const;
  static FM read(const ModelReader& r, const std::string& prefix);

  /// Test hook: gradient of the unregularized loss of one row with respect to every parameter,
  /// in the order [w0, w..., v...]. For finite-difference checks; not for production use.
  std::vector<double> row_gradient(const CsrView<float>& X, Index row, float label) const;
  /// Test hook: overwrites all parameters (same sizes as bias/linear/factors).
  void set_parameters(float w0, std::vector<float> w, std::vector<float> v);

 private:
  void require_fitted(const char* method) const;
  void check_rows(const CsrView<float>& X, const char* method) const;
  void check_target(const CsrView<float>& X, const FMTarget& target, const char* method,
                    const char* what) const;
  void initialize(Index n_features, Span<const std::int32_t> feature_fields, std::int32_t n_fields);
  void fit_impl(const FM* start, const CsrView<float>& X, const FMTarget& target,
                Span<const std::int32_t> feature_fields, std::int32_t n_fields,
                const CsrView<float>* validation_X, const FMTarget* validation_target,
                const Callbacks& callbacks, const char* method);
  void train_exact(const CsrView<float>& X, const FMTarget& target,
                   const CsrView<float>* validation_X, const FMTarget* validation_target,
                   const Callbacks& callbacks, const char* method);
  void train(const CsrView<float>& X, const FMTarget& target, const CsrView<float>* validation_X,
             const FMTarget* validation_target, const Callbacks& callbacks, const char* method);
  /// One shuffled SGD / AdaGrad pass over X (train's epoch stage); returns the mean loss of the
  /// pass's updates, each taken before its update.
  double sgd_epoch(const CsrView<float>& X, const FMTarget& target,
                   const detail::FMPartners& partners, std::vector<Offset>& order, int threads);
  /// train's check stage: false when the epoch's loss or a parameter is not finite; sets the
  /// validation loss when there are validation rows.
  bool evaluate_epoch(FMEpoch& record, const CsrView<float>* validation_X,
                      const FMTarget* validation_target) const;
  std::size_t factor_stride() const;
  float score_row(const Index* idx, const float* val, Offset n, float* scratch) const;
  /// score() without its checks: training reads its own (possibly diverged) validation loss.
  void score_rows(const CsrView<float>& X, Span<float> out) const;

  FMParams params_;
  bool fitted_ = false;
  Index n_features_ = 0;
  std::int32_t n_fields_ = 0;
  std::vector<std::int32_t> feature_fields_;
  float w0_ = 0.0f;
  std::vector<float> w_;
  std::vector<float> v_;
  // AdaGrad squared-gradient sums (empty for SGD).
  float g0_ = 0.0f;
  std::vector<float> gw_;
  std::vector<float> gv_;
  int epochs_done_ = 0;
  std::vector<FMEpoch> history_;
  std::string metadata_ = "{}";
};

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/models/fm_impl.hpp"
#endif
