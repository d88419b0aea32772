"""perkrec.plan.pooled_redemption: pooled member, member x kind and member x channel effects."""

import numpy as np
import pytest

import perkrec
from perkrec.plan import pooled_redemption


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _planted(seed=0, n=800, nb=16, per_member=40, member_kind_sd=0.8, member_channel_sd=1.0):
    """True logit = -1.5 + benefit + member + member x kind + member x channel; 4 kinds
    (b % 4), 2 channels (b // 8); issues drawn uniformly, labels from the truth."""
    rng = np.random.default_rng(seed)
    kind, channel = np.arange(nb) % 4, np.arange(nb) // 8
    benefit = rng.normal(0, 0.4, nb)
    member = rng.normal(0, 0.5, n)
    mk = rng.normal(0, member_kind_sd, (n, 4))
    mc = rng.normal(0, member_channel_sd, (n, 2))
    logit = -1.5 + benefit[None, :] + member[:, None] + mk[:, kind] + mc[:, channel]
    truth = _sigmoid(logit)
    u = np.repeat(np.arange(n), per_member)
    b = rng.integers(0, nb, len(u))
    y = (rng.random(len(u)) < truth[u, b]).astype(np.float64)
    return dict(truth=truth, mk=mk, mc=mc, u=u, b=b, y=y, kind=kind, channel=channel, n=n)


def _fit(p, **kw):
    return pooled_redemption(
        p["u"],
        p["b"],
        p["y"],
        n_users=p["n"],
        benefit_attributes={"kind": p["kind"], "channel": p["channel"]},
        **kw,
    )


def test_recovers_planted_member_kind_and_member_channel_effects():
    p = _planted(per_member=80)
    r = _fit(p)
    assert r.groups == ("benefit", "member", "member x kind", "member x channel")
    mk = r.effects["member x kind"].reshape(p["n"], 4)
    mc = r.effects["member x channel"].reshape(p["n"], 2)
    assert np.corrcoef(mk.ravel(), p["mk"].ravel())[0, 1] > 0.65
    assert np.corrcoef(mc.ravel(), p["mc"].ravel())[0, 1] > 0.75
    # Planted variances 0.64 and 1.0; the Laplace approximation underestimates them on sparse
    # binary data (0.36 and 0.86 here), but each group gets its own, in the planted order.
    assert 0.2 < r.variance["member x kind"] < r.variance["member x channel"] < 1.6
    assert r.probability.shape == p["truth"].shape and r.probability.dtype == np.float32
    assert np.corrcoef(r.probability.ravel(), p["truth"].ravel())[0, 1] > 0.85


def test_rarely_issued_pairs_are_pulled_toward_the_group_mean():
    # Member 0 got one issue of kind 0, redeemed; member 1 got 60 of kind 0, 45 redeemed.
    p = _planted(seed=1)
    u = np.concatenate([p["u"][p["u"] >= 2], [0], np.full(60, 1)])
    b = np.concatenate([p["b"][p["u"] >= 2], [0], np.zeros(60, int)])
    y = np.concatenate([p["y"][p["u"] >= 2], [1.0], (np.arange(60) < 45).astype(float)])
    r = pooled_redemption(
        u, b, y, n_users=p["n"], benefit_attributes={"kind": p["kind"], "channel": p["channel"]}
    )
    mk = r.effects["member x kind"].reshape(p["n"], 4)
    mc = r.effects["member x channel"].reshape(p["n"], 2)
    base = r.intercept + r.effects["benefit"][0]
    total = [
        r.effects["member"][m] + mk[m, 0] + mc[m, 0] for m in (0, 1)
    ]  # benefit 0: kind 0, channel 0
    # Unpooled, member 0's effect would be unbounded; pooled it stays a fraction of member 1's,
    # whose 60 issues keep most of their own rate (logit 0.75 - base).
    assert 0 < total[0] < 0.5 * total[1]
    assert 0.6 * (np.log(0.75 / 0.25) - base) < total[1] < np.log(0.75 / 0.25) - base
    # Kinds and channels member 0 never got stay at the group mean.
    assert (mk[0, 1:] == 0).all() and mc[0, 1] == 0


