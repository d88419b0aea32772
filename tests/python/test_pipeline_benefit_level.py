"""perkrec.BenefitPlanner's per-benefit level factors (``benefit_level``): measured on the
held-out issues relative to all of them (C++ benefit_levels), stored in the model file,
applied in plan and answer; off (and in older files) plans exactly as before."""

import json

import numpy as np
import pandas as pd
import pytest

from planner_files import rebuilt_file_bytes

import perkrec
from perkrec import _core
from perkrec.demo import TEST_DAYS, demo_policy
from perkrec.pipeline import BENEFIT_LEVEL_PRIOR


@pytest.fixture(scope="module")
def program():
    return perkrec.simulate(n_users=1000, days=120, seed=8, num_threads=2)


def _fit(program, **options):
    cut = program.events.time_range[1] - pd.Timedelta(days=TEST_DAYS)
    bp = perkrec.BenefitPlanner(
        demo_policy(program.events.n_users), seed=3, num_threads=2, **options
    )
    return bp.fit(program.events, program.catalog, program.users, cut_time=cut)


@pytest.fixture(scope="module")
def off(program):
    return _fit(program, benefit_level=False)


@pytest.fixture(scope="module")
def on(program):
    return _fit(program, benefit_level=True)


def _same_plan(a: perkrec.Plan, b: perkrec.Plan):
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert a.expected_cost == b.expected_cost and a.expected_return == b.expected_return


def test_on_multiplies_the_old_p_by_the_held_out_levels(off, on):
    """Same FM (one thread, same seed): P with the levels is exactly the old P times each
    benefit's factor (capped below 1), and the factors are benefit_levels of the held-out
    issues the shrinkage reads."""
    assert on.fm.to_bytes() == off.fm.to_bytes()
    assert off.benefit_level is None
    held = on._state["holdout"]
    expected = _core.benefit_levels(
        len(on.catalog),
        held["benefit"],
        held["predicted"],
        held["redeemed"],
        held["weight"].astype(np.float64),
        BENEFIT_LEVEL_PRIOR,
    )
    np.testing.assert_array_equal(on.benefit_level, expected)
    assert expected.std() > 0.01  # the program's benefits differ
    P_off = off.inputs().redemption_probability
    P_on = on.inputs().redemption_probability
    want = np.minimum(P_off.astype(np.float64) * expected[None, :], 1 - 1e-6).astype(np.float32)
    np.testing.assert_array_equal(P_on, want)
    # The plan and a one-member answer read the same P.
    plan = on.plan()
    row = plan.frame.iloc[0]
    answer = on.answer(int(row["member_index"]), n=50)
    got = {b["benefit"]: b["probability"] for b in answer["benefits"]}
    assert got[int(row["benefit_index"])] == pytest.approx(
        float(P_on[int(row["member_index"]), int(row["benefit_index"])]), rel=1e-6
    )


def test_round_trip_and_old_files_plan_as_before(off, on, tmp_path):
    path = tmp_path / "on.perk"
    on.save(path)
    back = perkrec.BenefitPlanner.load(path)
    assert back.params["benefit_level"] is True
    np.testing.assert_array_equal(back.benefit_level, on.benefit_level)
    _same_plan(back.plan(), on.plan())
    # A file written before the option (no params key, no stored levels) loads with it off
    # and plans exactly as the planner without it.
    old = rebuilt_file_bytes(off, drop_params=("benefit_level",))
    assert (
        "benefit_level"
        not in json.loads(_core.BenefitPlannerFile.from_bytes(old).config_json)["params"]
    )
    loaded = perkrec.BenefitPlanner.from_bytes(old)
    assert loaded.params["benefit_level"] is False and loaded.benefit_level is None
    _same_plan(loaded.plan(), off.plan())


def test_params_without_stored_levels_are_refused(on):
    data = rebuilt_file_bytes(on, levels=None)
    with pytest.raises(perkrec.ModelFormatError, match="benefit_level"):
        perkrec.BenefitPlanner.from_bytes(data)
    with pytest.raises(perkrec.ConfigError, match="benefit_level"):
        perkrec.BenefitPlanner(benefit_level=1)


def test_a_planted_benefit_miscalibration_is_recovered():
    """Held-out issues whose redemptions run at a planted multiple of the model's prediction
    per benefit, with a common 1.25 on every issue (the held-out window's season): the factors
    recover the multiples relative to each other and drop the common part."""
    rng = np.random.default_rng(0)
    n_benefits, rows = 6, 60000
    multiple = np.array([1.0, 1.0, 2.0, 0.5, 1.0, 1.5])
    b = rng.integers(0, n_benefits, rows).astype(np.int32)
    q = rng.uniform(0.05, 0.3, rows)
    y = (rng.uniform(size=rows) < 1.25 * multiple[b] * q).astype(np.float64)
    levels = _core.benefit_levels(n_benefits, b, q, y, None, BENEFIT_LEVEL_PRIOR)
    overall = (1.25 * multiple[b] * q).sum() / q.sum() / 1.25
    np.testing.assert_allclose(levels, multiple / overall, rtol=0.06)
    with pytest.raises(perkrec.InputError, match="redeemed at row 0"):
        _core.benefit_levels(n_benefits, b[:1], q[:1], np.array([0.5]), None, 50.0)
