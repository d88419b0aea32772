// Definitions for als.hpp.
#pragma once

#include <Eigen/Cholesky>

#include <algorithm>
#include <cmath>
#include <limits>

#include "perkrec/core/random.hpp"
#include "perkrec/detail/simd.hpp"
#include "perkrec/models/als.hpp"

namespace perkrec {

PERKREC_INLINE void ALSParams::validate() const { params::validate_fields(*this, "ALSParams"); }
PERKREC_INLINE Json ALSParams::to_json() const { return params::fields_to_json(*this); }
PERKREC_INLINE ALSParams ALSParams::from_json(const Json& j) {
  return params::fields_from_json<ALSParams>(j, "ALSParams::from_json");
}

namespace detail {

PERKREC_INLINE Eigen::MatrixXd gram(const FactorTable& y, int num_threads) {
  // Fixed row blocks (independent of the thread count), each reduced with a rank update,
  // then summed in block order: the same bits for any num_threads.
  constexpr Index kBlock = 4096;
  const int dim = y.dim;
  const Index blocks = std::max<Index>(1, (y.rows + kBlock - 1) / kBlock);
  std::vector<Eigen::MatrixXd> partial(static_cast<std::size_t>(blocks));
  parallel_for(
      0, blocks, num_threads,
      [&](Offset b) {
        const Index first = static_cast<Index>(b) * kBlock;
        const Index count = std::max<Index>(0, std::min<Index>(kBlock, y.rows - first));
        // Double even inside a block: the exact solver's normal equations are only as definite
        // as this sum is accurate.
        Eigen::MatrixXd g = Eigen::MatrixXd::Zero(dim, dim);
        if (count > 0) {
          const Eigen::MatrixXd block = ConstMapRowMatrixF(y.row(first), count, dim).cast<double>();
          g.selfadjointView<Eigen::Lower>().rankUpdate(block.transpose());
        }
        partial[static_cast<std::size_t>(b)] = std::move(g);
      },
      Schedule::dynamic, 1);
  Eigen::MatrixXd sum = Eigen::MatrixXd::Zero(dim, dim);
  for (const auto& g : partial) sum += g;
  sum.triangularView<Eigen::StrictlyUpper>() = sum.transpose();
  return sum;
}

#if PERKREC_HAS_AVX2_DISPATCH
/// The conjugate-gradient row solve of als_solve with AVX2/FMA kernels and software prefetch
/// of the next factor rows (the member half-sweep reads benefit rows, the benefit half-sweep
/// member rows scattered over a large table).
PERKREC_TARGET_AVX2 inline void cg_row_avx2(const CsrView<float>& m, Index u, const FactorTable& y,
                                            const float* yty_reg, float alpha, int cg_steps,
                                            float* x, float* r, float* p, float* ap) {
  const int dim = y.dim;
  const int row_bytes = dim * static_cast<int>(sizeof(float));
  constexpr Offset kAhead = 4;
  const Offset begin = m.indptr[u], end = m.indptr[u + 1];
  for (Offset e = begin; e < std::min(end, begin + kAhead); ++e)
    avx2::prefetch(y.row(m.indices[e]), row_bytes);
  avx2::symv(yty_reg, x, r, dim);
  for (int k = 0; k < dim; ++k) r[k] = -r[k];
  for (Offset e = begin; e < end; ++e) {
    if (e + kAhead < end) avx2::prefetch(y.row(m.indices[e + kAhead]), row_bytes);
    const float c = 1.0f + alpha * (m.data != nullptr ? m.data[e] : 1.0f);
    const float* yi = y.row(m.indices[e]);
    avx2::axpy(c - (c - 1.0f) * avx2::dot(yi, x, dim), yi, r, dim);
  }
  std::copy(r, r + dim, p);
  float rsold = avx2::dot(r, r, dim);
  if (!std::isfinite(rsold)) {
    std::fill(x, x + dim, std::numeric_limits<float>::quiet_NaN());
    return;
  }
  if (rsold < 1e-20f) return;
  for (int step = 0; step < cg_steps; ++step) {
    avx2::symv(yty_reg, p, ap, dim);
    for (Offset e = begin; e < end; ++e) {
      const float c = 1.0f + alpha * (m.data != nullptr ? m.data[e] : 1.0f);
      const float* yi = y.row(m.indices[e]);
      avx2::axpy((c - 1.0f) * avx2::dot(yi, p, dim), yi, ap, dim);
    }
    const float pap = avx2::dot(p, ap, dim);
    if (!(pap > 0)) break;
    const float step_size = rsold / pap;
    avx2::axpy(step_size, p, x, dim);
    avx2::axpy(-step_size, ap, r, dim);
    const float rsnew = avx2::dot(r, r, dim);
    if (rsnew < 1e-20f) break;
    const float beta = rsnew / rsold;
    for (int k = 0; k < dim; ++k) p[k] = r[k] + beta * p[k];
    rsold = rsnew;
  }
}
#endif

PERKREC_INLINE void als_solve(const CsrView<float>& m, const FactorTable& y,
                              const Eigen::MatrixXd& yty, float regularization, float alpha,
                              int cg_steps, FactorTable& x, int num_threads) {
  const int dim = y.dim;
  const int threads = resolve_num_threads(num_threads);
  Eigen::MatrixXf yty_reg = yty.cast<float>();
  yty_reg.diagonal().array() += regularization;
  // The exact solve runs in double: Y^T Y grows with the number of rows while the
  // regularization does not, and in float the normal equations of a large table lose
  // definiteness (CG needs no factorization and stays in float).
  Eigen::MatrixXd yty_reg_d;
  if (cg_steps == 0) {
    yty_reg_d = yty;
    yty_reg_d.diagonal().array() += static_cast<double>(regularization);
  }
  const std::vector<Index> bounds = balanced_chunks(m, static_cast<Index>(threads) * 16, dim);
  const bool avx2_available = cpu_has_avx2_fma();
  const bool use_avx2 = cg_steps > 0 && avx2_available;
  (void)use_avx2;
  const Index chunks = static_cast<Index>(bounds.size()) - 1;
  parallel_for(
      0, chunks, threads,
      [&](Offset chunk) {
        // Per-chunk scratch: no allocation per row.
        Eigen::VectorXf r(dim), p(dim), ap(dim);
        Eigen::VectorXd b(dim), column(dim);
        Eigen::MatrixXd a(dim, dim);
        Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> weighted;
        Eigen::LLT<Eigen::MatrixXd> llt(dim);
        for (Index u = bounds[static_cast<std::size_t>(chunk)];
             u < bounds[static_cast<std::size_t>(chunk) + 1]; ++u) {
#if PERKREC_HAS_AVX2_DISPATCH
          if (use_avx2) {
            cg_row_avx2(m, u, y, yty_reg.data(), alpha, cg_steps, x.row(u), r.data(), p.data(),
                        ap.data());
            continue;
          }
#endif
          MapVectorF xu(x.row(u), dim);
          const Offset begin = m.indptr[u], end = m.indptr[u + 1];
          if (cg_steps == 0) {
            // Exact: (Y^T Y + reg I + Y_u^T (C_u - I) Y_u) x = Y_u^T C_u p_u.
            const Offset count = end - begin;
            a = yty_reg_d;
            b.setZero();
            if (count > 0) {
              weighted.resize(count, dim);
              for (Offset e = begin; e < end; ++e) {
                const double c =
                    1.0 + static_cast<double>(alpha) * (m.data != nullptr ? m.data[e] : 1.0f);
                const auto yi = ConstMapVectorF(y.row(m.indices[e]), dim).cast<double>();
                weighted.row(e - begin) = std::sqrt(c - 1.0) * yi.transpose();
                b.noalias() += c * yi;
              }
#if PERKREC_HAS_AVX2_DISPATCH
              if (avx2_available) {
                avx2::syrk_lower(a.data(), weighted.data(), count, dim);
              } else {
                a.selfadjointView<Eigen::Lower>().rankUpdate(weighted.transpose());
              }
#else
              a.selfadjointView<Eigen::Lower>().rankUpdate(weighted.transpose());
#endif
            }
#if PERKREC_HAS_AVX2_DISPATCH
            if (avx2_available) {
              // a is symmetric, so its column-major storage is also the row-major lower triangle.
              if (avx2::cholesky_solve(a.data(), b.data(), dim, column.data())) {
                xu = b.cast<float>();
              } else {
                xu.setConstant(std::numeric_limits<float>::quiet_NaN());  // reported by fit()
              }
              continue;
            }
#endif
            llt.compute(a);
            if (llt.info() == Eigen::Success) {
              xu = llt.solve(b).cast<float>();
            } else {
              xu.setConstant(std::numeric_limits<float>::quiet_NaN());  // reported by fit()
            }
            continue;
          }
          // Conjugate gradient on the same system, warm-started from the current x_u.
          // r = b - A x = -(Y^T Y + reg I) x + sum_i (c_i - (c_i - 1) y_i.x) y_i
          r.noalias() = -(yty_reg * xu);
          for (Offset e = begin; e < end; ++e) {
            const float c = 1.0f + alpha * (m.data != nullptr ? m.data[e] : 1.0f);
            ConstMapVectorF yi(y.row(m.indices[e]), dim);
            r.noalias() += (c - (c - 1.0f) * yi.dot(xu)) * yi;
          }
          p = r;
          float rsold = r.squaredNorm();
          if (!std::isfinite(rsold)) {
            // Overflowing confidences: mark the row so fit() reports the divergence.
            xu.setConstant(std::numeric_limits<float>::quiet_NaN());
            continue;
          }
          if (rsold < 1e-20f) continue;
          for (int step = 0; step < cg_steps; ++step) {
            ap.noalias() = yty_reg * p;
            for (Offset e = begin; e < end; ++e) {
              const float c = 1.0f + alpha * (m.data != nullptr ? m.data[e] : 1.0f);
              ConstMapVectorF yi(y.row(m.indices[e]), dim);
              ap.noalias() += ((c - 1.0f) * yi.dot(p)) * yi;
            }
            const float pap = p.dot(ap);
            if (!(pap > 0)) break;
            const float step_size = rsold / pap;
            xu.noalias() += step_size * p;
            r.noalias() -= step_size * ap;
            const float rsnew = r.squaredNorm();
            if (rsnew < 1e-20f) break;
            p = r + (rsnew / rsold) * p;
            rsold = rsnew;
          }
        }
      },
      Schedule::dynamic, 1);
}

PERKREC_INLINE double als_loss(const CsrView<float>& m, const FactorTable& x, const FactorTable& y,
                               float regularization, float alpha, int num_threads) {
  const int dim = y.dim;
  const Eigen::MatrixXf yty = gram(y, num_threads).cast<float>();
  std::vector<double> per_row(static_cast<std::size_t>(m.rows), 0.0);
  std::vector<double> confidence(static_cast<std::size_t>(m.rows), 0.0);
  parallel_for(0, m.rows, num_threads, [&](Offset r) {
    const auto u = static_cast<Index>(r);
    ConstMapVectorF xu(x.row(u), dim);
    // Every benefit at p = 0, c = 1 (x^T Y^T Y x), then corrected for the interacted ones.
    double loss = static_cast<double>(xu.dot(yty * xu));
    double extra = 0;
    for (Offset e = m.indptr[u]; e < m.indptr[u + 1]; ++e) {
      const double c = 1.0 + alpha * (m.data != nullptr ? m.data[e] : 1.0f);
      const double s = xu.dot(ConstMapVectorF(y.row(m.indices[e]), dim));
      loss += c * (1.0 - s) * (1.0 - s) - s * s;
      extra += c - 1.0;
    }
    per_row[static_cast<std::size_t>(r)] =
        loss + regularization * static_cast<double>(xu.squaredNorm());
    confidence[static_cast<std::size_t>(r)] = extra;
  });
  double total = 0, total_confidence = 0;
  for (std::size_t i = 0; i < per_row.size(); ++i) {
    total += per_row[i];
    total_confidence += confidence[i];
  }
  for (Index b = 0; b < y.rows; ++b) {
    total += regularization * static_cast<double>(ConstMapVectorF(y.row(b), dim).squaredNorm());
  }
  const double pairs = static_cast<double>(m.rows) * static_cast<double>(m.cols) + total_confidence;
  return pairs > 0 ? total / pairs : 0.0;
}

PERKREC_INLINE void init_factors(FactorTable& t, std::uint64_t seed, std::uint64_t side,
                                 Index first_row = 0) {
  for (Index r = first_row; r < t.rows; ++r) {
    Rng rng(seed, static_cast<std::uint64_t>(r), side);
    float* v = t.row(r);
    for (int f = 0; f < t.dim; ++f) v[f] = rng.uniform_float() * 0.01f;
  }
}

}  // namespace detail

PERKREC_INLINE ALS::ALS(ALSParams params) : params_(params) { params_.validate(); }

PERKREC_INLINE void ALS::require_fitted(const char* method) const {
  if (!fitted_) detail::raise<InputError>("ALS::", method, ": the model is not fitted");
}

PERKREC_INLINE void ALS::fit(const CsrView<float>& user_benefits, const Callbacks& callbacks) {
  detail::check_interactions(user_benefits, -1, -1, "ALS::fit: user_benefits");
  const int threads = resolve_num_threads(params_.num_threads);
  const int dim = params_.factors;
  const CsrMatrix<float> benefit_users = detail::transpose(user_benefits, threads);
  detail::FactorTable x(user_benefits.rows, dim), y(user_benefits.cols, dim);
  detail::init_factors(x, params_.seed, 0);
  detail::init_factors(y, params_.seed, 1);
  std::vector<double> loss;
  ProgressReporter progress(callbacks, "ALS::fit", params_.iterations);
  for (int it = 0; it < params_.iterations; ++it) {
    detail::als_solve(user_benefits, y, detail::gram(y, threads), params_.regularization,
                      params_.alpha, params_.cg_steps, x, threads);
    detail::als_solve(benefit_users.view(), x, detail::gram(x, threads), params_.regularization,
                      params_.alpha, params_.cg_steps, y, threads);
    const Index bad_user = x.first_non_finite(threads);
    const Index bad_benefit = y.first_non_finite(threads);
    if (bad_user >= 0 || bad_benefit >= 0) {
      detail::raise<DivergenceError>("ALS::fit: non-finite factors after iteration ", it + 1, " (",
                                     bad_user >= 0 ? "member " : "benefit ",
                                     bad_user >= 0 ? bad_user : bad_benefit,
                                     "); lower alpha or raise regularization");
    }
    if (params_.calculate_training_loss) {
      loss.push_back(
          detail::als_loss(user_benefits, x, y, params_.regularization, params_.alpha, threads));
      progress.log(LogLevel::info,
                   detail::concat("ALS::fit: iteration ", it + 1, " loss ", loss.back()));
    }
    progress.advance(1);
  }
  users_ = std::move(x);
  benefits_ = std::move(y);
  loss_ = std::move(loss);
  user_ids_ = IdMap();
  benefit_ids_ = IdMap();
  fitted_ = true;
}

PERKREC_INLINE void ALS::set_ids(IdMap users, IdMap benefits) {
  require_fitted("set_ids");
  detail::check_id_maps(users, benefits, n_users(), n_benefits(), "ALS");
  user_ids_ = std::move(users);
  benefit_ids_ = std::move(benefits);
}

PERKREC_INLINE void ALS::score(Span<const Index> users, Span<const Index> benefits,
                               Span<float> out) const {
  require_fitted("score");
  detail::check_score_pairs(users, benefits, out, n_users(), n_benefits(), "ALS");
  const int dim = params_.factors;
  for (std::size_t i = 0; i < users.size(); ++i) {
    out[i] = detail::ConstMapVectorF(users_.row(users[i]), dim)
                 .dot(detail::ConstMapVectorF(benefits_.row(benefits[i]), dim));
  }
}

PERKREC_INLINE TopK ALS::recommend(Span<const Index> users, int n, const Filter& filter) const {
  require_fitted("recommend");
  detail::check_users(users, n_users(), "ALS::recommend");
  return detail::factor_top_k(users_, users, benefits_, n, filter, params_.num_threads);
}

PERKREC_INLINE std::vector<float> ALS::fold_in(const CsrView<float>& user_benefits) const {
  require_fitted("fold_in");
  detail::check_interactions(user_benefits, -1, n_benefits(), "ALS::fold_in: user_benefits");
  detail::FactorTable x(user_benefits.rows, params_.factors);
  detail::als_solve(user_benefits, benefits_, detail::gram(benefits_, params_.num_threads),
                    params_.regularization, params_.alpha, 0, x, params_.num_threads);
  return std::move(x.values);
}

PERKREC_INLINE TopK ALS::recommend_new(const CsrView<float>& user_benefits, int n,
                                       const Filter& filter) const {
  require_fitted("recommend_new");
  detail::FactorTable x;
  x.dim = params_.factors;
  x.values = fold_in(user_benefits);
  x.rows = user_benefits.rows;
  std::vector<Index> rows(static_cast<std::size_t>(x.rows));
  for (Index i = 0; i < x.rows; ++i) rows[static_cast<std::size_t>(i)] = i;
  return detail::factor_top_k(x, rows, benefits_, n,
                              detail::NewRowsFilter(filter, user_benefits).get(),
                              params_.num_threads);
}

PERKREC_INLINE TopK ALS::similar_benefits(Span<const Index> benefits, int n,
                                          const Filter& filter) const {
  require_fitted("similar_benefits");
  detail::check_ids(benefits, n_benefits(), "ALS::similar_benefits", "benefit");
  return detail::cosine_top_k(benefits_, benefits, params_.factors, n, filter, params_.num_threads);
}

PERKREC_INLINE TopK ALS::similar_users(Span<const Index> users, int n, const Filter& filter) const {
  require_fitted("similar_users");
  detail::check_users(users, n_users(), "ALS::similar_users");
  return detail::cosine_top_k(users_, users, params_.factors, n, filter, params_.num_threads);
}

PERKREC_INLINE void ALS::partial_fit_users(Span<const Index> users,
                                           const CsrView<float>& user_benefits, Index max_growth) {
  require_fitted("partial_fit_users");
  detail::check_ids(users, detail::growth_limit(n_users(), max_growth, "ALS::partial_fit_users"),
                    "ALS::partial_fit_users", "user");
  detail::check_interactions(user_benefits, static_cast<Index>(users.size()), n_benefits(),
                             "ALS::partial_fit_users: user_benefits");
  const std::vector<float> solved = fold_in(user_benefits);
  Index new_rows = n_users();
  for (Index u : users) new_rows = std::max<Index>(new_rows, u + 1);
  users_.grow(new_rows);
  if (user_ids_.size() != 0 && user_ids_.size() != new_rows) user_ids_ = IdMap();
  const int dim = params_.factors;
  for (std::size_t i = 0; i < users.size(); ++i) {
    std::copy(solved.begin() + static_cast<std::ptrdiff_t>(i * dim),
              solved.begin() + static_cast<std::ptrdiff_t>((i + 1) * dim), users_.row(users[i]));
  }
}

PERKREC_INLINE void ALS::partial_fit_benefits(Span<const Index> benefits,
                                              const CsrView<float>& benefit_users,
                                              Index max_growth) {
  require_fitted("partial_fit_benefits");
  detail::check_ids(benefits,
                    detail::growth_limit(n_benefits(), max_growth, "ALS::partial_fit_benefits"),
                    "ALS::partial_fit_benefits", "benefit");
  detail::check_interactions(benefit_users, static_cast<Index>(benefits.size()), n_users(),
                             "ALS::partial_fit_benefits: benefit_users");
  const int dim = params_.factors;
  detail::FactorTable solved(benefit_users.rows, dim);
  detail::als_solve(benefit_users, users_, detail::gram(users_, params_.num_threads),
                    params_.regularization, params_.alpha, 0, solved, params_.num_threads);
  Index new_rows = n_benefits();
  for (Index b : benefits) new_rows = std::max<Index>(new_rows, b + 1);
  benefits_.grow(new_rows);
  if (benefit_ids_.size() != 0 && benefit_ids_.size() != new_rows) benefit_ids_ = IdMap();
  for (std::size_t i = 0; i < benefits.size(); ++i) {
    std::copy(solved.row(static_cast<Index>(i)), solved.row(static_cast<Index>(i)) + dim,
              benefits_.row(benefits[i]));
  }
}

PERKREC_INLINE Explanation ALS::explain(const CsrView<float>& user_benefits, Index benefit,
                                        int n) const {
  require_fitted("explain");
  detail::check_interactions(user_benefits, 1, n_benefits(), "ALS::explain: user_benefits");
  if (benefit < 0 || benefit >= n_benefits()) {
    detail::raise<InputError>("ALS::explain: benefit out of range (got ", benefit,
                              ", expected 0 <= benefit < ", n_benefits(), ")");
  }
  if (n < 0) detail::raise<InputError>("ALS::explain: n must be >= 0 (got ", n, ")");
  const int dim = params_.factors;
  Eigen::MatrixXd a = detail::gram(benefits_, params_.num_threads);
  a.diagonal().array() += params_.regularization;
  const Offset begin = user_benefits.indptr[0], end = user_benefits.indptr[1];
  for (Offset e = begin; e < end; ++e) {
    const double c = 1.0 + static_cast<double>(params_.alpha) *
                               (user_benefits.data != nullptr ? user_benefits.data[e] : 1.0f);
    const Eigen::VectorXd yi =
        detail::ConstMapVectorF(benefits_.row(user_benefits.indices[e]), dim).cast<double>();
    a.selfadjointView<Eigen::Lower>().rankUpdate(yi, c - 1.0);
  }
  const Eigen::LLT<Eigen::MatrixXd> llt(a);
  // w = A^-1 y_benefit; contribution of history item h = c_h * w . y_h.
  const Eigen::VectorXf w =
      llt.solve(detail::ConstMapVectorF(benefits_.row(benefit), dim).cast<double>()).cast<float>();
  Explanation out;
  std::vector<std::pair<float, Index>> parts;
  double total = 0;
  for (Offset e = begin; e < end; ++e) {
    const float c =
        1.0f + params_.alpha * (user_benefits.data != nullptr ? user_benefits.data[e] : 1.0f);
    const float part =
        c * w.dot(detail::ConstMapVectorF(benefits_.row(user_benefits.indices[e]), dim));
    parts.emplace_back(part, user_benefits.indices[e]);
    total += part;
  }
  std::sort(parts.begin(), parts.end(), [](const auto& l, const auto& r) {
    return l.first > r.first || (l.first == r.first && l.second < r.second);
  });
  if (static_cast<int>(parts.size()) > n) parts.resize(static_cast<std::size_t>(n));
  out.score = static_cast<float>(total);
  for (const auto& p : parts) {
    out.benefits.push_back(p.second);
    out.contributions.push_back(p.first);
  }
  return out;
}

PERKREC_INLINE void ALS::write(ModelWriter& w, const std::string& prefix) const {
  require_fitted("save");
  Json& c = content_section(w, prefix);
  c["params"] = params_.to_json();
  c["n_users"] = n_users();
  c["n_benefits"] = n_benefits();
  c["training_loss"] = loss_;
  detail::write_table(w, prefix + "user_factors", users_);
  detail::write_table(w, prefix + "benefit_factors", benefits_);
  user_ids_.write(w, prefix + "user_ids.");
  benefit_ids_.write(w, prefix + "benefit_ids.");
}

PERKREC_INLINE ALS ALS::read(const ModelReader& r, const std::string& prefix) {
  std::vector<double> loss;
  const auto header = read_recommender_header<ALSParams>(
      r, prefix, "ALS::read",
      [&](JsonReader<ModelFormatError>& jr) { jr.require("training_loss", loss); });
  const ALSParams& params = header.params;
  const Index n_users = header.n_users, n_benefits = header.n_benefits;
  ALS model(params);
  model.users_ = detail::read_table(r, prefix + "user_factors", n_users, params.factors);
  model.benefits_ = detail::read_table(r, prefix + "benefit_factors", n_benefits, params.factors);
  model.loss_ = std::move(loss);
  model.fitted_ = true;
  try {
    model.set_ids(IdMap::read(r, prefix + "user_ids."), IdMap::read(r, prefix + "benefit_ids."));
  } catch (const InputError& e) {
    r.invalid(e.what());
  }
  return model;
}

}  // namespace perkrec
