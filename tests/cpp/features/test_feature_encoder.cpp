#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace perkrec {
namespace {

using testing::make_log;
using testing::Row;

constexpr Timestamp kT0 = 1'700'000'000;

Timestamp day(double d) { return static_cast<Timestamp>(kT0 + d * kSecondsPerDay); }

// A tiny hand-made frame: 6 samples with a string column, an integer id column and a number.
struct Frame {
  std::vector<std::int64_t> user{0, 1, 1, 2, 0, 1};
  std::vector<std::int64_t> benefit{0, 1, 0, 1, 1, 0};
  std::vector<std::int64_t> timestamp{day(1), day(2), day(3), day(4), day(5), day(6)};
  std::vector<std::int32_t> color{0, 1, 0, 2, -1, 0};  // red, blue, red, green, missing, red
  std::vector<double> price{1.0, 2.0, 3.0, 4.0, NAN, 6.0};
  SampleColumns columns() const {
    SampleColumns s;
    s.rows = static_cast<Offset>(user.size());
    s.integers = {{"user", user}, {"benefit", benefit}, {"timestamp", timestamp}};
    s.numerics = {{"price", price}};
    s.categoricals = {{"color", color, {"red", "blue", "green"}, {}}};
    return s;
  }
};

FeatureEncoder encoder(const std::string& fields_json, int threads = 1) {
  return FeatureEncoder(FeatureSpec::from_json("{\"fields\": " + fields_json + "}"), threads);
}

std::vector<Index> column_of_field(const CsrMatrix<float>& X, int slot, int slots) {
  std::vector<Index> out;
  for (Index r = 0; r < X.rows; ++r)
    out.push_back(X.indices[static_cast<std::size_t>(r * slots + slot)]);
  return out;
}

TEST(FeatureEncoder, VocabularyOtherBucketAndMinCount) {
  Frame f;
  auto enc = encoder(R"([{"name": "color", "kind": "categorical"},
                         {"name": "color2", "kind": "categorical", "column": "color", "min_count": 2},
                         {"name": "user", "kind": "id", "min_count": 2}])");
  enc.fit(f.columns());
  ASSERT_EQ(enc.state()[0].vocab, (std::vector<std::string>{"blue", "green", "red"}));
  EXPECT_EQ(enc.state()[1].vocab, (std::vector<std::string>{"red"}));
  EXPECT_EQ(enc.state()[2].vocab, (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(enc.field_sizes(), (std::vector<Index>{4, 2, 3}));
  const auto X = enc.transform(f.columns());
  ASSERT_EQ(X.rows, 6);
  ASSERT_EQ(X.cols, 9);
  // code 0 = other (the missing value); red = 3, blue = 1, green = 2
  EXPECT_EQ(column_of_field(X, 0, 3), (std::vector<Index>{3, 1, 3, 2, 0, 3}));
  EXPECT_EQ(column_of_field(X, 1, 3), (std::vector<Index>{5, 4, 5, 4, 4, 5}));
  // users 0 and 1 kept, 2 (seen once) is other
  EXPECT_EQ(column_of_field(X, 2, 3), (std::vector<Index>{7, 8, 8, 6, 7, 8}));
  for (float v : X.data) EXPECT_EQ(v, 1.0f);
  EXPECT_EQ(X.indptr, (std::vector<Offset>{0, 3, 6, 9, 12, 15, 18}));
  EXPECT_EQ(enc.feature_fields(), (std::vector<std::int32_t>{0, 0, 0, 0, 1, 1, 2, 2, 2}));
}

TEST(FeatureEncoder, AConstantFieldEncodesOtherForEveryValue) {
  // Every fit row holds hour 10 (as when a program sends all its benefits at one hour): the
  // field keeps no value, so a row at hour 23 encodes exactly what the fit rows did.
  std::vector<std::int64_t> hour{10, 10, 10, 10};
  SampleColumns s;
  s.rows = 4;
  s.integers = {{"hour", hour}};
  auto enc = encoder(R"([{"name": "hour", "kind": "categorical"}])");
  enc.fit(s);
  EXPECT_TRUE(enc.state()[0].vocab.empty());
  EXPECT_EQ(enc.field_sizes(), (std::vector<Index>{1}));
  const auto fitted = enc.transform(s);
  hour = {23, 10, 0, 7};
  s.integers = {{"hour", hour}};
  const auto later = enc.transform(s);
  EXPECT_EQ(later.indices, fitted.indices);
  EXPECT_EQ(later.indices, (std::vector<Index>{0, 0, 0, 0}));
  // Two values, or one value and a missing row, are not constant.
  hour = {10, 10, 10, 11};
  s.integers = {{"hour", hour}};
  enc.fit(s);
  EXPECT_EQ(enc.state()[0].vocab, (std::vector<std::string>{"10", "11"}));
  std::vector<std::int32_t> codes{0, 0, -1};
  SampleColumns m;
  m.rows = 3;
  m.categoricals = {{"hour", codes, {"10"}, {}}};
  enc.fit(m);
  EXPECT_EQ(enc.state()[0].vocab, (std::vector<std::string>{"10"}));
}

TEST(FeatureEncoder, MissingFlagsAreOtherForVocabulariesAndHashedAsTheirString) {
  std::vector<std::int32_t> codes{0, 1, 0, -1};
  SampleColumns s;
  s.rows = 4;
  s.categoricals = {{"c", codes, {"red", "None"}, {0, 1}}};
  auto enc = encoder(R"([{"name": "c", "kind": "categorical"},
                         {"name": "h", "kind": "categorical", "column": "c", "hash_buckets": 1000}])");
  enc.fit(s);
  EXPECT_EQ(enc.state()[0].vocab, (std::vector<std::string>{"red"}));
  const auto X = enc.transform(s);
  EXPECT_EQ(column_of_field(X, 0, 2), (std::vector<Index>{1, 0, 1, 0}));
  EXPECT_EQ(X.indices[3], 2 + static_cast<Index>(detail::pandas_string_hash("None") % 1000));
  EXPECT_EQ(X.indices[7], 2 + static_cast<Index>(detail::pandas_string_hash("nan") % 1000));
  s.categoricals[0].missing = {0};
  PERKREC_EXPECT_THROW_MSG(enc.transform(s), InputError, "'c'", "missing flags");
}

TEST(FeatureEncoder, HashingMatchesPandasHashArray) {
  // pandas.util.hash_array(np.array(["red", "blue", "green", "0"], dtype=object), categorize=True)
  EXPECT_EQ(detail::pandas_string_hash("red"), 6693705010251630701ULL);
  EXPECT_EQ(detail::pandas_string_hash("blue"), 5737226572923751104ULL);
  EXPECT_EQ(detail::pandas_string_hash("0"), 8872142683093127234ULL);
  Frame f;
  auto enc = encoder(R"([{"name": "color", "kind": "categorical", "hash_buckets": 7},
                         {"name": "user", "kind": "id", "hash_buckets": 5}])");
  enc.fit(f.columns());
  EXPECT_EQ(enc.field_sizes(), (std::vector<Index>{7, 5}));
  const auto X = enc.transform(f.columns());
  EXPECT_EQ(X.indices[0], static_cast<Index>(6693705010251630701ULL % 7));
  EXPECT_EQ(X.indices[1], 7 + static_cast<Index>(8872142683093127234ULL % 5));
}

