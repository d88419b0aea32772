// The membership simulator.
#include "bindings.hpp"

namespace perkrec::python {

void bind_simulator(py::module_& m) {
  py::class_<SimulatorParams>(m, "SimulatorParams")
      .def(py::init<>())
      .def_readwrite("n_users", &SimulatorParams::n_users)
      .def_readwrite("n_benefits", &SimulatorParams::n_benefits)
      .def_readwrite("days", &SimulatorParams::days)
      .def_readwrite("start_time", &SimulatorParams::start_time)
      .def_readwrite("control_fraction", &SimulatorParams::control_fraction)
      .def_readwrite("issues_per_week", &SimulatorParams::issues_per_week)
      .def_readwrite("archetype_mix", &SimulatorParams::archetype_mix)
      .def_readwrite("preference_noise", &SimulatorParams::preference_noise)
      .def_readwrite("member_day_of_month", &SimulatorParams::member_day_of_month)
      .def_readwrite("holiday_start_day", &SimulatorParams::holiday_start_day)
      .def_readwrite("holiday_days", &SimulatorParams::holiday_days)
      .def_readwrite("behavior", &SimulatorParams::behavior)
      .def_readwrite("n_categories", &SimulatorParams::n_categories)
      .def_readwrite("interest_concentration", &SimulatorParams::interest_concentration)
      .def_readwrite("interest_effect", &SimulatorParams::interest_effect)
      .def_readwrite("lines_per_order", &SimulatorParams::lines_per_order)
      .def_readwrite("views_per_order", &SimulatorParams::views_per_order)
      .def_readwrite("seed", &SimulatorParams::seed)
      .def_readwrite("num_threads", &SimulatorParams::num_threads)
      .def("validate", &SimulatorParams::validate);

  std::vector<std::string> archetypes;
  for (int a = 0; a < kNumArchetypes; ++a)
    archetypes.emplace_back(to_string(static_cast<Archetype>(a)));
  m.attr("ARCHETYPES") = archetypes;

  m.def(
      "simulate",
      [](const SimulatorParams& params, const py::object& progress) {
        SimulatedProgram p;
        {
          const Callbacks cb = make_callbacks(progress);
          py::gil_scoped_release release;
          p = simulate(params, cb);
        }
        SimulationTruth& t = p.truth;
        const auto n = static_cast<py::ssize_t>(t.n_users);
        const auto nb = static_cast<py::ssize_t>(t.n_benefits);
        const auto nd = static_cast<py::ssize_t>(t.dimension_names.size());
        py::dict truth;
        truth["reference_time"] = t.reference_time;
        truth["dimension_names"] = t.dimension_names;
        truth["archetype"] = to_numpy(std::move(t.archetype));
        truth["preference"] = to_numpy(std::move(t.preference), {n, nd});
        truth["preference_lift"] = to_numpy(std::move(t.preference_lift), {n, nd});
        truth["claim_probability"] = to_numpy(std::move(t.claim_probability), {n, nb});
        truth["redemption_probability"] = to_numpy(std::move(t.redemption_probability), {n, nb});
        truth["incremental_probability"] = to_numpy(std::move(t.incremental_probability), {n, nb});
        truth["preferred_hour"] = to_numpy(std::move(t.preferred_hour));
        truth["preferred_weekday"] = to_numpy(std::move(t.preferred_weekday));
        truth["cycle_days"] = to_numpy(std::move(t.cycle_days));
        truth["cycle_shape"] = to_numpy(std::move(t.cycle_shape));
        truth["basket_median"] = to_numpy(std::move(t.basket_median));
        truth["signup_time"] = to_numpy(std::move(t.signup_time));
        truth["lapse_time"] = to_numpy(std::move(t.lapse_time));
        truth["control"] = to_numpy(std::move(t.control));
        truth["expected_next_order_time"] = to_numpy(std::move(t.expected_next_order_time));
        const auto nc = static_cast<py::ssize_t>(t.category_names.size());
        truth["category_names"] = t.category_names;
        truth["category_share"] = to_numpy(std::move(t.category_share));
        truth["interest"] = to_numpy(std::move(t.interest), {n, nc});
        py::dict out;
        out["catalog"] = std::move(p.catalog);
        out["users"] = std::move(p.users);
        out["events"] = std::move(p.events);
        out["truth"] = truth;
        if (params.behavior) {
          out["items"] = std::move(p.items);
          out["benefit_items"] = std::move(p.benefit_items);
          out["behavior"] = std::move(p.behavior);
        }
        return out;
      },
      py::arg("params"), py::arg("progress") = py::none());
  m.def("simulated_catalog", &simulated_catalog, py::arg("params"));
}

}  // namespace perkrec::python
