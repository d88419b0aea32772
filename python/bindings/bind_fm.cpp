// Factorization machines (FM and FFM): plumbing only, GIL released for all compute.
#include "bindings.hpp"

namespace perkrec::python {

namespace {

// Keeps the numpy arrays of one labelled row set alive while the C++ views point into them.
struct TargetArgs {
  CsrArg rows;
  py::array labels;
  std::optional<py::array> weights, groups;
  FMTarget target(const char* name) const {
    FMTarget t;
    t.labels = view_1d<float>(labels, name);
    t.sample_weights = view_1d_or_empty<float>(weights, name);
    t.groups = view_1d_or_empty<Index>(groups, name);
    return t;
  }
};

template <class Method>
void train(FM& self, Method method, const py::tuple& X, const py::array& labels,
           const std::optional<py::array>& weights, const std::optional<py::array>& groups,
           const py::array& feature_fields, std::int32_t n_fields,
           const std::optional<py::tuple>& val_X, const std::optional<py::array>& val_labels,
           const std::optional<py::array>& val_weights, const std::optional<py::array>& val_groups,
           const py::object& progress) {
  const TargetArgs train_args{csr_arg(X, "X"), labels, weights, groups};
  const CsrView<float> x = train_args.rows.view("X");
  const FMTarget t = train_args.target("labels");
  const Span<const std::int32_t> fields = view_1d<std::int32_t>(feature_fields, "feature_fields");
  std::optional<TargetArgs> val_args;
  CsrView<float> vx;
  FMTarget vt;
  if (val_X) {
    if (!val_labels)
      detail::raise<InputError>("FM.fit: validation rows given without validation labels");
    val_args = TargetArgs{csr_arg(*val_X, "validation_X"), *val_labels, val_weights, val_groups};
    vx = val_args->rows.view("validation_X");
    vt = val_args->target("validation_labels");
  }
  const Callbacks cb = make_callbacks(progress);
  py::gil_scoped_release release;
  (self.*method)(x, t, fields, n_fields, val_X ? &vx : nullptr, val_X ? &vt : nullptr, cb);
}

}  // namespace

void bind_fm(py::module_& m) {
  py::class_<FM> cls(m, "FM");
  cls.def(py::init([](const std::string& params_json) {
            return FM(FMParams::from_json(parse_json_strict<ConfigError>(params_json, "FM")));
          }),
          py::arg("params_json"))
      .def("get_params", [](const FM& f) { return f.get_params().dump(); })
      .def("set_num_threads", &FM::set_num_threads)
      .def_property_readonly("fitted", &FM::fitted)
      .def_property_readonly("n_features", &FM::n_features)
      .def_property_readonly("n_fields", &FM::n_fields)
      .def_property_readonly("bias", &FM::bias)
      .def_property_readonly("metadata", &FM::metadata)
      .def("set_metadata", &FM::set_metadata)
      .def("linear", [](const FM& f) { return to_numpy(std::vector<float>(f.linear())); })
      .def("factors", [](const FM& f) { return to_numpy(std::vector<float>(f.factors())); })
      .def("feature_fields",
           [](const FM& f) { return to_numpy(std::vector<std::int32_t>(f.feature_fields())); })
      .def("history",
           [](const FM& f) {
             py::list out;
             for (const FMEpoch& e : f.history())
               out.append(py::make_tuple(e.epoch, e.train_loss, e.validation_loss));
             return out;
           })
      .def("fit",
           [](FM& self, const py::tuple& X, const py::array& labels,
              const std::optional<py::array>& weights, const std::optional<py::array>& groups,
              const py::array& feature_fields, std::int32_t n_fields,
              const std::optional<py::tuple>& val_X, const std::optional<py::array>& val_labels,
              const std::optional<py::array>& val_weights,
              const std::optional<py::array>& val_groups, const py::object& progress) {
             train(self, &FM::fit, X, labels, weights, groups, feature_fields, n_fields, val_X,
                   val_labels, val_weights, val_groups, progress);
           })
      .def("partial_fit",
           [](FM& self, const py::tuple& X, const py::array& labels,
              const std::optional<py::array>& weights, const std::optional<py::array>& groups,
              const py::array& feature_fields, std::int32_t n_fields,
              const std::optional<py::tuple>& val_X, const std::optional<py::array>& val_labels,
              const std::optional<py::array>& val_weights,
              const std::optional<py::array>& val_groups, const py::object& progress) {
             train(self, &FM::partial_fit, X, labels, weights, groups, feature_fields, n_fields,
                   val_X, val_labels, val_weights, val_groups, progress);
           })
      .def("score",
           [](const FM& self, const py::tuple& X, bool probability) {
             const CsrArg arg = csr_arg(X, "X");
             const CsrView<float> x = arg.view("X");
             std::vector<float> out(static_cast<std::size_t>(x.rows));
             {
               py::gil_scoped_release release;
               if (probability)
                 self.predict(x, out);
               else
                 self.score(x, out);
             }
             return to_numpy(std::move(out));
           })
      .def("score_candidates",
           [](const FM& self, const py::tuple& base, const py::tuple& candidates) {
             const CsrArg b = csr_arg(base, "base"), c = csr_arg(candidates, "candidates");
             const CsrView<float> bv = b.view("base"), cv = c.view("candidates");
             std::vector<float> out(static_cast<std::size_t>(bv.rows) *
                                    static_cast<std::size_t>(cv.rows));
             {
               py::gil_scoped_release release;
               self.score_candidates(bv, cv, out);
             }
             return to_numpy(std::move(out), {static_cast<py::ssize_t>(bv.rows),
                                              static_cast<py::ssize_t>(cv.rows)});
           })
      .def("loss",
           [](const FM& self, const py::tuple& X, const py::array& labels,
              const std::optional<py::array>& weights, const std::optional<py::array>& groups) {
             const TargetArgs a{csr_arg(X, "X"), labels, weights, groups};
             const CsrView<float> x = a.rows.view("X");
             const FMTarget t = a.target("labels");
             py::gil_scoped_release release;
             return self.loss(x, t);
           })
      .def("row_gradient",
           [](const FM& self, const py::tuple& X, Index row, float label) {
             const CsrArg a = csr_arg(X, "X");
             return to_numpy(self.row_gradient(a.view("X"), row, label));
           })
      .def("set_parameters", [](FM& self, float w0, const py::array& w, const py::array& v) {
        const Span<const float> ws = view_1d<float>(w, "linear"), vs = view_1d<float>(v, "factors");
        self.set_parameters(w0, std::vector<float>(ws.begin(), ws.end()),
                            std::vector<float>(vs.begin(), vs.end()));
      });
  def_serialization<FM>(cls);

  py::class_<FMCV>(m, "FMCV")
      .def(
          py::init([](const std::string& params_json) {
            return FMCV(FMCVParams::from_json(parse_json_strict<ConfigError>(params_json, "FMCV")));
          }),
          py::arg("params_json"))
      .def("get_params", [](const FMCV& f) { return f.get_params().dump(); })
      .def("set_num_threads", &FMCV::set_num_threads)
      .def_property_readonly("fitted", &FMCV::fitted)
      .def("report", [](const FMCV& f) { return f.report().to_json().dump(); })
      .def("model", [](const FMCV& f) { return FM(f.model()); })
      .def("fit",
           [](FMCV& self, const py::tuple& X, const py::array& labels,
              const std::optional<py::array>& weights, const std::optional<py::array>& groups,
              const py::array& feature_fields, std::int32_t n_fields, const py::object& progress) {
             const TargetArgs args{csr_arg(X, "X"), labels, weights, groups};
             const CsrView<float> x = args.rows.view("X");
             const FMTarget t = args.target("labels");
             const Span<const std::int32_t> fields =
                 view_1d<std::int32_t>(feature_fields, "feature_fields");
             const Callbacks cb = make_callbacks(progress);
             py::gil_scoped_release release;
             self.fit(x, t, fields, n_fields, cb);
           })
      .def_static("fold_of", [](const py::array& labels, int folds, std::uint64_t seed,
                                const std::optional<py::array>& groups) {
        const Span<const float> y = view_1d<float>(labels, "labels");
        const Span<const Index> g = view_1d_or_empty<Index>(groups, "groups");
        return to_numpy(FMCV::fold_of(y, folds, seed, g));
      });
}

}  // namespace perkrec::python
