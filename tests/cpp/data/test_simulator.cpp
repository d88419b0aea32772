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
  expect_bad([](SimulatorParams& p) { p.n_categories = 1; }, "n_categories");
  expect_bad([](SimulatorParams& p) { p.interest_concentration = 0; }, "interest_concentration");
  expect_bad([](SimulatorParams& p) { p.interest_effect = -0.1; }, "interest_effect");
  expect_bad([](SimulatorParams& p) { p.lines_per_order = 0.5; }, "lines_per_order");
  expect_bad([](SimulatorParams& p) { p.views_per_order = std::nan(""); }, "views_per_order");
}

// --- what members buy and browse (SimulatorParams::behavior) --------------------------------

const SimulatedProgram& behavior_program() {
  static const SimulatedProgram p = [] {
    SimulatorParams params;
    params.n_users = 3000;
    params.seed = 11;
    params.behavior = true;
    return simulate(params);
  }();
  return p;
}

TEST(SimulatorBehavior, OffByDefault) {
  const SimulatedProgram& p = program();
  EXPECT_FALSE(p.params.behavior);
  EXPECT_EQ(p.items.size(), 0);
  EXPECT_TRUE(p.behavior.empty());
  EXPECT_EQ(p.benefit_items.size(), 0);
  EXPECT_TRUE(p.truth.interest.empty());
  for (const Benefit& b : p.catalog.benefits()) {
    if (b.scope == Scope::category) {
      EXPECT_TRUE(b.scope_value == "apparel" || b.scope_value == "beauty" ||
                  b.scope_value == "grocery")
          << b.scope_value;
    }
  }
}

TEST(SimulatorBehavior, BasketsMatchTheOrdersAndViewsPrecedeThem) {
  const SimulatedProgram& p = behavior_program();
  const EventLog& log = p.events;
  const BehaviorLog& beh = p.behavior;
  ASSERT_EQ(beh.n_users(), log.n_users());
  ASSERT_EQ(beh.n_items(), p.items.size());
  EXPECT_EQ(p.items.size(), 12 * 8);
  EXPECT_EQ(beh.action_names(), (std::vector<std::string>{"purchase", "view"}));
  const Timestamp end = p.params.start_time + p.params.days * kSecondsPerDay;
  std::size_t orders = 0, views = 0;
  for (Index u = 0; u < log.n_users(); ++u) {
    // Each ordered event's amount, by time (a member never orders twice in one second here).
    std::map<Timestamp, double> ordered;
    for (Offset e = log.user_begin(u); e < log.user_end(u); ++e) {
      if (log.type(e) == EventType::ordered) {
        ordered[log.timestamps()[static_cast<std::size_t>(e)]] +=
            log.order_amounts()[static_cast<std::size_t>(e)];
      }
    }
    std::map<std::int64_t, std::pair<Timestamp, double>> baskets;
    for (Offset e = beh.user_begin(u); e < beh.user_end(u); ++e) {
      const auto k = static_cast<std::size_t>(e);
      const Timestamp t = beh.timestamps()[k];
      ASSERT_LT(t, end);
      ASSERT_GE(t, p.truth.signup_time[static_cast<std::size_t>(u)]);
      if (beh.actions()[k] == 0) {
        auto& [time, amount] = baskets[beh.baskets()[k]];
        time = t;
        amount += beh.amounts()[k];
      } else {
        ++views;
        ASSERT_EQ(beh.amounts()[k], 0.0);
        ASSERT_EQ(beh.baskets()[k], -1);
        // A view falls in the 3 days before one of the member's orders: a logged one, or one
        // after the end (whose views before the end are in the log).
        auto next = ordered.lower_bound(t);
        if (next == ordered.end()) {
          ASSERT_LT(end - t, 3 * kSecondsPerDay) << "member " << u << " view at " << t;
        } else {
          ASSERT_LE(next->first - t, 3 * kSecondsPerDay) << "member " << u << " view at " << t;
        }
      }
    }
    std::map<Timestamp, double> basket_amounts;
    for (const auto& [id, tb] : baskets) basket_amounts[tb.first] += tb.second;
    ASSERT_EQ(basket_amounts.size(), ordered.size()) << "member " << u;
    for (const auto& [t, amount] : ordered) {
      ASSERT_TRUE(basket_amounts.count(t)) << "member " << u << " order at " << t;
      ASSERT_NEAR(basket_amounts[t], amount, 1e-3 * amount + 1e-3);
    }
    orders += ordered.size();
  }
  EXPECT_GT(orders, 10000u);
  // About lines_per_order purchase lines per order and views_per_order views.
  const double lines = static_cast<double>(beh.size() - static_cast<Offset>(views));
  EXPECT_NEAR(lines / static_cast<double>(orders), 4.0, 0.15);
  EXPECT_NEAR(static_cast<double>(views) / static_cast<double>(orders), 2.0, 0.2);
}

