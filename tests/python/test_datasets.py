"""Tests of perkrec.datasets against the public datasets in ../shared/data.

The numbers asserted here are the facts stated in each folder's SOURCE.md (row counts, label
counts, published per-arm statistics). Tests skip when a folder is absent, and fail instead
under PERKREC_REQUIRE_DATA=1 (see conftest.dataset_path).
"""

from __future__ import annotations

import gzip
import os

import numpy as np
import pandas as pd
import pytest

import perkrec
from perkrec import datasets
from conftest import dataset_path


def _seconds(times: pd.Series) -> np.ndarray:
    return (
        times.dt.tz_convert("UTC")
        .dt.tz_localize(None)
        .to_numpy()
        .astype("datetime64[s]")
        .astype(np.int64)
    )


def _counts(log: perkrec.EventLog) -> dict:
    return log.counts_by_type().to_dict()


# ---------------------------------------------------------------------------------------------
# Loading once per module keeps the whole file to a few seconds.


@pytest.fixture(scope="module")
def in_vehicle():
    return datasets.load_in_vehicle_coupon(dataset_path("uci-in-vehicle-coupon"))


@pytest.fixture(scope="module")
def starbucks():
    return datasets.load_starbucks(dataset_path("starbucks-rewards-offers"))


@pytest.fixture(scope="module")
def dunnhumby():
    return datasets.load_dunnhumby(dataset_path("dunnhumby-complete-journey-coupons"))


@pytest.fixture(scope="module")
def hillstrom():
    return datasets.load_hillstrom(dataset_path("hillstrom-email-uplift"))


@pytest.fixture(scope="module")
def ml100k():
    return datasets.load_movielens_100k(dataset_path("movielens-100k"))


@pytest.fixture(scope="module")
def ml_small():
    return datasets.load_movielens_latest_small(dataset_path("movielens-latest-small"))


@pytest.fixture(scope="module")
def tianchi():
    return datasets.load_tianchi_o2o(dataset_path("tianchi-o2o-coupon"))


@pytest.fixture(scope="module")
def bank():
    return datasets.load_bank_marketing(dataset_path("uci-bank-marketing"))


# ---------------------------------------------------------------------------------------------
def test_module_exports():
    for name in datasets.__all__:
        assert hasattr(datasets, name)
    assert set(datasets.LOADERS.values()) <= {
        getattr(datasets, n) for n in datasets.__all__ if n.startswith("load_")
    }
    assert len(datasets.LOADERS) == 8
    ds = datasets.Dataset(name="x", frame=None, events=None, catalog=None, users=None)
    assert ds.extra == {} and "Dataset('x'" in repr(ds)


# ---------------------------------------------------------------------------------------------
# 1. UCI in-vehicle coupon.


def test_in_vehicle_frame(in_vehicle):
    frame = in_vehicle.frame
    assert in_vehicle.name == "uci-in-vehicle-coupon"
    assert frame.shape == (12684, 27)
    assert frame["Y"].dtype == np.int8 and int(frame["Y"].sum()) == 7210
    assert frame["car"].isna().sum() == 12576
    assert frame["temperature"].dtype.kind == "i"
    assert set(frame["temperature"].unique()) == {30, 55, 80}
    for column in (
        "has_children",
        "toCoupon_GEQ5min",
        "toCoupon_GEQ15min",
        "toCoupon_GEQ25min",
        "direction_same",
        "direction_opp",
    ):
        assert frame[column].dtype == np.int8
        assert set(frame[column].unique()) <= {0, 1}
    for column in (
        "destination",
        "passanger",
        "weather",
        "time",
        "coupon",
        "expiration",
        "gender",
        "age",
        "maritalStatus",
        "education",
        "occupation",
        "income",
        "car",
        "Bar",
        "CoffeeHouse",
    ):
        assert isinstance(frame[column].dtype, pd.CategoricalDtype), column
    assert frame["CoffeeHouse"].cat.ordered and frame["CoffeeHouse"].cat.categories[0] == "never"
    assert frame["coupon"].value_counts()["Coffee House"] == 3996
    assert frame["expiration"].value_counts().to_dict() == {"2h": 5593, "1d": 7091}
    assert in_vehicle.events is None and in_vehicle.users is None


