"""The campaign report: one self-contained HTML page per plan, its sections when their inputs
exist, figures that match the plan, and a real browser (headless Chromium) that renders it
without console messages into a screenshot that is not blank."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

import perkrec
from perkrec import demo
from perkrec.plan import Plan
from perkrec.report import campaign_report


@pytest.fixture(scope="module")
def planned(small_program):
    prog = small_program
    log, catalog = prog.events, prog.catalog
    plan_time = log.time_range[1]
    cut = plan_time - pd.Timedelta(days=30)
    policy = demo.demo_policy(log.n_users)
    pipeline = perkrec.BenefitPlanner(policy, weighting="ipw", seed=1, num_threads=2)
    plan = pipeline.fit(log, catalog, prog.users, cut_time=cut).plan(at=plan_time)
    segments = pipeline.preference.segments()
    offline = plan.evaluate_offline(log, catalog, since=cut)
    rng = np.random.default_rng(0)
    n = 4000
    w = rng.integers(0, 2, n)
    u = rng.normal(size=n)
    y = (rng.random(n) < 0.1 + 0.08 * w * (u > 0)).astype(float)
    experiment = perkrec.analyze_experiment(arm=w, metrics={"revenue": 10 * y, "orders": y})
    uplift = dict(y=y, uplift=u, treatment=w, value=10 * y, cost=1.0 * w)
    return plan, offline, segments, experiment, uplift


def _sections(page: str):
    return re.findall(r"<h2>(.*?)</h2>", page)


def test_report_has_every_section_and_the_plans_figures(planned, tmp_path):
    plan, offline, segments, experiment, uplift = planned
    path = tmp_path / "campaign.html"
    page = campaign_report(
        plan, path, offline=offline, segments=segments, experiment=experiment, uplift=uplift
    )
    assert path.read_text(encoding="utf-8") == page
    assert not (tmp_path / "campaign.html.tmp").exists()
    assert _sections(page) == [
        "Where the budget goes",
        "Pacing",
        "Top reasons",
        "Preference segments",
        "The plan valued off-policy from the log",
        "Experiment: incremental results",
        "Uplift model",
    ]
    # Self-contained: no script, no reference to anything outside the page.
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page, re.I)
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) <= {"http://www.w3.org/2000/svg"}
    # The cards carry the plan's own totals.
    assert f"{len(plan.frame):,}" in page
    assert f"{plan.expected_cost:,.0f}" in page
    assert f"{plan.budget:,.0f}" in page
    # Every segment and kind of the plan appears in its breakdown table.
    for name in (
        plan.frame["segment"].astype(str).unique().tolist()
        + plan.frame["kind"].astype(str).unique().tolist()
    ):
        assert f"<td>{name}</td>" in page
    # Top reasons counted from all rows (the plan is under the sample size).
    assert f"From all {len(plan.frame):,} issued benefits." in page


def test_sections_appear_only_with_their_inputs(planned):
    plan = planned[0]
    page = campaign_report(plan)
    assert _sections(page) == ["Where the budget goes", "Pacing", "Top reasons"]
    bare = Plan(
        plan.frame[
            [
                "member",
                "member_index",
                "benefit",
                "benefit_index",
                "kind",
                "probability",
                "value",
                "cost",
                "net",
            ]
        ],
        budget=float("inf"),
        method="greedy",
    )
    page = campaign_report(bare, breakdowns=["kind", "no_such_column"])
    assert _sections(page) == ["Where the budget goes"]
    assert "none" in page  # no budget


def test_reason_sample_is_said_and_bad_inputs_raise(planned):
    plan, *_ = planned
    page = campaign_report(plan, reason_sample=100, seed=3)
    assert f"a uniform sample of 100 of the {len(plan.frame):,} issued benefits (seed 3)" in page
    with pytest.raises(perkrec.InputError, match="plan must be a perkrec.Plan"):
        campaign_report(plan.frame)
    with pytest.raises(perkrec.InputError, match="reason_sample"):
        campaign_report(plan, reason_sample=0)
    with pytest.raises(perkrec.InputError, match="uplift needs"):
        campaign_report(plan, uplift={"y": [1, 0]})


def test_jupyter_summary(planned):
    plan = planned[0]
    html = plan._repr_html_()
    assert "perkrec Plan" in html and f"{len(plan.frame):,}" in html and "<table" in html
    assert plan.report() == campaign_report(plan)


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("PERKREC_REQUIRE_BROWSER") == "1":
        pytest.fail(
            "headless Chromium is absent and PERKREC_REQUIRE_BROWSER=1 (make test installs it)"
        )
    pytest.skip("headless Chromium is absent")


def test_report_renders_in_a_real_browser(planned, tmp_path):
    import matplotlib.image as mpimg

    browser = _chromium()
    plan, offline, segments, experiment, uplift = planned
    path = tmp_path / "campaign.html"
    campaign_report(
        plan, path, offline=offline, segments=segments, experiment=experiment, uplift=uplift
    )
    shot = tmp_path / "shot.png"
    run = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--screenshot={shot}",
            "--window-size=1200,2400",
            "--enable-logging=stderr",
            "--v=0",
            path.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.exists(), run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    assert console == []
    img = mpimg.imread(str(shot))
    assert img.shape[0] == 2400 and img.shape[1] == 1200
    gray = img[..., :3].mean(axis=2)
    ink = gray < 0.9
    assert ink.mean() > 0.02  # text, tables and charts, not a blank page
    assert ink[:, :600].mean() > 0.01 and ink[1200:].mean() > 0.01  # content across the page
    # Chart colour (the bars' blue) is rendered: the SVG charts drew.
    blue = (np.abs(img[..., 0] - 0x2F / 255) < 0.04) & (np.abs(img[..., 2] - 0xB3 / 255) < 0.04)
    assert blue.sum() > 500
