// The interaction-matrix builder and the FeatureEncoder.
#include "bindings.hpp"

namespace perkrec::python {

void bind_feature_encoder(py::module_& m);

void bind_features(py::module_& m) {
  m.def(
      "build_interaction_matrix",
      [](const EventLog& log, const std::vector<float>& event_weights, double half_life_days,
         std::optional<Timestamp> cut_time, const std::string& combine, int num_threads) {
        InteractionParams p;
        if (event_weights.size() != static_cast<std::size_t>(kNumEventTypes)) {
          detail::raise<ConfigError>("interaction_matrix: event_weights needs ", kNumEventTypes,
                                     " entries (got ", event_weights.size(), ")");
        }
        std::copy(event_weights.begin(), event_weights.end(), p.event_weights.begin());
        p.half_life_days = half_life_days;
        p.cut_time = cut_time ? *cut_time : kNoTime;
        if (combine == "sum") {
          p.combine = InteractionParams::Combine::sum;
        } else if (combine == "max") {
          p.combine = InteractionParams::Combine::max;
        } else {
          detail::raise<ConfigError>("interaction_matrix: combine must be 'sum' or 'max' (got '",
                                     combine, "')");
        }
        p.num_threads = num_threads;
        InteractionMatrix matrix;
        {
          py::gil_scoped_release release;
          matrix = build_interaction_matrix(log, p);
        }
        return csr_to_python(std::move(matrix));
      },
      py::arg("log"), py::arg("event_weights"), py::arg("half_life_days"), py::arg("cut_time"),
      py::arg("combine"), py::arg("num_threads"));
  m.def(
      "redemption_labels",
      [](const py::array& users, const py::array& benefits, const py::array& types,
         const py::array& times, const py::array& window_days) {
        const Span<const Index> u = view_1d<Index>(users, "users");
        const Span<const Index> b = view_1d<Index>(benefits, "benefits");
        const Span<const std::uint8_t> t = view_1d<std::uint8_t>(types, "types");
        const Span<const Timestamp> s = view_1d<Timestamp>(times, "times");
        const Span<const double> w = view_1d<double>(window_days, "window_days");
        RedemptionLabels r;
        {
          py::gil_scoped_release release;
          r = redemption_labels(u, b, t, s, w);
        }
        py::dict out;
        out["event"] = to_numpy(std::move(r.event));
        out["label"] = to_numpy(std::move(r.label));
        out["late"] = to_numpy(std::move(r.late));
        out["open"] = to_numpy(std::move(r.open));
        return out;
      },
      py::arg("users"), py::arg("benefits"), py::arg("types"), py::arg("times"),
      py::arg("window_days"));
  m.attr("FACE_VALUE_BANDS") =
      std::vector<double>(std::begin(kFaceValueBands), std::end(kFaceValueBands));
  bind_feature_encoder(m);
}

}  // namespace perkrec::python

