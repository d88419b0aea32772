"""Causal evaluation through the Python API: uplift metrics (known answers, and scikit-uplift's
numbers when it is installed), off-policy value against plain-numpy estimators, holdout
assignment and experiment analysis."""

import math

import numpy as np
import pandas as pd
import pytest

import perkrec

# Six rows, scores already descending; the hand computations are in tests/cpp/eval/test_uplift_metrics.cpp.
Y = np.array([1, 0, 1, 0, 1, 0])
T = np.array([1, 1, 0, 0, 1, 0])
S = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])


# --- uplift metrics -----------------------------------------------------------------------------


def test_uplift_metrics_known_answers():
    x, q = perkrec.qini_curve(Y, S, T)
    np.testing.assert_array_equal(x, np.arange(7))
    np.testing.assert_allclose(q, [0, 1, 1, -1, 0, 0.5, 1], atol=1e-12)
    _, u = perkrec.uplift_curve(Y, S, T)
    np.testing.assert_allclose(u, [0, 1, 1, -1.5, 0, 5 / 6, 2], atol=1e-12)
    assert perkrec.qini_auc_score(Y, S, T) == pytest.approx(-1 / 6.5, abs=1e-12)
    assert perkrec.qini_auc_score(Y, S, T, negative_effect=False) == pytest.approx(-0.4, abs=1e-12)
    assert perkrec.uplift_auc_score(Y, S, T) == pytest.approx(-11 / 25, abs=1e-12)
    assert perkrec.uplift_at_k(Y, S, T, "overall", k=0.5) == pytest.approx(-0.5)
    assert perkrec.uplift_at_k(Y, S, T, "overall", k=3) == pytest.approx(-0.5)
    assert perkrec.uplift_at_k(Y, S, T, "by_group", k=0.5) == pytest.approx(0.0)
    cost = np.array([2, 1, 0, 0, 3, 0])
    _, c, v = perkrec.cost_curve(Y, cost, S, T)
    np.testing.assert_allclose(c, [0, 2, 3, 3, 3, 6, 6])
    np.testing.assert_allclose(v, q)
    assert perkrec.aucc_score(Y, cost, S, T) == pytest.approx(1 / 6 + 1 / 6 + 1 / 8, abs=1e-12)
    # Ties form one point.
    x, q = perkrec.qini_curve(Y, [0.9, 0.9, 0.5, 0.5, 0.5, 0.1], T.astype(bool))
    np.testing.assert_array_equal(x, [0, 2, 5, 6])
    np.testing.assert_allclose(q, [0, 1, 0.5, 1])


def test_uplift_metrics_reject_bad_input():
    with pytest.raises(perkrec.InputError, match="uplift at row 2"):
        perkrec.qini_auc_score(Y, [0.9, 0.8, np.nan, 0.6, 0.5, 0.4], T)
    with pytest.raises(perkrec.InputError, match="treatment at row 0"):
        perkrec.qini_auc_score(Y, S, [2, 1, 0, 0, 1, 0])
    with pytest.raises(perkrec.InputError, match="expected 6"):
        perkrec.uplift_auc_score(Y, S[:5], T)
    with pytest.raises(perkrec.InputError, match="treated and control"):
        perkrec.uplift_curve(Y, S, np.ones(6))
    with pytest.raises(perkrec.InputError, match=r"\(0, 1\)"):
        perkrec.uplift_at_k(Y, S, T, k=1.5)
    with pytest.raises(perkrec.ConfigError, match="strategy"):
        perkrec.uplift_at_k(Y, S, T, "first", k=0.5)
    with pytest.raises(perkrec.InputError, match="positive"):
        perkrec.aucc_score(Y, np.zeros(6), S, T)


def _uplift_sample(rng, n, ties):
    t = rng.integers(0, 2, size=n)
    x = rng.normal(size=n)
    y = (rng.random(n) < 0.2 + 0.15 * t * (x > 0) - 0.05 * t * (x < -1)).astype(int)
    score = x + rng.normal(scale=1.0, size=n)
    if ties:
        score = np.round(score, 1)
    return y, score, t


