// A small BenefitPlanner pipeline file fitted in C++ the way perkrec.BenefitPlanner fits one
// (tests of decide/benefit_planner.hpp and of the embedding server's --planner).
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace perkrec::test {

constexpr const char* kSpec = R"({"fields": [
  {"name": "user", "kind": "id", "min_count": 2},
  {"name": "benefit", "kind": "id"},
  {"name": "kind", "kind": "categorical"},
  {"name": "validity_days", "kind": "categorical"},
  {"name": "threshold", "kind": "numeric", "bins": 4},
  {"name": "tier", "kind": "categorical"},
  {"name": "tenure_days", "kind": "numeric", "bins": 4},
  {"name": "weekday", "kind": "categorical"},
  {"name": "hour", "kind": "categorical"},
  {"name": "member_history", "kind": "history", "bins": 3,
   "aggregates": ["member_issued", "member_redemption_rate", "member_channel_view_rate"]},
  {"name": "benefit_history", "kind": "history", "bins": 3, "aggregates": ["benefit_redeemed"]}]})";

/// Sample rows (member, benefit, time) with the columns the fixture's encoder reads, as
/// perkrec.pipeline.with_attributes gives them.
struct Samples {
  std::vector<std::int64_t> user, benefit, time, validity, weekday, hour;
  std::vector<double> threshold, tenure;
  std::vector<std::int32_t> kind, tier;
  std::vector<std::string> kind_names;
  const SimulatedProgram* prog = nullptr;

  explicit Samples(const SimulatedProgram& p) : prog(&p) {
    for (const Benefit& b : p.catalog.benefits()) kind_names.emplace_back(to_string(b.kind));
  }
  void add(Index u, Index b, Timestamp t) {
    user.push_back(u);
    benefit.push_back(b);
    time.push_back(t);
    validity.push_back(prog->catalog[b].validity_days);
    threshold.push_back(prog->catalog[b].threshold);
    tenure.push_back(
        (static_cast<double>(t) - prog->users.numeric("signup_time")[static_cast<std::size_t>(u)]) /
        86400.0);
    kind.push_back(static_cast<std::int32_t>(b));
    tier.push_back(prog->users.codes("tier")[static_cast<std::size_t>(u)]);
    const std::int64_t days = t / 86400;  // times after 1970
    weekday.push_back(((days % 7) + 10) % 7);
    hour.push_back((t - days * 86400) / 3600);
  }
  SampleColumns columns() const {
    SampleColumns s;
    s.rows = static_cast<Offset>(user.size());
    s.integers = {{"user", user},       {"benefit", benefit},
                  {"timestamp", time},  {"validity_days", validity},
                  {"weekday", weekday}, {"hour", hour}};
    s.numerics = {{"threshold", threshold}, {"tenure_days", tenure}};
    s.categoricals.push_back({"kind", kind, kind_names, {}});
    s.categoricals.push_back({"tier", tier, prog->users.categories("tier"), {}});
    return s;
  }
};

struct Fixture {
  SimulatedProgram prog;
  BenefitPlannerFile file;
  Timestamp end = 0;
  Timestamp cut = 0;
  /// Every logged issue: member, benefit, the FM's prediction at the issue (clipped), label,
  /// and whether it lies after the cut (the held-out issues).
  std::vector<Index> issue_user, issue_benefit;
  std::vector<double> issue_predicted, issue_label;
  std::vector<std::uint8_t> issue_held;
};

/// The behaviour field of behavior_fixture()'s encoder.
constexpr const char* kBehaviorField = R"({"name": "behavior", "kind": "behavior", "bins": 3,
  "levels": ["category"], "actions": ["purchase", "view"],
  "aggregates": ["count", "decayed_count", "days_since_last", "member_count"]})";

