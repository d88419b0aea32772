"""Simulator benchmark: time to generate about 10M events.

Target (issue: foundation): 10M events in under 10 s on a 2-core machine. No peer library
simulates loyalty programs with planted ground truth, so this reports perkrec alone, with the
thread count, and checks that 1 and N threads give the same bytes.

    .venv/bin/python bench/simulator.py [--members 138000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import perkrec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=138_000, help="about 72 events per member")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument(
        "--check-threads", action="store_true", help="also run on 1 thread and compare"
    )
    args = parser.parse_args()
    threads = args.threads or perkrec._core.default_num_threads()
    t0 = time.perf_counter()
    program = perkrec.simulate(n_users=args.members, num_threads=args.threads)
    elapsed = time.perf_counter() - t0
    events = len(program.events)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "threads": threads,
        "members": args.members,
        "events": events,
        "seconds": round(elapsed, 3),
        "events_per_second": round(events / elapsed),
    }
    print(
        f"{events:,} events for {args.members:,} members in {elapsed:.2f} s on {threads} threads "
        f"({events / elapsed / 1e6:.2f}M events/s)"
    )
    if args.check_threads:
        t0 = time.perf_counter()
        single = perkrec.simulate(n_users=args.members, num_threads=1)
        result["seconds_1_thread"] = round(time.perf_counter() - t0, 3)
        result["identical_to_1_thread"] = single.events.to_bytes() == program.events.to_bytes()
        print(
            f"1 thread: {result['seconds_1_thread']:.2f} s, identical: {result['identical_to_1_thread']}"
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
