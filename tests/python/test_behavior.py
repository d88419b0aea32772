"""What members buy and browse: ItemCatalog, BehaviorLog, BenefitItems, behavior_features and the
encoder's behavior fields (exact answers, no leaks, thread-count invariance, typed errors), and on
dunnhumby's Complete Journey (skipped without ../shared/data): behaviour features lift a logistic
regression's AUC on later coupon campaigns."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

import perkrec
from conftest import dataset_path

DAY = 86400
T0 = 1_700_000_000


def day(d: float) -> int:
    return int(T0 + d * DAY)


# ---------------------------------------------------------------------------------------------
# A tiny world: 6 products (category dairy dairy bakery bakery meat -; brand A B A C B A),
# coupons c0 -> {p0, p2}, c1 -> {p4}, c2 -> nothing, two members.


@pytest.fixture()
def world():
    products = pd.DataFrame(
        {
            "item_id": [100, 101, 102, 103, 104, 105],
            "category": ["dairy", "dairy", "bakery", "bakery", "meat", None],
            "brand": ["A", "B", "A", "C", "B", "A"],
            "price": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0],
        }
    )
    items = perkrec.ItemCatalog.from_frame(products)
    catalog = perkrec.Catalog.from_records(
        [{"id": c, "kind": "discount"} for c in ("c0", "c1", "c2")]
    )
    coupons = pd.DataFrame(
        {"benefit_id": ["c0", "c0", "c1", "c0"], "item_id": [100, 102, 104, 100]}
    )
    applies = perkrec.BenefitItems.from_frame(coupons, catalog=catalog, items=items)
    users = perkrec.IdMap(["ann", "bob", "cyd"])
    events = pd.DataFrame(
        {
            "user_id": ["ann", "ann", "ann", "ann", "ann", "bob", "bob"],
            "item_id": [100, 101, 102, 103, 100, 100, 104],
            "action": [
                "purchase",
                "purchase",
                "view",
                "purchase",
                "purchase",
                "purchase",
                "purchase",
            ],
            "timestamp": pd.to_datetime(
                [day(1), day(1), day(3), day(5), day(10), day(2), day(6)], unit="s"
            ),
            "quantity": [2, 1, 1, 1, 1, 1, 3],
            "amount": [3.0, 1.0, 0.0, 2.0, 1.5, 1.0, 6.0],
            "basket": [10, 10, None, 11, 12, 20, 21],
        }
    )
    log = perkrec.BehaviorLog.from_frame(
        events,
        user_ids=users,
        items=items,
        action="action",
        quantity="quantity",
        amount="amount",
        basket="basket",
    )
    return {
        "items": items,
        "catalog": catalog,
        "applies": applies,
        "users": users,
        "events": events,
        "log": log,
    }


def test_item_catalog_from_frame(world):
    items = world["items"]
    assert len(items) == 6
    assert items.levels == ["category", "brand"]
    assert items.numeric_names == ["price"]
    assert items.level_values("category") == ["dairy", "bakery", "meat"]
    assert items.level_codes("category").tolist() == [0, 0, 1, 1, 2, -1]
    frame = items.to_frame()
    assert list(frame.index) == [100, 101, 102, 103, 104, 105]
    assert np.isnan(frame.loc[102, "price"])
    with pytest.raises(perkrec.InputError, match="unknown level 'aisle'"):
        items.level_codes("aisle")
    explicit = perkrec.ItemCatalog.from_frame(
        pd.DataFrame({"sku": ["a", "b"], "maker": [7, 8], "size": [1.0, 2.0]}),
        id="sku",
        levels=["maker"],
    )
    assert explicit.levels == ["maker"] and explicit.numeric_names == ["size"]
    assert explicit.level_values("maker") == ["7", "8"]
    with pytest.raises(perkrec.InputError, match="missing column"):
        perkrec.ItemCatalog.from_frame(pd.DataFrame({"x": [1]}))


def test_behavior_log_from_frame(world):
    log = world["log"]
    assert len(log) == 7 and log.n_users == 3 and log.n_items == 6
    assert log.action_names == ["purchase", "view"]
    assert log.user_offsets.tolist() == [0, 5, 7, 7]
    frame = log.to_frame()
    assert frame["item"].tolist() == [0, 1, 2, 3, 0, 0, 4]
    assert frame["basket"].tolist() == [10, 10, -1, 11, 12, 20, 21]
    # Int seconds and datetimes give the same log; defaults: purchase, quantity 1, amount 0.
    events = world["events"].assign(
        timestamp=[day(1), day(1), day(3), day(5), day(10), day(2), day(6)]
    )
    same = perkrec.BehaviorLog.from_frame(
        events,
        user_ids=world["users"],
        items=world["items"],
        action="action",
        quantity="quantity",
        amount="amount",
        basket="basket",
    )
    pd.testing.assert_frame_equal(same.to_frame(), frame)
    bare = perkrec.BehaviorLog.from_frame(events, items=world["items"])
    assert bare.action_names == ["purchase"]
    assert bare.to_frame()["quantity"].tolist() == [1.0] * 7
    assert bare.user_ids.ids.tolist() == ["ann", "bob"]


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_behavior_log_from_file_equals_from_frame(world, tmp_path, suffix):
    pytest.importorskip("pyarrow")
    events = world["events"].assign(
        timestamp=[day(1), day(1), day(3), day(5), day(10), day(2), day(6)], note="extra"
    )
    path = tmp_path / f"events{suffix}"
    if suffix == ".parquet":
        events.to_parquet(path, index=False)
    else:
        events.to_csv(path, index=False)
    kw = dict(items=world["items"], action="action", quantity="quantity", amount="amount")
    kw.update(basket="basket", user_ids=world["users"])
    from_file = perkrec.BehaviorLog.from_file(path, **kw)
    pd.testing.assert_frame_equal(
        from_file.to_frame(), perkrec.BehaviorLog.from_frame(events, **kw).to_frame()
    )
    with pytest.raises(perkrec.InputError, match="missing column 'qty'"):
        perkrec.BehaviorLog.from_file(path, **dict(kw, quantity="qty"))
    with pytest.raises(perkrec.InputError, match="no such file"):
        perkrec.BehaviorLog.from_file(tmp_path / "absent.parquet", **kw)


def test_item_catalog_behavior_log_and_benefit_items_save_and_load(world, tmp_path):
    import pickle

    items, log, applies = world["items"], world["log"], world["applies"]
    for obj in (items, log, applies):
        path = tmp_path / f"{type(obj).__name__}.perk"
        obj.save(path)
        for back in (
            type(obj).load(path),
            perkrec.load(path),
            perkrec.loads(obj.to_bytes()),
            pickle.loads(pickle.dumps(obj)),
        ):
            assert type(back) is type(obj) and back.to_bytes() == obj.to_bytes()
    assert perkrec.load(tmp_path / "ItemCatalog.perk") == items
    back = perkrec.BehaviorLog.load(tmp_path / "BehaviorLog.perk")
    pd.testing.assert_frame_equal(back.to_frame(), log.to_frame())
    assert back.action_names == ["purchase", "view"]
    # The member map travels with the log, so a planner can check it against its event log.
    assert back.user_ids.ids.tolist() == ["ann", "bob", "cyd"]
    again = perkrec.BenefitItems.load(tmp_path / "BenefitItems.perk")
    assert [again.items_of(b).tolist() for b in range(3)] == [[0, 2], [4], []]
    # A log built from index arrays has no map, and keeps none through a file.
    bare = perkrec.BehaviorLog._wrap(
        perkrec._core.BehaviorLog.from_arrays(
            np.array([0, 1], np.int32),
            np.array([0, 0], np.int32),
            np.array([day(1), day(2)], np.int64),
            None,
            None,
            None,
            None,
            2,
            6,
            ["purchase"],
            "drop",
            1,
        )
    )
    assert bare.user_ids is None and perkrec.loads(bare.to_bytes()).user_ids is None
    with pytest.raises(perkrec.InputError, match="n_users"):
        bare.user_ids = perkrec.IdMap(["a", "b", "c"])
    assert bare.user_ids is None
    with pytest.raises(perkrec.ModelFormatError, match="BehaviorLog"):
        perkrec.ItemCatalog.load(tmp_path / "BehaviorLog.perk")


def test_behavior_log_unknown_ids_and_bad_values(world):
    events = world["events"].copy()
    events.loc[2, "item_id"] = 999
    events.loc[5, "user_id"] = "zed"
    log = perkrec.BehaviorLog.from_frame(
        events, user_ids=world["users"], items=world["items"], action="action"
    )
    assert (len(log), log.unknown_items, log.unknown_users) == (5, 1, 1)
    with pytest.raises(perkrec.InputError, match="row 2: item: unknown item"):
        perkrec.BehaviorLog.from_frame(
            events, user_ids=world["users"], items=world["items"], unknown="raise"
        )
    with pytest.raises(perkrec.ConfigError, match="'drop' or 'raise'"):
        perkrec.BehaviorLog.from_frame(events, items=world["items"], unknown="keep")
    bad = world["events"].copy()
    bad.loc[3, "amount"] = np.nan
    with pytest.raises(
        perkrec.InputError, match=r"row 3: amount: must be finite and >= 0 \(got nan\)"
    ):
        perkrec.BehaviorLog.from_frame(bad, items=world["items"], amount="amount")
    bad = world["events"].copy()
    bad.loc[4, "amount"] = -2.5
    with pytest.raises(perkrec.InputError, match=r"row 4: amount: .*got -2.5"):
        perkrec.BehaviorLog.from_frame(bad, items=world["items"], amount="amount")
    bad = world["events"].copy()
    bad.loc[1, "quantity"] = -1
    with pytest.raises(perkrec.InputError, match=r"row 1: quantity: .*got -1"):
        perkrec.BehaviorLog.from_frame(bad, items=world["items"], quantity="quantity")
    with pytest.raises(perkrec.InputError, match="missing column 'spend'"):
        perkrec.BehaviorLog.from_frame(world["events"], items=world["items"], amount="spend")


def test_benefit_items(world):
    applies = world["applies"]
    assert (applies.n_benefits, applies.n_items, len(applies)) == (3, 6, 3)
    assert applies.items_of(0).tolist() == [0, 2]
    assert applies.items_of(2).tolist() == []
    assert applies.level_values(world["items"], "category") == [["dairy", "bakery"], ["meat"], []]
    assert applies.level_values(world["items"], "brand")[0] == ["A"]
    pairs = pd.DataFrame({"benefit_id": ["c0", "c1"], "item_id": [100, 555]})
    dropped = perkrec.BenefitItems.from_frame(pairs, catalog=world["catalog"], items=world["items"])
    assert dropped.unknown_items == 1 and len(dropped) == 1
    with pytest.raises(perkrec.InputError, match="pair 1: unknown item"):
        perkrec.BenefitItems.from_frame(
            pairs, catalog=world["catalog"], items=world["items"], unknown="raise"
        )
    with pytest.raises(perkrec.InputError, match="row 0: unknown benefit id 'c9'"):
        perkrec.BenefitItems.from_frame(
            pd.DataFrame({"benefit_id": ["c9"], "item_id": [100]}),
            catalog=world["catalog"],
            items=world["items"],
        )


def test_behavior_features_exact(world):
    samples = pd.DataFrame(
        {
            "user": [0, 0, 2, 1],
            "benefit": [0, 0, 1, 2],
            "timestamp": [day(10), day(10) + 1, day(7), day(7)],
        },
        index=[5, 6, 7, 8],
    )
    f = perkrec.behavior_features(
        samples, world["log"], world["items"], world["applies"], levels=["category", "brand"]
    )
    assert list(f.index) == [5, 6, 7, 8]
    decay = lambda d: 0.5 ** (d / 28)  # noqa: E731
    row = f.loc[5]
    assert row["purchase_items_count"] == 1 and row["purchase_items_spend"] == 3.0
    assert row["purchase_items_quantity"] == 2 and row["purchase_items_days_since_last"] == 9.0
    assert row["purchase_items_decayed_count"] == pytest.approx(decay(9), rel=1e-12)
    assert row["purchase_items_share_of_wallet"] == 0.5
    assert row["purchase_category_count"] == 3 and row["purchase_category_spend"] == 6.0
    assert row["purchase_category_decayed_count"] == pytest.approx(
        2 * decay(9) + decay(5), rel=1e-12
    )
    assert row["purchase_brand_count"] == 1
    assert (
        row["purchase_member_count"],
        row["purchase_member_baskets"],
        row["purchase_member_spend"],
        row["purchase_member_distinct_items"],
        row["purchase_member_days_since_last"],
    ) == (3, 2, 6.0, 3, 5.0)
    assert (row["purchase_popularity_events"], row["purchase_popularity_members"]) == (2, 2)
    assert f.loc[6, "purchase_items_count"] == 2 and f.loc[6, "purchase_popularity_events"] == 3
    assert f.loc[7, "purchase_items_count"] == 0
    assert f.loc[7, "purchase_items_days_since_last"] == perkrec.behavior.BEHAVIOR_NEVER_DAYS
    assert f.loc[7, "purchase_popularity_events"] == 1
    assert f.loc[8, "purchase_items_count"] == 0 and f.loc[8, "purchase_member_spend"] == 7.0
    views = perkrec.behavior_features(
        samples,
        world["log"],
        world["items"],
        world["applies"],
        actions=["view"],
        aggregates=["count", "days_since_last"],
    )
    assert list(views.columns) == ["view_items_count", "view_items_days_since_last"]
    assert views.loc[5].tolist() == [1.0, 7.0]
    with pytest.raises(perkrec.ConfigError, match="unknown aggregate 'nope'"):
        perkrec.behavior_features(
            samples, world["log"], world["items"], world["applies"], aggregates=["nope"]
        )
    with pytest.raises(perkrec.InputError, match="unknown level 'aisle'"):
        perkrec.behavior_features(
            samples, world["log"], world["items"], world["applies"], levels=["aisle"]
        )
    with pytest.raises(perkrec.InputError, match="unknown action 'share'"):
        perkrec.behavior_features(
            samples, world["log"], world["items"], world["applies"], actions=["share"]
        )


def random_world(rng, n_events=400, n_samples=60, n_users=25, n_items=30, n_benefits=6):
    products = pd.DataFrame(
        {
            "item_id": np.arange(n_items),
            "category": rng.choice(["a", "b", "c", "d"], n_items),
            "brand": rng.choice(["x", "y", "z"], n_items),
        }
    )
    items = perkrec.ItemCatalog.from_frame(products)
    pairs = pd.DataFrame(
        {"benefit": rng.integers(0, n_benefits, 20), "item": rng.integers(0, n_items, 20)}
    )
    applies = perkrec.BenefitItems.from_pairs(pairs["benefit"], pairs["item"], n_benefits, n_items)
    events = pd.DataFrame(
        {
            "user_id": rng.integers(0, n_users, n_events),
            "item_id": rng.integers(0, n_items, n_events),
            "action": rng.choice(["purchase", "view"], n_events),
            "timestamp": T0 + rng.integers(0, 50, n_events) * DAY,
            "amount": rng.integers(0, 40, n_events) / 4.0,
            "basket": rng.integers(-1, 30, n_events),
        }
    )
    samples = pd.DataFrame(
        {
            "user": rng.integers(0, n_users + 2, n_samples),
            "benefit": rng.integers(0, n_benefits, n_samples),
            "timestamp": T0 + rng.integers(0, 50, n_samples) * DAY,
        }
    )
    return items, applies, events, samples


def make_log(events, items, n_users=25):
    return perkrec.BehaviorLog.from_frame(
        events,
        user_ids=perkrec.IdMap(np.arange(n_users)),
        items=items,
        action="action",
        amount="amount",
        basket="basket",
    )


KW = dict(levels=["category", "brand"], actions=["purchase", "view"], half_life_days=7)


def test_no_leak_property():
    """Adding events at or after a sample's time never changes its features."""
    rng = np.random.default_rng(3)
    for _ in range(8):
        items, applies, events, samples = random_world(rng)
        base = perkrec.behavior_features(samples, make_log(events, items), items, applies, **KW)
        late = []
        for s in samples.itertuples():
            for k in range(3):
                late.append(
                    {
                        "user_id": min(s.user, 24) if k < 2 else int(rng.integers(0, 25)),
                        "item_id": int(applies.items_of(s.benefit)[0])
                        if k == 0 and len(applies.items_of(s.benefit))
                        else int(rng.integers(0, 30)),
                        "action": "purchase" if k != 2 else "view",
                        "timestamp": s.timestamp + (0 if k == 0 else int(rng.integers(0, 3 * DAY))),
                        "amount": 5.0,
                        "basket": 99,
                    }
                )
        # Each sample against the log with every late event of every sample at or after its own time.
        more = pd.concat([events, pd.DataFrame(late)], ignore_index=True)
        for i, s in enumerate(samples.itertuples()):
            visible_late = more[(more.index < len(events)) | (more["timestamp"] >= s.timestamp)]
            after = perkrec.behavior_features(
                samples.iloc[[i]], make_log(visible_late, items), items, applies, **KW
            )
            pd.testing.assert_series_equal(
                after.iloc[0], base.iloc[i], check_names=False, check_exact=True
            )


