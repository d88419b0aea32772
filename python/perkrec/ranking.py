"""From model scores to candidates: the calibrated score blend, the ranker, send time and
validity, and explanations (include/perkrec/decide/ranker.hpp, explain.hpp).

>>> blend = perkrec.ScoreBlend().add_source("als", als).add_source("fm", fm_probs, transform="logit")
>>> blend.fit(users, benefits, redeemed)
>>> candidates, diag = perkrec.rank(compiled.masks, blend=blend, user_value=margin,
...                                 cost_per_redemption=catalog, objective="redemption", top_k=20,
...                                 diagnostics=True)
>>> plan = perkrec.allocate(candidates, compiled.constraints)
>>> times = perkrec.schedule(users, plan_time, catalog, benefits, preference=pref_model)
>>> reasons = perkrec.explain(candidates=candidates, allocation=plan, preference=pref_model,
...                           catalog=catalog, blend=blend, diagnostics=diag,
...                           rule_names=compiled.rule_names)
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from . import _core
from ._progress import ProgressArg, resolve_progress
from ._util import (
    float_array,
    int_array,
    int_scalar,
    renamed_keywords,
    seconds,
    sequence_arg,
    text_arg,
    time_seconds,
)

__all__ = [
    "ScoreBlend",
    "rank",
    "schedule",
    "explain",
    "best_ineligible",
    "hour_of_week",
    "quiet_hours_next_allowed",
]

_MODEL_TYPES = ("Popularity", "ALS", "BPR", "ItemKNN", "PreferenceModel")


def _impl_of(obj):
    return getattr(obj, "_impl", obj)


def _is_model(obj) -> bool:
    impl = _impl_of(obj)
    return any(isinstance(impl, getattr(_core, name)) for name in _MODEL_TYPES)


class ScoreBlend:
    """Calibrated logistic blend of model scores:
    ``P(redeem | u, b) = sigmoid(bias + sum_i w_i f_i(score_i(u, b)))``.

    Sources are perkrec models (Popularity, ALS, BPR, ItemKNN, PreferenceModel: scored in
    C++ without the GIL), dense members x benefits numpy matrices, or callables
    ``f(users: int32[n], benefits: int32[n]) -> float[n]`` (e.g. an FM scoring encoded pairs).
    ``transform="logit"`` for sources that are probabilities, ``"identity"`` for scores.
    ``fit`` is Newton's method on labelled pairs with an L2 penalty ``l2`` on the weights;
    deterministic for any thread count.
    """

    def __init__(
        self,
        l2: float = 1e-4,
        max_iterations: int = 50,
        tolerance: float = 1e-9,
        clip: float = 1e-6,
        num_threads: int = 0,
    ):
        params = {
            "l2": float(l2),
            "max_iterations": int(max_iterations),
            "tolerance": float(tolerance),
            "clip": float(clip),
            "num_threads": int(num_threads),
        }
        self._impl = _core.ScoreBlend(json.dumps(params))
        self._matrices: Dict[str, np.ndarray] = {}

    # -- sources ---------------------------------------------------------------------------
    def add_source(self, name: str, source, transform: str = "identity") -> "ScoreBlend":
        """Adds a source (see the class docstring); returns self."""
        self._attach(str(name), source, str(transform), new=True)
        return self

    def attach(self, name: str, source) -> "ScoreBlend":
        """Re-attaches a source's scorer after :meth:`from_json`; returns self."""
        self._attach(str(name), source, None, new=False)
        return self

    def _attach(self, name: str, source, transform: Optional[str], new: bool) -> None:
        if _is_model(source):
            impl = _impl_of(source)
            if new:
                self._impl.add_model_source(name, impl, transform)
            else:
                self._impl.attach_model(name, impl)
        elif (
            isinstance(source, np.ndarray) or hasattr(source, "__array__") and not callable(source)
        ):
            matrix = np.asarray(source)
            if matrix.ndim != 2:
                raise _core.InputError(
                    f"ScoreBlend: source {name!r}: expected a 2-D members x benefits matrix "
                    f"(got {matrix.ndim} dimensions)"
                )
            flat = np.ascontiguousarray(matrix, dtype=np.float32).reshape(-1)
            rows, cols = matrix.shape
            if new:
                self._impl.add_matrix_source(name, flat, int(rows), int(cols), transform)
            else:
                self._impl.attach_matrix(name, flat, int(rows), int(cols))
            self._matrices[name] = flat
        elif callable(source):
            if new:
                self._impl.add_callable_source(name, source, transform)
            else:
                self._impl.attach_callable(name, source)
        else:
            raise _core.InputError(
                f"ScoreBlend: source {name!r}: expected a perkrec model, a 2-D matrix or a "
                f"callable (got {type(source).__name__})"
            )

    @property
    def source_names(self) -> List[str]:
        return list(self._impl.source_names)

    @property
    def transforms(self) -> List[str]:
        return list(self._impl.transforms)

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, users, benefits, labels, *, progress: ProgressArg = False) -> "ScoreBlend":
        """Fits bias and weights on (users[i], benefits[i], labels[i]) (labels in [0, 1])."""
        self._impl.fit(
            int_array(users, np.int32, "users"),
            int_array(benefits, np.int32, "benefits"),
            float_array(labels, np.float32, "labels"),
            resolve_progress(progress),
        )
        return self

    def set_weights(self, bias: float, weights) -> "ScoreBlend":
        """Sets the blend by hand: ``weights`` is a sequence in source order or a dict by name."""
        if isinstance(weights, dict):
            unknown = set(weights) - set(self.source_names)
            if unknown:
                raise _core.InputError(f"ScoreBlend.set_weights: unknown sources {sorted(unknown)}")
            weights = [weights.get(n, 0.0) for n in self.source_names]
        bias = float_array([bias], np.float64, "ScoreBlend.set_weights: bias")[0]
        w = float_array(
            sequence_arg(weights, "ScoreBlend.set_weights: weights"),
            np.float64,
            "ScoreBlend.set_weights: weights",
        )
        self._impl.set_weights(float(bias), [float(x) for x in w])
        return self

    @property
    def fitted(self) -> bool:
        return bool(self._impl.fitted)

    @property
    def bias(self) -> float:
        return float(self._impl.bias)

    @property
    def weights(self) -> Dict[str, float]:
        """Weight per source, by name."""
        return dict(zip(self.source_names, self._impl.weights))

    @property
    def iterations(self) -> int:
        return int(self._impl.iterations)

    @property
    def training_loss(self) -> float:
        return float(self._impl.training_loss)

    # -- scoring ---------------------------------------------------------------------------
    def _pairs(self, users, benefits):
        return int_array(users, np.int32, "users"), int_array(benefits, np.int32, "benefits")

    def predict(self, users, benefits) -> np.ndarray:
        """Redemption probabilities of (users[i], benefits[i]), float32."""
        return self._impl.predict(*self._pairs(users, benefits))

    def features(self, users, benefits) -> np.ndarray:
        """n x sources: each source's transformed score."""
        return self._impl.features(*self._pairs(users, benefits))

    def contributions(self, users, benefits, as_frame: bool = False):
        """n x sources: each source's term ``w_i f_i`` of the redemption logit (the logit is
        ``bias + row sum``); a DataFrame with source columns when ``as_frame``."""
        out = self._impl.contributions(*self._pairs(users, benefits))
        return pd.DataFrame(out, columns=self.source_names) if as_frame else out

    # -- persistence -----------------------------------------------------------------------
    def to_json(self) -> str:
        """Params, bias and weights; sources are re-attached by name after :meth:`from_json`."""
        return self._impl.to_json()

    @classmethod
    def from_json(cls, text: Union[str, dict]) -> "ScoreBlend":
        obj = cls.__new__(cls)
        obj._impl = _core.ScoreBlend.from_json(
            json.dumps(text)
            if isinstance(text, dict)
            else text_arg(text, "ScoreBlend.from_json: text")
        )
        obj._matrices = {}
        return obj

    def __repr__(self) -> str:
        w = ", ".join(f"{n}={v:.3g}" for n, v in self.weights.items())
        return (
            f"ScoreBlend(bias={self.bias:.3g}, {w})"
            if self.fitted
            else f"ScoreBlend({self.source_names}, unfitted)"
        )