TEST(SimulatorBehavior, TheTruthKnowsTheViewsOfTheNextOrder) {
  // Views in the last 3 days that no logged order follows belong to an order after the end
  // (almost always the member's next organic one): that order falls inside every benefit's
  // validity, so the truth's incremental probability is 0 for the member; members without
  // such views keep an incremental probability above 0.
  const SimulatedProgram& p = behavior_program();
  const EventLog& log = p.events;
  const BehaviorLog& beh = p.behavior;
  const auto nb = static_cast<std::size_t>(p.catalog.size());
  std::size_t with = 0, with_zero = 0, without = 0, without_zero = 0;
  for (Index u = 0; u < log.n_users(); ++u) {
    Timestamp last_order = -1;
    for (Offset e = beh.user_begin(u); e < beh.user_end(u); ++e) {
      const auto k = static_cast<std::size_t>(e);
      if (beh.actions()[k] == 0) last_order = std::max(last_order, beh.timestamps()[k]);
    }
    bool late_view = false;
    for (Offset e = beh.user_begin(u); e < beh.user_end(u); ++e) {
      const auto k = static_cast<std::size_t>(e);
      if (beh.actions()[k] == 1 && beh.timestamps()[k] > last_order) late_view = true;
    }
    double incremental = 0;
    for (std::size_t b = 0; b < nb; ++b)
      incremental += p.truth.incremental_probability[static_cast<std::size_t>(u) * nb + b];
    (late_view ? with : without) += 1;
    if (incremental == 0) (late_view ? with_zero : without_zero) += 1;
  }
  ASSERT_GT(with, 50u);
  EXPECT_GT(static_cast<double>(with_zero), 0.8 * static_cast<double>(with));
  EXPECT_LT(static_cast<double>(without_zero), 0.05 * static_cast<double>(without));
}

TEST(SimulatorBehavior, PurchasesFollowThePlantedInterests) {
  const SimulatedProgram& p = behavior_program();
  const BehaviorLog& beh = p.behavior;
  const auto nc = static_cast<std::size_t>(p.params.n_categories);
  ASSERT_EQ(p.truth.category_names.size(), nc);
  ASSERT_EQ(p.truth.interest.size(), static_cast<std::size_t>(p.params.n_users) * nc);
  const std::vector<std::int32_t>& category = p.items.level_codes("category");
  double corr_sum = 0;
  int members = 0;
  for (Index u = 0; u < beh.n_users(); ++u) {
    std::vector<double> counts(nc, 0.0);
    double n = 0;
    for (Offset e = beh.user_begin(u); e < beh.user_end(u); ++e) {
      const auto k = static_cast<std::size_t>(e);
      counts[static_cast<std::size_t>(category[static_cast<std::size_t>(beh.items()[k])])] += 1;
      n += 1;
    }
    const float* theta = p.truth.interest.data() + static_cast<std::size_t>(u) * nc;
    double sum = 0;
    for (std::size_t c = 0; c < nc; ++c) sum += theta[c];
    ASSERT_NEAR(sum, 1.0, 1e-5);
    if (n < 60) continue;
    double mc = 0, mt = 0;
    for (std::size_t c = 0; c < nc; ++c) {
      mc += counts[c] / n / static_cast<double>(nc);
      mt += theta[c] / static_cast<double>(nc);
    }
    double sxy = 0, sxx = 0, syy = 0;
    for (std::size_t c = 0; c < nc; ++c) {
      const double x = counts[c] / n - mc, y = theta[c] - mt;
      sxy += x * y;
      sxx += x * x;
      syy += y * y;
    }
    corr_sum += sxy / std::sqrt(sxx * syy + 1e-300);
    ++members;
  }
  ASSERT_GT(members, 300);
  EXPECT_GT(corr_sum / members, 0.8);
}