def test_thread_count_invariance():
    rng = np.random.default_rng(11)
    items, applies, events, samples = random_world(rng, n_events=20000, n_samples=3000, n_users=400)
    log = make_log(events, items, n_users=400)
    one = perkrec.behavior_features(samples, log, items, applies, num_threads=1, **KW)
    for threads in (2, 4):
        pd.testing.assert_frame_equal(
            one,
            perkrec.behavior_features(samples, log, items, applies, num_threads=threads, **KW),
            check_exact=True,
        )


def test_float32_output_is_the_float64_output_rounded():
    """dtype="float32": every column float32, bit for bit the float64 column cast to float32,
    for any thread count; the default stays float64 and equals dtype="float64"."""
    rng = np.random.default_rng(12)
    items, applies, events, samples = random_world(rng, n_events=6000, n_samples=1500, n_users=200)
    log = make_log(events, items, n_users=200)
    wide = perkrec.behavior_features(samples, log, items, applies, num_threads=1, **KW)
    assert set(wide.dtypes) == {np.dtype(np.float64)}
    pd.testing.assert_frame_equal(
        wide,
        perkrec.behavior_features(
            samples, log, items, applies, num_threads=2, dtype="float64", **KW
        ),
        check_exact=True,
    )
    expected = wide.to_numpy().astype(np.float32)
    # The test must see rounding: many float64 values are not float32 values.
    assert (expected.astype(np.float64) != wide.to_numpy()).sum() > len(samples)
    for threads, dtype in ((1, "float32"), (2, np.float32), (3, "float32")):
        narrow = perkrec.behavior_features(
            samples, log, items, applies, num_threads=threads, dtype=dtype, **KW
        )
        assert list(narrow.columns) == list(wide.columns)
        assert list(narrow.index) == list(wide.index)
        assert set(narrow.dtypes) == {np.dtype(np.float32)}
        np.testing.assert_array_equal(
            narrow.to_numpy().view(np.uint32), expected.view(np.uint32), strict=True
        )


