"""Redemption models with and without what members buy and browse, on simulated programs with
behaviour (perkrec.simulate(behavior=True)), in one run.

    .venv/bin/python bench/simulator_behavior.py --seeds 101 202 303 --members 8000 --threads 2

Per seed: the program's issues before the last 30 days train the FM, the issues of the last 30
days are the test set (labels: redeemed within the benefit's validity, `redemption_samples`).
Both models get the FeatureEncoder's DEFAULT_FIELDS (member and benefit attributes, context,
the leak-safe history aggregates); "with behaviour" adds one `behavior` field (the member's
purchases and views of the benefit's items and of their category and brand, member totals,
strictly before each sample's time). The same FM settings for both (8 factors, AdaGrad, early
stopping on the last 20% of the training issues in time). Reported: test AUC and log-loss over
all issues and over the issues of category-scoped benefits, and the AUC against the
simulator's true redemption probability as a score (the ceiling a model could reach).

With --cf-burn-in-days N, two more models: both train only on the issues from N days after the
first one (the simulator's behaviour starts with its issues, and a `behavior_cf` field learns
its item factors from behaviour before the EARLIEST training issue, so it needs a burn-in
without training issues): "with behaviour, after burn-in" (the same fields as "with
behaviour") and "+ behavior_cf" (plus one `behavior_cf` field: ALS item factors from the
purchases before the first training issue, cf_dot / cf_cosine between the benefit's items and
the member's recent purchases). Both are tested on the same last 30 days.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

import perkrec
from perkrec.fm import DEFAULT_FIELDS

BEHAVIOR_FIELD = {
    "name": "behavior",
    "kind": "behavior",
    "levels": ["category", "brand"],
    "actions": ["purchase", "view"],
    "half_life_days": 28,
    "bins": 8,
}

CF_FIELD = {"name": "behavior_cf", "kind": "behavior_cf", "actions": ["purchase"]}


def run(seed: int, members: int, threads: int, cf_burn_in_days: int = 0) -> list:
    program = perkrec.simulate(n_users=members, seed=seed, behavior=True, num_threads=threads)
    samples = perkrec.redemption_samples(program.events, program.catalog, program.users)
    end = program.truth.reference_time.value // 10**9
    cut = end - 30 * 86400
    train = samples[samples["timestamp"] < cut].reset_index(drop=True)
    test = samples[samples["timestamp"] >= cut].reset_index(drop=True)
    # Early stopping on the last 20% of the training issues in time.
    split = int(np.quantile(train["timestamp"], 0.8))
    fit_part, valid_part = train[train["timestamp"] < split], train[train["timestamp"] >= split]
    behavior = (program.behavior, program.items, program.benefit_items)
    scoped = test["scope"].astype(str).to_numpy() == "category"
    truth = program.truth.redemption_probability
    rows = []
    variants = [
        ("without behaviour", DEFAULT_FIELDS, fit_part),
        ("with behaviour", DEFAULT_FIELDS + [BEHAVIOR_FIELD], fit_part),
    ]
    if cf_burn_in_days > 0:
        start = int(train["timestamp"].min()) + cf_burn_in_days * 86400
        late_part = fit_part[fit_part["timestamp"] >= start]
        variants += [
            ("with behaviour, after burn-in", DEFAULT_FIELDS + [BEHAVIOR_FIELD], late_part),
            ("+ behavior_cf", DEFAULT_FIELDS + [BEHAVIOR_FIELD, CF_FIELD], late_part),
        ]
    for name, fields, fit_part in variants:
        t0 = time.perf_counter()
        kwargs = {"behavior": behavior} if name != "without behaviour" else {}
        enc = perkrec.FeatureEncoder(fields, num_threads=threads).fit(
            fit_part, events=program.events, catalog=program.catalog, **kwargs
        )
        X_fit = enc.transform(fit_part, events=program.events, **kwargs)
        X_valid = enc.transform(valid_part, events=program.events, **kwargs)
        X_test = enc.transform(test, events=program.events, **kwargs)
        model = perkrec.FM(factors=8, epochs=12, early_stopping_rounds=2, seed=seed).fit(
            X_fit, fit_part["label"], validation=(X_valid, valid_part["label"]), encoder=enc
        )
        p = model.predict(X_test)
        y = test["label"].to_numpy()
        rows.append(
            {
                "seed": seed,
                "model": name,
                "test_issues": len(test),
                "train_issues": len(fit_part),
                "auc": round(perkrec.auc(y, p), 4),
                "log_loss": round(perkrec.log_loss(y, p), 4),
                "auc_category_scoped": round(perkrec.auc(y[scoped], p[scoped]), 4),
                "category_scoped_issues": int(scoped.sum()),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    # The truth at the plan time as a score of the test issues (a ceiling, not a model).
    p_true = truth[test["user"].to_numpy(), test["benefit"].to_numpy()]
    y = test["label"].to_numpy()
    rows.append(
        {
            "seed": seed,
            "model": "true P at the end (ceiling)",
            "test_issues": len(test),
            "auc": round(perkrec.auc(y, p_true), 4),
            "auc_category_scoped": round(perkrec.auc(y[scoped], p_true[scoped]), 4),
        }
    )
    print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 202, 303])
    parser.add_argument("--members", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--cf-burn-in-days",
        type=int,
        default=0,
        help="also the models trained after this burn-in, with and without a behavior_cf field",
    )
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        rows += run(seed, args.members, args.threads, args.cf_burn_in_days)
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False))


if __name__ == "__main__":
    main()
