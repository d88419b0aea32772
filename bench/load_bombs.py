"""Peak memory of loading crafted model files ("bombs") that declare far more than their bytes
hold, each in a fresh process, against the same process loading a small valid file.

    .venv/bin/python bench/load_bombs.py [--python PYTHON_TO_MEASURE]

Bombs: an event log of 3 events whose header declares 2^27 members; a header whose JSON is
short tokens that expand in memory (`[],` x millions) at 8 and 32 MiB; a string list whose
offsets claim more bytes than exist. Prints the file size, the loader's outcome and the peak
RSS above the baseline, as a multiple of the file size.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import perkrec

MAGIC = b"\x89PRK\r\n\x1a\n"


def container(kind: str, content: dict, arrays: list, header_text: str | None = None) -> bytes:
    """A container as an attacker writes it: any header, arrays placed as declared, valid CRC."""

    def layout(start):
        entries, cursor = [], start
        for name, dtype, shape, data in arrays:
            entries.append(
                {"name": name, "dtype": dtype, "shape": shape, "offset": cursor, "bytes": len(data)}
            )
            cursor = (cursor + len(data) + 63) // 64 * 64
        return entries, cursor

    start = 0
    for _ in range(8):
        entries, end = layout(start)
        text = header_text or json.dumps(
            {
                "format": "perkrec-model",
                "kind": kind,
                "library_version": "0.1.0",
                "content": content,
                "arrays": entries,
            },
            separators=(",", ":"),
        )
        new_start = (32 + len(text) + 63) // 64 * 64
        if new_start == start:
            break
        start = new_start
    body = bytearray(end)
    body[0:8] = MAGIC
    body[8:12] = struct.pack("<I", 1)
    body[12:16] = struct.pack("<I", len(text))
    body[16:24] = struct.pack("<Q", end + 8)
    body[32 : 32 + len(text)] = text.encode()
    for (name, dtype, shape, data), e in zip(arrays, entries):
        body[e["offset"] : e["offset"] + len(data)] = data
    return bytes(body) + struct.pack("<I", perkrec._core.crc32c(bytes(body))) + b"PRKE"


def _peak_kib(python: str, path: str):
    code = (
        "import sys, perkrec\n"
        "try:\n    perkrec.load(sys.argv[1]); print('loaded')\n"
        "except perkrec.Error as e:\n    print(type(e).__name__ + ': ' + str(e)[:110])\n"
    )
    with tempfile.NamedTemporaryFile("r") as out:
        p = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", out.name, python, "-c", code, path],
            capture_output=True,
            text=True,
        )
        return int(out.read().split()[-1]), (p.stdout.strip() or p.stderr.strip()[-200:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    import numpy as np

    with tempfile.TemporaryDirectory() as d:
        files = {}
        ids = {"key_type": "empty", "size": 0}
        empty = [("user_ids.ids", "i64", [0], b""), ("benefit_ids.ids", "i64", [0], b"")]
        n = 3
        cols = [
            ("user", "i32", [n], np.array([0, 1, 2], np.int32).tobytes()),
            ("benefit", "i32", [n], np.array([0, 0, 1], np.int32).tobytes()),
            ("type", "u8", [n], np.zeros(n, np.uint8).tobytes()),
            ("timestamp", "i64", [n], np.array([10, 20, 30], np.int64).tobytes()),
            ("channel", "i16", [n], np.full(n, -1, np.int16).tobytes()),
            ("order_amount", "f32", [n], np.zeros(n, np.float32).tobytes()),
        ]
        log = {
            "n_users": 3,
            "n_benefits": 2,
            "events": n,
            "has_propensity": False,
            "has_control": False,
            "channel_names": [],
            "user_ids.": ids,
            "benefit_ids.": ids,
        }
        files["event log, 3 events (valid)"] = container("EventLog", log, cols + empty)
        files["event log declaring 2^27 members"] = container(
            "EventLog", {**log, "n_users": 2**27}, cols + empty
        )
        for mib in (8, 32):
            count = mib * 2**20 // 3
            text = (
                '{"format":"perkrec-model","kind":"IdMap","library_version":"0.1.0","content":{"x":['
                + "[]," * (count - 1)
                + '[]]},"arrays":[]}'
            )
            files[f"header of {mib} MiB of `[],`"] = container("IdMap", {}, [], header_text=text)
        words = b"alphabetagamma"
        offsets = np.array([0, 5, 9 + 4096, 14], np.int64).tobytes()
        files["string list offset past its bytes"] = container(
            "IdMap",
            {"key_type": "string", "size": 3},
            [("ids.bytes", "u8", [len(words)], words), ("ids.offsets", "i64", [4], offsets)],
        )
        base_kib, _ = _peak_kib(args.python, os.devnull)
        print(
            f"python: {args.python}; baseline peak RSS (import perkrec) {base_kib / 1024:.0f} MiB"
        )
        print(f"{'file':38s} {'size':>10s} {'peak above baseline':>20s} {'x size':>7s}  outcome")
        for name, data in files.items():
            path = os.path.join(d, "f.perk")
            with open(path, "wb") as f:
                f.write(data)
            kib, outcome = _peak_kib(args.python, path)
            extra = max(kib - base_kib, 0) * 1024
            print(
                f"{name:38s} {len(data):>10,d} {extra / 2**20:>16.1f} MiB {extra / len(data):>7.1f}  {outcome}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
