"""PreferenceModel, wide_table, segments, clusters, timing, plots and report."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pandas as pd
import pytest

import perkrec
from perkrec import preference as pref


@pytest.fixture(scope="module")
def fitted(small_program):
    cut = small_program.truth.reference_time
    return perkrec.PreferenceModel(num_threads=2).fit(
        small_program.events, small_program.catalog, cut
    )


def test_wide_table_frame_and_cut(small_program):
    log, catalog = small_program.events, small_program.catalog
    end = small_program.truth.reference_time
    table = perkrec.wide_table(log, catalog, end)
    assert len(table) == log.n_users
    for column in (
        "issued",
        "claim_rate",
        "claim_rate:kind:points",
        "recency_days",
        "tenure_days",
        "stacked_order_share",
        "points_earned",
        "median_days_claim_to_redemption",
    ):
        assert column in table.columns
    frame = log.to_frame(external_ids=False)
    issued = frame[frame["event_type"] == "issued"].groupby("user").size()
    assert (table["issued"].to_numpy()[issued.index.to_numpy()] == issued.to_numpy()).all()
    # An earlier cut never sees later events.
    early = perkrec.wide_table(log, catalog, end - pd.Timedelta(days=60))
    assert (early["issued"] <= table["issued"]).all()
    assert early["issued"].sum() < table["issued"].sum()
    before_all = perkrec.wide_table(log, catalog, "2000-01-01")
    assert before_all["issued"].sum() == 0 and before_all["claim_rate"].isna().all()


def test_preferences_intervals_and_recovery(fitted, small_program):
    prefs = fitted.preferences()
    lower, upper = fitted.intervals()
    assert prefs.shape == (small_program.events.n_users, len(fitted.dimension_names))
    assert list(prefs.columns) == list(small_program.truth.preferences.columns)
    assert (lower.to_numpy() <= prefs.to_numpy() + 1e-6).all() and (
        prefs.to_numpy() <= upper.to_numpy() + 1e-6
    ).all()
    # Planted archetypes show up in the lifts.
    archetype = small_program.truth.members["archetype"].astype(str).to_numpy()
    points = np.log(prefs["kind:points"].to_numpy())
    assert (
        points[archetype == "points_redemption_active"].mean()
        > points[archetype == "threshold_discount_sensitive"].mean() + 0.5
    )
    # Median per-member rank correlation with the truth is well above the naive estimate's 0.4.
    from scipy.stats import spearmanr

    truth = small_program.truth.preferences.to_numpy()
    rows = np.flatnonzero(np.diff(small_program.events.user_offsets) >= 10)[:400]
    rho = np.nanmedian([spearmanr(prefs.to_numpy()[u], truth[u]).correlation for u in rows])
    assert rho > 0.6
    profile = fitted.user_profile(int(rows[0]))
    assert list(profile.columns) == ["preference", "lower", "upper"]


def test_segments_clusters_and_rules(fitted, small_program):
    seg = fitted.segments()
    assert set(seg["segment"].cat.categories) == set(perkrec.ARCHETYPES)
    archetype = small_program.truth.members["archetype"].astype(str).to_numpy()
    accuracy = (seg["segment"].astype(str).to_numpy() == archetype).mean()
    assert accuracy > 0.55  # chance is ~0.2
    rules = perkrec.default_segment_rules()
    rules["segments"] = rules["segments"][:1]
    rules["default"] = "everyone_else"
    custom = fitted.segments(rules)
    assert set(custom["segment"].cat.categories) == {"new_member", "everyone_else"}
    with pytest.raises(perkrec.ConfigError, match="/segments/0/all/0/feature"):
        fitted.segments(
            {"segments": [{"name": "x", "all": [{"feature": "nope", "op": ">", "value": 1}]}]}
        )
    with pytest.raises(perkrec.ConfigError, match="/segments/0/size"):
        fitted.segments({"segments": [{"name": "x", "size": 3}]})
    table = fitted.segment_table()
    assert table["members"].sum() == small_program.events.n_users
    a1, c1, d1 = fitted.clusters(5)
    one_thread = perkrec.PreferenceModel(num_threads=1).fit(
        small_program.events, small_program.catalog, small_program.truth.reference_time
    )
    a2, c2, d2 = one_thread.clusters(5)
    assert (a1.to_numpy() == a2.to_numpy()).all() and d1 == d2
    assert (one_thread.segments()["segment"] == seg["segment"]).all()
    assert len(d1) == 5 and all("x" in d for d in d1)


def test_segment_table_equals_the_pandas_reference(fitted):
    """segment_table's means (C++ group_preferences) against the pandas groupby it replaced."""
    for rules in (None, perkrec.default_segment_rules(absolute=True)):
        seg = fitted.segments(rules)
        prefs = fitted.preferences()
        expected = prefs.groupby(seg["segment"], observed=False).mean()
        expected.insert(
            0,
            "members",
            seg["segment"].value_counts().reindex(expected.index).fillna(0).astype(int),
        )
        first = seg.drop_duplicates("segment").set_index("segment")["description"]
        expected.insert(1, "description", first.reindex(expected.index).fillna(""))
        got = fitted.segment_table(rules)
        pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-6)
        assert got["members"].sum() == len(seg)