def test_uplift_metrics_match_scikit_uplift():
    sklift = pytest.importorskip("sklift.metrics")
    import warnings

    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklift calls deprecated scikit-learn helpers
        for trial in range(6):
            y, score, t = _uplift_sample(rng, 3000, ties=trial % 2 == 0)
            for mine, theirs in [
                (perkrec.qini_curve, sklift.qini_curve),
                (perkrec.uplift_curve, sklift.uplift_curve),
            ]:
                a, b = mine(y, score, t), theirs(y, score, t)
                np.testing.assert_allclose(a[0], b[0])
                np.testing.assert_allclose(a[1], b[1], atol=1e-9)
            for negative in (True, False):
                assert perkrec.qini_auc_score(y, score, t, negative) == pytest.approx(
                    sklift.qini_auc_score(y, score, t, negative_effect=negative), abs=1e-9
                )
            assert perkrec.uplift_auc_score(y, score, t) == pytest.approx(
                sklift.uplift_auc_score(y, score, t), abs=1e-9
            )
            for strategy in ("overall", "by_group"):
                for k in (0.1, 0.3, 0.55, 200):
                    assert perkrec.uplift_at_k(y, score, t, strategy, k=k) == pytest.approx(
                        sklift.uplift_at_k(y, score, t, strategy=strategy, k=k), abs=1e-12
                    ), (strategy, k)


# --- off-policy evaluation ----------------------------------------------------------------------


def _synthetic_log(seed, n):
    """Logging (0.5, 0.3, 0.2), target (0.2, 0.3, 0.5), Bernoulli means (0.2, 0.5, 0.7):
    the target's value is 0.54. The reward model is off by +0.1."""
    rng = np.random.default_rng(seed)
    logging, target, mean = (
        np.array([0.5, 0.3, 0.2]),
        np.array([0.2, 0.3, 0.5]),
        np.array([0.2, 0.5, 0.7]),
    )
    a = rng.choice(3, size=n, p=logging)
    r = (rng.random(n) < mean[a]).astype(float)
    q = mean[a] + 0.1
    e = np.full(n, float(target @ (mean + 0.1)))
    return r, logging[a], target[a], q, e


def _numpy_estimate(r, p, pi, q, e, estimator, z=1.959963984540054):
    w = pi / p
    if estimator == "snips":
        value = (w * r).sum() / w.sum()
        terms = w * (r - value) / w.mean()
        return value, z * terms.std(ddof=1) / math.sqrt(len(r))
    terms = {"ips": w * r, "dm": e, "dr": e + w * (r - q)}[estimator]
    return terms.mean(), z * terms.std(ddof=1) / math.sqrt(len(r))


def test_off_policy_value_matches_numpy_and_covers_the_truth():
    truth = 0.54
    for estimator in ("ips", "snips", "dr"):
        values, covered = [], 0
        for seed in range(60):
            r, p, pi, q, e = _synthetic_log(seed, 1000)
            est = perkrec.off_policy_value(
                r, p, pi, estimator, reward_estimate=q, target_reward_estimate=e
            )
            value, half = _numpy_estimate(r, p, pi, q, e, estimator)
            assert est.value == pytest.approx(value, abs=1e-12)
            assert est.upper - est.value == pytest.approx(half, rel=1e-6)
            values.append(est.value)
            covered += est.lower <= truth <= est.upper
        assert np.mean(values) == pytest.approx(truth, abs=0.012), estimator
        assert covered >= 52, estimator  # nominal 57 of 60
    r, p, pi, q, e = _synthetic_log(1, 1000)
    dm = perkrec.off_policy_value(r, p, pi, "dm", target_reward_estimate=e)
    assert dm.value == pytest.approx(truth + 0.1)
    assert dm.effective_sample_size == 1000


