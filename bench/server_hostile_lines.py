"""benefit_server under hostile input: a million request lines, half of them bad (random bytes,
invalid UTF-8, broken JSON, huge numbers, deep nesting, over-long lines), through a pipe.

Every good line must be answered exactly as in a clean run of the good lines alone, every bad
line with an error answer, and the process must exit 0. Prints the counts, the wall time and
the peak memory of the server.

    .venv/bin/python bench/server_hostile_lines.py --server build/release/examples/cpp/perkrec_benefit_server
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time


def bad_lines(rng: random.Random, n: int):
    kinds = []
    for i in range(n):
        k = i % 9
        if k == 0:
            # Random bytes (not blank: blank lines are skipped, not answered).
            line = b"~" + bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200))).replace(
                b"\n", b" "
            )
        elif k == 1:
            line = b'{"id": "u%d", "member": "\xff\xfe%d"}' % (i, i)
        elif k == 2:
            line = b'{"id": "t%d", "member": "1", "time": %d}' % (
                i,
                rng.choice([2**63 - 1, -(2**63), 10**17]),
            )
        elif k == 3:
            line = b'{"id": "n%d", "member": "1", "n": %d}' % (i, rng.choice([0, 101, 2**62, -5]))
        elif k == 4:
            depth = rng.randint(65, 20000)
            line = b"[" * depth + b"]" * depth
        elif k == 5:
            line = b'{"id": "x%d", "member": "1", ' % i  # cut short
        elif k == 6 and i % 900 == 6:  # over the 64 KiB line limit (a few: they are big)
            line = b'{"id": "l%d", "member": "' % i + b"9" * (70_000 + rng.randint(0, 1000)) + b'"}'
        elif k == 6:
            line = b'{"id": "m%d", "member": "' % i + b"9" * rng.randint(20, 2000) + b'"}'
        elif k == 7:
            line = b'{"id": "d%d", "id": "e", "member": "1"}' % i
        else:
            line = b'{"id": 1e999, "member": "1"}'
        kinds.append(line)
    return kinds


def run(server: list, data: bytes):
    """(exit code, stdout, stderr, wall seconds, peak RSS MiB) of one server run."""
    # GNU time measures the server alone (the rusage of a child forked from this process would
    # count this process's own memory).
    with (
        tempfile.TemporaryFile() as fin,
        tempfile.TemporaryFile() as fout,
        tempfile.TemporaryFile() as ferr,
        tempfile.NamedTemporaryFile("r") as rss,
    ):
        fin.write(data)
        fin.seek(0)
        start = time.perf_counter()
        rc = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", rss.name] + server,
            stdin=fin,
            stdout=fout,
            stderr=ferr,
        ).returncode
        wall = time.perf_counter() - start
        fout.seek(0)
        ferr.seek(0)
        return (
            rc,
            fout.read(),
            ferr.read().decode("utf-8", "replace"),
            wall,
            int(rss.read().split()[-1]) / 1024,
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", default="build/release/examples/cpp/perkrec_benefit_server")
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as d:
        n_good = args.lines // 2
        subprocess.run(
            [args.server, "--generate", d, "--members", "2000", "--requests", str(n_good)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with open(os.path.join(d, "requests.jsonl"), "rb") as f:
            good = [line for line in f.read().split(b"\n") if line.strip()]
        # --generate plants two bad lines among the good ones; keep only lines that answer cleanly.
        server = [
            args.server,
            "--catalog",
            f"{d}/catalog.json",
            "--users",
            f"{d}/users.perk",
            "--policy",
            f"{d}/policy.json",
            "--model",
            f"{d}/popularity.perk",
            "--model",
            f"{d}/als.perk",
            "--preference",
            f"{d}/preference.perk",
            "--blend",
            f"{d}/blend.json",
            "--history",
            f"{d}/history.perk",
            "--plan-time",
            "1775001600",
            "--threads",
            str(args.threads),
        ]
        rc, clean_out, _, clean_wall, clean_rss = run(server, b"\n".join(good) + b"\n")
        assert rc == 0, rc
        clean = clean_out.split(b"\n")[:-1]
        assert len(clean) == len(good)
        bad = bad_lines(rng, args.lines - len(good))
        order = [("g", i) for i in range(len(good))] + [("b", i) for i in range(len(bad))]
        # Bad lines are scattered, good lines keep their order (the pacer's decisions depend on it).
        rng.shuffle(order)
        gi = iter(range(len(good)))
        mixed, kinds = [], []
        for kind, i in order:
            if kind == "g":
                mixed.append(good[next(gi)])
                kinds.append("g")
            else:
                mixed.append(bad[i])
                kinds.append("b")
        data = b"\n".join(mixed) + b"\n"
        rc, out, err, wall, rss = run(server, data)
        answers = out.split(b"\n")[:-1]
        g = 0
        mismatched = errors_ok = not_json = 0
        for kind, a in zip(kinds, answers):
            try:
                parsed = json.loads(a.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                not_json += 1
                continue
            if kind == "g":
                mismatched += a != clean[g]
                g += 1
            else:
                errors_ok += "error" in parsed
        print(
            f"lines {len(mixed)} (good {len(good)}, bad {len(bad)}), {len(data) / 2**20:.0f} MiB, "
            f"threads {args.threads}"
        )
        print(
            f"exit {rc}; answers {len(answers)}; not JSON {not_json}; good answers differing from the clean "
            f"run {mismatched}; bad lines answered with an error {errors_ok} of {len(bad)}"
        )
        print(
            f"wall {wall:.1f} s ({len(mixed) / wall:,.0f} lines/s; clean run of the good lines {clean_wall:.1f} s); "
            f"peak RSS of the server {rss:.0f} MiB (clean run {clean_rss:.0f} MiB)"
        )
        print("server: " + err.strip().splitlines()[-1] if err.strip() else "")
        ok = (
            rc == 0
            and len(answers) == len(mixed)
            and not_json == 0
            and mismatched == 0
            and errors_ok == len(bad)
        )
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
