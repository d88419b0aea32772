"""Models. Every model follows one contract: fit / score / recommend / save / load /
get_params, with the same argument names in Python and C++."""

from __future__ import annotations

import json
from typing import Optional, Union

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import _core
from ._progress import ProgressArg, resolve_progress
from ._util import csr_parts, int_array
from .data import IdMap, _Serializable, _Indexed


class _Recommender(_Serializable, _Indexed):
    """Shared Python side of the recommender contract."""

    def get_params(self) -> dict:
        """Hyper-parameters, with the same names as the constructor and the JSON config."""
        return json.loads(self._impl.get_params())

    def score(self, users, benefits) -> np.ndarray:
        """Scores of (users[i], benefits[i]) pairs, float32."""
        return self._impl.score(int_array(users, np.int32, "users"), int_array(benefits, np.int32, "benefits"))

    def recommend(self, users, user_benefits=None, n: int = 10, *, filter_already_interacted: bool = True,
                  exclude=None, allow=None, eligibility=None, eligibility_blocks: bool = False,
                  as_frame: bool = False):
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
        elig = None if eligibility is None else csr_parts(eligibility, "eligibility", (rows, self.n_benefits))
        ids, scores = self._impl.recommend(
            user_idx, int(n), exclude_rows,
            None if exclude is None else int_array(exclude, np.int32, "exclude"),
            None if allow is None else int_array(allow, np.int32, "allow"),
            elig, bool(eligibility_blocks))
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
        return pd.DataFrame({
            "user": user_col,
            "rank": np.tile(np.arange(1, k + 1), len(users))[valid],
            "benefit": benefit_col,
            "score": scores.ravel()[valid],
        })


class Popularity(_Recommender):
    """The baseline: a benefit's score is the share of members who interacted with it
    (``weighting='members'``) or its total confidence per member (``'confidence'``).

    >>> model = Popularity().fit(train_matrix)
    >>> ids, scores = model.recommend(user_ids, train_matrix[user_ids], n=10)
    """

    _core_class = _core.Popularity

    def __init__(self, weighting: str = "members", num_threads: int = 0):
        self._impl = _core.Popularity(json.dumps({"weighting": weighting, "num_threads": num_threads}))

    def fit(self, user_benefits, *, user_ids: Optional[IdMap] = None, benefit_ids: Optional[IdMap] = None,
            progress: ProgressArg = False) -> "Popularity":
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
        state = f"{self.n_users} members x {self.n_benefits} benefits" if self._impl.fitted else "not fitted"
        return f"Popularity({self.get_params()}, {state})"
