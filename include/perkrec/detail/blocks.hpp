// Fixed block partitions for deterministic parallel passes. Internal.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "perkrec/core/types.hpp"

namespace perkrec::detail {

/// Splits [0, n) into a number of blocks that depends only on n (never on threads), so that
/// per-block partial results combined in block order are reproducible.
struct Blocks {
  Offset n = 0;
  Offset count = 0;
  explicit Blocks(Offset n_items, Offset min_block = 1 << 16, Offset max_blocks = 256)
      : n(n_items) {
    count = n <= 0 ? 0 : std::min<Offset>(max_blocks, (n + min_block - 1) / min_block);
  }
  Offset begin(Offset b) const { return n * b / count; }
  Offset end(Offset b) const { return n * (b + 1) / count; }
};

/// The scan of a parallel counting sort. `cursor` holds each block's count per bucket
/// (cursor[blk * n_buckets + bk]); it becomes each block's first write position per bucket
/// (buckets in order, blocks in order within a bucket, so the sort is stable). Returns the
/// n_buckets + 1 bucket starts (the last is the total).
inline std::vector<Offset> bucket_cursors(std::vector<Offset>& cursor, std::size_t n_blocks,
                                          std::size_t n_buckets) {
  std::vector<Offset> bucket_start(n_buckets + 1, 0);
  Offset total = 0;
  for (std::size_t bk = 0; bk < n_buckets; ++bk) {
    bucket_start[bk] = total;
    for (std::size_t blk = 0; blk < n_blocks; ++blk) {
      const Offset count = cursor[blk * n_buckets + bk];
      cursor[blk * n_buckets + bk] = total;
      total += count;
    }
  }
  bucket_start[n_buckets] = total;
  return bucket_start;
}

}  // namespace perkrec::detail
