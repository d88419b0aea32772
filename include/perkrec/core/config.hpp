// Build-mode macros shared by every header.
//
// perkrec is header-only by default: `#include <perkrec/perkrec.hpp>` is all a user needs.
// Each public header `x.hpp` declares and documents; its definitions live in `x_impl.hpp`,
// included at the end of `x.hpp` in header-only mode. Projects that want shorter compile
// times may define PERKREC_SEPARATE_COMPILATION and compile src/perkrec.cpp once; the
// implementation headers are then included only there (this is what the Python module and
// the test binary do).
#pragma once

#if defined(PERKREC_SEPARATE_COMPILATION)
#define PERKREC_INLINE
#else
#define PERKREC_HEADER_ONLY 1
#define PERKREC_INLINE inline
#endif

#if defined(_OPENMP)
#define PERKREC_HAS_OPENMP 1
#else
#define PERKREC_HAS_OPENMP 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define PERKREC_LIKELY(x) __builtin_expect(!!(x), 1)
#define PERKREC_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define PERKREC_RESTRICT __restrict__
#else
#define PERKREC_LIKELY(x) (x)
#define PERKREC_UNLIKELY(x) (x)
#define PERKREC_RESTRICT
#endif

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "perkrec model files are little-endian; big-endian targets are not supported"
#endif
