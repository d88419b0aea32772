// BPR: Bayesian personalized ranking (Rendle et al. 2009) for implicit feedback.
//
// Learns member factors x_u, benefit factors y_b and benefit biases b_b so that a benefit the
// member interacted with (i) outranks one they did not (j): stochastic gradient ascent on
// log sigmoid(s_ui - s_uj) - regularization * |theta|^2, s_ub = x_u . y_b + b_b. Each epoch
// draws nnz (member, positive) pairs uniformly from the interactions and one negative per
// pair, uniformly among all benefits or — when an eligibility matrix is given — among the
// member's eligible benefits only (a member is never trained against a benefit they could not
// receive). With verify_negative_samples a drawn negative the member interacted with is
// skipped.
//
// Parallelism is lock-free (Hogwild): samples are split into fixed blocks, each with its own
// Rng(seed, block, epoch). With num_threads = 1 the blocks run in order and training is
// bit-reproducible for a seed; with more threads concurrent updates make results vary
// slightly between runs (as in every Hogwild SGD).
//
// Factors are stored with the bias folded in: member rows are [x_u, 1] and benefit rows
// [y_b, b_b] (factors + 1 columns), so a score is one dot product.
//
// Fold-in: recommend_new / fold_in run fold_in_epochs SGD passes over each new member's
// interactions with the benefit factors fixed (deterministic per row); partial_fit_users /
// partial_fit_benefits store such updates, growing the model when ids are new.
//
// Example:
//   perkrec::BPRParams p;
//   p.factors = 64;
//   perkrec::BPR bpr(p);
//   bpr.fit(train.view());
//   perkrec::TopK top = bpr.recommend(users, 10, filter);
//
// Thread safety: fit / partial_fit_* need exclusive access; every const method is safe from
// any number of threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/json.hpp"
#include "perkrec/core/params.hpp"
#include "perkrec/core/progress.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/data/id_map.hpp"
#include "perkrec/io/serializable.hpp"
#include "perkrec/models/factors.hpp"
#include "perkrec/models/recommender.hpp"

namespace perkrec {

/// Where negatives come from: `uniform` over the benefits (or the member's eligible ones), or
/// `popularity`: the benefit of a uniformly drawn interaction, so a benefit is drawn in
/// proportion to its number of interactions (hard negatives: popular benefits the member
/// passed over; implicit's sampler). With an eligibility matrix, negatives stay uniform over
/// the eligible benefits.
enum class NegativeSampling { uniform, popularity };

struct BPRParams {
  int factors = 64;                     ///< latent dimension (a bias column is added); 1..4096
  float learning_rate = 0.01f;          ///< SGD step; > 0
  float regularization = 0.01f;         ///< L2 penalty; >= 0
  int iterations = 100;                 ///< epochs of nnz samples each; >= 0
  bool verify_negative_samples = true;  ///< skip drawn negatives the member interacted with
  NegativeSampling negative_sampling = NegativeSampling::uniform;  ///< "uniform" or "popularity"
  int fold_in_epochs = 30;  ///< SGD passes over a new member's row in fold-in; >= 1
  int num_threads = 0;      ///< 0 = OpenMP default; 1 = bit-reproducible
  std::uint64_t seed = 42;

  static auto param_fields() {
    using P = BPRParams;
    static constexpr params::EnumName<NegativeSampling> kNegatives[] = {
        {NegativeSampling::uniform, "uniform"}, {NegativeSampling::popularity, "popularity"}};
    return std::make_tuple(params::field("factors", &P::factors, params::closed(1, 4096)),
                           params::field("learning_rate", &P::learning_rate, params::above(0)),
                           params::field("regularization", &P::regularization, params::at_least(0)),
                           params::field("iterations", &P::iterations, params::at_least(0)),
                           params::field("verify_negative_samples", &P::verify_negative_samples),
                           params::field("negative_sampling", &P::negative_sampling, kNegatives),
                           params::field("fold_in_epochs", &P::fold_in_epochs, params::at_least(1)),
                           params::field("num_threads", &P::num_threads, params::threads()),
                           params::field("seed", &P::seed));
  }
  void validate() const;
  Json to_json() const;
  static BPRParams from_json(const Json& j);
};

class BPR : public Serializable<BPR> {
 public:
  static constexpr const char* kind = "BPR";

