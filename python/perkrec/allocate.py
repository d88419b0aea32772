"""The Allocator: from candidates (top eligible benefits per member with expected value and
expected cost) to a plan that keeps every limit — budget, inventory, member capacity, kind caps,
non-stackable groups, segment quotas and a minimum return per unit cost.

``allocate(..., method="dual")`` solves the multiple-choice knapsack through its Lagrangian
dual (bisection / regula falsi on the budget's multiplier, price rounds for inventory and
quotas, a repair pass and a fill pass); ``"greedy"`` is the value-per-cost baseline and
``"exact"`` a branch and bound for small instances. ``Pacer`` is the online mode: members
arrive one at a time and a multiplier keeps spend on the budget curve.

Candidates can be a ``perkrec._core.Candidates`` (what the Ranker returns), or a mapping with
``offsets`` (int64, n_users + 1), ``benefit`` (int32), ``value`` and ``cost`` (float32) and
``n_benefits``: arrays of those exact dtypes are used in place, without a copy (10M members x
50 candidates is ~6 GB).

Example::

    plan = perkrec.allocate({"offsets": off, "benefit": b, "value": v, "cost": c,
                             "n_benefits": 40}, budget=50_000, max_per_member=2)
    plan.value, plan.cost, plan.dual_bound
"""

from __future__ import annotations

import json
import math
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from . import _core
from ._progress import ProgressArg, resolve_progress
from ._util import (
    float_array,
    int_array,
    int_scalar,
    renamed_function,
    renamed_keywords,
    time_seconds,
)

__all__ = [
    "Pacer",
    "allocate",
    "allocate_milp",
    "allocation_users",
    "check_allocation",
    "make_candidates",
    "make_constraints",
    "user_set_value",
]

Candidates = _core.Candidates
AllocationConstraints = _core.AllocationConstraints
Allocation = _core.Allocation

_PARAM_KEYS = (
    "max_iterations",
    "tolerance",
    "price_rounds",
    "num_threads",
    "budget_gap",
    "fill_rounds",
    "polish_entries",
)
_CONSTRAINT_FIELDS = {
    "budget": float,
    "max_per_member": int,
    "max_per_kind": int,
    "n_kinds": int,
    "min_return_per_cost": float,
    "diversity": float,
}
_CONSTRAINT_ARRAYS = {
    "member_capacity": np.int32,
    "inventory": np.int64,
    "benefit_kind": np.int32,
    "member_kind_capacity": np.int32,
    "benefit_group": np.int32,
    "member_segment": np.int32,
    "segment_max_members": np.int64,
    "segment_max_cost": np.float64,
}


def make_candidates(offsets, benefit, value, cost, n_benefits: int, probability=None) -> Candidates:
    """A ``Candidates`` (copied into C++ and validated) from CSR-by-member arrays."""
    off = int_array(offsets, np.int64, "offsets")
    return _core.Candidates.from_arrays(
        len(off) - 1,
        int_scalar(n_benefits, "n_benefits"),
        off,
        int_array(benefit, np.int32, "benefit"),
        float_array(value, np.float32, "value"),
        float_array(cost, np.float32, "cost"),
        None if probability is None else float_array(probability, np.float32, "probability"),
    )


def make_constraints(
    constraints: Union[AllocationConstraints, Mapping[str, Any], None] = None, **fields
) -> AllocationConstraints:
    """An ``AllocationConstraints`` from a mapping and/or keyword fields (an existing object is
    copied, then the keywords override). Unknown names raise ConfigError; arrays are converted
    to the exact dtypes. Fields: budget (inf = none), max_per_member, member_capacity,
    inventory (-1 = unlimited), benefit_kind, n_kinds, max_per_kind, member_kind_capacity
    (members x n_kinds, flattened), benefit_group (-1 = stackable), member_segment,
    segment_max_members, segment_max_cost, min_return_per_cost, diversity."""
    out = _core.AllocationConstraints()
    merged: dict = {}
    if isinstance(constraints, _core.AllocationConstraints):
        for name in list(_CONSTRAINT_FIELDS) + list(_CONSTRAINT_ARRAYS):
            merged[name] = getattr(constraints, name)
    elif constraints is not None:
        merged.update(dict(constraints))
    merged.update(fields)
    for name, val in merged.items():
        if val is None:
            continue
        if name in _CONSTRAINT_FIELDS:
            cast = _CONSTRAINT_FIELDS[name]
            setattr(out, name, math.inf if (name == "budget" and val == math.inf) else cast(val))
        elif name in _CONSTRAINT_ARRAYS:
            dtype = _CONSTRAINT_ARRAYS[name]
            arr = (
                float_array(val, dtype, name)
                if np.dtype(dtype).kind == "f"
                else int_array(val, dtype, name)
            )
            setattr(out, name, arr)
        else:
            known = ", ".join(sorted(list(_CONSTRAINT_FIELDS) + list(_CONSTRAINT_ARRAYS)))
            raise _core.ConfigError(
                f"AllocationConstraints: unknown field {name!r} (expected one of: {known})"
            )
    return out


