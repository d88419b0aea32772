#include <array>
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

Timestamp at_day(double day) {
  return kBase + static_cast<Timestamp>(std::llround(day * kSecondsPerDay));
}

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

std::string cdnow_folder() {
  const char* dir = std::getenv("PERKREC_DATA_DIR");
  std::string base = dir != nullptr
                         ? std::string(dir)
                         : std::string(PERKREC_TEST_SOURCE_DIR) + "/../../../shared/data";
  return base + "/cdnow-fader-hardie";
}

bool require_data() {
  const char* v = std::getenv("PERKREC_REQUIRE_DATA");
  return v != nullptr && std::string(v) == "1";
}

// Members simulated by BG/NBD (rate per day, observed from their first order for T_i days) with
// Gamma-Gamma order values; orders fall at whole-day-free continuous times (no two on a day in
// practice at these rates, so occasions = orders).
struct Simulated {
  std::vector<Order> orders;
  Index members = 0;
};

// Members simulated by any purchase model: BG/NBD (dropout after each repeat purchase, never
// after the first: x = 0 members are alive for sure, as its likelihood has it), MBG/NBD (also
// right after the first) or Pareto/NBD (death at an exponential time of rate mu).
Simulated simulate_model(Index members, const PurchaseModel& truth, const GammaGamma& gg,
                         std::uint64_t seed, double span_days) {
  Simulated s;
  s.members = members;
  const auto& th = truth.params;
  for (Index u = 0; u < members; ++u) {
    Rng rng(seed, 7, static_cast<std::uint64_t>(u));
    const double lambda = rng.gamma(th[0]) / th[1];
    const bool pareto = truth.kind == PurchaseModelKind::paretonbd;
    const double p = pareto ? 0.0 : rng.beta(th[2], th[3]);
    const double nu = rng.gamma(gg.q) / gg.gamma;
    const double start = std::floor(rng.uniform(0.0, span_days / 2));
    const double death =
        pareto ? start + rng.exponential() / (rng.gamma(th[2]) / th[3]) : span_days;
    double t = start;
    auto value = [&] { return static_cast<float>(rng.gamma(gg.p) / nu); };
    s.orders.push_back({u, t, value()});
    if (truth.kind == PurchaseModelKind::mbgnbd && rng.bernoulli(p)) continue;
    while (true) {
      t += rng.exponential() / lambda;
      if (t >= std::min(span_days, death)) break;
      // One order per day: a second order on the same day would merge into one occasion.
      if (std::floor(t) == std::floor(s.orders.back().day)) t = std::floor(t) + 1.0;
      if (t >= std::min(span_days, death)) break;
      s.orders.push_back({u, std::floor(t) + 0.5, value()});
      if (!pareto && rng.bernoulli(p)) break;
    }
  }
  return s;
}

Simulated simulate(Index members, const BGNBD& bg, const GammaGamma& gg, std::uint64_t seed,
                   double span_days) {
  return simulate_model(members,
                        PurchaseModel{PurchaseModelKind::bgnbd, {bg.r, bg.alpha, bg.a, bg.b}}, gg,
                        seed, span_days);
}

std::vector<std::vector<double>> cdnow_summary_columns() {
  std::ifstream in(cdnow_folder() + "/cdnow_customers_summary_with_transactions.csv");
  if (!in) return {};
  std::string line;
  std::getline(in, line);
  std::vector<std::vector<double>> columns(4);
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string field;
    std::getline(ss, field, ',');  // ID
    for (auto& column : columns) {
      std::getline(ss, field, ',');
      column.push_back(std::stod(field));
    }
  }
  return columns;
}

TEST(CLV, CdnowPublishedBgnbdAndGammaGamma) {
  const auto columns = cdnow_summary_columns();
  if (columns.empty()) {
    if (require_data()) FAIL() << "CDNOW data missing and PERKREC_REQUIRE_DATA=1";
    GTEST_SKIP() << "CDNOW data not found in ../shared/data";
  }
  const std::vector<double>&x = columns[0], &t_x = columns[1], &T = columns[2], &zbar = columns[3];
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
    ASSERT_TRUE(std::isfinite(pred.clv[i]) && std::isfinite(pred.clv_lower[i]) &&
                std::isfinite(pred.clv_upper[i]));
  }
}

TEST(CLV, RecoversSimulatedParameters) {
  const BGNBD truth{0.8, 20.0, 0.6, 3.0};
  const GammaGamma spend_truth{5.0, 4.0, 30.0};
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    const Simulated s = simulate(6000, truth, spend_truth, seed, 400.0);
    CLVParams p;
    p.forecaster = CLVParams::Forecaster::purchase;
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
          << "seed " << seed << " parameter " << k << " got "
          << f.params[static_cast<std::size_t>(k)];
    }
    ASSERT_TRUE(model.report().spend_fitted);
    const MaximumLikelihoodFit& g = model.report().spend.fit;
    const double spend_want[3] = {spend_truth.p, spend_truth.q, spend_truth.gamma};
    for (int k = 0; k < 3; ++k) {
      EXPECT_LT(std::fabs(g.params[static_cast<std::size_t>(k)] - spend_want[k]),
                4.0 * g.standard_errors[static_cast<std::size_t>(k)])
          << "seed " << seed << " spend parameter " << k << " got "
          << g.params[static_cast<std::size_t>(k)];
    }
  }
}

TEST(CLV, RecoversParametersOnLargeData) {
  // Above 20,000 rows the Nelder-Mead start runs on a sample and Newton on all rows.
  const BGNBD truth{0.8, 20.0, 0.6, 3.0};
  const GammaGamma spend_truth{5.0, 4.0, 30.0};
  const Simulated s = simulate(40000, truth, spend_truth, 4, 400.0);
  CLVParams p;
  p.forecaster = CLVParams::Forecaster::purchase;
  p.time_unit = CLVParams::TimeUnit::day;
  p.interval_draws = 0;
  p.num_threads = 1;
  CLVModel model(p);
  model.fit(orders_log(s.orders), at_day(400.0));
  const MaximumLikelihoodFit& f = model.report().purchase.fit;
  ASSERT_GT(model.report().spend.fit.members, 20000);
  const double want[4] = {truth.r, truth.alpha, truth.a, truth.b};
  for (std::size_t k = 0; k < 4; ++k) {
    EXPECT_LT(std::fabs(f.params[k] - want[k]), 4.0 * f.standard_errors[k])
        << "parameter " << k << " got " << f.params[k];
  }
  EXPECT_TRUE(f.converged);
  const MaximumLikelihoodFit& g = model.report().spend.fit;
  const double spend_want[3] = {spend_truth.p, spend_truth.q, spend_truth.gamma};
  for (std::size_t k = 0; k < 3; ++k) {
    EXPECT_LT(std::fabs(g.params[k] - spend_want[k]), 4.0 * g.standard_errors[k])
        << "spend " << k << " got " << g.params[k];
  }
  EXPECT_TRUE(g.converged);
}