def test_in_vehicle_catalog(in_vehicle):
    catalog, frame = in_vehicle.catalog, in_vehicle.frame
    assert len(catalog) == 10
    assert list(catalog.ids.ids) == list(frame["benefit"].cat.categories)
    assert frame["benefit"].notna().all()
    expected = frame["coupon"].astype(str) + "|" + frame["expiration"].astype(str)
    assert (frame["benefit"].astype(str) == expected).all()
    assert frame["benefit"].value_counts()["Coffee House|2h"] == 2227
    cat = catalog.to_frame().set_index("id")
    assert (cat["kind"] == "discount").all() and (cat["validity_days"] == 1).all()
    assert cat.loc["Coffee House|2h", "tags"] == ["venue:Coffee House", "expiration:2h"]
    assert "expiration:1d" in cat.loc["Bar|1d", "tags"]


# ---------------------------------------------------------------------------------------------
# 2. Starbucks.


def test_starbucks_catalog(starbucks):
    cat = starbucks.catalog.to_frame().set_index("id")
    assert len(cat) == 10
    assert cat["kind"].value_counts()[["threshold_discount", "service"]].tolist() == [8, 2]
    bogo = cat.loc["ae264e3637204a6fb9bb56bc8210ddfd"]  # bogo 10/10, 7 days, email/mobile/social
    assert (
        bogo["kind"],
        bogo["threshold"],
        bogo["face_value"],
        bogo["cost"],
        bogo["validity_days"],
    ) == ("threshold_discount", 10.0, 10.0, 10.0, 7)
    assert bogo["channel"] == ""
    assert set(bogo["tags"]) == {
        "channel:email",
        "channel:mobile",
        "channel:social",
        "offer_type:bogo",
    }
    discount = cat.loc["0b1e1539f2cc45b7b9fa7c272da2e1d7"]  # discount: spend 20 get 5, 10 days
    assert (discount["threshold"], discount["face_value"], discount["validity_days"]) == (
        20.0,
        5.0,
        10,
    )
    info = cat.loc["3f207df678b143eea3cee63160fa8bed"]
    assert (
        info["kind"] == "service"
        and info["face_value"] == 0
        and "offer_type:informational" in info["tags"]
    )


def test_starbucks_users(starbucks):
    users = starbucks.users.to_frame()
    assert len(users) == 17000
    assert users["age"].isna().sum() == 2175 and users["age"].max() < 118
    assert users["income"].isna().sum() == 2175
    assert users["gender"].isna().sum() == 2175
    assert users["gender"].value_counts().to_dict() == {"M": 8484, "F": 6129, "O": 212}
    profile = starbucks.extra["profile"]
    assert pd.api.types.is_datetime64_any_dtype(profile["became_member_on"])
    assert profile.loc["0610b486422d4921ae7d2bf64640c50b", "became_member_on"] == pd.Timestamp(
        "2017-07-15"
    )


def test_starbucks_frame_and_labels(starbucks):
    frame = starbucks.frame
    assert len(frame) == 76358
    split = frame["split"].value_counts()
    assert (split["train"], split["test"]) == (51116, 25242)
    positives = frame.groupby("split", observed=True)["offer_completed"].sum()
    assert (positives["train"], positives["test"]) == (22308, 10874)
    customers = frame.groupby("split", observed=True)["customer_id"].nunique()
    assert (customers["train"], customers["test"]) == (11387, 5607)
    assert frame["customer_id"].nunique() == 16994
    train_customers = set(frame.loc[frame["split"] == "train", "customer_id"])
    assert not train_customers & set(frame.loc[frame["split"] == "test", "customer_id"])
    assert frame["offer_completed"].dtype == np.int8
    done = frame["offer_completed"] == 1
    assert frame.loc[done, "offer_completed_time"].notna().all()
    assert frame.loc[~done, "offer_completed_time"].isna().all()
    assert (frame.loc[frame["offer_type"] == "informational", "offer_completed"] == 0).all()
    # Offer attributes agree with the portfolio (duration in hours in the derived tables).
    cat = starbucks.catalog.to_frame().set_index("id")
    assert (
        frame["duration"].to_numpy() == cat.loc[frame["offer_id"], "validity_days"].to_numpy() * 24
    ).all()
    assert starbucks.extra["duplicate_rows"] == 76358 - 76277


