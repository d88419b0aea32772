#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace perkrec {
namespace {

struct Cols {
  std::vector<Index> user, item;
  std::vector<Timestamp> time;
  std::vector<std::int32_t> action;
  std::vector<double> quantity, amount;
  std::vector<std::int64_t> basket;
  BehaviorColumns view() const {
    BehaviorColumns c;
    c.user = user;
    c.item = item;
    c.timestamp = time;
    c.action = action;
    c.quantity = quantity;
    c.amount = amount;
    c.basket = basket;
    return c;
  }
};

Cols small() {
  Cols c;
  c.user = {1, 0, 1, 0, 0};
  c.item = {3, 2, 1, 0, 4};
  c.time = {50, 30, 10, 30, 20};
  c.action = {0, 1, 0, 0, 0};
  c.quantity = {1, 2, 3, 4, 5};
  c.amount = {1.5, 0, 2.5, 3.5, 4.5};
  c.basket = {7, -1, 6, 5, 4};
  return c;
}

BehaviorOptions options(Index n_items = 5) {
  BehaviorOptions o;
  o.n_items = n_items;
  o.action_names = {"purchase", "view"};
  return o;
}

TEST(BehaviorLog, SortsByMemberThenTimeStably) {
  const Cols c = small();
  const BehaviorLog log = BehaviorLog::from_columns(c.view(), options());
  EXPECT_EQ(log.size(), 5);
  EXPECT_EQ(log.n_users(), 2);
  EXPECT_EQ(log.n_items(), 5);
  EXPECT_EQ(log.user_offsets(), (std::vector<Offset>{0, 3, 5}));
  // Member 0: rows 4 (t20), 1 (t30), 3 (t30: a tie keeps input order); member 1: rows 2, 0.
  EXPECT_EQ(std::vector<Index>(log.items().begin(), log.items().end()),
            (std::vector<Index>{4, 2, 0, 1, 3}));
  EXPECT_EQ(std::vector<Timestamp>(log.timestamps().begin(), log.timestamps().end()),
            (std::vector<Timestamp>{20, 30, 30, 10, 50}));
  EXPECT_EQ(log.actions()[1], 1);
  EXPECT_FLOAT_EQ(log.quantities()[2], 4.0f);
  EXPECT_DOUBLE_EQ(log.amounts()[0], 4.5);
  EXPECT_EQ(log.baskets()[1], -1);
  EXPECT_TRUE(log.has_baskets());
  EXPECT_EQ(log.users(), (std::vector<Index>{0, 0, 0, 1, 1}));
  EXPECT_EQ(log.min_time(), 10);
  EXPECT_EQ(log.max_time(), 50);
  EXPECT_EQ(log.find_action("view"), 1);
  EXPECT_EQ(log.find_action("share"), -1);
}

TEST(BehaviorLog, AsOfQueryIsStrictlyBefore) {
  const Cols c = small();
  const BehaviorLog log = BehaviorLog::from_columns(c.view(), options());
  EXPECT_EQ(log.before(0, 20), 0);
  EXPECT_EQ(log.before(0, 21), 1);
  EXPECT_EQ(log.before(0, 30), 1);  // both events at 30 are not before 30
  EXPECT_EQ(log.before(0, 31), 3);
  EXPECT_EQ(log.before(1, 1000), 5);
  EXPECT_EQ(log.before(1, 0), 3);
  PERKREC_EXPECT_THROW_MSG(log.before(2, 0), InputError, "user out of range");
}

TEST(BehaviorLog, DefaultsForOptionalColumns) {
  Cols c = small();
  c.action.clear();
  c.quantity.clear();
  c.amount.clear();
  c.basket.clear();
  BehaviorOptions o;
  const BehaviorLog log = BehaviorLog::from_columns(c.view(), o);
  EXPECT_EQ(log.n_items(), 5);  // inferred
  EXPECT_EQ(log.action_names(), (std::vector<std::string>{"purchase"}));
  for (Offset e = 0; e < log.size(); ++e) {
    EXPECT_EQ(log.actions()[static_cast<std::size_t>(e)], 0);
    EXPECT_FLOAT_EQ(log.quantities()[static_cast<std::size_t>(e)], 1.0f);
    EXPECT_DOUBLE_EQ(log.amounts()[static_cast<std::size_t>(e)], 0.0);
  }
  EXPECT_FALSE(log.has_baskets());
  EXPECT_TRUE(log.baskets().empty());
}

TEST(BehaviorLog, RowErrorsNameFieldAndValue) {
  {
    Cols c = small();
    c.amount[2] = NAN;
    PERKREC_EXPECT_THROW_MSG(BehaviorLog::from_columns(c.view(), options()), InputError, "row 2",
                             "amount", "nan");
  }
  {
    Cols c = small();
    c.amount[3] = -1.0;
    PERKREC_EXPECT_THROW_MSG(BehaviorLog::from_columns(c.view(), options()), InputError, "row 3",
                             "amount", "-1");
  }
  {
    Cols c = small();
    c.quantity[1] = -2.0;
    PERKREC_EXPECT_THROW_MSG(BehaviorLog::from_columns(c.view(), options()), InputError, "row 1",
                             "quantity", "-2");
  }
  {
    Cols c = small();
    c.action[4] = 2;
    PERKREC_EXPECT_THROW_MSG(BehaviorLog::from_columns(c.view(), options()), InputError, "row 4",
                             "action");
  }
  {
    Cols c = small();
    c.item[0] = 5;
    PERKREC_EXPECT_THROW_MSG(BehaviorLog::from_columns(c.view(), options()), InputError, "row 0",
                             "item", "out of range");
  }
  {
    Cols c = small();
    c.time[0] = kMaxTimestamp;
    PERKREC_EXPECT_THROW_MSG(BehaviorLog::from_columns(c.view(), options()), InputError, "row 0",
                             "timestamp");
  }
  {
    Cols c = small();
    c.amount.pop_back();
    PERKREC_EXPECT_THROW_MSG(BehaviorLog::from_columns(c.view(), options()), InputError, "'amount'",
                             "has 4 rows");
  }
  {
    BehaviorOptions o = options();
    o.action_names = {"purchase", "purchase"};
    PERKREC_EXPECT_THROW_MSG(BehaviorLog::from_columns(small().view(), o), InputError,
                             "listed twice");
  }
}

TEST(BehaviorLog, UnknownItemsDroppedAndCountedOrRaised) {
  Cols c = small();
  c.item[1] = -1;
  c.item[4] = -1;
  const BehaviorLog log = BehaviorLog::from_columns(c.view(), options());
  EXPECT_EQ(log.size(), 3);
  EXPECT_EQ(log.unknown_items(), 2);
  EXPECT_EQ(log.user_offsets(), (std::vector<Offset>{0, 1, 3}));
  EXPECT_EQ(std::vector<Index>(log.items().begin(), log.items().end()),
            (std::vector<Index>{0, 1, 3}));
  BehaviorOptions o = options();
  o.unknown = UnknownItems::raise;
  PERKREC_EXPECT_THROW_MSG(BehaviorLog::from_columns(c.view(), o), InputError, "row 1",
                           "unknown item", "2 rows");
  // Unknown members (-1) the same way, counted apart.
  Cols d = small();
  d.user[2] = -1;
  const BehaviorLog dropped = BehaviorLog::from_columns(d.view(), options());
  EXPECT_EQ(dropped.size(), 4);
  EXPECT_EQ(dropped.unknown_users(), 1);
  EXPECT_EQ(dropped.unknown_items(), 0);
  EXPECT_EQ(dropped.user_offsets(), (std::vector<Offset>{0, 3, 4}));
  PERKREC_EXPECT_THROW_MSG(BehaviorLog::from_columns(d.view(), o), InputError, "row 2",
                           "unknown member");
  d.user[2] = -2;
  PERKREC_EXPECT_THROW_MSG(BehaviorLog::from_columns(d.view(), options()), InputError, "row 2",
                           "user", "-2");
}

Cols random_cols(std::size_t n, Index users, Index items, std::uint32_t seed, bool sorted) {
  std::mt19937 rng(seed);
  Cols c;
  for (std::size_t i = 0; i < n; ++i) {
    c.user.push_back(static_cast<Index>(rng() % static_cast<std::uint32_t>(users)));
    c.item.push_back(static_cast<Index>(rng() % static_cast<std::uint32_t>(items)));
    c.time.push_back(static_cast<Timestamp>(rng() % 1000));
    c.action.push_back(static_cast<std::int32_t>(rng() % 2));
    c.quantity.push_back(static_cast<double>(rng() % 5));
    c.amount.push_back(static_cast<double>(rng() % 100) / 10.0);
    c.basket.push_back(static_cast<std::int64_t>(rng() % 50));
  }
  if (sorted) {
    std::vector<std::size_t> idx(n);
    for (std::size_t i = 0; i < n; ++i) idx[i] = i;
    std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
      return c.user[a] != c.user[b] ? c.user[a] < c.user[b] : c.time[a] < c.time[b];
    });
    Cols s;
    for (std::size_t i : idx) {
      s.user.push_back(c.user[i]);
      s.item.push_back(c.item[i]);
      s.time.push_back(c.time[i]);
      s.action.push_back(c.action[i]);
      s.quantity.push_back(c.quantity[i]);
      s.amount.push_back(c.amount[i]);
      s.basket.push_back(c.basket[i]);
    }
    return s;
  }
  return c;
}