TEST(FeatureEncoder, QuantileEdgesAndStandardize) {
  Frame f;
  auto enc = encoder(R"([{"name": "price", "kind": "numeric", "bins": 4},
                         {"name": "z", "kind": "numeric", "column": "user", "transform": "standardize"}])");
  enc.fit(f.columns());
  // finite prices 1 2 3 4 6: np.quantile at 0.25 / 0.5 / 0.75 -> 2, 3, 4
  EXPECT_EQ(enc.state()[0].edges, (std::vector<double>{2.0, 3.0, 4.0}));
  EXPECT_EQ(enc.state()[0].size, 5);
  const auto X = enc.transform(f.columns());
  // searchsorted side=right: 1 -> 0, 2 -> 1, 3 -> 2, 4 -> 3, NaN -> 4 (missing), 6 -> 3
  EXPECT_EQ(column_of_field(X, 0, 2), (std::vector<Index>{0, 1, 2, 3, 4, 3}));
  // users 0 1 1 2 0 1: mean 5/6, population std sqrt(17/36)
  const double mean = 5.0 / 6.0, sd = std::sqrt(17.0 / 36.0);
  EXPECT_NEAR(enc.state()[1].mean, mean, 1e-15);
  EXPECT_NEAR(enc.state()[1].std, sd, 1e-15);
  EXPECT_EQ(X.indices[1], 5);
  EXPECT_FLOAT_EQ(X.data[1], static_cast<float>((0 - mean) / sd));
  EXPECT_FLOAT_EQ(X.data[3], static_cast<float>((1 - mean) / sd));

  // Interpolated quantiles: 4 values, 3 bins -> virtual indices 1 and 2 exactly; 5 bins -> 0.6 ...
  std::vector<double> x{10, 0, 5, 20};
  EXPECT_EQ(detail::numpy_quantile_edges(x, 3), (std::vector<double>{5.0, 10.0}));
  x = {10, 0, 5, 20};
  const auto e = detail::numpy_quantile_edges(x, 5);  // q = .2 .4 .6 .8 -> idx .6 1.2 1.8 2.4
  ASSERT_EQ(e.size(), 4u);
  EXPECT_DOUBLE_EQ(e[0], 3.0);
  EXPECT_DOUBLE_EQ(e[1], 6.0);
  EXPECT_DOUBLE_EQ(e[2], 9.0);
  EXPECT_DOUBLE_EQ(e[3], 14.0);
}

