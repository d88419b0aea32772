// Definitions for factors.hpp.
#pragma once

#include <numeric>

#include "perkrec/models/factors.hpp"

namespace perkrec {
namespace detail {

PERKREC_INLINE Index FactorTable::first_non_finite(int num_threads) const {
  std::vector<std::uint8_t> bad(static_cast<std::size_t>(rows), 0);
  parallel_for(0, rows, num_threads, [&](Offset r) {
    const float* v = row(static_cast<Index>(r));
    float sum = 0.0f;
    for (int f = 0; f < dim; ++f) sum += v[f] * 0.0f;  // NaN/Inf propagate, finite gives 0
    bad[static_cast<std::size_t>(r)] = std::isfinite(sum) ? 0 : 1;
  });
  for (Index r = 0; r < rows; ++r) {
    if (bad[static_cast<std::size_t>(r)]) return r;
  }
  return -1;
}

PERKREC_INLINE void check_interactions(const CsrView<float>& m, Index want_rows, Index want_cols,
                                       const char* what, bool require_sorted) {
  m.validate(what, require_sorted);
  if ((want_rows >= 0 && m.rows != want_rows) || (want_cols >= 0 && m.cols != want_cols)) {
    raise<InputError>(what, ": wrong shape (got ", m.rows, " x ", m.cols, ", expected ",
                      want_rows >= 0 ? std::to_string(want_rows) : std::string("any"), " x ",
                      want_cols >= 0 ? std::to_string(want_cols) : std::string("any"), ")");
  }
  if (m.data != nullptr) {
    // Confidences are counts or weights: bounded so that no similarity, Gram matrix or score
    // built from them can overflow float.
    constexpr float kMaxConfidence = 1e9f;
    for (Offset e = 0; e < m.nnz(); ++e) {
      if (m.data[e] < 0) {
        raise<InputError>(what, ": negative confidence at position ", e, " (got ", m.data[e],
                          ", expected >= 0)");
      }
      if (m.data[e] > kMaxConfidence) {
        raise<InputError>(what, ": confidence too large at position ", e, " (got ", m.data[e],
                          ", expected <= 1e9: scale counts or weights down)");
      }
    }
  }
}

PERKREC_INLINE void check_ids(Span<const Index> ids, Index limit, const char* what,
                              const char* noun) {
  std::vector<Index> sorted(ids.begin(), ids.end());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || (limit >= 0 && ids[i] >= limit)) {
      raise<InputError>(what, ": ", noun, " at position ", i, " out of range (got ", ids[i],
                        ", expected 0 <= ", noun,
                        limit >= 0 ? " < " + std::to_string(limit) : std::string(""), ")");
    }
  }
  std::sort(sorted.begin(), sorted.end());
  auto dup = std::adjacent_find(sorted.begin(), sorted.end());
  if (dup != sorted.end()) raise<InputError>(what, ": ", noun, " ", *dup, " is listed twice");
}

PERKREC_INLINE CsrMatrix<float> transpose(const CsrView<float>& m, int num_threads) {
  (void)num_threads;
  CsrMatrix<float> t;
  t.rows = m.cols;
  t.cols = m.rows;
  const Offset nnz = m.nnz();
  t.indptr.assign(static_cast<std::size_t>(m.cols) + 1, 0);
  for (Offset e = 0; e < nnz; ++e) ++t.indptr[static_cast<std::size_t>(m.indices[e]) + 1];
  for (Index c = 0; c < m.cols; ++c)
    t.indptr[static_cast<std::size_t>(c) + 1] += t.indptr[static_cast<std::size_t>(c)];
  t.indices.resize(static_cast<std::size_t>(nnz));
  t.data.resize(static_cast<std::size_t>(nnz));
  std::vector<Offset> next(t.indptr.begin(), t.indptr.end() - 1);
  // Rows are visited in order, so each transposed row comes out sorted.
  for (Index r = 0; r < m.rows; ++r) {
    for (Offset e = m.indptr[r]; e < m.indptr[r + 1]; ++e) {
      const Offset at = next[static_cast<std::size_t>(m.indices[e])]++;
      t.indices[static_cast<std::size_t>(at)] = r;
      t.data[static_cast<std::size_t>(at)] = m.data != nullptr ? m.data[e] : 1.0f;
    }
  }
  return t;
}

