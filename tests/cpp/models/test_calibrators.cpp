#include <cmath>
#include <vector>

#include "test_util.hpp"

namespace perkrec {
namespace {

TEST(IsotonicCalibrator, PoolsAdjacentViolatorsExactly) {
  const std::vector<double> s = {4, 1, 3, 2, 3};
  const std::vector<double> y = {1, 1, 0, 0, 1};  // by score: 1->1, 2->0, 3->{0,1}, 4->1
  IsotonicCalibrator iso;
  iso.fit(s, y);
  // Ties first: score 3 -> 0.5. Then 1 (1.0) > 2 (0.0) pools to 0.5 over scores 1..2; 3 (0.5)
  // joins no one (0.5 <= 0.5); 4 -> 1.
  EXPECT_EQ(iso.knots_x(), (std::vector<double>{1, 2, 3, 3, 4, 4}));
  EXPECT_EQ(iso.knots_y(), (std::vector<double>{0.5, 0.5, 0.5, 0.5, 1, 1}));
  EXPECT_DOUBLE_EQ(iso.predict(0.0), 0.5);   // constant below the range
  EXPECT_DOUBLE_EQ(iso.predict(3.5), 0.75);  // linear between blocks
  EXPECT_DOUBLE_EQ(iso.predict(9.0), 1.0);   // constant above
  std::vector<double> out(3);
  const std::vector<double> q = {1.5, 3.0, 4.0};
  iso.predict(q, out);
  EXPECT_EQ(out, (std::vector<double>{0.5, 0.5, 1.0}));
}

TEST(IsotonicCalibrator, IsMonotoneAndMatchesTheRatesOfItsBlocks) {
  Rng rng(5);
  std::vector<double> s(4000), y(4000);
  for (std::size_t i = 0; i < s.size(); ++i) {
    s[i] = rng.uniform(-3.0, 3.0);
    y[i] = rng.uniform(0.0, 1.0) < 1.0 / (1.0 + std::exp(-s[i])) ? 1.0 : 0.0;
  }
  IsotonicCalibrator iso;
  iso.fit(s, y);
  double previous = -1.0, total = 0.0;
  for (double t = -3.5; t <= 3.5; t += 0.01) {
    const double p = iso.predict(t);
    EXPECT_GE(p, previous);
    previous = p;
  }
  for (double v : s) total += iso.predict(v);
  double positives = 0.0;
  for (double v : y) positives += v;
  EXPECT_NEAR(total, positives, 1e-6 * positives);  // PAV keeps each block's mean
  EXPECT_NEAR(iso.predict(0.0), 0.5, 0.08);
}

TEST(PlattCalibrator, RecoversAPlantedSigmoid) {
  Rng rng(11);
  std::vector<double> s(200000), y(200000);
  for (std::size_t i = 0; i < s.size(); ++i) {
    s[i] = rng.uniform(-2.0, 2.0);
    y[i] = rng.uniform(0.0, 1.0) < 1.0 / (1.0 + std::exp(-(2.0 * s[i] - 1.0))) ? 1.0 : 0.0;
  }
  PlattCalibrator platt;
  platt.fit(s, y);
  EXPECT_NEAR(platt.a(), 2.0, 0.05);
  EXPECT_NEAR(platt.b(), -1.0, 0.05);
  EXPECT_NEAR(platt.predict(0.5), 0.5, 0.02);
}

TEST(Calibrators, BadInputRaisesAndChangesNothing) {
  PlattCalibrator platt;
  const std::vector<double> s = {0.1, 0.2}, y = {0, 1};
  platt.fit(s, y);
  const double a = platt.a();
  EXPECT_THROW(platt.fit(s, std::vector<double>{0, 2}), InputError);  // label not 0/1
  EXPECT_THROW(platt.fit(std::vector<double>{0.1, NAN}, y), InputError);
  EXPECT_THROW(platt.fit(std::vector<double>{}, std::vector<double>{}), InputError);
  EXPECT_THROW(platt.fit(std::vector<double>{0.1}, y), InputError);
  EXPECT_EQ(platt.a(), a);
  EXPECT_THROW(platt.predict(NAN), InputError);
  IsotonicCalibrator iso;
  EXPECT_THROW(iso.predict(0.5), InputError);  // not fitted
  EXPECT_THROW(iso.fit(s, std::vector<double>{0, INFINITY}), InputError);
  EXPECT_FALSE(iso.fitted());
  std::vector<double> out(1);
  iso.fit(s, y);
  EXPECT_THROW(iso.predict(s, out), InputError);  // output length
}

TEST(Calibrators, JsonRoundTripAndStrictLoading) {
  const std::vector<double> s = {0.1, 0.4, 0.35, 0.8}, y = {0, 1, 0, 1};
  PlattCalibrator platt;
  platt.fit(s, y);
  const PlattCalibrator p2 = PlattCalibrator::from_json(platt.to_json());
  EXPECT_EQ(p2.a(), platt.a());
  EXPECT_EQ(p2.b(), platt.b());
  IsotonicCalibrator iso;
  iso.fit(s, y);
  const IsotonicCalibrator i2 = IsotonicCalibrator::from_json(iso.to_json());
  EXPECT_EQ(i2.knots_x(), iso.knots_x());
  EXPECT_EQ(i2.knots_y(), iso.knots_y());
  EXPECT_THROW(PlattCalibrator::from_json(Json{{"a", 1.0}, {"b", 0.0}, {"c", 1}}), ConfigError);
  EXPECT_THROW(PlattCalibrator::from_json(Json{{"a", 1.0}}), ConfigError);
  EXPECT_THROW(IsotonicCalibrator::from_json(Json{{"x", {1.0, 0.0}}, {"y", {0.1, 0.2}}}),
               ConfigError);  // x decreases
  EXPECT_THROW(IsotonicCalibrator::from_json(Json{{"x", {1.0}}, {"y", {0.1, 0.2}}}), ConfigError);
}

}  // namespace
}  // namespace perkrec
