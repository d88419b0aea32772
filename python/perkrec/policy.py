"""Policy: the rules and limits an issued plan must respect (eligibility rules, caps, frequency
cap, quiet hours, inventory, non-stackable groups, segment quotas, budget, minimum return per
cost), written as strict JSON and compiled once per plan into eligibility masks and the
allocator's constraints.

The JSON schema is documented in include/perkrec/decide/policy.hpp (and briefly in the README).

Example::

    policy = perkrec.Policy({"budget": 5000, "max_per_member": 2,
                             "rules": [{"name": "no gifts for basic", "effect": "deny",
                                        "benefits": {"kinds": ["gift"]},
                                        "members": {"attributes": [
                                            {"column": "tier", "op": "==", "value": "basic"}]}}]})
    compiled = policy.compile(catalog, users, "2026-11-23", history=log)
    compiled.eligible_matrix()        # members x benefits, bool
    compiled.constraints.budget       # 5000.0
"""

from __future__ import annotations

import json
import os
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from . import _core
from ._util import (
    int_array,
    int_scalar,
    path_arg,
    renamed_function,
    renamed_keywords,
    renamed_property,
    seconds,
    text_arg,
    time_seconds,
)
from .data import Catalog, EventLog, UserTable, _expect

__all__ = ["Policy", "CompiledPolicy"]

PolicySpec = Union[None, str, dict, "os.PathLike[str]", "Policy"]


def _segments_arg(segments, n_users: int) -> Tuple[Optional[np.ndarray], Optional[List[str]]]:
    """(codes int32, names) from None, a (codes, names) pair, a Series of labels (categorical or
    not; missing = no segment), or a DataFrame with a "segment" column."""
    if segments is None:
        return None, None
    if isinstance(segments, pd.DataFrame):
        if "segment" not in segments.columns:
            raise _core.InputError("Policy.compile: segments DataFrame needs a 'segment' column")
        segments = segments["segment"]
    if isinstance(segments, tuple) and len(segments) == 2:
        codes = np.ascontiguousarray(segments[0], dtype=np.int32)
        names = [str(n) for n in segments[1]]
    else:
        series = pd.Series(segments)
        if isinstance(series.dtype, pd.CategoricalDtype):  # keeps every category, used or not
            cat = series.cat
        else:
            cat = pd.Categorical(series.astype(object).where(series.notna(), None))
        codes = np.ascontiguousarray(cat.codes, dtype=np.int32)
        names = [str(c) for c in cat.categories]
    if codes.ndim != 1 or len(codes) != n_users:
        raise _core.InputError(
            f"Policy.compile: segments have {codes.size} entries (expected one per member: {n_users})"
        )
    return codes, names


