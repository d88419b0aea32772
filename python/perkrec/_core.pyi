"""Type stubs for perkrec._core, the compiled half of the package. Use the perkrec package
API; these signatures document what the wrappers pass (exact dtypes, C-contiguous arrays)."""

from typing import Any, Callable, Dict, List, Optional, Tuple, Union, overload

import numpy as np

__version__: str
EVENT_TYPES: List[str]
BENEFIT_KINDS: List[str]
SCOPES: List[str]
ARCHETYPES: List[str]
DEFAULT_MAX_GROWTH: int
MIN_TIME: int
MAX_TIME: int
MAX_THREADS: int

class Error(Exception): ...
class InputError(Error, ValueError): ...
class ConfigError(Error, ValueError): ...

class ModelFormatError(Error, ValueError):
    code: str

class DivergenceError(Error, ArithmeticError): ...

CsrTuple = Tuple[
    np.ndarray, np.ndarray, np.ndarray, int, int
]  # indptr i64, indices i32, data f32, rows, cols
Progress = Optional[Callable[[str, int, int], None]]

def default_num_threads() -> int: ...
def default_params() -> Dict[str, str]: ...
def crc32c(data: bytes) -> int: ...
def has_openmp() -> bool: ...

class IdMap:
    def __init__(self) -> None: ...
    @staticmethod
    def from_integers(ids: np.ndarray) -> IdMap: ...
    @staticmethod
    def from_strings(ids: List[str]) -> IdMap: ...
    @staticmethod
    def range(n: int) -> IdMap: ...
    def __len__(self) -> int: ...
    @property
    def key_type(self) -> str: ...
    def lookup_integers(self, ids: np.ndarray, missing: str) -> np.ndarray: ...
    def lookup_strings(self, ids: List[str], missing: str) -> np.ndarray: ...
    def lookup_or_add_integers(self, ids: np.ndarray) -> np.ndarray: ...
    def lookup_or_add_strings(self, ids: List[str]) -> np.ndarray: ...
    def integers(self) -> np.ndarray: ...
    def strings(self) -> List[str]: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> IdMap: ...
    def save(self, path: str) -> None: ...
    @staticmethod
    def load(path: str) -> IdMap: ...

class Catalog:
    def __init__(self) -> None: ...
    @staticmethod
    def from_json(text: str) -> Catalog: ...
    def to_json(self, indent: int = 2) -> str: ...
    @staticmethod
    def from_columns(*columns: object) -> Catalog: ...
    def columns(self) -> Dict[str, object]: ...
    def __len__(self) -> int: ...
    def find(self, id: str) -> int: ...
    @property
    def ids(self) -> IdMap: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> Catalog: ...
    def save(self, path: str) -> None: ...
    @staticmethod
    def load(path: str) -> Catalog: ...

def parse_discounts(texts: List[str], coerce: bool = False) -> Dict[str, np.ndarray]: ...

class BenefitDimensions:
    @staticmethod
    def for_catalog(catalog: Catalog) -> BenefitDimensions: ...
    @property
    def names(self) -> List[str]: ...
    def encode(self, catalog: Catalog) -> np.ndarray: ...

class UserTable:
    def __init__(self, users: IdMap) -> None: ...
    def __len__(self) -> int: ...
    @property
    def users(self) -> IdMap: ...
    def add_numeric(self, name: str, values: np.ndarray) -> None: ...
    def add_categorical(self, name: str, codes: np.ndarray, categories: List[str]) -> None: ...
    def names(self) -> List[str]: ...
    def type(self, name: str) -> str: ...
    def numeric(self, name: str) -> np.ndarray: ...
    def codes(self, name: str) -> np.ndarray: ...
    def categories(self, name: str) -> List[str]: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> UserTable: ...
    def save(self, path: str) -> None: ...
    @staticmethod
    def load(path: str) -> UserTable: ...

class EventLog:
    def __init__(self) -> None: ...
    @staticmethod
    def from_arrays(
        user: np.ndarray,
        benefit: np.ndarray,
        event_type: np.ndarray,
        timestamp: np.ndarray,
        channel: Optional[np.ndarray],
        order_amount: Optional[np.ndarray],
        propensity: Optional[np.ndarray],
        control: Optional[np.ndarray],
        n_users: int,
        n_benefits: int,
        channel_names: List[str],
        num_threads: int,
    ) -> EventLog: ...
    def __len__(self) -> int: ...
    n_users: int
    n_benefits: int
    channel_names: List[str]
    min_time: int
    max_time: int
    has_propensity: bool
    has_control: bool
    user_ids: IdMap
    benefit_ids: IdMap
    def set_ids(self, users: IdMap, benefits: IdMap) -> None: ...
    def count_by_type(self) -> List[int]: ...
    def users(self) -> np.ndarray: ...
    def benefits(self) -> np.ndarray: ...
    def types(self) -> np.ndarray: ...
    def timestamps(self) -> np.ndarray: ...
    def channels(self) -> np.ndarray: ...
    def order_amounts(self) -> np.ndarray: ...
    def propensities(self) -> np.ndarray: ...
    def control(self) -> np.ndarray: ...
    def user_offsets(self) -> np.ndarray: ...
    def filter(self, keep: np.ndarray, num_threads: int) -> EventLog: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> EventLog: ...
    def save(self, path: str) -> None: ...
    @staticmethod
    def load(path: str) -> EventLog: ...

def split_by_time(log: EventLog, cut: int, num_threads: int) -> Tuple[EventLog, EventLog]: ...
def split_leave_last_k(
    log: EventLog, k: int, mask: int, num_threads: int
) -> Tuple[EventLog, EventLog]: ...
def split_random_users(
    log: EventLog, fraction: float, seed: int, num_threads: int
) -> Tuple[EventLog, EventLog]: ...

class SimulatorParams:
    n_users: int
    n_benefits: int
    days: int
    start_time: int
    control_fraction: float
    issues_per_week: float
    archetype_mix: List[float]
    preference_noise: float
    member_day_of_month: int
    holiday_start_day: int
    holiday_days: int
    behavior: bool
    n_categories: int
    interest_concentration: float
    interest_effect: float
    lines_per_order: float
    views_per_order: float
    seed: int
    num_threads: int
    def __init__(self) -> None: ...
    def validate(self) -> None: ...

def simulate(params: SimulatorParams, progress: Progress = None) -> Dict[str, object]: ...
def simulated_catalog(params: SimulatorParams) -> Catalog: ...

FACE_VALUE_BANDS: List[float]

