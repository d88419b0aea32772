"""Test helper: a fitted BenefitPlanner's model file rebuilt part by part, as a file of an
earlier release (params keys it did not have) or with other stored parts."""

from __future__ import annotations

import json

from perkrec import _core

_STORED = object()


def rebuilt_file(
    planner,
    *,
    drop_params=(),
    params=None,
    levels=_STORED,
    pooled=_STORED,
    preference_weight=_STORED,
) -> _core.BenefitPlannerFile:
    """The planner's file with the params keys ``drop_params`` removed from its config, the
    params ``params`` (a dict) set in it, and the benefit levels, the pooled effects or the
    preference weight replaced by ``levels``, ``pooled``, ``preference_weight`` (None: none
    stored); every other part as stored. The file's own checks run (InputError)."""
    f = planner._file("test")
    config = json.loads(f.config_json)
    for key in drop_params:
        del config["params"][key]
    config["params"].update(params or {})
    if levels is _STORED:
        levels = f.benefit_level if len(f.benefit_level) else None
    return _core.BenefitPlannerFile(
        json.dumps(config),
        f.fm,
        f.preference,
        f.catalog,
        f.events,
        f.users,
        f.order_value,
        f.holdout_user,
        f.holdout_benefit,
        f.holdout_predicted,
        f.holdout_redeemed,
        f.holdout_weight if len(f.holdout_weight) else None,
        f.incremental_share if len(f.incremental_share) else None,
        f.pooled if pooled is _STORED else pooled,
        f.preference_weight if preference_weight is _STORED else preference_weight,
        None,
        None,
        None,
        levels,
    )


def rebuilt_file_bytes(planner, **changes) -> bytes:
    """rebuilt_file(planner, **changes) as model-file bytes."""
    return rebuilt_file(planner, **changes).to_bytes()
