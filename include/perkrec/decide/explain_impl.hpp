// Definitions for decide/explain.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>

#include "perkrec/core/threading.hpp"
#include "perkrec/data/benefit_dimensions.hpp"
#include "perkrec/decide/explain.hpp"

namespace perkrec {

namespace detail {

/// Appends x rounded to 6 significant digits (null for non-finite values).
inline void append_number(std::string& out, double x) {
  if (!std::isfinite(x)) {
    out += "null";
    return;
  }
  char buffer[32];
  const int n = std::snprintf(buffer, sizeof(buffer), "%.6g", x);
  out.append(buffer, static_cast<std::size_t>(n));
}

/// Appends s as a JSON string (quotes, escapes; UTF-8 passes through).
inline void append_string(std::string& out, const std::string& s) {
  out += '"';
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      char buffer[8];
      std::snprintf(buffer, sizeof(buffer), "\\u%04x", u);
      out += buffer;
    } else {
      out += c;
    }
  }
  out += '"';
}

inline void append_id(std::string& out, const std::vector<std::string>& ids, Index i) {
  if (ids.empty()) {
    out += std::to_string(i);
  } else {
    append_string(out, ids[static_cast<std::size_t>(i)]);
  }
}

}  // namespace detail

PERKREC_INLINE ExplanationContext ExplanationContext::make(const PreferenceModel* pref,
                                                           const Catalog& catalog,
                                                           const ScoreBlend* blend,
                                                           std::vector<std::string> rule_names) {
  ExplanationContext ctx;
  ctx.benefit_ids.reserve(static_cast<std::size_t>(catalog.size()));
  for (const Benefit& b : catalog.benefits()) ctx.benefit_ids.push_back(b.id);
  ctx.benefit_dim_offsets.assign(static_cast<std::size_t>(catalog.size()) + 1, 0);
  if (pref != nullptr && pref->fitted()) {
    if (pref->n_benefits() != catalog.size()) {
      detail::raise<InputError>("ExplanationContext::make: the preference model has ",
                                pref->n_benefits(), " benefits (expected the catalog's ",
                                catalog.size(), ")");
    }
    ctx.preference = pref->preferences();
    ctx.lower = pref->lower();
    ctx.upper = pref->upper();
    ctx.dimension_names = pref->dimension_names();
    const IdMap& users = pref->user_ids();
    if (users.size() == pref->n_users() && users.size() > 0) {
      if (users.key_type() == IdMap::KeyType::string) {
        ctx.member_ids = users.strings();
      } else {
        for (std::int64_t id : users.integers()) ctx.member_ids.push_back(std::to_string(id));
      }
    }
    std::unordered_map<std::string, std::int32_t> index;
    for (std::size_t d = 0; d < ctx.dimension_names.size(); ++d) {
      index.emplace(ctx.dimension_names[d], static_cast<std::int32_t>(d));
    }
    const BenefitDimensions dims =
        BenefitDimensions::for_catalog(catalog, pref->params().dimensions);
    std::vector<int> active;
    for (Index b = 0; b < catalog.size(); ++b) {
      active.clear();
      dims.encode(catalog[b], active);
      for (int d : active) {
        const auto it = index.find(dims.names()[static_cast<std::size_t>(d)]);
        if (it != index.end()) ctx.benefit_dims.push_back(it->second);
      }
      ctx.benefit_dim_offsets[static_cast<std::size_t>(b) + 1] =
          static_cast<std::int32_t>(ctx.benefit_dims.size());
    }
  }
  if (blend != nullptr) ctx.source_names = blend->source_names();
  ctx.rule_names = std::move(rule_names);
  return ctx;
}

PERKREC_INLINE void ExplanationContext::set_behavior(const BehaviorEvidence& evidence) {
  const char* c = "ExplanationContext::set_behavior";
  if (!evidence.complete())
    detail::raise<InputError>(c, ": expected a behaviour log, an item catalog and benefit items");
  const Index items = evidence.items->size();
  if (evidence.log->n_items() != items || evidence.benefit_items->n_items() != items) {
    detail::raise<InputError>(c, ": the log, the item catalog and the benefit items index ",
                              evidence.log->n_items(), ", ", items, " and ",
                              evidence.benefit_items->n_items(), " items (expected the same)");
  }
  if (!benefit_ids.empty() &&
      evidence.benefit_items->n_benefits() != static_cast<Index>(benefit_ids.size())) {
    detail::raise<InputError>(c, ": benefit_items covers ", evidence.benefit_items->n_benefits(),
                              " benefits (expected the catalog's ", benefit_ids.size(), ")");
  }
  if (evidence.window_days < 1) {
    detail::raise<InputError>(c, ": window_days must be >= 1 (got ", evidence.window_days, ")");
  }
  std::vector<std::string> levels = evidence.items->level_names();
  std::vector<LevelValues> values;
  for (const std::string& level : levels)
    values.push_back(evidence.benefit_items->level_values(*evidence.items, level));
  behavior = evidence;
  behavior_levels = std::move(levels);
  behavior_level_values = std::move(values);
}