def test_timing_frame(fitted, small_program):
    t = fitted.timing()
    assert len(t) == small_program.events.n_users
    assert t["best_slot"].between(0, 167).all()
    assert (t["send_at"] <= t["next_purchase"]).all()
    assert t["validity_days"].between(3, 30).all()
    assert t["p_alive"].between(0, 1).all()
    members = small_program.truth.members
    active = (members["archetype"] != "dormant").to_numpy() & (
        fitted.features()["orders"].to_numpy() >= 5
    )
    diff = np.abs((t["best_hour"].to_numpy() + 0.5) - members["preferred_hour"].to_numpy())
    within = np.minimum(diff, 24 - diff) <= 2
    assert within[active].mean() > 0.6
    grid = fitted.hour_of_week_profile(0)
    assert grid.shape == (7, 24) and abs(grid.sum() - 1) < 1e-4
    assert set(fitted.bgnbd_params) == {"r", "alpha", "a", "b"}


def test_bgnbd_helpers():
    params = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    from math import gamma, log

    x, tx, T = 2, 30.43, 38.86
    r, al, a, b = params["r"], params["alpha"], params["a"], params["b"]
    g = gamma(r + x) * al**r / gamma(r)
    l1 = gamma(a + b) * gamma(b + x) / (gamma(b) * gamma(a + b + x)) * g / (al + T) ** (r + x)
    l2 = (
        gamma(a + b)
        * gamma(a + 1)
        * gamma(b + x - 1)
        / (gamma(a) * gamma(b) * gamma(a + b + x))
        * g
        / (al + tx) ** (r + x)
    )
    assert pref.bgnbd_log_likelihood(params, x, tx, T) == pytest.approx(log(l1 + l2), rel=1e-10)
    with pytest.raises(perkrec.InputError, match="t_x <= T"):
        pref.bgnbd_fit([1.0], [5.0], [2.0])


def test_recommend_score_and_contract(fitted, small_program):
    users = np.arange(20, dtype=np.int32)
    ids, scores = fitted.recommend(users, n=5)
    assert ids.shape == (20, 5) and (np.diff(scores, axis=1) <= 1e-6).all()
    direct = fitted.score(np.repeat(users, 5), ids.ravel())
    np.testing.assert_allclose(direct, scores.ravel(), rtol=1e-6)
    frame = fitted.recommend(users, n=3, as_frame=True)
    assert list(frame.columns) == ["user", "rank", "benefit", "score"]
    single_ids, _ = fitted.recommend(3, n=4, allow=[0, 1, 2])
    assert set(single_ids) <= {0, 1, 2}
    with pytest.raises(perkrec.InputError):
        fitted.score([10**6], [0])


def test_save_load_pickle(fitted, tmp_path):
    path = tmp_path / "pref.perk"
    fitted.save(path)
    back = perkrec.load(path)
    assert isinstance(back, perkrec.PreferenceModel)
    pd.testing.assert_frame_equal(back.preferences(), fitted.preferences())
    pd.testing.assert_frame_equal(back.timing(), fitted.timing())
    again = pickle.loads(pickle.dumps(fitted))
    pd.testing.assert_frame_equal(again.features(), fitted.features())
    buffer = io.BytesIO()
    fitted.save(buffer)
    assert (
        perkrec.PreferenceModel.load(io.BytesIO(buffer.getvalue())).get_params()
        == fitted.get_params()
    )


def test_bad_input(small_program):
    model = perkrec.PreferenceModel()
    with pytest.raises(perkrec.InputError, match="no event before the cut"):
        model.fit(small_program.events, small_program.catalog, "2000-01-01")
    with pytest.raises(perkrec.InputError, match="empty"):
        model.fit(perkrec.EventLog(), perkrec.Catalog(), 0)
    with pytest.raises(perkrec.ConfigError, match="interval"):
        perkrec.PreferenceModel(interval=2.0)
    with pytest.raises(perkrec.ConfigError, match="response"):
        perkrec.PreferenceModel(response="ordered")
    with pytest.raises(perkrec.InputError, match="not fitted"):
        model.preferences()


