#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "test_util.hpp"

namespace perkrec {
namespace {

using testing::temp_dir;

// Midnight UTC, so that whole days in the helpers below are whole UTC days.
constexpr Timestamp kBase = 19676 * kSecondsPerDay;

Timestamp at_day(double day) { return kBase + static_cast<Timestamp>(std::llround(day * kSecondsPerDay)); }

struct Order {
  Index user;
  double day;
  float amount;
};

EventLog orders_log(const std::vector<Order>& orders, Index n_users = -1) {
  std::vector<Index> users, benefits;
  std::vector<std::uint8_t> types;
  std::vector<Timestamp> times;
  std::vector<float> amounts;
  for (const Order& o : orders) {
    users.push_back(o.user);
    benefits.push_back(kNoBenefit);
    types.push_back(static_cast<std::uint8_t>(EventType::ordered));
    times.push_back(at_day(o.day));
    amounts.push_back(o.amount);
  }
  EventColumns c;
  c.user = users;
  c.benefit = benefits;
  c.type = types;
  c.timestamp = times;
  c.order_amount = amounts;
  return EventLog::from_columns(c, n_users, 0);
}

// Members simulated by BG/NBD (rate per day, observed from their first order for T_i days) with
// Gamma-Gamma order values; orders fall at whole-day-free continuous times (no two on a day in
// practice at these rates, so occasions = orders).
struct Simulated {
  std::vector<Order> orders;
  Index members = 0;
};

Simulated simulate(Index members, const BGNBD& bg, const GammaGamma& gg, std::uint64_t seed, double span_days) {
  Simulated s;
  s.members = members;
  for (Index u = 0; u < members; ++u) {
    Rng rng(seed, 7, static_cast<std::uint64_t>(u));
    const double lambda = rng.gamma(bg.r) / bg.alpha;
    const double p = rng.beta(bg.a, bg.b);
    const double nu = rng.gamma(gg.q) / gg.gamma;
    const double start = std::floor(rng.uniform(0.0, span_days / 2));
    double t = start;
    auto value = [&] { return static_cast<float>(rng.gamma(gg.p) / nu); };
    s.orders.push_back({u, t, value()});
    // Dropout is possible after each repeat purchase (never after the first): x = 0 members
    // are alive for sure, as the BG/NBD likelihood has it.
    while (true) {
      t += rng.exponential() / lambda;
      if (t >= span_days) break;
      // One order per day: a second order on the same day would merge into one occasion.
      if (std::floor(t) == std::floor(s.orders.back().day)) t = std::floor(t) + 1.0;
      if (t >= span_days) break;
      s.orders.push_back({u, std::floor(t) + 0.5, value()});
      if (rng.bernoulli(p)) break;
    }
  }
  return s;
}

std::string cdnow_folder() {
  const char* dir = std::getenv("PERKREC_DATA_DIR");
  std::string base = dir != nullptr ? std::string(dir) : std::string(PERKREC_TEST_SOURCE_DIR) + "/../../../shared/data";
  return base + "/cdnow-fader-hardie";
}

bool require_data() {
  const char* v = std::getenv("PERKREC_REQUIRE_DATA");
  return v != nullptr && std::string(v) == "1";
}

TEST(CLV, CdnowPublishedBgnbdAndGammaGamma) {
  std::ifstream in(cdnow_folder() + "/cdnow_customers_summary_with_transactions.csv");
  if (!in) {
    if (require_data()) FAIL() << "CDNOW data missing and PERKREC_REQUIRE_DATA=1";
    GTEST_SKIP() << "CDNOW data not found in ../shared/data";
  }
  std::string line;
  std::getline(in, line);
  std::vector<double> x, t_x, T, zbar;
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string id, a, b, c, d;
    std::getline(ss, id, ',');
    std::getline(ss, a, ',');
    std::getline(ss, b, ',');
    std::getline(ss, c, ',');
    std::getline(ss, d, ',');
    x.push_back(std::stod(a));
    t_x.push_back(std::stod(b));
    T.push_back(std::stod(c));
    zbar.push_back(std::stod(d));
  }
  ASSERT_EQ(x.size(), 2357u);
  CLVModel model;
  model.fit(CLVSummary::from_arrays(x, t_x, T, zbar));
  const BGNBD& bg = model.bgnbd();
  EXPECT_NEAR(bg.r, 0.243, 0.001);
  EXPECT_NEAR(bg.alpha, 4.414, 0.001);
  EXPECT_NEAR(bg.a, 0.793, 0.001);
  EXPECT_NEAR(bg.b, 2.426, 0.001);
  EXPECT_NEAR(model.report().purchase.fit.log_likelihood, -9582.4, 0.05);
  EXPECT_TRUE(model.report().purchase.fit.converged);
  ASSERT_TRUE(model.report().spend_fitted);
  const GammaGamma& gg = model.report().spend.model;
  EXPECT_NEAR(gg.p, 6.2488, 0.01);
  EXPECT_NEAR(gg.q, 3.7446, 0.01);
  EXPECT_NEAR(gg.gamma, 15.4477, 0.02);
  // The standard errors are finite and small relative to the estimates.
  for (double se : model.report().purchase.fit.standard_errors) {
    EXPECT_TRUE(std::isfinite(se));
  }
  EXPECT_LT(std::fabs(model.report().spend.frequency_spend_correlation), 0.2);
  const CLVPrediction pred = model.predict(39.0);
  // Fader, Hardie and Lee's worked example (customer 1: x 2, t_x 30.43, T 38.86): 1.226
  // expected purchases in the next 39 weeks (lifetimes 0.11.3: 1.22591).
  EXPECT_NEAR(pred.expected_purchases[0], 1.2259, 0.0005);
  for (std::size_t i = 0; i < pred.clv.size(); ++i) {
    ASSERT_TRUE(std::isfinite(pred.clv[i]) && std::isfinite(pred.clv_lower[i]) && std::isfinite(pred.clv_upper[i]));
  }
}

TEST(CLV, RecoversSimulatedParameters) {
  const BGNBD truth{0.8, 20.0, 0.6, 3.0};
  const GammaGamma spend_truth{5.0, 4.0, 30.0};
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    const Simulated s = simulate(6000, truth, spend_truth, seed, 400.0);
    CLVParams p;
    p.time_unit = CLVParams::TimeUnit::day;
    p.interval_draws = 0;
    CLVModel model(p);
    model.fit(orders_log(s.orders), at_day(400.0));
    const MaximumLikelihoodFit& f = model.report().purchase.fit;
    const double want[4] = {truth.r, truth.alpha, truth.a, truth.b};
    for (int k = 0; k < 4; ++k) {
      ASSERT_TRUE(std::isfinite(f.standard_errors[static_cast<std::size_t>(k)]));
      EXPECT_LT(std::fabs(f.params[static_cast<std::size_t>(k)] - want[k]),
                4.0 * f.standard_errors[static_cast<std::size_t>(k)])
          << "seed " << seed << " parameter " << k << " got " << f.params[static_cast<std::size_t>(k)];
    }
    ASSERT_TRUE(model.report().spend_fitted);
    const MaximumLikelihoodFit& g = model.report().spend.fit;
    const double spend_want[3] = {spend_truth.p, spend_truth.q, spend_truth.gamma};
    for (int k = 0; k < 3; ++k) {
      EXPECT_LT(std::fabs(g.params[static_cast<std::size_t>(k)] - spend_want[k]),
                4.0 * g.standard_errors[static_cast<std::size_t>(k)])
          << "seed " << seed << " spend parameter " << k << " got " << g.params[static_cast<std::size_t>(k)];
    }
  }
}

