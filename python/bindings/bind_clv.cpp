// Member value (CLVModel, purchase summaries): plumbing only, GIL released for all compute.
#include "bindings.hpp"

namespace perkrec::python {

namespace {

CLVParams::TimeUnit parse_unit(const std::string& name, const char* field) {
  if (name == "day") return CLVParams::TimeUnit::day;
  if (name == "week") return CLVParams::TimeUnit::week;
  detail::raise<ConfigError>(field, ": unknown ", field, " '", name,
                             "' (expected \"day\" or \"week\")");
}

py::dict summary_to_python(CLVSummary&& s) {
  py::dict out;
  out["users"] = to_numpy(std::move(s.users));
  out["x"] = to_numpy(std::move(s.x));
  out["t_x"] = to_numpy(std::move(s.t_x));
  out["T"] = to_numpy(std::move(s.T));
  out["monetary"] = to_numpy(std::move(s.monetary));
  out["mean_order_value"] = to_numpy(std::move(s.mean_order_value));
  out["first_order"] = to_numpy(std::move(s.first_order));
  return out;
}

py::dict member_fields_to_python(CLVMemberFields&& f) {
  py::dict out;
  out["clv"] = to_numpy(std::move(f.clv));
  out["clv_percentile"] = to_numpy(std::move(f.clv_percentile));
  out["p_alive"] = to_numpy(std::move(f.p_alive));
  out["lifecycle_stage"] = to_numpy(std::move(f.lifecycle_stage));
  return out;
}

}  // namespace

void bind_clv(py::module_& m) {
  m.def(
      "summarize_purchases",
      [](const EventLog& log, Timestamp cut_time, const std::string& time_unit,
         const std::string& occasion, int num_threads) {
        const CLVParams::TimeUnit unit = parse_unit(time_unit, "time_unit");
        const CLVParams::TimeUnit occ = parse_unit(occasion, "occasion");
        CLVSummary s =
            without_gil([&] { return summarize_purchases(log, cut_time, unit, occ, num_threads); });
        return summary_to_python(std::move(s));
      },
      py::arg("log"), py::arg("cut_time"), py::arg("time_unit"), py::arg("occasion"),
      py::arg("num_threads"));

  m.def(
      "calibration_holdout",
      [](const EventLog& log, Timestamp calibration_end, Timestamp observation_end,
         const std::string& time_unit, const std::string& occasion, int num_threads) {
        const CLVParams::TimeUnit unit = parse_unit(time_unit, "time_unit");
        const CLVParams::TimeUnit occ = parse_unit(occasion, "occasion");
        CLVHoldout h = without_gil([&] {
          return calibration_holdout(log, calibration_end, observation_end, unit, occ, num_threads);
        });
        py::dict out = summary_to_python(std::move(h.calibration));
        out["holdout_purchases"] = to_numpy(std::move(h.purchases));
        out["holdout_spend"] = to_numpy(std::move(h.spend));
        out["period_purchases"] = to_numpy(std::move(h.period_purchases));
        out["duration"] = h.duration;
        return out;
      },
      py::arg("log"), py::arg("calibration_end"), py::arg("observation_end"), py::arg("time_unit"),
      py::arg("occasion"), py::arg("num_threads"));

  m.def(
      "naive_forecast",
      [](const py::array& x, const py::array& T, const py::array& mean_order_value,
         double horizon) {
        const Span<const double> xs = view_1d<double>(x, "x");
        const Span<const double> ts = view_1d<double>(T, "T");
        const Span<const double> values = view_1d<double>(mean_order_value, "mean_order_value");
        CLVForecast f = without_gil([&] { return naive_forecast(xs, ts, values, horizon); });
        return py::make_tuple(to_numpy(std::move(f.expected_purchases)),
                              to_numpy(std::move(f.clv)));
      },
      py::arg("x"), py::arg("T"), py::arg("mean_order_value"), py::arg("horizon"));

  py::class_<CLVModel> cls(m, "CLVModel");
  cls.def(py::init([](const std::string& params_json) {
            return CLVModel(
                CLVParams::from_json(parse_json_strict<ConfigError>(params_json, "CLVModel")));
          }),
          py::arg("params_json"))
      .def("get_params", [](const CLVModel& c) { return c.get_params().dump(); })
      .def("set_num_threads", &CLVModel::set_num_threads)
      .def_property_readonly("fitted", &CLVModel::fitted)
      .def_property_readonly("n_users", &CLVModel::n_users)
      .def_property_readonly("cut_time", &CLVModel::cut_time)
      .def_property_readonly("user_ids", [](const CLVModel& c) { return c.user_ids(); })
      .def("report_json", [](const CLVModel& c) { return c.report().to_json().dump(); })
      .def("summary", [](const CLVModel& c) { return summary_to_python(CLVSummary(c.summary())); })
      .def(
          "fit",
          [](CLVModel& self, const EventLog& log, Timestamp cut_time, const py::object& progress) {
            const Callbacks cb = make_callbacks(progress);
            without_gil([&] { self.fit(log, cut_time, cb); });
          },
          py::arg("log"), py::arg("cut_time"), py::arg("progress"))
      .def(
          "fit_summary",
          [](CLVModel& self, const py::array& x, const py::array& t_x, const py::array& T,
             const py::array& monetary, const py::object& progress) {
            const Span<const double> xs = view_1d<double>(x, "x");
            const Span<const double> ts = view_1d<double>(t_x, "t_x");
            const Span<const double> Ts = view_1d<double>(T, "T");
            const Span<const double> ms = view_1d<double>(monetary, "monetary");
            const Callbacks cb = make_callbacks(progress);
            without_gil([&] { self.fit(CLVSummary::from_arrays(xs, ts, Ts, ms), cb); });
          },
          py::arg("x"), py::arg("t_x"), py::arg("T"), py::arg("monetary"), py::arg("progress"))
      .def(
          "conditional",
          [](const CLVModel& self, const py::array& x, const py::array& t_x, const py::array& T,
             double horizon) {
            const Span<const double> xs = view_1d<double>(x, "x");
            const Span<const double> ts = view_1d<double>(t_x, "t_x");
            const Span<const double> Ts = view_1d<double>(T, "T");
            std::vector<double> alive(xs.size()), expected(xs.size());
            without_gil([&] { self.conditional(xs, ts, Ts, horizon, alive, expected); });
            py::dict out;
            out["p_alive"] = to_numpy(std::move(alive));
            out["expected_purchases"] = to_numpy(std::move(expected));
            return out;
          },
          py::arg("x"), py::arg("t_x"), py::arg("T"), py::arg("horizon"))
      .def(
          "expected_purchases_by_period",
          [](const CLVModel& self, const py::array& x, const py::array& t_x, const py::array& T,
             int periods, double end) {
            const Span<const double> xs = view_1d<double>(x, "x");
            const Span<const double> ts = view_1d<double>(t_x, "t_x");
            const Span<const double> Ts = view_1d<double>(T, "T");
            std::vector<double> out = without_gil(
                [&] { return self.expected_purchases_by_period(xs, ts, Ts, periods, end); });
            return to_numpy(std::move(out));
          },
          py::arg("x"), py::arg("t_x"), py::arg("T"), py::arg("periods"), py::arg("end"))
      .def(
          "p_alive_history",
          [](const CLVModel& self, const EventLog& log, Index user, const py::array& times) {
            const Span<const Timestamp> t = view_1d<Timestamp>(times, "times");
            CLVMemberHistory h = without_gil([&] { return self.p_alive_history(log, user, t); });
            py::dict out;
            out["position"] = to_numpy(std::move(h.position));
            out["x"] = to_numpy(std::move(h.x));
            out["t_x"] = to_numpy(std::move(h.t_x));
            out["T"] = to_numpy(std::move(h.T));
            out["p_alive"] = to_numpy(std::move(h.p_alive));
            out["expected_purchases"] = to_numpy(std::move(h.expected_purchases));
            return out;
          },
          py::arg("log"), py::arg("user"), py::arg("times"))
      .def(
          "predict",
          [](const CLVModel& self, double horizon, double discount_rate, double margin) {
            CLVPrediction p =
                without_gil([&] { return self.predict(horizon, discount_rate, margin); });
            py::dict out;
            out["p_alive"] = to_numpy(std::move(p.p_alive));
            out["expected_purchases"] = to_numpy(std::move(p.expected_purchases));
            out["expected_order_value"] = to_numpy(std::move(p.expected_order_value));
            out["clv"] = to_numpy(std::move(p.clv));
            out["clv_lower"] = to_numpy(std::move(p.clv_lower));
            out["clv_upper"] = to_numpy(std::move(p.clv_upper));
            out["lifecycle_stage"] = to_numpy(std::move(p.lifecycle_stage));
            return out;
          },
          py::arg("horizon"), py::arg("discount_rate"), py::arg("margin"));
  cls.def(
         "member_fields",
         [](const CLVModel& self, double horizon, double discount_rate, double margin) {
           CLVMemberFields f =
               without_gil([&] { return self.member_fields(horizon, discount_rate, margin); });
           return member_fields_to_python(std::move(f));
         },
         py::arg("horizon"), py::arg("discount_rate"), py::arg("margin"))
      .def(
          "sample_fields",
          [](const CLVModel& self, const py::array& users, const py::array& timestamps,
             double horizon, double discount_rate, double margin) {
            const Span<const std::int64_t> us = view_1d<std::int64_t>(users, "users");
            const Span<const Timestamp> ts = view_1d<Timestamp>(timestamps, "timestamps");
            CLVMemberFields f = without_gil(
                [&] { return self.sample_fields(us, ts, horizon, discount_rate, margin); });
            return member_fields_to_python(std::move(f));
          },
          py::arg("users"), py::arg("timestamps"), py::arg("horizon"), py::arg("discount_rate"),
          py::arg("margin"));
  m.def(
      "lifecycle_stage_code",
      [](const std::string& name, const std::string& field) {
        return lifecycle_stage_code(name, field.c_str());
      },
      py::arg("name"), py::arg("field"));
  m.attr("LIFECYCLE_STAGES") =
      py::make_tuple(kLifecycleStages[0], kLifecycleStages[1], kLifecycleStages[2],
                     kLifecycleStages[3], kLifecycleStages[4]);
  py::tuple features(kCLVRegressionFeatures.size());
  for (std::size_t j = 0; j < kCLVRegressionFeatures.size(); ++j)
    features[j] = kCLVRegressionFeatures[j];
  m.attr("CLV_REGRESSION_FEATURES") = features;
  def_serialization<CLVModel>(cls);
}

}  // namespace perkrec::python
