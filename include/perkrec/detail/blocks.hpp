// Fixed block partitions for deterministic parallel passes. Internal.
#pragma once

#include <algorithm>

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

}  // namespace perkrec::detail
