// Storage for large columns (events, records). Internal: no API promise.
//
// Two costs dominate filling fresh multi-hundred-megabyte buffers: page faults (one per 4 KiB
// page, expensive under virtualization) and zero-filling memory that is overwritten anyway.
// LargeAllocator asks Linux for transparent huge pages on big blocks (one fault per 2 MiB when
// THP is in "madvise" or "always" mode) and default-initializes trivial elements, so
// `resize(n)` does not write zeros. Use LargeVector only where every element is written
// before it is read.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace perkrec::detail {

template <class T>
class LargeAllocator {
 public:
  using value_type = T;
  static constexpr std::size_t kHugePage = std::size_t{2} << 20;

  LargeAllocator() noexcept = default;
  template <class U>
  LargeAllocator(const LargeAllocator<U>&) noexcept {}  // NOLINT

  T* allocate(std::size_t n) {
    if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_alloc();
    const std::size_t bytes = n * sizeof(T);
    if (bytes >= 2 * kHugePage) {
      const std::size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
      void* p = std::aligned_alloc(kHugePage, rounded);
      if (p == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
      madvise(p, rounded, MADV_HUGEPAGE);  // advisory: ignored where THP is unavailable
#endif
      return static_cast<T*>(p);
    }
    void* p = std::malloc(bytes > 0 ? bytes : 1);
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t) noexcept { std::free(p); }

  // Default-initialize (no zero fill) when constructed without arguments.
  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }

  template <class U>
  bool operator==(const LargeAllocator<U>&) const noexcept {
    return true;
  }
  template <class U>
  bool operator!=(const LargeAllocator<U>&) const noexcept {
    return false;
  }
};

template <class T>
using LargeVector = std::vector<T, LargeAllocator<T>>;

}  // namespace perkrec::detail
