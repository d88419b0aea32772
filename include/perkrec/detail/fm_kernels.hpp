// Runtime-dispatched SIMD kernels for FM training (AVX2 + FMA on x86-64 with GCC or Clang;
// portable scalar code everywhere else). Names are FM-specific on purpose.
#pragma once

#include <cmath>

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define PERKREC_FM_HAVE_AVX2_KERNELS 1
#else
#define PERKREC_FM_HAVE_AVX2_KERNELS 0
#endif

namespace perkrec {
namespace detail {

/// True when the CPU running this process supports AVX2 and FMA (checked once).
inline bool fm_cpu_has_avx2() {
#if PERKREC_FM_HAVE_AVX2_KERNELS
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
#else
  return false;
#endif
}

#if PERKREC_FM_HAVE_AVX2_KERNELS
/// One AdaGrad step on 8 factors of one feature:
///   grad_f = gx * (acc_f - v_f * x) + reg * v_f;  g_f += grad_f^2;  v_f -= lr * grad_f / sqrt(g_f)
/// 1/sqrt(g) is _mm256_rsqrt_ps refined by one Newton step (relative error ~1e-7); g >= 1 always
/// (AdaGrad sums start at 1), so no zero or denormal inputs reach the reciprocal square root.
__attribute__((target("avx2,fma"))) inline void fm_adagrad_step8_avx2(float* v, float* g,
                                                                      const float* acc, float gx,
                                                                      float x, float reg,
                                                                      float lr) {
  const __m256 vv = _mm256_loadu_ps(v);
  const __m256 va = _mm256_loadu_ps(acc);
  __m256 vg = _mm256_loadu_ps(g);
  // grad = gx * (acc - v * x) + reg * v
  const __m256 diff = _mm256_fnmadd_ps(vv, _mm256_set1_ps(x), va);
  const __m256 grad =
      _mm256_fmadd_ps(_mm256_set1_ps(gx), diff, _mm256_mul_ps(_mm256_set1_ps(reg), vv));
  vg = _mm256_fmadd_ps(grad, grad, vg);
  __m256 r = _mm256_rsqrt_ps(vg);
  // Newton: r = r * (1.5 - 0.5 * g * r * r)
  const __m256 half_g = _mm256_mul_ps(_mm256_set1_ps(0.5f), vg);
  r = _mm256_mul_ps(r, _mm256_fnmadd_ps(_mm256_mul_ps(half_g, r), r, _mm256_set1_ps(1.5f)));
  _mm256_storeu_ps(g, vg);
  _mm256_storeu_ps(v, _mm256_fnmadd_ps(_mm256_mul_ps(_mm256_set1_ps(lr), grad), r, vv));
}
#endif

}  // namespace detail
}  // namespace perkrec
