// benefit_server.hpp: the reusable part of examples/cpp/benefit_server.cpp, the pattern a C++
// service follows to embed perkrec: load saved models, a catalog and a policy once, then answer
// decision requests from many threads at once. Header-only; the example program and
// tests/cpp/test_benefit_server.cpp drive it in-process.
//
// What is loaded (BenefitServer::load, ServerOptions):
//   catalog     Catalog JSON (data/catalog.hpp)
//   users       UserTable container file (UserTable::save): one row per member, the members the
//               models were fitted on, in the same order; request "member" ids are its IdMap keys
//   policy      Policy JSON (decide/policy.hpp), compiled once at plan_time for every member
//   models      Popularity / ALS / BPR container files (the kind is read from the file); each is
//               a blend source named "popularity" / "als" / "bpr"
//   preference  optional PreferenceModel container: send time and validity (schedule), the
//               preference dimensions in the reasons, segments for the policy (default rules),
//               and the blend source "preference"
//   blend       optional ScoreBlend JSON (ScoreBlend::to_json): calibrated redemption
//               probability from the sources above, re-attached by name. Without a blend the
//               probability is the Popularity score (the share of members who took the benefit)
//   history     optional EventLog container: caps and frequency caps count past issues
//   planner     instead of all of the above: a fitted perkrec.BenefitPlanner model file
//               (decide/benefit_planner.hpp) holding the catalog, members, policy, the FM with
//               its encoder, the preference model, the history and the order values. The
//               probability is the FM's at the request's time, its member x benefit
//               interaction shrunk as the plan at plan_time shrinks it (means measured once at
//               load), ranked by the pipeline's objective (incremental: value x the incremental
//               share) and top_k (ServerOptions::top_k is not used); the value of a redemption
//               is the member's stored order value; plan_time 0 means the end of the fitted
//               log. Without a budget a member's answer at plan_time issues the plan's benefits
//               with the plan's probabilities (BenefitPlanner::user_probability).
//
// Request (one JSON object per line; strict: unknown keys are errors):
//   {"id": "r1", "member": "123", "n": 2, "time": 1767225600}
//     id      string or number, echoed back (optional)
//     member  the member's id (string or integer; integer ids may come as digit strings)
//     n       benefits wanted, 1..100 (optional, default 1); the policy's caps may give fewer
//     time    when the decision is taken, UTC seconds in [kMinTimestamp, kMaxTimestamp)
//             (years 1900 to 2199; optional, default plan_time)
//   A line longer than ServerOptions::max_line_bytes (default 64 KiB) is not read into memory:
//   it is answered with an error and skipped.
// Answer (one JSON line per request, in input order):
//   {"id": "r1", "member": "123", "benefits": [{"benefit": "B07", "probability": 0.31,
//    "value": 3.1, "cost": 0.6, "send_at": 1767258000, "validity_days": 14,
//    "reasons": {"preferences": [...], "contributions": [...], "runner_up": {...} | null,
//                "best_ineligible": {...} | null}}]}
//   plus "blocked": "frequency_cap" | "member_cap" when the policy lets the member receive
//   nothing, and "excluded": {"benefit": id, "reason": "budget" | ...} when nothing was issued
//   although the member had a candidate (reasons are ExclusionReason names). A bad line gets
//   {"id": <id or null>, "error": "<ErrorClass>: message"} and the server goes on with the
//   next one. The id is echoed whenever it could be read, even from a line whose JSON breaks
//   after it. Any bytes are safe: invalid UTF-8 in a line is answered with an error, and
//   answers are always valid UTF-8 JSON.
//
// Decision for one request (BenefitServer::answer):
//   1. redemption probability of every benefit for the member (blend or Popularity; with
//      --planner the pipeline's FM, shrunk, and the member's incremental share per benefit),
//   2. Planner::rank_user (decide/planner.hpp): the member's eligible benefits (compiled
//      policy masks) by expected value - cost, top_k kept, plus the best ineligible benefit
//      and the rule that excluded it,
//   3. the online Pacer spends budget / inventory / quotas and checks the member's caps and
//      stacking groups: one call with the whole ranked row, at most n new benefits, picked by
//      value - multiplier x cost - inventory price (limited benefits are paced over the period),
//   4. Planner::send_time: send time (the member's best hour from the preference model, moved out
//   of
//      the policy's quiet hours) and validity,
//   5. explain(): the reasons of each issued benefit.
// Money: value = probability x value of a redemption (the member's value column, else
// ServerOptions::value_per_redemption; --planner: the stored order value, times the
// incremental share under the incremental objective); cost = issue cost + probability x
// catalog cost.
//
// Time: eligibility (date windows, caps from the history) is compiled once at plan_time and the
// pacer paces spend over [plan_time, plan_time + period_hours); a request's "time" drives the
// pacing curve and the send time. A service serving several periods loads a new BenefitServer
// per period and swaps it in.
//
// Streams: serve() unties its input stream from any output stream while it runs (std::cin is
// tied to std::cout, and a flush from the reading thread would interleave with the writer's
// output), so `server < requests.jsonl > answers.jsonl` and pipes are safe.
//
// Threads: serve() reads lines on the calling thread, hands each request to one of `threads`
// workers (chosen by the member, so one member's requests are decided in input order) and
// writes the answers in input order. Models, catalog and compiled policy are const after
// loading (perkrec const methods are thread-safe); the Pacer is the only shared mutable state
// (internally locked). Without a budget or limited inventory the answers do not depend on the
// thread count; with them the pacing prices depend on the order decisions arrive in.
#pragma once

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <fstream>
#include <functional>
#include <istream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <perkrec/decide/allocator.hpp>
#include <perkrec/decide/explain.hpp>
#include <perkrec/decide/policy.hpp>
#include <perkrec/decide/ranker.hpp>
#include <perkrec/perkrec.hpp>