void expect_same(const BehaviorLog& a, const BehaviorLog& b) {
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(a.user_offsets(), b.user_offsets());
  for (std::size_t e = 0; e < static_cast<std::size_t>(a.size()); ++e) {
    ASSERT_EQ(a.items()[e], b.items()[e]) << e;
    ASSERT_EQ(a.timestamps()[e], b.timestamps()[e]) << e;
    ASSERT_EQ(a.actions()[e], b.actions()[e]) << e;
    ASSERT_EQ(a.quantities()[e], b.quantities()[e]) << e;
    ASSERT_EQ(a.amounts()[e], b.amounts()[e]) << e;
    ASSERT_EQ(a.baskets()[e], b.baskets()[e]) << e;
  }
}

TEST(BehaviorLog, ThreadCountAndInputOrderInvariance) {
  const Cols c = random_cols(200000, 3000, 500, 7, false);
  BehaviorOptions o = options(500);
  o.num_threads = 1;
  const BehaviorLog one = BehaviorLog::from_columns(c.view(), o);
  o.num_threads = 4;
  const BehaviorLog four = BehaviorLog::from_columns(c.view(), o);
  expect_same(one, four);
  // The same events already sorted take the copy path and give the same log.
  const Cols s = random_cols(200000, 3000, 500, 7, true);
  expect_same(one, BehaviorLog::from_columns(s.view(), o));
  for (Index u = 0; u < one.n_users(); ++u) {
    for (Offset e = one.user_begin(u) + 1; e < one.user_end(u); ++e) {
      ASSERT_LE(one.timestamps()[static_cast<std::size_t>(e - 1)],
                one.timestamps()[static_cast<std::size_t>(e)]);
    }
  }
}