@pytest.mark.parametrize("dtype", ["float16", "int64", "f32", None, True, 4, np.int32])
def test_bad_dtype_rejected_before_any_work(world, dtype):
    # samples is not a frame: the dtype error must come first.
    with pytest.raises(perkrec.ConfigError, match=r"dtype must be 'float64' or 'float32' \(got "):
        perkrec.behavior_features(
            "not a frame", world["log"], world["items"], world["applies"], dtype=dtype
        )
    samples = pd.DataFrame({"user": [0], "benefit": [0], "timestamp": [day(10)]})
    # The binding itself rejects names the wrapper would not pass.
    with pytest.raises(perkrec.ConfigError, match="dtype must be 'float64' or 'float32'"):
        perkrec._core.behavior_features(
            samples["user"].to_numpy(),
            samples["benefit"].to_numpy(),
            samples["timestamp"].to_numpy(),
            world["log"]._impl,
            world["items"]._impl,
            world["applies"]._impl,
            [],
            [],
            ["purchase"],
            28.0,
            1,
            "float16",
        )


def _log_arrays(log):
    return (
        log.user_offsets.tolist(),
        log._impl.items().tolist(),
        log._impl.actions().tolist(),
        log._impl.timestamps().tolist(),
        log._impl.quantities().tolist(),
        log._impl.amounts().tolist(),
        log._impl.baskets().tolist(),
        log.action_names,
        (log.unknown_items, log.unknown_users),
    )