def test_starbucks_leaky_columns_excluded(starbucks):
    frame, leaky = starbucks.frame, starbucks.extra["leaky_columns"]
    for column in (
        "num_offer_completed",
        "offer_completion_rate",
        "transaction_amount",
        "transaction_cnt",
        "total_reward_amount",
        "avg_offer_completion_time",
        "num_offer_viewed",
    ):
        assert column in leaky
    assert not set(leaky) & set(frame.columns)
    assert not set(starbucks.extra["redundant_columns"]) & set(frame.columns)
    assert len(leaky) >= 35
    assert set(frame.columns) == {
        "customer_id",
        "offer_received_time",
        "offer_id",
        "reward",
        "difficulty",
        "duration",
        "offer_type",
        "num_channels",
        "ch_web",
        "ch_email",
        "ch_mobile",
        "ch_social",
        "age",
        "days_registered",
        "income",
        "gender",
        "offer_completed",
        "offer_completed_time",
        "split",
    }
    # Demographics come from the profile: missing there means NaN here, not the derived imputation.
    assert frame.loc[frame["gender"].isna(), "age"].isna().all()
    assert starbucks.extra["imputed_rows"] == int(frame["age"].isna().sum()) > 0


def test_starbucks_events(starbucks):
    log, frame = starbucks.events, starbucks.frame
    counts = _counts(log)
    assert counts["issued"] == len(frame) == 76358
    assert counts["redeemed"] == 22308 + 10874
    assert log.n_users == 17000 and log.n_benefits == 10
    assert log.user_ids == starbucks.users.user_ids
    assert list(log.benefit_ids.ids) == list(starbucks.catalog.ids.ids)
    events = log.to_frame()
    issued = events[events["event_type"] == "issued"]
    assert set(issued["user"]) == set(frame["customer_id"])
    assert _seconds(issued["timestamp"]).max() == frame["offer_received_time"].max() * 3600
    redeemed = events[events["event_type"] == "redeemed"]
    assert _seconds(redeemed["timestamp"]).max() == 714 * 3600
    assert sorted(_seconds(redeemed["timestamp"])) == sorted(
        (frame.loc[frame["offer_completed"] == 1, "offer_completed_time"] * 3600).astype(np.int64)
    )


# ---------------------------------------------------------------------------------------------
# 3. dunnhumby.


def test_dunnhumby_frame(dunnhumby):
    frame = dunnhumby.frame
    assert len(frame) == 7208
    assert list(frame.columns) == [
        "household_key",
        "campaign",
        "campaign_type",
        "start_day",
        "end_day",
        "redeemed",
        "n_redemptions",
        "first_redemption_day",
    ]
    assert frame["household_key"].nunique() == 1584
    assert frame["campaign_type"].value_counts().to_dict() == {
        "TypeA": 3979,
        "TypeB": 2655,
        "TypeC": 574,
    }
    assert int(frame["n_redemptions"].sum()) == 2318
    assert ((frame["redeemed"] == 1) == (frame["n_redemptions"] > 0)).all()
    assert frame["first_redemption_day"].isna().sum() == (frame["redeemed"] == 0).sum()
    hit = frame[frame["redeemed"] == 1]
    assert (
        (hit["first_redemption_day"] >= hit["start_day"])
        & (hit["first_redemption_day"] <= hit["end_day"])
    ).all()
    assert hit["household_key"].nunique() == 434
    assert dunnhumby.extra["untargeted_redemptions"] == 0
    assert dunnhumby.extra["redemptions_outside_window"] == 0
    assert dunnhumby.extra["coupons"].shape == (124548, 3)
    assert dunnhumby.extra["coupons"]["coupon_upc"].nunique() == 1135


