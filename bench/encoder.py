"""FeatureEncoder: the C++-backed encoder (perkrec.FeatureEncoder) against the numpy encoder it
replaced (tests/python/numpy_encoder_reference.py), on the same samples in the same run.

Samples: redemption_samples of a simulated program (perkrec.simulate) with enough members for
--samples rows (the first --samples issued benefits), the default fields (history included).
Each encoder runs in its own subprocess, which loads the same prepared files, times
fit(samples) and transform(samples), hashes the resulting CSR arrays (shape, indptr, indices,
data) and reports its peak resident memory during fit + transform (VmHWM, reset after loading the
data; ru_maxrss where the reset is unavailable) and the resident memory before it. The parent asserts identical hashes.

    .venv/bin/python bench/encoder.py --samples 10000000 --threads 2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def prepare(n_samples: int, folder: Path, seed: int) -> dict:
    import numpy as np
    import perkrec
    from perkrec.fm import redemption_samples

    users = max(2000, n_samples // 30)
    while True:
        t0 = time.perf_counter()
        program = perkrec.simulate(n_users=users, seed=seed)
        samples = redemption_samples(program.events, program.catalog, program.users)
        print(
            f"  simulate({users} members): {len(samples)} samples, {len(program.events)} events "
            f"({time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
        if len(samples) >= n_samples:
            break
        users = int(users * n_samples / max(len(samples), 1) * 1.05) + 1
    samples = samples.sort_values("timestamp", kind="stable").head(n_samples).reset_index(drop=True)
    samples.to_pickle(folder / "samples.pkl")
    program.events.save(str(folder / "events.perk"))
    program.catalog.to_frame().to_pickle(folder / "catalog.pkl")
    return {
        "members": users,
        "samples": len(samples),
        "events": len(program.events),
        "benefits": len(program.catalog),
        "label_rate": float(np.mean(samples["label"])),
    }


_PEAK_RESET = False


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _reset_peak_rss() -> None:
    """Resets the process's peak RSS (Linux >= 4.0: writing 5 to /proc/self/clear_refs), so the
    peak measured after it belongs to the encoder, not to loading the data."""
    global _PEAK_RESET
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        _PEAK_RESET = True
    except OSError:
        pass


def run_side(side: str, folder: Path, threads: int) -> dict:
    import numpy as np
    import pandas as pd
    import perkrec

    samples = pd.read_pickle(folder / "samples.pkl")
    events = perkrec.EventLog.load(str(folder / "events.perk"))
    catalog = pd.read_pickle(folder / "catalog.pkl")
    import gc

    gc.collect()
    rss_loaded = _status_kib("VmRSS")
    _reset_peak_rss()
    if side == "cpp":
        from perkrec.fm import DEFAULT_FIELDS, FeatureEncoder

        enc = FeatureEncoder(DEFAULT_FIELDS, num_threads=threads)
    else:
        sys.path.insert(0, str(ROOT / "tests" / "python"))
        from numpy_encoder_reference import FeatureEncoder
        from perkrec.fm import DEFAULT_FIELDS

        enc = FeatureEncoder(DEFAULT_FIELDS)
    t0 = time.perf_counter()
    enc.fit(samples, events=events, catalog=catalog)
    t1 = time.perf_counter()
    X = enc.transform(samples, events=events)
    t2 = time.perf_counter()
    rss_peak = (
        _status_kib("VmHWM") if _PEAK_RESET else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    )
    digest = hashlib.sha256()
    digest.update(json.dumps(list(X.shape)).encode())
    for a in (X.indptr.astype(np.int64), X.indices.astype(np.int32), X.data.astype(np.float32)):
        digest.update(np.ascontiguousarray(a).tobytes())
    return {
        "side": side,
        "fit_s": t1 - t0,
        "transform_s": t2 - t1,
        "total_s": t2 - t0,
        "nnz": int(X.nnz),
        "shape": list(X.shape),
        "sha256": digest.hexdigest(),
        "peak_rss_mib": rss_peak / 1024,
        "rss_after_load_mib": rss_loaded / 1024,
        "peak_reset": _PEAK_RESET,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--samples", type=int, default=10_000_000)
    ap.add_argument("--threads", type=int, default=0, help="C++ encoder threads (0 = all cores)")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--sides", default="numpy,cpp")
    ap.add_argument(
        "--mem-limit-gib",
        type=float,
        default=0,
        help="address-space limit of each encoder process (0 = none): on a shared machine a "
        "side that needs more fails with MemoryError instead of waking the OOM killer",
    )
    ap.add_argument("--side", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        print(json.dumps(run_side(args.side, Path(args.folder), args.threads)))
        return
    with tempfile.TemporaryDirectory(prefix="perkrec-bench-encoder-") as tmp:
        folder = Path(tmp)
        print(f"preparing {args.samples} samples ...", flush=True)
        info = prepare(args.samples, folder, args.seed)
        print(json.dumps(info), flush=True)
        results = {}
        for side in args.sides.split(","):
            limit = int(args.mem_limit_gib * (1 << 30)) if args.mem_limit_gib > 0 else None
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--side",
                    side,
                    "--folder",
                    str(folder),
                    "--threads",
                    str(args.threads),
                ],
                capture_output=True,
                text=True,
                preexec_fn=(lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
                if limit
                else None,
            )
            if out.returncode != 0:
                print(out.stdout, out.stderr, file=sys.stderr)
                raise SystemExit(f"{side} failed (exit {out.returncode})")
            results[side] = json.loads(out.stdout.strip().splitlines()[-1])
            r = results[side]
            print(
                f"{side:>5}: fit {r['fit_s']:.2f} s  transform {r['transform_s']:.2f} s  total {r['total_s']:.2f} s"
                f"  peak RSS {r['peak_rss_mib']:.0f} MiB (data loaded: {r['rss_after_load_mib']:.0f} MiB)"
                f"  nnz {r['nnz']}",
                flush=True,
            )
        if "numpy" in results and "cpp" in results:
            a, b = results["numpy"], results["cpp"]
            assert (
                a["sha256"] == b["sha256"] and a["shape"] == b["shape"]
            ), "the encoders' outputs differ"
            print(
                f"identical output (sha256 {a['sha256'][:16]}); speed-up {a['total_s'] / b['total_s']:.1f}x "
                f"(fit {a['fit_s'] / b['fit_s']:.1f}x, transform {a['transform_s'] / b['transform_s']:.1f}x); "
                f"peak RSS {b['peak_rss_mib']:.0f} vs {a['peak_rss_mib']:.0f} MiB"
            )
        print(json.dumps({"info": info, "results": results}))


if __name__ == "__main__":
    main()