def test_behavior_log_from_frame_column_kinds_give_the_same_log():
    """Integer ids (looked up row by row in the core), categorical actions and float64 / int64
    columns (passed without copies) give the log that string ids, object actions and nullable
    columns give; ties in time keep input order; unknown ids are dropped and counted."""
    rng = np.random.default_rng(5)
    n = 200_000  # above the core's parallel lookup block
    user = rng.integers(0, 300, n) + 1000
    item = rng.integers(0, 60, n) + 500
    user[7] = 5  # unknown member
    item[11] = 9  # unknown item
    action = rng.choice(["view", "purchase", "cart"], n)
    frame = pd.DataFrame(
        {
            "user": user,
            "item": item,
            "action": action,
            "time": T0 + rng.integers(0, 50, n),  # many ties
            "quantity": rng.integers(1, 4, n).astype(np.float64),
            "amount": np.round(rng.gamma(2.0, 2.0, n), 2),
            "basket": np.arange(n, dtype=np.int64),
        }
    )
    user_ids = perkrec.IdMap(np.arange(300) + 1000)
    items = perkrec.ItemCatalog(perkrec.IdMap(np.arange(60) + 500))
    kw = dict(user="user", item="item", action="action", time="time", quantity="quantity")
    kw.update(amount="amount", basket="basket", num_threads=2)
    fast = perkrec.BehaviorLog.from_frame(frame, user_ids=user_ids, items=items, **kw)
    assert (fast.unknown_users, fast.unknown_items) == (1, 1)
    assert fast.action_names == ["cart", "purchase", "view"]
    # The same rows through the generic paths: string ids, an object-dtype action column with
    # unused categories absent, nullable numbers, a float basket column.
    slow_frame = frame.assign(
        user=frame["user"].astype(str),
        item=frame["item"].astype(str),
        action=frame["action"].astype(object),
        quantity=frame["quantity"].astype("Float64"),
        amount=frame["amount"].astype("Float64"),
        basket=frame["basket"].astype(np.float64),
    )
    slow = perkrec.BehaviorLog.from_frame(
        slow_frame,
        user_ids=perkrec.IdMap([str(u) for u in range(1000, 1300)]),
        items=perkrec.ItemCatalog(perkrec.IdMap([str(i) for i in range(500, 560)])),
        **kw,
    )
    assert _log_arrays(fast) == _log_arrays(slow)
    categorical = frame.assign(
        action=pd.Categorical(frame["action"], categories=["zoom", "view", "purchase", "cart"])
    )
    cat_log = perkrec.BehaviorLog.from_frame(categorical, user_ids=user_ids, items=items, **kw)
    assert _log_arrays(cat_log) == _log_arrays(fast)  # the unused category is not in the vocabulary
    # Rows in (member, time) order, ties in input order (basket = input row).
    users = fast._impl.users()
    keys = np.lexsort((fast._impl.baskets(), fast._impl.timestamps(), users))
    assert (keys == np.arange(len(fast))).all()
    kept = (user != 5) & (item != 9)
    assert sorted(fast._impl.baskets().tolist()) == np.flatnonzero(kept).tolist()
    # A missing action names its row, whatever the column's kind.
    for col in (frame["action"].astype(object), categorical["action"]):
        bad = frame.assign(action=col)
        bad.loc[17, "action"] = None
        with pytest.raises(perkrec.InputError, match="row 17: action is missing"):
            perkrec.BehaviorLog.from_frame(bad, user_ids=user_ids, items=items, **kw)
    bad = frame.assign(amount=frame["amount"].where(frame.index != 23, np.nan))
    with pytest.raises(perkrec.InputError, match=r"row 23: amount: must be finite"):
        perkrec.BehaviorLog.from_frame(bad, user_ids=user_ids, items=items, **kw)