TEST(CLV, SummaryBoundaryCases) {
  // Member 0: three orders on day 0 (one occasion), one on day 10 and one exactly at the cut
  // (day 20, excluded). Member 1: first order on the cut's last day. Member 2: orders only after
  // the cut. Member 3: two orders in one week and one the next week.
  const EventLog log = orders_log({{0, 0.1, 5},
                                   {0, 0.5, 5},
                                   {0, 0.9, 10},
                                   {0, 10.2, 8},
                                   {0, 20.0, 100},
                                   {1, 19.5, 7},
                                   {2, 25.0, 3},
                                   {3, 1.0, 4},
                                   {3, 3.0, 6},
                                   {3, 9.0, 2}});
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
  const CLVSummary w =
      summarize_purchases(log, at_day(20.0), CLVParams::TimeUnit::week, CLVParams::TimeUnit::week);
  EXPECT_EQ(w.x[0], 1);
  EXPECT_NEAR(w.t_x[0], 10.0 / 7, 1e-12);
  EXPECT_NEAR(w.T[0], 19.0 / 7, 1e-12);
  EXPECT_EQ(w.x[2], 1);  // days 1 and 3 share the first week
  EXPECT_NEAR(w.t_x[2], 8.0 / 7, 1e-12);
  EXPECT_DOUBLE_EQ(w.monetary[2], 2);
}

TEST(CLV, NoLeakNoThreadEffectAndSaveLoad) {
  const Simulated s =
      simulate(3000, BGNBD{0.7, 15.0, 0.8, 2.5}, GammaGamma{4.0, 3.0, 20.0}, 11, 300.0);
  std::vector<Order> with_future = s.orders;
  for (Index u = 0; u < 3000; u += 3) with_future.push_back({u, 305.0 + u % 7, 999.0f});
  CLVParams p;
  p.forecaster = CLVParams::Forecaster::purchase;
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
      [](Json& content) {
        content["p_alive_thresholds"] = Json::array({0.5, 2.0, 0.1});
      },
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
    ASSERT_NEAR(plain.clv[i], plain.expected_purchases[i] * plain.expected_order_value[i],
                1e-9 * (1 + plain.clv[i]));
  }
}

TEST(CLV, ConcurrentPredictMatchesSerial) {
  const Simulated s =
      simulate(1500, BGNBD{0.7, 15.0, 0.8, 2.5}, GammaGamma{4.0, 3.0, 20.0}, 8, 300.0);
  CLVParams p;
  p.forecaster = CLVParams::Forecaster::purchase;
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
  const Simulated s =
      simulate(2000, BGNBD{0.7, 15.0, 0.8, 2.5}, GammaGamma{4.0, 3.0, 20.0}, 5, 300.0);
  CLVParams p;
  p.forecaster = CLVParams::Forecaster::purchase;
  p.time_unit = CLVParams::TimeUnit::day;
  p.interval_draws = 400;
  CLVModel model(p);
  model.fit(orders_log(s.orders), at_day(300.0));
  const CLVPrediction pred = model.predict(60.0);
  std::size_t inside = 0;
  for (std::size_t i = 0; i < pred.clv.size(); ++i)
    inside += pred.clv_lower[i] <= pred.clv[i] && pred.clv[i] <= pred.clv_upper[i];
  EXPECT_GT(static_cast<double>(inside) / static_cast<double>(pred.clv.size()), 0.95);
}

