// Uplift meta-learners (T, X, DR over FM): plumbing only, GIL released for all compute.
#include "bindings.hpp"

namespace perkrec::python {

namespace {

// A rows x columns float32 result of one of the model's row-major predict methods.
py::array predict_matrix(const UpliftModel& self, const py::tuple& X,
                         void (UpliftModel::*method)(const CsrView<float>&, Span<float>) const,
                         std::size_t columns) {
  const CsrArg arg = csr_arg(X, "X");
  const CsrView<float> x = arg.view("X");
  std::vector<float> out(static_cast<std::size_t>(x.rows) * columns);
  {
    py::gil_scoped_release release;
    (self.*method)(x, out);
  }
  return to_numpy(std::move(out),
                  {static_cast<py::ssize_t>(x.rows), static_cast<py::ssize_t>(columns)});
}

}  // namespace

void bind_uplift(py::module_& m) {
  py::class_<UpliftModel> cls(m, "UpliftModel");
  cls.def(py::init([](const std::string& params_json) {
            return UpliftModel(UpliftParams::from_json(
                parse_json_strict<ConfigError>(params_json, "UpliftModel")));
          }),
          py::arg("params_json"))
      .def("get_params", [](const UpliftModel& u) { return u.get_params().dump(); })
      .def_property_readonly("fitted", &UpliftModel::fitted)
      .def_property_readonly("n_arms", &UpliftModel::n_arms)
      .def_property_readonly("n_features", &UpliftModel::n_features)
      .def_property_readonly("propensities_clipped", &UpliftModel::propensities_clipped)
      .def("arm_shares",
           [](const UpliftModel& u) { return to_numpy(std::vector<double>(u.arm_shares())); })
      .def(
          "fit",
          [](UpliftModel& self, const py::tuple& X, const py::array& outcome,
             const py::array& treatment, const std::optional<py::array>& propensity,
             const std::optional<py::array>& sample_weights, const py::object& progress) {
            const CsrArg rows = csr_arg(X, "X");
            const CsrView<float> x = rows.view("X");
            UpliftTarget t;
            t.outcome = view_1d<float>(outcome, "outcome");
            t.treatment = view_1d<std::int32_t>(treatment, "treatment");
            t.propensity = view_1d_or_empty<float>(propensity, "propensity");
            t.sample_weights = view_1d_or_empty<float>(sample_weights, "sample_weights");
            const Callbacks cb = make_callbacks(progress);
            py::gil_scoped_release release;
            self.fit(x, t, cb);
          },
          py::arg("X"), py::arg("outcome"), py::arg("treatment"), py::arg("propensity"),
          py::arg("sample_weights"), py::arg("progress"))
      .def("predict",
           [](const UpliftModel& self, const py::tuple& X) {
             return predict_matrix(self, X, &UpliftModel::predict,
                                   static_cast<std::size_t>(self.n_arms()));
           })
      .def("predict_outcomes", [](const UpliftModel& self, const py::tuple& X) {
        return predict_matrix(self, X, &UpliftModel::predict_outcomes,
                              static_cast<std::size_t>(self.n_arms()) + 1);
      });
  def_serialization<UpliftModel>(cls);
}

}  // namespace perkrec::python
