"""DKT: shapes, learning on a tiny batch, checkpoint round trip, build by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edu_dl.ml.checkpoint import CheckpointError, checkpoint_bytes, load_checkpoint
from edu_dl.ml.kt.data import KTSequence, Vocabulary, collate, split_into_windows
from edu_dl.ml.registry import build_model, model_names
from edu_dl.ml.train import TrainConfig, fit_kt

CPU = torch.device("cpu")


def make_sequences(count: int, num_skills: int = 5, seed: int = 0) -> list[KTSequence]:
    """Students whose success depends on ability and skill difficulty (known structure)."""
    rng = np.random.default_rng(seed)
    sequences = []
    for _ in range(count):
        ability = rng.normal()
        length = int(rng.integers(5, 30))
        skills = rng.integers(2, 2 + num_skills, size=length)
        chance = 1 / (1 + np.exp(-(ability + 0.8 * (skills - 2 - num_skills / 2))))
        correct = (rng.random(length) < chance).astype(int)
        sequences.append(KTSequence(skills=[(int(s),) for s in skills], correct=correct.tolist()))
    return sequences


def test_dkt_is_registered_and_built_by_name():
    model = build_model("dkt", {"num_skills": 7, "hidden_size": 16})

    assert "dkt" in model_names(task="kt")
    assert model.config.hidden_size == 16
    assert model.registered_name == "dkt"


def test_building_with_an_unknown_option_names_it():
    with pytest.raises(ValueError, match="hiden_size"):
        build_model("dkt", {"num_skills": 7, "hiden_size": 16})


def test_dkt_output_shapes_and_mask():
    torch.manual_seed(0)
    model = build_model("dkt", {"num_skills": 7, "hidden_size": 8, "embedding_size": 4})
    batch = collate(
        [
            KTSequence(skills=[(2,), (3, 4), (2,)], correct=[1, 0, 1]),
            KTSequence(skills=[(5,), (6,)], correct=[0, 1]),
        ]
    )

    output = model(batch)

    assert batch.skills.shape == (2, 3, 2)
    assert output.logits.shape == (2, 2)
    assert output.probabilities.shape == (2, 2)
    assert output.mask.tolist() == [[True, True], [True, False]]
    assert output.loss.shape == ()
    next_skills = torch.tensor([[[2], [3], [4]], [[5], [6], [2]]])
    assert model.predict_next(batch, next_skills, torch.ones(2, 3, dtype=torch.long)).shape == (
        2,
        3,
    )


def test_loss_falls_when_overfitting_a_tiny_batch():
    torch.manual_seed(0)
    model = build_model("dkt", {"num_skills": 7, "hidden_size": 16, "dropout": 0.0})
    batch = collate(make_sequences(4))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    first = float(model(batch).loss.detach())

    for _ in range(60):
        optimizer.zero_grad()
        loss = model(batch).loss
        loss.backward()
        optimizer.step()

    assert float(model(batch).loss.detach()) < first * 0.5


def test_checkpoint_round_trip_gives_equal_outputs():
    torch.manual_seed(0)
    model = build_model("dkt", {"num_skills": 7, "hidden_size": 8}).eval()
    batch = collate(make_sequences(3))

    loaded = load_checkpoint(checkpoint_bytes(model, metrics={"auc": 0.7}, extra={"a": [1, 2]}))

    assert loaded.name == "dkt"
    assert loaded.metrics == {"auc": 0.7}
    assert loaded.extra == {"a": [1, 2]}
    assert torch.allclose(model(batch).logits, loaded.model(batch).logits)


def test_foreign_bytes_are_not_a_checkpoint():
    with pytest.raises(CheckpointError):
        load_checkpoint(b"not a checkpoint at all")


def test_fit_learns_structure_and_keeps_the_best_epoch():
    sequences = make_sequences(120)
    model = build_model("dkt", {"num_skills": 7, "hidden_size": 16})
    reports = []

    result = fit_kt(
        model,
        sequences[:90],
        sequences[90:],
        TrainConfig(epochs=4, batch_size=16, learning_rate=0.01, seed=1),
        device=CPU,
        on_epoch=reports.append,
    )

    assert [r.epoch for r in reports] == list(range(1, len(reports) + 1))
    assert result.best_val_auc == max(r.val_auc for r in reports)
    assert result.best_val_auc > 0.6


def test_windows_cut_long_sequences_and_drop_single_answers():
    sequence = KTSequence(skills=[(2,)] * 5, correct=[1, 0, 1, 1, 0])

    windows = split_into_windows([sequence], max_length=2)

    assert [w.correct for w in windows] == [[1, 0], [1, 1]]


def test_vocabulary_maps_unknown_keys_to_the_unknown_index():
    vocabulary = Vocabulary.from_keys([30, 10, 20])

    assert [vocabulary.index(k) for k in (10, 20, 30, 99)] == [2, 3, 4, 1]
    assert vocabulary.size == 5
