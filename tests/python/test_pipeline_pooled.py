"""perkrec.BenefitPlanner's pooled member effects (``pooled``) and preference offset
(``preference_offset``): fitted as the plan_vs_oracle bench's ``+pool`` variant fits them,
stored in the model file, applied alike in plan and answer; older files plan as before."""

import numpy as np
import pandas as pd
import pytest

from planner_files import rebuilt_file, rebuilt_file_bytes

import perkrec
from perkrec import _core
from perkrec.demo import TEST_DAYS, demo_policy


@pytest.fixture(scope="module")
def program():
    return perkrec.simulate(n_users=1200, days=120, seed=8, num_threads=2)


@pytest.fixture(scope="module")
def cut(program):
    return program.events.time_range[1] - pd.Timedelta(days=TEST_DAYS)


def _fit(program, cut, **options):
    options.setdefault("benefit_level", False)  # P as the pooled effects leave it
    bp = perkrec.BenefitPlanner(
        demo_policy(program.events.n_users), seed=3, num_threads=2, **options
    )
    return bp.fit(program.events, program.catalog, program.users, cut_time=cut)


@pytest.fixture(scope="module")
def plain(program, cut):
    return _fit(program, cut, pooled=False)


@pytest.fixture(scope="module")
def pooled(program, cut):
    return _fit(program, cut)  # pooled=True is the default


@pytest.fixture(scope="module")
def both(program, cut):
    return _fit(program, cut, pooled=True, preference_offset=True)


def _same_plan(a: perkrec.Plan, b: perkrec.Plan):
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert a.expected_cost == b.expected_cost and a.expected_return == b.expected_return


def test_pooled_p_equals_the_bench_recipe_on_the_same_fm(plain, pooled, program, cut):
    """The +pool variant by hand (bench/plan_vs_oracle.py's pooled(): issues finished by the
    cut and held-out ones after it, the FM at each issue as the offset, pooled_redemption on
    the shrunk P) gives exactly the planner's P."""
    from perkrec.fm import redemption_samples
    from perkrec.plan import issue_weights, pooled_redemption

    assert pooled.fm.to_bytes() == plain.fm.to_bytes()  # one thread: the same FM
    log, catalog = program.events, program.catalog
    frame = log.to_frame(external_ids=False)
    issued = (frame["event_type"].astype(str) == "issued").to_numpy() & (
        frame["benefit"].to_numpy() >= 0
    )
    weights = issue_weights(frame["propensity"].to_numpy()[issued])
    rows = plain.with_member_segment(redemption_samples(log, catalog, program.users))
    t_end = log.time_range[1].value // 10**9
    t_cut = cut.floor("s").value // 10**9
    ends = (rows["timestamp"] + rows["validity_days"] * 86400).to_numpy()
    done = (ends <= t_cut) | ((rows["timestamp"] >= t_cut).to_numpy() & (ends <= t_end))
    rows = rows[done]
    at_issue = np.clip(plain.fm.predict(plain.encoder.transform(rows, events=log)), 1e-6, 1 - 1e-6)
    cat = catalog.to_frame()
    codes = {c: pd.factorize(cat[c].astype(str))[0] for c in ("kind", "channel")}
    P = plain.inputs().redemption_probability
    expected = pooled_redemption(
        rows["user"],
        rows["benefit"],
        rows["label"],
        n_users=P.shape[0],
        benefit_attributes=codes,
        base=np.clip(P, 1e-6, 1 - 1e-6),
        base_at_issue=at_issue,
        sample_weight=weights[done],
        held_out=rows["timestamp"].to_numpy() >= t_cut,
        num_threads=2,
    )
    got = pooled.inputs().redemption_probability
    np.testing.assert_array_equal(got, expected.probability)
    effects = pooled.pooled_effects
    assert effects.slope == expected.slope and 0 < effects.slope <= 1
    assert effects.intercept == expected.intercept
    np.testing.assert_array_equal(effects.member, expected.effects["member"])
    assert not np.array_equal(got, P)
    assert pooled.preference_weight is None and plain.pooled_effects is None
    assert pooled.params["pooled"] and not pooled.params["preference_offset"]