// The log is a plain stable sort of the kept rows by (member, time), whatever the thread count:
// many ties in time (each row's basket is its input row, so a tie out of input order shows),
// unknown members and items dropped, one member or millions, times over the whole supported
// range (the widest sort keys) or all equal.
TEST(BehaviorLog, MatchesReferenceStableSort) {
  struct Case {
    std::size_t n;
    Index users;
    Timestamp t_lo;
    std::uint64_t t_span;
  };
  const Case cases[] = {
      {300000, 5000, 1700000000, 20},
      {300000, 1, 0, 1000},
      {200000, 3, -5, 3},
      {250000, 100000, kMinTimestamp, static_cast<std::uint64_t>(kMaxTimestamp - kMinTimestamp)},
      {50000, 2000000, 1600000000, 86400 * 365},
      {1000, 7, 0, 1},
  };
  for (const Case& k : cases) {
    std::mt19937_64 rng(k.n + static_cast<std::size_t>(k.users));
    Cols c;
    for (std::size_t i = 0; i < k.n; ++i) {
      c.user.push_back(
          rng() % 100 == 0 ? -1 : static_cast<Index>(rng() % static_cast<std::uint64_t>(k.users)));
      c.item.push_back(rng() % 100 == 0 ? -1 : static_cast<Index>(rng() % 50));
      c.time.push_back(k.t_lo + static_cast<Timestamp>(rng() % k.t_span));
      c.action.push_back(static_cast<std::int32_t>(rng() % 2));
      c.quantity.push_back(static_cast<double>(rng() % 5) + 0.25);
      c.amount.push_back(static_cast<double>(rng() % 1000) / 8.0);
      c.basket.push_back(static_cast<std::int64_t>(i));
    }
    std::vector<std::size_t> idx;
    for (std::size_t i = 0; i < k.n; ++i) {
      if (c.user[i] >= 0 && c.item[i] >= 0) idx.push_back(i);
    }
    std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
      return c.user[a] != c.user[b] ? c.user[a] < c.user[b] : c.time[a] < c.time[b];
    });
    std::vector<Offset> offsets(static_cast<std::size_t>(k.users) + 1, 0);
    for (std::size_t i : idx) ++offsets[static_cast<std::size_t>(c.user[i]) + 1];
    for (std::size_t u = 0; u < static_cast<std::size_t>(k.users); ++u)
      offsets[u + 1] += offsets[u];
    BehaviorOptions o = options(50);
    o.n_users = k.users;
    for (int threads : {1, 2, 3}) {
      SCOPED_TRACE(::testing::Message() << "n " << k.n << " users " << k.users << " span "
                                        << k.t_span << " threads " << threads);
      o.num_threads = threads;
      const BehaviorLog log = BehaviorLog::from_columns(c.view(), o);
      ASSERT_EQ(static_cast<std::size_t>(log.size()), idx.size());
      EXPECT_EQ(log.unknown_items() + log.unknown_users(), static_cast<Offset>(k.n - idx.size()));
      EXPECT_EQ(log.user_offsets(), offsets);
      Timestamp lo = c.time[idx[0]], hi = c.time[idx[0]];
      for (std::size_t e = 0; e < idx.size(); ++e) {
        const std::size_t i = idx[e];
        ASSERT_EQ(log.baskets()[e], c.basket[i]) << e;
        ASSERT_EQ(log.items()[e], c.item[i]) << e;
        ASSERT_EQ(log.timestamps()[e], c.time[i]) << e;
        ASSERT_EQ(log.actions()[e], static_cast<std::uint8_t>(c.action[i])) << e;
        ASSERT_EQ(log.quantities()[e], static_cast<float>(c.quantity[i])) << e;
        ASSERT_EQ(log.amounts()[e], c.amount[i]) << e;
        lo = std::min(lo, c.time[i]);
        hi = std::max(hi, c.time[i]);
      }
      EXPECT_EQ(log.min_time(), lo);
      EXPECT_EQ(log.max_time(), hi);
    }
  }
}

