// ALS: implicit-feedback matrix factorization (Hu, Koren and Volinsky 2008).
//
// A member's interaction value v_ub becomes a preference p_ub = 1 (any interaction) with
// confidence c_ub = 1 + alpha * v_ub; every other pair has p = 0 and c = 1. ALS minimizes
//   sum_ub c_ub (p_ub - x_u . y_b)^2 + regularization * (|X|^2 + |Y|^2)
// by alternately solving every member's factors x_u with the benefit factors fixed, then every
// benefit's. Each row solve uses the precomputed Gram matrix Y^T Y, so it costs
// O(nnz_u * factors) per conjugate-gradient step (cg_steps > 0, warm-started from the previous
// factors) or O(nnz_u * factors^2 + factors^3) with the exact Cholesky solver (cg_steps = 0).
//
// Determinism: factors are initialized from Rng(seed, row, side) and every row is solved
// independently, so the fitted model is identical for any num_threads.
//
// Fold-in: recommend_new / fold_in solve new members' factors exactly from their interaction
// rows with the benefit factors fixed (no retraining); partial_fit_users / partial_fit_benefits
// write such solves into the model, growing it when ids are new.
//
// Example:
//   perkrec::ALSParams p;
//   p.factors = 64;
//   perkrec::ALS als(p);
//   als.fit(train.view());                       // members x benefits, values >= 0
//   perkrec::Filter f;
//   f.exclude_rows = train_rows_of_users;        // filter already-interacted benefits
//   perkrec::TopK top = als.recommend(users, 10, f);
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

struct ALSParams {
  int factors = 64;              ///< latent dimension; 1..4096
  float regularization = 0.01f;  ///< L2 penalty; >= 0
  float alpha = 1.0f;            ///< confidence c = 1 + alpha * value; >= 0
  int iterations = 15;           ///< full sweeps (members, then benefits); >= 0
  int cg_steps = 3;              ///< conjugate-gradient steps per row; 0 = exact Cholesky
  bool calculate_training_loss =
      false;                ///< compute the loss after each iteration (costs ~1 CG step)
  int num_threads = 0;      ///< 0 = OpenMP default
  std::uint64_t seed = 42;  ///< initialization stream

  /// The fields once more as descriptors (JSON name, range): see core/params.hpp.
  static auto param_fields() {
    using P = ALSParams;
    return std::make_tuple(params::field("factors", &P::factors, params::closed(1, 4096)),
                           params::field("regularization", &P::regularization, params::at_least(0)),
                           params::field("alpha", &P::alpha, params::at_least(0)),
                           params::field("iterations", &P::iterations, params::at_least(0)),
                           params::field("cg_steps", &P::cg_steps, params::at_least(0)),
                           params::field("calculate_training_loss", &P::calculate_training_loss),
                           params::field("num_threads", &P::num_threads, params::threads()),
                           params::field("seed", &P::seed));
  }
  void validate() const;
  Json to_json() const;
  /// Strict: unknown keys and bad values throw ConfigError naming the JSON pointer.
  static ALSParams from_json(const Json& j);
};

/// The benefits of a member's history that contributed most to one recommendation.
struct Explanation {
  float score = 0;                   ///< the member's (folded-in) score of the benefit
  std::vector<Index> benefits;       ///< history benefits, largest contribution first
  std::vector<float> contributions;  ///< their contributions; all of them sum to `score`
};

class ALS : public Serializable<ALS> {
 public:
  static constexpr const char* kind = "ALS";

  explicit ALS(ALSParams params = {});

  /// Learns member and benefit factors from a members x benefits matrix of non-negative
  /// values. Validates first; on error (including DivergenceError and Interrupted) the model
  /// is unchanged. Progress: one unit per iteration; with calculate_training_loss the loss is
  /// logged (LogLevel::info) and kept in training_loss().
  void fit(const CsrView<float>& user_benefits, const Callbacks& callbacks = {});

  bool fitted() const { return fitted_; }
  Index n_users() const { return users_.rows; }
  Index n_benefits() const { return benefits_.rows; }
  const ALSParams& params() const { return params_; }
  Json get_params() const { return params_.to_json(); }
  /// Threads of later calls: 0 = the OpenMP default, at most kMaxThreads. A loaded model
  /// keeps the count it was saved with until the service sets its own. Needs exclusive access.
  void set_num_threads(int num_threads) {
    resolve_num_threads(num_threads);
    params_.num_threads = num_threads;
  }
  /// n_users x factors and n_benefits x factors, row-major float32.
  const detail::FactorTable& user_factors() const { return users_; }
  const detail::FactorTable& benefit_factors() const { return benefits_; }
  /// Loss per iteration of the last fit (empty unless calculate_training_loss).
  const std::vector<double>& training_loss() const { return loss_; }

