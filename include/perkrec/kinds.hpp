// The kinds a model-file container can hold, listed once: every class that derives from
// Serializable and is saved on its own. Loading "whatever the file holds" goes through
// read_any (the Python package's perkrec.load, the fuzz target), so a new kind is added here
// and nowhere else in C++ (the Python wrapper class registers itself, see
// python/perkrec/_serializable.py).
//
//   perkrec::read_any(reader, [](auto&& object) { ... });  // object: the kind's class
#pragma once

#include <string>
#include <tuple>

#include "perkrec/core/error.hpp"
#include "perkrec/data/behavior_log.hpp"
#include "perkrec/data/catalog.hpp"
#include "perkrec/data/event_log.hpp"
#include "perkrec/data/id_map.hpp"
#include "perkrec/data/item_catalog.hpp"
#include "perkrec/data/user_table.hpp"
#include "perkrec/decide/benefit_planner_file.hpp"
#include "perkrec/io/model_file.hpp"
#include "perkrec/models/als.hpp"
#include "perkrec/models/bpr.hpp"
#include "perkrec/models/clv.hpp"
#include "perkrec/models/fm.hpp"
#include "perkrec/models/interest.hpp"
#include "perkrec/models/item_knn.hpp"
#include "perkrec/models/popularity.hpp"
#include "perkrec/models/preference.hpp"
#include "perkrec/models/uplift.hpp"

namespace perkrec {

/// Every kind a container may name, in the order read_any tries them.
using SavedKinds = std::tuple<IdMap, Catalog, UserTable, EventLog, ItemCatalog, BehaviorLog,
                              BenefitItems, Popularity, FM, ALS, BPR, ItemKNN, PreferenceModel,
                              UpliftModel, CLVModel, InterestModel, BenefitPlannerFile>;

namespace detail {
template <class F, class First, class... Rest>
decltype(auto) read_kind(const ModelReader& r, F& f) {
  if (r.kind() == First::kind) return f(First::read(r, ""));
  if constexpr (sizeof...(Rest) > 0) {
    return read_kind<F, Rest...>(r, f);
  } else {
    throw ModelFormatError(ModelFormatCode::wrong_kind,
                           "load: this version of perkrec cannot load a '" + r.kind() + "'");
  }
}

template <class F, class... Kinds>
decltype(auto) read_kinds(const ModelReader& r, F& f, std::tuple<Kinds...>*) {
  return read_kind<F, Kinds...>(r, f);
}
}  // namespace detail

/// Reads the object of the kind `r` names (its top-level section) and returns f(object), the
/// object passed as an rvalue. ModelFormatError(wrong_kind) for a kind not in SavedKinds; the
/// kind's own read errors otherwise.
template <class F>
decltype(auto) read_any(const ModelReader& r, F&& f) {
  return detail::read_kinds(r, f, static_cast<SavedKinds*>(nullptr));
}

}  // namespace perkrec
