"""Category and brand interests next to the benefit preference: in a member's profile, per
preference segment, and in the campaign report — planted interests come back, rows equal the
InterestModel's own figures, bad inputs are typed errors."""

import numpy as np
import pandas as pd
import pytest

import perkrec
from perkrec.plan import Plan
from perkrec.report import campaign_report

CATEGORIES = ["bakery", "dairy", "frozen", "produce", "snacks", "wine"]


@pytest.fixture(scope="module")
def setup(small_program):
    prog = small_program
    cut = prog.truth.reference_time
    pref = perkrec.PreferenceModel(num_threads=2).fit(prog.events, prog.catalog, cut)
    segments = pref.segments()["segment"].astype(str)
    names = sorted(segments.unique())
    # Planted: each segment's members buy mostly their segment's category (two items per
    # category, one brand per item parity), the rest spread over every category.
    favourite = {s: CATEGORIES[k % len(CATEGORIES)] for k, s in enumerate(names)}
    rng = np.random.default_rng(3)
    items = perkrec.ItemCatalog.from_frame(
        pd.DataFrame(
            {
                "item_id": [f"{c}{j}" for c in CATEGORIES for j in range(2)],
                "category": [c for c in CATEGORIES for _ in range(2)],
                "brand": [f"brand{j}" for _ in CATEGORIES for j in range(2)],
            }
        )
    )
    users, item_ids = [], []
    for user, seg in segments.items():
        own = favourite[seg]
        for _ in range(12):
            cat = own if rng.random() < 0.6 else CATEGORIES[rng.integers(len(CATEGORIES))]
            users.append(user)
            item_ids.append(f"{cat}{rng.integers(2)}")
    lines = pd.DataFrame(
        {
            "user_id": users,
            "item_id": item_ids,
            "timestamp": cut - pd.Timedelta(days=10),
        }
    )
    behavior = perkrec.BehaviorLog.from_frame(lines, items=items, user_ids=prog.events.user_ids)
    by_category = perkrec.InterestModel(level="category").fit(behavior, items, cut_time=cut)
    by_brand = perkrec.InterestModel(level="brand").fit(behavior, items, cut_time=cut)
    return pref, segments, favourite, by_category, by_brand


def test_profile_carries_the_members_top_categories_with_intervals(setup):
    pref, segments, favourite, by_category, by_brand = setup
    user = segments.index[0]
    plain = pref.user_profile(user)
    profile = pref.user_profile(user, interests=by_category, n=3, level=0.8)
    # The benefit dimensions are unchanged; three category rows follow, best first.
    pd.testing.assert_frame_equal(
        profile.iloc[: len(plain)][plain.columns], plain, check_dtype=False
    )
    assert profile["lift"].iloc[: len(plain)].isna().all()
    rows = profile.iloc[len(plain) :]
    assert len(rows) == 3
    top = by_category.top(3, users=[int(by_category.user_ids.lookup([user])[0])], level=0.8)
    assert list(rows.index) == [f"category: {v}" for v in top["category"]]
    np.testing.assert_allclose(rows["preference"], top["share"])
    np.testing.assert_allclose(rows["lift"], top["lift"])
    share = by_category.population_share.reindex(top["category"]).to_numpy()
    np.testing.assert_allclose(rows["lower"], top["lower"].to_numpy() * share)
    assert (rows["lower"] <= rows["preference"]).all()
    assert (rows["preference"] <= rows["upper"]).all()
    # Most members' first category is their segment's planted favourite.
    hits = [
        pref.user_profile(u, interests=by_category, n=1).index[-1]
        == f"category: {favourite[segments[u]]}"
        for u in segments.index[:200]
    ]
    assert np.mean(hits) > 0.8


def test_profile_takes_several_levels(setup):
    pref, segments, _, by_category, by_brand = setup
    profile = pref.user_profile(segments.index[1], interests=[by_category, by_brand], n=2)
    extra = [d for d in profile.index if ": " in d]
    assert [d.split(": ")[0] for d in extra] == ["category", "category", "brand", "brand"]


def test_segment_interests_recover_the_planted_favourites(setup):
    pref, segments, favourite, by_category, _ = setup
    table = pref.segment_interests(by_category, n=2)
    assert list(table.columns) == ["segment", "rank", "category", "mean_lift", "members"]
    first = table[table["rank"] == 1].set_index("segment")["category"]
    for seg, cat in favourite.items():
        assert first[seg] == cat
    counts = table[table["rank"] == 1].set_index("segment")["members"]
    assert counts.to_dict() == segments.value_counts().to_dict()


def test_bad_interests_are_typed_errors(setup):
    pref, segments, _, by_category, _ = setup
    with pytest.raises(perkrec.InputError, match="InterestModel"):
        pref.user_profile(segments.index[0], interests="category")
    with pytest.raises(perkrec.InputError, match="InterestModel"):
        pref.segment_interests(pd.DataFrame())
    # A member the interest model does not know.
    items = perkrec.ItemCatalog.from_frame(pd.DataFrame({"item_id": ["x"], "category": ["c"]}))
    lines = pd.DataFrame(
        {"user_id": ["someone else"], "item_id": ["x"], "timestamp": [pd.Timestamp(0, tz="UTC")]}
    )
    other = perkrec.InterestModel().fit(perkrec.BehaviorLog.from_frame(lines, items=items), items)
    with pytest.raises(perkrec.InputError, match="has no member"):
        pref.user_profile(segments.index[0], interests=other)


def test_report_shows_each_segments_interests(setup, tmp_path):
    pref, segments, favourite, by_category, by_brand = setup
    plan = Plan(
        pd.DataFrame(
            {"user": segments.index[:3], "benefit": ["b"] * 3, "cost": [1.0] * 3, "value": 2.0}
        )
    )
    page = campaign_report(plan, segments=pref.segments(), interests=[by_category, by_brand])
    assert "<h2>What members are most interested in</h2>" in page
    assert "<h3>By category</h3>" in page and "<h3>By brand</h3>" in page
    for cat in set(favourite.values()):
        assert cat in page
    population = campaign_report(plan, interests=by_category)
    assert "population&#x27;s 5 largest category shares" in population
    path = tmp_path / "r.html"
    with pytest.raises(perkrec.InputError, match="InterestModel"):
        campaign_report(plan, path, interests=[by_category, "brand"])
    assert not path.exists()
