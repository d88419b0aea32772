#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "test_util.hpp"

namespace perkrec {
namespace {

constexpr Timestamp kT0 = 1'700'000'000;
Timestamp day(double d) { return static_cast<Timestamp>(kT0 + d * kSecondsPerDay); }

// Six items (category: dairy dairy bakery bakery meat -; brand: A B A C B A), three benefits
// (0 -> items {0, 2}, 1 -> {4}, 2 -> none), two members (see the comments in the tests).
struct World {
  ItemCatalog items;
  BenefitItems benefit_items;
  BehaviorLog log;
};

struct Event {
  Index user, item;
  int action;
  Timestamp time;
  double quantity, amount;
  std::int64_t basket;
};

std::vector<Event> tiny_events() {
  return {
      {0, 0, 0, day(1), 2, 3.0, 10}, {0, 1, 0, day(1), 1, 1.0, 10},  {0, 2, 1, day(3), 1, 0.0, -1},
      {0, 3, 0, day(5), 1, 2.0, 11}, {0, 0, 0, day(10), 1, 1.5, 12}, {1, 0, 0, day(2), 1, 1.0, 20},
      {1, 4, 0, day(6), 3, 6.0, 21},
  };
}

BehaviorLog make_behavior(const std::vector<Event>& events, Index n_items, int threads = 1) {
  std::vector<Index> u, it;
  std::vector<Timestamp> t;
  std::vector<std::int32_t> a;
  std::vector<double> q, m;
  std::vector<std::int64_t> b;
  for (const auto& e : events) {
    u.push_back(e.user);
    it.push_back(e.item);
    a.push_back(e.action);
    t.push_back(e.time);
    q.push_back(e.quantity);
    m.push_back(e.amount);
    b.push_back(e.basket);
  }
  BehaviorColumns c;
  c.user = u;
  c.item = it;
  c.timestamp = t;
  c.action = a;
  c.quantity = q;
  c.amount = m;
  c.basket = b;
  BehaviorOptions o;
  o.n_items = n_items;
  o.action_names = {"purchase", "view"};
  o.num_threads = threads;
  return BehaviorLog::from_columns(c, o);
}

World tiny_world() {
  World w;
  w.items = ItemCatalog(IdMap::range(6));
  w.items.add_level("category",
                    std::vector<std::string>{"dairy", "dairy", "bakery", "bakery", "meat", ""});
  w.items.add_level("brand", std::vector<std::string>{"A", "B", "A", "C", "B", "A"});
  w.benefit_items =
      BenefitItems::from_pairs(std::vector<Index>{0, 0, 1}, std::vector<Index>{0, 2, 4}, 3, 6);
  w.log = make_behavior(tiny_events(), 6);
  return w;
}

struct Samples {
  std::vector<std::int64_t> user, benefit, time;
  BehaviorSamples view() const { return {user, benefit, time}; }
};

std::map<std::string, std::vector<double>> run(const World& w, const Samples& s,
                                               const BehaviorFeatureParams& p) {
  const BehaviorTable t = behavior_features(s.view(), w.log, w.items, w.benefit_items, p);
  std::map<std::string, std::vector<double>> out;
  for (std::size_t c = 0; c < t.names.size(); ++c) out[t.names[c]] = t.columns[c];
  return out;
}

double decay(double days) { return std::exp(std::log(0.5) * days / 28.0); }

TEST(BehaviorFeatures, NamesFollowActionsScopesAndRequestOrder) {
  BehaviorFeatureParams p;
  p.aggregates = {"spend", "member_baskets", "count"};
  p.levels = {"category"};
  p.actions = {"purchase", "view"};
  EXPECT_EQ(behavior_column_names(p),
            (std::vector<std::string>{"purchase_items_spend", "purchase_items_count",
                                      "purchase_category_spend", "purchase_category_count",
                                      "purchase_member_baskets", "view_items_spend",
                                      "view_items_count", "view_category_spend",
                                      "view_category_count", "view_member_baskets"}));
  BehaviorFeatureParams all;
  EXPECT_EQ(behavior_column_names(all).size(), behavior_aggregate_names().size());
}

TEST(BehaviorFeatures, ExactAggregatesOnTinyLog) {
  const World w = tiny_world();
  // Member 0, benefit 0 at day 10: the purchase at day 10 itself is not visible.
  Samples s{{0, 0, 5, 1}, {0, 0, 1, 2}, {day(10), day(10) + 1, day(7), day(7)}};
  BehaviorFeatureParams p;
  p.levels = {"category", "brand"};
  const auto f = run(w, s, p);
  EXPECT_DOUBLE_EQ(f.at("purchase_items_count")[0], 1.0);
  EXPECT_DOUBLE_EQ(f.at("purchase_items_quantity")[0], 2.0);
  EXPECT_DOUBLE_EQ(f.at("purchase_items_spend")[0], 3.0);
  EXPECT_NEAR(f.at("purchase_items_decayed_count")[0], decay(9), 1e-12);
  EXPECT_DOUBLE_EQ(f.at("purchase_items_days_since_last")[0], 9.0);
  EXPECT_DOUBLE_EQ(f.at("purchase_items_share_of_wallet")[0], 0.5);  // 3 of 6
  // Category roll-up: dairy (items 0, 1) and bakery (items 2, 3).
  EXPECT_DOUBLE_EQ(f.at("purchase_category_count")[0], 3.0);
  EXPECT_DOUBLE_EQ(f.at("purchase_category_quantity")[0], 4.0);
  EXPECT_DOUBLE_EQ(f.at("purchase_category_spend")[0], 6.0);
  EXPECT_NEAR(f.at("purchase_category_decayed_count")[0], 2 * decay(9) + decay(5), 1e-12);
  EXPECT_DOUBLE_EQ(f.at("purchase_category_days_since_last")[0], 5.0);
  EXPECT_DOUBLE_EQ(f.at("purchase_category_share_of_wallet")[0], 1.0);
  // Brand roll-up: both items are brand A (items 0, 2, 5): only item 0 was bought.
  EXPECT_DOUBLE_EQ(f.at("purchase_brand_count")[0], 1.0);
  EXPECT_DOUBLE_EQ(f.at("purchase_brand_spend")[0], 3.0);
  // Member totals.
  EXPECT_DOUBLE_EQ(f.at("purchase_member_count")[0], 3.0);
  EXPECT_DOUBLE_EQ(f.at("purchase_member_baskets")[0], 2.0);
  EXPECT_DOUBLE_EQ(f.at("purchase_member_spend")[0], 6.0);
  EXPECT_DOUBLE_EQ(f.at("purchase_member_distinct_items")[0], 3.0);
  EXPECT_DOUBLE_EQ(f.at("purchase_member_days_since_last")[0], 5.0);
  // Popularity over all members: item 0 bought by member 0 (day 1) and member 1 (day 2).
  EXPECT_DOUBLE_EQ(f.at("purchase_popularity_events")[0], 2.0);
  EXPECT_DOUBLE_EQ(f.at("purchase_popularity_members")[0], 2.0);

  // One second later the day-10 purchase counts.
  EXPECT_DOUBLE_EQ(f.at("purchase_items_count")[1], 2.0);
  EXPECT_NEAR(f.at("purchase_items_days_since_last")[1], 1.0 / 86400.0, 1e-15);
  EXPECT_NEAR(f.at("purchase_items_decayed_count")[1], decay(9 + 1.0 / 86400) + decay(1.0 / 86400),
              1e-12);
  EXPECT_DOUBLE_EQ(f.at("purchase_member_baskets")[1], 3.0);
  EXPECT_DOUBLE_EQ(f.at("purchase_popularity_events")[1], 3.0);
  EXPECT_DOUBLE_EQ(f.at("purchase_popularity_members")[1], 2.0);

  // A member the log does not know: no behaviour, "never", popularity still counts.
  EXPECT_DOUBLE_EQ(f.at("purchase_items_count")[2], 0.0);
  EXPECT_DOUBLE_EQ(f.at("purchase_items_days_since_last")[2], kBehaviorNeverDays);
  EXPECT_DOUBLE_EQ(f.at("purchase_member_days_since_last")[2], kBehaviorNeverDays);
  EXPECT_DOUBLE_EQ(f.at("purchase_items_share_of_wallet")[2], 0.0);
  EXPECT_DOUBLE_EQ(f.at("purchase_popularity_events")[2], 1.0);  // item 4 by member 1 on day 6

  // A benefit with no items: empty scopes, member totals as usual.
  EXPECT_DOUBLE_EQ(f.at("purchase_items_count")[3], 0.0);
  EXPECT_DOUBLE_EQ(f.at("purchase_category_count")[3], 0.0);
  EXPECT_DOUBLE_EQ(f.at("purchase_member_count")[3], 2.0);
  EXPECT_DOUBLE_EQ(f.at("purchase_member_spend")[3], 7.0);
}

TEST(BehaviorFeatures, DecayStaysExactOverLongSpans) {
  // Decayed sums are kept against a per-member reference time that moves up when the weights
  // pass 2^500: 600 half-lives between two events exercise that rescaling.
  World w = tiny_world();
  w.log = make_behavior(
      {{0, 0, 0, day(0), 1, 1, -1}, {0, 0, 0, day(600), 1, 1, -1}, {0, 1, 0, day(600.5), 1, 1, -1}},
      6);
  BehaviorFeatureParams p;
  p.half_life_days = 1.0;
  p.levels = {"category"};
  p.aggregates = {"decayed_count"};
  const auto f = run(w, Samples{{0, 0, 0}, {0, 0, 0}, {day(300), day(601), day(700)}}, p);
  auto expect_rel = [](double got, double want) {
    EXPECT_NEAR(got / want, 1.0, 1e-12) << got << " vs " << want;
  };
  expect_rel(f.at("purchase_items_decayed_count")[0], std::exp2(-300.0));
  expect_rel(f.at("purchase_items_decayed_count")[1], std::exp2(-601.0) + std::exp2(-1.0));
  expect_rel(f.at("purchase_category_decayed_count")[1],
             std::exp2(-601.0) + std::exp2(-1.0) + std::exp2(-0.5));
  expect_rel(f.at("purchase_category_decayed_count")[2], std::exp2(-100.0) + std::exp2(-99.5));
}

TEST(BehaviorFeatures, OtherActionsCountSeparately) {
  const World w = tiny_world();
  Samples s{{0}, {0}, {day(10)}};
  BehaviorFeatureParams p;
  p.actions = {"view"};
  p.aggregates = {"count", "days_since_last", "member_count", "member_baskets"};
  const auto f = run(w, s, p);
  EXPECT_DOUBLE_EQ(f.at("view_items_count")[0], 1.0);  // item 2 viewed on day 3
  EXPECT_DOUBLE_EQ(f.at("view_items_days_since_last")[0], 7.0);
  EXPECT_DOUBLE_EQ(f.at("view_member_count")[0], 1.0);
  EXPECT_DOUBLE_EQ(f.at("view_member_baskets")[0], 0.0);  // its basket is -1
}

TEST(BehaviorFeatures, BasketsAreDistinctTimesWithoutBasketColumn) {
  World w = tiny_world();
  std::vector<Index> u{0, 0, 0};
  std::vector<Index> it{0, 1, 2};
  std::vector<Timestamp> t{day(1), day(1), day(2)};
  BehaviorColumns c;
  c.user = u;
  c.item = it;
  c.timestamp = t;
  BehaviorOptions o;
  o.n_items = 6;
  w.log = BehaviorLog::from_columns(c, o);
  BehaviorFeatureParams p;
  p.aggregates = {"member_baskets", "member_count"};
  const auto f = run(w, Samples{{0}, {0}, {day(3)}}, p);
  EXPECT_DOUBLE_EQ(f.at("purchase_member_baskets")[0], 2.0);
  EXPECT_DOUBLE_EQ(f.at("purchase_member_count")[0], 3.0);
}

TEST(BehaviorFeatures, TypedErrors) {
  const World w = tiny_world();
  Samples s{{0}, {0}, {day(10)}};
  BehaviorFeatureParams p;
  p.aggregates = {"count", "nope"};
  PERKREC_EXPECT_THROW_MSG(run(w, s, p), ConfigError, "unknown aggregate 'nope'");
  p.aggregates = {"count", "count"};
  PERKREC_EXPECT_THROW_MSG(run(w, s, p), ConfigError, "listed twice");
  p.aggregates = {};
  p.half_life_days = 0;
  PERKREC_EXPECT_THROW_MSG(run(w, s, p), ConfigError, "half_life_days");
  p.half_life_days = 28;
  p.levels = {"aisle"};
  PERKREC_EXPECT_THROW_MSG(run(w, s, p), InputError, "unknown level 'aisle'", "'category'");
  p.levels = {};
  p.actions = {"share"};
  PERKREC_EXPECT_THROW_MSG(run(w, s, p), InputError, "unknown action 'share'", "'purchase'");
  p.actions = {"purchase"};
  PERKREC_EXPECT_THROW_MSG(run(w, Samples{{0}, {3}, {day(1)}}, p), InputError, "sample 0",
                           "benefit", "got 3");
  PERKREC_EXPECT_THROW_MSG(run(w, Samples{{-1}, {0}, {day(1)}}, p), InputError, "sample 0",
                           "negative member");
  World bad = tiny_world();
  bad.benefit_items = BenefitItems::from_pairs(std::vector<Index>{0}, std::vector<Index>{0}, 3, 7);
  PERKREC_EXPECT_THROW_MSG(run(bad, s, p), InputError, "item counts differ");
}

// Random worlds for the properties below.
struct RandomWorld {
  World world;
  std::vector<Event> events;
  Samples samples;
};

RandomWorld random_world(std::uint32_t seed, int n_events, int n_samples) {
  std::mt19937 rng(seed);
  RandomWorld r;
  const Index n_items = 40, n_users = 30, n_benefits = 8;
  std::vector<std::string> cat, brand;
  for (Index i = 0; i < n_items; ++i) {
    cat.push_back(rng() % 7 == 0 ? "" : "c" + std::to_string(rng() % 5));
    brand.push_back("b" + std::to_string(rng() % 9));
  }
  r.world.items = ItemCatalog(IdMap::range(n_items));
  r.world.items.add_level("category", cat);
  r.world.items.add_level("brand", brand);
  std::vector<Index> pb, pi;
  for (Index b = 0; b < n_benefits; ++b) {
    const int k = static_cast<int>(rng() % 6);
    for (int j = 0; j < k; ++j) {
      pb.push_back(b);
      pi.push_back(static_cast<Index>(rng() % static_cast<std::uint32_t>(n_items)));
    }
  }
  r.world.benefit_items = BenefitItems::from_pairs(pb, pi, n_benefits, n_items);
  for (int e = 0; e < n_events; ++e) {
    r.events.push_back({static_cast<Index>(rng() % static_cast<std::uint32_t>(n_users)),
                        static_cast<Index>(rng() % static_cast<std::uint32_t>(n_items)),
                        static_cast<int>(rng() % 2), day(static_cast<double>(rng() % 100)),
                        static_cast<double>(rng() % 4), static_cast<double>(rng() % 50) / 4.0,
                        static_cast<std::int64_t>(rng() % 20) - 1});
  }
  r.world.log = make_behavior(r.events, n_items);
  for (int s = 0; s < n_samples; ++s) {
    r.samples.user.push_back(
        static_cast<std::int64_t>(rng() % static_cast<std::uint32_t>(n_users + 3)));
    r.samples.benefit.push_back(
        static_cast<std::int64_t>(rng() % static_cast<std::uint32_t>(n_benefits)));
    r.samples.time.push_back(day(static_cast<double>(rng() % 100)));
  }
  return r;
}

BehaviorFeatureParams all_params(int threads) {
  BehaviorFeatureParams p;
  p.levels = {"category", "brand"};
  p.actions = {"purchase", "view"};
  p.half_life_days = 10;
  p.num_threads = threads;
  return p;
}

TEST(BehaviorFeatures, NoLeakProperty) {
  // Adding events at or after a sample's time never changes that sample's features.
  for (std::uint32_t seed = 1; seed <= 20; ++seed) {
    RandomWorld r = random_world(seed, 300, 40);
    const auto base = behavior_features(r.samples.view(), r.world.log, r.world.items,
                                        r.world.benefit_items, all_params(2));
    std::mt19937 rng(seed * 31u);
    for (std::size_t s = 0; s < r.samples.user.size(); ++s) {
      std::vector<Event> more = r.events;
      const auto u = static_cast<Index>(std::min<std::int64_t>(r.samples.user[s], 29));
      const auto its = r.world.benefit_items.items(static_cast<Index>(r.samples.benefit[s]));
      for (int k = 0; k < 5; ++k) {
        const Index item = !its.empty() && k % 2 == 0
                               ? its[static_cast<std::size_t>(rng() % its.size())]
                               : static_cast<Index>(rng() % 40);
        const Timestamp t =
            r.samples.time[s] + (k == 0 ? 0 : static_cast<Timestamp>(rng() % (5 * kSecondsPerDay)));
        more.push_back({k == 4 ? static_cast<Index>(rng() % 30) : u, item,
                        static_cast<int>(rng() % 2), t, 1.0, 9.5, 77});
      }
      const BehaviorLog log = make_behavior(more, 40);
      Samples one{{r.samples.user[s]}, {r.samples.benefit[s]}, {r.samples.time[s]}};
      const auto after =
          behavior_features(one.view(), log, r.world.items, r.world.benefit_items, all_params(1));
      for (std::size_t c = 0; c < base.names.size(); ++c) {
        ASSERT_EQ(base.columns[c][s], after.columns[c][0])
            << "seed " << seed << " sample " << s << " " << base.names[c];
      }
    }
  }
}

TEST(BehaviorFeatures, ThreadCountInvariance) {
  RandomWorld r = random_world(99, 20000, 5000);
  const auto one = behavior_features(r.samples.view(), r.world.log, r.world.items,
                                     r.world.benefit_items, all_params(1));
  for (int threads : {2, 4}) {
    const auto many = behavior_features(r.samples.view(), r.world.log, r.world.items,
                                        r.world.benefit_items, all_params(threads));
    ASSERT_EQ(one.names, many.names);
    for (std::size_t c = 0; c < one.names.size(); ++c) {
      for (std::size_t i = 0; i < one.columns[c].size(); ++i) {
        ASSERT_EQ(one.columns[c][i], many.columns[c][i])
            << one.names[c] << " row " << i << " threads " << threads;
      }
    }
  }
}

// The bit pattern of a double or a float, for bit-for-bit comparisons.
template <class T>
auto bits(T v) {
  std::conditional_t<sizeof(T) == 8, std::uint64_t, std::uint32_t> b = 0;
  static_assert(sizeof b == sizeof v);
  std::memcpy(&b, &v, sizeof b);
  return b;
}

TEST(BehaviorFeatures, StagingBlocksAndRowMajorMatrixGiveTheSameBits) {
  // behavior_features stages the sweep's rows in blocks and writes popularity in place; the
  // encoder's row-major matrix does neither. Every block size (block boundaries inside a
  // member's samples, one row per block), thread count and mix of sweep and popularity columns
  // must give the same bits.
  RandomWorld r = random_world(7, 4000, 700);
  const std::vector<std::vector<std::string>> mixes = {
      {},
      {"popularity_members", "count", "popularity_events"},
      {"popularity_events"},
      {"spend", "member_baskets", "decayed_count"}};
  for (const auto& aggregates : mixes) {
    BehaviorFeatureParams p = all_params(1);
    p.aggregates = aggregates;
    const std::vector<double> matrix = detail::behavior_matrix(
        r.samples.view(), r.world.log, r.world.items, r.world.benefit_items, p, "test");
    const std::size_t cols = behavior_column_names(p).size(), n = r.samples.user.size();
    ASSERT_EQ(matrix.size(), n * cols);
    for (std::size_t staging : {std::size_t{1}, std::size_t{4}, std::size_t{64}, std::size_t{0}}) {
      for (int threads : {1, 3}) {
        p.num_threads = threads;
        const BehaviorTable t = detail::behavior_table(r.samples.view(), r.world.log, r.world.items,
                                                       r.world.benefit_items, p, staging, "t");
        ASSERT_EQ(t.columns.size(), cols);
        for (std::size_t c = 0; c < cols; ++c) {
          ASSERT_EQ(t.columns[c].size(), n) << t.names[c];
          for (std::size_t i = 0; i < n; ++i) {
            ASSERT_EQ(bits(t.columns[c][i]), bits(matrix[i * cols + c]))
                << t.names[c] << " row " << i << " staging " << staging << " threads " << threads;
          }
        }
      }
    }
  }
  EXPECT_THROW(detail::behavior_table(r.samples.view(), r.world.log, r.world.items,
                                      r.world.benefit_items, all_params(1), 3, "test"),
               InputError);
}

TEST(BehaviorFeatures, Float32OutputIsTheFloat64OutputRounded) {
  // dtype float32 writes float columns straight from the double values: each must be exactly
  // static_cast<float> of the float64 output, for every block size, thread count and mix of
  // sweep and popularity columns; the default stays float64 and leaves float32_columns empty.
  RandomWorld r = random_world(11, 3000, 500);
  EXPECT_EQ(BehaviorFeatureParams{}.dtype, BehaviorFeatureParams::Dtype::float64);
  const std::size_t n = r.samples.user.size();
  std::size_t inexact = 0;  // values float32 cannot hold: the test must see rounding happen
  for (const std::vector<std::string>& aggregates :
       {std::vector<std::string>{},
        std::vector<std::string>{"popularity_events", "decayed_count", "share_of_wallet"}}) {
    BehaviorFeatureParams p = all_params(2);
    p.aggregates = aggregates;
    const BehaviorTable wide =
        behavior_features(r.samples.view(), r.world.log, r.world.items, r.world.benefit_items, p);
    ASSERT_TRUE(wide.float32_columns.empty());
    ASSERT_EQ(wide.columns.size(), wide.names.size());
    p.dtype = BehaviorFeatureParams::Dtype::float32;
    for (std::size_t staging : {std::size_t{1}, std::size_t{8}, std::size_t{0}}) {
      for (int threads : {1, 2, 3}) {
        p.num_threads = threads;
        const BehaviorTable t = detail::behavior_table(r.samples.view(), r.world.log, r.world.items,
                                                       r.world.benefit_items, p, staging, "t");
        ASSERT_EQ(t.names, wide.names);
        ASSERT_EQ(t.rows, wide.rows);
        ASSERT_TRUE(t.columns.empty());
        ASSERT_EQ(t.float32_columns.size(), wide.names.size());
        for (std::size_t c = 0; c < t.names.size(); ++c) {
          ASSERT_EQ(t.float32_columns[c].size(), n) << t.names[c];
          for (std::size_t i = 0; i < n; ++i) {
            const double v = wide.columns[c][i];
            ASSERT_EQ(bits(t.float32_columns[c][i]), bits(static_cast<float>(v)))
                << t.names[c] << " row " << i << " staging " << staging << " threads " << threads;
            if (staging == 1 && threads == 1)
              inexact += static_cast<double>(static_cast<float>(v)) != v;
          }
        }
      }
    }
  }
  EXPECT_GT(inexact, n);
  BehaviorFeatureParams bad = all_params(1);
  bad.dtype = static_cast<BehaviorFeatureParams::Dtype>(7);
  PERKREC_EXPECT_THROW_MSG(
      behavior_features(r.samples.view(), r.world.log, r.world.items, r.world.benefit_items, bad),
      ConfigError, "dtype");
}

TEST(BehaviorFeatures, MatchesBruteForce) {
  // Every aggregate against a direct scan of the events before each sample.
  RandomWorld r = random_world(5, 2000, 300);
  const auto p = all_params(2);
  const auto t =
      behavior_features(r.samples.view(), r.world.log, r.world.items, r.world.benefit_items, p);
  const auto& cat = r.world.items.level_codes("category");
  std::map<std::string, std::size_t> col;
  for (std::size_t c = 0; c < t.names.size(); ++c) col[t.names[c]] = c;
  for (std::size_t s = 0; s < r.samples.user.size(); ++s) {
    const auto b = static_cast<Index>(r.samples.benefit[s]);
    const auto its = r.world.benefit_items.items(b);
    std::vector<std::int32_t> cats;
    for (Index i : its) {
      if (cat[static_cast<std::size_t>(i)] >= 0) cats.push_back(cat[static_cast<std::size_t>(i)]);
    }
    double count = 0, spend = 0, cat_count = 0, member_spend = 0, pop = 0;
    Timestamp last = kNoTime;
    for (const auto& e : r.events) {
      if (e.action != 0 || e.time >= r.samples.time[s]) continue;
      const bool in_items = std::find(its.begin(), its.end(), e.item) != its.end();
      if (in_items) ++pop;
      if (e.user != r.samples.user[s]) continue;
      member_spend += e.amount;
      if (in_items) {
        ++count;
        spend += e.amount;
        last = std::max(last, e.time);
      }
      if (std::find(cats.begin(), cats.end(), cat[static_cast<std::size_t>(e.item)]) != cats.end())
        ++cat_count;
    }
    EXPECT_DOUBLE_EQ(t.columns[col["purchase_items_count"]][s], count);
    EXPECT_NEAR(t.columns[col["purchase_items_spend"]][s], spend, 1e-9);
    EXPECT_DOUBLE_EQ(t.columns[col["purchase_category_count"]][s], cat_count);
    EXPECT_NEAR(t.columns[col["purchase_member_spend"]][s], member_spend, 1e-9);
    EXPECT_DOUBLE_EQ(t.columns[col["purchase_popularity_events"]][s], pop);
    const double days = last == kNoTime
                            ? kBehaviorNeverDays
                            : static_cast<double>(r.samples.time[s] - last) / kSecondsPerDay;
    EXPECT_DOUBLE_EQ(t.columns[col["purchase_items_days_since_last"]][s], days);
  }
}

TEST(BehaviorFeatures, PopularityPerBenefitAndPerItemAgree) {
  // Popularity merges the items' event lists per benefit unless the merged lists would exceed
  // max(2^24, 2 x events) times: 1000 benefits on one item of ~18000 events (1.8e7 merged times)
  // take the per-item path, 3 benefits the merged one; both must count exactly.
  std::mt19937 rng(4);
  std::vector<Event> events;
  for (int e = 0; e < 20000; ++e) {
    events.push_back({static_cast<Index>(rng() % 500), static_cast<Index>(rng() % 10 == 0 ? 1 : 0),
                      0, day(static_cast<double>(rng() % 100)), 1.0, 1.0, -1});
  }
  World w;
  w.items = ItemCatalog(IdMap::range(2));
  w.log = make_behavior(events, 2);
  Samples s;
  for (int k = 0; k < 1200; ++k) {
    s.user.push_back(static_cast<std::int64_t>(rng() % 500));
    s.benefit.push_back(k);
    s.time.push_back(day(static_cast<double>(rng() % 102) - 1));
  }
  BehaviorFeatureParams p;
  p.aggregates = {"popularity_events", "popularity_members"};
  std::vector<BehaviorTable> results;
  for (Index n_benefits : {3, 1000}) {
    std::vector<Index> b(static_cast<std::size_t>(n_benefits)),
        i(static_cast<std::size_t>(n_benefits), 0);
    for (Index k = 0; k < n_benefits; ++k) b[static_cast<std::size_t>(k)] = k;
    w.benefit_items = BenefitItems::from_pairs(b, i, n_benefits, 2);
    Samples sb = s;  // every benefit used, so the merged lists of 1000 benefits exceed the cap
    for (auto& v : sb.benefit) v %= n_benefits;
    results.push_back(behavior_features(sb.view(), w.log, w.items, w.benefit_items, p));
  }
  for (std::size_t k = 0; k < s.user.size(); ++k) {
    double count = 0;
    std::vector<Index> members;
    for (const auto& e : events) {
      if (e.item != 0 || e.time >= s.time[k]) continue;
      ++count;
      members.push_back(e.user);
    }
    std::sort(members.begin(), members.end());
    const auto distinct =
        static_cast<double>(std::unique(members.begin(), members.end()) - members.begin());
    for (const auto& t : results) {
      ASSERT_EQ(t.columns[0][k], count) << k;
      ASSERT_EQ(t.columns[1][k], distinct) << k;
    }
  }
}

// ---- the FeatureEncoder's behavior fields -------------------------------------------------

FeatureEncoder behavior_encoder(const std::string& fields_json, int threads = 1) {
  return FeatureEncoder(FeatureSpec::from_json("{\"fields\": " + fields_json + "}"), threads);
}

struct EncoderInputs {
  RandomWorld r = random_world(11, 3000, 800);
  BehaviorData data() const { return {&r.world.log, &r.world.items, &r.world.benefit_items}; }
  SampleColumns columns() const {
    SampleColumns s;
    s.rows = static_cast<Offset>(r.samples.user.size());
    s.integers = {
        {"user", r.samples.user}, {"benefit", r.samples.benefit}, {"timestamp", r.samples.time}};
    return s;
  }
};

void expect_same_matrix(const CsrMatrix<float>& a, const CsrMatrix<float>& b) {
  EXPECT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.cols, b.cols);
  EXPECT_EQ(a.indptr, b.indptr);
  EXPECT_EQ(a.indices, b.indices);
  EXPECT_EQ(a.data, b.data);
}

// `enc` (fitted on `in` from `fields`) read back from its JSON, and the same fields fitted on
// one thread, give the same JSON and the matrix `X`.
void expect_saved_and_one_thread_same(const FeatureEncoder& enc, const std::string& fields,
                                      const EncoderInputs& in, const CsrMatrix<float>& X) {
  const BehaviorData data = in.data();
  const FeatureEncoder back = FeatureEncoder::from_json(enc.to_json());
  EXPECT_EQ(back.to_json(), enc.to_json());
  expect_same_matrix(back.transform(in.columns(), nullptr, nullptr, &data), X);
  auto one = behavior_encoder(fields, 1);
  one.fit(in.columns(), nullptr, &data);
  EXPECT_EQ(one.to_json(), enc.to_json());
  expect_same_matrix(one.transform(in.columns(), nullptr, nullptr, &data), X);
}

TEST(BehaviorEncoder, SpecErrorsNameTheJsonPointer) {
  PERKREC_EXPECT_THROW_MSG(
      behavior_encoder(R"([{"name": "b", "kind": "behavior", "aggregates": ["count", "cnt"]}])"),
      ConfigError, "/fields/0/aggregates/1", "unknown aggregate", "cnt");
  PERKREC_EXPECT_THROW_MSG(
      behavior_encoder(R"([{"name": "b", "kind": "behavior", "half_life_days": 0}])"), ConfigError,
      "/fields/0/half_life_days");
  PERKREC_EXPECT_THROW_MSG(
      behavior_encoder(R"([{"name": "b", "kind": "behavior", "levels": ["x", "x"]}])"), ConfigError,
      "/fields/0/levels/1");
  PERKREC_EXPECT_THROW_MSG(
      behavior_encoder(R"([{"name": "b", "kind": "behavior", "actions": []}])"), ConfigError,
      "/fields/0/actions");
  PERKREC_EXPECT_THROW_MSG(behavior_encoder(R"([{"name": "b", "kind": "behavior", "window": 3}])"),
                           ConfigError, "/fields/0", "window");
  // Levels and actions are checked against the data at fit, with the same pointers.
  EncoderInputs in;
  const BehaviorData data = in.data();
  auto enc = behavior_encoder(R"([{"name": "user", "kind": "id"},
      {"name": "b", "kind": "behavior", "levels": ["category", "aisle"]}])");
  PERKREC_EXPECT_THROW_MSG(enc.fit(in.columns(), nullptr, &data), ConfigError, "/fields/1/levels/1",
                           "unknown level 'aisle'");
  EXPECT_FALSE(enc.fitted());
  auto enc2 =
      behavior_encoder(R"([{"name": "b", "kind": "behavior", "actions": ["purchase", "share"]}])");
  PERKREC_EXPECT_THROW_MSG(enc2.fit(in.columns(), nullptr, &data), ConfigError,
                           "/fields/0/actions/1", "unknown action 'share'");
  // Without behaviour data: an InputError, or the field dropped when optional.
  PERKREC_EXPECT_THROW_MSG(enc2.fit(in.columns()), InputError, "field 'b'", "BehaviorData");
  auto enc3 = behavior_encoder(R"([{"name": "user", "kind": "id"},
      {"name": "b", "kind": "behavior", "optional": true}])");
  enc3.fit(in.columns());
  EXPECT_EQ(enc3.dropped_fields(), (std::vector<std::string>{"b"}));
  EXPECT_EQ(enc3.n_fields(), 1);
}

