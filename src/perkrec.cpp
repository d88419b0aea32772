// The compile firewall: with PERKREC_SEPARATE_COMPILATION defined, the public headers only
// declare, and the files of src/ compile every definition once, split by layer so that a
// parallel build compiles them side by side: this file (core, data, io),
// perkrec_features_eval.cpp, perkrec_models.cpp and perkrec_decide.cpp. Together they are the
// perkrec::perkrec_compiled library (installed beside the header-only perkrec::perkrec); the
// Python module and the test binary link it. Each *_impl.hpp is included in exactly one file.
#if !defined(PERKREC_SEPARATE_COMPILATION)
#error "src/*.cpp are built with PERKREC_SEPARATE_COMPILATION"
#endif

#include "perkrec/perkrec.hpp"

#include "perkrec/core/json_impl.hpp"
#include "perkrec/data/behavior_log_impl.hpp"
#include "perkrec/data/benefit_dimensions_impl.hpp"
#include "perkrec/data/catalog_impl.hpp"
#include "perkrec/data/event_log_impl.hpp"
#include "perkrec/data/id_map_impl.hpp"
#include "perkrec/data/item_catalog_impl.hpp"
#include "perkrec/data/simulator_impl.hpp"
#include "perkrec/data/split_impl.hpp"
#include "perkrec/data/user_table_impl.hpp"
#include "perkrec/io/model_file_impl.hpp"
