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
    n_segments = static_cast<Index>(std::max(k.segment_max_members.size(), k.segment_max_cost.size()));
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
    if (!k.member_capacity.empty()) cap = std::min<int>(cap, k.member_capacity[static_cast<std::size_t>(u)]);
    const Index s = segment(u);
    if (s >= 0 && seg_max_members(s) == 0) cap = 0;
    return cap;
  }
  int kind_cap(Index u, std::int32_t kind) const {
    if (!has_kind_caps || kind < 0) return kNoLimit;
    int cap = k.max_per_kind > 0 ? k.max_per_kind : kNoLimit;
    if (!k.member_kind_capacity.empty() && kind < k.n_kinds) {
      cap = std::min<int>(cap, k.member_kind_capacity[static_cast<std::size_t>(u) * static_cast<std::size_t>(k.n_kinds) +
                                                       static_cast<std::size_t>(kind)]);
    }
    return cap;
  }
  std::int32_t kind(Index b) const { return has_kinds ? k.benefit_kind[static_cast<std::size_t>(b)] : -1; }
  std::int32_t group(Index b) const { return has_groups ? k.benefit_group[static_cast<std::size_t>(b)] : -1; }
  std::int64_t inventory(Index b) const { return k.inventory.empty() ? -1 : k.inventory[static_cast<std::size_t>(b)]; }
  Index segment(Index u) const {
    if (k.member_segment.empty()) return -1;
    const Index s = k.member_segment[static_cast<std::size_t>(u)];
    return s >= 0 && s < n_segments ? s : -1;
  }
  std::int64_t seg_max_members(Index s) const {
    return static_cast<std::size_t>(s) < k.segment_max_members.size() ? k.segment_max_members[static_cast<std::size_t>(s)] : -1;
  }
  double seg_max_cost(Index s) const {
    return static_cast<std::size_t>(s) < k.segment_max_cost.size() ? k.segment_max_cost[static_cast<std::size_t>(s)] : -1.0;
  }
  /// Why entry i of member u can never be chosen (none = it may be).
  ExclusionReason static_reason(Index u, Offset i) const {
    const float v = c.value[static_cast<std::size_t>(i)];
    const float w = c.cost[static_cast<std::size_t>(i)];
    const Index b = c.benefit[static_cast<std::size_t>(i)];
    if (!(v > 0)) return ExclusionReason::not_positive;
    if (k.min_return_per_cost > 0 && static_cast<double>(v) < k.min_return_per_cost * static_cast<double>(w)) {
      return ExclusionReason::min_return;
    }
    if (inventory(b) == 0) return ExclusionReason::inventory;
    if (cap(u) <= 0) return segment(u) >= 0 && seg_max_members(segment(u)) == 0 ? ExclusionReason::segment_quota
                                                                             : ExclusionReason::member_cap;
    if (kind_cap(u, kind(b)) <= 0) return ExclusionReason::kind_cap;
    const Index s = segment(u);
    if (s >= 0 && seg_max_cost(s) >= 0 && static_cast<double>(w) > seg_max_cost(s)) return ExclusionReason::segment_quota;
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
  double nu_of(Index s) const { return s < 0 || nu.empty() ? 0.0 : nu[static_cast<std::size_t>(s)]; }
  double rho_of(Index s) const { return s < 0 || rho.empty() ? 0.0 : rho[static_cast<std::size_t>(s)]; }
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
  std::vector<double> adj;            // adjusted value per row entry (-inf = not allowed)
  std::vector<double> top;            // positives for the relaxed top-capacity sum
  std::vector<std::int32_t> chosen;   // local indices
  std::vector<double> vals;
  std::vector<std::int32_t> kinds;
  std::vector<std::int32_t> groups;
  std::vector<std::pair<double, std::int32_t>> order;
};

struct MemberResult {
  int n = 0;            // chosen count (local indices in scratch.chosen, ascending)
  double value = 0.0;   // diversity-aware value
  double cost = 0.0;
  double relaxed = 0.0; // relaxed Lagrangian member value (>= 0)
  double topsum = 0.0;  // relaxed top-capacity sum before rho
};

