// Definitions for benefit_planner.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "perkrec/core/math.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/decide/benefit_planner.hpp"
#include "perkrec/decide/calibration.hpp"

namespace perkrec {

namespace detail::benefit_planner {

inline ModelFormatError bad_config(const std::string& what) {
  return ModelFormatError(ModelFormatCode::invalid_content, "BenefitPlanner: config: " + what);
}

/// One column of the frame perkrec.pipeline.with_attributes builds, as a function of the
/// row's member u, benefit b and time t. Spans point into the PlanFrame or the user table.
struct Source {
  enum class Type { integer, numeric, categorical };
  enum class Key { member, benefit, member_index, benefit_index, timestamp, weekday, hour, tenure };
  Type type = Type::integer;
  Key key = Key::member;
  Span<const std::int64_t> integers;  ///< Key::benefit
  Span<const double> numerics;        ///< Key::member / benefit; tenure: signup times
  Span<const std::int32_t> codes;     ///< Key::member / benefit; -1 = missing
  const std::vector<std::string>* dictionary = nullptr;

  std::int64_t integer(std::size_t u, std::size_t b, Timestamp t) const {
    const std::int64_t days = floor_div(t, 86400);
    switch (key) {
      case Key::member_index:
        return static_cast<std::int64_t>(u);
      case Key::benefit_index:
        return static_cast<std::int64_t>(b);
      case Key::timestamp:
        return t;
      case Key::weekday:
        return ((days % 7) + 7 + 3) % 7;  // 1970-01-01 was a Thursday; Monday = 0
      case Key::hour:
        return (t - days * 86400) / 3600;
      default:
        return integers[b];
    }
  }
  double numeric(std::size_t u, std::size_t b, Timestamp t) const {
    if (type == Type::integer) return static_cast<double>(integer(u, b, t));
    if (key == Key::tenure) return (static_cast<double>(t) - numerics[u]) / 86400.0;
    return key == Key::member ? numerics[u] : numerics[b];
  }
  std::int32_t code(std::size_t u, std::size_t b) const {
    return key == Key::member ? codes[u] : codes[b];
  }
};

}  // namespace detail::benefit_planner

namespace detail {

/// The catalog's columns and where every column of the frame comes from (later assignments
/// replace earlier ones, as in pandas).
struct PlanFrame {
  std::vector<std::int64_t> validity, band;
  std::vector<double> face, threshold, discount;
  std::vector<std::int32_t> benefit_codes, segment_codes;
  std::vector<std::string> kind, scope, channel, segment_names;
  std::map<std::string, benefit_planner::Source> sources;

