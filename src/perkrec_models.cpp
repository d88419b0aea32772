// Part of the compile firewall (see src/perkrec.cpp): the models definitions.
#if !defined(PERKREC_SEPARATE_COMPILATION)
#error "src/*.cpp are built with PERKREC_SEPARATE_COMPILATION"
#endif

#include "perkrec/perkrec.hpp"

#include "perkrec/models/als_impl.hpp"
#include "perkrec/models/bpr_impl.hpp"
#include "perkrec/models/clv_impl.hpp"
#include "perkrec/models/factors_impl.hpp"
#include "perkrec/models/fm_impl.hpp"
#include "perkrec/models/item_knn_impl.hpp"
#include "perkrec/models/popularity_impl.hpp"
#include "perkrec/models/preference_impl.hpp"
#include "perkrec/models/segments_impl.hpp"
#include "perkrec/models/purchase_impl.hpp"
#include "perkrec/models/uplift_impl.hpp"
