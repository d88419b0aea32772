// Definitions for fm.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <utility>
#include <vector>

#include "perkrec/core/random.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/detail/fm_kernels.hpp"
#include "perkrec/detail/glm_solver.hpp"
#include "perkrec/models/fm.hpp"

namespace perkrec {

namespace detail {

inline const char* fm_loss_name(FMParams::Loss l) {
  switch (l) {
    case FMParams::Loss::logistic:
      return "logistic";
    case FMParams::Loss::squared:
      return "squared";
    case FMParams::Loss::bpr:
      return "bpr";
  }
  return "logistic";
}

// softplus(s) - y s: the logistic loss of raw score s, stable for large |s|.
inline double fm_logistic_loss(double s, double y) {
  return std::max(s, 0.0) + std::log1p(std::exp(-std::fabs(s))) - y * s;
}

inline float fm_sigmoid(float s) {
  return s >= 0 ? 1.0f / (1.0f + std::exp(-s)) : std::exp(s) / (1.0f + std::exp(s));
}

// The visiting order of one epoch. `rows`: a uniform random permutation (every row a cache and
// TLB miss on large data). Otherwise blocks of kFMShuffleBlock consecutive rows in random order,
// rows shuffled within each block by their own stream (seed, block, epoch): nearly the same
// mixing for SGD, with memory touched block by block.
constexpr Offset kFMShuffleBlock = 256;

inline void fm_shuffle(std::vector<Offset>& order, Offset rows, bool full, std::uint64_t seed,
                       std::uint64_t epoch, int threads = 1) {
  auto permute = [](Offset* first, Offset n, Rng& rng) {
    for (Offset i = n - 1; i > 0; --i) {
      const auto j = static_cast<Offset>(rng.next_u64() % static_cast<std::uint64_t>(i + 1));
      std::swap(first[i], first[j]);
    }
  };
  if (full) {
    std::iota(order.begin(), order.end(), Offset{0});
    Rng rng(seed, 0x5348554646ULL, epoch);
    permute(order.data(), rows, rng);
    return;
  }
  const Offset blocks = (rows + kFMShuffleBlock - 1) / kFMShuffleBlock;
  std::vector<Offset> block_order(static_cast<std::size_t>(blocks));
  std::iota(block_order.begin(), block_order.end(), Offset{0});
  Rng rng(seed, 0x424c4f434bULL, epoch);
  permute(block_order.data(), blocks, rng);
  // Every block but the last holds kFMShuffleBlock rows, so where a block lands follows from
  // its rank and whether the short last block comes before it; with that, the blocks are
  // shuffled in parallel (each by its own stream: the order does not depend on `threads`).
  // Serial, this pass took a few percent of a two-thread epoch.
  const Offset short_by = blocks * kFMShuffleBlock - rows;
  std::vector<Offset> position(static_cast<std::size_t>(blocks));
  Offset pos = 0;
  for (Offset j = 0; j < blocks; ++j) {
    position[static_cast<std::size_t>(j)] = pos;
    pos += block_order[static_cast<std::size_t>(j)] == blocks - 1 ? kFMShuffleBlock - short_by
                                                                  : kFMShuffleBlock;
  }
  parallel_for(0, blocks, threads, [&](Offset j) {
    const Offset b = block_order[static_cast<std::size_t>(j)];
    const Offset begin = b * kFMShuffleBlock;
    const Offset n = std::min(rows, begin + kFMShuffleBlock) - begin;
    Offset* out = order.data() + position[static_cast<std::size_t>(j)];
    for (Offset i = 0; i < n; ++i) out[i] = begin + i;
    Rng inner(seed ^ 0x9E3779B97F4A7C15ULL, static_cast<std::uint64_t>(b), epoch);
    permute(out, n, inner);
  });
}

template <class F>
void fm_dispatch(int k, F&& f) {
  switch (k) {
    case 4:
      f(std::integral_constant<int, 4>());
      return;
    case 8:
      f(std::integral_constant<int, 8>());
      return;
    case 16:
      f(std::integral_constant<int, 16>());
      return;
    case 32:
      f(std::integral_constant<int, 32>());
      return;
    case 64:
      f(std::integral_constant<int, 64>());
      return;
    default:
      f(std::integral_constant<int, 0>());
      return;
  }
}

}  // namespace detail

// ---- params -----------------------------------------------------------------------------------

PERKREC_INLINE void FMParams::validate() const {
  params::validate_fields(*this, "FMParams");
  if (early_stopping_rounds > 0 && exact()) {
    detail::raise<ConfigError>(
        "FMParams: early_stopping_rounds must be 0 with factors = 0 and the ",
        detail::fm_loss_name(loss), " loss (got ", early_stopping_rounds,
        "; the exact solver runs to the optimum, it has no epochs to stop)");
  }
}
PERKREC_INLINE Json FMParams::to_json() const { return params::fields_to_json(*this); }
PERKREC_INLINE FMParams FMParams::from_json(const Json& j) {
  return params::fields_from_json<FMParams>(j, "FMParams::from_json");
}

// ---- model ------------------------------------------------------------------------------------

PERKREC_INLINE FM::FM(FMParams params) : params_(params) { params_.validate(); }

PERKREC_INLINE std::size_t FM::factor_stride() const {
  const std::size_t k = static_cast<std::size_t>(params_.factors);
  return params_.field_aware ? k * static_cast<std::size_t>(std::max(n_fields_, 1)) : k;
}

PERKREC_INLINE void FM::require_fitted(const char* method) const {
  if (!fitted_) detail::raise<InputError>("FM::", method, ": the model is not fitted");
}

PERKREC_INLINE void FM::check_rows(const CsrView<float>& X, const char* method) const {
  const std::string what = std::string("FM::") + method + ": X";
  X.validate(what.c_str());
  if (X.cols != n_features_) {
    detail::raise<InputError>("FM::", method, ": X has ", X.cols, " feature columns (expected ",
                              n_features_, ")");
  }
}

PERKREC_INLINE void FM::check_target(const CsrView<float>& X, const FMTarget& t, const char* method,
                                     const char* what) const {
  const auto rows = static_cast<std::size_t>(X.rows);
  if (t.labels.size() != rows) {
    detail::raise<InputError>("FM::", method, ": ", what, " labels has ", t.labels.size(),
                              " entries (expected one per row: ", rows, ")");
  }
  for (std::size_t i = 0; i < rows; ++i) {
    const float y = t.labels[i];
    if (!std::isfinite(y)) {
      detail::raise<InputError>("FM::", method, ": ", what, " label at position ", i,
                                " is not finite (got ", y, ")");
    }
    if (params_.loss == FMParams::Loss::logistic && y != 0.0f && y != 1.0f) {
      detail::raise<InputError>("FM::", method, ": ", what, " label at position ", i,
                                " must be 0 or 1 for the logistic loss (got ", y, ")");
    }
  }
  if (!t.sample_weights.empty()) {
    if (t.sample_weights.size() != rows) {
      detail::raise<InputError>("FM::", method, ": ", what, " sample_weights has ",
                                t.sample_weights.size(), " entries (expected ", rows, ")");
    }
    for (std::size_t i = 0; i < rows; ++i) {
      if (!(t.sample_weights[i] >= 0) || !std::isfinite(t.sample_weights[i])) {
        detail::raise<InputError>("FM::", method, ": ", what, " sample weight at position ", i,
                                  " must be finite and >= 0 (got ", t.sample_weights[i], ")");
      }
    }
  }
  if (params_.loss == FMParams::Loss::bpr) {
    if (t.groups.size() != rows) {
      detail::raise<InputError>("FM::", method, ": ", what, " groups has ", t.groups.size(),
                                " entries (expected one per row for the bpr loss: ", rows, ")");
    }
    for (std::size_t i = 0; i < rows; ++i) {
      if (t.groups[i] < 0) {
        detail::raise<InputError>("FM::", method, ": ", what, " group at position ", i,
                                  " is negative (got ", t.groups[i], ")");
      }
    }
  }
}

PERKREC_INLINE void FM::initialize(Index n_features, Span<const std::int32_t> feature_fields,
                                   std::int32_t n_fields) {
  n_features_ = n_features;
  n_fields_ = n_fields;
  feature_fields_.assign(feature_fields.begin(), feature_fields.end());
  const std::size_t nv = static_cast<std::size_t>(n_features) * factor_stride();
  w0_ = 0.0f;
  w_.assign(static_cast<std::size_t>(n_features), 0.0f);
  v_.resize(nv);
  // Factors are drawn per feature from their own stream, so the start does not depend on the
  // thread count.
  parallel_for(0, n_features, params_.num_threads, [&](Offset i) {
    Rng rng(params_.seed, 0x464d0000ULL, static_cast<std::uint64_t>(i));
    const std::size_t s = factor_stride();
    for (std::size_t f = 0; f < s; ++f) {
      v_[static_cast<std::size_t>(i) * s + f] = static_cast<float>(rng.normal() * params_.init_std);
    }
  });
  if (params_.optimizer == FMParams::Optimizer::adagrad) {
    g0_ = 1.0f;  // AdaGrad sums start at 1: the first steps equal plain SGD steps
    gw_.assign(w_.size(), 1.0f);
    gv_.assign(nv, 1.0f);
  } else {
    g0_ = 0.0f;
    gw_.clear();
    gv_.clear();
  }
  epochs_done_ = 0;
  history_.clear();
}

PERKREC_INLINE void FM::fit(const CsrView<float>& X, const FMTarget& target,
                            Span<const std::int32_t> feature_fields, std::int32_t n_fields,
                            const CsrView<float>* validation_X, const FMTarget* validation_target,
                            const Callbacks& callbacks) {
  fit_impl(nullptr, X, target, feature_fields, n_fields, validation_X, validation_target, callbacks,
           "fit");
}

PERKREC_INLINE void FM::fit_from(const FM& start, const CsrView<float>& X, const FMTarget& target,
                                 Span<const std::int32_t> feature_fields, std::int32_t n_fields,
                                 const CsrView<float>* validation_X,
                                 const FMTarget* validation_target, const Callbacks& callbacks) {
  if (!start.fitted_) detail::raise<InputError>("FM::fit_from: the start model is not fitted");
  if (start.n_features_ != X.cols) {
    detail::raise<InputError>("FM::fit_from: the start model has ", start.n_features_,
                              " features (expected X's ", X.cols, ")");
  }
  fit_impl(&start, X, target, feature_fields, n_fields, validation_X, validation_target, callbacks,
           "fit_from");
}

PERKREC_INLINE void FM::fit_impl(const FM* start, const CsrView<float>& X, const FMTarget& target,
                                 Span<const std::int32_t> feature_fields, std::int32_t n_fields,
                                 const CsrView<float>* validation_X,
                                 const FMTarget* validation_target, const Callbacks& callbacks,
                                 const char* method) {
  // Validate against the new feature space before touching anything.
  if (n_fields < 1)
    detail::raise<InputError>("FM::", method, ": n_fields must be >= 1 (got ", n_fields, ")");
  const std::string x_name = std::string("FM::") + method + ": X";
  X.validate(x_name.c_str());
  if (X.rows == 0) {
    detail::raise<InputError>("FM::", method, ": X has no rows (nothing to learn from)");
  }
  if (feature_fields.size() != static_cast<std::size_t>(X.cols)) {
    detail::raise<InputError>("FM::", method, ": feature_fields has ", feature_fields.size(),
                              " entries (expected one per feature column: ", X.cols, ")");
  }
  for (std::size_t i = 0; i < feature_fields.size(); ++i) {
    if (feature_fields[i] < 0 || feature_fields[i] >= n_fields) {
      detail::raise<InputError>("FM::", method, ": field of feature ", i, " out of range (got ",
                                feature_fields[i], ", expected 0 <= field < ", n_fields, ")");
    }
  }
  FM trial(params_);
  trial.n_features_ = X.cols;
  trial.n_fields_ = n_fields;
  trial.check_target(X, target, method, "");
  if (validation_X != nullptr) {
    trial.check_rows(*validation_X, method);
    if (validation_target == nullptr) {
      detail::raise<InputError>("FM::", method,
                                ": validation rows given without validation labels");
    }
    trial.check_target(*validation_X, *validation_target, method, "validation");
  }
  if (params_.early_stopping_rounds > 0 && validation_X == nullptr) {
    detail::raise<InputError>("FM::", method, ": early_stopping_rounds > 0 needs validation rows");
  }
  trial.initialize(X.cols, feature_fields, n_fields);
  if (start != nullptr) {
    trial.w0_ = start->w0_;
    trial.w_ = start->w_;
  }
  trial.metadata_ = metadata_;
  trial.fitted_ = true;
  // Train a fresh model and adopt it even when training diverges (the last finite state).
  try {
    trial.train(X, target, validation_X, validation_target, callbacks, method);
  } catch (const DivergenceError&) {
    *this = std::move(trial);
    throw;
  }
  *this = std::move(trial);
}

PERKREC_INLINE FM FM::average(const std::vector<FM>& models) {
  if (models.empty()) detail::raise<InputError>("FM::average: no models to average");
  const FM& first = models.front();
  for (std::size_t m = 0; m < models.size(); ++m) {
    const FM& f = models[m];
    if (!f.fitted_) detail::raise<InputError>("FM::average: model ", m, " is not fitted");
    if (f.n_features_ != first.n_features_ || f.n_fields_ != first.n_fields_ ||
        f.params_.field_aware != first.params_.field_aware ||
        f.params_.factors != first.params_.factors || f.params_.loss != first.params_.loss) {
      detail::raise<InputError>("FM::average: model ", m, " differs from model 0 (got ",
                                f.n_features_, " features, ", f.n_fields_, " fields, ",
                                f.params_.factors, " factors, field_aware ", f.params_.field_aware,
                                "; expected ", first.n_features_, ", ", first.n_fields_, ", ",
                                first.params_.factors, ", ", first.params_.field_aware, ")");
    }
  }
  const std::size_t count = models.size();
  const int k = first.params_.factors;
  if (static_cast<long long>(k) * static_cast<long long>(count) > 1024) {
    detail::raise<InputError>("FM::average: ", count, " models x ", k,
                              " factors exceed 1024 factors");
  }
  FMParams params = first.params_;
  params.factors = k * static_cast<int>(count);
  FM out(params);
  out.n_features_ = first.n_features_;
  out.n_fields_ = first.n_fields_;
  out.feature_fields_ = first.feature_fields_;
  out.metadata_ = first.metadata_;
  double bias = 0.0;
  std::vector<double> linear(first.w_.size(), 0.0);
  for (const FM& f : models) {
    bias += f.w0_;
    for (std::size_t j = 0; j < linear.size(); ++j) linear[j] += f.w_[j];
  }
  out.w0_ = static_cast<float>(bias / static_cast<double>(count));
  out.w_.resize(linear.size());
  for (std::size_t j = 0; j < linear.size(); ++j) {
    out.w_[j] = static_cast<float>(linear[j] / static_cast<double>(count));
  }
  // Factor layout: per feature, per field block (FFM; one block for FM), k floats per model.
  const std::size_t blocks =
      params.field_aware ? static_cast<std::size_t>(std::max(first.n_fields_, 1)) : std::size_t{1};
  const std::size_t kk = static_cast<std::size_t>(k);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(count)));
  const std::size_t stride_in = blocks * kk, stride_out = stride_in * count;
  out.v_.assign(static_cast<std::size_t>(first.n_features_) * stride_out, 0.0f);
  for (std::size_t i = 0; i < static_cast<std::size_t>(first.n_features_); ++i) {
    for (std::size_t b = 0; b < blocks; ++b) {
      for (std::size_t m = 0; m < count; ++m) {
        const float* src = models[m].v_.data() + i * stride_in + b * kk;
        float* dst = out.v_.data() + i * stride_out + b * kk * count + m * kk;
        for (std::size_t f = 0; f < kk; ++f) dst[f] = src[f] * scale;
      }
    }
  }
  if (params.optimizer == FMParams::Optimizer::adagrad) {
    out.g0_ = 1.0f;
    out.gw_.assign(out.w_.size(), 1.0f);
    out.gv_.assign(out.v_.size(), 1.0f);
  }
  out.fitted_ = true;
  return out;
}