TEST(CLV, RecoversParametersOnLargeData) {
  // Above 20,000 rows the Nelder-Mead start runs on a sample and Newton on all rows.
  const BGNBD truth{0.8, 20.0, 0.6, 3.0};
  const GammaGamma spend_truth{5.0, 4.0, 30.0};
  const Simulated s = simulate(40000, truth, spend_truth, 4, 400.0);
  CLVParams p;
  p.time_unit = CLVParams::TimeUnit::day;
  p.interval_draws = 0;
  p.num_threads = 1;
  CLVModel model(p);
  model.fit(orders_log(s.orders), at_day(400.0));
  const MaximumLikelihoodFit& f = model.report().purchase.fit;
  ASSERT_GT(model.report().spend.fit.members, 20000);
  const double want[4] = {truth.r, truth.alpha, truth.a, truth.b};
  for (std::size_t k = 0; k < 4; ++k) {
    EXPECT_LT(std::fabs(f.params[k] - want[k]), 4.0 * f.standard_errors[k]) << "parameter " << k << " got " << f.params[k];
  }
  EXPECT_TRUE(f.converged);
  const MaximumLikelihoodFit& g = model.report().spend.fit;
  const double spend_want[3] = {spend_truth.p, spend_truth.q, spend_truth.gamma};
  for (std::size_t k = 0; k < 3; ++k) {
    EXPECT_LT(std::fabs(g.params[k] - spend_want[k]), 4.0 * g.standard_errors[k]) << "spend " << k << " got " << g.params[k];
  }
  EXPECT_TRUE(g.converged);
}