def test_dunnhumby_catalog_users_events(dunnhumby):
    cat = dunnhumby.catalog.to_frame().set_index("id")
    assert len(cat) == 30 and list(cat.index[:3]) == ["C1", "C2", "C3"]
    assert (cat["kind"] == "discount").all()
    assert cat.loc["C24", "validity_days"] == 719 - 659 + 1
    assert cat.loc["C15", "tags"] == ["campaign_type:TypeC"]
    users = dunnhumby.users.to_frame()
    log = dunnhumby.events
    assert dunnhumby.users.user_ids == log.user_ids  # rows line up with the event log's members
    assert len(users) == log.n_users == 1584 + 41
    assert users["AGE_DESC"].notna().sum() == 801 == len(dunnhumby.extra["households"])
    assert users.loc[1, "AGE_DESC"] == "65+" and users.loc[7, "INCOME_DESC"] == "50-74K"
    counts = _counts(log)
    assert counts["issued"] == len(dunnhumby.frame) == 7208
    assert counts["redeemed"] == 2318
    assert log.n_benefits == 30
    events = log.to_frame()
    assert events.loc[events["event_type"] == "issued", "user"].nunique() == 1584
    issued = events[events["event_type"] == "issued"]
    first = issued[
        (issued["user"] == 17) & (issued["benefit"] == "C26")
    ]  # first campaign_table row
    assert len(first) == 1 and _seconds(first["timestamp"])[0] == 224 * 86400
    redeemed = events[events["event_type"] == "redeemed"]
    assert redeemed["user"].nunique() == 434 and redeemed["benefit"].nunique() == 30


# ---------------------------------------------------------------------------------------------
# 4. Hillstrom.


def test_hillstrom(hillstrom):
    frame = hillstrom.frame
    assert len(frame) == 64000
    for column in ("history_segment", "zip_code", "channel", "segment", "treatment"):
        assert isinstance(frame[column].dtype, pd.CategoricalDtype), column
    for column in ("mens", "womens", "newbie", "visit", "conversion"):
        assert frame[column].dtype == np.int8, column
    assert frame["spend"].dtype == np.float64 and frame["control"].dtype == bool
    assert list(frame["treatment"].cat.categories) == ["mens_email", "womens_email", "control"]
    stats = frame.groupby("treatment", observed=True).agg(
        n=("visit", "size"),
        visit=("visit", "mean"),
        conversion=("conversion", "mean"),
        spend=("spend", "mean"),
    )
    published = {
        "mens_email": (21307, 0.1828, 0.0125, 1.42),
        "womens_email": (21387, 0.1514, 0.0088, 1.08),
        "control": (21306, 0.1062, 0.0057, 0.65),
    }
    for arm, (n, visit, conversion, spend) in published.items():
        assert stats.loc[arm, "n"] == n
        assert stats.loc[arm, "visit"] == pytest.approx(visit, abs=5e-5)
        assert stats.loc[arm, "conversion"] == pytest.approx(conversion, abs=5e-5)
        assert stats.loc[arm, "spend"] == pytest.approx(spend, abs=5e-3)
    assert frame["control"].sum() == 21306
    assert (frame["control"] == (frame["segment"] == "No E-Mail")).all()
    assert hillstrom.events is None and hillstrom.catalog is None


# ---------------------------------------------------------------------------------------------
# 5./6. MovieLens.