def _candidate_arrays(candidates):
    """(n_users, n_benefits, offsets, benefit, value, cost) for the zero-copy path, or None
    for a bound Candidates object."""
    if isinstance(candidates, _core.Candidates):
        return None
    if isinstance(candidates, Mapping):
        missing = [
            k for k in ("offsets", "benefit", "value", "cost", "n_benefits") if k not in candidates
        ]
        if missing:
            raise _core.InputError(
                f"candidates: missing keys {missing} (expected offsets, benefit, value, "
                "cost, n_benefits)"
            )
        off = int_array(candidates["offsets"], np.int64, "offsets")
        return (
            len(off) - 1,
            int_scalar(candidates["n_benefits"], "n_benefits"),
            off,
            int_array(candidates["benefit"], np.int32, "benefit"),
            float_array(candidates["value"], np.float32, "value"),
            float_array(candidates["cost"], np.float32, "cost"),
        )
    raise _core.InputError(
        "candidates must be a perkrec Candidates or a mapping of arrays "
        f"(got {type(candidates).__name__})"
    )


def allocate(
    candidates,
    constraints: Union[AllocationConstraints, Mapping[str, Any], None] = None,
    method: str = "dual",
    *,
    params: Optional[Mapping[str, Any]] = None,
    num_threads: Optional[int] = None,
    max_nodes: int = 10_000_000,
    progress: ProgressArg = None,
    **constraint_fields,
) -> Allocation:
    """The plan: which member gets which candidates (see the module docstring).

    ``method``: "dual" (Lagrangian dual + repair + fill; ``params`` may set max_iterations,
    tolerance, price_rounds, num_threads, budget_gap, fill_rounds), "greedy" (value per cost)
    or "exact" (branch and bound; InputError beyond ``max_nodes``). Constraint fields may be
    given as keywords (``budget=...``) instead of / on top of ``constraints``.

    Returns an ``Allocation``: ``offsets`` (CSR by member), ``candidate`` (entry indices),
    ``benefit``, ``runner_up`` / ``runner_up_reason`` per member, ``value``, ``cost``,
    ``dual_bound`` (an upper bound of the optimum), ``multiplier``, ``iterations``, ``method``.
    """
    k = (
        constraints
        if isinstance(constraints, _core.AllocationConstraints) and not constraint_fields
        else make_constraints(constraints, **constraint_fields)
    )
    p = dict(params or {})
    unknown = set(p) - set(_PARAM_KEYS)
    if unknown:
        raise _core.ConfigError(
            f"allocate: unknown params {sorted(unknown)} (expected {list(_PARAM_KEYS)})"
        )
    if num_threads is not None:
        p["num_threads"] = int_scalar(num_threads, "num_threads", -(2**31))
    params_json = json.dumps(p)
    cb = resolve_progress(progress)
    arrays = _candidate_arrays(candidates)
    if arrays is None:
        return _core.allocate(
            candidates, k, method, params_json, int_scalar(max_nodes, "max_nodes", 0, 2**63 - 1), cb
        )
    return _core.allocate_arrays(
        *arrays, k, method, params_json, int_scalar(max_nodes, "max_nodes", 0, 2**63 - 1), cb
    )


def check_allocation(candidates, constraints, allocation: Allocation) -> str:
    """ "" when ``allocation`` keeps every limit of ``constraints``, else the first violation."""
    if not isinstance(allocation, _core.Allocation):
        raise _core.InputError(
            f"check_allocation: expected an Allocation (got {type(allocation).__name__})"
        )
    k = (
        constraints
        if isinstance(constraints, _core.AllocationConstraints)
        else make_constraints(constraints)
    )
    arrays = _candidate_arrays(candidates)
    if arrays is None:
        return _core.check_allocation(candidates, k, allocation)
    return _core.check_allocation_arrays(*arrays, k, allocation)


def allocation_users(allocation: Allocation) -> np.ndarray:
    """The member (row) index of every chosen entry, aligned with ``allocation.candidate``."""
    if not isinstance(allocation, _core.Allocation):
        raise _core.InputError(
            f"allocation_users: expected an Allocation (got {type(allocation).__name__})"
        )
    off = np.asarray(allocation.offsets)
    return np.repeat(np.arange(len(off) - 1, dtype=np.int32), np.diff(off))


def user_set_value(values, kinds=None, diversity: float = 0.0) -> float:
    """A member's set value under the diversity discount (per kind the best counts in full,
    every further one x (1 - diversity))."""
    return _core.user_set_value(
        float_array(values, np.float32, "values"),
        None if kinds is None else int_array(kinds, np.int32, "kinds"),
        float(diversity),
    )