TEST(BehaviorEncoder, BucketsLog1pAndJsonRoundTrip) {
  EncoderInputs in;
  const BehaviorData data = in.data();
  const std::string fields = R"([{"name": "user", "kind": "id"},
      {"name": "b", "kind": "behavior", "levels": ["category"], "bins": 4, "half_life_days": 14,
       "aggregates": ["count", "spend", "days_since_last", "member_spend", "popularity_members"]},
      {"name": "raw", "kind": "behavior", "bins": 0, "aggregates": ["count", "share_of_wallet"],
       "actions": ["purchase", "view"]}])";
  auto enc = behavior_encoder(fields, 2);
  enc.fit(in.columns(), nullptr, &data);
  const auto sizes = enc.field_sizes();
  ASSERT_EQ(sizes.size(), 3u);
  EXPECT_EQ(sizes[2], 4);  // 2 aggregates x 2 actions, one log1p feature each
  const CsrMatrix<float> X = enc.transform(in.columns(), nullptr, nullptr, &data);
  ASSERT_EQ(X.rows, static_cast<Index>(in.r.samples.user.size()));
  EXPECT_EQ(X.nnz(), static_cast<Offset>(X.rows) * (1 + 8 + 4));
  // The log1p field holds exactly log1p of the raw aggregates.
  BehaviorFeatureParams p;
  p.aggregates = {"count", "share_of_wallet"};
  p.actions = {"purchase", "view"};
  const auto raw = behavior_features({in.r.samples.user, in.r.samples.benefit, in.r.samples.time},
                                     in.r.world.log, in.r.world.items, in.r.world.benefit_items, p);
  const auto offsets = enc.field_offsets();
  for (Index r = 0; r < X.rows; ++r) {
    const Offset row = X.indptr[static_cast<std::size_t>(r)];
    for (int k = 0; k < 4; ++k) {
      const auto at = static_cast<std::size_t>(row + 9 + k);
      EXPECT_EQ(X.indices[at], static_cast<Index>(offsets[2]) + k);
      EXPECT_FLOAT_EQ(X.data[at],
                      static_cast<float>(std::log1p(
                          raw.columns[static_cast<std::size_t>(k)][static_cast<std::size_t>(r)])));
    }
  }
  // Round trip through JSON gives the same matrix, and the same JSON; so does one thread.
  expect_saved_and_one_thread_same(enc, fields, in, X);
  // Selecting fields works without behaviour data when no behavior field is selected.
  const std::vector<std::string> only_user{"user"};
  EXPECT_EQ(enc.transform(in.columns(), nullptr, &only_user).nnz(), static_cast<Offset>(X.rows));
  const std::vector<std::string> only_b{"b"};
  PERKREC_EXPECT_THROW_MSG(enc.transform(in.columns(), nullptr, &only_b), InputError,
                           "BehaviorData");
  // A tampered state is a ModelFormatError.
  std::string text = enc.to_json();
  const auto pos = text.find("purchase_items_count");
  ASSERT_NE(pos, std::string::npos);
  text.replace(pos, 20, "purchase_items_xount");
  EXPECT_THROW(FeatureEncoder::from_json(text), ModelFormatError);
}

