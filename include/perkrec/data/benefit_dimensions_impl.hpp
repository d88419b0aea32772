// Definitions for benefit_dimensions.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <sstream>
#include <unordered_set>

#include "perkrec/data/benefit_dimensions.hpp"

namespace perkrec {

namespace detail {

inline std::string format_edge(double x) {
  std::ostringstream out;
  out << x;
  return out.str();
}

inline std::vector<std::string> band_names(const std::vector<double>& edges) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i <= edges.size(); ++i) {
    if (i == 0) {
      names.push_back("<" + format_edge(edges[0]));
    } else if (i == edges.size()) {
      names.push_back(">=" + format_edge(edges.back()));
    } else {
      names.push_back(format_edge(edges[i - 1]) + "-" + format_edge(edges[i]));
    }
  }
  return names;
}

inline int band_of(double x, const std::vector<double>& edges) {
  return static_cast<int>(std::upper_bound(edges.begin(), edges.end(), x) - edges.begin());
}

inline std::vector<std::string> unique_nonempty(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  std::unordered_set<std::string> seen;
  for (const auto& v : values) {
    if (!v.empty() && seen.insert(v).second) out.push_back(v);
  }
  return out;
}

}  // namespace detail

PERKREC_INLINE void BenefitDimensionsParams::validate() const {
  auto check = [](const std::vector<double>& edges, const char* name) {
    if (edges.empty()) detail::raise<ConfigError>("BenefitDimensionsParams: ", name, " is empty");
    for (std::size_t i = 0; i < edges.size(); ++i) {
      if (!std::isfinite(edges[i]) || edges[i] <= 0 || (i > 0 && edges[i] <= edges[i - 1])) {
        detail::raise<ConfigError>("BenefitDimensionsParams: ", name,
                                   " must be finite, > 0 and increasing (got ", edges[i],
                                   " at position ", i, ")");
      }
    }
  };
  check(face_value_edges, "face_value_edges");
  check(threshold_edges, "threshold_edges");
  params::validate_fields(*this, "BenefitDimensionsParams");
}

PERKREC_INLINE BenefitDimensions::BenefitDimensions(Params params,
                                                    std::vector<std::string> scenarios,
                                                    std::vector<std::string> channels)
    : params_(std::move(params)),
      scenarios_(detail::unique_nonempty(scenarios)),
      channels_(detail::unique_nonempty(channels)) {
  params_.validate();
  auto open_group = [&](Group g) { group_start_[static_cast<int>(g)] = size(); };
  auto add = [&](Group g, const std::string& value) {
    names_.push_back(std::string(group_name(g)) + ":" + value);
    groups_.push_back(g);
  };
  open_group(Group::kind);
  for (int k = 0; k < kNumBenefitKinds; ++k)
    add(Group::kind, to_string(static_cast<BenefitKind>(k)));
  open_group(Group::face_value);
  for (const auto& n : detail::band_names(params_.face_value_edges)) add(Group::face_value, n);
  open_group(Group::threshold);
  add(Group::threshold, "none");
  for (const auto& n : detail::band_names(params_.threshold_edges)) add(Group::threshold, n);
  open_group(Group::scope);
  for (int s = 0; s < kNumScopes; ++s) add(Group::scope, to_string(static_cast<Scope>(s)));
  open_group(Group::scenario);
  for (const auto& s : scenarios_) add(Group::scenario, s);
  open_group(Group::channel);
  for (const auto& c : channels_) add(Group::channel, c);
  group_start_[kNumGroups] = size();
}

PERKREC_INLINE BenefitDimensions BenefitDimensions::for_catalog(const Catalog& catalog,
                                                                Params params) {
  std::vector<std::string> scenarios, channels;
  for (const Benefit& b : catalog.benefits()) {
    scenarios.insert(scenarios.end(), b.scenarios.begin(), b.scenarios.end());
    channels.push_back(b.channel);
  }
  return BenefitDimensions(std::move(params), std::move(scenarios), std::move(channels));
}

PERKREC_INLINE const char* BenefitDimensions::group_name(Group g) {
  switch (g) {
    case Group::kind:
      return "kind";
    case Group::face_value:
      return "face_value";
    case Group::threshold:
      return "threshold";
    case Group::scope:
      return "scope";
    case Group::scenario:
      return "scenario";
    case Group::channel:
      return "channel";
  }
  return "?";
}

PERKREC_INLINE int BenefitDimensions::find(const std::string& name) const {
  for (std::size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) return static_cast<int>(i);
  }
  return -1;
}

PERKREC_INLINE double BenefitDimensions::effective_value(const Benefit& b) const {
  if (b.kind == BenefitKind::percent_off) return b.discount_rate * params_.typical_basket;
  return b.face_value;
}

PERKREC_INLINE int BenefitDimensions::face_value_band(const Benefit& b) const {
  return detail::band_of(effective_value(b), params_.face_value_edges);
}

PERKREC_INLINE int BenefitDimensions::threshold_band(const Benefit& b) const {
  if (b.threshold <= 0) return 0;
  return 1 + detail::band_of(b.threshold, params_.threshold_edges);
}

PERKREC_INLINE void BenefitDimensions::encode(const Benefit& b, std::vector<int>& out) const {
  out.push_back(group_begin(Group::kind) + static_cast<int>(b.kind));
  out.push_back(group_begin(Group::face_value) + face_value_band(b));
  out.push_back(group_begin(Group::threshold) + threshold_band(b));
  out.push_back(group_begin(Group::scope) + static_cast<int>(b.scope));
  for (const auto& s : b.scenarios) {
    for (std::size_t i = 0; i < scenarios_.size(); ++i) {
      if (scenarios_[i] == s) out.push_back(group_begin(Group::scenario) + static_cast<int>(i));
    }
  }
  for (std::size_t i = 0; i < channels_.size(); ++i) {
    if (channels_[i] == b.channel) out.push_back(group_begin(Group::channel) + static_cast<int>(i));
  }
}

}  // namespace perkrec