namespace benefit_server {

using perkrec::Index;
using perkrec::Json;
using perkrec::Timestamp;
/// Answers keep their keys in the documented order ("id" first).
using Answer = nlohmann::ordered_json;

struct ServerOptions {
  std::string catalog;              ///< Catalog JSON file (required)
  std::string users;                ///< UserTable container file (required)
  std::string policy;               ///< Policy JSON file (required)
  std::vector<std::string> models;  ///< Popularity / ALS / BPR container files (>= 1)
  std::string preference;           ///< PreferenceModel container file, or ""
  std::string blend;                ///< ScoreBlend JSON file, or ""
  std::string history;              ///< EventLog container file, or ""
  std::string planner;              ///< BenefitPlanner model file (replaces the six above), or ""
  /// With --planner: a BehaviorLog container file (BehaviorLog.save) read instead of the
  /// behaviour stored in the pipeline file (a newer log of the same items and members), or "".
  std::string behavior;
  Timestamp plan_time = 0;             ///< policy compile time and start of the pacing day
  double period_hours = 24.0;          ///< pacing period [plan_time, plan_time + period); > 0
  double value_per_redemption = 10.0;  ///< value of one redemption when no column; >= 0
  std::string value_column;            ///< numeric UserTable column of it per member, or ""
  int top_k = 20;   ///< ranked candidates per request; >= 1 (--planner: the pipeline's)
  int threads = 1;  ///< worker threads of serve(); 1 to perkrec::kMaxThreads
  std::size_t max_in_flight = 4096;  ///< requests read ahead of the writer; >= 1
  std::size_t max_line_bytes = 64u
                               << 10;  ///< longer request lines are answered with an error; >= 2

