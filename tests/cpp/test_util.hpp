// Helpers shared by the C++ tests.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include <perkrec/perkrec.hpp>

namespace perkrec::testing {

/// Asserts that `statement` throws `E` whose message contains every fragment.
#define PERKREC_EXPECT_THROW_MSG(statement, E, ...)                                \
  do {                                                                             \
    bool caught_ = false;                                                          \
    try {                                                                          \
      statement;                                                                   \
    } catch (const E& e_) {                                                        \
      caught_ = true;                                                              \
      const std::string what_ = e_.what();                                         \
      for (const std::string& fragment_ : std::vector<std::string>{__VA_ARGS__}) { \
        EXPECT_NE(what_.find(fragment_), std::string::npos)                        \
            << "message '" << what_ << "' lacks '" << fragment_ << "'";            \
      }                                                                            \
    } catch (const std::exception& other_) {                                       \
      ADD_FAILURE() << "threw another exception: " << other_.what();               \
      caught_ = true;                                                              \
    }                                                                              \
    EXPECT_TRUE(caught_) << "did not throw " #E;                                   \
  } while (0)

/// A writable scratch directory for files.
inline std::string temp_dir() {
  const char* dir = std::getenv("PERKREC_TEST_TMP");
  if (dir != nullptr && *dir != '\0') return dir;
  return "/tmp";
}

/// A small, fully valid event log built from rows (user, benefit, type, day, hour).
struct Row {
  Index user;
  Index benefit;
  EventType type;
  double day;
  float amount = 0.0f;
};

inline EventLog make_log(const std::vector<Row>& rows, Index n_users = -1, Index n_benefits = -1) {
  std::vector<Index> users, benefits;
  std::vector<std::uint8_t> types;
  std::vector<Timestamp> times;
  std::vector<float> amounts;
  for (const Row& r : rows) {
    users.push_back(r.user);
    benefits.push_back(r.benefit);
    types.push_back(static_cast<std::uint8_t>(r.type));
    times.push_back(static_cast<Timestamp>(1'700'000'000 + r.day * kSecondsPerDay));
    amounts.push_back(r.amount);
  }
  EventColumns c;
  c.user = users;
  c.benefit = benefits;
  c.type = types;
  c.timestamp = times;
  c.order_amount = amounts;
  return EventLog::from_columns(c, n_users, n_benefits);
}

inline Timestamp day_time(double day) {
  return static_cast<Timestamp>(1'700'000'000 + day * kSecondsPerDay);
}

/// Pearson correlation of two equally long vectors (float or double).
template <class A, class B>
double correlation(const std::vector<A>& a, const std::vector<B>& b) {
  double ma = 0, mb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) ma += a[i], mb += b[i];
  ma /= static_cast<double>(a.size());
  mb /= static_cast<double>(b.size());
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return sab / std::sqrt(saa * sbb);
}

/// The encoder's bucket of `x` among quantile `edges`, written out as a reference: the number of
/// edges <= x (numpy's searchsorted side="right"); a non-finite x gets its own last bucket.
inline Index expected_bucket(const std::vector<double>& edges, double x) {
  if (!std::isfinite(x)) return static_cast<Index>(edges.size()) + 1;
  Index k = 0;
  for (double e : edges) k += e <= x ? 1 : 0;
  return k;
}

}  // namespace perkrec::testing
