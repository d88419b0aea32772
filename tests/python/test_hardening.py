"""Inputs from elsewhere end in perkrec's own typed errors, never in a crash, a builtin
exception or an unbounded allocation; a failed call leaves the object as it was."""

import struct

import numpy as np
import pytest
import scipy.sparse as sp

import perkrec


def _fix_crc(data: bytearray) -> bytes:
    body = len(data) - 8
    data[body : body + 4] = struct.pack("<I", perkrec._core.crc32c(bytes(data[:body])))
    return bytes(data)


def test_crc_helper_matches_the_container():
    assert perkrec._core.crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    data = perkrec.IdMap(["a", "b"]).to_bytes()
    assert _fix_crc(bytearray(data)) == data


def _planted(users=60, benefits=24, seed=3):
    rng = np.random.default_rng(seed)
    dense = (rng.random((users, benefits)) < 0.2) | (
        np.arange(benefits)[None, :] == np.arange(users)[:, None] % benefits
    )
    return sp.csr_matrix(dense.astype(np.float32))


MODELS = [
    lambda: perkrec.ALS(factors=4, iterations=2),
    lambda: perkrec.BPR(factors=4, iterations=2),
    lambda: perkrec.ItemKNN(),
]


@pytest.mark.parametrize("make", MODELS, ids=["ALS", "BPR", "ItemKNN"])
def test_partial_fit_ids_beyond_the_growth_limit_are_input_errors(make):
    m = make().fit(_planted())
    row = _planted()[[5]]
    before = (m.n_users, m.n_benefits)
    for bad in (2**31 - 1, 2**31 - 2, 10**8, m.n_users + perkrec.models.MAX_GROWTH):
        with pytest.raises(perkrec.InputError, match="out of range"):
            m.partial_fit_users([bad], row)
        assert (m.n_users, m.n_benefits) == before
    with pytest.raises(perkrec.InputError, match="does not fit"):
        m.partial_fit_users([2**31], row)
    with pytest.raises(perkrec.InputError, match="max_growth"):
        m.partial_fit_users([m.n_users], row, max_growth="many")
    with pytest.raises(perkrec.InputError, match="max_growth"):
        m.partial_fit_users([m.n_users], row, max_growth=2**40)
    m.partial_fit_users([m.n_users + 4], row, max_growth=5)
    assert m.n_users == before[0] + 5


@pytest.mark.parametrize("make", MODELS, ids=["ALS", "BPR", "ItemKNN"])
def test_thread_counts_are_bounded(make):
    m = make()
    params = m.get_params()
    with pytest.raises(perkrec.ConfigError, match="num_threads"):
        type(m)(**{**params, "num_threads": 5000})


def test_damaged_header_bytes_raise_model_format_error_not_unicode_error():
    data = bytearray(perkrec.IdMap(["alpha", "beta"]).to_bytes())
    header_len = struct.unpack("<I", data[12:16])[0]
    header = bytes(data[32 : 32 + header_len])
    at = header.index(b'"kind"')
    cases = []
    for junk in (b"\xff", b"\xc3\x28", b"\xed\xa0\x80"):
        damaged = bytearray(data)
        damaged[32 + at + 2 : 32 + at + 2 + len(junk)] = junk  # inside the key string
        cases.append(_fix_crc(damaged))
        damaged = bytearray(data)
        damaged[32 + at - 1 : 32 + at - 1 + len(junk)] = junk  # outside any string
        cases.append(_fix_crc(damaged))
    for case in cases:
        with pytest.raises(perkrec.ModelFormatError) as info:
            perkrec.loads(case)
        str(info.value).encode("utf-8")  # a valid str


def test_string_list_offsets_past_the_bytes_are_rejected():
    data = bytearray(perkrec.IdMap(["alpha", "beta", "gamma"]).to_bytes())
    offsets = struct.pack("<4q", 0, 5, 9, 14)
    at = bytes(data).index(offsets)
    data[at : at + 32] = struct.pack("<4q", 0, 5 + 4096, 9, 14)
    with pytest.raises(perkrec.ModelFormatError, match="offset"):
        perkrec.loads(_fix_crc(data))


