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

/// x rounded to 6 significant digits (JSON null for non-finite values).
inline Json round_json(double x) {
  if (!std::isfinite(x)) return nullptr;
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.6g", x);
  return std::strtod(buffer, nullptr);
}

inline Json id_json(const std::vector<std::string>& ids, Index i) {
  if (ids.empty()) return i;
  return ids[static_cast<std::size_t>(i)];
}

}  // namespace detail

PERKREC_INLINE ExplanationContext ExplanationContext::make(const PreferenceModel* pref, const Catalog& catalog,
                                                           const ScoreBlend* blend,
                                                           std::vector<std::string> rule_names) {
  ExplanationContext ctx;
  ctx.benefit_ids.reserve(static_cast<std::size_t>(catalog.size()));
  for (const Benefit& b : catalog.benefits()) ctx.benefit_ids.push_back(b.id);
  ctx.benefit_dim_offsets.assign(static_cast<std::size_t>(catalog.size()) + 1, 0);
  if (pref != nullptr && pref->fitted()) {
    if (pref->n_benefits() != catalog.size()) {
      detail::raise<InputError>("ExplanationContext::make: the preference model has ", pref->n_benefits(),
                                " benefits (expected the catalog's ", catalog.size(), ")");
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
    const BenefitDimensions dims = BenefitDimensions::for_catalog(catalog, pref->params().dimensions);
    std::vector<int> active;
    for (Index b = 0; b < catalog.size(); ++b) {
      active.clear();
      dims.encode(catalog[b], active);
      for (int d : active) {
        const auto it = index.find(dims.names()[static_cast<std::size_t>(d)]);
        if (it != index.end()) ctx.benefit_dims.push_back(it->second);
      }
      ctx.benefit_dim_offsets[static_cast<std::size_t>(b) + 1] = static_cast<std::int32_t>(ctx.benefit_dims.size());
    }
  }
  if (blend != nullptr) ctx.source_names = blend->source_names();
  ctx.rule_names = std::move(rule_names);
  return ctx;
}

PERKREC_INLINE void ExplanationContext::validate() const {
  const char* c = "ExplanationContext";
  if (top_dimensions < 0) detail::raise<InputError>(c, ": top_dimensions must be >= 0 (got ", top_dimensions, ")");
  if (benefit_dim_offsets.empty() || benefit_dim_offsets.front() != 0 ||
      benefit_dim_offsets.back() != static_cast<std::int32_t>(benefit_dims.size())) {
    detail::raise<InputError>(c, ": benefit_dim_offsets must start at 0 and end at benefit_dims.size() (",
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
  if (!preference.empty() && (dims == 0 || preference.size() % static_cast<std::size_t>(dims) != 0)) {
    detail::raise<InputError>(c, ": preference has ", preference.size(), " entries (expected members x ", dims,
                              " dimensions)");
  }
  if ((!lower.empty() && lower.size() != preference.size()) || (!upper.empty() && upper.size() != preference.size())) {
    detail::raise<InputError>(c, ": lower/upper have ", lower.size(), "/", upper.size(),
                              " entries (expected the preference's ", preference.size(), " or none)");
  }
  if (!benefit_ids.empty() && benefit_ids.size() + 1 != benefit_dim_offsets.size() && benefit_dims.size() > 0) {
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

inline Json explain_row(const ExplanationContext& ctx, const ExplanationRow& row, Index n_benefits,
                        Index n_members, std::vector<std::pair<float, std::int32_t>>& scratch) {
  const char* c = "explain";
  if (row.member < 0 || row.member >= n_members) {
    detail::raise<InputError>(c, ": member out of range (got ", row.member, ", expected 0 <= member < ", n_members, ")");
  }
  auto check_benefit = [&](const char* field, Index b) {
    if (b < 0 || b >= n_benefits) {
      detail::raise<InputError>(c, ": ", field, " out of range (got ", b, ", expected 0 <= benefit < ", n_benefits,
                                ")");
    }
  };
  check_benefit("benefit", row.benefit);
  Json out = Json::object();
  out["member"] = id_json(ctx.member_ids, row.member);
  out["benefit"] = id_json(ctx.benefit_ids, row.benefit);
  out["probability"] = round_json(row.probability);
  out["value"] = round_json(row.value);
  out["cost"] = round_json(row.cost);

  Json prefs = Json::array();
  const Index dims = ctx.n_dimensions();
  const bool have_pref = !ctx.preference.empty() && dims > 0 &&
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
    std::sort(scratch.begin(), scratch.end(), [](const auto& a, const auto& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    });
    const std::size_t top = std::min(scratch.size(), static_cast<std::size_t>(ctx.top_dimensions));
    for (std::size_t i = 0; i < top; ++i) {
      const std::size_t d = static_cast<std::size_t>(scratch[i].second);
      Json e = Json::object();
      e["dimension"] = ctx.dimension_names[d];
      e["lift"] = round_json(scratch[i].first);
      if (!ctx.lower.empty()) e["lower"] = round_json(ctx.lower[base + d]);
      if (!ctx.upper.empty()) e["upper"] = round_json(ctx.upper[base + d]);
      prefs.push_back(std::move(e));
    }
  }
  out["preferences"] = std::move(prefs);

  Json terms = Json::array();
  if (row.contributions != nullptr && !ctx.source_names.empty()) {
    std::vector<std::pair<float, std::size_t>> order;
    for (std::size_t s = 0; s < ctx.source_names.size(); ++s) order.emplace_back(row.contributions[s], s);
    std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (const auto& [term, s] : order) {
      terms.push_back(Json{{"source", ctx.source_names[s]}, {"term", round_json(term)}});
    }
  }
  out["contributions"] = std::move(terms);

  if (row.runner_up >= 0) {
    check_benefit("runner_up", row.runner_up);
    out["runner_up"] = Json{{"benefit", id_json(ctx.benefit_ids, row.runner_up)},
                            {"reason", exclusion_reason_name(row.runner_up_reason)}};
  } else {
    out["runner_up"] = nullptr;
  }
  if (row.best_ineligible >= 0) {
    check_benefit("best_ineligible", row.best_ineligible);
    Json rule;
    const std::int32_t r = row.best_ineligible_rule;
    if (r >= 0 && static_cast<std::size_t>(r) < ctx.rule_names.size()) {
      rule = ctx.rule_names[static_cast<std::size_t>(r)];
    } else if (r >= 0) {
      rule = "rule " + std::to_string(r);
    }
    out["best_ineligible"] = Json{{"benefit", id_json(ctx.benefit_ids, row.best_ineligible)}, {"rule", rule}};
  } else {
    out["best_ineligible"] = nullptr;
  }
  return out;
}

}  // namespace detail

PERKREC_INLINE Json explain(const ExplanationContext& ctx, const ExplanationRow& row) {
  ctx.validate();
  std::vector<std::pair<float, std::int32_t>> scratch;
  return detail::explain_row(ctx, row, detail::context_benefits(ctx), detail::context_members(ctx), scratch);
}

PERKREC_INLINE Json explain(const ExplanationContext& ctx, Index member, Index benefit, const Candidates& candidates,
                            const Allocation* allocation, const ScoreBlend* blend,
                            const RankDiagnostics* diagnostics) {
  if (member < 0 || member >= candidates.n_users) {
    detail::raise<InputError>("explain: member out of range (got ", member, ", expected 0 <= member < ",
                              candidates.n_users, ")");
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
      if (u < allocation->runner_up_reason.size()) row.runner_up_reason = allocation->runner_up_reason[u];
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

PERKREC_INLINE std::vector<std::string> explain_batch(const ExplanationContext& ctx, const ExplanationBatch& rows,
                                                      int num_threads) {
  ctx.validate();
  const std::size_t n = rows.members.size();
  auto check = [&](const char* field, std::size_t got, std::size_t expected) {
    if (got != 0 && got != expected) {
      detail::raise<InputError>("explain_batch: ", field, " has ", got, " entries (expected ", expected,
                                " or none)");
    }
  };
  if (rows.benefits.size() != n) {
    detail::raise<InputError>("explain_batch: benefits has ", rows.benefits.size(), " entries (expected ", n,
                              ", one per member)");
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
      detail::raise<InputError>("explain_batch: runner_up_reason[", i, "] is not a reason code (got ",
                                static_cast<int>(rows.runner_up_reason[i]), ")");
    }
  }
  const Index n_benefits = detail::context_benefits(ctx);
  const Index n_members = detail::context_members(ctx);
  std::vector<std::string> out(n);
  const Offset chunk = 512;
  const Offset chunks = static_cast<Offset>((n + chunk - 1) / chunk);
  parallel_for(0, chunks, num_threads, [&](Offset c) {
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
      if (!rows.contributions.empty()) row.contributions = rows.contributions.data() + i * ctx.source_names.size();
      if (!rows.runner_up.empty()) row.runner_up = rows.runner_up[i];
      if (!rows.runner_up_reason.empty()) row.runner_up_reason = static_cast<ExclusionReason>(rows.runner_up_reason[i]);
      if (!rows.best_ineligible.empty()) row.best_ineligible = rows.best_ineligible[i];
      if (!rows.best_ineligible_rule.empty()) row.best_ineligible_rule = rows.best_ineligible_rule[i];
      out[i] = detail::explain_row(ctx, row, n_benefits, n_members, scratch).dump();
    }
  }, Schedule::dynamic, 1);
  return out;
}

}  // namespace perkrec
