"""Off-policy evaluation on the Open Bandit Dataset sample (ZOZOTOWN, "women" campaign): the
click rate of the Bernoulli Thompson-sampling (BTS) policy estimated from the uniform-random
policy's logs, against the BTS logs' own mean click rate (the on-policy truth), with
perkrec.off_policy_value and the same estimators written in plain numpy.

    .venv/bin/python bench/ope_open_bandit.py [--data ../shared/data/open-bandit-dataset-women]
                                              [--tile 100]

Target policy: BTS's action distribution per position, pi(item | position) = the share of the
BTS logs' impressions at that position that show the item (the empirical marginal; BTS in this
dataset does not use the user context). Logged propensity: the random logs' propensity_score.
Reward model for DM / DR: the random logs' click rate per (position, item), shrunk towards the
position's rate with 10 pseudo-impressions (fitted on the same logs, so DM and DR here show the
mechanics rather than an honest held-out model). Timing: both sides on the logs tiled --tile
times, best of 3.
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

import perkrec

REPO = Path(__file__).resolve().parents[1]
Z95 = 1.959963984540054


def load(folder: Path):
    random = pd.read_csv(
        folder / "random-women.csv.gz", usecols=["item_id", "position", "click", "propensity_score"]
    )
    bts = pd.read_csv(
        folder / "bts-women.csv.gz", usecols=["item_id", "position", "click", "propensity_score"]
    )
    return random, bts


def prepare(random: pd.DataFrame, bts: pd.DataFrame):
    """Per-row arrays: reward, logged propensity, target propensity, q-hat, E_target[q-hat]."""
    n_items = int(max(random.item_id.max(), bts.item_id.max())) + 1
    positions = sorted(random.position.unique())
    target = np.zeros((max(positions) + 1, n_items))
    for pos in positions:
        counts = np.bincount(bts.item_id[bts.position == pos], minlength=n_items)
        target[pos] = counts / counts.sum()
    q = np.zeros_like(target)
    for pos in positions:
        at = random[random.position == pos]
        clicks = np.bincount(at.item_id, weights=at.click, minlength=n_items)
        shown = np.bincount(at.item_id, minlength=n_items)
        q[pos] = (clicks + 10 * at.click.mean()) / (shown + 10)
    pos, item = random.position.to_numpy(), random.item_id.to_numpy()
    return (
        random.click.to_numpy(np.float64),
        random.propensity_score.to_numpy(np.float64),
        target[pos, item],
        q[pos, item],
        (target * q).sum(axis=1)[pos],
    )


def numpy_estimate(name, r, p, pi, q, e):
    w = pi / p
    n = len(r)
    if name == "snips":
        value = (w * r).sum() / w.sum()
        terms = w * (r - value) / w.mean()
        return value, Z95 * terms.std(ddof=1) / math.sqrt(n)
    terms = {"ips": w * r, "dm": e, "dr": e + w * (r - q)}[name]
    return terms.mean(), Z95 * terms.std(ddof=1) / math.sqrt(n)


def best_of(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--data", default=str(REPO.parent / "shared" / "data" / "open-bandit-dataset-women")
    )
    parser.add_argument("--tile", type=int, default=100)
    args = parser.parse_args()
    random, bts = load(Path(args.data))
    r, p, pi, q, e = prepare(random, bts)
    truth = bts.click.mean()
    truth_half = Z95 * bts.click.std(ddof=1) / math.sqrt(len(bts))
    print(f"machine: {platform.processor() or platform.machine()}, perkrec {perkrec.__version__}")
    print(
        f"random logs {len(random)} rows (mean click {random.click.mean():.5f}); "
        f"BTS logs {len(bts)} rows: on-policy click rate {truth:.5f} +- {truth_half:.5f} (95%)"
    )
    print(
        "| estimator | perkrec value [95% interval] | ESS | numpy value | max abs diff (value, half-width) |"
    )
    print("|---|---|---|---|---|")
    for name in ("ips", "snips", "dm", "dr"):
        est = perkrec.off_policy_value(r, p, pi, name, reward_estimate=q, target_reward_estimate=e)
        value, half = numpy_estimate(name, r, p, pi, q, e)
        diff = max(abs(est.value - value), abs((est.upper - est.value) - half))
        print(
            f"| {name} | {est.value:.5f} [{est.lower:.5f}, {est.upper:.5f}] | {est.effective_sample_size:.0f} | "
            f"{value:.5f} | {diff:.1e} |"
        )
    tiled = [np.tile(a, args.tile) for a in (r, p, pi, q, e)]
    n = len(tiled[0])
    print(f"\ntiming, {n} rows, best of 3 (perkrec threads: default)")
    print("| estimator | perkrec | numpy |")
    print("|---|---|---|")
    for name in ("ips", "snips", "dr"):
        t_mine = best_of(
            lambda name=name: perkrec.off_policy_value(
                *tiled[:3], name, reward_estimate=tiled[3], target_reward_estimate=tiled[4]
            )
        )
        t_numpy = best_of(lambda name=name: numpy_estimate(name, *tiled))
        print(f"| {name} | {t_mine * 1e3:.1f} ms | {t_numpy * 1e3:.1f} ms |")


if __name__ == "__main__":
    main()