TEST(CLV, BoundaryDataFitsWithoutErrors) {
  // No repeat buyers: one order each.
  std::vector<Order> single;
  for (Index u = 0; u < 200; ++u)
    single.push_back({u, static_cast<double>(u % 50), 10.0f + static_cast<float>(u % 3)});
  CLVModel none;
  none.fit(orders_log(single), at_day(60.0));
  EXPECT_FALSE(none.report().spend_fitted);
  CLVPrediction pn = none.predict(10.0);
  for (std::size_t i = 0; i < pn.clv.size(); ++i)
    ASSERT_TRUE(std::isfinite(pn.clv[i]) && std::isfinite(pn.p_alive[i]));

  // Everyone buys every 5 days until the cut and nobody drops out: a -> 0 or b -> infinity.
  std::vector<Order> steady;
  for (Index u = 0; u < 300; ++u) {
    for (double d = static_cast<double>(u % 5); d < 100; d += 5)
      steady.push_back({u, d + 0.5, 20.0f + static_cast<float>(d) * 0.01f});
  }
  CLVParams p;
  p.forecaster = CLVParams::Forecaster::purchase;
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

TEST(CLV, CdnowMbgnbdAndParetoNbdEqualLifetimes) {
  const auto columns = cdnow_summary_columns();
  if (columns.empty()) {
    if (require_data()) FAIL() << "CDNOW data missing and PERKREC_REQUIRE_DATA=1";
    GTEST_SKIP() << "CDNOW data not found in ../shared/data";
  }
  const CLVSummary summary =
      CLVSummary::from_arrays(columns[0], columns[1], columns[2], columns[3]);
  // lifetimes 0.11.3 on the same summaries (ModifiedBetaGeoFitter, ParetoNBDFitter, defaults),
  // and its p_alive / expected purchases in 39 weeks for customers 1-3.
  struct Case {
    PurchaseModelKind kind;
    std::array<double, 4> params;
    std::array<double, 3> p_alive, expected;
  };
  const Case cases[] = {
      {PurchaseModelKind::mbgnbd,
       {0.524838, 6.182988, 0.891356, 1.614000},
       {0.706126, 0.170820, 0.389716},
       {1.262671, 0.188789, 0.153954}},
      {PurchaseModelKind::paretonbd,
       {0.553283, 10.577758, 0.606210, 11.668200},
       {0.869120, 0.167877, 0.295103},
       {1.455118, 0.170986, 0.107063}},
  };
  for (const Case& c : cases) {
    CLVParams p;
    p.forecaster = CLVParams::Forecaster::purchase;
    p.model = c.kind;
    p.interval_draws = 20;
    CLVModel model(p);
    model.fit(summary);
    const MaximumLikelihoodFit& f = model.report().purchase.fit;
    EXPECT_TRUE(f.converged) << PurchaseModel::name(c.kind);
    for (std::size_t k = 0; k < 4; ++k) {
      EXPECT_NEAR(f.params[k] / c.params[k], 1.0, 1e-3)
          << PurchaseModel::name(c.kind) << " parameter " << k;
      EXPECT_TRUE(std::isfinite(f.standard_errors[k]));
    }
    const CLVPrediction pred = model.predict(39.0);
    for (std::size_t i = 0; i < 3; ++i) {
      EXPECT_NEAR(pred.p_alive[i], c.p_alive[i], 1e-4)
          << PurchaseModel::name(c.kind) << " customer " << i + 1;
      EXPECT_NEAR(pred.expected_purchases[i], c.expected[i], 1e-4)
          << PurchaseModel::name(c.kind) << " customer " << i + 1;
    }
    for (std::size_t i = 0; i < pred.clv.size(); ++i) {
      ASSERT_TRUE(std::isfinite(pred.clv[i]) && std::isfinite(pred.clv_lower[i]) &&
                  std::isfinite(pred.clv_upper[i]));
    }
    if (c.kind == PurchaseModelKind::paretonbd) {
      EXPECT_NEAR(f.log_likelihood, -9595.0, 0.05);  // Fader and Hardie's Pareto/NBD note
    }
  }
}

TEST(CLV, EveryPurchaseModelRecoversSimulatedParameters) {
  const PurchaseModel truths[] = {{PurchaseModelKind::mbgnbd, {0.8, 20.0, 0.6, 3.0}},
                                  {PurchaseModelKind::paretonbd, {0.8, 20.0, 0.7, 60.0}}};
  for (const PurchaseModel& truth : truths) {
    for (std::uint64_t seed : {1u, 2u, 3u}) {
      const Simulated s = simulate_model(5000, truth, GammaGamma{5.0, 4.0, 30.0}, seed, 400.0);
      CLVParams p;
      p.forecaster = CLVParams::Forecaster::purchase;
      p.model = truth.kind;
      p.time_unit = CLVParams::TimeUnit::day;
      p.interval_draws = 0;
      CLVModel model(p);
      model.fit(orders_log(s.orders), at_day(400.0));
      const MaximumLikelihoodFit& f = model.report().purchase.fit;
      for (std::size_t k = 0; k < 4; ++k) {
        ASSERT_TRUE(std::isfinite(f.standard_errors[k]))
            << PurchaseModel::name(truth.kind) << " seed " << seed;
        EXPECT_LT(std::fabs(f.params[k] - truth.params[k]), 4.0 * f.standard_errors[k])
            << PurchaseModel::name(truth.kind) << " seed " << seed << " parameter " << k << " got "
            << f.params[k];
      }
      // The fitted model's expected purchases of a fresh member match the simulated mean.
      EXPECT_TRUE(f.converged) << PurchaseModel::name(truth.kind) << " seed " << seed;
    }
  }
}

TEST(CLV, EveryPurchaseModelIsFiniteOnBoundaryData) {
  std::vector<Order> single, steady, mixed;
  for (Index u = 0; u < 200; ++u)
    single.push_back({u, static_cast<double>(u % 50), 10.0f + static_cast<float>(u % 3)});
  for (Index u = 0; u < 300; ++u) {
    for (double d = static_cast<double>(u % 5); d < 100; d += 5)
      steady.push_back({u, d + 0.5, 20.0f});
  }
  // Half one-time buyers, half buying every day until the cut; one member whose first order
  // is on the cut's last day (T = 0).
  for (Index u = 0; u < 100; ++u) mixed.push_back({u, static_cast<double>(u % 30), 5.0f});
  for (Index u = 100; u < 200; ++u) {
    for (double d = static_cast<double>(u % 30); d < 60; d += 1)
      mixed.push_back({u, d + 0.5, 5.0f});
  }
  mixed.push_back({200, 59.5, 5.0f});
  const std::pair<const std::vector<Order>*, double> logs[] = {
      {&single, 60.0}, {&steady, 100.0}, {&mixed, 60.0}};
  for (auto kind : {PurchaseModelKind::bgnbd, PurchaseModelKind::mbgnbd,
                    PurchaseModelKind::paretonbd, PurchaseModelKind::bgbb}) {
    for (auto unit : {CLVParams::TimeUnit::day, CLVParams::TimeUnit::week}) {
      for (std::size_t l = 0; l < 3; ++l) {
        for (double penalizer : {0.0, 0.01}) {
          CLVParams p;
          p.forecaster = CLVParams::Forecaster::purchase;
          p.model = kind;
          p.time_unit = unit;
          if (kind == PurchaseModelKind::bgbb) p.occasion = unit;  // one opportunity per time_unit
          p.penalizer = penalizer;
          p.interval_draws = 20;
          CLVModel model(p);
          model.fit(orders_log(*logs[l].first), at_day(logs[l].second));
          const CLVPrediction pred = model.predict(13.0, 0.01);
          for (std::size_t i = 0; i < pred.clv.size(); ++i) {
            ASSERT_TRUE(std::isfinite(pred.clv[i]) && std::isfinite(pred.expected_purchases[i]) &&
                        pred.p_alive[i] >= 0 && pred.p_alive[i] <= 1 &&
                        std::isfinite(pred.clv_lower[i]) && std::isfinite(pred.clv_upper[i]))
                << PurchaseModel::name(kind) << " log " << l << " member " << i << " penalizer "
                << penalizer;
          }
          // Save / load keeps the model and its predictions.
          const CLVModel loaded = CLVModel::from_bytes(model.to_bytes());
          EXPECT_EQ(loaded.purchase_model().kind, kind);
          EXPECT_EQ(loaded.predict(13.0, 0.01).clv, pred.clv);
        }
      }
    }
  }
}

TEST(BGBB, RecoversSimulatedParametersAndFitsThroughCLVModel) {
  // Members with 6 to 20 opportunities: alive until death (probability theta before each
  // opportunity), buying with probability p at each opportunity while alive.
  const double truth[4] = {1.2, 0.75, 0.65, 2.8};
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    std::vector<double> x, t_x, n;
    for (int u = 0; u < 6000; ++u) {
      Rng rng(seed, 3, static_cast<std::uint64_t>(u));
      const double p = rng.beta(truth[0], truth[1]), theta = rng.beta(truth[2], truth[3]);
      const int opportunities = 6 + u % 15;
      double count = 0, last = 0;
      for (int k = 1; k <= opportunities; ++k) {
        if (rng.bernoulli(theta)) break;
        if (rng.bernoulli(p)) {
          count += 1;
          last = k;
        }
      }
      x.push_back(count);
      t_x.push_back(last);
      n.push_back(opportunities);
    }
    const BGBBFit f = BGBB::maximum_likelihood(x, t_x, n);
    EXPECT_TRUE(f.fit.converged) << "seed " << seed;
    for (std::size_t k = 0; k < 4; ++k) {
      ASSERT_TRUE(std::isfinite(f.fit.standard_errors[k]));
      EXPECT_LT(std::fabs(f.fit.params[k] - truth[k]), 4.0 * f.fit.standard_errors[k])
          << "seed " << seed << " parameter " << k << " got " << f.fit.params[k];
    }
    // The expectation over the next opportunities grows with the horizon and p_alive is a
    // probability; a member who bought at every opportunity is the most likely alive.
    EXPECT_GT(f.model.expected_purchases(10, 3, 5, 6), f.model.expected_purchases(5, 3, 5, 6));
    EXPECT_GT(f.model.p_alive(6, 6, 6), f.model.p_alive(1, 1, 6));
  }
  // Inconsistent discrete summaries are typed errors naming the position.
  const std::vector<double> bad_x = {1, 3}, bad_t = {2, 2}, bad_n = {5, 5};
  PERKREC_EXPECT_THROW_MSG(BGBB::maximum_likelihood(bad_x, bad_t, bad_n), InputError, "position 1");
  const std::vector<double> one = {1}, far = {1e7};
  PERKREC_EXPECT_THROW_MSG(BGBB::maximum_likelihood(one, one, far), InputError, "position 0",
                           "1e6");
  // Through CLVModel: occasion must equal time_unit.
  CLVParams p;
  p.forecaster = CLVParams::Forecaster::purchase;
  p.model = PurchaseModelKind::bgbb;
  PERKREC_EXPECT_THROW_MSG(p.validate(), ConfigError, "occasion", "bgbb");
  PERKREC_EXPECT_THROW_MSG(CLVParams::from_json(Json{{"model", "bgbb"}}), ConfigError, "occasion");
  p.occasion = CLVParams::TimeUnit::week;
  CLVModel model(p);
  const std::vector<double> xs = {0, 2, 1}, ts = {0, 3, 2}, Ts = {4, 5, 6}, ms = {0, 5, 5};
  model.fit(CLVSummary::from_arrays(xs, ts, Ts, ms));
  std::vector<double> alive(1), expected(1);
  const std::vector<double> x2 = {3}, t2 = {2}, T2 = {5};
  PERKREC_EXPECT_THROW_MSG(model.conditional(x2, t2, T2, 1.0, alive, expected), InputError,
                           "position 0");
}

