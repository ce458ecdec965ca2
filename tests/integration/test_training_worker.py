"""The ML job runtime end to end: request -> broker -> a real worker process -> artifact and
ModelVersion, with progress visible in the database while the worker trains."""

from __future__ import annotations

import hashlib
import time

import pytest

from edu_dl.models import ModelVersion, TrainingRun
from edu_dl.services.training import training_request, training_runs_sweep
from tests.integration.conftest import wait_for
from tests.kt_data import make_kt_course

pytestmark = pytest.mark.integration

FINISHED = ("succeeded", "failed", "cancelled")


def test_a_training_request_is_trained_by_a_real_worker(celery_worker_process):
    course = make_kt_course(students=120, answers=60)
    epochs = 12
    params = {
        "train_config": {"epochs": epochs, "patience": epochs, "batch_size": 16},
        "model": "dkt",
        "model_config": {"hidden_size": 64},
    }

    run = training_request(kind="kt", course=course, params=params)
    seen: list[tuple[str, int, int]] = []

    def finished():
        row = TrainingRun.objects.get(pk=run.pk)
        seen.append((row.status, row.progress, len(row.epoch_metrics)))
        return row.status in FINISHED

    wait_for(finished, timeout=180, interval=0.02, what="the training run to finish")
    run.refresh_from_db()
    assert run.status == "succeeded", run.error + celery_worker_process.log()[-3000:]
    mid_training = [s for s in seen if s[0] == "running" and 8 < s[1] < 100 and 0 < s[2] < epochs]
    assert mid_training, f"no progress was seen while running: {sorted(set(seen))}"
    progress_while_running = [p for status, p, _ in seen if status == "running"]
    assert progress_while_running == sorted(progress_while_running)
    assert (run.progress, len(run.epoch_metrics)) == (100, epochs)
    assert run.worker.startswith("test-")
    assert run.task_id
    version = ModelVersion.objects.get(training_run=run)
    data = (celery_worker_process.artifact_dir / version.artifact_path).read_bytes()
    assert version.status == "active"
    assert hashlib.sha256(data).hexdigest() == version.artifact_sha256
    assert version.metrics["val_auc"] > 0.6


def test_a_worker_killed_mid_training_leaves_the_run_failed_and_the_model_untouched(
    celery_worker_process, settings
):
    course = make_kt_course(students=80, answers=50)
    first = training_request(
        kind="kt", course=course, params={"train_config": {"epochs": 2, "batch_size": 16}}
    )
    wait_for(
        lambda: TrainingRun.objects.get(pk=first.pk).status in FINISHED,
        timeout=120,
        what="the first run",
    )
    active = ModelVersion.objects.get(status="active")
    long_run = training_request(
        kind="kt",
        course=course,
        params={"train_config": {"epochs": 500, "patience": 500, "batch_size": 8}},
    )
    wait_for(
        lambda: len(TrainingRun.objects.get(pk=long_run.pk).epoch_metrics) >= 1,
        timeout=120,
        what="the long run to finish an epoch",
    )

    celery_worker_process.kill()
    settings.EDU_DL = {**settings.EDU_DL, "TRAINING_HEARTBEAT_TIMEOUT_S": 1}
    time.sleep(1.5)
    counts = training_runs_sweep()

    long_run.refresh_from_db()
    assert counts["failed"] == 1
    assert long_run.status == "failed"
    assert "the worker stopped responding" in long_run.error
    assert list(ModelVersion.objects.values_list("pk", "status")) == [(active.pk, "active")]
