// Internal: the exact solver behind FM(factors = 0). No API promise.
//
// Minimizes the L2-regularized mean loss of a linear model over sparse rows,
//
//   f(b, w) = (1/W) sum_i c_i loss(b + x_i . w, y_i) + reg_bias/2 b^2 + reg_linear/2 |w|^2,
//   W = sum_i c_i  (c_i = sample weights, 1 when absent),
//
// for the logistic loss (softplus(s) - y s) or the squared loss ((s - y)^2 / 2), by a
// line-searched Newton method whose steps are solved matrix-free with conjugate gradients
// (Hessian-vector products X^T D X v). Every sum has a fixed order that does not depend on the
// thread count: row sums in fixed blocks added in block order, column sums over a transposed
// copy of X walked in row order. The result is bit-identical for any num_threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "perkrec/core/threading.hpp"
#include "perkrec/core/types.hpp"

namespace perkrec {
namespace detail {

struct GlmProblem {
  CsrView<float> X;
  Span<const float> labels;
  Span<const float> weights;  // empty = all 1
  bool logistic = true;       // false = squared loss
  double reg_bias = 0.0;
  double reg_linear = 0.0;
  int num_threads = 1;
};

struct GlmOptions {
  int max_iterations = 100;          // Newton steps
  double gradient_tolerance = 1e-9;  // stop when |grad|_2 <= tol * max(1, |grad at start|_2)
  int max_cg_steps = 500;            // per Newton step
};

struct GlmIteration {
  int iteration = 0;
  double objective = 0.0;  // regularized
  double mean_loss = 0.0;  // unregularized
  double gradient_norm = 0.0;
};

class GlmSolver {
 public:
  explicit GlmSolver(const GlmProblem& p) : p_(p) {
    const auto rows = static_cast<std::size_t>(p.X.rows);
    total_weight_ = 0.0;
    row_weight_.resize(rows);
    for (std::size_t i = 0; i < rows; ++i) {
      row_weight_[i] = p.weights.empty() ? 1.0 : static_cast<double>(p.weights[i]);
      total_weight_ += row_weight_[i];
    }
    transpose();
    scores_.resize(rows);
    work_.resize(rows);
    direction_scores_.resize(rows);
  }

  /// Changes the penalties of later solve() calls (a regularization path reuses the solver and
  /// its transposed copy of X, warm-starting each penalty from the previous solution).
  void set_regularization(double reg_bias, double reg_linear) {
    p_.reg_bias = reg_bias;
    p_.reg_linear = reg_linear;
  }

  /// Solves from the start (bias, w) in place; calls `on_iteration` after every Newton step
  /// (it may throw to stop). Returns the last iteration's record.
  GlmIteration solve(double& bias, std::vector<double>& w, const GlmOptions& options,
                     const std::function<void(const GlmIteration&)>& on_iteration) {
    const std::size_t n = w.size();
    std::vector<double> grad(n), p(n), r(n), z(n), hz(n), w_trial(n);
    double grad_b = 0, p_b = 0, r_b = 0, z_b = 0, hz_b = 0;
    compute_scores(bias, w, scores_);
    double f = objective(bias, w, scores_);
    gradient(bias, w, grad, grad_b);
    const double g0 = std::sqrt(dot(grad, grad, grad_b, grad_b));
    const double tol = options.gradient_tolerance * std::max(1.0, g0);
    GlmIteration record{0, f, mean_loss_, g0};
    if (total_weight_ <= 0) return record;
    for (int it = 1; it <= options.max_iterations; ++it) {
      const double gnorm = std::sqrt(dot(grad, grad, grad_b, grad_b));
      if (!(gnorm > tol)) break;
      // Hessian weights at the current scores.
      hessian_weights();
      // CG on H p = -g; stop at a residual of min(0.5, sqrt(|g|)) |g| (superlinear Newton).
      std::fill(p.begin(), p.end(), 0.0);
      p_b = 0;
      for (std::size_t j = 0; j < n; ++j) r[j] = -grad[j];
      r_b = -grad_b;
      z = r;
      z_b = r_b;
      double rr = dot(r, r, r_b, r_b);
      const double cg_tol = std::min(0.5, std::sqrt(gnorm)) * gnorm;
      for (int k = 0; k < options.max_cg_steps; ++k) {
        hessian_times(z, z_b, hz, hz_b);
        const double zhz = dot(z, hz, z_b, hz_b);
        if (!(zhz > 0)) {
          if (k == 0) {  // no curvature along -g: take the gradient step
            p = r;
            p_b = r_b;
          }
          break;
        }
        const double alpha = rr / zhz;
        for (std::size_t j = 0; j < n; ++j) {
          p[j] += alpha * z[j];
          r[j] -= alpha * hz[j];
        }
        p_b += alpha * z_b;
        r_b -= alpha * hz_b;
        const double rr_new = dot(r, r, r_b, r_b);
        if (std::sqrt(rr_new) <= cg_tol) break;
        const double beta = rr_new / rr;
        for (std::size_t j = 0; j < n; ++j) z[j] = r[j] + beta * z[j];
        z_b = r_b + beta * z_b;
        rr = rr_new;
      }
      // Armijo backtracking from the full Newton step.
      const double slope = dot(grad, p, grad_b, p_b);
      if (!(slope < 0)) break;
      compute_scores(0.0, p, direction_scores_);  // X p, so trial scores cost O(rows)
      double step = 1.0;
      double f_trial = f;
      bool accepted = false;
      for (int ls = 0; ls < 60; ++ls) {
        for (std::size_t i = 0; i < scores_.size(); ++i) {
          work_[i] = scores_[i] + step * (direction_scores_[i] + p_b);
        }
        for (std::size_t j = 0; j < n; ++j) w_trial[j] = w[j] + step * p[j];
        f_trial = objective(bias + step * p_b, w_trial, work_);
        if (f_trial <= f + 1e-4 * step * slope) {
          accepted = true;
          break;
        }
        step *= 0.5;
      }
      if (!accepted) break;  // no decrease representable: at the optimum up to rounding
      bias += step * p_b;
      w.swap(w_trial);
      scores_.swap(work_);  // mean_loss_ is the accepted trial's (the last objective call)
      const double f_old = f;
      f = f_trial;
      gradient(bias, w, grad, grad_b);
      record = GlmIteration{it, f, mean_loss_, std::sqrt(dot(grad, grad, grad_b, grad_b))};
      if (on_iteration) on_iteration(record);
      if (!(f < f_old)) break;
    }
    return record;
  }