PERKREC_INLINE void ExplanationContext::validate() const {
  const char* c = "ExplanationContext";
  if (top_dimensions < 0)
    detail::raise<InputError>(c, ": top_dimensions must be >= 0 (got ", top_dimensions, ")");
  if (benefit_dim_offsets.empty() || benefit_dim_offsets.front() != 0 ||
      benefit_dim_offsets.back() != static_cast<std::int32_t>(benefit_dims.size())) {
    detail::raise<InputError>(
        c, ": benefit_dim_offsets must start at 0 and end at benefit_dims.size() (",
        benefit_dims.size(), ")");
  }
  for (std::size_t i = 0; i + 1 < benefit_dim_offsets.size(); ++i) {
    if (benefit_dim_offsets[i + 1] < benefit_dim_offsets[i]) {
      detail::raise<InputError>(c, ": benefit_dim_offsets decrease at benefit ", i);
    }
  }
  const Index dims = n_dimensions();
  for (std::size_t i = 0; i < benefit_dims.size(); ++i) {
    if (benefit_dims[i] < 0 || benefit_dims[i] >= dims) {
      detail::raise<InputError>(c, ": benefit_dims[", i, "] out of range (got ", benefit_dims[i],
                                ", expected 0 <= dimension < ", dims, ")");
    }
  }
  if (!preference.empty() &&
      (dims == 0 || preference.size() % static_cast<std::size_t>(dims) != 0)) {
    detail::raise<InputError>(c, ": preference has ", preference.size(),
                              " entries (expected members x ", dims, " dimensions)");
  }
  if ((!lower.empty() && lower.size() != preference.size()) ||
      (!upper.empty() && upper.size() != preference.size())) {
    detail::raise<InputError>(c, ": lower/upper have ", lower.size(), "/", upper.size(),
                              " entries (expected the preference's ", preference.size(),
                              " or none)");
  }
  if (!benefit_ids.empty() && benefit_ids.size() + 1 != benefit_dim_offsets.size() &&
      benefit_dims.size() > 0) {
    detail::raise<InputError>(c, ": benefit_ids has ", benefit_ids.size(), " entries (expected ",
                              benefit_dim_offsets.size() - 1, ")");
  }
}

