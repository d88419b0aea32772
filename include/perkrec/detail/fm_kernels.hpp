// The FM training kernel (forward and one SGD / AdaGrad step per row), the interleaved
// per-feature layout it trains on with several threads, and its runtime-dispatched SIMD pieces
// (AVX2 + FMA on x86-64 with GCC or Clang; portable scalar code everywhere else). Internal to
// FM (models/fm_impl.hpp); a header of its own so that tests can drive the kernel directly.
// Names are FM-specific on purpose.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "perkrec/core/types.hpp"

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

// The training kernel. KC > 0 fixes the factor count at compile time so the inner loops unroll
// and vectorize; KC == 0 reads it at run time. Parameters are updated in place without locks
// (Hogwild): concurrent writers may lose an update, which SGD tolerates.
template <int KC>
struct FMKernel {
  float* w0;
  float* w;
  float* v;
  float* g0;  // AdaGrad sums; null for SGD
  float* gw;
  float* gv;
  const std::int32_t* fields;
  int k_runtime;
  std::size_t stride;  // floats per feature in v (and gv)
  bool field_aware;
  float lr, reg_bias, reg_linear, reg_factors;
  std::size_t w_stride = 1;  // floats per feature in w (and gw): > 1 for FMRecords

  float& lin(std::size_t i) const { return w[i * w_stride]; }
  float& lin_sum(std::size_t i) const { return gw[i * w_stride]; }

  int k() const { return KC > 0 ? KC : k_runtime; }

  // Raw score; for FM also leaves sum_i v_i x_i in `sum` (k floats) for backward().
  float forward(const Index* idx, const float* val, Offset n, float* sum) const {
    const int K = k();
    float s = *w0;
    if (!field_aware) {
      if constexpr (KC > 0) {
        // Lane-wise accumulators in registers: no aliasing with the parameters and no
        // reassociation needed, so the compiler vectorizes the factor loops.
        float acc[KC] = {}, sq[KC] = {};
        for (Offset e = 0; e < n; ++e) {
          const float x = val ? val[e] : 1.0f;
          const float* __restrict vi = v + static_cast<std::size_t>(idx[e]) * stride;
          s += lin(static_cast<std::size_t>(idx[e])) * x;
          for (int f = 0; f < KC; ++f) {
            const float t = vi[f] * x;
            acc[f] += t;
            sq[f] += t * t;
          }
        }
        float inter = 0.0f;
        for (int f = 0; f < KC; ++f) {
          inter += acc[f] * acc[f] - sq[f];
          sum[f] = acc[f];
        }
        return s + 0.5f * inter;
      }
      for (int f = 0; f < K; ++f) sum[f] = 0.0f;
      float sq = 0.0f;
      for (Offset e = 0; e < n; ++e) {
        const float x = val ? val[e] : 1.0f;
        const float* vi = v + static_cast<std::size_t>(idx[e]) * stride;
        s += lin(static_cast<std::size_t>(idx[e])) * x;
        for (int f = 0; f < K; ++f) {
          const float t = vi[f] * x;
          sum[f] += t;
          sq += t * t;
        }
      }
      float dot = 0.0f;
      for (int f = 0; f < K; ++f) dot += sum[f] * sum[f];
      return s + 0.5f * (dot - sq);
    }
    for (Offset a = 0; a < n; ++a) {
      const float xa = val ? val[a] : 1.0f;
      s += lin(static_cast<std::size_t>(idx[a])) * xa;
      const std::size_t fa = static_cast<std::size_t>(fields[idx[a]]);
      const float* base_a = v + static_cast<std::size_t>(idx[a]) * stride;
      for (Offset b = a + 1; b < n; ++b) {
        const float xb = val ? val[b] : 1.0f;
        const std::size_t fb = static_cast<std::size_t>(fields[idx[b]]);
        const float* va = base_a + fb * K;
        const float* vb = v + static_cast<std::size_t>(idx[b]) * stride + fa * K;
        float dot = 0.0f;
        for (int f = 0; f < K; ++f) dot += va[f] * vb[f];
        s += dot * xa * xb;
      }
    }
    return s;
  }

  static void step(float& param, float& acc, float grad, float lr) {
    acc += grad * grad;
    param -= lr * grad / std::sqrt(acc);
  }