 private:
  static constexpr Offset kRowBlock = 4096;
  static constexpr Offset kColBlock = 1024;

  Offset row_blocks() const { return (p_.X.rows + kRowBlock - 1) / kRowBlock; }

  // Sum of per-row values in fixed blocks, added in block order.
  template <class F>
  double row_sum(F&& value) const {
    const Offset blocks = row_blocks();
    std::vector<double> partial(static_cast<std::size_t>(blocks), 0.0);
    parallel_for(0, blocks, p_.num_threads, [&](Offset b) {
      const Offset end = std::min<Offset>(p_.X.rows, (b + 1) * kRowBlock);
      double s = 0.0;
      for (Offset i = b * kRowBlock; i < end; ++i) s += value(static_cast<std::size_t>(i));
      partial[static_cast<std::size_t>(b)] = s;
    });
    double total = 0.0;
    for (double s : partial) total += s;
    return total;
  }

  void transpose() {
    const CsrView<float>& X = p_.X;
    const auto cols = static_cast<std::size_t>(X.cols);
    col_ptr_.assign(cols + 1, 0);
    const Offset nnz = X.nnz();
    for (Offset e = 0; e < nnz; ++e) ++col_ptr_[static_cast<std::size_t>(X.indices[e]) + 1];
    for (std::size_t j = 0; j < cols; ++j) col_ptr_[j + 1] += col_ptr_[j];
    col_row_.resize(static_cast<std::size_t>(nnz));
    col_val_.resize(static_cast<std::size_t>(nnz));
    std::vector<Offset> next(col_ptr_.begin(), col_ptr_.end() - 1);
    for (Index r = 0; r < X.rows; ++r) {
      for (Offset e = X.indptr[r]; e < X.indptr[r + 1]; ++e) {
        const auto j = static_cast<std::size_t>(X.indices[e]);
        const Offset at = next[j]++;
        col_row_[static_cast<std::size_t>(at)] = r;
        col_val_[static_cast<std::size_t>(at)] = X.data ? X.data[e] : 1.0f;
      }
    }
  }

  // out_i = bias + x_i . w
  void compute_scores(double bias, const std::vector<double>& w, std::vector<double>& out) const {
    const CsrView<float>& X = p_.X;
    parallel_for(0, row_blocks(), p_.num_threads, [&](Offset b) {
      const Offset end = std::min<Offset>(X.rows, (b + 1) * kRowBlock);
      for (Offset i = b * kRowBlock; i < end; ++i) {
        double s = bias;
        for (Offset e = X.indptr[i]; e < X.indptr[i + 1]; ++e) {
          s += (X.data ? static_cast<double>(X.data[e]) : 1.0) *
               w[static_cast<std::size_t>(X.indices[e])];
        }
        out[static_cast<std::size_t>(i)] = s;
      }
    });
  }