  /// External ids; each map must be empty or hold exactly n_users / n_benefits ids. fit()
  /// clears them; growth by partial_fit_* clears a map whose size no longer matches.
  void set_ids(IdMap users, IdMap benefits);
  const IdMap& user_ids() const { return user_ids_; }
  const IdMap& benefit_ids() const { return benefit_ids_; }

  /// out[i] = x_users[i] . y_benefits[i]. Throws InputError for ids out of range.
  void score(Span<const Index> users, Span<const Index> benefits, Span<float> out) const;
  /// Top-n benefits for each member; see models/recommender.hpp for filters.
  TopK recommend(Span<const Index> users, int n, const Filter& filter = {}) const;
  /// Top-n for members unseen at training: row i of `user_benefits` (rows x n_benefits) is
  /// folded in (exact solve with the benefit factors fixed). Filters are row-aligned with it;
  /// a row's own benefits are never returned unless filter.filter_already_interacted is false.
  TopK recommend_new(const CsrView<float>& user_benefits, int n, const Filter& filter = {}) const;
  /// Factors of folded-in rows: rows x factors, row-major.
  std::vector<float> fold_in(const CsrView<float>& user_benefits) const;
  /// Benefits most similar to each given benefit by cosine of factors (itself included).
  TopK similar_benefits(Span<const Index> benefits, int n, const Filter& filter = {}) const;
  /// Members most similar to each given member by cosine of factors (itself included).
  TopK similar_users(Span<const Index> users, int n, const Filter& filter = {}) const;

  /// Solves (exactly) and stores the factors of `users` from their interaction rows
  /// (users.size() x n_benefits). Ids >= n_users grow the member table (rows in between get
  /// zero factors). Ids must be distinct.
  /// Ids must be below n_users + max_growth (kDefaultMaxGrowth); larger ids are InputErrors.
  void partial_fit_users(Span<const Index> users, const CsrView<float>& user_benefits,
                         Index max_growth = kDefaultMaxGrowth);
  /// Same for benefits: `benefit_users` is benefits.size() x n_users (who interacted).
  /// Ids must be below n_benefits + max_growth (kDefaultMaxGrowth).
  void partial_fit_benefits(Span<const Index> benefits, const CsrView<float>& benefit_users,
                            Index max_growth = kDefaultMaxGrowth);

  /// Why `benefit` scores as it does for the member whose history is the single row
  /// `user_benefits` (1 x n_benefits): score = sum over history benefits h of
  /// c_h * y_benefit^T A^-1 y_h, with A the member's exact normal-equation matrix. Returns the
  /// top-n contributions.
  Explanation explain(const CsrView<float>& user_benefits, Index benefit, int n = 10) const;

  void write(ModelWriter& w, const std::string& prefix) const;
  static ALS read(const ModelReader& r, const std::string& prefix);

 private:
  void require_fitted(const char* method) const;

  ALSParams params_;
  bool fitted_ = false;
  detail::FactorTable users_;
  detail::FactorTable benefits_;
  std::vector<double> loss_;
  IdMap user_ids_;
  IdMap benefit_ids_;
};

namespace detail {

/// Gram matrix Y^T Y of a factor table (dim x dim, summed in double over fixed row blocks, so
/// the result does not depend on the thread count).
Eigen::MatrixXd gram(const FactorTable& y, int num_threads);

/// One ALS half-sweep: solves row r of `x` from row r of `m` (x.rows x y.rows) with y fixed,
/// for every r. cg_steps == 0 solves exactly; otherwise CG warm-started from x's current rows.
void als_solve(const CsrView<float>& m, const FactorTable& y, const Eigen::MatrixXd& yty,
               float regularization, float alpha, int cg_steps, FactorTable& x, int num_threads);

/// The ALS loss of (x, y) on m (see als.hpp), normalized by rows x cols.
double als_loss(const CsrView<float>& m, const FactorTable& x, const FactorTable& y,
                float regularization, float alpha, int num_threads);

}  // namespace detail
}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/models/als_impl.hpp"
#endif