  // Applies one update for d(loss)/d(score) = g.
  void backward(const Index* idx, const float* val, Offset n, const float* sum, float g) {
    const int K = k();
    const bool ada = g0 != nullptr;
    {
      const float grad = g + reg_bias * *w0;
      if (ada)
        step(*w0, *g0, grad, lr);
      else
        *w0 -= lr * grad;
    }
    if (!field_aware) {
      if constexpr (KC > 0) {
        [[maybe_unused]] const bool avx2 = ada && fm_cpu_has_avx2();
        float acc[KC];
        for (int f = 0; f < KC; ++f) acc[f] = sum[f];
        for (Offset e = 0; e < n; ++e) {
          const float x = val ? val[e] : 1.0f;
          const std::size_t i = static_cast<std::size_t>(idx[e]);
          const float gl = g * x + reg_linear * lin(i);
          float* __restrict vi = v + i * stride;
          const float gx = g * x;
          if (ada) {
            step(lin(i), lin_sum(i), gl, lr);
            float* __restrict gi = gv + i * stride;
#if PERKREC_FM_HAVE_AVX2_KERNELS
            if constexpr (KC == 8) {
              if (avx2) {
                fm_adagrad_step8_avx2(vi, gi, acc, gx, x, reg_factors, lr);
                continue;
              }
            }
#endif
            for (int f = 0; f < KC; ++f) {
              const float grad = gx * (acc[f] - vi[f] * x) + reg_factors * vi[f];
              gi[f] += grad * grad;
              vi[f] -= lr * grad / std::sqrt(gi[f]);
            }
          } else {
            lin(i) -= lr * gl;
            for (int f = 0; f < KC; ++f) {
              vi[f] -= lr * (gx * (acc[f] - vi[f] * x) + reg_factors * vi[f]);
            }
          }
        }
        return;
      }
      for (Offset e = 0; e < n; ++e) {
        const float x = val ? val[e] : 1.0f;
        const std::size_t i = static_cast<std::size_t>(idx[e]);
        const float gl = g * x + reg_linear * lin(i);
        if (ada)
          step(lin(i), lin_sum(i), gl, lr);
        else
          lin(i) -= lr * gl;
        float* vi = v + i * stride;
        const float gx = g * x;
        if (ada) {
          float* gi = gv + i * stride;
          for (int f = 0; f < K; ++f) {
            const float grad = gx * (sum[f] - vi[f] * x) + reg_factors * vi[f];
            gi[f] += grad * grad;
            vi[f] -= lr * grad / std::sqrt(gi[f]);
          }
        } else {
          for (int f = 0; f < K; ++f) {
            const float grad = gx * (sum[f] - vi[f] * x) + reg_factors * vi[f];
            vi[f] -= lr * grad;
          }
        }
      }
      return;
    }
    for (Offset a = 0; a < n; ++a) {
      const float xa = val ? val[a] : 1.0f;
      const std::size_t ia = static_cast<std::size_t>(idx[a]);
      const float gl = g * xa + reg_linear * lin(ia);
      if (ada)
        step(lin(ia), lin_sum(ia), gl, lr);
      else
        lin(ia) -= lr * gl;
    }
    for (Offset a = 0; a < n; ++a) {
      const float xa = val ? val[a] : 1.0f;
      const std::size_t ia = static_cast<std::size_t>(idx[a]);
      const std::size_t fa = static_cast<std::size_t>(fields[ia]);
      for (Offset b = a + 1; b < n; ++b) {
        const float xb = val ? val[b] : 1.0f;
        const std::size_t ib = static_cast<std::size_t>(idx[b]);
        const std::size_t fb = static_cast<std::size_t>(fields[ib]);
        const std::size_t oa = ia * stride + fb * K;
        const std::size_t ob = ib * stride + fa * K;
        float* va = v + oa;
        float* vb = v + ob;
        const float gxx = g * xa * xb;
        for (int f = 0; f < K; ++f) {
          const float ga = gxx * vb[f] + reg_factors * va[f];
          const float gb = gxx * va[f] + reg_factors * vb[f];
          if (ada) {
            gv[oa + f] += ga * ga;
            gv[ob + f] += gb * gb;
            va[f] -= lr * ga / std::sqrt(gv[oa + f]);
            vb[f] -= lr * gb / std::sqrt(gv[ob + f]);
          } else {
            va[f] -= lr * ga;
            vb[f] -= lr * gb;
          }
        }
      }
    }
  }
};

// An FM's training state interleaved for Hogwild on several threads: one record per feature,
// [v (K) | gv (K, AdaGrad) | w | gw (AdaGrad) | padding], each record a whole number of 64-byte
// cache lines and line-aligned. In the model's own arrays one update touches four lines (w, gw,
// v, gv) each shared with neighbouring features (16 linear weights or 2 factor rows to a line),
// and the two threads' updates to different features keep trading those lines; a record puts
// one feature's state on lines of its own. Gathering before and scattering after an epoch costs
// O(features x K), small against the epoch's O(rows x nnz x K). The arithmetic is the same, so
// the trained values do not depend on the layout.
struct FMRecords {
  static constexpr std::size_t kLine = 16;  // floats per 64-byte cache line
  std::vector<float> storage;
  float* base = nullptr;
  std::size_t width = 0;  // floats per record
  std::size_t k = 0;
  bool ada = false;

  std::size_t w_offset() const { return ada ? 2 * k : k; }

  void gather(const std::vector<float>& w, const std::vector<float>& v,
              const std::vector<float>& gw, const std::vector<float>& gv, std::size_t factors) {
    k = factors;
    ada = !gw.empty();
    width = ((ada ? 2 * k + 2 : k + 1) + kLine - 1) / kLine * kLine;
    storage.assign(w.size() * width + kLine, 0.0f);
    const auto address = reinterpret_cast<std::uintptr_t>(storage.data());
    const std::size_t misalign = (address / sizeof(float)) % kLine;
    base = storage.data() + (misalign == 0 ? 0 : kLine - misalign);
    const std::size_t wo = w_offset();
    for (std::size_t i = 0; i < w.size(); ++i) {
      float* r = base + i * width;
      std::copy_n(v.data() + i * k, k, r);
      r[wo] = w[i];
      if (ada) {
        std::copy_n(gv.data() + i * k, k, r + k);
        r[wo + 1] = gw[i];
      }
    }
  }

  // Points a kernel's w, v (and gw, gv with AdaGrad) at the records.
  template <int KC>
  void attach(FMKernel<KC>& kern) const {
    kern.v = base;
    kern.w = base + w_offset();
    if (ada) {
      kern.gv = base + k;
      kern.gw = kern.w + 1;
    }
    kern.stride = kern.w_stride = width;
  }

  void scatter(std::vector<float>& w, std::vector<float>& v, std::vector<float>& gw,
               std::vector<float>& gv) const {
    const std::size_t wo = w_offset();
    for (std::size_t i = 0; i < w.size(); ++i) {
      const float* r = base + i * width;
      std::copy_n(r, k, v.data() + i * k);
      w[i] = r[wo];
      if (ada) {
        std::copy_n(r + k, k, gv.data() + i * k);
        gw[i] = r[wo + 1];
      }
    }
  }
};

}  // namespace detail
}  // namespace perkrec
