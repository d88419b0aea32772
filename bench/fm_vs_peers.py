"""FM / FFM / FMCV against logistic regression, XGBoost and LightFM on redemption prediction.

Every model sees the same sparse one-hot features (perkrec.FeatureEncoder, including the
leak-safe history aggregates where a dataset has an event log), the same train / validation /
test split, and is tuned on the validation split only — except FMCV (and FFMCV: the same
selector with an FFM candidate), which chooses by cross-validation on the same training rows and
never sees the validation rows, and FMCV+val, the same selector on the training and validation
rows together (CV needs no held-out split). Prints AUC, log-loss and training time per dataset
and model, then the synthetic training throughput of FM.

    python bench/fm_vs_peers.py [--datasets ivc,starbucks,dunnhumby,simulator] [--throughput-rows N]
        [--seeds N] [--skip FM,FFM,...]

``--seeds N`` repeats each dataset with seeds 0..N-1: the random split of in-vehicle coupon and
every model's seed (FM, FFM, FMCV, XGBoost subsampling, liblinear); the other datasets' splits
are fixed (the author's split, time splits), so there only the models' seeds change.

Data: ../shared/data (see each folder's SOURCE.md). Peers: pip install scikit-learn xgboost
lightfm (the ``bench`` extra); a peer that is not installed is reported as such.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

import perkrec
from perkrec import datasets
from perkrec.fm import FFM, FM, DEFAULT_FIELDS, FeatureEncoder, redemption_samples

DATA = Path(
    os.environ.get("PERKREC_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def _cat(name, **kw):
    return {"name": name, "kind": "categorical", **kw}


def _num(name, bins=8):
    return {"name": name, "kind": "numeric", "transform": "quantile", "bins": bins}


def _history(bins=6, member=True, benefit=True):
    fields = []
    if member:
        fields.append(
            {
                "name": "member_history",
                "kind": "history",
                "bins": bins,
                "aggregates": [
                    "member_issued",
                    "member_redeemed",
                    "member_redemption_rate",
                    "member_kind_issued",
                    "member_kind_redeemed",
                    "member_kind_redemption_rate",
                ],
            }
        )
    if benefit:
        fields.append(
            {
                "name": "benefit_history",
                "kind": "history",
                "bins": bins,
                "aggregates": ["benefit_issued", "benefit_redeemed", "benefit_redemption_rate"],
            }
        )
    return fields


# ---- datasets: (train, test, fields, events, catalog) ------------------------------------------


def in_vehicle_coupon(seed=0):
    ds = datasets.load_in_vehicle_coupon(DATA / "uci-in-vehicle-coupon")
    f = ds.frame.copy()
    label = f.pop("Y").astype(np.uint8)
    f = f.drop(columns=["benefit"])
    f["label"] = label.to_numpy()
    rng = np.random.default_rng(seed)
    test = rng.random(len(f)) < 0.2
    fields = [_cat(c, min_count=1) for c in f.columns if c != "label"]
    return f[~test].reset_index(drop=True), f[test].reset_index(drop=True), fields, None, None


def starbucks(seed=0):
    ds = datasets.load_starbucks(DATA / "starbucks-rewards-offers")
    f = ds.frame.copy()
    # Honest columns only (SOURCE.md: the customer aggregates leak the label).
    f["user"] = ds.users.user_ids.lookup(f["customer_id"].to_numpy())
    f["benefit"] = ds.catalog.ids.lookup(f["offer_id"].astype(str).to_numpy())
    f["timestamp"] = (f["offer_received_time"].to_numpy() * 3600).astype(np.int64)
    f["label"] = f["offer_completed"].astype(np.uint8)
    f["offer_type"] = f["offer_type"].astype(str)
    fields = [
        _cat("offer_id"),
        _cat("offer_type"),
        _cat("reward"),
        _cat("difficulty"),
        _cat("duration"),
        _cat("num_channels"),
        _cat("ch_social"),
        _cat("ch_web"),
        _cat("gender"),
        _num("age", 10),
        _num("income", 10),
        _num("days_registered", 10),
        _cat("offer_received_time"),
    ] + _history(benefit=False)
    train, test = (
        f[f["split"] == "train"].reset_index(drop=True),
        f[f["split"] == "test"].reset_index(drop=True),
    )
    return train, test, fields, ds.events, ds.catalog


def dunnhumby(seed=0):
    ds = datasets.load_dunnhumby(DATA / "dunnhumby-complete-journey-coupons")
    f = ds.frame.copy()
    f["user"] = ds.events.user_ids.lookup(f["household_key"].to_numpy())
    f["benefit"] = ds.catalog.ids.lookup(np.array([f"C{c}" for c in f["campaign"]]))
    f["timestamp"] = (f["start_day"].to_numpy() * 86400).astype(np.int64)
    f["label"] = f["redeemed"].astype(np.uint8)
    users = ds.users.to_frame()
    for col in users.columns:
        f[col] = users[col].astype(str).to_numpy()[f["user"].to_numpy()]
    f["duration"] = f["end_day"] - f["start_day"]
    fields = (
        [
            _cat("household_key", min_count=2),
            _cat("campaign"),
            _cat("campaign_type"),
            _num("duration", 6),
        ]
        + [_cat(c) for c in users.columns]
        + _history()
    )
    # Time split: the campaigns that start last are the future.
    cut = np.quantile(f["start_day"], 0.8)
    train, test = (
        f[f["start_day"] < cut].reset_index(drop=True),
        f[f["start_day"] >= cut].reset_index(drop=True),
    )
    return train, test, fields, ds.events, ds.catalog


def simulator(seed=0):
    program = perkrec.simulate(n_users=5000, seed=42)
    s = redemption_samples(program.events, program.catalog, program.users)
    cut = np.quantile(s["timestamp"], 0.8)
    return (
        s[s["timestamp"] < cut].reset_index(drop=True),
        s[s["timestamp"] >= cut].reset_index(drop=True),
        DEFAULT_FIELDS,
        program.events,
        program.catalog,
    )


DATASETS = {
    "ivc": in_vehicle_coupon,
    "starbucks": starbucks,
    "dunnhumby": dunnhumby,
    "simulator": simulator,
}


# ---- models ------------------------------------------------------------------------------------


def _auc_se(auc, y):
    """Hanley-McNeil standard error of an AUC: how much of a difference is noise."""
    n1, n0 = float(np.sum(y)), float(len(y) - np.sum(y))
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    return float(
        np.sqrt((auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2)) / (n1 * n0))
    )


def _clip(p):
    return np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)


def run_fm(cls, Xtr, ytr, Xva, yva, Xte, enc, grid, seed=42):
    best = None
    for params in grid:
        t = time.perf_counter()
        m = cls(**params, epochs=40, early_stopping_rounds=3, num_threads=1, seed=seed).fit(
            Xtr, ytr, encoder=enc, validation=(Xva, yva)
        )
        dt = time.perf_counter() - t
        loss = m.history["validation_loss"].min()
        if best is None or loss < best[0]:
            best = (loss, m, dt, params)
    return best[1].predict(Xte), best[2], best[3]


def run_fmcv(Xtr, ytr, Xte, enc, seed=42, seeds=3, field_aware=False):
    """Selection by 5-fold cross-validation on the training rows only (no validation rows);
    ``field_aware``: the FM candidate is an FFM (4 factors per field pair)."""
    t = time.perf_counter()
    m = perkrec.FMCV(
        factors=4 if field_aware else 8,
        field_aware=field_aware,
        seeds=seeds,
        seed=seed,
        num_threads=1,
    ).fit(Xtr, ytr, encoder=enc)
    dt = time.perf_counter() - t
    s = m.selection_
    chosen = (
        {
            "fm": True,
            "reg_linear": s["reg_linear"],
            "reg_factors": s["reg_factors"],
            "epochs": s["epochs"],
            "seeds": s["seeds"],
        }
        if s["factorized"]
        else {"fm": False, "reg_linear": s["reg_linear"]}
    )
    chosen["cv_loss_lr"] = round(s["linear_loss"], 5)
    chosen["cv_loss_fm"] = round(
        min((x for x in s["factors_loss"] if x is not None), default=np.nan), 5
    )
    return m.predict(Xte), dt, chosen


def run_lr(Xtr, ytr, Xva, yva, Xte, seed=0, refit=False):
    from sklearn.linear_model import LogisticRegression

    best = None
    for C in (0.1, 1.0):
        t = time.perf_counter()
        m = LogisticRegression(C=C, max_iter=2000, solver="liblinear", random_state=seed).fit(
            Xtr, ytr
        )
        dt = time.perf_counter() - t
        loss = perkrec.log_loss(yva, _clip(m.predict_proba(Xva)[:, 1]))
        if best is None or loss < best[0]:
            best = (loss, m, dt, {"C": C})
    if refit:
        t = time.perf_counter()
        m = LogisticRegression(
            C=best[3]["C"], max_iter=2000, solver="liblinear", random_state=seed
        ).fit(sp.vstack([Xtr, Xva]).tocsr(), np.concatenate([ytr, yva]))
        return m.predict_proba(Xte)[:, 1], time.perf_counter() - t, best[3]
    return best[1].predict_proba(Xte)[:, 1], best[2], best[3]


def run_xgb(Xtr, ytr, Xva, yva, Xte, seed=0):
    import xgboost as xgb

    best = None
    # The full grid on small data; on large data (slow single-threaded on sparse input) two depths.
    grid = (
        [(d, lr) for d in (3, 6, 8) for lr in (0.05, 0.1)]
        if Xtr.shape[0] < 100_000
        else [(4, 0.1), (8, 0.1)]
    )
    for depth, lr in grid:
        t = time.perf_counter()
        m = xgb.XGBClassifier(
            n_estimators=600,
            max_depth=depth,
            learning_rate=lr,
            subsample=0.8,
            colsample_bytree=0.8,
            tree_method="hist",
            n_jobs=1,
            early_stopping_rounds=20,
            eval_metric="logloss",
            random_state=seed,
        ).fit(Xtr, ytr, eval_set=[(Xva, yva)], verbose=False)
        dt = time.perf_counter() - t
        loss = perkrec.log_loss(yva, _clip(m.predict_proba(Xva)[:, 1]))
        if best is None or loss < best[0]:
            best = (
                loss,
                m,
                dt,
                {"max_depth": depth, "learning_rate": lr, "trees": m.best_iteration + 1},
            )
    return best[1].predict_proba(Xte)[:, 1], best[2], best[3]


def run_lightfm(Xtr, ytr, Xva, yva, Xte):
    from lightfm import LightFM
    import scipy.sparse as sp

    # LightFM wants users x items interactions; each sample is its own "user" with the row's
    # features as user features and one dummy item, logistic loss.
    n = Xtr.shape[0]
    inter = sp.coo_matrix(
        (np.where(ytr > 0, 1, -1).astype(np.float32), (np.arange(n), np.zeros(n))), shape=(n, 1)
    )
    m = LightFM(no_components=8, loss="logistic", random_state=0)
    t = time.perf_counter()
    m.fit(inter, user_features=Xtr.tocsr(), epochs=10, num_threads=1)
    dt = time.perf_counter() - t
    s = m.predict(
        np.arange(Xte.shape[0]), np.zeros(Xte.shape[0], np.int32), user_features=Xte.tocsr()
    )
    return 1 / (1 + np.exp(-s)), dt, {"no_components": 8}


OURS = ("FM", "FFM", "FMCV", "FFMCV", "FMCV+val")

FM_GRID = [
    dict(factors=k, learning_rate=lr, init_std=0.1, reg_linear=r, reg_factors=r)
    for k in (8, 16)
    for r in (1e-3, 1e-2)
    for lr in (0.02, 0.05)
]
# FFM costs O(nnz^2) per row: the full grid on small data, a smaller one on large data.
FFM_GRID = [
    dict(factors=k, learning_rate=lr, init_std=0.1, reg_linear=r, reg_factors=r)
    for k in (4, 8, 16)
    for r in (1e-3, 1e-2)
    for lr in (0.02, 0.05)
]
FFM_GRID_LARGE = [
    dict(factors=k, learning_rate=0.05, init_std=0.1, reg_linear=r, reg_factors=r)
    for k in (4, 8)
    for r in (1e-3, 1e-2)
]


def bench_dataset(name, seed=0, skip=()):
    t0 = time.perf_counter()
    train, test, fields, events, catalog = DATASETS[name](seed)
    # Validation: the last 15% of the training rows (in time where rows have a time).
    order = (
        np.argsort(train["timestamp"].to_numpy(), kind="stable")
        if "timestamp" in train
        else np.arange(len(train))
    )
    n_val = int(0.15 * len(train))
    val, fit_part = train.iloc[order[-n_val:]], train.iloc[order[:-n_val]]
    enc = FeatureEncoder(fields).fit(fit_part, events=events, catalog=catalog)
    Xtr = enc.transform(fit_part, events=events)
    Xva = enc.transform(val, events=events)
    Xte = enc.transform(test, events=events)
    ytr, yva, yte = (
        fit_part["label"].to_numpy(),
        val["label"].to_numpy(),
        test["label"].to_numpy(),
    )
    print(
        f"\n== {name} (seed {seed}): train {len(fit_part):,} / validation {len(val):,} / test {len(test):,} rows, "
        f"{enc.n_fields} fields, {enc.n_features:,} features, base rate {yte.mean():.3f} "
        f"(prepared in {time.perf_counter() - t0:.1f} s)",
        flush=True,
    )
    rows = []
    model_seed = 42 + seed
    runners = [
        ("FM", lambda: run_fm(FM, Xtr, ytr, Xva, yva, Xte, enc, FM_GRID, model_seed)),
        (
            "FFM",
            lambda: run_fm(
                FFM,
                Xtr,
                ytr,
                Xva,
                yva,
                Xte,
                enc,
                FFM_GRID if Xtr.shape[0] < 100_000 else FFM_GRID_LARGE,
                model_seed,
            ),
        ),
        ("FMCV", lambda: run_fmcv(Xtr, ytr, Xte, enc, model_seed)),
        ("FFMCV", lambda: run_fmcv(Xtr, ytr, Xte, enc, model_seed, field_aware=True)),
        # CV needs no validation split: the same selector on the training + validation rows.
        (
            "FMCV+val",
            lambda: run_fmcv(
                sp.vstack([Xtr, Xva]).tocsr(), np.concatenate([ytr, yva]), Xte, enc, model_seed
            ),
        ),
        ("LogisticRegression", lambda: run_lr(Xtr, ytr, Xva, yva, Xte, seed)),
        # The peer's fair counterpart of FMCV+val: its chosen C refit on training + validation.
        ("LogisticRegression+val", lambda: run_lr(Xtr, ytr, Xva, yva, Xte, seed, refit=True)),
        ("XGBClassifier", lambda: run_xgb(Xtr, ytr, Xva, yva, Xte, seed)),
        ("LightFM", lambda: run_lightfm(Xtr, ytr, Xva, yva, Xte)),
    ]
    for model, run in runners:
        if model in skip:
            continue
        try:
            p, dt, chosen = run()
        except ImportError as exc:
            print(f"  {model}: not installed ({exc})")
            continue
        rows.append((model, perkrec.auc(yte, p), perkrec.log_loss(yte, _clip(p)), dt, str(chosen)))
        print(
            f"  {model:<20} auc {rows[-1][1]:.4f}  log-loss {rows[-1][2]:.4f}  train {dt:7.2f} s  "
            f"(selected config) {chosen}",
            flush=True,
        )
    table = pd.DataFrame(rows, columns=["model", "auc", "log_loss", "train_s", "chosen"]).set_index(
        "model"
    )
    mine = [m for m in OURS if m in table.index]
    ours = table.loc[mine, "auc"].max()
    peers = table.drop(index=mine)["auc"]
    print(
        f"  best perkrec auc - best baseline auc = {ours - peers.max():+.4f} (AUC standard error here "
        f"~{_auc_se(peers.max(), yte):.4f}) "
        f"({'beats all baselines' if ours > peers.max() else 'within 0.005' if ours >= peers.max() - 0.005 else 'MISS'})"
    )
    return table


def summarize(name, tables):
    """Mean and standard deviation over seeds, and the per-seed margin of the best perkrec
    model over the best peer."""
    auc = pd.concat([t["auc"].rename(i) for i, t in enumerate(tables)], axis=1)
    loss = pd.concat([t["log_loss"].rename(i) for i, t in enumerate(tables)], axis=1)
    print(f"\n== {name}: {len(tables)} seeds")
    for model in auc.index:
        print(
            f"  {model:<20} auc {auc.loc[model].mean():.4f} +- {auc.loc[model].std():.4f}  "
            f"log-loss {loss.loc[model].mean():.4f} +- {loss.loc[model].std():.4f}  "
            f"per seed {' '.join(f'{a:.4f}' for a in auc.loc[model])}"
        )
    mine = [m for m in OURS if m in auc.index]
    margin = auc.loc[mine].max() - auc.drop(index=mine).max()
    fmcv = (auc.loc["FMCV"] - auc.drop(index=mine).max()) if "FMCV" in auc.index else None
    print(f"  best perkrec - best peer, per seed: {' '.join(f'{m:+.4f}' for m in margin)}")
    if fmcv is not None:
        print(f"  FMCV - best peer, per seed:         {' '.join(f'{m:+.4f}' for m in fmcv)}")


def throughput(
    rows: int, fields: int = 30, per_field: int = 1000, factors: int = 8, repeats: int = 2
):
    """Training samples per second on a synthetic planted problem: epochs 1 vs 4, each the best
    of ``repeats`` fits, so setup (validation, initialization) cancels out and a noisy neighbour
    on a shared machine counts less."""
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    idx = (
        rng.integers(0, per_field, size=(rows, fields), dtype=np.int32)
        + np.arange(fields, dtype=np.int32) * per_field
    ).ravel()
    X = sp.csr_matrix(
        (
            np.ones(rows * fields, np.float32),
            idx,
            np.arange(0, rows * fields + 1, fields, dtype=np.int64),
        ),
        shape=(rows, fields * per_field),
    )
    y = (rng.random(rows) < 0.3).astype(np.float32)
    ff = np.repeat(np.arange(fields, dtype=np.int32), per_field)
    print(
        f"\n== synthetic throughput: {rows:,} rows x {fields} fields, {factors} factors", flush=True
    )
    configs = [
        (1, "sgd", "blocks"),
        (1, "adagrad", "blocks"),
        (1, "sgd", "rows"),
        (2, "sgd", "blocks"),
        (2, "adagrad", "blocks"),
    ]
    for threads, opt, shuffle in configs:
        times = {}
        for epochs in (1, 4):
            best = np.inf
            for _ in range(repeats):
                t = time.perf_counter()
                FM(
                    factors=factors,
                    epochs=epochs,
                    optimizer=opt,
                    shuffle=shuffle,
                    learning_rate=0.01,
                    num_threads=threads,
                ).fit(X, y, feature_fields=ff, n_fields=fields)
                best = min(best, time.perf_counter() - t)
            times[epochs] = best
        per_epoch = (times[4] - times[1]) / 3
        rate = rows / per_epoch
        print(
            f"  FM {opt:<8} shuffle {shuffle:<6} threads {threads}: {per_epoch:6.2f} s/epoch  "
            f"{rate / 1e6:5.2f} M samples/s  ({rate / threads / 1e6:.2f} M/s per core)",
            flush=True,
        )


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--datasets", default="ivc,starbucks,dunnhumby,simulator")
    ap.add_argument("--throughput-rows", type=int, default=10_000_000, help="0 = skip")
    ap.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 (see the module doc)")
    ap.add_argument("--skip", default="", help="models to leave out, e.g. LightFM,FFM")
    args = ap.parse_args(argv)
    print(f"perkrec {perkrec.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    skip = {m for m in args.skip.split(",") if m}
    for name in [d for d in args.datasets.split(",") if d]:
        tables = [bench_dataset(name, seed, skip) for seed in range(args.seeds)]
        if len(tables) > 1:
            summarize(name, tables)
    if args.throughput_rows > 0:
        throughput(args.throughput_rows)


if __name__ == "__main__":
    main()
