// Definitions for decide/allocator.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <sstream>
#include <utility>

#include "perkrec/core/threading.hpp"
#include "perkrec/decide/allocator.hpp"

namespace perkrec {

namespace detail::alloc {

constexpr Index kBlock = 2048;  // members per block: the unit of work and of every reduction
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int kNoLimit = std::numeric_limits<int>::max();
// Large instances: a price round leaves an inventory or segment limit alone while its use is within
// this relative band of the limit (the repair and fill passes settle the last units).
constexpr double kLimitSlack = 0.005;

inline Offset n_blocks(Index n) { return (static_cast<Offset>(n) + kBlock - 1) / kBlock; }

// Sum of per-block partials in block order (deterministic for any thread count).
inline double ordered_sum(const std::vector<double>& parts) {
  double s = 0.0;
  for (double v : parts) s += v;
  return s;
}

// The constraints resolved for fast per-member / per-benefit queries.
struct Problem {
  const CandidatesView& c;
  const AllocationConstraints& k;
  bool has_kinds = false;
  bool has_kind_caps = false;
  bool has_groups = false;
  bool has_inventory_limits = false;
  bool has_segment_limits = false;
  bool member_constraints = false;  // groups, kind caps or diversity: the general greedy
  double diversity = 0.0;
  Index n_segments = 0;  // codes with a (possible) limit
  int max_row = 0;       // longest candidate row
  int store = 1;         // chosen slots kept per member

  Problem(const CandidatesView& cv, const AllocationConstraints& kv) : c(cv), k(kv) {
    has_kinds = !k.benefit_kind.empty();
    has_kind_caps = has_kinds && (k.max_per_kind > 0 || !k.member_kind_capacity.empty());
    has_groups = false;
    for (std::int32_t g : k.benefit_group) has_groups = has_groups || g >= 0;
    for (std::int64_t v : k.inventory) has_inventory_limits = has_inventory_limits || v >= 0;
    n_segments =
        static_cast<Index>(std::max(k.segment_max_members.size(), k.segment_max_cost.size()));
    for (Index s = 0; s < n_segments; ++s) {
      has_segment_limits = has_segment_limits || seg_max_members(s) >= 0 || seg_max_cost(s) >= 0;
    }
    if (k.member_segment.empty()) has_segment_limits = false;
    diversity = has_kinds ? k.diversity : 0.0;
    member_constraints = has_groups || has_kind_caps || diversity > 0;
  }

