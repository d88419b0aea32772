// Runtime-dispatched AVX2/FMA kernels for the hottest CF loops (no -march flags: the project
// builds for the baseline ISA, and these functions carry their own target attribute, used only
// when the CPU reports AVX2 and FMA). Internal: no API promise.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && \
    !defined(PERKREC_NO_SIMD_DISPATCH)
#define PERKREC_HAS_AVX2_DISPATCH 1
#include <immintrin.h>
#define PERKREC_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define PERKREC_HAS_AVX2_DISPATCH 0
#define PERKREC_TARGET_AVX2
#endif

namespace perkrec {
namespace detail {

/// True when the AVX2 + FMA kernels may run on this CPU (checked once).
/// The highest kernel family the process may use: 2 = AVX-512, 1 = AVX2, 0 = portable code.
/// From the environment variable PERKREC_SIMD ("avx512", "avx2" or "scalar"; read once, at the
/// first dispatched call), for measuring and testing each path on one machine; unset or any
/// other value = no cap (the best the CPU has).
inline int simd_cap() {
  static const int cap = [] {
    const char* v = std::getenv("PERKREC_SIMD");
    if (v == nullptr) return 2;
    const std::string s(v);
    return s == "scalar" ? 0 : s == "avx2" ? 1 : 2;
  }();
  return cap;
}

inline bool cpu_has_avx2_fma() {
#if PERKREC_HAS_AVX2_DISPATCH
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok && simd_cap() >= 1;
#else
  return false;
#endif
}

#if PERKREC_HAS_AVX2_DISPATCH
namespace avx2 {

PERKREC_TARGET_AVX2 inline float hsum(__m256 v) {
  __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
  return _mm_cvtss_f32(lo);
}

PERKREC_TARGET_AVX2 inline float dot(const float* a, const float* b, int n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  int k = 0;
  for (; k + 32 <= n; k += 32) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 8), _mm256_loadu_ps(b + k + 8), acc1);
    acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 16), _mm256_loadu_ps(b + k + 16), acc2);
    acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 24), _mm256_loadu_ps(b + k + 24), acc3);
  }
  for (; k + 8 <= n; k += 8)
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), acc0);
  float s = hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  for (; k < n; ++k) s += a[k] * b[k];
  return s;
}

/// y += alpha * x
PERKREC_TARGET_AVX2 inline void axpy(float alpha, const float* x, float* y, int n) {
  const __m256 a = _mm256_set1_ps(alpha);
  int k = 0;
  for (; k + 8 <= n; k += 8) {
    _mm256_storeu_ps(y + k, _mm256_fmadd_ps(a, _mm256_loadu_ps(x + k), _mm256_loadu_ps(y + k)));
  }
  for (; k < n; ++k) y[k] += alpha * x[k];
}

/// out = a * v for a symmetric n x n matrix: out = sum_k v[k] * row_k, accumulated in registers
/// 64 columns at a time (independent FMA chains instead of n latency-bound dot products).
PERKREC_TARGET_AVX2 inline void symv(const float* a, const float* v, float* out, int n) {
  int c = 0;
  for (; c + 64 <= n; c += 64) {
    __m256 acc[8];
    for (int t = 0; t < 8; ++t) acc[t] = _mm256_setzero_ps();
    for (int k = 0; k < n; ++k) {
      const __m256 vk = _mm256_set1_ps(v[k]);
      const float* row = a + static_cast<std::ptrdiff_t>(k) * n + c;
      for (int t = 0; t < 8; ++t)
        acc[t] = _mm256_fmadd_ps(vk, _mm256_loadu_ps(row + 8 * t), acc[t]);
    }
    for (int t = 0; t < 8; ++t) _mm256_storeu_ps(out + c + 8 * t, acc[t]);
  }
  for (; c + 8 <= n; c += 8) {
    __m256 acc = _mm256_setzero_ps();
    for (int k = 0; k < n; ++k) {
      acc = _mm256_fmadd_ps(_mm256_set1_ps(v[k]),
                            _mm256_loadu_ps(a + static_cast<std::ptrdiff_t>(k) * n + c), acc);
    }
    _mm256_storeu_ps(out + c, acc);
  }
  for (; c < n; ++c) out[c] = dot(a + static_cast<std::ptrdiff_t>(c) * n, v, n);
}

PERKREC_TARGET_AVX2 inline double hsum(__m256d v) {
  __m128d lo = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(lo, _mm_unpackhi_pd(lo, lo)));
}