// Member u's problem at the given prices: greedy under caps, kind caps, stacking groups and
// diversity; relaxed value for the dual bound.
inline void solve_member(const Problem& P, const Prices& pr, Index u, Scratch& s, MemberResult& r) {
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
  const bool simple_filter = P.k.min_return_per_cost <= 0 && !P.has_inventory_limits && !P.has_kind_caps &&
                             !(seg >= 0 && P.seg_max_cost(seg) >= 0);
  int best = -1;
  double best_adj = 0.0;
  if (cap == 1 && simple_filter && pr.mu.empty() && rho <= 0) {
    // Hot path (one slot, no per-entry limits): the best positive adjusted value.
    for (int j = 0; j < n; ++j) {
      const double a = static_cast<double>(v[j]) - price * static_cast<double>(w[j]);
      if (a > best_adj && v[j] > 0) {
        best_adj = a;
        best = j;
      }
    }
    if (best < 0 || !(best_adj > 0)) return;
    r.topsum = r.relaxed = best_adj;
    s.chosen.assign(1, best);
    r.n = 1;
    r.value = v[best];
    r.cost = w[best];
    return;
  }
  int n_pos = 0;
  for (int j = 0; j < n; ++j) {
    double a;
    if (simple_filter ? !(v[j] > 0) : !P.allowed(u, b0 + j)) {
      a = -kInf;
    } else {
      a = static_cast<double>(v[j]) - price * static_cast<double>(w[j]) - pr.mu_of(bb[j]);
    }
    s.adj[static_cast<std::size_t>(j)] = a;
    if (a > 0) {
      ++n_pos;
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
    for (int j = 0; j < n; ++j) {
      if (s.adj[static_cast<std::size_t>(j)] > 0) s.top.push_back(s.adj[static_cast<std::size_t>(j)]);
    }
    if (static_cast<int>(s.top.size()) > cap) {
      std::nth_element(s.top.begin(), s.top.begin() + (cap - 1), s.top.end(), std::greater<double>());
      s.top.resize(static_cast<std::size_t>(cap));
    }
    std::sort(s.top.begin(), s.top.end(), std::greater<double>());  // fixed summation order
    for (double a : s.top) r.topsum += a;
  }
  r.relaxed = std::max(0.0, r.topsum - rho);
  if (cap > 1) {  // positive entries (by position), for the greedy below
    s.order.clear();
    for (int j = 0; j < n; ++j) {
      if (s.adj[static_cast<std::size_t>(j)] > 0) s.order.emplace_back(-s.adj[static_cast<std::size_t>(j)], j);
    }
  }
  // Greedy choice.
  s.chosen.clear();
  double surplus = 0.0;
  if (cap == 1) {
    s.chosen.push_back(best);
    surplus = best_adj;
  } else if (!P.member_constraints) {
    const std::size_t take = std::min<std::size_t>(static_cast<std::size_t>(cap), s.order.size());
    std::partial_sort(s.order.begin(), s.order.begin() + static_cast<std::ptrdiff_t>(take), s.order.end());
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
  std::int32_t* at(Index u) { return slots.data() + static_cast<std::size_t>(u) * static_cast<std::size_t>(store); }
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
inline EvalResult evaluate(const Problem& P, const Prices& pr, int threads, Index stride, Plan* plan) {
  const Index n_members = stride == 1 ? P.c.n_users : (P.c.n_users + stride - 1) / stride;
  const Offset nb = n_blocks(n_members);
  std::vector<double> spend(static_cast<std::size_t>(nb)), relaxed(static_cast<std::size_t>(nb)),
      value(static_cast<std::size_t>(nb));
  std::vector<Scratch> scratch(static_cast<std::size_t>(resolve_num_threads(threads)));
  parallel_for(0, nb, threads, [&](Offset blk, int tid) {
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
  }, Schedule::dynamic, 4);
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
    if (pr.rho[s] > 0) d += pr.rho[s] * static_cast<double>(P.seg_max_members(static_cast<Index>(s)));
  }
  return d;
}

inline void check_stop(const Callbacks& cb, const char* stage) {
  if (cb.should_stop && cb.should_stop()) detail::raise<Interrupted>(stage, ": interrupted by the caller");
}

// State of the Lagrangian search.
struct Solver {
  const Problem& P;
  const AllocatorParams& params;
  const Callbacks& cb;
  int threads;
  double lambda_max = 0.0;  // above it every costly entry has negative adjusted value
  std::vector<double> tried;  // multipliers evaluated by the last search (full data)
  double warm_step = 0.01;    // first probe step of a warm-started search (relative)
  double bound = kInf;
  int iterations = 0;
  std::int64_t evaluations = 0;

  Solver(const Problem& problem, const AllocatorParams& p, const Callbacks& callbacks, int n_threads)
      : P(problem), params(p), cb(callbacks), threads(n_threads) {}

  EvalResult eval(const Prices& pr, Plan* plan = nullptr) {
    const EvalResult r = evaluate(P, pr, threads, 1, plan);
    if (plan == nullptr) tried.push_back(pr.lambda);
    ++evaluations;
    if (cb.progress) cb.progress("allocate", evaluations, 0);
    check_stop(cb, "allocate");
    // Any nonnegative prices give an upper bound (budget term only with a finite budget).
    if (std::isfinite(P.k.budget) || pr.lambda == 0) bound = std::min(bound, r.relaxed + dual_constant(P, pr));
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
    if (!std::isfinite(B)) {
      eval(pr, &plan);
      return 0.0;
    }
    double lo = 0.0, f_lo = 0.0;
    double hi = lambda_max * (1.0 + 1e-9) + 1e-300, f_hi = -B;  // nothing costly chosen
    // Evaluates lambda, narrows the bracket; true when the spend fits the budget.
    auto probe = [&](double lam) {
      pr.lambda = lam;
      const EvalResult r = eval(pr);
      ++iterations;
      if (r.spend > B) {
        lo = lam;
        f_lo = r.spend - B;
        return false;
      }
      hi = lam;
      f_hi = r.spend - B;
      return true;
    };
    // From a guess: probes first_delta, 4x, 16x, ... (below 100%) above it until one fits,
    // then below it until one does not.
    auto bracket_around = [&](double guess, double first_delta) {
      for (double delta = first_delta; delta < 1 && iterations < params.max_iterations; delta *= 4) {
        const double lam = guess * (1 + delta);
        if (!(lam > lo && lam < hi) || probe(lam)) break;
      }
      for (double delta = first_delta; delta < 1 && iterations < params.max_iterations; delta *= 4) {
        const double lam = guess * (1 - delta);
        if (!(lam > lo && lam < hi) || !probe(lam)) break;
      }
    };
    if (warm > 0 && warm < hi) {
      probe(warm);
      bracket_around(warm, warm_step);
    }
    const auto settle = [&](double lam) {  // the next warm start's first step: this round's move
      if (warm > 0) warm_step = std::min(0.01, std::max(1e-4, std::abs(lam - warm) / warm));
      return lam;
    };
    if (lo == 0.0) {  // no lambda above the budget yet: lambda = 0 may fit
      pr.lambda = 0.0;
      const EvalResult r0 = eval(pr);
      if (r0.spend <= B) {
        pr.lambda = 0.0;
        eval(pr, &plan);
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
      if (!(lam > lo + 1e-3 * width && lam < hi - 1e-3 * width) || iterations % 4 == 3) lam = 0.5 * (lo + hi);
      pr.lambda = lam;
      const EvalResult r = eval(pr);
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
      }
    }
    pr.lambda = hi;
    eval(pr, &plan);
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
  std::vector<std::vector<std::int64_t>> counts(static_cast<std::size_t>(nt), std::vector<std::int64_t>(nbft, 0));
  std::vector<std::vector<std::int64_t>> members(static_cast<std::size_t>(nt), std::vector<std::int64_t>(ns, 0));
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
        if (nbft) ++counts[static_cast<std::size_t>(tid)][static_cast<std::size_t>(P.c.benefit[static_cast<std::size_t>(i)])];
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
  for (const auto& c : counts) for (std::size_t b = 0; b < nbft; ++b) us.benefit_count[b] += c[b];
  us.seg_members.assign(ns, 0);
  for (const auto& m : members) for (std::size_t s = 0; s < ns; ++s) us.seg_members[s] += m[s];
  us.seg_cost.assign(ns, 0.0);
  for (Offset blk = 0; blk < nb; ++blk) {
    for (std::size_t s = 0; s < ns; ++s) us.seg_cost[s] += seg_cost[static_cast<std::size_t>(blk) * ns + s];
  }
  return us;
}

// Midpoint of the k-th and (k+1)-th largest of xs (k >= 1, xs.size() > k).
inline double kth_midpoint(std::vector<double>& xs, std::size_t k) {
  std::sort(xs.begin(), xs.end(), std::greater<double>());
  return 0.5 * (xs[k - 1] + xs[k]);
}

// One price round: returns true when a price changed.
inline bool update_prices(const Problem& P, Prices& pr, const Plan& plan, const Usage& us, int threads,
                          const AllocatorParams& params) {
  bool changed = false;
  const std::size_t nbft = us.benefit_count.size();
  const std::size_t ns = us.seg_members.size();
  std::vector<char> over_b(nbft, 0), over_m(ns, 0);
  bool any_over = false;
  for (std::size_t b = 0; b < nbft; ++b) {
    const std::int64_t inv = P.k.inventory[b];
    if (inv >= 0 && us.benefit_count[b] > inv) over_b[b] = any_over = true;
  }
  for (std::size_t s = 0; s < ns; ++s) {
    const std::int64_t mm = P.seg_max_members(static_cast<Index>(s));
    if (mm >= 0 && us.seg_members[s] > mm) over_m[s] = any_over = true;
  }
  if (any_over) {
    // Advantages of members holding an over-used benefit (vs their best unchosen entry) and
    // surpluses of members in an over-used segment, gathered per block then in block order.
    const Index n = P.c.n_users;
    const Offset nb = n_blocks(n);
    std::vector<std::vector<std::pair<std::int64_t, double>>> parts(static_cast<std::size_t>(nb));
    std::vector<Scratch> scratch(static_cast<std::size_t>(resolve_num_threads(threads)));
    parallel_for(0, nb, threads, [&](Offset blk, int tid) {
      Scratch& s = scratch[static_cast<std::size_t>(tid)];
      MemberResult r;
      auto& out = parts[static_cast<std::size_t>(blk)];
      const Index u0 = static_cast<Index>(blk * kBlock);
      const Index u1 = static_cast<Index>(std::min<Offset>(n, (blk + 1) * kBlock));
      for (Index u = u0; u < u1; ++u) {
        const int cnt = plan.count[static_cast<std::size_t>(u)];
        if (cnt == 0) continue;
        const Index seg = P.segment(u);
        const bool seg_over = seg >= 0 && static_cast<std::size_t>(seg) < ns && over_m[static_cast<std::size_t>(seg)];
        bool holds_over = false;
        const Offset b0 = P.begin(u);
        for (int t = 0; t < cnt && nbft; ++t) {
          holds_over = holds_over || over_b[static_cast<std::size_t>(P.c.benefit[static_cast<std::size_t>(b0 + plan.at(u)[t])])];
        }
        if (!seg_over && !holds_over) continue;
        solve_member(P, pr, u, s, r);  // fills s.adj at the current prices
        if (seg_over) out.emplace_back(-1 - static_cast<std::int64_t>(seg), r.topsum);
        if (holds_over) {
          const int len = static_cast<int>(P.end(u) - b0);
          double alt = 0.0;
          for (int j = 0; j < len; ++j) {
            if (std::find(plan.at(u), plan.at(u) + cnt, j) == plan.at(u) + cnt) alt = std::max(alt, s.adj[static_cast<std::size_t>(j)]);
          }
          for (int t = 0; t < cnt; ++t) {
            const int j = plan.at(u)[t];
            const Index b = P.c.benefit[static_cast<std::size_t>(b0 + j)];
            if (over_b[static_cast<std::size_t>(b)]) out.emplace_back(b, s.adj[static_cast<std::size_t>(j)] - alt);
          }
        }
      }
    });
    std::vector<std::vector<double>> adv_b(nbft), sur_s(ns);
    for (const auto& part : parts) {
      for (const auto& [key, x] : part) {
        if (key >= 0) {
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
      const double step = inv == 0 ? *std::max_element(adv_b[b].begin(), adv_b[b].end()) * 1.000001 + 1e-12
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
  // Relax prices of limits with slack.
  const double gap = std::max(params.budget_gap, 1e-9);
  for (std::size_t b = 0; b < pr.mu.size(); ++b) {
    const std::int64_t inv = P.k.inventory[b];
    if (pr.mu[b] > 0 && static_cast<double>(us.benefit_count[b]) < static_cast<double>(inv) * (1 - gap)) {
      pr.mu[b] *= 0.5;
      changed = true;
    }
  }
  for (std::size_t s = 0; s < pr.rho.size(); ++s) {
    const std::int64_t mm = P.seg_max_members(static_cast<Index>(s));
    if (pr.rho[s] > 0 && static_cast<double>(us.seg_members[s]) < static_cast<double>(mm) * (1 - gap)) {
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
      if (us.seg_cost[s] > q) {
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

// Member-level state used by repair, fill and the runner-up pass.
struct Ledger {
  double spent = 0.0;
  std::vector<std::int64_t> inv_left;  // per benefit, -1 = unlimited
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
      entries.push_back({static_cast<double>(P.c.value[i]) - (pr.lambda + pr.nu_of(seg)) * P.c.cost[i] - pr.mu_of(P.c.benefit[i]), u, j});
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
      if (L.seg_cost_left[static_cast<std::size_t>(seg)] >= 0 && c > L.seg_cost_left[static_cast<std::size_t>(seg)]) continue;
    }
    L.spent += c;
    if (L.inv_left[static_cast<std::size_t>(b)] > 0) --L.inv_left[static_cast<std::size_t>(b)];
    if (seg >= 0) {
      if (first && L.seg_members_left[static_cast<std::size_t>(seg)] > 0) --L.seg_members_left[static_cast<std::size_t>(seg)];
      if (L.seg_cost_left[static_cast<std::size_t>(seg)] >= 0) L.seg_cost_left[static_cast<std::size_t>(seg)] -= c;
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
    if (L.seg_cost_left[s] >= 0) L.seg_cost_left[s] = std::max(0.0, L.seg_cost_left[s] - us.seg_cost[s]);
  }
  (void)P;
  (void)plan;
}

// Whether member u's set, with slot `out` (-1 = none) replaced by local j (-1 = none), keeps
// the member's capacity, kind caps and stacking groups; its value in *value. vals and kinds
// are scratch of at least cnt + 1 entries.
inline bool member_set_ok(const Problem& P, Index u, const std::int32_t* slots, int cnt, int out, int j,
                          double* value, double* vals, std::int32_t* kinds) {
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
inline void fill(const Problem& P, const Prices& pr, Plan& plan, Ledger& L, int rounds, int threads) {
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
        if (cnt == 0 && seg >= 0 && L.seg_members_left[static_cast<std::size_t>(seg)] == 0) continue;
        const double seg_room = seg >= 0 && L.seg_cost_left[static_cast<std::size_t>(seg)] >= 0
                                    ? L.seg_cost_left[static_cast<std::size_t>(seg)] : kInf;
        double base = 0.0, base_cost = 0.0;
        for (int t = 0; t < cnt; ++t) {
          vals[static_cast<std::size_t>(t)] = P.c.value[static_cast<std::size_t>(b0 + slots[t])];
          kinds[static_cast<std::size_t>(t)] = P.kind(P.c.benefit[static_cast<std::size_t>(b0 + slots[t])]);
          base_cost += P.c.cost[static_cast<std::size_t>(b0 + slots[t])];
        }
        base = set_value(vals.data(), P.has_kinds ? kinds.data() : nullptr, cnt, P.diversity);
        double max_out_cost = 0.0;
        for (int t = 0; t < cnt; ++t) max_out_cost = std::max<double>(max_out_cost, P.c.cost[static_cast<std::size_t>(b0 + slots[t])]);
        Move best{0.0, 0.0, u, -2, -1};
        double min_kept = kInf;  // a swap gains at most v_j - min chosen value
        for (int t = 0; t < cnt; ++t) min_kept = std::min(min_kept, vals[static_cast<std::size_t>(t)]);
        for (int j = 0; j < len; ++j) {
          const auto i = static_cast<std::size_t>(b0 + j);
          const double vj = P.c.value[i];
          const double cj = P.c.cost[i];
          if (!(vj > 0) || (cnt >= cap && !(vj > min_kept))) continue;  // cheap filters first
          if (cj - max_out_cost > std::min(room, seg_room)) continue;  // every move costs >= this
          if (std::find(slots, slots + cnt, j) != slots + cnt) continue;
          if (!P.allowed(u, b0 + j)) continue;
          const Index b = P.c.benefit[i];
          for (int out_slot = (cnt < cap ? -1 : 0); out_slot < cnt; ++out_slot) {
            const Index b_out = out_slot >= 0 ? P.c.benefit[static_cast<std::size_t>(b0 + slots[out_slot])] : -1;
            if (b != b_out && L.inv_left[static_cast<std::size_t>(b)] == 0) continue;
            const double dc = cj - (out_slot >= 0 ? P.c.cost[static_cast<std::size_t>(b0 + slots[out_slot])] : 0.0);
            if (dc > room || dc > seg_room) continue;
            double value = 0.0;
            if (!member_set_ok(P, u, slots, cnt, out_slot, j, &value, vals.data(), kinds.data())) continue;
            const double dv = value - base;
            if (!(dv > 1e-12 * std::max(1.0, std::fabs(base)))) continue;
            if (best.out == -2 || better(dv, dc, best.dv, best.dc)) best = Move{dv, dc, u, out_slot, j};
          }
        }
        (void)base_cost;
        if (best.out != -2) out.push_back(best);
      }
    });
    std::vector<Move> moves;
    for (auto& part : parts) moves.insert(moves.end(), part.begin(), part.end());
    if (moves.empty()) break;
    std::stable_sort(moves.begin(), moves.end(), [&](const Move& a, const Move& b) {
      return better(a.dv, a.dc, b.dv, b.dc);
    });
    std::int64_t applied = 0;
    for (const Move& m : moves) {
      const Offset b0 = P.begin(m.u);
      const auto i = static_cast<std::size_t>(b0 + m.j);
      const Index b = P.c.benefit[i];
      std::int32_t* slots = plan.at(m.u);
      int& cnt = plan.count[static_cast<std::size_t>(m.u)];
      const Index b_out = m.out >= 0 ? P.c.benefit[static_cast<std::size_t>(b0 + slots[m.out])] : -1;
      const Index seg = P.segment(m.u);
      if (L.spent + m.dc > B) continue;
      if (b != b_out && L.inv_left[static_cast<std::size_t>(b)] == 0) continue;
      if (seg >= 0) {
        if (cnt == 0 && L.seg_members_left[static_cast<std::size_t>(seg)] == 0) continue;
        if (L.seg_cost_left[static_cast<std::size_t>(seg)] >= 0 && m.dc > L.seg_cost_left[static_cast<std::size_t>(seg)]) continue;
      }
      L.spent += m.dc;
      if (b != b_out) {
        if (L.inv_left[static_cast<std::size_t>(b)] > 0) --L.inv_left[static_cast<std::size_t>(b)];
        if (b_out >= 0 && L.inv_left[static_cast<std::size_t>(b_out)] >= 0) ++L.inv_left[static_cast<std::size_t>(b_out)];
      }
      if (seg >= 0) {
        if (cnt == 0 && L.seg_members_left[static_cast<std::size_t>(seg)] > 0) --L.seg_members_left[static_cast<std::size_t>(seg)];
        if (L.seg_cost_left[static_cast<std::size_t>(seg)] >= 0) L.seg_cost_left[static_cast<std::size_t>(seg)] -= m.dc;
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
inline Allocation finish(const Problem& P, const Plan& plan, const Ledger& L, double lambda, int threads) {
  Allocation a;
  const Index n = P.c.n_users;
  a.offsets.assign(static_cast<std::size_t>(n) + 1, 0);
  for (Index u = 0; u < n; ++u) {
    a.offsets[static_cast<std::size_t>(u) + 1] = a.offsets[static_cast<std::size_t>(u)] + plan.count[static_cast<std::size_t>(u)];
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
        } else if (seg >= 0 && ((cnt == 0 && L.seg_members_left[static_cast<std::size_t>(seg)] == 0) ||
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

inline void check_inputs(const CandidatesView& c, const AllocationConstraints& k, const char* context,
                         int threads) {
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
      m = std::max(m, c.offsets[static_cast<std::size_t>(u) + 1] - c.offsets[static_cast<std::size_t>(u)]);
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
  if (max_iterations < 1) {
    detail::raise<ConfigError>("AllocatorParams: max_iterations must be >= 1 (got ", max_iterations, ")");
  }
  if (!(tolerance > 0 && tolerance < 1)) {
    detail::raise<ConfigError>("AllocatorParams: tolerance must be in (0, 1) (got ", tolerance, ")");
  }
  if (price_rounds < 0) {
    detail::raise<ConfigError>("AllocatorParams: price_rounds must be >= 0 (got ", price_rounds, ")");
  }
  if (!(budget_gap >= 0 && budget_gap < 1)) {
    detail::raise<ConfigError>("AllocatorParams: budget_gap must be in [0, 1) (got ", budget_gap, ")");
  }
  if (polish_entries < 0) {
    detail::raise<ConfigError>("AllocatorParams: polish_entries must be >= 0 (got ", polish_entries, ")");
  }
  if (fill_rounds < 0) {
    detail::raise<ConfigError>("AllocatorParams: fill_rounds must be >= 0 (got ", fill_rounds, ")");
  }
  resolve_num_threads(num_threads);
}

PERKREC_INLINE Json AllocatorParams::to_json() const {
  return Json{{"max_iterations", max_iterations}, {"tolerance", tolerance},
              {"price_rounds", price_rounds},     {"num_threads", num_threads},
              {"budget_gap", budget_gap},         {"fill_rounds", fill_rounds},
              {"polish_entries", polish_entries}};
}

PERKREC_INLINE AllocatorParams AllocatorParams::from_json(const Json& j) {
  AllocatorParams p;
  JsonReader<ConfigError> r(j, "", "AllocatorParams::from_json");
  r.read("max_iterations", p.max_iterations);
  r.read("tolerance", p.tolerance);
  r.read("price_rounds", p.price_rounds);
  r.read("num_threads", p.num_threads);
  r.read("budget_gap", p.budget_gap);
  r.read("fill_rounds", p.fill_rounds);
  r.read("polish_entries", p.polish_entries);
  r.finish();
  try {
    p.validate();
  } catch (const ConfigError& e) {
    detail::raise<ConfigError>("AllocatorParams::from_json: ", e.what());
  }
  return p;
}

// --- candidates view -------------------------------------------------------------------------------

PERKREC_INLINE void CandidatesView::validate(const char* context, int num_threads) const {
  if (n_users < 0 || n_benefits < 0) {
    detail::raise<InputError>(context, ": candidates have negative shape (", n_users, " x ", n_benefits, ")");
  }
  const std::size_t n = benefit.size();
  if (offsets.size() != static_cast<std::size_t>(n_users) + 1 || offsets[0] != 0 ||
      offsets[offsets.size() - 1] != static_cast<std::int64_t>(n)) {
    detail::raise<InputError>(context, ": candidates.offsets has ", offsets.size(), " entries ending at ",
                              offsets.empty() ? 0 : offsets[offsets.size() - 1],
                              " (expected n_users + 1 = ", static_cast<std::int64_t>(n_users) + 1,
                              " entries from 0 to ", n, ")");
  }
  if (value.size() != n || cost.size() != n) {
    detail::raise<InputError>(context, ": candidates.value/cost have ", value.size(), "/", cost.size(),
                              " entries (expected ", n, ")");
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
      if (benefit[i] < 0 || benefit[i] >= n_benefits || !std::isfinite(value[i]) || !std::isfinite(cost[i]) ||
          cost[i] < 0) {
        first_bad[static_cast<std::size_t>(ch)] = static_cast<std::int64_t>(i);
        return;
      }
    }
  });
  for (std::int64_t bad : first_bad) {
    if (bad < 0) continue;
    const auto i = static_cast<std::size_t>(bad);
    if (benefit[i] < 0 || benefit[i] >= n_benefits) {
      detail::raise<InputError>(context, ": candidates.benefit[", i, "] out of range (got ", benefit[i],
                                ", expected 0 <= benefit < ", n_benefits, ")");
    }
    if (!std::isfinite(value[i])) {
      detail::raise<InputError>(context, ": candidates.value[", i, "] is not finite (got ", value[i], ")");
    }
    detail::raise<InputError>(context, ": candidates.cost[", i, "] must be finite and >= 0 (got ", cost[i], ")");
  }
  // Duplicate benefits in a row would let a member receive a benefit twice.
  const Offset nb = detail::alloc::n_blocks(n_users);
  std::vector<std::int64_t> dup(static_cast<std::size_t>(nb), -1);
  std::vector<std::vector<Index>> stamps(static_cast<std::size_t>(resolve_num_threads(num_threads)));
  parallel_for(0, nb, num_threads, [&](Offset blk, int tid) {
    std::vector<Index>& seen = stamps[static_cast<std::size_t>(tid)];
    if (seen.size() != static_cast<std::size_t>(n_benefits)) seen.assign(static_cast<std::size_t>(n_benefits), -1);
    const Index u0 = static_cast<Index>(blk * detail::alloc::kBlock);
    const Index u1 = static_cast<Index>(std::min<Offset>(n_users, (blk + 1) * detail::alloc::kBlock));
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
    if (u >= 0) detail::raise<InputError>(context, ": candidates of member ", u, " list a benefit twice");
  }
}

PERKREC_INLINE double member_set_value(Span<const float> values, Span<const std::int32_t> kinds, double diversity) {
  std::vector<double> v(values.begin(), values.end());
  if (!kinds.empty() && kinds.size() != values.size()) {
    detail::raise<InputError>("member_set_value: kinds has ", kinds.size(), " entries (expected ", values.size(), ")");
  }
  return detail::alloc::set_value(v.data(), kinds.empty() ? nullptr : kinds.data(), static_cast<int>(v.size()), diversity);
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
    if (cnt >= P.cap(u) || L.spent + w > k.budget || L.inv_left[static_cast<std::size_t>(b)] == 0) continue;
    if (seg >= 0) {
      if (cnt == 0 && L.seg_members_left[static_cast<std::size_t>(seg)] == 0) continue;
      if (L.seg_cost_left[static_cast<std::size_t>(seg)] >= 0 && w > L.seg_cost_left[static_cast<std::size_t>(seg)]) continue;
    }
    double value = 0.0;
    if (!member_set_ok(P, u, plan.at(u), cnt, -1, j, &value, vals.data(), kinds.data())) continue;
    L.spent += w;
    if (L.inv_left[static_cast<std::size_t>(b)] > 0) --L.inv_left[static_cast<std::size_t>(b)];
    if (seg >= 0) {
      if (cnt == 0 && L.seg_members_left[static_cast<std::size_t>(seg)] > 0) --L.seg_members_left[static_cast<std::size_t>(seg)];
      if (L.seg_cost_left[static_cast<std::size_t>(seg)] >= 0) L.seg_cost_left[static_cast<std::size_t>(seg)] -= w;
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

// --- allocate --------------------------------------------------------------------------------------

PERKREC_INLINE Allocation allocate(const CandidatesView& c, const AllocationConstraints& k, const AllocatorParams& p,
                                   const Callbacks& cb) {
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
  // search from scratch, which tries more multipliers for the polish below.
  const bool warm_rounds = c.size() > p.polish_entries;
  for (int round = 0;; ++round) {
    lambda = S.search(pr, plan, warm_rounds ? lambda : 0.0);
    us = usage_of(P, plan, threads);
    if (round >= p.price_rounds || !(P.has_inventory_limits || P.has_segment_limits)) break;
    if (!update_prices(P, pr, plan, us, threads, p)) break;
  }
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

// --- greedy ----------------------------------------------------------------------------------------

PERKREC_INLINE Allocation allocate_greedy(const CandidatesView& c, const AllocationConstraints& k, int num_threads) {
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

// --- exact -----------------------------------------------------------------------------------------

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
        if (!member_set_ok(P, u, cur.data(), static_cast<int>(cur.size()), -1, ok[q], &value, vals.data(), kinds.data())) {
          continue;
        }
        cur.push_back(ok[q]);
        double cost = 0.0;
        for (std::int32_t j : cur) cost += c.cost[static_cast<std::size_t>(P.begin(u) + j)];
        out.push_back({value, cost, cur});
        if (++total_subsets > max_nodes) {
          detail::raise<InputError>("allocate_exact: instance too big (more than max_nodes = ", max_nodes,
                                    " member subsets)");
        }
        if (static_cast<int>(cur.size()) < P.cap(u)) rec(q + 1);
        cur.pop_back();
      }
    };
    rec(0);
    std::stable_sort(out.begin(), out.end(), [](const Subset& a, const Subset& b) { return a.value > b.value; });
  }
  // Suffix bounds: for a few lambdas, sum over members >= u of the best subset's v - lambda c
  // (a Lagrangian relaxation of budget only; inventory and quotas are relaxed away).
  std::vector<double> lambdas{0.0};
  if (std::isfinite(k.budget)) {
    for (int e = -16; e <= 16 && start.multiplier > 0; ++e) lambdas.push_back(start.multiplier * std::exp2(e / 4.0));
  }
  const std::size_t nl = lambdas.size();
  std::vector<double> suffix((static_cast<std::size_t>(n) + 1) * nl, 0.0);
  for (Index u = n - 1; u >= 0; --u) {
    for (std::size_t q = 0; q < nl; ++q) {
      double best = 0.0;
      for (const Subset& s : subsets[static_cast<std::size_t>(u)]) best = std::max(best, s.value - lambdas[q] * s.cost);
      suffix[static_cast<std::size_t>(u) * nl + q] = suffix[(static_cast<std::size_t>(u) + 1) * nl + q] + best;
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
      detail::raise<InputError>("allocate_exact: instance too big (more than max_nodes = ", max_nodes, " nodes)");
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
        for (std::int32_t j : s.local) ok = ok && L.inv_left[static_cast<std::size_t>(c.benefit[static_cast<std::size_t>(P.begin(u) + j)])] != 0;
        if (!ok) continue;
        if (seg >= 0 && (L.seg_members_left[static_cast<std::size_t>(seg)] == 0 ||
                         (L.seg_cost_left[static_cast<std::size_t>(seg)] >= 0 && s.cost > L.seg_cost_left[static_cast<std::size_t>(seg)]))) {
          continue;
        }
        L.spent += s.cost;
        for (std::int32_t j : s.local) {
          auto& left = L.inv_left[static_cast<std::size_t>(c.benefit[static_cast<std::size_t>(P.begin(u) + j)])];
          if (left > 0) --left;
        }
        if (seg >= 0) {
          if (L.seg_members_left[static_cast<std::size_t>(seg)] > 0) --L.seg_members_left[static_cast<std::size_t>(seg)];
          if (L.seg_cost_left[static_cast<std::size_t>(seg)] >= 0) L.seg_cost_left[static_cast<std::size_t>(seg)] -= s.cost;
        }
        pick[static_cast<std::size_t>(u)] = static_cast<int>(si);
        dfs(u + 1, value + s.value);
        L.spent -= s.cost;
        for (std::int32_t j : s.local) {
          const Index b = c.benefit[static_cast<std::size_t>(P.begin(u) + j)];
          if (k.inventory.size() && k.inventory[static_cast<std::size_t>(b)] >= 0) ++L.inv_left[static_cast<std::size_t>(b)];
        }
        if (seg >= 0) {
          if (P.seg_max_members(seg) >= 0) ++L.seg_members_left[static_cast<std::size_t>(seg)];
          if (L.seg_cost_left[static_cast<std::size_t>(seg)] >= 0) L.seg_cost_left[static_cast<std::size_t>(seg)] += s.cost;
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
    const Subset& s = subsets[static_cast<std::size_t>(u)][static_cast<std::size_t>(best_pick[static_cast<std::size_t>(u)])];
    plan.count[static_cast<std::size_t>(u)] = static_cast<std::int32_t>(s.local.size());
    std::copy(s.local.begin(), s.local.end(), plan.at(u));
    F.spent += s.cost;
    const Index seg = P.segment(u);
    for (std::int32_t j : s.local) {
      auto& left = F.inv_left[static_cast<std::size_t>(c.benefit[static_cast<std::size_t>(P.begin(u) + j)])];
      if (left > 0) --left;
    }
    if (seg >= 0 && !s.local.empty()) {
      if (F.seg_members_left[static_cast<std::size_t>(seg)] > 0) --F.seg_members_left[static_cast<std::size_t>(seg)];
      if (F.seg_cost_left[static_cast<std::size_t>(seg)] >= 0) F.seg_cost_left[static_cast<std::size_t>(seg)] -= s.cost;
    }
  }
  Allocation a = finish(P, plan, F, start.multiplier, 1);
  a.dual_bound = a.value;
  a.iterations = 0;
  a.method = "exact";
  return a;
}

// --- check -----------------------------------------------------------------------------------------

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
      a.offsets.back() != static_cast<std::int64_t>(a.candidate.size()) || a.benefit.size() != a.candidate.size()) {
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
    const std::int64_t o0 = a.offsets[static_cast<std::size_t>(u)], o1 = a.offsets[static_cast<std::size_t>(u) + 1];
    if (o1 < o0) return fail("allocation: offsets decrease at member ", u);
    const int cnt = static_cast<int>(o1 - o0);
    if (cnt == 0) continue;
    if (cnt > P.cap(u)) return fail("member ", u, ": ", cnt, " benefits exceed its capacity ", P.cap(u));
    vals.clear();
    kinds.clear();
    double mc = 0.0;
    std::vector<std::int32_t> groups;
    for (std::int64_t q = o0; q < o1; ++q) {
      const std::int64_t i = a.candidate[static_cast<std::size_t>(q)];
      if (i < P.begin(u) || i >= P.end(u)) return fail("member ", u, ": entry ", i, " is not one of its candidates");
      for (std::int64_t q2 = o0; q2 < q; ++q2) {
        if (a.candidate[static_cast<std::size_t>(q2)] == i) return fail("member ", u, ": entry ", i, " chosen twice");
      }
      const Index b = c.benefit[static_cast<std::size_t>(i)];
      if (a.benefit[static_cast<std::size_t>(q)] != b) return fail("member ", u, ": benefit of entry ", i, " does not match");
      const ExclusionReason why = P.static_reason(u, i);
      if (why != ExclusionReason::none) {
        return fail("member ", u, ": entry ", i, " (benefit ", b, ") is not allowed (", exclusion_reason_name(why), ")");
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
          return fail("member ", u, ": ", count, " benefits of kind ", kinds[x], " exceed its kind cap ", P.kind_cap(u, kinds[x]));
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
  if (total_cost > k.budget * (1 + tol) + tol) return fail("budget: cost ", total_cost, " exceeds the budget ", k.budget);
  for (std::size_t b = 0; b < nb; ++b) {
    if (P.inventory(static_cast<Index>(b)) >= 0 && used[b] > P.inventory(static_cast<Index>(b))) {
      return fail("inventory: benefit ", b, " given ", used[b], " times (inventory ", P.inventory(static_cast<Index>(b)), ")");
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
  if (std::fabs(total_value - a.value) > vt) return fail("value: allocation says ", a.value, ", entries sum to ", total_value);
  const double ct = 1e-6 * std::max(1.0, std::fabs(total_cost));
  if (std::fabs(total_cost - a.cost) > ct) return fail("cost: allocation says ", a.cost, ", entries sum to ", total_cost);
  return "";
}

// --- pacing ----------------------------------------------------------------------------------------

PERKREC_INLINE void PacingParams::validate() const {
  if (!(budget >= 0)) detail::raise<ConfigError>("PacingParams: budget must be >= 0 (got ", budget, ")");
  if (end <= start) detail::raise<ConfigError>("PacingParams: end must be after start (got ", start, " .. ", end, ")");
  double prev = 0.0;
  for (std::size_t i = 0; i < spend_curve.size(); ++i) {
    const double x = spend_curve[i];
    if (!(x >= prev && x <= 1.0)) {
      detail::raise<ConfigError>("PacingParams: spend_curve[", i, "] must be non-decreasing in [0, 1] (got ", x, ")");
    }
    prev = x;
  }
  if (!(initial_multiplier >= 0) || !std::isfinite(initial_multiplier)) {
    detail::raise<ConfigError>("PacingParams: initial_multiplier must be finite and >= 0 (got ", initial_multiplier, ")");
  }
  if (!(gain >= 0) || !std::isfinite(gain)) {
    detail::raise<ConfigError>("PacingParams: gain must be finite and >= 0 (got ", gain, ")");
  }
}

PERKREC_INLINE Json PacingParams::to_json() const {
  Json j{{"start", start},
         {"end", end},
         {"spend_curve", spend_curve},
         {"initial_multiplier", initial_multiplier},
         {"gain", gain},
         {"pace_inventory", pace_inventory}};
  if (std::isfinite(budget)) j["budget"] = budget;  // absent = no budget
  return j;
}

PERKREC_INLINE PacingParams PacingParams::from_json(const Json& j) {
  PacingParams p;
  JsonReader<ConfigError> r(j, "", "PacingParams::from_json");
  r.read("budget", p.budget);
  r.require("start", p.start);
  r.require("end", p.end);
  r.read("spend_curve", p.spend_curve);
  r.read("initial_multiplier", p.initial_multiplier);
  r.read("gain", p.gain);
  r.read("pace_inventory", p.pace_inventory);
  r.finish();
  try {
    p.validate();
  } catch (const ConfigError& e) {
    detail::raise<ConfigError>("PacingParams::from_json: ", e.what());
  }
  return p;
}

PERKREC_INLINE double PacingParams::target_share(Timestamp t) const {
  if (t <= start) return 0.0;
  const double x = std::min(1.0, static_cast<double>(t - start) / static_cast<double>(end - start));
  if (spend_curve.empty()) return x;
  const double steps = static_cast<double>(spend_curve.size());
  const double pos = x * steps;  // point k (1-based) at pos = k
  const auto k = static_cast<std::size_t>(std::floor(pos));
  if (k >= spend_curve.size()) return spend_curve.back();
  const double left = k == 0 ? 0.0 : spend_curve[k - 1];
  return left + (spend_curve[k] - left) * (pos - static_cast<double>(k));
}

PERKREC_INLINE Pacer::Pacer(const AllocationConstraints& k, PacingParams p) : k_(k), params_(std::move(p)) {
  params_.validate();
  if (std::isnan(k_.budget) || k_.budget < 0) {
    detail::raise<ConfigError>("Pacer: constraints.budget must be >= 0 (got ", k_.budget, ")");
  }
  k_.budget = std::min(k_.budget, params_.budget);
  // Per-member vector sizes are checked against the member index in decide().
  const Index nu = static_cast<Index>(std::max({k_.member_capacity.size(), k_.member_segment.size(),
                                                 k_.n_kinds > 0 ? k_.member_kind_capacity.size() / static_cast<std::size_t>(k_.n_kinds) : 0}));
  const Index nb = static_cast<Index>(std::max({k_.inventory.size(), k_.benefit_kind.size(), k_.benefit_group.size()}));
  try {
    k_.validate(nu, nb);
  } catch (const InputError& e) {
    detail::raise<InputError>("Pacer: ", e.what());
  }
  inventory_used_.assign(k_.inventory.size(), 0);
  const std::size_t ns = std::max(k_.segment_max_members.size(), k_.segment_max_cost.size());
  segment_members_.assign(ns, 0);
  segment_cost_.assign(ns, 0.0);
  lambda_ = params_.initial_multiplier;
  clock_ = params_.start;
}

PERKREC_INLINE double Pacer::update_multiplier_locked(Timestamp t) {
  // The curve's clock never runs backwards: a request decided after a later one (several
  // threads, or a late arrival) is paced at the latest time seen. Otherwise a lagging thread
  // would see spend far ahead of an earlier point of the curve and refuse everything.
  clock_ = std::max(clock_, t);
  const double B = params_.budget;
  if (!(B > 0) || !std::isfinite(B)) return lambda_ = params_.initial_multiplier;
  const double target = B * params_.target_share(clock_);
  const double ahead = (spent_ - target) / B;  // share of the budget spent ahead of the curve
  const double ref = ratio_count_ > 0 ? ratio_sum_ / static_cast<double>(ratio_count_) : 1.0;
  lambda_ = std::max(0.0, params_.initial_multiplier + params_.gain * ref * ahead / 0.01);
  return lambda_;
}

PERKREC_INLINE std::vector<std::int32_t> Pacer::decide(Index member, Timestamp t, Span<const Index> benefit,
                                                       Span<const float> value, Span<const float> cost,
                                                       int max_new, std::vector<ExclusionReason>* reasons) {
  const std::size_t n = benefit.size();
  if (max_new < -1) detail::raise<InputError>("Pacer::decide: max_new must be >= -1 (got ", max_new, ")");
  if (value.size() != n || cost.size() != n) {
    detail::raise<InputError>("Pacer::decide: benefit/value/cost have ", n, "/", value.size(), "/", cost.size(),
                              " entries (expected equal)");
  }
  if (member < 0) detail::raise<InputError>("Pacer::decide: member must be >= 0 (got ", member, ")");
  auto per_member = [&](std::size_t size, const char* name) {
    if (size != 0 && static_cast<std::size_t>(member) >= size) {
      detail::raise<InputError>("Pacer::decide: member ", member, " out of range of constraints.", name, " (",
                                size, " members)");
    }
  };
  per_member(k_.member_capacity.size(), "member_capacity");
  per_member(k_.member_segment.size(), "member_segment");
  if (k_.n_kinds > 0) per_member(k_.member_kind_capacity.size() / static_cast<std::size_t>(k_.n_kinds), "member_kind_capacity");
  const std::size_t nb = std::max({k_.inventory.size(), k_.benefit_kind.size(), k_.benefit_group.size()});
  for (std::size_t i = 0; i < n; ++i) {
    if (benefit[i] < 0 || (nb > 0 && static_cast<std::size_t>(benefit[i]) >= nb)) {
      detail::raise<InputError>("Pacer::decide: benefit[", i, "] out of range (got ", benefit[i], ")");
    }
    if (!std::isfinite(value[i])) detail::raise<InputError>("Pacer::decide: value[", i, "] is not finite (got ", value[i], ")");
    if (!std::isfinite(cost[i]) || cost[i] < 0) {
      detail::raise<InputError>("Pacer::decide: cost[", i, "] must be finite and >= 0 (got ", cost[i], ")");
    }
    for (std::size_t q = 0; q < i; ++q) {
      if (benefit[q] == benefit[i]) detail::raise<InputError>("Pacer::decide: benefit ", benefit[i], " listed twice");
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  ++decisions_;
  for (std::size_t i = 0; i < n; ++i) {
    if (cost[i] > 0 && value[i] > 0) {
      ratio_sum_ += static_cast<double>(value[i]) / cost[i];
      ++ratio_count_;
    }
    if (value[i] > 0) {
      value_sum_ += value[i];
      ++value_count_;
    }
  }
  const double lam = update_multiplier_locked(t);
  // Inventory price: gain x (mean value seen) per 1% of the benefit's units used ahead of the
  // curve; a benefit at or behind the curve is free.
  const double inventory_price = value_count_ > 0 ? params_.gain * value_sum_ / static_cast<double>(value_count_) / 0.01 : 0.0;
  const double share = params_.target_share(clock_);
  auto mu = [&](Index b) {
    if (!params_.pace_inventory || k_.inventory.empty()) return 0.0;
    const std::int64_t cap = k_.inventory[static_cast<std::size_t>(b)];
    if (cap <= 0) return 0.0;  // unlimited (< 0) or none left (0, refused below)
    const double ahead = static_cast<double>(inventory_used_[static_cast<std::size_t>(b)]) / static_cast<double>(cap) - share;
    return ahead > 0 ? inventory_price * ahead : 0.0;
  };
  MemberState& ms = members_[member];
  int cap = k_.max_per_member;
  if (!k_.member_capacity.empty()) cap = std::min<int>(cap, k_.member_capacity[static_cast<std::size_t>(member)]);
  const Index seg = k_.member_segment.empty() ? -1 : k_.member_segment[static_cast<std::size_t>(member)];
  const bool seg_limited = seg >= 0 && static_cast<std::size_t>(seg) < segment_members_.size();
  auto seg_max_members = [&]() -> std::int64_t {
    return seg_limited && static_cast<std::size_t>(seg) < k_.segment_max_members.size() ? k_.segment_max_members[static_cast<std::size_t>(seg)] : -1;
  };
  auto seg_max_cost = [&]() -> double {
    return seg_limited && static_cast<std::size_t>(seg) < k_.segment_max_cost.size() ? k_.segment_max_cost[static_cast<std::size_t>(seg)] : -1.0;
  };
  auto kind_of = [&](Index b) { return k_.benefit_kind.empty() ? -1 : k_.benefit_kind[static_cast<std::size_t>(b)]; };
  auto group_of = [&](Index b) { return k_.benefit_group.empty() ? -1 : k_.benefit_group[static_cast<std::size_t>(b)]; };
  auto kind_cap = [&](std::int32_t kd) {
    if (kd < 0) return detail::alloc::kNoLimit;
    int c = k_.max_per_kind > 0 ? k_.max_per_kind : detail::alloc::kNoLimit;
    if (!k_.member_kind_capacity.empty() && kd < k_.n_kinds) {
      c = std::min<int>(c, k_.member_kind_capacity[static_cast<std::size_t>(member) * static_cast<std::size_t>(k_.n_kinds) +
                                                    static_cast<std::size_t>(kd)]);
    }
    return c;
  };
  using R = ExclusionReason;
  std::vector<R> reason(n, R::none);
  std::vector<std::pair<double, std::int32_t>> order;
  for (std::size_t i = 0; i < n; ++i) {
    const double v = value[i], c = cost[i];
    if (!(v > 0)) {
      reason[i] = R::not_positive;
    } else if (v < k_.min_return_per_cost * c) {
      reason[i] = R::min_return;
    } else if (v - lam * c <= 0) {
      reason[i] = R::below_multiplier;
    } else if (const double a = v - lam * c - mu(benefit[i]); a <= 0) {
      reason[i] = R::inventory;  // priced out: its inventory is ahead of the curve
    } else {
      order.emplace_back(-a, static_cast<std::int32_t>(i));
    }
  }
  std::sort(order.begin(), order.end());
  std::vector<std::int32_t> chosen;
  for (const auto& [neg_a, i] : order) {
    R& why = reason[static_cast<std::size_t>(i)];
    if (static_cast<int>(ms.benefits.size()) >= cap || (max_new >= 0 && static_cast<int>(chosen.size()) >= max_new)) {
      why = R::member_cap;  // the member's cap, or this call's max_new
      continue;
    }
    const Index b = benefit[static_cast<std::size_t>(i)];
    const double c = cost[static_cast<std::size_t>(i)];
    if (std::find(ms.benefits.begin(), ms.benefits.end(), b) != ms.benefits.end()) {
      why = R::member_cap;  // held already
      continue;
    }
    if (spent_ + c > k_.budget) {
      why = R::budget;
      continue;
    }
    if (!k_.inventory.empty() && k_.inventory[static_cast<std::size_t>(b)] >= 0 &&
        inventory_used_[static_cast<std::size_t>(b)] >= k_.inventory[static_cast<std::size_t>(b)]) {
      why = R::inventory;
      continue;
    }
    const std::int32_t g = group_of(b), kd = kind_of(b);
    bool conflict = false;
    int same_kind = 0;
    for (Index held : ms.benefits) {
      conflict = conflict || (g >= 0 && group_of(held) == g);
      same_kind += kd >= 0 && kind_of(held) == kd;
    }
    if (conflict) {
      why = R::stacking;
      continue;
    }
    if (kd >= 0 && same_kind >= kind_cap(kd)) {
      why = R::kind_cap;
      continue;
    }
    if (seg_limited) {
      const std::int64_t mm = seg_max_members();
      const double mc = seg_max_cost();
      if ((ms.benefits.empty() && mm >= 0 && segment_members_[static_cast<std::size_t>(seg)] >= mm) ||
          (mc >= 0 && segment_cost_[static_cast<std::size_t>(seg)] + c > mc)) {
        why = R::segment_quota;
        continue;
      }
      if (ms.benefits.empty()) ++segment_members_[static_cast<std::size_t>(seg)];
      segment_cost_[static_cast<std::size_t>(seg)] += c;
    }
    spent_ += c;
    if (!k_.inventory.empty()) ++inventory_used_[static_cast<std::size_t>(b)];
    ms.benefits.push_back(b);
    chosen.push_back(i);
    ++issued_;
  }
  std::sort(chosen.begin(), chosen.end());
  if (reasons != nullptr) *reasons = std::move(reason);
  return chosen;
}

PERKREC_INLINE double Pacer::spent() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return spent_;
}
PERKREC_INLINE double Pacer::multiplier() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lambda_;
}
PERKREC_INLINE std::int64_t Pacer::decisions() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return decisions_;
}
PERKREC_INLINE std::int64_t Pacer::issued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return issued_;
}

}  // namespace perkrec