namespace detail {

/// Benefits a context can name: ids when given, else the CSR rows, else unbounded.
inline Index context_benefits(const ExplanationContext& ctx) {
  if (!ctx.benefit_ids.empty()) return static_cast<Index>(ctx.benefit_ids.size());
  if (ctx.benefit_dim_offsets.size() > 1) return ctx.n_benefits();
  return std::numeric_limits<Index>::max();
}

inline Index context_members(const ExplanationContext& ctx) {
  if (!ctx.member_ids.empty()) return static_cast<Index>(ctx.member_ids.size());
  if (!ctx.preference.empty() && ctx.n_dimensions() > 0) {
    return static_cast<Index>(ctx.preference.size() / static_cast<std::size_t>(ctx.n_dimensions()));
  }
  return std::numeric_limits<Index>::max();
}

/// What a member did with an action, in words ("bought", "viewed", ...).
inline std::string behavior_verb(const std::string& action) {
  if (action == "purchase") return "bought";
  if (action == "view") return "viewed";
  if (action == "cart") return "put in the cart";
  if (action == "search") return "searched for";
  if (action == "like") return "liked";
  if (action == "share") return "shared";
  if (action == "comment") return "commented on";
  return "had '" + action + "' events on";
}

/// Appends ,"behavior":[...] for the row (see the file comment).
inline void append_behavior(const ExplanationContext& ctx, const ExplanationRow& row,
                            std::string& out) {
  out += ",\"behavior\":[";
  const BehaviorEvidence& ev = ctx.behavior;
  const BehaviorLog& log = *ev.log;
  if (row.time == kNoTime || row.member >= log.n_users() ||
      row.benefit >= ev.benefit_items->n_benefits()) {
    out += ']';
    return;
  }
  const std::size_t scopes = 1 + ctx.behavior_levels.size();
  const std::size_t n_actions = log.action_names().size();
  std::vector<double> count(n_actions * scopes, 0.0), spend(n_actions * scopes, 0.0);
  const Span<const Index> its = ev.benefit_items->items(row.benefit);
  const Timestamp window = static_cast<Timestamp>(ev.window_days) * kSecondsPerDay;
  const Timestamp from = row.time > kMinTimestamp + window ? row.time - window : kMinTimestamp;
  const Offset e1 = log.before(row.member, row.time);
  const auto item = log.items();
  const auto action = log.actions();
  const auto amount = log.amounts();
  for (Offset e = log.before(row.member, from); e < e1; ++e) {
    const auto ee = static_cast<std::size_t>(e);
    const Index i = item[ee];
    const std::size_t base = static_cast<std::size_t>(action[ee]) * scopes;
    auto add = [&](std::size_t scope) {
      count[base + scope] += 1.0;
      spend[base + scope] += amount[ee];
    };
    if (std::binary_search(its.begin(), its.end(), i)) add(0);
    for (std::size_t l = 0; l + 1 < scopes; ++l) {
      const std::int32_t v =
          ev.items->level_codes(static_cast<int>(l))[static_cast<std::size_t>(i)];
      const Span<const std::int32_t> values = ctx.behavior_level_values[l].of(row.benefit);
      if (v >= 0 && std::binary_search(values.begin(), values.end(), v)) add(1 + l);
    }
  }
  const std::string period = ev.window_days % 7 == 0 ? std::to_string(ev.window_days / 7) + " weeks"
                                                     : std::to_string(ev.window_days) + " days";
  bool first = true;
  for (std::size_t a = 0; a < n_actions; ++a) {
    for (std::size_t scope = 0; scope < scopes; ++scope) {
      const double n = count[a * scopes + scope];
      if (n == 0) continue;
      const std::string& name = scope == 0 ? std::string("items") : ctx.behavior_levels[scope - 1];
      if (!first) out += ',';
      first = false;
      out += "{\"action\":";
      append_string(out, log.action_names()[a]);
      out += ",\"scope\":";
      append_string(out, name);
      out += ",\"count\":";
      append_number(out, n);
      out += ",\"spend\":";
      append_number(out, spend[a * scopes + scope]);
      out += ",\"days\":";
      out += std::to_string(ev.window_days);
      out += ",\"text\":";
      const std::string times =
          n == 1 ? std::string("once") : std::to_string(static_cast<long long>(n)) + " times";
      append_string(out, behavior_verb(log.action_names()[a]) + " " +
                             (scope == 0 ? std::string("items of this benefit") : "its " + name) +
                             " " + times + " in the last " + period);
      out += '}';
    }
  }
  out += ']';
}

/// Writes one explanation as JSON text into `out` (cleared first).
inline void explain_row(const ExplanationContext& ctx, const ExplanationRow& row, Index n_benefits,
                        Index n_members, std::vector<std::pair<float, std::int32_t>>& scratch,
                        std::string& out) {
  const char* c = "explain";
  if (row.member < 0 || row.member >= n_members) {
    detail::raise<InputError>(c, ": member out of range (got ", row.member,
                              ", expected 0 <= member < ", n_members, ")");
  }
  auto check_benefit = [&](const char* field, Index b) {
    if (b < 0 || b >= n_benefits) {
      detail::raise<InputError>(c, ": ", field, " out of range (got ", b,
                                ", expected 0 <= benefit < ", n_benefits, ")");
    }
  };
  check_benefit("benefit", row.benefit);
  if (row.runner_up >= 0) check_benefit("runner_up", row.runner_up);
  if (row.best_ineligible >= 0) check_benefit("best_ineligible", row.best_ineligible);
  out.clear();
  out += "{\"member\":";
  append_id(out, ctx.member_ids, row.member);
  out += ",\"benefit\":";
  append_id(out, ctx.benefit_ids, row.benefit);
  out += ",\"probability\":";
  append_number(out, row.probability);
  out += ",\"value\":";
  append_number(out, row.value);
  out += ",\"cost\":";
  append_number(out, row.cost);

  out += ",\"preferences\":[";
  const Index dims = ctx.n_dimensions();
  const bool have_pref =
      !ctx.preference.empty() && dims > 0 &&
      static_cast<std::size_t>(row.benefit) + 1 < ctx.benefit_dim_offsets.size() &&
      (static_cast<std::size_t>(row.member) + 1) * static_cast<std::size_t>(dims) <=
          ctx.preference.size();
  if (have_pref && ctx.top_dimensions > 0) {
    const std::size_t base = static_cast<std::size_t>(row.member) * static_cast<std::size_t>(dims);
    scratch.clear();
    for (std::int32_t k = ctx.benefit_dim_offsets[static_cast<std::size_t>(row.benefit)];
         k < ctx.benefit_dim_offsets[static_cast<std::size_t>(row.benefit) + 1]; ++k) {
      const std::int32_t d = ctx.benefit_dims[static_cast<std::size_t>(k)];
      scratch.emplace_back(ctx.preference[base + static_cast<std::size_t>(d)], d);
    }
    const std::size_t top = std::min(scratch.size(), static_cast<std::size_t>(ctx.top_dimensions));
    const auto larger = [](const auto& a, const auto& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    };
    std::partial_sort(scratch.begin(), scratch.begin() + static_cast<std::ptrdiff_t>(top),
                      scratch.end(), larger);
    for (std::size_t i = 0; i < top; ++i) {
      const std::size_t d = static_cast<std::size_t>(scratch[i].second);
      if (i > 0) out += ',';
      out += "{\"dimension\":";
      append_string(out, ctx.dimension_names[d]);
      out += ",\"lift\":";
      append_number(out, scratch[i].first);
      if (!ctx.lower.empty()) {
        out += ",\"lower\":";
        append_number(out, ctx.lower[base + d]);
      }
      if (!ctx.upper.empty()) {
        out += ",\"upper\":";
        append_number(out, ctx.upper[base + d]);
      }
      out += '}';
    }
  }
  out += "],\"contributions\":[";
  const std::size_t k = ctx.source_names.size();
  if (row.contributions != nullptr && k > 0) {
    // Largest term first (stable in source order); k is small, so insertion order suffices.
    std::size_t order[64];
    std::vector<std::size_t> big;
    std::size_t* idx = order;
    if (k > 64) {
      big.resize(k);
      idx = big.data();
    }
    for (std::size_t s = 0; s < k; ++s) idx[s] = s;
    std::stable_sort(idx, idx + k, [&](std::size_t a, std::size_t b) {
      return row.contributions[a] > row.contributions[b];
    });
    for (std::size_t i = 0; i < k; ++i) {
      if (i > 0) out += ',';
      out += "{\"source\":";
      append_string(out, ctx.source_names[idx[i]]);
      out += ",\"term\":";
      append_number(out, row.contributions[idx[i]]);
      out += '}';
    }
  }
  out += "],\"runner_up\":";
  if (row.runner_up >= 0) {
    out += "{\"benefit\":";
    append_id(out, ctx.benefit_ids, row.runner_up);
    out += ",\"reason\":\"";
    out += exclusion_reason_name(row.runner_up_reason);
    out += "\"}";
  } else {
    out += "null";
  }
  out += ",\"best_ineligible\":";
  if (row.best_ineligible >= 0) {
    out += "{\"benefit\":";
    append_id(out, ctx.benefit_ids, row.best_ineligible);
    out += ",\"rule\":";
    const std::int32_t r = row.best_ineligible_rule;
    if (r >= 0 && static_cast<std::size_t>(r) < ctx.rule_names.size()) {
      append_string(out, ctx.rule_names[static_cast<std::size_t>(r)]);
    } else if (r >= 0) {
      append_string(out, "rule " + std::to_string(r));
    } else {
      out += "null";
    }
    out += '}';
  } else {
    out += "null";
  }
  if (ctx.behavior.complete()) append_behavior(ctx, row, out);
  out += '}';
}

}  // namespace detail