  Offset begin(Index u) const { return c.offsets[static_cast<std::size_t>(u)]; }
  Offset end(Index u) const { return c.offsets[static_cast<std::size_t>(u) + 1]; }
  int cap(Index u) const {
    int cap = k.max_per_member;
    if (!k.member_capacity.empty())
      cap = std::min<int>(cap, k.member_capacity[static_cast<std::size_t>(u)]);
    const Index s = segment(u);
    if (s >= 0 && seg_max_members(s) == 0) cap = 0;
    return cap;
  }
  int kind_cap(Index u, std::int32_t kind) const {
    if (!has_kind_caps || kind < 0) return kNoLimit;
    int cap = k.max_per_kind > 0 ? k.max_per_kind : kNoLimit;
    if (!k.member_kind_capacity.empty() && kind < k.n_kinds) {
      cap = std::min<int>(
          cap,
          k.member_kind_capacity[static_cast<std::size_t>(u) * static_cast<std::size_t>(k.n_kinds) +
                                 static_cast<std::size_t>(kind)]);
    }
    return cap;
  }
  std::int32_t kind(Index b) const {
    return has_kinds ? k.benefit_kind[static_cast<std::size_t>(b)] : -1;
  }
  std::int32_t group(Index b) const {
    return has_groups ? k.benefit_group[static_cast<std::size_t>(b)] : -1;
  }
  std::int64_t inventory(Index b) const {
    return k.inventory.empty() ? -1 : k.inventory[static_cast<std::size_t>(b)];
  }
  Index segment(Index u) const {
    if (k.member_segment.empty()) return -1;
    const Index s = k.member_segment[static_cast<std::size_t>(u)];
    return s >= 0 && s < n_segments ? s : -1;
  }
  std::int64_t seg_max_members(Index s) const {
    return static_cast<std::size_t>(s) < k.segment_max_members.size()
               ? k.segment_max_members[static_cast<std::size_t>(s)]
               : -1;
  }
  double seg_max_cost(Index s) const {
    return static_cast<std::size_t>(s) < k.segment_max_cost.size()
               ? k.segment_max_cost[static_cast<std::size_t>(s)]
               : -1.0;
  }
  /// Why entry i of member u can never be chosen (none = it may be).
  ExclusionReason static_reason(Index u, Offset i) const {
    const float v = c.value[static_cast<std::size_t>(i)];
    const float w = c.cost[static_cast<std::size_t>(i)];
    const Index b = c.benefit[static_cast<std::size_t>(i)];
    if (!(v > 0)) return ExclusionReason::not_positive;
    if (k.min_return_per_cost > 0 &&
        static_cast<double>(v) < k.min_return_per_cost * static_cast<double>(w)) {
      return ExclusionReason::min_return;
    }
    if (inventory(b) == 0) return ExclusionReason::inventory;
    if (cap(u) <= 0)
      return segment(u) >= 0 && seg_max_members(segment(u)) == 0 ? ExclusionReason::segment_quota
                                                                 : ExclusionReason::member_cap;
    if (kind_cap(u, kind(b)) <= 0) return ExclusionReason::kind_cap;
    const Index s = segment(u);
    if (s >= 0 && seg_max_cost(s) >= 0 && static_cast<double>(w) > seg_max_cost(s))
      return ExclusionReason::segment_quota;
    return ExclusionReason::none;
  }
  bool allowed(Index u, Offset i) const {
    if (!allowed_cache.empty()) return allowed_cache[static_cast<std::size_t>(i)] != 0;
    return static_reason(u, i) == ExclusionReason::none;
  }
  std::vector<std::uint8_t> allowed_cache;  // per entry, filled by cache_allowed (or empty)
  /// Evaluates static_reason once per entry when any per-entry limit makes it non-trivial.
  void cache_allowed(int threads) {
    const bool trivial = k.min_return_per_cost <= 0 && !has_inventory_limits && !has_kind_caps &&
                         k.member_capacity.empty() && !has_segment_limits;
    if (trivial) return;
    std::vector<std::uint8_t> cache(static_cast<std::size_t>(c.size()));
    const Index n = c.n_users;
    parallel_for(0, n_blocks(n), threads, [&](Offset blk) {
      const Index u0 = static_cast<Index>(blk * kBlock);
      const Index u1 = static_cast<Index>(std::min<Offset>(n, (blk + 1) * kBlock));
      for (Index u = u0; u < u1; ++u) {
        for (Offset i = begin(u); i < end(u); ++i) {
          cache[static_cast<std::size_t>(i)] = static_reason(u, i) == ExclusionReason::none ? 1 : 0;
        }
      }
    });
    allowed_cache = std::move(cache);
  }
};

struct Prices {
  double lambda = 0.0;
  std::vector<double> mu;   // per benefit (empty = 0)
  std::vector<double> nu;   // per segment cost quota (empty = 0)
  std::vector<double> rho;  // per segment member quota (empty = 0)
  double mu_of(Index b) const { return mu.empty() ? 0.0 : mu[static_cast<std::size_t>(b)]; }
  double nu_of(Index s) const {
    return s < 0 || nu.empty() ? 0.0 : nu[static_cast<std::size_t>(s)];
  }
  double rho_of(Index s) const {
    return s < 0 || rho.empty() ? 0.0 : rho[static_cast<std::size_t>(s)];
  }
};

// The value of a set under the diversity discount, for `n` (value, kind) pairs.
inline double set_value(const double* values, const std::int32_t* kinds, int n, double diversity) {
  double total = 0.0;
  for (int i = 0; i < n; ++i) total += values[i];
  if (diversity <= 0 || kinds == nullptr) return total;
  // For each kind: the best counts in full, the rest x (1 - d): total - d x (sum - max).
  double discount = 0.0;
  for (int i = 0; i < n; ++i) {
    bool first = true;
    for (int j = 0; j < i; ++j) first = first && kinds[j] != kinds[i];
    if (!first || kinds[i] < 0) continue;
    double sum = 0.0, best = -kInf;
    for (int j = i; j < n; ++j) {
      if (kinds[j] == kinds[i]) {
        sum += values[j];
        best = std::max(best, values[j]);
      }
    }
    discount += sum - best;
  }
  return total - diversity * discount;
}

// Per-thread scratch for the member problems.
struct Scratch {
  std::vector<double> adj;           // adjusted value per row entry (-inf = not allowed)
  std::vector<double> top;           // positives for the relaxed top-capacity sum
  std::vector<std::int32_t> chosen;  // local indices
  std::vector<double> vals;
  std::vector<std::int32_t> kinds;
  std::vector<std::int32_t> groups;
  std::vector<std::pair<double, std::int32_t>> order;
};

struct MemberResult {
  int n = 0;           // chosen count (local indices in scratch.chosen, ascending)
  double value = 0.0;  // diversity-aware value
  double cost = 0.0;
  double relaxed = 0.0;  // relaxed Lagrangian member value (>= 0)
  double topsum = 0.0;   // relaxed top-capacity sum before rho
  double surplus = 0.0;  // adjusted value of the chosen set (before rho), 0 when none chosen
};

// Member u's problem at the given prices: greedy under caps, kind caps, stacking groups and
// diversity; relaxed value for the dual bound. `exclude`: a benefit the member may not take
// (-1 = none), for the value of the member's problem without it.
inline void solve_member(const Problem& P, const Prices& pr, Index u, Scratch& s, MemberResult& r,
                         Index exclude = -1) {
  r = MemberResult{};
  const Offset b0 = P.begin(u), b1 = P.end(u);
  const int n = static_cast<int>(b1 - b0);
  const int cap = n > 0 ? P.cap(u) : 0;
  if (cap <= 0) return;
  const Index seg = P.segment(u);
  const double price = pr.lambda + pr.nu_of(seg);
  const double rho = pr.rho_of(seg);
  if (s.adj.size() < static_cast<std::size_t>(n)) s.adj.resize(static_cast<std::size_t>(n));
  const float* v = P.c.value.data() + b0;
  const float* w = P.c.cost.data() + b0;
  const Index* bb = P.c.benefit.data() + b0;
  const bool simple_filter = P.k.min_return_per_cost <= 0 && !P.has_inventory_limits &&
                             !P.has_kind_caps && !(seg >= 0 && P.seg_max_cost(seg) >= 0);
  int best = -1;
  double best_adj = 0.0;
  if (cap == 1 && simple_filter && pr.mu.empty() && rho <= 0 && exclude < 0) {
    // Hot path (one slot, no per-entry limits): the best positive adjusted value.
    for (int j = 0; j < n; ++j) {
      const double a = static_cast<double>(v[j]) - price * static_cast<double>(w[j]);
      if (a > best_adj && v[j] > 0) {
        best_adj = a;
        best = j;
      }
    }
    if (best < 0 || !(best_adj > 0)) return;
    r.topsum = r.relaxed = r.surplus = best_adj;
    s.chosen.assign(1, best);
    r.n = 1;
    r.value = v[best];
    r.cost = w[best];
    return;
  }
  int n_pos = 0;
  s.order.clear();  // positive entries (by position), for the top sum and the greedy below
  for (int j = 0; j < n; ++j) {
    double a;
    if ((simple_filter ? !(v[j] > 0) : !P.allowed(u, b0 + j)) || bb[j] == exclude) {
      a = -kInf;
    } else {
      a = static_cast<double>(v[j]) - price * static_cast<double>(w[j]) - pr.mu_of(bb[j]);
    }
    s.adj[static_cast<std::size_t>(j)] = a;
    if (a > 0) {
      ++n_pos;
      if (cap > 1) s.order.emplace_back(-a, j);
      if (a > best_adj) {
        best_adj = a;
        best = j;
      }
    }
  }
  if (n_pos == 0) return;
  // Relaxed top-capacity sum.
  if (cap == 1 || n_pos == 1) {
    r.topsum = best_adj;
  } else {
    s.top.clear();
    for (const auto& entry : s.order) s.top.push_back(-entry.first);
    if (static_cast<int>(s.top.size()) > cap) {
      std::nth_element(s.top.begin(), s.top.begin() + (cap - 1), s.top.end(),
                       std::greater<double>());
      s.top.resize(static_cast<std::size_t>(cap));
    }
    std::sort(s.top.begin(), s.top.end(), std::greater<double>());  // fixed summation order
    for (double a : s.top) r.topsum += a;
  }
  r.relaxed = std::max(0.0, r.topsum - rho);
  // Greedy choice.
  s.chosen.clear();
  double surplus = 0.0;
  if (cap == 1) {
    s.chosen.push_back(best);
    surplus = best_adj;
  } else if (!P.member_constraints) {
    const std::size_t take = std::min<std::size_t>(static_cast<std::size_t>(cap), s.order.size());
    std::partial_sort(s.order.begin(), s.order.begin() + static_cast<std::ptrdiff_t>(take),
                      s.order.end());
    for (std::size_t t = 0; t < take; ++t) {
      s.chosen.push_back(s.order[t].second);
      surplus -= s.order[t].first;
    }
  } else {
    s.vals.clear();
    s.kinds.clear();
    s.groups.clear();
    for (int step = 0; step < cap; ++step) {
      int pick = -1;
      double pick_a = 0.0;
      for (const auto& entry : s.order) {
        const int j = entry.second;
        const double a0 = -entry.first;
        if (std::find(s.chosen.begin(), s.chosen.end(), j) != s.chosen.end()) continue;
        const std::int32_t g = P.group(bb[j]);
        if (g >= 0 && std::find(s.groups.begin(), s.groups.end(), g) != s.groups.end()) continue;
        const std::int32_t kd = P.kind(bb[j]);
        double marginal = static_cast<double>(v[j]);
        if (kd >= 0) {
          int count = 0;
          double kmax = -kInf;
          for (std::size_t t = 0; t < s.kinds.size(); ++t) {
            if (s.kinds[t] == kd) {
              ++count;
              kmax = std::max(kmax, s.vals[t]);
            }
          }
          if (count >= P.kind_cap(u, kd)) continue;
          if (count > 0 && P.diversity > 0) {
            marginal = v[j] <= kmax ? v[j] * (1.0 - P.diversity) : v[j] - P.diversity * kmax;
          }
        }
        const double a = a0 + (marginal - static_cast<double>(v[j]));
        if (a > pick_a) {
          pick_a = a;
          pick = j;
        }
      }
      if (pick < 0) break;
      s.chosen.push_back(pick);
      s.vals.push_back(v[pick]);
      s.kinds.push_back(P.kind(bb[pick]));
      const std::int32_t g = P.group(bb[pick]);
      if (g >= 0) s.groups.push_back(g);
      surplus += pick_a;
    }
  }
  if (s.chosen.empty() || (rho > 0 && surplus <= rho)) {
    s.chosen.clear();
    return;
  }
  r.surplus = surplus;
  std::sort(s.chosen.begin(), s.chosen.end());
  r.n = static_cast<int>(s.chosen.size());
  s.vals.clear();
  s.kinds.clear();
  for (std::int32_t j : s.chosen) {
    s.vals.push_back(v[j]);
    s.kinds.push_back(P.kind(bb[j]));
    r.cost += w[j];
  }
  r.value = set_value(s.vals.data(), P.has_kinds ? s.kinds.data() : nullptr, r.n, P.diversity);
}

// The current plan: per member up to `store` chosen local indices (ascending).
struct Plan {
  int store = 1;
  std::vector<std::int32_t> slots;  // n_users x store
  std::vector<std::int32_t> count;  // n_users
  std::int32_t* at(Index u) {
    return slots.data() + static_cast<std::size_t>(u) * static_cast<std::size_t>(store);
  }
  const std::int32_t* at(Index u) const {
    return slots.data() + static_cast<std::size_t>(u) * static_cast<std::size_t>(store);
  }
};

struct EvalResult {
  double spend = 0.0;
  double relaxed = 0.0;  // sum of relaxed member values
  double value = 0.0;
};

// Evaluates every `stride`-th member (stride 1 = all) at `pr`; stores the choice in `plan`
// when given (stride must be 1).
inline EvalResult evaluate(const Problem& P, const Prices& pr, int threads, Index stride,
                           Plan* plan) {
  const Index n_members = stride == 1 ? P.c.n_users : (P.c.n_users + stride - 1) / stride;
  const Offset nb = n_blocks(n_members);
  std::vector<double> spend(static_cast<std::size_t>(nb)), relaxed(static_cast<std::size_t>(nb)),
      value(static_cast<std::size_t>(nb));
  std::vector<Scratch> scratch(static_cast<std::size_t>(resolve_num_threads(threads)));
  parallel_for(
      0, nb, threads,
      [&](Offset blk, int tid) {
        Scratch& s = scratch[static_cast<std::size_t>(tid)];
        MemberResult r;
        double sp = 0.0, rl = 0.0, vl = 0.0;
        const Index i0 = static_cast<Index>(blk * kBlock);
        const Index i1 = static_cast<Index>(std::min<Offset>(n_members, (blk + 1) * kBlock));
        for (Index i = i0; i < i1; ++i) {
          const Index u = i * stride;
          solve_member(P, pr, u, s, r);
          sp += r.cost;
          rl += r.relaxed;
          vl += r.value;
          if (plan != nullptr) {
            plan->count[static_cast<std::size_t>(u)] = r.n;
            std::copy(s.chosen.begin(), s.chosen.begin() + r.n, plan->at(u));
          }
        }
        spend[static_cast<std::size_t>(blk)] = sp;
        relaxed[static_cast<std::size_t>(blk)] = rl;
        value[static_cast<std::size_t>(blk)] = vl;
      },
      Schedule::dynamic, 4);
  return {ordered_sum(spend), ordered_sum(relaxed), ordered_sum(value)};
}

// The dual function's constant part: lambda B + sum mu inv + sum nu Q + sum rho M.
inline double dual_constant(const Problem& P, const Prices& pr) {
  double d = 0.0;
  if (pr.lambda > 0) d += pr.lambda * P.k.budget;
  for (std::size_t b = 0; b < pr.mu.size(); ++b) {
    if (pr.mu[b] > 0) d += pr.mu[b] * static_cast<double>(P.k.inventory[b]);
  }
  for (std::size_t s = 0; s < pr.nu.size(); ++s) {
    if (pr.nu[s] > 0) d += pr.nu[s] * P.seg_max_cost(static_cast<Index>(s));
  }
  for (std::size_t s = 0; s < pr.rho.size(); ++s) {
    if (pr.rho[s] > 0)
      d += pr.rho[s] * static_cast<double>(P.seg_max_members(static_cast<Index>(s)));
  }
  return d;
}

inline void check_stop(const Callbacks& cb, const char* stage) {
  if (cb.should_stop && cb.should_stop())
    detail::raise<Interrupted>(stage, ": interrupted by the caller");
}

// State of the Lagrangian search.
struct Solver {
  const Problem& P;
  const AllocatorParams& params;
  const Callbacks& cb;
  int threads;
  double lambda_max = 0.0;    // above it every costly entry has negative adjusted value
  std::vector<double> tried;  // multipliers evaluated by the last search (full data)
  double warm_step = 0.01;    // first probe step of a warm-started search (relative)
  double slope = 0.0;         // d spend / d lambda over the last search's bracket (0 = none)
  double bound = kInf;
  int iterations = 0;
  std::int64_t evaluations = 0;

  Solver(const Problem& problem, const AllocatorParams& p, const Callbacks& callbacks,
         int n_threads)
      : P(problem), params(p), cb(callbacks), threads(n_threads) {}

  Plan spare;  // a search's probes store their plan here; one that fits swaps with the result's

  // A search's probe: evaluates into `spare` and records the multiplier as tried.
  EvalResult probe_eval(const Prices& pr) {
    const EvalResult r = eval(pr, &spare);
    tried.push_back(pr.lambda);
    return r;
  }

  EvalResult eval(const Prices& pr, Plan* plan = nullptr) {
    const EvalResult r = evaluate(P, pr, threads, 1, plan);
    if (plan == nullptr) tried.push_back(pr.lambda);
    ++evaluations;
    if (cb.progress) cb.progress("allocate", evaluations, 0);
    check_stop(cb, "allocate");
    // Any nonnegative prices give an upper bound (budget term only with a finite budget).
    if (std::isfinite(P.k.budget) || pr.lambda == 0)
      bound = std::min(bound, r.relaxed + dual_constant(P, pr));
    return r;
  }

