"""BehaviorLog build speed and behaviour-feature throughput on a synthetic purchase log.

A synthetic program: --members members, --items items (Zipf-like popularity) in 50 categories and
500 brands, 2,000 benefits of 12 items each, --events purchase events over one year (member,
item, time, quantity, amount, basket), and --samples (member, benefit, time) samples. Times are
the C++ calls alone (arrays prepared beforehand, GIL released), best of --repeat runs:

  build    BehaviorLog from columns in random order (two-level radix sort by member and time)
           and from columns already sorted by (member, time) (the copy path); rows/s
  frame    BehaviorLog.from_frame on a DataFrame of the random-order rows with external integer
           member and item ids (the id lookups, dtype checks and the build; --frame)
  features behavior_features for every sample: the 6 scope aggregates below at the items scope
           and two levels, plus 5 member totals and 2 popularity ones (25 columns); samples/s (`_core.behavior_features`,
           which returns numpy columns; --wrapper adds one call of `perkrec.behavior_features`,
           which returns them as a DataFrame); --dtype float32 asks for float32 columns (half
           the output's memory) instead of float64

    .venv/bin/python bench/behavior.py --events 10000000 --samples 1000000 --threads 2

The machine's load matters: on a shared 2-core machine, report `uptime`'s load with the figures
(the CPU seconds printed beside each time are less sensitive to other processes).

Memory: each stage's peak resident memory above what the process held when it began (Linux:
the peak is reset before each stage through /proc/self/clear_refs), next to the log's columns
(33 bytes per event) and the input arrays, and the process's peak RSS at the end. For the
features stage, "log + peak" is (the log's columns + the stage's peak above what was held
before) / the log's columns: everything the call allocates, its returned columns included,
beside the log it reads; the caller's event and sample arrays are not counted.

    .venv/bin/python bench/behavior.py --events 100000000 --samples 10000000 --threads 2 \
        --skip-sorted --frame --repeat 1
    .venv/bin/python bench/behavior.py --events 100000000 --samples 10000000 --threads 2 \
        --skip-sorted --repeat 1 --wrapper --dtype float32
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


_PEAK_RESET = False
_PROCESS_PEAK_KIB = 0  # resetting VmHWM resets ru_maxrss too: the stages' peaks are kept here


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _reset_peak() -> None:
    """Resets the peak RSS (VmHWM) where Linux allows it, so a stage's peak is its own."""
    global _PEAK_RESET
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        _PEAK_RESET = True
    except OSError:
        _PEAK_RESET = False


_PROCESS_PEAK_KIB = 0  # resetting VmHWM resets ru_maxrss too: the stages' peaks are kept here