TEST(ParetoNBD, SeriesAndQuadratureAgree) {
  // The Pareto/NBD's integral J by the hypergeometric series (used for z <= 0.9) and by the
  // quadrature (used above) on random parameters where both apply.
  Rng rng(5, 1);
  int compared = 0;
  for (int i = 0; i < 3000; ++i) {
    const ParetoNBD m{std::exp(rng.uniform(-3.0, 3.0)), std::exp(rng.uniform(-2.0, 4.0)),
                      std::exp(rng.uniform(-3.0, 3.0)), std::exp(rng.uniform(-2.0, 4.0))};
    const double x = std::floor(std::exp(rng.uniform(-2.0, 4.0)));
    const double T = std::exp(rng.uniform(-1.0, 5.0));
    const double t_x = T * rng.uniform(0.0, 0.99);
    if (std::fabs(m.alpha - m.beta) / (std::max(m.alpha, m.beta) + t_x) > 0.9) continue;
    const double upper_tx = detail::pareto_log_upper(m, x, t_x),
                 upper_T = detail::pareto_log_upper(m, x, T);
    const double series =
        upper_tx + std::log1p(-std::exp(upper_T - upper_tx)) - std::log(m.r + x + m.s);
    ASSERT_NEAR(series, detail::pareto_log_integral_quadrature(m, x, t_x, T), 1e-8)
        << "r " << m.r << " alpha " << m.alpha << " s " << m.s << " beta " << m.beta << " x " << x
        << " t_x " << t_x;
    ++compared;
  }
  EXPECT_GT(compared, 1000);
}

TEST(CLV, CalibrationHoldoutCountsOccasionsAndSpend) {
  // Member 0: orders on days 1, 3 (calibration) and 10, 10, 12, 30 (holdout; two on day 10 are
  // one occasion), 41 (after the observation end). Member 1: first order in the holdout (left
  // out). Member 2: one calibration order, nothing after.
  const EventLog log = orders_log({{0, 1.5, 10},
                                   {0, 3.5, 20},
                                   {0, 10.2, 5},
                                   {0, 10.7, 6},
                                   {0, 12.5, 7},
                                   {0, 30.5, 8},
                                   {0, 41.5, 100},
                                   {1, 15.5, 50},
                                   {2, 2.5, 9}});
  for (int threads : {1, 2}) {
    const CLVHoldout h =
        calibration_holdout(log, at_day(7.0), at_day(40.0), CLVParams::TimeUnit::week,
                            CLVParams::TimeUnit::day, threads);
    ASSERT_EQ(h.calibration.users, (std::vector<Index>{0, 2}));
    EXPECT_EQ(h.purchases, (std::vector<double>{3, 0}));
    EXPECT_NEAR(h.spend[0], 26.0, 1e-6);
    EXPECT_EQ(h.spend[1], 0.0);
    EXPECT_NEAR(h.duration, 33.0 / 7.0, 1e-12);
    // Days 10 and 12 are in week 0 after the cut (days 7-13), day 30 in week 3.
    EXPECT_EQ(h.period_purchases, (std::vector<double>{2, 0, 0, 1, 0}));
  }
  PERKREC_EXPECT_THROW_MSG(calibration_holdout(log, at_day(7.0), at_day(7.0)), InputError,
                           "observation_end");
  PERKREC_EXPECT_THROW_MSG(calibration_holdout(log, at_day(0.0), at_day(7.0)), InputError,
                           "cut_time");
}

TEST(CLV, ConditionalMatchesPredict) {
  const Simulated s =
      simulate(800, BGNBD{0.7, 15.0, 0.8, 2.5}, GammaGamma{4.0, 3.0, 20.0}, 9, 200.0);
  for (auto kind :
       {PurchaseModelKind::bgnbd, PurchaseModelKind::mbgnbd, PurchaseModelKind::paretonbd}) {
    CLVParams p;
    p.forecaster = CLVParams::Forecaster::purchase;
    p.model = kind;
    p.time_unit = CLVParams::TimeUnit::day;
    p.interval_draws = 0;
    CLVModel model(p);
    model.fit(orders_log(s.orders), at_day(200.0));
    const CLVPrediction pred = model.predict(25.0);
    const CLVSummary& sum = model.summary();
    std::vector<double> alive(sum.size()), expected(sum.size());
    model.conditional(sum.x, sum.t_x, sum.T, 25.0, alive, expected);
    EXPECT_EQ(alive, pred.p_alive);
    EXPECT_EQ(expected, pred.expected_purchases);
    std::vector<double> bad_T = sum.T;
    bad_T[3] = sum.t_x[3] - 1;
    PERKREC_EXPECT_THROW_MSG(model.conditional(sum.x, sum.t_x, bad_T, 25.0, alive, expected),
                             InputError, "position 3");
  }
}

