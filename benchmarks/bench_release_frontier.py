"""How much grading a set of graders could take off the teacher at a given quality, at best.

Reads the ``--predictions`` CSV of ``evaluate_grader`` (``row,item_id,gold,predicted,
confidence``: one row per test answer) and plays the release policy with hindsight: each item's
test answers are taken surest first, and a share of them is "released" (the model's level
replaces the gold one) while the rest count as graded by hand. Because the shares are chosen on
the test answers' own gold scores, the figures estimate the best the review simulation
(``evaluate_grader --simulate-review``) could reach with graders of this quality (the greedy
choice below is close to the best, not proven to be it): there the graders
learn from fewer answers, choose their shares on a random check of 10 % that the teacher
also grades, and must decide before they are right.

It prints, per item, the final QWK (released plus hand grades against the gold scores) at each
tenth released; then, for a few QWK bars, the least hand share over all answers for which the
mean of the items' final QWKs stays at or above the bar (shares chosen greedily, item by item,
the cheapest loss of QWK per answer released first), with no per-item gate; and, for a few gates,
what releasing each item's largest surest share whose agreement on the item's scale
(``subset_agreement``, the release curve's measure) reaches the gate gives.

    .venv/bin/python manage.py evaluate_grader --format asap-sas \\
        --data ../shared/data/asap_sas --encoder "" --predictions var/eval/sas.csv --json -
    .venv/bin/python benchmarks/bench_release_frontier.py var/eval/sas.csv

Levels are read from the CSV's scores in whole points, from each item's lowest score up, as
ASAP-SAS and ASAP-AES score.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edu_dl.ml.metrics import quadratic_weighted_kappa, subset_agreement

SHARES = np.linspace(0.0, 1.0, 21)  # released shares tried, in twentieths


class Item:
    """One item's test answers, surest first; those of the random check (``audited``) last,
    never released."""

    def __init__(self, gold, predicted, confidence, audited):
        audited = np.asarray(audited, dtype=bool)
        order = np.lexsort((-np.asarray(confidence, dtype=np.float64), audited))
        self.gold, self.predicted = gold[order], predicted[order]
        self.eligible = int((~audited).sum())
        self.n_levels = int(max(self.gold.max(), self.predicted.max())) + 1
        self.final = [self.final_qwk(self.count(share)) for share in SHARES]

    def count(self, share: float) -> int:
        """How many answers a share of those that may be released is."""
        return round(share * self.eligible)

    def final_qwk(self, released: int) -> float:
        final = self.gold.copy()
        final[:released] = self.predicted[:released]
        return quadratic_weighted_kappa(self.gold, final, self.n_levels)

    def gated(self, gate: float) -> int:
        """The most surest answers (of those that may be released) whose agreement on the item's
        scale reaches ``gate``: the point estimate of ``subset_agreement``, the release curve's
        measure, with hindsight on the gold scores."""
        inside = np.zeros(len(self.gold), dtype=bool)
        best = 0
        for released in range(1, self.eligible + 1):
            inside[released - 1] = True
            agreement, _ = subset_agreement(
                self.gold, self.predicted, self.n_levels, inside, draws=1
            )
            if agreement >= gate:
                best = released
        return best


def read_predictions(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The CSV's answers by item (ordered by item id, shorter first): the teacher's and the
    grader's levels (scores in whole points, counted from the item's lowest) and the
    confidences. ValueError naming the file and line of a missing column or a value that is
    not a number."""
    columns: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"item_id", "gold", "predicted", "confidence"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: no column {', '.join(sorted(missing))}")
        for line, record in enumerate(reader, start=2):
            try:
                values = tuple(float(record[c]) for c in ("gold", "predicted", "confidence"))
            except (TypeError, ValueError):
                raise ValueError(
                    f"{path}, line {line}: gold, predicted and confidence must be numbers"
                ) from None
            columns[record["item_id"]].append(values)
    if not columns:
        raise ValueError(f"{path}: no answers")
    items = {}
    for item_id, values in sorted(columns.items(), key=lambda kv: (len(kv[0]), kv[0])):
        gold, predicted, confidence = (np.array(column) for column in zip(*values, strict=True))
        gold, predicted = np.rint(gold).astype(np.int64), np.rint(predicted).astype(np.int64)
        lowest = min(gold.min(), predicted.min())
        items[item_id] = (gold - lowest, predicted - lowest, confidence)
    return items


