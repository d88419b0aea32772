// Definitions for pooled_effects.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "perkrec/core/error.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/data/catalog.hpp"
#include "perkrec/decide/pooled_effects.hpp"
#include "perkrec/models/preference.hpp"

namespace perkrec {

PERKREC_INLINE void PooledEffectsParams::validate() const {
  params::validate_fields(*this, "PooledEffectsParams");
}

namespace detail::pooled {

inline double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }
inline bool open_unit(double p) { return std::isfinite(p) && p > 0 && p < 1; }
inline double logit(double p) { return std::log(p / (1 - p)); }

inline void check_rows(Span<const double> label, Span<const double> offset,
                       Span<const double> weight, const std::vector<EffectGroup>& groups) {
  const std::size_t m = label.size();
  if (m == 0) detail::raise<InputError>("fit_pooled_effects: label: no rows (got 0)");
  if (!offset.empty() && offset.size() != m) {
    detail::raise<InputError>("fit_pooled_effects: offset has ", offset.size(), " rows (expected ",
                              m, ")");
  }
  if (!weight.empty() && weight.size() != m) {
    detail::raise<InputError>("fit_pooled_effects: sample_weight has ", weight.size(),
                              " rows (expected ", m, ")");
  }
  for (std::size_t r = 0; r < m; ++r) {
    if (label[r] != 0.0 && label[r] != 1.0) {
      detail::raise<InputError>("fit_pooled_effects: label at row ", r, " must be 0/1 (got ",
                                label[r], ")");
    }
    if (!offset.empty() && !std::isfinite(offset[r])) {
      detail::raise<InputError>("fit_pooled_effects: offset at row ", r, " must be finite (got ",
                                offset[r], ")");
    }
    if (!weight.empty() && !(std::isfinite(weight[r]) && weight[r] >= 0)) {
      detail::raise<InputError>("fit_pooled_effects: sample_weight at row ", r,
                                " must be finite and >= 0 (got ", weight[r], ")");
    }
  }
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const EffectGroup& group = groups[g];
    if (group.n_levels < 1) {
      detail::raise<InputError>("fit_pooled_effects: group ", g, ": n_levels must be >= 1 (got ",
                                group.n_levels, ")");
    }
    if (group.level.size() != m) {
      detail::raise<InputError>("fit_pooled_effects: group ", g, ": level has ", group.level.size(),
                                " rows (expected ", m, ")");
    }
    for (std::size_t r = 0; r < m; ++r) {
      if (group.level[r] < 0 || group.level[r] >= group.n_levels) {
        detail::raise<InputError>("fit_pooled_effects: group ", g, ": level at row ", r,
                                  " must be in [0, ", group.n_levels, ") (got ", group.level[r],
                                  ")");
      }
    }
  }
}

}  // namespace detail::pooled

