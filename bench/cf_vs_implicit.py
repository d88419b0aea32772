"""Collaborative filtering: perkrec vs implicit (benfred/implicit), same data, same
hyper-parameters, same threads, in one run.

    .venv/bin/python bench/cf_vs_implicit.py quality            # ML-100k, ML-latest-small, simulator
    .venv/bin/python bench/cf_vs_implicit.py speed [--scale 1.0]  # synthetic power-law matrix
    .venv/bin/python bench/cf_vs_implicit.py speed --parts recommend --simd avx2  # force a path
    .venv/bin/python bench/cf_vs_implicit.py all

Confidence: perkrec uses c = 1 + alpha * value; implicit uses c = value (its alpha multiplies
the matrix). implicit is therefore given the matrix 1 + alpha * value with its alpha = 1, which
is the same objective. OPENBLAS_NUM_THREADS=1 is set before numpy is imported, as implicit's
documentation advises; both libraries get the same num_threads (default 2).

Speed: at --scale 1 the synthetic matrix has 500k members, 50k benefits and about 20M
non-zeros with power-law member activity and benefit popularity; --scale s multiplies all three
by s. Peak memory is measured in a fresh subprocess per library (ru_maxrss after loading the
same matrix and running ALS fit + batch recommend).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402

import perkrec  # noqa: E402

warnings.filterwarnings("ignore", category=RuntimeWarning, module="perkrec")
REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PERKREC_DATA_DIR", REPO.parent / "shared" / "data"))
K = 10


def implicit_modules():
    import implicit
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking
    from implicit.nearest_neighbours import BM25Recommender

    return implicit, AlternatingLeastSquares, BayesianPersonalizedRanking, BM25Recommender


def implicit_confidence(matrix: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    out = matrix.astype(np.float32, copy=True)
    out.data = 1.0 + alpha * out.data
    return out


# --------------------------------------------------------------------------------------------
# Quality
def temporal_split(events: pd.DataFrame, n_users: int, n_benefits: int, test_share: float = 0.2):
    """Per-member temporal holdout: each member's last ``test_share`` of interactions (by
    time, at least one; members with 5 or more) is the test, the earlier ones the train;
    test keeps only pairs new to the member. Values: 1 per (member, benefit) pair."""
    events = events.sort_values(["user", "timestamp"], kind="stable")
    position = events.groupby("user").cumcount()
    count = events.groupby("user")["user"].transform("size")
    held = np.maximum(1, np.floor(count * test_share)).astype(int)
    is_test = (count >= 5) & (position >= count - held)
    train = events[~is_test]
    test = events[is_test]

    def pairs(frame):
        m = sp.csr_matrix(
            (
                np.ones(len(frame), np.float32),
                (frame["user"].to_numpy(), frame["benefit"].to_numpy()),
            ),
            shape=(n_users, n_benefits),
        )
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    train_m, test_m = pairs(train), pairs(test)
    test_m = test_m - test_m.multiply(train_m > 0)
    test_m.eliminate_zeros()
    return train_m.tocsr(), test_m.tocsr()


def movielens(name: str, loader):
    ds = loader(DATA / name, min_rating=4)
    frame = ds.events.to_frame(external_ids=False)
    return temporal_split(frame, ds.events.n_users, ds.events.n_benefits)


def simulator():
    program = perkrec.simulate(n_users=20000, seed=42)
    log = program.events
    start, end = log.time_range
    cut = end - pd.Timedelta(days=30)
    train, test = perkrec.split_by_time(log, cut)
    train_m = perkrec.interaction_matrix(train, half_life_days=60, cut_time=cut)
    test_m = perkrec.interaction_matrix(test, {"viewed": 0, "claimed": 1, "redeemed": 1})
    return train_m, test_m


def evaluate(ids, test_rows) -> dict:
    r = perkrec.ranking_metrics(test_rows, ids, k=K)
    return {"ndcg@10": r["ndcg"], "precision@10": r["precision"], "map@10": r["map"]}


def quality(threads: int) -> list:
    implicit, IALS, IBPR, IBM25 = implicit_modules()
    datasets = {}
    for name, loader in (
        ("movielens-100k", perkrec.datasets.load_movielens_100k),
        ("movielens-latest-small", perkrec.datasets.load_movielens_latest_small),
    ):
        if (DATA / name).is_dir():
            datasets[name] = movielens(name, loader)
        else:
            print(f"skipping {name}: {DATA / name} is absent")
    datasets["simulator (20k members)"] = simulator()
    als = dict(factors=64, regularization=0.05, iterations=15, alpha=2.0)
    bpr = dict(factors=64, learning_rate=0.01, regularization=0.01, iterations=100)
    rows = []
    for name, (train, test) in datasets.items():
        # Members with something to predict and a history to predict it from (members new in
        # the test period are a cold-start problem for any CF model).
        users = np.flatnonzero((np.diff(test.indptr) > 0) & (np.diff(train.indptr) > 0)).astype(
            np.int32
        )
        seen = train[users]
        relevant = test[users]
        print(
            f"{name}: {train.shape[0]} members x {train.shape[1]} benefits, train nnz {train.nnz}, "
            f"{len(users)} members evaluated"
        )
        configs = []
        for cg in (3, 0):
            label = "ALS cg" if cg else "ALS cholesky"
            configs.append(
                (
                    label,
                    lambda cg=cg: perkrec.ALS(cg_steps=cg, num_threads=threads, **als).fit(train),
                    lambda cg=cg: IALS(
                        factors=als["factors"],
                        regularization=als["regularization"],
                        iterations=als["iterations"],
                        use_cg=bool(cg),
                        alpha=1.0,
                        num_threads=threads,
                        random_state=42,
                    ),
                )
            )
        configs.append(
            (
                "BPR",
                lambda: perkrec.BPR(num_threads=threads, **bpr).fit(train),
                lambda: IBPR(num_threads=threads, random_state=42, **bpr),
            )
        )
        configs.append(
            (
                "ItemKNN bm25",
                lambda: perkrec.ItemKNN(
                    weighting="bm25", neighbours=20, k1=1.2, b=0.75, num_threads=threads
                ).fit(train),
                lambda: IBM25(K=20, K1=1.2, B=0.75, num_threads=threads),
            )
        )
        for label, ours_fit, theirs_make in configs:
            t0 = time.perf_counter()
            ours = ours_fit()
            ours_fit_s = time.perf_counter() - t0
            ours_ids, _ = ours.recommend(users, seen, n=K)
            theirs = theirs_make()
            t0 = time.perf_counter()
            data = implicit_confidence(train, als["alpha"]) if label.startswith("ALS") else train
            try:
                theirs.fit(data, show_progress=False)
            except Exception as exc:  # implicit's float Cholesky can fail on ill-conditioned data
                a = evaluate(ours_ids, relevant)
                rows.append(
                    {
                        "dataset": name,
                        "model": label,
                        **{f"perkrec {k}": v for k, v in a.items()},
                        "implicit error": f"{type(exc).__name__}: {exc}",
                        "perkrec fit s": ours_fit_s,
                    }
                )
                print(f"  {label:13s} ndcg@10 {a['ndcg@10']:.4f}; implicit failed: {exc}")
                continue
            theirs_fit_s = time.perf_counter() - t0
            their_ids, _ = theirs.recommend(
                users, data[users], N=K, filter_already_liked_items=True
            )
            a, b = evaluate(ours_ids, relevant), evaluate(their_ids, relevant)
            row = {
                "dataset": name,
                "model": label,
                **{f"perkrec {k}": v for k, v in a.items()},
                **{f"implicit {k}": v for k, v in b.items()},
                "ndcg ratio": a["ndcg@10"] / b["ndcg@10"] if b["ndcg@10"] else float("nan"),
                "perkrec fit s": ours_fit_s,
                "implicit fit s": theirs_fit_s,
            }
            rows.append(row)
            print(
                f"  {label:13s} ndcg@10 {a['ndcg@10']:.4f} vs {b['ndcg@10']:.4f} (ratio {row['ndcg ratio']:.3f}), "
                f"p@10 {a['precision@10']:.4f} vs {b['precision@10']:.4f}, "
                f"map@10 {a['map@10']:.4f} vs {b['map@10']:.4f}; fit {ours_fit_s:.2f}s vs {theirs_fit_s:.2f}s"
            )
    return rows


def seeds(threads: int, count: int = 5) -> list:
    """ALS (CG) NDCG@10 over `count` random initializations per library: the spread between
    seeds is the yardstick for 'within 1%' (with equal initial factors both libraries give the
    same factors up to rounding)."""
    _, IALS, _, _ = implicit_modules()
    als = dict(factors=64, regularization=0.05, iterations=15)
    rows = []
    for name, loader in (
        ("movielens-100k", perkrec.datasets.load_movielens_100k),
        ("movielens-latest-small", perkrec.datasets.load_movielens_latest_small),
    ):
        if not (DATA / name).is_dir():
            continue
        train, test = movielens(name, loader)
        users = np.flatnonzero((np.diff(test.indptr) > 0) & (np.diff(train.indptr) > 0)).astype(
            np.int32
        )
        theirs_data = implicit_confidence(train, 2.0)
        ours, theirs = [], []
        for seed in range(count):
            model = perkrec.ALS(alpha=2.0, seed=seed, num_threads=threads, **als).fit(train)
            ours.append(
                evaluate(model.recommend(users, train[users], n=K)[0], test[users])["ndcg@10"]
            )
            other = IALS(num_threads=threads, random_state=seed, **als)
            other.fit(theirs_data, show_progress=False)
            theirs.append(
                evaluate(other.recommend(users, theirs_data[users], N=K)[0], test[users])["ndcg@10"]
            )
        row = {
            "dataset": name,
            "perkrec mean": float(np.mean(ours)),
            "perkrec sd": float(np.std(ours, ddof=1)),
            "implicit mean": float(np.mean(theirs)),
            "implicit sd": float(np.std(theirs, ddof=1)),
            "ratio of means": float(np.mean(ours) / np.mean(theirs)),
        }
        rows.append(row)
        print(
            f"{name}: ALS cg ndcg@10 over {count} seeds: "
            f"perkrec {row['perkrec mean']:.4f} ± {row['perkrec sd']:.4f}, "
            f"implicit {row['implicit mean']:.4f} ± {row['implicit sd']:.4f}, ratio {row['ratio of means']:.3f}"
        )
    return rows


# --------------------------------------------------------------------------------------------
# Speed
def synthetic(scale: float, seed: int = 0) -> sp.csr_matrix:
    """Power-law members x benefits matrix: ~20M * scale non-zeros, 500k * scale members,
    50k * scale benefits; values 1..5."""
    n_users, n_benefits, target = int(500_000 * scale), int(50_000 * scale), int(20_000_000 * scale)
    rng = np.random.default_rng(seed)
    user_w = 1.0 / np.arange(1, n_users + 1) ** 0.5
    item_w = 1.0 / np.arange(1, n_benefits + 1) ** 0.8
    draws = int(target * 1.045)  # duplicates merge: about target non-zeros remain
    users = rng.choice(n_users, size=draws, p=user_w / user_w.sum()).astype(np.int32)
    items = rng.choice(n_benefits, size=draws, p=item_w / item_w.sum()).astype(np.int32)
    m = sp.csr_matrix((np.ones(draws, np.float32), (users, items)), shape=(n_users, n_benefits))
    m.sum_duplicates()
    m.data = np.minimum(m.data, 5.0).astype(np.float32)
    # Shuffle ids so that heavy rows are not all at the start.
    m = m[rng.permutation(n_users)][:, rng.permutation(n_benefits)].tocsr()
    m.sort_indices()
    return m


def per_iteration_ours(model, matrix):
    stamps = []
    model.fit(matrix, progress=lambda stage, done, total: stamps.append(time.perf_counter()))
    return float(np.median(np.diff(stamps)))


def per_iteration_theirs(model, matrix):
    stamps = []
    t0 = time.perf_counter()
    model.fit(matrix, show_progress=False, callback=lambda *a: stamps.append(time.perf_counter()))
    steps = np.diff([t0] + stamps)
    return float(np.median(steps[1:] if len(steps) > 1 else steps))


def speed(
    matrix: sp.csr_matrix, threads: int, iterations: int, recommend_users: int, parts
) -> list:
    _, IALS, IBPR, _ = implicit_modules()
    rows = []
    theirs_matrix = implicit_confidence(matrix, 1.0)
    for factors in (64, 128):
        for cg in (3, 0):
            if not {f"als{factors}", f"als{factors}{'cg' if cg else 'cholesky'}"} & set(parts):
                continue
            label = f"ALS {'cg' if cg else 'cholesky'} {factors}f s/iteration"
            ours = per_iteration_ours(
                perkrec.ALS(
                    factors=factors, iterations=iterations, cg_steps=cg, num_threads=threads
                ),
                matrix,
            )
            theirs = per_iteration_theirs(
                IALS(
                    factors=factors,
                    iterations=iterations,
                    use_cg=bool(cg),
                    num_threads=threads,
                    random_state=42,
                ),
                theirs_matrix,
            )
            rows.append(
                {"measure": label, "perkrec": ours, "implicit": theirs, "ratio": ours / theirs}
            )
            print(
                f"{label}: perkrec {ours:.3f} implicit {theirs:.3f} ratio {ours / theirs:.3f}",
                flush=True,
            )
    if "bpr" in parts:
        rows.append(bpr_speed(matrix, threads, iterations, IBPR))
    if "recommend" in parts:
        rows.append(recommend_speed(matrix, threads, recommend_users, IALS))
    return rows


def bpr_speed(matrix, threads, iterations, IBPR) -> dict:
    label = "BPR 64f s/epoch"
    ours = per_iteration_ours(
        perkrec.BPR(factors=64, iterations=iterations, num_threads=threads), matrix
    )
    theirs = per_iteration_theirs(
        IBPR(factors=64, iterations=iterations, num_threads=threads, random_state=42), matrix
    )
    print(
        f"{label}: perkrec {ours:.3f} implicit {theirs:.3f} ratio {ours / theirs:.3f}", flush=True
    )
    return {"measure": label, "perkrec": ours, "implicit": theirs, "ratio": ours / theirs}


def recommend_speed(matrix, threads, recommend_users, IALS) -> dict:
    # Batch recommend: same factors in both libraries (perkrec's, copied into implicit).
    ours_model = perkrec.ALS(factors=64, iterations=1, num_threads=threads).fit(matrix)
    theirs_model = IALS(factors=64, iterations=1, num_threads=threads, random_state=42)
    theirs_model.user_factors = ours_model.user_factors
    theirs_model.item_factors = ours_model.benefit_factors
    users = (
        np.random.default_rng(1)
        .choice(matrix.shape[0], size=recommend_users, replace=False)
        .astype(np.int32)
    )
    seen = matrix[users]
    ours_model.recommend(users[:1000], seen[:1000], n=K)  # warm-up
    theirs_model.recommend(users[:1000], seen[:1000], N=K)
    t0 = time.perf_counter()
    ours_ids, ours_scores = ours_model.recommend(users, seen, n=K)
    ours_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    their_ids, their_scores = theirs_model.recommend(
        users, seen, N=K, filter_already_liked_items=True
    )
    theirs_s = time.perf_counter() - t0
    agree = float(np.mean(np.sort(ours_ids, axis=1) == np.sort(their_ids, axis=1)))
    print(
        f"recommend: perkrec {recommend_users / ours_s:,.0f}/s implicit {recommend_users / theirs_s:,.0f}/s "
        f"speed-up {theirs_s / ours_s:.2f}x (same ids {agree:.4f})",
        flush=True,
    )
    return {
        "measure": "batch recommend members/s (top-10, filter seen, 64f)",
        "perkrec": recommend_users / ours_s,
        "implicit": recommend_users / theirs_s,
        "ratio": theirs_s / ours_s,
        "same top-10 share": agree,
    }


def memory_child(library: str, path: str, threads: int) -> None:
    matrix = sp.load_npz(path).tocsr()
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    users = np.arange(0, matrix.shape[0], 10, dtype=np.int32)
    if library == "perkrec":
        model = perkrec.ALS(factors=64, iterations=2, num_threads=threads).fit(matrix)
        model.recommend(users, matrix[users], n=K)
    else:
        _, IALS, _, _ = implicit_modules()
        model = IALS(factors=64, iterations=2, num_threads=threads, random_state=42)
        model.fit(implicit_confidence(matrix, 1.0), show_progress=False)
        model.recommend(users, matrix[users], N=K)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps({"library": library, "peak_mib": peak / 1024, "after_load_mib": loaded / 1024})
    )


def memory(path: str, threads: int) -> dict:
    out = {}
    for library in ("perkrec", "implicit"):
        result = subprocess.run(
            [
                sys.executable,
                __file__,
                "memory-child",
                "--library",
                library,
                "--matrix",
                path,
                "--threads",
                str(threads),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        out[library] = json.loads(result.stdout.strip().splitlines()[-1])
    print(
        f"peak RSS (ALS 64f fit + recommend): perkrec {out['perkrec']['peak_mib']:.0f} MiB, implicit "
        f"{out['implicit']['peak_mib']:.0f} MiB (both {out['perkrec']['after_load_mib']:.0f} MiB after loading)"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["quality", "seeds", "speed", "all", "memory-child"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--recommend-users", type=int, default=20000)
    parser.add_argument("--library")
    parser.add_argument("--matrix", default="/tmp/perkrec_cf_bench.npz")
    parser.add_argument("--json", help="write results here")
    parser.add_argument(
        "--parts",
        default="als64,als128,bpr,recommend,memory",
        help="speed parts to run (comma-separated)",
    )
    parser.add_argument(
        "--simd",
        choices=["best", "avx512", "avx2", "scalar"],
        default="best",
        help="highest kernel family perkrec may use (PERKREC_SIMD), to measure each path",
    )
    args = parser.parse_args()
    if args.simd != "best":
        os.environ["PERKREC_SIMD"] = args.simd  # read at perkrec's first dispatched call
    if args.what == "memory-child":
        memory_child(args.library, args.matrix, args.threads)
        return
    implicit = implicit_modules()[0]
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "threads": args.threads,
        "simd": args.simd,
        "perkrec": perkrec.__version__,
        "implicit": implicit.__version__,
    }
    print(json.dumps(result))
    if args.what in ("quality", "all"):
        result["quality"] = quality(args.threads)
    if args.what in ("seeds", "all"):
        result["seeds"] = seeds(args.threads)
    if args.what in ("speed", "all"):
        parts = set(args.parts.split(","))
        t0 = time.perf_counter()
        cached = Path(f"{args.matrix}.scale-{args.scale}")
        if cached.exists() and Path(args.matrix).exists():
            matrix = sp.load_npz(args.matrix).tocsr()
        else:
            matrix = synthetic(args.scale)
            sp.save_npz(args.matrix, matrix, compressed=False)
            cached.write_text("")
        print(
            f"synthetic matrix {matrix.shape[0]:,} x {matrix.shape[1]:,}, nnz {matrix.nnz:,} "
            f"({time.perf_counter() - t0:.1f} s to build or load)",
            flush=True,
        )
        result["synthetic"] = {
            "members": matrix.shape[0],
            "benefits": matrix.shape[1],
            "nnz": int(matrix.nnz),
            "scale": args.scale,
        }
        result["speed"] = speed(matrix, args.threads, args.iterations, args.recommend_users, parts)
        del matrix
        if "memory" in parts:
            result["memory"] = memory(args.matrix, args.threads)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=float))


if __name__ == "__main__":
    main()
