"""The interaction matrix and the simulator from Python."""

import numpy as np
import pandas as pd
import pytest

import perkrec


def small_log():
    frame = pd.DataFrame(
        {
            "user": [0, 0, 0, 1, 1],
            "benefit": ["A", "A", "B", "B", "A"],
            "event_type": ["claimed", "redeemed", "viewed", "claimed", "expired"],
            "timestamp": pd.to_datetime(
                ["2026-01-01", "2026-01-11", "2026-01-21", "2026-01-21", "2026-01-05"], utc=True
            ),
        }
    )
    return perkrec.EventLog.from_frame(frame)


def test_interaction_matrix_known_answers():
    log = small_log()
    m = perkrec.interaction_matrix(log)
    assert m.shape == (2, 2) and m.dtype == np.float32
    assert m[0, 0] == 5.0 and m[0, 1] == 0.25 and m[1, 1] == 1.0 and m[1, 0] == 0.0
    decayed = perkrec.interaction_matrix(log, half_life_days=10)
    assert decayed[0, 0] == pytest.approx(1.0 * 0.25 + 4.0 * 0.5)
    cut = perkrec.interaction_matrix(log, cut_time="2026-01-21")
    assert cut[0, 1] == 0.0 and cut[1, 1] == 0.0 and cut[0, 0] == 5.0
    only_expired = perkrec.interaction_matrix(
        log, {"claimed": 0, "redeemed": 0, "viewed": 0, "expired": 2}
    )
    assert only_expired.nnz == 1 and only_expired[1, 0] == 2.0
    assert perkrec.interaction_matrix(log, combine="max")[0, 0] == 4.0
    with pytest.raises(perkrec.ConfigError, match="unknown event type 'clicked'"):
        perkrec.interaction_matrix(log, {"clicked": 1})
    with pytest.raises(perkrec.ConfigError, match="half_life_days"):
        perkrec.interaction_matrix(log, half_life_days=-1)
    with pytest.raises(perkrec.ConfigError, match="combine"):
        perkrec.interaction_matrix(log, combine="mean")


def test_simulator_is_identical_for_any_thread_count():
    a = perkrec.simulate(n_users=2000, seed=3, num_threads=1)
    b = perkrec.simulate(n_users=2000, seed=3, num_threads=2)
    assert a.events.to_bytes() == b.events.to_bytes()
    np.testing.assert_array_equal(a.truth.redemption_probability, b.truth.redemption_probability)
    pd.testing.assert_frame_equal(a.truth.members, b.truth.members)
    c = perkrec.simulate(n_users=2000, seed=4)
    assert len(c.events) != len(a.events)


def test_simulator_outputs_are_consistent(small_program):
    p = small_program
    n, nb = p.events.n_users, len(p.catalog)
    assert len(p.catalog) >= 40 and len(p.users) == n
    assert set(p.catalog.to_frame()["kind"].astype(str)) == set(perkrec.BENEFIT_KINDS)
    t = p.truth
    assert t.redemption_probability.shape == (n, nb) and t.preferences.shape[0] == n
    assert (t.incremental_probability <= t.redemption_probability + 1e-6).all()
    assert set(t.members["archetype"].astype(str)) == set(perkrec.ARCHETYPES)
    assert t.members["lapse_time"].notna().eq(t.members["archetype"] == "dormant").all()
    frame = p.events.to_frame(external_ids=False)
    control_users = np.flatnonzero(t.members["control"].to_numpy())
    issued_to_control = frame[(frame["event_type"] == "issued") & frame["user"].isin(control_users)]
    assert len(control_users) > 100 and issued_to_control.empty
    issued = frame[frame["event_type"] == "issued"]
    assert ((issued["propensity"] > 0) & (issued["propensity"] <= 1)).all()
    assert p.users.to_frame().columns.tolist() == [
        "age_band",
        "gender",
        "tier",
        "region",
        "signup_time",
    ]


def test_simulator_rejects_bad_parameters():
    with pytest.raises(perkrec.ConfigError, match="n_benefits"):
        perkrec.simulate(n_users=10, n_benefits=3)
    with pytest.raises(perkrec.ConfigError, match="archetype_mix"):
        perkrec.simulate(n_users=10, archetype_mix=[1, 2])
    with pytest.raises(perkrec.ConfigError, match="start_time"):
        perkrec.simulate(n_users=10, start="2026-01-01 10:30")
    with pytest.raises(TypeError):
        perkrec.simulate(n_members=10)