PERKREC_INLINE void FM::partial_fit(const CsrView<float>& X, const FMTarget& target,
                                    Span<const std::int32_t> feature_fields, std::int32_t n_fields,
                                    const CsrView<float>* validation_X,
                                    const FMTarget* validation_target, const Callbacks& callbacks) {
  if (!fitted_) {
    fit(X, target, feature_fields, n_fields, validation_X, validation_target, callbacks);
    return;
  }
  check_rows(X, "partial_fit");
  if (n_fields != n_fields_ || !std::equal(feature_fields.begin(), feature_fields.end(),
                                           feature_fields_.begin(), feature_fields_.end())) {
    detail::raise<InputError>(
        "FM::partial_fit: the feature space differs from the fitted one (got ",
        feature_fields.size(), " features in ", n_fields, " fields, expected ", n_features_, " in ",
        n_fields_, ")");
  }
  check_target(X, target, "partial_fit", "");
  if (validation_X != nullptr) {
    check_rows(*validation_X, "partial_fit");
    if (validation_target == nullptr) {
      detail::raise<InputError>("FM::partial_fit: validation rows given without validation labels");
    }
    check_target(*validation_X, *validation_target, "partial_fit", "validation");
  }
  if (params_.early_stopping_rounds > 0 && validation_X == nullptr) {
    detail::raise<InputError>("FM::partial_fit: early_stopping_rounds > 0 needs validation rows");
  }
  train(X, target, validation_X, validation_target, callbacks, "partial_fit");
}

