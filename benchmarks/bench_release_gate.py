"""How often a release gate opens on grades that then agree under the promised QWK.

Reads the ``--predictions`` CSV of ``evaluate_grader`` (``row,item_id,gold,predicted,
confidence``: one row per test answer, graded by graders that never saw it) and, for each item,
draws a random check from its answers many times. Each draw builds the release curve on the
check (``release_curve``, as a grader's is built on its random check), opens a gate on it and
releases the item's other answers at that confidence or above; the released grades' agreement
with the gold scores (``subset_agreement``, the measure the promise is made in) is then read.
Two gates are compared:

- ``walk``: the production gate (``edu_dl.ml.grading.policy.release_gate``): the points are
  tested surest first and the walk stops at the first under the bar;
- ``any``: the least sure point whose low end passes, wherever it lies on the curve (the
  gate before the walk).

It prints, per item and gate, the mean share of the other answers released, their mean
agreement, and the share of draws that released grades agreeing under the bar; then the share
of all answers released. Unlike the review simulation the graders here learnt from every
training answer, and the check is drawn anew each time, so the figures isolate the gate.

    .venv/bin/python manage.py evaluate_grader --format asap-sas \\
        --data ../shared/data/asap_sas --encoder "" --predictions var/eval/sas.csv --json -
    .venv/bin/python benchmarks/bench_release_gate.py var/eval/sas.csv

Levels are read from the CSV's scores in whole points, from each item's lowest score up, as
ASAP-SAS and ASAP-AES score.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_release_frontier import read_predictions  # the CSV's reader, beside this script

from edu_dl.ml.grading.policy import point_agreement, release_gate
from edu_dl.ml.grading.scorer import release_curve
from edu_dl.ml.metrics import subset_agreement


def any_point_gate(curve, *, min_qwk: float, min_confidence: float) -> float | None:
    """The confidence of the least sure point whose agreement passes, anywhere on the curve."""
    passing = [
        float(point["confidence"])
        for point in curve
        if (agreement := point_agreement(point)) is not None and agreement >= min_qwk
    ]
    return max(min(passing), min_confidence) if passing else None


def walk_gate(curve, *, min_qwk: float, min_confidence: float) -> float | None:
    return release_gate(curve, min_qwk=min_qwk, min_confidence=min_confidence).confidence


GATES = {"walk": walk_gate, "any": any_point_gate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("predictions", type=Path)
    parser.add_argument("--check-share", type=float, default=0.3)
    parser.add_argument("--draws", type=int, default=30)
    parser.add_argument("--min-qwk", type=float, default=0.8)
    parser.add_argument("--min-confidence", type=float, default=0.5)
    args = parser.parse_args()

    try:
        items = read_predictions(args.predictions)
    except (OSError, ValueError) as error:
        parser.error(str(error))
    total = sum(len(gold) for gold, _, _ in items.values())
    released_answers = dict.fromkeys(GATES, 0.0)
    print(
        f"check {args.check_share:.0%} of each item's answers, {args.draws} draws, "
        f"bar {args.min_qwk}, least confidence {args.min_confidence}"
    )
    for item_id, (gold, predicted, confidence) in items.items():
        n_levels = int(max(gold.max(), predicted.max())) + 1
        figures = {name: ([], []) for name in GATES}
        for draw in range(args.draws):
            checked = np.random.default_rng(draw).random(len(gold)) < args.check_share
            curve = release_curve(confidence[checked], gold[checked], predicted[checked], n_levels)
            for name, gate in GATES.items():
                cut = gate(curve, min_qwk=args.min_qwk, min_confidence=args.min_confidence)
                shares, agreements = figures[name]
                released = ~checked & (confidence >= cut) if cut is not None else None
                if released is None or not released.any():
                    shares.append(0.0)
                    continue
                shares.append(released.sum() / (~checked).sum())
                agreements.append(subset_agreement(gold, predicted, n_levels, released)[0])
        line = [f"item {item_id:>4} ({len(gold)} answers)"]
        for name, (shares, agreements) in figures.items():
            released_answers[name] += float(np.mean(shares)) * len(gold)
            if agreements:
                under = float(np.mean(np.array(agreements) < args.min_qwk))
                line.append(
                    f"{name}: released {np.mean(shares):.3f} at {np.mean(agreements):.3f}, "
                    f"under the bar in {under:.0%} of {len(agreements)} releasing draws"
                )
            else:
                line.append(f"{name}: released nothing")
        print(" | ".join(line))
    for name, count in released_answers.items():
        print(f"{name}: {count / total:.3f} of all answers released")


if __name__ == "__main__":
    main()
