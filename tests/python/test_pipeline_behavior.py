"""perkrec.BenefitPlanner with what members buy and browse: fit(behavior=...) adds a behaviour
field to the FM, the model file keeps the behaviour, plans read it strictly before the plan time
and the reasons name the member's matching behaviour."""

import json
import pickle

import numpy as np
import pandas as pd
import pytest

import perkrec
from perkrec import _core
from perkrec.demo import TEST_DAYS, demo_policy


@pytest.fixture(scope="module")
def program():
    return perkrec.simulate(n_users=600, days=120, seed=7, behavior=True, num_threads=2)


@pytest.fixture(scope="module")
def times(program):
    end = program.events.time_range[1]
    return end - pd.Timedelta(days=TEST_DAYS), end


def _behavior(program):
    return (program.behavior, program.items, program.benefit_items)


def _fit(program, times, behavior, **kwargs):
    bp = perkrec.BenefitPlanner(
        demo_policy(program.events.n_users), seed=3, num_threads=2, **kwargs
    )
    return bp.fit(
        program.events, program.catalog, program.users, cut_time=times[0], behavior=behavior
    )


@pytest.fixture(scope="module")
def fitted(program, times):
    return _fit(program, times, _behavior(program))


def _same_plan(a: perkrec.Plan, b: perkrec.Plan):
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert a.expected_cost == b.expected_cost and a.expected_return == b.expected_return


def test_the_default_behaviour_field_covers_every_level_and_action(fitted, program):
    (field,) = [f for f in fitted.encoder.fields if f["kind"] == "behavior"]
    assert field["levels"] == program.items.levels == ["category", "brand"]
    assert field["actions"] == program.behavior.action_names == ["purchase", "view"]
    assert fitted.behavior[0] is program.behavior and fitted.params["behavior_field"] is None


def test_the_cpp_plan_equals_the_reference_path_bit_for_bit(fitted):
    plan = fitted.plan()
    assert len(plan.frame) > 0
    _same_plan(fitted.plan(inputs=fitted.inputs()), plan)
    assert all("behavior" in json.loads(r) for r in plan.frame["reasons"])


def test_save_load_and_pickle_give_identical_plans(fitted, program, tmp_path):
    path = tmp_path / "planner.perk"
    fitted.save(path)
    expected = fitted.plan()
    at = fitted.end_time - pd.Timedelta(days=4)
    for loaded in (perkrec.load(path), pickle.loads(pickle.dumps(fitted))):
        assert loaded.params == fitted.params
        log, items, applies = loaded.behavior
        assert len(log) == len(program.behavior) and items == program.items
        assert len(applies) == len(program.benefit_items)
        _same_plan(loaded.plan(), expected)
        _same_plan(loaded.plan(at=at), fitted.plan(at=at))
        assert loaded.answer(5, n=3) == fitted.answer(5, n=3)