namespace detail {
// Per-thread training state on its own cache line (see FM::train).
struct alignas(64) FMThreadSlot {
  float w0 = 0.0f, g0 = 0.0f;  // private bias and its AdaGrad sum during a block
  double loss = 0.0, weight = 0.0;
};

struct FMState {
  float w0, g0;
  std::vector<float> w, v, gw, gv;
};
}  // namespace detail

PERKREC_INLINE void FM::train_exact(const CsrView<float>& X, const FMTarget& target,
                                    const CsrView<float>* validation_X,
                                    const FMTarget* validation_target, const Callbacks& callbacks,
                                    const char* method) {
  detail::GlmProblem problem;
  problem.X = X;
  problem.labels = target.labels;
  problem.weights = target.sample_weights;
  problem.logistic = params_.loss == FMParams::Loss::logistic;
  problem.reg_bias = params_.reg_bias;
  problem.reg_linear = params_.reg_linear;
  problem.num_threads = params_.num_threads;
  detail::GlmOptions options;
  options.max_iterations = kExactMaxIterations;
  detail::GlmSolver solver(problem);
  // Warm start from the current parameters (zeros after fit's initialize; the fitted model for
  // partial_fit).
  double bias = w0_;
  std::vector<double> w(w_.begin(), w_.end());
  ProgressReporter progress(callbacks, std::string("FM::") + method, kExactMaxIterations);
  auto adopt = [&](double b, const std::vector<double>& x) {
    w0_ = static_cast<float>(b);
    for (std::size_t j = 0; j < w_.size(); ++j) w_[j] = static_cast<float>(x[j]);
  };
  bool finite = true;
  solver.solve(bias, w, options, [&](const detail::GlmIteration& it) {
    FMEpoch record;
    record.epoch = epochs_done_;
    record.train_loss = it.mean_loss;
    finite = std::isfinite(it.objective) && std::isfinite(bias);
    for (std::size_t j = 0; finite && j < w.size(); ++j) finite = std::isfinite(w[j]);
    if (!finite) {
      detail::raise<DivergenceError>("FM::", method, ": the exact solver diverged in iteration ",
                                     it.iteration, " (non-finite objective or parameters; got ",
                                     it.objective, "); the model holds the last finite parameters");
    }
    if (validation_X != nullptr) {
      adopt(bias, w);
      record.validation_loss = loss(*validation_X, *validation_target);
    }
    history_.push_back(record);
    ++epochs_done_;
    progress.advance(1);
  });
  adopt(bias, w);
}

