// Part of the compile firewall (see src/perkrec.cpp): the features and eval definitions.
#if !defined(PERKREC_SEPARATE_COMPILATION)
#error "src/*.cpp are built with PERKREC_SEPARATE_COMPILATION"
#endif

#include "perkrec/perkrec.hpp"

#include "perkrec/eval/experiment_impl.hpp"
#include "perkrec/eval/metrics_impl.hpp"
#include "perkrec/eval/ope_impl.hpp"
#include "perkrec/eval/uplift_metrics_impl.hpp"
#include "perkrec/features/behavior_features_impl.hpp"
#include "perkrec/features/feature_encoder_impl.hpp"
#include "perkrec/features/interaction_matrix_impl.hpp"
#include "perkrec/features/wide_table_impl.hpp"