// A log's container bytes with one content key changed (its arrays copied as they are): a
// file whose description lies about its columns.
std::string with_content(const std::string& bytes, const char* key, const Json& value) {
  const ModelReader r = ModelReader::from_bytes(bytes);
  ModelWriter w(BehaviorLog::kind);
  w.content() = r.content();
  w.content()[key] = value;
  w.add("user", r.vector<Index>("user"));
  w.add("item", r.vector<Index>("item"));
  w.add("action", r.vector<std::uint8_t>("action"));
  w.add("timestamp", r.vector<Timestamp>("timestamp"));
  w.add("quantity", r.vector<float>("quantity"));
  w.add("amount", r.vector<double>("amount"));
  w.add("basket", r.vector<std::int64_t>("basket"));
  if (r.content().contains("user_ids.")) {
    w.add_strings("user_ids.ids", r.strings("user_ids.ids"));
  }
  return w.to_bytes();
}

// The one-pass lookup of external ids: the indices IdMap::lookup gives (dense member ids,
// sparse item ids through the hash, unknown ids -1), the first out-of-range time whatever the
// threads, and a log identical to the one built from IdMap::lookup's columns.
TEST(BehaviorLog, LookupBehaviorIdsMatchesIdMapLookup) {
  std::vector<std::int64_t> member_keys, item_keys;
  for (std::int64_t i = 0; i < 3000; ++i) member_keys.push_back(1000 - i);  // negatives too
  for (std::int64_t i = 0; i < 500; ++i) item_keys.push_back(i * 1'000'003'317LL);
  const IdMap users = IdMap::from_integers(member_keys), items = IdMap::from_integers(item_keys);
  ASSERT_TRUE(detail::IntegerIdLookup(users).dense());
  ASSERT_FALSE(detail::IntegerIdLookup(items).dense());
  const std::size_t n = 300000;
  std::mt19937_64 rng(5);
  std::vector<std::int64_t> user_ids(n), item_ids(n);
  std::vector<Timestamp> time(n);
  for (std::size_t i = 0; i < n; ++i) {
    user_ids[i] = member_keys[rng() % member_keys.size()];
    item_ids[i] = item_keys[rng() % item_keys.size()];
    time[i] = 1'700'000'000 + static_cast<Timestamp>(rng() % 1000);
  }
  user_ids[17] = 1001;  // unknown member, just above the range
  item_ids[99] = 5;     // unknown item
  std::vector<Index> user(n), item(n), user_ref(n), item_ref(n);
  users.lookup(user_ids, user_ref, IdMap::Missing::minus_one);
  items.lookup(item_ids, item_ref, IdMap::Missing::minus_one);
  for (const int threads : {1, 3}) {
    std::fill(user.begin(), user.end(), -7);
    std::fill(item.begin(), item.end(), -7);
    EXPECT_EQ(lookup_behavior_ids({user_ids, item_ids, time, user, item}, users, items, threads),
              -1);
    EXPECT_EQ(user, user_ref);
    EXPECT_EQ(item, item_ref);
  }
  EXPECT_EQ(user[17], -1);
  EXPECT_EQ(item[99], -1);
  BehaviorColumns c;
  c.user = user;
  c.item = item;
  c.timestamp = time;
  BehaviorColumns ref = c;
  ref.user = user_ref;
  ref.item = item_ref;
  EXPECT_EQ(BehaviorLog::from_columns(c).to_bytes(), BehaviorLog::from_columns(ref).to_bytes());
  // Only the items, or only the times.
  std::vector<Index> none;
  EXPECT_EQ(lookup_behavior_ids({{}, item_ids, {}, none, item}, users, items), -1);
  EXPECT_EQ(item, item_ref);
  time[250000] = kMaxTimestamp;
  time[200001] = kMinTimestamp - 1;
  for (const int threads : {1, 2}) {
    EXPECT_EQ(lookup_behavior_ids({user_ids, item_ids, time, user, item}, users, items, threads),
              200001);
    EXPECT_EQ(lookup_behavior_ids({{}, {}, time, none, none}, users, items, threads), 200001);
  }
  PERKREC_EXPECT_THROW_MSG(lookup_behavior_ids({user_ids, item_ids, {}, none, item}, users, items),
                           InputError, "output lengths");
  const std::vector<Timestamp> short_time(10, 1'700'000'000);
  PERKREC_EXPECT_THROW_MSG(
      lookup_behavior_ids({user_ids, item_ids, short_time, user, item}, users, items), InputError,
      "timestamp");
  const IdMap names = IdMap::from_strings({"a"});
  PERKREC_EXPECT_THROW_MSG(lookup_behavior_ids({user_ids, {}, {}, user, none}, names, items),
                           InputError, "member map holds string ids");
}

TEST(BehaviorLog, RoundTripsThroughBytesAndRevalidatesOnLoad) {
  const Cols c = small();
  const BehaviorLog log = BehaviorLog::from_columns(c.view(), options());
  const BehaviorLog back = BehaviorLog::from_bytes(log.to_bytes());
  EXPECT_EQ(back.user_offsets(), log.user_offsets());
  EXPECT_EQ(back.action_names(), log.action_names());
  EXPECT_TRUE(back.has_baskets());
  auto same = [](auto a, auto b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); };
  EXPECT_TRUE(same(back.items(), log.items()));
  EXPECT_TRUE(same(back.timestamps(), log.timestamps()));
  EXPECT_TRUE(same(back.actions(), log.actions()));
  EXPECT_TRUE(same(back.quantities(), log.quantities()));
  EXPECT_TRUE(same(back.amounts(), log.amounts()));
  EXPECT_TRUE(same(back.baskets(), log.baskets()));
  // Without baskets, and an item past n_items (the content lies) refused on load.
  Cols nb = small();
  nb.basket.clear();
  EXPECT_FALSE(BehaviorLog::from_bytes(BehaviorLog::from_columns(nb.view(), options()).to_bytes())
                   .has_baskets());
  const std::string bytes = BehaviorLog::from_columns(c.view(), options()).to_bytes();
  PERKREC_EXPECT_THROW_MSG(BehaviorLog::from_bytes(with_content(bytes, "n_items", 3)),
                           ModelFormatError, "item");
}

TEST(BehaviorLog, MemberIdsAttachSaveAndLoad) {
  BehaviorLog log = BehaviorLog::from_columns(small().view(), options());
  ASSERT_EQ(log.n_users(), 2);
  EXPECT_EQ(log.user_ids().size(), 0);
  const std::string without = log.to_bytes();
  // A map of another size is refused and leaves the log as it was.
  PERKREC_EXPECT_THROW_MSG(log.set_user_ids(IdMap::from_strings({"a", "b", "c"})), InputError,
                           "n_users");
  EXPECT_EQ(log.user_ids().size(), 0);
  log.set_user_ids(IdMap::from_strings({"ann", "bob"}));
  const BehaviorLog back = BehaviorLog::from_bytes(log.to_bytes());
  ASSERT_EQ(back.user_ids().size(), 2);
  EXPECT_EQ(back.user_ids().find(std::string_view("bob")), 1);
  EXPECT_EQ(back.user_offsets(), log.user_offsets());
  // A file without ids (as written before they were stored) loads with none attached.
  EXPECT_EQ(BehaviorLog::from_bytes(without).user_ids().size(), 0);
  // A stored map whose size is not n_users is a corrupt file.
  PERKREC_EXPECT_THROW_MSG(BehaviorLog::from_bytes(with_content(log.to_bytes(), "n_users", 3)),
                           ModelFormatError, "user_ids");
}

}  // namespace
}  // namespace perkrec
