"""Each parameter is declared once, in C++ (include/perkrec/core/params.hpp): the Python
signatures restate the defaults for readability, and this test fails when one drifts from the
C++ default (``_core.default_params()``: each params struct's default JSON)."""

import inspect
import json

import pytest

import perkrec
from perkrec import _core

# Python class -> (C++ params struct, C++ keys the signature does not take).
CLASSES = {
    perkrec.Popularity: ("PopularityParams", set()),
    perkrec.ALS: ("ALSParams", set()),
    perkrec.BPR: ("BPRParams", set()),
    perkrec.ItemKNN: ("ItemKNNParams", set()),
    perkrec.FM: ("FMParams", {"field_aware"}),  # the class (FM or FFM) sets it
    perkrec.FFM: ("FMParams", {"field_aware"}),
    perkrec.FMCV: ("FMCVParams", set()),
    perkrec.PreferenceModel: ("PreferenceParams", set()),
    perkrec.ScoreBlend: ("ScoreBlendParams", set()),
    # Planner takes the allocator, schedule and explain settings from its policy.
    perkrec.Planner: (
        "PlannerParams",
        {"allocator", "max_nodes", "default_hour", "min_validity_days", "explain"},
    ),
    # UpliftModel: every FM key defaults to None (= the C++ default); only its own keys here.
    perkrec.UpliftModel: ("UpliftParams", {"base"}),
    # Pacer: start and end have no default; budget=None is the C++ infinite budget.
    perkrec.Pacer: ("PacingParams", {"start", "end"}),
    # Functions: None = the C++ default (event_weights: DEFAULT_EVENT_WEIGHTS, tested below).
    perkrec.interaction_matrix: ("InteractionParams", set()),
    perkrec.behavior_features: ("BehaviorFeatureParams", set()),
    perkrec.behavior_cf_features: ("BehaviorCFParams", set()),
    perkrec.off_policy_value: ("OffPolicyParams", set()),
    perkrec.wide_table: ("WideTableParams", set()),
    # simulate: `start` is a date (start_time in C++); archetype_mix=None is the C++ mix.
    perkrec.simulate: ("SimulatorParams", {"start_time"}),
    perkrec.CLVModel: ("CLVParams", set()),
    perkrec.InterestModel: ("InterestParams", set()),
}


def cpp_defaults(struct: str) -> dict:
    return json.loads(_core.default_params()[struct])


def _same(python_default, cpp_default) -> bool:
    if isinstance(python_default, bool) or isinstance(cpp_default, bool):
        return python_default is cpp_default
    if isinstance(python_default, (tuple, list)):
        return list(python_default) == cpp_default
    return python_default == cpp_default


def mismatches(cls, struct: str, not_taken=frozenset()) -> list:
    """Differences between `cls`'s signature defaults and the C++ defaults of `struct`:
    parameters whose default differs, and C++ keys the signature lacks."""
    cpp = cpp_defaults(struct)
    signature = inspect.signature(cls.__init__ if inspect.isclass(cls) else cls).parameters
    problems = []
    for key, value in cpp.items():
        if key in not_taken:
            continue
        if key not in signature:
            problems.append(
                f"{cls.__name__}: no parameter {key!r} (C++ {struct}.{key} = {value!r})"
            )
            continue
        default = signature[key].default
        if default is None:
            continue  # None = the C++ default (UpliftModel's FM keys, simulate's archetype_mix)
        if not _same(default, value):
            problems.append(f"{cls.__name__}({key}={default!r}) but C++ {struct}.{key} = {value!r}")
    return problems


@pytest.mark.parametrize("cls", list(CLASSES), ids=lambda c: c.__name__)
def test_python_defaults_equal_cpp_defaults(cls):
    struct, not_taken = CLASSES[cls]
    assert mismatches(cls, struct, not_taken) == []


def test_uplift_fm_keys_default_to_cpp():
    """UpliftModel's FM keys default to None, i.e. to FMParams' defaults: the C++ model built
    from the Python defaults holds exactly the C++ default params."""
    assert json.loads(perkrec.UpliftModel()._impl.get_params()) == cpp_defaults("UpliftParams")


def test_default_event_weights_are_the_cpp_weights():
    weights = cpp_defaults("InteractionParams")["event_weights"]
    assert perkrec.DEFAULT_EVENT_WEIGHTS == dict(zip(_core.EVENT_TYPES, weights))


def test_a_drifted_default_is_reported():
    class DriftedALS(perkrec.ALS):
        def __init__(
            self,
            factors: int = 65,
            regularization: float = 0.01,
            alpha: float = 1.0,
            iterations: int = 15,
            cg_steps: int = 3,
            calculate_training_loss: bool = False,
            num_threads: int = 0,
        ):
            super().__init__(factors=factors)

    problems = mismatches(DriftedALS, "ALSParams")
    assert any("factors=65" in p for p in problems)
    assert any("no parameter 'seed'" in p for p in problems)


def test_every_declared_struct_is_exported():
    names = set(_core.default_params())
    assert {struct for struct, _ in CLASSES.values()} <= names
    for name, text in _core.default_params().items():
        assert isinstance(json.loads(text), dict), name


def test_model_params_are_the_cpp_defaults():
    """A default-constructed model's get_params() is exactly the C++ default JSON."""
    assert perkrec.ALS().get_params() == cpp_defaults("ALSParams")
    assert perkrec.BPR().get_params() == cpp_defaults("BPRParams")
    assert perkrec.ItemKNN().get_params() == cpp_defaults("ItemKNNParams")
    assert perkrec.Popularity().get_params() == cpp_defaults("PopularityParams")
