// The fitted pipeline's model file (decide/benefit_planner_file.hpp): round trip, validation
// before saving, and damage on load.
#include <cmath>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace perkrec {
namespace {

BenefitPlannerFile small_file() {
  SimulatorParams sp;
  sp.n_users = 200;
  sp.days = 60;
  sp.seed = 5;
  const SimulatedProgram prog = simulate(sp);
  BenefitPlannerFile f;
  f.config = Json{{"policy", Json::object()}, {"params", {{"margin", 0.3}}}};
  CsrMatrix<float> X;
  X.rows = 4;
  X.cols = 2;
  X.indptr = {0, 1, 2, 3, 4};
  X.indices = {0, 1, 0, 1};
  X.data = {1.0f, 1.0f, 1.0f, 1.0f};
  const std::vector<float> labels{1.0f, 0.0f, 1.0f, 0.0f};
  const std::vector<std::int32_t> fields{0, 0};
  FMTarget target;
  target.labels = labels;
  FMParams fp;
  fp.factors = 2;
  fp.epochs = 2;
  fp.num_threads = 1;
  f.redemption_model = FM(fp);
  f.redemption_model.fit(X.view(), target, fields, 1);
  f.preference.fit(prog.events, prog.catalog, prog.truth.reference_time);
  f.catalog = prog.catalog;
  f.events = prog.events;
  f.users = prog.users;
  f.order_value = order_value(prog.events, 0.3);
  f.holdout_user = {0, 1, 2};
  f.holdout_benefit = {0, 1, 0};
  f.holdout_predicted = {0.1, 0.5, 0.9};
  f.holdout_redeemed = {0.0, 1.0, 1.0};
  f.holdout_weight = {1.0f, 0.5f, 2.0f};
  return f;
}

TEST(BenefitPlannerFile, RoundTripsEveryPart) {
  const BenefitPlannerFile f = small_file();
  const std::string bytes = f.to_bytes();
  const BenefitPlannerFile g = BenefitPlannerFile::from_bytes(bytes);
  EXPECT_EQ(g.config, f.config);
  EXPECT_EQ(g.order_value, f.order_value);
  EXPECT_EQ(g.holdout_user, f.holdout_user);
  EXPECT_EQ(g.holdout_predicted, f.holdout_predicted);
  EXPECT_EQ(g.holdout_weight, f.holdout_weight);
  EXPECT_TRUE(g.incremental_share.empty());
  ASSERT_TRUE(g.users.has_value());
  EXPECT_EQ(g.events.size(), f.events.size());
  EXPECT_EQ(g.catalog.size(), f.catalog.size());
  EXPECT_EQ(g.redemption_model.to_bytes(), f.redemption_model.to_bytes());
  EXPECT_EQ(g.preference.to_bytes(), f.preference.to_bytes());
  EXPECT_EQ(g.to_bytes(), bytes);
  EXPECT_EQ(ModelReader::from_bytes(bytes).kind(), "BenefitPlanner");
}

TEST(BenefitPlannerFile, InconsistentPartsAreRefusedBeforeSaving) {
  BenefitPlannerFile f = small_file();
  f.holdout_user[1] = static_cast<std::int32_t>(f.events.n_users());
  EXPECT_THROW(f.to_bytes(), InputError);
  f = small_file();
  f.order_value.pop_back();
  EXPECT_THROW(f.validate(), InputError);
  f = small_file();
  f.holdout_redeemed[0] = 0.5;
  EXPECT_THROW(f.validate(), InputError);
  f = small_file();
  f.incremental_share.assign(3, 0.5f);
  EXPECT_THROW(f.validate(), InputError);
  f = small_file();
  f.users = UserTable(IdMap::range(3));
  EXPECT_THROW(f.validate(), InputError);
}

TEST(BenefitPlannerFile, DamagedFilesRaiseModelFormatError) {
  const std::string bytes = small_file().to_bytes();
  EXPECT_THROW(BenefitPlannerFile::from_bytes(bytes.substr(0, bytes.size() / 2)), ModelFormatError);
  for (std::size_t at : {std::size_t{40}, bytes.size() / 3, bytes.size() - 20}) {
    std::string damaged = bytes;
    damaged[at] = static_cast<char>(damaged[at] ^ 0x5a);
    EXPECT_THROW(BenefitPlannerFile::from_bytes(damaged), ModelFormatError) << "byte " << at;
  }
  EXPECT_THROW(BenefitPlannerFile::from_bytes(small_file().catalog.to_bytes()), ModelFormatError);
}

/// Hand-made pooled effects over the small file's members and benefits (2 attributes).
PooledMemberEffects small_pooled(const BenefitPlannerFile& f) {
  const Index n = f.events.n_users(), nb = f.events.n_benefits();
  PooledMemberEffects e;
  e.intercept = -0.25;
  e.slope = 0.4;
  e.n_codes = {3, 2};
  e.variance = {0.5, 0.25, 0.125};
  for (Index u = 0; u < n; ++u) e.member.push_back(0.01 * u - 0.5);
  e.benefit_code.resize(2);
  e.attribute_effect.resize(2);
  for (Index b = 0; b < nb; ++b) {
    e.benefit_code[0].push_back(b % 3);
    e.benefit_code[1].push_back(b % 2);
  }
  for (std::size_t a = 0; a < 2; ++a) {
    for (Index i = 0; i < n * e.n_codes[a]; ++i)
      e.attribute_effect[a].push_back(0.001 * i * (a == 0 ? 1 : -1));
  }
  return e;
}

TEST(BenefitPlannerFile, RoundTripsPooledEffectsAndThePreferenceWeight) {
  BenefitPlannerFile f = small_file();
  f.pooled = small_pooled(f);
  f.preference_weight = 0.375;
  const std::string bytes = f.to_bytes();
  const BenefitPlannerFile g = BenefitPlannerFile::from_bytes(bytes);
  ASSERT_TRUE(g.pooled.has_value());
  EXPECT_EQ(g.pooled->intercept, f.pooled->intercept);
  EXPECT_EQ(g.pooled->slope, f.pooled->slope);
  EXPECT_EQ(g.pooled->member, f.pooled->member);
  EXPECT_EQ(g.pooled->n_codes, f.pooled->n_codes);
  EXPECT_EQ(g.pooled->benefit_code, f.pooled->benefit_code);
  EXPECT_EQ(g.pooled->attribute_effect, f.pooled->attribute_effect);
  EXPECT_EQ(g.pooled->variance, f.pooled->variance);
  ASSERT_TRUE(g.preference_weight.has_value());
  EXPECT_EQ(*g.preference_weight, 0.375);
  EXPECT_EQ(g.to_bytes(), bytes);
  // Rows of P get the same effects before and after the round trip.
  std::vector<float> a(static_cast<std::size_t>(f.events.n_benefits()), 0.2f), b = a;
  f.pooled->apply_row(a, 7);
  g.pooled->apply_row(b, 7);
  EXPECT_EQ(a, b);
  EXPECT_NE(a[0], 0.2f);
  // Without the optional parts the content has neither key (the layout of older files) and
  // loads without them.
  const std::string plain = small_file().to_bytes();
  const Json content = ModelReader::from_bytes(plain).content();
  EXPECT_EQ(content.dump().find("pooled"), std::string::npos);
  EXPECT_EQ(content.dump().find("preference_weight"), std::string::npos);
  const BenefitPlannerFile h = BenefitPlannerFile::from_bytes(plain);
  EXPECT_FALSE(h.pooled.has_value());
  EXPECT_FALSE(h.preference_weight.has_value());
}

TEST(BenefitPlannerFile, RoundTripsBenefitLevelsAndOlderFilesLoadWithout) {
  BenefitPlannerFile f = small_file();
  const auto nb = static_cast<std::size_t>(f.events.n_benefits());
  for (std::size_t b = 0; b < nb; ++b) f.benefit_level.push_back(0.5 + 0.01 * b);
  const std::string bytes = f.to_bytes();
  const BenefitPlannerFile g = BenefitPlannerFile::from_bytes(bytes);
  EXPECT_EQ(g.benefit_level, f.benefit_level);
  EXPECT_EQ(g.to_bytes(), bytes);
  const std::string plain = small_file().to_bytes();
  EXPECT_FALSE(ModelReader::from_bytes(plain).has("benefit_level"));
  EXPECT_TRUE(BenefitPlannerFile::from_bytes(plain).benefit_level.empty());
  f.benefit_level.pop_back();
  PERKREC_EXPECT_THROW_MSG(f.validate(), InputError, "benefit_level");
  f.benefit_level.push_back(0.0);
  PERKREC_EXPECT_THROW_MSG(f.validate(), InputError, "benefit_level[");
  f.benefit_level.back() = std::nan("");
  EXPECT_THROW(f.to_bytes(), InputError);
}

TEST(BenefitPlannerFile, InconsistentPooledEffectsAreRefused) {
  BenefitPlannerFile f = small_file();
  f.pooled = small_pooled(f);
  f.pooled->member.pop_back();
  EXPECT_THROW(f.validate(), InputError);
  f.pooled = small_pooled(f);
  f.pooled->benefit_code[1][0] = 2;  // n_codes[1] is 2
  EXPECT_THROW(f.to_bytes(), InputError);
  f.pooled = small_pooled(f);
  f.pooled->slope = 1.5;
  EXPECT_THROW(f.validate(), InputError);
  f.pooled = small_pooled(f);
  f.pooled->attribute_effect[0][3] = std::nan("");
  EXPECT_THROW(f.validate(), InputError);
  f.pooled = small_pooled(f);
  f.preference_weight = -0.1;
  EXPECT_THROW(f.validate(), InputError);
  f.preference_weight = std::nan("");
  EXPECT_THROW(f.validate(), InputError);
  f.preference_weight = 0.5;
  const std::string bytes = f.to_bytes();
  std::string damaged = bytes;
  damaged[bytes.size() - 40] = static_cast<char>(damaged[bytes.size() - 40] ^ 0x5a);
  EXPECT_THROW(BenefitPlannerFile::from_bytes(damaged), ModelFormatError);
  std::vector<float> row(3, 0.5f);
  EXPECT_THROW(f.pooled->apply_row(row, 0), InputError);  // not n_benefits values
}

}  // namespace
}  // namespace perkrec