def redemption_labels(
    users: np.ndarray,
    benefits: np.ndarray,
    types: np.ndarray,
    times: np.ndarray,
    window_days: np.ndarray,
) -> Dict[str, np.ndarray]: ...
def build_interaction_matrix(
    log: EventLog,
    event_weights: List[float],
    half_life_days: float,
    cut_time: Optional[int],
    combine: str,
    num_threads: int,
) -> CsrTuple: ...

HISTORY_AGGREGATES: Tuple[str, ...]
BEHAVIOR_AGGREGATES: Tuple[str, ...]
BEHAVIOR_NEVER_DAYS: float

class ItemCatalog:
    def __init__(self, items: IdMap = ...) -> None: ...
    def __len__(self) -> int: ...
    items: IdMap
    def add_level(self, name: str, codes: np.ndarray, values: List[str]) -> None: ...
    def add_numeric(self, name: str, values: np.ndarray) -> None: ...
    def level_names(self) -> List[str]: ...
    def numeric_names(self) -> List[str]: ...
    def level_codes(self, name: str) -> np.ndarray: ...
    def level_values(self, name: str) -> List[str]: ...
    def numeric(self, name: str) -> np.ndarray: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> ItemCatalog: ...
    def save(self, path: str) -> None: ...
    @staticmethod
    def load(path: str) -> ItemCatalog: ...

class BehaviorLog:
    def __init__(self) -> None: ...
    @staticmethod
    def from_arrays(
        user: np.ndarray,
        item: np.ndarray,
        timestamp: np.ndarray,
        action: Optional[np.ndarray],
        quantity: Optional[np.ndarray],
        amount: Optional[np.ndarray],
        basket: Optional[np.ndarray],
        n_users: int,
        n_items: int,
        action_names: List[str],
        unknown: str,
        num_threads: int,
    ) -> BehaviorLog: ...
    def __len__(self) -> int: ...
    n_users: int
    n_items: int
    unknown_items: int
    unknown_users: int
    action_names: List[str]
    has_baskets: bool
    min_time: int
    max_time: int
    def users(self) -> np.ndarray: ...
    def items(self) -> np.ndarray: ...
    def actions(self) -> np.ndarray: ...
    def timestamps(self) -> np.ndarray: ...
    def quantities(self) -> np.ndarray: ...
    def amounts(self) -> np.ndarray: ...
    def baskets(self) -> np.ndarray: ...
    def user_offsets(self) -> np.ndarray: ...
    def before(self, user: int, t: int) -> int: ...
    user_ids: IdMap
    def set_user_ids(self, ids: IdMap) -> None: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> BehaviorLog: ...
    def save(self, path: str) -> None: ...
    @staticmethod
    def load(path: str) -> BehaviorLog: ...

def lookup_behavior_ids(
    user_ids: Optional[np.ndarray],
    users: IdMap,
    item_ids: Optional[np.ndarray],
    items: IdMap,
    timestamp: Optional[np.ndarray],
    num_threads: int,
) -> Tuple[np.ndarray, np.ndarray, int]: ...

class BenefitItems:
    def __init__(self) -> None: ...
    @staticmethod
    def from_pairs(
        benefit: np.ndarray, item: np.ndarray, n_benefits: int, n_items: int, unknown: str
    ) -> BenefitItems: ...
    def __len__(self) -> int: ...
    n_benefits: int
    n_items: int
    unknown_items: int
    def offsets(self) -> np.ndarray: ...
    def indices(self) -> np.ndarray: ...
    def level_values(self, catalog: ItemCatalog, level: str) -> Tuple[np.ndarray, np.ndarray]: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> BenefitItems: ...
    def save(self, path: str) -> None: ...
    @staticmethod
    def load(path: str) -> BenefitItems: ...

BEHAVIOR_CF_COLUMNS: Tuple[str, ...]

def behavior_cf_features(
    user: np.ndarray,
    benefit: np.ndarray,
    timestamp: np.ndarray,
    log: BehaviorLog,
    benefit_items: BenefitItems,
    as_of: int,
    params_json: str,
) -> List[Tuple[str, np.ndarray]]: ...
def behavior_features(
    user: np.ndarray,
    benefit: np.ndarray,
    timestamp: np.ndarray,
    log: BehaviorLog,
    items: ItemCatalog,
    benefit_items: BenefitItems,
    aggregates: List[str],
    levels: List[str],
    actions: List[str],
    half_life_days: float,
    num_threads: int,
    dtype: str = ...,
) -> List[Tuple[str, np.ndarray]]: ...

class FeatureEncoder:
    def __init__(self, spec_json: str, num_threads: int = 0) -> None: ...
    def set_benefits(
        self, kinds: List[str], face_values: np.ndarray, channels: List[str] = ...
    ) -> None: ...
    def set_benefit_codes(
        self, kind: List[int], band: List[int], channel: List[int] = ...
    ) -> None: ...
    def set_num_threads(self, num_threads: int) -> None: ...
    def fit(
        self,
        rows: int,
        integers: List[Tuple[str, np.ndarray]],
        numerics: List[Tuple[str, np.ndarray]],
        categoricals: List[Tuple[str, np.ndarray, List[str], List[int]]],
        events: Optional[EventLog] = None,
        behavior_log: Optional[BehaviorLog] = None,
        items: Optional[ItemCatalog] = None,
        benefit_items: Optional[BenefitItems] = None,
    ) -> None: ...
    def transform(
        self,
        rows: int,
        integers: List[Tuple[str, np.ndarray]],
        numerics: List[Tuple[str, np.ndarray]],
        categoricals: List[Tuple[str, np.ndarray, List[str], List[int]]],
        events: Optional[EventLog] = None,
        fields: Optional[List[str]] = None,
        behavior_log: Optional[BehaviorLog] = None,
        items: Optional[ItemCatalog] = None,
        benefit_items: Optional[BenefitItems] = None,
    ) -> CsrTuple: ...
    def history(
        self, rows: int, integers: List[Tuple[str, np.ndarray]], events: EventLog, names: List[str]
    ) -> List[Tuple[str, np.ndarray]]: ...
    @property
    def fitted(self) -> bool: ...
    @property
    def n_fields(self) -> int: ...
    @property
    def field_sizes(self) -> List[int]: ...
    @property
    def n_features(self) -> int: ...
    @property
    def feature_fields(self) -> np.ndarray: ...
    @property
    def field_offsets(self) -> np.ndarray: ...
    @property
    def dropped_fields(self) -> List[str]: ...
    @property
    def fields_json(self) -> str: ...
    def to_json(self) -> str: ...
    @staticmethod
    def from_json(text: str) -> FeatureEncoder: ...
    @staticmethod
    def from_fm_metadata(metadata: str) -> FeatureEncoder: ...

