// fit_benefit_planner (decide/benefit_planner_fit.hpp): a log fitted in C++ plans within the
// budget, the file round-trips with the same plan, the config reads back as the params, the
// segment checkpoints follow the log, and bad params / data are typed errors before any work.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace perkrec {
namespace {

struct Fitted {
  SimulatedProgram prog;
  BenefitPlannerFitParams params;
  BenefitPlannerFile file;
  BenefitPlannerFitInfo info;
  Timestamp cut = 0;
};

BenefitPlannerFitParams small_params() {
  BenefitPlannerFitParams p;
  p.factors = 4;
  p.epochs = 3;
  p.num_threads = 2;
  p.preference_params = Json{{"latent_classes", 2}, {"em_iterations", 3}};
  p.policy = Json{{"budget", 40.0}, {"max_per_member", 1}};
  return p;
}

const Fitted& fitted() {
  static const Fitted f = [] {
    Fitted out;
    SimulatorParams sp;
    sp.n_users = 200;
    sp.days = 75;
    sp.seed = 13;
    out.prog = simulate(sp);
    out.params = small_params();
    out.cut = out.prog.events.max_time() - 20 * 86400;
    out.file = fit_benefit_planner(out.prog.events, out.prog.catalog, &out.prog.users, out.cut,
                                   nullptr, out.params, {}, &out.info);
    return out;
  }();
  return f;
}

TEST(BenefitPlannerFit, TheFittedFilePlansWithinTheBudgetAndRoundTrips) {
  const Fitted& f = fitted();
  EXPECT_EQ(f.file.events.size(), f.prog.events.size());
  EXPECT_FALSE(f.file.holdout_user.empty());  // shrink
  EXPECT_TRUE(f.file.pooled.has_value());     // pooled
  EXPECT_FALSE(f.file.preference_weight.has_value());
  EXPECT_FALSE(f.info.preference_weight_unclipped.has_value());
  EXPECT_EQ(f.file.order_value.size(), static_cast<std::size_t>(f.prog.events.n_users()));
  const FeatureEncoder enc = FeatureEncoder::from_fm_metadata(f.file.redemption_model.metadata());
  bool segment = false;
  for (const FeatureField& field : enc.spec().fields) segment |= field.name == kMemberSegmentColumn;
  EXPECT_TRUE(segment);

  const BenefitPlanner bp(f.file);
  EXPECT_EQ(bp.cut_time(), f.cut);
  EXPECT_EQ(bp.end_time(), f.prog.events.max_time());
  const BenefitPlanner::Plan plan = bp.plan(bp.end_time());
  ASSERT_GT(plan.result.member.size(), 0u);
  double spent = 0;
  for (float c : plan.result.cost) spent += c;
  EXPECT_LE(spent, 40.0 + 1e-6);
  std::vector<int> per_member(static_cast<std::size_t>(bp.n_users()));
  for (Index u : plan.result.member) EXPECT_LE(++per_member[static_cast<std::size_t>(u)], 1);

  const std::string path = testing::temp_dir() + "/benefit_planner_fit.perk";
  f.file.save(path);
  const BenefitPlanner back = BenefitPlanner::load(path);
  const BenefitPlanner::Plan again = back.plan(back.end_time());
  EXPECT_EQ(again.result.member, plan.result.member);
  EXPECT_EQ(again.result.benefit, plan.result.benefit);
  EXPECT_EQ(again.result.probability, plan.result.probability);
  EXPECT_EQ(again.result.reasons, plan.result.reasons);
}

TEST(BenefitPlannerFit, TheConfigReadsBackAsTheParamsAndRefitsIdentically) {
  const Fitted& f = fitted();
  const BenefitPlannerFitParams read = BenefitPlannerFitParams::from_config(f.file.config);
  EXPECT_EQ(read.to_config(f.cut, f.prog.events.max_time()), f.file.config);
  EXPECT_EQ(f.file.config.at("fm_params").at("epochs"), 3);
  // With fm_threads = 1 (the default) the fit is bit-reproducible, from the read params too.
  const BenefitPlannerFile again =
      fit_benefit_planner(f.prog.events, f.prog.catalog, &f.prog.users, f.cut, nullptr, read);
  EXPECT_EQ(again.to_bytes(), f.file.to_bytes());
}

TEST(BenefitPlannerFit, SegmentCheckpointsEveryThirtyDaysBeforeTheEnd) {
  const Fitted& f = fitted();
  const SegmentCheckpoints& checkpoints = f.info.checkpoints;
  const EventLog& log = f.prog.events;
  ASSERT_EQ(checkpoints.times.size(), 2u);  // 75 days: days 30 and 60
  EXPECT_EQ(checkpoints.times[0], log.min_time() + 30 * 86400);
  EXPECT_EQ(checkpoints.times[1], log.min_time() + 60 * 86400);
  ASSERT_EQ(checkpoints.segments[0].size(), static_cast<std::size_t>(log.n_users()));
  EXPECT_EQ(checkpoints.at(0, checkpoints.times[0] - 1), "none");
  EXPECT_EQ(checkpoints.at(3, checkpoints.times[1]), checkpoints.segments[1][3]);
  EXPECT_EQ(checkpoints.at(-1, checkpoints.times[1]), "none");
  // The checkpoint's segments are a preference model's at that time.
  PreferenceModel model(PreferenceParams::from_json(f.params.preference_params_json()));
  model.fit(log, f.prog.catalog, checkpoints.times[0], f.prog.users);
  const SegmentAssignment seg = model.segments(SegmentRules::defaults());
  for (Index u = 0; u < 20; ++u) {
    EXPECT_EQ(checkpoints.segments[0][static_cast<std::size_t>(u)],
              seg.names[static_cast<std::size_t>(seg.codes[static_cast<std::size_t>(u)])]);
  }
}

TEST(BenefitPlannerFit, BadParamsAndDataAreTypedErrorsNamingTheField) {
  const Fitted& f = fitted();
  const EventLog& log = f.prog.events;
  const Catalog& cat = f.prog.catalog;
  auto with = [](auto change) {
    BenefitPlannerFitParams p = small_params();
    change(p);
    return p;
  };
  PERKREC_EXPECT_THROW_MSG(fit_benefit_planner(log, cat, nullptr, kNoTime, nullptr,
                                               with([](auto& p) { p.weighting = "magic"; })),
                           ConfigError, "weighting");
  PERKREC_EXPECT_THROW_MSG(
      fit_benefit_planner(log, cat, nullptr, kNoTime, nullptr, with([](auto& p) { p.margin = 0; })),
      ConfigError, "margin");
  PERKREC_EXPECT_THROW_MSG(fit_benefit_planner(log, cat, nullptr, kNoTime, nullptr,
                                               with([](auto& p) { p.factors = -1; })),
                           ConfigError, "factors");
  PERKREC_EXPECT_THROW_MSG(
      fit_benefit_planner(log, cat, nullptr, kNoTime, nullptr,
                          with([](auto& p) { p.preference_params["latent_classes"] = -2; })),
      ConfigError, "latent_classes");
  PERKREC_EXPECT_THROW_MSG(fit_benefit_planner(EventLog(), cat), InputError, "catalog");
  PERKREC_EXPECT_THROW_MSG(fit_benefit_planner(log, cat, nullptr, log.max_time() + 1), InputError,
                           "cut_time");
  PERKREC_EXPECT_THROW_MSG(fit_benefit_planner(log, cat, nullptr, log.min_time()), InputError,
                           "no issues before cut_time");
  PERKREC_EXPECT_THROW_MSG(fit_benefit_planner(log, cat, nullptr, log.max_time()), InputError,
                           "early stopping");
  PERKREC_EXPECT_THROW_MSG(
      fit_benefit_planner(log, cat, nullptr, kNoTime, nullptr, with([](auto& p) {
                            p.behavior_field = Json{{"levels", Json::array()}};
                          })),
      InputError, "behavior_field");
  const UserTable other(IdMap::range(3));
  PERKREC_EXPECT_THROW_MSG(fit_benefit_planner(log, cat, &other), InputError, "user_table");
}

TEST(BenefitPlannerFit, AConfigGivenDirectlyRejectsUnknownKeysAFileConfigIgnoresThem) {
  const Fitted& f = fitted();
  EXPECT_EQ(BenefitPlannerFitParams::from_json(f.file.config)
                .to_config(f.cut, f.file.config.at("end_time")),
            f.file.config);
  for (const char* where : {"params", "fm_params", ""}) {
    Json config = f.file.config;
    Json& object = std::string(where).empty() ? config : config[where];
    object["shrinkk"] = true;
    const std::string pointer =
        std::string(where).empty() ? "/shrinkk" : "/" + std::string(where) + "/shrinkk";
    PERKREC_EXPECT_THROW_MSG(BenefitPlannerFitParams::from_json(config), ConfigError, pointer,
                             "unknown key");
    // A model file of another version: the same key is ignored.
    EXPECT_EQ(
        BenefitPlannerFitParams::from_config(config).to_config(f.cut, f.file.config.at("end_time")),
        f.file.config);
  }
  Json config = f.file.config;  // the preference params are strict for both
  config["preference_params"]["latent_clases"] = 2;
  PERKREC_EXPECT_THROW_MSG(BenefitPlannerFitParams::from_config(config), ConfigError,
                           "latent_clases");
}

TEST(BenefitPlannerFit, ThePreferenceOffsetReportsTheUnclippedWeight) {
  const Fitted& f = fitted();
  BenefitPlannerFitParams p = small_params();
  p.preference_offset = true;
  p.segment_field = false;
  BenefitPlannerFitInfo info;
  const BenefitPlannerFile file = fit_benefit_planner(f.prog.events, f.prog.catalog, &f.prog.users,
                                                      f.cut, nullptr, p, {}, &info);
  ASSERT_TRUE(file.preference_weight.has_value());
  ASSERT_TRUE(info.preference_weight_unclipped.has_value());
  EXPECT_TRUE(info.checkpoints.times.empty());
  EXPECT_TRUE(std::isfinite(*info.preference_weight_unclipped));
  // The file's weight is the unclipped one clipped to [0, 1].
  EXPECT_EQ(*file.preference_weight, std::clamp(*info.preference_weight_unclipped, 0.0, 1.0));
}

TEST(BenefitPlannerFit, ABehaviourLogWithAnotherMemberMapIsAnInputErrorBeforeFitting) {
  SimulatorParams sp;
  sp.n_users = 60;
  sp.days = 40;
  sp.seed = 5;
  sp.behavior = true;
  const SimulatedProgram prog = simulate(sp);
  std::vector<std::int64_t> ids(static_cast<std::size_t>(prog.events.n_users()));
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = 1000 + static_cast<std::int64_t>(i);
  EventLog events = prog.events;
  events.set_ids(IdMap::from_integers(ids), IdMap());
  BehaviorLog log = prog.behavior;
  std::vector<std::int64_t> reversed(ids.begin(), ids.begin() + log.n_users());
  std::reverse(reversed.begin(), reversed.end());
  log.set_user_ids(IdMap::from_integers(reversed));
  const BehaviorData behavior{&log, &prog.items, &prog.benefit_items};
  BenefitPlannerFitParams p = small_params();
  p.weighting = "none";
  PERKREC_EXPECT_THROW_MSG(
      fit_benefit_planner(events, prog.catalog, nullptr, kNoTime, &behavior, p), InputError,
      "behavior", "member map");
  // The event log's own map passes the member check (and fails the next check, cheaply).
  reversed.assign(ids.begin(), ids.begin() + log.n_users());
  log.set_user_ids(IdMap::from_integers(reversed));
  PERKREC_EXPECT_THROW_MSG(
      fit_benefit_planner(events, prog.catalog, nullptr, events.min_time(), &behavior, p),
      InputError, "no issues before cut_time");
}

TEST(BenefitPlannerFit, AUserColumnOfAnotherTypeThanItsDefaultFieldIsAnInputError) {
  const Fitted& f = fitted();
  const UserTable& users = f.prog.users;
  UserTable numeric_tier(users.users());
  std::vector<double> codes;
  for (std::int32_t c : users.codes("tier")) codes.push_back(static_cast<double>(c));
  numeric_tier.add_numeric("tier", codes);
  PERKREC_EXPECT_THROW_MSG(fit_benefit_planner(f.prog.events, f.prog.catalog, &numeric_tier,
                                               kNoTime, nullptr, small_params()),
                           InputError, "user_table", "column 'tier'", "field 'tier'", "numeric");
  UserTable text_tenure(users.users());
  text_tenure.add_categorical(
      "tenure_days", std::vector<std::string>(static_cast<std::size_t>(users.size()), "long"));
  PERKREC_EXPECT_THROW_MSG(fit_benefit_planner(f.prog.events, f.prog.catalog, &text_tenure, kNoTime,
                                               nullptr, small_params()),
                           InputError, "column 'tenure_days'", "categorical");
}

TEST(BenefitPlannerFit, PythonJsonDumpsFormatsAsPython) {
  const Json v = Json::parse(
      R"({"b": [1, 2.0, 0.0001, 1e-05, 1.5e+16, 1e15, -0.25, 123.456, true, null],
          "a": "x\"\u00e9\n"})");
  EXPECT_EQ(detail::python_json_dumps(v),
            R"({"a": "x\"\u00e9\n", "b": [1, 2.0, 0.0001, 1e-05, 1.5e+16, )"
            R"(1000000000000000.0, -0.25, 123.456, true, null]})");
}

}  // namespace
}  // namespace perkrec
