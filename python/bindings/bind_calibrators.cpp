// Probability calibrators (models/calibrators.hpp): Platt scaling and isotonic regression.
#include "bindings.hpp"

namespace perkrec::python {

namespace {

template <class C>
py::array predict_array(const C& c, const py::array& scores) {
  const Span<const double> s = view_1d<double>(scores, "scores");
  std::vector<double> out(s.size());
  {
    py::gil_scoped_release release;
    c.predict(s, Span<double>(out.data(), out.size()));
  }
  return to_numpy(std::move(out));
}

template <class C>
void fit_arrays(C& c, const py::array& scores, const py::array& labels) {
  const Span<const double> s = view_1d<double>(scores, "scores");
  const Span<const double> y = view_1d<double>(labels, "labels");
  py::gil_scoped_release release;
  c.fit(s, y);
}

}  // namespace

void bind_calibrators(py::module_& m) {
  py::class_<PlattCalibrator>(m, "PlattCalibrator")
      .def(py::init<>())
      .def("fit", &fit_arrays<PlattCalibrator>, py::arg("scores"), py::arg("labels"))
      .def("predict", &predict_array<PlattCalibrator>, py::arg("scores"))
      .def_property_readonly("a", &PlattCalibrator::a)
      .def_property_readonly("b", &PlattCalibrator::b)
      .def_property_readonly("fitted", &PlattCalibrator::fitted)
      .def("to_json", [](const PlattCalibrator& c) { return c.to_json().dump(); })
      .def_static("from_json", [](const std::string& text) {
        return PlattCalibrator::from_json(
            parse_json_strict<ConfigError>(text, "PlattCalibrator.from_json"));
      });
  py::class_<IsotonicCalibrator>(m, "IsotonicCalibrator")
      .def(py::init<>())
      .def("fit", &fit_arrays<IsotonicCalibrator>, py::arg("scores"), py::arg("labels"))
      .def("predict", &predict_array<IsotonicCalibrator>, py::arg("scores"))
      .def_property_readonly(
          "x",
          [](const IsotonicCalibrator& c) { return to_numpy(std::vector<double>(c.knots_x())); })
      .def_property_readonly(
          "y",
          [](const IsotonicCalibrator& c) { return to_numpy(std::vector<double>(c.knots_y())); })
      .def_property_readonly("fitted", &IsotonicCalibrator::fitted)
      .def("to_json", [](const IsotonicCalibrator& c) { return c.to_json().dump(); })
      .def_static("from_json", [](const std::string& text) {
        return IsotonicCalibrator::from_json(
            parse_json_strict<ConfigError>(text, "IsotonicCalibrator.from_json"));
      });
}

}  // namespace perkrec::python
