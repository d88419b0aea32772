"""What `import perkrec` adds to importing numpy, scipy.sparse and pandas (issue 18 target:
at most 0.1 s). Each measurement is a fresh interpreter; medians of --repeats runs.

    .venv/bin/python bench/import_time.py --repeats 15
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys

BASE = "import numpy, scipy.sparse, pandas"


def timed(code: str) -> float:
    probe = f"import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args(argv)
    print("command: " + " ".join(["python"] + sys.argv))
    print(f"machine: {platform.machine()}; python {platform.python_version()}")
    timed(BASE + "; import perkrec")  # warm the file cache
    base, full = [], []
    for _ in range(args.repeats):  # interleaved, so load changes hit both
        base.append(timed(BASE))
        full.append(timed(BASE + "; import perkrec"))
    b, f = statistics.median(base), statistics.median(full)
    print("| import | median (s) |")
    print("|---|---:|")
    print(f"| numpy, scipy.sparse, pandas | {b:.3f} |")
    print(f"| the same + perkrec | {f:.3f} |")
    print(f"| perkrec adds | {f - b:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