/// A small pipeline file fitted in C++ the way perkrec.BenefitPlanner fits one (issued events
/// as samples, labels = redeemed later, held-out issues after the cut). With `behavior`, the
/// program has behaviour, the encoder one more field (kBehaviorField) and the file the
/// behaviour part.
inline Fixture build_fixture(bool behavior) {
  Fixture f;
  SimulatorParams sp;
  sp.n_users = behavior ? 200 : 300;
  sp.days = 60;
  sp.seed = 11;
  sp.behavior = behavior;
  f.prog = simulate(sp);
  const EventLog& log = f.prog.events;
  const Catalog& cat = f.prog.catalog;
  f.end = log.max_time();
  const Timestamp cut = f.end - 20 * 86400;
  // Issued events as samples; label = a redemption of that benefit by that member later.
  Samples samples(f.prog);
  std::vector<float> label;
  for (Offset e = 0; e < log.size(); ++e) {
    if (log.type(e) != EventType::issued || log.benefits()[static_cast<std::size_t>(e)] < 0)
      continue;
    const Index u = log.users()[static_cast<std::size_t>(e)],
                b = log.benefits()[static_cast<std::size_t>(e)];
    bool redeemed = false;
    for (Offset k = e + 1; k < log.user_end(u); ++k) {
      redeemed = redeemed || (log.type(k) == EventType::redeemed &&
                              log.benefits()[static_cast<std::size_t>(k)] == b);
    }
    samples.add(u, b, log.timestamps()[static_cast<std::size_t>(e)]);
    label.push_back(redeemed ? 1.0f : 0.0f);
  }
  std::vector<std::string> channels;
  std::vector<double> face;
  for (const Benefit& b : cat.benefits()) {
    channels.push_back(b.channel);
    face.push_back(b.face_value);
  }
  const SampleColumns s = samples.columns();
  Json spec = Json::parse(kSpec);
  if (behavior) spec["fields"].push_back(Json::parse(kBehaviorField));
  FeatureEncoder enc(FeatureSpec::from_json(spec, ""), 2);
  enc.set_benefits(samples.kind_names, face, channels);
  const BehaviorData data{&f.prog.behavior, &f.prog.items, &f.prog.benefit_items};
  enc.fit(s, &log, behavior ? &data : nullptr);
  const CsrMatrix<float> X = enc.transform(s, &log, nullptr, behavior ? &data : nullptr);
  FMParams fp;
  fp.factors = 4;
  fp.epochs = 3;
  fp.num_threads = 1;
  f.file.redemption_model = FM(fp);
  FMTarget target;
  target.labels = label;
  f.file.redemption_model.fit(X.view(), target, enc.feature_fields(), enc.n_fields());
  f.file.redemption_model.set_metadata(Json{{"encoder", Json::parse(enc.to_json())}}.dump());
  std::vector<float> predicted(static_cast<std::size_t>(X.rows));
  f.file.redemption_model.predict(X.view(), predicted);
  f.cut = cut;
  for (std::size_t i = 0; i < samples.user.size(); ++i) {
    f.issue_user.push_back(static_cast<Index>(samples.user[i]));
    f.issue_benefit.push_back(static_cast<Index>(samples.benefit[i]));
    f.issue_predicted.push_back(std::clamp(static_cast<double>(predicted[i]), 1e-6, 1 - 1e-6));
    f.issue_label.push_back(label[i]);
    f.issue_held.push_back(samples.time[i] >= cut ? 1 : 0);
  }
  for (std::size_t i = 0; i < samples.user.size(); ++i) {
    if (samples.time[i] < cut) continue;
    f.file.holdout_user.push_back(static_cast<std::int32_t>(samples.user[i]));
    f.file.holdout_benefit.push_back(static_cast<std::int32_t>(samples.benefit[i]));
    f.file.holdout_predicted.push_back(
        std::clamp(static_cast<double>(predicted[i]), 1e-6, 1 - 1e-6));
    f.file.holdout_redeemed.push_back(label[i]);
  }
  f.file.config = Json{{"policy", {{"budget", 40.0}, {"max_per_member", 1}}},
                       {"params",
                        {{"objective", "incremental"},
                         {"top_k", 20},
                         {"method", "dual"},
                         {"num_threads", 2},
                         {"shrink", true},
                         {"incremental", "timing"}}},
                       {"cut_time", cut},
                       {"end_time", f.end}};
  f.file.preference.fit(log, cat, f.end);
  f.file.catalog = cat;
  f.file.events = log;
  f.file.users = f.prog.users;
  f.file.order_value = order_value(log, 0.3, f.end);
  if (behavior) {
    f.file.behavior =
        BenefitPlannerFile::Behavior{f.prog.behavior, f.prog.items, f.prog.benefit_items};
  }
  return f;
}