PERKREC_INLINE PooledEffects fit_pooled_effects(Span<const double> label, Span<const double> offset,
                                                Span<const double> sample_weight,
                                                const std::vector<EffectGroup>& groups,
                                                const PooledEffectsParams& params) {
  using detail::pooled::sigmoid;
  params.validate();
  detail::pooled::check_rows(label, offset, sample_weight, groups);
  const std::size_t m = label.size();
  const std::size_t ng = groups.size();
  PooledEffects out;
  out.effects.resize(ng);
  out.variance.assign(ng, params.initial_variance);
  std::vector<std::vector<double>> gradient(ng), curvature(ng);
  std::vector<std::vector<Index>> count(ng);
  for (std::size_t g = 0; g < ng; ++g) {
    const auto levels = static_cast<std::size_t>(groups[g].n_levels);
    out.effects[g].assign(levels, 0.0);
    count[g].assign(levels, 0);
    for (std::size_t r = 0; r < m; ++r) ++count[g][static_cast<std::size_t>(groups[g].level[r])];
  }
  // eta holds the current linear predictor of every row; each update adds its change.
  std::vector<double> eta(m);
  for (std::size_t r = 0; r < m; ++r) eta[r] = offset.empty() ? 0.0 : offset[r];
  const auto weight = [&](std::size_t r) { return sample_weight.empty() ? 1.0 : sample_weight[r]; };
  for (int sweep = 0; sweep < params.sweeps; ++sweep) {
    {  // the intercept: one unpenalized Newton step
      double grad = 0, curv = 0;
      for (std::size_t r = 0; r < m; ++r) {
        const double p = sigmoid(eta[r]);
        grad += weight(r) * (label[r] - p);
        curv += weight(r) * p * (1 - p);
      }
      const double step = curv > 0 ? grad / curv : 0.0;
      out.intercept += step;
      for (double& e : eta) e += step;
    }
    for (std::size_t g = 0; g < ng; ++g) {
      const Span<const Index> level = groups[g].level;
      std::vector<double>& effect = out.effects[g];
      gradient[g].assign(effect.size(), 0.0);
      curvature[g].assign(effect.size(), 0.0);
      for (std::size_t r = 0; r < m; ++r) {
        const double p = sigmoid(eta[r]);
        const auto l = static_cast<std::size_t>(level[r]);
        gradient[g][l] += weight(r) * (label[r] - p);
        curvature[g][l] += weight(r) * p * (1 - p);
      }
      const double strength = 1.0 / out.variance[g];
      std::vector<double> step(effect.size());
      for (std::size_t l = 0; l < effect.size(); ++l) {
        step[l] = (gradient[g][l] - strength * effect[l]) / (curvature[g][l] + strength);
        effect[l] += step[l];
      }
      for (std::size_t r = 0; r < m; ++r) eta[r] += step[static_cast<std::size_t>(level[r])];
      if (sweep >= params.burn_in) {
        double sum = 0;
        std::size_t used = 0;
        for (std::size_t l = 0; l < effect.size(); ++l) {
          if (count[g][l] == 0) continue;
          sum += effect[l] * effect[l] + 1.0 / (curvature[g][l] + strength);
          ++used;
        }
        out.variance[g] = std::max(params.min_variance, sum / static_cast<double>(used));
      }
    }
  }
  return out;
}

