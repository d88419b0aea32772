"""Uplift models: which members a benefit actually moves, and by how much.

``UpliftModel`` estimates, for each member's feature row, the change of P(outcome = 1) that each
treatment arm (benefit kind 1..K, against control 0) causes: T-, X- and DR-learners over perkrec's
FM (see ``include/perkrec/models/uplift.hpp`` for the estimators, costs and determinism).

>>> model = UpliftModel(learner="dr", factors=8, epochs=10).fit(X, visited, treatment)
>>> uplift = model.predict(X_new)            # 1-D for a binary treatment, n x K otherwise
"""

from __future__ import annotations

import json
from typing import Optional

import numpy as np

from . import _core
from ._estimator import _Estimator
from ._progress import ProgressArg, resolve_progress
from ._util import float_array, int_array
from ._serializable import _Serializable
from .fm import _csr

# Base-learner keys of the C++ UpliftParams::base that the Python constructor exposes; the
# stages set loss themselves, rows have a single field and the stages have no validation rows.
_BASE_KEYS = (
    "factors",
    "optimizer",
    "learning_rate",
    "init_std",
    "reg_bias",
    "reg_linear",
    "reg_factors",
    "epochs",
    "shuffle",
    "num_threads",
    "seed",
)
_HIDDEN_BASE_KEYS = ("field_aware", "loss", "early_stopping_rounds")


class UpliftModel(_Serializable, _Estimator):
    """T-, X- or DR-learner (``learner="t"|"x"|"dr"``) for a binary outcome and a binary or
    multi-arm treatment (code 0 = control, 1..K = arms), over FM base learners.

    Keyword arguments left as None keep the C++ defaults (``params`` shows them):
    ``factors, optimizer, learning_rate, init_std, reg_bias, reg_linear, reg_factors, epochs,
    shuffle, num_threads, seed`` configure every stage's FM (``init_std=0`` makes each a plain
    logistic/linear regression); ``propensity_clip`` bounds propensities to
    [clip, 1 - clip]; ``cross_fit_folds`` is the DR-learner's cross-fitting; ``fit_propensity``
    makes the X-learner model g(x) with an FM instead of using the arm share.

    Training is Hogwild-parallel inside each FM: ``num_threads=1`` is bit-reproducible.
    """

    _core_class = _core.UpliftModel

    def __init__(
        self,
        learner: str = "t",
        *,
        factors: Optional[int] = None,
        optimizer: Optional[str] = None,
        learning_rate: Optional[float] = None,
        init_std: Optional[float] = None,
        reg_bias: Optional[float] = None,
        reg_linear: Optional[float] = None,
        reg_factors: Optional[float] = None,
        epochs: Optional[int] = None,
        shuffle: Optional[str] = None,
        num_threads: Optional[int] = None,
        seed: Optional[int] = None,
        propensity_clip: Optional[float] = None,
        cross_fit_folds: Optional[int] = None,
        fit_propensity: Optional[bool] = None,
    ):
        given = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self._impl = _core.UpliftModel(json.dumps(self._to_json(given)))

    @staticmethod
    def _to_json(kwargs: dict) -> dict:
        base = {k: kwargs[k] for k in _BASE_KEYS if kwargs.get(k) is not None}
        params = {"learner": kwargs["learner"], "base": base}
        for k in ("propensity_clip", "cross_fit_folds", "fit_propensity"):
            if kwargs.get(k) is not None:
                params[k] = kwargs[k]
        return params

    @classmethod
    def _wrap(cls, impl):
        obj = cls.__new__(cls)
        obj._impl = impl
        obj._init_params = obj.params
        return obj

    @property
    def params(self) -> dict:
        """Every hyper-parameter in effect, C++ defaults included (base-learner keys flattened)."""
        params = json.loads(self._impl.get_params())
        base = params.pop("base")
        for k in _HIDDEN_BASE_KEYS:
            base.pop(k)
        return {**params, **base}

    def fit(
        self, X, y, treatment, propensity=None, *, sample_weight=None, progress: ProgressArg = False
    ):
        """Fits on rows ``X`` (scipy sparse or dense 2-D, n x n_features), binary outcomes ``y``,
        integer ``treatment`` codes (0 = control, 1..K) and optionally the logged probability of
        each row's observed arm (``propensity``, in (0, 1]) and ``sample_weight``."""
        X = _csr(X)
        y = float_array(y, np.float32, "y")
        t = int_array(treatment, np.int32, "treatment")
        p = None if propensity is None else float_array(propensity, np.float32, "propensity")
        w = (
            None
            if sample_weight is None
            else float_array(sample_weight, np.float32, "sample_weight")
        )
        self._impl.fit(X, y, t, p, w, resolve_progress(progress))
        return self

    def predict(self, X) -> np.ndarray:
        """Estimated uplift P(y | x, arm k) - P(y | x, control): 1-D for a binary treatment,
        n x K (column k - 1 = arm k) otherwise. float32."""
        out = self._impl.predict(_csr(X))
        return out[:, 0] if out.shape[1] == 1 else out

    def predict_outcomes(self, X) -> np.ndarray:
        """Per-arm response probabilities of the outcome models, n x (K + 1), column 0 = control."""
        return self._impl.predict_outcomes(_csr(X))

    @property
    def fitted(self) -> bool:
        return self._impl.fitted

    @property
    def n_arms(self) -> int:
        """Number of treatment arms K (0 before fit)."""
        return self._impl.n_arms

    @property
    def n_features(self) -> int:
        return self._impl.n_features

    @property
    def arm_shares(self) -> np.ndarray:
        """Share of the training rows in each arm 0..K."""
        return self._impl.arm_shares()

    @property
    def propensities_clipped(self) -> int:
        """How many logged propensities the last fit clipped to [clip, 1 - clip]."""
        return self._impl.propensities_clipped

    def __repr__(self) -> str:
        state = f"{self.n_arms} arms, {self.n_features} features" if self.fitted else "not fitted"
        given = ", ".join(f"{k}={v!r}" for k, v in self._init_params.items() if v is not None)
        return f"UpliftModel({given}; {state})"