class Popularity:
    def __init__(self, params_json: str) -> None: ...
    def get_params(self) -> str: ...
    def set_num_threads(self, num_threads: int) -> None: ...
    fitted: bool
    n_users: int
    n_benefits: int
    user_ids: IdMap
    benefit_ids: IdMap
    def set_ids(self, users: IdMap, benefits: IdMap) -> None: ...
    def fit(self, user_benefits: CsrTuple, progress: Progress) -> None: ...
    def benefit_scores(self) -> np.ndarray: ...
    def score(self, users: np.ndarray, benefits: np.ndarray) -> np.ndarray: ...
    def recommend(
        self,
        users: np.ndarray,
        n: int,
        exclude_rows: Optional[CsrTuple],
        exclude: Optional[np.ndarray],
        allow: Optional[np.ndarray],
        eligibility: Optional[CsrTuple],
        eligibility_blocks: bool,
    ) -> Tuple[np.ndarray, np.ndarray]: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> Popularity: ...
    def save(self, path: str) -> None: ...
    @staticmethod
    def load(path: str) -> Popularity: ...

class FM:
    def __init__(self, params_json: str) -> None: ...
    def get_params(self) -> str: ...
    def set_num_threads(self, num_threads: int) -> None: ...
    fitted: bool
    n_features: int
    n_fields: int
    bias: float
    metadata: str
    def set_metadata(self, json_text: str) -> None: ...
    def linear(self) -> np.ndarray: ...
    def factors(self) -> np.ndarray: ...
    def feature_fields(self) -> np.ndarray: ...
    def history(self) -> List[Tuple[int, float, float]]: ...
    def fit(
        self,
        X: CsrTuple,
        labels: np.ndarray,
        weights: Optional[np.ndarray],
        groups: Optional[np.ndarray],
        feature_fields: np.ndarray,
        n_fields: int,
        val_X: Optional[CsrTuple],
        val_labels: Optional[np.ndarray],
        val_weights: Optional[np.ndarray],
        val_groups: Optional[np.ndarray],
        progress: Progress,
    ) -> None: ...
    def partial_fit(
        self,
        X: CsrTuple,
        labels: np.ndarray,
        weights: Optional[np.ndarray],
        groups: Optional[np.ndarray],
        feature_fields: np.ndarray,
        n_fields: int,
        val_X: Optional[CsrTuple],
        val_labels: Optional[np.ndarray],
        val_weights: Optional[np.ndarray],
        val_groups: Optional[np.ndarray],
        progress: Progress,
    ) -> None: ...
    def score(self, X: CsrTuple, probability: bool) -> np.ndarray: ...
    def score_candidates(self, base: CsrTuple, candidates: CsrTuple) -> np.ndarray: ...
    def loss(
        self,
        X: CsrTuple,
        labels: np.ndarray,
        weights: Optional[np.ndarray],
        groups: Optional[np.ndarray],
    ) -> float: ...
    def row_gradient(self, X: CsrTuple, row: int, label: float) -> np.ndarray: ...
    def set_parameters(self, w0: float, linear: np.ndarray, factors: np.ndarray) -> None: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> FM: ...
    def save(self, path: str) -> None: ...
    @staticmethod
    def load(path: str) -> FM: ...

class UpliftModel:
    def __init__(self, params_json: str) -> None: ...
    def get_params(self) -> str: ...
    fitted: bool
    n_arms: int
    n_features: int
    propensities_clipped: int
    def arm_shares(self) -> np.ndarray: ...
    def fit(
        self,
        X: CsrTuple,
        outcome: np.ndarray,
        treatment: np.ndarray,
        propensity: Optional[np.ndarray],
        sample_weights: Optional[np.ndarray],
        progress: Progress,
    ) -> None: ...
    def predict(self, X: CsrTuple) -> np.ndarray: ...
    def predict_outcomes(self, X: CsrTuple) -> np.ndarray: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> UpliftModel: ...
    def save(self, path: str) -> None: ...
    @staticmethod
    def load(path: str) -> UpliftModel: ...

# Member value (CLV): summaries are dicts of arrays users (int32), x, t_x, T, monetary,
# mean_order_value (float64), first_order (int64 seconds).
LIFECYCLE_STAGES: Tuple[str, str, str, str, str]
CLV_REGRESSION_FEATURES: Tuple[str, ...]

def summarize_purchases(
    log: EventLog, cut_time: int, time_unit: str, occasion: str, num_threads: int
) -> Dict[str, np.ndarray]: ...
def lifecycle_stage_code(name: str, field: str) -> int: ...
def calibration_holdout(
    log: EventLog,
    calibration_end: int,
    observation_end: int,
    time_unit: str,
    occasion: str,
    num_threads: int,
) -> Dict[str, Any]: ...
def naive_forecast(
    x: np.ndarray, T: np.ndarray, mean_order_value: np.ndarray, horizon: float
) -> Tuple[np.ndarray, np.ndarray]: ...

class InterestModel:
    def __init__(self, params_json: str) -> None: ...
    def get_params(self) -> str: ...
    def set_num_threads(self, num_threads: int) -> None: ...
    fitted: bool
    n_users: int
    n_values: int
    cut_time: int
    prior_strength: float
    missing_value_events: int
    value_names: List[str]
    user_ids: IdMap
    def set_user_ids(self, users: IdMap) -> None: ...
    def population_share(self) -> np.ndarray: ...
    def total(self) -> np.ndarray: ...
    def fit(
        self, log: BehaviorLog, items: ItemCatalog, cut_time: int, progress: Progress
    ) -> None: ...
    def lifts(self, users: np.ndarray) -> np.ndarray: ...
    def group_lifts(self, group: np.ndarray, n_groups: int) -> np.ndarray: ...
    def group_top(self, group: np.ndarray, n_groups: int, n: int) -> Dict[str, np.ndarray]: ...
    def top(self, users: np.ndarray, n: int, level: float) -> Dict[str, np.ndarray]: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> InterestModel: ...
    def save(self, path: str) -> None: ...
    @staticmethod
    def load(path: str) -> InterestModel: ...

