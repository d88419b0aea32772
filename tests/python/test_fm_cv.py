"""FMCV: the redemption model chosen by cross-validation (logistic regression path, FM
warm-started from it, seed averaging)."""

import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import perkrec
from perkrec import FMCV


def planted(rows, fields, per_field, k, interaction, seed):
    """One-hot rows (one value per field); the logit is -1 + linear weights (+ rank-k
    interactions of scale `interaction`)."""
    rng = np.random.default_rng(seed)
    n_features = fields * per_field
    w = rng.normal(0, 0.6, n_features)
    v = rng.normal(0, interaction, (n_features, max(k, 1))) if k else np.zeros((n_features, 1))
    cols = rng.integers(0, per_field, (rows, fields)) + np.arange(fields) * per_field
    logit = -1.0 + w[cols].sum(axis=1)
    if k:
        s = v[cols].sum(axis=1)
        logit += 0.5 * ((s**2).sum(axis=1) - (v[cols] ** 2).sum(axis=(1, 2)))
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    X = sp.csr_matrix(
        (np.ones(rows * fields, np.float32), cols.ravel(), np.arange(0, rows * fields + 1, fields)),
        shape=(rows, n_features),
    )
    feature_fields = np.repeat(np.arange(fields, dtype=np.int32), per_field)
    return X, y, feature_fields


def test_linear_truth_selects_logistic_regression_equal_to_sklearn_at_the_same_c():
    sklearn = pytest.importorskip("sklearn.linear_model")
    X, y, ff = planted(3000, 5, 12, 0, 0.0, 1)
    cv = FMCV(factors=4).fit(X, y, feature_fields=ff)
    s = cv.selection_
    assert not s["factorized"]
    assert cv.model_.get_params()["factors"] == 0
    assert s["reg_linear"] in s["reg_linear_path"]
    assert s["linear_loss"] == min(s["path_loss"])
    # The path's minimum is interior: the strongest penalty underfits.
    assert s["path_loss"][0] > s["linear_loss"] + 0.01
    table = cv.cv_results_
    assert table["chosen"].sum() == 1
    assert table.loc[table["chosen"], "reg_linear"].item() == s["reg_linear"]
    C = 1.0 / (s["reg_linear"] * X.shape[0])
    lr = sklearn.LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(cv.model_.linear, lr.coef_.ravel(), atol=2e-3)
    assert cv.model_.bias == pytest.approx(lr.intercept_[0], abs=2e-3)


def test_interaction_truth_selects_the_fm_and_it_predicts_better_on_new_rows():
    X, y, ff = planted(8000, 4, 10, 2, 0.9, 2)
    train, test = slice(0, 6000), slice(6000, 8000)
    cv = FMCV(factors=4, seeds=2).fit(X[train], y[train], feature_fields=ff)
    s = cv.selection_
    assert s["factorized"]
    assert s["loss"] < s["linear_loss"] - 0.005
    assert cv.model_.get_params()["factors"] == 8  # two seeds of 4 factors, averaged
    lr = perkrec.FM(factors=0, reg_bias=0.0, reg_linear=s["reg_linear"]).fit(
        X[train], y[train], feature_fields=ff
    )
    assert perkrec.log_loss(y[test], cv.predict(X[test])) < (
        perkrec.log_loss(y[test], lr.predict(X[test])) - 0.005
    )


def test_folds_are_deterministic_and_stratified():
    y = (np.arange(1003) % 7 == 0).astype(np.float32)
    a, b, c = FMCV.fold_of(y, 5, 7), FMCV.fold_of(y, 5, 7), FMCV.fold_of(y, 5, 8)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    for label in (0, 1):
        counts = np.bincount(a[y == label], minlength=5)
        assert counts.max() - counts.min() <= 1


