// Part of the compile firewall (see src/perkrec.cpp): the decide definitions.
#if !defined(PERKREC_SEPARATE_COMPILATION)
#error "src/*.cpp are built with PERKREC_SEPARATE_COMPILATION"
#endif

#include "perkrec/perkrec.hpp"

#include "perkrec/decide/allocator_impl.hpp"
#include "perkrec/decide/benefit_planner_file_impl.hpp"
#include "perkrec/decide/calibration_impl.hpp"
#include "perkrec/decide/explain_impl.hpp"
#include "perkrec/decide/planner_impl.hpp"
#include "perkrec/decide/policy_impl.hpp"
#include "perkrec/decide/ranker_impl.hpp"
#include "perkrec/decide/types_impl.hpp"