class CLVModel:
    def __init__(self, params_json: str) -> None: ...
    def get_params(self) -> str: ...
    def set_num_threads(self, num_threads: int) -> None: ...
    fitted: bool
    n_users: int
    cut_time: int
    user_ids: IdMap
    def report_json(self) -> str: ...
    def summary(self) -> Dict[str, np.ndarray]: ...
    def fit(self, log: EventLog, cut_time: int, progress: Progress) -> None: ...
    def fit_summary(
        self,
        x: np.ndarray,
        t_x: np.ndarray,
        T: np.ndarray,
        monetary: np.ndarray,
        progress: Progress,
    ) -> None: ...
    def conditional(
        self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, horizon: float
    ) -> Dict[str, np.ndarray]: ...
    def expected_purchases_by_period(
        self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, periods: int, end: float
    ) -> np.ndarray: ...
    def p_alive_history(
        self, log: EventLog, user: int, times: np.ndarray
    ) -> Dict[str, np.ndarray]: ...
    def predict(
        self, horizon: float, discount_rate: float, margin: float
    ) -> Dict[str, np.ndarray]: ...
    # clv, clv_percentile, p_alive (float64, NaN = missing), lifecycle_stage (int8, -1 = missing)
    def member_fields(
        self, horizon: float, discount_rate: float, margin: float
    ) -> Dict[str, np.ndarray]: ...
    def sample_fields(
        self,
        users: np.ndarray,
        timestamps: np.ndarray,
        horizon: float,
        discount_rate: float,
        margin: float,
    ) -> Dict[str, np.ndarray]: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> CLVModel: ...
    def save(self, path: str) -> None: ...
    @staticmethod
    def load(path: str) -> CLVModel: ...

def auc(scores: np.ndarray, labels: np.ndarray) -> float: ...
def log_loss(probabilities: np.ndarray, labels: np.ndarray, eps: float) -> float: ...
def ranking_metrics(
    recommended: np.ndarray, k: int, relevant: CsrTuple, num_threads: int
) -> Dict[str, float]: ...
def reliability_curve(
    y: np.ndarray, probabilities: np.ndarray, bins: int, quantile_bins: bool
) -> Dict[str, Any]: ...
def catalog_coverage(recommended: np.ndarray, n_benefits: int) -> float: ...
def spearman_correlation(a: np.ndarray, b: np.ndarray) -> float: ...
def holdout_errors(
    actual_purchases: np.ndarray,
    actual_spend: np.ndarray,
    forecast_purchases: np.ndarray,
    forecast_spend: np.ndarray,
) -> Dict[str, Any]: ...