def test_plots_and_report(fitted, tmp_path):
    pytest.importorskip("matplotlib")
    from perkrec import plots

    html = plots.report(fitted, tmp_path / "report")
    assert html.exists()
    text = html.read_text()
    for name in ("segment_heatmap.png", "member_profile.png", "hour_of_week.png"):
        assert (tmp_path / "report" / name).stat().st_size > 1000
        assert name in text
    segments = pd.read_csv(tmp_path / "report" / "segments.csv", index_col=0)
    assert segments["members"].sum() == fitted.n_users
    assert plots.plot_hour_of_week(fitted) is not None


def test_segments_confidence_uncertain_and_absolute_rules(fitted):
    seg = fitted.segments()
    assert seg["confidence"].between(0, 1).all()
    resolved = seg.attrs["resolved_rules"]
    conditions = [c for s in resolved["segments"] for c in s.get("all", [])]
    assert conditions and all(isinstance(c["value"], (int, float)) for c in conditions)
    terms = [t for s in resolved["segments"] if "score" in s for t in s["score"]["terms"]]
    assert terms and all(t["reference"] > 0 for t in terms)
    rules = perkrec.default_segment_rules()
    assert rules["segments"][0]["all"][0]["value"] == {"quantile": 0.5, "times": 0.5}
    assert [s["name"] for s in rules["segments"] if "score" in s] == [
        "dormant",
        "threshold_discount_sensitive",
        "points_redemption_active",
        "high_face_value_seeker",
    ]
    thresholds = perkrec.default_segment_rules(thresholds=True)
    assert thresholds["segments"][1]["all"][0]["value"] == {"quantile": 0.5, "times": 0.5}
    assert set(fitted.segments(thresholds)["segment"].cat.categories) == set(perkrec.ARCHETYPES)
    rules["min_confidence"] = 0.6
    strict = fitted.segments(rules)
    assert list(strict["segment"].cat.categories)[-1] == "uncertain"
    unsure = strict["segment"].astype(str) == "uncertain"
    assert 0 < unsure.sum() < len(strict)
    assert (strict["confidence"][unsure] < 0.6).all()
    same = ~unsure.to_numpy()
    labels = seg["segment"].astype(str).to_numpy()
    strict_labels = strict["segment"].astype(str).to_numpy()
    assert (strict_labels[same] == labels[same]).all()
    # The absolute rules of before stay available as an explicit rules JSON.
    absolute = perkrec.default_segment_rules(absolute=True)
    assert absolute["segments"][1]["all"][0] == {"feature": "orders_90d", "op": "<=", "value": 4.0}
    assert set(fitted.segments(absolute)["segment"].cat.categories) == set(perkrec.ARCHETYPES)
    with pytest.raises(perkrec.ConfigError, match="/segments/0/all/0/value/quantile"):
        fitted.segments(
            {
                "segments": [
                    {
                        "name": "x",
                        "all": [{"feature": "orders", "op": ">", "value": {"quantile": 2}}],
                    }
                ]
            }
        )


def test_relative_segments_follow_a_program_with_scaled_order_rates(small_program):
    """Every member orders twice as often (each order duplicated a second later): the relative
    default rules give (nearly) the same segments, the absolute ones of before do not."""
    log, catalog = small_program.events, small_program.catalog
    cut = log.time_range[1] - pd.Timedelta(days=30)
    frame = log.to_frame()
    orders = frame[frame["event_type"] == "ordered"].copy()
    orders["timestamp"] = orders["timestamp"] + pd.Timedelta(seconds=1)
    doubled = pd.concat([frame, orders]).sort_values("timestamp", kind="stable")
    log2 = perkrec.EventLog.from_frame(doubled, user_ids=log.user_ids, benefits=catalog)
    a = perkrec.PreferenceModel(num_threads=2).fit(log, catalog, cut)
    b = perkrec.PreferenceModel(num_threads=2).fit(log2, catalog, cut)
    f1, f2 = a.features(), b.features()
    active = f1["orders"].to_numpy() > 0
    np.testing.assert_allclose(
        f2["orders_90d"].to_numpy()[active], 2 * f1["orders_90d"].to_numpy()[active]
    )

    def agreement(rules):
        s1 = a.segments(rules)["segment"].astype(str).to_numpy()
        s2 = b.segments(rules)["segment"].astype(str).to_numpy()
        return float((s1 == s2)[active].mean())

    relative, absolute = agreement(None), agreement(perkrec.default_segment_rules(absolute=True))
    thresholds = agreement(perkrec.default_segment_rules(thresholds=True))
    print("agreement relative", relative, "thresholds", thresholds, "absolute", absolute)
    assert relative >= 0.93 and thresholds >= 0.93
    assert relative > absolute + 0.05


