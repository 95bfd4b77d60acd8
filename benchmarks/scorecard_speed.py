"""Speed of the update scorecard: two models on 5,000 evaluation texts, 1,000 bootstrap resamples (issue 15: <= 60 s).

Predictions are synthetic but shaped like notebook 09's (3 classes, gender and race columns with rows outside both,
a user column, positivity scores, 2,000 + 2,000 membership scores per model): the scorecard never trains, so its cost
depends only on these sizes. Side by side in one run:

* ``scorecard``: the whole front door (:func:`workbench.scorecard.scorecard`), median of ``--repeats`` runs, and
  its two phases (evaluation rows: one resample-count matrix and matrix products; privacy: every resample's ROC at
  once from one sort, :func:`workbench.metrics.roc_curves` over the resample-count matrix);
* ``naive``: the same evaluation-row measures recomputed resample by resample with the flips and group-metric
  functions of ``workbench.compatibility.flips`` / ``workbench.fairness.groups`` on ``--naive-boot`` resamples,
  extrapolated to ``--boot``; and the membership bootstrap resample by resample (one
  :func:`workbench.metrics.roc_curve` per resample and model, what the scorecard did before ``roc_curves``), also on
  ``--naive-boot`` resamples, extrapolated.

Results go to benchmarks/results/scorecard_speed.json.

    .venv/bin/python benchmarks/scorecard_speed.py [--n 5000] [--boot 1000] [--members 2000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

from workbench.results import atomic_write_text, library_versions

ROOT = Path(__file__).resolve().parents[1]


def synthetic_outputs(n: int, *, members: int, seed: int = 0):
    """Labels, groups and two models' outputs of notebook 09's shape."""
    from workbench.scorecard import ModelOutputs

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    groups = {"gender": rng.choice(["female", "male", ""], n), "race": rng.choice(["african_american", "european_american", ""], n),
              "source": rng.choice(["tweets", "eec"], n)}

    def model(acc):
        pred = np.where(rng.random(n) < acc, y, rng.integers(0, 3, n))
        return ModelOutputs(pred=pred, score=rng.random(n), member_scores=rng.normal(0.2, 1, members),
                            nonmember_scores=rng.normal(0, 1, members))

    return y, groups, model(0.7), model(0.75)


def naive_seconds(y, groups, old, new, *, n_boot: int, seed: int = 0) -> float:
    """Seconds for ``n_boot`` resamples computed one by one with the study modules' functions."""
    from workbench.compatibility.flips import flip_summary, per_class_flips, per_group_flips
    from workbench.fairness.groups import fairness_gaps

    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(n_boot):
            idx = rng.integers(0, len(y), len(y))
            yb, ob, nb = y[idx], old.pred[idx], new.pred[idx]
            flip_summary(yb, ob, nb)
            per_class_flips(yb, ob, nb)
            for col, values in groups.items():
                v = values[idx]
                has = v != ""
                per_group_flips(yb[has], ob[has], nb[has], groups=v[has])
                for m in (old, new):
                    fairness_gaps(m.score[idx][has], (yb[has] == 2).astype(int), v[has])
    return time.perf_counter() - start


def naive_privacy_seconds(old, new, *, n_boot: int, seed: int = 0) -> float:
    """Seconds for ``n_boot`` membership resamples of both models, one ROC per resample."""
    from workbench.scorecard.measures import membership_measures

    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for m in (old, new):
        for _ in range(n_boot):
            membership_measures(m.member_scores[rng.integers(0, len(m.member_scores), len(m.member_scores))],
                                m.nonmember_scores[rng.integers(0, len(m.nonmember_scores), len(m.nonmember_scores))])
    return time.perf_counter() - start


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--naive-boot", type=int, default=50)
    parser.add_argument("--note", default="measured on the machine that ran it",
                        help="what the machine was doing (e.g. shared with other jobs), stored with the results")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "scorecard_speed.json"))
    args = parser.parse_args(argv)

    from workbench.scorecard import ModelOutputs, ScorecardConfig, scorecard

    y, groups, old, new = synthetic_outputs(args.n, members=args.members)
    cfg = ScorecardConfig(n_boot=args.boot, positive_class=2, negative_class=0)
    no_mia = [ModelOutputs(pred=m.pred, score=m.score) for m in (old, new)]
    full, rows_only = [], []
    from workbench.scorecard import card as card_module

    for _ in range(args.repeats):
        card_module._MEMBERSHIP_CACHE.clear()  # time the membership bootstrap every run (the notebook memoises it)
        t = time.perf_counter()
        card = scorecard(old, new, labels=y, groups=groups, classes=["negative", "neutral", "positive"], config=cfg)
        full.append(time.perf_counter() - t)
        t = time.perf_counter()
        scorecard(*no_mia, labels=y, groups=groups, config=cfg)
        rows_only.append(time.perf_counter() - t)
    naive = naive_seconds(y, groups, old, new, n_boot=args.naive_boot)
    naive_privacy = naive_privacy_seconds(old, new, n_boot=args.naive_boot)
    result = {
        "benchmark": "scorecard_speed",
        "settings": {"n": args.n, "n_boot": args.boot, "members_per_model": args.members, "nonmembers_per_model": args.members,
                     "repeats": args.repeats, "naive_boot": args.naive_boot, "rows_in_table": int(len(card))},
        "seconds": {
            "scorecard_median": statistics.median(full),
            "scorecard_runs": full,
            "evaluation_rows_median": statistics.median(rows_only),
            "privacy_median": statistics.median(full) - statistics.median(rows_only),
            "naive_evaluation_rows_extrapolated": naive * args.boot / args.naive_boot,
            "naive_privacy_extrapolated": naive_privacy * args.boot / args.naive_boot,
        },
        "target_seconds": 60.0,
        "note": args.note,
        "versions": library_versions(),
    }
    sec = result["seconds"]
    result["speedup_evaluation_rows_vs_naive"] = sec["naive_evaluation_rows_extrapolated"] / sec["evaluation_rows_median"]
    result["speedup_privacy_vs_naive"] = sec["naive_privacy_extrapolated"] / max(sec["privacy_median"], 1e-9)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.output, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["seconds"], indent=2), f"\nspeed-up vs naive: evaluation rows {result['speedup_evaluation_rows_vs_naive']:.1f}x, "
          f"privacy {result['speedup_privacy_vs_naive']:.1f}x")
    return result


if __name__ == "__main__":
    main()