// Events: benefit 0 is kind "coupon" (face 1 -> band 1), benefit 1 "gift" (face 10 -> band 4).
EventLog history_log() {
  return make_log({{0, 0, EventType::issued, 0.5},
                   {0, 0, EventType::redeemed, 0.75},
                   {0, 1, EventType::issued, 1.0},  // same second as sample 0: not visible to it
                   {1, 0, EventType::issued, 1.5},
                   {1, 0, EventType::claimed, 2.5},
                   {1, kNoBenefit, EventType::ordered, 2.6},
                   {2, 1, EventType::issued, 3.5}},
                  3, 2);
}

FeatureEncoder history_encoder(int bins, int threads = 1) {
  auto enc = encoder(R"([{"name": "h", "kind": "history", "bins": )" + std::to_string(bins) + "}]",
                     threads);
  enc.set_benefits({"coupon", "gift"}, std::vector<double>{1.0, 10.0});
  return enc;
}

TEST(FeatureEncoder, HistoryCountsStrictlyBefore) {
  Frame f;
  const EventLog log = history_log();
  auto enc = history_encoder(0);
  const HistoryTable h = enc.history(f.columns(), log);
  auto col = [&](const std::string& name) {
    for (std::size_t i = 0; i < h.names.size(); ++i) {
      if (h.names[i] == name) return h.columns[i];
    }
    ADD_FAILURE() << name;
    return std::vector<double>{};
  };
  // samples: (u0,b0,d1) (u1,b1,d2) (u1,b0,d3) (u2,b1,d4) (u0,b1,d5) (u1,b0,d6)
  EXPECT_EQ(col("member_issued"), (std::vector<double>{1, 1, 1, 1, 2, 1}));
  EXPECT_EQ(col("member_redeemed"), (std::vector<double>{1, 0, 0, 0, 1, 0}));
  EXPECT_EQ(col("member_kind_issued"), (std::vector<double>{1, 0, 1, 1, 1, 1}));
  EXPECT_EQ(col("member_band_issued"), (std::vector<double>{1, 0, 1, 1, 1, 1}));
  EXPECT_EQ(col("member_claimed"), (std::vector<double>{0, 0, 1, 0, 0, 1}));
  EXPECT_EQ(col("member_ordered"), (std::vector<double>{0, 0, 1, 0, 0, 1}));
  // benefit 0 issued at d0.5 and d1.5; benefit 1 at d1 and d3.5
  EXPECT_EQ(col("benefit_issued"), (std::vector<double>{1, 1, 2, 2, 2, 2}));
  EXPECT_EQ(col("benefit_redeemed"), (std::vector<double>{1, 0, 1, 0, 0, 1}));
  EXPECT_DOUBLE_EQ(col("member_redemption_rate")[0], 1.1 / 2.0);
  EXPECT_DOUBLE_EQ(col("benefit_claim_rate")[2], 1.1 / 3.0);

  // bins = 0: log1p values in aggregate order
  enc.fit(f.columns(), &log);
  const auto X = enc.transform(f.columns(), &log);
  ASSERT_EQ(X.cols, 31);
  EXPECT_EQ(X.indices[0], 0);
  EXPECT_FLOAT_EQ(X.data[0], static_cast<float>(std::log1p(1.0)));
}