  PlanFrame(const Catalog& catalog, const UserTable* users,
            const SegmentAssignment* segments = nullptr) {
    using benefit_planner::Source;
    for (Index b = 0; b < catalog.size(); ++b) {
      const Benefit& x = catalog[b];
      benefit_codes.push_back(static_cast<std::int32_t>(b));
      kind.emplace_back(to_string(x.kind));
      scope.emplace_back(to_string(x.scope));
      channel.push_back(x.channel);
      face.push_back(x.face_value);
      threshold.push_back(x.threshold);
      discount.push_back(x.discount_rate);
      validity.push_back(x.validity_days);
      band.push_back(
          std::upper_bound(std::begin(kFaceValueBands), std::end(kFaceValueBands), x.face_value) -
          std::begin(kFaceValueBands));
    }
    auto keyed = [](Source::Type type, Source::Key key) {
      Source s;
      s.type = type;
      s.key = key;
      return s;
    };
    auto categorical = [&](const std::vector<std::string>& dictionary) {
      Source s = keyed(Source::Type::categorical, Source::Key::benefit);
      s.codes = benefit_codes;
      s.dictionary = &dictionary;
      return s;
    };
    auto numeric = [&](const std::vector<double>& v) {
      Source s = keyed(Source::Type::numeric, Source::Key::benefit);
      s.numerics = v;
      return s;
    };
    auto integer = [&](const std::vector<std::int64_t>& v) {
      Source s = keyed(Source::Type::integer, Source::Key::benefit);
      s.integers = v;
      return s;
    };
    sources["user"] = keyed(Source::Type::integer, Source::Key::member_index);
    sources["benefit"] = keyed(Source::Type::integer, Source::Key::benefit_index);
    sources["timestamp"] = keyed(Source::Type::integer, Source::Key::timestamp);
    sources["kind"] = categorical(kind);
    sources["face_value"] = numeric(face);
    sources["threshold"] = numeric(threshold);
    sources["discount_rate"] = numeric(discount);
    sources["validity_days"] = integer(validity);
    sources["scope"] = categorical(scope);
    sources["channel"] = categorical(channel);
    sources["face_value_band"] = integer(band);
    if (users != nullptr) {
      for (const std::string& name : users->names()) {
        Source s = keyed(Source::Type::numeric, Source::Key::member);
        if (users->type(name) == UserTable::ColumnType::numeric) {
          s.numerics = users->numeric(name);
          if (name == "signup_time") {
            s.key = Source::Key::tenure;
            sources["tenure_days"] = s;
            continue;
          }
        } else {
          s.type = Source::Type::categorical;
          s.codes = users->codes(name);
          s.dictionary = &users->categories(name);
        }
        sources[name] = s;
      }
    }
    if (segments != nullptr) {  // after the user table's columns: the planner's column wins
      segment_codes = segments->codes;
      segment_names = segments->names;
      Source s = keyed(Source::Type::categorical, Source::Key::member);
      s.codes = Span<const std::int32_t>(segment_codes);
      s.dictionary = &segment_names;
      sources[kMemberSegmentColumn] = s;
    }
    sources["weekday"] = keyed(Source::Type::integer, Source::Key::weekday);
    sources["hour"] = keyed(Source::Type::integer, Source::Key::hour);
  }
  PlanFrame(const PlanFrame&) = delete;
  PlanFrame& operator=(const PlanFrame&) = delete;
};

}  // namespace detail

namespace detail::benefit_planner {

/// The encoder's input columns for rows members [begin, end) x every benefit (member-major)
/// at time t, typed as perkrec.FeatureEncoder._columns types the frame's columns.
class BlockColumns {
 public:
  BlockColumns(const FeatureEncoder& encoder, const PlanFrame& frame, Index begin, Index end,
               Index n_benefits, Timestamp t)
      : BlockColumns(encoder, frame,
                     static_cast<std::size_t>(end - begin) * static_cast<std::size_t>(n_benefits),
                     [u0 = static_cast<std::size_t>(begin),
                      nb = static_cast<std::size_t>(n_benefits), t](std::size_t r) {
                       return RowKey{u0 + r / nb, r % nb, t};
                     }) {}
  /// Any `rows` rows: key(r) gives row r's member, benefit and time (the fit's training rows).
  struct RowKey {
    std::size_t user, benefit;
    Timestamp time;
  };
  template <class Key>
  BlockColumns(const FeatureEncoder& encoder, const PlanFrame& frame, std::size_t rows, Key key) {
    columns.rows = static_cast<Offset>(rows);
    auto add_integer = [&](const std::string& name, const Source& s) {
      if (columns.find_integer(name) != nullptr) return;
      integers_.emplace_back(rows);
      auto& v = integers_.back();
      for (std::size_t r = 0; r < rows; ++r) {
        const RowKey k = key(r);
        v[r] = s.integer(k.user, k.benefit, k.time);
      }
      columns.integers.push_back({name, Span<const std::int64_t>(v)});
    };
    for (const char* name : {"user", "benefit", "timestamp"})
      add_integer(name, frame.sources.at(name));
    for (const FeatureField& f : encoder.spec().fields) {
      // History and behaviour fields read the user, benefit and timestamp columns above.
      if (f.kind == FeatureField::Kind::history || f.kind == FeatureField::Kind::behavior ||
          f.kind == FeatureField::Kind::behavior_cf)
        continue;
      const std::string col = f.column.empty() ? f.name : f.column;
      const auto it = frame.sources.find(col);
      if (it == frame.sources.end()) continue;  // the encoder names the missing column
      const Source& s = it->second;
      if (f.kind == FeatureField::Kind::numeric) {
        if (columns.find_numeric(col) != nullptr) continue;
        if (s.type == Source::Type::categorical) {
          detail::raise<InputError>("BenefitPlanner: field '", f.name,
                                    "': numeric field over the categorical column '", col, "'");
        }
        numerics_.emplace_back(rows);
        auto& v = numerics_.back();
        for (std::size_t r = 0; r < rows; ++r) {
          const RowKey k = key(r);
          v[r] = s.numeric(k.user, k.benefit, k.time);
        }
        columns.numerics.push_back({col, Span<const double>(v)});
      } else if (s.type == Source::Type::integer) {
        add_integer(col, s);
      } else if (s.type == Source::Type::numeric) {
        detail::raise<InputError>("BenefitPlanner: field '", f.name,
                                  "': a categorical field over the numeric column '", col,
                                  "' is not supported (declare the field numeric)");
      } else if (columns.find_categorical(col) == nullptr) {
        codes_.emplace_back(rows);
        auto& v = codes_.back();
        for (std::size_t r = 0; r < rows; ++r) {
          const RowKey k = key(r);
          v[r] = s.code(k.user, k.benefit);
        }
        SampleColumns::Categorical c;
        c.name = col;
        c.codes = Span<const std::int32_t>(v);
        c.dictionary = *s.dictionary;
        columns.categoricals.push_back(std::move(c));
      }
    }
  }
  SampleColumns columns;