// The FeatureEncoder (features/feature_encoder.hpp). Sample columns arrive as three lists the
// Python wrapper prepared: (name, int64 array), (name, float64 array) and
// (name, int32 codes, list of strings[, missing flag per string]).
namespace perkrec::python {
namespace {

struct SampleArgs {
  SampleColumns columns;
  std::vector<py::array> keep_alive;
};

SampleArgs sample_args(Offset rows, const py::list& integers, const py::list& numerics,
                       const py::list& categoricals) {
  SampleArgs a;
  a.columns.rows = rows;
  for (const auto& item : integers) {
    const auto t = item.cast<py::tuple>();
    const auto name = t[0].cast<std::string>();
    a.keep_alive.push_back(t[1].cast<py::array>());
    a.columns.integers.push_back({name, view_1d<std::int64_t>(a.keep_alive.back(), name.c_str())});
  }
  for (const auto& item : numerics) {
    const auto t = item.cast<py::tuple>();
    const auto name = t[0].cast<std::string>();
    a.keep_alive.push_back(t[1].cast<py::array>());
    a.columns.numerics.push_back({name, view_1d<double>(a.keep_alive.back(), name.c_str())});
  }
  for (const auto& item : categoricals) {
    const auto t = item.cast<py::tuple>();
    const auto name = t[0].cast<std::string>();
    a.keep_alive.push_back(t[1].cast<py::array>());
    a.columns.categoricals.push_back(
        {name, view_1d<std::int32_t>(a.keep_alive.back(), name.c_str()),
         t[2].cast<std::vector<std::string>>(),
         t.size() > 3 ? t[3].cast<std::vector<std::uint8_t>>() : std::vector<std::uint8_t>()});
  }
  return a;
}

}  // namespace

void bind_feature_encoder(py::module_& m) {
  m.attr("HISTORY_AGGREGATES") = py::tuple(py::cast(history_aggregate_names()));
  py::class_<FeatureEncoder>(m, "FeatureEncoder")
      .def(py::init([](const std::string& spec_json, int num_threads) {
             return FeatureEncoder(FeatureSpec::from_json(spec_json), num_threads);
           }),
           py::arg("spec_json"), py::arg("num_threads") = 0)
      .def(
          "set_benefits",
          [](FeatureEncoder& e, const std::vector<std::string>& kinds, const py::array& face_values,
             const std::vector<std::string>& channels) {
            e.set_benefits(kinds, view_1d<double>(face_values, "face_values"), channels);
          },
          py::arg("kinds"), py::arg("face_values"),
          py::arg("channels") = std::vector<std::string>{})
      .def("set_benefit_codes", &FeatureEncoder::set_benefit_codes, py::arg("kind"),
           py::arg("band"), py::arg("channel") = std::vector<std::int64_t>{})
      .def("set_num_threads", &FeatureEncoder::set_num_threads)
      .def(
          "fit",
          [](FeatureEncoder& e, Offset rows, const py::list& integers, const py::list& numerics,
             const py::list& categoricals, const EventLog* events, const BehaviorLog* behavior_log,
             const ItemCatalog* items, const BenefitItems* benefit_items) {
            const SampleArgs a = sample_args(rows, integers, numerics, categoricals);
            const BehaviorData behavior{behavior_log, items, benefit_items};
            py::gil_scoped_release release;
            e.fit(a.columns, events, &behavior);
          },
          py::arg("rows"), py::arg("integers"), py::arg("numerics"), py::arg("categoricals"),
          py::arg("events") = nullptr, py::arg("behavior_log") = nullptr,
          py::arg("items") = nullptr, py::arg("benefit_items") = nullptr)
      .def(
          "transform",
          [](const FeatureEncoder& e, Offset rows, const py::list& integers,
             const py::list& numerics, const py::list& categoricals, const EventLog* events,
             std::optional<std::vector<std::string>> fields, const BehaviorLog* behavior_log,
             const ItemCatalog* items, const BenefitItems* benefit_items) {
            const SampleArgs a = sample_args(rows, integers, numerics, categoricals);
            const BehaviorData behavior{behavior_log, items, benefit_items};
            CsrMatrix<float> X;
            {
              py::gil_scoped_release release;
              X = e.transform(a.columns, events, fields ? &*fields : nullptr, &behavior);
            }
            return csr_to_python(std::move(X));
          },
          py::arg("rows"), py::arg("integers"), py::arg("numerics"), py::arg("categoricals"),
          py::arg("events") = nullptr, py::arg("fields") = py::none(),
          py::arg("behavior_log") = nullptr, py::arg("items") = nullptr,
          py::arg("benefit_items") = nullptr)
      .def(
          "history",
          [](const FeatureEncoder& e, Offset rows, const py::list& integers, const EventLog& events,
             const std::vector<std::string>& names) {
            const SampleArgs a = sample_args(rows, integers, py::list(), py::list());
            HistoryTable t;
            {
              py::gil_scoped_release release;
              t = e.history(a.columns, events, names);
            }
            py::list out;
            for (std::size_t i = 0; i < t.names.size(); ++i) {
              out.append(py::make_tuple(t.names[i], to_numpy(std::move(t.columns[i]))));
            }
            return out;
          },
          py::arg("rows"), py::arg("integers"), py::arg("events"), py::arg("names"))
      .def_property_readonly("fitted", &FeatureEncoder::fitted)
      .def_property_readonly("n_fields", &FeatureEncoder::n_fields)
      .def_property_readonly("field_sizes", &FeatureEncoder::field_sizes)
      .def_property_readonly("n_features", &FeatureEncoder::n_features)
      .def_property_readonly("feature_fields",
                             [](const FeatureEncoder& e) { return to_numpy(e.feature_fields()); })
      .def_property_readonly("field_offsets",
                             [](const FeatureEncoder& e) { return to_numpy(e.field_offsets()); })
      .def_property_readonly("dropped_fields", &FeatureEncoder::dropped_fields)
      .def_property_readonly("fields_json",
                             [](const FeatureEncoder& e) { return e.spec().to_json().dump(); })
      .def("to_json", &FeatureEncoder::to_json)
      .def_static("from_json",
                  [](const std::string& text) { return FeatureEncoder::from_json(text); })
      .def_static("from_fm_metadata", &FeatureEncoder::from_fm_metadata);
}

}  // namespace perkrec::python