def test_behavior_log_from_frame_dense_and_hashed_ids_give_the_same_log():
    """Ids that span a compact range (negatives included; looked up through dense arrays in the
    core) give the log that the same rows give with huge sparse ids (the maps' hashes) and with
    string ids; unknown ids are dropped and counted, or raise the same InputError naming the
    row and column, on every path; an out-of-range int64 time names its column and row."""
    rng = np.random.default_rng(8)
    n = 150_000
    user_key = rng.integers(0, 400, n)
    item_key = rng.integers(0, 90, n)
    user_order = rng.permutation(400)  # map order differs from id order
    item_order = rng.permutation(90)
    times = T0 + rng.integers(0, 1000, n)

    def build(user_of, item_of, unknown="drop", time_col=times):
        user_ids = perkrec.IdMap(user_of(user_order))
        items = perkrec.ItemCatalog(perkrec.IdMap(item_of(item_order)))
        frame = pd.DataFrame(
            {"user": user_of(user_key), "item": item_of(item_key), "time": time_col}
        )
        frame.loc[5, "user"] = user_of(np.array([400]))[0]  # unknown member
        frame.loc[9, "item"] = item_of(np.array([90]))[0]  # unknown item
        kw = dict(user="user", item="item", time="time", unknown=unknown, num_threads=2)
        return perkrec.BehaviorLog.from_frame(frame, user_ids=user_ids, items=items, **kw)

    dense = (lambda k: k - 200, lambda k: k + 10**12)
    sparse = (lambda k: k * 2**40 - 3, lambda k: -(k * 3**30))
    strings = (lambda k: np.array([f"u{v}" for v in k]), lambda k: np.array([f"i{v}" for v in k]))
    logs = [build(*ids) for ids in (dense, sparse, strings)]
    assert (logs[0].unknown_users, logs[0].unknown_items) == (1, 1)
    assert _log_arrays(logs[0]) == _log_arrays(logs[1]) == _log_arrays(logs[2])
    for ids in (dense, sparse, strings):
        with pytest.raises(perkrec.InputError, match="row 5: user: unknown member id"):
            build(*ids, unknown="raise")
    late = times.copy()
    late[11] = perkrec._core.MAX_TIME
    late[40] = perkrec._core.MIN_TIME - 1
    for ids in (dense, sparse):
        with pytest.raises(perkrec.InputError, match=r"time: row 11: time \d+ s is outside"):
            build(*ids, time_col=late)