TEST(CLV, LifecycleStagesFollowTheRule) {
  // Member 0 buys every 10 days up to the cut (active); member 1 bought every 10 days then
  // stopped 100 days ago (lost); member 2 has one order yesterday (new).
  std::vector<Order> orders;
  for (double d = 0; d < 300; d += 10) orders.push_back({0, d + 0.5, 10});
  for (double d = 0; d < 200; d += 10) orders.push_back({1, d + 0.5, 10});
  orders.push_back({2, 298.5, 10});
  for (Index u = 3; u < 60; ++u) {
    for (double d = static_cast<double>(u); d < 300; d += 7.0 + static_cast<double>(u % 13))
      orders.push_back({u, d + 0.5, 10});
  }
  CLVParams p;
  p.forecaster = CLVParams::Forecaster::purchase;
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
  const EventLog log =
      orders_log({{0, 1.5, 10}, {0, 5.5, 20}, {1, 2.5, 5}, {1, 9.5, 5}, {2, 3.5, 8}});
  CLVParams p;
  p.forecaster = CLVParams::Forecaster::purchase;
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
  PERKREC_EXPECT_THROW_MSG(model.fit(CLVSummary::from_arrays(ok, ok, T, neg)), InputError,
                           "monetary", "position 1");
  PERKREC_EXPECT_THROW_MSG(CLVSummary::from_arrays(nan, ok, T, ok), InputError, "x", "position 1");
  EXPECT_EQ(model.to_bytes(), before);
  PERKREC_EXPECT_THROW_MSG(CLVParams::from_json(Json{{"time_unit", "month"}}), ConfigError,
                           "time_unit", "month");
  PERKREC_EXPECT_THROW_MSG(CLVParams::from_json(Json{{"model", "paretonbd2"}}), ConfigError,
                           "model");
  PERKREC_EXPECT_THROW_MSG(CLVParams::from_json(Json{{"penalizer", -1.0}}), ConfigError,
                           "penalizer");
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
  const Simulated s =
      simulate(3000, BGNBD{0.5, 10.0, 0.7, 2.0}, GammaGamma{4.0, 3.0, 20.0}, 21, 300.0);
  CLVParams p;
  p.forecaster = CLVParams::Forecaster::purchase;
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

// Half the members buy at a steady daily rate 0.03; the others start at 0.01 and double every
// 100 days (a planted trend). At most one order a day, value 10, everyone's first order on day 0.
std::vector<Order> trend_orders(Index n, std::uint64_t seed, int days,
                                std::vector<std::uint8_t>& rising) {
  Rng rng(seed, 7);
  std::vector<Order> orders;
  rising.assign(static_cast<std::size_t>(n), 0);
  for (Index u = 0; u < n; ++u) {
    rising[static_cast<std::size_t>(u)] = u % 2 == 1;
    for (int d = 0; d < days; ++d) {
      const double rate = u % 2 == 1 ? 0.01 * std::pow(2.0, d / 100.0) : 0.03;
      if (d == 0 || rng.uniform() < rate) orders.push_back({u, d + 0.1, 10.0f});
    }
  }
  return orders;
}

// Features with three planted Poisson (log-link) coefficients on the first three columns, the
// others constant (unused).
std::vector<double> planted_poisson(std::size_t n, std::uint64_t seed, std::vector<double>& y) {
  const std::size_t p = detail::kClvFeatures;
  Rng rng(seed, 7);
  std::vector<double> f(n * p, 0.0);
  y.assign(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    double* r = f.data() + i * p;
    r[0] = rng.normal();
    r[1] = 2.0 * rng.normal();
    r[2] = rng.uniform() < 0.3 ? 1.0 : 0.0;
    y[i] = static_cast<double>(rng.poisson(std::exp(-0.5 + 0.6 * r[0] - 0.2 * r[1] + 0.8 * r[2])));
  }
  return f;
}

TEST(CLVForecast, PoissonRegressionRecoversPlantedCoefficientsWithUnbiasedTotals) {
  const std::size_t n = 40000, p = detail::kClvFeatures;
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    std::vector<double> y;
    const std::vector<double> f = planted_poisson(n, seed, y);
    CLVRegression sc;
    detail::clv_standardize(f, n, {}, 0, sc);
    std::vector<double> coef, coef2;
    detail::clv_poisson(f, y, {}, 0, 0.0, 1, sc, coef);
    detail::clv_poisson(f, y, {}, 0, 0.0, 2, sc, coef2);
    EXPECT_EQ(coef, coef2);  // thread-count invariant, bit for bit
    // Back to the raw scale: beta_j / scale_j, intercept - sum beta_j mean_j / scale_j.
    const double planted[3] = {0.6, -0.2, 0.8};
    double intercept = coef[0];
    for (std::size_t j = 0; j < 3; ++j) {
      const double raw = coef[j + 1] / sc.scale[j];
      EXPECT_NEAR(raw, planted[j], 0.03) << "seed " << seed << " feature " << j;
      intercept -= raw * sc.mean[j];
    }
    EXPECT_NEAR(intercept, -0.5, 0.03);
    for (std::size_t j = 3; j < p; ++j) EXPECT_EQ(coef[j + 1], 0.0);  // constant: unused
    // Expected values, unbiased in total: sum of the fitted means = sum of y.
    double fitted = 0, total = 0;
    for (std::size_t i = 0; i < n; ++i) {
      fitted += detail::clv_regression_apply(f.data() + i * p, sc, coef);
      total += y[i];
    }
    EXPECT_NEAR(fitted / total, 1.0, 1e-9);
    // Scaling y (spend in other currency) moves only the intercept.
    std::vector<double> scaled = y;
    for (double& v : scaled) v *= 25.0;
    detail::clv_poisson(f, scaled, {}, 0, 1.0, 1, sc, coef2);
    detail::clv_poisson(f, y, {}, 0, 1.0, 1, sc, coef);
    EXPECT_NEAR(coef2[0] - coef[0], std::log(25.0), 1e-7);
    for (std::size_t j = 1; j <= p; ++j) EXPECT_NEAR(coef2[j], coef[j], 1e-7);
  }
  // No positive target: a zero forecast, finite.
  std::vector<double> y;
  const std::vector<double> f = planted_poisson(100, 9, y);
  std::vector<double> zeros(100, 0.0), coef;
  CLVRegression sc;
  detail::clv_standardize(f, 100, {}, 0, sc);
  detail::clv_poisson(f, zeros, {}, 0, 1.0, 1, sc, coef);
  EXPECT_LT(detail::clv_regression_apply(f.data(), sc, coef), 1e-11);
}

TEST(CLVForecast, RegressionForecastIsAnExpectedValueOnTheBacktest) {
  // The regression's backtest totals (out of fold) are close to the actual totals, and its
  // in-sample totals at the backtest exact; its forecasts at the cut are expected values too.
  std::vector<std::uint8_t> rising;
  const EventLog log = orders_log(trend_orders(3000, 4, 300, rising));
  CLVParams p;
  p.time_unit = CLVParams::TimeUnit::day;
  p.interval_draws = 0;
  p.backtest_horizon = 50;
  p.forecaster = CLVParams::Forecaster::regression;
  CLVModel model(p);
  model.fit(log, at_day(300.0));
  const CLVSelection& sel = model.report().selection;
  ASSERT_TRUE(sel.backtested);
  const CLVBacktestError& reg = sel.candidates.back();
  ASSERT_EQ(reg.name, "regression");
  EXPECT_LT(std::abs(reg.total_error_purchases), 0.05);
  EXPECT_LT(std::abs(reg.total_error_spend), 0.05);
  // Every forecast is positive (no member is forecast 0 as a median would).
  const CLVPrediction pred = model.predict(50.0);
  for (double v : pred.expected_purchases) EXPECT_GT(v, 0.0);
  EXPECT_EQ(model.report().to_json()["regression"]["link"], "log");
  // Save / load gives the same model; a bad or missing link is a typed error.
  const CLVModel loaded = CLVModel::from_bytes(model.to_bytes());
  EXPECT_EQ(loaded.to_bytes(), model.to_bytes());
  EXPECT_EQ(loaded.predict(50.0, 0.01, 0.5).clv, model.predict(50.0, 0.01, 0.5).clv);
  const auto tampered = [&](const std::function<void(Json&)>& edit) {
    ModelWriter w(CLVModel::kind);
    model.write(w, "");
    edit(w.content());
    return w.to_bytes();
  };
  PERKREC_EXPECT_THROW_MSG(
      CLVModel::from_bytes(tampered([](Json& c) { c["regression_link"] = "identity"; })),
      ModelFormatError, "regression_link");
  // Without the key the file reads as the older log1p regression, whose arrays differ in size.
  EXPECT_THROW(CLVModel::from_bytes(tampered([](Json& c) { c.erase("regression_link"); })),
               ModelFormatError);
}