TEST(FeatureEncoder, OrderTimingAggregatesAreExactAndSeeOnlyEarlierOrders) {
  Frame f;
  // samples: (u0,b0,d1) (u1,b1,d2) (u1,b0,d3) (u2,b1,d4) (u0,b1,d5) (u1,b0,d6)
  const EventLog log = make_log({{0, kNoBenefit, EventType::ordered, 1.0},  // sample 0's second
                                 {0, kNoBenefit, EventType::ordered, 3.0},
                                 {0, kNoBenefit, EventType::ordered, 4.0},
                                 {1, kNoBenefit, EventType::ordered, 2.6},
                                 {0, kNoBenefit, EventType::ordered, 5.5}},  // after sample 4
                                3, 2);
  auto enc = history_encoder(0);
  const HistoryTable h =
      enc.history(f.columns(), log, {"order_days_since", "order_interval_days", "order_overdue"});
  const double never = kBehaviorNeverDays;
  EXPECT_EQ(h.columns[0], (std::vector<double>{never, never, 0.4, never, 1.0, 3.4}));
  EXPECT_EQ(h.columns[1], (std::vector<double>{never, never, never, never, 1.5, never}));
  EXPECT_EQ(h.columns[2], (std::vector<double>{0.0, 0.0, 0.0, 0.0, 1.0 / 1.5, 0.0}));
}

TEST(FeatureEncoder, MemberChannelAggregatesCountViewsPerChannel) {
  Frame f;
  // u0: benefit 0 (app) issued twice and viewed once, benefit 1 (sms) issued once, all before
  // sample 0 (u0, b0, day 1); sample 4 is (u0, b1, day 5).
  const EventLog log = make_log({{0, 0, EventType::issued, 0.5},
                                 {0, 0, EventType::viewed, 0.6},
                                 {0, 1, EventType::issued, 0.7},
                                 {0, 0, EventType::issued, 0.8}},
                                3, 2);
  auto enc = encoder(R"([{"name": "h", "kind": "history", "bins": 0}])", 1);
  auto column = [&](const FeatureEncoder& e, const std::string& name) {
    return e.history(f.columns(), log, {name}).columns[0];
  };
  enc.set_benefits({"coupon", "gift"}, std::vector<double>{1.0, 10.0}, {"app", "sms"});
  EXPECT_EQ(column(enc, "member_channel_issued")[0], 2.0);
  EXPECT_EQ(column(enc, "member_channel_viewed")[0], 1.0);
  EXPECT_DOUBLE_EQ(column(enc, "member_channel_view_rate")[0], 1.1 / 3.0);
  EXPECT_EQ(column(enc, "member_channel_issued")[4], 1.0);
  EXPECT_EQ(column(enc, "member_channel_viewed")[4], 0.0);
  EXPECT_DOUBLE_EQ(column(enc, "member_channel_view_rate")[4], 0.1 / 2.0);
  // Views count only in the channel scope.
  EXPECT_EQ(column(enc, "member_issued")[0], 3.0);
  EXPECT_EQ(column(enc, "member_kind_issued")[0], 2.0);
  // Without channel names every benefit shares one channel.
  enc.set_benefits({"coupon", "gift"}, std::vector<double>{1.0, 10.0});
  EXPECT_EQ(column(enc, "member_channel_issued")[4], 3.0);
  EXPECT_EQ(column(enc, "member_channel_viewed")[4], 1.0);
  // The channel codes travel with the encoder's JSON.
  enc.set_benefits({"coupon", "gift"}, std::vector<double>{1.0, 10.0}, {"app", "sms"});
  enc.fit(f.columns(), &log);
  const FeatureEncoder back = FeatureEncoder::from_json(enc.to_json());
  EXPECT_EQ(column(back, "member_channel_issued"), column(enc, "member_channel_issued"));
  PERKREC_EXPECT_THROW_MSG(
      enc.set_benefits({"coupon", "gift"}, std::vector<double>{1.0, 10.0}, {"app"}), InputError,
      "channels");
}

