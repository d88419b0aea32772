"""Collaborative filtering (ALS, BPR, ItemKNN): planted structure, determinism, fold-in,
partial fits, explain, eligibility, BLAS pool limited while training. The shared contract runs in test_models.py."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import perkrec

GROUPS = 4


def planted(users=300, benefits=48, density=0.35, seed=0):
    """Member u likes the benefits b with b % GROUPS == u % GROUPS."""
    rng = np.random.default_rng(seed)
    u, b = np.meshgrid(np.arange(users), np.arange(benefits), indexing="ij")
    mask = (b % GROUPS == u % GROUPS) & (rng.random((users, benefits)) < density)
    mask[np.arange(users), np.arange(users) % GROUPS] = True
    values = rng.integers(1, 5, size=mask.sum()).astype(np.float32)
    return sp.csr_matrix((values, np.nonzero(mask)), shape=(users, benefits))


def in_group_share(users, ids):
    ids = np.asarray(ids)
    valid = ids >= 0
    return float(((ids % GROUPS) == (np.asarray(users)[:, None] % GROUPS))[valid].mean())


MODELS = {
    "als_cg": lambda **kw: perkrec.ALS(factors=8, iterations=8, regularization=0.05, **kw),
    "als_cholesky": lambda **kw: perkrec.ALS(
        factors=8, iterations=8, regularization=0.05, cg_steps=0, **kw
    ),
    "bpr": lambda **kw: perkrec.BPR(factors=8, iterations=60, learning_rate=0.05, **kw),
    "knn_cosine": lambda **kw: perkrec.ItemKNN(neighbours=12, **kw),
    "knn_bm25": lambda **kw: perkrec.ItemKNN(weighting="bm25", neighbours=12, **kw),
    "knn_tfidf": lambda **kw: perkrec.ItemKNN(weighting="tfidf", neighbours=12, **kw),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_planted_groups_are_recovered_and_new_members_fold_in(name):
    matrix = planted()
    model = MODELS[name]().fit(matrix)
    users = np.arange(300)
    ids, scores = model.recommend(users, matrix, n=5)
    assert in_group_share(users, ids) > 0.9
    assert not np.isnan(scores).any()
    for r in range(0, 300, 37):
        assert not set(ids[r]) & set(matrix[r].indices)
    # A member unseen at training, from their history only.
    new_ids, _ = model.recommend_new(matrix[:40], n=5)
    assert new_ids.shape == (40, 5)
    assert in_group_share(users[:40], new_ids) > 0.9
    sim, _ = model.similar_benefits(2, n=4)
    assert sim[0] == 2 and set(sim % GROUPS) == {2}
    sim_users, _ = model.similar_users([1, 2], n=3)
    assert (sim_users[:, 0] == [1, 2]).all() and ((sim_users % GROUPS) == [[1], [2]]).all()


def test_als_is_identical_for_any_thread_count_and_fold_in_matches_training():
    matrix = planted(seed=1)
    for cg in (3, 0):
        one = perkrec.ALS(factors=8, iterations=6, cg_steps=cg, num_threads=1).fit(matrix)
        two = perkrec.ALS(factors=8, iterations=6, cg_steps=cg, num_threads=2).fit(matrix)
        np.testing.assert_array_equal(one.user_factors, two.user_factors)
        np.testing.assert_array_equal(one.benefit_factors, two.benefit_factors)
    exact = perkrec.ALS(factors=8, iterations=15, cg_steps=0, calculate_training_loss=True).fit(
        matrix
    )
    loss = exact.training_loss
    assert len(loss) == 15 and (np.diff(loss) <= 1e-6 * loss[:-1]).all()
    folded = exact.fold_in(matrix)
    trained = exact.user_factors
    cosine = (
        (folded * trained).sum(1) / np.linalg.norm(folded, axis=1) / np.linalg.norm(trained, axis=1)
    )
    assert cosine.min() > 0.98


def test_bpr_one_thread_is_bit_reproducible_and_eligibility_limits_negatives():
    matrix = planted(seed=2)
    a = perkrec.BPR(factors=8, iterations=20, num_threads=1).fit(matrix)
    b = perkrec.BPR(factors=8, iterations=20, num_threads=1).fit(matrix)
    np.testing.assert_array_equal(a.benefit_factors, b.benefit_factors)
    assert a.training_accuracy.shape == (20,)
    # Benefits outside every eligibility row and never interacted with are never sampled.
    wide = sp.hstack([matrix, sp.csr_matrix((300, 8), dtype=np.float32)]).tocsr()
    eligibility = sp.csr_matrix(np.hstack([np.ones((300, 48)), np.zeros((300, 8))]))
    start = perkrec.BPR(factors=8, iterations=0).fit(wide)
    trained = perkrec.BPR(factors=8, iterations=20).fit(wide, eligibility=eligibility)
    np.testing.assert_array_equal(trained.benefit_factors[48:], start.benefit_factors[48:])
    assert not np.array_equal(trained.benefit_factors[:48], start.benefit_factors[:48])
    with pytest.raises(perkrec.InputError, match="expected shape"):
        perkrec.BPR().fit(wide, eligibility=eligibility[:10])


def test_bpr_popularity_negatives_never_draw_a_benefit_nobody_took():
    """Popularity-proportional negatives come from the interactions: a benefit no member took
    is never drawn (its factors stay at their start); uniform negatives move it."""
    matrix = planted(seed=3)
    wide = sp.hstack([matrix, sp.csr_matrix((300, 4), dtype=np.float32)]).tocsr()
    start = perkrec.BPR(factors=8, iterations=0, num_threads=1).fit(wide)
    popular = perkrec.BPR(
        factors=8, iterations=20, num_threads=1, negative_sampling="popularity"
    ).fit(wide)
    uniform = perkrec.BPR(factors=8, iterations=20, num_threads=1).fit(wide)
    np.testing.assert_array_equal(popular.benefit_factors[48:], start.benefit_factors[48:])
    assert not np.array_equal(uniform.benefit_factors[48:], start.benefit_factors[48:])
    assert popular.get_params()["negative_sampling"] == "popularity"
    loaded = perkrec.BPR.from_bytes(popular.to_bytes())
    assert loaded.get_params()["negative_sampling"] == "popularity"
    with pytest.raises(perkrec.ConfigError, match="negative_sampling"):
        perkrec.BPR(negative_sampling="hard")


@pytest.mark.parametrize("name", ["als_cholesky", "bpr", "knn_cosine"])
def test_partial_fit_grows_members_and_benefits(name):
    matrix = planted(seed=3)
    users = perkrec.IdMap([f"m{i}" for i in range(300)])
    model = MODELS[name]().fit(matrix, user_ids=users)
    model.partial_fit_users(
        [301], matrix[[5]], user_ids=perkrec.IdMap([f"m{i}" for i in range(302)])
    )
    assert model.n_users == 302 and model.user_ids.to_external([301])[0] == "m301"
    ids, _ = model.recommend(301, matrix[[5]], n=4)
    assert set(ids % GROUPS) == {1}
    # A new benefit taken by group-3 members.
    column = sp.csr_matrix(
        (np.ones(75, np.float32), (np.zeros(75), np.arange(3, 300, 4))), shape=(1, 302)
    )
    model.partial_fit_benefits([48], column)
    assert model.n_benefits == 49
    scores = model.score([3, 4], [48, 48])
    assert scores[0] > scores[1]
    with pytest.raises(perkrec.InputError, match="expected shape"):
        model.partial_fit_users([1, 2], matrix[[5]])
    with pytest.raises(perkrec.InputError, match="out of range"):
        model.partial_fit_users([-1], sp.csr_matrix((1, 49), dtype=np.float32))


def test_explain_contributions_add_up_to_the_folded_in_score():
    matrix = planted(seed=4)
    benefit_ids = perkrec.IdMap([f"B{i}" for i in range(48)])
    model = perkrec.ALS(factors=8, iterations=8).fit(matrix, benefit_ids=benefit_ids)
    row = matrix[[6]]
    frame = model.explain(row, 10, n=100)
    assert list(frame.columns) == ["benefit", "contribution"]
    assert len(frame) == row.nnz and frame["benefit"].str.startswith("B").all()
    assert (np.diff(frame["contribution"]) <= 0).all()
    folded = model.fold_in(row)[0]
    expected = float(folded @ model.benefit_factors[10])
    assert frame.attrs["score"] == pytest.approx(expected, abs=1e-4)
    assert frame["contribution"].sum() == pytest.approx(expected, abs=1e-4)
    new = model.recommend_new(row, n=3, as_frame=True)
    assert list(new["user"]) == [0, 0, 0] and new["benefit"].str.startswith("B").all()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_bad_confidences_and_ids_raise_input_error(name):
    matrix = planted(seed=5)
    model = MODELS[name]().fit(matrix)
    for bad_value in (np.nan, np.inf, -1.0):
        bad = matrix.copy()
        bad.data[3] = bad_value
        with pytest.raises(perkrec.InputError):
            MODELS[name]().fit(bad)
        with pytest.raises(perkrec.InputError):
            model.recommend_new(bad[:5], n=3)
    with pytest.raises(perkrec.InputError, match="columns"):
        model.recommend_new(matrix[:, :10], n=3)
    with pytest.raises(perkrec.InputError, match="out of range"):
        model.recommend([-1], n=3)
    with pytest.raises(perkrec.InputError, match="out of range"):
        model.similar_benefits([48], n=3)
    with pytest.raises(perkrec.ConfigError):
        type(model)(**{"num_threads": -2})


def test_blas_pool_is_limited_while_perkrec_trains_and_restored_after():
    """No advice to the user: numpy's BLAS runs one thread while perkrec's OpenMP threads train
    (seen from inside the fit through the progress callback), its own count before and after."""
    from perkrec import _blas

    libs = _blas._libraries()
    if not libs:
        pytest.skip("no OpenBLAS / MKL loaded in this process")
    for _, set_ in libs:
        set_(3)
    seen = []
    matrix = planted(seed=6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for model in (
            perkrec.ALS(factors=4, iterations=2, num_threads=2),
            perkrec.BPR(factors=4, iterations=2, num_threads=2),
        ):
            model.fit(matrix, progress=lambda stage, done, total: seen.append(_blas.blas_threads()))
    assert seen and set(seen) == {1}
    assert _blas.blas_threads() == 3
    with _blas.limited(1):
        with _blas.limited(1):  # nested: the outer block restores
            assert _blas.blas_threads() == 1
        assert _blas.blas_threads() == 1
    assert _blas.blas_threads() == 3


@pytest.mark.parametrize("name", sorted(MODELS))
def test_recommend_new_skips_what_the_member_has_unless_asked(name):
    # The default agrees with C++ recommend_new (Filter::filter_already_interacted = true).
    matrix = planted()
    model = MODELS[name]().fit(matrix)
    rows = matrix[:20]
    n = model.n_benefits
    skip, _ = model.recommend_new(rows, n=n)
    keep, _ = model.recommend_new(rows, n=n, filter_already_interacted=False)
    for r in range(20):
        own = set(rows[r].indices)
        assert own, "the planted rows have interactions"
        assert not set(skip[r][skip[r] >= 0]) & own
        assert own <= set(keep[r])
        assert [b for b in keep[r] if b not in own] == list(skip[r][skip[r] >= 0])


def test_scipy_int32_row_offsets_give_the_same_answers_as_int64():
    # scipy builds CSR with int32 indptr/indices; perkrec's CsrView keeps 64-bit row offsets.
    m64 = planted(users=120, benefits=24)
    m32 = m64.copy()
    m32.indptr = m32.indptr.astype(np.int32)
    m32.indices = m32.indices.astype(np.int32)
    m64.indptr = m64.indptr.astype(np.int64)
    m64.indices = m64.indices.astype(np.int64)
    assert m32.indptr.dtype == np.int32 and m64.indptr.dtype == np.int64
    users = np.arange(30)
    elig32, elig64 = m32[users], m64[users]
    for make in (MODELS["als_cg"], MODELS["knn_cosine"], perkrec.Popularity):
        a, b = make().fit(m32), make().fit(m64)
        ra = a.recommend(users, m32[users], n=5, eligibility=elig32, eligibility_blocks=True)
        rb = b.recommend(users, m64[users], n=5, eligibility=elig64, eligibility_blocks=True)
        np.testing.assert_array_equal(ra[0], rb[0])
        np.testing.assert_array_equal(ra[1], rb[1])
        if hasattr(a, "recommend_new"):
            np.testing.assert_array_equal(
                a.recommend_new(m32[:10], n=5)[0], b.recommend_new(m64[:10], n=5)[0]
            )
    ids, _ = perkrec.Popularity().fit(m32).recommend(users, m32[users], n=5)
    metrics32 = perkrec.ranking_metrics(m32[users], ids, k=5)
    metrics64 = perkrec.ranking_metrics(m64[users], ids, k=5)
    assert metrics32 == metrics64
