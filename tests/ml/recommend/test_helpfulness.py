"""The resource-helpfulness model: shapes, learning, checkpoints, build by name, what it learns
from feedback of known structure, and how it scores a resource it never saw."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edu_dl.ml.checkpoint import load_checkpoint
from edu_dl.ml.kt.data import UNKNOWN, Vocabulary
from edu_dl.ml.recommend.helpfulness import (
    FeedbackExample,
    HelpfulnessConfig,
    HelpfulnessUnavailable,
    ResourceHelpfulness,
    TrainedHelpfulness,
    resource_mean_baseline,
    split_by_student,
    train_helpfulness,
)
from edu_dl.ml.registry import build_model, model_names, registered

CPU = torch.device("cpu")


def untrained(seed: int = 0) -> TrainedHelpfulness:
    torch.manual_seed(seed)
    model = build_model(
        "resource-helpfulness", {"num_skills": 5, "num_resources": 4, "dropout": 0.0}
    )
    return TrainedHelpfulness(
        model, Vocabulary(["algebra", "fractions", "graphs"]), Vocabulary(["video", "reading"])
    )


def tiny_examples() -> list[FeedbackExample]:
    return [
        FeedbackExample("ann", "video", {"algebra": 1.0}, {"algebra": 0.2}, 1.0),
        FeedbackExample("ann", "reading", {"fractions": 2.0, "graphs": 1.0}, {}, 0.0, 0.5),
        FeedbackExample("bob", "video", {"algebra": 1.0}, {"algebra": 0.9}, 0.0),
        FeedbackExample("bob", "reading", {"fractions": 1.0}, {"fractions": 0.3}, 1.0),
        FeedbackExample("cat", "quiz", {"graphs": 1.0, "algebra": 1.0}, {"graphs": 0.5}, 1.0),
        FeedbackExample("cat", "video", {"algebra": 1.0}, {"algebra": 0.6}, 0.0, 0.5),
    ]


def low_students_helped_by_a(students: int = 300, per_student: int = 6, seed: int = 0):
    """Resource A (on skill s1) helps students low on s1 and not the others; resource B (on the
    same skill) the other way round. Each resource is as helpful as the other on average, so
    the per-resource baseline cannot tell them apart: only mastery x resource can."""
    rng = np.random.default_rng(seed)
    examples = []
    for student in range(students):
        mastery = {"s1": float(rng.random()), "s2": float(rng.random())}
        low = mastery["s1"] < 0.5
        for _ in range(per_student):
            resource = "A" if rng.random() < 0.5 else "B"
            chance = (0.9 if low else 0.15) if resource == "A" else (0.15 if low else 0.85)
            label = float(rng.random() < chance)
            examples.append(
                FeedbackExample(f"student-{student}", resource, {"s1": 1.0}, mastery, label)
            )
    return examples


def resources_on_x_help_students_low_on_x(students: int = 300, seed: int = 1):
    """Five resources on skill x help students low on x; five on skill y never help."""
    rng = np.random.default_rng(seed)
    examples = []
    for student in range(students):
        mastery = {"x": float(rng.random()), "y": float(rng.random())}
        for _ in range(6):
            on_x = rng.random() < 0.5
            index = int(rng.integers(5))
            resource, skill = (f"x-{index}", "x") if on_x else (f"y-{index}", "y")
            chance = (0.9 if mastery["x"] < 0.5 else 0.1) if on_x else 0.1
            label = float(rng.random() < chance)
            examples.append(
                FeedbackExample(f"student-{student}", resource, {skill: 1.0}, mastery, label)
            )
    return examples


def test_output_shapes():
    trained = untrained()
    batch = trained.encode_examples(tiny_examples())

    output = trained.model(batch)

    assert batch.skills.shape == batch.skill_weights.shape == batch.mastery.shape == (6, 2)
    assert batch.resources.tolist() == [2, 3, 2, 3, UNKNOWN, 2]
    assert torch.allclose(batch.skill_weights.sum(1), torch.ones(6))
    assert output.logits.shape == output.probabilities.shape == (6,)
    assert output.loss.shape == ()
    assert ((output.probabilities > 0) & (output.probabilities < 1)).all()


def test_without_labels_there_is_no_loss():
    trained = untrained()
    batch = trained.encode([("video", {"algebra": 1.0}, {"algebra": 0.4})])

    output = trained.model(batch)

    assert output.loss is None
    assert output.logits.shape == (1,)


def test_loss_falls_when_overfitting_a_tiny_batch():
    trained = untrained()
    batch = trained.encode_examples(tiny_examples())
    optimizer = torch.optim.Adam(trained.model.parameters(), lr=0.05)
    first = float(trained.model(batch).loss.detach())

    for _ in range(100):
        optimizer.zero_grad()
        trained.model(batch).loss.backward()
        optimizer.step()

    assert float(trained.model(batch).loss.detach()) < first * 0.3


def test_example_weights_scale_the_loss():
    trained = untrained()
    batch = trained.encode_examples(tiny_examples()[:2])
    output = trained.model(batch)
    per_example = torch.nn.functional.binary_cross_entropy_with_logits(
        output.logits, batch.labels, reduction="none"
    )

    expected = (per_example[0] * 1.0 + per_example[1] * 0.5) / 1.5

    assert torch.allclose(output.loss, expected)


def test_built_by_name_as_a_recommender_model():
    model = build_model("resource-helpfulness", {"num_skills": 4, "num_resources": 3, "dim": 8})

    assert isinstance(model, ResourceHelpfulness)
    assert registered("resource-helpfulness").task == "recommender"
    assert "resource-helpfulness" in model_names(task="recommender")
    assert model.config == HelpfulnessConfig(num_skills=4, num_resources=3, dim=8)
    with pytest.raises(ValueError, match="unknown option"):
        build_model("resource-helpfulness", {"num_skills": 4, "num_resources": 3, "dims": 8})


def test_a_trained_model_round_trips_through_its_checkpoint():
    trained = train_helpfulness(low_students_helped_by_a(students=40), device=CPU, epochs=3)
    students = [{"s1": 0.1}, {"s1": 0.8, "s2": 0.3}, {}]
    resources = {"A": {"s1": 1.0}, "B": {"s1": 1.0}, "new": {"s1": 0.5, "s2": 0.5}}

    loaded = TrainedHelpfulness.from_checkpoint(load_checkpoint(trained.to_bytes()))

    for name, tensor in trained.model.state_dict().items():
        assert torch.allclose(tensor, loaded.model.state_dict()[name]), name
    for mastery in students:
        assert loaded.score(mastery, resources) == pytest.approx(
            trained.score(mastery, resources), abs=1e-6
        )
    assert loaded.skill_vocabulary.keys == trained.skill_vocabulary.keys == ["s1"]
    assert loaded.resource_vocabulary.keys == trained.resource_vocabulary.keys == ["A", "B"]
    assert loaded.metrics == trained.metrics
    assert loaded.model.config == trained.model.config


def test_a_file_of_another_model_is_refused():
    other = build_model("dkt", {"num_skills": 4})
    from edu_dl.ml.checkpoint import checkpoint_bytes

    with pytest.raises(HelpfulnessUnavailable, match="holds a 'dkt' model"):
        TrainedHelpfulness.from_bytes(checkpoint_bytes(other))


def test_it_learns_which_resource_helps_students_low_on_the_skill():
    examples = low_students_helped_by_a()

    trained = train_helpfulness(examples, device=CPU, seed=0)

    metrics = trained.metrics
    low = trained.score({"s1": 0.1, "s2": 0.5}, {"A": {"s1": 1.0}, "B": {"s1": 1.0}})
    high = trained.score({"s1": 0.9, "s2": 0.5}, {"A": {"s1": 1.0}, "B": {"s1": 1.0}})
    assert metrics["validation_auc"] > 0.78
    assert metrics["baseline_validation_auc"] < 0.6
    assert metrics["validation_log_loss"] < metrics["baseline_validation_log_loss"] - 0.1
    train, validation = split_by_student(examples, share=0.2)
    assert (metrics["n_train"], metrics["n_validation"]) == (len(train), len(validation))
    assert metrics["validation_students"] == len({e.student_key for e in validation})
    assert metrics["train_students"] + metrics["validation_students"] == 300
    assert 1 <= metrics["best_epoch"] <= metrics["epochs_run"] <= 40
    assert low["A"] > 0.7 > 0.3 > low["B"]
    assert high["B"] > 0.7 > 0.3 > high["A"]


def test_an_unseen_resource_is_scored_from_its_skills():
    trained = train_helpfulness(resources_on_x_help_students_low_on_x(), device=CPU, seed=0)
    new = {"new-on-x": {"x": 1.0}, "new-on-y": {"y": 1.0}, "other-new-on-x": {"x": 1.0}}

    low = trained.score({"x": 0.1, "y": 0.1}, new)
    high = trained.score({"x": 0.9, "y": 0.1}, new)

    assert trained.resource_vocabulary.index("new-on-x") == UNKNOWN
    # Unknown resources have no residual and no bias: only their skills tell them apart.
    assert low["new-on-x"] == low["other-new-on-x"]
    assert low["new-on-x"] > 0.6 > 0.3 > low["new-on-y"]
    assert high["new-on-x"] < 0.3
    assert trained.metrics["validation_auc"] > 0.75


def test_training_is_deterministic_for_a_seed():
    examples = low_students_helped_by_a(students=40)

    first = train_helpfulness(examples, device=CPU, seed=3, epochs=4)
    second = train_helpfulness(examples, device=CPU, seed=3, epochs=4)

    first.metrics.pop("train_seconds")
    second.metrics.pop("train_seconds")
    assert first.metrics == second.metrics
    for name, tensor in first.model.state_dict().items():
        assert torch.equal(tensor, second.model.state_dict()[name]), name


def test_epochs_are_reported_and_training_stops_early():
    reports = []

    trained = train_helpfulness(
        low_students_helped_by_a(students=40),
        device=CPU,
        epochs=40,
        train_config={"patience": 1, "learning_rate": 0.05},
        on_epoch=reports.append,
    )

    assert [report.epoch for report in reports] == list(range(1, len(reports) + 1))
    assert trained.metrics["stopped_early"] is True
    assert trained.metrics["epochs_run"] == len(reports) < 40
    best = min(reports, key=lambda report: report.val_loss)
    assert trained.metrics["best_epoch"] == best.epoch
    assert trained.metrics["validation_log_loss"] == pytest.approx(best.val_loss, abs=1e-6)


def test_validation_holds_out_whole_students_and_keeps_them_when_others_join():
    examples = low_students_helped_by_a(students=200, per_student=2)
    joined = [
        FeedbackExample(f"newcomer-{e.student_key}", e.resource_key, e.skills, e.mastery, e.label)
        for e in low_students_helped_by_a(students=100, per_student=2, seed=9)
    ]

    train, validation = split_by_student(examples, share=0.2, salt="course:1")
    train_later, validation_later = split_by_student(examples + joined, share=0.2, salt="course:1")

    held_out = {e.student_key for e in validation}
    assert 25 <= len(held_out) <= 55
    assert held_out.isdisjoint(e.student_key for e in train)
    assert len(train) + len(validation) == len(examples)
    assert held_out == {e.student_key for e in validation_later} - {e.student_key for e in joined}
    assert {e.student_key for e in train} <= {e.student_key for e in train_later}
    # Another course (another salt) holds out other students.
    _, elsewhere = split_by_student(examples, share=0.2, salt="course:2")
    assert {e.student_key for e in elsewhere} != held_out


def test_two_students_are_split_one_and_one():
    examples = [e for e in tiny_examples() if e.student_key in ("ann", "bob")]

    train, validation = split_by_student(examples, share=0.2)

    assert len({e.student_key for e in train}) == len({e.student_key for e in validation}) == 1


def test_feedback_from_one_student_is_refused():
    examples = [e for e in tiny_examples() if e.student_key == "ann"]

    with pytest.raises(ValueError, match="from 1 students; training needs examples from at least"):
        train_helpfulness(examples, device=CPU)


def test_the_baseline_is_each_resources_shrunk_mean():
    train = [
        FeedbackExample("ann", "video", {}, {}, 1.0),
        FeedbackExample("bob", "video", {}, {}, 1.0),
        FeedbackExample("cat", "reading", {}, {}, 0.0, 0.5),
    ]
    predict = resource_mean_baseline(train)

    # overall mean 2 / 2.5 = 0.8; video (2 + 0.8) / 3; reading (0 + 0.8) / 1.5; unseen 0.8
    probe = [FeedbackExample("x", key, {}, {}, 0.0) for key in ("video", "reading", "quiz")]
    np.testing.assert_allclose(predict(probe), [2.8 / 3, 0.8 / 1.5, 0.8])


def test_scoring_nothing_gives_nothing_and_a_resource_without_skills_still_scores():
    trained = untrained()

    assert trained.score({"algebra": 0.5}, {}) == {}
    scores = trained.score({"algebra": 0.5}, {"video": {}, "reading": {"algebra": 1.0}})
    assert set(scores) == {"video", "reading"}
    assert all(0 < value < 1 for value in scores.values())
