// perkrec: benefit recommendation for loyalty and membership programs.
// Including this header gives the whole public API (header-only by default; see
// core/config.hpp for separate compilation).
#pragma once

#include "perkrec/version.hpp"

#include "perkrec/core/config.hpp"
#include "perkrec/core/error.hpp"
#include "perkrec/core/json.hpp"
#include "perkrec/core/math.hpp"
#include "perkrec/core/progress.hpp"
#include "perkrec/core/random.hpp"
#include "perkrec/core/threading.hpp"
#include "perkrec/core/types.hpp"

#include "perkrec/io/model_file.hpp"
#include "perkrec/io/serializable.hpp"

#include "perkrec/data/benefit_dimensions.hpp"
#include "perkrec/data/catalog.hpp"
#include "perkrec/data/event_log.hpp"
#include "perkrec/data/id_map.hpp"
#include "perkrec/data/simulator.hpp"
#include "perkrec/data/split.hpp"
#include "perkrec/data/user_table.hpp"

#include "perkrec/features/interaction_matrix.hpp"
#include "perkrec/features/feature_encoder.hpp"
#include "perkrec/features/wide_table.hpp"

#include "perkrec/models/als.hpp"
#include "perkrec/models/bpr.hpp"
#include "perkrec/models/clv.hpp"
#include "perkrec/models/factors.hpp"
#include "perkrec/models/fm.hpp"
#include "perkrec/models/item_knn.hpp"
#include "perkrec/models/popularity.hpp"
#include "perkrec/models/preference.hpp"
#include "perkrec/models/purchase.hpp"
#include "perkrec/models/recommender.hpp"
#include "perkrec/models/segments.hpp"
#include "perkrec/models/timing.hpp"
#include "perkrec/models/uplift.hpp"
#include "perkrec/decide/types.hpp"
#include "perkrec/decide/policy.hpp"
#include "perkrec/decide/allocator.hpp"
#include "perkrec/decide/ranker.hpp"
#include "perkrec/decide/explain.hpp"
#include "perkrec/decide/calibration.hpp"
#include "perkrec/decide/planner.hpp"
#include "perkrec/decide/benefit_planner_file.hpp"

#include "perkrec/eval/metrics.hpp"
#include "perkrec/eval/uplift_metrics.hpp"
#include "perkrec/eval/ope.hpp"
#include "perkrec/eval/experiment.hpp"
