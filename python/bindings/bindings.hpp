// Shared plumbing for the perkrec._core bindings: strict numpy views, numpy results that own
// C++ memory, CSR arguments, and Python callbacks. No algorithm code lives here.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <perkrec/perkrec.hpp>

namespace perkrec::python {

namespace py = pybind11;

/// A read-only view of a 1-D C-contiguous array of exactly dtype T. Conversions are the
/// Python wrapper's job, so anything else is an InputError naming the argument.
template <class T>
Span<const T> view_1d(const py::array& a, const char* name) {
  if (!a.dtype().equal(py::dtype::of<T>())) {
    detail::raise<InputError>(name, ": expected dtype ", std::string(py::str(py::dtype::of<T>())),
                              " (got ", std::string(py::str(a.dtype())), ")");
  }
  if (a.ndim() != 1)
    detail::raise<InputError>(name, ": expected a 1-D array (got ", a.ndim(), " dimensions)");
  if (!(a.flags() & py::array::c_style))
    detail::raise<InputError>(name, ": expected a C-contiguous array");
  return Span<const T>(static_cast<const T*>(a.data()), static_cast<std::size_t>(a.shape(0)));
}

/// Same for an optional argument: None gives an empty span.
template <class T>
Span<const T> view_1d_or_empty(const std::optional<py::array>& a, const char* name) {
  return a ? view_1d<T>(*a, name) : Span<const T>();
}

/// A writable 1-D view (for outputs the wrapper preallocated).
template <class T>
Span<T> mutable_view_1d(py::array& a, const char* name) {
  Span<const T> v = view_1d<T>(a, name);
  if (!a.writeable()) detail::raise<InputError>(name, ": array is read-only");
  return Span<T>(const_cast<T*>(v.data()), v.size());
}

/// Runs `compute` with the GIL released and returns its result: the views are taken and
/// checked before, the Python objects built after, with the GIL held.
///   CLVForecast f = without_gil([&] { return naive_forecast(xs, ts, values, horizon); });
template <class F>
auto without_gil(F&& compute) -> decltype(compute()) {
  py::gil_scoped_release release;
  return compute();
}

/// Moves a vector into a numpy array of `shape` that owns it (no copy).
template <class T, class A>
py::array to_numpy(std::vector<T, A>&& values, std::vector<py::ssize_t> shape = {}) {
  if (shape.empty()) shape = {static_cast<py::ssize_t>(values.size())};
  auto* owned = new std::vector<T, A>(std::move(values));
  py::capsule owner(owned, [](void* p) { delete static_cast<std::vector<T, A>*>(p); });
  return py::array_t<T>(shape, owned->data(), owner);
}

/// A read-only numpy view of memory owned by `base` (kept alive by the array).
template <class T>
py::array readonly_view(Span<const T> data, py::handle base, std::vector<py::ssize_t> shape = {}) {
  if (shape.empty()) shape = {static_cast<py::ssize_t>(data.size())};
  py::array_t<T> out(shape, data.data(), base);
  py::detail::array_proxy(out.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return std::move(out);
}

/// A CSR argument passed as (indptr int64, indices int32, data float32, rows, cols).
struct CsrArg {
  py::array indptr, indices, data;
  Index rows = 0, cols = 0;
  CsrView<float> view(const char* name) const {
    CsrView<float> v;
    v.rows = rows;
    v.cols = cols;
    const Span<const Offset> p = view_1d<Offset>(indptr, name);
    const Span<const Index> i = view_1d<Index>(indices, name);
    const Span<const float> d = view_1d<float>(data, name);
    if (rows < 0 || cols < 0) detail::raise<InputError>(name, ": negative shape");
    if (p.size() != static_cast<std::size_t>(rows) + 1) {
      detail::raise<InputError>(name, ": indptr has ", p.size(),
                                " entries (expected rows + 1 = ", rows + 1, ")");
    }
    if (i.size() != d.size()) detail::raise<InputError>(name, ": indices and data lengths differ");
    if (rows > 0 && (p[0] != 0 || p[p.size() - 1] != static_cast<Offset>(i.size()))) {
      detail::raise<InputError>(name, ": indptr must start at 0 and end at nnz (", i.size(), ")");
    }
    v.indptr = p.data();
    v.indices = i.data();
    v.data = d.data();
    return v;
  }
};

inline CsrArg csr_arg(const py::tuple& t, const char* name) {
  if (t.size() != 5)
    detail::raise<InputError>(name, ": expected (indptr, indices, data, rows, cols)");
  return CsrArg{t[0].cast<py::array>(), t[1].cast<py::array>(), t[2].cast<py::array>(),
                t[3].cast<Index>(), t[4].cast<Index>()};
}

/// Returns a CSR matrix to Python as (indptr, indices, data, rows, cols) without copying.
inline py::tuple csr_to_python(CsrMatrix<float>&& m) {
  const Index rows = m.rows, cols = m.cols;
  return py::make_tuple(to_numpy(std::move(m.indptr)), to_numpy(std::move(m.indices)),
                        to_numpy(std::move(m.data)), rows, cols);
}

/// Callbacks that forward progress to a Python callable (stage, done, total) and stop on
/// Ctrl-C: the interrupt check runs Python's signal handlers and turns a KeyboardInterrupt
/// into perkrec::Interrupted, which the module maps back to KeyboardInterrupt.
inline Callbacks make_callbacks(const py::object& progress) {
  Callbacks cb;
  if (!progress.is_none()) {
    cb.progress = [&progress](const std::string& stage, Offset done, Offset total) {
      py::gil_scoped_acquire gil;
      progress(stage, done, total);
    };
  }
  cb.should_stop = [] {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) {
      PyErr_Clear();
      return true;
    }
    return false;
  };
  return cb;
}

/// Planner::plan's result as (candidates, diagnostics dict, allocation, rows dict of arrays +
/// reasons list, budget): what perkrec.plan builds a Plan from.
inline py::tuple plan_result_to_python(PlanResult&& r) {
  py::dict diag;
  diag["best_ineligible"] = to_numpy(std::move(r.diagnostics.best_ineligible));
  diag["best_ineligible_key"] = to_numpy(std::move(r.diagnostics.best_ineligible_key));
  diag["best_ineligible_rule"] = to_numpy(std::move(r.diagnostics.best_ineligible_rule));
  diag["n_eligible"] = to_numpy(std::move(r.diagnostics.n_eligible));
  py::dict rows;
  rows["member"] = to_numpy(std::move(r.member));
  rows["benefit"] = to_numpy(std::move(r.benefit));
  rows["entry"] = to_numpy(std::move(r.entry));
  rows["probability"] = to_numpy(std::move(r.probability));
  rows["value"] = to_numpy(std::move(r.value));
  rows["cost"] = to_numpy(std::move(r.cost));
  rows["send_at"] = to_numpy(std::move(r.send_at));
  rows["validity_days"] = to_numpy(std::move(r.validity_days));
  rows["from_model"] = to_numpy(std::move(r.from_model));
  py::list reasons(r.reasons.size());
  for (std::size_t i = 0; i < r.reasons.size(); ++i) {
    reasons[i] = py::reinterpret_steal<py::object>(PyUnicode_FromStringAndSize(
        r.reasons[i].data(), static_cast<py::ssize_t>(r.reasons[i].size())));
  }
  rows["reasons"] = reasons;
  return py::make_tuple(std::move(r.candidates), diag, std::move(r.allocation), rows, r.budget);
}

void bind_core(py::module_& m);
void bind_io(py::module_& m);
void bind_data(py::module_& m);
void bind_simulator(py::module_& m);
void bind_features(py::module_& m);
void bind_models(py::module_& m);
void bind_eval(py::module_& m);
void bind_causal(py::module_& m);
void bind_fm(py::module_& m);
void bind_cf(py::module_& m);
void bind_preference(py::module_& m);
void bind_decide_types(py::module_& m);
void bind_policy(py::module_& m);
void bind_allocator(py::module_& m);
void bind_ranker(py::module_& m);
void bind_planner(py::module_& m);
void bind_uplift(py::module_& m);
void bind_clv(py::module_& m);
void bind_interest(py::module_& m);
void bind_behavior(py::module_& m);
void bind_behavior_cf(py::module_& m);
void bind_pipeline(py::module_& m);
void bind_calibrators(py::module_& m);

}  // namespace perkrec::python