# ---------------------------------------------------------------------------------------------
# FeatureEncoder behavior fields

FIELDS = [
    {"name": "user", "kind": "id"},
    {
        "name": "buying",
        "kind": "behavior",
        "levels": ["category"],
        "bins": 4,
        "aggregates": ["count", "spend", "days_since_last", "member_spend", "popularity_members"],
    },
    {
        "name": "raw",
        "kind": "behavior",
        "bins": 0,
        "aggregates": ["count"],
        "actions": ["purchase", "view"],
    },
]


def test_encoder_behavior_field_round_trip():
    rng = np.random.default_rng(5)
    items, applies, events, samples = random_world(rng, n_events=3000, n_samples=500)
    behavior = (make_log(events, items), items, applies)
    enc = perkrec.FeatureEncoder(FIELDS, num_threads=2).fit(samples, behavior=behavior)
    X = enc.transform(samples, behavior=behavior)
    assert X.shape[0] == len(samples) and X.nnz == len(samples) * (1 + 8 + 2)
    back = perkrec.FeatureEncoder.from_json(enc.to_json())
    assert back.to_json() == enc.to_json()
    assert (back.transform(samples, behavior=behavior) != X).nnz == 0
    one = perkrec.FeatureEncoder(FIELDS, num_threads=1).fit(samples, behavior=behavior)
    assert (
        one.to_json() == enc.to_json() and (one.transform(samples, behavior=behavior) != X).nnz == 0
    )
    raw = perkrec.behavior_features(
        samples, *behavior, aggregates=["count"], actions=["purchase", "view"]
    )
    start = enc.field_offsets()[2]
    np.testing.assert_allclose(
        X[:, start : start + 2].toarray(), np.log1p(raw.to_numpy()).astype(np.float32)
    )
    # A FM stores the encoder; it comes back with the model.
    model = perkrec.FM(factors=0, epochs=2).fit(X, rng.integers(0, 2, len(samples)), encoder=enc)
    assert perkrec.FM.from_bytes(model.to_bytes()).encoder.to_json() == enc.to_json()
    # Existing fields work without behaviour data when only they are selected.
    assert enc.transform(samples, fields=["user"]).nnz == len(samples)
    with pytest.raises(perkrec.InputError, match="BehaviorData"):
        enc.transform(samples)
    optional = perkrec.FeatureEncoder([FIELDS[0], dict(FIELDS[1], optional=True)]).fit(samples)
    assert optional.dropped_fields == ["buying"]


