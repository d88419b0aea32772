#include <cmath>
#include <cstring>

#include "test_util.hpp"

namespace perkrec {
namespace {

// Members with three one-hot fields: A (4 levels) carries the treatment effect, B (4 levels)
// the baseline, C (3 levels) nothing — or, when `confounded`, the assignment probability and
// part of the baseline while being left out of X (an unobserved confounder).
// effect[k][a] = planted change of P(y = 1) for arm k + 1 in group A = a.
struct UpliftData {
  CsrMatrix<float> X;
  std::vector<float> y;
  std::vector<std::int32_t> treatment;
  std::vector<float> propensity;  // P(observed arm | x)
  std::vector<int> group;         // level of A
  std::vector<float> truth;       // planted effect of arm 1
};

UpliftData simulate(Index rows, const std::vector<std::vector<double>>& effect, std::uint64_t seed,
                    bool confounded = false) {
  Rng rng(seed);
  const int arms = static_cast<int>(effect.size());
  UpliftData d;
  d.X.rows = rows;
  d.X.cols = 11;
  for (Index r = 0; r < rows; ++r) {
    const int a = static_cast<int>(rng.below(4)), b = static_cast<int>(rng.below(4));
    const int c = static_cast<int>(rng.below(3));
    // Confounded: C drives both assignment and baseline and is left out of X (unobserved).
    for (Index col :
         {static_cast<Index>(a), static_cast<Index>(4 + b), static_cast<Index>(8 + c)}) {
      if (confounded && col >= 8) continue;
      d.X.indices.push_back(col);
      d.X.data.push_back(1.0f);
    }
    d.X.indptr.push_back(static_cast<Offset>(d.X.indices.size()));
    // Assignment: uniform over the arms, or (binary, confounded) P(treated) = 0.2, 0.5, 0.8 by C.
    std::int32_t arm;
    double p_observed;
    if (confounded) {
      const double p1 = 0.2 + 0.3 * c;
      arm = rng.bernoulli(p1) ? 1 : 0;
      p_observed = arm == 1 ? p1 : 1.0 - p1;
    } else {
      arm = static_cast<std::int32_t>(rng.below(static_cast<std::uint32_t>(arms + 1)));
      p_observed = 1.0 / (arms + 1);
    }
    const double base = confounded ? 0.2 + 0.05 * b + 0.15 * c : 0.25 + 0.05 * b;
    const double p = base + (arm > 0 ? effect[static_cast<std::size_t>(arm - 1)][a] : 0.0);
    d.y.push_back(rng.bernoulli(p) ? 1.0f : 0.0f);
    d.treatment.push_back(arm);
    d.propensity.push_back(static_cast<float>(p_observed));
    d.group.push_back(a);
    d.truth.push_back(static_cast<float>(effect[0][a]));
  }
  return d;
}

UpliftTarget target_of(const UpliftData& d, bool with_propensity = false) {
  UpliftTarget t;
  t.outcome = d.y;
  t.treatment = d.treatment;
  if (with_propensity) t.propensity = d.propensity;
  return t;
}

UpliftParams params_for(UpliftParams::Learner learner) {
  UpliftParams p;
  p.learner = learner;
  p.base.factors = 4;
  p.base.epochs = 10;
  p.base.num_threads = 1;
  return p;
}

using testing::correlation;

// Mean of column `column` of a rows x columns prediction over the rows of each A group.
std::vector<double> group_means(const std::vector<float>& pred, std::size_t columns,
                                std::size_t column, const std::vector<int>& group) {
  std::vector<double> sum(4, 0.0), n(4, 0.0);
  for (std::size_t i = 0; i < group.size(); ++i) {
    sum[static_cast<std::size_t>(group[i])] += pred[i * columns + column];
    n[static_cast<std::size_t>(group[i])] += 1;
  }
  for (std::size_t g = 0; g < 4; ++g) sum[g] /= n[g];
  return sum;
}

std::vector<float> predict(const UpliftModel& m, const CsrMatrix<float>& X) {
  std::vector<float> out(static_cast<std::size_t>(X.rows) * static_cast<std::size_t>(m.n_arms()));
  m.predict(X.view(), out);
  return out;
}

const std::vector<std::vector<double>> kPlanted = {{0.2, 0.1, -0.1, 0.0}};

class UpliftLearners : public ::testing::TestWithParam<UpliftParams::Learner> {};

TEST_P(UpliftLearners, RecoversPlantedHeterogeneousEffect) {
  const UpliftData d = simulate(40000, kPlanted, 7);
  UpliftModel model(params_for(GetParam()));
  model.fit(d.X.view(), target_of(d));
  ASSERT_EQ(model.n_arms(), 1);
  const std::vector<float> uplift = predict(model, d.X);
  EXPECT_GT(correlation(uplift, d.truth), 0.8);
  const std::vector<double> means = group_means(uplift, 1, 0, d.group);
  EXPECT_GT(means[0], 0.1);
  EXPECT_GT(means[1], 0.03);
  EXPECT_LT(means[2], -0.03);
  for (std::size_t g = 0; g < 4; ++g) EXPECT_NEAR(means[g], kPlanted[0][g], 0.05) << g;
}

TEST_P(UpliftLearners, ZeroEffectGivesUpliftNearZero) {
  const UpliftData d = simulate(100000, {{0.0, 0.0, 0.0, 0.0}}, 11);
  UpliftModel model(params_for(GetParam()));
  model.fit(d.X.view(), target_of(d));
  const std::vector<float> uplift = predict(model, d.X);
  for (double m : group_means(uplift, 1, 0, d.group)) EXPECT_NEAR(m, 0.0, 0.025);
}

TEST_P(UpliftLearners, MultiTreatmentRanksTheArms) {
  // Arm 1 helps groups 0 and 1, arm 2 helps groups 2 and 3.
  const UpliftData d = simulate(60000, {{0.2, 0.15, 0.0, 0.0}, {0.0, 0.0, 0.15, 0.2}}, 13);
  UpliftModel model(params_for(GetParam()));
  model.fit(d.X.view(), target_of(d));
  ASSERT_EQ(model.n_arms(), 2);
  const std::vector<float> uplift = predict(model, d.X);
  const std::vector<double> arm1 = group_means(uplift, 2, 0, d.group);
  const std::vector<double> arm2 = group_means(uplift, 2, 1, d.group);
  EXPECT_GT(arm1[0], arm2[0] + 0.08);
  EXPECT_GT(arm1[1], arm2[1] + 0.05);
  EXPECT_GT(arm2[2], arm1[2] + 0.05);
  EXPECT_GT(arm2[3], arm1[3] + 0.08);
  std::vector<float> outcomes(d.y.size() * 3);
  model.predict_outcomes(d.X.view(), outcomes);
  for (float p : outcomes) ASSERT_TRUE(p > 0.0f && p < 1.0f);
}

TEST_P(UpliftLearners, SaveLoadRoundTripPredictsIdentically) {
  const UpliftData d = simulate(5000, {{0.2, 0.1, -0.1, 0.0}, {0.0, 0.1, 0.1, 0.0}}, 17);
  UpliftModel model(params_for(GetParam()));
  model.fit(d.X.view(), target_of(d, true));
  const std::string bytes = model.to_bytes();
  const UpliftModel loaded = UpliftModel::from_bytes(bytes);
  EXPECT_EQ(loaded.get_params(), model.get_params());
  EXPECT_EQ(loaded.to_bytes(), bytes);
  EXPECT_EQ(predict(loaded, d.X), predict(model, d.X));
  const std::string path = testing::temp_dir() + "/uplift_round_trip.perk";
  model.save(path);
  EXPECT_EQ(predict(UpliftModel::load(path), d.X), predict(model, d.X));
  EXPECT_THROW(FM::from_bytes(bytes), ModelFormatError);  // the container names its kind
}

TEST_P(UpliftLearners, OneThreadIsBitReproducible) {
  const UpliftData d = simulate(5000, kPlanted, 19);
  UpliftModel a(params_for(GetParam())), b(params_for(GetParam()));
  a.fit(d.X.view(), target_of(d));
  b.fit(d.X.view(), target_of(d));
  const std::vector<float> pa = predict(a, d.X), pb = predict(b, d.X);
  ASSERT_EQ(pa.size(), pb.size());
  EXPECT_EQ(std::memcmp(pa.data(), pb.data(), pa.size() * sizeof(float)), 0);
}

INSTANTIATE_TEST_SUITE_P(Learners, UpliftLearners,
                         ::testing::Values(UpliftParams::Learner::t, UpliftParams::Learner::x,
                                           UpliftParams::Learner::dr),
                         [](const auto& param_info) {
                           UpliftParams p;
                           p.learner = param_info.param;
                           return p.to_json()["learner"].template get<std::string>();
                         });

TEST(Uplift, LoggedPropensitiesCorrectAnUnobservedConfounder) {
  // C raises both the chance of treatment and the baseline, and X does not show it: outcome
  // models alone overstate every effect; the DR correction with the logged propensities
  // removes that bias (and the same learner without them keeps it).
  const UpliftData d = simulate(200000, kPlanted, 23, true);
  UpliftModel with(params_for(UpliftParams::Learner::dr)),
      without(params_for(UpliftParams::Learner::dr));
  with.fit(d.X.view(), target_of(d, true));
  without.fit(d.X.view(), target_of(d));
  EXPECT_EQ(with.propensities_clipped(), 0);
  const std::vector<double> corrected = group_means(predict(with, d.X), 1, 0, d.group);
  const std::vector<double> biased = group_means(predict(without, d.X), 1, 0, d.group);
  for (std::size_t g = 0; g < 4; ++g) {
    EXPECT_NEAR(corrected[g], kPlanted[0][g], 0.04) << g;
    EXPECT_GT(biased[g], kPlanted[0][g] + 0.06) << g;
  }
}

TEST(Uplift, ClipsExtremePropensitiesAndCountsThem) {
  UpliftData d = simulate(2000, kPlanted, 29);
  for (std::size_t i = 0; i < 10; ++i) d.propensity[i] = 0.001f;
  d.propensity[10] = 1.0f;
  UpliftModel model(params_for(UpliftParams::Learner::dr));
  model.fit(d.X.view(), target_of(d, true));
  EXPECT_EQ(model.propensities_clipped(), 11);
}

TEST(Uplift, BadInputIsTypedAndLeavesTheModelUnchanged) {
  const UpliftData d = simulate(2000, kPlanted, 31);
  UpliftModel model(params_for(UpliftParams::Learner::dr));
  model.fit(d.X.view(), target_of(d));
  const std::vector<float> before = predict(model, d.X);
  const std::string bytes_before = model.to_bytes();

  auto expect_bad = [&](UpliftData bad, bool with_propensity, const char* field) {
    PERKREC_EXPECT_THROW_MSG(model.fit(bad.X.view(), target_of(bad, with_propensity)), InputError,
                             field);
  };
  UpliftData bad = d;
  bad.y[3] = 0.5f;
  expect_bad(bad, false, "outcome at position 3");
  bad = d;
  bad.y[4] = std::nanf("");
  expect_bad(bad, false, "outcome at position 4");
  bad = d;
  bad.treatment[5] = -1;
  expect_bad(bad, false, "treatment at position 5");
  bad = d;
  bad.treatment[6] = 3;  // arm 2 has no rows
  expect_bad(bad, false, "treatment arm 2 has 0 rows");
  bad = d;
  bad.treatment[7] = 1'000'000;
  expect_bad(bad, false, "treatment code 1000000");
  bad = d;
  for (auto& t : bad.treatment) t = 0;
  expect_bad(bad, false, "no treated rows");
  bad = d;
  bad.propensity[8] = 0.0f;
  expect_bad(bad, true, "propensity at position 8");
  bad = d;
  bad.propensity[9] = 1.5f;
  expect_bad(bad, true, "propensity at position 9");
  bad = d;
  bad.propensity.pop_back();
  expect_bad(bad, true, "propensity has 1999 entries");
  bad = d;
  bad.y.pop_back();
  expect_bad(bad, false, "outcome has 1999 entries");
  bad = d;
  bad.X.data[0] = INFINITY;
  expect_bad(bad, false, "X");
  UpliftTarget weighted = target_of(d);
  std::vector<float> weights(d.y.size(), 1.0f);
  weights[2] = -1.0f;
  weighted.sample_weights = weights;
  PERKREC_EXPECT_THROW_MSG(model.fit(d.X.view(), weighted), InputError,
                           "sample_weights at position 2");

  EXPECT_EQ(model.to_bytes(), bytes_before);
  EXPECT_EQ(predict(model, d.X), before);

  CsrMatrix<float> narrow = d.X;
  narrow.cols = 12;
  std::vector<float> out(d.y.size());
  PERKREC_EXPECT_THROW_MSG(model.predict(narrow.view(), out), InputError, "12 feature columns");
  std::vector<float> short_out(3);
  PERKREC_EXPECT_THROW_MSG(model.predict(d.X.view(), short_out), InputError, "out has 3");
  PERKREC_EXPECT_THROW_MSG(UpliftModel().predict(d.X.view(), out), InputError, "not fitted");
}

TEST(Uplift, ParamsValidateAndRoundTripThroughJson) {
  UpliftParams p;
  p.learner = UpliftParams::Learner::x;
  p.base.factors = 16;
  p.propensity_clip = 0.05f;
  p.fit_propensity = true;
  const UpliftParams q = UpliftParams::from_json(p.to_json());
  EXPECT_EQ(q.to_json(), p.to_json());
  PERKREC_EXPECT_THROW_MSG(UpliftParams::from_json(Json{{"learner", "s"}}), ConfigError, "learner");
  PERKREC_EXPECT_THROW_MSG(UpliftParams::from_json(Json{{"propensity_clip", 0.5}}), ConfigError,
                           "propensity_clip");
  PERKREC_EXPECT_THROW_MSG(UpliftParams::from_json(Json{{"cross_fit_folds", 0}}), ConfigError,
                           "cross_fit_folds");
  PERKREC_EXPECT_THROW_MSG(UpliftParams::from_json(Json{{"base", {{"factors", -1}}}}), ConfigError,
                           "/base", "factors");
  PERKREC_EXPECT_THROW_MSG(UpliftParams::from_json(Json{{"base", {{"loss", "squared"}}}}),
                           ConfigError, "base.loss");
  PERKREC_EXPECT_THROW_MSG(UpliftParams::from_json(Json{{"extra", 1}}), ConfigError, "extra");
}

TEST(Uplift, DamagedFileIsRejected) {
  const UpliftData d = simulate(2000, kPlanted, 37);
  UpliftModel model(params_for(UpliftParams::Learner::t));
  model.fit(d.X.view(), target_of(d));
  // A T-learner's file claiming to be an X-learner lacks the effect models.
  ModelWriter w(UpliftModel::kind);
  model.write(w, "");
  w.content()["params"]["learner"] = "x";
  EXPECT_THROW(UpliftModel::from_bytes(w.to_bytes()), ModelFormatError);
  ModelWriter w2(UpliftModel::kind);
  model.write(w2, "");
  w2.content()["n_arms"] = 2;
  EXPECT_THROW(UpliftModel::from_bytes(w2.to_bytes()), ModelFormatError);
}

}  // namespace
}  // namespace perkrec
