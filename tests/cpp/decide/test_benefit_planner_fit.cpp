// fit_benefit_planner (decide/benefit_planner_fit.hpp): a log fitted in C++ plans within the
// budget, the file round-trips with the same plan, the config reads back as the params, the
// segment checkpoints follow the log, and bad params / data are typed errors before any work.
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
  SegmentCheckpoints checkpoints;
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
                                   nullptr, out.params, {}, &out.checkpoints);
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
  const EventLog& log = f.prog.events;
  ASSERT_EQ(f.checkpoints.times.size(), 2u);  // 75 days: days 30 and 60
  EXPECT_EQ(f.checkpoints.times[0], log.min_time() + 30 * 86400);
  EXPECT_EQ(f.checkpoints.times[1], log.min_time() + 60 * 86400);
  ASSERT_EQ(f.checkpoints.segments[0].size(), static_cast<std::size_t>(log.n_users()));
  EXPECT_EQ(f.checkpoints.at(0, f.checkpoints.times[0] - 1), "none");
  EXPECT_EQ(f.checkpoints.at(3, f.checkpoints.times[1]), f.checkpoints.segments[1][3]);
  EXPECT_EQ(f.checkpoints.at(-1, f.checkpoints.times[1]), "none");
  // The checkpoint's segments are a preference model's at that time.
  PreferenceModel model(PreferenceParams::from_json(f.params.preference_params_json()));
  model.fit(log, f.prog.catalog, f.checkpoints.times[0], f.prog.users);
  const SegmentAssignment seg = model.segments(SegmentRules::defaults());
  for (Index u = 0; u < 20; ++u) {
    EXPECT_EQ(f.checkpoints.segments[0][static_cast<std::size_t>(u)],
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
