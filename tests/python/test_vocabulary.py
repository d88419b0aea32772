"""One vocabulary (issue 17, ARCHITECTURE.md section 3): each renamed keyword, method, property and
function works under its new name; the old name still works for one release, warns with a
DeprecationWarning and gives the identical result; giving both names is an InputError."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import perkrec
from perkrec import plots
from perkrec._util import renamed_keywords


def _same(a, b):
    if isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, perkrec.EventLog):
        pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    elif isinstance(a, (pd.Categorical, pd.Series)):
        assert list(a) == list(b)
    elif hasattr(a, "toarray"):
        np.testing.assert_array_equal(a.toarray(), b.toarray())
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, perkrec._core.Candidates):
        for f in ("offsets", "benefit", "value", "cost", "probability"):
            np.testing.assert_array_equal(np.asarray(getattr(a, f)), np.asarray(getattr(b, f)))
    else:
        np.testing.assert_array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object))


def _old_equals_new(new, old, match):
    """Calls both; the old one must warn naming the old name and return the same."""
    expected = new()
    with pytest.warns(DeprecationWarning, match=match):
        got = old()
    _same(expected, got)
    return expected


@pytest.fixture(scope="module")
def program():
    return perkrec.simulate(n_users=300, seed=3)


@pytest.fixture(scope="module")
def compiled(program):
    policy = perkrec.Policy(
        {"max_per_member": 2, "quiet_hours": {"start_hour": 22, "end_hour": 8}, "rules": []}
    )
    cut = program.events.to_frame()["timestamp"].max()
    return policy.compile(program.catalog, program.users, cut, history=program.events)


def test_renamed_keywords_helper():
    @renamed_keywords(old="new")
    def f(new=1):
        return new

    assert f(new=3) == 3 and f(4) == 4
    with pytest.warns(DeprecationWarning, match=r"f\(old=\) is renamed new="):
        assert f(old=5) == 5
    with pytest.raises(perkrec.InputError, match="give new= only"):
        f(old=1, new=2)
    import inspect

    assert list(inspect.signature(f).parameters) == ["new"]


def test_split_by_time_cut_time(program):
    t = "2026-03-01"
    _old_equals_new(
        lambda: perkrec.split_by_time(program.events, cut_time=t),
        lambda: perkrec.split_by_time(program.events, cut=t),
        r"split_by_time\(cut=\)",
    )
    with pytest.raises(perkrec.InputError, match="cut_time"):
        perkrec.split_by_time(program.events, cut_time=float("nan"))


def test_interaction_matrix_cut_time(program):
    t = "2026-03-01"
    m = _old_equals_new(
        lambda: perkrec.interaction_matrix(program.events, half_life_days=30, cut_time=t),
        lambda: perkrec.interaction_matrix(program.events, half_life_days=30, end_time=t),
        r"interaction_matrix\(end_time=\)",
    )
    assert m.nnz < perkrec.interaction_matrix(program.events).nnz  # the cut is applied


def test_compiled_policy_user_names(compiled):
    n = compiled.n_users
    users = np.arange(min(n, 20))
    benefits = np.arange(len(users)) % compiled.n_benefits
    _old_equals_new(lambda: compiled.user_masks, lambda: compiled.member_masks, "member_masks")
    _old_equals_new(lambda: compiled.user_block, lambda: compiled.member_block, "member_block")
    _old_equals_new(
        lambda: compiled.user_block_names(),
        lambda: compiled.member_block_names(),
        "member_block_names",
    )
    _old_equals_new(
        lambda: compiled.excluding_rule(users=users, benefits=benefits),
        lambda: compiled.excluding_rule(members=users, benefits=benefits),
        r"excluding_rule\(members=\)",
    )
    t = int(pd.Timestamp("2026-06-01 23:30", tz="UTC").value // 10**9)
    sent = _old_equals_new(
        lambda: compiled.send_time(t, user=1),
        lambda: compiled.send_time(t, member=1),
        r"send_time\(member=\)",
    )
    assert sent > t  # moved out of the quiet hours
    _old_equals_new(
        lambda: compiled.send_times(t, users=users),
        lambda: compiled.send_times(t, members=users),
        r"send_times\(members=\)",
    )
    with pytest.raises(perkrec.InputError, match="user"):
        compiled.send_time(t, user=-1)


def test_rank_schedule_explain_user_names(compiled):
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.5, (compiled.n_users, compiled.n_benefits))
    value = rng.uniform(1, 5, compiled.n_users)
    cand = _old_equals_new(
        lambda: perkrec.rank(compiled, p, user_value=value, top_k=3),
        lambda: perkrec.rank(compiled, p, member_value=value, top_k=3),
        r"rank\(member_value=\)",
    )
    users = np.arange(5)
    _old_equals_new(
        lambda: perkrec.schedule(users=users, plan_time="2026-06-01", validity_days=7),
        lambda: perkrec.schedule(members=users, plan_time="2026-06-01", validity_days=7),
        r"schedule\(members=\)",
    )
    off = np.asarray(cand.offsets)
    rows = np.flatnonzero(np.diff(off) > 0)[:4].astype(np.int32)
    chosen = np.asarray(cand.benefit)[off[rows]]
    ids = [f"m{i}" for i in range(compiled.n_users)]
    new = _old_equals_new(
        lambda: perkrec.explain(users=rows, benefits=chosen, candidates=cand, user_ids=ids),
        lambda: perkrec.explain(members=rows, benefits=chosen, candidates=cand, member_ids=ids),
        r"explain\(",
    )
    assert json.loads(new[0])["member"] == ids[rows[0]]


def test_allocate_user_names(compiled):
    rng = np.random.default_rng(1)
    p = rng.uniform(0.01, 0.5, (compiled.n_users, compiled.n_benefits))
    cand = perkrec.rank(compiled, p, top_k=3)
    a = perkrec.allocate(cand, compiled.constraints)
    rows = _old_equals_new(
        lambda: perkrec.allocation_users(a),
        lambda: perkrec.allocation_members(a),
        "allocation_members",
    )
    assert len(rows) == len(np.asarray(a.candidate))
    from perkrec.allocate import member_set_value, user_set_value

    v = _old_equals_new(
        lambda: user_set_value([10, 8, 6], [0, 0, 1], 0.5),
        lambda: member_set_value([10, 8, 6], [0, 0, 1], 0.5),
        "member_set_value",
    )
    assert v == pytest.approx(20.0)
    day = 86400

    def pacer():
        return perkrec.Pacer(budget=10.0, start=0, end=day, max_per_member=2)

    args = dict(t=10, benefit=[0, 1], value=[2.0, 1.5], cost=[0.5, 0.5])
    _old_equals_new(
        lambda: pacer().decide(user=3, **args),
        lambda: pacer().decide(member=3, **args),
        r"decide\(member=\)",
    )


def test_behavior_log_user_column():
    items = perkrec.ItemCatalog.from_frame(
        pd.DataFrame({"item_id": ["a", "b"], "dept": ["x", "y"]}), id="item_id"
    )
    frame = pd.DataFrame(
        {"household_id": [7, 8, 7], "item_id": ["a", "b", "b"], "timestamp": [1, 2, 3]}
    )

    def build(**kw):
        log = perkrec.BehaviorLog.from_frame(frame, items=items, **kw)
        return (log.n_users, len(log), list(log.user_ids.ids))

    n_users, n_events, ids = _old_equals_new(
        lambda: build(user="household_id"),
        lambda: build(member="household_id"),
        r"from_frame\(member=\)",
    )
    assert (n_users, n_events) == (2, 3) and [str(x) for x in ids] == ["7", "8"]


def test_preference_and_plots_user_names(small_program, tmp_path):
    prog = small_program
    cut = prog.events.to_frame()["timestamp"].max()
    model = perkrec.PreferenceModel().fit(prog.events, prog.catalog, cut, user_table=prog.users)
    report = _old_equals_new(
        lambda: model.user_table_report,
        lambda: model.member_table_report,
        "member_table_report",
    )
    assert report["rows"] == len(prog.users) > 0
    _old_equals_new(
        lambda: model.user_profile(0), lambda: model.member_profile(0), "member_profile"
    )
    import matplotlib

    matplotlib.use("Agg")
    fig_new = plots.plot_user_profile(model, 0)
    with pytest.warns(DeprecationWarning, match="plot_member_profile"):
        fig_old = plots.plot_member_profile(model, 0)
    assert fig_new.axes[0].get_title() == fig_old.axes[0].get_title()
    with pytest.warns(DeprecationWarning, match=r"report\(member=\)"):
        plots.report(model, tmp_path / "old", member=0, clusters=2)
    plots.report(model, tmp_path / "new", user=0, clusters=2)
    assert (tmp_path / "old" / "segments.csv").read_text() == (
        tmp_path / "new" / "segments.csv"
    ).read_text()


def test_top_level_plan_helpers():
    from perkrec import plan

    assert perkrec.incremental_share is plan.incremental_share
    assert perkrec.order_value is plan.order_value
    assert "incremental_share" in perkrec.__all__ and "allocation_users" in perkrec.__all__
    assert "allocation_members" not in perkrec.__all__  # deprecated: importable, not advertised


def test_no_deprecated_names_in_readme():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for old in (
        "end_time=",
        "member=",
        "member_value=",
        "members=",
        "users=program.users",  # a UserTable is user_table=
        "users=perkrec.IdMap",  # an IdMap is user_ids=
        "users=log",
        ".users.users",
        "from perkrec.plan import Planner",
    ):
        assert old not in readme, old
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        import perkrec as again  # importing warns about nothing

        assert again.BenefitPlanner


# --- users= that takes a UserTable is user_table=; users= that takes an IdMap is user_ids= ------


def test_policy_compile_and_planner_user_table(program, compiled):
    policy = perkrec.Policy({"max_per_member": 2, "rules": []})
    t = program.events.to_frame()["timestamp"].max()

    def compile_(**kw):
        c = policy.compile(program.catalog, plan_time=t, history=program.events, **kw)
        return c.eligible_matrix(), c.mask_rules()

    eligible, _ = _old_equals_new(
        lambda: compile_(user_table=program.users),
        lambda: compile_(users=program.users),
        r"compile\(users=\) is renamed user_table=",
    )
    assert eligible.shape == (len(program.users), len(program.catalog)) and eligible.any()
    p = np.random.default_rng(2).uniform(0.01, 0.5, eligible.shape)
    planner = perkrec.Planner(
        {"budget": 40.0, "max_per_member": 1}, objective="redemption", num_threads=1
    )
    plan = _old_equals_new(
        lambda: planner.plan(
            program.catalog, plan_time=t, redemption_probability=p, user_table=program.users
        ).frame,
        lambda: planner.plan(
            program.catalog, plan_time=t, redemption_probability=p, users=program.users
        ).frame,
        r"plan\(users=\) is renamed user_table=",
    )
    assert len(plan) > 0
    with pytest.raises(perkrec.InputError, match="user_table"):
        policy.compile(program.catalog, user_table=program.users, users=program.users, plan_time=t)
    with pytest.raises(perkrec.InputError, match="user_table"):
        policy.compile(program.catalog, user_table=program.events, plan_time=t)


def test_preference_model_user_table(program):
    log, catalog = program.events, program.catalog
    cut = log.to_frame()["timestamp"].max()

    def fit(**kw):
        return perkrec.PreferenceModel(latent_classes=2, em_iterations=3, num_threads=1).fit(
            log, catalog, cut, **kw
        )

    new, old = fit(user_table=program.users), None
    with pytest.warns(DeprecationWarning, match=r"fit\(users=\) is renamed user_table="):
        old = fit(users=program.users)
    _same(new.preferences(), old.preferences())
    assert new.user_table_report["rows"] == len(program.users)
    prior = _old_equals_new(
        lambda: new.class_prior(user_table=program.users),
        lambda: new.class_prior(users=program.users),
        r"class_prior\(users=\) is renamed user_table=",
    )
    assert prior.shape == (len(program.users), 2)
    np.testing.assert_allclose(prior.sum(axis=1), 1.0, rtol=1e-5)
    with pytest.raises(perkrec.InputError, match="user_table"):
        new.class_prior(user_table=program.users, users=program.users)
    with pytest.raises(perkrec.InputError, match="user_table"):
        fit(user_table=program.users, users=program.users)


def test_redemption_samples_and_with_attributes_user_table(program):
    samples = _old_equals_new(
        lambda: perkrec.redemption_samples(
            program.events, program.catalog, user_table=program.users
        ),
        lambda: perkrec.redemption_samples(program.events, program.catalog, users=program.users),
        r"redemption_samples\(users=\) is renamed user_table=",
    )
    attributes = set(program.users.columns) - {"signup_time"}
    assert attributes and attributes <= set(samples.columns)  # the member attributes joined
    from perkrec.pipeline import with_attributes

    pairs = samples[["user", "benefit", "timestamp"]].head(20).reset_index(drop=True)
    joined = _old_equals_new(
        lambda: with_attributes(pairs.copy(), program.catalog, user_table=program.users),
        lambda: with_attributes(pairs.copy(), program.catalog, users=program.users),
        r"with_attributes\(users=\) is renamed user_table=",
    )
    assert attributes <= set(joined.columns)
    with pytest.raises(perkrec.InputError, match="user_table"):
        perkrec.redemption_samples(
            program.events, program.catalog, user_table=program.users, users=program.users
        )


def test_benefit_planner_user_table(program):
    from perkrec.demo import demo_policy

    def fit(**kw):
        return perkrec.BenefitPlanner(
            demo_policy(program.events.n_users),
            epochs=1,
            early_stopping=False,
            shrink=False,
            seed=3,
            num_threads=1,
        ).fit(program.events, program.catalog, **kw)

    new = fit(user_table=program.users)
    with pytest.warns(DeprecationWarning, match=r"fit\(users=\) is renamed user_table="):
        old = fit(users=program.users)
    _same(new.plan().frame, old.plan().frame)
    assert new.user_table is program.users
    table = _old_equals_new(lambda: new.user_table, lambda: new.users, "BenefitPlanner.users")
    assert table is program.users
    with pytest.raises(perkrec.InputError, match="user_table"):
        fit(user_table=program.users, users=program.users)


def test_user_table_user_ids():
    ids = perkrec.IdMap(["m1", "m2", "m3"])
    frame = pd.DataFrame({"age": [30.0, 41.0]}, index=["m3", "m9"])
    empty = _old_equals_new(
        lambda: perkrec.UserTable(user_ids=ids),
        lambda: perkrec.UserTable(users=ids),
        r"UserTable.__init__\(users=\) is renamed user_ids=",
    )
    assert len(empty) == 3
    table = _old_equals_new(
        lambda: perkrec.UserTable.from_frame(frame, user_ids=ids).to_frame(),
        lambda: perkrec.UserTable.from_frame(frame, users=ids).to_frame(),
        r"from_frame\(users=\) is renamed user_ids=",
    )
    assert list(table.index) == ["m1", "m2", "m3", "m9"] and table.loc["m3", "age"] == 30.0
    grown = perkrec.UserTable.from_frame(frame, user_ids=ids)
    old = _old_equals_new(lambda: grown.user_ids, lambda: grown.users, "UserTable.users")
    assert list(old.ids) == ["m1", "m2", "m3", "m9"] and list(ids.ids) == ["m1", "m2", "m3"]
    with pytest.raises(perkrec.InputError, match="user_ids"):
        perkrec.UserTable.from_frame(frame, user_ids=ids, users=ids)
    with pytest.raises(perkrec.InputError, match="user_ids"):
        perkrec.UserTable(user_ids=["m1"])


def test_event_log_from_frame_and_set_ids_user_ids(program):
    log = program.events
    frame = log.to_frame()
    again = _old_equals_new(
        lambda: perkrec.EventLog.from_frame(frame, user_ids=log.user_ids, benefits=program.catalog),
        lambda: perkrec.EventLog.from_frame(frame, users=log.user_ids, benefits=program.catalog),
        r"from_frame\(users=\) is renamed user_ids=",
    )
    np.testing.assert_array_equal(again.users, log.users)  # indices of the given map kept
    with pytest.raises(perkrec.InputError, match="user_ids"):
        perkrec.EventLog.from_frame(frame, user_ids=log.user_ids, users=log.user_ids)
    with pytest.raises(perkrec.InputError, match="user_ids"):
        perkrec.EventLog.from_frame(frame, user_ids=list(log.user_ids.ids))

    def bare():
        return perkrec.EventLog.from_arrays(
            log.users, log.benefits, log.event_types, log.timestamps
        )

    def attach(**kw):
        b = bare()
        b.set_ids(**kw)
        return list(b.user_ids.ids), list(b.benefit_ids.ids)

    users, benefits = _old_equals_new(
        lambda: attach(user_ids=log.user_ids, benefit_ids=log.benefit_ids),
        lambda: attach(users=log.user_ids, benefits=log.benefit_ids),
        r"set_ids\((users|benefits)=\) is renamed",
    )
    assert users == list(log.user_ids.ids) and benefits == list(log.benefit_ids.ids)
    with pytest.raises(perkrec.InputError, match="benefit_ids"):
        bare().set_ids(log.user_ids, benefit_ids=log.benefit_ids, benefits=log.benefit_ids)
    with pytest.raises(perkrec.InputError, match="EventLog.set_ids: user_ids must be"):
        with pytest.warns(DeprecationWarning):  # the old name's bad value: a typed error
            bare().set_ids(users=5)


def test_behavior_log_user_ids(program):
    items = perkrec.ItemCatalog.from_frame(
        pd.DataFrame({"item_id": ["a", "b"], "dept": ["x", "y"]}), id="item_id"
    )
    ids = program.events.user_ids
    frame = pd.DataFrame(
        {"user_id": ids.ids[[4, 1, 4]], "item_id": ["a", "b", "b"], "timestamp": [1, 2, 3]}
    )

    def build(**kw):
        log = perkrec.BehaviorLog.from_frame(frame, items=items, **kw)
        return log.n_users, log.to_frame()

    n_users, events = _old_equals_new(
        lambda: build(user_ids=ids), lambda: build(users=ids), r"from_frame\(users=\)"
    )
    assert n_users == len(ids) and sorted(set(events["user"])) == [1, 4]  # indices of ids
    # a UserTable or an EventLog stand for their user_ids, as before
    for holder in (program.users, program.events):
        _same(build(user_ids=holder), (n_users, events))
    with pytest.raises(perkrec.InputError, match="user_ids must be an IdMap"):
        build(user_ids=[1, 2])
    with pytest.raises(perkrec.InputError, match="user_ids"):
        build(user_ids=ids, users=ids)
