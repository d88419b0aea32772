"""Ranker, ScoreBlend, schedule and explanations (python/perkrec/ranking.py)."""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import perkrec
from perkrec import _core

MONDAY = 4 * 86400  # 1970-01-05 00:00 UTC


def random_problem(n=200, m=70, seed=0, p_eligible=0.6):
    rng = np.random.default_rng(seed)
    eligible = (rng.random((n, m)) < p_eligible).astype(np.uint8)
    prob = (rng.random((n, m)) * 0.5).astype(np.float32)
    share = rng.random((n, m)).astype(np.float32)
    member_value = (5 + 20 * rng.random(n)).astype(np.float32)
    benefit_value = (0.5 + rng.random(m)).astype(np.float32)
    cost = (10 * rng.random(m)).astype(np.float32)
    return eligible, prob, share, member_value, benefit_value, cost


def naive(eligible, prob, share, member_value, benefit_value, cost, objective, issue_cost, top_k):
    value = prob.astype(np.float64) * member_value[:, None] * benefit_value[None, :]
    if objective == "incremental":
        value = value * share
    total_cost = issue_cost + prob.astype(np.float64) * cost[None, :]
    key = value - total_cost
    rows = []
    for u in range(len(prob)):
        cand = [b for b in range(prob.shape[1]) if eligible[u, b] and key[u, b] > 0]
        cand.sort(key=lambda b: (-key[u, b], b))
        rows.append([(b, value[u, b], total_cost[u, b]) for b in cand[:top_k]])
    return rows


def masks_of(eligible):
    return _core.EligibilityMasks.from_dense(eligible.reshape(-1), *eligible.shape)