def test_the_preference_weight_is_fitted_and_moves_p(both, pooled):
    w = both.preference_weight
    assert w is not None and 0 <= w <= 1
    P_pool = pooled.inputs().redemption_probability
    P_both = both.inputs().redemption_probability
    if w > 0:
        assert not np.array_equal(P_both, P_pool)
    else:
        np.testing.assert_array_equal(P_both, P_pool)
    assert both.params["preference_offset"] and both.params["pooled"]


def test_one_member_answers_equal_the_plans_rows(both, program):
    end = both.end_time
    P = both.inputs(end).redemption_probability
    rows = both.plan(at=end).frame.set_index("member_index")
    checked = 0
    for u in range(0, program.events.n_users, 5):
        a = both.answer(u, end, n=50)
        for b in a["benefits"]:
            assert b["probability"] == float(P[u, b["benefit"]])
        if u in rows.index:
            row = rows.loc[u]
            match = [b for b in a["benefits"] if b["benefit_id"] == row["benefit"]]
            assert len(match) == 1
            assert match[0]["probability"] == pytest.approx(row["probability"], rel=1e-6)
            checked += 1
    assert checked > 5


def test_round_trip_keeps_the_effects_and_the_plans(both, tmp_path):
    path = tmp_path / "pooled.perk"
    both.save(path)
    loaded = perkrec.BenefitPlanner.load(path)
    assert loaded.params == both.params
    assert loaded.preference_weight == both.preference_weight
    assert loaded.pooled_effects.slope == both.pooled_effects.slope
    np.testing.assert_array_equal(loaded.pooled_effects.member, both.pooled_effects.member)
    _same_plan(loaded.plan(), both.plan())
    np.testing.assert_array_equal(
        loaded.inputs().redemption_probability, both.inputs().redemption_probability
    )
    u = 11
    assert loaded.answer(u) == both.answer(u)


def test_an_older_file_without_the_new_keys_loads_and_plans_as_before(plain):
    """A file written before these options: params without "pooled" / "preference_offset" and
    no pooled arrays (the content and arrays a file of the previous release holds)."""
    data = rebuilt_file_bytes(
        plain, drop_params=("pooled", "preference_offset", "benefit_level"), levels=None
    )
    assert b'"pooled"' not in data and b"preference_weight" not in data
    loaded = perkrec.BenefitPlanner.from_bytes(data)
    assert loaded.params["pooled"] is False and loaded.params["preference_offset"] is False
    assert loaded.pooled_effects is None and loaded.preference_weight is None
    _same_plan(loaded.plan(), plain.plan())


@pytest.mark.parametrize(
    "kwargs, field",
    [({"pooled": "yes"}, "pooled"), ({"preference_offset": 1}, "preference_offset")],
)
def test_bad_options_raise_config_error_naming_the_field(kwargs, field):
    with pytest.raises(perkrec.ConfigError, match=field):
        perkrec.BenefitPlanner(**kwargs)


def test_a_file_whose_params_and_stored_steps_disagree_is_a_model_format_error(plain, pooled):
    data = rebuilt_file_bytes(plain, params={"pooled": True})  # but no effects stored
    with pytest.raises(perkrec.ModelFormatError, match="pooled"):
        perkrec.BenefitPlanner.from_bytes(data)
    with pytest.raises(perkrec.ModelFormatError, match="pooled"):
        _core.BenefitPlannerCore(rebuilt_file(plain, params={"pooled": True}), 1)
    with pytest.raises(perkrec.InputError, match="preference_weight"):
        rebuilt_file(plain, preference_weight=1.5)
    nb = len(plain.catalog)
    other_shape = _core.fit_pooled_member_effects(
        50,  # members: not the log's
        nb,
        [np.zeros(nb, np.int32)],
        np.zeros(4, np.int32),
        np.arange(4, dtype=np.int32),
        np.full(4, 0.2),
        np.array([0.0, 1.0, 0.0, 1.0]),
        None,
        None,
        5,
        1,
        1.0,
        1e-4,
    )
    with pytest.raises(perkrec.InputError, match="pooled"):
        rebuilt_file(plain, pooled=other_shape)
