"""IdMap, Catalog, UserTable, EventLog, parse_discounts and splits from Python."""

import pickle

import numpy as np
import pandas as pd
import pytest

import perkrec


# --- IdMap ------------------------------------------------------------------------------------
def test_id_map_integers_and_strings():
    m = perkrec.IdMap([30, 10, 20])
    assert m.key_type == "integer" and len(m) == 3
    np.testing.assert_array_equal(m.lookup([20, 30, 20]), [2, 0, 2])
    np.testing.assert_array_equal(m.lookup(np.array([10, 99]), missing="minus_one"), [1, -1])
    with pytest.raises(perkrec.InputError, match="unknown id 99 at row 1"):
        m.lookup([10, 99])
    np.testing.assert_array_equal(m.to_external([2, 0]), [20, 30])
    with pytest.raises(perkrec.InputError, match="out of range"):
        m.to_external([3])
    s = perkrec.IdMap()
    np.testing.assert_array_equal(s.lookup_or_add(pd.Series(["b", "a", "b"])), [0, 1, 0])
    assert list(s.ids) == ["b", "a"]
    with pytest.raises(perkrec.InputError, match="duplicate id"):
        perkrec.IdMap(["x", "x"])
    assert pickle.loads(pickle.dumps(s)) == s
    # Integer ids held as floats (a pandas column with missing values) are integers.
    assert perkrec.IdMap([1.0, 2.0]).key_type == "integer"
    np.testing.assert_array_equal(m.lookup(pd.Series([10.0, 30.0])), [1, 0])
    with pytest.raises(perkrec.InputError, match="expected an integer"):
        m.lookup([10.5])
    with pytest.raises(perkrec.ConfigError):
        m.lookup([10], missing="ignore")


# --- discounts and catalog --------------------------------------------------------------------
def test_parse_discounts_vectorized_with_row_errors():
    out = perkrec.parse_discounts(pd.Series(["150:20", "0.9", "fixed", "15%", "20"]))
    assert list(out["kind"].astype(str)) == [
        "threshold_discount",
        "percent_off",
        "discount",
        "percent_off",
        "discount",
    ]
    assert out["threshold"].tolist()[0] == 150 and out["face_value"].tolist()[0] == 20
    assert out["discount_rate"].round(6).tolist()[1] == 0.1 and out["fixed_price"].tolist()[2]
    with pytest.raises(perkrec.InputError, match="row 1.*'abc'"):
        perkrec.parse_discounts(["30:5", "abc"])
    coerced = perkrec.parse_discounts(["30:5", None, "abc"], errors="coerce")
    assert coerced["kind"].isna().tolist() == [False, True, True]


RECORDS = [
    {
        "id": "B1",
        "kind": "threshold_discount",
        "threshold": 150,
        "face_value": 20,
        "cost": 20,
        "scenarios": ["regular", "member_day"],
        "channel": "app",
    },
    {"id": "B2", "discount": "0.85", "cost": 9, "validity_days": 7},
    {
        "id": "B3",
        "kind": "points",
        "face_value": 5,
        "scope": "tier",
        "scope_value": "gold",
        "inventory": 100,
    },
]


def test_catalog_from_records_frame_and_json_round_trips():
    c = perkrec.Catalog.from_records(RECORDS)
    assert len(c) == 3 and c.find("B2") == 1
    frame = c.to_frame()
    assert frame["kind"].astype(str).tolist() == ["threshold_discount", "percent_off", "points"]
    assert frame.loc[1, "discount_rate"] == pytest.approx(0.15)
    assert frame.loc[0, "scenarios"] == ["regular", "member_day"]
    assert perkrec.Catalog.from_frame(frame) == c
    assert perkrec.Catalog.from_json(c.to_json()) == c
    assert pickle.loads(pickle.dumps(c)) == c
    names, dims = c.dimensions()
    assert dims.shape == (3, len(names)) and dims[0, names.index("kind:threshold_discount")] == 1


def test_catalog_from_frame_with_notation_and_errors():
    frame = pd.DataFrame(
        {
            "id": ["a", "b"],
            "discount": ["200:30", "0.8"],
            "cost": [30.0, 12.0],
            "scenarios": ["regular|holiday", ""],
        }
    )
    c = perkrec.Catalog.from_frame(frame)
    back = c.to_frame()
    assert back.loc[0, "threshold"] == 200 and back.loc[1, "discount_rate"] == pytest.approx(0.2)
    assert back.loc[0, "scenarios"] == ["regular", "holiday"]
    with pytest.raises(perkrec.InputError, match="row 1"):
        perkrec.Catalog.from_frame(pd.DataFrame({"id": ["a", "b"], "kind": ["gift", "voucher"]}))
    with pytest.raises(perkrec.InputError, match="duplicate benefit id 'a'"):
        perkrec.Catalog.from_frame(pd.DataFrame({"id": ["a", "a"], "kind": ["gift", "gift"]}))
    with pytest.raises(perkrec.InputError, match="/benefits/0/colour"):
        perkrec.Catalog.from_records([{"id": "x", "kind": "gift", "colour": "red"}])


