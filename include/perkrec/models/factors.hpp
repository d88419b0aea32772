// Shared machinery of the collaborative-filtering models (ALS, BPR, ItemKNN): row-major float
// factor tables, the blocked fused top-K (a block of members x all benefits scored at once,
// then filtered and partially sorted per member), cosine neighbours over factor rows, and
// small CSR helpers. Internal: no API promise beyond what the models document.
#pragma once

// perkrec runs its own parallel loops with an explicit thread count; Eigen's internal OpenMP
// (used by large products) would ignore it, so it is switched off before Eigen is included.
#ifndef EIGEN_DONT_PARALLELIZE
#define EIGEN_DONT_PARALLELIZE
#endif
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "perkrec/core/error.hpp"
#include "perkrec/core/params.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/core/types.hpp"
#include "perkrec/detail/simd.hpp"
#include "perkrec/detail/simd512.hpp"
#include "perkrec/io/model_file.hpp"
#include "perkrec/models/recommender.hpp"

namespace perkrec {
namespace detail {

using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapRowMatrixF = Eigen::Map<RowMatrixF>;
using ConstMapRowMatrixF = Eigen::Map<const RowMatrixF>;
using MapVectorF = Eigen::Map<Eigen::VectorXf>;
using ConstMapVectorF = Eigen::Map<const Eigen::VectorXf>;

/// A rows x dim float table, row-major and contiguous (row r at values[r * dim]).
struct FactorTable {
  Index rows = 0;
  int dim = 0;
  std::vector<float> values;

  FactorTable() = default;
  FactorTable(Index r, int d)
      : rows(r), dim(d), values(static_cast<std::size_t>(r) * static_cast<std::size_t>(d), 0.0f) {}
  float* row(Index r) {
    return values.data() + static_cast<std::size_t>(r) * static_cast<std::size_t>(dim);
  }
  const float* row(Index r) const {
    return values.data() + static_cast<std::size_t>(r) * static_cast<std::size_t>(dim);
  }
  ConstMapRowMatrixF matrix() const { return ConstMapRowMatrixF(values.data(), rows, dim); }
  MapRowMatrixF matrix() { return MapRowMatrixF(values.data(), rows, dim); }
  /// Grows to `new_rows` rows (new rows zero); never shrinks.
  void grow(Index new_rows) {
    if (new_rows <= rows) return;
    values.resize(static_cast<std::size_t>(new_rows) * static_cast<std::size_t>(dim), 0.0f);
    rows = new_rows;
  }
  /// Index of the first row holding a non-finite value, or -1.
  Index first_non_finite(int num_threads) const;
};

/// Validates a CSR of non-negative, finite values with rows x cols = (want_rows, want_cols)
/// (-1 = any). Throws InputError naming `what`.
void check_interactions(const CsrView<float>& m, Index want_rows, Index want_cols, const char* what,
                        bool require_sorted = false);

/// Validates a list of row ids: each >= 0, and < limit when limit >= 0; duplicates refused.
void check_ids(Span<const Index> ids, Index limit, const char* what, const char* noun);

/// The transpose of a CSR (columns become rows), indices sorted within rows.
CsrMatrix<float> transpose(const CsrView<float>& m, int num_threads);

/// Splits rows [0, rows) into contiguous chunks of roughly equal cost (row nnz + `row_cost`),
/// for load-balanced parallel loops over skewed matrices. Returns chunk boundaries.
std::vector<Index> balanced_chunks(const CsrView<float>& m, Index chunks, Offset row_cost);

/// Selects the top-k of one scored row, honouring the filter's per-row and global masks (see
/// models/recommender.hpp). Writes k ids/scores (padded with -1 / -inf).
class RowSelector {
 public:
  void select(const Filter& filter, const std::vector<std::uint8_t>& global_ok, Index row,
              float* scores, Index n_benefits, int k, int n, Index* out_ids, float* out_scores);