def test_one_and_two_threads_give_identical_results():
    p = _planted(seed=2, per_member=10)
    a, b = _fit(p, num_threads=1), _fit(p, num_threads=2)
    np.testing.assert_array_equal(a.probability, b.probability)
    assert a.variance == b.variance


def test_on_a_base_the_effects_are_fitted_on_top_of_it():
    p = _planted(seed=3)
    truth = p["truth"]
    r = _fit(p, base=truth, base_at_issue=truth[p["u"], p["b"]])
    assert r.groups == ("member", "member x kind", "member x channel")
    # Zero true variance: EM approaches 0 slowly on sparse levels (0.01-0.1 after 30 sweeps).
    assert max(r.variance.values()) < 0.15
    # Close to the base: a fifth of the error of the same fit without it (0.016 vs 0.087).
    assert np.abs(r.probability - truth).mean() < 0.2 * np.abs(_fit(p).probability - truth).mean()


@pytest.mark.parametrize(
    "case, error, match",
    [
        ("nan_weight", perkrec.InputError, r"sample_weight at row 3"),
        ("short_weight", perkrec.InputError, r"sample_weight has"),
        ("unknown_member", perkrec.InputError, r"row 5.*out of range"),
        ("unknown_benefit", perkrec.InputError, r"row 4.*out of range"),
        ("label", perkrec.InputError, r"redeemed at row 2"),
        ("held_out", perkrec.InputError, r"held_out must leave rows on both sides"),
        ("short_attribute", perkrec.InputError, r"benefit_attributes\[1\].*one per benefit"),
        ("base_alone", perkrec.InputError, r"given together"),
        ("sweeps", perkrec.ConfigError, r"sweeps"),
        ("attributes_type", perkrec.ConfigError, r"benefit_attributes must be a dict"),
    ],
)
def test_bad_inputs_raise_typed_errors_and_change_nothing(case, error, match):
    p = _planted(seed=4, n=50, per_member=4)
    u, b, y = p["u"].copy(), p["b"].copy(), p["y"].copy()
    w = np.ones(len(u))
    attrs = {"kind": p["kind"].copy(), "channel": p["channel"].copy()}
    kw = {}
    if case == "nan_weight":
        w[3] = np.nan
    elif case == "short_weight":
        w = w[:-1]
    elif case == "unknown_member":
        u[5] = p["n"]
    elif case == "unknown_benefit":
        b[4] = 16
    elif case == "label":
        y[2] = 0.5
    elif case == "short_attribute":
        attrs["channel"] = attrs["channel"][:-1]
    elif case == "base_alone":
        kw["base"] = p["truth"]
    elif case == "held_out":
        kw["held_out"] = np.zeros(len(u), bool)
    elif case == "sweeps":
        kw["sweeps"] = 0
    elif case == "attributes_type":
        attrs = [attrs["kind"]]
    before = [a.copy() for a in (u, b, y, w)]
    with pytest.raises(error, match=match):
        pooled_redemption(u, b, y, n_users=p["n"], benefit_attributes=attrs, sample_weight=w, **kw)
    for x, y0 in zip((u, b, y, w), before):
        np.testing.assert_array_equal(x, y0)


def test_the_held_out_slope_keeps_effects_that_hold_up_and_drops_those_that_do_not():
    p = _planted(seed=5, per_member=80)
    held = np.random.default_rng(0).random(len(p["u"])) < 0.25
    kept = _fit(p, held_out=held)
    assert kept.slope > 0.7
    # Held-out labels from the benefit level alone: the member effects do not hold up there.
    y = p["y"].copy()
    rng = np.random.default_rng(1)
    y[held] = (rng.random(held.sum()) < p["truth"].mean(axis=0)[p["b"][held]]).astype(float)
    dropped = pooled_redemption(
        p["u"],
        p["b"],
        y,
        n_users=p["n"],
        held_out=held,
        benefit_attributes={"kind": p["kind"], "channel": p["channel"]},
    )
    assert dropped.slope < 0.3
    assert dropped.probability.std(axis=0).mean() < 0.5 * kept.probability.std(axis=0).mean()
