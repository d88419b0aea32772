"""perkrec: benefit recommendation for loyalty and membership programs.

Who gets which benefit (coupon, threshold discount, percent-off, gift, points, free shipping,
member-exclusive perk), when, at what return on cost — and why.

Layers (mirroring the C++ library):
    data       IdMap, Catalog, UserTable, EventLog, parse_discounts, splits, simulate
    behavior   ItemCatalog, BehaviorLog, BenefitItems (what members buy and browse)
    features   interaction_matrix, behavior_features, behavior_cf_features
    models     Popularity, ALS, BPR, ItemKNN, FM/FFM, FMCV, PreferenceModel, UpliftModel
    decide     Policy, rank, allocate, Pacer, Planner -> Plan; BenefitPlanner (log -> Plan)
    metrics    auc, log_loss, ranking_metrics, catalog_coverage
    causal     qini_auc_score, uplift_auc_score, uplift_at_k, qini_curve, uplift_curve,
               cost_curve, aucc_score, off_policy_value, assign_holdout, analyze_experiment,
               pilot_level
    io         load, loads, info
    datasets   loaders for public benchmark datasets

Errors: every failure raises a subclass of perkrec.Error; InputError, ConfigError and
ModelFormatError are also ValueErrors, DivergenceError an ArithmeticError.
"""

from . import _core
from ._core import ConfigError, DivergenceError, Error, InputError, ModelFormatError
from .data import (
    BENEFIT_KINDS,
    EVENT_TYPES,
    SCOPES,
    Catalog,
    EventLog,
    IdMap,
    UserTable,
    parse_discounts,
    split_by_time,
    split_leave_last_k,
    split_random_users,
)
from .behavior import BEHAVIOR_AGGREGATES, BehaviorLog, BenefitItems, ItemCatalog, behavior_features
from .behavior_cf import BEHAVIOR_CF_COLUMNS, behavior_cf_features
from .features import DEFAULT_EVENT_WEIGHTS, interaction_matrix
from .io import info, load, loads
from .metrics import auc, catalog_coverage, log_loss, ranking_metrics
from .causal import (
    OffPolicyEstimate,
    PilotLevel,
    analyze_experiment,
    assign_holdout,
    aucc_score,
    cost_curve,
    holdout_hash,
    off_policy_value,
    perfect_qini_curve,
    perfect_uplift_curve,
    pilot_level,
    qini_auc_score,
    qini_curve,
    uplift_at_k,
    uplift_auc_score,
    uplift_curve,
)
from .fm import (
    FFM,
    FM,
    FMCV,
    FeatureEncoder,
    IsotonicCalibrator,
    PlattCalibrator,
    redemption_samples,
    reliability_curve,
)
from .models import ALS, BPR, ItemKNN, Popularity
from .preference import PreferenceModel, default_segment_rules, wide_table
from .uplift import UpliftModel
from .clv import (
    LIFECYCLE_STAGES,
    CLVModel,
    calibration_holdout,
    holdout_errors,
    naive_forecast,
    summarize_purchases,
)
from .interest import InterestModel
from .policy import CompiledPolicy, Policy
from .simulator import ARCHETYPES, SimulatedProgram, SimulationTruth, simulate
from .allocate import (
    Pacer,
    allocate,
    allocation_users,
    check_allocation,
    make_candidates,
    make_constraints,
)
from .ranking import (
    ScoreBlend,
    best_ineligible,
    explain,
    hour_of_week,
    quiet_hours_next_allowed,
    rank,
    schedule,
)
from .plan import Plan, Planner, incremental_share, order_value
from .pipeline import BenefitPlanner
from .allocate import allocation_members  # noqa: F401 (deprecated alias of allocation_users)

__version__ = _core.__version__


def __getattr__(name):
    # perkrec.datasets loads on first use: importing perkrec stays light (bench/import_time.py).
    if name == "datasets":
        import importlib

        return importlib.import_module(".datasets", __name__)
    raise AttributeError(f"module 'perkrec' has no attribute {name!r}")


__all__ = [
    "ARCHETYPES",
    "BENEFIT_KINDS",
    "DEFAULT_EVENT_WEIGHTS",
    "EVENT_TYPES",
    "SCOPES",
    "Catalog",
    "ConfigError",
    "DivergenceError",
    "Error",
    "EventLog",
    "IdMap",
    "InputError",
    "ModelFormatError",
    "Popularity",
    "SimulatedProgram",
    "SimulationTruth",
    "UserTable",
    "auc",
    "catalog_coverage",
    "info",
    "interaction_matrix",
    "load",
    "loads",
    "log_loss",
    "parse_discounts",
    "ranking_metrics",
    "simulate",
    "split_by_time",
    "split_leave_last_k",
    "split_random_users",
    "datasets",
    "__version__",
]
__all__ += [
    "ALS",
    "BPR",
    "ItemKNN",  # collaborative filtering
    "FFM",
    "FM",
    "FMCV",
    "FeatureEncoder",
    "IsotonicCalibrator",
    "PlattCalibrator",  # redemption models
    "redemption_samples",
    "reliability_curve",
    "PreferenceModel",
    "default_segment_rules",
    "wide_table",  # benefit preference
    "UpliftModel",  # causal effects
    "CLVModel",
    "LIFECYCLE_STAGES",
    "summarize_purchases",  # member value
    "calibration_holdout",
    "holdout_errors",
    "naive_forecast",
    "BEHAVIOR_AGGREGATES",
    "BehaviorLog",
    "BenefitItems",
    "ItemCatalog",  # behaviour
    "behavior_features",
    "BEHAVIOR_CF_COLUMNS",
    "behavior_cf_features",
    "InterestModel",
]
__all__ += [  # decision layer
    "CompiledPolicy",
    "Policy",  #   policy
    "ScoreBlend",
    "best_ineligible",
    "explain",
    "hour_of_week",  #   ranker, send time, reasons
    "quiet_hours_next_allowed",
    "rank",
    "schedule",
    "Pacer",
    "allocate",
    "allocation_users",
    "check_allocation",  #   allocator
    "make_candidates",
    "make_constraints",
    "Plan",
    "Planner",
    "incremental_share",
    "order_value",
    "BenefitPlanner",  #   plans
]
__all__ += [  # causal evaluation
    "qini_curve",
    "uplift_curve",
    "perfect_qini_curve",
    "perfect_uplift_curve",  #   uplift
    "qini_auc_score",
    "uplift_auc_score",
    "uplift_at_k",
    "cost_curve",
    "aucc_score",
    "OffPolicyEstimate",
    "off_policy_value",  #   off-policy
    "assign_holdout",
    "holdout_hash",
    "analyze_experiment",  #   experiments
    "PilotLevel",
    "pilot_level",  #   a pilot wave's level of P
]
