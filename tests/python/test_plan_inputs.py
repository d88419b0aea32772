"""The planner's input estimators off the logging policy: inverse-propensity issue weights, the
held-out shrinkage of the member x benefit interaction, and the incremental share learned
from the control group."""

import numpy as np
import pandas as pd
import pytest

import perkrec
from perkrec.plan import incremental_share_from_control, issue_weights, shrink_interactions


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# --- issue_weights -------------------------------------------------------------------------------


def test_issue_weights_are_clipped_inverse_propensities_with_mean_one():
    p = np.array([0.5, 0.25, 0.1, 0.01, 0.001])
    w = issue_weights(p, clip=1.0)
    np.testing.assert_allclose(w, (1 / p) / (1 / p).mean(), rtol=1e-6)
    assert w.mean() == pytest.approx(1.0, rel=1e-6)
    clipped = issue_weights(p, clip=0.6)
    cap = np.quantile(1 / p, 0.6)
    np.testing.assert_allclose(
        clipped, np.minimum(1 / p, cap) / np.minimum(1 / p, cap).mean(), rtol=1e-6
    )
    assert clipped.max() / clipped.min() < w.max() / w.min()


def test_issue_weights_equal_the_numpy_reference_bit_for_bit():
    """C++ (decide/calibration.hpp: issue_weights) against numpy's quantile, minimum and mean."""
    rng = np.random.default_rng(11)
    for n in (1, 7, 128, 129, 5000):
        p = rng.uniform(0.001, 1.0, size=n)
        for clip in (0.5, 0.9, 0.99, 1.0):
            w = 1.0 / p
            w = np.minimum(w, np.quantile(w, clip))
            np.testing.assert_array_equal(
                issue_weights(p, clip=clip), (w / w.mean()).astype(np.float32)
            )


@pytest.mark.parametrize("bad", [0.0, 1.5, np.nan, -0.1, np.inf])
def test_issue_weights_reject_propensities_outside_0_1(bad):
    with pytest.raises(perkrec.InputError, match=r"propensity\[2\]"):
        issue_weights([0.5, 0.2, bad, 0.3])


def test_issue_weights_reject_bad_clip_and_empty_input():
    with pytest.raises(perkrec.ConfigError, match="clip"):
        issue_weights([0.5], clip=0.2)
    with pytest.raises(perkrec.InputError, match="0 rows"):
        issue_weights([])


# --- shrink_interactions -------------------------------------------------------------------------


def _planted(seed=0, n=3000, nb=20, noise=1.0):
    """True logits = member + benefit effects + a small true interaction; the 'model' adds a
    large interaction noise. Held-out issues are drawn uniformly, labels from the truth."""
    rng = np.random.default_rng(seed)
    member = rng.normal(-2.0, 0.5, n)[:, None]
    benefit = rng.normal(0.0, 0.5, nb)[None, :]
    true_inter = rng.normal(0, 0.3, (n, nb))
    truth = _sigmoid(member + benefit + true_inter)
    model = _sigmoid(member + benefit + true_inter + rng.normal(0, noise, (n, nb)))
    m = 20000
    u = rng.integers(0, n, m)
    b = rng.integers(0, nb, m)
    y = (rng.random(m) < truth[u, b]).astype(np.float64)
    return truth, model, u, b, y


def test_shrink_interactions_removes_the_optimism_of_chosen_pairs():
    truth, model, u, b, y = _planted()
    shrunk, slope = shrink_interactions(model, u, b, model[u, b], y)
    # True interaction variance 0.09 of 1.09 in the model: the slope is far below 1.
    assert 0.0 < slope < 0.35
    rows = np.arange(len(truth))
    for P in (model, shrunk):
        assert P.shape == truth.shape
    chosen_raw = model.argmax(axis=1)
    chosen_shrunk = shrunk.argmax(axis=1)
    gap_raw = model[rows, chosen_raw].mean() - truth[rows, chosen_raw].mean()
    gap_shrunk = shrunk[rows, chosen_shrunk].mean() - truth[rows, chosen_shrunk].mean()
    assert gap_raw > 0.1  # the optimizer's pick is optimistic
    assert abs(gap_shrunk) < 0.3 * gap_raw  # far less after shrinking
    # Leaning on the reliable member and benefit effects picks pairs that are truly better.
    assert truth[rows, chosen_shrunk].mean() > truth[rows, chosen_raw].mean()


def test_shrink_interactions_keeps_a_reliable_interaction():
    truth, _, u, b, y = _planted(seed=1)
    shrunk, slope = shrink_interactions(truth, u, b, truth[u, b], y)
    assert slope > 0.8
    assert np.abs(shrunk - truth).mean() < 0.01


def test_shrink_interactions_is_identical_for_1_and_2_threads():
    truth, model, u, b, y = _planted(n=500)
    one = shrink_interactions(model, u, b, model[u, b], y, num_threads=1)
    two = shrink_interactions(model, u, b, model[u, b], y, num_threads=2)
    assert one[1] == two[1]
    np.testing.assert_array_equal(one[0], two[0])


