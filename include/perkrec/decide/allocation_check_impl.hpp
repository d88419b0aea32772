// Definitions for decide/allocation_check.hpp.
#pragma once

#include <cmath>
#include <sstream>
#include <string>

#include "perkrec/decide/allocation_check.hpp"
#include "perkrec/decide/allocator_impl.hpp"

namespace perkrec {

// --- check
// -----------------------------------------------------------------------------------------

PERKREC_INLINE std::string check_allocation(const CandidatesView& c, const AllocationConstraints& k,
                                            const Allocation& a) {
  using namespace detail::alloc;
  try {
    check_inputs(c, k, "check_allocation", 0);
  } catch (const Error& e) {
    return e.what();
  }
  const Problem P(c, k);
  const Index n = c.n_users;
  auto fail = [](auto&&... parts) {
    std::ostringstream os;
    (os << ... << parts);
    return os.str();
  };
  if (a.offsets.size() != static_cast<std::size_t>(n) + 1 || a.offsets.front() != 0 ||
      a.offsets.back() != static_cast<std::int64_t>(a.candidate.size()) ||
      a.benefit.size() != a.candidate.size()) {
    return fail("allocation: offsets/candidate/benefit shapes do not match ", n, " members");
  }
  const auto nb = static_cast<std::size_t>(c.n_benefits);
  std::vector<std::int64_t> used(nb, 0);
  const std::size_t ns = static_cast<std::size_t>(P.n_segments);
  std::vector<std::int64_t> seg_members(ns, 0);
  std::vector<double> seg_cost(ns, 0.0);
  double total_cost = 0.0, total_value = 0.0;
  std::vector<double> vals;
  std::vector<std::int32_t> kinds;
  for (Index u = 0; u < n; ++u) {
    const std::int64_t o0 = a.offsets[static_cast<std::size_t>(u)],
                       o1 = a.offsets[static_cast<std::size_t>(u) + 1];
    if (o1 < o0) return fail("allocation: offsets decrease at member ", u);
    const int cnt = static_cast<int>(o1 - o0);
    if (cnt == 0) continue;
    if (cnt > P.cap(u))
      return fail("member ", u, ": ", cnt, " benefits exceed its capacity ", P.cap(u));
    vals.clear();
    kinds.clear();
    double mc = 0.0;
    std::vector<std::int32_t> groups;
    for (std::int64_t q = o0; q < o1; ++q) {
      const std::int64_t i = a.candidate[static_cast<std::size_t>(q)];
      if (i < P.begin(u) || i >= P.end(u))
        return fail("member ", u, ": entry ", i, " is not one of its candidates");
      for (std::int64_t q2 = o0; q2 < q; ++q2) {
        if (a.candidate[static_cast<std::size_t>(q2)] == i)
          return fail("member ", u, ": entry ", i, " chosen twice");
      }
      const Index b = c.benefit[static_cast<std::size_t>(i)];
      if (a.benefit[static_cast<std::size_t>(q)] != b)
        return fail("member ", u, ": benefit of entry ", i, " does not match");
      const ExclusionReason why = P.static_reason(u, i);
      if (why != ExclusionReason::none) {
        return fail("member ", u, ": entry ", i, " (benefit ", b, ") is not allowed (",
                    exclusion_reason_name(why), ")");
      }
      const std::int32_t g = P.group(b);
      if (g >= 0) {
        if (std::find(groups.begin(), groups.end(), g) != groups.end()) {
          return fail("member ", u, ": two benefits of stacking group ", g);
        }
        groups.push_back(g);
      }
      vals.push_back(c.value[static_cast<std::size_t>(i)]);
      kinds.push_back(P.kind(b));
      mc += c.cost[static_cast<std::size_t>(i)];
      ++used[static_cast<std::size_t>(b)];
    }
    if (P.has_kind_caps) {
      for (std::size_t x = 0; x < kinds.size(); ++x) {
        const auto count = std::count(kinds.begin(), kinds.end(), kinds[x]);
        if (count > P.kind_cap(u, kinds[x])) {
          return fail("member ", u, ": ", count, " benefits of kind ", kinds[x],
                      " exceed its kind cap ", P.kind_cap(u, kinds[x]));
        }
      }
    }
    total_value += set_value(vals.data(), P.has_kinds ? kinds.data() : nullptr, cnt, P.diversity);
    total_cost += mc;
    const Index s = P.segment(u);
    if (s >= 0) {
      ++seg_members[static_cast<std::size_t>(s)];
      seg_cost[static_cast<std::size_t>(s)] += mc;
    }
  }
  const double tol = 1e-9;
  if (total_cost > k.budget * (1 + tol) + tol)
    return fail("budget: cost ", total_cost, " exceeds the budget ", k.budget);
  for (std::size_t b = 0; b < nb; ++b) {
    if (P.inventory(static_cast<Index>(b)) >= 0 && used[b] > P.inventory(static_cast<Index>(b))) {
      return fail("inventory: benefit ", b, " given ", used[b], " times (inventory ",
                  P.inventory(static_cast<Index>(b)), ")");
    }
  }
  for (std::size_t s = 0; s < ns; ++s) {
    const std::int64_t mm = P.seg_max_members(static_cast<Index>(s));
    const double mcq = P.seg_max_cost(static_cast<Index>(s));
    if (mm >= 0 && seg_members[s] > mm) {
      return fail("segment quota: segment ", s, " has ", seg_members[s], " members (max ", mm, ")");
    }
    if (mcq >= 0 && seg_cost[s] > mcq * (1 + tol) + tol) {
      return fail("segment quota: segment ", s, " costs ", seg_cost[s], " (max ", mcq, ")");
    }
  }
  const double vt = 1e-6 * std::max(1.0, std::fabs(total_value));
  if (std::fabs(total_value - a.value) > vt)
    return fail("value: allocation says ", a.value, ", entries sum to ", total_value);
  const double ct = 1e-6 * std::max(1.0, std::fabs(total_cost));
  if (std::fabs(total_cost - a.cost) > ct)
    return fail("cost: allocation says ", a.cost, ", entries sum to ", total_cost);
  return "";
}

}  // namespace perkrec