PERKREC_TARGET_AVX2 inline double dot(const double* a, const double* b, int n) {
  __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
  int k = 0;
  for (; k + 8 <= n; k += 8) {
    acc0 = _mm256_fmadd_pd(_mm256_loadu_pd(a + k), _mm256_loadu_pd(b + k), acc0);
    acc1 = _mm256_fmadd_pd(_mm256_loadu_pd(a + k + 4), _mm256_loadu_pd(b + k + 4), acc1);
  }
  for (; k + 4 <= n; k += 4)
    acc0 = _mm256_fmadd_pd(_mm256_loadu_pd(a + k), _mm256_loadu_pd(b + k), acc0);
  double s = hsum(_mm256_add_pd(acc0, acc1));
  for (; k < n; ++k) s += a[k] * b[k];
  return s;
}

/// Lower triangle of the row-major n x n matrix `a` (a[i * n + j], j <= i) += W^T W for the
/// `rows` x n row-major W, in rank-4 blocks (each row chunk of `a` loaded once per 4 rows of W).
PERKREC_TARGET_AVX2 inline void syrk_lower(double* a, const double* w, std::ptrdiff_t rows, int n) {
  std::ptrdiff_t e = 0;
  for (; e + 4 <= rows; e += 4) {
    const double* w0 = w + e * n;
    const double* w1 = w0 + n;
    const double* w2 = w1 + n;
    const double* w3 = w2 + n;
    for (int i = 0; i < n; ++i) {
      const __m256d s0 = _mm256_set1_pd(w0[i]), s1 = _mm256_set1_pd(w1[i]);
      const __m256d s2 = _mm256_set1_pd(w2[i]), s3 = _mm256_set1_pd(w3[i]);
      double* row = a + static_cast<std::ptrdiff_t>(i) * n;
      int j = 0;
      for (; j + 4 <= i + 1; j += 4) {
        __m256d acc = _mm256_loadu_pd(row + j);
        acc = _mm256_fmadd_pd(s0, _mm256_loadu_pd(w0 + j), acc);
        acc = _mm256_fmadd_pd(s1, _mm256_loadu_pd(w1 + j), acc);
        acc = _mm256_fmadd_pd(s2, _mm256_loadu_pd(w2 + j), acc);
        acc = _mm256_fmadd_pd(s3, _mm256_loadu_pd(w3 + j), acc);
        _mm256_storeu_pd(row + j, acc);
      }
      for (; j <= i; ++j) row[j] += w0[i] * w0[j] + w1[i] * w1[j] + w2[i] * w2[j] + w3[i] * w3[j];
    }
  }
  for (; e < rows; ++e) {
    const double* w0 = w + e * n;
    for (int i = 0; i < n; ++i) {
      double* row = a + static_cast<std::ptrdiff_t>(i) * n;
      for (int j = 0; j <= i; ++j) row[j] += w0[i] * w0[j];
    }
  }
}

/// Solves a x = b for the symmetric positive definite n x n matrix whose lower triangle is in
/// `a` (row-major, a[i * n + j], j <= i), overwriting `a` with its Cholesky factor and `b` with
/// the solution; `column` is n doubles of scratch. Returns false when `a` is not positive
/// definite (or not finite).
PERKREC_TARGET_AVX2 inline bool cholesky_solve(double* a, double* b, int n, double* column) {
  (void)column;
  // Column by column (Crout): l_ij = (a_ij - l_i[0..j) . l_j[0..j)) / l_jj, rows i taken four at a
  // time so four independent FMA chains share each load of l_j.
  for (int j = 0; j < n; ++j) {
    double* lj = a + static_cast<std::ptrdiff_t>(j) * n;
    const double d = lj[j] - dot(lj, lj, j);
    if (!(d > 0)) return false;
    const double ljj = std::sqrt(d);
    lj[j] = ljj;
    const double inv = 1.0 / ljj;
    int i = j + 1;
    for (; i + 4 <= n; i += 4) {
      double* l0 = a + static_cast<std::ptrdiff_t>(i) * n;
      double* l1 = l0 + n;
      double* l2 = l1 + n;
      double* l3 = l2 + n;
      __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd(), s2 = _mm256_setzero_pd(),
              s3 = _mm256_setzero_pd();
      int k = 0;
      for (; k + 4 <= j; k += 4) {
        const __m256d v = _mm256_loadu_pd(lj + k);
        s0 = _mm256_fmadd_pd(_mm256_loadu_pd(l0 + k), v, s0);
        s1 = _mm256_fmadd_pd(_mm256_loadu_pd(l1 + k), v, s1);
        s2 = _mm256_fmadd_pd(_mm256_loadu_pd(l2 + k), v, s2);
        s3 = _mm256_fmadd_pd(_mm256_loadu_pd(l3 + k), v, s3);
      }
      double t0 = hsum(s0), t1 = hsum(s1), t2 = hsum(s2), t3 = hsum(s3);
      for (; k < j; ++k) {
        t0 += l0[k] * lj[k];
        t1 += l1[k] * lj[k];
        t2 += l2[k] * lj[k];
        t3 += l3[k] * lj[k];
      }
      l0[j] = (l0[j] - t0) * inv;
      l1[j] = (l1[j] - t1) * inv;
      l2[j] = (l2[j] - t2) * inv;
      l3[j] = (l3[j] - t3) * inv;
    }
    for (; i < n; ++i) {
      double* li = a + static_cast<std::ptrdiff_t>(i) * n;
      li[j] = (li[j] - dot(li, lj, j)) * inv;
    }
  }
  for (int i = 0; i < n; ++i) {  // L z = b
    const double* li = a + static_cast<std::ptrdiff_t>(i) * n;
    b[i] = (b[i] - dot(li, b, i)) / li[i];
  }
  for (int i = n - 1; i >= 0; --i) {  // L^T x = z, as row axpys
    const double* li = a + static_cast<std::ptrdiff_t>(i) * n;
    b[i] /= li[i];
    const double xi = b[i];
    for (int k = 0; k < i; ++k) b[k] -= li[k] * xi;
  }
  return true;
}

