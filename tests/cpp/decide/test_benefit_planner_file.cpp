// The fitted pipeline's model file (decide/benefit_planner_file.hpp): round trip, validation
// before saving, and damage on load.
#include <string>

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

}  // namespace
}  // namespace perkrec