def test_off_policy_value_known_answers_and_options():
    r, p, pi = [1, 0, 1], [0.5, 0.5, 0.25], [1, 0, 0.5]
    ips = perkrec.off_policy_value(r, p, pi)
    assert isinstance(ips, perkrec.OffPolicyEstimate)
    assert ips.value == pytest.approx(4 / 3)
    assert ips.effective_sample_size == pytest.approx(2.0)
    assert perkrec.off_policy_value(r, p, pi, "snips").value == pytest.approx(1.0)
    clipped = perkrec.off_policy_value(r, p, pi, clip=1.5)
    assert (
        clipped.value == pytest.approx(1.0) and clipped.n_clipped == 2 and clipped.max_weight == 1.5
    )
    sw = perkrec.off_policy_value(
        r,
        p,
        pi,
        "switch-dr",
        reward_estimate=[0.5] * 3,
        target_reward_estimate=[0.6] * 3,
        switch_threshold=1.0,
    )
    assert sw.value == pytest.approx(0.6) and sw.n_switched == 2
    wide = perkrec.off_policy_value(r, p, pi, confidence=0.99)
    assert wide.upper - wide.lower > ips.upper - ips.lower


def test_off_policy_value_rejects_bad_input():
    r, p, pi = [1.0, 0.0], [0.5, 0.5], [0.5, 0.5]
    with pytest.raises(perkrec.InputError, match="logged_propensity at row 1"):
        perkrec.off_policy_value(r, [0.5, 0.0], pi)
    with pytest.raises(perkrec.InputError, match="logged_propensity at row 0"):
        perkrec.off_policy_value(r, [1.2, 0.5], pi)
    with pytest.raises(perkrec.InputError, match="logged_propensity at row 1"):
        perkrec.off_policy_value(r, [0.5, np.nan], pi)
    with pytest.raises(perkrec.InputError, match="target_propensity at row 1"):
        perkrec.off_policy_value(r, p, [0.5, 1.5])
    with pytest.raises(perkrec.InputError, match="rewards at row 0"):
        perkrec.off_policy_value([np.inf, 0], p, pi)
    with pytest.raises(perkrec.InputError, match="expected 2"):
        perkrec.off_policy_value(r, [0.5], pi)
    with pytest.raises(perkrec.InputError, match="target_reward_estimate"):
        perkrec.off_policy_value(r, p, pi, "dm")
    with pytest.raises(perkrec.InputError, match="reward_estimate"):
        perkrec.off_policy_value(r, p, pi, "dr", target_reward_estimate=[0, 0])
    with pytest.raises(perkrec.ConfigError, match="estimator"):
        perkrec.off_policy_value(r, p, pi, "magic")
    with pytest.raises(perkrec.ConfigError, match="clip"):
        perkrec.off_policy_value(r, p, pi, clip=-1)


# --- experiments --------------------------------------------------------------------------------


def _reference_hash(user_id: str, salt: str) -> int:
    """FNV-1a 64 over salt, 0x00, id (UTF-8), then the SplitMix64 finalizer (experiment.hpp)."""
    mask = (1 << 64) - 1
    h = 0xCBF29CE484222325
    for byte in salt.encode() + b"\0" + user_id.encode():
        h = ((h ^ byte) * 0x100000001B3) & mask
    z = h
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def test_assign_holdout_is_stable_documented_and_balanced():
    ids = [
        "u1",
        "u2",
        "u3",
        "member-42",
        "alice",
        "bob",
        "",
        "1001",
        "1002",
        "1003",
        "1004",
        "1005",
    ]
    arms = perkrec.assign_holdout(ids, "spring-2026", weights=(0.5, 0.5))
    np.testing.assert_array_equal(arms, [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0])
    assert arms.dtype == np.int32
    for user in ids + ["Zoë", "会員-7", "x" * 300]:
        assert perkrec.holdout_hash(user, "spring-2026") == _reference_hash(user, "spring-2026")
    # Integer ids hash as their text.
    np.testing.assert_array_equal(
        perkrec.assign_holdout([1001, 1002], "spring-2026", (0.5, 0.5)), [1, 0]
    )
    many = [f"user{i}" for i in range(50000)]
    one = perkrec.assign_holdout(many, "a", num_threads=1)
    np.testing.assert_array_equal(perkrec.assign_holdout(many, "a", num_threads=2), one)
    assert abs((one == 0).sum() - 5000) < 4 * math.sqrt(
        50000 * 0.09
    )  # arm 0, the control, keeps 10%
    # Arm j with probability weights[j] / sum(weights), from the documented hash.
    u = np.array([_reference_hash(m, "a") >> 11 for m in many[:2000]], dtype=np.float64) * 2.0**-53
    np.testing.assert_array_equal(one[:2000], (u >= 0.1).astype(np.int32))
    with pytest.raises(perkrec.InputError, match="at least 2"):
        perkrec.assign_holdout(many, "a", weights=(1.0,))
    with pytest.raises(perkrec.InputError, match="arm 1"):
        perkrec.assign_holdout(many, "a", weights=(1.0, -1.0))


