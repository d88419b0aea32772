"""InterestModel: the categories each member is most interested in, from what they buy and
browse — exact shares, recovery of planted interests, no leak past the cut, ids and frames,
save/load, typed errors."""

import numpy as np
import pandas as pd
import pytest

import perkrec

T0 = pd.Timestamp("2026-03-01", tz="UTC")


def _items(n_categories=6):
    return perkrec.ItemCatalog.from_frame(
        pd.DataFrame(
            {
                "item_id": [f"i{k}" for k in range(2 * n_categories)],
                "category": [f"c{k // 2}" for k in range(2 * n_categories)],
                "brand": [f"b{k % 3}" for k in range(2 * n_categories)],
                "price": np.arange(2 * n_categories, dtype=float),  # an extra column, kept
            }
        )
    )


def _planted(n_members=2000, n_categories=6, alpha=8.0, events=30, seed=0):
    """Members draw category shares from Dirichlet(alpha * pi) and buy `events` lines."""
    rng = np.random.default_rng(seed)
    pi = 1.0 / np.arange(1, n_categories + 1)
    pi /= pi.sum()
    theta = rng.dirichlet(alpha * pi, size=n_members)
    rows = []
    for u in range(n_members):
        cats = rng.choice(n_categories, size=events, p=theta[u])
        for k, c in enumerate(cats):
            rows.append((f"m{u}", f"i{2 * c + rng.integers(2)}", T0 + pd.Timedelta(hours=k)))
    lines = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    lines["store"] = "north"  # an extra column real logs carry
    return lines, theta, pi


def test_exact_shares_and_top_on_a_hand_built_log():
    items = _items(3)
    lines = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "a", "b"],
            "item_id": ["i0", "i1", "i0", "i2", "i5"],
            "timestamp": [T0] * 5,
        }
    )
    behavior = perkrec.BehaviorLog.from_frame(lines, items=items)
    model = perkrec.InterestModel(prior_strength=2.0, half_life_days=0).fit(
        behavior, items, cut_time=T0 + pd.Timedelta(days=1)
    )
    pop = model.population_share
    eps = 0.5 * 5 / 3  # half an average cell (3 non-zero cells)
    assert pop["c0"] == pytest.approx((3 + eps) / (5 + 3 * eps))
    lifts = model.lifts()
    assert list(lifts.index) == ["a", "b"]
    expected = (3 + 2 * pop["c0"]) / (4 + 2) / pop["c0"]
    assert lifts.loc["a", "c0"] == pytest.approx(expected, rel=1e-6)
    top = model.top(n=2)
    assert list(top.columns) == [
        "user", "rank", "category", "share", "lift", "lower", "upper", "activity"
    ]  # fmt: skip
    assert top[top.user == "a"].category.tolist() == ["c0", "c1"]
    assert top[top.user == "b"].category.tolist()[0] == "c2"
    assert (top.lower <= top.lift).all() and (top.lift <= top.upper).all()
    assert top.activity.iloc[0] == pytest.approx(3.0)


def test_planted_interests_are_recovered_with_honest_intervals():
    lines, theta, pi = _planted()
    items = _items()
    behavior = perkrec.BehaviorLog.from_frame(lines, items=items)
    model = perkrec.InterestModel(half_life_days=0).fit(behavior, items)
    assert model.prior_strength_ == pytest.approx(8.0, rel=0.2)
    top = model.top(n=6, level=0.8)
    members = top.user.str[1:].astype(int).to_numpy()
    cats = top.category.str[1:].astype(int).to_numpy()
    truth = theta[members, cats] / model.population_share.to_numpy()[cats]
    inside = (truth >= top.lower.to_numpy()) & (truth <= top.upper.to_numpy())
    assert 0.75 < inside.mean() < 0.85
    # Each member's top category is the one of highest planted lift far more often than
    # chance (1 in 6).
    first = top[top["rank"] == 1]
    who = first.user.str[1:].astype(int).to_numpy()
    best = (theta / pi).argmax(axis=1)[who]
    hit = first.category.str[1:].astype(int).to_numpy() == best
    assert hit.mean() > 0.6


def test_segments_get_the_mean_lift_of_their_members():
    lines, theta, pi = _planted(n_members=400, seed=5)
    items = _items()
    model = perkrec.InterestModel(half_life_days=0).fit(
        perkrec.BehaviorLog.from_frame(lines, items=items), items
    )
    lifts = model.lifts()
    # Members who favour c5 (planted lift above 2) vs the rest, as a Series of labels.
    fans = pd.Series(
        np.where(theta[:, 5] / pi[5] > 2, "c5 fans", "others"), index=[f"m{u}" for u in range(400)]
    )
    table = model.by_segment(fans.drop("m0"), n=6)  # m0 in no segment
    for name in ("c5 fans", "others"):
        who = fans.drop("m0")[fans.drop("m0") == name].index
        got = table[table.segment == name].set_index("category").mean_lift
        expected = lifts.loc[who].mean()
        assert got.to_numpy() == pytest.approx(expected[got.index].to_numpy(), rel=1e-6)
        assert (table[table.segment == name].members == len(who)).all()
    assert table[table.segment == "c5 fans"].category.iloc[0] == "c5"
    with pytest.raises(perkrec.InputError):
        model.by_segment(["a", "b"])
    with pytest.raises(perkrec.InputError, match="twice"):
        model.by_segment(pd.concat([fans, fans.iloc[:1]]))