 private:
  std::vector<std::uint8_t> allowed_;
  std::vector<std::pair<float, Index>> heap_;
};

/// Global allow/exclude mask of a filter (1 = may be returned).
std::vector<std::uint8_t> global_mask(const Filter& filter, Index n_benefits);

/// Fused, blocked top-K: `score_block(first_row, count, out)` writes count x n_benefits scores
/// (row-major) for rows [first_row, first_row + count); it runs concurrently on disjoint
/// blocks and must only read shared state. Blocks of `block` rows amortize reading the benefit
/// table (a matrix-matrix product instead of one matrix-vector product per member). `stride`
/// (>= n_benefits, 0 = n_benefits) is the distance between score rows in `out`.
template <class ScoreBlock>
TopK blocked_top_k(Index rows, int n, Index n_benefits, const Filter& filter, int num_threads,
                   Index block, ScoreBlock&& score_block, Offset stride = 0) {
  if (stride < n_benefits) stride = n_benefits;
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
  if (rows == 0 || n == 0) return out;
  const std::vector<std::uint8_t> global_ok = global_mask(filter, n_benefits);
  block = std::max<Index>(1, block);
  const Index n_blocks = (rows + block - 1) / block;
  struct Scratch {
    std::vector<float> scores;
    RowSelector selector;
  };
  std::vector<Scratch> scratch(static_cast<std::size_t>(threads));
  parallel_for(
      0, n_blocks, threads,
      [&](Offset b, int thread) {
        Scratch& s = scratch[static_cast<std::size_t>(thread)];
        const Index first = static_cast<Index>(b) * block;
        const Index count = std::min<Index>(block, rows - first);
        s.scores.resize(static_cast<std::size_t>(count) * static_cast<std::size_t>(stride));
        score_block(first, count, s.scores.data());
        for (Index i = 0; i < count; ++i) {
          const std::size_t base =
              static_cast<std::size_t>(first + i) * static_cast<std::size_t>(n);
          s.selector.select(
              filter, global_ok, first + i,
              s.scores.data() + static_cast<std::size_t>(i) * static_cast<std::size_t>(stride),
              n_benefits, k, n, out.ids.data() + base, out.scores.data() + base);
        }
      },
      Schedule::dynamic, 1);
  return out;
}

/// Rows per block in blocked_top_k for a table of `n_benefits` rows: keeps a block's scores
/// (block x n_benefits floats) around 1 MiB, between 8 and 256 rows.
inline Index score_block_rows(Index n_benefits) {
  const Index by_cache = static_cast<Index>(
      (std::size_t{1} << 18) / static_cast<std::size_t>(std::max<Index>(1, n_benefits)));
  return std::max<Index>(8, std::min<Index>(256, by_cache));
}

/// Dot-product top-K of `queries` rows of `left` against every row of `right` (the first
/// `dim` columns of both). `query_rows[i]` selects the left row of result row i. `max_level`
/// caps the instruction-set path (tests force each path with it; results are the same).
TopK factor_top_k(const FactorTable& left, Span<const Index> query_rows, const FactorTable& right,
                  int n, const Filter& filter, int num_threads,
                  SimdLevel max_level = SimdLevel::best);

/// The AVX-512 path of factor_top_k: scores are computed 12 members x 32 benefits at a time in
/// registers and only those at or above each member's running k-th best reach the filter and
/// heap, so no score row is ever stored. Requires cpu_has_avx512f().
TopK factor_top_k_fused(const FactorTable& left, Span<const Index> query_rows,
                        const FactorTable& right, int n, const Filter& filter, int num_threads);

/// Cosine top-K over the first `latent` columns (a zero row has similarity 0 to everything).
TopK cosine_top_k(const FactorTable& table, Span<const Index> query_rows, int latent, int n,
                  const Filter& filter, int num_threads);

/// Writes a factor table as a 2-D f32 array `name`.
void write_table(ModelWriter& w, const std::string& name, const FactorTable& t);
/// Reads it back, checking the shape and that every value is finite.
FactorTable read_table(const ModelReader& r, const std::string& name, Index rows, int dim);

/// Reads a CSR written by write_csr (validated: structure, index range, finiteness).
void write_csr(ModelWriter& w, const std::string& prefix, const CsrMatrix<float>& m);
CsrMatrix<float> read_csr(const ModelReader& r, const std::string& prefix, Index rows, Index cols);

/// Copies a CSR view into an owned matrix.
CsrMatrix<float> to_owned(const CsrView<float>& m);

}  // namespace detail
}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/models/factors_impl.hpp"
#endif
