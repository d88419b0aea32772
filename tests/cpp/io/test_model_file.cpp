#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <tuple>
#include <type_traits>

#include "perkrec/detail/crc32c.hpp"
#include "test_util.hpp"

namespace perkrec {
namespace {

std::string sample_bytes() {
  ModelWriter w("Sample", Json{{"params", {{"factors", 4}}}, {"note", "small"}});
  w.add("floats", std::vector<float>{1.5f, -2.0f, 3.25f});
  const std::vector<double> matrix = {1, 2, 3, 4, 5, 6};
  w.add("matrix", matrix.data(), {2, 3});
  w.add("ints", std::vector<std::int32_t>{7, 8, 9, 10});
  w.add("empty", std::vector<std::int64_t>{});
  w.add_strings("names", {"alpha", "", "gamma"});
  return w.to_bytes();
}

void fix_crc(std::string& bytes) {
  const std::size_t body = bytes.size() - 8;
  const std::uint32_t crc = detail::crc32c(bytes.data(), body);
  std::memcpy(&bytes[body], &crc, 4);
}

TEST(ModelFile, RoundTripsArraysStringsAndContent) {
  const std::string bytes = sample_bytes();
  EXPECT_EQ(bytes.size() % 8, 0u);
  const ModelReader r = ModelReader::from_bytes(bytes);
  EXPECT_EQ(r.kind(), "Sample");
  EXPECT_EQ(r.library_version(), version_string);
  EXPECT_EQ(r.content()["params"]["factors"], 4);
  EXPECT_EQ(r.vector<float>("floats"), (std::vector<float>{1.5f, -2.0f, 3.25f}));
  const Span<const double> m = r.array<double>("matrix", {2, 3});
  EXPECT_EQ(m[5], 6.0);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(m.data()) % 64, 0u);
  EXPECT_EQ(r.array<std::int64_t>("empty").size(), 0u);
  EXPECT_EQ(r.strings("names"), (std::vector<std::string>{"alpha", "", "gamma"}));
  PERKREC_EXPECT_THROW_MSG(r.array<float>("ints"), ModelFormatError, "dtype i32");
  PERKREC_EXPECT_THROW_MSG(r.array<double>("matrix", {3, 2}), ModelFormatError, "shape (2, 3)");
  PERKREC_EXPECT_THROW_MSG(r.array<float>("nope"), ModelFormatError, "no array 'nope'");
  PERKREC_EXPECT_THROW_MSG(r.expect_kind("Other"), ModelFormatError, "holds a Sample");
  try {
    r.expect_kind("Other");
  } catch (const ModelFormatError& e) {
    EXPECT_EQ(e.code(), ModelFormatCode::wrong_kind);
  }
}

TEST(ModelFile, EveryTruncationIsRejected) {
  const std::string bytes = sample_bytes();
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    try {
      ModelReader::from_bytes(std::string_view(bytes.data(), n));
      FAIL() << "prefix of " << n << " bytes was accepted";
    } catch (const ModelFormatError& e) {
      EXPECT_TRUE(e.code() == ModelFormatCode::truncated || e.code() == ModelFormatCode::bad_magic)
          << n << ": " << e.what();
    }
    std::istringstream in(bytes.substr(0, n));
    EXPECT_THROW(ModelReader::from_stream(in), ModelFormatError) << n;
  }
}

TEST(ModelFile, RandomBitFlipsAreAllRejected) {
  const std::string bytes = sample_bytes();
  Rng rng(2024);
  int rejected = 0;
  for (int trial = 0; trial < 4000; ++trial) {
    std::string damaged = bytes;
    const int flips = trial < 2000 ? 1 : 1 + static_cast<int>(rng.below(8));
    for (int f = 0; f < flips; ++f) {
      const std::uint32_t bit = rng.below(static_cast<std::uint32_t>(damaged.size() * 8));
      damaged[bit / 8] = static_cast<char>(damaged[bit / 8] ^ (1 << (bit % 8)));
    }
    if (damaged == bytes) continue;  // two flips of one bit cancel out
    EXPECT_THROW(ModelReader::from_bytes(damaged), ModelFormatError) << "trial " << trial;
    ++rejected;
  }
  EXPECT_GT(rejected, 3900);
}

TEST(ModelFile, DamageBehindAValidChecksumIsStillCaught) {
  // An attacker (or a buggy writer) can produce a matching CRC: the structural checks must
  // hold on their own. Each mutation either fails cleanly or yields a self-consistent reader.
  const std::string bytes = sample_bytes();
  std::uint32_t header_len;
  std::memcpy(&header_len, bytes.data() + 12, 4);
  Rng rng(7);
  for (int trial = 0; trial < 3000; ++trial) {
    std::string damaged = bytes;
    const std::size_t pos = 8 + rng.below(static_cast<std::uint32_t>(24 + header_len));
    damaged[pos] = static_cast<char>(rng.below(256));
    fix_crc(damaged);
    try {
      const ModelReader r = ModelReader::from_bytes(damaged);
      // If it loads, every array must be readable within bounds.
      for (const char* name : {"floats", "ints"}) {
        if (r.has(name)) (void)r.shape(name);
      }
    } catch (const ModelFormatError&) {
    }
  }
  // Specific structural damage with a valid checksum.
  std::string version = bytes;
  version[8] = 9;
  fix_crc(version);
  try {
    ModelReader::from_bytes(version);
    FAIL();
  } catch (const ModelFormatError& e) {
    EXPECT_EQ(e.code(), ModelFormatCode::unsupported_version);
  }
  std::string header = bytes;
  const std::size_t at = header.find("\"offset\":");
  ASSERT_NE(at, std::string::npos);
  header[at + 9] = '1';  // an offset that is no longer 64-byte aligned or in range
  fix_crc(header);
  EXPECT_THROW(ModelReader::from_bytes(header), ModelFormatError);
}