 private:
  // Deques keep each column's storage where the spans point.
  std::deque<std::vector<std::int64_t>> integers_;
  std::deque<std::vector<double>> numerics_;
  std::deque<std::vector<std::int32_t>> codes_;
};

inline const Json& config_member(const Json& object, const char* key, const char* where) {
  if (!object.is_object() || !object.contains(key))
    throw bad_config(detail::concat(where, ": missing '", key, "'"));
  return object.at(key);
}

}  // namespace detail::benefit_planner

PERKREC_INLINE BenefitPlanner::BenefitPlanner(BenefitPlannerFile file, int num_threads)
    : file_(std::make_unique<const BenefitPlannerFile>(std::move(file))) {
  using detail::benefit_planner::bad_config;
  using detail::benefit_planner::config_member;
  file_->validate();
  const Json& config = file_->config;
  const Json& params = config_member(config, "params", "config");
  try {
    policy_ = Policy::from_json(config_member(config, "policy", "config"));
    const int stored_threads = config_member(params, "num_threads", "params").get<int>();
    num_threads_ = num_threads < 0 ? stored_threads : num_threads;
    Json pp = Json::object();
    pp["objective"] = config_member(params, "objective", "params");
    pp["top_k"] = config_member(params, "top_k", "params");
    pp["method"] = config_member(params, "method", "params");
    pp["num_threads"] = num_threads_;
    planner_ = Planner(PlannerParams::from_json(pp));
    shrink_ = config_member(params, "shrink", "params").get<bool>();
    const std::string incremental =
        config_member(params, "incremental", "params").get<std::string>();
    if (incremental != "timing" && incremental != "control") {
      throw bad_config("params: incremental must be 'timing' or 'control' (got '" + incremental +
                       "')");
    }
    control_share_ = incremental == "control";
    // Files written before these steps have neither key: they plan as they did.
    const bool pooled = params.contains("pooled") && params.at("pooled").get<bool>();
    const bool preference_offset =
        params.contains("preference_offset") && params.at("preference_offset").get<bool>();
    if (pooled != file_->pooled.has_value()) {
      throw bad_config(detail::concat("params: pooled ", pooled ? "true" : "false", " with",
                                      file_->pooled ? "" : "out", " stored pooled effects"));
    }
    const bool benefit_level =
        params.contains("benefit_level") && params.at("benefit_level").get<bool>();
    if (benefit_level != !file_->benefit_level.empty()) {
      throw bad_config(detail::concat("params: benefit_level ", benefit_level ? "true" : "false",
                                      " with", file_->benefit_level.empty() ? "out" : "",
                                      " stored benefit levels"));
    }
    if (preference_offset != file_->preference_weight.has_value()) {
      throw bad_config(detail::concat(
          "params: preference_offset ", preference_offset ? "true" : "false", " with",
          file_->preference_weight ? "" : "out", " a stored preference weight"));
    }
    cut_time_ = config_member(config, "cut_time", "config").get<Timestamp>();
    end_time_ = config_member(config, "end_time", "config").get<Timestamp>();
  } catch (const ModelFormatError&) {
    throw;
  } catch (const std::exception& e) {
    throw bad_config(e.what());
  }
  if (control_share_ != !file_->incremental_share.empty()) {
    throw bad_config(detail::concat("params: incremental '", control_share_ ? "control" : "timing",
                                    "' with ", file_->incremental_share.size(), " stored shares"));
  }
  if (shrink_ && file_->holdout_user.empty())
    throw bad_config("params: shrink without held-out issues");
  resolve_num_threads(num_threads_);
  encoder_ = FeatureEncoder::from_fm_metadata(file_->redemption_model.metadata());
  encoder_.set_num_threads(num_threads_);
  if (file_->behavior) {
    behavior_ = BehaviorData{&file_->behavior->log, &file_->behavior->items,
                             &file_->behavior->benefit_items};
  } else {
    for (const FeatureField& f : encoder_.spec().fields) {
      if (f.kind == FeatureField::Kind::behavior || f.kind == FeatureField::Kind::behavior_cf) {
        throw bad_config(detail::concat("the encoder's behaviour field '", f.name,
                                        "' needs the stored behaviour (the file has none)"));
      }
    }
  }
  history_index_ = encoder_.history_index(file_->events);
  const Index n = n_users();
  if (file_->users) {
    users_ = *file_->users;
  } else {
    users_ = UserTable(file_->events.user_ids().size() == n ? file_->events.user_ids()
                                                            : IdMap::range(n));
  }
  segments_ = file_->preference.segments(SegmentRules::defaults());
  frame_ = std::make_shared<const detail::PlanFrame>(
      file_->catalog, file_->users ? &*file_->users : nullptr, &segments_);
  if (file_->preference_weight) lift_ = KindPreferenceLift(file_->preference, file_->catalog);
  if (!control_share_) {
    const double horizon = file_->preference.params().horizon_days;
    const auto& timing = file_->preference.timing();
    std::vector<double> orders_per_day(timing.size()), validity_days;
    for (std::size_t u = 0; u < timing.size(); ++u)
      orders_per_day[u] = static_cast<double>(timing[u].expected_purchases) / horizon;
    for (const Benefit& b : file_->catalog.benefits())
      validity_days.push_back(static_cast<double>(b.validity_days));
    share_scorer_ = timing_share_scorer(std::move(orders_per_day), std::move(validity_days));
  }
}

PERKREC_INLINE float BenefitPlanner::clip(float p) {
  return std::clamp(p, 1e-6f, static_cast<float>(1 - 1e-6));
}

PERKREC_INLINE void BenefitPlanner::adjust_row(Span<float> row, Index user) const {
  if (file_->pooled) {
    for (float& p : row) p = clip(p);
    file_->pooled->apply_row(row, user);
  }
  if (file_->preference_weight) {
    std::vector<double> lift(row.size());
    lift_.row(user, lift);
    apply_preference_offset(row, lift, *file_->preference_weight);
  }
  if (!file_->benefit_level.empty()) apply_benefit_levels(row, file_->benefit_level);
}

PERKREC_INLINE BehaviorEvidence BenefitPlanner::evidence(const BehaviorData& behavior) {
  BehaviorEvidence e;
  if (behavior.complete()) {
    e.log = behavior.log;
    e.items = behavior.items;
    e.benefit_items = behavior.benefit_items;
  }
  return e;
}

namespace detail {
/// The behaviour log's member indices must mean the event log's members: a log with a member
/// map of its own (built without the event log's ids) would give members other members'
/// behaviour. A log without a map is indexed as the event log by contract.
inline void check_behavior_member_map(const BehaviorLog& log, const EventLog& events,
                                      const char* context) {
  const IdMap& own = log.user_ids();
  if (own.size() == 0) return;
  const IdMap& expected = events.user_ids();
  if (expected.size() == 0) {
    detail::raise<InputError>(
        context, ": behavior: the behaviour log has a member map of its own (", own.size(),
        " ids) but the event log has none; build both with the same ids");
  }
  bool same = own.key_type() == expected.key_type() && own.size() <= expected.size();
  for (Index i = 0; same && i < own.size(); ++i) {
    const auto k = static_cast<std::size_t>(i);
    same = own.key_type() == IdMap::KeyType::string ? own.strings()[k] == expected.strings()[k]
                                                    : own.integers()[k] == expected.integers()[k];
  }
  if (!same) {
    detail::raise<InputError>(
        context,
        ": behavior: the behaviour log's user_ids are another member map than the event log's "
        "(got ",
        own.size(), " ids, expected a prefix of the event log's ", expected.size(),
        "); build it with BehaviorLog.from_frame(..., user_ids=events)");
  }
}
}  // namespace detail

PERKREC_INLINE BehaviorData BenefitPlanner::behavior_of(const BehaviorLog* log, const char* method,
                                                        const EventLog* events) const {
  if (log == nullptr) return behavior_;
  if (events != nullptr) {
    detail::check_behavior_member_map(*log, *events,
                                      (std::string("BenefitPlanner::") + method).c_str());
  }
  if (!behavior_.complete()) {
    detail::raise<InputError>("BenefitPlanner::", method,
                              ": behavior: the model file holds no behaviour (fit without it)");
  }
  if (log->n_items() != behavior_.items->size() || log->n_users() > n_users()) {
    detail::raise<InputError>("BenefitPlanner::", method, ": behavior: expected a log of the ",
                              behavior_.items->size(), " stored items and at most ", n_users(),
                              " members (got ", log->n_items(), " items, ", log->n_users(),
                              " members)");
  }
  BehaviorData out = behavior_;
  out.log = log;
  return out;
}

PERKREC_INLINE BenefitPlanner BenefitPlanner::load(const std::string& path, int num_threads) {
  return BenefitPlanner(BenefitPlannerFile::load(path), num_threads);
}

PERKREC_INLINE BenefitPlanner BenefitPlanner::from_bytes(std::string_view bytes, int num_threads) {
  return BenefitPlanner(BenefitPlannerFile::from_bytes(bytes), num_threads);
}

PERKREC_INLINE void BenefitPlanner::set_block_users(Index users) {
  if (users < 1)
    detail::raise<ConfigError>("BenefitPlanner: block_members must be >= 1 (got ", users, ")");
  block_members_ = users;
}

PERKREC_INLINE const EventLog& BenefitPlanner::log_of(const EventLog* events,
                                                      const char* method) const {
  if (events == nullptr) return file_->events;
  if (events->n_users() != n_users() || events->n_benefits() != n_benefits()) {
    detail::raise<InputError>("BenefitPlanner::", method, ": events: expected a log of ", n_users(),
                              " members x ", n_benefits(), " benefits, the fitted one's (got ",
                              events->n_users(), " x ", events->n_benefits(), ")");
  }
  return *events;
}

PERKREC_INLINE void BenefitPlanner::score_users(Index begin, Index end, Timestamp at,
                                                const EventLog& events, Span<float> out) const {
  if (&events == &file_->events) {
    score_users(begin, end, at, events, history_index_, behavior_, out);
  } else {
    score_users(begin, end, at, events, encoder_.history_index(events), behavior_, out);
  }
}

PERKREC_INLINE void BenefitPlanner::score_users(Index begin, Index end, Timestamp at,
                                                const EventLog& events, const HistoryIndex& history,
                                                const BehaviorData& behavior,
                                                Span<float> out) const {
  if (begin < 0 || end > n_users() || begin > end) {
    detail::raise<InputError>("BenefitPlanner::score_users: members [", begin, ", ", end,
                              ") out of [0, ", n_users(), ")");
  }
  const std::size_t nb = static_cast<std::size_t>(n_benefits());
  const std::size_t rows = static_cast<std::size_t>(end - begin) * nb;
  if (out.size() != rows) {
    detail::raise<InputError>("BenefitPlanner::score_users: out has ", out.size(),
                              " values (expected ", rows, ")");
  }
  if (rows == 0) return;
  const detail::benefit_planner::BlockColumns block(encoder_, *frame_, begin, end, n_benefits(),
                                                    at);
  const HistoryIndex* index = history.log == &events ? &history : nullptr;
  const CsrMatrix<float> X = encoder_.transform(block.columns, &events, nullptr,
                                                behavior.complete() ? &behavior : nullptr, index);
  // Every encoded row has the same number of entries, so row chunks are CSR views of their own.
  const Offset per_row = X.indptr[1];
  const Offset chunk = 1024;
  const Offset n_chunks = (static_cast<Offset>(rows) + chunk - 1) / chunk;
  std::vector<Offset> indptr(static_cast<std::size_t>(chunk) + 1);
  for (Offset i = 0; i <= chunk; ++i) indptr[static_cast<std::size_t>(i)] = i * per_row;
  parallel_for(
      0, n_chunks, num_threads_,
      [&](Offset c) {
        const Offset r0 = c * chunk, r1 = std::min(static_cast<Offset>(rows), r0 + chunk);
        const CsrView<float> view{static_cast<Index>(r1 - r0), X.cols, indptr.data(),
                                  X.indices.data() + r0 * per_row, X.data.data() + r0 * per_row};
        file_->redemption_model.predict(
            view, Span<float>(out.data() + r0, static_cast<std::size_t>(r1 - r0)));
      },
      Schedule::dynamic, 1);
}

PERKREC_INLINE std::vector<float> BenefitPlanner::probability(Timestamp at, const EventLog& log,
                                                              const BehaviorData& behavior,
                                                              double* slope,
                                                              InteractionMeans* means) const {
  const Index n = n_users();
  const std::size_t nb = static_cast<std::size_t>(n_benefits());
  std::vector<float> P(static_cast<std::size_t>(n) * nb);
  const HistoryIndex other = &log == &file_->events ? HistoryIndex() : encoder_.history_index(log);
  const HistoryIndex& history = &log == &file_->events ? history_index_ : other;
  for (Index b0 = 0; b0 < n; b0 += block_members_) {
    const Index b1 = std::min(n, b0 + block_members_);
    score_users(b0, b1, at, log, history, behavior,
                Span<float>(P.data() + static_cast<std::size_t>(b0) * nb,
                            static_cast<std::size_t>(b1 - b0) * nb));
  }
  double c = 1.0;
  if (shrink_) {
    for (float& p : P) p = clip(p);
    const std::vector<double> weight(file_->holdout_weight.begin(), file_->holdout_weight.end());
    InteractionShrinkParams sp;
    sp.num_threads = num_threads_;
    c = shrink_interactions_in_place(P, n, n_benefits(), file_->holdout_user,
                                     file_->holdout_benefit, file_->holdout_predicted,
                                     file_->holdout_redeemed, weight, sp, means);
  }
  if (file_->pooled || file_->preference_weight || !file_->benefit_level.empty()) {
    parallel_for(0, n, num_threads_, [&](Offset u) {
      adjust_row(Span<float>(P.data() + static_cast<std::size_t>(u) * nb, nb),
                 static_cast<Index>(u));
    });
  }
  if (slope != nullptr) *slope = c;
  return P;
}

PERKREC_INLINE std::vector<float> BenefitPlanner::redemption_probability(
    Timestamp at, const EventLog* events, double* slope, const BehaviorLog* behavior) const {
  const EventLog& log = log_of(events, "redemption_probability");
  const BehaviorData data = behavior_of(behavior, "redemption_probability", &log);
  return probability(at, log, data, slope, nullptr);
}

PERKREC_INLINE BenefitPlanner::Plan BenefitPlanner::plan(Timestamp at, double budget,
                                                         const EventLog* events,
                                                         const BehaviorLog* behavior,
                                                         const PlanScope& scope) const {
  const std::size_t n = static_cast<std::size_t>(n_users());
  if (!scope.user_mask.empty()) {
    if (scope.user_mask.size() != n) {
      detail::raise<InputError>("BenefitPlanner::plan: user_mask has ", scope.user_mask.size(),
                                " flags (expected one per member: ", n, ")");
    }
    for (std::size_t u = 0; u < n; ++u) {
      if (scope.user_mask[u] > 1) {
        detail::raise<InputError>("BenefitPlanner::plan: user_mask[", u, "] must be 0 or 1 (got ",
                                  static_cast<int>(scope.user_mask[u]), ")");
      }
    }
  }
  if (!(std::isfinite(scope.level) && scope.level > 0)) {
    detail::raise<InputError>("BenefitPlanner::plan: level must be finite and > 0 (got ",
                              scope.level, ")");
  }
  const EventLog& log = log_of(events, "plan");
  const BehaviorData data = behavior_of(behavior, "plan", &log);
  if (!std::isnan(budget) && !(budget >= 0)) {
    detail::raise<ConfigError>("BenefitPlanner::plan: budget must be >= 0 or NaN (got ", budget,
                               ")");
  }
  Plan out;
  out.compiled = policy_.compile(file_->catalog, users_, at, &segments_, &log, num_threads_);
  std::vector<float> P = probability(at, log, data, &out.slope, nullptr);
  if (!scope.user_mask.empty() || scope.level != 1.0) {
    const std::size_t nb = static_cast<std::size_t>(n_benefits());
    parallel_for(0, static_cast<Offset>(n), num_threads_, [&](Offset u) {
      float* row = P.data() + static_cast<std::size_t>(u) * nb;
      if (!scope.user_mask.empty() && scope.user_mask[static_cast<std::size_t>(u)] == 0) {
        std::fill(row, row + nb, 0.0f);  // value 0, cost >= 0: the Ranker keeps no candidate
      } else if (scope.level != 1.0) {
        for (std::size_t b = 0; b < nb; ++b)
          row[b] = static_cast<float>(std::min(static_cast<double>(row[b]) * scope.level, 1.0));
      }
    });
  }
  PlanInputs in;
  in.redemption_probability = P;
  if (control_share_) {
    in.incremental_share = file_->incremental_share;
  } else {
    in.incremental_share_scorer = share_scorer_;
  }
  in.order_value = file_->order_value;
  in.preference = &file_->preference;
  in.budget = budget;
  in.behavior = evidence(data);
  out.result = planner_.plan(out.compiled, file_->catalog, at, in);
  return out;
}

PERKREC_INLINE BenefitPlanner::State BenefitPlanner::prepare(Timestamp at, const EventLog* events,
                                                             const BehaviorLog* behavior) const {
  const EventLog& log = log_of(events, "prepare");
  const BehaviorData data = behavior_of(behavior, "prepare", &log);
  State s;
  s.time = at;
  s.events = events;
  s.behavior = behavior;
  if (events != nullptr) s.history = encoder_.history_index(*events);
  s.compiled = policy_.compile(file_->catalog, users_, at, &segments_, &log, num_threads_);
  s.context =
      ExplanationContext::make(&file_->preference, file_->catalog, nullptr, s.compiled.rule_names);
  if (data.complete()) s.context.set_behavior(evidence(data));
  if (shrink_)
    probability(at, log, data, nullptr, &s.means);  // the plan's means at `at`, same sums
  return s;
}

PERKREC_INLINE std::vector<float> BenefitPlanner::user_probability(const State& state, Index member,
                                                                   Timestamp time) const {
  if (member < 0 || member >= n_users()) {
    detail::raise<InputError>("BenefitPlanner::answer: user out of range (got ", member,
                              ", expected [0, ", n_users(), "))");
  }
  if (time < kMinTimestamp || time >= kMaxTimestamp) {
    detail::raise<InputError>("BenefitPlanner::answer: time out of range (got ", time, ")");
  }
  if (state.compiled.masks.n_users() != n_users() ||
      (shrink_ && state.means.benefit_mean.empty())) {
    detail::raise<InputError>(
        "BenefitPlanner::answer: state: not prepared by this planner (call prepare)");
  }
  const EventLog& log = state.events == nullptr ? file_->events : *state.events;
  std::vector<float> p(static_cast<std::size_t>(n_benefits()));
  score_users(member, member + 1, time, log,
              state.events == nullptr ? history_index_ : state.history,
              behavior_of(state.behavior, "answer"), p);
  if (shrink_) {
    for (float& x : p) x = clip(x);
    shrink_row(p, state.means);
  }
  adjust_row(p, member);
  return p;
}

PERKREC_INLINE std::vector<float> BenefitPlanner::user_share(Index member) const {
  if (member < 0 || member >= n_users()) {
    detail::raise<InputError>("BenefitPlanner::user_share: user out of range (got ", member, ")");
  }
  const auto nb = static_cast<std::size_t>(n_benefits());
  std::vector<float> share(nb, 1.0f);
  if (control_share_) {
    const auto first = file_->incremental_share.begin() +
                       static_cast<std::ptrdiff_t>(static_cast<std::size_t>(member) * nb);
    std::copy(first, first + static_cast<std::ptrdiff_t>(nb), share.begin());
  } else {
    std::vector<Index> users(nb, member), benefits(nb);
    for (std::size_t b = 0; b < nb; ++b) benefits[b] = static_cast<Index>(b);
    share_scorer_(users, benefits, share);
  }
  return share;
}

PERKREC_INLINE float BenefitPlanner::user_value(Index member) const {
  if (member < 0 || member >= n_users()) {
    detail::raise<InputError>("BenefitPlanner::user_value: user out of range (got ", member, ")");
  }
  return file_->order_value[static_cast<std::size_t>(member)];
}

PERKREC_INLINE UserAnswer BenefitPlanner::answer(const State& state, Index member, Timestamp time,
                                                 int n) const {
  if (n < 1) detail::raise<InputError>("BenefitPlanner::answer: n must be >= 1 (got ", n, ")");
  UserAnswer out;
  out.probability = user_probability(state, member, time);
  out.blocked = state.compiled.member_block.empty()
                    ? ExclusionReason::none
                    : state.compiled.member_block[static_cast<std::size_t>(member)];
  const std::vector<float> share = user_share(member);
  RankDiagnostics diagnostics;
  const Candidates ranked =
      planner_.rank_user(state.compiled, file_->catalog, member, out.probability, share,
                         user_value(member), &diagnostics);
  if (out.blocked != ExclusionReason::none) return out;
  const Offset begin = ranked.offsets[0], end = ranked.offsets[1];
  for (Offset e = begin; e < end && static_cast<int>(out.benefits.size()) < n; ++e) {
    UserBenefit mb;
    mb.benefit = ranked.benefit[static_cast<std::size_t>(e)];
    mb.probability = ranked.probability[static_cast<std::size_t>(e)];
    mb.value = ranked.value[static_cast<std::size_t>(e)];
    mb.cost = ranked.cost[static_cast<std::size_t>(e)];
    mb.schedule = planner_.send_time(state.compiled, file_->catalog, &file_->preference, member,
                                     mb.benefit, time);
    ExplanationRow row;
    row.member = member;
    row.benefit = mb.benefit;
    row.probability = mb.probability;
    row.value = mb.value;
    row.cost = mb.cost;
    if (e + 1 < end) row.runner_up = ranked.benefit[static_cast<std::size_t>(e + 1)];
    row.best_ineligible = diagnostics.best_ineligible.empty() ? -1 : diagnostics.best_ineligible[0];
    row.best_ineligible_rule =
        diagnostics.best_ineligible_rule.empty() ? -1 : diagnostics.best_ineligible_rule[0];
    row.time = time;
    mb.reasons = explain_text(state.context, row);
    out.benefits.push_back(std::move(mb));
  }
  return out;
}

}  // namespace perkrec