@pytest.mark.parametrize("objective", ["incremental", "redemption"])
def test_rank_equals_naive_numpy(objective):
    eligible, prob, share, mv, bv, cost = random_problem()
    c = perkrec.rank(
        masks_of(eligible),
        prob,
        incremental_share=share,
        user_value=mv,
        benefit_value=bv,
        cost_per_redemption=cost,
        objective=objective,
        issue_cost=0.2,
        top_k=6,
    )
    expected = naive(eligible, prob, share, mv, bv, cost, objective, 0.2, 6)
    offsets = np.asarray(c.offsets)
    for u, row in enumerate(expected):
        lo, hi = offsets[u], offsets[u + 1]
        assert hi - lo == len(row)
        assert list(c.benefit[lo:hi]) == [b for b, _, _ in row]
        np.testing.assert_allclose(c.value[lo:hi], [v for _, v, _ in row], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(c.cost[lo:hi], [k for _, _, k in row], rtol=1e-5, atol=1e-5)
        assert all(eligible[u, b] for b in c.benefit[lo:hi])
    # A dense 0/1 matrix works as masks too, and thread counts do not change anything.
    c2 = perkrec.rank(
        eligible,
        prob,
        incremental_share=share,
        user_value=mv,
        benefit_value=bv,
        cost_per_redemption=cost,
        objective=objective,
        issue_cost=0.2,
        top_k=6,
        num_threads=3,
    )
    np.testing.assert_array_equal(c2.benefit, c.benefit)
    np.testing.assert_array_equal(c2.value, c.value)


def test_rank_never_returns_ineligible_and_diagnostics_match_numpy_helper():
    for seed in range(8):
        eligible, prob, share, mv, bv, cost = random_problem(
            60, 1 + seed * 17, seed, p_eligible=seed / 8
        )
        c, diag = perkrec.rank(
            eligible,
            prob,
            user_value=mv,
            cost_per_redemption=cost,
            top_k=4,
            keep_non_positive=True,
            diagnostics=True,
        )
        owner = np.repeat(np.arange(60), np.diff(c.offsets))
        assert eligible[owner, c.benefit].all()
        np.testing.assert_array_equal(diag["n_eligible"], eligible.sum(axis=1))
        key = prob * mv[:, None] - prob * cost[None, :]
        best, rule = perkrec.best_ineligible(eligible, key)
        np.testing.assert_array_equal(diag["best_ineligible"], best)
        np.testing.assert_array_equal(diag["best_ineligible_rule"], rule)


def test_rank_rejects_bad_inputs_naming_the_field():
    eligible, prob, *_ = random_problem(4, 3)
    bad = prob.copy()
    bad[2, 1] = np.nan
    with pytest.raises(perkrec.InputError, match=r"redemption_probability\[2, 1\]"):
        perkrec.rank(eligible, bad)
    with pytest.raises(perkrec.InputError, match="cost_per_redemption"):
        perkrec.rank(eligible, prob, cost_per_redemption=[1.0, -2.0, 1.0])
    with pytest.raises(perkrec.InputError, match="user_value"):
        perkrec.rank(eligible, prob, user_value=np.ones(5))
    with pytest.raises(perkrec.InputError, match="redemption_probability"):
        perkrec.rank(masks_of(eligible), prob[:, :2])
    with pytest.raises(perkrec.ConfigError, match="objective"):
        perkrec.rank(eligible, prob, objective="uplift")
    with pytest.raises(perkrec.InputError, match="give probability"):
        perkrec.rank(eligible)


def planted_blend_data(seed=3, n_users=300, n_benefits=40, bias=-1.0, w1=1.5, w2=0.8):
    rng = np.random.default_rng(seed)
    score = rng.normal(size=(n_users, n_benefits)).astype(np.float32)
    prob = rng.uniform(0.02, 0.98, size=(n_users, n_benefits)).astype(np.float32)
    z = bias + w1 * score + w2 * np.log(prob / (1 - prob))
    labels = (rng.random((n_users, n_benefits)) < 1 / (1 + np.exp(-z))).astype(np.float32)
    users, benefits = np.divmod(np.arange(n_users * n_benefits), n_benefits)
    return score, prob, users, benefits, labels.reshape(-1)


def test_blend_recovers_planted_weights_and_is_calibrated():
    score, prob, users, benefits, labels = planted_blend_data()
    blend = perkrec.ScoreBlend().add_source("cf", score).add_source("fm", prob, transform="logit")
    blend.fit(users, benefits, labels)
    assert blend.bias == pytest.approx(-1.0, abs=0.12)
    assert blend.weights["cf"] == pytest.approx(1.5, abs=0.12)
    assert blend.weights["fm"] == pytest.approx(0.8, abs=0.1)
    p = blend.predict(users, benefits)
    order = np.argsort(p)
    for chunk in np.array_split(order, 10):
        assert abs(p[chunk].mean() - labels[chunk].mean()) < 0.035
    contrib = blend.contributions(users[:5], benefits[:5], as_frame=True)
    assert list(contrib.columns) == ["cf", "fm"]
    np.testing.assert_allclose(
        1 / (1 + np.exp(-(blend.bias + contrib.sum(axis=1)))), p[:5], rtol=1e-5
    )
    # JSON round trip: sources are re-attached by name.
    back = perkrec.ScoreBlend.from_json(blend.to_json())
    with pytest.raises(perkrec.InputError, match="attach"):
        back.predict(users[:3], benefits[:3])
    back.attach("cf", score).attach("fm", prob)
    np.testing.assert_allclose(back.predict(users[:50], benefits[:50]), p[:50], rtol=1e-6)


def test_blend_sources_models_callables_and_rank_with_blend():
    score, prob, users, benefits, labels = planted_blend_data(n_users=120, n_benefits=30)
    calls = []

    def fm_like(u, b):
        calls.append(len(u))
        assert u.dtype == np.int32 and b.dtype == np.int32
        return prob[u, b]

    a = perkrec.ScoreBlend().add_source("cf", score).add_source("fm", fm_like, transform="logit")
    b = perkrec.ScoreBlend().add_source("cf", score).add_source("fm", prob, transform="logit")
    a.fit(users, benefits, labels)
    b.fit(users, benefits, labels)
    assert calls and a.weights == pytest.approx(b.weights, abs=1e-9)
    rng = np.random.default_rng(1)
    eligible = (rng.random(score.shape) < 0.5).astype(np.uint8)
    cost = np.full(score.shape[1], 2.0, dtype=np.float32)
    ca = perkrec.rank(
        eligible,
        blend=a,
        user_value=np.full(score.shape[0], 10, np.float32),
        cost_per_redemption=cost,
        top_k=5,
        num_threads=2,
    )
    p_all = b.predict(users, benefits).reshape(score.shape)
    cb = perkrec.rank(
        eligible,
        p_all,
        user_value=np.full(score.shape[0], 10, np.float32),
        cost_per_redemption=cost,
        top_k=5,
    )
    np.testing.assert_array_equal(ca.benefit, cb.benefit)
    np.testing.assert_allclose(ca.value, cb.value, rtol=1e-5)

    def broken(u, b):
        raise RuntimeError("model server down")

    c = perkrec.ScoreBlend().add_source("remote", broken)
    with pytest.raises(perkrec.InputError, match="model server down"):
        c.fit(users[:10], benefits[:10], labels[:10])

    # A perkrec model is scored in C++: Popularity's blend ranks like popularity.
    x = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [1, 0, 1]], dtype=np.float32))
    pop = perkrec.Popularity().fit(x)
    d = perkrec.ScoreBlend().add_source("popularity", pop).set_weights(-1.0, {"popularity": 3.0})
    pu, pb = np.zeros(3, np.int32), np.arange(3, dtype=np.int32)
    np.testing.assert_allclose(
        d.predict(pu, pb), 1 / (1 + np.exp(1 - 3 * pop.score(pu, pb))), rtol=1e-6
    )
    with pytest.raises(perkrec.ConfigError, match="duplicate"):
        d.add_source("popularity", pop)