def test_movielens_100k(ml100k):
    frame = ml100k.frame
    assert len(frame) == 100000
    assert frame["user"].nunique() == 943 and frame["item"].nunique() == 1682
    assert sorted(frame["rating"].unique()) == [1, 2, 3, 4, 5]
    assert str(frame["timestamp"].dt.tz) == "UTC"
    assert frame["timestamp"].min() >= pd.Timestamp("1997-09-01", tz="UTC")
    assert frame["timestamp"].max() < pd.Timestamp("1998-05-01", tz="UTC")
    assert frame.iloc[0][["user", "item", "rating"]].tolist() == [196, 242, 3]
    log = ml100k.events
    assert _counts(log)["claimed"] == len(log) == 100000
    assert (log.n_users, log.n_benefits) == (943, 1682)
    assert log.user_ids == ml100k.users.user_ids
    assert sorted(_seconds(frame["timestamp"])) == sorted(log.timestamps.tolist())
    users = ml100k.users.to_frame()
    assert (
        len(users) == 943
        and users.loc[1, "age"] == 24
        and users.loc[1, "occupation"] == "technician"
    )
    assert users.loc[943, "gender"] == "M"
    assert users.loc[74, "zip"] == "T8H1N"
    items = ml100k.extra["items"]
    assert len(items) == 1682
    toy_story = items.set_index("item").loc[1]
    assert toy_story["title"] == "Toy Story (1995)"
    assert toy_story["genres"] == ["Animation", "Children's", "Comedy"]
    assert toy_story["release_date"] == pd.Timestamp("1995-01-01")
    genre_flags = items.columns[
        items.columns.get_loc("unknown") : items.columns.get_loc("Western") + 1
    ]
    assert len(genre_flags) == 19
    assert (items[genre_flags].sum(axis=1).to_numpy() == items["genres"].str.len().to_numpy()).all()
    assert ml100k.catalog is None


def test_movielens_100k_min_rating():
    ds = datasets.load_movielens_100k(dataset_path("movielens-100k"), min_rating=4)
    assert len(ds.frame) == 100000  # the frame keeps every rating
    assert len(ds.events) == int((ds.frame["rating"] >= 4).sum()) == 55375
    assert ds.events.n_benefits == 1682


def test_movielens_latest_small(ml_small):
    frame = ml_small.frame
    assert len(frame) == 100836
    assert frame["user"].nunique() == 610 and frame["item"].nunique() == 9724
    assert (
        ((frame["rating"] * 2) % 1 == 0).all()
        and frame["rating"].min() == 0.5
        and frame["rating"].max() == 5
    )
    assert frame["timestamp"].min().year == 1996 and frame["timestamp"].max().year == 2018
    assert ml_small.users is None
    log = ml_small.events
    assert len(log) == 100836 and (log.n_users, log.n_benefits) == (610, 9742)
    items = ml_small.extra["items"]
    assert len(items) == 9742
    first = items.iloc[0]
    assert first["item"] == 1 and first["genres"] == [
        "Adventure",
        "Animation",
        "Children",
        "Comedy",
        "Fantasy",
    ]
    assert (items["genres"].str.len() == 0).sum() == 34  # "(no genres listed)"
    high = datasets.load_movielens_latest_small(
        dataset_path("movielens-latest-small"), min_rating=4.0
    )
    assert len(high.events) == int((frame["rating"] >= 4.0).sum())


# ---------------------------------------------------------------------------------------------
# 7. Tianchi O2O.


def test_tianchi_frame(tianchi):
    frame = tianchi.frame
    assert len(frame) == 113640
    assert frame["user_id"].nunique() == 76309 and frame["coupon_id"].nunique() == 2050
    assert (frame["kind"] == "threshold_discount").sum() == 111074
    assert (frame["kind"] == "percent_off").sum() == 113640 - 111074
    first = frame.iloc[0]
    assert (first["discount_rate"], first["threshold"], first["face_value"]) == ("30:5", 30.0, 5.0)
    assert first["distance"] == 1.0
    assert first["distance_m_max"] == 1000.0
    rate = frame[frame["discount_rate"] == "0.95"].iloc[0]
    assert rate["kind"] == "percent_off" and rate["fraction_off"] == pytest.approx(0.05)
    assert frame["distance"].isna().sum() == frame["distance_m_max"].isna().sum() == 12064
    assert np.isinf(frame.loc[frame["distance"] == 10, "distance_m_max"]).all()
    assert frame.loc[frame["distance"] == 0, "distance_m_max"].eq(500).all()
    assert frame["date_received"].min() == pd.Timestamp("2016-07-01", tz="UTC")
    assert frame["date_received"].max() == pd.Timestamp("2016-07-31", tz="UTC")


