// Popularity: the baseline every model must beat. A benefit's score is the share of members
// who interacted with it (or its total confidence), the same for every member.
//
// It follows the recommender contract: fit / score / recommend / save / load / get_params.
//
// Example:
//   perkrec::Popularity pop;
//   pop.fit(train.view());                          // members x benefits confidences
//   perkrec::Filter f;
//   f.exclude_rows = train_rows_of_users;           // filter already-interacted benefits
//   perkrec::TopK top = pop.recommend(users, 10, f);
//
// Thread safety: fit needs exclusive access; score and recommend are const and safe from any
// number of threads.
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
#include "perkrec/models/recommender.hpp"

namespace perkrec {

struct PopularityParams {
  enum class Weighting : std::uint8_t {
    members,     ///< share of members with any interaction
    confidence,  ///< total confidence / number of members
  };
  Weighting weighting = Weighting::members;
  int num_threads = 0;  ///< 0 = OpenMP default

  static auto param_fields() {
    using P = PopularityParams;
    static constexpr params::EnumName<Weighting> kWeightings[] = {
        {Weighting::members, "members"}, {Weighting::confidence, "confidence"}};
    return std::make_tuple(params::field("weighting", &P::weighting, kWeightings),
                           params::field("num_threads", &P::num_threads, params::threads()));
  }
  void validate() const;
  Json to_json() const;
  /// Strict: unknown keys and bad values throw ConfigError naming the JSON pointer.
  static PopularityParams from_json(const Json& j);
};

class Popularity : public Serializable<Popularity> {
 public:
  static constexpr const char* kind = "Popularity";

  explicit Popularity(PopularityParams params = {});

  /// Learns benefit popularity from a members x benefits matrix. Validates first; on error
  /// the model is unchanged.
  void fit(const CsrView<float>& user_benefits, const Callbacks& callbacks = {});

  bool fitted() const { return fitted_; }
  Index n_users() const { return n_users_; }
  Index n_benefits() const { return static_cast<Index>(scores_.size()); }
  const PopularityParams& params() const { return params_; }
  Json get_params() const { return params_.to_json(); }
  /// Threads of later calls: 0 = the OpenMP default, at most kMaxThreads. A loaded model
  /// keeps the count it was saved with until the service sets its own. Needs exclusive access.
  void set_num_threads(int num_threads) {
    resolve_num_threads(num_threads);
    params_.num_threads = num_threads;
  }
  /// Popularity of each benefit.
  const std::vector<float>& benefit_scores() const { return scores_; }

  /// External ids of the fitted members and benefits (saved with the model). Each map must be
  /// empty or hold exactly n_users / n_benefits ids; fit() clears them.
  void set_ids(IdMap users, IdMap benefits);
  const IdMap& user_ids() const { return user_ids_; }
  const IdMap& benefit_ids() const { return benefit_ids_; }

  /// out[i] = score of (users[i], benefits[i]). Throws InputError for ids out of range.
  void score(Span<const Index> users, Span<const Index> benefits, Span<float> out) const;
  /// Top-n benefits for each member; see models/recommender.hpp for filters.
  TopK recommend(Span<const Index> users, int n, const Filter& filter = {}) const;

  void write(ModelWriter& w, const std::string& prefix) const;
  static Popularity read(const ModelReader& r, const std::string& prefix);

 private:
  void require_fitted(const char* method) const;

  PopularityParams params_;
  bool fitted_ = false;
  Index n_users_ = 0;
  std::vector<float> scores_;
  IdMap user_ids_;
  IdMap benefit_ids_;
};

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/models/popularity_impl.hpp"
#endif