def test_shrink_interactions_rejects_bad_input_without_changing_it():
    truth, model, u, b, y = _planted(n=200)
    before = model.copy()
    with pytest.raises(perkrec.InputError, match="redeemed"):
        shrink_interactions(model, u, b, model[u, b], y[:-1])
    bad_y = y.copy()
    bad_y[0] = 2
    with pytest.raises(perkrec.InputError, match="0/1"):
        shrink_interactions(model, u, b, model[u, b], bad_y)
    with pytest.raises(perkrec.InputError, match="out of range"):
        shrink_interactions(model, u + 1000, b, model[u, b], y)
    nan = model.copy()
    nan[3, 4] = np.nan
    with pytest.raises(perkrec.InputError, match=r"not finite at \(3, 4\)"):
        shrink_interactions(nan, u, b, model[u, b], y)
    with pytest.raises(perkrec.InputError, match=r"\(0, 1\)"):
        shrink_interactions(np.where(model > 0.5, 1.0, model), u, b, model[u, b], y)
    with pytest.raises(perkrec.ConfigError, match="iterations"):
        shrink_interactions(model, u, b, model[u, b], y, iterations=0)
    with pytest.raises(perkrec.InputError, match="sample_weight at row 1"):
        shrink_interactions(
            model, u, b, model[u, b], y, sample_weight=np.r_[1.0, -1.0, np.ones(len(y) - 2)]
        )
    np.testing.assert_array_equal(model, before)


# --- incremental_share_from_control --------------------------------------------------------------


@pytest.fixture(scope="module")
def program():
    return perkrec.simulate(n_users=3000, days=120, seed=3, num_threads=2)


def test_incremental_share_from_control_orders_members_like_the_truth(program):
    end = program.events.time_range[1]
    S = incremental_share_from_control(program.events, program.catalog, end)
    truth = program.truth
    S_true = truth.incremental_probability / np.maximum(truth.redemption_probability, 1e-12)
    assert S.shape == S_true.shape and S.dtype == np.float32
    assert ((S >= 0) & (S <= 1)).all()
    # The member-level share follows the truth (weakly: 300 control members; 0.28 measured).
    assert np.corrcoef(S.mean(axis=1), S_true.mean(axis=1))[0, 1] > 0.15


def test_incremental_share_from_control_is_seeded_and_takes_the_log_or_its_frame(program):
    end = program.events.time_range[1]
    S = incremental_share_from_control(program.events, program.catalog, end, seed=4)
    frame = program.events.to_frame(external_ids=False)
    np.testing.assert_array_equal(
        S, incremental_share_from_control(frame, program.catalog.to_frame(), end, seed=4)
    )
    other = incremental_share_from_control(program.events, program.catalog, end, seed=5)
    assert not np.array_equal(S, other)


def test_incremental_share_from_control_needs_a_control_group(program):
    no_control = perkrec.simulate(n_users=300, days=60, control_fraction=0.0, seed=3, num_threads=2)
    end = no_control.events.time_range[1]
    with pytest.raises(perkrec.InputError, match="control"):
        incremental_share_from_control(no_control.events, no_control.catalog, end)
    frame = program.events.to_frame(external_ids=False).drop(columns=["control"])
    with pytest.raises(perkrec.InputError, match="no control column"):
        incremental_share_from_control(frame, program.catalog, end)
    with pytest.raises(perkrec.ConfigError, match="pseudo_issues"):
        incremental_share_from_control(program.events, program.catalog, end, pseudo_issues=0)


# --- the pipeline's shrinkage and early stopping (perkrec.BenefitPlanner) ----------------------


def test_shrunk_redemption_probabilities_are_calibrated_on_the_plans_pairs(program):
    from perkrec.demo import TEST_DAYS, demo_policy

    log = program.events
    end = log.time_range[1]
    cut = end - pd.Timedelta(days=TEST_DAYS)
    truth = program.truth.redemption_probability
    gaps = []
    for shrink in (False, True):
        pipeline = perkrec.BenefitPlanner(
            demo_policy(log.n_users), shrink=shrink, seed=3, num_threads=2
        )
        pipeline.fit(log, program.catalog, program.users, cut_time=cut)
        inputs = pipeline.inputs(end)
        P = inputs.redemption_probability
        plan = perkrec.Planner(demo_policy(log.n_users), num_threads=2).plan(
            program.catalog,
            program.users,
            end,
            redemption_probability=P,
            incremental_share=inputs.incremental_share,
            order_value=inputs.order_value,
            history=log,
            preference=pipeline.preference,
            eligible_matrix=False,
        )
        u = plan.frame["member_index"].to_numpy()
        b = plan.frame["benefit_index"].to_numpy()
        gaps.append(P[u, b].mean() - truth[u, b].mean())
    assert gaps[0] > 0  # unshrunk: optimistic on the chosen pairs
    assert abs(gaps[1]) < abs(gaps[0])  # shrunk: closer to the truth


def test_pipeline_rejects_unknown_options():
    with pytest.raises(perkrec.ConfigError, match="weighting"):
        perkrec.BenefitPlanner(weighting="magic")
    with pytest.raises(perkrec.ConfigError, match="incremental"):
        perkrec.BenefitPlanner(incremental="guess")


def test_early_stopping_keeps_the_epoch_that_holds_up_after_the_cut(program):
    from perkrec.demo import TEST_DAYS
    from perkrec.fm import redemption_samples
    from perkrec.metrics import log_loss

    end = program.events.time_range[1]
    cut = end - pd.Timedelta(days=TEST_DAYS)
    held = redemption_samples(program.events, program.catalog, program.users)
    t_cut, t_end = (int(t.value // 1_000_000_000) for t in (cut, end))
    held = held[
        (
            (held["timestamp"] >= t_cut)
            & (held["timestamp"] + held["validity_days"] * 86400 <= t_end)
        ).to_numpy()
    ]
    losses = []
    for early in (False, True):
        pipeline = perkrec.BenefitPlanner(early_stopping=early, shrink=False, seed=3, num_threads=1)
        pipeline.fit(program.events, program.catalog, program.users, cut_time=cut)
        fm, enc = pipeline.fm, pipeline.encoder
        rows = pipeline.with_member_segment(held)  # the segment as of each row (segment_field)
        p = np.clip(fm.predict(enc.transform(rows, events=program.events)), 1e-7, 1 - 1e-7)
        losses.append(log_loss(held["label"].to_numpy(), p))
    assert losses[1] <= losses[0]
