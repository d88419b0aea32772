"""The Python orchestration of perkrec.BenefitPlanner.fit before it moved to C++
(decide/benefit_planner_fit.hpp; python/perkrec/pipeline.py before issue 14), kept as the
reference of the parity tests (tests/python/test_pipeline_fit_parity.py). Not part of the
package: the C++ fit must give the same model file bytes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from perkrec import _core
from perkrec._util import time_seconds
from perkrec.fm import HISTORY_AGGREGATES
from perkrec.pipeline import (
    DEFAULT_CUT_DAYS,
    MEMBER_SEGMENT,
    SEGMENT_CHECKPOINT_DAYS,
    BenefitPlanner,
)


# The literals the package held before they moved to C++ (benefit_planner_fit.hpp).
DEFAULT_FIELDS = [
    {"name": "user", "kind": "id", "min_count": 3},
    {"name": "benefit", "kind": "id"},
    {"name": "kind", "kind": "categorical"},
    {"name": "face_value_band", "kind": "categorical"},
    {"name": "threshold", "kind": "numeric", "transform": "quantile", "bins": 6},
    {"name": "discount_rate", "kind": "numeric", "transform": "quantile", "bins": 6},
    {"name": "validity_days", "kind": "categorical"},
    {"name": "scope", "kind": "categorical"},
    {"name": "channel", "kind": "categorical"},
    {"name": "age_band", "kind": "categorical"},
    {"name": "gender", "kind": "categorical"},
    {"name": "tier", "kind": "categorical"},
    {"name": "region", "kind": "categorical"},
    {"name": "tenure_days", "kind": "numeric", "transform": "quantile", "bins": 8},
    {"name": "weekday", "kind": "categorical"},
    {"name": "hour", "kind": "categorical"},
    {
        "name": "member_history",
        "kind": "history",
        "bins": 6,
        "aggregates": [a for a in HISTORY_AGGREGATES if a.startswith("member")],
    },
    {
        "name": "benefit_history",
        "kind": "history",
        "bins": 6,
        "aggregates": [a for a in HISTORY_AGGREGATES if a.startswith("benefit")],
    },
]
DEFAULT_BEHAVIOR_FIELD = {
    "name": "behavior",
    "kind": "behavior",
    "levels": None,
    "actions": None,
    "aggregates": ["decayed_count", "days_since_last", "share_of_wallet", "member_days_since_last"],
    "half_life_days": 28,
    "bins": 8,
}


def _input_error(message: str):
    return _core.InputError(message)


def _issued_mask(frame: pd.DataFrame) -> np.ndarray:
    return (frame["event_type"].astype(str) == "issued").to_numpy() & (
        frame["benefit"].to_numpy() >= 0
    )


class ReferencePlanner(BenefitPlanner):
    """BenefitPlanner whose fit is the former Python orchestration."""

    def fit(
        self, events, catalog, user_table=None, cut_time=None, *, behavior=None, progress=False
    ):
        behavior = self._check_behavior(behavior)
        end = events.time_range[1]
        t_end = time_seconds(end, "end")
        cut = end - pd.Timedelta(days=DEFAULT_CUT_DAYS) if cut_time is None else cut_time
        t_cut = time_seconds(cut, "cut_time")
        if not t_cut <= t_end:
            raise _input_error(
                f"BenefitPlanner.fit: cut_time must not be after the log's last event {end} "
                f"(got {cut})"
            )
        frame = events.to_frame(external_ids=False)
        if self.params["weighting"] == "ipw" and "propensity" not in frame.columns:
            raise _input_error(
                "BenefitPlanner.fit: events: weighting 'ipw' needs logged propensities (the log "
                "has no propensity column); use weighting='none'"
            )
        if self.params["incremental"] == "control" and "control" not in frame.columns:
            raise _input_error(
                "BenefitPlanner.fit: events: incremental 'control' needs the control flag (the log "
                "has none); use incremental='timing'"
            )
        self._segment_asof = (
            self._segment_checkpoints(events, catalog, user_table, t_end)
            if self.params["segment_field"]
            else None
        )
        self._fit_all(
            events, frame, catalog, user_table, cut, t_cut, t_end, end, progress, behavior
        )
        return self

    def _fit_all(
        self, events, frame, catalog, user_table, cut, t_cut, t_end, end, progress, behavior
    ):
        fm, encoder = self._fit_redemption_model(
            events, frame, catalog, user_table, cut, t_cut, t_end, progress, behavior
        )
        holdout = self._holdout(
            events, frame, catalog, user_table, fm, encoder, t_cut, t_end, behavior
        )
        levels = self._benefit_level(holdout, len(catalog))
        if not self.params["shrink"]:  # the held-out issues were only the benefit levels'
            holdout = {k: None for k in holdout}
        state = self._fit_rest(
            events, catalog, user_table, end, fm, holdout, t_cut, t_end, progress
        )
        state["benefit_level"] = levels
        state.update(
            self._fit_offsets(
                events, frame, catalog, user_table, fm, encoder, cut, t_cut, t_end, behavior
            )
        )
        state["behavior"] = behavior
        self._state = state

    def _benefit_level(self, holdout: dict, n_benefits: int):
        """The per-benefit level factors (``benefit_level``) from the held-out issues: the FM's
        prediction at each, its label and weight (C++ ``benefit_levels``); None when off."""
        if not self.params["benefit_level"]:
            return None
        weight = holdout["weight"]
        return _core.benefit_levels(
            n_benefits,
            holdout["benefit"],
            holdout["predicted"],
            holdout["redeemed"],
            None if weight is None else weight.astype(np.float64),
            50.0,
        )

    def _segment_checkpoints(self, events, catalog, user_table, t_end: int):
        """(checkpoint times in seconds, each member's default segment as of each): preference
        models fitted on the events strictly before each checkpoint, every
        SEGMENT_CHECKPOINT_DAYS days from the log's start, strictly before its end."""
        from perkrec.preference import PreferenceModel

        t_start = time_seconds(events.time_range[0], "start")
        step = SEGMENT_CHECKPOINT_DAYS * 86400
        times = list(range(t_start + step, t_end, step))
        segments = []
        for t in times:
            model = PreferenceModel(**self.preference_params).fit(
                events, catalog, pd.Timestamp(t, unit="s", tz="UTC"), user_table=user_table
            )
            segments.append(model.segments()["segment"].astype(str).to_numpy())
        return np.asarray(times, dtype=np.int64), segments

    def _behavior_field(self, behavior) -> dict:
        """The behaviour field the FM gets: ``behavior_field`` or the default over every item
        level and action of ``behavior``."""
        field = self.params["behavior_field"]
        if field is None:
            log, items, _ = behavior
            field = dict(DEFAULT_BEHAVIOR_FIELD)
            field["levels"] = list(items.levels)
            field["actions"] = list(log.action_names)
        return dict(field)

    def _fit_offsets(
        self,
        events,
        frame,
        catalog,
        user_table,
        fm,
        encoder,
        cut,
        t_cut: int,
        t_end: int,
        behavior=None,
    ) -> dict:
        """The pooled member effects (``pooled``) and the preference offset's weight
        (``preference_offset``), both in C++ (decide/pooled_effects.hpp), on the issues whose
        validity ended by the cut (the fit) or, after the cut, by the end of the log (the
        held-out slope and weight), each with the FM's prediction at its time as the offset and
        its clipped inverse-propensity weight when the log has propensities."""
        from perkrec.fm import redemption_samples
        from perkrec.plan import issue_weights
        from perkrec.preference import PreferenceModel

        out = {"pooled": None, "preference_weight": None, "preference_weight_unclipped": None}
        if not (self.params["pooled"] or self.params["preference_offset"]):
            return out
        rows = self._with_segment(redemption_samples(frame, catalog, user_table))
        start = rows["timestamp"].to_numpy()
        ends = start + rows["validity_days"].to_numpy() * 86400
        held = (start >= t_cut) & (ends <= t_end)
        done = (ends <= t_cut) | held
        if not held.any() or not (done & ~held).any():
            raise _input_error(
                "BenefitPlanner.fit: cut_time: pooled effects and the preference offset need "
                "finished issues on both sides of cut_time (got "
                f"{int((done & ~held).sum())} before, {int(held.sum())} after); move cut_time or "
                "pass pooled=False, preference_offset=False"
            )
        weights = (
            issue_weights(frame["propensity"].to_numpy()[_issued_mask(frame)])[done]
            if "propensity" in frame
            else None
        )
        rows = rows[done]
        held = held[done]
        at_issue = np.clip(
            fm.predict(encoder.transform(rows, events=events, behavior=behavior)), 1e-6, 1 - 1e-6
        ).astype(np.float64)
        users = rows["user"].to_numpy(np.int32)
        benefits = rows["benefit"].to_numpy(np.int32)
        labels = rows["label"].to_numpy(np.float64)
        w = None if weights is None else np.ascontiguousarray(weights, dtype=np.float64)
        if self.params["pooled"]:
            cat = catalog.to_frame()
            codes = [
                pd.factorize(cat[c].astype(str))[0].astype(np.int32) for c in ("kind", "channel")
            ]
            out["pooled"] = _core.fit_pooled_member_effects(
                events.n_users,
                events.n_benefits,
                codes,
                users,
                benefits,
                at_issue,
                labels,
                w,
                held.astype(np.uint8),
                30,
                3,
                1.0,
                1e-4,
            )
        if self.params["preference_offset"]:
            at_cut = PreferenceModel(**self.preference_params).fit(
                events, catalog, cut, user_table=user_table
            )
            weight, unclipped = _core.fit_preference_weight(
                at_cut._impl,
                catalog._impl,
                users[held],
                benefits[held],
                at_issue[held],
                labels[held],
                None if w is None else w[held],
                out["pooled"],
                0.0,
                1.0,
            )
            out["preference_weight"] = float(weight)
            out["preference_weight_unclipped"] = float(unclipped)
        return out

    def _fit_redemption_model(
        self,
        events,
        frame,
        catalog,
        user_table,
        cut,
        t_cut: int,
        t_end: int,
        progress,
        behavior=None,
    ):
        from perkrec.fm import FM, FeatureEncoder, redemption_samples
        from perkrec.plan import issue_weights

        # The issues before the cut, labelled from the whole log: an issue still open at the
        # cut keeps a redemption that comes after it (labels from the events before the cut
        # alone would call it 0, and those rows, the latest, would teach the FM that recent
        # issues redeem less). Features still see only the events before each row's time, and
        # the held-out issues (after the cut) are other rows. An issue whose validity runs past
        # the end of the log has no label yet and is left out.
        samples = self._with_segment(redemption_samples(events, catalog, user_table))
        start = samples["timestamp"].to_numpy()
        finished = start + samples["validity_days"].to_numpy() * 86400 <= t_end
        keep = (start < t_cut) & finished
        rows = samples[keep].reset_index(drop=True)
        if len(rows) == 0:
            raise _input_error(
                f"BenefitPlanner.fit: events: no issues before cut_time (got cut_time {cut})"
            )
        weights = None
        if self.params["weighting"] == "ipw":
            weights = issue_weights(frame["propensity"].to_numpy()[_issued_mask(frame)][keep])
        fields = [dict(f, optional=True) for f in DEFAULT_FIELDS]
        if self.params["segment_field"]:
            fields.append({"name": MEMBER_SEGMENT, "kind": "categorical"})
        if behavior is not None:
            fields.append(self._behavior_field(behavior))
        encoder = FeatureEncoder(fields)
        encoder.fit(rows, events=events, catalog=catalog, behavior=behavior)
        validation = None
        if self.params["early_stopping"]:
            held = samples[(start >= t_cut) & finished]
            if len(held) == 0:
                raise _input_error(
                    "BenefitPlanner.fit: cut_time: early stopping needs issues after cut_time whose "
                    "validity ended by the end of the log (got none); move cut_time earlier or "
                    "pass early_stopping=False"
                )
            validation = (
                encoder.transform(held, events=events, behavior=behavior),
                held["label"],
            )
        fm = FM(**self.fm_params)
        fm.fit(
            encoder.transform(rows, events=events, behavior=behavior),
            rows["label"],
            sample_weight=weights,
            encoder=encoder,
            validation=validation,
            progress=progress,
        )
        return fm, encoder

    def _holdout(
        self, events, frame, catalog, user_table, fm, encoder, t_cut: int, t_end: int, behavior=None
    ) -> dict:
        """The held-out issues (after the cut, validity ended by the end of the log) with the
        FM's predictions: what the shrinkage fits its slope on at plan time."""
        from perkrec.fm import redemption_samples
        from perkrec.plan import issue_weights

        empty = {"user": None, "benefit": None, "predicted": None, "redeemed": None, "weight": None}
        if not (self.params["shrink"] or self.params["benefit_level"]):
            return empty
        rows = self._with_segment(redemption_samples(frame, catalog, user_table))
        held = (
            (rows["timestamp"] >= t_cut)
            & (rows["timestamp"] + rows["validity_days"] * 86400 <= t_end)
        ).to_numpy()
        if held.sum() == 0:
            raise _input_error(
                "BenefitPlanner.fit: cut_time: the shrinkage and the benefit levels need issues "
                "after cut_time whose validity ended by the end of the log (got none); move "
                "cut_time earlier or pass shrink=False, benefit_level=False"
            )
        rows = rows[held]
        weights = (
            issue_weights(frame["propensity"].to_numpy()[_issued_mask(frame)][held])
            if "propensity" in frame
            else None
        )
        predicted = fm.predict(encoder.transform(rows, events=events, behavior=behavior))
        return {
            "user": rows["user"].to_numpy(np.int32),
            "benefit": rows["benefit"].to_numpy(np.int32),
            "predicted": np.clip(predicted, 1e-6, 1 - 1e-6).astype(np.float64),
            "redeemed": rows["label"].to_numpy(np.float64),
            "weight": None if weights is None else np.ascontiguousarray(weights, dtype=np.float32),
        }

    def _fit_rest(
        self, events, catalog, user_table, end, fm, holdout, t_cut: int, t_end: int, progress
    ) -> dict:
        from perkrec.plan import incremental_share_from_control, order_value
        from perkrec.preference import PreferenceModel

        pref = PreferenceModel(**self.preference_params).fit(
            events, catalog, end, user_table=user_table, progress=progress
        )
        share = None
        if self.params["incremental"] == "control":
            share = np.ascontiguousarray(
                incremental_share_from_control(events, catalog, end), dtype=np.float32
            )
        value = np.ascontiguousarray(
            order_value(events, self.params["margin"], cut_time=end), dtype=np.float32
        )
        return {
            "fm": fm,
            "preference": pref,
            "catalog": catalog,
            "events": events,
            "user_table": user_table,
            "order_value": value,
            "holdout": holdout,
            "incremental_share": share,
            "cut_time": int(t_cut),
            "end_time": int(t_end),
        }

    def _file(self, method: str) -> _core.BenefitPlannerFile:
        state = self._require_fitted(method)
        held = state["holdout"]
        config = {
            "policy": json.loads(self.planner.policy.to_json()),
            "params": self.params,
            "fm_params": self.fm_params,
            "preference_params": self.preference_params,
            "cut_time": state["cut_time"],
            "end_time": state["end_time"],
        }
        share = state["incremental_share"]
        behavior = state.get("behavior") or (None, None, None)
        return _core.BenefitPlannerFile(
            json.dumps(config),
            state["fm"]._impl,
            state["preference"]._impl,
            state["catalog"]._impl,
            state["events"]._impl,
            None if state["user_table"] is None else state["user_table"]._impl,
            state["order_value"],
            held["user"],
            held["benefit"],
            held["predicted"],
            held["redeemed"],
            held["weight"],
            None if share is None else share.reshape(-1),
            state.get("pooled"),
            state.get("preference_weight"),
            *(None if b is None else b._impl for b in behavior),
            state.get("benefit_level"),
        )
