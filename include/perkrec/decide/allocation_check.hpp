// The allocation checker: whether a plan respects every limit of its AllocationConstraints
// (decide/allocator.hpp). The tests and services use it as the invariant of every allocator.
//
// Example:
//   assert(perkrec::check_allocation(candidates, k, perkrec::allocate(candidates, k)).empty());
//
// Thread safety: reentrant.
#pragma once

#include <string>

#include "perkrec/core/config.hpp"
#include "perkrec/decide/allocator.hpp"

namespace perkrec {

/// "" when `a` is a valid allocation of `c` under `k` (every chosen entry is a candidate of
/// its member, no duplicates, and budget, inventory, member capacity, kind caps, stacking
/// groups, segment quotas and min_return_per_cost hold; value and cost match the entries),
/// else a description of the first violation.
std::string check_allocation(const CandidatesView& c, const AllocationConstraints& k,
                             const Allocation& a);

}  // namespace perkrec

#ifdef PERKREC_HEADER_ONLY
#include "perkrec/decide/allocation_check_impl.hpp"
#endif