  // Finds lambda for the budget given the other prices; stores the plan at the result. `warm`
  // (> 0): the previous price round's lambda, bracketed first by probes around it (a price
  // round moves lambda little) instead of from lambda = 0 and a sample.
  double search(Prices& pr, Plan& plan, double warm = 0.0) {
    int iterations = 0;  // this search's evaluations (the member counts all of them)
    struct Count {
      int& local;
      int& total;
      ~Count() { total += local; }
    } count{iterations, this->iterations};
    const double B = P.k.budget;
    tried.clear();
    pr.lambda = 0.0;
    spare.store = plan.store;
    spare.slots.resize(plan.slots.size());
    spare.count.resize(plan.count.size());
    double stored = -1.0;  // the multiplier whose plan `plan` holds (-1 = none)
    if (!std::isfinite(B)) {
      eval(pr, &plan);
      return 0.0;
    }
    double lo = 0.0, f_lo = 0.0;
    double hi = lambda_max * (1.0 + 1e-9) + 1e-300, f_hi = -B;  // nothing costly chosen
    // Evaluates lambda, narrows the bracket; true when the spend fits the budget.
    auto probe = [&](double lam) {
      pr.lambda = lam;
      const EvalResult r = probe_eval(pr);
      ++iterations;
      if (r.spend > B) {
        lo = lam;
        f_lo = r.spend - B;
        return false;
      }
      hi = lam;
      f_hi = r.spend - B;
      std::swap(plan, spare);
      stored = lam;
      return true;
    };
    // From a guess: probes first_delta, 4x, 16x, ... (below 100%) above it until one fits,
    // then below it until one does not.
    auto bracket_around = [&](double guess, double first_delta) {
      for (double delta = first_delta; delta < 1 && iterations < params.max_iterations;
           delta *= 4) {
        const double lam = guess * (1 + delta);
        if (!(lam > lo && lam < hi) || probe(lam)) break;
      }
      for (double delta = first_delta; delta < 1 && iterations < params.max_iterations;
           delta *= 4) {
        const double lam = guess * (1 - delta);
        if (!(lam > lo && lam < hi) || !probe(lam)) break;
      }
    };
    if (warm > 0 && warm < hi) {
      const double hi0 = hi;
      const bool fits = probe(warm);
      double guess = warm;
      if (slope < 0 && !(fits && -f_hi <= params.budget_gap * B) &&
          iterations < params.max_iterations) {
        // The last search's slope of the spend: aim just inside the budget gap.
        const double lam = warm - ((fits ? f_hi : f_lo) + 0.5 * params.budget_gap * B) / slope;
        if (lam > lo && lam < hi) {
          probe(lam);
          guess = lam;
        }
      }
      if (!(lo > 0 && hi < hi0)) bracket_around(guess, warm_step);
    }
    const auto settle = [&](double lam) {  // the next warm start's first step: this round's move
      if (warm > 0) warm_step = std::min(0.01, std::max(1e-4, std::abs(lam - warm) / warm));
      return lam;
    };
    if (lo == 0.0) {  // no lambda above the budget yet: lambda = 0 may fit
      pr.lambda = 0.0;
      const EvalResult r0 = probe_eval(pr);
      if (r0.spend <= B) {
        std::swap(plan, spare);
        return settle(0.0);
      }
      f_lo = r0.spend - B;
      // Large instances without a warm start: bracket lambda on a strided sample first.
      const Index n = P.c.n_users;
      if (n >= 200000 && !(warm > 0)) {
        const Index stride = std::max<Index>(20, n / 50000);
        pr.lambda = 0.0;
        const EvalResult s0 = evaluate(P, pr, threads, stride, nullptr);
        if (s0.spend > 0) {
          const double Bs = B * s0.spend / r0.spend;
          double slo = 0.0, shi = hi;
          for (int it = 0; it < 60 && shi - slo > 1e-4 * shi; ++it) {
            pr.lambda = 0.5 * (slo + shi);
            (evaluate(P, pr, threads, stride, nullptr).spend > Bs ? slo : shi) = pr.lambda;
          }
          bracket_around(0.5 * (slo + shi), 0.01);
        }
      }
    }
    // Bracketed search: regula falsi with the Illinois modification, bisection as a guard.
    int side = 0;
    double w_lo = 1.0, w_hi = 1.0;
    while (iterations < params.max_iterations) {
      if (hi - lo <= params.tolerance * hi) break;
      if (-f_hi <= params.budget_gap * B) break;
      double lam = (lo * (f_hi * w_hi) - hi * (f_lo * w_lo)) / (f_hi * w_hi - f_lo * w_lo);
      const double width = hi - lo;
      if (!(lam > lo + 1e-3 * width && lam < hi - 1e-3 * width) || iterations % 4 == 3)
        lam = 0.5 * (lo + hi);
      pr.lambda = lam;
      const EvalResult r = probe_eval(pr);
      ++iterations;
      if (r.spend > B) {
        lo = lam;
        f_lo = r.spend - B;
        w_lo = 1.0;
        if (side == -1) w_hi *= 0.5;
        side = -1;
      } else {
        hi = lam;
        f_hi = r.spend - B;
        w_hi = 1.0;
        if (side == 1) w_lo *= 0.5;
        side = 1;
        std::swap(plan, spare);
        stored = lam;
      }
    }
    if (lo > 0 && hi > lo && f_lo > 0 && f_hi < 0) slope = (f_hi - f_lo) / (hi - lo);
    pr.lambda = hi;
    if (stored != hi) eval(pr, &plan);  // hi = the start (nothing costly): not probed
    return settle(hi);
  }
};

// Usage of the stored plan.
struct Usage {
  double spend = 0.0;
  std::vector<std::int64_t> benefit_count;  // per benefit (only with inventory limits)
  std::vector<std::int64_t> seg_members;    // per segment
  std::vector<double> seg_cost;             // per segment
};

inline Usage usage_of(const Problem& P, const Plan& plan, int threads) {
  Usage us;
  const Index n = P.c.n_users;
  const Offset nb = n_blocks(n);
  const int nt = resolve_num_threads(threads);
  const std::size_t nbft = P.has_inventory_limits ? static_cast<std::size_t>(P.c.n_benefits) : 0;
  const std::size_t ns = P.has_segment_limits ? static_cast<std::size_t>(P.n_segments) : 0;
  std::vector<std::vector<std::int64_t>> counts(static_cast<std::size_t>(nt),
                                                std::vector<std::int64_t>(nbft, 0));
  std::vector<std::vector<std::int64_t>> members(static_cast<std::size_t>(nt),
                                                 std::vector<std::int64_t>(ns, 0));
  std::vector<double> spend(static_cast<std::size_t>(nb));
  std::vector<double> seg_cost(static_cast<std::size_t>(nb) * ns, 0.0);
  parallel_for(0, nb, threads, [&](Offset blk, int tid) {
    double sp = 0.0;
    const Index u0 = static_cast<Index>(blk * kBlock);
    const Index u1 = static_cast<Index>(std::min<Offset>(n, (blk + 1) * kBlock));
    for (Index u = u0; u < u1; ++u) {
      const int cnt = plan.count[static_cast<std::size_t>(u)];
      if (cnt == 0) continue;
      const Offset b0 = P.begin(u);
      double mc = 0.0;
      for (int t = 0; t < cnt; ++t) {
        const Offset i = b0 + plan.at(u)[t];
        mc += P.c.cost[static_cast<std::size_t>(i)];
        if (nbft)
          ++counts[static_cast<std::size_t>(tid)]
                  [static_cast<std::size_t>(P.c.benefit[static_cast<std::size_t>(i)])];
      }
      sp += mc;
      const Index s = ns ? P.segment(u) : -1;
      if (s >= 0) {
        ++members[static_cast<std::size_t>(tid)][static_cast<std::size_t>(s)];
        seg_cost[static_cast<std::size_t>(blk) * ns + static_cast<std::size_t>(s)] += mc;
      }
    }
    spend[static_cast<std::size_t>(blk)] = sp;
  });
  us.spend = ordered_sum(spend);
  us.benefit_count.assign(nbft, 0);
  for (const auto& c : counts)
    for (std::size_t b = 0; b < nbft; ++b) us.benefit_count[b] += c[b];
  us.seg_members.assign(ns, 0);
  for (const auto& m : members)
    for (std::size_t s = 0; s < ns; ++s) us.seg_members[s] += m[s];
  us.seg_cost.assign(ns, 0.0);
  for (Offset blk = 0; blk < nb; ++blk) {
    for (std::size_t s = 0; s < ns; ++s)
      us.seg_cost[s] += seg_cost[static_cast<std::size_t>(blk) * ns + s];
  }
  return us;
}

// Midpoint of the k-th and (k+1)-th largest of xs (k >= 1, xs.size() > k).
inline double kth_midpoint(std::vector<double>& xs, std::size_t k) {
  std::sort(xs.begin(), xs.end(), std::greater<double>());
  return 0.5 * (xs[k - 1] + xs[k]);
}

// For update_prices: for each under-used benefit (under_b) in member u's row that u does not
// hold, what u's adjusted value gains by taking it in place of what it would displace (an
// open slot: nothing; a full kind or full capacity: the weakest held entry of that kind, or of
// all), keyed nbft + b. Approximate (stacking groups and member quotas aside): it only sizes a
// price step; repair and fill keep every limit.
inline void under_gains(const Problem& P, const Prices& pr, const Plan& plan,
                        const std::vector<char>& under_b, Index u, std::size_t nbft,
                        std::vector<std::pair<std::int64_t, double>>& out) {
  const int cap = P.cap(u);
  if (cap <= 0) return;
  const Offset b0 = P.begin(u), b1 = P.end(u);
  const int cnt = plan.count[static_cast<std::size_t>(u)];
  const std::int32_t* held = plan.at(u);
  const double price = pr.lambda + pr.nu_of(P.segment(u));
  auto adj = [&](Offset i) {
    const auto e = static_cast<std::size_t>(i);
    return static_cast<double>(P.c.value[e]) - price * static_cast<double>(P.c.cost[e]) -
           pr.mu_of(P.c.benefit[e]);
  };
  for (Offset i = b0; i < b1; ++i) {
    const Index b = P.c.benefit[static_cast<std::size_t>(i)];
    if (!under_b[static_cast<std::size_t>(b)] || !P.allowed(u, i)) continue;
    const auto j = static_cast<std::int32_t>(i - b0);
    if (std::find(held, held + cnt, j) != held + cnt) continue;
    const std::int32_t kd = P.kind(b);
    double weakest = kInf, weakest_kind = kInf;
    int of_kind = 0;
    for (int t = 0; t < cnt; ++t) {
      const double a = adj(b0 + held[t]);
      weakest = std::min(weakest, a);
      if (kd >= 0 && P.kind(P.c.benefit[static_cast<std::size_t>(b0 + held[t])]) == kd) {
        ++of_kind;
        weakest_kind = std::min(weakest_kind, a);
      }
    }
    double displaced = 0.0;
    if (kd >= 0 && of_kind >= P.kind_cap(u, kd)) {
      displaced = weakest_kind;
    } else if (cnt >= cap) {
      displaced = weakest;
    }
    out.emplace_back(static_cast<std::int64_t>(nbft) + b, adj(i) - std::max(0.0, displaced));
  }
}

// One price round: returns true when a price changed.
// `slack`: a limit within this relative band of its level counts as met (no price move); 0 on
// instances small enough to polish, where one unit matters.
inline bool update_prices(const Problem& P, Prices& pr, const Plan& plan, const Usage& us,
                          int threads, const AllocatorParams& params, double slack) {
  bool changed = false;
  const std::size_t nbft = us.benefit_count.size();
  const std::size_t ns = us.seg_members.size();
  std::vector<char> over_b(nbft, 0), over_m(ns, 0);
  bool any_over = false;
  for (std::size_t b = 0; b < nbft; ++b) {
    const std::int64_t inv = P.k.inventory[b];
    if (inv >= 0 &&
        static_cast<double>(us.benefit_count[b]) > static_cast<double>(inv) * (1 + slack) &&
        us.benefit_count[b] > inv) {
      over_b[b] = any_over = true;
    }
  }
  for (std::size_t s = 0; s < ns; ++s) {
    const std::int64_t mm = P.seg_max_members(static_cast<Index>(s));
    if (mm >= 0 && static_cast<double>(us.seg_members[s]) > static_cast<double>(mm) * (1 + slack) &&
        us.seg_members[s] > mm) {
      over_m[s] = any_over = true;
    }
  }
  // Large instances (slack > 0): an inventory priced but used below its band gets a step down
  // sized from the members who could take it (instead of halving its price, which undoes a
  // price set from a member sample and overshoots).
  std::vector<char> under_b(nbft, 0);
  bool any_under = false;
  const double gap = std::max({params.budget_gap, 1e-9, slack});
  for (std::size_t b = 0; b < nbft && slack > 0 && !pr.mu.empty(); ++b) {
    const std::int64_t inv = P.k.inventory[b];
    if (pr.mu[b] > 0 &&
        static_cast<double>(us.benefit_count[b]) < static_cast<double>(inv) * (1 - gap)) {
      under_b[b] = any_under = true;
    }
  }
  std::vector<std::vector<double>> gain_b(nbft);
  if (any_over || any_under) {
    // Advantages of members holding an over-used benefit (vs their best unchosen entry),
    // surpluses of members in an over-used segment and what members not holding an under-used
    // benefit gain by taking it, gathered per block then in block order.
    const Index n = P.c.n_users;
    const Offset nb = n_blocks(n);
    std::vector<std::vector<std::pair<std::int64_t, double>>> parts(static_cast<std::size_t>(nb));
    std::vector<Scratch> scratch(static_cast<std::size_t>(resolve_num_threads(threads)));
    parallel_for(0, nb, threads, [&](Offset blk, int tid) {
      Scratch& s = scratch[static_cast<std::size_t>(tid)];
      MemberResult r, r2;
      std::vector<Index> held;
      auto& out = parts[static_cast<std::size_t>(blk)];
      const Index u0 = static_cast<Index>(blk * kBlock);
      const Index u1 = static_cast<Index>(std::min<Offset>(n, (blk + 1) * kBlock));
      for (Index u = u0; u < u1; ++u) {
        const int cnt = plan.count[static_cast<std::size_t>(u)];
        if (any_under) under_gains(P, pr, plan, under_b, u, nbft, out);
        if (cnt == 0) continue;
        const Index seg = P.segment(u);
        const bool seg_over =
            seg >= 0 && static_cast<std::size_t>(seg) < ns && over_m[static_cast<std::size_t>(seg)];
        bool holds_over = false;
        const Offset b0 = P.begin(u);
        for (int t = 0; t < cnt && nbft; ++t) {
          holds_over =
              holds_over || over_b[static_cast<std::size_t>(
                                P.c.benefit[static_cast<std::size_t>(b0 + plan.at(u)[t])])];
        }
        if (!seg_over && !holds_over) continue;
        solve_member(P, pr, u, s, r);  // fills s.adj at the current prices
        if (seg_over) out.emplace_back(-1 - static_cast<std::int64_t>(seg), r.topsum);
        if (holds_over && P.cap(u) == 1) {
          // One slot: the held entry's edge over the best other entry (or nothing).
          const int len = static_cast<int>(P.end(u) - b0);
          double alt = 0.0;
          for (int j = 0; j < len; ++j) {
            if (std::find(plan.at(u), plan.at(u) + cnt, j) == plan.at(u) + cnt)
              alt = std::max(alt, s.adj[static_cast<std::size_t>(j)]);
          }
          for (int t = 0; t < cnt; ++t) {
            const int j = plan.at(u)[t];
            const Index b = P.c.benefit[static_cast<std::size_t>(b0 + j)];
            if (over_b[static_cast<std::size_t>(b)])
              out.emplace_back(b, s.adj[static_cast<std::size_t>(j)] - alt);
          }
        } else if (holds_over) {
          // Several slots: what the member's problem loses without the benefit (its best set
          // without it may swap other entries too, under kind caps and stacking groups).
          const double rho = pr.rho_of(seg);
          const double with = std::max(0.0, r.surplus - rho);
          held.clear();
          for (int t = 0; t < cnt; ++t)
            held.push_back(P.c.benefit[static_cast<std::size_t>(b0 + plan.at(u)[t])]);
          for (const Index b : held) {
            if (!over_b[static_cast<std::size_t>(b)]) continue;
            solve_member(P, pr, u, s, r2, b);
            out.emplace_back(b, with - std::max(0.0, r2.surplus - rho));
          }
        }
      }
    });
    std::vector<std::vector<double>> adv_b(nbft), sur_s(ns);
    for (const auto& part : parts) {
      for (const auto& [key, x] : part) {
        if (key >= static_cast<std::int64_t>(nbft)) {
          gain_b[static_cast<std::size_t>(key) - nbft].push_back(x);
        } else if (key >= 0) {
          adv_b[static_cast<std::size_t>(key)].push_back(x);
        } else {
          sur_s[static_cast<std::size_t>(-1 - key)].push_back(x);
        }
      }
    }
    if (pr.mu.empty() && nbft) pr.mu.assign(nbft, 0.0);
    for (std::size_t b = 0; b < nbft; ++b) {
      if (!over_b[b] || adv_b[b].size() <= static_cast<std::size_t>(P.k.inventory[b])) continue;
      const auto inv = static_cast<std::size_t>(P.k.inventory[b]);
      const double step =
          inv == 0 ? *std::max_element(adv_b[b].begin(), adv_b[b].end()) * 1.000001 + 1e-12
                   : kth_midpoint(adv_b[b], inv);
      if (step > 0) {
        pr.mu[b] += step;
        changed = true;
      }
    }
    if (pr.rho.empty() && ns) pr.rho.assign(ns, 0.0);
    for (std::size_t s = 0; s < ns; ++s) {
      const std::int64_t mm = P.seg_max_members(static_cast<Index>(s));
      if (!over_m[s] || sur_s[s].size() <= static_cast<std::size_t>(mm)) continue;
      const double level = kth_midpoint(sur_s[s], static_cast<std::size_t>(mm));
      if (level > pr.rho[s]) {
        pr.rho[s] = level;
        changed = true;
      }
    }
  }
  // Relax prices of limits with slack: under-used inventories on large instances by the
  // largest price cut that draws the missing units (the midpoint of the k-th and (k+1)-th
  // largest gains, at most the price), otherwise (or when no cut is found) by half.
  for (std::size_t b = 0; b < pr.mu.size(); ++b) {
    const std::int64_t inv = P.k.inventory[b];
    if (pr.mu[b] > 0 &&
        static_cast<double>(us.benefit_count[b]) < static_cast<double>(inv) * (1 - gap)) {
      const auto missing = static_cast<std::size_t>(inv - us.benefit_count[b]);
      double cut = -1.0;  // < 0: none found
      if (under_b[b]) cut = gain_b[b].size() > missing ? -kth_midpoint(gain_b[b], missing) : kInf;
      pr.mu[b] = cut > 0 ? std::max(0.0, pr.mu[b] - cut) : 0.5 * pr.mu[b];
      changed = true;
    }
  }
  for (std::size_t s = 0; s < pr.rho.size(); ++s) {
    const std::int64_t mm = P.seg_max_members(static_cast<Index>(s));
    if (pr.rho[s] > 0 &&
        static_cast<double>(us.seg_members[s]) < static_cast<double>(mm) * (1 - gap)) {
      pr.rho[s] *= 0.5;
      changed = true;
    }
  }
  // Segment cost quotas: doubling then halving steps on nu across rounds.
  if (ns) {
    if (pr.nu.empty()) pr.nu.assign(ns, 0.0);
    for (std::size_t s = 0; s < ns; ++s) {
      const double q = P.seg_max_cost(static_cast<Index>(s));
      if (q < 0) continue;
      if (us.seg_cost[s] > q * (1 + slack)) {
        pr.nu[s] = pr.nu[s] > 0 ? 2.0 * pr.nu[s] : std::max(pr.lambda, 1e-3) * 0.5 + 1e-6;
        changed = true;
      } else if (pr.nu[s] > 0 && us.seg_cost[s] < q * (1 - gap)) {
        pr.nu[s] *= 0.6;
        changed = true;
      }
    }
  }
  return changed;
}

// The price rounds: a multiplier search, then a price update, until no price moves or
// `rounds` updates were made. `warm`: later searches start from the last lambda and a limit used
// within kLimitSlack of its level counts as met. `lambda`: the first search's warm start (0 =
// cold). Leaves the plan and its usage at the final prices; returns the final lambda.
inline double price_rounds(const Problem& P, Solver& S, Prices& pr, Plan& plan, Usage& us,
                           double lambda, bool warm, int rounds, int threads) {
  const bool priced = P.has_inventory_limits || P.has_segment_limits;
  for (int round = 0;; ++round) {
    lambda = S.search(pr, plan, warm || round == 0 ? lambda : 0.0);
    us = usage_of(P, plan, threads);
    if (round >= rounds || !priced) break;
    if (!update_prices(P, pr, plan, us, threads, S.params, warm ? kLimitSlack : 0.0)) break;
  }
  return lambda;
}

// A strided sample of the members (every `stride`-th, from 0) with the limits scaled by the
// sample's share of the members: the budget, inventories and segment quotas (a positive limit
// keeps at least 1). Owns the copied rows.
struct MemberSample {
  std::vector<std::int64_t> offsets;
  std::vector<Index> benefit;
  std::vector<float> value, cost;
  CandidatesView c;
  AllocationConstraints k;