def test_catalog_from_frame_keeps_free_attributes_and_defaults_kind():
    # A real program's coupon table: no kind, columns perkrec does not know.
    frame = pd.DataFrame(
        {
            "coupon_id": ["c1", "c2", "c3"],
            "brand": ["Acme", None, "Bolt"],
            "category": ["Grocery", "Meat", "Meat"],
            "campaign": [8, 13, np.nan],
            "validity_days": [30, 45, 60],
        }
    )
    c = perkrec.Catalog.from_frame(frame, id_column="coupon_id")
    back = c.to_frame()
    assert back["kind"].astype(str).tolist() == ["discount"] * 3  # documented default
    assert back["brand"].tolist() == ["Acme", None, "Bolt"]
    assert back["category"].tolist() == ["Grocery", "Meat", "Meat"]
    np.testing.assert_array_equal(back["campaign"].to_numpy(), [8.0, 13.0, np.nan])
    assert back["validity_days"].tolist() == [30, 45, 60]
    # Round trips: frame, JSON, records, model bytes.
    assert perkrec.Catalog.from_frame(back) == c
    assert perkrec.Catalog.from_json(c.to_json()) == c
    assert c.to_records()[0]["attributes"] == {
        "brand": "Acme",
        "campaign": 8.0,
        "category": "Grocery",
    }
    assert pickle.loads(pickle.dumps(c)) == c
    # Still validated, with the row or pointer named.
    with pytest.raises(perkrec.InputError, match="row 1.*unknown benefit kind 'voucher'"):
        perkrec.Catalog.from_frame(
            frame.assign(kind=["gift", "voucher", "gift"]), id_column="coupon_id"
        )
    with pytest.raises(perkrec.InputError, match="row 2: coupon_id is missing"):
        perkrec.Catalog.from_frame(frame.assign(coupon_id=["a", "b", None]), id_column="coupon_id")
    with pytest.raises(perkrec.InputError, match="attribute 'campaign' must be finite"):
        perkrec.Catalog.from_frame(frame.assign(campaign=[1.0, np.inf, 2.0]), id_column="coupon_id")
    with pytest.raises(
        perkrec.InputError, match="/benefits/0/attributes/size: expected a string or a number"
    ):
        perkrec.Catalog.from_records([{"id": "x", "kind": "gift", "attributes": {"size": [1]}}])


# --- member attributes ------------------------------------------------------------------------
def test_user_table_from_frame_types_alignment_and_round_trip():
    frame = pd.DataFrame(
        {
            "member": ["m2", "m1"],
            "tier": ["gold", None],
            "age": [31, 45],
            "signup": pd.to_datetime(["2024-01-01", "2025-06-01"]),
            "vip": [True, False],
        }
    )
    users = perkrec.IdMap(["m1", "m2", "m3"])
    t = perkrec.UserTable.from_frame(frame, id_column="member", user_ids=users)
    out = t.to_frame()
    assert list(out.index) == ["m1", "m2", "m3"]
    assert (
        out.loc["m2", "tier"] == "gold"
        and pd.isna(out.loc["m1", "tier"])
        and pd.isna(out.loc["m3", "age"])
    )
    assert out.loc["m2", "signup"] == pd.Timestamp("2024-01-01").timestamp()
    assert out.loc["m1", "vip"] == 0.0
    assert perkrec.UserTable.from_bytes(t.to_bytes()) == t
    with pytest.raises(perkrec.InputError, match="duplicate member id 'm1'"):
        perkrec.UserTable.from_frame(pd.DataFrame({"x": [1, 2]}, index=["m1", "m1"]))
    with pytest.raises(perkrec.InputError, match="unknown id 'zz'"):
        perkrec.UserTable.from_frame(
            pd.DataFrame({"x": [1]}, index=["zz"]), user_ids=users, unknown="raise"
        )