def test_schedule_defaults_quiet_hours_and_catalog_validity():
    catalog = perkrec.Catalog.from_records(
        [
            {"id": "A", "kind": "discount", "validity_days": 14},
            {"id": "B", "kind": "gift", "validity_days": 5},
        ]
    )
    plan = MONDAY + 12 * 3600
    s = perkrec.schedule([0, 1, 2], plan, catalog, benefits=[0, 1, 0])
    expected = pd.Timestamp(MONDAY + 86400 + 10 * 3600, unit="s", tz="UTC")
    assert (s["send_at"] == expected).all()
    assert list(s["validity_days"]) == [14, 5, 14]
    assert not s["from_model"].any()
    assert s["valid_until"][1] == expected + pd.Timedelta(days=5)
    # Quiet hours 09-12 local at UTC+0 and UTC+3: 10:00 UTC is quiet for the first (until
    # 12:00 UTC); at UTC+3 it is 13:00 local, allowed.
    q = perkrec.schedule([0, 1], plan, 7, quiet_hours=(9, 12), utc_offset_hours=[0.0, 3.0])
    assert list(q["send_at"]) == [
        pd.Timestamp(MONDAY + 86400 + 12 * 3600, unit="s", tz="UTC"),
        expected,
    ]
    assert perkrec.hour_of_week(MONDAY) == 0
    assert perkrec.hour_of_week(MONDAY - 1) == 167
    assert perkrec.hour_of_week(pd.Timestamp("2026-11-23 13:30", tz="UTC")) == 13  # a Monday
    assert perkrec.hour_of_week(pd.Timestamp("2026-11-22 23:00")) == 167  # naive = UTC
    t = perkrec.quiet_hours_next_allowed(np.array([MONDAY + 23 * 3600]), 22, 8)
    assert t[0] == MONDAY + 86400 + 8 * 3600


@pytest.fixture(scope="module")
def tiny_program():
    program = perkrec.simulate(n_users=300, days=90, seed=11)
    cut = program.truth.reference_time
    pref = perkrec.PreferenceModel(latent_classes=2, em_iterations=3).fit(
        program.events, program.catalog, cut
    )
    return program, pref