def _experiment_frame(seed, n=1000, effect=0.3):
    rng = np.random.default_rng(seed)
    arm = np.repeat(np.array(["control", "coupon", "points"]), n)
    pre = rng.normal(10, 1, size=3 * n)
    lift = np.select([arm == "coupon", arm == "points"], [effect, 0.0], 0.0)
    revenue = lift + 2 * pre + rng.normal(size=3 * n)
    cost = np.where(arm == "control", 0.0, 0.2 + 0.01 * rng.random(3 * n))
    return pd.DataFrame(
        {
            "arm": arm,
            "revenue": revenue,
            "revenue_pre": pre,
            "cost": cost,
            "orders": rng.poisson(1 + 0.1 * (arm == "coupon")),
        }
    )


def test_analyze_experiment_frame_known_answer_and_columns():
    frame = pd.DataFrame(
        {"group": ["c", "c", "t", "t"], "revenue": [1, 3, 4, 6], "cost": [0, 0, 1, 2]}
    )
    out = perkrec.analyze_experiment(
        frame, arm="group", metrics=["revenue"], cost="cost", control="c"
    )
    assert list(out["arm"]) == ["t"] and list(out["metric"]) == ["revenue"]
    row = out.iloc[0]
    assert row.control_mean == 2 and row.arm_mean == 5 and row.lift == 3
    assert row.std_error == pytest.approx(math.sqrt(2))
    assert row.roi == pytest.approx(2.0)
    assert row.p_value == pytest.approx(2 * 0.5 * math.erfc(3 / math.sqrt(2) / math.sqrt(2)))
    # Arrays instead of a frame; integer arm codes with 0 = control.
    arrays = perkrec.analyze_experiment(
        arm=np.array([0, 0, 1, 1]), metrics={"revenue": [1, 3, 4, 6]}
    )
    assert arrays.iloc[0].lift == 3 and arrays.iloc[0].arm == 1 and math.isnan(arrays.iloc[0].roi)
    # Integer labels with a named control: the other arms in natural order.
    labelled = perkrec.analyze_experiment(
        arm=[5, 5, 10, 10, 2, 2], metrics={"y": [1.0, 3, 4, 6, 0, 2]}, control=5
    )
    assert list(labelled["arm"]) == [2, 10] and list(labelled["lift"]) == [-1, 3]


