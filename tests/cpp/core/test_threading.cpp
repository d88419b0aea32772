#include <atomic>
#include <stdexcept>
#include <vector>

#include "test_util.hpp"

namespace perkrec {
namespace {

TEST(ParallelFor, VisitsEveryIndexOnceForAnyThreadsAndSchedule) {
  for (int threads : {1, 2, 3, 8}) {
    for (Schedule schedule : {Schedule::static_chunks, Schedule::dynamic}) {
      std::vector<std::atomic<int>> hits(1001);
      parallel_for(
          0, 1001, threads, [&](Offset i) { hits[static_cast<std::size_t>(i)]++; }, schedule, 7);
      for (const auto& h : hits) ASSERT_EQ(h.load(), 1);
    }
  }
}

TEST(ParallelFor, EmptyAndReversedRangesDoNothing) {
  int calls = 0;
  parallel_for(5, 5, 2, [&](Offset) { ++calls; });
  parallel_for(9, 3, 2, [&](Offset) { ++calls; });
  EXPECT_EQ(calls, 0);
}

TEST(ParallelFor, ThreadIndexIsWithinTheRequestedCount) {
  std::atomic<int> bad{0};
  parallel_for(0, 10000, 3, [&](Offset, int thread) {
    if (thread < 0 || thread >= 3) bad++;
  });
  EXPECT_EQ(bad.load(), 0);
}

TEST(ParallelFor, FirstExceptionIsRethrownWithItsType) {
  for (int threads : {1, 2, 4}) {
    std::atomic<int> ran{0};
    EXPECT_THROW(parallel_for(0, 100000, threads,
                              [&](Offset i) {
                                ran++;
                                if (i == 10) throw InputError("boom at 10");
                              }),
                 InputError);
    // Once an iteration failed, the rest are skipped rather than all run.
    EXPECT_LT(ran.load(), 100000);
  }
  PERKREC_EXPECT_THROW_MSG(parallel_for(0, 4, 2, [](Offset) { throw std::runtime_error("plain"); }),
                           std::runtime_error, "plain");
}

TEST(ParallelFor, NeverChangesGlobalOpenMpState) {
#if PERKREC_HAS_OPENMP
  const int before = omp_get_max_threads();
  parallel_for(0, 100, 1, [](Offset) {});
  parallel_for(0, 100, before + 3, [](Offset) {});
  EXPECT_EQ(omp_get_max_threads(), before);
#else
  GTEST_SKIP() << "built without OpenMP";
#endif
}

TEST(ResolveNumThreads, ZeroMeansDefaultAndNegativeIsAConfigError) {
  EXPECT_GE(resolve_num_threads(0), 1);
#if PERKREC_HAS_OPENMP
  EXPECT_EQ(resolve_num_threads(5), 5);
#endif
  PERKREC_EXPECT_THROW_MSG(resolve_num_threads(-1), ConfigError, "num_threads", "-1");
}

TEST(Errors, HierarchyAndCodes) {
  const ModelFormatError e(ModelFormatCode::checksum_mismatch, "x");
  EXPECT_EQ(e.code(), ModelFormatCode::checksum_mismatch);
  EXPECT_STREQ(to_string(e.code()), "checksum_mismatch");
  try {
    throw DivergenceError("nan");
  } catch (const Error& base) {
    EXPECT_STREQ(base.what(), "nan");
  }
}

}  // namespace
}  // namespace perkrec
