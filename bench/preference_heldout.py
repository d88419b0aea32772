"""Do the PreferenceModel's intervals hold their level on real data? Checked on held-out
responses (issue 16, item 1: "calibration is measured, not assumed").

On real data the members' true rates are unknown, so the intervals are checked through what
they predict: the model is fitted on the events before a cut; for every member and benefit
dimension with benefits issued after the cut, the model's distribution of the member's rate
(its quantiles, read from ``intervals(level)`` at 49 levels) and the binomial of the held-out
issues give a predictive distribution of the held-out responses k out of n. A randomized
probability integral transform (PIT) of the observed k under it is uniform when the stated
distribution is right; the share of PITs inside the central L interval is the coverage of the
level L (0.5 / 0.8 / 0.9 / 0.95), reported overall and by terciles of the predicted rate and of
the 90% interval's width (the issue's "members grouped by predicted rate and width"). The
binomial noise of a few held-out issues widens every predictive interval, so this check is
weaker than one against a known truth; the simulated program, where the truth is known, shows
the same check where bench/preference_truth.py --transfer measures the planted rates' coverage
(0.89-0.94 at 90% on such programs). A second table scales every member's rate distribution by
the dimension's held-out / predicted response ratio: what is left is the members' calibration
once the population's change between the two periods (which no per-member interval can know)
is taken out.

Held-out counts per member and dimension come from ``perkrec.wide_table`` over the events after
the cut of the (member, benefit) pairs whose held-out issues all ended (validity) by the log's
end and that had no earlier issue still open at the cut, so every counted response is complete
and belongs to a held-out issue (the response relabelled as a claim: responses = claim_rate x
issued).

    .venv/bin/python bench/preference_heldout.py [--data ../shared/data] [--sim-seeds 404 505]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import binom

import perkrec

LEVELS = (0.5, 0.8, 0.9, 0.95)
GRID = np.linspace(0.02, 0.98, 49)  # central interval levels read from the model


def heldout_log(log, catalog, cut, response):
    """The issues and responses at or after ``cut`` of the (member, benefit) pairs whose
    held-out issues all ended by the log's end (validity_days after the issue) and that had no
    issue before the cut still open at the cut: responses are then complete and belong to
    held-out issues. The response is relabelled "claimed" (claim_rate = responses / issued)."""
    f = log.to_frame()
    ts = f["timestamp"]
    end = ts.max()
    validity = catalog.to_frame().set_index("id")["validity_days"]
    kind = f["event_type"].astype(str)
    issued = f[kind == "issued"]
    closes = issued["timestamp"] + pd.to_timedelta(
        issued["benefit"].map(validity).to_numpy(np.float64), unit="D"
    )
    after = issued["timestamp"] >= cut
    bad = (after & (closes > end)) | (~after & (closes > cut))
    pair = f["user"].astype(str) + "\x1f" + f["benefit"].astype(str)
    ipair = pair[issued.index]
    keep_pairs = set(ipair[after & ~bad]) - set(ipair[bad])
    sub = f[(ts >= cut) & pair.isin(keep_pairs) & kind.isin(["issued", response])].copy()
    # the response counted as a claim, so that wide_table's claim_rate is responses / issued
    sub["event_type"] = sub["event_type"].astype(str).replace({response: "claimed"})
    return perkrec.EventLog.from_frame(sub, user_ids=log.user_ids, benefits=catalog), end


def _counts(log, catalog, at, dims):
    w = perkrec.wide_table(log, catalog, at)
    n = np.stack([w[f"issued:{d}"].to_numpy(np.float64) for d in dims], 1)
    claim = np.stack([np.nan_to_num(w[f"claim_rate:{d}"].to_numpy(np.float64)) for d in dims], 1)
    return n, np.rint(claim * n)


def rate_quantiles(model) -> np.ndarray:
    """members x dimensions x quantiles of the member's rate (ascending), from the model's
    intervals at the GRID's levels (lift x the population rate)."""
    pop = model.population_rate.to_numpy(np.float64)
    qs = []
    for level in GRID[::-1]:
        lower, _ = model.intervals(level)
        qs.append(lower.to_numpy(np.float64) * pop)
    median = model.intervals(1e-6)[0].to_numpy(np.float64) * pop
    qs.append(median)
    for level in GRID:
        _, upper = model.intervals(level)
        qs.append(upper.to_numpy(np.float64) * pop)
    return np.clip(np.stack(qs, 2), 0.0, 1.0)


def pit(k, n, q, rng) -> np.ndarray:
    """Randomized PIT of k ~ Binomial(n, r), r drawn from the quantiles q (equal weights)."""
    F = binom.cdf(k[:, None], n[:, None], q).mean(1)
    Fm = binom.cdf(k[:, None] - 1, n[:, None], q).mean(1)
    return Fm + rng.random(len(k)) * (F - Fm)


def coverage_table(u, rate, width) -> pd.DataFrame:
    rows = []
    groups = {"all": np.ones(len(u), bool)}
    rt = pd.qcut(rate, 3, labels=["low", "mid", "high"], duplicates="drop")
    wt = pd.qcut(width, 3, labels=["narrow", "mid", "wide"], duplicates="drop")
    for name in rt.categories:
        groups[f"rate {name}"] = np.asarray(rt == name)
    for name in wt.categories:
        groups[f"width {name}"] = np.asarray(wt == name)
    for name, g in groups.items():
        row = {"group": name, "pairs": int(g.sum())}
        for level in LEVELS:
            row[f"cov{int(level * 100)}"] = float(np.mean(np.abs(u[g] - 0.5) <= level / 2))
        row["pit_mean"] = float(u[g].mean())  # < 0.5: fewer responses than predicted
        row["mean_rate"] = float(rate[g].mean())
        row["median_width90"] = float(np.median(width[g]))
        rows.append(row)
    return pd.DataFrame(rows)


