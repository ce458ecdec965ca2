"""Training a course's recommender model (what helped similar students) as a training run."""

from __future__ import annotations

import pytest

from edu_dl.ml.recommend.helpfulness import TrainedHelpfulness
from edu_dl.models import ModelVersion, Resource, TrainingRun
from edu_dl.selectors.recommending import (
    resource_feedback_examples,
    resource_feedback_fingerprint,
)
from edu_dl.services.artifacts import artifact_read_verified
from edu_dl.services.errors import ValidationFailed
from edu_dl.services.training import training_request, training_run_execute
from tests.factories import TrainingRunFactory
from tests.recommender_data import make_feedback_course

# No message reaches a broker: the shared ``sent`` fixture records them.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sent")]


def recommender_run_row(course) -> TrainingRun:
    """A queued run made as a row, for data that a request would refuse."""
    return TrainingRunFactory(
        kind="recommender",
        course=course,
        idempotency_key=f"recommender:course:{course.pk}",
    )


def test_a_recommender_run_learns_the_courses_feedback_and_activates_it():
    course = make_feedback_course(students=40)
    run = training_request(kind="recommender", course=course)

    training_run_execute(run_id=run.pk, task_id="t1", worker="w1")

    run.refresh_from_db()
    version = ModelVersion.objects.get()
    metrics = version.metrics
    assert (run.status, run.progress, run.stage, run.error) == ("succeeded", 100, "done", "")
    assert (version.kind, version.scope_type, version.scope_key, version.course) == (
        "recommender",
        "course",
        f"course:{course.pk}",
        course,
    )
    assert (version.status, version.version, version.architecture) == (
        "active",
        1,
        "resource-helpfulness",
    )
    assert (metrics["feedback_examples"], metrics["votes"], metrics["completions"]) == (
        160,
        80,
        80,
    )
    assert metrics["n_train"] + metrics["n_validation"] == 160
    assert metrics["train_students"] + metrics["validation_students"] == 40
    assert metrics["validation_auc"] > 0.9
    assert metrics["validation_log_loss"] < metrics["baseline_validation_log_loss"]
    assert len(run.epoch_metrics) == metrics["epochs_run"]
    assert [m["epoch"] for m in run.epoch_metrics] == list(range(1, metrics["epochs_run"] + 1))
    assert set(run.epoch_metrics[0]) >= {"train_loss", "val_auc", "val_loss"}
    assert version.gate_reason == (
        f"activated: first version (validation_auc {metrics['validation_auc']:.4f})"
    )
    assert version.config["train"]["seed"] == 0
    assert version.config["model"]["target_mastery"] == 0.8  # RECOMMENDER_TARGET_MASTERY
    assert version.data_fingerprint == resource_feedback_fingerprint(
        resource_feedback_examples(course_id=course.pk)
    )


def test_the_saved_model_ranks_the_resource_that_helps_this_student_first():
    course = make_feedback_course(students=40)
    run = training_request(kind="recommender", course=course)
    training_run_execute(run_id=run.pk)
    version = ModelVersion.objects.get()
    fractions = course.skills.order_by("pk").first()
    a, b = (Resource.objects.get(course=course, title=title) for title in ("A", "B"))
    resources = {a.pk: {fractions.pk: 1.0}, b.pk: {fractions.pk: 1.0}}

    model = TrainedHelpfulness.from_bytes(artifact_read_verified(version=version))

    low = model.score({fractions.pk: 0.1}, resources)
    high = model.score({fractions.pk: 0.9}, resources)
    assert low[a.pk] > low[b.pk]
    assert high[b.pk] > high[a.pk]


def test_a_second_run_is_gated_on_the_same_held_out_students():
    course = make_feedback_course(students=40)
    first = training_request(kind="recommender", course=course)
    training_run_execute(run_id=first.pk)
    second = training_request(kind="recommender", course=course)

    training_run_execute(run_id=second.pk)

    old, new = ModelVersion.objects.order_by("version")
    metrics = new.metrics
    assert TrainingRun.objects.get(pk=second.pk).status == "succeeded"
    # The same data and seed train the same model: equal is not worse, so the new one serves.
    assert metrics["active_validation_auc"] == metrics["validation_auc"]
    assert new.gate_reason == (
        f"activated: validation_auc {metrics['validation_auc']:.4f} >= active v1's "
        f"{metrics['validation_auc']:.4f} on the {metrics['n_validation']} feedback examples "
        f"of {metrics['validation_students']} held-out students"
    )
    assert (old.status, new.status) == ("retired", "active")
    assert new.data_fingerprint == old.data_fingerprint


def test_too_little_feedback_is_refused_and_nothing_is_created():
    course = make_feedback_course(students=7)

    with pytest.raises(ValidationFailed) as refused:
        training_request(kind="recommender", course=course)

    assert refused.value.message == (
        f"course {course.slug!r} has 28 labelled resource feedback examples (helpful / not "
        "helpful votes, and completions followed by a new mastery estimate); the recommender "
        "needs at least 30 to train"
    )
    assert TrainingRun.objects.count() == 0
    assert ModelVersion.objects.count() == 0


def test_the_least_feedback_is_a_setting(settings):
    settings.EDU_DL = {**settings.EDU_DL, "RECOMMENDER_MIN_FEEDBACK": 28}
    course = make_feedback_course(students=7)

    run = training_request(kind="recommender", course=course)

    assert (run.kind, run.status, run.scope_key) == ("recommender", "queued", f"course:{course.pk}")


def test_a_run_that_finds_too_little_feedback_fails_with_the_count():
    course = make_feedback_course(students=3)
    run = recommender_run_row(course)

    training_run_execute(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error.startswith(
        f"ValidationFailed: course {course.slug!r} has 12 labelled resource feedback examples"
    )
    assert ModelVersion.objects.count() == 0


def test_parameters_that_do_not_apply_fail_the_run_and_leave_no_model():
    course = make_feedback_course(students=10)
    run = training_request(kind="recommender", course=course, params={"max_length": 50})

    training_run_execute(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error == (
        "ValidationFailed: training parameter(s) max_length do not apply to the recommender; "
        "it takes model, model_config, train_config"
    )
    assert ModelVersion.objects.count() == 0


def test_training_settings_come_from_the_request():
    course = make_feedback_course(students=10)
    run = training_request(
        kind="recommender",
        course=course,
        params={"model_config": {"dim": 8}, "train_config": {"epochs": 2, "seed": 5}},
    )

    training_run_execute(run_id=run.pk)

    version = ModelVersion.objects.get()
    assert version.config["model"]["dim"] == 8
    assert (version.config["train"]["epochs"], version.config["train"]["seed"]) == (2, 5)
    assert version.metrics["epochs_run"] <= 2


def test_an_unknown_training_option_fails_the_run_with_its_name():
    course = make_feedback_course(students=10)
    run = training_request(kind="recommender", course=course, params={"train_config": {"epoch": 2}})

    training_run_execute(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == "failed"
    assert "unknown option(s) for HelpfulnessTrainConfig: epoch" in run.error
    assert ModelVersion.objects.count() == 0
