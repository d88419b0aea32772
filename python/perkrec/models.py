"""Models. Every model follows one contract: fit / score / recommend / save / load /
get_params, with the same argument names in Python and C++."""

from __future__ import annotations

import json
from typing import Optional

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import _blas, _core
from ._estimator import _Estimator, _Threaded
from ._progress import ProgressArg, resolve_progress
from ._util import csr_parts, int_array, int_scalar
from ._serializable import _Serializable
from .data import IdMap, _Indexed


def _top_n(n) -> int:
    """``n`` of a top-n call: an integer >= 0; results are never wider than the catalog (the
    core clamps), so any larger n is passed as the largest the core takes."""
    return min(int_scalar(n, "n", 0, 2**63 - 1), 2**31 - 1)


#: Default ``max_growth`` of partial_fit_users / partial_fit_benefits (C++ kDefaultMaxGrowth).
MAX_GROWTH = _core.DEFAULT_MAX_GROWTH


class _Recommender(_Serializable, _Indexed, _Estimator, _Threaded):
    """Shared Python side of the recommender contract (get_params / set_params: _Estimator)."""

    def score(self, users, benefits) -> np.ndarray:
        """Scores of (users[i], benefits[i]) pairs, float32."""
        return self._impl.score(
            int_array(users, np.int32, "users"), int_array(benefits, np.int32, "benefits")
        )

    def recommend(
        self,
        users,
        user_benefits=None,
        n: int = 10,
        *,
        filter_already_interacted: bool = True,
        exclude=None,
        allow=None,
        eligibility=None,
        eligibility_blocks: bool = False,
        as_frame: bool = False,
    ):
        """Top-``n`` benefits for one member or a batch, in one fused pass in C++.

        ``user_benefits``: scipy CSR whose row i holds users[i]'s interactions (as implicit's
        ``user_items[userids]``); with ``filter_already_interacted`` they are never returned.
        ``exclude``/``allow``: benefit indices never returned / the only ones allowed.
        ``eligibility``: scipy CSR, row i lists the benefits users[i] may receive (or may not,
        with ``eligibility_blocks=True``).

        Returns (ids, scores): 1-D for a single member (only real results), 2-D for a batch
        (rows padded with id -1 and score -inf), or a DataFrame (user, rank, benefit, score)
        with external ids when ``as_frame``.
        """
        single = np.ndim(users) == 0
        user_idx = int_array(users, np.int32, "users")
        rows = len(user_idx)
        exclude_rows = None
        if filter_already_interacted and user_benefits is not None:
            exclude_rows = csr_parts(user_benefits, "user_benefits", (rows, self.n_benefits))
        elig = (
            None
            if eligibility is None
            else csr_parts(eligibility, "eligibility", (rows, self.n_benefits))
        )
        ids, scores = self._impl.recommend(
            user_idx,
            _top_n(n),
            exclude_rows,
            None if exclude is None else int_array(exclude, np.int32, "exclude"),
            None if allow is None else int_array(allow, np.int32, "allow"),
            elig,
            bool(eligibility_blocks),
        )
        if as_frame:
            return self._top_k_frame(user_idx, ids, scores)
        if single:
            keep = ids[0] >= 0
            return ids[0][keep], scores[0][keep]
        return ids, scores

    def _top_k_frame(self, users: np.ndarray, ids: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
        k = ids.shape[1]
        valid = (ids >= 0).ravel()
        user_col = np.repeat(users, k)[valid]
        benefit_col = ids.ravel()[valid]
        if self.user_ids is not None:
            user_col = self.user_ids.to_external(user_col)
        if self.benefit_ids is not None:
            benefit_col = self.benefit_ids.to_external(benefit_col)
        return pd.DataFrame(
            {
                "user": user_col,
                "rank": np.tile(np.arange(1, k + 1), len(users))[valid],
                "benefit": benefit_col,
                "score": scores.ravel()[valid],
            }
        )


class Popularity(_Recommender):
    """The baseline: a benefit's score is the share of members who interacted with it
    (``weighting='members'``) or its total confidence per member (``'confidence'``).

    >>> model = Popularity().fit(train_matrix)
    >>> ids, scores = model.recommend(user_ids, train_matrix[user_ids], n=10)
    """

    _core_class = _core.Popularity

    def __init__(self, weighting: str = "members", num_threads: int = 0):
        self._impl = _core.Popularity(
            json.dumps({"weighting": weighting, "num_threads": num_threads})
        )

    def fit(
        self,
        user_benefits,
        *,
        user_ids: Optional[IdMap] = None,
        benefit_ids: Optional[IdMap] = None,
        progress: ProgressArg = False,
    ) -> "Popularity":
        """Learns from a members x benefits scipy sparse matrix; ``user_ids``/``benefit_ids``
        attach external ids (saved with the model, used by ``recommend(as_frame=True)``)."""
        self._impl.fit(csr_parts(user_benefits, "user_benefits"), resolve_progress(progress))
        if user_ids is not None or benefit_ids is not None:
            self.set_ids(user_ids, benefit_ids)
        return self

    @property
    def benefit_scores(self) -> np.ndarray:
        return self._impl.benefit_scores()

    def __repr__(self) -> str:
        state = (
            f"{self.n_users} members x {self.n_benefits} benefits"
            if self._impl.fitted
            else "not fitted"
        )
        return f"Popularity({self.get_params()}, {state})"


# ---------------------------------------------------------------------------------------------
# Collaborative filtering: ALS, BPR, ItemKNN. One contract on top of _Recommender:
# fit / score / recommend / recommend_new / fold_in / similar_benefits / similar_users /
# partial_fit_users / partial_fit_benefits / save / load / get_params.


def _row_positions(rows: int) -> np.ndarray:
    return np.arange(rows, dtype=np.int32)


class _CollaborativeRecommender(_Recommender):
    """Shared Python side of ALS, BPR and ItemKNN."""

    _params: dict = {}

    def __init__(self, **params):
        self._impl = self._core_class(json.dumps(params))

    def _fit(self, args, user_ids, benefit_ids):
        if user_ids is not None or benefit_ids is not None:
            self.set_ids(user_ids, benefit_ids)
        return self

    def recommend_new(
        self,
        user_benefits,
        n: int = 10,
        *,
        filter_already_interacted: bool = True,
        exclude=None,
        allow=None,
        eligibility=None,
        eligibility_blocks: bool = False,
        as_frame: bool = False,
    ):
        """Top-``n`` for members unseen at training, from their interaction rows (scipy CSR,
        rows x n_benefits), without retraining (ALS: exact solve; BPR: a few SGD passes with
        benefit factors fixed; ItemKNN: directly). Returns (ids, scores) of shape rows x n, or a
        DataFrame whose ``user`` column is the row position."""
        parts = csr_parts(user_benefits, "user_benefits")
        rows = parts[3]
        if parts[4] != self.n_benefits:
            raise _core.InputError(
                f"user_benefits: expected {self.n_benefits} columns (got {parts[4]})"
            )
        elig = (
            None
            if eligibility is None
            else csr_parts(eligibility, "eligibility", (rows, self.n_benefits))
        )
        ids, scores = self._impl.recommend_new(
            parts,
            _top_n(n),
            bool(filter_already_interacted),
            None if exclude is None else int_array(exclude, np.int32, "exclude"),
            None if allow is None else int_array(allow, np.int32, "allow"),
            elig,
            bool(eligibility_blocks),
        )
        if as_frame:
            k = ids.shape[1]
            valid = (ids >= 0).ravel()
            benefit_col = ids.ravel()[valid]
            if self.benefit_ids is not None:
                benefit_col = self.benefit_ids.to_external(benefit_col)
            return pd.DataFrame(
                {
                    "user": np.repeat(_row_positions(rows), k)[valid],
                    "rank": np.tile(np.arange(1, k + 1), rows)[valid],
                    "benefit": benefit_col,
                    "score": scores.ravel()[valid],
                }
            )
        return ids, scores

    def _similar(self, method, query, n, exclude, allow, noun):
        single = np.ndim(query) == 0
        idx = int_array(query, np.int32, noun)
        ids, scores = method(
            idx,
            _top_n(n),
            None if exclude is None else int_array(exclude, np.int32, "exclude"),
            None if allow is None else int_array(allow, np.int32, "allow"),
        )
        if single:
            keep = ids[0] >= 0
            return ids[0][keep], scores[0][keep]
        return ids, scores

    def similar_benefits(self, benefits, n: int = 10, *, exclude=None, allow=None):
        """Most similar benefits to each given benefit (itself included), as (ids, scores)."""
        return self._similar(self._impl.similar_benefits, benefits, n, exclude, allow, "benefits")

    def similar_users(self, users, n: int = 10, *, exclude=None, allow=None):
        """Most similar members to each given member (itself included), as (ids, scores)."""
        return self._similar(self._impl.similar_users, users, n, exclude, allow, "users")

    def partial_fit_users(
        self,
        users,
        user_benefits,
        *,
        user_ids: Optional[IdMap] = None,
        max_growth: int = MAX_GROWTH,
    ):
        """Adds or refreshes members from their interaction rows (row i for users[i]) without
        a full retrain; ids >= n_users grow the model. Growing drops attached member ids unless
        ``user_ids`` (one id per member after growth) is given. Ids must be below
        ``n_users + max_growth`` (default 2**20), so a mistyped id cannot allocate gigabytes;
        raise ``max_growth`` to grow further in one call."""
        idx = int_array(users, np.int32, "users")
        self._impl.partial_fit_users(
            idx,
            csr_parts(user_benefits, "user_benefits", (len(idx), self.n_benefits)),
            int_scalar(max_growth, "max_growth"),
        )
        if user_ids is not None:
            self.set_ids(user_ids, self.benefit_ids)
        return self

    def partial_fit_benefits(
        self,
        benefits,
        benefit_users,
        *,
        benefit_ids: Optional[IdMap] = None,
        max_growth: int = MAX_GROWTH,
    ):
        """Adds or refreshes benefits from who interacted with them (``benefit_users``:
        scipy CSR, benefits x n_users); ids >= n_benefits grow the model, up to
        ``n_benefits + max_growth`` (default 2**20)."""
        idx = int_array(benefits, np.int32, "benefits")
        self._impl.partial_fit_benefits(
            idx,
            csr_parts(benefit_users, "benefit_users", (len(idx), self.n_users)),
            int_scalar(max_growth, "max_growth"),
        )
        if benefit_ids is not None:
            self.set_ids(self.user_ids, benefit_ids)
        return self

    def __repr__(self) -> str:
        state = (
            f"{self.n_users} members x {self.n_benefits} benefits"
            if self._impl.fitted
            else "not fitted"
        )
        return f"{type(self).__name__}({self.get_params()}, {state})"


class _FactorModel(_CollaborativeRecommender):
    @property
    def user_factors(self) -> np.ndarray:
        """Member factors, n_users x dim float32 (a copy)."""
        return self._impl.user_factors()

    @property
    def benefit_factors(self) -> np.ndarray:
        """Benefit factors, n_benefits x dim float32 (a copy)."""
        return self._impl.benefit_factors()

    def fold_in(self, user_benefits) -> np.ndarray:
        """Factors of new members from their interaction rows (rows x dim), model unchanged."""
        return self._impl.fold_in(csr_parts(user_benefits, "user_benefits"))


class ALS(_FactorModel):
    """Implicit-feedback ALS (Hu, Koren, Volinsky): confidence ``1 + alpha * value``, solved by
    conjugate gradient (``cg_steps`` per row, warm-started) or exactly (``cg_steps=0``,
    Cholesky). Results are identical for any ``num_threads``.

    >>> model = ALS(factors=64, iterations=15).fit(train_matrix)
    >>> ids, scores = model.recommend(user_ids, train_matrix[user_ids], n=10)
    >>> model.explain(train_matrix[7], ids[0][0])      # which history benefits drove it
    """

    _core_class = _core.ALS

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.01,
        alpha: float = 1.0,
        iterations: int = 15,
        cg_steps: int = 3,
        calculate_training_loss: bool = False,
        num_threads: int = 0,
        seed: int = 42,
    ):
        super().__init__(
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            iterations=iterations,
            cg_steps=cg_steps,
            calculate_training_loss=calculate_training_loss,
            num_threads=num_threads,
            seed=seed,
        )

    def fit(
        self,
        user_benefits,
        *,
        user_ids: Optional[IdMap] = None,
        benefit_ids: Optional[IdMap] = None,
        progress: ProgressArg = False,
    ) -> "ALS":
        """Learns from a members x benefits scipy sparse matrix of non-negative values."""
        parts = csr_parts(user_benefits, "user_benefits")
        with _blas.limited(1):  # numpy's BLAS pool must not compete with our OpenMP threads
            self._impl.fit(parts, resolve_progress(progress))
        return self._fit(None, user_ids, benefit_ids)

    @property
    def training_loss(self) -> np.ndarray:
        """Loss after each iteration of the last fit (with ``calculate_training_loss``)."""
        return self._impl.training_loss()

    def explain(self, user_benefits, benefit: int, n: int = 10) -> pd.DataFrame:
        """The history benefits that contributed most to ``benefit``'s score for the member
        whose history is the single row ``user_benefits``. Returns a DataFrame (benefit,
        contribution) sorted by contribution, with ``attrs['score']``: the sum of all
        contributions = the member's folded-in score."""
        score, ids, parts = self._impl.explain(
            csr_parts(user_benefits, "user_benefits", (1, self.n_benefits)), int(benefit), int(n)
        )
        names = self.benefit_ids.to_external(ids) if self.benefit_ids is not None else ids
        frame = pd.DataFrame({"benefit": names, "contribution": parts})
        frame.attrs["score"] = float(score)
        return frame


