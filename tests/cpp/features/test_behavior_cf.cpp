#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "perkrec/features/behavior_cf.hpp"
#include "perkrec/features/feature_encoder.hpp"

namespace perkrec {
namespace {

constexpr Timestamp kT0 = 1'700'000'000;
Timestamp day(double d) { return static_cast<Timestamp>(kT0 + d * kSecondsPerDay); }

struct Event {
  Index user, item;
  int action;  // 0 purchase, 1 view
  Timestamp time;
};

BehaviorLog make_log(const std::vector<Event>& events, Index n_users, Index n_items) {
  std::vector<Index> u, it;
  std::vector<Timestamp> t;
  std::vector<std::int32_t> a;
  for (const auto& e : events) {
    u.push_back(e.user);
    it.push_back(e.item);
    a.push_back(e.action);
    t.push_back(e.time);
  }
  BehaviorColumns c;
  c.user = u;
  c.item = it;
  c.timestamp = t;
  c.action = a;
  BehaviorOptions o;
  o.n_users = n_users;
  o.n_items = n_items;
  o.action_names = {"purchase", "view"};
  o.num_threads = 1;
  return BehaviorLog::from_columns(c, o);
}

// Two clusters of 20 items (A: 0-19, B: 20-39) and 200 members: 0-99 buy in A, 100-199 in B.
// Members 0-49 and 100-149 buy anywhere in their cluster; members 50-99 never buy items 0-2 and
// members 150-199 never items 20-22. Views (action 1) are spread over all items at random.
// Benefits: 0 -> {0, 1, 2} (A), 1 -> {20, 21, 22} (B), 2 -> no items, 3 -> {5, 25}.
constexpr Index kUsers = 200, kItems = 40;

std::vector<Event> cluster_events() {
  std::mt19937_64 rng(7);
  std::vector<Event> ev;
  for (Index u = 0; u < kUsers; ++u) {
    const Index base = u < 100 ? 0 : 20;
    const bool avoid_first = (u % 100) >= 50;
    for (int k = 0; k < 8; ++k) {
      const Index lo = avoid_first ? 3 : 0;
      const Index item = base + lo + static_cast<Index>(rng() % static_cast<unsigned>(20 - lo));
      ev.push_back({u, item, 0, day(static_cast<double>(rng() % 50))});
    }
    ev.push_back({u, static_cast<Index>(rng() % kItems), 1, day(static_cast<double>(rng() % 50))});
  }
  return ev;
}

BenefitItems cluster_benefits() {
  return BenefitItems::from_pairs(std::vector<Index>{0, 0, 0, 1, 1, 1, 3, 3},
                                  std::vector<Index>{0, 1, 2, 20, 21, 22, 5, 25}, 4, kItems);
}

BehaviorCFParams small_params(int threads = 1) {
  BehaviorCFParams p;
  p.factors = 8;
  p.iterations = 8;
  p.num_threads = threads;
  return p;
}

struct Samples {
  std::vector<std::int64_t> user, benefit, time;
  BehaviorSamples view() const { return {user, benefit, time}; }
};

TEST(BehaviorCF, ColumnNames) {
  EXPECT_EQ(behavior_cf_column_names(), (std::vector<std::string>{"cf_dot", "cf_cosine"}));
}

TEST(BehaviorCF, PlantedClustersRankUnboughtInClusterBenefitsFirst) {
  const BehaviorLog log = make_log(cluster_events(), kUsers, kItems);
  const BenefitItems applies = cluster_benefits();
  BehaviorCF cf(small_params());
  cf.fit(log, day(60));
  // The members who never bought the in-cluster benefit's items, against both benefits.
  Samples s;
  for (Index u = 50; u < 100; ++u) {
    for (std::int64_t b : {0, 1})
      s.user.push_back(u), s.benefit.push_back(b), s.time.push_back(day(70));
  }
  for (Index u = 150; u < 200; ++u) {
    for (std::int64_t b : {1, 0})
      s.user.push_back(u), s.benefit.push_back(b), s.time.push_back(day(70));
  }
  const BehaviorTable t = cf.transform(s.view(), log, applies);
  ASSERT_EQ(t.names, behavior_cf_column_names());
  int wins_dot = 0, wins_cos = 0;
  double gap = 0;
  const std::size_t pairs = s.user.size() / 2;
  for (std::size_t i = 0; i < pairs; ++i) {
    // Row 2i: the in-cluster benefit, row 2i + 1: the other cluster's.
    wins_dot += t.columns[0][2 * i] > t.columns[0][2 * i + 1];
    wins_cos += t.columns[1][2 * i] > t.columns[1][2 * i + 1];
    gap += t.columns[1][2 * i] - t.columns[1][2 * i + 1];
  }
  EXPECT_EQ(wins_dot, static_cast<int>(pairs));
  EXPECT_EQ(wins_cos, static_cast<int>(pairs));
  EXPECT_GT(gap / static_cast<double>(pairs), 0.5);  // cosines near 1 against near 0
}

TEST(BehaviorCF, ExactDecayedMeanAndDocumentedZeros) {
  const BehaviorLog log = make_log(cluster_events(), kUsers, kItems);
  const BenefitItems applies = cluster_benefits();
  BehaviorCFParams p = small_params();
  p.half_life_days = 10.0;
  BehaviorCF cf(p);
  cf.fit(log, day(60));
  // Member 7's purchases strictly before day 30, by hand.
  const Timestamp t = day(30);
  const auto& y = cf.item_factors();
  std::vector<double> x(8, 0.0);
  double weight = 0;
  for (Offset e = log.user_begin(7); e < log.before(7, t); ++e) {
    if (log.actions()[static_cast<std::size_t>(e)] != 0) continue;
    const double w =
        std::pow(0.5, static_cast<double>(t - log.timestamps()[static_cast<std::size_t>(e)]) /
                          (10.0 * kSecondsPerDay));
    for (int k = 0; k < 8; ++k) x[k] += w * y.row(log.items()[static_cast<std::size_t>(e)])[k];
    weight += w;
  }
  ASSERT_GT(weight, 0);
  std::vector<double> v(8, 0.0);
  for (Index item : {Index{5}, Index{25}}) {
    for (int k = 0; k < 8; ++k) v[k] += y.row(item)[k] / 2.0;
  }
  double dot = 0, nx = 0, nv = 0;
  for (int k = 0; k < 8; ++k) {
    dot += x[k] / weight * v[k];
    nx += (x[k] / weight) * (x[k] / weight);
    nv += v[k] * v[k];
  }
  // Member 7 at day 30 on benefit 3; then a member unknown to the log, a benefit without
  // items, and a member with no purchase before the sample's time (day 0).
  Samples s{{7, 500, 7, 7}, {3, 3, 2, 3}, {t, t, t, day(0)}};
  const BehaviorTable out = cf.transform(s.view(), log, applies);
  EXPECT_NEAR(out.columns[0][0], dot, 1e-9 * (1 + std::fabs(dot)));
  EXPECT_NEAR(out.columns[1][0], dot / std::sqrt(nx * nv), 1e-9);
  for (std::size_t r = 1; r < 4; ++r) {
    EXPECT_EQ(out.columns[0][r], 0.0) << r;
    EXPECT_EQ(out.columns[1][r], 0.0) << r;
  }
}

TEST(BehaviorCF, ItemsWithoutEventsBeforeAsOfHaveNoFactors) {
  std::vector<Event> ev = cluster_events();
  ev.push_back({3, 39, 0, day(80)});  // after as_of only (item 39 is also bought before)
  const BehaviorLog log = make_log(ev, kUsers, kItems + 1);
  BehaviorCF cf(small_params());
  cf.fit(log, day(60));
  ASSERT_EQ(cf.n_items(), kItems + 1);
  EXPECT_EQ(cf.has_factors()[static_cast<std::size_t>(kItems)], 0);  // never bought
  for (int k = 0; k < 8; ++k) EXPECT_EQ(cf.item_factors().row(kItems)[k], 0.0f);
  EXPECT_EQ(cf.has_factors()[0], 1);
  EXPECT_EQ(cf.as_of(), day(60));
}

TEST(BehaviorCF, LaterEventsNeverChangeFactorsOrColumns) {
  const std::vector<Event> base = cluster_events();
  const BenefitItems applies = cluster_benefits();
  const Timestamp as_of = day(30);
  // Events at and after as_of: the item factors are the same bit for bit.
  std::vector<Event> more = base;
  for (Index u = 0; u < kUsers; u += 3) {
    more.push_back({u, (u * 7) % kItems, 0, as_of});
    more.push_back({u, (u * 11) % kItems, 0, day(45)});
  }
  const std::vector<Event> before_only = [&] {
    std::vector<Event> kept;
    for (const auto& e : base)
      if (e.time < as_of) kept.push_back(e);
    return kept;
  }();
  BehaviorCF a(small_params()), b(small_params()), c(small_params());
  a.fit(make_log(base, kUsers, kItems), as_of);
  b.fit(make_log(more, kUsers, kItems), as_of);
  c.fit(make_log(before_only, kUsers, kItems), as_of);
  EXPECT_EQ(a.item_factors().values, b.item_factors().values);
  EXPECT_EQ(a.item_factors().values, c.item_factors().values);

  // Events at or after each sample's time: its columns are the same bit for bit.
  Samples s;
  std::vector<Event> later = base;
  for (Index u = 0; u < kUsers; u += 2) {
    const Timestamp t = day(10 + static_cast<double>(u % 40));
    s.user.push_back(u), s.benefit.push_back(u % 4), s.time.push_back(t);
    later.push_back({u, (u * 13) % kItems, 0, t});  // the same second
    later.push_back({u, (u * 17) % kItems, 0, t + 3600});
  }
  const BehaviorTable x = a.transform(s.view(), make_log(base, kUsers, kItems), applies);
  const BehaviorTable y = a.transform(s.view(), make_log(later, kUsers, kItems), applies);
  EXPECT_EQ(x.columns, y.columns);
  double nonzero = 0;
  for (double v : x.columns[1]) nonzero += v != 0.0;
  EXPECT_GT(nonzero, 40);  // the comparison is not between zeros
}

TEST(BehaviorCF, ThreadCountNeverChangesTheOutput) {
  const BehaviorLog log = make_log(cluster_events(), kUsers, kItems);
  const BenefitItems applies = cluster_benefits();
  BehaviorCF one(small_params(1)), two(small_params(2));
  one.fit(log, day(40));
  two.fit(log, day(40));
  EXPECT_EQ(one.item_factors().values, two.item_factors().values);
  Samples s;
  for (Index u = 0; u < kUsers + 5; ++u) {
    for (std::int64_t b = 0; b < 4; ++b)
      s.user.push_back(u), s.benefit.push_back(b),
          s.time.push_back(day(static_cast<double>(u % 60)));
  }
  EXPECT_EQ(one.transform(s.view(), log, applies).columns,
            two.transform(s.view(), log, applies).columns);
}

TEST(BehaviorCF, SaveLoadIdentity) {
  const BehaviorLog log = make_log(cluster_events(), kUsers, kItems);
  const BenefitItems applies = cluster_benefits();
  BehaviorCFParams p = small_params();
  p.actions = {"purchase", "view"};
  p.weight_half_life_days = 20;
  BehaviorCF cf(p);
  cf.fit(log, day(45));
  const BehaviorCF bytes = BehaviorCF::from_bytes(cf.to_bytes());
  const BehaviorCF json = BehaviorCF::from_json(Json::parse(cf.to_json().dump()), "");
  EXPECT_TRUE(bytes == cf);
  EXPECT_TRUE(json == cf);
  EXPECT_EQ(json.has_factors(), cf.has_factors());
  Samples s{{1, 120, 60}, {0, 1, 3}, {day(50), day(50), day(20)}};
  EXPECT_EQ(json.transform(s.view(), log, applies).columns,
            cf.transform(s.view(), log, applies).columns);
  // A damaged file or state is a ModelFormatError naming what is wrong.
  const std::string file = cf.to_bytes();
  EXPECT_THROW(BehaviorCF::from_bytes(file.substr(0, file.size() / 2)), ModelFormatError);
  Json bad = cf.to_json();
  bad["factors"].erase(0);
  EXPECT_THROW(BehaviorCF::from_json(bad, ""), ModelFormatError);
  bad = cf.to_json();
  bad["factors"][3] = 1e30;
  EXPECT_THROW(BehaviorCF::from_json(bad, ""), ModelFormatError);
  bad = cf.to_json();
  bad["params"]["factors"] = 0;
  EXPECT_THROW(BehaviorCF::from_json(bad, ""), ModelFormatError);
}

TEST(BehaviorCF, BadParamsAndInputsRaiseTypedErrorsWithoutStateChange) {
  auto config_error_names = [](BehaviorCFParams p, const std::string& field) {
    try {
      BehaviorCF cf(p);
      ADD_FAILURE() << "no ConfigError for " << field;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  BehaviorCFParams p = small_params();
  p.factors = 0;
  config_error_names(p, "factors");
  p = small_params();
  p.half_life_days = 0;
  config_error_names(p, "half_life_days");
  p = small_params();
  p.actions = {};
  config_error_names(p, "actions");
  p = small_params();
  p.actions = {"purchase", "purchase"};
  config_error_names(p, "actions");
  p = small_params();
  p.iterations = 0;
  config_error_names(p, "iterations");
  p = small_params();
  p.weight_half_life_days = -1;
  config_error_names(p, "weight_half_life_days");

  const BehaviorLog log = make_log(cluster_events(), kUsers, kItems);
  const BenefitItems applies = cluster_benefits();
  Samples s{{1}, {0}, {day(50)}};
  BehaviorCF unfitted(small_params());
  EXPECT_THROW(unfitted.transform(s.view(), log, applies), InputError);
  BehaviorCFParams sharing = small_params();
  sharing.actions = {"share"};
  BehaviorCF cf_share(sharing);
  EXPECT_THROW(cf_share.fit(log, day(40)), InputError);
  EXPECT_FALSE(cf_share.fitted());

  BehaviorCF cf(small_params());
  cf.fit(log, day(40));
  const BehaviorCF before = cf;
  EXPECT_THROW(cf.fit(log, kMaxTimestamp + 1), InputError);
  EXPECT_TRUE(cf == before);
  Samples bad_benefit{{1}, {4}, {day(50)}};
  Samples negative_user{{-1}, {0}, {day(50)}};
  Samples short_times{{1, 2}, {0, 0}, {day(50)}};
  EXPECT_THROW(cf.transform(bad_benefit.view(), log, applies), InputError);
  EXPECT_THROW(cf.transform(negative_user.view(), log, applies), InputError);
  EXPECT_THROW(cf.transform(short_times.view(), log, applies), InputError);
  const BehaviorLog other_items = make_log(cluster_events(), kUsers, kItems + 3);
  EXPECT_THROW(cf.transform(s.view(), other_items, applies), InputError);
  const BenefitItems other_applies =
      BenefitItems::from_pairs(std::vector<Index>{0}, std::vector<Index>{0}, 1, kItems + 3);
  EXPECT_THROW(cf.transform(s.view(), log, other_applies), InputError);
  EXPECT_TRUE(cf == before);
}

// ---- the FeatureEncoder's behavior_cf fields ----------------------------------------------

template <class E>
void expect_error(const std::function<void()>& f, const std::vector<std::string>& fragments) {
  try {
    f();
    ADD_FAILURE() << "no exception";
  } catch (const E& e) {
    for (const auto& fragment : fragments)
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

FeatureEncoder cf_encoder(const std::string& fields_json, int threads = 1) {
  return FeatureEncoder(FeatureSpec::from_json("{\"fields\": " + fields_json + "}"), threads);
}

struct EncoderWorld {
  BehaviorLog log = make_log(cluster_events(), kUsers, kItems);
  ItemCatalog items = ItemCatalog(IdMap::range(kItems));
  BenefitItems applies = cluster_benefits();
  Samples s;
  EncoderWorld() {
    for (Index u = 0; u < kUsers; u += 3) {
      for (std::int64_t b = 0; b < 4; ++b)
        s.user.push_back(u), s.benefit.push_back(b), s.time.push_back(day(30 + (u + b) % 25));
    }
  }
  BehaviorData data() const { return {&log, &items, &applies}; }
  SampleColumns columns() const {
    SampleColumns c;
    c.rows = static_cast<Offset>(s.user.size());
    c.integers = {{"user", s.user}, {"benefit", s.benefit}, {"timestamp", s.time}};
    return c;
  }
};

constexpr const char* kCfFields = R"([{"name": "user", "kind": "id"},
    {"name": "cf", "kind": "behavior_cf", "factors": 8, "iterations": 8}])";

TEST(BehaviorCFEncoder, FitsBeforeTheEarliestSampleAndEncodesScaledValues) {
  const EncoderWorld w;
  const BehaviorData data = w.data();
  auto enc = cf_encoder(kCfFields, 2);
  enc.fit(w.columns(), nullptr, &data);
  ASSERT_EQ(enc.field_sizes(),
            (std::vector<Index>{static_cast<Index>(w.s.user.size() / 4) + 1, 2}));
  // The item factors: BehaviorCF at the earliest sample's time.
  BehaviorCFParams p = small_params(1);
  BehaviorCF direct(p);
  direct.fit(w.log, day(30));
  const BehaviorCF& stored = enc.state()[1].cf;
  EXPECT_EQ(stored.as_of(), day(30));
  EXPECT_EQ(stored.item_factors().values, direct.item_factors().values);
  // The values: (slog1p(x) - mean) / std of BehaviorCF's columns.
  const BehaviorTable t = direct.transform(w.s.view(), w.log, w.applies);
  const CsrMatrix<float> X = enc.transform(w.columns(), nullptr, nullptr, &data);
  const auto& st = enc.state()[1];
  const Index base = static_cast<Index>(enc.field_offsets()[1]);
  for (Index r = 0; r < X.rows; ++r) {
    for (std::size_t c = 0; c < 2; ++c) {
      const auto at = static_cast<std::size_t>(X.indptr[static_cast<std::size_t>(r)]) + 1 + c;
      const double x = t.columns[c][static_cast<std::size_t>(r)];
      const double v =
          (std::copysign(std::log1p(std::fabs(x)), x) - st.agg_mean[c]) / st.agg_std[c];
      EXPECT_EQ(X.indices[at], base + static_cast<Index>(c));
      EXPECT_EQ(X.data[at], static_cast<float>(v));
    }
  }
  // JSON round trip and one thread: the same JSON and matrix.
  const FeatureEncoder back = FeatureEncoder::from_json(enc.to_json());
  EXPECT_EQ(back.to_json(), enc.to_json());
  EXPECT_EQ(back.transform(w.columns(), nullptr, nullptr, &data).data, X.data);
  auto one = cf_encoder(kCfFields, 1);
  one.fit(w.columns(), nullptr, &data);
  EXPECT_EQ(one.to_json(), enc.to_json());
  const auto X1 = one.transform(w.columns(), nullptr, nullptr, &data);
  EXPECT_EQ(X1.indices, X.indices);
  EXPECT_EQ(X1.data, X.data);
}

TEST(BehaviorCFEncoder, BehaviourFromTheEarliestSampleOnNeverReachesTheFactors) {
  const EncoderWorld w;
  std::vector<Event> more = cluster_events();
  for (Index u = 0; u < kUsers; u += 2) more.push_back({u, (u * 3) % kItems, 0, day(30)});
  const BehaviorLog later = make_log(more, kUsers, kItems);
  const BehaviorData data = w.data();
  const BehaviorData data_later{&later, &w.items, &w.applies};
  auto a = cf_encoder(kCfFields), b = cf_encoder(kCfFields);
  a.fit(w.columns(), nullptr, &data);
  b.fit(w.columns(), nullptr, &data_later);
  EXPECT_TRUE(a.state()[1].cf == b.state()[1].cf);
  // Samples at the earliest time see no behaviour at or after it either.
  const auto Xa = a.transform(w.columns(), nullptr, nullptr, &data);
  const auto Xb = a.transform(w.columns(), nullptr, nullptr, &data_later);
  for (std::size_t r = 0; r < w.s.time.size(); ++r) {
    if (w.s.time[r] != day(30)) continue;
    const auto at = static_cast<std::size_t>(Xa.indptr[r]);
    EXPECT_EQ(Xa.data[at + 1], Xb.data[at + 1]);
    EXPECT_EQ(Xa.data[at + 2], Xb.data[at + 2]);
  }
}

TEST(BehaviorCFEncoder, SpecAndInputErrors) {
  expect_error<ConfigError>(
      [] { cf_encoder(R"([{"name": "cf", "kind": "behavior_cf", "factors": 0}])"); },
      {"/fields/0", "factors"});
  expect_error<ConfigError>(
      [] { cf_encoder(R"([{"name": "cf", "kind": "behavior_cf", "levels": ["category"]}])"); },
      {"/fields/0", "levels"});
  expect_error<ConfigError>(
      [] { cf_encoder(R"([{"name": "cf", "kind": "behavior_cf", "as_of": 1e300}])"); },
      {"/fields/0/as_of"});
  const EncoderWorld w;
  const BehaviorData data = w.data();
  // as_of after the earliest sample would leak: refused before anything changes.
  auto late = cf_encoder(R"([{"name": "cf", "kind": "behavior_cf", "as_of": 1702600000}])");
  expect_error<InputError>([&] { late.fit(w.columns(), nullptr, &data); }, {"'cf'", "as_of"});
  EXPECT_FALSE(late.fitted());
  auto share = cf_encoder(R"([{"name": "cf", "kind": "behavior_cf", "actions": ["share"]}])");
  expect_error<ConfigError>([&] { share.fit(w.columns(), nullptr, &data); },
                            {"/fields/0/actions/0", "share"});
  auto optional = cf_encoder(R"([{"name": "user", "kind": "id"},
      {"name": "cf", "kind": "behavior_cf", "optional": true}])");
  optional.fit(w.columns());
  EXPECT_EQ(optional.dropped_fields(), (std::vector<std::string>{"cf"}));
  // A stored state whose factors do not match the field's params is a corrupt file.
  auto enc = cf_encoder(kCfFields);
  enc.fit(w.columns(), nullptr, &data);
  Json doc = Json::parse(enc.to_json());
  doc["state"][1]["cf"]["params"]["factors"] = 4;
  expect_error<ModelFormatError>([&] { FeatureEncoder::from_json(doc.dump()); }, {"/state/1"});
  doc = Json::parse(enc.to_json());
  doc["state"][1].erase("cf");
  expect_error<ModelFormatError>([&] { FeatureEncoder::from_json(doc.dump()); }, {"cf"});
}

}  // namespace
}  // namespace perkrec