def test_group_folds_keep_each_household_in_one_fold_and_score_unseen_groups_honestly():
    # 300 households of 10 rows; each household's rate is its own and only its id feature
    # tells it. Row folds let the id look predictive (weak penalty, low CV loss); household
    # folds score households never seen (a strong penalty, a higher CV loss).
    rng = np.random.default_rng(3)
    rate = np.where(rng.random(300) < 0.5, 0.6, 0.05)
    house = np.repeat(np.arange(300), 10)
    y = (rng.random(3000) < rate[house]).astype(np.float32)
    X = sp.csr_matrix((np.ones(3000, np.float32), (np.arange(3000), house)), shape=(3000, 300))
    names = np.array([f"hh-{h * 7919 % 100003}" for h in range(300)])[house]  # any labels
    folds = FMCV.fold_of(y, 5, 1, groups=names)
    assert all(len(np.unique(folds[house == h])) == 1 for h in range(300))
    positives = np.bincount(folds[y == 1], minlength=5)
    assert positives.min() > 0 and positives.max() - positives.min() <= 10
    np.testing.assert_array_equal(folds, FMCV.fold_of(y, 5, 1, groups=pd.Series(names)))
    plain = FMCV(factors=0).fit(X, y)
    grouped = FMCV(factors=0).fit(X, y, groups=names)
    assert grouped.selection_["reg_linear"] > 10 * plain.selection_["reg_linear"]
    assert grouped.selection_["linear_loss"] > plain.selection_["linear_loss"] + 0.02
    before = grouped.selection_
    with pytest.raises(perkrec.InputError, match="groups has 2999"):
        grouped.fit(X, y, groups=names[:-1])
    with pytest.raises(perkrec.InputError, match="groups at position 4"):
        grouped.fit(X, y, groups=np.where(np.arange(3000) == 4, None, names))
    with pytest.raises(perkrec.InputError, match="without positive rows"):
        grouped.fit(X, y, groups=np.arange(3000) % 3)  # 3 groups for 5 folds
    assert grouped.selection_ == before  # refused fits leave the fitted selection as it was
    assert grouped.selection_["reg_linear"] > 10 * plain.selection_["reg_linear"]


def test_thread_count_does_not_change_the_result():
    X, y, ff = planted(2000, 4, 8, 2, 0.9, 3)
    kw = dict(factors=4, max_epochs=5, reg_factors_grid=(1e-3,))
    one = FMCV(num_threads=1, **kw).fit(X, y, feature_fields=ff)
    two = FMCV(num_threads=2, **kw).fit(X, y, feature_fields=ff)
    np.testing.assert_array_equal(one.predict(X), two.predict(X))
    assert one.selection_ == two.selection_


def test_save_load_pickle_and_clone_round_trip(tmp_path):
    X, y, ff = planted(1500, 4, 8, 2, 0.9, 4)
    cv = FMCV(factors=4, max_epochs=4, seeds=2).fit(X, y, feature_fields=ff)
    path = tmp_path / "cv.perk"
    cv.save(path)
    back = FMCV.load(path)
    np.testing.assert_array_equal(back.predict(X), cv.predict(X))
    assert back.selection_ == cv.selection_
    assert back.get_params() == cv.get_params()
    fm = perkrec.load(path)
    assert isinstance(fm, perkrec.FM) and fm.selection == cv.selection_
    np.testing.assert_array_equal(fm.predict(X), cv.predict(X))
    again = pickle.loads(pickle.dumps(cv))
    np.testing.assert_array_equal(again.predict(X), cv.predict(X))
    unfitted = pickle.loads(pickle.dumps(FMCV(folds=3)))
    assert unfitted.get_params()["folds"] == 3 and not unfitted.fitted
    clone = pytest.importorskip("sklearn.base").clone(cv)
    assert clone.get_params() == cv.get_params() and not clone.fitted
    plain = tmp_path / "plain.perk"
    perkrec.FM(factors=0).fit(X, y, feature_fields=ff).save(plain)
    with pytest.raises(perkrec.ModelFormatError, match="without a selection"):
        FMCV.load(plain)


def test_bad_input_raises_typed_errors_and_keeps_the_fitted_model():
    X, y, ff = planted(600, 3, 5, 0, 0.0, 5)
    cv = FMCV(factors=0)
    with pytest.raises(perkrec.InputError, match="not fitted"):
        cv.predict(X)
    cv.fit(X, y, feature_fields=ff)
    before = cv.predict(X)
    bad = y.copy()
    bad[3] = 2
    with pytest.raises(perkrec.InputError, match=r"label at position 3 must be 0 or 1 \(got 2\)"):
        cv.fit(X, bad, feature_fields=ff)
    few = np.zeros_like(y)
    few[:2] = 1
    with pytest.raises(perkrec.InputError, match="at least folds = 5 rows"):
        cv.fit(X, few, feature_fields=ff)
    with pytest.raises(perkrec.InputError, match="y has 10 entries"):
        cv.fit(X, y[:10], feature_fields=ff)
    np.testing.assert_array_equal(cv.predict(X), before)
    with pytest.raises(perkrec.ConfigError, match="reg_linear_path must not be empty"):
        FMCV(reg_linear_path=())
    with pytest.raises(perkrec.ConfigError, match=r"reg_linear_path\[1\] must be finite and > 0"):
        FMCV(reg_linear_path=(1e-3, -1.0))
    with pytest.raises(perkrec.ConfigError, match="reg_factors_grid must be a sequence"):
        FMCV(reg_factors_grid="1e-3")
    with pytest.raises(perkrec.ConfigError, match="folds"):
        FMCV(folds=1)
    with pytest.raises(perkrec.ConfigError, match="seeds x factors"):
        FMCV(factors=64, seeds=17)
    with pytest.raises(perkrec.ConfigError, match="unknown parameter"):
        FMCV().set_params(fold=3)