def test_analyze_experiment_several_arms_cuped_and_bootstrap():
    frame = _experiment_frame(3)
    plain = perkrec.analyze_experiment(
        frame, metrics=["revenue", "orders", "cost"], cost="cost", control="control"
    )
    assert list(zip(plain["arm"], plain["metric"])) == [
        ("coupon", "revenue"),
        ("coupon", "orders"),
        ("coupon", "cost"),
        ("points", "revenue"),
        ("points", "orders"),
        ("points", "cost"),
    ]
    cuped = perkrec.analyze_experiment(
        frame,
        metrics=["revenue", "orders"],
        cost="cost",
        control="control",
        pre_period={"revenue": "revenue_pre"},
        bootstrap=300,
        seed=1,
        num_threads=1,
    )

    def width(df, m):
        return (df.upper - df.lower)[df.metric == m].to_numpy()

    assert (width(cuped, "revenue") < 0.6 * width(plain, "revenue")).all()
    np.testing.assert_allclose(width(cuped, "orders"), width(plain, "orders"))
    assert cuped.theta[cuped.metric == "revenue"].between(1.8, 2.2).all()
    coupon = cuped[(cuped.arm == "coupon") & (cuped.metric == "revenue")].iloc[0]
    assert coupon.lower < 0.3 < coupon.upper and coupon.p_value < 1e-6
    assert coupon.bootstrap_lower == pytest.approx(
        coupon.lower, abs=0.2 * (coupon.upper - coupon.lower)
    )
    again = perkrec.analyze_experiment(
        frame,
        metrics=["revenue", "orders"],
        cost="cost",
        control="control",
        pre_period={"revenue": "revenue_pre"},
        bootstrap=300,
        seed=1,
        num_threads=2,
    )
    pd.testing.assert_frame_equal(cuped, again)


def test_analyze_experiment_zero_effect_covers_zero():
    covered = total = 0
    for seed in range(40):
        out = perkrec.analyze_experiment(
            _experiment_frame(seed, n=300, effect=0.0), metrics=["revenue"], control="control"
        )
        covered += int(((out.lower <= 0) & (0 <= out.upper)).sum())
        total += len(out)
    assert total == 80 and covered >= 70  # nominal 76


def test_analyze_experiment_rejects_bad_input():
    frame = _experiment_frame(0, n=10)
    with pytest.raises(perkrec.InputError, match="unknown value 'points'"):
        perkrec.analyze_experiment(frame, metrics=["revenue"], arms=["control", "coupon"])
    with pytest.raises(perkrec.InputError, match="control="):
        perkrec.analyze_experiment(frame, metrics=["revenue"])
    with pytest.raises(perkrec.InputError, match="no column 'sales'"):
        perkrec.analyze_experiment(frame, metrics=["sales"], control="control")
    bad = frame.copy()
    bad.loc[4, "revenue"] = np.nan
    with pytest.raises(perkrec.InputError, match="at row 4"):
        perkrec.analyze_experiment(bad, metrics=["revenue"], control="control")
    with pytest.raises(perkrec.InputError, match="arm at row 1"):
        perkrec.analyze_experiment(arm=[0, -1, 1, 1], metrics={"revenue": [1.0, 2, 3, 4]})
    with pytest.raises(perkrec.InputError, match="has 3 rows"):
        perkrec.analyze_experiment(arm=[0, 0, 1, 1], metrics={"revenue": [1.0, 2, 3]})
    with pytest.raises(perkrec.ConfigError, match="confidence"):
        perkrec.analyze_experiment(frame, metrics=["revenue"], control="control", confidence=1.5)


# --- real logs ----------------------------------------------------------------------------------


def test_open_bandit_ips_covers_the_thompson_policy_click_rate():
    """bench/ope_open_bandit.py's set-up: the BTS policy's click rate from the random logs."""
    import importlib.util

    from conftest import REPO, dataset_path

    folder = dataset_path("open-bandit-dataset-women")
    spec = importlib.util.spec_from_file_location(
        "ope_open_bandit", REPO / "bench" / "ope_open_bandit.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    random, bts = bench.load(folder)
    r, p, pi, q, e = bench.prepare(random, bts)
    truth = bts.click.mean()
    for name in ("ips", "snips", "dr"):
        est = perkrec.off_policy_value(r, p, pi, name, reward_estimate=q, target_reward_estimate=e)
        value, half = bench.numpy_estimate(name, r, p, pi, q, e)
        assert est.value == pytest.approx(value, abs=1e-12)
        assert est.upper - est.value == pytest.approx(half, rel=1e-9)
        assert est.lower <= truth <= est.upper, name
        assert 1000 < est.effective_sample_size < len(r)