def test_scored_segments_json_errors_and_softmax(fitted):
    """A scored segment competes with the default (score 0) by a softmax; bad scores are
    ConfigErrors that name the JSON pointer."""
    rules = {
        "segments": [{"name": "busy", "score": {"terms": [{"feature": "orders", "weight": 1.0}]}}],
        "default": "rest",
    }
    seg = fitted.segments(rules)
    orders = fitted.features()["orders"].to_numpy()
    median = seg.attrs["resolved_rules"]["segments"][0]["score"]["terms"][0]["reference"]
    x = np.maximum(orders, 0.01 * median) / median
    np.testing.assert_array_equal(
        seg["segment"].astype(str).to_numpy(), np.where(x > 1, "busy", "rest")
    )
    np.testing.assert_allclose(seg["confidence"].to_numpy(), np.maximum(x, 1) / (x + 1), rtol=1e-5)
    bad = [
        ({"name": "x", "all": [], "score": {"terms": []}}, "/segments/0/score"),
        (
            {"name": "x", "score": {"terms": [{"feature": "orders"}]}},
            "/segments/0/score/terms/0/weight",
        ),
        (
            {"name": "x", "score": {"terms": [{"feature": "top:kind", "weight": 1}]}},
            "/segments/0/score/terms/0/feature",
        ),
        (
            {
                "name": "x",
                "score": {"terms": [{"feature": "orders", "weight": 1, "reference": -1}]},
            },
            "/segments/0/score/terms/0/reference",
        ),
        (
            {"name": "x", "score": {"terms": [{"feature": "nope", "weight": 1}]}},
            "/segments/0/score/terms/0/feature",
        ),
    ]
    for segment, pointer in bad:
        with pytest.raises(perkrec.ConfigError, match=pointer):
            fitted.segments({"segments": [segment]})
    with pytest.raises(perkrec.ConfigError, match="not both"):
        perkrec.default_segment_rules(absolute=True, thresholds=True)
    # Per-program calibration by the latent classes: an option, off in the defaults and when
    # the key is absent; on, it moves some members (not most).
    defaults = perkrec.default_segment_rules()
    assert defaults["calibration"] == {"strength": 0.0, "iterations": 1}
    assert fitted.segments(rules).attrs["resolved_rules"]["calibration"]["strength"] == 0.0
    on = dict(defaults, calibration={"strength": 1.0, "iterations": 1})
    calibrated, uncalibrated = fitted.segments(on), fitted.segments()
    changed = (calibrated["segment"] != uncalibrated["segment"]).mean()
    assert 0.0 < changed < 0.2
    with pytest.raises(perkrec.ConfigError, match="/calibration/strength"):
        fitted.segments(dict(defaults, calibration={"strength": 11}))


def test_intervals_at_any_level(fitted, tmp_path):
    lower, upper = fitted.intervals()
    lo90, hi90 = fitted.intervals(level=0.9)
    np.testing.assert_allclose(lo90.to_numpy(), lower.to_numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(hi90.to_numpy(), upper.to_numpy(), rtol=1e-4, atol=1e-5)
    lo50, hi50 = fitted.intervals(level=0.5)
    assert ((hi50 - lo50).to_numpy() <= (hi90 - lo90).to_numpy() + 1e-6).all()
    with pytest.raises(perkrec.InputError, match="level"):
        fitted.intervals(level=1.5)
    path = tmp_path / "pref.perk"
    fitted.save(path)
    pd.testing.assert_frame_equal(perkrec.load(path).intervals(level=0.5)[0], lo50)
    # The individual spread behind the intervals: classes x dimensions variances, saved.
    spread = fitted.individual_spread
    assert spread.shape == (fitted.memberships().shape[1], len(fitted.dimension_names))
    assert (spread.to_numpy() >= 0).all() and (spread.to_numpy() > 0).any()
    pd.testing.assert_frame_equal(perkrec.load(path).individual_spread, spread)
