// The wide table, the preference model, segment rules and k-means.
#include "bindings.hpp"

namespace perkrec::python {

namespace {

template <class T>
py::array matrix(const std::vector<T>& values, Index rows, std::size_t cols) {
  return to_numpy(std::vector<T>(values),
                  {static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(cols)});
}

}  // namespace

void bind_preference(py::module_& m) {
  m.def(
      "wide_table",
      [](const EventLog& log, const Catalog& catalog, Timestamp cut_time,
         const std::string& params_json) {
        const Json j = parse_json_strict<ConfigError>(params_json, "wide_table");
        WideTableParams p;
        JsonReader<ConfigError> r(j, "", "wide_table");
        r.read("face_value_edges", p.dimensions.face_value_edges);
        r.read("threshold_edges", p.dimensions.threshold_edges);
        r.read("typical_basket", p.dimensions.typical_basket);
        r.read("num_threads", p.num_threads);
        r.finish();
        WideTable t;
        {
          py::gil_scoped_release release;
          t = wide_table(log, catalog, cut_time, p);
        }
        py::list names, columns;
        for (std::size_t i = 0; i < t.names.size(); ++i) {
          names.append(t.names[i]);
          columns.append(to_numpy(std::move(t.columns[i])));
        }
        return py::make_tuple(names, columns);
      },
      py::arg("log"), py::arg("catalog"), py::arg("cut_time"), py::arg("params_json"));

  m.def(
      "kmeans",
      [](const py::array_t<float, py::array::c_style>& data, int k, std::uint64_t seed,
         int max_iterations, int num_threads) {
        if (data.ndim() != 2) detail::raise<InputError>("kmeans: expected a 2-D float32 array");
        const auto rows = static_cast<Index>(data.shape(0));
        const auto dim = static_cast<int>(data.shape(1));
        KMeansResult res;
        {
          py::gil_scoped_release release;
          res = kmeans(data.data(), rows, dim, k, seed, max_iterations, num_threads);
        }
        return py::make_tuple(to_numpy(std::move(res.assignment)),
                              to_numpy(std::move(res.centroids), {res.k, res.dim}), res.inertia,
                              res.iterations);
      },
      py::arg("data"), py::arg("k"), py::arg("seed"), py::arg("max_iterations"),
      py::arg("num_threads"));

  m.def("default_segment_rules", [] { return SegmentRules::defaults().to_json().dump(2); });
  m.def("threshold_segment_rules",
        [] { return SegmentRules::threshold_defaults().to_json().dump(2); });
  m.def("absolute_segment_rules",
        [] { return SegmentRules::absolute_defaults().to_json().dump(2); });
  m.def(
      "check_segment_rules",
      [](const std::string& text) { return SegmentRules::from_json(text).to_json().dump(); },
      py::arg("text"));

  m.def(
      "bgnbd_fit",
      [](const py::array& x, const py::array& t_x, const py::array& T, int num_threads) {
        const Span<const double> xs = view_1d<double>(x, "x");
        const Span<const double> ts = view_1d<double>(t_x, "t_x");
        const Span<const double> Ts = view_1d<double>(T, "T");
        BGNBD bg;
        {
          py::gil_scoped_release release;
          bg = BGNBD::fit(xs, ts, Ts, num_threads);
        }
        return py::make_tuple(bg.r, bg.alpha, bg.a, bg.b);
      },
      py::arg("x"), py::arg("t_x"), py::arg("T"), py::arg("num_threads"));
  m.def(
      "bgnbd_log_likelihood",
      [](double r, double alpha, double a, double b, double x, double t_x, double T) {
        return BGNBD{r, alpha, a, b}.log_likelihood(x, t_x, T);
      },
      py::arg("r"), py::arg("alpha"), py::arg("a"), py::arg("b"), py::arg("x"), py::arg("t_x"),
      py::arg("T"));

  py::class_<PreferenceModel> cls(m, "PreferenceModel");
  cls.def(py::init([](const std::string& params_json) {
            return PreferenceModel(PreferenceParams::from_json(
                parse_json_strict<ConfigError>(params_json, "PreferenceModel")));
          }),
          py::arg("params_json"))
      .def("get_params", [](const PreferenceModel& p) { return p.get_params().dump(); })
      .def("set_num_threads", &PreferenceModel::set_num_threads)
      .def_property_readonly("fitted", &PreferenceModel::fitted)
      .def_property_readonly("n_users", &PreferenceModel::n_users)
      .def_property_readonly("n_benefits", &PreferenceModel::n_benefits)
      .def_property_readonly("n_dimensions", &PreferenceModel::n_dimensions)
      .def_property_readonly("n_classes", &PreferenceModel::n_classes)
      .def_property_readonly("cut_time", &PreferenceModel::cut_time)
      .def_property_readonly("dimension_names", &PreferenceModel::dimension_names)
      .def_property_readonly("feature_names", &PreferenceModel::feature_names)
      .def(
          "fit",
          [](PreferenceModel& self, const EventLog& log, const Catalog& catalog, Timestamp cut_time,
             const py::object& progress) {
            const Callbacks cb = make_callbacks(progress);
            py::gil_scoped_release release;
            self.fit(log, catalog, cut_time, cb);
          },
          py::arg("log"), py::arg("catalog"), py::arg("cut_time"), py::arg("progress"))
      .def(
          "fit",
          [](PreferenceModel& self, const EventLog& log, const Catalog& catalog, Timestamp cut_time,
             const UserTable& users, const py::object& progress) {
            const Callbacks cb = make_callbacks(progress);
            py::gil_scoped_release release;
            self.fit(log, catalog, cut_time, users, cb);
          },
          py::arg("log"), py::arg("catalog"), py::arg("cut_time"), py::arg("users"),
          py::arg("progress"))
      .def_property_readonly("covariate_names", &PreferenceModel::covariate_names)
      .def("user_table_report",
           [](const PreferenceModel& s) {
             const UserTableReport& r = s.user_table_report();
             py::dict d;
             d["rows"] = r.rows;
             d["matched"] = r.matched;
             d["unknown_to_log"] = r.unknown_to_log;
             d["joined_after_cut"] = r.joined_after_cut;
             d["without_row"] = r.without_row;
             d["missing_values"] = r.missing_values;
             return d;
           })
      .def("covariate_weights",
           [](const PreferenceModel& s) {
             return matrix(s.covariate_weights(), s.covariate_weights().empty() ? 0 : s.n_classes(),
                           s.covariate_weights().empty() ? 0 : s.covariate_names().size() + 1);
           })
      .def(
          "class_prior",
          [](const PreferenceModel& s, const UserTable& users) {
            std::vector<double> out;
            {
              py::gil_scoped_release release;
              out = s.class_prior(users);
            }
            return matrix(out, users.size(), static_cast<std::size_t>(s.n_classes()));
          },
          py::arg("users"))
      .def("preferences",
           [](const PreferenceModel& s) {
             return matrix(s.preferences(), s.n_users(),
                           static_cast<std::size_t>(s.n_dimensions()));
           })
      .def("lower",
           [](const PreferenceModel& s) {
             return matrix(s.lower(), s.n_users(), static_cast<std::size_t>(s.n_dimensions()));
           })
      .def("upper",
           [](const PreferenceModel& s) {
             return matrix(s.upper(), s.n_users(), static_cast<std::size_t>(s.n_dimensions()));
           })
      .def(
          "intervals",
          [](const PreferenceModel& s, double level) {
            std::vector<float> lower, upper;
            {
              py::gil_scoped_release release;
              s.intervals(level, lower, upper);
            }
            const auto D = static_cast<std::size_t>(s.n_dimensions());
            return py::make_tuple(matrix(lower, s.n_users(), D), matrix(upper, s.n_users(), D));
          },
          py::arg("level"))
      .def("features",
           [](const PreferenceModel& s) {
             return matrix(s.features(), s.n_users(), s.feature_names().size());
           })
      .def("memberships",
           [](const PreferenceModel& s) {
             return matrix(s.memberships(), s.n_users(), static_cast<std::size_t>(s.n_classes()));
           })
      .def("class_rates",
           [](const PreferenceModel& s) {
             return matrix(s.class_rates(), s.n_classes(),
                           static_cast<std::size_t>(s.n_dimensions()));
           })
      .def("population_rate",
           [](const PreferenceModel& s) {
             return to_numpy(std::vector<double>(s.population_rate()));
           })
      .def("prior_strength",
           [](const PreferenceModel& s) {
             return to_numpy(std::vector<double>(s.prior_strength()));
           })
      .def("individual_spread",
           [](const PreferenceModel& s) {
             return to_numpy(std::vector<double>(s.individual_spread()));
           })
      .def("benefit_base_rate",
           [](const PreferenceModel& s) {
             return to_numpy(std::vector<float>(s.benefit_base_rate()));
           })
      .def("population_hour_of_week",
           [](const PreferenceModel& s) {
             return to_numpy(std::vector<double>(s.population_hour_of_week()));
           })
      .def(
          "hour_of_week_profile",
          [](const PreferenceModel& s, Index u) {
            const auto p = s.hour_of_week_profile(u);
            return to_numpy(std::vector<float>(p.begin(), p.end()));
          },
          py::arg("user"))
      .def("timing",
           [](const PreferenceModel& s) {
             const auto& t = s.timing();
             std::vector<std::int32_t> slot(t.size());
             std::vector<float> next(t.size()), send(t.size()), validity(t.size()), alive(t.size()),
                 expected(t.size());
             for (std::size_t i = 0; i < t.size(); ++i) {
               slot[i] = t[i].best_slot;
               next[i] = t[i].next_purchase_days;
               send[i] = t[i].send_in_days;
               validity[i] = t[i].validity_days;
               alive[i] = t[i].p_alive;
               expected[i] = t[i].expected_purchases;
             }
             py::dict d;
             d["best_slot"] = to_numpy(std::move(slot));
             d["next_purchase_days"] = to_numpy(std::move(next));
             d["send_in_days"] = to_numpy(std::move(send));
             d["validity_days"] = to_numpy(std::move(validity));
             d["p_alive"] = to_numpy(std::move(alive));
             d["expected_purchases"] = to_numpy(std::move(expected));
             return d;
           })
      .def("bgnbd",
           [](const PreferenceModel& s) {
             const BGNBD& b = s.bgnbd();
             return py::make_tuple(b.r, b.alpha, b.a, b.b);
           })
      .def(
          "group_preferences",
          [](const PreferenceModel& s, const py::array& group, std::int32_t n_groups) {
            const Span<const std::int32_t> g = view_1d<std::int32_t>(group, "group");
            std::vector<double> out;
            {
              py::gil_scoped_release release;
              out = s.group_preferences(g, n_groups);
            }
            return to_numpy(std::move(out), {static_cast<py::ssize_t>(n_groups),
                                             static_cast<py::ssize_t>(s.n_dimensions())});
          },
          py::arg("group"), py::arg("n_groups"))
      .def(
          "segments",
          [](const PreferenceModel& s, const std::string& rules_json) {
            const SegmentRules rules = SegmentRules::from_json(rules_json);
            SegmentAssignment a;
            {
              py::gil_scoped_release release;
              a = s.segments(rules);
            }
            return py::make_tuple(a.names, a.descriptions, to_numpy(std::move(a.codes)),
                                  to_numpy(std::move(a.confidence)), a.resolved.to_json().dump());
          },
          py::arg("rules_json"))
      .def(
          "clusters",
          [](const PreferenceModel& s, int k, int max_iterations) {
            PreferenceClusters c;
            {
              py::gil_scoped_release release;
              c = s.clusters(k, max_iterations);
            }
            return py::make_tuple(
                to_numpy(std::move(c.kmeans.assignment)),
                to_numpy(std::move(c.kmeans.centroids), {c.kmeans.k, c.kmeans.dim}),
                c.descriptions);
          },
          py::arg("k"), py::arg("max_iterations"));
  def_recommender_scoring<PreferenceModel>(cls);
  def_serialization<PreferenceModel>(cls);
}

}  // namespace perkrec::python