  MemberSample(const Problem& P, Index stride) {
    const Index n = (P.c.n_users + stride - 1) / stride;
    const double share = static_cast<double>(n) / static_cast<double>(P.c.n_users);
    auto scaled = [share](std::int64_t level) {
      return level <= 0
                 ? level
                 : std::max<std::int64_t>(1, std::llround(static_cast<double>(level) * share));
    };
    offsets.reserve(static_cast<std::size_t>(n) + 1);
    offsets.push_back(0);
    const bool caps = !P.k.member_capacity.empty(), segs = !P.k.member_segment.empty();
    const bool kind_caps = !P.k.member_kind_capacity.empty();
    k = P.k;
    k.member_capacity.clear();
    k.member_segment.clear();
    k.member_kind_capacity.clear();
    for (Index i = 0; i < n; ++i) {
      const Index u = i * stride;
      const auto b0 = static_cast<std::size_t>(P.begin(u)), b1 = static_cast<std::size_t>(P.end(u));
      benefit.insert(benefit.end(), P.c.benefit.data() + b0, P.c.benefit.data() + b1);
      value.insert(value.end(), P.c.value.data() + b0, P.c.value.data() + b1);
      cost.insert(cost.end(), P.c.cost.data() + b0, P.c.cost.data() + b1);
      offsets.push_back(static_cast<std::int64_t>(benefit.size()));
      if (caps) k.member_capacity.push_back(P.k.member_capacity[static_cast<std::size_t>(u)]);
      if (segs) k.member_segment.push_back(P.k.member_segment[static_cast<std::size_t>(u)]);
      if (kind_caps) {
        const auto row = static_cast<std::size_t>(u) * static_cast<std::size_t>(P.k.n_kinds);
        k.member_kind_capacity.insert(k.member_kind_capacity.end(),
                                      P.k.member_kind_capacity.begin() + row,
                                      P.k.member_kind_capacity.begin() + row + P.k.n_kinds);
      }
    }
    if (std::isfinite(k.budget)) k.budget *= share;
    for (auto& level : k.inventory) level = scaled(level);
    for (auto& level : k.segment_max_members) level = scaled(level);
    for (auto& level : k.segment_max_cost) level = level > 0 ? level * share : level;
    c.n_users = n;
    c.n_benefits = P.c.n_benefits;
    c.offsets = {offsets.data(), offsets.size()};
    c.benefit = {benefit.data(), benefit.size()};
    c.value = {value.data(), value.size()};
    c.cost = {cost.data(), cost.size()};
  }
};

// Large instances with inventory or segment limits: members per sampled member of the price
// pre-solve, and the fewest members (kPresolveStride x the fewest sampled) it runs on.
constexpr Index kPresolveStride = 25;
constexpr Index kPresolveMinSample = 1000;
constexpr double kPresolveGap = 1e-3;

// The price pre-solve: the price rounds on a strided member sample (1 in kPresolveStride, limits
// scaled to its share), so that the rounds on all members start from prices near the final
// ones and need few full passes. Sets pr (inventory and segment prices) and returns the
// sample's lambda (the full search's warm start). Prices are per unit of a limit, so the
// sample's prices apply to the full instance as they are.
inline double presolve_prices(const Problem& P, const AllocatorParams& p, const Callbacks& cb,
                              double lambda_max, int store, Prices& pr, double* slope,
                              int threads) {
  const MemberSample sm(P, kPresolveStride);
  Problem Ps(sm.c, sm.k);
  Ps.cache_allowed(threads);
  Callbacks stop_only;  // the sample's evaluations are not the progress of "allocate"
  stop_only.should_stop = cb.should_stop;
  Plan plan;
  plan.store = store;
  plan.slots.assign(static_cast<std::size_t>(sm.c.n_users) * static_cast<std::size_t>(plan.store),
                    0);
  plan.count.assign(static_cast<std::size_t>(sm.c.n_users), 0);
  AllocatorParams ps = p;  // the sample's lambda is only a start: searched to a looser gap
  ps.budget_gap = std::max(p.budget_gap, kPresolveGap);
  Solver S(Ps, ps, stop_only, threads);
  S.lambda_max = lambda_max;
  Usage us;
  const double lambda = price_rounds(Ps, S, pr, plan, us, 0.0, true, p.price_rounds, threads);
  *slope = S.slope * static_cast<double>(P.c.n_users) / static_cast<double>(sm.c.n_users);
  return lambda;
}

// Member-level state used by repair, fill and the runner-up pass.
struct Ledger {
  double spent = 0.0;
  std::vector<std::int64_t> inv_left;          // per benefit, -1 = unlimited
  std::vector<std::int64_t> seg_members_left;  // -1 = unlimited
  std::vector<double> seg_cost_left;           // < 0 = unlimited
};

inline Ledger fresh_ledger(const Problem& P) {
  Ledger L;
  L.inv_left = P.k.inventory;
  if (L.inv_left.empty()) L.inv_left.assign(static_cast<std::size_t>(P.c.n_benefits), -1);
  L.seg_members_left.assign(static_cast<std::size_t>(P.n_segments), -1);
  L.seg_cost_left.assign(static_cast<std::size_t>(P.n_segments), -1.0);
  for (Index s = 0; s < P.n_segments; ++s) {
    L.seg_members_left[static_cast<std::size_t>(s)] = P.seg_max_members(s);
    L.seg_cost_left[static_cast<std::size_t>(s)] = P.seg_max_cost(s);
  }
  return L;
}

// Repair: keeps the chosen entries in order of adjusted value while every limit holds.
inline void repair(const Problem& P, const Prices& pr, Plan& plan, Ledger& L, int threads) {
  const Index n = P.c.n_users;
  struct Entry {
    double key;
    Index u;
    std::int32_t j;
  };
  std::vector<Entry> entries;
  for (Index u = 0; u < n; ++u) {
    const int cnt = plan.count[static_cast<std::size_t>(u)];
    const Offset b0 = P.begin(u);
    const Index seg = P.segment(u);
    for (int t = 0; t < cnt; ++t) {
      const std::int32_t j = plan.at(u)[t];
      const auto i = static_cast<std::size_t>(b0 + j);
      entries.push_back({static_cast<double>(P.c.value[i]) -
                             (pr.lambda + pr.nu_of(seg)) * P.c.cost[i] - pr.mu_of(P.c.benefit[i]),
                         u, j});
    }
  }
  (void)threads;
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.key != b.key) return a.key > b.key;
    if (a.u != b.u) return a.u < b.u;
    return a.j < b.j;
  });
  std::fill(plan.count.begin(), plan.count.end(), 0);
  const double B = P.k.budget;
  for (const Entry& e : entries) {
    const auto i = static_cast<std::size_t>(P.begin(e.u) + e.j);
    const double c = P.c.cost[i];
    const Index b = P.c.benefit[i];
    const Index seg = P.segment(e.u);
    const bool first = plan.count[static_cast<std::size_t>(e.u)] == 0;
    if (L.spent + c > B) continue;
    if (L.inv_left[static_cast<std::size_t>(b)] == 0) continue;
    if (seg >= 0) {
      if (first && L.seg_members_left[static_cast<std::size_t>(seg)] == 0) continue;
      if (L.seg_cost_left[static_cast<std::size_t>(seg)] >= 0 &&
          c > L.seg_cost_left[static_cast<std::size_t>(seg)])
        continue;
    }
    L.spent += c;
    if (L.inv_left[static_cast<std::size_t>(b)] > 0) --L.inv_left[static_cast<std::size_t>(b)];
    if (seg >= 0) {
      if (first && L.seg_members_left[static_cast<std::size_t>(seg)] > 0)
        --L.seg_members_left[static_cast<std::size_t>(seg)];
      if (L.seg_cost_left[static_cast<std::size_t>(seg)] >= 0)
        L.seg_cost_left[static_cast<std::size_t>(seg)] -= c;
    }
    std::int32_t* slots = plan.at(e.u);
    int& cnt = plan.count[static_cast<std::size_t>(e.u)];
    slots[cnt++] = e.j;
    std::sort(slots, slots + cnt);
  }
}

