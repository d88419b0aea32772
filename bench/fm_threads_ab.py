"""Two-thread FM scaling of several builds, side by side, on a shared machine.

Runs builds of bench/fm_epoch_times.cpp (e.g. main's and a branch's) in random round-robin
order, 1 and 2 threads, SGD and AdaGrad, each run started once the machine looks idle (or after
--wait seconds), until --seconds have passed. An epoch counts as quiet when other processes used
less than --quiet cores during it. Prints, per build and optimizer, the median samples/s of the
quiet epochs (and of all epochs) and the two-thread / one-thread ratio of the quiet medians; the
first epoch of each run is left out (allocation, first touch).

    g++ -std=c++17 -O3 -DNDEBUG -fopenmp -Iinclude bench/fm_epoch_times.cpp -o /tmp/fet_branch
    .venv/bin/python bench/fm_threads_ab.py main=/tmp/fet_main branch=/tmp/fet_branch \
        --rows 1000000 --seconds 900 --log /tmp/fm_threads_ab.jsonl
"""

import argparse
import json
import random
import statistics
import subprocess
import time
from collections import defaultdict


def busy_seconds():
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return (user + nice + system + irq + softirq + steal) / 100.0


def wait_idle(limit):
    start = time.time()
    while time.time() - start < limit:
        before = busy_seconds()
        time.sleep(1.0)
        if busy_seconds() - before < 0.1:
            return True
    return False


def summarize(records, rows, quiet):
    clean, every = defaultdict(list), defaultdict(list)
    for r in records:
        for seconds, others, _cpu in r["epochs"][1:]:
            key = r["build"], r["optimizer"], r["threads"]
            every[key].append(seconds)
            if others < quiet:
                clean[key].append(seconds)

    def rate(times):
        return rows / statistics.median(times) / 1e6 if times else float("nan")

    for optimizer in ("sgd", "adagrad"):
        for build in sorted({k[0] for k in every}):
            cells, quiet_rate = [], {}
            for threads in (1, 2):
                key = build, optimizer, threads
                quiet_rate[threads] = rate(clean[key])
                cells.append(
                    f"{threads} thr: quiet {quiet_rate[threads]:5.2f} M/s (n={len(clean[key])}),"
                    f" all {rate(every[key]):5.2f} M/s (n={len(every[key])})"
                )
            print(
                f"{build:>8} {optimizer:<8} " + " | ".join(cells) + f" | quiet ratio "
                f"{quiet_rate[2] / quiet_rate[1]:.2f}x",
                flush=True,
            )


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("builds", nargs="+", help="NAME=PATH of a fm_epoch_times binary")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=900)
    ap.add_argument("--wait", type=float, default=10, help="longest wait for an idle machine")
    ap.add_argument("--quiet", type=float, default=0.05, help="others' cores in a quiet epoch")
    ap.add_argument("--log", default=None, help="append every run as a JSON line")
    args = ap.parse_args(argv)
    builds = dict(b.split("=", 1) for b in args.builds)
    runs = [(b, o, t) for b in builds for o in ("sgd", "adagrad") for t in (1, 2)]
    order = random.Random(0)
    records = []
    log = open(args.log, "a") if args.log else None
    deadline = time.time() + args.seconds
    while time.time() < deadline:
        order.shuffle(runs)
        for build, optimizer, threads in runs:
            idle = wait_idle(args.wait)
            with open("/proc/loadavg") as f:
                load = f.read().split()[0]
            cmd = [builds[build], str(args.rows), optimizer, str(threads), str(args.epochs)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
            epochs = [[float(x) for x in e.split("/")] for e in out[2:-2]]
            record = dict(build=build, optimizer=optimizer, threads=threads, idle=idle, load=load)
            record.update(time=time.strftime("%H:%M:%S"), epochs=epochs, model=out[-1])
            records.append(record)
            if log:
                log.write(json.dumps(record) + "\n")
                log.flush()
    summarize(records, args.rows, args.quiet)


if __name__ == "__main__":
    main()