TEST(FeatureEncoder, NoFutureEventIsVisible) {
  Frame f;
  auto enc = history_encoder(3);
  const EventLog log = history_log();
  enc.fit(f.columns(), &log);
  const auto base = enc.transform(f.columns(), &log);
  // Moving sample 0's same-second event later changes nothing for sample 0; adding events after
  // the last sample changes nothing at all.
  auto rows =
      std::vector<Row>{{0, 0, EventType::issued, 0.5},  {0, 0, EventType::redeemed, 0.75},
                       {0, 1, EventType::issued, 1.0},  {1, 0, EventType::issued, 1.5},
                       {1, 0, EventType::claimed, 2.5}, {1, kNoBenefit, EventType::ordered, 2.6},
                       {2, 1, EventType::issued, 3.5},  {0, 0, EventType::redeemed, 6.5},
                       {1, 1, EventType::issued, 6.0},  {2, 0, EventType::claimed, 9.0}};
  const EventLog later = make_log(rows, 3, 2);
  EXPECT_EQ(enc.transform(f.columns(), &later).indices, base.indices);
  // Sample 0 (u0, b0, day 1) does not see the event at its own second; moving that event
  // later leaves sample 0's row as it was (later samples' benefit counts may change).
  rows[2].day = 4.9;
  const EventLog moved = make_log(rows, 3, 2);
  const auto after = enc.transform(f.columns(), &moved);
  const auto slots = static_cast<std::ptrdiff_t>(history_aggregate_names().size());
  EXPECT_TRUE(
      std::equal(after.indices.begin(), after.indices.begin() + slots, base.indices.begin()));
  // ... and moving it to one second before the sample makes it visible (the test can fail).
  rows[2].day = 1.0 - 1.0 / kSecondsPerDay;
  const EventLog before = make_log(rows, 3, 2);
  EXPECT_EQ(enc.history(f.columns(), before, {"member_issued"}).columns[0][0], 2.0);
  EXPECT_EQ(enc.history(f.columns(), moved, {"member_issued"}).columns[0][0], 1.0);
  // An event moved from after a sample to before it is seen: the counts change.
  rows[7].day = 2.0;  // u0 redeemed b0 on day 2, before sample 4 (day 5)
  const EventLog earlier = make_log(rows, 3, 2);
  EXPECT_EQ(enc.history(f.columns(), earlier, {"member_redeemed"}).columns[0][4], 2.0);
}

