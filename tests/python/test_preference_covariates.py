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
    frame = pd.DataFrame({"hint": hint, "noise": rng.normal(50, 10, len(archetype))}, index=log.user_ids.ids)
    users = perkrec.UserTable.from_frame(frame, users=log.user_ids)
    return small_program, users, archetype


@pytest.fixture(scope="module")
def with_users(planted):
    program, users, _ = planted
    return perkrec.PreferenceModel(num_threads=2).fit(program.events, program.catalog,
                                                      program.truth.reference_time, users=users)


def test_covariates_recover_planted_relation(planted, with_users):
    program, users, archetype = planted
    plain = perkrec.PreferenceModel(num_threads=2).fit(program.events, program.catalog, program.truth.reference_time)
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
    one = perkrec.PreferenceModel(num_threads=1).fit(program.events, program.catalog,
                                                     program.truth.reference_time, users=users)
    np.testing.assert_array_equal(one.memberships(), with_users.memberships())
    np.testing.assert_array_equal(one.covariate_weights().to_numpy(), with_users.covariate_weights().to_numpy())
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
    short = perkrec.UserTable.from_frame(pd.DataFrame({"x": [1.0, 2.0]}, index=["a", "b"]))
    with pytest.raises(perkrec.InputError, match="users table holds 2 rows"):
        model.fit(log, catalog, cut, users=short)
    age = np.linspace(20, 60, log.n_users)
    age[5] = np.nan
    frame = pd.DataFrame({"age": age}, index=log.user_ids.ids)
    with pytest.raises(perkrec.InputError, match="numeric column 'age'"):
        model.fit(log, catalog, cut, users=perkrec.UserTable.from_frame(frame, users=log.user_ids))
    assert not model._impl.fitted  # unchanged on error
