"""Writes the seed corpus of the fuzz targets (fuzz/perkrec_fuzz.cpp) from real files: the
embedding example's demo set-up (models, policy, catalog, requests), small models of every
other kind saved by the Python package, params JSON, discount notations and event columns.

    .venv/bin/python fuzz/make_corpus.py --server build/release/examples/cpp/perkrec_benefit_server \
        --out build/fuzz/corpus
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import tempfile

import numpy as np
import pandas as pd
import scipy.sparse as sp

import perkrec


def write(folder: str, name: str, data: bytes) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = args.out
    shutil.rmtree(out, ignore_errors=True)
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(
            [args.server, "--generate", d, "--members", "200", "--requests", "40"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for name in (
            "users.perk",
            "popularity.perk",
            "als.perk",
            "preference.perk",
            "history.perk",
        ):
            with open(os.path.join(d, name), "rb") as f:
                write(f"{out}/model", name, f.read())
        for name in ("policy.json", "blend.json", "catalog.json"):
            with open(os.path.join(d, name), "rb") as f:
                write(f"{out}/json", name, f.read())
        with open(os.path.join(d, "requests.jsonl"), "rb") as f:
            for i, line in enumerate(f.read().splitlines()):
                write(f"{out}/request", f"r{i}", line)

    # Every other kind, small.
    rng = np.random.default_rng(1)
    matrix = sp.csr_matrix((rng.random((30, 12)) < 0.3).astype(np.float32))
    models = {
        "bpr.perk": perkrec.BPR(factors=4, iterations=2).fit(matrix),
        "item_knn.perk": perkrec.ItemKNN().fit(matrix),
        "ids.perk": perkrec.IdMap(["a", "b", "caf\u00e9"]),
        "int_ids.perk": perkrec.IdMap([3, 7, 11]),
    }
    X = sp.csr_matrix((rng.random((40, 6)) < 0.4).astype(np.float32))
    y = (rng.random(40) < 0.5).astype(np.float32)
    models["fm.perk"] = perkrec.FM(factors=2, epochs=2).fit(X, y)
    models["uplift.perk"] = perkrec.UpliftModel(learner="dr", factors=2, epochs=2).fit(
        X, y, (rng.random(40) < 0.5).astype(np.int32)
    )
    program = perkrec.simulate(n_users=60, seed=2)
    models["clv.perk"] = perkrec.CLVModel(time_unit="day", interval_draws=5).fit(program.events)
    models["clv_paretonbd.perk"] = perkrec.CLVModel(
        model="paretonbd", time_unit="day", interval_draws=5
    ).fit(program.events)
    models["clv_bgbb.perk"] = perkrec.CLVModel(
        model="bgbb", time_unit="week", occasion="week", interval_draws=5
    ).fit(program.events)
    items = perkrec.ItemCatalog.from_frame(
        pd.DataFrame({"item_id": ["a", "b", "c", "d"], "category": ["x", "x", "y", "z"]})
    )
    lines = pd.DataFrame(
        {
            "user_id": rng.integers(0, 8, 60),
            "item_id": rng.choice(["a", "b", "c", "d"], 60),
            "timestamp": 1767225600 + rng.integers(0, 86400 * 30, 60),
        }
    )
    models["interest.perk"] = perkrec.InterestModel().fit(
        perkrec.BehaviorLog.from_frame(lines, items=items), items
    )
    models["catalog.perk"] = program.catalog
    models["events.perk"] = program.events
    models["benefit_planner.perk"] = perkrec.BenefitPlanner(num_threads=1).fit(
        program.events, program.catalog, program.users
    )
    shopping = perkrec.simulate(n_users=60, seed=2, behavior=True)
    models["benefit_planner_behavior.perk"] = perkrec.BenefitPlanner(num_threads=1).fit(
        shopping.events,
        shopping.catalog,
        shopping.users,
        behavior=(shopping.behavior, shopping.items, shopping.benefit_items),
    )
    models["behavior_log.perk"] = shopping.behavior  # with its member ids
    models["item_catalog.perk"] = shopping.items
    models["benefit_items.perk"] = shopping.benefit_items
    for name, obj in models.items():
        write(f"{out}/model", name, obj.to_bytes())
        if hasattr(obj, "get_params"):
            write(
                f"{out}/json",
                name.replace(".perk", "_params.json"),
                json.dumps(obj.get_params()).encode(),
            )

    for i, text in enumerate(
        [
            "200:30",
            "15%",
            "0.85",
            "fixed",
            "spend 150 get 20",
            "100-10",
            "20",
            "free_shipping",
            "1e308:1",
            "-5:1",
            "50:60",
            "%",
            "",
        ]
    ):
        write(f"{out}/discount", f"d{i}", text.encode())

    # Event columns: a row count, rows of (user, benefit, type, time, channel, amount,
    # propensity, control), a flags byte.
    for seed in range(4):
        r = np.random.default_rng(seed)
        n = int(r.integers(1, 12))
        rows = b"".join(
            struct.pack(
                "<iiBqhffB",
                int(r.integers(0, 5)),
                int(r.integers(-1, 4)),
                int(r.integers(0, 6)),
                1_700_000_000 + int(r.integers(0, 10**6)),
                int(r.integers(-1, 3)),
                float(r.random() * 50),
                float(r.random() * 0.9 + 0.1),
                int(r.integers(0, 2)),
            )
            for _ in range(n)
        )
        write(f"{out}/events", f"e{seed}", bytes([n]) + rows + bytes([int(r.integers(0, 32))]))


if __name__ == "__main__":
    main()