allocation_members = renamed_function(allocation_users, "allocation_members")
member_set_value = renamed_function(user_set_value, "member_set_value")


class Pacer:
    """Online pacing over one period: ``decide`` is called as each member arrives and returns
    the positions of the chosen candidates; the multiplier follows how far spend is ahead of
    the budget curve. Budget, inventory, caps and quotas are never exceeded. Thread-safe.
    ``budget=None``: no budget (inventory, caps and quotas are still paced and enforced).

    ``spend_curve``: cumulative share of the budget at the end of each of len(curve) equal
    steps over [start, end] (empty = linear). Times are Unix seconds; a request earlier than one
    already decided is paced as of the later time. ``pace_inventory``: limited benefits follow
    the same curve (a benefit whose used share of its inventory is ahead of the curve is priced
    out until the curve catches up), so their units last the period; False = first come, first
    served."""

    def __init__(
        self,
        constraints: Union[AllocationConstraints, Mapping[str, Any], None] = None,
        *,
        start: int,
        end: int,
        budget: Optional[float] = None,
        spend_curve: Sequence[float] = (),
        initial_multiplier: float = 0.0,
        gain: float = 2.0,
        pace_inventory: bool = True,
        **constraint_fields,
    ):
        k = make_constraints(constraints, **constraint_fields)
        params = {
            "start": time_seconds(start, "start"),
            "end": time_seconds(end, "end"),
            "spend_curve": [float(x) for x in spend_curve],
            "initial_multiplier": float(initial_multiplier),
            "gain": float(gain),
            "pace_inventory": bool(pace_inventory),
        }
        if budget is not None and float(budget) != math.inf:  # None or inf: no budget
            params["budget"] = float(budget)
        for name in ("budget", "initial_multiplier", "gain"):
            if name in params and not math.isfinite(params[name]):
                raise _core.ConfigError(f"Pacer: {name} must be finite (got {params[name]})")
        self._impl = _core.Pacer(k, json.dumps(params))

    @renamed_keywords(member="user")
    def decide(
        self,
        user: int,
        t: int,
        benefit,
        value,
        cost,
        max_new: Optional[int] = None,
        with_reasons: bool = False,
    ):
        """Positions (int32, ascending) of the candidates issued to member ``user`` (an index) at
        time ``t`` (``member`` is the deprecated name of ``user``);
        at most ``max_new`` of them (None: as many as the member's caps allow). With
        ``with_reasons``: (positions, reasons), one reason name per candidate — "none" for the
        issued ones, else why not ("below_multiplier", "budget", "inventory", "member_cap",
        "kind_cap", "stacking", "segment_quota", "min_return", "not_positive")."""
        limit = -1 if max_new is None else int(max_new)
        if max_new is not None and limit != max_new:
            raise _core.InputError(
                f"Pacer.decide: max_new must be an integer or None (got {max_new!r})"
            )
        return self._impl.decide(
            int_scalar(user, "Pacer.decide: user"),
            time_seconds(t, "Pacer.decide: t"),
            int_array(benefit, np.int32, "benefit"),
            float_array(value, np.float32, "value"),
            float_array(cost, np.float32, "cost"),
            limit,
            bool(with_reasons),
        )

    @property
    def spent(self) -> float:
        return self._impl.spent

    @property
    def multiplier(self) -> float:
        return self._impl.multiplier

    @property
    def decisions(self) -> int:
        return self._impl.decisions

    @property
    def issued(self) -> int:
        return self._impl.issued

    def get_params(self) -> dict:
        return json.loads(self._impl.get_params())