TEST(CLV, SummaryBoundaryCases) {
  // Member 0: three orders on day 0 (one occasion), one on day 10 and one exactly at the cut
  // (day 20, excluded). Member 1: first order on the cut's last day. Member 2: orders only after
  // the cut. Member 3: two orders in one week and one the next week.
  const EventLog log = orders_log({{0, 0.1, 5}, {0, 0.5, 5}, {0, 0.9, 10}, {0, 10.2, 8}, {0, 20.0, 100},
                                   {1, 19.5, 7}, {2, 25.0, 3}, {3, 1.0, 4}, {3, 3.0, 6}, {3, 9.0, 2}});
  const CLVSummary s = summarize_purchases(log, at_day(20.0), CLVParams::TimeUnit::day);
  ASSERT_EQ(s.users, (std::vector<Index>{0, 1, 3}));
  EXPECT_EQ(s.x[0], 1);
  EXPECT_EQ(s.t_x[0], 10);
  EXPECT_EQ(s.T[0], 19);  // the last day before the cut is day 19
  EXPECT_DOUBLE_EQ(s.monetary[0], 8);
  EXPECT_NEAR(s.mean_order_value[0], 28.0 / 4, 1e-6);
  EXPECT_EQ(s.x[1], 0);
  EXPECT_EQ(s.T[1], 0);
  EXPECT_EQ(s.monetary[1], 0);
  EXPECT_EQ(s.x[2], 2);
  EXPECT_EQ(s.t_x[2], 8);
  EXPECT_DOUBLE_EQ(s.monetary[2], 4);
  const CLVSummary w = summarize_purchases(log, at_day(20.0), CLVParams::TimeUnit::week, CLVParams::TimeUnit::week);
  EXPECT_EQ(w.x[0], 1);
  EXPECT_NEAR(w.t_x[0], 10.0 / 7, 1e-12);
  EXPECT_NEAR(w.T[0], 19.0 / 7, 1e-12);
  EXPECT_EQ(w.x[2], 1);  // days 1 and 3 share the first week
  EXPECT_NEAR(w.t_x[2], 8.0 / 7, 1e-12);
  EXPECT_DOUBLE_EQ(w.monetary[2], 2);
}

