// Definitions for item_knn.hpp.
#pragma once

#include <algorithm>
#include <cmath>

#include "perkrec/models/item_knn.hpp"

namespace perkrec {

PERKREC_INLINE void ItemKNNParams::validate() const {
  params::validate_fields(*this, "ItemKNNParams");
}
PERKREC_INLINE Json ItemKNNParams::to_json() const { return params::fields_to_json(*this); }
PERKREC_INLINE ItemKNNParams ItemKNNParams::from_json(const Json& j) {
  return params::fields_from_json<ItemKNNParams>(j, "ItemKNNParams::from_json");
}

namespace detail {

PERKREC_INLINE CsrMatrix<float> knn_neighbours(const CsrMatrix<float>& user_benefits,
                                               const CsrMatrix<float>& benefit_users,
                                               const ItemKNNParams& params) {
  const Index n_benefits = benefit_users.rows;
  // Weighted benefit columns W (benefits x members).
  CsrMatrix<float> w = benefit_users;
  std::vector<double> idf(static_cast<std::size_t>(user_benefits.rows), 0.0);
  for (Index u = 0; u < user_benefits.rows; ++u) {
    const double df = static_cast<double>(user_benefits.indptr[static_cast<std::size_t>(u) + 1] -
                                          user_benefits.indptr[static_cast<std::size_t>(u)]);
    idf[static_cast<std::size_t>(u)] = std::log(std::max<double>(1.0, n_benefits)) - std::log1p(df);
  }
  std::vector<double> length(static_cast<std::size_t>(n_benefits), 0.0);
  double total_length = 0;
  for (Index b = 0; b < n_benefits; ++b) {
    for (Offset e = w.indptr[static_cast<std::size_t>(b)];
         e < w.indptr[static_cast<std::size_t>(b) + 1]; ++e) {
      length[static_cast<std::size_t>(b)] += w.data[static_cast<std::size_t>(e)];
    }
    total_length += length[static_cast<std::size_t>(b)];
  }
  const double average_length =
      n_benefits > 0 && total_length > 0 ? total_length / n_benefits : 1.0;
  for (Index b = 0; b < n_benefits; ++b) {
    const auto begin = static_cast<std::size_t>(w.indptr[static_cast<std::size_t>(b)]);
    const auto end = static_cast<std::size_t>(w.indptr[static_cast<std::size_t>(b) + 1]);
    double norm = 0;
    for (std::size_t e = begin; e < end; ++e) {
      const double v = w.data[e];
      const double u_idf = idf[static_cast<std::size_t>(w.indices[e])];
      double weighted = v;
      if (params.weighting == ItemKNNParams::Weighting::tfidf) {
        weighted = std::sqrt(v) * u_idf;
      } else if (params.weighting == ItemKNNParams::Weighting::bm25) {
        const double length_norm =
            (1.0 - params.b) + params.b * length[static_cast<std::size_t>(b)] / average_length;
        weighted = v * (params.k1 + 1.0) / (params.k1 * length_norm + v) * u_idf;
      }
      w.data[e] = static_cast<float>(weighted);
      norm += weighted * weighted;
    }
    if (params.weighting == ItemKNNParams::Weighting::cosine && norm > 0) {
      const double inv = 1.0 / std::sqrt(norm);
      for (std::size_t e = begin; e < end; ++e) w.data[e] = static_cast<float>(w.data[e] * inv);
    }
  }
  const CsrMatrix<float> wu = transpose(w.view(), params.num_threads);  // members x benefits
  const int threads = resolve_num_threads(params.num_threads);
  std::vector<std::vector<Index>> row_ids(static_cast<std::size_t>(n_benefits));
  std::vector<std::vector<float>> row_values(static_cast<std::size_t>(n_benefits));
  struct Scratch {
    std::vector<float> acc;
    std::vector<Index> touched;
    std::vector<std::pair<float, Index>> candidates;
  };
  std::vector<Scratch> scratch(static_cast<std::size_t>(threads));
  const auto k = static_cast<std::size_t>(params.neighbours);
  parallel_for(
      0, n_benefits, threads,
      [&](Offset bb, int thread) {
        Scratch& s = scratch[static_cast<std::size_t>(thread)];
        s.acc.resize(static_cast<std::size_t>(n_benefits), 0.0f);
        s.touched.clear();
        const auto b = static_cast<std::size_t>(bb);
        for (Offset e = w.indptr[b]; e < w.indptr[b + 1]; ++e) {
          const float wb = w.data[static_cast<std::size_t>(e)];
          const auto u = static_cast<std::size_t>(w.indices[static_cast<std::size_t>(e)]);
          for (Offset f = wu.indptr[u]; f < wu.indptr[u + 1]; ++f) {
            const auto j = static_cast<std::size_t>(wu.indices[static_cast<std::size_t>(f)]);
            if (s.acc[j] == 0.0f) s.touched.push_back(static_cast<Index>(j));
            s.acc[j] += wb * wu.data[static_cast<std::size_t>(f)];
          }
        }
        s.candidates.clear();
        for (Index j : s.touched) {
          const float v = s.acc[static_cast<std::size_t>(j)];
          s.acc[static_cast<std::size_t>(j)] = 0.0f;
          if (v != 0.0f && std::isfinite(v)) s.candidates.emplace_back(v, j);
        }
        auto better = [](const std::pair<float, Index>& l, const std::pair<float, Index>& r) {
          return l.first > r.first || (l.first == r.first && l.second < r.second);
        };
        if (s.candidates.size() > k) {
          std::nth_element(s.candidates.begin(),
                           s.candidates.begin() + static_cast<std::ptrdiff_t>(k),
                           s.candidates.end(), better);
          s.candidates.resize(k);
        }
        std::sort(s.candidates.begin(), s.candidates.end(),
                  [](const auto& l, const auto& r) { return l.second < r.second; });
        for (const auto& c : s.candidates) {
          row_ids[b].push_back(c.second);
          row_values[b].push_back(c.first);
        }
      },
      Schedule::dynamic, 16);
  CsrMatrix<float> s;
  s.rows = n_benefits;
  s.cols = n_benefits;
  s.indptr.assign(static_cast<std::size_t>(n_benefits) + 1, 0);
  for (Index b = 0; b < n_benefits; ++b) {
    s.indptr[static_cast<std::size_t>(b) + 1] =
        s.indptr[static_cast<std::size_t>(b)] +
        static_cast<Offset>(row_ids[static_cast<std::size_t>(b)].size());
  }
  s.indices.reserve(static_cast<std::size_t>(s.indptr.back()));
  s.data.reserve(static_cast<std::size_t>(s.indptr.back()));
  for (Index b = 0; b < n_benefits; ++b) {
    s.indices.insert(s.indices.end(), row_ids[static_cast<std::size_t>(b)].begin(),
                     row_ids[static_cast<std::size_t>(b)].end());
    s.data.insert(s.data.end(), row_values[static_cast<std::size_t>(b)].begin(),
                  row_values[static_cast<std::size_t>(b)].end());
  }
  return s;
}

/// `m` with rows `ids` replaced by the rows of `rows` (grown to cover every id).
inline CsrMatrix<float> replace_rows(const CsrMatrix<float>& m, Span<const Index> ids,
                                     const CsrView<float>& rows) {
  Index new_rows = m.rows;
  for (Index id : ids) new_rows = std::max<Index>(new_rows, id + 1);
  std::vector<Index> source(static_cast<std::size_t>(new_rows), -1);
  for (std::size_t i = 0; i < ids.size(); ++i)
    source[static_cast<std::size_t>(ids[i])] = static_cast<Index>(i);
  CsrMatrix<float> out;
  out.rows = new_rows;
  out.cols = m.cols;
  out.indptr.assign(1, 0);
  for (Index r = 0; r < new_rows; ++r) {
    const Index from = source[static_cast<std::size_t>(r)];
    if (from >= 0) {
      for (Offset e = rows.indptr[from]; e < rows.indptr[from + 1]; ++e) {
        out.indices.push_back(rows.indices[e]);
        out.data.push_back(rows.data != nullptr ? rows.data[e] : 1.0f);
      }
    } else if (r < m.rows) {
      const auto begin = static_cast<std::ptrdiff_t>(m.indptr[static_cast<std::size_t>(r)]);
      const auto end = static_cast<std::ptrdiff_t>(m.indptr[static_cast<std::size_t>(r) + 1]);
      out.indices.insert(out.indices.end(), m.indices.begin() + begin, m.indices.begin() + end);
      out.data.insert(out.data.end(), m.data.begin() + begin, m.data.begin() + end);
    }
    out.indptr.push_back(static_cast<Offset>(out.indices.size()));
  }
  return out;
}

}  // namespace detail

PERKREC_INLINE ItemKNN::ItemKNN(ItemKNNParams params) : params_(params) { params_.validate(); }

PERKREC_INLINE void ItemKNN::require_fitted(const char* method) const {
  if (!fitted_) detail::raise<InputError>("ItemKNN::", method, ": the model is not fitted");
}

PERKREC_INLINE void ItemKNN::rebuild(CsrMatrix<float> interactions) {
  CsrMatrix<float> by_benefit = detail::transpose(interactions.view(), params_.num_threads);
  CsrMatrix<float> neighbours = detail::knn_neighbours(interactions, by_benefit, params_);
  interactions_ = std::move(interactions);
  by_benefit_ = std::move(by_benefit);
  neighbours_ = std::move(neighbours);
}

PERKREC_INLINE void ItemKNN::fit(const CsrView<float>& user_benefits, const Callbacks& callbacks) {
  detail::check_interactions(user_benefits, -1, -1, "ItemKNN::fit: user_benefits");
  ProgressReporter progress(callbacks, "ItemKNN::fit", 1);
  // Canonical copy: sorted rows (the transpose of the transpose sorts them).
  CsrMatrix<float> copy = detail::transpose(
      detail::transpose(user_benefits, params_.num_threads).view(), params_.num_threads);
  rebuild(std::move(copy));
  user_ids_ = IdMap();
  benefit_ids_ = IdMap();
  fitted_ = true;
  progress.advance(1);
}

PERKREC_INLINE void ItemKNN::set_ids(IdMap users, IdMap benefits) {
  require_fitted("set_ids");
  detail::check_id_maps(users, benefits, n_users(), n_benefits(), "ItemKNN");
  user_ids_ = std::move(users);
  benefit_ids_ = std::move(benefits);
}

PERKREC_INLINE void ItemKNN::score_rows(const CsrView<float>& rows, Index first, Index count,
                                        float* out) const {
  const auto nb = static_cast<std::size_t>(n_benefits());
  std::fill(out, out + static_cast<std::size_t>(count) * nb, 0.0f);
  for (Index i = 0; i < count; ++i) {
    float* row_out = out + static_cast<std::size_t>(i) * nb;
    const Index r = first + i;
    for (Offset e = rows.indptr[r]; e < rows.indptr[r + 1]; ++e) {
      const float v = rows.data != nullptr ? rows.data[e] : 1.0f;
      const auto h = static_cast<std::size_t>(rows.indices[e]);
      for (Offset f = neighbours_.indptr[h]; f < neighbours_.indptr[h + 1]; ++f) {
        row_out[neighbours_.indices[static_cast<std::size_t>(f)]] +=
            v * neighbours_.data[static_cast<std::size_t>(f)];
      }
    }
  }
}

PERKREC_INLINE void ItemKNN::score(Span<const Index> users, Span<const Index> benefits,
                                   Span<float> out) const {
  require_fitted("score");
  detail::check_score_pairs(users, benefits, out, n_users(), n_benefits(), "ItemKNN");
  for (std::size_t i = 0; i < users.size(); ++i) {
    float total = 0;
    for (Offset e = interactions_.indptr[static_cast<std::size_t>(users[i])];
         e < interactions_.indptr[static_cast<std::size_t>(users[i]) + 1]; ++e) {
      const auto h = static_cast<std::size_t>(interactions_.indices[static_cast<std::size_t>(e)]);
      const auto begin =
          neighbours_.indices.begin() + static_cast<std::ptrdiff_t>(neighbours_.indptr[h]);
      const auto end =
          neighbours_.indices.begin() + static_cast<std::ptrdiff_t>(neighbours_.indptr[h + 1]);
      const auto it = std::lower_bound(begin, end, benefits[i]);
      if (it != end && *it == benefits[i]) {
        total += interactions_.data[static_cast<std::size_t>(e)] *
                 neighbours_.data[static_cast<std::size_t>(it - neighbours_.indices.begin())];
      }
    }
    out[i] = total;
  }
}

PERKREC_INLINE TopK ItemKNN::recommend(Span<const Index> users, int n, const Filter& filter) const {
  require_fitted("recommend");
  detail::check_users(users, n_users(), "ItemKNN::recommend");
  const CsrView<float> all = interactions_.view();
  return detail::blocked_top_k(
      static_cast<Index>(users.size()), n, n_benefits(), filter, params_.num_threads, 16,
      [&](Index first, Index count, float* out) {
        for (Index i = 0; i < count; ++i) {
          score_rows(all, users[static_cast<std::size_t>(first + i)], 1,
                     out + static_cast<std::size_t>(i) * static_cast<std::size_t>(n_benefits()));
        }
      });
}

PERKREC_INLINE TopK ItemKNN::recommend_new(const CsrView<float>& user_benefits, int n,
                                           const Filter& filter) const {
  require_fitted("recommend_new");
  detail::check_interactions(user_benefits, -1, n_benefits(),
                             "ItemKNN::recommend_new: user_benefits");
  const detail::NewRowsFilter own(filter, user_benefits);
  return detail::blocked_top_k(
      user_benefits.rows, n, n_benefits(), own.get(), params_.num_threads, 16,
      [&](Index first, Index count, float* out) { score_rows(user_benefits, first, count, out); });
}

PERKREC_INLINE TopK ItemKNN::similar_benefits(Span<const Index> benefits, int n,
                                              const Filter& filter) const {
  require_fitted("similar_benefits");
  detail::check_ids(benefits, n_benefits(), "ItemKNN::similar_benefits", "benefit");
  const auto nb = static_cast<std::size_t>(n_benefits());
  return detail::blocked_top_k(
      static_cast<Index>(benefits.size()), n, n_benefits(), filter, params_.num_threads, 16,
      [&](Index first, Index count, float* out) {
        std::fill(out, out + static_cast<std::size_t>(count) * nb, 0.0f);
        for (Index i = 0; i < count; ++i) {
          const auto h = static_cast<std::size_t>(benefits[static_cast<std::size_t>(first + i)]);
          for (Offset f = neighbours_.indptr[h]; f < neighbours_.indptr[h + 1]; ++f) {
            out[static_cast<std::size_t>(i) * nb +
                static_cast<std::size_t>(neighbours_.indices[static_cast<std::size_t>(f)])] =
                neighbours_.data[static_cast<std::size_t>(f)];
          }
        }
      });
}

PERKREC_INLINE TopK ItemKNN::similar_users(Span<const Index> users, int n,
                                           const Filter& filter) const {
  require_fitted("similar_users");
  detail::check_users(users, n_users(), "ItemKNN::similar_users");
  const auto nu = static_cast<std::size_t>(n_users());
  std::vector<float> inv_norm(nu, 0.0f);
  for (std::size_t u = 0; u < nu; ++u) {
    double sq = 0;
    for (Offset e = interactions_.indptr[u]; e < interactions_.indptr[u + 1]; ++e) {
      sq += static_cast<double>(interactions_.data[static_cast<std::size_t>(e)]) *
            interactions_.data[static_cast<std::size_t>(e)];
    }
    inv_norm[u] = sq > 0 ? static_cast<float>(1.0 / std::sqrt(sq)) : 0.0f;
  }
  return detail::blocked_top_k(
      static_cast<Index>(users.size()), n, n_users(), filter, params_.num_threads, 4,
      [&](Index first, Index count, float* out) {
        std::fill(out, out + static_cast<std::size_t>(count) * nu, 0.0f);
        for (Index i = 0; i < count; ++i) {
          float* row_out = out + static_cast<std::size_t>(i) * nu;
          const auto u = static_cast<std::size_t>(users[static_cast<std::size_t>(first + i)]);
          for (Offset e = interactions_.indptr[u]; e < interactions_.indptr[u + 1]; ++e) {
            const float v = interactions_.data[static_cast<std::size_t>(e)];
            const auto b =
                static_cast<std::size_t>(interactions_.indices[static_cast<std::size_t>(e)]);
            for (Offset f = by_benefit_.indptr[b]; f < by_benefit_.indptr[b + 1]; ++f) {
              row_out[by_benefit_.indices[static_cast<std::size_t>(f)]] +=
                  v * by_benefit_.data[static_cast<std::size_t>(f)];
            }
          }
          for (std::size_t v = 0; v < nu; ++v) row_out[v] *= inv_norm[u] * inv_norm[v];
        }
      });
}

PERKREC_INLINE void ItemKNN::partial_fit_users(Span<const Index> users,
                                               const CsrView<float>& user_benefits,
                                               Index max_growth) {
  require_fitted("partial_fit_users");
  detail::check_ids(users,
                    detail::growth_limit(n_users(), max_growth, "ItemKNN::partial_fit_users"),
                    "ItemKNN::partial_fit_users", "user");
  detail::check_interactions(user_benefits, static_cast<Index>(users.size()), n_benefits(),
                             "ItemKNN::partial_fit_users: user_benefits", true);
  CsrMatrix<float> interactions = detail::replace_rows(interactions_, users, user_benefits);
  CsrMatrix<float> by_benefit = detail::transpose(interactions.view(), params_.num_threads);
  if (user_ids_.size() != 0 && user_ids_.size() != interactions.rows) user_ids_ = IdMap();
  interactions_ = std::move(interactions);
  by_benefit_ = std::move(by_benefit);
}

PERKREC_INLINE void ItemKNN::partial_fit_benefits(Span<const Index> benefits,
                                                  const CsrView<float>& benefit_users,
                                                  Index max_growth) {
  require_fitted("partial_fit_benefits");
  detail::check_ids(benefits,
                    detail::growth_limit(n_benefits(), max_growth, "ItemKNN::partial_fit_benefits"),
                    "ItemKNN::partial_fit_benefits", "benefit");
  detail::check_interactions(benefit_users, static_cast<Index>(benefits.size()), n_users(),
                             "ItemKNN::partial_fit_benefits: benefit_users", true);
  const CsrMatrix<float> by_benefit = detail::replace_rows(by_benefit_, benefits, benefit_users);
  CsrMatrix<float> interactions = detail::transpose(by_benefit.view(), params_.num_threads);
  rebuild(std::move(interactions));
  if (benefit_ids_.size() != 0 && benefit_ids_.size() != n_benefits()) benefit_ids_ = IdMap();
}

PERKREC_INLINE void ItemKNN::write(ModelWriter& w, const std::string& prefix) const {
  require_fitted("save");
  Json& c = content_section(w, prefix);
  c["params"] = params_.to_json();
  c["n_users"] = n_users();
  c["n_benefits"] = n_benefits();
  detail::write_csr(w, prefix + "interactions.", interactions_);
  detail::write_csr(w, prefix + "neighbours.", neighbours_);
  user_ids_.write(w, prefix + "user_ids.");
  benefit_ids_.write(w, prefix + "benefit_ids.");
}

PERKREC_INLINE ItemKNN ItemKNN::read(const ModelReader& r, const std::string& prefix) {
  const auto header = read_recommender_header<ItemKNNParams>(r, prefix, "ItemKNN::read",
                                                             [](JsonReader<ModelFormatError>&) {});
  const ItemKNNParams& params = header.params;
  const Index n_users = header.n_users, n_benefits = header.n_benefits;
  ItemKNN model(params);
  CsrMatrix<float> interactions =
      detail::read_csr(r, prefix + "interactions.", n_users, n_benefits);
  CsrMatrix<float> neighbours = detail::read_csr(r, prefix + "neighbours.", n_benefits, n_benefits);
  try {
    interactions.view().validate("interactions", true);
    neighbours.view().validate("neighbours", true);
  } catch (const InputError& e) {
    r.invalid(e.what());
  }
  model.by_benefit_ = detail::transpose(interactions.view(), params.num_threads);
  model.interactions_ = std::move(interactions);
  model.neighbours_ = std::move(neighbours);
  model.fitted_ = true;
  try {
    model.set_ids(IdMap::read(r, prefix + "user_ids."), IdMap::read(r, prefix + "benefit_ids."));
  } catch (const InputError& e) {
    r.invalid(e.what());
  }
  return model;
}

}  // namespace perkrec
