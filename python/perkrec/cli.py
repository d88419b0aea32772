"""perkrec's command line: from a program's files to a fitted pipeline, a plan, its report and
its evaluation ('perkrec COMMAND --help' teaches the file formats).

    perkrec simulate --members 2000 --out program          # a simulated program's files to try it on
    perkrec validate --events events.csv --catalog catalog.csv --users users.csv --policy policy.json
    perkrec fit      --events events.csv --catalog catalog.csv --users users.csv --policy policy.json \\
                     --out pipeline.perkrec
    perkrec plan     --model pipeline.perkrec --at 2026-07-01 --out plan.csv --report report.html
    perkrec plan     --events events.csv --catalog catalog.csv --users users.csv --policy policy.json \\
                     --out plan.parquet                      # fit, then plan, in one command
    perkrec evaluate --plan plan.csv --events log.csv --catalog catalog.csv --policy policy.json

Plumbing only: the files are read and checked by :mod:`perkrec.validate`, the pipeline is
:class:`perkrec.BenefitPlanner`, the estimates are :meth:`perkrec.Plan.evaluate_offline` and
:func:`perkrec.analyze_experiment`. Exit codes: 0 done, 2 bad input (every problem printed as
FILE:ROW:COLUMN: message on stdout), 1 an unexpected failure. Output files are written whole (a
temporary file renamed into place), so a failed command leaves none behind.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

PLAN_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl"}
# Columns a plan file must have for ``perkrec evaluate``.
PLAN_COLUMNS = ("member", "benefit", "probability", "value", "cost")

_FILES = """File formats (CSV, or Parquet by the .parquet / .pq extension; extra columns are kept or ignored):
  events   user, benefit, event_type, timestamp  [channel, order_amount, propensity, control]
           event_type: issued | viewed | claimed | redeemed | expired | ordered
           timestamp: epoch seconds, or a date / datetime ("2026-03-01", "2026-03-01 12:00",
           "2026-03-01T12:00:00+01:00"); naive = UTC; one format per column
           benefit: may be empty only on 'ordered' events; order_amount required (>= 0) on
           'ordered' and 'redeemed' events; propensity in (0, 1] on every row (the logging
           policy's probability of an issue; 1 on other events); control: 1 for members of the
           random control group
  catalog  id  [kind, discount ("150:20" spend 150 get 20, "0.9" or "15%" percent off, "fixed"),
           face_value, cost, threshold, validity_days, scope, scope_value, channel, inventory,
           scenarios, tags]; scenarios and tags '|'-separated ("spring|app-only"); any other
           column (brand, category, campaign) is a free attribute
  users    user  [any attribute columns: numbers, booleans, text, datetimes]
  behavior user, item, timestamp  [action, quantity, amount, basket]: what members bought and
           browsed (action: purchase, view, cart, ... any names; default purchase); rows of
           members the events do not know are dropped and counted
  items    item  [any hierarchy / attribute columns: department, category, brand, ...]
  benefit_items  benefit, item: the items each benefit applies to (a coupon's products)
  policy   JSON object; every key optional (README "Policy"), unknown keys are errors:
           {"budget": 5000, "issue_cost": 0.05, "max_per_member": 1,
            "quiet_hours": {"start_hour": 22, "end_hour": 8},
            "rules": [{"name": "perks for gold", "effect": "require",
                       "benefits": {"kinds": ["member_exclusive"]},
                       "members": {"attributes": [{"column": "tier", "op": "in", "value": ["gold"]}]}}]}

Example rows:
  events.csv   user,benefit,event_type,timestamp,channel,order_amount,propensity,control
               17,B03,issued,2026-03-01 09:00:00,email,,0.25,0
               17,B03,redeemed,2026-03-04 18:12:00,email,42.5,1,0
               17,,ordered,2026-03-04 18:12:00,store,42.5,1,0
  catalog.csv  id,kind,discount,face_value,cost,validity_days,channel
               B03,threshold_discount,150:20,20,20,14,email
  users.csv    user,tier,signup_time
               17,gold,2024-05-02

Problems are printed as FILE:ROW:COLUMN: message (rows as a spreadsheet numbers them: the header
of a CSV is row 1; the policy's column is the JSON pointer), exit code 2.
"""

_MODEL_PARAMS = """Model parameters (--param key=value, values read as JSON, else as text; or --params FILE.json
with an object), those of perkrec.BenefitPlanner: factors, epochs, reg_linear, reg_factors,
learning_rate, early_stopping, early_stopping_rounds, fm_threads, weighting (ipw | none; 'ipw'
needs a propensity column), shrink, pooled, preference_offset, incremental (timing | control;
'control' needs a control column), margin, preference_params, objective, top_k, method, seed, num_threads.
"""


# --- small helpers -----------------------------------------------------------------------------
class _Fail(Exception):
    """A bad input the command reports (exit code 2): ``lines`` go to stdout (problems), the
    message to stderr."""

    def __init__(self, message: str, lines: Sequence[str] = ()):
        super().__init__(message)
        self.lines = list(lines)


class _Steps:
    """A command's steps on stderr, one line each (``perkrec fit [2/3] fitting ...``), with the
    fits' own progress bars beneath them; nothing when ``show`` is false."""

    def __init__(self, command: str, total: int, show: bool):
        import time

        self.command, self.total, self.done = command, total, 0
        self.stream = sys.stderr if show else None
        self.started = time.monotonic()

    def _line(self, text: str) -> None:
        # \r and clear-to-end: a bar a fit left unfinished (early stopping) does not show through.
        self.stream.write(f"\r\x1b[K{text}\n")
        self.stream.flush()

    def __call__(self, label: str) -> None:
        self.done += 1
        if self.stream is not None:
            self._line(f"perkrec {self.command} [{self.done}/{self.total}] {label}")

    def finish(self) -> None:
        import time

        if self.stream is not None:
            self._line(f"perkrec {self.command}: done in {time.monotonic() - self.started:.1f} s")

    @property
    def callback(self):
        """The progress bar a fit draws its own stages with (None when hidden)."""
        if self.stream is None:
            return None
        from ._progress import ProgressBar

        return ProgressBar(stream=self.stream)


def _show_progress(args) -> bool:
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def _output(path: str, what: str, allowed: Optional[Dict[str, str]]) -> Path:
    """The output path, its format (``allowed`` extensions; None: any) and folder checked before any work."""
    out = Path(path)
    if allowed is not None and out.suffix.lower() not in allowed:
        raise _Fail(f"{what} {out}: unknown format {out.suffix!r} (use one of {sorted(allowed)})")
    if not out.parent.exists():
        raise _Fail(f"{what} {out}: no such folder {out.parent}")
    return out


class _Outputs:
    """Files written to temporaries first and renamed into place together when the ``with``
    block ends without an error (the temporaries are removed either way)."""

    def __init__(self):
        self.pending: List[tuple] = []

    def __enter__(self) -> "_Outputs":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.commit()
        finally:
            self.discard()

    def temp(self, path: Path) -> Path:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self.pending.append((tmp, path))
        return tmp

    def commit(self) -> None:
        for tmp, path in self.pending:
            os.replace(tmp, path)
        self.pending = []

    def discard(self) -> None:
        for tmp, _ in self.pending:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass
        self.pending = []


def _time_arg(value: Optional[str], name: str):
    """A time given on the command line: epoch seconds or a date / datetime (naive = UTC)."""
    from ._util import time_seconds

    if value is None:
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        number = None
    return time_seconds(
        number if number is not None else text, name
    )  # InputError naming the option


def _model_params(args) -> dict:
    """--params FILE and --param key=value (the latter win), checked against BenefitPlanner."""
    from .pipeline import BenefitPlanner

    params: dict = {}
    if args.params:
        try:
            text = Path(args.params).read_text(encoding="utf-8")
        except OSError as exc:
            raise _Fail(f"{args.params}: cannot be read ({exc.strerror or exc})") from None
        try:
            params = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _Fail(f"{args.params}:{exc.lineno}:{exc.colno}: not JSON ({exc.msg})") from None
        if not isinstance(params, dict):
            raise _Fail(
                f"{args.params}: expected a JSON object of model parameters (got {type(params).__name__})"
            )
    for item in args.param or ():
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise _Fail(f"--param {item!r}: expected key=value")
        try:
            params[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip()] = raw
    known = [
        name
        for name, p in inspect.signature(BenefitPlanner).parameters.items()
        if p.kind == p.KEYWORD_ONLY
    ]
    if getattr(args, "threads", None) is not None:
        params.setdefault("num_threads", args.threads)
    unknown = sorted(set(params) - set(known))
    if unknown:
        where = f"{args.params}: " if args.params else ""
        raise _Fail(f"{where}unknown model parameter(s) {unknown} (known: {', '.join(known)})")
    return params


def _load(args, steps: Optional[_Steps] = None, need=("events", "catalog")):
    """The input files loaded and checked (every problem listed on failure)."""
    from .validate import FileProblems, load_files

    missing = [f"--{name}" for name in need if not getattr(args, name, None)]
    if missing:
        raise _Fail(f"missing {', '.join(missing)}")
    if steps is not None:
        steps("reading and checking the files")
    try:
        return load_files(
            events=args.events,
            catalog=args.catalog,
            users=getattr(args, "users", None),
            policy=getattr(args, "policy", None),
            catalog_id=args.catalog_id,
            user_id=args.user_id,
            max_per_kind=args.max_per_kind,
        )
    except FileProblems as exc:
        raise _Fail(
            f"{len(exc.problems)} problem(s) in the input files", [str(p) for p in exc.problems]
        ) from None


def _fit(args, steps: _Steps):
    """A fitted BenefitPlanner from the input files (fit and the one-command plan)."""
    from .pipeline import BenefitPlanner

    params = _model_params(args)
    cut = _time_arg(args.cut_time, "--cut-time")
    files = _load(args, steps, need=("events", "catalog", "policy"))
    behavior = _behavior_inputs(args, files.events, files.catalog)
    planner = BenefitPlanner(files.policy, **params)  # ConfigError naming the field, before fitting
    steps("fitting the redemption model and the preference model")
    return planner.fit(
        files.events,
        files.catalog,
        files.users,
        cut_time=cut,
        behavior=behavior,
        progress=steps.callback,
    )


def _behavior_log(path, events, items):
    """The behaviour file as a BehaviorLog indexed by the event log's members."""
    from .behavior import BehaviorLog

    def build(frame):
        optional = {
            c: c if c in frame.columns else None for c in ("action", "quantity", "amount", "basket")
        }
        return BehaviorLog.from_frame(
            frame,
            user_ids=events,
            items=items,
            user="user",
            item="item",
            time="timestamp",
            **optional,
        )

    return _from_file(path, build)


def _from_file(path, build):
    """build(the table at path); a perkrec error reported as a bad input naming the file."""
    from . import Error
    from .validate import read_table

    try:
        return build(read_table(path))
    except Error as exc:
        raise _Fail(f"{path}: {exc}") from None


def _behavior_inputs(args, events, catalog):
    """(BehaviorLog, ItemCatalog, BenefitItems) from --behavior, --items, --benefit-items, or
    None when none is given (all three or none)."""
    from .behavior import BenefitItems, ItemCatalog

    given = {name: getattr(args, name) for name in ("behavior", "items", "benefit_items")}
    if not any(given.values()):
        return None
    missing = [f"--{k.replace('_', '-')}" for k, v in given.items() if not v]
    if missing:
        raise _Fail(
            f"--behavior, --items and --benefit-items go together (missing {', '.join(missing)})"
        )
    items = _from_file(args.items, lambda f: ItemCatalog.from_frame(f, id="item"))
    applies = _from_file(
        args.benefit_items,
        lambda f: BenefitItems.from_frame(
            f, catalog=catalog, items=items, benefit="benefit", item="item"
        ),
    )
    return _behavior_log(args.behavior, events, items), items, applies


# --- commands ----------------------------------------------------------------------------------
def _cmd_validate(args) -> int:
    from .validate import summarize

    if not any((args.events, args.catalog, args.users, args.policy)):
        raise _Fail("give at least one of --events, --catalog, --users, --policy")
    behavior_given = any((args.behavior, args.items, args.benefit_items))
    files = _load(args, need=("events", "catalog") if behavior_given else ())
    print(summarize([args.catalog, args.users, args.events]))
    behavior = _behavior_inputs(args, files.events, files.catalog)
    if behavior is not None:
        log, items, applies = behavior
        print(summarize([args.behavior, args.items, args.benefit_items]))
        print(
            f"{args.behavior}: {len(log):,} events of {log.n_users:,} members kept, "
            f"{log.unknown_users:,} rows of members the events lack and {log.unknown_items:,} rows "
            f"of unknown items dropped; actions {', '.join(log.action_names)}"
        )
        print(
            f"{args.benefit_items}: {len(applies):,} (benefit, item) pairs, "
            f"{applies.unknown_items:,} naming unknown items dropped"
        )
    print("perkrec validate: no problems")
    return 0


def _cmd_fit(args) -> int:
    out = _output(args.out, "--out", None)
    steps = _Steps("fit", 3, _show_progress(args))
    planner = _fit(args, steps)
    steps("writing the model file")
    with _Outputs() as outputs:
        planner.save(outputs.temp(out))
    steps.finish()
    print(f"perkrec fit: {planner!r} -> {out}")
    return 0


def _cmd_plan(args) -> int:
    from .pipeline import BenefitPlanner

    out = _output(args.out, "--out", PLAN_FORMATS)
    report = (
        _output(args.report, "--report", {".html": "html", ".htm": "html"}) if args.report else None
    )
    inputs = [
        name
        for name in (
            "events",
            "catalog",
            "users",
            "policy",
            "cut_time",
            "params",
            "param",
            "items",
            "benefit_items",
        )
        if getattr(args, name)
    ]
    if args.model and inputs:
        raise _Fail(
            f"give --model or the input files (--events, --catalog, --policy, ...), not both "
            f"(got --model and --{inputs[0].replace('_', '-')})"
        )
    if not args.model and not args.events:
        raise _Fail(
            "give --model FILE (from perkrec fit) or the input files --events, --catalog, --policy"
        )
    at = _time_arg(args.at, "--at")
    steps = _Steps("plan", 3 if args.model else 4, _show_progress(args))
    newer = None
    if args.model:
        steps("reading the model file")
        planner = BenefitPlanner.load(args.model)
        if args.behavior:  # a newer behaviour log of the model's items and members
            if planner.behavior is None:
                raise _Fail(f"--behavior: {args.model} was fitted without behaviour")
            newer = _behavior_log(args.behavior, planner.events, planner.behavior[1])
    else:
        planner = _fit(args, steps)
    steps("planning")
    plan = planner.plan(at=at, budget=args.budget, behavior=newer)
    steps("writing the plan")
    with _Outputs() as outputs:
        write_plan(plan, outputs.temp(out), _plan_format(out))
        if report is not None:
            plan.report(
                outputs.temp(report),
                segments=planner.preference.segments(),
                title=f"perkrec campaign report — plan at {_when(planner, at)}",
            )
    steps.finish()
    print(f"perkrec plan: {plan!r}")
    print(f"perkrec plan: wrote {out}" + (f" and {report}" if report is not None else ""))
    return 0


def _when(planner, at) -> str:
    import pandas as pd

    t = planner.end_time if at is None else pd.Timestamp(at, unit="s", tz="UTC")
    return f"{t:%Y-%m-%d %H:%M} UTC"


def _cmd_evaluate(args) -> int:
    from . import InputError
    from .causal import analyze_experiment, experiment_table

    out = _output(args.out, "--out", {".json": "json"}) if args.out else None
    report = (
        _output(args.report, "--report", {".html": "html", ".htm": "html"}) if args.report else None
    )
    since, until = _time_arg(args.since, "--since"), _time_arg(args.until, "--until")
    steps = _Steps("evaluate", 3, _show_progress(args))
    files = _load(args, steps)
    log, catalog = files.events, files.catalog
    if not (log.has_propensity or log.has_control):
        raise _Fail(
            f"{args.events}: the log has neither logged propensities (a propensity column, for the plan's "
            f"offline estimate) nor a control group (a control column, for the experiment)"
        )
    issue_cost = files.policy.issue_cost if files.policy is not None else 0.0
    plan = read_plan(args.plan, catalog, issue_cost=issue_cost, max_per_kind=args.max_per_kind)
    result: dict = {
        "plan": str(args.plan),
        "events": str(args.events),
        "issue_cost": issue_cost,
        "since": since,
        "until": until,
    }
    steps("estimating the plan's value from the logged propensities")
    offline, why_not = None, "the log has no logged propensities"
    if log.has_propensity:
        try:
            offline = plan.evaluate_offline(
                log,
                catalog,
                since=since,
                until=until,
                estimator=args.estimator,
                confidence=args.confidence,
                num_threads=args.threads,
            )
        except InputError as exc:  # e.g. the log never issued the plan's pairs in the window
            if not log.has_control:
                raise
            why_not = str(exc)
            result["offline_error"] = why_not
    if offline is not None:
        result["offline"] = {
            "estimator": args.estimator,
            "confidence": args.confidence,
            **{k: _plain(v) for k, v in offline.attrs.items()},
            "metrics": {
                m: {k: _plain(v) for k, v in row.items()}
                for m, row in offline.to_dict(orient="index").items()
            },
        }
    steps("the experiment: control group against members issued benefits")
    if log.has_control:
        members = experiment_table(log, catalog, since=since, until=until, issue_cost=issue_cost)
        pre = (
            {m: f"{m}_pre" for m in ("orders", "revenue")}
            if "orders_pre" in members.columns
            else None
        )
        experiment = analyze_experiment(
            members,
            arm="arm",
            metrics=["orders", "revenue"],
            cost="cost",
            pre_period=pre,
            control="control",
            confidence=args.confidence,
            num_threads=args.threads,
        )
        result["experiment"] = [
            {k: _plain(v) for k, v in row.items()} for row in experiment.to_dict("records")
        ]
    else:
        experiment = None
    steps.finish()
    _print_evaluation(plan, offline, why_not, experiment, args)
    with _Outputs() as outputs:
        if out is not None:
            outputs.temp(out).write_text(
                json.dumps(result, indent=2, allow_nan=False) + "\n", encoding="utf-8"
            )
        if report is not None:
            plan.report(
                outputs.temp(report),
                offline=offline,
                experiment=experiment,
                title=f"perkrec campaign report — {Path(args.plan).name} on {Path(args.events).name}",
            )
    for path in (out, report):
        if path is not None:
            print(f"perkrec evaluate: wrote {path}")
    return 0


def _plain(value):
    import math

    import numpy as np

    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _print_evaluation(plan, offline, why_not: str, experiment, args) -> None:
    import pandas as pd

    with pd.option_context(
        "display.width", 160, "display.max_columns", 20, "display.float_format", "{:,.4g}".format
    ):
        print(
            f"plan {args.plan}: {len(plan.frame):,} benefits to {plan.frame['member'].nunique():,} members, "
            f"expected cost {plan.expected_cost:,.2f}, expected return {plan.expected_return:,.2f}"
        )
        if offline is not None:
            a = offline.attrs
            print(
                f"\nOff-policy estimate ({args.estimator.upper()}, {args.confidence:.0%} interval) from "
                f"{a['decisions']:,} logged decisions covering {a['covered_pairs']:,} of the plan's "
                f"{a['pairs']:,} pairs (effective sample size {a['effective_sample_size']:,.1f}):"
            )
            print(offline.to_string())
        else:
            print(f"\nNo off-policy estimate: {why_not}.")
        if experiment is not None:
            print(
                "\nExperiment: members issued benefits against the random control group, per member:"
            )
            cols = [
                "control_mean",
                "arm_mean",
                "lift",
                "lower",
                "upper",
                "relative_lift",
                "p_value",
                "roi",
            ]
            print(experiment.set_index(["arm", "metric"])[cols].to_string())
        else:
            print("\nNo experiment: the log has no control group.")


# --- plan files --------------------------------------------------------------------------------
def write_plan(plan, path, format: Optional[str] = None) -> None:
    """Writes ``plan.frame`` as ``format`` ("parquet", "csv" or "jsonl"; default: by
    ``path``'s extension, ``.parquet``/``.pq``, ``.csv``, ``.jsonl``); CSV times are ISO 8601
    with the UTC offset."""
    kind = format or _plan_format(path)
    if kind == "parquet":
        plan.frame.to_parquet(path, index=False)
    elif kind == "csv":
        plan.frame.to_csv(path, index=False)
    elif kind == "jsonl":
        plan.to_jsonl(path)
    else:
        raise _Fail(
            f"{path}: unknown plan format {kind!r} (use one of {sorted(set(PLAN_FORMATS.values()))})"
        )


def _plan_format(path) -> str:
    kind = PLAN_FORMATS.get(Path(path).suffix.lower())
    if kind is None:
        raise _Fail(f"{path}: unknown plan format (use one of {sorted(PLAN_FORMATS)})")
    return kind


def read_plan(path, catalog, *, issue_cost: float = 0.0, max_per_kind: int = 20):
    """A plan file written by ``perkrec plan`` (or any table with the columns member, benefit,
    probability, value, cost) as a :class:`perkrec.Plan` over ``catalog``: benefit indices are
    looked up by benefit id, so the catalog may list benefits in another order. Problems
    (missing columns, missing member or benefit ids, benefits not in the catalog, values that
    are not finite numbers) are listed with file, row and column (exit code 2)."""
    import numpy as np
    import pandas as pd

    from .plan import Plan
    from .validate import _Collector, id_text, read_table

    path = Path(path)
    kind = _plan_format(path)
    try:
        if kind == "jsonl":
            frame = pd.read_json(
                path, lines=True, dtype=False, precise_float=True
            )  # values as the JSON has them
        else:
            frame = read_table(path)
    except FileNotFoundError:
        raise _Fail(f"{path}: no such file") from None
    except (ValueError, OSError) as exc:  # perkrec's InputError is a ValueError
        raise _Fail(f"{path}: cannot be read as a plan ({exc})") from None
    name, first = str(path), 1 if kind != "csv" else 2
    c = _Collector(max_per_kind)
    for col in PLAN_COLUMNS:
        if col not in frame.columns:
            c.add(name, None, col, f"missing column (have {list(frame.columns)})")
    if not c.problems:
        c.rows(
            name,
            frame,
            frame["member"].isna().to_numpy(),
            "member",
            lambda v: "missing member id",
            first,
        )
        present = frame["benefit"].notna().to_numpy()
        c.rows(name, frame, ~present, "benefit", lambda v: "missing benefit id", first)
        index = np.full(len(frame), -1, dtype=np.int64)
        if present.any():
            index[present] = catalog.ids.lookup(
                id_text(frame["benefit"][present]).to_numpy(dtype=object), missing="minus_one"
            )
        c.rows(
            name,
            frame,
            present & (index < 0),
            "benefit",
            lambda v: f"benefit {v!r} is not in the catalog",
            first,
        )
        for col in ("probability", "value", "cost"):
            values = pd.to_numeric(frame[col], errors="coerce").to_numpy(np.float64)
            c.rows(
                name,
                frame,
                ~np.isfinite(values),
                col,
                lambda v: f"not a finite number {v!r}",
                first,
            )
    if c.problems:
        raise _Fail(f"{len(c.problems)} problem(s) in the plan file", [str(p) for p in c.problems])
    frame = frame.copy()
    frame["benefit_index"] = np.asarray(index, dtype=np.int64)
    if "member_index" not in frame.columns:
        frame["member_index"] = pd.factorize(frame["member"])[0]
    for col in ("probability", "value", "cost"):
        frame[col] = pd.to_numeric(frame[col]).astype(np.float64)
    for col in ("send_at", "valid_until"):
        if col in frame.columns:
            frame[col] = pd.to_datetime(frame[col], utc=True, errors="coerce")
    if "reasons" in frame.columns:  # JSON lines nest them; the frame holds JSON text
        frame["reasons"] = frame["reasons"].map(
            lambda r: json.dumps(r) if isinstance(r, (dict, list)) else r
        )
    return Plan(frame, issue_cost=float(issue_cost), method="file")


# --- the parser --------------------------------------------------------------------------------
def _input_options(p: argparse.ArgumentParser, required: bool, policy: bool = True) -> None:
    g = p.add_argument_group("input files (CSV or Parquet; see the formats above)")
    g.add_argument("--events", required=required, metavar="FILE", help="event log")
    g.add_argument("--catalog", required=required, metavar="FILE", help="benefit catalog")
    g.add_argument("--users", metavar="FILE", help="member table (optional)")
    if policy:
        g.add_argument("--policy", metavar="FILE.json", help="policy (JSON)")
    g.add_argument("--catalog-id", default="id", help="the catalog's id column (default id)")
    g.add_argument("--user-id", default="user", help="the member table's id column (default user)")
    g.add_argument(
        "--max-per-kind",
        type=int,
        default=20,
        help="rows listed per kind of problem before '... and N more' (default 20)",
    )


def _behavior_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("what members buy and browse (optional; CSV or Parquet)")
    g.add_argument(
        "--behavior",
        metavar="FILE",
        help="behaviour events (with --items and --benefit-items; with --model: a newer log)",
    )
    g.add_argument("--items", metavar="FILE", help="the items of --behavior and their hierarchy")
    g.add_argument(
        "--benefit-items", metavar="FILE", help="the items each benefit applies to (benefit, item)"
    )


def _fit_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("fitting")
    g.add_argument(
        "--cut-time",
        metavar="TIME",
        help="the redemption model learns from the events before it (default: the log's last 30 days are "
        "held out for early stopping and the shrinkage)",
    )
    g.add_argument(
        "--param", action="append", metavar="KEY=VALUE", help="a model parameter (repeatable)"
    )
    g.add_argument("--params", metavar="FILE.json", help="model parameters as a JSON object")
    g.add_argument("--threads", type=int, default=None, help="threads (default 0 = all cores)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar (none is drawn when stderr is not a terminal)",
    )


def _command(
    sub, name: str, summary: str, intro: str, sections: Sequence[str], examples: Sequence[str]
):
    """A subcommand whose --help is the intro (wrapped), the format sections and the examples."""
    import textwrap

    text = textwrap.fill(intro, 100) + "\n\n" + "\n".join(sections)
    text += "\nExamples:\n" if len(examples) > 1 else "\nExample:\n"
    text += "\n".join("  " + e.replace("\n", "\n  ") for e in examples)
    return sub.add_parser(
        name, help=summary, description=text, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="perkrec",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"perkrec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="simulate a program and report the baseline end to end")
    demo.add_argument(
        "--members", type=int, default=20000, help="simulated members (default 20000)"
    )
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument(
        "--out", default="perkrec-demo", help="folder for the tables (default ./perkrec-demo)"
    )
    demo.add_argument("--threads", type=int, default=0, help="0 = all cores")
    demo.add_argument("--progress", action="store_true", help="show a progress bar")

    sim = _command(
        sub,
        "simulate",
        "write a simulated program's files (events, catalog, users CSV and a policy) to try the commands on",
        "Writes FOLDER/events.csv, catalog.csv, users.csv and policy.json: a simulated loyalty program in "
        "the formats the other commands read.",
        (),
        [
            "perkrec simulate --members 2000 --out program",
            "perkrec plan --events program/events.csv --catalog program/catalog.csv \\\n"
            "    --users program/users.csv --policy program/policy.json --out plan.csv",
        ],
    )
    sim.add_argument("--members", type=int, default=5000, help="simulated members (default 5000)")
    sim.add_argument(
        "--days", type=int, default=None, help="simulated days (default: the simulator's)"
    )
    sim.add_argument("--seed", type=int, default=42)
    sim.add_argument(
        "--out", required=True, metavar="FOLDER", help="folder for the files (created)"
    )
    sim.add_argument("--threads", type=int, default=0, help="0 = all cores")
    sim.add_argument(
        "--behavior",
        action="store_true",
        help="also what members buy and browse: behavior.csv, items.csv, benefit_items.csv",
    )

    validate = _command(
        sub,
        "validate",
        "check input files; print every problem with its file, row and column (exit code 2)",
        "Checks a program's files the way perkrec's loaders read them, on every row, and prints each problem as "
        "FILE:ROW:COLUMN: message. Exit code 0 when every file loads, 2 when anything is wrong.",
        (_FILES,),
        [
            "perkrec validate --events events.csv --catalog catalog.csv --users users.csv --policy policy.json",
            "perkrec validate --events events.csv --catalog catalog.csv --behavior behavior.csv --items items.csv \\\n"
            "    --benefit-items benefit_items.csv",
        ],
    )
    _input_options(validate, required=False)
    _behavior_options(validate)

    fit = _command(
        sub,
        "fit",
        "fit the planning pipeline (perkrec.BenefitPlanner) on files; one model file",
        "Reads and checks the files (as perkrec validate), fits a perkrec.BenefitPlanner (the redemption model, the "
        "preference model, order values) and writes it as one model file, which perkrec plan --model plans from.",
        (_FILES, _MODEL_PARAMS),
        [
            "perkrec fit --events events.csv --catalog catalog.csv --users users.csv --policy policy.json \\\n"
            "    --param factors=16 --out pipeline.perkrec",
            "perkrec fit --events events.csv --catalog catalog.csv --policy policy.json --behavior behavior.csv \\\n"
            "    --items items.csv --benefit-items benefit_items.csv --out pipeline.perkrec",
        ],
    )
    _input_options(fit, required=True)
    _behavior_options(fit)
    _fit_options(fit)
    fit.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="the model file to write (e.g. pipeline.perkrec)",
    )
    _common(fit)

    plan = _command(
        sub,
        "plan",
        "a budgeted plan from a model file, or from the input files in one command",
        "Plans who gets which benefit at --at under the policy's rules and budget, from a model file (perkrec fit) "
        "or, given the input files instead, fits first: files to a plan in one command. The plan is written as "
        "Parquet, CSV or JSON lines by --out's extension: one row per issued benefit with member, benefit, kind, "
        "segment, probability, value (expected return), cost (expected), net, send_at, validity_days, valid_until, "
        "reasons.",
        (_FILES, _MODEL_PARAMS),
        [
            "perkrec plan --model pipeline.perkrec --at 2026-07-01 --out plan.parquet --report report.html",
            "perkrec plan --model pipeline.perkrec --behavior behavior-july.csv --out plan.csv   # newer behaviour",
            "perkrec plan --events events.csv --catalog catalog.csv --users users.csv --policy policy.json \\\n"
            '    --at "2026-07-01 08:00" --budget 2500 --out plan.csv',
        ],
    )
    plan.add_argument("--model", metavar="FILE", help="a model file written by perkrec fit")
    _input_options(plan, required=False)
    _behavior_options(plan)
    _fit_options(plan)
    plan.add_argument(
        "--at",
        metavar="TIME",
        help="plan time: epoch seconds or a date / datetime, naive = UTC "
        "(default: the log's last event)",
    )
    plan.add_argument(
        "--budget", type=float, help="budget on expected cost (default: the policy's)"
    )
    plan.add_argument(
        "--out", required=True, metavar="FILE", help="plan.parquet, plan.csv or plan.jsonl"
    )
    plan.add_argument(
        "--report", metavar="FILE.html", help="also write the campaign report (one HTML page)"
    )
    _common(plan)

    ev = _command(
        sub,
        "evaluate",
        "a plan's value estimated off-policy from a log, and the log's experiment (control group)",
        "Values a plan file (perkrec plan) on a log with logged propensities (perkrec.Plan.evaluate_offline: the "
        "plan's redemptions, cost and return as if it had issued its benefits in the log's period, with intervals) "
        "and, when the log has a control column, reads the log as an experiment: members issued benefits against "
        "the random control group on orders and revenue per member (CUPED on the period of the same length before "
        "--since), with intervals and the return on benefit cost. --policy gives the cost of each issue "
        "(issue_cost; default 0).",
        (_FILES,),
        [
            "perkrec evaluate --plan plan.csv --events log.csv --catalog catalog.csv --policy policy.json \\\n"
            "    --since 2026-06-01 --estimator snips --out evaluation.json"
        ],
    )
    ev.add_argument(
        "--plan", required=True, metavar="FILE", help="plan file (.parquet, .csv or .jsonl)"
    )
    _input_options(ev, required=True)
    ev.add_argument(
        "--since", metavar="TIME", help="first issue time to use (default: the log's start)"
    )
    ev.add_argument(
        "--until", metavar="TIME", help="issues before this time (default: to the log's end)"
    )
    ev.add_argument(
        "--estimator",
        choices=("snips", "ips"),
        default="snips",
        help="off-policy estimator (default snips)",
    )
    ev.add_argument("--confidence", type=float, default=0.95, help="interval level (default 0.95)")
    ev.add_argument("--threads", type=int, default=0, help="0 = all cores")
    ev.add_argument("--out", metavar="FILE.json", help="also write the results as JSON")
    ev.add_argument(
        "--report",
        metavar="FILE.html",
        help="also write the campaign report with the plan, its off-policy value and the experiment",
    )
    _common(ev)
    return parser


def _cmd_demo(args) -> int:
    from .demo import run

    run(
        n_users=args.members,
        seed=args.seed,
        out_dir=args.out,
        num_threads=args.threads,
        progress=args.progress,
    )
    return 0


def _behavior_frames(program) -> dict:
    """A simulated program's behaviour as the files --behavior, --items and --benefit-items
    read (external member, item and benefit ids)."""
    import numpy as np
    import pandas as pd

    item_ids = np.asarray(program.items.items.ids)
    log = program.behavior.to_frame()
    log["user"] = np.asarray(program.events.user_ids.ids)[log["user"].to_numpy()]
    log["item"] = item_ids[log["item"].to_numpy()]
    items = program.items.to_frame().rename_axis("item").reset_index()
    offsets = program.benefit_items._impl.offsets()
    benefit_ids = np.asarray(program.catalog.ids.ids)
    pairs = pd.DataFrame(
        {
            "benefit": np.repeat(benefit_ids, np.diff(offsets)),
            "item": item_ids[program.benefit_items._impl.indices()],
        }
    )
    return {"behavior": log, "items": items, "benefit_items": pairs}


def _cmd_simulate(args) -> int:
    from .demo import demo_policy
    from .simulator import simulate

    out = Path(args.out)
    kwargs = {} if args.days is None else {"days": args.days}
    program = simulate(
        n_users=args.members,
        seed=args.seed,
        num_threads=args.threads,
        behavior=args.behavior,
        **kwargs,
    )
    out.mkdir(parents=True, exist_ok=True)
    with _Outputs() as outputs:
        program.events.to_frame().to_csv(outputs.temp(out / "events.csv"), index=False)
        catalog = program.catalog.to_frame()
        for col in ("scenarios", "tags"):  # list columns: '|'-separated in files
            catalog[col] = catalog[col].map("|".join)
        catalog.to_csv(outputs.temp(out / "catalog.csv"), index=False)
        program.users.to_frame().to_csv(outputs.temp(out / "users.csv"))
        outputs.temp(out / "policy.json").write_text(
            json.dumps(demo_policy(args.members), indent=2) + "\n"
        )
        written = "events.csv, catalog.csv, users.csv, policy.json"
        if args.behavior:
            for name, frame in _behavior_frames(program).items():
                frame.to_csv(outputs.temp(out / f"{name}.csv"), index=False)
            written += ", behavior.csv, items.csv, benefit_items.csv"
    start, end = program.events.time_range
    print(
        f"perkrec simulate: {args.members:,} members, {len(program.events):,} events from {start:%Y-%m-%d} to "
        f"{end:%Y-%m-%d}, {len(program.catalog)} benefits -> {out}/{written}"
    )
    return 0


_COMMANDS = {
    "demo": _cmd_demo,
    "simulate": _cmd_simulate,
    "validate": _cmd_validate,
    "fit": _cmd_fit,
    "plan": _cmd_plan,
    "evaluate": _cmd_evaluate,
}


def main(argv: Optional[List[str]] = None) -> int:
    """Runs one command; returns its exit code (0 done, 2 bad input)."""
    from . import Error

    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except _Fail as fail:
        for line in fail.lines:
            print(line)
        print(f"perkrec {args.command}: {fail}", file=sys.stderr)
        return 2
    except Error as exc:
        print(f"perkrec {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"perkrec {args.command}: interrupted", file=sys.stderr)
        return 130
