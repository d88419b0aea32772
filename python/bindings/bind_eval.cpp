// Metrics.
#include "bindings.hpp"

namespace perkrec::python {

void bind_eval(py::module_& m) {
  m.def("auc", [](const py::array& scores, const py::array& labels) {
    const Span<const float> s = view_1d<float>(scores, "scores");
    const Span<const std::uint8_t> l = view_1d<std::uint8_t>(labels, "labels");
    return without_gil([&] { return auc(s, l); });
  });
  m.def("log_loss", [](const py::array& probabilities, const py::array& labels, double eps) {
    const Span<const float> p = view_1d<float>(probabilities, "probabilities");
    const Span<const std::uint8_t> l = view_1d<std::uint8_t>(labels, "labels");
    return without_gil([&] { return log_loss(p, l, eps); });
  });
  m.def("ranking_metrics", [](const py::array& recommended, int k, const py::tuple& relevant,
                              int num_threads) {
    const Span<const Index> rec = view_1d<Index>(recommended, "recommended");
    const CsrArg rel = csr_arg(relevant, "relevant");
    const CsrView<float> view = rel.view("relevant");
    RankingMetrics r = without_gil([&] { return ranking_metrics(rec, k, view, num_threads); });
    py::dict out;
    out["k"] = r.k;
    out["rows_evaluated"] = r.rows_evaluated;
    out["precision"] = r.precision;
    out["recall"] = r.recall;
    out["ndcg"] = r.ndcg;
    out["map"] = r.map;
    out["hit_rate"] = r.hit_rate;
    out["coverage"] = r.coverage;
    return out;
  });
  m.def(
      "reliability_curve",
      [](const py::array& labels, const py::array& probabilities, int bins, bool quantile_bins) {
        const Span<const double> y = view_1d<double>(labels, "y");
        const Span<const double> p = view_1d<double>(probabilities, "probabilities");
        ReliabilityCurve r =
            without_gil([&] { return reliability_curve(y, p, bins, quantile_bins); });
        py::dict out;
        out["bin"] = to_numpy(std::move(r.bin));
        out["low"] = to_numpy(std::move(r.low));
        out["high"] = to_numpy(std::move(r.high));
        out["mean_predicted"] = to_numpy(std::move(r.mean_predicted));
        out["fraction_positive"] = to_numpy(std::move(r.fraction_positive));
        out["count"] = to_numpy(std::move(r.count));
        out["ece"] = r.ece;
        return out;
      },
      py::arg("y"), py::arg("probabilities"), py::arg("bins"), py::arg("quantile_bins"));
  m.def(
      "spearman_correlation",
      [](const py::array& a, const py::array& b) {
        const Span<const double> x = view_1d<double>(a, "a");
        const Span<const double> y = view_1d<double>(b, "b");
        return without_gil([&] { return spearman_correlation(x, y); });
      },
      py::arg("a"), py::arg("b"));
  m.def(
      "holdout_errors",
      [](const py::array& actual_purchases, const py::array& actual_spend,
         const py::array& forecast_purchases, const py::array& forecast_spend) {
        const Span<const double> ap = view_1d<double>(actual_purchases, "actual_purchases");
        const Span<const double> as = view_1d<double>(actual_spend, "actual_spend");
        const Span<const double> fp = view_1d<double>(forecast_purchases, "forecast_purchases");
        const Span<const double> fs = view_1d<double>(forecast_spend, "forecast_spend");
        HoldoutErrors e = without_gil([&] { return holdout_errors(ap, as, fp, fs); });
        py::dict out;
        out["members"] = e.members;
        out["mae_purchases"] = e.mae_purchases;
        out["spearman_purchases"] = e.spearman_purchases;
        out["aggregate_purchases_error"] = e.aggregate_purchases_error;
        out["mae_spend"] = e.mae_spend;
        out["spearman_spend"] = e.spearman_spend;
        out["aggregate_spend_error"] = e.aggregate_spend_error;
        return out;
      },
      py::arg("actual_purchases"), py::arg("actual_spend"), py::arg("forecast_purchases"),
      py::arg("forecast_spend"));
  m.def("catalog_coverage", [](const py::array& recommended, Index n_benefits) {
    const Span<const Index> rec = view_1d<Index>(recommended, "recommended");
    return without_gil([&] { return catalog_coverage(rec, n_benefits); });
  });
}

}  // namespace perkrec::python