TEST(CLV, NoLeakNoThreadEffectAndSaveLoad) {
  const Simulated s = simulate(3000, BGNBD{0.7, 15.0, 0.8, 2.5}, GammaGamma{4.0, 3.0, 20.0}, 11, 300.0);
  std::vector<Order> with_future = s.orders;
  for (Index u = 0; u < 3000; u += 3) with_future.push_back({u, 305.0 + u % 7, 999.0f});
  CLVParams p;
  p.time_unit = CLVParams::TimeUnit::day;
  p.num_threads = 1;
  p.interval_draws = 50;
  CLVModel one(p);
  one.fit(orders_log(s.orders), at_day(300.0));
  p.num_threads = 2;
  CLVModel two(p);
  two.fit(orders_log(with_future, 3000), at_day(300.0));
  const CLVPrediction a = one.predict(30.0, 0.01, 0.5);
  const CLVPrediction b = two.predict(30.0, 0.01, 0.5);
  EXPECT_EQ(one.users(), two.users());
  EXPECT_EQ(a.clv, b.clv);
  EXPECT_EQ(a.clv_lower, b.clv_lower);
  EXPECT_EQ(a.clv_upper, b.clv_upper);
  EXPECT_EQ(a.p_alive, b.p_alive);
  EXPECT_EQ(a.lifecycle_stage, b.lifecycle_stage);
  EXPECT_EQ(one.report().purchase.fit.params, two.report().purchase.fit.params);

  const CLVModel loaded = CLVModel::from_bytes(one.to_bytes());
  const CLVPrediction c = loaded.predict(30.0, 0.01, 0.5);
  EXPECT_EQ(a.clv, c.clv);
  EXPECT_EQ(a.clv_lower, c.clv_lower);
  EXPECT_EQ(a.lifecycle_stage, c.lifecycle_stage);
  EXPECT_EQ(loaded.to_bytes(), one.to_bytes());
  const std::string path = temp_dir() + "/clv_test.perk";
  one.save(path);
  EXPECT_EQ(CLVModel::load(path).predict(30.0).clv, one.predict(30.0).clv);

  // Every truncation and a flipped byte anywhere are typed errors.
  const std::string bytes = one.to_bytes();
  for (std::size_t cut : {std::size_t{0}, std::size_t{10}, bytes.size() / 2, bytes.size() - 1}) {
    EXPECT_THROW(CLVModel::from_bytes(bytes.substr(0, cut)), ModelFormatError);
  }
  for (std::size_t at = 0; at < bytes.size(); at += 97) {
    std::string bad = bytes;
    bad[at] = static_cast<char>(bad[at] ^ 0x5a);
    EXPECT_THROW(CLVModel::from_bytes(bad), ModelFormatError) << "byte " << at;
  }

  // Files whose checksum is right but whose content is not: a typed error, never a model.
  const auto tampered = [&](const std::function<void(Json&)>& edit) {
    ModelWriter w(CLVModel::kind);
    one.write(w, "");
    edit(w.content());
    return w.to_bytes();
  };
  const std::vector<std::function<void(Json&)>> edits = {
      [](Json& content) { content["program_cycle"] = -1.0; },
      [](Json& content) { content["n_members"] = content["n_members"].get<std::int64_t>() + 1; },
      [](Json& content) { content["n_users"] = 3; },
      [](Json& content) { content["params"]["time_unit"] = "month"; },
      [](Json& content) { content["p_alive_thresholds"] = Json::array({0.5, 2.0, 0.1}); },
      [](Json& content) { content["cut_time"] = "yesterday"; },
      [](Json& content) { content["surprise"] = 1; },
      [](Json& content) { content.erase("spend_fitted"); },
  };
  for (std::size_t e = 0; e < edits.size(); ++e) {
    EXPECT_THROW(CLVModel::from_bytes(tampered(edits[e])), ModelFormatError) << "edit " << e;
  }

  // Predictions are finite, ordered and consistent.
  for (std::size_t i = 0; i < a.clv.size(); ++i) {
    ASSERT_TRUE(a.p_alive[i] >= 0 && a.p_alive[i] <= 1);
    ASSERT_TRUE(std::isfinite(a.clv[i]) && a.clv[i] >= 0);
    ASSERT_LE(a.clv_lower[i], a.clv_upper[i]);
    ASSERT_LT(a.lifecycle_stage[i], 5);
  }
  // Zero discount and margin 1: clv is expected purchases x expected order value.
  const CLVPrediction plain = one.predict(30.0);
  for (std::size_t i = 0; i < plain.clv.size(); ++i) {
    ASSERT_NEAR(plain.clv[i], plain.expected_purchases[i] * plain.expected_order_value[i], 1e-9 * (1 + plain.clv[i]));
  }
}

TEST(CLV, ConcurrentPredictMatchesSerial) {
  const Simulated s = simulate(1500, BGNBD{0.7, 15.0, 0.8, 2.5}, GammaGamma{4.0, 3.0, 20.0}, 8, 300.0);
  CLVParams p;
  p.time_unit = CLVParams::TimeUnit::day;
  p.interval_draws = 30;
  p.num_threads = 1;
  CLVModel model(p);
  model.fit(orders_log(s.orders), at_day(300.0));
  const CLVPrediction serial = model.predict(20.0, 0.02, 0.7);
  std::vector<CLVPrediction> results(4);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < results.size(); ++t) {
    threads.emplace_back([&, t] { results[t] = model.predict(20.0, 0.02, 0.7); });
  }
  for (auto& t : threads) t.join();
  for (const CLVPrediction& r : results) {
    EXPECT_EQ(r.clv, serial.clv);
    EXPECT_EQ(r.clv_upper, serial.clv_upper);
  }
}

