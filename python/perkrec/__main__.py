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
    validate = sub.add_parser(
        "validate", help="check input files; print every problem with its file, row and column (exit code 2)",
        formatter_class=argparse.RawDescriptionHelpFormatter, description=_FORMATS)
    validate.add_argument("--events", help="events file (CSV or Parquet)")
    validate.add_argument("--catalog", help="benefit catalog file (CSV or Parquet)")
    validate.add_argument("--users", help="member table file (CSV or Parquet)")
    validate.add_argument("--policy", help="policy file (JSON)")
    validate.add_argument("--catalog-id", default="id", help="the catalog's id column (default id)")
    validate.add_argument("--user-id", default="user", help="the member table's id column (default user)")
    validate.add_argument("--max-per-kind", type=int, default=20,
                          help="rows listed per kind of problem before '... and N more' (default 20)")
    args = parser.parse_args(argv)
    if args.command == "validate":
        return _validate(args)
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


_FORMATS = """Checks a program's files the way perkrec's loaders read them, on every row, and prints
each problem as FILE:ROW:COLUMN: message (rows as a spreadsheet numbers them: the header of a CSV
is row 1). Exit code 0 when every file loads, 2 when anything is wrong.

File formats (CSV, or Parquet by the .parquet / .pq extension; extra columns are kept or ignored):
  events   user, benefit, event_type, timestamp  [channel, order_amount, propensity, control]
           event_type: issued | viewed | claimed | redeemed | expired | ordered
           timestamp: epoch seconds, or a date / datetime ("2026-03-01 12:00"); naive = UTC
           benefit: may be empty only on 'ordered' events; order_amount required (>= 0) on
           'ordered' and 'redeemed' events; propensity in (0, 1] (the logging policy's
           probability of the issue); control: 1 for members of the random control group
  catalog  id  [kind, discount ("150:20" spend 150 get 20, "0.9" or "15%" percent off, "fixed"),
           face_value, cost, threshold, validity_days, scope, scope_value, channel, inventory,
           tags]; any other column (brand, category, campaign) is a free attribute
  users    user  [any attribute columns: numbers, booleans, text, datetimes]
  policy   JSON: eligibility rules, caps, quiet hours, budget (see README "Policy")
"""


def _validate(args) -> int:
    from . import Error
    from .validate import summarize, validate_files

    if not any((args.events, args.catalog, args.users, args.policy)):
        print("perkrec validate: give at least one of --events, --catalog, --users, --policy", file=sys.stderr)
        return 2
    try:
        problems = validate_files(events=args.events, catalog=args.catalog, users=args.users, policy=args.policy,
                                  catalog_id=args.catalog_id, user_id=args.user_id,
                                  max_per_kind=args.max_per_kind)
    except Error as exc:
        print(f"perkrec validate: {exc}", file=sys.stderr)
        return 2
    for p in problems:
        print(p)
    if problems:
        print(f"perkrec validate: {len(problems)} problem(s)", file=sys.stderr)
        return 2
    print(summarize([args.catalog, args.users, args.events]))
    print("perkrec validate: no problems")
    return 0


if __name__ == "__main__":
    sys.exit(main())
