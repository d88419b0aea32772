"""Plots and an HTML report for a fitted PreferenceModel, and the member-value plots
(matplotlib is an optional extra: ``pip install perkrec[plots]``).

    plot_segment_heatmap(model)           segments x dimensions mean preference (log scale)
    plot_user_profile(model, user)        one member's lifts with credible intervals
    plot_hour_of_week(model, user=None)   7 x 24 hour-of-week profile (population when None)
    report(model, folder)                 the three PNGs, segment and cluster tables, one HTML page

and for a fitted CLVModel checked against ``calibration_holdout``:

    plot_frequency_holdout(holdout, prediction)   actual vs predicted by calibration frequency
    plot_holdout_tracking(holdout, model)         per-period (or cumulative) aggregate tracking
    plot_p_alive_history(model, log, user)        a member's p_alive over time

The functions build figures with matplotlib's object API (no pyplot, no global state), so they
work in scripts, servers and notebooks alike; each returns the Figure.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Optional, Union

import numpy as np
import pandas as pd

from ._util import renamed_function, renamed_keywords
from .preference import WEEKDAYS, PreferenceModel


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "perkrec.plots needs matplotlib: pip install 'perkrec[plots]' "
            "(or pip install matplotlib)"
        ) from exc
    return Figure(figsize=(width, height), layout="constrained")


def plot_segment_heatmap(model: PreferenceModel, rules=None):
    """Mean preference of each segment (rows) on each dimension (columns), coloured on a log2
    scale centred at 1 (= the population)."""
    table = model.segment_table(rules)
    values = table[model.dimension_names].to_numpy(dtype=float)
    fig = _figure(max(8.0, 0.32 * values.shape[1] + 3), 0.45 * values.shape[0] + 2.2)
    ax = fig.add_subplot()
    logs = np.log2(np.clip(values, 1e-3, None))
    bound = max(0.5, float(np.nanmax(np.abs(logs))) if np.isfinite(logs).any() else 1.0)
    image = ax.imshow(logs, cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto")
    ax.set_xticks(
        range(values.shape[1]), model.dimension_names, rotation=70, ha="right", fontsize=8
    )
    labels = [f"{name} ({int(n):,})" for name, n in zip(table.index, table["members"])]
    ax.set_yticks(range(values.shape[0]), labels, fontsize=9)
    ax.set_title("Mean preference by segment (log2 of the lift; 0 = population)")
    fig.colorbar(image, ax=ax, label="log2 lift")
    return fig


def plot_user_profile(model: PreferenceModel, user):
    """One member's preference per dimension with its credible interval (log axis)."""
    profile = model.user_profile(user)
    fig = _figure(7.5, 0.22 * len(profile) + 1.5)
    ax = fig.add_subplot()
    y = np.arange(len(profile))
    pref = profile["preference"].to_numpy()
    lower = np.clip(profile["lower"].to_numpy(), 1e-3, None)
    upper = profile["upper"].to_numpy()
    ax.errorbar(pref, y, xerr=[pref - lower, upper - pref], fmt="o", ms=4, capsize=2)
    ax.axvline(1.0, color="grey", lw=1, ls="--")
    ax.set_xscale("log")
    ax.set_yticks(y, profile.index, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("claim rate relative to the population (credible interval)")
    ax.set_title(f"Preference profile of member {user}")
    return fig


plot_member_profile = renamed_function(plot_user_profile, "plot_member_profile")


def plot_hour_of_week(model: PreferenceModel, user=None):
    """The 7 x 24 hour-of-week profile (UTC) of a member (shrunk toward the population) or of
    the population, with the member's best send slot marked."""
    grid = model.hour_of_week_profile(user)
    fig = _figure(9, 3.4)
    ax = fig.add_subplot()
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    ax.set_yticks(range(7), WEEKDAYS)
    ax.set_xticks(range(0, 24, 2), [f"{h:02d}" for h in range(0, 24, 2)])
    ax.set_xlabel("hour (UTC)")
    if user is None:
        ax.set_title("Population hour-of-week profile of orders")
    else:
        slot = int(model.timing()["best_slot"].iloc[model._row(user)])
        ax.plot(slot % 24, slot // 24, marker="*", color="red", ms=14)
        ax.set_title(f"Hour-of-week profile of member {user} (star: best send slot)")
    fig.colorbar(image, ax=ax, label="share of orders")
    return fig


@renamed_keywords(member="user")
def report(
    model: PreferenceModel, folder: Union[str, Path], rules=None, user=None, clusters: int = 6
) -> Path:
    """Writes segment_heatmap.png, member_profile.png, hour_of_week.png, segments.csv,
    clusters.csv, timing_summary.csv and report.html (one page embedding all of them) to
    ``folder``; returns the HTML path. ``user`` (the member shown; ``member`` is its deprecated
    name) defaults to the member with the most orders."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    features = model.features()
    if user is None:
        user = features.index[int(np.nanargmax(features["orders"].to_numpy()))]
    table = model.segment_table(rules)
    table.to_csv(out / "segments.csv")
    assignment, centroids, descriptions = model.clusters(clusters)
    cluster_table = pd.DataFrame(
        {
            "members": assignment.value_counts().reindex(range(clusters)).fillna(0).astype(int),
            "description": descriptions,
        }
    )
    cluster_table.index.name = "cluster"
    cluster_table.to_csv(out / "clusters.csv")
    timing = model.timing()
    timing_summary = timing[
        ["next_purchase_days", "validity_days", "p_alive", "expected_purchases"]
    ].describe()
    timing_summary.to_csv(out / "timing_summary.csv")
    figures = {
        "segment_heatmap.png": plot_segment_heatmap(model, rules),
        "member_profile.png": plot_user_profile(model, user),
        "hour_of_week.png": plot_hour_of_week(model, user),
    }
    for name, fig in figures.items():
        fig.savefig(out / name, dpi=110)
    seg_cols = ["members", "description"]
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>perkrec preference report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}
img{{max-width:100%}}</style></head><body>
<h1>Member benefit preferences</h1>
<p>{model.n_users:,} members, {len(model.dimension_names)} benefit dimensions, events before
{html.escape(str(model.cut_time))}. A preference of 1 means the member claims benefits with that attribute
as often as the average member; 2 means twice as often.</p>
<h2>Segments</h2>
{table[seg_cols].to_html(escape=True)}
<img src="segment_heatmap.png" alt="segment heatmap">
<h2>Data-driven clusters (k-means++ on the preference vectors)</h2>
{cluster_table.to_html(escape=True)}
<h2>Member {html.escape(str(user))}</h2>
<img src="member_profile.png" alt="member profile">
<img src="hour_of_week.png" alt="hour-of-week profile">
<h2>Timing across members</h2>
{timing_summary.to_html(escape=True, float_format=lambda v: f"{v:.2f}")}
</body></html>
"""
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


# --- member value (CLVModel) against a holdout: the literature's pictures ----------------------
def plot_frequency_holdout(
    holdout: pd.DataFrame,
    prediction: pd.DataFrame,
    max_frequency: int = 7,
    forecasts: Optional[dict] = None,
):
    """Mean actual vs predicted holdout purchases by calibration frequency (repeat occasions x,
    the last group ``max_frequency``+): ``holdout`` from ``calibration_holdout``, ``prediction``
    from ``CLVModel.predict(holdout.attrs["duration"])`` (rows matched by member id);
    ``forecasts`` adds other forecasts by name (e.g. ``naive_forecast``)."""
    groups = np.minimum(holdout["x"].to_numpy(dtype=np.int64), int(max_frequency))
    lines = {
        "actual": holdout["holdout_purchases"],
        "model": prediction.loc[holdout.index, "expected_purchases"],
    }
    for name, frame in (forecasts or {}).items():
        lines[name] = frame.loc[holdout.index, "expected_purchases"]
    fig = _figure(7, 4)
    ax = fig.add_subplot()
    levels = np.arange(int(max_frequency) + 1)
    for name, values in lines.items():
        means = pd.Series(np.asarray(values, dtype=float)).groupby(groups).mean().reindex(levels)
        ax.plot(
            levels, means.to_numpy(), marker="o", ls="-" if name == "actual" else "--", label=name
        )
    ax.set_xticks(levels, [str(k) for k in levels[:-1]] + [f"{levels[-1]}+"])
    ax.set_xlabel("repeat occasions in the calibration period")
    ax.set_ylabel(
        f"mean occasions in the holdout ({holdout.attrs.get('duration', float('nan')):.3g} "
        f"{holdout.attrs.get('time_unit', 'units')}s)"
    )
    ax.set_title("Holdout purchases by calibration frequency")
    ax.legend()
    return fig


def plot_holdout_tracking(holdout: pd.DataFrame, model, cumulative: bool = False):
    """Aggregate holdout occasions per time_unit (or cumulative): what happened
    (``holdout.attrs["period_purchases"]``) against the model's conditional expectation summed
    over the calibration members (``CLVModel.expected_purchases_by_period``)."""
    actual = np.asarray(holdout.attrs["period_purchases"], dtype=float)
    expected = model.expected_purchases_by_period(
        len(actual), summary=holdout, end=holdout.attrs["duration"]
    )
    if cumulative:
        actual, expected = np.cumsum(actual), np.cumsum(expected)
    fig = _figure(8, 4)
    ax = fig.add_subplot()
    periods = np.arange(1, len(actual) + 1)
    ax.plot(periods, actual, label="actual")
    ax.plot(periods, expected, ls="--", label=f"model ({model.params['model']})")
    unit = holdout.attrs.get("time_unit", "unit")
    ax.set_xlabel(f"{unit} after the calibration end")
    ax.set_ylabel(("cumulative " if cumulative else "") + "repeat occasions, all members")
    ax.set_title(("Cumulative" if cumulative else f"Per-{unit}") + " holdout tracking")
    ax.legend()
    return fig


def plot_p_alive_history(model, log, user, times=None):
    """One member's probability of being alive over time (``CLVModel.p_alive_history``), with
    their orders marked; ``times`` default to every day from the first order to the model's
    cut (or the log's end)."""
    from .clv import _internal_user

    if times is None:
        end = model.cut_time if model.cut_time is not None else log.time_range[1]
        internal = _internal_user(log, user, "plot_p_alive_history")
        offsets = log.user_offsets
        stamps = log.timestamps[offsets[internal] : offsets[internal + 1]]
        begin = (
            pd.Timestamp(int(stamps.min()), unit="s", tz="UTC").floor("D") if len(stamps) else end
        )
        times = pd.date_range(begin + pd.Timedelta(days=1), end, freq="D")
    history = model.p_alive_history(log, user, times)
    fig = _figure(9, 3.5)
    ax = fig.add_subplot()
    ax.step(history.index, history["p_alive"], where="post", label="p_alive")
    orders = history.index[np.r_[False, np.diff(history["x"].to_numpy()) > 0]]
    for when in orders:
        ax.axvline(when, color="grey", lw=0.8, ls=":")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("P(alive)")
    ax.set_title(
        f"Member {user}: probability of being alive ({model.params['model']}; dotted: repeat purchases)"
    )
    return fig
