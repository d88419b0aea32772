"""Uplift learners on the Hillstrom e-mail experiment: perkrec T / X / DR against scikit-learn,
scikit-uplift and causalml meta-learners, by Qini AUC on held-out halves; then the T-learner's
training throughput on a large synthetic set.

    python bench/uplift_hillstrom.py [--seeds 5] [--throughput-rows 2000000]

Data: ../shared/data/hillstrom-email-uplift (see its SOURCE.md; never copied into the repo).
Features: recency and log1p(history) standardized on the training half; mens, womens, newbie;
zip_code, channel and history_segment one-hot. Treatments: binary (any e-mail vs none) and
multi (mens e-mail = 1, womens e-mail = 2, none = 0; Qini per arm on that arm's rows and the
control rows). Outcomes: visit and conversion. 50/50 random splits over several seeds.

Qini AUC is computed here in plain numpy, normalized like scikit-uplift's qini_auc_score
(negative_effect=True): (area of the model's Qini curve - area of the random line) /
(area of the perfect curve - area of the random line). When scikit-uplift is installed the
script checks this number against sklift.metrics.qini_auc_score.

Peers (benchmark-only, optional): scikit-learn (T-learner of two LogisticRegressions),
scikit-uplift (pip install scikit-uplift), causalml (pip install causalml). A peer that is not
installed is reported as such.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

import perkrec

DATA = Path(
    os.environ.get("PERKREC_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)
ARMS = {"No E-Mail": 0, "Mens E-Mail": 1, "Womens E-Mail": 2}


# ---- Qini ---------------------------------------------------------------------------------------


def qini_curve(y, uplift, treatment):
    """Qini curve at every distinct score threshold (scikit-uplift's definition)."""
    order = np.argsort(uplift, kind="mergesort")[::-1]
    y, uplift, treatment = y[order].astype(float), uplift[order], treatment[order].astype(float)
    thresholds = np.r_[np.where(np.diff(uplift))[0], uplift.size - 1]
    n_treated = np.cumsum(treatment)[thresholds]
    y_treated = np.cumsum(y * treatment)[thresholds]
    n_all = thresholds + 1.0
    n_control = n_all - n_treated
    y_control = np.cumsum(y * (1 - treatment))[thresholds]
    ratio = np.divide(n_treated, n_control, out=np.zeros_like(n_treated), where=n_control != 0)
    values = y_treated - y_control * ratio
    return np.r_[0.0, n_all], np.r_[0.0, values]


def _area(x, q):
    """Trapezoidal area under the points (x, q)."""
    x, q = np.asarray(x, float), np.asarray(q, float)
    return float(np.sum(np.diff(x) * (q[1:] + q[:-1]) / 2))


def qini_auc(y, uplift, treatment):
    """Normalized Qini AUC (scikit-uplift's qini_auc_score with negative_effect=True)."""
    x, q = qini_curve(y, uplift, treatment)
    perfect_x, perfect_q = qini_curve(y, y * treatment - y * (1 - treatment), treatment)
    baseline = _area([0.0, perfect_x[-1]], [0.0, perfect_q[-1]])
    return (_area(x, q) - baseline) / (_area(perfect_x, perfect_q) - baseline)


# ---- data ---------------------------------------------------------------------------------------


def load():
    frame = pd.read_csv(DATA / "hillstrom-email-uplift" / "hillstrom.csv.gz")
    frame["arm"] = frame["segment"].map(ARMS).astype(np.int32)
    return frame


def features(frame, train_mask):
    numeric = pd.DataFrame(
        {
            "recency": frame["recency"].astype(float),
            "history": np.log1p(frame["history"].astype(float)),
        }
    )
    mean, std = numeric[train_mask].mean(), numeric[train_mask].std()
    numeric = (numeric - mean) / std
    binary = frame[["mens", "womens", "newbie"]].astype(float)
    onehot = pd.get_dummies(
        frame[["zip_code", "channel", "history_segment"]].astype(str), dtype=float
    )
    dense = pd.concat([numeric, binary, onehot], axis=1).to_numpy(np.float32)
    return sp.csr_matrix(dense), dense


# ---- learners: each returns uplift (n x K) on the test rows ------------------------------------


def perkrec_learner(learner, **config):
    def run(X, Xd, y, t, Xt, Xtd, seed):
        model = perkrec.UpliftModel(learner, num_threads=1, seed=seed, **config)
        out = model.fit(X, y, t).predict(Xt)
        return out.reshape(len(out), -1)

    return run


def sklearn_t(X, Xd, y, t, Xt, Xtd, seed):
    from sklearn.linear_model import LogisticRegression

    models = [
        LogisticRegression(max_iter=2000).fit(Xd[t == k], y[t == k]) for k in range(t.max() + 1)
    ]
    p = np.stack([m.predict_proba(Xtd)[:, 1] for m in models], axis=1)
    return p[:, 1:] - p[:, :1]


def sklift_learner(kind):
    def run(X, Xd, y, t, Xt, Xtd, seed):
        from sklearn.linear_model import LogisticRegression
        from sklift.models import ClassTransformation, SoloModel, TwoModels

        if t.max() > 1:
            raise NotImplementedError("binary treatment only")
        lr = lambda: LogisticRegression(max_iter=2000)  # noqa: E731
        model = {
            "two_models": lambda: TwoModels(
                estimator_trmnt=lr(), estimator_ctrl=lr(), method="vanilla"
            ),
            "solo_model": lambda: SoloModel(lr()),
            "class_transformation": lambda: ClassTransformation(lr()),
        }[kind]()
        model.fit(Xd, y, t)
        return np.asarray(model.predict(Xtd)).reshape(-1, 1)

    return run


def causalml_learner(kind):
    def run(X, Xd, y, t, Xt, Xtd, seed):
        from causalml.inference.meta import BaseDRLearner, BaseTClassifier, BaseXClassifier
        from sklearn.linear_model import LinearRegression, LogisticRegression

        lr = LogisticRegression(max_iter=2000)
        model = {
            "t": lambda: BaseTClassifier(learner=lr, control_name=0),
            "x": lambda: BaseXClassifier(
                outcome_learner=lr, effect_learner=LinearRegression(), control_name=0
            ),
            "dr": lambda: BaseDRLearner(learner=LinearRegression(), control_name=0),
        }[kind]()
        K = t.max()
        share = np.array([(t == k).mean() for k in range(K + 1)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if kind == "t":
                model.fit(Xd, t, y)
                out = model.predict(Xtd)
            else:
                # A randomized experiment: propensities are the arm shares within (0, k).
                p = {k: np.full(len(t), share[k] / (share[k] + share[0])) for k in range(1, K + 1)}
                model.fit(Xd, t, y, p=p, seed=seed) if kind == "dr" else model.fit(Xd, t, y, p=p)
                pt = {
                    k: np.full(len(Xtd), share[k] / (share[k] + share[0])) for k in range(1, K + 1)
                }
                out = model.predict(Xtd, p=pt) if kind == "x" else model.predict(Xtd)
        return np.asarray(out).reshape(len(Xtd), -1)

    return run


# Two base learners: an FM with 4 factors, and a logistic regression (init_std=0 keeps the
# factors at zero) trained for 30 epochs — the better of a small sweep on binary/visit (see
# BENCHMARKS.md).
FM4 = dict(factors=4, epochs=10)
LR30 = dict(factors=1, init_std=0.0, epochs=30)
# factors=0: exact L2-regularized logistic (ridge for X/DR's effect models) regression, solved by
# Newton-CG; the FM's default reg_linear (1e-5), not tuned here.
EXACT = dict(factors=0)
LEARNERS = {
    "perkrec T (exact LR, factors=0)": perkrec_learner("t", **EXACT),
    "perkrec X (exact LR, factors=0)": perkrec_learner("x", **EXACT),
    "perkrec DR (exact LR, factors=0)": perkrec_learner("dr", **EXACT),
    "perkrec T (FM k=4, 10 ep)": perkrec_learner("t", **FM4),
    "perkrec X (FM k=4, 10 ep)": perkrec_learner("x", **FM4),
    "perkrec DR (FM k=4, 10 ep)": perkrec_learner("dr", **FM4),
    "perkrec T (LR, 30 ep)": perkrec_learner("t", **LR30),
    "perkrec X (LR, 30 ep)": perkrec_learner("x", **LR30),
    "perkrec DR (LR, 30 ep)": perkrec_learner("dr", **LR30),
    "sklearn T (2x LogisticRegression)": sklearn_t,
    "sklift TwoModels (LR)": sklift_learner("two_models"),
    "sklift SoloModel (LR)": sklift_learner("solo_model"),
    "sklift ClassTransformation (LR)": sklift_learner("class_transformation"),
    "causalml BaseTClassifier (LR)": causalml_learner("t"),
    "causalml BaseXClassifier (LR/LinReg)": causalml_learner("x"),
    "causalml BaseDRLearner (LinReg)": causalml_learner("dr"),
}


def bench_hillstrom(seeds):
    frame = load()
    print(
        f"hillstrom: {len(frame):,} rows; arms {frame['arm'].value_counts().sort_index().to_dict()}"
    )
    checked = False
    results = []
    for treatment_kind in ("binary", "multi"):
        for outcome in ("visit", "conversion"):
            for seed in range(seeds):
                rng = np.random.default_rng(seed)
                train = rng.random(len(frame)) < 0.5
                X, Xd = features(frame, train)
                arm = frame["arm"].to_numpy()
                t = (arm > 0).astype(np.int32) if treatment_kind == "binary" else arm
                y = frame[outcome].to_numpy().astype(np.float32)
                spend = frame["spend"].to_numpy().astype(np.float64)
                labels = {
                    k: outcome if t.max() == 1 else f"{outcome}, arm {k} vs control"
                    for k in range(1, t.max() + 1)
                }
                for name, fn in LEARNERS.items():
                    start = time.perf_counter()
                    try:
                        uplift = fn(
                            X[train], Xd[train], y[train], t[train], X[~train], Xd[~train], seed
                        )
                    except ImportError as exc:
                        for label in labels.values():
                            results.append(
                                (
                                    treatment_kind,
                                    label,
                                    name,
                                    seed,
                                    None,
                                    f"not installed ({exc.name})",
                                    None,
                                    None,
                                )
                            )
                        continue
                    except NotImplementedError as exc:
                        for label in labels.values():
                            results.append(
                                (treatment_kind, label, name, seed, None, str(exc), None, None)
                            )
                        continue
                    seconds = time.perf_counter() - start
                    yt, tt = y[~train], t[~train]
                    for k, label in labels.items():
                        rows = (tt == 0) | (tt == k)
                        q = qini_auc(yt[rows], uplift[rows, k - 1], (tt[rows] == k).astype(int))
                        if not checked:
                            try:
                                from sklift.metrics import qini_auc_score

                                ref = qini_auc_score(
                                    yt[rows], uplift[rows, k - 1], (tt[rows] == k).astype(int)
                                )
                                print(
                                    f"qini check against sklift.metrics.qini_auc_score: ours {q:.6f}, "
                                    f"sklift {ref:.6f}"
                                )
                            except ImportError:
                                print("qini check: scikit-uplift not installed")
                            checked = True
                        # Net incremental revenue at the best cut: treating the top-k rows by this
                        # learner's uplift, the incremental spend (mean treated - mean control
                        # spend among them) x k, at its best k (no e-mail cost in this data).
                        cx, cy = perkrec.uplift_curve(
                            spend[~train][rows], uplift[rows, k - 1], (tt[rows] == k).astype(int)
                        )
                        best = int(np.argmax(cy))
                        results.append(
                            (
                                treatment_kind,
                                label,
                                name,
                                seed,
                                q,
                                f"{seconds:.2f}",
                                float(cy[best]),
                                float(cx[best]) / float(cx[-1]),
                            )
                        )
    table = pd.DataFrame(
        results,
        columns=[
            "treatment",
            "outcome",
            "learner",
            "seed",
            "qini",
            "seconds",
            "best_cut_spend",
            "best_cut_share",
        ],
    )
    for (kind, outcome), part in table.groupby(["treatment", "outcome"], sort=False):
        print(
            f"\n== {kind} treatment, {outcome}: normalized Qini AUC on the test half, "
            f"mean +- sd over {seeds} seeds"
        )
        for name in LEARNERS:
            rows = part[part["learner"] == name]
            q = rows["qini"].dropna().astype(float)
            if q.empty:
                print(f"  {name:<40} {rows['seconds'].iloc[0] if len(rows) else 'n/a'}")
                continue
            secs = rows["seconds"].astype(float).mean()
            cut = rows["best_cut_spend"].dropna().astype(float)
            share = rows["best_cut_share"].dropna().astype(float)
            print(
                f"  {name:<40} {q.mean():+.4f} +- {q.std():.4f}   best-cut incremental spend "
                f"{cut.mean():8.1f} +- {cut.std():6.1f} (top {share.mean():.0%})   fit+predict {secs:.2f} s"
            )


def throughput(rows, fields=20, per_field=1000, factors=8):
    """T-learner training rows per second, one thread: the best of two fits at 1 and at 6
    epochs after a warm-up fit, so setup (conversion, validation, per-arm row copies,
    initialization) cancels out of the per-epoch figure; the whole-fit rate is printed too."""
    rng = np.random.default_rng(0)
    idx = (
        rng.integers(0, per_field, size=(rows, fields), dtype=np.int32)
        + np.arange(fields, dtype=np.int32) * per_field
    ).ravel()
    X = sp.csr_matrix(
        (
            np.ones(rows * fields, np.float32),
            idx,
            np.arange(0, rows * fields + 1, fields, dtype=np.int64),
        ),
        shape=(rows, fields * per_field),
    )
    t = rng.integers(0, 2, rows).astype(np.int32)
    y = (rng.random(rows) < 0.2 + 0.1 * t).astype(np.float32)
    print(
        f"\n== T-learner throughput: {rows:,} rows x {fields} one-hot fields, {factors} factors, "
        f"AdaGrad, 1 thread",
        flush=True,
    )

    def fit_seconds(epochs):
        start = time.perf_counter()
        perkrec.UpliftModel("t", factors=factors, epochs=epochs, num_threads=1).fit(X, y, t)
        return time.perf_counter() - start

    fit_seconds(1)  # warm-up: page in X and the allocator
    times = {epochs: min(fit_seconds(epochs) for _ in range(2)) for epochs in (1, 6)}
    per_epoch = (times[6] - times[1]) / 5
    print(
        f"  fit 1 epoch {times[1]:.2f} s, 6 epochs {times[6]:.2f} s: {per_epoch:.3f} s/epoch = "
        f"{rows / per_epoch / 1e6:.2f} M rows/s/core per epoch; whole 6-epoch fit "
        f"{6 * rows / times[6] / 1e6:.2f} M row-epochs/s/core",
        flush=True,
    )


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--throughput-rows", type=int, default=2_000_000, help="0 = skip")
    ap.add_argument(
        "--learners",
        default="",
        help="comma-separated substrings: run only the learners whose "
        "name contains one of them (default: all)",
    )
    args = ap.parse_args(argv)
    if args.learners:
        keep = [w.strip() for w in args.learners.split(",") if w.strip()]
        for name in list(LEARNERS):
            if not any(w in name for w in keep):
                del LEARNERS[name]
    print(f"perkrec {perkrec.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    if args.seeds > 0:
        bench_hillstrom(args.seeds)
    if args.throughput_rows > 0:
        throughput(args.throughput_rows)


if __name__ == "__main__":
    main()
