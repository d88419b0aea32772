#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "test_util.hpp"

namespace perkrec {
namespace {

const SimulatedProgram& program() {
  static const SimulatedProgram p = [] {
    SimulatorParams params;
    params.n_users = 6000;
    params.seed = 5;
    return simulate(params);
  }();
  return p;
}

TEST(Simulator, IdenticalForAnyThreadCountAndSeedSensitive) {
  SimulatorParams p;
  p.n_users = 1500;
  p.num_threads = 1;
  const SimulatedProgram a = simulate(p);
  p.num_threads = 2;
  const SimulatedProgram b = simulate(p);
  p.num_threads = 5;
  const SimulatedProgram c = simulate(p);
  for (const SimulatedProgram* other : {&b, &c}) {
    EXPECT_EQ(a.events.to_bytes(), other->events.to_bytes());
    EXPECT_EQ(a.truth.redemption_probability, other->truth.redemption_probability);
    EXPECT_EQ(a.truth.preference, other->truth.preference);
    EXPECT_EQ(a.users, other->users);
  }
  p.seed = 43;
  const SimulatedProgram d = simulate(p);
  EXPECT_NE(a.events.size(), d.events.size());
}

TEST(Simulator, CatalogCoversEveryKindScenarioAndChannel) {
  const Catalog& c = program().catalog;
  EXPECT_GE(c.size(), 40);
  std::set<BenefitKind> kinds;
  std::set<std::string> scenarios, channels;
  std::set<Scope> scopes;
  for (const Benefit& b : c.benefits()) {
    kinds.insert(b.kind);
    scenarios.insert(b.scenarios.begin(), b.scenarios.end());
    channels.insert(b.channel);
    scopes.insert(b.scope);
  }
  EXPECT_EQ(kinds.size(), static_cast<std::size_t>(kNumBenefitKinds));
  EXPECT_EQ(scopes.size(), static_cast<std::size_t>(kNumScopes));
  EXPECT_EQ(scenarios,
            (std::set<std::string>{"regular", "holiday", "member_day", "referral", "new_member"}));
  EXPECT_EQ(channels, (std::set<std::string>{"app", "sms", "email", "store"}));
}

TEST(Simulator, EventsAreConsistentWithTheProgramRules) {
  const SimulatedProgram& p = program();
  const EventLog& log = p.events;
  const Timestamp end = p.params.start_time + p.params.days * kSecondsPerDay;
  EXPECT_GE(log.min_time(), p.params.start_time - 0);
  EXPECT_LT(log.max_time(), end);
  for (Index u = 0; u < log.n_users(); ++u) {
    const bool control = p.truth.control[static_cast<std::size_t>(u)] != 0;
    std::set<Index> claimed;
    for (Offset e = log.user_begin(u); e < log.user_end(u); ++e) {
      const auto k = static_cast<std::size_t>(e);
      const auto type = log.type(e);
      ASSERT_EQ(log.control()[k], control ? 1 : 0);
      ASSERT_GE(log.timestamps()[k], p.truth.signup_time[static_cast<std::size_t>(u)]);
      if (type == EventType::issued) {
        ASSERT_FALSE(control) << "control member " << u << " was issued a benefit";
        ASSERT_GT(log.propensities()[k], 0.0f);
        ASSERT_LE(log.propensities()[k], 1.0f);
      }
      if (type == EventType::claimed) claimed.insert(log.benefits()[k]);
      if (type == EventType::redeemed || type == EventType::expired) {
        ASSERT_TRUE(claimed.count(log.benefits()[k])) << "unclaimed benefit used by " << u;
      }
      if (type == EventType::redeemed || type == EventType::ordered) {
        ASSERT_GT(log.order_amounts()[k], 0.0f);
      }
    }
  }
}

TEST(Simulator, TruthIsWellFormed) {
  const SimulationTruth& t = program().truth;
  const auto cells = static_cast<std::size_t>(t.n_users) * static_cast<std::size_t>(t.n_benefits);
  ASSERT_EQ(t.redemption_probability.size(), cells);
  ASSERT_EQ(t.preference.size(), static_cast<std::size_t>(t.n_users) * t.dimension_names.size());
  for (std::size_t i = 0; i < cells; ++i) {
    ASSERT_GE(t.incremental_probability[i], 0.0f);
    ASSERT_LE(t.incremental_probability[i], t.redemption_probability[i] + 1e-6f);
    ASSERT_LE(t.redemption_probability[i], t.claim_probability[i] + 1e-6f);
    ASSERT_LE(t.claim_probability[i], 1.0f);
  }
  // Relative preferences average to 1 over the population, and the archetypes' favourite
  // attributes stand out in them.
  const std::size_t nd = t.dimension_names.size();
  auto dim = [&](const std::string& name) {
    return static_cast<std::size_t>(
        std::find(t.dimension_names.begin(), t.dimension_names.end(), name) -
        t.dimension_names.begin());
  };
  std::vector<double> mean(nd, 0.0);
  std::vector<double> by_archetype(kNumArchetypes * nd, 0.0);
  std::vector<double> members(kNumArchetypes, 0.0);
  for (Index u = 0; u < t.n_users; ++u) {
    const std::size_t a = t.archetype[static_cast<std::size_t>(u)];
    members[a] += 1;
    for (std::size_t d = 0; d < nd; ++d) {
      const float v = t.preference[static_cast<std::size_t>(u) * nd + d];
      ASSERT_GT(v, 0.0f);
      mean[d] += v / t.n_users;
      by_archetype[a * nd + d] += v;
    }
  }
  for (double m : mean) EXPECT_NEAR(m, 1.0, 1e-3);
  auto archetype_mean = [&](Archetype a, const std::string& name) {
    const auto k = static_cast<std::size_t>(a);
    return by_archetype[k * nd + dim(name)] / members[k];
  };
  EXPECT_GT(archetype_mean(Archetype::points_redemption_active, "kind:points"), 1.8);
  EXPECT_GT(archetype_mean(Archetype::threshold_discount_sensitive, "kind:threshold_discount"),
            1.5);
  EXPECT_GT(archetype_mean(Archetype::high_face_value_seeker, "face_value:>=30"), 1.3);
  EXPECT_LT(archetype_mean(Archetype::high_face_value_seeker, "face_value:<10"), 0.7);
  EXPECT_GT(archetype_mean(Archetype::new_member, "scenario:new_member"), 1.5);
  for (Index u = 0; u < t.n_users; ++u) {
    const auto k = static_cast<std::size_t>(u);
    ASSERT_GE(t.expected_next_order_time[k], t.reference_time);
    ASSERT_GE(t.preferred_hour[k], 0.0f);
    ASSERT_LT(t.preferred_hour[k], 24.0f);
    ASSERT_EQ(t.lapse_time[k] >= 0,
              t.archetype[k] == static_cast<std::uint8_t>(Archetype::dormant));
  }
}

TEST(Simulator, PlantedStructureShowsInTheLog) {
  const SimulatedProgram& p = program();
  const EventLog& log = p.events;
  // Claim rate of issued benefits, by archetype and benefit kind.
  double issued[kNumArchetypes][kNumBenefitKinds] = {};
  double claimed[kNumArchetypes][kNumBenefitKinds] = {};
  std::vector<int> archetype_count(kNumArchetypes, 0);
  for (Index u = 0; u < log.n_users(); ++u) {
    const int a = p.truth.archetype[static_cast<std::size_t>(u)];
    archetype_count[static_cast<std::size_t>(a)]++;
    for (Offset e = log.user_begin(u); e < log.user_end(u); ++e) {
      const auto k = static_cast<std::size_t>(e);
      if (log.benefits()[k] < 0) continue;
      const int kind = static_cast<int>(p.catalog[log.benefits()[k]].kind);
      if (log.type(e) == EventType::issued) issued[a][kind]++;
      if (log.type(e) == EventType::claimed) claimed[a][kind]++;
    }
  }
  for (int a = 0; a < kNumArchetypes; ++a)
    EXPECT_GT(archetype_count[static_cast<std::size_t>(a)], 200) << a;
  auto rate = [&](Archetype a, BenefitKind k) {
    return claimed[static_cast<int>(a)][static_cast<int>(k)] /
           issued[static_cast<int>(a)][static_cast<int>(k)];
  };
  const auto points = BenefitKind::points;
  const auto threshold = BenefitKind::threshold_discount;
  EXPECT_GT(rate(Archetype::points_redemption_active, points),
            2.0 * rate(Archetype::threshold_discount_sensitive, points));
  EXPECT_GT(rate(Archetype::threshold_discount_sensitive, threshold),
            2.0 * rate(Archetype::points_redemption_active, threshold));
  EXPECT_LT(rate(Archetype::discount_indifferent_loyal, threshold),
            rate(Archetype::threshold_discount_sensitive, threshold) / 3);

  // Orders cluster around the preferred hour, and follow the member's cycle.
  int near = 0, orders = 0;
  double gap_loyal = 0, gap_loyal_n = 0, gap_value = 0, gap_value_n = 0;
  for (Index u = 0; u < log.n_users(); ++u) {
    const auto ku = static_cast<std::size_t>(u);
    Timestamp previous = -1;
    for (Offset e = log.user_begin(u); e < log.user_end(u); ++e) {
      if (log.type(e) != EventType::ordered) continue;
      const Timestamp t = log.timestamps()[static_cast<std::size_t>(e)];
      const double hour = static_cast<double>(t % kSecondsPerDay) / kSecondsPerHour;
      double diff = std::fabs(hour - p.truth.preferred_hour[ku]);
      diff = std::min(diff, 24.0 - diff);
      near += diff <= 2.0;
      ++orders;
      if (previous >= 0) {
        const double gap = static_cast<double>(t - previous) / kSecondsPerDay;
        if (p.truth.archetype[ku] ==
            static_cast<std::uint8_t>(Archetype::discount_indifferent_loyal)) {
          gap_loyal += gap;
          ++gap_loyal_n;
        } else if (p.truth.archetype[ku] ==
                   static_cast<std::uint8_t>(Archetype::high_face_value_seeker)) {
          gap_value += gap;
          ++gap_value_n;
        }
      }
      previous = t;
    }
  }
  EXPECT_GT(static_cast<double>(near) / orders, 0.6);
  EXPECT_LT(gap_loyal / gap_loyal_n, 0.6 * gap_value / gap_value_n);

  // Truth: winning back lapsed members is worth more than subsidizing loyal buyers.
  double incr_dormant = 0, incr_loyal = 0, n_dormant = 0, n_loyal = 0;
  for (Index u = 0; u < p.truth.n_users; ++u) {
    for (Index b = 0; b < p.truth.n_benefits; ++b) {
      const auto a = static_cast<Archetype>(p.truth.archetype[static_cast<std::size_t>(u)]);
      if (a == Archetype::dormant) {
        incr_dormant += p.truth.incremental(u, b);
        ++n_dormant;
      } else if (a == Archetype::discount_indifferent_loyal) {
        incr_loyal += p.truth.incremental(u, b);
        ++n_loyal;
      }
    }
  }
  EXPECT_GT(incr_dormant / n_dormant, 3.0 * incr_loyal / n_loyal);
}

TEST(Simulator, MemberDaysAndHolidayRaisePurchases) {
  const SimulatedProgram& p = program();
  std::map<int, int> orders_per_day;
  for (Offset e = 0; e < p.events.size(); ++e) {
    if (p.events.type(e) != EventType::ordered) continue;
    orders_per_day[static_cast<int>(
        (p.events.timestamps()[static_cast<std::size_t>(e)] - p.params.start_time) /
        kSecondsPerDay)]++;
  }
  double member_day = 0, member_days = 0, holiday = 0, holidays = 0, other = 0, others = 0;
  for (int d = 30; d < 130; ++d) {
    const bool is_member_day = civil_from_days(p.params.start_time / kSecondsPerDay + d).day ==
                               p.params.member_day_of_month;
    (is_member_day ? member_day : other) += orders_per_day[d];
    (is_member_day ? member_days : others) += 1;
  }
  for (int d = p.params.holiday_start_day; d < p.params.holiday_start_day + p.params.holiday_days;
       ++d) {
    holiday += orders_per_day[d];
    holidays += 1;
  }
  EXPECT_GT(member_day / member_days, 1.3 * other / others);
  EXPECT_GT(holiday / holidays, 1.2 * other / others);
}

TEST(Simulator, ReportsProgressAndStopsWhenAsked) {
  SimulatorParams p;
  p.n_users = 20000;
  Callbacks cb;
  std::vector<Offset> done;
  cb.progress = [&](const std::string& stage, Offset d, Offset total) {
    EXPECT_EQ(stage, "simulate");
    EXPECT_EQ(total, 20000);
    done.push_back(d);
  };
  simulate(p, cb);
  ASSERT_GE(done.size(), 2u);
  EXPECT_TRUE(std::is_sorted(done.begin(), done.end()));
  EXPECT_EQ(done.back(), 20000);
  int polls = 0;
  cb.should_stop = [&] { return ++polls == 1; };
  EXPECT_THROW(simulate(p, cb), Interrupted);
}

TEST(Simulator, InvalidParamsNameTheField) {
  auto expect_bad = [](auto mutate, const char* field) {
    SimulatorParams p;
    mutate(p);
    PERKREC_EXPECT_THROW_MSG(p.validate(), ConfigError, field);
    PERKREC_EXPECT_THROW_MSG(simulate(p), ConfigError, field);
  };
  expect_bad([](SimulatorParams& p) { p.n_users = 0; }, "n_users");
  expect_bad([](SimulatorParams& p) { p.n_benefits = 5; }, "n_benefits");
  expect_bad([](SimulatorParams& p) { p.days = 3; }, "days");
  expect_bad([](SimulatorParams& p) { p.start_time = 1767225601; }, "start_time");
  expect_bad([](SimulatorParams& p) { p.control_fraction = 1.0; }, "control_fraction");
  expect_bad([](SimulatorParams& p) { p.archetype_mix = {0, 0, 0, 0, 0, 0}; }, "archetype_mix");
  expect_bad([](SimulatorParams& p) { p.archetype_mix[2] = -1; }, "archetype_mix[2]");
  expect_bad([](SimulatorParams& p) { p.issues_per_week = std::nan(""); }, "issues_per_week");
  expect_bad([](SimulatorParams& p) { p.member_day_of_month = 31; }, "member_day_of_month");
  expect_bad([](SimulatorParams& p) { p.num_threads = -2; }, "num_threads");
}

}  // namespace
}  // namespace perkrec