def test_user_table_accepts_members_without_events():
    # The event log knows m1..m3; the member table also lists m9 and m7, who never had an event.
    users = perkrec.IdMap(["m1", "m2", "m3"])
    frame = pd.DataFrame({"age": [30, 40, 50, 60]}, index=["m2", "m9", "m1", "m7"])
    grown = perkrec.UserTable.from_frame(frame, user_ids=users)  # default: add
    assert grown.unknown_users == 2 and len(grown) == 5
    assert list(grown.user_ids.ids) == ["m1", "m2", "m3", "m9", "m7"]  # event indices unchanged
    assert len(users) == 3  # the caller's map is untouched
    out = grown.to_frame()
    assert (
        out.loc["m9", "age"] == 40 and out.loc["m7", "age"] == 60 and pd.isna(out.loc["m3", "age"])
    )
    dropped = perkrec.UserTable.from_frame(frame, user_ids=users, unknown="drop")
    assert dropped.unknown_users == 2 and list(dropped.user_ids.ids) == ["m1", "m2", "m3"]
    assert dropped.to_frame().loc["m1", "age"] == 50
    with pytest.raises(perkrec.ConfigError, match="unknown must be"):
        perkrec.UserTable.from_frame(frame, user_ids=users, unknown="ignore")
    # Samples see the added members' attributes; their history is empty.
    catalog = perkrec.Catalog.from_frame(pd.DataFrame({"id": ["B1"], "validity_days": [10]}))
    offers = pd.DataFrame(
        {
            "user": ["m9", "m1"],
            "benefit": ["B1", "B1"],
            "timestamp": [1.7e9, 1.7e9 + 60],
            "label": [1, 0],
        }
    )
    samples = perkrec.redemption_samples(None, catalog, grown, offers=offers)
    assert samples["user"].tolist() == [3, 0] and samples["age"].tolist() == [40, 50]


# --- event log --------------------------------------------------------------------------------
def events_frame():
    return pd.DataFrame(
        {
            "user": ["ann", "bob", "ann", "ann", "bob"],
            "benefit": ["B1", "B2", "B1", None, "B1"],
            "event_type": ["issued", "claimed", "claimed", "ordered", "viewed"],
            "timestamp": pd.to_datetime(
                ["2026-01-03", "2026-01-02", "2026-01-04", "2026-01-05", "2026-01-01"], utc=True
            ),
            "channel": ["app", "sms", "app", "store", None],
            "order_amount": [0, 0, 0, 42.5, 0],
        }
    )


def test_event_log_from_frame_sorts_and_round_trips():
    catalog = perkrec.Catalog.from_records(RECORDS)
    log = perkrec.EventLog.from_frame(events_frame(), benefits=catalog)
    assert len(log) == 5 and log.n_users == 2 and log.n_benefits == 3
    np.testing.assert_array_equal(log.user_offsets, [0, 3, 5])
    out = log.to_frame()
    assert out["user"].tolist() == ["ann", "ann", "ann", "bob", "bob"]
    assert out["event_type"].astype(str).tolist() == [
        "issued",
        "claimed",
        "ordered",
        "viewed",
        "claimed",
    ]
    assert pd.isna(out["benefit"].tolist()[2]) and out["order_amount"].tolist()[2] == 42.5
    channels = out["channel"].astype(object).tolist()
    assert channels[:3] == ["app", "app", "store"] and pd.isna(channels[3]) and channels[4] == "sms"
    again = perkrec.EventLog.from_frame(out, user_ids=log.user_ids, benefits=catalog)
    np.testing.assert_array_equal(again.timestamps, log.timestamps)
    np.testing.assert_array_equal(again.benefits, log.benefits)
    assert log.counts_by_type()["claimed"] == 2
    with pytest.raises(ValueError):
        log.timestamps[0] = 0  # views are read-only
    bare = perkrec.EventLog.from_arrays(log.users, log.benefits, log.event_types, log.timestamps)
    assert bare.user_ids is None and bare.benefit_ids is None
    assert bare.to_frame()["user"].tolist() == [0, 0, 0, 1, 1]
    with pytest.raises(perkrec.InputError, match="holds 3 ids"):
        bare.set_ids(perkrec.IdMap(["a", "b", "c"]), None)
    back = pickle.loads(pickle.dumps(log))
    np.testing.assert_array_equal(back.users, log.users)
    assert back.benefit_ids == log.benefit_ids