def test_encoder_continuous_behavior_field():
    """continuous: each column's bucket, then its standardized signed log1p value (mean 0 and
    population std 1 over the fit samples), stored with the encoder."""
    rng = np.random.default_rng(8)
    items, applies, events, samples = random_world(rng, n_events=3000, n_samples=500)
    behavior = (make_log(events, items), items, applies)
    field = {"name": "b", "kind": "behavior", "bins": 3, "continuous": True}
    field["aggregates"] = ["count", "days_since_last"]
    enc = perkrec.FeatureEncoder([field], num_threads=2).fit(samples, behavior=behavior)
    X = enc.transform(samples, behavior=behavior)
    assert X.nnz == len(samples) * 4
    raw = perkrec.behavior_features(samples, *behavior, aggregates=field["aggregates"])
    offsets = json.loads(enc.to_json())["state"][0]["offsets"]
    for c, column in enumerate(raw.columns):
        value = X[:, offsets[c + 1] - 1].toarray().ravel()
        z = np.log1p(raw[column].to_numpy())
        np.testing.assert_allclose(value, (z - z.mean()) / z.std(), atol=1e-5)
        assert (X[:, offsets[c] : offsets[c + 1] - 1].sum(axis=1) == 1).all()  # one bucket
    back = perkrec.FeatureEncoder.from_json(enc.to_json())
    assert (back.transform(samples, behavior=behavior) != X).nnz == 0
    one = perkrec.FeatureEncoder([field], num_threads=1).fit(samples, behavior=behavior)
    assert one.to_json() == enc.to_json()
    with pytest.raises(perkrec.ConfigError, match="/fields/0/continuous"):
        perkrec.FeatureEncoder([dict(field, continuous="yes")])


def test_encoder_behavior_spec_errors():
    with pytest.raises(perkrec.ConfigError, match="/fields/1/aggregates/1.*unknown aggregate"):
        perkrec.FeatureEncoder(
            [FIELDS[0], {"name": "b", "kind": "behavior", "aggregates": ["count", "cnt"]}]
        )
    with pytest.raises(perkrec.ConfigError, match="/fields/0/half_life_days"):
        perkrec.FeatureEncoder([{"name": "b", "kind": "behavior", "half_life_days": -1}])
    with pytest.raises(perkrec.ConfigError, match="/fields/0.*window"):
        perkrec.FeatureEncoder([{"name": "b", "kind": "behavior", "window": 3}])
    rng = np.random.default_rng(2)
    items, applies, events, samples = random_world(rng)
    behavior = (make_log(events, items), items, applies)
    with pytest.raises(perkrec.ConfigError, match="/fields/1/levels/0: unknown level 'aisle'"):
        perkrec.FeatureEncoder(
            [FIELDS[0], {"name": "b", "kind": "behavior", "levels": ["aisle"]}]
        ).fit(samples, behavior=behavior)
    with pytest.raises(perkrec.ConfigError, match="/fields/0/actions/0: unknown action 'share'"):
        perkrec.FeatureEncoder([{"name": "b", "kind": "behavior", "actions": ["share"]}]).fit(
            samples, behavior=behavior
        )
    with pytest.raises(perkrec.InputError, match="behavior must be"):
        perkrec.FeatureEncoder(FIELDS).fit(samples, behavior=(behavior[0], behavior[1]))


