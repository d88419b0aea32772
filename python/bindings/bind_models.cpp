// Models: the popularity baseline and the shared recommend filters.
#include "bindings.hpp"

namespace perkrec::python {

namespace {

// Keeps the filter's numpy arrays alive while the C++ Filter points into them.
struct FilterArgs {
  std::optional<CsrArg> exclude_rows;
  std::optional<CsrArg> eligibility;
  Filter filter;
};

FilterArgs make_filter(const std::optional<py::tuple>& exclude_rows, const std::optional<py::array>& exclude,
                       const std::optional<py::array>& allow, const std::optional<py::tuple>& eligibility,
                       bool eligibility_blocks) {
  FilterArgs f;
  if (exclude_rows) {
    f.exclude_rows = csr_arg(*exclude_rows, "exclude_rows");
    f.filter.exclude_rows = f.exclude_rows->view("exclude_rows");
  }
  if (eligibility) {
    f.eligibility = csr_arg(*eligibility, "eligibility");
    f.filter.eligibility = f.eligibility->view("eligibility");
  }
  const Span<const Index> ex = view_1d_or_empty<Index>(exclude, "exclude");
  const Span<const Index> al = view_1d_or_empty<Index>(allow, "allow");
  f.filter.exclude.assign(ex.begin(), ex.end());
  f.filter.allow.assign(al.begin(), al.end());
  f.filter.eligibility_blocks = eligibility_blocks;
  return f;
}

py::tuple top_k_to_python(TopK&& top) {
  const auto rows = static_cast<py::ssize_t>(top.rows);
  const auto k = static_cast<py::ssize_t>(top.k);
  return py::make_tuple(to_numpy(std::move(top.ids), {rows, k}), to_numpy(std::move(top.scores), {rows, k}));
}

}  // namespace

void bind_models(py::module_& m) {
  py::class_<Popularity> cls(m, "Popularity");
  cls.def(py::init([](const std::string& params_json) {
            return Popularity(PopularityParams::from_json(
                parse_json_strict<ConfigError>(params_json, "Popularity")));
          }),
          py::arg("params_json"))
      .def("get_params", [](const Popularity& p) { return p.get_params().dump(); })
      .def_property_readonly("fitted", &Popularity::fitted)
      .def_property_readonly("n_users", &Popularity::n_users)
      .def_property_readonly("n_benefits", &Popularity::n_benefits)
      .def("fit",
           [](Popularity& self, const py::tuple& user_benefits, const py::object& progress) {
             const CsrArg arg = csr_arg(user_benefits, "user_benefits");
             const CsrView<float> view = arg.view("user_benefits");
             const Callbacks cb = make_callbacks(progress);
             py::gil_scoped_release release;
             self.fit(view, cb);
           })
      .def("set_ids", &Popularity::set_ids)
      .def_property_readonly("user_ids", [](const Popularity& p) { return p.user_ids(); })
      .def_property_readonly("benefit_ids", [](const Popularity& p) { return p.benefit_ids(); })
      .def("benefit_scores", [](const Popularity& p) { return to_numpy(std::vector<float>(p.benefit_scores())); })
      .def("score",
           [](const Popularity& self, const py::array& users, const py::array& benefits) {
             const Span<const Index> u = view_1d<Index>(users, "users");
             const Span<const Index> b = view_1d<Index>(benefits, "benefits");
             std::vector<float> out(u.size());
             {
               py::gil_scoped_release release;
               self.score(u, b, out);
             }
             return to_numpy(std::move(out));
           })
      .def("recommend",
           [](const Popularity& self, const py::array& users, int n, const std::optional<py::tuple>& exclude_rows,
              const std::optional<py::array>& exclude, const std::optional<py::array>& allow,
              const std::optional<py::tuple>& eligibility, bool eligibility_blocks) {
             const Span<const Index> u = view_1d<Index>(users, "users");
             const FilterArgs f = make_filter(exclude_rows, exclude, allow, eligibility, eligibility_blocks);
             TopK top;
             {
               py::gil_scoped_release release;
               top = self.recommend(u, n, f.filter);
             }
             return top_k_to_python(std::move(top));
           },
           py::arg("users"), py::arg("n"), py::arg("exclude_rows"), py::arg("exclude"), py::arg("allow"),
           py::arg("eligibility"), py::arg("eligibility_blocks"));
  def_serialization<Popularity>(cls);
}

}  // namespace perkrec::python
