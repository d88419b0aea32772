"""Command line: ``python -m perkrec demo`` (or the ``perkrec`` script)."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    from . import __version__

    parser = argparse.ArgumentParser(prog="perkrec", description="perkrec command line")
    parser.add_argument("--version", action="version", version=f"perkrec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="simulate a program and report the baseline end to end")
    demo.add_argument("--members", type=int, default=20000, help="simulated members (default 20000)")
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--out", default="perkrec-demo", help="folder for the tables (default ./perkrec-demo)")
    demo.add_argument("--threads", type=int, default=0, help="0 = all cores")
    demo.add_argument("--progress", action="store_true", help="show a progress bar")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from . import Error
        from .demo import run

        try:
            run(members=args.members, seed=args.seed, out_dir=args.out, num_threads=args.threads,
                progress=args.progress)
        except Error as exc:
            print(f"perkrec: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
