"""Complete Journey 2017: which targeted coupons will a household redeem? perkrec's models
against XGBoost, LightGBM and LogisticRegression on pandas purchase aggregates written here.

    python bench/complete_journey.py [--seeds 3] [--cut 2017-08-01] [--quick] [--threads 2]
        [--only NAME,NAME]   (run only the rows whose name contains one of these)

Data: ../shared/data/dunnhumby-complete-journey-2017 (see its SOURCE.md; never copied into the
repo). Reading needs pyarrow.

Candidates: every (household, coupon) pair a campaign targeted: each household the campaign
targeted (campaigns.parquet) x each coupon of that campaign (coupons.parquet): 800,199 rows.
Label: the household redeemed that coupon in that campaign between the campaign's start and
end dates (inclusive; 2,075 distinct redeemed triples). A candidate's time is its campaign's
start (midnight): every feature uses only transactions and redemptions strictly before it
(asserted, and spot-checked against a brute-force pandas filter on random pairs).

Split by campaign start: campaigns starting before ``--cut`` (default 2017-08-01) train, the
others test. With the default the test side holds the Type A campaigns 13 and 18 (459,736
candidates) and 9 small Type B / C campaigns; the training side holds Type A 27 and 8 and 14
small ones. The validation split (early stopping, C, grids) is a fixed random 20% of the
training side's households: never a test campaign, and no household on both sides of it (so
validation rewards what transfers to other households, not a memorized id).

Metrics on the test campaigns: AUC over every test candidate (and over the Type A test
candidates alone), and the top-10 hit rate in the large (Type A) test campaigns: for each
(campaign, household) with at least one redeemed coupon, rank that household's coupons in the
campaign by score (ties broken at random, fixed seed) and count its redeemed coupons among the
10 highest; the hit rate is the total of those counts over the total of redeemed (household,
coupon) pairs, pooled over households and campaigns (a household that redeemed more than 10
coupons cannot reach 1).

Models (rows of the table):
  * XGBoost / LightGBM / LogisticRegression on the purchase aggregates (``purchase_features``:
    the peers' feature set, written the way a data scientist would) + demographics, campaign
    type and number of coupons, coupon department (``PEER_STATIC``).
  * XGBoost without behaviour: exactly the fields perkrec's encoder gets below (household and
    coupon ids, demographics, campaign type, coupon department and category) as native
    categoricals: the reference for what ids buy.
  * perkrec FM, FFM and FM(factors=0) without behaviour: ``perkrec.FeatureEncoder`` over those
    fields (what perkrec can represent today).
  * perkrec FMCV with behaviour features: the same behaviour field (8 bins) and static fields,
    the model chosen by ``perkrec.FMCV`` (cross-validation on the training side alone: the
    logistic regression's penalty on its path, then an FM warm-started from it, kept only when
    it lowers the CV log-loss).
  * perkrec with behaviour features (``perkrec_with_behavior``): perkrec's own data model
    (ItemCatalog, BehaviorLog, BenefitItems, the benefit EventLog) through one ``behavior`` and
    one ``history`` FeatureEncoder field (quantile buckets, optionally ``continuous`` values) and
    the static fields, then FM(factors=0) or an FM with factors; ``continuous``, the model and
    the penalty chosen on validation log-loss (``BEHAVIOR_GRID``).
Every model is tuned on validation log-loss over a small grid (``*_GRID``) on the first seed;
later seeds refit the chosen configuration with their own seed. Stochastic models (subsampling,
SGD order, initialization) run once per seed (``--seeds``): mean +- sd. LogisticRegression and
FM(factors=0) are deterministic: one run. "fit s" is the training time of the selected
configuration (mean over seeds); "total s" is the model's whole time, grid and seeds included.
XGBoost and LightGBM use ``--threads`` threads, perkrec's FM one (its reproducible mode).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

DATA = Path(
    os.environ.get("PERKREC_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)
DATA_DIR = DATA / "dunnhumby-complete-journey-2017"
DEFAULT_CUT = "2017-08-01"
DECAY_DAYS = 30.0  # half-life-free exponential time constant of the recency-decayed counts
NEVER_DAYS = 400.0  # recency of "never bought before t" (longer than the year of data)
DAY_NS = 86_400 * 10**9
DEMOGRAPHICS = [
    "age",
    "income",
    "home_ownership",
    "marital_status",
    "household_size",
    "household_comp",
    "kids_count",
]
LEVELS = ["manufacturer_id", "product_category", "product_type", "department"]


# ---- data and candidates -----------------------------------------------------------------------


def load(data_dir=DATA_DIR, households=None) -> dict:
    """The Complete Journey tables as DataFrames, keyed by file stem. ``households``: keep only
    these households' rows (the --quick subsample)."""
    data_dir = Path(data_dir)
    names = [
        "transactions",
        "products",
        "campaign_descriptions",
        "campaigns",
        "coupons",
        "coupon_redemptions",
        "demographics",
    ]
    tables = {n: pd.read_parquet(data_dir / f"{n}.parquet") for n in names}
    if households is not None:
        for n in ("transactions", "campaigns", "coupon_redemptions", "demographics"):
            t = tables[n]
            tables[n] = t[t["household_id"].isin(households)].reset_index(drop=True)
    tables["transactions"] = (
        tables["transactions"]
        .sort_values("transaction_timestamp", kind="stable")
        .reset_index(drop=True)
    )
    return tables


def candidates(tables: dict) -> pd.DataFrame:
    """Every targeted (household, coupon) pair of every campaign, labelled 1 when the household
    redeemed that coupon in that campaign between start_date and end_date (inclusive).
    Columns: household_id, coupon_upc, campaign_id, campaign_type, start_date, end_date, label."""
    desc = tables["campaign_descriptions"]
    offers = tables["coupons"][["campaign_id", "coupon_upc"]].drop_duplicates()
    cands = (
        tables["campaigns"][["campaign_id", "household_id"]]
        .drop_duplicates()
        .merge(offers, on="campaign_id")
        .merge(desc[["campaign_id", "campaign_type", "start_date", "end_date"]], on="campaign_id")
    )
    red = tables["coupon_redemptions"].merge(
        desc[["campaign_id", "start_date", "end_date"]], on="campaign_id"
    )
    in_window = (red["redemption_date"] >= red["start_date"]) & (
        red["redemption_date"] <= red["end_date"]
    )
    redeemed = red.loc[in_window, ["household_id", "coupon_upc", "campaign_id"]].drop_duplicates()
    redeemed["label"] = np.int8(1)
    cands = cands.merge(redeemed, on=["household_id", "coupon_upc", "campaign_id"], how="left")
    unmatched = len(redeemed) - int(cands["label"].notna().sum())
    if unmatched:
        print(
            f"  note: {unmatched} redeemed (household, coupon, campaign) triples are not targeted pairs"
        )
    cands["label"] = cands["label"].fillna(0).astype(np.int8)
    cols = [
        "household_id",
        "coupon_upc",
        "campaign_id",
        "campaign_type",
        "start_date",
        "end_date",
        "label",
    ]
    return (
        cands[cols]
        .sort_values(["campaign_id", "household_id", "coupon_upc"])
        .reset_index(drop=True)
    )


