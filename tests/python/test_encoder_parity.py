"""The C++-backed FeatureEncoder gives the same matrices as the numpy encoder it replaced
(tests/python/numpy_encoder_reference.py): same shape, indices and float32 values, on the
simulator and on a real dataset."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import perkrec
from perkrec import datasets
from perkrec.fm import DEFAULT_FIELDS, FeatureEncoder, history_features, redemption_samples
from conftest import dataset_path
import numpy_encoder_reference as reference

# More than the defaults: hashing, min_count, standardize, bins=0 history, a named column.
EXTRA_FIELDS = [
    {"name": "user_hashed", "kind": "id", "column": "user", "hash_buckets": 97},
    {"name": "kind_hashed", "kind": "categorical", "column": "kind", "hash_buckets": 5},
    {"name": "region_common", "kind": "categorical", "column": "region", "min_count": 400},
    {"name": "tenure_z", "kind": "numeric", "column": "tenure_days", "transform": "standardize"},
    {"name": "face_value", "kind": "numeric", "bins": 5},
    {"name": "raw_history", "kind": "history", "bins": 0},
    {
        "name": "some_history",
        "kind": "history",
        "bins": 3,
        "aggregates": ["benefit_claim_rate", "member_ordered"],
    },
]


def assert_identical(a, b):
    a, b = a.tocsr(), b.tocsr()
    assert a.shape == b.shape
    assert a.dtype == b.dtype == np.float32
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.data, b.data)


def both(fields, train, events, catalog):
    new = FeatureEncoder(fields, num_threads=2).fit(train, events=events, catalog=catalog)
    ref = reference.FeatureEncoder(fields).fit(train, events=events, catalog=catalog)
    assert new.field_sizes == ref.field_sizes
    assert json.loads(new.to_json())["state"] == json.loads(ref.to_json())["state"]
    return new, ref


@pytest.fixture(scope="module")
def simulated(small_program):
    samples = redemption_samples(small_program.events, small_program.catalog, small_program.users)
    cut = np.quantile(samples["timestamp"], 0.7)
    return small_program, samples[samples["timestamp"] < cut], samples[samples["timestamp"] >= cut]


def test_parity_on_the_simulator(simulated):
    program, train, test = simulated
    new, ref = both(DEFAULT_FIELDS + EXTRA_FIELDS, train, program.events, program.catalog)
    for frame in (train, test):
        assert_identical(
            new.transform(frame, events=program.events), ref.transform(frame, events=program.events)
        )
    # An event frame instead of an EventLog, and a subset of fields.
    ev = program.events.to_frame(external_ids=False)
    assert_identical(new.transform(test, events=ev), ref.transform(test, events=ev))
    some = ["kind", "threshold", "benefit_history"]
    assert_identical(
        new.transform(test, events=ev, fields=some), ref.transform(test, events=ev, fields=some)
    )
    # history_features (public) matches too, column for column.
    h_new = history_features(test, ev, ref.benefit_kind, ref.benefit_band)
    h_ref = reference.history_features(test, ev, ref.benefit_kind, ref.benefit_band)
    pd.testing.assert_frame_equal(h_new, h_ref[h_new.columns])
    # The JSON round trip keeps the matrices.
    again = FeatureEncoder.from_json(new.to_json())
    assert_identical(
        again.transform(test, events=program.events), ref.transform(test, events=program.events)
    )
    assert repr(new) == repr(ref)


def test_parity_with_missing_and_odd_values(simulated):
    program, train, test = simulated
    train, test = train.copy(), test.copy()
    rng = np.random.default_rng(1)
    for frame in (train, test):
        frame["tier"] = frame["tier"].astype(object)
        frame.loc[rng.random(len(frame)) < 0.1, "tier"] = None
        frame.loc[rng.random(len(frame)) < 0.1, "threshold"] = np.nan
        frame["flag"] = rng.random(len(frame)) < 0.3
        frame["score"] = np.round(rng.random(len(frame)) * 3, 1)
    fields = DEFAULT_FIELDS + [
        {"name": "flag", "kind": "categorical"},
        {"name": "score", "kind": "categorical", "min_count": 2},
        {"name": "score_hashed", "kind": "categorical", "column": "score", "hash_buckets": 11},
        {"name": "tier_hashed", "kind": "categorical", "column": "tier", "hash_buckets": 7},
    ]
    new, ref = both(fields, train, program.events, program.catalog)
    assert_identical(
        new.transform(test, events=program.events), ref.transform(test, events=program.events)
    )


def test_defaults_fit_a_frame_from_any_program(simulated):
    program, train, test = simulated
    bare = train[["user", "benefit", "timestamp", "kind", "weekday"]]
    enc = FeatureEncoder().fit(bare, events=program.events, catalog=program.catalog)
    assert "tier" in enc.dropped_fields and "kind" not in enc.dropped_fields
    assert [f["name"] for f in enc.fields] == [
        "user",
        "benefit",
        "kind",
        "weekday",
        "member_history",
        "benefit_history",
    ]
    ref = reference.FeatureEncoder(
        [f for f in DEFAULT_FIELDS if f["name"] in {x["name"] for x in enc.fields}]
    )
    ref.fit(bare, events=program.events, catalog=program.catalog)
    assert_identical(
        enc.transform(test, events=program.events), ref.transform(test, events=program.events)
    )
    with pytest.raises(perkrec.InputError, match="tier"):
        FeatureEncoder([{"name": "tier", "kind": "categorical"}]).fit(bare)


@pytest.fixture(scope="module")
def starbucks():
    return datasets.load_starbucks(dataset_path("starbucks-rewards-offers"))


def test_parity_on_a_real_dataset(starbucks):
    events, catalog, users = starbucks.events, starbucks.catalog, starbucks.users
    samples = redemption_samples(events, catalog, users)
    assert len(samples) > 10000
    present = [
        f for f in DEFAULT_FIELDS if f["kind"] == "history" or f.get("column", f["name"]) in samples
    ]
    extra = [
        {"name": c, "kind": "categorical"}
        for c in samples.columns
        if c not in {f["name"] for f in present}
        and c not in ("label", "timestamp")
        and samples[c].dtype.kind not in "f"
    ]
    extra += [
        {"name": c + "_q", "kind": "numeric", "column": c, "bins": 7}
        for c in samples.columns
        if samples[c].dtype.kind == "f"
    ]
    cut = np.quantile(samples["timestamp"], 0.6)
    train, test = samples[samples["timestamp"] < cut], samples[samples["timestamp"] >= cut]
    new, ref = both(present + extra + [EXTRA_FIELDS[0], EXTRA_FIELDS[5]], train, events, catalog)
    assert_identical(new.transform(test, events=events), ref.transform(test, events=events))
    assert_identical(new.transform(train, events=events), ref.transform(train, events=events))


def test_a_cpp_service_reads_the_encoder_from_the_fm_file(simulated, tmp_path):
    from perkrec.fm import FM, _core

    program, train, test = simulated
    enc = FeatureEncoder().fit(train, events=program.events, catalog=program.catalog)
    X = enc.transform(train, events=program.events)
    FM(factors=2, epochs=1, num_threads=1).fit(X, train["label"], encoder=enc).save(
        tmp_path / "fm.perk"
    )
    loaded = perkrec.load(tmp_path / "fm.perk")
    served = _core.FeatureEncoder.from_fm_metadata(loaded._impl.metadata)  # what C++ calls
    assert served.to_json() == enc.to_json()
    assert_identical(
        loaded.encoder.transform(test, events=program.events),
        enc.transform(test, events=program.events),
    )
