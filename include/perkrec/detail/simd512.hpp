// Runtime-dispatched AVX-512 kernel for batch dot-product top-K (no -march flags: the function
// carries its own target attribute and runs only when the CPU reports AVX-512F). Internal: no
// API promise.
#pragma once

#include <cstddef>
#include <cstdint>

#include "perkrec/detail/simd.hpp"

#if PERKREC_HAS_AVX2_DISPATCH
#define PERKREC_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
#else
#define PERKREC_TARGET_AVX512
#endif

namespace perkrec {
namespace detail {

/// Instruction-set paths of the dispatched kernels, lowest first. `best` = the best the CPU has.
enum class SimdLevel { scalar = 0, avx2 = 1, avx512 = 2, best = 3 };

/// True when the AVX-512F kernels may run on this CPU (checked once).
inline bool cpu_has_avx512f() {
#if PERKREC_HAS_AVX2_DISPATCH
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
  return ok && simd_cap() >= 2;
#else
  return false;
#endif
}

namespace avx512 {

constexpr int kTileRows = 12;  ///< members per register tile (2 x 12 accumulators)
constexpr int kPanel = 32;     ///< benefits per packed panel (2 zmm)

/// Packs the first `dim` columns of the rows x `stride` row-major table `y` into panels of 32
/// rows, each k-major (panel p, column k at out[(p * dim + k) * 32 .. + 32]); rows past the end
/// are zero. out holds ceil(rows / 32) * 32 * dim floats.
inline void pack_panels(const float* y, std::ptrdiff_t rows, int stride, int dim, float* out) {
  const std::ptrdiff_t panels = (rows + kPanel - 1) / kPanel;
  for (std::ptrdiff_t p = 0; p < panels; ++p) {
    float* panel = out + p * kPanel * dim;
    for (int r = 0; r < kPanel; ++r) {
      const std::ptrdiff_t row = p * kPanel + r;
      for (int k = 0; k < dim; ++k) panel[k * kPanel + r] = row < rows ? y[row * stride + k] : 0.0f;
    }
  }
}

#if PERKREC_HAS_AVX2_DISPATCH
/// Scores 12 members (a: k-major, a[k * 12 + r]) against one 32-benefit panel in registers,
/// each score accumulated k = 0, 1, ... with one FMA per step (bit-identical to the AVX2
/// kernel). For member r, masks[r] gets the lanes whose score is >= thr[r] (NaN never), and when
/// non-zero the 32 scores go to buf[r * 32 ..]. Returns whether any member has a candidate.
PERKREC_TARGET_AVX512 inline bool tile(const float* a, const float* panel, int dim,
                                       const float* thr, float* buf, std::uint32_t* masks) {
  __m512 c0[kTileRows], c1[kTileRows];
#pragma GCC unroll 12
  for (int r = 0; r < kTileRows; ++r) c0[r] = c1[r] = _mm512_setzero_ps();
  for (int k = 0; k < dim; ++k) {
    const __m512 b0 = _mm512_loadu_ps(panel + k * kPanel),
                 b1 = _mm512_loadu_ps(panel + k * kPanel + 16);
    const float* ak = a + k * kTileRows;
#pragma GCC unroll 12
    for (int r = 0; r < kTileRows; ++r) {
      const __m512 av = _mm512_set1_ps(ak[r]);
      c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
    }
  }
  std::uint32_t any = 0;
#pragma GCC unroll 12
  for (int r = 0; r < kTileRows; ++r) {
    const __m512 t = _mm512_set1_ps(thr[r]);
    const std::uint32_t m =
        static_cast<std::uint32_t>(_mm512_cmp_ps_mask(c0[r], t, _CMP_GE_OQ)) |
        (static_cast<std::uint32_t>(_mm512_cmp_ps_mask(c1[r], t, _CMP_GE_OQ)) << 16);
    masks[r] = m;
    if (m != 0) {
      _mm512_storeu_ps(buf + r * kPanel, c0[r]);
      _mm512_storeu_ps(buf + r * kPanel + 16, c1[r]);
    }
    any |= m;
  }
  return any != 0;
}
#endif

}  // namespace avx512
}  // namespace detail
}  // namespace perkrec
