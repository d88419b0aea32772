#include <algorithm>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace perkrec {
namespace {

TEST(IdMap, IntegerIdsMapBothWays) {
  const std::vector<std::int64_t> ids = {900, -5, 12, 7'000'000'000};
  const IdMap m = IdMap::from_integers(ids);
  EXPECT_EQ(m.size(), 4);
  EXPECT_EQ(m.key_type(), IdMap::KeyType::integer);
  EXPECT_EQ(m.find(std::int64_t{12}), 2);
  EXPECT_EQ(m.find(std::int64_t{13}), -1);
  EXPECT_EQ(m.find(std::string_view("12")), -1);
  EXPECT_EQ(m.integer_at(3), 7'000'000'000);
  std::vector<Index> out(3);
  m.lookup(std::vector<std::int64_t>{-5, 900, 12}, out);
  EXPECT_EQ(out, (std::vector<Index>{1, 0, 2}));
  PERKREC_EXPECT_THROW_MSG(m.lookup(std::vector<std::int64_t>{900, 4}, Span<Index>(out.data(), 2)),
                           InputError, "unknown integer id 4", "position 1");
  m.lookup(std::vector<std::int64_t>{900, 4}, Span<Index>(out.data(), 2),
           IdMap::Missing::minus_one);
  EXPECT_EQ(out[1], -1);
  PERKREC_EXPECT_THROW_MSG(IdMap::from_integers(std::vector<std::int64_t>{3, 4, 3}), InputError,
                           "duplicate id 3", "positions 0 and 2");
  PERKREC_EXPECT_THROW_MSG(m.integer_at(4), InputError, "out of range");
  PERKREC_EXPECT_THROW_MSG(m.string_at(0), InputError, "integer ids");
}

TEST(IdMap, StringIdsAndLookupOrAdd) {
  IdMap m;
  EXPECT_EQ(m.key_type(), IdMap::KeyType::empty);
  std::vector<Index> out(4);
  m.lookup_or_add(std::vector<std::string>{"u1", "u2", "u1", "u3"}, out);
  EXPECT_EQ(out, (std::vector<Index>{0, 1, 0, 2}));
  EXPECT_EQ(m.string_at(2), "u3");
  EXPECT_EQ(m.label(0), "'u1'");
  // A failing bulk call changes nothing.
  std::vector<Index> small(1);
  EXPECT_THROW(m.lookup_or_add(std::vector<std::string>{"a", "b"}, small), InputError);
  EXPECT_THROW(m.lookup_or_add(std::vector<std::int64_t>{1}, small), InputError);
  EXPECT_EQ(m.size(), 3);
  EXPECT_EQ(m.find(std::string_view("a")), -1);
}

TEST(IdMap, GrowsPastManyRehashes) {
  IdMap m;
  for (std::int64_t i = 0; i < 100000; ++i) ASSERT_EQ(m.add(i * 7919), static_cast<Index>(i));
  for (std::int64_t i = 0; i < 100000; i += 997) ASSERT_EQ(m.find(i * 7919), static_cast<Index>(i));
  EXPECT_EQ(m.find(std::int64_t{1}), -1);
  const IdMap r = IdMap::range(5);
  EXPECT_EQ(r.find(std::int64_t{4}), 4);
}

// Large batches are looked up in blocks on several threads: every index matches find(), and an
// unknown id raises for the lowest position even when later blocks hold unknown ids too.
TEST(IdMap, LargeLookupMatchesFindAndNamesTheFirstUnknown) {
  std::vector<std::int64_t> keys;
  for (std::int64_t i = 0; i < 50000; ++i) keys.push_back(i * 7919 + 3);
  const IdMap m = IdMap::from_integers(keys);
  std::vector<std::int64_t> ids(300000);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = keys[(i * 104729) % keys.size()];
  ids[123457] = 4;  // unknown
  ids[250001] = 5;  // unknown, later block
  std::vector<Index> out(ids.size(), -7);
  m.lookup(ids, out, IdMap::Missing::minus_one);
  for (std::size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(out[i], m.find(ids[i])) << i;
  EXPECT_EQ(out[123457], -1);
  PERKREC_EXPECT_THROW_MSG(m.lookup(ids, out), InputError, "unknown integer id 4",
                           "position 123457");
}

// Ids that span a compact range (here with negatives and gaps) are looked up through a dense
// array: the same indices as find() for ids inside, below, above and between the keys, and the
// same error (the lowest position, the id) as the hash path.
TEST(IdMap, DenseLookupOfCompactIdsMatchesFind) {
  std::vector<std::int64_t> keys;
  for (std::int64_t i = -3000; i < 9000; ++i) {
    if (i % 7 != 0) keys.push_back(i);
  }
  std::shuffle(keys.begin(), keys.end(), std::mt19937(3));
  const IdMap m = IdMap::from_integers(keys);
  EXPECT_TRUE(detail::IntegerIdLookup(m).dense());
  std::vector<std::int64_t> ids;
  std::mt19937_64 rng(11);
  for (int i = 0; i < 200000; ++i) ids.push_back(static_cast<std::int64_t>(rng() % 14000) - 4000);
  ids.push_back(std::numeric_limits<std::int64_t>::min());
  ids.push_back(std::numeric_limits<std::int64_t>::max());
  std::vector<Index> out(ids.size(), -7);
  m.lookup(ids, out, IdMap::Missing::minus_one);
  const detail::IntegerIdLookup table(m);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    ASSERT_EQ(out[i], m.find(ids[i])) << ids[i];
    ASSERT_EQ(table.find(ids[i]), m.find(ids[i])) << ids[i];
  }
  EXPECT_EQ(out[out.size() - 1], -1);
  const auto first_unknown = static_cast<std::size_t>(
      std::find_if(ids.begin(), ids.end(), [&](std::int64_t id) { return m.find(id) < 0; }) -
      ids.begin());
  PERKREC_EXPECT_THROW_MSG(m.lookup(ids, out), InputError,
                           "unknown integer id " + std::to_string(ids[first_unknown]),
                           "position " + std::to_string(first_unknown));
}

// Sparse or extreme ids fall back to the hash (the span would not fit, or overflows int64):
// the same results either way.
TEST(IdMap, SparseAndExtremeIdsUseTheHash) {
  const std::int64_t lo = std::numeric_limits<std::int64_t>::min();
  const std::int64_t hi = std::numeric_limits<std::int64_t>::max();
  std::vector<std::int64_t> sparse;
  for (std::int64_t i = 0; i < 5000; ++i) sparse.push_back(i * (std::int64_t{1} << 40) - 17);
  const IdMap extremes = IdMap::from_integers(std::vector<std::int64_t>{lo, hi, 0, -1});
  const IdMap top = IdMap::from_integers(std::vector<std::int64_t>{hi, hi - 2, hi - 1});
  const IdMap spread = IdMap::from_integers(sparse);
  EXPECT_FALSE(detail::IntegerIdLookup(spread).dense());
  EXPECT_FALSE(detail::IntegerIdLookup(extremes).dense());
  EXPECT_TRUE(detail::IntegerIdLookup(top).dense());  // near the int64 edge, still compact
  EXPECT_FALSE(detail::IntegerIdLookup(IdMap::from_strings({"a", "b"})).dense());
  EXPECT_FALSE(detail::IntegerIdLookup(IdMap()).dense());
  std::vector<std::int64_t> ids = {lo, hi, hi - 1, hi - 3, 0, -1, 1, -17, (1LL << 40) - 17};
  for (const IdMap* m : {&extremes, &top, &spread}) {
    std::vector<std::int64_t> batch = ids;
    for (std::int64_t k : m->integers()) batch.push_back(k);
    std::vector<Index> out(batch.size());
    m->lookup(batch, out, IdMap::Missing::minus_one);
    for (std::size_t i = 0; i < batch.size(); ++i) ASSERT_EQ(out[i], m->find(batch[i])) << i;
  }
  EXPECT_EQ(detail::IntegerIdLookup(top).find(lo), -1);
  EXPECT_EQ(detail::IntegerIdLookup(top).find(hi - 2), 1);
}

TEST(IdMap, SavesAndLoads) {
  const IdMap strings = IdMap::from_strings({"a", "bb", "", "ccc"});
  EXPECT_EQ(IdMap::from_bytes(strings.to_bytes()), strings);
  const IdMap ints = IdMap::from_integers(std::vector<std::int64_t>{5, 1, 9});
  const IdMap back = IdMap::from_bytes(ints.to_bytes());
  EXPECT_EQ(back, ints);
  EXPECT_EQ(back.find(std::int64_t{9}), 2);
  EXPECT_EQ(IdMap::from_bytes(IdMap().to_bytes()).key_type(), IdMap::KeyType::empty);
}

}  // namespace
}  // namespace perkrec
