"""Evaluation metrics, computed in C++ (parallel over members). Argument order follows
scikit-learn: ground truth first."""

from __future__ import annotations

import numpy as np

from . import _core
from ._util import csr_parts, float_array, int_array, int_scalar


def _labels(y_true) -> np.ndarray:
    y = np.asarray(y_true)
    if y.dtype.kind == "b":
        return np.ascontiguousarray(y, dtype=np.uint8)
    return int_array(y, np.uint8, "y_true")


def auc(y_true, y_score) -> float:
    """Area under the ROC curve; ties count one half."""
    return _core.auc(float_array(y_score, np.float32, "y_score"), _labels(y_true))


def log_loss(y_true, y_prob, eps: float = 1e-15) -> float:
    """Mean binary cross-entropy with probabilities clipped to [eps, 1 - eps]."""
    return _core.log_loss(float_array(y_prob, np.float32, "y_prob"), _labels(y_true), float(eps))


def ranking_metrics(relevant, recommended, k: int = None, num_threads: int = 0) -> dict:
    """precision, recall, ndcg, map, hit_rate at k, and catalog coverage.

    ``relevant``: scipy sparse, row i = the benefits relevant to member i (any stored entry).
    ``recommended``: 2-D array, row i = member i's ranked benefit indices (-1 = empty slot).
    Averages run over rows with at least one relevant benefit; see eval/metrics.hpp.
    """
    rec = np.asarray(recommended)
    if rec.ndim != 2:
        raise _core.InputError(
            f"ranking_metrics: recommended must be 2-D (got {rec.ndim} dimensions)"
        )
    if k is None:
        k = rec.shape[1]
    if k > rec.shape[1]:
        raise _core.InputError(
            f"ranking_metrics: k={k} exceeds the {rec.shape[1]} recommended columns"
        )
    rec = np.ascontiguousarray(rec[:, :k])
    flat = int_array(rec.ravel(), np.int32, "recommended")
    parts = csr_parts(relevant, "relevant")
    if parts[3] != rec.shape[0]:
        raise _core.InputError(
            f"ranking_metrics: relevant has {parts[3]} rows, recommended {rec.shape[0]}"
        )
    return _core.ranking_metrics(flat, int(k), parts, int(num_threads))


def catalog_coverage(recommended, n_benefits: int) -> float:
    """Share of the catalog recommended at least once (-1 entries ignored)."""
    return _core.catalog_coverage(
        int_array(np.asarray(recommended).ravel(), np.int32, "recommended"),
        int_scalar(n_benefits, "n_benefits"),
    )
