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
