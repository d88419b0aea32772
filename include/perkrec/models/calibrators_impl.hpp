// Definitions for models/calibrators.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <numeric>

#include "perkrec/core/error.hpp"
#include "perkrec/models/calibrators.hpp"

namespace perkrec {

namespace detail {

inline void check_calibration_input(Span<const double> scores, Span<const double> labels,
                                    const char* context) {
  if (scores.empty()) detail::raise<InputError>(context, ": no scores");
  if (scores.size() != labels.size()) {
    detail::raise<InputError>(context, ": scores and labels differ in length (", scores.size(),
                              " vs ", labels.size(), ")");
  }
  for (std::size_t i = 0; i < scores.size(); ++i) {
    if (!std::isfinite(scores[i]))
      detail::raise<InputError>(context, ": row ", i, ": non-finite score (got ", scores[i], ")");
    if (!std::isfinite(labels[i]))
      detail::raise<InputError>(context, ": row ", i, ": non-finite label (got ", labels[i], ")");
  }
}

inline void check_output_length(Span<const double> scores, Span<double> out, const char* context) {
  if (scores.size() != out.size()) {
    detail::raise<InputError>(context, ": output length ", out.size(), " differs from ",
                              scores.size(), " scores");
  }
}

inline double finite_number(const Json& j, const char* key, const char* context) {
  if (!j.is_number()) detail::raise<ConfigError>(context, ": /", key, " must be a number");
  const double v = j.get<double>();
  if (!std::isfinite(v)) detail::raise<ConfigError>(context, ": /", key, " must be finite");
  return v;
}

}  // namespace detail

// --- Platt ------------------------------------------------------------------------------------

PERKREC_INLINE void PlattCalibrator::fit(Span<const double> scores, Span<const double> labels) {
  detail::check_calibration_input(scores, labels, "PlattCalibrator.fit");
  double n_pos = 0.0;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] != 0.0 && labels[i] != 1.0) {
      detail::raise<InputError>("PlattCalibrator.fit: row ", i, ": labels must be 0 or 1 (got ",
                                labels[i], ")");
    }
    n_pos += labels[i];
  }
  const auto n = static_cast<double>(labels.size());
  const double n_neg = n - n_pos;
  const double t_pos = (n_pos + 1.0) / (n_pos + 2.0);
  const double t_neg = 1.0 / (n_neg + 2.0);
  double a = 1.0;
  double b = -std::log((n_neg + 1.0) / (n_pos + 1.0));
  for (int it = 0; it < 100; ++it) {
    double g0 = 0.0, g1 = 0.0, h00 = 1e-9, h01 = 0.0, h11 = 1e-9;
    for (std::size_t i = 0; i < scores.size(); ++i) {
      const double s = scores[i];
      const double p = 1.0 / (1.0 + std::exp(-(a * s + b)));
      const double d = p - (labels[i] > 0 ? t_pos : t_neg);
      const double w = p * (1.0 - p) + 1e-12;
      g0 += d * s;
      g1 += d;
      h00 += w * s * s;
      h01 += w * s;
      h11 += w;
    }
    // Newton step: the 2 x 2 system solved in closed form.
    const double det = h00 * h11 - h01 * h01;
    const double s0 = (h11 * g0 - h01 * g1) / det;
    const double s1 = (h00 * g1 - h01 * g0) / det;
    if (!std::isfinite(s0) || !std::isfinite(s1)) break;
    a -= s0;
    b -= s1;
    if (std::max(std::abs(s0), std::abs(s1)) < 1e-10) break;
  }
  a_ = a;
  b_ = b;
  fitted_ = true;
}

PERKREC_INLINE double PlattCalibrator::predict(double score) const {
  if (std::isnan(score)) detail::raise<InputError>("PlattCalibrator.predict: NaN score");
  return 1.0 / (1.0 + std::exp(-(a_ * score + b_)));
}

PERKREC_INLINE void PlattCalibrator::predict(Span<const double> scores, Span<double> out) const {
  detail::check_output_length(scores, out, "PlattCalibrator.predict");
  for (std::size_t i = 0; i < scores.size(); ++i) out[i] = predict(scores[i]);
}

PERKREC_INLINE Json PlattCalibrator::to_json() const { return Json{{"a", a_}, {"b", b_}}; }

PERKREC_INLINE PlattCalibrator PlattCalibrator::from_json(const Json& j) {
  if (!j.is_object()) detail::raise<ConfigError>("PlattCalibrator: expected a JSON object");
  for (const auto& item : j.items()) {
    if (item.key() != "a" && item.key() != "b")
      detail::raise<ConfigError>("PlattCalibrator: unknown key /", item.key());
  }
  if (!j.contains("a") || !j.contains("b"))
    detail::raise<ConfigError>("PlattCalibrator: /a and /b are required");
  PlattCalibrator c;
  c.a_ = detail::finite_number(j.at("a"), "a", "PlattCalibrator");
  c.b_ = detail::finite_number(j.at("b"), "b", "PlattCalibrator");
  c.fitted_ = true;
  return c;
}

