"""Training runs: request, idempotency, execution, the evaluation gate, cancel, the sweeper."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from edu_dl.models import AuditEvent, Course, ModelVersion, TrainingRun
from edu_dl.services.artifacts import artifact_storage
from edu_dl.services.errors import ValidationFailed
from edu_dl.services.training import (
    training_request,
    training_run_cancel,
    training_run_execute,
    training_runs_sweep,
)
from tests.kt_data import make_kt_course

# KT_MODEL "auto" trains the attention model when answers name their items, as here.
DEFAULT_KT_MODEL = "akt"

pytestmark = pytest.mark.django_db

FAST = {"train_config": {"epochs": 3, "batch_size": 16, "learning_rate": 0.01}}


@pytest.fixture
def course() -> Course:
    return make_kt_course()


@pytest.fixture
def sent(monkeypatch):
    """Messages sent to the broker (the real broker is exercised by the integration tests)."""
    from celery import current_app

    messages = []

    class Result:
        id = "task-id"

    def send_task(name, args=None, **options):
        messages.append((name, args, options.get("queue")))
        return Result()

    monkeypatch.setattr(current_app, "send_task", send_task)
    return messages


def test_request_creates_a_queued_run_and_enqueues_it_after_commit(
    course, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run = training_request(kind="kt", course=course, params=FAST)

    run.refresh_from_db()
    assert len(callbacks) == 1
    assert sent == [("edu_dl.training.run", [run.pk], None)]
    assert (run.status, run.scope_key, run.idempotency_key) == (
        "queued",
        f"course:{course.pk}",
        f"kt:course:{course.pk}",
    )
    assert run.enqueue_count == 1
    assert run.task_id == "task-id"


def test_asking_again_while_open_returns_the_same_run(course, sent):
    first = training_request(kind="kt", course=course)

    second = training_request(kind="kt", course=course, params={"model": "dkt"})

    assert second.pk == first.pk
    assert TrainingRun.objects.count() == 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"epochs": 3}, "unknown training parameter"),
        ({"train_config": 3}, "params.train_config must be an object"),
        ({"max_length": 1}, "params.max_length"),
    ],
)
def test_bad_params_are_refused_and_nothing_is_created(course, sent, params, message):
    with pytest.raises(ValidationFailed, match=message):
        training_request(kind="kt", course=course, params=params)

    assert TrainingRun.objects.count() == 0


def test_a_course_without_enough_answers_is_refused(sent):
    empty = Course.objects.create(slug="empty", title="Empty")

    with pytest.raises(ValidationFailed, match="has 0 interactions"):
        training_request(kind="kt", course=empty)

    assert TrainingRun.objects.count() == 0


def test_a_kind_in_the_wrong_scope_is_refused(course, sent):
    with pytest.raises(ValidationFailed, match="a grader model belongs to a item or global"):
        training_request(kind="grader", course=course)

    assert TrainingRun.objects.count() == 0


def test_execute_trains_saves_a_checked_artifact_and_activates_the_first_version(course, sent):
    teacher = get_user_model().objects.get(username="kt-course-teacher")
    run = training_request(kind="kt", course=course, requested_by=teacher, params=FAST)

    training_run_execute(run_id=run.pk, task_id="t1", worker="w1")

    run.refresh_from_db()
    version = ModelVersion.objects.get()
    with artifact_storage().open(version.artifact_path, "rb") as handle:
        data = handle.read()
    assert (run.status, run.progress, run.stage, run.error) == ("succeeded", 100, "done", "")
    assert len(run.epoch_metrics) == version.metrics["epochs_run"] == 3
    assert [m["epoch"] for m in run.epoch_metrics] == [1, 2, 3]
    assert (version.status, version.version, version.architecture) == (
        "active",
        1,
        DEFAULT_KT_MODEL,
    )
    assert version.training_run == run
    assert version.metrics["val_auc"] > 0.55
    assert version.gate_reason.startswith("activated: first version")
    assert hashlib.sha256(data).hexdigest() == version.artifact_sha256
    assert len(data) == version.artifact_size
    assert len(version.data_fingerprint) == 64
    assert AuditEvent.objects.get().action == "model.activate"
    assert AuditEvent.objects.get().actor == teacher


def test_a_worse_candidate_stays_a_candidate_with_the_reason(course, sent):
    first = training_request(kind="kt", course=course, params=FAST)
    training_run_execute(run_id=first.pk)
    untrained = {
        "model": "dkt-rasch",
        "train_config": {"epochs": 1, "learning_rate": 0.0},
        "model_config": {"hidden_size": 4},
    }
    second = training_request(kind="kt", course=course, params=untrained)

    training_run_execute(run_id=second.pk)

    active, candidate = ModelVersion.objects.order_by("version")
    assert (active.status, candidate.status) == ("active", "candidate")
    assert candidate.gate_reason.startswith("not activated: val_auc")
    assert f"below active v1's {active.metrics['val_auc']:.4f}" in candidate.gate_reason
    assert TrainingRun.objects.get(pk=second.pk).status == "succeeded"


def test_an_equal_candidate_replaces_the_active_version(course, sent):
    for _ in range(2):
        run = training_request(kind="kt", course=course, params=FAST)
        training_run_execute(run_id=run.pk)

    old, new = ModelVersion.objects.order_by("version")
    assert (old.status, new.status) == ("retired", "active")
    assert new.data_fingerprint == old.data_fingerprint
    assert new.metrics["active_val_auc"] == pytest.approx(new.metrics["val_auc"])


def test_executing_twice_does_nothing_the_second_time(course, sent):
    run = training_request(kind="kt", course=course, params=FAST)
    training_run_execute(run_id=run.pk)

    again = training_run_execute(run_id=run.pk)

    assert again is None
    assert ModelVersion.objects.count() == 1


def test_a_cancelled_queued_run_never_starts(course, sent):
    run = training_request(kind="kt", course=course, params=FAST)

    training_run_cancel(run=run)
    training_run_execute(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == "cancelled"
    assert ModelVersion.objects.count() == 0


def test_a_running_run_stops_at_the_next_report_when_cancelled(course, sent):
    run = training_request(kind="kt", course=course, params=FAST)
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)

    training_run_execute(run_id=run.pk)

    run.refresh_from_db()
    assert (run.status, run.stage) == ("cancelled", "cancelled")
    assert ModelVersion.objects.count() == 0


def test_a_failing_run_records_the_error_and_leaves_the_active_model(course, sent):
    first = training_request(kind="kt", course=course, params=FAST)
    training_run_execute(run_id=first.pk)
    bad = training_request(
        kind="kt", course=course, params={"model": "dkt-rasch", "model_config": {"hidden": 3}}
    )

    training_run_execute(run_id=bad.pk)

    bad.refresh_from_db()
    assert bad.status == "failed"
    assert "unknown option(s) for DKTRaschConfig: hidden" in bad.error
    assert list(ModelVersion.objects.values_list("version", "status")) == [(1, "active")]


def test_the_sweeper_fails_runs_whose_worker_died(course, sent, settings):
    settings.EDU_DL = {**settings.EDU_DL, "TRAINING_HEARTBEAT_TIMEOUT_S": 60}
    run = training_request(kind="kt", course=course)
    TrainingRun.objects.filter(pk=run.pk).update(
        status="running", heartbeat_at=timezone.now() - timedelta(seconds=61)
    )
    alive = TrainingRun.objects.create(
        kind="kt",
        scope_type="course",
        course=course,
        scope_key="course:x",
        idempotency_key="other",
        status="running",
        heartbeat_at=timezone.now(),
    )

    counts = training_runs_sweep()

    run.refresh_from_db()
    alive.refresh_from_db()
    assert counts == {"failed": 1, "requeued": 0, "given_up": 0}
    assert run.status == "failed"
    assert "the worker stopped responding" in run.error
    assert alive.status == "running"


def test_the_sweeper_enqueues_again_runs_left_waiting(course, sent, settings):
    settings.EDU_DL = {**settings.EDU_DL, "TRAINING_REQUEUE_AFTER_S": 60}
    run = training_request(kind="kt", course=course)
    TrainingRun.objects.filter(pk=run.pk).update(
        enqueued_at=timezone.now() - timedelta(seconds=61), enqueue_count=1
    )

    counts = training_runs_sweep()

    run.refresh_from_db()
    assert counts == {"failed": 0, "requeued": 1, "given_up": 0}
    assert run.enqueue_count == 2
    assert sent == [("edu_dl.training.run", [run.pk], None)]