TEST(CLV, IntervalHoldsThePointEstimate) {
  const Simulated s = simulate(2000, BGNBD{0.7, 15.0, 0.8, 2.5}, GammaGamma{4.0, 3.0, 20.0}, 5, 300.0);
  CLVParams p;
  p.time_unit = CLVParams::TimeUnit::day;
  p.interval_draws = 400;
  CLVModel model(p);
  model.fit(orders_log(s.orders), at_day(300.0));
  const CLVPrediction pred = model.predict(60.0);
  std::size_t inside = 0;
  for (std::size_t i = 0; i < pred.clv.size(); ++i) inside += pred.clv_lower[i] <= pred.clv[i] && pred.clv[i] <= pred.clv_upper[i];
  EXPECT_GT(static_cast<double>(inside) / static_cast<double>(pred.clv.size()), 0.95);
}

TEST(CLV, BoundaryDataFitsWithoutErrors) {
  // No repeat buyers: one order each.
  std::vector<Order> single;
  for (Index u = 0; u < 200; ++u) single.push_back({u, static_cast<double>(u % 50), 10.0f + static_cast<float>(u % 3)});
  CLVModel none;
  none.fit(orders_log(single), at_day(60.0));
  EXPECT_FALSE(none.report().spend_fitted);
  CLVPrediction pn = none.predict(10.0);
  for (std::size_t i = 0; i < pn.clv.size(); ++i) ASSERT_TRUE(std::isfinite(pn.clv[i]) && std::isfinite(pn.p_alive[i]));

  // Everyone buys every 5 days until the cut and nobody drops out: a -> 0 or b -> infinity.
  std::vector<Order> steady;
  for (Index u = 0; u < 300; ++u) {
    for (double d = static_cast<double>(u % 5); d < 100; d += 5) steady.push_back({u, d + 0.5, 20.0f + static_cast<float>(d) * 0.01f});
  }
  CLVParams p;
  p.time_unit = CLVParams::TimeUnit::day;
  CLVModel all(p);
  all.fit(orders_log(steady), at_day(100.0));
  const auto& f = all.report().purchase.fit;
  EXPECT_TRUE(f.at_boundary[2] || f.at_boundary[3] || f.params[2] / f.params[3] < 1e-3)
      << "a " << f.params[2] << " b " << f.params[3];
  const CLVPrediction pa = all.predict(30.0);
  for (std::size_t i = 0; i < pa.clv.size(); ++i) {
    ASSERT_TRUE(std::isfinite(pa.clv[i]) && std::isfinite(pa.expected_purchases[i]));
    EXPECT_GT(pa.p_alive[i], 0.9);
  }
  // A penalizer pulls the parameters in and still fits.
  p.penalizer = 0.1;
  CLVModel penalized(p);
  penalized.fit(orders_log(steady), at_day(100.0));
  EXPECT_TRUE(std::isfinite(penalized.report().purchase.fit.log_likelihood));
}

TEST(CLV, LifecycleStagesFollowTheRule) {
  // Member 0 buys every 10 days up to the cut (active); member 1 bought every 10 days then
  // stopped 100 days ago (lost); member 2 has one order yesterday (new).
  std::vector<Order> orders;
  for (double d = 0; d < 300; d += 10) orders.push_back({0, d + 0.5, 10});
  for (double d = 0; d < 200; d += 10) orders.push_back({1, d + 0.5, 10});
  orders.push_back({2, 298.5, 10});
  for (Index u = 3; u < 60; ++u) {
    for (double d = static_cast<double>(u); d < 300; d += 7.0 + static_cast<double>(u % 13)) orders.push_back({u, d + 0.5, 10});
  }
  CLVParams p;
  p.time_unit = CLVParams::TimeUnit::day;
  p.interval_draws = 0;
  CLVModel model(p);
  model.fit(orders_log(orders), at_day(300.0));
  const CLVPrediction pred = model.predict(30.0);
  EXPECT_EQ(pred.lifecycle_stage[0], 1);
  EXPECT_EQ(pred.lifecycle_stage[1], 4);
  EXPECT_EQ(pred.lifecycle_stage[2], 0);
  EXPECT_TRUE(std::isnan(pred.clv_lower[0]));
}

