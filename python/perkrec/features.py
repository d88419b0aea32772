"""Features built from the event log: the members x benefits interaction matrix."""

from __future__ import annotations

from typing import Mapping, Optional

import scipy.sparse as sp

from . import _core
from ._util import csr_from_parts, renamed_keywords, time_seconds
from .data import EVENT_TYPES, EventLog, _expect

DEFAULT_EVENT_WEIGHTS = {
    "issued": 0.0,
    "viewed": 0.25,
    "claimed": 1.0,
    "redeemed": 4.0,
    "expired": 0.0,
    "ordered": 0.0,
}


@renamed_keywords(end_time="cut_time")
def interaction_matrix(
    log: EventLog,
    event_weights: Optional[Mapping[str, float]] = None,
    half_life_days: float = 0.0,
    cut_time=None,
    combine: str = "sum",
    num_threads: int = 0,
) -> sp.csr_matrix:
    """Members x benefits confidences (scipy CSR, float32).

    Each event adds ``event_weights[type] * 0.5 ** (age / half_life_days)``, its age measured
    to ``cut_time`` (or to the log's last event). Only events before ``cut_time`` count, so a
    matrix built with the split cut never sees the test period. Cells are combined by 'sum' or
    'max'. ``event_weights`` overrides the defaults per type (unknown types raise ConfigError).
    ``end_time`` is the deprecated name of ``cut_time``.
    """
    _expect(log, EventLog, "log", "interaction_matrix")
    weights = dict(DEFAULT_EVENT_WEIGHTS)
    for name, value in (event_weights or {}).items():
        if name not in EVENT_TYPES:
            raise _core.ConfigError(
                f"interaction_matrix: unknown event type {name!r} in event_weights "
                f"(expected one of {', '.join(EVENT_TYPES)})"
            )
        weights[name] = float(value)
    parts = _core.build_interaction_matrix(
        log._impl,
        [weights[t] for t in EVENT_TYPES],
        float(half_life_days),
        None if cut_time is None else time_seconds(cut_time, "cut_time"),
        combine,
        int(num_threads),
    )
    return csr_from_parts(parts)
