"""Holdout accuracy of CLVModel(model="auto") against lifetimes' models and the naive own-rate
forecast, side by side on CDNOW and on simulated loyalty programs, in one run.

    .venv/bin/pip install lifetimes      # bench extra only
    .venv/bin/python bench/clv_holdout.py --cdnow ../shared/data/cdnow-fader-hardie --seeds 201 202 203

CDNOW: all 23,570 customers of the master file, calibrate weeks 1-39 (orders before
1997-10-01), forecast weeks 40-78 (to 1998-07-01). Simulated programs: perkrec.simulate(n_users,
seed) (orders with benefits issued, viewed, claimed and redeemed over 180 days), calibrate on the
first 120 days, forecast the last 60. Every forecast is scored by perkrec.holdout_errors on the
same calibration members: per-member MAE and Spearman of holdout purchases (occasions: distinct
order days) and spend, and the aggregate (total) error of each. perkrec "auto" fits on the log before the calibration end only; its
backtest (inside the calibration period) picks the forecast, and its choice and backtest errors
are printed. lifetimes fits its BG/NBD, MBG/NBD and Pareto/NBD with its Gamma-Gamma on the same
calibration summaries.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np
import pandas as pd

import perkrec

LIFETIMES = {
    "BG/NBD": "BetaGeoFitter",
    "MBG/NBD": "ModifiedBetaGeoFitter",
    "Pareto/NBD": "ParetoNBDFitter",
}
METRICS = ("mae_purchases", "mae_spend", "spearman_purchases", "spearman_spend")


def cdnow_log(folder: str) -> tuple:
    raw = pd.read_csv(
        os.path.join(folder, "CDNOW_master.txt.gz"),
        sep=r"\s+",
        header=0,
        names=["user", "date", "cds", "amount"],
    )
    frame = pd.DataFrame(
        {
            "user": raw["user"],
            "benefit": None,
            "event_type": "ordered",
            "timestamp": pd.to_datetime(raw["date"].astype(str), format="%Y%m%d", utc=True),
            "order_amount": raw["amount"],
        }
    )
    return (
        perkrec.EventLog.from_frame(frame),
        pd.Timestamp("1997-10-01", tz="UTC"),
        pd.Timestamp("1998-07-01", tz="UTC"),
    )


def program_log(n_users: int, seed: int) -> tuple:
    program = perkrec.simulate(n_users=n_users, seed=seed)
    start = program.events.to_frame()["timestamp"].min().floor("D")
    return program.events, start + pd.Timedelta(days=120), start + pd.Timedelta(days=180)


def lifetimes_forecasts(split: pd.DataFrame, horizon: float) -> dict:
    """lifetimes' fitters with its Gamma-Gamma on the calibration summaries: name -> (forecast
    frame with NaN kept, or the failure message; seconds). Empty when lifetimes is absent."""
    try:
        import lifetimes
    except ImportError:
        return {}
    out = {}
    repeat = split[(split["x"] > 0) & (split["monetary"] > 0)]
    for name, fitter in LIFETIMES.items():
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                purchase = getattr(lifetimes, fitter)().fit(split["x"], split["t_x"], split["T"])
                spend = lifetimes.GammaGammaFitter().fit(repeat["x"], repeat["monetary"])
                expected = np.asarray(
                    purchase.conditional_expected_number_of_purchases_up_to_time(
                        horizon, split["x"], split["t_x"], split["T"]
                    ),
                    dtype=float,
                )
                value = np.asarray(
                    spend.conditional_expected_average_profit(split["x"], split["monetary"]),
                    dtype=float,
                )
            except Exception as exc:  # noqa: BLE001 - a peer's failure is a result
                out[f"lifetimes {name}"] = (
                    f"failed: {type(exc).__name__}: {exc}"[:160],
                    time.perf_counter() - t0,
                )
                continue
        pred = pd.DataFrame(
            {"expected_purchases": expected, "clv": expected * value}, index=split.index
        )
        out[f"lifetimes {name}"] = (pred, time.perf_counter() - t0)
    return out


def evaluate(data: str, log: perkrec.EventLog, start, end, threads: int) -> list:
    split = perkrec.calibration_holdout(log, start, end, time_unit="week", num_threads=threads)
    horizon = split.attrs["duration"]
    t0 = time.perf_counter()
    auto = perkrec.CLVModel(
        model="auto", time_unit="week", interval_draws=0, num_threads=threads
    ).fit(log, start)
    pred = auto.predict(horizon)
    seconds = time.perf_counter() - t0
    pred.index = pred.index.astype(split.index.dtype)
    sel = auto.selection_
    print(
        json.dumps(
            {
                "data": data,
                "members": len(split),
                "holdout_weeks": round(horizon, 3),
                "auto_choice": sel["choice"],
                "backtest_weeks": round(sel["horizon"], 3),
                "backtest_members": sel["members"],
                "purchase_model": auto.params_["model"],
                "backtest": {
                    k: {m: None if v is None else round(v, 4) for m, v in c.items()}
                    for k, c in sel["candidates"].items()
                },
                "fit_predict_s": round(seconds, 3),
            }
        )
    )
    forecasts = {
        f"perkrec auto ({sel['choice']})": (pred, seconds),
        "naive own rate": (perkrec.naive_forecast(split, horizon), 0.0),
    }
    forecasts.update(lifetimes_forecasts(split, horizon))
    rows = []
    for name, (forecast, took) in forecasts.items():
        if isinstance(forecast, str):
            rows.append({"data": data, "forecast": name, "status": forecast})
        else:
            errors = perkrec.holdout_errors(split, forecast.fillna(0.0))
            rows.append(
                {
                    "data": data,
                    "forecast": name,
                    **{m: round(errors[m], 4) for m in METRICS},
                    "aggregate_purchases_error": round(errors["aggregate_purchases_error"], 4),
                    "aggregate_spend_error": round(errors["aggregate_spend_error"], 4),
                    "finite": bool(
                        np.isfinite(forecast[["expected_purchases", "clv"]].to_numpy()).all()
                    ),
                    "fit_predict_s": round(took, 2),
                }
            )
        print(json.dumps(rows[-1]))
    ours, others = rows[0], [r for r in rows[1:] if "status" not in r]
    verdict = {
        m: (ours[m] <= min(r[m] for r in others))
        if m.startswith("mae")
        else (ours[m] >= max(r[m] for r in others))
        for m in METRICS
    }
    print(json.dumps({"data": data, "auto_meets_target": verdict}))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cdnow", default=None, help="folder of ../shared/data/cdnow-fader-hardie")
    parser.add_argument("--seeds", type=int, nargs="*", default=[201, 202, 203])
    parser.add_argument("--members", type=int, default=20_000, help="members per simulated program")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    print(f"perkrec {perkrec.__version__}, {os.cpu_count()} CPUs")
    rows = []
    if args.cdnow:
        rows += evaluate("CDNOW", *cdnow_log(args.cdnow), args.threads)
    for seed in args.seeds:
        rows += evaluate(f"simulated seed {seed}", *program_log(args.members, seed), args.threads)
    table = pd.DataFrame(rows).set_index(["data", "forecast"])
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table)


if __name__ == "__main__":
    main()