TEST(CLVForecast, RegressionLearnsAPlantedTrendTheStationaryModelsMiss) {
  std::vector<std::uint8_t> rising;
  const std::vector<Order> orders = trend_orders(2000, 3, 350, rising);
  const EventLog log = orders_log(orders);
  const CLVHoldout h =
      calibration_holdout(log, at_day(300.0), at_day(350.0), CLVParams::TimeUnit::day);
  CLVParams p;
  p.time_unit = CLVParams::TimeUnit::day;
  p.interval_draws = 0;
  p.backtest_horizon = 50;
  p.forecaster = CLVParams::Forecaster::automatic;
  CLVModel automatic(p);
  automatic.fit(log, at_day(300.0));
  p.forecaster = CLVParams::Forecaster::purchase;
  CLVModel stationary(p);
  stationary.fit(log, at_day(300.0));
  const CLVSelection& sel = automatic.report().selection;
  ASSERT_TRUE(sel.backtested);
  EXPECT_EQ(sel.candidates.size(), 5u);
  EXPECT_EQ(sel.choice, "regression");
  const CLVPrediction a = automatic.predict(50.0), b = stationary.predict(50.0);
  double err_a = 0, err_b = 0, up_actual = 0, up_a = 0, up_b = 0, up_n = 0;
  for (std::size_t i = 0; i < h.purchases.size(); ++i) {
    err_a += std::abs(a.expected_purchases[i] - h.purchases[i]);
    err_b += std::abs(b.expected_purchases[i] - h.purchases[i]);
    if (rising[static_cast<std::size_t>(h.calibration.users[i])]) {
      up_actual += h.purchases[i];
      up_a += a.expected_purchases[i];
      up_b += b.expected_purchases[i];
      up_n += 1;
    }
  }
  EXPECT_LT(err_a, err_b);
  // The stationary model under-forecasts the rising members by far; the regression follows them
  // (its median-like forecast is a little low on totals).
  EXPECT_LT(up_b, 0.8 * up_actual);
  EXPECT_GT(up_a, up_b);
  EXPECT_GT(up_n, 900);
}

TEST(CLVForecast, AutoNeverReadsTheHoldoutAndIsThreadInvariantAndRoundTrips) {
  std::vector<std::uint8_t> rising;
  const std::vector<Order> orders = trend_orders(600, 8, 300, rising);
  std::vector<Order> with_future = orders;
  for (Index u = 0; u < 600; u += 3) with_future.push_back({u, 300.0 + u % 20, 999.0f});
  with_future.push_back({600, 301.0, 5.0f});  // a member whose first order is after the cut
  for (auto forecaster : {CLVParams::Forecaster::automatic, CLVParams::Forecaster::regression,
                          CLVParams::Forecaster::naive}) {
    CLVParams p;
    p.forecaster = forecaster;
    p.time_unit = CLVParams::TimeUnit::day;
    p.interval_draws = 20;
    p.num_threads = 1;
    CLVModel one(p);
    one.fit(orders_log(orders), at_day(300.0));
    p.num_threads = 2;
    CLVModel two(p);
    two.fit(orders_log(with_future, 601), at_day(300.0));
    EXPECT_EQ(one.report().to_json(), two.report().to_json());
    const CLVPrediction a = one.predict(40.0, 0.01, 0.5), b = two.predict(40.0, 0.01, 0.5);
    EXPECT_EQ(a.expected_purchases, b.expected_purchases);
    EXPECT_EQ(a.clv, b.clv);
    EXPECT_EQ(a.clv_upper, b.clv_upper);
    const CLVModel loaded = CLVModel::from_bytes(one.to_bytes());
    EXPECT_EQ(loaded.to_bytes(), one.to_bytes());
    const CLVPrediction c = loaded.predict(40.0, 0.01, 0.5);
    EXPECT_EQ(a.clv, c.clv);
    EXPECT_EQ(a.expected_purchases, c.expected_purchases);
    EXPECT_EQ(a.clv_lower, c.clv_lower);
    for (double v : a.clv) EXPECT_TRUE(std::isfinite(v) && v >= 0);
  }
}

TEST(CLVForecast, BadNamesAndHorizonsRaiseTypedErrorsAndChangeNothing) {
  PERKREC_EXPECT_THROW_MSG(CLVParams::from_json(Json{{"model", "lstm"}}), ConfigError, "model",
                           "lstm");
  PERKREC_EXPECT_THROW_MSG(CLVParams::from_json(Json{{"backtest_horizon", -1.0}}), ConfigError,
                           "backtest_horizon");
  PERKREC_EXPECT_THROW_MSG(CLVParams::from_json(Json{{"regression_l2", -1.0}}), ConfigError,
                           "regression_l2");
  EXPECT_EQ(CLVParams::from_json(Json{{"model", "auto"}}).forecaster,
            CLVParams::Forecaster::automatic);
  EXPECT_EQ(CLVParams::from_json(Json{{"model", "regression"}}).to_json()["model"], "regression");
  std::vector<std::uint8_t> rising;
  const EventLog log = orders_log(trend_orders(200, 5, 200, rising));
  CLVParams p;
  p.forecaster = CLVParams::Forecaster::regression;
  p.time_unit = CLVParams::TimeUnit::day;
  p.interval_draws = 0;
  CLVModel model(p);
  model.fit(log, at_day(200.0));
  const std::string before = model.to_bytes();
  // Nobody orders again after day 0: the backtest has nothing to learn from.
  std::vector<Order> first;
  for (Index u = 0; u < 200; ++u) first.push_back({u, 0.1, 10.0f});
  PERKREC_EXPECT_THROW_MSG(model.fit(orders_log(first), at_day(60.0)), InputError, "backtest");
  EXPECT_EQ(model.to_bytes(), before);
  PERKREC_EXPECT_THROW_MSG(model.fit(model.summary()), InputError, "regression");
  EXPECT_EQ(model.to_bytes(), before);
  PERKREC_EXPECT_THROW_MSG(model.predict(-1.0), InputError, "horizon");
  // Without a log "auto" is the purchase model, and says why.
  CLVParams ap;
  ap.forecaster = CLVParams::Forecaster::automatic;
  CLVModel automatic(ap);
  automatic.fit(model.summary());
  EXPECT_EQ(automatic.report().selection.choice, "bgnbd");
  EXPECT_FALSE(automatic.report().selection.backtested);
  EXPECT_NE(automatic.report().selection.note.find("summaries"), std::string::npos);
}

