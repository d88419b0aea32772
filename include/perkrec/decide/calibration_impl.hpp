// Definitions for calibration.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "perkrec/core/error.hpp"
#include "perkrec/core/math.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/decide/calibration.hpp"
#include "perkrec/detail/numpy_sum.hpp"

namespace perkrec {

PERKREC_INLINE void InteractionShrinkParams::validate() const {
  params::validate_fields(*this, "InteractionShrinkParams");
}

namespace detail::calibration {

inline bool open_unit(double p) { return std::isfinite(p) && p > 0 && p < 1; }
inline double logit(double p) { return std::log(p / (1 - p)); }

/// Mean logit of one row, summed in benefit order.
template <class T>
double row_mean(const T* row, std::size_t nb) {
  double s = 0;
  for (std::size_t b = 0; b < nb; ++b) s += logit(static_cast<double>(row[b]));
  return s / static_cast<double>(nb);
}

/// sigmoid(a + c (logit p - a)) as float.
inline float shrunk(double p, double a, double c) {
  const double z = a + c * (logit(p) - a);
  return static_cast<float>(1.0 / (1.0 + std::exp(-z)));
}

}  // namespace detail::calibration

namespace detail::calibration {

/// shrink_interactions on a matrix of T (double or float), written to `out` (may alias).
template <class T>
double shrink(const T* probability, std::size_t size, float* out, Index n_users, Index n_benefits,
              Span<const Index> users, Span<const Index> benefits, Span<const double> predicted,
              Span<const double> redeemed, Span<const double> sample_weight,
              const InteractionShrinkParams& params, InteractionMeans* means) {
  params.validate();
  if (n_users < 1 || n_benefits < 1) {
    detail::raise<InputError>("shrink_interactions: the matrix must be at least 1 x 1 (got ",
                              n_users, " x ", n_benefits, ")");
  }
  const auto nb = static_cast<std::size_t>(n_benefits);
  const std::size_t cells = static_cast<std::size_t>(n_users) * nb;
  if (size != cells) {
    detail::raise<InputError>("shrink_interactions: probability has ", size, " values (expected ",
                              n_users, " x ", n_benefits, ")");
  }
  for (std::size_t i = 0; i < cells; ++i) {
    if (!open_unit(static_cast<double>(probability[i]))) {
      detail::raise<InputError>("shrink_interactions: probability at (", i / nb, ", ", i % nb,
                                ") must be in (0, 1) (got ", static_cast<double>(probability[i]),
                                ")");
    }
  }
  const std::size_t m = users.size();
  if (m == 0) detail::raise<InputError>("shrink_interactions: no held-out rows");
  if (benefits.size() != m || predicted.size() != m || redeemed.size() != m ||
      (!sample_weight.empty() && sample_weight.size() != m)) {
    detail::raise<InputError>("shrink_interactions: users has ", m, " rows but benefits ",
                              benefits.size(), ", predicted ", predicted.size(), ", redeemed ",
                              redeemed.size(), ", sample_weight ", sample_weight.size(),
                              " (expected equal; weights may be empty)");
  }
  for (std::size_t r = 0; r < m; ++r) {
    if (users[r] < 0 || users[r] >= n_users || benefits[r] < 0 || benefits[r] >= n_benefits) {
      detail::raise<InputError>("shrink_interactions: row ", r, ": (user ", users[r], ", benefit ",
                                benefits[r], ") out of range of the ", n_users, " x ", n_benefits,
                                " matrix");
    }
    if (!open_unit(predicted[r])) {
      detail::raise<InputError>("shrink_interactions: predicted at row ", r,
                                " must be in (0, 1) (got ", predicted[r], ")");
    }
    if (redeemed[r] != 0.0 && redeemed[r] != 1.0) {
      detail::raise<InputError>("shrink_interactions: redeemed at row ", r, " must be 0/1 (got ",
                                redeemed[r], ")");
    }
    if (!sample_weight.empty() && !(std::isfinite(sample_weight[r]) && sample_weight[r] >= 0)) {
      detail::raise<InputError>("shrink_interactions: sample_weight at row ", r,
                                " must be finite and >= 0 (got ", sample_weight[r], ")");
    }
  }

  // Member means in parallel; benefit means and the grand mean serially in member order, so
  // the sums do not depend on the thread count.
  std::vector<double> member_mean(static_cast<std::size_t>(n_users));
  parallel_for(0, n_users, params.num_threads, [&](Offset u) {
    member_mean[static_cast<std::size_t>(u)] =
        row_mean(probability + static_cast<std::size_t>(u) * nb, nb);
  });
  std::vector<double> benefit_mean(nb, 0.0);
  double grand = 0;
  for (Index u = 0; u < n_users; ++u) {
    const T* row = probability + static_cast<std::size_t>(u) * nb;
    for (std::size_t b = 0; b < nb; ++b) benefit_mean[b] += logit(row[b]);
    grand += member_mean[static_cast<std::size_t>(u)];
  }
  for (double& v : benefit_mean) v /= static_cast<double>(n_users);
  grand /= static_cast<double>(n_users);

  std::vector<double> offset(m), interaction(m);
  for (std::size_t r = 0; r < m; ++r) {
    offset[r] = member_mean[static_cast<std::size_t>(users[r])] +
                benefit_mean[static_cast<std::size_t>(benefits[r])] - grand;
    interaction[r] = logit(predicted[r]) - offset[r];
  }
  double slope = 1.0;
  for (int it = 0; it < params.iterations; ++it) {
    double gradient = 0, hessian = 0;
    for (std::size_t r = 0; r < m; ++r) {
      const double w = sample_weight.empty() ? 1.0 : sample_weight[r];
      const double p = 1.0 / (1.0 + std::exp(-(offset[r] + slope * interaction[r])));
      gradient += w * (redeemed[r] - p) * interaction[r];
      hessian += w * p * (1 - p) * interaction[r] * interaction[r];
    }
    if (!(hessian > 0)) break;
    const double step = gradient / hessian;
    slope += step;
    if (!std::isfinite(slope)) {
      detail::raise<DivergenceError>(
          "shrink_interactions: the slope diverged (the held-out rows do not identify "
          "it)");
    }
    if (std::abs(step) < 1e-10) break;
  }
  const double c = std::clamp(slope, 0.0, 1.0);
  parallel_for(0, n_users, params.num_threads, [&](Offset u) {
    const std::size_t base = static_cast<std::size_t>(u) * nb;
    for (std::size_t b = 0; b < nb; ++b) {
      const double a = member_mean[static_cast<std::size_t>(u)] + benefit_mean[b] - grand;
      out[base + b] = shrunk(static_cast<double>(probability[base + b]), a, c);
    }
  });
  if (means != nullptr) {
    means->benefit_mean = std::move(benefit_mean);
    means->grand_mean = grand;
    means->slope = c;
  }
  return c;
}

}  // namespace detail::calibration

PERKREC_INLINE InteractionShrinkage shrink_interactions(
    Span<const double> probability, Index n_users, Index n_benefits, Span<const Index> users,
    Span<const Index> benefits, Span<const double> predicted, Span<const double> redeemed,
    Span<const double> sample_weight, const InteractionShrinkParams& params) {
  InteractionShrinkage out;
  out.probability.resize(probability.size());
  out.slope = detail::calibration::shrink(
      probability.data(), probability.size(), out.probability.data(), n_users, n_benefits, users,
      benefits, predicted, redeemed, sample_weight, params, nullptr);
  return out;
}

PERKREC_INLINE double shrink_interactions_in_place(
    Span<float> probability, Index n_users, Index n_benefits, Span<const Index> users,
    Span<const Index> benefits, Span<const double> predicted, Span<const double> redeemed,
    Span<const double> sample_weight, const InteractionShrinkParams& params,
    InteractionMeans* means) {
  return detail::calibration::shrink(probability.data(), probability.size(), probability.data(),
                                     n_users, n_benefits, users, benefits, predicted, redeemed,
                                     sample_weight, params, means);
}

PERKREC_INLINE void shrink_row(Span<float> row, const InteractionMeans& means) {
  using detail::calibration::open_unit;
  const std::size_t nb = means.benefit_mean.size();
  if (row.size() != nb || nb == 0) {
    detail::raise<InputError>("shrink_row: row has ", row.size(), " values (expected ", nb, ")");
  }
  for (std::size_t b = 0; b < nb; ++b) {
    if (!open_unit(static_cast<double>(row[b]))) {
      detail::raise<InputError>("shrink_row: probability at ", b, " must be in (0, 1) (got ",
                                row[b], ")");
    }
  }
  const double member = detail::calibration::row_mean(row.data(), nb);
  for (std::size_t b = 0; b < nb; ++b) {
    row[b] =
        detail::calibration::shrunk(static_cast<double>(row[b]),
                                    member + means.benefit_mean[b] - means.grand_mean, means.slope);
  }
}

PERKREC_INLINE void OffsetSlopeParams::validate() const {
  params::validate_fields(*this, "OffsetSlopeParams");
  if (lower > upper) {
    detail::raise<ConfigError>("OffsetSlopeParams: lower must be <= upper (got lower ", lower,
                               ", upper ", upper, ")");
  }
}

PERKREC_INLINE OffsetSlope fit_offset_slope(Span<const double> offset, Span<const double> x,
                                            Span<const double> label,
                                            Span<const double> sample_weight,
                                            const OffsetSlopeParams& params) {
  params.validate();
  const std::size_t m = label.size();
  if (m == 0) detail::raise<InputError>("fit_offset_slope: label: no rows (got 0)");
  if (offset.size() != m || x.size() != m ||
      (!sample_weight.empty() && sample_weight.size() != m)) {
    detail::raise<InputError>("fit_offset_slope: label has ", m, " rows but offset ", offset.size(),
                              ", x ", x.size(), ", sample_weight ", sample_weight.size(),
                              " (expected equal; weights may be empty)");
  }
  for (std::size_t r = 0; r < m; ++r) {
    if (label[r] != 0.0 && label[r] != 1.0) {
      detail::raise<InputError>("fit_offset_slope: label at row ", r, " must be 0/1 (got ",
                                label[r], ")");
    }
    if (!std::isfinite(offset[r])) {
      detail::raise<InputError>("fit_offset_slope: offset at row ", r, " must be finite (got ",
                                offset[r], ")");
    }
    if (!std::isfinite(x[r])) {
      detail::raise<InputError>("fit_offset_slope: x at row ", r, " must be finite (got ", x[r],
                                ")");
    }
    if (!sample_weight.empty() && !(std::isfinite(sample_weight[r]) && sample_weight[r] >= 0)) {
      detail::raise<InputError>("fit_offset_slope: sample_weight at row ", r,
                                " must be finite and >= 0 (got ", sample_weight[r], ")");
    }
  }
  double c = params.start;
  for (int it = 0; it < params.iterations; ++it) {
    double gradient = 0, hessian = 0;
    for (std::size_t r = 0; r < m; ++r) {
      const double w = sample_weight.empty() ? 1.0 : sample_weight[r];
      const double p = 1.0 / (1.0 + std::exp(-(offset[r] + c * x[r])));
      gradient += w * (label[r] - p) * x[r];
      hessian += w * p * (1 - p) * x[r] * x[r];
    }
    if (!(hessian > 0)) break;
    // The log-likelihood is concave in c; a step is capped so a flat start cannot overshoot.
    const double step = std::clamp(gradient / hessian, -2.0, 2.0);
    c += step;
    if (std::abs(step) < 1e-10) break;
  }
  OffsetSlope out;
  out.unclipped = c;
  out.slope = std::isfinite(c) ? std::clamp(c, params.lower, params.upper)
                               : std::clamp(params.start, params.lower, params.upper);
  return out;
}

PERKREC_INLINE std::vector<float> issue_weights(Span<const double> propensity, double clip) {
  if (!(clip >= 0.5 && clip <= 1.0)) {
    detail::raise<ConfigError>("issue_weights: clip must be in [0.5, 1] (got ", clip, ")");
  }
  const std::size_t n = propensity.size();
  for (std::size_t i = 0; i < n; ++i) {
    const double p = propensity[i];
    if (!(std::isfinite(p) && p > 0 && p <= 1)) {
      detail::raise<InputError>("issue_weights: propensity[", i, "] must be in (0, 1] (got ", p,
                                ")");
    }
  }
  if (n == 0) detail::raise<InputError>("issue_weights: no propensities (got 0 rows)");
  std::vector<double> w(n);
  for (std::size_t i = 0; i < n; ++i) w[i] = 1.0 / propensity[i];
  std::vector<double> scratch = w;
  const double cap = detail::numpy_quantile(scratch, clip);
  for (double& x : w) x = std::min(x, cap);
  const double mean =
      detail::numpy_pairwise_sum(w.data(), static_cast<Offset>(n)) / static_cast<double>(n);
  std::vector<float> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(w[i] / mean);
  return out;
}

PERKREC_INLINE void BenefitLevelParams::validate() const {
  params::validate_fields(*this, "BenefitLevelParams");
}

PERKREC_INLINE std::vector<double> benefit_levels(Index n_benefits, Span<const Index> benefits,
                                                  Span<const double> predicted,
                                                  Span<const double> redeemed,
                                                  Span<const double> sample_weight,
                                                  const BenefitLevelParams& params) {
  params.validate();
  if (n_benefits < 1) {
    detail::raise<InputError>("benefit_levels: n_benefits must be >= 1 (got ", n_benefits, ")");
  }
  const std::size_t m = redeemed.size();
  if (m == 0) detail::raise<InputError>("benefit_levels: redeemed: no rows (got 0)");
  if (benefits.size() != m || predicted.size() != m ||
      (!sample_weight.empty() && sample_weight.size() != m)) {
    detail::raise<InputError>("benefit_levels: redeemed has ", m, " rows but benefits ",
                              benefits.size(), ", predicted ", predicted.size(), ", sample_weight ",
                              sample_weight.size(), " (expected equal; weights may be empty)");
  }
  const auto nb = static_cast<std::size_t>(n_benefits);
  std::vector<double> y(nb, 0.0), e(nb, 0.0);
  double total_y = 0, total_e = 0;
  for (std::size_t r = 0; r < m; ++r) {
    if (benefits[r] < 0 || benefits[r] >= n_benefits) {
      detail::raise<InputError>("benefit_levels: benefits at row ", r, " must be in [0, ",
                                n_benefits, ") (got ", benefits[r], ")");
    }
    if (!(std::isfinite(predicted[r]) && predicted[r] > 0 && predicted[r] <= 1)) {
      detail::raise<InputError>("benefit_levels: predicted at row ", r, " must be in (0, 1] (got ",
                                predicted[r], ")");
    }
    if (redeemed[r] != 0.0 && redeemed[r] != 1.0) {
      detail::raise<InputError>("benefit_levels: redeemed at row ", r, " must be 0/1 (got ",
                                redeemed[r], ")");
    }
    const double w = sample_weight.empty() ? 1.0 : sample_weight[r];
    if (!(std::isfinite(w) && w >= 0)) {
      detail::raise<InputError>("benefit_levels: sample_weight at row ", r,
                                " must be finite and >= 0 (got ", w, ")");
    }
    const auto b = static_cast<std::size_t>(benefits[r]);
    y[b] += w * redeemed[r];
    e[b] += w * predicted[r];
    total_y += w * redeemed[r];
    total_e += w * predicted[r];
  }
  std::vector<double> out(nb, 1.0);
  if (!(total_y > 0 && total_e > 0)) return out;
  const double level = total_y / total_e;
  for (std::size_t b = 0; b < nb; ++b)
    out[b] = (y[b] + params.prior * level) / (e[b] + params.prior) / level;
  return out;
}

PERKREC_INLINE void apply_benefit_levels(Span<float> row, Span<const double> levels) {
  if (row.size() != levels.size()) {
    detail::raise<InputError>("apply_benefit_levels: row has ", row.size(), " values (expected ",
                              levels.size(), ")");
  }
  for (std::size_t b = 0; b < row.size(); ++b) {
    row[b] = static_cast<float>(std::min(static_cast<double>(row[b]) * levels[b], 1 - 1e-6));
  }
}

PERKREC_INLINE void PilotLevelParams::validate() const {
  params::validate_fields(*this, "PilotLevelParams");
}

PERKREC_INLINE PilotLevel pilot_level(Span<const double> probability, Span<const double> redeemed,
                                      Span<const double> cost, const PilotLevelParams& params) {
  params.validate();
  const std::size_t m = redeemed.size();
  if (m == 0) detail::raise<InputError>("pilot_level: redeemed: no rows (got 0)");
  if (probability.size() != m || cost.size() != m) {
    detail::raise<InputError>("pilot_level: redeemed has ", m, " rows but probability ",
                              probability.size(), ", cost ", cost.size(), " (expected equal)");
  }
  PilotLevel out;
  for (std::size_t r = 0; r < m; ++r) {
    if (!(std::isfinite(probability[r]) && probability[r] >= 0 && probability[r] <= 1)) {
      detail::raise<InputError>("pilot_level: probability at row ", r, " must be in [0, 1] (got ",
                                probability[r], ")");
    }
    if (redeemed[r] != 0.0 && redeemed[r] != 1.0) {
      detail::raise<InputError>("pilot_level: redeemed at row ", r, " must be 0/1 (got ",
                                redeemed[r], ")");
    }
    if (!(std::isfinite(cost[r]) && cost[r] >= 0)) {
      detail::raise<InputError>("pilot_level: cost at row ", r, " must be finite and >= 0 (got ",
                                cost[r], ")");
    }
    out.expected += probability[r] * cost[r];
    out.observed += redeemed[r] * cost[r];
    out.expected_redemptions += probability[r];
  }
  if (!(out.expected > 0)) {
    detail::raise<InputError>(
        "pilot_level: the expected redemption cost is 0 (got no row with probability > 0 and "
        "cost > 0)");
  }
  const double pseudo = params.prior * out.expected / out.expected_redemptions;
  out.ratio = out.observed / out.expected;
  out.level = (out.observed + pseudo) / (out.expected + pseudo);
  double variance = 0;
  for (std::size_t r = 0; r < m; ++r) {
    const double q = std::min(out.level * probability[r], 1.0);
    variance += cost[r] * cost[r] * q * (1 - q);
  }
  out.standard_error = std::sqrt(variance) / (out.expected + pseudo);
  const double z = inverse_normal_cdf(0.5 * (1.0 + params.confidence));
  out.lower = std::max(0.0, out.level - z * out.standard_error);
  out.upper = out.level + z * out.standard_error;
  return out;
}

}  // namespace perkrec