class BPR(_FactorModel):
    """Bayesian personalized ranking with lock-free parallel SGD; ``num_threads=1`` is
    bit-reproducible for a seed. ``fit(..., eligibility=)`` draws negatives only among each
    member's eligible benefits. ``negative_sampling``: ``"uniform"`` over the benefits, or
    ``"popularity"``: in proportion to each benefit's number of interactions (popular benefits
    the member passed over are the harder negatives; implicit's sampler).

    >>> model = BPR(factors=64, iterations=100).fit(train_matrix)
    """

    _core_class = _core.BPR

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 100,
        verify_negative_samples: bool = True,
        fold_in_epochs: int = 30,
        num_threads: int = 0,
        seed: int = 42,
        negative_sampling: str = "uniform",
    ):
        super().__init__(
            factors=factors,
            learning_rate=learning_rate,
            regularization=regularization,
            iterations=iterations,
            verify_negative_samples=verify_negative_samples,
            negative_sampling=negative_sampling,
            fold_in_epochs=fold_in_epochs,
            num_threads=num_threads,
            seed=seed,
        )

    def fit(
        self,
        user_benefits,
        *,
        eligibility=None,
        user_ids: Optional[IdMap] = None,
        benefit_ids: Optional[IdMap] = None,
        progress: ProgressArg = False,
    ) -> "BPR":
        """Learns from a members x benefits scipy sparse matrix; ``eligibility`` (same shape)
        lists the benefits each member may receive, the only ones used as negatives."""
        parts = csr_parts(user_benefits, "user_benefits")
        elig = (
            None
            if eligibility is None
            else csr_parts(eligibility, "eligibility", (parts[3], parts[4]))
        )
        with _blas.limited(1):
            self._impl.fit(parts, elig, resolve_progress(progress))
        return self._fit(None, user_ids, benefit_ids)

    @property
    def training_accuracy(self) -> np.ndarray:
        """Share of correctly ordered sampled pairs, per epoch of the last fit."""
        return self._impl.training_accuracy()


