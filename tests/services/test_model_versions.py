"""Activation, rollback, checksums and the worker's cache of active models."""

from __future__ import annotations

import logging

import pytest

from edu_dl.models import AuditEvent, ModelVersion
from edu_dl.services.artifacts import ArtifactIntegrityError, artifact_storage
from edu_dl.services.errors import Conflict, NotFound
from edu_dl.services.model_versions import (
    ModelUnavailable,
    active_model_load,
    model_version_activate,
    model_version_rollback,
)
from edu_dl.services.training import training_request, training_run_execute
from tests.kt_data import make_kt_course

# KT_MODEL "auto" trains the attention model when answers name their items, as here.
DEFAULT_KT_MODEL = "akt"

pytestmark = pytest.mark.django_db

FAST = {"train_config": {"epochs": 2, "batch_size": 16, "learning_rate": 0.01}}


@pytest.fixture
def course(monkeypatch):
    from celery import current_app

    monkeypatch.setattr(current_app, "send_task", lambda *a, **k: type("R", (), {"id": ""})())
    return make_kt_course(students=24, answers=20)


def train_version(course, **params) -> ModelVersion:
    run = training_request(kind="kt", course=course, params={**FAST, **params})
    training_run_execute(run_id=run.pk)
    return ModelVersion.objects.filter(training_run=run).get()


def corrupt(version: ModelVersion) -> None:
    path = artifact_storage().path(version.artifact_path)
    with open(path, "r+b") as handle:
        handle.seek(100)
        handle.write(b"\x00garbage\x00")


def test_a_version_with_a_corrupt_artifact_is_refused_and_the_active_one_stays(course, caplog):
    first = train_version(course)
    second = train_version(course)
    model_version_rollback(kind="kt", scope_key=first.scope_key)  # first active again
    corrupt(second)

    with caplog.at_level(logging.ERROR), pytest.raises(ArtifactIntegrityError):
        model_version_activate(version=second)

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("active", "retired")
    assert "refused: sha256" in caplog.text


def test_rollback_returns_to_the_previous_version_and_is_audited(course):
    first = train_version(course)
    second = train_version(course)
    assert ModelVersion.objects.get(pk=second.pk).status == "active"

    restored = model_version_rollback(kind="kt", scope_key=first.scope_key)

    assert restored.pk == first.pk
    assert dict(ModelVersion.objects.values_list("version", "status")) == {
        1: "active",
        2: "retired",
    }
    event = AuditEvent.objects.filter(action="model.rollback").get()
    assert (event.before, event.after) == ({"active_version": 2}, {"active_version": 1})


def test_rollback_without_an_earlier_version_is_a_conflict(course):
    first = train_version(course)

    with pytest.raises(Conflict, match="nothing to roll back to"):
        model_version_rollback(kind="kt", scope_key=first.scope_key)

    assert ModelVersion.objects.get().status == "active"


def test_rollback_without_an_active_version_is_not_found(course):
    with pytest.raises(NotFound):
        model_version_rollback(kind="kt", scope_key=f"course:{course.pk}")


def test_the_cache_loads_once_and_reloads_when_the_active_version_changes(course):
    first = train_version(course)

    loaded = active_model_load(kind="kt", scope_key=first.scope_key)
    again = active_model_load(kind="kt", scope_key=first.scope_key)
    second = train_version(course)
    reloaded = active_model_load(kind="kt", scope_key=first.scope_key)

    assert again is loaded
    assert loaded.version_number == 1
    assert reloaded.version_id == second.pk
    assert reloaded.loaded.name == DEFAULT_KT_MODEL


def test_a_corrupt_active_artifact_keeps_the_loaded_model_serving(course, caplog):
    first = train_version(course)
    serving = active_model_load(kind="kt", scope_key=first.scope_key)
    second = train_version(course)
    corrupt(second)

    with caplog.at_level(logging.ERROR):
        still = active_model_load(kind="kt", scope_key=first.scope_key)

    assert still is serving
    assert "keeping kt v1" in caplog.text


def test_a_corrupt_artifact_with_nothing_loaded_is_unavailable(course):
    first = train_version(course)
    corrupt(first)

    with pytest.raises(ModelUnavailable, match="does not match its recorded checksum"):
        active_model_load(kind="kt", scope_key=first.scope_key)