TEST(CLVMemberFields, PercentileRankIsTheShareAtOrBelowWithTiesSharingTheHighestRank) {
  EXPECT_EQ(percentile_rank(std::vector<double>{1, 2, 2, 3}),
            (std::vector<double>{0.25, 0.75, 0.75, 1.0}));
  EXPECT_EQ(percentile_rank(std::vector<double>{30, 10, 20, 10, 10}),
            (std::vector<double>{1.0, 0.6, 0.8, 0.6, 0.6}));
  EXPECT_EQ(percentile_rank(std::vector<double>{7}), (std::vector<double>{1.0}));
  EXPECT_EQ(percentile_rank(std::vector<double>{-1, -1}), (std::vector<double>{1.0, 1.0}));
  EXPECT_TRUE(percentile_rank(std::vector<double>{}).empty());
  PERKREC_EXPECT_THROW_MSG(percentile_rank(std::vector<double>{1, std::nan(""), 2}, "clv"),
                           InputError, "clv[1]", "not finite");
  PERKREC_EXPECT_THROW_MSG(
      percentile_rank(std::vector<double>{std::numeric_limits<double>::infinity()}), InputError,
      "values[0]");
}

TEST(CLVMemberFields, StageNamesMapToTheirCodes) {
  for (std::size_t k = 0; k < kLifecycleStages.size(); ++k) {
    EXPECT_EQ(lifecycle_stage_code(kLifecycleStages[k]), static_cast<int>(k));
  }
  EXPECT_EQ(lifecycle_stage_code("at_risk"), 2);
  PERKREC_EXPECT_THROW_MSG(lifecycle_stage_code("at-risk", "stages"), InputError, "stages",
                           "'at-risk'", "at_risk");
  PERKREC_EXPECT_THROW_MSG(lifecycle_stage_code(""), InputError, "lifecycle_stage");
}

// The lifecycle test's program: member 0 active, 1 lost, 2 new; members 3..59 regular buyers;
// member 60 (the last index) has no order before the cut (its only order is after it).
CLVModel member_fields_model(std::vector<Order>* orders_out = nullptr) {
  std::vector<Order> orders;
  for (double d = 0; d < 300; d += 10) orders.push_back({0, d + 0.5, 10});
  for (double d = 0; d < 200; d += 10) orders.push_back({1, d + 0.5, 10});
  orders.push_back({2, 298.5, 10});
  for (Index u = 3; u < 60; ++u) {
    for (double d = static_cast<double>(u); d < 300; d += 7.0 + static_cast<double>(u % 13))
      orders.push_back({u, d + 0.5, static_cast<float>(5 + u % 7)});
  }
  orders.push_back({60, 305.5, 10});
  CLVParams p;
  p.time_unit = CLVParams::TimeUnit::day;
  CLVModel model(p);
  model.fit(orders_log(orders), at_day(300.0));
  if (orders_out != nullptr) *orders_out = orders;
  return model;
}

TEST(CLVMemberFields, MemberFieldsArePredictWithTheClvPercentile) {
  const CLVModel model = member_fields_model();
  ASSERT_EQ(model.n_users(), 61);
  ASSERT_EQ(model.users().size(), 60u);  // member 60 has no order before the cut
  const CLVPrediction pred = model.predict(30.0, 0.01, 0.3);
  const CLVMemberFields f = model.member_fields(30.0, 0.01, 0.3);
  ASSERT_EQ(f.size(), 60u);
  EXPECT_EQ(f.clv, pred.clv);
  EXPECT_EQ(f.p_alive, pred.p_alive);
  for (std::size_t i = 0; i < f.size(); ++i) {
    EXPECT_EQ(f.lifecycle_stage[i], static_cast<std::int8_t>(pred.lifecycle_stage[i]));
    double at_or_below = 0;
    for (double v : pred.clv) at_or_below += v <= pred.clv[i] ? 1.0 : 0.0;
    EXPECT_DOUBLE_EQ(f.clv_percentile[i], at_or_below / 60.0) << i;
  }
  EXPECT_EQ(f.lifecycle_stage[0], 1);  // active
  EXPECT_EQ(f.lifecycle_stage[1], 4);  // lost
  EXPECT_EQ(f.lifecycle_stage[2], 0);  // new
  // The interval draws are skipped: the same fields with none.
  CLVParams no_draws = model.params();
  no_draws.interval_draws = 0;
  CLVModel other(no_draws);
  std::vector<Order> orders;
  member_fields_model(&orders);
  other.fit(orders_log(orders), at_day(300.0));
  EXPECT_EQ(other.member_fields(30.0, 0.01, 0.3).clv, f.clv);
  PERKREC_EXPECT_THROW_MSG(model.member_fields(0.0), InputError, "member_fields", "horizon");
  PERKREC_EXPECT_THROW_MSG(model.member_fields(5.0, -1.0), InputError, "discount_rate");
  PERKREC_EXPECT_THROW_MSG(CLVModel().member_fields(5.0), InputError, "not fitted");
}

TEST(CLVMemberFields, SampleFieldsGatherByMemberAndRefuseTheFuture) {
  const CLVModel model = member_fields_model();
  const CLVMemberFields f = model.member_fields(30.0);
  const Timestamp cut = model.cut_time();
  const std::vector<std::int64_t> users = {2, 0, -1, 60, 2, 59};
  const std::vector<Timestamp> times = {cut, cut + 5, cut + 9, cut, cut + 86400, cut};
  const CLVMemberFields s = model.sample_fields(users, times, 30.0);
  ASSERT_EQ(s.size(), 6u);
  for (std::size_t i : {0u, 1u, 4u, 5u}) {
    const auto r = static_cast<std::size_t>(users[i]);  // members 0..59 are rows 0..59
    EXPECT_EQ(s.clv[i], f.clv[r]);
    EXPECT_EQ(s.clv_percentile[i], f.clv_percentile[r]);
    EXPECT_EQ(s.p_alive[i], f.p_alive[r]);
    EXPECT_EQ(s.lifecycle_stage[i], f.lifecycle_stage[r]);
  }
  EXPECT_EQ(s.lifecycle_stage[0], 0);  // member 2: new
  // An unknown member (-1) and a member without an order before the cut: missing.
  for (std::size_t i : {2u, 3u}) {
    EXPECT_TRUE(std::isnan(s.clv[i]) && std::isnan(s.clv_percentile[i]) &&
                std::isnan(s.p_alive[i]));
    EXPECT_EQ(s.lifecycle_stage[i], -1);
  }
  // A sample before the cut would read its future; bad members and lengths are named.
  const std::vector<Timestamp> early = {cut, cut - 1};
  const std::vector<std::int64_t> two = {0, 1};
  PERKREC_EXPECT_THROW_MSG(model.sample_fields(two, early, 30.0), InputError, "timestamps[1]",
                           "cut_time");
  const std::vector<Timestamp> ok = {cut, cut};
  PERKREC_EXPECT_THROW_MSG(model.sample_fields(std::vector<std::int64_t>{0, 61}, ok, 30.0),
                           InputError, "users[1]", "61");
  PERKREC_EXPECT_THROW_MSG(model.sample_fields(std::vector<std::int64_t>{-2, 0}, ok, 30.0),
                           InputError, "users[0]");
  PERKREC_EXPECT_THROW_MSG(model.sample_fields(std::vector<std::int64_t>{0}, ok, 30.0), InputError,
                           "length");
  PERKREC_EXPECT_THROW_MSG(model.sample_fields(two, ok, -3.0), InputError, "horizon");
  CLVModel from_summary;
  from_summary.fit(model.summary());
  PERKREC_EXPECT_THROW_MSG(from_summary.sample_fields(two, ok, 30.0), InputError, "summaries");
}

