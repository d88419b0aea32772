"""InterestModel on real baskets: does "which categories is this member most interested in"
hold on the months after the cut? The Complete Journey 2017 (a grocery loyalty program, every
basket line with its product hierarchy).

Split: every line before the cut (default 2017-10-01) fits the model; the lines from the cut to
the end of the year are the holdout. Per item level (department, product_category):

  * log predictive probability per held-out line (higher is better): perkrec's posterior
    shares; the household's raw shares with add-one smoothing (what a pandas groupby gives); the
    raw shares with a fixed prior of one pseudo-line at the population's shares; the
    population's shares (no personalization);
  * Spearman, per household with >= 20 held-out lines, between the predicted lift of each value
    and the held-out lift (held-out share over the population's), perkrec vs the two raw ones;
  * calibration on real data: for each household's top-10 values, the held-out count against
    the posterior predictive (beta-binomial with the household's held-out line count) — the
    share of counts inside the central 80% / 90% predictive intervals (discrete counts cover at
    least the stated level when the model is right) and the shares below / above;
  * fit time (2 threads).

    .venv/bin/python bench/interest_holdout.py [--cut 2017-10-01] [--half-life 0,90] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

import perkrec

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def spearman_rows(a: np.ndarray, b: np.ndarray) -> float:
    ra = np.argsort(np.argsort(a, axis=1), axis=1).astype(float)
    rb = np.argsort(np.argsort(b, axis=1), axis=1).astype(float)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    den = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    ok = den > 0
    return float(np.median((ra * rb).sum(axis=1)[ok] / den[ok]))


def run(data: Path, cut: pd.Timestamp, level: str, half_life: float, threads: int) -> dict:
    root = data / "dunnhumby-complete-journey-2017"
    tx = pd.read_parquet(root / "transactions.parquet")
    products = pd.read_parquet(root / "products.parquet")
    items = perkrec.ItemCatalog.from_frame(
        products[["product_id", level]], id="product_id", levels=[level], numeric=[]
    )
    tx = tx[tx["product_id"].isin(set(products["product_id"]))]
    users = perkrec.IdMap(np.unique(tx["household_id"].to_numpy()))
    behavior = perkrec.BehaviorLog.from_frame(
        tx,
        user_ids=users,
        items=items,
        user="household_id",
        item="product_id",
        time="transaction_timestamp",
    )
    started = time.perf_counter()
    model = perkrec.InterestModel(level=level, half_life_days=half_life, num_threads=threads).fit(
        behavior, items, cut_time=cut
    )
    fit_seconds = time.perf_counter() - started
    values = model.values
    code = {v: k for k, v in enumerate(values)}
    level_of = products.set_index("product_id")[level]
    ts = pd.to_datetime(tx["transaction_timestamp"], utc=True)
    cut_utc = cut.tz_localize("UTC") if cut.tzinfo is None else cut
    hold = tx[(ts >= cut_utc).to_numpy()]
    before = tx[(ts < cut_utc).to_numpy()]
    n_users, n_values = model._impl.n_users, len(values)

    def counts(frame):
        v = frame["product_id"].map(level_of).map(code)
        ok = v.notna().to_numpy()
        u = users.lookup(frame["household_id"].to_numpy()[ok])
        m = np.zeros((n_users, n_values))
        np.add.at(m, (u, v.to_numpy()[ok].astype(int)), 1.0)
        return m

    held = counts(hold)
    seen = counts(before)
    lifts = model.lifts().to_numpy()
    pop = model.population_share.to_numpy()
    post_share = lifts * pop
    raw_share = (seen + 1.0) / (seen.sum(axis=1, keepdims=True) + n_values)
    # The same shrinkage with a fixed, small prior (one pseudo-line spread over the population's
    # shares): what the fitted strength adds.
    pop1_share = (seen + pop) / (seen.sum(axis=1, keepdims=True) + 1.0)
    rows = held.sum(axis=1) > 0
    lines = held[rows].sum()

    def lpp(share):
        return float((held[rows] * np.log(share[rows])).sum() / lines)

    out = {
        "level": level,
        "values": n_values,
        "half_life_days": half_life,
        "households_fitted": int((seen.sum(axis=1) > 0).sum()),
        "households_in_holdout": int(rows.sum()),
        "holdout_lines": int(lines),
        "prior_strength": round(model.prior_strength_, 2),
        "fit_seconds": round(fit_seconds, 2),
        "log_pred_perkrec": round(lpp(post_share), 4),
        "log_pred_raw_add_one": round(lpp(raw_share), 4),
        "log_pred_population_prior_1": round(lpp(pop1_share), 4),
        "log_pred_population": round(lpp(np.broadcast_to(pop, held.shape)), 4),
    }
    busy = (held.sum(axis=1) >= 20) & (seen.sum(axis=1) > 0)
    held_lift = held[busy] / held[busy].sum(axis=1, keepdims=True) / pop
    raw_lift = raw_share[busy] / pop
    pop1_lift = pop1_share[busy] / pop
    out["households_spearman"] = int(busy.sum())
    out["spearman_lift_perkrec"] = round(spearman_rows(lifts[busy], held_lift), 4)
    out["spearman_lift_raw"] = round(spearman_rows(raw_lift, held_lift), 4)
    out["spearman_lift_population_prior_1"] = round(spearman_rows(pop1_lift, held_lift), 4)
    # Calibration: the top-10 values of each household with held-out lines.
    top = model.top(n=10)
    u = users.lookup(top["user"].to_numpy())
    v = top[level].map(code).to_numpy().astype(int)
    n_held = held.sum(axis=1)[u]
    keep = n_held > 0
    u, v, n_held = u[keep], v[keep], n_held[keep]
    alpha = model.prior_strength_
    # Posterior Beta(a, b) of the share from the model's own activity (decayed when half_life > 0):
    share = post_share[u, v]
    total = np.asarray(model._impl.total(), dtype=float)[u]
    a = share * (total + alpha)
    b = (total + alpha) - a
    k = held[u, v]
    for level_ in (0.8, 0.9):
        lo = stats.betabinom.ppf((1 - level_) / 2, n_held, a, b)
        hi = stats.betabinom.ppf((1 + level_) / 2, n_held, a, b)
        out[f"inside_{round(100 * level_)}"] = round(float(((k >= lo) & (k <= hi)).mean()), 4)
        out[f"below_{round(100 * level_)}"] = round(float((k < lo).mean()), 4)
        out[f"above_{round(100 * level_)}"] = round(float((k > hi).mean()), 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--cut", default="2017-10-01")
    ap.add_argument("--levels", default="department,product_category")
    ap.add_argument("--half-life", default="0,90")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    for level in args.levels.split(","):
        for hl in args.half_life.split(","):
            r = run(Path(args.data), pd.Timestamp(args.cut), level, float(hl), args.threads)
            print(r, flush=True)


if __name__ == "__main__":
    main()
