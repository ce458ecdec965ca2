"""Every registered knowledge-tracing model: shapes, learning on a tiny batch, checkpoint round
trip, build by name, and the common ``predict_next`` that mastery and forecasts use."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edu_dl.checks import KT_MODELS
from edu_dl.ml.checkpoint import checkpoint_bytes, load_checkpoint
from edu_dl.ml.kt.data import (
    REPEAT_FIRST,
    REPEAT_LAST_RIGHT,
    REPEAT_LAST_WRONG,
    KTSequence,
    collate,
    repeat_states,
)
from edu_dl.ml.kt.inference import explain_skill, mastery, mastery_many, predict_next
from edu_dl.ml.kt.pipeline import RawSequence, TrainedKT, choose_model, train_kt
from edu_dl.ml.registry import build_model, model_names

CPU = torch.device("cpu")
SMALL = {
    "dkt": {"hidden_size": 16, "embedding_size": 8},
    "dkt-rasch": {"hidden_size": 16, "embedding_size": 8},
    "akt": {"d_model": 16, "num_heads": 2, "ff_size": 16, "output_size": 16},
}


def sequences(count: int, seed: int = 0) -> list[KTSequence]:
    rng = np.random.default_rng(seed)
    result = []
    for _ in range(count):
        length = int(rng.integers(4, 25))
        items = rng.integers(2, 12, size=length).tolist()
        correct = (rng.random(length) < 0.3 + 0.05 * np.array(items)).astype(int).tolist()
        result.append(
            KTSequence(
                skills=[(2 + item % 4,) for item in items],
                correct=correct,
                items=items,
                repeats=repeat_states(items, correct),
            )
        )
    return result


def build(name: str, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(name, {"num_skills": 6, "num_items": 12, **SMALL[name]})


def test_the_checks_know_every_registered_kt_model():
    assert tuple(model_names(task="kt")) == KT_MODELS


@pytest.mark.parametrize("name", KT_MODELS)
def test_output_shapes(name):
    model = build(name).eval()
    batch = collate(sequences(3))

    output = model(batch)

    length = batch.correct.shape[1]
    assert output.logits.shape == output.probabilities.shape == (3, length - 1)
    assert output.mask.shape == (3, length - 1)
    assert output.loss.shape == ()
    next_skills = torch.tensor([[[2], [3]]] * 3)
    next_items = torch.tensor([[4, 1]] * 3)
    assert model.predict_next(batch, next_skills, next_items).shape == (3, 2)


@pytest.mark.parametrize("name", KT_MODELS)
def test_loss_falls_when_overfitting_a_tiny_batch(name):
    model = build(name)
    batch = collate(sequences(4))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    first = float(model(batch).loss.detach())

    for _ in range(80):
        optimizer.zero_grad()
        model(batch).loss.backward()
        optimizer.step()

    assert float(model(batch).loss.detach()) < first * 0.7


@pytest.mark.parametrize("name", KT_MODELS)
def test_checkpoint_round_trip_gives_equal_outputs(name):
    model = build(name).eval()
    batch = collate(sequences(3))

    loaded = load_checkpoint(checkpoint_bytes(model))

    assert loaded.name == name
    assert loaded.config == model.config.__dict__
    assert torch.allclose(model(batch).logits, loaded.model(batch).logits, atol=1e-6)


@pytest.mark.parametrize("name", KT_MODELS)
def test_predictions_use_only_the_past(name):
    """Changing an answer must not change the prediction of that answer or of earlier ones."""
    model = build(name).eval()
    original = sequences(1, seed=3)[0]
    changed = KTSequence(
        skills=original.skills,
        correct=[*original.correct[:3], 1 - original.correct[3], *original.correct[4:]],
        items=original.items,
        repeats=original.repeats,
    )

    before = model(collate([original])).probabilities[0]
    after = model(collate([changed])).probabilities[0]

    # probabilities[t - 1] predicts answer t: answers 0..3 are predicted without answer 3
    assert torch.allclose(before[:3], after[:3], atol=1e-6)
    assert not torch.allclose(before[3:], after[3:], atol=1e-6)


@pytest.mark.parametrize("name", KT_MODELS)
def test_batched_inference_equals_one_student_at_a_time(name):
    model = build(name).eval()
    many = [*sequences(4, seed=5), KTSequence(skills=[], correct=[], items=[])]

    batched = mastery_many(model, many, 6, device=CPU, max_length=10)
    single = np.stack([mastery(model, s, 6, device=CPU, max_length=10) for s in many])

    np.testing.assert_allclose(batched, single, atol=1e-5)
    assert (batched[:, :2] == 0).all()
    assert ((batched[:, 2:] > 0) & (batched[:, 2:] < 1)).all()


def test_explanations_name_positions_of_the_history():
    model = build("dkt-rasch").eval()
    sequence = sequences(1, seed=2)[0]

    influences = explain_skill(model, sequence, 2, device=CPU, top_k=3, window=5)

    assert len(influences) == 3
    assert all(len(sequence) - 5 <= i.position < len(sequence) for i in influences)
    changes = [abs(i.change) for i in influences]
    assert changes == sorted(changes, reverse=True)


def test_repeat_states_follow_the_last_outcome_on_the_same_item():
    assert repeat_states(["a", "b", "a", "a", None], [0, 1, 1, 0, 1]) == [
        REPEAT_FIRST,
        REPEAT_FIRST,
        REPEAT_LAST_WRONG,
        REPEAT_LAST_RIGHT,
        REPEAT_FIRST,
    ]


def test_a_query_on_an_item_already_answered_uses_the_last_outcome():
    model = build("dkt-rasch").eval()
    with torch.no_grad():
        model.repeat_bias.weight[REPEAT_LAST_RIGHT] = 3.0
    history = KTSequence(skills=[(2,)], correct=[1], items=[5])

    seen, unseen = predict_next(model, history, [((2,), 5), ((2,), 6)], device=CPU)

    assert seen > unseen


@pytest.mark.parametrize("name", KT_MODELS)
def test_the_training_pipeline_trains_saves_and_reloads(name):
    rng = np.random.default_rng(0)
    raw = []
    for student in range(30):
        items = [f"q{int(i)}" for i in rng.integers(0, 8, size=12)]
        raw.append(
            RawSequence(
                key=str(student),
                skills=[(f"s{int(item[1:]) % 3}",) for item in items],
                correct=[int(rng.random() < 0.6) for _ in items],
                items=items,
            )
        )

    trained = train_kt(
        raw[:24],
        raw[24:],
        model_name=name,
        model_config=SMALL[name],
        train_config={"epochs": 2, "batch_size": 8},
        device=CPU,
    )
    reloaded = TrainedKT.from_checkpoint(load_checkpoint(trained.checkpoint({"auc": 0.5})))

    assert [e.epoch for e in trained.history] == [1, 2]
    assert reloaded.skill_vocabulary.keys == ["s0", "s1", "s2"]
    assert reloaded.evaluate(raw[24:], device=CPU) == trained.evaluate(raw[24:], device=CPU)


def test_auto_picks_the_attention_model_for_items_and_the_recurrent_one_for_skills_only():
    with_items = [RawSequence(key="a", skills=[("s",)], correct=[1], items=["q1"])]
    skills_only = [RawSequence(key="b", skills=[("s",)], correct=[1], items=None)]

    assert choose_model("auto", with_items) == "akt"
    assert choose_model("auto", skills_only) == "dkt-rasch"
    assert choose_model("dkt", with_items) == "dkt"