def allocate_milp(
    candidates, constraints=None, *, time_limit: Optional[float] = None, **constraint_fields
):
    """Reference optimum by an integer program (scipy.optimize.milp, HiGHS) — for checking the
    allocator on instances small enough to solve exactly. Returns (value, entries): the optimal
    objective and the chosen entry indices. Diversity discounts are not linear: ConfigError
    when ``diversity > 0`` with benefit kinds."""
    import scipy.sparse as sp
    from scipy.optimize import Bounds, LinearConstraint, milp

    k = make_constraints(constraints, **constraint_fields)
    arrays = _candidate_arrays(candidates)
    if arrays is None:
        c = candidates
        n_users, n_benefits = c.n_users, c.n_benefits
        off, ben, val, cost = (
            np.asarray(c.offsets),
            np.asarray(c.benefit),
            np.asarray(c.value),
            np.asarray(c.cost),
        )
    else:
        n_users, n_benefits, off, ben, val, cost = arrays
    kinds = np.asarray(k.benefit_kind)
    if k.diversity > 0 and len(kinds):
        raise _core.ConfigError(
            "allocate_milp: diversity > 0 is not linear; use allocate(method='exact')"
        )
    n = len(ben)
    member = np.repeat(np.arange(n_users), np.diff(off))
    v = val.astype(np.float64)
    w = cost.astype(np.float64)
    cap = np.full(n_users, k.max_per_member, np.int64)
    mc = np.asarray(k.member_capacity)
    if len(mc):
        cap = np.minimum(cap, mc)
    inv = np.asarray(k.inventory)
    seg = np.asarray(k.member_segment)
    smm = np.asarray(k.segment_max_members)
    smc = np.asarray(k.segment_max_cost)
    n_seg = max(len(smm), len(smc))
    segment = np.full(n_users, -1)
    if len(seg):
        segment = np.where((seg >= 0) & (seg < n_seg), seg, -1)
    seg_m = lambda s: smm[s] if s < len(smm) else -1  # noqa: E731
    seg_c = lambda s: smc[s] if s < len(smc) else -1.0  # noqa: E731
    for u in range(n_users):
        if segment[u] >= 0 and seg_m(segment[u]) == 0:
            cap[u] = 0
    kind_of = kinds[ben] if len(kinds) else np.full(n, -1)
    mkc = (
        np.asarray(k.member_kind_capacity).reshape(n_users, -1)
        if len(k.member_kind_capacity)
        else None
    )

    def kind_cap(u, kd):
        c_ = k.max_per_kind if k.max_per_kind > 0 else 1 << 30
        if mkc is not None and kd < k.n_kinds:
            c_ = min(c_, int(mkc[u, kd]))
        return c_ if len(kinds) else 1 << 30

    allowed = (v > 0) & (v >= k.min_return_per_cost * w) & (cap[member] > 0)
    if len(inv):
        allowed &= inv[ben] != 0
    for i in np.flatnonzero(allowed):
        u = member[i]
        if len(kinds) and kind_cap(u, kind_of[i]) <= 0:
            allowed[i] = False
        s = segment[u]
        if s >= 0 and seg_c(s) >= 0 and w[i] > seg_c(s):
            allowed[i] = False
    use_y = len(smm) > 0 and len(seg) > 0
    n_var = n + (n_users if use_y else 0)
    rows, cols, data, ub = [], [], [], []

    def add_row(idx, coef, bound):
        r = len(ub)
        rows.extend([r] * len(idx))
        cols.extend(idx)
        data.extend(coef)
        ub.append(bound)

    if math.isfinite(k.budget):
        add_row(list(range(n)), list(w), k.budget)
    groups = np.asarray(k.benefit_group)
    for u in range(n_users):
        idx = list(range(off[u], off[u + 1]))
        if not idx:
            continue
        add_row(idx, [1.0] * len(idx), float(cap[u]))
        if len(kinds) and (k.max_per_kind > 0 or mkc is not None):
            for kd in set(kind_of[idx].tolist()):
                sel = [i for i in idx if kind_of[i] == kd]
                add_row(sel, [1.0] * len(sel), float(kind_cap(u, kd)))
        if len(groups):
            for g in set(groups[ben[idx]].tolist()) - {-1}:
                sel = [i for i in idx if groups[ben[i]] == g]
                add_row(sel, [1.0] * len(sel), 1.0)
        if use_y:
            for i in idx:
                add_row([i, n + u], [1.0, -1.0], 0.0)
    if len(inv):
        for b in np.flatnonzero(inv >= 0):
            sel = np.flatnonzero(ben == b).tolist()
            if sel:
                add_row(sel, [1.0] * len(sel), float(inv[b]))
    for s in range(n_seg):
        members = np.flatnonzero(segment == s)
        if seg_c(s) >= 0:
            sel = [i for u in members for i in range(off[u], off[u + 1])]
            if sel:
                add_row(sel, list(w[sel]), float(seg_c(s)))
        if use_y and seg_m(s) >= 0 and len(members):
            add_row([n + u for u in members], [1.0] * len(members), float(seg_m(s)))
    objective = np.zeros(n_var)
    objective[:n] = -v
    upper = np.ones(n_var)
    upper[:n] = allowed.astype(np.float64)
    cons = []
    if ub:
        A = sp.csr_matrix((data, (rows, cols)), shape=(len(ub), n_var))
        cons.append(LinearConstraint(A, -np.inf, np.asarray(ub)))
    options = {} if time_limit is None else {"time_limit": float(time_limit)}
    res = milp(
        objective,
        constraints=cons,
        integrality=np.ones(n_var),
        bounds=Bounds(0, upper),
        options=options,
    )
    if res.x is None:
        raise _core.Error(f"allocate_milp: HiGHS found no solution ({res.message})")
    chosen = np.flatnonzero(res.x[:n] > 0.5)
    return float(v[chosen].sum()), chosen
