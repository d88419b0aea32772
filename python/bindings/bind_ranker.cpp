// The ranker (decide/ranker.hpp): ScoreBlend, rank, send time, and explanations
// (decide/explain.hpp). Plumbing only; compute runs with the GIL released.
#include <memory>

#include "bindings.hpp"

namespace perkrec::python {

namespace {

ScoreBlend::Transform parse_transform(const std::string& name) {
  if (name == "identity") return ScoreBlend::Transform::identity;
  if (name == "logit") return ScoreBlend::Transform::logit;
  detail::raise<ConfigError>("ScoreBlend: transform must be \"identity\" or \"logit\" (got \"",
                             name, "\")");
}

// A Python callable f(users int32[n], benefits int32[n]) -> n scores, called with the GIL
// taken. The callable lives in a shared_ptr whose deleter takes the GIL, so copies of the
// std::function are safe without it.
ScoreBlend::Scorer callable_scorer(const py::function& f, const std::string& name) {
  std::shared_ptr<py::object> fn(new py::object(f), [](py::object* o) {
    py::gil_scoped_acquire gil;
    delete o;
  });
  return [fn, name](Span<const Index> users, Span<const Index> benefits, Span<float> out) {
    py::gil_scoped_acquire gil;
    try {
      py::array_t<Index> u(static_cast<py::ssize_t>(users.size()), users.data());
      py::array_t<Index> b(static_cast<py::ssize_t>(benefits.size()), benefits.data());
      py::object result = (*fn)(u, b);
      auto scores = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(result);
      if (!scores || scores.ndim() != 1 ||
          static_cast<std::size_t>(scores.shape(0)) != out.size()) {
        detail::raise<InputError>(
            "ScoreBlend: source \"", name, "\" returned ",
            scores ? std::to_string(scores.size()) : std::string("a non-array"),
            " scores (expected a 1-D array of ", out.size(), ")");
      }
      std::copy(scores.data(), scores.data() + out.size(), out.data());
    } catch (py::error_already_set& e) {
      const std::string what = e.what();
      detail::raise<InputError>("ScoreBlend: source \"", name, "\" raised: ", what);
    }
  };
}

// A scorer for a perkrec model object (GIL-free), or an empty one when `model` is none of them.
ScoreBlend::Scorer model_scorer_of(const py::object& model) {
  if (py::isinstance<Popularity>(model)) return model_scorer(model.cast<const Popularity&>());
  if (py::isinstance<ALS>(model)) return model_scorer(model.cast<const ALS&>());
  if (py::isinstance<BPR>(model)) return model_scorer(model.cast<const BPR&>());
  if (py::isinstance<ItemKNN>(model)) return model_scorer(model.cast<const ItemKNN&>());
  if (py::isinstance<PreferenceModel>(model))
    return model_scorer(model.cast<const PreferenceModel&>());
  detail::raise<InputError>(
      "ScoreBlend: expected a Popularity, ALS, BPR, ItemKNN or PreferenceModel (got ",
      std::string(py::str(py::type::of(model))), ")");
}

ScoreBlend::Scorer matrix_scorer(const py::array& matrix, Index n_users, Index n_benefits,
                                 const std::string& name) {
  return dense_scorer(view_1d<float>(matrix, name.c_str()), n_users, n_benefits, name);
}

py::array pairs_out(const ScoreBlend& blend, const py::array& users, const py::array& benefits,
                    int which) {
  const Span<const Index> u = view_1d<Index>(users, "users");
  const Span<const Index> b = view_1d<Index>(benefits, "benefits");
  const std::size_t k = which == 0 ? 1 : static_cast<std::size_t>(blend.n_sources());
  std::vector<float> out(u.size() * k);
  {
    py::gil_scoped_release release;
    if (which == 0) {
      blend.predict(u, b, out);
    } else if (which == 1) {
      blend.features(u, b, out);
    } else {
      blend.contributions(u, b, out);
    }
  }
  if (which == 0) return to_numpy(std::move(out));
  return to_numpy(std::move(out),
                  {static_cast<py::ssize_t>(u.size()), static_cast<py::ssize_t>(k)});
}

}  // namespace

void bind_ranker(py::module_& m) {
  py::class_<ScoreBlend> blend_cls(m, "ScoreBlend");
  blend_cls
      .def(py::init([](const std::string& params_json) {
             return ScoreBlend(ScoreBlendParams::from_json(
                 parse_json_strict<ConfigError>(params_json, "ScoreBlend")));
           }),
           py::arg("params_json"))
      // keep_alive: the blend holds the matrix / model, which must outlive it.
      .def(
          "add_matrix_source",
          [](ScoreBlend& self, const std::string& name, const py::array& matrix, Index n_users,
             Index n_benefits, const std::string& transform) {
            self.add_source(name, matrix_scorer(matrix, n_users, n_benefits, name),
                            parse_transform(transform));
          },
          py::keep_alive<1, 3>(), py::arg("name"), py::arg("matrix"), py::arg("n_users"),
          py::arg("n_benefits"), py::arg("transform"))
      .def(
          "add_model_source",
          [](ScoreBlend& self, const std::string& name, const py::object& model,
             const std::string& transform) {
            self.add_source(name, model_scorer_of(model), parse_transform(transform));
          },
          py::keep_alive<1, 3>(), py::arg("name"), py::arg("model"), py::arg("transform"))
      .def(
          "add_callable_source",
          [](ScoreBlend& self, const std::string& name, const py::function& f,
             const std::string& transform) {
            self.add_source(name, callable_scorer(f, name), parse_transform(transform));
          },
          py::arg("name"), py::arg("scorer"), py::arg("transform"))
      .def(
          "attach_matrix",
          [](ScoreBlend& self, const std::string& name, const py::array& matrix, Index n_users,
             Index n_benefits) {
            self.attach(name, matrix_scorer(matrix, n_users, n_benefits, name));
          },
          py::keep_alive<1, 3>(), py::arg("name"), py::arg("matrix"), py::arg("n_users"),
          py::arg("n_benefits"))
      .def(
          "attach_model",
          [](ScoreBlend& self, const std::string& name, const py::object& model) {
            self.attach(name, model_scorer_of(model));
          },
          py::keep_alive<1, 3>(), py::arg("name"), py::arg("model"))
      .def(
          "attach_callable",
          [](ScoreBlend& self, const std::string& name, const py::function& f) {
            self.attach(name, callable_scorer(f, name));
          },
          py::arg("name"), py::arg("scorer"))
      .def(
          "fit",
          [](ScoreBlend& self, const py::array& users, const py::array& benefits,
             const py::array& labels, const py::object& progress) {
            const Span<const Index> u = view_1d<Index>(users, "users");
            const Span<const Index> b = view_1d<Index>(benefits, "benefits");
            const Span<const float> y = view_1d<float>(labels, "labels");
            const Callbacks cb = make_callbacks(progress);
            py::gil_scoped_release release;
            self.fit(u, b, y, cb);
          },
          py::arg("users"), py::arg("benefits"), py::arg("labels"), py::arg("progress"))
      .def("set_weights", &ScoreBlend::set_weights, py::arg("bias"), py::arg("weights"))
      .def_property_readonly("bias", &ScoreBlend::bias)
      .def_property_readonly("weights", [](const ScoreBlend& s) { return s.weights(); })
      .def_property_readonly("source_names", [](const ScoreBlend& s) { return s.source_names(); })
      .def_property_readonly("transforms",
                             [](const ScoreBlend& s) {
                               std::vector<std::string> t;
                               for (int i = 0; i < s.n_sources(); ++i)
                                 t.emplace_back(to_string(s.transform(i)));
                               return t;
                             })
      .def_property_readonly("fitted", &ScoreBlend::fitted)
      .def_property_readonly("iterations", &ScoreBlend::iterations)
      .def_property_readonly("training_loss", &ScoreBlend::training_loss)
      .def(
          "predict",
          [](const ScoreBlend& s, const py::array& u, const py::array& b) {
            return pairs_out(s, u, b, 0);
          },
          py::arg("users"), py::arg("benefits"))
      .def(
          "features",
          [](const ScoreBlend& s, const py::array& u, const py::array& b) {
            return pairs_out(s, u, b, 1);
          },
          py::arg("users"), py::arg("benefits"))
      .def(
          "contributions",
          [](const ScoreBlend& s, const py::array& u, const py::array& b) {
            return pairs_out(s, u, b, 2);
          },
          py::arg("users"), py::arg("benefits"))
      .def("to_json", [](const ScoreBlend& s) { return s.to_json().dump(); })
      .def_static(
          "from_json",
          [](const std::string& text) {
            return ScoreBlend::from_json(
                parse_json_strict<ConfigError>(text, "ScoreBlend::from_json"));
          },
          py::arg("text"));

  m.def(
      "check_ranker_params",
      [](const std::string& text) {
        return RankerParams::from_json(parse_json_strict<ConfigError>(text, "RankerParams"))
            .to_json()
            .dump();
      },
      py::arg("text"));

  m.def(
      "rank",
      [](const std::optional<py::array>& probability, const std::optional<py::array>& share,
         const std::optional<py::array>& user_value, const std::optional<py::array>& benefit_value,
         const std::optional<py::array>& cost, const EligibilityMasks& masks,
         const std::string& params_json, const ScoreBlend* blend, bool diagnostics) {
        const RankerParams p =
            RankerParams::from_json(parse_json_strict<ConfigError>(params_json, "rank"));
        RankInputs in;
        in.redemption_probability = view_1d_or_empty<float>(probability, "redemption_probability");
        in.incremental_share = view_1d_or_empty<float>(share, "incremental_share");
        in.member_value = view_1d_or_empty<float>(user_value, "user_value");
        in.benefit_value = view_1d_or_empty<float>(benefit_value, "benefit_value");
        in.cost_per_redemption = view_1d_or_empty<float>(cost, "cost_per_redemption");
        Candidates c;
        RankDiagnostics d;
        {
          py::gil_scoped_release release;
          c = blend != nullptr ? rank(*blend, in, masks, p, diagnostics ? &d : nullptr)
                               : rank(in, masks, p, diagnostics ? &d : nullptr);
        }
        py::object diag = py::none();
        if (diagnostics) {
          py::dict dd;
          dd["best_ineligible"] = to_numpy(std::move(d.best_ineligible));
          dd["best_ineligible_key"] = to_numpy(std::move(d.best_ineligible_key));
          dd["best_ineligible_rule"] = to_numpy(std::move(d.best_ineligible_rule));
          dd["n_eligible"] = to_numpy(std::move(d.n_eligible));
          diag = dd;
        }
        return py::make_tuple(std::move(c), diag);
      },
      py::arg("probability"), py::arg("share"), py::arg("user_value"), py::arg("benefit_value"),
      py::arg("cost"), py::arg("masks"), py::arg("params_json"), py::arg("blend"),
      py::arg("diagnostics"));

  m.def(
      "hour_of_week", [](Timestamp t) { return hour_of_week(t); }, py::arg("t"));
  m.def(
      "schedule_batch",
      [](const PreferenceModel* pref, const py::array& users, Timestamp plan_time,
         const py::array& validity_days, const std::optional<std::pair<int, int>>& quiet_hours,
         const std::optional<py::array>& utc_offset_hours, int default_hour, int min_validity_days,
         int num_threads) {
        const Span<const Index> mem = view_1d<Index>(users, "users");
        const Span<const std::int32_t> val = view_1d<std::int32_t>(validity_days, "validity_days");
        const Span<const float> off = view_1d_or_empty<float>(utc_offset_hours, "utc_offset_hours");
        ScheduleParams params;
        params.default_hour = default_hour;
        params.min_validity_days = min_validity_days;
        QuietHours quiet;
        if (quiet_hours) quiet = QuietHours{quiet_hours->first, quiet_hours->second};
        const std::size_t n = mem.size();
        std::vector<Timestamp> at(n);
        std::vector<std::int32_t> days(n);
        std::vector<std::uint8_t> from(n);
        {
          py::gil_scoped_release release;
          schedule_batch(pref, mem, plan_time, val, quiet_hours ? &quiet : nullptr, off, at, days,
                         from, params, num_threads);
        }
        return py::make_tuple(to_numpy(std::move(at)), to_numpy(std::move(days)),
                              to_numpy(std::move(from)));
      },
      py::arg("pref"), py::arg("users"), py::arg("plan_time"), py::arg("validity_days"),
      py::arg("quiet_hours"), py::arg("utc_offset_hours"), py::arg("default_hour"),
      py::arg("min_validity_days"), py::arg("num_threads"));
  m.def(
      "quiet_hours_next_allowed",
      [](int start_hour, int end_hour, const py::array& times,
         const std::optional<py::array>& utc_offset_hours) {
        const QuietHours q{start_hour, end_hour};
        q.validate();
        const Span<const Timestamp> t = view_1d<Timestamp>(times, "times");
        const Span<const float> off = view_1d_or_empty<float>(utc_offset_hours, "utc_offset_hours");
        if (!off.empty() && off.size() != t.size()) {
          detail::raise<InputError>("quiet_hours: utc_offset_hours has ", off.size(),
                                    " entries (expected ", t.size(), ")");
        }
        std::vector<Timestamp> out(t.size());
        for (std::size_t i = 0; i < t.size(); ++i)
          out[i] = q.next_allowed(t[i], off.empty() ? 0.0 : off[i]);
        return to_numpy(std::move(out));
      },
      py::arg("start_hour"), py::arg("end_hour"), py::arg("times"), py::arg("utc_offset_hours"));

  m.def(
      "explanation_dimensions",
      [](const PreferenceModel& pref, const Catalog& catalog) {
        ExplanationContext ctx = ExplanationContext::make(&pref, catalog);
        return py::make_tuple(ctx.dimension_names, to_numpy(std::move(ctx.benefit_dim_offsets)),
                              to_numpy(std::move(ctx.benefit_dims)));
      },
      py::arg("pref"), py::arg("catalog"),
      "The model's dimension names and, per catalog benefit, its dimensions (CSR offsets, "
      "indices).");
  m.def(
      "explain_batch",
      [](const py::dict& context, const py::dict& rows, int num_threads,
         const PreferenceModel* pref, const Catalog* catalog) {
        // With a model, its arrays are borrowed (no copy) and the catalog's dimensions matched.
        ExplanationContext ctx;
        if (pref != nullptr) {
          if (catalog == nullptr)
            detail::raise<InputError>("explain_batch: a preference model needs its catalog");
          py::gil_scoped_release release;
          ctx = ExplanationContext::make(pref, *catalog);
        }
        auto arr = [](const py::dict& d, const char* key) -> std::optional<py::array> {
          if (!d.contains(key) || d[key].is_none()) return std::nullopt;
          return d[key].cast<py::array>();
        };
        auto strings = [](const py::dict& d, const char* key) {
          return d.contains(key) && !d[key].is_none() ? d[key].cast<std::vector<std::string>>()
                                                      : std::vector<std::string>{};
        };
        const std::optional<py::array> pref_arr = arr(context, "preference"),
                                       lo = arr(context, "lower"), hi = arr(context, "upper"),
                                       offs = arr(context, "benefit_dim_offsets"),
                                       dims = arr(context, "benefit_dims");
        if (pref_arr) {
          ctx.preference = view_1d<float>(*pref_arr, "preference");
          ctx.lower = view_1d_or_empty<float>(lo, "lower");
          ctx.upper = view_1d_or_empty<float>(hi, "upper");
          ctx.dimension_names = strings(context, "dimension_names");
        }
        if (offs) {
          const Span<const std::int32_t> o = view_1d<std::int32_t>(*offs, "benefit_dim_offsets");
          ctx.benefit_dim_offsets.assign(o.begin(), o.end());
        }
        if (dims) {
          const Span<const std::int32_t> d = view_1d<std::int32_t>(*dims, "benefit_dims");
          ctx.benefit_dims.assign(d.begin(), d.end());
        }
        ctx.source_names = strings(context, "source_names");
        if (context.contains("benefit_ids")) ctx.benefit_ids = strings(context, "benefit_ids");
        if (context.contains("user_ids")) ctx.member_ids = strings(context, "user_ids");
        ctx.rule_names = strings(context, "rule_names");
        if (context.contains("top_dimensions"))
          ctx.top_dimensions = context["top_dimensions"].cast<int>();
        const std::optional<py::array> users = arr(rows, "users"), benefits = arr(rows, "benefits"),
                                       prob = arr(rows, "probability"), value = arr(rows, "value"),
                                       cost = arr(rows, "cost"),
                                       contrib = arr(rows, "contributions"),
                                       runner = arr(rows, "runner_up"),
                                       reason = arr(rows, "runner_up_reason"),
                                       best = arr(rows, "best_ineligible"),
                                       rule = arr(rows, "best_ineligible_rule");
        if (!users || !benefits)
          detail::raise<InputError>("explain_batch: rows need users and benefits");
        ExplanationBatch batch;
        batch.members = view_1d<Index>(*users, "users");
        batch.benefits = view_1d<Index>(*benefits, "benefits");
        batch.probability = view_1d_or_empty<float>(prob, "probability");
        batch.value = view_1d_or_empty<float>(value, "value");
        batch.cost = view_1d_or_empty<float>(cost, "cost");
        batch.contributions = view_1d_or_empty<float>(contrib, "contributions");
        batch.runner_up = view_1d_or_empty<Index>(runner, "runner_up");
        batch.runner_up_reason = view_1d_or_empty<std::uint8_t>(reason, "runner_up_reason");
        batch.best_ineligible = view_1d_or_empty<Index>(best, "best_ineligible");
        batch.best_ineligible_rule = view_1d_or_empty<std::int32_t>(rule, "best_ineligible_rule");
        std::vector<std::string> texts;
        {
          py::gil_scoped_release release;
          texts = explain_batch(ctx, batch, num_threads);
        }
        py::list out(texts.size());
        for (std::size_t i = 0; i < texts.size(); ++i) {
          out[i] = py::reinterpret_steal<py::object>(PyUnicode_FromStringAndSize(
              texts[i].data(), static_cast<py::ssize_t>(texts[i].size())));
        }
        return out;
      },
      py::arg("context"), py::arg("rows"), py::arg("num_threads"), py::arg("pref") = nullptr,
      py::arg("catalog") = nullptr,
      "One JSON text per plan row (see decide/explain.hpp); context and rows are dicts of arrays.");
}

}  // namespace perkrec::python