TEST(ModelFile, RejectsOtherFilesAndTrailingBytes) {
  try {
    ModelReader::from_bytes("this is not a model file at all, just some text .......");
    FAIL();
  } catch (const ModelFormatError& e) {
    EXPECT_EQ(e.code(), ModelFormatCode::bad_magic);
  }
  std::string extra = sample_bytes() + "x";
  EXPECT_THROW(ModelReader::from_bytes(extra), ModelFormatError);
}

TEST(ModelFile, StreamsHoldSeveralContainersBackToBack) {
  std::stringstream io;
  ModelWriter a("A");
  a.add("x", std::vector<float>{1.0f});
  ModelWriter b("B");
  b.add("y", std::vector<float>{2.0f});
  a.write(io);
  b.write(io);
  EXPECT_EQ(ModelReader::from_stream(io).kind(), "A");
  EXPECT_EQ(ModelReader::from_stream(io).vector<float>("y")[0], 2.0f);
}

TEST(ModelFile, SaveIsAtomicAndLoadChecksTheFile) {
  const std::string path = testing::temp_dir() + "/model_file_test.perk";
  ModelWriter w("A");
  w.add("x", std::vector<float>{1.0f, 2.0f});
  w.save(path);
  EXPECT_EQ(ModelReader::from_file(path).vector<float>("x")[1], 2.0f);
  // A save that cannot complete leaves nothing behind.
  const std::string bad = testing::temp_dir() + "/no_such_dir/model.perk";
  try {
    w.save(bad);
    FAIL();
  } catch (const ModelFormatError& e) {
    EXPECT_EQ(e.code(), ModelFormatCode::io_error);
  }
  EXPECT_FALSE(std::ifstream(bad).good());
  try {
    ModelReader::from_file(testing::temp_dir() + "/missing.perk");
    FAIL();
  } catch (const ModelFormatError& e) {
    EXPECT_EQ(e.code(), ModelFormatCode::io_error);
  }
  std::remove(path.c_str());
}

TEST(ModelFile, WriterRejectsBadInput) {
  EXPECT_THROW(ModelWriter(""), InputError);
  EXPECT_THROW(ModelWriter("A", Json::array()), InputError);
  ModelWriter w("A");
  w.add("x", std::vector<float>{1.0f});
  EXPECT_THROW(w.add("x", std::vector<float>{2.0f}), InputError);
}

TEST(Crc32c, KnownAnswer) {
  // RFC 3720 test vector: 32 bytes of zeros.
  const std::string zeros(32, '\0');
  EXPECT_EQ(detail::crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  const std::string digits = "123456789";
  EXPECT_EQ(detail::crc32c(digits.data(), digits.size()), 0xE3069283u);
  // Incremental equals one-shot.
  const std::uint32_t part = detail::crc32c(digits.data(), 4);
  EXPECT_EQ(detail::crc32c(digits.data() + 4, 5, part), 0xE3069283u);
}

// perkrec/kinds.hpp: the one list of saved kinds, read by read_any (issue 17).
template <class... Kinds>
std::vector<std::string> kind_names(std::tuple<Kinds...>*) {
  return {Kinds::kind...};
}

TEST(ModelFile, ReadAnyGivesTheClassTheContainerNames) {
  const auto kind_of = [](const std::string& bytes) {
    return read_any(ModelReader::from_bytes(bytes), [](auto&& object) {
      using T = std::decay_t<decltype(object)>;
      static_assert(std::is_base_of_v<Serializable<T>, T>);
      return std::string(T::kind);
    });
  };
  const IdMap ids = IdMap::from_strings({"a", "b"});
  EXPECT_EQ(kind_of(ids.to_bytes()), "IdMap");
  const EventLog log = testing::make_log({{0, 0, EventType::issued, 1.0}}, 2, 1);
  EXPECT_EQ(kind_of(log.to_bytes()), "EventLog");
  // The object arrives as read: the visitor may keep it.
  const IdMap back = read_any(ModelReader::from_bytes(ids.to_bytes()), [](auto&& object) {
    if constexpr (std::is_same_v<std::decay_t<decltype(object)>, IdMap>)
      return IdMap(std::move(object));
    return IdMap();
  });
  EXPECT_EQ(back, ids);
  // Every listed kind has its own name; a foreign kind is wrong_kind.
  std::vector<std::string> names = kind_names(static_cast<SavedKinds*>(nullptr));
  EXPECT_EQ(names.size(), std::tuple_size_v<SavedKinds>);
  std::sort(names.begin(), names.end());
  EXPECT_TRUE(std::adjacent_find(names.begin(), names.end()) == names.end());
  const std::string foreign = ModelWriter("NotAModel").to_bytes();
  try {
    kind_of(foreign);
    FAIL() << "a foreign kind loaded";
  } catch (const ModelFormatError& e) {
    EXPECT_EQ(e.code(), ModelFormatCode::wrong_kind);
    EXPECT_NE(std::string(e.what()).find("'NotAModel'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace perkrec
