"""PreferenceModel with member attributes as covariates of the latent-class prior."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

import perkrec


def _class_accuracy(model, archetype, rows):
    classes = model.memberships().argmax(1)
    mapping = pd.crosstab(classes[rows], archetype[rows]).idxmax(axis=1)
    return float((mapping.reindex(classes[rows]).to_numpy() == archetype[rows]).mean())


@pytest.fixture(scope="module")
def planted(small_program):
    """The simulator's log plus a member attribute that names the planted archetype for 80%
    of members (random otherwise), and a standardized-scale numeric column of noise."""
    log = small_program.events
    archetype = small_program.truth.members["archetype"].astype(str).to_numpy()
    rng = np.random.default_rng(3)
    names = np.unique(archetype)
    hint = np.where(rng.random(len(archetype)) < 0.8, archetype, rng.choice(names, len(archetype)))
    frame = pd.DataFrame(
        {"hint": hint, "noise": rng.normal(50, 10, len(archetype))}, index=log.user_ids.ids
    )
    users = perkrec.UserTable.from_frame(frame, user_ids=log.user_ids)
    return small_program, users, archetype


@pytest.fixture(scope="module")
def with_users(planted):
    program, users, _ = planted
    return perkrec.PreferenceModel(num_threads=2).fit(
        program.events, program.catalog, program.truth.reference_time, user_table=users
    )


def test_covariates_recover_planted_relation(planted, with_users):
    program, users, archetype = planted
    plain = perkrec.PreferenceModel(num_threads=2).fit(
        program.events, program.catalog, program.truth.reference_time
    )
    assert plain.covariate_names == [] and plain.covariate_weights().empty
    rows = np.flatnonzero(np.diff(program.events.user_offsets) >= 10)
    acc_plain = _class_accuracy(plain, archetype, rows)
    acc_users = _class_accuracy(with_users, archetype, rows)
    print("class accuracy", acc_plain, acc_users)
    assert acc_users > acc_plain + 0.03, (acc_plain, acc_users)
    assert "noise" in with_users.covariate_names
    assert any(name.startswith("hint=") for name in with_users.covariate_names)
    weights = with_users.covariate_weights()
    assert weights.shape == (with_users._impl.n_classes, 1 + len(with_users.covariate_names))
    # The planted attribute moves the prior far more than the noise column.
    hint_cols = [c for c in weights.columns if c.startswith("hint=")]
    assert weights[hint_cols].abs().to_numpy().max() > 5 * weights["noise"].abs().max()
    prior = with_users.class_prior(users)
    assert prior.shape == (program.events.n_users, with_users._impl.n_classes)
    np.testing.assert_allclose(prior.sum(1), 1.0, rtol=1e-9)


def test_covariates_thread_count_invariant(planted, with_users):
    program, users, _ = planted
    one = perkrec.PreferenceModel(num_threads=1).fit(
        program.events, program.catalog, program.truth.reference_time, user_table=users
    )
    np.testing.assert_array_equal(one.memberships(), with_users.memberships())
    np.testing.assert_array_equal(
        one.covariate_weights().to_numpy(), with_users.covariate_weights().to_numpy()
    )
    pd.testing.assert_frame_equal(one.preferences(), with_users.preferences())


def test_covariates_save_load(planted, with_users, tmp_path):
    _, users, _ = planted
    path = tmp_path / "pref_cov.perk"
    with_users.save(path)
    back = perkrec.load(path)
    assert back.covariate_names == with_users.covariate_names
    pd.testing.assert_frame_equal(back.covariate_weights(), with_users.covariate_weights())
    np.testing.assert_array_equal(back.class_prior(users), with_users.class_prior(users))
    pd.testing.assert_frame_equal(back.preferences(), with_users.preferences())
    buffer = io.BytesIO()
    with_users.save(buffer)
    again = perkrec.PreferenceModel.load(io.BytesIO(buffer.getvalue()))
    assert again.covariate_names == with_users.covariate_names


def test_covariates_bad_input(planted):
    program, users, _ = planted
    log, catalog, cut = program.events, program.catalog, program.truth.reference_time
    model = perkrec.PreferenceModel()
    strangers = perkrec.UserTable.from_frame(pd.DataFrame({"x": [1.0, 2.0]}, index=["a", "b"]))
    with pytest.raises(perkrec.InputError, match="no row of the users table matches"):
        model.fit(log, catalog, cut, user_table=strangers)
    assert not model._impl.fitted  # unchanged on error
    frame = pd.DataFrame({"signup_time": ["x"] * log.n_users}, index=log.user_ids.ids)
    with pytest.raises(perkrec.InputError, match="time column 'signup_time' is not numeric"):
        model.fit(log, catalog, cut, user_table=frame)
    assert not model._impl.fitted


def test_covariates_missing_numeric_values_get_an_indicator(planted):
    program, _, _ = planted
    log, catalog, cut = program.events, program.catalog, program.truth.reference_time
    age = np.linspace(20, 60, log.n_users)
    age[5] = np.nan
    frame = pd.DataFrame({"age": age}, index=log.user_ids.ids)
    model = perkrec.PreferenceModel(num_threads=2).fit(log, catalog, cut, user_table=frame)
    assert model.covariate_names == ["age", "age:missing"]
    assert model.user_table_report["missing_values"] == 1
    prior = model.class_prior(perkrec.UserTable.from_frame(frame))
    assert np.isfinite(prior).all()


def test_member_table_as_of_the_cut(small_program):
    """Attributes of members who join after the cut, and of members the log does not know,
    are ignored and counted; they never change the fit of the others."""
    log, catalog = small_program.events, small_program.catalog
    cut = log.time_range[1] - pd.Timedelta(days=30)
    table = small_program.users.to_frame()
    signup = pd.to_datetime(table["signup_time"], unit="s", utc=True)
    future = int((signup >= cut).sum())
    assert future > 0
    full = perkrec.PreferenceModel(num_threads=2).fit(log, catalog, cut, user_table=table)
    report = full.user_table_report
    assert report["joined_after_cut"] == future and report["unknown_to_log"] == 0
    assert report["matched"] + report["without_row"] == log.n_users
    # What a user knows at the cut: members who joined before it, and some the log never saw.
    known = table[signup < cut]
    extra = known.iloc[:4].copy()
    extra.index = pd.Index([10**9 + i for i in range(4)], name=known.index.name)
    as_of = perkrec.PreferenceModel(num_threads=2).fit(
        log, catalog, cut, user_table=pd.concat([known, extra])
    )
    assert as_of.user_table_report["unknown_to_log"] == 4
    assert as_of.user_table_report["joined_after_cut"] == 0
    assert as_of.user_table_report["without_row"] == report["without_row"]
    assert as_of.covariate_names == full.covariate_names
    np.testing.assert_array_equal(as_of.memberships(), full.memberships())
    pd.testing.assert_frame_equal(as_of.preferences(), full.preferences())
    # Without a table the report is all zero.
    plain = perkrec.PreferenceModel(num_threads=2, latent_classes=2, em_iterations=2)
    plain.fit(log, catalog, cut)
    assert set(plain.user_table_report.values()) == {0}