inline const Fixture& fixture() {
  static const Fixture fx = build_fixture(false);
  return fx;
}

/// fixture() on a program with behaviour, its encoder with a behaviour field.
inline const Fixture& behavior_fixture() {
  static const Fixture fx = build_fixture(true);
  return fx;
}

/// A behaviour log's rows as plain columns, to edit and rebuild (newer / older logs of the same
/// members, items and actions in tests).
struct BehaviorRows {
  std::vector<Index> user, item;
  std::vector<Timestamp> time;
  std::vector<std::int32_t> action;
  std::vector<double> quantity, amount;

  /// The rows of `log` at times before `until`.
  static BehaviorRows of(const BehaviorLog& log, Timestamp until = kMaxTimestamp) {
    BehaviorRows r;
    const std::vector<Index> users = log.users();
    for (std::size_t e = 0; e < users.size(); ++e) {
      if (log.timestamps()[e] >= until) continue;
      r.add(users[e], log.items()[e], log.timestamps()[e], log.actions()[e], log.quantities()[e],
            log.amounts()[e]);
    }
    return r;
  }
  void add(Index u, Index i, Timestamp t, std::int32_t a, double q, double m) {
    user.push_back(u);
    item.push_back(i);
    time.push_back(t);
    action.push_back(a);
    quantity.push_back(q);
    amount.push_back(m);
  }
  /// A log of these rows with the members, items and actions of `like`.
  BehaviorLog build(const BehaviorLog& like) const {
    BehaviorColumns c;
    c.user = user;
    c.item = item;
    c.timestamp = time;
    c.action = action;
    c.quantity = quantity;
    c.amount = amount;
    BehaviorOptions o;
    o.n_users = like.n_users();
    o.n_items = like.n_items();
    o.action_names = like.action_names();
    return BehaviorLog::from_columns(c, o);
  }
};

/// The benefits' kind and channel codes (the pooled effects' attributes).
inline std::vector<std::vector<Index>> kind_and_channel(const Catalog& catalog) {
  std::vector<std::vector<Index>> codes(2);
  std::vector<std::string> channels;
  for (const Benefit& b : catalog.benefits()) {
    codes[0].push_back(static_cast<Index>(b.kind));
    const auto it = std::find(channels.begin(), channels.end(), b.channel);
    codes[1].push_back(static_cast<Index>(it - channels.begin()));
    if (it == channels.end()) channels.push_back(b.channel);
  }
  return codes;
}

/// The fixture's file with the pooled member effects (fitted on the issues before the cut,
/// slope on those after it) and a preference offset of weight `weight`, params set to match.
inline BenefitPlannerFile pooled_file(double weight = 0.5) {
  const Fixture& fx = fixture();
  BenefitPlannerFile f = fx.file;
  const std::vector<std::vector<Index>> codes = kind_and_channel(fx.prog.catalog);
  f.pooled = fit_pooled_member_effects(fx.prog.events.n_users(), fx.prog.events.n_benefits(),
                                       {codes[0], codes[1]}, fx.issue_user, fx.issue_benefit,
                                       fx.issue_predicted, fx.issue_label, {}, fx.issue_held);
  f.preference_weight = weight;
  f.config["params"]["pooled"] = true;
  f.config["params"]["preference_offset"] = true;
  return f;
}

}  // namespace perkrec::test
