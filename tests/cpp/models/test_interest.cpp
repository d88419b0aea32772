// InterestModel: exact shares on hand-built logs, empirical Bayes recovering a planted Dirichlet
// concentration, interval coverage of planted shares, no leak past the cut, thread-count
// invariance, save/load, typed errors.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "perkrec/models/interest.hpp"

namespace perkrec {
namespace {

constexpr Timestamp kDay = 86400;
constexpr Timestamp kT0 = 1'700'000'000;

struct Events {
  std::vector<Index> user, item;
  std::vector<Timestamp> time;
  std::vector<std::int32_t> action;
  std::vector<double> amount;
  void add(Index u, Index i, Timestamp t, std::int32_t a = 0, double spend = 0) {
    user.push_back(u);
    item.push_back(i);
    time.push_back(t);
    action.push_back(a);
    amount.push_back(spend);
  }
  BehaviorLog log(Index n_users, Index n_items) const {
    BehaviorColumns c;
    c.user = user;
    c.item = item;
    c.timestamp = time;
    c.action = action;
    c.amount = amount;
    BehaviorOptions o;
    o.n_users = n_users;
    o.n_items = n_items;
    o.action_names = {"purchase", "view"};
    return BehaviorLog::from_columns(c, o);
  }
};

// Items 0..2*V-1, two items per category (item i is in category i / 2).
ItemCatalog catalog(Index V) {
  ItemCatalog items(IdMap::range(2 * V));
  std::vector<std::int32_t> codes;
  std::vector<std::string> names;
  for (Index i = 0; i < 2 * V; ++i) codes.push_back(static_cast<std::int32_t>(i / 2));
  for (Index v = 0; v < V; ++v) names.push_back("c" + std::to_string(v));
  items.add_level("category", codes, names);
  return items;
}

InterestParams fixed(double alpha) {
  InterestParams p;
  p.half_life_days = 0;
  p.prior_strength = alpha;
  p.num_threads = 1;
  return p;
}

TEST(Interest, ExactSharesOnAHandBuiltLog) {
  // Member 0: 3 events in c0, 1 in c1. Member 1: 4 in c1. Member 2: none.
  Events e;
  for (int k = 0; k < 3; ++k) e.add(0, 0, kT0 + k);
  e.add(0, 3, kT0 + 5);
  for (int k = 0; k < 4; ++k) e.add(1, 2, kT0 + k);
  const ItemCatalog items = catalog(3);
  InterestModel m(fixed(2.0));
  m.fit(e.log(3, 6), items, kT0 + 100);
  // Population: c0 3, c1 5, c2 0 (+ eps = 0.5 * 8 / 3 cells each): pi = (3 + e, 5 + e, e) / (8 +
  // 3e).
  const double eps = 0.5 * 8.0 / 3.0;
  const double pi0 = (3 + eps) / (8 + 3 * eps), pi1 = (5 + eps) / (8 + 3 * eps);
  EXPECT_NEAR(m.population_share()[0], pi0, 1e-12);
  EXPECT_NEAR(m.share(0, 0), (3 + 2 * pi0) / (4 + 2.0), 1e-12);
  EXPECT_NEAR(m.share(0, 1), (1 + 2 * pi1) / (4 + 2.0), 1e-12);
  EXPECT_NEAR(m.lift(1, 1), (4 + 2 * pi1) / (6.0 * pi1), 1e-12);
  // No activity: lift 1 everywhere (the prior).
  for (Index v = 0; v < 3; ++v) EXPECT_NEAR(m.lift(2, v), 1.0, 1e-12);
  // Top: member 0 ranks c0 first; c2 (untouched) last; intervals hold the posterior mean.
  const std::vector<Index> users = {0, 1, 2};
  const TopInterests top = m.top(users, 3, 0.9);
  ASSERT_EQ(top.user.size(), 9u);
  EXPECT_EQ(top.value[0], 0);
  EXPECT_EQ(top.value[1], 1);
  EXPECT_EQ(top.value[2], 2);
  EXPECT_EQ(top.rank[2], 3);
  EXPECT_FLOAT_EQ(top.activity[0], 3.0f);
  for (std::size_t k = 0; k < top.user.size(); ++k) {
    EXPECT_LE(top.lower[k], top.lift[k]);
    EXPECT_GE(top.upper[k], top.lift[k]);
  }
  // Member 2 (no activity): the list follows the population shares: c1, c0, c2.
  EXPECT_EQ(top.value[6], 1);
  EXPECT_EQ(top.value[7], 0);
  // Group means: members 0 and 2 in group 1, member 1 in group 0; group 2 is empty (prior).
  const std::vector<std::int32_t> group = {1, 0, 1};
  const std::vector<double> G = m.group_lifts(group, 3);
  ASSERT_EQ(G.size(), 9u);
  for (Index v = 0; v < 3; ++v) {
    EXPECT_NEAR(G[0 * 3 + v], m.lift(1, v), 1e-12);
    EXPECT_NEAR(G[1 * 3 + v], 0.5 * (m.lift(0, v) + m.lift(2, v)), 1e-12);
    EXPECT_EQ(G[2 * 3 + v], 1.0);
  }
  EXPECT_THROW(m.group_lifts(std::vector<std::int32_t>{0, 0}, 1), InputError);
  EXPECT_THROW(m.group_lifts(std::vector<std::int32_t>{0, 3, 0}, 3), InputError);
  // Group top: each group with members lists its values by mean lift, best first; group 2
  // (no members) has no rows. Group 0 is member 1 (c1 first), group 1 members 0 and 2.
  const GroupInterests gt = m.group_top(group, 3, 2);
  ASSERT_EQ(gt.group.size(), 4u);
  EXPECT_EQ(gt.group, (std::vector<std::int32_t>{0, 0, 1, 1}));
  EXPECT_EQ(gt.rank, (std::vector<std::int32_t>{1, 2, 1, 2}));
  EXPECT_EQ(gt.members, (std::vector<Offset>{1, 1, 2, 2}));
  EXPECT_EQ(gt.value[0], 1);
  EXPECT_EQ(gt.value[2], 0);
  for (std::size_t k = 0; k < gt.group.size(); ++k) {
    EXPECT_EQ(gt.mean_lift[k],
              G[static_cast<std::size_t>(gt.group[k]) * 3 + static_cast<std::size_t>(gt.value[k])]);
  }
  EXPECT_GE(gt.mean_lift[0], gt.mean_lift[1]);
  EXPECT_GE(gt.mean_lift[2], gt.mean_lift[3]);
  // n above the number of values lists every value; ties keep value order (all 1 without
  // activity: member 2 alone).
  const GroupInterests quiet = m.group_top(std::vector<std::int32_t>{-1, -1, 0}, 1, 10);
  ASSERT_EQ(quiet.value.size(), 3u);
  EXPECT_EQ(quiet.value, (std::vector<Index>{0, 1, 2}));
  EXPECT_THROW(m.group_top(group, 3, 0), InputError);
  EXPECT_THROW(m.group_top(std::vector<std::int32_t>{0, 0}, 1, 2), InputError);
  // lifts() agrees with lift().
  const std::vector<float> L = m.lifts(users);
  for (Index u = 0; u < 3; ++u)
    for (Index v = 0; v < 3; ++v) EXPECT_NEAR(L[u * 3 + v], m.lift(u, v), 1e-6);
}

TEST(Interest, ActionsMeasureAndDecay) {
  Events e;
  e.add(0, 0, kT0, 0, 10.0);  // purchase in c0, spend 10
  e.add(0, 2, kT0, 1, 0.0);   // view in c1
  e.add(0, 2, kT0, 0, 30.0);  // purchase in c1, spend 30
  const ItemCatalog items = catalog(2);
  InterestParams p = fixed(1.0);
  p.actions = {"purchase"};
  p.measure = InterestParams::Measure::spend;
  InterestModel m(p);
  m.fit(e.log(1, 4), items, kT0 + 1);
  EXPECT_FLOAT_EQ(m.total()[0], 40.0f);
  // With decay: an event one half-life old weighs 1/2.
  InterestParams d = fixed(1.0);
  d.half_life_days = 10;
  InterestModel md(d);
  Events f;
  f.add(0, 0, kT0);
  f.add(0, 2, kT0 + 10 * kDay);
  md.fit(f.log(1, 4), items, kT0 + 20 * kDay);
  EXPECT_NEAR(md.total()[0], 0.25 + 0.5, 1e-6);
}

TEST(Interest, EventsAtOrAfterTheCutChangeNothing) {
  Events e;
  std::mt19937_64 rng(5);
  for (int k = 0; k < 400; ++k)
    e.add(static_cast<Index>(rng() % 20), static_cast<Index>(rng() % 10),
          kT0 + static_cast<Timestamp>(rng() % 100) * kDay);
  const Timestamp cut = kT0 + 60 * kDay;
  Events later = e;
  for (int k = 0; k < 300; ++k)
    later.add(static_cast<Index>(rng() % 20), static_cast<Index>(rng() % 10),
              cut + static_cast<Timestamp>(rng() % 40) * kDay);
  later.add(3, 1, cut);  // exactly at the cut: excluded
  InterestParams p;
  p.num_threads = 1;
  InterestModel a(p), b(p);
  a.fit(e.log(20, 10), catalog(5), cut);
  b.fit(later.log(20, 10), catalog(5), cut);
  EXPECT_EQ(a.prior_strength(), b.prior_strength());
  EXPECT_EQ(a.total(), b.total());
  EXPECT_EQ(a.to_bytes(), b.to_bytes());
}

// Members draw shares from Dirichlet(alpha0 * pi), then 40 events from their shares.
struct Planted {
  Events events;
  std::vector<double> theta;  // n x V
};
Planted plant(Index n, Index V, double alpha0, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<double> pi(static_cast<std::size_t>(V));
  for (Index v = 0; v < V; ++v) pi[static_cast<std::size_t>(v)] = 1.0 / (1.0 + v);
  double s = 0;
  for (double x : pi) s += x;
  for (double& x : pi) x /= s;
  Planted out;
  out.theta.resize(static_cast<std::size_t>(n * V));
  for (Index u = 0; u < n; ++u) {
    double sum = 0;
    for (Index v = 0; v < V; ++v) {
      std::gamma_distribution<double> g(alpha0 * pi[static_cast<std::size_t>(v)], 1.0);
      sum += (out.theta[static_cast<std::size_t>(u * V + v)] = g(rng));
    }
    for (Index v = 0; v < V; ++v) out.theta[static_cast<std::size_t>(u * V + v)] /= sum;
    std::discrete_distribution<Index> pick(out.theta.begin() + u * V,
                                           out.theta.begin() + (u + 1) * V);
    for (int k = 0; k < 40; ++k)
      out.events.add(u, 2 * pick(rng) + static_cast<Index>(rng() % 2), kT0 + k);
  }
  return out;
}

TEST(Interest, EmpiricalBayesRecoversThePlantedConcentration) {
  for (double alpha0 : {5.0, 40.0}) {
    const Index n = 3000, V = 12;
    const Planted w = plant(n, V, alpha0, 11 + static_cast<std::uint64_t>(alpha0));
    InterestParams p;
    p.half_life_days = 0;
    InterestModel m(p);
    m.fit(w.events.log(n, 2 * V), catalog(V), kT0 + kDay);
    EXPECT_NEAR(m.prior_strength() / alpha0, 1.0, 0.2) << "alpha0 " << alpha0;
    // The posterior's 90% intervals cover about 90% of the planted shares.
    std::vector<Index> users(static_cast<std::size_t>(n));
    for (Index u = 0; u < n; ++u) users[static_cast<std::size_t>(u)] = u;
    const TopInterests top = m.top(users, static_cast<int>(V), 0.9);
    double inside = 0;
    for (std::size_t k = 0; k < top.user.size(); ++k) {
      const double pi = m.population_share()[static_cast<std::size_t>(top.value[k])];
      const double truth = w.theta[static_cast<std::size_t>(top.user[k] * V + top.value[k])] / pi;
      inside += truth >= top.lower[k] && truth <= top.upper[k];
    }
    const double coverage = inside / static_cast<double>(top.user.size());
    EXPECT_GT(coverage, 0.86) << "alpha0 " << alpha0;
    EXPECT_LT(coverage, 0.94) << "alpha0 " << alpha0;
  }
}

TEST(Interest, ThreadCountInvariantAndSaveLoad) {
  const Planted w = plant(5000, 8, 10.0, 3);
  const BehaviorLog log = w.events.log(5000, 16);
  InterestParams p;
  p.num_threads = 1;
  InterestModel one(p);
  one.fit(log, catalog(8), kT0 + kDay);
  p.num_threads = 3;
  InterestModel three(p);
  three.fit(log, catalog(8), kT0 + kDay);
  EXPECT_EQ(one.prior_strength(), three.prior_strength());
  three.set_num_threads(1);
  EXPECT_EQ(one.to_bytes(), three.to_bytes());
  one.set_user_ids(IdMap::range(5000));
  const InterestModel back = InterestModel::from_bytes(one.to_bytes());
  EXPECT_EQ(back.to_bytes(), one.to_bytes());
  EXPECT_EQ(back.value_names(), one.value_names());
  EXPECT_EQ(back.lift(17, 3), one.lift(17, 3));
}

TEST(Interest, TypedErrorsLeaveTheModelUnchanged) {
  Events e;
  e.add(0, 0, kT0);
  const BehaviorLog log = e.log(1, 4);
  InterestParams bad;
  bad.level = "";
  EXPECT_THROW(InterestModel{bad}, ConfigError);
  bad = InterestParams{};
  bad.actions = {"purchase", "purchase"};
  EXPECT_THROW(InterestModel{bad}, ConfigError);
  bad = InterestParams{};
  bad.half_life_days = -1;
  EXPECT_THROW(InterestModel{bad}, ConfigError);
  EXPECT_THROW(InterestParams::from_json(Json::parse(R"({"levle": "brand"})")), ConfigError);

  InterestModel m(fixed(1.0));
  EXPECT_THROW(m.top(std::vector<Index>{0}, 1), InputError);  // not fitted
  InterestParams brand = fixed(1.0);
  brand.level = "brand";
  EXPECT_THROW(InterestModel(brand).fit(log, catalog(2), kT0 + 1), InputError);
  InterestParams act = fixed(1.0);
  act.actions = {"share"};
  EXPECT_THROW(InterestModel(act).fit(log, catalog(2), kT0 + 1), InputError);
  EXPECT_THROW(m.fit(log, catalog(3), kT0 + 1), InputError);  // 6 items vs 4
  EXPECT_THROW(m.fit(log, catalog(2), kT0), InputError);      // nothing before the cut
  EXPECT_FALSE(m.fitted());
  m.fit(log, catalog(2), kT0 + 1);
  const std::string before = m.to_bytes();
  EXPECT_THROW(m.fit(log, catalog(2), kT0), InputError);
  EXPECT_EQ(m.to_bytes(), before);
  EXPECT_THROW(m.top(std::vector<Index>{1}, 1), InputError);
  EXPECT_THROW(m.top(std::vector<Index>{0}, 0), InputError);
  EXPECT_THROW(m.top(std::vector<Index>{0}, 1, 1.0), InputError);
  EXPECT_THROW(m.share(0, 2), InputError);
  EXPECT_THROW(m.set_user_ids(IdMap::range(2)), InputError);
  // A damaged file: ModelFormatError, never a crash.
  std::string bytes = m.to_bytes();
  bytes[bytes.size() / 2] ^= 0x5a;
  EXPECT_THROW(InterestModel::from_bytes(bytes), ModelFormatError);
}

}  // namespace
}  // namespace perkrec
