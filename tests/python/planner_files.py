"""Test helper: a fitted BenefitPlanner's model file rebuilt part by part, as a file of an
earlier release (params keys it did not have) or with other stored parts."""

from __future__ import annotations

import json

from perkrec import _core

_STORED = object()


def rebuilt_file_bytes(planner, *, drop_params=(), levels=_STORED) -> bytes:
    """The planner's file with the params keys ``drop_params`` removed from its config and the
    benefit levels replaced by ``levels`` (None: no levels); every other part as stored."""
    f = planner._file("test")
    config = json.loads(f.config_json)
    for key in drop_params:
        del config["params"][key]
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
        f.pooled,
        f.preference_weight,
        None,
        None,
        None,
        levels,
    ).to_bytes()
