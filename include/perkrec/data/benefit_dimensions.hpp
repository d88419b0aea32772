// BenefitDimensions: the benefit attribute dimensions that member preferences are expressed
// over — kind, face-value band, threshold band, scope, scenario and channel.
//
// Every benefit activates one dimension in each of the kind, face-value, threshold and scope
// groups, one per scenario tag, and one channel dimension (none when its channel is "").
// Dimension names read "group:value": "kind:points", "face_value:>=30", "threshold:100-300",
// "scope:category", "scenario:member_day", "channel:app".
//
// Face value is compared in currency: a percent_off counts as discount_rate x typical_basket.
//
// Example:
//   auto dims = perkrec::BenefitDimensions::for_catalog(catalog);
//   std::vector<int> active;
//   dims.encode(catalog[b], active);      // indices into dims.names()
//
// Thread safety: immutable after construction; all methods are const.
#pragma once

#include <string>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/params.hpp"
#include "perkrec/data/catalog.hpp"

namespace perkrec {

/// Band edges of BenefitDimensions.
struct BenefitDimensionsParams {
  std::vector<double> face_value_edges{10.0, 30.0};   ///< increasing, > 0
  std::vector<double> threshold_edges{100.0, 300.0};  ///< increasing, > 0
  double typical_basket = 60.0;  ///< > 0; converts percent_off rates to currency

  static auto param_fields() {
    using P = BenefitDimensionsParams;
    return std::make_tuple(params::field("face_value_edges", &P::face_value_edges),
                           params::field("threshold_edges", &P::threshold_edges),
                           params::field("typical_basket", &P::typical_basket, params::above(0)));
  }
  /// Throws ConfigError naming the field.
  void validate() const;
};

class BenefitDimensions {
 public:
  enum class Group : int { kind, face_value, threshold, scope, scenario, channel };
  static constexpr int kNumGroups = 6;

  using Params = BenefitDimensionsParams;

  BenefitDimensions() : BenefitDimensions(Params{}, {}, {}) {}
  /// Fixed groups from `params`, scenario and channel vocabularies as given (duplicates and
  /// empty strings are dropped).
  BenefitDimensions(Params params, std::vector<std::string> scenarios,
                    std::vector<std::string> channels);
  /// Dimensions whose scenario and channel vocabularies are those used in `catalog`, in order
  /// of first appearance.
  static BenefitDimensions for_catalog(const Catalog& catalog, Params params = {});

  int size() const { return static_cast<int>(names_.size()); }
  const std::vector<std::string>& names() const { return names_; }
  /// Index of a dimension name, or -1.
  int find(const std::string& name) const;
  Group group_of(int dim) const { return groups_[static_cast<std::size_t>(dim)]; }
  /// First and one-past-last dimension of a group.
  int group_begin(Group g) const { return group_start_[static_cast<int>(g)]; }
  int group_end(Group g) const { return group_start_[static_cast<int>(g) + 1]; }
  static const char* group_name(Group g);

  const Params& params() const { return params_; }
  const std::vector<std::string>& scenarios() const { return scenarios_; }
  const std::vector<std::string>& channels() const { return channels_; }

  /// Face value in currency (see the file comment).
  double effective_value(const Benefit& b) const;
  /// Band index within the face_value / threshold groups.
  int face_value_band(const Benefit& b) const;
  int threshold_band(const Benefit& b) const;
  /// Appends the active dimension indices of `b` to `out` (scenarios or a channel missing from
  /// the vocabularies are skipped).
  void encode(const Benefit& b, std::vector<int>& out) const;

 private:
  Params params_;
  std::vector<std::string> scenarios_;
  std::vector<std::string> channels_;
  std::vector<std::string> names_;
  std::vector<Group> groups_;
  int group_start_[kNumGroups + 1] = {};
};

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/data/benefit_dimensions_impl.hpp"
#endif