namespace detail::pooled {

/// pooled_redemption's fit (without the matrix): checks every row, fits the groups
/// [benefit when there is no base,] member, member x attribute on the rows not held out, and
/// the slope of the member effects on the held-out rows. `who` starts every message.
struct Fitted {
  PooledEffects fit;
  double slope = 1;
  std::vector<Index> codes;    ///< per attribute
  std::vector<double> offset;  ///< logit base_at_issue per row (empty without a base)
};

inline Fitted fit_rows(const char* who, Index n_users, Index n_benefits,
                       const std::vector<Span<const Index>>& benefit_attributes,
                       Span<const Index> users, Span<const Index> benefits,
                       Span<const double> base_at_issue, Span<const double> redeemed,
                       Span<const double> sample_weight, Span<const std::uint8_t> held_out,
                       const PooledEffectsParams& params) {
  const bool has_base = !base_at_issue.empty();
  const auto nb = static_cast<std::size_t>(n_benefits);
  const std::size_t m = users.size();
  if (benefits.size() != m || redeemed.size() != m || (has_base && base_at_issue.size() != m)) {
    detail::raise<InputError>(who, ": users has ", m, " rows but benefits ", benefits.size(),
                              ", redeemed ", redeemed.size(), ", base_at_issue ",
                              base_at_issue.size(), " (expected equal)");
  }
  if (!held_out.empty() && held_out.size() != m) {
    detail::raise<InputError>(who, ": held_out has ", held_out.size(), " rows (expected ", m, ")");
  }
  std::size_t n_held = 0;
  for (std::size_t r = 0; r < held_out.size(); ++r) {
    if (held_out[r] > 1) {
      detail::raise<InputError>(who, ": held_out at row ", r, " must be 0/1 (got ",
                                static_cast<int>(held_out[r]), ")");
    }
    n_held += held_out[r];
  }
  if (!held_out.empty() && (n_held == 0 || n_held == m)) {
    detail::raise<InputError>(who, ": held_out must leave rows on both sides (got ", n_held, " of ",
                              m, " rows held out)");
  }
  if (!sample_weight.empty() && sample_weight.size() != m) {
    detail::raise<InputError>(who, ": sample_weight has ", sample_weight.size(), " rows (expected ",
                              m, ")");
  }
  for (std::size_t r = 0; r < m; ++r) {
    if (!sample_weight.empty() && !(std::isfinite(sample_weight[r]) && sample_weight[r] >= 0)) {
      detail::raise<InputError>(who, ": sample_weight at row ", r, " must be finite and >= 0 (got ",
                                sample_weight[r], ")");
    }
    if (redeemed[r] != 0.0 && redeemed[r] != 1.0) {
      detail::raise<InputError>(who, ": redeemed at row ", r, " must be 0/1 (got ", redeemed[r],
                                ")");
    }
    if (users[r] < 0 || users[r] >= n_users || benefits[r] < 0 || benefits[r] >= n_benefits) {
      detail::raise<InputError>(who, ": row ", r, ": (user ", users[r], ", benefit ", benefits[r],
                                ") out of range of the ", n_users, " x ", n_benefits, " matrix");
    }
    if (has_base && !open_unit(base_at_issue[r])) {
      detail::raise<InputError>(who, ": base_at_issue at row ", r, " must be in (0, 1) (got ",
                                base_at_issue[r], ")");
    }
  }
  Fitted out;
  out.codes.resize(benefit_attributes.size());
  for (std::size_t a = 0; a < benefit_attributes.size(); ++a) {
    const Span<const Index> attr = benefit_attributes[a];
    if (attr.size() != nb) {
      detail::raise<InputError>(who, ": benefit_attributes[", a, "] has ", attr.size(),
                                " values (expected ", n_benefits, ", one per benefit)");
    }
    Index top = 0;
    for (std::size_t b = 0; b < nb; ++b) {
      if (attr[b] < 0) {
        detail::raise<InputError>(who, ": benefit_attributes[", a, "] at benefit ", b,
                                  " must be >= 0 (got ", attr[b], ")");
      }
      top = std::max(top, attr[b]);
    }
    out.codes[a] = top + 1;
  }
  const std::vector<Index>& codes = out.codes;

  // The rows the effects are fitted on (all but the held-out ones) and their groups' levels:
  // [benefit,] member, member x attribute.
  std::vector<std::size_t> fit_rows;
  for (std::size_t r = 0; r < m; ++r) {
    if (held_out.empty() || held_out[r] == 0) fit_rows.push_back(r);
  }
  const std::size_t mf = fit_rows.size();
  const auto row_level = [&](std::size_t g_attr, std::size_t r) {  // g_attr: attribute index
    return users[r] * codes[g_attr] +
           benefit_attributes[g_attr][static_cast<std::size_t>(benefits[r])];
  };
  std::vector<std::vector<Index>> levels;
  std::vector<Index> n_levels;
  if (!has_base) {
    levels.emplace_back(mf);
    for (std::size_t i = 0; i < mf; ++i) levels.back()[i] = benefits[fit_rows[i]];
    n_levels.push_back(n_benefits);
  }
  levels.emplace_back(mf);
  for (std::size_t i = 0; i < mf; ++i) levels.back()[i] = users[fit_rows[i]];
  n_levels.push_back(n_users);
  for (std::size_t a = 0; a < codes.size(); ++a) {
    levels.emplace_back(mf);
    for (std::size_t i = 0; i < mf; ++i) levels.back()[i] = row_level(a, fit_rows[i]);
    n_levels.push_back(n_users * codes[a]);
  }
  std::vector<EffectGroup> groups;
  for (std::size_t g = 0; g < levels.size(); ++g) {
    groups.push_back(
        EffectGroup{Span<const Index>(levels[g].data(), levels[g].size()), n_levels[g]});
  }
  std::vector<double>& offset = out.offset;
  offset.resize(has_base ? m : 0);
  std::vector<double> label(mf), weight(sample_weight.empty() ? 0 : mf),
      fit_offset(has_base ? mf : 0);
  for (std::size_t r = 0; r < offset.size(); ++r) offset[r] = logit(base_at_issue[r]);
  for (std::size_t i = 0; i < mf; ++i) {
    label[i] = redeemed[fit_rows[i]];
    if (!weight.empty()) weight[i] = sample_weight[fit_rows[i]];
    if (has_base) fit_offset[i] = offset[fit_rows[i]];
  }
  out.fit = fit_pooled_effects(Span<const double>(label.data(), mf),
                               Span<const double>(fit_offset.data(), fit_offset.size()),
                               Span<const double>(weight.data(), weight.size()), groups, params);
  const std::size_t first = has_base ? 0 : 1;  // the member group
  const PooledEffects& fit = out.fit;
  const auto fixed = [&](std::size_t b) {
    return fit.intercept + (has_base ? 0.0 : fit.effects[0][b]);
  };
  const auto effect = [&](std::size_t u, std::size_t b) {
    double z = fit.effects[first][u];
    for (std::size_t a = 0; a < codes.size(); ++a) {
      const auto c = static_cast<std::size_t>(codes[a]);
      z += fit.effects[first + 1 + a][u * c + static_cast<std::size_t>(benefit_attributes[a][b])];
    }
    return z;
  };
  if (n_held > 0) {  // the slope of the effects on the held-out rows, in row order
    double c = 1.0;
    for (int it = 0; it < 30; ++it) {
      double gradient = 0, hessian = 0;
      for (std::size_t r = 0; r < m; ++r) {
        if (held_out[r] == 0) continue;
        const double w = sample_weight.empty() ? 1.0 : sample_weight[r];
        const auto b = static_cast<std::size_t>(benefits[r]);
        const double e = effect(static_cast<std::size_t>(users[r]), b);
        const double p = sigmoid((has_base ? offset[r] : 0.0) + fixed(b) + c * e);
        gradient += w * (redeemed[r] - p) * e;
        hessian += w * p * (1 - p) * e * e;
      }
      if (!(hessian > 0)) break;
      c += gradient / hessian;
    }
    out.slope = std::isfinite(c) ? std::clamp(c, 0.0, 1.0) : 1.0;
  }
  return out;
}

/// The fit on top of a base as PooledMemberEffects (groups: member, member x attribute).
inline PooledMemberEffects member_effects(
    Fitted&& f, Index n_users, const std::vector<Span<const Index>>& benefit_attributes) {
  PooledMemberEffects e;
  e.intercept = f.fit.intercept;
  e.slope = f.slope;
  e.member = std::move(f.fit.effects[0]);
  e.variance = std::move(f.fit.variance);
  e.n_codes = f.codes;
  for (std::size_t a = 0; a < benefit_attributes.size(); ++a) {
    e.benefit_code.emplace_back(benefit_attributes[a].begin(), benefit_attributes[a].end());
    e.attribute_effect.push_back(std::move(f.fit.effects[1 + a]));
  }
  (void)n_users;
  return e;
}

}  // namespace detail::pooled

