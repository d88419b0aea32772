// Definitions for fm_cv.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "perkrec/core/random.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/detail/glm_solver.hpp"
#include "perkrec/models/fm_cv.hpp"

namespace perkrec {

// ---- params -----------------------------------------------------------------------------------

PERKREC_INLINE void FMCVParams::validate() const {
  params::validate_fields(*this, "FMCVParams");
  if (reg_linear_path.empty()) {
    detail::raise<ConfigError>("FMCVParams: reg_linear_path must not be empty");
  }
  for (std::size_t i = 0; i < reg_linear_path.size(); ++i) {
    const double r = reg_linear_path[i];
    if (!(r > 0) || !std::isfinite(r)) {
      detail::raise<ConfigError>("FMCVParams: reg_linear_path[", i,
                                 "] must be finite and > 0 (got ", r, ")");
    }
  }
  if (factors > 0 && reg_factors_grid.empty()) {
    detail::raise<ConfigError>(
        "FMCVParams: reg_factors_grid must not be empty when factors > 0 (got factors ", factors,
        ")");
  }
  for (std::size_t i = 0; i < reg_factors_grid.size(); ++i) {
    const double r = reg_factors_grid[i];
    if (!(r >= 0) || !std::isfinite(r)) {
      detail::raise<ConfigError>("FMCVParams: reg_factors_grid[", i,
                                 "] must be finite and >= 0 (got ", r, ")");
    }
  }
  if (static_cast<long long>(factors) * seeds > 1024) {
    detail::raise<ConfigError>("FMCVParams: seeds x factors must be <= 1024 (got ", seeds, " x ",
                               factors, ")");
  }
}
PERKREC_INLINE Json FMCVParams::to_json() const { return params::fields_to_json(*this); }
PERKREC_INLINE FMCVParams FMCVParams::from_json(const Json& j) {
  return params::fields_from_json<FMCVParams>(j, "FMCVParams::from_json");
}

PERKREC_INLINE Json FMCVReport::to_json() const {
  auto losses = [](const std::vector<double>& v) {
    Json a = Json::array();
    for (double x : v) a.push_back(std::isfinite(x) ? Json(x) : Json(nullptr));
    return a;
  };
  Json j = Json::object();
  j["folds"] = folds;
  j["reg_linear_path"] = reg_linear_path;
  j["path_loss"] = losses(path_loss);
  j["reg_linear"] = reg_linear;
  j["linear_loss"] = linear_loss;
  j["reg_factors_grid"] = reg_factors_grid;
  j["factors_loss"] = losses(factors_loss);
  j["factors_epochs"] = factors_epochs;
  j["factorized"] = factorized;
  j["reg_factors"] = reg_factors;
  j["epochs"] = epochs;
  j["seeds"] = seeds;
  j["loss"] = loss;
  return j;
}

// ---- stages -----------------------------------------------------------------------------------

namespace detail {

// One fold: its training rows and held-out rows as owned copies (values materialized, so the
// views never hold a null data pointer), labels and weights.
struct FMCVPart {
  CsrMatrix<float> X;
  std::vector<float> labels, weights;
  double total_weight = 0.0;
  FMTarget target() const {
    FMTarget t;
    t.labels = Span<const float>(labels.data(), labels.size());
    if (!weights.empty()) t.sample_weights = Span<const float>(weights.data(), weights.size());
    return t;
  }
};

inline FMCVPart fmcv_part(const CsrView<float>& X, const FMTarget& target,
                          const std::vector<std::int32_t>& fold, std::int32_t k, bool held_out) {
  FMCVPart part;
  part.X.cols = X.cols;
  for (Index r = 0; r < X.rows; ++r) {
    if ((fold[static_cast<std::size_t>(r)] == k) != held_out) continue;
    for (Offset e = X.indptr[r]; e < X.indptr[r + 1]; ++e) {
      part.X.indices.push_back(X.indices[e]);
      part.X.data.push_back(X.data ? X.data[e] : 1.0f);
    }
    part.X.indptr.push_back(static_cast<Offset>(part.X.indices.size()));
    part.labels.push_back(target.labels[static_cast<std::size_t>(r)]);
    const float w =
        target.sample_weights.empty() ? 1.0f : target.sample_weights[static_cast<std::size_t>(r)];
    if (!target.sample_weights.empty()) part.weights.push_back(w);
    part.total_weight += w;
    ++part.X.rows;
  }
  return part;
}

// Weighted mean log-loss of the linear model (bias, w) on a part, in row order.
inline double fmcv_linear_loss(const FMCVPart& part, double bias, const std::vector<double>& w) {
  double total = 0.0, weight = 0.0;
  const CsrMatrix<float>& X = part.X;
  for (Index r = 0; r < X.rows; ++r) {
    double s = bias;
    for (Offset e = X.indptr[static_cast<std::size_t>(r)];
         e < X.indptr[static_cast<std::size_t>(r) + 1]; ++e) {
      s += static_cast<double>(X.data[static_cast<std::size_t>(e)]) *
           w[static_cast<std::size_t>(X.indices[static_cast<std::size_t>(e)])];
    }
    const double c = part.weights.empty() ? 1.0 : part.weights[static_cast<std::size_t>(r)];
    const double y = part.labels[static_cast<std::size_t>(r)];
    total += c * (std::max(s, 0.0) + std::log1p(std::exp(-std::fabs(s))) - y * s);
    weight += c;
  }
  return weight > 0 ? total / weight : 0.0;
}

inline FMParams fmcv_linear_params(double reg_linear) {
  FMParams p;
  p.factors = 0;
  p.reg_bias = 0.0f;
  p.reg_linear = static_cast<float>(reg_linear);
  p.num_threads = 1;
  return p;
}

inline std::uint64_t fmcv_seed(std::uint64_t seed, std::uint64_t stream, std::uint64_t item) {
  return Rng(seed, stream, item).next_u64();
}

}  // namespace detail

// ---- model ------------------------------------------------------------------------------------

PERKREC_INLINE FMCV::FMCV(FMCVParams params) : params_(std::move(params)) { params_.validate(); }

PERKREC_INLINE const FM& FMCV::model() const {
  if (!fitted_) detail::raise<InputError>("FMCV::model: the selection is not fitted");
  return model_;
}

PERKREC_INLINE std::vector<std::int32_t> FMCV::fold_of(Span<const float> labels, int folds,
                                                       std::uint64_t seed) {
  if (folds < 1) detail::raise<InputError>("FMCV::fold_of: folds must be >= 1 (got ", folds, ")");
  std::vector<std::int32_t> out(labels.size(), 0);
  for (int label = 0; label <= 1; ++label) {
    std::vector<std::size_t> rows;
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if ((labels[i] != 0.0f) == (label == 1)) rows.push_back(i);
    }
    Rng rng(seed, 0x464f4c44ULL, static_cast<std::uint64_t>(label));  // "FOLD"
    for (std::size_t i = rows.size(); i > 1; --i) {
      const std::size_t j = static_cast<std::size_t>(rng.next_u64() % i);
      std::swap(rows[i - 1], rows[j]);
    }
    for (std::size_t p = 0; p < rows.size(); ++p) {
      out[rows[p]] = static_cast<std::int32_t>(p % static_cast<std::size_t>(folds));
    }
  }
  return out;
}