// Ledger from a plan that already satisfies every limit.
inline void fill_ledger(const Problem& P, const Plan& plan, const Usage& us, Ledger& L) {
  L.spent = us.spend;
  if (!us.benefit_count.empty()) {
    for (std::size_t b = 0; b < L.inv_left.size(); ++b) {
      if (L.inv_left[b] >= 0) L.inv_left[b] -= us.benefit_count[b];
    }
  }
  for (std::size_t s = 0; s < us.seg_members.size(); ++s) {
    if (L.seg_members_left[s] >= 0) L.seg_members_left[s] -= us.seg_members[s];
    if (L.seg_cost_left[s] >= 0)
      L.seg_cost_left[s] = std::max(0.0, L.seg_cost_left[s] - us.seg_cost[s]);
  }
  (void)P;
  (void)plan;
}

// Whether member u's set, with slot `out` (-1 = none) replaced by local j (-1 = none), keeps
// the member's capacity, kind caps and stacking groups; its value in *value. vals and kinds
// are scratch of at least cnt + 1 entries.
inline bool member_set_ok(const Problem& P, Index u, const std::int32_t* slots, int cnt, int out,
                          int j, double* value, double* vals, std::int32_t* kinds) {
  const Offset b0 = P.begin(u);
  std::int32_t small[64];
  std::vector<std::int32_t> big;
  std::int32_t* groups = small;
  if (cnt + 1 > 64) {
    big.resize(static_cast<std::size_t>(cnt) + 1);
    groups = big.data();
  }
  int n = 0, ng = 0;
  for (int t = 0; t <= cnt; ++t) {
    int local;
    if (t < cnt) {
      if (t == out) continue;
      local = slots[t];
    } else {
      if (j < 0) break;
      local = j;
    }
    const auto i = static_cast<std::size_t>(b0 + local);
    const Index b = P.c.benefit[i];
    vals[n] = P.c.value[i];
    kinds[n] = P.kind(b);
    const std::int32_t g = P.group(b);
    if (g >= 0) {
      for (int q = 0; q < ng; ++q) {
        if (groups[q] == g) return false;
      }
      groups[ng++] = g;
    }
    ++n;
  }
  if (n > P.cap(u)) return false;
  if (P.has_kind_caps) {
    for (int a = 0; a < n; ++a) {
      int count = 0;
      for (int b = 0; b < n; ++b) count += kinds[b] == kinds[a];
      if (kinds[a] >= 0 && count > P.kind_cap(u, kinds[a])) return false;
    }
  }
  *value = set_value(vals, P.has_kinds ? kinds : nullptr, n, P.diversity);
  return true;
}