  /// Throws perkrec::ConfigError naming the option.
  void validate() const {
    auto bad = [](const char* option, const std::string& what) {
      perkrec::detail::raise<perkrec::ConfigError>("ServerOptions: ", option, ": ", what);
    };
    if (!planner.empty()) {
      if (!catalog.empty() || !users.empty() || !policy.empty() || !models.empty() ||
          !preference.empty() || !blend.empty() || !history.empty() || !value_column.empty()) {
        bad("planner",
            "the pipeline file holds the catalog, members, policy, models, preference, history and "
            "values: give none of those options with it");
      }
    } else {
      if (!behavior.empty()) bad("behavior", "needs --planner (it replaces the planner's log)");
      if (catalog.empty()) bad("catalog", "required");
      if (users.empty()) bad("users", "required");
      if (policy.empty()) bad("policy", "required");
      if (models.empty()) bad("models", "at least one model file is required");
    }
    if (!(period_hours > 0) || !std::isfinite(period_hours)) bad("period_hours", "must be > 0");
    if (!(value_per_redemption >= 0) || !std::isfinite(value_per_redemption)) {
      bad("value_per_redemption", "must be finite and >= 0");
    }
    if (top_k < 1) bad("top_k", "must be >= 1");
    if (threads < 1 || threads > perkrec::kMaxThreads) {
      bad("threads", perkrec::detail::concat("must be in [1, ", perkrec::kMaxThreads, "] (got ",
                                             threads, ")"));
    }
    if (max_in_flight < 1) bad("max_in_flight", "must be >= 1");
    if (max_line_bytes < 2) bad("max_line_bytes", "must be >= 2");
    if (plan_time < perkrec::kMinTimestamp || plan_time >= perkrec::kMaxTimestamp) {
      bad("plan_time", perkrec::detail::concat("must be in [", perkrec::kMinTimestamp, ", ",
                                               perkrec::kMaxTimestamp, ") (got ", plan_time, ")"));
    }
  }
};

/// The exception's class name as the error answers show it ("InputError", ...).
inline std::string error_class(const std::exception& e) {
  if (dynamic_cast<const perkrec::ModelFormatError*>(&e) != nullptr) return "ModelFormatError";
  if (dynamic_cast<const perkrec::ConfigError*>(&e) != nullptr) return "ConfigError";
  if (dynamic_cast<const perkrec::InputError*>(&e) != nullptr) return "InputError";
  if (dynamic_cast<const perkrec::DivergenceError*>(&e) != nullptr) return "DivergenceError";
  if (dynamic_cast<const perkrec::Error*>(&e) != nullptr) return "Error";
  return "InternalError";
}

inline std::string read_text_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    perkrec::detail::raise<perkrec::InputError>("BenefitServer::load: cannot open ", what, " '",
                                                path, "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// What serve() did.
struct ServeStats {
  std::int64_t answered = 0;  ///< answer lines written (one per non-blank input line)
  std::int64_t errors = 0;    ///< of which error answers
  std::int64_t benefits = 0;  ///< benefits issued in the answers
};

/// A parsed request: the member's row and what was asked.
struct Request {
  Json id;          ///< echoed back (null when absent)
  Json member;      ///< echoed back as given
  Index user = -1;  ///< row of the UserTable / models / compiled policy
  int n = 1;
  Timestamp time = 0;
};

class BenefitServer {
 public:
  /// Loads and checks everything; throws perkrec::Error subclasses naming the file or option.
  static std::unique_ptr<BenefitServer> load(const ServerOptions& options) {
    options.validate();
    std::unique_ptr<BenefitServer> s(new BenefitServer());
    s->options_ = options;
    if (!options.planner.empty()) return load_planner(std::move(s));
    s->catalog_ = perkrec::Catalog::from_json(read_text_file(options.catalog, "catalog"));
    s->users_ = perkrec::UserTable::load(options.users);
    const Index n_users = s->users_.size();
    const Index n_benefits = s->catalog_.size();
    auto check_shape = [&](const std::string& path, Index users, Index benefits) {
      if (users != n_users || benefits != n_benefits) {
        perkrec::detail::raise<perkrec::InputError>(
            "BenefitServer::load: model '", path, "' has ", users, " members x ", benefits,
            " benefits (expected ", n_users, " x ", n_benefits,
            ": the users table and the catalog)");
      }
    };
    auto check_ids = [&](const std::string& path, const perkrec::IdMap& users,
                         const perkrec::IdMap& benefits) {
      if ((users.size() != 0 && !(users == s->users_.users())) ||
          (benefits.size() != 0 && !(benefits == s->catalog_.ids()))) {
        perkrec::detail::raise<perkrec::InputError>("BenefitServer::load: model '", path,
                                                    "' was fitted on other member or benefit ids");
      }
    };
    for (const std::string& path : options.models) {
      const perkrec::ModelReader r = perkrec::ModelReader::from_file(path);
      if (r.kind() == perkrec::Popularity::kind) {
        if (s->popularity_)
          perkrec::detail::raise<perkrec::ConfigError>(
              "BenefitServer::load: two Popularity models");
        s->popularity_ = std::make_unique<perkrec::Popularity>(perkrec::Popularity::read(r, ""));
        check_shape(path, s->popularity_->n_users(), s->popularity_->n_benefits());
        check_ids(path, s->popularity_->user_ids(), s->popularity_->benefit_ids());
        s->sources_.emplace_back("popularity", perkrec::model_scorer(*s->popularity_));
      } else if (r.kind() == perkrec::ALS::kind) {
        if (s->als_)
          perkrec::detail::raise<perkrec::ConfigError>("BenefitServer::load: two ALS models");
        s->als_ = std::make_unique<perkrec::ALS>(perkrec::ALS::read(r, ""));
        check_shape(path, s->als_->n_users(), s->als_->n_benefits());
        check_ids(path, s->als_->user_ids(), s->als_->benefit_ids());
        s->sources_.emplace_back("als", perkrec::model_scorer(*s->als_));
      } else if (r.kind() == perkrec::BPR::kind) {
        if (s->bpr_)
          perkrec::detail::raise<perkrec::ConfigError>("BenefitServer::load: two BPR models");
        s->bpr_ = std::make_unique<perkrec::BPR>(perkrec::BPR::read(r, ""));
        check_shape(path, s->bpr_->n_users(), s->bpr_->n_benefits());
        check_ids(path, s->bpr_->user_ids(), s->bpr_->benefit_ids());
        s->sources_.emplace_back("bpr", perkrec::model_scorer(*s->bpr_));
      } else {
        perkrec::detail::raise<perkrec::ConfigError>("BenefitServer::load: model '", path,
                                                     "' is a ", r.kind(),
                                                     " (expected Popularity, ALS or BPR)");
      }
    }
    if (!options.preference.empty()) {
      s->preference_ = std::make_unique<perkrec::PreferenceModel>(
          perkrec::PreferenceModel::load(options.preference));
      check_shape(options.preference, s->preference_->n_users(), s->preference_->n_benefits());
      check_ids(options.preference, s->preference_->user_ids(), s->preference_->benefit_ids());
      // PreferenceModel::score runs a parallel loop with the saved num_threads; a request is
      // already the unit of parallelism, so score pair by pair (a one-pair loop runs inline).
      const perkrec::PreferenceModel* pref = s->preference_.get();
      s->sources_.emplace_back(
          "preference", [pref](perkrec::Span<const Index> us, perkrec::Span<const Index> bs,
                               perkrec::Span<float> out) {
            for (std::size_t i = 0; i < us.size(); ++i) {
              pref->score(perkrec::Span<const Index>(&us[i], 1),
                          perkrec::Span<const Index>(&bs[i], 1), perkrec::Span<float>(&out[i], 1));
            }
          });
    }
    if (!options.blend.empty()) {
      const Json j = perkrec::parse_json_strict<perkrec::ConfigError>(
          read_text_file(options.blend, "blend"), "BenefitServer::load: blend");
      s->blend_ = std::make_unique<perkrec::ScoreBlend>(perkrec::ScoreBlend::from_json(j));
      for (const std::string& name : s->blend_->source_names()) {
        auto it = std::find_if(s->sources_.begin(), s->sources_.end(),
                               [&](const auto& src) { return src.first == name; });
        if (it == s->sources_.end()) {
          perkrec::detail::raise<perkrec::ConfigError>(
              "BenefitServer::load: the blend's source '", name,
              "' has no model (load a model of that kind)");
        }
        s->blend_->attach(name, it->second);
      }
      if (!s->blend_->fitted())
        perkrec::detail::raise<perkrec::ConfigError>(
            "BenefitServer::load: the blend is not fitted");
    } else if (!s->popularity_) {
      perkrec::detail::raise<perkrec::ConfigError>(
          "BenefitServer::load: without a blend the probability is the Popularity score: load a "
          "Popularity model "
          "or give a blend");
    }

    s->member_value_.assign(static_cast<std::size_t>(n_users),
                            static_cast<float>(options.value_per_redemption));
    if (!options.value_column.empty()) {
      const std::vector<double>& col = s->users_.numeric(options.value_column);
      for (Index u = 0; u < n_users; ++u) {
        const double v = col[static_cast<std::size_t>(u)];
        s->member_value_[static_cast<std::size_t>(u)] =
            std::isfinite(v) && v >= 0 ? static_cast<float>(v)
                                       : static_cast<float>(options.value_per_redemption);
      }
    }

    s->policy_ = perkrec::Policy::from_string(read_text_file(options.policy, "policy"));
    std::unique_ptr<perkrec::SegmentAssignment> segments;
    if (s->preference_) {
      segments = std::make_unique<perkrec::SegmentAssignment>(
          s->preference_->segments(perkrec::SegmentRules::defaults()));
    }
    std::unique_ptr<perkrec::EventLog> history;
    if (!options.history.empty())
      history = std::make_unique<perkrec::EventLog>(perkrec::EventLog::load(options.history));
    s->compiled_ = s->policy_.compile(s->catalog_, s->users_, options.plan_time, segments.get(),
                                      history.get());

    s->pacer_ = make_pacer(s->compiled_, options);

    perkrec::PlannerParams
        planner;  // ranks one member per request: the request is the unit of parallelism
    planner.objective = perkrec::RankerParams::Objective::redemption;
    planner.top_k = options.top_k;
    planner.num_threads = 1;
    s->planner_ = perkrec::Planner(planner);
    s->explain_ = perkrec::ExplanationContext::make(s->preference_.get(), s->catalog_,
                                                    s->blend_.get(), s->compiled_.rule_names);
    return s;
  }

  /// --planner: everything from the pipeline file; the shrinkage's means and the compiled
  /// policy at plan_time (the end of the fitted log when 0).
  static std::unique_ptr<BenefitServer> load_planner(std::unique_ptr<BenefitServer> s) {
    s->pipeline_ = std::make_unique<perkrec::BenefitPlanner>(
        perkrec::BenefitPlanner::load(s->options_.planner, 1));
    const perkrec::BenefitPlanner& bp = *s->pipeline_;
    const perkrec::BenefitPlannerFile& f = bp.file();
    if (s->options_.plan_time == 0) s->options_.plan_time = bp.end_time();
    s->catalog_ = f.catalog;
    s->users_ = f.users ? *f.users
                        : perkrec::UserTable(f.events.user_ids().size() == bp.n_users()
                                                 ? f.events.user_ids()
                                                 : perkrec::IdMap::range(bp.n_users()));
    if (!s->options_.behavior.empty()) {
      s->behavior_ =
          std::make_unique<perkrec::BehaviorLog>(perkrec::BehaviorLog::load(s->options_.behavior));
      const perkrec::IdMap& ids = s->behavior_->user_ids();
      const perkrec::IdMap& known = f.events.user_ids();
      if (ids.size() > 0 && known.size() > 0 && !(ids == known)) {
        perkrec::detail::raise<perkrec::InputError>(
            "BenefitServer: behavior: the log's member ids are not the planner's (build it with "
            "the planner's member map)");
      }
    }
    // The planner checks the log's items and members and keeps a pointer to it in the state.
    s->state_ = std::make_unique<perkrec::BenefitPlanner::State>(
        bp.prepare(s->options_.plan_time, nullptr, s->behavior_.get()));
    s->policy_ = bp.policy();
    s->compiled_ = s->state_->compiled;
    s->member_value_ = f.order_value;
    s->pacer_ = make_pacer(s->compiled_, s->options_);
    perkrec::PlannerParams planner = bp.planner().params();  // the pipeline's objective and top_k
    planner.num_threads = 1;
    s->planner_ = perkrec::Planner(planner);
    s->explain_ = s->state_->context;
    return s;
  }

  static std::unique_ptr<perkrec::Pacer> make_pacer(const perkrec::CompiledPolicy& compiled,
                                                    const ServerOptions& options) {
    perkrec::PacingParams pacing;  // the policy's budget; none = infinite
    pacing.budget = compiled.constraints.budget;
    pacing.start = options.plan_time;
    pacing.end =
        options.plan_time + static_cast<Timestamp>(std::llround(options.period_hours * 3600.0));
    return std::make_unique<perkrec::Pacer>(compiled.constraints, pacing);
  }

  const perkrec::Catalog& catalog() const { return catalog_; }
  const perkrec::UserTable& users() const { return users_; }
  const perkrec::Policy& policy() const { return policy_; }
  const perkrec::CompiledPolicy& compiled() const { return compiled_; }
  const perkrec::Pacer& pacer() const { return *pacer_; }
  const ServerOptions& options() const { return options_; }

  /// Parses one request line. Throws perkrec::InputError naming the problem; `id` receives the
  /// request's id as soon as it is known (for the error answer).
  Request parse(const std::string& line, Json& id) const {
    id = nullptr;
    Json doc;
    try {
      doc = perkrec::parse_json_strict<perkrec::InputError>(line, "request");
    } catch (const perkrec::InputError&) {
      id = recover_id(line);
      throw;
    }
    if (doc.is_object() && doc.contains("id")) {
      const Json& v = doc["id"];
      if (v.is_string() ||
          (v.is_number() && (!v.is_number_float() || std::isfinite(v.get<double>()))))
        id = v;
    }
    perkrec::JsonReader<perkrec::InputError> r(doc, "", "request");
    Request q;
    q.time = options_.plan_time;
    if (const Json* v = r.raw("id")) {
      if (!v->is_string() && !v->is_number()) r.fail("id", "expected a string or a number");
      if (v->is_number_float() && !std::isfinite(v->get<double>()))
        r.fail("id", "expected a finite number");
      q.id = *v;
    }
    const Json* m = r.raw("member");
    if (m == nullptr)
      perkrec::detail::raise<perkrec::InputError>("request: /member: required key is missing");
    q.member = *m;
    r.read("n", q.n);
    if (q.n < 1 || q.n > 100) r.fail("n", "expected 1 <= n <= 100");
    r.read("time", q.time);
    if (q.time < perkrec::kMinTimestamp || q.time >= perkrec::kMaxTimestamp) {
      r.fail("time", perkrec::detail::concat("expected UTC seconds in [", perkrec::kMinTimestamp,
                                             ", ", perkrec::kMaxTimestamp, ")"));
    }
    r.finish();
    q.user = find_member(*m);
    return q;
  }

  /// The answer to one parsed request (thread-safe). Throws perkrec errors.
  Answer decide(const Request& q) const {
    const Index u = q.user;
    const Index nb = catalog_.size();
    Answer out = Answer::object();
    out["id"] = Answer(q.id);
    out["member"] = Answer(q.member);
    Answer benefits = Answer::array();
    const perkrec::ExclusionReason block =
        compiled_.member_block.empty() ? perkrec::ExclusionReason::none
                                       : compiled_.member_block[static_cast<std::size_t>(u)];
    if (block != perkrec::ExclusionReason::none) {
      out["benefits"] = std::move(benefits);
      out["blocked"] = perkrec::exclusion_reason_name(block);
      return out;
    }

    // 1. Redemption probability of every benefit for this member.
    std::vector<Index> users(static_cast<std::size_t>(nb), u), items(static_cast<std::size_t>(nb));
    for (Index b = 0; b < nb; ++b) items[static_cast<std::size_t>(b)] = b;
    std::vector<float> prob(static_cast<std::size_t>(nb));
    std::vector<float> share(1, 1.0f);  // redemption objective: unused
    if (pipeline_) {
      prob = pipeline_->user_probability(*state_, u, q.time);
      share = pipeline_->user_share(u);
    } else if (blend_) {
      blend_->predict(users, items, prob);
    } else {
      popularity_->score(users, items, prob);
      for (float& p : prob) p = std::isfinite(p) ? std::min(1.0f, std::max(0.0f, p)) : 0.0f;
    }

    // 2. Eligible candidates by expected value - cost (the Planner's ranking of one member).
    perkrec::RankDiagnostics diag;
    const perkrec::Candidates c = planner_.rank_user(
        compiled_, catalog_, u, prob, share, member_value_[static_cast<std::size_t>(u)], &diag);

    // 3. The pacer spends: the whole ranked row in one call, at most n new benefits, picked by
    //    its own rule (value - multiplier x cost - inventory price, best first). The runner-up
    //    is the best-ranked candidate it did not issue, with the pacer's reason.
    const std::int64_t row_begin = c.offsets[0], row_end = c.offsets[1];
    std::vector<std::int64_t> chosen;
    std::int64_t runner_up = -1;
    const auto first = static_cast<std::size_t>(row_begin);
    const auto count = static_cast<std::size_t>(row_end - row_begin);
    std::vector<perkrec::ExclusionReason> why_not;  // per candidate, from the pacer's decision
    const std::vector<std::int32_t> picked =
        count == 0
            ? std::vector<std::int32_t>()
            : pacer_->decide(u, q.time, perkrec::Span<const Index>(&c.benefit[first], count),
                             perkrec::Span<const float>(&c.value[first], count),
                             perkrec::Span<const float>(&c.cost[first], count), q.n, &why_not);
    std::size_t next = 0;  // picked is ascending
    for (std::int64_t e = row_begin; e < row_end; ++e) {
      if (next < picked.size() && row_begin + picked[next] == e) {
        chosen.push_back(e);
        ++next;
      } else if (runner_up < 0) {
        runner_up = e;
      }
    }
    const perkrec::ExclusionReason runner_reason =
        runner_up < 0 ? perkrec::ExclusionReason::none
                      : why_not[static_cast<std::size_t>(runner_up - row_begin)];

    // 4 + 5. Send time (out of the policy's quiet hours), validity and reasons of each issued
    //        benefit.
    for (std::int64_t e : chosen) {
      const auto i = static_cast<std::size_t>(e);
      const Index b = c.benefit[i];
      const perkrec::SendSchedule when = planner_.send_time(
          compiled_, catalog_, pipeline_ ? &pipeline_->file().preference : preference_.get(), u, b,
          q.time);
      perkrec::ExplanationRow row;
      row.member = u;
      row.benefit = b;
      row.probability =
          c.probability.empty() ? prob[static_cast<std::size_t>(b)] : c.probability[i];
      row.value = c.value[i];
      row.cost = c.cost[i];
      std::vector<float> terms;
      if (blend_) {
        const std::vector<double> t = blend_->contributions(u, b);
        terms.assign(t.begin(), t.end());
        row.contributions = terms.data();
      }
      if (runner_up >= 0) {
        row.runner_up = c.benefit[static_cast<std::size_t>(runner_up)];
        row.runner_up_reason = runner_reason;
      }
      if (!diag.best_ineligible.empty()) {
        row.best_ineligible = diag.best_ineligible[0];
        row.best_ineligible_rule = diag.best_ineligible_rule[0];
      }
      // explain_text keeps the explanation's reading order; the decision's own fields are
      // already in the item.
      Answer reasons = Answer::parse(perkrec::explain_text(explain_, row));
      for (const char* dup : {"member", "benefit", "probability", "value", "cost"})
        reasons.erase(dup);
      Answer item = Answer::object();
      item["benefit"] = catalog_[b].id;
      item["probability"] = round6(row.probability);
      item["value"] = round6(row.value);
      item["cost"] = round6(row.cost);
      item["send_at"] = when.send_at;
      item["validity_days"] = when.validity_days;
      item["reasons"] = std::move(reasons);
      benefits.push_back(std::move(item));
    }
    out["benefits"] = std::move(benefits);
    if (chosen.empty() && runner_up >= 0) {
      // Nothing issued: the best candidate and why it was left out.
      Answer why = Answer::object();
      why["benefit"] = catalog_[c.benefit[static_cast<std::size_t>(runner_up)]].id;
      why["reason"] = perkrec::exclusion_reason_name(runner_reason);
      out["excluded"] = std::move(why);
    }
    return out;
  }

  /// One request line in, one answer line out (no newline); never throws for a bad request:
  /// the error becomes {"id": ..., "error": "<ErrorClass>: message"}. Thread-safe.
  std::string answer(const std::string& line) const {
    Json id;
    try {
      if (line.size() > options_.max_line_bytes) throw line_too_long(line.size());
      return dump(decide(parse(line, id)));
    } catch (const std::exception& e) {
      return error_answer(id, e);
    } catch (...) {
      return error_answer(id, std::runtime_error("unknown exception"));
    }
  }

  static std::string error_answer(const Json& id, const std::exception& e) {
    Answer out = Answer::object();
    out["id"] = Answer(id);
    out["error"] = error_class(e) + ": " + perkrec::detail::valid_utf8(e.what());
    return dump(out);
  }

  /// The id of a request line whose JSON is broken, when a top-level "id" string or number
  /// comes before the damage; null otherwise. Reads nothing into memory but that value.
  static Json recover_id(const std::string& line) {
    struct IdScan {
      using number_integer_t = Json::number_integer_t;
      using number_unsigned_t = Json::number_unsigned_t;
      using number_float_t = Json::number_float_t;
      using string_t = Json::string_t;
      using binary_t = Json::binary_t;
      int depth = 0;
      bool at_id = false;
      Json id;
      bool value(Json v) {
        if (at_id && depth == 1) {
          id = std::move(v);
          return false;  // found: stop reading
        }
        at_id = false;
        return true;
      }
      bool null() { return value(nullptr); }
      bool boolean(bool) { return value(nullptr); }
      bool number_integer(number_integer_t v) { return value(v); }
      bool number_unsigned(number_unsigned_t v) { return value(v); }
      bool number_float(number_float_t v, const string_t&) {
        return value(std::isfinite(v) ? Json(v) : Json());
      }
      bool string(string_t& v) { return value(v); }
      bool binary(binary_t&) { return false; }
      bool start_object(std::size_t) {
        at_id = false;
        return ++depth <= 64;
      }
      bool end_object() {
        --depth;
        return true;
      }
      bool start_array(std::size_t) {
        if (at_id && depth == 1) return false;
        ++depth;
        return depth <= 64;
      }
      bool end_array() {
        --depth;
        return true;
      }
      bool key(string_t& k) {
        at_id = depth == 1 && k == "id";
        return true;
      }
      bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
        return false;
      }
    } scan;
    try {
      Json::sax_parse(line.begin(), line.end(), &scan, Json::input_format_t::json, false);
    } catch (const std::exception&) {
      return nullptr;
    }
    return scan.id;
  }

  /// Answers every line of `in` (blank lines are skipped) on options().threads workers and
  /// writes the answers to `out` in input order, one per line.
  ServeStats serve(std::istream& in, std::ostream& out) const {
    return serve(in, out, options_.threads);
  }

  ServeStats serve(std::istream& in, std::ostream& out, int threads) const {
    if (threads < 1 || threads > perkrec::kMaxThreads) {
      perkrec::detail::raise<perkrec::ConfigError>("BenefitServer::serve: threads must be in [1, ",
                                                   perkrec::kMaxThreads, "] (got ", threads, ")");
    }
    // A tied output stream would be flushed by this (reading) thread while the writer thread
    // writes to it: untie for the duration and restore on every way out.
    struct Untie {
      std::istream& in;
      std::ostream* tied;
      ~Untie() { in.tie(tied); }
    } untie{in, in.tie(nullptr)};
    struct Job {
      std::int64_t seq;
      Request request;
    };
    struct Queue {
      std::mutex mutex;
      std::condition_variable ready;
      std::deque<Job> jobs;
      bool closed = false;
    };
    std::vector<Queue> queues(static_cast<std::size_t>(threads));
    std::mutex done_mutex;
    std::condition_variable done_cv;  // an answer arrived (writer) or a slot freed (reader)
    std::map<std::int64_t, std::string> done;
    std::int64_t written = 0;
    ServeStats stats;

    auto finish = [&](std::int64_t seq, std::string text, bool error, std::size_t issued) {
      std::lock_guard<std::mutex> lock(done_mutex);
      stats.errors += error ? 1 : 0;
      stats.benefits += static_cast<std::int64_t>(issued);
      done.emplace(seq, std::move(text));
      done_cv.notify_all();
    };
    auto worker = [&](Queue& q) {
      for (;;) {
        Job job;
        {
          std::unique_lock<std::mutex> lock(q.mutex);
          q.ready.wait(lock, [&] { return q.closed || !q.jobs.empty(); });
          if (q.jobs.empty()) return;
          job = std::move(q.jobs.front());
          q.jobs.pop_front();
        }
        std::string text;
        bool error = false;
        std::size_t issued = 0;
        try {
          const Answer a = decide(job.request);
          issued = a["benefits"].size();
          text = dump(a);
        } catch (const std::exception& e) {
          text = error_answer(job.request.id, e);
          error = true;
        } catch (...) {
          text = error_answer(job.request.id, std::runtime_error("unknown exception"));
          error = true;
        }
        finish(job.seq, std::move(text), error, issued);
      }
    };
    std::vector<std::thread> pool;
    pool.reserve(static_cast<std::size_t>(threads));
    auto stop_workers = [&] {
      for (Queue& q : queues) {
        {
          std::lock_guard<std::mutex> lock(q.mutex);
          q.closed = true;
        }
        q.ready.notify_all();
      }
      for (std::thread& t : pool) t.join();
    };
    auto cannot_start = [&](const std::exception& e) -> perkrec::Error {
      return perkrec::Error(perkrec::detail::concat("BenefitServer::serve: cannot start ", threads,
                                                    " worker threads and a writer (", e.what(),
                                                    ")"));
    };
    try {
      for (int t = 0; t < threads; ++t)
        pool.emplace_back(worker, std::ref(queues[static_cast<std::size_t>(t)]));
    } catch (const std::exception& e) {
      stop_workers();
      throw cannot_start(e);
    }

    // The writer drains answers in input order while the reader (this thread) reads ahead.
    std::int64_t total = -1;  // known at end of input
    std::thread writer;
    try {
      writer = std::thread([&] {
        std::unique_lock<std::mutex> lock(done_mutex);
        for (;;) {
          done_cv.wait(lock,
                       [&] { return done.count(written) > 0 || (total >= 0 && written >= total); });
          if (total >= 0 && written >= total) return;
          std::string text = std::move(done[written]);
          done.erase(written);
          lock.unlock();
          out << text << '\n';
          lock.lock();
          ++written;
          done_cv.notify_all();
        }
      });
    } catch (const std::exception& e) {
      stop_workers();
      throw cannot_start(e);
    }
    std::int64_t seq = 0;
    // Every way out of the reading loop stops the workers and lets the writer write what
    // was answered, so nothing already answered is lost.
    auto shut_down = [&] {
      stop_workers();
      {
        std::lock_guard<std::mutex> lock(done_mutex);
        total = seq;
        done_cv.notify_all();
      }
      writer.join();
      out.flush();
    };
    try {
      std::string line;
      std::size_t line_bytes = 0;
      while (read_line(in, line, line_bytes)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") == std::string::npos) continue;
        {
          std::unique_lock<std::mutex> lock(done_mutex);
          done_cv.wait(lock, [&] {
            return seq - written < static_cast<std::int64_t>(options_.max_in_flight);
          });
        }
        Json id;
        try {
          if (line_bytes > options_.max_line_bytes) throw line_too_long(line_bytes);
          Request r = parse(line, id);
          Queue& q = queues[static_cast<std::size_t>(r.user % threads)];
          {
            std::lock_guard<std::mutex> lock(q.mutex);
            q.jobs.push_back(Job{seq, std::move(r)});
          }
          q.ready.notify_one();
        } catch (const std::exception& e) {
          finish(seq, error_answer(id, e), true, 0);
        } catch (...) {
          finish(seq, error_answer(id, std::runtime_error("unknown exception")), true, 0);
        }
        ++seq;
      }
    } catch (...) {
      shut_down();
      throw;
    }
    shut_down();
    stats.answered = seq;
    return stats;
  }

 private:
  BenefitServer() = default;

  /// Answers as text: always valid UTF-8 (an invalid byte that reached a string becomes U+FFFD).
  template <class J>
  static std::string dump(const J& j) {
    return j.dump(-1, ' ', false, J::error_handler_t::replace);
  }

  perkrec::InputError line_too_long(std::size_t bytes) const {
    return perkrec::InputError(perkrec::detail::concat(
        "request: line too long (got ", bytes, " bytes, limit ", options_.max_line_bytes, ")"));
  }

  /// Reads one line like std::getline, but keeps at most max_line_bytes + 1 of its bytes in
  /// `line`; `bytes` receives the line's whole length (without the newline).
  bool read_line(std::istream& in, std::string& line, std::size_t& bytes) const {
    line.clear();
    bytes = 0;
    std::streambuf* buf = in.rdbuf();
    if (buf == nullptr || !in.good()) return false;
    const std::size_t keep = options_.max_line_bytes + 1;
    for (;;) {
      const int c = buf->sbumpc();
      if (c == std::char_traits<char>::eof()) {
        in.setstate(std::ios::eofbit);
        return bytes > 0;
      }
      if (c == '\n') return true;
      if (bytes < keep) line.push_back(static_cast<char>(c));
      ++bytes;
    }
  }

  static double round6(double x) {
    if (!std::isfinite(x) || x == 0) return x;
    const double scale = std::pow(10.0, 5 - static_cast<int>(std::floor(std::log10(std::fabs(x)))));
    return std::round(x * scale) / scale;
  }

  Index find_member(const Json& m) const {
    const perkrec::IdMap& ids = users_.users();
    Index u = -1;
    if (ids.key_type() == perkrec::IdMap::KeyType::string) {
      if (!m.is_string())
        perkrec::detail::raise<perkrec::InputError>("request: /member: expected a string id");
      u = ids.find(m.get<std::string>());
    } else if (m.is_number_integer()) {
      u = ids.find(m.get<std::int64_t>());
    } else if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      std::size_t used = 0;
      long long v = 0;
      bool ok =
          !s.empty() && s.size() <= 19 && s.find_first_not_of("-0123456789") == std::string::npos;
      if (ok) {
        try {
          v = std::stoll(s, &used);
        } catch (const std::exception&) {
          ok = false;
        }
      }
      if (ok && used == s.size()) u = ids.find(static_cast<std::int64_t>(v));
    } else {
      perkrec::detail::raise<perkrec::InputError>(
          "request: /member: expected a string or integer id");
    }
    if (u < 0)
      perkrec::detail::raise<perkrec::InputError>("request: /member: unknown member ",
                                                  perkrec::detail::json_preview(m));
    return u;
  }