PERKREC_INLINE detail::FMPartners detail::fm_bpr_partners(const FMTarget& target, Offset rows) {
  FMPartners out;
  out.group_rows.resize(static_cast<std::size_t>(rows));
  std::iota(out.group_rows.begin(), out.group_rows.end(), Offset{0});
  std::stable_sort(out.group_rows.begin(), out.group_rows.end(), [&](Offset a, Offset b) {
    if (target.groups[a] != target.groups[b]) return target.groups[a] < target.groups[b];
    return target.labels[a] < target.labels[b];
  });
  out.lower_begin.assign(static_cast<std::size_t>(rows), 0);
  out.lower_count.assign(static_cast<std::size_t>(rows), 0);
  Offset start = 0;
  for (Offset p = 0; p < rows; ++p) {
    const Offset r = out.group_rows[p];
    if (p > 0 && target.groups[out.group_rows[p - 1]] != target.groups[r]) start = p;
    // Rows before p in the group with a strictly lower label form a prefix.
    Offset q = p;
    while (q > start && target.labels[out.group_rows[q - 1]] >= target.labels[r]) --q;
    out.lower_begin[r] = start;
    out.lower_count[r] = q - start;
  }
  return out;
}

PERKREC_INLINE detail::FMEarlyStopping::Step detail::FMEarlyStopping::observe(
    double validation_loss) {
  if (validation_loss < best_loss) {
    best_loss = validation_loss;
    since_best = 0;
    return Step::new_best;
  }
  if (rounds > 0 && ++since_best >= rounds) return Step::stop;
  return Step::go_on;
}