PERKREC_INLINE double PooledMemberEffects::shift(Index user, Index benefit) const {
  const auto u = static_cast<std::size_t>(user);
  const auto b = static_cast<std::size_t>(benefit);
  double z = member[u];
  for (std::size_t a = 0; a < n_codes.size(); ++a) {
    const auto c = static_cast<std::size_t>(n_codes[a]);
    z += attribute_effect[a][u * c + static_cast<std::size_t>(benefit_code[a][b])];
  }
  return intercept + slope * z;
}

PERKREC_INLINE void PooledMemberEffects::apply_row(Span<float> row, Index user) const {
  if (user < 0 || user >= n_users()) {
    detail::raise<InputError>("PooledMemberEffects::apply_row: user out of range (got ", user,
                              ", expected [0, ", n_users(), "))");
  }
  if (row.size() != static_cast<std::size_t>(n_benefits())) {
    detail::raise<InputError>("PooledMemberEffects::apply_row: row has ", row.size(),
                              " values (expected ", n_benefits(), ")");
  }
  const auto u = static_cast<std::size_t>(user);
  for (std::size_t b = 0; b < row.size(); ++b) {
    // The same sums, in the same order, as pooled_redemption's matrix.
    double e = member[u];
    for (std::size_t a = 0; a < n_codes.size(); ++a) {
      const auto c = static_cast<std::size_t>(n_codes[a]);
      e += attribute_effect[a][u * c + static_cast<std::size_t>(benefit_code[a][b])];
    }
    const double z = detail::pooled::logit(static_cast<double>(row[b])) + intercept + slope * e;
    row[b] = static_cast<float>(detail::pooled::sigmoid(z));
  }
}