  ServerOptions options_;
  perkrec::Catalog catalog_;
  perkrec::UserTable users_;
  std::unique_ptr<perkrec::Popularity> popularity_;
  std::unique_ptr<perkrec::ALS> als_;
  std::unique_ptr<perkrec::BPR> bpr_;
  std::unique_ptr<perkrec::PreferenceModel> preference_;
  std::unique_ptr<perkrec::BenefitPlanner> pipeline_;      // --planner
  std::unique_ptr<perkrec::BehaviorLog> behavior_;         // --behavior (outlives state_)
  std::unique_ptr<perkrec::BenefitPlanner::State> state_;  // its means at plan_time
  std::unique_ptr<perkrec::ScoreBlend> blend_;
  std::vector<std::pair<std::string, perkrec::ScoreBlend::Scorer>> sources_;
  std::vector<float> member_value_;
  perkrec::Policy policy_;
  perkrec::CompiledPolicy compiled_;
  std::unique_ptr<perkrec::Pacer> pacer_;  // the only mutable state shared by the workers
  perkrec::Planner planner_;
  perkrec::ExplanationContext explain_;
};

// ---------------------------------------------------------------------------------------------
// Demo set-up: what a training job would leave for the service. Used by the example's
// --generate mode, its ctest and tests/cpp/test_benefit_server.cpp.

