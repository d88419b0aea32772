// Policy (decide/policy.hpp): strict JSON in and out, compile to masks + constraints (GIL
// released), send times. The Python wrapper is python/perkrec/policy.py.
#include "bindings.hpp"

namespace perkrec::python {

void bind_policy(py::module_& m) {
  m.def(
      "excluded_pairs_by_rule",
      [](const CompiledPolicy& compiled) { return to_numpy(excluded_pairs_by_rule(compiled)); },
      py::arg("compiled"));
  py::class_<CompiledPolicy>(m, "CompiledPolicy")
      .def_readonly("masks", &CompiledPolicy::masks)
      .def_readwrite("constraints", &CompiledPolicy::constraints)
      .def_readonly("rule_names", &CompiledPolicy::rule_names)
      .def_readonly("segment_names", &CompiledPolicy::segment_names)
      .def_readonly("issue_cost", &CompiledPolicy::issue_cost)
      .def_readonly("has_quiet_hours", &CompiledPolicy::has_quiet_hours)
      .def_readonly("quiet_start_hour", &CompiledPolicy::quiet_start_hour)
      .def_readonly("quiet_end_hour", &CompiledPolicy::quiet_end_hour)
      .def_property_readonly("user_block",
                             [](const CompiledPolicy& c) {
                               std::vector<std::uint8_t> out(c.member_block.size());
                               for (std::size_t i = 0; i < out.size(); ++i) {
                                 out[i] = static_cast<std::uint8_t>(c.member_block[i]);
                               }
                               return to_numpy(std::move(out));
                             })
      .def_property_readonly(
          "utc_offset_hours",
          [](py::object self) {
            return readonly_view(
                Span<const float>(self.cast<const CompiledPolicy&>().utc_offset_hours), self);
          })
      .def("send_time", &CompiledPolicy::send_time, py::arg("t"), py::arg("user"))
      .def(
          "send_times",
          [](const CompiledPolicy& c, const py::array& times, const py::array& users) {
            const Span<const Timestamp> t = view_1d<Timestamp>(times, "times");
            const Span<const Index> u = view_1d<Index>(users, "users");
            if (t.size() != u.size()) {
              detail::raise<InputError>("CompiledPolicy.send_times: times and users have ",
                                        t.size(), " and ", u.size(),
                                        " entries (expected equal lengths)");
            }
            std::vector<Timestamp> out(t.size());
            {
              py::gil_scoped_release release;
              for (std::size_t i = 0; i < t.size(); ++i) out[i] = c.send_time(t[i], u[i]);
            }
            return to_numpy(std::move(out));
          },
          py::arg("times"), py::arg("users"));

  py::class_<Policy>(m, "Policy")
      .def(py::init<>())
      .def_static("from_string", &Policy::from_string, py::arg("text"))
      .def("to_json", [](const Policy& p) { return p.to_json().dump(); })
      .def("validate", &Policy::validate)
      .def_readonly("budget", &Policy::budget)
      .def_readonly("issue_cost", &Policy::issue_cost)
      .def_readonly("max_per_member", &Policy::max_per_member)
      .def_readonly("max_per_kind", &Policy::max_per_kind)
      .def_readonly("min_return_per_cost", &Policy::min_return_per_cost)
      .def_readonly("diversity", &Policy::diversity)
      .def_readonly("has_quiet_hours", &Policy::has_quiet_hours)
      .def_property_readonly("rule_names",
                             [](const Policy& p) {
                               std::vector<std::string> names;
                               for (const auto& r : p.rules) names.push_back(r.name);
                               return names;
                             })
      .def(
          "compile",
          [](const Policy& p, const Catalog& catalog, const UserTable& users, Timestamp plan_time,
             const std::optional<py::array>& segment_codes,
             const std::optional<std::vector<std::string>>& segment_names, const EventLog* history,
             int num_threads) {
            if (segment_codes.has_value() != segment_names.has_value()) {
              detail::raise<InputError>(
                  "Policy.compile: segment_codes and segment_names go together");
            }
            std::optional<SegmentAssignment> segments;
            if (segment_codes) {
              const Span<const std::int32_t> codes =
                  view_1d<std::int32_t>(*segment_codes, "segment_codes");
              segments.emplace();
              segments->codes.assign(codes.begin(), codes.end());
              segments->names = *segment_names;
            }
            py::gil_scoped_release release;
            return p.compile(catalog, users, plan_time, segments ? &*segments : nullptr, history,
                             num_threads);
          },
          py::arg("catalog"), py::arg("users"), py::arg("plan_time"),
          py::arg("segment_codes") = py::none(), py::arg("segment_names") = py::none(),
          py::arg("history") = nullptr, py::arg("num_threads") = 0)
      .def("send_time", &Policy::send_time, py::arg("t"), py::arg("utc_offset_hours") = 0.0)
      .def("__eq__", [](const Policy& a, const Policy& b) { return a == b; });

  m.def(
      "parse_utc_time",
      [](const std::string& text) { return parse_utc_time(text, "parse_utc_time"); },
      py::arg("text"));
  m.def("format_utc_time", &format_utc_time, py::arg("t"));
}

}  // namespace perkrec::python
