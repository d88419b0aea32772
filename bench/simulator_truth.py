"""How much of the simulator's planted preference truth simple estimators recover.

Not a speed benchmark: it sizes what the simulated data supports, so that targets set on the
preference model are measured against a known ceiling. For members with at least 10 events
it compares per-dimension claim-rate estimates with ``truth.preferences`` (each member's exact
claim rate per preference dimension relative to the population's) by Spearman correlation.

    .venv/bin/python bench/simulator_truth.py [--members 20000] [--seed 3]
"""

from __future__ import annotations

import argparse
import json
import warnings

import numpy as np
from scipy.stats import spearmanr

import perkrec


def counts(program, kind: str, dims: np.ndarray) -> np.ndarray:
    log = program.events
    mask = log.event_types == perkrec.EVENT_TYPES.index(kind)
    matrix = np.zeros((log.n_users, dims.shape[0]))
    np.add.at(matrix, (log.users[mask], log.benefits[mask]), 1)
    return matrix @ dims


def median_spearman(a: np.ndarray, b: np.ndarray, rows: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(np.nanmedian([spearmanr(a[u], b[u]).correlation for u in rows]))


def measure(members: int, seed: int, issues_per_week: float, prior_strength: float = 8.0) -> dict:
    program = perkrec.simulate(n_users=members, seed=seed, issues_per_week=issues_per_week)
    names, dims = program.catalog.dimensions()
    issued, claimed = counts(program, "issued", dims), counts(program, "claimed", dims)
    truth = np.log(program.truth.preferences.to_numpy())
    events = np.diff(program.events.user_offsets)
    rows = np.flatnonzero(events >= 10)
    population = claimed.sum(0) / issued.sum(0)
    naive = np.log(
        (claimed + prior_strength * population + 1e-12) / (issued + prior_strength) / population
    )
    archetype = program.truth.members["archetype"].cat.codes.to_numpy()
    by_archetype = np.vstack(
        [
            claimed[archetype == a].sum(0) / np.maximum(issued[archetype == a].sum(0), 1)
            for a in range(len(perkrec.ARCHETYPES))
        ]
    )
    oracle = np.log(
        (claimed + prior_strength * by_archetype[archetype] + 1e-12)
        / (issued + prior_strength)
        / population
    )
    archetype_truth = np.vstack(
        [truth[archetype == a].mean(0) for a in range(len(perkrec.ARCHETYPES))]
    )
    no_channel = [i for i, n in enumerate(names) if not n.startswith("channel:")]
    sample = rows[::4]
    return {
        "issues_per_week": issues_per_week,
        "per_member": {
            kind: round(
                float(counts(program, kind, np.eye(len(program.catalog))).sum() / members), 1
            )
            for kind in ("issued", "viewed", "claimed")
        },
        "members_with_10_events": int(len(rows)),
        "naive_median_spearman": round(median_spearman(naive, truth, sample), 3),
        "naive_pooled_spearman": round(
            float(spearmanr(naive[rows].ravel(), truth[rows].ravel()).correlation), 3
        ),
        "archetype_prior_median_spearman": round(median_spearman(oracle, truth, sample), 3),
        "archetype_mean_truth_vs_member_truth": round(
            median_spearman(archetype_truth[archetype], truth, sample), 3
        ),
        "same_without_channel_dimensions": round(
            median_spearman(
                archetype_truth[archetype][:, no_channel], truth[:, no_channel], sample
            ),
            3,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    for issues_per_week in (1.5, 3.0):
        print(json.dumps(measure(args.members, args.seed, issues_per_week)))


if __name__ == "__main__":
    main()
