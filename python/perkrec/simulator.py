"""The membership simulator: a seeded loyalty program with known ground truth."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from . import _core
from ._progress import ProgressArg, resolve_progress
from ._util import time_seconds
from .behavior import BehaviorLog, BenefitItems, ItemCatalog
from .data import Catalog, EventLog, UserTable

ARCHETYPES = tuple(_core.ARCHETYPES)


@dataclass
class SimulationTruth:
    """What the simulator planted, for scoring models exactly.

    ``redemption_probability``, ``incremental_probability`` and ``claim_probability`` are
    members x benefits arrays for a benefit issued at ``reference_time`` (the end of the
    period). Per member and preference dimension (kind, face-value band, threshold band,
    scope, scenario, channel): ``preferences`` is the member's expected claim rate for benefits
    with that attribute relative to the population's (what a preference model estimates), and
    ``preference_lifts`` the planted log-odds lifts that generate it. With behaviour
    (``simulate(behavior=True)``): ``interests`` is members x item categories, each member's
    planted share of interest per category (rows sum to 1), and ``category_share`` the
    categories' population shares; None without behaviour.
    """

    reference_time: pd.Timestamp
    members: pd.DataFrame
    preferences: pd.DataFrame
    preference_lifts: pd.DataFrame
    claim_probability: np.ndarray
    redemption_probability: np.ndarray
    incremental_probability: np.ndarray
    interests: Optional[pd.DataFrame] = None
    category_share: Optional[pd.Series] = None


@dataclass
class SimulatedProgram:
    """A simulated program: catalog, member attributes, event log and ground truth; with
    behaviour also ``items`` (ItemCatalog: levels category and brand), ``benefit_items`` (which
    items each category- or brand-scoped benefit applies to) and ``behavior`` (BehaviorLog of
    purchase lines and views, member ids those of ``events``); None without behaviour."""

    catalog: Catalog
    users: UserTable
    events: EventLog
    truth: SimulationTruth
    items: Optional[ItemCatalog] = None
    benefit_items: Optional[BenefitItems] = None
    behavior: Optional[BehaviorLog] = None

    def __repr__(self) -> str:
        return (
            f"SimulatedProgram({self.events.n_users} members, {len(self.catalog)} benefits, "
            f"{len(self.events)} events)"
        )


def _int_param(value, name: str) -> int:
    """An integer parameter of simulate (an integral float such as 2.0 passes); anything else
    (2.5, "3", True, NaN) is a ConfigError naming it. Ranges are checked by the core."""
    if isinstance(value, (bool, np.bool_)):
        raise _core.ConfigError(f"simulate: {name} must be an integer (got {value!r})")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        return int(value)
    raise _core.ConfigError(f"simulate: {name} must be an integer (got {value!r})")


def simulate(
    n_users: int = 10000,
    n_benefits: int = 48,
    days: int = 180,
    start="2026-01-01",
    control_fraction: float = 0.1,
    issues_per_week: float = 1.5,
    archetype_mix: Optional[Sequence[float]] = None,
    preference_noise: float = 0.25,
    member_day_of_month: int = 8,
    holiday_start_day: int = 140,
    holiday_days: int = 14,
    seed: int = 42,
    num_threads: int = 0,
    progress: ProgressArg = False,
    *,
    behavior: bool = False,
    n_categories: int = 12,
    interest_concentration: float = 2.0,
    interest_effect: float = 1.0,
    lines_per_order: float = 4.0,
    views_per_order: float = 2.0,
) -> SimulatedProgram:
    """Generates a loyalty program (see include/perkrec/data/simulator.hpp for the model).

    Members have hidden archetypes (threshold_discount_sensitive, high_face_value_seeker,
    points_redemption_active, discount_indifferent_loyal, dormant, new_member); the result is
    identical for any ``num_threads``. Invalid parameters raise ConfigError naming the field.

    ``behavior=True`` adds what members buy and browse: ``n_categories`` item categories (8
    items each, a brand level), each member's category interests (Dirichlet with strength
    ``interest_concentration`` around the categories' popularity), every order as a basket of
    about ``lines_per_order`` purchase lines and about ``views_per_order`` views in the 3 days
    before it (an order after the end leaves its views before the end, and the truth conditions
    on those of the member's next order), a
    quarter of the benefits scoped to one category, and a claim utility that rises by
    ``interest_effect`` per unit of log(the member's interest / the population's) for those
    benefits. Off by default: a program simulated without it is unchanged.
    """
    p = _core.SimulatorParams()
    p.n_users = _int_param(n_users, "n_users")
    p.n_benefits = _int_param(n_benefits, "n_benefits")
    p.days = _int_param(days, "days")
    start_ts = pd.Timestamp(start)
    if start_ts.tzinfo is None:
        start_ts = start_ts.tz_localize("UTC")
    p.start_time = time_seconds(start_ts, "start")
    p.control_fraction = float(control_fraction)
    p.issues_per_week = float(issues_per_week)
    if archetype_mix is not None:
        mix = [float(x) for x in archetype_mix]
        if len(mix) != len(ARCHETYPES):
            raise _core.ConfigError(
                f"simulate: archetype_mix needs {len(ARCHETYPES)} shares (got {len(mix)})"
            )
        p.archetype_mix = mix
    p.preference_noise = float(preference_noise)
    p.member_day_of_month = _int_param(member_day_of_month, "member_day_of_month")
    p.holiday_start_day = _int_param(holiday_start_day, "holiday_start_day")
    p.holiday_days = _int_param(holiday_days, "holiday_days")
    p.seed = _int_param(seed, "seed")
    p.num_threads = _int_param(num_threads, "num_threads")
    if not isinstance(behavior, (bool, np.bool_)):
        raise _core.ConfigError(f"simulate: behavior must be True or False (got {behavior!r})")
    p.behavior = bool(behavior)
    p.n_categories = _int_param(n_categories, "n_categories")
    p.interest_concentration = float(interest_concentration)
    p.interest_effect = float(interest_effect)
    p.lines_per_order = float(lines_per_order)
    p.views_per_order = float(views_per_order)
    out = _core.simulate(p, resolve_progress(progress))
    t = out["truth"]
    users = UserTable._wrap(out["users"])
    member_ids = users.user_ids.ids

    def times(values):
        values = np.asarray(values)
        stamps = values.astype("datetime64[s]")
        stamps[values < 0] = np.datetime64("NaT")  # -1 marks "never"
        return pd.to_datetime(stamps, utc=True)

    members = pd.DataFrame(
        {
            "archetype": pd.Categorical.from_codes(
                t["archetype"].astype(np.int64), list(ARCHETYPES)
            ),
            "control": t["control"].astype(bool),
            "preferred_hour": t["preferred_hour"],
            "preferred_weekday": t["preferred_weekday"],
            "cycle_days": t["cycle_days"],
            "cycle_shape": t["cycle_shape"],
            "basket_median": t["basket_median"],
            "signup_time": times(t["signup_time"]),
            "lapse_time": times(t["lapse_time"]),
            "expected_next_order_time": times(t["expected_next_order_time"]),
        },
        index=pd.Index(member_ids, name="user"),
    )
    truth = SimulationTruth(
        reference_time=pd.Timestamp(t["reference_time"], unit="s", tz="UTC"),
        members=members,
        preferences=pd.DataFrame(
            t["preference"], index=members.index, columns=list(t["dimension_names"])
        ),
        preference_lifts=pd.DataFrame(
            t["preference_lift"], index=members.index, columns=list(t["dimension_names"])
        ),
        claim_probability=t["claim_probability"],
        redemption_probability=t["redemption_probability"],
        incremental_probability=t["incremental_probability"],
    )
    program = SimulatedProgram(
        catalog=Catalog._wrap(out["catalog"]),
        users=users,
        events=EventLog._wrap(out["events"]),
        truth=truth,
    )
    if behavior:
        categories = pd.Index(list(t["category_names"]), name="category")
        truth.interests = pd.DataFrame(t["interest"], index=members.index, columns=categories)
        truth.category_share = pd.Series(t["category_share"], index=categories, name="share")
        program.items = ItemCatalog._wrap(out["items"])
        program.benefit_items = BenefitItems._wrap(out["benefit_items"])
        program.behavior = BehaviorLog._wrap(out["behavior"])
        program.behavior.user_ids = users.user_ids
    return program
