"""Where the naive forecast's Spearman of spend comes from on CDNOW: the one-time buyers.

    .venv/bin/python bench/clv_cdnow_ties.py --cdnow ../shared/data/cdnow-fader-hardie

Same data and split as bench/clv_holdout.py (all 23,570 customers, calibrate weeks 1-39,
forecast weeks 40-78). For each forecast (perkrec's Pareto/NBD, MBG/NBD and BG/NBD with
Gamma-Gamma, the regression, and the naive own rate) it prints the Spearman correlation of the
forecast spend with the holdout spend over all members, over the repeat buyers (x >= 1) and over
the one-time buyers (x = 0), and the same forecast with the one-time buyers' forecasts replaced
by their mean (tied, as the naive forecast ties them at 0). A diagnosis, not a forecaster: the
tied variant is not offered by perkrec.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import perkrec  # noqa: E402
from clv_holdout import cdnow_log  # noqa: E402


def spearman(forecast: np.ndarray, actual: np.ndarray) -> float:
    if np.ptp(forecast) == 0:
        return float("nan")  # constant forecast: undefined
    return float(spearmanr(forecast, actual).correlation)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cdnow", required=True, help="folder of ../shared/data/cdnow-fader-hardie"
    )
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    log, start, end = cdnow_log(args.cdnow)
    split = perkrec.calibration_holdout(log, start, end, time_unit="week", num_threads=args.threads)
    horizon = split.attrs["duration"]
    actual = split["holdout_spend"].to_numpy()
    one_time = split["x"].to_numpy() == 0
    forecasts = {}
    for model in ("paretonbd", "mbgnbd", "bgnbd", "regression"):
        fitted = perkrec.CLVModel(
            model=model, time_unit="week", interval_draws=0, num_threads=args.threads
        ).fit(log, start)
        forecasts[model] = fitted.predict(horizon)
    forecasts["naive"] = perkrec.naive_forecast(split, horizon)
    print(
        json.dumps(
            {
                "members": len(split),
                "one_time_buyers": int(one_time.sum()),
                "share_with_holdout_orders": {
                    "one_time": round(float((actual[one_time] > 0).mean()), 4),
                    "repeat": round(float((actual[~one_time] > 0).mean()), 4),
                },
            }
        )
    )
    for name, frame in forecasts.items():
        frame.index = frame.index.astype(split.index.dtype)
        spend = frame["clv"].reindex(split.index).fillna(0.0).to_numpy()
        tied = spend.copy()
        tied[one_time] = spend[one_time].mean()
        print(
            json.dumps(
                {
                    "forecast": name,
                    "spearman_all": round(spearman(spend, actual), 4),
                    "spearman_repeat_buyers": round(
                        spearman(spend[~one_time], actual[~one_time]), 4
                    ),
                    "spearman_one_time_buyers": round(
                        spearman(spend[one_time], actual[one_time]), 4
                    ),
                    "spearman_all_one_time_tied": round(spearman(tied, actual), 4),
                }
            )
        )


if __name__ == "__main__":
    main()