def test_tianchi_catalog_and_events(tianchi):
    cat = tianchi.catalog.to_frame().set_index("id")
    assert len(cat) == 2050
    assert (cat["kind"] == "threshold_discount").sum() + (
        cat["kind"] == "percent_off"
    ).sum() == 2050
    coupon = cat.loc["9983"]  # first row: merchant 450, "30:5"
    assert (coupon["kind"], coupon["threshold"], coupon["face_value"]) == (
        "threshold_discount",
        30.0,
        5.0,
    )
    assert coupon["tags"] == ["merchant:450"] and coupon["validity_days"] == 15
    log = tianchi.events
    assert _counts(log)["issued"] == len(log) == 113640
    assert (log.n_users, log.n_benefits) == (76309, 2050)
    assert log.time_range == (
        pd.Timestamp("2016-07-01", tz="UTC"),
        pd.Timestamp("2016-07-31", tz="UTC"),
    )


# ---------------------------------------------------------------------------------------------
# 8. Bank marketing.


def test_bank_marketing(bank):
    frame = bank.frame
    assert frame.shape == (41188, 21)
    assert frame["y"].dtype == np.int8 and int(frame["y"].sum()) == 4640
    assert frame.iloc[0][["age", "job", "month", "day_of_week", "duration", "pdays"]].tolist() == [
        56,
        "housemaid",
        "may",
        "mon",
        261,
        999,
    ]
    assert frame["euribor3m"].dtype == np.float64 and frame["age"].dtype.kind == "i"
    assert isinstance(frame["job"].dtype, pd.CategoricalDtype) and frame["month"].cat.ordered
    assert not frame.select_dtypes(include=["category"]).apply(lambda c: c.isna().any()).any()
    assert bank.extra["leaky_columns"] == ["duration"]


# ---------------------------------------------------------------------------------------------
# Errors: missing folders, files and columns, malformed values.

ALL_LOADERS = sorted(datasets.LOADERS.items())


@pytest.mark.parametrize("name,loader", ALL_LOADERS, ids=[n for n, _ in ALL_LOADERS])
def test_missing_folder_raises(tmp_path, name, loader):
    missing = tmp_path / name
    with pytest.raises(perkrec.InputError, match="does not exist"):
        loader(missing)


@pytest.mark.parametrize("name,loader", ALL_LOADERS, ids=[n for n, _ in ALL_LOADERS])
def test_missing_file_raises(tmp_path, name, loader):
    with pytest.raises(perkrec.InputError, match="file not found") as info:
        loader(tmp_path)
    assert str(tmp_path) in str(info.value)
    assert isinstance(info.value, ValueError)


def _link_all(source, target, skip=()):
    for entry in os.listdir(source):
        if entry not in skip:
            os.symlink(source / entry, target / entry)


def test_missing_file_in_real_folder_names_it(tmp_path):
    source = dataset_path("dunnhumby-complete-journey-coupons")
    _link_all(source, tmp_path, skip=("coupon_redempt.csv",))
    with pytest.raises(perkrec.InputError, match="coupon_redempt.csv: file not found"):
        datasets.load_dunnhumby(tmp_path)


def test_optional_file_may_be_absent(tmp_path):
    source = dataset_path("dunnhumby-complete-journey-coupons")
    _link_all(source, tmp_path, skip=("coupon.csv.gz",))
    ds = datasets.load_dunnhumby(tmp_path)
    assert "coupons" not in ds.extra and len(ds.frame) == 7208


def test_missing_starbucks_derived_table(tmp_path):
    source = dataset_path("starbucks-rewards-offers")
    (tmp_path / "derived_do-y-lee").mkdir()
    _link_all(source, tmp_path, skip=("derived_do-y-lee",))
    with pytest.raises(perkrec.InputError, match="train_v3_starbucks.csv"):
        datasets.load_starbucks(tmp_path)


