// The decision layer's shared data types (decide/types.hpp): EligibilityMasks, Candidates,
// AllocationConstraints, Allocation and ExclusionReason. Arrays come back as numpy views or
// owned copies; arrays going in are copied once into the C++ vectors (GIL released).
#include "bindings.hpp"

namespace perkrec::python {

namespace {

template <class T>
std::vector<T> copy_in(const py::array& a, const char* name) {
  const Span<const T> v = view_1d<T>(a, name);
  py::gil_scoped_release release;
  return std::vector<T>(v.begin(), v.end());
}

template <class T>
py::array copy_out(const std::vector<T>& v) {
  return to_numpy(std::vector<T>(v));
}

// A read/write numpy property of a vector field (copies both ways; set validates the dtype).
template <class Cls, class T>
void vector_property(py::class_<Cls>& cls, const char* name, std::vector<T> Cls::*field) {
  cls.def_property(
      name, [field](const Cls& self) { return copy_out(self.*field); },
      [field, name](Cls& self, const py::array& a) { self.*field = copy_in<T>(a, name); });
}

}  // namespace

void bind_decide_types(py::module_& m) {
  py::enum_<ExclusionReason>(m, "ExclusionReason")
      .value("none", ExclusionReason::none)
      .value("ineligible", ExclusionReason::ineligible)
      .value("below_multiplier", ExclusionReason::below_multiplier)
      .value("budget", ExclusionReason::budget)
      .value("inventory", ExclusionReason::inventory)
      .value("member_cap", ExclusionReason::member_cap)
      .value("kind_cap", ExclusionReason::kind_cap)
      .value("stacking", ExclusionReason::stacking)
      .value("segment_quota", ExclusionReason::segment_quota)
      .value("min_return", ExclusionReason::min_return)
      .value("frequency_cap", ExclusionReason::frequency_cap)
      .value("not_positive", ExclusionReason::not_positive);
  m.def("exclusion_reason_names", [] {
    std::vector<std::string> names;
    for (int r = 0; r <= static_cast<int>(ExclusionReason::not_positive); ++r) {
      names.emplace_back(exclusion_reason_name(static_cast<ExclusionReason>(r)));
    }
    return names;
  });

  py::class_<EligibilityMasks>(m, "EligibilityMasks")
      .def(py::init<Index, Index>(), py::arg("n_users"), py::arg("n_benefits"))
      .def_static(
          "from_dense",
          [](const py::array& eligible, Index n_users, Index n_benefits) {
            const Span<const std::uint8_t> e = view_1d<std::uint8_t>(eligible, "eligible");
            py::gil_scoped_release release;
            return EligibilityMasks::from_dense(e, n_users, n_benefits);
          },
          py::arg("eligible"), py::arg("n_users"), py::arg("n_benefits"),
          "Masks from a dense 0/1 matrix (flattened uint8, row-major); excluded pairs get rule 0.")
      .def_property_readonly("n_users", &EligibilityMasks::n_users)
      .def_property_readonly("n_benefits", &EligibilityMasks::n_benefits)
      .def_property_readonly("n_masks", &EligibilityMasks::n_masks)
      .def_property_readonly(
          "user_masks", [](const EligibilityMasks& self) { return copy_out(self.user_masks()); })
      .def("eligible_matrix",
           [](const EligibilityMasks& self) {
             std::vector<std::uint8_t> out;
             {
               py::gil_scoped_release release;
               out = self.dense();
             }
             return to_numpy(std::move(out), {self.n_users(), self.n_benefits()});
           })
      .def(
          "mask_rules",
          [](const EligibilityMasks& self) {
            std::vector<std::int32_t> out;
            out.reserve(static_cast<std::size_t>(self.n_masks()) *
                        static_cast<std::size_t>(self.n_benefits()));
            for (Index k = 0; k < self.n_masks(); ++k) {
              for (Index b = 0; b < self.n_benefits(); ++b) out.push_back(self.rule(k, b));
            }
            return to_numpy(std::move(out), {self.n_masks(), self.n_benefits()});
          },
          "n_masks x n_benefits: the first excluding rule per mask and benefit, -1 = eligible.");

  m.def(
      "best_ineligible",
      [](const EligibilityMasks& masks, const py::array& key) {
        const Span<const double> k = view_1d<double>(key, "key");
        BestIneligible r;
        {
          py::gil_scoped_release release;
          r = best_ineligible(masks, k);
        }
        return py::make_tuple(to_numpy(std::move(r.benefit)), to_numpy(std::move(r.rule)));
      },
      py::arg("masks"), py::arg("key"));
  m.def(
      "find_candidates",
      [](const Candidates& candidates, const py::array& users, const py::array& benefits) {
        const Span<const Index> u = view_1d<Index>(users, "users");
        const Span<const Index> b = view_1d<Index>(benefits, "benefits");
        std::vector<std::int64_t> entries;
        {
          py::gil_scoped_release release;
          entries = find_candidates(candidates, u, b);
        }
        return to_numpy(std::move(entries));
      },
      py::arg("candidates"), py::arg("users"), py::arg("benefits"));
  py::class_<Candidates>(m, "Candidates")
      .def(py::init<>())
      .def_static(
          "from_arrays",
          [](Index n_users, Index n_benefits, const py::array& offsets, const py::array& benefit,
             const py::array& value, const py::array& cost,
             const std::optional<py::array>& probability) {
            Candidates c;
            c.n_users = n_users;
            c.n_benefits = n_benefits;
            c.offsets = copy_in<std::int64_t>(offsets, "offsets");
            c.benefit = copy_in<Index>(benefit, "benefit");
            c.value = copy_in<float>(value, "value");
            c.cost = copy_in<float>(cost, "cost");
            if (probability) c.probability = copy_in<float>(*probability, "probability");
            {
              py::gil_scoped_release release;
              c.validate("Candidates.from_arrays");
            }
            return c;
          },
          py::arg("n_users"), py::arg("n_benefits"), py::arg("offsets"), py::arg("benefit"),
          py::arg("value"), py::arg("cost"), py::arg("probability") = py::none())
      .def_readonly("n_users", &Candidates::n_users)
      .def_readonly("n_benefits", &Candidates::n_benefits)
      .def_property_readonly("size", &Candidates::size)
      .def_property_readonly("offsets",
                             [](py::object self) {
                               return readonly_view(
                                   Span<const std::int64_t>(self.cast<const Candidates&>().offsets),
                                   self);
                             })
      .def_property_readonly("benefit",
                             [](py::object self) {
                               return readonly_view(
                                   Span<const Index>(self.cast<const Candidates&>().benefit), self);
                             })
      .def_property_readonly("value",
                             [](py::object self) {
                               return readonly_view(
                                   Span<const float>(self.cast<const Candidates&>().value), self);
                             })
      .def_property_readonly("cost",
                             [](py::object self) {
                               return readonly_view(
                                   Span<const float>(self.cast<const Candidates&>().cost), self);
                             })
      .def_property_readonly("probability",
                             [](py::object self) {
                               return readonly_view(
                                   Span<const float>(self.cast<const Candidates&>().probability),
                                   self);
                             })
      .def("validate", [](const Candidates& c) { c.validate("Candidates.validate"); });

  py::class_<AllocationConstraints> k(m, "AllocationConstraints");
  k.def(py::init<>())
      .def_readwrite("budget", &AllocationConstraints::budget)
      .def_readwrite("max_per_member", &AllocationConstraints::max_per_member)
      .def_readwrite("max_per_kind", &AllocationConstraints::max_per_kind)
      .def_readwrite("n_kinds", &AllocationConstraints::n_kinds)
      .def_readwrite("min_return_per_cost", &AllocationConstraints::min_return_per_cost)
      .def_readwrite("diversity", &AllocationConstraints::diversity)
      .def("validate", &AllocationConstraints::validate, py::arg("n_users"), py::arg("n_benefits"));
  vector_property(k, "member_capacity", &AllocationConstraints::member_capacity);
  vector_property(k, "inventory", &AllocationConstraints::inventory);
  vector_property(k, "benefit_kind", &AllocationConstraints::benefit_kind);
  vector_property(k, "member_kind_capacity", &AllocationConstraints::member_kind_capacity);
  vector_property(k, "benefit_group", &AllocationConstraints::benefit_group);
  vector_property(k, "member_segment", &AllocationConstraints::member_segment);
  vector_property(k, "segment_max_members", &AllocationConstraints::segment_max_members);
  vector_property(k, "segment_max_cost", &AllocationConstraints::segment_max_cost);

  py::class_<Allocation>(m, "Allocation")
      .def(py::init<>())
      .def_property_readonly("offsets", [](const Allocation& a) { return copy_out(a.offsets); })
      .def_property_readonly("candidate", [](const Allocation& a) { return copy_out(a.candidate); })
      .def_property_readonly("benefit", [](const Allocation& a) { return copy_out(a.benefit); })
      .def_property_readonly("runner_up", [](const Allocation& a) { return copy_out(a.runner_up); })
      .def_property_readonly("runner_up_reason",
                             [](const Allocation& a) {
                               std::vector<std::uint8_t> r(a.runner_up_reason.size());
                               for (std::size_t i = 0; i < r.size(); ++i)
                                 r[i] = static_cast<std::uint8_t>(a.runner_up_reason[i]);
                               return to_numpy(std::move(r));
                             })
      .def_readonly("value", &Allocation::value)
      .def_readonly("cost", &Allocation::cost)
      .def_readonly("dual_bound", &Allocation::dual_bound)
      .def_readonly("multiplier", &Allocation::multiplier)
      .def_readonly("iterations", &Allocation::iterations)
      .def_readonly("method", &Allocation::method);
}

}  // namespace perkrec::python
