// Parallel loops. Every OpenMP region in perkrec goes through `parallel_for`, which
//  - takes the thread count per call (0 = the OpenMP default; never changes global state),
//  - captures the first exception thrown by the body, skips the remaining iterations, and
//    rethrows it on the calling thread after the region, so no exception crosses OpenMP.
// Without OpenMP the loops run serially with the same semantics.
//
// Thread safety: the helpers themselves are reentrant; the body decides what it touches.
#pragma once

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <type_traits>
#include <vector>

#include "perkrec/core/config.hpp"
#include "perkrec/core/error.hpp"
#include "perkrec/core/types.hpp"

#if PERKREC_HAS_OPENMP
#include <omp.h>
#endif

namespace perkrec {

/// How iterations are handed to threads.
enum class Schedule {
  static_chunks,  ///< equal contiguous blocks; for uniform work
  dynamic,        ///< chunks taken on demand; for skewed work (e.g. members with long histories)
};

/// The largest thread count any perkrec call accepts (params structs, model files, services):
/// a count from a file or a request line cannot start an unbounded number of threads.
inline constexpr int kMaxThreads = 1024;

/// Number of threads a call with `requested` threads will use: `requested` when > 0, the
/// OpenMP default when 0 (1 without OpenMP). Throws ConfigError when negative or above
/// kMaxThreads.
inline int resolve_num_threads(int requested) {
  if (requested < 0 || requested > kMaxThreads) {
    detail::raise<ConfigError>("num_threads: must be in [0, ", kMaxThreads, "] (got ", requested,
                               ")");
  }
#if PERKREC_HAS_OPENMP
  return requested > 0 ? requested : omp_get_max_threads();
#else
  (void)requested;
  return 1;
#endif
}

namespace detail {

/// Keeps the first exception thrown inside a parallel region.
class ExceptionCatcher {
 public:
  template <class F>
  void run(F&& f) noexcept {
    if (failed_.load(std::memory_order_relaxed)) return;
    try {
      f();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
      failed_.store(true, std::memory_order_relaxed);
    }
  }
  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::atomic<bool> failed_{false};
  std::mutex mutex_;
  std::exception_ptr error_;
};

inline int current_thread_index() {
#if PERKREC_HAS_OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

template <class F>
void invoke_body(F& body, Offset i) {
  if constexpr (std::is_invocable_v<F&, Offset, int>) {
    body(i, current_thread_index());
  } else {
    body(i);
  }
}

}  // namespace detail

/// Runs `body(i)` — or `body(i, thread_index)` when it takes two arguments, with
/// thread_index in [0, resolve_num_threads(num_threads)) for per-thread scratch — for every i
/// in [begin, end). `chunk` is the dynamic chunk size (0 = 1) and is ignored for static
/// chunks. The first exception from any iteration is rethrown after the loop; iterations not
/// yet started are skipped once one has failed.
template <class F>
void parallel_for(Offset begin, Offset end, int num_threads, F&& body,
                  Schedule schedule = Schedule::static_chunks, Offset chunk = 0) {
  if (end <= begin) return;
  const int threads = resolve_num_threads(num_threads);
  detail::ExceptionCatcher catcher;
#if PERKREC_HAS_OPENMP
  if (threads > 1 && end - begin > 1) {
    const Offset chunk_size = chunk > 0 ? chunk : 1;
    if (schedule == Schedule::dynamic) {
#pragma omp parallel for num_threads(threads) schedule(dynamic, chunk_size)
      for (Offset i = begin; i < end; ++i) {
        catcher.run([&] { detail::invoke_body(body, i); });
      }
    } else {
#pragma omp parallel for num_threads(threads) schedule(static)
      for (Offset i = begin; i < end; ++i) {
        catcher.run([&] { detail::invoke_body(body, i); });
      }
    }
    catcher.rethrow();
    return;
  }
#else
  (void)schedule;
  (void)chunk;
  (void)threads;
#endif
  for (Offset i = begin; i < end && !catcher.failed(); ++i) {
    catcher.run([&] {
      if constexpr (std::is_invocable_v<F&, Offset, int>) {
        body(i, 0);
      } else {
        body(i);
      }
    });
  }
  catcher.rethrow();
}

namespace detail {
/// Sums `width` doubles per row over [0, n) deterministically: per-block partial sums in
/// parallel (row(i, acc) adds row i's values into acc), then the blocks in order. Blocks depend
/// on n only (at least 2,048 rows, at most 64 blocks, so wide accumulators stay small), never on
/// the thread count, so the sum is the same on any number of threads.
template <class F>
std::vector<double> block_sum(Index n, std::size_t width, int threads, F&& row) {
  constexpr std::size_t kMinBlock = 2048;
  const auto nn = static_cast<std::size_t>(n);
  const std::size_t block = std::max<std::size_t>(kMinBlock, (nn + 63) / 64);
  const std::size_t blocks = (nn + block - 1) / block;
  std::vector<double> partial(blocks * width, 0.0);
  parallel_for(
      0, static_cast<Offset>(blocks), threads,
      [&](Offset bo) {
        const auto b = static_cast<std::size_t>(bo);
        double* acc = partial.data() + b * width;
        const auto end = std::min(nn, (b + 1) * block);
        for (std::size_t u = b * block; u < end; ++u) row(static_cast<Index>(u), acc);
      },
      Schedule::dynamic, 1);
  std::vector<double> total(width, 0.0);
  for (std::size_t b = 0; b < blocks; ++b) {
    for (std::size_t j = 0; j < width; ++j) total[j] += partial[b * width + j];
  }
  return total;
}
}  // namespace detail

}  // namespace perkrec
