"""scikit-learn's estimator protocol on every model: get_params / set_params from the
constructor, sklearn.base.clone, loaded models, and an FM inside Pipeline + GridSearchCV."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import perkrec

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402

MODELS = [
    (perkrec.Popularity, {"weighting": "confidence"}),
    (perkrec.ALS, {"factors": 4, "iterations": 3}),
    (perkrec.BPR, {"factors": 4, "iterations": 3, "negative_sampling": "popularity"}),
    (perkrec.ItemKNN, {"neighbours": 7}),
    (perkrec.PreferenceModel, {"latent_classes": 3, "face_value_edges": (5.0, 15.0)}),
    (perkrec.FM, {"factors": 3, "epochs": 2}),
    (perkrec.FFM, {"factors": 2}),
    (perkrec.CLVModel, {"time_unit": "day", "penalizer": 0.01}),
    (perkrec.UpliftModel, {"learner": "x", "epochs": 3}),
]
IDS = [m[0].__name__ for m in MODELS]


@pytest.mark.parametrize("cls,kwargs", MODELS, ids=IDS)
def test_get_params_are_the_constructor_keywords(cls, kwargs):
    model = cls(**kwargs)
    params = model.get_params()
    names = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
    assert list(params) == names
    for k, v in kwargs.items():
        assert params[k] is v  # the very objects given: what clone checks
    assert model.get_params(deep=False) == params


@pytest.mark.parametrize("cls,kwargs", MODELS, ids=IDS)
def test_clone_and_set_params(cls, kwargs):
    model = cls(**kwargs)
    twin = clone(model)
    assert type(twin) is cls and twin is not model and twin.get_params() == model.get_params()
    name = "seed" if "seed" in model.get_params() else "num_threads"
    assert model.set_params(**{name: 3}) is model
    assert model.get_params()[name] == 3
    assert {k: v for k, v in model.get_params().items() if k != name} == {
        k: v for k, v in twin.get_params().items() if k != name
    }
    with pytest.raises(perkrec.ConfigError, match="no_such_parameter"):
        model.set_params(no_such_parameter=1)


def test_set_params_validates_through_the_constructor():
    with pytest.raises(perkrec.ConfigError, match="factors"):
        perkrec.ALS().set_params(factors=-1)


def test_a_loaded_model_reports_its_stored_parameters(tmp_path):
    import scipy.sparse as sp

    matrix = sp.random(40, 12, density=0.2, format="csr", random_state=1, dtype=np.float32)
    model = perkrec.ALS(factors=3, iterations=2, num_threads=1).fit(matrix)
    model.save(tmp_path / "als.perk")
    loaded = perkrec.load(tmp_path / "als.perk")
    assert loaded.get_params() == model.get_params()
    assert clone(loaded).get_params() == model.get_params()
    model.set_num_threads(2)
    assert model.get_params()["num_threads"] == 2


def _planted(n, rng):
    a = rng.integers(0, 6, n)
    b = rng.integers(0, 5, n)
    logit = -1.0 + 1.5 * (a == b) - 0.8 * (a >= 4) + 0.6 * (b == 0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return np.column_stack([a, b]), y


def test_fm_in_a_pipeline_and_grid_search():
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(3)
    X, y = _planted(4000, rng)
    X_test, y_test = _planted(2000, rng)
    pipe = Pipeline(
        [
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
            ("fm", perkrec.FM(epochs=15, learning_rate=0.1)),
        ]
    )
    search = GridSearchCV(
        pipe, {"fm__factors": [0, 4], "fm__reg_linear": [1e-5, 1e-3]}, scoring="roc_auc", cv=3
    )
    search.fit(X, y)
    assert set(search.best_params_) == {"fm__factors", "fm__reg_linear"}
    assert sklearn.base.is_classifier(search.best_estimator_)
    proba = search.predict_proba(X_test)
    assert proba.shape == (2000, 2) and np.allclose(proba.sum(axis=1), 1.0)
    # The planted a == b interaction needs factors: the search finds a model that sees it.
    assert roc_auc_score(y_test, proba[:, 1]) > 0.70
    assert search.best_params_["fm__factors"] == 4
    with pytest.raises(perkrec.ConfigError, match="logistic"):
        perkrec.FM(loss="squared").predict_proba(np.zeros((1, 2)))


def test_itemknn_similarity_and_the_deprecated_matrix_alias():
    import scipy.sparse as sp

    matrix = sp.random(30, 10, density=0.3, format="csr", random_state=2, dtype=np.float32)
    knn = perkrec.ItemKNN(neighbours=3).fit(matrix)
    assert knn.get_params()["neighbours"] == 3
    sim = knn.similarity
    assert sim.shape == (10, 10) and np.diff(sim.indptr).max() <= 3
    with pytest.warns(DeprecationWarning, match="similarity"):
        old = knn.neighbours
    assert (old != sim).nnz == 0


@pytest.mark.parametrize("cls,kwargs", MODELS, ids=IDS)
def test_jupyter_summary_names_the_model_and_its_parameters(cls, kwargs):
    html = cls(**kwargs)._repr_html_()
    assert f"perkrec.{cls.__name__}" in html and "not fitted" in html
    for k in kwargs:
        assert f"<td>{k}</td>" in html
