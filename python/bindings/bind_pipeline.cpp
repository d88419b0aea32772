// The fitted pipeline's model file (BenefitPlannerFile) and the C++ BenefitPlanner that plans
// and answers from it: plumbing only; compute runs with the GIL released.
#include "bindings.hpp"

namespace perkrec::python {

namespace {

template <class T>
std::vector<T> copy_1d(const std::optional<py::array>& a, const char* name) {
  const Span<const T> s = view_1d_or_empty<T>(a, name);
  return std::vector<T>(s.begin(), s.end());
}

}  // namespace

static void bind_pipeline_fit(py::module_& m) {
  m.attr("BENEFIT_PLANNER_DEFAULT_FIELDS_JSON") = benefit_planner_default_fields().dump();
  m.attr("BENEFIT_PLANNER_DEFAULT_BEHAVIOR_FIELD_JSON") =
      benefit_planner_default_behavior_field().dump();
  m.def(
      "benefit_planner_default_config",
      [] { return BenefitPlannerFitParams().to_config(0, 0).dump(); },
      "BenefitPlannerFitParams' defaults as the config JSON (times 0)");
  m.attr("DEFAULT_CUT_DAYS") = kDefaultCutDays;
  m.attr("SEGMENT_CHECKPOINT_DAYS") = kSegmentCheckpointDays;
  m.attr("BENEFIT_LEVEL_PRIOR") = BenefitLevelParams{}.prior;
  const auto segments_to_python = [](SegmentCheckpoints c) {
    py::list segments;
    for (auto& s : c.segments) segments.append(py::cast(std::move(s)));
    return py::make_tuple(to_numpy(std::move(c.times)), segments);
  };
  m.def(
      "fit_benefit_planner",
      [segments_to_python](const EventLog& events, const Catalog& catalog,
                           const UserTable* user_table, Timestamp cut,
                           const BehaviorLog* behavior_log, const ItemCatalog* items,
                           const BenefitItems* benefit_items, const std::string& config_json,
                           const py::object& progress) {
        const BenefitPlannerFitParams params = BenefitPlannerFitParams::from_json(
            parse_json_strict<ConfigError>(config_json, "BenefitPlanner: config"));
        const BehaviorData behavior{behavior_log, items, benefit_items};
        const Callbacks cb = make_callbacks(progress);
        BenefitPlannerFitInfo info;
        BenefitPlannerFile file;
        {
          py::gil_scoped_release release;
          file =
              fit_benefit_planner(events, catalog, user_table, cut, &behavior, params, cb, &info);
        }
        return py::make_tuple(std::move(file), segments_to_python(std::move(info.checkpoints)),
                              info.preference_weight_unclipped);
      },
      py::arg("events"), py::arg("catalog"), py::arg("user_table"), py::arg("cut"),
      py::arg("behavior_log"), py::arg("items"), py::arg("benefit_items"), py::arg("config_json"),
      py::arg("progress"),
      "(BenefitPlannerFile, (checkpoint times, segments per checkpoint), the unclipped "
      "preference weight or None)");
  m.def(
      "benefit_planner_segment_checkpoints",
      [segments_to_python](const EventLog& events, const Catalog& catalog,
                           const UserTable* user_table, const std::string& config_json) {
        const BenefitPlannerFitParams params = BenefitPlannerFitParams::from_json(
            parse_json_strict<ConfigError>(config_json, "BenefitPlanner: config"));
        SegmentCheckpoints c;
        {
          py::gil_scoped_release release;
          c = benefit_planner_segment_checkpoints(events, catalog, user_table, params);
        }
        return segments_to_python(std::move(c));
      },
      py::arg("events"), py::arg("catalog"), py::arg("user_table"), py::arg("config_json"));
}

void bind_pipeline(py::module_& m) {
  bind_pipeline_fit(m);
  py::class_<BenefitPlannerFile> cls(m, "BenefitPlannerFile");
  cls.def(py::init([](const std::string& config_json, const FM& fm,
                      const PreferenceModel& preference, const Catalog& catalog,
                      const EventLog& events, const std::optional<UserTable>& users,
                      const py::array& order_value, const std::optional<py::array>& holdout_user,
                      const std::optional<py::array>& holdout_benefit,
                      const std::optional<py::array>& holdout_predicted,
                      const std::optional<py::array>& holdout_redeemed,
                      const std::optional<py::array>& holdout_weight,
                      const std::optional<py::array>& incremental_share,
                      const std::optional<PooledMemberEffects>& pooled,
                      const std::optional<double>& preference_weight,
                      const BehaviorLog* behavior_log, const ItemCatalog* items,
                      const BenefitItems* benefit_items,
                      const std::optional<py::array>& benefit_level) {
            BenefitPlannerFile f;
            f.config = parse_json_strict<InputError>(config_json, "BenefitPlannerFile: config");
            f.redemption_model = fm;
            f.preference = preference;
            f.catalog = catalog;
            f.events = events;
            f.users = users;
            f.order_value = copy_1d<float>(order_value, "order_value");
            f.holdout_user = copy_1d<std::int32_t>(holdout_user, "holdout_user");
            f.holdout_benefit = copy_1d<std::int32_t>(holdout_benefit, "holdout_benefit");
            f.holdout_predicted = copy_1d<double>(holdout_predicted, "holdout_predicted");
            f.holdout_redeemed = copy_1d<double>(holdout_redeemed, "holdout_redeemed");
            f.holdout_weight = copy_1d<float>(holdout_weight, "holdout_weight");
            f.incremental_share = copy_1d<float>(incremental_share, "incremental_share");
            f.pooled = pooled;
            f.preference_weight = preference_weight;
            f.benefit_level = copy_1d<double>(benefit_level, "benefit_level");
            const int given =
                (behavior_log != nullptr) + (items != nullptr) + (benefit_items != nullptr);
            if (given != 0 && given != 3) {
              detail::raise<InputError>(
                  "BenefitPlannerFile: give behavior_log, items and benefit_items together");
            }
            if (given == 3)
              f.behavior = BenefitPlannerFile::Behavior{*behavior_log, *items, *benefit_items};
            f.validate();
            return f;
          }),
          py::arg("config_json"), py::arg("fm"), py::arg("preference"), py::arg("catalog"),
          py::arg("events"), py::arg("users"), py::arg("order_value"), py::arg("holdout_user"),
          py::arg("holdout_benefit"), py::arg("holdout_predicted"), py::arg("holdout_redeemed"),
          py::arg("holdout_weight"), py::arg("incremental_share"), py::arg("pooled") = py::none(),
          py::arg("preference_weight") = py::none(), py::arg("behavior_log") = nullptr,
          py::arg("items") = nullptr, py::arg("benefit_items") = nullptr,
          py::arg("benefit_level") = py::none())
      .def_property_readonly("config_json",
                             [](const BenefitPlannerFile& f) { return f.config.dump(); })
      .def_property_readonly("fm", [](const BenefitPlannerFile& f) { return f.redemption_model; })
      .def_property_readonly("preference", [](const BenefitPlannerFile& f) { return f.preference; })
      .def_property_readonly("catalog", [](const BenefitPlannerFile& f) { return f.catalog; })
      .def_property_readonly("events", [](const BenefitPlannerFile& f) { return f.events; })
      .def_property_readonly("users", [](const BenefitPlannerFile& f) { return f.users; })
      .def_property_readonly("pooled", [](const BenefitPlannerFile& f) { return f.pooled; })
      .def_property_readonly("preference_weight",
                             [](const BenefitPlannerFile& f) { return f.preference_weight; })
      .def_property_readonly(
          "behavior",
          [](const BenefitPlannerFile& f) -> py::object {
            if (!f.behavior) return py::none();
            return py::make_tuple(f.behavior->log, f.behavior->items, f.behavior->benefit_items);
          },
          "(BehaviorLog, ItemCatalog, BenefitItems) copies, or None");
  // Per-member and held-out arrays: copies the caller owns.
  const auto array = [&cls](const char* name, auto member) {
    cls.def_property_readonly(name, [member](const BenefitPlannerFile& f) {
      auto values = f.*member;
      return to_numpy(std::move(values));
    });
  };
  array("order_value", &BenefitPlannerFile::order_value);
  array("holdout_user", &BenefitPlannerFile::holdout_user);
  array("holdout_benefit", &BenefitPlannerFile::holdout_benefit);
  array("holdout_predicted", &BenefitPlannerFile::holdout_predicted);
  array("holdout_redeemed", &BenefitPlannerFile::holdout_redeemed);
  array("holdout_weight", &BenefitPlannerFile::holdout_weight);
  array("incremental_share", &BenefitPlannerFile::incremental_share);
  array("benefit_level", &BenefitPlannerFile::benefit_level);
  def_serialization<BenefitPlannerFile>(cls);

  py::class_<BenefitPlanner::State>(m, "BenefitPlannerState")
      .def_readonly("time", &BenefitPlanner::State::time)
      .def_property_readonly("slope", [](const BenefitPlanner::State& s) { return s.means.slope; });
  py::class_<BenefitPlanner>(m, "BenefitPlannerCore")
      .def(py::init([](const BenefitPlannerFile& file, int num_threads) {
             py::gil_scoped_release release;
             return BenefitPlanner(file, num_threads);
           }),
           py::arg("file"), py::arg("num_threads") = -1)
      .def_property_readonly("n_users", &BenefitPlanner::n_users)
      .def_property_readonly("n_benefits", &BenefitPlanner::n_benefits)
      .def_property_readonly("pooled", &BenefitPlanner::pooled)
      .def_property_readonly("preference_weight", &BenefitPlanner::preference_weight)
      .def_property_readonly("benefit_level", &BenefitPlanner::benefit_level)
      .def("set_block_users", &BenefitPlanner::set_block_users, py::arg("users"))
      .def(
          "redemption_probability",
          [](const BenefitPlanner& self, Timestamp at, const EventLog* events,
             const BehaviorLog* behavior) {
            std::vector<float> P;
            double slope = 1.0;
            {
              py::gil_scoped_release release;
              P = self.redemption_probability(at, events, &slope, behavior);
            }
            return py::make_tuple(
                to_numpy(std::move(P), {static_cast<py::ssize_t>(self.n_users()),
                                        static_cast<py::ssize_t>(self.n_benefits())}),
                slope);
          },
          py::arg("at"), py::arg("events") = nullptr, py::arg("behavior") = nullptr)
      .def(
          "plan",
          [](const BenefitPlanner& self, Timestamp at, double budget, const EventLog* events,
             const BehaviorLog* behavior, const std::optional<py::array>& users, double level) {
            PlanScope scope;
            scope.user_mask = view_1d_or_empty<std::uint8_t>(users, "users");
            scope.level = level;
            BenefitPlanner::Plan p;
            {
              py::gil_scoped_release release;
              p = self.plan(at, budget, events, behavior, scope);
            }
            const double slope = p.slope;
            return py::make_tuple(std::move(p.compiled), plan_result_to_python(std::move(p.result)),
                                  slope);
          },
          py::arg("at"), py::arg("budget"), py::arg("events") = nullptr,
          py::arg("behavior") = nullptr, py::arg("users") = py::none(), py::arg("level") = 1.0,
          "(compiled policy, Planner::plan's tuple, slope); users: uint8 flags per member")
      .def(
          "prepare",
          [](const BenefitPlanner& self, Timestamp at, const EventLog* events,
             const BehaviorLog* behavior) {
            py::gil_scoped_release release;
            return self.prepare(at, events, behavior);
          },
          py::arg("at"), py::arg("events") = nullptr, py::arg("behavior") = nullptr,
          py::keep_alive<0, 1>(), py::keep_alive<0, 3>(), py::keep_alive<0, 4>())
      .def(
          "answer",
          [](const BenefitPlanner& self, const BenefitPlanner::State& state, Index user,
             Timestamp time, int n) {
            UserAnswer a;
            {
              py::gil_scoped_release release;
              a = self.answer(state, user, time, n);
            }
            py::list benefits;
            for (auto& b : a.benefits) {
              py::dict d;
              d["benefit"] = b.benefit;
              d["probability"] = b.probability;
              d["value"] = b.value;
              d["cost"] = b.cost;
              d["send_at"] = b.schedule.send_at;
              d["validity_days"] = b.schedule.validity_days;
              d["reasons"] = b.reasons;
              benefits.append(std::move(d));
            }
            return py::make_tuple(benefits, std::string(exclusion_reason_name(a.blocked)),
                                  to_numpy(std::move(a.probability)));
          },
          py::arg("state"), py::arg("user"), py::arg("time"), py::arg("n") = 1);
}

}  // namespace perkrec::python