PERKREC_INLINE std::vector<std::int32_t> FMCV::fold_of(Span<const float> labels, int folds,
                                                       std::uint64_t seed,
                                                       Span<const Index> groups) {
  if (groups.empty()) return fold_of(labels, folds, seed);
  if (folds < 1) detail::raise<InputError>("FMCV::fold_of: folds must be >= 1 (got ", folds, ")");
  if (groups.size() != labels.size()) {
    detail::raise<InputError>("FMCV::fold_of: groups has ", groups.size(),
                              " entries (expected one per row: ", labels.size(), ")");
  }
  // Rows by group: (group, row) pairs sorted, so a group is one run.
  std::vector<std::pair<Index, std::size_t>> by_group(labels.size());
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (groups[i] < 0) {
      detail::raise<InputError>("FMCV::fold_of: group at position ", i, " must be >= 0 (got ",
                                groups[i], ")");
    }
    by_group[i] = {groups[i], i};
  }
  std::sort(by_group.begin(), by_group.end());
  struct Group {
    std::size_t begin = 0, end = 0, positives = 0;
  };
  std::vector<Group> order;
  for (std::size_t b = 0; b < by_group.size();) {
    std::size_t e = b;
    Group g;
    g.begin = b;
    while (e < by_group.size() && by_group[e].first == by_group[b].first) {
      g.positives += labels[by_group[e].second] != 0.0f ? 1 : 0;
      ++e;
    }
    g.end = e;
    order.push_back(g);
    b = e;
  }
  Rng rng(seed, 0x47524f5550ULL, 0);  // "GROUP"
  for (std::size_t i = order.size(); i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(rng.next_u64() % i);
    std::swap(order[i - 1], order[j]);
  }
  std::stable_sort(order.begin(), order.end(),
                   [](const Group& a, const Group& b) { return a.positives > b.positives; });
  const auto k = static_cast<std::size_t>(folds);
  std::vector<std::size_t> fold_positives(k, 0), fold_negatives(k, 0), fold_rows(k, 0);
  std::vector<std::int32_t> out(labels.size(), 0);
  for (const Group& g : order) {
    const std::vector<std::size_t>& key = g.positives > 0 ? fold_positives : fold_negatives;
    std::size_t best = 0;
    for (std::size_t f = 1; f < k; ++f) {
      if (key[f] < key[best] || (key[f] == key[best] && fold_rows[f] < fold_rows[best])) best = f;
    }
    const std::size_t rows = g.end - g.begin;
    fold_positives[best] += g.positives;
    fold_negatives[best] += rows - g.positives;
    fold_rows[best] += rows;
    for (std::size_t p = g.begin; p < g.end; ++p) {
      out[by_group[p].second] = static_cast<std::int32_t>(best);
    }
  }
  return out;
}

