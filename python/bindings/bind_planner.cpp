// The planner (decide/planner.hpp): estimators, baselines and Planner::plan. Plumbing only;
// compute runs with the GIL released.
#include "bindings.hpp"

namespace perkrec::python {

namespace {

BaselineInputs baseline_inputs(Index n_users, Index n_benefits, const py::array& probability,
                               const py::array& value, const py::array& cost_per_redemption,
                               const std::optional<py::array>& eligible, double budget,
                               double issue_cost, const std::optional<py::array>& order) {
  BaselineInputs in;
  in.n_users = n_users;
  in.n_benefits = n_benefits;
  in.redemption_probability = view_1d<double>(probability, "redemption_probability");
  in.value = view_1d<double>(value, "value");
  in.cost_per_redemption = view_1d<double>(cost_per_redemption, "cost_per_redemption");
  in.eligible = view_1d_or_empty<std::uint8_t>(eligible, "eligible");
  in.budget = budget;
  in.issue_cost = issue_cost;
  in.order = view_1d_or_empty<Index>(order, "order");
  return in;
}

py::tuple baseline_out(BaselinePlan&& p) {
  const Index chosen = p.chosen;
  return py::make_tuple(to_numpy(std::move(p.member)), to_numpy(std::move(p.benefit)),
                        to_numpy(std::move(p.probability)), to_numpy(std::move(p.value)),
                        to_numpy(std::move(p.cost)), chosen);
}

}  // namespace

void bind_planner(py::module_& m) {
  m.def(
      "order_value",
      [](const py::array& users, const std::optional<py::array>& times, const py::array& amounts,
         Index n_users, double margin, Timestamp cut_time) {
        const Span<const Index> u = view_1d<Index>(users, "users");
        const Span<const Timestamp> t = view_1d_or_empty<Timestamp>(times, "times");
        const Span<const float> a = view_1d<float>(amounts, "amounts");
        std::vector<float> out;
        {
          py::gil_scoped_release release;
          out = order_value(u, t, a, n_users, margin, cut_time);
        }
        return to_numpy(std::move(out));
      },
      py::arg("users"), py::arg("times"), py::arg("amounts"), py::arg("n_users"), py::arg("margin"),
      py::arg("cut_time"));
  m.def(
      "order_value_log",
      [](const EventLog& log, double margin, Timestamp cut_time) {
        std::vector<float> out;
        {
          py::gil_scoped_release release;
          out = order_value(log, margin, cut_time);
        }
        return to_numpy(std::move(out));
      },
      py::arg("log"), py::arg("margin"), py::arg("cut_time"));
  m.attr("NO_TIME") = kNoTime;
  m.def(
      "redemption_counts",
      [](const py::array& benefits, Index n_benefits) {
        return to_numpy(redemption_counts(view_1d<Index>(benefits, "benefits"), n_benefits));
      },
      py::arg("benefits"), py::arg("n_benefits"));
  m.def(
      "redemption_counts_log",
      [](const EventLog& log, Index n_benefits) {
        return to_numpy(redemption_counts(log, n_benefits));
      },
      py::arg("log"), py::arg("n_benefits"));
  m.def(
      "incremental_share_from_control",
      [](Index n_users, const py::array& order_user, const py::array& order_time,
         const py::array& issue_user, const py::array& issue_benefit, const py::array& issue_time,
         const py::array& issue_redeemed, const py::array& control_user,
         const py::array& control_benefit, const py::array& control_time,
         const py::array& benefit_kind, std::int32_t n_kinds, const py::array& validity_days,
         Timestamp plan_time, std::int64_t min_rows) {
        ControlShareInputs in;
        in.n_users = n_users;
        in.order_user = view_1d<Index>(order_user, "order_user");
        in.order_time = view_1d<Timestamp>(order_time, "order_time");
        in.issue_user = view_1d<Index>(issue_user, "issue_user");
        in.issue_benefit = view_1d<Index>(issue_benefit, "issue_benefit");
        in.issue_time = view_1d<Timestamp>(issue_time, "issue_time");
        in.issue_redeemed = view_1d<double>(issue_redeemed, "issue_redeemed");
        in.control_user = view_1d<Index>(control_user, "control_user");
        in.control_benefit = view_1d<Index>(control_benefit, "control_benefit");
        in.control_time = view_1d<Timestamp>(control_time, "control_time");
        in.benefit_kind = view_1d<std::int32_t>(benefit_kind, "benefit_kind");
        in.n_kinds = n_kinds;
        in.validity_days = view_1d<double>(validity_days, "validity_days");
        in.plan_time = plan_time;
        in.min_rows = min_rows;
        std::vector<float> out;
        {
          py::gil_scoped_release release;
          out = incremental_share_from_control(in);
        }
        return to_numpy(std::move(out), {static_cast<py::ssize_t>(n_users),
                                         static_cast<py::ssize_t>(in.validity_days.size())});
      },
      py::arg("n_users"), py::arg("order_user"), py::arg("order_time"), py::arg("issue_user"),
      py::arg("issue_benefit"), py::arg("issue_time"), py::arg("issue_redeemed"),
      py::arg("control_user"), py::arg("control_benefit"), py::arg("control_time"),
      py::arg("benefit_kind"), py::arg("n_kinds"), py::arg("validity_days"), py::arg("plan_time"),
      py::arg("min_rows"));
  m.def(
      "incremental_share_from_control_log",
      [](const EventLog& log, const Catalog& catalog, Timestamp plan_time,
         std::int32_t pseudo_issues, std::int64_t min_rows, std::uint64_t seed) {
        ControlShareParams params;
        params.pseudo_issues = pseudo_issues;
        params.min_rows = min_rows;
        params.seed = seed;
        std::vector<float> out;
        {
          py::gil_scoped_release release;
          out = incremental_share_from_control(log, catalog, plan_time, params);
        }
        return to_numpy(std::move(out), {static_cast<py::ssize_t>(log.n_users()),
                                         static_cast<py::ssize_t>(catalog.size())});
      },
      py::arg("log"), py::arg("catalog"), py::arg("plan_time"), py::arg("pseudo_issues"),
      py::arg("min_rows"), py::arg("seed"));
  m.def(
      "timing_share",
      [](const py::array& orders_per_day, const py::array& validity_days) {
        const Span<const double> r = view_1d<double>(orders_per_day, "orders_per_day");
        const Span<const double> v = view_1d<double>(validity_days, "validity_days");
        std::vector<float> out;
        {
          py::gil_scoped_release release;
          out = timing_share(r, v);
        }
        return to_numpy(std::move(out),
                        {static_cast<py::ssize_t>(r.size()), static_cast<py::ssize_t>(v.size())});
      },
      py::arg("orders_per_day"), py::arg("validity_days"));

  m.def(
      "popularity_plan",
      [](Index n_users, Index n_benefits, const py::array& probability, const py::array& value,
         const py::array& cost_per_redemption, const std::optional<py::array>& eligible,
         double budget, double issue_cost, const std::optional<py::array>& order,
         const py::array& popularity) {
        const BaselineInputs in =
            baseline_inputs(n_users, n_benefits, probability, value, cost_per_redemption, eligible,
                            budget, issue_cost, order);
        const Span<const double> pop = view_1d<double>(popularity, "popularity");
        BaselinePlan p;
        {
          py::gil_scoped_release release;
          p = popularity_plan(in, pop);
        }
        return baseline_out(std::move(p));
      },
      py::arg("n_users"), py::arg("n_benefits"), py::arg("probability"), py::arg("value"),
      py::arg("cost_per_redemption"), py::arg("eligible"), py::arg("budget"), py::arg("issue_cost"),
      py::arg("order"), py::arg("popularity"));
  m.def(
      "segment_rules_plan",
      [](Index n_users, Index n_benefits, const py::array& probability, const py::array& value,
         const py::array& cost_per_redemption, const std::optional<py::array>& eligible,
         double budget, double issue_cost, const std::optional<py::array>& order,
         const py::array& member_segment, const py::array& segment_benefit) {
        const BaselineInputs in =
            baseline_inputs(n_users, n_benefits, probability, value, cost_per_redemption, eligible,
                            budget, issue_cost, order);
        const Span<const std::int32_t> codes =
            view_1d<std::int32_t>(member_segment, "member_segment");
        const Span<const Index> seg_b = view_1d<Index>(segment_benefit, "segment_benefit");
        BaselinePlan p;
        {
          py::gil_scoped_release release;
          p = segment_rules_plan(in, codes, seg_b);
        }
        return baseline_out(std::move(p));
      },
      py::arg("n_users"), py::arg("n_benefits"), py::arg("probability"), py::arg("value"),
      py::arg("cost_per_redemption"), py::arg("eligible"), py::arg("budget"), py::arg("issue_cost"),
      py::arg("order"), py::arg("member_segment"), py::arg("segment_benefit"));
  m.def(
      "evaluate_plan_truth",
      [](const py::array& redemption_probability, const py::array& incremental_probability,
         Index n_users, Index n_benefits, const py::array& order_value,
         const py::array& cost_per_redemption, const py::array& users, const py::array& benefits,
         double issue_cost) {
        const Span<const double> red =
            view_1d<double>(redemption_probability, "redemption_probability");
        const Span<const double> inc =
            view_1d<double>(incremental_probability, "incremental_probability");
        const Span<const double> value = view_1d<double>(order_value, "order_value");
        const Span<const double> cost = view_1d<double>(cost_per_redemption, "cost_per_redemption");
        const Span<const Index> u = view_1d<Index>(users, "users");
        const Span<const Index> b = view_1d<Index>(benefits, "benefits");
        PlanTruth t;
        {
          py::gil_scoped_release release;
          t = evaluate_plan_truth(red, inc, n_users, n_benefits, value, cost, u, b, issue_cost);
        }
        py::dict out;
        out["members"] = t.members;
        out["benefits"] = t.benefits;
        out["redemptions"] = t.redemptions;
        out["cost"] = t.cost;
        out["incremental_return"] = t.incremental_return;
        out["return_per_cost"] = t.return_per_cost;
        return out;
      },
      py::arg("redemption_probability"), py::arg("incremental_probability"), py::arg("n_users"),
      py::arg("n_benefits"), py::arg("order_value"), py::arg("cost_per_redemption"),
      py::arg("users"), py::arg("benefits"), py::arg("issue_cost"));
  m.def(
      "default_segment_benefits",
      [](const Catalog& catalog, const py::array& popularity,
         const std::vector<std::string>& segment_names,
         const std::optional<py::array>& expected_cost, double max_cost_per_user) {
        const Span<const double> pop = view_1d<double>(popularity, "popularity");
        const Span<const double> cost = view_1d_or_empty<double>(expected_cost, "expected_cost");
        std::vector<Index> chosen;
        {
          py::gil_scoped_release release;
          chosen = default_segment_benefits(catalog, pop, segment_names, cost, max_cost_per_user);
        }
        return to_numpy(std::move(chosen));
      },
      py::arg("catalog"), py::arg("popularity"), py::arg("segment_names"), py::arg("expected_cost"),
      py::arg("max_cost_per_user"));

  m.def(
      "check_planner_params",
      [](const std::string& text) {
        return PlannerParams::from_json(parse_json_strict<ConfigError>(text, "PlannerParams"))
            .to_json()
            .dump();
      },
      py::arg("text"));
  m.def(
      "plan",
      [](const CompiledPolicy& compiled, const Catalog& catalog, Timestamp plan_time,
         const std::string& params_json, const std::optional<py::array>& probability,
         const ScoreBlend* blend, const std::optional<py::array>& user_factors,
         const std::optional<py::array>& benefit_factors,
         const std::optional<py::array>& benefit_bias, Index factor_k,
         const std::optional<py::array>& share, const std::optional<py::array>& orders_per_day,
         const std::optional<py::array>& validity_days, const std::optional<py::array>& order_value,
         const std::optional<py::array>& benefit_value, const PreferenceModel* preference,
         double budget, const BehaviorLog* behavior_log, const ItemCatalog* items,
         const BenefitItems* benefit_items) {
        const Planner planner(
            PlannerParams::from_json(parse_json_strict<ConfigError>(params_json, "Planner")));
        PlanInputs in;
        in.redemption_probability = view_1d_or_empty<float>(probability, "redemption_probability");
        in.blend = blend;
        if (user_factors) {
          if (!benefit_factors)
            detail::raise<InputError>("plan: user_factors need benefit_factors");
          in.probability =
              factor_scorer(view_1d<float>(*user_factors, "user_factors"),
                            view_1d<float>(*benefit_factors, "benefit_factors"),
                            view_1d_or_empty<float>(benefit_bias, "benefit_bias"), factor_k);
        }
        in.incremental_share = view_1d_or_empty<float>(share, "incremental_share");
        if (orders_per_day) {
          const Span<const double> r = view_1d<double>(*orders_per_day, "orders_per_day");
          const Span<const double> v = view_1d_or_empty<double>(validity_days, "validity_days");
          in.incremental_share_scorer = timing_share_scorer(
              std::vector<double>(r.begin(), r.end()), std::vector<double>(v.begin(), v.end()));
        }
        in.order_value = view_1d_or_empty<float>(order_value, "order_value");
        in.benefit_value = view_1d_or_empty<float>(benefit_value, "benefit_value");
        in.preference = preference;
        in.budget = budget;
        in.behavior.log = behavior_log;
        in.behavior.items = items;
        in.behavior.benefit_items = benefit_items;
        if ((behavior_log != nullptr || items != nullptr || benefit_items != nullptr) &&
            !in.behavior.complete()) {
          detail::raise<InputError>("plan: give behavior_log, items and benefit_items together");
        }
        PlanResult r;
        {
          py::gil_scoped_release release;
          r = planner.plan(compiled, catalog, plan_time, in);
        }
        return plan_result_to_python(std::move(r));
      },
      py::arg("compiled"), py::arg("catalog"), py::arg("plan_time"), py::arg("params_json"),
      py::arg("probability"), py::arg("blend"), py::arg("user_factors"), py::arg("benefit_factors"),
      py::arg("benefit_bias"), py::arg("factor_k"), py::arg("share"), py::arg("orders_per_day"),
      py::arg("validity_days"), py::arg("order_value"), py::arg("benefit_value"),
      py::arg("preference"), py::arg("budget"), py::arg("behavior_log") = nullptr,
      py::arg("items") = nullptr, py::arg("benefit_items") = nullptr,
      "Planner::plan: (candidates, diagnostics, allocation, rows, budget); rows is a dict of "
      "arrays + reasons.");
}

}  // namespace perkrec::python