PERKREC_INLINE std::string PooledMemberEffects::check(Index n_users, Index n_benefits) const {
  const std::size_t na = n_codes.size();
  if (!std::isfinite(intercept))
    return detail::concat("intercept: not finite (got ", intercept, ")");
  if (!(slope >= 0 && slope <= 1))
    return detail::concat("slope: expected [0, 1] (got ", slope, ")");
  if (member.size() != static_cast<std::size_t>(n_users)) {
    return detail::concat("member: expected ", n_users, " effects (got ", member.size(), ")");
  }
  if (benefit_code.size() != na || attribute_effect.size() != na || variance.size() != na + 1) {
    return detail::concat("attributes: n_codes, benefit_code, attribute_effect and variance ",
                          "disagree (got ", na, ", ", benefit_code.size(), ", ",
                          attribute_effect.size(), ", ", variance.size(), " - 1)");
  }
  for (double v : member) {
    if (!std::isfinite(v)) return "member: a non-finite effect";
  }
  for (double v : variance) {
    if (!(std::isfinite(v) && v > 0)) return detail::concat("variance: expected > 0 (got ", v, ")");
  }
  for (std::size_t a = 0; a < na; ++a) {
    if (n_codes[a] < 1 || n_codes[a] > (1 << 20)) {
      return detail::concat("n_codes[", a, "]: expected [1, 2^20] (got ", n_codes[a], ")");
    }
    if (benefit_code[a].size() != static_cast<std::size_t>(n_benefits)) {
      return detail::concat("benefit_code[", a, "]: expected ", n_benefits, " codes (got ",
                            benefit_code[a].size(), ")");
    }
    for (Index c : benefit_code[a]) {
      if (c < 0 || c >= n_codes[a]) {
        return detail::concat("benefit_code[", a, "]: expected codes in [0, ", n_codes[a],
                              ") (got ", c, ")");
      }
    }
    const std::size_t cells =
        static_cast<std::size_t>(n_users) * static_cast<std::size_t>(n_codes[a]);
    if (attribute_effect[a].size() != cells) {
      return detail::concat("attribute_effect[", a, "]: expected ", n_users, " x ", n_codes[a],
                            " effects (got ", attribute_effect[a].size(), ")");
    }
    for (double v : attribute_effect[a]) {
      if (!std::isfinite(v))
        return detail::concat("attribute_effect[", a, "]: a non-finite effect");
    }
  }
  return {};
}

PERKREC_INLINE PooledMemberEffects fit_pooled_member_effects(
    Index n_users, Index n_benefits, const std::vector<Span<const Index>>& benefit_attributes,
    Span<const Index> users, Span<const Index> benefits, Span<const double> base_at_issue,
    Span<const double> redeemed, Span<const double> sample_weight,
    Span<const std::uint8_t> held_out, const PooledEffectsParams& params) {
  params.validate();
  if (n_users < 1 || n_benefits < 1) {
    detail::raise<InputError>("fit_pooled_member_effects: the matrix must be at least 1 x 1 (got ",
                              n_users, " x ", n_benefits, ")");
  }
  if (base_at_issue.empty()) {
    detail::raise<InputError>(
        "fit_pooled_member_effects: base_at_issue: expected one prediction per row (got none)");
  }
  return detail::pooled::member_effects(
      detail::pooled::fit_rows("fit_pooled_member_effects", n_users, n_benefits, benefit_attributes,
                               users, benefits, base_at_issue, redeemed, sample_weight, held_out,
                               params),
      n_users, benefit_attributes);
}