PERKREC_INLINE double FM::sgd_epoch(const CsrView<float>& X, const FMTarget& target,
                                    const detail::FMPartners& partners, std::vector<Offset>& order,
                                    int threads) {
  const int K = params_.factors;
  // Per-thread scratch (the factor sums written by every forward pass): slots are separated by
  // at least one unused cache line, so threads never write the same line (false sharing).
  const std::size_t scratch_stride = (static_cast<std::size_t>(K) * 2 + 15) / 16 * 16 + 16;
  std::vector<float> scratch(scratch_stride * static_cast<std::size_t>(threads));
  // Per-thread bias, its AdaGrad sum, loss and weight, one cache line each. With several threads
  // every sample would otherwise write the shared global bias, and the threads would trade that
  // cache line on each sample; instead each thread updates its own copy of the bias during a
  // block and adds its change to the global bias when the block ends.
  std::vector<detail::FMThreadSlot> slots(static_cast<std::size_t>(threads));
  const bool bpr = params_.loss == FMParams::Loss::bpr;
  const Offset rows = X.rows;
  detail::fm_shuffle(order, rows, params_.shuffle == FMParams::Shuffle::rows, params_.seed,
                     static_cast<std::uint64_t>(epochs_done_), threads);
  constexpr Offset kBlock = 2048;
  constexpr int kBiasSync = 16;  // rows between a thread's bias merges (several threads)
  const Offset blocks = (rows + kBlock - 1) / kBlock;
  const std::uint64_t epoch_id = static_cast<std::uint64_t>(epochs_done_);
  // Several threads with AdaGrad train on line-aligned per-feature records (see FMRecords):
  // an update there touches four arrays per feature. One thread trains on the model's arrays,
  // where it needs no copy; SGD's two arrays too (measured: its padded copy scaled worse on
  // two threads, BENCHMARKS.md). FFM factor rows span n_fields x K floats, lines of their own.
  const bool interleave = threads > 1 && !params_.field_aware && !gw_.empty();
  detail::FMRecords records;
  if (interleave) records.gather(w_, v_, gw_, gv_, static_cast<std::size_t>(K));
  detail::fm_dispatch(K, [&](auto kc) {
    constexpr int KC = decltype(kc)::value;
    detail::FMKernel<KC> kern{&w0_,
                              w_.data(),
                              v_.data(),
                              gw_.empty() ? nullptr : &g0_,
                              gw_.empty() ? nullptr : gw_.data(),
                              gv_.empty() ? nullptr : gv_.data(),
                              feature_fields_.data(),
                              K,
                              factor_stride(),
                              params_.field_aware,
                              params_.learning_rate,
                              params_.reg_bias,
                              params_.reg_linear,
                              params_.reg_factors};
    if (interleave) records.attach(kern);
    const bool ada = kern.g0 != nullptr;
    parallel_for(0, blocks, threads, [&](Offset block, int t) {
      float* sum_a = scratch.data() + scratch_stride * static_cast<std::size_t>(t);
      detail::FMThreadSlot& slot = slots[static_cast<std::size_t>(t)];
      // One thread updates the model's bias in place (bit-reproducible). Several threads each
      // work on a private copy of the bias and fold its change into the model every
      // kBiasSync rows: rarely enough that the threads do not trade the bias's cache line on
      // every sample, often enough that the summed changes stay ordinary SGD steps. (Merging
      // once per block let each thread's copy relax all the way toward the optimum, and the
      // summed changes overshot it: the two-thread bias ended up to 0.5 logit off.)
      detail::FMKernel<KC> local = kern;
      float bias_start = 0.0f, bias_ada_start = 0.0f;
      auto pull_bias = [&] {
#if defined(_OPENMP)
#pragma omp atomic read
#endif
        bias_start = w0_;
        slot.w0 = bias_start;
        if (ada) {
#if defined(_OPENMP)
#pragma omp atomic read
#endif
          bias_ada_start = g0_;
          slot.g0 = bias_ada_start;
        }
      };
      auto push_bias = [&] {
        const float bias_delta = slot.w0 - bias_start;
#if defined(_OPENMP)
#pragma omp atomic update
#endif
        w0_ += bias_delta;
        if (ada) {
          const float ada_delta = slot.g0 - bias_ada_start;
#if defined(_OPENMP)
#pragma omp atomic update
#endif
          g0_ += ada_delta;
        }
      };
      if (threads > 1) {
        pull_bias();
        local.w0 = &slot.w0;
        if (ada) local.g0 = &slot.g0;
      }
      int until_sync = kBiasSync;
      float* sum_b = sum_a + K;
      double local_loss = 0.0, local_weight = 0.0;
      Rng partner(params_.seed, 0x425052ULL + epoch_id, static_cast<std::uint64_t>(block));
      const Offset end = std::min(rows, (block + 1) * kBlock);
      for (Offset p = block * kBlock; p < end; ++p) {
        if (threads > 1 && --until_sync == 0) {
          push_bias();
          pull_bias();
          until_sync = kBiasSync;
        }
        const Offset r = order[p];
#if defined(__GNUC__)
        // Rows come in shuffled order, so each is a cache miss: fetch the row offsets 16 rows
        // ahead and every cache line of the entries 8 rows ahead.
        if (p + 16 < end) __builtin_prefetch(X.indptr + order[p + 16]);
        if (p + 8 < end) {
          const Offset ahead = order[p + 8];
          const Offset b = X.indptr[ahead], e = X.indptr[ahead + 1];
          for (Offset q = b; q < e; q += 16) {
            __builtin_prefetch(X.indices + q);
            if (X.data) __builtin_prefetch(X.data + q);
          }
          __builtin_prefetch(X.indices + e - 1);
          if (X.data) __builtin_prefetch(X.data + e - 1);
        }
#endif
        const float weight = target.sample_weights.empty() ? 1.0f : target.sample_weights[r];
        if (weight == 0.0f) continue;
        const Index* idx = X.indices + X.indptr[r];
        const float* val = X.data ? X.data + X.indptr[r] : nullptr;
        const Offset n = X.indptr[r + 1] - X.indptr[r];
        if (!bpr) {
          const float s = local.forward(idx, val, n, sum_a);
          const float y = target.labels[r];
          float g;
          if (params_.loss == FMParams::Loss::logistic) {
            g = detail::fm_sigmoid(s) - y;
            local_loss += weight * detail::fm_logistic_loss(s, y);
          } else {
            g = s - y;
            local_loss += 0.5 * weight * static_cast<double>(g) * g;
          }
          local_weight += weight;
          local.backward(idx, val, n, sum_a, g * weight);
        } else {
          const Offset count = partners.lower_count[r];
          if (count == 0) continue;
          const Offset q =
              partners.group_rows[partners.lower_begin[r] +
                                  static_cast<Offset>(partner.next_u64() %
                                                      static_cast<std::uint64_t>(count))];
          const Index* idx_q = X.indices + X.indptr[q];
          const float* val_q = X.data ? X.data + X.indptr[q] : nullptr;
          const Offset n_q = X.indptr[q + 1] - X.indptr[q];
          const float s_pos = local.forward(idx, val, n, sum_a);
          const float s_neg = local.forward(idx_q, val_q, n_q, sum_b);
          const float d = s_pos - s_neg;
          local_loss += weight * detail::fm_logistic_loss(d, 1.0);
          local_weight += weight;
          const float g = (detail::fm_sigmoid(d) - 1.0f) * weight;
          local.backward(idx, val, n, sum_a, g);
          local.backward(idx_q, val_q, n_q, sum_b, -g);
        }
      }
      slot.loss += local_loss;
      slot.weight += local_weight;
      if (threads > 1) push_bias();
    });
  });
  if (interleave) records.scatter(w_, v_, gw_, gv_);
  double total_loss = 0.0, total_weight = 0.0;
  for (const auto& slot : slots) {
    total_loss += slot.loss;
    total_weight += slot.weight;
  }
  return total_weight > 0 ? total_loss / total_weight : 0.0;
}

