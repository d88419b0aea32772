// The fitted pipeline's model file (BenefitPlannerFile): plumbing only.
#include "bindings.hpp"

namespace perkrec::python {

namespace {

template <class T>
std::vector<T> copy_1d(const std::optional<py::array>& a, const char* name) {
  const Span<const T> s = view_1d_or_empty<T>(a, name);
  return std::vector<T>(s.begin(), s.end());
}

}  // namespace

void bind_pipeline(py::module_& m) {
  py::class_<BenefitPlannerFile> cls(m, "BenefitPlannerFile");
  cls.def(py::init([](const std::string& config_json, const FM& fm,
                      const PreferenceModel& preference, const Catalog& catalog,
                      const EventLog& events, const std::optional<UserTable>& users,
                      const py::array& order_value, const std::optional<py::array>& holdout_user,
                      const std::optional<py::array>& holdout_benefit,
                      const std::optional<py::array>& holdout_predicted,
                      const std::optional<py::array>& holdout_redeemed,
                      const std::optional<py::array>& holdout_weight,
                      const std::optional<py::array>& incremental_share) {
            BenefitPlannerFile f;
            f.config =
                parse_json_strict<InputError>(config_json, "BenefitPlannerFile: config");
            f.redemption_model = fm;
            f.preference = preference;
            f.catalog = catalog;
            f.events = events;
            f.users = users;
            f.order_value = copy_1d<float>(order_value, "order_value");
            f.holdout_user = copy_1d<std::int32_t>(holdout_user, "holdout_user");
            f.holdout_benefit = copy_1d<std::int32_t>(holdout_benefit, "holdout_benefit");
            f.holdout_predicted = copy_1d<double>(holdout_predicted, "holdout_predicted");
            f.holdout_redeemed = copy_1d<double>(holdout_redeemed, "holdout_redeemed");
            f.holdout_weight = copy_1d<float>(holdout_weight, "holdout_weight");
            f.incremental_share = copy_1d<float>(incremental_share, "incremental_share");
            f.validate();
            return f;
          }),
          py::arg("config_json"), py::arg("fm"), py::arg("preference"), py::arg("catalog"),
          py::arg("events"), py::arg("users"), py::arg("order_value"), py::arg("holdout_user"),
          py::arg("holdout_benefit"), py::arg("holdout_predicted"), py::arg("holdout_redeemed"),
          py::arg("holdout_weight"), py::arg("incremental_share"))
      .def_property_readonly("config_json",
                             [](const BenefitPlannerFile& f) { return f.config.dump(); })
      .def_property_readonly("fm", [](const BenefitPlannerFile& f) { return f.redemption_model; })
      .def_property_readonly("preference", [](const BenefitPlannerFile& f) { return f.preference; })
      .def_property_readonly("catalog", [](const BenefitPlannerFile& f) { return f.catalog; })
      .def_property_readonly("events", [](const BenefitPlannerFile& f) { return f.events; })
      .def_property_readonly("users", [](const BenefitPlannerFile& f) { return f.users; });
  // Per-member and held-out arrays: copies the caller owns.
  const auto array = [&cls](const char* name, auto member) {
    cls.def_property_readonly(name, [member](const BenefitPlannerFile& f) {
      auto values = f.*member;
      return to_numpy(std::move(values));
    });
  };
  array("order_value", &BenefitPlannerFile::order_value);
  array("holdout_user", &BenefitPlannerFile::holdout_user);
  array("holdout_benefit", &BenefitPlannerFile::holdout_benefit);
  array("holdout_predicted", &BenefitPlannerFile::holdout_predicted);
  array("holdout_redeemed", &BenefitPlannerFile::holdout_redeemed);
  array("holdout_weight", &BenefitPlannerFile::holdout_weight);
  array("incremental_share", &BenefitPlannerFile::incremental_share);
  def_serialization<BenefitPlannerFile>(cls);
}

}  // namespace perkrec::python