PERKREC_INLINE PooledRedemption
pooled_redemption(Span<const float> base, Index n_users, Index n_benefits,
                  const std::vector<Span<const Index>>& benefit_attributes, Span<const Index> users,
                  Span<const Index> benefits, Span<const double> base_at_issue,
                  Span<const double> redeemed, Span<const double> sample_weight,
                  Span<const std::uint8_t> held_out, const PooledEffectsParams& params) {
  using detail::pooled::logit;
  using detail::pooled::open_unit;
  params.validate();
  if (n_users < 1 || n_benefits < 1) {
    detail::raise<InputError>("pooled_redemption: the matrix must be at least 1 x 1 (got ", n_users,
                              " x ", n_benefits, ")");
  }
  const auto nb = static_cast<std::size_t>(n_benefits);
  const std::size_t cells = static_cast<std::size_t>(n_users) * nb;
  const bool has_base = !base.empty();
  if (has_base && base.size() != cells) {
    detail::raise<InputError>("pooled_redemption: base has ", base.size(), " values (expected ",
                              n_users, " x ", n_benefits, ")");
  }
  if (has_base != !base_at_issue.empty()) {
    detail::raise<InputError>("pooled_redemption: base (", base.size(),
                              " values) and base_at_issue (", base_at_issue.size(),
                              " rows) must be given together");
  }
  for (std::size_t i = 0; i < base.size(); ++i) {
    if (!open_unit(static_cast<double>(base[i]))) {
      detail::raise<InputError>("pooled_redemption: base at (", i / nb, ", ", i % nb,
                                ") must be in (0, 1) (got ", static_cast<double>(base[i]), ")");
    }
  }
  detail::pooled::Fitted fitted =
      detail::pooled::fit_rows("pooled_redemption", n_users, n_benefits, benefit_attributes, users,
                               benefits, base_at_issue, redeemed, sample_weight, held_out, params);
  PooledRedemption out;
  out.probability.resize(cells);
  out.slope = fitted.slope;
  if (has_base) {
    out.fit = fitted.fit;  // a copy: member_effects takes the effects
    const PooledMemberEffects effects =
        detail::pooled::member_effects(std::move(fitted), n_users, benefit_attributes);
    std::copy(base.begin(), base.end(), out.probability.begin());
    parallel_for(0, n_users, params.num_threads, [&](Offset uo) {
      effects.apply_row(Span<float>(out.probability.data() + static_cast<std::size_t>(uo) * nb, nb),
                        static_cast<Index>(uo));
    });
    return out;
  }
  out.fit = std::move(fitted.fit);
  const PooledEffects& fit = out.fit;
  const std::vector<Index>& codes = fitted.codes;
  const double slope = out.slope;
  parallel_for(0, n_users, params.num_threads, [&](Offset uo) {
    const auto u = static_cast<std::size_t>(uo);
    for (std::size_t b = 0; b < nb; ++b) {
      double e = fit.effects[1][u];
      for (std::size_t a = 0; a < codes.size(); ++a) {
        const auto c = static_cast<std::size_t>(codes[a]);
        e += fit.effects[2 + a][u * c + static_cast<std::size_t>(benefit_attributes[a][b])];
      }
      const double z = fit.intercept + fit.effects[0][b] + slope * e;
      out.probability[u * nb + b] = static_cast<float>(detail::pooled::sigmoid(z));
    }
  });
  return out;
}

PERKREC_INLINE KindPreferenceLift::KindPreferenceLift(const PreferenceModel& model,
                                                      const Catalog& catalog) {
  if (!model.fitted())
    detail::raise<InputError>("KindPreferenceLift: the preference model is not fitted");
  if (model.n_benefits() != catalog.size()) {
    detail::raise<InputError>("KindPreferenceLift: the preference model has ", model.n_benefits(),
                              " benefits (the catalog ", catalog.size(), ")");
  }
  const std::vector<std::string>& names = model.dimension_names();
  std::vector<int> columns;  // per distinct kind, its dimension
  for (const Benefit& b : catalog.benefits()) {
    const std::string name = std::string("kind:") + to_string(b.kind);
    const auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) {
      detail::raise<InputError>("KindPreferenceLift: the preference model has no dimension '", name,
                                "'");
    }
    const int dim = static_cast<int>(it - names.begin());
    const auto known = std::find(columns.begin(), columns.end(), dim);
    benefit_kind_.push_back(static_cast<int>(known - columns.begin()));
    if (known == columns.end()) columns.push_back(dim);
  }
  n_users_ = model.n_users();
  n_kinds_ = static_cast<int>(columns.size());
  const std::vector<float>& pref = model.preferences();
  const auto nd = static_cast<std::size_t>(model.n_dimensions());
  log_preference_.resize(static_cast<std::size_t>(n_users_) * columns.size());
  for (std::size_t u = 0; u < static_cast<std::size_t>(n_users_); ++u) {
    for (std::size_t k = 0; k < columns.size(); ++k) {
      const double v = static_cast<double>(pref[u * nd + static_cast<std::size_t>(columns[k])]);
      log_preference_[u * columns.size() + k] = std::log(std::max(v, 1e-6));
    }
  }
}