PERKREC_INLINE bool FM::evaluate_epoch(FMEpoch& record, const CsrView<float>* validation_X,
                                       const FMTarget* validation_target) const {
  bool finite = std::isfinite(record.train_loss) && std::isfinite(w0_);
  for (std::size_t i = 0; finite && i < w_.size(); ++i) finite = std::isfinite(w_[i]);
  for (std::size_t i = 0; finite && i < v_.size(); ++i) finite = std::isfinite(v_[i]);
  if (finite && validation_X != nullptr) {
    record.validation_loss = loss(*validation_X, *validation_target);
    finite = std::isfinite(record.validation_loss);
  }
  return finite;
}

// Stages: BPR partners (detail::fm_bpr_partners), then per epoch one shuffled SGD pass
// (sgd_epoch), its check and validation loss (evaluate_epoch) and the early-stopping
// bookkeeping (detail::FMEarlyStopping).
PERKREC_INLINE void FM::train(const CsrView<float>& X, const FMTarget& target,
                              const CsrView<float>* validation_X, const FMTarget* validation_target,
                              const Callbacks& callbacks, const char* method) {
  if (params_.exact()) {
    train_exact(X, target, validation_X, validation_target, callbacks, method);
    return;
  }
  const int threads = resolve_num_threads(params_.num_threads);
  const detail::FMPartners partners = params_.loss == FMParams::Loss::bpr
                                          ? detail::fm_bpr_partners(target, X.rows)
                                          : detail::FMPartners{};
  std::vector<Offset> order(static_cast<std::size_t>(X.rows));
  ProgressReporter progress(callbacks, std::string("FM::") + method, params_.epochs);
  detail::FMState best;
  const bool validating = validation_X != nullptr;
  const bool early = validating && params_.early_stopping_rounds > 0;
  detail::FMEarlyStopping stopping;
  stopping.rounds = early ? params_.early_stopping_rounds : 0;

  auto snapshot = [&](detail::FMState& s) {
    s.w0 = w0_;
    s.g0 = g0_;
    s.w = w_;
    s.v = v_;
    s.gw = gw_;
    s.gv = gv_;
  };
  auto restore = [&](detail::FMState& s) {
    w0_ = s.w0;
    g0_ = s.g0;
    w_ = s.w;
    v_ = s.v;
    gw_ = s.gw;
    gv_ = s.gv;
  };

  for (int epoch = 0; epoch < params_.epochs; ++epoch) {
    detail::FMState start;
    snapshot(start);
    FMEpoch record;
    record.epoch = epochs_done_;
    record.train_loss = sgd_epoch(X, target, partners, order, threads);
    if (!evaluate_epoch(record, validation_X, validation_target)) {
      restore(start);
      detail::raise<DivergenceError>("FM::", method, ": training diverged in epoch ", epochs_done_,
                                     " (non-finite loss or parameters; got training loss ",
                                     record.train_loss, " with learning_rate ",
                                     params_.learning_rate,
                                     "); the model holds the parameters from before that epoch");
    }
    history_.push_back(record);
    ++epochs_done_;
    progress.advance(1);
    if (validating) {
      const detail::FMEarlyStopping::Step step = stopping.observe(record.validation_loss);
      if (step == detail::FMEarlyStopping::Step::new_best && early) snapshot(best);
      if (step == detail::FMEarlyStopping::Step::stop) break;
    }
  }
  if (early && std::isfinite(stopping.best_loss)) restore(best);
}

PERKREC_INLINE float FM::score_row(const Index* idx, const float* val, Offset n,
                                   float* scratch) const {
  float result = 0.0f;
  detail::fm_dispatch(params_.factors, [&](auto kc) {
    constexpr int KC = decltype(kc)::value;
    // The kernel only reads through forward(); the const_cast never writes.
    detail::FMKernel<KC> kern{const_cast<float*>(&w0_),
                              const_cast<float*>(w_.data()),
                              const_cast<float*>(v_.data()),
                              nullptr,
                              nullptr,
                              nullptr,
                              feature_fields_.data(),
                              params_.factors,
                              factor_stride(),
                              params_.field_aware,
                              0.0f,
                              0.0f,
                              0.0f,
                              0.0f};
    result = kern.forward(idx, val, n, scratch);
  });
  return result;
}

namespace detail {
// Finite features can still overflow a score (values of 1e30): say so instead of returning NaN.
inline void check_scores_finite(Span<const float> scores, const char* method) {
  for (std::size_t i = 0; i < scores.size(); ++i) {
    if (!std::isfinite(scores[i])) {
      raise<InputError>(method, ": the score of row ", i, " is not finite (got ", scores[i],
                        "): feature values too large for the model; scale them");
    }
  }
}
}  // namespace detail

PERKREC_INLINE void FM::score(const CsrView<float>& X, Span<float> out) const {
  require_fitted("score");
  check_rows(X, "score");
  if (out.size() != static_cast<std::size_t>(X.rows)) {
    detail::raise<InputError>("FM::score: out has ", out.size(), " entries (expected ", X.rows,
                              ")");
  }
  score_rows(X, out);
  detail::check_scores_finite(Span<const float>(out.data(), out.size()), "FM::score");
}

PERKREC_INLINE void FM::score_rows(const CsrView<float>& X, Span<float> out) const {
  constexpr Offset kBlock = 1024;
  parallel_for(0, (X.rows + kBlock - 1) / kBlock, params_.num_threads, [&](Offset block) {
    std::vector<float> scratch(static_cast<std::size_t>(params_.factors));
    const Offset end = std::min<Offset>(X.rows, (block + 1) * kBlock);
    for (Offset r = block * kBlock; r < end; ++r) {
      out[static_cast<std::size_t>(r)] =
          score_row(X.indices + X.indptr[r], X.data ? X.data + X.indptr[r] : nullptr,
                    X.indptr[r + 1] - X.indptr[r], scratch.data());
    }
  });
}

PERKREC_INLINE void FM::predict(const CsrView<float>& X, Span<float> out) const {
  score(X, out);
  if (params_.loss == FMParams::Loss::logistic) {
    for (float& s : out) s = detail::fm_sigmoid(s);
  }
}

