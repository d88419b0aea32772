// The integer optimum of an allocation problem (decide/allocator.hpp) for small instances: a
// reference for the dual solver and for tests.
//
// Example:
//   perkrec::Allocation best = perkrec::allocate_exact(candidates, k);
//   double gap = best.value - perkrec::allocate(candidates, k).value;  // >= 0
//
// Thread safety: reentrant.
#pragma once

#include <cstdint>

#include "perkrec/core/config.hpp"
#include "perkrec/decide/allocator.hpp"

namespace perkrec {

/// The integer optimum by depth-first branch and bound over members (subsets of each member's
/// candidates, bounded by the Lagrangian relaxation of the rest). For small instances: throws
/// InputError when more than `max_nodes` nodes would be needed. dual_bound = value (proven).
Allocation allocate_exact(const CandidatesView& c, const AllocationConstraints& k,
                          std::int64_t max_nodes = 10'000'000);

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/decide/allocator_exact_impl.hpp"
#endif
