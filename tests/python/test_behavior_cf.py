"""The item-level collaborative behaviour signal (perkrec.behavior_cf_features and the encoder's
behavior_cf field): planted item clusters recovered, no leaks (behaviour at or after a sample's
time or as_of changes nothing), thread-count invariance, the encoder's JSON and FM round trips,
typed errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import perkrec

DAY = 86400
T0 = 1_700_000_000
N_USERS, N_ITEMS = 120, 24


def clustered_world(seed: int = 3, extra: pd.DataFrame | None = None):
    """Two clusters of 12 items (A: 0-11, B: 12-23); members 0-59 buy in A, 60-119 in B, and
    the odd members never buy their cluster's first three items. Coupon 0 -> items 0-2 (A),
    coupon 1 -> items 12-14 (B), coupon 2 -> nothing."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(N_USERS):
        base = 0 if u < 60 else 12
        low = 3 if u % 2 else 0
        for _ in range(6):
            rows.append(
                (u, base + int(rng.integers(low, 12)), "purchase", int(rng.integers(0, 40)))
            )
        rows.append((u, int(rng.integers(0, N_ITEMS)), "view", int(rng.integers(0, 40))))
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "action", "day"])
    events["timestamp"] = T0 + events.pop("day") * DAY
    if extra is not None:
        events = pd.concat([events, extra], ignore_index=True)
    items = perkrec.ItemCatalog.from_frame(pd.DataFrame({"item_id": np.arange(N_ITEMS)}))
    applies = perkrec.BenefitItems.from_pairs([0, 0, 0, 1, 1, 1], [0, 1, 2, 12, 13, 14], 3, N_ITEMS)
    log = perkrec.BehaviorLog.from_frame(
        events, user_ids=perkrec.IdMap(np.arange(N_USERS)), items=items, action="action"
    )
    return log, items, applies


KW = dict(factors=8, iterations=8)


def test_planted_clusters_rank_unbought_in_cluster_coupons_first():
    behavior = clustered_world()
    odd = np.arange(1, N_USERS, 2)
    own = np.where(odd < 60, 0, 1)
    samples = pd.DataFrame(
        {
            "user": np.repeat(odd, 2),
            "benefit": np.stack([own, 1 - own], axis=1).ravel(),
            "timestamp": T0 + 50 * DAY,
        }
    )
    f = perkrec.behavior_cf_features(samples, *behavior, as_of=T0 + 45 * DAY, **KW)
    assert list(f.columns) == list(perkrec.BEHAVIOR_CF_COLUMNS) == ["cf_dot", "cf_cosine"]
    cos = f["cf_cosine"].to_numpy().reshape(-1, 2)
    dot = f["cf_dot"].to_numpy().reshape(-1, 2)
    # Noise would win half the pairs; 8 factors on 24 items fit a little of it (59 of 60 here).
    assert (cos[:, 0] > cos[:, 1]).mean() >= 0.95 and (dot[:, 0] > dot[:, 1]).mean() >= 0.95
    assert (cos[:, 0] - cos[:, 1]).mean() > 0.4
    # No item of coupon 2, no behaviour before the sample: the documented zeros.
    zeros = pd.DataFrame({"user": [1, 1], "benefit": [2, 0], "timestamp": [T0 + 50 * DAY, T0]})
    out = perkrec.behavior_cf_features(zeros, *behavior, as_of=T0 + 45 * DAY, **KW)
    assert (out.to_numpy() == 0).all()