TEST(SimulatorBehavior, CategoryBenefitsMapToTheirItemsAndAppealToInterestedMembers) {
  const SimulatedProgram& p = behavior_program();
  const auto nc = static_cast<std::size_t>(p.params.n_categories);
  const std::vector<std::string>& names = p.truth.category_names;
  const std::vector<std::int32_t>& category = p.items.level_codes("category");
  int scoped = 0;
  double high_sum = 0, low_sum = 0;
  int high_n = 0, low_n = 0;
  for (Index b = 0; b < p.catalog.size(); ++b) {
    const Benefit& ben = p.catalog[b];
    if (ben.scope != Scope::category) continue;
    ++scoped;
    const auto c = static_cast<std::size_t>(std::find(names.begin(), names.end(), ben.scope_value) -
                                            names.begin());
    ASSERT_LT(c, nc) << ben.scope_value;
    const Span<const Index> its = p.benefit_items.items(b);
    ASSERT_EQ(its.size(), 8u);
    for (Index i : its) EXPECT_EQ(category[static_cast<std::size_t>(i)], static_cast<int>(c));
    // Members with four times the population's interest in the category claim it more often
    // than members with a quarter of it.
    for (Index u = 0; u < p.params.n_users; ++u) {
      const double lift =
          p.truth.interest[static_cast<std::size_t>(u) * nc + c] / p.truth.category_share[c];
      if (lift > 4) {
        high_sum += p.truth.claim(u, b);
        ++high_n;
      } else if (lift < 0.25) {
        low_sum += p.truth.claim(u, b);
        ++low_n;
      }
    }
  }
  EXPECT_GE(scoped, 10);
  ASSERT_GT(high_n, 100);
  ASSERT_GT(low_n, 100);
  EXPECT_GT(high_sum / high_n, 2.0 * (low_sum / low_n));
  // Brand-scoped benefits map to the items of their brand.
  const std::vector<std::int32_t>& brand = p.items.level_codes("brand");
  const std::vector<std::string>& brands = p.items.level_values("brand");
  for (Index b = 0; b < p.catalog.size(); ++b) {
    if (p.catalog[b].scope != Scope::brand) continue;
    for (Index i : p.benefit_items.items(b)) {
      EXPECT_EQ(brands[static_cast<std::size_t>(brand[static_cast<std::size_t>(i)])],
                p.catalog[b].scope_value);
    }
    EXPECT_GT(p.benefit_items.items(b).size(), 0u);
  }
}

TEST(SimulatorBehavior, WithoutInterestEffectTheBenefitLogIgnoresTheInterests) {
  SimulatorParams p;
  p.n_users = 800;
  p.behavior = true;
  p.interest_effect = 0;
  const SimulatedProgram a = simulate(p);
  p.interest_concentration = 50;
  const SimulatedProgram b = simulate(p);
  EXPECT_EQ(a.events.to_bytes(), b.events.to_bytes());
  EXPECT_EQ(a.truth.redemption_probability, b.truth.redemption_probability);
  EXPECT_NE(a.truth.interest, b.truth.interest);
  p.interest_effect = 1;
  const SimulatedProgram c = simulate(p);
  EXPECT_NE(c.truth.redemption_probability, b.truth.redemption_probability);
}

TEST(SimulatorBehavior, IdenticalForAnyThreadCount) {
  SimulatorParams p;
  p.n_users = 1200;
  p.behavior = true;
  p.num_threads = 1;
  const SimulatedProgram a = simulate(p);
  p.num_threads = 3;
  const SimulatedProgram b = simulate(p);
  EXPECT_EQ(a.events.to_bytes(), b.events.to_bytes());
  EXPECT_EQ(a.truth.interest, b.truth.interest);
  ASSERT_EQ(a.behavior.size(), b.behavior.size());
  EXPECT_TRUE(
      std::equal(a.behavior.items().begin(), a.behavior.items().end(), b.behavior.items().begin()));
  EXPECT_TRUE(std::equal(a.behavior.timestamps().begin(), a.behavior.timestamps().end(),
                         b.behavior.timestamps().begin()));
  EXPECT_TRUE(std::equal(a.behavior.amounts().begin(), a.behavior.amounts().end(),
                         b.behavior.amounts().begin()));
  EXPECT_EQ(a.behavior.user_offsets(), b.behavior.user_offsets());
  EXPECT_TRUE(a.items == b.items);
}

}  // namespace
}  // namespace perkrec
