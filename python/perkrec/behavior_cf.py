"""Item-level collaborative behaviour signal: ALS item factors learned from what members bought
or browsed before a cut time, pooled over each benefit's items and matched with each member's
recent items (a thin wrapper over perkrec::BehaviorCF, features/behavior_cf.hpp). In a model,
use the FeatureEncoder field ``{"kind": "behavior_cf"}``, which fits it before the earliest
training sample and stores the item factors with the encoder."""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np
import pandas as pd

from . import _core
from ._util import int_array, int_scalar, seconds, time_seconds
from .behavior import BehaviorLog, BenefitItems, ItemCatalog, _behavior_triple, _require_columns

BEHAVIOR_CF_COLUMNS = tuple(_core.BEHAVIOR_CF_COLUMNS)


def behavior_cf_features(
    samples: pd.DataFrame,
    log: BehaviorLog,
    items: ItemCatalog,
    benefit_items: BenefitItems,
    *,
    as_of=None,
    actions: Sequence[str] = ("purchase",),
    factors: int = 16,
    iterations: int = 10,
    regularization: float = 0.1,
    alpha: float = 1.0,
    cg_steps: int = 3,
    half_life_days: float = 28.0,
    weight_half_life_days: float = 0.0,
    num_threads: int = 0,
    seed: int = 42,
) -> pd.DataFrame:
    """``cf_dot`` and ``cf_cosine`` of each sample (columns ``user``, ``benefit`` — indices —
    and ``timestamp``), for inspection.

    Implicit ALS (``factors``, ``iterations``, ``regularization``, ``alpha``, ``cg_steps``,
    ``seed``) learns item factors from the ``actions`` events strictly before ``as_of`` (any
    time perkrec reads; default: the earliest sample's time, so no behaviour at or after any
    sample enters the factors), each event weighing 1, or 0.5 ** (age / weight_half_life_days)
    when that is > 0. A benefit's vector is the mean of its items' factors; a sample's member
    vector the mean of the factors of the items the member touched strictly before the
    sample's time, weighted by 0.5 ** (age / half_life_days). ``cf_dot`` is their dot product,
    ``cf_cosine`` their cosine; both are 0 for a member without earlier behaviour or a benefit
    without items bought or browsed before ``as_of``. The frame keeps the samples' index; the
    values never depend on ``num_threads``.
    """
    context = "behavior_cf_features"
    _require_columns(samples, ["user", "benefit", "timestamp"], context)
    log_impl, _, applies_impl = _behavior_triple((log, items, benefit_items), context)
    if isinstance(actions, str):
        raise _core.ConfigError(f"{context}: actions must be a list of names (got {actions!r})")
    times = seconds(samples["timestamp"], "timestamp")
    if as_of is None:
        if len(times) == 0:
            raise _core.InputError(f"{context}: as_of is needed when there are no samples")
        cut = int(times.min())
    else:
        cut = time_seconds(as_of, "as_of")
    params = {
        "actions": [str(a) for a in actions],
        "factors": factors,
        "iterations": iterations,
        "regularization": regularization,
        "alpha": alpha,
        "cg_steps": cg_steps,
        "half_life_days": half_life_days,
        "weight_half_life_days": weight_half_life_days,
        "num_threads": int_scalar(num_threads, "num_threads"),
        "seed": seed,
    }
    cols = _core.behavior_cf_features(
        int_array(samples["user"].to_numpy(), np.int64, "user"),
        int_array(samples["benefit"].to_numpy(), np.int64, "benefit"),
        times,
        log_impl,
        applies_impl,
        cut,
        json.dumps(params, default=_json_number),
    )
    return pd.DataFrame(dict(cols), index=samples.index, copy=False)


def _json_number(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    raise _core.ConfigError(f"behavior_cf_features: expected a number (got {value!r})")


__all__ = ["BEHAVIOR_CF_COLUMNS", "behavior_cf_features"]
