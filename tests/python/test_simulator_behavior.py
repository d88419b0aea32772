"""The simulator with what members buy and browse (simulate(behavior=True)): items, baskets
and views that follow planted category interests, benefits scoped to categories that appeal to
the members interested in them, the models that read behaviour recover the interests, and a
program simulated without it is unchanged."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

import perkrec


@pytest.fixture(scope="module")
def program():
    return perkrec.simulate(n_users=1500, seed=3, behavior=True, num_threads=2)


def test_off_by_default(small_program):
    assert small_program.items is None and small_program.behavior is None
    assert small_program.benefit_items is None and small_program.truth.interests is None


def test_items_baskets_and_views(program):
    items = program.items.to_frame()
    assert len(items) == 12 * 8
    assert {"category", "brand"} <= set(items.columns)
    frame = program.behavior.to_frame()
    assert set(frame["action"].cat.categories) == {"purchase", "view"}
    assert program.behavior.user_ids.ids.tolist() == program.events.user_ids.ids.tolist()
    # Purchase lines sum to the orders' amounts, per member.
    events = program.events.to_frame()
    orders = events[events["event_type"] == "ordered"].groupby("user")["order_amount"].sum()
    lines = frame[frame["action"] == "purchase"].groupby("user")["amount"].sum()
    members = program.events.user_ids.ids
    lines.index = members[lines.index.to_numpy()]
    joined = pd.concat([orders, lines], axis=1, keys=["orders", "lines"]).fillna(0.0)
    np.testing.assert_allclose(joined["lines"], joined["orders"], rtol=1e-4, atol=1e-3)
    assert (frame.loc[frame["action"] == "view", "amount"] == 0).all()
    assert frame["timestamp"].max() < program.truth.reference_time


def test_interest_model_recovers_the_planted_interests(program):
    truth = program.truth.interests
    assert np.allclose(truth.sum(axis=1), 1.0, atol=1e-5)
    model = perkrec.InterestModel(level="category", half_life_days=0).fit(
        program.behavior, program.items
    )
    share = model.population_share
    lifts = model.lifts()
    estimated = lifts[truth.columns] * share[truth.columns].to_numpy()
    active = program.behavior.to_frame().groupby("user").size()
    busy = program.events.user_ids.ids[active[active >= 40].index.to_numpy()]
    rho = [spearmanr(estimated.loc[u], truth.loc[u]).correlation for u in busy]
    assert len(busy) > 200
    assert np.nanmedian(rho) > 0.7


def test_behaviour_predicts_the_truth_on_category_benefits(program):
    truth = program.truth
    scoped = [
        (b, c)
        for b, (scope, c) in enumerate(
            zip(program.catalog.to_frame()["scope"], program.catalog.to_frame()["scope_value"])
        )
        if scope == "category"
    ]
    assert len(scoped) >= 10
    # The member's past share of purchase lines in the benefit's category (from the log)
    # orders members by their true claim probability for it.
    frame = program.behavior.to_frame()
    frame = frame[frame["action"] == "purchase"]
    cats = np.asarray(program.items.level_values("category"))[
        program.items.level_codes("category")[frame["item"].to_numpy()]
    ]
    counts = pd.crosstab(frame["user"].to_numpy(), cats)
    shares = counts.div(counts.sum(axis=1), axis=0)
    rho = []
    for b, c in scoped:
        members = shares.index.to_numpy()
        rho.append(spearmanr(shares[c], truth.claim_probability[members, b]).correlation)
    assert np.median(rho) > 0.3


def test_bad_behaviour_parameters_are_config_errors():
    with pytest.raises(perkrec.ConfigError, match="n_categories"):
        perkrec.simulate(n_users=50, behavior=True, n_categories=1)
    with pytest.raises(perkrec.ConfigError, match="interest_concentration"):
        perkrec.simulate(n_users=50, behavior=True, interest_concentration=0)
    with pytest.raises(perkrec.ConfigError, match="lines_per_order"):
        perkrec.simulate(n_users=50, behavior=True, lines_per_order=0)
    with pytest.raises(perkrec.ConfigError, match="behavior"):
        perkrec.simulate(n_users=50, behavior="yes")


@pytest.mark.parametrize(
    "name, value",
    [("n_categories", 2.5), ("n_users", "100"), ("days", True), ("seed", float("nan"))],
)
def test_integer_parameters_are_not_truncated(name, value):
    # 2.5 categories used to become 2 silently; an integral float is still accepted.
    with pytest.raises(perkrec.ConfigError, match=name):
        perkrec.simulate(**{"n_users": 50, "behavior": True, name: value})


def test_integral_floats_are_accepted():
    a = perkrec.simulate(n_users=60, days=30.0, seed=3, num_threads=1)
    b = perkrec.simulate(n_users=60, days=30, seed=3, num_threads=1)
    assert len(a.events) == len(b.events) > 0