namespace perkrec::python {

/// to_bytes / from_bytes / save / load for a Serializable class, GIL released.
template <class T, class Class>
void def_serialization(Class& cls) {
  cls.def("to_bytes",
          [](const T& self) {
            std::string bytes;
            {
              py::gil_scoped_release release;
              bytes = self.to_bytes();
            }
            return py::bytes(bytes);
          })
      .def_static("from_bytes",
                  [](const py::bytes& data) {
                    const std::string_view bytes(data);
                    py::gil_scoped_release release;
                    return T::from_bytes(bytes);
                  })
      .def("save",
           [](const T& self, const std::string& path) {
             py::gil_scoped_release release;
             self.save(path);
           })
      .def_static("load", [](const std::string& path) {
        py::gil_scoped_release release;
        return T::load(path);
      });
}

/// Keeps a recommend filter's numpy arrays alive while the C++ Filter points into them.
struct FilterArgs {
  std::optional<CsrArg> exclude_rows;
  std::optional<CsrArg> eligibility;
  Filter filter;
};

/// The Filter of models/recommender.hpp from the wrapper's (already converted) arguments.
inline FilterArgs make_filter(const std::optional<py::tuple>& exclude_rows,
                              const std::optional<py::array>& exclude,
                              const std::optional<py::array>& allow,
                              const std::optional<py::tuple>& eligibility,
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
  f.filter.allow_only = allow.has_value();  // allow=[] allows nothing
  f.filter.eligibility_blocks = eligibility_blocks;
  return f;
}

/// (ids, scores) as two rows x k numpy arrays that own the TopK's memory.
inline py::tuple top_k_to_python(TopK&& top) {
  const auto rows = static_cast<py::ssize_t>(top.rows);
  const auto k = static_cast<py::ssize_t>(top.k);
  return py::make_tuple(to_numpy(std::move(top.ids), {rows, k}),
                        to_numpy(std::move(top.scores), {rows, k}));
}

/// The part of the recommender contract every model binds alike: external ids, score(users,
/// benefits) and the filtered recommend(users, n, ...), compute with the GIL released.
template <class Model, class Class>
void def_recommender_scoring(Class& cls) {
  cls.def("set_ids", &Model::set_ids)
      .def_property_readonly("user_ids", [](const Model& m) { return m.user_ids(); })
      .def_property_readonly("benefit_ids", [](const Model& m) { return m.benefit_ids(); })
      .def("score",
           [](const Model& self, const py::array& users, const py::array& benefits) {
             const Span<const Index> u = view_1d<Index>(users, "users");
             const Span<const Index> b = view_1d<Index>(benefits, "benefits");
             std::vector<float> out(u.size());
             {
               py::gil_scoped_release release;
               self.score(u, b, out);
             }
             return to_numpy(std::move(out));
           })
      .def(
          "recommend",
          [](const Model& self, const py::array& users, int n,
             const std::optional<py::tuple>& exclude_rows, const std::optional<py::array>& exclude,
             const std::optional<py::array>& allow, const std::optional<py::tuple>& eligibility,
             bool eligibility_blocks) {
            const Span<const Index> u = view_1d<Index>(users, "users");
            const FilterArgs f =
                make_filter(exclude_rows, exclude, allow, eligibility, eligibility_blocks);
            TopK top;
            {
              py::gil_scoped_release release;
              top = self.recommend(u, n, f.filter);
            }
            return top_k_to_python(std::move(top));
          },
          py::arg("users"), py::arg("n"), py::arg("exclude_rows"), py::arg("exclude"),
          py::arg("allow"), py::arg("eligibility"), py::arg("eligibility_blocks"));
}

}  // namespace perkrec::python
