"""The campaign report: one self-contained HTML page for a plan and, when results are in, for
its evaluation — what operators open in a browser.

    from perkrec.report import campaign_report
    html = campaign_report(plan, "campaign.html", offline=plan.evaluate_offline(log, catalog),
                           experiment=analyze_experiment(...), segments=preference.segments())

The page has no scripts and loads nothing at view time (inline CSS and SVG charts), so it opens
from a mail attachment or a file share as it is. Sections appear when their inputs exist:

* the plan: budget, expected cost and return, members and benefits, return per unit cost;
* return per unit cost by segment, benefit kind, channel (any column of the plan's frame);
* pacing: cumulative expected spend over the send times against the budget;
* the top reasons (the preference dimensions that carried each issue, why the runner-up lost,
  the rules that excluded a better benefit), read from the plan's explanations;
* preference segments (members per segment, from ``PreferenceModel.segments()``);
* value by segment and lifecycle stage (``clv_fields=CLVModel.member_fields(...)``): members,
  mean CLV, share of plan spend and expected incremental return per stage and per segment;
* the plan valued off-policy from a log (``Plan.evaluate_offline``), with intervals;
* an experiment's incremental results with intervals (``analyze_experiment``);
* the uplift model's Qini curve and, given value and cost, its cost curve (``uplift=`` a
  mapping with ``y``, ``uplift``, ``treatment`` and optionally ``value``, ``cost``).

Cost: O(plan rows) for the tables and the pacing curve (groupbys); the reasons are read from at
most ``reason_sample`` rows (a seeded uniform sample, said on the page); curves are drawn with
at most 400 points, so the page stays small (well under 1 MB) for any plan size.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd

from . import _core
from ._util import seconds

__all__ = ["campaign_report", "plan_summary_html", "value_by_stage"]

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;max-width:1080px;
color:#1d2733;background:#fff;line-height:1.4}
h1{font-size:1.6em;margin-bottom:4px}h2{font-size:1.2em;margin-top:28px;border-bottom:1px solid #d6dde6;
padding-bottom:4px}p.note{color:#5b6b7c;font-size:.9em}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.card{background:#f3f6fa;border-radius:6px;padding:10px 14px;min-width:140px}
.card b{display:block;font-size:1.35em}.card span{color:#5b6b7c;font-size:.85em}
table.pk{border-collapse:collapse;font-size:.9em;margin:8px 0}
table.pk th,table.pk td{padding:4px 10px;border-bottom:1px solid #e3e8ee;text-align:right}
table.pk th:first-child,table.pk td:first-child{text-align:left}
table.pk thead th{background:#f3f6fa}
.row{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
svg text{font-family:inherit;font-size:11px;fill:#33414f}
"""

_BLUE, _GREY, _ORANGE = "#2f6fb3", "#9aa7b4", "#d9822b"


# --- formatting --------------------------------------------------------------------------------


def _num(v, digits: int = 2) -> str:
    if v is None or (isinstance(v, (float, np.floating)) and not np.isfinite(v)):
        return "–"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    v = float(v)
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def _table(frame: pd.DataFrame, digits: int = 2, index: bool = True) -> str:
    """An escaped HTML table of ``frame`` (numbers formatted, the index as the first column)."""
    cols = list(frame.columns)
    head = ([html.escape(str(frame.index.name or ""))] if index else []) + [
        html.escape(str(c)) for c in cols
    ]
    rows = []
    for key, rec in zip(frame.index, frame.itertuples(index=False)):
        cells = ([html.escape(str(key))] if index else []) + [
            _num(v, digits)
            if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            else html.escape(str(v))
            for v in rec
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (
        '<table class="pk"><thead><tr>'
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _cards(items: Sequence[tuple]) -> str:
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><b>{html.escape(v)}</b><span>{html.escape(k)}</span></div>'
            for k, v in items
        )
        + "</div>"
    )


# --- charts (inline SVG) -----------------------------------------------------------------------


