// Definitions for decide/allocator_exact.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "perkrec/decide/allocator_exact.hpp"
#include "perkrec/decide/allocator_impl.hpp"

namespace perkrec {

// --- exact
// -----------------------------------------------------------------------------------------

PERKREC_INLINE Allocation allocate_exact(const CandidatesView& c, const AllocationConstraints& k,
                                         std::int64_t max_nodes) {
  using namespace detail::alloc;
  check_inputs(c, k, "allocate_exact", 1);
  if (max_nodes < 1) {
    detail::raise<ConfigError>("allocate_exact: max_nodes must be >= 1 (got ", max_nodes, ")");
  }
  AllocatorParams dp;
  dp.num_threads = 1;
  Allocation start = allocate(c, k, dp);
  Problem P(c, k);
  const Index n = c.n_users;
  // Feasible subsets per member (caps, kind caps, groups), best value first.
  struct Subset {
    double value, cost;
    std::vector<std::int32_t> local;
  };
  std::vector<std::vector<Subset>> subsets(static_cast<std::size_t>(n));
  std::int64_t total_subsets = 0;
  const int store = store_width(c, k, 1);
  std::vector<double> vals(static_cast<std::size_t>(store) + 2);
  std::vector<std::int32_t> kinds(static_cast<std::size_t>(store) + 2);
  for (Index u = 0; u < n; ++u) {
    std::vector<std::int32_t> ok;
    for (Offset i = P.begin(u); i < P.end(u); ++i) {
      if (P.allowed(u, i)) ok.push_back(static_cast<std::int32_t>(i - P.begin(u)));
    }
    auto& out = subsets[static_cast<std::size_t>(u)];
    out.push_back({0.0, 0.0, {}});
    std::vector<std::int32_t> cur;
    std::function<void(std::size_t)> rec = [&](std::size_t from) {
      for (std::size_t q = from; q < ok.size(); ++q) {
        double value = 0.0;
        if (!member_set_ok(P, u, cur.data(), static_cast<int>(cur.size()), -1, ok[q], &value,
                           vals.data(), kinds.data())) {
          continue;
        }
        cur.push_back(ok[q]);
        double cost = 0.0;
        for (std::int32_t j : cur) cost += c.cost[static_cast<std::size_t>(P.begin(u) + j)];
        out.push_back({value, cost, cur});
        if (++total_subsets > max_nodes) {
          detail::raise<InputError>("allocate_exact: instance too big (more than max_nodes = ",
                                    max_nodes, " member subsets)");
        }
        if (static_cast<int>(cur.size()) < P.cap(u)) rec(q + 1);
        cur.pop_back();
      }
    };
    rec(0);
    std::stable_sort(out.begin(), out.end(),
                     [](const Subset& a, const Subset& b) { return a.value > b.value; });
  }
  // Suffix bounds: for a few lambdas, sum over members >= u of the best subset's v - lambda c
  // (a Lagrangian relaxation of budget only; inventory and quotas are relaxed away).
  std::vector<double> lambdas{0.0};
  if (std::isfinite(k.budget)) {
    for (int e = -16; e <= 16 && start.multiplier > 0; ++e)
      lambdas.push_back(start.multiplier * std::exp2(e / 4.0));
  }
  const std::size_t nl = lambdas.size();
  std::vector<double> suffix((static_cast<std::size_t>(n) + 1) * nl, 0.0);
  for (Index u = n - 1; u >= 0; --u) {
    for (std::size_t q = 0; q < nl; ++q) {
      double best = 0.0;
      for (const Subset& s : subsets[static_cast<std::size_t>(u)])
        best = std::max(best, s.value - lambdas[q] * s.cost);
      suffix[static_cast<std::size_t>(u) * nl + q] =
          suffix[(static_cast<std::size_t>(u) + 1) * nl + q] + best;
    }
  }
  Ledger L = fresh_ledger(P);
  L.spent = 0.0;
  std::vector<int> pick(static_cast<std::size_t>(n), 0), best_pick;
  double best_value = start.value;
  bool improved = false;
  std::int64_t nodes = 0;
  const double eps = 1e-9 * std::max(1.0, std::fabs(start.value));
  std::function<void(Index, double)> dfs = [&](Index u, double value) {
    if (++nodes > max_nodes) {
      detail::raise<InputError>(
          "allocate_exact: instance too big (more than max_nodes = ", max_nodes, " nodes)");
    }
    if (u == n) {
      if (value > best_value + eps) {
        best_value = value;
        best_pick = pick;
        improved = true;
      }
      return;
    }
    double bound = kInf;
    const double room = k.budget - L.spent;
    for (std::size_t q = 0; q < nl; ++q) {
      const double extra = lambdas[q] > 0 ? lambdas[q] * room : 0.0;
      bound = std::min(bound, suffix[static_cast<std::size_t>(u) * nl + q] + extra);
    }
    if (value + bound <= best_value + eps) return;
    const Index seg = P.segment(u);
    const auto& subs = subsets[static_cast<std::size_t>(u)];
    for (std::size_t si = 0; si < subs.size(); ++si) {
      const Subset& s = subs[si];
      if (!s.local.empty()) {
        if (L.spent + s.cost > k.budget) continue;
        bool ok = true;
        for (std::int32_t j : s.local)
          ok = ok && L.inv_left[static_cast<std::size_t>(
                         c.benefit[static_cast<std::size_t>(P.begin(u) + j)])] != 0;
        if (!ok) continue;
        if (seg >= 0 && (L.seg_members_left[static_cast<std::size_t>(seg)] == 0 ||
                         (L.seg_cost_left[static_cast<std::size_t>(seg)] >= 0 &&
                          s.cost > L.seg_cost_left[static_cast<std::size_t>(seg)]))) {
          continue;
        }
        L.spent += s.cost;
        for (std::int32_t j : s.local) {
          auto& left = L.inv_left[static_cast<std::size_t>(
              c.benefit[static_cast<std::size_t>(P.begin(u) + j)])];
          if (left > 0) --left;
        }
        if (seg >= 0) {
          if (L.seg_members_left[static_cast<std::size_t>(seg)] > 0)
            --L.seg_members_left[static_cast<std::size_t>(seg)];
          if (L.seg_cost_left[static_cast<std::size_t>(seg)] >= 0)
            L.seg_cost_left[static_cast<std::size_t>(seg)] -= s.cost;
        }
        pick[static_cast<std::size_t>(u)] = static_cast<int>(si);
        dfs(u + 1, value + s.value);
        L.spent -= s.cost;
        for (std::int32_t j : s.local) {
          const Index b = c.benefit[static_cast<std::size_t>(P.begin(u) + j)];
          if (k.inventory.size() && k.inventory[static_cast<std::size_t>(b)] >= 0)
            ++L.inv_left[static_cast<std::size_t>(b)];
        }
        if (seg >= 0) {
          if (P.seg_max_members(seg) >= 0) ++L.seg_members_left[static_cast<std::size_t>(seg)];
          if (L.seg_cost_left[static_cast<std::size_t>(seg)] >= 0)
            L.seg_cost_left[static_cast<std::size_t>(seg)] += s.cost;
        }
      } else {
        pick[static_cast<std::size_t>(u)] = static_cast<int>(si);
        dfs(u + 1, value);
      }
    }
  };
  dfs(0, 0.0);
  if (!improved) {
    start.dual_bound = start.value;
    start.method = "exact";
    return start;
  }
  Plan plan;
  plan.store = store;
  plan.slots.assign(static_cast<std::size_t>(n) * static_cast<std::size_t>(store), 0);
  plan.count.assign(static_cast<std::size_t>(n), 0);
  Ledger F = fresh_ledger(P);
  for (Index u = 0; u < n; ++u) {
    const Subset& s = subsets[static_cast<std::size_t>(u)]
                             [static_cast<std::size_t>(best_pick[static_cast<std::size_t>(u)])];
    plan.count[static_cast<std::size_t>(u)] = static_cast<std::int32_t>(s.local.size());
    std::copy(s.local.begin(), s.local.end(), plan.at(u));
    F.spent += s.cost;
    const Index seg = P.segment(u);
    for (std::int32_t j : s.local) {
      auto& left =
          F.inv_left[static_cast<std::size_t>(c.benefit[static_cast<std::size_t>(P.begin(u) + j)])];
      if (left > 0) --left;
    }
    if (seg >= 0 && !s.local.empty()) {
      if (F.seg_members_left[static_cast<std::size_t>(seg)] > 0)
        --F.seg_members_left[static_cast<std::size_t>(seg)];
      if (F.seg_cost_left[static_cast<std::size_t>(seg)] >= 0)
        F.seg_cost_left[static_cast<std::size_t>(seg)] -= s.cost;
    }
  }
  Allocation a = finish(P, plan, F, start.multiplier, 1);
  a.dual_bound = a.value;
  a.iterations = 0;
  a.method = "exact";
  return a;
}

}  // namespace perkrec