# Causal evaluation (outcome/uplift/value/cost float64, treatment uint8, arm int32).
def qini_curve(
    outcome: np.ndarray, uplift: np.ndarray, treatment: np.ndarray
) -> Tuple[np.ndarray, np.ndarray]: ...
def uplift_curve(
    outcome: np.ndarray, uplift: np.ndarray, treatment: np.ndarray
) -> Tuple[np.ndarray, np.ndarray]: ...
def perfect_qini_curve(
    outcome: np.ndarray, treatment: np.ndarray, negative_effect: bool
) -> Tuple[np.ndarray, np.ndarray]: ...
def perfect_uplift_curve(
    outcome: np.ndarray, treatment: np.ndarray
) -> Tuple[np.ndarray, np.ndarray]: ...
def qini_auc_score(
    outcome: np.ndarray, uplift: np.ndarray, treatment: np.ndarray, negative_effect: bool
) -> float: ...
def uplift_auc_score(outcome: np.ndarray, uplift: np.ndarray, treatment: np.ndarray) -> float: ...
def uplift_at_k(
    outcome: np.ndarray, uplift: np.ndarray, treatment: np.ndarray, k: float, strategy: str
) -> float: ...
def cost_curve(
    value: np.ndarray, cost: np.ndarray, uplift: np.ndarray, treatment: np.ndarray
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def aucc_score(
    value: np.ndarray, cost: np.ndarray, uplift: np.ndarray, treatment: np.ndarray
) -> float: ...
def off_policy_value(
    rewards: np.ndarray,
    logged_propensity: np.ndarray,
    target_propensity: np.ndarray,
    reward_estimate: Optional[np.ndarray],
    target_reward_estimate: Optional[np.ndarray],
    estimator: str,
    confidence: float,
    clip: float,
    switch_threshold: float,
    num_threads: int,
) -> Dict[str, Any]: ...
def holdout_hash(user_id: str, salt: str) -> int: ...

# probability row-major float64 (n_users x n_benefits), users/benefits int32, the rest float64.
def shrink_interactions(
    probability: np.ndarray,
    n_users: int,
    n_benefits: int,
    users: np.ndarray,
    benefits: np.ndarray,
    predicted: np.ndarray,
    redeemed: np.ndarray,
    sample_weight: Optional[np.ndarray],
    iterations: int,
    num_threads: int,
) -> Tuple[np.ndarray, float]: ...

class PooledMemberEffects:
    intercept: float
    slope: float
    n_codes: List[int]
    member: np.ndarray
    variance: np.ndarray
    benefit_code: List[np.ndarray]
    attribute_effect: List[np.ndarray]

# users/benefits/attributes int32, held_out uint8, the rest float64.
def fit_pooled_member_effects(
    n_users: int,
    n_benefits: int,
    benefit_attributes: List[np.ndarray],
    users: np.ndarray,
    benefits: np.ndarray,
    base_at_issue: np.ndarray,
    redeemed: np.ndarray,
    sample_weight: Optional[np.ndarray],
    held_out: Optional[np.ndarray],
    sweeps: int,
    burn_in: int,
    initial_variance: float,
    min_variance: float,
) -> PooledMemberEffects: ...
def fit_preference_weight(
    preference: PreferenceModel,
    catalog: Catalog,
    users: np.ndarray,
    benefits: np.ndarray,
    base_at_issue: np.ndarray,
    redeemed: np.ndarray,
    sample_weight: Optional[np.ndarray],
    pooled: Optional[PooledMemberEffects],
    lower: float,
    upper: float,
) -> Tuple[float, float]: ...
def assign_holdout(
    user_ids: List[str], salt: str, weights: np.ndarray, num_threads: int
) -> np.ndarray: ...
def experiment_members(
    log: EventLog, cost_per_redemption: np.ndarray, since: int, until: int, issue_cost: float
) -> Dict[str, np.ndarray]: ...
def benefit_levels(
    n_benefits: int,
    benefits: np.ndarray,
    predicted: np.ndarray,
    redeemed: np.ndarray,
    sample_weight: Optional[np.ndarray],
    prior: float,
) -> np.ndarray: ...
def pilot_level(
    probability: np.ndarray, redeemed: np.ndarray, cost: np.ndarray, prior: float, confidence: float
) -> Dict[str, float]: ...
def issue_weights(propensity: np.ndarray, clip: float) -> np.ndarray: ...
def plan_target_policy(
    plan_users: np.ndarray,
    plan_benefits: np.ndarray,
    logged_users: np.ndarray,
    logged_benefits: np.ndarray,
    n_users: int,
    n_benefits: int,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def evaluate_plan_offline(
    log: EventLog,
    catalog: Catalog,
    plan_users: np.ndarray,
    plan_benefits: np.ndarray,
    probability: np.ndarray,
    value: np.ndarray,
    issue_cost: float,
    since: int,
    until: int,
    estimator: str,
    confidence: float,
    clip: float,
    num_threads: int,
) -> Dict[str, Any]: ...
def analyze_experiment(
    arms: np.ndarray,
    metrics: List[np.ndarray],
    pre_period: List[Optional[np.ndarray]],
    cost: Optional[np.ndarray],
    n_arms: int,
    confidence: float,
    bootstrap: int,
    cuped: bool,
    seed: int,
    num_threads: int,
) -> Dict[str, np.ndarray]: ...
def container_info(data: bytes) -> Dict[str, str]: ...
def load_any(data: bytes) -> object: ...

# --- collaborative filtering ------------------------------------------------------------------
class _CollaborativeCore:
    def __init__(self, params_json: str) -> None: ...
    def get_params(self) -> str: ...
    def set_num_threads(self, num_threads: int) -> None: ...
    fitted: bool
    n_users: int
    n_benefits: int
    user_ids: IdMap
    benefit_ids: IdMap
    def set_ids(self, users: IdMap, benefits: IdMap) -> None: ...
    def score(self, users: np.ndarray, benefits: np.ndarray) -> np.ndarray: ...
    def recommend(
        self,
        users: np.ndarray,
        n: int,
        exclude_rows: Optional[CsrTuple],
        exclude: Optional[np.ndarray],
        allow: Optional[np.ndarray],
        eligibility: Optional[CsrTuple],
        eligibility_blocks: bool,
    ) -> Tuple[np.ndarray, np.ndarray]: ...
    def recommend_new(
        self,
        user_benefits: CsrTuple,
        n: int,
        filter_already_interacted: bool,
        exclude: Optional[np.ndarray],
        allow: Optional[np.ndarray],
        eligibility: Optional[CsrTuple],
        eligibility_blocks: bool,
    ) -> Tuple[np.ndarray, np.ndarray]: ...
    def similar_benefits(
        self,
        benefits: np.ndarray,
        n: int,
        exclude: Optional[np.ndarray],
        allow: Optional[np.ndarray],
    ) -> Tuple[np.ndarray, np.ndarray]: ...
    def similar_users(
        self, users: np.ndarray, n: int, exclude: Optional[np.ndarray], allow: Optional[np.ndarray]
    ) -> Tuple[np.ndarray, np.ndarray]: ...
    def partial_fit_users(
        self, users: np.ndarray, rows: CsrTuple, max_growth: int = ...
    ) -> None: ...
    def partial_fit_benefits(
        self, benefits: np.ndarray, rows: CsrTuple, max_growth: int = ...
    ) -> None: ...
    def to_bytes(self) -> bytes: ...
    def save(self, path: str) -> None: ...

class ALS(_CollaborativeCore):
    def fit(self, user_benefits: CsrTuple, progress: Progress) -> None: ...
    def user_factors(self) -> np.ndarray: ...
    def benefit_factors(self) -> np.ndarray: ...
    def fold_in(self, user_benefits: CsrTuple) -> np.ndarray: ...
    def training_loss(self) -> np.ndarray: ...
    def explain(
        self, user_benefits: CsrTuple, benefit: int, n: int
    ) -> Tuple[float, np.ndarray, np.ndarray]: ...
    @staticmethod
    def from_bytes(data: bytes) -> ALS: ...
    @staticmethod
    def load(path: str) -> ALS: ...

class BPR(_CollaborativeCore):
    def fit(
        self, user_benefits: CsrTuple, eligibility: Optional[CsrTuple], progress: Progress
    ) -> None: ...
    def user_factors(self) -> np.ndarray: ...
    def benefit_factors(self) -> np.ndarray: ...
    def fold_in(self, user_benefits: CsrTuple) -> np.ndarray: ...
    def training_accuracy(self) -> np.ndarray: ...
    @staticmethod
    def from_bytes(data: bytes) -> BPR: ...
    @staticmethod
    def load(path: str) -> BPR: ...

class ItemKNN(_CollaborativeCore):
    def fit(self, user_benefits: CsrTuple, progress: Progress) -> None: ...
    def neighbours(self) -> CsrTuple: ...
    @staticmethod
    def from_bytes(data: bytes) -> ItemKNN: ...
    @staticmethod
    def load(path: str) -> ItemKNN: ...

# --- preference model, segments, timing -------------------------------------------------------
def wide_table(
    log: EventLog, catalog: Catalog, cut_time: int, params_json: str
) -> Tuple[List[str], List[np.ndarray]]: ...
def kmeans(
    data: np.ndarray, k: int, seed: int, max_iterations: int, num_threads: int
) -> Tuple[np.ndarray, np.ndarray, float, int]: ...
def default_segment_rules() -> str: ...
def threshold_segment_rules() -> str: ...
def absolute_segment_rules() -> str: ...
def check_segment_rules(text: str) -> str: ...
def bgnbd_fit(
    x: np.ndarray, t_x: np.ndarray, T: np.ndarray, num_threads: int
) -> Tuple[float, float, float, float]: ...
def bgnbd_log_likelihood(
    r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float
) -> float: ...

class PreferenceModel:
    def __init__(self, params_json: str) -> None: ...
    def get_params(self) -> str: ...
    def set_num_threads(self, num_threads: int) -> None: ...
    fitted: bool
    n_users: int
    n_benefits: int
    n_dimensions: int
    n_classes: int
    cut_time: int
    dimension_names: List[str]
    feature_names: List[str]
    user_ids: IdMap
    benefit_ids: IdMap
    @overload
    def fit(self, log: EventLog, catalog: Catalog, cut_time: int, progress: Progress) -> None: ...
    @overload
    def fit(
        self, log: EventLog, catalog: Catalog, cut_time: int, users: UserTable, progress: Progress
    ) -> None: ...
    covariate_names: list[str]
    def user_table_report(self) -> dict[str, int]: ...
    def covariate_weights(self) -> np.ndarray: ...
    def class_prior(self, users: UserTable) -> np.ndarray: ...
    def preferences(self) -> np.ndarray: ...
    def lower(self) -> np.ndarray: ...
    def upper(self) -> np.ndarray: ...
    def intervals(self, level: float) -> Tuple[np.ndarray, np.ndarray]: ...
    def features(self) -> np.ndarray: ...
    def memberships(self) -> np.ndarray: ...
    def class_rates(self) -> np.ndarray: ...
    def population_rate(self) -> np.ndarray: ...
    def prior_strength(self) -> np.ndarray: ...
    def individual_spread(self) -> np.ndarray: ...
    def benefit_base_rate(self) -> np.ndarray: ...
    def population_hour_of_week(self) -> np.ndarray: ...
    def hour_of_week_profile(self, user: int) -> np.ndarray: ...
    def timing(self) -> Dict[str, np.ndarray]: ...
    def bgnbd(self) -> Tuple[float, float, float, float]: ...
    def group_preferences(self, group: np.ndarray, n_groups: int) -> np.ndarray: ...
    def segments(
        self, rules_json: str
    ) -> Tuple[List[str], List[str], np.ndarray, np.ndarray, str]: ...
    def clusters(self, k: int, max_iterations: int) -> Tuple[np.ndarray, np.ndarray, List[str]]: ...
    def set_ids(self, users: IdMap, benefits: IdMap) -> None: ...
    def score(self, users: np.ndarray, benefits: np.ndarray) -> np.ndarray: ...
    def recommend(
        self,
        users: np.ndarray,
        n: int,
        exclude_rows: Optional[CsrTuple],
        exclude: Optional[np.ndarray],
        allow: Optional[np.ndarray],
        eligibility: Optional[CsrTuple],
        eligibility_blocks: bool,
    ) -> Tuple[np.ndarray, np.ndarray]: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> PreferenceModel: ...
    def save(self, path: str) -> None: ...
    @staticmethod
    def load(path: str) -> PreferenceModel: ...

# --- decision layer: shared types (decide/types.hpp; bind_decide_types.cpp) --------------------
class ExclusionReason:
    none: ExclusionReason
    ineligible: ExclusionReason
    below_multiplier: ExclusionReason
    budget: ExclusionReason
    inventory: ExclusionReason
    member_cap: ExclusionReason
    kind_cap: ExclusionReason
    stacking: ExclusionReason
    segment_quota: ExclusionReason
    min_return: ExclusionReason
    frequency_cap: ExclusionReason
    not_positive: ExclusionReason

def exclusion_reason_names() -> List[str]: ...

class EligibilityMasks:
    def __init__(self, n_users: int, n_benefits: int) -> None: ...
    @staticmethod
    def from_dense(eligible: np.ndarray, n_users: int, n_benefits: int) -> EligibilityMasks: ...
    n_users: int
    n_benefits: int
    n_masks: int
    user_masks: np.ndarray
    def eligible_matrix(self) -> np.ndarray: ...
    def mask_rules(self) -> np.ndarray: ...

class Candidates:
    def __init__(self) -> None: ...
    @staticmethod
    def from_arrays(
        n_users: int,
        n_benefits: int,
        offsets: np.ndarray,
        benefit: np.ndarray,
        value: np.ndarray,
        cost: np.ndarray,
        probability: Optional[np.ndarray] = ...,
    ) -> Candidates: ...
    n_users: int
    n_benefits: int
    size: int
    offsets: np.ndarray
    benefit: np.ndarray
    value: np.ndarray
    cost: np.ndarray
    probability: np.ndarray
    def validate(self) -> None: ...

def best_ineligible(masks: EligibilityMasks, key: np.ndarray) -> Tuple[np.ndarray, np.ndarray]: ...
def find_candidates(
    candidates: Candidates, users: np.ndarray, benefits: np.ndarray
) -> np.ndarray: ...

class AllocationConstraints:
    def __init__(self) -> None: ...
    budget: float
    max_per_member: int
    max_per_kind: int
    n_kinds: int
    min_return_per_cost: float
    diversity: float
    member_capacity: np.ndarray
    inventory: np.ndarray
    benefit_kind: np.ndarray
    member_kind_capacity: np.ndarray
    benefit_group: np.ndarray
    member_segment: np.ndarray
    segment_max_members: np.ndarray
    segment_max_cost: np.ndarray
    def validate(self, n_users: int, n_benefits: int) -> None: ...

class Allocation:
    def __init__(self) -> None: ...
    offsets: np.ndarray
    candidate: np.ndarray
    benefit: np.ndarray
    runner_up: np.ndarray
    runner_up_reason: np.ndarray
    value: float
    cost: float
    dual_bound: float
    multiplier: float
    iterations: int
    method: str

# --- decision layer: policy (decide/policy.hpp) -------------------------------------------------
def parse_utc_time(text: str) -> int: ...
def format_utc_time(t: int) -> str: ...

class CompiledPolicy:
    masks: EligibilityMasks
    constraints: AllocationConstraints
    rule_names: List[str]
    segment_names: List[str]
    issue_cost: float
    has_quiet_hours: bool
    quiet_start_hour: float
    quiet_end_hour: float
    user_block: np.ndarray
    utc_offset_hours: np.ndarray
    def send_time(self, t: int, user: int) -> int: ...
    def send_times(self, times: np.ndarray, users: np.ndarray) -> np.ndarray: ...

def excluded_pairs_by_rule(compiled: CompiledPolicy) -> np.ndarray: ...

class Policy:
    def __init__(self) -> None: ...
    @staticmethod
    def from_string(text: str) -> Policy: ...
    def to_json(self) -> str: ...
    def validate(self) -> None: ...
    budget: float
    issue_cost: float
    max_per_member: int
    max_per_kind: int
    min_return_per_cost: float
    diversity: float
    has_quiet_hours: bool
    rule_names: List[str]
    def compile(
        self,
        catalog: Catalog,
        users: UserTable,
        plan_time: int,
        segment_codes: Optional[np.ndarray] = ...,
        segment_names: Optional[List[str]] = ...,
        history: Optional[EventLog] = ...,
        num_threads: int = ...,
    ) -> CompiledPolicy: ...
    def send_time(self, t: int, utc_offset_hours: float = ...) -> int: ...

# --- allocator (decide/allocator.hpp; python/bindings/bind_allocator.cpp) --------------------
# Candidate arrays: offsets int64 (n_users + 1), benefit int32, value / cost float32 (by view).

def allocator_params(params_json: str) -> str: ...
def pacing_params(params_json: str) -> str: ...
def allocate(
    candidates: Candidates,
    constraints: AllocationConstraints,
    method: str = "dual",
    params_json: str = "{}",
    max_nodes: int = 10000000,
    progress: Progress = None,
) -> Allocation: ...
def allocate_arrays(
    n_users: int,
    n_benefits: int,
    offsets: np.ndarray,
    benefit: np.ndarray,
    value: np.ndarray,
    cost: np.ndarray,
    constraints: AllocationConstraints,
    method: str = "dual",
    params_json: str = "{}",
    max_nodes: int = 10000000,
    progress: Progress = None,
) -> Allocation: ...
def check_allocation(
    candidates: Candidates, constraints: AllocationConstraints, allocation: Allocation
) -> str: ...
def check_allocation_arrays(
    n_users: int,
    n_benefits: int,
    offsets: np.ndarray,
    benefit: np.ndarray,
    value: np.ndarray,
    cost: np.ndarray,
    constraints: AllocationConstraints,
    allocation: Allocation,
) -> str: ...
def user_set_value(
    values: np.ndarray, kinds: Optional[np.ndarray] = None, diversity: float = 0.0
) -> float: ...

class Pacer:
    def __init__(self, constraints: AllocationConstraints, params_json: str) -> None: ...
    def decide(
        self,
        user: int,
        t: int,
        benefit: np.ndarray,
        value: np.ndarray,
        cost: np.ndarray,
        max_new: int = -1,
        with_reasons: bool = False,
    ) -> Union[np.ndarray, Tuple[np.ndarray, List[str]]]: ...
    spent: float
    multiplier: float
    decisions: int
    issued: int
    def get_params(self) -> str: ...

# --- decide/ranker.hpp + explain.hpp (bind_ranker.cpp) ---------------------------------------

class ScoreBlend:
    def __init__(self, params_json: str) -> None: ...
    def add_matrix_source(
        self, name: str, matrix: np.ndarray, n_users: int, n_benefits: int, transform: str
    ) -> None: ...
    def add_model_source(self, name: str, model: Any, transform: str) -> None: ...
    def add_callable_source(
        self, name: str, scorer: Callable[[np.ndarray, np.ndarray], np.ndarray], transform: str
    ) -> None: ...
    def attach_matrix(
        self, name: str, matrix: np.ndarray, n_users: int, n_benefits: int
    ) -> None: ...
    def attach_model(self, name: str, model: Any) -> None: ...
    def attach_callable(
        self, name: str, scorer: Callable[[np.ndarray, np.ndarray], np.ndarray]
    ) -> None: ...
    def fit(
        self, users: np.ndarray, benefits: np.ndarray, labels: np.ndarray, progress: Progress
    ) -> None: ...
    def set_weights(self, bias: float, weights: List[float]) -> None: ...
    bias: float
    weights: List[float]
    source_names: List[str]
    transforms: List[str]
    fitted: bool
    iterations: int
    training_loss: float
    def predict(self, users: np.ndarray, benefits: np.ndarray) -> np.ndarray: ...
    def features(self, users: np.ndarray, benefits: np.ndarray) -> np.ndarray: ...
    def contributions(self, users: np.ndarray, benefits: np.ndarray) -> np.ndarray: ...
    def to_json(self) -> str: ...
    @staticmethod
    def from_json(text: str) -> ScoreBlend: ...

def check_ranker_params(text: str) -> str: ...
def rank(
    probability: Optional[np.ndarray],
    share: Optional[np.ndarray],
    user_value: Optional[np.ndarray],
    benefit_value: Optional[np.ndarray],
    cost: Optional[np.ndarray],
    masks: EligibilityMasks,
    params_json: str,
    blend: Optional[ScoreBlend],
    diagnostics: bool,
) -> Tuple[Candidates, Optional[Dict[str, np.ndarray]]]: ...
def hour_of_week(t: int) -> int: ...
def schedule_batch(
    pref: Optional[PreferenceModel],
    users: np.ndarray,
    plan_time: int,
    validity_days: np.ndarray,
    quiet_hours: Optional[Tuple[int, int]],
    utc_offset_hours: Optional[np.ndarray],
    default_hour: int,
    min_validity_days: int,
    num_threads: int,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def quiet_hours_next_allowed(
    start_hour: int, end_hour: int, times: np.ndarray, utc_offset_hours: Optional[np.ndarray]
) -> np.ndarray: ...
def explanation_dimensions(
    pref: PreferenceModel, catalog: Catalog
) -> Tuple[List[str], np.ndarray, np.ndarray]: ...
def explain_batch(
    context: Dict[str, Any],
    rows: Dict[str, Any],
    num_threads: int,
    pref: Optional[PreferenceModel] = None,
    catalog: Optional[Catalog] = None,
) -> List[str]: ...

# decide/planner.hpp
NO_TIME: int

def order_value(
    users: np.ndarray,
    times: Optional[np.ndarray],
    amounts: np.ndarray,
    n_users: int,
    margin: float,
    cut_time: int,
) -> np.ndarray: ...
def order_value_log(log: EventLog, margin: float, cut_time: int) -> np.ndarray: ...
def redemption_counts(benefits: np.ndarray, n_benefits: int) -> np.ndarray: ...
def redemption_counts_log(log: EventLog, n_benefits: int) -> np.ndarray: ...
def timing_share(orders_per_day: np.ndarray, validity_days: np.ndarray) -> np.ndarray: ...
def incremental_share_from_control(
    n_users: int,
    order_user: np.ndarray,
    order_time: np.ndarray,
    issue_user: np.ndarray,
    issue_benefit: np.ndarray,
    issue_time: np.ndarray,
    issue_redeemed: np.ndarray,
    control_user: np.ndarray,
    control_benefit: np.ndarray,
    control_time: np.ndarray,
    benefit_kind: np.ndarray,
    n_kinds: int,
    validity_days: np.ndarray,
    plan_time: int,
    min_rows: int,
) -> np.ndarray: ...
def incremental_share_from_control_log(
    log: EventLog,
    catalog: Catalog,
    plan_time: int,
    pseudo_issues: int,
    min_rows: int,
    seed: int,
) -> np.ndarray: ...
def popularity_plan(
    n_users: int,
    n_benefits: int,
    probability: np.ndarray,
    value: np.ndarray,
    cost_per_redemption: np.ndarray,
    eligible: Optional[np.ndarray],
    budget: float,
    issue_cost: float,
    order: Optional[np.ndarray],
    popularity: np.ndarray,
) -> Tuple[np.ndarray, ...]: ...
def evaluate_plan_truth(
    redemption_probability: np.ndarray,
    incremental_probability: np.ndarray,
    n_users: int,
    n_benefits: int,
    order_value: np.ndarray,
    cost_per_redemption: np.ndarray,
    users: np.ndarray,
    benefits: np.ndarray,
    issue_cost: float,
) -> Dict[str, float]: ...
def default_segment_benefits(
    catalog: Catalog,
    popularity: np.ndarray,
    segment_names: List[str],
    expected_cost: Optional[np.ndarray],
    max_cost_per_user: float,
) -> np.ndarray: ...
def segment_rules_plan(
    n_users: int,
    n_benefits: int,
    probability: np.ndarray,
    value: np.ndarray,
    cost_per_redemption: np.ndarray,
    eligible: Optional[np.ndarray],
    budget: float,
    issue_cost: float,
    order: Optional[np.ndarray],
    member_segment: np.ndarray,
    segment_benefit: np.ndarray,
) -> Tuple[np.ndarray, ...]: ...
def check_planner_params(text: str) -> str: ...
def plan(
    compiled: CompiledPolicy,
    catalog: Catalog,
    plan_time: int,
    params_json: str,
    probability: Optional[np.ndarray],
    blend: Optional[ScoreBlend],
    user_factors: Optional[np.ndarray],
    benefit_factors: Optional[np.ndarray],
    benefit_bias: Optional[np.ndarray],
    factor_k: int,
    share: Optional[np.ndarray],
    orders_per_day: Optional[np.ndarray],
    validity_days: Optional[np.ndarray],
    order_value: Optional[np.ndarray],
    benefit_value: Optional[np.ndarray],
    preference: Optional[PreferenceModel],
    budget: float,
    behavior_log: Optional[BehaviorLog] = None,
    items: Optional[ItemCatalog] = None,
    benefit_items: Optional[BenefitItems] = None,
) -> Tuple[Candidates, Dict[str, np.ndarray], Allocation, Dict[str, Any], float]: ...

class BenefitPlannerFile:
    def __init__(
        self,
        config_json: str,
        fm: FM,
        preference: PreferenceModel,
        catalog: Catalog,
        events: EventLog,
        users: Optional[UserTable],
        order_value: np.ndarray,
        holdout_user: Optional[np.ndarray],
        holdout_benefit: Optional[np.ndarray],
        holdout_predicted: Optional[np.ndarray],
        holdout_redeemed: Optional[np.ndarray],
        holdout_weight: Optional[np.ndarray],
        incremental_share: Optional[np.ndarray],
        pooled: Optional[PooledMemberEffects] = None,
        preference_weight: Optional[float] = None,
        behavior_log: Optional[BehaviorLog] = None,
        items: Optional[ItemCatalog] = None,
        benefit_items: Optional[BenefitItems] = None,
        benefit_level: Optional[np.ndarray] = None,
    ) -> None: ...
    config_json: str
    fm: FM
    preference: PreferenceModel
    catalog: Catalog
    events: EventLog
    users: Optional[UserTable]
    order_value: np.ndarray
    holdout_user: np.ndarray
    holdout_benefit: np.ndarray
    holdout_predicted: np.ndarray
    holdout_redeemed: np.ndarray
    holdout_weight: np.ndarray
    incremental_share: np.ndarray
    benefit_level: np.ndarray
    pooled: Optional[PooledMemberEffects]
    preference_weight: Optional[float]
    behavior: Optional[Tuple[BehaviorLog, ItemCatalog, BenefitItems]]
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> "BenefitPlannerFile": ...
    def save(self, path: str) -> None: ...
    @staticmethod
    def load(path: str) -> "BenefitPlannerFile": ...

BENEFIT_PLANNER_DEFAULT_FIELDS_JSON: str
BENEFIT_PLANNER_DEFAULT_BEHAVIOR_FIELD_JSON: str
DEFAULT_CUT_DAYS: int

def benefit_planner_default_config() -> str: ...

SEGMENT_CHECKPOINT_DAYS: int
BENEFIT_LEVEL_PRIOR: float

def fit_benefit_planner(
    events: EventLog,
    catalog: Catalog,
    user_table: Optional[UserTable],
    cut: int,
    behavior_log: Optional[BehaviorLog],
    items: Optional[ItemCatalog],
    benefit_items: Optional[BenefitItems],
    config_json: str,
    progress: Any,
) -> Tuple[BenefitPlannerFile, Tuple[np.ndarray, List[List[str]]], Optional[float]]: ...
def benefit_planner_segment_checkpoints(
    events: EventLog,
    catalog: Catalog,
    user_table: Optional[UserTable],
    config_json: str,
) -> Tuple[np.ndarray, List[List[str]]]: ...

class BenefitPlannerState:
    time: int
    slope: float

class BenefitPlannerCore:
    def __init__(self, file: BenefitPlannerFile, num_threads: int = -1) -> None: ...
    n_users: int
    n_benefits: int
    pooled: bool
    preference_weight: float
    benefit_level: bool
    def set_block_users(self, users: int) -> None: ...
    def redemption_probability(
        self, at: int, events: Optional[EventLog] = None, behavior: Optional[BehaviorLog] = None
    ) -> Tuple[np.ndarray, float]: ...
    def plan(
        self,
        at: int,
        budget: float,
        events: Optional[EventLog] = None,
        behavior: Optional[BehaviorLog] = None,
        users: Optional[np.ndarray] = None,
        level: float = 1.0,
    ) -> Tuple[
        CompiledPolicy,
        Tuple[Candidates, Dict[str, np.ndarray], Allocation, Dict[str, Any], float],
        float,
    ]: ...
    def prepare(
        self,
        at: int,
        events: Optional[EventLog] = None,
        behavior: Optional[BehaviorLog] = None,
    ) -> BenefitPlannerState: ...
    def answer(
        self, state: BenefitPlannerState, user: int, time: int, n: int = 1
    ) -> Tuple[List[Dict[str, Any]], str, np.ndarray]: ...

class PlattCalibrator:
    def __init__(self) -> None: ...
    def fit(self, scores: np.ndarray, labels: np.ndarray) -> None: ...
    def predict(self, scores: np.ndarray) -> np.ndarray: ...
    a: float
    b: float
    fitted: bool
    def to_json(self) -> str: ...
    @staticmethod
    def from_json(text: str) -> "PlattCalibrator": ...

class IsotonicCalibrator:
    def __init__(self) -> None: ...
    def fit(self, scores: np.ndarray, labels: np.ndarray) -> None: ...
    def predict(self, scores: np.ndarray) -> np.ndarray: ...
    x: np.ndarray
    y: np.ndarray
    fitted: bool
    def to_json(self) -> str: ...
    @staticmethod
    def from_json(text: str) -> "IsotonicCalibrator": ...