PERKREC_INLINE std::string explain_text(const ExplanationContext& ctx, const ExplanationRow& row) {
  ctx.validate();
  std::vector<std::pair<float, std::int32_t>> scratch;
  std::string text;
  detail::explain_row(ctx, row, detail::context_benefits(ctx), detail::context_members(ctx),
                      scratch, text);
  return text;
}

PERKREC_INLINE Json explain(const ExplanationContext& ctx, const ExplanationRow& row) {
  return Json::parse(explain_text(ctx, row));
}

PERKREC_INLINE Json explain(const ExplanationContext& ctx, Index member, Index benefit,
                            const Candidates& candidates, const Allocation* allocation,
                            const ScoreBlend* blend, const RankDiagnostics* diagnostics) {
  if (member < 0 || member >= candidates.n_users) {
    detail::raise<InputError>("explain: member out of range (got ", member,
                              ", expected 0 <= member < ", candidates.n_users, ")");
  }
  ExplanationRow row;
  row.member = member;
  row.benefit = benefit;
  const auto u = static_cast<std::size_t>(member);
  for (std::int64_t k = candidates.offsets[u]; k < candidates.offsets[u + 1]; ++k) {
    const auto kz = static_cast<std::size_t>(k);
    if (candidates.benefit[kz] == benefit) {
      row.value = candidates.value[kz];
      row.cost = candidates.cost[kz];
      if (!candidates.probability.empty()) row.probability = candidates.probability[kz];
      break;
    }
  }
  std::vector<float> terms;
  if (blend != nullptr && blend->fitted()) {
    terms.resize(static_cast<std::size_t>(blend->n_sources()));
    blend->contributions(Span<const Index>(&member, 1), Span<const Index>(&benefit, 1), terms);
    row.contributions = terms.data();
  }
  if (allocation != nullptr && u < allocation->runner_up.size()) {
    const std::int64_t r = allocation->runner_up[u];
    if (r >= 0 && r < candidates.size()) {
      row.runner_up = candidates.benefit[static_cast<std::size_t>(r)];
      if (u < allocation->runner_up_reason.size())
        row.runner_up_reason = allocation->runner_up_reason[u];
    }
  }
  if (diagnostics != nullptr && u < diagnostics->best_ineligible.size()) {
    row.best_ineligible = diagnostics->best_ineligible[u];
    row.best_ineligible_rule = diagnostics->best_ineligible_rule[u];
  }
  ExplanationContext local = ctx;  // source names follow the blend actually used
  if (blend != nullptr) local.source_names = blend->source_names();
  return explain(local, row);
}