PERKREC_INLINE std::vector<Index> balanced_chunks(const CsrView<float>& m, Index chunks,
                                                  Offset row_cost) {
  std::vector<Index> bounds{0};
  if (m.rows == 0) return bounds;
  chunks = std::max<Index>(1, std::min<Index>(chunks, m.rows));
  const double total = static_cast<double>(m.nnz()) + static_cast<double>(row_cost) * m.rows;
  const double per_chunk = total / chunks;
  double acc = 0;
  for (Index r = 0; r < m.rows; ++r) {
    acc += static_cast<double>(m.indptr[r + 1] - m.indptr[r] + row_cost);
    if (acc >= per_chunk * static_cast<double>(bounds.size()) && r + 1 < m.rows)
      bounds.push_back(r + 1);
  }
  bounds.push_back(m.rows);
  return bounds;
}

PERKREC_INLINE std::vector<std::uint8_t> global_mask(const Filter& filter, Index n_benefits) {
  std::vector<std::uint8_t> ok(static_cast<std::size_t>(n_benefits), filter.restricts() ? 0 : 1);
  for (Index b : filter.allow) ok[static_cast<std::size_t>(b)] = 1;
  for (Index b : filter.exclude) ok[static_cast<std::size_t>(b)] = 0;
  return ok;
}

PERKREC_INLINE void RowSelector::select(const Filter& filter,
                                        const std::vector<std::uint8_t>& global_ok, Index row,
                                        float* scores, Index n_benefits, int k, int n,
                                        Index* out_ids, float* out_scores) {
  constexpr float kSkip = -std::numeric_limits<float>::infinity();
  if (filter.exclude_rows.rows > 0) {
    for (Offset e = filter.exclude_rows.row_begin(row); e < filter.exclude_rows.row_end(row); ++e) {
      scores[filter.exclude_rows.indices[e]] = kSkip;
    }
  }
  const bool allow_mode = filter.eligibility.rows > 0 && !filter.eligibility_blocks;
  if (filter.eligibility.rows > 0) {
    if (allow_mode) {
      allowed_.assign(static_cast<std::size_t>(n_benefits), 0);
      for (Offset e = filter.eligibility.row_begin(row); e < filter.eligibility.row_end(row); ++e) {
        allowed_[static_cast<std::size_t>(filter.eligibility.indices[e])] = 1;
      }
    } else {
      for (Offset e = filter.eligibility.row_begin(row); e < filter.eligibility.row_end(row); ++e) {
        scores[filter.eligibility.indices[e]] = kSkip;
      }
    }
  }
  // Better = higher score, then lower index; the heap keeps the worst kept item on top, so most
  // benefits are rejected by one comparison with heap_.front().
  auto better = [](const std::pair<float, Index>& a, const std::pair<float, Index>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  heap_.clear();
  float threshold = kSkip;  // score of the worst kept item once the heap is full
  const std::uint8_t* ok = global_ok.data();
  for (Index b = 0; b < n_benefits; ++b) {
    const float v = scores[b];
    if (!(v >= threshold) || v == kSkip || !ok[b]) continue;  // also drops NaN
    if (allow_mode && !allowed_[static_cast<std::size_t>(b)]) continue;
    const std::pair<float, Index> item(v, b);
    if (static_cast<int>(heap_.size()) < k) {
      heap_.push_back(item);
      std::push_heap(heap_.begin(), heap_.end(), better);
      if (static_cast<int>(heap_.size()) == k) threshold = heap_.front().first;
    } else if (better(item, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), better);
      heap_.back() = item;
      std::push_heap(heap_.begin(), heap_.end(), better);
      threshold = heap_.front().first;
    }
  }
  std::sort_heap(heap_.begin(), heap_.end(), better);
  for (std::size_t i = 0; i < heap_.size(); ++i) {
    out_ids[i] = heap_[i].second;
    out_scores[i] = heap_[i].first;
  }
  (void)n;
}

