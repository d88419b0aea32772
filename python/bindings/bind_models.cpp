// Models: the popularity baseline (the shared scoring/recommend bindings are in bindings.hpp).
#include "bindings.hpp"

namespace perkrec::python {

void bind_models(py::module_& m) {
  py::class_<Popularity> cls(m, "Popularity");
  cls.def(py::init([](const std::string& params_json) {
            return Popularity(PopularityParams::from_json(
                parse_json_strict<ConfigError>(params_json, "Popularity")));
          }),
          py::arg("params_json"))
      .def("get_params", [](const Popularity& p) { return p.get_params().dump(); })
      .def("set_num_threads", &Popularity::set_num_threads)
      .def_property_readonly("fitted", &Popularity::fitted)
      .def_property_readonly("n_users", &Popularity::n_users)
      .def_property_readonly("n_benefits", &Popularity::n_benefits)
      .def("fit",
           [](Popularity& self, const py::tuple& user_benefits, const py::object& progress) {
             const CsrArg arg = csr_arg(user_benefits, "user_benefits");
             const CsrView<float> view = arg.view("user_benefits");
             const Callbacks cb = make_callbacks(progress);
             py::gil_scoped_release release;
             self.fit(view, cb);
           })
      .def("benefit_scores",
           [](const Popularity& p) { return to_numpy(std::vector<float>(p.benefit_scores())); });
  def_recommender_scoring<Popularity>(cls);
  def_serialization<Popularity>(cls);
}

}  // namespace perkrec::python