PERKREC_INLINE void FM::score_candidates(const CsrView<float>& base,
                                         const CsrView<float>& candidates, Span<float> out) const {
  require_fitted("score_candidates");
  check_rows(base, "score_candidates");
  check_rows(candidates, "score_candidates");
  const std::size_t nb = static_cast<std::size_t>(base.rows);
  const std::size_t nc = static_cast<std::size_t>(candidates.rows);
  if (out.size() != nb * nc) {
    detail::raise<InputError>("FM::score_candidates: out has ", out.size(),
                              " entries (expected base rows x candidates = ", nb * nc, ")");
  }
  const std::size_t K = static_cast<std::size_t>(params_.factors);
  const std::size_t stride = factor_stride();
  // Per candidate: its own score without the global bias (linear terms and internal pairs).
  std::vector<float> cand_self(nc);
  std::vector<float> cand_sum(params_.field_aware ? 0 : nc * K);
  parallel_for(0, static_cast<Offset>(nc), params_.num_threads, [&](Offset c) {
    std::vector<float> scratch(K);
    const Offset b = candidates.indptr[c];
    const float self =
        score_row(candidates.indices + b, candidates.data ? candidates.data + b : nullptr,
                  candidates.indptr[c + 1] - b, scratch.data());
    cand_self[static_cast<std::size_t>(c)] = self - w0_;
    if (!params_.field_aware) {
      std::copy(scratch.begin(), scratch.end(),
                cand_sum.begin() + static_cast<std::ptrdiff_t>(c * K));
    }
  });
  parallel_for(0, static_cast<Offset>(nb), params_.num_threads, [&](Offset r) {
    const Offset b0 = base.indptr[r];
    const Offset bn = base.indptr[r + 1] - b0;
    const Index* bidx = base.indices + b0;
    const float* bval = base.data ? base.data + b0 : nullptr;
    float* row_out = out.data() + static_cast<std::size_t>(r) * nc;
    if (!params_.field_aware) {
      std::vector<float> sum(K);
      const float base_score = score_row(bidx, bval, bn, sum.data());
      for (std::size_t c = 0; c < nc; ++c) {
        const float* cs = cand_sum.data() + c * K;
        float dot = 0.0f;
        for (std::size_t f = 0; f < K; ++f) dot += sum[f] * cs[f];
        row_out[c] = base_score + cand_self[c] + dot;
      }
      return;
    }
    // FFM: T[g][f] = sum over base features a of field g of v_{a,f} x_a.
    const std::size_t F = static_cast<std::size_t>(n_fields_);
    std::vector<float> T(F * F * K, 0.0f);
    std::vector<char> present(F, 0);
    for (Offset e = 0; e < bn; ++e) {
      const float x = bval ? bval[e] : 1.0f;
      const std::size_t g =
          static_cast<std::size_t>(feature_fields_[static_cast<std::size_t>(bidx[e])]);
      present[g] = 1;
      const float* va = v_.data() + static_cast<std::size_t>(bidx[e]) * stride;
      float* tg = T.data() + g * F * K;
      for (std::size_t j = 0; j < F * K; ++j) tg[j] += va[j] * x;
    }
    std::vector<std::size_t> fields_present;
    for (std::size_t g = 0; g < F; ++g) {
      if (present[g]) fields_present.push_back(g);
    }
    std::vector<float> scratch(K);
    const float base_score = score_row(bidx, bval, bn, scratch.data());
    for (std::size_t c = 0; c < nc; ++c) {
      float cross = 0.0f;
      for (Offset e = candidates.indptr[c]; e < candidates.indptr[c + 1]; ++e) {
        const std::size_t i = static_cast<std::size_t>(candidates.indices[e]);
        const float x = candidates.data ? candidates.data[e] : 1.0f;
        const std::size_t fb = static_cast<std::size_t>(feature_fields_[i]);
        const float* vb = v_.data() + i * stride;
        float acc = 0.0f;
        for (std::size_t g : fields_present) {
          const float* t = T.data() + (g * F + fb) * K;
          const float* vbg = vb + g * K;
          for (std::size_t f = 0; f < K; ++f) acc += t[f] * vbg[f];
        }
        cross += acc * x;
      }
      row_out[c] = base_score + cand_self[c] + cross;
    }
  });
  detail::check_scores_finite(Span<const float>(out.data(), out.size()), "FM::score_candidates");
}

PERKREC_INLINE double FM::loss(const CsrView<float>& X, const FMTarget& target) const {
  require_fitted("loss");
  check_rows(X, "loss");
  check_target(X, target, "loss", "");
  std::vector<float> s(static_cast<std::size_t>(X.rows));
  score_rows(X, s);  // a diverged model's loss is NaN (training turns it into DivergenceError)
  double total = 0.0, weight = 0.0;
  auto w_of = [&](std::size_t i) {
    return target.sample_weights.empty() ? 1.0 : static_cast<double>(target.sample_weights[i]);
  };
  if (params_.loss != FMParams::Loss::bpr) {
    for (std::size_t i = 0; i < s.size(); ++i) {
      const double wi = w_of(i);
      const double y = target.labels[i];
      total += wi * (params_.loss == FMParams::Loss::logistic ? detail::fm_logistic_loss(s[i], y)
                                                              : 0.5 * (s[i] - y) * (s[i] - y));
      weight += wi;
    }
  } else {
    // Every ordered pair within a group with a higher and a lower label.
    std::vector<std::size_t> order(s.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return target.groups[a] < target.groups[b];
    });
    std::size_t start = 0;
    while (start < order.size()) {
      std::size_t end = start;
      while (end < order.size() && target.groups[order[end]] == target.groups[order[start]]) ++end;
      for (std::size_t a = start; a < end; ++a) {
        for (std::size_t b = start; b < end; ++b) {
          const std::size_t i = order[a], j = order[b];
          if (target.labels[i] > target.labels[j]) {
            total += w_of(i) * detail::fm_logistic_loss(static_cast<double>(s[i]) - s[j], 1.0);
            weight += w_of(i);
          }
        }
      }
      start = end;
    }
  }
  return weight > 0 ? total / weight : 0.0;
}