/// One BPR SGD step updating member row x and benefit rows yi (positive), yj (negative): `dim`
/// latent columns plus the bias column at [dim] (x[dim] == 1). Returns the pre-update score
/// difference x . (yi - yj).
PERKREC_TARGET_AVX2 inline float bpr_step(float* x, float* yi, float* yj, int dim, float lr,
                                          float reg) {
  const int n = dim + 1;
  __m256 acc = _mm256_setzero_ps();
  int k = 0;
  for (; k + 8 <= n; k += 8) {
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(x + k),
                          _mm256_sub_ps(_mm256_loadu_ps(yi + k), _mm256_loadu_ps(yj + k)), acc);
  }
  float s = hsum(acc);
  for (; k < n; ++k) s += x[k] * (yi[k] - yj[k]);
  const float z = 1.0f / (1.0f + std::exp(s));
  const __m256 vlr = _mm256_set1_ps(lr), vreg = _mm256_set1_ps(reg), vz = _mm256_set1_ps(z);
  k = 0;
  for (; k + 8 <= dim; k += 8) {
    const __m256 xf = _mm256_loadu_ps(x + k), yif = _mm256_loadu_ps(yi + k),
                 yjf = _mm256_loadu_ps(yj + k);
    const __m256 gx = _mm256_fmsub_ps(vz, _mm256_sub_ps(yif, yjf), _mm256_mul_ps(vreg, xf));
    const __m256 gi = _mm256_fmsub_ps(vz, xf, _mm256_mul_ps(vreg, yif));
    const __m256 gj = _mm256_fnmsub_ps(vz, xf, _mm256_mul_ps(vreg, yjf));
    _mm256_storeu_ps(x + k, _mm256_fmadd_ps(vlr, gx, xf));
    _mm256_storeu_ps(yi + k, _mm256_fmadd_ps(vlr, gi, yif));
    _mm256_storeu_ps(yj + k, _mm256_fmadd_ps(vlr, gj, yjf));
  }
  for (; k < dim; ++k) {
    const float xf = x[k], yif = yi[k], yjf = yj[k];
    x[k] = xf + lr * (z * (yif - yjf) - reg * xf);
    yi[k] = yif + lr * (z * xf - reg * yif);
    yj[k] = yjf + lr * (-z * xf - reg * yjf);
  }
  yi[dim] += lr * (z - reg * yi[dim]);
  yj[dim] += lr * (-z - reg * yj[dim]);
  return s;
}

/// Packs the first `dim` columns of the rows x `stride` row-major table `y` into panels of 16
/// rows, each stored k-major (panel p, column k at out[(p * dim + k) * 16 .. + 16]); rows past
/// the end are zero. out holds ceil(rows / 16) * 16 * dim floats.
inline void pack_panels(const float* y, std::ptrdiff_t rows, int stride, int dim, float* out) {
  const std::ptrdiff_t panels = (rows + 15) / 16;
  for (std::ptrdiff_t p = 0; p < panels; ++p) {
    float* panel = out + p * 16 * dim;
    for (int r = 0; r < 16; ++r) {
      const std::ptrdiff_t row = p * 16 + r;
      for (int k = 0; k < dim; ++k) panel[k * 16 + r] = row < rows ? y[row * stride + k] : 0.0f;
    }
  }
}