  explicit BPR(BPRParams params = {});

  /// Learns from a members x benefits matrix (values > 0 mark interactions; column indices
  /// sorted within rows). `eligibility` (members x benefits, optional, rows = 0 to skip) lists
  /// the benefits each member may receive: negatives are drawn only from it. Validates first;
  /// on error (including DivergenceError, Interrupted) the model is unchanged. Progress: one
  /// unit per epoch; the share of correctly ordered sampled pairs is logged each epoch.
  void fit(const CsrView<float>& user_benefits, const CsrView<float>& eligibility = {},
           const Callbacks& callbacks = {});

  bool fitted() const { return fitted_; }
  Index n_users() const { return users_.rows; }
  Index n_benefits() const { return benefits_.rows; }
  const BPRParams& params() const { return params_; }
  Json get_params() const { return params_.to_json(); }
  /// Threads of later calls: 0 = the OpenMP default, at most kMaxThreads. A loaded model
  /// keeps the count it was saved with until the service sets its own. Needs exclusive access.
  void set_num_threads(int num_threads) {
    resolve_num_threads(num_threads);
    params_.num_threads = num_threads;
  }
  /// n x (factors + 1) tables: member rows [x_u, 1], benefit rows [y_b, bias_b].
  const detail::FactorTable& user_factors() const { return users_; }
  const detail::FactorTable& benefit_factors() const { return benefits_; }
  /// Share of sampled pairs ordered correctly, per epoch of the last fit.
  const std::vector<double>& training_accuracy() const { return accuracy_; }

  void set_ids(IdMap users, IdMap benefits);
  const IdMap& user_ids() const { return user_ids_; }
  const IdMap& benefit_ids() const { return benefit_ids_; }

  void score(Span<const Index> users, Span<const Index> benefits, Span<float> out) const;
  TopK recommend(Span<const Index> users, int n, const Filter& filter = {}) const;
  /// Top-n for new rows of interactions; a row's own benefits are never returned unless
  /// filter.filter_already_interacted is false (models/recommender.hpp).
  TopK recommend_new(const CsrView<float>& user_benefits, int n, const Filter& filter = {}) const;
  /// Folded-in member rows: rows x (factors + 1), last column 1.
  std::vector<float> fold_in(const CsrView<float>& user_benefits) const;
  TopK similar_benefits(Span<const Index> benefits, int n, const Filter& filter = {}) const;
  TopK similar_users(Span<const Index> users, int n, const Filter& filter = {}) const;

  /// Re-learns the listed members' factors from their rows (users.size() x n_benefits) with
  /// benefit factors fixed (fold_in_epochs passes, starting from the current factors for
  /// known members). Ids >= n_users grow the model.
  /// Ids must be below n_users + max_growth (kDefaultMaxGrowth); larger ids are InputErrors.
  void partial_fit_users(Span<const Index> users, const CsrView<float>& user_benefits,
                         Index max_growth = kDefaultMaxGrowth);
  /// Same for benefits: `benefit_users` is benefits.size() x n_users; member factors fixed.
  /// Ids must be below n_benefits + max_growth (kDefaultMaxGrowth).
  void partial_fit_benefits(Span<const Index> benefits, const CsrView<float>& benefit_users,
                            Index max_growth = kDefaultMaxGrowth);

  void write(ModelWriter& w, const std::string& prefix) const;
  static BPR read(const ModelReader& r, const std::string& prefix);

 private:
  void require_fitted(const char* method) const;
  void check_fit_input(const CsrView<float>& m, const char* what, Index rows, Index cols) const;

  BPRParams params_;
  bool fitted_ = false;
  detail::FactorTable users_;
  detail::FactorTable benefits_;
  std::vector<double> accuracy_;
  IdMap user_ids_;
  IdMap benefit_ids_;
};

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/models/bpr_impl.hpp"
#endif