// continuous: each aggregate's bucket, then (slog1p(x) - mean) / std with the fit samples' mean
// and population std of slog1p(x); bins = 0 keeps only the scaled value.
TEST(FeatureEncoder, ContinuousHistoryValuesFollowTheirBuckets) {
  Frame f;
  const EventLog log = history_log();
  auto enc = encoder(R"([{"name": "h", "kind": "history", "bins": 2, "continuous": true,
      "aggregates": ["member_issued", "member_redeemed"]},
      {"name": "v", "kind": "history", "bins": 0, "continuous": true,
       "aggregates": ["member_issued"]}])");
  enc.set_benefits({"coupon", "gift"}, std::vector<double>{1.0, 10.0});
  enc.fit(f.columns(), &log);
  // member_issued = 1 1 1 1 2 1, member_redeemed = 1 0 0 0 1 0 (HistoryCountsStrictlyBefore).
  const std::vector<std::vector<double>> raw{{1, 1, 1, 1, 2, 1}, {1, 0, 0, 0, 1, 0}};
  auto scaled_value = [](const std::vector<double>& fit, double x) {
    double mean = 0, var = 0;
    for (double v : fit) mean += std::log1p(v) / 6.0;
    for (double v : fit) var += (std::log1p(v) - mean) * (std::log1p(v) - mean) / 6.0;
    return static_cast<float>((std::log1p(x) - mean) / std::sqrt(var));
  };
  auto scaled = [&](const std::vector<double>& x, std::size_t r) { return scaled_value(x, x[r]); };
  // One edge per aggregate (the median): 1 + 2 buckets + the value = 4 features each.
  EXPECT_EQ(enc.field_sizes(), (std::vector<Index>{8, 1}));
  const auto X = enc.transform(f.columns(), &log);
  ASSERT_EQ(X.nnz(), 6 * 5);
  for (std::size_t r = 0; r < 6; ++r) {
    const std::size_t row = r * 5;
    EXPECT_EQ(X.indices[row + 0], testing::expected_bucket({1.0}, raw[0][r]));
    EXPECT_EQ(X.data[row + 0], 1.0f);
    EXPECT_EQ(X.indices[row + 1], 3);
    EXPECT_FLOAT_EQ(X.data[row + 1], scaled(raw[0], r)) << r;
    EXPECT_EQ(X.indices[row + 2], 4 + testing::expected_bucket({0.0}, raw[1][r]));
    EXPECT_EQ(X.indices[row + 3], 7);
    EXPECT_FLOAT_EQ(X.data[row + 3], scaled(raw[1], r)) << r;
    EXPECT_EQ(X.indices[row + 4], 8);
    EXPECT_FLOAT_EQ(X.data[row + 4], scaled(raw[0], r)) << r;
  }
  // Saved and loaded: the same JSON and matrix; a tampered scaling is a ModelFormatError.
  const std::string text = enc.to_json();
  const FeatureEncoder back = FeatureEncoder::from_json(text);
  EXPECT_EQ(back.to_json(), text);
  const auto Y = back.transform(f.columns(), &log);
  EXPECT_EQ(Y.indices, X.indices);
  EXPECT_EQ(Y.data, X.data);
  Json j = Json::parse(text);
  j["state"][0]["std"][1] = 0.0;
  PERKREC_EXPECT_THROW_MSG(FeatureEncoder::from_json(j.dump()), ModelFormatError, "/state/0/std");
  j = Json::parse(text);
  j["state"][1].erase("mean");
  PERKREC_EXPECT_THROW_MSG(FeatureEncoder::from_json(j.dump()), ModelFormatError, "/state/1",
                           "mean");
  // No leak: sample 0 (u0, day 1) does not see u0's issue at its own second, and sees it one
  // second earlier (its scaled member_issued changes).
  auto rows = std::vector<Row>{{0, 0, EventType::issued, 0.5},  {0, 0, EventType::redeemed, 0.75},
                               {0, 1, EventType::issued, 1.0},  {1, 0, EventType::issued, 1.5},
                               {1, 0, EventType::claimed, 2.5}, {2, 1, EventType::issued, 3.5}};
  rows[2].day = 4.9;  // later: sample 0's row is as it was
  const EventLog later = make_log(rows, 3, 2);
  const auto moved = enc.transform(f.columns(), &later);
  EXPECT_TRUE(std::equal(X.data.begin(), X.data.begin() + 5, moved.data.begin()));
  EXPECT_TRUE(std::equal(X.indices.begin(), X.indices.begin() + 5, moved.indices.begin()));
  rows[2].day = 1.0 - 1.0 / kSecondsPerDay;
  const EventLog earlier = make_log(rows, 3, 2);
  const auto seen = enc.transform(f.columns(), &earlier);
  EXPECT_FLOAT_EQ(seen.data[1], scaled_value(raw[0], 2.0));  // the fit's scaling, x = 2
  EXPECT_NE(seen.data[1], X.data[1]);
  // Bad specifications name the pointer.
  PERKREC_EXPECT_THROW_MSG(
      FeatureSpec::from_json(R"({"fields": [{"name": "h", "kind": "history", "continuous": 2}]})"),
      ConfigError, "/fields/0/continuous");
  PERKREC_EXPECT_THROW_MSG(
      FeatureSpec::from_json(
          R"({"fields": [{"name": "x", "kind": "numeric", "continuous": true}]})"),
      ConfigError, "/fields/0", "continuous");
}