def _by_segment_reference(model, labels, n):
    """The plain-numpy by_segment before it moved to C++ (group_lifts, then per segment a
    stable argsort of the negated means)."""
    missing = pd.isna(labels)
    names, codes = np.unique(labels[~missing].astype(str), return_inverse=True)
    group = np.full(len(labels), -1, dtype=np.int32)
    group[~missing] = codes
    means = model._impl.group_lifts(group, len(names))
    members = np.bincount(codes, minlength=len(names))
    values = np.asarray(model.values, dtype=object)
    rows = []
    for g, name in enumerate(names):
        order = np.argsort(-means[g], kind="stable")[:n]
        for rank, v in enumerate(order, start=1):
            rows.append((name, rank, values[v], float(means[g, v]), int(members[g])))
    level = model.params["level"]
    return pd.DataFrame(rows, columns=["segment", "rank", level, "mean_lift", "members"])


@pytest.mark.parametrize("n", [1, 3, 10])
def test_by_segment_equals_the_numpy_reference(n):
    lines, _, _ = _planted(n_members=300, seed=11)
    items = _items()
    model = perkrec.InterestModel(half_life_days=0).fit(
        perkrec.BehaviorLog.from_frame(lines, items=items), items
    )
    rng = np.random.default_rng(n)
    labels = rng.choice(np.array(["a", "b", "c", None], dtype=object), size=model._impl.n_users)
    labels[:3] = None  # members in no segment; segment "c" may be tiny
    got = model.by_segment(list(labels), n=n)
    expected = _by_segment_reference(model, labels, n)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert got["mean_lift"].to_numpy().tolist() == expected["mean_lift"].tolist()  # bit for bit


def test_events_at_or_after_the_cut_change_nothing_and_threads_agree():
    lines, _, _ = _planted(n_members=300, seed=3)
    items = _items()
    cut = T0 + pd.Timedelta(hours=20)
    later = pd.concat(
        [
            lines,
            lines.assign(timestamp=cut + pd.Timedelta(days=2)),
            lines.iloc[:5].assign(timestamp=cut),
        ]
    )
    users = perkrec.IdMap(sorted(lines.user_id.unique()))
    a = perkrec.InterestModel(num_threads=1).fit(
        perkrec.BehaviorLog.from_frame(lines, user_ids=users, items=items), items, cut
    )
    b = perkrec.InterestModel(num_threads=2).fit(
        perkrec.BehaviorLog.from_frame(later, user_ids=users, items=items), items, cut
    )
    b.set_num_threads(1)
    assert a.to_bytes() == b.to_bytes()


def test_actions_measure_level_and_save_load(tmp_path):
    items = _items(3)
    lines = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 2],
            "item_id": ["i0", "i2", "i4", "i4"],
            "timestamp": [T0] * 4,
            "action": ["purchase", "view", "purchase", "purchase"],
            "amount": [5.0, 0.0, 45.0, 10.0],
        }
    )
    behavior = perkrec.BehaviorLog.from_frame(lines, items=items, action="action", amount="amount")
    model = perkrec.InterestModel(
        level="brand", actions=["purchase"], measure="spend", prior_strength=1.0
    ).fit(behavior, items)
    assert model.values == ["b0", "b1", "b2"]
    # Member 1's spend: 5 on b0 (i0), 45 on b1 (i4); the view of i2 (b2) is not counted.
    first = model.top(n=3, users=[0])
    assert first.brand.tolist()[:2] == ["b1", "b0"]
    assert first.activity.tolist()[:2] == pytest.approx([45.0, 5.0])
    assert model.population_share.sum() == pytest.approx(1.0)
    path = tmp_path / "interest.perk"
    model.save(path)
    back = perkrec.load(path)
    assert isinstance(back, perkrec.InterestModel)
    pd.testing.assert_frame_equal(back.top(n=2), model.top(n=2))
    assert back.get_params()["level"] == "brand"
    import pickle

    pd.testing.assert_frame_equal(pickle.loads(pickle.dumps(model)).lifts(), model.lifts())


def test_bad_input_raises_typed_errors_and_changes_nothing():
    items = _items(2)
    lines = pd.DataFrame({"user_id": [1], "item_id": ["i0"], "timestamp": [T0]})
    behavior = perkrec.BehaviorLog.from_frame(lines, items=items)
    with pytest.raises(perkrec.ConfigError):
        perkrec.InterestModel(level="")
    with pytest.raises(perkrec.ConfigError):
        perkrec.InterestModel(measure="visits")
    with pytest.raises(perkrec.ConfigError):
        perkrec.InterestModel(actions="purchase")
    with pytest.raises(perkrec.ConfigError):
        perkrec.InterestModel(half_life_days=-1.0)
    model = perkrec.InterestModel()
    with pytest.raises(perkrec.InputError, match="not fitted"):
        model.top()
    with pytest.raises(perkrec.InputError, match="level 'department'"):
        perkrec.InterestModel(level="department").fit(behavior, items)
    with pytest.raises(perkrec.InputError, match="action 'like'"):
        perkrec.InterestModel(actions=["like"]).fit(behavior, items)
    with pytest.raises(perkrec.InputError, match="before the cut"):
        model.fit(behavior, items, cut_time=T0)
    assert not model.fitted
    model.fit(behavior, items)
    before = model.to_bytes()
    with pytest.raises(perkrec.InputError):
        model.fit(behavior, items, cut_time=T0)
    assert model.to_bytes() == before
    with pytest.raises(perkrec.InputError):
        model.top(n=0)
    with pytest.raises(perkrec.InputError):
        model.top(level=1.5)
    with pytest.raises(perkrec.InputError):
        model.lifts(users=[5])
    with pytest.raises(perkrec.ModelFormatError):
        perkrec.InterestModel.from_bytes(before[:-7])


def test_module_docstring_example_runs():
    import doctest

    import perkrec.interest

    result = doctest.testmod(perkrec.interest, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 5 and result.failed == 0