// continuous: per column its bucket, then (slog1p(x) - mean) / std over the fit samples.
TEST(BehaviorEncoder, ContinuousValuesAfterTheBuckets) {
  EncoderInputs in;
  const BehaviorData data = in.data();
  const std::string fields = R"([{"name": "b", "kind": "behavior", "bins": 3, "continuous": true,
      "aggregates": ["count", "days_since_last", "popularity_events"]}])";
  auto enc = behavior_encoder(fields, 2);
  enc.fit(in.columns(), nullptr, &data);
  const CsrMatrix<float> X = enc.transform(in.columns(), nullptr, nullptr, &data);
  ASSERT_EQ(X.nnz(), static_cast<Offset>(X.rows) * 6);
  BehaviorFeatureParams p;
  p.aggregates = {"count", "days_since_last", "popularity_events"};
  const auto raw = behavior_features({in.r.samples.user, in.r.samples.benefit, in.r.samples.time},
                                     in.r.world.log, in.r.world.items, in.r.world.benefit_items, p);
  const auto& st = enc.state()[0];
  for (std::size_t c = 0; c < 3; ++c) {
    const auto& x = raw.columns[c];
    double mean = 0, var = 0;
    for (double v : x) mean += std::log1p(v);
    mean /= static_cast<double>(x.size());
    for (double v : x) var += (std::log1p(v) - mean) * (std::log1p(v) - mean);
    const double sd = std::sqrt(var / static_cast<double>(x.size()));
    EXPECT_NEAR(st.agg_mean[c], mean, 1e-9);
    EXPECT_NEAR(st.agg_std[c], sd, 1e-9);
    for (Index r = 0; r < X.rows; r += 37) {
      const auto at = static_cast<std::size_t>(X.indptr[static_cast<std::size_t>(r)]) + 2 * c;
      const auto xr = x[static_cast<std::size_t>(r)];
      EXPECT_EQ(X.indices[at], st.agg_offsets[c] + testing::expected_bucket(st.agg_edges[c], xr));
      EXPECT_EQ(X.indices[at + 1], st.agg_offsets[c + 1] - 1);
      EXPECT_NEAR(X.data[at + 1], (std::log1p(xr) - mean) / sd, 1e-5);
    }
  }
  // Saved and loaded; one thread or two: the same JSON and matrix.
  expect_saved_and_one_thread_same(enc, fields, in, X);
  PERKREC_EXPECT_THROW_MSG(
      behavior_encoder(R"([{"name": "b", "kind": "behavior", "continuous": "yes"}])"), ConfigError,
      "/fields/0/continuous");
}

}  // namespace
}  // namespace perkrec