TEST(FeatureEncoder, ThreadCountDoesNotChangeOutput) {
  // A larger random frame: 20000 samples, 300 members, 12 benefits, 30000 events.
  const Offset n = 20000;
  Rng rng(7);
  std::vector<std::int64_t> user(n), benefit(n), ts(n);
  std::vector<std::int32_t> cat(n);
  std::vector<double> num(n);
  for (Offset i = 0; i < n; ++i) {
    user[i] = static_cast<std::int64_t>(rng.below(300));
    benefit[i] = static_cast<std::int64_t>(rng.below(12));
    ts[i] = day(rng.uniform() * 100);
    cat[i] = static_cast<std::int32_t>(rng.below(5)) - 1;
    num[i] = rng.uniform() < 0.1 ? NAN : rng.uniform() * 50;
  }
  std::vector<Row> rows;
  for (int e = 0; e < 30000; ++e) {
    const auto type = static_cast<EventType>(rng.below(6));
    const Index b = type == EventType::ordered ? kNoBenefit : static_cast<Index>(rng.below(12));
    rows.push_back({static_cast<Index>(rng.below(300)), b, type, rng.uniform() * 100});
  }
  const EventLog log = make_log(rows, 300, 12);
  SampleColumns s;
  s.rows = n;
  s.integers = {{"user", user}, {"benefit", benefit}, {"timestamp", ts}};
  s.numerics = {{"x", num}};
  s.categoricals = {{"c", cat, {"a", "b", "c", "a"}, {}}};
  std::vector<std::string> kinds;
  std::vector<double> faces;
  for (int b = 0; b < 12; ++b) {
    kinds.push_back(b % 3 == 0 ? "gift" : "coupon");
    faces.push_back(b * 2.5);
  }
  const std::string spec = R"([{"name": "user", "kind": "id", "min_count": 60},
      {"name": "c", "kind": "categorical"}, {"name": "x", "kind": "numeric", "bins": 6},
      {"name": "h", "kind": "history", "bins": 6}, {"name": "h0", "kind": "history", "bins": 0,
       "aggregates": ["member_kind_redeemed", "benefit_claim_rate"]},
      {"name": "hc", "kind": "history", "bins": 4, "continuous": true}])";
  CsrMatrix<float> ref;
  std::string ref_json;
  for (int threads : {1, 2, 3}) {
    auto enc = encoder(spec, threads);
    enc.set_benefits(kinds, faces);
    enc.fit(s, &log);
    const auto X = enc.transform(s, &log);
    if (threads == 1) {
      ref = X;
      ref_json = enc.to_json();
      continue;
    }
    EXPECT_EQ(X.indices, ref.indices) << threads;
    EXPECT_EQ(X.data, ref.data) << threads;
    EXPECT_EQ(enc.to_json(), ref_json) << threads;
  }
  // The JSON round trip gives identical transforms; so does the encoder read from FM metadata.
  const FeatureEncoder back = FeatureEncoder::from_json(ref_json);
  EXPECT_EQ(back.to_json(), ref_json);
  const auto Y = back.transform(s, &log);
  EXPECT_EQ(Y.indices, ref.indices);
  EXPECT_EQ(Y.data, ref.data);
  const FeatureEncoder served = FeatureEncoder::from_fm_metadata("{\"encoder\": " + ref_json + "}");
  EXPECT_EQ(served.transform(s, &log).indices, ref.indices);
  // Only some fields: columns keep their global numbering.
  const std::vector<std::string> only{"c"};
  const auto C = back.transform(s, &log, &only);
  ASSERT_EQ(C.indices.size(), static_cast<std::size_t>(n));
  const int slots = static_cast<int>(ref.indices.size() / static_cast<std::size_t>(n));
  for (Offset r = 0; r < n; r += 997) EXPECT_EQ(C.indices[r], ref.indices[r * slots + 1]);
}

