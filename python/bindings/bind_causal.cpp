// Causal evaluation: uplift metrics, off-policy value, experiment assignment and analysis; the
// held-out shrinkage of a redemption-probability matrix (decide/calibration.hpp) and the pooled
// member effects of a redemption model (decide/pooled_effects.hpp).
#include "bindings.hpp"

namespace perkrec::python {

namespace {

using Outcomes = Span<const double>;
using Treatment = Span<const std::uint8_t>;

/// Runs `compute` with the GIL released and returns its curve as (x, y) arrays.
template <class F>
py::tuple released_curve(F&& compute) {
  UpliftCurve c;
  {
    py::gil_scoped_release release;
    c = compute();
  }
  return py::make_tuple(to_numpy(std::move(c.x)), to_numpy(std::move(c.y)));
}

template <class F>
void def_curve(py::module_& m, const char* name, F curve) {
  m.def(name,
        [curve](const py::array& outcome, const py::array& uplift, const py::array& treatment) {
          const Outcomes y = view_1d<double>(outcome, "outcome");
          const Outcomes s = view_1d<double>(uplift, "uplift");
          const Treatment t = view_1d<std::uint8_t>(treatment, "treatment");
          return released_curve([&] { return curve(y, s, t); });
        });
}

UpliftAtKStrategy strategy_from_string(const std::string& name) {
  if (name == "overall") return UpliftAtKStrategy::overall;
  if (name == "by_group") return UpliftAtKStrategy::by_group;
  detail::raise<ConfigError>("uplift_at_k: strategy must be 'overall' or 'by_group' (got '", name,
                             "')");
}

/// The arrays and parameters both pooled-effects bindings take (views into the arrays, which
/// the caller keeps alive).
struct PooledArgs {
  std::vector<Span<const Index>> attributes;
  Span<const Index> users;
  Span<const Index> benefits;
  Span<const double> base_at_issue;
  Span<const double> redeemed;
  Span<const double> weight;
  Span<const std::uint8_t> held_out;
  PooledEffectsParams params;
};

PooledArgs pooled_args(const std::vector<py::array>& benefit_attributes, const py::array& users,
                       const py::array& benefits, const std::optional<py::array>& base_at_issue,
                       const py::array& redeemed, const std::optional<py::array>& sample_weight,
                       const std::optional<py::array>& held_out, int sweeps, int burn_in,
                       double initial_variance, double min_variance) {
  PooledArgs a;
  for (const py::array& x : benefit_attributes)
    a.attributes.push_back(view_1d<Index>(x, "benefit_attributes"));
  a.users = view_1d<Index>(users, "users");
  a.benefits = view_1d<Index>(benefits, "benefits");
  a.base_at_issue = view_1d_or_empty<double>(base_at_issue, "base_at_issue");
  a.redeemed = view_1d<double>(redeemed, "redeemed");
  a.weight = view_1d_or_empty<double>(sample_weight, "sample_weight");
  a.held_out = view_1d_or_empty<std::uint8_t>(held_out, "held_out");
  a.params.sweeps = sweeps;
  a.params.burn_in = burn_in;
  a.params.initial_variance = initial_variance;
  a.params.min_variance = min_variance;
  return a;
}

/// Views of held-out issues (benefit, the model's prediction, redeemed, optional weight) as
/// the calibration functions read them.
struct HeldOutViews {
  Span<const Index> benefits;
  Span<const double> predicted, redeemed, weight;
  HeldOutViews(const py::array& b, const py::array& q, const py::array& y,
               const std::optional<py::array>& w)
      : benefits(view_1d<Index>(b, "benefits")),
        predicted(view_1d<double>(q, "predicted")),
        redeemed(view_1d<double>(y, "redeemed")),
        weight(view_1d_or_empty<double>(w, "sample_weight")) {}
};

}  // namespace

void bind_causal(py::module_& m) {
  m.def("shrink_interactions",
        [](const py::array& probability, Index n_users, Index n_benefits, const py::array& users,
           const py::array& benefits, const py::array& predicted, const py::array& redeemed,
           const std::optional<py::array>& sample_weight, int iterations, int num_threads) {
          const Span<const double> p = view_1d<double>(probability, "probability");
          const Span<const Index> u = view_1d<Index>(users, "users");
          const HeldOutViews h(benefits, predicted, redeemed, sample_weight);
          InteractionShrinkParams params;
          params.iterations = iterations;
          params.num_threads = num_threads;
          InteractionShrinkage s;
          {
            py::gil_scoped_release release;
            s = shrink_interactions(p, n_users, n_benefits, u, h.benefits, h.predicted, h.redeemed,
                                    h.weight, params);
          }
          return py::make_tuple(to_numpy(std::move(s.probability), {n_users, n_benefits}), s.slope);
        });
  m.def("benefit_levels", [](Index n_benefits, const py::array& benefits,
                             const py::array& predicted, const py::array& redeemed,
                             const std::optional<py::array>& sample_weight, double prior) {
    const HeldOutViews h(benefits, predicted, redeemed, sample_weight);
    BenefitLevelParams params;
    params.prior = prior;
    std::vector<double> levels;
    {
      py::gil_scoped_release release;
      levels = benefit_levels(n_benefits, h.benefits, h.predicted, h.redeemed, h.weight, params);
    }
    return to_numpy(std::move(levels));
  });
  m.def("pilot_level", [](const py::array& probability, const py::array& redeemed,
                          const py::array& cost, double prior, double confidence) {
    const Span<const double> p = view_1d<double>(probability, "probability");
    const Span<const double> y = view_1d<double>(redeemed, "redeemed");
    const Span<const double> c = view_1d<double>(cost, "cost");
    PilotLevelParams params;
    params.prior = prior;
    params.confidence = confidence;
    PilotLevel r;
    {
      py::gil_scoped_release release;
      r = pilot_level(p, y, c, params);
    }
    py::dict out;
    out["level"] = r.level;
    out["ratio"] = r.ratio;
    out["observed"] = r.observed;
    out["expected"] = r.expected;
    out["expected_redemptions"] = r.expected_redemptions;
    out["standard_error"] = r.standard_error;
    out["lower"] = r.lower;
    out["upper"] = r.upper;
    return out;
  });
  m.def("issue_weights", [](const py::array& propensity, double clip) {
    const Span<const double> p = view_1d<double>(propensity, "propensity");
    std::vector<float> w;
    {
      py::gil_scoped_release release;
      w = issue_weights(p, clip);
    }
    return to_numpy(std::move(w));
  });
  m.def("pooled_redemption",
        [](const std::optional<py::array>& base, Index n_users, Index n_benefits,
           const std::vector<py::array>& benefit_attributes, const py::array& users,
           const py::array& benefits, const std::optional<py::array>& base_at_issue,
           const py::array& redeemed, const std::optional<py::array>& sample_weight,
           const std::optional<py::array>& held_out, int sweeps, int burn_in,
           double initial_variance, double min_variance, int num_threads) {
          const Span<const float> p = view_1d_or_empty<float>(base, "base");
          PooledArgs a =
              pooled_args(benefit_attributes, users, benefits, base_at_issue, redeemed,
                          sample_weight, held_out, sweeps, burn_in, initial_variance, min_variance);
          a.params.num_threads = num_threads;
          PooledRedemption r;
          {
            py::gil_scoped_release release;
            r = pooled_redemption(p, n_users, n_benefits, a.attributes, a.users, a.benefits,
                                  a.base_at_issue, a.redeemed, a.weight, a.held_out, a.params);
          }
          py::list effects;
          for (auto& e : r.fit.effects) effects.append(to_numpy(std::move(e)));
          return py::make_tuple(to_numpy(std::move(r.probability), {n_users, n_benefits}),
                                r.fit.intercept, to_numpy(std::move(r.fit.variance)), effects,
                                r.slope);
        });
  py::class_<PooledMemberEffects>(m, "PooledMemberEffects")
      .def_readonly("intercept", &PooledMemberEffects::intercept)
      .def_readonly("slope", &PooledMemberEffects::slope)
      .def_readonly("n_codes", &PooledMemberEffects::n_codes)
      .def_property_readonly("member",
                             [](const PooledMemberEffects& e) {
                               auto v = e.member;
                               return to_numpy(std::move(v));
                             })
      .def_property_readonly("variance",
                             [](const PooledMemberEffects& e) {
                               auto v = e.variance;
                               return to_numpy(std::move(v));
                             })
      .def_property_readonly("benefit_code",
                             [](const PooledMemberEffects& e) {
                               py::list out;
                               for (auto v : e.benefit_code) out.append(to_numpy(std::move(v)));
                               return out;
                             })
      .def_property_readonly("attribute_effect", [](const PooledMemberEffects& e) {
        py::list out;
        for (std::size_t a = 0; a < e.attribute_effect.size(); ++a) {
          auto v = e.attribute_effect[a];
          out.append(to_numpy(std::move(v), {static_cast<py::ssize_t>(e.n_users()),
                                             static_cast<py::ssize_t>(e.n_codes[a])}));
        }
        return out;
      });
  m.def("fit_pooled_member_effects",
        [](Index n_users, Index n_benefits, const std::vector<py::array>& benefit_attributes,
           const py::array& users, const py::array& benefits, const py::array& base_at_issue,
           const py::array& redeemed, const std::optional<py::array>& sample_weight,
           const std::optional<py::array>& held_out, int sweeps, int burn_in,
           double initial_variance, double min_variance) {
          const PooledArgs a = pooled_args(
              benefit_attributes, users, benefits, std::optional<py::array>(base_at_issue),
              redeemed, sample_weight, held_out, sweeps, burn_in, initial_variance, min_variance);
          py::gil_scoped_release release;
          return fit_pooled_member_effects(n_users, n_benefits, a.attributes, a.users, a.benefits,
                                           a.base_at_issue, a.redeemed, a.weight, a.held_out,
                                           a.params);
        });
  m.def("fit_preference_weight",
        [](const PreferenceModel& preference, const Catalog& catalog, const py::array& users,
           const py::array& benefits, const py::array& base_at_issue, const py::array& redeemed,
           const std::optional<py::array>& sample_weight, const PooledMemberEffects* pooled,
           double lower, double upper) {
          const Span<const Index> u = view_1d<Index>(users, "users");
          const Span<const Index> b = view_1d<Index>(benefits, "benefits");
          const Span<const double> q = view_1d<double>(base_at_issue, "base_at_issue");
          const Span<const double> y = view_1d<double>(redeemed, "redeemed");
          const Span<const double> w = view_1d_or_empty<double>(sample_weight, "sample_weight");
          OffsetSlopeParams params;
          params.lower = lower;
          params.upper = upper;
          OffsetSlope fit;
          {
            py::gil_scoped_release release;
            const KindPreferenceLift lift(preference, catalog);
            fit = fit_preference_weight(lift, u, b, q, y, w, pooled, params);
          }
          return py::make_tuple(fit.slope, fit.unclipped);
        });
  def_curve(m, "qini_curve",
            [](Outcomes y, Outcomes s, Treatment t) { return qini_curve(y, s, t); });
  def_curve(m, "uplift_curve",
            [](Outcomes y, Outcomes s, Treatment t) { return uplift_curve(y, s, t); });
  m.def("perfect_qini_curve",
        [](const py::array& outcome, const py::array& treatment, bool negative_effect) {
          const Outcomes y = view_1d<double>(outcome, "outcome");
          const Treatment t = view_1d<std::uint8_t>(treatment, "treatment");
          return released_curve([&] { return perfect_qini_curve(y, t, negative_effect); });
        });
  m.def("perfect_uplift_curve", [](const py::array& outcome, const py::array& treatment) {
    const Outcomes y = view_1d<double>(outcome, "outcome");
    const Treatment t = view_1d<std::uint8_t>(treatment, "treatment");
    return released_curve([&] { return perfect_uplift_curve(y, t); });
  });
  m.def("qini_auc_score", [](const py::array& outcome, const py::array& uplift,
                             const py::array& treatment, bool negative_effect) {
    const Outcomes y = view_1d<double>(outcome, "outcome");
    const Outcomes s = view_1d<double>(uplift, "uplift");
    const Treatment t = view_1d<std::uint8_t>(treatment, "treatment");
    py::gil_scoped_release release;
    return qini_auc_score(y, s, t, negative_effect);
  });
  m.def("uplift_auc_score",
        [](const py::array& outcome, const py::array& uplift, const py::array& treatment) {
          const Outcomes y = view_1d<double>(outcome, "outcome");
          const Outcomes s = view_1d<double>(uplift, "uplift");
          const Treatment t = view_1d<std::uint8_t>(treatment, "treatment");
          py::gil_scoped_release release;
          return uplift_auc_score(y, s, t);
        });
  m.def("uplift_at_k", [](const py::array& outcome, const py::array& uplift,
                          const py::array& treatment, double k, const std::string& strategy) {
    const Outcomes y = view_1d<double>(outcome, "outcome");
    const Outcomes s = view_1d<double>(uplift, "uplift");
    const Treatment t = view_1d<std::uint8_t>(treatment, "treatment");
    const UpliftAtKStrategy how = strategy_from_string(strategy);
    py::gil_scoped_release release;
    return uplift_at_k(y, s, t, k, how);
  });
  m.def("cost_curve", [](const py::array& value, const py::array& cost, const py::array& uplift,
                         const py::array& treatment) {
    const Outcomes v = view_1d<double>(value, "value");
    const Outcomes c = view_1d<double>(cost, "cost");
    const Outcomes s = view_1d<double>(uplift, "uplift");
    const Treatment t = view_1d<std::uint8_t>(treatment, "treatment");
    CostCurve curve;
    {
      py::gil_scoped_release release;
      curve = cost_curve(v, c, s, t);
    }
    return py::make_tuple(to_numpy(std::move(curve.rows)), to_numpy(std::move(curve.cost)),
                          to_numpy(std::move(curve.value)));
  });
  m.def("aucc_score", [](const py::array& value, const py::array& cost, const py::array& uplift,
                         const py::array& treatment) {
    const Outcomes v = view_1d<double>(value, "value");
    const Outcomes c = view_1d<double>(cost, "cost");
    const Outcomes s = view_1d<double>(uplift, "uplift");
    const Treatment t = view_1d<std::uint8_t>(treatment, "treatment");
    py::gil_scoped_release release;
    return aucc_score(v, c, s, t);
  });

  m.def(
      "plan_target_policy",
      [](const py::array& plan_users, const py::array& plan_benefits, const py::array& logged_users,
         const py::array& logged_benefits, Index n_users, Index n_benefits) {
        const Span<const Index> pu = view_1d<Index>(plan_users, "plan_users");
        const Span<const Index> pb = view_1d<Index>(plan_benefits, "plan_benefits");
        const Span<const Index> lu = view_1d<Index>(logged_users, "logged_users");
        const Span<const Index> lb = view_1d<Index>(logged_benefits, "logged_benefits");
        PlanTargetPolicy r;
        {
          py::gil_scoped_release release;
          r = plan_target_policy(pu, pb, lu, lb, n_users, n_benefits);
        }
        return py::make_tuple(to_numpy(std::move(r.decision)), to_numpy(std::move(r.target)),
                              to_numpy(std::move(r.plan_row)));
      },
      py::arg("plan_users"), py::arg("plan_benefits"), py::arg("logged_users"),
      py::arg("logged_benefits"), py::arg("n_users"), py::arg("n_benefits"));
  m.def(
      "evaluate_plan_offline",
      [](const EventLog& log, const Catalog& catalog, const py::array& plan_users,
         const py::array& plan_benefits, const py::array& probability, const py::array& value,
         double issue_cost, Timestamp since, Timestamp until, const std::string& estimator,
         double confidence, double clip, int num_threads) {
        OfflinePlan plan;
        plan.users = view_1d<Index>(plan_users, "plan_users");
        plan.benefits = view_1d<Index>(plan_benefits, "plan_benefits");
        plan.probability = view_1d<double>(probability, "probability");
        plan.value = view_1d<double>(value, "value");
        plan.issue_cost = issue_cost;
        plan.since = since;
        plan.until = until;
        OffPolicyParams params;
        params.estimator = ope_estimator_from_string(estimator);
        params.confidence = confidence;
        params.clip = clip;
        params.num_threads = num_threads;
        const PlanOfflineEvaluation e =
            without_gil([&] { return evaluate_plan_offline(log, catalog, plan, params); });
        py::dict out;
        out["estimate"] = e.estimate;
        out["lower"] = e.lower;
        out["upper"] = e.upper;
        out["pairs"] = e.pairs;
        out["covered_pairs"] = e.covered_pairs;
        out["decisions"] = e.decisions;
        out["effective_sample_size"] = e.effective_sample_size;
        return out;
      },
      py::arg("log"), py::arg("catalog"), py::arg("plan_users"), py::arg("plan_benefits"),
      py::arg("probability"), py::arg("value"), py::arg("issue_cost"), py::arg("since"),
      py::arg("until"), py::arg("estimator"), py::arg("confidence"), py::arg("clip"),
      py::arg("num_threads"),
      "eval/plan_offline.hpp: {estimate, lower, upper (redemptions, cost, return), pairs, "
      "covered_pairs, decisions, effective_sample_size}");
  m.def("off_policy_value",
        [](const py::array& rewards, const py::array& logged_propensity,
           const py::array& target_propensity, const std::optional<py::array>& reward_estimate,
           const std::optional<py::array>& target_reward_estimate, const std::string& estimator,
           double confidence, double clip, double switch_threshold, int num_threads) {
          const Outcomes r = view_1d<double>(rewards, "rewards");
          const Outcomes p = view_1d<double>(logged_propensity, "logged_propensity");
          const Outcomes pi = view_1d<double>(target_propensity, "target_propensity");
          const Outcomes q = view_1d_or_empty<double>(reward_estimate, "reward_estimate");
          const Outcomes e =
              view_1d_or_empty<double>(target_reward_estimate, "target_reward_estimate");
          OffPolicyParams params;
          params.estimator = ope_estimator_from_string(estimator);
          params.confidence = confidence;
          params.clip = clip;
          params.switch_threshold = switch_threshold;
          params.num_threads = num_threads;
          OffPolicyEstimate est;
          {
            py::gil_scoped_release release;
            est = off_policy_value(r, p, pi, q, e, params);
          }
          py::dict out;
          out["estimator"] = to_string(params.estimator);
          out["value"] = est.value;
          out["lower"] = est.lower;
          out["upper"] = est.upper;
          out["std_error"] = est.std_error;
          out["effective_sample_size"] = est.effective_sample_size;
          out["max_weight"] = est.max_weight;
          out["n_clipped"] = est.n_clipped;
          out["n_switched"] = est.n_switched;
          out["n"] = est.n;
          return out;
        });

  m.def("holdout_hash", [](const std::string& user_id, const std::string& salt) {
    return holdout_hash(user_id, salt);
  });
  m.def("assign_holdout", [](const std::vector<std::string>& user_ids, const std::string& salt,
                             const py::array& weights, int num_threads) {
    const Outcomes w = view_1d<double>(weights, "weights");
    std::vector<std::int32_t> arms;
    {
      py::gil_scoped_release release;
      arms = assign_holdout(user_ids, salt, w, num_threads);
    }
    return to_numpy(std::move(arms));
  });
  m.def(
      "experiment_members",
      [](const EventLog& log, const py::array& cost_per_redemption, Timestamp since,
         Timestamp until, double issue_cost) {
        const Span<const double> cost = view_1d<double>(cost_per_redemption, "cost_per_redemption");
        ExperimentMembers r;
        {
          py::gil_scoped_release release;
          r = experiment_members(log, cost, since, until, issue_cost);
        }
        py::dict out;
        out["control"] = to_numpy(std::move(r.control));
        out["orders"] = to_numpy(std::move(r.orders));
        out["revenue"] = to_numpy(std::move(r.revenue));
        out["cost"] = to_numpy(std::move(r.cost));
        if (!r.orders_pre.empty() || since != kNoTime) {
          out["orders_pre"] = to_numpy(std::move(r.orders_pre));
          out["revenue_pre"] = to_numpy(std::move(r.revenue_pre));
        }
        return out;
      },
      py::arg("log"), py::arg("cost_per_redemption"), py::arg("since"), py::arg("until"),
      py::arg("issue_cost"));
  m.def("analyze_experiment",
        [](const py::array& arms, const std::vector<py::array>& metrics,
           const std::vector<std::optional<py::array>>& pre_period,
           const std::optional<py::array>& cost, int n_arms, double confidence, int bootstrap,
           bool cuped, std::uint64_t seed, int num_threads) {
          const Span<const std::int32_t> a = view_1d<std::int32_t>(arms, "arm");
          std::vector<Outcomes> metric_views, pre_views;
          for (const py::array& column : metrics)
            metric_views.push_back(view_1d<double>(column, "metrics"));
          for (const auto& column : pre_period)
            pre_views.push_back(view_1d_or_empty<double>(column, "pre_period"));
          const Outcomes c = view_1d_or_empty<double>(cost, "cost");
          ExperimentParams params;
          params.n_arms = n_arms;
          params.confidence = confidence;
          params.bootstrap = bootstrap;
          params.cuped = cuped;
          params.seed = seed;
          params.num_threads = num_threads;
          std::vector<ExperimentComparison> rows;
          {
            py::gil_scoped_release release;
            rows = analyze_experiment(a, metric_views, pre_views, c, params);
          }
          std::vector<std::int32_t> arm(rows.size()), metric(rows.size());
          std::vector<std::int64_t> n_control(rows.size()), n_arm(rows.size());
          for (std::size_t i = 0; i < rows.size(); ++i) {
            arm[i] = rows[i].arm;
            metric[i] = rows[i].metric;
            n_control[i] = rows[i].n_control;
            n_arm[i] = rows[i].n_arm;
          }
          py::dict out;
          out["arm"] = to_numpy(std::move(arm));
          out["metric"] = to_numpy(std::move(metric));
          out["n_control"] = to_numpy(std::move(n_control));
          out["n_arm"] = to_numpy(std::move(n_arm));
          const auto column = [&](const char* name, double ExperimentComparison::*field) {
            std::vector<double> values(rows.size());
            for (std::size_t i = 0; i < rows.size(); ++i) values[i] = rows[i].*field;
            out[name] = to_numpy(std::move(values));
          };
          column("control_mean", &ExperimentComparison::control_mean);
          column("arm_mean", &ExperimentComparison::arm_mean);
          column("lift", &ExperimentComparison::lift);
          column("relative_lift", &ExperimentComparison::relative_lift);
          column("std_error", &ExperimentComparison::std_error);
          column("lower", &ExperimentComparison::lower);
          column("upper", &ExperimentComparison::upper);
          column("p_value", &ExperimentComparison::p_value);
          column("theta", &ExperimentComparison::theta);
          column("bootstrap_lower", &ExperimentComparison::bootstrap_lower);
          column("bootstrap_upper", &ExperimentComparison::bootstrap_upper);
          column("roi", &ExperimentComparison::roi);
          column("roi_lower", &ExperimentComparison::roi_lower);
          column("roi_upper", &ExperimentComparison::roi_upper);
          column("roi_bootstrap_lower", &ExperimentComparison::roi_bootstrap_lower);
          column("roi_bootstrap_upper", &ExperimentComparison::roi_bootstrap_upper);
          return out;
        });
}

}  // namespace perkrec::python