def split(cands: pd.DataFrame, cut=DEFAULT_CUT) -> np.ndarray:
    """True for test candidates: campaigns starting on or after ``cut``."""
    return (cands["start_date"] >= pd.Timestamp(cut)).to_numpy()


def validation_split(cands: pd.DataFrame, test: np.ndarray) -> np.ndarray:
    """True for validation candidates: every training-side pair of a fixed random 20% of the
    training side's households (the same for every model and seed)."""
    train_hh = cands.loc[~test, "household_id"].unique()  # in candidate order: deterministic
    val_hh = np.random.default_rng(12345).choice(train_hh, len(train_hh) // 5, replace=False)
    return ~test & cands["household_id"].isin(val_hh).to_numpy()


def print_split(tables, cands, test, cut):
    desc = tables["campaign_descriptions"].sort_values("start_date")
    g = cands.groupby("campaign_id").agg(
        households=("household_id", "nunique"),
        coupons=("coupon_upc", "nunique"),
        pairs=("label", "size"),
        redeemed=("label", "sum"),
    )
    side = pd.Series(test, index=cands.index).groupby(cands["campaign_id"]).first()
    print(
        f"\nSplit by campaign start: train = campaigns starting before {cut}, test = on or after.\n"
    )
    print("| side | campaign | type | start | end | households | coupons | pairs | redeemed |")
    print("|---|---|---|---|---|---|---|---|---|")
    for _, d in desc.iterrows():
        c = d["campaign_id"]
        if c not in g.index:
            continue
        r = g.loc[c]
        print(
            f"| {'test' if side[c] else 'train'} | {c} | {d['campaign_type'].replace('Type ', '')} | "
            f"{d['start_date'].date()} | {d['end_date'].date()} | {r['households']:,} | {r['coupons']:,} | "
            f"{r['pairs']:,} | {r['redeemed']:,} |"
        )
    for name, mask in (("train", ~test), ("test", test)):
        sub = cands[mask]
        print(
            f"  {name}: {len(sub):,} pairs, {int(sub['label'].sum()):,} redeemed "
            f"({sub['label'].mean():.4%}), campaigns {sorted(sub['campaign_id'].unique().tolist())}"
        )


# ---- purchase aggregates (the peers' feature set) ----------------------------------------------


class _Coder:
    """Dense integer codes for products and their attributes, shared by every campaign."""

    def __init__(self, tables):
        tx, products, coupons = tables["transactions"], tables["products"], tables["coupons"]
        ids = pd.Index(
            pd.unique(
                np.concatenate(
                    [
                        products["product_id"].to_numpy(),
                        tx["product_id"].to_numpy(),
                        coupons["product_id"].to_numpy(),
                    ]
                )
            )
        )
        self.products = ids
        attrs = products.set_index("product_id").reindex(ids)
        self.level_codes = {}
        for level in LEVELS:
            codes, uniques = pd.factorize(attrs[level], use_na_sentinel=True)
            codes = np.where(codes < 0, len(uniques), codes)  # unknown attribute: its own code
            self.level_codes[level] = (codes.astype(np.int64), len(uniques) + 1)
        self.households = pd.Index(
            np.sort(
                pd.unique(
                    np.concatenate(
                        [
                            tx["household_id"].to_numpy(),
                            tables["campaigns"]["household_id"].to_numpy(),
                        ]
                    )
                )
            )
        )
        self.n_products, self.n_households = len(ids), len(self.households)
        # Transactions as arrays, in time order.
        self.h = self.households.get_indexer(tx["household_id"].to_numpy())
        self.p = ids.get_indexer(tx["product_id"].to_numpy())
        self.ts = tx["transaction_timestamp"].to_numpy().astype("datetime64[ns]").astype(np.int64)
        self.day0 = self.ts[0]
        self.day = (self.ts - self.day0) / DAY_NS
        self.spend = tx["sales_value"].to_numpy(np.float64)
        self.qty = tx["quantity"].to_numpy(np.float64)
        self.coupon_used = (tx["coupon_disc"].to_numpy() < 0).astype(np.float64)
        self.coupon_disc = -tx["coupon_disc"].to_numpy(np.float64)
        self.basket_first = ~tx["basket_id"].duplicated().to_numpy()


def _csr(rows, cols, values, shape):
    m = sp.csr_matrix((values, (rows, cols)), shape=shape)
    m.sum_duplicates()
    return m


def _last_day(rows, cols, day, shape):
    """Sparse matrix of 1 + the day of the last (row, col) event (0 = never), events in time order."""
    key = rows.astype(np.int64) * shape[1] + cols
    uniq, first_rev = np.unique(key[::-1], return_index=True)
    last = len(key) - 1 - first_rev
    return sp.csr_matrix((day[last] + 1.0, (uniq // shape[1], uniq % shape[1])), shape=shape)


def _max_per_coupon(last_csc, coupon_cols):
    """For each coupon (a list of column indices), each row's max over those columns (dense)."""
    out = np.zeros((last_csc.shape[0], len(coupon_cols)))
    for j, cols in enumerate(coupon_cols):
        if len(cols):
            out[:, j] = last_csc[:, cols].max(axis=1).toarray().ravel()
    return out


class _History:
    """Every aggregate of the transactions strictly before time ``t`` that a campaign needs."""

    def __init__(self, cd: _Coder, t_ns: int):
        k = int(np.searchsorted(cd.ts, t_ns, side="left"))
        # Leak safety: the prefix [0, k) holds every transaction before t and nothing at or after t.
        assert (
            k == 0 or cd.ts[k - 1] < t_ns
        ), "history includes a transaction at or after the sample time"
        assert k == len(cd.ts) or cd.ts[k] >= t_ns
        self.k, self.t_day = k, (t_ns - cd.day0) / DAY_NS
        h, p, day = cd.h[:k], cd.p[:k], cd.day[:k]
        shape = (cd.n_households, cd.n_products)
        decay = np.exp((day - self.t_day) / DECAY_DAYS)
        ones = np.ones(k)
        self.hp = {
            "lines": _csr(h, p, ones, shape),
            "spend": _csr(h, p, cd.spend[:k], shape),
            "qty": _csr(h, p, cd.qty[:k], shape),
            "decay": _csr(h, p, decay, shape),
            "coupon_lines": _csr(h, p, cd.coupon_used[:k], shape),
        }
        self.hp_last = _last_day(h, p, day, shape).tocsr()
        self.bought = (self.hp["lines"] > 0).astype(np.float64)
        self.level = {}
        self.level_last = {}
        for level, (codes, n) in cd.level_codes.items():
            onehot = sp.csr_matrix(
                (np.ones(cd.n_products), (np.arange(cd.n_products), codes)),
                shape=(cd.n_products, n),
            )
            self.level[level] = (
                onehot,
                {s: self.hp[s] @ onehot for s in ("lines", "spend", "decay")},
            )
            if level == "product_category":
                self.level_last[level] = _last_day(h, codes[p], day, (cd.n_households, n)).tocsc()
        # Household totals.
        nh = cd.n_households
        first = cd.basket_first[:k]
        self.hh = pd.DataFrame(
            {
                "hh_lines": np.bincount(h, minlength=nh).astype(np.float64),
                "hh_spend": np.bincount(h, cd.spend[:k], minlength=nh),
                "hh_baskets": np.bincount(h[first], minlength=nh).astype(np.float64),
                "hh_baskets_decay": np.bincount(h[first], decay[first], minlength=nh),
                "hh_products": np.diff(self.hp["lines"].indptr).astype(np.float64),
                "hh_coupon_lines": np.bincount(h, cd.coupon_used[:k], minlength=nh),
                "hh_coupon_disc": np.bincount(h, cd.coupon_disc[:k], minlength=nh),
            }
        )
        last = np.full(nh, -np.inf)
        np.maximum.at(last, h, day)
        firstday = np.full(nh, np.inf)
        np.minimum.at(firstday, h, day)
        self.hh["hh_days_since_visit"] = np.where(np.isfinite(last), self.t_day - last, NEVER_DAYS)
        self.hh["hh_tenure_days"] = np.where(np.isfinite(firstday), self.t_day - firstday, 0.0)
        # Households buying each product before t (coupon popularity), and line totals per product.
        self.product_households = np.asarray(self.bought.sum(axis=0)).ravel()
        self.product_lines = np.asarray(self.hp["lines"].sum(axis=0)).ravel()
        self.product_coupon_lines = np.asarray(self.hp["coupon_lines"].sum(axis=0)).ravel()


def _campaign_features(
    cd: _Coder, hist: _History, pairs: pd.DataFrame, coupon_products: pd.DataFrame, past: dict
) -> pd.DataFrame:
    """Features of one campaign's candidate pairs (household_id, coupon_upc), from ``hist``."""
    hh_ids = np.sort(pairs["household_id"].unique())
    coupons = np.sort(pairs["coupon_upc"].unique())
    hi = cd.households.get_indexer(hh_ids)
    cp = coupon_products[coupon_products["coupon_upc"].isin(coupons)]
    ci = np.searchsorted(coupons, cp["coupon_upc"].to_numpy())
    pi = cd.products.get_indexer(cp["product_id"].to_numpy())
    C = sp.csr_matrix((np.ones(len(ci)), (ci, pi)), shape=(len(coupons), cd.n_products))
    C.data[:] = 1.0  # a product listed twice under one coupon counts once
    Ct = C.T.tocsc()
    out = {}
    # Coupon's own products.
    for s, m in hist.hp.items():
        out[f"prod_{s}"] = (m[hi] @ Ct).toarray()
    out["prod_distinct"] = (hist.bought[hi] @ Ct).toarray()
    coupon_cols = np.split(C.indices, C.indptr[1:-1])
    last_p = _max_per_coupon(hist.hp_last[hi].tocsc(), coupon_cols)
    out["prod_days_since"] = np.where(last_p > 0, hist.t_day - (last_p - 1.0), NEVER_DAYS)
    # Coupon's categories, types, manufacturers, departments.
    for level, (onehot, mats) in hist.level.items():
        Cl = C @ onehot
        Cl.data[:] = 1.0
        Clt = Cl.T.tocsc()
        for s, m in mats.items():
            out[f"{level}_{s}"] = (m[hi] @ Clt).toarray()
        if level in hist.level_last:
            cols = np.split(Cl.indices, Cl.indptr[1:-1])
            last_c = _max_per_coupon(hist.level_last[level][hi], cols)
            out[f"{level}_days_since"] = np.where(
                last_c > 0, hist.t_day - (last_c - 1.0), NEVER_DAYS
            )
    # Back to pairs.
    r = np.searchsorted(hh_ids, pairs["household_id"].to_numpy())
    c = np.searchsorted(coupons, pairs["coupon_upc"].to_numpy())
    f = pd.DataFrame({name: m[r, c] for name, m in out.items()}, index=pairs.index)
    hh = hist.hh.iloc[hi[r]].reset_index(drop=True)
    hh.index = pairs.index
    f = pd.concat([f, hh], axis=1)
    spend = np.maximum(f["hh_spend"].to_numpy(), 1e-9)
    f["prod_share_of_wallet"] = f["prod_spend"] / spend
    for level in LEVELS:
        f[f"{level}_share_of_wallet"] = f[f"{level}_spend"] / spend
    f["hh_history_days"] = max(hist.t_day, 0.0)
    f["hh_spend_per_week"] = f["hh_spend"] / np.maximum(f["hh_tenure_days"], 7.0) * 7.0
    # Coupon level: size, popularity and past coupon use of its products, past redemptions.
    n_products = np.asarray(C.sum(axis=1)).ravel()
    coupon_hh = hist.bought @ Ct
    coupon_hh.data[:] = 1.0
    coupon_frame = pd.DataFrame(
        {
            "coupon_products": n_products,
            "coupon_households": np.asarray(coupon_hh.sum(axis=0)).ravel(),
            "coupon_lines_all": C @ hist.product_lines,
            "coupon_coupon_share": (C @ hist.product_coupon_lines)
            / np.maximum(C @ hist.product_lines, 1.0),
            "coupon_past_redemptions": pd.Series(past["coupon"])
            .reindex(coupons)
            .fillna(0)
            .to_numpy(),
        }
    )
    f = pd.concat([f, coupon_frame.iloc[c].set_index(pairs.index)], axis=1)

    # Household's past coupon redemptions (coupon_redemptions before t) and past targeting.
    def per_household(counts):
        return pd.Series(counts).reindex(pairs["household_id"]).fillna(0).to_numpy()

    f["hh_past_redemptions"] = per_household(past["household"])
    f["hh_past_offers"] = per_household(past["offers"])
    f["hh_past_campaigns"] = per_household(past["campaigns"])
    f["hh_past_redemption_rate"] = (f["hh_past_redemptions"] + 0.1) / (f["hh_past_offers"] + 10.0)
    key = pd.MultiIndex.from_arrays([pairs["household_id"], pairs["coupon_upc"]])
    f["pair_past_redemptions"] = (
        pd.Series(past["pair"]).reindex(key).fillna(0).to_numpy() if len(past["pair"]) else 0.0
    )
    return f


def purchase_features(
    tables: dict, cands: pd.DataFrame, coder: "_Coder | None" = None, verbose=True
) -> pd.DataFrame:
    """The peers' behaviour features of every candidate (aligned with ``cands``), each computed
    from transactions and redemptions strictly before the candidate's campaign start."""
    cd = coder or _Coder(tables)
    red = tables["coupon_redemptions"]
    coupon_products = tables["coupons"][
        ["campaign_id", "coupon_upc", "product_id"]
    ].drop_duplicates()
    desc = tables["campaign_descriptions"]
    offers = (
        cands.groupby(["campaign_id", "household_id"])
        .size()
        .rename("n")
        .reset_index()
        .merge(desc[["campaign_id", "start_date"]], on="campaign_id")
    )
    parts, histories = [], {}
    t0 = time.perf_counter()
    for (campaign, start), pairs in cands.groupby(["campaign_id", "start_date"], sort=False):
        t_ns = int(pd.Timestamp(start).value)
        if t_ns not in histories:
            histories = {t_ns: _History(cd, t_ns)}  # campaigns sharing a start share it
        before = red[red["redemption_date"] < start]
        assert (before["redemption_date"] < start).all()
        past_offers = offers[offers["start_date"] < start]
        past = {
            "coupon": before.groupby("coupon_upc").size(),
            "household": before.groupby("household_id").size(),
            "pair": before.groupby(["household_id", "coupon_upc"]).size(),
            "offers": past_offers.groupby("household_id")["n"].sum(),
            "campaigns": past_offers.groupby("household_id").size(),
        }
        parts.append(
            _campaign_features(
                cd,
                histories[t_ns],
                pairs,
                coupon_products[coupon_products["campaign_id"] == campaign],
                past,
            )
        )
    f = pd.concat(parts).loc[cands.index]
    if verbose:
        print(
            f"  purchase features: {f.shape[1]} columns for {len(f):,} pairs "
            f"in {time.perf_counter() - t0:.1f} s"
        )
    return f


def check_leak_safety(tables, cands, feats, n=25, seed=0):
    """Recomputes prod_lines / prod_spend / prod_days_since of random pairs with a plain pandas
    filter (transactions strictly before the campaign start) and compares."""
    rng = np.random.default_rng(seed)
    tx, cp = tables["transactions"], tables["coupons"]
    pos = np.flatnonzero(feats["prod_lines"].to_numpy() > 0)
    pick = np.r_[
        rng.choice(pos, min(n, len(pos)), replace=False), rng.choice(len(cands), n, replace=False)
    ]
    for i in pick:
        row = cands.iloc[i]
        prods = cp.loc[
            (cp["coupon_upc"] == row["coupon_upc"]) & (cp["campaign_id"] == row["campaign_id"]),
            "product_id",
        ]
        sel = tx[
            (tx["household_id"] == row["household_id"])
            & tx["product_id"].isin(prods)
            & (tx["transaction_timestamp"] < row["start_date"])
        ]
        assert np.isclose(feats["prod_lines"].iloc[i], len(sel)), (
            i,
            feats["prod_lines"].iloc[i],
            len(sel),
        )
        assert np.isclose(feats["prod_spend"].iloc[i], sel["sales_value"].sum())
        if len(sel):
            days = (row["start_date"] - sel["transaction_timestamp"].max()) / pd.Timedelta(days=1)
            # Days are counted from the first transaction's timestamp, so allow float rounding.
            got = feats["prod_days_since"].iloc[i]
            assert abs(got - days) < 1e-6, (i, got, days)
    print(
        f"  leak-safety spot check: {len(pick)} pairs match a brute-force filter on the transactions "
        f"before their campaign start"
    )


def static_features(tables: dict, cands: pd.DataFrame) -> pd.DataFrame:
    """No behaviour: demographics, campaign type / size / duration, coupon department and
    category (the most common among its products). Categorical columns as pandas category."""
    demo = tables["demographics"].set_index("household_id")
    f = pd.DataFrame(index=cands.index)
    for col in DEMOGRAPHICS:
        f[col] = demo[col].reindex(cands["household_id"]).fillna("unknown").astype(str).to_numpy()
    f["campaign_type"] = cands["campaign_type"].astype(str).to_numpy()
    by_campaign = cands.groupby("campaign_id")
    f["campaign_coupons"] = by_campaign["coupon_upc"].transform("nunique").to_numpy(np.float64)
    f["campaign_households"] = by_campaign["household_id"].transform("nunique").to_numpy(np.float64)
    f["campaign_days"] = (
        (cands["end_date"] - cands["start_date"]) / pd.Timedelta(days=1)
    ).to_numpy()
    cp = tables["coupons"].merge(
        tables["products"][["product_id", "department", "product_category"]],
        on="product_id",
        how="left",
    )
    for col in ("department", "product_category"):
        top = (
            cp.dropna(subset=[col])
            .groupby(["campaign_id", "coupon_upc"])[col]
            .agg(lambda s: s.value_counts().index[0])
        )
        key = pd.MultiIndex.from_arrays([cands["campaign_id"], cands["coupon_upc"]])
        f[f"coupon_{col}"] = top.reindex(key).fillna("unknown").astype(str).to_numpy()
    return f


CATEGORICAL = DEMOGRAPHICS + ["campaign_type", "coupon_department", "coupon_product_category"]
# The peers' static columns: campaign_households / campaign_days (constants with a dozen values on
# the training side) and the 300-level coupon category let trees memorize training campaigns.
PEER_STATIC = DEMOGRAPHICS + ["campaign_type", "campaign_coupons", "coupon_department"]


# ---- metrics -----------------------------------------------------------------------------------


def auc(y, s):
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s))


def top10_hit(cands: pd.DataFrame, scores: np.ndarray, mask: np.ndarray, k=10, seed=0) -> float:
    """Redeemed pairs among each household's k highest-scored coupons of a campaign, over all
    redeemed pairs, pooled over the (campaign, household) groups of ``mask`` (ties at random)."""
    sub = cands.loc[mask, ["campaign_id", "household_id", "label"]].copy()
    sub["score"] = np.asarray(scores)[mask]
    sub["tie"] = np.random.default_rng(seed).random(len(sub))
    sub = sub[sub.groupby(["campaign_id", "household_id"])["label"].transform("sum") > 0]
    sub = sub.sort_values(
        ["campaign_id", "household_id", "score", "tie"], ascending=[True, True, False, False]
    )
    rank = sub.groupby(["campaign_id", "household_id"]).cumcount()
    return float(sub["label"][rank < k].sum() / sub["label"].sum())


# ---- models ------------------------------------------------------------------------------------


def _log_loss(y, p):
    p = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _tree_frame(X: pd.DataFrame) -> pd.DataFrame:
    X = X.copy()
    for col in X.columns:
        if X[col].dtype == object or str(X[col].dtype) in ("str", "string"):
            X[col] = X[col].astype("category")
    return X


def _select(fit_one, grid, Xva, yva):
    """Fits every configuration of ``grid`` (``fit_one(config) -> model``) and keeps the one with
    the lowest validation log-loss: (model, fit seconds, config)."""
    best = None
    for config in grid:
        t = time.perf_counter()
        m = fit_one(config)
        dt = time.perf_counter() - t
        loss = _log_loss(
            yva, m.predict_proba(Xva)[:, 1] if hasattr(m, "predict_proba") else m.predict(Xva)
        )
        if best is None or loss < best[0]:
            best = (loss, m, dt, config)
    return best[1:]


# Strong leaf regularization matters here: 0.2% positives, and training campaigns have shorter
# histories than test ones, so small leaves learn the training period's count scales. The
# minimum hessian per leaf scales with the rows (50 on the 250,000 fit rows of the full run).
MIN_CHILD_WEIGHT_PER_ROW = 2e-4


def xgb_grid(n_rows):
    return [
        dict(max_depth=d, min_child_weight=round(MIN_CHILD_WEIGHT_PER_ROW * n_rows, 1))
        for d in (3, 4)
    ]


def xgb_ids_grid(n_rows):
    """Ids alone need finer leaves: a household's id splits off few rows."""
    return [
        dict(max_depth=4, min_child_weight=round(w * n_rows, 1))
        for w in (1e-5, MIN_CHILD_WEIGHT_PER_ROW)
    ]


def lgbm_grid(n_rows):
    return [
        dict(num_leaves=n, min_child_weight=round(MIN_CHILD_WEIGHT_PER_ROW * n_rows, 1))
        for n in (7, 15)
    ]


def run_xgb(Xtr, ytr, Xva, yva, Xte, seed, grid, threads, quick):
    import xgboost as xgb

    def fit_one(config):
        m = xgb.XGBClassifier(
            n_estimators=60 if quick else 2000,
            learning_rate=0.1,
            subsample=0.8,
            colsample_bytree=0.5,
            tree_method="hist",
            enable_categorical=True,
            max_cat_to_onehot=1,
            n_jobs=threads,
            random_state=seed,
            early_stopping_rounds=50,
            eval_metric="logloss",
            **config,
        )
        return m.fit(Xtr, ytr, eval_set=[(Xva, yva)], verbose=False)

    m, dt, config = _select(fit_one, grid, Xva, yva)
    return m.predict_proba(Xte)[:, 1], dt, config, f"{m.best_iteration + 1} trees"


def run_lgbm(Xtr, ytr, Xva, yva, Xte, seed, grid, threads, quick):
    import lightgbm as lgb

    def fit_one(config):
        m = lgb.LGBMClassifier(
            n_estimators=60 if quick else 2000,
            learning_rate=0.1,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.5,
            n_jobs=threads,
            random_state=seed,
            verbose=-1,
            **config,
        )
        return m.fit(
            Xtr,
            ytr,
            eval_X=(Xva,),
            eval_y=(yva,),
            eval_metric="binary_logloss",
            callbacks=[lgb.early_stopping(50, verbose=False)],
        )

    m, dt, config = _select(fit_one, grid, Xva, yva)
    return m.predict_proba(Xte)[:, 1], dt, config, f"{m.best_iteration_} trees"


def _linear_design(frames, numeric, categorical):
    """log1p of the non-negative numeric columns (signed log1p otherwise), standardized on the
    first frame, plus one-hot categoricals (categories of the first frame)."""
    fit = frames[0]
    num = [
        np.sign(f[numeric].to_numpy(np.float64)) * np.log1p(np.abs(f[numeric].to_numpy(np.float64)))
        for f in frames
    ]
    mu, sd = num[0].mean(axis=0), num[0].std(axis=0)
    sd[sd == 0] = 1.0
    cats = {c: pd.Index(sorted(fit[c].unique())) for c in categorical}
    out = []
    for f, x in zip(frames, num):
        blocks = [sp.csr_matrix((x - mu) / sd)]
        for c, levels in cats.items():
            idx = levels.get_indexer(f[c])
            ok = idx >= 0
            blocks.append(
                sp.csr_matrix(
                    (np.ones(ok.sum()), (np.flatnonzero(ok), idx[ok])), shape=(len(f), len(levels))
                )
            )
        out.append(sp.hstack(blocks).tocsr())
    return out


LR_GRID = [dict(C=c) for c in (0.01, 0.1, 1.0)]


def run_lr(Xtr, ytr, Xva, yva, Xte, seed, grid, threads, quick):
    from sklearn.linear_model import LogisticRegression

    def fit_one(config):
        return LogisticRegression(max_iter=2000, solver="lbfgs", **config).fit(Xtr, ytr)

    m, dt, config = _select(fit_one, grid, Xva, yva)
    return m.predict_proba(Xte)[:, 1], dt, config, ""


PERKREC_FIELDS = [
    {"name": "household_id", "kind": "id", "min_count": 2},
    {"name": "coupon_upc", "kind": "id"},
] + [{"name": c, "kind": "categorical"} for c in CATEGORICAL]


FM_GRID = [
    dict(factors=k, learning_rate=0.05, init_std=0.05, reg_linear=r, reg_factors=r)
    for k in (4, 8)
    for r in (1e-5, 1e-4)
]
LINEAR_GRID = [dict(factors=0, reg_linear=r) for r in (1e-6, 1e-5, 1e-4)]


def run_perkrec(kind, frames, ys, seed, grid, quick):
    """perkrec without behaviour: FeatureEncoder over ids, demographics, campaign type and coupon
    department / category; FM / FFM / FM(factors=0), tuned on validation log-loss."""
    import perkrec

    tr, va, te = frames
    ytr, yva = ys
    enc = perkrec.FeatureEncoder(PERKREC_FIELDS).fit(tr)
    Xtr, Xva, Xte = (enc.transform(f) for f in (tr, va, te))
    cls = perkrec.FFM if kind == "ffm" else perkrec.FM

    def fit_one(config):
        if config["factors"] == 0:
            return cls(**config, num_threads=1, seed=seed).fit(Xtr, ytr, encoder=enc)
        return cls(
            **config, epochs=5 if quick else 40, early_stopping_rounds=3, num_threads=1, seed=seed
        ).fit(Xtr, ytr, encoder=enc, validation=(Xva, yva))

    m, dt, config = _select(fit_one, grid, Xva, yva)
    epochs = "" if config["factors"] == 0 else f"{len(m.history['validation_loss'])} epochs"
    return m.predict(Xte), dt, config, epochs


BEHAVIOR_LEVELS = ["product_category", "product_type", "manufacturer_id", "department"]


def _perkrec_behavior_inputs(tables, cands):
    """perkrec's own data model of the program: an ItemCatalog of the products, a BehaviorLog of
    every basket line, the benefits ((campaign, coupon) pairs) with the products each applies
    to, and the samples (member and benefit indices, the campaign start as the time, the
    static fields)."""
    import perkrec

    products = tables["products"].copy()
    products["manufacturer_id"] = products["manufacturer_id"].astype(str)
    items = perkrec.ItemCatalog.from_frame(
        products[["product_id"] + BEHAVIOR_LEVELS],
        id="product_id",
        levels=BEHAVIOR_LEVELS,
        numeric=[],
    )
    # A basket line bought with a coupon discount is its own action ("coupon_purchase"): the
    # open action vocabulary carries what the program knows about each line.
    tx = tables["transactions"]
    tx = tx.assign(
        action=np.where(tx["coupon_disc"].to_numpy() != 0, "coupon_purchase", "purchase")
    )
    users = perkrec.IdMap(
        np.unique(np.concatenate([cands["household_id"].to_numpy(), tx["household_id"].to_numpy()]))
    )
    behavior = perkrec.BehaviorLog.from_frame(
        tx,
        user_ids=users,
        items=items,
        user="household_id",
        item="product_id",
        time="transaction_timestamp",
        quantity="quantity",
        amount="sales_value",
        basket="basket_id",
        action="action",
    )
    key = cands["campaign_id"].astype(str) + ":" + cands["coupon_upc"].astype(str)
    catalog = perkrec.Catalog.from_frame(pd.DataFrame({"id": pd.unique(key)}))
    coupons = tables["coupons"].assign(
        benefit=lambda f: f["campaign_id"].astype(str) + ":" + f["coupon_upc"].astype(str)
    )
    coupons = coupons[coupons["benefit"].isin(set(catalog.ids.ids))]
    applies = perkrec.BenefitItems.from_frame(
        coupons, catalog=catalog, items=items, benefit="benefit", item="product_id"
    )
    samples = static_features(tables, cands)[CATEGORICAL].copy()
    samples["user"] = users.lookup(cands["household_id"].to_numpy()).astype(np.int64)
    samples["benefit"] = catalog.ids.lookup(key.to_numpy()).astype(np.int64)
    samples["timestamp"] = cands["start_date"].to_numpy()
    return (
        samples,
        (behavior, items, applies),
        catalog,
        _benefit_events(tables, cands, users, catalog),
    )


def _benefit_events(tables, cands, users, catalog):
    """perkrec's benefit event log of the program: every targeted pair issued at its campaign
    start, every redemption at its date (what history fields read), and the benefits' kinds for
    them: the coupon (upc), so that a coupon offered again in a later campaign is the same kind
    (member x kind = the household's past redemptions of that coupon)."""
    import perkrec

    red = tables["coupon_redemptions"]
    red = red[red["campaign_id"].isin(cands["campaign_id"].unique())]

    def keys(f):
        return (f["campaign_id"].astype(str) + ":" + f["coupon_upc"].astype(str)).to_numpy()

    benefit = np.concatenate([catalog.ids.lookup(keys(cands)), catalog.ids.lookup(keys(red))])
    user = np.concatenate(
        [
            users.lookup(cands["household_id"].to_numpy()),
            users.lookup(red["household_id"].to_numpy()),
        ]
    )
    ok = (benefit >= 0) & (user >= 0)  # a redemption outside the targeted lists: not kept
    events = perkrec.EventLog.from_arrays(
        user[ok],
        benefit[ok],
        np.array(["issued"] * len(cands) + ["redeemed"] * len(red))[ok],
        np.concatenate([cands["start_date"].to_numpy(), red["redemption_date"].to_numpy()])[ok],
        n_users=len(users),
        n_benefits=len(catalog),
    )
    kinds = pd.DataFrame({"kind": [i.split(":")[1] for i in catalog.ids.ids], "face_value": 0.0})
    return events, kinds


BEHAVIOR_GRID = [
    dict(factors=0, reg_linear=r, bins=8, static=True, continuous=c, history=True)
    for c in (False, True)
    for r in (3e-4, 1e-3, 3e-3)
] + [
    # An FM on the same rows: pairwise interactions on top (AdaGrad, early stopping on the
    # validation households, then refit on the training side for the epochs that stopped).
    dict(
        factors=k,
        learning_rate=0.02,
        reg_linear=r,
        bins=8,
        static=True,
        continuous=True,
        history=True,
    )
    for k, r in ((4, 1e-4), (8, 1e-3))
]
# The household's past offers and redemptions (in all, and of the same coupon), from the
# benefit event log; the benefit scope is left out (a (campaign, coupon) benefit has no past).
HISTORY_AGGREGATES = [
    "member_issued",
    "member_redeemed",
    "member_redemption_rate",
    "member_kind_issued",
    "member_kind_redeemed",
    "member_kind_redemption_rate",
]


def _behavior_fields(config):
    """The FeatureEncoder fields of one configuration of BEHAVIOR_GRID."""
    cont = {"continuous": True} if config.get("continuous") else {}
    fields = [
        {
            "name": "behavior",
            "kind": "behavior",
            "levels": BEHAVIOR_LEVELS,
            "bins": config["bins"],
            "actions": ["purchase", "coupon_purchase"],
            "half_life_days": 28.0,
            **cont,
        }
    ]
    if config.get("history"):
        fields.append(
            {
                "name": "history",
                "kind": "history",
                "bins": config["bins"],
                "aggregates": HISTORY_AGGREGATES,
                **cont,
            }
        )
    if config.get("cf"):  # item-level collaborative signal (behavior_cf: ALS item factors)
        fields.append(
            {"name": "cf", "kind": "behavior_cf", "actions": ["purchase", "coupon_purchase"]}
        )
    if config["static"]:
        fields += [{"name": c, "kind": "categorical"} for c in CATEGORICAL]
    return fields


def perkrec_with_behavior(tables, cands, split, seed, grid=None):
    """perkrec's best model with its own behaviour features: a FeatureEncoder with a
    ``behavior`` field (what the household bought, with and without a coupon discount, of the
    coupon's products and of their categories, types, manufacturers and departments: counts,
    quantity, spend, recency-decayed counts, days since, share of wallet; its totals; the
    products' popularity — all strictly before the campaign start), optionally a ``history``
    field (the household's past offers and redemptions, in all and of the same coupon, from
    perkrec's benefit event log), each aggregate as quantile buckets and optionally also as a
    standardized log value (``continuous``), optionally the static fields, then
    ``FM(factors=0)`` (exact logistic regression) or an FM with factors (``BEHAVIOR_GRID``).
    The configuration is chosen by log-loss on the validation households (as the peers' grids
    are) and refit on the whole training side. Returns (scores of ``cands[split]``, the choice)."""
    import perkrec

    samples, behavior, _, (events, kinds) = _perkrec_behavior_inputs(tables, cands)
    val = validation_split(cands, split)
    # ``burn_in`` (a date): train only on campaigns starting from it, so that an encoder field
    # fitted on the behaviour before its earliest sample (behavior_cf) has some to learn from
    late = np.ones(len(cands), bool)
    if grid and grid[0].get("burn_in"):
        late = (cands["start_date"] >= pd.Timestamp(grid[0]["burn_in"])).to_numpy()
    fit = ~split & ~val & late
    y = cands["label"].to_numpy()

    def model_of(config, epochs=None):
        if config["factors"] == 0:
            return perkrec.FM(factors=0, reg_linear=config["reg_linear"], seed=seed)
        return perkrec.FM(
            factors=config["factors"],
            learning_rate=config["learning_rate"],
            reg_linear=config["reg_linear"],
            reg_factors=config["reg_linear"],
            epochs=epochs or 30,
            early_stopping_rounds=0 if epochs else 3,
            num_threads=1,
            seed=seed,
        )

    best, encoded = None, {}
    for config in grid if grid and grid[0] else BEHAVIOR_GRID:
        key = (
            config["bins"],
            config["static"],
            config["continuous"],
            config["history"],
            config.get("cf", False),
        )
        if key not in encoded:  # one encoding per field set, shared by the penalties and models
            enc = perkrec.FeatureEncoder(_behavior_fields(config)).fit(
                samples[fit], behavior=behavior, events=events, catalog=kinds
            )
            X = enc.transform(samples, behavior=behavior, events=events, catalog=kinds)
            encoded = {key: (enc, X)}
        enc, X = encoded[key]
        if config["factors"] == 0:
            model = model_of(config).fit(X[fit], y[fit], encoder=enc)
            epochs = None
        else:
            model = model_of(config).fit(X[fit], y[fit], encoder=enc, validation=(X[val], y[val]))
            epochs = int(np.argmin(model.history["validation_loss"])) + 1
        p = model.predict(X[val])
        loss = _log_loss(y[val], p)
        print(
            f"    behaviour {config}: validation log-loss {loss:.6f}, AUC {auc(y[val], p):.4f}"
            + (f", {epochs} epochs" if epochs else ""),
            flush=True,
        )
        if best is None or loss < best[0]:
            best = (loss, config, X, enc, epochs)
    _, config, X, enc, epochs = best
    chosen = dict(config, epochs=epochs) if epochs else dict(config)
    print(f"    chosen: {chosen}", flush=True)
    train = ~split & late  # refit the chosen configuration on the whole training side
    model = model_of(config, epochs).fit(X[train], y[train], encoder=enc)
    return model.predict(X[split]), chosen


FMCV_FIELDS = dict(bins=8, static=True, continuous=True, history=True)
# The item-level collaborative signal (behavior_cf) on top of one fixed configuration of the
# grid (the exact logistic regression at the penalty whose top-10 hit was best in the
# diagnostics), with and without it: rows "perkrec behaviour[ + item CF], FM(factors=0) 1e-3".
CF_BASE = dict(factors=0, reg_linear=1e-3, bins=8, static=True, continuous=True, history=True)
# The transactions start on 2017-01-01, after the first training campaigns (2016-11-14 ...), so
# behavior_cf's default as_of (the earliest fit sample) sees no behaviour; the "from March" rows
# train on the campaigns starting from CF_BURN_IN only (two months of behaviour before them).
CF_BURN_IN = "2017-03-01"


def perkrec_fmcv_with_behavior(tables, cands, split, seed):
    """The behaviour and history fields with continuous values (``FMCV_FIELDS``: the field set
    ``perkrec_with_behavior``'s grid chose) and the static fields, encoder fitted on the
    training side, then ``perkrec.FMCV`` on the whole training side with **household folds**
    (``groups``: each household's pairs in one of 5 folds, so the penalty and the FM are chosen
    on households the model has not seen, as the test campaigns' households partly are; no
    validation households are held out: CV replaces them; 3 FMs averaged when the FM wins).
    Returns (scores of ``cands[split]``, the selection)."""
    import perkrec

    samples, behavior, _, (events, kinds) = _perkrec_behavior_inputs(tables, cands)
    train = ~split
    y = cands["label"].to_numpy()
    enc = perkrec.FeatureEncoder(_behavior_fields(FMCV_FIELDS)).fit(
        samples[train], behavior=behavior, events=events, catalog=kinds
    )
    X = enc.transform(samples, behavior=behavior, events=events, catalog=kinds)
    model = perkrec.FMCV(factors=4, seeds=3, seed=42 + seed, num_threads=2).fit(
        X[train], y[train], groups=cands["household_id"].to_numpy()[train], encoder=enc
    )
    s = model.selection_
    chosen = {"fm": s["factorized"], "reg_linear": s["reg_linear"]}
    if s["factorized"]:
        chosen.update(reg_factors=s["reg_factors"], epochs=s["epochs"])
    chosen["cv_loss_lr"] = round(s["linear_loss"], 6)
    chosen["cv_loss_fm"] = [None if x is None else round(x, 6) for x in s["factors_loss"]]
    return model.predict(X[split]), chosen


def run_fmcv_hook(tables, cands, test, seed):
    t = time.perf_counter()
    scores, chosen = perkrec_fmcv_with_behavior(tables, cands, test, seed)
    return np.asarray(scores, np.float64), time.perf_counter() - t, chosen, "fit + score"


def run_hook(tables, cands, test, seed, grid=None):
    """perkrec_with_behavior, timed whole (its fit included) and checked for shape; ``grid``:
    the first seed's choice for later seeds (None or [{}]: the whole BEHAVIOR_GRID)."""
    t = time.perf_counter()
    scores, chosen = perkrec_with_behavior(tables, cands, test, seed, grid)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (int(test.sum()),):
        raise ValueError(
            f"perkrec_with_behavior: expected {int(test.sum())} test scores "
            f"(got shape {scores.shape})"
        )
    return scores, time.perf_counter() - t, chosen, "fit + score"


def run_models(models, seeds, test_cands):
    """Runs each model (``(name, stochastic, run(seed, grid), grid)``) over the seeds: the first
    seed searches the grid, later seeds refit its choice. Rows: (name, mean, sd, runs, total s)."""
    y = test_cands["label"].to_numpy()
    a_mask = (test_cands["campaign_type"] == "Type A").to_numpy()
    rows = []
    for name, stochastic, run, grid in models:
        results = []
        t_model = time.perf_counter()
        for seed in range(seeds) if stochastic else range(1):
            try:
                p, fit_s, chosen, note = run(seed, grid)
            except NotImplementedError as exc:
                print(f"  {name}: skipped ({exc})")
                break
            grid = [chosen]
            results.append(
                (auc(y, p), auc(y[a_mask], p[a_mask]), top10_hit(test_cands, p, a_mask), fit_s)
            )
            print(
                f"  {name} seed {seed}: auc {results[-1][0]:.4f}  auc A {results[-1][1]:.4f}  "
                f"top-10 hit A {results[-1][2]:.3f}  fit {fit_s:.1f} s  ({chosen} {note})",
                flush=True,
            )
        r = np.array(results) if results else None
        rows.append(
            (
                name,
                None if r is None else r.mean(axis=0),
                r.std(axis=0, ddof=1) if r is not None and len(r) > 1 else None,
                len(results),
                time.perf_counter() - t_model,
            )
        )
    return rows


def print_results(rows, test_cands, cut):
    a_mask = (test_cands["campaign_type"] == "Type A").to_numpy()
    print(
        f"\nTest campaigns: starts on or after {cut}; {len(test_cands):,} candidates, "
        f"{int(test_cands['label'].sum())} redeemed; top-10 hit over "
        f"{int(test_cands.loc[a_mask, 'label'].sum())} redeemed pairs in the Type A test campaigns. "
        f"mean ± sd over seeds.\n"
    )
    print(
        "| model | test AUC | test AUC, Type A | top-10 hit, Type A | fit s (selected) "
        "| total s (grid x seeds) | seeds |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, mean, sd, n, total in rows:
        if mean is None:
            print(f"| {name} | not run (hook raises NotImplementedError) | | | | | |")
            continue

        def pm(i, digits):
            text = f"{mean[i]:.{digits}f}"
            return text if sd is None else f"{text} ± {sd[i]:.{digits}f}"

        print(
            f"| {name} | {pm(0, 4)} | {pm(1, 4)} | {pm(2, 3)} | {mean[3]:.1f} | {total:.0f} | {n} |"
        )


# ---- bench -------------------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", default=str(DATA_DIR))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--cut", default=DEFAULT_CUT, help="first test campaign start date")
    ap.add_argument(
        "--threads", type=int, default=2, help="threads of XGBoost / LightGBM (perkrec FM: 1)"
    )
    ap.add_argument(
        "--quick", action="store_true", help="smoke run: 15%% of households, small grids, 1 seed"
    )
    ap.add_argument("--only", default="", help="run only rows whose name contains one of these")
    args = ap.parse_args(argv)
    import perkrec

    seeds = 1 if args.quick else args.seeds
    print(f"$ {' '.join([Path(sys.executable).name] + sys.argv) if argv is None else argv}")
    print(
        f"perkrec {perkrec.__version__}, python {sys.version.split()[0]}, {platform.machine()}, "
        f"{os.cpu_count()} cpus, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    t_all = time.perf_counter()
    t0 = time.perf_counter()
    households = None
    if args.quick:
        hh = pd.read_parquet(Path(args.data) / "campaigns.parquet")["household_id"].unique()
        households = np.random.default_rng(0).choice(
            np.sort(hh), len(hh) * 15 // 100, replace=False
        )
    tables = load(args.data, households)
    cands = candidates(tables)
    test = split(cands, args.cut)
    print(
        f"  loaded {len(tables['transactions']):,} transactions, {len(cands):,} candidates "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    print_split(tables, cands, test, args.cut)

    t0 = time.perf_counter()
    print()
    behaviour = purchase_features(tables, cands)
    check_leak_safety(tables, cands, behaviour, n=10 if args.quick else 25)
    static = static_features(tables, cands)
    feature_s = time.perf_counter() - t0
    print(
        f"  features in {feature_s:.1f} s: {behaviour.shape[1]} purchase aggregates "
        f"({', '.join(behaviour.columns)}); static: {', '.join(static.columns)}"
    )

    val = validation_split(cands, test)
    fit = ~test & ~val
    y = cands["label"].to_numpy()
    ytr, yva, yte = y[fit], y[val], y[test]
    type_a = (cands["campaign_type"] == "Type A").to_numpy()
    print(
        f"  fit {fit.sum():,} / validation {val.sum():,} ({val.sum() and yva.sum()} redeemed) / "
        f"test {test.sum():,} ({yte.sum()} redeemed; Type A {int((test & type_a).sum()):,})"
    )

    # Peers: purchase aggregates + demographics + campaign type and size + coupon department.
    agg = pd.concat([behaviour, static[PEER_STATIC]], axis=1)
    agg_tree = _tree_frame(agg)
    numeric = [c for c in agg.columns if c not in CATEGORICAL]
    lin = _linear_design(
        [agg[fit], agg[val], agg[test]], numeric, [c for c in CATEGORICAL if c in agg]
    )
    # No behaviour: the fields perkrec's encoder gets, for XGBoost and perkrec alike.
    ids = pd.concat([cands[["household_id", "coupon_upc"]], static[CATEGORICAL]], axis=1)
    ids_tree = _tree_frame(ids.astype({"household_id": str, "coupon_upc": str}))
    pk = [ids[m] for m in (fit, val, test)]

    def grid(full):
        return full[:1] if args.quick else full

    def on(X):
        return X[fit], ytr, X[val], yva, X[test]

    models = [
        (
            "XGBoost, purchase aggregates",
            True,
            lambda s, g: run_xgb(*on(agg_tree), s, g, args.threads, args.quick),
            grid(xgb_grid(len(ytr))),
        ),
        (
            "LightGBM, purchase aggregates",
            True,
            lambda s, g: run_lgbm(*on(agg_tree), s, g, args.threads, args.quick),
            grid(lgbm_grid(len(ytr))),
        ),
        (
            "LogisticRegression, purchase aggregates",
            False,
            lambda s, g: run_lr(lin[0], ytr, lin[1], yva, lin[2], s, g, args.threads, args.quick),
            grid(LR_GRID),
        ),
        (
            "XGBoost, no behaviour (ids + demographics + campaign)",
            True,
            lambda s, g: run_xgb(*on(ids_tree), s, g, args.threads, args.quick),
            grid(xgb_ids_grid(len(ytr))),
        ),
        (
            "perkrec FM, no behaviour",
            True,
            lambda s, g: run_perkrec("fm", pk, (ytr, yva), s, g, args.quick),
            grid(FM_GRID),
        ),
        (
            "perkrec FFM, no behaviour",
            True,
            lambda s, g: run_perkrec("ffm", pk, (ytr, yva), s, g, args.quick),
            grid(FM_GRID),
        ),
        (
            "perkrec FM(factors=0), no behaviour",
            False,
            lambda s, g: run_perkrec("linear", pk, (ytr, yva), s, g, args.quick),
            grid(LINEAR_GRID),
        ),
        (
            "perkrec with behaviour features",
            True,
            lambda s, g: run_hook(tables, cands, test, s, g),
            [{}],
        ),
        (
            "perkrec behaviour, FM(factors=0) 1e-3",
            False,
            lambda s, g: run_hook(tables, cands, test, s, g),
            [CF_BASE],
        ),
        (
            "perkrec behaviour + item CF, FM(factors=0) 1e-3",
            False,
            lambda s, g: run_hook(tables, cands, test, s, g),
            [dict(CF_BASE, cf=True)],
        ),
        (
            "perkrec behaviour, FM(factors=0) 1e-3, campaigns from March",
            False,
            lambda s, g: run_hook(tables, cands, test, s, g),
            [dict(CF_BASE, burn_in=CF_BURN_IN)],
        ),
        (
            "perkrec behaviour + item CF, FM(factors=0) 1e-3, campaigns from March",
            False,
            lambda s, g: run_hook(tables, cands, test, s, g),
            [dict(CF_BASE, cf=True, burn_in=CF_BURN_IN)],
        ),
        (
            "perkrec FMCV with behaviour features",
            True,
            lambda s, g: run_fmcv_hook(tables, cands, test, s),
            [{}],
        ),
    ]
    only = [o for o in args.only.split(",") if o]
    if only:
        models = [m for m in models if any(o in m[0] for o in only)]
    test_cands = cands[test].reset_index(drop=True)
    print()
    rows = run_models(models, seeds, test_cands)
    print_results(rows, test_cands, args.cut)
    print(f"\nfeatures {feature_s:.1f} s; whole run {time.perf_counter() - t_all:.0f} s")


if __name__ == "__main__":
    main()