/// Paths written by write_demo_setup (all inside `dir`).
struct DemoSetup {
  std::string catalog, users, popularity, als, preference, blend, history;
  Timestamp plan_time = 0;  ///< the end of the simulated period
  Index n_users = 0;
};

inline void write_text_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.flush();
  if (!out)
    perkrec::detail::raise<perkrec::InputError>("write_text_file: cannot write '", path, "'");
}

/// Simulates a program of `members` members (90 days), fits Popularity, ALS and a
/// PreferenceModel on its events, fits a ScoreBlend of the three on (issued -> redeemed)
/// pairs, and saves everything to `dir` (which must exist).
inline DemoSetup write_demo_setup(const std::string& dir, Index members, std::uint64_t seed = 7,
                                  int num_threads = 0) {
  perkrec::SimulatorParams sp;
  sp.n_users = members;
  sp.days = 90;
  sp.holiday_start_day = 60;
  sp.seed = seed;
  sp.num_threads = num_threads;
  const perkrec::SimulatedProgram program = perkrec::simulate(sp);
  const perkrec::EventLog& log = program.events;
  DemoSetup d;
  d.plan_time = program.truth.reference_time;
  d.n_users = log.n_users();
  const perkrec::IdMap& user_ids = program.users.users();
  const perkrec::IdMap& benefit_ids = program.catalog.ids();

  perkrec::InteractionParams ip;
  ip.num_threads = num_threads;
  const perkrec::InteractionMatrix matrix = perkrec::build_interaction_matrix(log, ip);
  perkrec::PopularityParams pp;
  pp.num_threads = num_threads;
  perkrec::Popularity popularity(pp);
  popularity.fit(matrix.view());
  popularity.set_ids(user_ids, benefit_ids);
  perkrec::ALSParams ap;
  ap.factors = 16;
  ap.iterations = 8;
  ap.num_threads = num_threads;
  perkrec::ALS als(ap);
  als.fit(matrix.view());
  als.set_ids(user_ids, benefit_ids);
  perkrec::PreferenceParams prp;
  prp.latent_classes = 4;
  prp.em_iterations = 10;
  prp.num_threads = num_threads;
  perkrec::PreferenceModel preference(prp);
  preference.fit(log, program.catalog, d.plan_time);
  preference.set_ids(user_ids, benefit_ids);

  // Labelled pairs: every issued benefit, 1 when the member redeemed that benefit later.
  std::vector<Index> pair_user, pair_benefit;
  std::vector<float> label;
  for (Index u = 0; u < log.n_users(); ++u) {
    for (perkrec::Offset e = log.user_begin(u); e < log.user_end(u); ++e) {
      if (log.type(e) != perkrec::EventType::issued) continue;
      const Index b = log.benefits()[static_cast<std::size_t>(e)];
      float y = 0;
      for (perkrec::Offset f = e + 1; f < log.user_end(u); ++f) {
        if (log.type(f) == perkrec::EventType::redeemed &&
            log.benefits()[static_cast<std::size_t>(f)] == b) {
          y = 1;
          break;
        }
      }
      pair_user.push_back(u);
      pair_benefit.push_back(b);
      label.push_back(y);
    }
  }
  perkrec::ScoreBlendParams bp;
  bp.l2 = 1e-3;
  bp.num_threads = num_threads;
  perkrec::ScoreBlend blend(bp);
  blend.add_source("popularity", perkrec::model_scorer(popularity));
  blend.add_source("als", perkrec::model_scorer(als));
  blend.add_source("preference", perkrec::model_scorer(preference));
  blend.fit(pair_user, pair_benefit, label);

  d.catalog = dir + "/catalog.json";
  d.users = dir + "/users.perk";
  d.popularity = dir + "/popularity.perk";
  d.als = dir + "/als.perk";
  d.preference = dir + "/preference.perk";
  d.blend = dir + "/blend.json";
  d.history = dir + "/history.perk";
  write_text_file(d.catalog, program.catalog.to_json());
  program.users.save(d.users);
  popularity.save(d.popularity);
  als.save(d.als);
  preference.save(d.preference);
  write_text_file(d.blend, blend.to_json().dump(2));
  log.save(d.history);
  return d;
}