HILLSTROM_HEADER = "recency,history_segment,history,mens,womens,zip_code,newbie,channel,segment,visit,conversion,spend"
HILLSTROM_ROW = "10,2) $100 - $200,142.44,1,0,Surburban,0,Phone,Womens E-Mail,0,0,0"


def test_small_plain_file_loads(tmp_path):
    (tmp_path / "hillstrom.csv").write_text(
        f"{HILLSTROM_HEADER}\r\n{HILLSTROM_ROW}\r\n{HILLSTROM_ROW}"
    )
    frame = datasets.load_hillstrom(tmp_path).frame
    assert len(frame) == 2 and frame["treatment"].tolist() == ["womens_email"] * 2


def test_missing_column_raises(tmp_path):
    header = HILLSTROM_HEADER.replace(",spend", "")
    row = HILLSTROM_ROW.rsplit(",", 1)[0]
    (tmp_path / "hillstrom.csv").write_text(f"{header}\n{row}\n")
    with pytest.raises(perkrec.InputError, match=r"hillstrom.csv: missing column\(s\) 'spend'"):
        datasets.load_hillstrom(tmp_path)


@pytest.mark.parametrize(
    "column,value,message",
    [
        ("recency", "soon", "expected a number"),
        ("visit", "2", "expected a number <= 1"),
        ("segment", "SMS", "expected one of"),
        ("history", "", "it is missing"),
    ],
)
def test_malformed_value_raises(tmp_path, column, value, message):
    names = HILLSTROM_HEADER.split(",")
    bad = HILLSTROM_ROW.split(",")
    bad[names.index(column)] = value
    (tmp_path / "hillstrom.csv").write_text(
        f"{HILLSTROM_HEADER}\n{HILLSTROM_ROW}\n{','.join(bad)}\n"
    )
    with pytest.raises(perkrec.InputError, match=message) as info:
        datasets.load_hillstrom(tmp_path)
    text = str(info.value)
    assert "hillstrom.csv" in text and repr(column) in text and "data row 2" in text


def test_corrupt_gzip_raises(tmp_path):
    (tmp_path / "hillstrom.csv.gz").write_bytes(b"this is not gzip data")
    with pytest.raises(perkrec.InputError, match="hillstrom.csv.gz: cannot read"):
        datasets.load_hillstrom(tmp_path)


def _write_o2o(folder, rows):
    header = "User_id,Merchant_id,Coupon_id,Discount_rate,Distance,Date_received\n"
    with gzip.open(folder / "ccf_offline_stage1_test_revised.csv.gz", "wt") as f:
        f.write(header + "\n".join(rows) + "\n")


def test_tianchi_small_file(tmp_path):
    _write_o2o(
        tmp_path,
        ["1,10,100,30:5,0,20160701", "2,10,100,30:5,null,20160702", "1,11,101,0.9,10,20160703"],
    )
    ds = datasets.load_tianchi_o2o(tmp_path)
    upper = ds.frame["distance_m_max"].to_numpy()
    assert upper[0] == 500.0 and np.isnan(upper[1]) and np.isinf(upper[2])
    assert list(ds.catalog.ids.ids) == ["100", "101"]
    assert ds.catalog.to_frame()["discount_rate"].tolist() == [0.0, pytest.approx(0.1)]
    assert (ds.events.n_users, len(ds.events)) == (2, 3)


def test_tianchi_conflicting_coupon_raises(tmp_path):
    _write_o2o(tmp_path, ["1,10,100,30:5,0,20160701", "2,10,100,50:10,1,20160702"])
    with pytest.raises(perkrec.InputError, match="coupon id 100 appears with 2 discount strings"):
        datasets.load_tianchi_o2o(tmp_path)


def test_tianchi_bad_discount_raises(tmp_path):
    _write_o2o(tmp_path, ["1,10,100,30:5,0,20160701", "2,10,101,lots off,1,20160702"])
    with pytest.raises(perkrec.InputError, match="'Discount_rate', data row 2.*'lots off'"):
        datasets.load_tianchi_o2o(tmp_path)
