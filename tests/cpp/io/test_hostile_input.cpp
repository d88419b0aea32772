// Inputs written by someone else: model files whose checksum was recomputed after tampering,
// bytes that are not UTF-8, ids and thread counts chosen to overflow or exhaust memory. Each
// must end in perkrec's typed error, before any state changes, and never in a crash.
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "models/cf_test_util.hpp"
#include "perkrec/detail/crc32c.hpp"

namespace perkrec {
namespace {

void fix_crc(std::string& bytes) {
  const std::size_t body = bytes.size() - 8;
  const std::uint32_t crc = detail::crc32c(bytes.data(), body);
  std::memcpy(&bytes[body], &crc, 4);
}

// Replaces the first occurrence of `from` (raw bytes of an array) by `to` of the same size.
void patch(std::string& bytes, const std::vector<std::int64_t>& from,
           const std::vector<std::int64_t>& to) {
  ASSERT_EQ(from.size(), to.size());
  const std::string a(reinterpret_cast<const char*>(from.data()), from.size() * 8);
  const std::string b(reinterpret_cast<const char*>(to.data()), to.size() * 8);
  const std::size_t at = bytes.find(a);
  ASSERT_NE(at, std::string::npos);
  bytes.replace(at, a.size(), b);
  fix_crc(bytes);
}

bool valid_utf8(const std::string& s) {
  return detail::invalid_utf8_at(s) == std::string_view::npos;
}

TEST(HostileModelFile, StringListOffsetsAreCheckedBeforeAnyRead) {
  const std::string good = IdMap::from_strings({"alpha", "beta", "gamma"}).to_bytes();
  EXPECT_EQ(IdMap::from_bytes(good).size(), 3);
  // offsets {0, 5, 9, 14}: a middle offset far past the bytes (it used to be read first), one
  // that decreases, one negative, and a last offset that disagrees with the byte count.
  const std::vector<std::int64_t> offsets = {0, 5, 9, 14};
  for (const std::vector<std::int64_t>& bad :
       std::vector<std::vector<std::int64_t>>{{0, 4096 + 5, 9, 14},
                                              {0, 9, 5, 14},
                                              {0, -5, 9, 14},
                                              {0, 5, 9, 1 << 30},
                                              {0, 5, 14, 14 + 64}}) {
    std::string damaged = good;
    patch(damaged, offsets, bad);
    try {
      IdMap::from_bytes(damaged);
      ADD_FAILURE() << "accepted offsets " << bad[1] << ", " << bad[2] << ", " << bad[3];
    } catch (const ModelFormatError& e) {
      EXPECT_TRUE(e.code() == ModelFormatCode::invalid_content ||
                  e.code() == ModelFormatCode::bad_array)
          << e.what();
    }
  }
}

TEST(HostileModelFile, StringsMustBeUtf8) {
  const std::string good = IdMap::from_strings({"caf\xc3\xa9", "b"}).to_bytes();
  EXPECT_EQ(IdMap::from_bytes(good).size(), 2);
  // Five bytes each, replacing the five of "caf\xc3\xa9" in place: a stray byte, a bad
  // continuation, a surrogate, an overlong form.
  for (const char* bad : {"caf\xffx", "ca\xc3\x28x", "\xed\xa0\x80xx", "\xc0\xaf\x61\x61x"}) {
    ASSERT_EQ(std::strlen(bad), 5u);
    std::string damaged = good;
    const std::size_t at = damaged.find("caf\xc3\xa9");
    ASSERT_NE(at, std::string::npos);
    damaged.replace(at, 5, bad);
    fix_crc(damaged);
    try {
      IdMap::from_bytes(damaged);
      ADD_FAILURE() << "accepted invalid UTF-8";
    } catch (const ModelFormatError& e) {
      EXPECT_EQ(e.code(), ModelFormatCode::invalid_content);
      EXPECT_NE(std::string(e.what()).find("invalid UTF-8"), std::string::npos) << e.what();
      EXPECT_TRUE(valid_utf8(e.what()));
    }
  }
}

TEST(HostileText, ErrorMessagesAreAlwaysValidUtf8) {
  EXPECT_EQ(detail::invalid_utf8_at("plain ascii"), std::string_view::npos);
  EXPECT_EQ(detail::invalid_utf8_at("\xe2\x82\xac euro, \xf0\x9f\x8e\x81 gift"),
            std::string_view::npos);
  EXPECT_EQ(detail::invalid_utf8_at("ab\xff"), 2u);
  EXPECT_EQ(detail::invalid_utf8_at("\xe2\x82"), 0u);          // cut sequence
  EXPECT_EQ(detail::invalid_utf8_at("x\xc1\xbf"), 1u);         // overlong
  EXPECT_EQ(detail::invalid_utf8_at("\xed\xa0\x80"), 0u);      // surrogate
  EXPECT_EQ(detail::invalid_utf8_at("\xf4\x90\x80\x80"), 0u);  // above U+10FFFF
  const InputError e(std::string("member \xff\xfe caf\xc3\xa9"));
  EXPECT_EQ(std::string(e.what()), "member \\xff\\xfe caf\xc3\xa9");
  // A syntax error quotes the bytes it stopped at.
  for (const char* text : {"{\"a\": \"\xff\"}", "\xc3\x28", "{\"k\": 1, \xfe}"}) {
    try {
      parse_json_strict<ConfigError>(text, "test");
      ADD_FAILURE() << "parsed";
    } catch (const ConfigError& err) {
      EXPECT_TRUE(valid_utf8(err.what())) << err.what();
    }
  }
}

TEST(HostileParams, ThreadCountsAreBounded) {
  EXPECT_EQ(resolve_num_threads(kMaxThreads), kMaxThreads);
  PERKREC_EXPECT_THROW_MSG(resolve_num_threads(kMaxThreads + 1), ConfigError, "num_threads",
                           "1024");
  PERKREC_EXPECT_THROW_MSG(resolve_num_threads(-1), ConfigError, "num_threads");
  ALSParams p;
  p.num_threads = 100000;
  EXPECT_THROW(p.validate(), ConfigError);
  EXPECT_THROW(ALS{p}, ConfigError);
  // A model file cannot carry one either.
  Json j = ALSParams{}.to_json();
  j["num_threads"] = 1 << 20;
  EXPECT_THROW(ALSParams::from_json(j), ConfigError);
}

template <class Model>
void expect_bounded_growth(Model& model, const char* name) {
  SCOPED_TRACE(name);
  const auto data = testing::planted(60, 24, 3, 0.4, 17);
  model.fit(data.matrix.view());
  const CsrMatrix<float> one = testing::take_rows(data.matrix, {5});
  CsrMatrix<float> col;  // one benefit column over all members
  col.rows = 1;
  col.cols = 60;
  col.indptr = {0, 2};
  col.indices = {1, 7};
  col.data = {1.0f, 2.0f};
  const Index users = model.n_users(), benefits = model.n_benefits();
  for (Index id : {std::numeric_limits<Index>::max(), std::numeric_limits<Index>::max() - 1,
                   Index{100000000}, users + kDefaultMaxGrowth}) {
    PERKREC_EXPECT_THROW_MSG(model.partial_fit_users(std::vector<Index>{id}, one.view()),
                             InputError, "out of range");
    PERKREC_EXPECT_THROW_MSG(model.partial_fit_benefits(std::vector<Index>{id}, col.view()),
                             InputError, "out of range");
    EXPECT_EQ(model.n_users(), users);
    EXPECT_EQ(model.n_benefits(), benefits);
  }
  // Within the limit growth works; a caller may narrow or widen it.
  model.partial_fit_users(std::vector<Index>{users + 9}, one.view());
  EXPECT_EQ(model.n_users(), users + 10);
  PERKREC_EXPECT_THROW_MSG(model.partial_fit_users(std::vector<Index>{users + 20}, one.view(), 5),
                           InputError, "out of range");
  model.partial_fit_users(std::vector<Index>{users + 20}, one.view(), 11);
  EXPECT_EQ(model.n_users(), users + 21);
  PERKREC_EXPECT_THROW_MSG(model.partial_fit_users(std::vector<Index>{1}, one.view(), -1),
                           InputError, "max_growth");
}

TEST(HostileIds, PartialFitGrowthIsBounded) {
  ALSParams ap;
  ap.factors = 4;
  ap.iterations = 2;
  ALS als(ap);
  expect_bounded_growth(als, "ALS");
  BPRParams bp;
  bp.factors = 4;
  bp.iterations = 2;
  BPR bpr(bp);
  expect_bounded_growth(bpr, "BPR");
  ItemKNN knn;
  expect_bounded_growth(knn, "ItemKNN");
}

TEST(HostileModelFile, DeclaredCountsMustBeJustifiedByTheBytes) {
  // A small event log whose header declares 2^27 members: loading used to allocate ~1 GiB of
  // per-member index before noticing nothing holds them.
  EventColumns c;
  const std::vector<Index> user = {0, 1, 2}, benefit = {0, 1, 0};
  const std::vector<std::uint8_t> type = {0, 0, 0};
  const std::vector<Timestamp> time = {10, 20, 30};
  c.user = user;
  c.benefit = benefit;
  c.type = type;
  c.timestamp = time;
  const EventLog log = EventLog::from_columns(c, 3, 2);
  EXPECT_EQ(EventLog::from_bytes(log.to_bytes()).n_users(), 3);
  // The same arrays under a header that declares more members, as an attacker would write it.
  const ModelReader r = ModelReader::from_bytes(log.to_bytes());
  auto with_users = [&](std::int64_t n_users) {
    Json content = r.content();
    content["n_users"] = n_users;
    ModelWriter w(EventLog::kind, content);
    w.add("user", r.vector<Index>("user"));
    w.add("benefit", r.vector<Index>("benefit"));
    w.add("type", r.vector<std::uint8_t>("type"));
    w.add("timestamp", r.vector<Timestamp>("timestamp"));
    w.add("channel", r.vector<std::int16_t>("channel"));
    w.add("order_amount", r.vector<float>("order_amount"));
    IdMap().write(w, "user_ids.");
    IdMap().write(w, "benefit_ids.");
    return w.to_bytes();
  };
  EXPECT_EQ(EventLog::from_bytes(with_users(9)).n_users(), 9);  // members without events: fine
  PERKREC_EXPECT_THROW_MSG(EventLog::from_bytes(with_users(134217728)), ModelFormatError,
                           "n_users 134217728");
}

TEST(HostileData, EventTimesAndChannelNamesAreChecked) {
  const std::vector<Index> user = {0, 1};
  const std::vector<Index> benefit = {0, 0};
  const std::vector<std::uint8_t> type = {0, 0};
  std::vector<Timestamp> time = {10, std::numeric_limits<Timestamp>::max()};
  const std::vector<std::int16_t> channel = {0, 1};
  EventColumns c;
  c.user = user;
  c.benefit = benefit;
  c.type = type;
  c.timestamp = time;
  PERKREC_EXPECT_THROW_MSG(EventLog::from_columns(c), InputError, "row 1", "timestamp");
  time[1] = kMaxTimestamp - 1;
  EXPECT_EQ(EventLog::from_columns(c).size(), 2);
  c.channel = channel;
  PERKREC_EXPECT_THROW_MSG(EventLog::from_columns(c, -1, -1, {"email", "email"}), InputError,
                           "'email'", "twice");
  EXPECT_EQ(EventLog::from_columns(c, -1, -1, {"email", "app"}).size(), 2);
  // One stray huge member index (found by the fuzzer: 15 GB of per-member index).
  std::vector<Index> stray = {0, 1900000000};
  c.user = stray;
  c.channel = {};
  PERKREC_EXPECT_THROW_MSG(EventLog::from_columns(c), InputError, "1900000001 users",
                           "pass n_users explicitly");
  stray[1] = (1 << 20) - 1;  // within the inferred bound
  EXPECT_EQ(EventLog::from_columns(c).n_users(), 1 << 20);
}

TEST(HostileNumbers, HugeFiniteValuesNeverBecomeSilentNaNOrInf) {
  // FM: finite features of 1e30 overflow the score; zero rows are nothing to learn from.
  CsrMatrix<float> X;
  X.rows = 4;
  X.cols = 3;
  X.indptr = {0, 2, 4, 6, 8};
  X.indices = {0, 1, 1, 2, 0, 2, 0, 1};
  X.data = {1, 1, 1, 1, 1, 1, 1, 1};
  const std::vector<float> labels = {1, 0, 1, 0};
  const std::vector<std::int32_t> fields = {0, 1, 2};
  FMParams fp;
  fp.factors = 2;
  fp.epochs = 3;
  FM fm(fp);
  FMTarget t;
  t.labels = labels;
  fm.fit(X.view(), t, fields, 3);
  std::vector<float> out(4);
  fm.predict(X.view(), out);
  CsrMatrix<float> huge = X;
  huge.data[2] = 1e30f;
  PERKREC_EXPECT_THROW_MSG(fm.predict(huge.view(), out), InputError, "row 1", "not finite");
  std::vector<float> pairs(16);
  PERKREC_EXPECT_THROW_MSG(fm.score_candidates(huge.view(), X.view(), pairs), InputError,
                           "not finite");
  CsrMatrix<float> none;
  none.cols = 3;
  FMTarget empty;
  FM fresh(fp);
  PERKREC_EXPECT_THROW_MSG(fresh.fit(none.view(), empty, fields, 3), InputError, "no rows");
  // Recommenders: confidences of 3e38 are finite but overflow every similarity.
  CsrMatrix<float> big = testing::planted(20, 8, 2, 0.5, 3).matrix;
  big.data[0] = 3e38f;
  ItemKNN knn;
  PERKREC_EXPECT_THROW_MSG(knn.fit(big.view()), InputError, "too large");
  ALS als;
  PERKREC_EXPECT_THROW_MSG(als.fit(big.view()), InputError, "too large");
}

TEST(HostileModelFile, FactorsThatOverflowEveryScoreAreRejected) {
  ALSParams p;
  p.factors = 3;
  p.iterations = 2;
  ALS als(p);
  als.fit(testing::planted(20, 8, 2, 0.5, 3).matrix.view());
  const float first = als.user_factors().values[0];
  std::string bytes = als.to_bytes();
  const std::string pattern(reinterpret_cast<const char*>(&first), 4);
  const std::size_t at = bytes.find(pattern);
  ASSERT_NE(at, std::string::npos);
  for (float bad : {3e38f, -1e20f, std::numeric_limits<float>::infinity()}) {
    std::string damaged = bytes;
    damaged.replace(at, 4, std::string(reinterpret_cast<const char*>(&bad), 4));
    fix_crc(damaged);
    PERKREC_EXPECT_THROW_MSG(ALS::from_bytes(damaged), ModelFormatError, "too large");
  }
}

TEST(HostileModelFile, HeaderJsonCannotExpandFarBeyondItsBytes) {
  // `[],` is 3 bytes of text and tens of bytes of DOM: a header of them used to take ~35x its
  // size in memory before anything looked at it.
  Json bomb = Json::array();
  for (int i = 0; i < 400000; ++i) bomb.push_back(Json::array());
  ModelWriter w("IdMap", Json{{"x", bomb}});
  PERKREC_EXPECT_THROW_MSG(ModelReader::from_bytes(w.to_bytes()), ModelFormatError, "in memory");
  // A large real header (long strings, as a catalog's) still loads.
  Json names = Json::array();
  for (int i = 0; i < 20000; ++i)
    names.push_back("benefit number " + std::to_string(i) + " with a long name");
  ModelWriter ok("IdMap", Json{{"names", names}});
  EXPECT_EQ(ModelReader::from_bytes(ok.to_bytes()).content()["names"].size(), 20000u);
  // Configs take the same limit when asked.
  JsonLimits limits;
  limits.max_memory_bytes = 1 << 20;
  PERKREC_EXPECT_THROW_MSG(parse_json_strict<ConfigError>(bomb.dump(), "config", limits),
                           ConfigError, "in memory");
}

}  // namespace
}  // namespace perkrec