PERKREC_INLINE std::vector<std::string> explain_batch(const ExplanationContext& ctx,
                                                      const ExplanationBatch& rows,
                                                      int num_threads) {
  ctx.validate();
  const std::size_t n = rows.members.size();
  auto check = [&](const char* field, std::size_t got, std::size_t expected) {
    if (got != 0 && got != expected) {
      detail::raise<InputError>("explain_batch: ", field, " has ", got, " entries (expected ",
                                expected, " or none)");
    }
  };
  if (rows.benefits.size() != n) {
    detail::raise<InputError>("explain_batch: benefits has ", rows.benefits.size(),
                              " entries (expected ", n, ", one per member)");
  }
  check("probability", rows.probability.size(), n);
  check("value", rows.value.size(), n);
  check("cost", rows.cost.size(), n);
  check("contributions", rows.contributions.size(), n * ctx.source_names.size());
  check("runner_up", rows.runner_up.size(), n);
  check("runner_up_reason", rows.runner_up_reason.size(), n);
  check("best_ineligible", rows.best_ineligible.size(), n);
  check("best_ineligible_rule", rows.best_ineligible_rule.size(), n);
  for (std::size_t i = 0; i < rows.runner_up_reason.size(); ++i) {
    if (rows.runner_up_reason[i] > static_cast<std::uint8_t>(ExclusionReason::not_positive)) {
      detail::raise<InputError>("explain_batch: runner_up_reason[", i,
                                "] is not a reason code (got ",
                                static_cast<int>(rows.runner_up_reason[i]), ")");
    }
  }
  const Index n_benefits = detail::context_benefits(ctx);
  const Index n_members = detail::context_members(ctx);
  std::vector<std::string> out(n);
  const Offset chunk = 512;
  const Offset chunks = static_cast<Offset>((n + chunk - 1) / chunk);
  parallel_for(
      0, chunks, num_threads,
      [&](Offset c) {
        std::vector<std::pair<float, std::int32_t>> scratch;
        const std::size_t i0 = static_cast<std::size_t>(c * chunk);
        const std::size_t i1 = std::min(n, i0 + static_cast<std::size_t>(chunk));
        for (std::size_t i = i0; i < i1; ++i) {
          ExplanationRow row;
          row.member = rows.members[i];
          row.benefit = rows.benefits[i];
          if (!rows.probability.empty()) row.probability = rows.probability[i];
          if (!rows.value.empty()) row.value = rows.value[i];
          if (!rows.cost.empty()) row.cost = rows.cost[i];
          if (!rows.contributions.empty())
            row.contributions = rows.contributions.data() + i * ctx.source_names.size();
          if (!rows.runner_up.empty()) row.runner_up = rows.runner_up[i];
          if (!rows.runner_up_reason.empty())
            row.runner_up_reason = static_cast<ExclusionReason>(rows.runner_up_reason[i]);
          if (!rows.best_ineligible.empty()) row.best_ineligible = rows.best_ineligible[i];
          if (!rows.best_ineligible_rule.empty())
            row.best_ineligible_rule = rows.best_ineligible_rule[i];
          row.time = rows.time;
          detail::explain_row(ctx, row, n_benefits, n_members, scratch, out[i]);
        }
      },
      Schedule::dynamic, 1);
  return out;
}

}  // namespace perkrec