def test_behaviour_at_or_after_the_plan_time_never_changes_the_plan(fitted, program, times):
    # The same program plus purchases of every benefit's items at and after the end of the log
    # (the plan time) by every member: the fitted model and the plan's P are unchanged.
    log = program.behavior
    end = int(times[1].value // 10**9)
    n, items = log.n_users, log.n_items
    extra_user = np.repeat(np.arange(n, dtype=np.int32), 2)
    extra_item = (np.arange(2 * n) % items).astype(np.int32)
    extra_time = np.tile(np.array([end, end + 3600], dtype=np.int64), n)

    def with_extra(times_):
        impl = _core.BehaviorLog.from_arrays(
            np.concatenate([log._impl.users(), extra_user]).astype(np.int32),
            np.concatenate([log._impl.items(), extra_item]).astype(np.int32),
            np.concatenate([log._impl.timestamps(), times_]).astype(np.int64),
            np.concatenate([log._impl.actions(), np.zeros(2 * n, np.uint8)]).astype(np.int32),
            np.concatenate([log._impl.quantities(), np.ones(2 * n)]).astype(np.float64),
            np.concatenate([log._impl.amounts(), np.full(2 * n, 5.0)]),
            np.concatenate([log._impl.baskets(), np.full(2 * n, -1)]).astype(np.int64),
            n,
            items,
            log.action_names,
            "raise",
            2,
        )
        return perkrec.BehaviorLog._wrap(impl)

    later = _fit(program, times, (with_extra(extra_time), program.items, program.benefit_items))
    np.testing.assert_array_equal(
        later.inputs().redemption_probability, fitted.inputs().redemption_probability
    )
    plan, plan_later = fitted.plan(), later.plan()
    pd.testing.assert_frame_equal(
        plan.frame.drop(columns="reasons"), plan_later.frame.drop(columns="reasons")
    )
    # The reasons count before the plan time too: the same behaviour named.
    assert list(plan.frame["reasons"]) == list(plan_later.frame["reasons"])
    # A day earlier the same purchases are seen by the model (so the check above can fail).
    earlier = _fit(
        program,
        times,
        (with_extra(extra_time - 86400), program.items, program.benefit_items),
    )
    assert not np.array_equal(
        earlier.inputs().redemption_probability, fitted.inputs().redemption_probability
    )


def test_reasons_count_the_members_purchases_of_the_benefits_items(fitted, program, times):
    plan = fitted.plan()
    end = int(times[1].value // 10**9)
    log = program.behavior._impl
    t, purchase = log.timestamps(), log.actions() == program.behavior.action_names.index("purchase")
    recent = (t >= end - 56 * 86400) & (t < end) & purchase
    frame = pd.DataFrame({"user": log.users()[recent], "item": log.items()[recent]})
    by_member = frame.groupby("user")["item"].apply(np.asarray)
    checked = matched = 0
    for row in plan.frame.itertuples():
        items = set(program.benefit_items.items_of(row.benefit_index).tolist())
        bought = by_member.get(row.member_index, np.array([], dtype=np.int64))
        expected = int(sum(int(i) in items for i in bought))
        entries = json.loads(row.reasons)["behavior"]
        got = [e for e in entries if e["action"] == "purchase" and e["scope"] == "items"]
        assert (got[0]["count"] if got else 0) == expected
        if expected:
            assert got[0]["text"] == (
                f"bought items of this benefit {'once' if expected == 1 else f'{expected} times'}"
                " in the last 8 weeks"
            )
            matched += 1
        checked += 1
    assert checked > 10 and matched > 0


def test_behaviour_errors_are_typed_and_name_the_field(program, times, fitted):
    with pytest.raises(perkrec.ConfigError, match="kind"):
        perkrec.BenefitPlanner(behavior_field={"kind": "numeric"})
    with pytest.raises(perkrec.ConfigError, match="half_life_days"):
        perkrec.BenefitPlanner(behavior_field={"half_life_days": -1})
    with pytest.raises(perkrec.ConfigError, match="behavior_field"):
        perkrec.BenefitPlanner(behavior_field=["levels"])
    bp = perkrec.BenefitPlanner(behavior_field={"levels": ["category"]}, num_threads=2)
    with pytest.raises(perkrec.InputError, match="behavior_field needs behavior"):
        bp.fit(program.events, program.catalog, program.users, cut_time=times[0])
    with pytest.raises(perkrec.InputError, match="behavior"):
        bp.fit(program.events, program.catalog, behavior=(program.behavior,))
    other = perkrec.BenefitItems._wrap(
        _core.BenefitItems.from_pairs(
            np.zeros(1, np.int32), np.zeros(1, np.int32), 3, len(program.items), "drop"
        )
    )
    with pytest.raises(perkrec.InputError, match="benefits"):
        bp.fit(program.events, program.catalog, behavior=(program.behavior, program.items, other))
    # A log built with a member map of its own (here: members in reverse order) would give
    # members other members' behaviour: refused before anything is fitted.
    frame = program.behavior.to_frame().iloc[::-1]
    own_map = perkrec.BehaviorLog.from_frame(
        frame, items=program.items, user="user", item="item", action="action", amount="amount"
    )
    assert own_map.n_items == len(program.items)
    with pytest.raises(perkrec.InputError, match="member map"):
        bp.fit(
            program.events,
            program.catalog,
            behavior=(own_map, program.items, program.benefit_items),
        )
    assert not bp.fitted
    with pytest.raises(perkrec.InputError, match="member map"):
        fitted.plan(behavior=own_map)  # a newer log is checked the same way
    # A file whose encoder has a behaviour field but no behaviour part.
    f = fitted._file("test")
    names = "fm preference catalog events users order_value holdout_user holdout_benefit"
    names += " holdout_predicted holdout_redeemed holdout_weight incremental_share pooled"
    parts = [getattr(f, name) for name in (names + " preference_weight").split()]
    levels = f.benefit_level if len(f.benefit_level) else None
    # every part but the behaviour
    bare = _core.BenefitPlannerFile(f.config_json, *parts, None, None, None, levels)
    with pytest.raises(perkrec.ModelFormatError, match="behaviour field"):
        perkrec.BenefitPlanner.from_bytes(bare.to_bytes())
    with pytest.raises(perkrec.ModelFormatError, match="behaviour field"):
        _core.BenefitPlannerCore(bare, 1)


def test_planning_with_a_newer_behaviour_log_reads_it_without_refitting(fitted, program, times):
    log = program.behavior
    _same_plan(fitted.plan(behavior=log), fitted.plan())
    # The log without its last two weeks: other behaviour features, other P.
    week = int((times[1] - pd.Timedelta(days=14)).value // 10**9)
    keep = log._impl.timestamps() < week
    older = perkrec.BehaviorLog._wrap(
        _core.BehaviorLog.from_arrays(
            log._impl.users()[keep].astype(np.int32),
            log._impl.items()[keep].astype(np.int32),
            log._impl.timestamps()[keep].astype(np.int64),
            log._impl.actions()[keep].astype(np.int32),
            log._impl.quantities()[keep].astype(np.float64),
            log._impl.amounts()[keep],
            log._impl.baskets()[keep].astype(np.int64),
            log.n_users,
            log.n_items,
            log.action_names,
            "raise",
            2,
        )
    )
    P_older = fitted.inputs(behavior=older).redemption_probability
    assert not np.array_equal(P_older, fitted.inputs().redemption_probability)
    plan = fitted.plan(behavior=older)
    # The reference path (the dense inputs through Planner.plan) names the same behaviour.
    _same_plan(fitted.plan(inputs=fitted.inputs(behavior=older), behavior=older), plan)
    with pytest.raises(perkrec.InputError, match="behavior"):
        fitted.plan(behavior=program.items)
    with pytest.raises(perkrec.InputError, match="behavior"):
        fitted.plan(behavior=perkrec.BehaviorLog())