# ---------------------------------------------------------------------------------------------
# dunnhumby Complete Journey: coupons of earlier campaigns train, later campaigns test.


def _complete_journey_samples(path, rng):
    read = lambda name: pd.read_parquet(path / f"{name}.parquet")  # noqa: E731
    transactions = read("transactions")
    products = read("products")
    coupons = read("coupons")
    campaigns = read("campaigns").merge(read("campaign_descriptions"), on="campaign_id")
    redemptions = read("coupon_redemptions")
    # One row per targeted (household, coupon, campaign); label = redeemed in that campaign.
    offers = campaigns.merge(
        coupons[["coupon_upc", "campaign_id"]].drop_duplicates(), on="campaign_id"
    )
    redeemed = (
        redemptions[["household_id", "coupon_upc", "campaign_id"]].drop_duplicates().assign(label=1)
    )
    offers = offers.merge(redeemed, on=["household_id", "coupon_upc", "campaign_id"], how="left")
    offers["label"] = offers["label"].fillna(0).astype(np.int8)
    # Every positive, a fixed sample of negatives (AUC does not depend on the negative rate).
    keep = (offers["label"] == 1) | (rng.random(len(offers)) < 0.15)
    offers = offers[keep & (offers["start_date"] >= "2017-02-01")].reset_index(drop=True)
    users = perkrec.IdMap(
        np.union1d(transactions["household_id"].unique(), offers["household_id"].unique())
    )
    benefits = perkrec.IdMap(coupons["coupon_upc"].unique())
    items = perkrec.ItemCatalog.from_frame(
        products,
        id="product_id",
        levels=["department", "product_category", "brand", "manufacturer_id"],
        numeric=[],
    )
    applies = perkrec.BenefitItems.from_frame(
        coupons, catalog=benefits, items=items, benefit="coupon_upc", item="product_id"
    )
    log = perkrec.BehaviorLog.from_frame(
        transactions,
        user_ids=users,
        items=items,
        user="household_id",
        item="product_id",
        time="transaction_timestamp",
        quantity="quantity",
        amount="sales_value",
        basket="basket_id",
    )
    samples = pd.DataFrame(
        {
            "user": users.lookup(offers["household_id"]).astype(np.int64),
            "benefit": benefits.lookup(offers["coupon_upc"]).astype(np.int64),
            "timestamp": perkrec._util.seconds(offers["start_date"], "start_date"),
            "campaign_type": offers["campaign_type"].astype(str),
            "label": offers["label"].to_numpy(),
            "test": (offers["start_date"] >= "2017-08-01").to_numpy(),
        }
    )
    return samples, (log, items, applies)


def test_complete_journey_behaviour_lifts_auc():
    path = dataset_path("dunnhumby-complete-journey-2017")
    started = time.perf_counter()
    samples, behavior = _complete_journey_samples(path, np.random.default_rng(0))
    train, test = samples[~samples["test"]], samples[samples["test"]]
    assert train["label"].sum() > 300 and test["label"].sum() > 300
    base_fields = [
        {"name": "user", "kind": "id", "min_count": 3},
        {"name": "campaign_type", "kind": "categorical"},
    ]
    behaviour_field = {
        "name": "buying",
        "kind": "behavior",
        "bins": 6,
        "levels": ["product_category", "brand", "manufacturer_id"],
        "aggregates": [
            "count",
            "spend",
            "decayed_count",
            "days_since_last",
            "share_of_wallet",
            "member_spend",
            "member_baskets",
            "popularity_members",
        ],
    }
    scores = {}
    for name, fields in (("base", base_fields), ("behaviour", base_fields + [behaviour_field])):
        enc = perkrec.FeatureEncoder(fields).fit(train, behavior=behavior)
        model = perkrec.FM(factors=0, reg_linear=1e-4).fit(
            enc.transform(train, behavior=behavior), train["label"], encoder=enc
        )
        scores[name] = perkrec.auc(
            test["label"], model.predict(enc.transform(test, behavior=behavior))
        )
    elapsed = time.perf_counter() - started
    print(
        f"Complete Journey test AUC: {scores} ({len(train)} train / {len(test)} test samples, {elapsed:.1f} s)"
    )
    assert scores["behaviour"] > scores["base"] + 0.03