class CompiledPolicy:
    """A policy compiled for one set of members, one catalog and one plan time.

    Attributes: ``masks`` (``EligibilityMasks``: one bitset per distinct member signature),
    ``constraints`` (``AllocationConstraints`` for the allocator: budget, member capacity,
    inventory, kinds, stacking groups, segments and quotas, ...), ``rule_names`` (rule index ->
    name; the last is the built-in "inventory"), ``segment_names``, ``user_block`` (per
    member ``ExclusionReason`` code: frequency_cap / member_cap when the member can receive
    nothing), ``utc_offset_hours`` and ``issue_cost``.
    """

    def __init__(
        self, impl: "_core.CompiledPolicy", benefit_ids: Sequence[str], user_table: UserTable
    ):
        self._impl = impl
        self._benefit_ids = list(benefit_ids)
        self._users = user_table

    # --- eligibility -----------------------------------------------------------------------------
    @property
    def masks(self) -> Any:
        return self._impl.masks

    @property
    def n_users(self) -> int:
        return int(self._impl.masks.n_users)

    @property
    def n_benefits(self) -> int:
        return int(self._impl.masks.n_benefits)

    @property
    def n_masks(self) -> int:
        return int(self._impl.masks.n_masks)

    @property
    def user_masks(self) -> np.ndarray:
        """Mask id per member (int32)."""
        return self._impl.masks.user_masks

    member_masks = renamed_property("user_masks", "CompiledPolicy.member_masks")

    def mask_rules(self) -> np.ndarray:
        """n_masks x n_benefits int32: the first rule excluding each benefit, -1 = eligible."""
        return self._impl.masks.mask_rules()

    def mask_bits(self) -> np.ndarray:
        """n_masks x n_benefits bool: the eligibility bitsets, unpacked."""
        return self.mask_rules() < 0

    def eligible_matrix(self) -> np.ndarray:
        """Dense members x benefits bool matrix (n_users x n_benefits bytes: mind the size)."""
        return self.mask_bits()[self.user_masks]

    @renamed_keywords(members="users")
    def excluding_rule(self, users, benefits) -> np.ndarray:
        """Per (member, benefit) pair (``users[i]``, ``benefits[i]``): the name of the first rule
        excluding it, or None."""
        m = int_array(users, np.int64, "CompiledPolicy.excluding_rule: users")
        b = int_array(benefits, np.int64, "CompiledPolicy.excluding_rule: benefits")
        if m.shape != b.shape:
            raise _core.InputError(
                "CompiledPolicy.excluding_rule: users and benefits differ in shape"
            )
        if m.size and (
            m.min() < 0 or m.max() >= self.n_users or b.min() < 0 or b.max() >= self.n_benefits
        ):
            raise _core.InputError(
                "CompiledPolicy.excluding_rule: user or benefit index out of range"
            )
        rules = self.mask_rules()[self.user_masks[m], b]
        names = np.asarray(self.rule_names + [None], dtype=object)
        return names[np.where(rules < 0, len(self.rule_names), rules)]

    def rule_counts(self) -> pd.DataFrame:
        """Per rule: how many (member, benefit) pairs it excludes (first excluding rule only;
        C++ decide/policy.hpp: excluded_pairs_by_rule)."""
        excluded = _core.excluded_pairs_by_rule(self._impl)
        return pd.DataFrame({"rule": self.rule_names, "excluded_pairs": excluded})

    # --- constraints and members -----------------------------------------------------------------
    @property
    def constraints(self) -> Any:
        return self._impl.constraints

    @property
    def rule_names(self) -> List[str]:
        return list(self._impl.rule_names)

    @property
    def segment_names(self) -> List[str]:
        return list(self._impl.segment_names)

    @property
    def user_block(self) -> np.ndarray:
        """Per member ExclusionReason code (uint8): 0 none, 5 member_cap, 10 frequency_cap."""
        return self._impl.user_block

    def user_block_names(self) -> pd.Categorical:
        """``user_block`` as a Categorical of ExclusionReason names."""
        names = list(_core.exclusion_reason_names())
        return pd.Categorical.from_codes(self.user_block.astype(np.int64), names)

    member_block = renamed_property("user_block", "CompiledPolicy.member_block")
    member_block_names = renamed_function(user_block_names, "CompiledPolicy.member_block_names")

    @property
    def utc_offset_hours(self) -> np.ndarray:
        return self._impl.utc_offset_hours

    @property
    def issue_cost(self) -> float:
        return float(self._impl.issue_cost)

    @property
    def benefit_ids(self) -> List[str]:
        return list(self._benefit_ids)

    # --- send time -------------------------------------------------------------------------------
    @renamed_keywords(member="user")
    def send_time(self, t, user: int):
        """Earliest time >= t outside the quiet hours in the local time of member ``user`` (an
        index). ``t`` in seconds (int or float) gives int seconds; anything else pandas reads as
        a time gives a UTC Timestamp."""
        out = int(
            self._impl.send_time(
                time_seconds(t, "t"), int_scalar(user, "CompiledPolicy.send_time: user")
            )
        )
        return (
            out
            if isinstance(t, (int, float, np.integer, np.floating))
            else pd.Timestamp(out, unit="s", tz="UTC")
        )

    @renamed_keywords(members="users")
    def send_times(self, times, users) -> np.ndarray:
        """Vectorized send_time over arrays of seconds (int64) and member indices ``users``."""
        m = int_array(users, np.int32, "CompiledPolicy.send_times: users")
        t = np.ascontiguousarray(
            np.broadcast_to(seconds(times, "CompiledPolicy.send_times: times"), m.shape)
        )
        return self._impl.send_times(t, m)

    def __repr__(self) -> str:
        return (
            f"CompiledPolicy({self.n_users} members x {self.n_benefits} benefits, {self.n_masks} masks, "
            f"{len(self.rule_names) - 1} rules, budget {self.constraints.budget})"
        )