TEST(FeatureEncoder, StrictSpecificationNamesThePointer) {
  auto bad = [](const std::string& fields, const std::string& pointer) {
    PERKREC_EXPECT_THROW_MSG(FeatureSpec::from_json("{\"fields\": " + fields + "}"), ConfigError,
                             pointer);
  };
  bad(R"([{"name": "a", "kind": "categorical"}, {"name": "b", "kind": "nope"}])", "/fields/1/kind");
  bad(R"([{"name": "a", "kind": "numeric", "bins": -1}])", "/fields/0/bins");
  bad(R"([{"name": "a", "kind": "numeric", "bins": 3.5}])", "/fields/0/bins");
  bad(R"([{"name": "a", "kind": "numeric", "transform": "log"}])", "/fields/0/transform");
  bad(R"([{"name": "a", "kind": "categorical", "bins": 3}])", "/fields/0/bins");
  bad(R"([{"name": "a", "kind": "categorical"}, {"name": "a", "kind": "id"}])", "/fields/1/name");
  bad(R"([{"name": "h", "kind": "history", "aggregates": ["member_issued", "x"]}])",
      "/fields/0/aggregates/1");
  bad(R"([{"kind": "id"}])", "/fields/0/name");
  bad(R"([{"name": "a", "kind": "id", "min_count": -2}])", "/fields/0/min_count");
  PERKREC_EXPECT_THROW_MSG(FeatureSpec::from_json(R"({"fields": [], "extra": 1})"), ConfigError,
                           "/extra");
}

TEST(FeatureEncoder, BadInputNamesTheFieldAndChangesNothing) {
  Frame f;
  auto enc = encoder(R"([{"name": "colour", "kind": "categorical"}])");
  PERKREC_EXPECT_THROW_MSG(enc.fit(f.columns()), InputError, "colour", "missing column");
  EXPECT_FALSE(enc.fitted());
  auto z = encoder(R"([{"name": "price", "kind": "numeric", "transform": "standardize"}])");
  PERKREC_EXPECT_THROW_MSG(z.fit(f.columns()), InputError, "price", "non-finite");
  auto ok = encoder(R"([{"name": "color", "kind": "categorical"}])");
  ok.fit(f.columns());
  const std::string before = ok.to_json();
  std::vector<std::string> unknown{"nope"};
  PERKREC_EXPECT_THROW_MSG(ok.transform(f.columns(), nullptr, &unknown), InputError, "nope");
  const EventLog log = history_log();
  auto h = history_encoder(2);
  Frame g;
  g.benefit[3] = 5;
  PERKREC_EXPECT_THROW_MSG(h.fit(g.columns(), &log), InputError, "benefit", "out of range");
  EXPECT_FALSE(h.fitted());
  PERKREC_EXPECT_THROW_MSG(h.fit(f.columns(), nullptr), InputError, "EventLog");
  EXPECT_EQ(ok.to_json(), before);
  PERKREC_EXPECT_THROW_MSG(FeatureEncoder::from_fm_metadata("{}"), ModelFormatError, "/encoder");
  PERKREC_EXPECT_THROW_MSG(FeatureEncoder::from_json(R"({"fields": [], "state": [], "x": 1})"),
                           ModelFormatError, "/x");
}

TEST(FeatureEncoder, OptionalFieldsAreDroppedWhenTheirColumnIsAbsent) {
  Frame f;
  auto enc = encoder(R"([{"name": "color", "kind": "categorical", "optional": true},
                         {"name": "tier", "kind": "categorical", "optional": true}])");
  enc.fit(f.columns());
  EXPECT_EQ(enc.n_fields(), 1);
  EXPECT_EQ(enc.dropped_fields(), (std::vector<std::string>{"tier"}));
  const auto back = FeatureEncoder::from_json(enc.to_json());
  EXPECT_EQ(back.dropped_fields(), (std::vector<std::string>{"tier"}));
  EXPECT_EQ(back.transform(f.columns()).indices, enc.transform(f.columns()).indices);
}

}  // namespace
}  // namespace perkrec
