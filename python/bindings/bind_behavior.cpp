// ItemCatalog, BehaviorLog, BenefitItems and behavior_features (data/item_catalog.hpp,
// data/behavior_log.hpp, features/behavior_features.hpp). The Python wrapper converts ids and
// dtypes; these functions take exact arrays and release the GIL for compute.
#include "bindings.hpp"

namespace perkrec::python {

namespace {

template <class T>
std::vector<T> vector_of(const py::array& a, const char* name) {
  const Span<const T> v = view_1d<T>(a, name);
  return std::vector<T>(v.begin(), v.end());
}

}  // namespace

void bind_behavior(py::module_& m) {
  m.attr("BEHAVIOR_AGGREGATES") = py::tuple(py::cast(behavior_aggregate_names()));
  m.attr("BEHAVIOR_NEVER_DAYS") = kBehaviorNeverDays;

  py::class_<ItemCatalog> item_catalog(m, "ItemCatalog");
  item_catalog.def(py::init<>())
      .def(py::init<IdMap>(), py::arg("items"))
      .def("__len__", &ItemCatalog::size)
      .def_property_readonly("items", &ItemCatalog::items)
      .def(
          "add_level",
          [](ItemCatalog& c, const std::string& name, const py::array& codes,
             std::vector<std::string> values) {
            c.add_level(name, vector_of<std::int32_t>(codes, "codes"), std::move(values));
          },
          py::arg("name"), py::arg("codes"), py::arg("values"))
      .def(
          "add_numeric",
          [](ItemCatalog& c, const std::string& name, const py::array& values) {
            c.add_numeric(name, vector_of<double>(values, "values"));
          },
          py::arg("name"), py::arg("values"))
      .def("level_names", &ItemCatalog::level_names)
      .def("numeric_names", &ItemCatalog::numeric_names)
      .def("level_codes",
           [](const ItemCatalog& c, const std::string& name) {
             return to_numpy(std::vector<std::int32_t>(c.level_codes(name)));
           })
      .def("level_values",
           [](const ItemCatalog& c, const std::string& name) { return c.level_values(name); })
      .def("numeric",
           [](const ItemCatalog& c, const std::string& name) {
             return to_numpy(std::vector<double>(c.numeric(name)));
           })
      .def("__eq__", [](const ItemCatalog& a, const ItemCatalog& b) { return a == b; });
  def_serialization<ItemCatalog>(item_catalog);

  py::class_<BehaviorLog> behavior_log(m, "BehaviorLog");
  behavior_log.def(py::init<>())
      .def_static(
          "from_arrays",
          [](const py::array& user, const py::array& item, const py::array& timestamp,
             const std::optional<py::array>& action, const std::optional<py::array>& quantity,
             const std::optional<py::array>& amount, const std::optional<py::array>& basket,
             Index n_users, Index n_items, std::vector<std::string> action_names,
             const std::string& unknown, int num_threads) {
            BehaviorColumns c;
            c.user = view_1d<Index>(user, "user");
            c.item = view_1d<Index>(item, "item");
            c.timestamp = view_1d<Timestamp>(timestamp, "timestamp");
            c.action = view_1d_or_empty<std::int32_t>(action, "action");
            c.quantity = view_1d_or_empty<double>(quantity, "quantity");
            c.amount = view_1d_or_empty<double>(amount, "amount");
            c.basket = view_1d_or_empty<std::int64_t>(basket, "basket");
            BehaviorOptions o;
            o.n_users = n_users;
            o.n_items = n_items;
            o.action_names = std::move(action_names);
            o.unknown = parse_unknown_items(unknown, "BehaviorLog.from_frame");
            o.num_threads = num_threads;
            py::gil_scoped_release release;
            return BehaviorLog::from_columns(c, o);
          },
          py::arg("user"), py::arg("item"), py::arg("timestamp"), py::arg("action"),
          py::arg("quantity"), py::arg("amount"), py::arg("basket"), py::arg("n_users"),
          py::arg("n_items"), py::arg("action_names"), py::arg("unknown"), py::arg("num_threads"))
      .def("__len__", &BehaviorLog::size)
      .def_property_readonly("n_users", &BehaviorLog::n_users)
      .def_property_readonly("n_items", &BehaviorLog::n_items)
      .def_property_readonly("unknown_items", &BehaviorLog::unknown_items)
      .def_property_readonly("unknown_users", &BehaviorLog::unknown_users)
      .def_property_readonly("action_names", &BehaviorLog::action_names)
      .def_property_readonly("has_baskets", &BehaviorLog::has_baskets)
      .def_property_readonly("min_time", &BehaviorLog::min_time)
      .def_property_readonly("max_time", &BehaviorLog::max_time)
      .def("users", [](const BehaviorLog& l) { return to_numpy(l.users()); })
      .def("items",
           [](py::object self) {
             return readonly_view(self.cast<const BehaviorLog&>().items(), self);
           })
      .def("actions",
           [](py::object self) {
             return readonly_view(self.cast<const BehaviorLog&>().actions(), self);
           })
      .def("timestamps",
           [](py::object self) {
             return readonly_view(self.cast<const BehaviorLog&>().timestamps(), self);
           })
      .def("quantities",
           [](py::object self) {
             return readonly_view(self.cast<const BehaviorLog&>().quantities(), self);
           })
      .def("amounts",
           [](py::object self) {
             return readonly_view(self.cast<const BehaviorLog&>().amounts(), self);
           })
      .def("baskets",
           [](py::object self) {
             return readonly_view(self.cast<const BehaviorLog&>().baskets(), self);
           })
      .def("user_offsets",
           [](const BehaviorLog& l) { return to_numpy(std::vector<Offset>(l.user_offsets())); })
      .def("before", &BehaviorLog::before, py::arg("user"), py::arg("t"))
      .def_property_readonly("user_ids", [](const BehaviorLog& l) { return l.user_ids(); })
      .def("set_user_ids", &BehaviorLog::set_user_ids, py::arg("ids"));
  def_serialization<BehaviorLog>(behavior_log);
  m.def(
      "lookup_behavior_ids",
      [](const std::optional<py::array>& user_ids, const IdMap& users,
         const std::optional<py::array>& item_ids, const IdMap& items,
         const std::optional<py::array>& timestamp, int num_threads) {
        BehaviorIds r;
        r.user_ids = view_1d_or_empty<std::int64_t>(user_ids, "user_ids");
        r.item_ids = view_1d_or_empty<std::int64_t>(item_ids, "item_ids");
        r.timestamp = view_1d_or_empty<Timestamp>(timestamp, "timestamp");
        // LargeVector: the outputs are written in full by the pass (no zero fill first).
        detail::LargeVector<Index> user(r.user_ids.size()), item(r.item_ids.size());
        r.user = user;
        r.item = item;
        Offset first_bad_time = -1;
        {
          py::gil_scoped_release release;
          first_bad_time = lookup_behavior_ids(r, users, items, num_threads);
        }
        return py::make_tuple(to_numpy(std::move(user)), to_numpy(std::move(item)), first_bad_time);
      },
      py::arg("user_ids"), py::arg("users"), py::arg("item_ids"), py::arg("items"),
      py::arg("timestamp"), py::arg("num_threads"));

  py::class_<BenefitItems> applies(m, "BenefitItems");
  applies.def(py::init<>())
      .def_static(
          "from_pairs",
          [](const py::array& benefit, const py::array& item, Index n_benefits, Index n_items,
             const std::string& unknown) {
            const Span<const Index> b = view_1d<Index>(benefit, "benefit");
            const Span<const Index> i = view_1d<Index>(item, "item");
            const UnknownItems u = parse_unknown_items(unknown, "BenefitItems.from_frame");
            py::gil_scoped_release release;
            return BenefitItems::from_pairs(b, i, n_benefits, n_items, u);
          },
          py::arg("benefit"), py::arg("item"), py::arg("n_benefits"), py::arg("n_items"),
          py::arg("unknown"))
      .def("__len__", &BenefitItems::size)
      .def_property_readonly("n_benefits", &BenefitItems::n_benefits)
      .def_property_readonly("n_items", &BenefitItems::n_items)
      .def_property_readonly("unknown_items", &BenefitItems::unknown_items)
      .def("offsets",
           [](const BenefitItems& b) { return to_numpy(std::vector<Offset>(b.offsets())); })
      .def("indices",
           [](const BenefitItems& b) { return to_numpy(std::vector<Index>(b.indices())); })
      .def(
          "level_values",
          [](const BenefitItems& b, const ItemCatalog& c, const std::string& level) {
            LevelValues v = b.level_values(c, level);
            return py::make_tuple(to_numpy(std::move(v.offsets)), to_numpy(std::move(v.codes)));
          },
          py::arg("catalog"), py::arg("level"));
  def_serialization<BenefitItems>(applies);

  m.def(
      "behavior_features",
      [](const py::array& user, const py::array& benefit, const py::array& timestamp,
         const BehaviorLog& log, const ItemCatalog& items, const BenefitItems& benefit_items,
         std::vector<std::string> aggregates, std::vector<std::string> levels,
         std::vector<std::string> actions, double half_life_days, int num_threads,
         const std::string& dtype) {
        BehaviorSamples s{view_1d<std::int64_t>(user, "user"),
                          view_1d<std::int64_t>(benefit, "benefit"),
                          view_1d<std::int64_t>(timestamp, "timestamp")};
        BehaviorFeatureParams p;
        p.aggregates = std::move(aggregates);
        p.levels = std::move(levels);
        p.actions = std::move(actions);
        p.half_life_days = half_life_days;
        p.num_threads = num_threads;
        if (dtype == "float32") {
          p.dtype = BehaviorFeatureParams::Dtype::float32;
        } else if (dtype != "float64") {
          detail::raise<ConfigError>(
              "behavior_features: dtype must be 'float64' or 'float32' (got '", dtype, "')");
        }
        BehaviorTable t;
        {
          py::gil_scoped_release release;
          t = behavior_features(s, log, items, benefit_items, p);
        }
        py::list out;
        for (std::size_t i = 0; i < t.names.size(); ++i) {
          out.append(py::make_tuple(t.names[i], p.dtype == BehaviorFeatureParams::Dtype::float32
                                                    ? to_numpy(std::move(t.float32_columns[i]))
                                                    : to_numpy(std::move(t.columns[i]))));
        }
        return out;
      },
      py::arg("user"), py::arg("benefit"), py::arg("timestamp"), py::arg("log"), py::arg("items"),
      py::arg("benefit_items"), py::arg("aggregates"), py::arg("levels"), py::arg("actions"),
      py::arg("half_life_days"), py::arg("num_threads"), py::arg("dtype") = "float64");
}

}  // namespace perkrec::python
