// Definitions for decide/types.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_map>

#include "perkrec/decide/types.hpp"

namespace perkrec {

PERKREC_INLINE EligibilityMasks EligibilityMasks::from_dense(Span<const std::uint8_t> eligible,
                                                             Index n_users, Index n_benefits) {
  if (n_users < 0 || n_benefits < 0 ||
      eligible.size() != static_cast<std::size_t>(n_users) * static_cast<std::size_t>(n_benefits)) {
    detail::raise<InputError>(
        "EligibilityMasks::from_dense: eligible has ", eligible.size(),
        " entries (expected n_users x n_benefits = ",
        static_cast<std::int64_t>(n_users) * static_cast<std::int64_t>(n_benefits), ")");
  }
  EligibilityMasks built(n_users, n_benefits);  // mask 0 = all eligible
  // Rows as byte strings: equal rows share one mask.
  std::unordered_map<std::string, Index> seen;
  std::vector<std::int32_t> rule(static_cast<std::size_t>(n_benefits));
  seen.emplace(std::string(static_cast<std::size_t>(n_benefits), '\1'), 0);
  for (Index u = 0; u < n_users; ++u) {
    const std::uint8_t* row =
        eligible.data() + static_cast<std::size_t>(u) * static_cast<std::size_t>(n_benefits);
    std::string key(static_cast<std::size_t>(n_benefits), '\0');
    for (Index b = 0; b < n_benefits; ++b) key[static_cast<std::size_t>(b)] = row[b] ? '\1' : '\0';
    auto it = seen.find(key);
    if (it == seen.end()) {
      for (Index b = 0; b < n_benefits; ++b) rule[static_cast<std::size_t>(b)] = row[b] ? -1 : 0;
      it = seen.emplace(std::move(key), built.add_mask(rule)).first;
    }
    built.set_user_mask(u, it->second);
  }
  return built;
}

PERKREC_INLINE std::vector<std::uint8_t> EligibilityMasks::dense() const {
  std::vector<std::uint8_t> out(static_cast<std::size_t>(n_users_) *
                                static_cast<std::size_t>(n_benefits_));
  for (Index u = 0; u < n_users_; ++u) {
    for (Index b = 0; b < n_benefits_; ++b) {
      out[static_cast<std::size_t>(u) * static_cast<std::size_t>(n_benefits_) +
          static_cast<std::size_t>(b)] = eligible(u, b) ? 1 : 0;
    }
  }
  return out;
}

PERKREC_INLINE void Candidates::validate(const char* context) const {
  if (n_users < 0 || n_benefits < 0) {
    detail::raise<InputError>(context, ": candidates have negative shape (", n_users, " x ",
                              n_benefits, ")");
  }
  if (offsets.size() != static_cast<std::size_t>(n_users) + 1 || offsets.front() != 0 ||
      offsets.back() != static_cast<std::int64_t>(benefit.size())) {
    detail::raise<InputError>(context, ": candidates.offsets has ", offsets.size(),
                              " entries ending at ", offsets.empty() ? 0 : offsets.back(),
                              " (expected n_users + 1 = ", static_cast<std::int64_t>(n_users) + 1,
                              " entries from 0 to ", benefit.size(), ")");
  }
  const std::size_t n = benefit.size();
  if (value.size() != n || cost.size() != n || (!probability.empty() && probability.size() != n)) {
    detail::raise<InputError>(context, ": candidates.value/cost/probability have ", value.size(),
                              "/", cost.size(), "/", probability.size(), " entries (expected ", n,
                              ", probability may be empty)");
  }
  for (Index u = 0; u < n_users; ++u) {
    if (offsets[static_cast<std::size_t>(u) + 1] < offsets[static_cast<std::size_t>(u)]) {
      detail::raise<InputError>(context, ": candidates.offsets decrease at member ", u);
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (benefit[i] < 0 || benefit[i] >= n_benefits) {
      detail::raise<InputError>(context, ": candidates.benefit[", i, "] out of range (got ",
                                benefit[i], ", expected 0 <= benefit < ", n_benefits, ")");
    }
    if (!std::isfinite(value[i])) {
      detail::raise<InputError>(context, ": candidates.value[", i, "] is not finite (got ",
                                value[i], ")");
    }
    if (!std::isfinite(cost[i]) || cost[i] < 0) {
      detail::raise<InputError>(context, ": candidates.cost[", i, "] must be finite and >= 0 (got ",
                                cost[i], ")");
    }
    if (!probability.empty() && !(probability[i] >= 0 && probability[i] <= 1)) {
      detail::raise<InputError>(context, ": candidates.probability[", i,
                                "] must be in [0, 1] (got ", probability[i], ")");
    }
  }
}

PERKREC_INLINE void AllocationConstraints::validate(Index n_users, Index n_benefits) const {
  auto size_check = [](const char* name, std::size_t got, std::size_t expected) {
    if (got != 0 && got != expected) {
      detail::raise<InputError>("AllocationConstraints: ", name, " has ", got,
                                " entries (expected ", expected, " or none)");
    }
  };
  const auto nu = static_cast<std::size_t>(n_users);
  const auto nb = static_cast<std::size_t>(n_benefits);
  if (std::isnan(budget) || budget < 0) {
    detail::raise<ConfigError>("AllocationConstraints: budget must be >= 0 (got ", budget, ")");
  }
  if (max_per_member < 1) {
    detail::raise<ConfigError>("AllocationConstraints: max_per_member must be >= 1 (got ",
                               max_per_member, ")");
  }
  if (max_per_kind < 0) {
    detail::raise<ConfigError>("AllocationConstraints: max_per_kind must be >= 0 (got ",
                               max_per_kind, ")");
  }
  if (!(min_return_per_cost >= 0) || !std::isfinite(min_return_per_cost)) {
    detail::raise<ConfigError>(
        "AllocationConstraints: min_return_per_cost must be finite and >= 0 (got ",
        min_return_per_cost, ")");
  }
  if (!(diversity >= 0 && diversity <= 1)) {
    detail::raise<ConfigError>("AllocationConstraints: diversity must be in [0, 1] (got ",
                               diversity, ")");
  }
  size_check("member_capacity", member_capacity.size(), nu);
  size_check("inventory", inventory.size(), nb);
  size_check("benefit_kind", benefit_kind.size(), nb);
  size_check("benefit_group", benefit_group.size(), nb);
  size_check("member_segment", member_segment.size(), nu);
  if (n_kinds < 0) {
    detail::raise<InputError>("AllocationConstraints: n_kinds must be >= 0 (got ", n_kinds, ")");
  }
  size_check("member_kind_capacity", member_kind_capacity.size(),
             nu * static_cast<std::size_t>(n_kinds));
  if ((max_per_kind > 0 || !member_kind_capacity.empty() || diversity > 0) &&
      benefit_kind.empty()) {
    detail::raise<InputError>(
        "AllocationConstraints: max_per_kind / member_kind_capacity / diversity "
        "need benefit_kind (one kind code per benefit)");
  }
  for (std::size_t i = 0; i < member_capacity.size(); ++i) {
    if (member_capacity[i] < 0) {
      detail::raise<InputError>("AllocationConstraints: member_capacity[", i,
                                "] must be >= 0 (got ", member_capacity[i], ")");
    }
  }
  for (std::size_t i = 0; i < inventory.size(); ++i) {
    if (inventory[i] < -1) {
      detail::raise<InputError>("AllocationConstraints: inventory[", i,
                                "] must be >= 0 or -1 for unlimited (got ", inventory[i], ")");
    }
  }
  for (std::size_t i = 0; i < benefit_kind.size(); ++i) {
    if (benefit_kind[i] < 0 || (n_kinds > 0 && benefit_kind[i] >= n_kinds)) {
      detail::raise<InputError>("AllocationConstraints: benefit_kind[", i, "] out of range (got ",
                                benefit_kind[i], ", n_kinds ", n_kinds, ")");
    }
  }
  for (std::size_t i = 0; i < member_kind_capacity.size(); ++i) {
    if (member_kind_capacity[i] < 0) {
      detail::raise<InputError>("AllocationConstraints: member_kind_capacity[", i,
                                "] must be >= 0 (got ", member_kind_capacity[i], ")");
    }
  }
  for (std::size_t i = 0; i < benefit_group.size(); ++i) {
    if (benefit_group[i] < -1) {
      detail::raise<InputError>("AllocationConstraints: benefit_group[", i, "] must be >= -1 (got ",
                                benefit_group[i], ")");
    }
  }
  const std::size_t n_segments = std::max(segment_max_members.size(), segment_max_cost.size());
  size_check("segment_max_members", segment_max_members.size(), n_segments);
  size_check("segment_max_cost", segment_max_cost.size(), n_segments);
  for (std::size_t i = 0; i < member_segment.size(); ++i) {
    if (member_segment[i] < -1) {
      detail::raise<InputError>("AllocationConstraints: member_segment[", i,
                                "] must be >= -1 (got ", member_segment[i], ")");
    }
  }
  for (std::size_t i = 0; i < segment_max_members.size(); ++i) {
    if (segment_max_members[i] < -1) {
      detail::raise<InputError>("AllocationConstraints: segment_max_members[", i,
                                "] must be >= 0 or -1 (got ", segment_max_members[i], ")");
    }
  }
  for (std::size_t i = 0; i < segment_max_cost.size(); ++i) {
    if (std::isnan(segment_max_cost[i])) {
      detail::raise<InputError>("AllocationConstraints: segment_max_cost[", i, "] is NaN");
    }
  }
}

PERKREC_INLINE std::vector<std::int64_t> find_candidates(const Candidates& candidates,
                                                         Span<const Index> users,
                                                         Span<const Index> benefits) {
  if (users.size() != benefits.size()) {
    detail::raise<InputError>("find_candidates: users and benefits have ", users.size(), " and ",
                              benefits.size(), " entries (expected the same)");
  }
  candidates.validate("find_candidates");
  std::vector<std::int64_t> out(users.size(), -1);
  for (std::size_t i = 0; i < users.size(); ++i) {
    const Index u = users[i];
    if (u < 0 || u >= candidates.n_users) continue;
    const auto uz = static_cast<std::size_t>(u);
    for (std::int64_t e = candidates.offsets[uz]; e < candidates.offsets[uz + 1]; ++e) {
      if (candidates.benefit[static_cast<std::size_t>(e)] == benefits[i]) {
        out[i] = e;
        break;
      }
    }
  }
  return out;
}

PERKREC_INLINE BestIneligible best_ineligible(const EligibilityMasks& masks,
                                              Span<const double> key) {
  const auto n = static_cast<std::size_t>(masks.n_users());
  const auto nb = static_cast<std::size_t>(masks.n_benefits());
  if (key.size() != n * nb) {
    detail::raise<InputError>("best_ineligible: key has ", key.size(), " values (expected ", n,
                              " x ", nb, ")");
  }
  BestIneligible out;
  out.benefit.assign(n, -1);
  out.rule.assign(n, -1);
  for (std::size_t u = 0; u < n; ++u) {
    const double* row = key.data() + u * nb;
    std::ptrdiff_t best = -1;
    bool nan = false;
    for (std::size_t b = 0; b < nb; ++b) {
      if (masks.eligible(static_cast<Index>(u), static_cast<Index>(b))) continue;
      if (std::isnan(row[b])) {
        nan = true;  // numpy's argmax stops at the first NaN, which is not finite
        break;
      }
      if (best < 0 || row[b] > row[best]) best = static_cast<std::ptrdiff_t>(b);
    }
    if (nan || best < 0 || !std::isfinite(row[best])) continue;
    out.benefit[u] = static_cast<Index>(best);
    out.rule[u] = masks.user_rule(static_cast<Index>(u), static_cast<Index>(best));
  }
  return out;
}

}  // namespace perkrec