def test_event_log_bad_rows_are_named():
    frame = events_frame()
    bad = frame.copy()
    bad.loc[2, "event_type"] = "bought"
    with pytest.raises(perkrec.InputError, match="event_type: row 2: unknown value 'bought'"):
        perkrec.EventLog.from_frame(bad)
    bad = frame.copy()
    bad.loc[1, "benefit"] = None  # a claim without a benefit
    with pytest.raises(perkrec.InputError, match="row 1.*only 'ordered'"):
        perkrec.EventLog.from_frame(bad)
    bad = frame.copy()
    bad["order_amount"] = [0, 0, np.inf, 1, 0]
    with pytest.raises(perkrec.InputError, match="row 2.*order_amount"):
        perkrec.EventLog.from_frame(bad)
    numeric = pd.DataFrame(
        {
            "user": [1, 1],
            "benefit": [7, None],
            "event_type": ["claimed", "ordered"],
            "timestamp": [1, 2],
        }
    )
    np.testing.assert_array_equal(
        perkrec.EventLog.from_frame(numeric, benefits=perkrec.IdMap([7])).benefits, [0, -1]
    )
    bad = frame.copy()
    bad["order_amount"] = [np.nan, 0, 0, np.nan, 0]  # missing is fine on an issue, not on an order
    with pytest.raises(
        perkrec.InputError, match="row 3: order_amount is missing on a 'ordered' event"
    ):
        perkrec.EventLog.from_frame(bad)
    bad.loc[3, "order_amount"] = 12.0
    assert perkrec.EventLog.from_frame(bad).order_amounts.tolist().count(0.0) == 4
    with pytest.raises(perkrec.InputError, match="unknown id 'B9'"):
        perkrec.EventLog.from_frame(
            frame.replace({"benefit": {"B2": "B9"}}), benefits=perkrec.Catalog.from_records(RECORDS)
        )
    with pytest.raises(perkrec.InputError, match="negative timestamp"):
        perkrec.EventLog.from_arrays([0], [0], ["issued"], np.array([-5], dtype=np.int64))
    with pytest.raises(perkrec.InputError, match="user out of range"):
        perkrec.EventLog.from_arrays([0, 3], [0, 0], [0, 0], [1, 2], n_users=2)
    with pytest.raises(perkrec.InputError, match="'benefit' has 1 rows"):
        perkrec.EventLog.from_arrays([0, 1], [0], [0, 0], [1, 2])
    with pytest.raises(perkrec.InputError, match="missing timestamp"):
        perkrec.EventLog.from_arrays([0], [0], [0], pd.to_datetime([None]))


def test_splits_never_leak_the_future(small_program):
    log = small_program.events
    start, end = log.time_range
    cut = end - pd.Timedelta(days=20)
    train, test = perkrec.split_by_time(log, cut)
    assert len(train) + len(test) == len(log)
    assert train.time_range[1] < cut <= test.time_range[0]
    train, test = perkrec.split_leave_last_k(log, 1)
    tr = train.to_frame(external_ids=False).groupby("user")["timestamp"].max()
    te = test.to_frame(external_ids=False).groupby("user")["timestamp"].min()
    both = tr.index.intersection(te.index)
    assert len(both) > 100 and (tr[both] < te[both]).all()
    train, test = perkrec.split_random_users(log, 0.25, seed=3)
    train_users = set(np.unique(train.users))
    test_users = set(np.unique(test.users))
    assert not train_users & test_users and 0.15 < len(test_users) / log.n_users < 0.35
    with pytest.raises(perkrec.InputError):
        perkrec.split_leave_last_k(log, 1, target_types=("bought",))


def test_load_dispatches_on_kind_and_rejects_damage(tmp_path, small_program):
    path = tmp_path / "log.perk"
    small_program.events.save(path)
    loaded = perkrec.load(path)
    assert isinstance(loaded, perkrec.EventLog) and len(loaded) == len(small_program.events)
    assert perkrec.info(path)["kind"] == "EventLog"
    for obj in (small_program.catalog, small_program.users, small_program.events.user_ids):
        assert type(perkrec.loads(obj.to_bytes())) is type(obj)
    data = bytearray(small_program.catalog.to_bytes())
    for cut in (0, 7, 40, len(data) // 2, len(data) - 1):
        with pytest.raises(perkrec.ModelFormatError) as info:
            perkrec.loads(bytes(data[:cut]))
        assert info.value.code in ("truncated", "bad_magic")
    rng = np.random.default_rng(0)
    for _ in range(300):
        damaged = bytearray(data)
        bit = int(rng.integers(len(damaged) * 8))
        damaged[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(perkrec.ModelFormatError):
            perkrec.loads(bytes(damaged))
    with pytest.raises(perkrec.ModelFormatError) as info:
        perkrec.load(tmp_path / "missing.perk")
    assert info.value.code == "io_error"
    with pytest.raises(perkrec.ModelFormatError) as info:
        perkrec.Catalog.from_bytes(small_program.events.to_bytes())
    assert info.value.code == "wrong_kind"
