// The compile firewall: with PERKREC_SEPARATE_COMPILATION defined, the public headers only
// declare, and this file compiles every definition once. The Python module and the test
// binary link it; header-only users never need it.
#if !defined(PERKREC_SEPARATE_COMPILATION)
#error "src/perkrec.cpp is built with PERKREC_SEPARATE_COMPILATION"
#endif

#include "perkrec/perkrec.hpp"

#include "perkrec/core/json_impl.hpp"
#include "perkrec/data/benefit_dimensions_impl.hpp"
#include "perkrec/data/catalog_impl.hpp"
#include "perkrec/data/event_log_impl.hpp"
#include "perkrec/data/id_map_impl.hpp"
#include "perkrec/data/simulator_impl.hpp"
#include "perkrec/data/split_impl.hpp"
#include "perkrec/data/user_table_impl.hpp"
#include "perkrec/decide/allocator_impl.hpp"
#include "perkrec/decide/explain_impl.hpp"
#include "perkrec/decide/policy_impl.hpp"
#include "perkrec/decide/ranker_impl.hpp"
#include "perkrec/decide/types_impl.hpp"
#include "perkrec/eval/experiment_impl.hpp"
#include "perkrec/eval/metrics_impl.hpp"
#include "perkrec/eval/ope_impl.hpp"
#include "perkrec/eval/uplift_metrics_impl.hpp"
#include "perkrec/features/interaction_matrix_impl.hpp"
#include "perkrec/features/wide_table_impl.hpp"
#include "perkrec/io/model_file_impl.hpp"
#include "perkrec/models/als_impl.hpp"
#include "perkrec/models/bpr_impl.hpp"
#include "perkrec/models/factors_impl.hpp"
#include "perkrec/models/fm_impl.hpp"
#include "perkrec/models/item_knn_impl.hpp"
#include "perkrec/models/popularity_impl.hpp"
#include "perkrec/models/preference_impl.hpp"
#include "perkrec/models/segments_impl.hpp"
#include "perkrec/models/timing_impl.hpp"
#include "perkrec/models/uplift_impl.hpp"