// Fill: per round, each member's best addition or swap (by value gained per extra cost),
// applied in that order while the limits allow.
inline void fill(const Problem& P, const Prices& pr, Plan& plan, Ledger& L, int rounds,
                 int threads) {
  const Index n = P.c.n_users;
  const Offset nb = n_blocks(n);
  const double B = P.k.budget;
  struct Move {
    double dv, dc;
    Index u;
    std::int32_t out, j;  // slot replaced (-1 = add), local index added
  };
  auto better = [](double dv1, double dc1, double dv2, double dc2) {
    // free moves (dc <= 0) first by dv; then by dv / dc.
    const bool f1 = dc1 <= 0, f2 = dc2 <= 0;
    if (f1 != f2) return f1;
    if (f1) return dv1 > dv2;
    return dv1 * dc2 > dv2 * dc1;
  };
  for (int round = 0; round < rounds; ++round) {
    const double room = B - L.spent;
    std::vector<std::vector<Move>> parts(static_cast<std::size_t>(nb));
    parallel_for(0, nb, threads, [&](Offset blk) {
      std::vector<double> vals(static_cast<std::size_t>(plan.store) + 1);
      std::vector<std::int32_t> kinds(static_cast<std::size_t>(plan.store) + 1);
      auto& out = parts[static_cast<std::size_t>(blk)];
      const Index u0 = static_cast<Index>(blk * kBlock);
      const Index u1 = static_cast<Index>(std::min<Offset>(n, (blk + 1) * kBlock));
      for (Index u = u0; u < u1; ++u) {
        const Offset b0 = P.begin(u);
        const int len = static_cast<int>(P.end(u) - b0);
        const int cap = P.cap(u);
        if (len == 0 || cap <= 0) continue;
        const int cnt = plan.count[static_cast<std::size_t>(u)];
        const std::int32_t* slots = plan.at(u);
        const Index seg = P.segment(u);
        if (cnt == 0 && seg >= 0 && L.seg_members_left[static_cast<std::size_t>(seg)] == 0)
          continue;
        const double seg_room = seg >= 0 && L.seg_cost_left[static_cast<std::size_t>(seg)] >= 0
                                    ? L.seg_cost_left[static_cast<std::size_t>(seg)]
                                    : kInf;
        double base = 0.0, base_cost = 0.0;
        for (int t = 0; t < cnt; ++t) {
          vals[static_cast<std::size_t>(t)] = P.c.value[static_cast<std::size_t>(b0 + slots[t])];
          kinds[static_cast<std::size_t>(t)] =
              P.kind(P.c.benefit[static_cast<std::size_t>(b0 + slots[t])]);
          base_cost += P.c.cost[static_cast<std::size_t>(b0 + slots[t])];
        }
        base = set_value(vals.data(), P.has_kinds ? kinds.data() : nullptr, cnt, P.diversity);
        double max_out_cost = 0.0;
        for (int t = 0; t < cnt; ++t)
          max_out_cost =
              std::max<double>(max_out_cost, P.c.cost[static_cast<std::size_t>(b0 + slots[t])]);
        Move best{0.0, 0.0, u, -2, -1};
        double min_kept = kInf;  // a swap gains at most v_j - min chosen value
        for (int t = 0; t < cnt; ++t)
          min_kept = std::min(min_kept, vals[static_cast<std::size_t>(t)]);
        for (int j = 0; j < len; ++j) {
          const auto i = static_cast<std::size_t>(b0 + j);
          const double vj = P.c.value[i];
          const double cj = P.c.cost[i];
          if (!(vj > 0) || (cnt >= cap && !(vj > min_kept))) continue;  // cheap filters first
          if (cj - max_out_cost > std::min(room, seg_room)) continue;   // every move costs >= this
          if (std::find(slots, slots + cnt, j) != slots + cnt) continue;
          if (!P.allowed(u, b0 + j)) continue;
          const Index b = P.c.benefit[i];
          for (int out_slot = (cnt < cap ? -1 : 0); out_slot < cnt; ++out_slot) {
            const Index b_out =
                out_slot >= 0 ? P.c.benefit[static_cast<std::size_t>(b0 + slots[out_slot])] : -1;
            if (b != b_out && L.inv_left[static_cast<std::size_t>(b)] == 0) continue;
            const double dc =
                cj -
                (out_slot >= 0 ? P.c.cost[static_cast<std::size_t>(b0 + slots[out_slot])] : 0.0);
            if (dc > room || dc > seg_room) continue;
            double value = 0.0;
            if (!member_set_ok(P, u, slots, cnt, out_slot, j, &value, vals.data(), kinds.data()))
              continue;
            const double dv = value - base;
            if (!(dv > 1e-12 * std::max(1.0, std::fabs(base)))) continue;
            if (best.out == -2 || better(dv, dc, best.dv, best.dc))
              best = Move{dv, dc, u, out_slot, j};
          }
        }
        (void)base_cost;
        if (best.out != -2) out.push_back(best);
      }
    });
    std::vector<Move> moves;
    for (auto& part : parts) moves.insert(moves.end(), part.begin(), part.end());
    if (moves.empty()) break;
    std::stable_sort(moves.begin(), moves.end(),
                     [&](const Move& a, const Move& b) { return better(a.dv, a.dc, b.dv, b.dc); });
    std::int64_t applied = 0;
    for (const Move& m : moves) {
      const Offset b0 = P.begin(m.u);
      const auto i = static_cast<std::size_t>(b0 + m.j);
      const Index b = P.c.benefit[i];
      std::int32_t* slots = plan.at(m.u);
      int& cnt = plan.count[static_cast<std::size_t>(m.u)];
      const Index b_out =
          m.out >= 0 ? P.c.benefit[static_cast<std::size_t>(b0 + slots[m.out])] : -1;
      const Index seg = P.segment(m.u);
      if (L.spent + m.dc > B) continue;
      if (b != b_out && L.inv_left[static_cast<std::size_t>(b)] == 0) continue;
      if (seg >= 0) {
        if (cnt == 0 && L.seg_members_left[static_cast<std::size_t>(seg)] == 0) continue;
        if (L.seg_cost_left[static_cast<std::size_t>(seg)] >= 0 &&
            m.dc > L.seg_cost_left[static_cast<std::size_t>(seg)])
          continue;
      }
      L.spent += m.dc;
      if (b != b_out) {
        if (L.inv_left[static_cast<std::size_t>(b)] > 0) --L.inv_left[static_cast<std::size_t>(b)];
        if (b_out >= 0 && L.inv_left[static_cast<std::size_t>(b_out)] >= 0)
          ++L.inv_left[static_cast<std::size_t>(b_out)];
      }
      if (seg >= 0) {
        if (cnt == 0 && L.seg_members_left[static_cast<std::size_t>(seg)] > 0)
          --L.seg_members_left[static_cast<std::size_t>(seg)];
        if (L.seg_cost_left[static_cast<std::size_t>(seg)] >= 0)
          L.seg_cost_left[static_cast<std::size_t>(seg)] -= m.dc;
      }
      if (m.out >= 0) {
        slots[m.out] = m.j;
      } else {
        slots[cnt++] = m.j;
      }
      std::sort(slots, slots + cnt);
      ++applied;
    }
    if (applied == 0) break;
  }
  (void)pr;
}