def read(path: Path, *, audit_share: float, seed: int) -> dict[str, Item]:
    """The CSV's answers by item (:func:`read_predictions`); ``audit_share`` of each item's
    drawn at random (``seed``) for the random check."""
    rng = np.random.default_rng(seed)
    return {
        item_id: Item(gold, predicted, confidence, rng.random(len(gold)) < audit_share)
        for item_id, (gold, predicted, confidence) in read_predictions(path).items()
    }


def least_hand(items: dict[str, Item], bar: float) -> tuple[float, float, dict[str, float]]:
    """Greedy: release a twentieth more of the item that loses least QWK per answer, while the
    mean final QWK stays at or above ``bar``."""
    steps = dict.fromkeys(items, 0)
    total = sum(len(item.gold) for item in items.values())

    def mean() -> float:
        return float(np.mean([items[i].final[steps[i]] for i in items]))

    while True:
        candidates = [
            (
                (item.final[steps[i]] - item.final[steps[i] + 1])
                / max(1, item.count(SHARES[steps[i] + 1]) - item.count(SHARES[steps[i]])),
                i,
            )
            for i, item in items.items()
            if steps[i] + 1 < len(SHARES)
        ]
        if not candidates:
            break
        _, chosen = min(candidates)
        steps[chosen] += 1
        if mean() < bar:
            steps[chosen] -= 1
            break
    released = sum(items[i].count(SHARES[steps[i]]) for i in items)
    return 1 - released / total, mean(), {i: float(SHARES[steps[i]]) for i in items}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("predictions", type=Path, help="evaluate_grader --predictions CSV")
    parser.add_argument("--bars", default="0.90,0.92,0.94", help="mean final QWK bars")
    parser.add_argument("--gates", default="0.80,0.83,0.85,0.90", help="per-item gates")
    parser.add_argument(
        "--audit-share",
        type=float,
        default=0.0,
        help="share of each item's answers always graded by hand, drawn at random "
        "(production's random check: 0.1)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random check's draw")
    args = parser.parse_args(argv)
    if not 0 <= args.audit_share < 1:
        parser.error(f"--audit-share must be from 0 to below 1, not {args.audit_share}")
    try:
        items = read(args.predictions, audit_share=args.audit_share, seed=args.seed)
    except (OSError, ValueError) as error:
        parser.error(str(error))
    total = sum(len(item.gold) for item in items.values())

    audited = sum(len(item.gold) - item.eligible for item in items.values())
    print(f"{total} answers, {audited} of them in the random check (graded by hand)")
    print("final QWK by share released of those that may be, surest first (tenths):")
    print("item  answers  " + "  ".join(f"{s:4.0%}" for s in SHARES[::2]))
    for item_id, item in items.items():
        row = "  ".join(f"{q:.3f}" for q in item.final[::2])
        print(f"{item_id:>4}  {len(item.gold):7d}  {row}")

    print("\nleast hand share for a mean final QWK, no per-item gate (hindsight):")
    for bar in (float(b) for b in args.bars.split(",")):
        hand, reached, shares = least_hand(items, bar)
        released = ", ".join(f"{i} {s:.0%}" for i, s in shares.items())
        print(f"  bar {bar:g}: hand {hand:.3f}, mean QWK {reached:.3f}; released: {released}")

    print("\nper-item gate on the agreement of the released share (hindsight):")
    for gate in (float(g) for g in args.gates.split(",")):
        released = {i: item.gated(gate) for i, item in items.items()}
        qwk = float(np.mean([items[i].final_qwk(released[i]) for i in items]))
        hand = 1 - sum(released.values()) / total
        print(f"  gate {gate:g}: hand {hand:.3f}, mean final QWK {qwk:.3f}")


if __name__ == "__main__":
    main()
