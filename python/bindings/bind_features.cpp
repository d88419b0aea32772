// The interaction-matrix builder.
#include "bindings.hpp"

namespace perkrec::python {

void bind_features(py::module_& m) {
  m.def(
      "build_interaction_matrix",
      [](const EventLog& log, const std::vector<float>& event_weights, double half_life_days,
         std::optional<Timestamp> end_time, const std::string& combine, int num_threads) {
        InteractionParams p;
        if (event_weights.size() != static_cast<std::size_t>(kNumEventTypes)) {
          detail::raise<ConfigError>("interaction_matrix: event_weights needs ", kNumEventTypes,
                                     " entries (got ", event_weights.size(), ")");
        }
        std::copy(event_weights.begin(), event_weights.end(), p.event_weights.begin());
        p.half_life_days = half_life_days;
        p.end_time = end_time ? *end_time : kNoTime;
        if (combine == "sum") {
          p.combine = InteractionParams::Combine::sum;
        } else if (combine == "max") {
          p.combine = InteractionParams::Combine::max;
        } else {
          detail::raise<ConfigError>("interaction_matrix: combine must be 'sum' or 'max' (got '", combine, "')");
        }
        p.num_threads = num_threads;
        InteractionMatrix matrix;
        {
          py::gil_scoped_release release;
          matrix = build_interaction_matrix(log, p);
        }
        return csr_to_python(std::move(matrix));
      },
      py::arg("log"), py::arg("event_weights"), py::arg("half_life_days"), py::arg("end_time"),
      py::arg("combine"), py::arg("num_threads"));
}

}  // namespace perkrec::python