class ItemKNN(_CollaborativeRecommender):
    """Benefit-benefit nearest neighbours with ``weighting`` 'cosine', 'tfidf' or 'bm25'
    (``k1``, ``b``), keeping ``neighbours`` per benefit. The model keeps the training rows, so
    ``recommend(users)`` needs no history argument except for filtering.

    >>> model = ItemKNN(weighting="bm25", neighbours=50).fit(train_matrix)
    """

    _core_class = _core.ItemKNN

    def __init__(
        self,
        weighting: str = "cosine",
        neighbours: int = 20,
        k1: float = 100.0,
        b: float = 0.8,
        num_threads: int = 0,
    ):
        super().__init__(
            weighting=weighting, neighbours=neighbours, k1=k1, b=b, num_threads=num_threads
        )

    def fit(
        self,
        user_benefits,
        *,
        user_ids: Optional[IdMap] = None,
        benefit_ids: Optional[IdMap] = None,
        progress: ProgressArg = False,
    ) -> "ItemKNN":
        self._impl.fit(csr_parts(user_benefits, "user_benefits"), resolve_progress(progress))
        return self._fit(None, user_ids, benefit_ids)

    @property
    def similarity(self) -> sp.csr_matrix:
        """The benefits x benefits similarity matrix (each row keeps its ``neighbours`` largest)."""
        from ._util import csr_from_parts

        return csr_from_parts(self._impl.neighbours())

    @property
    def neighbours(self) -> sp.csr_matrix:
        """Deprecated: the similarity matrix (``similarity``); ``neighbours`` is the constructor's
        count (``get_params()["neighbours"]``). Kept for one release."""
        import warnings

        warnings.warn(
            "ItemKNN.neighbours (the matrix) is renamed similarity; neighbours is the constructor's count",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.similarity
