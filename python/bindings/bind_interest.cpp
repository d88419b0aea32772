// InterestModel (models/interest.hpp): plumbing only, GIL released for all compute.
#include "bindings.hpp"

namespace perkrec::python {

void bind_interest(py::module_& m) {
  py::class_<InterestModel> cls(m, "InterestModel");
  cls.def(py::init([](const std::string& params_json) {
            return InterestModel(InterestParams::from_json(
                parse_json_strict<ConfigError>(params_json, "InterestModel")));
          }),
          py::arg("params_json"))
      .def("get_params", [](const InterestModel& s) { return s.get_params().dump(); })
      .def("set_num_threads", &InterestModel::set_num_threads)
      .def_property_readonly("fitted", &InterestModel::fitted)
      .def_property_readonly("n_users", &InterestModel::n_users)
      .def_property_readonly("n_values", &InterestModel::n_values)
      .def_property_readonly("cut_time", &InterestModel::cut_time)
      .def_property_readonly("prior_strength", &InterestModel::prior_strength)
      .def_property_readonly("missing_value_events", &InterestModel::missing_value_events)
      .def_property_readonly("value_names", &InterestModel::value_names)
      .def_property_readonly("user_ids", [](const InterestModel& s) { return s.user_ids(); })
      .def("set_user_ids", &InterestModel::set_user_ids, py::arg("users"))
      .def("population_share",
           [](const InterestModel& s) {
             return to_numpy(std::vector<double>(s.population_share()));
           })
      .def("total", [](const InterestModel& s) { return to_numpy(std::vector<float>(s.total())); })
      .def(
          "fit",
          [](InterestModel& self, const BehaviorLog& log, const ItemCatalog& items,
             Timestamp cut_time, const py::object& progress) {
            const Callbacks cb = make_callbacks(progress);
            without_gil([&] { self.fit(log, items, cut_time, cb); });
          },
          py::arg("log"), py::arg("items"), py::arg("cut_time"), py::arg("progress"))
      .def(
          "lifts",
          [](const InterestModel& self, const py::array& users) {
            const Span<const Index> u = view_1d<Index>(users, "users");
            std::vector<float> out = without_gil([&] { return self.lifts(u); });
            return to_numpy(std::move(out), {static_cast<py::ssize_t>(u.size()),
                                             static_cast<py::ssize_t>(self.n_values())});
          },
          py::arg("users"))
      .def(
          "group_lifts",
          [](const InterestModel& self, const py::array& group, std::int32_t n_groups) {
            const Span<const std::int32_t> g = view_1d<std::int32_t>(group, "group");
            std::vector<double> out = without_gil([&] { return self.group_lifts(g, n_groups); });
            return to_numpy(std::move(out), {static_cast<py::ssize_t>(n_groups),
                                             static_cast<py::ssize_t>(self.n_values())});
          },
          py::arg("group"), py::arg("n_groups"))
      .def(
          "group_top",
          [](const InterestModel& self, const py::array& group, std::int32_t n_groups, int n) {
            const Span<const std::int32_t> g = view_1d<std::int32_t>(group, "group");
            GroupInterests t = without_gil([&] { return self.group_top(g, n_groups, n); });
            py::dict out;
            out["group"] = to_numpy(std::move(t.group));
            out["rank"] = to_numpy(std::move(t.rank));
            out["value"] = to_numpy(std::move(t.value));
            out["mean_lift"] = to_numpy(std::move(t.mean_lift));
            out["members"] = to_numpy(std::move(t.members));
            return out;
          },
          py::arg("group"), py::arg("n_groups"), py::arg("n"))
      .def(
          "top",
          [](const InterestModel& self, const py::array& users, int n, double level) {
            const Span<const Index> u = view_1d<Index>(users, "users");
            TopInterests t = without_gil([&] { return self.top(u, n, level); });
            py::dict out;
            out["user"] = to_numpy(std::move(t.user));
            out["rank"] = to_numpy(std::move(t.rank));
            out["value"] = to_numpy(std::move(t.value));
            out["share"] = to_numpy(std::move(t.share));
            out["lift"] = to_numpy(std::move(t.lift));
            out["lower"] = to_numpy(std::move(t.lower));
            out["upper"] = to_numpy(std::move(t.upper));
            out["activity"] = to_numpy(std::move(t.activity));
            return out;
          },
          py::arg("users"), py::arg("n"), py::arg("level"));
  def_serialization<InterestModel>(cls);
}

}  // namespace perkrec::python
