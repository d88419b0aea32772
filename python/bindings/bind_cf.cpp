// Collaborative filtering: ALS, BPR and ItemKNN share one set of recommender bindings.
#include "bindings.hpp"

namespace perkrec::python {

namespace {

py::array table_to_numpy(const detail::FactorTable& t) {
  std::vector<float> copy(t.values);
  return to_numpy(std::move(copy),
                  {static_cast<py::ssize_t>(t.rows), static_cast<py::ssize_t>(t.dim)});
}

template <class Model>
Model from_params(const std::string& params_json) {
  using Params = std::decay_t<decltype(std::declval<Model>().params())>;
  return Model(Params::from_json(parse_json_strict<ConfigError>(params_json, Model::kind)));
}

/// The recommender contract every CF model shares.
template <class Model, class Cls>
void def_recommender(Cls& cls) {
  cls.def(py::init(&from_params<Model>), py::arg("params_json"))
      .def("get_params", [](const Model& m) { return m.get_params().dump(); })
      .def("set_num_threads", &Model::set_num_threads)
      .def_property_readonly("fitted", &Model::fitted)
      .def_property_readonly("n_users", &Model::n_users)
      .def_property_readonly("n_benefits", &Model::n_benefits)
      .def(
          "recommend_new",
          [](const Model& self, const py::tuple& rows, int n, bool filter_already_interacted,
             const std::optional<py::array>& exclude, const std::optional<py::array>& allow,
             const std::optional<py::tuple>& eligibility, bool eligibility_blocks) {
            const CsrArg arg = csr_arg(rows, "user_benefits");
            const CsrView<float> view = arg.view("user_benefits");
            FilterArgs f =
                make_filter(std::nullopt, exclude, allow, eligibility, eligibility_blocks);
            f.filter.filter_already_interacted = filter_already_interacted;
            TopK top;
            {
              py::gil_scoped_release release;
              top = self.recommend_new(view, n, f.filter);
            }
            return top_k_to_python(std::move(top));
          },
          py::arg("user_benefits"), py::arg("n"), py::arg("filter_already_interacted"),
          py::arg("exclude"), py::arg("allow"), py::arg("eligibility"),
          py::arg("eligibility_blocks"))
      .def("similar_benefits",
           [](const Model& self, const py::array& ids, int n,
              const std::optional<py::array>& exclude, const std::optional<py::array>& allow) {
             const Span<const Index> q = view_1d<Index>(ids, "benefits");
             const FilterArgs f = make_filter(std::nullopt, exclude, allow, std::nullopt, false);
             TopK top;
             {
               py::gil_scoped_release release;
               top = self.similar_benefits(q, n, f.filter);
             }
             return top_k_to_python(std::move(top));
           })
      .def("similar_users",
           [](const Model& self, const py::array& ids, int n,
              const std::optional<py::array>& exclude, const std::optional<py::array>& allow) {
             const Span<const Index> q = view_1d<Index>(ids, "users");
             const FilterArgs f = make_filter(std::nullopt, exclude, allow, std::nullopt, false);
             TopK top;
             {
               py::gil_scoped_release release;
               top = self.similar_users(q, n, f.filter);
             }
             return top_k_to_python(std::move(top));
           })
      .def(
          "partial_fit_users",
          [](Model& self, const py::array& ids, const py::tuple& rows, Index max_growth) {
            const Span<const Index> q = view_1d<Index>(ids, "users");
            const CsrArg arg = csr_arg(rows, "user_benefits");
            const CsrView<float> view = arg.view("user_benefits");
            py::gil_scoped_release release;
            self.partial_fit_users(q, view, max_growth);
          },
          py::arg("users"), py::arg("rows"), py::arg("max_growth") = kDefaultMaxGrowth)
      .def(
          "partial_fit_benefits",
          [](Model& self, const py::array& ids, const py::tuple& rows, Index max_growth) {
            const Span<const Index> q = view_1d<Index>(ids, "benefits");
            const CsrArg arg = csr_arg(rows, "benefit_users");
            const CsrView<float> view = arg.view("benefit_users");
            py::gil_scoped_release release;
            self.partial_fit_benefits(q, view, max_growth);
          },
          py::arg("benefits"), py::arg("rows"), py::arg("max_growth") = kDefaultMaxGrowth);
  def_recommender_scoring<Model>(cls);
  def_serialization<Model>(cls);
}

template <class Model, class Cls>
void def_factor_access(Cls& cls) {
  cls.def("user_factors", [](const Model& m) { return table_to_numpy(m.user_factors()); })
      .def("benefit_factors", [](const Model& m) { return table_to_numpy(m.benefit_factors()); })
      .def("fold_in", [](const Model& self, const py::tuple& rows) {
        const CsrArg arg = csr_arg(rows, "user_benefits");
        const CsrView<float> view = arg.view("user_benefits");
        std::vector<float> out;
        {
          py::gil_scoped_release release;
          out = self.fold_in(view);
        }
        const auto dim = static_cast<py::ssize_t>(self.user_factors().dim);
        return to_numpy(std::move(out), {static_cast<py::ssize_t>(view.rows), dim});
      });
}

template <class Model>
void def_fit(py::class_<Model>& cls) {
  cls.def("fit", [](Model& self, const py::tuple& user_benefits, const py::object& progress) {
    const CsrArg arg = csr_arg(user_benefits, "user_benefits");
    const CsrView<float> view = arg.view("user_benefits");
    const Callbacks cb = make_callbacks(progress);
    py::gil_scoped_release release;
    self.fit(view, cb);
  });
}

}  // namespace

void bind_cf(py::module_& m) {
  m.attr("DEFAULT_MAX_GROWTH") = kDefaultMaxGrowth;
  py::class_<ALS> als(m, "ALS");
  def_recommender<ALS>(als);
  def_factor_access<ALS>(als);
  def_fit<ALS>(als);
  als.def("training_loss",
          [](const ALS& a) { return to_numpy(std::vector<double>(a.training_loss())); })
      .def("explain", [](const ALS& self, const py::tuple& row, Index benefit, int n) {
        const CsrArg arg = csr_arg(row, "user_benefits");
        const CsrView<float> view = arg.view("user_benefits");
        Explanation ex;
        {
          py::gil_scoped_release release;
          ex = self.explain(view, benefit, n);
        }
        return py::make_tuple(ex.score, to_numpy(std::move(ex.benefits)),
                              to_numpy(std::move(ex.contributions)));
      });

  py::class_<BPR> bpr(m, "BPR");
  def_recommender<BPR>(bpr);
  def_factor_access<BPR>(bpr);
  bpr.def("fit",
          [](BPR& self, const py::tuple& user_benefits, const std::optional<py::tuple>& eligibility,
             const py::object& progress) {
            const CsrArg arg = csr_arg(user_benefits, "user_benefits");
            const CsrView<float> view = arg.view("user_benefits");
            std::optional<CsrArg> elig_arg;
            CsrView<float> elig;
            if (eligibility) {
              elig_arg = csr_arg(*eligibility, "eligibility");
              elig = elig_arg->view("eligibility");
            }
            const Callbacks cb = make_callbacks(progress);
            py::gil_scoped_release release;
            self.fit(view, elig, cb);
          })
      .def("training_accuracy",
           [](const BPR& b) { return to_numpy(std::vector<double>(b.training_accuracy())); });

  py::class_<ItemKNN> knn(m, "ItemKNN");
  def_recommender<ItemKNN>(knn);
  def_fit<ItemKNN>(knn);
  knn.def("neighbours",
          [](const ItemKNN& k) { return csr_to_python(CsrMatrix<float>(k.neighbours())); });
}

}  // namespace perkrec::python
