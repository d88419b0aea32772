"""BenefitPlanner.fit: the C++ fit (decide/benefit_planner_fit.hpp, one binding call) against the
Python orchestration it replaced (tests/python/pipeline_fit_reference.py), on simulated
programs: wall and CPU time (all threads of the process) of each and whether the model files are identical.

    .venv/bin/python bench/pipeline_fit.py --members 10000 --seeds 1 2 3 [--threads 2]

Each seed: one program (perkrec.simulate(n_users=members, seed=seed)), the demo's policy and
cut (TEST_DAYS before the end), BenefitPlanner's defaults (fm_threads=1: bit-reproducible);
the two paths run alternately, C++ first.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

import perkrec
from perkrec.demo import TEST_DAYS, demo_policy

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from pipeline_fit_reference import ReferencePlanner  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=10000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    print("seed  members  issues  cpp_s  python_s  speedup  cpp_cpu_s  python_cpu_s  identical")
    for seed in args.seeds:
        program = perkrec.simulate(n_users=args.members, seed=seed, num_threads=args.threads)
        log = program.events
        cut = log.time_range[1] - pd.Timedelta(days=TEST_DAYS)
        issues = int((log.to_frame()["event_type"].astype(str) == "issued").sum())
        times, cpu, files = {}, {}, {}
        for name, cls in (("cpp", perkrec.BenefitPlanner), ("python", ReferencePlanner)):
            bp = cls(demo_policy(log.n_users), num_threads=args.threads)
            start, start_cpu = time.perf_counter(), time.process_time()
            bp.fit(log, program.catalog, program.users, cut_time=cut)
            times[name] = time.perf_counter() - start
            cpu[name] = time.process_time() - start_cpu
            files[name] = bp.to_bytes()
        print(
            f"{seed:4d}  {args.members:7d}  {issues:6d}  {times['cpp']:5.1f}  "
            f"{times['python']:8.1f}  {times['python'] / times['cpp']:6.2f}x  "
            f"{cpu['cpp']:9.1f}  {cpu['python']:12.1f}  {files['cpp'] == files['python']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