/// c[r][j .. j + 16) = q_r . panel for R query rows (q row-major, stride dim; c stride ldc):
/// a 6 x 16 register tile at most, each panel load shared by R rows.
template <int R>
PERKREC_TARGET_AVX2 inline void gemm_tile(const float* q, int dim, const float* panel, float* c,
                                          std::ptrdiff_t ldc) {
  __m256 acc0[R], acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  for (int k = 0; k < dim; ++k) {
    const __m256 b0 = _mm256_loadu_ps(panel + k * 16), b1 = _mm256_loadu_ps(panel + k * 16 + 8);
    for (int r = 0; r < R; ++r) {
      const __m256 a = _mm256_broadcast_ss(q + r * dim + k);
      acc0[r] = _mm256_fmadd_ps(a, b0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(a, b1, acc1[r]);
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_ps(c + r * ldc, acc0[r]);
    _mm256_storeu_ps(c + r * ldc + 8, acc1[r]);
  }
}

/// c (rows x ldc, ldc >= panels * 16) = q (rows x dim) times the packed panels.
PERKREC_TARGET_AVX2 inline void gemm_panels(const float* q, int rows, int dim, const float* panels,
                                            std::ptrdiff_t n_panels, float* c, std::ptrdiff_t ldc) {
  // Groups of panels that stay in L2 while every query row passes over them.
  const std::ptrdiff_t group = std::max<std::ptrdiff_t>(1, (1 << 16) / (16 * dim));
  for (std::ptrdiff_t g0 = 0; g0 < n_panels; g0 += group) {
    const std::ptrdiff_t g1 = std::min(n_panels, g0 + group);
    int r = 0;
    for (; r + 6 <= rows; r += 6) {
      for (std::ptrdiff_t p = g0; p < g1; ++p)
        gemm_tile<6>(q + r * dim, dim, panels + p * 16 * dim, c + r * ldc + p * 16, ldc);
    }
    const int left = rows - r;
    for (std::ptrdiff_t p = g0; p < g1 && left > 0; ++p) {
      const float* panel = panels + p * 16 * dim;
      float* out = c + r * ldc + p * 16;
      switch (left) {
        case 1:
          gemm_tile<1>(q + r * dim, dim, panel, out, ldc);
          break;
        case 2:
          gemm_tile<2>(q + r * dim, dim, panel, out, ldc);
          break;
        case 3:
          gemm_tile<3>(q + r * dim, dim, panel, out, ldc);
          break;
        case 4:
          gemm_tile<4>(q + r * dim, dim, panel, out, ldc);
          break;
        default:
          gemm_tile<5>(q + r * dim, dim, panel, out, ldc);
          break;
      }
    }
  }
}

constexpr int kTileRows = 6;  ///< members per fused register tile (2 x 6 accumulators)
constexpr int kPanel = 16;    ///< benefits per packed panel (2 ymm)

/// The AVX2 twin of avx512::tile: scores 6 members (a: k-major, a[k * 6 + r]) against one
/// 16-benefit panel (pack_panels) in registers, each score accumulated k = 0, 1, ... with one
/// FMA per step (bit-identical to gemm_tile and the AVX-512 kernel). For member r, masks[r] gets
/// the lanes whose score is >= thr[r] (NaN never), and when non-zero the 16 scores go to
/// buf[r * 16 ..]. Returns whether any member has a candidate.
PERKREC_TARGET_AVX2 inline bool tile(const float* a, const float* panel, int dim, const float* thr,
                                     float* buf, std::uint32_t* masks) {
  __m256 c0[kTileRows], c1[kTileRows];
#pragma GCC unroll 6
  for (int r = 0; r < kTileRows; ++r) c0[r] = c1[r] = _mm256_setzero_ps();
  for (int k = 0; k < dim; ++k) {
    const __m256 b0 = _mm256_loadu_ps(panel + k * kPanel),
                 b1 = _mm256_loadu_ps(panel + k * kPanel + 8);
    const float* ak = a + k * kTileRows;
#pragma GCC unroll 6
    for (int r = 0; r < kTileRows; ++r) {
      const __m256 av = _mm256_broadcast_ss(ak + r);
      c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
    }
  }
  std::uint32_t any = 0;
#pragma GCC unroll 6
  for (int r = 0; r < kTileRows; ++r) {
    const __m256 t = _mm256_set1_ps(thr[r]);
    const auto m =
        static_cast<std::uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(c0[r], t, _CMP_GE_OQ))) |
        (static_cast<std::uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(c1[r], t, _CMP_GE_OQ))) << 8);
    masks[r] = m;
    if (m != 0) {
      _mm256_storeu_ps(buf + r * kPanel, c0[r]);
      _mm256_storeu_ps(buf + r * kPanel + 8, c1[r]);
    }
    any |= m;
  }
  return any != 0;
}

/// Prefetches the `bytes` starting at p into L1.
PERKREC_TARGET_AVX2 inline void prefetch(const void* p, int bytes) {
  const char* c = static_cast<const char*>(p);
  for (int off = 0; off < bytes; off += 64) _mm_prefetch(c + off, _MM_HINT_T0);
}

}  // namespace avx2
#endif

}  // namespace detail
}  // namespace perkrec
