"""Metrics against scikit-learn and reference implementations on random data."""

import numpy as np
import pytest
import scipy.sparse as sp

import perkrec

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def test_auc_and_log_loss_match_sklearn():
    rng = np.random.default_rng(0)
    for trial in range(5):
        y = rng.integers(0, 2, size=5000)
        scores = (rng.normal(size=5000) + 0.7 * y).astype(np.float32)
        if trial == 0:
            scores = np.round(scores, 1)  # many ties
        assert perkrec.auc(y, scores) == pytest.approx(
            sklearn_metrics.roc_auc_score(y, scores), abs=1e-9
        )
        p = (1 / (1 + np.exp(-scores))).astype(np.float32)
        assert perkrec.log_loss(y, p) == pytest.approx(
            sklearn_metrics.log_loss(y, p.astype(np.float64)), rel=1e-6
        )


def reference_ranking(relevant, recommended, k):
    """Straightforward per-row definitions (see include/perkrec/eval/metrics.hpp)."""
    sums = dict(precision=0.0, recall=0.0, ndcg=0.0, map=0.0, hit_rate=0.0)
    rows = 0
    for r in range(relevant.shape[0]):
        rel = set(relevant.indices[relevant.indptr[r] : relevant.indptr[r + 1]].tolist())
        if not rel:
            continue
        rows += 1
        hits, dcg, ap = 0, 0.0, 0.0
        for i, b in enumerate(recommended[r][:k]):
            if b in rel:
                hits += 1
                dcg += 1 / np.log2(i + 2)
                ap += hits / (i + 1)
        ideal = min(k, len(rel))
        sums["precision"] += hits / k
        sums["recall"] += hits / len(rel)
        sums["ndcg"] += dcg / sum(1 / np.log2(i + 2) for i in range(ideal))
        sums["map"] += ap / ideal
        sums["hit_rate"] += hits > 0
    return {key: value / rows for key, value in sums.items()}, rows


def test_ranking_metrics_match_references_and_sklearn_ndcg():
    rng = np.random.default_rng(1)
    n_rows, n_items, k = 400, 80, 10
    relevant = sp.random(n_rows, n_items, density=0.08, format="csr", random_state=2)
    relevant.data[:] = 1
    scores = rng.random((n_rows, n_items))
    recommended = np.argsort(-scores, axis=1)[:, :k].astype(np.int32)
    got = perkrec.ranking_metrics(relevant, recommended, k=k)
    expected, rows = reference_ranking(relevant, recommended, k)
    assert got["rows_evaluated"] == rows
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key
    # scikit-learn's NDCG@k with binary relevance over the rows that have any relevant item.
    dense = relevant.toarray()
    has = dense.sum(axis=1) > 0
    assert got["ndcg"] == pytest.approx(
        sklearn_metrics.ndcg_score(dense[has], scores[has], k=k), abs=1e-9
    )
    assert got["coverage"] == pytest.approx(len(np.unique(recommended)) / n_items)
    assert perkrec.catalog_coverage(recommended, n_items) == pytest.approx(got["coverage"])


def test_metric_inputs_are_validated():
    with pytest.raises(perkrec.InputError, match="both classes"):
        perkrec.auc([1, 1], [0.2, 0.3])
    with pytest.raises(perkrec.InputError, match="position 1"):
        perkrec.auc([1, 0], [0.2, np.nan])
    with pytest.raises(perkrec.InputError, match="0 or 1"):
        perkrec.auc([1, 2], [0.2, 0.1])
    relevant = sp.csr_matrix(np.eye(3))
    with pytest.raises(perkrec.InputError, match="twice"):
        perkrec.ranking_metrics(relevant, np.array([[0, 0], [1, 2], [2, 1]]))
    with pytest.raises(perkrec.InputError, match="rows"):
        perkrec.ranking_metrics(relevant, np.array([[0, 1]]))