#if PERKREC_HAS_AVX2_DISPATCH
// The fused tile kernels: members per register tile, benefits per packed panel, the packing
// and the tile (scores in registers, lanes at or above each member's threshold out).
struct Avx512Tiles {
  static constexpr int R = avx512::kTileRows;
  static constexpr int P = avx512::kPanel;
  static void pack(const float* y, std::ptrdiff_t rows, int stride, int dim, float* out) {
    avx512::pack_panels(y, rows, stride, dim, out);
  }
  static bool tile(const float* a, const float* panel, int dim, const float* thr, float* buf,
                   std::uint32_t* masks) {
    return avx512::tile(a, panel, dim, thr, buf, masks);
  }
};
struct Avx2Tiles {
  static constexpr int R = avx2::kTileRows;
  static constexpr int P = avx2::kPanel;
  static void pack(const float* y, std::ptrdiff_t rows, int stride, int dim, float* out) {
    avx2::pack_panels(y, rows, stride, dim, out);
  }
  static bool tile(const float* a, const float* panel, int dim, const float* thr, float* buf,
                   std::uint32_t* masks) {
    return avx2::tile(a, panel, dim, thr, buf, masks);
  }
};
#endif

// Top-n by fused register tiles (see factor_top_k_fused); K is Avx512Tiles or Avx2Tiles.
template <class K>
TopK tiled_top_k(const FactorTable& left, Span<const Index> query_rows, const FactorTable& right,
                 int n, const Filter& filter, int num_threads) {
  const auto rows = static_cast<Index>(query_rows.size());
  const Index n_benefits = right.rows;
  if (n < 0) raise<InputError>("recommend: n must be >= 0 (got ", n, ")");
  filter.validate(rows, n_benefits);
  const int threads = resolve_num_threads(num_threads);
  // Results are never wider than the catalog: a huge n cannot allocate rows x n.
  n = static_cast<int>(std::min<Index>(n, n_benefits));
  const int k = n;
  TopK out;
  out.rows = rows;
  out.k = n;
  out.ids.assign(static_cast<std::size_t>(rows) * static_cast<std::size_t>(n), -1);
  out.scores.assign(out.ids.size(), -std::numeric_limits<float>::infinity());
  if (rows == 0 || n == 0 || n_benefits == 0) return out;
#if PERKREC_HAS_AVX2_DISPATCH
  constexpr int R = K::R;
  constexpr int P = K::P;
  constexpr Index kBlock = 8 * R;  // members per block: their packed factors stay in L1
  constexpr float kSkip = -std::numeric_limits<float>::infinity();
  const int dim = right.dim;
  const std::vector<std::uint8_t> global_ok = global_mask(filter, n_benefits);
  const bool allow_mode = filter.eligibility.rows > 0 && !filter.eligibility_blocks;
  const Offset n_panels = (static_cast<Offset>(n_benefits) + P - 1) / P;
  std::vector<float> panels(static_cast<std::size_t>(n_panels) * P * static_cast<std::size_t>(dim));
  K::pack(right.values.data(), n_benefits, right.dim, dim, panels.data());
  const Index n_blocks = (rows + kBlock - 1) / kBlock;
  using Item = std::pair<float, Index>;
  // Better = higher score, then lower index; each heap keeps its worst kept item on top.
  auto better = [](const Item& a, const Item& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  struct Member {
    std::vector<Item> heap;
    std::vector<Index> blocked;  // sorted: seen rows + blocking eligibility
    std::vector<Index> allowed;  // sorted: allow-mode eligibility
  };
  struct Scratch {
    std::vector<float> a;  // kBlock / R groups, each dim x R, k-major
    std::vector<Member> members;
    float thr[kBlock];
    float buf[R * P];
    std::uint32_t masks[R];
  };
  std::vector<Scratch> scratch(static_cast<std::size_t>(threads));
  parallel_for(
      0, n_blocks, threads,
      [&](Offset blk, int thread) {
        Scratch& s = scratch[static_cast<std::size_t>(thread)];
        const Index first = static_cast<Index>(blk) * kBlock;
        const Index count = std::min<Index>(kBlock, rows - first);
        const int groups = static_cast<int>((count + R - 1) / R);
        s.a.assign(static_cast<std::size_t>(groups) * R * static_cast<std::size_t>(dim), 0.0f);
        s.members.resize(static_cast<std::size_t>(kBlock));
        for (Index i = 0; i < kBlock; ++i)
          s.thr[i] = i < count ? kSkip : std::numeric_limits<float>::infinity();
        for (Index i = 0; i < count; ++i) {
          const float* src = left.row(query_rows[static_cast<std::size_t>(first + i)]);
          float* dst = s.a.data() +
                       static_cast<std::size_t>(i / R) * R * static_cast<std::size_t>(dim) + i % R;
          for (int f = 0; f < dim; ++f) dst[f * R] = src[f];
          Member& m = s.members[static_cast<std::size_t>(i)];
          m.heap.clear();
          m.blocked.clear();
          m.allowed.clear();
          const Index row = first + i;
          if (filter.exclude_rows.rows > 0) {
            m.blocked.insert(m.blocked.end(),
                             filter.exclude_rows.indices + filter.exclude_rows.row_begin(row),
                             filter.exclude_rows.indices + filter.exclude_rows.row_end(row));
          }
          if (filter.eligibility.rows > 0) {
            std::vector<Index>& to = allow_mode ? m.allowed : m.blocked;
            to.insert(to.end(), filter.eligibility.indices + filter.eligibility.row_begin(row),
                      filter.eligibility.indices + filter.eligibility.row_end(row));
          }
          std::sort(m.blocked.begin(), m.blocked.end());
          std::sort(m.allowed.begin(), m.allowed.end());
        }
        for (Offset p = 0; p < n_panels; ++p) {
          const float* panel =
              panels.data() + static_cast<std::size_t>(p) * P * static_cast<std::size_t>(dim);
          const auto base = static_cast<Index>(p * P);
          for (int g = 0; g < groups; ++g) {
            float* thr = s.thr + g * R;
            if (!K::tile(
                    s.a.data() + static_cast<std::size_t>(g) * R * static_cast<std::size_t>(dim),
                    panel, dim, thr, s.buf, s.masks)) {
              continue;
            }
            for (int r = 0; r < R; ++r) {
              std::uint32_t mask = s.masks[r];
              if (mask == 0) continue;
              Member& m = s.members[static_cast<std::size_t>(g * R + r)];
              const float* sc = s.buf + r * P;
              while (mask != 0) {
                const int bit = __builtin_ctz(mask);
                mask &= mask - 1;
                const Index b = base + bit;
                if (b >= n_benefits) break;  // padding lanes; later bits are past the end too
                const float v = sc[bit];
                if (v == kSkip || !global_ok[static_cast<std::size_t>(b)]) continue;
                if (!m.blocked.empty() && std::binary_search(m.blocked.begin(), m.blocked.end(), b))
                  continue;
                if (allow_mode && !std::binary_search(m.allowed.begin(), m.allowed.end(), b))
                  continue;
                const Item item(v, b);
                if (static_cast<int>(m.heap.size()) < k) {
                  m.heap.push_back(item);
                  std::push_heap(m.heap.begin(), m.heap.end(), better);
                } else if (better(item, m.heap.front())) {
                  std::pop_heap(m.heap.begin(), m.heap.end(), better);
                  m.heap.back() = item;
                  std::push_heap(m.heap.begin(), m.heap.end(), better);
                }
              }
              if (static_cast<int>(m.heap.size()) == k) thr[r] = m.heap.front().first;
            }
          }
        }
        for (Index i = 0; i < count; ++i) {
          Member& m = s.members[static_cast<std::size_t>(i)];
          std::sort_heap(m.heap.begin(), m.heap.end(), better);
          const std::size_t at = static_cast<std::size_t>(first + i) * static_cast<std::size_t>(n);
          for (std::size_t j = 0; j < m.heap.size(); ++j) {
            out.ids[at + j] = m.heap[j].second;
            out.scores[at + j] = m.heap[j].first;
          }
        }
      },
      Schedule::dynamic, 1);
#else
  (void)left;
  (void)threads;
  (void)k;
  raise<InputError>("factor_top_k_fused: built without SIMD dispatch");
#endif
  return out;
}

PERKREC_INLINE TopK factor_top_k_fused(const FactorTable& left, Span<const Index> query_rows,
                                       const FactorTable& right, int n, const Filter& filter,
                                       int num_threads) {
#if PERKREC_HAS_AVX2_DISPATCH
  return tiled_top_k<Avx512Tiles>(left, query_rows, right, n, filter, num_threads);
#else
  return tiled_top_k<void>(left, query_rows, right, n, filter, num_threads);
#endif
}

PERKREC_INLINE TopK factor_top_k(const FactorTable& left, Span<const Index> query_rows,
                                 const FactorTable& right, int n, const Filter& filter,
                                 int num_threads, SimdLevel max_level) {
  const int dim = right.dim;
  const int level = static_cast<int>(max_level);
  // Small batches keep the unpacked product: packing the benefit table would cost more.
  if (level >= static_cast<int>(SimdLevel::avx512) && cpu_has_avx512f() &&
      query_rows.size() >= 16 && right.rows > 0 && n <= 1024 && dim > 0) {
    return factor_top_k_fused(left, query_rows, right, n, filter, num_threads);
  }
#if PERKREC_HAS_AVX2_DISPATCH
  if (level >= static_cast<int>(SimdLevel::avx2) && cpu_has_avx2_fma() && query_rows.size() >= 16 &&
      right.rows > 0 && n <= 1024 && dim > 0) {
    // The AVX-512 path's fused tiles at 6 members x 16 benefits: no score row is written.
    return tiled_top_k<Avx2Tiles>(left, query_rows, right, n, filter, num_threads);
  }
  if (level >= static_cast<int>(SimdLevel::avx2) && cpu_has_avx2_fma() && query_rows.size() >= 16 &&
      right.rows > 0) {
    // Batches: benefit factors packed once into 16-row panels, then an AVX2 register-tiled
    // product per block of 64 members, each block's scores filtered and partially sorted
    // while they are still in cache.
    const Offset n_panels = (static_cast<Offset>(right.rows) + 15) / 16;
    std::vector<float> panels(static_cast<std::size_t>(n_panels) * 16 *
                              static_cast<std::size_t>(dim));
    avx2::pack_panels(right.values.data(), right.rows, dim, dim, panels.data());
    return blocked_top_k(
        static_cast<Index>(query_rows.size()), n, right.rows, filter, num_threads, 64,
        [&](Index first, Index count, float* out) {
          std::vector<float> q(static_cast<std::size_t>(count) * static_cast<std::size_t>(dim));
          for (Index i = 0; i < count; ++i) {
            const float* src = left.row(query_rows[static_cast<std::size_t>(first + i)]);
            std::copy(src, src + dim,
                      q.data() + static_cast<std::size_t>(i) * static_cast<std::size_t>(dim));
          }
          avx2::gemm_panels(q.data(), count, dim, panels.data(), n_panels, out, n_panels * 16);
        },
        n_panels * 16);
  }
#endif
  const ConstMapRowMatrixF items = right.matrix();
  const Index n_benefits = right.rows;
  return blocked_top_k(
      static_cast<Index>(query_rows.size()), n, n_benefits, filter, num_threads,
      score_block_rows(n_benefits), [&](Index first, Index count, float* out) {
        RowMatrixF q(count, dim);
        for (Index i = 0; i < count; ++i) {
          q.row(i) = ConstMapVectorF(left.row(query_rows[static_cast<std::size_t>(first + i)]), dim)
                         .transpose();
        }
        MapRowMatrixF scores(out, count, n_benefits);
        scores.noalias() = q * items.transpose();
      });
}

PERKREC_INLINE TopK cosine_top_k(const FactorTable& table, Span<const Index> query_rows, int latent,
                                 int n, const Filter& filter, int num_threads) {
  // Unit rows over the latent columns, built once per call (rows x latent floats).
  FactorTable unit(table.rows, latent);
  parallel_for(0, table.rows, num_threads, [&](Offset r) {
    const auto row = static_cast<Index>(r);
    ConstMapVectorF v(table.row(row), latent);
    const float norm = v.norm();
    MapVectorF u(unit.row(row), latent);
    if (norm > 0 && std::isfinite(norm)) {
      u = v / norm;
    } else {
      u.setZero();
    }
  });
  return factor_top_k(unit, query_rows, unit, n, filter, num_threads);
}

PERKREC_INLINE void write_table(ModelWriter& w, const std::string& name, const FactorTable& t) {
  w.add(name, t.values.data(),
        {static_cast<std::int64_t>(t.rows), static_cast<std::int64_t>(t.dim)});
}

PERKREC_INLINE FactorTable read_table(const ModelReader& r, const std::string& name, Index rows,
                                      int dim) {
  FactorTable t;
  t.rows = rows;
  t.dim = dim;
  t.values = r.vector<float>(name, {rows, dim});
  // Finite and small enough that no dot product of two rows (dim <= 4096) can overflow float.
  constexpr float kMaxMagnitude = 1e15f;
  for (std::size_t i = 0; i < t.values.size(); ++i) {
    if (!std::isfinite(t.values[i]) || std::fabs(t.values[i]) > kMaxMagnitude) {
      r.invalid(concat("array '", name, "' holds a non-finite or too large value at position ", i,
                       " (got ", t.values[i], ", expected |value| <= 1e15)"));
    }
  }
  return t;
}

PERKREC_INLINE void write_csr(ModelWriter& w, const std::string& prefix,
                              const CsrMatrix<float>& m) {
  w.add(prefix + "indptr", m.indptr);
  w.add(prefix + "indices", m.indices);
  w.add(prefix + "data", m.data);
}

PERKREC_INLINE CsrMatrix<float> read_csr(const ModelReader& r, const std::string& prefix,
                                         Index rows, Index cols) {
  CsrMatrix<float> m;
  m.rows = rows;
  m.cols = cols;
  m.indptr = r.vector<Offset>(prefix + "indptr", {static_cast<std::int64_t>(rows) + 1});
  const std::int64_t nnz = rows > 0 ? m.indptr.back() : 0;
  if (nnz < 0) r.invalid(prefix + "indptr: negative size");
  m.indices = r.vector<Index>(prefix + "indices", {nnz});
  m.data = r.vector<float>(prefix + "data", {nnz});
  try {
    m.view().validate((prefix + "csr").c_str());
  } catch (const InputError& e) {
    r.invalid(e.what());
  }
  return m;
}

PERKREC_INLINE CsrMatrix<float> to_owned(const CsrView<float>& m) {
  CsrMatrix<float> out;
  out.rows = m.rows;
  out.cols = m.cols;
  const Offset nnz = m.nnz();
  out.indptr.assign(m.indptr, m.indptr + m.rows + 1);
  if (m.rows == 0) out.indptr.assign(1, 0);
  out.indices.assign(m.indices, m.indices + nnz);
  if (m.data != nullptr) {
    out.data.assign(m.data, m.data + nnz);
  } else {
    out.data.assign(static_cast<std::size_t>(nnz), 1.0f);
  }
  return out;
}

}  // namespace detail
}  // namespace perkrec