def test_no_leak_and_thread_count_invariance():
    samples = pd.DataFrame(
        {
            "user": np.arange(0, N_USERS, 2),
            "benefit": np.arange(60) % 3,
            "timestamp": T0 + (20 + np.arange(60) % 25) * DAY,
        }
    )
    base = clustered_world()
    # Purchases at or after each sample's time (and after as_of = the earliest sample time).
    later = pd.DataFrame(
        {
            "user_id": samples["user"],
            "item_id": (samples["user"] * 5) % N_ITEMS,
            "action": "purchase",
            "timestamp": samples["timestamp"] + np.arange(60) % 2 * 3600,
        }
    )
    more = clustered_world(extra=later)
    a = perkrec.behavior_cf_features(samples, *base, num_threads=1, **KW)
    b = perkrec.behavior_cf_features(samples, *more, num_threads=2, **KW)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert (a["cf_cosine"] != 0).sum() > 30


def test_encoder_field_round_trips_and_refuses_leaks():
    log, items, applies = clustered_world()
    behavior = (log, items, applies)
    samples = pd.DataFrame(
        {
            "user": np.arange(N_USERS),
            "benefit": np.arange(N_USERS) % 3,
            "timestamp": T0 + (30 + np.arange(N_USERS) % 20) * DAY,
        }
    )
    fields = [{"name": "user", "kind": "id"}, {"name": "cf", "kind": "behavior_cf", **KW}]
    enc = perkrec.FeatureEncoder(fields, num_threads=2).fit(samples, behavior=behavior)
    assert enc.field_sizes == [N_USERS + 1, 2]
    X = enc.transform(samples, behavior=behavior)
    # The continuous values: (slog1p(x) - mean) / std of the signal at the earliest sample time.
    raw = perkrec.behavior_cf_features(samples, *behavior, **KW).to_numpy()
    scaled = np.sign(raw) * np.log1p(np.abs(raw))
    scaled = (scaled - scaled.mean(axis=0)) / scaled.std(axis=0)
    np.testing.assert_allclose(X[:, N_USERS + 1 :].toarray(), scaled, rtol=1e-5, atol=1e-5)
    back = perkrec.FeatureEncoder.from_json(enc.to_json())
    assert back.to_json() == enc.to_json()
    assert (back.transform(samples, behavior=behavior) != X).nnz == 0
    one = perkrec.FeatureEncoder(fields, num_threads=1).fit(samples, behavior=behavior)
    assert one.to_json() == enc.to_json()
    model = perkrec.FM(factors=0, epochs=2).fit(X, np.arange(N_USERS) % 2, encoder=enc)
    assert perkrec.FM.from_bytes(model.to_bytes()).encoder.to_json() == enc.to_json()
    # as_of as a date; later than the earliest sample: refused, nothing fitted.
    late = [dict(fields[1], as_of="2023-12-31")]
    enc_late = perkrec.FeatureEncoder(late)
    with pytest.raises(perkrec.InputError, match="as_of"):
        enc_late.fit(samples, behavior=behavior)
    assert not enc_late._impl.fitted
    early = perkrec.FeatureEncoder([dict(fields[1], as_of="2023-11-20")])
    assert early.fit(samples, behavior=behavior).n_features == 2


def test_typed_errors():
    log, items, applies = clustered_world()
    samples = pd.DataFrame({"user": [0], "benefit": [0], "timestamp": [T0 + 50 * DAY]})
    with pytest.raises(perkrec.ConfigError, match="factors"):
        perkrec.behavior_cf_features(samples, log, items, applies, factors=0)
    with pytest.raises(perkrec.ConfigError, match="actions"):
        perkrec.behavior_cf_features(samples, log, items, applies, actions="purchase")
    with pytest.raises(perkrec.InputError, match="share"):
        perkrec.behavior_cf_features(samples, log, items, applies, actions=["share"])
    with pytest.raises(perkrec.InputError, match="benefit"):
        perkrec.behavior_cf_features(samples.assign(benefit=7), log, items, applies)
    with pytest.raises(perkrec.InputError, match="timestamp"):
        perkrec.behavior_cf_features(samples.drop(columns="timestamp"), log, items, applies)
    with pytest.raises(perkrec.ConfigError, match="/fields/0"):
        perkrec.FeatureEncoder([{"name": "cf", "kind": "behavior_cf", "half_life_days": 0}])