TEST(CLV, BadInputRaisesTypedErrorsAndChangesNothing) {
  const EventLog log = orders_log({{0, 1.5, 10}, {0, 5.5, 20}, {1, 2.5, 5}, {1, 9.5, 5}, {2, 3.5, 8}});
  CLVParams p;
  p.time_unit = CLVParams::TimeUnit::day;
  CLVModel model(p);
  model.fit(log, at_day(20.0));
  const std::string before = model.to_bytes();
  PERKREC_EXPECT_THROW_MSG(model.fit(log, at_day(1.0)), InputError, "cut_time", "earliest order");
  PERKREC_EXPECT_THROW_MSG(model.fit(EventLog(), at_day(1.0)), InputError, "log", "empty");
  PERKREC_EXPECT_THROW_MSG(model.predict(0.0), InputError, "horizon");
  PERKREC_EXPECT_THROW_MSG(model.predict(std::nan("")), InputError, "horizon");
  PERKREC_EXPECT_THROW_MSG(model.predict(5.0, -0.1), InputError, "discount_rate");
  PERKREC_EXPECT_THROW_MSG(model.predict(5.0, 0.0, -1.0), InputError, "margin");
  const std::vector<double> ok = {1, 2}, neg = {1, -2}, nan = {1, std::nan("")}, T = {5, 5};
  PERKREC_EXPECT_THROW_MSG(model.fit(CLVSummary::from_arrays(ok, ok, T, neg)), InputError, "monetary", "position 1");
  PERKREC_EXPECT_THROW_MSG(CLVSummary::from_arrays(nan, ok, T, ok), InputError, "x", "position 1");
  EXPECT_EQ(model.to_bytes(), before);
  PERKREC_EXPECT_THROW_MSG(CLVParams::from_json(Json{{"time_unit", "month"}}), ConfigError, "time_unit", "month");
  PERKREC_EXPECT_THROW_MSG(CLVParams::from_json(Json{{"model", "paretonbd2"}}), ConfigError, "model");
  PERKREC_EXPECT_THROW_MSG(CLVParams::from_json(Json{{"penalizer", -1.0}}), ConfigError, "penalizer");
  PERKREC_EXPECT_THROW_MSG(CLVParams::from_json(Json{{"bogus", 1}}), ConfigError, "bogus");
  // Negative and NaN amounts never reach the model: the event log refuses them.
  EXPECT_THROW(orders_log({{0, 1.0, -5.0f}}), InputError);
  EXPECT_THROW(orders_log({{0, 1.0, std::nanf("")}}), InputError);
  CLVModel unfitted;
  EXPECT_THROW(unfitted.predict(1.0), InputError);
  EXPECT_THROW(unfitted.to_bytes(), InputError);
}

TEST(BGNBD, RobustFitMatchesTheHistoricalFitOnOrdinaryData) {
  // The preference model's historical Nelder-Mead and the robust fitter agree on the optimum.
  const Simulated s = simulate(3000, BGNBD{0.5, 10.0, 0.7, 2.0}, GammaGamma{4.0, 3.0, 20.0}, 21, 300.0);
  CLVParams p;
  p.time_unit = CLVParams::TimeUnit::day;
  const CLVSummary sum = summarize_purchases(orders_log(s.orders), at_day(300.0), p.time_unit);
  const BGNBD old = BGNBD::fit(sum.x, sum.t_x, sum.T);
  const BGNBDFit robust = BGNBD::maximum_likelihood(sum.x, sum.t_x, sum.T);
  double ll_old = 0;
  for (std::size_t i = 0; i < sum.size(); ++i) {
    if (sum.T[i] > 0) ll_old += old.log_likelihood(sum.x[i], sum.t_x[i], sum.T[i]);
  }
  EXPECT_GE(robust.fit.log_likelihood, ll_old - 1e-6);
  EXPECT_NEAR(robust.fit.log_likelihood, ll_old, 1e-2);
  EXPECT_NEAR(robust.model.r, old.r, 0.01 * old.r);
}

}  // namespace
}  // namespace perkrec
