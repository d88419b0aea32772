// perkrec._core: the compiled half of the Python package. The public Python API lives in
// python/perkrec/; these bindings only convert arguments and release the GIL.
#include "bindings.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "perkrec compiled core (use the perkrec package, not this module directly)";
  perkrec::python::bind_core(m);
  perkrec::python::bind_data(m);
  perkrec::python::bind_simulator(m);
  perkrec::python::bind_behavior(m);  // before features: the encoder takes its classes
  perkrec::python::bind_behavior_cf(m);
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
  perkrec::python::bind_interest(m);
  perkrec::python::bind_pipeline(m);
  perkrec::python::bind_io(m);  // last: it returns objects of the classes bound above
  // The C++ defaults of every declared params struct (core/params.hpp), as JSON text: the
  // Python signatures are checked against them (tests/python/test_params_defaults.py).
  m.def(
      "default_params",
      [] {
        using namespace perkrec;
        pybind11::dict out;
        auto add = [&](const char* name, const Json& j) { out[name] = j.dump(); };
        add("ALSParams", params::fields_to_json(ALSParams{}));
        add("BPRParams", params::fields_to_json(BPRParams{}));
        add("ItemKNNParams", params::fields_to_json(ItemKNNParams{}));
        add("PopularityParams", params::fields_to_json(PopularityParams{}));
        add("FMParams", params::fields_to_json(FMParams{}));
        add("FMCVParams", params::fields_to_json(FMCVParams{}));
        add("UpliftParams", params::fields_to_json(UpliftParams{}));
        add("PreferenceParams", params::fields_to_json(PreferenceParams{}));
        add("BenefitDimensionsParams", params::fields_to_json(BenefitDimensionsParams{}));
        add("ScoreBlendParams", params::fields_to_json(ScoreBlendParams{}));
        add("RankerParams", params::fields_to_json(RankerParams{}));
        add("ScheduleParams", params::fields_to_json(ScheduleParams{}));
        add("AllocatorParams", params::fields_to_json(AllocatorParams{}));
        add("PlannerParams", params::fields_to_json(PlannerParams{}));
        add("SimulatorParams", params::fields_to_json(SimulatorParams{}));
        add("OffPolicyParams", params::fields_to_json(OffPolicyParams{}));
        add("ExperimentParams", params::fields_to_json(ExperimentParams{}));
        add("WideTableParams", params::fields_to_json(WideTableParams{}));
        add("PacingParams", params::fields_to_json(PacingParams{}));
        add("InteractionParams", params::fields_to_json(InteractionParams{}));
        add("BehaviorFeatureParams", params::fields_to_json(BehaviorFeatureParams{}));
        add("BehaviorCFParams", params::fields_to_json(BehaviorCFParams{}));
        add("InterestParams", params::fields_to_json(InterestParams{}));
        add("CLVParams", CLVParams{}.to_json());  // its fields plus "model" (forecaster + model)
        return out;
      },
      "The C++ defaults of each params struct: {struct name: JSON text}.");
}
