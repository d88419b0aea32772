"""The Python examples run as documented."""

import functools
import runpy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import perkrec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "python"


def test_quickstart_runs(capsys):
    runpy.run_path(str(EXAMPLES / "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "'ndcg'" in out and "benefit" in out


# --- README ----------------------------------------------------------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_python_blocks():
    import re

    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_quickstart_blocks_run(tmp_path, monkeypatch):
    """The README's notebook cell (a plan and its report in one cell) and its Python section
    (quick start, collaborative filtering, redemption models, your own data) run verbatim, on
    smaller simulated programs."""
    blocks = _readme_python_blocks()
    assert len(blocks) >= 5 and "BenefitPlanner" in blocks[0]
    code = (
        "\n".join(blocks[:5])
        .replace("n_users=20_000", "n_users=600")
        .replace("n_users=5000", "n_users=1500")
    )
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__readme__"}
    exec(compile(code, str(README), "exec"), namespace)
    page = (tmp_path / "campaign.html").read_text(encoding="utf-8")
    assert page.lower().startswith("<!doctype html>") and "budget" in page.lower()


def test_readme_constructor_keywords_exist():
    """Every ``perkrec.Name(keyword=...)`` in any README block names a real class or function
    and keywords its signature accepts (a stale ``FM(field_aware=True)`` fails here)."""
    import ast
    import inspect

    checked = 0
    for block in _readme_python_blocks():
        for node in ast.walk(ast.parse(block)):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "perkrec"
            ):
                continue
            target = getattr(perkrec, node.func.attr, None)
            assert target is not None, f"README uses perkrec.{node.func.attr}, which does not exist"
            try:
                params = inspect.signature(target).parameters
            except (TypeError, ValueError):
                continue
            if any(p.kind == p.VAR_KEYWORD for p in params.values()):
                continue
            for kw in node.keywords:
                if kw.arg is not None:
                    assert (
                        kw.arg in params
                    ), f"README: perkrec.{node.func.attr}({kw.arg}=...) is not accepted"
                    checked += 1
    assert checked > 10


def test_readme_command_line_block_runs(tmp_path, monkeypatch, capsys):
    """The README's "From files, one command" block runs verbatim (in-process: each
    ``perkrec ...`` line through perkrec.cli.main) and writes what it says."""
    import re
    import shlex

    from perkrec.cli import main

    text = README.read_text(encoding="utf-8")
    block = re.search(r"### From files, one command\n.*?```sh\n(.*?)```", text, flags=re.S).group(1)
    commands = [
        c.split("#")[0].strip() for c in block.replace("\\\n", " ").splitlines() if c.strip()
    ]
    assert [c.split()[1] for c in commands] == ["simulate", "validate", "plan", "evaluate"]
    monkeypatch.chdir(tmp_path)
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "perkrec"
        assert main(argv[1:]) == 0, (command, capsys.readouterr())
    assert (tmp_path / "plan.csv").stat().st_size > 0 and (
        tmp_path / "report.html"
    ).stat().st_size > 0
    assert "Off-policy estimate" in capsys.readouterr().out


# --- README blocks after the quick start: each runs verbatim on small, real inputs -----------
#
# A block that uses a name it does not define (``products``, ``cut``, ``P`` ...) reads it from
# README_INPUTS: one builder per name, each taking ``need`` (a function that builds another
# input, cached per case). The default inputs come from one small simulated program (400
# members, 180 days from 2026-01-01; ``cut`` 2026-05-01, ``plan_time`` 2026-06-30); a case may
# bind a name to another builder where the README means something else by it (``users`` is the
# member table in the planner blocks and the member index of held-out issues in the helpers').

_CUT = "2026-05-01"


@functools.lru_cache(maxsize=1)
def _program():
    return perkrec.simulate(n_users=400, seed=3)


def _held_out(need):
    """The issues at or after the cut (one row per issued benefit, with its logged propensity)."""
    program = _program()
    samples = perkrec.redemption_samples(program.events, program.catalog, program.users)
    held = samples[samples["timestamp"] >= need("cut").value // 10**9].reset_index(drop=True)
    held["propensity"] = program.events.propensities[held["event"].to_numpy()]
    return held


def _member_frame(need):
    """Per member: the control flag as arm (0 = control), redeemed after the cut, order revenue
    before and after the cut, and the cost of the benefits issued after the cut (2.0 each)."""
    events = _program().events.to_frame()
    after = events["timestamp"] >= need("cut")
    n = _program().events.n_users
    member = events["user"].to_numpy()

    def total(mask, values):
        return np.bincount(member[mask], weights=values[mask], minlength=n)

    amount = events["order_amount"].fillna(0).to_numpy(float)
    redeemed = (events["event_type"] == "redeemed").to_numpy()
    issued = (events["event_type"] == "issued").to_numpy()
    control = np.bincount(member, weights=events["control"].to_numpy(float), minlength=n) > 0
    return pd.DataFrame(
        {
            "arm": np.where(control, 0, 1),
            "redeemed": (total(after.to_numpy() & redeemed, np.ones(len(events))) > 0).astype(int),
            "revenue": total(after.to_numpy(), amount),
            "revenue_before": total(~after.to_numpy(), amount),
            "cost": total(after.to_numpy() & issued, np.full(len(events), 2.0)),
        }
    )


def _encoded(need):
    encoder = perkrec.FeatureEncoder()
    X = encoder.fit_transform(need("samples"), events=need("train"), catalog=need("catalog"))
    return encoder, X


def _products(need):
    return pd.DataFrame(
        {
            "product_id": [100 + i for i in range(12)],
            "category": ["dairy", "bakery", "meat", "drinks"] * 3,
            "brand": ["Acme", "Bolt", "Crux"] * 4,
            "price": [1.0 + i for i in range(12)],
        }
    )


def _basket_lines(need):
    """Two to five baskets per member over the first four months, the last line of each
    basket a page view: household_id (the log's member ids), product_id, timestamp, quantity,
    sales_value, basket_id, action."""
    rng = np.random.default_rng(7)
    members = need("log").user_ids.ids
    rows = []
    basket = 0
    for member in members:
        for _ in range(rng.integers(2, 6)):
            basket += 1
            when = pd.Timestamp("2026-01-05", tz="UTC") + pd.Timedelta(
                days=int(rng.integers(0, 120))
            )
            products = rng.choice(12, size=3, replace=False) + 100
            for k, product in enumerate(products):
                rows.append(
                    {
                        "household_id": member,
                        "product_id": int(product),
                        "timestamp": when,
                        "quantity": int(rng.integers(1, 4)),
                        "sales_value": float(rng.integers(1, 20)),
                        "basket_id": basket,
                        "action": "view" if k == 2 else "purchase",
                    }
                )
    return pd.DataFrame(rows)


def _coupon_products(need):
    """Each benefit of the catalog applies to two of the twelve products."""
    ids = need("catalog").ids.ids
    return pd.DataFrame(
        {
            "coupon_id": [b for b in ids for _ in range(2)],
            "product_id": [100 + (2 * i + k) % 12 for i in range(len(ids)) for k in range(2)],
        }
    )


def _issued(need):
    """The logged issues: redeemed or not, the logging policy's propensity, and a uniform
    target policy's."""
    held = need("held_out")
    return (
        held["label"].to_numpy(float),
        held["propensity"].to_numpy(float),
        np.full(len(held), 1.0 / len(need("catalog").ids.ids)),
    )


def _compiled(need):
    program = _program()
    return perkrec.Policy({"budget": 300, "max_per_member": 1}).compile(
        program.catalog,
        program.users,
        need("cut"),
        segments=need("pref").segments(),
        history=program.events,
    )


def _outcome_of(need):
    """Draws each issued row's redemption from the simulator's true P (a redemption log)."""
    truth = _program().truth.redemption_probability
    rng = np.random.default_rng(5)
    return lambda frame: (
        rng.random(len(frame))
        < truth[frame["member_index"].to_numpy(), frame["benefit_index"].to_numpy()]
    ).astype(int)


def _als(need):
    matrix = perkrec.interaction_matrix(need("log"), half_life_days=60)
    return perkrec.ALS(factors=8, iterations=3).fit(matrix)


README_INPUTS = {
    # modules a reader has imported in the README's earlier blocks
    "perkrec": lambda need: perkrec,
    "pd": lambda need: pd,
    # the simulated program and its pieces
    "program": lambda need: _program(),
    "log": lambda need: _program().events,
    "catalog": lambda need: _program().catalog,
    "users": lambda need: _program().users,  # the member table (UserTable)
    "cut": lambda need: pd.Timestamp(_CUT, tz="UTC"),
    "plan_time": lambda need: pd.Timestamp("2026-06-30", tz="UTC"),
    "policy_json_or_dict": lambda need: {"budget": 300, "max_per_member": 1},
    "train": lambda need: perkrec.split_by_time(need("log"), need("cut"))[0],
    "samples": lambda need: perkrec.redemption_samples(
        need("train"), need("catalog"), _program().users
    ),
    "encoder": lambda need: need("encoded")[0],
    "encoded": _encoded,
    "X": lambda need: need("encoded")[1],
    "fm": lambda need: perkrec.FM(factors=4, epochs=2, loss="logistic"),
    "y_samples": lambda need: need("samples")["label"],
    # members x benefits redemption probabilities: the simulator's truth
    "P": lambda need: _program().truth.redemption_probability,
    # members x benefits: the FM probabilities of a fitted BenefitPlanner
    "fm_probs": lambda need: perkrec.BenefitPlanner(need("policy_json_or_dict"))
    .fit(need("log"), need("catalog"), _program().users, cut_time=need("cut"))
    .inputs(need("plan_time"))
    .redemption_probability,
    "pref": lambda need: perkrec.PreferenceModel().fit(need("log"), need("catalog"), need("cut")),
    "model": lambda need: need("pref"),
    # behaviour data: products, basket lines, which products each benefit applies to
    "products": _products,
    "basket_lines": _basket_lines,
    "coupon_products": _coupon_products,
    # issues after the cut: member and benefit index, P at those pairs, redeemed or not
    "held_out": _held_out,
    "issue_users": lambda need: need("held_out")["user"].to_numpy(),
    "benefits": lambda need: need("held_out")["benefit"].to_numpy(),
    "redeemed": lambda need: need("held_out")["label"].to_numpy(),
    "predicted": lambda need: need("P")[need("issue_users"), need("benefits")],
    "held_out_propensity": lambda need: need("held_out")["propensity"].to_numpy(),
    "logged_propensity_samples": lambda need: _program().events.propensities[
        need("samples")["event"].to_numpy()
    ],
    # causal evaluation: one row per member (arm, outcomes) and one per logged issue
    "frame": _member_frame,
    "member_ids": lambda need: need("log").user_ids.ids,
    "y": lambda need: need("frame")["redeemed"].to_numpy(),
    "treatment": lambda need: need("frame")["arm"].to_numpy(),
    "uplift": lambda need: _program().truth.incremental_probability.mean(axis=1),
    "rewards": lambda need: _issued(need)[0],
    "logged_propensity": lambda need: _issued(need)[1],
    "target_propensity": lambda need: _issued(need)[2],
    # ranking: a compiled policy, an ALS model, per-member value and incremental share
    "compiled": _compiled,
    "als": _als,
    "margin": lambda need: perkrec.order_value(need("log"), margin=0.3),
    "uplift_share": lambda need: perkrec.incremental_share(need("pref"), need("catalog")),
    # a pilot wave's redemptions: a function of the issued plan rows
    "outcome_of": _outcome_of,
}


def _free_names(code):
    """Names a block reads before any line of it binds them (its inputs), in order of use."""
    import ast
    import builtins

    bound, free = set(), []
    for statement in ast.parse(code).body:
        for node in ast.walk(statement):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                if node.id not in bound and node.id not in free and not hasattr(builtins, node.id):
                    free.append(node.id)
        for node in ast.walk(statement):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                bound.add(node.id)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    return free


def _build_inputs(names, aliases, builders):
    """The named inputs, in order, each built once by ``builders`` (``aliases``: name -> builder
    name where they differ); a builder gets ``need``, which builds (once) another input."""
    built = {}

    def need(key):
        key = aliases.get(key, key)
        if key not in built:
            built[key] = builders[key](need)
        return built[key]

    return {key: need(key) for key in names}


def _check_behaviour(ns, inputs):
    assert ns["X"].shape[0] == len(inputs["samples"])
    assert len(ns["items"]) == len(inputs["products"]) and len(ns["interest"].top(n=3)) > 0


def _check_causal(ns, inputs):
    assert set(np.unique(ns["arm"])) <= {0, 1} and len(ns["arm"]) == len(inputs["member_ids"])
    assert ns["est"].lower <= ns["est"].value <= ns["est"].upper


def _check_clv(ns, inputs):
    assert {"p_alive", "clv", "lifecycle_stage"} <= set(ns["value"].columns)
    assert len(ns["fields"]) == len(ns["value"]) > 0
    fields = ns["fields"].reindex(inputs["program"].events.user_ids.ids)
    targeted = (fields["lifecycle_stage"] == "at_risk").to_numpy() & (
        fields["clv_percentile"].to_numpy() > 0.8
    )
    assert (ns["eligible"].any(axis=1) == targeted).all()
    assert ns["X"].shape[0] == len(ns["rows"]) > 0 and ns["rows"]["clv"].notna().any()


def _check_preference(ns, inputs):
    lower, upper = ns["lower"], ns["upper"]
    assert lower.shape == upper.shape == ns["model"].preferences().shape
    assert (np.asarray(lower) <= np.asarray(upper)).all()


def _check_plan(ns, inputs):
    assert isinstance(ns["plan"], perkrec.Plan) and len(ns["plan"].frame) > 0


def _check_plan_helpers(ns, inputs):
    assert ns["P"].shape == inputs["P"].shape and np.isfinite(ns["slope"])
    assert ns["S"].shape[0] == _program().events.n_users


def _check_pilot(ns, inputs):
    first, rest, pilot = ns["first"], ns["rest"], ns["pilot"]
    ids = inputs["log"].user_ids.ids
    assert len(first.frame) > 0 and len(rest.frame) > 0
    assert set(first.frame["member"]) <= set(ids[pilot])
    assert not set(rest.frame["member"]) & set(ids[pilot])
    assert rest.expected_cost <= ns["budget"] - ns["spent"] + 1e-6
    assert ns["level"].lower <= ns["level"].level <= ns["level"].upper


def _check_policy(ns, inputs):
    eligible = ns["compiled"].eligible_matrix()
    assert eligible.shape == (_program().events.n_users, len(_program().catalog.ids))


def _check_rank(ns, inputs):
    assert len(ns["diag"]) > 0 and len(ns["candidates"].benefit) > 0
    assert 0 < len(ns["allocation"].benefit) <= _program().events.n_users
    assert 0 < ns["allocation"].cost <= 300 + 1e-6  # the compiled policy's budget


# (id, a line of the block, its inputs in order of use -> builder names where they differ, check)
README_BLOCKS = [
    (
        "behaviour_data",
        "perkrec.ItemCatalog.from_frame(products",
        [
            "products",
            "perkrec",
            "basket_lines",
            "log",
            "coupon_products",
            "catalog",
            "samples",
            "pref",
        ],
        {},
        _check_behaviour,
    ),
    (
        "causal_evaluation",
        "perkrec.assign_holdout(member_ids",
        [
            "member_ids",
            "perkrec",
            "y",
            "uplift",
            "treatment",
            "rewards",
            "logged_propensity",
            "target_propensity",
            "frame",
        ],
        {},
        _check_causal,
    ),
    ("clv_model", "clv = perkrec.CLVModel(", ["cut", "program", "perkrec", "pd"], {}, _check_clv),
    (
        "preference_model",
        "model = perkrec.PreferenceModel().fit(program.events",
        ["cut", "program", "perkrec"],
        {},
        _check_preference,
    ),
    (
        "benefit_planner",
        "bp = perkrec.BenefitPlanner(policy_json_or_dict)",
        ["policy_json_or_dict", "perkrec", "log", "catalog", "users", "cut", "plan_time"],
        {},
        _check_plan,
    ),
    (
        "plan_by_hand",
        "planner = perkrec.Planner(policy_json_or_dict",
        ["log", "catalog", "plan_time", "users", "perkrec", "policy_json_or_dict", "P", "cut"],
        {},
        _check_plan,
    ),
    (
        "plan_helpers",
        "from perkrec.plan import issue_weights",
        [
            "X",
            "y",
            "fm",
            "logged_propensity",
            "P",
            "users",
            "benefits",
            "predicted",
            "redeemed",
            "held_out_propensity",
            "log",
            "catalog",
            "plan_time",
        ],
        {
            "y": "y_samples",
            "logged_propensity": "logged_propensity_samples",
            "users": "issue_users",
        },
        _check_plan_helpers,
    ),
    (
        "pilot_wave",
        "first = pipeline.plan(at=plan_time, budget=share",
        [
            "log",
            "catalog",
            "user_table",
            "cut",
            "policy_json_or_dict",
            "perkrec",
            "plan_time",
            "outcome_of",
        ],
        {"user_table": "users"},
        _check_pilot,
    ),
    (
        "policy",
        "policy = perkrec.Policy(",
        ["perkrec", "cut", "program", "model"],
        {},
        _check_policy,
    ),
    (
        "score_blend_rank",
        "blend = perkrec.ScoreBlend()",
        [
            "fm_probs",
            "als",
            "perkrec",
            "users",
            "benefits",
            "redeemed",
            "compiled",
            "margin",
            "catalog",
            "uplift_share",
            "plan_time",
            "model",
        ],
        {"users": "issue_users"},
        _check_rank,
    ),
]


def test_readme_blocks_cover_every_python_block():
    blocks = _readme_python_blocks()
    later = [next(b for b in blocks if case[1] in b) for case in README_BLOCKS]
    assert len(blocks) == 5 + len(README_BLOCKS) and later == blocks[5:]


@pytest.mark.parametrize("case", README_BLOCKS, ids=[case[0] for case in README_BLOCKS])
def test_readme_block_runs(case, tmp_path, monkeypatch):
    """Each README Python block after the quick start runs verbatim (exec) with its inputs —
    exactly the names it reads before binding them — built by README_INPUTS."""
    name, marker, expected_inputs, aliases, check = case
    (code,) = [b for b in _readme_python_blocks() if marker in b]
    inputs_used = _free_names(code)
    assert inputs_used == expected_inputs, f"{name}: the block's inputs changed"

    inputs = _build_inputs(inputs_used, aliases, README_INPUTS)
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__readme__", **inputs}
    exec(compile(code, f"README.md ({name})", "exec"), namespace)
    check(namespace, inputs)