TEST(CLVForecast, NaiveForecastIsTheOwnRateTimesTheHorizon) {
  using V = std::vector<double>;
  const CLVForecast f = naive_forecast(V{2, 0, 3}, V{4, 5, 0}, V{10, 7, 3}, 8.0);
  EXPECT_EQ(f.expected_purchases, (V{4, 0, 0}));  // 2 / 4 x 8; no repeat; T = 0
  EXPECT_EQ(f.clv, (V{40, 0, 0}));
  EXPECT_EQ(naive_forecast(V{}, V{}, V{}, 1.0).clv.size(), 0u);
  PERKREC_EXPECT_THROW_MSG(naive_forecast(V{1}, V{2}, V{3}, -1.0), InputError, "horizon");
  PERKREC_EXPECT_THROW_MSG(naive_forecast(V{1, 2}, V{2}, V{3, 4}, 1.0), InputError,
                           "T has 1 entries (expected 2");
  PERKREC_EXPECT_THROW_MSG(naive_forecast(V{-1}, V{2}, V{3}, 1.0), InputError, "x[0] must be");
  PERKREC_EXPECT_THROW_MSG(naive_forecast(V{1}, V{2}, V{NAN}, 1.0), InputError,
                           "mean_order_value[0] must be finite");
}

TEST(CLVForecast, NaiveModelPredictsTheNaiveForecast) {
  // The "naive" forecaster's prediction over a horizon is naive_forecast of its summary.
  std::vector<Order> orders;
  for (Index u = 0; u < 30; ++u) {
    for (int k = 0; k <= u % 5; ++k) orders.push_back({u, 3.0 * k + u % 7, 10.0f + u});
  }
  CLVParams p;
  p.forecaster = CLVParams::Forecaster::naive;
  p.time_unit = CLVParams::TimeUnit::day;
  p.interval_draws = 0;
  CLVModel model(p);
  model.fit(orders_log(orders), at_day(40));
  const CLVSummary& s = model.summary();
  const CLVForecast naive = naive_forecast(s.x, s.T, s.mean_order_value, 12.0);
  const CLVPrediction got = model.predict(12.0);
  for (std::size_t i = 0; i < s.size(); ++i) {
    EXPECT_DOUBLE_EQ(got.expected_purchases[i], naive.expected_purchases[i]) << i;
    EXPECT_DOUBLE_EQ(got.clv[i], naive.clv[i]) << i;
  }
}

TEST(CLVForecast, ExpectedPurchasesByPeriodDifferencesTheCumulativeForecast) {
  using V = std::vector<double>;
  CLVModel model;
  model.fit(CLVSummary::from_arrays(V{0, 2, 5, 1, 3, 0}, V{0, 10, 30, 4, 20, 0},
                                    V{40, 40, 40, 35, 38, 12}, V{0, 0, 0, 0, 0, 0}));
  const V x{2, 0, 4}, t_x{10, 0, 30}, T{40, 20, 36};
  auto cumulative = [&](double horizon) {
    V alive(3), expected(3);
    model.conditional(x, t_x, T, horizon, alive, expected);
    return expected[0] + expected[1] + expected[2];
  };
  // Four periods stopping at 2.5: (0, 1], (1, 2], (2, 2.5], then nothing.
  const V by = model.expected_purchases_by_period(x, t_x, T, 4, 2.5);
  ASSERT_EQ(by.size(), 4u);
  EXPECT_DOUBLE_EQ(by[0], cumulative(1));
  EXPECT_DOUBLE_EQ(by[1], cumulative(2) - cumulative(1));
  EXPECT_DOUBLE_EQ(by[2], cumulative(2.5) - cumulative(2));
  EXPECT_EQ(by[3], 0.0);
  EXPECT_GT(by[0], by[1]);  // a buy-till-you-die curve declines
  EXPECT_TRUE(model.expected_purchases_by_period(x, t_x, T, 0, 0.0).empty());
  PERKREC_EXPECT_THROW_MSG(model.expected_purchases_by_period(x, t_x, T, -1, 1.0), InputError,
                           "periods");
  PERKREC_EXPECT_THROW_MSG(model.expected_purchases_by_period(x, t_x, T, 2, NAN), InputError,
                           "end");
  PERKREC_EXPECT_THROW_MSG(model.expected_purchases_by_period(x, t_x, V{40, 20}, 2, 2.0),
                           InputError, "equal lengths");
  EXPECT_THROW(CLVModel().expected_purchases_by_period(x, t_x, T, 2, 2.0), InputError);
}

TEST(CLV, PAliveHistoryReplaysOneMembersSummaries) {
  // Member 1 orders on days 10, 20 and 30; the others give the model a population.
  std::vector<Order> orders{{1, 10, 5.0f}, {1, 20, 5.0f}, {1, 30, 5.0f}};
  for (Index u = 2; u < 40; ++u) {
    for (int k = 0; k <= u % 4; ++k) orders.push_back({u, 2.0 + 6.0 * k + u % 3, 8.0f});
  }
  const EventLog log = orders_log(orders);
  CLVParams p;
  p.forecaster = CLVParams::Forecaster::purchase;
  p.time_unit = CLVParams::TimeUnit::day;
  p.interval_draws = 0;
  CLVModel model(p);
  model.fit(log, at_day(50));
  // Day 5 and the first order's own time have no order before them: no rows.
  const std::vector<Timestamp> times{at_day(5), at_day(10), at_day(15), at_day(21), at_day(45)};
  const CLVMemberHistory h = model.p_alive_history(log, 1, times);
  EXPECT_EQ(h.position, (std::vector<std::size_t>{2, 3, 4}));
  EXPECT_EQ(h.x, (std::vector<double>{0, 1, 2}));
  EXPECT_EQ(h.t_x, (std::vector<double>{0, 10, 20}));
  EXPECT_EQ(h.T, (std::vector<double>{4, 10, 34}));  // to the day before each time
  std::vector<double> alive(3), expected(3);
  model.conditional(h.x, h.t_x, h.T, 1.0, alive, expected);
  EXPECT_EQ(h.p_alive, alive);
  EXPECT_EQ(h.expected_purchases, expected);
  // The summary at a time is the log's summary of that member at that cut.
  const CLVSummary at21 = summarize_purchases(log, at_day(21), p.time_unit, p.occasion);
  EXPECT_EQ(at21.users[0], 1);
  EXPECT_EQ(at21.T[0], h.T[1]);
  EXPECT_TRUE(model.p_alive_history(log, 0, times).x.empty());  // member 0 never ordered
  PERKREC_EXPECT_THROW_MSG(model.p_alive_history(log, 99, times), InputError, "user 99");
  PERKREC_EXPECT_THROW_MSG(model.p_alive_history(log, 1, std::vector<Timestamp>{kMinTimestamp}),
                           InputError, "times[0] out of range");
}

}  // namespace
}  // namespace perkrec
