"""perkrec.BenefitPlanner.fit runs in C++ (decide/benefit_planner_fit.hpp): on small simulated
programs, in every configuration, it writes the model file the former Python orchestration
(tests/python/pipeline_fit_reference.py) writes, byte for byte."""

import json

import numpy as np
import pandas as pd
import pytest
from pipeline_fit_reference import DEFAULT_BEHAVIOR_FIELD, DEFAULT_FIELDS, ReferencePlanner

import perkrec
from perkrec import _core
from perkrec.demo import TEST_DAYS, demo_policy


@pytest.fixture(scope="module")
def program():
    return perkrec.simulate(n_users=400, days=100, seed=11, num_threads=2)


@pytest.fixture(scope="module")
def behavior_program():
    return perkrec.simulate(n_users=300, days=100, seed=7, behavior=True, num_threads=2)


def _cut(program):
    return program.events.time_range[1] - pd.Timedelta(days=TEST_DAYS)


def _both(program, user_table=True, behavior=None, **kwargs):
    args = (demo_policy(program.events.n_users),)
    kwargs = dict(seed=3, num_threads=2, **kwargs)
    fit = dict(cut_time=_cut(program), behavior=behavior)
    users = program.users if user_table else None
    new = perkrec.BenefitPlanner(*args, **kwargs).fit(program.events, program.catalog, users, **fit)
    ref = ReferencePlanner(*args, **kwargs).fit(program.events, program.catalog, users, **fit)
    return new, ref


def _same_file(new, ref):
    a, b = new._file("test"), ref._file("test")
    assert json.loads(a.config_json) == json.loads(b.config_json)
    assert a.fm.metadata == b.fm.metadata  # the encoder, as Python's json.dumps wrote it
    for name in ("order_value", "holdout_user", "holdout_benefit", "holdout_predicted"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.holdout_weight, b.holdout_weight)
    np.testing.assert_array_equal(a.incremental_share, b.incremental_share)
    assert a.fm.to_bytes() == b.fm.to_bytes()
    assert a.preference.to_bytes() == b.preference.to_bytes()
    assert a.preference_weight == b.preference_weight
    # the fit's unclipped weight (not in the file), what bench/plan_vs_oracle.py prints
    unclipped = new._state["preference_weight_unclipped"]
    assert unclipped == ref._state["preference_weight_unclipped"]
    assert (unclipped is None) == (a.preference_weight is None)
    np.testing.assert_array_equal(a.benefit_level, b.benefit_level)
    assert new.to_bytes() == ref.to_bytes()


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"segment_field": False},
        {"weighting": "none"},
        {"incremental": "control"},
        {"preference_offset": True},
        {"pooled": False, "shrink": False, "early_stopping": False},
        {"user_table": False},
        {"user_table": False, "segment_field": False, "preference_offset": True},
        {"benefit_level": True},
        {"benefit_level": True, "shrink": False, "weighting": "none"},
    ],
    ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "default",
)
def test_the_cpp_fit_writes_the_python_fits_file_byte_for_byte(program, kwargs):
    new, ref = _both(program, **kwargs)
    _same_file(new, ref)
    if new.params["segment_field"]:
        times, segments = new._segment_asof
        ref_times, ref_segments = ref._segment_asof
        np.testing.assert_array_equal(times, ref_times)
        assert [s.tolist() for s in segments] == [s.tolist() for s in ref_segments]
    else:
        assert new._segment_asof is None


def test_with_behaviour_the_files_are_identical_too(behavior_program):
    p = behavior_program
    new, ref = _both(p, behavior=(p.behavior, p.items, p.benefit_items))
    assert any(f["kind"] == "behavior" for f in new.encoder.fields)
    _same_file(new, ref)
    assert new.behavior[0] is p.behavior


def test_the_default_fields_come_from_cpp_unchanged():
    assert perkrec.fm.DEFAULT_FIELDS == DEFAULT_FIELDS
    assert perkrec.pipeline.DEFAULT_BEHAVIOR_FIELD == DEFAULT_BEHAVIOR_FIELD


def test_the_python_defaults_are_the_cpp_params_defaults():
    cpp = json.loads(_core.benefit_planner_default_config())
    assert (cpp.pop("cut_time"), cpp.pop("end_time")) == (0, 0)
    assert perkrec.BenefitPlanner()._fit_config() == cpp


def test_the_cpp_fits_data_errors_name_the_field_before_any_work(program):
    log, catalog = program.events, program.catalog
    end = log.time_range[1]
    bp = perkrec.BenefitPlanner(num_threads=2)
    with pytest.raises(perkrec.InputError, match="no issues before cut_time"):
        bp.fit(log, catalog, cut_time=log.time_range[0])
    with pytest.raises(perkrec.InputError, match="early stopping"):
        bp.fit(log, catalog, cut_time=end)
    with pytest.raises(perkrec.InputError, match="shrinkage"):
        perkrec.BenefitPlanner(early_stopping=False, num_threads=2).fit(log, catalog, cut_time=end)
    with pytest.raises(perkrec.InputError, match="shrinkage and the benefit levels"):
        perkrec.BenefitPlanner(early_stopping=False, shrink=False, num_threads=2).fit(
            log, catalog, cut_time=end
        )
    with pytest.raises(perkrec.InputError, match="pooled effects"):
        perkrec.BenefitPlanner(
            early_stopping=False, shrink=False, benefit_level=False, num_threads=2
        ).fit(log, catalog, cut_time=end)
    with pytest.raises(perkrec.InputError, match="cut_time must not be after"):
        bp.fit(log, catalog, cut_time=end + pd.Timedelta(days=1))
    # a numeric column under a categorical default field: named, before any fitting
    frame = program.users.to_frame()
    frame["tier"] = np.arange(len(frame)) % 3
    numeric_tier = perkrec.UserTable.from_frame(frame)
    with pytest.raises(perkrec.InputError, match="column 'tier' is numeric.*field 'tier'"):
        bp.fit(log, catalog, numeric_tier)
    assert not bp.fitted
    with pytest.raises(perkrec.ConfigError, match="weighting"):
        _core.fit_benefit_planner(
            log._impl, catalog._impl, None, _core.NO_TIME, None, None, None,
            json.dumps({**bp._fit_config(), "params": {**bp.params, "weighting": "x"}}), None,
        )  # fmt: skip
    # a config given to the fit directly is strict: an unknown key is a ConfigError naming it
    with pytest.raises(perkrec.ConfigError, match="/params/shrinkk"):
        _core.fit_benefit_planner(
            log._impl, catalog._impl, None, _core.NO_TIME, None, None, None,
            json.dumps({**bp._fit_config(), "params": {**bp.params, "shrinkk": True}}), None,
        )  # fmt: skip