  double row_loss(double s, double y) const {
    if (p_.logistic) return std::max(s, 0.0) + std::log1p(std::exp(-std::fabs(s))) - y * s;
    return 0.5 * (s - y) * (s - y);
  }

  double objective(double bias, const std::vector<double>& w, const std::vector<double>& s) {
    const double loss = row_sum([&](std::size_t i) {
      return row_weight_[i] * row_loss(s[i], static_cast<double>(p_.labels[i]));
    });
    mean_loss_ = total_weight_ > 0 ? loss / total_weight_ : 0.0;
    double ww = 0.0;
    for (double x : w) ww += x * x;
    return mean_loss_ + 0.5 * p_.reg_bias * bias * bias + 0.5 * p_.reg_linear * ww;
  }

  // d(objective)/d(w), d(objective)/d(bias) at the current scores_.
  void gradient(double bias, const std::vector<double>& w, std::vector<double>& g, double& g_b) {
    parallel_for(0, row_blocks(), p_.num_threads, [&](Offset b) {
      const Offset end = std::min<Offset>(p_.X.rows, (b + 1) * kRowBlock);
      for (Offset i = b * kRowBlock; i < end; ++i) {
        const auto k = static_cast<std::size_t>(i);
        const double s = scores_[k];
        const double d = p_.logistic ? 1.0 / (1.0 + std::exp(-s)) - p_.labels[k] : s - p_.labels[k];
        work_[k] = row_weight_[k] * d / total_weight_;
      }
    });
    g_b = row_sum([&](std::size_t i) { return work_[i]; }) + p_.reg_bias * bias;
    columns_times(work_, g);
    for (std::size_t j = 0; j < g.size(); ++j) g[j] += p_.reg_linear * w[j];
  }

  void hessian_weights() {
    hess_.resize(scores_.size());
    parallel_for(0, row_blocks(), p_.num_threads, [&](Offset b) {
      const Offset end = std::min<Offset>(p_.X.rows, (b + 1) * kRowBlock);
      for (Offset i = b * kRowBlock; i < end; ++i) {
        const auto k = static_cast<std::size_t>(i);
        double h = 1.0;
        if (p_.logistic) {
          const double q = 1.0 / (1.0 + std::exp(-scores_[k]));
          h = q * (1.0 - q);
        }
        hess_[k] = row_weight_[k] * h / total_weight_;
      }
    });
  }

  // (H v, H v_b) with H the Hessian at the weights of hessian_weights().
  void hessian_times(const std::vector<double>& v, double v_b, std::vector<double>& out,
                     double& out_b) {
    compute_scores(v_b, v, direction_scores_);
    parallel_for(0, row_blocks(), p_.num_threads, [&](Offset b) {
      const Offset end = std::min<Offset>(p_.X.rows, (b + 1) * kRowBlock);
      for (Offset i = b * kRowBlock; i < end; ++i) {
        const auto k = static_cast<std::size_t>(i);
        direction_scores_[k] *= hess_[k];
      }
    });
    out_b = row_sum([&](std::size_t i) { return direction_scores_[i]; }) + p_.reg_bias * v_b;
    columns_times(direction_scores_, out);
    for (std::size_t j = 0; j < out.size(); ++j) out[j] += p_.reg_linear * v[j];
  }

  // out_j = sum over the rows of column j (in row order) of x_ij u_i.
  void columns_times(const std::vector<double>& u, std::vector<double>& out) const {
    const Offset cols = p_.X.cols;
    parallel_for(0, (cols + kColBlock - 1) / kColBlock, p_.num_threads, [&](Offset b) {
      const Offset end = std::min<Offset>(cols, (b + 1) * kColBlock);
      for (Offset j = b * kColBlock; j < end; ++j) {
        double s = 0.0;
        for (Offset e = col_ptr_[static_cast<std::size_t>(j)];
             e < col_ptr_[static_cast<std::size_t>(j) + 1]; ++e) {
          s += static_cast<double>(col_val_[static_cast<std::size_t>(e)]) *
               u[static_cast<std::size_t>(col_row_[static_cast<std::size_t>(e)])];
        }
        out[static_cast<std::size_t>(j)] = s;
      }
    });
  }

  static double dot(const std::vector<double>& a, const std::vector<double>& b, double a_b,
                    double b_b) {
    double s = a_b * b_b;
    for (std::size_t j = 0; j < a.size(); ++j) s += a[j] * b[j];
    return s;
  }

  GlmProblem p_;
  double total_weight_ = 0.0;
  double mean_loss_ = 0.0;
  std::vector<double> row_weight_, scores_, work_, direction_scores_, hess_;
  std::vector<Offset> col_ptr_;
  std::vector<Index> col_row_;
  std::vector<float> col_val_;
};

}  // namespace detail
}  // namespace perkrec
