// Probability calibration: maps a model's scores to probabilities that match observed rates,
// fitted on held-out (score, label) pairs — never on the rows the model was trained on.
//
//   PlattCalibrator     p = sigmoid(a x score + b), Newton's method on the log-loss with
//                       Platt's smoothed targets (n+ + 1) / (n+ + 2) and 1 / (n- + 2).
//   IsotonicCalibrator  the best non-decreasing map from score to probability (pool adjacent
//                       violators over the distinct scores, ties merged first); predictions
//                       interpolate linearly between the blocks' first and last scores and
//                       are constant beyond the fitted range.
//
// Example:
//   perkrec::IsotonicCalibrator iso;
//   iso.fit(held_out_scores, held_out_labels);
//   std::vector<double> p(scores.size());
//   iso.predict(scores, p);
//
// Thread safety: fit needs exclusive access; predict and to_json are const and may run from
// many threads at once.
#pragma once

#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/json.hpp"
#include "perkrec/core/types.hpp"

namespace perkrec {

class PlattCalibrator {
 public:
  /// InputError for empty or unequal-length inputs, a non-finite score or a label not 0 / 1;
  /// nothing changes then.
  void fit(Span<const double> scores, Span<const double> labels);
  /// out[i] = sigmoid(a x scores[i] + b). InputError for a NaN score or when out's length
  /// differs.
  void predict(Span<const double> scores, Span<double> out) const;
  double predict(double score) const;

  double a() const { return a_; }
  double b() const { return b_; }
  bool fitted() const { return fitted_; }
  /// {"a": ..., "b": ...}; from_json is strict (unknown keys, non-finite values: ConfigError).
  Json to_json() const;
  static PlattCalibrator from_json(const Json& j);

 private:
  double a_ = 1.0;
  double b_ = 0.0;
  bool fitted_ = false;
};

class IsotonicCalibrator {
 public:
  /// InputError for empty or unequal-length inputs or non-finite scores / labels (labels may
  /// be any finite values: rates, 0 / 1 outcomes); nothing changes then.
  void fit(Span<const double> scores, Span<const double> labels);
  /// InputError when not fitted, for a NaN score or when out's length differs.
  void predict(Span<const double> scores, Span<double> out) const;
  double predict(double score) const;

  /// The knots: each block contributes its first and last distinct score with its mean label.
  const std::vector<double>& knots_x() const { return x_; }
  const std::vector<double>& knots_y() const { return y_; }
  bool fitted() const { return !x_.empty(); }
  /// {"x": [...], "y": [...]}; from_json checks equal lengths, finite values and
  /// non-decreasing x and y (ConfigError naming the key).
  Json to_json() const;
  static IsotonicCalibrator from_json(const Json& j);

 private:
  std::vector<double> x_;
  std::vector<double> y_;
};

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/models/calibrators_impl.hpp"
#endif