// Builds the Allocation (CSR, totals in block order, runner-up and its reason).
inline Allocation finish(const Problem& P, const Plan& plan, const Ledger& L, double lambda,
                         int threads) {
  Allocation a;
  const Index n = P.c.n_users;
  a.offsets.assign(static_cast<std::size_t>(n) + 1, 0);
  for (Index u = 0; u < n; ++u) {
    a.offsets[static_cast<std::size_t>(u) + 1] =
        a.offsets[static_cast<std::size_t>(u)] + plan.count[static_cast<std::size_t>(u)];
  }
  const auto total = static_cast<std::size_t>(a.offsets.back());
  a.candidate.resize(total);
  a.benefit.resize(total);
  a.runner_up.assign(static_cast<std::size_t>(n), -1);
  a.runner_up_reason.assign(static_cast<std::size_t>(n), ExclusionReason::none);
  const Offset nb = n_blocks(n);
  std::vector<double> value(static_cast<std::size_t>(nb)), cost(static_cast<std::size_t>(nb));
  const double room = P.k.budget - L.spent;
  parallel_for(0, nb, threads, [&](Offset blk) {
    std::vector<double> vals(static_cast<std::size_t>(plan.store));
    std::vector<std::int32_t> kinds(static_cast<std::size_t>(plan.store));
    double vs = 0.0, cs = 0.0;
    const Index u0 = static_cast<Index>(blk * kBlock);
    const Index u1 = static_cast<Index>(std::min<Offset>(n, (blk + 1) * kBlock));
    for (Index u = u0; u < u1; ++u) {
      const int cnt = plan.count[static_cast<std::size_t>(u)];
      const std::int32_t* slots = plan.at(u);
      const Offset b0 = P.begin(u);
      auto pos = static_cast<std::size_t>(a.offsets[static_cast<std::size_t>(u)]);
      double mc = 0.0;
      for (int t = 0; t < cnt; ++t) {
        const auto i = static_cast<std::size_t>(b0 + slots[t]);
        a.candidate[pos + static_cast<std::size_t>(t)] = static_cast<std::int64_t>(i);
        a.benefit[pos + static_cast<std::size_t>(t)] = P.c.benefit[i];
        vals[static_cast<std::size_t>(t)] = P.c.value[i];
        kinds[static_cast<std::size_t>(t)] = P.kind(P.c.benefit[i]);
        mc += P.c.cost[i];
      }
      vs += set_value(vals.data(), P.has_kinds ? kinds.data() : nullptr, cnt, P.diversity);
      cs += mc;
      // Runner-up: the unchosen entry with the largest value - cost (ties: first).
      const int len = static_cast<int>(P.end(u) - b0);
      int ru = -1;
      double ru_key = -kInf;
      for (int j = 0; j < len; ++j) {
        if (std::find(slots, slots + cnt, j) != slots + cnt) continue;
        const auto i = static_cast<std::size_t>(b0 + j);
        const double key = static_cast<double>(P.c.value[i]) - P.c.cost[i];
        if (ru < 0 || key > ru_key) {
          ru = j;
          ru_key = key;
        }
      }
      if (ru < 0) continue;
      const Offset i = b0 + ru;
      a.runner_up[static_cast<std::size_t>(u)] = i;
      ExclusionReason why = P.static_reason(u, i);
      if (why == ExclusionReason::none) {
        const Index b = P.c.benefit[static_cast<std::size_t>(i)];
        const double c = P.c.cost[static_cast<std::size_t>(i)];
        const std::int32_t g = P.group(b), kd = P.kind(b);
        const Index seg = P.segment(u);
        int same_kind = 0;
        bool stacked = false;
        for (int t = 0; t < cnt; ++t) {
          const Index bt = P.c.benefit[static_cast<std::size_t>(b0 + slots[t])];
          stacked = stacked || (g >= 0 && P.group(bt) == g);
          same_kind += kd >= 0 && P.kind(bt) == kd;
        }
        if (stacked) {
          why = ExclusionReason::stacking;
        } else if (kd >= 0 && same_kind >= P.kind_cap(u, kd)) {
          why = ExclusionReason::kind_cap;
        } else if (L.inv_left[static_cast<std::size_t>(b)] == 0) {
          why = ExclusionReason::inventory;
        } else if (seg >= 0 &&
                   ((cnt == 0 && L.seg_members_left[static_cast<std::size_t>(seg)] == 0) ||
                    (L.seg_cost_left[static_cast<std::size_t>(seg)] >= 0 &&
                     c > L.seg_cost_left[static_cast<std::size_t>(seg)]))) {
          why = ExclusionReason::segment_quota;
        } else if (cnt >= P.cap(u)) {
          why = ExclusionReason::member_cap;
        } else if (c > room) {
          why = ExclusionReason::budget;
        } else {
          why = ExclusionReason::below_multiplier;
        }
      }
      a.runner_up_reason[static_cast<std::size_t>(u)] = why;
    }
    value[static_cast<std::size_t>(blk)] = vs;
    cost[static_cast<std::size_t>(blk)] = cs;
  });
  a.value = ordered_sum(value);
  a.cost = ordered_sum(cost);
  a.multiplier = lambda;
  return a;
}

inline void check_inputs(const CandidatesView& c, const AllocationConstraints& k,
                         const char* context, int threads) {
  c.validate(context, threads);
  try {
    k.validate(c.n_users, c.n_benefits);
  } catch (const InputError& e) {
    detail::raise<InputError>(context, ": ", e.what());
  } catch (const ConfigError& e) {
    detail::raise<ConfigError>(context, ": ", e.what());
  }
}

inline int store_width(const CandidatesView& c, const AllocationConstraints& k, int threads) {
  const Offset nb = n_blocks(c.n_users);
  std::vector<std::int64_t> longest(static_cast<std::size_t>(nb), 0);
  parallel_for(0, nb, threads, [&](Offset blk) {
    std::int64_t m = 0;
    const Index u0 = static_cast<Index>(blk * kBlock);
    const Index u1 = static_cast<Index>(std::min<Offset>(c.n_users, (blk + 1) * kBlock));
    for (Index u = u0; u < u1; ++u) {
      m = std::max(
          m, c.offsets[static_cast<std::size_t>(u) + 1] - c.offsets[static_cast<std::size_t>(u)]);
    }
    longest[static_cast<std::size_t>(blk)] = m;
  });
  std::int64_t m = 0;
  for (auto x : longest) m = std::max(m, x);
  return static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(k.max_per_member, m)));
}

}  // namespace detail::alloc

// --- params --------------------------------------------------------------------------------------

PERKREC_INLINE void AllocatorParams::validate() const {
  params::validate_fields(*this, "AllocatorParams");
}
PERKREC_INLINE Json AllocatorParams::to_json() const { return params::fields_to_json(*this); }
PERKREC_INLINE AllocatorParams AllocatorParams::from_json(const Json& j) {
  return params::fields_from_json<AllocatorParams>(j, "AllocatorParams::from_json");
}

// --- candidates view
// -------------------------------------------------------------------------------

PERKREC_INLINE void CandidatesView::validate(const char* context, int num_threads) const {
  if (n_users < 0 || n_benefits < 0) {
    detail::raise<InputError>(context, ": candidates have negative shape (", n_users, " x ",
                              n_benefits, ")");
  }
  const std::size_t n = benefit.size();
  if (offsets.size() != static_cast<std::size_t>(n_users) + 1 || offsets[0] != 0 ||
      offsets[offsets.size() - 1] != static_cast<std::int64_t>(n)) {
    detail::raise<InputError>(context, ": candidates.offsets has ", offsets.size(),
                              " entries ending at ",
                              offsets.empty() ? 0 : offsets[offsets.size() - 1],
                              " (expected n_users + 1 = ", static_cast<std::int64_t>(n_users) + 1,
                              " entries from 0 to ", n, ")");
  }
  if (value.size() != n || cost.size() != n) {
    detail::raise<InputError>(context, ": candidates.value/cost have ", value.size(), "/",
                              cost.size(), " entries (expected ", n, ")");
  }
  for (Index u = 0; u < n_users; ++u) {
    if (offsets[static_cast<std::size_t>(u) + 1] < offsets[static_cast<std::size_t>(u)]) {
      detail::raise<InputError>(context, ": candidates.offsets decrease at member ", u);
    }
  }
  // Entries in parallel chunks; the first bad entry (lowest position) is reported.
  constexpr std::int64_t kChunk = 1 << 20;
  const std::int64_t chunks = (static_cast<std::int64_t>(n) + kChunk - 1) / kChunk;
  std::vector<std::int64_t> first_bad(static_cast<std::size_t>(chunks), -1);
  parallel_for(0, chunks, num_threads, [&](Offset ch) {
    const std::size_t i1 = std::min<std::size_t>(n, static_cast<std::size_t>((ch + 1) * kChunk));
    for (auto i = static_cast<std::size_t>(ch * kChunk); i < i1; ++i) {
      if (benefit[i] < 0 || benefit[i] >= n_benefits || !std::isfinite(value[i]) ||
          !std::isfinite(cost[i]) || cost[i] < 0) {
        first_bad[static_cast<std::size_t>(ch)] = static_cast<std::int64_t>(i);
        return;
      }
    }
  });
  for (std::int64_t bad : first_bad) {
    if (bad < 0) continue;
    const auto i = static_cast<std::size_t>(bad);
    if (benefit[i] < 0 || benefit[i] >= n_benefits) {
      detail::raise<InputError>(context, ": candidates.benefit[", i, "] out of range (got ",
                                benefit[i], ", expected 0 <= benefit < ", n_benefits, ")");
    }
    if (!std::isfinite(value[i])) {
      detail::raise<InputError>(context, ": candidates.value[", i, "] is not finite (got ",
                                value[i], ")");
    }
    detail::raise<InputError>(context, ": candidates.cost[", i, "] must be finite and >= 0 (got ",
                              cost[i], ")");
  }
  // Duplicate benefits in a row would let a member receive a benefit twice.
  const Offset nb = detail::alloc::n_blocks(n_users);
  std::vector<std::int64_t> dup(static_cast<std::size_t>(nb), -1);
  std::vector<std::vector<Index>> stamps(
      static_cast<std::size_t>(resolve_num_threads(num_threads)));
  parallel_for(0, nb, num_threads, [&](Offset blk, int tid) {
    std::vector<Index>& seen = stamps[static_cast<std::size_t>(tid)];
    if (seen.size() != static_cast<std::size_t>(n_benefits))
      seen.assign(static_cast<std::size_t>(n_benefits), -1);
    const Index u0 = static_cast<Index>(blk * detail::alloc::kBlock);
    const Index u1 =
        static_cast<Index>(std::min<Offset>(n_users, (blk + 1) * detail::alloc::kBlock));
    for (Index u = u0; u < u1; ++u) {
      const auto b0 = static_cast<std::size_t>(offsets[static_cast<std::size_t>(u)]);
      const auto b1 = static_cast<std::size_t>(offsets[static_cast<std::size_t>(u) + 1]);
      for (std::size_t i = b0; i < b1; ++i) {
        Index& last = seen[static_cast<std::size_t>(benefit[i])];
        if (last == u) {
          dup[static_cast<std::size_t>(blk)] = u;
          return;
        }
        last = u;
      }
    }
  });
  for (std::int64_t u : dup) {
    if (u >= 0)
      detail::raise<InputError>(context, ": candidates of member ", u, " list a benefit twice");
  }
}

PERKREC_INLINE double member_set_value(Span<const float> values, Span<const std::int32_t> kinds,
                                       double diversity) {
  std::vector<double> v(values.begin(), values.end());
  if (!kinds.empty() && kinds.size() != values.size()) {
    detail::raise<InputError>("member_set_value: kinds has ", kinds.size(), " entries (expected ",
                              values.size(), ")");
  }
  return detail::alloc::set_value(v.data(), kinds.empty() ? nullptr : kinds.data(),
                                  static_cast<int>(v.size()), diversity);
}

