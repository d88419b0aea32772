// Definitions for behavior_features.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <unordered_set>
#include <utility>

#include "perkrec/core/threading.hpp"
#include "perkrec/features/behavior_features.hpp"

namespace perkrec {

PERKREC_INLINE const std::vector<std::string>& behavior_aggregate_names() {
  static const std::vector<std::string> names = {"count",
                                                 "quantity",
                                                 "spend",
                                                 "decayed_count",
                                                 "days_since_last",
                                                 "share_of_wallet",
                                                 "member_count",
                                                 "member_baskets",
                                                 "member_spend",
                                                 "member_distinct_items",
                                                 "member_days_since_last",
                                                 "popularity_events",
                                                 "popularity_members"};
  return names;
}

PERKREC_INLINE void BehaviorFeatureParams::validate() const {
  const char* ctx = "BehaviorFeatureParams::validate";
  const auto& all = behavior_aggregate_names();
  std::unordered_set<std::string> seen;
  for (const auto& a : aggregates) {
    if (std::find(all.begin(), all.end(), a) == all.end()) {
      detail::raise<ConfigError>(ctx, ": aggregates: unknown aggregate '", a,
                                 "' (expected one of behavior_aggregate_names())");
    }
    if (!seen.insert(a).second)
      detail::raise<ConfigError>(ctx, ": aggregates: '", a, "' is listed twice");
  }
  seen.clear();
  for (const auto& l : levels) {
    if (l.empty()) detail::raise<ConfigError>(ctx, ": levels: empty level name");
    if (l == "items")
      detail::raise<ConfigError>(ctx, ": levels: 'items' names the benefit's own items scope");
    if (!seen.insert(l).second)
      detail::raise<ConfigError>(ctx, ": levels: '", l, "' is listed twice");
  }
  seen.clear();
  if (actions.empty()) detail::raise<ConfigError>(ctx, ": actions: expected at least one action");
  for (const auto& a : actions) {
    if (a.empty()) detail::raise<ConfigError>(ctx, ": actions: empty action name");
    if (!seen.insert(a).second)
      detail::raise<ConfigError>(ctx, ": actions: '", a, "' is listed twice");
  }
  params::validate_fields(*this, "BehaviorFeatureParams");
}

namespace detail {

/// Aggregate ids in output order: scope aggregates, then the others, as requested.
struct BehaviorLayout {
  std::vector<int> scope;  // ids < kBehaviorScopeAggregates
  std::vector<int> other;  // ids >= kBehaviorScopeAggregates
  int columns = 0;         // per sample
};

inline BehaviorLayout behavior_layout(const BehaviorFeatureParams& p) {
  p.validate();
  const auto& all = behavior_aggregate_names();
  BehaviorLayout l;
  const auto& wanted = p.aggregates.empty() ? all : p.aggregates;
  for (const auto& a : wanted) {
    const int id = static_cast<int>(std::find(all.begin(), all.end(), a) - all.begin());
    (id < kBehaviorScopeAggregates ? l.scope : l.other).push_back(id);
  }
  const auto per_action = (1 + p.levels.size()) * l.scope.size() + l.other.size();
  l.columns = static_cast<int>(per_action * p.actions.size());
  return l;
}

}  // namespace detail

PERKREC_INLINE std::vector<std::string> behavior_column_names(const BehaviorFeatureParams& p) {
  const auto layout = detail::behavior_layout(p);
  const auto& all = behavior_aggregate_names();
  std::vector<std::string> out;
  for (const auto& action : p.actions) {
    std::vector<std::string> scopes{"items"};
    scopes.insert(scopes.end(), p.levels.begin(), p.levels.end());
    for (const auto& s : scopes) {
      for (int a : layout.scope)
        out.push_back(action + "_" + s + "_" + all[static_cast<std::size_t>(a)]);
    }
    for (int a : layout.other) out.push_back(action + "_" + all[static_cast<std::size_t>(a)]);
  }
  return out;
}

namespace detail {

// One accumulator per (action, item) or (action, level value): the events so far.
struct BehaviorAcc {
  double count = 0.0;
  double quantity = 0.0;
  double spend = 0.0;
  double decayed = 0.0;      // sum of 2^((t_event - ref) / half-life), ref per member (see below)
  Timestamp last = kNoTime;  // latest event time; kNoTime = untouched
};

// Per-thread scratch: dense accumulators and the slots touched by the current member.
struct BehaviorScratch {
  std::vector<BehaviorAcc> item;                // action slot x items
  std::vector<std::vector<BehaviorAcc>> level;  // per level: action slot x values
  std::vector<std::size_t> touched_item;
  std::vector<std::vector<std::size_t>> touched_level;
  std::unordered_set<std::int64_t> baskets;
  bool ready = false;
};

// Member totals per action slot.
struct BehaviorMember {
  double count = 0.0, spend = 0.0, distinct_items = 0.0, baskets = 0.0;
  Timestamp last = kNoTime;
  std::int64_t last_basket = std::numeric_limits<std::int64_t>::min();
};

// Sorted event times per (action slot, item) over all members, and sorted times of each
// member's first event per (action slot, item); or, when `per_benefit`, the same lists merged
// per (action slot, benefit) over the benefit's items, so that a sample needs one binary search
// instead of one per item (on large logs the per-item searches miss the cache k times).
struct BehaviorPopularity {
  bool per_benefit = false;
  std::size_t keys_per_slot = 0;  // items, or benefits when per_benefit
  std::vector<Offset> start;      // slots x keys_per_slot + 1
  std::vector<Timestamp> times;
  std::vector<Offset> first_start;  // slots x keys_per_slot + 1
  std::vector<Timestamp> first_times;
};

// Merges the per-item lists of `p` into per-benefit lists for the benefits flagged in `used`
// (the others get empty lists), unless that would hold more than `cap` times.
inline void merge_popularity_per_benefit(BehaviorPopularity& p, const BenefitItems& benefit_items,
                                         const std::vector<std::uint8_t>& used, std::size_t n_slots,
                                         Offset cap, int num_threads) {
  const auto n_items = p.keys_per_slot;
  const auto n_benefits = static_cast<std::size_t>(benefit_items.n_benefits());
  const std::size_t keys = n_slots * n_benefits;
  std::vector<Offset> start(keys + 1, 0), first_start(keys + 1, 0);
  for (std::size_t s = 0; s < n_slots; ++s) {
    for (std::size_t b = 0; b < n_benefits; ++b) {
      if (!used[b]) continue;
      for (Index i : benefit_items.items(static_cast<Index>(b))) {
        const std::size_t k = s * n_items + static_cast<std::size_t>(i);
        start[s * n_benefits + b + 1] += p.start[k + 1] - p.start[k];
        first_start[s * n_benefits + b + 1] += p.first_start[k + 1] - p.first_start[k];
      }
    }
  }
  for (std::size_t k = 0; k < keys; ++k) {
    start[k + 1] += start[k];
    first_start[k + 1] += first_start[k];
  }
  if (start.back() + first_start.back() > cap) return;  // keep the per-item lists
  std::vector<Timestamp> times(static_cast<std::size_t>(start.back()));
  std::vector<Timestamp> first_times(static_cast<std::size_t>(first_start.back()));
  parallel_for(
      0, static_cast<Offset>(keys), num_threads,
      [&](Offset kk) {
        const auto key = static_cast<std::size_t>(kk);
        const std::size_t s = key / n_benefits, b = key % n_benefits;
        if (!used[b]) return;
        auto gather = [&](const std::vector<Offset>& from_start, const std::vector<Timestamp>& from,
                          const std::vector<Offset>& to_start, std::vector<Timestamp>& to) {
          auto out = to.begin() + to_start[key];
          for (Index i : benefit_items.items(static_cast<Index>(b))) {
            const std::size_t k = s * n_items + static_cast<std::size_t>(i);
            const auto mid = out;
            out = std::copy(from.begin() + from_start[k], from.begin() + from_start[k + 1], out);
            std::inplace_merge(to.begin() + to_start[key], mid, out);
          }
        };
        gather(p.start, p.times, start, times);
        gather(p.first_start, p.first_times, first_start, first_times);
      },
      Schedule::dynamic, 16);
  p.per_benefit = true;
  p.keys_per_slot = n_benefits;
  p.start = std::move(start);
  p.first_start = std::move(first_start);
  p.times = std::move(times);
  p.first_times = std::move(first_times);
}

inline BehaviorPopularity behavior_popularity(const BehaviorLog& log,
                                              const std::vector<int>& slot_of_code,
                                              std::size_t n_slots, int num_threads) {
  const auto n_items = static_cast<std::size_t>(log.n_items());
  const std::size_t keys = n_slots * n_items;
  BehaviorPopularity p;
  p.keys_per_slot = n_items;
  p.start.assign(keys + 1, 0);
  p.first_start.assign(keys + 1, 0);
  const auto items = log.items();
  const auto actions = log.actions();
  const auto times = log.timestamps();
  // Events are grouped by member, so an event is its member's first on a key exactly when the
  // key's last member differs.
  std::vector<Index> last_member(keys, -1);
  for (Index u = 0; u < log.n_users(); ++u) {
    for (Offset e = log.user_begin(u); e < log.user_end(u); ++e) {
      const int s = slot_of_code[actions[static_cast<std::size_t>(e)]];
      if (s < 0) continue;
      const std::size_t k = static_cast<std::size_t>(s) * n_items +
                            static_cast<std::size_t>(items[static_cast<std::size_t>(e)]);
      ++p.start[k + 1];
      if (last_member[k] != u) {
        last_member[k] = u;
        ++p.first_start[k + 1];
      }
    }
  }
  for (std::size_t k = 0; k < keys; ++k) {
    p.start[k + 1] += p.start[k];
    p.first_start[k + 1] += p.first_start[k];
  }
  p.times.resize(static_cast<std::size_t>(p.start.back()));
  p.first_times.resize(static_cast<std::size_t>(p.first_start.back()));
  std::vector<Offset> fill(p.start.begin(), p.start.end() - 1);
  std::vector<Offset> first_fill(p.first_start.begin(), p.first_start.end() - 1);
  std::fill(last_member.begin(), last_member.end(), -1);
  for (Index u = 0; u < log.n_users(); ++u) {
    for (Offset e = log.user_begin(u); e < log.user_end(u); ++e) {
      const int s = slot_of_code[actions[static_cast<std::size_t>(e)]];
      if (s < 0) continue;
      const std::size_t k = static_cast<std::size_t>(s) * n_items +
                            static_cast<std::size_t>(items[static_cast<std::size_t>(e)]);
      const Timestamp t = times[static_cast<std::size_t>(e)];
      p.times[static_cast<std::size_t>(fill[k]++)] = t;
      if (last_member[k] != u) {
        last_member[k] = u;
        p.first_times[static_cast<std::size_t>(first_fill[k]++)] =
            t;  // the member's events are time-sorted
      }
    }
  }
  parallel_for(
      0, static_cast<Offset>(keys), num_threads,
      [&](Offset k) {
        const auto kk = static_cast<std::size_t>(k);
        std::sort(p.times.begin() + p.start[kk], p.times.begin() + p.start[kk + 1]);
        std::sort(p.first_times.begin() + p.first_start[kk],
                  p.first_times.begin() + p.first_start[kk + 1]);
      },
      Schedule::dynamic, 4096);
  return p;
}

// The validated inputs of one call: action slots, level tables, and which output columns come
// from the per-member sweep and which from the popularity lists.
struct BehaviorPlan {
  BehaviorLayout layout;
  std::size_t cols = 0, n_slots = 0, n_levels = 0, per_action = 0;
  std::vector<int> slot_of_code;  // log action code -> slot, -1 = ignored
  std::vector<const std::vector<std::int32_t>*> level_codes;
  std::vector<std::size_t> level_size;
  std::vector<LevelValues> level_values;
  std::vector<std::size_t> sweep_columns;  // output columns of the sweep, in order
  struct PopularityColumn {
    std::size_t column = 0, slot = 0;
    bool events = true;  // popularity_events, else popularity_members
  };
  std::vector<PopularityColumn> popularity_columns;
};

inline BehaviorPlan behavior_plan(const BehaviorSamples& samples, const BehaviorLog& log,
                                  const ItemCatalog& catalog, const BenefitItems& benefit_items,
                                  const BehaviorFeatureParams& params, const char* ctx) {
  BehaviorPlan plan;
  plan.layout = behavior_layout(params);
  const std::size_t n = samples.user.size();
  if (samples.benefit.size() != n || samples.timestamp.size() != n) {
    detail::raise<InputError>(ctx, ": samples: user, benefit and timestamp have ", n, ", ",
                              samples.benefit.size(), " and ", samples.timestamp.size(),
                              " rows (expected equal lengths)");
  }
  if (log.n_items() != catalog.size() || benefit_items.n_items() != catalog.size()) {
    detail::raise<InputError>(ctx, ": item counts differ (behaviour log ", log.n_items(),
                              ", item catalog ", catalog.size(), ", benefit items ",
                              benefit_items.n_items(), "; all three must index the same items)");
  }
  plan.slot_of_code.assign(256, -1);
  for (std::size_t s = 0; s < params.actions.size(); ++s) {
    const int code = log.action_code(params.actions[s], ctx);
    plan.slot_of_code[static_cast<std::size_t>(code)] = static_cast<int>(s);
  }
  plan.n_slots = params.actions.size();
  plan.n_levels = params.levels.size();
  plan.level_codes.resize(plan.n_levels);
  plan.level_size.resize(plan.n_levels);
  plan.level_values.resize(plan.n_levels);
  for (std::size_t l = 0; l < plan.n_levels; ++l) {
    const int li = catalog.level_index(params.levels[l], ctx);
    plan.level_codes[l] = &catalog.level_codes(li);
    plan.level_size[l] = catalog.level_values(li).size();
    plan.level_values[l] = benefit_items.level_values(catalog, params.levels[l]);
  }
  const Index n_benefits = benefit_items.n_benefits();
  detail::check_behavior_sample_indices(samples, n_benefits, ctx);
  plan.cols = static_cast<std::size_t>(plan.layout.columns);
  plan.per_action = (1 + plan.n_levels) * plan.layout.scope.size() + plan.layout.other.size();
  const std::size_t others = (1 + plan.n_levels) * plan.layout.scope.size();
  for (std::size_t c = 0; c < plan.cols; ++c) {
    const std::size_t slot = c / plan.per_action, j = c % plan.per_action;
    const int id = j < others ? -1 : plan.layout.other[j - others];
    if (id >= 11) {
      plan.popularity_columns.push_back({c, slot, id == 11});
    } else {
      plan.sweep_columns.push_back(c);
    }
  }
  return plan;
}

// The popularity aggregates of every sample, `write(row, k, value)` for the k-th entry of
// plan.popularity_columns, computed row by row from the sorted times (freed on return).
template <class Write>
void behavior_popularity_values(const BehaviorPlan& plan, const BehaviorSamples& samples,
                                const BehaviorLog& log, const BenefitItems& benefit_items,
                                int num_threads, Write&& write) {
  if (plan.popularity_columns.empty() || samples.user.empty()) return;
  BehaviorPopularity pop = behavior_popularity(log, plan.slot_of_code, plan.n_slots, num_threads);
  const std::size_t n = samples.user.size();
  std::vector<std::uint8_t> used(static_cast<std::size_t>(benefit_items.n_benefits()), 0);
  for (std::size_t i = 0; i < n; ++i) used[static_cast<std::size_t>(samples.benefit[i])] = 1;
  // Merged lists are worth their memory up to about twice the log.
  const auto cap = std::max<Offset>(Offset{1} << 24, 2 * static_cast<Offset>(pop.times.size()));
  merge_popularity_per_benefit(pop, benefit_items, used, plan.n_slots, cap, num_threads);
  parallel_for(
      0, static_cast<Offset>(n), num_threads,
      [&](Offset r) {
        const auto row = static_cast<std::size_t>(r);
        const Timestamp t = samples.timestamp[row];
        const auto benefit = static_cast<Index>(samples.benefit[row]);
        for (std::size_t k = 0; k < plan.popularity_columns.size(); ++k) {
          const auto& pc = plan.popularity_columns[k];
          const auto& st = pc.events ? pop.start : pop.first_start;
          const auto& tm = pc.events ? pop.times : pop.first_times;
          Offset c = 0;
          auto count_before = [&](std::size_t key) {
            const auto lo = tm.begin() + st[key], hi = tm.begin() + st[key + 1];
            c += std::lower_bound(lo, hi, t) - lo;
          };
          if (pop.per_benefit) {
            count_before(pc.slot * pop.keys_per_slot + static_cast<std::size_t>(benefit));
          } else {
            for (Index item : benefit_items.items(benefit))
              count_before(pc.slot * pop.keys_per_slot + static_cast<std::size_t>(item));
          }
          write(row, k, static_cast<double>(c));
        }
      },
      Schedule::static_chunks);
}

// The sweep over each member's events (see the header's Algorithm): for every sample, a row of
// plan.cols values (the popularity columns left unset) is handed to `sink(row, values)`; calls
// for different rows run concurrently.
template <class Sink>
void behavior_sweep(const BehaviorPlan& plan, const BehaviorSamples& samples,
                    const BehaviorLog& log, const BenefitItems& benefit_items,
                    const BehaviorFeatureParams& params, Sink&& sink) {
  const std::size_t n = samples.user.size();
  if (n == 0 || plan.sweep_columns.empty()) return;
  const BehaviorLayout& layout = plan.layout;
  const std::size_t cols = plan.cols, n_slots = plan.n_slots, n_levels = plan.n_levels;
  const std::size_t per_action = plan.per_action;
  const auto& slot_of_code = plan.slot_of_code;
  const auto& level_codes = plan.level_codes;
  const auto& level_size = plan.level_size;
  const auto& level_values = plan.level_values;

  // Samples grouped by member; members the log lacks share the last group (no behaviour).
  const Index n_users = log.n_users();
  std::vector<Offset> start(static_cast<std::size_t>(n_users) + 2, 0);
  auto group_of = [&](std::size_t i) {
    const std::int64_t u = samples.user[i];
    return static_cast<std::size_t>(u < n_users ? u : n_users);
  };
  for (std::size_t i = 0; i < n; ++i) ++start[group_of(i) + 1];
  for (std::size_t g = 0; g + 1 < start.size(); ++g) start[g + 1] += start[g];
  std::vector<Offset> order(n);
  {
    std::vector<Offset> fill(start.begin(), start.end() - 1);
    for (std::size_t i = 0; i < n; ++i)
      order[static_cast<std::size_t>(fill[group_of(i)]++)] = static_cast<Offset>(i);
  }

  const auto n_items = static_cast<std::size_t>(log.n_items());
  const double half_life_s = params.half_life_days * static_cast<double>(kSecondsPerDay);
  const int threads = resolve_num_threads(params.num_threads);
  std::vector<BehaviorScratch> scratch(static_cast<std::size_t>(threads));
  // One row of values per thread, a cache line apart so that threads never share a line.
  const std::size_t row_stride = (cols + 7) / 8 * 8 + 8;
  std::vector<double> row_values(static_cast<std::size_t>(threads) * row_stride, 0.0);
  const auto ev_item = log.items();
  const auto ev_action = log.actions();
  const auto ev_time = log.timestamps();
  const auto ev_qty = log.quantities();
  const auto ev_amount = log.amounts();
  const auto ev_basket = log.baskets();
  const bool baskets = log.has_baskets();

  parallel_for(
      0, static_cast<Offset>(n_users) + 1, params.num_threads,
      [&](Offset g, int thread) {
        const auto gg = static_cast<std::size_t>(g);
        const Offset s0 = start[gg], s1 = start[gg + 1];
        if (s0 == s1) return;
        std::sort(order.begin() + s0, order.begin() + s1, [&](Offset a, Offset b) {
          const auto ta = samples.timestamp[static_cast<std::size_t>(a)];
          const auto tb = samples.timestamp[static_cast<std::size_t>(b)];
          return ta != tb ? ta < tb : a < b;
        });
        BehaviorScratch& sc = scratch[static_cast<std::size_t>(thread)];
        if (!sc.ready) {
          sc.item.assign(n_slots * n_items, BehaviorAcc{});
          sc.level.resize(n_levels);
          sc.touched_level.resize(n_levels);
          for (std::size_t l = 0; l < n_levels; ++l)
            sc.level[l].assign(n_slots * level_size[l], BehaviorAcc{});
          sc.ready = true;
        }
        double* const o = row_values.data() + static_cast<std::size_t>(thread) * row_stride;
        std::vector<BehaviorMember> member(n_slots);
        sc.baskets.clear();
        // Decayed counts are kept as sums of 2^((t_event - ref) / half-life) against one
        // reference time per member (its first event), so an event costs one exp2 whatever
        // the number of scopes, and a scope one log2 + exp2 at the sample time. When the
        // weights grow large the reference moves up and every touched sum is rescaled.
        Timestamp ref = kNoTime;
        auto rescale = [&](Timestamp new_ref) {
          const double f = std::exp2(static_cast<double>(ref - new_ref) / half_life_s);
          for (std::size_t slot : sc.touched_item) sc.item[slot].decayed *= f;
          for (std::size_t l = 0; l < n_levels; ++l) {
            for (std::size_t slot : sc.touched_level[l]) sc.level[l][slot].decayed *= f;
          }
          ref = new_ref;
        };
        auto add = [&](BehaviorAcc& a, Timestamp t, double q, double amount, double w,
                       std::vector<std::size_t>& touched, std::size_t slot) {
          if (a.last == kNoTime) touched.push_back(slot);
          a.decayed += w;
          a.count += 1.0;
          a.quantity += q;
          a.spend += amount;
          a.last = t;
        };
        Offset e = g < n_users ? log.user_begin(static_cast<Index>(g)) : 0;
        const Offset e_end = g < n_users ? log.user_end(static_cast<Index>(g)) : 0;
        for (Offset k = s0; k < s1; ++k) {
          const auto row = static_cast<std::size_t>(order[static_cast<std::size_t>(k)]);
          const Timestamp t = samples.timestamp[row];
          for (; e < e_end && ev_time[static_cast<std::size_t>(e)] < t; ++e) {
            const auto ee = static_cast<std::size_t>(e);
            const int s = slot_of_code[ev_action[ee]];
            if (s < 0) continue;
            const auto ss = static_cast<std::size_t>(s);
            const Timestamp te = ev_time[ee];
            const double q = ev_qty[ee], amount = ev_amount[ee];
            const auto item = static_cast<std::size_t>(ev_item[ee]);
            BehaviorMember& m = member[ss];
            if (ref == kNoTime) ref = te;
            double w = std::exp2(static_cast<double>(te - ref) / half_life_s);
            if (w > 0x1p500) {
              rescale(te);
              w = 1.0;
            }
            BehaviorAcc& ia = sc.item[ss * n_items + item];
            if (ia.last == kNoTime) m.distinct_items += 1.0;
            add(ia, te, q, amount, w, sc.touched_item, ss * n_items + item);
            for (std::size_t l = 0; l < n_levels; ++l) {
              const std::int32_t v = (*level_codes[l])[item];
              if (v < 0) continue;
              const std::size_t slot = ss * level_size[l] + static_cast<std::size_t>(v);
              add(sc.level[l][slot], te, q, amount, w, sc.touched_level[l], slot);
            }
            m.count += 1.0;
            m.spend += amount;
            m.last = te;
            // Distinct baskets (or distinct times): a repeat of the previous one needs no set.
            const std::int64_t b = baskets ? ev_basket[ee] : te;
            if (!(baskets && b < 0) && b != m.last_basket) {
              m.last_basket = b;
              // The set key carries the action slot so that actions count separately.
              const auto key = static_cast<std::int64_t>(static_cast<std::uint64_t>(b) * 256u + ss);
              if (sc.baskets.insert(key).second) m.baskets += 1.0;
            }
          }
          // Evaluate the sample.
          const auto benefit = static_cast<Index>(samples.benefit[row]);
          const auto its = benefit_items.items(benefit);
          for (std::size_t ss = 0; ss < n_slots; ++ss) {
            const BehaviorMember& m = member[ss];
            double* oa = o + ss * per_action;
            auto emit_scope = [&](const BehaviorAcc& sum, double decayed, Timestamp last,
                                  double* dst) {
              for (std::size_t j = 0; j < layout.scope.size(); ++j) {
                double v = 0.0;
                switch (layout.scope[j]) {
                  case 0:
                    v = sum.count;
                    break;
                  case 1:
                    v = sum.quantity;
                    break;
                  case 2:
                    v = sum.spend;
                    break;
                  case 3:
                    v = decayed;
                    break;
                  case 4:
                    v = last == kNoTime
                            ? kBehaviorNeverDays
                            : static_cast<double>(t - last) / static_cast<double>(kSecondsPerDay);
                    break;
                  default:
                    v = m.spend > 0.0 ? sum.spend / m.spend : 0.0;
                    break;
                }
                dst[j] = v;
              }
            };
            auto gather = [&](const BehaviorAcc* accs, std::size_t base, auto&& keys, double* dst) {
              BehaviorAcc sum;
              double decayed = 0.0;
              Timestamp last = kNoTime;
              for (auto key : keys) {
                const BehaviorAcc& a = accs[base + static_cast<std::size_t>(key)];
                if (a.last == kNoTime) continue;
                sum.count += a.count;
                sum.quantity += a.quantity;
                sum.spend += a.spend;
                decayed += a.decayed;
                last = std::max(last, a.last);
              }
              // log2 first: the scaled sum may be huge and the factor to the sample time tiny.
              if (decayed > 0.0)
                decayed =
                    std::exp2(std::log2(decayed) + static_cast<double>(ref - t) / half_life_s);
              emit_scope(sum, decayed, last, dst);
            };
            gather(sc.item.data(), ss * n_items, its, oa);
            for (std::size_t l = 0; l < n_levels; ++l) {
              gather(sc.level[l].data(), ss * level_size[l], level_values[l].of(benefit),
                     oa + (1 + l) * layout.scope.size());
            }
            double* od = oa + (1 + n_levels) * layout.scope.size();
            for (std::size_t j = 0; j < layout.other.size(); ++j) {
              switch (layout.other[j]) {
                case 6:
                  od[j] = m.count;
                  break;
                case 7:
                  od[j] = m.baskets;
                  break;
                case 8:
                  od[j] = m.spend;
                  break;
                case 9:
                  od[j] = m.distinct_items;
                  break;
                case 10:
                  od[j] = m.last == kNoTime ? kBehaviorNeverDays
                                            : static_cast<double>(t - m.last) /
                                                  static_cast<double>(kSecondsPerDay);
                  break;
                default:  // popularity: behavior_popularity_values
                  break;
              }
            }
          }
          sink(row, static_cast<const double*>(o));
        }
        // Reset what this member touched.
        for (std::size_t slot : sc.touched_item) sc.item[slot] = BehaviorAcc{};
        sc.touched_item.clear();
        for (std::size_t l = 0; l < n_levels; ++l) {
          for (std::size_t slot : sc.touched_level[l]) sc.level[l][slot] = BehaviorAcc{};
          sc.touched_level[l].clear();
        }
      },
      Schedule::dynamic, 64);
}

PERKREC_INLINE std::vector<double> behavior_matrix(
    const BehaviorSamples& samples, const BehaviorLog& log, const ItemCatalog& catalog,
    const BenefitItems& benefit_items, const BehaviorFeatureParams& params, const char* ctx) {
  const BehaviorPlan plan = behavior_plan(samples, log, catalog, benefit_items, params, ctx);
  const std::size_t n = samples.user.size(), cols = plan.cols;
  std::vector<double> out(n * cols, 0.0);
  if (n == 0 || cols == 0) return out;
  behavior_popularity_values(plan, samples, log, benefit_items, params.num_threads,
                             [&](std::size_t row, std::size_t k, double v) {
                               out[row * cols + plan.popularity_columns[k].column] = v;
                             });
  behavior_sweep(plan, samples, log, benefit_items, params,
                 [&](std::size_t row, const double* values) {
                   double* dst = out.data() + row * cols;
                   for (std::size_t c : plan.sweep_columns) dst[c] = values[c];
                 });
  return out;
}

inline std::size_t behavior_staging_rows(std::size_t columns, std::size_t value_bytes) {
  // Blocks of at least 32 MiB: allocations that large are mapped on their own and given back
  // to the system when freed by common allocators (glibc's mmap threshold never exceeds
  // 32 MiB), so a block freed during the transposition really lowers the resident memory.
  std::size_t rows = 1;
  while (rows * std::max<std::size_t>(columns, 1) * value_bytes < (std::size_t{1} << 25)) rows *= 2;
  return rows;
}

// The output columns of behavior_table as T (double, or float: each value rounded as it is
// written, so no double copy of the output exists). Memory: the output columns plus one
// staging block at a time, not the output twice. The popularity columns are written in place
// first (their sorted times freed before the sweep); the sweep writes each sample's row into
// row-major blocks of T (its samples come in member order, so column-wise writes would miss
// the cache once per column); then each block is appended to the columns, whose capacity is
// reserved but untouched until then, and freed.
template <class T>
void behavior_columns_as(const BehaviorPlan& plan, const BehaviorSamples& samples,
                         const BehaviorLog& log, const BenefitItems& benefit_items,
                         const BehaviorFeatureParams& params, std::size_t staging_rows,
                         std::vector<std::vector<T>>& columns) {
  const std::size_t n = samples.user.size();
  columns.resize(plan.cols);
  for (const auto& pc : plan.popularity_columns) columns[pc.column].assign(n, T{0});
  behavior_popularity_values(plan, samples, log, benefit_items, params.num_threads,
                             [&](std::size_t row, std::size_t k, double v) {
                               columns[plan.popularity_columns[k].column][row] = static_cast<T>(v);
                             });
  const std::size_t width = plan.sweep_columns.size();
  if (n == 0 || width == 0) return;
  for (std::size_t c : plan.sweep_columns) columns[c].reserve(n);
  if (staging_rows == 0) staging_rows = behavior_staging_rows(width, sizeof(T));
  int shift = 0;
  while ((std::size_t{1} << shift) < staging_rows) ++shift;
  const std::size_t n_blocks = (n + staging_rows - 1) >> shift;
  auto block_rows = [&](std::size_t b) { return std::min(staging_rows, n - (b << shift)); };
  std::vector<std::unique_ptr<T[]>> blocks(n_blocks);
  for (std::size_t b = 0; b < n_blocks; ++b) blocks[b].reset(new T[block_rows(b) * width]);
  const std::size_t mask = staging_rows - 1;
  behavior_sweep(plan, samples, log, benefit_items, params,
                 [&](std::size_t row, const double* values) {
                   T* dst = blocks[row >> shift].get() + (row & mask) * width;
                   for (std::size_t j = 0; j < width; ++j)
                     dst[j] = static_cast<T>(values[plan.sweep_columns[j]]);
                 });
  // Each thread appends a contiguous range of the columns, a tile of rows at a time, so that
  // the tile's rows are read from memory once for all the range's columns.
  const auto parts = std::min<std::size_t>(
      static_cast<std::size_t>(resolve_num_threads(params.num_threads)), width);
  for (std::size_t b = 0; b < n_blocks; ++b) {
    const T* block = blocks[b].get();
    const std::size_t rows = block_rows(b);
    parallel_for(0, static_cast<Offset>(parts), static_cast<int>(parts), [&](Offset part) {
      const std::size_t j0 = width * static_cast<std::size_t>(part) / parts;
      const std::size_t j1 = width * static_cast<std::size_t>(part + 1) / parts;
      constexpr std::size_t kTile = 256;
      T tile[kTile];
      for (std::size_t r0 = 0; r0 < rows; r0 += kTile) {
        const std::size_t r1 = std::min(rows, r0 + kTile);
        for (std::size_t j = j0; j < j1; ++j) {
          for (std::size_t r = r0; r < r1; ++r) tile[r - r0] = block[r * width + j];
          auto& column = columns[plan.sweep_columns[j]];
          column.insert(column.end(), tile, tile + (r1 - r0));
        }
      }
    });
    blocks[b].reset();
  }
}

PERKREC_INLINE BehaviorTable behavior_table(const BehaviorSamples& samples, const BehaviorLog& log,
                                            const ItemCatalog& catalog,
                                            const BenefitItems& benefit_items,
                                            const BehaviorFeatureParams& params,
                                            std::size_t staging_rows, const char* ctx) {
  const BehaviorPlan plan = behavior_plan(samples, log, catalog, benefit_items, params, ctx);
  if ((staging_rows & (staging_rows - 1)) != 0) {
    detail::raise<InputError>(ctx, ": staging_rows: expected 0 or a power of two (got ",
                              staging_rows, ")");
  }
  BehaviorTable t;
  t.rows = static_cast<Offset>(samples.user.size());
  t.names = behavior_column_names(params);
  if (params.dtype == BehaviorFeatureParams::Dtype::float32) {
    behavior_columns_as(plan, samples, log, benefit_items, params, staging_rows, t.float32_columns);
  } else {
    behavior_columns_as(plan, samples, log, benefit_items, params, staging_rows, t.columns);
  }
  return t;
}

}  // namespace detail

PERKREC_INLINE BehaviorTable behavior_features(const BehaviorSamples& samples,
                                               const BehaviorLog& log, const ItemCatalog& items,
                                               const BenefitItems& benefit_items,
                                               const BehaviorFeatureParams& params) {
  return detail::behavior_table(samples, log, items, benefit_items, params, 0, "behavior_features");
}

}  // namespace perkrec