def _bars(labels: Sequence[str], values: Sequence[float], title: str, width: int = 460) -> str:
    """Horizontal bars, one per label (non-finite values drawn as 0 and labelled '–')."""
    raw = list(values)
    vals = np.asarray(raw, dtype=np.float64)
    finite = np.where(np.isfinite(vals), vals, 0.0)
    top = max(float(np.max(np.abs(finite))) if len(finite) else 0.0, 1e-12)
    row, left, right = 20, 210, 60
    height = 28 + row * len(labels)
    span = width - left - right
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
        f'<text x="0" y="14" style="font-weight:600">{html.escape(title)}</text>',
    ]
    for i, (lab, v, f) in enumerate(zip(labels, raw, finite)):
        y = 24 + i * row
        w = span * abs(f) / top
        parts.append(
            f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{html.escape(str(lab)[:34])}</text>'
        )
        parts.append(
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" '
            f'fill="{_BLUE if f >= 0 else _ORANGE}"/>'
        )
        parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 13}">{_num(v)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _thin(x: np.ndarray, y: np.ndarray, points: int = 400):
    if len(x) <= points:
        return x, y
    idx = np.unique(np.linspace(0, len(x) - 1, points).round().astype(np.int64))
    return x[idx], y[idx]


def _lines(
    series: Sequence[tuple],
    title: str,
    xlabel: str,
    ylabel: str,
    hline: Optional[tuple] = None,
    width: int = 460,
    height: int = 260,
    xticks: Optional[Sequence[tuple]] = None,
) -> str:
    """Line chart of ``series`` = [(label, x, y, colour, dashed)], an optional horizontal line
    (label, y), axes from the data."""
    left, right, top, bottom = 56, 12, 24, 40
    xs = [np.asarray(s[1], np.float64) for s in series]
    ys = [np.asarray(s[2], np.float64) for s in series]
    allx = np.concatenate(xs) if xs else np.zeros(1)
    ally = np.concatenate(ys + ([np.asarray([hline[1]])] if hline else [])) if ys else np.zeros(1)
    allx, ally = allx[np.isfinite(allx)], ally[np.isfinite(ally)]
    x0, x1 = (float(allx.min()), float(allx.max())) if len(allx) else (0.0, 1.0)
    y0, y1 = (min(0.0, float(ally.min())), float(ally.max())) if len(ally) else (0.0, 1.0)
    x1, y1 = (x1 if x1 > x0 else x0 + 1.0), (y1 if y1 > y0 else y0 + 1.0)
    pw, ph = width - left - right, height - top - bottom

    def px(v):
        return left + pw * (v - x0) / (x1 - x0)

    def py(v):
        return top + ph * (1.0 - (v - y0) / (y1 - y0))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
        f'<text x="0" y="14" style="font-weight:600">{html.escape(title)}</text>',
        f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="{_GREY}"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="{_GREY}"/>',
        f'<text x="{left + pw / 2}" y="{height - 4}" text-anchor="middle">{html.escape(xlabel)}</text>',
        f'<text x="12" y="{top + ph / 2}" text-anchor="middle" transform="rotate(-90 12 {top + ph / 2})">'
        f"{html.escape(ylabel)}</text>",
    ]
    for v in (y0, (y0 + y1) / 2, y1):
        parts.append(f'<text x="{left - 4}" y="{py(v) + 4:.1f}" text-anchor="end">{_num(v)}</text>')
    ticks = list(xticks if xticks is not None else [(x0, _num(x0)), (x1, _num(x1))])
    for i, (v, lab) in enumerate(ticks):
        anchor = "start" if i == 0 else "end" if i == len(ticks) - 1 else "middle"
        parts.append(
            f'<text x="{px(v):.1f}" y="{top + ph + 14}" text-anchor="{anchor}">{html.escape(lab)}</text>'
        )
    if hline is not None:
        parts.append(
            f'<line x1="{left}" y1="{py(hline[1]):.1f}" x2="{left + pw}" y2="{py(hline[1]):.1f}" '
            f'stroke="{_ORANGE}" stroke-dasharray="5,3"/>'
        )
        parts.append(
            f'<text x="{left + pw - 2}" y="{py(hline[1]) - 4:.1f}" text-anchor="end">'
            f"{html.escape(hline[0])}</text>"
        )
    for i, (label, x, y, colour, dashed) in enumerate(series):
        x, y = _thin(np.asarray(x, np.float64), np.asarray(y, np.float64))
        ok = np.isfinite(x) & np.isfinite(y)
        pts = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(x[ok], y[ok]))
        dash = ' stroke-dasharray="4,3"' if dashed else ""
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{pts}"/>'
        )
        parts.append(
            f'<text x="{left + 8}" y="{top + 14 + 14 * i}" fill="{colour}" style="fill:{colour}">'
            f"{html.escape(label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _intervals(
    labels: Sequence[str], est, lower, upper, title: str, width: int = 460, reference: float = 0.0
) -> str:
    """Estimates with their intervals (a forest plot) and a dashed line at ``reference``."""
    est, lower, upper = (np.asarray(a, np.float64) for a in (est, lower, upper))
    vals = np.concatenate([est, lower, upper, [reference]])
    vals = vals[np.isfinite(vals)]
    lo, hi = float(vals.min()), float(vals.max())
    pad = 0.05 * (hi - lo) if hi > lo else 1.0
    lo, hi = lo - pad, hi + pad
    row, left, right = 24, 210, 30
    height = 34 + row * len(labels)
    span = width - left - right

    def px(v):
        return left + span * (v - lo) / (hi - lo)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
        f'<text x="0" y="14" style="font-weight:600">{html.escape(title)}</text>',
    ]
    parts.append(
        f'<line x1="{px(reference):.1f}" y1="20" x2="{px(reference):.1f}" y2="{height - 10}" '
        f'stroke="{_GREY}" stroke-dasharray="3,3"/>'
    )
    for i, (lab, e, a, b) in enumerate(zip(labels, est, lower, upper)):
        y = 32 + i * row
        parts.append(
            f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{html.escape(str(lab)[:34])}</text>'
        )
        if np.isfinite(a) and np.isfinite(b):
            parts.append(
                f'<line x1="{px(a):.1f}" y1="{y}" x2="{px(b):.1f}" y2="{y}" stroke="{_BLUE}" '
                'stroke-width="2"/>'
            )
        if np.isfinite(e):
            parts.append(f'<circle cx="{px(e):.1f}" cy="{y}" r="4" fill="{_BLUE}"/>')
    ref = px(reference)
    if ref - left > 40:
        parts.append(f'<text x="{left}" y="{height - 2}">{_num(lo)}</text>')
    parts.append(
        f'<text x="{ref:.1f}" y="{height - 2}" text-anchor="middle">{_num(reference)}</text>'
    )
    if left + span - ref > 40:
        parts.append(
            f'<text x="{left + span}" y="{height - 2}" text-anchor="end">{_num(hi)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


# --- sections ----------------------------------------------------------------------------------


def _plan_cards(plan) -> str:
    f = plan.frame
    cost, ret = plan.expected_cost, plan.expected_return
    items = [
        ("members", f"{int(f['member_index'].nunique()) if 'member_index' in f else len(f):,}"),
        ("benefits issued", f"{len(f):,}"),
        ("budget", _num(plan.budget) if np.isfinite(plan.budget) else "none"),
        ("expected cost", _num(cost)),
        ("expected return", _num(ret)),
        ("return per unit cost", _num(ret / cost) if cost > 0 else "–"),
        (
            "expected redemptions",
            _num(float(f["probability"].sum())) if "probability" in f else "–",
        ),
    ]
    if np.isfinite(plan.budget) and plan.budget > 0:
        items.append(("budget used", f"{100.0 * cost / plan.budget:.1f}%"))
    if np.isfinite(getattr(plan, "dual_bound", float("nan"))) and plan.dual_bound > 0:
        items.append(("of the dual bound", f"{100.0 * ret / plan.dual_bound:.1f}%"))
    return _cards(items)


def plan_summary_html(plan) -> str:
    """A compact HTML summary of a plan (what ``Plan._repr_html_`` shows in Jupyter)."""
    f = plan.frame
    by = next((c for c in ("segment", "kind") if c in f.columns), None)
    body = _plan_cards(plan)
    if by is not None and len(f):
        s = plan.summary(by=by)
        body += _table(
            s[["members", "expected_cost", "expected_return", "return_per_cost"]].head(12)
        )
    method = f" · {html.escape(plan.method)}" if getattr(plan, "method", "") else ""
    return f"<div><style>{_CSS}</style><b>perkrec Plan</b>{method}{body}</div>"


def _breakdowns(plan, columns: Sequence[str]) -> str:
    out = []
    for col in columns:
        if col not in plan.frame.columns or len(plan.frame) == 0:
            continue
        s = plan.summary(by=col)
        chart = _bars(
            [str(i) for i in s.index],
            s["return_per_cost"].to_numpy(),
            f"Expected return per unit cost by {col}",
        )
        out.append(
            f'<h3>By {html.escape(col)}</h3><div class="row"><div>{_table(s)}</div><div>{chart}</div></div>'
        )
    return "".join(out)


def _pacing(plan) -> str:
    f = plan.frame
    if "send_at" not in f.columns or len(f) == 0:
        return ""
    t = pd.to_datetime(f["send_at"], utc=True)
    secs = seconds(f["send_at"], "send_at")
    order = np.argsort(secs, kind="stable")
    spend = np.cumsum(f["cost"].to_numpy(np.float64)[order])
    x = (secs[order] - secs[order[0]]).astype(np.float64) / 3600.0
    first, last = t.min(), t.max()
    ticks = [(0.0, f"{first:%a %d %b}"), (float(x[-1]), f"{last:%a %d %b}")] if x[-1] > 0 else None
    budget = plan.budget if np.isfinite(plan.budget) else None
    chart = _lines(
        [("expected spend", x, spend, _BLUE, False)],
        "Pacing: cumulative expected spend by send time",
        "hours from the first send",
        "expected cost",
        hline=("budget", budget) if budget is not None else None,
        xticks=ticks,
    )
    weekly = (secs.max() - secs.min()) > 14 * 86400
    key = (
        t.dt.tz_localize(None).dt.to_period("W").dt.start_time.dt.strftime("week of %Y-%m-%d")
        if weekly
        else t.dt.strftime("%Y-%m-%d")
    )
    by = (
        f.assign(sent=key)
        .groupby("sent", sort=True)
        .agg(
            benefits=("cost", "size"),
            expected_cost=("cost", "sum"),
            expected_return=("value", "sum"),
        )
    )
    by.index.name = "week" if weekly else "day"
    return (
        f'<h2>Pacing</h2><div class="row"><div>{chart}</div><div>{_table(by)}</div></div>'
        f'<p class="note">Sends from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC.</p>'
    )


def _reasons(plan, sample: int, seed: int) -> str:
    f = plan.frame
    if "reasons" not in f.columns or len(f) == 0:
        return ""
    rows = f["reasons"]
    note = f"all {len(rows):,} issued benefits"
    if len(rows) > sample:
        rows = rows.sample(n=sample, random_state=seed)
        note = f"a uniform sample of {sample:,} of the {len(f):,} issued benefits (seed {seed})"
    top_dim, runner, excluded = {}, {}, {}
    for text in rows:
        if not isinstance(text, str) or not text:
            continue
        try:
            r = json.loads(text)
        except ValueError:
            continue
        prefs = r.get("preferences") or []
        if prefs:
            d = str(prefs[0].get("dimension"))
            top_dim[d] = top_dim.get(d, 0) + 1
        ru = r.get("runner_up") or {}
        if ru.get("reason"):
            runner[str(ru["reason"])] = runner.get(str(ru["reason"]), 0) + 1
        bi = r.get("best_ineligible") or {}
        if bi.get("rule"):
            excluded[str(bi["rule"])] = excluded.get(str(bi["rule"]), 0) + 1
    parts = []
    for counts, title, col in (
        (top_dim, "Strongest preference behind the issue", "dimension"),
        (runner, "Why the runner-up benefit was not issued", "reason"),
        (excluded, "Rule that excluded a better-scored benefit", "rule"),
    ):
        if counts:
            s = pd.Series(counts, name="benefits").sort_values(ascending=False).head(10)
            s.index.name = col
            parts.append(f"<div>{_bars(list(s.index), s.to_numpy(), title)}</div>")
    if not parts:
        return ""
    return f'<h2>Top reasons</h2><div class="row">{"".join(parts)}</div><p class="note">From {note}.</p>'


def _segments(segments) -> str:
    if segments is None:
        return ""
    col = segments["segment"] if isinstance(segments, pd.DataFrame) else pd.Series(segments)
    counts = col.astype(str).value_counts().sort_values(ascending=False)
    counts.index.name = "segment"
    table = pd.DataFrame({"members": counts, "share": counts / max(int(counts.sum()), 1)})
    return (
        f'<h2>Preference segments</h2><div class="row"><div>{_table(table, 3)}</div>'
        f'<div>{_bars(list(counts.index), counts.to_numpy(), "Members per segment")}</div></div>'
    )


def _interests(interests, segments, n: int = 5) -> str:
    """Each segment's values of highest mean interest lift (``InterestModel.by_segment``), or
    the population's largest shares without segments."""
    if interests is None:
        return ""
    from .interest import InterestModel

    models = [interests] if isinstance(interests, InterestModel) else list(interests)
    parts = []
    for model in models:
        if not isinstance(model, InterestModel):
            raise _core.InputError(
                "campaign_report: interests must be a fitted InterestModel or a sequence of "
                f"them (got {type(model).__name__})"
            )
        level = model.params["level"]
        if segments is not None:
            col = segments["segment"] if isinstance(segments, pd.DataFrame) else segments
            if not isinstance(col, pd.Series):
                col = list(col)
            by = model.by_segment(col, n=n)
            table = by.pivot(index="rank", columns="segment", values=level)
            note = f"Each segment's {n} {level} values of highest mean lift over its members."
        else:
            share = model.population_share.sort_values(ascending=False).head(n)
            table = pd.DataFrame({"population share": share})
            note = f"No segments given: the population's {n} largest {level} shares."
        parts.append(
            f"<h3>By {html.escape(level)}</h3><div>{_table(table, 3)}</div>"
            f'<p class="note">{html.escape(note)}</p>'
        )
    return "<h2>What members are most interested in</h2>" + "".join(parts)


_NO_FIT = "no fit"  # members without CLV fields (no order before the CLV model's cut)


def value_by_stage(plan, clv_fields: pd.DataFrame, segments=None) -> dict:
    """The plan's spend and expected incremental return next to what the members are worth, by
    lifecycle stage and by preference segment: ``{"lifecycle_stage": frame, "segment": frame}``
    (the second only when ``segments`` are given or the plan has a segment column).

    ``clv_fields``: ``CLVModel.member_fields(...)`` — a DataFrame indexed by member id (the
    plan's ``member`` column) with ``clv`` and ``lifecycle_stage``; members of the plan it lacks,
    and members with a missing stage, form the row "no fit". ``segments``:
    ``PreferenceModel.segments()`` (indexed by member id) or a Series of labels by member id.
    Each frame has per group: ``members`` (in ``clv_fields``), ``mean_clv``,
    ``planned_members``, ``share_of_spend`` (of the plan's expected cost), ``expected_cost``,
    ``expected_return`` (the plan's expected incremental return) and ``return_per_cost``.
    Stage rows follow LIFECYCLE_STAGES. InputError for duplicate member ids, an unknown stage
    name, a non-finite clv of a member with a stage, or a ``clv_fields`` that shares no id
    with the plan's members (ids of another log, or indices given for ids)."""
    from .clv import LIFECYCLE_STAGES, stage_codes
    from .plan import Plan

    if not isinstance(plan, Plan):
        raise _core.InputError(
            f"value_by_stage: plan must be a perkrec.Plan (got {type(plan).__name__})"
        )
    if not isinstance(clv_fields, pd.DataFrame):
        raise _core.InputError(
            f"value_by_stage: clv_fields must be a DataFrame (got {type(clv_fields).__name__})"
        )
    for column in ("clv", "lifecycle_stage"):
        if column not in clv_fields.columns:
            raise _core.InputError(
                f"value_by_stage: clv_fields: missing column {column!r} (give "
                "CLVModel.member_fields(...))"
            )
    if clv_fields.index.has_duplicates:
        dup = clv_fields.index[clv_fields.index.duplicated()][0]
        raise _core.InputError(f"value_by_stage: clv_fields: duplicate member id {dup!r}")
    stage = clv_fields["lifecycle_stage"]
    given = stage.notna().to_numpy()
    stage_codes(stage[given].astype(str).unique(), "value_by_stage: clv_fields.lifecycle_stage")
    clv = pd.to_numeric(clv_fields["clv"], errors="coerce").to_numpy(dtype=np.float64)
    bad = given & ~np.isfinite(clv)
    if bad.any():
        who = clv_fields.index[np.flatnonzero(bad)[0]]
        raise _core.InputError(
            f"value_by_stage: clv_fields: clv of member {who!r} is not finite (got "
            f"{clv_fields['clv'].loc[who]!r}) although it has a lifecycle stage"
        )
    f = plan.frame
    planned = pd.Index(f["member"].unique())
    if len(planned) and len(clv_fields) and not planned.isin(clv_fields.index).any():
        raise _core.InputError(
            f"value_by_stage: clv_fields shares no member id with the plan's {len(planned):,} "
            f"members (plan member {planned[0]!r}, clv_fields index {clv_fields.index[0]!r})"
        )
    labels = stage.astype(object).where(stage.notna(), _NO_FIT)
    population = pd.DataFrame({"clv": np.where(given, clv, np.nan), "lifecycle_stage": labels})
    population.index = clv_fields.index
    extra = planned.difference(population.index)
    if len(extra):
        population = pd.concat(
            [
                population,
                pd.DataFrame({"clv": np.nan, "lifecycle_stage": _NO_FIT}, index=extra),
            ]
        )
    groups = {"lifecycle_stage": population["lifecycle_stage"]}
    seg = segments
    if seg is None and "segment" in f.columns:
        seg = f.drop_duplicates("member").set_index("member")["segment"]
    if seg is not None:
        seg = seg["segment"] if isinstance(seg, pd.DataFrame) else pd.Series(seg)
        if len(seg) and not population.index.isin(seg.index).any():
            raise _core.InputError(
                "value_by_stage: segments share no member id with clv_fields (segments index "
                f"{seg.index[0]!r}, clv_fields index {population.index[0]!r})"
            )
        groups["segment"] = (
            seg.astype(object).reindex(population.index).where(lambda x: x.notna(), "none")
        )
    total_cost = float(f["cost"].sum())
    out = {}
    for by, label in groups.items():
        label = label.astype(str)
        members = label.groupby(label).size()
        mean_clv = population["clv"].groupby(label).mean()
        row_label = label.reindex(f["member"]).to_numpy()
        g = f.assign(_group=row_label).groupby("_group")
        table = pd.DataFrame(
            {
                "members": members,
                "mean_clv": mean_clv,
                "planned_members": g["member"].nunique(),
                "expected_cost": g["cost"].sum(),
                "expected_return": g["value"].sum(),
            }
        )
        table[["planned_members"]] = table[["planned_members"]].fillna(0).astype(np.int64)
        table[["expected_cost", "expected_return"]] = table[
            ["expected_cost", "expected_return"]
        ].fillna(0.0)
        table.insert(
            3,
            "share_of_spend",
            table["expected_cost"] / total_cost if total_cost > 0 else np.nan,
        )
        table["return_per_cost"] = table["expected_return"] / table["expected_cost"].where(
            table["expected_cost"] > 0
        )
        if by == "lifecycle_stage":
            order = [s for s in (*LIFECYCLE_STAGES, _NO_FIT) if s in table.index]
            table = table.loc[order]
        else:
            table = table.sort_values("members", ascending=False)
        table.index.name = by
        out[by] = table
    return out


def _value_section(plan, clv_fields, segments) -> str:
    if clv_fields is None:
        return ""
    tables = value_by_stage(plan, clv_fields, segments)
    parts = ["<h2>Value by segment and lifecycle stage</h2>"]
    for by, table in tables.items():
        title = "lifecycle stage" if by == "lifecycle_stage" else "preference segment"
        chart = _bars(
            [str(i) for i in table.index],
            table["share_of_spend"].to_numpy(),
            f"Share of plan spend by {title}",
        )
        parts.append(
            f'<h3>By {title}</h3><div class="row"><div>{_table(table, 3)}</div><div>{chart}</div></div>'
        )
    parts.append(
        '<p class="note">members and mean_clv: every member with CLV fields (CLVModel.member_fields); '
        '"no fit": members without an order before its cut. Spend and return: the plan\'s expected '
        "figures.</p>"
    )
    return "".join(parts)


def _offline(offline) -> str:
    if offline is None:
        return ""
    f = offline if isinstance(offline, pd.DataFrame) else pd.DataFrame(offline)
    cols = [c for c in ("expected", "estimate", "lower", "upper") if c in f.columns]
    chart = ""
    if {"estimate", "lower", "upper", "expected"} <= set(f.columns):
        base = f["expected"].to_numpy(np.float64)
        base = np.where(np.abs(base) > 0, base, np.nan)
        chart = _intervals(
            [str(i) for i in f.index],
            f["estimate"] / base,
            f["lower"] / base,
            f["upper"] / base,
            "Off-policy estimate / expected, with interval",
            reference=1.0,
        )
    return (
        f'<h2>The plan valued off-policy from the log</h2><div class="row"><div>{_table(f[cols])}</div>'
        f'<div>{chart}</div></div><p class="note">"expected" is what the plan\'s own model expects; '
        f'"estimate" is what the logged outcomes say the plan would have earned (importance-weighted '
        f"from the logging policy's propensities). Value a plan on a log its models never saw.</p>"
    )


def _experiment(experiment) -> str:
    if experiment is None:
        return ""
    f = experiment if isinstance(experiment, pd.DataFrame) else pd.DataFrame(experiment)
    label = (
        (f["arm"].astype(str) + " · " + f["metric"].astype(str))
        if {"arm", "metric"} <= set(f.columns)
        else f.index.astype(str)
    )
    f = f.set_index(pd.Index(label, name="arm · metric"))
    cols = [
        c
        for c in (
            "n_control",
            "n_arm",
            "control_mean",
            "arm_mean",
            "lift",
            "lower",
            "upper",
            "relative_lift",
            "p_value",
            "roi",
            "roi_lower",
            "roi_upper",
        )
        if c in f.columns
    ]
    chart = ""
    if {"lift", "lower", "upper", "control_mean"} <= set(f.columns):
        base = f["control_mean"].to_numpy(np.float64)
        base = np.where(np.abs(base) > 0, base, np.nan)
        chart = _intervals(
            list(f.index),
            f["lift"] / base,
            f["lower"] / base,
            f["upper"] / base,
            "Lift relative to the control mean, with interval",
            reference=0.0,
        )
    return (
        f'<h2>Experiment: incremental results</h2><div class="row"><div>{_table(f[cols], 3)}</div>'
        f'<div>{chart}</div></div><p class="note">Each arm against the control group; intervals at the '
        f"confidence the analysis used (CUPED-adjusted where a pre-period was given).</p>"
    )


def _uplift(uplift: Optional[Mapping]) -> str:
    if uplift is None:
        return ""
    from .causal import cost_curve, perfect_qini_curve, qini_auc_score, qini_curve

    missing = [k for k in ("y", "uplift", "treatment") if k not in uplift]
    if missing:
        raise _core.InputError(
            f"campaign_report: uplift needs the keys y, uplift and treatment (missing {missing})"
        )
    y, u, w = uplift["y"], uplift["uplift"], uplift["treatment"]
    x, q = qini_curve(y, u, w)
    px_, pq = perfect_qini_curve(y, w)
    n = float(x[-1]) if len(x) else 1.0
    charts = [
        _lines(
            [
                ("model", x / n, q, _BLUE, False),
                ("perfect", px_ / n, pq, _GREY, True),
                (
                    "random",
                    np.array([0.0, 1.0]),
                    np.array([0.0, q[-1] if len(q) else 0.0]),
                    _ORANGE,
                    True,
                ),
            ],
            f"Qini curve (Qini AUC {qini_auc_score(y, u, w):.4f})",
            "share of members targeted",
            "incremental responders",
        )
    ]
    if "value" in uplift and "cost" in uplift:
        cx, cy, _ = cost_curve(uplift["value"], uplift["cost"], u, w)
        charts.append(
            _lines(
                [("model", cx, cy, _BLUE, False)],
                "Cost curve: incremental value vs cost",
                "incremental cost",
                "incremental value",
            )
        )
    return (
        '<h2>Uplift model</h2><div class="row">'
        + "".join(f"<div>{c}</div>" for c in charts)
        + "</div>"
    )


# --- the page ----------------------------------------------------------------------------------


def campaign_report(
    plan,
    path: Union[str, Path, None] = None,
    *,
    experiment=None,
    offline=None,
    uplift: Optional[Mapping] = None,
    segments=None,
    interests=None,
    clv_fields: Optional[pd.DataFrame] = None,
    breakdowns: Sequence[str] = ("segment", "kind", "channel"),
    title: str = "perkrec campaign report",
    reason_sample: int = 100_000,
    seed: int = 0,
) -> str:
    """One self-contained HTML page for ``plan`` (a ``perkrec.Plan``); returns the HTML and
    writes it to ``path`` when given (written whole: a temporary file renamed into place).

    Optional inputs, each adding its section: ``experiment`` (the frame ``analyze_experiment``
    returns), ``offline`` (the frame ``Plan.evaluate_offline`` returns), ``uplift`` (a mapping
    with arrays ``y``, ``uplift``, ``treatment`` and optionally ``value`` and ``cost`` of a
    held-out experiment), ``segments`` (``PreferenceModel.segments()`` or one segment label per
    member), ``interests`` (a fitted ``InterestModel`` or a sequence of them: each segment's
    categories / brands of highest mean interest lift, or the population's largest shares
    without ``segments``), ``clv_fields`` (``CLVModel.member_fields(...)``: the section "value
    by segment and lifecycle stage", see ``value_by_stage``). ``breakdowns``: plan columns to
    break the expected figures down by (those the
    plan's frame lacks are skipped).
    """
    from .plan import Plan

    if not isinstance(plan, Plan):
        raise _core.InputError(
            f"campaign_report: plan must be a perkrec.Plan (got {type(plan).__name__})"
        )
    if isinstance(breakdowns, str):
        breakdowns = [breakdowns]
    if int(reason_sample) < 1:
        raise _core.InputError(f"campaign_report: reason_sample must be >= 1 (got {reason_sample})")
    f = plan.frame
    when = ""
    if "send_at" in f.columns and len(f):
        when = f" · sends {pd.Timestamp(f['send_at'].min()):%Y-%m-%d} to {pd.Timestamp(f['send_at'].max()):%Y-%m-%d}"
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="note">Planner method: {html.escape(plan.method or "–")}{html.escape(when)}. '
        "Expected figures are the plan's own model estimates.</p>",
        _plan_cards(plan),
        "<h2>Where the budget goes</h2>"
        + (_breakdowns(plan, breakdowns) or "<p>No breakdown column.</p>"),
        _pacing(plan),
        _reasons(plan, int(reason_sample), int(seed)),
        _segments(segments),
        _interests(interests, segments),
        _value_section(plan, clv_fields, segments),
        _offline(offline),
        _experiment(experiment),
        _uplift(uplift),
    ]
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        + "".join(s for s in sections if s)
        + "</body></html>\n"
    )
    if path is not None:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(path)
    return page