namespace detail::alloc {

// The value-per-cost greedy plan (free entries first by value; ties by position).
inline Plan greedy_plan(const Problem& P, Ledger& L, int num_threads) {
  const CandidatesView& c = P.c;
  const AllocationConstraints& k = P.k;
  std::vector<Index> owner(static_cast<std::size_t>(c.size()));
  parallel_for(0, n_blocks(c.n_users), num_threads, [&](Offset blk) {
    const Index u0 = static_cast<Index>(blk * kBlock);
    const Index u1 = static_cast<Index>(std::min<Offset>(c.n_users, (blk + 1) * kBlock));
    for (Index u = u0; u < u1; ++u) {
      for (Offset i = P.begin(u); i < P.end(u); ++i) owner[static_cast<std::size_t>(i)] = u;
    }
  });
  std::vector<std::int64_t> order;
  order.reserve(static_cast<std::size_t>(c.size()));
  for (std::int64_t i = 0; i < c.size(); ++i) {
    if (P.allowed(owner[static_cast<std::size_t>(i)], i)) order.push_back(i);
  }
  auto ratio = [&](std::int64_t i) {
    const float w = c.cost[static_cast<std::size_t>(i)];
    return w > 0 ? static_cast<double>(c.value[static_cast<std::size_t>(i)]) / w : kInf;
  };
  std::sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
    const double ra = ratio(a), rb = ratio(b);
    if (ra != rb) return ra > rb;
    if (std::isinf(ra)) {
      if (c.value[static_cast<std::size_t>(a)] != c.value[static_cast<std::size_t>(b)]) {
        return c.value[static_cast<std::size_t>(a)] > c.value[static_cast<std::size_t>(b)];
      }
    }
    return a < b;
  });
  Plan plan;
  plan.store = store_width(c, k, num_threads);
  plan.slots.assign(static_cast<std::size_t>(c.n_users) * static_cast<std::size_t>(plan.store), 0);
  plan.count.assign(static_cast<std::size_t>(c.n_users), 0);
  std::vector<double> vals(static_cast<std::size_t>(plan.store) + 1);
  std::vector<std::int32_t> kinds(static_cast<std::size_t>(plan.store) + 1);
  for (std::int64_t i : order) {
    const Index u = owner[static_cast<std::size_t>(i)];
    const auto j = static_cast<std::int32_t>(i - P.begin(u));
    const Index b = c.benefit[static_cast<std::size_t>(i)];
    const double w = c.cost[static_cast<std::size_t>(i)];
    int& cnt = plan.count[static_cast<std::size_t>(u)];
    const Index seg = P.segment(u);
    if (cnt >= P.cap(u) || L.spent + w > k.budget || L.inv_left[static_cast<std::size_t>(b)] == 0)
      continue;
    if (seg >= 0) {
      if (cnt == 0 && L.seg_members_left[static_cast<std::size_t>(seg)] == 0) continue;
      if (L.seg_cost_left[static_cast<std::size_t>(seg)] >= 0 &&
          w > L.seg_cost_left[static_cast<std::size_t>(seg)])
        continue;
    }
    double value = 0.0;
    if (!member_set_ok(P, u, plan.at(u), cnt, -1, j, &value, vals.data(), kinds.data())) continue;
    L.spent += w;
    if (L.inv_left[static_cast<std::size_t>(b)] > 0) --L.inv_left[static_cast<std::size_t>(b)];
    if (seg >= 0) {
      if (cnt == 0 && L.seg_members_left[static_cast<std::size_t>(seg)] > 0)
        --L.seg_members_left[static_cast<std::size_t>(seg)];
      if (L.seg_cost_left[static_cast<std::size_t>(seg)] >= 0)
        L.seg_cost_left[static_cast<std::size_t>(seg)] -= w;
    }
    std::int32_t* slots = plan.at(u);
    slots[cnt++] = j;
    std::sort(slots, slots + cnt);
  }
  return plan;
}

// Sum of member set values in block order.
inline double plan_value(const Problem& P, const Plan& plan, int threads) {
  const Index n = P.c.n_users;
  const Offset nb = n_blocks(n);
  std::vector<double> parts(static_cast<std::size_t>(nb));
  parallel_for(0, nb, threads, [&](Offset blk) {
    std::vector<double> vals(static_cast<std::size_t>(plan.store));
    std::vector<std::int32_t> kinds(static_cast<std::size_t>(plan.store));
    double vs = 0.0;
    const Index u0 = static_cast<Index>(blk * kBlock);
    const Index u1 = static_cast<Index>(std::min<Offset>(n, (blk + 1) * kBlock));
    for (Index u = u0; u < u1; ++u) {
      const int cnt = plan.count[static_cast<std::size_t>(u)];
      for (int t = 0; t < cnt; ++t) {
        const auto i = static_cast<std::size_t>(P.begin(u) + plan.at(u)[t]);
        vals[static_cast<std::size_t>(t)] = P.c.value[i];
        kinds[static_cast<std::size_t>(t)] = P.kind(P.c.benefit[i]);
      }
      vs += set_value(vals.data(), P.has_kinds ? kinds.data() : nullptr, cnt, P.diversity);
    }
    parts[static_cast<std::size_t>(blk)] = vs;
  });
  return ordered_sum(parts);
}

}  // namespace detail::alloc

// --- allocate
// --------------------------------------------------------------------------------------

PERKREC_INLINE Allocation allocate(const CandidatesView& c, const AllocationConstraints& k,
                                   const AllocatorParams& p, const Callbacks& cb) {
  using namespace detail::alloc;
  p.validate();
  check_inputs(c, k, "allocate", p.num_threads);
  const int threads = p.num_threads;
  Problem P(c, k);
  P.cache_allowed(threads);
  Plan plan;
  plan.store = store_width(c, k, threads);
  plan.slots.assign(static_cast<std::size_t>(c.n_users) * static_cast<std::size_t>(plan.store), 0);
  plan.count.assign(static_cast<std::size_t>(c.n_users), 0);
  Solver S(P, p, cb, threads);
  // Largest value per unit cost: above it nothing costly has a positive adjusted value.
  {
    constexpr std::int64_t kChunk = 1 << 20;
    const std::int64_t chunks = (c.size() + kChunk - 1) / kChunk;
    std::vector<double> top(static_cast<std::size_t>(chunks), 0.0);
    parallel_for(0, chunks, threads, [&](Offset ch) {
      double m = 0.0;
      const std::int64_t i1 = std::min<std::int64_t>(c.size(), (ch + 1) * kChunk);
      for (std::int64_t i = ch * kChunk; i < i1; ++i) {
        const float w = c.cost[static_cast<std::size_t>(i)];
        if (w > 0) m = std::max(m, static_cast<double>(c.value[static_cast<std::size_t>(i)]) / w);
      }
      top[static_cast<std::size_t>(ch)] = m;
    });
    for (double m : top) S.lambda_max = std::max(S.lambda_max, m);
  }
  Prices pr;
  double lambda = 0.0;
  Usage us;
  // Later price rounds start the search from the last lambda; instances small enough to polish
  // search from scratch, which tries more multipliers for the polish below. Large instances
  // with limits start from the prices of a member sample.
  const bool warm_rounds = c.size() > p.polish_entries;
  const bool priced = P.has_inventory_limits || P.has_segment_limits;
  if (warm_rounds && priced && p.price_rounds > 0 &&
      c.n_users >= kPresolveStride * kPresolveMinSample) {
    lambda = presolve_prices(P, p, cb, S.lambda_max, plan.store, pr, &S.slope, threads);
  }
  lambda = price_rounds(P, S, pr, plan, us, lambda, warm_rounds, p.price_rounds, threads);
  // From a plan at the final prices: repair when a limit is violated, then fill.
  auto complete = [&](Plan& pl, const Usage& u_pl, Ledger& led) {
    bool violated = u_pl.spend > k.budget;
    for (std::size_t b = 0; b < u_pl.benefit_count.size() && !violated; ++b) {
      violated = k.inventory[b] >= 0 && u_pl.benefit_count[b] > k.inventory[b];
    }
    for (std::size_t s = 0; s < u_pl.seg_members.size() && !violated; ++s) {
      const std::int64_t mm = P.seg_max_members(static_cast<Index>(s));
      const double mc = P.seg_max_cost(static_cast<Index>(s));
      violated = (mm >= 0 && u_pl.seg_members[s] > mm) || (mc >= 0 && u_pl.seg_cost[s] > mc);
    }
    led = fresh_ledger(P);
    if (violated) {
      repair(P, pr, pl, led, threads);
    } else {
      fill_ledger(P, pl, u_pl, led);
    }
    check_stop(cb, "allocate");
    fill(P, pr, pl, led, p.fill_rounds, threads);
  };
  Ledger L;
  complete(plan, us, L);
  // Small instances: also polish from the other multipliers of the last search and from the
  // value-per-cost greedy plan; keep the best (ties: the first).
  if (c.size() <= p.polish_entries) {
    double best = plan_value(P, plan, threads);
    std::vector<double> starts = S.tried;
    std::sort(starts.begin(), starts.end());
    starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
    const double keep = pr.lambda;
    for (double lam : starts) {
      if (lam == keep) continue;
      Plan alt = plan;
      pr.lambda = lam;
      evaluate(P, pr, threads, 1, &alt);
      Ledger led;
      complete(alt, usage_of(P, alt, threads), led);
      const double v = plan_value(P, alt, threads);
      if (v > best) {
        best = v;
        plan = std::move(alt);
        L = std::move(led);
      }
    }
    pr.lambda = keep;
    Ledger led = fresh_ledger(P);
    Plan alt = greedy_plan(P, led, threads);
    fill(P, pr, alt, led, p.fill_rounds, threads);
    const double v = plan_value(P, alt, threads);
    if (v > best) {
      plan = std::move(alt);
      L = std::move(led);
    }
  }
  Allocation a = finish(P, plan, L, lambda, threads);
  a.dual_bound = std::max(S.bound, a.value);  // the bound is >= any feasible value; guard rounding
  a.iterations = S.iterations;
  a.method = "dual";
  return a;
}

// --- greedy
// ----------------------------------------------------------------------------------------

PERKREC_INLINE Allocation allocate_greedy(const CandidatesView& c, const AllocationConstraints& k,
                                          int num_threads) {
  using namespace detail::alloc;
  check_inputs(c, k, "allocate_greedy", num_threads);
  Problem P(c, k);
  Ledger L = fresh_ledger(P);
  const Plan plan = greedy_plan(P, L, num_threads);
  Allocation a = finish(P, plan, L, 0.0, num_threads);
  a.dual_bound = kInf;
  a.method = "greedy";
  return a;
}

}  // namespace perkrec