def heldout(log, catalog, cut, response, model_kw, seed=0):
    t0 = time.perf_counter()
    model = perkrec.PreferenceModel(response=response, **model_kw).fit(log, catalog, cut)
    fit_s = time.perf_counter() - t0
    dims = model.dimension_names
    sub, end = heldout_log(log, catalog, cut, response)
    n, k = _counts(sub, catalog, end + pd.Timedelta(seconds=1), dims)
    rows = model.memberships().shape[0]
    assert n.shape[0] == rows, (n.shape, rows)
    k = np.minimum(k, n)
    q = rate_quantiles(model)
    lower90, upper90 = model.intervals(0.9)
    pop = model.population_rate.to_numpy(np.float64)
    width = ((upper90.to_numpy() - lower90.to_numpy()) * pop).astype(np.float64)
    rate = model.preferences().to_numpy(np.float64) * pop
    mask = n > 0
    u = pit(k[mask], n[mask], q[mask], np.random.default_rng(seed))
    table = coverage_table(u, rate[mask], width[mask])
    # the population's drift from the fit period to the held-out one, per dimension: held-out
    # responses over the responses the model's rates predict for the same issues
    drift = k.sum(0) / np.maximum((n * rate).sum(0), 1e-12)
    qd = np.clip(q * drift[None, :, None], 0.0, 1.0)
    ud = pit(k[mask], n[mask], qd[mask], np.random.default_rng(seed))
    table_drift = coverage_table(ud, rate[mask], width[mask])  # same groups
    # power check: the same with no rate uncertainty (the point estimate as the rate) and with
    # the stated spread tripled; a check that cannot tell these from the model's is no check
    point = np.clip(rate * drift[None, :], 0.0, 1.0)[..., None]
    up = pit(k[mask], n[mask], point[mask], np.random.default_rng(seed))
    mid = qd[..., len(GRID) : len(GRID) + 1]
    wide = np.clip(mid + 3.0 * (qd - mid), 0.0, 1.0)
    uw = pit(k[mask], n[mask], wide[mask], np.random.default_rng(seed))
    power = {
        name: {lv: float(np.mean(np.abs(x - 0.5) <= lv / 2)) for lv in LEVELS}
        for name, x in (("stated", ud), ("point", up), ("spread x3", uw))
    }
    out = {
        "power": power,
        "fit_s": fit_s,
        "pairs": int(mask.sum()),
        "table": table,
        "table_drift": table_drift,
        "level": float(k.sum() / np.nansum(n * rate)),
    }
    return out


def starbucks(root: Path):
    data = perkrec.datasets.load_starbucks(root / "starbucks-rewards-offers")
    log = data.events
    cut = log.time_range[0] + pd.Timedelta(days=20)
    return heldout(log, data.catalog, cut, "redeemed", {"latent_classes": 4})


def dunnhumby(root: Path, cut_day: int = 500):
    data = perkrec.datasets.load_dunnhumby(root / "dunnhumby-complete-journey-coupons")
    cut = pd.Timestamp(cut_day * 86400, unit="s", tz="UTC")
    return heldout(data.events, data.catalog, cut, "redeemed", {"latent_classes": 4})


def simulated(seed: int, members: int = 12000):
    program = perkrec.simulate(n_users=members, seed=seed)
    log = program.events
    cut = log.time_range[1] - pd.Timedelta(days=30)
    return heldout(log, program.catalog, cut, "claimed", {}, seed=seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--sim-seeds", type=int, nargs="*", default=[404, 505])
    ap.add_argument("--members", type=int, default=12000)
    ap.add_argument("--only", default="starbucks,dunnhumby,sim")
    args = ap.parse_args()
    root = Path(args.data)
    only = set(args.only.split(","))
    pd.set_option("display.width", 200)
    runs = []
    if "starbucks" in only:
        runs.append(
            ("Starbucks offers (response redeemed; cut day 20 of 30)", lambda: starbucks(root))
        )
    if "dunnhumby" in only:
        runs.append(("dunnhumby coupons (response redeemed; cut day 500)", lambda: dunnhumby(root)))
    if "sim" in only:
        for s in args.sim_seeds:
            runs.append(
                (
                    f"simulated, seed {s}, {args.members:,} members (cut 30 days before the end)",
                    lambda s=s: simulated(s, args.members),
                )
            )
    for title, fn in runs:
        t0 = time.perf_counter()
        r = fn()
        print(
            f"\n{title}: {r['pairs']:,} member x dimension pairs with held-out issues; "
            f"fit {r['fit_s']:.1f} s, total {time.perf_counter() - t0:.1f} s"
        )
        print(r["table"].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print(
            f"held-out responses / predicted: {r['level']:.3f}; with the rates scaled by that "
            "drift per dimension (the population's change, not the members'):"
        )
        print(r["table_drift"].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print("power check, drift taken out (coverage at 50 / 80 / 90 / 95%):")
        for name, cov in r["power"].items():
            print(f"  {name:10s} " + " / ".join(f"{v:.3f}" for v in cov.values()))


if __name__ == "__main__":
    main()