def _measured(fn):
    """(result, peak GiB above the memory held before, GiB held before)."""
    global _PROCESS_PEAK_KIB
    _PROCESS_PEAK_KIB = max(_PROCESS_PEAK_KIB, _status_kib("VmHWM"))
    _reset_peak()
    before = _status_kib("VmRSS")
    result = fn()
    peak = (
        _status_kib("VmHWM") if _PEAK_RESET else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    )
    _PROCESS_PEAK_KIB = max(_PROCESS_PEAK_KIB, peak)
    return result, (peak - before) / 2**20, before / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--members", type=int, default=200_000)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--frame",
        action="store_true",
        help="also time BehaviorLog.from_frame on a DataFrame of the random-order rows",
    )
    ap.add_argument(
        "--wrapper",
        action="store_true",
        help="also time perkrec.behavior_features, which returns a DataFrame, once",
    )
    ap.add_argument(
        "--skip-sorted",
        action="store_true",
        help="skip the sorted-input build (saves a copy of the log)",
    )
    ap.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        default="float64",
        help="the features stage's output columns (default float64)",
    )
    args = ap.parse_args()

    import perkrec
    from perkrec import _core

    rng = np.random.default_rng(args.seed)
    n, m, k = args.events, args.members, args.items
    t0 = time.perf_counter()
    user = rng.integers(0, m, n, dtype=np.int64).astype(np.int32)
    item = np.minimum(rng.zipf(1.3, n) - 1, k - 1).astype(np.int32)
    item = ((item.astype(np.int64) * 7919) % k).astype(np.int32)  # spread the popular items
    stamp = (1_700_000_000 + rng.integers(0, 365 * 86400, n)).astype(np.int64)
    quantity = rng.integers(1, 4, n).astype(np.float64)
    amount = np.round(rng.gamma(2.0, 2.0, n), 2)
    basket = (stamp // 3600) * 1_000_003 + user  # one basket per member and hour
    sorted_cols = None
    if not args.skip_sorted:
        order = np.lexsort((stamp, user))
        sorted_cols = [a[order] for a in (user, item, stamp, quantity, amount, basket)]
        del order
    columns = (user, item, stamp, quantity, amount, basket)
    input_gib = sum(a.nbytes for a in columns) / 2**30
    print(
        f"prepared {n:,} events, {m:,} members, {k:,} items in {time.perf_counter() - t0:.1f} s "
        f"(input arrays {input_gib:.2f} GiB)"
    )

    def build(cols):
        u, i, t, q, a, b = cols
        return _core.BehaviorLog.from_arrays(
            u, i, t, None, q, a, b, m, k, ["purchase"], "drop", args.threads
        )

    def timed(label, fn, rows):
        best, cpu, peak = float("inf"), float("inf"), 0.0
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            log, stage_peak, _ = _measured(fn)
            best, cpu = min(best, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
            peak = max(peak, stage_peak)
            del log
        print(
            f"{label}: {best:.2f} s = {rows / best / 1e6:.1f} M rows/s ({args.threads} threads; "
            f"{cpu:.2f} CPU s); peak {peak:.2f} GiB above the memory held before"
        )

    for label, cols in (
        ("random order", [user, item, stamp, quantity, amount, basket]),
        ("sorted", sorted_cols),
    ):
        if cols is None:
            continue
        timed(f"build ({label})", lambda cols=cols: build(cols), n)
    del sorted_cols

    if args.frame:
        import pandas as pd

        frame = pd.DataFrame(
            {
                "user": user.astype(np.int64) + 10_000_000,
                "item": item.astype(np.int64) + 50_000_000,
                "time": stamp,
                "quantity": quantity,
                "amount": amount,
                "basket": basket,
            },
            copy=False,
        )
        user_ids = perkrec.IdMap(np.arange(m, dtype=np.int64) + 10_000_000)
        item_catalog = perkrec.ItemCatalog(perkrec.IdMap(np.arange(k, dtype=np.int64) + 50_000_000))
        print(
            f"frame of {n:,} rows with external int64 ids: {frame.memory_usage(deep=True).sum() / 2**30:.2f} GiB"
        )
        timed(
            "from_frame (random order)",
            lambda: perkrec.BehaviorLog.from_frame(
                frame,
                user_ids=user_ids,
                items=item_catalog,
                user="user",
                item="item",
                time="time",
                quantity="quantity",
                amount="amount",
                basket="basket",
                num_threads=args.threads,
            ),
            n,
        )
        del frame

    log, build_peak, held = _measured(lambda: build([user, item, stamp, quantity, amount, basket]))
    log_gib = (
        sum(
            a.nbytes
            for a in (log.items(), log.actions(), log.timestamps(), log.quantities(), log.amounts())
        )
        + log.baskets().nbytes
    ) / 2**30
    print(
        f"log columns {log_gib:.2f} GiB ({log_gib * 2**30 / max(len(log), 1):.0f} bytes per event); "
        f"build peak {build_peak:.2f} GiB above the {held:.2f} GiB held before = "
        f"{build_peak / log_gib:.2f}x the columns"
    )
    items = perkrec.IdMap.range(k)
    catalog = _core.ItemCatalog(items._impl)
    catalog.add_level(
        "category", rng.integers(0, 50, k).astype(np.int32), [f"c{j}" for j in range(50)]
    )
    catalog.add_level(
        "brand", rng.integers(0, 500, k).astype(np.int32), [f"b{j}" for j in range(500)]
    )
    n_benefits = 2000
    applies = _core.BenefitItems.from_pairs(
        np.repeat(np.arange(n_benefits, dtype=np.int32), 12),
        rng.integers(0, k, n_benefits * 12).astype(np.int32),
        n_benefits,
        k,
        "drop",
    )
    s = args.samples
    su = rng.integers(0, m, s).astype(np.int64)
    sb = rng.integers(0, n_benefits, s).astype(np.int64)
    st = (1_700_000_000 + rng.integers(0, 365 * 86400, s)).astype(np.int64)
    aggregates = [
        "count",
        "quantity",
        "spend",
        "decayed_count",
        "days_since_last",
        "share_of_wallet",
        "member_count",
        "member_baskets",
        "member_spend",
        "member_distinct_items",
        "member_days_since_last",
        "popularity_events",
        "popularity_members",
    ]
    for label, aggs in (("all 13 aggregates", aggregates), ("without popularity", aggregates[:-2])):
        best, cpu, peak = float("inf"), float("inf"), 0.0
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            cols, stage_peak, _ = _measured(
                lambda aggs=aggs: _core.behavior_features(
                    su,
                    sb,
                    st,
                    log,
                    catalog,
                    applies,
                    aggs,
                    ["category", "brand"],
                    ["purchase"],
                    28.0,
                    args.threads,
                    args.dtype,
                )
            )
            best, cpu = min(best, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
            peak = max(peak, stage_peak)
            out_gib = sum(c.nbytes for _, c in cols) / 2**30
            del cols
        print(
            f"features ({label}, levels category+brand, {args.dtype}): {best:.2f} s = "
            f"{s / best / 1e6:.2f} M samples/s over {n:,} events ({args.threads} threads; {cpu:.2f} CPU s); "
            f"peak {peak:.2f} GiB above the memory held before (output {out_gib:.2f} GiB); "
            f"log + peak = {1 + peak / log_gib:.2f}x the log's columns "
            f"({1 + (peak - out_gib) / log_gib:.2f}x without the output)"
        )
    if args.wrapper:
        import pandas as pd

        frame = pd.DataFrame({"user": su, "benefit": sb, "timestamp": st}, copy=False)
        wrapped = (
            perkrec.BehaviorLog._wrap(log),
            perkrec.ItemCatalog._wrap(catalog),
            perkrec.BenefitItems._wrap(applies),
        )
        t0, c0 = time.perf_counter(), time.process_time()
        table, peak, _ = _measured(
            lambda: perkrec.behavior_features(
                frame,
                *wrapped,
                levels=["category", "brand"],
                num_threads=args.threads,
                dtype=args.dtype,
            )
        )
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        out_gib = table.memory_usage(index=False).sum() / 2**30
        del table
        print(
            f"perkrec.behavior_features (the DataFrame wrapper, all 13 aggregates, {args.dtype}): "
            f"{wall:.2f} s "
            f"({cpu:.2f} CPU s); peak {peak:.2f} GiB above the memory held before (frame "
            f"{out_gib:.2f} GiB); log + peak = {1 + peak / log_gib:.2f}x the log's columns "
            f"({1 + (peak - out_gib) / log_gib:.2f}x without the frame)"
        )
    peak_gib = max(_PROCESS_PEAK_KIB, _status_kib("VmHWM")) / 2**20
    print(
        f"memory: the log's columns {log_gib:.2f} GiB; event input arrays {input_gib:.2f} GiB; "
        f"process peak RSS {peak_gib:.2f} GiB"
    )


if __name__ == "__main__":
    main()