PERKREC_INLINE void KindPreferenceLift::row(Index user, Span<double> out) const {
  if (user < 0 || user >= n_users_) {
    detail::raise<InputError>("KindPreferenceLift::row: user out of range (got ", user,
                              ", expected [0, ", n_users_, "))");
  }
  if (out.size() != benefit_kind_.size()) {
    detail::raise<InputError>("KindPreferenceLift::row: out has ", out.size(), " values (expected ",
                              benefit_kind_.size(), ")");
  }
  const double* lp =
      log_preference_.data() + static_cast<std::size_t>(user) * static_cast<std::size_t>(n_kinds_);
  double sum = 0;
  for (std::size_t b = 0; b < out.size(); ++b) {
    out[b] = lp[benefit_kind_[b]];
    sum += out[b];
  }
  const double mean = out.empty() ? 0.0 : sum / static_cast<double>(out.size());
  for (double& v : out) v -= mean;
}

PERKREC_INLINE void apply_preference_offset(Span<float> row, Span<const double> lift,
                                            double weight) {
  if (row.size() != lift.size()) {
    detail::raise<InputError>("apply_preference_offset: row has ", row.size(), " values but lift ",
                              lift.size(), " (expected equal)");
  }
  for (std::size_t b = 0; b < row.size(); ++b) {
    const double p = std::clamp(static_cast<double>(row[b]), 1e-6, 1 - 1e-6);
    row[b] =
        static_cast<float>(detail::pooled::sigmoid(detail::pooled::logit(p) + weight * lift[b]));
  }
}

PERKREC_INLINE OffsetSlope fit_preference_weight(
    const KindPreferenceLift& lift, Span<const Index> users, Span<const Index> benefits,
    Span<const double> base_at_issue, Span<const double> redeemed, Span<const double> sample_weight,
    const PooledMemberEffects* pooled, const OffsetSlopeParams& params) {
  const std::size_t m = users.size();
  if (benefits.size() != m || base_at_issue.size() != m || redeemed.size() != m) {
    detail::raise<InputError>("fit_preference_weight: users has ", m, " rows but benefits ",
                              benefits.size(), ", base_at_issue ", base_at_issue.size(),
                              ", redeemed ", redeemed.size(), " (expected equal)");
  }
  if (pooled != nullptr &&
      (pooled->n_users() != lift.n_users() || pooled->n_benefits() != lift.n_benefits())) {
    detail::raise<InputError>("fit_preference_weight: pooled effects of ", pooled->n_users(), " x ",
                              pooled->n_benefits(), " (expected ", lift.n_users(), " x ",
                              lift.n_benefits(), ", the lift's)");
  }
  std::vector<double> offset(m), x(m), row(static_cast<std::size_t>(lift.n_benefits()));
  for (std::size_t r = 0; r < m; ++r) {
    if (users[r] < 0 || users[r] >= lift.n_users() || benefits[r] < 0 ||
        benefits[r] >= lift.n_benefits()) {
      detail::raise<InputError>("fit_preference_weight: row ", r, ": (user ", users[r],
                                ", benefit ", benefits[r], ") out of range of the ", lift.n_users(),
                                " x ", lift.n_benefits(), " matrix");
    }
    if (!detail::pooled::open_unit(base_at_issue[r])) {
      detail::raise<InputError>("fit_preference_weight: base_at_issue at row ", r,
                                " must be in (0, 1) (got ", base_at_issue[r], ")");
    }
    lift.row(users[r], row);
    x[r] = row[static_cast<std::size_t>(benefits[r])];
    offset[r] = detail::pooled::logit(base_at_issue[r]) +
                (pooled != nullptr ? pooled->shift(users[r], benefits[r]) : 0.0);
  }
  return fit_offset_slope(offset, x, redeemed, sample_weight, params);
}

}  // namespace perkrec
