"""Property tests of the Python entry points: random shapes, dtypes, NaN/inf, extreme ids,
times and bytes give either a correct result or a perkrec.Error, and a failed call leaves the
object exactly as it was (its saved bytes are unchanged)."""

import numpy as np
import pytest
import scipy.sparse as sp

import perkrec

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

N_USERS, N_BENEFITS = 30, 12


def _matrix():
    rng = np.random.default_rng(0)
    dense = (rng.random((N_USERS, N_BENEFITS)) < 0.3) | (
        np.arange(N_BENEFITS)[None, :] == np.arange(N_USERS)[:, None] % N_BENEFITS
    )
    return sp.csr_matrix(dense.astype(np.float32))


MATRIX = _matrix()
MODELS = {
    "Popularity": perkrec.Popularity().fit(MATRIX),
    "ALS": perkrec.ALS(factors=3, iterations=2, num_threads=1).fit(MATRIX),
    "BPR": perkrec.BPR(factors=3, iterations=2, num_threads=1).fit(MATRIX),
    "ItemKNN": perkrec.ItemKNN().fit(MATRIX),
}

EXTREME_INTS = st.sampled_from(
    [0, 1, -1, N_USERS - 1, N_USERS, 2**31 - 1, -(2**31), 2**31, 2**63 - 1, 10**30]
)
NUMBERS = st.one_of(
    EXTREME_INTS,
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=5),
    st.none(),
)


def _expect_ok_or_perkrec_error(call):
    try:
        return call(), None
    except perkrec.Error as e:  # the one acceptable failure
        str(e).encode("utf-8")
        return None, e


@pytest.mark.parametrize("name", list(MODELS))
@SETTINGS
@given(
    users=st.lists(EXTREME_INTS, min_size=0, max_size=4),
    n=NUMBERS,
    allow=st.one_of(st.none(), st.lists(EXTREME_INTS, max_size=3)),
    exclude=st.one_of(st.none(), st.lists(EXTREME_INTS, max_size=3)),
)
def test_recommend_any_arguments(name, users, n, allow, exclude):
    model = MODELS[name]
    before = model.to_bytes()
    result, error = _expect_ok_or_perkrec_error(
        lambda: model.recommend(
            users,
            MATRIX[[u for u in users if 0 <= u < N_USERS]] if users else None,
            n=n,
            allow=allow,
            exclude=exclude,
        )
    )
    if error is None:
        ids, scores = result
        assert ids.shape == scores.shape
        assert ids.shape[-1] <= N_BENEFITS
        kept = ids[ids >= 0]
        assert ((kept >= 0) & (kept < N_BENEFITS)).all()
        assert not np.isnan(scores[ids >= 0]).any()
        if allow is not None:
            assert set(kept.tolist()) <= set(allow)
        if exclude is not None:
            assert not set(kept.tolist()) & set(exclude)
    assert model.to_bytes() == before


@pytest.mark.parametrize("name", ["ALS", "BPR", "ItemKNN"])
@SETTINGS
@given(ids=st.lists(EXTREME_INTS, min_size=1, max_size=3), growth=NUMBERS)
def test_partial_fit_any_ids(name, ids, growth):
    model = type(MODELS[name]).from_bytes(MODELS[name].to_bytes())
    before = model.to_bytes()
    rows = MATRIX[: len(ids)]
    kwargs = {} if growth is None else {"max_growth": growth}
    _, error = _expect_ok_or_perkrec_error(lambda: model.partial_fit_users(ids, rows, **kwargs))
    if error is not None:
        assert model.to_bytes() == before
    else:
        assert model.n_users >= N_USERS


@SETTINGS
@given(data=st.binary(max_size=400), cut=st.integers(0, 2000), flip=st.integers(0, 255))
def test_loads_any_bytes(data, cut, flip):
    # Random bytes, and a real file cut or with one byte changed.
    real = bytearray(MODELS["ALS"].to_bytes())
    real[cut % len(real)] ^= flip
    for blob in (data, bytes(real), bytes(real[:cut])):
        obj, error = _expect_ok_or_perkrec_error(lambda: perkrec.loads(blob))
        if error is not None:
            assert isinstance(error, perkrec.ModelFormatError)


@SETTINGS
@given(t=NUMBERS)
def test_times_any_value(t):
    log = SMALL_LOG
    result, error = _expect_ok_or_perkrec_error(lambda: perkrec.split_by_time(log, t))
    if error is None:
        train, test = result
        assert len(train) + len(test) == len(log)
    _expect_ok_or_perkrec_error(lambda: POLICY.send_time(t))


@SETTINGS
@given(
    values=st.lists(
        st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=6
    )
)
def test_fm_predict_any_values(values):
    X = sp.csr_matrix(
        (np.array(values, np.float32), (np.zeros(len(values), int), np.arange(len(values)) % 4)),
        shape=(1, 4),
    )
    result, _ = _expect_ok_or_perkrec_error(lambda: FM_MODEL.predict(X))
    if result is not None:
        assert np.isfinite(result).all()


@SETTINGS
@given(
    y=st.lists(st.sampled_from([0, 1, 2, -1, 0.5, np.nan]), min_size=1, max_size=20),
    uplift=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=20),
    treatment=st.lists(st.sampled_from([0, 1, 2, -1]), min_size=1, max_size=20),
)
def test_uplift_metrics_any_input(y, uplift, treatment):
    result, _ = _expect_ok_or_perkrec_error(lambda: perkrec.qini_auc_score(y, uplift, treatment))
    if result is not None:
        assert np.isfinite(result)


SMALL_LOG = perkrec.simulate(n_users=80, seed=5).events
POLICY = perkrec.Policy({"quiet_hours": {"start_hour": 22, "end_hour": 8}})
_rng = np.random.default_rng(1)
FM_MODEL = perkrec.FM(factors=2, epochs=2).fit(
    sp.csr_matrix(_rng.random((20, 4)).astype(np.float32)),
    (_rng.random(20) < 0.5).astype(np.float32),
)
