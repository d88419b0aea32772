// behavior_cf_features (features/behavior_cf.hpp): fits BehaviorCF at `as_of` and returns its
// columns for the samples. The Python wrapper converts ids, times and params; the GIL is
// released for compute.
#include "bindings.hpp"

namespace perkrec::python {

void bind_behavior_cf(py::module_& m) {
  m.attr("BEHAVIOR_CF_COLUMNS") = py::tuple(py::cast(behavior_cf_column_names()));
  m.def(
      "behavior_cf_features",
      [](const py::array& user, const py::array& benefit, const py::array& timestamp,
         const BehaviorLog& log, const BenefitItems& benefit_items, Timestamp as_of,
         const std::string& params_json) {
        const BehaviorSamples s{view_1d<std::int64_t>(user, "user"),
                                view_1d<std::int64_t>(benefit, "benefit"),
                                view_1d<std::int64_t>(timestamp, "timestamp")};
        const BehaviorCFParams p = BehaviorCFParams::from_json(
            parse_json_strict<ConfigError>(params_json, "behavior_cf_features"));
        BehaviorTable t;
        {
          py::gil_scoped_release release;
          BehaviorCF cf(p);
          cf.fit(log, as_of);
          t = cf.transform(s, log, benefit_items);
        }
        py::list out;
        for (std::size_t i = 0; i < t.names.size(); ++i)
          out.append(py::make_tuple(t.names[i], to_numpy(std::move(t.columns[i]))));
        return out;
      },
      py::arg("user"), py::arg("benefit"), py::arg("timestamp"), py::arg("log"),
      py::arg("benefit_items"), py::arg("as_of"), py::arg("params_json"));
}

}  // namespace perkrec::python
