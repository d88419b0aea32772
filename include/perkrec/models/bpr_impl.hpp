// Definitions for bpr.hpp.
#pragma once

#include <algorithm>
#include <cmath>

#include "perkrec/core/random.hpp"
#include "perkrec/detail/simd.hpp"
#include "perkrec/models/bpr.hpp"

namespace perkrec {

PERKREC_INLINE void BPRParams::validate() const { params::validate_fields(*this, "BPRParams"); }
PERKREC_INLINE Json BPRParams::to_json() const { return params::fields_to_json(*this); }
PERKREC_INLINE BPRParams BPRParams::from_json(const Json& j) {
  return params::fields_from_json<BPRParams>(j, "BPRParams::from_json");
}

namespace detail {

/// One BPR step on (member row x, positive row yi, negative row yj), dim latent columns plus
/// the bias column. `update_x`/`update_y` choose which side learns. Returns whether the pair
/// was already ordered correctly.
inline bool bpr_step(float* PERKREC_RESTRICT x, float* PERKREC_RESTRICT yi,
                     float* PERKREC_RESTRICT yj, int dim, float lr, float reg, bool update_x,
                     bool update_y) {
  float s = 0;
  for (int f = 0; f <= dim; ++f) s += x[f] * (yi[f] - yj[f]);
  const float z = 1.0f / (1.0f + std::exp(s));
  if (update_x && update_y) {
    for (int f = 0; f < dim; ++f) {
      const float xf = x[f], yif = yi[f], yjf = yj[f];
      x[f] = xf + lr * (z * (yif - yjf) - reg * xf);
      yi[f] = yif + lr * (z * xf - reg * yif);
      yj[f] = yjf + lr * (-z * xf - reg * yjf);
    }
  } else if (update_x) {
    for (int f = 0; f < dim; ++f) x[f] += lr * (z * (yi[f] - yj[f]) - reg * x[f]);
  } else if (update_y) {
    for (int f = 0; f < dim; ++f) yi[f] += lr * (z * x[f] - reg * yi[f]);
  }
  if (update_y) {
    yi[dim] += lr * (z - reg * yi[dim]);
    if (update_x) yj[dim] += lr * (-z - reg * yj[dim]);
  }
  return s > 0;
}

/// Uniform index in [0, n) from 64 random bits (multiply-shift, no division).
inline Offset fast_range(std::uint64_t bits, Offset n) {
  __extension__ using u128 = unsigned __int128;
  return static_cast<Offset>((static_cast<u128>(bits) * static_cast<u128>(n)) >> 64);
}

inline void prefetch_bytes(const void* p, int bytes) {
#if defined(__GNUC__) || defined(__clang__)
  const char* c = static_cast<const char*>(p);
  for (int off = 0; off < bytes; off += 64) __builtin_prefetch(c + off, 1, 3);
#else
  (void)p;
  (void)bytes;
#endif
}

inline bool row_contains(const CsrView<float>& m, Index row, Index col) {
  const Index* begin = m.indices + m.indptr[row];
  const Index* end = m.indices + m.indptr[row + 1];
  return std::binary_search(begin, end, col);
}

inline void bpr_init_row(float* v, int dim, Rng& rng, float last) {
  for (int f = 0; f < dim; ++f) v[f] = (rng.uniform_float() - 0.5f) / static_cast<float>(dim);
  v[dim] = last;
}

/// Folds rows of `m` into `x` (x.rows == m.rows) with benefit factors `y` fixed; row i starts
/// from its current value when `warm[i]`, else from Rng(seed, stream_of[i], 3).
inline void bpr_fold_rows(const CsrView<float>& m, const FactorTable& y, const BPRParams& p,
                          FactorTable& x, const std::vector<Index>& stream_of,
                          const std::vector<std::uint8_t>& warm) {
  const int dim = p.factors;
  parallel_for(
      0, m.rows, p.num_threads,
      [&](Offset rr) {
        const auto r = static_cast<Index>(rr);
        Rng rng(p.seed, static_cast<std::uint64_t>(stream_of[static_cast<std::size_t>(r)]), 3);
        float* xr = x.row(r);
        if (!warm[static_cast<std::size_t>(r)]) bpr_init_row(xr, dim, rng, 1.0f);
        xr[dim] = 1.0f;
        const Offset begin = m.indptr[r], count = m.indptr[r + 1] - begin;
        if (count == 0 || y.rows < 2) return;
        for (int epoch = 0; epoch < p.fold_in_epochs; ++epoch) {
          for (Offset s = 0; s < count; ++s) {
            const Index i = m.indices[begin + static_cast<Offset>(
                                                  rng.below(static_cast<std::uint32_t>(count)))];
            const auto j = static_cast<Index>(rng.below(static_cast<std::uint32_t>(y.rows)));
            if (j == i || (p.verify_negative_samples && row_contains(m, r, j))) continue;
            // update_y = false: the benefit rows are only read.
            bpr_step(xr, const_cast<float*>(y.row(i)), const_cast<float*>(y.row(j)), dim,
                     p.learning_rate, p.regularization, true, false);
          }
        }
      },
      Schedule::dynamic, 16);
}

}  // namespace detail

PERKREC_INLINE BPR::BPR(BPRParams params) : params_(params) { params_.validate(); }

PERKREC_INLINE void BPR::require_fitted(const char* method) const {
  if (!fitted_) detail::raise<InputError>("BPR::", method, ": the model is not fitted");
}

PERKREC_INLINE void BPR::check_fit_input(const CsrView<float>& m, const char* what, Index rows,
                                         Index cols) const {
  detail::check_interactions(m, rows, cols, what, params_.verify_negative_samples);
}

PERKREC_INLINE void BPR::fit(const CsrView<float>& user_benefits, const CsrView<float>& eligibility,
                             const Callbacks& callbacks) {
  check_fit_input(user_benefits, "BPR::fit: user_benefits", -1, -1);
  if (eligibility.rows > 0) {
    eligibility.validate("BPR::fit: eligibility");
    if (eligibility.rows != user_benefits.rows || eligibility.cols != user_benefits.cols) {
      detail::raise<InputError>("BPR::fit: eligibility has shape ", eligibility.rows, " x ",
                                eligibility.cols, " (expected ", user_benefits.rows, " x ",
                                user_benefits.cols, ")");
    }
  }
  const int dim = params_.factors;
  const int threads = resolve_num_threads(params_.num_threads);
  const Index n_users = user_benefits.rows, n_benefits = user_benefits.cols;
  detail::FactorTable x(n_users, dim + 1), y(n_benefits, dim + 1);
  for (Index u = 0; u < n_users; ++u) {
    Rng rng(params_.seed, static_cast<std::uint64_t>(u), 0);
    detail::bpr_init_row(x.row(u), dim, rng, 1.0f);
  }
  for (Index b = 0; b < n_benefits; ++b) {
    Rng rng(params_.seed, static_cast<std::uint64_t>(b), 1);
    detail::bpr_init_row(y.row(b), dim, rng, 0.0f);
  }
  const Offset nnz = user_benefits.nnz();
  std::vector<Index> row_of(static_cast<std::size_t>(nnz));
  for (Index u = 0; u < n_users; ++u) {
    std::fill(row_of.begin() + user_benefits.indptr[u],
              row_of.begin() + user_benefits.indptr[u + 1], u);
  }
  // Fixed sample blocks: the stream of a block depends on (seed, block, epoch) only.
  const Offset n_blocks = std::max<Offset>(1, std::min<Offset>(1024, nnz / 256 + 1));
  const Offset per_block = (nnz + n_blocks - 1) / n_blocks;
  std::vector<Offset> correct(static_cast<std::size_t>(n_blocks)),
      used(static_cast<std::size_t>(n_blocks));
  std::vector<double> accuracy;
  const float lr = params_.learning_rate, reg = params_.regularization;
  const bool verify = params_.verify_negative_samples;
  const bool popular_negatives = params_.negative_sampling == NegativeSampling::popularity;
  const int row_bytes = (dim + 1) * static_cast<int>(sizeof(float));
  const bool avx2_available = detail::cpu_has_avx2_fma();
  (void)avx2_available;
  ProgressReporter progress(callbacks, "BPR::fit", params_.iterations);
  for (int epoch = 0; epoch < params_.iterations && nnz > 0 && n_benefits > 1; ++epoch) {
    parallel_for(
        0, n_blocks, threads,
        [&](Offset block) {
          Rng rng(params_.seed, static_cast<std::uint64_t>(block),
                  static_cast<std::uint64_t>(epoch) + 2);
          const Offset samples =
              std::max<Offset>(0, std::min<Offset>(per_block, nnz - block * per_block));
          Offset ok = 0, done = 0;
          // Samples go through in batches of three passes — draw interactions, draw negatives,
          // update — with prefetches in between, so the random reads of the interaction arrays
          // and of the factor rows overlap instead of stalling one at a time.
          constexpr int kBatch = 32;
          Offset drawn[kBatch];
          Index su[kBatch], si[kBatch], sj[kBatch];
          for (Offset s0 = 0; s0 < samples; s0 += kBatch) {
            const int count = static_cast<int>(std::min<Offset>(kBatch, samples - s0));
            for (int t = 0; t < count; ++t) {
              drawn[t] = detail::fast_range(rng.next_u64(), nnz);
              detail::prefetch_bytes(&row_of[static_cast<std::size_t>(drawn[t])], 4);
              detail::prefetch_bytes(user_benefits.indices + drawn[t], 4);
            }
            int kept = 0;
            for (int t = 0; t < count; ++t) {
              const Index u = row_of[static_cast<std::size_t>(drawn[t])];
              const Index i = user_benefits.indices[drawn[t]];
              Index j;
              if (eligibility.rows > 0) {
                const Offset eb = eligibility.indptr[u], ec = eligibility.indptr[u + 1] - eb;
                if (ec == 0) continue;
                j = eligibility.indices[eb + detail::fast_range(rng.next_u64(), ec)];
              } else if (popular_negatives) {
                j = user_benefits.indices[detail::fast_range(rng.next_u64(), nnz)];
              } else {
                j = static_cast<Index>(detail::fast_range(rng.next_u64(), n_benefits));
              }
              if (j == i) continue;
              detail::prefetch_bytes(x.row(u), row_bytes);
              detail::prefetch_bytes(y.row(i), row_bytes);
              detail::prefetch_bytes(y.row(j), row_bytes);
              if (verify) detail::prefetch_bytes(user_benefits.indptr + u, 16);
              su[kept] = u;
              si[kept] = i;
              sj[kept] = j;
              ++kept;
            }
            for (int t = 0; t < kept; ++t) {
              if (verify && detail::row_contains(user_benefits, su[t], sj[t])) continue;
#if PERKREC_HAS_AVX2_DISPATCH
              if (avx2_available) {
                ok += detail::avx2::bpr_step(x.row(su[t]), y.row(si[t]), y.row(sj[t]), dim, lr,
                                             reg) > 0
                          ? 1
                          : 0;
                ++done;
                continue;
              }
#endif
              ok += detail::bpr_step(x.row(su[t]), y.row(si[t]), y.row(sj[t]), dim, lr, reg, true,
                                     true)
                        ? 1
                        : 0;
              ++done;
            }
          }
          correct[static_cast<std::size_t>(block)] = ok;
          used[static_cast<std::size_t>(block)] = done;
        },
        Schedule::dynamic, 1);
    const Index bad_user = x.first_non_finite(threads);
    const Index bad_benefit = y.first_non_finite(threads);
    if (bad_user >= 0 || bad_benefit >= 0) {
      detail::raise<DivergenceError>("BPR::fit: non-finite factors after epoch ", epoch + 1, " (",
                                     bad_user >= 0 ? "member " : "benefit ",
                                     bad_user >= 0 ? bad_user : bad_benefit,
                                     "); lower learning_rate");
    }
    Offset total_ok = 0, total_used = 0;
    for (std::size_t b = 0; b < correct.size(); ++b) {
      total_ok += correct[b];
      total_used += used[b];
    }
    accuracy.push_back(
        total_used > 0 ? static_cast<double>(total_ok) / static_cast<double>(total_used) : 0.0);
    progress.log(LogLevel::info,
                 detail::concat("BPR::fit: epoch ", epoch + 1, " pair accuracy ", accuracy.back()));
    progress.advance(1);
  }
  users_ = std::move(x);
  benefits_ = std::move(y);
  accuracy_ = std::move(accuracy);
  user_ids_ = IdMap();
  benefit_ids_ = IdMap();
  fitted_ = true;
}

PERKREC_INLINE void BPR::set_ids(IdMap users, IdMap benefits) {
  require_fitted("set_ids");
  detail::check_id_maps(users, benefits, n_users(), n_benefits(), "BPR");
  user_ids_ = std::move(users);
  benefit_ids_ = std::move(benefits);
}

PERKREC_INLINE void BPR::score(Span<const Index> users, Span<const Index> benefits,
                               Span<float> out) const {
  require_fitted("score");
  detail::check_score_pairs(users, benefits, out, n_users(), n_benefits(), "BPR");
  const int dim = users_.dim;
  for (std::size_t i = 0; i < users.size(); ++i) {
    out[i] = detail::ConstMapVectorF(users_.row(users[i]), dim)
                 .dot(detail::ConstMapVectorF(benefits_.row(benefits[i]), dim));
  }
}

PERKREC_INLINE TopK BPR::recommend(Span<const Index> users, int n, const Filter& filter) const {
  require_fitted("recommend");
  detail::check_users(users, n_users(), "BPR::recommend");
  return detail::factor_top_k(users_, users, benefits_, n, filter, params_.num_threads);
}

PERKREC_INLINE std::vector<float> BPR::fold_in(const CsrView<float>& user_benefits) const {
  require_fitted("fold_in");
  check_fit_input(user_benefits, "BPR::fold_in: user_benefits", -1, n_benefits());
  detail::FactorTable x(user_benefits.rows, params_.factors + 1);
  std::vector<Index> streams(static_cast<std::size_t>(x.rows));
  for (Index i = 0; i < x.rows; ++i) streams[static_cast<std::size_t>(i)] = i;
  detail::bpr_fold_rows(user_benefits, benefits_, params_, x, streams,
                        std::vector<std::uint8_t>(static_cast<std::size_t>(x.rows), 0));
  return std::move(x.values);
}

PERKREC_INLINE TopK BPR::recommend_new(const CsrView<float>& user_benefits, int n,
                                       const Filter& filter) const {
  require_fitted("recommend_new");
  detail::FactorTable x;
  x.dim = params_.factors + 1;
  x.values = fold_in(user_benefits);
  x.rows = user_benefits.rows;
  std::vector<Index> rows(static_cast<std::size_t>(x.rows));
  for (Index i = 0; i < x.rows; ++i) rows[static_cast<std::size_t>(i)] = i;
  return detail::factor_top_k(x, rows, benefits_, n,
                              detail::NewRowsFilter(filter, user_benefits).get(),
                              params_.num_threads);
}

PERKREC_INLINE TopK BPR::similar_benefits(Span<const Index> benefits, int n,
                                          const Filter& filter) const {
  require_fitted("similar_benefits");
  detail::check_ids(benefits, n_benefits(), "BPR::similar_benefits", "benefit");
  return detail::cosine_top_k(benefits_, benefits, params_.factors, n, filter, params_.num_threads);
}

PERKREC_INLINE TopK BPR::similar_users(Span<const Index> users, int n, const Filter& filter) const {
  require_fitted("similar_users");
  detail::check_users(users, n_users(), "BPR::similar_users");
  return detail::cosine_top_k(users_, users, params_.factors, n, filter, params_.num_threads);
}

PERKREC_INLINE void BPR::partial_fit_users(Span<const Index> users,
                                           const CsrView<float>& user_benefits, Index max_growth) {
  require_fitted("partial_fit_users");
  detail::check_ids(users, detail::growth_limit(n_users(), max_growth, "BPR::partial_fit_users"),
                    "BPR::partial_fit_users", "user");
  check_fit_input(user_benefits, "BPR::partial_fit_users: user_benefits",
                  static_cast<Index>(users.size()), n_benefits());
  const int dim = params_.factors + 1;
  detail::FactorTable x(user_benefits.rows, dim);
  std::vector<std::uint8_t> warm(users.size(), 0);
  std::vector<Index> streams(users.begin(), users.end());
  for (std::size_t i = 0; i < users.size(); ++i) {
    if (users[i] < n_users()) {
      std::copy(users_.row(users[i]), users_.row(users[i]) + dim, x.row(static_cast<Index>(i)));
      warm[i] = 1;
    }
  }
  detail::bpr_fold_rows(user_benefits, benefits_, params_, x, streams, warm);
  Index new_rows = n_users();
  for (Index u : users) new_rows = std::max<Index>(new_rows, u + 1);
  const Index old_rows = n_users();
  users_.grow(new_rows);
  for (Index u = old_rows; u < new_rows; ++u) users_.row(u)[params_.factors] = 1.0f;
  if (user_ids_.size() != 0 && user_ids_.size() != new_rows) user_ids_ = IdMap();
  for (std::size_t i = 0; i < users.size(); ++i) {
    std::copy(x.row(static_cast<Index>(i)), x.row(static_cast<Index>(i)) + dim,
              users_.row(users[i]));
  }
}

PERKREC_INLINE void BPR::partial_fit_benefits(Span<const Index> benefits,
                                              const CsrView<float>& benefit_users,
                                              Index max_growth) {
  require_fitted("partial_fit_benefits");
  detail::check_ids(benefits,
                    detail::growth_limit(n_benefits(), max_growth, "BPR::partial_fit_benefits"),
                    "BPR::partial_fit_benefits", "benefit");
  detail::check_interactions(benefit_users, static_cast<Index>(benefits.size()), n_users(),
                             "BPR::partial_fit_benefits: benefit_users");
  const int latent = params_.factors, dim = latent + 1;
  const Index old_benefits = n_benefits();
  detail::FactorTable solved(benefit_users.rows, dim);
  parallel_for(
      0, benefit_users.rows, params_.num_threads,
      [&](Offset rr) {
        const auto r = static_cast<Index>(rr);
        const Index b = benefits[static_cast<std::size_t>(r)];
        Rng rng(params_.seed, static_cast<std::uint64_t>(b), 4);
        float* yb = solved.row(r);
        if (b < old_benefits) {
          std::copy(benefits_.row(b), benefits_.row(b) + dim, yb);
        } else {
          detail::bpr_init_row(yb, latent, rng, 0.0f);
        }
        const Offset begin = benefit_users.indptr[r], count = benefit_users.indptr[r + 1] - begin;
        if (count == 0 || old_benefits < 1) return;
        for (int epoch = 0; epoch < params_.fold_in_epochs; ++epoch) {
          for (Offset s = 0; s < count; ++s) {
            const Index u = benefit_users.indices[begin + static_cast<Offset>(rng.below(
                                                              static_cast<std::uint32_t>(count)))];
            const auto j = static_cast<Index>(rng.below(static_cast<std::uint32_t>(old_benefits)));
            if (j == b) continue;
            detail::bpr_step(const_cast<float*>(users_.row(u)), yb,
                             const_cast<float*>(benefits_.row(j)), latent, params_.learning_rate,
                             params_.regularization, false, true);
          }
        }
      },
      Schedule::dynamic, 4);
  Index new_rows = n_benefits();
  for (Index b : benefits) new_rows = std::max<Index>(new_rows, b + 1);
  benefits_.grow(new_rows);
  if (benefit_ids_.size() != 0 && benefit_ids_.size() != new_rows) benefit_ids_ = IdMap();
  for (std::size_t i = 0; i < benefits.size(); ++i) {
    std::copy(solved.row(static_cast<Index>(i)), solved.row(static_cast<Index>(i)) + dim,
              benefits_.row(benefits[i]));
  }
}

PERKREC_INLINE void BPR::write(ModelWriter& w, const std::string& prefix) const {
  require_fitted("save");
  Json& c = content_section(w, prefix);
  c["params"] = params_.to_json();
  c["n_users"] = n_users();
  c["n_benefits"] = n_benefits();
  c["training_accuracy"] = accuracy_;
  detail::write_table(w, prefix + "user_factors", users_);
  detail::write_table(w, prefix + "benefit_factors", benefits_);
  user_ids_.write(w, prefix + "user_ids.");
  benefit_ids_.write(w, prefix + "benefit_ids.");
}

PERKREC_INLINE BPR BPR::read(const ModelReader& r, const std::string& prefix) {
  std::vector<double> accuracy;
  const auto header = read_recommender_header<BPRParams>(
      r, prefix, "BPR::read",
      [&](JsonReader<ModelFormatError>& jr) { jr.require("training_accuracy", accuracy); });
  const BPRParams& params = header.params;
  const Index n_users = header.n_users, n_benefits = header.n_benefits;
  BPR model(params);
  model.users_ = detail::read_table(r, prefix + "user_factors", n_users, params.factors + 1);
  model.benefits_ =
      detail::read_table(r, prefix + "benefit_factors", n_benefits, params.factors + 1);
  for (Index u = 0; u < n_users; ++u) {
    if (model.users_.row(u)[params.factors] != 1.0f)
      r.invalid("member factor rows must end with 1");
  }
  model.accuracy_ = std::move(accuracy);
  model.fitted_ = true;
  try {
    model.set_ids(IdMap::read(r, prefix + "user_ids."), IdMap::read(r, prefix + "benefit_ids."));
  } catch (const InputError& e) {
    r.invalid(e.what());
  }
  return model;
}

}  // namespace perkrec
