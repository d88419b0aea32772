"""The recommender contract, run against every model (CONTRACT_MODELS), plus popularity specifics."""

import io
import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.sparse as sp

import perkrec


# Every recommender runs the shared contract below; a new model adds its small factory here.
CONTRACT_MODELS = {
    "popularity": lambda: perkrec.Popularity(),
    "als": lambda: perkrec.ALS(factors=8, iterations=5),
    "bpr": lambda: perkrec.BPR(factors=8, iterations=10, num_threads=1),
    "item_knn": lambda: perkrec.ItemKNN(neighbours=10),
}


def _fit(model):
    rng = np.random.default_rng(0)
    matrix = sp.random(400, 60, density=0.1, format="csr", random_state=1, dtype=np.float32)
    matrix.data[:] = rng.integers(1, 5, size=matrix.nnz)
    users = perkrec.IdMap([f"m{i}" for i in range(400)])
    benefits = perkrec.IdMap([f"B{i}" for i in range(60)])
    return model.fit(matrix, user_ids=users, benefit_ids=benefits), matrix


@pytest.fixture(scope="module", params=sorted(CONTRACT_MODELS))
def fitted(request):
    return _fit(CONTRACT_MODELS[request.param]())


def test_scores_are_member_shares():
    model, matrix = _fit(perkrec.Popularity())
    expected = np.asarray((matrix > 0).sum(axis=0)).ravel() / matrix.shape[0]
    np.testing.assert_allclose(model.benefit_scores, expected, rtol=1e-6)
    np.testing.assert_allclose(model.score([0, 5], [3, 7]), expected[[3, 7]], rtol=1e-6)
    assert model.get_params() == {"weighting": "members", "num_threads": 0}


def test_single_batch_and_frame_results(fitted):
    model, matrix = fitted
    ids, scores = model.recommend(7, matrix[7], n=5)
    assert ids.ndim == 1 and len(ids) == 5 and (np.diff(scores) <= 0).all()
    assert not set(ids) & set(matrix[7].indices)
    batch_ids, batch_scores = model.recommend([7, 8], matrix[[7, 8]], n=5)
    assert batch_ids.shape == (2, 5)
    np.testing.assert_array_equal(batch_ids[0], ids)
    frame = model.recommend([7, 8], matrix[[7, 8]], n=3, as_frame=True)
    assert list(frame.columns) == ["user", "rank", "benefit", "score"]
    assert frame["user"].tolist() == ["m7"] * 3 + ["m8"] * 3
    assert frame["benefit"].tolist()[0] == f"B{ids[0]}"


def test_filters_never_leak(fitted):
    model, matrix = fitted
    rng = np.random.default_rng(5)
    for trial in range(40):
        users = rng.integers(0, 400, size=25).astype(np.int32)
        seen = matrix[users]
        elig = sp.random(25, 60, density=0.5, format="csr", random_state=trial)
        exclude = rng.integers(0, 60, size=4)
        allow = rng.integers(0, 60, size=30) if trial % 2 else None
        blocks = bool(trial % 3 == 0)
        n = int(rng.integers(1, 70))
        ids, scores = model.recommend(
            users,
            seen,
            n=n,
            exclude=exclude,
            allow=allow,
            eligibility=elig,
            eligibility_blocks=blocks,
        )
        assert not np.isnan(scores).any()
        for r in range(len(users)):
            got = ids[r][ids[r] >= 0]
            listed = set(elig[r].indices)
            assert not set(got) & set(seen[r].indices)
            assert not set(got) & set(exclude)
            if allow is not None:
                assert set(got) <= set(allow)
            assert (not set(got) & listed) if blocks else set(got) <= listed
            assert len(set(got)) == len(got)
            assert (np.isinf(scores[r][ids[r] < 0])).all()


def test_save_load_pickle_and_threads_give_identical_results(fitted, tmp_path):
    model, matrix = fitted
    users = np.arange(400, dtype=np.int32)
    expected = model.recommend(users, matrix, n=10)[0]
    path = tmp_path / "pop.perk"
    model.save(path)
    stream = io.BytesIO()
    model.save(stream)
    stream.seek(0)
    for other in (
        perkrec.load(path),
        type(model).load(path),
        pickle.loads(pickle.dumps(model)),
        perkrec.load(io.BytesIO(stream.getvalue())),
        type(model).load(stream),
    ):
        np.testing.assert_array_equal(other.recommend(users, matrix, n=10)[0], expected)
        assert other.benefit_ids == model.benefit_ids
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: model.recommend(users, matrix, n=10)[0], range(32)))
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_bad_input_is_rejected_and_leaves_the_model_unchanged(fitted):
    model, matrix = fitted
    before = model.recommend(np.arange(400), n=5)[0]
    bad = matrix.copy()
    bad.data[0] = np.nan
    with pytest.raises(perkrec.InputError, match="non-finite"):
        model.fit(bad)
    np.testing.assert_array_equal(model.recommend(np.arange(400), n=5)[0], before)
    with pytest.raises(perkrec.InputError, match="out of range"):
        model.recommend([400], n=3)
    with pytest.raises(perkrec.InputError, match="expected shape"):
        model.recommend([1, 2], matrix[[1]], n=3)
    with pytest.raises(perkrec.InputError, match="expected an integer"):
        model.recommend([1.5], n=3)
    with pytest.raises(perkrec.InputError, match="exclude"):
        model.recommend([1], n=3, exclude=[99])
    with pytest.raises(perkrec.InputError, match="not fitted"):
        type(model)().recommend([0], n=3)
    with pytest.raises(perkrec.ConfigError, match="num_threads"):
        type(model)(num_threads=-1)
    if isinstance(model, perkrec.Popularity):
        with pytest.raises(perkrec.ConfigError, match="weighting"):
            perkrec.Popularity(weighting="votes")