// --- isotonic ---------------------------------------------------------------------------------

PERKREC_INLINE void IsotonicCalibrator::fit(Span<const double> scores, Span<const double> labels) {
  detail::check_calibration_input(scores, labels, "IsotonicCalibrator.fit");
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t i, std::size_t j) { return scores[i] < scores[j]; });
  // Ties merged first: one (score, mean label, count) per distinct score.
  std::vector<double> xs, sums, counts;
  for (std::size_t r = 0; r < order.size(); ++r) {
    const double s = scores[order[r]];
    if (xs.empty() || s != xs.back()) {
      xs.push_back(s);
      sums.push_back(0.0);
      counts.push_back(0.0);
    }
    sums.back() += labels[order[r]];
    counts.back() += 1.0;
  }
  // Pool adjacent violators over the distinct scores.
  std::vector<double> value, weight;
  std::vector<std::size_t> first;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    value.push_back(sums[i] / counts[i]);
    weight.push_back(counts[i]);
    first.push_back(i);
    while (value.size() > 1 && value[value.size() - 2] > value.back()) {
      const double v = value.back(), w = weight.back();
      value.pop_back();
      weight.pop_back();
      first.pop_back();
      value.back() = (value.back() * weight.back() + v * w) / (weight.back() + w);
      weight.back() += w;
    }
  }
  std::vector<double> x, y;
  x.reserve(2 * value.size());
  y.reserve(2 * value.size());
  for (std::size_t k = 0; k < value.size(); ++k) {
    const std::size_t last = k + 1 < first.size() ? first[k + 1] - 1 : xs.size() - 1;
    x.push_back(xs[first[k]]);
    x.push_back(xs[last]);
    y.push_back(value[k]);
    y.push_back(value[k]);
  }
  x_ = std::move(x);
  y_ = std::move(y);
}

PERKREC_INLINE double IsotonicCalibrator::predict(double score) const {
  if (x_.empty()) detail::raise<InputError>("IsotonicCalibrator.predict: not fitted");
  if (std::isnan(score)) detail::raise<InputError>("IsotonicCalibrator.predict: NaN score");
  if (score <= x_.front()) return y_.front();
  if (score >= x_.back()) return y_.back();
  // The last knot <= score, then linear between it and the next (np.interp's rule).
  const auto j =
      static_cast<std::size_t>(std::upper_bound(x_.begin(), x_.end(), score) - x_.begin()) - 1;
  const double dx = x_[j + 1] - x_[j];
  return dx > 0 ? y_[j] + (score - x_[j]) * (y_[j + 1] - y_[j]) / dx : y_[j];
}

PERKREC_INLINE void IsotonicCalibrator::predict(Span<const double> scores, Span<double> out) const {
  detail::check_output_length(scores, out, "IsotonicCalibrator.predict");
  for (std::size_t i = 0; i < scores.size(); ++i) out[i] = predict(scores[i]);
}

PERKREC_INLINE Json IsotonicCalibrator::to_json() const { return Json{{"x", x_}, {"y", y_}}; }

PERKREC_INLINE IsotonicCalibrator IsotonicCalibrator::from_json(const Json& j) {
  if (!j.is_object()) detail::raise<ConfigError>("IsotonicCalibrator: expected a JSON object");
  for (const auto& item : j.items()) {
    if (item.key() != "x" && item.key() != "y")
      detail::raise<ConfigError>("IsotonicCalibrator: unknown key /", item.key());
  }
  if (!j.contains("x") || !j.contains("y") || !j.at("x").is_array() || !j.at("y").is_array()) {
    detail::raise<ConfigError>("IsotonicCalibrator: /x and /y must be arrays");
  }
  const Json& jx = j.at("x");
  const Json& jy = j.at("y");
  if (jx.size() != jy.size() || jx.empty()) {
    detail::raise<ConfigError>(
        "IsotonicCalibrator: /x and /y must be non-empty and of equal length");
  }
  IsotonicCalibrator c;
  for (std::size_t i = 0; i < jx.size(); ++i) {
    c.x_.push_back(detail::finite_number(jx[i], "x", "IsotonicCalibrator"));
    c.y_.push_back(detail::finite_number(jy[i], "y", "IsotonicCalibrator"));
    if (i > 0 && (c.x_[i] < c.x_[i - 1] || c.y_[i] < c.y_[i - 1])) {
      detail::raise<ConfigError>("IsotonicCalibrator: /x and /y must be non-decreasing (at index ",
                                 i, ")");
    }
  }
  return c;
}

}  // namespace perkrec