// Stages: validation, folds, the regularization path, the FM candidates, the choice, the refit
// (see the file comment of fm_cv.hpp).
PERKREC_INLINE void FMCV::fit(const CsrView<float>& X, const FMTarget& target,
                              Span<const std::int32_t> feature_fields, std::int32_t n_fields,
                              const Callbacks& callbacks) {
  // ---- validation (nothing changes on an error)
  if (n_fields < 1) {
    detail::raise<InputError>("FMCV::fit: n_fields must be >= 1 (got ", n_fields, ")");
  }
  X.validate("FMCV::fit: X");
  if (X.rows == 0) detail::raise<InputError>("FMCV::fit: X has no rows (nothing to learn from)");
  if (feature_fields.size() != static_cast<std::size_t>(X.cols)) {
    detail::raise<InputError>("FMCV::fit: feature_fields has ", feature_fields.size(),
                              " entries (expected one per feature column: ", X.cols, ")");
  }
  for (std::size_t i = 0; i < feature_fields.size(); ++i) {
    if (feature_fields[i] < 0 || feature_fields[i] >= n_fields) {
      detail::raise<InputError>("FMCV::fit: field of feature ", i, " out of range (got ",
                                feature_fields[i], ", expected 0 <= field < ", n_fields, ")");
    }
  }
  const auto rows = static_cast<std::size_t>(X.rows);
  if (target.labels.size() != rows) {
    detail::raise<InputError>("FMCV::fit: labels has ", target.labels.size(),
                              " entries (expected one per row: ", rows, ")");
  }
  std::size_t positives = 0;
  for (std::size_t i = 0; i < rows; ++i) {
    const float y = target.labels[i];
    if (y != 0.0f && y != 1.0f) {
      detail::raise<InputError>("FMCV::fit: label at position ", i, " must be 0 or 1 (got ", y,
                                ")");
    }
    positives += y == 1.0f ? 1 : 0;
  }
  if (!target.sample_weights.empty()) {
    if (target.sample_weights.size() != rows) {
      detail::raise<InputError>("FMCV::fit: sample_weights has ", target.sample_weights.size(),
                                " entries (expected ", rows, ")");
    }
    for (std::size_t i = 0; i < rows; ++i) {
      const float w = target.sample_weights[i];
      if (!(w >= 0) || !std::isfinite(w)) {
        detail::raise<InputError>("FMCV::fit: sample weight at position ", i,
                                  " must be finite and >= 0 (got ", w, ")");
      }
    }
  }
  const auto folds = static_cast<std::size_t>(params_.folds);
  if (std::min(positives, rows - positives) < folds) {
    detail::raise<InputError>("FMCV::fit: every label needs at least folds = ", folds,
                              " rows (got ", positives, " positive and ", rows - positives,
                              " negative rows)");
  }

  const FMCVParams& P = params_;
  const int threads = resolve_num_threads(P.num_threads);
  FMCVReport report;
  report.folds = P.folds;
  report.reg_linear_path = P.reg_linear_path;
  std::stable_sort(report.reg_linear_path.begin(), report.reg_linear_path.end(),
                   [](double a, double b) { return a > b; });
  const std::size_t path_length = report.reg_linear_path.size();
  const std::size_t candidates = P.factors > 0 ? P.reg_factors_grid.size() : 0;
  ProgressReporter progress(
      callbacks, "FMCV::fit",
      static_cast<Offset>(folds * path_length +
                          candidates * static_cast<std::size_t>(P.max_epochs) + 1));

  // ---- folds
  const std::vector<std::int32_t> fold = fold_of(target.labels, P.folds, P.seed, target.groups);
  {  // with groups, every fold must still hold both labels (so every fold's training part too)
    std::vector<std::size_t> pos(folds, 0), neg(folds, 0);
    for (std::size_t i = 0; i < rows; ++i) {
      ++(target.labels[i] != 0.0f ? pos : neg)[static_cast<std::size_t>(fold[i])];
    }
    for (std::size_t k = 0; k < folds; ++k) {
      if (pos[k] == 0 || neg[k] == 0) {
        detail::raise<InputError>("FMCV::fit: groups leave fold ", k, " without ",
                                  pos[k] == 0 ? "positive" : "negative",
                                  " rows (every fold needs both labels: give more groups or "
                                  "fewer folds)");
      }
    }
  }
  std::vector<detail::FMCVPart> train(folds), held(folds);
  double all_weight = 0.0;
  for (std::size_t i = 0; i < rows; ++i) {
    all_weight += target.sample_weights.empty() ? 1.0 : target.sample_weights[i];
  }
  parallel_for(0, static_cast<Offset>(folds), threads, [&](Offset k) {
    train[static_cast<std::size_t>(k)] =
        detail::fmcv_part(X, target, fold, static_cast<std::int32_t>(k), false);
    held[static_cast<std::size_t>(k)] =
        detail::fmcv_part(X, target, fold, static_cast<std::int32_t>(k), true);
  });
  double held_weight = 0.0;
  for (const auto& h : held) held_weight += h.total_weight;
  if (!(held_weight > 0)) {
    detail::raise<InputError>("FMCV::fit: the sample weights sum to 0 (nothing to validate on)");
  }
  // A fold trained on a share s of the weight uses reg / s: the same penalty per unit weight.
  auto fold_reg = [&](std::size_t k, double reg) {
    const double share = train[k].total_weight / all_weight;
    return share > 0 ? reg / share : reg;
  };

  // ---- regularization path
  std::vector<std::vector<double>> path_loss(folds, std::vector<double>(path_length, 0.0));
  parallel_for(0, static_cast<Offset>(folds), threads, [&](Offset ko) {
    const auto k = static_cast<std::size_t>(ko);
    detail::GlmProblem problem;
    problem.X = train[k].X.view();
    problem.labels = Span<const float>(train[k].labels.data(), train[k].labels.size());
    if (!train[k].weights.empty()) {
      problem.weights = Span<const float>(train[k].weights.data(), train[k].weights.size());
    }
    problem.logistic = true;
    problem.num_threads = 1;
    detail::GlmSolver solver(problem);
    detail::GlmOptions options;
    options.max_iterations = FM::kExactMaxIterations;
    // The path only ranks penalties by held-out log-loss (differences of 1e-4 and more): a
    // gradient 1e-6 of its start is already within ~1e-9 of the optimum's loss, and the
    // ill-conditioned weak penalties spend most of their Newton steps below it.
    options.gradient_tolerance = 1e-6;
    double bias = 0.0;
    std::vector<double> w(static_cast<std::size_t>(X.cols), 0.0);
    for (std::size_t p = 0; p < path_length; ++p) {
      solver.set_regularization(0.0, fold_reg(k, report.reg_linear_path[p]));
      solver.solve(bias, w, options, {});
      path_loss[k][p] = detail::fmcv_linear_loss(held[k], bias, w);
    }
  });
  progress.advance(static_cast<Offset>(folds * path_length));
  auto pooled = [&](auto&& loss_of_fold) {
    double total = 0.0;
    for (std::size_t k = 0; k < folds; ++k) total += loss_of_fold(k) * held[k].total_weight;
    return total / held_weight;
  };
  report.path_loss.resize(path_length);
  std::size_t best_path = 0;
  for (std::size_t p = 0; p < path_length; ++p) {
    report.path_loss[p] = pooled([&](std::size_t k) { return path_loss[k][p]; });
    if (!std::isfinite(report.path_loss[p])) {
      detail::raise<DivergenceError>("FMCV::fit: the logistic regression's CV loss at reg_linear ",
                                     report.reg_linear_path[p], " is not finite");
    }
    if (report.path_loss[p] < report.path_loss[best_path]) best_path = p;
  }
  report.reg_linear = report.reg_linear_path[best_path];
  report.linear_loss = report.path_loss[best_path];

  // ---- FM candidates, warm-started from each fold's logistic regression at the chosen penalty
  std::vector<FM> fold_linear(folds);
  if (candidates > 0) {
    parallel_for(0, static_cast<Offset>(folds), threads, [&](Offset ko) {
      const auto k = static_cast<std::size_t>(ko);
      FM lr(detail::fmcv_linear_params(fold_reg(k, report.reg_linear)));
      lr.fit(train[k].X.view(), train[k].target(), feature_fields, n_fields);
      fold_linear[k] = std::move(lr);
    });
  }
  report.reg_factors_grid = candidates > 0 ? P.reg_factors_grid : std::vector<double>{};
  report.factors_loss.assign(candidates, std::numeric_limits<double>::infinity());
  report.factors_epochs.assign(candidates, 0);
  auto fm_params = [&](double reg_linear, double reg_factors, std::uint64_t seed, int epochs) {
    FMParams p;
    p.field_aware = P.field_aware;
    p.factors = P.factors;
    p.loss = FMParams::Loss::logistic;
    p.optimizer = FMParams::Optimizer::adagrad;
    p.learning_rate = P.learning_rate;
    p.init_std = P.init_std;
    p.reg_bias = 0.0f;
    p.reg_linear = static_cast<float>(reg_linear);
    p.reg_factors = static_cast<float>(reg_factors);
    p.epochs = epochs;
    p.num_threads = 1;
    p.seed = seed;
    return p;
  };
  for (std::size_t c = 0; c < candidates; ++c) {
    std::vector<FM> models(folds);
    std::vector<char> diverged(folds, 0);
    for (std::size_t k = 0; k < folds; ++k) {
      models[k] = FM(fm_params(fold_reg(k, report.reg_linear), P.reg_factors_grid[c],
                               detail::fmcv_seed(P.seed, 0x464d4356ULL, k), 1));
    }
    double best = std::numeric_limits<double>::infinity();
    int best_epoch = 0, since_best = 0;
    for (int epoch = 1; epoch <= P.max_epochs; ++epoch) {
      parallel_for(0, static_cast<Offset>(folds), threads, [&](Offset ko) {
        const auto k = static_cast<std::size_t>(ko);
        if (diverged[k]) return;
        const CsrView<float> hv = held[k].X.view();
        const FMTarget ht = held[k].target();
        try {
          if (epoch == 1) {
            models[k].fit_from(fold_linear[k], train[k].X.view(), train[k].target(), feature_fields,
                               n_fields, &hv, &ht);
          } else {
            models[k].partial_fit(train[k].X.view(), train[k].target(), feature_fields, n_fields,
                                  &hv, &ht);
          }
        } catch (const DivergenceError&) {
          diverged[k] = 1;
        }
      });
      progress.advance(1);
      if (std::find(diverged.begin(), diverged.end(), 1) != diverged.end()) break;
      const double loss =
          pooled([&](std::size_t k) { return models[k].history().back().validation_loss; });
      if (!std::isfinite(loss)) break;
      if (loss < best) {
        best = loss;
        best_epoch = epoch;
        since_best = 0;
      } else if (++since_best >= P.patience) {
        break;
      }
    }
    report.factors_loss[c] = best;
    report.factors_epochs[c] = best_epoch;
  }

  // ---- choice
  std::size_t best_candidate = 0;
  for (std::size_t c = 1; c < candidates; ++c) {
    if (report.factors_loss[c] < report.factors_loss[best_candidate]) best_candidate = c;
  }
  report.factorized = candidates > 0 && std::isfinite(report.factors_loss[best_candidate]) &&
                      report.factors_loss[best_candidate] < report.linear_loss - P.min_improvement;
  report.loss = report.linear_loss;
  if (report.factorized) {
    report.reg_factors = P.reg_factors_grid[best_candidate];
    report.epochs = report.factors_epochs[best_candidate];
    report.seeds = P.seeds;
    report.loss = report.factors_loss[best_candidate];
  }

  // ---- refit on all rows
  FM linear(detail::fmcv_linear_params(report.reg_linear));
  linear.set_num_threads(P.num_threads);  // the exact solver is thread-count invariant
  linear.fit(X, target, feature_fields, n_fields);
  FM chosen;
  if (!report.factorized) {
    chosen = std::move(linear);
    chosen.set_num_threads(1);
  } else {
    const auto n_seeds = static_cast<std::size_t>(P.seeds);
    std::vector<FM> members(n_seeds);
    parallel_for(0, static_cast<Offset>(n_seeds), threads, [&](Offset s) {
      FM m(fm_params(report.reg_linear, report.reg_factors,
                     detail::fmcv_seed(P.seed, 0x53454544ULL, static_cast<std::uint64_t>(s)),
                     report.epochs));
      m.fit_from(linear, X, target, feature_fields, n_fields);
      members[static_cast<std::size_t>(s)] = std::move(m);
    });
    chosen = n_seeds == 1 ? std::move(members.front()) : FM::average(members);
  }
  progress.advance(1);
  Json meta = Json::object();
  meta["selection"] = Json::object();
  meta["selection"]["params"] = P.to_json();
  meta["selection"]["report"] = report.to_json();
  chosen.set_metadata(meta.dump());
  model_ = std::move(chosen);
  report_ = std::move(report);
  fitted_ = true;
}

}  // namespace perkrec