# ---------------------------------------------------------------------------------------------
def _masks_of(masks, n_users: Optional[int], n_benefits: Optional[int]):
    if masks is None:
        if n_users is None or n_benefits is None:
            raise _core.InputError("rank: masks=None needs a probability matrix to give the shape")
        return _core.EligibilityMasks(int(n_users), int(n_benefits))
    if isinstance(masks, _core.EligibilityMasks):
        return masks
    inner = getattr(masks, "masks", None)  # a compiled policy
    inner = _impl_of(inner) if inner is not None else _impl_of(masks)
    if isinstance(inner, _core.EligibilityMasks):
        return inner
    if isinstance(masks, np.ndarray) and masks.ndim == 2:  # dense eligible matrix
        e = np.ascontiguousarray(masks, dtype=np.uint8)
        return _core.EligibilityMasks.from_dense(e.reshape(-1), e.shape[0], e.shape[1])
    raise _core.InputError(
        f"rank: masks: expected EligibilityMasks, a compiled policy or a dense 0/1 matrix "
        f"(got {type(masks).__name__})"
    )


def _optional_floats(values, name: str, shape_ok: Callable[[np.ndarray], bool] = lambda a: True):
    if values is None:
        return None
    arr = np.asarray(values)
    if not shape_ok(arr):
        raise _core.InputError(f"rank: {name}: unexpected shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32).reshape(-1)


def _is_catalog(obj) -> bool:
    return isinstance(_impl_of(obj), _core.Catalog)


def _catalog_column(catalog, column: str) -> np.ndarray:
    cols = _impl_of(catalog).columns()
    return np.asarray(cols[column])


@renamed_keywords(member_value="user_value")
def rank(
    masks=None,
    probability=None,
    *,
    blend: Optional[ScoreBlend] = None,
    incremental_share=None,
    user_value=None,
    benefit_value=None,
    cost_per_redemption=None,
    objective: str = "incremental",
    top_k: int = 50,
    issue_cost: float = 0.0,
    keep_non_positive: bool = False,
    num_threads: int = 0,
    diagnostics: bool = False,
):
    """Top-``top_k`` eligible candidates per member by expected value - expected cost.

    ``masks``: EligibilityMasks, a compiled policy (its ``.masks``), a dense 0/1 members x
    benefits matrix, or None (everyone eligible; shape from ``probability``).
    ``probability``: members x benefits redemption probabilities, unless ``blend`` (a fitted
    ScoreBlend) gives them, evaluated only on eligible pairs.
    ``incremental_share``: members x benefits or per member, in [0, 1] (objective
    "incremental"; None = 1). ``user_value``: value of one redemption per member (None = 1);
    ``benefit_value``: per-benefit multiplier (None = 1); ``cost_per_redemption``: per benefit,
    or a Catalog (its ``cost`` column). value = p x [share] x user_value x benefit_value,
    cost = issue_cost + p x cost_per_redemption. (``member_value`` is the deprecated name of
    ``user_value``.)

    Returns a ``Candidates`` (offsets, benefit, value, cost, probability), and with
    ``diagnostics=True`` also a dict of per-member arrays: best_ineligible (benefit, -1 =
    none), best_ineligible_key, best_ineligible_rule, n_eligible.
    """
    prob = None
    shape = (None, None)
    if probability is not None and blend is None:
        parr = np.asarray(probability)
        if parr.ndim != 2:
            raise _core.InputError(
                f"rank: probability: expected a 2-D members x benefits matrix (got {parr.ndim} "
                "dimensions)"
            )
        shape = parr.shape
        prob = np.ascontiguousarray(parr, dtype=np.float32).reshape(-1)
    elif probability is None and blend is None:
        raise _core.InputError("rank: give probability (members x benefits) or blend")
    m = _masks_of(masks, *shape)
    if cost_per_redemption is not None and _is_catalog(cost_per_redemption):
        cost_per_redemption = _catalog_column(cost_per_redemption, "cost")
    params = {
        "objective": str(objective),
        "top_k": int(top_k),
        "issue_cost": float(issue_cost),
        "keep_non_positive": bool(keep_non_positive),
        "num_threads": int(num_threads),
    }
    candidates, diag = _core.rank(
        prob,
        _optional_floats(incremental_share, "incremental_share"),
        # Checked here so the message names the keyword (the C++ field is RankInputs::member_value).
        _optional_floats(user_value, "user_value", lambda a: a.size in (0, m.n_users)),
        _optional_floats(benefit_value, "benefit_value"),
        _optional_floats(cost_per_redemption, "cost_per_redemption"),
        m,
        json.dumps(params),
        None if blend is None else blend._impl,
        bool(diagnostics),
    )
    return (candidates, diag) if diagnostics else candidates


# ---------------------------------------------------------------------------------------------
def hour_of_week(t) -> int:
    """Hour-of-week slot of a time (Monday 00:00 UTC = 0 .. 167)."""
    return int(_core.hour_of_week(time_seconds(t, "t")))


def quiet_hours_next_allowed(
    times, start_hour: int, end_hour: int, utc_offset_hours=None
) -> np.ndarray:
    """Earliest times >= ``times`` outside local quiet hours [start_hour, end_hour) (wrapping
    midnight when start > end), as int64 seconds."""
    offs = (
        None
        if utc_offset_hours is None
        else float_array(utc_offset_hours, np.float32, "utc_offset_hours")
    )
    return _core.quiet_hours_next_allowed(
        int_scalar(start_hour, "start_hour", -(2**31)),
        int_scalar(end_hour, "end_hour", -(2**31)),
        seconds(times, "times"),
        offs,
    )


@renamed_keywords(members="users")
def schedule(
    users,
    plan_time,
    validity_days,
    benefits=None,
    *,
    preference=None,
    quiet_hours: Optional[Tuple[int, int]] = None,
    utc_offset_hours=None,
    default_hour: int = 10,
    min_validity_days: int = 1,
    num_threads: int = 0,
) -> pd.DataFrame:
    """Send time and validity per plan row.

    ``users``: member index per row (the preference model's members). ``validity_days``:
    per row, or a Catalog with ``benefits`` (benefit index per row) to take the catalog's
    validity. With a fitted ``preference`` model the send time is the member's best
    hour-of-week slot at or after max(plan_time, cut + send_in_days) and the validity is the
    model's (capped by the catalog's); otherwise ``default_hour``:00 UTC on or after
    plan_time with the catalog validity. ``quiet_hours=(start, end)`` (local hours, with
    ``utc_offset_hours`` per row) then moves sends out of quiet hours.

    Returns a DataFrame: send_at (UTC timestamps), validity_days, valid_until, from_model.
    """
    mem = int_array(users, np.int32, "users")
    if _is_catalog(validity_days):
        if benefits is None:
            raise _core.InputError(
                "schedule: a catalog as validity_days needs benefits (index per row)"
            )
        catalog_validity = _catalog_column(validity_days, "validity_days").astype(np.int32)
        b = int_array(benefits, np.int32, "benefits")
        if len(b) and (b.min() < 0 or b.max() >= len(catalog_validity)):
            raise _core.InputError("schedule: benefits out of range of the catalog")
        days = np.ascontiguousarray(catalog_validity[b])
    else:
        days = int_array(
            np.broadcast_to(np.asarray(validity_days), mem.shape), np.int32, "validity_days"
        )
    offs = (
        None
        if utc_offset_hours is None
        else float_array(
            np.broadcast_to(np.asarray(utc_offset_hours, dtype=np.float32), mem.shape),
            np.float32,
            "utc_offset_hours",
        )
    )
    t0 = time_seconds(plan_time, "plan_time")
    pref = None if preference is None else _impl_of(preference)
    qh = None if quiet_hours is None else (int(quiet_hours[0]), int(quiet_hours[1]))
    at, validity, from_model = _core.schedule_batch(
        pref, mem, t0, days, qh, offs, int(default_hour), int(min_validity_days), int(num_threads)
    )
    send_at = pd.to_datetime(at, unit="s", utc=True)
    return pd.DataFrame(
        {
            "send_at": send_at,
            "validity_days": validity,
            "valid_until": send_at + pd.to_timedelta(validity.astype(np.int64), unit="D"),
            "from_model": from_model.astype(bool),
        }
    )


# ---------------------------------------------------------------------------------------------
def best_ineligible(masks, key) -> Tuple[np.ndarray, np.ndarray]:
    """Per member, the ineligible benefit with the largest ``key`` (members x benefits, e.g.
    expected value - cost) and the rule that excluded it: (benefit, rule), -1 = none.
    ``rank(..., diagnostics=True)`` gives the same without a dense key matrix."""
    m = _masks_of(masks, None, None)
    k = np.asarray(key, dtype=np.float64)
    if k.shape != (m.n_users, m.n_benefits):
        raise _core.InputError(
            f"best_ineligible: key has shape {k.shape} (expected {(m.n_users, m.n_benefits)})"
        )
    return _core.best_ineligible(m, np.ascontiguousarray(k).reshape(-1))  # decide/types.hpp


@renamed_keywords(members="users", member_ids="user_ids")
def explain(
    users=None,
    benefits=None,
    *,
    candidates=None,
    allocation=None,
    preference=None,
    catalog=None,
    blend: Optional[ScoreBlend] = None,
    contributions=None,
    source_names: Optional[Sequence[str]] = None,
    diagnostics: Optional[dict] = None,
    best_ineligible_benefit=None,
    best_ineligible_rule=None,
    rule_names: Optional[Sequence[str]] = None,
    probability=None,
    value=None,
    cost=None,
    preferences=None,
    dimension_names=None,
    benefit_dimensions=None,
    benefit_ids=None,
    user_ids=None,
    top_dimensions: int = 3,
    as_dict: bool = False,
    num_threads: int = 0,
) -> List[Any]:
    """Structured reasons for each plan row, as JSON texts (or dicts with ``as_dict``).

    Rows: ``users``/``benefits`` (member and benefit indices), or every entry of ``allocation`` when omitted.
    Each explanation holds probability, value and cost (from ``candidates``, or the given
    per-row arrays), ``preferences`` (the benefit's dimensions with the member's largest
    lifts: from a fitted ``preference`` model + ``catalog``, or raw ``preferences``
    members x dims + ``dimension_names`` + ``benefit_dimensions`` benefits x dims 0/1),
    ``contributions`` (the ``blend``'s terms, or a rows x sources ``contributions`` array with
    ``source_names``), ``runner_up`` (per member from ``allocation``: the best unchosen
    candidate and why) and ``best_ineligible`` (from rank ``diagnostics`` or per-member
    ``best_ineligible_benefit``/``best_ineligible_rule`` arrays, named by ``rule_names``).
    Built in C++ in parallel with the GIL released: ~10^5 rows per second or more.
    """
    if users is None or benefits is None:
        if allocation is None:
            raise _core.InputError("explain: give users and benefits, or an allocation")
        a_off = np.asarray(allocation.offsets)
        mem = np.repeat(np.arange(len(a_off) - 1, dtype=np.int32), np.diff(a_off)).astype(np.int32)
        ben = np.ascontiguousarray(np.asarray(allocation.benefit), dtype=np.int32)
    else:
        mem = int_array(users, np.int32, "users")
        ben = int_array(benefits, np.int32, "benefits")
    n = len(mem)
    ctx: Dict[str, Any] = {"top_dimensions": int(top_dimensions)}
    rows: Dict[str, Any] = {"users": mem, "benefits": ben}

    if catalog is not None:
        ctx["benefit_ids"] = list(_catalog_column(catalog, "id").astype(str))
    elif benefit_ids is not None:
        ctx["benefit_ids"] = [str(x) for x in benefit_ids]
    if user_ids is not None:
        ctx["user_ids"] = [str(x) for x in user_ids]

    pref_impl = catalog_impl = None
    if preference is not None:
        if catalog is None:
            raise _core.InputError("explain: a preference model needs the catalog it was fitted on")
        # The model's arrays are borrowed in C++ (no copy); its member ids name the members.
        pref_impl, catalog_impl = _impl_of(preference), _impl_of(catalog)
    elif preferences is not None:
        p = np.asarray(preferences, dtype=np.float32)
        if dimension_names is None or benefit_dimensions is None:
            raise _core.InputError(
                "explain: raw preferences need dimension_names and benefit_dimensions"
            )
        bd = np.asarray(benefit_dimensions).astype(bool)
        if (
            p.ndim != 2
            or bd.ndim != 2
            or bd.shape[1] != p.shape[1]
            or len(dimension_names) != p.shape[1]
        ):
            raise _core.InputError(
                f"explain: preferences {p.shape}, benefit_dimensions {bd.shape} and "
                f"{len(dimension_names)} dimension_names do not agree"
            )
        counts = bd.sum(axis=1)
        ctx.update(
            preference=np.ascontiguousarray(p).reshape(-1),
            dimension_names=[str(d) for d in dimension_names],
            benefit_dim_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int32),
            benefit_dims=np.nonzero(bd)[1].astype(np.int32),
        )

    if blend is not None:
        ctx["source_names"] = blend.source_names
        rows["contributions"] = np.ascontiguousarray(
            blend.contributions(mem, ben), dtype=np.float32
        ).reshape(-1)
    elif contributions is not None:
        c = np.asarray(contributions, dtype=np.float32)
        if isinstance(contributions, pd.DataFrame):
            source_names = list(contributions.columns)
        if source_names is None or c.shape != (n, len(source_names)):
            raise _core.InputError(
                f"explain: contributions must be rows x sources with source_names (got {c.shape})"
            )
        ctx["source_names"] = [str(s) for s in source_names]
        rows["contributions"] = np.ascontiguousarray(c).reshape(-1)

    if candidates is not None:
        entry = _core.find_candidates(candidates, mem, ben)  # C++: decide/types.hpp
        hit = entry >= 0
        for name in ("probability", "value", "cost"):
            col = np.asarray(getattr(candidates, name), dtype=np.float32)
            out = np.full(n, np.nan, dtype=np.float32)
            if len(col):
                out[hit] = col[entry[hit]]
            rows[name] = out
    for name, arr in (("probability", probability), ("value", value), ("cost", cost)):
        if arr is not None:
            rows[name] = float_array(arr, np.float32, name)

    if allocation is not None and candidates is not None:
        runner = np.asarray(allocation.runner_up)
        reason = np.asarray(allocation.runner_up_reason, dtype=np.uint8)
        if len(runner):
            r = runner[mem]
            cb = np.asarray(candidates.benefit)
            rows["runner_up"] = np.where(
                r >= 0, cb[np.clip(r, 0, max(len(cb) - 1, 0))] if len(cb) else -1, -1
            ).astype(np.int32)
            rows["runner_up_reason"] = np.ascontiguousarray(reason[mem])

    if diagnostics is not None:
        best_ineligible_benefit = diagnostics["best_ineligible"]
        best_ineligible_rule = diagnostics["best_ineligible_rule"]
    if best_ineligible_benefit is not None:
        bi = np.asarray(best_ineligible_benefit, dtype=np.int32)
        rows["best_ineligible"] = np.ascontiguousarray(bi[mem])
        if best_ineligible_rule is not None:
            rows["best_ineligible_rule"] = np.ascontiguousarray(
                np.asarray(best_ineligible_rule, dtype=np.int32)[mem]
            )
    if rule_names is not None:
        ctx["rule_names"] = [str(r) for r in rule_names]

    texts = _core.explain_batch(ctx, rows, int(num_threads), pref_impl, catalog_impl)
    return [json.loads(t) for t in texts] if as_dict else texts