/// ServerOptions for the files of a demo set-up and a policy file.
inline ServerOptions demo_options(const DemoSetup& d, const std::string& policy_path,
                                  int threads = 1) {
  ServerOptions o;
  o.catalog = d.catalog;
  o.users = d.users;
  o.policy = policy_path;
  o.models = {d.popularity, d.als};
  o.preference = d.preference;
  o.blend = d.blend;
  o.plan_time = d.plan_time;
  o.threads = threads;
  return o;
}

/// `count` request lines for random members of a demo set-up (seeded), spread over the day
/// after plan_time, asking for 1 or 2 benefits; member ids are written as strings and numbers.
inline std::vector<std::string> demo_requests(const DemoSetup& d, std::int64_t count,
                                              std::uint64_t seed = 1) {
  perkrec::Rng rng(seed, 0, 0);
  std::vector<std::string> lines;
  lines.reserve(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) {
    Json q = Json::object();
    q["id"] = "r" + std::to_string(i);
    const auto u = static_cast<std::int64_t>(rng.below(static_cast<std::uint32_t>(d.n_users)));
    if (i % 2 == 0) {
      q["member"] = std::to_string(u);
    } else {
      q["member"] = u;
    }
    q["n"] = 1 + static_cast<int>(rng.below(2));
    q["time"] = d.plan_time + static_cast<Timestamp>(i * 86400 / std::max<std::int64_t>(count, 1));
    lines.push_back(q.dump());
  }
  return lines;
}

}  // namespace benefit_server
