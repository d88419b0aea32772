"""Member value at scale: summaries + BG/NBD + Gamma-Gamma + predict on simulated members, and
lifetimes (a bench extra, never a runtime dependency) on the same work when it is installed.

    .venv/bin/python bench/clv.py --members 1000000 10000000 --lifetimes-members 1000000 \
        --cdnow ../shared/data/cdnow-fader-hardie
    .venv/bin/python bench/clv.py --members --cdnow ../shared/data/cdnow-fader-hardie --holdout

With --cdnow: BG/NBD + Gamma-Gamma on the published summaries, then every purchase model (BG/NBD,
MBG/NBD, Pareto/NBD) next to lifetimes' fitter of the same model, and BG/BB on the donations data
that lifetimes ships; with --holdout also the
literature's evaluation on all 23,570 customers (weeks 1-39 calibrate, 40-78 holdout): per-member
MAE, Spearman and aggregate error of purchases and spend for perkrec's models, the naive own-rate
forecast and lifetimes' models.

Members are simulated by BG/NBD (per day, one year) with Gamma-Gamma order values, vectorized
in numpy; the log holds only `ordered` events. perkrec times: EventLog.from_arrays (ingest,
reported apart), then CLVModel(model="bgnbd", time_unit="week").fit(log, cut) (summaries + BG/NBD + Gamma-Gamma)
and predict(52) without intervals (interval_draws=0), and with the default 200 draws at the
--interval-members sizes.
lifetimes times: summary_data_from_transaction_data (freq "D", then weeks), BetaGeoFitter.fit,
GammaGammaFitter.fit on the repeat buyers, and conditional_expected_number_of_purchases_up_to_time
+ conditional_expected_average_profit (the same predictions without intervals).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import pandas as pd

import perkrec

DAY = 86400
BASE = int(pd.Timestamp("2025-01-01", tz="UTC").value // 10**9)


def simulate(
    n: int, seed: int, days: int = 365, r=0.6, alpha=25.0, a=0.7, b=2.5, p=5.0, q=4.0, gamma=40.0
):
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, size=n) / alpha
    drop = rng.beta(a, b, size=n)
    nu = rng.gamma(q, size=n) / gamma
    start = rng.integers(0, days // 2, size=n).astype(np.float64)
    users = [np.arange(n, dtype=np.int32)]
    times = [start.copy()]
    t = start.copy()
    active = np.arange(n)
    while active.size:
        t_active = t[active] + rng.exponential(size=active.size) / lam[active]
        ok = t_active < days
        active, t_active = active[ok], t_active[ok]
        t[active] = t_active
        users.append(active.astype(np.int32))
        times.append(t_active)
        active = active[rng.random(active.size) >= drop[active]]
    user = np.concatenate(users)
    day = np.floor(np.concatenate(times)).astype(np.int64)
    amount = (rng.gamma(p, size=user.size) / nu[user]).astype(np.float32)
    timestamp = BASE + day * DAY + 3600
    return user, timestamp, amount, BASE + days * DAY


def run_perkrec(n: int, seed: int, threads: int, intervals: bool) -> dict:
    user, timestamp, amount, cut = simulate(n, seed)
    t0 = time.perf_counter()
    log = perkrec.EventLog.from_arrays(
        user,
        np.full(user.size, -1, np.int32),
        np.full(user.size, 5, np.uint8),
        timestamp,
        order_amount=amount,
        n_users=n,
        n_benefits=0,
        num_threads=threads,
    )
    ingest = time.perf_counter() - t0
    model = perkrec.CLVModel(model="bgnbd", time_unit="week", num_threads=threads, interval_draws=0)
    t0 = time.perf_counter()
    model.fit(log, cut)
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = model.predict(52)
    predict = time.perf_counter() - t0
    assert np.isfinite(pred[["p_alive", "expected_purchases", "clv"]].to_numpy()).all()
    params = model.params_
    predict_interval = None
    if intervals:
        model.set_params(interval_draws=None, num_threads=threads).fit(log, cut)
        t0 = time.perf_counter()
        pred_i = model.predict(52)
        predict_interval = time.perf_counter() - t0
        assert np.isfinite(pred_i[["clv_lower", "clv_upper"]].to_numpy()).all()
    return {
        "members": n,
        "events": int(user.size),
        "distinct_triples": int(model.summary()[["x", "t_x", "T"]].drop_duplicates().shape[0]),
        "repeat_buyers": int(params["spend"]["members"]),
        "ingest_s": ingest,
        "fit_s": fit,
        "predict_s": predict,
        "total_s": fit + predict,
        "predict_with_200_draw_intervals_s": predict_interval,
        "params": {k: round(params[k], 4) for k in ("r", "alpha", "a", "b", "p", "q", "gamma")},
        "frame": (user, timestamp, amount, cut),
    }


def run_lifetimes(user, timestamp, amount, cut) -> dict:
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    frame = pd.DataFrame(
        {"user": user, "date": pd.to_datetime(timestamp, unit="s"), "amount": amount}
    )
    end = pd.to_datetime(cut - DAY, unit="s")
    t0 = time.perf_counter()
    s = summary_data_from_transaction_data(
        frame, "user", "date", monetary_value_col="amount", observation_period_end=end, freq="D"
    )
    s[["recency", "T"]] /= 7.0
    summary = time.perf_counter() - t0
    t0 = time.perf_counter()
    bg = BetaGeoFitter(penalizer_coef=0.0).fit(s["frequency"], s["recency"], s["T"])
    repeat = s[(s["frequency"] > 0) & (s["monetary_value"] > 0)]
    gg = GammaGammaFitter(penalizer_coef=0.0).fit(repeat["frequency"], repeat["monetary_value"])
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    purchases = bg.conditional_expected_number_of_purchases_up_to_time(
        52, s["frequency"], s["recency"], s["T"]
    )
    value = gg.conditional_expected_average_profit(s["frequency"], s["monetary_value"])
    clv = np.asarray(purchases) * np.asarray(value)
    predict = time.perf_counter() - t0
    return {
        "summary_s": summary,
        "fit_s": fit,
        "predict_s": predict,
        "total_s": summary + fit + predict,
        "finite": bool(np.isfinite(clv).all()),
        "params": {
            **{k: round(float(v), 4) for k, v in bg.params_.items()},
            **{k: round(float(v), 4) for k, v in gg.params_.items()},
        },
    }


LIFETIMES_FITTERS = {
    "bgnbd": "BetaGeoFitter",
    "mbgnbd": "ModifiedBetaGeoFitter",
    "paretonbd": "ParetoNBDFitter",
}


def cdnow_models(folder: str) -> None:
    """Every purchase model on the published 39-week CDNOW summaries, perkrec and lifetimes:
    parameters, their largest relative difference, log-likelihood (perkrec's) and fit time."""
    import warnings

    summary = pd.read_csv(os.path.join(folder, "cdnow_customers_summary_with_transactions.csv"))
    for name, fitter in LIFETIMES_FITTERS.items():
        t0 = time.perf_counter()
        model = perkrec.CLVModel(model=name, time_unit="week", interval_draws=0).fit_summary(
            summary.rename(columns={"zbar": "monetary"})
        )
        seconds = time.perf_counter() - t0
        p = model.params_
        names = list(p["purchase"]["standard_errors"])
        row = {
            "library": "perkrec",
            "model": name,
            "fit_s": round(seconds, 4),
            **{k: round(p[k], 6) for k in names},
            "log_likelihood": round(p["purchase"]["log_likelihood"], 3),
            "converged": p["purchase"]["converged"],
        }
        print(json.dumps(row))
        try:
            import lifetimes
        except ImportError:
            continue
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                theirs = getattr(lifetimes, fitter)().fit(
                    summary["x"], summary["t_x"], summary["T"]
                )
                params = {k: float(v) for k, v in theirs.params_.items()}
                status = "converged"
            except Exception as exc:  # noqa: BLE001 - a peer's failure is a result
                params, status = {}, f"failed: {type(exc).__name__}: {exc}"[:200]
        seconds = time.perf_counter() - t0
        worst = max((abs(p[k] / params[k] - 1) for k in names if k in params), default=float("nan"))
        print(
            json.dumps(
                {
                    "library": "lifetimes",
                    "model": fitter,
                    "fit_s": round(seconds, 4),
                    "status": status,
                    **{k: round(v, 6) for k, v in params.items()},
                    "max_relative_difference_to_perkrec": float(f"{worst:.2e}"),
                }
            )
        )


def donations_bgbb() -> None:
    """BG/BB on Fader, Hardie and Shang's donations data (11,104 donors, 6 opportunities) as
    lifetimes ships it: perkrec and lifetimes' BetaGeoBetaBinomFitter."""
    try:
        import lifetimes
        from lifetimes.datasets import load_donations
    except ImportError:
        return
    data = load_donations()
    rows = data.loc[data.index.repeat(data["weights"])]
    summary = pd.DataFrame(
        {
            "x": rows["frequency"].to_numpy(float),
            "t_x": rows["recency"].to_numpy(float),
            "T": rows["periods"].to_numpy(float),
        }
    )
    t0 = time.perf_counter()
    ours = perkrec.CLVModel(
        model="bgbb", time_unit="week", occasion="week", interval_draws=0
    ).fit_summary(summary)
    seconds = time.perf_counter() - t0
    p = ours.params_
    names = ("alpha", "beta", "gamma", "delta")
    print(
        json.dumps(
            {
                "library": "perkrec",
                "model": "bgbb",
                "data": "donations 11,104 x 6",
                "fit_s": round(seconds, 4),
                **{k: round(p[k], 6) for k in names},
                "log_likelihood": round(p["purchase"]["log_likelihood"], 3),
            }
        )
    )
    t0 = time.perf_counter()
    theirs = lifetimes.BetaGeoBetaBinomFitter().fit(
        data["frequency"], data["recency"], data["periods"], data["weights"]
    )
    seconds = time.perf_counter() - t0
    worst = max(abs(p[k] / float(theirs.params_[k]) - 1) for k in names)
    print(
        json.dumps(
            {
                "library": "lifetimes",
                "model": "BetaGeoBetaBinomFitter",
                "fit_s": round(seconds, 4),
                **{k: round(float(theirs.params_[k]), 6) for k in names},
                "max_relative_difference_to_perkrec": float(f"{worst:.2e}"),
            }
        )
    )


def cdnow_holdout(folder: str, threads: int) -> None:
    """CDNOW, all 23,570 customers: calibrate on weeks 1-39, forecast weeks 40-78 per member
    (purchases and spend); perkrec's three models, the naive own-rate forecast, and lifetimes'
    three fitters (with its Gamma-Gamma) on the same calibration summaries (bench/clv_holdout.py
    adds model="auto" and simulated programs)."""
    from clv_holdout import cdnow_log, lifetimes_forecasts

    log, start, end = cdnow_log(folder)
    t0 = time.perf_counter()
    split = perkrec.calibration_holdout(log, start, end, time_unit="week", num_threads=threads)
    split_s = time.perf_counter() - t0
    horizon = split.attrs["duration"]
    print(
        json.dumps(
            {
                "data": "CDNOW master",
                "members": len(split),
                "calibration_weeks": 39,
                "holdout_weeks": round(horizon, 3),
                "holdout_purchases": float(split["holdout_purchases"].sum()),
                "calibration_holdout_s": round(split_s, 3),
            }
        )
    )

    def show(library, model, errors, seconds, **extra):
        print(
            json.dumps(
                {
                    "library": library,
                    "model": model,
                    "fit_predict_s": round(seconds, 3),
                    **{k: round(v, 4) if isinstance(v, float) else v for k, v in errors.items()},
                    **extra,
                }
            )
        )

    for name in LIFETIMES_FITTERS:
        t0 = time.perf_counter()
        model = perkrec.CLVModel(
            model=name, time_unit="week", interval_draws=0, num_threads=threads
        ).fit(log, start)
        pred = model.predict(horizon)
        seconds = time.perf_counter() - t0
        pred.index = pred.index.astype(split.index.dtype)
        show("perkrec", name, perkrec.holdout_errors(split, pred), seconds)
    show(
        "baseline",
        "naive own rate",
        perkrec.holdout_errors(split, perkrec.naive_forecast(split, horizon)),
        0.0,
    )
    forecasts = lifetimes_forecasts(split, horizon)
    if not forecasts:
        print(json.dumps({"library": "lifetimes", "skipped": "not installed"}))
    for name, (pred, seconds) in forecasts.items():
        if isinstance(pred, str):
            print(json.dumps({"library": "lifetimes", "model": name, "status": pred}))
            continue
        show(
            "lifetimes",
            name,
            perkrec.holdout_errors(split, pred.fillna(0.0)),
            seconds,
            finite=bool(np.isfinite(pred.to_numpy()).all()),
        )


def cdnow(folder: str) -> None:
    """BG/NBD and Gamma-Gamma on the published 39-week CDNOW summaries, perkrec and lifetimes."""
    summary = pd.read_csv(os.path.join(folder, "cdnow_customers_summary_with_transactions.csv"))
    t0 = time.perf_counter()
    model = perkrec.CLVModel(time_unit="week").fit_summary(
        summary.rename(columns={"zbar": "monetary"})
    )
    seconds = time.perf_counter() - t0
    p = model.params_
    print(
        json.dumps(
            {
                "library": "perkrec",
                "data": "CDNOW 2,357 x 39 weeks",
                "fit_s": round(seconds, 4),
                **{k: round(p[k], 4) for k in ("r", "alpha", "a", "b", "p", "q", "gamma")},
                "log_likelihood": round(p["purchase"]["log_likelihood"], 2),
                "standard_errors": {
                    k: round(v, 4)
                    for k, v in {
                        **p["purchase"]["standard_errors"],
                        **p["spend"]["standard_errors"],
                    }.items()
                },
                "frequency_spend_correlation": round(p["frequency_spend_correlation"], 4),
            }
        )
    )
    try:
        from lifetimes import BetaGeoFitter, GammaGammaFitter
    except ImportError:
        return
    t0 = time.perf_counter()
    bg = BetaGeoFitter().fit(summary["x"], summary["t_x"], summary["T"])
    repeat = summary[summary["x"] > 0]
    gg = GammaGammaFitter().fit(repeat["x"], repeat["zbar"])
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "library": "lifetimes",
                "data": "CDNOW 2,357 x 39 weeks",
                "fit_s": round(seconds, 4),
                **{k: round(float(v), 4) for k, v in bg.params_.items()},
                **{k: round(float(v), 4) for k, v in gg.params_.items()},
                "standard_errors": {
                    k: round(float(v), 4)
                    for k, v in {
                        **bg.summary["se(coef)"].to_dict(),
                        **gg.summary["se(coef)"].to_dict(),
                    }.items()
                },
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--lifetimes-members", type=int, nargs="*", default=[])
    parser.add_argument(
        "--interval-members",
        type=int,
        nargs="*",
        default=[1_000_000],
        help="sizes at which predict with the default 200-draw intervals is timed too",
    )
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cdnow", default=None, help="folder of ../shared/data/cdnow-fader-hardie")
    parser.add_argument(
        "--holdout",
        action="store_true",
        help="with --cdnow: the weeks 40-78 holdout on all 23,570 customers",
    )
    args = parser.parse_args()
    print(
        f"perkrec {perkrec.__version__}, {os.cpu_count()} CPUs, threads={args.threads or 'default'}"
    )
    if args.cdnow:
        cdnow(args.cdnow)
        cdnow_models(args.cdnow)
        donations_bgbb()
        if args.holdout:
            cdnow_holdout(args.cdnow, args.threads)
    for n in args.members:
        out = run_perkrec(n, args.seed, args.threads, n in args.interval_members)
        frame = out.pop("frame")
        print(json.dumps({"library": "perkrec", **out}))
        if n in args.lifetimes_members:
            try:
                import lifetimes  # noqa: F401
            except ImportError:
                print(
                    json.dumps({"library": "lifetimes", "members": n, "skipped": "not installed"})
                )
                continue
            res = run_lifetimes(*frame)
            print(
                json.dumps(
                    {
                        "library": "lifetimes",
                        "members": n,
                        **res,
                        "speedup_total": round(res["total_s"] / out["total_s"], 1),
                    }
                )
            )


if __name__ == "__main__":
    main()
