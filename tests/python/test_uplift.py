"""UpliftModel (T/X/DR learners over FM) through Python: planted effects, multi-arm ranking,
save/load/pickle, bad input, reproducibility, and a scikit-learn T-learner for comparison."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp

import perkrec
from perkrec import UpliftModel

LEARNERS = ["t", "x", "dr"]
PLANTED = [[0.2, 0.1, -0.1, 0.0]]  # effect of arm k on P(y) by level of feature A


def simulate(n, effects, seed, confounded=False):
    """One-hot fields A (4 levels, carries the effect), B (4, baseline), C (3; when confounded it
    drives assignment and baseline and is hidden from X)."""
    rng = np.random.default_rng(seed)
    a, b, c = rng.integers(0, 4, n), rng.integers(0, 4, n), rng.integers(0, 3, n)
    # Confounded: C drives assignment and baseline and is left out of X (unobserved).
    fields = [a, 4 + b] if confounded else [a, 4 + b, 8 + c]
    cols = np.stack(fields, axis=1).ravel()
    m = len(fields)
    X = sp.csr_matrix((np.ones(m * n, np.float32), cols, np.arange(0, m * n + 1, m)), shape=(n, 11))
    arms = len(effects)
    if confounded:
        p1 = 0.2 + 0.3 * c
        t = (rng.random(n) < p1).astype(np.int32)
        propensity = np.where(t == 1, p1, 1 - p1)
    else:
        t = rng.integers(0, arms + 1, n).astype(np.int32)
        propensity = np.full(n, 1.0 / (arms + 1))
    eff = np.zeros((arms + 1, 4))
    eff[1:] = effects
    p = (0.2 + 0.05 * b + 0.15 * c if confounded else 0.25 + 0.05 * b) + eff[t, a]
    y = (rng.random(n) < p).astype(np.float32)
    return X, y, t, propensity, a, eff[1:, a].T  # truth: n x K


def fit(learner, X, y, t, **kw):
    return UpliftModel(learner, factors=4, epochs=10, num_threads=1, **kw).fit(X, y, t)


@pytest.fixture(scope="module")
def binary_data():
    return simulate(40000, PLANTED, 1)


@pytest.mark.parametrize("learner", LEARNERS)
def test_planted_effect_recovered(binary_data, learner):
    X, y, t, _, a, truth = binary_data
    uplift = fit(learner, X, y, t).predict(X)
    assert uplift.shape == (X.shape[0],) and uplift.dtype == np.float32
    assert np.corrcoef(uplift, truth[:, 0])[0, 1] > 0.8
    means = np.array([uplift[a == g].mean() for g in range(4)])
    np.testing.assert_allclose(means, PLANTED[0], atol=0.05)


@pytest.mark.parametrize("learner", LEARNERS)
def test_zero_effect_gives_uplift_near_zero(learner):
    X, y, t, _, a, _ = simulate(100000, [[0.0] * 4], 2)
    uplift = fit(learner, X, y, t).predict(X)
    assert max(abs(uplift[a == g].mean()) for g in range(4)) < 0.025


@pytest.mark.parametrize("learner", LEARNERS)
def test_multi_treatment_ranks_arms(learner):
    X, y, t, _, a, truth = simulate(60000, [[0.2, 0.15, 0.0, 0.0], [0.0, 0.0, 0.15, 0.2]], 3)
    model = fit(learner, X, y, t)
    assert model.n_arms == 2
    uplift = model.predict(X)
    assert uplift.shape == (X.shape[0], 2)
    best = uplift.argmax(axis=1)
    assert (best == truth.argmax(axis=1)).mean() > 0.9
    outcomes = model.predict_outcomes(X)
    assert outcomes.shape == (X.shape[0], 3) and ((outcomes > 0) & (outcomes < 1)).all()


def test_dr_with_logged_propensities_corrects_an_unobserved_confounder():
    X, y, t, propensity, a, _ = simulate(200000, PLANTED, 4, confounded=True)
    corrected = UpliftModel("dr", factors=4, epochs=10, num_threads=1).fit(X, y, t, propensity)
    assert corrected.propensities_clipped == 0
    biased = UpliftModel("dr", factors=4, epochs=10, num_threads=1).fit(X, y, t).predict(X)
    uplift = corrected.predict(X)
    for g in range(4):
        assert uplift[a == g].mean() == pytest.approx(PLANTED[0][g], abs=0.04)
        assert biased[a == g].mean() > PLANTED[0][g] + 0.06


@pytest.mark.parametrize("learner", LEARNERS)
def test_save_load_pickle_round_trip(tmp_path, learner):
    X, y, t, propensity, _, _ = simulate(4000, [[0.2, 0.1, -0.1, 0.0], [0.0, 0.1, 0.1, 0.0]], 5)
    model = UpliftModel(learner, factors=4, epochs=3).fit(X, y, t, propensity)
    expected = model.predict(X)
    path = tmp_path / "uplift.perk"
    model.save(path)
    for loaded in (UpliftModel.load(path), perkrec.load(path), pickle.loads(pickle.dumps(model))):
        assert isinstance(loaded, UpliftModel)
        assert loaded.params == model.params
        np.testing.assert_array_equal(loaded.predict(X), expected)
    assert perkrec.info(path)["kind"] == "UpliftModel"


@pytest.mark.parametrize("learner", LEARNERS)
def test_one_thread_is_bit_reproducible(binary_data, learner):
    X, y, t, *_ = binary_data
    np.testing.assert_array_equal(
        fit(learner, X, y, t).predict(X), fit(learner, X, y, t).predict(X)
    )


def test_params_and_sklearn_clone():
    from sklearn.base import clone

    model = UpliftModel("x", factors=16, learning_rate=0.1, fit_propensity=True)
    params = model.params
    assert params["learner"] == "x" and params["factors"] == 16 and params["fit_propensity"] is True
    assert (
        "loss" not in params and params["epochs"] >= 1
    )  # C++ defaults shown, stage-owned keys hidden
    assert model.get_params()["epochs"] is None and model.get_params()["factors"] == 16
    assert clone(model).params == params
    assert model.set_params(learner="dr").params["learner"] == "dr"
    with pytest.raises(perkrec.ConfigError, match="learner"):
        UpliftModel("s")
    with pytest.raises(perkrec.ConfigError, match="propensity_clip"):
        UpliftModel(propensity_clip=0.7)


def test_bad_input_raises_and_leaves_model_unchanged():
    X, y, t, propensity, _, _ = simulate(3000, PLANTED, 6)
    model = fit("dr", X, y, t)
    before = model.to_bytes()
    cases = [
        (dict(y=np.where(np.arange(len(y)) == 3, 0.5, y)), "outcome at position 3"),
        (dict(y=np.where(np.arange(len(y)) == 4, np.nan, y)), "outcome at position 4"),
        (dict(t=np.where(np.arange(len(t)) == 5, -1, t)), "treatment at position 5"),
        (dict(t=np.where(np.arange(len(t)) == 6, 3, t)), "treatment arm 2 has 0 rows"),
        (
            dict(propensity=np.where(np.arange(len(t)) == 7, 0.0, propensity)),
            "propensity at position 7",
        ),
        (
            dict(propensity=np.where(np.arange(len(t)) == 8, 1.5, propensity)),
            "propensity at position 8",
        ),
        (dict(propensity=propensity[:-1]), "propensity has 2999 entries"),
        (dict(y=y[:-1]), "outcome has 2999 entries"),
    ]
    for change, message in cases:
        args = dict(X=X, y=y, t=t, propensity=None, **{})
        args.update(change)
        with pytest.raises(perkrec.InputError, match=message):
            model.fit(args["X"], args["y"], args["t"], args["propensity"])
        assert isinstance(perkrec.InputError(""), ValueError)
    with pytest.raises(perkrec.InputError, match="sample_weights has 2999 entries"):
        model.fit(X, y, t, sample_weight=np.ones(len(y) - 1))
    bad_X = X.copy()
    bad_X.data[0] = np.inf
    with pytest.raises(perkrec.InputError, match="X"):
        model.fit(bad_X, y, t)
    assert model.to_bytes() == before
    with pytest.raises(perkrec.InputError, match="not fitted"):
        UpliftModel().predict(X)
    with pytest.raises(perkrec.InputError, match="feature columns"):
        model.predict(sp.hstack([X, X]).tocsr())


def test_ranking_at_least_as_good_as_sklearn_t_learner(binary_data):
    """A T-learner of two scikit-learn LogisticRegressions on the same one-hot rows."""
    from sklearn.linear_model import LogisticRegression

    X, y, t, _, _, truth = binary_data
    arms = [LogisticRegression(max_iter=1000).fit(X[t == k], y[t == k]) for k in (0, 1)]
    sk = arms[1].predict_proba(X)[:, 1] - arms[0].predict_proba(X)[:, 1]
    sk_corr = np.corrcoef(sk, truth[:, 0])[0, 1]
    for learner in LEARNERS:
        ours = np.corrcoef(fit(learner, X, y, t).predict(X), truth[:, 0])[0, 1]
        assert ours >= sk_corr - 0.01, (learner, ours, sk_corr)


@pytest.mark.parametrize("learner", LEARNERS)
def test_sample_weights_reach_every_stage(binary_data, learner):
    X, y, t, _, a, _ = binary_data
    # Unit weights change nothing; zero weights remove rows whose outcomes were scrambled.
    plain = fit(learner, X, y, t).predict(X)
    unit = UpliftModel(learner, factors=4, epochs=10, num_threads=1).fit(
        X, y, t, sample_weight=np.ones(len(y))
    )
    np.testing.assert_array_equal(unit.predict(X), plain)
    rng = np.random.default_rng(9)
    scrambled = rng.random(len(y)) < 0.4
    noisy_y = np.where(scrambled & (t == 1), 1.0, y).astype(np.float32)  # treated rows all "visit"
    weights = np.where(scrambled, 0.0, 1.0)
    weighted = UpliftModel(learner, factors=4, epochs=10, num_threads=1).fit(
        X, noisy_y, t, sample_weight=weights
    )
    unweighted = fit(learner, X, noisy_y, t).predict(X)
    means = np.array([weighted.predict(X)[a == g].mean() for g in range(4)])
    np.testing.assert_allclose(means, PLANTED[0], atol=0.05)
    assert unweighted.mean() > 0.15  # the scrambled rows, kept, inflate every effect
