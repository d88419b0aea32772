// Definitions for popularity.hpp.
#pragma once

#include <algorithm>
#include <cmath>

#include "perkrec/models/popularity.hpp"

namespace perkrec {

PERKREC_INLINE void PopularityParams::validate() const {
  params::validate_fields(*this, "PopularityParams");
}
PERKREC_INLINE Json PopularityParams::to_json() const { return params::fields_to_json(*this); }
PERKREC_INLINE PopularityParams PopularityParams::from_json(const Json& j) {
  return params::fields_from_json<PopularityParams>(j, "PopularityParams::from_json");
}

PERKREC_INLINE Popularity::Popularity(PopularityParams params) : params_(params) {
  params_.validate();
}

PERKREC_INLINE void Popularity::fit(const CsrView<float>& user_benefits,
                                    const Callbacks& callbacks) {
  user_benefits.validate("Popularity::fit: user_benefits");
  for (Offset e = 0; e < user_benefits.nnz(); ++e) {
    if (user_benefits.data != nullptr && user_benefits.data[e] < 0) {
      detail::raise<InputError>("Popularity::fit: user_benefits: negative confidence at position ",
                                e, " (got ", user_benefits.data[e], ")");
    }
  }
  ProgressReporter progress(callbacks, "Popularity::fit", 1);
  std::vector<double> totals(static_cast<std::size_t>(user_benefits.cols), 0.0);
  for (Offset e = 0; e < user_benefits.nnz(); ++e) {
    const double v =
        params_.weighting == PopularityParams::Weighting::members || user_benefits.data == nullptr
            ? 1.0
            : user_benefits.data[e];
    totals[static_cast<std::size_t>(user_benefits.indices[e])] += v;
  }
  std::vector<float> scores(totals.size());
  const double members = std::max<Index>(1, user_benefits.rows);
  for (std::size_t b = 0; b < totals.size(); ++b)
    scores[b] = static_cast<float>(totals[b] / members);
  scores_ = std::move(scores);
  n_users_ = user_benefits.rows;
  user_ids_ = IdMap();
  benefit_ids_ = IdMap();
  fitted_ = true;
  progress.advance(1);
}

PERKREC_INLINE void Popularity::set_ids(IdMap users, IdMap benefits) {
  require_fitted("set_ids");
  detail::check_id_maps(users, benefits, n_users_, n_benefits(), "Popularity");
  user_ids_ = std::move(users);
  benefit_ids_ = std::move(benefits);
}

PERKREC_INLINE void Popularity::require_fitted(const char* method) const {
  if (!fitted_) detail::raise<InputError>("Popularity::", method, ": the model is not fitted");
}

PERKREC_INLINE void Popularity::score(Span<const Index> users, Span<const Index> benefits,
                                      Span<float> out) const {
  require_fitted("score");
  detail::check_score_pairs(users, benefits, out, n_users_, n_benefits(), "Popularity");
  for (std::size_t i = 0; i < benefits.size(); ++i) {
    out[i] = scores_[static_cast<std::size_t>(benefits[i])];
  }
}

PERKREC_INLINE TopK Popularity::recommend(Span<const Index> users, int n,
                                          const Filter& filter) const {
  require_fitted("recommend");
  detail::check_users(users, n_users_, "Popularity::recommend");
  return detail::batch_top_k(
      users, n, n_benefits(), filter, params_.num_threads,
      [&](Index, Index, float* out) { std::copy(scores_.begin(), scores_.end(), out); });
}

PERKREC_INLINE void Popularity::write(ModelWriter& w, const std::string& prefix) const {
  require_fitted("save");
  Json& c = content_section(w, prefix);
  c["params"] = params_.to_json();
  c["n_users"] = n_users_;
  c["n_benefits"] = n_benefits();
  w.add(prefix + "scores", scores_);
  user_ids_.write(w, prefix + "user_ids.");
  benefit_ids_.write(w, prefix + "benefit_ids.");
}

PERKREC_INLINE Popularity Popularity::read(const ModelReader& r, const std::string& prefix) {
  const auto header = read_recommender_header<PopularityParams>(
      r, prefix, "Popularity::read", [](JsonReader<ModelFormatError>&) {});
  const PopularityParams& params = header.params;
  const Index n_users = header.n_users, n_benefits = header.n_benefits;
  r.check_count("n_users", n_users);
  std::vector<float> scores = r.vector<float>(prefix + "scores", {n_benefits});
  for (std::size_t b = 0; b < scores.size(); ++b) {
    if (!std::isfinite(scores[b]) || scores[b] < 0) {
      r.invalid(detail::concat("score of benefit ", b, " is not a finite non-negative number"));
    }
  }
  Popularity model(params);
  model.scores_ = std::move(scores);
  model.n_users_ = n_users;
  model.fitted_ = true;
  try {
    model.set_ids(IdMap::read(r, prefix + "user_ids."), IdMap::read(r, prefix + "benefit_ids."));
  } catch (const InputError& e) {
    r.invalid(e.what());
  }
  return model;
}

}  // namespace perkrec
