"""Time perkrec.BenefitPlanner.plan (the C++ BenefitPlanner: every (member, benefit) row at the
plan time encoded and scored block by block, the shrinkage, the policy, the Planner) against
the Python recipe it replaced (a members x benefits pairs DataFrame, FeatureEncoder.transform,
FM.predict, shrink_interactions on the dense matrix, then Planner.plan), on simulated programs;
and the embedding server answering with the fitted pipeline (--planner).

    .venv/bin/python bench/benefit_planner.py [--members 20000 100000] [--threads 2] [--before]
        [--server build/release/examples/cpp/perkrec_benefit_server --requests 20000]

--before also times the Python recipe (and checks that both plans are identical). --server
times the server binary on --requests JSON lines (members drawn at random, times within the
day after the plan time) with 1 and --threads threads, wall time of the whole process, and
the loading alone (the same process on no requests); the server's pipeline is the same fit with
the policy's budget left out, so its answers must not depend on the thread count (checked).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import tempfile
import time

import numpy as np
import pandas as pd

import perkrec
from perkrec.demo import TEST_DAYS, demo_policy


def python_recipe(bp, at):
    """The plan as BenefitPlanner.plan made it before the C++ BenefitPlanner."""
    from perkrec.pipeline import PlanInputs, with_attributes
    from perkrec.plan import incremental_share, shrink_interactions

    fm, catalog, users, events = bp.fm, bp.catalog, bp.user_table, bp.events
    n, nb = events.n_users, len(catalog)
    t = int(at.value // 1_000_000_000)
    pairs = pd.DataFrame(
        {"user": np.repeat(np.arange(n), nb), "benefit": np.tile(np.arange(nb), n), "timestamp": t}
    )
    pairs = with_attributes(pairs, catalog, users)
    P = fm.predict(fm.encoder.transform(pairs, events=events)).reshape(n, nb).astype(np.float32)
    held = bp._state["holdout"]
    P, _ = shrink_interactions(
        np.clip(P, 1e-6, 1 - 1e-6),
        held["user"],
        held["benefit"],
        held["predicted"],
        held["redeemed"],
        sample_weight=held["weight"],
    )
    S = incremental_share(bp.preference, catalog)
    return bp.plan(at=at, inputs=PlanInputs(P, S, bp.order_value))


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, nargs="+", default=[20000, 100000])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--before", action="store_true")
    ap.add_argument("--server", default=None)
    ap.add_argument("--requests", type=int, default=20000)
    args = ap.parse_args()
    for n in args.members:
        t0 = time.perf_counter()
        program = perkrec.simulate(n_users=n, seed=7, num_threads=args.threads)
        end = program.events.time_range[1]
        t1 = time.perf_counter()
        bp = perkrec.BenefitPlanner(demo_policy(n), seed=7, num_threads=args.threads)
        bp.fit(
            program.events,
            program.catalog,
            program.users,
            cut_time=end - pd.Timedelta(days=TEST_DAYS),
        )
        t2 = time.perf_counter()
        bp._core()  # built once (copies the parts into the C++ planner)
        t3 = time.perf_counter()
        plan = bp.plan(at=end)
        t4 = time.perf_counter()
        print(
            f"{n} members x {len(program.catalog)} benefits, {len(program.events):,} events: simulate "
            f"{t1 - t0:.1f} s, fit {t2 - t1:.1f} s, C++ planner built {t3 - t2:.2f} s; "
            f"plan (C++) {t4 - t3:.2f} s, {len(plan.frame)} rows, peak RSS {peak_rss_gb():.2f} GB",
            flush=True,
        )
        if args.before:
            t5 = time.perf_counter()
            before = python_recipe(bp, end)
            t6 = time.perf_counter()
            same = before.frame.equals(plan.frame)
            print(
                f"  plan (Python recipe) {t6 - t5:.2f} s, identical plan rows: {same}, "
                f"peak RSS {peak_rss_gb():.2f} GB",
                flush=True,
            )
        if args.server:
            # The server's pipeline: the same fit with the policy's budget left out, so its
            # answers do not depend on the order requests meet the pacer (nor on --threads).
            policy = demo_policy(n)
            policy.pop("budget", None)
            unbudgeted = perkrec.BenefitPlanner(policy, seed=7, num_threads=args.threads)
            unbudgeted.fit(
                program.events,
                program.catalog,
                program.users,
                cut_time=end - pd.Timedelta(days=TEST_DAYS),
            )
            serve(unbudgeted, program, end, args)


def serve(bp, program, end, args) -> None:
    rng = np.random.default_rng(0)
    t_end = int(end.value // 1_000_000_000)
    ids = program.events.user_ids.ids
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "planner.perk")
        bp.save(path)
        requests = os.path.join(d, "requests.jsonl")
        with open(requests, "w") as f:
            for i in range(args.requests):
                u = int(rng.integers(len(ids)))
                f.write(
                    json.dumps(
                        {
                            "id": i,
                            "member": str(ids[u]),
                            "n": 1,
                            "time": t_end + int(rng.integers(86400)),
                        }
                    )
                    + "\n"
                )
        outputs = {}
        empty = os.path.join(d, "none.jsonl")
        open(empty, "w").close()
        t0 = time.perf_counter()
        subprocess.run(
            [args.server, "--planner", path, "--input", empty, "--output", os.devnull],
            check=True,
            stderr=subprocess.DEVNULL,
        )
        load = time.perf_counter() - t0
        print(f"  server --planner, loading alone (no requests): {load:.2f} s", flush=True)
        for threads in sorted({1, args.threads}):
            out = os.path.join(d, f"answers{threads}.jsonl")
            t0 = time.perf_counter()
            subprocess.run(
                [
                    args.server,
                    "--planner",
                    path,
                    "--threads",
                    str(threads),
                    "--input",
                    requests,
                    "--output",
                    out,
                ],
                check=True,
                stderr=subprocess.DEVNULL,
            )
            wall = time.perf_counter() - t0
            with open(out) as f:
                outputs[threads] = f.read()
            print(
                f"  server --planner, {args.requests} requests, {threads} threads: {wall:.2f} s "
                f"({args.requests / wall:,.0f} req/s, whole process incl. loading; "
                f"{args.requests / max(wall - load, 1e-9):,.0f} req/s after loading)",
                flush=True,
            )
        values = list(outputs.values())
        print(f"  answers identical across thread counts: {all(v == values[0] for v in values)}")


if __name__ == "__main__":
    main()
