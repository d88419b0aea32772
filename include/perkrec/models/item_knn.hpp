// ItemKNN: benefit-benefit nearest neighbours.
//
// Each benefit is described by the members who interacted with it (a column of the members x
// benefits matrix), weighted by one of
//   cosine  values as given, each benefit column normalized to unit length;
//   tfidf   sqrt(value) * idf(member), idf = log(n_benefits / (1 + benefits of the member));
//   bm25    Okapi BM25 with k1 and b over benefit columns (long columns are damped).
// Similarity of two benefits is the dot product of their weighted columns; each benefit keeps
// its `neighbours` most similar benefits (itself included) in a sparse benefits x benefits
// matrix S. A member's score of benefit j is sum over their history h of value_h * S[h, j].
//
// The model keeps the training interaction rows, so recommend(users) needs no history
// argument; recommend_new scores new rows directly. partial_fit_users replaces or adds member
// rows (neighbours unchanged); partial_fit_benefits replaces or adds benefit columns and
// recomputes the neighbour matrix (cost of a fit).
//
// Example:
//   perkrec::ItemKNNParams p;
//   p.weighting = perkrec::ItemKNNParams::Weighting::bm25;
//   perkrec::ItemKNN knn(p);
//   knn.fit(train.view());
//   perkrec::TopK top = knn.recommend(users, 10, filter);
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

struct ItemKNNParams {
  enum class Weighting : std::uint8_t { cosine, tfidf, bm25 };
  Weighting weighting = Weighting::cosine;
  int neighbours = 20;  ///< neighbours kept per benefit (itself included); >= 1
  float k1 = 100.0f;    ///< BM25 term saturation; > 0
  float b = 0.8f;       ///< BM25 length normalization; in [0, 1]
  int num_threads = 0;  ///< 0 = OpenMP default

  static auto param_fields() {
    using P = ItemKNNParams;
    static constexpr params::EnumName<Weighting> kWeightings[] = {
        {Weighting::cosine, "cosine"}, {Weighting::tfidf, "tfidf"}, {Weighting::bm25, "bm25"}};
    return std::make_tuple(params::field("weighting", &P::weighting, kWeightings),
                           params::field("neighbours", &P::neighbours, params::at_least(1)),
                           params::field("k1", &P::k1, params::above(0)),
                           params::field("b", &P::b, params::closed(0, 1)),
                           params::field("num_threads", &P::num_threads, params::threads()));
  }
  void validate() const;
  Json to_json() const;
  static ItemKNNParams from_json(const Json& j);
};

class ItemKNN : public Serializable<ItemKNN> {
 public:
  static constexpr const char* kind = "ItemKNN";

  explicit ItemKNN(ItemKNNParams params = {});

  /// Learns the neighbour matrix from a members x benefits matrix of non-negative values and
  /// keeps a copy of it. Validates first; on error the model is unchanged.
  void fit(const CsrView<float>& user_benefits, const Callbacks& callbacks = {});

  bool fitted() const { return fitted_; }
  Index n_users() const { return interactions_.rows; }
  Index n_benefits() const { return interactions_.cols; }
  const ItemKNNParams& params() const { return params_; }
  Json get_params() const { return params_.to_json(); }
  /// Threads of later calls: 0 = the OpenMP default, at most kMaxThreads. A loaded model
  /// keeps the count it was saved with until the service sets its own. Needs exclusive access.
  void set_num_threads(int num_threads) {
    resolve_num_threads(num_threads);
    params_.num_threads = num_threads;
  }
  /// The benefits x benefits neighbour matrix S (row h: the neighbours of h, sorted by index).
  const CsrMatrix<float>& neighbours() const { return neighbours_; }
  /// The kept members x benefits interactions.
  const CsrMatrix<float>& interactions() const { return interactions_; }

  void set_ids(IdMap users, IdMap benefits);
  const IdMap& user_ids() const { return user_ids_; }
  const IdMap& benefit_ids() const { return benefit_ids_; }

  void score(Span<const Index> users, Span<const Index> benefits, Span<float> out) const;
  TopK recommend(Span<const Index> users, int n, const Filter& filter = {}) const;
  /// Top-n for new rows of interactions; a row's own benefits are never returned unless
  /// filter.filter_already_interacted is false (models/recommender.hpp).
  TopK recommend_new(const CsrView<float>& user_benefits, int n, const Filter& filter = {}) const;
  /// Most similar benefits from the neighbour matrix (at most `neighbours` have a score > 0).
  TopK similar_benefits(Span<const Index> benefits, int n, const Filter& filter = {}) const;
  /// Most similar members by cosine of their interaction rows (itself included).
  TopK similar_users(Span<const Index> users, int n, const Filter& filter = {}) const;

  /// Replaces (or adds, growing the model) the interaction rows of `users`.
  /// Ids must be below n_users + max_growth (kDefaultMaxGrowth); larger ids are InputErrors.
  void partial_fit_users(Span<const Index> users, const CsrView<float>& user_benefits,
                         Index max_growth = kDefaultMaxGrowth);
  /// Replaces (or adds) the interaction columns of `benefits` (benefit_users is
  /// benefits.size() x n_users), then recomputes the neighbour matrix.
  /// Ids must be below n_benefits + max_growth (kDefaultMaxGrowth).
  void partial_fit_benefits(Span<const Index> benefits, const CsrView<float>& benefit_users,
                            Index max_growth = kDefaultMaxGrowth);

  void write(ModelWriter& w, const std::string& prefix) const;
  static ItemKNN read(const ModelReader& r, const std::string& prefix);

 private:
  void require_fitted(const char* method) const;
  void score_rows(const CsrView<float>& rows, Index first, Index count, float* out) const;
  void rebuild(CsrMatrix<float> interactions);

  ItemKNNParams params_;
  bool fitted_ = false;
  CsrMatrix<float> interactions_;  // members x benefits
  CsrMatrix<float> by_benefit_;    // its transpose
  CsrMatrix<float> neighbours_;    // benefits x benefits
  IdMap user_ids_;
  IdMap benefit_ids_;
};

namespace detail {

/// The top-`neighbours` similarity matrix of the weighted benefit columns (see item_knn.hpp).
CsrMatrix<float> knn_neighbours(const CsrMatrix<float>& user_benefits,
                                const CsrMatrix<float>& benefit_users, const ItemKNNParams& params);

}  // namespace detail
}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/models/item_knn_impl.hpp"
#endif
