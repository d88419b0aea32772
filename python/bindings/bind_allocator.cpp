// The Allocator (decide/allocator.hpp): allocate (dual / greedy / exact), check_allocation and
// the online Pacer. Candidates come either as the bound Candidates class or as four numpy
// arrays taken by view (no copy: 10M members x 50 candidates is ~6 GB). GIL released.
#include "bindings.hpp"

namespace perkrec::python {

namespace {

CandidatesView view_of_arrays(Index n_users, Index n_benefits, const py::array& offsets,
                              const py::array& benefit, const py::array& value,
                              const py::array& cost) {
  CandidatesView v;
  v.n_users = n_users;
  v.n_benefits = n_benefits;
  v.offsets = view_1d<std::int64_t>(offsets, "offsets");
  v.benefit = view_1d<Index>(benefit, "benefit");
  v.value = view_1d<float>(value, "value");
  v.cost = view_1d<float>(cost, "cost");
  return v;
}

Allocation run_allocate(const CandidatesView& c, const AllocationConstraints& k,
                        const std::string& method, const std::string& params_json,
                        std::int64_t max_nodes, const py::object& progress) {
  const AllocatorParams p =
      AllocatorParams::from_json(parse_json_strict<ConfigError>(params_json, "allocate"));
  if (method != "dual" && method != "greedy" && method != "exact") {
    detail::raise<ConfigError>("allocate: method must be \"dual\", \"greedy\" or \"exact\" (got \"",
                               method, "\")");
  }
  const Callbacks cb = make_callbacks(progress);
  py::gil_scoped_release release;
  if (method == "greedy") return allocate_greedy(c, k, p.num_threads);
  if (method == "exact") return allocate_exact(c, k, max_nodes);
  return allocate(c, k, p, cb);
}

}  // namespace

void bind_allocator(py::module_& m) {
  m.def(
      "allocator_params",
      [](const std::string& params_json) {
        return AllocatorParams::from_json(
                   parse_json_strict<ConfigError>(params_json, "AllocatorParams"))
            .to_json()
            .dump();
      },
      py::arg("params_json"),
      "Validates AllocatorParams JSON; returns it with every default filled in.");
  m.def(
      "pacing_params",
      [](const std::string& params_json) {
        return PacingParams::from_json(parse_json_strict<ConfigError>(params_json, "PacingParams"))
            .to_json()
            .dump();
      },
      py::arg("params_json"),
      "Validates PacingParams JSON; returns it with every default filled in.");

  m.def(
      "allocate",
      [](const Candidates& c, const AllocationConstraints& k, const std::string& method,
         const std::string& params_json, std::int64_t max_nodes, const py::object& progress) {
        return run_allocate(CandidatesView(c), k, method, params_json, max_nodes, progress);
      },
      py::arg("candidates"), py::arg("constraints"), py::arg("method") = "dual",
      py::arg("params_json") = "{}", py::arg("max_nodes") = 10'000'000,
      py::arg("progress") = py::none());
  m.def(
      "allocate_arrays",
      [](Index n_users, Index n_benefits, const py::array& offsets, const py::array& benefit,
         const py::array& value, const py::array& cost, const AllocationConstraints& k,
         const std::string& method, const std::string& params_json, std::int64_t max_nodes,
         const py::object& progress) {
        const CandidatesView v = view_of_arrays(n_users, n_benefits, offsets, benefit, value, cost);
        return run_allocate(v, k, method, params_json, max_nodes, progress);
      },
      py::arg("n_users"), py::arg("n_benefits"), py::arg("offsets"), py::arg("benefit"),
      py::arg("value"), py::arg("cost"), py::arg("constraints"), py::arg("method") = "dual",
      py::arg("params_json") = "{}", py::arg("max_nodes") = 10'000'000,
      py::arg("progress") = py::none(),
      "allocate on candidate arrays taken by view (int64 offsets, int32 benefit, float32 "
      "value/cost).");

  m.def(
      "check_allocation",
      [](const Candidates& c, const AllocationConstraints& k, const Allocation& a) {
        py::gil_scoped_release release;
        return check_allocation(CandidatesView(c), k, a);
      },
      py::arg("candidates"), py::arg("constraints"), py::arg("allocation"));
  m.def(
      "check_allocation_arrays",
      [](Index n_users, Index n_benefits, const py::array& offsets, const py::array& benefit,
         const py::array& value, const py::array& cost, const AllocationConstraints& k,
         const Allocation& a) {
        const CandidatesView v = view_of_arrays(n_users, n_benefits, offsets, benefit, value, cost);
        py::gil_scoped_release release;
        return check_allocation(v, k, a);
      },
      py::arg("n_users"), py::arg("n_benefits"), py::arg("offsets"), py::arg("benefit"),
      py::arg("value"), py::arg("cost"), py::arg("constraints"), py::arg("allocation"));

  m.def(
      "user_set_value",
      [](const py::array& values, const std::optional<py::array>& kinds, double diversity) {
        return member_set_value(view_1d<float>(values, "values"),
                                view_1d_or_empty<std::int32_t>(kinds, "kinds"), diversity);
      },
      py::arg("values"), py::arg("kinds") = py::none(), py::arg("diversity") = 0.0);

  py::class_<Pacer>(m, "Pacer")
      .def(py::init([](const AllocationConstraints& k, const std::string& params_json) {
             return std::make_unique<Pacer>(
                 k, PacingParams::from_json(parse_json_strict<ConfigError>(params_json, "Pacer")));
           }),
           py::arg("constraints"), py::arg("params_json"))
      .def(
          "decide",
          [](Pacer& self, Index user, Timestamp t, const py::array& benefit, const py::array& value,
             const py::array& cost, int max_new, bool with_reasons) -> py::object {
            const Span<const Index> b = view_1d<Index>(benefit, "benefit");
            const Span<const float> v = view_1d<float>(value, "value");
            const Span<const float> c = view_1d<float>(cost, "cost");
            std::vector<std::int32_t> chosen;
            std::vector<ExclusionReason> reasons;
            {
              py::gil_scoped_release release;
              chosen = self.decide(user, t, b, v, c, max_new, with_reasons ? &reasons : nullptr);
            }
            if (!with_reasons) return to_numpy(std::move(chosen));
            py::list names;
            for (ExclusionReason r : reasons) names.append(exclusion_reason_name(r));
            return py::make_tuple(to_numpy(std::move(chosen)), names);
          },
          py::arg("user"), py::arg("t"), py::arg("benefit"), py::arg("value"), py::arg("cost"),
          py::arg("max_new") = -1, py::arg("with_reasons") = false)
      .def_property_readonly("spent", &Pacer::spent)
      .def_property_readonly("multiplier", &Pacer::multiplier)
      .def_property_readonly("decisions", &Pacer::decisions)
      .def_property_readonly("issued", &Pacer::issued)
      .def("get_params", [](const Pacer& p) { return p.params().to_json().dump(); });
}

}  // namespace perkrec::python
