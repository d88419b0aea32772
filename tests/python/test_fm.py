"""FeatureEncoder (leak safety), FM/FFM through Python, calibration, cold start."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import perkrec
from perkrec.fm import (
    FFM,
    FM,
    FeatureEncoder,
    IsotonicCalibrator,
    PlattCalibrator,
    redemption_samples,
    reliability_curve,
)


@pytest.fixture(scope="module")
def program(small_program):
    return small_program


@pytest.fixture(scope="module")
def split(program):
    samples = redemption_samples(program.events, program.catalog, program.users)
    cut = np.quantile(samples["timestamp"], 0.8)
    train, test = samples[samples["timestamp"] < cut], samples[samples["timestamp"] >= cut]
    enc = FeatureEncoder().fit(train, events=program.events, catalog=program.catalog)
    return samples, train, test, enc


@pytest.fixture(scope="module")
def fitted(program, split):
    _, train, test, enc = split
    X = enc.transform(train, events=program.events)
    Xt = enc.transform(test, events=program.events)
    model = FM(factors=8, epochs=6, num_threads=2).fit(X, train["label"], encoder=enc)
    return model, X, Xt


def test_labels_follow_redemptions(program):
    samples = redemption_samples(program.events, program.catalog)
    ev = program.events.to_frame(external_ids=False)
    redeemed_pairs = set(
        zip(
            ev.loc[ev.event_type == "redeemed", "user"],
            ev.loc[ev.event_type == "redeemed", "benefit"],
        )
    )
    positives = samples[samples["label"] == 1]
    assert len(positives) > 0
    assert all((u, b) in redeemed_pairs for u, b in zip(positives["user"], positives["benefit"]))
    assert 0.02 < samples["label"].mean() < 0.6


def test_labels_equal_a_scan_of_each_pairs_redemptions(program):
    """The C++ labels (features/redemption_labels.hpp) against a plain per-issue scan: label 1
    iff the first redemption of the pair at or after the issue is within the validity."""
    import bisect

    samples = redemption_samples(program.events, program.catalog)
    frame = program.events.to_frame(external_ids=False)
    from_frame = redemption_samples(frame, program.catalog)
    pd.testing.assert_frame_equal(samples, from_frame)
    assert samples.attrs == from_frame.attrs
    ev = frame.assign(t=program.events.timestamps)
    times = {}
    for u, b, t in ev.loc[ev.event_type == "redeemed", ["user", "benefit", "t"]].itertuples(
        index=False
    ):
        times.setdefault((u, b), []).append(t)
    for v in times.values():
        v.sort()
    validity = program.catalog.to_frame()["validity_days"].to_numpy()
    last = int(ev["t"].max())
    labels, late, still_open = [], 0, 0
    for u, b, t in samples[["user", "benefit", "timestamp"]].itertuples(index=False):
        r = times.get((u, b), [])
        i = bisect.bisect_left(r, t)
        window = validity[b] * 86400
        labels.append(int(i < len(r) and r[i] - t <= window))
        late += int(i < len(r) and r[i] - t > window)
        still_open += int(not labels[-1] and t + window > last)
    assert samples["label"].tolist() == labels
    assert samples.attrs["redeemed_after_window"] == late
    assert samples.attrs["open_at_end"] == still_open
    assert 0 < sum(labels) < len(labels) and late > 0


def test_reliability_curve_equals_the_numpy_reference():
    """The C++ curve (eval/metrics.hpp: reliability_curve) bit for bit against numpy."""
    rng = np.random.default_rng(5)
    p = rng.beta(2, 5, size=3001)
    y = (rng.uniform(size=len(p)) < p * 1.2).astype(np.float64)
    for bins, strategy in ((10, "uniform"), (7, "quantile"), (1, "uniform"), (300, "quantile")):
        edges = (
            np.linspace(0, 1, bins + 1)
            if strategy == "uniform"
            else np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
        )
        which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
        rows = [
            (b, edges[b], edges[b + 1], p[which == b].mean(), y[which == b].mean())
            for b in range(len(edges) - 1)
            if (which == b).any()
        ]
        counts = np.array([(which == r[0]).sum() for r in rows])
        gaps = np.abs(np.array([r[3] for r in rows]) - np.array([r[4] for r in rows]))
        curve = reliability_curve(y, p, bins=bins, strategy=strategy)
        np.testing.assert_array_equal(
            curve[["bin", "low", "high"]].to_numpy(), np.array([r[:3] for r in rows])
        )
        np.testing.assert_array_equal(curve["mean_predicted"], [r[3] for r in rows])
        np.testing.assert_array_equal(curve["fraction_positive"], [r[4] for r in rows])
        np.testing.assert_array_equal(curve["count"], counts)
        assert curve.attrs["ece"] == np.sum(counts * gaps) / len(y)
    with pytest.raises(perkrec.InputError, match="lengths differ"):
        reliability_curve([0, 1], [0.5])
    with pytest.raises(perkrec.InputError, match="finite"):
        reliability_curve([0, 1], [0.5, np.nan])
    with pytest.raises(perkrec.ConfigError, match="strategy"):
        reliability_curve([0, 1], [0.5, 0.2], strategy="kmeans")


def test_history_features_never_see_the_future(program, split):
    samples, _, _, enc = split
    events = program.events.to_frame(external_ids=False)
    t_sec = (
        (events["timestamp"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    ).to_numpy()
    cut = int(np.median(samples["timestamp"]))
    at_cut = samples[samples["timestamp"] == cut]
    assert len(at_cut) > 0
    # Rewrite the future: drop every event at or after the cut, then add redemptions, claims
    # and issues for the cut sample's member and benefit exactly AT the cut and later.
    future = events[t_sec < cut].copy()
    rng = np.random.default_rng(0)
    extra = []
    for u, b in zip(at_cut["user"], at_cut["benefit"]):
        for etype in ("issued", "claimed", "redeemed"):
            for dt in (0, 0, 5, 3600):
                extra.append((u, b, etype, cut + dt))
    for _ in range(2000):
        extra.append(
            (
                int(rng.integers(program.events.n_users)),
                int(rng.integers(len(program.catalog))),
                rng.choice(["issued", "claimed", "redeemed"]),
                cut + int(rng.integers(0, 10**6)),
            )
        )
    extra = pd.DataFrame(extra, columns=["user", "benefit", "event_type", "timestamp"])
    extra["timestamp"] = pd.to_datetime(extra["timestamp"], unit="s", utc=True)
    changed = pd.concat(
        [future[["user", "benefit", "event_type", "timestamp"]], extra], ignore_index=True
    )
    before = samples[samples["timestamp"] <= cut]
    a = enc.transform(before, events=events)
    b = enc.transform(before, events=changed)
    assert (a != b).nnz == 0
    # Control: the change is visible to later samples (the test can fail).
    later = samples[samples["timestamp"] > cut + 3600]
    assert (enc.transform(later, events=events) != enc.transform(later, events=changed)).nnz > 0


def test_encoder_spec_is_strict_and_inputs_are_checked(program, split):
    samples, train, _, enc = split
    with pytest.raises(perkrec.ConfigError):
        FeatureEncoder([{"name": "kind", "kind": "categorical", "min_cnt": 3}])
    with pytest.raises(perkrec.ConfigError):
        FeatureEncoder([{"name": "kind", "kind": "embedding"}])
    with pytest.raises(perkrec.InputError):
        enc.transform(train.head(), fields=["no_such_field"])
    with pytest.raises(perkrec.InputError):
        FeatureEncoder([{"name": "missing_column", "kind": "categorical"}]).fit(train)
    std = FeatureEncoder(
        [{"name": "face_value", "kind": "numeric", "transform": "standardize"}]
    ).fit(train)
    bad = train.head(3).copy()
    bad["face_value"] = np.nan
    with pytest.raises(perkrec.InputError):
        std.transform(bad)
    hashed = FeatureEncoder([{"name": "user", "kind": "id", "hash_buckets": 64}]).fit(train)
    X = hashed.transform(train)
    assert X.shape == (len(train), 64) and X.nnz == len(train)
    again = FeatureEncoder.from_json(enc.to_json())
    assert (
        again.transform(train.head(50), events=program.events)
        != enc.transform(train.head(50), events=program.events)
    ).nnz == 0


def test_fm_beats_chance_and_roundtrips(fitted, split, tmp_path):
    model, X, Xt = fitted
    _, train, test, enc = split
    p = model.predict(Xt)
    y = test["label"].to_numpy()
    assert perkrec.auc(y, p) > 0.65
    assert perkrec.log_loss(y, p) < perkrec.log_loss(y, np.full(len(y), y.mean()))
    path = tmp_path / "fm.perk"
    model.save(path)
    loaded = perkrec.load(path)
    assert isinstance(loaded, FM)
    np.testing.assert_array_equal(loaded.predict(Xt), p)
    assert loaded.encoder is not None and loaded.encoder.n_features == enc.n_features
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(Xt), p)
    assert model.get_params()["factors"] == 8


def test_score_candidates_equals_joint_rows(program, fitted, split):
    model, _, _ = fitted
    _, _, test, enc = split
    benefit_fields = [
        "benefit",
        "kind",
        "face_value_band",
        "threshold",
        "discount_rate",
        "validity_days",
        "scope",
        "channel",
        "benefit_history",
    ]
    member_fields = [f["name"] for f in enc.fields if f["name"] not in benefit_fields]
    rows = test.head(6)
    base = enc.transform(rows, events=program.events, fields=member_fields)
    cands = enc.transform(rows, events=program.events, fields=benefit_fields)
    grid = model.score_candidates(base, cands)
    assert grid.shape == (6, 6)
    joint = enc.transform(rows, events=program.events)
    np.testing.assert_allclose(np.diag(grid), model.decision_function(joint), rtol=1e-4, atol=1e-4)


def test_bad_inputs_raise_input_error(fitted):
    model, X, _ = fitted
    bad = X[:5].copy().astype(np.float32)
    bad.data[0] = np.nan
    with pytest.raises(perkrec.InputError):
        model.predict(bad)
    with pytest.raises(perkrec.InputError):
        FM().fit(X, np.zeros(3))
    wide = sp.csr_matrix((5, X.shape[1] + 3), dtype=np.float32)
    with pytest.raises(perkrec.InputError):
        model.predict(wide)
    with pytest.raises(perkrec.InputError):
        FM().fit(X, np.zeros(X.shape[0]), feature_fields=np.zeros(X.shape[1], np.int32), n_fields=0)
    with pytest.raises(perkrec.ConfigError):
        FM(loss="hinge")


def test_divergence_is_an_arithmetic_error_and_keeps_a_finite_model(fitted):
    _, X, _ = fitted
    y = np.random.default_rng(0).normal(0, 1000, X.shape[0])
    model = FM(
        loss="squared", optimizer="sgd", learning_rate=10.0, init_std=1.0, epochs=3, num_threads=1
    )
    with pytest.raises(ArithmeticError):
        model.fit(X, y)
    assert model.fitted and np.all(np.isfinite(model.factors))


def test_ffm_and_partial_fit(program, split):
    _, train, test, enc = split
    X = enc.transform(train, events=program.events)
    Xt = enc.transform(test, events=program.events)
    y = train["label"].to_numpy()
    ffm = FFM(factors=4, epochs=10, early_stopping_rounds=1, num_threads=2).fit(
        X, y, encoder=enc, validation=(Xt, test["label"])
    )
    assert perkrec.auc(test["label"].to_numpy(), ffm.predict(Xt)) > 0.65
    assert ffm.factors.shape == (enc.n_features, enc.n_fields, 4)
    assert isinstance(perkrec.loads(ffm.to_bytes()), FFM)
    fm = FM(factors=4, epochs=2, num_threads=1).fit(X[:5000], y[:5000], encoder=enc)
    fm.partial_fit(X[5000:], y[5000:])
    assert len(fm.history) == 4


def test_calibration():
    rng = np.random.default_rng(1)
    s = rng.normal(0, 2, 20000)
    p_true = 1 / (1 + np.exp(-(0.5 * s - 1.0)))
    y = (rng.random(len(s)) < p_true).astype(np.uint8)
    platt = PlattCalibrator().fit(s, y)
    assert abs(platt.a - 0.5) < 0.05 and abs(platt.b + 1.0) < 0.08
    iso = IsotonicCalibrator().fit(s, y)
    q = iso.predict(np.sort(s))
    assert np.all(np.diff(q) >= -1e-12)
    raw = 1 / (1 + np.exp(-s))  # miscalibrated
    before = reliability_curve(y, raw).attrs["ece"]
    after = reliability_curve(y, iso.predict(s)).attrs["ece"]
    assert after < 0.02 < before
    curve = reliability_curve(y, platt.predict(s), bins=5, strategy="quantile")
    assert curve["count"].sum() == len(y)
    np.testing.assert_allclose(curve["mean_predicted"], curve["fraction_positive"], atol=0.03)
    # Round trips through JSON and pickle give the same predictions.
    import pickle

    for c in (platt, iso):
        again = type(c).from_json(c.to_json())
        np.testing.assert_array_equal(again.predict(s[:100]), c.predict(s[:100]))
        np.testing.assert_array_equal(
            pickle.loads(pickle.dumps(c)).predict(s[:100]), c.predict(s[:100])
        )
    with pytest.raises(perkrec.InputError):
        PlattCalibrator().fit(s, np.full(len(s), 2.0))  # labels must be 0 / 1
    with pytest.raises(perkrec.InputError):
        IsotonicCalibrator().predict(s)  # not fitted


def test_cold_start_benefits_and_members_score_from_attributes(program, split):
    samples, _, _, _ = split
    rng = np.random.default_rng(3)
    held_benefits = rng.choice(len(program.catalog), size=len(program.catalog) // 4, replace=False)
    held_users = rng.choice(program.events.n_users, size=program.events.n_users // 5, replace=False)
    is_new = samples["benefit"].isin(held_benefits) | samples["user"].isin(held_users)
    train, test = samples[~is_new], samples[samples["benefit"].isin(held_benefits)]
    enc = FeatureEncoder().fit(train, events=program.events, catalog=program.catalog)
    model = FM(factors=8, epochs=5, num_threads=2).fit(
        enc.transform(train, events=program.events), train["label"]
    )
    y = test["label"].to_numpy()
    p = model.predict(enc.transform(test, events=program.events))
    assert perkrec.auc(y, p) > 0.6
    new_members = samples[
        samples["user"].isin(held_users) & ~samples["benefit"].isin(held_benefits)
    ]
    p = model.predict(enc.transform(new_members, events=program.events))
    assert perkrec.auc(new_members["label"].to_numpy(), p) > 0.6


def test_two_thread_training_merges_per_thread_bias():
    # Labels independent of the features and every feature L2-regularized hard: the base rate
    # can only be carried by the bias. With two threads each thread updates a private copy of
    # the bias and merges its change per block; a lost or double-counted merge would move the
    # bias away from logit(base rate) and away from the one-thread model's bias.
    import scipy.sparse as sp

    rng = np.random.default_rng(3)
    rows, fields, per_field = 60_000, 4, 50
    idx = (
        (rng.integers(0, per_field, size=(rows, fields)) + np.arange(fields) * per_field)
        .astype(np.int32)
        .ravel()
    )
    X = sp.csr_matrix(
        (np.ones(rows * fields, np.float32), idx, np.arange(0, rows * fields + 1, fields)),
        shape=(rows, fields * per_field),
    )
    y = (rng.random(rows) < 0.2).astype(np.float32)
    target = np.log(0.2 / 0.8)
    biases = {}
    for threads in (1, 2):
        for opt in ("sgd", "adagrad"):
            m = FM(
                factors=4,
                epochs=3,
                optimizer=opt,
                learning_rate=0.02,
                reg_linear=1.0,
                reg_factors=1.0,
                num_threads=threads,
            ).fit(X, y)
            biases[threads, opt] = m._impl.bias
            assert abs(m._impl.bias - target) < 0.2, (threads, opt, m._impl.bias)
            assert abs(float(np.mean(m.predict(X))) - 0.2) < 0.03
    for opt in ("sgd", "adagrad"):
        assert abs(biases[1, opt] - biases[2, opt]) < 0.15


def _planted_logistic(n=4000, d=30, seed=3):
    rng = np.random.default_rng(seed)
    dense = rng.normal(size=(n, d)) * (rng.random((n, d)) < 0.3)  # sparse-ish real features
    coef = rng.normal(0, 0.8, d)
    y = (rng.random(n) < 1 / (1 + np.exp(-(dense @ coef - 0.4)))).astype(np.float32)
    return sp.csr_matrix(dense.astype(np.float32)), y


@pytest.mark.parametrize("lam", [1e-4, 1e-2])
def test_factors_zero_is_exact_logistic_regression(lam, tmp_path):
    from sklearn.linear_model import LogisticRegression

    X, y = _planted_logistic()
    n = X.shape[0]
    lr = FM(factors=0, reg_linear=lam).fit(X, y)
    # Same objective: mean log-loss + lam/2 |w|^2  <=>  C sum log-loss + |w|^2/2 with C = 1/(lam n).
    # newton-cg: sklearn's lbfgs stops ~1e-6 short of the optimum even at tol=1e-12.
    ref = LogisticRegression(C=1.0 / (lam * n), solver="newton-cg", tol=1e-12, max_iter=10_000).fit(
        X.toarray().astype(np.float64), y
    )
    np.testing.assert_allclose(lr.linear, ref.coef_[0], atol=1e-6)  # float32 storage
    assert abs(lr.bias - ref.intercept_[0]) < 1e-6
    np.testing.assert_allclose(lr.predict(X), ref.predict_proba(X.toarray())[:, 1], atol=2e-6)
    assert lr.factors.shape == (X.shape[1], 0)
    # Identical for any thread count; save/load and pickle round-trip.
    other = FM(factors=0, reg_linear=lam, num_threads=2).fit(X, y)
    assert np.array_equal(other.linear, lr.linear) and other.bias == lr.bias
    lr.save(tmp_path / "lr.perk")
    loaded = perkrec.load(tmp_path / "lr.perk")
    assert loaded.get_params()["factors"] == 0
    assert np.array_equal(loaded.predict(X), lr.predict(X))
    assert np.array_equal(pickle.loads(pickle.dumps(lr)).predict(X), lr.predict(X))


def test_factors_zero_config_errors():
    with pytest.raises(perkrec.ConfigError, match="factors"):
        FM(factors=-1)
    with pytest.raises(perkrec.ConfigError, match="early_stopping_rounds"):
        FM(factors=0, early_stopping_rounds=2)
    assert FFM(factors=0).get_params()["factors"] == 0


# --- samples from any program's data ------------------------------------------------------------
def _coupon_program():
    """A small program in the shape of a public coupon dataset: no kind, free attribute columns,
    labels given per offer, a campaign per offer, members without events."""
    catalog = perkrec.Catalog.from_frame(
        pd.DataFrame(
            {
                "coupon_id": ["c1", "c2", "c3"],
                "brand": ["Acme", "Bolt", "Acme"],
                "category": ["Meat", "Grocery", "Meat"],
                "validity_days": [30, 30, 30],
            }
        ),
        id_column="coupon_id",
    )
    events = perkrec.EventLog.from_frame(
        pd.DataFrame(
            {
                "user": [10, 10, 11],
                "benefit": ["c1", "c1", "c2"],
                "event_type": ["issued", "redeemed", "issued"],
                "timestamp": pd.to_datetime(["2026-01-01", "2026-03-01", "2026-01-02"], utc=True),
            }
        ),
        benefits=catalog,
    )
    users = perkrec.UserTable.from_frame(
        pd.DataFrame({"income": [1, 2, 3]}, index=[10, 11, 12]), user_ids=events.user_ids
    )
    offers = pd.DataFrame(
        {
            "user": [10, 12, 11, 99],
            "benefit": ["c1", "c3", "c2", "c1"],
            "timestamp": pd.to_datetime(["2026-02-01", "2026-02-02", "2026-02-03", "2026-02-04"]),
            "label": [1, 0, True, 0],
            "campaign": [8, 8, 13, 13],
        },
        index=pd.Index([100, 101, 102, 103], name="offer_id"),
    )
    return catalog, events, users, offers


def test_samples_from_labelled_offers_carry_ids_and_context():
    catalog, events, users, offers = _coupon_program()
    with pytest.raises(perkrec.InputError, match="unknown user id 99 at row 3"):
        redemption_samples(events, catalog, users, offers=offers)
    s = redemption_samples(events, catalog, users, offers=offers, unknown="drop")
    assert s.attrs["unknown_users"] == 1 and s.attrs["unknown_benefits"] == 0
    assert list(s.index) == [100, 101, 102] and s.index.name == "offer_id"  # row ids kept
    assert s["label"].tolist() == [1, 0, 1]  # labels as given
    assert s["campaign"].tolist() == [8, 8, 13]  # context carried through
    assert s["brand"].tolist() == ["Acme", "Acme", "Bolt"] and s["category"].tolist() == [
        "Meat",
        "Meat",
        "Grocery",
    ]
    assert s["kind"].tolist() == ["discount"] * 3 and s["income"].tolist() == [1, 3, 2]
    assert s["user"].tolist() == [0, 2, 1]  # member 12 has no events: added to the map by UserTable
    kept = redemption_samples(events, catalog, users, offers=offers, unknown="keep")
    assert len(kept) == 4 and kept.loc[103, "user"] == -1 and pd.isna(kept.loc[103, "income"])
    with pytest.raises(perkrec.InputError, match="row 1: label must be 0 or 1"):
        redemption_samples(events, catalog, users, offers=offers.assign(label=[1, np.nan, 0, 0]))
    with pytest.raises(perkrec.InputError, match="lacks column 'label'"):
        redemption_samples(events, catalog, users, offers=offers.drop(columns="label"))
    with pytest.raises(perkrec.ConfigError, match="unknown must be"):
        redemption_samples(events, catalog, users, offers=offers, unknown="ignore")


def test_samples_from_events_window_is_explicit_and_rows_carry_ids():
    catalog, events, users, _ = _coupon_program()
    s = redemption_samples(events, catalog, users, keep=["channel"])
    # c1 was redeemed 59 days after the issue: outside its 30-day validity, so label 0 — and counted.
    assert s["label"].tolist() == [0, 0] and s.attrs["redeemed_after_window"] == 1
    assert s.attrs["open_at_end"] == 0  # both windows ended before the log's last event
    # Cut at Jan 20: both issues are still open at the log's last event (Jan 2), labelled 0
    # for now, and counted.
    early, _ = perkrec.split_by_time(events, "2026-01-20")
    cut = redemption_samples(early, catalog, users)
    assert cut["label"].tolist() == [0, 0] and cut.attrs["open_at_end"] == 2
    assert s["event"].tolist() == list(np.flatnonzero(events.to_frame()["event_type"] == "issued"))
    assert "channel" in s.columns and s["brand"].tolist() == ["Acme", "Bolt"]
    assert redemption_samples(events, catalog, window_days=float("inf"))["label"].tolist() == [1, 0]
    # A DataFrame catalog without a validity (NaN) is an error, not a silent 0 label.
    frame = catalog.to_frame()
    frame.loc[0, "validity_days"] = np.nan
    with pytest.raises(perkrec.InputError, match="validity_days of benefit 'c1' is missing"):
        redemption_samples(events, frame)
    with pytest.raises(perkrec.InputError, match="no validity_days column"):
        redemption_samples(events, frame.drop(columns="validity_days"))
    assert redemption_samples(events, frame, window_days=60)["label"].tolist() == [1, 0]
    with pytest.raises(perkrec.InputError, match="keep names unknown event column 'campaign'"):
        redemption_samples(events, catalog, keep=["campaign"])


def test_default_fm_is_reproducible(program, split):
    _, train, _, enc = split
    X = enc.transform(train, events=program.events)
    params = FM().get_params()
    assert params["num_threads"] == 1 and params["seed"] == 42
    a = FM(epochs=3).fit(X, train["label"])
    b = FM(epochs=3).fit(X, train["label"])
    assert np.array_equal(a.predict(X), b.predict(X))
    assert np.array_equal(a.factors, b.factors)


def test_real_coupon_campaigns_end_to_end_with_logistic_regression():
    """The issue's new-user path on dunnhumby's coupon campaigns, straight from the raw CSVs: a
    catalog without kinds and with free columns, members without events, labels per offer, a
    context column carried through, and FM(factors=0) equal to scikit-learn's LogisticRegression."""
    from conftest import dataset_path
    from sklearn.linear_model import LogisticRegression

    folder = dataset_path("dunnhumby-complete-journey-coupons")
    campaigns = pd.read_csv(folder / "campaign_desc.csv")
    offered = pd.read_csv(folder / "campaign_table.csv")
    redeemed = pd.read_csv(folder / "coupon_redempt.csv")
    demographics = pd.read_csv(folder / "hh_demographic.csv").set_index("household_key")
    catalog = perkrec.Catalog.from_frame(
        campaigns.assign(validity_days=campaigns["END_DAY"] - campaigns["START_DAY"] + 1),
        id_column="CAMPAIGN",
    )
    members = perkrec.UserTable.from_frame(
        demographics, user_ids=perkrec.IdMap(np.unique(offered["household_key"]))
    )
    assert members.unknown_users > 0  # households with demographics but no campaign
    pairs = set(zip(redeemed["household_key"], redeemed["CAMPAIGN"]))
    start = campaigns.set_index("CAMPAIGN")["START_DAY"]
    offers = pd.DataFrame(
        {
            "user": offered["household_key"],
            "benefit": offered["CAMPAIGN"].astype(str),
            "timestamp": 1_500_000_000 + offered["CAMPAIGN"].map(start).to_numpy() * 86400,
            "label": [int(p in pairs) for p in zip(offered["household_key"], offered["CAMPAIGN"])],
            "offer_type": offered["DESCRIPTION"],
        }
    )
    samples = redemption_samples(None, catalog, members, offers=offers)
    assert len(samples) == len(offered) and samples["label"].sum() > 100
    assert (samples["offer_type"] == samples["DESCRIPTION"]).all()  # carried vs catalog attribute
    fields = ["DESCRIPTION", "AGE_DESC", "INCOME_DESC", "HH_COMP_DESC", "benefit"]
    X = sp.csr_matrix(pd.get_dummies(samples[fields].astype(str)).to_numpy(np.float32))
    y = samples["label"].to_numpy(np.float32)
    lam = 1e-3
    lr = FM(factors=0, reg_linear=lam).fit(X, y)
    ref = LogisticRegression(
        C=1.0 / (lam * len(y)), solver="newton-cg", tol=1e-12, max_iter=10_000
    ).fit(X.toarray().astype(np.float64), y)
    np.testing.assert_allclose(lr.linear, ref.coef_[0], atol=1e-5)
    np.testing.assert_allclose(lr.predict(X), ref.predict_proba(X.toarray())[:, 1], atol=1e-5)


def test_sample_times_as_datetimes_are_seconds_not_raw_nanoseconds(program, split):
    """A frame whose timestamp column holds datetimes (what real tables have) gets the same rows
    as epoch seconds: a datetime read as raw nanoseconds would put every event in the past and
    leak the future into the history fields."""
    _, _, test, enc = split
    events = program.events
    base = enc.transform(test, events=events)
    for unit in ("ns", "us", "s"):
        as_dt = test.assign(
            timestamp=pd.to_datetime(test["timestamp"], unit="s").astype(f"datetime64[{unit}]")
        )
        assert (enc.transform(as_dt, events=events) != base).nnz == 0, unit
    aware = test.assign(timestamp=pd.to_datetime(test["timestamp"], unit="s", utc=True))
    assert (enc.transform(aware, events=events) != base).nnz == 0
    strings = test.assign(
        timestamp=pd.to_datetime(test["timestamp"], unit="s").dt.strftime("%Y-%m-%d %H:%M:%S")
    )
    assert (enc.transform(strings, events=events) != base).nnz == 0
