// IdMap, Catalog, UserTable, EventLog, splits and benefit dimensions.
#include <limits>
#include <map>
#include "bindings.hpp"

namespace perkrec::python {

namespace {

IdMap::Missing missing_policy(const std::string& name) {
  if (name == "raise") return IdMap::Missing::raise;
  if (name == "minus_one") return IdMap::Missing::minus_one;
  detail::raise<InputError>("IdMap.lookup: missing must be 'raise' or 'minus_one' (got '", name,
                            "')");
}

void bind_id_map(py::module_& m) {
  py::class_<IdMap> cls(m, "IdMap");
  cls.def(py::init<>())
      .def_static("from_integers",
                  [](const py::array& ids) {
                    return IdMap::from_integers(view_1d<std::int64_t>(ids, "ids"));
                  })
      .def_static("from_strings", &IdMap::from_strings)
      .def_static("range", &IdMap::range)
      .def("__len__", &IdMap::size)
      .def_property_readonly("key_type",
                             [](const IdMap& self) {
                               switch (self.key_type()) {
                                 case IdMap::KeyType::integer:
                                   return "integer";
                                 case IdMap::KeyType::string:
                                   return "string";
                                 default:
                                   return "empty";
                               }
                             })
      .def("lookup_integers",
           [](const IdMap& self, const py::array& ids, const std::string& missing) {
             const Span<const std::int64_t> in = view_1d<std::int64_t>(ids, "ids");
             detail::LargeVector<Index> out(in.size());  // written in full: no zero fill
             const IdMap::Missing policy = missing_policy(missing);
             {
               py::gil_scoped_release release;
               self.lookup(in, out, policy);
             }
             return to_numpy(std::move(out));
           })
      .def("lookup_strings",
           [](const IdMap& self, const std::vector<std::string>& ids, const std::string& missing) {
             std::vector<Index> out(ids.size());
             const IdMap::Missing policy = missing_policy(missing);
             {
               py::gil_scoped_release release;
               self.lookup(ids, out, policy);
             }
             return to_numpy(std::move(out));
           })
      .def("lookup_or_add_integers",
           [](IdMap& self, const py::array& ids) {
             const Span<const std::int64_t> in = view_1d<std::int64_t>(ids, "ids");
             std::vector<Index> out(in.size());
             self.lookup_or_add(in, out);
             return to_numpy(std::move(out));
           })
      .def("lookup_or_add_strings",
           [](IdMap& self, const std::vector<std::string>& ids) {
             std::vector<Index> out(ids.size());
             self.lookup_or_add(ids, out);
             return to_numpy(std::move(out));
           })
      .def("integers",
           [](const IdMap& self) { return to_numpy(std::vector<std::int64_t>(self.integers())); })
      .def("strings", [](const IdMap& self) { return self.strings(); })
      .def("__eq__", [](const IdMap& a, const IdMap& b) { return a == b; });
  def_serialization<IdMap>(cls);
}

py::dict catalog_columns(const Catalog& c) {
  const auto n = static_cast<std::size_t>(c.size());
  std::vector<std::string> ids(n), kinds(n), scopes(n), scope_values(n), channels(n);
  std::vector<double> face(n), threshold(n), rate(n), cost(n);
  std::vector<std::int32_t> validity(n);
  std::vector<std::int64_t> inventory(n);
  std::vector<std::vector<std::string>> scenarios(n), tags(n);
  for (std::size_t i = 0; i < n; ++i) {
    const Benefit& b = c[static_cast<Index>(i)];
    ids[i] = b.id;
    kinds[i] = to_string(b.kind);
    face[i] = b.face_value;
    threshold[i] = b.threshold;
    rate[i] = b.discount_rate;
    cost[i] = b.cost;
    validity[i] = b.validity_days;
    scopes[i] = to_string(b.scope);
    scope_values[i] = b.scope_value;
    scenarios[i] = b.scenarios;
    channels[i] = b.channel;
    inventory[i] = b.inventory;
    tags[i] = b.tags;
  }
  py::dict out;
  out["id"] = ids;
  out["kind"] = kinds;
  out["face_value"] = to_numpy(std::move(face));
  out["threshold"] = to_numpy(std::move(threshold));
  out["discount_rate"] = to_numpy(std::move(rate));
  out["cost"] = to_numpy(std::move(cost));
  out["validity_days"] = to_numpy(std::move(validity));
  out["scope"] = scopes;
  out["scope_value"] = scope_values;
  out["scenarios"] = scenarios;
  out["channel"] = channels;
  out["inventory"] = to_numpy(std::move(inventory));
  out["tags"] = tags;
  // Free attributes: name -> one entry per benefit (None / NaN where a benefit lacks it).
  std::map<std::string, std::vector<std::optional<std::string>>> text;
  std::map<std::string, std::vector<double>> numeric;
  for (std::size_t i = 0; i < n; ++i) {
    const Benefit& b = c[static_cast<Index>(i)];
    for (const auto& [name, value] : b.attributes) {
      auto& col = text[name];
      col.resize(n);
      col[i] = value;
    }
    for (const auto& [name, value] : b.numeric_attributes) {
      auto& col = numeric[name];
      col.resize(n, std::numeric_limits<double>::quiet_NaN());
      col[i] = value;
    }
  }
  py::dict numeric_out;
  for (auto& [name, col] : numeric) numeric_out[py::str(name)] = to_numpy(std::move(col));
  out["attributes"] = text;
  out["numeric_attributes"] = numeric_out;
  return out;
}

// Builds a catalog from columns; optional columns may be None. Rows are validated in C++
// (the message names the row), all or nothing.
Catalog catalog_from_columns(
    const std::vector<std::string>& ids, const std::optional<std::vector<std::string>>& kinds,
    const std::optional<std::vector<std::string>>& discounts, const std::optional<py::array>& face,
    const std::optional<py::array>& threshold, const std::optional<py::array>& rate,
    const std::optional<py::array>& cost, const std::optional<py::array>& validity,
    const std::optional<std::vector<std::string>>& scopes,
    const std::optional<std::vector<std::string>>& scope_values,
    const std::optional<std::vector<std::vector<std::string>>>& scenarios,
    const std::optional<std::vector<std::string>>& channels,
    const std::optional<py::array>& inventory,
    const std::optional<std::vector<std::vector<std::string>>>& tags,
    const std::map<std::string, std::vector<std::optional<std::string>>>& text_attributes,
    const std::map<std::string, std::vector<double>>& numeric_attributes) {
  const std::size_t n = ids.size();
  auto check = [&](std::size_t len, const char* name) {
    if (len != n)
      detail::raise<InputError>("Catalog.from_frame: column '", name, "' has ", len,
                                " rows (expected ", n, ")");
  };
  const Span<const double> f = view_1d_or_empty<double>(face, "face_value");
  const Span<const double> t = view_1d_or_empty<double>(threshold, "threshold");
  const Span<const double> r = view_1d_or_empty<double>(rate, "discount_rate");
  const Span<const double> c = view_1d_or_empty<double>(cost, "cost");
  const Span<const std::int32_t> v = view_1d_or_empty<std::int32_t>(validity, "validity_days");
  const Span<const std::int64_t> inv = view_1d_or_empty<std::int64_t>(inventory, "inventory");
  if (kinds) check(kinds->size(), "kind");
  if (discounts) check(discounts->size(), "discount");
  if (face) check(f.size(), "face_value");
  if (threshold) check(t.size(), "threshold");
  if (rate) check(r.size(), "discount_rate");
  if (cost) check(c.size(), "cost");
  if (validity) check(v.size(), "validity_days");
  if (scopes) check(scopes->size(), "scope");
  if (scope_values) check(scope_values->size(), "scope_value");
  if (scenarios) check(scenarios->size(), "scenarios");
  if (channels) check(channels->size(), "channel");
  if (inventory) check(inv.size(), "inventory");
  if (tags) check(tags->size(), "tags");
  for (const auto& [name, col] : text_attributes) check(col.size(), name.c_str());
  for (const auto& [name, col] : numeric_attributes) check(col.size(), name.c_str());
  std::vector<Benefit> benefits(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::string row = "Catalog.from_frame: row " + std::to_string(i);
    Benefit& b = benefits[i];
    b.id = ids[i];
    if (discounts && !(*discounts)[i].empty()) {
      try {
        apply_discount(parse_discount((*discounts)[i]), b);
      } catch (const InputError& e) {
        detail::raise<InputError>(row, ": ", e.what());
      }
    }
    if (kinds && !(*kinds)[i].empty()) b.kind = parse_benefit_kind((*kinds)[i], row);
    // Explicit numeric columns override what a discount notation filled in, unless NaN.
    auto take = [&](const Span<const double>& col, double& field) {
      if (!col.empty() && !std::isnan(col[i])) field = col[i];
    };
    take(f, b.face_value);
    take(t, b.threshold);
    take(r, b.discount_rate);
    take(c, b.cost);
    if (!v.empty()) b.validity_days = v[i];
    if (scopes && !(*scopes)[i].empty()) b.scope = parse_scope((*scopes)[i], row);
    if (scope_values) b.scope_value = (*scope_values)[i];
    if (scenarios) b.scenarios = (*scenarios)[i];
    if (channels) b.channel = (*channels)[i];
    if (!inv.empty()) b.inventory = inv[i];
    if (tags) {
      for (const auto& tag : (*tags)[i]) b.tags.push_back(tag);
    }
    // Missing attribute values (None, NaN) leave the attribute out for this benefit.
    for (const auto& [name, col] : text_attributes) {
      if (col[i]) b.attributes[name] = *col[i];
    }
    for (const auto& [name, col] : numeric_attributes) {
      if (!std::isnan(col[i])) b.numeric_attributes[name] = col[i];
    }
  }
  return Catalog(std::move(benefits));
}

void bind_catalog(py::module_& m) {
  py::class_<Catalog> cls(m, "Catalog");
  cls.def(py::init<>())
      .def_static("from_json", &Catalog::from_json, py::arg("text"))
      .def("to_json", &Catalog::to_json, py::arg("indent") = 2)
      .def_static("from_columns", &catalog_from_columns)
      .def("columns", &catalog_columns)
      .def("__len__", &Catalog::size)
      .def("find", [](const Catalog& c, const std::string& id) { return c.find(id); })
      .def_property_readonly("ids", [](const Catalog& c) { return c.ids(); })
      .def("__eq__", [](const Catalog& a, const Catalog& b) { return a == b; });
  def_serialization<Catalog>(cls);

  m.def(
      "parse_discounts",
      [](const std::vector<std::string>& texts, bool coerce) {
        const std::size_t n = texts.size();
        std::vector<std::int8_t> kind(n);
        std::vector<double> threshold(n), face(n), rate(n);
        std::vector<std::uint8_t> fixed(n), ok(n);
        for (std::size_t i = 0; i < n; ++i) {
          try {
            const ParsedDiscount d = parse_discount(texts[i]);
            kind[i] = static_cast<std::int8_t>(d.kind);
            threshold[i] = d.threshold;
            face[i] = d.face_value;
            rate[i] = d.discount_rate;
            fixed[i] = d.fixed_price;
            ok[i] = 1;
          } catch (const InputError& e) {
            if (!coerce) detail::raise<InputError>("parse_discounts: row ", i, ": ", e.what());
            kind[i] = -1;
            threshold[i] = face[i] = rate[i] = std::nan("");
          }
        }
        py::dict out;
        out["kind"] = to_numpy(std::move(kind));
        out["threshold"] = to_numpy(std::move(threshold));
        out["face_value"] = to_numpy(std::move(face));
        out["discount_rate"] = to_numpy(std::move(rate));
        out["fixed_price"] = to_numpy(std::move(fixed));
        out["parsed"] = to_numpy(std::move(ok));
        return out;
      },
      py::arg("texts"), py::arg("coerce") = false);
  std::vector<std::string> kinds, scopes;
  for (int k = 0; k < kNumBenefitKinds; ++k)
    kinds.emplace_back(to_string(static_cast<BenefitKind>(k)));
  for (int s = 0; s < kNumScopes; ++s) scopes.emplace_back(to_string(static_cast<Scope>(s)));
  m.attr("BENEFIT_KINDS") = kinds;
  m.attr("SCOPES") = scopes;

  py::class_<BenefitDimensions>(m, "BenefitDimensions")
      .def_static("for_catalog", [](const Catalog& c) { return BenefitDimensions::for_catalog(c); })
      .def_property_readonly("names", &BenefitDimensions::names)
      .def("encode", [](const BenefitDimensions& d, const Catalog& c) {
        // Benefits x dimensions 0/1 matrix.
        const auto rows = static_cast<std::size_t>(c.size());
        const auto cols = static_cast<std::size_t>(d.size());
        std::vector<std::uint8_t> out(rows * cols, 0);
        std::vector<int> active;
        for (std::size_t b = 0; b < rows; ++b) {
          active.clear();
          d.encode(c[static_cast<Index>(b)], active);
          for (int k : active) out[b * cols + static_cast<std::size_t>(k)] = 1;
        }
        return to_numpy(std::move(out),
                        {static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(cols)});
      });
}

void bind_user_table(py::module_& m) {
  py::class_<UserTable> cls(m, "UserTable");
  cls.def(py::init<IdMap>(), py::arg("users"))
      .def("__len__", &UserTable::size)
      .def_property_readonly("users", [](const UserTable& t) { return t.users(); })
      .def("add_numeric",
           [](UserTable& t, const std::string& name, const py::array& values) {
             const Span<const double> v = view_1d<double>(values, "values");
             t.add_numeric(name, std::vector<double>(v.begin(), v.end()));
           })
      .def("add_categorical",
           [](UserTable& t, const std::string& name, const py::array& codes,
              std::vector<std::string> categories) {
             const Span<const std::int32_t> c = view_1d<std::int32_t>(codes, "codes");
             t.add_categorical(name, std::vector<std::int32_t>(c.begin(), c.end()),
                               std::move(categories));
           })
      .def("names", &UserTable::names)
      .def("type",
           [](const UserTable& t, const std::string& name) {
             return t.type(name) == UserTable::ColumnType::numeric ? "numeric" : "categorical";
           })
      .def("numeric",
           [](const UserTable& t, const std::string& name) {
             return to_numpy(std::vector<double>(t.numeric(name)));
           })
      .def("codes",
           [](const UserTable& t, const std::string& name) {
             return to_numpy(std::vector<std::int32_t>(t.codes(name)));
           })
      .def("categories", &UserTable::categories)
      .def("__eq__", [](const UserTable& a, const UserTable& b) { return a == b; });
  def_serialization<UserTable>(cls);
}

void bind_event_log(py::module_& m) {
  py::class_<EventLog> cls(m, "EventLog");
  cls.def(py::init<>())
      .def_static(
          "from_arrays",
          [](const py::array& user, const py::array& benefit, const py::array& type,
             const py::array& timestamp, const std::optional<py::array>& channel,
             const std::optional<py::array>& order_amount,
             const std::optional<py::array>& propensity, const std::optional<py::array>& control,
             Index n_users, Index n_benefits, std::vector<std::string> channel_names,
             int num_threads) {
            EventColumns c;
            c.user = view_1d<Index>(user, "user");
            c.benefit = view_1d<Index>(benefit, "benefit");
            c.type = view_1d<std::uint8_t>(type, "event_type");
            c.timestamp = view_1d<Timestamp>(timestamp, "timestamp");
            c.channel = view_1d_or_empty<std::int16_t>(channel, "channel");
            c.order_amount = view_1d_or_empty<float>(order_amount, "order_amount");
            c.propensity = view_1d_or_empty<float>(propensity, "propensity");
            c.control = view_1d_or_empty<std::uint8_t>(control, "control");
            py::gil_scoped_release release;
            return EventLog::from_columns(c, n_users, n_benefits, std::move(channel_names),
                                          num_threads);
          },
          py::arg("user"), py::arg("benefit"), py::arg("event_type"), py::arg("timestamp"),
          py::arg("channel"), py::arg("order_amount"), py::arg("propensity"), py::arg("control"),
          py::arg("n_users"), py::arg("n_benefits"), py::arg("channel_names"),
          py::arg("num_threads"))
      .def("__len__", &EventLog::size)
      .def_property_readonly("n_users", &EventLog::n_users)
      .def_property_readonly("n_benefits", &EventLog::n_benefits)
      .def_property_readonly("channel_names", &EventLog::channel_names)
      .def_property_readonly("min_time", &EventLog::min_time)
      .def_property_readonly("max_time", &EventLog::max_time)
      .def_property_readonly("has_propensity", &EventLog::has_propensity)
      .def_property_readonly("has_control", &EventLog::has_control)
      .def_property_readonly("user_ids", [](const EventLog& e) { return e.user_ids(); })
      .def_property_readonly("benefit_ids", [](const EventLog& e) { return e.benefit_ids(); })
      .def("set_ids", &EventLog::set_ids)
      .def("count_by_type",
           [](const EventLog& e) {
             const auto c = e.count_by_type();
             return std::vector<Offset>(c.begin(), c.end());
           })
      // Zero-copy, read-only views that keep the log alive.
      .def(
          "users",
          [](py::object self) { return readonly_view(self.cast<const EventLog&>().users(), self); })
      .def("benefits",
           [](py::object self) {
             return readonly_view(self.cast<const EventLog&>().benefits(), self);
           })
      .def(
          "types",
          [](py::object self) { return readonly_view(self.cast<const EventLog&>().types(), self); })
      .def("timestamps",
           [](py::object self) {
             return readonly_view(self.cast<const EventLog&>().timestamps(), self);
           })
      .def("channels",
           [](py::object self) {
             return readonly_view(self.cast<const EventLog&>().channels(), self);
           })
      .def("order_amounts",
           [](py::object self) {
             return readonly_view(self.cast<const EventLog&>().order_amounts(), self);
           })
      .def("propensities",
           [](py::object self) {
             return readonly_view(self.cast<const EventLog&>().propensities(), self);
           })
      .def("control",
           [](py::object self) {
             return readonly_view(self.cast<const EventLog&>().control(), self);
           })
      .def("user_offsets",
           [](py::object self) {
             return readonly_view(Span<const Offset>(self.cast<const EventLog&>().user_offsets()),
                                  self);
           })
      .def("filter", [](const EventLog& e, const py::array& keep, int num_threads) {
        const Span<const std::uint8_t> k = view_1d<std::uint8_t>(keep, "keep");
        py::gil_scoped_release release;
        return e.filter(k, num_threads);
      });
  def_serialization<EventLog>(cls);

  m.def("split_by_time", [](const EventLog& log, Timestamp cut, int num_threads) {
    py::gil_scoped_release release;
    Split s = split_by_time(log, cut, num_threads);
    return std::make_pair(std::move(s.train), std::move(s.test));
  });
  m.def("split_leave_last_k", [](const EventLog& log, int k, std::uint32_t mask, int num_threads) {
    py::gil_scoped_release release;
    Split s = split_leave_last_k(log, k, mask, num_threads);
    return std::make_pair(std::move(s.train), std::move(s.test));
  });
  m.def("split_random_users",
        [](const EventLog& log, double fraction, std::uint64_t seed, int num_threads) {
          py::gil_scoped_release release;
          Split s = split_random_users(log, fraction, seed, num_threads);
          return std::make_pair(std::move(s.train), std::move(s.test));
        });
  std::vector<std::string> types;
  for (int t = 0; t < kNumEventTypes; ++t) types.emplace_back(to_string(static_cast<EventType>(t)));
  m.attr("EVENT_TYPES") = types;
}

}  // namespace

void bind_data(py::module_& m) {
  bind_id_map(m);
  bind_catalog(m);
  bind_user_table(m);
  bind_event_log(m);
}

}  // namespace perkrec::python
