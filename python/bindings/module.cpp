// perkrec._core: the compiled half of the Python package. The public Python API lives in
// python/perkrec/; these bindings only convert arguments and release the GIL.
#include "bindings.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "perkrec compiled core (use the perkrec package, not this module directly)";
  perkrec::python::bind_core(m);
  perkrec::python::bind_data(m);
  perkrec::python::bind_simulator(m);
  perkrec::python::bind_behavior(m);  // before features: the encoder takes its classes
  perkrec::python::bind_features(m);
  perkrec::python::bind_models(m);
  perkrec::python::bind_eval(m);
  perkrec::python::bind_causal(m);
  perkrec::python::bind_fm(m);
  perkrec::python::bind_calibrators(m);
  perkrec::python::bind_cf(m);
  perkrec::python::bind_preference(m);
  perkrec::python::bind_decide_types(m);
  perkrec::python::bind_policy(m);
  perkrec::python::bind_allocator(m);
  perkrec::python::bind_ranker(m);
  perkrec::python::bind_planner(m);
  perkrec::python::bind_uplift(m);
  perkrec::python::bind_clv(m);
  perkrec::python::bind_pipeline(m);
  perkrec::python::bind_io(m);  // last: it returns objects of the classes bound above
}