def test_schedule_follows_the_preference_model(tiny_program):
    program, pref = tiny_program
    timing = pref._impl.timing()
    members = np.arange(pref.n_users, dtype=np.int32)
    s = perkrec.schedule(
        members, pref.cut_time, program.catalog, benefits=np.zeros_like(members), preference=pref
    )
    assert s["from_model"].all()
    at = ((s["send_at"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy()
    slots = np.array([perkrec.hour_of_week(t) for t in at])
    np.testing.assert_array_equal(slots, timing["best_slot"])
    cut = int(pref.cut_time.timestamp())
    earliest = cut + np.round(timing["send_in_days"].astype(np.float64) * 86400).astype(np.int64)
    assert (at >= earliest).all() and (at < earliest + 7 * 86400).all()
    validity = program.catalog.to_frame()["validity_days"][0]
    np.testing.assert_array_equal(
        s["validity_days"], np.minimum(np.ceil(timing["validity_days"]).astype(int), validity)
    )


def test_explain_known_answer_from_arrays():
    prefs = np.array([[1.8, 0.5, 1.2, 0.9], [0.7, 2.0, 1.0, 1.1]], dtype=np.float32)
    dims = ["kind:points", "kind:gift", "face_value:<10", "channel:app"]
    benefit_dims = np.array([[1, 0, 1, 1], [0, 1, 1, 0], [0, 0, 0, 0]])
    candidates = _core.Candidates.from_arrays(
        2,
        3,
        np.array([0, 2, 3], np.int64),
        np.array([0, 1, 2], np.int32),
        np.array([5, 4, 3], np.float32),
        np.array([1, 1, 1], np.float32),
        np.array([0.5, 0.4, 0.3], np.float32),
    )
    allocation = SimpleNamespace(
        offsets=np.array([0, 1, 2]),
        benefit=np.array([0, 2], np.int32),
        runner_up=np.array([1, -1]),
        runner_up_reason=np.array([3, 0], np.uint8),
    )
    out = perkrec.explain(
        candidates=candidates,
        allocation=allocation,
        preferences=prefs,
        dimension_names=dims,
        benefit_dimensions=benefit_dims,
        benefit_ids=["B0", "B1", "B2"],
        contributions=pd.DataFrame({"als": [0.25, 0.1], "fm": [0.75, -0.2]}),
        best_ineligible_benefit=[2, 0],
        best_ineligible_rule=[1, 0],
        rule_names=["gold only", "no gifts for new members"],
        top_dimensions=2,
        as_dict=True,
    )
    assert len(out) == 2
    first = out[0]
    assert first["benefit"] == "B0" and first["member"] == 0
    assert first["probability"] == pytest.approx(0.5) and first["value"] == 5 and first["cost"] == 1
    assert [p["dimension"] for p in first["preferences"]] == ["kind:points", "face_value:<10"]
    assert first["preferences"][0]["lift"] == pytest.approx(1.8)
    assert [c["source"] for c in first["contributions"]] == ["fm", "als"]
    assert first["runner_up"] == {"benefit": "B1", "reason": "budget"}
    assert first["best_ineligible"] == {"benefit": "B2", "rule": "no gifts for new members"}
    second = out[1]
    assert second["benefit"] == "B2" and second["preferences"] == [] and second["runner_up"] is None
    assert second["best_ineligible"] == {"benefit": "B0", "rule": "gold only"}
    assert second["contributions"][0] == {"source": "als", "term": pytest.approx(0.1)}
    with pytest.raises(perkrec.InputError, match="benefit out of range"):
        perkrec.explain([0], [7], benefit_ids=["B0", "B1", "B2"])


def test_explain_from_models_and_batch_speed(tiny_program):
    program, pref = tiny_program
    n_users, n_benefits = pref.n_users, pref.n_benefits
    rng = np.random.default_rng(0)
    eligible = (rng.random((n_users, n_benefits)) < 0.7).astype(np.uint8)
    prob = (0.3 * rng.random((n_users, n_benefits))).astype(np.float32)
    blend = (
        perkrec.ScoreBlend()
        .add_source("preference", pref)
        .add_source("fm", prob, transform="logit")
    )
    blend.set_weights(-0.5, [0.4, 1.0])
    c, diag = perkrec.rank(
        eligible,
        blend=blend,
        user_value=np.full(n_users, 30, np.float32),
        cost_per_redemption=program.catalog,
        top_k=3,
        diagnostics=True,
    )
    members = np.repeat(np.arange(n_users, dtype=np.int32), np.diff(c.offsets))
    texts = perkrec.explain(
        members,
        c.benefit,
        candidates=c,
        preference=pref,
        catalog=program.catalog,
        blend=blend,
        diagnostics=diag,
        rule_names=["rule zero"],
    )
    assert len(texts) == len(members) > 0
    first = json.loads(texts[0])
    assert first["benefit"] == program.catalog.to_frame()["id"][int(c.benefit[0])]
    assert len(first["preferences"]) == 3 and {s["source"] for s in first["contributions"]} == {
        "preference",
        "fm",
    }
    assert first["value"] == pytest.approx(float(c.value[0]), rel=1e-5)
    # A member whose best benefit a rule excluded is told which rule.
    excluded = np.flatnonzero(diag["best_ineligible"][members] >= 0)
    assert len(excluded) > 0
    assert json.loads(texts[excluded[0]])["best_ineligible"]["rule"] == "rule zero"
    # 50k rows in one batched call.
    big_members = rng.integers(0, n_users, 50_000).astype(np.int32)
    big_benefits = rng.integers(0, n_benefits, 50_000).astype(np.int32)
    many = perkrec.explain(
        big_members,
        big_benefits,
        preference=pref,
        catalog=program.catalog,
        blend=blend,
        diagnostics=diag,
        rule_names=["rule zero"],
        num_threads=2,
    )
    assert len(many) == 50_000 and json.loads(many[0])["member"] is not None
    # The GIL is released while the batch runs: this thread keeps running Python while another
    # thread is inside the call (with the GIL held it could not run a single bytecode there; a
    # regex that holds the GIL gives 0 stamps inside its call).
    inside = threading.Event()
    done = threading.Event()
    span = []

    def worker():
        inside.set()
        t0 = time.perf_counter()
        perkrec.explain(
            np.tile(big_members, 4),
            np.tile(big_benefits, 4),
            preference=pref,
            catalog=program.catalog,
            num_threads=1,
        )
        span.extend([t0, time.perf_counter()])
        done.set()

    th = threading.Thread(target=worker)
    th.start()
    inside.wait()
    stamps = []
    while not done.is_set():
        stamps.append(time.perf_counter())
    th.join()
    start, end = span
    assert end - start > 0.05  # long enough to tell
    assert sum(1 for t in stamps if start + 0.01 < t < end - 0.01) > 100