class Policy:
    """Eligibility rules, caps, quiet hours, inventory, stacking groups, segment quotas and a
    budget, as strict JSON (schema: include/perkrec/decide/policy.hpp).

    ``Policy(spec)`` takes a dict, JSON text, a path to a JSON file, another Policy, or None
    (no rules, one benefit per member, unlimited budget). Unknown keys, bad values and
    contradictions raise ConfigError naming the JSON pointer (e.g. ``/rules/2/until``).
    """

    def __init__(self, spec: PolicySpec = None):
        if spec is None:
            self._impl = _core.Policy()
        elif isinstance(spec, Policy):
            self._impl = spec._impl
        elif isinstance(spec, dict):
            self._impl = _core.Policy.from_string(json.dumps(spec))
        elif isinstance(spec, os.PathLike) or (
            isinstance(spec, str) and not spec.lstrip().startswith("{")
        ):
            self._impl = Policy.from_path(spec)._impl
        elif isinstance(spec, str):
            self._impl = _core.Policy.from_string(spec)
        else:
            raise _core.ConfigError(
                f"Policy: expected a dict, JSON text, a path or None (got {type(spec).__name__})"
            )

    @classmethod
    def from_json(cls, text: str) -> "Policy":
        obj = cls.__new__(cls)
        obj._impl = _core.Policy.from_string(text_arg(text, "Policy.from_json: text"))
        return obj

    @classmethod
    def from_dict(cls, spec: dict) -> "Policy":
        if not isinstance(spec, dict):
            raise _core.ConfigError(
                f"Policy.from_dict: expected a dict (got {type(spec).__name__})"
            )
        return cls.from_json(json.dumps(spec))

    @classmethod
    def from_path(cls, path) -> "Policy":
        path = path_arg(path, "Policy.from_path: path")
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise _core.InputError(
                f"Policy.from_path: cannot read {path!r}: {exc.strerror}"
            ) from None
        return cls.from_json(text_arg(data, f"Policy.from_path: {path}"))

    def to_json(self, indent: Optional[int] = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_dict(self) -> dict:
        """The policy in the JSON schema (every default written out; round-trips)."""
        return json.loads(self._impl.to_json())

    def validate(self) -> None:
        self._impl.validate()

    # Read-only shortcuts.
    @property
    def budget(self) -> float:
        return float(self._impl.budget)

    @property
    def issue_cost(self) -> float:
        return float(self._impl.issue_cost)

    @property
    def max_per_member(self) -> int:
        return int(self._impl.max_per_member)

    @property
    def rule_names(self) -> List[str]:
        return list(self._impl.rule_names)

    @renamed_keywords(users="user_table")
    def compile(
        self,
        catalog: Catalog,
        user_table: UserTable,
        plan_time,
        segments=None,
        history: Optional[EventLog] = None,
        num_threads: int = 0,
    ) -> CompiledPolicy:
        """Compiles for ``user_table`` (the plan's members, in UserTable row order; ``users`` is
        its deprecated name) and ``catalog`` at ``plan_time`` (seconds, or anything pandas reads as a time; naive = UTC).

        segments: None, a Series / list of segment labels per member (missing = none), a
        DataFrame with a "segment" column (``PreferenceModel.segments()``), or (codes, names).
        history: an EventLog with the same member and benefit indexing, for caps and the
        frequency cap (``issued`` events in the trailing periods before plan_time).
        Unknown columns, segments or benefit ids raise InputError naming the rule."""
        _expect(catalog, Catalog, "catalog", "Policy.compile")
        _expect(user_table, UserTable, "user_table", "Policy.compile")
        if history is not None:
            _expect(history, EventLog, "history", "Policy.compile")
        codes, names = _segments_arg(segments, len(user_table))
        impl = self._impl.compile(
            catalog._impl,
            user_table._impl,
            time_seconds(plan_time, "plan_time"),
            codes,
            names,
            None if history is None else history._impl,
            int(num_threads),
        )
        return CompiledPolicy(impl, [str(b) for b in catalog.ids.ids], user_table)

    def send_time(self, t, utc_offset_hours: float = 0.0):
        """Earliest time >= t outside the quiet hours for a member at ``utc_offset_hours``.
        Seconds in (int or float) give int seconds out; anything else pandas reads as a time
        gives a UTC Timestamp."""
        out = int(self._impl.send_time(time_seconds(t, "t"), float(utc_offset_hours)))
        return (
            out
            if isinstance(t, (int, float, np.integer, np.floating))
            else pd.Timestamp(out, unit="s", tz="UTC")
        )

    def __eq__(self, other) -> bool:
        return isinstance(other, Policy) and self._impl == other._impl

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self):
        return (Policy.from_json, (self._impl.to_json(),))

    def __repr__(self) -> str:
        budget = "unlimited" if not np.isfinite(self.budget) else f"{self.budget:g}"
        return f"Policy({len(self.rule_names)} rules, budget {budget}, max_per_member {self.max_per_member})"