PERKREC_INLINE std::vector<double> FM::row_gradient(const CsrView<float>& X, Index row,
                                                    float label) const {
  require_fitted("row_gradient");
  check_rows(X, "row_gradient");
  if (row < 0 || row >= X.rows)
    detail::raise<InputError>("FM::row_gradient: row out of range (got ", row, ")");
  const std::size_t K = static_cast<std::size_t>(params_.factors);
  const std::size_t stride = factor_stride();
  std::vector<double> grad(1 + w_.size() + v_.size(), 0.0);
  std::vector<float> scratch(K);
  const Index* idx = X.indices + X.indptr[row];
  const float* val = X.data ? X.data + X.indptr[row] : nullptr;
  const Offset n = X.indptr[row + 1] - X.indptr[row];
  const double s = score_row(idx, val, n, scratch.data());
  const double g =
      params_.loss == FMParams::Loss::logistic ? 1.0 / (1.0 + std::exp(-s)) - label : s - label;
  grad[0] = g;
  double* gw = grad.data() + 1;
  double* gv = gw + w_.size();
  for (Offset a = 0; a < n; ++a) {
    const double xa = val ? val[a] : 1.0;
    gw[idx[a]] += g * xa;
    for (Offset b = 0; b < n; ++b) {
      if (b == a) continue;
      const double xb = val ? val[b] : 1.0;
      const std::size_t ia = static_cast<std::size_t>(idx[a]);
      const std::size_t ib = static_cast<std::size_t>(idx[b]);
      // d/dv_a of <v_a[f(b)], v_b[f(a)]> x_a x_b (each unordered pair counted from both ends).
      const std::size_t oa =
          ia * stride +
          (params_.field_aware ? static_cast<std::size_t>(feature_fields_[ib]) * K : 0);
      const std::size_t ob =
          ib * stride +
          (params_.field_aware ? static_cast<std::size_t>(feature_fields_[ia]) * K : 0);
      for (std::size_t f = 0; f < K; ++f) gv[oa + f] += g * v_[ob + f] * xa * xb;
    }
  }
  return grad;
}

PERKREC_INLINE void FM::set_parameters(float w0, std::vector<float> w, std::vector<float> v) {
  require_fitted("set_parameters");
  if (w.size() != w_.size() || v.size() != v_.size()) {
    detail::raise<InputError>("FM::set_parameters: sizes differ (got ", w.size(), " and ", v.size(),
                              ", expected ", w_.size(), " and ", v_.size(), ")");
  }
  w0_ = w0;
  w_ = std::move(w);
  v_ = std::move(v);
}

PERKREC_INLINE void FM::set_metadata(std::string json_text) {
  (void)parse_json_strict<InputError>(json_text, "FM::set_metadata");
  metadata_ = std::move(json_text);
}

PERKREC_INLINE void FM::write(ModelWriter& w, const std::string& prefix) const {
  require_fitted("save");
  Json& c = content_section(w, prefix);
  c["params"] = params_.to_json();
  c["n_features"] = n_features_;
  c["n_fields"] = n_fields_;
  c["bias"] = w0_;
  c["bias_adagrad"] = g0_;
  c["epochs_done"] = epochs_done_;
  c["metadata"] = metadata_;
  w.add(prefix + "feature_fields", feature_fields_);
  w.add(prefix + "linear", w_);
  w.add(prefix + "factors", v_);
  w.add(prefix + "linear_adagrad", gw_);
  w.add(prefix + "factors_adagrad", gv_);
}

PERKREC_INLINE FM FM::read(const ModelReader& r, const std::string& prefix) {
  const Json& c = content_section(r, prefix);
  JsonReader<ModelFormatError> jr(c, content_pointer(prefix), "FM::read");
  Json params_json;
  Index n_features = 0;
  std::int32_t n_fields = 0;
  float bias = 0, bias_ada = 0;
  int epochs_done = 0;
  std::string metadata;
  jr.require("params", params_json);
  jr.require("n_features", n_features);
  jr.require("n_fields", n_fields);
  jr.require("bias", bias);
  jr.require("bias_adagrad", bias_ada);
  jr.require("epochs_done", epochs_done);
  jr.require("metadata", metadata);
  jr.finish();
  if (n_features < 0 || n_fields < 1) r.bad_content("bad shape (n_features < 0 or n_fields < 1)");
  const FMParams params = read_params<FMParams>(r, params_json);
  FM model(params);
  model.n_features_ = n_features;
  model.n_fields_ = n_fields;
  const auto nf = static_cast<std::int64_t>(n_features);
  const auto nv =
      static_cast<std::int64_t>(static_cast<std::size_t>(n_features) * model.factor_stride());
  model.feature_fields_ = r.vector<std::int32_t>(prefix + "feature_fields", {nf});
  for (std::size_t i = 0; i < model.feature_fields_.size(); ++i) {
    if (model.feature_fields_[i] < 0 || model.feature_fields_[i] >= n_fields) {
      r.invalid(detail::concat("field of feature ", i, " out of range"));
    }
  }
  model.w_ = r.vector<float>(prefix + "linear", {nf});
  model.v_ = r.vector<float>(prefix + "factors", {nv});
  const bool ada = params.optimizer == FMParams::Optimizer::adagrad;
  model.gw_ = r.vector<float>(prefix + "linear_adagrad", {ada ? nf : 0});
  model.gv_ = r.vector<float>(prefix + "factors_adagrad", {ada ? nv : 0});
  for (const auto* arr : {&model.w_, &model.v_, &model.gw_, &model.gv_}) {
    for (float x : *arr) {
      if (!std::isfinite(x)) r.invalid("non-finite parameter");
    }
  }
  model.w0_ = bias;
  model.g0_ = bias_ada;
  model.epochs_done_ = epochs_done;
  try {
    model.set_metadata(metadata);
  } catch (const InputError& e) {
    r.invalid(e.what());
  }
  model.fitted_ = true;
  return model;
}

}  // namespace perkrec