def test_invalid_utf8_ids_in_a_file_are_rejected():
    data = bytearray(perkrec.IdMap(["alpha", "beta"]).to_bytes())
    at = bytes(data).index(b"alphabeta")
    data[at : at + 1] = b"\xff"
    with pytest.raises(perkrec.ModelFormatError, match="UTF-8"):
        perkrec.loads(_fix_crc(data))


@pytest.mark.parametrize("make", MODELS, ids=["ALS", "BPR", "ItemKNN"])
def test_empty_allow_list_allows_nothing_and_huge_n_is_clamped(make):
    matrix = _planted()
    m = make().fit(matrix)
    users = [0, 1, 2]
    ids, _ = m.recommend(users, matrix[users], n=5, allow=[])
    assert (ids == -1).all()
    ids, _ = m.recommend(users, matrix[users], n=5, allow=[3])
    assert set(ids[ids >= 0].tolist()) <= {3}
    ids, scores = m.recommend(users, matrix[users], n=10**12, filter_already_interacted=False)
    assert ids.shape == (3, m.n_benefits)
    assert sorted(ids[0].tolist()) == list(range(m.n_benefits))
    ids, _ = m.similar_users([0, 1], n=10**12)
    assert ids.shape == (2, m.n_users)
    ids, _ = m.similar_benefits([0], n=10**12, allow=[])
    assert (ids == -1).all()
    with pytest.raises(perkrec.InputError, match="n"):
        m.recommend(users, matrix[users], n=-1)
    with pytest.raises(perkrec.InputError, match="n"):
        m.recommend(users, matrix[users], n=2.5)


def test_a_service_sets_the_thread_count_of_a_loaded_model(tmp_path):
    matrix = _planted()
    for model in (
        perkrec.ALS(factors=4, iterations=2, num_threads=1000),
        perkrec.Popularity(num_threads=1000),
    ):
        model.fit(matrix)
        model.save(tmp_path / "m.perk")
        loaded = perkrec.load(tmp_path / "m.perk")
        assert loaded.get_params()["num_threads"] == 1000
        assert loaded.set_num_threads(2) is loaded
        assert loaded.get_params()["num_threads"] == 2
        with pytest.raises(perkrec.ConfigError, match="num_threads"):
            loaded.set_num_threads(perkrec._core.MAX_THREADS + 1)
        assert loaded.get_params()["num_threads"] == 2


def test_a_stale_canonical_flag_is_not_trusted():
    matrix = _planted()
    reference = perkrec.Popularity().fit(matrix)
    # Same cells, but the first row's entries listed twice (halves) and out of order, with
    # scipy told that the matrix is canonical.
    coo = matrix.tocoo()
    first = coo.row == 0
    rows = np.concatenate([coo.row[~first], coo.row[first], coo.row[first]])
    cols = np.concatenate([coo.col[~first], coo.col[first][::-1], coo.col[first]])
    vals = np.concatenate(
        [coo.data[~first], coo.data[first][::-1] / 2, coo.data[first] / 2]
    ).astype(np.float32)
    order = np.argsort(rows, kind="stable")
    indptr = np.searchsorted(rows[order], np.arange(matrix.shape[0] + 1))
    stale = sp.csr_matrix((vals[order], cols[order], indptr), shape=matrix.shape)
    stale.has_canonical_format = True  # a lie
    assert (np.diff(stale.indices[stale.indptr[0] : stale.indptr[1]]) <= 0).any()
    for make in (perkrec.Popularity, lambda: perkrec.ItemKNN()):
        a = make().fit(matrix)
        b = make().fit(stale)
        np.testing.assert_allclose(
            b.score(np.zeros(24, np.int32), np.arange(24) % matrix.shape[1]),
            a.score(np.zeros(24, np.int32), np.arange(24) % matrix.shape[1]),
            rtol=1e-6,
        )
    assert reference.to_bytes() == perkrec.Popularity().fit(stale).to_bytes()
