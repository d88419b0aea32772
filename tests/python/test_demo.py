"""The main job runs end to end and writes its tables."""

import io
import json

import pandas as pd

import perkrec.__main__ as cli
from perkrec.demo import run


def test_demo_report_and_tables(tmp_path):
    out = io.StringIO()
    metrics = run(n_users=3000, seed=1, out_dir=str(tmp_path), stream=out)
    report = out.getvalue()
    for section in (
        "Events by type",
        "Redemption by benefit kind",
        "Redemption by planted archetype",
        "ndcg@10",
        "auc",
    ):
        assert section in report
    for name in (
        "events_by_type.csv",
        "redemption_by_kind.csv",
        "redemption_by_archetype.csv",
        "ranking_metrics.csv",
        "redemption_metrics.csv",
        "catalog.csv",
        "summary.json",
        "popularity.perk",
    ):
        assert (tmp_path / name).is_file(), name
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["members"] == 3000 and 0 < metrics["ndcg@10"] < 1
    assert (
        0 < metrics["als_ndcg@10"] < 1 and 0 < metrics["bpr_ndcg@10"] < 1
    )  # collaborative filtering rows
    assert 0.4 < metrics["redemption_auc"] < 1
    assert "oracle (true inputs)" in report and 0 < metrics["plan_pct_of_oracle"] < 150
    # The plan valued off-policy from the log (no truth), and last month's benefits read from the
    # random control group: the simulator plants a positive effect, so the interval excludes 0.
    assert (
        metrics["plan_offline_redemptions"] > 0
        and (tmp_path / "plan_offline_estimate.csv").is_file()
    )
    assert "as an experiment" in report and (tmp_path / "experiment.csv").is_file()
    assert (
        0
        < metrics["experiment_revenue_lower"]
        < metrics["experiment_revenue_lift"]
        < metrics["experiment_revenue_upper"]
    )
    assert metrics["experiment_roi"] > 0
    page = (tmp_path / "campaign_report.html").read_text(encoding="utf-8")
    assert "campaign_report.html" in report and "<h2>Pacing</h2>" in page
    assert "<h2>The plan valued off-policy from the log</h2>" in page
    # Member value: the plan's spend by lifecycle stage, and the win-back campaign, which gives
    # benefits only to at-risk members above the 80th CLV percentile, against the same budget
    # over all members, both scored on the truth.
    assert "<h2>Value by segment and lifecycle stage</h2>" in page
    assert "win-back campaign" in report and "same budget, all members" in report
    by_stage = pd.read_csv(tmp_path / "plan_value_by_stage.csv", index_col=0)
    assert {"active", "at_risk"} <= set(by_stage.index)
    assert abs(by_stage["share_of_spend"].sum() - 1) < 1e-9
    value = pd.read_csv(tmp_path / "clv_fields.csv", index_col=0)
    targeted = value[(value["lifecycle_stage"] == "at_risk") & (value["clv_percentile"] > 0.8)]
    plan = pd.read_csv(tmp_path / "win_back_plan.csv")
    assert len(plan) > 0 and set(plan["member"]) <= set(targeted.index)
    assert metrics["win_back_members"] == len(targeted)
    assert metrics["win_back_budget"] == len(targeted)  # one unit of budget per targeted member
    for key in ("win_back", "win_back_all_members"):
        assert metrics[f"{key}_true_return"] > 0 and metrics[f"{key}_true_cost"] > 0
        assert (
            metrics[f"{key}_return_per_cost"]
            == metrics[f"{key}_true_return"] / metrics[f"{key}_true_cost"]
        )


def test_cli_runs_the_demo(tmp_path, capsys):
    assert cli.main(["demo", "--members", "1000", "--out", str(tmp_path)]) == 0
    assert "Tables written to" in capsys.readouterr().out


def test_cli_version(capsys):
    import pytest

    import perkrec

    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert (
        stop.value.code == 0 and capsys.readouterr().out.strip() == f"perkrec {perkrec.__version__}"
    )
