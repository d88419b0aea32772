// Segments: operator-editable named rules over member features, and seeded k-means++.
//
// Rules (strict JSON; unknown keys, duplicate keys and bad values are ConfigError naming the
// JSON pointer). Segments are tried in order; a member joins the first whose conditions all
// hold, else `default`:
//   {
//     "segments": [
//       {"name": "dormant", "description": "no recent orders; win back",
//        "all": [{"feature": "recency_cycles", "op": ">", "value": 3.5}]},
//       {"name": "points_redemption_active",
//        "all": [{"feature": "top:kind", "op": "==", "value": "points"}]}
//     ],
//     "default": "other"
//   }
// A feature is a member feature of the PreferenceModel (feature_names(): recency_days,
// tenure_days, claim_rate, …), "pref:<dimension>" (the member's preference lift, e.g.
// "pref:kind:points"), or "top:<group>" (the value of the group's dimension with the highest
// lift, e.g. "top:kind" -> "points"; compare it with == or != and a string). Numeric ops:
// <, <=, >, >=, ==, !=. A condition on a NaN feature is false.
//
// SegmentRules::defaults() name the six segments of the program brief, in this order:
//   new_member                    tenure_days < 110
//   dormant                       orders_90d <= 4
//   threshold_discount_sensitive  pref:kind:threshold_discount >= 1.5
//   points_redemption_active      pref:kind:points >= 1.4
//   high_face_value_seeker        pref:face_value:>=30 >= 1.1
//   default: discount_indifferent_loyal (no benefit preference stands out)
// The thresholds were tuned on the built-in simulator (seed 3; see BENCHMARKS.md); a real
// program should re-tune them on its own data.
//
// k-means: kmeans++ initialisation drawn from Rng(seed, 0, pass), Lloyd iterations with the
// assignment parallel over rows and the centroid sums reduced over fixed-size blocks in block
// order, so the result is identical for any num_threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/json.hpp"
#include "perkrec/core/types.hpp"

namespace perkrec {

struct SegmentCondition {
  enum class Op : std::uint8_t { lt, le, gt, ge, eq, ne };
  std::string feature;
  Op op = Op::gt;
  double value = 0.0;       ///< for numeric features
  std::string text;         ///< for "top:<group>" features
  bool is_text = false;
};

struct SegmentRule {
  std::string name;
  std::string description;
  std::vector<SegmentCondition> all;  ///< every condition must hold (empty = always)
};

struct SegmentRules {
  std::vector<SegmentRule> segments;
  std::string default_segment = "other";

  /// The documented default rules.
  static SegmentRules defaults();
  /// Parses the JSON schema above; throws ConfigError naming the JSON pointer.
  static SegmentRules from_json(std::string_view text);
  static SegmentRules from_json_value(const Json& j);
  Json to_json() const;
  /// Segment names in code order: the rules' names, then the default.
  std::vector<std::string> names() const;
};

struct KMeansResult {
  int k = 0;
  int dim = 0;
  std::vector<std::int32_t> assignment;  ///< per row, in [0, k)
  std::vector<float> centroids;          ///< k x dim
  std::vector<Index> sizes;              ///< rows per cluster
  double inertia = 0.0;                  ///< sum of squared distances to the centroids
  int iterations = 0;
};

/// k-means++ over `rows` x `dim` row-major `data` (see the file comment). Throws InputError
/// for non-finite data or k out of [1, rows].
PERKREC_INLINE KMeansResult kmeans(const float* data, Index rows, int dim, int k, std::uint64_t seed,
                                   int max_iterations = 50, int num_threads = 0);

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/models/segments_impl.hpp"
#endif
