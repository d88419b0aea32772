"""BPR with uniform vs popularity-proportional negative sampling, same data and splits as
bench/cf_vs_implicit.py (MovieLens 100k and latest-small: per-member temporal 80/20 split;
the simulator: the last 30 days), several seeds. Reports NDCG@10, precision@10 and MAP@10 of
members with a history and something to predict (already-seen benefits filtered).

    .venv/bin/python bench/bpr_negatives.py [--seeds 0,1,2] [--threads 0]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perkrec  # noqa: E402
from cf_vs_implicit import DATA, K, evaluate, movielens, simulator  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    datasets = {}
    for name, loader in (
        ("movielens-100k", perkrec.datasets.load_movielens_100k),
        ("movielens-latest-small", perkrec.datasets.load_movielens_latest_small),
    ):
        if (DATA / name).is_dir():
            datasets[name] = movielens(name, loader)
    datasets["simulator (20k members)"] = simulator()
    print(
        f"perkrec {perkrec.__version__}; {platform.processor() or platform.machine()}; seeds {seeds}"
    )
    rows = []
    started = time.perf_counter()
    for name, (train, test) in datasets.items():
        users = np.flatnonzero((np.diff(test.indptr) > 0) & (np.diff(train.indptr) > 0)).astype(
            np.int32
        )
        for sampling in ("uniform", "popularity"):
            for seed in seeds:
                t0 = time.perf_counter()
                model = perkrec.BPR(
                    factors=64,
                    learning_rate=0.01,
                    regularization=0.01,
                    iterations=100,
                    negative_sampling=sampling,
                    seed=seed,
                    num_threads=args.threads,
                ).fit(train)
                fit_s = time.perf_counter() - t0
                ids, _ = model.recommend(users, train[users], n=K)
                rows.append(
                    {
                        "dataset": name,
                        "negatives": sampling,
                        "seed": seed,
                        **evaluate(ids, test[users]),
                        "fit s": fit_s,
                    }
                )
    df = pd.DataFrame(rows)
    summary = df.groupby(["dataset", "negatives"], sort=False).agg(
        ndcg=("ndcg@10", "mean"),
        ndcg_sd=("ndcg@10", "std"),
        precision=("precision@10", "mean"),
        map=("map@10", "mean"),
        fit_s=("fit s", "mean"),
    )
    pd.set_option("display.width", 200)
    print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
