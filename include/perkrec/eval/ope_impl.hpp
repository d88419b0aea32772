// Definitions for ope.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "perkrec/core/error.hpp"
#include "perkrec/core/math.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/detail/blocks.hpp"
#include "perkrec/eval/ope.hpp"

namespace perkrec {

PERKREC_INLINE const char* to_string(OpeEstimator estimator) {
  switch (estimator) {
    case OpeEstimator::ips:
      return "ips";
    case OpeEstimator::snips:
      return "snips";
    case OpeEstimator::dm:
      return "dm";
    case OpeEstimator::dr:
      return "dr";
    case OpeEstimator::switch_dr:
      return "switch-dr";
  }
  return "unknown";
}

PERKREC_INLINE OpeEstimator ope_estimator_from_string(const std::string& name) {
  for (OpeEstimator e : {OpeEstimator::ips, OpeEstimator::snips, OpeEstimator::dm, OpeEstimator::dr,
                         OpeEstimator::switch_dr}) {
    if (name == to_string(e)) return e;
  }
  if (name == "switch_dr") return OpeEstimator::switch_dr;
  detail::raise<ConfigError>(
      "OffPolicyParams: estimator must be one of ips, snips, dm, dr, switch-dr (got '", name, "')");
}

PERKREC_INLINE void OffPolicyParams::validate() const {
  params::validate_fields(*this, "OffPolicyParams");
}

namespace detail::ope {

inline void check_column(Span<const double> values, std::size_t n, const char* name, double lo,
                         double hi, bool lo_open, const char* range) {
  if (values.size() != n) {
    raise<InputError>("off_policy_value: ", name, " has ", values.size(), " rows (expected ", n,
                      ")");
  }
  for (std::size_t i = 0; i < n; ++i) {
    const double v = values[i];
    const bool ok = std::isfinite(v) && (lo_open ? v > lo : v >= lo) && v <= hi;
    if (!ok)
      raise<InputError>("off_policy_value: ", name, " at row ", i, " must be ", range, " (got ", v,
                        ")");
  }
}

/// Per-block sums of the terms a pass needs; combined in block order.
struct Sums {
  double weight = 0, weight_sq = 0, weighted_reward = 0, term = 0, term_sq = 0, max_weight = 0;
  Offset clipped = 0, switched = 0;
};

}  // namespace detail::ope

PERKREC_INLINE OffPolicyEstimate off_policy_value(Span<const double> rewards,
                                                  Span<const double> logged_propensity,
                                                  Span<const double> target_propensity,
                                                  Span<const double> reward_estimate,
                                                  Span<const double> target_reward_estimate,
                                                  const OffPolicyParams& params) {
  params.validate();
  const std::size_t n = rewards.size();
  if (n == 0) detail::raise<InputError>("off_policy_value: rewards is empty");
  constexpr double kInf = std::numeric_limits<double>::infinity();
  detail::ope::check_column(rewards, n, "rewards", -kInf, kInf, false, "finite");
  detail::ope::check_column(logged_propensity, n, "logged_propensity", 0.0, 1.0, true, "in (0, 1]");
  detail::ope::check_column(target_propensity, n, "target_propensity", 0.0, 1.0, false,
                            "in [0, 1]");
  const OpeEstimator est = params.estimator;
  const bool needs_q = est == OpeEstimator::dr || est == OpeEstimator::switch_dr;
  const bool needs_e = needs_q || est == OpeEstimator::dm;
  if (needs_q && reward_estimate.empty()) {
    detail::raise<InputError>("off_policy_value: estimator ", to_string(est),
                              " needs reward_estimate (the model's reward for the logged action)");
  }
  if (needs_e && target_reward_estimate.empty()) {
    detail::raise<InputError>(
        "off_policy_value: estimator ", to_string(est),
        " needs target_reward_estimate (the model's expected reward under the target policy)");
  }
  if (!reward_estimate.empty()) {
    detail::ope::check_column(reward_estimate, n, "reward_estimate", -kInf, kInf, false, "finite");
  }
  if (!target_reward_estimate.empty()) {
    detail::ope::check_column(target_reward_estimate, n, "target_reward_estimate", -kInf, kInf,
                              false, "finite");
  }

  const auto weight_of = [&](std::size_t i) { return target_propensity[i] / logged_propensity[i]; };
  // DM, DR and switch-DR: the term of row i; IPS and SNIPS use w r (SNIPS is linearized below).
  const auto term_of = [&](std::size_t i, double w, bool& switched) {
    switch (est) {
      case OpeEstimator::ips:
      case OpeEstimator::snips:
        return w * rewards[i];
      case OpeEstimator::dm:
        return target_reward_estimate[i];
      case OpeEstimator::dr:
        return target_reward_estimate[i] + w * (rewards[i] - reward_estimate[i]);
      case OpeEstimator::switch_dr:
        switched = weight_of(i) > params.switch_threshold;
        return target_reward_estimate[i] + (switched ? 0.0 : w * (rewards[i] - reward_estimate[i]));
    }
    return 0.0;
  };

  const detail::Blocks blocks(static_cast<Offset>(n), 1 << 14, 256);
  const auto block_pass = [&](auto&& row) {
    std::vector<detail::ope::Sums> partial(static_cast<std::size_t>(blocks.count));
    parallel_for(0, blocks.count, params.num_threads, [&](Offset b) {
      detail::ope::Sums s;
      for (Offset i = blocks.begin(b); i < blocks.end(b); ++i) row(static_cast<std::size_t>(i), s);
      partial[static_cast<std::size_t>(b)] = s;
    });
    detail::ope::Sums total;
    for (const auto& s : partial) {
      total.weight += s.weight;
      total.weight_sq += s.weight_sq;
      total.weighted_reward += s.weighted_reward;
      total.term += s.term;
      total.term_sq += s.term_sq;
      total.max_weight = std::max(total.max_weight, s.max_weight);
      total.clipped += s.clipped;
      total.switched += s.switched;
    }
    return total;
  };
  const auto clipped_weight = [&](std::size_t i, detail::ope::Sums& s) {
    const double raw = weight_of(i);
    if (raw > params.clip) ++s.clipped;
    const double w = std::min(raw, params.clip);
    s.weight += w;
    s.weight_sq += w * w;
    s.max_weight = std::max(s.max_weight, w);
    return w;
  };

  const double dn = static_cast<double>(n);
  OffPolicyEstimate out;
  out.n = static_cast<Offset>(n);
  double variance = 0;
  const detail::ope::Sums first = block_pass([&](std::size_t i, detail::ope::Sums& s) {
    const double w = clipped_weight(i, s);
    bool switched = false;
    const double t = term_of(i, w, switched);
    s.switched += switched;
    s.weighted_reward += w * rewards[i];
    s.term += t;
  });
  out.max_weight = first.max_weight;
  out.n_clipped = first.clipped;
  out.n_switched = first.switched;
  out.effective_sample_size =
      est == OpeEstimator::dm
          ? dn
          : (first.weight_sq > 0 ? first.weight * first.weight / first.weight_sq : 0.0);
  if (est == OpeEstimator::snips) {
    if (!(first.weight > 0)) {
      detail::raise<InputError>(
          "off_policy_value: snips needs a positive total weight (every target_propensity "
          "is 0)");
    }
    out.value = first.weighted_reward / first.weight;
    const double mean_weight = first.weight / dn;
    // Second pass: the linearized terms w (r - value) / mean(w) have mean 0.
    const detail::ope::Sums second = block_pass([&](std::size_t i, detail::ope::Sums& s) {
      const double w = std::min(weight_of(i), params.clip);
      const double t = w * (rewards[i] - out.value) / mean_weight;
      s.term_sq += t * t;
    });
    variance = n > 1 ? second.term_sq / (dn - 1) : 0.0;
  } else {
    out.value = first.term / dn;
    // Centered second pass rather than E[t^2] - E[t]^2, which cancels for large weights.
    const double mean = out.value;
    const detail::ope::Sums second = block_pass([&](std::size_t i, detail::ope::Sums& s) {
      const double w = std::min(weight_of(i), params.clip);
      bool switched = false;
      const double t = term_of(i, w, switched) - mean;
      s.term_sq += t * t;
    });
    variance = n > 1 ? second.term_sq / (dn - 1) : 0.0;
  }
  out.std_error = std::sqrt(variance / dn);
  const double z = inverse_normal_cdf(0.5 * (1.0 + params.confidence));
  out.lower = out.value - z * out.std_error;
  out.upper = out.value + z * out.std_error;
  return out;
}

PERKREC_INLINE PlanTargetPolicy plan_target_policy(Span<const Index> plan_users,
                                                   Span<const Index> plan_benefits,
                                                   Span<const Index> logged_users,
                                                   Span<const Index> logged_benefits, Index n_users,
                                                   Index n_benefits) {
  const char* context = "plan_target_policy";
  if (plan_users.size() != plan_benefits.size() || logged_users.size() != logged_benefits.size()) {
    detail::raise<InputError>(context, ": plan users / benefits have ", plan_users.size(), " / ",
                              plan_benefits.size(), " rows and logged ones ", logged_users.size(),
                              " / ", logged_benefits.size(), " (expected equal pairs)");
  }
  auto check = [&](Span<const Index> v, Index low, Index n, const char* name) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (v[i] < low || v[i] >= n) {
        detail::raise<InputError>(context, ": ", name, "[", i, "] must be in [", low, ", ", n,
                                  ") (got ", v[i], ")");
      }
    }
  };
  check(plan_users, -1, n_users, "plan_users");
  check(plan_benefits, 0, n_benefits, "plan_benefits");
  check(logged_users, 0, n_users, "logged_users");
  check(logged_benefits, 0, n_benefits, "logged_benefits");
  // Plan rows sorted by (member, benefit), stable: the first row of a repeated pair wins.
  std::vector<Offset> rows;
  std::vector<std::uint8_t> planned(static_cast<std::size_t>(n_users), 0);
  for (std::size_t r = 0; r < plan_users.size(); ++r) {
    if (plan_users[r] < 0) continue;
    rows.push_back(static_cast<Offset>(r));
    planned[static_cast<std::size_t>(plan_users[r])] = 1;
  }
  auto key = [&](Offset r) {
    const auto i = static_cast<std::size_t>(r);
    return std::make_pair(plan_users[i], plan_benefits[i]);
  };
  std::stable_sort(rows.begin(), rows.end(), [&](Offset a, Offset b) { return key(a) < key(b); });
  std::vector<Offset> decisions(static_cast<std::size_t>(n_users), 0);
  PlanTargetPolicy out;
  for (std::size_t d = 0; d < logged_users.size(); ++d) {
    const auto u = static_cast<std::size_t>(logged_users[d]);
    if (planned[u] == 0) continue;
    ++decisions[u];
    out.decision.push_back(static_cast<Offset>(d));
    const auto pair = std::make_pair(logged_users[d], logged_benefits[d]);
    const auto it =
        std::lower_bound(rows.begin(), rows.end(), pair,
                         [&](Offset r, const std::pair<Index, Index>& k) { return key(r) < k; });
    out.plan_row.push_back(it != rows.end() && key(*it) == pair ? *it : -1);
  }
  out.target.reserve(out.decision.size());
  for (std::size_t i = 0; i < out.decision.size(); ++i) {
    const auto u =
        static_cast<std::size_t>(logged_users[static_cast<std::size_t>(out.decision[i])]);
    out.target.push_back(out.plan_row[i] >= 0 ? 1.0 / static_cast<double>(decisions[u]) : 0.0);
  }
  return out;
}

}  // namespace perkrec
